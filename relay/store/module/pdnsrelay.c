/* pdnsrelay.c - an optional Redis module: PDNSRELAY.INGEST, the store's
 * ingest script (relay/store/lua/store_ingest.lua) in C.
 *
 * Loaded into redis-server (`loadmodule /usr/lib/pdns-relay/pdnsrelay.so`),
 * it takes the arguments the relay gives the script, in the same order,
 * with the script's text replaced by the argument layout's version, and
 * writes exactly what the script writes (tests/e2e/test_store_module.py
 * compares the two stores key by key). It spends no time in Lua: taking
 * arguments, converting each call's values and interning strings are
 * about half of the script's time. The relay uses it when Redis has it
 * (COMMAND INFO at each connect) and the script otherwise. On a cluster
 * it first asks EXISTS of every key the call touches, as the script does:
 * a key of a slot being migrated that is already gone fails the call
 * before it wrote anything (RedisModule_Call applies the cluster's checks
 * to the keys it is given; the module's own key writes would not), and
 * the relay sends it again.
 *
 * With layout "1" every write is propagated to replicas and the AOF as
 * the plain command it amounts to (HSET, ZADD, HINCRBY, SET), so a
 * replica, or a server that loads the AOF, needs no module.
 *
 * That type (ixtree.c; TYPE says "pdns-tree") is an ordered set of byte
 * strings: what the store's sorted sets of score 0 are, in fewer bytes
 * and cache lines a member; the module has it when loaded with the
 * argument "trees". A store whose layout says "ix-tree" keeps
 * its index keys (f:, r:, ix:rb, ix:ip, d:) so: PDNSRELAY.INGEST with
 * layout "1t" makes new index keys trees (an index key that is a sorted
 * set stays one), and PDNSRELAY.IXADD, IXREM, IXRANGE and IXCARD are
 * ZADD, ZREM, ZRANGEBYLEX and ZCARD for them (the query and expiry
 * scripts ask TYPE). Such a store's replicas and AOF need the module
 * anyway, so an INGEST with layout "1t" is propagated as itself, once,
 * rather than as each write (a tenth of Redis's CPU a new triple): a
 * replica, or Redis loading the AOF, runs it again and does what it did
 * here, as nothing it does depends on more than the keys and arguments
 * (no clock, no randomness; no failure for want of memory, which ends
 * Redis; the cluster's slot check is not made again). IXADD and IXREM
 * are propagated as themselves; the AOF is rewritten as IXADDs.
 *
 * PDNSRELAY.QUERY (query.c) is the store's query script
 * (relay/store/lua/store_query.lua) in C, PDNSRELAY.SWEEP (sweep.c) a step
 * of its expiry sweep (store_sweep.lua).
 *
 * Redis's module API is declared in rmapi.h, only the functions the
 * module uses: each is looked up by name when the module loads
 * (RedisModule_GetApi, the first word of the load context). It is API
 * version 1, Redis 6.2 and later. Not linked with the relay: built alone
 * as a shared object (make: build/pdnsrelay.so). */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RMAPI_DEFINE
#include "ixtree.h"
#include "rmapi.h"


/* The argument layout this module takes in place of the script's text;
 * the relay sends the same word (store.c, STORE_MODULE_LAYOUT). */
#define LAYOUT "1"
#define LAYOUT_TREES "1t" /* new index keys are trees */
#define PER_ENTRY 13
#define CMAX 9007199254740991.0 /* counts saturate at 2^53 - 1, as in the script */
#define UNIT_IDS_KEPT 32
#define PREFIX_MAX 128 /* a shard's key prefix ("{s7}" from the relay) */
#define WRONGTYPE "WRONGTYPE Operation against a key holding the wrong kind of value"

/* One call's state: the context, the key prefix, and what is freed at
 * its end. */
typedef struct {
    RedisModuleCtx *ctx;
    const char *P;
    size_t pl;
    int failed; /* a write Redis refused: the call replies with an error */
    /* layout "1t": new index keys are the module's type, and the call
     * reaches replicas and the AOF as itself, not as its writes (where the
     * store's trees are, the module is) */
    int trees;
} call;

/* A write of call c propagated as the command it amounts to, unless the
 * whole call is (layout "1t"). */
#define REPLICATE(c, ...)                                                                          \
    do {                                                                                           \
        if (!(c)->trees)                                                                           \
            RedisModule_Replicate((c)->ctx, __VA_ARGS__);                                          \
    } while (0)

RedisModuleType *ixtype;

static RedisModuleString *str(call *c, const char *p, size_t n) {
    return RedisModule_CreateString(c->ctx, p, n);
}

/* P .. name as a new string. */
static RedisModuleString *pkey(call *c, const char *name) {
    char buf[256];
    size_t n = strlen(name);
    if (c->pl + n > sizeof(buf))
        return NULL;
    memcpy(buf, c->P, c->pl);
    memcpy(buf + c->pl, name, n);
    return str(c, buf, c->pl + n);
}

static const char *sp(const RedisModuleString *s, size_t *n) {
    return RedisModule_StringPtrLen(s, n);
}

static int empty(const RedisModuleString *s) {
    size_t n;
    sp(s, &n);
    return n == 0;
}

/* The hash field f of key k (a new string), NULL when there is none;
 * *wrong is set when k holds another type. */
static RedisModuleString *hget(call *c, RedisModuleString *k, RedisModuleString *f, int *wrong) {
    RedisModuleString *v = NULL;
    RedisModuleKey *key = RedisModule_OpenKey(c->ctx, k, RM_READ);
    *wrong = 0;
    if (!key)
        return NULL;
    if (RedisModule_KeyType(key) != RM_KEYTYPE_HASH)
        *wrong = 1;
    else
        RedisModule_HashGet(key, 0, f, &v, NULL);
    RedisModule_CloseKey(key);
    return v;
}

/* HSET k f v, propagated as itself. */
static void hset(call *c, RedisModuleString *k, RedisModuleString *f, RedisModuleString *v) {
    RedisModuleKey *key = RedisModule_OpenKey(c->ctx, k, RM_READ | RM_WRITE);
    int t = RedisModule_KeyType(key);
    if (t != RM_KEYTYPE_EMPTY && t != RM_KEYTYPE_HASH) {
        c->failed = 1;
    } else {
        RedisModule_HashSet(key, 0, f, v, NULL);
        REPLICATE(c, "HSET", "sss", k, f, v);
    }
    RedisModule_CloseKey(key);
}

