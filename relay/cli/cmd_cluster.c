/* cmd_cluster.c - `pdns-relay cluster-status`: the relay's Redis as the
 * relay sees it (one server, or a cluster's masters and slot ranges), each
 * partner's outbox (batches waiting and the age of the oldest), and the
 * store: on a cluster, each shard's master and size, and the spread of
 * triples over masters. */
#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "cmd.h"
#include "config.h"
#include "deliver.h"
#include "mix.h"
#include "rconn.h"
#include "rlink.h"
#include "store.h"

const char cmd_cluster_status_help[] =
    "usage: pdns-relay cluster-status -c CONFIG [--timeout SECONDS]\n"
    "\n"
    "Connects to the relay's Redis (the configuration's redis: one server, or\n"
    "redis+cluster:// seeds) as the relay does and prints what it sees: for a\n"
    "cluster, each slot range and its master, up or down, and the\n"
    "redirections followed; then each partner's outbox (policies.dir): the\n"
    "batches waiting for delivery and the age of the oldest; then the store\n"
    "(store.redis, when it is another): on a cluster, each shard's slot, master,\n"
    "triples, names and records, the triples per master and whether it has the\n"
    "pdnsrelay module (one server: whether it has it); who holds the ha\n"
    "lease, and the mixer's checkpoint and journal in Redis. Exit 0 when every\n"
    "link became ready within the timeout (default 5 s), 1 otherwise.\n";

#define PARTNERS_MAX 256

typedef struct status {
    uv_loop_t loop;
    uv_timer_t timer;
    rlink *l, *sl;              /* the outboxes' link, the store's (maybe the same) */
    int stopping, ready, store_ready, timed_out, waiting;
    int nshards;
    char layout[64];
    char lease[300];            /* ha: the holder, "" when none */
    long long lease_ttl, journal_len, pool_bytes;
    char read_pos[48], newest[48]; /* the mixer's place in its journal, and its end */
    long long shard[STORE_SHARDS_MAX][3]; /* triples, names, records; -1 unknown */
    int module[STORE_SHARDS_MAX]; /* its master's store_module_parts; -1 unknown */
    char names[PARTNERS_MAX][64];
    long long len[PARTNERS_MAX];
    char oldest[PARTNERS_MAX][48];
    size_t n;
    char relay_id[64];
} status;

static void done_one(status *st) {
    if (--st->waiting == 0)
        uv_stop(&st->loop);
}

typedef struct ask {
    status *st;
    size_t i;
} ask;

static void on_xlen(redisAsyncContext *ac, void *reply, void *priv) {
    ask *a = priv;
    redisReply *r = reply;
    (void)ac;
    a->st->len[a->i] = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    done_one(a->st);
}

static void on_first(redisAsyncContext *ac, void *reply, void *priv) {
    ask *a = priv;
    redisReply *r = reply;
    (void)ac;
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
        r->element[0]->type == REDIS_REPLY_ARRAY && r->element[0]->elements >= 1 &&
        r->element[0]->element[0]->type == REDIS_REPLY_STRING) {
        /* a stream id is "<ms>-<n>": the oldest batch's age */
        long long ms = atoll(r->element[0]->element[0]->str);
        snprintf(a->st->oldest[a->i], sizeof(a->st->oldest[a->i]), "oldest %.0f s",
                 (double)time(NULL) - (double)ms / 1000.0);
    }
    done_one(a->st);
}

static void on_layout(redisAsyncContext *ac, void *reply, void *priv) {
    status *st = priv;
    redisReply *r = reply;
    (void)ac;
    if (r && r->type == REDIS_REPLY_STRING)
        snprintf(st->layout, sizeof(st->layout), "%s", r->str);
    done_one(st);
}

static void on_shard(redisAsyncContext *ac, void *reply, void *priv) {
    ask *a = priv;
    redisReply *r = reply;
    (void)ac;
    for (size_t j = 0; r && r->type == REDIS_REPLY_ARRAY && j < 3 && j < r->elements; j++)
        a->st->shard[a->i][j] =
            r->element[j]->type == REDIS_REPLY_STRING ? atoll(r->element[j]->str) : 0;
    done_one(a->st);
}

static void on_module(redisAsyncContext *ac, void *reply, void *priv) {
    ask *a = priv;
    redisReply *r = reply;
    (void)ac;
    if (r && r->type == REDIS_REPLY_ARRAY)
        a->st->module[a->i] = store_module_parts(r);
    done_one(a->st);
}

/* The store's link is ready: whether its masters have the pdnsrelay
 * module, and on a cluster its layout and each shard's counts. */
