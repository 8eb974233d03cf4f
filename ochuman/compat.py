"""A pycocotools-shaped facade: switch an existing script by changing one import.

    from ochuman.compat import COCO, COCOeval     # was: from pycocotools.coco / .cocoeval

    gt = COCO("instances_val2017.json")
    dt = gt.loadRes("detections.json")
    E = COCOeval(gt, dt, "segm")
    E.params.catIds = [1]                          # Params as in pycocotools
    E.evaluate(); E.accumulate(); E.summarize()
    E.stats, E.eval["precision"]                   # same numbers, same shapes

``COCO`` and ``COCOeval`` subclass pycocotools' classes and keep their attributes and
methods. The usual script takes the compiled paths of ``ochuman eval``: ``COCO(path)`` splits
the file into its top-level values and builds ``imgs`` and ``cats`` at once, ``dataset``,
``anns``, ``imgToAnns`` and ``catToImgs`` when one of them is first read; ``loadRes(path)``
keeps the compiled scanner's columns of a results file (:func:`ochuman.scan.scan_results`,
pycocotools' derived fields as ``ochuman eval`` derives them) and builds the results' index
only when it is read; ``loadRes(list)`` (torchvision's, detectron2's and mmdet's call) reads
the records' fields into columns, the index too built only when read (the records are the
caller's, as in pycocotools' index); ``evaluate()`` takes its columns from there (ground truth: a typed
decode of just the fields it evaluates, polygons rasterised by the compiled core), or from the
index dicts once a script has read them, or for inputs outside those shapes (the general
path, with its one-line errors). ``evaluate()`` does the IoU and matching work in the compiled
core; ``evalImgs`` (pycocotools' per-image dicts, layout (catIds, areaRng, imgIds)), ``ious``,
``_gts`` and ``_dts`` are filled from it when first read. ``accumulate()`` reads ``evalImgs``,
``params`` and ``_paramsEval`` as pycocotools does, so that clients that merge ``evalImgs``
of several ``evaluate()`` calls (torchvision's ``CocoEvaluator``) get pycocotools' numbers;
it takes the compiled path when nothing was read or changed since ``evaluate()``.
What pycocotools' ``evaluate()`` writes into the annotations it reads (a mask evaluation's
masks as compressed RLE, the ground truth's ``ignore`` and ``_ignore``) is written too: at once
into an index that exists, else when the index is built. Files are kept as they were read (as
pycocotools reads them at once): a private copy the system makes and this process maps, else
their bytes. ``loadRes`` derives ``area``, ``bbox``, ``segmentation`` and ``id`` as pycocotools does,
deciding by the first record; where pycocotools raises, a one-line :class:`ResultsError` that
is also the exception type pycocotools raises there (``KeyError``, ``TypeError``, ...). Values of
another type are read by pycocotools' rules: an ``iscrowd`` of 0.5 or "0" is an ignore region
(``bool``) but no crowd (``int``), -1 or 256 overflow its IoU's uint8; a ``num_keypoints`` of
0.5, "0" or null ignores no one (only ``== 0`` does); a string or null area or score raises.
``params`` are read as pycocotools reads them: any number of ``maxDets`` and area ranges, NaN
or unsorted thresholds, and where it cannot compute (a float in ``maxDets``, ``iouThrs`` or
``kpt_oks_sigmas`` given as a list, ``accumulate()`` before ``evaluate()``, an unreadable,
non-UTF-8, non-JSON or byte-order-marked file) the same exception type is raised, in one line.
A ``COCOeval`` copied (``copy.deepcopy``, ``pickle``) after ``evaluate()`` carries pycocotools'
filled attributes (``evalImgs``, ``ious``, ``_gts``, ``_dts``) and accumulates from them.

Differences: ``summarize()`` prints through ``print_function`` (the one place this package
prints; pass another function to silence or redirect it), ``evaluate()``/``accumulate()``
print nothing, ``loadRes`` leaves the caller's records unchanged (and takes a ``Path`` too),
and an RLE whose size differs from its image, or whose counts do not cover it, is refused
naming its record (pycocotools computes with it), as are an annotation id that is no int64
integer (0.5, "1", 2 ** 70; image ids are taken), a category id beyond int64 and keypoints of
another count than ``kpt_oks_sigmas`` (pycocotools reads 50 numbers as 17 joints), as are
``kpt_oks_sigmas`` of more than one dimension (it broadcasts (17, 1) against the joints: OKS
above 1), a ``maxDets`` of None (it slices with it) or below 0 and a polygon coordinate beyond
+-429496729, NaN or infinite, a box-derived one included (its rasteriser overflows a C int
there: it never returns on some, draws an undefined mask on others). A results record changed
between ``loadRes`` and ``evaluate()`` may be evaluated otherwise than by pycocotools: both
read some fields at one step and some at the other, not the same ones (here ids and the field
the first record derives from at ``loadRes``); change records before ``loadRes``. A keypoint
written in a file as an integer beyond 2 ** 64 is read as a float (pycocotools raises). With ``useCats=0``
keypoints are pooled over ``catIds`` as segm and bbox are (pycocotools' ``computeOks``
ignores ``useCats``, finds no pairs and reports every keypoints AP as 0 there).
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import datetime
import io
import json
import mmap
import os
import stat
import threading
from collections import defaultdict
from typing import Callable, Optional, TypedDict, Union

import msgspec
import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO as _PycocotoolsCOCO
from pycocotools.cocoeval import COCOeval as _PycocotoolsCOCOeval
from pycocotools.cocoeval import Params

from ochuman import _evalcore
from ochuman.errors import FormatError, OCHumanError, ResultsError
from ochuman.keypoints import COCO_OKS_SIGMAS
from ochuman.masks import PolygonTable, check_drawable, polygon_masks
from ochuman.parallel import worker_count
from ochuman.rle import list_strings, pack_strings
from ochuman.eval.accumulation import accumulate as _accumulate
from ochuman.eval.annotations import Annotations, MaskTable
from ochuman.eval.blocks import _sorted_unique, make_blocks, positions
from ochuman.eval.matching import Variant, base_state, match, variant_states
from ochuman.eval.params import EvalParams
from ochuman.eval.results import (HAS_BBOX, HAS_KEYPOINTS, HAS_SEGMENTATION, NUM_KEYPOINT_VALUES,
                                   masks_are_valid)
from ochuman.eval.results import _scanned_detections as scanned_detections
from ochuman.eval.states import GtState
from ochuman.eval.summary import summarize as _summarize_arrays
from ochuman.scan import coco_members, copy_mask_strings, scan_results, scan_results_piecewise, snapshot_file

__all__ = ["COCO", "COCOeval", "Params", "MissingFieldError", "FieldTypeError", "FieldIndexError",
           "FieldOverflowError", "UnknownImageError", "NotAListError", "EmptyResultsError", "KeypointCountError",
           "NotJSONError", "NotUTF8Error", "NotAnObjectError", "UnreadableFileError", "FileMissingError", "FolderGivenError",
           "FileAccessError", "NotEvaluatedError", "ParamsTypeError", "ParamsAttributeError", "ParamsIndexError", "ParamsValueError",
           "UnknownIouTypeError"]


class MissingFieldError(ResultsError, KeyError):
    """A record lacks a field or key pycocotools reads (it raises ``KeyError`` there)."""

    __str__ = Exception.__str__


class FieldTypeError(ResultsError, TypeError):
    """A field holds what pycocotools cannot use there (it raises ``TypeError``)."""


class FieldIndexError(ResultsError, IndexError):
    """A field holds fewer values than pycocotools indexes (it raises ``IndexError``)."""


class FieldOverflowError(ResultsError, OverflowError):
    """A field holds a number beyond the C type pycocotools converts it to (``OverflowError``)."""


def _error_like(err: BaseException) -> type:
    """The one-line error class that is also ``err``'s type, for an ``err`` that pycocotools'
    code raises on the same value (a ``ValueError``: :class:`ResultsError` itself)."""
    for kind, ours in ((KeyError, MissingFieldError), (IndexError, FieldIndexError),
                       (OverflowError, FieldOverflowError), (TypeError, FieldTypeError)):
        if isinstance(err, kind):
            return ours
    return ResultsError


class UnknownImageError(ResultsError, AssertionError):
    """Results name images the ground truth lacks (pycocotools asserts)."""


class NotAListError(ResultsError, AssertionError):
    """Results that are not a list of records (pycocotools asserts)."""


class EmptyResultsError(ResultsError, IndexError):
    """An empty results list (pycocotools' ``loadRes`` raises ``IndexError``)."""


class KeypointCountError(ResultsError):
    """Keypoints whose joint count differs from ``params.kpt_oks_sigmas`` (a ``ValueError``,
    as numpy's broadcasting error in pycocotools)."""


class NotJSONError(FormatError):
    """A file that is not JSON (pycocotools' ``json.load`` raises a ``ValueError``)."""


class NotUTF8Error(NotJSONError, UnicodeDecodeError):
    """A file whose bytes are not UTF-8 (pycocotools' ``open`` decodes it as text:
    ``UnicodeDecodeError``, its fields those of the bytes refused)."""

    def __init__(self, message: str, err: UnicodeDecodeError):
        UnicodeDecodeError.__init__(self, err.encoding, bytes(err.object[err.start:err.end]), 0,
                                    err.end - err.start, err.reason)
        self.message = message

    def __str__(self) -> str:
        return self.message


class NotAnObjectError(FormatError, AssertionError):
    """An annotation file whose top level is no JSON object (pycocotools asserts)."""


class UnreadableFileError(OCHumanError, OSError):
    """A file that cannot be opened or read (``OSError``, as ``open`` raises in pycocotools;
    the three below for the subclasses it raises most)."""


class FileMissingError(UnreadableFileError, FileNotFoundError):
    """No file at the path given."""


class FolderGivenError(UnreadableFileError, IsADirectoryError):
    """A folder given where a file is read."""


class FileAccessError(UnreadableFileError, PermissionError):
    """A file this process may not read."""


def _unreadable(err: OSError) -> type:
    """The one-line error class that is also ``err``'s ``OSError`` subclass (where listed)."""
    for kind, ours in ((FileNotFoundError, FileMissingError), (IsADirectoryError, FolderGivenError),
                       (PermissionError, FileAccessError)):
        if isinstance(err, kind):
            return ours
    return UnreadableFileError


class NotEvaluatedError(OCHumanError, AttributeError):
    """``accumulate()`` before ``evaluate()`` (pycocotools reads ``_paramsEval``, still a dict:
    ``AttributeError``)."""


class ParamsTypeError(OCHumanError, TypeError):
    """A ``params`` value pycocotools cannot compute with (``TypeError``: a float in ``maxDets``
    that it slices with, ``kpt_oks_sigmas`` as a list)."""


class ParamsAttributeError(OCHumanError, AttributeError):
    """A ``params`` attribute pycocotools reads is missing (``kpt_oks_sigmas`` where ``iouType``
    was set to keypoints after ``Params`` was made for boxes)."""


class ParamsIndexError(OCHumanError, IndexError):
    """``params`` whose values pycocotools indexes past: in ``summarize`` (fewer than three
    ``maxDets`` for segm and bbox, labels and maxDets that select cells of another shape), in
    ``accumulate`` (fewer ``iouThrs`` than were evaluated)."""


class ParamsValueError(OCHumanError, ValueError):
    """``params`` pycocotools raises a ``ValueError`` on (``iouThrs`` as a list in
    ``summarize``), or that are refused here (``kpt_oks_sigmas`` not one number per keypoint)."""


class UnknownIouTypeError(OCHumanError, NameError):
    """``params.iouType`` other than segm, bbox or keypoints at ``evaluate()`` (pycocotools
    then calls a function it never defined: ``NameError``)."""


def _read(path) -> object:
    """A JSON file (NaN and Infinity literals accepted, as Python's json reads them)."""
    return _decode(_file_bytes(path), path)


def _file_bytes(path) -> Union[bytes, memoryview, mmap.mmap]:
    """The file as it is now (a private copy mapped, else read); one that begins with a UTF-8
    byte order mark is refused, as pycocotools' ``json.load`` of the text refuses it."""
    data = snapshot_file(path) or _read_bytes(path)
    if data[:3] == b"\xef\xbb\xbf":
        raise NotJSONError(f"{path}: not valid JSON (Unexpected UTF-8 BOM (decode using utf-8-sig): "
                           "line 1 column 1 (char 0))")
    return data


def _read_bytes(path) -> Union[bytes, memoryview]:
    """The content of a file (read now: later changes to the file change nothing), bytes-like and
    read-only. A regular file is read into a numpy array, whose memory numpy asks the system to
    back with huge pages: 20 ms instead of read()'s 40 ms for a 70 MB file here, most of it the
    first touch of the memory. A file that cannot be read is one line naming it."""
    try:
        with open(path, "rb", buffering=0) as handle:
            status = os.fstat(handle.fileno())
            if not stat.S_ISREG(status.st_mode) or status.st_size == 0:
                return handle.read()
            content = memoryview(np.empty(status.st_size, dtype=np.uint8))
            got = 0
            while got < len(content):
                count = handle.readinto(content[got:])
                if not count:
                    break
                got += count
            more = handle.read()  # (the file grew while it was read)
            return content.toreadonly() if got == len(content) and not more else bytes(content[:got]) + more
    except OSError as err:
        raise _unreadable(err)(f"{path}: cannot read: {err.strerror or err}") from None


def _decode(data, path) -> object:
    """JSON bytes (or a memory map) of the file ``path`` -> Python objects."""
    try:
        return msgspec.json.decode(data)
    except msgspec.DecodeError:
        try:
            return json.loads(bytes(data))
        except UnicodeDecodeError as err:
            raise NotUTF8Error(f"{path}: not valid JSON ({err})", err) from None
        except (ValueError, RecursionError) as err:
            raise NotJSONError(f"{path}: not valid JSON ({err})") from None


@contextlib.contextmanager
def quietly():
    """Run pycocotools quietly: it prints progress lines (loading, ``evaluate``, ``accumulate``);
    the facade prints only in ``summarize``. Python's stdout is sent nowhere inside."""
    with contextlib.redirect_stdout(io.StringIO()):
        yield


_INDEX = ("dataset", "anns", "cats", "imgs", "imgToAnns", "catToImgs")


def _index_attribute(name: str) -> property:
    """One of pycocotools' index attributes, built on the first read (or write) of one that is
    still pending (``_pending_names``)."""
    key = "_index_" + name

    def get(self):
        if self.__dict__.get("_pending") is not None and name in self._pending_names:
            self._materialise()
        return self.__dict__[key]

    def set(self, value):
        if self.__dict__.get("_pending") is not None and name in self._pending_names:
            self._materialise()
        self.__dict__[key] = value

    return property(get, set, doc=f"pycocotools' ``{name}``")


class COCO(_PycocotoolsCOCO):
    """pycocotools ``COCO`` (same index and methods), with a native JSON reader.

    An annotation file builds ``imgs`` and ``cats`` at once and ``dataset``, ``anns``,
    ``imgToAnns`` and ``catToImgs`` when one of them is first read (pycocotools' ``createIndex``
    would not fail on it: checked at load); until then ``COCOeval`` decodes only the fields it
    evaluates. Results read by :meth:`loadRes` from a file or a list build their whole index
    when first read; until then ``COCOeval`` evaluates columns: the compiled scanner's of the
    file, or the list's fields."""

    dataset, anns, cats, imgs, imgToAnns, catToImgs = (_index_attribute(name) for name in _INDEX)

    def __init__(self, annotation_file=None):
        self._pending: Optional[Callable] = None  # fills the pending index attributes when first read
        self._pending_names: tuple = ()
        self._scanned: Optional[Union[_ScannedResults, _ListedResults]] = None  # results columns evaluated while pending
        self._file: Optional[_AnnotationFile] = None  # ground-truth parts evaluated while pending
        # evaluations run from columns while the index was pending: what pycocotools' evaluate()
        # writes into the annotations it reads is written when the index is built (_note_prepared)
        self._prepared_records: dict = {}
        self.dataset, self.anns, self.cats, self.imgs = {}, {}, {}, {}
        self.imgToAnns, self.catToImgs = {}, {}
        self._source = str(annotation_file) if annotation_file is not None else "<annotations>"
        if annotation_file is not None:
            # the file as it is now, kept for the index built later: a private copy mapped, else read
            data = _file_bytes(annotation_file)
            if _AnnotationFile.open(self, data):
                return
            dataset = _decode(data, annotation_file)
            if not isinstance(dataset, dict):
                raise NotAnObjectError(f"{annotation_file}: annotation file format {type(dataset).__name__} not supported")
            self.dataset = dataset
            self.createIndex()

    def _materialise(self) -> None:
        pending, self._pending, self._scanned, self._file = self._pending, None, None, None
        pending(self)
        records, self._prepared_records = self._prepared_records, {}
        for (img_ids, cat_ids, *_, is_gt), (record, rles) in records.items():
            ids = self.getAnnIds(imgIds=img_ids) if cat_ids is None else self.getAnnIds(imgIds=img_ids, catIds=cat_ids)
            _write_prepared(self, self.loadAnns(ids), is_gt, record, rles=rles)

    def _note_prepared(self, record: tuple, is_gt: bool) -> None:
        """Remember an evaluation's writes (:func:`_write_prepared`) for when the index is built:
        the last of each selection of annotations (it rewrites all an earlier one wrote there, so
        a training loop's evaluations keep one each), masks as RLE if any of them evaluated masks."""
        key = (record[0], record[1], record[3], record[4] is None, is_gt)  # (no area range: no _ignore written)
        earlier = self._prepared_records.pop(key, None)
        self._prepared_records[key] = (record, record[2] == "segm" or (earlier is not None and earlier[1]))

    def _top(self, key: str, *default):
        """``self.dataset[key]`` (or ``.get(key, default)``), without building a pending index."""
        if self._file is not None and self._pending is not None:
            return self._file.value(key, *default)
        return self.dataset.get(key, *default) if default else self.dataset[key]

    def getCatIds(self, catNms=[], supNms=[], catIds=[]):  # noqa: N802,N803,B006 (pycocotools' signature)
        if self._file is not None and self._pending is not None and "categories" in self._file.raw:
            # pycocotools reads only dataset["categories"]: the decoded list, no index built
            view = _CategoriesView(self._file.value("categories"))
            return _PycocotoolsCOCO.getCatIds(view, catNms, supNms, catIds)
        return super().getCatIds(catNms, supNms, catIds)

    def __getstate__(self):  # copy.deepcopy, pickle: the index built, no file mapping
        if self._pending is not None:
            self._materialise()
        return self.__dict__

    def createIndex(self):  # noqa: N802 (pycocotools name)
        with quietly():
            try:
                super().createIndex()
            except (KeyError, TypeError) as err:  # a record without a key, or one no key can be
                raise _error_like(err)(f"{self._source}: {_index_problem(self.dataset)}"[:300]) from None

    def loadRes(self, resFile):  # noqa: N802,N803
        """Results (path, list of dicts, or pycocotools' 7-column numpy array) -> a COCO object,
        with pycocotools' derived fields; the caller's records are left unchanged. A file the
        compiled scanner reads, or a list in the usual shapes (where pycocotools would load
        either without error), is kept as columns until its index is read."""
        if self._top("images", _UNSET) is _UNSET:  # pycocotools copies it first
            raise MissingFieldError(f"{getattr(self, '_source', '<annotations>')}: top level: images missing "
                                    "(pycocotools' loadRes copies the ground truth's)")
        if isinstance(resFile, (str, os.PathLike)):
            with _scanning(self._file if self._pending is not None else None):
                lazy = _lazy_results(self, resFile)
            if lazy is not None:
                return lazy
            source, anns = str(resFile), _read(resFile)
        else:
            source = "<results>"
            anns = self.loadNumpyAnnotations(resFile) if isinstance(resFile, np.ndarray) else resFile
            lazy = _listed_results(self, anns, source)
            if lazy is not None:
                return lazy
        res = COCO()
        gt_parts = {key: self._top(key) for key in ("info", "images", "categories") if self._top(key, _UNSET) is not _UNSET}
        _load_results(res, anns, source, set(self.getImgIds()), gt_parts)
        return res


@contextlib.contextmanager
def _scanning(file: Optional["_AnnotationFile"]):
    """The ground truth's annotations scanned (polygons left out, as box and keypoint
    evaluations read them) in a thread while the body runs (reading a results file leaves a CPU
    idle), joined at its end; whatever goes wrong there is left to evaluate() to find again."""
    if file is None or "annotations" not in file.raw or file.columns:
        yield
        return

    def scan() -> None:
        with contextlib.suppress(Exception):
            file.scanned(masks=False)

    thread = threading.Thread(target=scan, daemon=True)
    thread.start()
    try:
        yield
    finally:
        thread.join()


def _in_thread(work: Callable):
    """``work()`` started in a thread; the callable returned waits for it and returns what it
    returned, or raises what it raised."""
    outcome: list = []

    def run() -> None:
        try:
            outcome.append((True, work()))
        except BaseException as err:  # (re-raised in the caller's thread)
            outcome.append((False, err))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()

    def result():
        thread.join()
        done, value = outcome[0]
        if not done:
            raise value
        return value

    return result


def _membership(values: list):
    """``values`` as a set where its items hash (``in`` answers as on the list), else the list."""
    try:
        return set(values)
    except TypeError:
        return values


class _CategoriesView:
    """Stands in for a COCO in pycocotools' ``getCatIds``, which reads ``dataset["categories"]``."""

    def __init__(self, categories):
        self.dataset = {"categories": categories}


class _AnnotationFile:
    """An annotation file split into its top-level values (``msgspec.Raw``), each decoded once,
    when first needed (the same objects end in ``dataset``); ``columns``: what the compiled
    scanner made of the annotations ("scanned", "without polygons", "polygons"); ``data``: the
    file's bytes, or the mapped private copy (:func:`ochuman.scan.snapshot_file`) whose pages
    are let go after each pass over them."""

    def __init__(self, path: str, raw: dict, data=None):
        self.path, self.raw, self.values, self.columns, self.data = path, raw, {}, {}, data

    def _let_go(self) -> None:
        """The mapped copy's pages out of the process (they stay in the page cache)."""
        if isinstance(self.data, mmap.mmap) and hasattr(mmap, "MADV_DONTNEED"):
            self.data.madvise(mmap.MADV_DONTNEED)

    def value(self, key: str, *default):
        if key not in self.raw:
            if default:
                return default[0]
            raise KeyError(key)
        if key not in self.values:
            self.values[key] = msgspec.json.decode(self.raw[key])
        return self.values[key]

    @classmethod
    def open(cls, coco: COCO, data: bytes) -> bool:
        """Set up ``coco`` from the file's bytes with its annotation index pending; False (nothing
        done) where the file is not plain JSON of the usual shape or pycocotools' ``createIndex``
        could fail on it (the caller then loads it eagerly, raising what pycocotools raises)."""
        try:
            split = coco_members(data, masks=False)
            # createIndex's keys (id, image_id, category_id) integers in every annotation: from
            # the scanner's columns (kept for an evaluation; [15]: the keys each annotation has),
            # else read here
            if split is not None and (np.frombuffer(split[2][15], dtype=np.uint16) & _FIELD_CATEGORY_ID).all():
                raw = split[0]
            else:
                split, raw = None, msgspec.json.decode(data, type=dict[str, msgspec.Raw])
                if "annotations" not in raw:
                    return False
                msgspec.json.decode(raw["annotations"], type=list[_AnnotationKeys])
            file = cls(coco._source, raw, data)
            if split is not None:
                file.columns["without polygons"] = split[2]
            imgs = {img["id"]: img for img in file.value("images")} if "images" in raw else {}
            cats = {cat["id"]: cat for cat in file.value("categories")} if "categories" in raw else {}
        except (msgspec.DecodeError, KeyError, TypeError, IndexError):
            return False
        file._let_go()
        coco.imgs, coco.cats = imgs, cats
        coco._file, coco._pending, coco._pending_names = file, file.build_index, ("dataset", "anns", "imgToAnns", "catToImgs")
        return True

    def build_index(self, coco: COCO) -> None:
        """pycocotools' ``createIndex`` for the annotations (``imgs`` and ``cats`` were built at load)."""
        dataset = {key: self.value(key) for key in self.raw}
        anns, img_to_anns, cat_to_imgs = {}, defaultdict(list), defaultdict(list)
        for ann in dataset["annotations"]:
            img_to_anns[ann["image_id"]].append(ann)
            anns[ann["id"]] = ann
        if "categories" in dataset:
            for ann in dataset["annotations"]:
                cat_to_imgs[ann["category_id"]].append(ann["image_id"])
        coco.dataset, coco.anns, coco.imgToAnns, coco.catToImgs = dataset, anns, img_to_anns, cat_to_imgs

    def scanned(self, masks: bool = True) -> Optional[tuple]:
        """The compiled scanner's columns of the annotations (``_evalcore.scan_coco_annotations``),
        once; None when they are not in its shape. masks=False: polygon coordinates may be left
        out (a later call with masks scans them once, and the columns without are let go)."""
        if "scanned" not in self.columns:
            if not masks:
                if "without polygons" not in self.columns:
                    self.columns["without polygons"] = _evalcore.scan_coco_annotations(self.raw["annotations"], True)
                    self._let_go()
                return self.columns["without polygons"]
            self.columns.pop("without polygons", None)
            self.columns["scanned"] = _evalcore.scan_coco_annotations(self.raw["annotations"])
            self._let_go()
        return self.columns["scanned"]

    def evaluated_columns(self, coco: COCO, iou_type: str, img_ids: list, cat_lists: list, use_cats,
                          n_joints: int) -> Optional[Annotations]:
        """With ``useCats``: the annotations :meth:`evaluated` gathers, as the columns ``_columns``
        makes of them, straight from the compiled scanner (no dicts; polygons rasterised from
        numbers); None where they need the dict path, which names any problem: a file not in the
        scanner's shape, ids that repeat, a field the evaluation reads absent or null, a mask
        absent, corrupt or sized for another image, ids asked for that are not integers."""
        if not use_cats or (iou_type == "keypoints" and 3 * n_joints != NUM_KEYPOINT_VALUES):
            return None
        if not all(type(v) is int or isinstance(v, np.integer) for v in [*img_ids, *(c for cats in cat_lists for c in cats)]):
            return None
        scanned = self.scanned(iou_type == "segm") if "annotations" in self.raw else None
        if scanned is None:
            return None
        ann_id, image_id, category_id, crowd = (np.frombuffer(b, dtype=np.int64) for b in scanned[:4])
        if len(_sorted_unique(ann_id)) != len(ann_id):
            return None
        rows = np.arange(len(ann_id))
        try:
            if len(img_ids):  # getAnnIds: image by image of img_ids (sorted, unique), file order inside one
                wanted = np.asarray(img_ids, dtype=np.int64)
                at = np.minimum(np.searchsorted(wanted, image_id), len(wanted) - 1)
                found = wanted[at] == image_id
                rows = rows[found][np.argsort(at[found], kind="stable")]
            rows = rows[np.isin(category_id[rows], np.asarray(cat_lists[0] if cat_lists else [], dtype=np.int64))]
        except OverflowError:
            return None
        needed = _FIELD_CATEGORY_ID | _FIELD_ISCROWD | _FIELD_AREA | _NEEDED_FIELDS[iou_type]
        area = np.frombuffer(scanned[5], dtype=np.float64)[rows]
        if ((np.frombuffer(scanned[15], dtype=np.uint16)[rows] & needed) != needed).any() or np.isnan(area).any():
            return None
        if iou_type != "keypoints" and ((crowd[rows] < 0) | (crowd[rows] > 255)).any():
            return None  # pycocotools' IoU reads iscrowd as uint8 and raises
        n = len(rows)
        bbox = np.frombuffer(scanned[4], dtype=np.float64).reshape(-1, 4)[rows] if iou_type != "segm" else np.zeros((n, 4))
        keypoints = num_keypoints = masks = sizes = None
        if iou_type == "keypoints":
            if not np.frombuffer(scanned[7], dtype=np.uint8)[rows].all():  # a null list
                return None
            keypoints = np.frombuffer(scanned[8], dtype=np.float64).reshape(-1, NUM_KEYPOINT_VALUES)[rows]
            num_keypoints = np.frombuffer(scanned[10], dtype=np.int64)[rows]
        if iou_type == "segm":
            masks, sizes = self._masks(coco, scanned, rows, image_id[rows])
            if masks is None:
                return None
        return Annotations(
            image_id=image_id[rows], category_id=category_id[rows], ann_id=ann_id[rows], bbox=bbox, area=area,
            iscrowd=crowd[rows] != 0, score=np.ones(n), counts=masks, mask_size=sizes, keypoints=keypoints,
            num_keypoints=num_keypoints, masks=masks,
        )

    def _masks(self, coco: COCO, scanned: tuple, rows: np.ndarray, image_ids: np.ndarray) -> tuple:
        """(MaskTable, sizes (N, 2)) of the masks of ``rows`` as ``_rles`` gives them, or
        (None, None) where one needs the dict path (absent, another size than its image's, corrupt)."""
        kind = np.frombuffer(scanned[11], dtype=np.uint8)[rows]
        if (kind == _SEGM_NONE).any():
            return None, None
        image_sizes = {}
        for image in set(image_ids.tolist()):
            record = coco.imgs.get(image)
            if type(record) is not dict or type(record.get("height")) is not int or type(record.get("width")) is not int:
                return None, None
            image_sizes[image] = (record["height"], record["width"])
        sizes = np.array([image_sizes[image] for image in image_ids.tolist()], dtype=np.int64).reshape(-1, 2)
        segm = np.frombuffer(scanned[9], dtype=np.int64).reshape(-1, 4)[rows]
        is_rle = kind != _SEGM_POLYGONS
        if (segm[is_rle, :2] != sizes[is_rle]).any():
            return None, None
        raw = self.raw["annotations"]
        if (kind == _SEGM_RLE).all():  # every mask a string in the file's bytes
            masks = MaskTable(raw, segm[:, 2], segm[:, 3], sizes, raw=True)
        else:
            parts = [(np.arange(len(rows)), MaskTable(raw, np.where(kind == _SEGM_RLE, segm[:, 2], -1), segm[:, 3], sizes,
                                                      raw=True, deferred=True))]
            drawn = np.flatnonzero(kind == _SEGM_POLYGONS)
            if len(drawn):
                if "polygons" not in self.columns:
                    self.columns["polygons"] = PolygonTable.from_counts(scanned[14], scanned[13], scanned[12])
                polygons = self.columns["polygons"].take(rows[drawn])
                if polygons.first_undrawable() is not None:  # the general path names it
                    return None, None
                parts.append((drawn, polygons.masks(sizes[drawn])))
            listed, strings = np.flatnonzero(kind == _SEGM_RLE_LIST), []
            # uncompressed: pycocotools' annToRLE, made from the file's text where the compiled core can
            for k, made in zip(listed.tolist(), list_strings(raw, segm[listed, 2:])):
                if made is not None:
                    strings.append(made)
                    continue
                start, length = segm[k, 2:]
                rle = {"size": segm[k, :2].tolist(), "counts": msgspec.json.decode(bytes(memoryview(raw)[start:start + length]))}
                try:
                    strings.append(coco.annToRLE({"image_id": int(image_ids[k]), "segmentation": rle})["counts"])
                except (TypeError, ValueError, KeyError, IndexError, OverflowError):
                    return None, None
            if strings:
                parts.append((listed, MaskTable.from_strings(strings, sizes[listed])))
            masks = MaskTable.merged(sizes, parts)
        if masks.bad is not None or (masks.totals != sizes[:, 0] * sizes[:, 1]).any():
            return None, None
        return masks, sizes

    def evaluated(self, coco: COCO, iou_type: str, img_ids: list, cat_lists: list, use_cats) -> Optional[tuple[list, list]]:
        """(annotations evaluated, annotations ``_prepare`` reads besides) as pycocotools'
        ``evaluate`` gathers them with ``getAnnIds`` / ``loadAnns``: dicts of only the fields
        the evaluation reads, decoded typed; None where one of them lacks or mistypes one (the
        caller then builds the index and reads it as pycocotools does) or ids repeat."""
        try:
            anns = msgspec.json.decode(self.raw["annotations"], type=list[_EVALUATED_FIELDS[iou_type]])
        except msgspec.DecodeError:
            return None
        if len({ann["id"] for ann in anns}) != len(anns):
            return None
        if not len(img_ids):
            gathered = list(range(len(anns)))
        else:
            by_image = defaultdict(list)
            for i, ann in enumerate(anns):
                by_image[ann["image_id"]].append(i)
            gathered = [i for img in img_ids for i in by_image.get(img, ())]
        evaluated = [anns[i] for cats in cat_lists for wanted in [_membership(cats)]
                     for i in gathered if anns[i]["category_id"] in wanted]
        if use_cats:
            return evaluated, []
        chosen = {ann["id"] for ann in evaluated}
        return evaluated, [anns[i] for i in gathered if anns[i]["id"] not in chosen]


#: the category_id bit of the compiled scanner's ``fields`` column (evalcore.h AnnotationColumns)
_FIELD_CATEGORY_ID = 8


class _AnnotationKeys(msgspec.Struct):
    """What pycocotools' ``createIndex`` reads of every annotation."""

    id: int
    image_id: int
    category_id: int


class _Rle(TypedDict):
    size: list
    counts: Union[str, list]


class _BoxFields(TypedDict):
    id: int
    image_id: int
    category_id: int
    area: float
    iscrowd: float
    bbox: list[float]


class _MaskFields(TypedDict):
    id: int
    image_id: int
    category_id: int
    area: float
    iscrowd: float
    segmentation: Union[list[list[float]], _Rle]


class _KeypointFields(TypedDict):
    id: int
    image_id: int
    category_id: int
    area: float
    iscrowd: float
    bbox: list[float]
    keypoints: list[float]
    num_keypoints: int


_EVALUATED_FIELDS = {"bbox": _BoxFields, "segm": _MaskFields, "keypoints": _KeypointFields}

# The compiled scanner's bits of the keys an annotation has (evalcore.h AnnotationColumns.fields)
# and its kinds of segmentation (SEGM_*)
_FIELD_CATEGORY_ID, _FIELD_ISCROWD, _FIELD_AREA, _FIELD_KEYPOINTS, _FIELD_SEGMENTATION, _FIELD_NUM_KEYPOINTS = (
    8, 16, 32, 128, 256, 512)
_NEEDED_FIELDS = {"bbox": 0, "segm": _FIELD_SEGMENTATION, "keypoints": _FIELD_KEYPOINTS | _FIELD_NUM_KEYPOINTS}
_SEGM_NONE, _SEGM_RLE, _SEGM_RLE_LIST, _SEGM_POLYGONS = 0, 1, 2, 3


def _load_results(res: COCO, anns, source: str, known: set, gt_dataset: dict) -> None:
    """pycocotools' ``loadRes`` of the records ``anns`` into ``res``; known: the ground truth's
    image ids; gt_dataset: its ``dataset`` (info, images and categories are copied)."""
    if type(anns) is not list:
        raise NotAListError(f"{source}: top level: results are not a list of objects "
                            f"(expected a list, got {type(anns).__name__})")
    anns = [_record_copy(ann, source, i) for i, ann in enumerate(anns)]
    _check_keys(anns, source, "image_id")
    for i, ann in enumerate(anns):
        if ann["image_id"] not in known:
            raise UnknownImageError(f"{source}: record {i} (image_id {ann['image_id']!r}): unknown image_id: "
                                    "results do not correspond to the ground truth's images")
    if not anns:
        raise EmptyResultsError(f"{source}: top level: no results (pycocotools' loadRes needs at least one record)")
    res._source = source
    res.dataset["info"] = copy.deepcopy(gt_dataset.get("info", {}))
    res.dataset["images"] = list(gt_dataset["images"])
    first = anns[0]
    if "caption" in first:
        with_results = {ann["image_id"] for ann in anns}
        res.dataset["images"] = [img for img in res.dataset["images"] if img["id"] in with_results]
        for i, ann in enumerate(anns):
            ann["id"] = i + 1
    elif "categories" not in gt_dataset:
        raise MissingFieldError(f"{source}: the ground truth has no categories (pycocotools' loadRes copies them)")
    elif "bbox" in first and first["bbox"] != []:
        res.dataset["categories"] = copy.deepcopy(gt_dataset["categories"])
        _derive_from_boxes(anns, source)
    elif "segmentation" in first:
        res.dataset["categories"] = copy.deepcopy(gt_dataset["categories"])
        _derive_from_masks(anns, source)
    elif "keypoints" in first:
        res.dataset["categories"] = copy.deepcopy(gt_dataset["categories"])
        _derive_from_keypoints(anns, source)
    else:
        raise MissingFieldError(f"{source}: record 0: none of bbox, segmentation, keypoints or caption "
                                "(pycocotools' loadRes decides by the first record what the results are)")
    if "categories" in res.dataset:  # createIndex groups the records by category then
        _check_keys(anns, source, "category_id")
    res.dataset["annotations"] = anns
    res.createIndex()


def _index_problem(dataset: dict) -> str:
    """Where pycocotools' ``createIndex`` fails on ``dataset``: the first record, in its order,
    that is no object, lacks a key or holds one that cannot key a dict."""
    checks = [("annotations", ("image_id", "id")), ("images", ("id",)), ("categories", ("id",))]
    if "annotations" in dataset and "categories" in dataset:
        checks.append(("annotations", ("category_id",)))
    for part, names in checks:
        records = dataset.get(part)
        for k, record in enumerate(records if isinstance(records, list) else []):
            if not isinstance(record, dict):
                return f"{part}[{k}]: expected an object, got {type(record).__name__}"
            for name in names:
                if name not in record:
                    return f"{part}[{k}]: {name} missing (pycocotools' index reads it)"
                try:
                    hash(record[name])
                except TypeError:
                    return f"{part}[{k}]: {name}: {record[name]!r} cannot key pycocotools' index"
    return "pycocotools' index cannot be built (a top-level value that is no list of objects)"


def _check_keys(anns: list, source: str, name: str) -> None:
    """Every record's ``name`` can key a dict (pycocotools' index; it raises ``KeyError`` where
    one is missing, ``TypeError`` where one is a list or an object)."""
    for i, ann in enumerate(anns):
        if name not in ann:
            raise MissingFieldError(f"{_where(source, i, ann)}: {name} missing (pycocotools' index reads it)")
        try:
            hash(ann[name])
        except TypeError:
            raise FieldTypeError(f"{source}: record {i}: {name}: {ann[name]!r} cannot key pycocotools' "
                                 "index"[:300]) from None


class _ScannedResults:
    """A results file as the compiled scanner read it (:func:`ochuman.scan.scan_results`), and
    the ground truth's images at ``loadRes`` (the results' own ``images``, as pycocotools copies
    them)."""

    def __init__(self, data, scanned: tuple, images: list):
        self.data, self.scanned, self.images = data, scanned, images
        self.masks: Optional[MaskTable] = None  # made at loadRes (masks-only results), for the next evaluation

    def detections(self, iou_type: str, n_joints: int) -> Optional[Annotations]:
        """Detection columns with pycocotools' derived fields, or None where the records need
        the general path (fields the evaluation reads missing, masks sized for other images, ...).
        Their masks, if read, are decoded from a copy of the strings (not from the file's pages:
        peak memory) that lives as long as the columns' mask table: an evaluation lets it go
        once its IoUs are computed, the next one copies again."""
        if iou_type == "keypoints" and n_joints * 3 != NUM_KEYPOINT_VALUES:
            return None
        flags = np.frombuffer(self.scanned[3], dtype=np.uint8)
        by_mask = len(flags) and flags[0] & (HAS_BBOX | HAS_SEGMENTATION) == HAS_SEGMENTATION
        images = _image_columns(self.images, iou_type == "segm" or by_mask)
        if images is None:
            return None
        masks, self.masks = self.masks, None
        scanned, strings = self.scanned, None
        if (iou_type == "segm" or by_mask) and masks is None and isinstance(self.data, mmap.mmap) and scanned[5]:
            strings, moved = copy_mask_strings(self.data, scanned[5])
            scanned = (*scanned[:5], moved, scanned[6])
        with np.errstate(over="ignore"):  # w * h past float64 is inf, silently, as in pycocotools
            return scanned_detections(self.data, scanned, *images, None, iou_type, defer_mask_checks=True,
                                      masks=masks, mask_strings=strings)


def _image_columns(images: list, with_sizes: bool) -> Optional[tuple[np.ndarray, np.ndarray]]:
    """The results' images (the ground truth's ``images`` list, a later one of an id wins) as
    ids (I,) int64 and sizes (I, 2) [h, w] (zeros unless ``with_sizes``: masks are read); None
    where they are not integers."""
    by_id = {}
    for img in images:
        by_id[img["id"]] = img
    try:
        ids = np.fromiter(by_id, dtype=np.int64, count=len(by_id))
        sizes = (np.array([[img["height"], img["width"]] for img in by_id.values()], dtype=np.int64).reshape(-1, 2)
                 if with_sizes else np.zeros((len(ids), 2), dtype=np.int64))
    except (KeyError, TypeError, ValueError, OverflowError):
        return None
    return ids, sizes


def _numbers(values: list, width: Optional[int] = None, kinds: str = "biuf") -> Optional[np.ndarray]:
    """``values`` (N numbers, or N rows of ``width`` numbers) as an array, or None where one is
    not a number of ``kinds`` (numpy's dtype kinds), or a row has another length. Python floats,
    ints and bools in lists are converted by the compiled core (float64, the dtype every column
    of numbers is evaluated in: np.array takes 55 ms for 50k rows of 51 keypoints, it 10 ms);
    anything else as numpy reads it."""
    if kinds == "biuf" and type(values) is list and values:  # (numpy reads [] as no rows)
        out = np.empty(len(values) * (width or 1))
        if _evalcore.float_rows(values, width or 0, out):
            return out.reshape(-1, width) if width else out
    try:
        array = np.array(values)
    except (ValueError, TypeError, OverflowError):
        return None
    shape = (len(values),) if width is None else (len(values), width)
    return array if array.dtype.kind in kinds and array.shape == shape else None


class _ListedResults:
    """A results list (``loadRes(list)``, torchvision's and detectron2's way) as columns: image
    and category ids and the field record 0 makes pycocotools derive from (read at ``loadRes``,
    where pycocotools would fail on them), the others read from the records when an evaluation
    first needs them. The records are the caller's, as in pycocotools' index."""

    def __init__(self, anns: list, images: list, image_ids: np.ndarray, category_ids: np.ndarray, kind: int,
                 derived_from: Optional[np.ndarray], masks: Optional["_ListedMasks"] = None):
        self.anns, self.images, self.kind = anns, images, kind
        self.image_ids, self.category_ids = image_ids, category_ids
        self.fields: dict = {}  # field -> its column (None: not in the fast path's shape)
        if kind == HAS_BBOX:
            self.fields["bbox"] = derived_from
        elif kind == HAS_SEGMENTATION:
            self.fields["segmentation"] = masks
        else:
            self.fields["keypoints"] = derived_from

    @classmethod
    def read(cls, anns: list, images: list, universe: np.ndarray) -> Optional["_ListedResults"]:
        """The columns pycocotools' ``loadRes`` reads of ``anns``, or None where a record is not
        in the usual shape or pycocotools would fail on it (the general path then names it).
        universe: the ground truth's image ids, sorted."""
        if not anns or set(map(type, anns)) != {dict}:
            return None
        try:
            image_ids = _numbers([ann["image_id"] for ann in anns], kinds="i")
            category_ids = _numbers([ann["category_id"] for ann in anns], kinds="i")
        except KeyError:
            return None
        if image_ids is None or category_ids is None or not len(universe) or not (
                universe[np.minimum(np.searchsorted(universe, image_ids), len(universe) - 1)] == image_ids).all():
            return None
        first, masks = anns[0], None
        box = first.get("bbox", [])
        if "caption" in first or type(box) is not list:  # (pycocotools compares it with [])
            return None
        if box:  # pycocotools: a bbox and not []
            kind, derived_from = HAS_BBOX, _numbers([ann.get("bbox") for ann in anns], 4)
        elif "segmentation" in first:
            kind, derived_from = HAS_SEGMENTATION, None
            masks = _ListedMasks.read([ann.get("segmentation") for ann in anns])
            if masks is None or not masks.valid():
                return None  # pycocotools' loadRes computes the areas: the general path names the bad one
        elif "keypoints" in first:
            values = first["keypoints"]
            width = len(values) if type(values) is list else 0
            kind, derived_from = HAS_KEYPOINTS, (_numbers([ann.get("keypoints") for ann in anns], width)
                                                 if width and width % 3 == 0 else None)
        else:
            return None
        if kind != HAS_SEGMENTATION and derived_from is None:
            return None
        return cls(anns, images, image_ids, category_ids, kind, derived_from, masks)

    def column(self, field: str):
        """The records' ``field`` as a column, read once: scores (N,), boxes (N, 4), keypoints
        (N, 3K), masks (:class:`_ListedMasks`); None where a record lacks it or holds another shape."""
        if field not in self.fields:
            values = [ann.get(field) for ann in self.anns]
            if field == "segmentation":
                self.fields[field] = _ListedMasks.read(values)
            elif field == "keypoints":
                width = len(values[0]) if type(values[0]) is list else 0
                self.fields[field] = _numbers(values, width) if width else None
            else:
                self.fields[field] = _numbers(values, 4 if field == "bbox" else None)
        return self.fields[field]

    def detections(self, iou_type: str, n_joints: int) -> Optional[Annotations]:
        """Detection columns with pycocotools' derived fields, or None where the records need
        the general path."""
        n = len(self.anns)
        scores = self.column("score")
        images = _image_columns(self.images, iou_type == "segm" or self.kind == HAS_SEGMENTATION)
        if scores is None or images is None:
            return None
        flags = np.full(n, self.kind, dtype=np.uint8)
        bbox, keypoints, buffer, segm = np.zeros((n, 4)), b"", b"", b""
        if self.kind == HAS_BBOX:
            bbox = self.fields["bbox"]
        elif self.kind == HAS_SEGMENTATION and iou_type == "bbox":  # loadRes keeps a record's own bbox
            given = np.array(["bbox" in ann for ann in self.anns])
            if given.any():
                boxes = _numbers([ann["bbox"] for ann, g in zip(self.anns, given) if g], 4)
                if boxes is None:
                    return None
                bbox[given] = boxes
                flags[given] |= HAS_BBOX
        masks = None
        if iou_type == "segm" or self.kind == HAS_SEGMENTATION:
            masks = self.column("segmentation")
            if masks is None:
                return None
            flags |= HAS_SEGMENTATION
            buffer, segm = masks.table.buffer, masks.rows
        joints = n_joints
        if iou_type == "keypoints" or self.kind == HAS_KEYPOINTS:
            keypoints = self.column("keypoints")
            if keypoints is None:
                return None
            flags |= HAS_KEYPOINTS
            if iou_type != "keypoints":  # the box and area come from however many joints they have
                joints = keypoints.shape[1] // 3
        columns = (self.image_ids, self.category_ids, scores, flags, bbox, segm, keypoints)
        columns = tuple(memoryview(np.ascontiguousarray(c, dtype=dtype)).toreadonly().cast("B") if len(c) else b""
                        for c, dtype in zip(columns, _SCANNED_DTYPES))  # the scanner's columns' shape, no copy
        with np.errstate(over="ignore"):  # w * h past float64 is inf, silently, as in pycocotools
            return scanned_detections(buffer, columns, *images, None, iou_type, defer_mask_checks=True,
                                      keypoint_count=joints, raw=False, masks=masks and masks.table,
                                      rles=masks and masks.rles)


# the dtypes of the compiled scanner's results columns (ochuman.scan.scan_results)
_SCANNED_DTYPES = (np.int64, np.int64, np.float64, np.uint8, np.float64, np.int64, np.float64)


class _ListedMasks:
    """The records' compressed RLEs (``rles``: the dicts themselves) as a :class:`MaskTable`
    (statistics computed when first needed, then kept) and as the compiled scanner's rows (N, 4)
    int64 [h, w, start, length] into the table's buffer."""

    def __init__(self, rles: list, table: MaskTable, rows: np.ndarray):
        self.rles, self.table, self.rows = rles, table, rows

    @classmethod
    def read(cls, segmentations: list) -> Optional["_ListedMasks"]:
        """From ``{"size": [h, w], "counts": str}`` dicts; None where one is anything else."""
        if set(map(type, segmentations)) != {dict}:
            return None
        counts = [seg.get("counts") for seg in segmentations]
        sizes = _numbers([seg.get("size") for seg in segmentations], 2, kinds="i")
        if set(map(type, counts)) != {str} or sizes is None:
            return None
        buffer, starts, lengths = pack_strings(counts)
        table = MaskTable(buffer, starts, lengths, sizes, deferred=True)
        return cls(segmentations, table, np.column_stack([sizes, starts, lengths]).astype(np.int64))

    def valid(self) -> bool:
        """Every counts string decodes and covers its mask's h x w pixels."""
        table = self.table
        return table.bad is None and bool((table.totals == table.sizes[:, 0] * table.sizes[:, 1]).all())


def _lazy_results(gt: COCO, path) -> Optional[COCO]:
    """``gt.loadRes(path)`` as columns (:class:`_ScannedResults`), its index built when first read;
    None when the file needs the general path: not in the scanner's shape, or records
    pycocotools would refuse or read differently (it then names the problem)."""
    source = str(path)
    # the file as it is now (the columns and the index outlive this call, the file may change):
    # a private copy mapped and scanned in pieces, each let go once scanned (its pages stay in
    # the system's page cache; masks are decoded from there), else read into memory
    data = _file_bytes(path)
    if isinstance(data, mmap.mmap) and hasattr(mmap, "MADV_DONTNEED"):
        scanned = scan_results_piecewise(data, None, hash_file=False, threads=worker_count(), copy_masks=False)[0]
    else:
        scanned = scan_results(data)
    if scanned is None or gt._top("categories", _UNSET) is _UNSET:
        return None
    keys = np.frombuffer(scanned[0], dtype=np.int64)
    flags = np.frombuffer(scanned[3], dtype=np.uint8)
    known = list(gt.imgs)
    universe = _image_id_universe(known)
    if len(keys) == 0 or universe is None or not len(universe) \
            or not (universe[np.minimum(np.searchsorted(universe, keys), len(universe) - 1)] == keys).all():
        return None
    first = int(flags[0])
    if first & HAS_BBOX:
        needed = HAS_BBOX
    elif first & HAS_SEGMENTATION:
        needed = HAS_SEGMENTATION  # every record a compressed RLE; its area is read now
    elif first & HAS_KEYPOINTS:
        needed = HAS_KEYPOINTS
    else:
        return None
    if not ((flags & needed) != 0).all():
        return None
    images = list(gt._top("images"))
    lazy = _ScannedResults(data, scanned, images)
    if needed != HAS_BBOX:  # area and box derived from the masks or keypoints: check them now
        checked = lazy.detections("segm" if needed == HAS_SEGMENTATION else "keypoints", len(COCO_OKS_SIGMAS))
        if checked is None:
            return None
        lazy.masks = checked.masks
    return _pending_results(gt, source, lazy, known, lambda: _decode(data, path))


def _image_id_universe(known: list) -> Optional[np.ndarray]:
    """The ground truth's image ids (``list(gt.imgs)``) sorted as int64, or None where one is
    no int or lies beyond int64 (the general path takes such ids as pycocotools does)."""
    if not all(type(k) is int for k in known):
        return None
    try:
        return np.sort(np.fromiter(known, dtype=np.int64, count=len(known)))
    except OverflowError:
        return None


def _listed_results(gt: COCO, anns, source: str) -> Optional[COCO]:
    """``gt.loadRes(anns)`` of a list as columns (:class:`_ListedResults`), its index built when
    first read; None when the records need the general path (see :meth:`_ListedResults.read`)."""
    known = list(gt.imgs)
    universe = _image_id_universe(known)
    if type(anns) is not list or gt._top("categories", _UNSET) is _UNSET or universe is None:
        return None
    anns = list(anns)  # the records themselves are shared, as in pycocotools' index
    lazy = _ListedResults.read(anns, list(gt._top("images")), universe)
    if lazy is None:
        return None
    return _pending_results(gt, source, lazy, known, lambda: anns)


def _pending_results(gt: COCO, source: str, lazy, known: list, records: Callable[[], list]) -> COCO:
    """A results COCO evaluated from ``lazy``'s columns; its index (pycocotools' ``loadRes`` of
    ``records()``) built when first read."""
    images = lazy.images
    info, categories = copy.deepcopy(gt._top("info", {})), copy.deepcopy(gt._top("categories"))
    res = COCO()
    res._source = source

    def build(coco: COCO) -> None:
        coco.dataset, coco.anns, coco.cats, coco.imgs, coco.imgToAnns, coco.catToImgs = {}, {}, {}, {}, {}, {}
        _load_results(coco, records(), source, set(known), {"info": info, "images": images, "categories": categories})

    res._pending, res._scanned, res._pending_names = build, lazy, _INDEX
    return res


def _where(source: str, i: int, ann: dict) -> str:
    return f"{source}: record {i} (image_id {ann.get('image_id')!r})"


def _record_copy(ann, source: str, i: int) -> dict:
    if not isinstance(ann, dict):
        raise FieldTypeError(f"{source}: record {i}: expected an object, got {type(ann).__name__}")
    if "image_id" not in ann:
        raise MissingFieldError(f"{source}: record {i}: image_id missing")
    return dict(ann)


def _field(ann: dict, name: str, source: str, i: int, why: str):
    if name not in ann:
        raise MissingFieldError(f"{_where(source, i, ann)}: {name} missing ({why})")
    return ann[name]


def _derive_from_boxes(anns: list, source: str) -> None:
    """pycocotools' rule when record 0 has a non-empty bbox: every record needs one; area
    = w * h; a record without ``segmentation`` gets its box as a polygon (kept as it is
    otherwise, even null)."""
    why = "record 0 has a bbox, so pycocotools' loadRes reads every record's"
    for i, ann in enumerate(anns):
        bb = _field(ann, "bbox", source, i, why)
        try:
            x1, x2, y1, y2 = bb[0], bb[0] + bb[2], bb[1], bb[1] + bb[3]
            area = bb[2] * bb[3]
        except (TypeError, IndexError, KeyError) as err:
            raise _error_like(err)(f"{_where(source, i, ann)}: bbox: expected [x, y, w, h], got {bb!r}"[:300]) from None
        if "segmentation" not in ann:
            ann["segmentation"] = [[x1, y1, x1, y2, x2, y2, x2, y1]]
        ann["area"] = area
        ann["id"] = i + 1
        ann["iscrowd"] = 0


def _derive_from_masks(anns: list, source: str) -> None:
    """pycocotools' rule when record 0 has a ``segmentation`` and no bbox: every record needs a
    compressed RLE; area = mask area; bbox = the mask's box unless the record has one."""
    why = "record 0 has a segmentation and no bbox, so pycocotools' loadRes reads every record's"
    counts, sizes = [], []
    for i, ann in enumerate(anns):
        seg = _field(ann, "segmentation", source, i, why)
        value = seg.get("counts") if isinstance(seg, dict) else None
        size = seg.get("size") if isinstance(seg, dict) else None
        if not isinstance(value, (str, bytes)) or not _is_size(size):
            raise FieldTypeError(f"{_where(source, i, ann)}: segmentation: pycocotools' loadRes takes only compressed "
                                 f"RLE ({{'size': [h, w], 'counts': str}}) when record 0 has no bbox, got {_kind(seg)}")
        counts.append(value)
        sizes.append([int(size[0]), int(size[1])])
    masks = MaskTable.from_strings(counts, np.array(sizes, dtype=np.int64).reshape(-1, 2))
    bad = masks.bad[0] if masks.bad is not None else next(
        iter(np.flatnonzero(masks.totals != masks.sizes[:, 0] * masks.sizes[:, 1])), None)
    if bad is not None:
        i = int(bad)
        raise ResultsError(f"{_where(source, i, anns[i])}: segmentation: corrupt RLE counts string "
                           "(its runs do not cover height x width)")
    areas = masks.areas.astype(np.uint32)  # pycocotools' mask.area gives uint32
    boxes = None
    for i, ann in enumerate(anns):
        ann["area"] = areas[i]
        if "bbox" not in ann:
            if boxes is None:
                boxes = mask_utils.toBbox([{"size": s, "counts": c} for s, c in zip(sizes, counts)]).reshape(-1, 4)
            ann["bbox"] = boxes[i].copy()
        ann["id"] = i + 1
        ann["iscrowd"] = 0


def _derive_from_keypoints(anns: list, source: str) -> None:
    """pycocotools' rule when record 0 has only ``keypoints``: bbox and area from the extent of
    every record's keypoints (a given bbox is replaced); no ``iscrowd``."""
    why = "record 0 has keypoints only, so pycocotools' loadRes reads every record's"
    for i, ann in enumerate(anns):
        s = _field(ann, "keypoints", source, i, why)
        try:
            x, y = s[0::3], s[1::3]
            x0, x1, y0, y1 = np.min(x), np.max(x), np.min(y), np.max(y)
        except (TypeError, ValueError, KeyError, IndexError) as err:
            raise _error_like(err)(f"{_where(source, i, ann)}: keypoints: expected [x, y, v, ...] numbers, "
                                   f"got {_kind(s)} of {len(s) if hasattr(s, '__len__') else 0}") from None
        ann["area"] = (x1 - x0) * (y1 - y0)
        ann["id"] = i + 1
        ann["bbox"] = [x0, y0, x1 - x0, y1 - y0]


def _is_size(size) -> bool:
    return isinstance(size, (list, tuple)) and len(size) == 2 and all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 0 for v in size)


