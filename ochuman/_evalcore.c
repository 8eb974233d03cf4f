/* Compiled core of the evaluator: a scanner for COCO results files, COCO compressed RLE
 * decoding with mask statistics, mask IoU per (image, category) block, COCO greedy matching
 * and accumulation for many blocks and variants in one call.
 *
 * Arrays cross the boundary through the buffer protocol (numpy arrays, C-contiguous); outputs
 * are preallocated by the caller. Semantics follow pycocotools' maskApi.c (rleFrString,
 * rleToBbox, rleIou) and COCOeval (evaluateImg, accumulate) bit for bit. Functions that only
 * read and write buffers release the GIL, so callers may run them on block ranges in threads. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#if !defined(_WIN32)
#include <locale.h>
#if defined(__APPLE__)
#include <xlocale.h>
#endif
/* The "C" locale for strtod_l (created at import; NULL if that failed). */
static locale_t c_locale;
#endif

/* ------------------------------------------------------------------ growable arrays */
typedef struct { char *data; size_t len, cap; } Vec;

static int vec_reserve(Vec *v, size_t extra) {
    if (v->len + extra <= v->cap) return 0;
    size_t cap = v->cap ? v->cap : 4096;
    while (cap < v->len + extra) cap *= 2;
    char *data = realloc(v->data, cap);
    if (!data) return -1;
    v->data = data; v->cap = cap;
    return 0;
}

static int vec_push(Vec *v, const void *item, size_t size) {
    if (vec_reserve(v, size) < 0) return -1;
    memcpy(v->data + v->len, item, size);
    v->len += size;
    return 0;
}

static PyObject *vec_bytes(Vec *v) { return PyBytes_FromStringAndSize(v->data ? v->data : "", (Py_ssize_t)v->len); }

/* ------------------------------------------------------------------ results scanner
 * A results file in the shape every detector writes: a JSON list of flat objects with integer
 * image_id / category_id, a number score, bbox (4 numbers), segmentation ({"size": [h, w],
 * "counts": "..."}) and keypoints (51 numbers); other keys are skipped. Anything else (file
 * names as image ids, polygons, uncompressed RLE, null, escapes other than a doubled backslash,
 * broken JSON, ...) makes the scanner give up, and the caller takes the general path, which
 * accepts or refuses the file with a precise message. Numbers are converted exactly as
 * Python's float() does (correctly rounded); one beyond float64 (1e400) is refused. */
/* tstate: when not NULL the scan runs without the GIL and takes it back around the rare
 * calls into Python (the slow number conversion). */
typedef struct { const char *p, *end; PyThreadState *tstate; } Cursor;

enum { HAS_BBOX = 1, HAS_SEGM = 2, HAS_KEYPOINTS = 4 };
#define NUM_KEYPOINT_VALUES 51

static inline void skip_ws(Cursor *c) {
    while (c->p < c->end && (unsigned char)*c->p <= ' '
           && (*c->p == ' ' || *c->p == '\n' || *c->p == '\r' || *c->p == '\t')) c->p++;
}

static int expect(Cursor *c, char ch) {
    skip_ws(c);
    if (c->p >= c->end || *c->p != ch) return -1;
    c->p++;
    return 0;
}

static const double exact_powers[] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
                                      1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* A JSON number. *is_int: no fraction or exponent and |value| < 10^18 (then *integer holds it). */
static int scan_number(Cursor *c, double *value, int64_t *integer, int *is_int) {
    const char *start = c->p, *p = c->p, *end = c->end;
    int negative = 0, digits = 0, fraction = 0, has_point = 0, has_exp = 0;
    uint64_t mantissa = 0;
    if (p < end && *p == '-') { negative = 1; p++; }
    if (p >= end || *p < '0' || *p > '9') return -1;
    if (*p == '0') { p++; if (p < end && *p >= '0' && *p <= '9') return -1; }
    else while (p < end && *p >= '0' && *p <= '9') {
        if (++digits <= 19) mantissa = mantissa * 10 + (uint64_t)(*p - '0');
        p++;
    }
    if (p < end && *p == '.') {
        has_point = 1; p++;
        if (p >= end || *p < '0' || *p > '9') return -1;
        while (p < end && *p >= '0' && *p <= '9') {
            if (mantissa || *p != '0') digits++;
            if (digits <= 19) { mantissa = mantissa * 10 + (uint64_t)(*p - '0'); fraction++; }
            p++;
        }
    }
    int exponent = 0;
    if (p < end && (*p == 'e' || *p == 'E')) {
        has_exp = 1; p++;
        int exp_negative = 0;
        if (p < end && (*p == '+' || *p == '-')) { exp_negative = *p == '-'; p++; }
        if (p >= end || *p < '0' || *p > '9') return -1;
        while (p < end && *p >= '0' && *p <= '9') {
            if (exponent < 100000) exponent = exponent * 10 + (*p - '0');
            p++;
        }
        if (exp_negative) exponent = -exponent;
    }
    c->p = p;
    *is_int = !has_point && !has_exp && digits <= 18;
    if (*is_int) *integer = negative ? -(int64_t)mantissa : (int64_t)mantissa;
    int scale = exponent - fraction;
    if (digits <= 19 && mantissa <= ((uint64_t)1 << 53) && scale >= -22 && scale <= 22) {
        /* Both operands exact: one IEEE operation rounds correctly. */
        double v = (double)mantissa;
        v = scale < 0 ? v / exact_powers[-scale] : v * exact_powers[scale];
        /* "-0" is the integer 0 to JSON readers (+0.0 as a float); "-0.0", "-0e0": -0.0 */
        *value = negative && (v != 0 || has_point || has_exp) ? -v : v;
        return 0;
    }
    /* Otherwise a correctly rounded conversion of the text (as Python's float()): the C
     * library's strtod in the "C" locale (glibc's and the BSDs' round correctly; no GIL
     * needed, so parts scanned in threads do not queue for it), else Python's own. */
    char local[64], *text = local;
    size_t n = (size_t)(p - start);
    if (n >= sizeof local && !(text = malloc(n + 1))) return -1;
    memcpy(text, start, n); text[n] = 0;
    char *stop = NULL;
    double v;
    int ok;
#if !defined(_WIN32)
    if (c_locale) {
        v = strtod_l(text, &stop, c_locale);
        ok = stop == text + n;
    } else
#endif
    {
        if (c->tstate) PyEval_RestoreThread(c->tstate);
        v = PyOS_string_to_double(text, &stop, NULL);
        ok = !(v == -1.0 && PyErr_Occurred()) && stop == text + n;
        if (!ok) PyErr_Clear();
        if (c->tstate) c->tstate = PyEval_SaveThread();
    }
    if (text != local) free(text);
    /* A number beyond float64 (1e400) reads as infinite: the general path names it. */
    if (!ok || !isfinite(v)) return -1;
    *value = v;
    return 0;
}

static int scan_integer(Cursor *c, int64_t *out) {
    double value; int is_int;
    skip_ws(c);
    if (scan_number(c, &value, out, &is_int) < 0 || !is_int) return -1;
    return 0;
}

/* Plain decimals (-?digits[.digits], at most 19 digits, mantissa <= 2^53), the bulk of
 * detector output: 1 when read, 0 to leave it to scan_number (cursor untouched). */
static inline int quick_decimal(Cursor *c, double *out) {
    const char *p = c->p, *end = c->end;
    int negative = p < end && *p == '-';
    p += negative;
    const char *first = p;
    uint64_t mantissa = 0;
    while (p < end && (unsigned)(*p - '0') < 10) mantissa = mantissa * 10 + (uint64_t)(*p++ - '0');
    ptrdiff_t int_digits = p - first, fraction = 0;
    if (int_digits == 0 || (int_digits > 1 && *first == '0')) return 0;
    if (p < end && *p == '.') {
        const char *f = ++p;
        while (p < end && (unsigned)(*p - '0') < 10) mantissa = mantissa * 10 + (uint64_t)(*p++ - '0');
        fraction = p - f;
        if (fraction == 0) return 0;
    }
    if (p < end && (*p == 'e' || *p == 'E')) return 0;
    if (int_digits + fraction > 19 || fraction > 22 || mantissa > ((uint64_t)1 << 53)) return 0;
    double v = (double)mantissa;
    if (fraction) v /= exact_powers[fraction];
    *out = negative && (v != 0 || fraction) ? -v : v;  /* "-0": the integer 0, as in scan_number */
    c->p = p;
    return 1;
}

static int scan_double(Cursor *c, double *out) {
    int64_t integer; int is_int;
    skip_ws(c);
    if (quick_decimal(c, out)) return 0;
    return scan_number(c, out, &integer, &is_int);
}

/* A JSON string at c->p (after the opening quote is checked). Raw bytes [*start, *start + *len).
 * *escaped: it holds doubled backslashes (the only escape accepted). */
static int scan_string(Cursor *c, const char **start, Py_ssize_t *len, int *escaped) {
    skip_ws(c);
    if (c->p >= c->end || *c->p != '"') return -1;
    const char *p = ++c->p, *end = c->end;
    *start = p;
    while (p < end) {
        unsigned char ch = (unsigned char)*p;
        if (ch == '"') break;
        if (ch == '\\') {
            if (p + 1 >= end || p[1] != '\\') return -1;
            *escaped = 1; p += 2; continue;
        }
        if (ch < 0x20 || ch >= 0x80) return -1;
        p++;
    }
    if (p >= end) return -1;
    *len = p - *start;
    c->p = p + 1;
    return 0;
}

static int key_is(const char *start, Py_ssize_t len, const char *name) {
    return (size_t)len == strlen(name) && memcmp(start, name, (size_t)len) == 0;
}

/* Skips any JSON value (for keys the evaluation does not read). */
static int skip_value(Cursor *c, int depth) {
    if (depth > 64) return -1;
    skip_ws(c);
    if (c->p >= c->end) return -1;
    char ch = *c->p;
    if (ch == '"') { const char *s; Py_ssize_t n; int e = 0; return scan_string(c, &s, &n, &e); }
    if (ch == '[' || ch == '{') {
        char close = ch == '[' ? ']' : '}';
        c->p++;
        skip_ws(c);
        if (c->p < c->end && *c->p == close) { c->p++; return 0; }
        for (;;) {
            if (ch == '{') {
                const char *s; Py_ssize_t n; int e = 0;
                if (scan_string(c, &s, &n, &e) < 0 || expect(c, ':') < 0) return -1;
            }
            if (skip_value(c, depth + 1) < 0) return -1;
            skip_ws(c);
            if (c->p < c->end && *c->p == ',') { c->p++; continue; }
            return expect(c, close);
        }
    }
    if (ch == 't' && c->end - c->p >= 4 && memcmp(c->p, "true", 4) == 0) { c->p += 4; return 0; }
    if (ch == 'f' && c->end - c->p >= 5 && memcmp(c->p, "false", 5) == 0) { c->p += 5; return 0; }
    if (ch == 'n' && c->end - c->p >= 4 && memcmp(c->p, "null", 4) == 0) { c->p += 4; return 0; }
    double v; int64_t i; int is_int;
    return scan_number(c, &v, &i, &is_int);
}

