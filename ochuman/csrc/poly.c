/* Polygons -> COCO compressed RLE strings, bit for bit as pycocotools: rleFrPoly of each
 * polygon, their union by rleMerge (in list order), rleToString of the result.
 *
 * rleFrPoly's rule: points upsampled by 5 and rounded (int)(5 x + .5); each edge (the last one
 * closing the ring) walked one unit at a time along its major axis, the minor coordinate
 * rounded (int)(start + slope t + .5); wherever the walk changes column, a boundary point of
 * the downsampled grid whose column is a whole pixel inside the image, its row clamped to
 * 0..h and rounded up; the sorted positions x h + y (plus h w) become runs, a zero run folding
 * two runs into one. The walk is streamed: no array of the dense points. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "evalcore.h"

typedef struct { uint32_t *data; size_t len, cap; } Counts;

static int counts_reserve(Counts *c, size_t extra) {
    if (c->len + extra <= c->cap) return 0;
    size_t cap = c->cap ? c->cap : 64;
    while (cap < c->len + extra) cap *= 2;
    uint32_t *data = realloc(c->data, cap * sizeof *data);
    if (!data) return EC_NO_MEMORY;
    c->data = data; c->cap = cap;
    return 0;
}

static int counts_push(Counts *c, uint32_t value) {
    if (counts_reserve(c, 1) < 0) return EC_NO_MEMORY;
    c->data[c->len++] = value;
    return 0;
}

/* a[0..n-1] sorted ascending, with tmp[n] as scratch: a natural merge sort. The walk around a
 * polygon gives its boundary points in a few long monotone stretches (left to right along the
 * top, back along the bottom), so the runs are found (descending ones reversed) and merged
 * pairwise: O(n) for a convex polygon, O(n log runs) at worst. */
static void sort_u32(uint32_t *a, size_t n, uint32_t *tmp) {
    size_t runs = 0;
    /* pass 1: make every maximal run ascending in place, counting them */
    size_t i = 0;
    while (i < n) {
        size_t j = i + 1;
        if (j < n && a[j] < a[i]) {
            while (j < n && a[j] < a[j - 1]) j++;
            for (size_t lo = i, hi = j - 1; lo < hi; lo++, hi--) { uint32_t t = a[lo]; a[lo] = a[hi]; a[hi] = t; }
        } else {
            while (j < n && a[j] >= a[j - 1]) j++;
        }
        runs++;
        i = j;
    }
    /* pass 2..: merge neighbouring runs (found again each pass: ascending stretches) until one */
    uint32_t *src = a, *dst = tmp;
    while (runs > 1) {
        size_t start = 0;
        runs = 0;
        while (start < n) {
            size_t mid = start + 1;
            while (mid < n && src[mid] >= src[mid - 1]) mid++;
            size_t end = mid;
            if (end < n) { end++; while (end < n && src[end] >= src[end - 1]) end++; }
            size_t x = start, y = mid, k = start;
            while (x < mid && y < end) dst[k++] = src[y] < src[x] ? src[y++] : src[x++];
            while (x < mid) dst[k++] = src[x++];
            while (y < end) dst[k++] = src[y++];
            runs++;
            start = end;
        }
        uint32_t *t = src; src = dst; dst = t;
    }
    if (src != a) memcpy(a, src, n * sizeof *a);
}

/* A boundary point between dense points (up, vp) and (u, v) of different columns, as rleFrPoly
 * keeps it: pushed as x h + y, or nothing. */
static int boundary_point(int u, int v, int up, int vp, uint64_t h, uint64_t w, Counts *points) {
    int column = u < up ? u : u - 1;
    /* (column + .5) / 5 - .5 is a whole number >= 0 exactly when column = 5 k + 2, k >= 0 (the
     * coordinate limit keeps these doubles exact): the test below, without the divisions */
    if (column < 2 || (column - 2) % 5) return 0;
    int64_t x = (column - 2) / 5;  /* (column + .5) / 5 - .5, exactly */
    if ((uint64_t)x > w - 1) return 0;
    /* ceil((m + .5) / 5 - .5) clamped to 0..h, m = min(v, vp): the double is within 0.1 of
     * (m - 2) / 5, a whole number exactly when that is, so its ceiling is the integer ceiling */
    int64_t m = v < vp ? v : vp, y = m <= 2 ? 0 : (m - 2 + 4) / 5;
    if ((uint64_t)y > h) y = (int64_t)h;
    return counts_push(points, (uint32_t)(x * (int64_t)h + y));
}

