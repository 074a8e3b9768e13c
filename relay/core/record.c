/* record.c - helpers for the record model: names, uuids, copies. */
#include "record.h"

#include "cpu.h"
#include "rrtype.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

const char *pdns_source_name(enum pdns_source s) {
    static const char *names[PDNS_SRC_COUNT] = {"d4", "queue", "partner",
                                                "file"};
    return (unsigned)s < PDNS_SRC_COUNT ? names[s] : "unknown";
}

/* The byte-by-byte check of pdns_name_canon from s[i] on (s[i - 1], if
 * any, is not a backslash). A backslash returns 2 unless escapes are
 * known to be in their one spelling already (esc_ok): the caller then
 * gives them that first (canon_escapes). */
static int canon_bytes_esc(char *s, size_t i, size_t len, const char **why, int esc_ok) {
    for (; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 'A' && c <= 'Z') {
            s[i] = (char)(c + 32);
        } else if (c <= ' ' || c == 0x7f) {
            *why = "name has a control character or space";
            return -1;
        } else if (c >= 0x80) {
            *why = "name has a raw non-ASCII byte (names are ASCII: IDNs as "
                   "punycode, other bytes as \\DDD escapes)";
            return -1;
        } else if (c == '\\') {
            if (!esc_ok)
                return 2;
            i++;
        } else if (c == '.' && i + 1 < len && s[i + 1] == '.') {
            *why = "name has an empty label";
            return -1;
        }
    }
    return 0;
}

static int canon_bytes(char *s, size_t i, size_t len, const char **why) {
    return canon_bytes_esc(s, i, len, why, 0);
}

#define ONES UINT64_C(0x0101010101010101)
#define HIGHS UINT64_C(0x8080808080808080)

#if defined(__x86_64__) && defined(__GNUC__) && !defined(PDNS_NO_SIMD)
#include <immintrin.h>

/* A name of up to 64 bytes in one AVX-512 step: returns 1 when it holds a
 * control byte, space, DEL or backslash (the caller's byte rules decide
 * those), else folds upper case in place and returns 0, or -1 with why
 * when two dots touch. */
__attribute__((target("avx512f,avx512bw"))) static int
canon_x64(char *s, size_t len, const char **why) {
    __mmask64 in = len >= 64 ? ~(__mmask64)0 : ((__mmask64)1 << len) - 1;
    __m512i v = _mm512_maskz_loadu_epi8(in, s);
    __mmask64 odd = _mm512_mask_cmple_epu8_mask(in, v, _mm512_set1_epi8(' ')) |
                    _mm512_mask_cmpge_epu8_mask(in, v, _mm512_set1_epi8((char)0x80)) |
                    _mm512_mask_cmpeq_epi8_mask(in, v, _mm512_set1_epi8(0x7f)) |
                    _mm512_mask_cmpeq_epi8_mask(in, v, _mm512_set1_epi8('\\'));
    if (odd)
        return 1;
    __mmask64 dot = _mm512_mask_cmpeq_epi8_mask(in, v, _mm512_set1_epi8('.'));
    if (dot & (dot >> 1)) {
        *why = "name has an empty label";
        return -1;
    }
    /* 'A'..'Z': v - 'A' < 26, unsigned */
    __mmask64 up = _mm512_mask_cmplt_epu8_mask(
        in, _mm512_sub_epi8(v, _mm512_set1_epi8('A')), _mm512_set1_epi8(26));
    if (up)
        _mm512_mask_storeu_epi8(s, up, _mm512_add_epi8(v, _mm512_set1_epi8(0x20)));
    return 0;
}

/* 1 when s[0..n) is an IPv6 address already written as inet_ntop writes
 * it (RFC 5952: lower-case hex, no leading zeros, the first longest run of
 * two or more zero groups as "::", no IPv4 form), from byte masks: most
 * sensors print addresses so, and then the text is kept as it is instead
 * of parsed and printed again. 0 says nothing: pdns_ipv6_parse and
 * fmt_ipv6 decide. */
