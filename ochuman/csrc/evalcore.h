/* The compiled core of the evaluator: plain C kernels, no Python (module.c is the only glue).
 *
 * Every array is a pointer to C-contiguous items plus the counts named beside it; the caller
 * (module.c) has checked each length against what the kernel reads and writes. Semantics follow
 * pycocotools' maskApi.c (rleFrString, rleToBbox, rleIou, bbIou) and COCOeval (computeOks,
 * evaluateImg, accumulate) bit for bit. Kernels only read and write the memory given to them, so
 * callers may run them without the Python lock on disjoint ranges in threads.
 * Return values: 0, or EC_NO_MEMORY when scratch could not be allocated (noted per function). */
#ifndef OCHUMAN_EVALCORE_H
#define OCHUMAN_EVALCORE_H
#include <stddef.h>
#include <stdint.h>

enum { EC_NO_MEMORY = -100 };

/* ------------------------------------------------------------------ named states */
/* A ground truth's state in one variant (subset x area range), u8 per (variant, gt). */
typedef enum {
    GT_COUNTED = 0,  /* counts: a match is a true positive, recall's denominator */
    GT_IGNORED = 1,  /* an ignore region (crowd, outside the area range, ...): matched only last,
                        its detections neither true nor false positives */
    GT_ABSENT = 2,   /* not in this variant (e.g. another subset's person): never matched */
} GtState;

/* A mask's decoding status, i8 per mask: not decoded yet, decoded (statistics known), decoded
 * with a box of only its columns (every row), or why the string cannot be decoded. */
typedef enum {
    MASK_PENDING = 0, MASK_DONE = 1, MASK_COLUMNS_ONLY = 2,
    RLE_TRUNCATED = -1,      /* it ends inside a number */
    RLE_BAD_CHARACTER = -2,  /* raw strings only: a character outside '0'..'o', a lone backslash */
} MaskStatus;

/* ------------------------------------------------------------------ JSON scanning (json_scan.c) */
/* A growable byte array (free with free(v.data)). */
typedef struct { char *data; size_t len, cap; } Vec;

/* Numbers the fast paths cannot convert exactly: text (NUL-terminated) -> *out; 0, or -1. */
typedef int (*NumberFallback)(void *context, const char *text, double *out);
typedef struct { NumberFallback convert; void *context; } SlowNumbers;

/* Columns of a results file, raw little-endian items: image_id, category_id i64[n]; score f64[n];
 * flags u8[n] (RESULT_HAS_*); bbox f64[4n] (zeros where absent); segm i64[4s] ([h, w, counts
 * offset in data, counts length] of the s records with a mask); keypoints f64[51k]. */
typedef struct { Vec image_id, category_id, score, flags, bbox, segm, keypoints; } ResultColumns;
enum { RESULT_HAS_BBOX = 1, RESULT_HAS_SEGM = 2, RESULT_HAS_KEYPOINTS = 4 };
/* Fields scan_results checks as JSON (in the shapes the general path takes: a mask or polygons,
 * a list of numbers) but neither converts nor keeps: their column stays empty, the flag is set. */
enum { SCAN_SKIP_SEGM = 1, SCAN_SKIP_KEYPOINTS = 2 };
/* scan_coco_annotations: polygons checked (each an even count >= 6 of numbers) and counted
 * (polygons, polygon_points) but their numbers not kept (polygon_xy stays empty). */
enum { SCAN_SKIP_POLYGON_XY = 4 };
/* id, width, height i64[n]; name i64[2n] ([offset, length] of file_name in data). */
typedef struct { Vec id, width, height, name; } ImageColumns;
/* id, image_id, category_id, iscrowd i64[n]; bbox f64[4n]; area, max_iou f64[n] (NaN: absent);
 * has_keypoints u8[n]; keypoints f64[51n] (empty when no annotation has keypoints; zeros
 * where one has none); segm i64[4n] [h, w, offset, length] of a mask's
 * counts in the data (-1s: none); num_keypoints i64[n]; segm_kind u8[n] (SEGM_*); polygons
 * i64[n] polygons of each annotation (0 unless SEGM_POLYGONS); polygon_points i64[P] points of
 * each polygon in file order; polygon_xy f64[2 * total points]; fields u16[n] the keys present
 * (bits: id 1, image_id 2, bbox 4, category_id 8, iscrowd 16, area 32, max_iou 64, keypoints
 * 128, segmentation 256, num_keypoints 512; a null value counts as present); rle_list_pixels
 * i64[L] the sum of the counts of each uncompressed RLE (SEGM_RLE_LIST) in file order. */
