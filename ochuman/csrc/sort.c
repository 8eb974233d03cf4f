/* Stable argsorts by radix: least significant digit first, 11 bits a pass, only the passes over
 * digits in which the keys differ (small keys take one or two). */
#include "evalcore.h"
#include <stdlib.h>
#include <string.h>

#define DIGIT_BITS 11
#define BUCKETS (1 << DIGIT_BITS)
#define PASSES 6  /* 6 x 11 bits cover 64 */

/* out[0..n-1]: the positions of keys by key, ties in position order; keys is scratch (its
 * contents are lost). */
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
    free(other_keys); free(other_pos); free(count);
    return 0;
}

int argsort_keys(const int64_t *keys, int64_t n, int64_t *out) {
    uint64_t *scratch = malloc(sizeof(uint64_t) * (size_t)(n ? n : 1));
    if (!scratch) return EC_NO_MEMORY;
    for (int64_t i = 0; i < n; i++) scratch[i] = (uint64_t)keys[i];
    int result = radix_argsort(scratch, n, out);
    free(scratch);
    return result;
}

int argsort_descending(const double *values, int64_t n, int64_t *out) {
    uint64_t *keys = malloc(sizeof(uint64_t) * (size_t)(n ? n : 1));
    if (!keys) return EC_NO_MEMORY;
    for (int64_t i = 0; i < n; i++) {
        double x = values[i];
        if (x != x) { keys[i] = UINT64_MAX; continue; }  /* NaN: last, as numpy sorts it */
        if (x == 0) x = 0.0;  /* -0.0 ties with 0.0 */
        uint64_t bits;
        memcpy(&bits, &x, sizeof bits);
        uint64_t ascending = bits >> 63 ? ~bits : bits | (1ull << 63);  /* the float order as unsigned */
        keys[i] = ~ascending;
    }
    int result = radix_argsort(keys, n, out);
    free(keys);
    return result;
}