/* [n1, n2, ...] of exactly `count` numbers into out. */
static int scan_numbers(Cursor *c, double *out, int count) {
    if (expect(c, '[') < 0) return -1;
    for (int k = 0; k < count; k++) {
        if (k && expect(c, ',') < 0) return -1;
        if (scan_double(c, &out[k]) < 0) return -1;
    }
    return expect(c, ']');
}

/* The members of a flat JSON object, as the record scanners read them:
 *     if (open_object(c) < 0) return -1;
 *     do { if (next_key(c, &key, &len) < 0) return -1; ... read the value ... }
 *     while ((more = end_member(c)) > 0);
 * An empty object and keys with escapes are refused (not a shape the scanners take). */
static int open_object(Cursor *c) {
    if (expect(c, '{') < 0) return -1;
    skip_ws(c);
    return c->p < c->end && *c->p == '}' ? -1 : 0;
}

static int next_key(Cursor *c, const char **key, Py_ssize_t *len) {
    int escaped = 0;
    if (scan_string(c, key, len, &escaped) < 0 || escaped) return -1;
    return expect(c, ':');
}

/* 1: a comma, another member follows; 0: the object closed; -1: neither. */
static int end_member(Cursor *c) {
    skip_ws(c);
    if (c->p < c->end && *c->p == ',') { c->p++; return 1; }
    return expect(c, '}') < 0 ? -1 : 0;
}

typedef struct { Vec image_id, category_id, score, flags, bbox, segm, keypoints; } Scan;

/* Whether raw string content s[0, len) (no quote in it) is JSON that the scanners take as it
 * is: printable ASCII (no control character, no byte >= 0x80) and valid escapes (\\ \/ \b \f
 * \n \r \t \uXXXX); anything else is left to the general path. */
static int plain_json_content(const char *s, Py_ssize_t len) {
    unsigned outside = 0;  /* a loop the compiler vectorises: bytes outside 0x20..0x7f */
    for (Py_ssize_t p = 0; p < len; p++) outside |= (unsigned)((unsigned char)s[p] - 0x20) >= 0x60u;
    if (outside) return 0;
    const char *q = memchr(s, '\\', (size_t)len), *end = s + len;
    while (q) {
        char e = q + 1 < end ? q[1] : 0;
        if (e == 'u') {  /* \uXXXX: four hex digits */
            if (end - q < 6) return 0;
            for (int k = 2; k < 6; k++) if (!strchr("0123456789abcdefABCDEF", q[k])) return 0;
            q += 4;
        } else if (e != '\\' && e != '/' && e != 'b' && e != 'f' && e != 'n' && e != 'r' && e != 't') return 0;
        q += 2;
        q = q < end ? memchr(q, '\\', (size_t)(end - q)) : NULL;
    }
    return 1;
}

/* {"size": [h, w], "counts": "..."}: pushes h, w, counts start (offset in data), length. */
static int scan_segmentation(Cursor *c, const char *data, Vec *out) {
    int64_t fields[4] = {-1, -1, -1, -1};
    int seen_size = 0, seen_counts = 0;
    int more;
    if (open_object(c) < 0) return -1;
    do {
        const char *key; Py_ssize_t key_len;
        if (next_key(c, &key, &key_len) < 0) return -1;
        if (key_is(key, key_len, "size")) {
            if (seen_size++ || expect(c, '[') < 0 || scan_integer(c, &fields[0]) < 0 || expect(c, ',') < 0
                || scan_integer(c, &fields[1]) < 0 || expect(c, ']') < 0) return -1;
        } else if (key_is(key, key_len, "counts")) {
            /* Jump to the closing quote, then check the content is JSON (the RLE decoder checks
             * the RLE alphabet later, but only where the masks are read). */
            skip_ws(c);
            if (seen_counts++ || c->p >= c->end || *c->p != '"') return -1;
            const char *start = ++c->p, *close = memchr(start, '"', (size_t)(c->end - start));
            if (!close) return -1;
            const char *q = close;
            while (q > start && q[-1] == '\\') q--;
            if ((close - q) & 1) return -1;  /* an escaped quote: not an RLE string */
            if (!plain_json_content(start, close - start)) return -1;
            fields[2] = start - data; fields[3] = close - start;
            c->p = close + 1;
        } else if (skip_value(c, 1) < 0) return -1;
    } while ((more = end_member(c)) > 0);
    if (more < 0) return -1;
    if (!seen_size || !seen_counts) return -1;
    return vec_push(out, fields, sizeof fields);
}

static int scan_record(Cursor *c, const char *data, Scan *out) {
    int64_t image_id = 0, category_id = 0; double score = 0, bbox[4] = {0, 0, 0, 0};
    double keypoints[NUM_KEYPOINT_VALUES];
    unsigned seen = 0; uint8_t flags = 0;
    int more;
    if (open_object(c) < 0) return -1;
    do {
        const char *key; Py_ssize_t key_len;
        if (next_key(c, &key, &key_len) < 0) return -1;
        unsigned bit = 0; int status;
        if (key_is(key, key_len, "image_id")) { bit = 1; status = scan_integer(c, &image_id); }
        else if (key_is(key, key_len, "category_id")) { bit = 2; status = scan_integer(c, &category_id); }
        else if (key_is(key, key_len, "score")) { bit = 4; status = scan_double(c, &score); }
        else if (key_is(key, key_len, "bbox")) { bit = 8; flags |= HAS_BBOX; status = scan_numbers(c, bbox, 4); }
        else if (key_is(key, key_len, "segmentation")) { bit = 16; flags |= HAS_SEGM; status = scan_segmentation(c, data, &out->segm); }
        else if (key_is(key, key_len, "keypoints")) {
            bit = 32; flags |= HAS_KEYPOINTS;
            status = scan_numbers(c, keypoints, NUM_KEYPOINT_VALUES);
            if (status == 0) status = vec_push(&out->keypoints, keypoints, sizeof keypoints);
        } else status = skip_value(c, 1);
        if (status < 0 || (seen & bit)) return -1;
        seen |= bit;
    } while ((more = end_member(c)) > 0);
    if (more < 0) return -1;
    if ((seen & 7) != 7) return -1;
    if (vec_push(&out->image_id, &image_id, 8) < 0 || vec_push(&out->category_id, &category_id, 8) < 0
        || vec_push(&out->score, &score, 8) < 0 || vec_push(&out->flags, &flags, 1) < 0
        || vec_push(&out->bbox, bbox, sizeof bbox) < 0) return -1;
    return 0;
}

/* scan_results(data, start, end) -> (image_id, category_id, score, flags, bbox, segm,
 * keypoints) or None, for the records in data[start:end] (the whole file: 0, len(data)).
 * start is 0 (the list opens there) or the first byte of a record; end is len(data) (the list
 * closes there) or the comma before the next part's first record. Arrays as bytes:
 * image_id / category_id i64[n]; score f64[n]; flags u8[n] (1 bbox, 2 segmentation,
 * 4 keypoints); bbox f64[4n] (zeros where absent); segm i64[4s] ([h, w, counts offset in
 * data, counts length] of the s records with a segmentation, in order; the counts are raw
 * JSON string content, checked when decoded); keypoints f64[51k] likewise. Runs without the
 * GIL: parts may be scanned in threads. */
static PyObject *scan_results(PyObject *self, PyObject *args) {
    Py_buffer data; Py_ssize_t start, stop;
    if (!PyArg_ParseTuple(args, "y*nn", &data, &start, &stop)) return NULL;
    Scan out; memset(&out, 0, sizeof out);
    const char *base = data.buf;
    int first = start == 0, last = stop == data.len, ok = start >= 0 && start <= stop && stop <= data.len;
    Cursor c = {base + (ok ? start : 0), base + (ok ? stop : 0), NULL};
    if (ok) {
        c.tstate = PyEval_SaveThread();
        if (first && expect(&c, '[') < 0) ok = 0;
        else {
            skip_ws(&c);
            if (first && last && c.p < c.end && *c.p == ']') c.p++;  /* [] */
            else for (;;) {
                if (scan_record(&c, base, &out) < 0) { ok = 0; break; }
                skip_ws(&c);
                if (!last && c.p == c.end) break;  /* at the comma that ends this part */
                if (c.p < c.end && *c.p == ',') { c.p++; continue; }
                if (!last || expect(&c, ']') < 0) ok = 0;
                break;
            }
            if (ok && last) { skip_ws(&c); if (c.p != c.end) ok = 0; }
        }
        PyEval_RestoreThread(c.tstate);
    }
    PyObject *result = NULL;
    if (ok) {
        result = Py_BuildValue("(NNNNNNN)", vec_bytes(&out.image_id), vec_bytes(&out.category_id),
                               vec_bytes(&out.score), vec_bytes(&out.flags), vec_bytes(&out.bbox),
                               vec_bytes(&out.segm), vec_bytes(&out.keypoints));
    } else {
        result = Py_NewRef(Py_None);
    }
    free(out.image_id.data); free(out.category_id.data); free(out.score.data); free(out.flags.data);
    free(out.bbox.data); free(out.segm.data); free(out.keypoints.data);
    PyBuffer_Release(&data);
    return result;
}

/* ------------------------------------------------------------------ COCO ground truth
 * The "images" and "annotations" lists of a COCO file in the shape the official tools write
 * (integer ids, compressed RLE masks); anything else gives None and the general loader reads
 * the file (and names any problem). */
static int scan_null(Cursor *c) {
    skip_ws(c);
    if (c->end - c->p >= 4 && memcmp(c->p, "null", 4) == 0) { c->p += 4; return 1; }
    return 0;
}

typedef struct { Vec id, width, height, name; } ImageScan;

