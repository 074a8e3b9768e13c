/* csv.c - passivedns CSV line parser. See csv.h for the format. */
#include "csv.h"

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu.h"
#include "rrtype.h"

enum csv_field {
    F_TS_H = 1u << 0, F_TS_S = 1u << 1, F_TS_M = 1u << 2, F_HOST = 1u << 3,
    F_CLIENT = 1u << 4, F_CMAC = 1u << 5, F_SERVER = 1u << 6,
    F_SMAC = 1u << 7, F_PROTO = 1u << 8, F_CLASS = 1u << 9,
    F_QUERY = 1u << 10, F_QLEN = 1u << 11, F_TYPE = 1u << 12,
    F_ANSWER = 1u << 13, F_ALEN = 1u << 14, F_TTL = 1u << 15,
    F_COUNT = 1u << 16
};

static const struct {
    char letter;
    uint32_t bit;
} letters[] = {
    {'H', F_TS_H}, {'S', F_TS_S}, {'M', F_TS_M}, {'h', F_HOST},
    {'c', F_CLIENT}, {'w', F_CMAC}, {'s', F_SERVER}, {'W', F_SMAC},
    {'p', F_PROTO}, {'C', F_CLASS}, {'Q', F_QUERY}, {'L', F_QLEN},
    {'T', F_TYPE}, {'A', F_ANSWER}, {'l', F_ALEN}, {'t', F_TTL},
    {'n', F_COUNT},
};

/* Front fields in print order (the timestamp counts as one). */
static const uint32_t front_order[] = {F_HOST, F_CLIENT, F_CMAC, F_SERVER,
                                       F_SMAC, F_PROTO, F_CLASS};

static void octet_tables_init(void);

static const char *result_names[CSV_RESULT_COUNT] = {
    "ok", "fields", "time", "class", "name", "type", "rdata", "number",
    "binary", "too_long", "json"};

const char *csv_result_name(enum csv_result r) {
    return (unsigned)r < CSV_RESULT_COUNT ? result_names[r] : "unknown";
}

int csv_layout_set_timezone(csv_layout *l, const char *tz, char *err,
                            size_t errlen) {
    l->tz = NULL;
    if (!tz || strcmp(tz, "UTC") == 0)
        return 0;
    l->tz = pdns_tz_get(tz, err, errlen);
    return l->tz ? 0 : -1;
}

int csv_layout_init(csv_layout *l, const char *f, const char *sep, char *err,
                    size_t errlen) {
    static pthread_once_t tables = PTHREAD_ONCE_INIT;
    pthread_once(&tables, octet_tables_init);
    memset(l, 0, sizeof(*l));
    if (!f)
        f = CSV_DEFAULT_LAYOUT;
    if (!sep)
        sep = CSV_DEFAULT_SEPARATOR;
    for (const char *c = f; *c; c++) {
        size_t i;
        for (i = 0; i < sizeof(letters) / sizeof(letters[0]); i++)
            if (letters[i].letter == *c)
                break;
        if (i == sizeof(letters) / sizeof(letters[0])) {
            snprintf(err, errlen, "layout '%s': unknown field letter '%c'", f,
                     *c);
            return -1;
        }
        l->fields |= letters[i].bit;
    }
    if (!(l->fields & (F_TS_H | F_TS_S))) {
        snprintf(err, errlen, "layout '%s': needs a timestamp (S or H)", f);
        return -1;
    }
    if ((l->fields & (F_QUERY | F_TYPE | F_ANSWER)) !=
        (F_QUERY | F_TYPE | F_ANSWER)) {
        snprintf(err, errlen, "layout '%s': needs query, type and answer "
                 "(Q, T and A)", f);
        return -1;
    }
    l->sep_len = strlen(sep);
    if (l->sep_len == 0 || l->sep_len > CSV_SEP_MAX || strchr(sep, '\n')) {
        snprintf(err, errlen, "separator must be 1 to %d bytes, no newline",
                 CSV_SEP_MAX);
        return -1;
    }
    memcpy(l->sep, sep, l->sep_len + 1);
    l->n_front = 1;
    for (size_t i = 0; i < sizeof(front_order) / sizeof(front_order[0]); i++) {
        if (!(l->fields & front_order[i]))
            continue;
        if (front_order[i] == F_CLASS)
            l->at_class = l->n_front;
        if (front_order[i] == F_CLIENT)
            l->at_client = l->n_front;
        if (front_order[i] == F_SERVER)
            l->at_server = l->n_front;
        l->n_front++;
    }
    if (!(l->fields & F_QLEN)) /* front, query, type, answer, back */
        l->n_sep = l->n_front + 2 + !!(l->fields & F_ALEN) + !!(l->fields & F_TTL) +
                   !!(l->fields & F_COUNT);
    snprintf(l->letters, sizeof(l->letters), "%s", f);
    return 0;
}

/* ---- small scanners ---------------------------------------------------- */

/* First c0 c1 pair in [p, end). Fields are short, so instead of a memchr
 * call per field this tests 8 bytes at a time for c0 (SWAR: a byte of
 * x ^ pattern is zero where c0 is) and checks each candidate exactly. */
static const char *find_sep2(const char *p, const char *end, char c0,
                             char c1) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    const uint64_t ones = 0x0101010101010101ULL;
    const uint64_t pat = ones * (uint8_t)c0;
    while (end - p > 8) {
        uint64_t x;
        memcpy(&x, p, 8);
        x ^= pat;
        uint64_t m = (x - ones) & ~x & (ones << 7);
        while (m) {
            int i = __builtin_ctzll(m) >> 3;
            if (p[i] == c0 && p[i + 1] == c1)
                return p + i;
            m &= m - 1;
        }
        p += 8;
    }
