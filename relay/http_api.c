/* http_api.c - the relay's HTTP endpoints on lws: /metrics (Prometheus
 * text), /healthz, /stats (JSON: sensors and their counters). The COF
 * query API joins here with the store. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cmd.h"
#include "daemon.h"

typedef struct http_pss {
    pdns_buf body;  /* LWS_PRE bytes of headroom, then the body */
    size_t sent;
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

static int respond(struct lws *wsi, http_pss *p, unsigned status,
                   const char *ctype) {
    uint8_t hdr[LWS_PRE + 512], *start = hdr + LWS_PRE, *q = start,
                                *end = hdr + sizeof(hdr) - 1;
    size_t blen = p->body.len - LWS_PRE;
    if (lws_add_http_common_headers(wsi, status, ctype, blen, &q, end) ||
        lws_finalize_write_http_header(wsi, start, &q, end))
        return -1;
    lws_callback_on_writable(wsi);
    return 0;
}

static int cb(struct lws *wsi, enum lws_callback_reasons reason, void *user,
              void *in, size_t len) {
    http_pss *p = user;
    (void)len;
    switch (reason) {
    case LWS_CALLBACK_HTTP: {
        relay *r = lws_context_user(lws_get_context(wsi));
        const char *path = in;
        pdns_buf_free(&p->body); /* keep-alive: the last answer's */
        p->sent = 0;
        if (pdns_buf_reserve(&p->body, LWS_PRE) < 0)
            return -1;
        p->body.len = LWS_PRE;
        if (strcmp(path, "/metrics") == 0) {
            if (ingest_metrics_render(&r->in, &r->cfg, &p->body) < 0 ||
                relay_mix_metrics(r, &p->body) < 0 ||
                share_metrics(&r->sh, &p->body) < 0)
                return -1;
            return respond(wsi, p, HTTP_STATUS_OK,
                           "text/plain; version=0.0.4");
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
    case LWS_CALLBACK_CLOSED_HTTP:
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
        if (p)
            pdns_buf_free(&p->body);
        break;
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

const struct lws_protocols http_api_protocol = {
    "http", cb, sizeof(http_pss), 0, 0, NULL, 0};
