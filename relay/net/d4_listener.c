/* d4_listener.c - the D4 protocol listener: TLS raw sockets from lws, each
 * driving a d4_session. Violations close the connection with a log line
 * naming the peer and the reason, and a metric. Other connections are not
 * affected: a session's state is its own.
 *
 * A session lives as long as its sensor keeps it (d4-goclient keeps one for
 * hours). Only the relay's own timeouts end it: header_timeout (a frame, or
 * the first header, must complete in time) and idle_timeout (nothing
 * received for that long). Each is logged and counted by reason. lws arms
 * timeouts of its own on an accepted raw TLS socket that the raw role
 * never clears (5 s after the handshake); they are cleared here. A session
 * paused for the store's backpressure is not timed out at all. */
#include <openssl/ssl.h>
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "d4_listener.h"
#include "inbound.h"
#include "log.h"

typedef struct d4_conn {
    d4_session s;
    inbound ib;             /* a partner relay's batch in progress */
    struct lws *wsi;
    struct d4_conn *next, **pprev;
    uint64_t armed_ms;  /* when the current frame (or the session) began */
    uint64_t rx_ms;     /* when the last bytes arrived (or the session began) */
    int dead;
    enum d4_close why;  /* set when the relay closes it */
    uint64_t acked_n;   /* a partner's batches taken or dropped, as acknowledged */
    int paused;         /* not reading: the store's buffer is full */
    int held;           /* not reading yet: d4_listener.hold */
    uint64_t id;
    char peer[64];
    const relay_sensor *where_for; /* the sensor `where` names */
    char where[160];               /* "sensor <name> from <peer>", for errors */
} d4_conn;

static d4_listener *listener_of(struct lws *wsi) {
    return lws_vhost_user(lws_get_vhost(wsi));
}

void d4_listener_init(d4_listener *l, relay_config *cfg, ingest *in, store *st) {
    memset(l, 0, sizeof(*l));
    l->cfg = cfg;
    l->in = in;
    l->st = st;
    l->sconf.max_payload = cfg->max_payload;
    l->sconf.max_line = cfg->max_line;
    l->sconf.accept_csv = cfg->accept_csv;
    l->sconf.accept_extended = cfg->accept_extended;
    l->sconf.exclusive = cfg->exclusive;
}

/* The context handed to the session callbacks. */
struct feed_ctx {
    d4_listener *l;
    d4_conn *c;
};

static ingest_source source_of(relay_sensor *s) {
    ingest_source src = {PDNS_SRC_D4, s, s->name, s->index, &s->layout};
    return src;
}

/* Where a line came from, for its error message: written once a session. */
static const char *where_of(d4_conn *c, const relay_sensor *s) {
    if (c->where_for != s) {
        snprintf(c->where, sizeof(c->where), "sensor %s from %s", s->name, c->peer);
        c->where_for = s;
    }
    return c->where;
}

static void on_line(void *ctx, relay_sensor *s, char *line, size_t len) {
    struct feed_ctx *f = ctx;
    ingest_source src = source_of(s);
    ingest_csv_line(f->l->in, &src, where_of(f->c, s), line, len);
}

static void on_too_long(void *ctx, relay_sensor *s) {
    struct feed_ctx *f = ctx;
    ingest_source src = source_of(s);
    ingest_line_too_long(f->l->in, &src, where_of(f->c, s));
}

static relay_sensor *lookup_fc(void *ctx, const uint8_t uuid[16]) {
    return config_find_sensor(((struct feed_ctx *)ctx)->l->cfg, uuid);
}

static int on_batch_line(void *ctx, relay_sensor *s, char *line, size_t len,
                         char *err, size_t errlen) {
    struct feed_ctx *f = ctx;
    return inbound_line(&f->c->ib, f->l->in, s, f->l->cfg->state_dir, line, len,
                        err, errlen);
}

static const d4_session_ops ops = {lookup_fc, on_line, on_too_long,
                                   on_batch_line};