__attribute__((target("avx512f,avx512bw,bmi,bmi2,popcnt"))) static int
ipv6_canonical_x64(const char *s, size_t n) {
    if (n < 2 || n > 39)
        return 0;
    __mmask64 all = ((__mmask64)1 << n) - 1;
    __m512i v = _mm512_maskz_loadu_epi8(all, s);
    uint64_t colon = _mm512_mask_cmpeq_epi8_mask(all, v, _mm512_set1_epi8(':'));
    uint64_t zero = _mm512_mask_cmpeq_epi8_mask(all, v, _mm512_set1_epi8('0'));
    uint64_t hex = _mm512_mask_cmplt_epu8_mask(all, _mm512_sub_epi8(v, _mm512_set1_epi8('0')),
                                               _mm512_set1_epi8(10)) |
                   _mm512_mask_cmplt_epu8_mask(all, _mm512_sub_epi8(v, _mm512_set1_epi8('a')),
                                               _mm512_set1_epi8(6));
    uint64_t dc = colon & colon >> 1;          /* where a "::" starts */
    uint64_t start = hex & ~(hex << 1);        /* where a group starts */
    uint64_t zg = start & zero & ~(hex >> 1);  /* groups that are "0" */
    int groups = __builtin_popcountll(start), k = dc ? 8 - groups : 0; /* "::" stands for k */
    if ((colon | hex) != all || (dc & (dc - 1)) || /* one "::" at most, no ":::" */
        (hex & hex >> 1 & hex >> 2 & hex >> 3 & hex >> 4) || /* 5 digits */
        ((colon & 1) && !(dc & 1)) ||                       /* one ':' leads */
        ((colon >> (n - 1) & 1) && !(dc >> (n - 2) & 1)) || /* one ':' ends */
        (dc ? k < 2 : groups != 8) ||
        (start & zero & hex >> 1) ||                        /* a leading zero */
        (zg & zg >> 2) ||                                   /* "0:0": a run left */
        (zg & (dc >> 1 | dc << 2)) ||                       /* "0::" or "::0" */
        ((dc & 1) && (k == 5 || k == 6)))                   /* maybe ::[ffff:]a.b.c.d */
        return 0;
    return 1;
}
#else
static int canon_x64(char *s, size_t len, const char **why) {
    (void)s, (void)len, (void)why;
    return 1;
}
static int ipv6_canonical_x64(const char *s, size_t n) {
    (void)s, (void)n;
    return 0;
}
#endif

/* The checks of pdns_name_canon from the first byte on, eight bytes at a
 * time (SWAR) while they hold nothing but ordinary bytes: upper case is
 * folded, ".." looked for; a word with a space, a control byte, DEL or a
 * backslash goes to the byte loop. Apart, so that the common path above
 * saves no registers. */
static __attribute__((noinline)) int canon_swar(char *s, size_t len, const char **why) {
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        if (i && s[i - 1] == '.' && s[i] == '.') {
            *why = "name has an empty label";
            return -1;
        }
        memcpy(&w, s + i, 8);
        uint64_t low = (w - ONES * 0x21) & ~w;               /* < 0x21 */
        uint64_t del = (w ^ (ONES * 0x7f)), bs = (w ^ (ONES * 0x5c));
        del = (del - ONES) & ~del;                            /* == 0x7f */
        bs = (bs - ONES) & ~bs;                               /* == '\\' */
        if ((low | del | bs | w) & HIGHS) /* w: a byte >= 0x80 */
            return canon_bytes(s, i, len, why);
        uint64_t dot = w ^ (ONES * 0x2e);
        dot = (dot - ONES) & ~dot & HIGHS;                    /* == '.' */
        /* ".." inside the word: the byte loop says (the zero-byte test
         * can flag a '/' after a '.', never miss a pair) */
        if (dot & (dot >> 8))
            return canon_bytes(s, i, len, why);
        uint64_t h7 = w & ~HIGHS;
        uint64_t ge_a = h7 + ONES * (0x80 - 'A');             /* >= 'A' */
        uint64_t gt_z = h7 + ONES * (0x7f - 'Z');             /* >  'Z' */
        uint64_t up = ge_a & ~gt_z & ~w & HIGHS;
        w |= up >> 2;                                         /* + 0x20 */
        memcpy(s + i, &w, 8);
    }
    if (i && i < len && s[i - 1] == '.' && s[i] == '.') {
        *why = "name has an empty label";
        return -1;
    }
    return canon_bytes(s, i, len, why);
}

