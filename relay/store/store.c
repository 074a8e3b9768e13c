/* store.c - the local COF store on Redis. See store.h. */
#include "store.h"

#include <arpa/inet.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <inttypes.h>
#include <openssl/sha.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "hist.h"
#include "log.h"
#include "merge.h"
#include "rrtype.h"
#include "store_ingest.lua.h"
#include "store_expire.lua.h"
#include "store_query.lua.h"
#include "store_sweep.lua.h"

#define RETRY_MS 1000
#define SPARE_MAX_BYTES (16u << 20)  /* stored chunks' buffers kept for the next */
#define CHUNK_MAX_BYTES (32u << 20)   /* a batch's strings: well within Redis's
                                       * limits (and 32-bit offsets) */
#define ARGS_PER_ENTRY 13
/* The argument layout PDNSRELAY.INGEST takes (relay/store/module/pdnsrelay.c,
 * LAYOUT): store_ingest.lua's arguments, this word in the script's place. */
#define STORE_MODULE_LAYOUT "1"
#define STORE_MODULE_LAYOUT_TREES "1t" /* the same; new index keys are the module's trees */
#define MERGE_FACTOR 16    /* a batch closes at store.batch entries, or at this
                            * many times as many records (records of a triple
                            * already in the batch merge into its entry) */
#define DEAD_MAX 10000     /* records kept in st:dead */
#define CALL_MIN 64        /* entries a call takes at least (store.call_ms) */
#define WAIT_MS 2000       /* on a cluster: how long a replica may take to have a part */
#define PDNS_STR_(x) #x
#define PDNS_STR(x) PDNS_STR_(x)

/* One entry of a batch: the records of the batch with the same (name,
 * rrtype, rdata, sensor), merged. Its strings are in the chunk's arena. */
typedef struct entry {
    uint32_t off;              /* name, rdata, sensor, reversed name, index member */
    uint16_t name_len, sensor_len, rev_len, rb_len, ixp_len;
    uint32_t rdata_len;
    uint32_t bw_off;           /* the bailiwick, when known */
    uint16_t bw_len;
    uint16_t rrtype;
    uint8_t ix;                /* IX_NONE, IX_IP, IX_RD */
    uint8_t ip_canon;          /* IX_IP: the rdata is the text of its key */
    uint8_t is_error;          /* an error line (e:<name>, no indexes) */
    uint8_t shard;             /* of the name (0 on one server) */
    int64_t tf, tl;
    uint64_t count;
    uint32_t nrec;
    uint64_t hash;
} entry;

enum { IX_NONE, IX_IP, IX_RD };

typedef struct gone_member gone_member;

struct store_chunk {
    store_chunk *next;
    pdns_buf arena;     /* the entries' strings */
    pdns_buf entries;   /* entry[] */
    uint32_t *slots;    /* open addressing: entry index + 1, or 0 */
    size_t nslots;
    size_t nrec;
    uint64_t seq;
    int sealed;         /* sent once: never takes more records */
    int in_unit;        /* takes every record until store_end_unit */
    char unit_key[200]; /* the units' marker ("" for none) and their ids */
    char unit_ids[STORE_UNIT_MERGE * 24];
    int unit_n;         /* ids in unit_ids: > 0 and !in_unit, not sealed: open
                         * for the next unit of the same key */
    int resent;         /* a part went again (Redis away, an error): its time
                         * is not what the call cost (size_calls) */
    /* the parts of a batch, one per shard it touches (one on one server) */
    uint8_t part[STORE_SHARDS_MAX]; /* PART_NONE, _TODO, _SENT, _DONE */
    int parts_init, parts_left;
    double sent_s;
};

enum { PART_NONE, PART_TODO, PART_SENT, PART_DONE };

/* One part in flight: on a cluster its EVAL and the WAIT after it both
 * answer (refs); the part is done when the EVAL applied it and a replica
 * was asked to have it. */
typedef struct part_call {
    store *s;
    uint64_t seq;
    int shard, refs, applied, lost;
    int again;      /* not applied, and may go again at once (an entry set aside) */
} part_call;

static double mono_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void store_conf_defaults(store_conf *c) {
    memset(c, 0, sizeof(*c));
    c->enabled = 1;
    c->batch = 1000;
    c->call_ms = 10;
    c->module = 1;
    c->max_buffer = 500000;
    c->default_limit = 1000;
    c->max_limit = 100000;
    c->budget = 100000;
    c->sweep_interval = 600;
    c->shards = 12;
}

size_t store_reverse_name(const char *name, size_t len, char *out) {
    size_t o = 0, end = len;
    if (len == 1 && name[0] == '.') {
        out[0] = '.';
        return 1;
    }
    while (end > 0) {
        size_t start = end;
        while (start > 0 && name[start - 1] != '.')
            start--;
        if (o)
            out[o++] = '.';
        memcpy(out + o, name + start, end - start);
        o += end - start;
        end = start ? start - 1 : 0;
    }
    return o;
}

size_t store_rev_bucket(const char *rev, size_t len) {
    const char *dot = memchr(rev, '.', len);
    if (!dot || dot == rev)
        return len;
    const char *dot2 = memchr(dot + 1, '.', len - (size_t)(dot + 1 - rev));
    return dot2 ? (size_t)(dot2 - rev) : len;
}

/* FNV-1a, 32 bits: a fixed hash (it names Redis keys, so it must never
 * change), folded to 16 bits. */
static unsigned hash16(const char *p, size_t len) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (uint8_t)p[i]) * 16777619u;
    return (h ^ (h >> 16)) & 0xffff;
}

void store_fwd_bucket(const char *name, size_t len, char out[8]) {
    const char *dot = memchr(name, '.', len);
    size_t l = dot && dot != name ? (size_t)(dot - name) : len;
    snprintf(out, 8, "f:%04x", hash16(name, l));
}

void store_rd_bucket(const char *rdata, size_t len, char out[8]) {
    snprintf(out, 8, "d:%04x", hash16(rdata, len));
}

/* On a cluster each shard has its own buckets: 16 bits of bucket in each
 * of 12 shards would make most buckets a key of one member (about 70 bytes
 * of key for each), so a shard's f: and d: buckets take 12 bits. */
static void shard_bucket(const store *s, char *b) {
    if (s->cluster && (b[0] == 'f' || b[0] == 'd') && b[1] == ':' && strlen(b) == 6)
        b[5] = '\0';
}

/* The d: bucket of an rdata index member: that of its target name. */
static void member_bucket(const char *ixp, size_t ixl, char out[8]) {
    const char *sp = memchr(ixp, ' ', ixl);
    store_rd_bucket(ixp, sp ? (size_t)(sp - ixp) : ixl, out);
}

/* store_ip_key, and with canon whether text is what inet_ntop writes for
 * the address (what a query writes again from the key). */
static size_t ip_key(const char *text, size_t len, char out[34], uint8_t *canon) {
    static const char hex[] = "0123456789abcdef";
    char tmp[64], back[INET6_ADDRSTRLEN];
    uint8_t a[16];
    if (len >= sizeof(tmp))
        return 0;
    memcpy(tmp, text, len);
    tmp[len] = '\0';
    size_t n;
    int af;
    if (inet_pton(AF_INET, tmp, a) == 1) {
        out[0] = '4';
        n = 4, af = AF_INET;
    } else if (inet_pton(AF_INET6, tmp, a) == 1) {
        out[0] = '6';
        n = 16, af = AF_INET6;
    } else {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        out[1 + 2 * i] = hex[a[i] >> 4];
        out[2 + 2 * i] = hex[a[i] & 15];
    }
    out[1 + 2 * n] = '\0';
    if (canon)
        *canon = inet_ntop(af, a, back, sizeof(back)) && strcmp(back, tmp) == 0;
    return 1 + 2 * n;
}

size_t store_ip_key(const char *text, size_t len, char out[34]) {
    return ip_key(text, len, out, NULL);
}

static void chunk_free(store_chunk *c) {
    pdns_buf_free(&c->arena);
    pdns_buf_free(&c->entries);
    free(c->slots);
    free(c);
}

static size_t chunk_bytes(const store_chunk *c) {
    return c->arena.cap + c->entries.cap + c->nslots * sizeof(*c->slots);
}

/* A chunk stored: its buffers for a next one (new_chunk), within
 * SPARE_MAX_BYTES in all. */
static void spare_put(store *s, store_chunk *c) {
    size_t b = chunk_bytes(c);
    if (s->spare_bytes + b > SPARE_MAX_BYTES) {
        chunk_free(c);
        return;
    }
    c->next = s->spare;
    s->spare = c;
    s->spare_bytes += b;
}

static void kick(store *s);

/* The store script refused one entry of chunk c before writing anything
 * ("<entry> <error>": say a key that holds another type): that entry goes
 * to the dead-letter list st:dead (the newest DEAD_MAX kept) with the
 * reason, is counted and logged, and leaves the chunk. */
static void set_aside(store *s, store_chunk *c, int shard, const char *what) {
    entry *es = (entry *)c->entries.p;
    size_t n = c->entries.len / sizeof(entry);
    char *end;
    unsigned long nth = strtoul(what, &end, 10), k = 0;
    /* the part's nth entry */
    for (; k < n; k++)
        if (es[k].shard == shard && nth-- == 0)
            break;
    if (k >= n || *end != ' ') { /* not ours to read: retried, as any error */
        s->errors++;
        s->retry_at_ms = pdns_mono_ms() + RETRY_MS;
        return;
    }
    const entry *e = &es[k];
    const char *name = c->arena.p + e->off, *rdata = name + e->name_len,
               *sensor = rdata + e->rdata_len;
    json_t *o = json_pack("{s:s%,s:i,s:s%,s:I,s:I,s:I,s:s%,s:s}", "rrname", name,
                          (size_t)e->name_len, "rrtype", (int)e->rrtype, "rdata", rdata,
                          (size_t)e->rdata_len, "time_first", (json_int_t)e->tf,
                          "time_last", (json_int_t)e->tl, "count", (json_int_t)e->count,
                          "sensor_id", sensor, (size_t)e->sensor_len, "error", end + 1);
    char *t = o ? json_dumps(o, JSON_COMPACT) : NULL;
    if (t) {
        rlink_command(s->link, "st:dead", NULL, NULL, "LPUSH st:dead %s", t);
        rlink_command(s->link, "st:dead", NULL, NULL, "LTRIM st:dead 0 %d", DEAD_MAX - 1);
    }
    log_error("store: Redis cannot take a record (%s): set aside in st:dead: %s",
              end + 1, t ? t : "?");
    free(t);
    json_decref(o);
    s->dead++;
    s->waiting -= e->nrec;
    c->nrec -= e->nrec;
    memmove(&es[k], &es[k + 1], (n - k - 1) * sizeof(entry));
    c->entries.len -= sizeof(entry);
}

/* After a call of n entries took secs (sent to answered): the entries
 * the next calls take, so that one holds Redis about store.call_ms (a
 * query waits behind it), between CALL_MIN and store.batch. Calls of
 * fewer than CALL_MIN entries (a partial batch) say little of an entry's
 * cost and are left out; the average follows a quarter of each call. */
static void size_calls(store *s, size_t n, double secs) {
    if (s->conf->call_ms <= 0 || n < CALL_MIN)
        return;
    s->entry_s = pdns_avg_step(s->entry_s, secs / (double)n);
    s->call_entries = pdns_within(s->conf->call_ms / 1000.0 / s->entry_s, CALL_MIN,
                                  s->conf->batch);
}

/* Every part of the head batch is in Redis: the batch is stored. */
static void batch_stored(store *s, store_chunk *c) {
    double secs = mono_s() - c->sent_s;
    pdns_hist_add(&s->lat, secs);
    if (!c->resent)
        size_calls(s, c->entries.len / sizeof(entry), secs);
    s->batches++;
    s->acked_seq = c->seq;
    s->stored += c->nrec;
    s->waiting -= c->nrec;
    s->head = c->next;
    if (!s->head)
        s->tail = NULL;
    spare_put(s, c);
    if (s->on_acked)
        s->on_acked(s->ctx);
    if (s->full && s->waiting <= s->conf->max_buffer / 2) {
        s->full = 0;
        log_info("store: buffer drained to %zu records; sources resume",
                 s->waiting);
        if (s->on_drain)
            s->on_drain(s->ctx);
    }
}

