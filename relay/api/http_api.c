/* http_api.c - the relay's HTTP endpoints on lws: /metrics (Prometheus
 * text), /healthz (the process answers), /readyz (it can do its work: 200
 * or 503 with why), /stats (JSON: sensors and their counters), the open
 * data stream (/stream, /stream.ndjson) and the COF query API (query.c). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "http.h"
#include "http_api.h"
#include "log.h"

typedef struct http_pss {
    pdns_buf body;  /* LWS_PRE bytes of headroom, then the body */
    size_t sent;
    /* a WebSocket client of /stream */
    stream_client sc;
    uint64_t since;
    int is_stream;
    int head;       /* a HEAD request: the headers of the GET answer only */
    query_req *q;   /* a query waiting for the store */
    console_conn cc; /* the console's (admin listener) */
    int body_pending; /* a request body not read to its end: the answer waits
                       * (sent before it, the rest of the body would be read
                       * as the next request) */
} http_pss;

static int respond(struct lws *wsi, http_pss *p, unsigned status,
                   const char *ctype) {
    return http_respond(wsi, &p->body, status, ctype, NULL);
}

static int cb(struct lws *wsi, enum lws_callback_reasons reason, void *user,
              void *in, size_t len) {
    http_pss *p = user;
    switch (reason) {
    case LWS_CALLBACK_HTTP: {
        http_api *h = lws_vhost_user(lws_get_vhost(wsi));
        const char *path = in;
        query_abandon(&p->q);
        console_closed(h->console, &p->cc);
        pdns_buf_free(&p->body); /* keep-alive: the last answer's */
        p->sent = 0;
        p->is_stream = 0;
        p->head = lws_hdr_total_length(wsi, WSI_TOKEN_HEAD_URI) > 0;
        {
            char cl[24] = "";
            p->body_pending = lws_hdr_copy(wsi, cl, sizeof(cl), WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0 &&
                              strtoull(cl, NULL, 10) > 0;
        }
        if (strcmp(path, "/stream.ndjson") == 0 && h->st && !h->admin) {
            char ip[64], why[160];
            lws_get_peer_simple(wsi, ip, sizeof(ip));
            if (!stream_admit(h->st, ip, why, sizeof(why))) {
                if (pdns_buf_reserve(&p->body, LWS_PRE) < 0)
                    return -1;
                p->body.len = LWS_PRE;
                pdns_buf_printf(&p->body, "{\"error\":\"%s\"}\n", why);
                return respond(wsi, p, HTTP_STATUS_SERVICE_UNAVAILABLE, "application/json");
            }
            /* the open stream for curl: chunked NDJSON that never ends */
            uint8_t hdr[LWS_PRE + 512], *start = hdr + LWS_PRE, *q = start,
                                        *end = hdr + sizeof(hdr) - 1;
            char arg[48] = "";
            const char *v = lws_get_urlarg_by_name(wsi, "since=", arg, sizeof(arg));
            if (lws_add_http_common_headers(wsi, HTTP_STATUS_OK, "application/x-ndjson",
                                            LWS_ILLEGAL_HTTP_CONTENT_LEN, &q, end) ||
                lws_finalize_write_http_header(wsi, start, &q, end))
                return -1;
            lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0);
            p->is_stream = 1;
            return stream_client_open(h->st, &p->sc, wsi, ip, v ? strtoull(v, NULL, 10) : 0, 1);
        }
        if (pdns_buf_reserve(&p->body, LWS_PRE) < 0)
            return -1;
        p->body.len = LWS_PRE;
        if (h->admin && h->console && console_owns(path))
            return console_request(h->console, wsi, &p->cc, path, &p->body);
        int admin_path = strcmp(path, "/metrics") == 0 || strcmp(path, "/stats") == 0;
        if (admin_path != h->admin && strcmp(path, "/healthz") != 0 &&
            strcmp(path, "/readyz") != 0) {
            /* per-sensor activity only on the admin listener; nothing else
             * there */
            pdns_buf_printf(&p->body, "{\"error\":\"%s\"}\n", h->admin
                            ? "the admin listener serves /metrics, /stats, /console/, /healthz and /readyz only"
                            : "not found here: per-sensor data is served on the admin listener (admin.listen)");
            return respond(wsi, p, HTTP_STATUS_NOT_FOUND, "application/json");
        }
        if (strcmp(path, "/metrics") == 0) {
            if (h->metrics(h->ctx, &p->body) < 0 ||
                query_metrics_render(&h->query->m, &p->body) < 0 ||
                (h->console && console_metrics(h->console, &p->body) < 0) ||
                (h->st && stream_metrics(h->st, &p->body) < 0))
                return -1;
            return respond(wsi, p, HTTP_STATUS_OK,
                           "text/plain; version=0.0.4");
        }
        int ep = query_endpoint_of(path);
        if (ep >= 0) {
            if (lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) <= 0 && !p->head) {
                pdns_buf_append(&p->body, "{\"error\":\"only GET and HEAD\"}\n", 30);
                return respond(wsi, p, 405, "application/json");
            }
            return query_begin(h->query, wsi, ep, path, &p->body, &p->q);
        }
        if (strcmp(path, "/healthz") == 0) {
            pdns_buf_append(&p->body, "ok\n", 3);
            return respond(wsi, p, HTTP_STATUS_OK, "text/plain");
        }
        if (strcmp(path, "/readyz") == 0) {
            char why[256];
            int up = h->ready(h->ctx, why, sizeof(why));
            if (pdns_buf_printf(&p->body, "%s\n", up ? "ready" : why) < 0)
                return -1;
            return respond(wsi, p, up ? HTTP_STATUS_OK : 503, "text/plain");
        }
        if (strcmp(path, "/stats") == 0) {
            if (h->stats(h->ctx, &p->body) < 0)
                return -1;
            return respond(wsi, p, HTTP_STATUS_OK, "application/json");
        }
        pdns_buf_append(&p->body, "{\"error\":\"not found\"}\n", 22);
        return respond(wsi, p, HTTP_STATUS_NOT_FOUND, "application/json");
    }
    case LWS_CALLBACK_HTTP_BODY:
        if (p && p->cc.op) /* a console change's body */
            console_body(&p->cc, in, len);
        return 0; /* any other request body (POST, PUT): not read, the answer is a 405 */
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        if (p)
            p->body_pending = 0;
        if (p && p->cc.op) {
            http_api *h = lws_vhost_user(lws_get_vhost(wsi));
            return console_body_done(h->console, wsi, &p->cc, &p->body);
        }
        if (p && p->body.len > LWS_PRE)
            lws_callback_on_writable(wsi); /* the 405 waits for the body's end */
        return 0;
    case LWS_CALLBACK_HTTP_WRITEABLE: {
        if (p->is_stream)
            return stream_client_writable(&p->sc);
        if (p->cc.sse) {
            http_api *h = lws_vhost_user(lws_get_vhost(wsi));
            return console_writable(h->console, wsi, &p->cc);
        }
        if (p->body_pending)
            return 0; /* the body's end calls us again */
        if (p->head) /* the headers are out: that is the whole answer */
            return lws_http_transaction_completed(wsi) ? -1 : 0;
        size_t left = p->body.len - LWS_PRE - p->sent;
        size_t chunk = left > 16384 ? 16384 : left;
        /* lws_write needs LWS_PRE writable bytes before the data */
        uint8_t *at = (uint8_t *)p->body.p + LWS_PRE + p->sent;
        int final = chunk == left;
        if (lws_write(wsi, at, chunk,
                      final ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) !=
            (int)chunk)
            return -1;
        p->sent += chunk;
        if (!final) {
            lws_callback_on_writable(wsi);
            return 0;
        }
        if (lws_http_transaction_completed(wsi))
            return -1;
        return 0;
    }
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION: {
        /* a WebSocket upgrade: only /stream, only when it is configured */
        http_api *h = lws_vhost_user(lws_get_vhost(wsi));
        char uri[64] = "", arg[48] = "";
        lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI);
        if (h->admin || !h->st || strcmp(uri, "/stream") != 0 || !p)
            return -1;
        char ip[64], why[160];
        lws_get_peer_simple(wsi, ip, sizeof(ip));
        if (!stream_admit(h->st, ip, why, sizeof(why))) {
            log_debug("stream: refused %s: %s", ip, why);
            return -1;
        }
        memset(p, 0, sizeof(*p));
        p->is_stream = 1;
        /* lws 4.1 copies "since=N" and points past the name */
        const char *v = lws_get_urlarg_by_name(wsi, "since=", arg, sizeof(arg));
        if (v)
            p->since = strtoull(v, NULL, 10);
        return 0;
    }
    case LWS_CALLBACK_ESTABLISHED: {
        http_api *h = lws_vhost_user(lws_get_vhost(wsi));
        if (!h->st || !p->is_stream)
            return -1;
        /* a small kernel send buffer: a client's backlog then shows in our
         * own bounded queue instead of hiding in the kernel */
        int sndbuf = 64 * 1024;
        setsockopt(lws_get_socket_fd(wsi), SOL_SOCKET, SO_SNDBUF, &sndbuf,
                   sizeof(sndbuf));
        log_debug("stream: client joins (since %llu)", (unsigned long long)p->since);
        char peer[64];
        lws_get_peer_simple(wsi, peer, sizeof(peer));
        return stream_client_open(h->st, &p->sc, wsi, peer, p->since, 0);
    }
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return p->is_stream ? stream_client_writable(&p->sc) : 0;
    case LWS_CALLBACK_RECEIVE:
        return 0; /* consumers have nothing to say */
    case LWS_CALLBACK_CLOSED:
        if (p && p->is_stream)
            stream_client_close(&p->sc);
        return 0;
    case LWS_CALLBACK_CLOSED_HTTP:
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
        if (p) {
            query_abandon(&p->q);
            console_closed(((http_api *)lws_vhost_user(lws_get_vhost(wsi)))->console, &p->cc);
            if (p->is_stream)
                stream_client_close(&p->sc);
            p->is_stream = 0;
            pdns_buf_free(&p->body);
        }
        break;
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

const struct lws_protocols http_api_protocol = {
    "http", cb, sizeof(http_pss), 4096, 0, NULL, 0};
