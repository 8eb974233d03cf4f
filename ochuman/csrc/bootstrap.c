/* COCOeval.accumulate of bootstrap resamples: images drawn with replacement, each drawn k times
 * counting as k consecutive copies of itself (evalcore.h: weighted_accumulate). */
#include "evalcore.h"
#include <stdlib.h>

/* Per threshold: counts so far, the interpolated precision (maximum to the right) and the
 * recall threshold still to fill. */
typedef struct { int64_t tp, fp, r; double interp; } Walk;

/* One step of w copies of an item (fate f) of the backward walk: precision at the step's end
 * (it rises along a step of true positives, so the whole step reads its end's interpolated
 * precision); the recall thresholds whose first reaching position lies in the step get it. */
static inline void step_back(Walk *x, uint8_t f, int64_t w, const int64_t *need, double *P) {
    int64_t a = f & 1, b = f >> 1;
    double pr = (double)x->tp / ((double)x->fp + (double)x->tp + 2.220446049250313e-16);  /* np.spacing(1) */
    int event = a && w > 0;
    x->interp = event && pr > x->interp ? pr : x->interp;
    int64_t before = x->tp - w * a;
    if (event && x->r >= 0 && need[x->r] > before)
        while (x->r >= 0 && need[x->r] > before) P[x->r--] = x->interp;
    x->tp = before;
    x->fp -= w * b;
}

/* Per sample s and list l, per threshold: from the totals, the items backwards
 * (a one-item group as one step of weights[s, its image] detections, a group of tied items as
 * that many copies of the group), filling precision at the recall thresholds as pycocotools'
 * searchsorted(rc, recThrs, "left") does: threshold r takes the position where recall first
 * reaches it, tp >= need[r], the least count with tp / npig >= recThrs[r] in doubles. */
int weighted_accumulate(const WeightedInput *in, int64_t s_lo, int64_t s_hi, double *precision, double *recall) {
    const int64_t L = in->L, R = in->R, I = in->I, T = in->T;
    const uint8_t *fate = in->item_fate;
    const int32_t *img = in->item_img, *run = in->item_run;
    Walk *walk = malloc(sizeof(Walk) * (size_t)(T ? T : 1));
    int64_t *need = malloc(sizeof(int64_t) * (size_t)(R ? R : 1));
    if (!walk || !need) { free(walk); free(need); return EC_NO_MEMORY; }
    for (int64_t s = s_lo; s < s_hi; s++) {
        const int32_t *w_row = in->weights + s * I;
        for (int64_t l = 0; l < L; l++) {
            double *P = precision + (s * L + l) * T * R, *Rc = recall + (s * L + l) * T;
            int64_t npig = in->npig[s * L + l], first = in->list_start[l], end = in->list_start[l + 1];
            if (npig == 0) {
                for (int64_t k = 0; k < T * R; k++) P[k] = -1;
                for (int64_t t = 0; t < T; t++) Rc[t] = -1;
                continue;
            }
            for (int64_t r = 0; r < R; r++) {
                int64_t c = (int64_t)(in->rec_thrs[r] * (double)npig);  /* rec_thrs in 0..1 (checked) */
                while (c > 0 && (double)(c - 1) / (double)npig >= in->rec_thrs[r]) c--;
                while ((double)c / (double)npig < in->rec_thrs[r]) c++;
                need[r] = c;
            }
            const int64_t *total = in->totals + (s * L + l) * T * 2;
            for (int64_t t = 0; t < T; t++) walk[t] = (Walk){total[2 * t], total[2 * t + 1], R - 1, 0.0};
            for (int64_t t = 0; t < T; t++) {
                Rc[t] = (double)walk[t].tp / (double)npig;
                while (walk[t].r >= 0 && need[walk[t].r] > walk[t].tp) P[t * R + walk[t].r--] = 0;
            }
            for (int64_t q = end - 1; q >= first;) {
                int64_t w = w_row[img[q]];
                if (run[q] == 1) {
                    const uint8_t *f = fate + q * T;
                    for (int64_t t = 0; t < T; t++) step_back(&walk[t], f[t], w, need, P + t * R);
                    q--;
                    continue;
                }
                int64_t g = q;  /* tied items g..q of one image: its copies one after the other */
                while (run[g] == 0) g--;
                for (int64_t c = 0; c < w; c++)
                    for (int64_t i = q; i >= g; i--)
                        for (int64_t t = 0; t < T; t++) step_back(&walk[t], fate[i * T + t], 1, need, P + t * R);
                q = g - 1;
            }
            for (int64_t t = 0; t < T; t++)  /* recall 0: the first position, the maximum of all */
                while (walk[t].r >= 0) P[t * R + walk[t].r--] = walk[t].interp;
        }
    }
    free(walk); free(need);
    return 0;
}