/* The part's last answer came: done, or to be sent again. */
static void part_release(part_call *pc) {
    if (--pc->refs > 0)
        return;
    store *s = pc->s;
    store_chunk *c = s->head;
    s->busy--;
    if (c && c->seq == pc->seq && c->part[pc->shard] == PART_SENT) {
        if (pc->applied && !pc->lost) {
            c->part[pc->shard] = PART_DONE;
            if (--c->parts_left == 0)
                batch_stored(s, c);
        } else {
            /* sent again by the tick (or when the link is back), not from
             * here: a link refusing at once would recurse; at most once
             * applied: the marker */
            c->part[pc->shard] = PART_TODO;
            c->resent = 1;
            if (!pc->again) {
                free(pc);
                return;
            }
        }
    }
    free(pc);
    kick(s);
}

static void on_part(redisAsyncContext *ac, void *reply, void *priv) {
    part_call *pc = priv;
    store *s = pc->s;
    store_chunk *c = s->head;
    redisReply *rep = reply;
    (void)ac;
    if (!rep || !c || c->seq != pc->seq) {
        pc->lost = 1; /* the connection went away: sent again once it is back */
    } else if ((rep->type == REDIS_REPLY_STRING || rep->type == REDIS_REPLY_STATUS) &&
               rep->len > 4 && memcmp(rep->str, "BAD ", 4) == 0) {
        set_aside(s, c, pc->shard, rep->str + 4); /* the rest goes again: nothing was written */
        pc->again = 1;
    } else if (rep->type == REDIS_REPLY_ERROR && s->module &&
               (strstr(rep->str, "unknown command") || strstr(rep->str, "argument layout") ||
                strstr(rep->str, "takes the script"))) {
        /* the module is gone (unloaded), speaks another layout, or is one
         * that leaves a cluster to the script: the script takes this batch
         * and the next, until the next connect asks */
        s->module = 0;
        log_warn("store: PDNSRELAY.INGEST refused a batch (%s); %s", rep->str,
                 s->trees ? "the store's trees take nothing else" : "batches go to the script");
        pc->again = 1;
    } else if (rep->type != REDIS_REPLY_INTEGER) {
        s->errors++;
        log_error("store: Redis refused a batch of %zu records (%s); "
                  "retrying in %d ms", c->nrec,
                  rep->type == REDIS_REPLY_ERROR ? rep->str : "unexpected reply",
                  RETRY_MS);
        s->retry_at_ms = pdns_mono_ms() + RETRY_MS;
    } else {
        if (rep->integer == 0 && c->nrec)
            s->duplicates++;
        pc->applied = 1;
    }
    part_release(pc);
}

/* On a cluster: a replica has the part too, or the master went away (the
 * part goes again: its marker keeps it from being applied twice). A
 * replica that does not answer within WAIT_MS: counted, and taken. */
static void on_part_wait(redisAsyncContext *ac, void *reply, void *priv) {
    part_call *pc = priv;
    redisReply *rep = reply;
    (void)ac;
    if (!rep)
        pc->lost = 1;
    else if (rep->type != REDIS_REPLY_INTEGER || rep->integer < 1)
        pc->s->unreplicated++;
    part_release(pc);
}

/* The first four arguments of an EVAL of script (a Lua header's array)
 * with one key (what a cluster routes it by). */
#define EVAL_HEAD(argv, argl, script, key)                                 \
    ((argv)[0] = "EVAL", (argl)[0] = 4, (argv)[1] = (script),               \
     (argl)[1] = sizeof(script) - 1, (argv)[2] = "1", (argl)[2] = 1,        \
     (argv)[3] = (key), (argl)[3] = strlen(key))

/* Decimal digits of v into out (no NUL). Returns their number. */
static size_t utoa(uint64_t v, char out[20]) {
    char tmp[20];
    size_t n = 0;
    do
        tmp[n++] = (char)('0' + v % 10);
    while ((v /= 10));
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    return n;
}

static size_t itoa64(int64_t v, char out[21]) {
    if (v >= 0)
        return utoa((uint64_t)v, out);
    out[0] = '-';
    return 1 + utoa((uint64_t)0 - (uint64_t)v, out + 1);
}

/* Appends one RESP bulk string, the concatenation p a b
 * ("$<n>\r\n<p><a><b>\r\n"). Returns 0, or -1. */
static int resp_arg3(pdns_buf *cmd, const char *p, size_t plen, const char *a, size_t alen,
                     const char *b, size_t blen) {
    char hdr[24];
    size_t n = 1;
    hdr[0] = '$';
    n += utoa(plen + alen + blen, hdr + 1);
    hdr[n++] = '\r';
    hdr[n++] = '\n';
    if (pdns_buf_reserve(cmd, n + plen + alen + blen + 2) < 0)
        return -1;
    char *w = cmd->p + cmd->len;
    memcpy(w, hdr, n);
    w += n;
    if (plen)
        memcpy(w, p, plen);
    memcpy(w + plen, a, alen);
    if (blen)
        memcpy(w + plen + alen, b, blen);
    memcpy(w + plen + alen + blen, "\r\n", 2);
    cmd->len += n + plen + alen + blen + 2;
    return 0;
}

static int resp_arg(pdns_buf *cmd, const char *a, size_t alen, const char *b, size_t blen) {
    return resp_arg3(cmd, NULL, 0, a, alen, b, blen);
}

/* The suffix index member of a reversed name whose bucket is its first
 * rb_len bytes: the whole reversed name, or in a store whose layout says
 * r-rel the part from the dot after the bucket (".www" in com.example),
 * "." for the bucket's own name: never empty (a cursor's member), and in
 * the order of the whole names. */
static const char *rev_member(const store *s, const char *rev, size_t rev_len, size_t rb_len,
                              size_t *len) {
    if (!s->r_rel) {
        *len = rev_len;
        return rev;
    }
    if (rev_len <= rb_len) {
        *len = 1;
        return ".";
    }
    *len = rev_len - rb_len;
    return rev + rb_len;
}

/* The length of an index member prefix as the store keeps it: an address
 * whose rdata is canonical, in a store whose layout says ip-name, is only
 * "<key> " (the name follows). */
static size_t ip_member_len(const store *s, uint8_t ix, uint8_t canon, const char *ixp,
                            size_t ixl) {
    if (ix != IX_IP || !canon || !s->ip_name)
        return ixl;
    const char *sp = memchr(ixp, ' ', ixl);
    return sp ? (size_t)(sp - ixp) + 1 : ixl;
}

/* The shard whose address index takes entry e's member (a cluster whose
 * address index is sharded by prefix), or -1. */
static int addr_shard(const store *s, const store_chunk *c, const entry *e) {
    if (!s->ip_by_prefix || e->ix != IX_IP)
        return -1;
    const char *ixp = c->arena.p + e->off + e->name_len + e->rdata_len + e->sensor_len +
                      e->rev_len;
    return store_ip_shard(s->nshards, ixp, e->ixp_len);
}

/* The EVAL of a chunk's part for shard k as one RESP command, written
 * here rather than by hiredis from an argument vector: the relay composes
 * every key and member (in Redis's Lua, building a string costs more than
 * passing one) and writes them straight into the command. */
static int build_command(const store *s, const store_chunk *c, int k, pdns_buf *cmd) {
    size_t n = c->entries.len / sizeof(entry), in_part = 0;
    const entry *e = (const entry *)c->entries.p;
    const char *P = s->prefix[k];
    size_t pl = strlen(P), ml = strlen(s->mark);
    char num[72];
    size_t nl;
    size_t nmem = 0;
    for (size_t i = 0; i < n; i++) {
        in_part += e[i].shard == k;
        nmem += addr_shard(s, c, &e[i]) == k;
    }
    cmd->len = 0;
    nl = (size_t)snprintf(num, sizeof(num), "*%zu\r\n", 12 + nmem + in_part * ARGS_PER_ENTRY);
    int mod = s->module;
    const char *lay = s->trees ? STORE_MODULE_LAYOUT_TREES : STORE_MODULE_LAYOUT;
    if (pdns_buf_append(cmd, num, nl) < 0 ||
        (mod ? resp_arg(cmd, "PDNSRELAY.INGEST", 16, NULL, 0)
             : resp_arg(cmd, "EVAL", 4, NULL, 0)) < 0 ||
        (mod ? resp_arg(cmd, lay, strlen(lay), NULL, 0)
             : resp_arg(cmd, store_ingest_lua, sizeof(store_ingest_lua) - 1, NULL, 0)) < 0 ||
        resp_arg(cmd, "1", 1, NULL, 0) < 0 ||
        resp_arg3(cmd, P, pl, s->mark, ml, NULL, 0) < 0 ||
        resp_arg3(cmd, P, pl, s->mark, ml, NULL, 0) < 0 ||
        resp_arg(cmd, s->boot, strlen(s->boot), NULL, 0) < 0 ||
        resp_arg(cmd, num, utoa(c->seq, num), NULL, 0) < 0 ||
        resp_arg3(cmd, c->unit_key[0] ? P : "", c->unit_key[0] ? pl : 0, c->unit_key,
                  strlen(c->unit_key), NULL, 0) < 0 ||
        resp_arg(cmd, c->unit_ids, strlen(c->unit_ids), NULL, 0) < 0 ||
        resp_arg(cmd, P, pl, NULL, 0) < 0 ||
        resp_arg(cmd, s->cluster ? "1" : "0", 1, NULL, 0) < 0 ||
        resp_arg(cmd, num, utoa(nmem, num), NULL, 0) < 0)
        return -1;
    /* the address index members of this shard's addresses */
    for (size_t i = 0; i < n; i++)
        if (addr_shard(s, c, &e[i]) == k) {
            const char *name = c->arena.p + e[i].off;
            const char *ixp = name + e[i].name_len + e[i].rdata_len + e[i].sensor_len +
                              e[i].rev_len;
            if (resp_arg(cmd, ixp, ip_member_len(s, e[i].ix, e[i].ip_canon, ixp, e[i].ixp_len),
                         name, e[i].name_len) < 0)
                return -1;
        }
    for (size_t i = 0; i < n; i++) {
        if (e[i].shard != k)
            continue;
        const char *name = c->arena.p + e[i].off, *rdata = name + e[i].name_len,
                   *sensor = rdata + e[i].rdata_len, *rev = sensor + e[i].sensor_len,
                   *ixp = rev + e[i].rev_len;
        char fb[8] = "", db[8], ty[24];
        if (!e[i].is_error) /* error lines get no name indexes */
            store_fwd_bucket(name, e[i].name_len, fb), shard_bucket(s, fb);
        const char *ixk = "";
        if (e[i].ix == IX_IP && !s->ip_by_prefix)
            ixk = "ix:ip";
        else if (e[i].ix == IX_RD)
            member_bucket(ixp, e[i].ixp_len, db), shard_bucket(s, db), ixk = db;
        size_t tl = utoa(e[i].rrtype, ty);
        ty[tl++] = ' ';
        nl = itoa64(e[i].tf, num);
        num[nl++] = ' ';
        nl += itoa64(e[i].tl, num + nl);
        num[nl++] = ' ';
        nl += utoa(e[i].count, num + nl);
        char nr[20];
        size_t nrl = utoa(e[i].nrec, nr), fbl = strlen(fb), ixkl = strlen(ixk), rml;
        const char *rm = rev_member(s, rev, e[i].rev_len, e[i].rb_len, &rml);
        if (resp_arg3(cmd, P, pl, e[i].is_error ? "e:" : "n:", 2, name, e[i].name_len) < 0 ||
            resp_arg(cmd, ty, tl, rdata, e[i].rdata_len) < 0 ||
            resp_arg(cmd, num, nl, NULL, 0) < 0 ||
            resp_arg(cmd, sensor, e[i].sensor_len, NULL, 0) < 0 ||
            resp_arg(cmd, nr, nrl, NULL, 0) < 0 ||
            resp_arg(cmd, name, e[i].name_len, NULL, 0) < 0 ||
            resp_arg(cmd, rm, rml, NULL, 0) < 0 ||
            resp_arg3(cmd, P, fbl ? pl : 0, fb, fbl, NULL, 0) < 0 ||
            resp_arg3(cmd, P, pl, "r:", 2, rev, e[i].rb_len) < 0 ||
            resp_arg(cmd, rev, e[i].rb_len, NULL, 0) < 0 ||
            resp_arg3(cmd, P, ixkl ? pl : 0, ixk, ixkl, NULL, 0) < 0)
            return -1;
        /* the index member: its prefix (with its space), the owner name */
        if (resp_arg(cmd, ixp, ip_member_len(s, e[i].ix, e[i].ip_canon, ixp, e[i].ixp_len),
                     name, e[i].ix == IX_NONE ? 0 : e[i].name_len) < 0 ||
            resp_arg(cmd, c->arena.p + e[i].bw_off, e[i].bw_len, NULL, 0) < 0)
            return -1;
    }
    return 0;
}

