/* COCO compressed RLE strings: the escape rule of raw strings (rle_clean_copy, the one place it
 * is written; rle_sse41.c has its vectorised twin), the scalar decoder (pycocotools
 * rleFrString, straight into 1-runs), the choice of decoder, boxes (rleToBbox) and statistics;
 * and strings made from counts (rleToString), of uncompressed RLE lists too. */
#include "rle_decode.h"
#include <stdlib.h>
#include <string.h>

void rle_init(void) {
#ifdef RLE_SSE41
    rle_sse41_init();
#endif
}

/* Raw strings are JSON string content straight from a file: a doubled backslash stands for one
 * backslash (an RLE code), and any other character outside the RLE alphabet '0'..'o' (or a lone
 * backslash) is refused. Other strings are copied as they are (pycocotools checks nothing). */
int64_t rle_clean_copy(const unsigned char *s, int64_t len, int raw, unsigned char *dst) {
    if (!raw) { memcpy(dst, s, (size_t)len); memset(dst + len, 0, 64); return len; }
#ifdef RLE_SSE41
    if (rle_sse41_ready) return rle_clean_copy_sse41(s, len, dst);
#endif
    int64_t q = 0;
    for (int64_t p = 0; p < len; p++) {
        unsigned char ch = s[p];
        if (ch < '0' || ch > 'o') return -1;
        if (ch == '\\') { if (p + 1 >= len || s[p + 1] != '\\') return -1; p++; }
        dst[q++] = ch;
    }
    memset(dst + q, 0, 64);
    return q;
}

int rle_spans_clean(const unsigned char *buf, const int64_t *spans, int64_t n) {
    int64_t most = 0;
    for (int64_t k = 0; k < n; k++) if (spans[2 * k + 1] > most) most = spans[2 * k + 1];
    unsigned char *scratch = malloc((size_t)most + 64);
    if (!scratch) return EC_NO_MEMORY;
    int clean = 1;
    for (int64_t k = 0; clean && k < n; k++) clean = rle_clean_copy(buf + spans[2 * k], spans[2 * k + 1], 1, scratch) >= 0;
    free(scratch);
    return clean;
}

int64_t rle_clean_spans(const unsigned char *buf, const int64_t *spans, int64_t n, unsigned char *dst, int64_t *lengths) {
    int64_t q = 0;
    for (int64_t k = 0; k < n; k++) {
        lengths[k] = rle_clean_copy(buf + spans[2 * k], spans[2 * k + 1], 1, dst + q);
        if (lengths[k] > 0) q += lengths[k];
    }
    return q;
}

