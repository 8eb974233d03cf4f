/* IoU of every (detection, ground truth) pair of each (image, category) block: masks
 * (pycocotools rleIou, on 1-runs) and boxes (bbIou, its operations in its order). */
#include "rle_decode.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

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

/* The block's pairs are written row-major D_b x G_b at iou_start[b]: pairs whose boxes do not
 * meet are 0 without looking at the runs; masks of different sizes whose boxes meet are -1;
 * crowd: intersection over the detection's area. The ground truths of a block with detections
 * are decoded once, first; those still MASK_PENDING get their statistics and status written as
 * rle_stats would. A pending detection is decoded here and its area and total written, with
 * column_box's box and MASK_COLUMNS_ONLY (a string that cannot be decoded gets its RLE_* status
 * and IoU 0); a decoded one is decoded again only when its box meets a ground truth's. Masks go
 * to scratch, none is kept. Each annotation belongs to one block, so disjoint block ranges may
 * run in threads. */
int segm_ious(Masks *gt, const uint8_t *crowd, Masks *dt, const int64_t *go, const int64_t *dor, const Blocks *blocks, int64_t lo, int64_t hi, double *o) {
    const RleTable *gtab = &gt->rle, *dtab = &dt->rle;
    const int64_t *gsz = gt->sizes, *dsz = dt->sizes;
    int64_t *ga = gt->areas, *gb = gt->boxes, *gtot = gt->totals;
    int64_t *da = dt->areas, *db = dt->boxes, *dtot = dt->totals;
    int8_t *gst = gt->status, *dst = dt->status;
    const int64_t *gs = blocks->gt_start, *ds = blocks->dt_start, *is = blocks->iou_start;
    /* Scratch: the largest block's ground truths, one detection, per-block bookkeeping. */
    int64_t g_need = 1, most_chars = 1, most_g = 1;
    for (int64_t b = lo; b < hi; b++) {
        int64_t g_sum = 0, ng = gs[b + 1] - gs[b];
        for (int64_t g = gs[b]; g < gs[b + 1]; g++) {
            g_sum += gtab->lengths[go[g]];
            if (gtab->lengths[go[g]] > most_chars) most_chars = gtab->lengths[go[g]];
        }
        for (int64_t d = ds[b]; d < ds[b + 1]; d++) if (dtab->lengths[dor[d]] > most_chars) most_chars = dtab->lengths[dor[d]];
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
        for (int64_t b = lo; b < hi; b++) {
            int64_t g0 = gs[b], ng = gs[b + 1] - g0, d0 = ds[b], nd = ds[b + 1] - d0;
            double *block = o + is[b];
            if (ng && nd) {  /* the block's ground truths, decoded once (statistics if not yet known) */
                goff[0] = 0;
                for (int64_t g = 0; g < ng; g++) {
                    int64_t j = go[g0 + g], total, area;
                    int64_t n = decode_runs(gtab, j, &dec, g_lo + goff[g], g_hi + goff[g], &total, &area);
                    if (gst[j] == MASK_PENDING) {
                        gst[j] = n < 0 ? (int8_t)n : MASK_DONE;
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
                if (dst[i] == MASK_PENDING) {  /* area and total from this decoding, the box's columns */
                    nd_int = decode_runs(dtab, i, &dec, d_lo, d_hi, dtot + i, da + i);
                    dst[i] = nd_int < 0 ? (int8_t)nd_int : MASK_COLUMNS_ONLY;
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
                    nd_int = decode_runs(dtab, i, &dec, d_lo, d_hi, &total, &area);
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
    }
    free(g_lo); free(g_hi); free(d_lo); free(d_hi); free(goff); free(meets); decoder_free(&dec);
    return failed ? EC_NO_MEMORY : 0;
}

/* C99 fmin / fmax as glibc computes them (a NaN operand yields the other; on ties the second),
 * inline: the library calls were most of bbox_ious. Only a zero's sign could differ elsewhere,
 * and a zero width or height is no overlap either way. */
static inline double c_fmin(double x, double y) { return y != y ? x : x != x ? y : x < y ? x : y; }
static inline double c_fmax(double x, double y) { return y != y ? x : x != x ? y : x > y ? x : y; }

/* pycocotools bbIou with its floating-point operations in its order: 0 where the boxes do not
 * overlap; crowd: intersection over the detection's area. */
void bbox_ious(const double *gb, const uint8_t *crowd, const double *db, const int64_t *go, const int64_t *dor, const Blocks *blocks, int64_t lo, int64_t hi, double *o) {
    const int64_t *gs = blocks->gt_start, *ds = blocks->dt_start, *is = blocks->iou_start;
    for (int64_t b = lo; b < hi; b++) {
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
                double w = c_fmin(D[2] + D[0], G[2] + G[0]) - c_fmax(D[0], G[0]);
                if (w <= 0) continue;
                double h = c_fmin(D[3] + D[1], G[3] + G[1]) - c_fmax(D[1], G[1]);
                if (h <= 0) continue;
                double inter = w * h, uni = crowd[j] ? da : da + G[2] * G[3] - inter;
                *cell = inter / uni;
            }
        }
    }
}

/* numpy's minimum and maximum: NaN wins. */
static inline double np_min(double a, double b) { return a != a || b != b ? NAN : (a < b ? a : b); }
static inline double np_max(double a, double b) { return a != a || b != b ? NAN : (a > b ? a : b); }

void max_iou_inclusive(const double *boxes, const int64_t *starts, int64_t groups, double *out) {
    for (int64_t g = 0; g < groups; g++) {
        for (int64_t i = starts[g]; i < starts[g + 1]; i++) out[i] = 0.0;
        for (int64_t i = starts[g]; i < starts[g + 1]; i++) {
            const double *a = boxes + 4 * i;
            double area_a = (a[2] - a[0] + 1) * (a[3] - a[1] + 1);
            for (int64_t j = i + 1; j < starts[g + 1]; j++) {  /* IoU is symmetric to the bit */
                const double *b = boxes + 4 * j;
                double iw = np_min(a[2], b[2]) - np_max(a[0], b[0]) + 1;
                double ih = np_min(a[3], b[3]) - np_max(a[1], b[1]) + 1;
                iw = iw < 0 ? 0 : iw;
                ih = ih < 0 ? 0 : ih;
                double inter = iw * ih, area_b = (b[2] - b[0] + 1) * (b[3] - b[1] + 1);
                double uni = area_a + area_b - inter, iou = uni > 0 ? inter / uni : 0.0;
                out[i] = np_max(out[i], iou);
                out[j] = np_max(out[j], iou);
            }
        }
    }
}

/* numpy's sum of n doubles a[0], a[stride], ... (its pairwise_sum: in order below 8; 8 partial
 * sums combined pairwise up to 128; halves, cut at a multiple of 8, above) */
static double numpy_sum(const double *a, int64_t n, int64_t stride) {
    if (n < 8) {
        double sum = 0.0;
        for (int64_t i = 0; i < n; i++) sum += a[i * stride];
        return sum;
    }
    if (n <= 128) {
        double r[8];
        for (int j = 0; j < 8; j++) r[j] = a[j * stride];
        int64_t i = 8;
        for (; i < n - (n % 8); i += 8) for (int j = 0; j < 8; j++) r[j] += a[(i + j) * stride];
        double sum = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; i++) sum += a[i * stride];
        return sum;
    }
    int64_t half = n / 2;
    half -= half % 8;
    return numpy_sum(a, half, stride) + numpy_sum(a + half * stride, n - half, stride);
}

void keypoint_means_outside(const double *keypoints, int64_t K, const int64_t *image_index, const int64_t *sizes, int64_t n,
                            uint8_t *out) {
    for (int64_t i = 0; i < n; i++) {
        const double *row = keypoints + 3 * K * i;
        const int64_t *size = sizes + 2 * image_index[i];
        double x = numpy_sum(row, K, 3) / (double)K, y = numpy_sum(row + 1, K, 3) / (double)K;  /* NaN: never outside */
        out[i] = (uint8_t)((x < 0) | (y < 0) | (x > (double)size[1]) | (y > (double)size[0]));
    }
}

void box_centres_outside(const double *bbox, const int64_t *image_index, const int64_t *sizes, int64_t n, uint8_t *out) {
    for (int64_t i = 0; i < n; i++) {
        const double *b = bbox + 4 * i;
        const int64_t *size = sizes + 2 * image_index[i];
        double x = b[0] + b[2] / 2, y = b[1] + b[3] / 2;  /* as numpy computes them: NaN is never outside */
        out[i] = (uint8_t)((x < 0) | (y < 0) | (x > (double)size[1]) | (y > (double)size[0]));
    }
}