#endif
    for (; p + 1 < end; p++)
        if (p[0] == c0 && p[1] == c1)
            return p;
    return NULL;
}

static const char *find_sep(const char *p, const char *end,
                            const csv_layout *l) {
    if (l->sep_len == 1)
        return memchr(p, l->sep[0], (size_t)(end - p));
    if (l->sep_len == 2) /* "||", the default */
        return find_sep2(p, end, l->sep[0], l->sep[1]);
    while (p + l->sep_len <= end) {
        const char *q = memchr(p, l->sep[0], (size_t)(end - p));
        if (!q || q + l->sep_len > end)
            return NULL;
        if (memcmp(q, l->sep, l->sep_len) == 0)
            return q;
        p = q + 1;
    }
    return NULL;
}

static const char *find_sep_back(const char *begin, const char *end,
                                 const csv_layout *l) {
    for (const char *q = end - l->sep_len; q >= begin; q--)
        if (*q == l->sep[0] &&
            (l->sep_len == 1 || q[1] == l->sep[1]) &&
            (l->sep_len <= 2 || memcmp(q, l->sep, l->sep_len) == 0))
            return q;
    return NULL;
}

static int parse_u64(const char *s, size_t len, uint64_t *v) {
    uint64_t x = 0;
    if (len == 0 || len > 20)
        return -1;
    /* 19 digits never overflow (10^19 < 2^64): only a 20th is checked */
    size_t n = len < 19 ? len : 19;
    for (size_t i = 0; i < n; i++) {
        unsigned d = (unsigned)(s[i] - '0');
        if (d > 9)
            return -1;
        x = x * 10 + d;
    }
    if (len == 20) {
        unsigned d = (unsigned)(s[19] - '0');
        if (d > 9 || x > (UINT64_MAX - d) / 10)
            return -1;
        x = x * 10 + d;
    }
    *v = x;
    return 0;
}

/* Fraction digits after the dot -> milliseconds (truncated): the first
 * three digits count, the rest must be digits too. */
static int parse_frac_ms(const char *s, size_t len, int64_t *ms) {
    int64_t v = 0;
    if (len == 0 || len > 9)
        return -1;
    for (size_t i = 0; i < len; i++) {
        unsigned d = (unsigned)(s[i] - '0');
        if (d > 9)
            return -1;
        if (i < 3)
            v = v * 10 + d;
    }
    for (size_t i = len; i < 3; i++)
        v *= 10;
    *ms = v;
    return 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

/* "YYYY-MM-DD HH:MM:SS[.ffffff]", as if the wall clock were UTC. */
static int parse_ymdhms(const char *s, size_t len, int64_t *sec,
                        int64_t *ms) {
    uint64_t Y, M, D, h, m, x;
    if (len < 19 || s[4] != '-' || s[7] != '-' || s[10] != ' ' ||
        s[13] != ':' || s[16] != ':' || parse_u64(s, 4, &Y) < 0 ||
        parse_u64(s + 5, 2, &M) < 0 || parse_u64(s + 8, 2, &D) < 0 ||
        parse_u64(s + 11, 2, &h) < 0 || parse_u64(s + 14, 2, &m) < 0 ||
        parse_u64(s + 17, 2, &x) < 0 || M < 1 || M > 12 || D < 1 ||
        D > 31 || h > 23 || m > 59 || x > 60)
        return -1;
    *ms = 0;
    if (len > 19 && (s[19] != '.' || parse_frac_ms(s + 20, len - 20, ms) < 0))
        return -1;
    *sec = days_from_civil((int64_t)Y, (unsigned)M, (unsigned)D) * 86400 +
           (int64_t)(h * 3600 + m * 60 + x);
    return 0;
}

/* Eight ASCII digits, byte 0 the first, as a number, or -1 when one is not
 * a digit. Three multiplies instead of a chain of eight (D. Lemire's SWAR). */
static int64_t digits8_word(uint64_t x) {
    x -= 0x3030303030303030ULL; /* a byte below '0' wraps to >= 0xd0 */
    if ((x | (x + 0x0606060606060606ULL)) & 0xf0f0f0f0f0f0f0f0ULL)
        return -1;
    x = x * 10 + (x >> 8); /* little endian: the first digit is byte 0 */
    x = (((x & 0x000000ff000000ffULL) * (100 + (1000000ULL << 32))) +
         (((x >> 16) & 0x000000ff000000ffULL) * (1 + (10000ULL << 32)))) >> 32;
    return (int64_t)x;
}

static int64_t digits8(const char *s) {
    uint64_t x;
    memcpy(&x, s, 8);
    return digits8_word(x);
}

/* "SSSSSSSSSS.f..." with ten digits of seconds (the years 2001 to 2286),
 * as the sensor prints them: the common case, without a digit chain.
 * Returns 0, or -1 to let the general parser decide. */
static int parse_time_fast(const char *s, size_t len, int64_t *sec,
                           int64_t *ms) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (len < 12 || len > 20 || s[10] != '.')
        return -1;
    int64_t hi = digits8(s);
    unsigned d8 = (unsigned)(s[8] - '0'), d9 = (unsigned)(s[9] - '0');
    if (hi < 0 || d8 > 9 || d9 > 9)
        return -1;
    if (parse_frac_ms(s + 11, len - 11, ms) < 0)
        return -1;
    *sec = hi * 100 + d8 * 10 + d9;
    return 0;
#else
    (void)s, (void)len, (void)sec, (void)ms;
    return -1;
#endif
}

