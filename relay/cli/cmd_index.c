/* cmd_index.c - `pdns-relay index-trees`: moves the indexes of a store
 * made with sorted sets into the pdnsrelay module's trees, key by key
 * (PDNSRELAY.IXCONVERT), and then records ix-tree in its layout, so that
 * an existing store gets what store.index "tree" gives a new one. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "config.h"
#include "rconn.h"
#include "rlink.h"
#include "rsync.h"
#include "store.h"

#define KEYS_A_CALL 256

const char cmd_index_trees_help[] =
    "usage: pdns-relay index-trees -c CONF [--redis URL] [--timeout S]\n"
    "\n"
    "Moves the indexes of the store of the relay configured in CONF from\n"
    "sorted sets into the pdnsrelay module's trees (what store.index \"tree\"\n"
    "gives a new store): every index key (f:, r:, ix:rb, ix:ip, d:) of every\n"
    "shard becomes a tree of the same members, in place, one key at a time;\n"
    "then st:layout records ix-tree. Every Redis of the store (replicas and\n"
    "cluster nodes too) needs the module loaded with the argument trees.\n"
    "Stop the relays that write the store first and start them after: a\n"
    "relay reads the layout when it connects. Queries answer the same\n"
    "throughout. Run again, it converts what is left (it is safe to stop).\n"
    "Prints the keys converted; exit status 0 when every key is a tree.\n"
    "\n"
    "  -c, --config CONF  the relay configuration\n"
    "  --redis URL        override the store's redis://HOST:PORT/DB\n"
    "  --timeout S        seconds to wait for each call (default 60; a\n"
    "                     sorted set of a million members takes about 0.65)\n";

typedef struct {
    rsync *r;
    char err[512];
} conv;

/* One command; NULL with c->err set when it failed or Redis refused it. */
static redisReply *call(conv *c, const char *key, int argc, const char **argv, const size_t *argl) {
    redisReply *rep = rsync_argv(c->r, key, argc, argv, argl, c->err, sizeof(c->err));
    if (rep && rep->type == REDIS_REPLY_ERROR) {
        snprintf(c->err, sizeof(c->err), "%s", rep->str);
        freeReplyObject(rep);
        return NULL;
    }
    return rep;
}

static redisReply *call2(conv *c, const char *cmd, const char *key) {
    const char *argv[] = {cmd, key};
    size_t argl[] = {strlen(cmd), strlen(key)};
    return call(c, key, 2, argv, argl);
}

/* Converts keys[0..n) (one shard's: one slot). Returns the keys converted,
 * or -1. */
static long long convert(conv *c, char **keys, int n) {
    const char *argv[KEYS_A_CALL + 1];
    size_t argl[KEYS_A_CALL + 1];
    argv[0] = "PDNSRELAY.IXCONVERT", argl[0] = strlen(argv[0]);
    for (int i = 0; i < n; i++)
        argv[i + 1] = keys[i], argl[i + 1] = strlen(keys[i]);
    redisReply *rep = call(c, keys[0], n + 1, argv, argl);
    if (!rep)
        return -1;
    long long done = rep->type == REDIS_REPLY_INTEGER ? rep->integer : -1;
    if (done < 0)
        snprintf(c->err, sizeof(c->err), "PDNSRELAY.IXCONVERT: unexpected reply");
    freeReplyObject(rep);
    return done;
}

/* A shard's index keys. */
typedef struct {
    char **k;
    int n, cap;
} keylist;

/* Appends P, then pre, then len bytes of s. Returns 0, or -1 when out of
 * memory. */
static int add_key(keylist *l, const char *P, const char *pre, const char *s, size_t len) {
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 4096;
        char **more = realloc(l->k, (size_t)cap * sizeof(*more));
        if (!more)
            return -1;
        l->k = more, l->cap = cap;
    }
    size_t pl = strlen(P), rl = strlen(pre);
    char *k = malloc(pl + rl + len + 1);
    if (!k)
        return -1;
    memcpy(k, P, pl), memcpy(k + pl, pre, rl), memcpy(k + pl + rl, s, len);
    k[pl + rl + len] = 0;
    l->k[l->n++] = k;
    return 0;
}

