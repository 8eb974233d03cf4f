"""Rows broken down by image set (:mod:`ochuman.eval.image_sets`) and keypoint visibility class
(:mod:`ochuman.eval.visibility`): each (image set, visibility) is one more evaluation of a results
file, on the images of the set (pycocotools' ``params.imgIds``) and the ground truth restricted to
the class, whose rows carry ``image_set`` and / or ``visibility`` (only those asked for).

Order: image sets as asked, and in each the ordinary evaluation (visibility ``all``) then one
per class. The evaluation of every image (``all``) and every joint is the plain one, reused."""
from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from typing import Callable, Optional, Sequence, Union

from ochuman.errors import OCHumanWarning
from ochuman.eval.ground_truth import GroundTruth
from ochuman.eval.image_sets import image_set_ids, image_set_names
from ochuman.eval.params import EvalParams
from ochuman.eval.report import ResultsEvaluation
from ochuman.eval.visibility import ALL_JOINTS, check_by_visibility, visibility_ground_truths


@dataclass
class Breakdown:
    """The evaluations each results file gets: (row keys, ground truth, parameters); the first
    with no image restriction and every joint is the plain evaluation (index ``plain``, or None)."""

    groups: list
    plain: Optional[int]

    @classmethod
    def plan(cls, ground: GroundTruth, params: EvalParams, image_set: Union[None, str, Sequence[str]],
             by_visibility: bool) -> Optional["Breakdown"]:
        """The breakdown asked for; None when nothing is (plain rows). Refuses what cannot be
        done (an unknown image set, fully-labelled on a COCO file, visibility of masks or boxes)
        before anything is evaluated."""
        if image_set is None and not by_visibility:
            return None
        if by_visibility:
            check_by_visibility(params.iou_type)
        graded = [(ALL_JOINTS, ground)] + (visibility_ground_truths(ground) if by_visibility else [])
        groups, plain = [], None
        for name in image_set_names(image_set) if image_set is not None else [None]:
            ids = image_set_ids(ground, name) if name is not None else None
            if ids is not None and len(ids) == 0 and len(ground.annotations):
                where = f" of the {ground.split} split" if ground.split != "all" else ""
                warnings.warn(f"{ground.source}: no image{where} is {name}: its every AP and AR is -1, as in "
                              "pycocotools", OCHumanWarning, stacklevel=3)
            chosen = params if ids is None else replace(params, img_ids=ids.tolist())
            for visibility, restricted in graded:
                keys = {**({} if name is None else {"image_set": name}),
                        **({"visibility": visibility} if by_visibility else {})}
                if ids is None and visibility == ALL_JOINTS and plain is None:
                    plain = len(groups)
                groups.append((keys, restricted, chosen))
        return cls(groups, plain)

    def evaluations(self, plain: ResultsEvaluation,
                    evaluate: Callable[[GroundTruth, EvalParams], ResultsEvaluation]) -> list[ResultsEvaluation]:
        """The evaluations of one results file, ``plain`` (its plain evaluation) reused, the others
        made by ``evaluate(ground truth, parameters)``; each with its row keys."""
        out = []
        for k, (keys, ground, params) in enumerate(self.groups):
            evaluation = plain if k == self.plain else evaluate(ground, params)
            evaluation.keys = keys
            out.append(evaluation)
        return out