/* A batch takes more records until it holds call_entries entries (what a
 * store call costs Redis) or MERGE_FACTOR times store.batch records; a
 * unit takes every record until its end. */
static int chunk_filling(const store *s, const store_chunk *c) {
    return c->in_unit || (c->entries.len / sizeof(entry) < s->call_entries &&
                          c->nrec < (size_t)MERGE_FACTOR * s->conf->batch);
}

/* 1 when chunk c, not sealed, may take another record: it is filling and
 * within CHUNK_MAX_BYTES (a unit takes every record until its end). */
static int takes_more(const store *s, const store_chunk *c) {
    return !c->sealed && chunk_filling(s, c) && (c->in_unit || c->arena.len < CHUNK_MAX_BYTES);
}

/* 1 when chunk c has something to send: records, or the ids of units (a
 * unit whose lines were all refused still sets its marker). */
static int chunk_holds(const store_chunk *c) {
    return c->nrec || c->unit_n;
}

/* 1 when the tail is a call open for another unit (store_end_unit with more). */
static int unit_open(const store *s) {
    const store_chunk *c = s->tail;
    return c && !c->sealed && !c->in_unit && c->unit_n > 0;
}

/* Sends the part of the head batch for shard k. */
static void send_part(store *s, store_chunk *c, int k) {
    static const char wait_cmd[] = "*3\r\n$4\r\nWAIT\r\n$1\r\n1\r\n$4\r\n" PDNS_STR(WAIT_MS) "\r\n";
    if (build_command(s, c, k, &s->cmd) < 0) {
        s->retry_at_ms = pdns_mono_ms() + RETRY_MS;
        return;
    }
    part_call *pc = calloc(1, sizeof(*pc));
    if (!pc)
        return;
    pc->s = s;
    pc->seq = c->seq;
    pc->shard = k;
    size_t klen = strlen(s->prefix[k]);
    unsigned slot = rlink_key_slot(s->prefix[k], klen);
    int wait = rlink_slot_replicas(s->link, slot) > 0;
    /* the EVAL's answer, the WAIT's, and this function's own: a link that
     * fails a command at once answers it (NULL) before rlink returns, and
     * the part must be in flight by then */
    pc->refs = 2 + wait;
    c->part[k] = PART_SENT;
    s->busy++;
    if (rlink_formatted(s->link, slot, on_part, pc, s->cmd.p, s->cmd.len) < 0) {
        pc->lost = 1; /* not sent: the tick sends it again */
        pc->refs -= 1 + wait;
    } else if (wait && rlink_formatted(s->link, slot, on_part_wait, pc, wait_cmd,
                                       sizeof(wait_cmd) - 1) < 0) {
        pc->refs--; /* not asked: the EVAL's answer decides */
    }
    part_release(pc); /* a part lost at once is TODO again, never finished here */
}

/* Sends the parts of the oldest batch not sent yet (one batch at a time). */
static void kick(store *s) {
    store_chunk *c = s->head;
    if (!c || !rlink_ready(s->link) || !s->layout_ok || pdns_mono_ms() < s->retry_at_ms)
        return;
    if (s->trees && !s->module) {
        /* only the module writes a store of trees: the records wait */
        if (!s->module_asking && !s->trees_told) {
            s->trees_told = 1;
            log_error("store: the store keeps its indexes in the pdnsrelay module's trees "
                      "(st:layout ix-tree) and %s: nothing is written until it does (load "
                      "the module, of this version, into every Redis of the store)",
                      !s->conf->module ? "store.module is false"
                                       : "Redis has no pdnsrelay module taking them");
        }
        return;
    }
    if (!c->sealed && chunk_filling(s, c))
        return; /* still filling: store_flush, the tick or the unit's end sends it */
    c->sealed = 1;
    if (!c->parts_init) {
        const entry *e = (const entry *)c->entries.p;
        size_t n = c->entries.len / sizeof(entry);
        if (n == 0)
            c->part[0] = PART_TODO; /* a batch with no entry still sets its markers */
        for (size_t i = 0; i < n; i++) {
            c->part[e[i].shard] = PART_TODO;
            int a = addr_shard(s, c, &e[i]);
            if (a >= 0)
                c->part[a] = PART_TODO;
        }
        for (int k = 0; k < s->nshards; k++)
            c->parts_left += c->part[k] == PART_TODO;
        c->parts_init = 1;
        c->sent_s = mono_s();
    }
    for (int k = 0; k < s->nshards && s->head == c; k++)
        if (c->part[k] == PART_TODO)
            send_part(s, c, k);
    if (s->cmd.cap > (8u << 20)) /* keep a usual batch's buffer, not a huge one */
        pdns_buf_free(&s->cmd);
}

/* Doubles a chunk's merge table (a unit may exceed store.batch records).
 * Returns 0, or -1 when out of memory. */
static int grow_slots(store_chunk *c) {
    size_t n = c->nslots * 2, k = c->entries.len / sizeof(entry);
    uint32_t *t = calloc(n, sizeof(*t));
    if (!t)
        return -1;
    const entry *es = (const entry *)c->entries.p;
    for (size_t i = 0; i < k; i++) {
        size_t slot = (size_t)es[i].hash & (n - 1);
        while (t[slot])
            slot = (slot + 1) & (n - 1);
        t[slot] = (uint32_t)(i + 1);
    }
    free(c->slots);
    c->slots = t;
    c->nslots = n;
    return 0;
}

static store_chunk *new_chunk(store *s) {
    size_t nslots = 16;
    while (nslots < 2 * s->conf->batch)
        nslots *= 2;
    store_chunk *c = s->spare;
    if (c) {
        /* a chunk stored: its buffers as they grew, emptied */
        pdns_buf arena = c->arena, entries = c->entries;
        uint32_t *slots = c->slots;
        size_t had = c->nslots;
        s->spare = c->next;
        s->spare_bytes -= chunk_bytes(c);
        memset(c, 0, sizeof(*c));
        c->arena = arena, c->entries = entries;
        c->arena.len = c->entries.len = 0;
        if (had < nslots) { /* store.batch grew (a reload) */
            free(slots);
            if (!(slots = malloc(nslots * sizeof(*slots)))) {
                chunk_free(c);
                return NULL;
            }
        }
        c->slots = slots, c->nslots = nslots;
        memset(c->slots, 0, nslots * sizeof(*c->slots));
    } else {
        if (!(c = calloc(1, sizeof(*c))))
            return NULL;
        c->nslots = nslots;
        c->slots = calloc(c->nslots, sizeof(*c->slots));
        /* as large as the last chunk grew: not grown copy by copy */
        if (!c->slots || (s->tail && (pdns_buf_reserve(&c->arena, s->tail->arena.len) < 0 ||
                                      pdns_buf_reserve(&c->entries, s->tail->entries.len) < 0))) {
            chunk_free(c);
            return NULL;
        }
    }
    c->seq = ++s->seq;
    if (s->tail)
        s->tail->next = c;
    else
        s->head = c;
    s->tail = c;
    return c;
}

/* The chunk records go into: the tail, unless it is full or sealed. */
static store_chunk *open_chunk(store *s) {
    store_chunk *c = s->tail;
    if (c && !unit_open(s) && takes_more(s, c))
        return c;
    /* every chunk but the tail is sealed: one full now (by entries,
     * records or bytes) would take records again once calls grow
     * (size_calls), and a call open for the next unit takes only units */
    int was_open = c && !c->sealed;
    if (was_open)
        c->sealed = 1;
    store_chunk *n = new_chunk(s);
    if (was_open)
        kick(s);
    return n;
}

static void on_script_load(redisAsyncContext *ac, void *reply, void *priv) {
    store *s = priv;
    redisReply *rep = reply;
    (void)ac;
    s->script_loading = 0;
    if (rep && rep->type == REDIS_REPLY_STRING)
        s->script_loaded = 1;
    else if (rep && rep->type == REDIS_REPLY_ERROR)
        log_warn("store: SCRIPT LOAD of the query script: %s (queries send "
                 "the script itself meanwhile)", rep->str);
}

/* Queries run the script by its SHA1 (EVALSHA) once it is loaded (on
 * every connect; again from the tick if Redis refused, say while it was
 * still loading its data); until then they send the script (EVAL). */
static void load_query_script(store *s) {
    const char *argv[] = {"SCRIPT", "LOAD", store_query_lua};
    size_t argl[] = {6, 4, sizeof(store_query_lua) - 1};
    if (s->script_loading || s->cluster || !rlink_ready(s->link))
        return; /* a cluster's queries send the script (EVAL): every master caches it */
    if (rlink_argv(s->link, "", on_script_load, s, 3, argv, argl) == 0)
        s->script_loading = 1;
}

/* A store records its layout (st:layout) the first time a relay finds it
 * without one: "shards <n> ip-by-prefix ip-name r-rel" on a cluster,
 * "shards 1 ip-name r-rel" on one server, and " ix-tree" after either when
 * store.index is "tree" (the indexes are the pdnsrelay module's trees:
 * only the module writes the store). A relay configured with another number of
 * shards refuses to write, as its names would be looked for in the wrong
 * shards. A cluster's store whose layout lacks "ip-by-prefix" keeps each
 * address index member in its name's shard: the relay goes on writing and
 * asking it so (an address lookup asks every shard). A store whose layout
 * lacks "ip-name" (one server: a store with data and no st:layout, made
 * before members were "<key> <name>") keeps writing the long members
 * "<key> <rrtype> <rdata> <name>"; queries read both. Likewise a store
 * without "r-rel" keeps whole reversed names in its suffix buckets. */
static const struct {
    const char *word;
    int flag;
} layout_words[] = {{" ip-by-prefix", STORE_LAYOUT_IP_BY_PREFIX},
                    {" ip-name", STORE_LAYOUT_IP_NAME},
                    {" r-rel", STORE_LAYOUT_R_REL},
                    {" ix-tree", STORE_LAYOUT_IX_TREE}};

int store_layout_kind(const char *layout, int nshards) {
    char want[32];
    size_t wl = (size_t)snprintf(want, sizeof(want), "shards %d", nshards);
    if (strncmp(layout, want, wl) != 0)
        return -1;
    const char *p = layout + wl;
    int kind = 0;
    for (size_t i = 0; i < sizeof(layout_words) / sizeof(layout_words[0]); i++) {
        size_t n = strlen(layout_words[i].word);
        if (strncmp(p, layout_words[i].word, n) == 0 && (p[n] == ' ' || !p[n]))
            kind |= layout_words[i].flag, p += n;
    }
    return *p ? -1 : kind;
}

static void on_layout(redisAsyncContext *ac, void *reply, void *priv) {
    store *s = priv;
    redisReply *rep = reply;
    (void)ac;
    s->layout_asking = 0;
    if (!rep || rep->type != REDIS_REPLY_STRING) {
        /* say a Redis still loading its data: asked again by the tick */
        if (rep)
            log_error("store: reading st:layout: %s",
                      rep->type == REDIS_REPLY_ERROR ? rep->str : "unexpected reply");
        s->layout_retry_ms = pdns_mono_ms() + RETRY_MS;
        return;
    }
    int kind = store_layout_kind(rep->str, s->nshards);
    if (kind < 0) {
        log_error("store: the store was made with %s (st:layout), store.shards says %d: "
                  "nothing is written (set store.shards to match)", rep->str, s->nshards);
        s->layout_bad = 1;
        return;
    }
    s->ip_by_prefix = s->cluster && (kind & STORE_LAYOUT_IP_BY_PREFIX);
    s->ip_name = (kind & STORE_LAYOUT_IP_NAME) != 0;
    s->r_rel = (kind & STORE_LAYOUT_R_REL) != 0;
    s->trees = (kind & STORE_LAYOUT_IX_TREE) != 0;
    if (s->conf->trees && !s->trees)
        log_info("store: the store keeps its indexes in sorted sets (st:layout \"%s\"): "
                 "store.index \"tree\" applies to a new store", rep->str);
    if (s->cluster && !s->ip_by_prefix)
        log_info("store: the cluster's store keeps its address index in the names' shards "
                 "(st:layout \"%s\"): an address lookup asks every shard", rep->str);
    s->layout_ok = 1;
    kick(s);
}

/* st:layout, written the first time: a store on one server that has data
 * (st:info) but no layout was made before layouts, with long members */
