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
 * is looked up (/rdata/), or a name whose error lines are (/errors/). */
enum { QP_QUERY = 0, QP_RDATA = 1, QP_ERRORS = 2 };

/* Parses q (URL-decoded, len bytes) as form says. Returns 0, or -1 with a
 * message for the client in err. */
int qparse_query(qparse *p, const char *q, size_t len, int form, char *err,
                 size_t errlen);

/* Adds a comma-separated list of rrtypes (names or numbers) to the
 * filter. Returns 0, or -1 with err. */
int qparse_rrtypes(qparse *p, const char *list, char *err, size_t errlen);

/* Parses a filter parameter name=value (time_first_after, ...,
 * limit, cursor are not handled here). Returns 1 when name is a time
 * filter and value is good, 0 when name is not one, -1 with err. */
int qparse_time(qparse *p, const char *name, const char *value, char *err,
                size_t errlen);

#endif