/* The tree key holds, or NULL when it holds something else; an empty key
 * gets a new tree when make is set. */
static ixtree *tree_of(RedisModuleKey *key, int make) {
    int t = RedisModule_KeyType(key);
    if (t == RM_KEYTYPE_MODULE && RedisModule_ModuleTypeGetType(key) == ixtype)
        return RedisModule_ModuleTypeGetValue(key);
    if (t != RM_KEYTYPE_EMPTY || !make)
        return NULL;
    ixtree *tr = ixtree_new();
    RedisModule_ModuleTypeSetValue(key, ixtype, tr);
    return tr;
}

/* ZADD k 0 m, propagated as itself, or PDNSRELAY.IXADD k m when k is a
 * tree (or is new and the call makes trees; unless the call is propagated
 * as itself). Returns 1 when m is new. */
static int zadd(call *c, RedisModuleString *k, RedisModuleString *m) {
    int flags = 0;
    RedisModuleKey *key = RedisModule_OpenKey(c->ctx, k, RM_READ | RM_WRITE);
    ixtree *t = tree_of(key, c->trees);
    if (t) {
        size_t n;
        const char *p = sp(m, &n);
        flags = ixtree_add(t, p, n) ? RM_ZADD_ADDED : 0;
        REPLICATE(c, "PDNSRELAY.IXADD", "ss", k, m);
    } else if (RedisModule_ZsetAdd(key, 0, m, &flags) != RM_OK) {
        c->failed = 1;
    } else {
        REPLICATE(c, "ZADD", "scs", k, "0", m);
    }
    RedisModule_CloseKey(key);
    return (flags & RM_ZADD_ADDED) != 0;
}

/* A decimal integer at *p (a leading '-' when neg),
 * read as the script's Lua reads a number (a double); *p moves past it.
 * Returns 0, or -1 when there is none. */
static int num(const char **p, const char *end, int neg, double *out) {
    const char *q = *p;
    int minus = 0;
    double v = 0;
    if (neg && q < end && *q == '-')
        minus = 1, q++;
    const char *d = q;
    while (q < end && *q >= '0' && *q <= '9')
        v = v * 10 + (*q++ - '0');
    if (q == d)
        return -1;
    *p = q;
    *out = minus ? -v : v;
    return 0;
}

/* Decimal digits of v (a double holding an integer, as Lua's %d prints
 * it) at out. Returns their number. */
static size_t dec(double v, char *out) {
    char tmp[24];
    size_t n = 0, o = 0;
    long long x = v >= 9.2e18 ? INT64_MAX : v <= -9.2e18 ? INT64_MIN : (long long)v;
    unsigned long long u = x < 0 ? 0ULL - (unsigned long long)x : (unsigned long long)x;
    if (x < 0)
        out[o++] = '-';
    do
        tmp[n++] = (char)('0' + u % 10);
    while (u /= 10);
    while (n)
        out[o++] = tmp[--n];
    return o;
}

/* A string GET of key k: *v and *n, or NULL when there is none; -1
 * when k holds another type. */
static int get(call *c, RedisModuleString *k, char *buf, size_t cap, size_t *n) {
    RedisModuleKey *key = RedisModule_OpenKey(c->ctx, k, RM_READ);
    *n = 0;
    if (!key)
        return 0;
    int t = RedisModule_KeyType(key), rc = 0;
    if (t != RM_KEYTYPE_STRING) {
        rc = -1;
    } else {
        size_t l;
        const char *p = RedisModule_StringDMA(key, &l, RM_READ);
        if (l >= cap)
            rc = -1;
        else
            memcpy(buf, p, l), buf[l] = 0, *n = l, rc = 1;
    }
    RedisModule_CloseKey(key);
    return rc;
}

/* SET k v, propagated as itself. */
static void set(call *c, RedisModuleString *k, const char *v, size_t n) {
    RedisModuleString *s = str(c, v, n);
    RedisModuleKey *key = RedisModule_OpenKey(c->ctx, k, RM_READ | RM_WRITE);
    RedisModule_StringSet(key, s);
    REPLICATE(c, "SET", "ss", k, s);
    RedisModule_CloseKey(key);
    RedisModule_FreeString(c->ctx, s);
}

/* HINCRBY k f by (k after the prefix), propagated as itself. Returns
 * the new value. */
static long long hincrby(call *c, const char *k, RedisModuleString *f, long long by) {
    RedisModuleString *ks = pkey(c, k);
    int wrong = 0;
    long long v = 0;
    RedisModuleString *old = ks ? hget(c, ks, f, &wrong) : NULL;
    if (!ks || wrong)
        c->failed = 1;
    if (old) {
        size_t n;
        const char *p = sp(old, &n);
        char *e, tmp[32];
        if (n && n < sizeof(tmp)) {
            memcpy(tmp, p, n), tmp[n] = 0;
            v = strtoll(tmp, &e, 10);
            if (*e)
                c->failed = 1;
        } else {
            c->failed = 1;
        }
        RedisModule_FreeString(c->ctx, old);
    }
    if (!c->failed) {
        char buf[24];
        v += by;
        RedisModuleString *vs = str(c, buf, dec((double)v, buf));
        RedisModuleKey *key = RedisModule_OpenKey(c->ctx, ks, RM_READ | RM_WRITE);
        RedisModule_HashSet(key, 0, f, vs, NULL);
        REPLICATE(c, "HINCRBY", "ssl", ks, f, by);
        RedisModule_CloseKey(key);
        RedisModule_FreeString(c->ctx, vs);
    }
    if (ks)
        RedisModule_FreeString(c->ctx, ks);
    return v;
}

/* HINCRBY of the field named f of st:info. */
static void info_incr(call *c, const char *f, long long by) {
    RedisModuleString *fs = str(c, f, strlen(f));
    hincrby(c, "st:info", fs, by);
    RedisModule_FreeString(c->ctx, fs);
}

/* The next space-separated word of [*p, end): its start and *wl, or
 * NULL at the end; *p moves past it. */