static int parse_time(const csv_layout *l, const char *s, size_t len,
                      pdns_record *r) {
    int64_t sec, ms = 0;
    uint64_t v;
    r->has_ms = 0;
    if (!(l->fields & F_TS_H) && parse_time_fast(s, len, &sec, &ms) == 0) {
        r->has_ms = 1;
    } else if (l->fields & F_TS_H) {
        if (parse_ymdhms(s, len, &sec, &ms) < 0)
            return -1;
        if (l->tz)
            sec = pdns_tz_to_utc(l->tz, sec);
        r->has_ms = 1;
    } else {
        const char *dot = memchr(s, '.', len);
        size_t il = dot ? (size_t)(dot - s) : len;
        if (parse_u64(s, il, &v) < 0 || v > (uint64_t)INT64_MAX / 1000)
            return -1;
        sec = (int64_t)v;
        if (dot) {
            if (parse_frac_ms(dot + 1, len - il - 1, &ms) < 0)
                return -1;
            r->has_ms = 1;
        }
    }
    r->time_first = r->time_last = sec;
    r->time_first_ms = r->time_last_ms = sec * 1000 + ms;
    return 0;
}

static const char *const rcodes[] = {
    "NXDOMAIN", "SERVFAIL", "REFUSED", "FORMERR", "NOTIMPL", "YXDOMAIN",
    "YXRRSET", "NXRRSET", "NOTAUTH", "NOTZONE"};

static int is_rcode(const char *s, size_t len) {
    if (len > 14 && memcmp(s, "UNKNOWN-ERROR-", 14) == 0)
        return 1;
    for (size_t i = 0; i < sizeof(rcodes) / sizeof(rcodes[0]); i++)
        if (strlen(rcodes[i]) == len && memcmp(rcodes[i], s, len) == 0)
            return 1;
    return 0;
}

/* The cut of a line: the fields before the query, those after the answer
 * (count, ttl, answer length, right to left), and what lies between. */
typedef struct cut {
    pdns_str front[8];
    pdns_str back[3];
    char *mid, *end; /* "query[<sep>qlen]<sep>type<sep>answer" */
    unsigned __int128 rest; /* mask cut: the separators in mid..end */
    pdns_str type;   /* listed cut: the rrtype field, */
    char *answer;    /* and where the answer starts */
} cut;

static const uint32_t back_order[] = {F_COUNT, F_TTL, F_ALEN};

/* Front fields left to right, back fields right to left, with the
 * scanners: any line, any separator. */
static enum csv_result cut_ends_scan(const csv_layout *l, char *line,
                                     size_t len, cut *c, const char **why) {
    char *p = line, *end = line + len;
    if (memchr(line, '\0', len)) {
        *why = "NUL byte in line";
        return CSV_E_BINARY;
    }
    for (int i = 0; i < l->n_front; i++) {
        char *q = (char *)find_sep(p, end, l);
        if (!q) {
            *why = "too few fields for the layout";
            return CSV_E_FIELDS;
        }
        c->front[i].p = p;
        c->front[i].len = (size_t)(q - p);
        p = q + l->sep_len;
    }
    for (int i = 0; i < 3; i++) {
        if (!(l->fields & back_order[i]))
            continue;
        const char *q = find_sep_back(p, end, l);
        if (!q) {
            *why = "too few fields for the layout";
            return CSV_E_FIELDS;
        }
        c->back[i].p = q + l->sep_len;
        c->back[i].len = (size_t)(end - c->back[i].p);
        end = (char *)q;
    }
    c->mid = p;
    c->end = end;
    return CSV_OK;
}

/* Splits the middle at the first separator after which comes a known
 * rrtype and a separator (or, with the query length printed, at the
 * query's own length), with the scanners. */
static enum csv_result split_middle_scan(const csv_layout *l, cut *c,
                                         pdns_record *r, char **ans,
                                         const char **why) {
    char *p = c->mid, *end = c->end;
    const char *s = p;
    while ((s = find_sep(s, end, l)) != NULL) {
        const char *t = s + l->sep_len;
        if (l->fields & F_QLEN) { /* query is exactly qlen bytes */
            const char *e = find_sep(t, end, l);
            uint64_t ql;
            if (e && parse_u64(t, (size_t)(e - t), &ql) == 0 &&
                ql == (uint64_t)(s - p)) {
                t = e + l->sep_len;
                const char *te = find_sep(t, end, l);
                if (!te || pdns_rrtype_parse(t, (size_t)(te - t), &r->rrtype) < 0) {
                    *why = "no known rrtype after the query length";
                    return CSV_E_TYPE;
                }
                r->rrname.p = p;
                r->rrname.len = (size_t)(s - p);
                *ans = (char *)te + l->sep_len;
                return CSV_OK;
            }
        } else {
            const char *te = find_sep(t, end, l);
            if (te && pdns_rrtype_parse(t, (size_t)(te - t), &r->rrtype) == 0) {
                r->rrname.p = p;
                r->rrname.len = (size_t)(s - p);
                *ans = (char *)te + l->sep_len;
                return CSV_OK;
            }
        }
        s = s + 1;
    }
    *why = "no known rrtype between query and answer";
    return CSV_E_TYPE;
}

/* ---- the same with a separator mask: lines up to 128 bytes ---------- */

