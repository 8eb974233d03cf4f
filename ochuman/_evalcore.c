/* Compiled core of the evaluator: COCO RLE strings -> runs, mask IoU over runs, and
 * COCO greedy matching for many (image, category) blocks and variants in one call.
 *
 * Arrays cross the boundary through the buffer protocol (numpy arrays, C-contiguous);
 * outputs are preallocated by the caller. Semantics follow pycocotools' maskApi.c
 * (rleFrString, rleIou) and COCOeval.evaluateImg bit for bit. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* The strings of a sequence of str/bytes, borrowed (valid while the sequence lives). */
static int borrow_strings(PyObject *fast, const char ***strings, Py_ssize_t **lengths) {
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
    PyObject **items = PySequence_Fast_ITEMS(fast);
    *strings = PyMem_Malloc(sizeof(char *) * (n ? n : 1));
    *lengths = PyMem_Malloc(sizeof(Py_ssize_t) * (n ? n : 1));
    if (!*strings || !*lengths) { PyErr_NoMemory(); return -1; }
    for (Py_ssize_t k = 0; k < n; k++) {
        PyObject *item = items[k];
        if (PyUnicode_Check(item)) {
            (*strings)[k] = PyUnicode_AsUTF8AndSize(item, &(*lengths)[k]);
            if (!(*strings)[k]) return -1;
        } else if (PyBytes_Check(item)) {
            (*strings)[k] = PyBytes_AS_STRING(item);
            (*lengths)[k] = PyBytes_GET_SIZE(item);
        } else {
            PyErr_Format(PyExc_TypeError, "RLE counts %zd: expected str or bytes", k);
            return -1;
        }
    }
    return 0;
}

/* count_runs(counts_list, offsets_out i64[n+1]): run offsets of each compressed RLE string
 * (a run ends at every character without the continuation bit 0x20). */
static PyObject *count_runs(PyObject *self, PyObject *args) {
    PyObject *seq; Py_buffer offsets;
    if (!PyArg_ParseTuple(args, "Ow*", &seq, &offsets)) return NULL;
    PyObject *fast = PySequence_Fast(seq, "count_runs expects a sequence");
    const char **strings = NULL; Py_ssize_t *lengths = NULL;
    int ok = fast && borrow_strings(fast, &strings, &lengths) == 0;
    if (ok) {
        Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
        int64_t *off = offsets.buf, m = 0;
        for (Py_ssize_t k = 0; k < n; k++) {
            off[k] = m;
            for (Py_ssize_t p = 0; p < lengths[k]; p++) m += !((strings[k][p] - 48) & 0x20);
        }
        off[n] = m;
    }
    PyMem_Free(strings); PyMem_Free(lengths); Py_XDECREF(fast); PyBuffer_Release(&offsets);
    if (!ok) return NULL;
    Py_RETURN_NONE;
}

/* decode_runs(counts_list, heights i64[n], offsets i64[n+1], runs_out u32[offsets[n]],
 *             areas_out i64[n], totals_out i64[n], boxes_out i64[4n]): pycocotools rleFrString
 * for every string, plus each mask's area (sum of the odd runs), pixel total (sum of all runs)
 * and inclusive pixel box [x0, y0, x1, y1] (column-major runs: x = pos / h, y = pos % h;
 * [0, 0, -1, -1] for an empty mask). A string that ends inside a number raises
 * ValueError("RLE counts k: truncated string"). */