static const char layout_lua[] =
    "local l = redis.call('GET', KEYS[1]) "
    "if l then return l end "
    "l = ARGV[1] "
    "if ARGV[3] ~= '' and redis.call('EXISTS', ARGV[3]) == 1 then l = ARGV[2] end "
    "redis.call('SET', KEYS[1], l) "
    "return l";

/* Nothing is written before the store's layout is known (on_ready, and
 * the tick after an error reply). */
static void ask_layout(store *s) {
    if (s->layout_ok || s->layout_asking || s->layout_bad || !rlink_ready(s->link) ||
        pdns_mono_ms() < s->layout_retry_ms)
        return;
    char want[64], old[32];
    snprintf(old, sizeof(old), "shards %d", s->nshards);
    snprintf(want, sizeof(want), "shards %d%s ip-name r-rel%s", s->nshards,
             s->cluster ? " ip-by-prefix" : "", s->conf->trees ? " ix-tree" : "");
    if (rlink_command(s->link, "st:layout", on_layout, s, "EVAL %s 1 st:layout %s %s %s",
                      layout_lua, want, old, s->cluster ? "" : "st:info") == 0)
        s->layout_asking = 1;
}

/* One master's answer to ask_module, of the asking generation gen. */
typedef struct {
    store *s;
    unsigned gen;
} module_ask;

int store_module_parts(const redisReply *rep) {
    int parts = 0;
    for (size_t i = 0; rep && rep->type == REDIS_REPLY_ARRAY && i < rep->elements && i < 4; i++)
        if (rep->element[i]->type == REDIS_REPLY_ARRAY)
            parts |= 1 << i;
    return parts & STORE_MODULE_INGEST ? parts : 0;
}

static void on_module(redisAsyncContext *ac, void *reply, void *priv) {
    module_ask *a = priv;
    store *s = a->s;
    (void)ac;
    if (a->gen == s->module_gen) {
        int parts = store_module_parts(reply);
        s->module_missing += !parts;
        s->query_missing += !(parts & STORE_MODULE_QUERY);
        s->sweep_missing += !(parts & STORE_MODULE_SWEEP);
        if (--s->module_asking == 0 && !s->module_missing) {
            s->module = 1;
            s->module_query = !s->query_missing;
            s->module_sweep = !s->sweep_missing;
            log_info("store: Redis has the pdnsrelay module%s: batches go to "
                     "PDNSRELAY.INGEST, query pages to %s, the expiry sweep to %s",
                     s->cluster ? " on every master" : "",
                     s->module_query ? "PDNSRELAY.QUERY"
                                     : "the script (the module has no PDNSRELAY.QUERY: an "
                                       "older version)",
                     s->module_sweep ? "PDNSRELAY.SWEEP" : "the script");
        }
        if (!s->module_asking)
            kick(s); /* a store of trees waits for this answer */
    }
    free(a);
}

/* With store.module: whether Redis has the module's command, asked at
 * each connect (until the answers, the script). On a cluster the master
 * of every shard is asked: batches go to the module only when all have it. */
static void ask_module(store *s) {
    s->module = s->module_query = s->module_sweep = 0;
    s->module_gen++;
    s->module_asking = s->module_missing = s->query_missing = s->sweep_missing = 0;
    if (!s->conf->module)
        return;
    for (int k = 0; k < s->nshards; k++) {
        module_ask *a = malloc(sizeof(*a));
        if (!a)
            return;
        *a = (module_ask){s, s->module_gen};
        s->module_asking++; /* before: a link that fails at once answers (NULL) at once */
        if (rlink_command(s->link, s->cluster ? s->prefix[k] : "", on_module, a,
                          STORE_MODULE_ASK) < 0) {
            free(a);
            s->module_gen++; /* what was asked is of no use */
            return;
        }
    }
}

static void on_ready(void *ctx) {
    store *s = ctx;
    s->script_loaded = s->script_loading = 0;
    load_query_script(s);
    ask_module(s);
    s->layout_bad = 0;
    s->layout_retry_ms = 0;
    ask_layout(s);
    kick(s);
}

static void on_down(void *ctx) {
    store *s = ctx;
    /* parts in flight get no answer (NULL) and go again once it is back */
    s->script_loaded = s->script_loading = 0;
    s->module = s->module_query = s->module_sweep = 0;
    s->module_gen++; /* answers still on their way are of no use */
    s->trees_told = 0;
}

/* FNV-1a, 32 bits, of p, modulo n: a shard (fixed: it places keys). */
static int shard_hash(const char *p, size_t len, int n) {
    uint32_t h = 2166136261u;
    if (n <= 1)
        return 0;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (uint8_t)p[i]) * 16777619u;
    return (int)(h % (uint32_t)n);
}

int store_shard_of(const store *s, const char *name, size_t len) {
    return shard_hash(name, len, s->nshards);
}

/* Hex digits of an address key's shard prefix: a /24 of IPv4, a /48 of
 * IPv6 (after the family digit). */
static size_t ip_prefix_digits(char family) {
    return family == '6' ? 12 : 6;
}

int store_ip_shard(int n, const char *member, size_t len) {
    if (!len)
        return 0;
    size_t pl = 1 + ip_prefix_digits(member[0]);
    return shard_hash(member, pl < len ? pl : len, n);
}

static int hex_u64(const char *p, size_t n, uint64_t *v) {
    *v = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)p[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0)
            return -1;
        *v = *v << 4 | (uint64_t)d;
    }
    return 0;
}

int store_ip_range_shards(int n, const char *a, size_t alen, const char *b, size_t blen,
                          uint8_t want[STORE_SHARDS_MAX]) {
    static const char hex[] = "0123456789abcdef";
    size_t pd = alen ? ip_prefix_digits(a[0]) : 0;
    uint64_t lo, hi;
    int many = n < 1 || alen <= pd || blen <= pd || a[0] != b[0] ||
               (a[0] != '4' && a[0] != '6') || hex_u64(a + 1, pd, &lo) < 0 ||
               hex_u64(b + 1, pd, &hi) < 0 || hi < lo || hi - lo >= 4 * (uint64_t)n;
    memset(want, !!many, (size_t)n);
    for (uint64_t p = lo; !many; p++) {
        char m[13];
        m[0] = a[0];
        for (size_t i = 0; i < pd; i++)
            m[1 + i] = hex[(p >> (4 * (pd - 1 - i))) & 15];
        want[store_ip_shard(n, m, 1 + pd)] = 1;
        if (p == hi)
            break;
    }
    int k = 0;
    for (int i = 0; i < n; i++)
        k += want[i];
    return k;
}

void store_shard_prefix(int k, int n, char out[16]) {
    unsigned want = (unsigned)((2 * k + 1) * 16384 / (2 * n));
    char tag[12];
    for (unsigned j = 0;; j++) {
        int l = snprintf(tag, sizeof(tag), "s%d.%u", k, j);
        if (rlink_key_slot(tag, (size_t)l) == want)
            break;
    }
    snprintf(out, 16, "{%s}", tag);
}

int store_up(const store *s) {
    return s->link && rlink_ready(s->link) && s->layout_ok;
}

int store_init(store *s, const store_conf *c, uv_loop_t *loop,
               const char *relay_id, const int *stopping) {
    uint8_t rnd[12];
    memset(s, 0, sizeof(*s));
    s->conf = c;
    s->call_entries = c->batch;
    snprintf(s->mark, sizeof(s->mark), "st:applied:%s", relay_id);
    randombytes_buf(rnd, sizeof(rnd));
    sodium_bin2hex(s->boot, sizeof(s->boot), rnd, sizeof(rnd));
    randombytes_buf(&s->hash_seed, sizeof(s->hash_seed));
    snprintf(s->sweep_cursor, sizeof(s->sweep_cursor), "0");
    unsigned char sha[SHA_DIGEST_LENGTH];
    SHA1((const unsigned char *)store_query_lua, sizeof(store_query_lua) - 1, sha);
    sodium_bin2hex(s->query_sha, sizeof(s->query_sha), sha, sizeof(sha));
    s->link = rlink_new(loop, c->url, c->host, c->port, c->db, "store Redis", stopping,
                        on_ready, on_down, s);
    if (!s->link)
        return -1;
    s->cluster = rlink_is_cluster(s->link);
    s->nshards = s->cluster ? c->shards : 1;
    for (int k = 0; s->cluster && k < s->nshards; k++)
        store_shard_prefix(k, s->nshards, s->prefix[k]);
    return rlink_start(s->link);
}

/* The index an rdata goes to (IX_IP for addresses, IX_RD for a name, or
 * IX_NONE) and its member prefix ("<key> <rrtype> <rdata> " or "<rdata>
 * <rrtype> "; the owner name follows). For an address, *canon says
 * whether the rdata is the text inet_ntop writes for the key (what every
 * path into the store makes of it), which a query can write again from
 * the key: then a store whose layout says ip-name keeps the member short,
 * "<key> <name>" (ip_member_len). */
static uint8_t index_member(uint16_t rrtype, const char *rdata, size_t len,
                            char *ixp, size_t size, size_t *ixl, uint8_t *canon) {
    *ixl = 0;
    *canon = 0;
    if (rrtype == PDNS_RR_A || rrtype == PDNS_RR_AAAA) {
        char key[34];
        if (!ip_key(rdata, len, key, canon))
            return IX_NONE;
        *ixl = (size_t)snprintf(ixp, size, "%s %u %.*s ", key, (unsigned)rrtype,
                                (int)len, rdata);
        return IX_IP;
    }
    /* "<target> <rrtype> " (the name follows); a master-file MX, SRV or
     * SOA keys on the name inside and carries its whole rdata before the
     * owner name: "<target> <rrtype> <rdata> " */
    const char *t;
    size_t tl = len < 1100 ? pdns_rdata_target(rrtype, rdata, len, &t) : 0;
    if (tl == len) {
        *ixl = (size_t)snprintf(ixp, size, "%.*s %u ", (int)len, rdata, (unsigned)rrtype);
        return IX_RD;
    }
    if (tl) {
        *ixl = (size_t)snprintf(ixp, size, "%.*s %u %.*s ", (int)tl, t, (unsigned)rrtype,
                                (int)len, rdata);
        return IX_RD;
    }
    return IX_NONE;
}


/* 64 x 64 -> 128-bit multiply, folded: the mixing step of the entry hash */
static inline uint64_t fold_mul(uint64_t a, uint64_t b) {
    __uint128_t r = (__uint128_t)a * b;
    return (uint64_t)r ^ (uint64_t)(r >> 64);
}

/* Mixes n bytes into h, eight at a time; the length ends each part, so
 * that parts split differently hash differently. */
static uint64_t hash_part(uint64_t h, const char *p, size_t n) {
    size_t len = n;
    for (; n >= 8; p += 8, n -= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = fold_mul(h ^ w, 0x9e3779b97f4a7c15ULL);
    }
    uint64_t w = 0;
    memcpy(&w, p, n);
    return fold_mul(h ^ w ^ ((uint64_t)len << 48), 0xbf58476d1ce4e5b9ULL);
}

/* The batch table's hash of an entry's key (seeded per store: what a
 * sensor sends cannot aim at one slot) */
static uint64_t entry_hash(const store *s, const pdns_record *r,
                           const char *sensor, size_t sl) {
    uint64_t h = s->hash_seed ^ r->rrtype ^ ((uint64_t)r->is_error << 32);
    h = hash_part(h, r->rrname.p, r->rrname.len);
    h = hash_part(h, r->rdata.p, r->rdata.len);
    return hash_part(h, sensor, sl);
}

static int same(const store_chunk *c, const entry *e, const pdns_record *r,
                const char *sensor, size_t sl) {
    const char *a = c->arena.p + e->off;
    return e->rrtype == r->rrtype && e->is_error == r->is_error &&
           e->name_len == r->rrname.len &&
           e->rdata_len == r->rdata.len && e->sensor_len == sl &&
           memcmp(a, r->rrname.p, r->rrname.len) == 0 &&
           memcmp(a + e->name_len, r->rdata.p, r->rdata.len) == 0 &&
           memcmp(a + e->name_len + e->rdata_len, sensor, sl) == 0;
}

/* Keeps the bailiwick of r for e when e has none yet (names only: a value
 * with a space would not be one). */
static void take_bailiwick(store_chunk *c, entry *e, const pdns_record *r) {
    if (e->bw_len || !r->bailiwick.len || r->bailiwick.len > 255 ||
        memchr(r->bailiwick.p, ' ', r->bailiwick.len))
        return;
    size_t at = c->arena.len;
    if (pdns_buf_append(&c->arena, r->bailiwick.p, r->bailiwick.len) == 0) {
        e->bw_off = (uint32_t)at;
        e->bw_len = (uint16_t)r->bailiwick.len;
    }
}

