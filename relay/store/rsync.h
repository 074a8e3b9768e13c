/* rsync.h - a blocking link to the relay's Redis, one server or a Redis
 * Cluster (the URL says which, as for rlink), for the few calls whose
 * answer the relay must have before it goes on: the mixer's checkpoint and
 * its restore at start. It connects on demand with a timeout, SELECTs the
 * database, follows MOVED and ASK to the node that has the key, and drops
 * the connection after any error so that the next call connects afresh.
 * Everything else goes through rlink, on the loop. */
#ifndef PDNS_RSYNC_H
#define PDNS_RSYNC_H

#include <hiredis/hiredis.h>
#include <stddef.h>

typedef struct rsync rsync;

/* A link for url (host, port and db as the configuration parsed them for
 * one server; a cluster's seeds come from the URL); each call waits at
 * most timeout_ms for each reply. NULL when out of memory or when url
 * is not a Redis URL (rlink_url_kind). */
rsync *rsync_new(const char *url, const char *host, int port, int db, int timeout_ms);
void rsync_free(rsync *r);

/* One command (argument vector) about key: its reply (the caller frees it
 * with freeReplyObject), or NULL with the reason in err. An error reply is
 * a reply. */
redisReply *rsync_argv(rsync *r, const char *key, int argc, const char **argv,
                       const size_t *argl, char *err, size_t errlen);

#endif
