/* rsync.c - a blocking link to one Redis server or a Redis Cluster. See
 * rsync.h. */
#include "rsync.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rconn.h"
#include "rlink.h"

#define REDIRECTS_MAX 8

struct rsync {
    char url[512], host[280];
    char user[128], pass[512];  /* the URL's credentials (rconn_url_auth) */
    int port, db, cluster, timeout_ms;
    redisContext *c;
    char at_host[280];          /* where c is connected */
    int at_port;
};

rsync *rsync_new(const char *url, const char *host, int port, int db, int timeout_ms) {
    rsync *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    snprintf(r->url, sizeof(r->url), "%s", url);
    int kind = rlink_url_kind(url); /* -1: credentials not well formed */
    if (kind < 0) {
        free(r);
        return NULL;
    }
    rconn_url_auth(url, r->user, sizeof(r->user), r->pass, sizeof(r->pass));
    r->cluster = kind == 1;
    if (r->cluster) {
        if (rlink_seed(url, 0, r->host, sizeof(r->host), &r->port) < 0) {
            free(r);
            return NULL;
        }
    } else {
        snprintf(r->host, sizeof(r->host), "%s", host);
        r->port = port;
        r->db = db;
    }
    r->timeout_ms = timeout_ms;
    return r;
}

static void drop(rsync *r) {
    if (r->c)
        redisFree(r->c);
    r->c = NULL;
}

void rsync_free(rsync *r) {
    if (!r)
        return;
    drop(r);
    free(r);
}

/* Connected to host:port (and the database selected). 0, or -1 with err. */
static int connect_to(rsync *r, const char *host, int port, char *err, size_t errlen) {
    if (r->c && r->at_port == port && strcmp(r->at_host, host) == 0)
        return 0;
    drop(r);
    struct timeval tv = {r->timeout_ms / 1000, (r->timeout_ms % 1000) * 1000};
    r->c = redisConnectWithTimeout(host, port, tv);
    if (!r->c || r->c->err) {
        snprintf(err, errlen, "%s:%d: %s", host, port, r->c ? r->c->errstr : "out of memory");
        drop(r);
        return -1;
    }
    redisSetTimeout(r->c, tv);
    if (r->pass[0]) {
        redisReply *rep = r->user[0] ? redisCommand(r->c, "AUTH %s %s", r->user, r->pass)
                                     : redisCommand(r->c, "AUTH %s", r->pass);
        if (!rep || rep->type != REDIS_REPLY_STATUS) {
            snprintf(err, errlen, "%s:%d: AUTH refused: %s", host, port,
                     rep && rep->type == REDIS_REPLY_ERROR ? rep->str : "no reply");
            freeReplyObject(rep);
            drop(r);
            return -1;
        }
        freeReplyObject(rep);
    }
    snprintf(r->at_host, sizeof(r->at_host), "%s", host);
    r->at_port = port;
    if (!r->cluster && r->db) {
        redisReply *rep = redisCommand(r->c, "SELECT %d", r->db);
        int ok = rep && rep->type == REDIS_REPLY_STATUS;
        freeReplyObject(rep);
        if (!ok) {
            snprintf(err, errlen, "%s:%d: SELECT %d refused", host, port, r->db);
            drop(r);
            return -1;
        }
    }
    return 0;
}

/* "MOVED 3999 host:port": the node named, into host and port */
static int redirect(const char *msg, char *host, size_t hsize, int *port) {
    const char *sp = strchr(msg, ' ');
    sp = sp ? strchr(sp + 1, ' ') : NULL;
    const char *colon = sp ? strrchr(sp + 1, ':') : NULL;
    if (!colon || (size_t)(colon - sp - 1) >= hsize)
        return -1;
    snprintf(host, hsize, "%.*s", (int)(colon - sp - 1), sp + 1);
    if (!host[0])
        snprintf(host, hsize, "127.0.0.1");
    *port = atoi(colon + 1);
    return *port > 0 ? 0 : -1;
}

redisReply *rsync_argv(rsync *r, const char *key, int argc, const char **argv,
                       const size_t *argl, char *err, size_t errlen) {
    char host[280];
    int port, ask = 0;
    (void)key; /* routed by the cluster's answers: MOVED names the node */
    snprintf(host, sizeof(host), "%s", r->c ? r->at_host : r->host);
    port = r->c ? r->at_port : r->port;
    for (int hop = 0; hop <= REDIRECTS_MAX; hop++) {
        if (connect_to(r, host, port, err, errlen) < 0) {
            /* a cluster: any seed that answers will redirect */
            int i = 0;
            while (r->cluster && hop == 0 && !r->c &&
                   rlink_seed(r->url, i++, host, sizeof(host), &port) == 0)
                connect_to(r, host, port, err, errlen);
            if (!r->c)
                return NULL;
        }
        if (ask) {
            redisReply *a = redisCommand(r->c, "ASKING");
            freeReplyObject(a);
        }
        redisReply *rep = redisCommandArgv(r->c, argc, argv, argl);
        if (!rep) {
            snprintf(err, errlen, "%s:%d: %s", host, port, r->c->errstr);
            drop(r);
            return NULL;
        }
        if (rep->type == REDIS_REPLY_ERROR && r->cluster &&
            (strncmp(rep->str, "MOVED ", 6) == 0 || strncmp(rep->str, "ASK ", 4) == 0)) {
            ask = rep->str[0] == 'A';
            int bad = redirect(rep->str, host, sizeof(host), &port);
            freeReplyObject(rep);
            if (bad < 0) {
                snprintf(err, errlen, "a redirection this link cannot read");
                return NULL;
            }
            continue;
        }
        return rep;
    }
    snprintf(err, errlen, "too many redirections");
    return NULL;
}
