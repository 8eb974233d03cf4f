/* COCOeval.accumulate: precision, recall and scores of one variant from its matches. */
#include "evalcore.h"
#include <stdlib.h>
#include <string.h>

/* A ground truth as a match sees it, per area range: a match to it counts (its id is not 0:
 * pycocotools records matches by id), it is ignored. */
enum { GT_FLAG_MATCHES = 1, GT_FLAG_IGNORED = 2 };

/* Per category k in k_lo..k_hi-1, area range a in a_lo..a_hi-1 and maxDets m: the variant's
 * detections of the category by score; a match to a GT_IGNORED gt, or no match when dt_out says
 * so, is ignored; a match to a gt whose id is 0 counts as none. Cells without a GT_COUNTED gt are -1.
 *
 * A category's detections are bit positions: per threshold a word set of true positives and one
 * of false positives (only candidates, the detections that reach some gt, are looked up in the
 * matches), per maxDets one of the detections kept; precision is computed at each true positive
 * only (recall moves only there; the interpolated precision, a maximum to the right, is attained
 * there), its false positives before it counted by popcount. A category's cells go into a small
 * buffer [T][R][areas][M] copied out row by row (the output's layout is k-major). */
int accumulate(const AccumulateInput *in, int64_t k_lo, int64_t k_hi, int64_t a_lo, int64_t a_hi, AccumulateOutput *out) {
    const int64_t A = in->A, T = in->T, C = in->C, G = in->G, D = in->D, R = in->R, M = in->M, K = in->K;
    const int32_t *mt = in->matches, *cand_of = in->candidate_of;
    const int64_t *gid = in->gt_ids, *gc = in->gt_cat, *ord = in->order;
    const int64_t *dc = in->dt_cat, *rank = in->dt_rank, *md = in->max_dets;
    const uint8_t *gst = in->gt_state, *gu = in->gt_used, *du = in->dt_used, *dout = in->dt_out;
    const double *ds = in->dt_scores, *rt = in->rec_thrs;
    double *P = out->precision, *Rc = out->recall, *S = out->scores;
    if (k_lo < 0) k_lo = 0;
    if (k_hi > K) k_hi = K;
    if (a_lo < 0) a_lo = 0;
    if (a_hi > A) a_hi = A;
    if (k_lo >= k_hi || a_lo >= a_hi) return 0;
    const int64_t AW = a_hi - a_lo, row = AW * M;  /* areas computed; doubles per (t, r) row of a category */
    const int64_t KW = k_hi - k_lo, words_max = D / 64 + 1, buffer_cells = T * R * row;
    size_t n = (size_t)(D ? D : 1), cells = (size_t)(buffer_cells ? buffer_cells : 1);
    int64_t *list = malloc(sizeof(int64_t) * n), *tp_at = malloc(sizeof(int64_t) * n), *cand_at = malloc(sizeof(int64_t) * n);
    int32_t *list_cand = malloc(sizeof(int32_t) * n);
    uint64_t *tp_bits = malloc(sizeof(uint64_t) * (size_t)(words_max * (T ? T : 1)));
    uint64_t *fp_bits = malloc(sizeof(uint64_t) * (size_t)(words_max * (T ? T : 1)));
    uint64_t *kept_bits = malloc(sizeof(uint64_t) * (size_t)(words_max * (M ? M : 1)));
    int64_t *kept_count = malloc(sizeof(int64_t) * (size_t)(M ? M : 1)), *kept_first = malloc(sizeof(int64_t) * (size_t)(M ? M : 1));
    double *tp_pr = malloc(sizeof(double) * n);
    uint64_t *out_bits = malloc(sizeof(uint64_t) * (size_t)words_max);
    uint8_t *gt_flags = malloc((size_t)(G ? G : 1) * (size_t)AW);
    double *p_buf = malloc(sizeof(double) * cells), *s_buf = malloc(sizeof(double) * cells);
    /* The used detections of categories k_lo..k_hi-1 in score order grouped by category
     * (by_cat[cat_start[k - k_lo] .. cat_start[k - k_lo + 1]]), and the counted ground truths per
     * category and area range: one pass each instead of one per category. */
    int64_t *cat_start = calloc((size_t)KW + 1, sizeof(int64_t)), *fill = malloc(sizeof(int64_t) * (size_t)KW);
    int64_t *by_cat = malloc(sizeof(int64_t) * n), *npig_of = calloc((size_t)(KW * AW), sizeof(int64_t));
    int failed = !list || !tp_at || !cand_at || !list_cand || !tp_bits || !fp_bits || !kept_bits || !kept_count || !kept_first
                 || !tp_pr || !out_bits || !gt_flags || !p_buf || !s_buf || !cat_start || !fill || !by_cat || !npig_of;
    if (!failed) {
        for (int64_t q = 0; q < D; q++) {
            int64_t d = ord[q];
            if (du[d] && dc[d] >= k_lo && dc[d] < k_hi) cat_start[dc[d] - k_lo + 1]++;
        }
        for (int64_t k = 0; k < KW; k++) { cat_start[k + 1] += cat_start[k]; fill[k] = cat_start[k]; }
        for (int64_t q = 0; q < D; q++) {
            int64_t d = ord[q];
            if (du[d] && dc[d] >= k_lo && dc[d] < k_hi) by_cat[fill[dc[d] - k_lo]++] = d;
        }
        for (int64_t g = 0; g < G; g++)
            if (gu[g] && gc[g] >= k_lo && gc[g] < k_hi)
                for (int64_t a = a_lo; a < a_hi; a++) npig_of[(gc[g] - k_lo) * AW + a - a_lo] += gst[a * G + g] == GT_COUNTED;
        for (int64_t a = a_lo; a < a_hi; a++)
            for (int64_t g = 0; g < G; g++)
                gt_flags[(a - a_lo) * G + g] = (uint8_t)((gid[g] != 0 ? GT_FLAG_MATCHES : 0) | (gst[a * G + g] == GT_IGNORED ? GT_FLAG_IGNORED : 0));
        for (int64_t k = k_lo; k < k_hi; k++) {
            /* This category's detections by score, and those kept per maxDets (bits). */
            int64_t nd_all = 0, n_cand = 0;
            for (int64_t q = cat_start[k - k_lo]; q < cat_start[k - k_lo + 1]; q++) {
                int64_t d = by_cat[q];
                if (cand_of[d] >= 0) cand_at[n_cand++] = nd_all;
                list_cand[nd_all] = cand_of[d]; list[nd_all++] = d;
            }
            const int64_t W = (nd_all + 63) / 64;
            for (int64_t mi = 0; mi < M; mi++) {
                uint64_t *kept = kept_bits + mi * W;
                memset(kept, 0, sizeof(uint64_t) * (size_t)W);
                kept_count[mi] = 0; kept_first[mi] = -1;
                for (int64_t q = 0; q < nd_all; q++)
                    if (rank[list[q]] < md[mi]) {
                        kept[q >> 6] |= 1ull << (q & 63);
                        if (kept_count[mi]++ == 0) kept_first[mi] = q;
                    }
            }
            for (int64_t a = a_lo; a < a_hi; a++) {
                const int64_t npig = npig_of[(k - k_lo) * AW + a - a_lo], col = (a - a_lo) * M;
                if (npig == 0) {
                    for (int64_t t = 0; t < T; t++) {
                        for (int64_t mi = 0; mi < M; mi++) Rc[((t * K + k) * A + a) * M + mi] = -1;
                        for (int64_t r = 0; r < R; r++)
                            for (int64_t mi = 0; mi < M; mi++) p_buf[(t * R + r) * row + col + mi] = s_buf[(t * R + r) * row + col + mi] = -1;
                    }
                    continue;
                }
                /* Each detection's fate per threshold: true positive, false positive or neither
                 * (ignored: matched to an ignored gt, or unmatched and out of this range). */
                const uint8_t *flags = gt_flags + (a - a_lo) * G, *out_a = dout + a * D;
                for (int64_t w = 0; w < W; w++) {
                    uint64_t outs = 0;
                    int64_t q_end = (w + 1) * 64 < nd_all ? (w + 1) * 64 : nd_all;
                    for (int64_t q = w * 64; q < q_end; q++) outs |= (uint64_t)(out_a[list[q]] != 0) << (q & 63);
                    out_bits[w] = outs;
                }
                for (int64_t t = 0; t < T; t++) {  /* only candidates can match: the others' bits stay 0 */
                    const int32_t *matched_gt = mt + (a * T + t) * C;
                    uint64_t *tp_w = tp_bits + t * W, *fp_w = fp_bits + t * W;
                    memset(tp_w, 0, sizeof(uint64_t) * (size_t)W);  /* matched, for now */
                    memset(fp_w, 0, sizeof(uint64_t) * (size_t)W);  /* matched to an ignored gt, for now */
                    for (int64_t i = 0; i < n_cand; i++) {
                        int64_t q = cand_at[i], g = matched_gt[list_cand[q]];
                        uint64_t f = g >= 0 ? flags[g] : 0;
                        tp_w[q >> 6] |= (f & GT_FLAG_MATCHES) << (q & 63);
                        fp_w[q >> 6] |= ((f & GT_FLAG_IGNORED) >> 1) << (q & 63);
                    }
                    for (int64_t w = 0; w < W; w++) {
                        int64_t in_word = nd_all - w * 64;
                        uint64_t valid = in_word >= 64 ? ~0ull : (1ull << in_word) - 1;
                        uint64_t matched = tp_w[w], ignored = fp_w[w] | (~matched & out_bits[w]);
                        tp_w[w] = matched & ~ignored;
                        fp_w[w] = valid & ~matched & ~ignored;
                    }
                }
                for (int64_t mi = 0; mi < M; mi++) {
                    const uint64_t *kept = kept_bits + mi * W;
                    const int64_t nd = kept_count[mi];
                    for (int64_t t = 0; t < T; t++) {
                        const uint64_t *tp_w = tp_bits + t * W, *fp_w = fp_bits + t * W;
                        int64_t ntp = 0, fp = 0;
                        for (int64_t w = 0; w < W; w++) {
                            uint64_t tps = tp_w[w] & kept[w], fps = fp_w[w] & kept[w];
                            while (tps) {
                                int b = __builtin_ctzll(tps);
                                int64_t fp_before = fp + __builtin_popcountll(fps & ((1ull << b) - 1));
                                tp_at[ntp] = w * 64 + b;
                                /* as numpy: tp / (fp + tp + np.spacing(1)), counts exact in doubles */
                                tp_pr[ntp] = (double)(ntp + 1) / ((double)fp_before + (double)(ntp + 1) + 2.220446049250313e-16);
                                ntp++;
                                tps &= tps - 1;
                            }
                            fp += __builtin_popcountll(fps);
                        }
                        Rc[((t * K + k) * A + a) * M + mi] = nd ? (double)ntp / (double)npig : 0;
                        for (int64_t j = ntp - 1; j > 0; j--) if (tp_pr[j] > tp_pr[j - 1]) tp_pr[j - 1] = tp_pr[j];
                        /* recall at the first kept detection: 1 / npig if it is a true positive */
                        double first_recall = (ntp && tp_at[0] == kept_first[mi] ? 1.0 : 0.0) / (double)npig;
                        int64_t j = 0;
                        double *p_row = p_buf + t * R * row + col + mi, *s_row = s_buf + t * R * row + col + mi;
                        for (int64_t r = 0; r < R; r++) {
                            double precision_r = 0, score_r = 0;
                            if (nd && first_recall >= rt[r]) {  /* searchsorted lands on the first */
                                precision_r = ntp ? tp_pr[0] : 0;
                                score_r = ds[list[kept_first[mi]]];
                            } else {
                                while (j < ntp && (double)(j + 1) / (double)npig < rt[r]) j++;
                                if (j < ntp) { precision_r = tp_pr[j]; score_r = ds[list[tp_at[j]]]; }
                            }
                            p_row[r * row] = precision_r;
                            s_row[r * row] = score_r;
                        }
                    }
                }
            }
            for (int64_t tr = 0; tr < T * R; tr++) {  /* rows (t, r) of this category: areas a_lo..a_hi-1 x M */
                size_t at = (size_t)((tr * K + k) * A + a_lo) * (size_t)M;
                memcpy(P + at, p_buf + tr * row, sizeof(double) * (size_t)row);
                memcpy(S + at, s_buf + tr * row, sizeof(double) * (size_t)row);
            }
        }
    }
    free(list); free(tp_at); free(cand_at); free(list_cand); free(tp_bits); free(fp_bits); free(kept_bits); free(kept_count);
    free(kept_first); free(tp_pr); free(out_bits); free(gt_flags); free(p_buf); free(s_buf); free(cat_start); free(fill); free(by_cat); free(npig_of);
    return failed ? EC_NO_MEMORY : 0;
}
