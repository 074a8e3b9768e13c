/* stream.h - the open data stream: the signed batches of the policy named
 * for open data, published to WebSocket clients on /stream, one COF object
 * (or one trailer) per message.
 *
 * Published lines are kept once, in a shared log; each client holds a
 * cursor into it. A client that falls behind by more than
 * stream.max_client_bytes is disconnected and counted, so the log never
 * holds more than that (plus the batch being published), however many
 * clients there are and whether they read or not. A bounded history of
 * recent batches lets a client start with ?since=SEQ: that replay is the
 * client's own queue, bounded per client and in total. Clients are capped
 * overall and per address. No I/O here beyond handing messages to lws
 * when a client is writable. */
#ifndef PDNS_STREAM_H
#define PDNS_STREAM_H

#include <libwebsockets.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

typedef struct stream_msg {
    struct stream_msg *next;
    uint64_t off;           /* shared log: the stream's bytes before it */
    uint32_t refs;          /* shared log: clients whose next message it is */
    size_t len;             /* the line with its newline */
    unsigned char data[];   /* LWS_PRE bytes of headroom, then the text */
} stream_msg;

typedef struct stream_client {
    struct lws *wsi;
    int http;               /* /stream.ndjson: chunked HTTP, lines */
    stream_msg *head, *tail;/* its own replay (?since=), sent first */
    size_t queued;          /* bytes the replay holds (allocations) */
    stream_msg *cur;        /* the next shared message; NULL: caught up */
    int dead;
    char ip[64];
    struct stream_client *next, **pprev;
    struct stream *s;
} stream_client;

typedef struct stream_batch {
    uint64_t seq;
    char *text;             /* the batch's lines, trailer last */
    size_t len;
} stream_batch;

typedef struct stream_limits {
    size_t max_client_bytes;   /* how far behind a client may fall */
    size_t history;            /* batches kept for ?since= */
    size_t max_clients, max_clients_per_address;
    size_t max_replay_bytes;   /* all clients' ?since= replays together */
} stream_limits;

typedef struct stream {
    char policy[64];        /* the partner policy whose output goes here */
    stream_limits lim;
    stream_batch *hist;     /* ring */
    size_t hist_n, hist_head;
    stream_msg *log_head, *log_tail; /* the shared log, oldest first */
    uint64_t log_end;       /* bytes published so far */
    size_t log_bytes;       /* held in the log (allocations) */
    size_t replay_bytes;    /* held in replays (allocations) */
    stream_client *clients;
    uint64_t clients_total, clients_now, slow_dropped, messages, refused;
} stream;

void stream_init(stream *s, const char *policy, const stream_limits *lim);
void stream_free(stream *s);

/* A new signed batch (COF lines then the trailer line, each "\n"-ended):
 * kept in the history and in the shared log. */
void stream_publish(stream *s, uint64_t seq, const char *text, size_t len);

/* May a client from ip join? 1, or 0 with the reason in why (counted). */
int stream_admit(stream *s, const char *ip, char *why, size_t whylen);

/* A client joined; it first gets the kept batches with seq >= since
 * (since 0: none, only new ones). Returns 0, or -1. */
int stream_client_open(stream *s, stream_client *c, struct lws *wsi,
                       const char *ip, uint64_t since, int http);

/* Writes one queued message. Returns -1 when the client must be closed. */
int stream_client_writable(stream_client *c);

void stream_client_close(stream_client *c);

/* The stream's counters in Prometheus text. Returns 0, or -1. */
int stream_metrics(const stream *s, pdns_buf *b);

#endif
