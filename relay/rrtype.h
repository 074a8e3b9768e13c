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