static int scan_coco_image(Cursor *c, const char *data, ImageScan *out) {
    int64_t id = 0, width = 0, height = 0, name[2] = {0, 0};
    unsigned seen = 0;
    int more;
    if (open_object(c) < 0) return -1;
    do {
        const char *key; Py_ssize_t key_len;
        if (next_key(c, &key, &key_len) < 0) return -1;
        unsigned bit = 0; int status;
        if (key_is(key, key_len, "id")) { bit = 1; status = scan_integer(c, &id); }
        else if (key_is(key, key_len, "width")) { bit = 2; status = scan_integer(c, &width); }
        else if (key_is(key, key_len, "height")) { bit = 4; status = scan_integer(c, &height); }
        else if (key_is(key, key_len, "file_name")) {
            const char *start; Py_ssize_t len; int escaped = 0;
            bit = 8; status = scan_string(c, &start, &len, &escaped);
            if (escaped) status = -1;
            name[0] = start - data; name[1] = len;
        } else status = skip_value(c, 1);
        if (status < 0 || (seen & bit)) return -1;
        seen |= bit;
    } while ((more = end_member(c)) > 0);
    if (more < 0) return -1;
    if (seen != 15) return -1;
    if (vec_push(&out->id, &id, 8) < 0 || vec_push(&out->width, &width, 8) < 0
        || vec_push(&out->height, &height, 8) < 0 || vec_push(&out->name, name, sizeof name) < 0) return -1;
    return 0;
}

typedef struct { Vec id, image_id, category_id, iscrowd, bbox, area, max_iou, has_keypoints, keypoints, segm, num_keypoints; } AnnScan;

static int scan_coco_annotation(Cursor *c, const char *data, AnnScan *out) {
    int64_t id = 0, image_id = 0, category_id = 1, iscrowd = 0, num_keypoints = -1;
    double bbox[4], area = NAN, max_iou = NAN, keypoints[NUM_KEYPOINT_VALUES];
    uint8_t has_keypoints = 0;
    unsigned seen = 0;
    size_t segm_before = out->segm.len;
    memset(keypoints, 0, sizeof keypoints);
    int more;
    if (open_object(c) < 0) return -1;
    do {
        const char *key; Py_ssize_t key_len;
        if (next_key(c, &key, &key_len) < 0) return -1;
        unsigned bit = 0; int status = 0;
        if (key_is(key, key_len, "id")) { bit = 1; status = scan_integer(c, &id); }
        else if (key_is(key, key_len, "image_id")) { bit = 2; status = scan_integer(c, &image_id); }
        else if (key_is(key, key_len, "bbox")) { bit = 4; status = scan_numbers(c, bbox, 4); }
        else if (key_is(key, key_len, "category_id")) { bit = 8; status = scan_integer(c, &category_id); }
        else if (key_is(key, key_len, "iscrowd")) { bit = 16; status = scan_integer(c, &iscrowd); }
        else if (key_is(key, key_len, "area")) { bit = 32; if (!scan_null(c)) status = scan_double(c, &area); }
        else if (key_is(key, key_len, "max_iou")) { bit = 64; if (!scan_null(c)) status = scan_double(c, &max_iou); }
        else if (key_is(key, key_len, "keypoints")) {
            bit = 128;
            if (!scan_null(c)) { status = scan_numbers(c, keypoints, NUM_KEYPOINT_VALUES); has_keypoints = 1; }
        } else if (key_is(key, key_len, "segmentation")) {
            bit = 256;
            if (!scan_null(c)) status = scan_segmentation(c, data, &out->segm);
        } else if (key_is(key, key_len, "num_keypoints")) {
            bit = 512;
            status = scan_integer(c, &num_keypoints);
            if (status == 0 && num_keypoints < 0) status = -1;  /* the general path names it */
        } else status = skip_value(c, 1);
        if (status < 0 || (seen & bit)) return -1;
        seen |= bit;
    } while ((more = end_member(c)) > 0);
    if (more < 0) return -1;
    if ((seen & 7) != 7) return -1;
    if (out->segm.len == segm_before) {  /* no mask */
        int64_t none[4] = {-1, -1, -1, -1};
        if (vec_push(&out->segm, none, sizeof none) < 0) return -1;
    }
    if (vec_push(&out->id, &id, 8) < 0 || vec_push(&out->image_id, &image_id, 8) < 0
        || vec_push(&out->category_id, &category_id, 8) < 0 || vec_push(&out->iscrowd, &iscrowd, 8) < 0
        || vec_push(&out->bbox, bbox, sizeof bbox) < 0 || vec_push(&out->area, &area, 8) < 0
        || vec_push(&out->max_iou, &max_iou, 8) < 0 || vec_push(&out->has_keypoints, &has_keypoints, 1) < 0
        || vec_push(&out->keypoints, keypoints, sizeof keypoints) < 0
        || vec_push(&out->num_keypoints, &num_keypoints, 8) < 0) return -1;
    return 0;
}

/* A JSON list of records scanned by `record` into `out`; 0, or -1 when not in the shape. */
static int scan_list(Cursor *c, const char *data, void *out, int (*record)(Cursor *, const char *, void *)) {
    if (expect(c, '[') < 0) return -1;
    skip_ws(c);
    if (c->p < c->end && *c->p == ']') { c->p++; }
    else for (;;) {
        if (record(c, data, out) < 0) return -1;
        skip_ws(c);
        if (c->p < c->end && *c->p == ',') { c->p++; continue; }
        if (expect(c, ']') < 0) return -1;
        break;
    }
    skip_ws(c);
    return c->p == c->end ? 0 : -1;
}

static int image_record(Cursor *c, const char *data, void *out) { return scan_coco_image(c, data, out); }
static int annotation_record(Cursor *c, const char *data, void *out) { return scan_coco_annotation(c, data, out); }

/* scan_coco_images(data) -> (id i64, width i64, height i64, file_name i64[2n] [offset, length])
 * as bytes, or None. Both COCO scanners run without the GIL (threads, e.g. a background read
 * while the main thread imports). */
static PyObject *scan_coco_images(PyObject *self, PyObject *args) {
    Py_buffer data;
    if (!PyArg_ParseTuple(args, "y*", &data)) return NULL;
    ImageScan out; memset(&out, 0, sizeof out);
    Cursor c = {data.buf, (const char *)data.buf + data.len, NULL};
    PyObject *result;
    c.tstate = PyEval_SaveThread();
    int scanned = scan_list(&c, data.buf, &out, image_record);
    PyEval_RestoreThread(c.tstate);
    if (scanned == 0)
        result = Py_BuildValue("(NNNN)", vec_bytes(&out.id), vec_bytes(&out.width), vec_bytes(&out.height),
                               vec_bytes(&out.name));
    else result = Py_NewRef(Py_None);
    free(out.id.data); free(out.width.data); free(out.height.data); free(out.name.data);
    PyBuffer_Release(&data);
    return result;
}

/* scan_coco_annotations(data) -> (id, image_id, category_id, iscrowd: i64[n]; bbox f64[4n];
 * area, max_iou: f64[n] (NaN where absent or null); has_keypoints u8[n]; keypoints f64[51n]
 * (zeros where absent); segm i64[4n] ([h, w, counts offset, counts length], -1s without a
 * mask); num_keypoints i64[n] (-1 where absent)) as bytes, or None. */
static PyObject *scan_coco_annotations(PyObject *self, PyObject *args) {
    Py_buffer data;
    if (!PyArg_ParseTuple(args, "y*", &data)) return NULL;
    AnnScan out; memset(&out, 0, sizeof out);
    Cursor c = {data.buf, (const char *)data.buf + data.len, NULL};
    PyObject *result;
    c.tstate = PyEval_SaveThread();
    int scanned = scan_list(&c, data.buf, &out, annotation_record);
    PyEval_RestoreThread(c.tstate);
    if (scanned == 0)
        result = Py_BuildValue("(NNNNNNNNNNN)", vec_bytes(&out.id), vec_bytes(&out.image_id),
                               vec_bytes(&out.category_id), vec_bytes(&out.iscrowd), vec_bytes(&out.bbox),
                               vec_bytes(&out.area), vec_bytes(&out.max_iou), vec_bytes(&out.has_keypoints),
                               vec_bytes(&out.keypoints), vec_bytes(&out.segm), vec_bytes(&out.num_keypoints));
    else result = Py_NewRef(Py_None);
    free(out.id.data); free(out.image_id.data); free(out.category_id.data); free(out.iscrowd.data);
    free(out.bbox.data); free(out.area.data); free(out.max_iou.data); free(out.has_keypoints.data);
    free(out.keypoints.data); free(out.segm.data); free(out.num_keypoints.data);
    PyBuffer_Release(&data);
    return result;
}

/* rle_spans_clean(buf, spans i64[2n] [offset, length]) -> bool
 * Whether every span of raw JSON string content is an RLE counts string as a file holds it:
 * characters of the RLE alphabet '0'..'o', a backslash only doubled (standing for one). */
static PyObject *rle_spans_clean(PyObject *self, PyObject *args) {
    Py_buffer buf, spans;
    if (!PyArg_ParseTuple(args, "y*y*", &buf, &spans)) return NULL;
    const unsigned char *data = buf.buf;
    const int64_t *sp = spans.buf;
    Py_ssize_t n = spans.len / (Py_ssize_t)(2 * sizeof(int64_t));
    int ok = 1;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t k = 0; ok && k < n; k++) {
        const unsigned char *s = data + sp[2 * k];
        int64_t len = sp[2 * k + 1];
        unsigned outside = 0;  /* a loop the compiler vectorises: the alphabet (backslash is in it) */
        for (int64_t p = 0; p < len; p++) outside |= (unsigned)(s[p] - '0') > (unsigned)('o' - '0');
        if (outside) { ok = 0; break; }
        /* every backslash doubled: pairs found left to right */
        const unsigned char *q = memchr(s, '\\', (size_t)len), *end = s + len;
        while (q) {
            if (q + 1 >= end || q[1] != '\\') { ok = 0; break; }
            q += 2;
            q = q < end ? memchr(q, '\\', (size_t)(end - q)) : NULL;
        }
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&buf); PyBuffer_Release(&spans);
    return PyBool_FromLong(ok);
}

/* ------------------------------------------------------------------ RLE strings
 * A table of n compressed RLE strings: one buffer, starts and lengths (i64[n]); raw: the
 * strings are JSON string content straight from a file, where a doubled backslash stands for
 * one (an RLE code) and any other character outside the RLE alphabet '0'..'o' is refused. */
typedef struct {
    const char *buf; const int64_t *starts, *lengths; int raw;
} RleTable;

enum { RLE_OK = 0, RLE_TRUNCATED = -1, RLE_BAD_CHARACTER = -2 };

/* Decode string k (pycocotools rleFrString) straight into its non-empty 1-runs as [lo, hi)
 * pixel positions, column-major (room for lengths[k] of them): their number, or
 * RLE_TRUNCATED (it ends inside a number) / RLE_BAD_CHARACTER (raw tables only). *total:
 * pixels covered by all runs; *area: by the 1-runs. */
