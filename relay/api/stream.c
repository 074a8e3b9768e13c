/* stream.c - open data stream fan-out with bounded per-client queues and a
 * bounded history. See stream.h. */
#include "stream.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

void stream_init(stream *s, const char *policy, size_t max_client_bytes,
                 size_t history_max) {
    memset(s, 0, sizeof(*s));
    snprintf(s->policy, sizeof(s->policy), "%s", policy);
    s->max_client_bytes = max_client_bytes;
    s->history_max = history_max;
    s->hist = history_max ? calloc(history_max, sizeof(*s->hist)) : NULL;
}

static void drop_queue(stream_client *c) {
    stream_msg *m = c->head;
    while (m) {
        stream_msg *n = m->next;
        free(m);
        m = n;
    }
    c->head = c->tail = NULL;
    c->queued = 0;
}

void stream_free(stream *s) {
    for (stream_client *c = s->clients; c; c = c->next) {
        drop_queue(c);
        c->s = NULL;
    }
    for (size_t i = 0; s->hist && i < s->hist_n; i++)
        free(s->hist[(s->hist_head + i) % s->history_max].text);
    free(s->hist);
    s->hist = NULL;
}

/* Queues every line of text as one message; marks the client dead when
 * its queue would pass the bound. */
static void enqueue_lines(stream_client *c, const char *text, size_t len) {
    const char *p = text, *end = text + len;
    while (p < end && !c->dead) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (n) {
            if (c->queued + n + 1 > c->s->max_client_bytes) {
                c->dead = 1;
                c->s->slow_dropped++;
                drop_queue(c);
                log_warn("stream: a client fell %zu bytes behind: disconnected",
                         c->s->max_client_bytes);
                /* its socket may never be writable again: close it now */
                if (c->wsi)
                    lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK,
                                    LWS_TO_KILL_ASYNC);
                break;
            }
            /* kept with its newline: HTTP clients get lines, WebSocket
             * clients one message without it */
            stream_msg *m = malloc(sizeof(*m) + LWS_PRE + n + 1);
            if (!m) {
                c->dead = 1;
                break;
            }
            m->next = NULL;
            m->len = n + 1;
            memcpy(m->data + LWS_PRE, p, n);
            m->data[LWS_PRE + n] = '\n';
            if (c->tail)
                c->tail->next = m;
            else
                c->head = m;
            c->tail = m;
            c->queued += m->len;
        }
        p += n + 1;
    }
    if (c->wsi)
        lws_callback_on_writable(c->wsi);
}

void stream_publish(stream *s, uint64_t seq, const char *text, size_t len) {
    if (s->history_max) {
        stream_batch *b;
        if (s->hist_n == s->history_max) {
            b = &s->hist[s->hist_head];
            free(b->text);
            s->hist_head = (s->hist_head + 1) % s->history_max;
            s->hist_n--;
        }
        b = &s->hist[(s->hist_head + s->hist_n) % s->history_max];
        b->text = malloc(len);
        if (b->text) {
            memcpy(b->text, text, len);
            b->len = len;
            b->seq = seq;
            s->hist_n++;
        }
    }
    for (stream_client *c = s->clients; c; c = c->next)
        if (!c->dead)
            enqueue_lines(c, text, len);
}

int stream_client_open(stream *s, stream_client *c, struct lws *wsi,
                       uint64_t since, int http) {
    memset(c, 0, sizeof(*c));
    c->wsi = wsi;
    c->http = http;
    c->s = s;
    c->next = s->clients;
    if (s->clients)
        s->clients->pprev = &c->next;
    c->pprev = &s->clients;
    s->clients = c;
    s->clients_total++;
    s->clients_now++;
    for (size_t i = 0; since && i < s->hist_n && !c->dead; i++) {
        stream_batch *b = &s->hist[(s->hist_head + i) % s->history_max];
        if (b->seq >= since)
            enqueue_lines(c, b->text, b->len);
    }
    return 0;
}

int stream_client_writable(stream_client *c) {
    if (!c->s || c->dead)
        return -1;
    stream_msg *m = c->head;
    if (!m)
        return 0;
    size_t n = c->http ? m->len : m->len - 1;
    if (lws_write(c->wsi, m->data + LWS_PRE, n,
                  c->http ? LWS_WRITE_HTTP : LWS_WRITE_TEXT) < (int)n)
        return -1;
    c->head = m->next;
    if (!c->head)
        c->tail = NULL;
    c->queued -= m->len;
    c->s->messages++;
    free(m);
    if (c->head)
        lws_callback_on_writable(c->wsi);
    return 0;
}

void stream_client_close(stream_client *c) {
    drop_queue(c);
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
                              "# TYPE pdns_relay_stream_slow_dropped_total counter\n"
                              "pdns_relay_stream_slow_dropped_total %" PRIu64 "\n"
                              "# TYPE pdns_relay_stream_messages_total counter\n"
                              "pdns_relay_stream_messages_total %" PRIu64 "\n",
                           s->clients_now, s->clients_total, s->slow_dropped,
                           s->messages);
}
