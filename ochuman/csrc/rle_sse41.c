/* The fast RLE decoder for x86 with SSE4.1 and POPCNT (chosen at run time by rle_init): decode_runs'
 * results, about twice as fast. The string is copied clean (rle_clean_copy's rule, 16 characters
 * at a time), its values of 1-3 characters are read 8 characters at a time by byte shuffles
 * chosen by the pattern of value ends, and the runs, their positions and the 1-runs come from
 * 4-lane prefix sums. Whatever falls outside (a value of 13+ characters, an empty 1-run, a mask
 * of 2^31 pixels) goes back to the scalar decoder. Only functions with the target attribute use
 * the instructions, so the file builds with the project's ordinary flags. */
#include "rle_decode.h"
#ifdef RLE_SSE41
#include <immintrin.h>
#include <string.h>

int rle_sse41_ready;  /* the CPU has SSE4.1 and POPCNT */

/* Per pattern of value ends in 8 characters (bit i: character i ends a value): where each
 * value's characters 1-2 (first) and 3 (third) are, as shuffles into 16-bit lanes; the number of
 * values of at most 3 characters before any longer one, and the characters they take. */
static uint8_t first_shuffle[256][16] __attribute__((aligned(16)));
static uint8_t third_shuffle[256][16] __attribute__((aligned(16)));
static uint8_t nv_table[256], used_table[256];
static void init_tables(void) {
    for (int mask = 0; mask < 256; mask++) {
        int j = 0, start = 0;
        memset(first_shuffle[mask], 0x80, 16);
        memset(third_shuffle[mask], 0x80, 16);
        for (int i = 0; i < 8; i++) {
            if (!(mask >> i & 1)) continue;
            int n = i - start + 1;
            if (n > 3) break;  /* a value of 4+ characters: the scalar decoder takes it */
            first_shuffle[mask][2 * j] = (uint8_t)start;
            if (n > 1) first_shuffle[mask][2 * j + 1] = (uint8_t)(start + 1);
            if (n > 2) third_shuffle[mask][2 * j] = (uint8_t)(start + 2);
            j++; start = i + 1;
        }
        nv_table[mask] = (uint8_t)j; used_table[mask] = (uint8_t)start;
    }
}

/* Byte shuffles that keep the bytes of 8 whose bit is clear in the mask, packed to the front. */
static uint8_t pack_shuffle[256][16] __attribute__((aligned(16)));
static void init_pack(void) {
    for (int mask = 0; mask < 256; mask++) {
        int j = 0;
        memset(pack_shuffle[mask], 0x80, 16);
        for (int i = 0; i < 8; i++) if (!(mask >> i & 1)) pack_shuffle[mask][j++] = (uint8_t)i;
    }
}

/* rle_clean_copy of a raw string: the same rule, 16 characters at a time. */
__attribute__((target("sse4.1,popcnt")))
int64_t rle_clean_copy_sse41(const unsigned char *s, int64_t len, unsigned char *dst) {
    int64_t p = 0, q = 0;
    const __m128i below = _mm_set1_epi8(48), above = _mm_set1_epi8(111), bsl = _mm_set1_epi8('\\');
    __m128i outside = _mm_setzero_si128();
    unsigned pending = 0;  /* the last chunk ended with a backslash that its pair's second one follows */
    for (; p + 16 <= len; p += 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(s + p));
        /* bytes >= 128 compare as negative: below '0' */
        outside = _mm_or_si128(outside, _mm_or_si128(_mm_cmpgt_epi8(below, x), _mm_cmpgt_epi8(x, above)));
        unsigned b = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(x, bsl));
        if (!(b | pending)) { _mm_storeu_si128((__m128i *)(dst + q), x); q += 16; continue; }
        unsigned drop = 0;  /* the first backslash of each pair */
        if (pending) { if (!(b & 1)) return -1; b &= ~1u; pending = 0; }
        while (b) {
            unsigned at = (unsigned)__builtin_ctz(b);
            drop |= 1u << at;
            if (at == 15) { pending = 1; break; }
            if (!(b >> (at + 1) & 1)) return -1;
            b &= ~(3u << at);
        }
        __m128i half = _mm_shuffle_epi8(x, _mm_load_si128((const __m128i *)pack_shuffle[drop & 0xff]));
        _mm_storeu_si128((__m128i *)(dst + q), half);
        q += 8 - __builtin_popcount(drop & 0xff);
        half = _mm_shuffle_epi8(_mm_srli_si128(x, 8), _mm_load_si128((const __m128i *)pack_shuffle[drop >> 8]));
        _mm_storeu_si128((__m128i *)(dst + q), half);
        q += 8 - __builtin_popcount(drop >> 8);
    }
    if (!_mm_testz_si128(outside, outside)) return -1;
    for (; p < len; p++) {
        unsigned char ch = s[p];
        if (ch < '0' || ch > 'o') return -1;
        if (ch == '\\') { if (pending) { dst[q++] = ch; pending = 0; } else pending = 1; }
        else { if (pending) return -1; dst[q++] = ch; }
    }
    if (pending) return -1;
    memset(dst + q, 0, 64);
    return q;
}