int store_add(store *s, const pdns_record *r) {
    char rev[2048], ixp[2200];
    size_t ixl = 0;
    uint8_t ix = IX_NONE;
    if (s->waiting >= 2 * s->conf->max_buffer)
        return -1;
    if (r->rrname.len == 0 || r->rrname.len > 1024 || r->rdata.len > 65535)
        return -1;
    store_chunk *c = open_chunk(s);
    if (!c)
        return -1;
    const char *sensor = r->sensor_id.len ? r->sensor_id.p : "unknown";
    size_t sl = r->sensor_id.len ? r->sensor_id.len : 7;
    if (sl > 1024)
        sl = 1024;
    int64_t tf = r->time_first, tl = r->time_last;
    uint64_t count = r->count ? pdns_count_clamp(r->count) : 1;
    uint64_t h = entry_hash(s, r, sensor, sl);
    /* a batch's table has room for it (nslots >= 2 * store.batch); only a
     * unit, which takes every record until its end, may outgrow it */
    if (c->in_unit && (c->entries.len / sizeof(entry) + 1) * 2 > c->nslots &&
        grow_slots(c) < 0)
        return -1;
    size_t mask = c->nslots - 1, slot = (size_t)h & mask;
    entry *es = (entry *)c->entries.p;
    while (c->slots[slot]) {
        entry *e = &es[c->slots[slot] - 1];
        if (e->hash == h && same(c, e, r, sensor, sl)) { /* merge */
            if (tf < e->tf)
                e->tf = tf;
            if (tl > e->tl)
                e->tl = tl;
            e->count = pdns_count_add(e->count, count);
            e->nrec++;
            take_bailiwick(c, e, r);
            goto counted;
        }
        slot = (slot + 1) & mask;
    }
    uint8_t canon = 0;
    if (!r->is_error)
        ix = index_member(r->rrtype, r->rdata.p, r->rdata.len, ixp, sizeof(ixp), &ixl, &canon);
    size_t revl = store_reverse_name(r->rrname.p, r->rrname.len, rev);
    entry e = {.off = (uint32_t)c->arena.len,
               .name_len = (uint16_t)r->rrname.len,
               .sensor_len = (uint16_t)sl,
               .rev_len = (uint16_t)revl,
               .rb_len = (uint16_t)store_rev_bucket(rev, revl),
               .ixp_len = (uint16_t)ixl,
               .rdata_len = (uint32_t)r->rdata.len,
               .rrtype = r->rrtype,
               .ix = ix,
               .ip_canon = canon,
               .is_error = r->is_error ? 1 : 0,
               .shard = (uint8_t)store_shard_of(s, r->rrname.p, r->rrname.len),
               .tf = tf,
               .tl = tl,
               .count = count,
               .nrec = 1,
               .hash = h};
    size_t amark = c->arena.len;
    if (pdns_buf_append(&c->arena, r->rrname.p, r->rrname.len) < 0 ||
        pdns_buf_append(&c->arena, r->rdata.p, r->rdata.len) < 0 ||
        pdns_buf_append(&c->arena, sensor, sl) < 0 ||
        pdns_buf_append(&c->arena, rev, revl) < 0 ||
        pdns_buf_append(&c->arena, ixp, ixl) < 0 ||
        pdns_buf_append(&c->entries, &e, sizeof(e)) < 0) {
        c->arena.len = amark;
        return -1;
    }
    c->slots[slot] = (uint32_t)(c->entries.len / sizeof(entry));
    take_bailiwick(c, (entry *)(c->entries.p + c->entries.len - sizeof(entry)), r);
counted:
    c->nrec++;
    s->waiting++;
    if (s->waiting > s->buffer_peak)
        s->buffer_peak = s->waiting;
    if (!s->full && s->waiting >= s->conf->max_buffer) {
        s->full = 1;
        log_warn("store: %zu records wait for Redis; sources pause until "
                 "half of them are stored", s->waiting);
    }
    if (!chunk_filling(s, c))
        kick(s);
    return 0;
}

void store_flush(store *s) {
    store_chunk *c = s->tail;
    if (c && chunk_holds(c) && !c->in_unit)
        c->sealed = 1; /* the partial tail becomes a batch of its own */
    kick(s);
}

int store_begin_unit(store *s, const char *key) {
    store_chunk *c = s->tail;
    if (unit_open(s) && strcmp(c->unit_key, key) == 0 && c->unit_n < STORE_UNIT_MERGE &&
        takes_more(s, c)) {
        c->in_unit = 1; /* goes on in the call of the unit before */
        return 0;
    }
    if (c && !c->sealed && chunk_holds(c))
        c->sealed = 1; /* what came before is not part of the unit */
    if (!c || c->sealed) {
        store_chunk *n = new_chunk(s);
        if (!n)
            return -1;
    }
    snprintf(s->tail->unit_key, sizeof(s->tail->unit_key), "%s", key);
    s->tail->in_unit = 1;
    return 0;
}

uint64_t store_end_unit(store *s, const char *id, int more) {
    store_chunk *c = s->tail;
    if (!c || !c->in_unit)
        return s->acked_seq;
    size_t at = strlen(c->unit_ids);
    snprintf(c->unit_ids + at, sizeof(c->unit_ids) - at, "%s%s", at ? " " : "", id);
    c->unit_n++;
    c->in_unit = 0;
    if (!more || c->unit_n >= STORE_UNIT_MERGE || !chunk_filling(s, c))
        c->sealed = 1;
    kick(s);
    return c->seq;
}

size_t store_call_entries(const store *s) {
    return s->call_entries;
}

size_t store_tail_entries(const store *s) {
    return s->tail && !s->tail->sealed ? s->tail->entries.len / sizeof(entry) : 0;
}

void store_close_unit(store *s) {
    if (!unit_open(s))
        return;
    s->tail->sealed = 1;
    kick(s);
}

static void sweep_step(store *s);

/* The shards on the node of shard k (the slot map's view; k itself
 * whatever it says): one walk of the node's keys sweeps them all. */
static uint64_t node_shards(const store *s, int k) {
    unsigned a = rlink_key_slot(s->prefix[k], strlen(s->prefix[k]));
    uint64_t m = (uint64_t)1 << k;
    for (int j = 0; j < s->nshards; j++)
        if (rlink_same_master(s->link, a, rlink_key_slot(s->prefix[j], strlen(s->prefix[j]))))
            m |= (uint64_t)1 << j;
    return m;
}

/* The shard of a key the sweep found ("{s<k>.<tag>}n:..." on a cluster),
 * or -1 for a key that is no shard's (SCAN's MATCH "{s*}[ne]:*" also
 * takes "{s1.x}y}n:..."). */
static int key_shard(const store *s, const char *key, size_t len) {
    if (!s->cluster)
        return 0;
    const char *end = memchr(key, '}', len);
    if (len < 3 || key[0] != '{' || key[1] != 's' || !end)
        return -1;
    size_t pl = (size_t)(end - key) + 1;
    long k = strtol(key + 2, NULL, 10);
    if (k < 0 || k >= s->nshards || strlen(s->prefix[k]) != pl ||
        memcmp(s->prefix[k], key, pl) != 0 || len < pl + 2 ||
        (key[pl] != 'n' && key[pl] != 'e') || key[pl + 1] != ':')
        return -1;
    return (int)k;
}

/* A step of the expiry sweep is done (failed: an error ended it). A pass
 * walks each node once (every shard on it: SCAN on the master of a shard
 * not walked yet this pass), its steps paced so that the pass over the
 * nodes' keys (DBSIZE a node) takes about sweep_interval: a tick sends as
 * many as that needs, one after the other, and stops after SWEEP_TICK_MS
 * (a tenth of Redis's time at most, less when the link is busy with other
 * calls; a pass that takes longer than sweep_interval is logged). The next
 * pass starts sweep_interval after one ends. */
#define SWEEP_COUNT 200
#define SWEEP_TICK_MS 10
static void sweep_later(store *s, int failed) {
    uint64_t now = pdns_mono_ms();
    s->sweep_busy = 0;
    /* a node's SCAN that came back to 0, or that an error ended: the next
     * node, or the next pass, starts at its beginning */
    int walk_done = failed || strcmp(s->sweep_cursor, "0") == 0;
    s->sweep_broken |= failed;
    if (walk_done) {
        snprintf(s->sweep_cursor, sizeof(s->sweep_cursor), "0");
        while (s->sweep_shard < s->nshards && s->sweep_walked >> s->sweep_shard & 1)
            s->sweep_shard++;
        if (s->sweep_shard >= s->nshards) {
            s->sweep_shard = 0;
            s->sweep_walked = 0;
            s->sweep_at_ms = now + (uint64_t)s->conf->sweep_interval * 1000;
            if (s->sweep_broken)
                return;
            s->sweep_pass_ms = now - s->sweep_pass_start_ms;
            if (s->sweep_pass_ms > (uint64_t)s->conf->sweep_interval * 1000)
                log_warn("store: a pass of the expiry sweep took %.1f s, longer than "
                         "store.sweep_interval (%d s): its steps take at most a tenth of "
                         "Redis's time, less while the store's link is busy (DBSIZE %lld)",
                         (double)s->sweep_pass_ms / 1000, s->conf->sweep_interval,
                         s->sweep_keys);
            return;
        }
    }
    if (--s->sweep_left > 0 && now < s->sweep_tick_end_ms && store_up(s))
        sweep_step(s);
    else
        s->sweep_at_ms = now; /* the next tick */
}

/* ZREM or PDNSRELAY.IXREM of ARGV[1] from KEYS[1], whichever its kind. */
static const char ixrem_lua[] =
    "local t = redis.call('TYPE', KEYS[1])['ok'] "
    "if t == 'pdns-tree' then return redis.call('PDNSRELAY.IXREM', KEYS[1], ARGV[1]) end "
    "if t == 'zset' then return redis.call('ZREM', KEYS[1], ARGV[1]) end "
    "return 0";

/* One expire call of the step's is done (the step's, when no other is in
 * flight). */
static void expire_done(store *s) {
    if (--s->sweep_calls == 0)
        sweep_later(s, 0);
}

/* A shard's expired triples are deleted; the address index members of
 * theirs that are in other shards (store_expire.lua lists them) go too. */
static void on_expired(redisAsyncContext *ac, void *reply, void *priv) {
    struct sweep_call *c = priv;
    store *s = c->s;
    redisReply *rep = reply;
    (void)ac;
    if (rep && rep->type == REDIS_REPLY_ARRAY && rep->elements &&
        rep->element[0]->type == REDIS_REPLY_INTEGER) {
        s->expired += (uint64_t)rep->element[0]->integer;
        for (size_t i = 1; i < rep->elements; i++) {
            long long at = rep->element[i]->integer;
            if (rep->element[i]->type != REDIS_REPLY_INTEGER || at < 0 ||
                c->base + (size_t)at >= s->gone_n || !s->gone[c->base + (size_t)at].len)
                continue;
            const gone_member *g = &s->gone[c->base + (size_t)at];
            char key[40];
            snprintf(key, sizeof(key), "%six:ip", s->prefix[g->shard]);
            /* a sorted set, or a tree (also in a store whose layout does
             * not say so yet: pdns-relay index-trees ran meanwhile) */
            rlink_command(s->link, key, NULL, NULL, "EVAL %s 1 %s %b", ixrem_lua, key,
                          s->gone_buf.p + g->off, (size_t)g->len);
        }
    } else if (rep && rep->type == REDIS_REPLY_ERROR) {
        log_error("store: expiring triples: %s", rep->str);
    }
    expire_done(s);
}

/* Sends shard k's expire call (store_expire.lua) for the step's entries
 * of that shard (at[0..n-1], places in the sweep's reply), their address
 * members in other shards recorded from gone[base]. Returns 0 when sent. */
