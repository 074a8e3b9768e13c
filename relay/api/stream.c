/* stream.c - open data stream fan-out: one shared log with a cursor per
 * client, bounded replays, a bounded history. See stream.h. */
#include "stream.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

/* What one message costs in memory: the allocation and malloc's own. */
#define MSG_COST(n) (sizeof(stream_msg) + LWS_PRE + (n) + 16)

void stream_init(stream *s, const char *policy, const stream_limits *lim) {
    memset(s, 0, sizeof(*s));
    snprintf(s->policy, sizeof(s->policy), "%s", policy);
    s->lim = *lim;
    s->hist = lim->history ? calloc(lim->history, sizeof(*s->hist)) : NULL;
}

static stream_msg *msg_new(const char *p, size_t n) {
    stream_msg *m = malloc(sizeof(*m) + LWS_PRE + n + 1);
    if (!m)
        return NULL;
    m->next = NULL;
    m->off = 0;
    m->refs = 0;
    m->len = n + 1;
    memcpy(m->data + LWS_PRE, p, n);
    m->data[LWS_PRE + n] = '\n'; /* HTTP clients get lines, WebSocket ones not */
    return m;
}

/* Frees the oldest shared messages no client will send any more. */
static void log_trim(stream *s) {
    while (s->log_head && s->log_head->refs == 0) {
        stream_msg *m = s->log_head;
        s->log_head = m->next;
        if (!s->log_head)
            s->log_tail = NULL;
        s->log_bytes -= MSG_COST(m->len);
        free(m);
    }
}

static void drop_replay(stream_client *c) {
    stream_msg *m = c->head;
    while (m) {
        stream_msg *n = m->next;
        if (c->s)
            c->s->replay_bytes -= MSG_COST(m->len);
        free(m);
        m = n;
    }
    c->head = c->tail = NULL;
    c->queued = 0;
}

/* Lets go of everything the client holds in the shared log and its replay. */
static void release(stream_client *c) {
    drop_replay(c);
    if (c->cur) {
        c->cur->refs--;
        c->cur = NULL;
        if (c->s)
            log_trim(c->s);
    }
}

void stream_free(stream *s) {
    for (stream_client *c = s->clients; c; c = c->next) {
        release(c);
        c->s = NULL;
    }
    while (s->log_head) {
        stream_msg *m = s->log_head;
        s->log_head = m->next;
        free(m);
    }
    s->log_tail = NULL;
    for (size_t i = 0; s->hist && i < s->hist_n; i++)
        free(s->hist[(s->hist_head + i) % s->lim.history].text);
    free(s->hist);
    s->hist = NULL;
}

/* The client fell too far behind (or its replay would not fit): it is
 * disconnected, and what it held is let go at once. */
static void drop_slow(stream_client *c, const char *why) {
    c->dead = 1;
    c->s->slow_dropped++;
    release(c);
    log_warn("stream: a client (%s) %s: disconnected", c->ip, why);
    /* its socket may never be writable again: close it now */
    if (c->wsi)
        lws_set_timeout(c->wsi, PENDING_TIMEOUT_KILLED_BY_PARENT, LWS_TO_KILL_ASYNC);
}

/* A kept batch for a client joining with ?since=: into its own replay. */
static void replay_lines(stream_client *c, const char *text, size_t len) {
    stream *s = c->s;
    for (const char *p = text, *end = text + len; p < end && !c->dead;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (n) {
            if (c->queued + MSG_COST(n + 1) > s->lim.max_client_bytes ||
                s->replay_bytes + MSG_COST(n + 1) > s->lim.max_replay_bytes) {
                drop_slow(c, "asked for more history than fits (stream.max_client_bytes, "
                             "stream.max_replay_bytes)");
                return;
            }
            stream_msg *m = msg_new(p, n);
            if (!m) {
                drop_slow(c, "could not be given its history (out of memory)");
                return;
            }
            if (c->tail)
                c->tail->next = m;
            else
                c->head = m;
            c->tail = m;
            c->queued += MSG_COST(m->len);
            s->replay_bytes += MSG_COST(m->len);
        }
        p += n + 1;
    }
}

static void keep_history(stream *s, uint64_t seq, const char *text, size_t len) {
    if (!s->lim.history)
        return;
    stream_batch *b;
    if (s->hist_n == s->lim.history) {
        b = &s->hist[s->hist_head];
        free(b->text);
        s->hist_head = (s->hist_head + 1) % s->lim.history;
        s->hist_n--;
    }
    b = &s->hist[(s->hist_head + s->hist_n) % s->lim.history];
    b->text = malloc(len);
    if (b->text) {
        memcpy(b->text, text, len);
        b->len = len;
        b->seq = seq;
        s->hist_n++;
    }
}