typedef struct { Vec id, image_id, category_id, iscrowd, bbox, area, max_iou, has_keypoints, keypoints, segm, num_keypoints,
                 segm_kind, polygons, polygon_points, polygon_xy, fields, rle_list_pixels; } AnnotationColumns;
/* segm_kind: no segmentation (absent, null or []), compressed RLE (segm: the string's content),
 * uncompressed RLE (segm: the JSON list of counts, brackets included), polygons (each of an
 * even count >= 6 of numbers; others give the general path). */
enum { SEGM_NONE = 0, SEGM_RLE = 1, SEGM_RLE_LIST = 2, SEGM_POLYGONS = 3 };

void json_scan_init(void);                                                         /* once, before any scan: the "C" locale for strtod_l */
int scan_results(const char *data, size_t size, size_t start, size_t stop, unsigned skip, SlowNumbers *slow, ResultColumns *out);  /* records of data[start:stop] (a whole file: 0, size; else a part between records) appended to out, skip: SCAN_SKIP_*; 0, or -1: not in the shape (out as it was) */
int result_columns_extend(ResultColumns *out, ResultColumns *more);  /* more's rows appended to out, more freed (emptied); 0, or EC_NO_MEMORY (both as they were) */
int64_t move_mask_strings(const char *data, const int64_t *rows, int64_t n, char *dst, int64_t at, int64_t *moved);  /* ResultColumns.segm rows' strings copied to dst[at..] one after another, moved: the rows pointing there; the end */
int object_members(const char *data, size_t size, Vec *members);  /* a JSON object's members: [key offset, key length, value offset, value length] i64 each, keys plain (no escape), values' spans by their brackets, unchecked; 0, or -1 (not an object in that shape) */
int scan_coco_images(const char *data, size_t size, SlowNumbers *slow, ImageColumns *out);           /* a COCO "images" list; 0, or -1 */
int scan_coco_annotations(const char *data, size_t size, unsigned skip, SlowNumbers *slow, AnnotationColumns *out); /* a COCO "annotations" list, skip: SCAN_SKIP_POLYGON_XY or 0; 0, or -1 */
void result_columns_free(ResultColumns *c);
void image_columns_free(ImageColumns *c);
void annotation_columns_free(AnnotationColumns *c);

/* ------------------------------------------------------------------ RLE strings (rle.c, rle_sse41.c) */
/* n compressed RLE strings: buf[starts[k] : starts[k] + lengths[k]]. raw: JSON string content
 * straight from a file (rle_clean_copy's rule). */
typedef struct { const char *buf; const int64_t *starts, *lengths; int raw; } RleTable;

void rle_init(void);                                                                        /* once, before any decoding: picks the SSE4.1 decoder where the CPU has it */
int64_t rle_clean_copy(const unsigned char *s, int64_t len, int raw, unsigned char *dst);   /* THE escape rule: copy to dst (room len + 64, zeros after), a doubled backslash as one when raw; the length, or -1 (raw: a character outside '0'..'o' or a lone backslash) */
int rle_spans_clean(const unsigned char *buf, const int64_t *spans, int64_t n);             /* 1 when every [offset, length] span is clean raw RLE content (rle_clean_copy), 0 if not; or EC_NO_MEMORY */
int64_t rle_clean_spans(const unsigned char *buf, const int64_t *spans, int64_t n, unsigned char *dst, int64_t *lengths);  /* the content (rle_clean_copy, raw) of each [offset, length] span one after another into dst (room for the spans' lengths + 64); lengths[k]: span k's, or -1 when not clean (then nothing kept); the bytes written */
/* rleToString of n counts appended to *out (grown with realloc); 0 or EC_NO_MEMORY. */
int rle_append_string(const uint32_t *counts, size_t n, Vec *out);
/* Uncompressed RLE counts lists, list k the JSON text buf[spans[2k] .. spans[2k] + spans[2k+1]),
 * as compressed RLE strings appended to *out one after another: pycocotools' frPyObjects of
 * {"size", "counts": list} (the counts as uint32, rleToString); lengths[k]: string k's length,
 * or -1 where the text is not a list of non-negative integers below 2^32 written plainly
 * (digits, no leading zero: nothing written, the caller's general path); 0 or EC_NO_MEMORY. */
int rle_list_strings(const char *buf, const int64_t *spans, int64_t n, Vec *out, int64_t *lengths);
int rle_stats(const RleTable *t, const int64_t *heights, int64_t lo, int64_t hi, int8_t *status, int64_t *areas, int64_t *totals, int64_t *boxes);  /* area, pixel total, inclusive box [x0, y0, x1, y1] of strings lo..hi-1 whose status is MASK_PENDING; status -> MASK_DONE or RLE_*; 0 or EC_NO_MEMORY */

