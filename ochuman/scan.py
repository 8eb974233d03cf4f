"""Reading results and annotation files fast: a memory map, the compiled scanners (in parts, in
threads), and background reads that can start before anything heavy is imported.

Imports no numpy (only the compiled core, :mod:`ochuman.errors` and :mod:`ochuman.parallel`;
``re`` and ``hashlib`` where they are used), so that ``ochuman eval`` can start reading its
results and ground-truth files before anything else is imported (:mod:`cli.early_reads`: the
import takes ~5 ms, ~17 ms with those two, typing and pathlib at the top), while the other CPU
imports the evaluator.
"""
from __future__ import annotations

import mmap
import os
import stat
import threading

from ochuman import _evalcore
from ochuman.errors import OCHumanError
from ochuman.parallel import worker_count

# A results file this large is scanned in parts, one thread each; in the background (while the
# caller's thread imports or reads the ground truth) only from this larger size.
PARTS_FROM_BYTES = 4_000_000
BACKGROUND_PARTS_FROM_BYTES = 64_000_000
# A mapped results file is scanned in pieces of about this size, each (hashed and) then let go
# from memory, its masks' strings copied out first (see scan_results_piecewise).
PIECE_BYTES = 16_000_000
_RECORD_BOUNDARY = rb"\}[ \t\n\r]*,[ \t\n\r]*\{"  # JSON whitespace only: \s also takes \v, \f

# The compiled scanner's skip bits (evalcore.h SCAN_SKIP_*): fields checked as JSON, not kept.
SKIP_SEGMENTATION, SKIP_KEYPOINTS = 1, 2
# What an evaluation of each IoU type leaves unread when record 0 has a bbox (pycocotools'
# loadRes then takes every box as given: the masks are read for segm only, keypoints for OKS only).
_SKIPPED = {"bbox": SKIP_SEGMENTATION | SKIP_KEYPOINTS, "segm": SKIP_KEYPOINTS, "keypoints": SKIP_SEGMENTATION}


def map_file(path: str | os.PathLike) -> mmap.mmap | bytes:
    """A results file's content, memory-mapped read-only (no copy of a large file; the mapping
    lives as long as something refers to it); bytes for an empty file and for what cannot be
    mapped (a pipe: ``/dev/stdin``, a process substitution ``<(...)``), read to its end."""
    try:
        with open(path, "rb") as handle:
            status = os.fstat(handle.fileno())
            if not stat.S_ISREG(status.st_mode):
                return handle.read()
            if status.st_size == 0:
                return b""
            return mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
    except OSError as err:
        raise OCHumanError(f"{path}: cannot read: {err.strerror or err}") from None


def anonymous_map(size: int) -> mmap.mmap:
    """``size`` bytes of zeroed private memory, mapped: only the pages written are the process's,
    in huge pages where the system gives them on request (a page fault per 2 MiB written rather
    than per 4 KiB: ~40 ms of CPU less for val2017's 60 MB of mask strings)."""
    memory = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE) if hasattr(mmap, "MAP_PRIVATE") else mmap.mmap(-1, size)
    if hasattr(mmap, "MADV_HUGEPAGE"):
        try:
            memory.madvise(mmap.MADV_HUGEPAGE)
        except OSError:  # a system without transparent huge pages: EINVAL, the pages stay small
            pass
    return memory


def snapshot_file(path: str | os.PathLike) -> mmap.mmap | None:
    """A regular file's content as of now, mapped read-only without being held in the process's
    memory: the system copies it (``copy_file_range``: within the page cache, or blocks shared
    where the file system can) into an unnamed file (``O_TMPFILE``) in the file's own folder,
    else in the temporary folder; nobody can change that copy, which goes when the mapping
    does. None where this cannot be done (another system, an empty or special file, no room):
    the caller reads the file."""
    if not hasattr(os, "O_TMPFILE") or not hasattr(os, "copy_file_range"):
        return None
    try:
        source = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        status = os.fstat(source)
        if not stat.S_ISREG(status.st_mode) or status.st_size == 0:
            return None
        size = status.st_size
        for folder in (os.path.dirname(os.path.abspath(path)), None):
            try:
                if folder is None:
                    import tempfile

                    folder = tempfile.gettempdir()
                copy = os.open(folder, os.O_TMPFILE | os.O_RDWR, 0o600)
            except OSError:
                continue
            try:
                copied = 0
                while copied < size:
                    count = os.copy_file_range(source, copy, size - copied, copied, copied)
                    if count == 0:  # the file shrank meanwhile: read it
                        return None
                    copied += count
                return mmap.mmap(copy, size, access=mmap.ACCESS_READ)
            except OSError:
                continue
            finally:
                os.close(copy)
        return None
    finally:
        os.close(source)


