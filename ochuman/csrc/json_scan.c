/* JSON scanning: results files and the lists of COCO files in the shape every detector and the
 * official tools write, straight into columns (evalcore.h). Anything else makes a scanner give
 * up (-1), and the caller takes the general path, which accepts or refuses the file with a
 * precise message. No Python here: numbers the fast paths cannot convert exactly go to strtod_l
 * in the "C" locale, else to the caller's SlowNumbers. */
#define _GNU_SOURCE  /* strtod_l (glibc) */
#include "evalcore.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#if !defined(_WIN32)
#include <locale.h>
#if defined(__APPLE__)
#include <xlocale.h>
#endif
/* The "C" locale for strtod_l (created by json_scan_init; NULL if that failed). */
static locale_t c_locale;
#endif

void json_scan_init(void) {
#if !defined(_WIN32)
    if (!c_locale) c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
#endif
}

/* ------------------------------------------------------------------ growable arrays */
static int vec_reserve(Vec *v, size_t extra) {
    if (v->len + extra <= v->cap) return 0;
    size_t cap = v->cap ? v->cap : 4096;
    while (cap < v->len + extra) cap *= 2;
    char *data = realloc(v->data, cap);
    if (!data) return -1;
    v->data = data; v->cap = cap;
    return 0;
}

static int vec_push(Vec *v, const void *item, size_t size) {
    if (vec_reserve(v, size) < 0) return -1;
    memcpy(v->data + v->len, item, size);
    v->len += size;
    return 0;
}


/* ------------------------------------------------------------------ results scanner
 * A results file in the shape every detector writes: a JSON list of flat objects with integer
 * image_id / category_id, a number score, bbox (4 numbers), segmentation ({"size": [h, w],
 * "counts": "..."}) and keypoints (51 numbers); other keys are skipped. Anything else (file
 * names as image ids, polygons, uncompressed RLE, null, escapes other than a doubled backslash,
 * broken JSON, ...) makes the scanner give up (fields skipped, SCAN_SKIP_*, are only checked as
 * JSON in the shapes the general path takes: a mask or polygons, any count of numbers), and the caller takes the general path, which
 * accepts or refuses the file with a precise message. Numbers are converted exactly as
 * Python's float() does (correctly rounded); one beyond float64 (1e400) is refused. */
typedef struct { const char *p, *end; SlowNumbers *slow; unsigned skip; } Cursor;  /* skip: SCAN_SKIP_* */

#define NUM_KEYPOINT_VALUES 51

static inline void skip_ws(Cursor *c) {
    while (c->p < c->end && (unsigned char)*c->p <= ' '
           && (*c->p == ' ' || *c->p == '\n' || *c->p == '\r' || *c->p == '\t')) c->p++;
}

static int expect(Cursor *c, char ch) {
    skip_ws(c);
    if (c->p >= c->end || *c->p != ch) return -1;
    c->p++;
    return 0;
}

static const double exact_powers[] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
                                      1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

#ifdef __SIZEOF_INT128__
#define HAS_EXACT_QUOTIENT 1
static int bit_length(uint64_t x) { return x ? 64 - __builtin_clzll(x) : 0; }

/* m / 10^k rounded to the nearest double, ties to even, for 2^53 < m < 2^64 and 0 <= k <= 19:
 * the decimals of 16-19 digits that float32 values and most float64 values print as (a
 * detector's boxes, scores and joints), where m is no double and one IEEE division would round
 * twice. The quotient is taken to 57-58 bits in 128-bit integers and rounded to 53 with its
 * remainder as the sticky bit: exact, where strtod took most of the time (a Detectron2-style
 * persons file, 37% of its numbers such: scanned in 104 ms instead of 212). */
static double exact_quotient(uint64_t m, int k) {
    static const uint64_t powers[20] = {
        1u, 10u, 100u, 1000u, 10000u, 100000u, 1000000u, 10000000u, 100000000u, 1000000000u,
        10000000000u, 100000000000u, 1000000000000u, 10000000000000u, 100000000000000u,
        1000000000000000u, 10000000000000000u, 100000000000000000u, 1000000000000000000u,
        10000000000000000000u};
    uint64_t d = powers[k], q;
    int shift = 57 + bit_length(d) - bit_length(m), sticky;  /* the quotient in [2^56, 2^58) */
    unsigned __int128 n = m, divisor = d;
    if (shift >= 0) n <<= shift; else divisor <<= -shift;
#if defined(__x86_64__) && defined(__GNUC__)
    if (shift >= 0) {  /* a 128 / 64-bit division, one instruction (the quotient fits in 64 bits) */
        uint64_t high = (uint64_t)(n >> 64), low = (uint64_t)n, remainder;
        __asm__("divq %4" : "=a"(q), "=d"(remainder) : "a"(low), "d"(high), "rm"(d));
        sticky = remainder != 0;
    } else
#endif
    {
        q = (uint64_t)(n / divisor);
        sticky = n % divisor != 0;
    }
    int drop = bit_length(q) - 53;
    uint64_t top = q >> drop, low = q & (((uint64_t)1 << drop) - 1), half = (uint64_t)1 << (drop - 1);
    top += low > half || (low == half && (sticky || (top & 1)));
    int exponent = drop - shift;  /* value = top * 2^exponent, top < 2^54 */
    if (exponent > -1000 && exponent < 960) {  /* 2^exponent a normal double: the product is exact */
        uint64_t bits = (uint64_t)(exponent + 1023) << 52;
        double scale;
        memcpy(&scale, &bits, sizeof scale);
        return (double)top * scale;
    }
    return ldexp((double)top, exponent);
}
#endif