static const char *next_word(const char **p, const char *end, size_t *wl) {
    const char *q = *p;
    while (q < end && *q == ' ')
        q++;
    const char *w = q;
    while (q < end && *q != ' ')
        q++;
    *p = q, *wl = (size_t)(q - w);
    return q > w ? w : NULL;
}

/* 1 when the word w (length wl) is one of the words of [s, end). */
static int has_word(const char *s, const char *end, const char *w, size_t wl) {
    size_t n;
    for (const char *x; (x = next_word(&s, end, &n));)
        if (n == wl && memcmp(x, w, wl) == 0)
            return 1;
    return 0;
}

/* The sensors of one call: name -> "<id>|" and records. */
typedef struct {
    RedisModuleString *name;
    char id[24];
    size_t idl;
    long long recs;
} sensor;

/* The sensor named s, first seen in this call, at e: its id from st:sid,
 * or a new one (st:info's sensor_seq, st:sid, st:sname). */
static void sensor_new(call *c, sensor *e, RedisModuleString *s) {
    size_t l;
    e->name = s;
    e->recs = 0;
    RedisModuleString *sid = pkey(c, "st:sid");
    int wrong;
    RedisModuleString *id = hget(c, sid, s, &wrong);
    if (wrong) {
        c->failed = 1;
    } else if (id) {
        const char *ip = sp(id, &l);
        l = l < sizeof(e->id) - 2 ? l : sizeof(e->id) - 2;
        memcpy(e->id, ip, l);
        e->idl = l;
        RedisModule_FreeString(c->ctx, id);
    } else {
        RedisModuleString *f = str(c, "sensor_seq", 10);
        long long seq = hincrby(c, "st:info", f, 1);
        RedisModule_FreeString(c->ctx, f);
        e->idl = dec((double)seq, e->id);
        RedisModuleString *v = str(c, e->id, e->idl), *sname = pkey(c, "st:sname");
        hset(c, sid, s, v);
        hset(c, sname, v, s);
        RedisModule_FreeString(c->ctx, sname);
        RedisModule_FreeString(c->ctx, v);
    }
    e->id[e->idl++] = '|';
    RedisModule_FreeString(c->ctx, sid);
}

/* The bytes a triple's value may take, new or merged: its old value (ol;
 * the sensor set and bailiwick it keeps), the entry's head (hl), sensor
 * id (idl) and bailiwick (bwl), three numbers of up to 20 characters.
 * A value grows with the sensors that saw the triple: no fixed limit. */
static size_t value_bound(size_t ol, size_t hl, size_t idl, size_t bwl) {
    return ol + hl + idl + bwl + 80;
}

/* An entry's numbers: its head "<tf> <tl> <count>" into v[0..2] and its
 * records merged into v[3]. Why they cannot be, as the script says it,
 * or NULL: each is 1 to 19 decimal digits (an int64's; the relay never
 * builds another). */
static const char *entry_numbers(const char *h, size_t hl, const char *r, size_t nl, double v[4]) {
    const char *he = h + hl, *re = r + nl, *a;
    for (int k = 0; k < 3; k++)
        if ((k && (h >= he || *h++ != ' ')) || (a = h, num(&h, he, 0, &v[k]) < 0) || h - a > 19)
            return "ERR malformed entry: its times and count are not three numbers";
    if (h != he)
        return "ERR malformed entry: its times and count are not three numbers";
    if (num(&r, re, 0, &v[3]) < 0 || r != re || nl > 19)
        return "ERR malformed entry: its record count is not a number";
    return NULL;
}

/* The merged value of a triple whose value was old (len ol), given this
 * entry's numbers h (entry_numbers), sensor id and bailiwick, at out
 * (value_bound bytes). Returns its length. */
static size_t merge(const char *old, size_t ol, const double *h, const sensor *s, const char *bw,
                    size_t bwl, char *out) {
    double tf = h[0], tl = h[1], cnt = h[2], otf, otl, oc;
    /* "<tf> <tl> <count> <sensors>[ <bailiwick>]", as the script's pattern
     * '^(%-?%d+) (%-?%d+) (%-?%d+) (%S+) ?(.*)$' reads it */
    const char *p = old, *e = old + ol, *ss = NULL, *obw = "";
    size_t ssl = 0, obwl = 0;
    int ok = num(&p, e, 1, &otf) == 0 && p < e && *p++ == ' ' && num(&p, e, 1, &otl) == 0 &&
             p < e && *p++ == ' ' && num(&p, e, 1, &oc) == 0 && p < e && *p++ == ' ' && p < e &&
             *p != ' ';
    if (ok) {
        ss = p;
        while (p < e && *p != ' ')
            p++;
        ssl = (size_t)(p - ss);
        if (p < e)
            p++;
        obw = p, obwl = (size_t)(e - p);
    } else {
        /* a value the script cannot read: the triple starts again */
        otf = tf, otl = tl, oc = 0, ss = "|", ssl = 1;
    }
    if (oc < 0 || oc > CMAX)
        oc = CMAX;
    if (otf < tf)
        tf = otf;
    if (otl > tl)
        tl = otl;
    if (obwl)
        bw = obw, bwl = obwl;
    double sum = oc + cnt;
    if (sum > CMAX)
        sum = CMAX;
    /* the sensor's "|<id>|" unless the set has it */
    int has = 0;
    for (size_t i = 0; i + 1 + s->idl <= ssl && !has; i++)
        has = ss[i] == '|' && memcmp(ss + i + 1, s->id, s->idl) == 0;
    size_t n = dec(tf, out);
    out[n++] = ' ';
    n += dec(tl, out + n);
    out[n++] = ' ';
    n += dec(sum, out + n);
    out[n++] = ' ';
    memcpy(out + n, ss, ssl), n += ssl;
    if (!has)
        memcpy(out + n, s->id, s->idl), n += s->idl;
    if (bwl) {
        out[n++] = ' ';
        memcpy(out + n, bw, bwl), n += bwl;
    }
    return n;
}

static uint64_t fnv(uint64_t h, const RedisModuleString *s) {
    size_t n;
    const unsigned char *p = (const unsigned char *)sp(s, &n);
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ULL;
    return (h ^ '\n') * 1099511628211ULL;
}

static int same_str(const RedisModuleString *a, const RedisModuleString *b) {
    size_t an, bn;
    const char *ap = sp(a, &an), *bp = sp(b, &bn);
    return an == bn && memcmp(ap, bp, an) == 0;
}

