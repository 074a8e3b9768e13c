/* rlink.c - one Redis server or a Redis Cluster behind one interface. See
 * rlink.h. hiredis 0.14 has no cluster support and Debian has no
 * hiredis-cluster: the slot map, routing and redirections are here. */
#include "rlink.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "log.h"
#include "rconn.h"

#define SLOTS 16384
#define NODES_MAX 64
#define SEEDS_MAX 16
#define REDIRECTS_MAX 16
#define REFRESH_MS 250      /* the map is re-read this often while not ready */
#define RETRY_MS 100        /* TRYAGAIN, CLUSTERDOWN: sent again after this */
#define LONELY_MS 1000      /* the map is re-read this often while a master has no
                             * replica (one may be joining: its writes then wait
                             * for it) */
#define MAP_MS 30000        /* and this often anyway */

typedef struct node {
    rconn rc;
    rlink *l;
    char what[160];
    int started;
} node;

typedef struct pending {
    struct pending *next;
    rlink *l;
    char *cmd;
    size_t len;
    unsigned slot;
    node *ask;              /* ASK: send once to this node, after ASKING */
    int redirects;
    redisCallbackFn *cb;
    void *priv;
} pending;

struct rlink {
    uv_loop_t *loop;
    const char *what;
    const int *stopping;
    void (*on_ready)(void *);
    void (*on_down)(void *);
    void *ctx;
    int cluster;
    int ready;
    rconn one;                  /* one server */
    char user[128], pass[512];  /* the URL's credentials, for every node */
    /* a cluster */
    node *nodes[NODES_MAX];
    int nnodes;
    node *slots[SLOTS];         /* the master of each slot, or NULL */
    uint8_t replicas[SLOTS];    /* how many replicas it has (at most 255) */
    int refreshing, stale;
    uint64_t map_at_ms;         /* when the map was read last */
    uint64_t refreshes, moved, ask, retried;
    uv_timer_t timer;
    pending *parked, **parked_tail;
    size_t nparked;
};

/* ---- slots --------------------------------------------------------------- */

/* CRC16-CCITT (XModem), as Redis Cluster's keyHashSlot */
static uint16_t crc16(const char *p, size_t n) {
    uint16_t crc = 0;
    for (size_t i = 0; i < n; i++) {
        crc ^= (uint16_t)((uint8_t)p[i] << 8);
        for (int b = 0; b < 8; b++)
            crc = (crc & 0x8000) ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
    }
    return crc;
}

unsigned rlink_key_slot(const char *key, size_t len) {
    const char *open = memchr(key, '{', len);
    if (open) {
        size_t rest = len - (size_t)(open + 1 - key);
        const char *close = memchr(open + 1, '}', rest);
        if (close && close > open + 1)
            return crc16(open + 1, (size_t)(close - open - 1)) & (SLOTS - 1);
    }
    return crc16(key, len) & (SLOTS - 1);
}

/* ---- URLs ---------------------------------------------------------------- */

static int parse_hostport(const char *s, size_t n, char *host, size_t hsize, int *port) {
    const char *colon = NULL;
    for (size_t i = 0; i < n; i++)
        if (s[i] == ':')
            colon = s + i;
    if (!colon || colon == s || (size_t)(colon - s) >= hsize)
        return -1;
    char num[8];
    size_t pl = n - (size_t)(colon + 1 - s);
    if (pl == 0 || pl >= sizeof(num))
        return -1;
    memcpy(num, colon + 1, pl);
    num[pl] = '\0';
    char *end;
    long p = strtol(num, &end, 10);
    if (*end || p <= 0 || p > 65535)
        return -1;
    if (s[0] == '[' && colon[-1] == ']') { /* [IPv6]:port */
        s++;
        colon--;
    }
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    *port = (int)p;
    return 0;
}