/* A JSON number. *is_int: no fraction or exponent and |value| < 10^18 (then *integer holds it). */
static int scan_number(Cursor *c, double *value, int64_t *integer, int *is_int) {
    const char *start = c->p, *p = c->p, *end = c->end;
    int negative = 0, digits = 0, fraction = 0, has_point = 0, has_exp = 0;
    uint64_t mantissa = 0;
    if (p < end && *p == '-') { negative = 1; p++; }
    if (p >= end || *p < '0' || *p > '9') return -1;
    if (*p == '0') { p++; if (p < end && *p >= '0' && *p <= '9') return -1; }
    else while (p < end && *p >= '0' && *p <= '9') {
        if (++digits <= 19) mantissa = mantissa * 10 + (uint64_t)(*p - '0');
        p++;
    }
    if (p < end && *p == '.') {
        has_point = 1; p++;
        if (p >= end || *p < '0' || *p > '9') return -1;
        while (p < end && *p >= '0' && *p <= '9') {
            if (mantissa || *p != '0') digits++;
            if (digits <= 19) { mantissa = mantissa * 10 + (uint64_t)(*p - '0'); fraction++; }
            p++;
        }
    }
    int exponent = 0;
    if (p < end && (*p == 'e' || *p == 'E')) {
        has_exp = 1; p++;
        int exp_negative = 0;
        if (p < end && (*p == '+' || *p == '-')) { exp_negative = *p == '-'; p++; }
        if (p >= end || *p < '0' || *p > '9') return -1;
        while (p < end && *p >= '0' && *p <= '9') {
            if (exponent < 100000) exponent = exponent * 10 + (*p - '0');
            p++;
        }
        if (exp_negative) exponent = -exponent;
    }
    c->p = p;
    *is_int = !has_point && !has_exp && digits <= 18;
    if (*is_int) *integer = negative ? -(int64_t)mantissa : (int64_t)mantissa;
    int scale = exponent - fraction;
    if (digits <= 19 && mantissa <= ((uint64_t)1 << 53) && scale >= -22 && scale <= 22) {
        /* Both operands exact: one IEEE operation rounds correctly. */
        double v = (double)mantissa;
        v = scale < 0 ? v / exact_powers[-scale] : v * exact_powers[scale];
        /* "-0" is the integer 0 to JSON readers (+0.0 as a float); "-0.0", "-0e0": -0.0 */
        *value = negative && (v != 0 || has_point || has_exp) ? -v : v;
        return 0;
    }
#ifdef HAS_EXACT_QUOTIENT
    if (digits <= 19 && scale <= 0 && scale >= -19) {  /* (mantissa > 2^53 here) */
        double v = exact_quotient(mantissa, -scale);
        *value = negative ? -v : v;
        return 0;
    }
#endif
    /* Otherwise a correctly rounded conversion of the text (as Python's float()): the C
     * library's strtod in the "C" locale (glibc's and the BSDs' round correctly; no lock
     * needed, so parts scanned in threads do not queue for it), else the caller's. */
    char local[64], *text = local;
    size_t n = (size_t)(p - start);
    if (n >= sizeof local && !(text = malloc(n + 1))) return -1;
    memcpy(text, start, n); text[n] = 0;
    char *stop = NULL;
    double v;
    int ok;
#if !defined(_WIN32)
    if (c_locale) {
        v = strtod_l(text, &stop, c_locale);
        ok = stop == text + n;
    } else
#endif
    {
        v = 0;
        ok = c->slow && c->slow->convert && c->slow->convert(c->slow->context, text, &v) == 0;
    }
    if (text != local) free(text);
    /* A number beyond float64 (1e400) reads as infinite: the general path names it. */
    if (!ok || !isfinite(v)) return -1;
    *value = v;
    return 0;
}

static int scan_integer(Cursor *c, int64_t *out) {
    double value; int is_int;
    skip_ws(c);
    if (scan_number(c, &value, out, &is_int) < 0 || !is_int) return -1;
    return 0;
}

/* The digits at *p appended to *mantissa (modulo 2^64: callers refuse more than 19 digits),
 * *p moved past them; eight at a time where the bytes are little-endian (the 10-17 digits of a
 * detector's float32 values), as the known SWAR reading of eight ASCII digits in a word does:
 * a word is eight digits when every byte's high nibble is 3 and adding 6 keeps it so; pairs,
 * then fours, are then combined by multiplications. */
static inline void append_digits(const char **p, const char *end, uint64_t *mantissa) {
    const char *q = *p;
    uint64_t m = *mantissa;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    while (end - q >= 8) {
        uint64_t word;
        memcpy(&word, q, 8);
        if (((word & 0xF0F0F0F0F0F0F0F0u) | (((word + 0x0606060606060606u) & 0xF0F0F0F0F0F0F0F0u) >> 4)) != 0x3333333333333333u)
            break;
        word -= 0x3030303030303030u;
        word = word * 10 + (word >> 8);  /* each even byte: two digits' value */
        word = ((word & 0x000000FF000000FFu) * (100 + (1000000ull << 32))
                + ((word >> 16) & 0x000000FF000000FFu) * (1 + (10000ull << 32))) >> 32;
        m = m * 100000000u + word;
        q += 8;
    }
#endif
    while (q < end && (unsigned)(*q - '0') < 10) m = m * 10 + (uint64_t)(*q++ - '0');
    *p = q;
    *mantissa = m;
}

/* Plain decimals (-?digits[.digits], at most 19 digits), the bulk of detector output: 1 when
 * read, 0 to leave it to scan_number (cursor untouched). */