/* For each entry i of a call, first[i]: the first entry with the same
 * argument f1 (and f2, when not -1), i itself for the first. What the
 * script keeps in Lua tables (the triples a call wrote, its sensors, the
 * r: buckets it added), in time linear in the entries. */
static void first_same(RedisModuleString **a, int ne, int f1, int f2, int *first) {
    size_t cap = 16;
    while (cap < (size_t)ne * 2)
        cap *= 2;
    uint64_t *h = RedisModule_Calloc(cap, sizeof(*h));
    int *at = RedisModule_Calloc(cap, sizeof(*at));
    for (int i = 0; i < ne; i++) {
        RedisModuleString **e = a + (size_t)i * PER_ENTRY;
        uint64_t x = fnv(1469598103934665603ULL, e[f1]);
        if (f2 >= 0)
            x = fnv(x, e[f2]);
        x |= 1; /* 0 marks a free slot */
        size_t j = x & (cap - 1);
        first[i] = i;
        for (; h[j]; j = (j + 1) & (cap - 1)) {
            RedisModuleString **o = a + (size_t)at[j] * PER_ENTRY;
            if (h[j] == x && same_str(o[f1], e[f1]) && (f2 < 0 || same_str(o[f2], e[f2]))) {
                first[i] = at[j];
                break;
            }
        }
        if (!h[j])
            h[j] = x, at[j] = i;
    }
    RedisModule_Free(h), RedisModule_Free(at);
}

/* On a cluster: whether every key the call touches is served here, asked
 * as the script asks it (EXISTS of them all, through RedisModule_Call,
 * which refuses a key of a slot being migrated that is no longer here).
 * E holds ne entries; A the script's ARGV (M address index members). */
static int keys_here(call *c, RedisModuleString **A, size_t M, RedisModuleString **E, int ne) {
    static const char *const fixed[] = {"st:sid",   "st:info", "st:sensor",
                                        "st:sname", "ix:rb",   "ix:ip"};
    size_t nf = M > 0 ? 6 : 5, n = 0;
    RedisModuleString **k = malloc((nf + 1 + (size_t)ne * 4) * sizeof(*k));
    int ok = k != NULL;
    for (size_t i = 0; ok && i < nf; i++)
        ok = (k[n++] = pkey(c, fixed[i])) != NULL;
    if (ok && !empty(A[3]))
        k[n++] = A[3];
    for (int i = 0; ok && i < ne; i++) {
        RedisModuleString **e = E + (size_t)i * PER_ENTRY;
        k[n++] = e[0];
        if (!empty(e[7]))
            k[n++] = e[7], k[n++] = e[8];
        if (!empty(e[10]))
            k[n++] = e[10];
    }
    RedisModuleCallReply *r = ok ? RedisModule_Call(c->ctx, "EXISTS", "v", k, n) : NULL;
    if (r)
        RedisModule_FreeCallReply(r);
    for (size_t i = 0; k && i < nf && i < n && k[i]; i++)
        RedisModule_FreeString(c->ctx, k[i]);
    free(k);
    return r != NULL;
}

static void free_call(void *old, void *ft, void *rb_added, void *ss, void *nums) {
    RedisModule_Free(old), RedisModule_Free(ft), RedisModule_Free(rb_added), RedisModule_Free(ss);
    RedisModule_Free(nums);
}

/* PDNSRELAY.INGEST <layout> 1 <marker> <ARGV[1] ...>: what
 * store_ingest.lua does with KEYS[1] and ARGV (its header says each). */