def _kind(value) -> str:
    if isinstance(value, dict):
        return "an uncompressed RLE" if isinstance(value.get("counts"), list) else "an object"
    return {list: "polygons (a list)", type(None): "null", str: "a string"}.get(type(value), type(value).__name__)


# --------------------------------------------------------------------------------------------
# columns for the compiled core

def _columns(anns: list, coco, iou_type: str, is_gt: bool, n_joints: int) -> tuple[Annotations, dict]:
    """The fields of ``anns`` the evaluation reads, as arrays (pycocotools reads the same ones
    and raises ``KeyError`` where one is missing), and {index: error} for the keypoints
    problems that only count where pycocotools computes an OKS (an image and category with
    both ground truth and detections)."""
    source = getattr(coco, "_source", "<annotations>")
    n = len(anns)

    def values(name: str, why: str) -> list:
        try:
            return [ann[name] for ann in anns]
        except KeyError:
            ann = next(a for a in anns if name not in a)
            raise MissingFieldError(f"{source}: {_name(ann, is_gt)}: {name} missing ({why})") from None

    def column(name: str, why: str, dtype=np.float64) -> np.ndarray:
        """A field as numbers: Python's (bool, int, float) or numpy's, as pycocotools computes
        with them; a string, null, list or object is refused (pycocotools' comparisons and
        negations raise ``TypeError`` on them, numpy would read "1" as 1)."""
        listed = values(name, why)
        array = _number_array(listed)
        if array is not None and array.dtype.kind == "f" and dtype == np.int64:
            beyond = np.flatnonzero(~((array == np.trunc(array)) & (np.abs(array) < 2.0 ** 63)))  # NaN too
            if len(beyond):
                ann = anns[int(beyond[0])]
                raise FieldTypeError(f"{source}: {_name(ann, is_gt)}: {name}: {ann[name]!r} is no int64 integer "
                                     f"(the evaluator's; pycocotools takes any number)"[:300])
        if array is not None and array.dtype.kind in "bif":
            return array.astype(dtype)
        ann = next((a for a in anns if not _is_number(a[name])), None)
        if ann is not None:
            raise FieldTypeError(f"{source}: {_name(ann, is_gt)}: {name}: expected a number, "
                                 f"got {ann[name]!r}"[:300])
        try:
            return np.array(listed, dtype=dtype)
        except (TypeError, ValueError, OverflowError):  # one beyond the column's type (an id of 2 ** 64)
            ann = next(a for a in anns if not _fits(a[name], dtype))
            raise FieldTypeError(f"{source}: {_name(ann, is_gt)}: {name}: {ann[name]!r} does not fit "
                                 f"{np.dtype(dtype).name} (the evaluator's; pycocotools takes any int)"[:300]) from None

    counts = sizes = keypoints = num_keypoints = None
    deferred: dict = {}
    bbox = np.zeros((n, 4))
    if iou_type == "bbox":
        bbox = _rows(anns, "bbox", 4, source, is_gt, "bbox evaluation reads it")
    if iou_type == "segm":
        counts, sizes = _rles(anns, coco, source, is_gt)
    if iou_type == "keypoints":
        keypoints = _pair_rows(anns, "keypoints", 3 * n_joints, source, is_gt, deferred)
        if is_gt:
            bbox = _pair_rows(anns, "bbox", 4, source, is_gt, deferred)
            num_keypoints = _compared_with_zero(values("num_keypoints", "keypoints evaluation ignores persons with 0"))
    crowd, ignore = (_crowd_flags(values("iscrowd", "pycocotools' evaluateImg reads it"), anns, source, iou_type)
                     if is_gt else (np.zeros(n, bool), None))
    columns = Annotations(
        image_id=np.array([ann["image_id"] for ann in anns]),
        category_id=column("category_id", "every evaluation reads it", np.int64),
        ann_id=column("id", "every evaluation reads it", np.int64),
        bbox=bbox,
        area=column("area", "the area ranges read it"),
        iscrowd=crowd,
        score=column("score", "detections are ranked by it") if not is_gt else np.ones(n),
        counts=counts, mask_size=sizes, keypoints=keypoints, num_keypoints=num_keypoints, masks=counts, ignore=ignore,
    )
    return columns, deferred