/* Reads the seeds of a redis+cluster:// URL; the count, or -1. */
static int parse_seeds(const char *url, char seeds[][280], int *ports) {
    static const char pre[] = "redis+cluster://";
    if (strncmp(url, pre, sizeof(pre) - 1) != 0)
        return -1;
    const char *s = rconn_url_host(url); /* after the credentials */
    int n = 0;
    while (*s) {
        size_t len = strcspn(s, ",");
        if (n == SEEDS_MAX || parse_hostport(s, len, seeds[n], 280, &ports[n]) < 0)
            return -1;
        n++;
        s += len;
        if (*s == ',')
            s++;
    }
    return n ? n : -1;
}

int rlink_seed(const char *url, int i, char *host, size_t hsize, int *port) {
    char seeds[SEEDS_MAX][280];
    int ports[SEEDS_MAX], n = parse_seeds(url, seeds, ports);
    if (i < 0 || i >= n || strlen(seeds[i]) >= hsize)
        return -1;
    snprintf(host, hsize, "%s", seeds[i]);
    *port = ports[i];
    return 0;
}

int rlink_url_kind(const char *url) {
    char seeds[SEEDS_MAX][280], user[128], pass[512];
    int ports[SEEDS_MAX];
    if (rconn_url_auth(url, user, sizeof(user), pass, sizeof(pass)) < 0)
        return -1;
    if (strncmp(url, "redis+cluster://", 16) == 0)
        return parse_seeds(url, seeds, ports) > 0 ? 1 : -1;
    return strncmp(url, "redis://", 8) == 0 ? 0 : -1;
}

/* ---- readiness ------------------------------------------------------------ */

static void flush_parked(rlink *l);

static int map_ready(const rlink *l) {
    for (unsigned s = 0; s < SLOTS; s++)
        if (!l->slots[s] || !l->slots[s]->rc.ready)
            return 0;
    return 1;
}

static void update_ready(rlink *l) {
    int r = l->cluster ? map_ready(l) : l->one.ready;
    if (r == l->ready)
        return;
    l->ready = r;
    if (r) {
        flush_parked(l);
        if (l->on_ready)
            l->on_ready(l->ctx);
    } else if (l->on_down) {
        l->on_down(l->ctx);
    }
}

static void one_ready(void *ctx) {
    rlink *l = ctx;
    l->ready = 0;
    update_ready(l);
}

static void one_down(void *ctx) {
    update_ready(ctx);
}

/* ---- nodes --------------------------------------------------------------- */

static void node_ready(void *ctx);
static void node_down(void *ctx);

static node *find_node(rlink *l, const char *host, int port, int create) {
    for (int i = 0; i < l->nnodes; i++)
        if (l->nodes[i]->rc.port == port && strcmp(l->nodes[i]->rc.host, host) == 0)
            return l->nodes[i];
    if (!create || l->nnodes == NODES_MAX)
        return NULL;
    node *n = calloc(1, sizeof(*n));
    if (!n)
        return NULL;
    n->l = l;
    snprintf(n->what, sizeof(n->what), "%s: cluster node", l->what);
    rconn_init(&n->rc, l->loop, host, port, 0, n->what, l->stopping, node_ready, node_down, n);
    rconn_set_auth(&n->rc, l->user, l->pass);
    l->nodes[l->nnodes++] = n;
    if (l->timer.data) { /* started: so is the node */
        n->started = 1;
        rconn_start(&n->rc);
    }
    return n;
}

/* ---- the slot map ---------------------------------------------------------- */

static void refresh(rlink *l);