/* ------------------------------------------------------------------ polygons (poly.c) */
/* Coordinates the polygon kernel takes: finite, |c| <= this (5 c and the edges' extents fit an int). */
#define POLYGON_COORDINATE_LIMIT 134217728.0
/* Objects lo..hi-1 as compressed RLE strings appended to *out (grown with realloc), their
 * lengths into lengths[i]: object i (h x w = sizes[2i], sizes[2i+1], h, w >= 1, h w < 2^31 - 1) is the union
 * of polygons polygon_start[i]..polygon_start[i+1]-1 (none: the empty mask), polygon p the
 * points point_start[p]..point_start[p+1]-1 of xy ([x, y] f64 pairs). pycocotools'
 * frPyObjects (rleFrPoly) + merge + rleToString, byte for byte; 0 or EC_NO_MEMORY. */
int polygon_rle_strings(const double *xy, const int64_t *point_start, const int64_t *polygon_start, const int64_t *sizes, int64_t lo, int64_t hi, Vec *out, int64_t *lengths);

/* ------------------------------------------------------------------ IoU (iou.c) */
/* B (image, category) blocks; block b holds ground truths gt_start[b]..gt_start[b+1]-1 and
 * detections dt_start[b]..dt_start[b+1]-1 (block order) and its IoU matrix D_b x G_b,
 * row-major, at ious[iou_start[b]]. */
typedef struct { const int64_t *gt_start, *dt_start, *iou_start; int64_t n_blocks; } Blocks;
/* Masks with their statistics, as rle_stats writes them: sizes i64[2n] [h, w]; status i8[n];
 * areas, totals i64[n]; boxes i64[4n]. */
typedef struct { RleTable rle; const int64_t *sizes; int8_t *status; int64_t *areas, *totals, *boxes; } Masks;

int segm_ious(Masks *gt, const uint8_t *gt_crowd, Masks *dt, const int64_t *gt_order, const int64_t *dt_order, const Blocks *blocks, int64_t lo, int64_t hi, double *out);  /* rleIou of blocks lo..hi-1 (crowd: over the detection's area; -1 for masks of different sizes whose boxes meet); fills pending statistics; 0 or EC_NO_MEMORY */
void bbox_ious(const double *gt_boxes, const uint8_t *gt_crowd, const double *dt_boxes, const int64_t *gt_order, const int64_t *dt_order, const Blocks *blocks, int64_t lo, int64_t hi, double *out);  /* bbIou (xywh boxes) of blocks lo..hi-1 */
/* MaxIoU (ochuman.maxiou's convention: [x1, y1, x2, y2] inclusive pixel ranges): out[i] = the largest IoU of
 * box i with another box of its group, 0 alone; boxes f64[4n] grouped, group g = boxes starts[g]..starts[g+1]-1. */
void max_iou_inclusive(const double *boxes, const int64_t *starts, int64_t groups, double *out);
/* out[i] = 1 where the centre (x + w / 2, y + h / 2) of detection i's xywh box bbox[4i..] lies outside
 * [0, width] x [0, height] of its image (sizes[2 image_index[i]..]: [height, width]), else 0. */
void box_centres_outside(const double *bbox, const int64_t *image_index, const int64_t *sizes, int64_t n, uint8_t *out);
/* out[i] = 1 where the mean of detection i's K keypoint x coordinates (keypoints[3K i + 3k]), or of
 * its y coordinates, lies outside [0, width] or [0, height] of its image, else 0: the means as
 * numpy's keypoints[:, 0::3].mean(axis=1) (its pairwise sum, then / K; K = 0: NaN, never outside). */
void keypoint_means_outside(const double *keypoints, int64_t K, const int64_t *image_index, const int64_t *sizes, int64_t n,
                            uint8_t *out);

/* ------------------------------------------------------------------ OKS (oks.c) */
void oks_exponents(const double *dt_kpts, const double *gt_kpts, const double *gt_boxes, const double *gt_areas, const double *variances, int64_t K, const int64_t *dt, const int64_t *gt, int64_t P, double *out);  /* computeOks' exponents -e of pairs (dt[p], gt[p]) into out[P*K] */
int oks_means(const double *terms, const double *gt_kpts, const int64_t *gt, int64_t P, int64_t K, double *out);  /* mean of terms[P*K] over each gt's labelled keypoints, summed as numpy sums; 0 or EC_NO_MEMORY */

