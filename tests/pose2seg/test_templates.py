"""pose2seg.templates: the official file, candidates, preprocessing and clustering vs loop references."""
from __future__ import annotations

import inspect
import json
import math

import numpy as np
import pytest
from click.testing import CliRunner

from cli.pose2seg_cmd import main
from ochuman.errors import FormatError, OCHumanError
from ochuman.keypoints import COCO_FLIP_PAIRS, COCO_KEYPOINT_NAMES
from pose2seg.templates import (
    OFFICIAL_TEMPLATES_PATH, PoseTemplates, candidates, cluster_templates, compare_templates,
    load_templates, nearest_template, normalise_poses, save_templates,
)

_RUNNER_KWARGS = (
    {"mix_stderr": False} if "mix_stderr" in inspect.signature(CliRunner.__init__).parameters else {}
)


def _partner(j: int) -> int:
    for left, right in COCO_FLIP_PAIRS:
        if j == left:
            return right
        if j == right:
            return left
    return j


# ------------------------------------------------------------------------------ references
def ref_candidates(templates: np.ndarray, threshold: float) -> np.ndarray:
    """Spec 5.4, one template and one joint at a time."""
    kept = []
    for t in templates:
        rows = []
        for j in range(17):
            rows.append([0.0, 0.0, 0.0] if t[j, 2] < threshold else list(t[j]))
        kept.append(rows)
    flipped = [[list(rows[_partner(j)]) for j in range(17)] for rows in kept]
    return np.array(kept + flipped, dtype=np.float64)


def ref_normalise(keypoints, boxes, min_points, image_wh=None):
    """Spec 5.4 / cluster_pose.py, one person at a time."""
    originals, mirrors = [], []
    for n, (kpt, (x, y, w, h)) in enumerate(zip(keypoints, boxes)):
        x1, y1, x2, y2 = x, y, x + w - 1, y + h - 1
        if image_wh is not None:
            width, height = image_wh[n]
            x1, x2 = (min(width - 1.0, max(0.0, c)) for c in (x1, x2))
            y1, y2 = (min(height - 1.0, max(0.0, c)) for c in (y1, y2))
        if not (x2 > x1 and y2 > y1):
            originals.append(None)
            mirrors.append(None)
            continue
        bw, bh = x2 - x1, y2 - y1
        s = min(1.0 / bw, 1.0 / bh)
        pose = []
        for px, py, v in kpt:
            if v == 0:
                pose.append([0.0, 0.0, 0.0])
            else:
                pose.append([(px - x1) * s + (1 - bw * s) / 2, (py - y1) * s + (1 - bh * s) / 2, v])
        mirror = []
        for j in range(17):
            px, py, v = pose[_partner(j)]
            mirror.append([1.0 - px, py, v])
        originals.append(pose)
        mirrors.append(mirror)
    out = []
    for pose in originals + mirrors:
        if pose is None:
            continue
        labelled = sum(1 for p in pose if p[2] > 0)
        if labelled == 0 or labelled < min_points:
            continue
        out.append([[0.5, 0.5, 0.0] if p[2] == 0 else p for p in pose])
    return np.array(out, dtype=np.float64).reshape(-1, 17, 3)


# ------------------------------------------------------------------------ the official file
def test_official_file_loads():
    t = load_templates()
    assert t.names == COCO_KEYPOINT_NAMES
    assert t.templates.shape == (3, 17, 3) and t.templates.dtype == np.float64
    assert t.vis_threshold == 0.4 and t.min_points == 8
    assert sorted(t.flip_map) == sorted((COCO_KEYPOINT_NAMES[a], COCO_KEYPOINT_NAMES[b])
                                        for a, b in COCO_FLIP_PAIRS)
    raw = json.loads(OFFICIAL_TEMPLATES_PATH.read_text())
    np.testing.assert_array_equal(t.templates.reshape(3, -1), np.array(raw["templates"]))
    # spec 5.4: T1 misses nose and eyes (ears valid); T2 misses knees and ankles
    invalid = [[COCO_KEYPOINT_NAMES[j] for j in np.flatnonzero(~row)] for row in t.valid]
    assert invalid == [[], ["nose", "left_eye", "right_eye"],
                       ["left_knee", "right_knee", "left_ankle", "right_ankle"]]
    assert load_templates(OFFICIAL_TEMPLATES_PATH).templates.tolist() == t.templates.tolist()