/* rleFrPoly of the k points xy[2k] at h x w: its runs into *runs (replaced). */
static int polygon_runs(const double *xy, int64_t k, uint64_t h, uint64_t w, Counts *points, Counts *runs) {
    const double scale = 5;
    int first = 1, up = 0, vp = 0;
    points->len = 0;
    for (int64_t j = 0; j < k; j++) {
        int64_t next = j + 1 < k ? j + 1 : 0;
        int xs = (int)(scale * xy[2 * j] + .5), xe = (int)(scale * xy[2 * next] + .5);
        int ys = (int)(scale * xy[2 * j + 1] + .5), ye = (int)(scale * xy[2 * next + 1] + .5);
        int dx = abs(xe - xs), dy = abs(ys - ye), t;
        int flip = (dx >= dy && xs > xe) || (dx < dy && ys > ye);
        if (flip) { t = xs; xs = xe; xe = t; t = ys; ys = ye; ye = t; }
        double s = dx >= dy ? (double)(ye - ys) / dx : (double)(xe - xs) / dy;
        int major = dx >= dy ? dx : dy;
        if (dx >= dy && dx > 0) {
            /* along x every step changes column: only columns c = min(u, previous u) = 5 k + 2
             * can give a boundary point, so only those steps are computed */
            int u = flip ? xs + dx : xs, v = (int)(ys + s * (flip ? dx : 0) + .5);
            if (!first && u != up && boundary_point(u, v, up, vp, h, w, points) < 0) return EC_NO_MEMORY;
            int c = xs > 2 ? xs : 2;
            c += ((2 - c) % 5 + 5) % 5;
            for (; c <= xs + dx - 1; c += 5) {
                int d = flip ? xs + dx - c : c - xs + 1;  /* step d goes from column u(d - 1) to u(d) */
                int t0 = flip ? dx - (d - 1) : d - 1, t1 = flip ? dx - d : d;
                int v0 = (int)(ys + s * t0 + .5), v1 = (int)(ys + s * t1 + .5);
                if (boundary_point(t1 + xs, v1, t0 + xs, v0, h, w, points) < 0) return EC_NO_MEMORY;
            }
            first = 0; up = flip ? xs : xs + dx; vp = (int)(ys + s * (flip ? 0 : dx) + .5);
            continue;
        }
        if (dx < dy) {
            /* along y the column moves monotonically, one at a time, at most dx times: only its
             * moves between columns c and c + 1 with c = 5 k + 2 can give a boundary point, so
             * only those are looked for (the boundary points are sorted below, so their order
             * does not matter) */
#define COLUMN_AT(step) ((int)(xs + s * (step) + .5))
#define PAST(step) (rising ? COLUMN_AT(step) >= c + 1 : COLUMN_AT(step) <= c)
            int t_first = flip ? major : 0, t_last = flip ? 0 : major;
            int u = COLUMN_AT(t_first), v = t_first + ys;
            if (!first && u != up && boundary_point(u, v, up, vp, h, w, points) < 0) return EC_NO_MEMORY;
            int u0 = COLUMN_AT(0), u1 = COLUMN_AT(major), rising = u0 <= u1;
            int c = rising ? u0 : u1;
            c = c > 2 ? c : 2;
            c += ((2 - c) % 5 + 5) % 5;
            for (; c <= (rising ? u1 : u0) - 1; c += 5) {
                /* the first step in 1..major past the move between c and c + 1 (PAST is false
                 * then true along the steps): guessed from where xs + s t + .5 crosses c + 1,
                 * then moved to it by the exact test, a step or none in practice (bisection
                 * took ~7 tests: 43% of a polygon-heavy file's rasterisation) */
                double guess = ceil((c + .5 - xs) / s);  /* s != 0: the column moves */
                int t = guess < 1 ? 1 : guess > major ? major : (int)guess;
                while (t > 1 && PAST(t - 1)) t--;
                while (t < major && !PAST(t)) t++;
                if (boundary_point(COLUMN_AT(t), t + ys, COLUMN_AT(t - 1), t - 1 + ys, h, w, points) < 0)
                    return EC_NO_MEMORY;
            }
            first = 0; up = COLUMN_AT(t_last); vp = t_last + ys;
#undef PAST
#undef COLUMN_AT
            continue;
        }
        for (int d = 0; d <= major; d++) {  /* a single point (dx = dy = 0) */
            int u, v;
            t = flip ? major - d : d;
            if (dx >= dy) { u = t + xs; v = (int)(ys + s * t + .5); }
            else { v = t + ys; u = (int)(xs + s * t + .5); }
            if (!first && u != up && boundary_point(u, v, up, vp, h, w, points) < 0) return EC_NO_MEMORY;
            first = 0; up = u; vp = v;
        }
    }
    if (counts_push(points, (uint32_t)(h * w)) < 0) return EC_NO_MEMORY;
    uint32_t *a = points->data;
    size_t n = points->len;
    runs->len = 0;
    if (counts_reserve(runs, n) < 0) return EC_NO_MEMORY;
    sort_u32(a, n, runs->data);
    uint32_t previous = 0;
    for (size_t j = 0; j < n; j++) { uint32_t position = a[j]; a[j] -= previous; previous = position; }
    uint32_t *b = runs->data;
    size_t j = 0, m = 0;
    b[m++] = a[j++];
    while (j < n) {
        if (a[j] > 0) b[m++] = a[j++];
        else { j++; if (j < n) b[m - 1] += a[j++]; }
    }
    runs->len = m;
    return 0;
}