/* ------------------------------------------------------------------ matching (match.c) */
int64_t match_candidates(const double *ious, const Blocks *blocks, double lowest, int64_t *out);  /* detections whose IoU reaches `lowest` with a gt of their block, ascending, into out: their number */
int match(const double *ious, const Blocks *blocks, const uint8_t *gt_state, const uint8_t *gt_crowd, int64_t G, const double *thresholds, int64_t T, const int64_t *candidates, int64_t C, int64_t v_lo, int64_t v_hi, int32_t *out);  /* evaluateImg's greedy matching, variants v_lo..v_hi-1 (gt_state u8[V*G]): out[v, t, c] = gt matched by candidate c, or -1; 0 or EC_NO_MEMORY */

/* ------------------------------------------------------------------ accumulation (accumulate.c) */
/* One variant's inputs (all arrays in block order). Dimensions: A area ranges, T thresholds,
 * C candidates, G ground truths, D detections, R recall thresholds, M maxDets values, K categories. */
typedef struct {
    int64_t A, T, C, G, D, R, M, K;
    const int32_t *matches;       /* [A*T*C] gt index matched by each candidate, or -1 */
    const int32_t *candidate_of;  /* [D] each detection's candidate index, or -1 */
    const uint8_t *gt_state;      /* [A*G] GtState */
    const int64_t *gt_ids;        /* [G] annotation ids (a match to id 0 counts as none, as pycocotools) */
    const uint8_t *gt_used;       /* [G] its block takes part */
    const int64_t *gt_cat;        /* [G] category index 0..K-1 */
    const int64_t *order;         /* [D] detections by score, stable, over all blocks */
    const uint8_t *dt_used;       /* [D] its block takes part */
    const int64_t *dt_cat;        /* [D] category index */
    const int64_t *dt_rank;       /* [D] rank by score inside its block (maxDets) */
    const double *dt_scores;      /* [D] */
    const uint8_t *dt_out;        /* [A*D] unmatched, it is ignored (outside the area range, another subset's) */
    const double *rec_thrs;       /* [R] */
    const int64_t *max_dets;      /* [M] */
} AccumulateInput;
/* COCOeval's eval arrays: precision, scores [T*R*K*A*M], recall [T*K*A*M]. */
typedef struct { double *precision, *recall, *scores; } AccumulateOutput;

int accumulate(const AccumulateInput *in, int64_t k_lo, int64_t k_hi, int64_t a_lo, int64_t a_hi, AccumulateOutput *out);  /* COCOeval.accumulate for categories k_lo..k_hi-1 x area ranges a_lo..a_hi-1, every cell written (-1 without a counted gt); 0 or EC_NO_MEMORY */

/* ------------------------------------------------------------------ sorting (sort.c) */
int argsort_descending(const double *values, int64_t n, int64_t *out);  /* out: np.argsort(-values, kind="stable") (NaN last, -0.0 ties 0.0); 0 or EC_NO_MEMORY */
/* The detections i with block[i] >= 0 grouped by block (ascending), by score inside a block
 * (as argsort_descending: ties in file order), at most max_det a block: order[k] the k-th kept
 * (indices into block / scores), rank[k] its place in its block; by_score: the kept (as places
 * in order) by score, ties in block order (argsort_descending of the kept's scores in block
 * order). Outputs hold n. Returns the number kept, or EC_NO_MEMORY. */
int64_t block_order(const int64_t *block, const double *scores, int64_t n, int64_t max_det,
                    int64_t *order, int64_t *rank, int64_t *by_score);

/* ------------------------------------------------------------------ bootstrap (bootstrap.c) */
/* L lists (one per variant and category) of the detections of one area range and maxDets that
 * are a true or false positive at some IoU threshold, by score (items); S samples of image
 * weights (times each image was drawn). */
typedef struct {
    int64_t L, T, R, I;
    const uint8_t *item_fate;     /* [N*T] per threshold: 1 true positive, 2 false positive, 0 neither (ignored) */
    const int32_t *item_img;      /* [N] its image 0..I-1 */
    const int32_t *item_run;      /* [N] 1: alone; m > 1: the first of m tied items of one image (one score), then m - 1 zeros */
    const int64_t *list_start;    /* [L+1] each list's first item */
    const int32_t *weights;       /* [S*I] times each image was drawn, per sample */
    const int64_t *npig;          /* [S*L] counted ground truths of the list's variant and category, weighted */
    const int64_t *totals;        /* [S*L*T*2] weighted true and false positives of the list per threshold */
    const double *rec_thrs;       /* [R] */
} WeightedInput;

int weighted_accumulate(const WeightedInput *in, int64_t s_lo, int64_t s_hi, double *precision, double *recall);  /* precision [S*L*T*R], recall [S*L*T] of samples s_lo..s_hi-1 (-1 where npig is 0); 0 or EC_NO_MEMORY */

#endif
