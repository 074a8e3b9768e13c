/* daemon.h - the running relay: one libuv loop shared by libwebsockets
 * (D4 listener, HTTP), hiredis (d4-core queues) and the relay's timers and
 * signals. The pieces below attach to it. */
#ifndef PDNS_DAEMON_H
#define PDNS_DAEMON_H

#include <libwebsockets.h>
#include <uv.h>

#include "config.h"
#include "pool.h"
#include "query.h"
#include "ingest.h"
#include "session.h"
#include "share.h"
#include "store.h"
#include "stream.h"

struct d4_conn;
struct queue_consumer;

typedef struct relay {
    uv_loop_t *loop;
    relay_config cfg;
    ingest in;
    d4_session_conf sconf;
    struct lws_context *lws;
    struct lws_protocols *protocols[2]; /* per vhost, freed at exit */
    struct d4_conn *conns;       /* open D4 connections (list) */
    struct queue_consumer *queue;
    mixer_pool *mix;             /* NULL when mixer.enabled is false */
    mixer_rng mix_rng;
    mixer_stats mix_last;        /* the last batch's figures */
    int64_t mix_last_ms;         /* when the last batch left (unix ms), 0 before */
    uint64_t mix_batches, mix_cap_logged;
    uint64_t mix_cap_log_ms;
    uint64_t mix_tick_ms;
    int mix_fd;
    share sh;                    /* per-partner policies */
    stream st;                   /* the open data stream, if configured */
    store store;                 /* the local COF store */
    int storing;                 /* store.enabled */
    struct http_auth *auth;      /* API keys and users (http_auth.c) */
    query_metrics qm;
    struct deliver *deliver;     /* D4 delivery to partners (deliver.c) */
    int streaming;
    uv_fs_event_t policy_watch;
    uv_timer_t policy_debounce;
    int policy_watching;
    int stopping;
    uint64_t started_ms;
} relay;

/* D4/TLS listener (d4_listener.c) and HTTP endpoints (http_api.c): the
 * lws protocols of their vhosts. */
extern const struct lws_protocols d4_listener_protocol;
extern const struct lws_protocols http_api_protocol;

/* Closes D4 connections whose frame has not completed in time. */
void d4_listener_sweep(relay *r);

/* Resumes reading the D4 connections paused for the store's backpressure. */
void d4_listener_resume(relay *r);

/* d4-core analyzer queues (queue.c). */
int queue_start(relay *r);
int queue_idle(relay *r);   /* no batch in flight */
void queue_stop(relay *r);
void queue_free(relay *r);   /* once the loop has closed its handles */

/* The mixing stage (mix.c). */
int relay_mix_start(relay *r);
void relay_mix_tick(relay *r);
void relay_mix_stop(relay *r);
int relay_mix_metrics(const relay *r, pdns_buf *b);

/* Delivery to partner D4 networks (deliver.c). */
int deliver_start(relay *r);
void deliver_sync(relay *r);  /* after a policy reload: new endpoints */
void deliver_enqueue(relay *r, const char *name, uint64_t seq,
                     const char *text, size_t len);
void deliver_stop(relay *r);
void deliver_free(relay *r);
int deliver_metrics(const relay *r, pdns_buf *b);

uint64_t relay_now_ms(void);

#endif
