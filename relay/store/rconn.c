/* rconn.c - a self-healing hiredis async connection. See rconn.h. */
#include "rconn.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "record.h"

#define CONNECT_TIMEOUT_MS 2000
#define BACKOFF_MAX_MS 30000

static void try_connect(rconn *c);
static void on_timer(uv_timer_t *t);

/* ---- replies in an arena ---------------------------------------------------
 * hiredis's async context reads one reply, runs its callback, frees it and
 * only then reads the next: one reply lives at a time, so its objects are
 * carved out of blocks kept from one reply to the next, and freeing the
 * reply (hiredis calls freeObject on the top object only) makes the blocks
 * free again. Up to ARENA_KEEP bytes of blocks are kept. */
#define ARENA_BLOCK (256u << 10)
#define ARENA_KEEP (4u << 20)

struct rconn_block {
    rconn_block *next;
    size_t cap, len;
    _Alignas(16) char data[];
};

static void *arena_alloc(rconn_arena *a, size_t n) {
    n = (n + 15) & ~(size_t)15;
    for (;;) {
        rconn_block *b = a->cur;
        if (b && b->cap - b->len >= n) {
            void *p = b->data + b->len;
            b->len += n;
            return p;
        }
        if (b && b->next) { /* a block kept from an earlier reply */
            a->cur = b->next;
            continue;
        }
        size_t cap = n > ARENA_BLOCK ? n : ARENA_BLOCK;
        rconn_block *nb = malloc(sizeof(*nb) + cap);
        if (!nb)
            return NULL;
        nb->next = NULL;
        nb->cap = cap;
        nb->len = 0;
        if (b)
            b->next = nb;
        else
            a->head = nb;
        a->cur = nb;
    }
}

static void arena_reset(rconn_arena *a) {
    size_t kept = 0;
    rconn_block **pp = &a->head;
    while (*pp) {
        rconn_block *b = *pp;
        if (kept + b->cap > ARENA_KEEP) {
            *pp = b->next;
            free(b);
            continue;
        }
        kept += b->cap;
        b->len = 0;
        pp = &b->next;
    }
    a->cur = a->head;
}

/* A new object: linked into its parent array, as hiredis's own are; a
 * reply's top object has its arena before it, for arena_free. */
#define ARENA_HEAD 16
static redisReply *arena_reply(const redisReadTask *task, int type, size_t extra) {
    size_t head = task->parent ? 0 : ARENA_HEAD;
    char *p = arena_alloc(task->privdata, head + sizeof(redisReply) + extra);
    if (!p)
        return NULL;
    if (head)
        memcpy(p, &task->privdata, sizeof(task->privdata));
    redisReply *r = (redisReply *)(p + head);
    memset(r, 0, sizeof(*r));
    r->type = type;
    if (task->parent)
        ((redisReply *)task->parent->obj)->element[task->idx] = r;
    return r;
}

static void *arena_string(const redisReadTask *task, char *str, size_t len) {
    redisReply *r = arena_reply(task, task->type, len + 1);
    if (!r)
        return NULL;
    r->str = (char *)(r + 1);
    memcpy(r->str, str, len);
    r->str[len] = '\0';
    r->len = len;
    return r;
}

static void *arena_array(const redisReadTask *task, int elements) {
    size_t n = elements > 0 ? (size_t)elements : 0;
    redisReply *r = arena_reply(task, REDIS_REPLY_ARRAY, n * sizeof(redisReply *));
    if (!r)
        return NULL;
    r->elements = n;
    /* filled by the elements as they are read, and not read before the
     * reply is whole: left untouched, as calloc would leave the pages of
     * an array a server announces and never sends */
    r->element = n ? (redisReply **)(r + 1) : NULL;
    return r;
}

static void *arena_integer(const redisReadTask *task, long long value) {
    redisReply *r = arena_reply(task, REDIS_REPLY_INTEGER, 0);
    if (r)
        r->integer = value;
    return r;
}

static void *arena_nil(const redisReadTask *task) {
    return arena_reply(task, REDIS_REPLY_NIL, 0);
}

/* The reader frees only a reply's top object: after its callback, or a
 * partial reply when the link goes. */
