/* COCOeval.evaluateImg's greedy matching, for many blocks, variants and thresholds at once. */
#include "evalcore.h"
#include <stdlib.h>
#include <string.h>

/* The others match nothing at any threshold >= lowest, in any variant, and take nothing from
 * the others. */
int64_t match_candidates(const double *iou, const Blocks *blocks, double lowest, int64_t *cand) {
    const int64_t *ds = blocks->dt_start, *gs = blocks->gt_start, *is = blocks->iou_start;
    int64_t n = 0;
    for (int64_t b = 0; b < blocks->n_blocks; b++) {
        int64_t ng = gs[b + 1] - gs[b], nd = ds[b + 1] - ds[b];
        const double *block = iou + is[b];
        for (int64_t d = 0; d < nd && ng; d++) {
            int reaches = 0;
            for (int64_t g = 0; g < ng; g++) reaches |= block[d * ng + g] >= lowest;
            if (reaches) cand[n++] = ds[b] + d;
        }
    }
    return n;
}

/* For each variant v (its states gt_state[v * G ..]), threshold t and block (detections sorted
 * by score, at most maxDets): a candidate takes the best available GT_COUNTED gt with IoU >=
 * min(t, 1 - 1e-10) (the last one on ties, as pycocotools' scan in gt order does); only if there
 * is none, the best GT_IGNORED one; GT_ABSENT ones never. A crowd gt stays available after a match. */
int match(const double *iou, const Blocks *blocks, const uint8_t *state, const uint8_t *crowd, int64_t G,
          const double *thr, int64_t T, const int64_t *cand, int64_t C, int64_t v_lo, int64_t v_hi, int32_t *res) {
    const int64_t *ds = blocks->dt_start, *gs = blocks->gt_start, *is = blocks->iou_start;
    const int64_t B = blocks->n_blocks;
    int64_t max_g = 0;
    for (int64_t b = 0; b < B; b++) if (gs[b + 1] - gs[b] > max_g) max_g = gs[b + 1] - gs[b];
    uint8_t *taken = malloc((size_t)(max_g ? max_g : 1));
    int64_t *cand_start = malloc(sizeof(int64_t) * (size_t)(B + 1));
    if (!taken || !cand_start) { free(taken); free(cand_start); return EC_NO_MEMORY; }
    for (int64_t k = v_lo * T * C; k < v_hi * T * C; k++) res[k] = -1;
    int64_t c_at = 0;  /* the candidates of block b: cand_start[b] .. cand_start[b + 1] - 1 */
    for (int64_t b = 0; b < B; b++) {
        while (c_at < C && cand[c_at] < ds[b]) c_at++;
        cand_start[b] = c_at;
    }
    cand_start[B] = C;
    static const uint8_t passes[2] = {GT_COUNTED, GT_IGNORED};
    for (int64_t v = v_lo; v < v_hi; v++) {
        const uint8_t *st = state + v * G;
        for (int64_t t = 0; t < T; t++) {
            double start_thr = thr[t] < 1 - 1e-10 ? thr[t] : 1 - 1e-10;
            int32_t *row = res + (v * T + t) * C;
            for (int64_t b = 0; b < B; b++) {
                int64_t g0 = gs[b], ng = gs[b + 1] - gs[b];
                if (cand_start[b + 1] == cand_start[b]) continue;
                const double *block = iou + is[b];
                memset(taken, 0, (size_t)ng);
                for (int64_t c = cand_start[b]; c < cand_start[b + 1]; c++) {
                    int64_t d = cand[c] - ds[b], m = -1;
                    for (int pass = 0; pass < 2 && m < 0; pass++) {
                        double best = start_thr;
                        for (int64_t g = 0; g < ng; g++) {
                            if (st[g0 + g] != passes[pass]) continue;
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
    free(taken); free(cand_start);
    return 0;
}