static void on_store_ready(void *ctx) {
    status *st = ctx;
    static ask asks[STORE_SHARDS_MAX];
    if (st->store_ready)
        return;
    st->store_ready = 1;
    int cluster = rlink_is_cluster(st->sl);
    if (cluster && rlink_command(st->sl, "st:layout", on_layout, st, "GET st:layout") == 0)
        st->waiting++;
    for (int k = 0; k < (cluster ? st->nshards : 1); k++) {
        char p[16], key[40];
        store_shard_prefix(k, st->nshards, p);
        snprintf(key, sizeof(key), "%sst:info", p);
        asks[k] = (ask){st, (size_t)k};
        if (rlink_command(st->sl, cluster ? p : "", on_module, &asks[k],
                          STORE_MODULE_ASK) == 0)
            st->waiting++;
        if (cluster && rlink_command(st->sl, key, on_shard, &asks[k],
                                     "HMGET %s triples names records", key) == 0)
            st->waiting++;
    }
    done_one(st);
}

static void on_mixer_state(redisAsyncContext *ac, void *reply, void *priv) {
    status *st = priv;
    redisReply *r = reply;
    (void)ac;
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 6) {
        if (r->element[0]->type == REDIS_REPLY_STRING)
            snprintf(st->lease, sizeof(st->lease), "%s", r->element[0]->str);
        st->lease_ttl = r->element[1]->integer;
        st->journal_len = r->element[2]->integer;
        st->pool_bytes = r->element[3]->integer;
        if (r->element[4]->type == REDIS_REPLY_STRING)
            snprintf(st->read_pos, sizeof(st->read_pos), "%s", r->element[4]->str);
        if (r->element[5]->type == REDIS_REPLY_STRING)
            snprintf(st->newest, sizeof(st->newest), "%s", r->element[5]->str);
    }
    done_one(st);
}

static void on_ready(void *ctx) {
    status *st = ctx;
    if (st->ready)
        return;
    st->ready = 1;
    /* the lease (ha), the mixer's journal and checkpoint (mixer.journal
     * "redis"): one slot */
    char k[4][240];
    static const char *const what[] = {"lease", "journal", "pool", "read"};
    for (int i = 0; i < 4; i++)
        mix_key(st->relay_id, what[i], k[i], sizeof(k[i]));
    if (rlink_command(st->l, k[0], on_mixer_state, st,
                      "EVAL %s 4 %s %s %s %s",
                      "local n = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1) "
                      "return {redis.call('GET', KEYS[1]), redis.call('PTTL', KEYS[1]), "
                      "redis.call('XLEN', KEYS[2]), redis.call('STRLEN', KEYS[3]), "
                      "redis.call('GET', KEYS[4]), n[1] and n[1][1] or false}",
                      k[0], k[1], k[2], k[3]) == 0)
        st->waiting++;
    if (st->sl == st->l)
        on_store_ready(st);
    static ask asks[PARTNERS_MAX];
    char key[256];
    st->waiting++;
    for (size_t i = 0; i < st->n; i++) {
        asks[i] = (ask){st, i};
        deliver_outbox_key(st->relay_id, st->names[i], key, sizeof(key));
        st->waiting += 2;
        if (rlink_command(st->l, key, on_xlen, &asks[i], "XLEN %s", key) < 0)
            st->waiting--;
        if (rlink_command(st->l, key, on_first, &asks[i], "XRANGE %s - + COUNT 1", key) < 0)
            st->waiting--;
    }
    done_one(st);
}

static void on_timeout(uv_timer_t *t) {
    status *st = t->data;
    st->timed_out = 1;
    uv_stop(&st->loop);
}

/* The partner names of the policy files in dir. */
static void read_partners(status *st, const char *dir) {
    DIR *d = dir[0] ? opendir(dir) : NULL;
    struct dirent *e;
    while (d && (e = readdir(d)) && st->n < PARTNERS_MAX) {
        size_t l = strlen(e->d_name);
        if (l < 6 || strcmp(e->d_name + l - 5, ".json") != 0)
            continue;
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        json_t *j = json_load_file(path, 0, NULL);
        const char *name = json_string_value(json_object_get(j, "partner"));
        if (name && strlen(name) < sizeof(st->names[0])) {
            st->len[st->n] = -1;
            snprintf(st->names[st->n++], sizeof(st->names[0]), "%s", name);
        }
        json_decref(j);
    }
    if (d)
        closedir(d);
}

/* key files are not needed to look at Redis */
void cmd_no_warning(const char *msg) {
    (void)msg;
}