static int64_t decode_intervals(const RleTable *t, int64_t k, int64_t *lo, int64_t *hi,
                                int64_t *total, int64_t *area) {
    const char *s = t->buf + t->starts[k];
    const int64_t len = t->lengths[k];
    const int raw = t->raw;
    int64_t p = 0, m = 0, n = 0, pos = 0, ones = 0;
    uint32_t back1 = 0, back2 = 0;  /* runs m - 1 and m - 2 (the delta of run m > 2) */
    while (p < len) {
        int64_t x = 0; int shift = 0, code;
        do {
            if (p >= len) return RLE_TRUNCATED;
            char ch = s[p++];
            if (raw) {
                if (ch == '\\') { if (p >= len || s[p] != '\\') return RLE_BAD_CHARACTER; p++; }
                if (ch < '0' || ch > 'o') return RLE_BAD_CHARACTER;
            }
            code = ch - 48;
            x |= (int64_t)(code & 0x1f) << shift;
            shift += 5;
        } while (code & 0x20);
        if (code & 0x10) x |= (int64_t)(~0ULL << shift);
        if (m > 2) x += (int64_t)back2;
        uint32_t run = (uint32_t)x;
        back2 = back1; back1 = run;
        if ((m & 1) && run) { lo[n] = pos; hi[n] = pos + run; n++; ones += run; }
        pos += run;
        m++;
    }
    *total = pos; *area = ones;
    return n;
}

/* ------------------------------------------------------------------ fast RLE decoding (x86 SSE4.1)
 * decode_intervals' results, about twice as fast: the string is copied clean (doubled backslashes
 * as one, checked), its values of 1-3 characters are read 8 characters at a time by byte
 * shuffles chosen by the pattern of value ends, and the runs, their positions and the 1-runs
 * come from 4-lane prefix sums. Whatever falls outside (a string that is not clean, a value of
 * 13+ characters, an empty 1-run, a mask of 2^31 pixels) goes to decode_intervals. */
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define FAST_RLE 1
#include <immintrin.h>
static int fast_rle;  /* the CPU has SSE4.1 and POPCNT (set at import) */

/* Per pattern of value ends in 8 characters (bit i: character i ends a value): where each
 * value's characters 1-2 (first) and 3 (third) are, as shuffles into 16-bit lanes; the number of
 * values of at most 3 characters before any longer one, and the characters they take. */
static uint8_t first_shuffle[256][16] __attribute__((aligned(16)));
static uint8_t third_shuffle[256][16] __attribute__((aligned(16)));
static uint8_t nv_table[256], used_table[256];
static void init_tables(void) {
    for (int mask = 0; mask < 256; mask++) {
        int j = 0, start = 0;
        memset(first_shuffle[mask], 0x80, 16);
        memset(third_shuffle[mask], 0x80, 16);
        for (int i = 0; i < 8; i++) {
            if (!(mask >> i & 1)) continue;
            int n = i - start + 1;
            if (n > 3) break;  /* a value of 4+ characters: the scalar decoder takes it */
            first_shuffle[mask][2 * j] = (uint8_t)start;
            if (n > 1) first_shuffle[mask][2 * j + 1] = (uint8_t)(start + 1);
            if (n > 2) third_shuffle[mask][2 * j] = (uint8_t)(start + 2);
            j++; start = i + 1;
        }
        nv_table[mask] = (uint8_t)j; used_table[mask] = (uint8_t)start;
    }
}

/* Byte shuffles that keep the bytes of 8 whose bit is clear in the mask, packed to the front. */
static uint8_t pack_shuffle[256][16] __attribute__((aligned(16)));
static void init_pack(void) {
    for (int mask = 0; mask < 256; mask++) {
        int j = 0;
        memset(pack_shuffle[mask], 0x80, 16);
        for (int i = 0; i < 8; i++) if (!(mask >> i & 1)) pack_shuffle[mask][j++] = (uint8_t)i;
    }
}

/* Copy string k to dst (room for len + 64, zeros after the copy), a doubled backslash as one
 * when raw: its length, or -1 when it is not clean (a character outside '0'..'o', a lone
 * backslash; raw only). */
__attribute__((target("sse4.1,popcnt")))
static int64_t clean_copy(const RleTable *t, int64_t k, unsigned char *dst) {
    const unsigned char *s = (const unsigned char *)t->buf + t->starts[k];
    const int64_t len = t->lengths[k];
    int64_t p = 0, q = 0;
    if (!t->raw) { memcpy(dst, s, (size_t)len); memset(dst + len, 0, 64); return len; }
    const __m128i below = _mm_set1_epi8(48), above = _mm_set1_epi8(111), bsl = _mm_set1_epi8('\\');
    __m128i outside = _mm_setzero_si128();
    unsigned pending = 0;  /* the last chunk ended with a backslash that its pair's second one follows */
    for (; p + 16 <= len; p += 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(s + p));
        /* bytes >= 128 compare as negative: below '0' */
        outside = _mm_or_si128(outside, _mm_or_si128(_mm_cmpgt_epi8(below, x), _mm_cmpgt_epi8(x, above)));
        unsigned b = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(x, bsl));
        if (!(b | pending)) { _mm_storeu_si128((__m128i *)(dst + q), x); q += 16; continue; }
        unsigned drop = 0;  /* the first backslash of each pair */
        if (pending) { if (!(b & 1)) return -1; b &= ~1u; pending = 0; }
        while (b) {
            unsigned at = (unsigned)__builtin_ctz(b);
            drop |= 1u << at;
            if (at == 15) { pending = 1; break; }
            if (!(b >> (at + 1) & 1)) return -1;
            b &= ~(3u << at);
        }
        __m128i half = _mm_shuffle_epi8(x, _mm_load_si128((const __m128i *)pack_shuffle[drop & 0xff]));
        _mm_storeu_si128((__m128i *)(dst + q), half);
        q += 8 - __builtin_popcount(drop & 0xff);
        half = _mm_shuffle_epi8(_mm_srli_si128(x, 8), _mm_load_si128((const __m128i *)pack_shuffle[drop >> 8]));
        _mm_storeu_si128((__m128i *)(dst + q), half);
        q += 8 - __builtin_popcount(drop >> 8);
    }
    if (!_mm_testz_si128(outside, outside)) return -1;
    for (; p < len; p++) {
        unsigned char ch = s[p];
        if (ch < '0' || ch > 'o') return -1;
        if (ch == '\\') { if (pending) { dst[q++] = ch; pending = 0; } else pending = 1; }
        else { if (pending) return -1; dst[q++] = ch; }
    }
    if (pending) return -1;
    memset(dst + q, 0, 64);
    return q;
}

/* Values of a clean string s[0..len) (64 readable bytes after it) into vals (room for
 * len + 8): their number, -1 when it ends inside a value, -2 for a value of 13+ characters.
 * Values of 1 to 3 characters go 8 characters at a time (a shuffle per pattern of value ends);
 * the critical path is the next window's offset, found from a 64-character mask of value ends. */
__attribute__((target("sse4.1,popcnt")))  /* only the features checked at import (no lzcnt) */
static int64_t string_values(const unsigned char *s, int64_t len, int32_t *vals) {
    int64_t p = 0, m = 0;
    const __m128i c48 = _mm_set1_epi8(48), m1f = _mm_set1_epi16(0x1f), m10 = _mm_set1_epi16(0x10),
                  m200 = _mm_set1_epi16(0x200), m20 = _mm_set1_epi16(0x20),
                  m2000 = _mm_set1_epi16(0x2000), m4000 = _mm_set1_epi16(0x4000);
    while (p < len) {
        /* continuation flags of the next 64 characters (bit 5 of each code, moved to bit 7) */
        uint64_t cont = 0;
        for (int q = 0; q < 4; q++) {
            __m128i codes = _mm_sub_epi8(_mm_loadu_si128((const __m128i *)(s + p + 16 * q)), c48);
            cont |= (uint64_t)(uint16_t)_mm_movemask_epi8(_mm_slli_epi16(codes, 2)) << (16 * q);
        }
        uint64_t ends = ~cont;
        if (len - p < 64) ends &= (1ULL << (len - p)) - 1;
        uint64_t longs = cont & (cont << 1) & (cont << 2);  /* char i: the 4th+ of a value */
        int64_t off = 0;
        while (off <= 56) {
            unsigned term = (unsigned)(ends >> off) & 0xffu;
            unsigned used = 32 - (unsigned)__builtin_clz(term | 1u), nv;  /* past the last end */
            if (!term) break;
            if (((unsigned)(longs >> off) & ((1u << used) - 1u)) == 0) nv = (unsigned)__builtin_popcount(term);
            else { nv = nv_table[term]; used = used_table[term]; if (!nv) break; }
            __m128i codes = _mm_sub_epi8(_mm_loadu_si128((const __m128i *)(s + p + off)), c48);
            __m128i lanes = _mm_shuffle_epi8(codes, _mm_load_si128((const __m128i *)first_shuffle[term]));
            __m128i third = _mm_shuffle_epi8(codes, _mm_load_si128((const __m128i *)third_shuffle[term]));
            /* 5 bits per character, little end first; the sign is the top bit of the last one */
            __m128i v = _mm_or_si128(_mm_or_si128(_mm_and_si128(lanes, m1f),
                                                  _mm_slli_epi16(_mm_and_si128(_mm_srli_epi16(lanes, 8), m1f), 5)),
                                     _mm_slli_epi16(_mm_and_si128(third, m1f), 10));
            __m128i two = _mm_cmpeq_epi16(_mm_and_si128(lanes, m20), m20);
            __m128i three = _mm_cmpeq_epi16(_mm_and_si128(lanes, m2000), m2000);
            __m128i sign = _mm_blendv_epi8(m10, _mm_blendv_epi8(m200, m4000, three), two);
            v = _mm_sub_epi16(_mm_xor_si128(v, sign), sign);
            _mm_storeu_si128((__m128i *)(vals + m), _mm_cvtepi16_epi32(v));
            _mm_storeu_si128((__m128i *)(vals + m + 4), _mm_cvtepi16_epi32(_mm_srli_si128(v, 8)));
            m += nv; off += used;
        }
        p += off;
        if (off > 56 || p >= len) continue;
        /* one value the windows do not take: 3+ characters, or its end 8+ characters away */
        int64_t x = 0; int shift = 0, code;
        do {
            if (p >= len) return -1;
            code = (int)s[p++] - 48;
            x |= (int64_t)(code & 0x1f) << shift;
            shift += 5;
        } while ((code & 0x20) && shift < 60);
        if (code & 0x20) return -2;
        if (code & 0x10) x |= (int64_t)(~0ULL << shift);
        vals[m++] = (int32_t)(uint32_t)x;  /* only its low 32 bits count (run = (uint32)(x + back2)) */
    }
    return m;
}

