/* rrtype.h - DNS resource record type names (IANA registry) <-> numbers.
 *
 * Names are the IANA mnemonics in upper case; an unknown type is shown as
 * its decimal number (as COF asks) and "TYPEnnn" (RFC 3597) is accepted. */
#ifndef PDNS_RRTYPE_H
#define PDNS_RRTYPE_H

#include <stddef.h>
#include <stdint.h>

/* The IANA mnemonic of type t, or NULL when t has none. */
const char *pdns_rrtype_name(uint16_t t);

/* Parses a mnemonic (case-insensitive), a decimal number or TYPEnnn.
 * Returns 0 and sets *t, or -1 when s is none of these. */
int pdns_rrtype_parse(const char *s, size_t len, uint16_t *t);


/* Writes the COF form of t (name, or decimal) to buf; returns its length. */
size_t pdns_rrtype_format(uint16_t t, char *buf, size_t size);

enum {
    PDNS_RR_A = 1, PDNS_RR_NS = 2, PDNS_RR_CNAME = 5, PDNS_RR_SOA = 6,
    PDNS_RR_PTR = 12, PDNS_RR_MX = 15, PDNS_RR_TXT = 16, PDNS_RR_RP = 17,
    PDNS_RR_AAAA = 28, PDNS_RR_SRV = 33, PDNS_RR_DNAME = 39
};

/* Up to 8 bytes as a little-endian integer. */
#define PDNS_PACK2(a, b) ((uint64_t)(b) << 8 | (uint64_t)(a))
#define PDNS_PACK3(a, b, c) ((uint64_t)(c) << 16 | PDNS_PACK2(a, b))
#define PDNS_PACK4(a, b, c, d) ((uint64_t)(d) << 24 | PDNS_PACK3(a, b, c))
#define PDNS_PACK5(a, b, c, d, e) ((uint64_t)(e) << 32 | PDNS_PACK4(a, b, c, d))

/* The types sensors print most (A, AAAA, CNAME, MX, NS, TXT, PTR, SOA,
 * SRV, in the upper case they print them), by their name's bytes as a
 * little-endian integer; 0 for any other key. The parsers' fast path. */
static inline uint16_t pdns_rrtype_common(uint64_t key) {
    switch (key) {
    case 'A': return PDNS_RR_A;
    case PDNS_PACK4('A', 'A', 'A', 'A'): return PDNS_RR_AAAA;
    case PDNS_PACK5('C', 'N', 'A', 'M', 'E'): return PDNS_RR_CNAME;
    case PDNS_PACK2('M', 'X'): return PDNS_RR_MX;
    case PDNS_PACK2('N', 'S'): return PDNS_RR_NS;
    case PDNS_PACK3('T', 'X', 'T'): return PDNS_RR_TXT;
    case PDNS_PACK3('P', 'T', 'R'): return PDNS_RR_PTR;
    case PDNS_PACK3('S', 'O', 'A'): return PDNS_RR_SOA;
    case PDNS_PACK3('S', 'R', 'V'): return PDNS_RR_SRV;
    default: return 0;
    }
}

/* 1 when the rdata of type t is a single domain name in presentation
 * format (CNAME, NS, PTR, DNAME, and the target passivedns prints for
 * MX, SRV, SOA, RP), which is normalised like an owner name. A bit test:
 * the parser asks for every record. */
static inline int pdns_rrtype_rdata_is_name(uint16_t t) {
    const uint64_t names = (1ULL << PDNS_RR_CNAME) | (1ULL << PDNS_RR_NS) |
                           (1ULL << PDNS_RR_PTR) | (1ULL << PDNS_RR_DNAME) |
                           (1ULL << PDNS_RR_MX) | (1ULL << PDNS_RR_SRV) |
                           (1ULL << PDNS_RR_SOA) | (1ULL << PDNS_RR_RP);
    return t < 64 && (names >> t & 1);
}

#endif