/* On CPUs with AVX-512BW, a line of up to 128 bytes with a one- or
 * two-byte separator is compared 64 bytes at a time, giving a 128-bit mask
 * of the places where a separator starts (overlapping ones too: "|||"
 * holds "||" at 0 and 1) and a NUL test. With AVX512-VBMI2 the mask is
 * then turned into the list of the fields' bounds at once; a line with
 * exactly the layout's number of separators is cut from that list. Other
 * lines are cut with count-trailing/leading-zero steps, a fixed number per
 * field, with no loop over bytes whose exit the CPU would mispredict once a
 * field (that, not the scanning, is what the scanners cost). Numbers,
 * timestamps and IPv4 answers are read without such loops too. Other
 * lines, and layouts with no_simd, take the scanners. Both give every line
 * the same result; test_csv and fuzz_csv compare them. */
typedef unsigned __int128 mask128;

typedef struct line_masks {
    mask128 sep;   /* separator starts */
    int nsep;      /* separators; -1: not listed, else field j of the line */
    uint8_t start[16], end[16]; /* is line[start[j]..end[j]), j <= nsep */
} line_masks;

#define MASK_SLOW (-1) /* take the scanners */
#define MASK_NUL (-2)  /* the line holds a NUL byte */

#if defined(__x86_64__) && defined(__GNUC__) && !defined(PDNS_NO_SIMD)
#include <immintrin.h>

#define TARGET_X64 __attribute__((target("avx512f,avx512bw")))

TARGET_X64 static inline __attribute__((always_inline)) int
line_masks_body(const csv_layout *l, const char *line, size_t len, line_masks *m) {
    const __m512i c0 = _mm512_set1_epi8(l->sep[0]), c1 = _mm512_set1_epi8(l->sep[1]);
    const __m512i zero = _mm512_setzero_si512();
    __mmask64 in0 = len >= 64 ? ~(__mmask64)0 : ((__mmask64)1 << len) - 1;
    __mmask64 in1 = len <= 64 ? 0 : len >= 128 ? ~(__mmask64)0 : ((__mmask64)1 << (len - 64)) - 1;
    __m512i v0 = _mm512_maskz_loadu_epi8(in0, line);
    __m512i v1 = _mm512_maskz_loadu_epi8(in1, line + 64);
    if (_mm512_mask_cmpeq_epi8_mask(in0, v0, zero) | _mm512_mask_cmpeq_epi8_mask(in1, v1, zero))
        return MASK_NUL;
    mask128 s = (mask128)_mm512_mask_cmpeq_epi8_mask(in1, v1, c0) << 64 |
                _mm512_mask_cmpeq_epi8_mask(in0, v0, c0);
    if (l->sep_len == 2) { /* sep[0] followed by sep[1] */
        mask128 t = (mask128)_mm512_mask_cmpeq_epi8_mask(in1, v1, c1) << 64 |
                    _mm512_mask_cmpeq_epi8_mask(in0, v0, c1);
        s &= t >> 1;
    }
    m->sep = s;
    return 0;
}

/* The fields between the separators of m->sep, listed in m->start and
 * m->end, by compressing the byte indexes 0..127 under the mask
 * (AVX512-VBMI2): no loop, so no exit to mispredict. Only when they are
 * few enough to be the fields of a plain line and none overlaps another
 * (for those the general cut decides). */
#define TARGET_VBMI2 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vbmi2,popcnt")))