/* Runs from M values (m > 2: plus the run two before, 32-bit wrapping, as decode_intervals),
 * four at a time, as their 1-runs (odd m) [lo, hi) (int64, room for M / 2 + 4), with *total and
 * *area: their number M / 2, or -1 when a 1-run is empty, a run reaches 2^27 or a position
 * 2^31 (decode_intervals takes those). vals: room for M + 8 (clobbered). */
__attribute__((target("sse4.1")))
static int64_t runs_to_intervals(int32_t *vals, int64_t M, int64_t *lo, int64_t *hi, int64_t *total, int64_t *area) {
    if (M >= 3) vals[2] = (int32_t)((uint32_t)vals[2] - (uint32_t)vals[0]);
    memset(vals + M, 0, 8 * sizeof(int32_t));
    __m128i carry = _mm_setzero_si128(), pos = _mm_setzero_si128(), big = _mm_setzero_si128(),
            ones = _mm_setzero_si128(), empty = _mm_setzero_si128();
    const __m128i odd = _mm_set_epi32(-1, 0, -1, 0), lane = _mm_set_epi32(3, 2, 1, 0), zero = _mm_setzero_si128();
    for (int64_t m = 0; m < M; m += 4) {
        __m128i r = _mm_loadu_si128((const __m128i *)(vals + m));
        r = _mm_add_epi32(_mm_add_epi32(r, _mm_slli_si128(r, 8)), carry);
        carry = _mm_shuffle_epi32(r, _MM_SHUFFLE(3, 2, 3, 2));
        __m128i valid = _mm_cmpgt_epi32(_mm_set1_epi32((int)(M - m)), lane), kept = _mm_and_si128(odd, valid);
        r = _mm_and_si128(r, valid);  /* runs past the last: none */
        __m128i r1 = _mm_and_si128(r, kept);
        ones = _mm_add_epi32(ones, r1);
        empty = _mm_or_si128(empty, _mm_and_si128(kept, _mm_cmpeq_epi32(r1, zero)));
        __m128i b = _mm_add_epi32(r, _mm_slli_si128(r, 4));
        b = _mm_add_epi32(_mm_add_epi32(b, _mm_slli_si128(b, 8)), pos);
        pos = _mm_shuffle_epi32(b, _MM_SHUFFLE(3, 3, 3, 3));
        big = _mm_or_si128(big, _mm_or_si128(_mm_srli_epi32(r, 27), _mm_srli_epi32(b, 31)));
        /* the 1-runs of lanes 1 and 3: [end of lane 0, end of lane 1), [end of lane 2, end of lane 3) */
        __m128i ends = _mm_shuffle_epi32(b, _MM_SHUFFLE(3, 1, 2, 0));
        _mm_storeu_si128((__m128i *)(lo + m / 2), _mm_cvtepu32_epi64(ends));
        _mm_storeu_si128((__m128i *)(hi + m / 2), _mm_cvtepu32_epi64(_mm_srli_si128(ends, 8)));
    }
    if (!_mm_testz_si128(big, big) || !_mm_testz_si128(empty, empty)) return -1;
    uint32_t o[4]; _mm_storeu_si128((__m128i *)o, ones);
    *area = (int64_t)o[0] + o[1] + o[2] + o[3];
    uint32_t last[4]; _mm_storeu_si128((__m128i *)last, pos);
    *total = M ? last[0] : 0;
    return M / 2;
}

static void init_fast_rle(void) {
    __builtin_cpu_init();
    fast_rle = __builtin_cpu_supports("sse4.1") && __builtin_cpu_supports("popcnt");
    if (fast_rle) { init_tables(); init_pack(); }
}
#endif

/* Scratch of the fast decoder for strings of up to `most` characters. */
typedef struct { unsigned char *text; int32_t *values; } Decoder;

static int decoder_init(Decoder *dec, int64_t most) {
    dec->text = malloc((size_t)most + 64);
    dec->values = malloc(sizeof(int32_t) * ((size_t)most + 16));
    return dec->text && dec->values ? 0 : -1;
}

static void decoder_free(Decoder *dec) { free(dec->text); free(dec->values); }

/* decode_intervals (lo, hi: room for lengths[k] + 8), the fast way where it can. */
static int64_t decode_runs(const RleTable *t, int64_t k, Decoder *dec, int64_t *lo, int64_t *hi,
                           int64_t *total, int64_t *area) {
#ifdef FAST_RLE
    if (fast_rle) {
        int64_t len = clean_copy(t, k, dec->text), M, n;
        if (len >= 0 && (M = string_values(dec->text, len, dec->values)) >= 0
            && (n = runs_to_intervals(dec->values, M, lo, hi, total, area)) >= 0) return n;
    }
#else
    (void)dec;
#endif
    return decode_intervals(t, k, lo, hi, total, area);
}

/* Inclusive pixel box [x0, y0, x1, y1] of n sorted non-empty 1-runs [lo, hi) of a mask of
 * height h (column-major: x = pos / h, y = pos % h; [0, 0, -1, -1] when empty). */
static void interval_box(const int64_t *lo, const int64_t *hi, int64_t n, int64_t height, int64_t *box) {
    if (!n) { box[0] = 0; box[1] = 0; box[2] = -1; box[3] = -1; return; }
    int64_t h = height > 0 ? height : 1;
    int64_t y0 = h, y1 = -1;
    int64_t col_start = lo[0] / h * h;  /* first pixel of the column of the current run */
    for (int64_t i = 0; i < n; i++) {
        int64_t first = lo[i], last = hi[i] - 1;
        int64_t ahead = first - col_start;  /* move to first's column: usually the next one */
        if (ahead >= h) col_start = ahead < 2 * h ? col_start + h : first / h * h;
        if (last - col_start >= h) { y0 = 0; y1 = h - 1; break; }  /* across columns: every row */
        if (first - col_start < y0) y0 = first - col_start;
        if (last - col_start > y1) y1 = last - col_start;
    }
    box[0] = lo[0] / h; box[1] = y0; box[2] = (hi[n - 1] - 1) / h; box[3] = y1;
}

/* interval_box's columns with every row [x0, 0, x1, h - 1]: a box that holds the mask, without
 * the pass over the runs that finds its rows (most detections overlap a ground truth's
 * columns, and the rows would rule out few of them). */
static void column_box(const int64_t *lo, const int64_t *hi, int64_t n, int64_t height, int64_t *box) {
    if (!n) { box[0] = 0; box[1] = 0; box[2] = -1; box[3] = -1; return; }
    int64_t h = height > 0 ? height : 1;
    box[0] = lo[0] / h; box[1] = 0; box[2] = (hi[n - 1] - 1) / h; box[3] = h - 1;
}

static int64_t max_length(const RleTable *t, Py_ssize_t lo, Py_ssize_t hi) {
    int64_t most = 1;
    for (Py_ssize_t k = lo; k < hi; k++) if (t->lengths[k] > most) most = t->lengths[k];
    return most;
}

/* rle_stats(buf, starts i64[n], lengths i64[n], raw, heights i64[n], lo, hi, status i8[n],
 *           areas_out i64[n], totals_out i64[n], boxes_out i64[4n])
 * Area, pixel total and box of strings lo..hi-1 whose status is 0 (decoded into scratch);
 * status becomes 1, or RLE_TRUNCATED / RLE_BAD_CHARACTER for a string that cannot be decoded. */
static PyObject *rle_stats(PyObject *self, PyObject *args) {
    Py_buffer buf, starts, lengths, heights, status, areas, totals, boxes;
    int raw; Py_ssize_t lo, hi;
    if (!PyArg_ParseTuple(args, "y*y*y*iy*nnw*w*w*w*", &buf, &starts, &lengths, &raw, &heights,
                          &lo, &hi, &status, &areas, &totals, &boxes)) return NULL;
    RleTable t = {buf.buf, starts.buf, lengths.buf, raw};
    const int64_t *h = heights.buf;
    int8_t *state = status.buf;
    int64_t *a = areas.buf, *tot = totals.buf, *b = boxes.buf;
    size_t most = (size_t)max_length(&t, lo, hi) + 8;
    int64_t *run_lo = malloc(sizeof(int64_t) * most), *run_hi = malloc(sizeof(int64_t) * most);
    Decoder dec;
    int failed = decoder_init(&dec, (int64_t)most) < 0 || !run_lo || !run_hi;
    if (!failed) {
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t k = lo; k < hi; k++) {
            if (state[k]) continue;
            int64_t n = decode_runs(&t, k, &dec, run_lo, run_hi, tot + k, a + k);
            state[k] = n < 0 ? (int8_t)n : 1;
            if (n >= 0) interval_box(run_lo, run_hi, n, h[k], b + 4 * k);
        }
        Py_END_ALLOW_THREADS
    }
    free(run_lo); free(run_hi); decoder_free(&dec);
    PyBuffer_Release(&buf); PyBuffer_Release(&starts); PyBuffer_Release(&lengths); PyBuffer_Release(&heights);
    PyBuffer_Release(&status); PyBuffer_Release(&areas); PyBuffer_Release(&totals); PyBuffer_Release(&boxes);
    if (failed) return PyErr_NoMemory();
    Py_RETURN_NONE;
}

/* First index whose end lies after `position` (ends are increasing). */
static int64_t first_ending_after(const int64_t *ends, int64_t n, int64_t position) {
    int64_t lo = 0, hi = n;
    while (lo < hi) { int64_t mid = (lo + hi) / 2; if (ends[mid] <= position) lo = mid + 1; else hi = mid; }
    return lo;
}

/* Pixels in both masks, given as sorted disjoint intervals. */
static uint64_t intervals_intersection(const int64_t *as, const int64_t *ae, int64_t na,
                                       const int64_t *bs, const int64_t *be, int64_t nb) {
    if (!na || !nb) return 0;
    int64_t i = first_ending_after(ae, na, bs[0]), j = first_ending_after(be, nb, as[0]);
    uint64_t inter = 0;
    while (i < na && j < nb) {
        int64_t lo = as[i] > bs[j] ? as[i] : bs[j], hi = ae[i] < be[j] ? ae[i] : be[j];
        if (hi > lo) inter += (uint64_t)(hi - lo);
        if (ae[i] < be[j]) i++; else j++;
    }
    return inter;
}