static inline int quick_decimal(Cursor *c, double *out) {
    const char *p = c->p, *end = c->end;
    int negative = p < end && *p == '-';
    p += negative;
    const char *first = p;
    uint64_t mantissa = 0;
    append_digits(&p, end, &mantissa);
    ptrdiff_t int_digits = p - first, fraction = 0;
    if (int_digits == 0 || (int_digits > 1 && *first == '0')) return 0;
    if (p < end && *p == '.') {
        const char *f = ++p;
        append_digits(&p, end, &mantissa);
        fraction = p - f;
        if (fraction == 0) return 0;
    }
    if (p < end && (*p == 'e' || *p == 'E')) return 0;
    if (int_digits + fraction > 19) return 0;
    double v;
    if (mantissa <= ((uint64_t)1 << 53)) {  /* both operands exact: one IEEE division rounds correctly */
        v = (double)mantissa;
        if (fraction) v /= exact_powers[fraction];
    } else {
#ifdef HAS_EXACT_QUOTIENT
        v = exact_quotient(mantissa, (int)fraction);
#else
        return 0;
#endif
    }
    *out = negative && (v != 0 || fraction) ? -v : v;  /* "-0": the integer 0, as in scan_number */
    c->p = p;
    return 1;
}

static int scan_double(Cursor *c, double *out) {
    int64_t integer; int is_int;
    skip_ws(c);
    if (quick_decimal(c, out)) return 0;
    return scan_number(c, out, &integer, &is_int);
}

/* A JSON string at c->p (after the opening quote is checked). Raw bytes [*start, *start + *len).
 * *escaped: it holds doubled backslashes (the only escape accepted). */
static int scan_string(Cursor *c, const char **start, ptrdiff_t *len, int *escaped) {
    skip_ws(c);
    if (c->p >= c->end || *c->p != '"') return -1;
    const char *p = ++c->p, *end = c->end;
    *start = p;
    while (p < end) {
        unsigned char ch = (unsigned char)*p;
        if (ch == '"') break;
        if (ch == '\\') {
            if (p + 1 >= end || p[1] != '\\') return -1;
            *escaped = 1; p += 2; continue;
        }
        if (ch < 0x20 || ch >= 0x80) return -1;
        p++;
    }
    if (p >= end) return -1;
    *len = p - *start;
    c->p = p + 1;
    return 0;
}

static int key_is(const char *start, ptrdiff_t len, const char *name) {
    return (size_t)len == strlen(name) && memcmp(start, name, (size_t)len) == 0;
}

/* Skips any JSON value (for keys the evaluation does not read). */
static int skip_value(Cursor *c, int depth) {
    if (depth > 64) return -1;
    skip_ws(c);
    if (c->p >= c->end) return -1;
    char ch = *c->p;
    if (ch == '"') { const char *s; ptrdiff_t n; int e = 0; return scan_string(c, &s, &n, &e); }
    if (ch == '[' || ch == '{') {
        char close = ch == '[' ? ']' : '}';
        c->p++;
        skip_ws(c);
        if (c->p < c->end && *c->p == close) { c->p++; return 0; }
        for (;;) {
            if (ch == '{') {
                const char *s; ptrdiff_t n; int e = 0;
                if (scan_string(c, &s, &n, &e) < 0 || expect(c, ':') < 0) return -1;
            }
            if (skip_value(c, depth + 1) < 0) return -1;
            skip_ws(c);
            if (c->p < c->end && *c->p == ',') { c->p++; continue; }
            return expect(c, close);
        }
    }
    if (ch == 't' && c->end - c->p >= 4 && memcmp(c->p, "true", 4) == 0) { c->p += 4; return 0; }
    if (ch == 'f' && c->end - c->p >= 5 && memcmp(c->p, "false", 5) == 0) { c->p += 5; return 0; }
    if (ch == 'n' && c->end - c->p >= 4 && memcmp(c->p, "null", 4) == 0) { c->p += 4; return 0; }
    double v; int64_t i; int is_int;
    return scan_number(c, &v, &i, &is_int);
}

/* The first byte at or after p that is no digit (end if none): 16 bytes at a time where SSE2 is
 * there (the 10-17 digits of a detector's float32 joints, passed over in a box evaluation). */
static inline const char *digits_end(const char *p, const char *end) {
#if defined(__SSE2__)
    while (end - p >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)p);  /* signed: bytes >= 0x80 are no digits */
        __m128i digit = _mm_and_si128(_mm_cmpgt_epi8(v, _mm_set1_epi8('0' - 1)), _mm_cmplt_epi8(v, _mm_set1_epi8('9' + 1)));
        unsigned other = (unsigned)_mm_movemask_epi8(digit) ^ 0xffffu;
        if (other) return p + __builtin_ctz(other);
        p += 16;
    }
#endif
    while (p < end && (unsigned)(*p - '0') < 10) p++;
    return p;
}

/* A number of at most 31 bytes that starts at p (end - p >= 32), its syntax checked from two
 * 16-byte loads (a polygon's coordinates, a detector's float32 joints: one classification
 * instead of a pass per run of digits): the byte after it; p itself where it is not such a
 * number (longer, followed by an exponent, or no number: the general path reads it from p). */
static inline const char *short_number_end(const char *p) {
#if defined(__SSE2__)
    const __m128i below = _mm_set1_epi8('0' - 1), above = _mm_set1_epi8('9' + 1);
    __m128i head = _mm_loadu_si128((const __m128i *)p), tail = _mm_loadu_si128((const __m128i *)(p + 16));
    uint32_t digits = (uint32_t)_mm_movemask_epi8(_mm_and_si128(_mm_cmpgt_epi8(head, below), _mm_cmplt_epi8(head, above)))
                      | (uint32_t)_mm_movemask_epi8(_mm_and_si128(_mm_cmpgt_epi8(tail, below), _mm_cmplt_epi8(tail, above))) << 16;
    unsigned first = *p == '-';
    uint32_t other = ~digits & (~0u << first);  /* the first byte that is no digit, past the sign */
    if (!other) return p;
    unsigned stop = (unsigned)__builtin_ctz(other);
    if (stop == first || (stop - first > 1 && p[first] == '0')) return p;
    if (p[stop] == '.') {
        unsigned fraction = stop + 1;
        if (fraction >= 32) return p;
        other &= ~0u << fraction;
        if (!other) return p;
        stop = (unsigned)__builtin_ctz(other);
        if (stop == fraction) return p;
    }
    if (p[stop] == 'e' || p[stop] == 'E') return p;
    return p + stop;  /* no exponent, at most 31 bytes: never beyond float64 */
#else
    return p;
#endif
}

