/* Stable argsorts by radix: least significant digit first, 11 bits a pass, only the passes over
 * digits in which the keys differ (small keys take one or two). */
#include "evalcore.h"
#include <stdlib.h>
#include <string.h>

#define DIGIT_BITS 11
#define BUCKETS (1 << DIGIT_BITS)
#define PASSES 6  /* 6 x 11 bits cover 64 */

/* out[0..n-1]: the positions of keys by key, ties in position order; keys are left sorted. */
static int radix_argsort(uint64_t *keys, int64_t n, int64_t *out) {
    uint64_t *other_keys = malloc(sizeof(uint64_t) * (size_t)(n ? n : 1));
    int64_t *other_pos = malloc(sizeof(int64_t) * (size_t)(n ? n : 1));
    int64_t *count = calloc((size_t)PASSES * BUCKETS, sizeof(int64_t));
    if (!other_keys || !other_pos || !count) { free(other_keys); free(other_pos); free(count); return EC_NO_MEMORY; }
    uint64_t varying = 0;  /* the bits in which some key differs from the first */
    for (int64_t i = 0; i < n; i++) varying |= keys[i] ^ keys[0];
    int active[PASSES], n_active = 0;
    for (int p = 0; p < PASSES; p++)
        if ((varying >> (p * DIGIT_BITS)) & (BUCKETS - 1)) active[n_active++] = p;
    for (int64_t i = 0; i < n; i++) {
        uint64_t key = keys[i];
        out[i] = i;
        for (int a = 0; a < n_active; a++) count[active[a] * BUCKETS + ((key >> (active[a] * DIGIT_BITS)) & (BUCKETS - 1))]++;
    }
    uint64_t *key_from = keys, *key_to = other_keys;
    int64_t *pos_from = out, *pos_to = other_pos;
    for (int a = 0; a < n_active; a++) {
        const int p = active[a];
        int64_t *offset = count + p * BUCKETS, sum = 0;
        for (int b = 0; b < BUCKETS; b++) { int64_t c = offset[b]; offset[b] = sum; sum += c; }
        const int shift = p * DIGIT_BITS;
        for (int64_t i = 0; i < n; i++) {
            int64_t at = offset[(key_from[i] >> shift) & (BUCKETS - 1)]++;
            key_to[at] = key_from[i];
            pos_to[at] = pos_from[i];
        }
        uint64_t *k = key_from; key_from = key_to; key_to = k;
        int64_t *q = pos_from; pos_from = pos_to; pos_to = q;
    }
    if (pos_from != out) memcpy(out, pos_from, sizeof(int64_t) * (size_t)n);
    if (key_from != keys) memcpy(keys, key_from, sizeof(uint64_t) * (size_t)n);
    free(other_keys); free(other_pos); free(count);
    return 0;
}

/* A score as an unsigned key whose order is numpy's order of -score: NaN last (the largest
 * key), -0.0 tied with 0.0; equal keys are exactly the scores numpy's sort ties. */
static inline uint64_t descending_key(double x) {
    if (x != x) return UINT64_MAX;
    if (x == 0) x = 0.0;
    uint64_t bits;
    memcpy(&bits, &x, sizeof bits);
    uint64_t ascending = bits >> 63 ? ~bits : bits | (1ull << 63);  /* the float order as unsigned */
    return ~ascending;
}

int argsort_descending(const double *values, int64_t n, int64_t *out) {
    uint64_t *keys = malloc(sizeof(uint64_t) * (size_t)(n ? n : 1));
    if (!keys) return EC_NO_MEMORY;
    for (int64_t i = 0; i < n; i++) keys[i] = descending_key(values[i]);
    int result = radix_argsort(keys, n, out);
    free(keys);
    return result;
}

static int compare_positions(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Positions ascending (a run of tied scores: mostly none or a few). */
static void sort_positions(int64_t *v, int64_t n) {
    if (n > 32) { qsort(v, (size_t)n, sizeof(int64_t), compare_positions); return; }
    for (int64_t i = 1; i < n; i++) {
        int64_t x = v[i], j = i;
        for (; j > 0 && v[j - 1] > x; j--) v[j] = v[j - 1];
        v[j] = x;
    }
}

int64_t block_order(const int64_t *block, const double *scores, int64_t n, int64_t max_det,
                    int64_t *order, int64_t *rank, int64_t *by_score) {
    int64_t m = 0;
    for (int64_t i = 0; i < n; i++) m += block[i] >= 0;
    size_t size = (size_t)(m ? m : 1);
    int64_t *listed = malloc(sizeof(int64_t) * size), *ranked = malloc(sizeof(int64_t) * size);
    int64_t *grouped = malloc(sizeof(int64_t) * size), *kept_at = malloc(sizeof(int64_t) * size);
    uint64_t *score_keys = malloc(sizeof(uint64_t) * size), *block_keys = malloc(sizeof(uint64_t) * size);
    int64_t kept = 0;
    int status = !listed || !ranked || !grouped || !kept_at || !score_keys || !block_keys ? EC_NO_MEMORY : 0;
    if (status == 0) {
        m = 0;
        for (int64_t i = 0; i < n; i++) if (block[i] >= 0) listed[m++] = i;  /* file order */
        for (int64_t j = 0; j < m; j++) score_keys[j] = descending_key(scores[listed[j]]);
        status = radix_argsort(score_keys, m, ranked);  /* by score, ties in file order; score_keys now sorted */
    }
    if (status == 0) {
        for (int64_t j = 0; j < m; j++) {  /* j-th by score: its detection (in ranked) and block */
            ranked[j] = listed[ranked[j]];
            block_keys[j] = (uint64_t)block[ranked[j]];
        }
        status = radix_argsort(block_keys, m, grouped);  /* then stably by block; block_keys now sorted */
    }
    if (status == 0) {
        /* grouped[k]: the k-th in block order as a place in score order; max_det a block kept */
        for (int64_t k = 0, first = 0; k < m; k++) {
            if (k && block_keys[k] != block_keys[k - 1]) first = k;
            int keep = k - first < max_det;
            kept_at[grouped[k]] = keep ? kept : -1;
            if (keep) { order[kept] = ranked[grouped[k]]; rank[kept] = k - first; kept++; }
        }
        /* the kept in score order, ties (equal keys) in block order: each run of ties sorted */
        int64_t q = 0, run_start = 0;  /* by_score[run_start..q): kept ones of one score */
        uint64_t run_key = 0;
        for (int64_t j = 0; j < m; j++) {
            if (kept_at[j] < 0) continue;
            if (q == 0 || score_keys[j] != run_key) {
                sort_positions(by_score + run_start, q - run_start);
                run_start = q;
                run_key = score_keys[j];
            }
            by_score[q++] = kept_at[j];
        }
        sort_positions(by_score + run_start, q - run_start);
    }
    free(listed); free(ranked); free(grouped); free(kept_at); free(score_keys); free(block_keys);
    return status ? status : kept;
}
