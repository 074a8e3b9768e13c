/* stream.h - the open data stream: the signed batches of the policy named
 * for open data, published to WebSocket clients on /stream, one COF object
 * (or one trailer) per message.
 *
 * Every client has its own bounded queue: a client that falls behind by
 * more than stream.max_client_bytes is disconnected and counted; it never
 * slows the relay or the other clients. A bounded history of recent
 * batches lets a client start with ?since=SEQ. No I/O here beyond handing
 * messages to lws when a client is writable. */
#ifndef PDNS_STREAM_H
#define PDNS_STREAM_H

#include <libwebsockets.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

typedef struct stream_msg {
    struct stream_msg *next;
    size_t len;
    unsigned char data[];  /* LWS_PRE bytes of headroom, then the text */
} stream_msg;

typedef struct stream_client {
    struct lws *wsi;
    int http;               /* /stream.ndjson: chunked HTTP, lines */
    stream_msg *head, *tail;
    size_t queued;          /* bytes waiting */
    int dead;
    struct stream_client *next, **pprev;
    struct stream *s;
} stream_client;

typedef struct stream_batch {
    uint64_t seq;
    char *text;             /* the batch's lines, trailer last */
    size_t len;
} stream_batch;

typedef struct stream {
    char policy[64];        /* the partner policy whose output goes here */
    size_t max_client_bytes;
    size_t history_max;     /* batches kept for ?since= */
    stream_batch *hist;     /* ring */
    size_t hist_n, hist_head;
    stream_client *clients;
    uint64_t clients_total, clients_now, slow_dropped, messages;
} stream;

void stream_init(stream *s, const char *policy, size_t max_client_bytes,
                 size_t history_max);
void stream_free(stream *s);

/* A new signed batch (COF lines then the trailer line, each "\n"-ended):
 * kept in the history and queued to every client. */
void stream_publish(stream *s, uint64_t seq, const char *text, size_t len);

/* A client joined; it first gets the kept batches with seq >= since
 * (since 0: none, only new ones). Returns 0, or -1. */
int stream_client_open(stream *s, stream_client *c, struct lws *wsi,
                       uint64_t since, int http);

/* Writes one queued message. Returns -1 when the client must be closed. */
int stream_client_writable(stream_client *c);

void stream_client_close(stream_client *c);

/* The stream's counters in Prometheus text. Returns 0, or -1. */
int stream_metrics(const stream *s, pdns_buf *b);

#endif