static PyObject *decode_runs(PyObject *self, PyObject *args) {
    PyObject *seq; Py_buffer heights_buf, offsets, runs_buf, areas_buf, totals_buf, boxes_buf;
    if (!PyArg_ParseTuple(args, "Oy*y*w*w*w*w*", &seq, &heights_buf, &offsets, &runs_buf, &areas_buf,
                          &totals_buf, &boxes_buf)) return NULL;
    PyObject *fast = PySequence_Fast(seq, "decode_runs expects a sequence");
    const char **strings = NULL; Py_ssize_t *lengths = NULL;
    int ok = fast && borrow_strings(fast, &strings, &lengths) == 0;
    Py_ssize_t bad = -1;
    if (ok) {
        Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
        const int64_t *off = offsets.buf;
        uint32_t *runs = runs_buf.buf;
        int64_t *areas = areas_buf.buf, *totals = totals_buf.buf, *boxes = boxes_buf.buf;
        const int64_t *heights = heights_buf.buf;
        for (Py_ssize_t k = 0; k < n && bad < 0; k++) {
            const char *s = strings[k];
            Py_ssize_t p = 0, len = lengths[k];
            int64_t m = off[k], start = off[k], area = 0, total = 0;
            int64_t h = heights[k] > 0 ? heights[k] : 1;
            int64_t x0 = INT64_MAX, y0 = INT64_MAX, x1 = -1, y1 = -1;
            int64_t col = 0, row = 0;  /* pixel where the current run starts (column-major) */
            while (p < len) {
                long x = 0; int shift = 0, more = 1;
                while (more) {
                    if (p >= len) { bad = k; break; }
                    char c = s[p] - 48;
                    x |= (long)(c & 0x1f) << shift;
                    more = c & 0x20; p++; shift += 5;
                    if (!more && (c & 0x10)) x |= -1L << shift;
                }
                if (bad >= 0) break;
                if (m - start > 2) x += (long)runs[m - 2];
                runs[m] = (uint32_t)x;
                int64_t length = (uint32_t)x;
                /* where the run's last pixel lies: advance (col, row) by length - 1 */
                int64_t end_row = row + length - 1, end_col = col;
                if (end_row >= h) {
                    if (end_row < 2 * h) { end_row -= h; end_col++; }
                    else { end_col += end_row / h; end_row %= h; }
                }
                if (((m - start) & 1) && length > 0) {
                    if (col < x0) x0 = col;
                    if (end_col > x1) x1 = end_col;
                    if (end_col > col) { y0 = 0; y1 = h - 1; }
                    else {
                        if (row < y0) y0 = row;
                        if (end_row > y1) y1 = end_row;
                    }
                    area += length;
                }
                if (length > 0) {  /* the next run starts one pixel after this one's end */
                    row = end_row + 1; col = end_col;
                    if (row == h) { row = 0; col++; }
                }
                total += length;
                m++;
            }
            areas[k] = area; totals[k] = total;
            if (x1 < 0) { x0 = 0; y0 = 0; x1 = -1; y1 = -1; }
            boxes[4 * k] = x0; boxes[4 * k + 1] = y0; boxes[4 * k + 2] = x1; boxes[4 * k + 3] = y1;
        }
    }
    PyMem_Free(strings); PyMem_Free(lengths); Py_XDECREF(fast);
    PyBuffer_Release(&heights_buf); PyBuffer_Release(&offsets); PyBuffer_Release(&runs_buf);
    PyBuffer_Release(&areas_buf); PyBuffer_Release(&totals_buf); PyBuffer_Release(&boxes_buf);
    if (!ok) return NULL;
    if (bad >= 0) { PyErr_Format(PyExc_ValueError, "RLE counts %zd: truncated string", bad); return NULL; }
    Py_RETURN_NONE;
}

/* Intersection of two masks given as runs (alternating 0/1 runs, starting with 0s). */
static uint64_t runs_intersection(const uint32_t *a, int64_t ka, const uint32_t *b, int64_t kb) {
    if (ka == 0 || kb == 0) return 0;
    uint64_t inter = 0;
    int64_t ia = 0, ib = 0;
    uint64_t ca = a[0], cb = b[0];
    int va = 0, vb = 0;
    for (;;) {
        uint64_t c = ca < cb ? ca : cb;
        if (va && vb) inter += c;
        ca -= c; cb -= c;
        while (ca == 0) { if (++ia >= ka) return inter; ca = a[ia]; va = !va; }
        while (cb == 0) { if (++ib >= kb) return inter; cb = b[ib]; vb = !vb; }
    }
}

/* segm_iou(dt_runs u32, dt_offsets i64, dt_areas i64, dt_boxes i64, gt_runs u32,
 *          gt_offsets i64, gt_areas i64, gt_boxes i64, dt i64[P], gt i64[P], crowd u8[P],
 *          out f64[P])
 * IoU of mask dt[p] with mask gt[p]; crowd: intersection over the dt area (pycocotools).
 * Pairs whose pixel boxes do not meet are 0 without looking at the runs. */
static PyObject *segm_iou(PyObject *self, PyObject *args) {
    Py_buffer druns, doff, dareas, dboxes, gruns, goff, gareas, gboxes, dt, gt, crowd, out;
    if (!PyArg_ParseTuple(args, "y*y*y*y*y*y*y*y*y*y*y*w*", &druns, &doff, &dareas, &dboxes, &gruns,
                          &goff, &gareas, &gboxes, &dt, &gt, &crowd, &out)) return NULL;
    const uint32_t *dr = druns.buf, *gr = gruns.buf;
    const int64_t *dof = doff.buf, *gof = goff.buf, *da = dareas.buf, *ga = gareas.buf;
    const int64_t *db = dboxes.buf, *gb = gboxes.buf;
    const int64_t *d = dt.buf, *g = gt.buf; const uint8_t *cr = crowd.buf; double *o = out.buf;
    Py_ssize_t P = dt.len / (Py_ssize_t)sizeof(int64_t);
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t p = 0; p < P; p++) {
        int64_t i = d[p], j = g[p];
        const int64_t *bi = db + 4 * i, *bj = gb + 4 * j;
        if (bi[0] > bj[2] || bj[0] > bi[2] || bi[1] > bj[3] || bj[1] > bi[3]) { o[p] = 0.0; continue; }
        uint64_t inter = runs_intersection(dr + dof[i], dof[i + 1] - dof[i], gr + gof[j], gof[j + 1] - gof[j]);
        if (inter == 0) { o[p] = 0.0; continue; }
        uint64_t uni = cr[p] ? (uint64_t)da[i] : (uint64_t)(da[i] + ga[j]) - inter;
        o[p] = (double)inter / (double)uni;
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&druns); PyBuffer_Release(&doff); PyBuffer_Release(&dareas); PyBuffer_Release(&dboxes);
    PyBuffer_Release(&gruns); PyBuffer_Release(&goff); PyBuffer_Release(&gareas); PyBuffer_Release(&gboxes);
    PyBuffer_Release(&dt); PyBuffer_Release(&gt); PyBuffer_Release(&crowd); PyBuffer_Release(&out);
    Py_RETURN_NONE;
}

