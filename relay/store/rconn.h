/* rconn.h - one hiredis async connection on the relay's loop that stays
 * up: connects, sends AUTH when the URL has credentials, SELECTs the
 * database (a reply other than OK drops the link: not a Redis, or
 * credentials refused), and when Redis goes away (a close, a reset, or no
 * answer to the connect within CONNECT_TIMEOUT_MS) retries with
 * exponential backoff, logging the outage once. hiredis is glued to libuv
 * by rconn.c itself: the adapter hiredis 0.14 ships ignores socket errors,
 * so a reset link would never be noticed. Its users (the d4-core queue
 * consumer, the store, the delivery outboxes) are told when it is ready
 * and when it is gone. */
#ifndef PDNS_RCONN_H
#define PDNS_RCONN_H

#include <hiredis/async.h>
#include <stdint.h>
#include <uv.h>

/* Replies built in one arena (rconn_arena_replies). */
typedef struct rconn_block rconn_block;
typedef struct rconn_arena {
    rconn_block *head, *cur;
} rconn_arena;

typedef struct rconn {
    uv_loop_t *loop;
    char host[256];
    int port, db;
    char user[128], pass[512];  /* AUTH [user] pass first, when pass is set */
    const char *what;          /* for the log: "d4-core Redis" */
    const int *stopping;       /* no retries once *stopping */
    void (*on_ready)(void *ctx);
    void (*on_down)(void *ctx);/* commands in flight got NULL replies */
    void *ctx;
    /* state */
    redisAsyncContext *ac;     /* usable when ready */
    int ready, connecting, logged_down;
    int logged_refused;          /* AUTH or SELECT refusal logged: once until connected */
    uint64_t backoff_ms;
    uint64_t disconnects;      /* failed connects and lost connections */
    uint64_t *count_into;      /* also counted here, when set */
    uv_timer_t timer;
    int version_checked;       /* INFO server read once (rconn_version_ok) */
    int use_arena;             /* rconn_arena_replies */
    rconn_arena arena;
} rconn;

/* Fills in what the connection is: where it goes, its name in the log,
 * the stop flag and the callbacks (ctx is theirs). Leaves the rest zero. */
void rconn_init(rconn *c, uv_loop_t *loop, const char *host, int port, int db,
                const char *what, const int *stopping, void (*on_ready)(void *),
                void (*on_down)(void *), void *ctx);

/* The credentials of a redis:// or redis+cluster:// URL: USER:PASSWORD@
 * or :PASSWORD@ before the host (or the seeds), percent-encoded. 0 with
 * user and pass set ("" when the URL has none), or -1: not well formed
 * (a bad %-escape, a user without a password, too long). */
int rconn_url_auth(const char *url, char *user, size_t usize, char *pass, size_t psize);

/* Where url's host (or its seeds) starts: after the scheme and the
 * credentials. */
const char *rconn_url_host(const char *url);

/* url with its credentials masked (the user and password shown as three stars), for the
 * log and the console: out. */
const char *rconn_url_shown(const char *url, char *out, size_t size);

/* Whether the server an INFO reply describes is Redis 6.2 or later (what
 * partner outboxes and the mixer's journal need: exclusive XRANGE ranges,
 * XTRIM MINID): 1, or 0 with its version in ver. A server that does not
 * say (not Redis) counts as new enough. Each link logs a warning once
 * when its server is older. */
int rconn_version_ok(const char *info, char *ver, size_t vsize);

/* AUTH [user] pass on every connection this link makes (pass "": none).
 * Before rconn_start. */
void rconn_set_auth(rconn *c, const char *user, const char *pass);

/* The same with the credentials of url (rconn_url_auth); -1 when they
 * are not well formed. */
int rconn_auth_from(rconn *c, const char *url);

/* Builds the replies of this connection in an arena of its own instead of
 * an allocation per object (a d4-core queue batch is thousands of strings):
 * a reply lives until its callback returns, as with hiredis's own objects,
 * and must not be kept or freed with freeReplyObject. Before rconn_start. */
void rconn_arena_replies(rconn *c);

/* Frees what the connection keeps once its loop has ended (the arena). */
void rconn_free(rconn *c);

/* Starts connecting. Returns 0. */
int rconn_start(rconn *c);

/* Disconnects; the handles close on the next loop turns. */
void rconn_stop(rconn *c);

#endif