/* segm_ious(gt_buf, gt_starts, gt_lengths, gt_raw, gt_sizes i64[2G'], gt_status i8[G'],
 *           gt_areas i64[G'], gt_boxes i64[4G'], gt_totals i64[G'], gt_crowd u8[G'],
 *           dt_buf, dt_starts, dt_lengths, dt_raw, dt_sizes i64[2D'], dt_status i8[D'],
 *           dt_areas i64[D'], dt_boxes i64[4D'], dt_totals i64[D'],
 *           gt_order i64[G], dt_order i64[D], gt_start i64[B+1], dt_start i64[B+1],
 *           iou_start i64[B], lo, hi, out f64[P])
 * pycocotools rleIou for every (dt, gt) pair of blocks [lo, hi), written row-major
 * D_b x G_b per block at iou_start: pairs whose boxes do not meet are 0 without looking at
 * the runs; masks of different sizes whose boxes meet are -1; crowd: intersection over the
 * detection's area. The ground truths of a block with detections are decoded once, first;
 * those whose status is 0 get their statistics and status written as rle_stats would. A
 * detection whose status is 0 is decoded here and its area and total written, as rle_stats
 * would, with column_box's box and status 2 (a string that cannot be decoded gets its
 * negative status and IoU 0); one whose status is 1 or 2 is decoded only when its box meets
 * a ground truth's. Masks go to scratch, none is kept. Each annotation belongs to one
 * block, so disjoint block ranges may run in threads. */
static PyObject *segm_ious(PyObject *self, PyObject *args) {
    Py_buffer gbuf, gstarts, glens, gsizes, gstatus, gareas, gboxes, gtotals, gcrowd;
    Py_buffer dbuf, dstarts, dlens, dsizes, dstatus, dareas, dboxes, dtotals;
    Py_buffer gorder, dorder, gstart, dstart, istart, out;
    int graw, draw; Py_ssize_t lo, hi;
    if (!PyArg_ParseTuple(args, "y*y*y*iy*w*w*w*w*y*y*y*y*iy*w*w*w*w*y*y*y*y*y*nnw*",
                          &gbuf, &gstarts, &glens, &graw, &gsizes, &gstatus, &gareas, &gboxes, &gtotals, &gcrowd,
                          &dbuf, &dstarts, &dlens, &draw, &dsizes, &dstatus, &dareas, &dboxes, &dtotals,
                          &gorder, &dorder, &gstart, &dstart, &istart, &lo, &hi, &out)) return NULL;
    RleTable gt = {gbuf.buf, gstarts.buf, glens.buf, graw}, dt = {dbuf.buf, dstarts.buf, dlens.buf, draw};
    const int64_t *gsz = gsizes.buf, *dsz = dsizes.buf;
    int64_t *ga = gareas.buf, *gb = gboxes.buf, *gtot = gtotals.buf;
    int64_t *da = dareas.buf, *db = dboxes.buf, *dtot = dtotals.buf;
    int8_t *gst = gstatus.buf, *dst = dstatus.buf;
    const uint8_t *crowd = gcrowd.buf;
    const int64_t *go = gorder.buf, *dor = dorder.buf, *gs = gstart.buf, *ds = dstart.buf, *is = istart.buf;
    double *o = out.buf;
    /* Scratch: the largest block's ground truths, one detection, per-block bookkeeping. */
    int64_t g_need = 1, most_chars = 1, most_g = 1;
    for (Py_ssize_t b = lo; b < hi; b++) {
        int64_t g_sum = 0, ng = gs[b + 1] - gs[b];
        for (int64_t g = gs[b]; g < gs[b + 1]; g++) {
            g_sum += gt.lengths[go[g]];
            if (gt.lengths[go[g]] > most_chars) most_chars = gt.lengths[go[g]];
        }
        for (int64_t d = ds[b]; d < ds[b + 1]; d++) if (dt.lengths[dor[d]] > most_chars) most_chars = dt.lengths[dor[d]];
        if (g_sum > g_need) g_need = g_sum;
        if (ng > most_g) most_g = ng;
    }
    /* masks as 1-intervals: a string of L >= 1 characters has at most L runs, L / 2 of them 1s;
     * the fast decoder writes up to 4 past the last 1-run */
    g_need += 8;
    int64_t d_need = most_chars + 8;
    int64_t *g_lo = malloc(sizeof(int64_t) * (size_t)g_need), *g_hi = malloc(sizeof(int64_t) * (size_t)g_need);
    int64_t *d_lo = malloc(sizeof(int64_t) * (size_t)d_need), *d_hi = malloc(sizeof(int64_t) * (size_t)d_need);
    Decoder dec;
    int dec_failed = decoder_init(&dec, most_chars) < 0;
    int64_t *goff = malloc(sizeof(int64_t) * (size_t)(most_g + 1));
    uint8_t *meets = malloc((size_t)most_g);
    int failed = dec_failed || !g_lo || !g_hi || !d_lo || !d_hi || !goff || !meets;
    if (!failed) {
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t b = lo; b < hi; b++) {
            int64_t g0 = gs[b], ng = gs[b + 1] - g0, d0 = ds[b], nd = ds[b + 1] - d0;
            double *block = o + is[b];
            if (ng && nd) {  /* the block's ground truths, decoded once (statistics if not yet known) */
                goff[0] = 0;
                for (int64_t g = 0; g < ng; g++) {
                    int64_t j = go[g0 + g], total, area;
                    int64_t n = decode_runs(&gt, j, &dec, g_lo + goff[g], g_hi + goff[g], &total, &area);
                    if (gst[j] == 0) {
                        gst[j] = n < 0 ? (int8_t)n : 1;
                        if (n >= 0) {
                            gtot[j] = total; ga[j] = area;
                            interval_box(g_lo + goff[g], g_hi + goff[g], n, gsz[2 * j], gb + 4 * j);
                        }
                    }
                    goff[g + 1] = goff[g] + (n > 0 ? n : 0);
                }
            }
            for (int64_t d = 0; d < nd; d++) {
                int64_t i = dor[d0 + d], nd_int = -1;  /* its 1-runs in d_lo / d_hi, once decoded */
                for (int64_t g = 0; g < ng; g++) block[d * ng + g] = 0.0;
                if (!ng) continue;
                if (dst[i] == 0) {  /* area and total from this decoding, the box's columns */
                    nd_int = decode_runs(&dt, i, &dec, d_lo, d_hi, dtot + i, da + i);
                    dst[i] = nd_int < 0 ? (int8_t)nd_int : 2;
                    if (nd_int < 0) continue;
                    column_box(d_lo, d_hi, nd_int, dsz[2 * i], db + 4 * i);
                } else if (dst[i] < 0) continue;
                const int64_t *bi = db + 4 * i;
                int any = 0;
                for (int64_t g = 0; g < ng; g++) {
                    const int64_t *bj = gb + 4 * go[g0 + g];
                    meets[g] = !(bi[0] > bj[2] || bj[0] > bi[2] || bi[1] > bj[3] || bj[1] > bi[3]);
                    any |= meets[g];
                }
                if (!any) continue;
                if (nd_int < 0) {
                    int64_t total, area;
                    nd_int = decode_runs(&dt, i, &dec, d_lo, d_hi, &total, &area);
                    if (nd_int < 0) nd_int = 0;
                }
                for (int64_t g = 0; g < ng; g++) {
                    if (!meets[g]) continue;
                    int64_t j = go[g0 + g];
                    if (gsz[2 * j] != dsz[2 * i] || gsz[2 * j + 1] != dsz[2 * i + 1]) { block[d * ng + g] = -1.0; continue; }
                    uint64_t inter = intervals_intersection(d_lo, d_hi, nd_int, g_lo + goff[g], g_hi + goff[g], goff[g + 1] - goff[g]);
                    if (!inter) continue;
                    uint64_t uni = crowd[j] ? (uint64_t)da[i] : (uint64_t)(da[i] + ga[j]) - inter;
                    block[d * ng + g] = (double)inter / (double)uni;
                }
            }
        }
        Py_END_ALLOW_THREADS
    }
    free(g_lo); free(g_hi); free(d_lo); free(d_hi); free(goff); free(meets); decoder_free(&dec);
    PyBuffer_Release(&gbuf); PyBuffer_Release(&gstarts); PyBuffer_Release(&glens); PyBuffer_Release(&gsizes);
    PyBuffer_Release(&gstatus); PyBuffer_Release(&gareas); PyBuffer_Release(&gboxes); PyBuffer_Release(&gtotals);
    PyBuffer_Release(&gcrowd); PyBuffer_Release(&dbuf); PyBuffer_Release(&dstarts); PyBuffer_Release(&dlens); PyBuffer_Release(&dsizes);
    PyBuffer_Release(&dstatus); PyBuffer_Release(&dareas); PyBuffer_Release(&dboxes); PyBuffer_Release(&dtotals);
    PyBuffer_Release(&gorder); PyBuffer_Release(&dorder); PyBuffer_Release(&gstart); PyBuffer_Release(&dstart);
    PyBuffer_Release(&istart); PyBuffer_Release(&out);
    if (failed) return PyErr_NoMemory();
    Py_RETURN_NONE;
}

/* bbox_ious(gt_boxes f64[4G'], gt_crowd u8[G'], dt_boxes f64[4D'], gt_order i64[G], dt_order i64[D],
 *           gt_start i64[B+1], dt_start i64[B+1], iou_start i64[B], lo, hi, out f64[P])
 * pycocotools bbIou (xywh boxes, its operations in its order) of every (dt, gt) pair of blocks
 * [lo, hi), written row-major D_b x G_b per block at iou_start; crowd: intersection over the
 * detection's area. */
static PyObject *bbox_ious(PyObject *self, PyObject *args) {
    Py_buffer gbox, gcrowd, dbox, gorder, dorder, gstart, dstart, istart, out;
    Py_ssize_t lo, hi;
    if (!PyArg_ParseTuple(args, "y*y*y*y*y*y*y*y*nnw*", &gbox, &gcrowd, &dbox, &gorder, &dorder,
                          &gstart, &dstart, &istart, &lo, &hi, &out)) return NULL;
    const double *gb = gbox.buf, *db = dbox.buf;
    const uint8_t *crowd = gcrowd.buf;
    const int64_t *go = gorder.buf, *dor = dorder.buf, *gs = gstart.buf, *ds = dstart.buf, *is = istart.buf;
    double *o = out.buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t b = lo; b < hi; b++) {
        int64_t g0 = gs[b], ng = gs[b + 1] - g0, d0 = ds[b], nd = ds[b + 1] - d0;
        double *block = o + is[b];
        for (int64_t d = 0; d < nd; d++) {
            const double *D = db + 4 * dor[d0 + d];
            double da = D[2] * D[3];
            for (int64_t g = 0; g < ng; g++) {
                int64_t j = go[g0 + g];
                const double *G = gb + 4 * j;
                double *cell = block + d * ng + g;
                *cell = 0.0;
                double w = fmin(D[2] + D[0], G[2] + G[0]) - fmax(D[0], G[0]);
                if (w <= 0) continue;
                double h = fmin(D[3] + D[1], G[3] + G[1]) - fmax(D[1], G[1]);
                if (h <= 0) continue;
                double inter = w * h, uni = crowd[j] ? da : da + G[2] * G[3] - inter;
                *cell = inter / uni;
            }
        }
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&gbox); PyBuffer_Release(&gcrowd); PyBuffer_Release(&dbox); PyBuffer_Release(&gorder);
    PyBuffer_Release(&dorder); PyBuffer_Release(&gstart); PyBuffer_Release(&dstart); PyBuffer_Release(&istart);
    PyBuffer_Release(&out);
    Py_RETURN_NONE;
}

