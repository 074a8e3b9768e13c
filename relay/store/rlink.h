/* rlink.h - the relay's link to its own Redis: one server (an rconn) or a
 * Redis Cluster, chosen by the URL:
 *   redis://HOST[:PORT][/DB]                 one server
 *   redis+cluster://HOST:PORT[,HOST:PORT...] a cluster, found from these seeds
 * On a cluster the link reads the slot map (CLUSTER SLOTS), keeps one
 * connection per master on the loop (rconn, so each stays up on its own),
 * sends each command to the master of its key's slot (CRC16, hash tags as
 * Redis computes them), follows MOVED (and re-reads the map) and ASK
 * (ASKING first), waits out TRYAGAIN and CLUSTERDOWN, and re-reads the map
 * when a master goes away, until its replica has taken over.
 *
 * The link is ready when every slot has a master whose connection is up.
 * Commands sent while it is not ready, or redirected to a master not up
 * yet, wait (at most RLINK_PARKED_MAX; beyond, they get a NULL reply). A
 * command whose connection drops while it is in flight gets a NULL reply,
 * as with one server: the caller decides whether to send it again. */
#ifndef PDNS_RLINK_H
#define PDNS_RLINK_H

#include <hiredis/async.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "buf.h"

#define RLINK_PARKED_MAX 100000

typedef struct rlink rlink;

/* The slot of a key (0..16383), as Redis Cluster computes it. */
unsigned rlink_key_slot(const char *key, size_t len);

/* 1 when url names a cluster (redis+cluster://), 0 for one server, -1
 * when it is neither or malformed (seeds: at most 16, each HOST:PORT). */
int rlink_url_kind(const char *url);

/* Seed i of a redis+cluster:// URL: 0 with its host and port, or -1. */
int rlink_seed(const char *url, int i, char *host, size_t hsize, int *port);

/* A link for url; for one server (redis://) the caller gives its host,
 * port and database, as the configuration parsed them; for a cluster the
 * seeds come from the URL. what names it in the log. on_ready runs each
 * time it becomes ready, on_down each time it stops being ready. NULL when
 * the URL is malformed or memory is short. */
rlink *rlink_new(uv_loop_t *loop, const char *url, const char *host, int port, int db,
                 const char *what, const int *stopping, void (*on_ready)(void *),
                 void (*on_down)(void *), void *ctx);
int rlink_start(rlink *l);
void rlink_stop(rlink *l);   /* then the loop closes the handles */
void rlink_free(rlink *l);   /* after the loop has closed them */

int rlink_ready(const rlink *l);
int rlink_is_cluster(const rlink *l);

/* The replicas the master of slot had in the last map read (0 for one
 * server): a WAIT for one only makes sense when there is one. */
int rlink_slot_replicas(const rlink *l, unsigned slot);

/* Sends a command (redisFormatCommand's format) about key. The callback
 * gets the final reply (after redirections) or NULL. Returns 0, or -1 when
 * the command could not be formatted or queued (cb is then not called). */
int rlink_command(rlink *l, const char *key, redisCallbackFn *cb, void *priv,
                  const char *fmt, ...);

/* The same for a command already in RESP (len bytes, copied for a
 * cluster), sent to the master of slot (ignored for one server). */
int rlink_formatted(rlink *l, unsigned slot, redisCallbackFn *cb, void *priv,
                    const char *cmd, size_t len);

/* The same for an argument vector, about key. */
int rlink_argv(rlink *l, const char *key, redisCallbackFn *cb, void *priv, int argc,
               const char **argv, const size_t *argl);

/* Counters of a cluster link (all 0 for one server). */
typedef struct rlink_stats {
    uint64_t moved, ask, retried;   /* redirections followed, TRYAGAIN/CLUSTERDOWN waits */
    uint64_t map_reads;             /* slot maps read */
    int masters;                    /* masters in the map */
    int lonely;                     /* slots whose master has no replica */
} rlink_stats;
void rlink_get_stats(const rlink *l, rlink_stats *st);

/* A cluster link's series (name_redirects_total, _map_reads_total,
 * _masters, _slots_without_replica, _ready; whose link in the help text)
 * appended to b; nothing for one server. Returns 0, or -1. */
int rlink_metrics(const rlink *l, const char *name, const char *whose, pdns_buf *b);

/* 1 when slots a and b have the same master in the map (always, for one
 * server), 0 when not or when either has none. */
int rlink_same_master(const rlink *l, unsigned a, unsigned b);

/* "HOST:PORT" of the master of slot (the server, for one server). */
void rlink_slot_master(const rlink *l, unsigned slot, char *out, size_t size);

/* What the link sees, one line per master and slot range, for
 * `cluster-status` and the logs: written into out (NUL-terminated). */
void rlink_describe(const rlink *l, char *out, size_t size);

#endif
