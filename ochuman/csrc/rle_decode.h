/* Internal to csrc/: RLE decoding shared by rle.c (statistics) and iou.c (mask IoU), and the
 * SSE4.1 decoder of rle_sse41.c. Plain C, no Python. */
#ifndef OCHUMAN_RLE_DECODE_H
#define OCHUMAN_RLE_DECODE_H
#include "evalcore.h"

/* Scratch for decoding strings of up to `most` characters. */
typedef struct { unsigned char *text; int32_t *values; } Decoder;
int decoder_init(Decoder *dec, int64_t most);  /* 0, or EC_NO_MEMORY (free it either way) */
void decoder_free(Decoder *dec);

/* String k (pycocotools rleFrString) as its non-empty 1-runs [lo, hi) of pixel positions,
 * column-major (lo, hi: room for lengths[k] + 8): their number, or RLE_TRUNCATED /
 * RLE_BAD_CHARACTER. *total: pixels covered by all runs; *area: by the 1-runs. */
int64_t decode_runs(const RleTable *t, int64_t k, Decoder *dec, int64_t *lo, int64_t *hi, int64_t *total, int64_t *area);
/* Inclusive pixel box [x0, y0, x1, y1] of n 1-runs of a mask of this height ([0, 0, -1, -1] when empty). */
void interval_box(const int64_t *lo, const int64_t *hi, int64_t n, int64_t height, int64_t *box);
/* interval_box's columns with every row [x0, 0, x1, h - 1] (no pass over the runs). */
void column_box(const int64_t *lo, const int64_t *hi, int64_t n, int64_t height, int64_t *box);

/* The SSE4.1 decoder (x86 with GCC or Clang; used when rle_sse41_ready, set by rle_init).
 * -DEVALCORE_SCALAR_ONLY builds without it (what other machines run, to test it on x86). */
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__)) && !defined(EVALCORE_SCALAR_ONLY)
#define RLE_SSE41 1
extern int rle_sse41_ready;
void rle_sse41_init(void);                                                       /* the CPU check and the shuffle tables */
int64_t rle_clean_copy_sse41(const unsigned char *s, int64_t len, unsigned char *dst);  /* rle_clean_copy of a raw string, 16 characters at a time */
int64_t rle_values_sse41(const unsigned char *s, int64_t len, int32_t *vals);  /* the values of a clean string (64 readable bytes after; vals: room for len + 8): their number, -1 truncated, -2 a value of 13+ characters */
int64_t rle_runs_sse41(int32_t *vals, int64_t M, int64_t *lo, int64_t *hi, int64_t *total, int64_t *area);  /* decode_runs from M values (clobbered, room M + 8), or -1 (an empty 1-run, a run >= 2^27, a position >= 2^31) */
#endif
#endif