#define EXPIRE_ROOM (24 + 24 + 2200 + 2048)
static int send_expire(store *s, int k, const redisReply *rep, const size_t *at, size_t n,
                       size_t base) {
    const char *P = s->prefix[k];
    size_t pl = strlen(P);
    char info[40];
    snprintf(info, sizeof(info), "%sst:info", P);
    size_t total = 5 + n * 9;
    const char **argv = calloc(total, sizeof(*argv));
    size_t *argl = calloc(total, sizeof(*argl));
    char *keys = malloc(n * EXPIRE_ROOM);
    int rc = -1;
    if (!argv || !argl || !keys)
        goto out;
    EVAL_HEAD(argv, argl, store_expire_lua, info);
    argv[4] = P, argl[4] = pl;
    for (size_t i = 0; i < n; i++) {
        /* the sweep names the key ("n:<name>" or "e:<name>"), the field
         * and the time_last it saw */
        const redisReply *key = rep->element[at[i]], *f = rep->element[at[i] + 1],
                         *tl = rep->element[at[i] + 2];
        const char *name = key->str + pl + 2;
        size_t name_len = key->len > pl + 2 ? key->len - pl - 2 : 0;
        int error_line = key->len > pl && key->str[pl] == 'e';
        char *fk = keys + i * EXPIRE_ROOM, *ixk = fk + 24, *ixp = ixk + 24, *rev = ixp + 2200;
        const char *sp = memchr(f->str, ' ', f->len);
        size_t ixl = 0, revl = name_len <= 1024 ? store_reverse_name(name, name_len, rev) : 0;
        uint8_t ix = IX_NONE;
        char b[8];
        store_fwd_bucket(name, name_len, b);
        shard_bucket(s, b);
        snprintf(fk, 24, "%s%s", P, b);
        ixk[0] = '\0';
        if (error_line)
            fk[0] = '\0'; /* no indexes to clean */
        else if (sp) {
            const char *rd = sp + 1;
            size_t rl = f->len - (size_t)(rd - f->str);
            uint8_t canon;
            ix = index_member((uint16_t)strtoul(f->str, NULL, 10), rd, rl, ixp, 2200, &ixl,
                              &canon);
            ixl = ip_member_len(s, ix, canon, ixp, ixl);
            if (ix == IX_IP && s->ip_by_prefix) {
                /* in its address's shard: removed there once it is gone */
                s->gone[base + i] = (gone_member){(uint32_t)s->gone_buf.len,
                                                  (uint32_t)(ixl + name_len),
                                                  (uint8_t)store_ip_shard(s->nshards, ixp, ixl)};
                if (pdns_buf_append(&s->gone_buf, ixp, ixl) < 0 ||
                    pdns_buf_append(&s->gone_buf, name, name_len) < 0)
                    goto out;
            } else if (ix == IX_IP) {
                snprintf(ixk, 24, "%six:ip", P);
            } else if (ix == IX_RD)
                member_bucket(ixp, ixl, b), shard_bucket(s, b), snprintf(ixk, 24, "%s%s", P, b);
        }
        const char **v = argv + 5 + i * 9;
        size_t *l = argl + 5 + i * 9;
        v[0] = key->str, l[0] = key->len;
        v[1] = name, l[1] = name_len;
        v[2] = f->str, l[2] = f->len;
        v[3] = tl->str, l[3] = tl->len;
        v[4] = fk, l[4] = strlen(fk);
        size_t rbl = store_rev_bucket(rev, revl);
        v[5] = rev_member(s, rev, revl, rbl, &l[5]);
        v[6] = rev, l[6] = rbl;
        v[7] = ixk, l[7] = strlen(ixk);
        v[8] = ixp, l[8] = ixl;
    }
    s->sweep_call[k] = (struct sweep_call){s, base};
    s->sweep_calls++;
    if (rlink_argv(s->link, info, on_expired, &s->sweep_call[k], (int)total, argv, argl) == 0)
        rc = 0;
    else
        s->sweep_calls--;
out:
    free(argv);
    free(argl);
    free(keys);
    return rc;
}

/* A call the module refused as an unknown command (unloaded since the
 * relay asked, or an older module): *uses (module_query or module_sweep)
 * goes to 0, and those calls go to the script until the link reconnects
 * and asks again. 1 when it was that. */
static int module_gone(store *s, const redisReply *rep, int *uses) {
    if (!rep || rep->type != REDIS_REPLY_ERROR || strncmp(rep->str, "ERR unknown command", 19))
        return 0;
    if (*uses)
        log_warn("store: Redis refused %s (%s): %s go to the script until the next connect",
                 uses == &s->module_sweep ? "PDNSRELAY.SWEEP" : "PDNSRELAY.QUERY", rep->str,
                 uses == &s->module_sweep ? "the expiry sweep's steps" : "query pages");
    *uses = 0;
    return 1;
}

/* A sweep step found expired triples: delete them with their index
 * entries, one call for each shard they are in. */
static void on_sweep(redisAsyncContext *ac, void *reply, void *priv) {
    store *s = priv;
    redisReply *rep = reply;
    (void)ac;
    if (s->module_sweep && module_gone(s, rep, &s->module_sweep)) {
        s->sweep_busy = 0;
        sweep_step(s); /* the same step again, through the script */
        return;
    }
    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements < 1 ||
        rep->element[0]->type != REDIS_REPLY_STRING) {
        if (rep && rep->type == REDIS_REPLY_ERROR)
            log_error("store: expiry sweep: %s", rep->str);
        sweep_later(s, 1); /* this node's SCAN ends here */
        return;
    }
    snprintf(s->sweep_cursor, sizeof(s->sweep_cursor), "%s", rep->element[0]->str);
    if (rep->elements >= 2 && rep->element[1]->type == REDIS_REPLY_INTEGER)
        s->sweep_keys = rep->element[1]->integer;
    size_t n = rep->elements >= 2 ? (rep->elements - 2) / 3 : 0;
    free(s->gone);
    s->gone = NULL;
    s->gone_n = 0;
    s->gone_buf.len = 0;
    size_t *at = n ? malloc(n * sizeof(*at)) : NULL;
    int *shard = n ? malloc(n * sizeof(*shard)) : NULL;
    if (!n || !rlink_ready(s->link) || !at || !shard || !(s->gone = calloc(n, sizeof(*s->gone)))) {
        free(at);
        free(shard);
        sweep_later(s, 0);
        return;
    }
    s->gone_n = n;
    for (size_t i = 0; i < n; i++) {
        const redisReply *key = rep->element[2 + 3 * i];
        int ok = key->type == REDIS_REPLY_STRING;
        for (int j = 1; j < 3; j++)
            ok &= rep->element[2 + 3 * i + j]->type == REDIS_REPLY_STRING;
        shard[i] = ok ? key_shard(s, key->str, key->len) : -1;
    }
    /* the calls answer after this loop (a call the link fails at once
     * answers before rlink returns: the count holds the step open) */
    s->sweep_calls = 1;
    size_t base = 0;
    for (int k = 0; k < s->nshards; k++) {
        size_t m = 0;
        for (size_t i = 0; i < n; i++)
            if (shard[i] == k)
                at[m++] = 2 + 3 * i;
        if (m && send_expire(s, k, rep, at, m, base) == 0)
            base += m;
    }
    free(at);
    free(shard);
    expire_done(s);
}

/* One step of the expiry sweep: SWEEP_COUNT keys of the SCAN of a node,
 * on the master of shard sweep_shard. */
static void sweep_step(store *s) {
    char now[24], info[40], count[16];
    if (!s->sweep_walked) {
        s->sweep_pass_start_ms = pdns_mono_ms();
        s->sweep_broken = 0;
    }
    if (strcmp(s->sweep_cursor, "0") == 0)
        s->sweep_walked |= node_shards(s, s->sweep_shard);
    snprintf(now, sizeof(now), "%lld", (long long)time(NULL));
    snprintf(info, sizeof(info), "%sst:info", s->prefix[s->sweep_shard]);
    snprintf(count, sizeof(count), "%d", SWEEP_COUNT);
    /* on a cluster the keys of every shard on the node: "{s<k>.<tag>}";
     * the module's PDNSRELAY.SWEEP takes the script's arguments */
    const char *argv[] = {"EVAL", store_sweep_lua, "1", info, s->sweep_cursor, count, now,
                          s->conf->expiry, s->cluster ? "{s*}" : ""};
    size_t argl[9];
    for (int i = 0; i < 9; i++)
        argl[i] = strlen(argv[i]);
    argl[1] = sizeof(store_sweep_lua) - 1;
    int skip = s->module_sweep ? 2 : 0;
    if (skip)
        argv[2] = "PDNSRELAY.SWEEP", argl[2] = 15;
    if (rlink_argv(s->link, info, on_sweep, s, 9 - skip, argv + skip, argl + skip) == 0)
        s->sweep_busy = 1;
}

/* Expiry (store.expire): a SCAN through the names, paced as sweep_later
 * says, one step in flight. Queries hide expired triples meanwhile. */
static void sweep(store *s) {
    uint64_t now = pdns_mono_ms();
    if (!s->conf->expiry[0] || s->sweep_busy || !store_up(s) || now < s->sweep_at_ms)
        return;
    /* the steps a pass needs (a walk of each node), over the ticks of
     * sweep_interval */
    rlink_stats st;
    rlink_get_stats(s->link, &st);
    long long nodes = s->cluster && st.masters > 1 ? st.masters : 1,
              steps = (s->sweep_keys / SWEEP_COUNT + 1) * nodes,
              ticks = (long long)s->conf->sweep_interval * 1000 / STORE_TICK_MS;
    s->sweep_left = (int)(steps / ticks + 1 < 1000 ? steps / ticks + 1 : 1000);
    s->sweep_tick_end_ms = now + SWEEP_TICK_MS;
    sweep_step(s);
}

void store_tick(store *s) {
    ask_layout(s);
    if (!s->script_loaded)
        load_query_script(s);
    sweep(s);
    if (!s->busy)
        store_flush(s);
    else
        kick(s);
}

uint64_t store_barrier(store *s) {
    store_flush(s);
    return s->tail ? s->tail->seq : s->acked_seq;
}

int store_done(const store *s, uint64_t mark) {
    return s->acked_seq >= mark;
}

int store_full(const store *s) {
    return s->full;
}

size_t store_waiting(const store *s) {
    return s->waiting;
}

void store_stop(store *s) {
    if (s->link)
        rlink_stop(s->link);
}

void store_free(store *s) {
    while (s->head) {
        store_chunk *c = s->head;
        s->head = c->next;
        chunk_free(c);
    }
    s->tail = NULL;
    while (s->spare) {
        store_chunk *c = s->spare;
        s->spare = c->next;
        chunk_free(c);
    }
    s->spare_bytes = 0;
    if (s->waiting)
        log_error("store: %zu records were not stored (Redis unavailable at "
                  "shutdown)", s->waiting);
    rlink_free(s->link);
    s->link = NULL;
    free(s->gone);
    s->gone = NULL;
    pdns_buf_free(&s->gone_buf);
}