static void on_slots(redisAsyncContext *ac, void *reply, void *priv) {
    node *from = priv;
    rlink *l = from->l;
    redisReply *r = reply;
    l->refreshing = 0;
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        if (r)
            log_warn("%s: CLUSTER SLOTS from %s:%d: %s", l->what, from->rc.host, from->rc.port,
                     r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        return;
    }
    (void)ac;
    node *map[SLOTS];
    uint8_t reps[SLOTS];
    memset(map, 0, sizeof(map));
    memset(reps, 0, sizeof(reps));
    for (size_t i = 0; i < r->elements; i++) {
        redisReply *e = r->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 ||
            e->element[0]->type != REDIS_REPLY_INTEGER ||
            e->element[1]->type != REDIS_REPLY_INTEGER ||
            e->element[2]->type != REDIS_REPLY_ARRAY || e->element[2]->elements < 2)
            continue;
        redisReply *m = e->element[2];
        if (m->element[0]->type != REDIS_REPLY_STRING ||
            m->element[1]->type != REDIS_REPLY_INTEGER)
            continue;
        /* an empty host means "the address you reached me at" */
        const char *host = m->element[0]->len ? m->element[0]->str : from->rc.host;
        node *n = find_node(l, host, (int)m->element[1]->integer, 1);
        long long lo = e->element[0]->integer, hi = e->element[1]->integer;
        size_t nr = e->elements - 3;
        for (long long s = lo < 0 ? 0 : lo; s <= hi && s < SLOTS; s++)
            map[s] = n, reps[s] = (uint8_t)(nr > 255 ? 255 : nr);
    }
    memcpy(l->slots, map, sizeof(map));
    memcpy(l->replicas, reps, sizeof(reps));
    l->map_at_ms = uv_now(l->loop);
    l->stale = 0;
    l->refreshes++;
    update_ready(l);
}

/* Asks any node that is up for the map (one request at a time). */
static void refresh(rlink *l) {
    if (l->refreshing || (l->stopping && *l->stopping))
        return;
    int n = l->nnodes, start = n ? rand() % n : 0;
    for (int i = 0; i < n; i++) {
        node *c = l->nodes[(start + i) % n];
        if (c->rc.ready) {
            l->refreshing = 1;
            redisAsyncCommand(c->rc.ac, on_slots, c, "CLUSTER SLOTS");
            return;
        }
    }
}

static int lonely(const rlink *l) {
    for (unsigned s = 0; s < SLOTS; s++)
        if (!l->replicas[s])
            return 1;
    return 0;
}

static void on_timer(uv_timer_t *t) {
    rlink *l = t->data;
    uint64_t age = uv_now(l->loop) - l->map_at_ms;
    if (!l->ready || l->stale || age >= MAP_MS || (age >= LONELY_MS && lonely(l)))
        refresh(l);
}

static void node_ready(void *ctx) {
    node *n = ctx;
    refresh(n->l); /* a node that came (back): the map may have changed */
    update_ready(n->l);
}

static void node_down(void *ctx) {
    node *n = ctx;
    n->l->stale = 1;
    update_ready(n->l);
}

/* ---- commands -------------------------------------------------------------- */

static void on_reply(redisAsyncContext *ac, void *reply, void *priv);

static void pending_free(pending *p) {
    free(p->cmd);
    free(p);
}

static void park(rlink *l, pending *p) {
    if (l->nparked >= RLINK_PARKED_MAX) {
        p->cb(NULL, NULL, p->priv);
        pending_free(p);
        return;
    }
    p->next = NULL;
    *l->parked_tail = p;
    l->parked_tail = &p->next;
    l->nparked++;
}

static void send_pending(rlink *l, pending *p) {
    node *n = p->ask ? p->ask : l->slots[p->slot];
    if (!n || !n->rc.ready) {
        if (n && !n->started) {
            n->started = 1;
            rconn_start(&n->rc);
        }
        park(l, p);
        return;
    }
    if (p->ask)
        redisAsyncCommand(n->rc.ac, NULL, NULL, "ASKING");
    if (redisAsyncFormattedCommand(n->rc.ac, on_reply, p, p->cmd, p->len) != REDIS_OK) {
        p->cb(NULL, NULL, p->priv);
        pending_free(p);
    }
}

/* The parked commands, in order; the list is left empty. */
static pending *take_parked(rlink *l) {
    pending *p = l->parked;
    l->parked = NULL;
    l->parked_tail = &l->parked;
    l->nparked = 0;
    return p;
}