static void arena_free(void *reply) {
    rconn_arena *a;
    memcpy(&a, (char *)reply - ARENA_HEAD, sizeof(a));
    arena_reset(a);
}

static redisReplyObjectFunctions arena_fns = {arena_string, arena_array, arena_integer,
                                              arena_nil, arena_free};

/* ---- hiredis on the libuv loop ------------------------------------------
 * hiredis 0.14's own libuv adapter (adapters/libuv.h) returns from its poll
 * callback when libuv reports an error on the socket, which it does when
 * the server resets the connection (Redis shutting down with a command of
 * ours unread, say): hiredis then never reads, never learns the link is
 * gone, and waits forever. This one hands an error to hiredis as a read,
 * which fails and disconnects as it should. Otherwise the same glue. */
typedef struct uv_events {
    redisAsyncContext *ac;   /* NULL once hiredis let go of us */
    uv_poll_t handle;
    int events;
} uv_events;

static void on_poll(uv_poll_t *h, int status, int events) {
    uv_events *p = h->data;
    if (status < 0) { /* a reset or an error: reading tells hiredis */
        if (p->ac)
            redisAsyncHandleRead(p->ac);
        return;
    }
    if (p->ac && (events & UV_READABLE))
        redisAsyncHandleRead(p->ac);
    if (p->ac && (events & UV_WRITABLE))
        redisAsyncHandleWrite(p->ac);
}

static void set_events(uv_events *p, int add, int del) {
    p->events = (p->events | add) & ~del;
    if (p->events)
        uv_poll_start(&p->handle, p->events, on_poll);
    else
        uv_poll_stop(&p->handle);
}

static void add_read(void *d) { set_events(d, UV_READABLE, 0); }
static void del_read(void *d) { set_events(d, 0, UV_READABLE); }
static void add_write(void *d) { set_events(d, UV_WRITABLE, 0); }
static void del_write(void *d) { set_events(d, 0, UV_WRITABLE); }

static void on_events_closed(uv_handle_t *h) {
    free(h->data);
}

static void cleanup(void *d) {
    uv_events *p = d;
    p->ac = NULL;
    uv_close((uv_handle_t *)&p->handle, on_events_closed);
}

static int attach(redisAsyncContext *ac, uv_loop_t *loop) {
    uv_events *p = calloc(1, sizeof(*p));
    if (!p)
        return -1;
    if (uv_poll_init(loop, &p->handle, ac->c.fd) != 0) {
        free(p);
        return -1;
    }
    p->handle.data = p;
    p->ac = ac;
    ac->ev.data = p;
    ac->ev.addRead = add_read;
    ac->ev.delRead = del_read;
    ac->ev.addWrite = add_write;
    ac->ev.delWrite = del_write;
    ac->ev.cleanup = cleanup;
    return 0;
}

static void retry(rconn *c, const char *why) {
    int was_ready = c->ready;
    c->ac = NULL;
    c->ready = c->connecting = 0;
    if (was_ready && c->on_down)
        c->on_down(c->ctx);
    if (c->stopping && *c->stopping)
        return;
    c->disconnects++;
    if (c->count_into)
        (*c->count_into)++;
    if (!c->logged_down)
        log_warn("%s %s:%d unavailable (%s); retrying with backoff", c->what,
                 c->host, c->port, why);
    c->logged_down = 1;
    c->backoff_ms = c->backoff_ms ? c->backoff_ms * 2 : 250;
    if (c->backoff_ms > BACKOFF_MAX_MS)
        c->backoff_ms = BACKOFF_MAX_MS;
    uv_timer_start(&c->timer, on_timer, c->backoff_ms, 0);
}

static void on_timer(uv_timer_t *t) {
    rconn *c = t->data;
    if (c->connecting) { /* no answer to the connect: give up on it */
        redisAsyncContext *ac = c->ac;
        c->connecting = 0;
        c->ac = NULL;
        redisAsyncFree(ac);
        retry(c, "connection refused or timed out");
        return;
    }
    if (!c->ac)
        try_connect(c);
}

