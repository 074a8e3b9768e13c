/* csv.c - passivedns CSV line parser. See csv.h for the format. */
#include "csv.h"

#include <stdio.h>
#include <string.h>

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

static const char *result_names[CSV_RESULT_COUNT] = {
    "ok", "fields", "time", "class", "name", "type", "rdata", "number",
    "binary", "too_long"};

const char *csv_result_name(enum csv_result r) {
    return (unsigned)r < CSV_RESULT_COUNT ? result_names[r] : "unknown";
}

int csv_layout_init(csv_layout *l, const char *f, const char *sep, char *err,
                    size_t errlen) {
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
    for (size_t i = 0; i < sizeof(front_order) / sizeof(front_order[0]); i++)
        if (l->fields & front_order[i])
            l->n_front++;
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

/* "YYYY-MM-DD HH:MM:SS[.ffffff]", read as UTC. */
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

/* Eight ASCII digits at s as a number, or -1 when one is not a digit.
 * Three multiplies instead of a chain of eight (D. Lemire's SWAR). */
static int64_t digits8(const char *s) {
    uint64_t x;
    memcpy(&x, s, 8);
    x -= 0x3030303030303030ULL; /* a byte below '0' wraps to >= 0xd0 */
    if ((x | (x + 0x0606060606060606ULL)) & 0xf0f0f0f0f0f0f0f0ULL)
        return -1;
    x = x * 10 + (x >> 8); /* little endian: the first digit is byte 0 */
    x = (((x & 0x000000ff000000ffULL) * (100 + (1000000ULL << 32))) +
         (((x >> 16) & 0x000000ff000000ffULL) * (1 + (10000ULL << 32)))) >> 32;
    return (int64_t)x;
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
 * holds "||" at 0 and 1) and a NUL test. The fields are then cut with
 * count-trailing/leading-zero steps, a fixed number per field, with no loop
 * over bytes whose exit the CPU would mispredict once per field (that, not
 * the scanning, is what the scanners above cost). Other lines, and layouts
 * with no_simd, take the scanners. Both cut every line the same; test_csv
 * and fuzz_csv compare them. */
typedef unsigned __int128 mask128;

#define MASK_SLOW (-1) /* take the scanners */
#define MASK_NUL (-2)  /* the line holds a NUL byte */

#if defined(__x86_64__) && defined(__GNUC__) && !defined(PDNS_NO_SIMD)
#include <immintrin.h>

static int have_avx512bw(void) {
    static int have = -1;
    if (have < 0)
        have = __builtin_cpu_supports("avx512bw") ? 1 : 0;
    return have;
}

__attribute__((target("avx512f,avx512bw"))) static int
sep_mask_x64(const csv_layout *l, const char *line, size_t len, mask128 *m) {
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
    *m = s;
    return 0;
}

static int sep_mask(const csv_layout *l, const char *line, size_t len, mask128 *m) {
    if (l->no_simd || l->sep_len > 2 || len > 128 || !have_avx512bw())
        return MASK_SLOW;
    return sep_mask_x64(l, line, len, m);
}
#else
static int sep_mask(const csv_layout *l, const char *line, size_t len, mask128 *m) {
    (void)l, (void)line, (void)len, (void)m;
    return MASK_SLOW;
}
#endif

static unsigned ctz128(mask128 m) { /* m != 0 */
    uint64_t lo = (uint64_t)m;
    return lo ? (unsigned)__builtin_ctzll(lo) : 64 + (unsigned)__builtin_ctzll((uint64_t)(m >> 64));
}

static unsigned top128(mask128 m) { /* m != 0: the highest set bit */
    uint64_t hi = (uint64_t)(m >> 64);
    return hi ? 127 - (unsigned)__builtin_clzll(hi) : 63 - (unsigned)__builtin_clzll((uint64_t)m);
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

/* The same as split_middle_scan, from the separators left in c->rest. */
static enum csv_result split_middle_mask(const csv_layout *l, char *line,
                                         cut *c, pdns_record *r, char **ans,
                                         const char **why) {
    unsigned p = (unsigned)(c->mid - line), sl = (unsigned)l->sep_len;
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
            if (pdns_rrtype_parse(line + t, te - t, &r->rrtype) == 0) {
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

enum csv_result csv_parse_line(const csv_layout *l, char *line, size_t len,
                               pdns_record *r, const char **why) {
    mask128 m = 0;
    cut c;
    uint64_t v;
    enum csv_result res;

    if (len && line[len - 1] == '\r')
        len--;
    c.back[0].p = c.back[1].p = c.back[2].p = NULL;
    int how = sep_mask(l, line, len, &m);
    if (how == MASK_NUL) {
        *why = "NUL byte in line";
        return CSV_E_BINARY;
    }
    res = how == 0 ? cut_ends_mask(l, line, len, m, &c, why)
                   : cut_ends_scan(l, line, len, &c, why);
    if (res != CSV_OK)
        return res;
    pdns_str *front = c.front, *back = c.back;
    char *end = c.end;

    if (parse_time(l, front[0].p, front[0].len, r) < 0) {
        *why = "bad timestamp";
        return CSV_E_TIME;
    }
    int fi = 1;
    r->client.len = r->server.len = 0;
    for (size_t i = 0; i < sizeof(front_order) / sizeof(front_order[0]); i++) {
        if (!(l->fields & front_order[i]))
            continue;
        pdns_str *f = &front[fi++];
        if (front_order[i] == F_CLASS &&
            !(f->len == 2 && f->p[0] == 'I' && f->p[1] == 'N')) {
            *why = "class is not IN";
            return CSV_E_CLASS;
        }
        if (l->keep_addresses && front_order[i] == F_CLIENT)
            r->client = *f;
        if (l->keep_addresses && front_order[i] == F_SERVER)
            r->server = *f;
    }

    char *ans;
    res = how == 0 ? split_middle_mask(l, line, &c, r, &ans, why)
                   : split_middle_scan(l, &c, r, &ans, why);
    if (res != CSV_OK)
        return res;
    r->rdata.p = ans;
    r->rdata.len = (size_t)(end - ans);

    r->count = 1;
    if (back[0].p) {
        if (parse_u64(back[0].p, back[0].len, &v) < 0) {
            *why = "bad count";
            return CSV_E_NUMBER;
        }
        r->count = v;
    }
    r->ttl = 0;
    if (back[1].p) {
        if (parse_u64(back[1].p, back[1].len, &v) < 0 || v > UINT32_MAX) {
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
    if (pdns_rdata_normalize(r, (char *)r->rdata.p, why) < 0)
        return CSV_E_RDATA;
    return CSV_OK;
}
