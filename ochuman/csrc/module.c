/* ochuman._evalcore: the Python boundary of the compiled core (the kernels are in evalcore.h).
 *
 * The only file that includes Python.h. Each function parses its arguments, checks every
 * buffer against what its kernel will read or write (item type, C-contiguity, writability of
 * outputs, item counts derived from the other arguments, and the indices the kernel follows),
 * raises TypeError (not an array of the right type) or ValueError (wrong length, layout or
 * index) naming the argument, and only then calls the kernel without the GIL. Outputs are
 * preallocated by the caller. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include "evalcore.h"
#ifdef __GLIBC__
#include <malloc.h>
#endif

/* ------------------------------------------------------------------ checked buffers */
typedef enum { F64, I64, I32, I8, U8 } Kind;
static const char *const kind_names[] = {"float64", "int64", "int32", "int8", "uint8"};
static const Py_ssize_t kind_sizes[] = {8, 8, 4, 1, 1};

/* The buffers one call holds, released together. */
#define MAX_BUFFERS 24
typedef struct { const char *function; Py_buffer views[MAX_BUFFERS]; int n; } Held;

static void release(Held *h) {
    for (int i = 0; i < h->n; i++) PyBuffer_Release(&h->views[i]);
    h->n = 0;
}

static int kind_matches(const Py_buffer *v, Kind kind) {
    const char *f = v->format ? v->format : "B";
    if (*f == '@' || *f == '=' || *f == (PY_LITTLE_ENDIAN ? '<' : '>')) f++;
    if (!f[0] || f[1] || v->itemsize != kind_sizes[kind]) return 0;
    switch (kind) {
    case F64: return *f == 'd';
    case I64: case I32: case I8: return strchr("bhilqn", *f) != NULL;
    case U8: return *f == 'B';
    }
    return 0;
}

/* obj as a C-contiguous array of `kind` (an output: writable): its number of items, with its
 * data in *data; or -1 with a Python error naming the argument. */
static Py_ssize_t take(Held *h, PyObject *obj, const char *name, Kind kind, int output, void *data) {
    Py_buffer *v = &h->views[h->n];
    if (PyObject_GetBuffer(obj, v, PyBUF_RECORDS_RO) < 0) {
        PyErr_Format(PyExc_TypeError, "%s(): %s must be a C-contiguous array of %s, not %.100s",
                     h->function, name, kind_names[kind], Py_TYPE(obj)->tp_name);
        return -1;
    }
    h->n++;
    if (!kind_matches(v, kind)) {
        PyErr_Format(PyExc_TypeError, "%s(): %s must be an array of %s, not of items of format '%s' (%zd bytes)",
                     h->function, name, kind_names[kind], v->format ? v->format : "B", v->itemsize);
        return -1;
    }
    if (!PyBuffer_IsContiguous(v, 'C')) {
        PyErr_Format(PyExc_ValueError, "%s(): %s must be C-contiguous", h->function, name);
        return -1;
    }
    if (output && v->readonly) {
        PyErr_Format(PyExc_ValueError, "%s(): %s is an output and must be writable", h->function, name);
        return -1;
    }
    *(void **)data = v->buf;
    return v->len / v->itemsize;
}

/* Bytes-like text (bytes, a memory map, msgspec.Raw, ...): its length. */
static Py_ssize_t take_text(Held *h, PyObject *obj, const char *name, const char **data) {
    Py_buffer *v = &h->views[h->n];
    if (PyObject_GetBuffer(obj, v, PyBUF_SIMPLE) < 0) {
        if (PyObject_CheckBuffer(obj)) PyErr_Format(PyExc_ValueError, "%s(): %s must be contiguous", h->function, name);
        else PyErr_Format(PyExc_TypeError, "%s(): %s must be bytes-like, not %.100s", h->function, name, Py_TYPE(obj)->tp_name);
        return -1;
    }
    h->n++;
    *data = v->buf;
    return v->len;
}

static int fail(Held *h, PyObject *type, const char *format, ...) {
    char message[400];
    va_list args;
    va_start(args, format);
    PyOS_vsnprintf(message, sizeof message, format, args);
    va_end(args);
    PyErr_Format(type, "%s(): %s", h->function, message);
    return -1;
}

/* count == expected, else a ValueError saying what the count follows from. */
static int expect_count(Held *h, const char *name, Py_ssize_t count, Py_ssize_t expected, const char *rule) {
    if (count < 0) return -1;  /* take() has raised */
    if (count == expected) return 0;
    return fail(h, PyExc_ValueError, "%s holds %zd items, expected %zd (%s)", name, count, expected, rule);
}

/* Every a[first..stop-1] in [low, high). */
static int expect_indices(Held *h, const char *name, const int64_t *a, int64_t first, int64_t stop, int64_t low, int64_t high) {
    for (int64_t i = first; i < stop; i++)
        if (a[i] < low || a[i] >= high)
            return fail(h, PyExc_ValueError, "%s[%lld] = %lld is outside %lld..%lld", name, (long long)i,
                        (long long)a[i], (long long)low, (long long)high - 1);
    return 0;
}

/* lo..hi a range of 0..n. */
static int expect_range(Held *h, const char *what, Py_ssize_t lo, Py_ssize_t hi, Py_ssize_t n) {
    if (0 <= lo && lo <= hi && hi <= n) return 0;
    return fail(h, PyExc_ValueError, "%s range %zd..%zd is not within 0..%zd", what, lo, hi, n);
}

/* The block index of blocks lo..hi-1 (B = len(iou_start); gt_start, dt_start B + 1 items,
 * non-decreasing within 0..n_gt / 0..n_dt; each block's D_b x G_b IoU matrix inside P items). */
static int take_blocks(Held *h, PyObject *gs_obj, PyObject *ds_obj, PyObject *is_obj, Blocks *blocks) {
    const int64_t *gs, *ds, *is;
    Py_ssize_t ngs = take(h, gs_obj, "gt_start", I64, 0, &gs), nds = take(h, ds_obj, "dt_start", I64, 0, &ds);
    if (ngs < 0 || nds < 0) return -1;
    Py_ssize_t B = take(h, is_obj, "iou_start", I64, 0, &is);
    if (B < 0 || expect_count(h, "gt_start", ngs, B + 1, "len(iou_start) + 1") < 0
        || expect_count(h, "dt_start", nds, B + 1, "len(iou_start) + 1") < 0) return -1;
    *blocks = (Blocks){gs, ds, is, B};
    return 0;
}

static int expect_blocks(Held *h, const Blocks *blocks, int64_t lo, int64_t hi, int64_t n_gt, int64_t n_dt, int64_t pairs) {
    const int64_t *gs = blocks->gt_start, *ds = blocks->dt_start, *is = blocks->iou_start;
    if (hi <= lo) return 0;
    if (gs[lo] < 0 || ds[lo] < 0) return fail(h, PyExc_ValueError, "gt_start[%lld] / dt_start[%lld] is negative", (long long)lo, (long long)lo);
    for (int64_t b = lo; b < hi; b++) {
        int64_t ng = gs[b + 1] - gs[b], nd = ds[b + 1] - ds[b];
        if (ng < 0 || nd < 0) return fail(h, PyExc_ValueError, "gt_start / dt_start decrease at block %lld", (long long)b);
        if (is[b] < 0 || (ng && nd > (pairs - is[b]) / ng))
            return fail(h, PyExc_ValueError, "block %lld's %lld x %lld IoU matrix at iou_start %lld does not fit in %lld pairs",
                        (long long)b, (long long)nd, (long long)ng, (long long)is[b], (long long)pairs);
    }
    if (gs[hi] > n_gt) return fail(h, PyExc_ValueError, "gt_start[%lld] = %lld exceeds the %lld ground truths", (long long)hi, (long long)gs[hi], (long long)n_gt);
    if (ds[hi] > n_dt) return fail(h, PyExc_ValueError, "dt_start[%lld] = %lld exceeds the %lld detections", (long long)hi, (long long)ds[hi], (long long)n_dt);
    return 0;
}

/* RLE strings buf[starts[k] : starts[k] + lengths[k]] for k in lo..hi-1 inside buf; with a
 * status array, only the strings still MASK_PENDING (the others, absent masks among them, are
 * not read). */
static int expect_spans(Held *h, const char *name, const int64_t *starts, const int64_t *lengths, int64_t stride,
                        const int8_t *status, int64_t lo, int64_t hi, Py_ssize_t size) {
    for (int64_t k = lo; k < hi; k++) {
        if (status && status[k] != MASK_PENDING) continue;
        int64_t s = starts[k * stride], n = lengths[k * stride];
        if (s < 0 || n < 0 || s > size || n > size - s)
            return fail(h, PyExc_ValueError, "string %lld [%lld, +%lld) is outside %s (%zd bytes)", (long long)k,
                        (long long)s, (long long)n, name, size);
    }
    return 0;
}

static PyObject *finish(Held *h, int status) {
    release(h);
    if (status == EC_NO_MEMORY) return PyErr_NoMemory();
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------------ scanners */
/* A scanner's column handed to Python without a copy: the Vec's memory, owned by a Column (freed
 * with it), read through a read-only memoryview (bytes-like: np.frombuffer, b"".join, slicing).
 * v is left empty. */
typedef struct { PyObject_HEAD char *data; Py_ssize_t len; } Column;

static int column_getbuffer(PyObject *self, Py_buffer *view, int flags) {
    Column *c = (Column *)self;
    return PyBuffer_FillInfo(view, self, c->data ? c->data : (char *)"", c->len, 1, flags);
}

static void column_dealloc(PyObject *self) {
    free(((Column *)self)->data);
    Py_TYPE(self)->tp_free(self);
}

static PyBufferProcs column_buffer = {column_getbuffer, NULL};
static PyTypeObject ColumnType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "ochuman._evalcore.Column",
    .tp_basicsize = sizeof(Column),
    .tp_dealloc = column_dealloc,
    .tp_as_buffer = &column_buffer,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The memory of one column a scanner filled (read it through a memoryview).",
};

static PyObject *column_of(Vec *v) {
    Column *c = PyObject_New(Column, &ColumnType);
    if (!c) return NULL;
    c->data = v->data;
    c->len = (Py_ssize_t)v->len;
    v->data = NULL;
    v->len = v->cap = 0;
    PyObject *view = PyMemoryView_FromObject((PyObject *)c);
    Py_DECREF(c);
    return view;
}