/* [n1, n2, ...]: any count of numbers passed over (*count: how many, when not NULL), their syntax checked; converted (scan_number)
 * only where one could be beyond float64 (an exponent, more than 19 digits), to give up as
 * reading it would. */
static int skip_numbers(Cursor *c, int64_t *count) {
    int64_t numbers = 0;
    if (expect(c, '[') < 0) return -1;
    skip_ws(c);
    if (c->p < c->end && *c->p == ']') { c->p++; if (count) *count = 0; return 0; }
    const char *p = c->p, *end = c->end;
    for (;;) {
        const char *number = p;
        numbers++;
        if (end - p >= 32 && (p = short_number_end(number)) != number) goto separator;
        p += p < end && *p == '-';
        const char *first = p;
        p = digits_end(p, end);
        ptrdiff_t digits = p - first;
        if (digits == 0 || (digits > 1 && *first == '0')) return -1;
        if (p < end && *p == '.') {
            const char *fraction = ++p;
            p = digits_end(p, end);
            if (p == fraction) return -1;
            digits += p - fraction;
        }
        if (digits > 19 || (p < end && (*p == 'e' || *p == 'E'))) {
            double v; int64_t i; int is_int;
            c->p = number;
            if (scan_number(c, &v, &i, &is_int) < 0) return -1;
            p = c->p;
        }
    separator:
        if (p < end && *p == ',') { p++; }
        else if (p < end && *p == ']') { c->p = p + 1; break; }
        else {
            c->p = p;
            skip_ws(c);
            if (c->p < c->end && *c->p == ']') { c->p++; break; }
            if (expect(c, ',') < 0) return -1;
            p = c->p;
        }
        if (p < end && (unsigned char)*p <= ' ') { c->p = p; skip_ws(c); p = c->p; }
    }
    if (count) *count = numbers;
    return 0;
}

/* [n1, n2, ...] of exactly `count` numbers into out. */
static int scan_numbers(Cursor *c, double *out, int count) {
    if (expect(c, '[') < 0) return -1;
    for (int k = 0; k < count; k++) {
        if (k && expect(c, ',') < 0) return -1;
        if (scan_double(c, &out[k]) < 0) return -1;
    }
    return expect(c, ']');
}

/* The members of a flat JSON object, as the record scanners read them:
 *     if (open_object(c) < 0) return -1;
 *     do { if (next_key(c, &key, &len) < 0) return -1; ... read the value ... }
 *     while ((more = end_member(c)) > 0);
 * An empty object and keys with escapes are refused (not a shape the scanners take). */
static int open_object(Cursor *c) {
    if (expect(c, '{') < 0) return -1;
    skip_ws(c);
    return c->p < c->end && *c->p == '}' ? -1 : 0;
}

static int next_key(Cursor *c, const char **key, ptrdiff_t *len) {
    int escaped = 0;
    if (scan_string(c, key, len, &escaped) < 0 || escaped) return -1;
    return expect(c, ':');
}

/* 1: a comma, another member follows; 0: the object closed; -1: neither. */
static int end_member(Cursor *c) {
    skip_ws(c);
    if (c->p < c->end && *c->p == ',') { c->p++; return 1; }
    return expect(c, '}') < 0 ? -1 : 0;
}


/* The closing quote of a JSON string whose content starts at p, when that content is JSON the
 * scanners take as it is: printable ASCII (no control character, no byte >= 0x80) and valid
 * escapes (\\ \/ \b \f \n \r \t \uXXXX); NULL for anything else (left to the general path).
 * 16 bytes at a time where SSE2 is there (x86-64): RLE strings are most of a results file. */
static const char *plain_string_end(const char *p, const char *end) {
    for (;;) {
#if defined(__SSE2__)
        while (end - p >= 16) {
            __m128i v = _mm_loadu_si128((const __m128i *)p);
            unsigned stop = (unsigned)_mm_movemask_epi8(_mm_or_si128(
                _mm_cmplt_epi8(v, _mm_set1_epi8(0x20)),  /* signed: bytes >= 0x80 too */
                _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')), _mm_cmpeq_epi8(v, _mm_set1_epi8('\\')))));
            if (stop) { p += __builtin_ctz(stop); break; }
            p += 16;
        }
#endif
        while (p < end && (unsigned)((unsigned char)*p - 0x20) < 0x60u && *p != '"' && *p != '\\') p++;
        if (p >= end) return NULL;
        if (*p == '"') return p;
        if (*p != '\\') return NULL;  /* a control character or a byte >= 0x80 */
        char e = p + 1 < end ? p[1] : 0;
        if (e == 'u') {  /* \uXXXX: four hex digits */
            if (end - p < 6) return NULL;
            for (int k = 2; k < 6; k++) if (!p[k] || !strchr("0123456789abcdefABCDEF", p[k])) return NULL;
            p += 6;
        } else if (e == '\\' || e == '/' || e == 'b' || e == 'f' || e == 'n' || e == 'r' || e == 't') p += 2;
        else return NULL;
    }
}

/* ------------------------------------------------------------------ an object's members
 * The first byte at or after p that can change the nesting of JSON text outside a string (a
 * quote or a bracket), or inside one (a quote or a backslash); end if none. 16 bytes at a time
 * where SSE2 is there: the numbers of polygons and boxes are most of a COCO file. */
static const char *next_structural(const char *p, const char *end, int in_string) {
#if defined(__SSE2__)
    const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\');
    while (end - p >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)p), hits;
        if (in_string) hits = _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash));
        else {
            __m128i folded = _mm_or_si128(v, _mm_set1_epi8(0x20));  /* [ ] -> { }, as 0x5b / 0x5d | 0x20 */
            hits = _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_or_si128(_mm_cmpeq_epi8(folded, _mm_set1_epi8('{')),
                                                                       _mm_cmpeq_epi8(folded, _mm_set1_epi8('}'))));
        }
        unsigned found = (unsigned)_mm_movemask_epi8(hits);
        if (found) return p + __builtin_ctz(found);
        p += 16;
    }