int store_metrics(const store *s, pdns_buf *b) {
    int rc = pdns_buf_printf(b,
        "# HELP pdns_relay_store_records_total Records written to the store.\n"
        "# TYPE pdns_relay_store_records_total counter\n"
        "pdns_relay_store_records_total %" PRIu64 "\n"
        "# TYPE pdns_relay_store_batches_total counter\n"
        "pdns_relay_store_batches_total %" PRIu64 "\n"
        "# HELP pdns_relay_store_errors_total Batches Redis refused (retried).\n"
        "# TYPE pdns_relay_store_errors_total counter\n"
        "pdns_relay_store_errors_total %" PRIu64 "\n"
        "# HELP pdns_relay_store_dead_letters_total Records Redis could not take, set aside in st:dead with the reason.\n"
        "# TYPE pdns_relay_store_dead_letters_total counter\n"
        "pdns_relay_store_dead_letters_total %" PRIu64 "\n"
        "# HELP pdns_relay_store_duplicate_batches_total Batches sent again after a lost reply that Redis had applied.\n"
        "# TYPE pdns_relay_store_duplicate_batches_total counter\n"
        "pdns_relay_store_duplicate_batches_total %" PRIu64 "\n"
        "# HELP pdns_relay_store_call_entries Entries a store call takes now (store.batch, fewer while calls take longer than store.call_ms).\n"
        "# TYPE pdns_relay_store_call_entries gauge\n"
        "pdns_relay_store_call_entries %zu\n"
        "# HELP pdns_relay_store_buffered_records Records waiting for Redis.\n"
        "# TYPE pdns_relay_store_buffered_records gauge\n"
        "pdns_relay_store_buffered_records %zu\n"
        "# TYPE pdns_relay_store_buffer_peak_records gauge\n"
        "pdns_relay_store_buffer_peak_records %" PRIu64 "\n"
        "# HELP pdns_relay_store_backpressure 1 while sources are paused.\n"
        "# TYPE pdns_relay_store_backpressure gauge\n"
        "pdns_relay_store_backpressure %d\n"
        "# HELP pdns_relay_store_expired_triples_total Triples deleted by the expiry sweep (store.expire).\n"
        "# TYPE pdns_relay_store_expired_triples_total counter\n"
        "pdns_relay_store_expired_triples_total %" PRIu64 "\n"
        "# HELP pdns_relay_store_sweep_pass_seconds How long the expiry sweep's last whole pass took (0 before the first).\n"
        "# TYPE pdns_relay_store_sweep_pass_seconds gauge\n"
        "pdns_relay_store_sweep_pass_seconds %.3f\n"
        "# HELP pdns_relay_store_in_flight 1 while a batch is sent and not yet answered.\n"
        "# TYPE pdns_relay_store_in_flight gauge\n"
        "pdns_relay_store_in_flight %d\n"
        "# HELP pdns_relay_store_up 1 while the store's Redis is connected.\n"
        "# TYPE pdns_relay_store_up gauge\n"
        "pdns_relay_store_up %d\n"
        "# HELP pdns_relay_store_module 1 while batches go to the pdnsrelay Redis module (PDNSRELAY.INGEST), 0 while they go to the script.\n"
        "# TYPE pdns_relay_store_module gauge\n"
        "pdns_relay_store_module %d\n"
        "# HELP pdns_relay_store_query_module 1 while query pages go to the pdnsrelay Redis module (PDNSRELAY.QUERY), 0 while they go to the script.\n"
        "# TYPE pdns_relay_store_query_module gauge\n"
        "pdns_relay_store_query_module %d\n"
        "# HELP pdns_relay_store_index_trees 1 when the store's indexes are the pdnsrelay module's trees (st:layout ix-tree).\n"
        "# TYPE pdns_relay_store_index_trees gauge\n"
        "pdns_relay_store_index_trees %d\n"
        "# HELP pdns_relay_store_shards Shards of the store (1 on one Redis server).\n"
        "# TYPE pdns_relay_store_shards gauge\n"
        "pdns_relay_store_shards %d\n"
        "# HELP pdns_relay_store_unreplicated_total Batch parts no replica confirmed within 2 s (a cluster).\n"
        "# TYPE pdns_relay_store_unreplicated_total counter\n"
        "pdns_relay_store_unreplicated_total %" PRIu64 "\n",
        s->stored, s->batches, s->errors, s->dead, s->duplicates, s->call_entries, s->waiting,
        s->buffer_peak, s->full, s->expired, (double)s->sweep_pass_ms / 1000, s->busy > 0,
        store_up(s), s->module, s->module_query, s->trees, s->nshards, s->unreplicated);
    rc |= rlink_metrics(s->link, "pdns_relay_store_cluster", "the store's", b);
    rc |= pdns_hist_render(&s->lat, "pdns_relay_store_latency_seconds",
                           "Time of one batch write (answered or refused).", b);
    return rc ? -1 : 0;
}

typedef struct query_call {
    store *s;
    store_reply_fn fn;
    void *ctx;
    const store_query_args *args;  /* a query: sent again on NOSCRIPT */
    int module;                    /* sent to PDNSRELAY.QUERY */
} query_call;


static void on_query(redisAsyncContext *ac, void *reply, void *priv) {
    query_call *q = priv;
    redisReply *rep = reply;
    (void)ac;
    if (q->module && q->args && module_gone(q->s, rep, &q->s->module_query) &&
        store_query(q->s, q->args, q->fn, q->ctx) == 0) {
        free(q);
        return;
    }
    if (rep && rep->type == REDIS_REPLY_ERROR && strncmp(rep->str, "NOSCRIPT", 8) == 0 &&
        q->args) {
        /* the script cache was flushed: send the script itself, once */
        q->s->script_loaded = 0;
        load_query_script(q->s);
        if (store_query(q->s, q->args, q->fn, q->ctx) == 0) {
            free(q);
            return;
        }
    }
    q->fn(reply, q->ctx);
    free(q);
}

static int call(store *s, const char *key, int argc, const char **argv, const size_t *argl,
                const store_query_args *args, int module, store_reply_fn fn, void *ctx) {
    if (!store_up(s))
        return -1;
    query_call *q = malloc(sizeof(*q));
    if (!q)
        return -1;
    q->s = s;
    q->fn = fn;
    q->ctx = ctx;
    q->args = args && (s->script_loaded || module) ? args : NULL;
    q->module = module;
    if (rlink_argv(s->link, key, on_query, q, argc, argv, argl) < 0) {
        free(q);
        return -1;
    }
    return 0;
}

/* ---- a cluster: every shard asked, the answers merged (merge.c) ------- */

typedef struct gather {
    store *s;
    store_reply_fn fn;
    void *ctx;
    const store_query_args *q;  /* a query, or NULL for /info */
    int n, got, lost;
    int one;                    /* the one shard asked (a name's), or -1 for all */
    redisReply *err;            /* the first error a shard gave */
    redisReply *page[STORE_SHARDS_MAX];
    char *cursor;               /* the position a numeric cursor stood for */
    size_t cursor_len;
    /* an address lookup on a store whose address index is sharded by
     * prefix goes in rounds: phase 1 reads the next members from the
     * address shards the range overlaps (want), phase 2 their triples from
     * the names' shards, until the page one server gives is full */
    int phase;                  /* 0: one round (every other lookup) */
    uint8_t want[STORE_SHARDS_MAX];
    int shard_of[STORE_SHARDS_MAX]; /* the shard that gives page k */
    store_query_args sub;       /* the round's query: mode, kind, limit */
    redisReply *members;        /* phase 1's, merged: {cursor, member, ...} */
    uint8_t *mshard;            /* the shard of each member's name */
    redisReply *acc;            /* the page so far: {cursor, 5 per triple} */
    size_t visited;             /* members looked at for this page */
} gather;

typedef struct gather_part {
    gather *g;
    int k, shard;
    int sha;        /* sent by EVALSHA: on NOSCRIPT, sent again with the script */
    int module;     /* sent to PDNSRELAY.QUERY: refused, sent again to the script */
} gather_part;

static void gather_free(gather *g) {
    for (int k = 0; k < g->n; k++)
        freeReplyObject(g->page[k]);
    freeReplyObject(g->err);
    freeReplyObject(g->members);
    freeReplyObject(g->acc);
    free(g->mshard);
    free(g->cursor);
    free(g);
}

/* Tells the caller: an error reply of our own (BADCURSOR, say). */
static void gather_fail(gather *g, const char *why) {
    redisReply *e = store_reply_new(REDIS_REPLY_ERROR, why, strlen(why));
    g->fn(e, g->ctx);
    freeReplyObject(e);
    gather_free(g);
}

static void gather_done(gather *g) {
    store *s = g->s;
    if (g->lost) {
        g->fn(NULL, g->ctx);
    } else if (g->err) {
        g->fn(g->err, g->ctx);
    } else if (!g->q) {
        redisReply *r = store_merge_info(g->page, g->n);
        g->fn(r, g->ctx);
        freeReplyObject(r);
    } else {
        const store_query_args *q = g->q;
        int with_field = q->kind && (strcmp(q->kind, "fwd") == 0 || strcmp(q->kind, "rev") == 0);
        redisReply *r;
        if (g->phase) /* an address lookup in rounds: the page it made */
            r = g->acc, g->acc = NULL;
        else if (g->one >= 0) /* a name's shard: its page is the answer */
            r = g->page[0], g->page[0] = NULL;
        else
            r = store_merge_pages(g->page, g->n, q->limit, with_field);
        if (r && q->cursor_id && r->element[0]->len) {
            /* a numeric cursor: it stands for the position, bound to the
             * query (what store_query.lua does on one server) */
            char key[48];
            const char *b = q->binding ? q->binding : "";
            size_t bl = strlen(b), vl = bl + 1 + r->element[0]->len;
            char *v = malloc(vl);
            snprintf(key, sizeof(key), "cur:%s", q->cursor_id);
            if (v) {
                memcpy(v, b, bl);
                v[bl] = ' ';
                memcpy(v + bl + 1, r->element[0]->str, r->element[0]->len);
                rlink_command(s->link, key, NULL, NULL, "SET %s %b EX 3600", key, v, vl);
                free(v);
            }
            redisReply *id = store_reply_new(REDIS_REPLY_STRING, q->cursor_id,
                                             strlen(q->cursor_id));
            if (id) {
                freeReplyObject(r->element[0]);
                r->element[0] = id;
            }
        }
        if (!r) {
            gather_fail(g, "ERR out of memory merging the shards' answers");
            return;
        }
        g->fn(r, g->ctx);
        freeReplyObject(r);
    }
    gather_free(g);
}

static void gather_ask(gather *g, int k, int shard, int sha);
static void ip_step(gather *g);

static void on_gather(redisAsyncContext *ac, void *reply, void *priv) {
    gather_part *gp = priv;
    gather *g = gp->g;
    redisReply *rep = reply;
    (void)ac;
    if (rep && gp->sha && rep->type == REDIS_REPLY_ERROR &&
        (strncmp(rep->str, "NOSCRIPT", 8) == 0 || (gp->module && module_gone(g->s, rep, &g->s->module_query)))) {
        gather_ask(g, gp->k, gp->shard, 0); /* this master has not run it yet */
        free(gp);
        return;
    }
    if (!rep)
        g->lost = 1;
    else if (rep->type == REDIS_REPLY_ERROR && !g->err)
        g->err = store_reply_dup(rep);
    else if (rep->type != REDIS_REPLY_ERROR && !(g->page[gp->k] = store_reply_dup(rep)))
        g->lost = 1;
    free(gp);
    if (++g->got == g->n)
        g->phase ? ip_step(g) : gather_done(g);
}

/* A part that cannot be sent counts as lost (the caller gets NULL, as
 * for a connection gone). */
static void gather_lost(gather *g) {
    g->lost = 1;
    if (++g->got == g->n)
        g->phase ? ip_step(g) : gather_done(g);
}

/* Sends one shard's part of a gather. */
static void gather_send(gather *g, int k, int shard, int sha, int module, int argc,
                        const char **argv, const size_t *argl) {
    char key[40];
    snprintf(key, sizeof(key), "%sst:info", g->s->prefix[shard]);
    gather_part *gp = malloc(sizeof(*gp));
    if (gp)
        *gp = (gather_part){g, k, shard, sha, module};
    if (!gp || rlink_argv(g->s->link, key, on_gather, gp, argc, argv, argl) < 0) {
        free(gp);
        gather_lost(g);
    }
}

/* The kind of member the query script walks: "rrev" for a suffix index
 * whose members are relative to their bucket (layout r-rel). */
static const char *query_kind(const store *s, const char *kind) {
    if (!kind)
        return "";
    return s->r_rel && strcmp(kind, "rev") == 0 ? "rrev" : kind;
}

/* The arguments of store_query.lua for q on shard k (with sha,
 * PDNSRELAY.QUERY when Redis has the module, else EVALSHA; without, EVAL),
 * cursor and cursor id as given. Returns where the command starts in argv:
 * 2 for the module's (the script's words after its SHA1 and key count). */
#define QUERY_ARGS 23
static int query_argv(store *s, const store_query_args *q, int k, const char *cursor,
                      size_t cursor_len, const char *cursor_id, int positions, int sha,
                      char bufs[8][24], char *key, size_t keysize, const char **argv,
                      size_t *argl) {
    snprintf(bufs[0], 24, "%zu", q->limit);
    snprintf(bufs[1], 24, "%zu", s->conf->budget);
    snprintf(bufs[2], 24, "%" PRId64, q->tf_after);
    snprintf(bufs[3], 24, "%" PRId64, q->tf_before);
    snprintf(bufs[4], 24, "%" PRId64, q->tl_after);
    snprintf(bufs[5], 24, "%" PRId64, q->tl_before);
    snprintf(bufs[6], 24, "%lld", (long long)time(NULL));
    snprintf(bufs[7], 24, "%sst:info", s->prefix[k]);
    char bucket[sizeof(q->key)];
    snprintf(bucket, sizeof(bucket), "%s", q->key);
    shard_bucket(s, bucket);
    snprintf(key, keysize, "%s%s", s->prefix[k], bucket);
    const char *v[QUERY_ARGS] = {sha ? "EVALSHA" : "EVAL", sha ? s->query_sha : store_query_lua,
                                 "1", bufs[7], q->mode, query_kind(s, q->kind), key, q->a, q->b,
                                 cursor ? cursor : "", bufs[0], bufs[1], q->types,
                                 bufs[2], bufs[3], bufs[4], bufs[5], bufs[6], s->conf->expiry,
                                 s->conf->show_sensors ? "1" : "0", cursor_id ? cursor_id : "",
                                 q->binding ? q->binding : "", s->prefix[k]};
    for (size_t i = 0; i < QUERY_ARGS; i++) {
        argv[i] = v[i];
        /* the name or range, and the cursor: lengths of their own */
        argl[i] = i == 7 ? q->alen : i == 8 ? q->blen : i == 9 ? (cursor ? cursor_len : 0)
                : i == 1 && !sha ? sizeof(store_query_lua) - 1 : strlen(v[i]);
    }
    argv[QUERY_ARGS] = positions ? "1" : "0";
    argl[QUERY_ARGS] = 1;
    if (!sha || !s->module_query)
        return 0;
    argv[2] = "PDNSRELAY.QUERY";
    argl[2] = 15;
    return 2;
}