TARGET_VBMI2 static inline __attribute__((always_inline)) void
sep_positions_body(line_masks *m, size_t len, size_t sl) {
    uint64_t lo = (uint64_t)m->sep, hi = (uint64_t)(m->sep >> 64);
    int nlo = __builtin_popcountll(lo), n = nlo + __builtin_popcountll(hi);
    uint64_t overlap = (lo & (lo >> 1 | hi << 63)) | (hi & hi >> 1); /* "|||" */
    m->nsep = -1;
    if (n > 15 || (sl == 2 && overlap))
        return;
    const __m512i iota = _mm512_set_epi8(
        63, 62, 61, 60, 59, 58, 57, 56, 55, 54, 53, 52, 51, 50, 49, 48, 47, 46, 45, 44, 43, 42,
        41, 40, 39, 38, 37, 36, 35, 34, 33, 32, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20,
        19, 18, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    __m128i plo = _mm512_castsi512_si128(_mm512_maskz_compress_epi8(lo, iota));
    __m128i phi = _mm512_castsi512_si128(
        _mm512_maskz_compress_epi8(hi, _mm512_add_epi8(iota, _mm512_set1_epi8(64))));
    /* the second list goes after the first: expanded into bytes nlo.. */
    __m128i seps = _mm_or_si128(
        plo, _mm_maskz_expand_epi8((__mmask16)(((1u << (n - nlo)) - 1) << nlo), phi));
    /* field j ends where separator j starts, the last one at the line's
     * end, and starts after separator j - 1, the first one at 0 */
    __m128i end = _mm_mask_blend_epi8((__mmask16)(1u << n), seps, _mm_set1_epi8((char)len));
    __m128i start = _mm_maskz_add_epi8((__mmask16)0xfffe, _mm_bslli_si128(seps, 1),
                                       _mm_set1_epi8((char)sl));
    _mm_storeu_si128((__m128i *)m->start, start);
    _mm_storeu_si128((__m128i *)m->end, end);
    m->nsep = n;
}

/* The separator mask of a line, and with AVX512-VBMI2 its list of fields:
 * one function each, so that the mask stays in registers. */
TARGET_X64 static int line_masks_x64(const csv_layout *l, const char *line, size_t len,
                                     line_masks *m) {
    m->nsep = -1;
    return line_masks_body(l, line, len, m);
}

TARGET_VBMI2 static int line_masks_listed(const csv_layout *l, const char *line, size_t len,
                                          line_masks *m) {
    int rc = line_masks_body(l, line, len, m);
    m->nsep = -1;
    if (rc == 0)
        sep_positions_body(m, len, l->sep_len);
    return rc;
}

/* For each way four octets of 1 to 3 digits can be laid out (81), the
 * pshufb indexes that move each octet's digits, right-aligned, into bytes
 * 1..3 of a 32-bit slot of its own (0x80: a zero byte), and the slot bytes
 * that hold the first digit of an octet of two or three. */
static uint8_t octet_shuffle[81][16];
static uint16_t octet_lead[81];

static void octet_tables_init(void) {
    for (int i = 0; i < 81; i++) {
        int len[4] = {i / 27 % 3 + 1, i / 9 % 3 + 1, i / 3 % 3 + 1, i % 3 + 1}, at = 0;
        memset(octet_shuffle[i], 0x80, 16);
        for (int o = 0; o < 4; o++) {
            for (int k = 0; k < len[o]; k++)
                octet_shuffle[i][4 * o + 4 - len[o] + k] = (uint8_t)(at + k);
            if (len[o] > 1)
                octet_lead[i] |= (uint16_t)(1u << (4 * o + 4 - len[o]));
            at += len[o] + 1;
        }
    }
}

/* ipv4_parse's rule on s[0..n) (7 <= n <= 15) in a few vector steps: the
 * digits of each octet are moved into a 32-bit slot of their own by one
 * shuffle chosen by the octet lengths, and each slot's value is then one
 * multiply-add. */
__attribute__((target("avx512f,avx512bw,avx512vl,bmi,bmi2"))) static int
ipv4_x64(const char *s, unsigned n) {
    __mmask16 all = (__mmask16)((1u << n) - 1);
    __m128i x = _mm_maskz_loadu_epi8(all, s);
    __m128i d = _mm_sub_epi8(x, _mm_set1_epi8('0'));
    unsigned dig = _mm_mask_cmplt_epu8_mask(all, d, _mm_set1_epi8(10));
    unsigned dot = _mm_mask_cmpeq_epi8_mask(all, x, _mm_set1_epi8('.'));
    unsigned t1 = dot & (dot - 1), t2 = t1 & (t1 - 1), ends = 1 | 1u << (n - 1);
    /* three dots, none at an end or next to another; no four digits */
    if ((dig | dot) != all || !t2 || (t2 & (t2 - 1)) || (dot & (ends | dot >> 1)) ||
        (dig & dig >> 1 & dig >> 2 & dig >> 3))
        return -1;
    unsigned p1 = (unsigned)__builtin_ctz(dot), p2 = (unsigned)__builtin_ctz(t1);
    unsigned p3 = (unsigned)__builtin_ctz(t2);
    unsigned i = (p1 - 1) * 27 + (p2 - p1 - 2) * 9 + (p3 - p2 - 2) * 3 + (n - p3 - 2);
    __m128i v = _mm_shuffle_epi8(d, _mm_loadu_si128((const __m128i *)octet_shuffle[i]));
    /* bytes 0, h, t, o of a slot times 0, 100, 10, 1 */
    __m128i val = _mm_madd_epi16(_mm_maddubs_epi16(v, _mm_set1_epi32(0x010a6400)),
                                 _mm_set1_epi16(1));
    unsigned big = _mm_cmpgt_epi32_mask(val, _mm_set1_epi32(255));
    unsigned zero = _mm_mask_cmpeq_epi8_mask((__mmask16)octet_lead[i], v, _mm_setzero_si128());
    return big | zero ? -1 : 0;
}

/* "SSSSSSSSSS.fff..." (14 to 20 bytes: ten digits of seconds, three to
 * nine of fraction) in a few vector steps: one compare checks every
 * digit, and multiply-adds make pairs, then quads, of digits. */
__attribute__((target("avx512f,avx512bw,avx512vl"))) static int
time_x64(const char *s, unsigned n, int64_t *sec, int64_t *ms) {
    __mmask32 in = (__mmask32)((1u << n) - 1);
    __m256i d = _mm256_sub_epi8(_mm256_maskz_loadu_epi8(in, s), _mm256_set1_epi8('0'));
    unsigned dig = _mm256_mask_cmplt_epu8_mask(in, d, _mm256_set1_epi8(10));
    if (dig != (in & ~(1u << 10)) || s[10] != '.')
        return -1;
    /* 16-bit: d0d1 d2d3 d4d5 d6d7 d8d9, 100 * f0, 10 * f1 + f2 */
    __m128i p = _mm_maddubs_epi16(_mm256_castsi256_si128(d),
                                  _mm_setr_epi8(10, 1, 10, 1, 10, 1, 10, 1, 10, 1, 0, 100, 10, 1, 0, 0));
    /* 32-bit: d0..d3, d4..d7 */
    __m128i q = _mm_madd_epi16(p, _mm_setr_epi16(100, 1, 100, 1, 0, 0, 0, 0));
    *sec = (int64_t)_mm_cvtsi128_si32(q) * 1000000 + (int64_t)_mm_extract_epi32(q, 1) * 100 +
           _mm_extract_epi16(p, 4);
    *ms = _mm_extract_epi16(p, 5) + _mm_extract_epi16(p, 6);
    return 0;
}

static int masks_of(const csv_layout *l, const char *line, size_t len, line_masks *m) {
    if (l->no_simd || l->sep_len > 2 || len > 128 || !pdns_cpu_has(PDNS_CPU_AVX512BW))
        return MASK_SLOW;
    if (l->n_sep && pdns_cpu_has(PDNS_CPU_AVX512VBMI2))
        return line_masks_listed(l, line, len, m);
    return line_masks_x64(l, line, len, m);
}
#else
static int masks_of(const csv_layout *l, const char *line, size_t len, line_masks *m) {
    (void)l, (void)line, (void)len, (void)m;
    return MASK_SLOW;
}
static void octet_tables_init(void) {}
static int time_x64(const char *s, unsigned n, int64_t *sec, int64_t *ms) { /* never called */
    (void)s, (void)n, (void)sec, (void)ms;
    return -1;
}
static int ipv4_x64(const char *s, unsigned n) {
    (void)s, (void)n;
    return -1;
}
#endif

/* Both halves are counted and one is chosen, without a branch: which half
 * a field ends in varies from line to line, and a branch on it would be
 * mispredicted. */
static unsigned ctz128(mask128 m) { /* m != 0 */
    uint64_t lo = (uint64_t)m, hi = (uint64_t)(m >> 64), top = (uint64_t)1 << 63;
    unsigned cl = (unsigned)__builtin_ctzll(lo | top), ch = 64 + (unsigned)__builtin_ctzll(hi | top);
    return lo ? cl : ch;
}

static unsigned top128(mask128 m) { /* m != 0: the highest set bit */
    uint64_t lo = (uint64_t)m, hi = (uint64_t)(m >> 64);
    unsigned th = 127 - (unsigned)__builtin_clzll(hi | 1), tl = 63 - (unsigned)__builtin_clzll(lo | 1);
    return hi ? th : tl;
}

/* Bits at and above i (i <= 128). */
static mask128 from_bit(unsigned i) {
    return i >= 128 ? 0 : ~(mask128)0 << i;
}

/* The same as cut_ends_scan, from the mask. */
static enum csv_result cut_ends_mask(const csv_layout *l, char *line,
                                     size_t len, mask128 m, cut *c,
                                     const char **why) {
    unsigned p = 0, end = (unsigned)len, sl = (unsigned)l->sep_len;
    for (int i = 0; i < l->n_front; i++) {
        if (!m)
            goto few;
        unsigned q = ctz128(m);
        c->front[i].p = line + p;
        c->front[i].len = q - p;
        p = q + sl;
        m &= from_bit(p); /* nor one that overlaps this separator */
    }
    for (int i = 0; i < 3; i++) {
        if (!(l->fields & back_order[i]))
            continue;
        if (end < p + sl)
            goto few;
        m &= ~from_bit(end - sl + 1); /* starts that end by end */
        if (!m)
            goto few;
        unsigned q = top128(m);
        c->back[i].p = line + q + sl;
        c->back[i].len = end - q - sl;
        end = q;
    }
    c->mid = line + p;
    c->end = line + end;
    c->rest = end >= sl ? m & ~from_bit(end - sl + 1) : 0;
    return CSV_OK;
few:
    *why = "too few fields for the layout";
    return CSV_E_FIELDS;
}

/* pdns_rrtype_parse of line[t..te), the types sensors print most read with
 * one load when 8 bytes from t lie inside the line (below lim). */
static int rrtype_masked(const char *line, unsigned t, unsigned te, unsigned lim,
                         uint16_t *rt) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    unsigned n = te - t;
    if (n - 1 < 5 && t + 8 <= lim) {
        uint64_t x;
        memcpy(&x, line + t, 8);
        uint16_t hit = pdns_rrtype_common(x & (~(uint64_t)0 >> (64 - 8 * n)));
        if (hit) {
            *rt = hit;
            return 0;
        }
    }
#else
    (void)lim;
#endif
    return pdns_rrtype_parse(line + t, te - t, rt);
}