def test_official_file_round_trips(tmp_path):
    t = load_templates()
    path = tmp_path / "sub" / "templates.json"
    save_templates(t, path)
    back = load_templates(path)
    np.testing.assert_array_equal(back.templates, t.templates)
    assert (back.names, back.flip_map, back.vis_threshold, back.min_points, back.source) == \
           (t.names, t.flip_map, t.vis_threshold, t.min_points, t.source)
    # same schema, same values, same key order as the official file
    official = json.loads(OFFICIAL_TEMPLATES_PATH.read_text())
    written = json.loads(path.read_text())
    assert written == official and list(written) == list(official)
    assert [p.name for p in path.parent.iterdir()] == ["templates.json"]  # no temporary left


def test_templates_are_read_only_and_validated():
    t = load_templates()
    with pytest.raises(ValueError):
        t.templates[0, 0, 0] = 1.0
    with pytest.raises(ValueError, match=r"\(K, 17, 3\)"):
        PoseTemplates(COCO_KEYPOINT_NAMES, np.zeros((2, 16, 3)))
    with pytest.raises(ValueError, match="COCO order"):
        PoseTemplates(tuple(reversed(COCO_KEYPOINT_NAMES)), np.zeros((1, 17, 3)))
    with pytest.raises(ValueError, match="unknown keypoint"):
        PoseTemplates(COCO_KEYPOINT_NAMES, np.zeros((1, 17, 3)), flip_map={"left_eye": "nope"})


def _official() -> dict:
    return json.loads(OFFICIAL_TEMPLATES_PATH.read_text())


def _with(**changes) -> str:
    data = _official()
    for key, value in changes.items():
        if value is _DROP:
            del data[key]
        else:
            data[key] = value
    return json.dumps(data)


_DROP = object()
_T0 = _official()["templates"][0]

BAD_FILES = [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "expected a JSON object, got list"),
    (_with(templates=_DROP), "missing key(s): templates"),
    (_with(templates=[]), "templates: expected a non-empty list"),
    (_with(templates=[_T0, _T0[:50]]), "templates[1]: expected 51 numbers (17 joints x (x, y, v)), got 50 values"),
    (_with(templates=[_T0[:7] + ["x"] + _T0[8:]]), "templates[0][7]: expected a finite number, got 'x'"),
    (_with(templates=[_T0[:3] + [True] + _T0[4:]]), "templates[0][3]: expected a finite number, got True"),
    (_with(names=list(COCO_KEYPOINT_NAMES[:16])), "names: expected the 17 COCO keypoint names"),
    (_with(flip_map={"left_eye": "right_eyes"}), "flip_map: unknown keypoint name 'right_eyes'"),
    (_with(flip_map={"left_eye": "right_eye", "left_ear": "left_eye"}), "flip_map: 'left_eye' appears twice"),
    (_with(vis_threshold="0.4"), "vis_threshold: expected a finite number, got '0.4'"),
    (_with(minpoints=-1), "minpoints: expected an integer >= 0, got -1"),
    (_with(minpoints=8.5), "minpoints: expected an integer >= 0, got 8.5"),
    (_with(source=3), "source: expected a string"),
]