/* The name of an address index member, "<key> <name>" or "<key> <rrtype>
 * <rdata> <name>": after its last space (names hold none). */
static const char *member_name(const redisReply *m, size_t *len) {
    const char *p = m->str + m->len;
    while (p > m->str && p[-1] != ' ')
        p--;
    *len = (size_t)(m->str + m->len - p);
    return p;
}

/* Shard shard asked for its part of the round (its answer is page k):
 * the page after position cursor, or in phase 2 the triples of the
 * members whose names are in that shard. */
static void gather_ask(gather *g, int k, int shard, int sha) {
    const char *fixed[QUERY_ARGS + 1], **argv = fixed;
    size_t fixedl[QUERY_ARGS + 1], *argl = fixedl, argc = QUERY_ARGS + 1;
    char bufs[8][24], key[1200];
    const redisReply *ms = g->members;
    if (g->phase == 2) {
        argv = malloc((QUERY_ARGS + ms->elements) * sizeof(*argv));
        argl = malloc((QUERY_ARGS + ms->elements) * sizeof(*argl));
        if (!argv || !argl) {
            free(argv);
            free(argl);
            gather_lost(g);
            return;
        }
    }
    int at = query_argv(g->s, g->phase ? &g->sub : g->q, shard, g->cursor, g->cursor_len, NULL,
                        g->one < 0 && g->phase != 1, sha, bufs, key, sizeof(key), argv, argl);
    for (size_t i = 1; g->phase == 2 && i < ms->elements; i++)
        if (g->mshard[i - 1] == shard)
            argv[argc] = ms->element[i]->str, argl[argc++] = ms->element[i]->len;
    gather_send(g, k, shard, sha, at > 0, (int)argc - at, argv + at, argl + at);
    if (argv != fixed) {
        free(argv);
        free(argl);
    }
}

/* Every shard asked (by EVALSHA: each master has the script once it ran
 * it; NOSCRIPT sends it). */
static void ip_round(gather *g);
static void gather_query(gather *g) {
    if (g->phase) {
        ip_round(g);
        return;
    }
    for (int k = 0; k < g->n; k++)
        gather_ask(g, k, g->one >= 0 ? g->one : k, 1);
}

/* A new round's replies: none yet. */
static void gather_reset(gather *g) {
    for (int k = 0; k < g->n; k++) {
        freeReplyObject(g->page[k]);
        g->page[k] = NULL;
    }
    g->n = g->got = 0;
}

/* Phase 1 of a round: the next members after the cursor, as many as the
 * page may still take and look at, from the address shards of the range. */
static void ip_round(gather *g) {
    size_t room = g->q->limit - (g->acc->elements - 1) / STORE_TRIPLE_ELEMENTS,
           left = g->s->conf->budget - g->visited;
    gather_reset(g);
    g->phase = 1;
    g->sub.limit = room < left ? room : left;
    int n = 0;
    for (int j = 0; j < g->s->nshards; j++)
        if (g->want[j])
            g->shard_of[n++] = j;
    g->n = n;
    for (int k = 0; k < n; k++)
        gather_ask(g, k, g->shard_of[k], 1);
}

/* An empty page: {""}. NULL when out of memory. */
static redisReply *ip_page_new(void) {
    redisReply *r = calloc(1, sizeof(*r));
    if (!r || !(r->element = calloc(1, sizeof(*r->element))) ||
        !(r->element[0] = store_reply_new(REDIS_REPLY_STRING, "", 0))) {
        if (r)
            free(r->element);
        free(r);
        return NULL;
    }
    r->type = REDIS_REPLY_ARRAY;
    r->elements = 1;
    return r;
}

/* Appends the triples of page p ({cursor, 5 per triple}) to the page so
 * far. Returns 0, or -1 when out of memory. */
static int ip_append(gather *g, redisReply *p) {
    redisReply *a = g->acc;
    void *e = realloc(a->element, (a->elements + p->elements - 1) * sizeof(*a->element));
    if (!e)
        return -1;
    a->element = e;
    for (size_t i = 1; i < p->elements; i++) {
        a->element[a->elements++] = p->element[i];
        p->element[i] = NULL;
    }
    return 0;
}

/* A phase's replies are in: on to the next. */
static void ip_step(gather *g) {
    const store_query_args *q = g->q;
    if (g->lost || g->err) {
        gather_done(g);
        return;
    }
    if (g->phase == 1) {
        freeReplyObject(g->members);
        g->members = store_merge_members(g->page, g->n, g->sub.limit);
        if (!g->members) {
            gather_fail(g, "ERR out of memory merging the shards' answers");
            return;
        }
        size_t nm = g->members->elements - 1;
        g->visited += nm;
        free(g->mshard);
        if (!(g->mshard = malloc(nm ? nm : 1))) {
            gather_fail(g, "ERR out of memory");
            return;
        }
        uint8_t names[STORE_SHARDS_MAX] = {0};
        for (size_t i = 0; i < nm; i++) {
            size_t nl;
            const char *nmp = member_name(g->members->element[i + 1], &nl);
            names[g->mshard[i] = (uint8_t)store_shard_of(g->s, nmp, nl)] = 1;
        }
        gather_reset(g);
        g->phase = 2;
        g->sub.mode = "get";
        g->sub.kind = "ip";
        for (int j = 0; j < g->s->nshards; j++)
            if (names[j])
                g->shard_of[g->n++] = j;
        if (g->n) {
            for (int k = 0; k < g->n; k++)
                gather_ask(g, k, g->shard_of[k], 1);
            return;
        }
    } else {
        redisReply *m = store_merge_pages(g->page, g->n, SIZE_MAX, 0);
        if (!m || ip_append(g, m) < 0) {
            freeReplyObject(m);
            gather_fail(g, "ERR out of memory merging the shards' answers");
            return;
        }
        freeReplyObject(m);
    }
    /* the round is done: the page is full, looked at all it may, or the
     * range is done; else another round from the last member */
    const redisReply *c = g->members->element[0];
    char *cur = malloc(c->len + 1);
    if (!cur) {
        gather_fail(g, "ERR out of memory");
        return;
    }
    memcpy(cur, c->str, c->len);
    cur[c->len] = '\0';
    free(g->cursor);
    g->cursor = cur;
    g->cursor_len = c->len;
    g->sub.mode = q->mode;
    g->sub.kind = "ipm";
    if (!c->len || (g->acc->elements - 1) / STORE_TRIPLE_ELEMENTS >= q->limit || g->visited >= g->s->conf->budget) {
        freeReplyObject(g->acc->element[0]);
        if (!(g->acc->element[0] = store_reply_new(REDIS_REPLY_STRING, c->str, c->len))) {
            gather_fail(g, "ERR out of memory");
            return;
        }
        gather_reset(g);
        gather_done(g);
        return;
    }
    ip_round(g);
}

/* A numeric cursor read back: the position it stands for, if it is this
 * query's. */
static void on_cursor(redisAsyncContext *ac, void *reply, void *priv) {
    gather *g = priv;
    redisReply *rep = reply;
    (void)ac;
    if (!rep) {
        g->fn(NULL, g->ctx);
        gather_free(g);
        return;
    }
    if (rep->type != REDIS_REPLY_STRING) {
        gather_fail(g, "BADCURSOR unknown or expired cursor");
        return;
    }
    const char *sp = memchr(rep->str, ' ', rep->len);
    const char *b = g->q->binding ? g->q->binding : "";
    if (!sp || (size_t)(sp - rep->str) != strlen(b) || memcmp(rep->str, b, strlen(b)) != 0) {
        gather_fail(g, "BADCURSOR FOREIGN this cursor belongs to another query");
        return;
    }
    g->cursor_len = rep->len - (size_t)(sp + 1 - rep->str);
    if (!(g->cursor = malloc(g->cursor_len + 1))) {
        gather_fail(g, "ERR out of memory");
        return;
    }
    memcpy(g->cursor, sp + 1, g->cursor_len);
    g->cursor[g->cursor_len] = '\0';
    gather_query(g);
}

static gather *gather_new(store *s, const store_query_args *q, store_reply_fn fn, void *ctx) {
    gather *g = calloc(1, sizeof(*g));
    if (!g)
        return NULL;
    g->s = s;
    g->fn = fn;
    g->ctx = ctx;
    g->q = q;
    g->n = s->nshards;
    g->one = -1;
    return g;
}

int store_query(store *s, const store_query_args *q, store_reply_fn fn,
                void *ctx) {
    const char *argv[QUERY_ARGS + 1];
    size_t argl[QUERY_ARGS + 1];
    char bufs[8][24], key[1200];
    if (!s->cluster) { /* one call does it all: store_query.lua, or the module's */
        int at = query_argv(s, q, 0, q->cursor, q->cursor_len, q->cursor_id, 0,
                            s->script_loaded || s->module_query, bufs, key, sizeof(key), argv,
                            argl);
        return call(s, "st:info", QUERY_ARGS + 1 - at, argv + at, argl + at, q, at > 0, fn, ctx);
    }
    if (!store_up(s))
        return -1;
    gather *g = gather_new(s, q, fn, ctx);
    if (!g)
        return -1;
    if (strcmp(q->mode, "name") == 0) { /* a name is in one shard */
        g->one = store_shard_of(s, q->a, q->alen);
        g->n = 1;
    } else if (s->ip_by_prefix && q->kind && strcmp(q->kind, "ip") == 0) {
        g->phase = 1; /* in rounds: gather_query */
        g->sub = *q;
        g->sub.kind = "ipm";
        store_ip_range_shards(s->nshards, q->a, q->alen, q->b, q->blen, g->want);
        if (!(g->acc = ip_page_new())) {
            gather_free(g);
            return -1;
        }
    }
    if (q->cursor_id && q->cursor && q->cursor_len) {
        char ckey[48];
        snprintf(ckey, sizeof(ckey), "cur:%.*s", (int)(q->cursor_len < 30 ? q->cursor_len : 30),
                 q->cursor);
        if (rlink_command(s->link, ckey, on_cursor, g, "GET %s", ckey) < 0) {
            gather_free(g);
            return -1;
        }
        return 0;
    }
    if (q->cursor && q->cursor_len) {
        if (!(g->cursor = malloc(q->cursor_len + 1))) {
            gather_free(g);
            return -1;
        }
        memcpy(g->cursor, q->cursor, q->cursor_len);
        g->cursor[q->cursor_len] = '\0';
        g->cursor_len = q->cursor_len;
    }
    gather_query(g);
    return 0;
}

int store_info(store *s, store_reply_fn fn, void *ctx) {
    static const char script[] =
        "local P = ARGV[1]\n"
        "local i = redis.call('HMGET', P .. 'st:info', 'records', 'triples', 'names', 'errors')\n"
        "local out = {i[1] or '0', i[2] or '0', i[3] or '0', i[4] or '0'}\n"
        "local h = redis.call('HGETALL', P .. 'st:sensor')\n"
        "for j = 1, #h do out[#out + 1] = h[j] end\n"
        "return out\n";
    const char *argv[5];
    size_t argl[5];
    char key[40];
    if (!s->cluster) {
        EVAL_HEAD(argv, argl, script, "st:info");
        argv[4] = "", argl[4] = 0;
        return call(s, "st:info", 5, argv, argl, NULL, 0, fn, ctx);
    }
    if (!store_up(s))
        return -1;
    gather *g = gather_new(s, NULL, fn, ctx);
    if (!g)
        return -1;
    for (int k = 0; k < s->nshards; k++) {
        snprintf(key, sizeof(key), "%sst:info", s->prefix[k]);
        EVAL_HEAD(argv, argl, script, key);
        argv[4] = s->prefix[k], argl[4] = strlen(s->prefix[k]);
        gather_send(g, k, k, 0, 0, 5, argv, argl);
    }
    return 0;
}