/* The same as split_middle_scan, from the separators left in c->rest. */
static enum csv_result split_middle_mask(const csv_layout *l, char *line,
                                         cut *c, pdns_record *r, char **ans,
                                         const char **why) {
    unsigned p = (unsigned)(c->mid - line), sl = (unsigned)l->sep_len;
    unsigned lim = (unsigned)(c->end - line);
    for (mask128 m = c->rest; m; m &= m - 1) {
        unsigned s = ctz128(m), t = s + sl;
        mask128 after = m & from_bit(t);
        if (l->fields & F_QLEN) {
            uint64_t ql;
            if (!after)
                continue;
            unsigned e = ctz128(after);
            if (parse_u64(line + t, e - t, &ql) == 0 && ql == s - p) {
                unsigned t2 = e + sl;
                mask128 after2 = m & from_bit(t2);
                if (!after2 || pdns_rrtype_parse(line + t2, ctz128(after2) - t2,
                                                 &r->rrtype) < 0) {
                    *why = "no known rrtype after the query length";
                    return CSV_E_TYPE;
                }
                r->rrname.p = line + p;
                r->rrname.len = s - p;
                *ans = line + ctz128(after2) + sl;
                return CSV_OK;
            }
        } else if (after) {
            unsigned te = ctz128(after);
            if (rrtype_masked(line, t, te, lim, &r->rrtype) == 0) {
                r->rrname.p = line + p;
                r->rrname.len = s - p;
                *ans = line + te + sl;
                return CSV_OK;
            }
        }
    }
    *why = "no known rrtype between query and answer";
    return CSV_E_TYPE;
}

/* Field j of a listed line. */
static inline pdns_str field_listed(char *line, const line_masks *m, unsigned j) {
    pdns_str f = {line + m->start[j], (size_t)(m->end[j] - m->start[j])};
    return f;
}

