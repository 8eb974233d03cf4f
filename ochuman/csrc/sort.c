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

static int compare_pairs(const void *a, const void *b) {  /* (key, position) pairs, both ascending */
    const uint64_t *x = a, *y = b;
    return x[0] != y[0] ? (x[0] > y[0]) - (x[0] < y[0]) : (x[1] > y[1]) - (x[1] < y[1]);
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

/* v[0..n) sorted stably by their top 32 bits (the low 32 carry a payload), only the digits in
 * which some value differs; spare: n values of scratch. */
static void radix_sort_top(uint64_t *v, int64_t n, uint64_t *spare) {
    int64_t count[3][BUCKETS];
    memset(count, 0, sizeof count);
    uint64_t varying = 0;
    for (int64_t i = 0; i < n; i++) varying |= v[i] ^ v[0];
    for (int64_t i = 0; i < n; i++)
        for (int p = 0; p < 3; p++) count[p][(v[i] >> (32 + p * DIGIT_BITS)) & (BUCKETS - 1)]++;
    uint64_t *from = v, *to = spare;
    for (int p = 0; p < 3; p++) {
        const int shift = 32 + p * DIGIT_BITS;
        if (!((varying >> shift) & (BUCKETS - 1))) continue;
        int64_t *offset = count[p], sum = 0;
        for (int b = 0; b < BUCKETS; b++) { int64_t c = offset[b]; offset[b] = sum; sum += c; }
        for (int64_t i = 0; i < n; i++) to[offset[(from[i] >> shift) & (BUCKETS - 1)]++] = from[i];
        uint64_t *t = from; from = to; to = t;
    }
    if (from != v) memcpy(v, from, sizeof(uint64_t) * (size_t)n);
}

/* by_key[0..m): (key >> shift) << 32 | position, sorted by key >> shift, ties by position;
 * where shift cut off bits in which keys differ: each run of equal cut keys sorted by the whole
 * key (stably), then every value's top half made the dense rank of its whole key. full: m
 * values of scratch. */
static int exact_score_ranks(uint64_t *by_key, int64_t m, const double *scores, uint64_t *full) {
    const uint64_t low32 = 0xffffffffu;
    for (int64_t j = 0; j < m; j++) full[j] = descending_key(scores[by_key[j] & low32]);
    for (int64_t a = 0, b; a < m; a = b) {
        for (b = a + 1; b < m && by_key[b] >> 32 == by_key[a] >> 32; b++) {}
        if (b - a <= 32) {  /* insertion sort by whole key (positions ascend: stable) */
            for (int64_t i = a + 1; i < b; i++) {
                const uint64_t key = full[i], value = by_key[i];
                int64_t j = i;
                for (; j > a && full[j - 1] > key; j--) { full[j] = full[j - 1]; by_key[j] = by_key[j - 1]; }
                full[j] = key; by_key[j] = value;
            }
        } else {  /* a long run: (whole key, position) pairs sorted */
            uint64_t *pairs = malloc(sizeof(uint64_t) * 2 * (size_t)(b - a));
            if (!pairs) return EC_NO_MEMORY;
            for (int64_t i = a; i < b; i++) { pairs[2 * (i - a)] = full[i]; pairs[2 * (i - a) + 1] = by_key[i] & low32; }
            qsort(pairs, (size_t)(b - a), 2 * sizeof(uint64_t), compare_pairs);
            for (int64_t i = a; i < b; i++) { full[i] = pairs[2 * (i - a)]; by_key[i] = pairs[2 * (i - a) + 1]; }
            free(pairs);
        }
    }
    uint64_t dense = 0;
    for (int64_t j = 0; j < m; j++) {
        dense += j && full[j] != full[j - 1];
        by_key[j] = dense << 32 | (by_key[j] & low32);
    }
    return 0;
}

/* block_order for positions and blocks of 32 bits (every real case): each sort moves one 64-bit
 * word a detection, a key above its position; m: the listed (block >= 0), varying: the bits in
 * which their scores' keys differ. */
static int64_t block_order_packed(const int64_t *block, const double *scores, int64_t n, int64_t m,
                                  uint64_t varying, int64_t max_det,
                                  int64_t *order, int64_t *rank, int64_t *by_score) {
    const uint64_t low32 = 0xffffffffu;
    const int low = varying ? __builtin_ctzll(varying) : 0, high = varying ? 63 - __builtin_clzll(varying) : 0;
    const int shift = high - low < 32 ? low : high - 31;  /* the top 32 of the bits that differ */
    size_t size = (size_t)(m ? m : 1);
    uint64_t *by_key = malloc(sizeof(uint64_t) * size), *spare = malloc(sizeof(uint64_t) * size);
    uint64_t *grouped = malloc(sizeof(uint64_t) * size);
    int64_t *kept_at = malloc(sizeof(int64_t) * size), kept = 0;
    int status = !by_key || !spare || !grouped || !kept_at ? EC_NO_MEMORY : 0;
    if (status == 0) {
        for (int64_t i = 0, j = 0; i < n; i++)
            if (block[i] >= 0) by_key[j++] = ((descending_key(scores[i]) >> shift) & low32) << 32 | (uint64_t)i;
        radix_sort_top(by_key, m, spare);  /* by score, ties in file order */
        if (shift > low) status = exact_score_ranks(by_key, m, scores, spare);
    }
    if (status == 0) {
        for (int64_t j = 0; j < m; j++) grouped[j] = (uint64_t)block[by_key[j] & low32] << 32 | (uint64_t)j;
        radix_sort_top(grouped, m, spare);  /* then stably by block */
        for (int64_t k = 0, first = 0; k < m; k++) {  /* grouped[k]: the k-th in block order, its place in score order */
            if (k && grouped[k] >> 32 != grouped[k - 1] >> 32) first = k;
            const int64_t j = (int64_t)(grouped[k] & low32);
            if (k - first < max_det) {
                kept_at[j] = kept;
                order[kept] = (int64_t)(by_key[j] & low32);
                rank[kept] = k - first;
                kept++;
            } else {
                kept_at[j] = -1;
            }
        }
        /* the kept in score order, ties (equal keys) in block order: each run of ties sorted */
        int64_t q = 0, run_start = 0;  /* by_score[run_start..q): kept ones of one score */
        uint64_t run_key = 0;
        for (int64_t j = 0; j < m; j++) {
            if (kept_at[j] < 0) continue;
            if (q == 0 || by_key[j] >> 32 != run_key) {
                sort_positions(by_score + run_start, q - run_start);
                run_start = q;
                run_key = by_key[j] >> 32;
            }
            by_score[q++] = kept_at[j];
        }
        sort_positions(by_score + run_start, q - run_start);
    }
    free(by_key); free(spare); free(grouped); free(kept_at);
    return status ? status : kept;
}

int64_t block_order(const int64_t *block, const double *scores, int64_t n, int64_t max_det,
                    int64_t *order, int64_t *rank, int64_t *by_score) {
    int64_t m = 0, top_block = 0;
    uint64_t first_key = 0, varying = 0;  /* the bits in which some listed score's key differs */
    for (int64_t i = 0; i < n; i++) {
        if (block[i] < 0) continue;
        const uint64_t key = descending_key(scores[i]);
        if (!m) first_key = key;
        varying |= key ^ first_key;
        if (block[i] > top_block) top_block = block[i];
        m++;
    }
    if (n <= 0xffffffffll && top_block <= 0xffffffffll)
        return block_order_packed(block, scores, n, m, varying, max_det, order, rank, by_score);
    /* else a key and a position apart, each sort moving both */
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