static void flush_parked(rlink *l) {
    pending *p = take_parked(l);
    while (p) {
        pending *next = p->next;
        send_pending(l, p);
        p = next;
    }
}

static void on_retry_timer(uv_timer_t *t) {
    pending *p = t->data;
    rlink *l = p->l;
    uv_close((uv_handle_t *)t, (uv_close_cb)free);
    send_pending(l, p);
}

/* "MOVED 3999 127.0.0.1:6381" or "ASK ...": the node named */
static node *redirect_target(rlink *l, const char *err, unsigned *slot) {
    const char *sp = strchr(err, ' ');
    if (!sp)
        return NULL;
    char *end;
    unsigned long s = strtoul(sp + 1, &end, 10);
    if (*end != ' ' || s >= SLOTS)
        return NULL;
    char host[280];
    int port;
    if (parse_hostport(end + 1, strlen(end + 1), host, sizeof(host), &port) < 0)
        return NULL;
    *slot = (unsigned)s;
    return find_node(l, host[0] ? host : "127.0.0.1", port, 1);
}

static void on_reply(redisAsyncContext *ac, void *reply, void *priv) {
    pending *p = priv;
    rlink *l = p->l;
    redisReply *r = reply;
    p->ask = NULL;
    if (r && r->type == REDIS_REPLY_ERROR && p->redirects < REDIRECTS_MAX) {
        unsigned slot;
        node *n;
        if (strncmp(r->str, "MOVED ", 6) == 0 && (n = redirect_target(l, r->str, &slot))) {
            l->slots[slot] = n; /* this slot now; the rest of the map with it */
            l->moved++;
            l->stale = 1;
            refresh(l);
            p->redirects++;
            send_pending(l, p);
            return;
        }
        if (strncmp(r->str, "ASK ", 4) == 0 && (n = redirect_target(l, r->str, &slot))) {
            p->ask = n;
            p->redirects++;
            l->ask++;
            send_pending(l, p);
            return;
        }
        if (strncmp(r->str, "TRYAGAIN", 8) == 0 || strncmp(r->str, "CLUSTERDOWN", 11) == 0) {
            uv_timer_t *t = malloc(sizeof(*t));
            if (t) {
                l->stale = 1;
                p->redirects++;
                l->retried++;
                uv_timer_init(l->loop, t);
                t->data = p;
                uv_timer_start(t, on_retry_timer, RETRY_MS, 0);
                return;
            }
        }
    }
    p->cb(ac, reply, p->priv);
    pending_free(p);
}

static void ignore_reply(redisAsyncContext *ac, void *reply, void *priv) {
    (void)ac;
    (void)reply;
    (void)priv;
}

int rlink_formatted(rlink *l, unsigned slot, redisCallbackFn *cb, void *priv,
                    const char *cmd, size_t len) {
    if (!l->cluster)
        return l->one.ready && redisAsyncFormattedCommand(l->one.ac, cb, priv, cmd, len) ==
                                   REDIS_OK ? 0 : -1;
    pending *p = calloc(1, sizeof(*p));
    char *copy = p ? malloc(len) : NULL;
    if (!copy) {
        free(p);
        return -1;
    }
    memcpy(copy, cmd, len);
    p->l = l;
    p->cmd = copy;
    p->len = len;
    p->slot = slot & (SLOTS - 1);
    p->cb = cb ? cb : ignore_reply;
    p->priv = priv;
    send_pending(l, p);
    return 0;
}

int rlink_argv(rlink *l, const char *key, redisCallbackFn *cb, void *priv, int argc,
               const char **argv, const size_t *argl) {
    if (!l->cluster)
        return l->one.ready && redisAsyncCommandArgv(l->one.ac, cb, priv, argc, argv, argl) ==
                                   REDIS_OK ? 0 : -1;
    char *cmd = NULL;
    int len = redisFormatCommandArgv(&cmd, argc, argv, argl);
    if (len <= 0)
        return -1;
    int rc = rlink_formatted(l, rlink_key_slot(key, strlen(key)), cb, priv, cmd, (size_t)len);
    free(cmd);
    return rc;
}