def scan_results(data: bytes | mmap.mmap, parts: int | None = None,
                 iou_type: str | None = None) -> tuple[bytes, ...] | None:
    """The compiled scanner's columns of a results file (see ``_evalcore.scan_results``), or
    None when the file is not in its shape. Large files are cut at record boundaries and the
    parts scanned in threads; a cut that lands inside a string (a part then fails) is retried
    as one part. iou_type: only the fields an evaluation of that type reads are kept (the others
    are still checked as JSON, their columns left empty); every field when record 0 has no bbox
    (its masks or keypoints then give the boxes) or iou_type is None."""
    skip = _SKIPPED.get(iou_type, 0)
    scanned = _scan_in_parts(data, parts, skip)
    if skip and scanned is not None and scanned[3][:1] and not scanned[3][0] & 1:  # RESULT_HAS_BBOX
        scanned = _scan_in_parts(data, parts, 0)
    return scanned


def _record_spans(data: bytes | mmap.mmap, parts: int) -> list[tuple[int, int]]:
    """data cut into at most ``parts`` spans [start, stop) near equal sizes, each cut between two
    records (a span ends at the comma, the next starts at "{"; a cut may land inside a string,
    which the scanner then refuses)."""
    import re  # (here: this module is imported before anything heavy, see cli.early_reads)

    size, boundary = len(data), re.compile(_RECORD_BOUNDARY)
    cuts = []
    for k in range(1, parts):
        found = boundary.search(data, max(size * k // parts, cuts[-1][1] if cuts else 0))
        if found is None:
            break
        comma = found.start() + found.group().index(b",")
        cuts.append((comma, found.end() - 1))
    if not cuts:
        return [(0, size)]
    return [(0, cuts[0][0]), *[(a[1], b[0]) for a, b in zip(cuts, cuts[1:])], (cuts[-1][1], size)]


class _HashBehind:
    """The rest of a file's SHA-256 in a thread of its own, behind a scan that goes on: the scan
    hands over how far it got (:meth:`reached`, in file order), the thread hashes up to there and
    lets those pages go; :meth:`finish` hands over the whole file, :meth:`hexdigest` waits."""

    def __init__(self, data: mmap.mmap, hasher, hashed_to: int, released: int):
        import queue

        self._data, self._size, self._hasher = data, len(data), hasher
        self._hashed_to, self._released = hashed_to, released
        self._stops: queue.SimpleQueue = queue.SimpleQueue()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def reached(self, stop: int) -> None:
        self._stops.put(stop)

    def finish(self) -> None:
        self._stops.put(self._size)

    def _run(self) -> None:
        page = mmap.PAGESIZE
        try:
            with memoryview(self._data) as view:
                while self._hashed_to < len(view):
                    stop = self._stops.get()
                    if stop > self._hashed_to:
                        self._hasher.update(view[self._hashed_to:stop])
                        self._hashed_to = stop
                    if stop // page * page > self._released:
                        self._data.madvise(mmap.MADV_DONTNEED, self._released, stop // page * page - self._released)
                        self._released = stop // page * page
        except BaseException as err:  # noqa: BLE001 - raised by hexdigest()
            self._error = err
        finally:
            self._data = None

    def hexdigest(self) -> str:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._hasher.hexdigest()


def scan_results_piecewise(data: mmap.mmap, iou_type: str | None, hash_file: bool = True,
                           threads: int = 1, copy_masks: bool = True,
                           wanted: threading.Event | None = None) -> tuple[tuple[bytes, ...] | None, object,
                                                                           mmap.mmap | None]:
    """(:func:`scan_results` of a mapped file, the file's SHA-256 as an object whose
    ``hexdigest()`` gives it (None unless ``hash_file``), the masks' strings or None): the file
    is scanned in pieces of about PIECE_BYTES, ``threads`` at a time, each piece then let go
    (``MADV_DONTNEED``, once hashed where the file is: its pages stay in the page cache, and
    whatever reads them later maps them again), so that the process holds a few pieces of the
    file rather than all of it. The hash follows the scan on the same thread until ``wanted``
    is set (someone waits for the columns: a CPU is free), then in a thread of its own; the
    call returns once the scan is done, ``hexdigest()`` waits for the hash.
    When masks are read (iou_type segm or None), each piece's counts strings are first copied
    out, one after another, into an anonymous memory map (:func:`anonymous_map`: only the pages
    written count, the strings, not the file's other fields), right after the previous piece's
    strings where pieces are scanned one at a time, else from the piece's own offset; the segm
    column's offsets point there. None when they point into data (``copy_masks`` False, a piece
    could not be scanned, or every field was read again)."""
    if hash_file:
        import hashlib  # (~3 ms: only where a hash is made)

    skip = _SKIPPED.get(iou_type, 0)
    size, page = len(data), mmap.PAGESIZE
    pieces = max(1, size // PIECE_BYTES)
    if threads > 1 and size >= PARTS_FROM_BYTES:  # a whole number of batches, at least one
        pieces = -(-pieces // threads) * threads
    spans = _record_spans(data, pieces)
    strings = anonymous_map(size) if copy_masks and not skip & SKIP_SEGMENTATION else None
    # Pieces one at a time are appended to one scan (their strings one after another); a batch's
    # other pieces go to scans of their own, appended after the batch.
    scan = _evalcore.ResultScan()
    packed_to = 0
    hasher = hashlib.sha256() if hash_file else None
    behind: _HashBehind | None = None

    def scan_piece(k: int, into, at: int, ends: dict) -> None:  # ends[k]: where its strings end, or None
        start, stop = spans[k]
        ends[k] = into.scan(data, start, stop, skip, strings, at)

    released = hashed_to = 0
    failed = False
    try:
        with memoryview(data) as view:
            for first in range(0, len(spans), max(1, threads)):
                batch = range(first, min(len(spans), first + max(1, threads)))
                ends: dict = {}
                others = {k: _evalcore.ResultScan() for k in batch[1:]}
                helpers = [threading.Thread(target=scan_piece, args=(k, others[k], spans[k][0], ends)) for k in batch[1:]]
                for helper in helpers:
                    helper.start()
                scan_piece(batch[0], scan, packed_to if threads <= 1 else spans[batch[0]][0], ends)
                for helper in helpers:
                    helper.join()
                if any(ends.get(k) is None for k in batch):
                    failed = True
                    break
                packed_to = ends[batch[0]]
                for k in batch[1:]:
                    scan.extend(others[k])
                stop = spans[batch[-1]][1]
                if behind is None and hasher is not None and wanted is not None and wanted.is_set():
                    behind = _HashBehind(data, hasher, hashed_to, released)
                if behind is not None:
                    behind.reached(stop)
                    continue
                if hasher is not None:
                    hasher.update(view[hashed_to:stop])
                    hashed_to = stop
                if stop // page * page > released:
                    data.madvise(mmap.MADV_DONTNEED, released, stop // page * page - released)
                    released = stop // page * page
            if hasher is not None and behind is None and not failed:
                hasher.update(view[hashed_to:])
    finally:
        if behind is not None:
            behind.finish()
    if failed:  # a cut inside a string, or not in the shape
        scanned, strings = _evalcore.scan_results(data, 0, size, skip), None
    else:
        scanned = scan.columns()
    if skip and scanned is not None and scanned[3][:1] and not scanned[3][0] & 1:  # as scan_results
        scanned, strings = _scan_in_parts(data, 1, 0), None
    if failed and hasher is not None and behind is None:
        hasher = hashlib.sha256(data)
    return scanned, behind or hasher, strings if scanned is not None else None


def copy_mask_strings(data: mmap.mmap, segm) -> tuple[mmap.mmap, bytearray]:
    """The counts strings of a scanned segm column (rows [h, w, offset, length] in file order)
    copied out of a mapped file, one after another, into an anonymous memory map, the file's
    pages let go behind them (about PIECE_BYTES of the file at a time, where the system can);
    and the column, its offsets pointing there."""
    rows = memoryview(segm).cast("q")
    count, size, page = len(rows) // 4, len(data), mmap.PAGESIZE
    strings, moved = anonymous_map(max(1, size)), bytearray(len(segm))
    moved_rows = memoryview(moved).cast("q")
    step = max(1, count * PIECE_BYTES // max(1, size))
    at = released = 0
    for lo in range(0, count, step):
        hi = min(count, lo + step)
        at = _evalcore.move_mask_strings(data, rows[4 * lo:4 * hi], strings, at, moved_rows[4 * lo:4 * hi])
        reached = (rows[4 * hi - 2] + rows[4 * hi - 1]) // page * page
        if hasattr(mmap, "MADV_DONTNEED") and reached > released:
            data.madvise(mmap.MADV_DONTNEED, released, reached - released)
            released = reached
    return strings, moved


def _scan_in_parts(data: bytes | mmap.mmap, parts: int | None, skip: int) -> tuple[bytes, ...] | None:
    size = len(data)
    if parts is None:
        parts = worker_count() if size >= PARTS_FROM_BYTES else 1
    spans = _record_spans(data, parts)
    if len(spans) == 1:
        return _evalcore.scan_results(data, 0, size, skip)
    scans = [_evalcore.ResultScan() for _ in spans]
    ends: list = [None] * len(spans)

    def scan(i: int) -> None:
        ends[i] = scans[i].scan(data, *spans[i], skip)

    threads = [threading.Thread(target=scan, args=(i,)) for i in range(1, len(spans))]
    for thread in threads:
        thread.start()
    scan(0)
    for thread in threads:
        thread.join()
    if any(end is None for end in ends):
        return _evalcore.scan_results(data, 0, size, skip)
    for more in scans[1:]:  # the parts after the first appended to it
        scans[0].extend(more)
    return scans[0].columns()


class PrefetchedResults:
    """A results file memory-mapped and scanned (:func:`scan_results`) in a background thread,
    e.g. while the caller imports the evaluator and reads its ground truth (one part, so one
    thread, below ``BACKGROUND_PARTS_FROM_BYTES``: the caller's thread has the other CPU); a
    mapped file larger than a piece in pieces, each hashed and let go (the hash in a thread of
    its own once :meth:`get` waits), its masks' strings copied out
    (:func:`scan_results_piecewise`; ``mask_strings``: where the segm column then
    points, else None: into the data). :meth:`get` waits and returns (data, the scanner's
    columns or None), or raises what reading raised (``map_file``'s one-line error). ``path``:
    the file; ``iou_type``: as :func:`scan_results` (None: every field); ``hash_file``: whether
    the bytes read are hashed (:meth:`sha256`; 57 ms of a CPU per 100 MB here), for a caller
    that shows their hash (protocol cards)."""

    def __init__(self, path: str | os.PathLike, iou_type: str | None = None, hash_file: bool = True):
        self.path = path
        self.iou_type = iou_type
        self.hash_file = hash_file
        self._digest = None  # the piecewise scan's hash (hexdigest() waits)
        self._value: tuple | None = None
        self.mask_strings: mmap.mmap | None = None  # where the segm column points, when not into the data
        self._error: BaseException | None = None
        self._wanted = threading.Event()  # get() waits: the hash can leave the reading thread
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        self._hasher: threading.Thread | None = None
        try:
            data = map_file(self.path)
            # the file's pages need not stay: masks are read from a copy of their strings
            # (where the system can let pages go)
            if isinstance(data, mmap.mmap) and hasattr(mmap, "MADV_DONTNEED") and len(data) > PIECE_BYTES:
                scanned, self._digest, self.mask_strings = scan_results_piecewise(
                    data, self.iou_type, hash_file=self.hash_file, wanted=self._wanted)
                self._value = (data, scanned)
                return
            self._value = (data, scan_results(data, 1 if len(data) < BACKGROUND_PARTS_FROM_BYTES else None,
                                              self.iou_type))
        except BaseException as err:  # noqa: BLE001 - handed to the caller by get()
            self._error = err
            return
        if not self.hash_file:
            return
        # the protocol cards' hash of these very bytes, in yet another thread (get() does not wait)
        self._hasher = threading.Thread(target=self._hash, args=(data,), daemon=True)
        self._hasher.start()

    def _hash(self, data) -> None:
        import hashlib

        self._sha256 = hashlib.sha256(data).hexdigest()

    def sha256(self) -> str | None:
        """Hex SHA-256 of the bytes read (after a successful :meth:`get`); None when they are
        not hashed (``hash_file`` False)."""
        self.wait()
        if self._hasher is not None:
            self._hasher.join()
            return self._sha256
        return None if self._digest is None else self._digest.hexdigest()

    def wait(self) -> None:
        """Wait for the read to end (its errors are left to :meth:`get`)."""
        self._thread.join()

    def get(self) -> tuple:
        self._wanted.set()
        self.wait()
        if self._error is not None:
            raise self._error
        return self._value

    def finish(self) -> None:
        """Wait until nothing reads the file's mapping any more (the read, a hash under way): a
        caller that returns, or raises, may see the file truncated next, which would end the
        process (SIGBUS) while a thread still read it. Problems are left to :meth:`get`."""
        self.wait()
        if self._error is None:
            self.sha256()

    def release(self) -> None:
        """Let go of the bytes read and their columns (after :meth:`get`): the file's mapping
        ends once nothing else refers to it (the hash under way keeps it until it is done);
        :meth:`sha256` still answers."""
        self.wait()
        self._value = self.mask_strings = None


def coco_members(data: bytes, masks: bool = True) -> tuple[dict, tuple, tuple] | None:
    """A COCO file's top-level members as ``{key: msgspec.Raw}`` (what msgspec's split of the
    file gives) with the compiled scanners' columns of its ``images`` and ``annotations``
    (``masks``: as ``scan_coco_annotations``), without msgspec reading those two (a third of a
    ground-truth read at val2017 scale): the members are found by their brackets
    (``object_members``) and every value is then checked, those two by the scanners (what they
    read is JSON), the others by msgspec. None where any step cannot be done (a key with an
    escape or twice, another shape, a value a scanner or msgspec refuses): msgspec's split then
    names any problem."""
    import msgspec

    found = _evalcore.object_members(data)
    if found is None:
        return None
    rows, view = memoryview(found).cast("q"), memoryview(data)
    members: dict = {}
    for k in range(0, len(rows), 4):
        try:
            key = bytes(view[rows[k]:rows[k] + rows[k + 1]]).decode("utf-8")
        except UnicodeDecodeError:
            return None
        if key in members:
            return None
        members[key] = msgspec.Raw(view[rows[k + 2]:rows[k + 2] + rows[k + 3]])
    if "images" not in members or "annotations" not in members:
        return None
    images = _evalcore.scan_coco_images(members["images"])
    annotations = _evalcore.scan_coco_annotations(members["annotations"], not masks) if images is not None else None
    if annotations is None:
        return None
    for key, value in members.items():
        if key not in ("images", "annotations"):
            try:
                msgspec.json.decode(value)
            except (msgspec.DecodeError, msgspec.ValidationError):
                return None
    return members, images, annotations


class PrefetchedAnnotations:
    """An annotation file (native or COCO) read in a background thread: its bytes, msgspec's
    split of its top-level object into raw values and, for a COCO file, the compiled scanner's
    columns of its ``images`` and ``annotations``. Only a head start for
    :func:`ochuman.io.load`, which takes this object in place of the path: whatever could not
    be done here (a missing file, broken JSON, another shape) is None, and the loader does it
    again itself and reports the problem. ``path``: the file; ``after``: a results read to let
    finish first (one background thread at a time leaves a CPU to the importing thread); when
    :meth:`get` comes before the read began, the caller's thread reads the file itself; ``masks``:
    False when no mask will be evaluated (polygon coordinates are then only checked, not kept)."""

    def __init__(self, path: str | os.PathLike, after: PrefetchedResults | None = None,
                 masks: bool = True):
        self.path = path
        self.masks = masks
        self._after = after
        self.data: bytes | None = None
        self.raw: dict | None = None
        self.images: tuple[bytes, ...] | None = None
        self.annotations: tuple[bytes, ...] | None = None
        self._claimed = threading.Lock()  # taken by the thread that reads
        self._read_done = threading.Event()
        self._thread = threading.Thread(target=self._background, daemon=True)
        self._thread.start()

    def _background(self) -> None:
        if self._after is not None:
            self._after.wait()
        if self._claimed.acquire(blocking=False):
            try:
                self._read()
            finally:
                self._read_done.set()

    def _read(self) -> None:
        try:
            with open(self.path, "rb") as handle:
                self.data = handle.read()
            split = coco_members(self.data, self.masks)
            if split is not None:
                self.raw, self.images, self.annotations = split
                return
            import msgspec

            self.raw = msgspec.json.decode(self.data, type=dict[str, msgspec.Raw])
            if "images" in self.raw and "annotations" in self.raw:
                self.images = _evalcore.scan_coco_images(self.raw["images"])
                self.annotations = _evalcore.scan_coco_annotations(self.raw["annotations"], not self.masks)
        except Exception:  # noqa: BLE001 - the loader repeats the step and names the problem
            pass

    def get(self) -> "PrefetchedAnnotations":
        """The read done (here, if the background thread had not begun it); returns self. (Once
        read, by either thread, it returns at once: the background thread may still be waiting
        for its turn.)"""
        if self._claimed.acquire(blocking=False):
            try:
                self._read()
            finally:
                self._read_done.set()
        else:
            self._read_done.wait()
        return self

    def release(self) -> None:
        """Let go of the bytes read and what was made of them (after :meth:`get`, once loaded):
        a later :meth:`get` finds nothing, and the loader reads the file itself."""
        self.data = self.raw = self.images = self.annotations = None