/* What a master (or the one server) has of the pdnsrelay module, after
 * "pdnsrelay module". */
static const char *module_said(int parts) {
    if (!parts)
        return "absent";
    if (!(parts & STORE_MODULE_QUERY))
        return "loaded: PDNSRELAY.INGEST, without PDNSRELAY.QUERY (an older module: query pages "
               "and the expiry sweep go to the scripts)";
    if (!(parts & STORE_MODULE_SWEEP))
        return "loaded: PDNSRELAY.INGEST, PDNSRELAY.QUERY, without PDNSRELAY.SWEEP (an older "
               "module: the expiry sweep goes to the script)";
    if (parts & STORE_MODULE_TREES)
        return "loaded: PDNSRELAY.INGEST, PDNSRELAY.QUERY, PDNSRELAY.SWEEP, trees";
    return "loaded: PDNSRELAY.INGEST, PDNSRELAY.QUERY, PDNSRELAY.SWEEP, without trees "
           "(store.index \"tree\" needs the argument trees)";
}

/* The store: its link, and on a cluster each shard and the triples per
 * master (how evenly the store fills the masters). */
static void print_store(status *st, const relay_config *cfg) {
    static char map[1 << 16];
    char shown[sizeof(cfg->store.url)];
    printf("store %s: %s\n", rconn_url_shown(cfg->store.url, shown, sizeof(shown)),
           st->store_ready ? "ready" : "NOT READY");
    if (!rlink_is_cluster(st->sl) && st->module[0] >= 0)
        printf("store's Redis: pdnsrelay module %s\n", module_said(st->module[0]));
    if (!rlink_is_cluster(st->sl) || !st->store_ready)
        return;
    if (st->sl != st->l) {
        rlink_describe(st->sl, map, sizeof(map));
        fputs(map, stdout);
    }
    int kind = st->layout[0] ? store_layout_kind(st->layout, st->nshards)
                             : STORE_LAYOUT_IP_BY_PREFIX;
    printf("store layout: %s%s\n", st->layout[0] ? st->layout : "(none yet)",
           kind < 0 ? " (store.shards differs: the relay refuses to write)"
           : !(kind & STORE_LAYOUT_IP_BY_PREFIX)
               ? " (address index in the names' shards: an address lookup asks every shard)"
               : "");
    char masters[STORE_SHARDS_MAX][64];
    long long per[STORE_SHARDS_MAX];
    int mod[STORE_SHARDS_MAX];
    int nm = 0;
    for (int k = 0; k < st->nshards; k++) {
        char p[16], m[64];
        store_shard_prefix(k, st->nshards, p);
        unsigned slot = rlink_key_slot(p, strlen(p));
        rlink_slot_master(st->sl, slot, m, sizeof(m));
        if (st->shard[k][0] < 0)
            printf("shard %d %s slot %u on %s: unknown\n", k, p, slot, m);
        else
            printf("shard %d %s slot %u on %s: %lld triples, %lld names, %lld records\n", k, p,
                   slot, m, st->shard[k][0], st->shard[k][1], st->shard[k][2]);
        int j = 0;
        while (j < nm && strcmp(masters[j], m) != 0)
            j++;
        if (j == nm) {
            snprintf(masters[nm], sizeof(masters[0]), "%s", m);
            mod[nm] = -1;
            per[nm++] = 0;
        }
        if (st->module[k] >= 0)
            mod[j] = st->module[k];
        per[j] += st->shard[k][0] > 0 ? st->shard[k][0] : 0;
    }
    long long lo = -1, hi = 0;
    for (int j = 0; j < nm; j++) {
        printf("master %s: %lld triples%s%s\n", masters[j], per[j],
               mod[j] < 0 ? "" : ", pdnsrelay module ", mod[j] < 0 ? "" : module_said(mod[j]));
        if (lo < 0 || per[j] < lo)
            lo = per[j];
        if (per[j] > hi)
            hi = per[j];
    }
    if (lo > 0)
        printf("triples per master: max/min %.2f\n", (double)hi / (double)lo);
}