@pytest.mark.parametrize("text, fragment", BAD_FILES, ids=[f[1][:30] for f in BAD_FILES])
def test_bad_file_gives_one_line_format_error(tmp_path, text, fragment):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(FormatError) as info:
        load_templates(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    assert fragment in message, message


def test_nan_and_non_utf8_and_missing_file(tmp_path):
    nan = tmp_path / "nan.json"
    nan.write_text(_with(templates=[[math.nan] + _T0[1:]]))
    with pytest.raises(FormatError, match=r"templates\[0\]\[0\]: expected a finite number"):
        load_templates(nan)
    latin = tmp_path / "latin.json"
    latin.write_bytes(b'{"names": "\xe9"}')
    with pytest.raises(FormatError, match="not UTF-8"):
        load_templates(latin)
    with pytest.raises(OCHumanError, match="cannot read"):
        load_templates(tmp_path / "missing.json")


def test_connections_key_is_accepted(tmp_path):
    data = _official()
    data["connections"] = [[16, 14], [14, 12]]
    path = tmp_path / "with_connections.json"
    path.write_text(json.dumps(data))
    np.testing.assert_array_equal(load_templates(path).templates, load_templates().templates)


# -------------------------------------------------------------------------------- candidates
def test_candidates_match_reference_on_official_and_random():
    official = load_templates()
    np.testing.assert_array_equal(candidates(official), ref_candidates(official.templates, 0.4))
    rng = np.random.default_rng(1)
    for _ in range(5):
        raw = rng.uniform(0, 1, (4, 17, 3))
        raw[..., 2] = rng.uniform(0, 2, (4, 17))
        t = PoseTemplates(COCO_KEYPOINT_NAMES, raw, vis_threshold=0.7)
        np.testing.assert_array_equal(candidates(t), ref_candidates(raw, 0.7))


def test_candidates_swap_rows_without_mirroring():
    t = load_templates()
    before = t.templates.copy()
    c = candidates(t)
    assert c.shape == (6, 17, 3)
    np.testing.assert_array_equal(t.templates, before)  # input untouched
    ls, rs = COCO_KEYPOINT_NAMES.index("left_shoulder"), COCO_KEYPOINT_NAMES.index("right_shoulder")
    for i in range(3):
        np.testing.assert_array_equal(c[3 + i, ls], c[i, rs])  # same x: swapped, not mirrored
        np.testing.assert_array_equal(c[3 + i, rs], c[i, ls])
        np.testing.assert_array_equal(c[3 + i, 0], c[i, 0])  # nose has no partner
    # T1 (seen from the back): nose and eyes invalid -> zero rows in T1 and T1'
    assert not c[[1, 4], :3].any()
    # T0: left joints at x > 0.5 (frontal); T0': left joints at x < 0.5
    assert c[0, ls, 0] > 0.5 > c[3, ls, 0]


# ---------------------------------------------------------------------------- preprocessing
def _random_persons(rng, n):
    boxes = np.column_stack([rng.uniform(-20, 300, n), rng.uniform(-20, 300, n),
                             rng.uniform(0.5, 200, n), rng.uniform(0.5, 200, n)])
    keypoints = np.zeros((n, 17, 3))
    keypoints[..., 0] = boxes[:, None, 0] + rng.uniform(-0.1, 1.1, (n, 17)) * boxes[:, None, 2]
    keypoints[..., 1] = boxes[:, None, 1] + rng.uniform(-0.1, 1.1, (n, 17)) * boxes[:, None, 3]
    keypoints[..., 2] = rng.choice([0, 0, 1, 2, 2], size=(n, 17))
    missing = keypoints[..., 2] == 0
    keypoints[missing, :2] = rng.choice([0.0, 7.0], size=(int(missing.sum()), 1))  # junk kept in missing joints
    boxes[:3, 2] = [1.0, 1.5, 30.0]  # w - 1 = 0 (dropped), 0.5, normal
    return keypoints, boxes


@pytest.mark.parametrize("min_points", [0, 5, 8])
def test_normalise_matches_reference(min_points):
    rng = np.random.default_rng(min_points)
    keypoints, boxes = _random_persons(rng, 60)
    ours = normalise_poses(keypoints, boxes, min_points=min_points)
    ref = ref_normalise(keypoints, boxes, min_points)
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-12)
    image_wh = rng.uniform(50, 400, (60, 2))
    np.testing.assert_allclose(normalise_poses(keypoints, boxes, min_points, image_wh),
                               ref_normalise(keypoints, boxes, min_points, image_wh), rtol=0, atol=1e-12)


def test_normalise_geometry():
    # a 101 x 51 box: width x2 - x1 = 100 scales to 1, the height 50 to 0.5 centred at 0.25..0.75
    keypoints = np.zeros((1, 17, 3))
    keypoints[0, :, 2] = 2
    keypoints[0, :8, :2] = (10, 20)   # top-left corner of the box
    keypoints[0, 8:, :2] = (110, 70)  # bottom-right corner
    poses = normalise_poses(keypoints, np.array([[10.0, 20.0, 101.0, 51.0]]))
    np.testing.assert_allclose(poses[0, 0], [0.0, 0.25, 2.0])
    np.testing.assert_allclose(poses[0, 16], [1.0, 0.75, 2.0])
    # the mirror: x -> 1 - x and left/right rows swapped (left_eye <- mirrored right_eye)
    np.testing.assert_allclose(poses[1, 1], [1.0 - poses[0, 2, 0], poses[0, 2, 1], 2.0])
    np.testing.assert_allclose(poses[1, 0], [1.0, 0.25, 2.0])