/* The cut of a line with exactly the layout's number of separators, from
 * their list (made only when none overlaps another): field j lies between
 * separators j - 1 and j, and the query is the field after the front ones,
 * as the general cut would find (the middle holds no other separator).
 * Only the fields the parse reads are filled in. Returns 0, or -1 to take
 * the general cut. */
static inline int cut_listed(const csv_layout *l, char *line,
                             const line_masks *m, cut *c) {
    unsigned nf = (unsigned)l->n_front, j = nf + 3;
    if (m->nsep != l->n_sep)
        return -1;
    c->front[0] = field_listed(line, m, 0);
    if (l->at_class)
        c->front[l->at_class] = field_listed(line, m, (unsigned)l->at_class);
    if (l->keep_addresses && l->at_client)
        c->front[l->at_client] = field_listed(line, m, (unsigned)l->at_client);
    if (l->keep_addresses && l->at_server)
        c->front[l->at_server] = field_listed(line, m, (unsigned)l->at_server);
    pdns_str q = field_listed(line, m, nf);
    c->type = field_listed(line, m, nf + 1);
    pdns_str a = field_listed(line, m, nf + 2);
    if (l->fields & F_ALEN)
        c->back[2] = field_listed(line, m, j++);
    if (l->fields & F_TTL)
        c->back[1] = field_listed(line, m, j++);
    if (l->fields & F_COUNT)
        c->back[0] = field_listed(line, m, j);
    c->mid = (char *)q.p;
    c->end = (char *)a.p + a.len;
    c->answer = (char *)a.p;
    return 0;
}

/* ---- numbers without a loop over their digits ------------------------ */

/* The 8 bytes that end at line + e with those before the last n (1..8)
 * replaced by '0': a field of n digits, right-aligned for digits8_word. */
static uint64_t right_aligned(const char *line, unsigned e, unsigned n) {
    uint64_t x, keep = ~(uint64_t)0 << (8 * (8 - n)); /* the field, high end */
    memcpy(&x, line + e - 8, 8);
    return (x & keep) | (0x3030303030303030ULL & ~keep);
}

/* parse_u64 of the field f of line: with one read of 8 bytes when it is 1
 * to 8 bytes long and ends at least 8 bytes into the line. */
static inline int number_masked(const char *line, pdns_str f, uint64_t *v) {
    unsigned n = (unsigned)f.len, e = (unsigned)(f.p - line) + n;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (n - 1 < 8 && e >= 8) {
        int64_t x = digits8_word(right_aligned(line, e, n));
        *v = (uint64_t)x;
        return x < 0 ? -1 : 0;
    }
#endif
    return parse_u64(f.p, f.len, v);
}

/* parse_time for "SSSSSSSSSS.fff..." at the start of a line (ten digits
 * of seconds, three to nine of fraction) in vector steps. Returns 0, or
 * -1 to let parse_time decide. */
static int time_masked(const csv_layout *l, const char *line, unsigned n, pdns_record *r) {
    int64_t sec, ms;
    if ((l->fields & F_TS_H) || n < 14 || n > 20 || !pdns_cpu_has(PDNS_CPU_AVX512VL) ||
        time_x64(line, n, &sec, &ms) < 0)
        return -1;
    r->has_ms = 1;
    r->time_first = r->time_last = sec;
    r->time_first_ms = r->time_last_ms = sec * 1000 + ms;
    return 0;
}

/* pdns_rdata_normalize, with A answers read in vector steps. */
static inline int rdata_masked(char *line, pdns_record *r, const char **why) {
    unsigned a = (unsigned)(r->rdata.p - line), n = (unsigned)r->rdata.len;
    if (r->rrtype == PDNS_RR_A && pdns_cpu_has(PDNS_CPU_AVX512VL)) {
        if (n - 7 <= 8 && ipv4_x64(line + a, n) == 0)
            return 0;
        *why = "A answer is not an IPv4 address";
        return -1;
    }
    return pdns_rdata_normalize(r, line + a, why);
}

/* The parse of a line, cut with the masks mk, or with the scanners when mk
 * is NULL. */