/* A ResultColumns' columns as a tuple of column_of()s (the columns left empty), or NULL. */
static PyObject *result_columns_of(ResultColumns *out) {
    return Py_BuildValue("(NNNNNNN)", column_of(&out->image_id), column_of(&out->category_id), column_of(&out->score),
                         column_of(&out->flags), column_of(&out->bbox), column_of(&out->segm), column_of(&out->keypoints));
}

/* The scanners' slow numbers: Python's own correctly rounded conversion, with the GIL taken
 * back for it (the scan runs without). */
static int python_number(void *context, const char *text, double *out) {
    PyThreadState **state = context;
    PyEval_RestoreThread(*state);
    char *stop = NULL;
    double v = PyOS_string_to_double(text, &stop, NULL);
    int ok = !(v == -1.0 && PyErr_Occurred()) && stop && *stop == 0;
    if (!ok) PyErr_Clear();
    *state = PyEval_SaveThread();
    *out = v;
    return ok ? 0 : -1;
}

/* scan_results(data, start, end, skip=0) -> (image_id, category_id, score, flags, bbox, segm,
 * keypoints) as columns (column_of; evalcore.h: ResultColumns), or None (not in the shape: the general path
 * reads the file), for the records in data[start:end] (the whole file: 0, len(data)); skip:
 * SCAN_SKIP_* bits (1: segmentation, 2: keypoints; their columns empty). Parts may be scanned
 * in threads. */
static PyObject *py_scan_results(PyObject *self, PyObject *args) {
    PyObject *data_obj; Py_ssize_t start, stop; unsigned int skip = 0;
    if (!PyArg_ParseTuple(args, "Onn|I", &data_obj, &start, &stop, &skip)) return NULL;
    Held h = {"scan_results"};
    const char *data;
    Py_ssize_t size = take_text(&h, data_obj, "data", &data);
    if (size < 0) return NULL;
    ResultColumns out = {0};
    int scanned = -1;
    if (start >= 0 && start <= stop && stop <= size) {
        PyThreadState *state = PyEval_SaveThread();
        SlowNumbers slow = {python_number, &state};
        scanned = scan_results(data, (size_t)size, (size_t)start, (size_t)stop, skip, &slow, &out);
        PyEval_RestoreThread(state);
    }
    PyObject *result = scanned == 0 ? result_columns_of(&out) : Py_NewRef(Py_None);
    result_columns_free(&out);
    release(&h);
    return result;
}

/* ResultScan(): the columns of a results file built part after part in file order (scan, or
 * extend by another ResultScan's), handed out once (columns): no part's columns are copied to be
 * joined. One call at a time: a call while another runs without the GIL raises RuntimeError. */
typedef struct { PyObject_HEAD ResultColumns out; int busy; } ResultScan;

static int result_scan_take(ResultScan *self, const char *function) {
    if (self->busy) {
        PyErr_Format(PyExc_RuntimeError, "ResultScan.%s(): the scan is in use by another thread", function);
        return -1;
    }
    self->busy = 1;
    return 0;
}

/* scan(data, start, stop, skip=0, strings=None, at=0) -> end or None: the records of
 * data[start:stop] (as scan_results) appended; None when not in the shape (the columns as they
 * were). With strings (writable bytes-like), the new segm rows' counts strings are copied into
 * strings[at:] one after another (move_mask_strings) and the rows point there; returns where
 * they end (at without strings). */
static PyObject *result_scan_scan(PyObject *obj, PyObject *args) {
    ResultScan *self = (ResultScan *)obj;
    PyObject *data_obj, *strings_obj = Py_None; Py_ssize_t start, stop, at = 0; unsigned int skip = 0;
    if (!PyArg_ParseTuple(args, "Onn|IOn", &data_obj, &start, &stop, &skip, &strings_obj, &at)) return NULL;
    Held h = {"ResultScan.scan"};
    const char *data; unsigned char *strings = NULL;
    Py_ssize_t size = take_text(&h, data_obj, "data", &data), capacity = 0;
    if (size >= 0 && strings_obj != Py_None) capacity = take(&h, strings_obj, "strings", U8, 1, &strings);
    if (size < 0 || capacity < 0 || (strings && (at < 0 || at > capacity) && fail(&h, PyExc_ValueError,
                                                                                  "at = %zd is outside strings (%zd bytes)", at, capacity) < 0)
        || result_scan_take(self, "scan") < 0) {
        release(&h);
        return NULL;
    }
    size_t rows_before = self->out.segm.len / 32;
    int scanned = -1;
    int64_t end = at;
    if (start >= 0 && start <= stop && stop <= size) {
        PyThreadState *state = PyEval_SaveThread();
        SlowNumbers slow = {python_number, &state};
        scanned = scan_results(data, (size_t)size, (size_t)start, (size_t)stop, skip, &slow, &self->out);
        PyEval_RestoreThread(state);
    }
    if (scanned == 0 && strings) {  /* the rows' strings lie in data[start:stop]: room is checked */
        int64_t *rows = (int64_t *)self->out.segm.data + 4 * rows_before, n = (int64_t)(self->out.segm.len / 32 - rows_before);
        int64_t room = 0;
        for (int64_t k = 0; k < n; k++) room += rows[4 * k + 3];
        if (room > capacity - at) {
            fail(&h, PyExc_ValueError, "strings holds %zd bytes, %lld needed from %zd", capacity, (long long)room, at);
            self->busy = 0;
            release(&h);
            return NULL;
        }
        Py_BEGIN_ALLOW_THREADS
        end = move_mask_strings(data, rows, n, (char *)strings, at, rows);  /* (in place: each row is read before it is written) */
        Py_END_ALLOW_THREADS
    }
    self->busy = 0;
    release(&h);
    if (scanned != 0) Py_RETURN_NONE;
    return PyLong_FromLongLong(end);
}

/* extend(other) -> None: other's records appended after these, other left empty. */
static PyObject *result_scan_extend(PyObject *obj, PyObject *other);

/* columns() -> (image_id, category_id, score, flags, bbox, segm, keypoints) as scan_results
 * returns them; the scan is left empty. */
static PyObject *result_scan_columns(PyObject *obj, PyObject *unused) {
    ResultScan *self = (ResultScan *)obj;
    if (result_scan_take(self, "columns") < 0) return NULL;
    PyObject *result = result_columns_of(&self->out);
    result_columns_free(&self->out);
    self->busy = 0;
    return result;
}

static void result_scan_dealloc(PyObject *obj) {
    result_columns_free(&((ResultScan *)obj)->out);
    Py_TYPE(obj)->tp_free(obj);
}