#endif
    for (; p < end; p++) {
        char ch = *p;
        if (ch == '"' || (in_string ? ch == '\\' : (ch == '[' || ch == ']' || ch == '{' || ch == '}'))) return p;
    }
    return end;
}

/* The end of the JSON value starting at p (not checked: a string's closing quote, the bracket
 * that closes an array or object, counting brackets outside strings, or a scalar's last byte
 * before whitespace, a comma or a closing brace); NULL when the text ends first. */
static const char *value_end(const char *p, const char *end) {
    if (p >= end) return NULL;
    if (*p != '"' && *p != '[' && *p != '{') {
        while (p < end && *p != ',' && *p != '}' && *p != ']' && *p != ' ' && *p != '\n' && *p != '\r' && *p != '\t') p++;
        return p;
    }
    int64_t depth = 0;
    int in_string = 0;
    for (p = next_structural(p, end, 0); p < end; p = next_structural(p, end, in_string)) {
        char ch = *p++;
        if (in_string) {
            if (ch == '\\') { if (p++ >= end) return NULL; }
            else { in_string = 0; if (depth == 0) return p; }
        } else if (ch == '"') in_string = 1;
        else if (ch == '[' || ch == '{') depth++;
        else if (--depth == 0) return p;
    }
    return NULL;
}

int object_members(const char *data, size_t size, Vec *members) {
    Cursor c = {data, data + size, NULL, 0};
    if (expect(&c, '{') < 0) return -1;
    skip_ws(&c);
    if (c.p < c.end && *c.p == '}') c.p++;
    else for (;;) {
        if (expect(&c, '"') < 0) return -1;
        const char *key = c.p;
        while (c.p < c.end && *c.p != '"' && *c.p != '\\' && (unsigned char)*c.p >= 0x20) c.p++;
        if (c.p >= c.end || *c.p != '"') return -1;  /* an escape or a control character: left to the caller */
        int64_t key_at = key - data, key_length = c.p - key;
        c.p++;
        if (expect(&c, ':') < 0) return -1;
        skip_ws(&c);
        const char *value = c.p, *stop = value_end(value, c.end);
        if (!stop || stop == value) return -1;
        int64_t member[4] = {key_at, key_length, value - data, stop - value};
        if (vec_push(members, member, sizeof member) < 0) return -1;
        c.p = stop;
        skip_ws(&c);
        if (c.p < c.end && *c.p == ',') { c.p++; continue; }
        if (expect(&c, '}') < 0) return -1;
        break;
    }
    skip_ws(&c);
    return c.p == c.end ? 0 : -1;
}

/* A mask: {"size": [h, w], "counts": "..."} -> pushes [h, w, counts offset in data, length]
 * to out; out NULL: passed over (checked as JSON in the same shape, nothing kept), and a
 * polygon list [[x, y, ...], ...] passed over too. */
static int scan_segmentation(Cursor *c, const char *data, Vec *out) {
    int64_t fields[4] = {-1, -1, -1, -1};
    int seen_size = 0, seen_counts = 0;
    int more;
    skip_ws(c);
    if (!out && c->p < c->end && *c->p == '[') {  /* polygons */
        c->p++;
        skip_ws(c);
        if (c->p < c->end && *c->p == ']') { c->p++; return 0; }
        for (;;) {
            if (skip_numbers(c, NULL) < 0) return -1;
            skip_ws(c);
            if (c->p < c->end && *c->p == ',') { c->p++; continue; }
            return expect(c, ']');
        }
    }
    if (open_object(c) < 0) return -1;
    do {
        const char *key; ptrdiff_t key_len;
        if (next_key(c, &key, &key_len) < 0) return -1;
        if (key_is(key, key_len, "size")) {
            if (seen_size++ || expect(c, '[') < 0 || scan_integer(c, &fields[0]) < 0 || expect(c, ',') < 0
                || scan_integer(c, &fields[1]) < 0 || expect(c, ']') < 0) return -1;
        } else if (key_is(key, key_len, "counts")) {
            /* Jump to the closing quote, then check the content is JSON (the RLE decoder checks
             * the RLE alphabet later, but only where the masks are read). */
            skip_ws(c);
            if (seen_counts++ || c->p >= c->end || *c->p != '"') return -1;
            const char *start = ++c->p, *close = plain_string_end(start, c->end);
            if (!close) return -1;
            fields[2] = start - data; fields[3] = close - start;
            c->p = close + 1;
        } else if (skip_value(c, 1) < 0) return -1;
    } while ((more = end_member(c)) > 0);
    if (more < 0) return -1;
    if (!seen_size || !seen_counts) return -1;
    return out ? vec_push(out, fields, sizeof fields) : 0;
}