/* A clean string (rle_clean_copy) into its 1-runs, as decode_runs. */
static int64_t decode_clean(const unsigned char *s, int64_t len, int64_t *lo, int64_t *hi, int64_t *total, int64_t *area) {
    int64_t p = 0, m = 0, n = 0, pos = 0, ones = 0;
    uint32_t back1 = 0, back2 = 0;  /* runs m - 1 and m - 2 (the delta of run m > 2) */
    while (p < len) {
        int64_t x = 0; int shift = 0, code;
        do {
            if (p >= len) return RLE_TRUNCATED;
            code = (char)s[p++] - 48;
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

int decoder_init(Decoder *dec, int64_t most) {
    dec->text = malloc((size_t)most + 64);
    dec->values = malloc(sizeof(int32_t) * ((size_t)most + 16));
    return dec->text && dec->values ? 0 : EC_NO_MEMORY;
}

void decoder_free(Decoder *dec) { free(dec->text); free(dec->values); }

int64_t decode_runs(const RleTable *t, int64_t k, Decoder *dec, int64_t *lo, int64_t *hi, int64_t *total, int64_t *area) {
    const unsigned char *s = (const unsigned char *)t->buf + t->starts[k];
    int64_t len = t->lengths[k];
#ifdef RLE_SSE41
    if (rle_sse41_ready) {
        int64_t M, n;
        if ((len = rle_clean_copy(s, len, t->raw, dec->text)) < 0) return RLE_BAD_CHARACTER;
        if ((M = rle_values_sse41(dec->text, len, dec->values)) >= 0
            && (n = rle_runs_sse41(dec->values, M, lo, hi, total, area)) >= 0) return n;
        return decode_clean(dec->text, len, lo, hi, total, area);
    }
#endif
    if (t->raw) {
        if ((len = rle_clean_copy(s, len, 1, dec->text)) < 0) return RLE_BAD_CHARACTER;
        s = dec->text;
    }
    return decode_clean(s, len, lo, hi, total, area);
}


/* Inclusive pixel box [x0, y0, x1, y1] of n sorted non-empty 1-runs [lo, hi) of a mask of
 * height h (column-major: x = pos / h, y = pos % h; [0, 0, -1, -1] when empty). */
void interval_box(const int64_t *lo, const int64_t *hi, int64_t n, int64_t height, int64_t *box) {
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
void column_box(const int64_t *lo, const int64_t *hi, int64_t n, int64_t height, int64_t *box) {
    if (!n) { box[0] = 0; box[1] = 0; box[2] = -1; box[3] = -1; return; }
    int64_t h = height > 0 ? height : 1;
    box[0] = lo[0] / h; box[1] = 0; box[2] = (hi[n - 1] - 1) / h; box[3] = h - 1;
}

static int64_t max_length(const RleTable *t, int64_t lo, int64_t hi) {
    int64_t most = 1;
    for (int64_t k = lo; k < hi; k++) if (t->lengths[k] > most) most = t->lengths[k];
    return most;
}

int rle_stats(const RleTable *t, const int64_t *heights, int64_t lo, int64_t hi, int8_t *status, int64_t *areas, int64_t *totals, int64_t *boxes) {
    size_t most = (size_t)max_length(t, lo, hi) + 8;
    int64_t *run_lo = malloc(sizeof(int64_t) * most), *run_hi = malloc(sizeof(int64_t) * most);
    Decoder dec;
    int failed = decoder_init(&dec, (int64_t)most) < 0 || !run_lo || !run_hi;
    for (int64_t k = lo; !failed && k < hi; k++) {
        if (status[k] != MASK_PENDING) continue;
        int64_t n = decode_runs(t, k, &dec, run_lo, run_hi, totals + k, areas + k);
        status[k] = n < 0 ? (int8_t)n : MASK_DONE;
        if (n >= 0) interval_box(run_lo, run_hi, n, heights[k], boxes + 4 * k);
    }
    free(run_lo); free(run_hi); decoder_free(&dec);
    return failed ? EC_NO_MEMORY : 0;
}

/* ------------------------------------------------------------------ strings out */
static int vec_room(Vec *out, size_t need) {
    if (need <= out->cap) return 0;
    size_t cap = out->cap ? out->cap : 256;
    while (cap < need) cap *= 2;
    char *data = realloc(out->data, cap);
    if (!data) return EC_NO_MEMORY;
    out->data = data; out->cap = cap;
    return 0;
}

int rle_append_string(const uint32_t *counts, size_t n, Vec *out) {
    if (vec_room(out, out->len + 7 * n + 1) < 0) return EC_NO_MEMORY;  /* a difference of two counts: 33 bits + sign */
    for (size_t i = 0; i < n; i++) {
        int64_t x = (int64_t)counts[i];
        if (i > 2) x -= (int64_t)counts[i - 2];
        int more = 1;
        while (more) {
            char c = x & 0x1f;
            x >>= 5;
            more = (c & 0x10) ? x != -1 : x != 0;
            if (more) c |= 0x20;
            out->data[out->len++] = (char)(c + 48);
        }
    }
    return 0;
}

static const char *after_ws(const char *p, const char *end) {
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
    return p;
}

/* The counts of the JSON text s[0..len) if it is a list of non-negative integers below 2^32
 * written plainly (digits, no leading zero), into *counts (grown, *cap its room): their number,
 * or -1 (anything else); EC_NO_MEMORY. */
static int64_t count_list(const char *s, int64_t len, uint32_t **counts, size_t *cap) {
    const char *p = after_ws(s, s + len), *end = s + len;
    int64_t m = 0;
    if (p >= end || *p++ != '[') return -1;
    p = after_ws(p, end);
    if (p < end && *p == ']') return after_ws(p + 1, end) == end ? 0 : -1;
    for (;;) {
        if (p >= end || *p < '0' || *p > '9' || (*p == '0' && p + 1 < end && p[1] >= '0' && p[1] <= '9')) return -1;
        uint64_t v = 0;
        for (; p < end && *p >= '0' && *p <= '9'; p++)
            if ((v = v * 10 + (uint64_t)(*p - '0')) > UINT32_MAX) return -1;
        if ((size_t)m == *cap) {
            size_t grown = *cap ? 2 * *cap : 256;
            uint32_t *more = realloc(*counts, grown * sizeof **counts);
            if (!more) return EC_NO_MEMORY;
            *counts = more; *cap = grown;
        }
        (*counts)[m++] = (uint32_t)v;
        p = after_ws(p, end);
        if (p < end && *p == ',') { p = after_ws(p + 1, end); continue; }
        if (p < end && *p == ']') return after_ws(p + 1, end) == end ? m : -1;
        return -1;
    }
}

int rle_list_strings(const char *buf, const int64_t *spans, int64_t n, Vec *out, int64_t *lengths) {
    uint32_t *counts = NULL;
    size_t cap = 0;
    int result = 0;
    for (int64_t k = 0; k < n && result == 0; k++) {
        int64_t m = count_list(buf + spans[2 * k], spans[2 * k + 1], &counts, &cap);
        size_t before = out->len;
        if (m == EC_NO_MEMORY) result = EC_NO_MEMORY;
        else if (m >= 0) result = rle_append_string(counts, (size_t)m, out);
        lengths[k] = m >= 0 && result == 0 ? (int64_t)(out->len - before) : -1;
    }
    free(counts);
    return result;
}
