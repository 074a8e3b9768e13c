/* http_api.c - the relay's HTTP endpoints on lws: /metrics (Prometheus
 * text), /healthz, /stats (JSON: sensors and their counters), the open
 * data stream (/stream, /stream.ndjson) and the COF query API (query.c). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "cmd.h"
#include "daemon.h"
#include "log.h"

typedef struct http_pss {
    pdns_buf body;  /* LWS_PRE bytes of headroom, then the body */
    size_t sent;
    /* a WebSocket client of /stream */
    stream_client sc;
    uint64_t since;
    int is_stream;
    query_req *q;   /* a query waiting for the store */
} http_pss;

static int stats_json(relay *r, pdns_buf *b) {
    char tmp[512];
    int n = snprintf(tmp, sizeof(tmp),
                     "{\"version\":\"%s\",\"relay_id\":\"%s\",\"uptime\":%" PRIu64
                     ",\"records\":%" PRIu64 ",\"sessions_active\":%" PRIu64
                     ",\"sensors\":[",
                     PDNS_RELAY_VERSION, r->cfg.relay_id,
                     (relay_now_ms() - r->started_ms) / 1000,
                     r->in.m.records[PDNS_SRC_D4] + r->in.m.records[PDNS_SRC_QUEUE],
                     r->in.m.d4_sessions_active);
    if (pdns_buf_append(b, tmp, (size_t)n) < 0)
        return -1;
    for (size_t i = 0; i < r->cfg.n_sensors; i++) {
        relay_sensor *s = &r->cfg.sensors[i];
        n = snprintf(tmp, sizeof(tmp),
                     "%s{\"name\":\"%s\",\"uuid\":\"%s\",\"records\":%" PRIu64
                     ",\"error_lines\":%" PRIu64 ",\"rejected\":%" PRIu64
                     ",\"frames\":%" PRIu64 ",\"bytes\":%" PRIu64 "}",
                     i ? "," : "", s->name, s->uuid_hex, s->records, s->errors,
                     s->rejected, s->frames, s->bytes);
        if (pdns_buf_append(b, tmp, (size_t)n) < 0)
            return -1;
    }
    return pdns_buf_append(b, "]}\n", 3);
}

int http_respond(struct lws *wsi, pdns_buf *body, unsigned status,
                 const char *ctype, const char *const *hdrs) {
    uint8_t hdr[LWS_PRE + 2048], *start = hdr + LWS_PRE, *q = start,
                                 *end = hdr + sizeof(hdr) - 1;
    size_t blen = body->len - LWS_PRE;
    if (lws_add_http_common_headers(wsi, status, ctype, blen, &q, end))
        return -1;
    for (; hdrs && hdrs[0]; hdrs += 2)
        if (lws_add_http_header_by_name(wsi, (const unsigned char *)hdrs[0],
                                        (const unsigned char *)hdrs[1],
                                        (int)strlen(hdrs[1]), &q, end))
            return -1;
    if (lws_finalize_write_http_header(wsi, start, &q, end))
        return -1;
    lws_callback_on_writable(wsi);
    return 0;
}

static int respond(struct lws *wsi, http_pss *p, unsigned status,
                   const char *ctype) {
    return http_respond(wsi, &p->body, status, ctype, NULL);
}