static int scan_record(Cursor *c, const char *data, ResultColumns *out) {
    int64_t image_id = 0, category_id = 0; double score = 0, bbox[4] = {0, 0, 0, 0};
    double keypoints[NUM_KEYPOINT_VALUES];
    unsigned seen = 0; uint8_t flags = 0;
    int more;
    if (open_object(c) < 0) return -1;
    do {
        const char *key; ptrdiff_t key_len;
        if (next_key(c, &key, &key_len) < 0) return -1;
        unsigned bit = 0; int status;
        if (key_is(key, key_len, "image_id")) { bit = 1; status = scan_integer(c, &image_id); }
        else if (key_is(key, key_len, "category_id")) { bit = 2; status = scan_integer(c, &category_id); }
        else if (key_is(key, key_len, "score")) { bit = 4; status = scan_double(c, &score); }
        else if (key_is(key, key_len, "bbox")) { bit = 8; flags |= RESULT_HAS_BBOX; status = scan_numbers(c, bbox, 4); }
        else if (key_is(key, key_len, "segmentation")) {
            bit = 16; flags |= RESULT_HAS_SEGM;
            status = scan_segmentation(c, data, c->skip & SCAN_SKIP_SEGM ? NULL : &out->segm);
        } else if (key_is(key, key_len, "keypoints")) {
            bit = 32; flags |= RESULT_HAS_KEYPOINTS;
            if (c->skip & SCAN_SKIP_KEYPOINTS) status = skip_numbers(c, NULL);
            else {
                status = scan_numbers(c, keypoints, NUM_KEYPOINT_VALUES);
                if (status == 0) status = vec_push(&out->keypoints, keypoints, sizeof keypoints);
            }
        } else status = skip_value(c, 1);
        if (status < 0 || (seen & bit)) return -1;
        seen |= bit;
    } while ((more = end_member(c)) > 0);
    if (more < 0) return -1;
    if ((seen & 7) != 7) return -1;
    if (vec_push(&out->image_id, &image_id, 8) < 0 || vec_push(&out->category_id, &category_id, 8) < 0
        || vec_push(&out->score, &score, 8) < 0 || vec_push(&out->flags, &flags, 1) < 0
        || vec_push(&out->bbox, bbox, sizeof bbox) < 0) return -1;
    return 0;
}

/* ------------------------------------------------------------------ COCO ground truth
 * The "images" and "annotations" lists of a COCO file in the shapes the official tools and
 * COCO itself write (integer ids; masks as compressed or uncompressed RLE or polygons, the
 * polygons read into numbers); anything else gives -1 and the general loader reads the file
 * (and names any problem). */
static int scan_null(Cursor *c) {
    skip_ws(c);
    if (c->end - c->p >= 4 && memcmp(c->p, "null", 4) == 0) { c->p += 4; return 1; }
    return 0;
}


/* A ground-truth segmentation: an RLE object (counts a string or a list of integers) or a
 * polygon list; *kind: SEGM_*. Pushes nothing for SEGM_NONE ([]). */
static int scan_gt_segmentation(Cursor *c, const char *data, AnnotationColumns *out, uint8_t *kind) {
    skip_ws(c);
    if (c->p < c->end && *c->p == '[') {  /* polygons */
        c->p++;
        skip_ws(c);
        if (c->p < c->end && *c->p == ']') { c->p++; *kind = SEGM_NONE; return 0; }
        int64_t count = 0;
        for (;;) {
            int64_t numbers = 0;
            if (c->skip & SCAN_SKIP_POLYGON_XY) {
                if (skip_numbers(c, &numbers) < 0) return -1;
            } else {
                if (expect(c, '[') < 0) return -1;
                for (;;) {
                    double v;
                    if (scan_double(c, &v) < 0 || vec_push(&out->polygon_xy, &v, 8) < 0) return -1;
                    numbers++;
                    skip_ws(c);
                    if (c->p < c->end && *c->p == ',') { c->p++; continue; }
                    if (expect(c, ']') < 0) return -1;
                    break;
                }
            }
            int64_t points = numbers / 2;
            if (numbers < 6 || numbers % 2 || vec_push(&out->polygon_points, &points, 8) < 0) return -1;
            count++;
            skip_ws(c);
            if (c->p < c->end && *c->p == ',') { c->p++; continue; }
            if (expect(c, ']') < 0) return -1;
            break;
        }
        *kind = SEGM_POLYGONS;
        return vec_push(&out->polygons, &count, 8);
    }
    int64_t fields[4] = {-1, -1, -1, -1}, pixels = 0;
    int seen_size = 0, seen_counts = 0, more;
    if (open_object(c) < 0) return -1;
    do {
        const char *key; ptrdiff_t key_len;
        if (next_key(c, &key, &key_len) < 0) return -1;
        if (key_is(key, key_len, "size")) {
            if (seen_size++ || expect(c, '[') < 0 || scan_integer(c, &fields[0]) < 0 || expect(c, ',') < 0
                || scan_integer(c, &fields[1]) < 0 || expect(c, ']') < 0) return -1;
        } else if (key_is(key, key_len, "counts")) {
            skip_ws(c);
            if (seen_counts++ || c->p >= c->end) return -1;
            if (*c->p == '"') {
                const char *start = ++c->p, *close = plain_string_end(start, c->end);
                if (!close) return -1;
                fields[2] = start - data; fields[3] = close - start;
                c->p = close + 1;
                *kind = SEGM_RLE;
            } else {  /* a list of non-negative integers, kept as JSON */
                const char *start = c->p;
                if (expect(c, '[') < 0) return -1;
                skip_ws(c);
                if (c->p < c->end && *c->p == ']') c->p++;
                else for (;;) {
                    int64_t count;
                    if (scan_integer(c, &count) < 0 || count < 0 || count > INT64_MAX - pixels) return -1;
                    pixels += count;
                    skip_ws(c);
                    if (c->p < c->end && *c->p == ',') { c->p++; continue; }
                    if (expect(c, ']') < 0) return -1;
                    break;
                }
                fields[2] = start - data; fields[3] = c->p - start;
                *kind = SEGM_RLE_LIST;
            }
        } else if (skip_value(c, 1) < 0) return -1;
    } while ((more = end_member(c)) > 0);
    if (more < 0 || !seen_size || !seen_counts) return -1;
    if (*kind == SEGM_RLE_LIST && vec_push(&out->rle_list_pixels, &pixels, 8) < 0) return -1;
    return vec_push(&out->segm, fields, sizeof fields);
}

