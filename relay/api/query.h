/* query.h - the COF query API on the relay's HTTP listener:
 *   GET /query/<q>       by name, address, CIDR or wildcard (qparse.h)
 *   GET /rdata/<name>    records whose rdata is the name
 *   GET /pdns/query/<q>  CIRCL's API (dribble-* headers), for PyPDNS
 *   GET /errors/<name>   the error lines kept for a name (NXDOMAIN, ...)
 *   GET /info            version, record/triple/name counts, sensors
 *   GET /dnsdb/v2/...    DNSDB API v2 (qparse.h), SAF, for dnsdbq -u dnsdb2
 * Answers are COF NDJSON (a JSON array with Accept: application/json),
 * one page at a time: limit, and an opaque cursor for the next page
 * (X-Cursor header; x-dribble-cursor on /pdns/query), bound to its query
 * and tamper-proof: a foreign, altered or expired cursor is a 400. Errors are JSON
 * objects {"error": "..."} with 400, 401, 404, 429 or 503. */
#ifndef PDNS_QUERY_H
#define PDNS_QUERY_H

#include <stdint.h>

#include "buf.h"
#include "hist.h"
#include "store.h"

struct lws;
struct http_auth;

enum query_endpoint { QE_QUERY, QE_RDATA, QE_PDNS, QE_INFO, QE_ERRORS, QE_DNSDB,
                      QE_COUNT };

typedef struct query_metrics {
    uint64_t by_status[QE_COUNT][6];   /* 200 400 401 429 503 other */
    pdns_hist lat;
} query_metrics;

typedef struct query_req query_req;

/* What the query API answers from. */
typedef struct query_api {
    store *st;                 /* NULL: the relay keeps no store (503) */
    const store_conf *conf;
    const char *relay_id;
    struct http_auth *auth;
    query_metrics m;
    /* cursors are authenticated: a keyed BLAKE2b MAC over the query they
     * belong to, their position and an expiry (key random per process) */
    uint8_t cursor_key[32];
    int cursor_keyed;
} query_api;

/* The endpoint of path, or -1 when it is none of the query API's. */
int query_endpoint_of(const char *path);

/* Starts answering a request for endpoint ep. The answer goes into body
 * (which has LWS_PRE bytes of headroom) and is sent with http_respond,
 * now or when Redis answers; *slot holds the pending request meanwhile.
 * Returns 0, or -1 to close the connection. */
int query_begin(query_api *api, struct lws *wsi, int ep, const char *path,
                pdns_buf *body, query_req **slot);

/* The connection went away: the pending answer is dropped. */
void query_abandon(query_req **slot);

int query_metrics_render(const query_metrics *m, pdns_buf *b);

#endif