/* One spelling for a name's presentation escapes (RFC 1035 \X and \DDD):
 * a byte that needs no escape is written as itself, '.' and '\' as "\."
 * and "\\", every other byte (below 0x21, 0x7f, 0x80 and above) as \DDD.
 * Rewritten in place, never longer: a "\X" of a byte that needs \DDD is
 * refused. So "tes\116" is "test", and one name has one spelling. */
static int canon_escapes(char *s, size_t *lenp, const char **why) {
    size_t len = *lenp, o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned c = (unsigned char)s[i], v;
        if (c != '\\') {
            s[o++] = (char)c;
            continue;
        }
        if (i + 1 >= len) {
            *why = "name ends in a lone backslash";
            return -1;
        }
        int ddd = s[i + 1] >= '0' && s[i + 1] <= '9';
        if (ddd) {
            if (i + 3 >= len || !(s[i + 2] >= '0' && s[i + 2] <= '9') ||
                !(s[i + 3] >= '0' && s[i + 3] <= '9') ||
                (v = (unsigned)((s[i + 1] - '0') * 100 + (s[i + 2] - '0') * 10 +
                                (s[i + 3] - '0'))) > 255) {
                *why = "name has a bad \\DDD escape (three digits, at most 255)";
                return -1;
            }
            i += 3;
        } else {
            v = (unsigned char)s[++i];
        }
        if (v == '.' || v == '\\') {
            s[o++] = '\\';
            s[o++] = (char)v;
        } else if (v < 0x21 || v >= 0x7f) {
            if (!ddd) {
                *why = "name escapes a space, control or non-ASCII byte as \\X; "
                       "it is written \\DDD";
                return -1;
            }
            s[o++] = '\\';
            s[o++] = (char)('0' + v / 100);
            s[o++] = (char)('0' + v / 10 % 10);
            s[o++] = (char)('0' + v % 10);
        } else {
            s[o++] = (char)v;
        }
    }
    *lenp = o;
    return 0;
}

/* A name that could exist on the wire: labels of at most 63 bytes, at
 * most 255 bytes in all (each escape is one byte). */
static int check_wire_length(const char *s, size_t len, const char **why) {
    size_t wire = 1, label = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '.') {
            wire += label + 1;
            label = 0;
            continue;
        }
        if (s[i] == '\\')
            i += s[i + 1] >= '0' && s[i + 1] <= '9' ? 3 : 1;
        if (++label > 63) {
            *why = "name has a label longer than 63 bytes";
            return -1;
        }
    }
    wire += label + 1;
    if (wire > 255) {
        *why = "name longer than 255 bytes on the wire";
        return -1;
    }
    return 0;
}

int pdns_name_canon(char *s, size_t *lenp, const char **why) {
    size_t len = *lenp;
    if (len == 0) {
        *why = "empty name";
        return -1;
    }
    if (len > 1 && s[len - 1] == '.' && s[len - 2] == '.' && (len < 3 || s[len - 3] != '\\')) {
        *why = "name has an empty label"; /* "name..", ".." */
        return -1;
    }
    if (len > 1 && s[len - 1] == '.' && s[len - 2] != '\\')
        len--;
    if (len > 1024) {
        *why = "name longer than 1024 bytes";
        return -1;
    }
    *lenp = len;
    if (len == 1 && s[0] == '.')
        return 0;
    if (s[0] == '.') {
        *why = "name has an empty label";
        return -1;
    }
    if (len <= 64 && pdns_cpu_has(PDNS_CPU_AVX512BW)) {
        int rc = canon_x64(s, len, why);
        if (rc <= 0)
            return rc < 0 || len <= 63 ? rc : check_wire_length(s, len, why);
    }
    int rc = canon_swar(s, len, why);
    if (rc == 2) { /* escapes (rare): their one spelling, then the checks */
        if (canon_escapes(s, &len, why) < 0 || canon_bytes_esc(s, 0, len, why, 1) < 0)
            return -1;
        *lenp = len;
        return check_wire_length(s, len, why);
    }
    if (rc < 0)
        return -1;
    return len > 63 ? check_wire_length(s, len, why) : 0;
}