static int scan_coco_image(Cursor *c, const char *data, ImageColumns *out) {
    int64_t id = 0, width = 0, height = 0, name[2] = {0, 0};
    unsigned seen = 0;
    int more;
    if (open_object(c) < 0) return -1;
    do {
        const char *key; ptrdiff_t key_len;
        if (next_key(c, &key, &key_len) < 0) return -1;
        unsigned bit = 0; int status;
        if (key_is(key, key_len, "id")) { bit = 1; status = scan_integer(c, &id); }
        else if (key_is(key, key_len, "width")) { bit = 2; status = scan_integer(c, &width); }
        else if (key_is(key, key_len, "height")) { bit = 4; status = scan_integer(c, &height); }
        else if (key_is(key, key_len, "file_name")) {
            const char *start; ptrdiff_t len; int escaped = 0;
            bit = 8; status = scan_string(c, &start, &len, &escaped);
            if (escaped) status = -1;
            name[0] = start - data; name[1] = len;
        } else status = skip_value(c, 1);
        if (status < 0 || (seen & bit)) return -1;
        seen |= bit;
    } while ((more = end_member(c)) > 0);
    if (more < 0) return -1;
    if (seen != 15) return -1;
    if (vec_push(&out->id, &id, 8) < 0 || vec_push(&out->width, &width, 8) < 0
        || vec_push(&out->height, &height, 8) < 0 || vec_push(&out->name, name, sizeof name) < 0) return -1;
    return 0;
}


static int scan_coco_annotation(Cursor *c, const char *data, AnnotationColumns *out) {
    int64_t id = 0, image_id = 0, category_id = 1, iscrowd = 0, num_keypoints = -1;
    double bbox[4], area = NAN, max_iou = NAN, keypoints[NUM_KEYPOINT_VALUES];
    uint8_t has_keypoints = 0, kind = SEGM_NONE;
    unsigned seen = 0;
    memset(keypoints, 0, sizeof keypoints);
    int more;
    if (open_object(c) < 0) return -1;
    do {
        const char *key; ptrdiff_t key_len;
        if (next_key(c, &key, &key_len) < 0) return -1;
        unsigned bit = 0; int status = 0;
        if (key_is(key, key_len, "id")) { bit = 1; status = scan_integer(c, &id); }
        else if (key_is(key, key_len, "image_id")) { bit = 2; status = scan_integer(c, &image_id); }
        else if (key_is(key, key_len, "bbox")) { bit = 4; status = scan_numbers(c, bbox, 4); }
        else if (key_is(key, key_len, "category_id")) { bit = 8; status = scan_integer(c, &category_id); }
        else if (key_is(key, key_len, "iscrowd")) { bit = 16; status = scan_integer(c, &iscrowd); }
        else if (key_is(key, key_len, "area")) { bit = 32; if (!scan_null(c)) status = scan_double(c, &area); }
        else if (key_is(key, key_len, "max_iou")) { bit = 64; if (!scan_null(c)) status = scan_double(c, &max_iou); }
        else if (key_is(key, key_len, "keypoints")) {
            bit = 128;
            if (!scan_null(c)) { status = scan_numbers(c, keypoints, NUM_KEYPOINT_VALUES); has_keypoints = 1; }
        } else if (key_is(key, key_len, "segmentation")) {
            bit = 256;
            if (!scan_null(c)) status = scan_gt_segmentation(c, data, out, &kind);
        } else if (key_is(key, key_len, "num_keypoints")) {
            bit = 512;
            status = scan_integer(c, &num_keypoints);
            if (status == 0 && num_keypoints < 0) status = -1;  /* the general path names it */
        } else status = skip_value(c, 1);
        if (status < 0 || (seen & bit)) return -1;
        seen |= bit;
    } while ((more = end_member(c)) > 0);
    if (more < 0) return -1;
    if ((seen & 7) != 7) return -1;
    if (kind == SEGM_NONE || kind == SEGM_POLYGONS) {  /* no RLE */
        int64_t none[4] = {-1, -1, -1, -1};
        if (vec_push(&out->segm, none, sizeof none) < 0) return -1;
    }
    if (kind != SEGM_POLYGONS) {
        int64_t none = 0;
        if (vec_push(&out->polygons, &none, 8) < 0) return -1;
    }
    if (vec_push(&out->id, &id, 8) < 0 || vec_push(&out->image_id, &image_id, 8) < 0
        || vec_push(&out->category_id, &category_id, 8) < 0 || vec_push(&out->iscrowd, &iscrowd, 8) < 0
        || vec_push(&out->bbox, bbox, sizeof bbox) < 0 || vec_push(&out->area, &area, 8) < 0
        || vec_push(&out->max_iou, &max_iou, 8) < 0 || vec_push(&out->has_keypoints, &has_keypoints, 1) < 0
        || vec_push(&out->num_keypoints, &num_keypoints, 8) < 0 || vec_push(&out->segm_kind, &kind, 1) < 0) return -1;
    /* keypoint rows start with the first annotation that has keypoints (zeros for those before) */
    if (has_keypoints || out->keypoints.len) {
        size_t rows_before = out->id.len / 8 - 1, row = sizeof keypoints;
        if (vec_reserve(&out->keypoints, (rows_before + 1) * row - out->keypoints.len) < 0) return -1;
        memset(out->keypoints.data + out->keypoints.len, 0, rows_before * row - out->keypoints.len);
        out->keypoints.len = rows_before * row;
        if (vec_push(&out->keypoints, keypoints, row) < 0) return -1;
    }
    uint16_t fields = (uint16_t)seen;
    if (vec_push(&out->fields, &fields, 2) < 0) return -1;
    return 0;
}