static int ingest(RedisModuleCtx *ctx, RedisModuleString **argv, int argc) {
    if (argc < 12)
        return RedisModule_WrongArity(ctx);
    size_t n;
    const char *lay = sp(argv[1], &n);
    int trees = ixtype && n == strlen(LAYOUT_TREES) && memcmp(lay, LAYOUT_TREES, n) == 0;
    if (!trees && (n != strlen(LAYOUT) || memcmp(lay, LAYOUT, n) != 0))
        return RedisModule_ReplyWithError(
            ctx, ixtype
                     ? "ERR pdnsrelay: unknown argument layout (this module takes layouts " LAYOUT
                       " and " LAYOUT_TREES ")"
                     : "ERR pdnsrelay: unknown argument layout (this module takes layout " LAYOUT
                       "; " LAYOUT_TREES " when loaded with the argument trees)");
    RedisModuleString **A = argv + 4; /* A[j] is the script's ARGV[j + 1] */
    call c = {ctx, NULL, 0, 0, trees};
    c.P = sp(A[5], &c.pl);
    if (c.pl > PREFIX_MAX) /* keys are built after it (pkey) */
        return RedisModule_ReplyWithError(ctx, "ERR pdnsrelay: key prefix too long");
    int cluster = !empty(A[6]) && sp(A[6], NULL)[0] == '1';
    char mbuf[256], ubuf[4096];
    size_t ml, ul;
    /* a batch already applied: (boot id, sequence) */
    int got = get(&c, A[0], mbuf, sizeof(mbuf), &ml);
    if (got < 0)
        return RedisModule_ReplyWithError(ctx, WRONGTYPE);
    if (got) {
        const char *boot = sp(A[1], &n), *sq = memchr(mbuf, ' ', ml);
        double ps, seq;
        size_t s3l;
        const char *q = sq ? sq + 1 : NULL, *s3 = sp(A[2], &s3l);
        if (sq && (size_t)(sq - mbuf) == n && memcmp(mbuf, boot, n) == 0 &&
            num(&q, mbuf + ml, 0, &ps) == 0 && q == mbuf + ml && num(&s3, s3 + s3l, 0, &seq) == 0 &&
            ps >= seq)
            return RedisModule_ReplyWithLongLong(ctx, 0);
    }
    size_t bl, sl, idl;
    const char *ids = sp(A[4], &idl);
    sp(A[1], &bl), sp(A[2], &sl);
    if (bl + 1 + sl >= sizeof(mbuf) || idl >= sizeof(ubuf) / 2)
        return RedisModule_ReplyWithError(ctx, "ERR pdnsrelay: boot id, sequence or unit ids "
                                               "too long");
    int unit = !empty(A[3]);
    got = unit ? get(&c, A[3], ubuf, sizeof(ubuf), &ul) : 0;
    if (got < 0)
        return RedisModule_ReplyWithError(ctx, WRONGTYPE);
    if (!got)
        ul = 0;
    size_t wl;
    const char *p = ids;
    for (const char *w; got && (w = next_word(&p, ids + idl, &wl));)
        if (has_word(ubuf, ubuf + ul, w, wl))
            return RedisModule_ReplyWithLongLong(ctx, 0);
    /* the address index members: a count of the arguments there are */
    size_t M = 0, Ml;
    const char *Ms = sp(A[7], &Ml);
    for (size_t i = 0; i < Ml && M <= (size_t)argc; i++)
        M = Ms[i] >= '0' && Ms[i] <= '9' ? M * 10 + (size_t)(Ms[i] - '0') : (size_t)argc + 1;
    if (!Ml || 12 + M > (size_t)argc)
        return RedisModule_WrongArity(ctx);
    RedisModuleString **E = A + 8 + M;
    int ne = (argc - 12 - (int)M) / PER_ENTRY;
    /* a replica, or Redis loading its AOF, does what its master did: the
     * slots of that time are not asked again */
    int replay =
        RedisModule_GetContextFlags(ctx) & (RM_CTX_FLAGS_REPLICATED | RM_CTX_FLAGS_LOADING);
    if (cluster && !replay && !keys_here(&c, A, M, E, ne))
        return RedisModule_ReplyWithError(ctx, "ERR pdnsrelay: EXISTS refused a key of this "
                                               "call (its slot is being migrated), or out of "
                                               "memory");
    /* per entry: its old value; its numbers; the first entry of its
     * triple, of its sensor and of its r: bucket; for a first entry, its
     * sensor's slot and whether its bucket went to ix:rb (Redis's allocator: a call
     * that a replica or the AOF does again does not fail there for want
     * of memory where it did not here) */
    RedisModuleString **old = RedisModule_Calloc((size_t)ne + 1, sizeof(*old));
    int *ft = RedisModule_Calloc(((size_t)ne + 1) * 4, sizeof(int));
    int *fs = ft + ne + 1, *fb = fs + ne + 1, *slot = fb + ne + 1;
    unsigned char *rb_added = RedisModule_Calloc((size_t)ne + 1, 1);
    sensor *ss = RedisModule_Calloc((size_t)ne + 1, sizeof(*ss));
    double *nums = RedisModule_Calloc(((size_t)ne + 1) * 4, sizeof(double));
    first_same(E, ne, 0, 1, ft);
    first_same(E, ne, 3, -1, fs);
    first_same(E, ne, 9, -1, fb);
    /* reads first, writes after: an entry whose key holds another type,
     * or whose numbers are not, is reported before anything is written */
    for (int i = 0; i < ne; i++) {
        RedisModuleString **e = E + (size_t)i * PER_ENTRY;
        int wrong = 0;
        int again = ft[i] != i; /* read after the call wrote it */
        size_t hl, nl;
        const char *hp = sp(e[2], &hl), *np = sp(e[4], &nl);
        const char *bad = entry_numbers(hp, hl, np, nl, nums + (size_t)i * 4);
        old[i] = again || bad ? NULL : hget(&c, e[0], e[1], &wrong);
        if (!bad && !again && wrong)
            bad = WRONGTYPE;
        if (bad) {
            /* "BAD <entry> <error>", as the script says it */
            char r[160] = "BAD ";
            size_t rl = 4 + dec(i, r + 4), badl = strlen(bad);
            r[rl++] = ' ';
            memcpy(r + rl, bad, badl), rl += badl;
            for (int j = 0; j < i; j++)
                if (old[j])
                    RedisModule_FreeString(ctx, old[j]);
            free_call(old, ft, rb_added, ss, nums);
            return RedisModule_ReplyWithStringBuffer(ctx, r, rl);
        }
    }
    size_t nss = 0;
    long long recs = 0, newt = 0, newn = 0, newe = 0;
    RedisModuleString *rb_key = pkey(&c, "ix:rb");
    /* writes from here on: a replica or the AOF gets the call itself, and
     * does what it did here, a refused write included (nothing below
     * fails for want of memory: Redis's allocator ends Redis first) */
    if (c.trees)
        RedisModule_ReplicateVerbatim(ctx);
    size_t cap = 4096;
    char *val = RedisModule_Alloc(cap);
    for (int i = 0; i < ne && !c.failed; i++) {
        RedisModuleString **e = E + (size_t)i * PER_ENTRY;
        if (fs[i] == i)
            slot[i] = (int)nss, sensor_new(&c, &ss[nss++], e[3]);
        sensor *s = &ss[slot[fs[i]]];
        const double *h = nums + (size_t)i * 4;
        long long nrec = h[3] < 9e18 ? (long long)h[3] : 9000000000000000000LL;
        s->recs += nrec;
        recs += nrec;
        RedisModuleString *v = old[i];
        if (ft[i] != i) {
            int wrong;
            v = hget(&c, e[0], e[1], &wrong);
        }
        size_t hl, bwl, vl = 0;
        const char *head = sp(e[2], &hl), *bw = sp(e[12], &bwl), *ov = v ? sp(v, &vl) : NULL;
        size_t need = value_bound(vl, hl, s->idl, bwl);
        if (need > cap)
            val = RedisModule_Realloc(val, need), cap = need;
        if (v) {
            vl = merge(ov, vl, h, s, bw, bwl, val);
            RedisModule_FreeString(ctx, v);
            old[i] = NULL;
            RedisModuleString *nv = str(&c, val, vl);
            hset(&c, e[0], e[1], nv);
            RedisModule_FreeString(ctx, nv);
            continue;
        }
        memcpy(val, head, hl), vl = hl;
        val[vl++] = ' ';
        val[vl++] = '|';
        memcpy(val + vl, s->id, s->idl), vl += s->idl;
        if (bwl)
            val[vl++] = ' ', memcpy(val + vl, bw, bwl), vl += bwl;
        RedisModuleString *nv = str(&c, val, vl);
        hset(&c, e[0], e[1], nv);
        RedisModule_FreeString(ctx, nv);
        if (empty(e[7])) {
            newe++; /* an error line: no indexes */
            continue;
        }
        newt++;
        if (zadd(&c, e[7], e[5])) {
            /* a new name: the suffix index and its bucket list too */
            newn++;
            zadd(&c, e[8], e[6]);
            if (!rb_added[fb[i]]) {
                rb_added[fb[i]] = 1;
                zadd(&c, rb_key, e[9]);
            }
        }
        if (!empty(e[10]))
            zadd(&c, e[10], e[11]);
    }
    for (int i = 0; i < ne; i++)
        if (old[i])
            RedisModule_FreeString(ctx, old[i]);
    RedisModule_Free(val);
    if (!c.failed && M > 0) {
        RedisModuleString *ip = pkey(&c, "ix:ip");
        for (size_t j = 0; j < M && !c.failed; j++)
            zadd(&c, ip, A[8 + j]);
        RedisModule_FreeString(ctx, ip);
    }
    if (!c.failed) {
        for (size_t i = 0; i < nss; i++)
            hincrby(&c, "st:sensor", ss[i].name, ss[i].recs);
        info_incr(&c, "records", recs);
        if (newt > 0)
            info_incr(&c, "triples", newt);
        if (newn > 0)
            info_incr(&c, "names", newn);
        if (newe > 0)
            info_incr(&c, "errors", newe);
    }
    free_call(old, ft, rb_added, ss, nums);
    RedisModule_FreeString(ctx, rb_key);
    if (c.failed)
        return RedisModule_ReplyWithError(ctx, "ERR pdnsrelay: a write was refused (a key "
                                               "holds another type)");
    /* the batch's marker; the unit's ids, newest first, the last 32 */
    const char *boot = sp(A[1], &bl), *seq = sp(A[2], &sl);
    memcpy(mbuf, boot, bl), mbuf[bl] = ' ', memcpy(mbuf + bl + 1, seq, sl);
    set(&c, A[0], mbuf, bl + 1 + sl);
    if (unit) {
        /* the script keeps every id of this call, newest first, then the
         * old ones while fewer than 32 */
        const char *fresh[sizeof(ubuf) / 4];
        size_t fl[sizeof(ubuf) / 4], nf = 0, ol = 0, k;
        char out[sizeof(ubuf) * 2];
        p = ids;
        for (const char *w; (w = next_word(&p, ids + idl, &k));)
            fresh[nf] = w, fl[nf++] = k;
        for (size_t i = nf; i-- > 0;) {
            if (ol)
                out[ol++] = ' ';
            memcpy(out + ol, fresh[i], fl[i]), ol += fl[i];
        }
        p = ubuf;
        for (const char *w; nf < UNIT_IDS_KEPT && (w = next_word(&p, ubuf + ul, &k)); nf++) {
            if (ol)
                out[ol++] = ' ';
            memcpy(out + ol, w, k), ol += k;
        }
        set(&c, A[3], out, ol);
    }
    return RedisModule_ReplyWithLongLong(ctx, recs);
}