static int cb(struct lws *wsi, enum lws_callback_reasons reason, void *user,
              void *in, size_t len) {
    http_pss *p = user;
    (void)len;
    switch (reason) {
    case LWS_CALLBACK_HTTP: {
        relay *r = lws_context_user(lws_get_context(wsi));
        const char *path = in;
        query_abandon(&p->q);
        pdns_buf_free(&p->body); /* keep-alive: the last answer's */
        p->sent = 0;
        p->is_stream = 0;
        if (strcmp(path, "/stream.ndjson") == 0 && r->streaming) {
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
            return stream_client_open(&r->st, &p->sc, wsi, v ? strtoull(v, NULL, 10) : 0, 1);
        }
        if (pdns_buf_reserve(&p->body, LWS_PRE) < 0)
            return -1;
        p->body.len = LWS_PRE;
        if (strcmp(path, "/metrics") == 0) {
            if (ingest_metrics_render(&r->in, &r->cfg, &p->body) < 0 ||
                relay_mix_metrics(r, &p->body) < 0 ||
                share_metrics(&r->sh, &p->body) < 0 ||
                deliver_metrics(r, &p->body) < 0 ||
                (r->storing && store_metrics(&r->store, &p->body) < 0) ||
                query_metrics_render(&r->qm, &p->body) < 0 ||
                (r->streaming &&
                 pdns_buf_printf(&p->body,
                                 "# TYPE pdns_relay_stream_clients gauge\n"
                                 "pdns_relay_stream_clients %" PRIu64 "\n"
                                 "# TYPE pdns_relay_stream_clients_total counter\n"
                                 "pdns_relay_stream_clients_total %" PRIu64 "\n"
                                 "# TYPE pdns_relay_stream_slow_dropped_total counter\n"
                                 "pdns_relay_stream_slow_dropped_total %" PRIu64 "\n"
                                 "# TYPE pdns_relay_stream_messages_total counter\n"
                                 "pdns_relay_stream_messages_total %" PRIu64 "\n",
                                 r->st.clients_now, r->st.clients_total,
                                 r->st.slow_dropped, r->st.messages) < 0))
                return -1;
            return respond(wsi, p, HTTP_STATUS_OK,
                           "text/plain; version=0.0.4");
        }
        int ep = query_endpoint_of(path);
        if (ep >= 0) {
            if (lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) <= 0) {
                pdns_buf_append(&p->body, "{\"error\":\"only GET\"}\n", 21);
                return respond(wsi, p, 405, "application/json");
            }
            return query_begin(r, wsi, ep, path, &p->body, &p->q);
        }
        if (strcmp(path, "/healthz") == 0) {
            pdns_buf_append(&p->body, "ok\n", 3);
            return respond(wsi, p, HTTP_STATUS_OK, "text/plain");
        }
        if (strcmp(path, "/stats") == 0) {
            if (stats_json(r, &p->body) < 0)
                return -1;
            return respond(wsi, p, HTTP_STATUS_OK, "application/json");
        }
        pdns_buf_append(&p->body, "not found\n", 10);
        return respond(wsi, p, HTTP_STATUS_NOT_FOUND, "text/plain");
    }
    case LWS_CALLBACK_HTTP_WRITEABLE: {
        if (p->is_stream)
            return stream_client_writable(&p->sc);
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
        relay *r = lws_context_user(lws_get_context(wsi));
        char uri[64] = "", arg[48] = "";
        lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI);
        if (!r->streaming || strcmp(uri, "/stream") != 0 || !p)
            return -1;
        memset(p, 0, sizeof(*p));
        p->is_stream = 1;
        /* lws 4.1 copies "since=N" and points past the name */
        const char *v = lws_get_urlarg_by_name(wsi, "since=", arg, sizeof(arg));
        if (v)
            p->since = strtoull(v, NULL, 10);
        return 0;
    }
    case LWS_CALLBACK_ESTABLISHED: {
        relay *r = lws_context_user(lws_get_context(wsi));
        if (!r->streaming || !p->is_stream)
            return -1;
        /* a small kernel send buffer: a client's backlog then shows in our
         * own bounded queue instead of hiding in the kernel */
        int sndbuf = 64 * 1024;
        setsockopt(lws_get_socket_fd(wsi), SOL_SOCKET, SO_SNDBUF, &sndbuf,
                   sizeof(sndbuf));
        log_debug("stream: client joins (since %llu)", (unsigned long long)p->since);
        return stream_client_open(&r->st, &p->sc, wsi, p->since, 0);
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