static char *copy_str(char *dst, pdns_str *s) {
    if (s->len)
        memcpy(dst, s->p, s->len);
    dst[s->len] = '\0';
    s->p = dst;
    return dst + s->len + 1;
}

pdns_record *pdns_record_dup(const pdns_record *r) {
    size_t need = sizeof(*r) + r->rrname.len + r->rdata.len +
                  r->bailiwick.len + r->client.len + r->server.len +
                  r->sensor_id.len + r->origin.len + 7;
    pdns_record *c = malloc(need);
    if (!c)
        return NULL;
    *c = *r;
    char *p = (char *)(c + 1);
    p = copy_str(p, &c->rrname);
    p = copy_str(p, &c->rdata);
    p = copy_str(p, &c->bailiwick);
    p = copy_str(p, &c->client);
    p = copy_str(p, &c->server);
    p = copy_str(p, &c->sensor_id);
    copy_str(p, &c->origin);
    return c;
}

void pdns_uuid_hex(const uint8_t uuid[16], char out[33]) {
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        out[2 * i] = hex[uuid[i] >> 4];
        out[2 * i + 1] = hex[uuid[i] & 15];
    }
    out[32] = '\0';
}

int pdns_hexval(char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int pdns_uuid_parse(const char *s, uint8_t uuid[16]) {
    int n = 0;
    size_t len = strlen(s);
    if (len != 32 && len != 36)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (len == 36 && (i == 8 || i == 13 || i == 18 || i == 23)) {
            if (s[i] != '-')
                return -1;
            continue;
        }
        int hi = pdns_hexval(s[i]), lo = i + 1 < len ? pdns_hexval(s[i + 1]) : -1;
        if (hi < 0 || lo < 0 || n >= 16)
            return -1;
        uuid[n++] = (uint8_t)(hi << 4 | lo);
        i++;
    }
    return n == 16 ? 0 : -1;
}

/* Dotted-quad IPv4, each octet 0-255 without leading zeros (inet_pton's
 * rule: "010" could be octal), into out when out is not NULL. Returns 0,
 * or -1. */
static int ipv4_parse(const char *s, size_t len, uint8_t *out) {
    int octets = 0;
    size_t i = 0;
    while (i < len && octets < 4) {
        unsigned v = 0;
        size_t start = i;
        while (i < len && s[i] >= '0' && s[i] <= '9' && i - start < 4)
            v = v * 10 + (unsigned)(s[i++] - '0');
        if (i == start || i - start > 3 || v > 255)
            return -1;
        if (s[start] == '0' && i - start > 1)
            return -1;
        if (out)
            out[octets] = (uint8_t)v;
        octets++;
        if (octets < 4) {
            if (i >= len || s[i] != '.')
                return -1;
            i++;
        }
    }
    return octets == 4 && i == len ? 0 : -1;
}

