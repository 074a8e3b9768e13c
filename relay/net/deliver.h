/* deliver.h - delivery of signed batches to partner D4 networks: a durable
 * Redis Stream outbox per partner and a D4/TLS client on the relay's loop
 * (deliver.c says how). Knows the partners from the policy stage (share.h);
 * does not make batches. */
#ifndef PDNS_DELIVER_H
#define PDNS_DELIVER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "buf.h"
#include "config.h"
#include "share.h"

typedef struct deliver deliver;

/* Starts delivery for the partners of `sh` that have an endpoint. Returns
 * NULL with *err set when it cannot; returns NULL with err "" when there is
 * nothing to deliver (no policy directory). `stopping` is read, never
 * written: a link that goes down while it is set is not retried. */
deliver *deliver_start(uv_loop_t *loop, const relay_config *cfg, share *sh,
                       const int *stopping, char *err, size_t errlen);
void deliver_sync(deliver *d);  /* after a policy reload: new endpoints */
/* Appends a signed batch to partner name's outbox; mark ("<chain hash hex>
 * <delay line place>") is what the outbox remembers of the last batch, after
 * the run's boot id and seq. */
void deliver_enqueue(deliver *d, const char *name, uint64_t seq, const char *mark,
                     const char *text, size_t len);
/* 1 when every byte written to a partner has been acknowledged (or its
 * link is down): a stopping relay waits for this, bounded, so that a clean
 * restart sends nothing twice. */
int deliver_settled(const deliver *d);
void deliver_stop(deliver *d);

/* The Redis Stream that is partner name's outbox on relay relay_id. */
void deliver_outbox_key(const char *relay_id, const char *name, char *out, size_t size);
void deliver_free(deliver *d);  /* once the loop has closed its handles */
int deliver_metrics(const deliver *d, pdns_buf *b);

/* One partner's delivery as the console shows it. */
typedef struct deliver_view {
    int endpoint;          /* 0: no endpoint (the outbox file only) */
    int up;                /* connected and the TLS handshake done */
    uint64_t outbox;       /* batches in its outbox, not yet confirmed */
    uint64_t unconfirmed;  /* of the relay's own Redis: batches it has not yet taken */
    uint64_t reconnects;
} deliver_view;

/* Fills v for partner name: 0, or -1 when it has no delivery. */
int deliver_partner(const deliver *d, const char *name, deliver_view *v);

#endif