/* Values of a clean string s[0..len) (64 readable bytes after it) into vals (room for
 * len + 8): their number, -1 when it ends inside a value, -2 for a value of 13+ characters.
 * Values of 1 to 3 characters go 8 characters at a time (a shuffle per pattern of value ends);
 * the critical path is the next window's offset, found from a 64-character mask of value ends. */
__attribute__((target("sse4.1,popcnt")))  /* only the features checked at import (no lzcnt) */
int64_t rle_values_sse41(const unsigned char *s, int64_t len, int32_t *vals) {
    int64_t p = 0, m = 0;
    const __m128i c48 = _mm_set1_epi8(48), m1f = _mm_set1_epi16(0x1f), m10 = _mm_set1_epi16(0x10),
                  m200 = _mm_set1_epi16(0x200), m20 = _mm_set1_epi16(0x20),
                  m2000 = _mm_set1_epi16(0x2000), m4000 = _mm_set1_epi16(0x4000);
    while (p < len) {
        /* continuation flags of the next 64 characters (bit 5 of each code, moved to bit 7) */
        uint64_t cont = 0;
        for (int q = 0; q < 4; q++) {
            __m128i codes = _mm_sub_epi8(_mm_loadu_si128((const __m128i *)(s + p + 16 * q)), c48);
            cont |= (uint64_t)(uint16_t)_mm_movemask_epi8(_mm_slli_epi16(codes, 2)) << (16 * q);
        }
        uint64_t ends = ~cont;
        if (len - p < 64) ends &= (1ULL << (len - p)) - 1;
        uint64_t longs = cont & (cont << 1) & (cont << 2);  /* char i: the 4th+ of a value */
        int64_t off = 0;
        while (off <= 56) {
            unsigned term = (unsigned)(ends >> off) & 0xffu;
            unsigned used = 32 - (unsigned)__builtin_clz(term | 1u), nv;  /* past the last end */
            if (!term) break;
            if (((unsigned)(longs >> off) & ((1u << used) - 1u)) == 0) nv = (unsigned)__builtin_popcount(term);
            else { nv = nv_table[term]; used = used_table[term]; if (!nv) break; }
            __m128i codes = _mm_sub_epi8(_mm_loadu_si128((const __m128i *)(s + p + off)), c48);
            __m128i lanes = _mm_shuffle_epi8(codes, _mm_load_si128((const __m128i *)first_shuffle[term]));
            __m128i third = _mm_shuffle_epi8(codes, _mm_load_si128((const __m128i *)third_shuffle[term]));
            /* 5 bits per character, little end first; the sign is the top bit of the last one */
            __m128i v = _mm_or_si128(_mm_or_si128(_mm_and_si128(lanes, m1f),
                                                  _mm_slli_epi16(_mm_and_si128(_mm_srli_epi16(lanes, 8), m1f), 5)),
                                     _mm_slli_epi16(_mm_and_si128(third, m1f), 10));
            __m128i two = _mm_cmpeq_epi16(_mm_and_si128(lanes, m20), m20);
            __m128i three = _mm_cmpeq_epi16(_mm_and_si128(lanes, m2000), m2000);
            __m128i sign = _mm_blendv_epi8(m10, _mm_blendv_epi8(m200, m4000, three), two);
            v = _mm_sub_epi16(_mm_xor_si128(v, sign), sign);
            _mm_storeu_si128((__m128i *)(vals + m), _mm_cvtepi16_epi32(v));
            _mm_storeu_si128((__m128i *)(vals + m + 4), _mm_cvtepi16_epi32(_mm_srli_si128(v, 8)));
            m += nv; off += used;
        }
        p += off;
        if (off > 56 || p >= len) continue;
        /* one value the windows do not take: 3+ characters, or its end 8+ characters away */
        int64_t x = 0; int shift = 0, code;
        do {
            if (p >= len) return -1;
            code = (int)s[p++] - 48;
            x |= (int64_t)(code & 0x1f) << shift;
            shift += 5;
        } while ((code & 0x20) && shift < 60);
        if (code & 0x20) return -2;
        if (code & 0x10) x |= (int64_t)(~0ULL << shift);
        vals[m++] = (int32_t)(uint32_t)x;  /* only its low 32 bits count (run = (uint32)(x + back2)) */
    }
    return m;
}

