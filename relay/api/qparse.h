/* qparse.h - what a COF query asks for: the query string of /query/<q>
 * and /rdata/<name> turned into a store lookup (store_query_args), and
 * the filters of the query string checked. No I/O: query.c does that.
 *
 * Query forms:
 *   www.example.com        records whose rrname is the name
 *   192.0.2.1, 2001:db8::1 records whose rdata is the address
 *   10.0.0.0/24, 2001:db8::/48   records whose rdata is in the prefix
 *   *.example.com          names under example.com (not the apex)
 *   www.example.*          names that start with the labels www.example
 *   /rdata/ns1.example.com records whose rdata is the name
 * Names are checked like DNS names in presentation format (at most 255
 * bytes, labels at most 63) and made canonical (lower case, no final dot). */
#ifndef PDNS_QPARSE_H
#define PDNS_QPARSE_H

#include <stddef.h>

#include "store.h"

#define QP_KEY_MAX 600

typedef struct qparse {
    store_query_args a;
    char abuf[QP_KEY_MAX], bbuf[QP_KEY_MAX];
    const char *kind;   /* name, ip, cidr, suffix, prefix, rdata */
} qparse;

/* What a query string is read as: any /query/ form, a name whose rdata
 * is looked up (/rdata/), a name whose error lines are (/errors/), or a
 * name form only (never an address: DNSDB's rrset/name). */
enum { QP_QUERY = 0, QP_RDATA = 1, QP_ERRORS = 2, QP_NAME = 3 };

/* DNSDB API v2 (Farsight/DomainTools) paths, after "/dnsdb/v2/":
 *   lookup|summarize/rrset/name/<name>[/<rrtype>[/<bailiwick>]]
 *   lookup|summarize/rrset/raw/<hex wire name>[/<rrtype>[/<bailiwick>]]
 *   lookup|summarize/rdata/name/<name>[/<rrtype>]
 *   lookup|summarize/rdata/ip/<address>[,<prefix length>][/<rrtype>]
 *   lookup|summarize/rdata/raw/<hex: 4 or 16 address bytes, or a wire name>[/<rrtype>]
 *   ping, rate_limit
 * rrtype ANY is every type, ANY-DNSSEC the DNSSEC types. */
enum { DNSDB_LOOKUP = 0, DNSDB_SUMMARIZE, DNSDB_PING, DNSDB_RATE_LIMIT };

typedef struct dnsdb_path {
    int verb;                  /* DNSDB_* */
    int rdata;                 /* an rdata lookup (else rrset) */
    char bailiwick[256];       /* canonical, no final dot; "" for any */
} dnsdb_path;

/* Parses a DNSDB v2 path (URL-decoded, without "/dnsdb/v2/") into the
 * store lookup and d. Returns 0, or -1 with err. */
int qparse_dnsdb(qparse *p, const char *path, dnsdb_path *d, char *err,
                 size_t errlen);

/* Parses q (URL-decoded, len bytes) as form says. Returns 0, or -1 with a
 * message for the client in err. */
int qparse_query(qparse *p, const char *q, size_t len, int form, char *err,
                 size_t errlen);

/* Adds a comma-separated list of rrtypes (names or numbers) to the
 * filter. Returns 0, or -1 with err. */
int qparse_rrtypes(qparse *p, const char *list, char *err, size_t errlen);

/* Parses a filter parameter name=value (time_first_after, ...; a
 * negative value is that many seconds before now, as in DNSDB; limit,
 * cursor are not handled here). Returns 1 when name is a time
 * filter and value is good, 0 when name is not one, -1 with err. */
int qparse_time(qparse *p, const char *name, const char *value, char *err,
                size_t errlen);

#endif