def _unique(values) -> np.ndarray:
    """``np.unique(values)`` (integers sorted without it: it imports numpy.ma, 30 ms, on first use)."""
    array = np.asarray(values if isinstance(values, np.ndarray) else list(values))
    return _sorted_unique(array) if array.dtype.kind in "iu" else np.unique(array)


def _select(columns: Annotations, img_ids: list, cat_lists: list, use_cats) -> Annotations:
    """The annotations pycocotools' ``evaluate`` gathers with ``getAnnIds``: those of ``img_ids``
    and of the categories of ``cat_lists`` (one list with ``useCats``, else one list per
    category, gathered category by category: the order inside an image breaks score ties).
    With ``useCats`` every annotation is kept (the blocks leave out other images and categories)."""
    if use_cats:
        return columns
    in_images = np.isin(columns.image_id, np.asarray(img_ids))
    chosen = [np.flatnonzero(in_images & (columns.category_id == cats[0])) for cats in cat_lists]
    idx = np.concatenate(chosen) if chosen else np.zeros(0, dtype=np.int64)
    masks = columns.masks.take(idx) if columns.masks is not None else None
    return Annotations(
        image_id=columns.image_id[idx], category_id=columns.category_id[idx], ann_id=columns.ann_id[idx],
        bbox=columns.bbox[idx], area=columns.area[idx], iscrowd=columns.iscrowd[idx], score=columns.score[idx],
        counts=masks, mask_size=columns.mask_size[idx] if columns.mask_size is not None else None,
        keypoints=columns.keypoints[idx] if columns.keypoints is not None else None, masks=masks,
    )