/* The r: buckets of the shard of prefix P (its ix:rb, a sorted set or a
 * tree) into l. Returns 0, or -1. */
static int r_buckets(conv *c, const char *P, keylist *l) {
    char rb[40];
    snprintf(rb, sizeof(rb), "%six:rb", P);
    redisReply *t = call2(c, "TYPE", rb);
    if (!t)
        return -1;
    int tree = t->type == REDIS_REPLY_STATUS && strcmp(t->str, "pdns-tree") == 0;
    int none = t->type == REDIS_REPLY_STATUS && strcmp(t->str, "none") == 0;
    freeReplyObject(t);
    if (none)
        return 0;
    const char *zr[] = {"ZRANGE", rb, "0", "-1"};
    const char *ir[] = {"PDNSRELAY.IXRANGE", rb, "-", "+"};
    const char **argv = tree ? ir : zr;
    size_t argl[4];
    for (int i = 0; i < 4; i++)
        argl[i] = strlen(argv[i]);
    redisReply *rep = call(c, rb, 4, argv, argl);
    if (!rep)
        return -1;
    int rc = rep->type == REDIS_REPLY_ARRAY ? 0 : -1;
    for (size_t i = 0; rc == 0 && i < rep->elements; i++) {
        redisReply *m = rep->element[i];
        rc = m->type == REDIS_REPLY_STRING ? add_key(l, P, "r:", m->str, m->len) : -1;
    }
    if (rc < 0)
        snprintf(c->err, sizeof(c->err), "reading %s: unexpected reply or out of memory", rb);
    freeReplyObject(rep);
    return rc;
}

/* Every index key of the shard of prefix P into trees: its f: and d:
 * buckets have digits hex digits (4 on one server, 3 in each shard of a
 * cluster: store.c, shard_bucket). Returns the keys converted, or -1. */
static long long convert_shard(conv *c, const char *P, int digits) {
    keylist l = {NULL, 0, 0};
    int rc = 0;
    char hex[8];
    for (unsigned h = 0; rc == 0 && h < 1u << (4 * digits); h++) {
        snprintf(hex, sizeof(hex), "%0*x", digits, h);
        rc = add_key(&l, P, "f:", hex, (size_t)digits) < 0 ||
                     add_key(&l, P, "d:", hex, (size_t)digits) < 0
                 ? -1
                 : 0;
    }
    if (rc < 0)
        snprintf(c->err, sizeof(c->err), "out of memory");
    else
        rc = r_buckets(c, P, &l);
    /* the list of the r: buckets last: a run stopped before it finds them
     * again */
    if (rc == 0 && (add_key(&l, P, "ix:ip", "", 0) < 0 || add_key(&l, P, "ix:rb", "", 0) < 0)) {
        snprintf(c->err, sizeof(c->err), "out of memory");
        rc = -1;
    }
    long long done = 0;
    for (int i = 0; rc == 0 && i < l.n; i += KEYS_A_CALL) {
        long long k = convert(c, l.k + i, l.n - i < KEYS_A_CALL ? l.n - i : KEYS_A_CALL);
        rc = k < 0 ? -1 : 0;
        done += k;
    }
    for (int i = 0; i < l.n; i++)
        free(l.k[i]);
    free(l.k);
    return rc < 0 ? -1 : done;
}

