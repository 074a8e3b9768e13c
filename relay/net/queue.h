/* queue.h - the consumer of d4-core analyzer queues (queue.c says how):
 * lines from Redis lists into the ingest stage, trimmed once stored. */
#ifndef PDNS_QUEUE_H
#define PDNS_QUEUE_H

#include <uv.h>

#include "config.h"
#include "ingest.h"
#include "store.h"

typedef struct queue_consumer queue_consumer;

/* Starts consuming cfg's queues into `in`; `st` is the store to wait for
 * before trimming (NULL when the relay keeps none); `stopping` is read,
 * never written. Returns NULL with *err set on failure, NULL with err ""
 * when there are no queues to consume. */
queue_consumer *queue_start(uv_loop_t *loop, const relay_config *cfg,
                            ingest *in, store *st, const int *stopping,
                            char *err, size_t errlen);
int queue_idle(const queue_consumer *qc);   /* no batch in flight (or NULL) */

/* The store acknowledged a batch: the one waiting for it is trimmed. */
void queue_stored(queue_consumer *qc);
void queue_stop(queue_consumer *qc);
void queue_free(queue_consumer *qc);   /* once the loop has closed its handles */

#endif
