/* COCO object keypoint similarity (pycocotools computeOks), its operations in its order; the
 * exponential between the two kernels is numpy's (the caller's), as pycocotools'. */
#include "evalcore.h"
#include <stdlib.h>
#include <string.h>

/* np.max((0, a), axis=0) of one number: a when it is positive or NaN (numpy's maximum keeps a
 * NaN), else 0. */
static inline double max_with_zero(double a) { return (a > 0 || a != a) ? a : 0.0; }

/* e = (dx^2 + dy^2) / variances / (area + eps) / 2, where dx, dy are keypoint offsets, or the
 * distances outside the gt box enlarged 2x when the gt labels no keypoint; out[p * K + k] = -e. */
void oks_exponents(const double *dk, const double *gk, const double *gb, const double *ga, const double *v, int64_t K,
                   const int64_t *d, const int64_t *g, int64_t P, double *o) {
    const double eps = 2.220446049250313e-16;  /* np.spacing(1) */
    for (int64_t p = 0; p < P; p++) {
        const double *kd = dk + 3 * K * d[p], *kg = gk + 3 * K * g[p], *bb = gb + 4 * g[p];
        int labelled = 0;
        for (int64_t k = 0; k < K; k++) labelled |= kg[3 * k + 2] > 0;
        double x0 = bb[0] - bb[2], x1 = bb[0] + bb[2] * 2, y0 = bb[1] - bb[3], y1 = bb[1] + bb[3] * 2;
        double area = ga[g[p]] + eps;
        for (int64_t k = 0; k < K; k++) {
            double xd = kd[3 * k], yd = kd[3 * k + 1], dx, dy;
            if (labelled) { dx = xd - kg[3 * k]; dy = yd - kg[3 * k + 1]; }
            else {
                double a = x0 - xd, b = xd - x1, c = y0 - yd, e = yd - y1;
                dx = max_with_zero(a) + max_with_zero(b);
                dy = max_with_zero(c) + max_with_zero(e);
            }
            o[p * K + k] = -((dx * dx + dy * dy) / v[k] / area / 2);
        }
    }
}

/* np.sum(np.exp(-e)[selected]) / n per pair, terms = exp(-e): the gt's labelled keypoints (all K
 * when it labels none), summed as numpy sums a short 1-D array (n < 8: in order from 0; else 8
 * partial sums, combined pairwise, then the remainder in order). */
int oks_means(const double *t, const double *gk, const int64_t *g, int64_t P, int64_t K, double *o) {
    double *chosen = malloc(sizeof(double) * (size_t)(K ? K : 1));
    if (!chosen) return EC_NO_MEMORY;
    for (int64_t p = 0; p < P; p++) {
        const double *kg = gk + 3 * K * g[p], *row = t + p * K;
        int64_t n = 0;
        for (int64_t k = 0; k < K; k++) if (kg[3 * k + 2] > 0) chosen[n++] = row[k];
        if (n == 0) { memcpy(chosen, row, sizeof(double) * (size_t)K); n = K; }
        double sum;
        if (n < 8) {
            sum = 0.0;
            for (int64_t i = 0; i < n; i++) sum += chosen[i];
        } else {  /* numpy's pairwise_sum for 8 <= n <= 128 */
            double r[8];
            for (int j = 0; j < 8; j++) r[j] = chosen[j];
            int64_t i = 8;
            for (; i < n - (n % 8); i += 8) for (int j = 0; j < 8; j++) r[j] += chosen[i + j];
            sum = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
            for (; i < n; i++) sum += chosen[i];
        }
        o[p] = sum / (double)n;
    }
    free(chosen);
    return 0;
}