void stream_publish(stream *s, uint64_t seq, const char *text, size_t len) {
    keep_history(s, seq, text, len);
    for (const char *p = text, *end = text + len; p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        stream_msg *m = n ? msg_new(p, n) : NULL;
        if (m) {
            m->off = s->log_end;
            s->log_end += m->len;
            s->log_bytes += MSG_COST(m->len);
            if (s->log_tail)
                s->log_tail->next = m;
            else
                s->log_head = m;
            s->log_tail = m;
            for (stream_client *c = s->clients; c; c = c->next)
                if (!c->dead && !c->cur) { /* caught up: this is its next */
                    c->cur = m;
                    m->refs++;
                }
        }
        p += n + 1;
    }
    for (stream_client *c = s->clients; c; c = c->next) {
        if (c->dead)
            continue;
        uint64_t behind = (c->cur ? s->log_end - c->cur->off : 0) + c->queued;
        if (behind > s->lim.max_client_bytes)
            drop_slow(c, "fell more than stream.max_client_bytes behind");
        else if (c->wsi && (c->cur || c->head))
            lws_callback_on_writable(c->wsi);
    }
    log_trim(s); /* nobody was waiting for it: no client, or all behind */
}

int stream_admit(stream *s, const char *ip, char *why, size_t whylen) {
    size_t same = 0;
    for (stream_client *c = s->clients; c; c = c->next)
        same += strcmp(c->ip, ip) == 0;
    if (s->clients_now >= s->lim.max_clients)
        snprintf(why, whylen, "the open stream has its %zu clients "
                 "(stream.max_clients); try again later", s->lim.max_clients);
    else if (same >= s->lim.max_clients_per_address)
        snprintf(why, whylen, "%zu clients from your address already "
                 "(stream.max_clients_per_address)", s->lim.max_clients_per_address);
    else
        return 1;
    s->refused++;
    return 0;
}

int stream_client_open(stream *s, stream_client *c, struct lws *wsi,
                       const char *ip, uint64_t since, int http) {
    memset(c, 0, sizeof(*c));
    c->wsi = wsi;
    c->http = http;
    c->s = s;
    snprintf(c->ip, sizeof(c->ip), "%s", ip ? ip : "");
    c->next = s->clients;
    if (s->clients)
        s->clients->pprev = &c->next;
    c->pprev = &s->clients;
    s->clients = c;
    s->clients_total++;
    s->clients_now++;
    for (size_t i = 0; since && i < s->hist_n && !c->dead; i++) {
        stream_batch *b = &s->hist[(s->hist_head + i) % s->lim.history];
        if (b->seq >= since)
            replay_lines(c, b->text, b->len);
    }
    if (c->head && c->wsi)
        lws_callback_on_writable(c->wsi);
    return 0;
}

int stream_client_writable(stream_client *c) {
    if (!c->s || c->dead)
        return -1;
    stream_msg *m = c->head ? c->head : c->cur;
    if (!m)
        return 0;
    size_t n = c->http ? m->len : m->len - 1;
    if (lws_write(c->wsi, m->data + LWS_PRE, n,
                  c->http ? LWS_WRITE_HTTP : LWS_WRITE_TEXT) < (int)n)
        return -1;
    c->s->messages++;
    if (m == c->head) { /* the replay first */
        c->head = m->next;
        if (!c->head)
            c->tail = NULL;
        c->queued -= MSG_COST(m->len);
        c->s->replay_bytes -= MSG_COST(m->len);
        free(m);
    } else { /* then the shared log */
        m->refs--;
        c->cur = m->next;
        if (c->cur)
            c->cur->refs++;
        log_trim(c->s);
    }
    if (c->head || c->cur)
        lws_callback_on_writable(c->wsi);
    return 0;
}

void stream_client_close(stream_client *c) {
    release(c);
    if (!c->s)
        return;
    *c->pprev = c->next;
    if (c->next)
        c->next->pprev = c->pprev;
    c->s->clients_now--;
    c->s = NULL;
}

int stream_metrics(const stream *s, pdns_buf *b) {
    return pdns_buf_printf(b, "# TYPE pdns_relay_stream_clients gauge\n"
                              "pdns_relay_stream_clients %" PRIu64 "\n"
                              "# TYPE pdns_relay_stream_clients_total counter\n"
                              "pdns_relay_stream_clients_total %" PRIu64 "\n"
                              "# HELP pdns_relay_stream_refused_total Clients refused at a cap (stream.max_clients, max_clients_per_address).\n"
                              "# TYPE pdns_relay_stream_refused_total counter\n"
                              "pdns_relay_stream_refused_total %" PRIu64 "\n"
                              "# TYPE pdns_relay_stream_slow_dropped_total counter\n"
                              "pdns_relay_stream_slow_dropped_total %" PRIu64 "\n"
                              "# TYPE pdns_relay_stream_messages_total counter\n"
                              "pdns_relay_stream_messages_total %" PRIu64 "\n"
                              "# HELP pdns_relay_stream_held_bytes Memory the stream holds: the shared log and the replays.\n"
                              "# TYPE pdns_relay_stream_held_bytes gauge\n"
                              "pdns_relay_stream_held_bytes %zu\n",
                           s->clients_now, s->clients_total, s->refused, s->slow_dropped,
                           s->messages, s->log_bytes + s->replay_bytes);
}