def _pair_rows(anns: list, name: str, width: int, source: str, is_gt: bool, deferred: dict) -> np.ndarray:
    """(N, width) rows of a field read only for OKS pairs: a missing or other-length row, or
    one holding other than numbers (pycocotools' arithmetic on it raises), is zeros, its error
    kept in ``deferred`` under its index."""
    rows = np.zeros((len(anns), width))
    for i, ann in enumerate(anns):
        value = ann.get(name)
        try:
            array = np.asarray(value)
        except ValueError:  # lists of several lengths
            array = None
        row = array.astype(np.float64) if array is not None and array.dtype.kind in "biuf" else None
        if row is not None and row.shape == (width,):
            rows[i] = row
        elif name not in ann:
            deferred.setdefault(i, MissingFieldError(f"{source}: {_name(ann, is_gt)}: {name} missing "
                                                     "(keypoints evaluation reads it)"))
        elif name == "keypoints" and row is not None and row.ndim == 1:
            deferred.setdefault(i, KeypointCountError(
                f"{source}: {_name(ann, is_gt)}: keypoints: {len(row)} numbers, but params.kpt_oks_sigmas has "
                f"{width // 3} joints ({width} numbers): set params.kpt_oks_sigmas to one sigma per joint"))
        elif name == "keypoints" and array is not None and array.ndim == 0:  # pycocotools slices it: IndexError
            deferred.setdefault(i, FieldIndexError(f"{source}: {_name(ann, is_gt)}: keypoints: expected {width} "
                                                   f"numbers, got {value!r}"[:300]))
        elif name == "bbox":
            try:
                rows[i] = _oks_box(value)
            except (TypeError, ValueError, KeyError, IndexError) as err:
                deferred.setdefault(i, _error_like(err)(f"{source}: {_name(ann, is_gt)}: bbox: expected [x, y, w, h], "
                                                        f"got {value!r}"[:300]))
        else:
            deferred.setdefault(i, FieldTypeError(f"{source}: {_name(ann, is_gt)}: {name}: expected "
                                                  f"{width} numbers, got {value!r}"[:300]))
    return rows