/* match(ious f64, det_start i64[B+1], gt_start i64[B+1], iou_start i64[B], gt_state u8[V*G],
 *       gt_crowd u8[G], thresholds f64[T], out i64[V*T*D])
 * For each block b (dets sorted by score, at most maxDets), each variant v and threshold t:
 * COCOeval.evaluateImg's greedy matching. gt_state: 0 counts, 1 ignore region, 2 absent.
 * A det takes the best available counted gt with IoU >= min(t, 1 - 1e-10) (the last one on
 * ties, as pycocotools' scan in gt order does); only if there is none, the best ignored one.
 * out[v, t, det] = global gt index, or -1. */
static PyObject *match(PyObject *self, PyObject *args) {
    Py_buffer ious, det_start, gt_start, iou_start, gt_state, gt_crowd, thresholds, out;
    if (!PyArg_ParseTuple(args, "y*y*y*y*y*y*y*w*", &ious, &det_start, &gt_start, &iou_start,
                          &gt_state, &gt_crowd, &thresholds, &out)) return NULL;
    const double *iou = ious.buf, *thr = thresholds.buf;
    const int64_t *ds = det_start.buf, *gs = gt_start.buf, *is = iou_start.buf;
    const uint8_t *state = gt_state.buf, *crowd = gt_crowd.buf;
    int64_t *res = out.buf;
    Py_ssize_t B = iou_start.len / (Py_ssize_t)sizeof(int64_t);
    Py_ssize_t T = thresholds.len / (Py_ssize_t)sizeof(double);
    Py_ssize_t G = gt_crowd.len;
    Py_ssize_t V = G ? gt_state.len / G : 0;
    Py_ssize_t D = B ? ds[B] : 0;
    int64_t max_g = 0;
    for (Py_ssize_t b = 0; b < B; b++) if (gs[b + 1] - gs[b] > max_g) max_g = gs[b + 1] - gs[b];
    uint8_t *taken = PyMem_Malloc(max_g ? max_g : 1);
    if (!taken) { PyErr_NoMemory(); goto done; }
    for (Py_ssize_t k = 0; k < V * T * D; k++) res[k] = -1;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t v = 0; v < V; v++) {
        const uint8_t *st = state + v * G;
        for (Py_ssize_t t = 0; t < T; t++) {
            double start_thr = thr[t] < 1 - 1e-10 ? thr[t] : 1 - 1e-10;
            int64_t *row = res + (v * T + t) * D;
            for (Py_ssize_t b = 0; b < B; b++) {
                int64_t g0 = gs[b], ng = gs[b + 1] - gs[b];
                int64_t d0 = ds[b], nd = ds[b + 1] - ds[b];
                if (ng == 0) continue;
                const double *block = iou + is[b];
                memset(taken, 0, ng);
                for (int64_t d = 0; d < nd; d++) {
                    int64_t m = -1;
                    for (int pass = 0; pass < 2 && m < 0; pass++) {
                        double best = start_thr;
                        for (int64_t g = 0; g < ng; g++) {
                            uint8_t s = st[g0 + g];
                            if (s == 2 || s != pass) continue;
                            if (taken[g] && !crowd[g0 + g]) continue;
                            double value = block[d * ng + g];
                            if (value < best) continue;
                            best = value; m = g;
                        }
                    }
                    if (m < 0) continue;
                    taken[m] = 1;
                    row[d0 + d] = g0 + m;
                }
            }
        }
    }
    Py_END_ALLOW_THREADS
    PyMem_Free(taken);
done:
    PyBuffer_Release(&ious); PyBuffer_Release(&det_start); PyBuffer_Release(&gt_start);
    PyBuffer_Release(&iou_start); PyBuffer_Release(&gt_state); PyBuffer_Release(&gt_crowd);
    PyBuffer_Release(&thresholds); PyBuffer_Release(&out);
    if (PyErr_Occurred()) return NULL;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"count_runs", count_runs, METH_VARARGS, "Run offsets of COCO compressed RLE strings."},
    {"decode_runs", decode_runs, METH_VARARGS, "COCO compressed RLE strings -> runs, areas, pixel totals."},
    {"segm_iou", segm_iou, METH_VARARGS, "Mask IoU of (dt, gt) pairs over decoded runs."},
    {"match", match, METH_VARARGS, "COCO greedy matching over blocks, variants and thresholds."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_evalcore", NULL, -1, methods};

PyMODINIT_FUNC PyInit__evalcore(void) { return PyModule_Create(&module); }