/* match_candidates(ious f64, det_start i64[B+1], gt_start i64[B+1], iou_start i64[B], lowest, out i64[D])
 * The detections (block order) whose IoU with some gt of their block reaches `lowest`, in
 * order: their number. The others match nothing at any threshold >= lowest, in any variant,
 * and take nothing from the others. */
static PyObject *match_candidates(PyObject *self, PyObject *args) {
    Py_buffer ious, det_start, gt_start, iou_start, out;
    double lowest;
    if (!PyArg_ParseTuple(args, "y*y*y*y*dw*", &ious, &det_start, &gt_start, &iou_start, &lowest, &out)) return NULL;
    const double *iou = ious.buf;
    const int64_t *ds = det_start.buf, *gs = gt_start.buf, *is = iou_start.buf;
    int64_t *cand = out.buf;
    Py_ssize_t B = iou_start.len / (Py_ssize_t)sizeof(int64_t);
    int64_t n = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t b = 0; b < B; b++) {
        int64_t ng = gs[b + 1] - gs[b], nd = ds[b + 1] - ds[b];
        const double *block = iou + is[b];
        for (int64_t d = 0; d < nd && ng; d++) {
            int reaches = 0;
            for (int64_t g = 0; g < ng; g++) reaches |= block[d * ng + g] >= lowest;
            if (reaches) cand[n++] = ds[b] + d;
        }
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&ious); PyBuffer_Release(&det_start); PyBuffer_Release(&gt_start);
    PyBuffer_Release(&iou_start); PyBuffer_Release(&out);
    return PyLong_FromLongLong(n);
}

/* match(ious f64, det_start i64[B+1], gt_start i64[B+1], iou_start i64[B], gt_state u8[V*G],
 *       gt_crowd u8[G], thresholds f64[T], candidates i64[C], v_lo, v_hi, out i32[V*T*C])
 * For variants v_lo..v_hi-1 (disjoint ranges may run in threads), each block b (dets sorted
 * by score, at most maxDets), each variant v and threshold t: COCOeval.evaluateImg's greedy
 * matching of the candidates (match_candidates at the lowest threshold, or min(t, 1 - 1e-10)).
 * gt_state: 0 counts, 1 ignore region, 2 absent. A det takes the best available counted gt
 * with IoU >= min(t, 1 - 1e-10) (the last one on ties, as pycocotools' scan in gt order
 * does); only if there is none, the best ignored one. out[v, t, c] = global gt index matched
 * by candidate c, or -1. */
static PyObject *match(PyObject *self, PyObject *args) {
    Py_buffer ious, det_start, gt_start, iou_start, gt_state, gt_crowd, thresholds, candidates, out;
    Py_ssize_t v_lo, v_hi;
    if (!PyArg_ParseTuple(args, "y*y*y*y*y*y*y*y*nnw*", &ious, &det_start, &gt_start, &iou_start,
                          &gt_state, &gt_crowd, &thresholds, &candidates, &v_lo, &v_hi, &out)) return NULL;
    const double *iou = ious.buf, *thr = thresholds.buf;
    const int64_t *ds = det_start.buf, *gs = gt_start.buf, *is = iou_start.buf, *cand = candidates.buf;
    const uint8_t *state = gt_state.buf, *crowd = gt_crowd.buf;
    int32_t *res = out.buf;
    Py_ssize_t B = iou_start.len / (Py_ssize_t)sizeof(int64_t);
    Py_ssize_t T = thresholds.len / (Py_ssize_t)sizeof(double);
    Py_ssize_t G = gt_crowd.len;
    Py_ssize_t V = G ? gt_state.len / G : 0;
    Py_ssize_t C = candidates.len / (Py_ssize_t)sizeof(int64_t);
    int64_t max_g = 0;
    for (Py_ssize_t b = 0; b < B; b++) if (gs[b + 1] - gs[b] > max_g) max_g = gs[b + 1] - gs[b];
    uint8_t *taken = PyMem_Malloc(max_g ? max_g : 1);
    int64_t *cand_start = PyMem_Malloc(sizeof(int64_t) * (size_t)(B + 1));
    if (!taken || !cand_start) { PyErr_NoMemory(); goto done; }
    if (v_lo < 0) v_lo = 0;
    if (v_hi > V) v_hi = V;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t k = v_lo * T * C; k < v_hi * T * C; k++) res[k] = -1;
    int64_t c_at = 0;  /* the candidates of block b: cand_start[b] .. cand_start[b + 1] - 1 */
    for (Py_ssize_t b = 0; b < B; b++) {
        while (c_at < C && cand[c_at] < ds[b]) c_at++;
        cand_start[b] = c_at;
    }
    cand_start[B] = C;
    for (Py_ssize_t v = v_lo; v < v_hi; v++) {
        const uint8_t *st = state + v * G;
        for (Py_ssize_t t = 0; t < T; t++) {
            double start_thr = thr[t] < 1 - 1e-10 ? thr[t] : 1 - 1e-10;
            int32_t *row = res + (v * T + t) * C;
            for (Py_ssize_t b = 0; b < B; b++) {
                int64_t g0 = gs[b], ng = gs[b + 1] - gs[b];
                if (cand_start[b + 1] == cand_start[b]) continue;
                const double *block = iou + is[b];
                memset(taken, 0, ng);
                for (int64_t c = cand_start[b]; c < cand_start[b + 1]; c++) {
                    int64_t d = cand[c] - ds[b], m = -1;
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
                    row[c] = (int32_t)(g0 + m);
                }
            }
        }
    }
    Py_END_ALLOW_THREADS
done:
    PyMem_Free(taken); PyMem_Free(cand_start);
    PyBuffer_Release(&ious); PyBuffer_Release(&det_start); PyBuffer_Release(&gt_start);
    PyBuffer_Release(&iou_start); PyBuffer_Release(&gt_state); PyBuffer_Release(&gt_crowd);
    PyBuffer_Release(&thresholds); PyBuffer_Release(&candidates); PyBuffer_Release(&out);
    if (PyErr_Occurred()) return NULL;
    Py_RETURN_NONE;
}

/* oks_exponents(dt_kpts f64[D'*3K], gt_kpts f64[G'*3K], gt_boxes f64[4G'], gt_areas f64[G'],
 *               variances f64[K], dt i64[P], gt i64[P], out f64[P*K])
 * The exponents -e of pycocotools computeOks for pairs (dt[p], gt[p]), with its operations
 * in its order: e = (dx^2 + dy^2) / variances / (area + eps) / 2, where dx, dy are keypoint
 * offsets, or distances outside the gt box enlarged 2x when the gt labels no keypoint. */
static PyObject *oks_exponents(PyObject *self, PyObject *args) {
    Py_buffer dtk, gtk, gbox, garea, var, dt, gt, out;
    if (!PyArg_ParseTuple(args, "y*y*y*y*y*y*y*w*", &dtk, &gtk, &gbox, &garea, &var, &dt, &gt, &out)) return NULL;
    const double *dk = dtk.buf, *gk = gtk.buf, *gb = gbox.buf, *ga = garea.buf, *v = var.buf;
    const int64_t *d = dt.buf, *g = gt.buf;
    double *o = out.buf;
    Py_ssize_t K = var.len / (Py_ssize_t)sizeof(double), P = dt.len / (Py_ssize_t)sizeof(int64_t);
    const double eps = 2.220446049250313e-16;  /* np.spacing(1) */
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t p = 0; p < P; p++) {
        const double *kd = dk + 3 * K * d[p], *kg = gk + 3 * K * g[p], *bb = gb + 4 * g[p];
        int labelled = 0;
        for (Py_ssize_t k = 0; k < K; k++) labelled |= kg[3 * k + 2] > 0;
        double x0 = bb[0] - bb[2], x1 = bb[0] + bb[2] * 2, y0 = bb[1] - bb[3], y1 = bb[1] + bb[3] * 2;
        double area = ga[g[p]] + eps;
        for (Py_ssize_t k = 0; k < K; k++) {
            double xd = kd[3 * k], yd = kd[3 * k + 1], dx, dy;
            if (labelled) { dx = xd - kg[3 * k]; dy = yd - kg[3 * k + 1]; }
            else {
                double a = x0 - xd, b = xd - x1, c = y0 - yd, e = yd - y1;
                dx = (a > 0 ? a : 0.0) + (b > 0 ? b : 0.0);
                dy = (c > 0 ? c : 0.0) + (e > 0 ? e : 0.0);
            }
            o[p * K + k] = -((dx * dx + dy * dy) / v[k] / area / 2);
        }
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&dtk); PyBuffer_Release(&gtk); PyBuffer_Release(&gbox); PyBuffer_Release(&garea);
    PyBuffer_Release(&var); PyBuffer_Release(&dt); PyBuffer_Release(&gt); PyBuffer_Release(&out);
    Py_RETURN_NONE;
}

/* oks_means(terms f64[P*K], gt_kpts f64[G'*3K], gt i64[P], out f64[P])
 * pycocotools' np.sum(np.exp(-e)[selected]) / n per pair, terms = exp(-e): the gt's labelled
 * keypoints (all K when it labels none), summed as numpy sums a short 1-D array (n < 8: in
 * order from 0; else 8 partial sums, combined pairwise, then the remainder in order). */
static PyObject *oks_means(PyObject *self, PyObject *args) {
    Py_buffer terms, gtk, gt, out;
    if (!PyArg_ParseTuple(args, "y*y*y*w*", &terms, &gtk, &gt, &out)) return NULL;
    const double *t = terms.buf, *gk = gtk.buf;
    const int64_t *g = gt.buf;
    double *o = out.buf;
    Py_ssize_t P = gt.len / (Py_ssize_t)sizeof(int64_t), K = P ? terms.len / (Py_ssize_t)sizeof(double) / P : 0;
    double *chosen = malloc(sizeof(double) * (size_t)(K ? K : 1));
    if (!chosen) { PyBuffer_Release(&terms); PyBuffer_Release(&gtk); PyBuffer_Release(&gt); PyBuffer_Release(&out); return PyErr_NoMemory(); }
    for (Py_ssize_t p = 0; p < P; p++) {
        const double *kg = gk + 3 * K * g[p], *row = t + p * K;
        Py_ssize_t n = 0;
        for (Py_ssize_t k = 0; k < K; k++) if (kg[3 * k + 2] > 0) chosen[n++] = row[k];
        if (n == 0) { memcpy(chosen, row, sizeof(double) * (size_t)K); n = K; }
        double sum;
        if (n < 8) {
            sum = 0.0;
            for (Py_ssize_t i = 0; i < n; i++) sum += chosen[i];
        } else {  /* numpy's pairwise_sum for 8 <= n <= 128 */
            double r[8];
            for (int j = 0; j < 8; j++) r[j] = chosen[j];
            Py_ssize_t i = 8;
            for (; i < n - (n % 8); i += 8) for (int j = 0; j < 8; j++) r[j] += chosen[i + j];
            sum = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
            for (; i < n; i++) sum += chosen[i];
        }
        o[p] = sum / (double)n;
    }
    free(chosen);
    PyBuffer_Release(&terms); PyBuffer_Release(&gtk); PyBuffer_Release(&gt); PyBuffer_Release(&out);
    Py_RETURN_NONE;
}