def _oks_box(bb) -> np.ndarray:
    """The (4,) box pycocotools' ``computeOks`` reads of a ground truth's ``bbox``: its first four
    values, in ``bb[0] - bb[2]``, ``bb[1] + bb[3] * 2``, ...; raises where that code raises."""
    bb[0] - bb[2], bb[0] + bb[2] * 2, bb[1] - bb[3], bb[1] + bb[3] * 2
    return np.array([bb[0], bb[1], bb[2], bb[3]], dtype=np.float64)


def _is_number(value) -> bool:
    """A Python or numpy number (bool included), what pycocotools computes with."""
    return isinstance(value, (int, float, np.integer, np.floating))


def _number_array(values: list) -> Optional[np.ndarray]:
    """``values`` as a 1-D array where numpy reads each as a bool, int or float (no string,
    null or list among them), else None."""
    try:
        array = np.array(values)
    except (ValueError, OverflowError):  # lists of several lengths
        return None
    return array if array.ndim == 1 and array.dtype.kind in "biuf" else None


def _compared_with_zero(values: list) -> np.ndarray:
    """``num_keypoints`` as pycocotools reads it (``num_keypoints == 0`` makes an ignore region),
    (N,) float64: a number as it is (an int beyond float64: +-inf), anything else NaN (a string
    "0" or null is no 0 there)."""
    array = _number_array(values)
    if array is not None:
        return array.astype(np.float64)
    return np.array([(float(v) if abs(v) < 1e300 else np.inf if v > 0 else -np.inf) if _is_number(v) else np.nan
                     for v in values])


