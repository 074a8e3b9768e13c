/* d4_listener.c - the D4 protocol listener: TLS raw sockets from lws, each
 * driving a d4_session. Violations close the connection with a log line
 * naming the peer and the reason, and a metric. Other connections are not
 * affected: a session's state is its own. */
#include <openssl/ssl.h>
#include <stdio.h>
#include <string.h>

#include "daemon.h"
#include "inbound.h"
#include "log.h"

typedef struct d4_conn {
    d4_session s;
    inbound ib;             /* a partner relay's batch in progress */
    struct lws *wsi;
    struct d4_conn *next, **pprev;
    uint64_t armed_ms;  /* when the current frame (or the session) began */
    int dead;
    int paused;         /* not reading: the store's buffer is full */
    char peer[64];
} d4_conn;

static relay *relay_of(struct lws *wsi) {
    return lws_context_user(lws_get_context(wsi));
}

static relay_sensor *lookup(void *ctx, const uint8_t uuid[16]) {
    return config_find_sensor(&((relay *)ctx)->cfg, uuid);
}

/* The context handed to the session callbacks. */
struct feed_ctx {
    relay *r;
    d4_conn *c;
};

static ingest_source source_of(relay_sensor *s) {
    ingest_source src = {PDNS_SRC_D4, s, s->name, s->index, &s->layout};
    return src;
}

static void on_line(void *ctx, relay_sensor *s, char *line, size_t len) {
    struct feed_ctx *f = ctx;
    char where[160];
    ingest_source src = source_of(s);
    snprintf(where, sizeof(where), "sensor %s from %s", s->name, f->c->peer);
    ingest_csv_line(&f->r->in, &src, where, line, len);
}

static void on_too_long(void *ctx, relay_sensor *s) {
    struct feed_ctx *f = ctx;
    char where[160];
    ingest_source src = source_of(s);
    snprintf(where, sizeof(where), "sensor %s from %s", s->name, f->c->peer);
    ingest_line_too_long(&f->r->in, &src, where);
}

static relay_sensor *lookup_fc(void *ctx, const uint8_t uuid[16]) {
    return lookup(((struct feed_ctx *)ctx)->r, uuid);
}

static int on_batch_line(void *ctx, relay_sensor *s, char *line, size_t len,
                         char *err, size_t errlen) {
    struct feed_ctx *f = ctx;
    return inbound_line(&f->c->ib, &f->r->in, s, f->r->cfg.state_dir, line, len,
                        err, errlen);
}

static const d4_session_ops ops = {lookup_fc, on_line, on_too_long,
                                   on_batch_line};

static void reject(relay *r, d4_conn *c, enum d4_reject why,
                   const char *msg) {
    r->in.m.d4_rejects[why]++;
    log_warn("d4: closing %s: %s (%s)", c->peer, msg, d4_reject_name(why));
    c->dead = 1;
}

static int cb(struct lws *wsi, enum lws_callback_reasons reason, void *user,
              void *in, size_t len) {
    d4_conn *c = user;
    relay *r;
    switch (reason) {
    case LWS_CALLBACK_RAW_ADOPT:
        r = relay_of(wsi);
        memset(c, 0, sizeof(*c));
        d4_session_init(&c->s, &r->sconf);
        c->wsi = wsi;
        c->armed_ms = relay_now_ms();
        lws_get_peer_simple(wsi, c->peer, sizeof(c->peer));
        c->next = r->conns;
        if (r->conns)
            r->conns->pprev = &c->next;
        c->pprev = &r->conns;
        r->conns = c;
        r->in.m.d4_sessions_total++;
        r->in.m.d4_sessions_active++;
        log_debug("d4: connection from %s", c->peer);
        break;
    case LWS_CALLBACK_RAW_RX: {
        enum d4_reject why;
        char msg[256];
        r = relay_of(wsi);
        if (c->dead)
            return -1;
        struct feed_ctx f = {r, c};
        if (d4_session_feed(&c->s, &ops, &f, in, len, &why, msg,
                            sizeof(msg)) < 0) {
            reject(r, c, why, msg);
            return -1;
        }
        if (!d4_session_partial(&c->s))
            c->armed_ms = 0;
        else if (!c->armed_ms)
            c->armed_ms = relay_now_ms();
        if (r->storing && store_full(&r->store) && !c->paused) {
            /* backpressure: leave the data in the kernel (and the sensor) */
            c->paused = 1;
            lws_rx_flow_control(wsi, 0);
        }
        break;
    }
    case LWS_CALLBACK_RAW_WRITEABLE:
        return c->dead ? -1 : 0;
    case LWS_CALLBACK_OPENSSL_LOAD_EXTRA_SERVER_VERIFY_CERTS:
        /* No session tickets: a sensor that writes and closes at once
         * would leave them unread, and its close would become a RST that
         * discards the frames we have not read yet. */
        SSL_CTX_set_options((SSL_CTX *)user, SSL_OP_NO_TICKET);
        SSL_CTX_set_num_tickets((SSL_CTX *)user, 0);
        SSL_CTX_set_min_proto_version((SSL_CTX *)user, TLS1_2_VERSION);
        break;
    case LWS_CALLBACK_RAW_CLOSE:
        r = relay_of(wsi);
        if (!c->wsi)
            break;
        log_debug("d4: %s closed after %llu frames", c->peer,
                  (unsigned long long)c->s.frames);
        d4_session_free(&c->s);
        inbound_free(&c->ib);
        *c->pprev = c->next;
        if (c->next)
            c->next->pprev = c->pprev;
        c->wsi = NULL;
        r->in.m.d4_sessions_active--;
        break;
    default:
        break;
    }
    return 0;
}

void d4_listener_sweep(relay *r) {
    uint64_t now = relay_now_ms(), limit = (uint64_t)r->cfg.header_timeout * 1000;
    for (d4_conn *c = r->conns; c; c = c->next) {
        if (c->dead || !c->armed_ms || now - c->armed_ms < limit)
            continue;
        reject(r, c, D4R_TIMEOUT,
               c->s.frames ? "frame not complete in time"
                           : "no complete header in time");
        lws_callback_on_writable(c->wsi); /* closes it from RAW_WRITEABLE */
    }
}

void d4_listener_resume(relay *r) {
    for (d4_conn *c = r->conns; c; c = c->next)
        if (c->paused && !c->dead) {
            c->paused = 0;
            lws_rx_flow_control(c->wsi, 1);
        }
}

const struct lws_protocols d4_listener_protocol = {
    "d4", cb, sizeof(d4_conn), 65536, 0, NULL, 0};