int cmd_cluster_status(int argc, char **argv) {
    const char *conf = NULL;
    double timeout = 5;
    for (int i = 1; i < argc; i++) {
        if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) && i + 1 < argc)
            conf = argv[++i];
        else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc)
            timeout = atof(argv[++i]);
        else {
            fputs(cmd_cluster_status_help, stderr);
            return 2;
        }
    }
    if (!conf || timeout <= 0) {
        fputs(cmd_cluster_status_help, stderr);
        return 2;
    }
    relay_config cfg;
    char shown[sizeof(cfg.redis_url)];
    char err[1024];
    if (config_load_keys_optional(&cfg, conf, err, sizeof(err), cmd_no_warning) < 0) {
        fprintf(stderr, "cluster-status: %s\n", err);
        return 1;
    }
    static status st;
    memset(&st, 0, sizeof(st));
    memset(st.shard, 0xff, sizeof(st.shard));
    memset(st.module, 0xff, sizeof(st.module));
    st.nshards = cfg.store.shards;
    st.waiting = 1 + (cfg.store.enabled != 0); /* each link's first look */
    snprintf(st.relay_id, sizeof(st.relay_id), "%s", cfg.relay_id);
    read_partners(&st, cfg.policy_dir);
    uv_loop_init(&st.loop);
    st.l = rlink_new(&st.loop, cfg.redis_url, cfg.redis.host, cfg.redis.port, cfg.redis_db,
                     "cluster-status", &st.stopping, on_ready, NULL,
                     &st);
    if (!st.l) {
        fprintf(stderr, "cluster-status: cannot use redis %s\n",
                rconn_url_shown(cfg.redis_url, shown, sizeof(shown)));
        config_free(&cfg);
        return 1;
    }
    if (cfg.store.enabled && strcmp(cfg.store.url, cfg.redis_url) != 0)
        st.sl = rlink_new(&st.loop, cfg.store.url, cfg.store.host, cfg.store.port, cfg.store.db,
                          "cluster-status: store", &st.stopping, on_store_ready, NULL, &st);
    else if (cfg.store.enabled)
        st.sl = st.l;
    uv_timer_init(&st.loop, &st.timer);
    st.timer.data = &st;
    uv_timer_start(&st.timer, on_timeout, (uint64_t)(timeout * 1000), 0);
    rlink_start(st.l);
    if (st.sl && st.sl != st.l)
        rlink_start(st.sl);
    uv_run(&st.loop, UV_RUN_DEFAULT);

    static char map[1 << 16];
    rlink_describe(st.l, map, sizeof(map));
    rlink_stats rs;
    rlink_get_stats(st.l, &rs);
    printf("redis %s: %s\n", rconn_url_shown(cfg.redis_url, shown, sizeof(shown)),
           st.ready ? "ready" : "NOT READY");
    if (rlink_is_cluster(st.l))
        printf("cluster: %d masters; %llu slot maps read, %llu MOVED, %llu ASK followed\n",
               rs.masters, (unsigned long long)rs.map_reads, (unsigned long long)rs.moved,
               (unsigned long long)rs.ask);
    fputs(map, stdout);
    if (st.ready && st.lease[0])
        printf("lease: held by %s, %lld ms left\n", st.lease, st.lease_ttl);
    else if (st.ready)
        printf("lease: none (ha off, or no process holds it)\n");
    if (st.ready && (st.pool_bytes > 0 || st.journal_len > 0))
        printf("mixer in Redis: checkpoint %lld bytes, %lld journal entries since it\n",
               st.pool_bytes, st.journal_len);
    if (st.ready && st.read_pos[0]) {
        /* stream ids start with the ms Redis added them: the mixer's lag */
        long long rd = atoll(st.read_pos), nw = atoll(st.newest);
        printf("mixer reads the journal up to %s: %lld ms behind its newest entry\n",
               st.read_pos, st.newest[0] && nw > rd ? nw - rd : 0);
    } else if (st.ready && st.journal_len > 0) {
        printf("mixer: no process has read the journal for 10 s (no lease holder?)\n");
    }
    for (size_t i = 0; i < st.n; i++) {
        if (st.len[i] < 0 || !st.ready)
            printf("partner %s: outbox unknown\n", st.names[i]);
        else
            printf("partner %s: %lld batches waiting%s%s\n", st.names[i], st.len[i],
                   st.oldest[i][0] ? ", " : "", st.oldest[i]);
    }
    if (st.sl)
        print_store(&st, &cfg);
    st.stopping = 1;
    if (st.sl && st.sl != st.l) {
        rlink_stop(st.sl);
        uv_run(&st.loop, UV_RUN_NOWAIT);
    }
    rlink_stop(st.l);
    uv_timer_stop(&st.timer);
    uv_close((uv_handle_t *)&st.timer, NULL);
    uv_run(&st.loop, UV_RUN_DEFAULT);
    if (st.sl != st.l)
        rlink_free(st.sl);
    rlink_free(st.l);
    uv_loop_close(&st.loop);
    int rc = st.ready && (!st.sl || st.store_ready) ? 0 : 1;
    config_free(&cfg);
    return rc;
}