int cmd_index_trees(int argc, char **argv) {
    const char *conf = NULL, *url = NULL;
    double timeout = 60;
    for (int i = 1; i < argc; i++) {
        if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) && i + 1 < argc)
            conf = argv[++i];
        else if (strcmp(argv[i], "--redis") == 0 && i + 1 < argc)
            url = argv[++i];
        else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc)
            timeout = atof(argv[++i]);
        else {
            fputs(cmd_index_trees_help, stderr);
            return 2;
        }
    }
    if (!conf || timeout <= 0) {
        fputs(cmd_index_trees_help, stderr);
        return 2;
    }
    static relay_config cfg;
    char err[1024], shown[sizeof(cfg.store.url)];
    if (config_load_keys_optional(&cfg, conf, err, sizeof(err), cmd_no_warning) < 0) {
        fprintf(stderr, "index-trees: %s\n", err);
        return 1;
    }
    if (url && config_store_redis(&cfg, url) < 0) {
        fprintf(stderr, "index-trees: --redis: not a Redis URL: %s\n", url);
        return 1;
    }
    if (!cfg.store.enabled) {
        fprintf(stderr, "index-trees: %s: the store is disabled (store.enabled)\n", conf);
        return 1;
    }
    rconn_url_shown(cfg.store.url, shown, sizeof(shown));
    conv c = {rsync_new(cfg.store.url, cfg.store.host, cfg.store.port, cfg.store.db,
                        (int)(timeout * 1000)),
              ""};
    if (!c.r) {
        fprintf(stderr, "index-trees: cannot use redis %s\n", shown);
        return 1;
    }
    int cluster = rlink_url_kind(cfg.store.url) == 1, nshards = cluster ? cfg.store.shards : 1;
    int rc = 1;
    redisReply *lay = call2(&c, "GET", "st:layout");
    int kind = lay && lay->type == REDIS_REPLY_STRING ? store_layout_kind(lay->str, nshards) : -1;
    if (!lay) {
        fprintf(stderr, "index-trees: %s: %s\n", shown, c.err);
    } else if (lay->type != REDIS_REPLY_STRING) {
        fprintf(stderr,
                "index-trees: %s has no store (no st:layout; a relay writes it when it "
                "first connects)\n",
                shown);
    } else if (kind < 0) {
        fprintf(stderr, "index-trees: the store was made with %s (st:layout), %s\n", lay->str,
                cluster ? "not the store.shards of this configuration" : "not for one server");
    } else {
        long long total = 0;
        for (int k = 0; k < nshards && total >= 0; k++) {
            char P[16] = "";
            if (cluster)
                store_shard_prefix(k, nshards, P);
            long long done = convert_shard(&c, P, cluster ? 3 : 4);
            if (done < 0) {
                fprintf(stderr, "index-trees: %s%s%s: %s%s\n", shown, P[0] ? " shard " : "", P,
                        c.err,
                        strstr(c.err, "unknown command")
                            ? " (load the pdnsrelay module with the argument trees on every "
                              "Redis of the store)"
                            : "");
                total = -1;
            } else {
                total += done;
            }
        }
        rc = total < 0;
        const char *now = lay->str;
        char want[160];
        if (!rc && !(kind & STORE_LAYOUT_IX_TREE)) {
            /* unless a relay changed it meanwhile */
            static const char lua[] = "if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end "
                                      "redis.call('SET', KEYS[1], ARGV[2]) return 1";
            snprintf(want, sizeof(want), "%s ix-tree", lay->str);
            const char *a[] = {"EVAL", lua, "1", "st:layout", lay->str, want};
            size_t al[6];
            for (int i = 0; i < 6; i++)
                al[i] = strlen(a[i]);
            redisReply *set = call(&c, "st:layout", 6, a, al);
            rc = !set || set->type != REDIS_REPLY_INTEGER || set->integer != 1;
            if (rc)
                fprintf(stderr, "index-trees: st:layout: %s\n",
                        set ? "changed while the keys were converted; run again" : c.err);
            freeReplyObject(set);
            now = want;
        }
        if (!rc)
            printf("index-trees: %lld index keys moved into trees (%d shard%s); st:layout "
                   "\"%s\"; start the relays: they write trees from their next connect\n",
                   total, nshards, nshards == 1 ? "" : "s", now);
    }
    freeReplyObject(lay);
    rsync_free(c.r);
    return rc;
}
