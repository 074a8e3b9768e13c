/* d4_listener.h - the D4 protocol v1 listener over TLS (d4_listener.c):
 * sessions of registered sensors and partner relays, fed into the ingest
 * stage. */
#ifndef PDNS_D4_LISTENER_H
#define PDNS_D4_LISTENER_H

#include <libwebsockets.h>

#include "config.h"
#include "ingest.h"
#include "session.h"
#include "store.h"

struct d4_conn;

typedef struct d4_listener {
    relay_config *cfg;           /* sensors (their counters change), timeouts */
    ingest *in;
    store *st;                   /* NULL: no store, no backpressure */
    d4_session_conf sconf;
    struct d4_conn *conns;       /* open connections (list) */
    /* when set, a new connection is not read until d4_listener_release(l,
     * id) (the partner relays' chains are read from Redis first) */
    void (*hold)(void *ctx, uint64_t id);
    void *hold_ctx;
    uint64_t next_id;
} d4_listener;

/* Fills in l for cfg; the connections come and go with the vhost. */
void d4_listener_init(d4_listener *l, relay_config *cfg, ingest *in, store *st);

/* Closes connections whose frame has not completed in time. */
void d4_listener_sweep(d4_listener *l);

/* Resumes reading the connections paused for the store's backpressure. */
void d4_listener_resume(d4_listener *l);

/* The connection held with id may be read (no-op when it is gone). */
void d4_listener_release(d4_listener *l, uint64_t id);

/* The relay is stopping: the sessions still open end for that reason. */
void d4_listener_stopping(d4_listener *l);

/* The lws protocol of the D4 vhost; the vhost's user pointer is the
 * d4_listener it serves. */
extern const struct lws_protocols d4_listener_protocol;

#endif