int rconn_version_ok(const char *info, char *ver, size_t vsize) {
    const char *v = strstr(info, "redis_version:");
    if (!v)
        return 1;
    v += 14;
    snprintf(ver, vsize, "%.*s", (int)strcspn(v, "\r\n"), v);
    int major = atoi(ver), minor = 0;
    const char *dot = strchr(ver, '.');
    if (dot)
        minor = atoi(dot + 1);
    return major > 6 || (major == 6 && minor >= 2);
}

static void on_info(redisAsyncContext *ac, void *reply, void *priv) {
    rconn *c = priv;
    redisReply *rep = reply;
    char ver[32];
    (void)ac;
    if (!rep || rep->type != REDIS_REPLY_STRING)
        return; /* gone, or INFO refused (an ACL): asked again next time */
    c->version_checked = 1;
    if (!rconn_version_ok(rep->str, ver, sizeof(ver)))
        log_warn("%s %s:%d runs Redis %s: partner outboxes and the mixer's journal in "
                 "Redis need 6.2 or later (the store works)", c->what, c->host, c->port, ver);
}

static void on_select(redisAsyncContext *ac, void *reply, void *priv) {
    rconn *c = priv;
    redisReply *rep = reply;
    (void)ac;
    if (!rep)
        return; /* gone again: on_disconnect retries */
    if (rep->type != REDIS_REPLY_STATUS) {
        /* an error, or not a Redis at all (a TCP self-connect to a free
         * local port reads its own command back): drop it and retry */
        if (!c->logged_refused)
            log_error("%s: SELECT %d failed: %s (retrying with backoff; logged once until "
                      "it connects)", c->what, c->db,
                      rep->type == REDIS_REPLY_ERROR ? rep->str : "unexpected reply");
        c->logged_refused = 1;
        redisAsyncDisconnect(ac);
        return;
    }
    if (!c->version_checked)
        redisAsyncCommand(ac, on_info, c, "INFO server");
    c->ready = 1;
    c->backoff_ms = 0;
    c->logged_refused = 0;
    if (c->logged_down)
        log_info("%s: connected again", c->what);
    c->logged_down = 0;
    if (c->on_ready)
        c->on_ready(c->ctx);
}

static void on_auth(redisAsyncContext *ac, void *reply, void *priv) {
    rconn *c = priv;
    redisReply *rep = reply;
    if (!rep)
        return; /* gone again: on_disconnect retries */
    if (rep->type != REDIS_REPLY_STATUS) {
        /* the reply names no credential: WRONGPASS, or AUTH unknown */
        if (!c->logged_refused)
            log_error("%s %s:%d: AUTH refused: %s (retrying with backoff; logged once "
                      "until it connects)", c->what, c->host, c->port,
                      rep->type == REDIS_REPLY_ERROR ? rep->str : "unexpected reply");
        c->logged_refused = 1;
        redisAsyncDisconnect(ac);
        return;
    }
    redisAsyncCommand(ac, on_select, c, "SELECT %d", c->db);
}

static void on_connect(const redisAsyncContext *ac, int status) {
    rconn *c = ac->data;
    c->connecting = 0;
    uv_timer_stop(&c->timer);
    if (status != REDIS_OK) { /* hiredis 0.14: no disconnect callback now */
        retry(c, ac->errstr);
        return;
    }
    redisAsyncContext *a = (redisAsyncContext *)ac;
    if (c->user[0])
        redisAsyncCommand(a, on_auth, c, "AUTH %s %s", c->user, c->pass);
    else if (c->pass[0])
        redisAsyncCommand(a, on_auth, c, "AUTH %s", c->pass);
    else
        redisAsyncCommand(a, on_select, c, "SELECT %d", c->db);
}

static void on_disconnect(const redisAsyncContext *ac, int status) {
    retry(ac->data, status == REDIS_OK ? "closed" : ac->errstr);
}

static void try_connect(rconn *c) {
    redisAsyncContext *ac = redisAsyncConnect(c->host, c->port);
    if (!ac || ac->err) {
        char why[128];
        snprintf(why, sizeof(why), "%s", ac ? ac->errstr : "out of memory");
        if (ac)
            redisAsyncFree(ac);
        retry(c, why);
        return;
    }
    ac->data = c;
    if (c->use_arena) {
        ac->c.reader->fn = &arena_fns;
        ac->c.reader->privdata = &c->arena;
    }
    if (attach(ac, c->loop) < 0) {
        redisAsyncFree(ac);
        retry(c, "out of memory");
        return;
    }
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    c->ac = ac;
    c->connecting = 1;
    uv_timer_start(&c->timer, on_timer, CONNECT_TIMEOUT_MS, 0);
}