int rlink_command(rlink *l, const char *key, redisCallbackFn *cb, void *priv,
                  const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    if (!l->cluster) {
        int rc = l->one.ready ? redisvAsyncCommand(l->one.ac, cb, priv, fmt, ap) : REDIS_ERR;
        va_end(ap);
        return rc == REDIS_OK ? 0 : -1;
    }
    char *cmd = NULL;
    int len = redisvFormatCommand(&cmd, fmt, ap);
    va_end(ap);
    pending *p = len > 0 ? calloc(1, sizeof(*p)) : NULL;
    if (!p) {
        free(cmd);
        return -1;
    }
    p->l = l;
    p->cmd = cmd;
    p->len = (size_t)len;
    p->slot = rlink_key_slot(key, strlen(key));
    p->cb = cb ? cb : ignore_reply; /* fire and forget: still routed and redirected */
    p->priv = priv;
    send_pending(l, p);
    return 0;
}

/* ---- life ------------------------------------------------------------------ */

rlink *rlink_new(uv_loop_t *loop, const char *url, const char *host, int port, int db,
                 const char *what, const int *stopping, void (*on_ready)(void *),
                 void (*on_down)(void *), void *ctx) {
    char seeds[SEEDS_MAX][280];
    int ports[SEEDS_MAX], kind = rlink_url_kind(url);
    rlink *l = kind < 0 ? NULL : calloc(1, sizeof(*l));
    if (!l)
        return NULL;
    /* well formed: rlink_url_kind checked them */
    rconn_url_auth(url, l->user, sizeof(l->user), l->pass, sizeof(l->pass));
    l->loop = loop;
    l->what = what;
    l->stopping = stopping;
    l->on_ready = on_ready;
    l->on_down = on_down;
    l->ctx = ctx;
    l->parked_tail = &l->parked;
    if (kind == 0) {
        rconn_init(&l->one, loop, host, port, db, what, stopping, one_ready, one_down, l);
        rconn_set_auth(&l->one, l->user, l->pass);
        return l;
    }
    l->cluster = 1;
    int n = parse_seeds(url, seeds, ports);
    for (int i = 0; i < n; i++)
        find_node(l, seeds[i], ports[i], 1);
    return l;
}

int rlink_start(rlink *l) {
    if (!l->cluster)
        return rconn_start(&l->one);
    uv_timer_init(l->loop, &l->timer);
    l->timer.data = l;
    uv_timer_start(&l->timer, on_timer, REFRESH_MS, REFRESH_MS);
    for (int i = 0; i < l->nnodes; i++) {
        l->nodes[i]->started = 1;
        rconn_start(&l->nodes[i]->rc);
    }
    return 0;
}

void rlink_stop(rlink *l) {
    if (!l->cluster) {
        rconn_stop(&l->one);
        return;
    }
    if (l->timer.data) {
        uv_timer_stop(&l->timer);
        uv_close((uv_handle_t *)&l->timer, NULL);
    }
    for (int i = 0; i < l->nnodes; i++)
        if (l->nodes[i]->started)
            rconn_stop(&l->nodes[i]->rc);
    pending *p = take_parked(l);
    while (p) {
        pending *next = p->next;
        p->cb(NULL, NULL, p->priv);
        pending_free(p);
        p = next;
    }
}

void rlink_free(rlink *l) {
    if (!l)
        return;
    for (int i = 0; i < l->nnodes; i++)
        free(l->nodes[i]);
    free(l);
}

int rlink_ready(const rlink *l) {
    return l->ready;
}

int rlink_is_cluster(const rlink *l) {
    return l->cluster;
}

int rlink_slot_replicas(const rlink *l, unsigned slot) {
    return l->cluster ? l->replicas[slot & (SLOTS - 1)] : 0;
}