static int hex_value(char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* inet_pton(AF_INET6) on a counted string, without the copy and NUL it
 * needs: groups of 1-4 hex digits, one "::" at most, a dotted quad in
 * place of the last two groups. test_csv checks it against inet_pton. */
int pdns_ipv6_parse(const char *s, size_t len, uint8_t out[16]) {
    uint8_t tmp[16] = {0};
    size_t tp = 0, i = 0, curtok, digits = 0, colonp = SIZE_MAX;
    unsigned val = 0;
    if (len == 0)
        return -1;
    if (s[0] == ':' && (len < 2 || s[++i] != ':')) /* a leading "::" only */
        return -1;
    curtok = i;
    while (i < len) {
        char ch = s[i++];
        int d = hex_value(ch);
        if (d >= 0) {
            if (digits == 4)
                return -1;
            val = val << 4 | (unsigned)d;
            digits++;
            continue;
        }
        if (ch == ':') {
            curtok = i;
            if (digits == 0) {
                if (colonp != SIZE_MAX)
                    return -1;
                colonp = tp;
                continue;
            }
            if (i == len || tp + 2 > 16)
                return -1;
            tmp[tp++] = (uint8_t)(val >> 8);
            tmp[tp++] = (uint8_t)val;
            digits = 0;
            val = 0;
            continue;
        }
        if (ch == '.' && tp + 4 <= 16 && ipv4_parse(s + curtok, len - curtok, tmp + tp) == 0) {
            tp += 4;
            digits = 0;
            break;
        }
        return -1;
    }
    if (digits > 0) {
        if (tp + 2 > 16)
            return -1;
        tmp[tp++] = (uint8_t)(val >> 8);
        tmp[tp++] = (uint8_t)val;
    }
    if (colonp != SIZE_MAX) { /* "::" stands for the missing zero groups */
        if (tp == 16)
            return -1;
        size_t n = tp - colonp;
        memmove(tmp + 16 - n, tmp + colonp, n);
        memset(tmp + colonp, 0, 16 - n - colonp);
        tp = 16;
    }
    if (tp != 16)
        return -1;
    memcpy(out, tmp, 16);
    return 0;
}

static char *fmt_u8(char *o, unsigned v) {
    if (v >= 100)
        *o++ = (char)('0' + v / 100);
    if (v >= 10)
        *o++ = (char)('0' + v / 10 % 10);
    *o++ = (char)('0' + v % 10);
    return o;
}

/* The text inet_ntop gives (RFC 5952: lower-case hex, no leading zeros,
 * the first longest run of two or more zero groups as "::", the IPv4
 * forms ::a.b.c.d and ::ffff:a.b.c.d), without its sprintf calls: this
 * runs for every AAAA record. Returns the length written (at most 45). */
static size_t fmt_ipv6(const unsigned char b[16], char *out) {
    static const char hex[] = "0123456789abcdef";
    unsigned w[8];
    int best = -1, best_len = 0, cur = -1, cur_len = 0;
    char *o = out;
    for (int i = 0; i < 8; i++) {
        w[i] = (unsigned)b[2 * i] << 8 | b[2 * i + 1];
        if (w[i] == 0) {
            if (cur < 0)
                cur = i, cur_len = 0;
            if (++cur_len > best_len)
                best = cur, best_len = cur_len;
        } else {
            cur = -1;
        }
    }
    if (best_len < 2)
        best = -1;
    for (int i = 0; i < 8; i++) {
        if (best >= 0 && i >= best && i < best + best_len) {
            if (i == best)
                *o++ = ':';
            continue;
        }
        if (i)
            *o++ = ':';
        if (i == 6 && best == 0 &&
            (best_len == 6 || (best_len == 5 && w[5] == 0xffff))) {
            for (int k = 12; k < 16; k++) {
                o = fmt_u8(o, b[k]);
                if (k < 15)
                    *o++ = '.';
            }
            return (size_t)(o - out);
        }
        int started = 0;
        for (int sh = 12; sh >= 0; sh -= 4) {
            unsigned d = w[i] >> sh & 15;
            if (d || started || sh == 0) {
                *o++ = hex[d];
                started = 1;
            }
        }
    }
    if (best >= 0 && best + best_len == 8)
        *o++ = ':';
    return (size_t)(o - out);
}

/* AAAA: validated and rewritten in canonical text. */
static int canon_ipv6(pdns_record *r) {
    uint8_t bin[16];
    if (pdns_cpu_has(PDNS_CPU_AVX512BW) && ipv6_canonical_x64(r->rdata.p, r->rdata.len)) {
        memcpy(r->addr_buf, r->rdata.p, r->rdata.len);
        r->rdata.p = r->addr_buf;
        return 0;
    }
    if (pdns_ipv6_parse(r->rdata.p, r->rdata.len, bin) < 0)
        return -1;
    r->rdata.len = fmt_ipv6(bin, r->addr_buf);
    r->rdata.p = r->addr_buf;
    return 0;
}

/* The master-file forms (RFC 1035) of MX, SRV and SOA, as COF exports
 * (CIRCL, DNSDB, the COF draft) carry them: the numbers and names in
 * their places. */
static const struct {
    uint16_t type;
    uint8_t fields;
    uint8_t name_mask;   /* which fields are names */
    uint8_t target;      /* the field the rdata index keys on */
    const char *why;
} master[] = {
    {PDNS_RR_MX, 2, 0x2, 1, "MX answer is neither a name nor PREFERENCE EXCHANGE"},
    {PDNS_RR_SRV, 4, 0x8, 3, "SRV answer is neither a name nor PRIORITY WEIGHT PORT TARGET"},
    {PDNS_RR_SOA, 7, 0x3, 0, "SOA answer is neither a name nor MNAME RNAME SERIAL REFRESH "
                             "RETRY EXPIRE MINIMUM"},
};

static int master_of(uint16_t t) {
    for (int i = 0; i < 3; i++)
        if (master[i].type == t)
            return i;
    return -1;
}

/* Canonicalises a master-file rdata in place (its names as owner names
 * are, its numbers checked): shrinks only. Returns 0, or -1. */
static int master_canon(int m, char *rdata, size_t *lenp, const char **why) {
    size_t len = *lenp, o = 0, i = 0;
    int f = 0;
    /* token by token, each moved left to where it goes and made canonical
     * there: a name only shrinks */
    while (i < len) {
        size_t s = i;
        while (i < len && rdata[i] != ' ')
            i++;
        size_t tl = i - s;
        if (!tl || f >= master[m].fields)
            goto bad;
        if (o)
            rdata[o++] = ' ';
        char *tok = memmove(rdata + o, rdata + s, tl);
        if (master[m].name_mask >> f & 1) {
            const char *w;
            if (pdns_name_canon(tok, &tl, &w) < 0)
                goto bad;
        } else {
            uint64_t v = 0;
            for (size_t k = 0; k < tl; k++) {
                if (tok[k] < '0' || tok[k] > '9' || v > 0xffffffffULL)
                    goto bad;
                v = v * 10 + (uint64_t)(tok[k] - '0');
            }
            if (v > (master[m].type == PDNS_RR_SOA ? 0xffffffffULL : 0xffffULL))
                goto bad;
        }
        o += tl;
        f++;
        i++; /* the space, if any */
    }
    if (f != master[m].fields)
        goto bad;
    *lenp = o;
    return 0;
bad:
    *why = master[m].why;
    return -1;
}

int pdns_rdata_field_is_name(uint16_t rrtype, int field) {
    int m = master_of(rrtype);
    return m >= 0 && field < master[m].fields && (master[m].name_mask >> field & 1);
}

size_t pdns_rdata_target(uint16_t rrtype, const char *rdata, size_t len, const char **t) {
    *t = rdata;
    if (!pdns_rrtype_rdata_is_name(rrtype))
        return 0;
    const char *sp = memchr(rdata, ' ', len);
    if (!sp)
        return len; /* a name alone */
    int m = master_of(rrtype);
    if (m < 0)
        return 0;
    const char *p = rdata, *end = rdata + len;
    for (int f = 0; f < master[m].target; f++) {
        p = memchr(p, ' ', (size_t)(end - p));
        if (!p)
            return 0;
        p++;
    }
    const char *e = memchr(p, ' ', (size_t)(end - p));
    *t = p;
    return (size_t)((e ? e : end) - p);
}

int pdns_rdata_normalize(pdns_record *r, char *rdata, const char **why) {
    if (r->rdata.len == 0) {
        *why = "empty answer";
        return -1;
    }
    if (r->rrtype == PDNS_RR_A) {
        if (ipv4_parse(rdata, r->rdata.len, NULL) < 0) {
            *why = "A answer is not an IPv4 address";
            return -1;
        }
    } else if (r->rrtype == PDNS_RR_AAAA) {
        if (canon_ipv6(r) < 0) {
            *why = "AAAA answer is not an IPv6 address";
            return -1;
        }
    } else if (pdns_rrtype_rdata_is_name(r->rrtype)) {
        int m = master_of(r->rrtype);
        if (m >= 0 && memchr(rdata, ' ', r->rdata.len))
            return master_canon(m, rdata, &r->rdata.len, why);
        if (pdns_name_canon(rdata, &r->rdata.len, why) < 0) {
            *why = "answer is not a domain name";
            return -1;
        }
    }
    return 0;
}