def _crowd_flags(values: list, anns: list, source: str, iou_type: str) -> tuple:
    """pycocotools' two readings of each ``iscrowd``: ``int(iscrowd) != 0`` (a crowd: IoU over
    the detection's area, matched any number of times) and ``bool(iscrowd)`` (an ignore region),
    (N,) bool each, the second None where it equals the first (integers). Where ``int()``
    raises, raise as pycocotools does; bbox and segm pass the ints as uint8 to its compiled IoU
    (-1 or 256 raise ``OverflowError`` there, detections or not)."""
    array = _number_array(values)
    ignore = None
    if array is None or array.dtype.kind == "f":
        as_int = []
        for ann, value in zip(anns, values):
            try:
                as_int.append(int(value))
            except (TypeError, ValueError, OverflowError) as err:
                raise _error_like(err)(f"{source}: {_name(ann, True)}: iscrowd: {value!r} is no int "
                                       f"(pycocotools' evaluateImg takes int() of it)"[:300]) from None
        array = np.array(as_int, dtype=object)
        ignore = np.array([bool(v) for v in values], dtype=bool)
    crowd = (array != 0).astype(bool)
    if iou_type != "keypoints":
        beyond = np.flatnonzero(((array < 0) | (array > 255)).astype(bool))
        if len(beyond):
            i = int(beyond[0])
            raise FieldOverflowError(f"{source}: {_name(anns[i], True)}: iscrowd: {values[i]!r} does not "
                                     "fit uint8 (pycocotools' IoU reads it as one)"[:300])
    if ignore is not None and np.array_equal(ignore, crowd):
        ignore = None
    return crowd, ignore


def _fits(value, dtype) -> bool:
    """``value`` converts to ``dtype`` (an int of 2 ** 64 does not to int64)."""
    try:
        np.array([value], dtype=dtype)
        return True
    except (TypeError, ValueError, OverflowError):
        return False


def _name(ann: dict, is_gt: bool) -> str:
    if is_gt:
        return f"annotation id {ann.get('id')!r}"
    ident = ann.get("id")
    record = f"record {ident - 1}" if isinstance(ident, (int, np.integer)) else f"annotation id {ident!r}"
    return f"{record} (image_id {ann.get('image_id')!r})"


def _rows(anns: list, name: str, width: int, source: str, is_gt: bool, why: str) -> np.ndarray:
    """(N, width) float64 rows of a field every annotation needs."""
    values = []
    for ann in anns:
        if name not in ann:
            raise MissingFieldError(f"{source}: {_name(ann, is_gt)}: {name} missing ({why})")
        values.append(ann[name])
    if not values:
        return np.zeros((0, width))
    try:
        rows = np.array(values, dtype=np.float64)
        if rows.shape != (len(values), width):
            raise ValueError
        return rows
    except (TypeError, ValueError):
        ann = next(a for a, v in zip(anns, values) if not _is_row(v, width))
        # (pycocotools' compiled IoU reads objects as RLE: KeyError 'counts'; anything else: Exception)
        error = MissingFieldError if isinstance(ann[name], dict) else FieldTypeError
        raise error(f"{source}: {_name(ann, is_gt)}: {name}: expected {width} numbers, "
                    f"got {ann[name]!r}"[:300]) from None


def _is_row(value, width: int) -> bool:
    try:
        return np.asarray(value, dtype=np.float64).shape == (width,)
    except (TypeError, ValueError):
        return False


def _rle(ann: dict, coco, source: str, is_gt: bool) -> dict:
    """pycocotools' ``annToRLE`` of one annotation; where it fails, one line naming it."""
    seg = ann.get("segmentation")
    if not isinstance(seg, (list, dict)):
        problem = "segmentation missing" if "segmentation" not in ann else f"segmentation is {_kind(seg)}"
        error = MissingFieldError if "segmentation" not in ann else FieldTypeError
        raise error(f"{source}: {_name(ann, is_gt)}: {problem} (segm evaluation needs a mask)")
    try:  # (pycocotools would not finish)
        for polygon in seg if type(seg) is list else ():
            if type(polygon) is list:
                check_drawable(polygon)
    except OverflowError as err:
        raise FieldOverflowError(f"{source}: {_name(ann, is_gt)}: segmentation: {err}") from None
    try:
        rle = coco.annToRLE(ann)
        return {"size": rle["size"], "counts": rle["counts"]}
    except (TypeError, ValueError, KeyError, IndexError, OverflowError) as err:
        raise _error_like(err)(f"{source}: {_name(ann, is_gt)}: segmentation: not a polygon list or RLE ({err})") from None


def _rles(anns: list, coco, source: str, is_gt: bool):
    """Compressed RLE strings (a MaskTable) and sizes (N, 2) as pycocotools' ``annToRLE``
    gives them, checked against the image sizes. Polygons are rasterised together by the
    compiled core (:func:`ochuman.masks.polygon_masks`, pycocotools' ``frPyObjects`` + ``merge``)."""
    counts, sizes = [None] * len(anns), np.zeros((len(anns), 2), dtype=np.int64)
    imgs = coco.imgs
    polygons, polygon_index = [], []
    for i, ann in enumerate(anns):
        seg = ann.get("segmentation")
        if type(seg) is dict and type(seg.get("counts")) is str:  # annToRLE returns it as it is
            counts[i], sizes[i] = seg["counts"], seg["size"]
        else:
            image = imgs.get(ann["image_id"])
            if (type(seg) is list and seg and all(type(p) is list for p in seg) and len(seg[0]) > 4
                    and type(image) is dict and type(image.get("height")) is int and type(image.get("width")) is int):
                polygons.append(seg)
                polygon_index.append(i)
                sizes[i] = image["height"], image["width"]
                continue
            rle = _rle(ann, coco, source, is_gt)
            counts[i], sizes[i] = rle["counts"], rle["size"]
        image = imgs.get(ann["image_id"], {})
        if list(sizes[i]) != [image.get("height"), image.get("width")]:
            raise ResultsError(f"{source}: {_name(ann, is_gt)}: segmentation size {sizes[i].tolist()} differs from "
                               f"the image's {[image.get('height'), image.get('width')]}")
    if polygons:
        try:
            table = polygon_masks(polygons, sizes[polygon_index])
        except (TypeError, ValueError, OverflowError):  # one at a time, naming the annotation
            table = [_rle(anns[i], coco, source, is_gt)["counts"] for i in polygon_index]
        for i, value in zip(polygon_index, table):
            counts[i] = value
    masks = MaskTable.from_strings(counts, sizes)
    bad = masks.bad[0] if masks.bad is not None else next(iter(np.flatnonzero(masks.totals != sizes[:, 0] * sizes[:, 1])), None)
    if bad is not None:
        raise ResultsError(f"{source}: {_name(anns[int(bad)], is_gt)}: segmentation: corrupt RLE counts string")
    return masks, sizes


def _write_rles(coco, anns: list, masks: Optional[MaskTable] = None, sizes: Optional[np.ndarray] = None) -> None:
    """pycocotools' ``_toMask`` (``COCOeval._prepare`` of a mask evaluation): each annotation's
    polygon list or uncompressed RLE replaced by its compressed RLE, ``{"size": [h, w],
    "counts": bytes}`` as ``annToRLE`` gives it; compressed RLE left as it is. masks, sizes: the
    strings (N,) and sizes (N, 2) already computed for anns (else computed here, or by
    ``annToRLE`` itself where :func:`_rles` refuses one)."""
    if masks is None:
        try:
            masks, sizes = _rles(anns, coco, getattr(coco, "_source", "<annotations>"), True)
        except OCHumanError:
            masks = None
    for i, ann in enumerate(anns):
        seg = ann.get("segmentation")
        if type(seg) is list or (type(seg) is dict and type(seg.get("counts")) is list):  # annToRLE's cases
            ann["segmentation"] = (coco.annToRLE(ann) if masks is None else
                                   {"size": [int(sizes[i, 0]), int(sizes[i, 1])], "counts": masks[i].encode("ascii")})


def _prepared_record(p) -> tuple:
    """What :func:`_write_prepared` needs of evaluated params, hashable: (imgIds, catIds of
    ``_prepare``'s getAnnIds or None: every category, iouType, catIds evaluated, the last area
    range or None)."""
    return (tuple(i.item() if isinstance(i, np.generic) else i for i in p.imgIds), tuple(p.catIds) if p.useCats else None, p.iouType, tuple(p.catIds),
            tuple(p.areaRng[-1]) if len(p.areaRng) else None)


def _write_prepared(coco, anns: list, is_gt: bool, record: tuple, masks: Optional[MaskTable] = None,
                    sizes: Optional[np.ndarray] = None, rles: Optional[bool] = None) -> None:
    """What pycocotools' ``evaluate()`` writes into the annotations ``_prepare`` reads (record:
    :func:`_prepared_record`): masks as compressed RLE (segm, or ``rles``: :func:`_write_rles`);
    into the ground truth's, ``ignore`` (``_prepare``) and, for those of the images and
    categories evaluated, ``_ignore`` as the last ``evaluateImg`` call leaves it (the last area
    range's)."""
    img_ids, _, iou_type, evaluated_cats, last_area = record
    if iou_type == "segm" if rles is None else rles:
        _write_rles(coco, anns, masks, sizes)
    if not is_gt:
        return
    images, categories = set(img_ids), set(evaluated_cats)
    for gt in anns:
        gt["ignore"] = gt["ignore"] if "ignore" in gt else 0
        gt["ignore"] = "iscrowd" in gt and gt["iscrowd"]
        if iou_type == "keypoints":
            gt["ignore"] = (gt["num_keypoints"] == 0) or gt["ignore"]
        if last_area is not None and gt["image_id"] in images and gt["category_id"] in categories:
            gt["_ignore"] = 1 if gt["ignore"] or (gt["area"] < last_area[0] or gt["area"] > last_area[1]) else 0


def _check_prepared(anns: list, coco, iou_type: str, is_gt: bool) -> None:
    """pycocotools' ``_prepare`` also reads annotations it does not evaluate (under
    ``useCats=0`` every category of the images): their masks (segm) and ``num_keypoints``
    (keypoints ground truth). Raise where it would."""
    source = getattr(coco, "_source", "<annotations>")
    for ann in anns:
        if iou_type == "segm":
            _rle(ann, coco, source, is_gt)
        elif iou_type == "keypoints" and is_gt and "num_keypoints" not in ann:
            raise MissingFieldError(f"{source}: {_name(ann, is_gt)}: num_keypoints missing "
                                    "(keypoints evaluation ignores persons with 0)")


# --------------------------------------------------------------------------------------------
# evaluation

_UNSET = object()  # a lazily filled attribute not computed yet


def _slice_bound(max_det) -> None:
    """Refuse a ``maxDets`` value pycocotools cannot slice with, as it does (``TypeError``)."""
    if not hasattr(type(max_det), "__index__"):  # (None, which it slices with too, is refused)
        raise ParamsTypeError(f"params.maxDets: {max_det!r}: slice indices must be integers or None "
                              "or have an __index__ method")


def _ascending(thresholds) -> bool:
    """Recall thresholds in ascending order, none NaN (the compiled accumulation's walk; any
    others are read as pycocotools reads them, one ``searchsorted`` each)."""
    values = np.asarray(thresholds, dtype=np.float64).ravel()
    return not np.isnan(values).any() and bool(np.all(values[1:] >= values[:-1]))


def _matched_thresholds(thresholds) -> np.ndarray:
    """``iouThrs`` as the compiled matching takes them: a NaN as -inf (pycocotools' ``min([t,
    1 - 1e-10])`` keeps a NaN, which no IoU is below: every candidate reaches it, as -inf)."""
    values = np.asarray(thresholds, dtype=np.float64).ravel()
    return np.where(np.isnan(values), -np.inf, values)


def _raise_first_pair_problem(p, gt: Annotations, gt_deferred: dict, dt: Annotations, dt_deferred: dict) -> None:
    """Raise, before any other record's problem, what pycocotools' IoU step raises first,
    visiting the images and categories as it does (``imgIds`` then ``catIds`` order; an image
    alone without ``useCats``): in each, slicing its detections with a ``maxDets[-1]`` that is
    no integer (where it holds more detections than that); for keypoints, where a ground truth
    and a kept detection (its ``maxDets[-1]`` best by score) meet, ``kpt_oks_sigmas`` it cannot
    compute with, then the deferred problems of the annotations computeOks reads (each ground
    truth in turn, the detections by score after the first)."""
    max_det = p.maxDets[-1]
    sliceable = hasattr(type(max_det), "__index__")
    sigmas_error = None
    if p.iouType == "keypoints":
        try:
            (p.kpt_oks_sigmas * 2) ** 2  # noqa: B018 - pycocotools' expression, for its error
        except AttributeError as err:
            sigmas_error = ParamsAttributeError(f"params.kpt_oks_sigmas: {err}")
        except TypeError as err:
            sigmas_error = ParamsTypeError(f"params.kpt_oks_sigmas: {err} (pycocotools computes "
                                           "(kpt_oks_sigmas * 2) ** 2: an array, not a list)")
    if (sliceable or not len(dt)) and sigmas_error is None and not gt_deferred and not dt_deferred:
        return

    def by_pair(ann: Annotations) -> dict:
        pairs: dict = defaultdict(list)
        cats = ann.category_id.tolist() if p.useCats else [0] * len(ann)
        for i, key in enumerate(zip(ann.image_id.tolist(), cats)):
            pairs[key].append(i)
        return pairs

    gts, dts = by_pair(gt), by_pair(dt)
    image_rank = {image: k for k, image in enumerate(p.imgIds)}
    category_rank = {cat: k for k, cat in enumerate(p.catIds)} if p.useCats else {0: 0}
    visited = sorted(gts.keys() | dts.keys(), key=lambda key: (image_rank.get(key[0], -1), category_rank.get(key[1], -1)))
    for pair in visited:
        detections = dts.get(pair, [])
        if not sliceable:
            try:
                over = len(detections) > max_det
            except TypeError:  # (None: pycocotools' `len(dt) > None` raises TypeError too)
                over = True
            if over:
                _slice_bound(max_det)
        if p.iouType != "keypoints" or pair not in gts or not detections:
            continue
        order = np.argsort(-dt.score[detections], kind="mergesort")
        kept = np.asarray(detections)[order].tolist()
        kept = kept[0:max_det] if sliceable else kept
        if not kept:
            continue
        if sigmas_error is not None:
            raise sigmas_error
        for g in gts[pair]:
            if g in gt_deferred:
                raise gt_deferred[g]
            bad = next((d for d in kept if d in dt_deferred), None)
            if bad is not None:
                raise dt_deferred[bad]