/* The index type's callbacks: an RDB value is the member count, then
 * each member in order (a load fills its leaves); an AOF rewrite is an
 * IXADD a member. */
static void *ix_rdb_load(RedisModuleIO *io, int encver) {
    if (encver != 0)
        return NULL;
    uint64_t n = RedisModule_LoadUnsigned(io);
    ixtree *t = ixtree_new();
    for (uint64_t i = 0; i < n; i++) {
        size_t l;
        char *m = RedisModule_LoadStringBuffer(io, &l);
        if (!m) {
            ixtree_free(t);
            return NULL;
        }
        ixtree_add(t, m, l);
        RedisModule_Free(m);
    }
    return t;
}

static int save_one(void *io, const char *m, size_t n) {
    RedisModule_SaveStringBuffer(io, m, n);
    return 0;
}

static const ixtree_bound ALL_LO = {-1, 0, NULL, 0}, ALL_HI = {1, 0, NULL, 0};

static void ix_rdb_save(RedisModuleIO *io, void *v) {
    RedisModule_SaveUnsigned(io, ixtree_count(v));
    ixtree_range(v, &ALL_LO, &ALL_HI, 0, save_one, io);
}

typedef struct {
    RedisModuleIO *io;
    RedisModuleString *key;
} aof_walk;

static int aof_one(void *arg, const char *m, size_t n) {
    aof_walk *w = arg;
    RedisModule_EmitAOF(w->io, "PDNSRELAY.IXADD", "sb", w->key, m, n);
    return 0;
}

static void ix_aof_rewrite(RedisModuleIO *io, RedisModuleString *key, void *v) {
    aof_walk w = {io, key};
    ixtree_range(v, &ALL_LO, &ALL_HI, 0, aof_one, &w);
}

static int digest_one(void *md, const char *m, size_t n) {
    RedisModule_DigestAddStringBuffer(md, m, n);
    return 0;
}

/* DEBUG DIGEST and DIGEST-VALUE: the members in order, one sequence (a
 * replica's tree, or one loaded from an RDB or AOF, gives its master's). */
static void ix_digest(void *md, void *v) {
    ixtree_range(v, &ALL_LO, &ALL_HI, 0, digest_one, md);
    RedisModule_DigestEndSequence(md);
}

static size_t ix_mem_usage(const void *v) { return ixtree_bytes(v); }

static void ix_free(void *v) { ixtree_free(v); }

/* What freeing takes: a tree of more than 64 members is freed by Redis's
 * lazy-free thread (UNLINK, FLUSHALL ASYNC), not in a command. */
static size_t ix_free_effort(RedisModuleString *key, const void *v) {
    (void)key;
    return ixtree_count(v);
}

static int copy_one(void *to, const char *m, size_t n) {
    ixtree_add(to, m, n);
    return 0;
}

/* COPY: the same members, in order (its leaves fill). */
static void *ix_copy(RedisModuleString *from, RedisModuleString *to, const void *v) {
    (void)from, (void)to;
    ixtree *t = ixtree_new();
    ixtree_range(v, &ALL_LO, &ALL_HI, 0, copy_one, t);
    return t;
}

/* The tree of argv[1] for an IX command: *t NULL for a key that does not
 * exist (or is new, with make); -1 (after the error reply) when it holds
 * another type. */