static void reject(d4_listener *l, d4_conn *c, enum d4_reject why,
                   const char *msg) {
    l->in->m.d4_rejects[why]++;
    log_warn("d4: closing %s: %s (%s)", c->peer, msg, d4_reject_name(why));
    c->dead = 1;
    c->why = D4C_REJECTED;
}

/* Caps on D4 connections, checked as one is accepted: overall, per source
 * address, and those not yet authenticated (no frame with a good HMAC:
 * each may make the relay hold one payload, up to d4.max_payload). */
static int over_caps(d4_listener *l, const char *peer) {
    int all = 0, same = 0, unauth = 0;
    const char *what = NULL;
    for (d4_conn *c = l->conns; c; c = c->next) {
        all++;
        same += strcmp(c->peer, peer) == 0;
        unauth += c->s.sensor == NULL;
    }
    if (all >= l->cfg->max_conns)
        what = "d4.max_connections";
    else if (same >= l->cfg->max_conns_per_addr)
        what = "d4.max_connections_per_address";
    else if (unauth >= l->cfg->max_unauth)
        what = "d4.max_unauthenticated";
    if (!what)
        return 0;
    l->in->m.d4_rejects[D4R_LIMIT]++;
    if (ingest_log_allowed(l->in))
        log_warn("d4: refusing %s: %s reached (%d open, %d from it, %d not "
                 "authenticated) (limit)", peer, what, all, same, unauth);
    return 1;
}

static int cb(struct lws *wsi, enum lws_callback_reasons reason, void *user,
              void *in, size_t len) {
    d4_conn *c = user;
    d4_listener *l;
    switch (reason) {
    case LWS_CALLBACK_RAW_ADOPT:
        l = listener_of(wsi);
        memset(c, 0, sizeof(*c));
        lws_get_peer_simple(wsi, c->peer, sizeof(c->peer));
        if (over_caps(l, c->peer))
            return -1; /* c->wsi is NULL: RAW_CLOSE ignores it */
        d4_session_init(&c->s, &l->sconf);
        c->wsi = wsi;
        c->why = D4C_PEER;
        c->armed_ms = c->rx_ms = pdns_mono_ms();
        lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0);
        c->next = l->conns;
        if (l->conns)
            l->conns->pprev = &c->next;
        c->pprev = &l->conns;
        l->conns = c;
        l->in->m.d4_sessions_total++;
        l->in->m.d4_sessions_active++;
        log_debug("d4: connection from %s", c->peer);
        if (l->hold) {
            c->id = ++l->next_id;
            c->held = 1;
            lws_rx_flow_control(wsi, 0);
            l->hold(l->hold_ctx, c->id);
        }
        break;
    case LWS_CALLBACK_RAW_RX: {
        enum d4_reject why;
        char msg[256];
        l = listener_of(wsi);
        if (c->dead)
            return -1;
        /* lws may arm its own timeout once the handshake is done: the
         * sessions' only timeouts are the relay's */
        lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0);
        c->rx_ms = pdns_mono_ms();
        struct feed_ctx f = {l, c};
        if (d4_session_feed(&c->s, &ops, &f, in, len, &why, msg,
                            sizeof(msg)) < 0) {
            reject(l, c, why, msg);
            return -1;
        }
        relay_sensor *ps = c->s.sensor;
        if (ps && ps->is_partner && ps->in_have &&
            ps->in_batches + ps->in_duplicates != c->acked_n)
            lws_callback_on_writable(wsi); /* acknowledge what was taken */
        if (!d4_session_partial(&c->s))
            c->armed_ms = 0;
        else if (!c->armed_ms)
            c->armed_ms = c->rx_ms;
        if (l->st && store_full(l->st) && !c->paused) {
            /* backpressure: leave the data in the kernel (and the sensor) */
            c->paused = 1;
            lws_rx_flow_control(wsi, 0);
        }
        break;
    }
    case LWS_CALLBACK_RAW_WRITEABLE: {
        if (c->dead)
            return -1;
        /* A partner relay learns which batches we have: one line with the
         * last sequence number taken, after each batch (taken, or dropped
         * as a resend). d4-core never writes back; a sender that does not
         * read this (d4-goclient, older relays) loses nothing. */
        relay_sensor *ps = c->s.sensor;
        if (!ps || !ps->is_partner || !ps->in_have)
            break;
        uint8_t buf[LWS_PRE + 64];
        int n = snprintf((char *)buf + LWS_PRE, 64, "{\"pdns_relay_ack\":%llu}\n",
                         (unsigned long long)ps->in_seq);
        if (lws_write(wsi, buf + LWS_PRE, (size_t)n, LWS_WRITE_RAW) != n)
            return -1;
        c->acked_n = ps->in_batches + ps->in_duplicates;
        break;
    }
    case LWS_CALLBACK_OPENSSL_LOAD_EXTRA_SERVER_VERIFY_CERTS:
        /* No session tickets: a sensor that writes and closes at once
         * would leave them unread, and its close would become a RST that
         * discards the frames we have not read yet. */
        SSL_CTX_set_options((SSL_CTX *)user, SSL_OP_NO_TICKET);
        SSL_CTX_set_num_tickets((SSL_CTX *)user, 0);
        SSL_CTX_set_min_proto_version((SSL_CTX *)user, TLS1_2_VERSION);
        break;
    case LWS_CALLBACK_RAW_CLOSE:
        l = listener_of(wsi);
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
        l->in->m.d4_sessions_active--;
        l->in->m.d4_closed[c->why]++;
        break;
    default:
        break;
    }
    return 0;
}