def _check_computable(p, blocks) -> None:
    """Raise where pycocotools' matching step (evaluateImg) would: slicing with a
    ``maxDets[-1]`` that is no integer, where any image and category holds an annotation."""
    if len(blocks.block_img):
        _slice_bound(p.maxDets[-1])


def _param_values(p) -> tuple:
    """What accumulate reads of a Params, comparable with ==."""
    cats = list(p.catIds) if p.useCats else [-1]
    return (list(p.imgIds), cats, p.useCats, list(np.asarray(p.iouThrs).ravel()), list(np.asarray(p.recThrs).ravel()),
            [list(r) for r in p.areaRng], list(p.maxDets), p.iouType)


# Immutable numbers: a list of them is deep-copied by copying the list.
_PLAIN_NUMBERS = frozenset({int, float, *(np.dtype(code).type for code in "bBhHiIlLqQefd")})


def _params_copy(p):
    """``copy.deepcopy`` of a Params: lists of Python or numpy numbers (image and category ids,
    which evaluate() makes numpy integers as pycocotools does; maxDets) copied as lists, other
    values deep-copied (deepcopy's memo costs ~1.5 us an item: 2 ms a copy at 1000 image ids)."""
    out = copy.copy(p)
    for name, value in vars(p).items():
        plain = type(value) is list and all(type(x) in _PLAIN_NUMBERS for x in value)
        setattr(out, name, list(value) if plain else copy.deepcopy(value))
    return out


class _Run:
    """What one ``evaluate()`` computed: columns, blocks, per area range states and matches."""

    def __init__(self, gt, dt, blocks, params: EvalParams, states, matches, evaluated: Params):
        self.gt, self.dt, self.blocks, self.params = gt, dt, blocks, params
        self.states, self.matches, self.evaluated = states, matches, evaluated
        self.values = _param_values(evaluated)


class COCOeval(_PycocotoolsCOCOeval):
    """pycocotools ``COCOeval``: ``params``, ``evaluate()``, ``accumulate()``, ``summarize()``,
    ``stats``, ``eval``, ``evalImgs``, ``ious``, ``_gts``, ``_dts``, ``_paramsEval`` with the same
    meaning and numbers; ``_prepare``, ``computeIoU``, ``computeOks`` and ``evaluateImg`` are
    pycocotools' own."""

    def __init__(self, cocoGt=None, cocoDt=None, iouType: str = "segm",  # noqa: N803
                 print_function: Callable = print):
        if iouType not in ("segm", "bbox", "keypoints"):
            raise OCHumanError(f"unknown iouType {iouType!r}: expected segm, bbox or keypoints")
        self._run: Optional[_Run] = None
        self._lazy = {"evalImgs": None, "ious": None, "_gts": None, "_dts": None}  # None: as set
        self._eval_imgs = defaultdict(list)
        self._ious, self.__gts, self.__dts = {}, defaultdict(list), defaultdict(list)
        self.cocoGt, self.cocoDt = cocoGt, cocoDt
        self.params = Params(iouType=iouType)
        self._paramsEval = {}
        self.eval: dict = {}
        self.stats = []
        self.print_function = print_function
        if cocoGt is not None:
            self.params.imgIds = sorted(cocoGt.getImgIds())
            self.params.catIds = sorted(cocoGt.getCatIds())

    # -- attributes filled when first read ---------------------------------------------------

    @property
    def evalImgs(self):  # noqa: N802
        if self._lazy["evalImgs"] is _UNSET:
            self._eval_imgs = _eval_imgs(self._run)
            self._lazy["evalImgs"] = None
        return self._eval_imgs

    @evalImgs.setter
    def evalImgs(self, value):  # noqa: N802
        self._lazy["evalImgs"] = None
        self._eval_imgs = value

    @property
    def ious(self):
        if self._lazy["ious"] is _UNSET:
            self._lazy["ious"] = None
            self._ious = _ious(self._run)
        return self._ious

    @ious.setter
    def ious(self, value):
        self._lazy["ious"] = None
        self._ious = value

    def __getstate__(self):  # copy.deepcopy, pickle
        """pycocotools' attributes, every lazily filled one filled; the compiled run's columns
        stay behind (a copy's ``accumulate()`` reads ``evalImgs``, as pycocotools' does)."""
        for name in ("evalImgs", "ious", "_gts", "_dts"):
            getattr(self, name)
        return {**self.__dict__, "_run": None}

    def _prepared(self, name: str) -> None:
        """Fill ``_gts`` / ``_dts`` with pycocotools' own ``_prepare`` under the evaluated params
        (as there, segm converts the annotations' segmentations to RLE in place), keeping
        ``evalImgs`` and ``eval``, which it resets."""
        if self._lazy[name] is not _UNSET:
            return None
        kept = self._lazy["evalImgs"], self._eval_imgs, self.eval, self.params
        self.params = p = copy.deepcopy(self._run.evaluated)
        super()._prepare()
        self._lazy["evalImgs"], self._eval_imgs, self.eval, self.params = kept
        # the keys pycocotools' IoU and matching steps then read from these defaultdicts (each
        # read adds an empty list): computeIoU's and computeOks' per image and category, then
        # evaluateImg's (new ones only for keypoints without useCats, whose computeOks reads -1)
        gts, dts = self.__gts, self.__dts
        pooled = not p.useCats and p.iouType != "keypoints"
        for img_id in p.imgIds:
            for cat_id in (p.catIds if p.useCats else [-1]):
                for key in ([(img_id, c) for c in p.catIds] if pooled else [(img_id, cat_id)]):
                    gts[key], dts[key]  # noqa: B018 - the read adds the key
        if not p.useCats and p.iouType == "keypoints":
            for cat_id in p.catIds:
                for _ in p.areaRng:
                    for img_id in p.imgIds:
                        gts[img_id, cat_id], dts[img_id, cat_id]  # noqa: B018
        return None

    @property
    def _gts(self):
        self._prepared("_gts")
        return self.__gts

    @_gts.setter
    def _gts(self, value):
        self._lazy["_gts"] = None
        self.__gts = value

    @property
    def _dts(self):
        self._prepared("_dts")
        return self.__dts

    @_dts.setter
    def _dts(self, value):
        self._lazy["_dts"] = None
        self.__dts = value

    # -- pycocotools' steps -----------------------------------------------------------------------

    def evaluate(self):
        """Every IoU and the matching of every area range (compiled core), as pycocotools'
        ``evaluate`` computes them; ``params`` normalised in place as it does, and what it writes
        into the annotations it reads written too (see the module's doc)."""
        p = self.params
        if p.useSegm is not None:  # pycocotools' backward compatibility
            p.iouType = "segm" if p.useSegm == 1 else "bbox"
        if p.iouType not in ("segm", "bbox", "keypoints"):
            raise UnknownIouTypeError(f"unknown iouType {p.iouType!r}: expected segm, bbox or keypoints")
        if p.iouType == "keypoints" and hasattr(p, "kpt_oks_sigmas") and np.ndim(p.kpt_oks_sigmas) > 1:
            raise ParamsValueError(f"params.kpt_oks_sigmas: expected one number per keypoint, got shape "
                                   f"{np.shape(p.kpt_oks_sigmas)} (pycocotools broadcasts it against the joints)")
        p.imgIds = list(_unique(p.imgIds))
        if p.useCats:
            p.catIds = list(_unique(p.catIds))
        p.maxDets = sorted(p.maxDets)
        negative = next((m for m in p.maxDets if hasattr(type(m), "__index__") and m < 0), None)
        if negative is not None:
            raise ParamsValueError(f"params.maxDets: {negative!r} is negative (pycocotools then leaves out the last "
                                   f"{-negative} detections of each image; the evaluator keeps the best maxDets)")
        sigmas = np.asarray(getattr(p, "kpt_oks_sigmas", COCO_OKS_SIGMAS), dtype=np.float64).ravel()
        params = EvalParams(
            iou_type=p.iouType, img_ids=list(p.imgIds), cat_ids=list(p.catIds) if p.useCats else None,
            iou_thrs=_matched_thresholds(p.iouThrs),
            rec_thrs=np.asarray(p.recThrs, dtype=np.float64).ravel(),
            max_dets=list(p.maxDets), area_rng=[list(r) for r in p.areaRng], area_rng_lbl=list(p.areaRngLbl),
            use_cats=bool(p.useCats), kpt_oks_sigmas=sigmas,
        )
        img_ids = params.img_ids
        # pycocotools: with useCats the annotations of catIds; without, those of every
        # category in catIds order (unlisted categories take no part; the order breaks ties).
        # (getAnnIds(catIds=[]) would mean every category; pycocotools evaluates none then.)
        cat_lists = ([list(p.catIds)] if p.catIds else []) if p.useCats else [[c] for c in p.catIds]
        scanned = getattr(self.cocoDt, "_scanned", None) if getattr(self.cocoDt, "_pending", None) else None
        file = self.cocoGt._file if isinstance(self.cocoGt, COCO) and self.cocoGt._pending is not None else None
        # the results' columns (a mask evaluation copies their strings) made in a thread while the
        # ground truth's are (its masks drawn)
        detections = (_in_thread(lambda: scanned.detections(p.iouType, len(sigmas))) if scanned is not None
                      else lambda: None)
        try:
            gt = (file.evaluated_columns(self.cocoGt, p.iouType, img_ids, cat_lists, p.useCats, len(sigmas))
                  if file is not None else None)
        finally:
            dt = detections()
        if dt is not None:
            dt = _select(dt, img_ids, cat_lists, p.useCats)
            dt_deferred: dict = {}
        sources = [(self.cocoDt, False)] if dt is None else []
        gt_deferred: dict = {}
        if gt is None:  # the file's dicts of the evaluated fields, else the index as pycocotools reads it
            gathered = file.evaluated(self.cocoGt, p.iouType, img_ids, cat_lists, p.useCats) if file is not None else None
            if gathered is None:
                sources.insert(0, (self.cocoGt, True))
            else:
                _check_prepared(gathered[1], self.cocoGt, p.iouType, True)
                gt, gt_deferred = _columns(gathered[0], self.cocoGt, p.iouType, True, len(sigmas))
        prepared_anns = []  # (coco, the annotations evaluated, their columns, the others _prepare reads)
        for coco, is_gt in sources:
            anns = [a for cats in cat_lists for a in coco.loadAnns(coco.getAnnIds(imgIds=img_ids, catIds=cats))]
            prepared = coco.getAnnIds(imgIds=img_ids, catIds=p.catIds) if p.useCats else coco.getAnnIds(imgIds=img_ids)
            evaluated = {ann["id"] for ann in anns}
            others = coco.loadAnns([i for i in prepared if i not in evaluated])
            _check_prepared(others, coco, p.iouType, is_gt)
            if is_gt:
                gt, gt_deferred = _columns(anns, coco, p.iouType, True, len(sigmas))
            else:
                dt, dt_deferred = _columns(anns, coco, p.iouType, False, len(sigmas))
            prepared_anns.append((coco, anns, gt if is_gt else dt, others))
        _raise_first_pair_problem(p, gt, gt_deferred, dt, dt_deferred)
        if file is not None:  # (its masks' passes read the file's pages again)
            file._let_go()
        _evalcore.trim_heap()  # the readers' temporaries, freed inside the heap (peak memory)
        gt = dataclasses.replace(gt, file_image_ids=np.asarray(img_ids))
        if not params.use_cats:
            params.cat_ids = [-1]
            gt = dataclasses.replace(gt, category_id=np.full(len(gt), -1))
            dt = dataclasses.replace(dt, category_id=np.full(len(dt), -1))
        blocks = make_blocks(gt, dt, params)
        if scanned is not None and not masks_are_valid(dt):  # the general path names the bad mask
            self.cocoDt._materialise()
            return self.evaluate()
        # the masks are done with once their IoUs are (the results' copy of their strings goes
        # with them: val2017 segm drop-in peak 265 -> 243 MiB)
        gt, dt = _without_masks(gt), _without_masks(dt)
        _evalcore.trim_heap()
        # what pycocotools' evaluate() writes into the annotations it reads, written as well
        record = _prepared_record(p)
        for coco, anns, columns, others in prepared_anns:
            _write_prepared(coco, anns, coco is self.cocoGt, record, columns.masks, columns.mask_size)
            _write_prepared(coco, others, coco is self.cocoGt, record)
        written = [coco for coco, *_ in prepared_anns]
        for coco in (self.cocoGt, self.cocoDt):  # read from columns: written when its index is built
            if isinstance(coco, COCO) and coco._pending is not None and not any(c is coco for c in written):
                coco._note_prepared(record, coco is self.cocoGt)
        _check_computable(p, blocks)
        states = variant_states(Variant(base_state(gt, blocks, params)), gt, blocks, params)
        matches = match(blocks, states, gt.iscrowd[blocks.gt_order], params)
        self._paramsEval = _params_copy(p)
        self._run = _Run(gt, dt, blocks, params, states, matches, _params_copy(p))
        self._lazy = {name: _UNSET for name in self._lazy}
        self.eval = {}

    def accumulate(self, p=None):
        """Fill ``eval``: precision (T, R, K, A, M), recall (T, K, A, M), scores, from
        ``evalImgs`` as set (the compiled core's matches when nothing changed since
        ``evaluate()``)."""
        if self._run is None and not self._eval_imgs:
            raise NotEvaluatedError("run evaluate() first")
        if p is None:
            p = self.params
        if p.useCats != 1:
            p.catIds = [-1]
        run = self._run
        if (run is not None and self._lazy["evalImgs"] is _UNSET and isinstance(self._paramsEval, Params)
                and _param_values(p) == run.values and _param_values(self._paramsEval) == run.values
                and _ascending(p.recThrs)):
            if len(run.blocks.block_img):  # pycocotools slices each image's detections with each
                for max_det in p.maxDets:
                    _slice_bound(max_det)
            acc = _accumulate(run.gt, run.dt, run.blocks, run.params,
                              Variant(base_state(run.gt, run.blocks, run.params)), run.states, run.matches)
            precision, recall, scores = acc.precision, acc.recall, acc.scores
        else:
            try:
                precision, recall, scores = _accumulate_eval_imgs(self.evalImgs, p, self._paramsEval)
            except IndexError as err:  # pycocotools' same indexing raises it
                raise ParamsIndexError(f"params do not fit the evaluated ones: {err} (iouThrs: evalImgs "
                                       "hold a row per threshold evaluated)") from None
        T, R, K, A, M = precision.shape
        self.eval = {
            "params": p, "counts": [T, R, K, A, M],
            "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S"),
            "precision": precision, "recall": recall, "scores": scores,
        }

    def summarize(self):
        """Print pycocotools' 12 (10) summary lines and set ``stats``."""
        if not self.eval:
            raise OCHumanError("run accumulate() first")
        p = self.params
        # iouThrs as given: pycocotools selects 0.5 and 0.75 with `np.where(iouThr == p.iouThrs)`,
        # which raises for a list (numpy >= 2: nonzero of a 0-d bool)
        params = EvalParams(iou_type=p.iouType, iou_thrs=p.iouThrs, max_dets=list(p.maxDets),
                            area_rng_lbl=list(p.areaRngLbl), area_rng=[list(r) for r in p.areaRng])
        params.max_dets = list(p.maxDets)  # as pycocotools reads them (EvalParams sorts)
        # params its summary cannot read raise what pycocotools' same expressions raise
        try:
            stats = _summarize_arrays(self.eval["precision"], self.eval["recall"], params)
            lines = []
            for (ap, iou, area, dets), value in zip(_summary_lines(p.iouType, p.maxDets), stats):
                title = "Average Precision" if ap else "Average Recall"
                kind = "(AP)" if ap else "(AR)"
                iou_str = f"{p.iouThrs[0]:0.2f}:{p.iouThrs[-1]:0.2f}" if iou is None else f"{iou:0.2f}"
                lines.append(f" {title:<18} {kind} @[ IoU={iou_str:<9} | area={area:>6s} | maxDets={dets:>3d} ] = {value:0.3f}")
        except IndexError as err:
            raise ParamsIndexError(f"params cannot be summarised: {err} (maxDets: pycocotools reads three "
                                   "for segm and bbox; areaRngLbl and maxDets select its cells)") from None
        except (ValueError, TypeError) as err:
            kind = ParamsValueError if isinstance(err, ValueError) else ParamsTypeError
            raise kind(f"params cannot be summarised: {err} (iouThrs: pycocotools compares 0.5 and "
                       "0.75 with an array)") from None
        self.stats = stats
        for line in lines:
            self.print_function(line)


