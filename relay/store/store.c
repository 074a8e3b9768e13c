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
#include "log.h"
#include "rrtype.h"
#include "store_ingest.lua.h"
#include "store_expire.lua.h"
#include "store_query.lua.h"
#include "store_sweep.lua.h"

#define RETRY_MS 1000
#define CHUNK_MAX_BYTES (32u << 20)   /* a batch's strings: well within Redis's
                                       * limits (and 32-bit offsets) */
#define ARGS_PER_ENTRY 13
#define DEAD_MAX 10000     /* records kept in st:dead */

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
    uint8_t is_error;          /* an error line (e:<name>, no indexes) */
    int64_t tf, tl;
    uint64_t count;
    uint32_t nrec;
    uint64_t hash;
} entry;

enum { IX_NONE, IX_IP, IX_RD };

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
    char unit_key[200]; /* the unit's marker ("" for none) and id */
    char unit_id[24];
};

static double mono_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void store_conf_defaults(store_conf *c) {
    memset(c, 0, sizeof(*c));
    c->enabled = 1;
    c->batch = 1000;
    c->max_buffer = 500000;
    c->default_limit = 1000;
    c->max_limit = 100000;
    c->budget = 100000;
    c->sweep_interval = 600;
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

/* The d: bucket of an rdata index member: that of its target name. */
static void member_bucket(const char *ixp, size_t ixl, char out[8]) {
    const char *sp = memchr(ixp, ' ', ixl);
    store_rd_bucket(ixp, sp ? (size_t)(sp - ixp) : ixl, out);
}

size_t store_ip_key(const char *text, size_t len, char out[34]) {
    static const char hex[] = "0123456789abcdef";
    char tmp[64];
    uint8_t a[16];
    if (len >= sizeof(tmp))
        return 0;
    memcpy(tmp, text, len);
    tmp[len] = '\0';
    size_t n;
    if (inet_pton(AF_INET, tmp, a) == 1) {
        out[0] = '4';
        n = 4;
    } else if (inet_pton(AF_INET6, tmp, a) == 1) {
        out[0] = '6';
        n = 16;
    } else {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        out[1 + 2 * i] = hex[a[i] >> 4];
        out[2 + 2 * i] = hex[a[i] & 15];
    }
    out[1 + 2 * n] = '\0';
    return 1 + 2 * n;
}

static void chunk_free(store_chunk *c) {
    pdns_buf_free(&c->arena);
    pdns_buf_free(&c->entries);
    free(c->slots);
    free(c);
}

static void kick(store *s);

/* The store script refused one entry of chunk c before writing anything
 * ("<entry> <error>": say a key that holds another type): that entry goes
 * to the dead-letter list st:dead (the newest DEAD_MAX kept) with the
 * reason, is counted and logged, and leaves the chunk. */
static void set_aside(store *s, store_chunk *c, const char *what) {
    entry *es = (entry *)c->entries.p;
    size_t n = c->entries.len / sizeof(entry);
    char *end;
    unsigned long k = strtoul(what, &end, 10);
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
    if (t && s->rc.ready) {
        redisAsyncCommand(s->rc.ac, NULL, NULL, "LPUSH st:dead %s", t);
        redisAsyncCommand(s->rc.ac, NULL, NULL, "LTRIM st:dead 0 %d", DEAD_MAX - 1);
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

static void on_reply(redisAsyncContext *ac, void *reply, void *priv) {
    store *s = priv;
    redisReply *rep = reply;
    (void)ac;
    if (!rep)
        return; /* the connection went away: on_down sends it again */
    store_chunk *c = s->head;
    s->busy = 0;
    pdns_hist_add(&s->lat, mono_s() - s->sent_s);
    if ((rep->type == REDIS_REPLY_STRING || rep->type == REDIS_REPLY_STATUS) &&
        rep->len > 4 && memcmp(rep->str, "BAD ", 4) == 0) {
        set_aside(s, c, rep->str + 4);
        kick(s); /* the rest of the batch goes again: nothing was written */
        return;
    }
    if (rep->type != REDIS_REPLY_INTEGER) {
        s->errors++;
        log_error("store: Redis refused a batch of %zu records (%s); "
                  "retrying in %d ms", c->nrec,
                  rep->type == REDIS_REPLY_ERROR ? rep->str : "unexpected reply",
                  RETRY_MS);
        s->retry_at_ms = pdns_mono_ms() + RETRY_MS;
        return;
    }
    if (rep->type == REDIS_REPLY_INTEGER && rep->integer == 0 && c->nrec)
        s->duplicates++;
    s->batches++;
    s->acked_seq = c->seq;
    s->stored += c->nrec;
    s->waiting -= c->nrec;
    s->head = c->next;
    if (!s->head)
        s->tail = NULL;
    chunk_free(c);
    if (s->on_acked)
        s->on_acked(s->ctx);
    if (s->full && s->waiting <= s->conf->max_buffer / 2) {
        s->full = 0;
        log_info("store: buffer drained to %zu records; sources resume",
                 s->waiting);
        if (s->on_drain)
            s->on_drain(s->ctx);
    }
    kick(s);
}

/* The first three arguments of an EVAL of script (a Lua header's array),
 * with no keys. */
#define EVAL_HEAD(argv, argl, script)                                      \
    ((argv)[0] = "EVAL", (argl)[0] = 4, (argv)[1] = (script),               \
     (argl)[1] = sizeof(script) - 1, (argv)[2] = "0", (argl)[2] = 1)

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

/* Appends one RESP bulk string, the concatenation a b ("$<n>\r\n<a><b>\r\n").
 * Returns 0, or -1. */
static int resp_arg(pdns_buf *cmd, const char *a, size_t alen, const char *b,
                    size_t blen) {
    char hdr[24];
    size_t n = 1;
    hdr[0] = '$';
    n += utoa(alen + blen, hdr + 1);
    hdr[n++] = '\r';
    hdr[n++] = '\n';
    if (pdns_buf_reserve(cmd, n + alen + blen + 2) < 0)
        return -1;
    char *w = cmd->p + cmd->len;
    memcpy(w, hdr, n);
    memcpy(w + n, a, alen);
    if (blen)
        memcpy(w + n + alen, b, blen);
    memcpy(w + n + alen + blen, "\r\n", 2);
    cmd->len += n + alen + blen + 2;
    return 0;
}

/* The EVAL of a chunk as one RESP command, written here rather than by
 * hiredis from an argument vector: the relay composes every key and
 * member (in Redis's Lua, building a string costs more than passing one)
 * and writes them straight into the command. */
static int build_command(const store *s, const store_chunk *c, pdns_buf *cmd) {
    size_t n = c->entries.len / sizeof(entry);
    const entry *e = (const entry *)c->entries.p;
    char num[72];
    size_t nl;
    cmd->len = 0;
    nl = (size_t)snprintf(num, sizeof(num), "*%zu\r\n", 8 + n * ARGS_PER_ENTRY);
    if (pdns_buf_append(cmd, num, nl) < 0 ||
        resp_arg(cmd, "EVAL", 4, NULL, 0) < 0 ||
        resp_arg(cmd, store_ingest_lua, sizeof(store_ingest_lua) - 1, NULL, 0) < 0 ||
        resp_arg(cmd, "0", 1, NULL, 0) < 0 ||
        resp_arg(cmd, s->mark, strlen(s->mark), NULL, 0) < 0 ||
        resp_arg(cmd, s->boot, strlen(s->boot), NULL, 0) < 0 ||
        resp_arg(cmd, num, utoa(c->seq, num), NULL, 0) < 0 ||
        resp_arg(cmd, c->unit_key, strlen(c->unit_key), NULL, 0) < 0 ||
        resp_arg(cmd, c->unit_id, strlen(c->unit_id), NULL, 0) < 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        const char *name = c->arena.p + e[i].off, *rdata = name + e[i].name_len,
                   *sensor = rdata + e[i].rdata_len, *rev = sensor + e[i].sensor_len,
                   *ixp = rev + e[i].rev_len;
        char fb[8] = "", db[8], ty[24];
        if (!e[i].is_error) /* error lines get no name indexes */
            store_fwd_bucket(name, e[i].name_len, fb);
        const char *ixk = "";
        if (e[i].ix == IX_IP)
            ixk = "ix:ip";
        else if (e[i].ix == IX_RD)
            member_bucket(ixp, e[i].ixp_len, db), ixk = db;
        size_t tl = utoa(e[i].rrtype, ty);
        ty[tl++] = ' ';
        nl = itoa64(e[i].tf, num);
        num[nl++] = ' ';
        nl += itoa64(e[i].tl, num + nl);
        num[nl++] = ' ';
        nl += utoa(e[i].count, num + nl);
        char nr[20];
        size_t nrl = utoa(e[i].nrec, nr);
        if (resp_arg(cmd, e[i].is_error ? "e:" : "n:", 2, name, e[i].name_len) < 0 ||
            resp_arg(cmd, ty, tl, rdata, e[i].rdata_len) < 0 ||
            resp_arg(cmd, num, nl, NULL, 0) < 0 ||
            resp_arg(cmd, sensor, e[i].sensor_len, NULL, 0) < 0 ||
            resp_arg(cmd, nr, nrl, NULL, 0) < 0 ||
            resp_arg(cmd, name, e[i].name_len, NULL, 0) < 0 ||
            resp_arg(cmd, rev, e[i].rev_len, NULL, 0) < 0 ||
            resp_arg(cmd, fb, strlen(fb), NULL, 0) < 0 ||
            resp_arg(cmd, "r:", 2, rev, e[i].rb_len) < 0 ||
            resp_arg(cmd, rev, e[i].rb_len, NULL, 0) < 0 ||
            resp_arg(cmd, ixk, strlen(ixk), NULL, 0) < 0)
            return -1;
        /* the index member: its prefix (with its space), the owner name */
        if (resp_arg(cmd, ixp, e[i].ixp_len, name, e[i].ix == IX_NONE ? 0 : e[i].name_len) < 0 ||
            resp_arg(cmd, c->arena.p + e[i].bw_off, e[i].bw_len, NULL, 0) < 0)
            return -1;
    }
    return 0;
}

/* Sends the oldest batch when nothing is in flight. */
static void kick(store *s) {
    store_chunk *c = s->head;
    if (s->busy || !c || !s->rc.ready || pdns_mono_ms() < s->retry_at_ms)
        return;
    if (!c->sealed && (c->in_unit || c->nrec < s->conf->batch))
        return; /* still filling: store_flush, the tick or the unit's end sends it */
    c->sealed = 1;
    if (build_command(s, c, &s->cmd) < 0) {
        s->retry_at_ms = pdns_mono_ms() + RETRY_MS;
        return;
    }
    if (redisAsyncFormattedCommand(s->rc.ac, on_reply, s, s->cmd.p, s->cmd.len) ==
        REDIS_OK) {
        s->busy = 1;
        s->sent_s = mono_s();
    }
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
    store_chunk *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->nslots = 16;
    while (c->nslots < 2 * s->conf->batch)
        c->nslots *= 2;
    c->slots = calloc(c->nslots, sizeof(*c->slots));
    if (!c->slots) {
        free(c);
        return NULL;
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
    if (c && !c->sealed && (c->in_unit || (c->nrec < s->conf->batch &&
                                           c->arena.len < CHUNK_MAX_BYTES)))
        return c;
    int by_size = c && !c->sealed && c->nrec && c->nrec < s->conf->batch;
    if (by_size)
        c->sealed = 1; /* full by size: it goes as it is */
    store_chunk *n = new_chunk(s);
    if (by_size)
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
    if (s->script_loading || !s->rc.ready)
        return;
    if (redisAsyncCommandArgv(s->rc.ac, on_script_load, s, 3, argv, argl) == REDIS_OK)
        s->script_loading = 1;
}

static void on_ready(void *ctx) {
    store *s = ctx;
    s->script_loaded = s->script_loading = 0;
    load_query_script(s);
    kick(s);
}

static void on_down(void *ctx) {
    store *s = ctx;
    s->busy = 0; /* the batch in flight is sent again (at most once applied) */
    s->sweep_busy = 0;
    s->script_loaded = s->script_loading = 0;
}

int store_init(store *s, const store_conf *c, uv_loop_t *loop,
               const char *relay_id, const int *stopping) {
    uint8_t rnd[12];
    memset(s, 0, sizeof(*s));
    s->conf = c;
    snprintf(s->mark, sizeof(s->mark), "st:applied:%s", relay_id);
    randombytes_buf(rnd, sizeof(rnd));
    sodium_bin2hex(s->boot, sizeof(s->boot), rnd, sizeof(rnd));
    randombytes_buf(&s->hash_seed, sizeof(s->hash_seed));
    snprintf(s->sweep_cursor, sizeof(s->sweep_cursor), "0");
    unsigned char sha[SHA_DIGEST_LENGTH];
    SHA1((const unsigned char *)store_query_lua, sizeof(store_query_lua) - 1, sha);
    sodium_bin2hex(s->query_sha, sizeof(s->query_sha), sha, sizeof(sha));
    rconn_init(&s->rc, loop, c->host, c->port, c->db, "store Redis", stopping,
               on_ready, on_down, s);
    return rconn_start(&s->rc);
}

/* The index an rdata goes to (IX_IP for addresses, IX_RD for a name, or
 * IX_NONE) and its member prefix ("<key> <rrtype> <rdata> " or "<rdata>
 * <rrtype> "; the owner name follows). */
static uint8_t index_member(uint16_t rrtype, const char *rdata, size_t len,
                            char *ixp, size_t size, size_t *ixl) {
    *ixl = 0;
    if (rrtype == PDNS_RR_A || rrtype == PDNS_RR_AAAA) {
        char key[34];
        size_t kl = store_ip_key(rdata, len, key);
        if (!kl || len >= 64)
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


static uint64_t entry_hash(const store *s, const pdns_record *r,
                           const char *sensor, size_t sl) {
    uint64_t h = s->hash_seed ^ r->rrtype ^ ((uint64_t)r->is_error << 32);
    const pdns_str parts[3] = {r->rrname, r->rdata, {sensor, sl}};
    for (int k = 0; k < 3; k++) {
        for (size_t i = 0; i < parts[k].len; i++)
            h = (h ^ (uint8_t)parts[k].p[i]) * 1099511628211ULL;
        h = (h ^ 0xff) * 1099511628211ULL;
    }
    return h;
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
    if (!r->is_error)
        ix = index_member(r->rrtype, r->rdata.p, r->rdata.len, ixp, sizeof(ixp), &ixl);
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
               .is_error = r->is_error ? 1 : 0,
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
    if (c->nrec >= s->conf->batch)
        kick(s);
    return 0;
}

void store_flush(store *s) {
    store_chunk *c = s->tail;
    if (c && c->nrec && !c->in_unit)
        c->sealed = 1; /* the partial tail becomes a batch of its own */
    kick(s);
}

int store_begin_unit(store *s) {
    store_chunk *c = s->tail;
    if (c && !c->sealed && c->nrec)
        c->sealed = 1; /* what came before is not part of the unit */
    if (!c || c->sealed) {
        store_chunk *n = new_chunk(s);
        if (!n)
            return -1;
    }
    s->tail->in_unit = 1;
    return 0;
}

uint64_t store_end_unit(store *s, const char *key, const char *id) {
    store_chunk *c = s->tail;
    if (!c || !c->in_unit)
        return s->acked_seq;
    snprintf(c->unit_key, sizeof(c->unit_key), "%s", key);
    snprintf(c->unit_id, sizeof(c->unit_id), "%s", id);
    c->in_unit = 0;
    c->sealed = 1;
    kick(s);
    return c->seq;
}

static void sweep_later(store *s, int pass_done) {
    s->sweep_busy = 0;
    s->sweep_at_ms = pdns_mono_ms() + (pass_done ? (uint64_t)s->conf->sweep_interval * 1000 : 100);
}

static void on_expired(redisAsyncContext *ac, void *reply, void *priv) {
    store *s = priv;
    redisReply *rep = reply;
    (void)ac;
    if (rep && rep->type == REDIS_REPLY_INTEGER)
        s->expired += (uint64_t)rep->integer;
    else if (rep && rep->type == REDIS_REPLY_ERROR)
        log_error("store: expiring triples: %s", rep->str);
    sweep_later(s, strcmp(s->sweep_cursor, "0") == 0);
}

/* A sweep step found expired triples: delete them with their index
 * entries (store_expire.lua). */
static void on_sweep(redisAsyncContext *ac, void *reply, void *priv) {
    store *s = priv;
    redisReply *rep = reply;
    (void)ac;
    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements < 1 ||
        rep->element[0]->type != REDIS_REPLY_STRING) {
        if (rep && rep->type == REDIS_REPLY_ERROR)
            log_error("store: expiry sweep: %s", rep->str);
        sweep_later(s, 1);
        return;
    }
    snprintf(s->sweep_cursor, sizeof(s->sweep_cursor), "%s", rep->element[0]->str);
    size_t n = (rep->elements - 1) / 3;
    if (!n || !s->rc.ready) {
        sweep_later(s, strcmp(s->sweep_cursor, "0") == 0);
        return;
    }
    size_t total = 3 + n * 9;
    const char **argv = calloc(total, sizeof(*argv));
    size_t *argl = calloc(total, sizeof(*argl));
    char *keys = malloc(n * (8 + 8 + 2200 + 2048));
    if (!argv || !argl || !keys)
        goto out;
    EVAL_HEAD(argv, argl, store_expire_lua);
    for (size_t i = 0; i < n; i++) {
        /* the sweep names the key ("n:<name>" or "e:<name>"), the field
         * and the time_last it saw */
        const redisReply *key = rep->element[1 + 3 * i], *f = rep->element[2 + 3 * i],
                         *tl = rep->element[3 + 3 * i];
        const char *name = key->str + 2;
        size_t name_len = key->len > 2 ? key->len - 2 : 0;
        int error_line = key->str[0] == 'e';
        char *fk = keys + i * (8 + 8 + 2200 + 2048), *ixk = fk + 8, *ixp = ixk + 8,
             *rev = ixp + 2200;
        const char *sp = memchr(f->str, ' ', f->len);
        size_t ixl = 0, revl = name_len <= 1024 ? store_reverse_name(name, name_len, rev) : 0;
        uint8_t ix = IX_NONE;
        store_fwd_bucket(name, name_len, fk);
        ixk[0] = '\0';
        if (error_line)
            fk[0] = '\0'; /* no indexes to clean */
        else if (sp) {
            const char *rd = sp + 1;
            size_t rl = f->len - (size_t)(rd - f->str);
            ix = index_member((uint16_t)strtoul(f->str, NULL, 10), rd, rl, ixp, 2200, &ixl);
            if (ix == IX_IP)
                snprintf(ixk, 8, "ix:ip");
            else if (ix == IX_RD)
                member_bucket(ixp, ixl, ixk);
        }
        const char **v = argv + 3 + i * 9;
        size_t *l = argl + 3 + i * 9;
        v[0] = key->str, l[0] = key->len;
        v[1] = name, l[1] = name_len;
        v[2] = f->str, l[2] = f->len;
        v[3] = tl->str, l[3] = tl->len;
        v[4] = fk, l[4] = strlen(fk);
        v[5] = rev, l[5] = revl;
        v[6] = rev, l[6] = store_rev_bucket(rev, revl);
        v[7] = ixk, l[7] = strlen(ixk);
        v[8] = ixp, l[8] = ixl;
    }
    if (redisAsyncCommandArgv(s->rc.ac, on_expired, s, (int)total, argv, argl) == REDIS_OK) {
        free(argv);
        free(argl);
        free(keys);
        return;
    }
out:
    free(argv);
    free(argl);
    free(keys);
    sweep_later(s, 0);
}

/* Expiry (store.expire): a SCAN through the names, a few hundred per step,
 * one step in flight, a pass every sweep_interval seconds. Queries hide
 * expired triples meanwhile. */
static void sweep(store *s) {
    if (!s->conf->expiry[0] || s->sweep_busy || !s->rc.ready ||
        pdns_mono_ms() < s->sweep_at_ms)
        return;
    char now[24];
    snprintf(now, sizeof(now), "%lld", (long long)time(NULL));
    const char *argv[] = {"EVAL", store_sweep_lua, "0", s->sweep_cursor, "200", now,
                          s->conf->expiry};
    size_t argl[7];
    for (int i = 0; i < 7; i++)
        argl[i] = strlen(argv[i]);
    argl[1] = sizeof(store_sweep_lua) - 1;
    if (redisAsyncCommandArgv(s->rc.ac, on_sweep, s, 7, argv, argl) == REDIS_OK)
        s->sweep_busy = 1;
}

void store_tick(store *s) {
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
    rconn_stop(&s->rc);
}

void store_free(store *s) {
    while (s->head) {
        store_chunk *c = s->head;
        s->head = c->next;
        chunk_free(c);
    }
    s->tail = NULL;
    if (s->waiting)
        log_error("store: %zu records were not stored (Redis unavailable at "
                  "shutdown)", s->waiting);
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
        "# HELP pdns_relay_store_in_flight 1 while a batch is sent and not yet answered.\n"
        "# TYPE pdns_relay_store_in_flight gauge\n"
        "pdns_relay_store_in_flight %d\n"
        "# HELP pdns_relay_store_up 1 while the store's Redis is connected.\n"
        "# TYPE pdns_relay_store_up gauge\n"
        "pdns_relay_store_up %d\n",
        s->stored, s->batches, s->errors, s->dead, s->duplicates, s->waiting,
        s->buffer_peak, s->full, s->expired, s->busy, s->rc.ready);
    rc |= pdns_hist_render(&s->lat, "pdns_relay_store_latency_seconds",
                           "Time of one batch write (answered or refused).", b);
    return rc ? -1 : 0;
}

typedef struct query_call {
    store *s;
    store_reply_fn fn;
    void *ctx;
    const store_query_args *args;  /* a query: sent again on NOSCRIPT */
} query_call;

static void on_query(redisAsyncContext *ac, void *reply, void *priv) {
    query_call *q = priv;
    redisReply *rep = reply;
    (void)ac;
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

static int call(store *s, int argc, const char **argv, const size_t *argl,
                const store_query_args *args, store_reply_fn fn, void *ctx) {
    if (!s->rc.ready)
        return -1;
    query_call *q = malloc(sizeof(*q));
    if (!q)
        return -1;
    q->s = s;
    q->fn = fn;
    q->ctx = ctx;
    q->args = args && s->script_loaded ? args : NULL;
    if (redisAsyncCommandArgv(s->rc.ac, on_query, q, argc, argv, argl) !=
        REDIS_OK) {
        free(q);
        return -1;
    }
    return 0;
}

int store_query(store *s, const store_query_args *q, store_reply_fn fn,
                void *ctx) {
    char lim[24], bud[24], t[4][24], now[24];
    snprintf(lim, sizeof(lim), "%zu", q->limit);
    snprintf(bud, sizeof(bud), "%zu", s->conf->budget);
    snprintf(t[0], sizeof(t[0]), "%" PRId64, q->tf_after);
    snprintf(t[1], sizeof(t[1]), "%" PRId64, q->tf_before);
    snprintf(t[2], sizeof(t[2]), "%" PRId64, q->tl_after);
    snprintf(t[3], sizeof(t[3]), "%" PRId64, q->tl_before);
    snprintf(now, sizeof(now), "%lld", (long long)time(NULL));
    const char *argv[] = {s->script_loaded ? "EVALSHA" : "EVAL",
                          s->script_loaded ? s->query_sha : store_query_lua, "0", q->mode,
                          q->kind ? q->kind : "", q->key, q->a, q->b,
                          q->cursor ? q->cursor : "", lim, bud, q->types,
                          t[0], t[1], t[2], t[3], now, s->conf->expiry,
                          s->conf->show_sensors ? "1" : "0",
                          q->cursor_id ? q->cursor_id : "",
                          q->binding ? q->binding : ""};
    enum { NARGS = sizeof(argv) / sizeof(argv[0]) };
    size_t argl[NARGS];
    for (size_t i = 0; i < NARGS; i++)
        argl[i] = strlen(argv[i]);
    if (!s->script_loaded)
        argl[1] = sizeof(store_query_lua) - 1;
    argl[6] = q->alen;
    argl[7] = q->blen;
    argl[8] = q->cursor ? q->cursor_len : 0;
    return call(s, NARGS, argv, argl, q, fn, ctx);
}

int store_info(store *s, store_reply_fn fn, void *ctx) {
    static const char script[] =
        "local i = redis.call('HMGET', 'st:info', 'records', 'triples', 'names', 'errors')\n"
        "local out = {i[1] or '0', i[2] or '0', i[3] or '0', i[4] or '0'}\n"
        "local h = redis.call('HGETALL', 'st:sensor')\n"
        "for j = 1, #h do out[#out + 1] = h[j] end\n"
        "return out\n";
    const char *argv[] = {"EVAL", script, "0"};
    size_t argl[] = {4, sizeof(script) - 1, 1};
    return call(s, 3, argv, argl, NULL, fn, ctx);
}