/* A JSON list of records scanned by `record` into `out`; 0, or -1 when not in the shape. */
static int scan_list(Cursor *c, const char *data, void *out, int (*record)(Cursor *, const char *, void *)) {
    if (expect(c, '[') < 0) return -1;
    skip_ws(c);
    if (c->p < c->end && *c->p == ']') { c->p++; }
    else for (;;) {
        if (record(c, data, out) < 0) return -1;
        skip_ws(c);
        if (c->p < c->end && *c->p == ',') { c->p++; continue; }
        if (expect(c, ']') < 0) return -1;
        break;
    }
    skip_ws(c);
    return c->p == c->end ? 0 : -1;
}

static int image_record(Cursor *c, const char *data, void *out) { return scan_coco_image(c, data, out); }
static int annotation_record(Cursor *c, const char *data, void *out) { return scan_coco_annotation(c, data, out); }

/* The columns of a ResultColumns, in their order. */
#define RESULT_COLUMN_COUNT 7
static Vec *result_column(ResultColumns *c, int k) {
    Vec *columns[RESULT_COLUMN_COUNT] = {&c->image_id, &c->category_id, &c->score, &c->flags, &c->bbox, &c->segm, &c->keypoints};
    return columns[k];
}

static int scan_results_into(const char *data, size_t start, size_t stop, int first, int last, unsigned skip,
                             SlowNumbers *slow, ResultColumns *out);

/* The records of data[start:stop] appended to out's columns (left as they were when -1): start
 * is 0 (the list opens there) or the first byte of a record; stop is size (the list closes
 * there) or the comma before the next part's first record. */
int scan_results(const char *data, size_t size, size_t start, size_t stop, unsigned skip, SlowNumbers *slow, ResultColumns *out) {
    if (start > stop || stop > size) return -1;
    size_t lengths[RESULT_COLUMN_COUNT];
    for (int k = 0; k < RESULT_COLUMN_COUNT; k++) lengths[k] = result_column(out, k)->len;
    if (scan_results_into(data, start, stop, start == 0, stop == size, skip, slow, out) == 0) return 0;
    for (int k = 0; k < RESULT_COLUMN_COUNT; k++) result_column(out, k)->len = lengths[k];
    return -1;
}

int result_columns_extend(ResultColumns *out, ResultColumns *more) {
    for (int k = 0; k < RESULT_COLUMN_COUNT; k++) {
        Vec *to = result_column(out, k), *from = result_column(more, k);
        if (vec_reserve(to, from->len) < 0) return EC_NO_MEMORY;
    }
    for (int k = 0; k < RESULT_COLUMN_COUNT; k++) {
        Vec *to = result_column(out, k), *from = result_column(more, k);
        if (from->len) memcpy(to->data + to->len, from->data, from->len);
        to->len += from->len;
    }
    result_columns_free(more);
    return 0;
}

static int scan_results_into(const char *data, size_t start, size_t stop, int first, int last, unsigned skip,
                             SlowNumbers *slow, ResultColumns *out) {
    Cursor c = {data + start, data + stop, slow, skip};
    if (first && expect(&c, '[') < 0) return -1;
    skip_ws(&c);
    if (first && last && c.p < c.end && *c.p == ']') c.p++;  /* [] */
    else for (;;) {
        if (scan_record(&c, data, out) < 0) return -1;
        skip_ws(&c);
        if (!last && c.p == c.end) break;  /* at the comma that ends this part */
        if (c.p < c.end && *c.p == ',') { c.p++; continue; }
        if (!last || expect(&c, ']') < 0) return -1;
        break;
    }
    if (last) { skip_ws(&c); if (c.p != c.end) return -1; }
    return 0;
}

/* The counts strings of n segm rows [h, w, offset, length] (offsets in data), copied one after
 * another into dst from offset at; moved gets the rows with their new offsets. Returns the end. */
int64_t move_mask_strings(const char *data, const int64_t *rows, int64_t n, char *dst, int64_t at, int64_t *moved) {
    for (int64_t k = 0; k < n; k++) {
        const int64_t *row = rows + 4 * k;
        memcpy(dst + at, data + row[2], (size_t)row[3]);
        moved[4 * k] = row[0]; moved[4 * k + 1] = row[1]; moved[4 * k + 2] = at; moved[4 * k + 3] = row[3];
        at += row[3];
    }
    return at;
}

int scan_coco_images(const char *data, size_t size, SlowNumbers *slow, ImageColumns *out) {
    memset(out, 0, sizeof *out);
    Cursor c = {data, data + size, slow};
    return scan_list(&c, data, out, image_record);
}

int scan_coco_annotations(const char *data, size_t size, unsigned skip, SlowNumbers *slow, AnnotationColumns *out) {
    memset(out, 0, sizeof *out);
    Cursor c = {data, data + size, slow, skip};
    return scan_list(&c, data, out, annotation_record);
}

void result_columns_free(ResultColumns *c) {
    for (int k = 0; k < RESULT_COLUMN_COUNT; k++) free(result_column(c, k)->data);
    memset(c, 0, sizeof *c);
}

void image_columns_free(ImageColumns *c) {
    free(c->id.data); free(c->width.data); free(c->height.data); free(c->name.data);
    memset(c, 0, sizeof *c);
}

void annotation_columns_free(AnnotationColumns *c) {
    free(c->id.data); free(c->image_id.data); free(c->category_id.data); free(c->iscrowd.data);
    free(c->bbox.data); free(c->area.data); free(c->max_iou.data); free(c->has_keypoints.data);
    free(c->keypoints.data); free(c->segm.data); free(c->num_keypoints.data);
    free(c->segm_kind.data); free(c->polygons.data); free(c->polygon_points.data); free(c->polygon_xy.data);
    free(c->fields.data); free(c->rle_list_pixels.data);
    memset(c, 0, sizeof *c);
}