def _without_masks(columns: Annotations) -> Annotations:
    """The columns without their masks (the RLE strings and their table)."""
    return columns if columns.masks is None and columns.counts is None else dataclasses.replace(columns, masks=None, counts=None)


def _eval_imgs(run: Optional[_Run]) -> list:
    """pycocotools' ``evalImgs`` from the compiled matching: one dict (or None where the image
    and category hold nothing) per (category, area range, image), in that order."""
    if run is None:
        return []
    gt, dt, blocks, params, p = run.gt, run.dt, run.blocks, run.params, run.evaluated
    cat_ids = list(p.catIds) if p.useCats else [-1]
    A, I, T = len(p.areaRng), len(p.imgIds), len(params.iou_thrs)
    out = [None] * (len(cat_ids) * A * I)
    max_det = p.maxDets[-1]
    if max_det == 0 and len(dt):
        # pycocotools asks "nothing here?" before cutting the detections to maxDets[-1]: an
        # image and category whose detections a maxDets[-1] of 0 cuts to none gets a dict
        # without ids (a ground truth there makes a block, whose dict the loop below writes)
        img = positions(np.asarray(dt.image_id), blocks.img_ids)
        cat = positions(np.asarray(dt.category_id), blocks.cat_ids)
        taking_part = (img >= 0) & (cat >= 0)
        for key in np.unique(cat[taking_part] * I + img[taking_part]).tolist():
            k, i = divmod(key, I)
            for a in range(A):
                out[k * A * I + a * I + i] = {
                    "image_id": p.imgIds[i], "category_id": cat_ids[k], "aRng": p.areaRng[a], "maxDet": max_det,
                    "dtIds": [], "gtIds": [], "dtMatches": np.zeros((T, 0)), "gtMatches": np.zeros((T, 0)),
                    "dtScores": [], "gtIgnore": np.array([]), "dtIgnore": np.zeros((T, 0), dtype=bool),
                }
    if len(blocks.block_img) == 0:
        return out
    G, D = len(blocks.gt_order), len(blocks.dt_order)
    gt_ann_ids = gt.ann_id[blocks.gt_order]
    gt_ids = gt_ann_ids.astype(np.float64)
    dt_ids = dt.ann_id[blocks.dt_order]
    dt_scores = dt.score[blocks.dt_order]
    dt_area = dt.area[blocks.dt_order]
    candidates = run.matches.candidates
    for a, (lo, hi) in enumerate(params.area_rng):
        state = run.states[a]
        matched = run.matches.gt[a]  # (T, C): gt (block order) matched by each candidate, or -1
        dtm = np.zeros((T, D))
        dt_ignored = np.zeros((T, D), dtype=bool)
        gtm = np.zeros((T, G))
        t_idx, c_idx = np.nonzero(matched >= 0)
        g_idx = matched[t_idx, c_idx]
        d_idx = candidates[c_idx]
        dtm[t_idx, d_idx] = gt_ids[g_idx]
        dt_ignored[t_idx, d_idx] = state[g_idx] == GtState.IGNORED
        # a crowd region matched several times keeps the last detection in score order
        keys = (t_idx * G + g_idx)[::-1]
        _, last = np.unique(keys, return_index=True)
        gtm.flat[keys[last]] = dt_ids[d_idx[::-1][last]]
        outside = (dt_area < lo) | (dt_area > hi)
        dt_ignored |= (dtm == 0) & outside
        gt_perm = np.lexsort((state, blocks.gt_block))  # ignored (1) after counted (0) in each block, stably
        for b in range(len(blocks.block_img)):
            g0, g1 = blocks.gt_start[b], blocks.gt_start[b + 1]
            d0, d1 = blocks.dt_start[b], blocks.dt_start[b + 1]
            k, i = int(blocks.block_cat[b]), int(blocks.block_img[b])
            gts = gt_perm[g0:g1]
            out[k * A * I + a * I + i] = {
                "image_id": p.imgIds[i], "category_id": cat_ids[k], "aRng": p.areaRng[a], "maxDet": max_det,
                "dtIds": dt_ids[d0:d1].tolist(), "gtIds": gt_ann_ids[gts].tolist(),
                "dtMatches": dtm[:, d0:d1].copy(), "gtMatches": gtm[:, gts],
                "dtScores": dt_scores[d0:d1].tolist(), "gtIgnore": np.array(state[gts].tolist()),
                "dtIgnore": dt_ignored[:, d0:d1].copy(),
            }
    return out


def _ious(run: Optional[_Run]) -> dict:
    """pycocotools' ``ious``: {(imgId, catId): D x G array, or [] when either is empty}."""
    if run is None:
        return {}
    blocks, p = run.blocks, run.evaluated
    cat_ids = list(p.catIds) if p.useCats else [-1]
    out = {(img, cat): [] for img in p.imgIds for cat in cat_ids}
    for b in range(len(blocks.block_img)):
        n_g = blocks.gt_start[b + 1] - blocks.gt_start[b]
        n_d = blocks.dt_start[b + 1] - blocks.dt_start[b]
        if n_g and n_d:
            start = blocks.iou_start[b]
            key = (p.imgIds[int(blocks.block_img[b])], cat_ids[int(blocks.block_cat[b])])
            out[key] = blocks.ious[start:start + n_g * n_d].reshape(n_d, n_g).copy()
    return out


def _accumulate_eval_imgs(eval_imgs, p, pe) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """pycocotools' ``accumulate`` over ``evalImgs`` laid out by ``pe`` (``_paramsEval``) for
    the settings of ``p``, its loops over detections vectorised (same operations, same values)."""
    T, R = len(p.iouThrs), len(p.recThrs)
    K = len(p.catIds) if p.useCats else 1
    A, M = len(p.areaRng), len(p.maxDets)
    precision, recall, scores = -np.ones((T, R, K, A, M)), -np.ones((T, K, A, M)), -np.ones((T, R, K, A, M))
    cats = set(pe.catIds if pe.useCats else [-1])
    areas, max_dets, images = set(map(tuple, pe.areaRng)), set(pe.maxDets), set(pe.imgIds)
    k_list = [n for n, k in enumerate(p.catIds) if k in cats]
    m_list = [m for m in p.maxDets if m in max_dets]
    a_list = [n for n, a in enumerate(map(tuple, p.areaRng)) if a in areas]
    i_list = [n for n, i in enumerate(p.imgIds) if i in images]
    I0, A0 = len(pe.imgIds), len(pe.areaRng)
    rec_thrs = p.recThrs
    if not m_list:  # pycocotools reads evalImgs only in its loop over these
        return precision, recall, scores
    for k, k0 in enumerate(k_list):
        for a, a0 in enumerate(a_list):
            base = k0 * A0 * I0 + a0 * I0
            E = [e for e in (eval_imgs[base + i] for i in i_list) if e is not None]
            if not E:
                continue
            gt_ignore = np.concatenate([e["gtIgnore"] for e in E])
            npig = np.count_nonzero(gt_ignore == 0)
            for m, max_det in enumerate(m_list):
                _slice_bound(max_det)
                if npig == 0:
                    continue
                dt_scores = np.concatenate([e["dtScores"][0:max_det] for e in E])
                order = np.argsort(-dt_scores, kind="mergesort")
                sorted_scores = dt_scores[order]
                dtm = np.concatenate([e["dtMatches"][:, 0:max_det] for e in E], axis=1)[:, order]
                dt_ig = np.concatenate([e["dtIgnore"][:, 0:max_det] for e in E], axis=1)[:, order]
                tps = np.logical_and(dtm, np.logical_not(dt_ig))
                fps = np.logical_and(np.logical_not(dtm), np.logical_not(dt_ig))
                tp_sum = np.cumsum(tps, axis=1).astype(dtype=float)
                fp_sum = np.cumsum(fps, axis=1).astype(dtype=float)
                nd = tp_sum.shape[1]
                for t in range(tp_sum.shape[0]):  # (more rows than T: IndexError, as there)
                    tp, fp = tp_sum[t], fp_sum[t]
                    rc = tp / npig
                    pr = tp / (fp + tp + np.spacing(1))
                    recall[t, k, a, m] = rc[-1] if nd else 0
                    pr = np.maximum.accumulate(pr[::-1])[::-1]  # precision made monotone
                    inds = np.searchsorted(rc, rec_thrs, side="left")
                    # pycocotools fills q until the first index past the end (IndexError)
                    past = np.flatnonzero(inds >= nd)
                    n_fill = past[0] if len(past) else len(inds)
                    q, ss = np.zeros(R), np.zeros(R)
                    q[:n_fill] = pr[inds[:n_fill]]
                    ss[:n_fill] = sorted_scores[inds[:n_fill]]
                    precision[t, :, k, a, m] = q
                    scores[t, :, k, a, m] = ss
    return precision, recall, scores


def _summary_lines(iou_type, max_dets):
    # pycocotools prints (and reads) maxDets=100 on the first line and 20 on every keypoints
    # line whatever params.maxDets holds (-1 when it lacks them).
    if iou_type == "keypoints":
        md = 20
        return [(1, None, "all", md), (1, .5, "all", md), (1, .75, "all", md), (1, None, "medium", md),
                (1, None, "large", md), (0, None, "all", md), (0, .5, "all", md), (0, .75, "all", md),
                (0, None, "medium", md), (0, None, "large", md)]
    return [(1, None, "all", 100), (1, .5, "all", max_dets[2]), (1, .75, "all", max_dets[2]),
            (1, None, "small", max_dets[2]), (1, None, "medium", max_dets[2]), (1, None, "large", max_dets[2]),
            (0, None, "all", max_dets[0]), (0, None, "all", max_dets[1]), (0, None, "all", max_dets[2]),
            (0, None, "small", max_dets[2]), (0, None, "medium", max_dets[2]), (0, None, "large", max_dets[2])]