/* Runs from M values (m > 2: plus the run two before, 32-bit wrapping, as the scalar decoder),
 * four at a time, as their 1-runs (odd m) [lo, hi) (int64, room for M / 2 + 4), with *total and
 * *area: their number M / 2, or -1 when a 1-run is empty, a run reaches 2^27 or a position
 * 2^31 (the scalar decoder takes those). vals: room for M + 8 (clobbered). */
__attribute__((target("sse4.1")))
int64_t rle_runs_sse41(int32_t *vals, int64_t M, int64_t *lo, int64_t *hi, int64_t *total, int64_t *area) {
    if (M >= 3) vals[2] = (int32_t)((uint32_t)vals[2] - (uint32_t)vals[0]);
    memset(vals + M, 0, 8 * sizeof(int32_t));
    __m128i carry = _mm_setzero_si128(), pos = _mm_setzero_si128(), big = _mm_setzero_si128(),
            ones = _mm_setzero_si128(), empty = _mm_setzero_si128();
    const __m128i odd = _mm_set_epi32(-1, 0, -1, 0), lane = _mm_set_epi32(3, 2, 1, 0), zero = _mm_setzero_si128();
    for (int64_t m = 0; m < M; m += 4) {
        __m128i r = _mm_loadu_si128((const __m128i *)(vals + m));
        r = _mm_add_epi32(_mm_add_epi32(r, _mm_slli_si128(r, 8)), carry);
        carry = _mm_shuffle_epi32(r, _MM_SHUFFLE(3, 2, 3, 2));
        __m128i valid = _mm_cmpgt_epi32(_mm_set1_epi32((int)(M - m)), lane), kept = _mm_and_si128(odd, valid);
        r = _mm_and_si128(r, valid);  /* runs past the last: none */
        __m128i r1 = _mm_and_si128(r, kept);
        ones = _mm_add_epi32(ones, r1);
        empty = _mm_or_si128(empty, _mm_and_si128(kept, _mm_cmpeq_epi32(r1, zero)));
        __m128i b = _mm_add_epi32(r, _mm_slli_si128(r, 4));
        b = _mm_add_epi32(_mm_add_epi32(b, _mm_slli_si128(b, 8)), pos);
        pos = _mm_shuffle_epi32(b, _MM_SHUFFLE(3, 3, 3, 3));
        big = _mm_or_si128(big, _mm_or_si128(_mm_srli_epi32(r, 27), _mm_srli_epi32(b, 31)));
        /* the 1-runs of lanes 1 and 3: [end of lane 0, end of lane 1), [end of lane 2, end of lane 3) */
        __m128i ends = _mm_shuffle_epi32(b, _MM_SHUFFLE(3, 1, 2, 0));
        _mm_storeu_si128((__m128i *)(lo + m / 2), _mm_cvtepu32_epi64(ends));
        _mm_storeu_si128((__m128i *)(hi + m / 2), _mm_cvtepu32_epi64(_mm_srli_si128(ends, 8)));
    }
    if (!_mm_testz_si128(big, big) || !_mm_testz_si128(empty, empty)) return -1;
    uint32_t o[4]; _mm_storeu_si128((__m128i *)o, ones);
    *area = (int64_t)o[0] + o[1] + o[2] + o[3];
    uint32_t last[4]; _mm_storeu_si128((__m128i *)last, pos);
    *total = M ? last[0] : 0;
    return M / 2;
}

void rle_sse41_init(void) {
    __builtin_cpu_init();
    rle_sse41_ready = __builtin_cpu_supports("sse4.1") && __builtin_cpu_supports("popcnt");
    if (rle_sse41_ready) { init_tables(); init_pack(); }
}
#endif
