/* COCOeval.accumulate: precision, recall and scores of one variant from its matches. */
#include "evalcore.h"
#include <stdlib.h>

/* A detection's fate at one threshold. */
enum { DT_IGNORED = 0, DT_TP = 1, DT_FP = 2 };

/* Per area range a, category k and maxDets m: the variant's detections of the category by
 * score; a match to a GT_IGNORED gt, or no match when dt_out says so, is ignored; a match to a gt
 * whose id is 0 counts as none (pycocotools records matches by id). Cells with no GT_COUNTED gt
 * are left as the caller filled them (-1). */
int accumulate(const AccumulateInput *in, int64_t a_lo, int64_t a_hi, AccumulateOutput *out) {
    const int64_t A = in->A, T = in->T, C = in->C, G = in->G, D = in->D, R = in->R, M = in->M, K = in->K;
    const int32_t *mt = in->matches, *cand_of = in->candidate_of;
    const int64_t *gid = in->gt_ids, *gc = in->gt_cat, *ord = in->order;
    const int64_t *dc = in->dt_cat, *rank = in->dt_rank, *md = in->max_dets;
    const uint8_t *gst = in->gt_state, *gu = in->gt_used, *du = in->dt_used, *dout = in->dt_out;
    const double *ds = in->dt_scores, *rt = in->rec_thrs;
    double *P = out->precision, *Rc = out->recall, *S = out->scores;
    size_t n = (size_t)(D ? D : 1);
    int64_t *list = malloc(sizeof(int64_t) * n), *kept = malloc(sizeof(int64_t) * n);
    int32_t *list_cand = malloc(sizeof(int32_t) * n);
    uint8_t *status = malloc(n * (size_t)(T ? T : 1));
    int64_t *tp_pos = malloc(sizeof(int64_t) * n);
    double *tp_pr = malloc(sizeof(double) * n);
    /* The used detections in score order grouped by category (by_cat[cat_start[k] ..
     * cat_start[k + 1]]), and the counted ground truths per category of an area range: one pass
     * each instead of one per category. */
    int64_t *cat_start = calloc((size_t)K + 1, sizeof(int64_t)), *fill = malloc(sizeof(int64_t) * (size_t)(K ? K : 1));
    int64_t *by_cat = malloc(sizeof(int64_t) * n), *npig_of = malloc(sizeof(int64_t) * (size_t)(K ? K : 1));
    int failed = !list || !kept || !list_cand || !status || !tp_pos || !tp_pr || !cat_start || !fill || !by_cat || !npig_of;
    if (!failed) {
        for (int64_t q = 0; q < D; q++) {
            int64_t d = ord[q];
            if (du[d] && dc[d] >= 0 && dc[d] < K) cat_start[dc[d] + 1]++;
        }
        for (int64_t k = 0; k < K; k++) { cat_start[k + 1] += cat_start[k]; fill[k] = cat_start[k]; }
        for (int64_t q = 0; q < D; q++) {
            int64_t d = ord[q];
            if (du[d] && dc[d] >= 0 && dc[d] < K) by_cat[fill[dc[d]]++] = d;
        }
        for (int64_t a = a_lo < 0 ? 0 : a_lo; a < (a_hi < A ? a_hi : A); a++) {
            const uint8_t *st = gst + a * G, *out_a = dout + a * D;
            for (int64_t k = 0; k < K; k++) npig_of[k] = 0;
            for (int64_t g = 0; g < G; g++) if (gu[g] && gc[g] >= 0 && gc[g] < K && st[g] == GT_COUNTED) npig_of[gc[g]]++;
            for (int64_t k = 0; k < K; k++) {
                int64_t npig = npig_of[k];
                if (npig == 0) continue;
                /* This category's detections by score, and each one's fate per threshold. */
                int64_t nd_all = 0;
                for (int64_t q = cat_start[k]; q < cat_start[k + 1]; q++) {
                    int64_t d = by_cat[q];
                    list_cand[nd_all] = cand_of[d]; list[nd_all++] = d;
                }
                for (int64_t t = 0; t < T; t++) {
                    const int32_t *row = mt + (a * T + t) * C;
                    uint8_t *fate = status + t * nd_all;
                    for (int64_t q = 0; q < nd_all; q++) {
                        int64_t d = list[q], c = list_cand[q], g = c >= 0 ? row[c] : -1;
                        int matched = g >= 0 && gid[g] != 0;
                        int ignored = (g >= 0 && st[g] == GT_IGNORED) || (!matched && out_a[d]);
                        fate[q] = ignored ? DT_IGNORED : matched ? DT_TP : DT_FP;
                    }
                }
                for (int64_t mi = 0; mi < M; mi++) {
                    int64_t nd = 0;
                    for (int64_t q = 0; q < nd_all; q++) if (rank[list[q]] < md[mi]) kept[nd++] = q;
                    for (int64_t t = 0; t < T; t++) {
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
                        for (int64_t r = 0; r < R; r++) {
                            int64_t cell = (((t * R + r) * K + k) * A + a) * M + mi;
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
    }
    free(list); free(kept); free(list_cand); free(status); free(tp_pos); free(tp_pr);
    free(cat_start); free(fill); free(by_cat); free(npig_of);
    return failed ? EC_NO_MEMORY : 0;
}