static int ix_open(RedisModuleCtx *ctx, RedisModuleString *k, int mode, int make,
                   RedisModuleKey **key, ixtree **t) {
    *key = RedisModule_OpenKey(ctx, k, mode);
    *t = tree_of(*key, make);
    if (!*t && RedisModule_KeyType(*key) != RM_KEYTYPE_EMPTY) {
        RedisModule_CloseKey(*key);
        RedisModule_ReplyWithError(ctx, WRONGTYPE);
        return -1;
    }
    return 0;
}

/* PDNSRELAY.IXADD key member [member ...]: the members added; and
 * PDNSRELAY.IXREM key member [member ...]: the members removed (a tree
 * left empty is deleted, as a sorted set is). */
static int ix_write(RedisModuleCtx *ctx, RedisModuleString **argv, int argc, int add) {
    RedisModuleKey *key;
    ixtree *t;
    long long done = 0;
    if (argc < 3)
        return RedisModule_WrongArity(ctx);
    if (ix_open(ctx, argv[1], RM_READ | RM_WRITE, add, &key, &t) < 0)
        return 0;
    for (int i = 2; t && i < argc; i++) {
        size_t n;
        const char *m = sp(argv[i], &n);
        done += add ? ixtree_add(t, m, n) : ixtree_del(t, m, n);
    }
    if (t && !add && ixtree_count(t) == 0)
        RedisModule_DeleteKey(key);
    RedisModule_CloseKey(key);
    if (done)
        RedisModule_ReplicateVerbatim(ctx);
    return RedisModule_ReplyWithLongLong(ctx, done);
}

static int ix_add_cmd(RedisModuleCtx *ctx, RedisModuleString **argv, int argc) {
    return ix_write(ctx, argv, argc, 1);
}

static int ix_rem_cmd(RedisModuleCtx *ctx, RedisModuleString **argv, int argc) {
    return ix_write(ctx, argv, argc, 0);
}

static int reply_one(void *ctx, const char *m, size_t n) {
    RedisModule_ReplyWithStringBuffer(ctx, m, n);
    return 0;
}

/* PDNSRELAY.IXRANGE key min max [count]: ZRANGEBYLEX key min max LIMIT 0
 * count (no count: all). */
static int ix_range_cmd(RedisModuleCtx *ctx, RedisModuleString **argv, int argc) {
    RedisModuleKey *key;
    ixtree *t;
    ixtree_bound lo, hi;
    long long count = 0;
    size_t ln, hn;
    if (argc != 4 && argc != 5)
        return RedisModule_WrongArity(ctx);
    const char *l = sp(argv[2], &ln), *h = sp(argv[3], &hn);
    if (ixtree_bound_parse(l, ln, &lo) < 0 || ixtree_bound_parse(h, hn, &hi) < 0)
        return RedisModule_ReplyWithError(ctx, "ERR min or max not valid string range item");
    if (argc == 5) {
        size_t cn;
        const char *cs = sp(argv[4], &cn);
        char tmp[24], *e;
        if (!cn || cn >= sizeof(tmp))
            return RedisModule_ReplyWithError(ctx, "ERR count is not an integer");
        memcpy(tmp, cs, cn), tmp[cn] = 0;
        count = strtoll(tmp, &e, 10);
        if (*e)
            return RedisModule_ReplyWithError(ctx, "ERR count is not an integer");
        if (count == 0)
            return RedisModule_ReplyWithArray(ctx, 0);
    }
    if (ix_open(ctx, argv[1], RM_READ, 0, &key, &t) < 0)
        return 0;
    if (!t) {
        RedisModule_CloseKey(key);
        return RedisModule_ReplyWithArray(ctx, 0);
    }
    RedisModule_ReplyWithArray(ctx, RM_POSTPONED_LEN);
    size_t given = ixtree_range(t, &lo, &hi, count > 0 ? (size_t)count : 0, reply_one, ctx);
    RedisModule_ReplySetArrayLength(ctx, (long)given);
    RedisModule_CloseKey(key);
    return 0;
}

/* PDNSRELAY.IXCONVERT key [key ...]: each key that is a sorted set of
 * members of score 0 becomes a tree of the same members, in place (what
 * `pdns-relay index-trees` does to each index key of a store); a key that
 * is a tree already, or none, is left. Replies with the keys converted,
 * or, at the first key it cannot convert (another type, a member of
 * another score), an error naming it, the keys before it converted. The
 * call reaches replicas and the AOF as itself. One sorted set of n
 * members holds Redis for about n * 0.65 us (docs/performance.md). */
static int ix_convert_cmd(RedisModuleCtx *ctx, RedisModuleString **argv, int argc) {
    if (argc < 2)
        return RedisModule_WrongArity(ctx);
    long long done = 0;
    const char *why = NULL;
    int i;
    for (i = 1; i < argc && !why; i++) {
        RedisModuleKey *key = RedisModule_OpenKey(ctx, argv[i], RM_READ | RM_WRITE);
        int t = RedisModule_KeyType(key);
        if (t == RM_KEYTYPE_ZSET) {
            /* score order, which is the members' order when all are 0 */
            ixtree *tr = ixtree_new();
            RedisModule_ZsetFirstInScoreRange(key, -1.0 / 0.0, 1.0 / 0.0, 0, 0);
            while (!why && !RedisModule_ZsetRangeEndReached(key)) {
                double score;
                size_t n;
                RedisModuleString *m = RedisModule_ZsetRangeCurrentElement(key, &score);
                const char *p = sp(m, &n);
                if (score != 0)
                    why = "has a member whose score is not 0";
                else
                    ixtree_add(tr, p, n);
                RedisModule_FreeString(ctx, m);
                RedisModule_ZsetRangeNext(key);
            }
            RedisModule_ZsetRangeStop(key);
            if (why)
                ixtree_free(tr);
            else
                RedisModule_ModuleTypeSetValue(key, ixtype, tr), done++;
        } else if (t != RM_KEYTYPE_EMPTY && !tree_of(key, 0)) {
            why = "is neither a sorted set nor a tree";
        }
        RedisModule_CloseKey(key);
    }
    if (done)
        RedisModule_ReplicateVerbatim(ctx);
    if (!why)
        return RedisModule_ReplyWithLongLong(ctx, done);
    char msg[320], kb[201];
    size_t kl;
    const char *k = sp(argv[i - 1], &kl);
    kl = kl < sizeof(kb) - 1 ? kl : sizeof(kb) - 1;
    for (size_t j = 0; j < kl; j++) /* a reply's error is one line */
        kb[j] = k[j] >= ' ' && k[j] < 127 ? k[j] : '?';
    kb[kl] = 0;
    snprintf(msg, sizeof(msg), "ERR pdnsrelay: key '%s' %s (%lld converted before it)", kb, why,
             done);
    return RedisModule_ReplyWithError(ctx, msg);
}