void rlink_get_stats(const rlink *l, rlink_stats *st) {
    memset(st, 0, sizeof(*st));
    if (!l->cluster)
        return;
    st->moved = l->moved;
    st->ask = l->ask;
    st->retried = l->retried;
    st->map_reads = l->refreshes;
    for (unsigned s = 0; s < SLOTS; s++)
        st->lonely += l->slots[s] && !l->replicas[s];
    const node *seen[NODES_MAX];
    int n = 0;
    for (unsigned s = 0; s < SLOTS; s++) {
        const node *m = l->slots[s];
        int k = 0;
        while (m && k < n && seen[k] != m)
            k++;
        if (m && k == n && n < NODES_MAX)
            seen[n++] = m;
    }
    st->masters = n;
}

int rlink_same_master(const rlink *l, unsigned a, unsigned b) {
    if (!l->cluster)
        return 1;
    const node *n = l->slots[a & (SLOTS - 1)];
    return n && n == l->slots[b & (SLOTS - 1)];
}

void rlink_slot_master(const rlink *l, unsigned slot, char *out, size_t size) {
    const node *n = l->cluster ? l->slots[slot & (SLOTS - 1)] : NULL;
    if (!l->cluster)
        snprintf(out, size, "%s:%d", l->one.host, l->one.port);
    else if (n)
        snprintf(out, size, "%s:%d", n->rc.host, n->rc.port);
    else
        snprintf(out, size, "(no master)");
}

void rlink_describe(const rlink *l, char *out, size_t size) {
    size_t o = 0;
    out[0] = '\0';
    if (!l->cluster) {
        snprintf(out, size, "%s:%d db %d: %s\n", l->one.host, l->one.port, l->one.db,
                 l->one.ready ? "up" : "down");
        return;
    }
    unsigned s = 0;
    while (s < SLOTS && o + 1 < size) {
        unsigned e = s;
        while (e + 1 < SLOTS && l->slots[e + 1] == l->slots[s])
            e++;
        node *n = l->slots[s];
        int w = snprintf(out + o, size - o, "slots %u-%u: %s%s%d %s, %d replica%s\n", s, e,
                         n ? n->rc.host : "(no master)", n ? ":" : "", n ? n->rc.port : 0,
                         n ? (n->rc.ready ? "up" : "down") : "", l->replicas[s],
                         l->replicas[s] == 1 ? "" : "s");
        if (w < 0 || (size_t)w >= size - o)
            break;
        o += (size_t)w;
        s = e + 1;
    }
}

int rlink_metrics(const rlink *l, const char *name, const char *whose, pdns_buf *b) {
    rlink_stats st;
    if (!l->cluster)
        return 0;
    rlink_get_stats(l, &st);
    return pdns_buf_printf(
        b, "# HELP %s_redirects_total MOVED and ASK redirections %s Redis Cluster link followed, and TRYAGAIN/CLUSTERDOWN waits.\n"
           "# TYPE %s_redirects_total counter\n"
           "%s_redirects_total{kind=\"moved\"} %llu\n"
           "%s_redirects_total{kind=\"ask\"} %llu\n"
           "%s_redirects_total{kind=\"retry\"} %llu\n"
           "# HELP %s_map_reads_total Slot maps read (CLUSTER SLOTS).\n"
           "# TYPE %s_map_reads_total counter\n"
           "%s_map_reads_total %llu\n"
           "# TYPE %s_masters gauge\n"
           "%s_masters %d\n"
           "# HELP %s_slots_without_replica Slots whose master has no replica: what is written there is lost with that master.\n"
           "# TYPE %s_slots_without_replica gauge\n"
           "%s_slots_without_replica %d\n"
           "# TYPE %s_ready gauge\n"
           "%s_ready %d\n",
        name, whose, name, name, (unsigned long long)st.moved, name,
        (unsigned long long)st.ask, name, (unsigned long long)st.retried, name, name, name,
        (unsigned long long)st.map_reads, name, name, st.masters, name, name, name, st.lonely,
        name, name, l->ready);
}
