/* rrtype.c - the IANA RR type table. Lookup by number is an array index;
 * lookup by name is a linear scan of ~90 short strings, which is cheaper
 * than hashing for the handful of names real traffic carries (the common
 * ones come first). */
#include "rrtype.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

struct rrtype_entry {
    uint16_t num;
    const char *name;
};

/* Common types first: the parser finds them in one or two compares. */
static const struct rrtype_entry rrtypes[] = {
    {1, "A"}, {28, "AAAA"}, {5, "CNAME"}, {12, "PTR"}, {2, "NS"}, {15, "MX"},
    {16, "TXT"}, {33, "SRV"}, {6, "SOA"}, {39, "DNAME"}, {65, "HTTPS"},
    {64, "SVCB"}, {257, "CAA"}, {99, "SPF"}, {35, "NAPTR"}, {44, "SSHFP"},
    {13, "HINFO"}, {29, "LOC"}, {17, "RP"}, {52, "TLSA"}, {43, "DS"},
    {48, "DNSKEY"}, {46, "RRSIG"}, {47, "NSEC"}, {50, "NSEC3"},
    {51, "NSEC3PARAM"}, {3, "MD"}, {4, "MF"}, {7, "MB"}, {8, "MG"}, {9, "MR"},
    {10, "NULL"}, {11, "WKS"}, {14, "MINFO"}, {18, "AFSDB"}, {19, "X25"},
    {20, "ISDN"}, {21, "RT"}, {22, "NSAP"}, {23, "NSAP-PTR"}, {24, "SIG"},
    {25, "KEY"}, {26, "PX"}, {27, "GPOS"}, {30, "NXT"}, {31, "EID"},
    {32, "NIMLOC"}, {34, "ATMA"}, {36, "KX"}, {37, "CERT"}, {38, "A6"},
    {40, "SINK"}, {41, "OPT"}, {42, "APL"}, {45, "IPSECKEY"}, {49, "DHCID"},
    {53, "SMIMEA"}, {55, "HIP"}, {56, "NINFO"}, {57, "RKEY"}, {58, "TALINK"},
    {59, "CDS"}, {60, "CDNSKEY"}, {61, "OPENPGPKEY"}, {62, "CSYNC"},
    {63, "ZONEMD"}, {66, "DSYNC"}, {100, "UINFO"}, {101, "UID"}, {102, "GID"},
    {103, "UNSPEC"}, {104, "NID"}, {105, "L32"}, {106, "L64"}, {107, "LP"},
    {108, "EUI48"}, {109, "EUI64"}, {249, "TKEY"}, {250, "TSIG"},
    {251, "IXFR"}, {252, "AXFR"}, {253, "MAILB"}, {254, "MAILA"}, {255, "ANY"},
    {256, "URI"}, {258, "AVC"}, {259, "DOA"}, {260, "AMTRELAY"},
    {261, "RESINFO"}, {262, "WALLET"}, {32768, "TA"}, {32769, "DLV"},
};

#define RRTYPES_N (sizeof(rrtypes) / sizeof(rrtypes[0]))

static const char *by_num[65536];
/* Names of up to 8 bytes packed into an integer, upper case, so that the
 * parser's lookup is integer compares (common types first). */
static uint64_t packed[RRTYPES_N];
static int tables_ready;

/* Packs up to 8 bytes, upper-casing letters; 0 when s is longer. */
static uint64_t pack(const char *s, size_t len) {
    uint64_t v = 0;
    if (len > 8)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 'a' && c <= 'z')
            c -= 32;
        v |= (uint64_t)c << (8 * i);
    }
    return v;
}

static void tables_init(void) {
    for (size_t i = 0; i < RRTYPES_N; i++) {
        by_num[rrtypes[i].num] = rrtypes[i].name;
        packed[i] = pack(rrtypes[i].name, strlen(rrtypes[i].name));
    }
    tables_ready = 1;
}

const char *pdns_rrtype_name(uint16_t t) {
    if (!tables_ready)
        tables_init();
    return by_num[t];
}

static int parse_u16(const char *s, size_t len, uint16_t *t) {
    unsigned long v = 0;
    if (len == 0 || len > 5)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (unsigned long)(s[i] - '0');
    }
    if (v > 65535)
        return -1;
    *t = (uint16_t)v;
    return 0;
}

int pdns_rrtype_parse(const char *s, size_t len, uint16_t *t) {
    if (len == 0 || len > 16)
        return -1;
    if (s[0] >= '0' && s[0] <= '9')
        return parse_u16(s, len, t);
    uint64_t key = 0;
    uint16_t hit = 0;
    if (len <= 8) {
        memcpy(&key, s, len); /* on a big-endian CPU no key matches: the table decides */
        hit = pdns_rrtype_common(key);
    }
    if (hit) {
        *t = hit;
        return 0;
    }
    if (!tables_ready)
        tables_init();
    uint64_t k = pack(s, len);
    for (size_t i = 0; i < RRTYPES_N; i++) {
        if (k ? packed[i] == k
              : (strncasecmp(rrtypes[i].name, s, len) == 0 &&
                 rrtypes[i].name[len] == '\0')) {
            *t = rrtypes[i].num;
            return 0;
        }
    }
    if (len > 4 && strncasecmp(s, "TYPE", 4) == 0)
        return parse_u16(s + 4, len - 4, t);
    return -1;
}

size_t pdns_rrtype_format(uint16_t t, char *buf, size_t size) {
    const char *n = pdns_rrtype_name(t);
    if (n) {
        size_t l = strlen(n);
        if (l >= size)
            return 0;
        memcpy(buf, n, l + 1);
        return l;
    }
    int w = snprintf(buf, size, "%u", t);
    return w < 0 ? 0 : (size_t)w;
}