def test_shapes_are_checked():
    with pytest.raises(ValueError, match=r"keypoints: expected shape \(N, 17, 3\), got \(2, 19, 3\)"):
        normalise_poses(np.zeros((2, 19, 3)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"bbox_xywh: expected shape \(2, 4\), got \(3, 4\)"):
        cluster_templates(np.zeros((2, 17, 3)), np.zeros((3, 4)))


# -------------------------------------------------------------------------------- clustering
def _prototype(kind: str) -> np.ndarray:
    """Left/right symmetric unit-square poses (so mirrored copies stay in their cluster)."""
    p = np.zeros((17, 3))
    half = {"nose": (0.0, 0.10), "eye": (0.03, 0.08), "ear": (0.06, 0.10), "shoulder": (0.12, 0.22),
            "elbow": (0.16, 0.38), "wrist": (0.17, 0.52), "hip": (0.08, 0.55), "knee": (0.09, 0.74),
            "ankle": (0.09, 0.92)}
    for j, name in enumerate(COCO_KEYPOINT_NAMES):
        part = name.split("_")[-1]
        dx, y = half[part]
        side = 1.0 if name.startswith("left") else -1.0 if name.startswith("right") else 0.0
        if kind == "back":
            side = -side
        if kind == "upper":
            y = 0.15 + 0.9 * y if part not in ("knee", "ankle") else 0.5
        p[j] = (0.5 + side * dx * (1.6 if kind == "upper" else 1.0), y, 2.0)
    if kind == "back":
        p[:3] = (0.5, 0.5, 0.0)
    if kind == "upper":
        p[13:] = (0.5, 0.5, 0.0)
    return p


def _plant(rng, sizes):
    protos = [_prototype(k) for k in ("front", "back", "upper")]
    keypoints, boxes = [], []
    for proto, count in zip(protos, sizes):
        for _ in range(count):
            x, y = rng.uniform(0, 500, 2)
            w, h = rng.uniform(40, 300), rng.uniform(40, 300)
            bw, bh = w - 1, h - 1
            s = min(1 / bw, 1 / bh)
            noisy = proto[:, :2] + rng.normal(0, 0.01, (17, 2))
            kp = np.zeros((17, 3))
            kp[:, 0] = (noisy[:, 0] - (1 - bw * s) / 2) / s + x
            kp[:, 1] = (noisy[:, 1] - (1 - bh * s) / 2) / s + y
            kp[:, 2] = proto[:, 2]
            kp[kp[:, 2] == 0] = 0
            keypoints.append(kp)
            boxes.append([x, y, w, h])
    return protos, np.array(keypoints), np.array(boxes)


def test_cluster_recovers_planted_templates():
    rng = np.random.default_rng(7)
    protos, keypoints, boxes = _plant(rng, (50, 30, 20))
    learned = cluster_templates(keypoints, boxes, k=3, seed=0)
    assert learned.templates.shape == (3, 17, 3) and learned.names == COCO_KEYPOINT_NAMES
    assert learned.vis_threshold == 0.4 and learned.min_points == 8
    # ordered by cluster size: front (100 vectors), back (60), upper (40)
    for template, proto in zip(learned.templates, protos):
        np.testing.assert_allclose(template, proto, rtol=0, atol=0.01)
    labels = nearest_template(normalise_poses(keypoints, boxes), learned)
    assert np.bincount(labels).tolist() == [100, 60, 40]
    # deterministic for a seed; another seed finds the same clusters
    again = cluster_templates(keypoints, boxes, k=3, seed=0)
    np.testing.assert_array_equal(again.templates, learned.templates)
    other = cluster_templates(keypoints, boxes, k=3, seed=5)
    np.testing.assert_allclose(other.templates, learned.templates, rtol=0, atol=1e-9)
    rows = compare_templates(learned, PoseTemplates(COCO_KEYPOINT_NAMES, np.stack(protos)))
    assert [r["nearest_reference"] for r in rows] == [0, 1, 2]
    assert rows[1]["invalid"] == "nose, left_eye, right_eye"


def test_cluster_needs_enough_vectors():
    rng = np.random.default_rng(0)
    _, keypoints, boxes = _plant(rng, (1, 0, 0))
    with pytest.raises(ValueError, match="only 2 pose vectors .* for k=3"):
        cluster_templates(keypoints, boxes, k=3)


# ------------------------------------------------------------------------------------- CLI
def test_cli_templates_on_real_samples(coco_mini, coco_sample, tmp_path):
    out = tmp_path / "learned.json"
    result = CliRunner(**_RUNNER_KWARGS).invoke(
        main, ["templates", "--ann", str(coco_mini), "--ann", str(coco_sample), "-k", "3",
               "--out", str(out), "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    learned = load_templates(out)
    assert len(learned) == 3 and len(rows) == 3
    assert sorted(r["nearest_official"] for r in rows) == ["T0", "T1", "T2"]
    assert all(r["mean_dist"] < 0.1 for r in rows)


def test_cli_templates_bad_input_is_one_line(tmp_path):
    bad = tmp_path / "broken.json"
    bad.write_text("{")
    result = CliRunner(**_RUNNER_KWARGS).invoke(
        main, ["templates", "--ann", str(bad), "--out", str(tmp_path / "t.json")])
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and str(bad) in lines[0]
    assert "Traceback" not in result.output
    assert not (tmp_path / "t.json").exists()
