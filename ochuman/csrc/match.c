/* COCOeval.evaluateImg's greedy matching, for many blocks, variants and thresholds at once. */
#include "evalcore.h"
#include <stdlib.h>
#include <string.h>

/* The others match nothing at any threshold >= lowest, in any variant, and take nothing from
 * the others. A NaN IoU reaches every threshold (pycocotools' `iou < threshold` is false). */
int64_t match_candidates(const double *iou, const Blocks *blocks, double lowest, int64_t *cand) {
    const int64_t *ds = blocks->dt_start, *gs = blocks->gt_start, *is = blocks->iou_start;
    int64_t n = 0;
    for (int64_t b = 0; b < blocks->n_blocks; b++) {
        int64_t ng = gs[b + 1] - gs[b], nd = ds[b + 1] - ds[b];
        const double *block = iou + is[b];
        for (int64_t d = 0; d < nd && ng; d++) {
            int reaches = 0;
            for (int64_t g = 0; g < ng; g++) reaches |= !(block[d * ng + g] < lowest);
            if (reaches) cand[n++] = ds[b] + d;
        }
    }
    return n;
}

/* For each variant v (its states gt_state[v * G ..]), threshold t and block (detections sorted
 * by score, at most maxDets): a candidate takes the best available GT_COUNTED gt with IoU >=
 * min(t, 1 - 1e-10) (the last one on ties, as pycocotools' scan in gt order does); only if there
 * is none, the best GT_IGNORED one; GT_ABSENT ones never. A crowd gt stays available after a match.
 *
 * Each candidate's gts with IoU >= the lowest threshold are listed once, by IoU descending and,
 * on ties, index descending: at every (variant, threshold) the first available one of a state is
 * the one the scan in gt order would keep. A candidate with a NaN IoU is scanned in gt order as
 * pycocotools does (`iou < best` is false for NaN: from there on every available gt replaces the
 * match). */
int match(const double *iou, const Blocks *blocks, const uint8_t *state, const uint8_t *crowd, int64_t G,
          const double *thr, int64_t T, const int64_t *cand, int64_t C, int64_t v_lo, int64_t v_hi, int32_t *res) {
    const int64_t *ds = blocks->dt_start, *gs = blocks->gt_start, *is = blocks->iou_start;
    const int64_t B = blocks->n_blocks;
    double lowest = 1 - 1e-10;
    for (int64_t t = 0; t < T; t++) if (thr[t] < lowest) lowest = thr[t];
    int64_t *cand_block = malloc(sizeof(int64_t) * (size_t)(C ? C : 1)), *reach_start = malloc(sizeof(int64_t) * (size_t)(C + 1));
    int64_t *used_blocks = malloc(sizeof(int64_t) * (size_t)(C ? C : 1)), *cand_start = malloc(sizeof(int64_t) * (size_t)(C + 1));
    int32_t *taken = malloc(sizeof(int32_t) * (size_t)(G ? G : 1));
    uint8_t *scanned = calloc((size_t)(C ? C : 1), 1);
    int64_t *reach_g = NULL;
    double *reach_iou = NULL;
    int failed = !cand_block || !reach_start || !used_blocks || !cand_start || !taken || !scanned;
    /* The blocks that have candidates (used_blocks[0 .. U-1], their candidates cand_start[u] ..
     * cand_start[u + 1] - 1), and each candidate's reachable gts (reach_*[reach_start[c] ..]). */
    int64_t U = 0, n_reach = 0;
    if (!failed) {
        int64_t c = 0;
        for (int64_t b = 0; b < B && c < C; b++) {
            if (cand[c] >= ds[b + 1]) continue;
            used_blocks[U] = b; cand_start[U++] = c;
            while (c < C && cand[c] < ds[b + 1]) {
                int64_t ng = gs[b + 1] - gs[b];
                const double *values = iou + is[b] + (cand[c] - ds[b]) * ng;
                for (int64_t g = 0; g < ng; g++) n_reach += values[g] >= lowest;
                cand_block[c++] = b;
            }
        }
        cand_start[U] = C;
        reach_g = malloc(sizeof(int64_t) * (size_t)(n_reach ? n_reach : 1));
        reach_iou = malloc(sizeof(double) * (size_t)(n_reach ? n_reach : 1));
        failed = !reach_g || !reach_iou;
    }
    if (!failed) {
        int64_t at = 0;
        for (int64_t c = 0; c < C; c++) {
            int64_t b = cand_block[c], ng = gs[b + 1] - gs[b];
            const double *values = iou + is[b] + (cand[c] - ds[b]) * ng;
            reach_start[c] = at;
            for (int64_t g = 0; g < ng; g++) {
                double value = values[g];
                if (value != value) { at = reach_start[c]; scanned[c] = 1; break; }  /* its own scan instead */
                if (!(value >= lowest)) continue;
                int64_t i = at++;  /* insertion: IoU descending, later gt first on ties */
                while (i > reach_start[c] && reach_iou[i - 1] <= value) {
                    reach_iou[i] = reach_iou[i - 1]; reach_g[i] = reach_g[i - 1]; i--;
                }
                reach_iou[i] = value; reach_g[i] = gs[b] + g;
            }
        }
        reach_start[C] = at;
        for (int64_t k = v_lo * T * C; k < v_hi * T * C; k++) res[k] = -1;
        for (int64_t g = 0; g < G; g++) taken[g] = -1;
        int32_t stamp = 0;  /* taken[g] == stamp: taken in this (variant, threshold, block) */
        for (int64_t v = v_lo; v < v_hi; v++) {
            const uint8_t *st = state + v * G;
            for (int64_t t = 0; t < T; t++) {
                double start_thr = thr[t] < 1 - 1e-10 ? thr[t] : 1 - 1e-10;
                int32_t *row = res + (v * T + t) * C;
                for (int64_t u = 0; u < U; u++, stamp++) {
                    if (stamp == INT32_MAX) { for (int64_t g = 0; g < G; g++) taken[g] = -1; stamp = 0; }
                    for (int64_t c = cand_start[u]; c < cand_start[u + 1]; c++) {
                        int64_t m = -1;
                        if (scanned[c]) {  /* a NaN IoU: pycocotools' scan, literally */
                            int64_t b = used_blocks[u], g0 = gs[b], ng = gs[b + 1] - g0;
                            const double *values = iou + is[b] + (cand[c] - ds[b]) * ng;
                            for (int pass = 0; pass < 2 && m < 0; pass++) {
                                uint8_t wanted = pass ? GT_IGNORED : GT_COUNTED;
                                double best = start_thr;
                                for (int64_t g = g0; g < g0 + ng; g++) {
                                    if (st[g] != wanted || (taken[g] == stamp && !crowd[g])) continue;
                                    if (values[g - g0] < best) continue;
                                    best = values[g - g0]; m = g;
                                }
                            }
                        } else for (int pass = 0; pass < 2 && m < 0; pass++) {
                            uint8_t wanted = pass ? GT_IGNORED : GT_COUNTED;
                            for (int64_t i = reach_start[c]; i < reach_start[c + 1]; i++) {
                                if (reach_iou[i] < start_thr) break;
                                int64_t g = reach_g[i];
                                if (st[g] != wanted || (taken[g] == stamp && !crowd[g])) continue;
                                m = g;
                                break;
                            }
                        }
                        if (m < 0) continue;
                        taken[m] = stamp;
                        row[c] = (int32_t)m;
                    }
                }
            }
        }
    }
    free(cand_block); free(reach_start); free(used_blocks); free(cand_start); free(taken); free(scanned); free(reach_g); free(reach_iou);
    return failed ? EC_NO_MEMORY : 0;
}