static PyMethodDef result_scan_methods[] = {
    {"scan", result_scan_scan, METH_VARARGS, "Append the records of data[start:stop]; the strings' end, or None."},
    {"extend", result_scan_extend, METH_O, "Append another ResultScan's records (it is left empty)."},
    {"columns", result_scan_columns, METH_NOARGS, "The columns, as scan_results returns them (the scan is left empty)."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ResultScanType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "ochuman._evalcore.ResultScan",
    .tp_basicsize = sizeof(ResultScan),
    .tp_dealloc = result_scan_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_methods = result_scan_methods,
    .tp_doc = "A results file's columns, scanned part after part in file order.",
};

static PyObject *result_scan_extend(PyObject *obj, PyObject *other) {
    ResultScan *self = (ResultScan *)obj;
    if (!PyObject_TypeCheck(other, &ResultScanType)) {
        PyErr_Format(PyExc_TypeError, "ResultScan.extend(): other must be a ResultScan, not %.100s", Py_TYPE(other)->tp_name);
        return NULL;
    }
    ResultScan *more = (ResultScan *)other;
    if (more == self) {
        PyErr_SetString(PyExc_ValueError, "ResultScan.extend(): a scan cannot extend itself");
        return NULL;
    }
    if (result_scan_take(self, "extend") < 0) return NULL;
    if (result_scan_take(more, "extend") < 0) { self->busy = 0; return NULL; }
    int status = result_columns_extend(&self->out, &more->out);
    self->busy = more->busy = 0;
    if (status == EC_NO_MEMORY) return PyErr_NoMemory();
    Py_RETURN_NONE;
}

/* trim_heap() -> None: the allocator's free memory handed back to the system (glibc keeps what
 * is freed inside its heaps, e.g. a loader's temporaries, until it is trimmed); elsewhere a no-op. */
static PyObject *py_trim_heap(PyObject *self, PyObject *unused) {
#ifdef __GLIBC__
    Py_BEGIN_ALLOW_THREADS
    malloc_trim(0);
    Py_END_ALLOW_THREADS
#endif
    Py_RETURN_NONE;
}

/* move_mask_strings(data, segm i64[4s], dst u8, at, moved i64[4s]) -> end: the counts strings of
 * scan_results' segm rows copied from data into dst[at:], one after another; moved: the rows
 * with offsets in dst (evalcore.h: move_mask_strings). */
static PyObject *py_move_mask_strings(PyObject *self, PyObject *args) {
    PyObject *data_obj, *rows_obj, *dst_obj, *moved_obj; Py_ssize_t at;
    if (!PyArg_ParseTuple(args, "OOOnO", &data_obj, &rows_obj, &dst_obj, &at, &moved_obj)) return NULL;
    Held h = {"move_mask_strings"};
    const char *data; const int64_t *rows; unsigned char *dst; int64_t *moved;
    Py_ssize_t size = take_text(&h, data_obj, "data", &data), n = size < 0 ? -1 : take(&h, rows_obj, "segm", I64, 0, &rows);
    Py_ssize_t capacity = n < 0 ? -1 : take(&h, dst_obj, "dst", U8, 1, &dst);
    if (capacity < 0 || (n % 4 && fail(&h, PyExc_ValueError, "segm holds %zd items, expected [h, w, offset, length] rows", n) < 0)
        || expect_count(&h, "moved", take(&h, moved_obj, "moved", I64, 1, &moved), n, "as many as segm") < 0
        || expect_spans(&h, "data", rows + 2, rows + 3, 4, NULL, 0, n / 4, size) < 0) {
        release(&h); return NULL;
    }
    int64_t room = 0;
    for (Py_ssize_t k = 0; k < n / 4; k++) room += rows[4 * k + 3];
    if (at < 0 || at > capacity || room > capacity - at) {
        fail(&h, PyExc_ValueError, "dst holds %zd bytes, %lld needed from %zd", capacity, (long long)room, at);
        release(&h); return NULL;
    }
    int64_t end;
    Py_BEGIN_ALLOW_THREADS
    end = move_mask_strings(data, rows, n / 4, (char *)dst, at, moved);
    Py_END_ALLOW_THREADS
    release(&h);
    return PyLong_FromLongLong(end);
}

/* object_members(data) -> i64 [key offset, key length, value offset, value length] per member of
 * the JSON object data holds (a column, column_of), its values unchecked; or None (not an
 * object, a key with an escape, ...: evalcore.h object_members). */
static PyObject *py_object_members(PyObject *self, PyObject *args) {
    PyObject *data_obj;
    if (!PyArg_ParseTuple(args, "O", &data_obj)) return NULL;
    Held h = {"object_members"};
    const char *data;
    Py_ssize_t size = take_text(&h, data_obj, "data", &data);
    if (size < 0) return NULL;
    Vec members = {0};
    int found;
    Py_BEGIN_ALLOW_THREADS
    found = object_members(data, (size_t)size, &members);
    Py_END_ALLOW_THREADS
    PyObject *result = found == 0 ? column_of(&members) : Py_NewRef(Py_None);
    free(members.data);
    release(&h);
    return result;
}

/* scan_coco_images(data) -> (id, width, height, file_name [offset, length]) as columns (column_of),
 * or None. */
static PyObject *py_scan_coco_images(PyObject *self, PyObject *args) {
    PyObject *data_obj;
    if (!PyArg_ParseTuple(args, "O", &data_obj)) return NULL;
    Held h = {"scan_coco_images"};
    const char *data;
    Py_ssize_t size = take_text(&h, data_obj, "data", &data);
    if (size < 0) return NULL;
    ImageColumns out;
    PyThreadState *state = PyEval_SaveThread();
    SlowNumbers slow = {python_number, &state};
    int scanned = scan_coco_images(data, (size_t)size, &slow, &out);
    PyEval_RestoreThread(state);
    PyObject *result = scanned == 0
        ? Py_BuildValue("(NNNN)", column_of(&out.id), column_of(&out.width), column_of(&out.height), column_of(&out.name))
        : Py_NewRef(Py_None);
    image_columns_free(&out);
    release(&h);
    return result;
}

/* scan_coco_annotations(data, skip_polygon_xy=False) -> (id, image_id, category_id, iscrowd,
 * bbox, area, max_iou, has_keypoints, keypoints, segm, num_keypoints, segm_kind, polygons,
 * polygon_points, polygon_xy, fields, rle_list_pixels) as columns (column_of; evalcore.h: AnnotationColumns),
 * or None. */
static PyObject *py_scan_coco_annotations(PyObject *self, PyObject *args) {
    PyObject *data_obj;
    int skip_polygon_xy = 0;
    if (!PyArg_ParseTuple(args, "O|p", &data_obj, &skip_polygon_xy)) return NULL;
    Held h = {"scan_coco_annotations"};
    const char *data;
    Py_ssize_t size = take_text(&h, data_obj, "data", &data);
    if (size < 0) return NULL;
    AnnotationColumns out;
    PyThreadState *state = PyEval_SaveThread();
    SlowNumbers slow = {python_number, &state};
    int scanned = scan_coco_annotations(data, (size_t)size, skip_polygon_xy ? SCAN_SKIP_POLYGON_XY : 0, &slow, &out);
    PyEval_RestoreThread(state);
    PyObject *result = scanned == 0
        ? Py_BuildValue("(NNNNNNNNNNNNNNNNN)", column_of(&out.id), column_of(&out.image_id), column_of(&out.category_id),
                        column_of(&out.iscrowd), column_of(&out.bbox), column_of(&out.area), column_of(&out.max_iou),
                        column_of(&out.has_keypoints), column_of(&out.keypoints), column_of(&out.segm),
                        column_of(&out.num_keypoints), column_of(&out.segm_kind), column_of(&out.polygons),
                        column_of(&out.polygon_points), column_of(&out.polygon_xy), column_of(&out.fields),
                        column_of(&out.rle_list_pixels))
        : Py_NewRef(Py_None);
    annotation_columns_free(&out);
    release(&h);
    return result;
}

/* ------------------------------------------------------------------ Python numbers */
/* One number as numpy's np.array reads a list of Python numbers, then casts it to float64: 0,
 * or -1 for anything else (a subclass, a numpy scalar, an int beyond int64: numpy decides). */
static int exact_number(PyObject *item, double *out) {
    if (PyFloat_CheckExact(item)) { *out = PyFloat_AS_DOUBLE(item); return 0; }
    if (PyLong_CheckExact(item) || PyBool_Check(item)) {
        int overflow = 0;
        long long v = PyLong_AsLongLongAndOverflow(item, &overflow);
        if (overflow || (v == -1 && PyErr_Occurred())) { PyErr_Clear(); return -1; }
        *out = (double)v;
        return 0;
    }
    return -1;
}

/* float_rows(values list, width, out f64[len(values) * max(width, 1)]) -> bool: every item of
 * values a Python float, int or bool (width 0), or a list of `width` of them, written to out
 * row by row as float64 (np.array(values).astype(float64) for those items); False at the first
 * item that is not (out then partly written). */
static PyObject *py_float_rows(PyObject *self, PyObject *args) {
    PyObject *values, *out_obj;
    Py_ssize_t width;
    if (!PyArg_ParseTuple(args, "O!nO", &PyList_Type, &values, &width, &out_obj)) return NULL;
    Held h = {"float_rows"};
    double *out;
    Py_ssize_t n = PyList_GET_SIZE(values), per = width > 0 ? width : 1;
    if (width < 0) { fail(&h, PyExc_ValueError, "width = %zd: expected 0 (numbers) or a row length", width); return NULL; }
    if (expect_count(&h, "out", take(&h, out_obj, "out", F64, 1, &out), n * per, "len(values) * max(width, 1)") < 0) {
        release(&h); return NULL;
    }
    int ok = 1;
    for (Py_ssize_t i = 0; i < n && ok; i++) {
        PyObject *item = PyList_GET_ITEM(values, i);
        if (width == 0) { ok = exact_number(item, out + i) == 0; continue; }
        if (!PyList_CheckExact(item) || PyList_GET_SIZE(item) != width) { ok = 0; break; }
        for (Py_ssize_t k = 0; k < width && ok; k++) ok = exact_number(PyList_GET_ITEM(item, k), out + i * width + k) == 0;
    }
    release(&h);
    return PyBool_FromLong(ok);
}

/* ------------------------------------------------------------------ RLE */
/* rle_spans_clean(buf, spans i64[2n] [offset, length]) -> bool: every span is clean raw RLE
 * counts content (evalcore.h: rle_clean_copy). */
static PyObject *py_rle_spans_clean(PyObject *self, PyObject *args) {
    PyObject *buf_obj, *spans_obj;
    if (!PyArg_ParseTuple(args, "OO", &buf_obj, &spans_obj)) return NULL;
    Held h = {"rle_spans_clean"};
    const char *buf; const int64_t *spans;
    Py_ssize_t size = take_text(&h, buf_obj, "buf", &buf), n = size < 0 ? -1 : take(&h, spans_obj, "spans", I64, 0, &spans);
    if (n < 0 || (n % 2 && fail(&h, PyExc_ValueError, "spans holds %zd items, expected [offset, length] pairs", n) < 0)
        || expect_spans(&h, "buf", spans, spans + 1, 2, NULL, 0, n / 2, size) < 0) { release(&h); return NULL; }
    int clean;
    Py_BEGIN_ALLOW_THREADS
    clean = rle_spans_clean((const unsigned char *)buf, spans, n / 2);
    Py_END_ALLOW_THREADS
    release(&h);
    if (clean == EC_NO_MEMORY) return PyErr_NoMemory();
    return PyBool_FromLong(clean);
}

/* rle_clean_spans(buf, spans i64[2n] [offset, length], out u8[sum of lengths + 64], lengths i64[n]) -> bytes
 * written: each span's content one after another (evalcore.h: rle_clean_spans). */
static PyObject *py_rle_clean_spans(PyObject *self, PyObject *args) {
    PyObject *buf_obj, *spans_obj, *out_obj, *lengths_obj;
    if (!PyArg_ParseTuple(args, "OOOO", &buf_obj, &spans_obj, &out_obj, &lengths_obj)) return NULL;
    Held h = {"rle_clean_spans"};
    const char *buf; const int64_t *spans; unsigned char *out; int64_t *lengths;
    Py_ssize_t size = take_text(&h, buf_obj, "buf", &buf), n = size < 0 ? -1 : take(&h, spans_obj, "spans", I64, 0, &spans);
    if (n < 0 || (n % 2 && fail(&h, PyExc_ValueError, "spans holds %zd items, expected [offset, length] pairs", n) < 0)
        || expect_spans(&h, "buf", spans, spans + 1, 2, NULL, 0, n / 2, size) < 0
        || expect_count(&h, "lengths", take(&h, lengths_obj, "lengths", I64, 1, &lengths), n / 2, "one per span") < 0) {
        release(&h); return NULL;
    }
    int64_t room = 64;
    for (Py_ssize_t k = 0; k < n / 2; k++) room += spans[2 * k + 1];
    Py_ssize_t capacity = take(&h, out_obj, "out", U8, 1, &out);
    if (capacity < 0 || (capacity < room && fail(&h, PyExc_ValueError, "out holds %zd bytes, expected at least %lld "
                                                 "(the spans' lengths + 64)", capacity, (long long)room) < 0)) {
        release(&h); return NULL;
    }
    int64_t written;
    Py_BEGIN_ALLOW_THREADS
    written = rle_clean_spans((const unsigned char *)buf, spans, n / 2, out, lengths);
    Py_END_ALLOW_THREADS
    release(&h);
    return PyLong_FromLongLong(written);
}

/* rle_list_strings(buf, spans i64[2k], lengths i64[k] out) -> the compressed RLE strings of the
 * uncompressed RLE counts lists at buf's [offset, length] spans, one after another (a column:
 * column_of); lengths[k] = -1 where span k is not such a list (evalcore.h: rle_list_strings). */
static PyObject *py_rle_list_strings(PyObject *self, PyObject *args) {
    PyObject *buf_obj, *spans_obj, *lengths_obj;
    if (!PyArg_ParseTuple(args, "OOO", &buf_obj, &spans_obj, &lengths_obj)) return NULL;
    Held h = {"rle_list_strings"};
    const char *buf; const int64_t *spans; int64_t *lengths;
    Py_ssize_t size = take_text(&h, buf_obj, "buf", &buf), n = size < 0 ? -1 : take(&h, spans_obj, "spans", I64, 0, &spans);
    if (n < 0 || (n % 2 && fail(&h, PyExc_ValueError, "spans holds %zd items, expected [offset, length] pairs", n) < 0)
        || expect_spans(&h, "buf", spans, spans + 1, 2, NULL, 0, n / 2, size) < 0
        || expect_count(&h, "lengths", take(&h, lengths_obj, "lengths", I64, 1, &lengths), n / 2, "one per span") < 0) {
        release(&h); return NULL;
    }
    Vec out = {0};
    int result;
    Py_BEGIN_ALLOW_THREADS
    result = rle_list_strings(buf, spans, n / 2, &out, lengths);
    Py_END_ALLOW_THREADS
    release(&h);
    PyObject *strings = result == EC_NO_MEMORY ? PyErr_NoMemory() : column_of(&out);
    free(out.data);
    return strings;
}

/* An RLE table (names[0..2]: buf, starts i64[n], lengths i64[n]): n, or -1. */
static Py_ssize_t take_table(Held *h, PyObject *const *o, const char *const *names, int raw, RleTable *t, Py_ssize_t *size) {
    Py_ssize_t ns, nl;
    if ((*size = take_text(h, o[0], names[0], &t->buf)) < 0 || (ns = take(h, o[1], names[1], I64, 0, &t->starts)) < 0
        || (nl = take(h, o[2], names[2], I64, 0, &t->lengths)) < 0
        || expect_count(h, names[2], nl, ns, "one per string: as many as starts") < 0) return -1;
    t->raw = raw;
    return ns;
}

/* rle_stats(buf, starts i64[n], lengths i64[n], raw, heights i64[n], lo, hi, status i8[n],
 *           areas i64[n], totals i64[n], boxes i64[4n])  (evalcore.h: rle_stats) */
static PyObject *py_rle_stats(PyObject *self, PyObject *args) {
    PyObject *table[3], *heights_obj, *status_obj, *areas_obj, *totals_obj, *boxes_obj;
    static const char *const table_names[3] = {"buf", "starts", "lengths"};
    int raw; Py_ssize_t lo, hi;
    if (!PyArg_ParseTuple(args, "OOOpOnnOOOO", &table[0], &table[1], &table[2], &raw, &heights_obj, &lo, &hi,
                          &status_obj, &areas_obj, &totals_obj, &boxes_obj)) return NULL;
    Held h = {"rle_stats"};
    RleTable t; Py_ssize_t size;
    const int64_t *heights; int8_t *status; int64_t *areas, *totals, *boxes;
    Py_ssize_t n = take_table(&h, table, table_names, raw, &t, &size);
    if (n < 0
        || expect_count(&h, "heights", take(&h, heights_obj, "heights", I64, 0, &heights), n, "one per string") < 0
        || expect_count(&h, "status", take(&h, status_obj, "status", I8, 1, &status), n, "one per string") < 0
        || expect_count(&h, "areas", take(&h, areas_obj, "areas", I64, 1, &areas), n, "one per string") < 0
        || expect_count(&h, "totals", take(&h, totals_obj, "totals", I64, 1, &totals), n, "one per string") < 0
        || expect_count(&h, "boxes", take(&h, boxes_obj, "boxes", I64, 1, &boxes), 4 * n, "4 per string") < 0
        || expect_range(&h, "string", lo, hi, n) < 0
        || expect_spans(&h, "buf", t.starts, t.lengths, 1, status, lo, hi, size) < 0) {
        release(&h); return NULL;
    }
    int result;
    Py_BEGIN_ALLOW_THREADS
    result = rle_stats(&t, heights, lo, hi, status, areas, totals, boxes);
    Py_END_ALLOW_THREADS
    return finish(&h, result);
}

/* ------------------------------------------------------------------ polygons */
/* a[first..stop-1] non-decreasing within low..high. */
static int expect_offsets(Held *h, const char *name, const int64_t *a, int64_t first, int64_t stop, int64_t low, int64_t high) {
    for (int64_t i = first; i < stop; i++)
        if (a[i] < low || a[i] > high || (i > first && a[i] < a[i - 1]))
            return fail(h, PyExc_ValueError, "%s[%lld] = %lld is not within %lld..%lld or decreases", name, (long long)i,
                        (long long)a[i], (long long)low, (long long)high);
    return 0;
}

/* polygon_rle_strings(xy f64[2P], point_start i64[Q+1], polygon_start i64[N+1], sizes i64[2N],
 *                     lo, hi, lengths i64[N] out) -> the strings of objects lo..hi-1, one after another
 *                     (a column: column_of). */
static PyObject *py_polygon_rle_strings(PyObject *self, PyObject *args) {
    PyObject *xy_obj, *ps_obj, *gs_obj, *sizes_obj, *lengths_obj;
    Py_ssize_t lo, hi;
    if (!PyArg_ParseTuple(args, "OOOOnnO", &xy_obj, &ps_obj, &gs_obj, &sizes_obj, &lo, &hi, &lengths_obj)) return NULL;
    Held h = {"polygon_rle_strings"};
    const double *xy; const int64_t *point_start, *polygon_start, *sizes; int64_t *lengths;
    Py_ssize_t nxy = take(&h, xy_obj, "xy", F64, 0, &xy);
    Py_ssize_t nps = take(&h, ps_obj, "point_start", I64, 0, &point_start);
    Py_ssize_t ngs = take(&h, gs_obj, "polygon_start", I64, 0, &polygon_start);
    if (nxy < 0 || nps < 0 || ngs < 0) { release(&h); return NULL; }
    Py_ssize_t n = ngs - 1;
    if ((nxy % 2 && fail(&h, PyExc_ValueError, "xy holds %zd items, expected [x, y] pairs", nxy) < 0)
        || (nps < 1 && fail(&h, PyExc_ValueError, "point_start is empty, expected polygons + 1 items") < 0)
        || (ngs < 1 && fail(&h, PyExc_ValueError, "polygon_start is empty, expected objects + 1 items") < 0)
        || expect_count(&h, "sizes", take(&h, sizes_obj, "sizes", I64, 0, &sizes), 2 * n, "[h, w] per object") < 0
        || expect_count(&h, "lengths", take(&h, lengths_obj, "lengths", I64, 1, &lengths), n, "one per object") < 0
        || expect_range(&h, "object", lo, hi, n) < 0
        || (hi > lo && expect_offsets(&h, "polygon_start", polygon_start, lo, hi + 1, 0, nps - 1) < 0)) {
        release(&h); return NULL;
    }
    for (int64_t i = lo; i < hi; i++) {
        int64_t height = sizes[2 * i], width = sizes[2 * i + 1];
        if (height < 1 || width < 1 || height > (INT32_MAX - 1) / width) {
            fail(&h, PyExc_ValueError, "sizes[%lld] = [%lld, %lld]: a size needs 1 <= h, w and h w < 2^31 - 1", (long long)i,
                 (long long)height, (long long)width);
            release(&h); return NULL;
        }
        int64_t p_lo = polygon_start[i], p_hi = polygon_start[i + 1];
        if (p_hi > p_lo && expect_offsets(&h, "point_start", point_start, p_lo, p_hi + 1, 0, nxy / 2) < 0) { release(&h); return NULL; }
        for (int64_t c = p_hi > p_lo ? 2 * point_start[p_lo] : 0; c < (p_hi > p_lo ? 2 * point_start[p_hi] : 0); c++)
            if (!(fabs(xy[c]) <= POLYGON_COORDINATE_LIMIT)) {
                fail(&h, PyExc_ValueError, "xy[%lld] = %g is not finite within +-%g", (long long)c, xy[c], POLYGON_COORDINATE_LIMIT);
                release(&h); return NULL;
            }
    }
    Vec out = {0};
    int result;
    Py_BEGIN_ALLOW_THREADS
    result = polygon_rle_strings(xy, point_start, polygon_start, sizes, lo, hi, &out, lengths);
    Py_END_ALLOW_THREADS
    release(&h);
    PyObject *strings = result == EC_NO_MEMORY ? PyErr_NoMemory() : column_of(&out);
    free(out.data);
    return strings;
}

/* ------------------------------------------------------------------ IoU */
/* A mask table with its statistics (evalcore.h: Masks), arguments o[0..7] named names[0..7]
 * (buf, starts, lengths, sizes, status, areas, boxes, totals): n, or -1. */
static Py_ssize_t take_masks(Held *h, PyObject *const *o, const char *const *names, int raw, Masks *m) {
    Py_ssize_t size, n = take_table(h, o, names, raw, &m->rle, &size);
    if (n < 0
        || expect_count(h, names[3], take(h, o[3], names[3], I64, 0, &m->sizes), 2 * n, "[h, w] per mask") < 0
        || expect_count(h, names[4], take(h, o[4], names[4], I8, 1, &m->status), n, "one per mask") < 0
        || expect_count(h, names[5], take(h, o[5], names[5], I64, 1, &m->areas), n, "one per mask") < 0
        || expect_count(h, names[6], take(h, o[6], names[6], I64, 1, &m->boxes), 4 * n, "4 per mask") < 0
        || expect_count(h, names[7], take(h, o[7], names[7], I64, 1, &m->totals), n, "one per mask") < 0
        || expect_spans(h, names[0], m->rle.starts, m->rle.lengths, 1, NULL, 0, n, size) < 0) return -1;
    return n;
}

/* segm_ious(gt_buf, gt_starts, gt_lengths, gt_raw, gt_sizes i64[2G'], gt_status i8[G'],
 *           gt_areas i64[G'], gt_boxes i64[4G'], gt_totals i64[G'], gt_crowd u8[G'],
 *           dt_buf, dt_starts, dt_lengths, dt_raw, dt_sizes i64[2D'], dt_status i8[D'],
 *           dt_areas i64[D'], dt_boxes i64[4D'], dt_totals i64[D'],
 *           gt_order i64[G], dt_order i64[D], gt_start i64[B+1], dt_start i64[B+1],
 *           iou_start i64[B], lo, hi, out f64[P])  (evalcore.h: segm_ious) */
static PyObject *py_segm_ious(PyObject *self, PyObject *args) {
    PyObject *g[8], *d[8], *crowd_obj, *go_obj, *do_obj, *gs_obj, *ds_obj, *is_obj, *out_obj;
    int graw, draw; Py_ssize_t lo, hi;
    if (!PyArg_ParseTuple(args, "OOOpOOOOOOOOOpOOOOOOOOOOnnO", &g[0], &g[1], &g[2], &graw, &g[3], &g[4], &g[5], &g[6],
                          &g[7], &crowd_obj, &d[0], &d[1], &d[2], &draw, &d[3], &d[4], &d[5], &d[6], &d[7],
                          &go_obj, &do_obj, &gs_obj, &ds_obj, &is_obj, &lo, &hi, &out_obj)) return NULL;
    static const char *const gt_names[8] = {"gt_buf", "gt_starts", "gt_lengths", "gt_sizes", "gt_status", "gt_areas", "gt_boxes", "gt_totals"};
    static const char *const dt_names[8] = {"dt_buf", "dt_starts", "dt_lengths", "dt_sizes", "dt_status", "dt_areas", "dt_boxes", "dt_totals"};
    Held h = {"segm_ious"};
    Masks gt, dt; Blocks blocks;
    const uint8_t *crowd; const int64_t *go, *dor; double *out;
    Py_ssize_t G1, D1, G, D, P;
    if ((G1 = take_masks(&h, g, gt_names, graw, &gt)) < 0 || (D1 = take_masks(&h, d, dt_names, draw, &dt)) < 0
        || expect_count(&h, "gt_crowd", take(&h, crowd_obj, "gt_crowd", U8, 0, &crowd), G1, "one per gt mask") < 0
        || (G = take(&h, go_obj, "gt_order", I64, 0, &go)) < 0 || (D = take(&h, do_obj, "dt_order", I64, 0, &dor)) < 0
        || take_blocks(&h, gs_obj, ds_obj, is_obj, &blocks) < 0 || (P = take(&h, out_obj, "out", F64, 1, &out)) < 0
        || expect_range(&h, "block", lo, hi, blocks.n_blocks) < 0
        || expect_blocks(&h, &blocks, lo, hi, G, D, P) < 0
        || (hi > lo && expect_indices(&h, "gt_order", go, blocks.gt_start[lo], blocks.gt_start[hi], 0, G1) < 0)
        || (hi > lo && expect_indices(&h, "dt_order", dor, blocks.dt_start[lo], blocks.dt_start[hi], 0, D1) < 0)) {
        release(&h); return NULL;
    }
    int result;
    Py_BEGIN_ALLOW_THREADS
    result = segm_ious(&gt, crowd, &dt, go, dor, &blocks, lo, hi, out);
    Py_END_ALLOW_THREADS
    return finish(&h, result);
}

/* bbox_ious(gt_boxes f64[4G'], gt_crowd u8[G'], dt_boxes f64[4D'], gt_order i64[G], dt_order i64[D],
 *           gt_start i64[B+1], dt_start i64[B+1], iou_start i64[B], lo, hi, out f64[P])  (evalcore.h: bbox_ious) */
static PyObject *py_bbox_ious(PyObject *self, PyObject *args) {
    PyObject *gb_obj, *crowd_obj, *db_obj, *go_obj, *do_obj, *gs_obj, *ds_obj, *is_obj, *out_obj;
    Py_ssize_t lo, hi;
    if (!PyArg_ParseTuple(args, "OOOOOOOOnnO", &gb_obj, &crowd_obj, &db_obj, &go_obj, &do_obj, &gs_obj, &ds_obj,
                          &is_obj, &lo, &hi, &out_obj)) return NULL;
    Held h = {"bbox_ious"};
    const double *gb, *db; const uint8_t *crowd; const int64_t *go, *dor; double *out; Blocks blocks;
    Py_ssize_t G4, D4, G, D, P;
    if ((G4 = take(&h, gb_obj, "gt_boxes", F64, 0, &gb)) < 0
        || expect_count(&h, "gt_crowd", take(&h, crowd_obj, "gt_crowd", U8, 0, &crowd), G4 / 4, "one per gt box") < 0
        || expect_count(&h, "gt_boxes", G4, 4 * (G4 / 4), "4 per box") < 0
        || (D4 = take(&h, db_obj, "dt_boxes", F64, 0, &db)) < 0 || expect_count(&h, "dt_boxes", D4, 4 * (D4 / 4), "4 per box") < 0
        || (G = take(&h, go_obj, "gt_order", I64, 0, &go)) < 0 || (D = take(&h, do_obj, "dt_order", I64, 0, &dor)) < 0
        || take_blocks(&h, gs_obj, ds_obj, is_obj, &blocks) < 0 || (P = take(&h, out_obj, "out", F64, 1, &out)) < 0
        || expect_range(&h, "block", lo, hi, blocks.n_blocks) < 0
        || expect_blocks(&h, &blocks, lo, hi, G, D, P) < 0
        || (hi > lo && expect_indices(&h, "gt_order", go, blocks.gt_start[lo], blocks.gt_start[hi], 0, G4 / 4) < 0)
        || (hi > lo && expect_indices(&h, "dt_order", dor, blocks.dt_start[lo], blocks.dt_start[hi], 0, D4 / 4) < 0)) {
        release(&h); return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    bbox_ious(gb, crowd, db, go, dor, &blocks, lo, hi, out);
    Py_END_ALLOW_THREADS
    return finish(&h, 0);
}

/* box_centres_outside(bbox f64[4n], image_index i64[n], sizes i64[2m], out u8[n])  (evalcore.h) */
static PyObject *py_box_centres_outside(PyObject *self, PyObject *args) {
    PyObject *bbox_obj, *index_obj, *sizes_obj, *out_obj;
    if (!PyArg_ParseTuple(args, "OOOO", &bbox_obj, &index_obj, &sizes_obj, &out_obj)) return NULL;
    Held h = {"box_centres_outside"};
    const double *bbox; const int64_t *image_index, *sizes; uint8_t *out;
    Py_ssize_t N4, M2;
    if ((N4 = take(&h, bbox_obj, "bbox", F64, 0, &bbox)) < 0 || expect_count(&h, "bbox", N4, 4 * (N4 / 4), "4 per box") < 0
        || (M2 = take(&h, sizes_obj, "sizes", I64, 0, &sizes)) < 0
        || expect_count(&h, "sizes", M2, 2 * (M2 / 2), "[height, width] per image") < 0
        || expect_count(&h, "image_index", take(&h, index_obj, "image_index", I64, 0, &image_index), N4 / 4, "one per box") < 0
        || expect_count(&h, "out", take(&h, out_obj, "out", U8, 1, &out), N4 / 4, "one per box") < 0
        || expect_indices(&h, "image_index", image_index, 0, N4 / 4, 0, M2 / 2) < 0) {
        release(&h); return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    box_centres_outside(bbox, image_index, sizes, N4 / 4, out);
    Py_END_ALLOW_THREADS
    return finish(&h, 0);
}

/* keypoint_means_outside(keypoints f64[3Kn], image_index i64[n], sizes i64[2m], out u8[n])  (evalcore.h) */
static PyObject *py_keypoint_means_outside(PyObject *self, PyObject *args) {
    PyObject *keypoints_obj, *index_obj, *sizes_obj, *out_obj;
    if (!PyArg_ParseTuple(args, "OOOO", &keypoints_obj, &index_obj, &sizes_obj, &out_obj)) return NULL;
    Held h = {"keypoint_means_outside"};
    const double *keypoints; const int64_t *image_index, *sizes; uint8_t *out;
    Py_ssize_t NK, M2, N;
    if ((NK = take(&h, keypoints_obj, "keypoints", F64, 0, &keypoints)) < 0
        || (N = take(&h, out_obj, "out", U8, 1, &out)) < 0
        || (N > 0 && expect_count(&h, "keypoints", NK, 3 * N * (NK / (3 * N)), "3 per joint, the same joints per detection") < 0)
        || (M2 = take(&h, sizes_obj, "sizes", I64, 0, &sizes)) < 0
        || expect_count(&h, "sizes", M2, 2 * (M2 / 2), "[height, width] per image") < 0
        || expect_count(&h, "image_index", take(&h, index_obj, "image_index", I64, 0, &image_index), N, "one per detection") < 0
        || expect_indices(&h, "image_index", image_index, 0, N, 0, M2 / 2) < 0) {
        release(&h); return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    keypoint_means_outside(keypoints, N > 0 ? NK / (3 * N) : 0, image_index, sizes, N, out);
    Py_END_ALLOW_THREADS
    return finish(&h, 0);
}

/* max_iou_inclusive(boxes f64[4n], starts i64[g+1], out f64[n])  (evalcore.h: max_iou_inclusive) */
static PyObject *py_max_iou_inclusive(PyObject *self, PyObject *args) {
    PyObject *boxes_obj, *starts_obj, *out_obj;
    if (!PyArg_ParseTuple(args, "OOO", &boxes_obj, &starts_obj, &out_obj)) return NULL;
    Held h = {"max_iou_inclusive"};
    const double *boxes; const int64_t *starts; double *out;
    Py_ssize_t N4, S, N;
    if ((N4 = take(&h, boxes_obj, "boxes", F64, 0, &boxes)) < 0 || expect_count(&h, "boxes", N4, 4 * (N4 / 4), "4 per box") < 0
        || (S = take(&h, starts_obj, "starts", I64, 0, &starts)) < 0
        || (S == 0 && fail(&h, PyExc_ValueError, "starts is empty, expected len(groups) + 1 items") < 0)
        || (S > 0 && starts[0] != 0 && fail(&h, PyExc_ValueError, "starts[0] = %lld, expected 0", (long long)starts[0]) < 0)
        || (S > 0 && expect_offsets(&h, "starts", starts, 0, S, 0, N4 / 4) < 0)
        || (S > 0 && starts[S - 1] != N4 / 4 && fail(&h, PyExc_ValueError, "starts[%zd] = %lld, expected the %zd boxes", S - 1,
                                                   (long long)starts[S - 1], N4 / 4) < 0)
        || expect_count(&h, "out", (N = take(&h, out_obj, "out", F64, 1, &out)), N4 / 4, "one per box") < 0) {
        release(&h); return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    max_iou_inclusive(boxes, starts, S - 1, out);
    Py_END_ALLOW_THREADS
    return finish(&h, 0);
}

/* ------------------------------------------------------------------ sorting */
/* argsort_descending(values f64[n], out i64[n])  (evalcore.h: a stable radix argsort) */
static PyObject *py_argsort_descending(PyObject *self, PyObject *args) {
    PyObject *values_obj, *out_obj;
    if (!PyArg_ParseTuple(args, "OO", &values_obj, &out_obj)) return NULL;
    Held h = {"argsort_descending"};
    const double *values; int64_t *out;
    Py_ssize_t n;
    if ((n = take(&h, values_obj, "values", F64, 0, &values)) < 0
        || expect_count(&h, "out", take(&h, out_obj, "out", I64, 1, &out), n, "one per value") < 0) {
        release(&h); return NULL;
    }
    int result;
    Py_BEGIN_ALLOW_THREADS
    result = argsort_descending(values, n, out);
    Py_END_ALLOW_THREADS
    return finish(&h, result);
}

/* block_order(block i64[n], scores f64[n], max_det, order i64[n] out, rank i64[n] out,
 *             by_score i64[n] out) -> kept (evalcore.h: block_order; outputs [:kept] written) */
static PyObject *py_block_order(PyObject *self, PyObject *args) {
    PyObject *block_obj, *scores_obj, *order_obj, *rank_obj, *by_score_obj; Py_ssize_t max_det;
    if (!PyArg_ParseTuple(args, "OOnOOO", &block_obj, &scores_obj, &max_det, &order_obj, &rank_obj, &by_score_obj)) return NULL;
    Held h = {"block_order"};
    const int64_t *block; const double *scores; int64_t *order, *rank, *by_score;
    Py_ssize_t n;
    if ((n = take(&h, block_obj, "block", I64, 0, &block)) < 0
        || expect_count(&h, "scores", take(&h, scores_obj, "scores", F64, 0, &scores), n, "one per detection: len(block)") < 0
        || (max_det < 0 && fail(&h, PyExc_ValueError, "max_det = %zd is negative", max_det) < 0)
        || expect_count(&h, "order", take(&h, order_obj, "order", I64, 1, &order), n, "room for every detection: len(block)") < 0
        || expect_count(&h, "rank", take(&h, rank_obj, "rank", I64, 1, &rank), n, "room for every detection: len(block)") < 0
        || expect_count(&h, "by_score", take(&h, by_score_obj, "by_score", I64, 1, &by_score), n,
                        "room for every detection: len(block)") < 0) {
        release(&h); return NULL;
    }
    int64_t kept;
    Py_BEGIN_ALLOW_THREADS
    kept = block_order(block, scores, n, max_det, order, rank, by_score);
    Py_END_ALLOW_THREADS
    release(&h);
    if (kept == EC_NO_MEMORY) return PyErr_NoMemory();
    return PyLong_FromLongLong(kept);
}

/* ------------------------------------------------------------------ OKS */
/* oks_exponents(dt_kpts f64[D'*3K], gt_kpts f64[G'*3K], gt_boxes f64[4G'], gt_areas f64[G'],
 *               variances f64[K], dt i64[P], gt i64[P], out f64[P*K])  (evalcore.h: oks_exponents) */
static PyObject *py_oks_exponents(PyObject *self, PyObject *args) {
    PyObject *dk_obj, *gk_obj, *gb_obj, *ga_obj, *v_obj, *d_obj, *g_obj, *out_obj;
    if (!PyArg_ParseTuple(args, "OOOOOOOO", &dk_obj, &gk_obj, &gb_obj, &ga_obj, &v_obj, &d_obj, &g_obj, &out_obj)) return NULL;
    Held h = {"oks_exponents"};
    const double *dk, *gk, *gb, *ga, *v; const int64_t *d, *g; double *out;
    Py_ssize_t DK, G, K, P;
    if ((DK = take(&h, dk_obj, "dt_kpts", F64, 0, &dk)) < 0 || (G = take(&h, ga_obj, "gt_areas", F64, 0, &ga)) < 0
        || (K = take(&h, v_obj, "variances", F64, 0, &v)) < 0
        || expect_count(&h, "gt_kpts", take(&h, gk_obj, "gt_kpts", F64, 0, &gk), 3 * K * G, "3 * len(variances) per gt area") < 0
        || expect_count(&h, "gt_boxes", take(&h, gb_obj, "gt_boxes", F64, 0, &gb), 4 * G, "4 per gt area") < 0
        || (K && expect_count(&h, "dt_kpts", DK, 3 * K * (DK / (3 * K)), "3 * len(variances) per detection") < 0)
        || (P = take(&h, d_obj, "dt", I64, 0, &d)) < 0
        || expect_count(&h, "gt", take(&h, g_obj, "gt", I64, 0, &g), P, "one per pair: len(dt)") < 0
        || expect_count(&h, "out", take(&h, out_obj, "out", F64, 1, &out), P * K, "len(dt) * len(variances)") < 0
        || expect_indices(&h, "gt", g, 0, P, 0, G) < 0
        || (K && expect_indices(&h, "dt", d, 0, P, 0, DK / (3 * K)) < 0)) {
        release(&h); return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    oks_exponents(dk, gk, gb, ga, v, K, d, g, P, out);
    Py_END_ALLOW_THREADS
    return finish(&h, 0);
}

/* oks_means(terms f64[P*K], gt_kpts f64[G'*3K], gt i64[P], out f64[P])  (evalcore.h: oks_means) */
static PyObject *py_oks_means(PyObject *self, PyObject *args) {
    PyObject *t_obj, *gk_obj, *g_obj, *out_obj;
    if (!PyArg_ParseTuple(args, "OOOO", &t_obj, &gk_obj, &g_obj, &out_obj)) return NULL;
    Held h = {"oks_means"};
    const double *t, *gk; const int64_t *g; double *out;
    Py_ssize_t TK, GK, P, K;
    if ((TK = take(&h, t_obj, "terms", F64, 0, &t)) < 0 || (GK = take(&h, gk_obj, "gt_kpts", F64, 0, &gk)) < 0
        || (P = take(&h, g_obj, "gt", I64, 0, &g)) < 0
        || expect_count(&h, "out", take(&h, out_obj, "out", F64, 1, &out), P, "one per pair: len(gt)") < 0
        || (K = P ? TK / P : 0, expect_count(&h, "terms", TK, P * K, "K per pair") < 0)
        || (K && expect_count(&h, "gt_kpts", GK, 3 * K * (GK / (3 * K)), "3K per gt") < 0)
        || (K && expect_indices(&h, "gt", g, 0, P, 0, GK / (3 * K)) < 0)) {
        release(&h); return NULL;
    }
    int result;
    Py_BEGIN_ALLOW_THREADS
    result = oks_means(t, gk, g, P, K, out);
    Py_END_ALLOW_THREADS
    return finish(&h, result);
}

/* ------------------------------------------------------------------ matching */
/* match_candidates(ious f64[P], det_start i64[B+1], gt_start i64[B+1], iou_start i64[B], lowest,
 *                  out i64[dt_start[B] - dt_start[0] or more]) -> their number  (evalcore.h) */
static PyObject *py_match_candidates(PyObject *self, PyObject *args) {
    PyObject *iou_obj, *ds_obj, *gs_obj, *is_obj, *out_obj;
    double lowest;
    if (!PyArg_ParseTuple(args, "OOOOdO", &iou_obj, &ds_obj, &gs_obj, &is_obj, &lowest, &out_obj)) return NULL;
    Held h = {"match_candidates"};
    const double *iou; int64_t *out; Blocks blocks;
    Py_ssize_t P, n_out;
    if ((P = take(&h, iou_obj, "ious", F64, 0, &iou)) < 0 || take_blocks(&h, gs_obj, ds_obj, is_obj, &blocks) < 0
        || (n_out = take(&h, out_obj, "out", I64, 1, &out)) < 0
        || expect_blocks(&h, &blocks, 0, blocks.n_blocks, INT64_MAX, INT64_MAX, P) < 0) {
        release(&h); return NULL;
    }
    int64_t B = blocks.n_blocks, need = blocks.dt_start[B] - blocks.dt_start[0];
    if (n_out < need) {
        fail(&h, PyExc_ValueError, "out holds %zd items, expected at least %lld (the detections)", n_out, (long long)need);
        release(&h); return NULL;
    }
    int64_t n;
    Py_BEGIN_ALLOW_THREADS
    n = match_candidates(iou, &blocks, lowest, out);
    Py_END_ALLOW_THREADS
    release(&h);
    return PyLong_FromLongLong(n);
}

/* match(ious f64[P], det_start i64[B+1], gt_start i64[B+1], iou_start i64[B], gt_state u8[V*G],
 *       gt_crowd u8[G], thresholds f64[T], candidates i64[C], v_lo, v_hi, out i32[V*T*C])  (evalcore.h: match) */
static PyObject *py_match(PyObject *self, PyObject *args) {
    PyObject *iou_obj, *ds_obj, *gs_obj, *is_obj, *st_obj, *crowd_obj, *thr_obj, *cand_obj, *out_obj;
    Py_ssize_t v_lo, v_hi;
    if (!PyArg_ParseTuple(args, "OOOOOOOOnnO", &iou_obj, &ds_obj, &gs_obj, &is_obj, &st_obj, &crowd_obj, &thr_obj,
                          &cand_obj, &v_lo, &v_hi, &out_obj)) return NULL;
    Held h = {"match"};
    const double *iou, *thr; const uint8_t *state, *crowd; const int64_t *cand; int32_t *out; Blocks blocks;
    Py_ssize_t P, VG, G, T, C, n_out;
    if ((P = take(&h, iou_obj, "ious", F64, 0, &iou)) < 0 || take_blocks(&h, gs_obj, ds_obj, is_obj, &blocks) < 0
        || (VG = take(&h, st_obj, "gt_state", U8, 0, &state)) < 0 || (G = take(&h, crowd_obj, "gt_crowd", U8, 0, &crowd)) < 0
        || (T = take(&h, thr_obj, "thresholds", F64, 0, &thr)) < 0 || (C = take(&h, cand_obj, "candidates", I64, 0, &cand)) < 0
        || (n_out = take(&h, out_obj, "out", I32, 1, &out)) < 0
        || (G == 0 && fail(&h, PyExc_ValueError, "gt_crowd is empty: no ground truth to match") < 0)
        || expect_count(&h, "gt_state", VG, G * (VG / G), "one per (variant, gt): a multiple of len(gt_crowd)") < 0
        || expect_count(&h, "out", n_out, (VG / G) * T * C, "variants x len(thresholds) x len(candidates)") < 0
        || expect_range(&h, "variant", v_lo, v_hi, VG / G) < 0
        || expect_blocks(&h, &blocks, 0, blocks.n_blocks, G, INT64_MAX, P) < 0) {
        release(&h); return NULL;
    }
    const int64_t *ds = blocks.dt_start;
    for (Py_ssize_t c = 0; c < C; c++)
        if (cand[c] < ds[0] || cand[c] >= ds[blocks.n_blocks] || (c && cand[c] <= cand[c - 1])) {
            fail(&h, PyExc_ValueError, "candidates must ascend within the detections %lld..%lld (candidates[%zd] = %lld)",
                 (long long)ds[0], (long long)ds[blocks.n_blocks] - 1, c, (long long)cand[c]);
            release(&h); return NULL;
        }
    for (Py_ssize_t k = v_lo * G; k < v_hi * G; k++)
        if (state[k] > GT_ABSENT) {
            fail(&h, PyExc_ValueError, "gt_state[%zd] = %d is not a ground-truth state (0..%d)", k, state[k], GT_ABSENT);
            release(&h); return NULL;
        }
    int result;
    Py_BEGIN_ALLOW_THREADS
    result = match(iou, &blocks, state, crowd, G, thr, T, cand, C, v_lo, v_hi, out);
    Py_END_ALLOW_THREADS
    return finish(&h, result);
}

/* ------------------------------------------------------------------ accumulation */
/* accumulate(*, matches i32 (A, T, C), candidate_of i32[D], gt_state u8[A*G], gt_ids i64[G],
 *            gt_used u8[G], gt_cat i64[G], order i64[D], dt_used u8[D], dt_cat i64[D],
 *            dt_rank i64[D], dt_scores f64[D], dt_out u8[A*D], rec_thrs f64[R], max_dets i64[M],
 *            categories K, category_lo, category_hi, area_lo, area_hi, precision f64[T*R*K*A*M],
 *            recall f64[T*K*A*M],
 *            scores f64[T*R*K*A*M])  (evalcore.h: accumulate; keyword arguments only) */
static PyObject *py_accumulate(PyObject *self, PyObject *args, PyObject *kwargs) {
    static char *names[] = {"matches", "candidate_of", "gt_state", "gt_ids", "gt_used", "gt_cat", "order", "dt_used",
                            "dt_cat", "dt_rank", "dt_scores", "dt_out", "rec_thrs", "max_dets", "categories",
                            "category_lo", "category_hi", "area_lo", "area_hi", "precision", "recall", "scores", NULL};
    PyObject *o[14], *p_obj, *r_obj, *s_obj;
    Py_ssize_t K, k_lo, k_hi, a_lo, a_hi;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|$OOOOOOOOOOOOOOnnnnnOOO:accumulate", names, &o[0], &o[1], &o[2], &o[3],
                                     &o[4], &o[5], &o[6], &o[7], &o[8], &o[9], &o[10], &o[11], &o[12], &o[13], &K,
                                     &k_lo, &k_hi, &a_lo, &a_hi, &p_obj, &r_obj, &s_obj)) return NULL;
    /* "|$" makes every argument keyword-only; all are required. */
    Py_ssize_t given = kwargs ? PyDict_Size(kwargs) : 0;
    if (given != 22) {
        for (int i = 0; names[i]; i++)
            if (!kwargs || !PyDict_GetItemString(kwargs, names[i]))
                return PyErr_Format(PyExc_TypeError, "accumulate() missing required keyword argument '%s'", names[i]);
    }
    Held h = {"accumulate"};
    AccumulateInput in; AccumulateOutput out;
    Py_ssize_t G, D, R, M, n;
    if (take(&h, o[0], "matches", I32, 0, &in.matches) < 0) { release(&h); return NULL; }
    const Py_buffer *mv = &h.views[0];
    if (mv->ndim != 3) {
        fail(&h, PyExc_ValueError, "matches must be 3-dimensional (area ranges, thresholds, candidates), not %d-dimensional", mv->ndim);
        release(&h); return NULL;
    }
    in.A = mv->shape[0]; in.T = mv->shape[1]; in.C = mv->shape[2]; in.K = K;
    if ((G = take(&h, o[3], "gt_ids", I64, 0, &in.gt_ids)) < 0 || (D = take(&h, o[7], "dt_used", U8, 0, &in.dt_used)) < 0
        || (R = take(&h, o[12], "rec_thrs", F64, 0, &in.rec_thrs)) < 0 || (M = take(&h, o[13], "max_dets", I64, 0, &in.max_dets)) < 0
        || (K < 0 && fail(&h, PyExc_ValueError, "categories = %zd is negative", K) < 0)
        || expect_count(&h, "candidate_of", take(&h, o[1], "candidate_of", I32, 0, &in.candidate_of), D, "one per detection: len(dt_used)") < 0
        || expect_count(&h, "gt_state", take(&h, o[2], "gt_state", U8, 0, &in.gt_state), in.A * G, "area ranges x len(gt_ids)") < 0
        || expect_count(&h, "gt_used", take(&h, o[4], "gt_used", U8, 0, &in.gt_used), G, "one per gt: len(gt_ids)") < 0
        || expect_count(&h, "gt_cat", take(&h, o[5], "gt_cat", I64, 0, &in.gt_cat), G, "one per gt: len(gt_ids)") < 0
        || expect_count(&h, "order", take(&h, o[6], "order", I64, 0, &in.order), D, "one per detection: len(dt_used)") < 0
        || expect_count(&h, "dt_cat", take(&h, o[8], "dt_cat", I64, 0, &in.dt_cat), D, "one per detection: len(dt_used)") < 0
        || expect_count(&h, "dt_rank", take(&h, o[9], "dt_rank", I64, 0, &in.dt_rank), D, "one per detection: len(dt_used)") < 0
        || expect_count(&h, "dt_scores", take(&h, o[10], "dt_scores", F64, 0, &in.dt_scores), D, "one per detection: len(dt_used)") < 0
        || expect_count(&h, "dt_out", take(&h, o[11], "dt_out", U8, 0, &in.dt_out), in.A * D, "area ranges x len(dt_used)") < 0
        || (n = in.T * R * K * in.A * M, 0)
        || expect_count(&h, "precision", take(&h, p_obj, "precision", F64, 1, &out.precision), n, "T x R x K x A x M") < 0
        || expect_count(&h, "recall", take(&h, r_obj, "recall", F64, 1, &out.recall), in.T * K * in.A * M, "T x K x A x M") < 0
        || expect_count(&h, "scores", take(&h, s_obj, "scores", F64, 1, &out.scores), n, "T x R x K x A x M") < 0
        || expect_range(&h, "category", k_lo, k_hi, K) < 0
        || expect_range(&h, "area", a_lo, a_hi, in.A) < 0) {
        release(&h); return NULL;
    }
    in.G = G; in.D = D; in.R = R; in.M = M;
    /* The indices are checked without the GIL (calls in threads check theirs side by side):
     * the first one outside its range, then the kernel. */
    Py_ssize_t bad_order = -1, bad_candidate = -1, bad_match = -1;
    int result = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < D && bad_order < 0; i++)
        if (in.order[i] < 0 || in.order[i] >= D) bad_order = i;
    for (Py_ssize_t i = 0; i < D && bad_candidate < 0 && bad_order < 0; i++)
        if (in.candidate_of[i] < -1 || in.candidate_of[i] >= in.C) bad_candidate = i;
    for (Py_ssize_t i = a_lo * in.T * in.C; i < a_hi * in.T * in.C && bad_match < 0 && bad_candidate < 0 && bad_order < 0; i++)
        if (in.matches[i] < -1 || in.matches[i] >= G) bad_match = i;  /* the rows the kernel reads */
    if (bad_order < 0 && bad_candidate < 0 && bad_match < 0) result = accumulate(&in, k_lo, k_hi, a_lo, a_hi, &out);
    Py_END_ALLOW_THREADS
    if (bad_order >= 0)
        fail(&h, PyExc_ValueError, "order[%zd] = %lld is outside 0..%zd", bad_order, (long long)in.order[bad_order], D - 1);
    else if (bad_candidate >= 0)
        fail(&h, PyExc_ValueError, "candidate_of[%zd] = %d is outside -1..%lld", bad_candidate, in.candidate_of[bad_candidate],
             (long long)in.C - 1);
    else if (bad_match >= 0)
        fail(&h, PyExc_ValueError, "matches holds %d, outside -1..%zd (the ground truths)", in.matches[bad_match], G - 1);
    if (bad_order >= 0 || bad_candidate >= 0 || bad_match >= 0) { release(&h); return NULL; }
    return finish(&h, result);
}

/* ------------------------------------------------------------------ bootstrap */
/* weighted_accumulate(item_fate u8 (N, T), item_img i32[N], item_run i32[N], list_start i64[L+1],
 *                     weights i32[S*I], images I, npig i64[S*L], totals i64[S*L*T*2], rec_thrs f64[R],
 *                     s_lo, s_hi, precision f64[S*L*T*R], recall f64[S*L*T])  (evalcore.h: weighted_accumulate) */
static PyObject *py_weighted_accumulate(PyObject *self, PyObject *args) {
    PyObject *o[8], *p_obj, *r_obj;
    Py_ssize_t I, s_lo, s_hi;
    if (!PyArg_ParseTuple(args, "OOOOOnOOOnnOO:weighted_accumulate", &o[0], &o[1], &o[2], &o[3], &o[4], &I, &o[5],
                          &o[7], &o[6], &s_lo, &s_hi, &p_obj, &r_obj)) return NULL;
    Held h = {"weighted_accumulate"};
    WeightedInput in;
    double *precision, *recall;
    Py_ssize_t N, NT, L1, SI, SL, R, T;
    if ((NT = take(&h, o[0], "item_fate", U8, 0, &in.item_fate)) < 0
        || (h.views[0].ndim != 2 && fail(&h, PyExc_ValueError, "item_fate must be 2-dimensional (items, thresholds), not %d-dimensional", h.views[0].ndim) < 0)
        || (N = take(&h, o[1], "item_img", I32, 0, &in.item_img)) < 0
        || expect_count(&h, "item_fate", h.views[0].shape[0], N, "one row per item: len(item_img)") < 0
        || expect_count(&h, "item_run", take(&h, o[2], "item_run", I32, 0, &in.item_run), N, "one per item: len(item_img)") < 0
        || (L1 = take(&h, o[3], "list_start", I64, 0, &in.list_start)) < 0
        || (SI = take(&h, o[4], "weights", I32, 0, &in.weights)) < 0
        || (SL = take(&h, o[5], "npig", I64, 0, &in.npig)) < 0
        || (R = take(&h, o[6], "rec_thrs", F64, 0, &in.rec_thrs)) < 0
        || (L1 < 1 && fail(&h, PyExc_ValueError, "list_start is empty (it holds len(lists) + 1 offsets)") < 0)
        || (I < 1 && fail(&h, PyExc_ValueError, "images = %zd: there must be at least one", I) < 0)
        || (SI % I && fail(&h, PyExc_ValueError, "weights holds %zd items, not a multiple of images = %zd", SI, I) < 0)
        || expect_count(&h, "npig", SL, (SI / I) * (L1 - 1), "samples x lists: len(weights) / images x (len(list_start) - 1)") < 0
        || (T = h.views[0].shape[1], 0)
        || expect_count(&h, "totals", take(&h, o[7], "totals", I64, 0, &in.totals), SL * T * 2,
                        "samples x lists x thresholds x 2") < 0
        || expect_count(&h, "precision", take(&h, p_obj, "precision", F64, 1, &precision), SL * T * R,
                        "samples x lists x thresholds x len(rec_thrs)") < 0
        || expect_count(&h, "recall", take(&h, r_obj, "recall", F64, 1, &recall), SL * T, "samples x lists x thresholds") < 0
        || expect_range(&h, "sample", s_lo, s_hi, SI / I) < 0) {
        release(&h); return NULL;
    }
    for (Py_ssize_t k = 0; k < NT; k++)
        if (in.item_fate[k] > 2) {
            fail(&h, PyExc_ValueError, "item_fate[%zd] = %d is not 0 (ignored), 1 (true positive) or 2 (false positive)",
                 k, in.item_fate[k]);
            release(&h); return NULL;
        }
    for (Py_ssize_t k = 0; k < N; k++)
        if (in.item_img[k] < 0 || in.item_img[k] >= I) {
            fail(&h, PyExc_ValueError, "item_img[%zd] = %d is outside 0..%zd", k, in.item_img[k], I - 1);
            release(&h); return NULL;
        }
    for (Py_ssize_t k = 0; k < L1; k++)
        if (in.list_start[k] < (k ? in.list_start[k - 1] : 0) || in.list_start[k] > N || (k == L1 - 1 && in.list_start[k] != N)) {
            fail(&h, PyExc_ValueError, "list_start must not decrease from 0 to len(item_img) = %zd (list_start[%zd] = %lld)",
                 N, k, (long long)in.list_start[k]);
            release(&h); return NULL;
        }
    for (Py_ssize_t l = 0; l + 1 < L1; l++)  /* each list cut into whole groups */
        for (int64_t q = in.list_start[l], end = in.list_start[l + 1]; q < end;) {
            int64_t m = in.item_run[q];
            int ok = m >= 1 && m <= end - q;
            for (int64_t i = q + 1; ok && i < q + m; i++) ok = in.item_run[i] == 0 && in.item_img[i] == in.item_img[q];
            if (!ok) {
                fail(&h, PyExc_ValueError, "item_run[%lld] = %lld does not start a group of list %zd (items %lld..%lld): "
                     "1, or m > 1 followed by m - 1 zeros of the same image", (long long)q, (long long)m, l,
                     (long long)in.list_start[l], (long long)end - 1);
                release(&h); return NULL;
            }
            q += m;
        }
    for (Py_ssize_t k = s_lo * (L1 - 1); k < s_hi * (L1 - 1); k++)
        if (in.npig[k] < 0) {
            fail(&h, PyExc_ValueError, "npig[%zd] = %lld is negative", k, (long long)in.npig[k]);
            release(&h); return NULL;
        }
    for (Py_ssize_t r = 0; r < R; r++)
        if (!(in.rec_thrs[r] >= 0 && in.rec_thrs[r] <= 1)) {
            fail(&h, PyExc_ValueError, "rec_thrs[%zd] = %g is not a recall in 0..1", r, in.rec_thrs[r]);
            release(&h); return NULL;
        }
    for (Py_ssize_t k = s_lo * (L1 - 1) * T * 2; k < s_hi * (L1 - 1) * T * 2; k++)
        if (in.totals[k] < 0) {  /* (the walk subtracts each step: totals below the steps' sum end it below 0) */
            fail(&h, PyExc_ValueError, "totals[%zd] = %lld is negative", k, (long long)in.totals[k]);
            release(&h); return NULL;
        }
    for (Py_ssize_t k = s_lo * I; k < s_hi * I; k++)
        if (in.weights[k] < 0) {
            fail(&h, PyExc_ValueError, "weights[%zd] = %d is negative", k, in.weights[k]);
            release(&h); return NULL;
        }
    in.L = L1 - 1; in.T = T; in.R = R; in.I = I;
    int result;
    Py_BEGIN_ALLOW_THREADS
    result = weighted_accumulate(&in, s_lo, s_hi, precision, recall);
    Py_END_ALLOW_THREADS
    return finish(&h, result);
}

/* ------------------------------------------------------------------ the module */
static PyMethodDef methods[] = {
    {"scan_results", py_scan_results, METH_VARARGS, "Columns of a COCO results file, or None (general path)."},
    {"trim_heap", py_trim_heap, METH_NOARGS, "Free heap memory handed back to the system (glibc malloc_trim)."},
    {"move_mask_strings", py_move_mask_strings, METH_VARARGS, "The counts strings of scanned segm rows, moved together."},
    {"object_members", py_object_members, METH_VARARGS, "Key and value spans of a JSON object's members, or None."},
    {"scan_coco_images", py_scan_coco_images, METH_VARARGS, "Columns of a COCO 'images' list, or None."},
    {"scan_coco_annotations", py_scan_coco_annotations, METH_VARARGS, "Columns of a COCO 'annotations' list, or None."},
    {"rle_spans_clean", py_rle_spans_clean, METH_VARARGS, "Whether raw JSON spans are clean RLE counts strings."},
    {"rle_clean_spans", py_rle_clean_spans, METH_VARARGS, "The content of raw JSON RLE spans, one after another."},
    {"rle_list_strings", py_rle_list_strings, METH_VARARGS, "Compressed RLE strings of uncompressed RLE counts lists (JSON spans)."},
    {"rle_stats", py_rle_stats, METH_VARARGS, "Areas, pixel totals and boxes of COCO compressed RLE strings."},
    {"polygon_rle_strings", py_polygon_rle_strings, METH_VARARGS, "COCO compressed RLE strings of unions of polygons."},
    {"segm_ious", py_segm_ious, METH_VARARGS, "Mask IoU of every (dt, gt) pair of a range of blocks."},
    {"bbox_ious", py_bbox_ious, METH_VARARGS, "Box IoU of every (dt, gt) pair of a range of blocks."},
    {"float_rows", py_float_rows, METH_VARARGS, "Python numbers (or lists of them) as float64, or False."},
    {"max_iou_inclusive", py_max_iou_inclusive, METH_VARARGS, "MaxIoU of boxes within their groups (inclusive pixels)."},
    {"box_centres_outside", py_box_centres_outside, METH_VARARGS, "Which boxes have their centre outside their image."},
    {"keypoint_means_outside", py_keypoint_means_outside, METH_VARARGS,
     "Which detections have the mean of their keypoints outside their image."},
    {"argsort_descending", py_argsort_descending, METH_VARARGS, "np.argsort(-values, kind='stable') of float64 values (radix)."},
    {"block_order", py_block_order, METH_VARARGS, "Detections grouped by block, by score inside, cut at max_det; and by score."},
    {"oks_exponents", py_oks_exponents, METH_VARARGS, "The exponents of COCO OKS for (dt, gt) pairs."},
    {"oks_means", py_oks_means, METH_VARARGS, "COCO OKS from exp(-e), summed as numpy sums."},
    {"match_candidates", py_match_candidates, METH_VARARGS, "Detections that reach the lowest threshold somewhere."},
    {"match", py_match, METH_VARARGS, "COCO greedy matching over blocks, variants and thresholds."},
    {"accumulate", (PyCFunction)(void (*)(void))py_accumulate, METH_VARARGS | METH_KEYWORDS,
     "COCO precision/recall accumulation for one variant (keyword arguments)."},
    {"weighted_accumulate", py_weighted_accumulate, METH_VARARGS,
     "COCO precision/recall of bootstrap samples: images weighted by the times they were drawn."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_evalcore", NULL, -1, methods};

PyMODINIT_FUNC PyInit__evalcore(void) {
    json_scan_init();
    rle_init();
    if (PyType_Ready(&ColumnType) < 0 || PyType_Ready(&ResultScanType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    if (PyModule_AddObjectRef(m, "ResultScan", (PyObject *)&ResultScanType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    if (PyModule_AddIntConstant(m, "GT_COUNTED", GT_COUNTED) < 0 || PyModule_AddIntConstant(m, "GT_IGNORED", GT_IGNORED) < 0
        || PyModule_AddIntConstant(m, "GT_ABSENT", GT_ABSENT) < 0
        || PyModule_AddIntConstant(m, "MASK_PENDING", MASK_PENDING) < 0 || PyModule_AddIntConstant(m, "MASK_DONE", MASK_DONE) < 0
        || PyModule_AddIntConstant(m, "MASK_COLUMNS_ONLY", MASK_COLUMNS_ONLY) < 0
        || PyModule_AddIntConstant(m, "MASK_TRUNCATED", RLE_TRUNCATED) < 0
        || PyModule_AddIntConstant(m, "MASK_BAD_CHARACTER", RLE_BAD_CHARACTER) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