/* The relay closes c (from RAW_WRITEABLE) for why. */
static void close_for(d4_conn *c, enum d4_close why) {
    c->dead = 1;
    c->why = why;
    lws_callback_on_writable(c->wsi);
}

void d4_listener_sweep(d4_listener *l) {
    uint64_t now = pdns_mono_ms(), limit = (uint64_t)l->cfg->header_timeout * 1000,
             idle = (uint64_t)l->cfg->idle_timeout * 1000;
    for (d4_conn *c = l->conns; c; c = c->next) {
        if (c->dead || c->paused || c->held)
            continue;
        if (c->armed_ms && now - c->armed_ms >= limit) {
            reject(l, c, D4R_TIMEOUT,
                   c->s.frames ? "frame not complete in time"
                               : "no complete header in time");
            close_for(c, D4C_REJECTED);
        } else if (idle && now - c->rx_ms >= idle) {
            log_info("d4: closing %s: idle for %d s (d4.idle_timeout)", c->peer,
                     l->cfg->idle_timeout);
            close_for(c, D4C_IDLE);
        }
    }
}

/* Reads c again: the time it waited was the relay's, not the sensor's. */
static void read_again(d4_conn *c) {
    uint64_t now = pdns_mono_ms();
    c->rx_ms = now;
    if (c->armed_ms)
        c->armed_ms = now;
    lws_rx_flow_control(c->wsi, 1);
}

void d4_listener_resume(d4_listener *l) {
    for (d4_conn *c = l->conns; c; c = c->next)
        if (c->paused && !c->dead) {
            c->paused = 0;
            if (!c->held)
                read_again(c);
        }
}

void d4_listener_release(d4_listener *l, uint64_t id) {
    for (d4_conn *c = l->conns; c; c = c->next)
        if (c->id == id && c->held) {
            c->held = 0;
            if (!c->paused && !c->dead)
                read_again(c);
        }
}

void d4_listener_stopping(d4_listener *l) {
    for (d4_conn *c = l->conns; c; c = c->next)
        c->why = D4C_STOPPING;
}

const struct lws_protocols d4_listener_protocol = {
    "d4", cb, sizeof(d4_conn), 65536, 0, NULL, 0};