/* accumulate(matches i32[A*T*D], gt_state u8[A*G], gt_ids i64[G], gt_used u8[G], gt_cat i64[G],
 *            order i64[D], dt_used u8[D], dt_cat i64[D], dt_rank i64[D], dt_scores f64[D],
 *            dt_out u8[A*D], rec_thrs f64[R], max_dets i64[M], K, a_lo, a_hi,
 *            precision f64[T*R*K*A*M], recall f64[T*K*A*M], scores f64[T*R*K*A*M])
 * COCOeval.accumulate for one variant, area ranges a_lo..a_hi-1 (disjoint ranges may run in
 * threads), category k and maxDets m; all
 * arrays in block order. matches: gt index or -1 per (a, t, candidate); candidate_of: each
 * detection's candidate index (match_candidates), -1 for one that matches nothing; gt_state: 0 counts,
 * 1 ignore region, 2 absent; order: detections by score (stable) over all blocks; dt_out:
 * an unmatched detection is ignored (outside the area range, or given to another subset).
 * A match to a gt whose id is 0 counts as none (pycocotools records matches by id). Cells
 * with no counted ground truth are left as the caller filled them (-1). */
enum { DT_IGNORED = 0, DT_TP = 1, DT_FP = 2 };

static PyObject *accumulate(PyObject *self, PyObject *args) {
    Py_buffer matches, candidate_of, gt_state, gt_ids, gt_used, gt_cat, order, dt_used, dt_cat, dt_rank, dt_scores,
        dt_out, rec_thrs, max_dets, precision, recall, scores;
    Py_ssize_t K, a_lo, a_hi;
    if (!PyArg_ParseTuple(args, "y*y*y*y*y*y*y*y*y*y*y*y*y*y*nnnw*w*w*", &matches, &candidate_of, &gt_state, &gt_ids,
                          &gt_used, &gt_cat, &order, &dt_used, &dt_cat, &dt_rank, &dt_scores, &dt_out,
                          &rec_thrs, &max_dets, &K, &a_lo, &a_hi, &precision, &recall, &scores)) return NULL;
    Py_ssize_t G = gt_used.len, D = dt_used.len;
    Py_ssize_t A = G ? gt_state.len / G : 0;
    Py_ssize_t R = rec_thrs.len / (Py_ssize_t)sizeof(double), M = max_dets.len / (Py_ssize_t)sizeof(int64_t);
    Py_ssize_t T = (A && K && R && M) ? recall.len / (Py_ssize_t)sizeof(double) / (K * A * M) : 0;
    const int32_t *mt = matches.buf, *cand_of = candidate_of.buf;
    Py_ssize_t C = (A && T) ? matches.len / (Py_ssize_t)sizeof(int32_t) / (A * T) : 0;
    const int64_t *gid = gt_ids.buf, *gc = gt_cat.buf, *ord = order.buf;
    const int64_t *dc = dt_cat.buf, *rank = dt_rank.buf, *md = max_dets.buf;
    const uint8_t *gst = gt_state.buf, *gu = gt_used.buf, *du = dt_used.buf, *dout = dt_out.buf;
    const double *ds = dt_scores.buf, *rt = rec_thrs.buf;
    double *P = precision.buf, *Rc = recall.buf, *S = scores.buf;
    size_t n = (size_t)(D ? D : 1);
    int64_t *list = malloc(sizeof(int64_t) * n), *kept = malloc(sizeof(int64_t) * n);
    int32_t *list_cand = malloc(sizeof(int32_t) * n);
    uint8_t *status = malloc(n * (size_t)(T ? T : 1));
    int64_t *tp_pos = malloc(sizeof(int64_t) * n);
    double *tp_pr = malloc(sizeof(double) * n);
    int failed = !list || !kept || !list_cand || !status || !tp_pos || !tp_pr;
    if (!failed) {
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t a = a_lo < 0 ? 0 : a_lo; a < (a_hi < A ? a_hi : A); a++) {
            const uint8_t *st = gst + a * G, *out_a = dout + a * D;
            for (Py_ssize_t k = 0; k < K; k++) {
                int64_t npig = 0;
                for (Py_ssize_t g = 0; g < G; g++) npig += gu[g] && gc[g] == k && st[g] == 0;
                if (npig == 0) continue;
                /* This category's detections by score, and each one's fate per threshold. */
                int64_t nd_all = 0;
                for (Py_ssize_t q = 0; q < D; q++) {
                    int64_t d = ord[q];
                    if (du[d] && dc[d] == k) { list_cand[nd_all] = cand_of[d]; list[nd_all++] = d; }
                }
                for (Py_ssize_t t = 0; t < T; t++) {
                    const int32_t *row = mt + (a * T + t) * C;
                    uint8_t *fate = status + t * nd_all;
                    for (int64_t q = 0; q < nd_all; q++) {
                        int64_t d = list[q], c = list_cand[q], g = c >= 0 ? row[c] : -1;
                        int matched = g >= 0 && gid[g] != 0;
                        int ignored = (g >= 0 && st[g] == 1) || (!matched && out_a[d]);
                        fate[q] = ignored ? DT_IGNORED : matched ? DT_TP : DT_FP;
                    }
                }
                for (Py_ssize_t mi = 0; mi < M; mi++) {
                    int64_t nd = 0;
                    for (int64_t q = 0; q < nd_all; q++) if (rank[list[q]] < md[mi]) kept[nd++] = q;
                    for (Py_ssize_t t = 0; t < T; t++) {
                        /* Precision at each true positive (recall moves only there; the
                         * interpolated precision, a maximum to the right, is attained there). */
                        const uint8_t *fate = status + t * nd_all;
                        double tp = 0, fp = 0;
                        int64_t ntp = 0;
                        for (int64_t i = 0; i < nd; i++) {
                            uint8_t f = fate[kept[i]];
                            if (f == DT_TP) {
                                tp += 1;
                                tp_pos[ntp] = i;
                                tp_pr[ntp++] = tp / (fp + tp + 2.220446049250313e-16);  /* np.spacing(1) */
                            } else if (f == DT_FP) fp += 1;
                        }
                        Rc[((t * K + k) * A + a) * M + mi] = nd ? tp / (double)npig : 0;
                        for (int64_t j = ntp - 1; j > 0; j--) if (tp_pr[j] > tp_pr[j - 1]) tp_pr[j - 1] = tp_pr[j];
                        /* recall at the first detection: 1 / npig if it is a true positive */
                        double first_recall = (ntp && tp_pos[0] == 0 ? 1.0 : 0.0) / (double)npig;
                        int64_t j = 0;
                        for (Py_ssize_t r = 0; r < R; r++) {
                            Py_ssize_t cell = (((t * R + r) * K + k) * A + a) * M + mi;
                            double precision_r = 0, score_r = 0;
                            if (nd && first_recall >= rt[r]) {  /* searchsorted lands on the first */
                                precision_r = ntp ? tp_pr[0] : 0;
                                score_r = ds[list[kept[0]]];
                            } else {
                                while (j < ntp && (double)(j + 1) / (double)npig < rt[r]) j++;
                                if (j < ntp) { precision_r = tp_pr[j]; score_r = ds[list[kept[tp_pos[j]]]]; }
                            }
                            P[cell] = precision_r;
                            S[cell] = score_r;
                        }
                    }
                }
            }
        }
        Py_END_ALLOW_THREADS
    }
    free(list); free(kept); free(list_cand); free(status); free(tp_pos); free(tp_pr);
    PyBuffer_Release(&matches); PyBuffer_Release(&candidate_of); PyBuffer_Release(&gt_state); PyBuffer_Release(&gt_ids); PyBuffer_Release(&gt_used);
    PyBuffer_Release(&gt_cat); PyBuffer_Release(&order); PyBuffer_Release(&dt_used); PyBuffer_Release(&dt_cat);
    PyBuffer_Release(&dt_rank); PyBuffer_Release(&dt_scores); PyBuffer_Release(&dt_out); PyBuffer_Release(&rec_thrs);
    PyBuffer_Release(&max_dets); PyBuffer_Release(&precision); PyBuffer_Release(&recall); PyBuffer_Release(&scores);
    if (failed) return PyErr_NoMemory();
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"scan_results", scan_results, METH_VARARGS, "Columns of a COCO results file, or None (general path)."},
    {"scan_coco_images", scan_coco_images, METH_VARARGS, "Columns of a COCO 'images' list, or None."},
    {"scan_coco_annotations", scan_coco_annotations, METH_VARARGS, "Columns of a COCO 'annotations' list, or None."},
    {"rle_spans_clean", rle_spans_clean, METH_VARARGS, "Whether raw JSON spans are clean RLE counts strings."},
    {"rle_stats", rle_stats, METH_VARARGS, "Areas, pixel totals and boxes of COCO compressed RLE strings."},
    {"segm_ious", segm_ious, METH_VARARGS, "Mask IoU of every (dt, gt) pair of a range of blocks."},
    {"bbox_ious", bbox_ious, METH_VARARGS, "Box IoU of every (dt, gt) pair of a range of blocks."},
    {"oks_exponents", oks_exponents, METH_VARARGS, "The exponents of COCO OKS for (dt, gt) pairs."},
    {"oks_means", oks_means, METH_VARARGS, "COCO OKS from exp(-e), summed as numpy sums."},
    {"match_candidates", match_candidates, METH_VARARGS, "Detections that reach the lowest threshold somewhere."},
    {"match", match, METH_VARARGS, "COCO greedy matching over blocks, variants and thresholds."},
    {"accumulate", accumulate, METH_VARARGS, "COCO precision/recall accumulation for one variant."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_evalcore", NULL, -1, methods};

PyMODINIT_FUNC PyInit__evalcore(void) {
#if !defined(_WIN32)
    if (!c_locale) c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
#endif
#ifdef FAST_RLE
    init_fast_rle();
#endif
    return PyModule_Create(&module);
}
