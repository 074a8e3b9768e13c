/* http_api.h - the relay's HTTP listeners (http_api.c): the public one
 * (the query API, the open data stream, /healthz, /readyz) and the admin
 * one (/metrics and /stats, which show each sensor's activity, the web
 * console at /console/, and /healthz, /readyz; admin.listen, loopback by
 * default). What spans
 * the whole relay (its metrics, its per-sensor figures, its readiness) is
 * rendered by whoever runs the relay, through the callbacks below. */
#ifndef PDNS_HTTP_API_H
#define PDNS_HTTP_API_H

#include <libwebsockets.h>

#include "buf.h"
#include "console.h"
#include "query.h"
#include "stream.h"

typedef struct http_api {
    int admin;                   /* the admin listener: /metrics, /stats only */
    query_api *query;
    stream *st;                  /* NULL: no open data stream */
    console *console;            /* the admin listener's web console, or NULL */
    int (*metrics)(void *ctx, pdns_buf *b);   /* Prometheus text */
    int (*stats)(void *ctx, pdns_buf *b);     /* JSON */
    /* 1 when the relay can answer for itself, else 0 and why in `why` */
    int (*ready)(void *ctx, char *why, size_t whylen);
    void *ctx;
} http_api;

/* The lws protocol of the HTTP vhost; the vhost's user pointer is the
 * http_api it serves. */
extern const struct lws_protocols http_api_protocol;

#endif