/* PDNSRELAY.IXCARD key: its members (0 for none). */
static int ix_card_cmd(RedisModuleCtx *ctx, RedisModuleString **argv, int argc) {
    RedisModuleKey *key;
    ixtree *t;
    if (argc != 2)
        return RedisModule_WrongArity(ctx);
    if (ix_open(ctx, argv[1], RM_READ, 0, &key, &t) < 0)
        return 0;
    long long n = t ? (long long)ixtree_count(t) : 0;
    RedisModule_CloseKey(key);
    return RedisModule_ReplyWithLongLong(ctx, n);
}

#define API(name) RedisModule_GetApi("RedisModule_" #name, (void *)&RedisModule_##name)

/* Loaded with the argument "trees" (loadmodule .../pdnsrelay.so trees),
 * the module has its index type and the IX commands: a store of trees
 * needs them from the start, to load its RDB or AOF. Redis cannot unload
 * a module that has a type; loaded without it, the module can be
 * unloaded (MODULE UNLOAD), and refuses layout "1t". */
int RedisModule_OnLoad(RedisModuleCtx *ctx, RedisModuleString **argv, int argc) {
    RedisModule_GetApi = (int (*)(const char *, void *))((void **)ctx)[0];
    if (API(SetModuleAttribs) || API(CreateCommand) || API(OpenKey) || API(CloseKey) ||
        API(KeyType) || API(StringDMA) || API(StringSet) || API(HashGet) || API(HashSet) ||
        API(ZsetAdd) || API(ZsetFirstInScoreRange) || API(ZsetRangeCurrentElement) ||
        API(ZsetRangeNext) || API(ZsetRangeEndReached) || API(ZsetRangeStop) || API(StringPtrLen) ||
        API(CreateString) || API(FreeString) || API(ReplyWithLongLong) || API(ReplyWithError) ||
        API(ReplyWithStringBuffer) || API(Replicate) || API(WrongArity) || API(Call) ||
        API(FreeCallReply) || API(Alloc) || API(Free) || API(Realloc) || API(Calloc) ||
        API(GetContextFlags) || API(CreateDataType) || API(ModuleTypeSetValue) ||
        API(ModuleTypeGetType) || API(ModuleTypeGetValue) || API(SaveUnsigned) ||
        API(LoadUnsigned) || API(SaveStringBuffer) || API(LoadStringBuffer) || API(EmitAOF) ||
        API(DigestAddStringBuffer) || API(DigestEndSequence) || API(ReplyWithArray) ||
        API(ReplySetArrayLength) || API(ReplicateVerbatim) || API(DeleteKey) || API(Log) ||
        API(ZsetFirstInLexRange) || API(ScanCursorCreate) || API(ScanCursorDestroy) ||
        API(ScanKey) || API(CallReplyType) || API(CallReplyStringPtr) ||
        API(CallReplyLength) || API(CallReplyArrayElement) || API(DbSize))
        return 1;
    API(IsModuleNameBusy);
    if (RedisModule_IsModuleNameBusy && RedisModule_IsModuleNameBusy("pdnsrelay"))
        return 1;
    int trees = 0;
    for (int i = 0; i < argc; i++) {
        size_t n;
        const char *a = sp(argv[i], &n);
        if (n == 5 && memcmp(a, "trees", 5) == 0) {
            trees = 1;
        } else {
            RedisModule_Log(ctx, "warning",
                            "pdnsrelay: unknown argument '%.*s' (it takes "
                            "\"trees\" or none)",
                            (int)(n < 64 ? n : 64), a);
            return 1;
        }
    }
    RedisModule_SetModuleAttribs(ctx, "pdnsrelay", 1, RM_APIVER_1);
    /* the marker (argument 3) is the key a cluster would route by */
    if (RedisModule_CreateCommand(ctx, "pdnsrelay.ingest", ingest, "write deny-oom", 3, 3, 1))
        return 1;
    /* reads, and stores a numeric cursor as the query script does (a
     * Redis that does not know the flag "may-replicate": "write") */
    if (RedisModule_CreateCommand(ctx, "pdnsrelay.query", pdns_query_cmd, "may-replicate", 1, 1,
                                  1) &&
        RedisModule_CreateCommand(ctx, "pdnsrelay.query", pdns_query_cmd, "write", 1, 1, 1))
        return 1;
    /* the key routes the call to a node; the step reads what SCAN finds */
    if (RedisModule_CreateCommand(ctx, "pdnsrelay.sweep", pdns_sweep_cmd, "readonly", 1, 1, 1))
        return 1;
    if (!trees)
        return 0;
    ixtree_set_allocator(RedisModule_Alloc, RedisModule_Free);
    rm_type_methods tm = {.version = 3,
                          .rdb_load = ix_rdb_load,
                          .rdb_save = ix_rdb_save,
                          .aof_rewrite = ix_aof_rewrite,
                          .mem_usage = ix_mem_usage,
                          .digest = ix_digest,
                          .free = ix_free,
                          .free_effort = ix_free_effort,
                          .copy = ix_copy};
    ixtype = RedisModule_CreateDataType(ctx, "pdns-tree", 0, &tm);
    return !ixtype ||
           RedisModule_CreateCommand(ctx, "pdnsrelay.ixadd", ix_add_cmd, "write deny-oom", 1, 1,
                                     1) ||
           RedisModule_CreateCommand(ctx, "pdnsrelay.ixrem", ix_rem_cmd, "write", 1, 1, 1) ||
           RedisModule_CreateCommand(ctx, "pdnsrelay.ixconvert", ix_convert_cmd, "write", 1, -1,
                                     1) ||
           RedisModule_CreateCommand(ctx, "pdnsrelay.ixrange", ix_range_cmd, "readonly", 1, 1, 1) ||
           RedisModule_CreateCommand(ctx, "pdnsrelay.ixcard", ix_card_cmd, "readonly fast", 1, 1,
                                     1);
}