void rconn_init(rconn *c, uv_loop_t *loop, const char *host, int port, int db,
                const char *what, const int *stopping, void (*on_ready)(void *),
                void (*on_down)(void *), void *ctx) {
    memset(c, 0, sizeof(*c));
    c->loop = loop;
    snprintf(c->host, sizeof(c->host), "%s", host);
    c->port = port;
    c->db = db;
    c->what = what;
    c->stopping = stopping;
    c->on_ready = on_ready;
    c->on_down = on_down;
    c->ctx = ctx;
}

/* The URL's userinfo: what lies between "://" and the last '@' before
 * the path. len 0: none. */
static const char *userinfo(const char *url, size_t *len) {
    const char *s = strstr(url, "://");
    *len = 0;
    if (!s)
        return NULL;
    s += 3;
    size_t span = strcspn(s, "/");
    const char *at = NULL;
    for (const char *p = s; p < s + span; p++)
        if (*p == '@')
            at = p;
    if (at)
        *len = (size_t)(at - s);
    return at ? s : NULL;
}

/* p[0..n) percent-decoded into out: 0, or -1 (a bad escape, a NUL, too long) */
static int unescape(const char *p, size_t n, char *out, size_t size) {
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int ch = (unsigned char)p[i];
        if (ch == '%') {
            int hi = i + 2 < n ? pdns_hexval(p[i + 1]) : -1;
            int lo = hi >= 0 ? pdns_hexval(p[i + 2]) : -1;
            if (lo < 0)
                return -1;
            ch = hi * 16 + lo;
            i += 2;
        }
        if (ch == 0 || o + 1 >= size)
            return -1;
        out[o++] = (char)ch;
    }
    out[o] = '\0';
    return 0;
}

int rconn_url_auth(const char *url, char *user, size_t usize, char *pass, size_t psize) {
    size_t n;
    const char *u = userinfo(url, &n);
    user[0] = pass[0] = '\0';
    if (!u)
        return 0;
    const char *colon = memchr(u, ':', n);
    if (!colon) /* a user alone: Redis has no AUTH without a password */
        return -1;
    if (unescape(u, (size_t)(colon - u), user, usize) < 0 ||
        unescape(colon + 1, n - (size_t)(colon - u) - 1, pass, psize) < 0 || !pass[0])
        return -1;
    return 0;
}

const char *rconn_url_host(const char *url) {
    size_t n;
    const char *u = userinfo(url, &n), *s = strstr(url, "://");
    return u ? u + n + 1 : s ? s + 3 : url;
}

const char *rconn_url_shown(const char *url, char *out, size_t size) {
    size_t n;
    const char *u = userinfo(url, &n);
    if (!u)
        snprintf(out, size, "%s", url);
    else
        snprintf(out, size, "%.*s***%s", (int)(u - url), url, u + n);
    return out;
}

void rconn_set_auth(rconn *c, const char *user, const char *pass) {
    snprintf(c->user, sizeof(c->user), "%s", user);
    snprintf(c->pass, sizeof(c->pass), "%s", pass);
}

int rconn_auth_from(rconn *c, const char *url) {
    return rconn_url_auth(url, c->user, sizeof(c->user), c->pass, sizeof(c->pass));
}

void rconn_arena_replies(rconn *c) {
    c->use_arena = 1;
}

void rconn_free(rconn *c) {
    while (c->arena.head) {
        rconn_block *b = c->arena.head;
        c->arena.head = b->next;
        free(b);
    }
    c->arena.cur = NULL;
}

int rconn_start(rconn *c) {
    uv_timer_init(c->loop, &c->timer);
    c->timer.data = c;
    try_connect(c);
    return 0;
}

void rconn_stop(rconn *c) {
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, NULL);
    if (c->ac && !c->connecting)
        redisAsyncDisconnect(c->ac);
    else if (c->ac)
        redisAsyncFree(c->ac);
    c->ac = NULL;
}