/* rleMerge (union) of runs a and b into *out (replaced). */
static int merge_runs(const Counts *A, const Counts *B, Counts *out) {
    out->len = 0;
    if (counts_reserve(out, A->len + B->len + 1) < 0) return EC_NO_MEMORY;
    uint32_t *cnts = out->data, c, ca = A->data[0], cb = B->data[0], cc = 0, ct = 1;
    int v = 0, va = 0, vb = 0, vp;
    size_t a = 1, b = 1, m = 0;
    while (ct > 0) {
        c = ca < cb ? ca : cb; cc += c; ct = 0;
        ca -= c; if (!ca && a < A->len) { ca = A->data[a++]; va = !va; } ct += ca;
        cb -= c; if (!cb && b < B->len) { cb = B->data[b++]; vb = !vb; } ct += cb;
        vp = v; v = va || vb;
        if (v != vp || ct == 0) { cnts[m++] = cc; cc = 0; }
    }
    out->len = m;
    return 0;
}

int polygon_rle_strings(const double *xy, const int64_t *point_start, const int64_t *polygon_start,
                        const int64_t *sizes, int64_t lo, int64_t hi, Vec *out, int64_t *lengths) {
    Counts points = {0}, runs = {0}, merged = {0}, scratch = {0};
    int result = 0;
    for (int64_t i = lo; i < hi && result == 0; i++) {
        uint64_t h = (uint64_t)sizes[2 * i], w = (uint64_t)sizes[2 * i + 1];
        size_t before = out->len;
        merged.len = 0;
        if (polygon_start[i] == polygon_start[i + 1]) result = counts_push(&merged, (uint32_t)(h * w));  /* no polygon: empty */
        for (int64_t p = polygon_start[i]; p < polygon_start[i + 1] && result == 0; p++) {
            Counts *target = p == polygon_start[i] ? &merged : &runs;
            result = polygon_runs(xy + 2 * point_start[p], point_start[p + 1] - point_start[p], h, w, &points, target);
            if (result == 0 && target == &runs) {
                result = merge_runs(&merged, &runs, &scratch);
                Counts swap = merged; merged = scratch; scratch = swap;
            }
        }
        if (result == 0) result = rle_append_string(merged.data, merged.len, out);
        lengths[i] = (int64_t)(out->len - before);
    }
    free(points.data); free(runs.data); free(merged.data); free(scratch.data);
    return result;
}