static enum csv_result
parse_fields(const csv_layout *l, char *line, size_t len, pdns_record *r, const char **why,
             const line_masks *mk) {
    cut c;
    uint64_t v;
    enum csv_result res;

    c.back[0].p = c.back[1].p = c.back[2].p = NULL;
    int listed = mk && cut_listed(l, line, mk, &c) == 0;
    if (!listed) {
        res = mk ? cut_ends_mask(l, line, len, mk->sep, &c, why)
                 : cut_ends_scan(l, line, len, &c, why);
        if (res != CSV_OK)
            return res;
    }
    pdns_str *front = c.front, *back = c.back;
    char *end = c.end;

    if ((!mk || time_masked(l, line, (unsigned)front[0].len, r) < 0) &&
        parse_time(l, front[0].p, front[0].len, r) < 0) {
        *why = "bad timestamp";
        return CSV_E_TIME;
    }
    r->client.len = r->server.len = 0;
    if (l->at_class) {
        const pdns_str *f = &front[l->at_class];
        if (!(f->len == 2 && f->p[0] == 'I' && f->p[1] == 'N')) {
            *why = "class is not IN";
            return CSV_E_CLASS;
        }
    }
    if (l->keep_addresses && l->at_client)
        r->client = front[l->at_client];
    if (l->keep_addresses && l->at_server)
        r->server = front[l->at_server];

    char *ans;
    if (listed) {
        unsigned t = (unsigned)(c.type.p - line);
        if (rrtype_masked(line, t, t + (unsigned)c.type.len, (unsigned)len, &r->rrtype) < 0) {
            *why = "no known rrtype between query and answer";
            return CSV_E_TYPE;
        }
        r->rrname.p = c.mid;
        r->rrname.len = (size_t)(c.type.p - l->sep_len - c.mid);
        ans = c.answer;
    } else {
        res = mk ? split_middle_mask(l, line, &c, r, &ans, why)
                 : split_middle_scan(l, &c, r, &ans, why);
        if (res != CSV_OK)
            return res;
    }
    r->rdata.p = ans;
    r->rdata.len = (size_t)(end - ans);

    r->count = 1;
    if (back[0].p) {
        if ((mk ? number_masked(line, back[0], &v) : parse_u64(back[0].p, back[0].len, &v)) < 0) {
            *why = "bad count";
            return CSV_E_NUMBER;
        }
        r->count = pdns_count_clamp(v);
    }
    r->ttl = 0;
    if (back[1].p) {
        if ((mk ? number_masked(line, back[1], &v) : parse_u64(back[1].p, back[1].len, &v)) < 0 ||
            v > UINT32_MAX) {
            *why = "bad ttl";
            return CSV_E_NUMBER;
        }
        r->ttl = (uint32_t)v;
    }
    if (back[2].p && parse_u64(back[2].p, back[2].len, &v) < 0) {
        *why = "bad answer length";
        return CSV_E_NUMBER;
    }

    if (pdns_name_canon((char *)r->rrname.p, &r->rrname.len, why) < 0)
        return CSV_E_NAME;

    if (r->rdata.len == 0) {
        *why = "empty answer";
        return CSV_E_RDATA;
    }
    r->is_error = (!back[1].p || r->ttl == 0) &&
                  is_rcode(r->rdata.p, r->rdata.len);
    if (r->is_error)
        return CSV_OK;
    if ((mk ? rdata_masked(line, r, why) : pdns_rdata_normalize(r, (char *)r->rdata.p, why)) < 0)
        return CSV_E_RDATA;
    return CSV_OK;
}

/* The default layout, without and with the addresses kept. */
static csv_layout json_layout[2];

static void json_layouts_init(void) {
    char err[128];
    for (int i = 0; i < 2; i++) {
        csv_layout_init(&json_layout[i], NULL, NULL, err, sizeof(err));
        json_layout[i].keep_addresses = i;
    }
}

/* A passivedns JSON line becomes the default-layout CSV line it stands
 * for, written over the JSON (always shorter: keys and quotes go, escapes
 * decode to fewer bytes), then parsed as such. */
static enum csv_result parse_json_line(const csv_layout *l, char *line, size_t len,
                                       pdns_record *r, const char **why) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    json_error_t e;
    json_t *o = json_loadb(line, len, JSON_REJECT_DUPLICATES, &e);
    const char *k[6] = {"client", "server", "class", "query", "type", "answer"};
    const char *v[6];
    enum csv_result res = CSV_E_JSON;
    *why = "not a passivedns JSON object (-j output)";
    if (!json_is_object(o) || !json_is_integer(json_object_get(o, "timestamp_s")))
        goto out;
    for (int i = 0; i < 6; i++) {
        json_t *x = json_object_get(o, k[i]);
        v[i] = json_is_string(x) ? json_string_value(x) : NULL;
        if (!v[i] && i >= 3) {
            *why = "passivedns JSON line without query, type or answer";
            goto out;
        }
        if (v[i] && strpbrk(v[i], "\r\n")) {
            *why = "passivedns JSON line with a line end inside a value";
            goto out;
        }
    }
    json_t *ms = json_object_get(o, "timestamp_ms"), *ttl = json_object_get(o, "ttl"),
           *cnt = json_object_get(o, "count");
    long long us = json_is_integer(ms) ? (long long)json_integer_value(ms) : 0;
    if (us < 0 || us > 999999) {
        *why = "passivedns JSON line with timestamp_ms outside 0-999999";
        goto out;
    }
    /* formatted aside (snprintf ends with a NUL, which the caller's buffer
     * may have no room for), then copied over the JSON */
    char *csv = malloc(len + 1);
    int n = csv ? snprintf(csv, len + 1, "%lld.%06lld||%s||%s||%s||%s||%s||%s||%lld||%lld",
                           (long long)json_integer_value(json_object_get(o, "timestamp_s")), us,
                           v[0] ? v[0] : "0.0.0.0", v[1] ? v[1] : "0.0.0.0",
                           v[2] ? v[2] : "IN", v[3], v[4], v[5],
                           json_is_integer(ttl) ? (long long)json_integer_value(ttl) : 0,
                           json_is_integer(cnt) ? (long long)json_integer_value(cnt) : 1)
                 : -1;
    if (n < 0 || (size_t)n > len) { /* the JSON is longer, but say so if not */
        free(csv);
        *why = "passivedns JSON line too short to rewrite in place";
        goto out;
    }
    memcpy(line, csv, (size_t)n);
    free(csv);
    pthread_once(&once, json_layouts_init);
    res = csv_parse_line(&json_layout[l->keep_addresses ? 1 : 0], line, (size_t)n, r, why);
out:
    json_decref(o);
    return res;
}

enum csv_result csv_parse_line(const csv_layout *l, char *line, size_t len,
                               pdns_record *r, const char **why) {
    line_masks lm;
    if (len && line[len - 1] == '\r')
        len--;
    if (len && line[0] == '{')
        return parse_json_line(l, line, len, r, why);
    int how = masks_of(l, line, len, &lm);
    if (how == MASK_NUL) {
        *why = "NUL byte in line";
        return CSV_E_BINARY;
    }
    return parse_fields(l, line, len, r, why, how == 0 ? &lm : NULL);
}
