/* store.h - the local COF store on Redis: every accepted record, before
 * any mixing (the operator's own full view), aggregated into (rrname,
 * rrtype, rdata) triples with first and last seen, count and the set of
 * sensors that saw them, plus the indexes the query API needs.
 *
 * Records are batched: one EVAL of relay/lua/store_ingest.lua per batch
 * (`batch` records; when Redis has the pdnsrelay module, on every master of
 * a cluster, PDNSRELAY.INGEST with the same arguments), one batch in flight at a time; records of a batch
 * with the same (name, rrtype, rdata, sensor) are merged before they go. While Redis is away
 * the batches wait in memory, up to `max_buffer` records; above that
 * store_full() is true and the sources stop reading (the D4 listener
 * stops reading its sockets: TCP backpressure), below half of it the
 * on_drain callback tells them to go on. A batch whose reply was lost is
 * sent again; the script recognises it by (boot id, sequence) and does
 * not apply it twice. The schema is described in docs/guide.md ("The store").
 *
 * On a Redis Cluster (store.redis redis+cluster://...) the store is cut
 * into store.shards shards by a hash of the name: each shard is the whole
 * schema under its own hash tag ("{<tag>}n:<name>", "{<tag>}ix:ip", ...),
 * so a name's triples and every index entry they make are in one slot and
 * one script call still does a batch's part of a shard atomically. A
 * batch goes as one call per shard it touches, all at once, each with the
 * shard's own applied-batch marker, confirmed once a replica has it too
 * (WAIT); the batch is stored when every part is. A name lookup asks one
 * shard; a suffix, prefix or rdata lookup asks every shard and merges
 * their pages in the order of one server's answer, with the same cursors.
 * The address index is sharded by address prefix instead (/24, /48:
 * store_ip_shard): an address or CIDR lookup reads the members from the
 * shards its range overlaps, then their triples from the names' shards,
 * until the page one server would give is full. The tags are chosen so that the shards' slots are spread evenly
 * over the slot range (so over masters made by redis-cli --cluster create). */
#ifndef PDNS_STORE_H
#define PDNS_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "buf.h"
#include "hist.h"
#include "record.h"
#include "rlink.h"

#define STORE_SHARDS_MAX 64

typedef struct store_conf {
    int enabled;
    char url[512];            /* redis://HOST:PORT/DB */
    char host[256];
    int port, db;
    size_t batch;             /* entries per EVAL, at most */
    int call_ms;              /* a call's target time: fewer entries when
                               * calls take longer (0: always batch) */
    size_t max_buffer;        /* records waiting before backpressure */
    int show_sensors;         /* query answers name the sensors */
    int module;               /* batches go to PDNSRELAY.INGEST when Redis
                               * has the module (relay/store/module/) */
    int trees;                /* store.index "tree": a new store keeps its
                               * indexes in the module's type */
    size_t default_limit, max_limit;
    size_t budget;            /* index entries one query page may visit */
    char expiry[512];         /* ",<rrtype>=<seconds>,...," or "" */
    int sweep_interval;       /* seconds between expiry sweeps */
    int shards;               /* on a cluster: shards of the store (fixed for its life) */
} store_conf;

void store_conf_defaults(store_conf *c);

typedef struct store_chunk store_chunk;

typedef struct store {
    const store_conf *conf;
    rlink *link;
    int cluster, nshards;
    int layout_ok;             /* st:layout read: the store's shards match */
    int layout_asking;         /* the read of st:layout is in flight */
    int layout_bad;            /* st:layout says other shards: not asked
                                * again until the link comes back */
    uint64_t layout_retry_ms;  /* asked again after an error reply */
    int ip_by_prefix;          /* a cluster's address index is sharded by
                                * address prefix, not kept with the names */
    int ip_name;               /* address index members are "<key> <name>" */
    int r_rel;                 /* suffix index members are relative to
                                * their bucket */
    char prefix[STORE_SHARDS_MAX][16]; /* each shard's "{<tag>}" ("" on one server) */
    char mark[128];            /* the applied-batch marker key (after the prefix) */
    char boot[40];             /* this process's boot id */
    store_chunk *head, *tail;  /* oldest first; head is in flight if busy */
    store_chunk *spare;        /* chunks stored, their buffers kept for the
                                * next ones: no reallocation, no fresh pages */
    size_t spare_bytes;        /* their buffers' bytes */
    pdns_buf cmd;              /* the RESP command of the batch being sent */
    size_t waiting;            /* records in chunks */
    uint64_t seq;              /* of the newest chunk */
    uint64_t acked_seq;        /* every chunk up to this one is stored */
    int busy, full;            /* busy: parts of the head batch in flight */
    uint64_t retry_at_ms;      /* after an error reply */
    double sent_s;
    size_t call_entries;       /* a batch closes at this many entries:
                                * store.batch, fewer while calls take longer
                                * than store.call_ms */
    double entry_s;            /* seconds a call takes per entry (moving average) */
    uint64_t hash_seed;        /* merging records within a batch */
    char query_sha[41];        /* SHA1 of the query script (EVALSHA) */
    int script_loaded, script_loading;
    int module, module_asking; /* Redis has PDNSRELAY.INGEST (asked at each connect): */
    int module_missing;        /* masters asked that do not have it */
    int module_query;          /* and PDNSRELAY.QUERY: query pages go to it */
    int query_missing;         /* masters asked that do not have that */
    int module_sweep;          /* and PDNSRELAY.SWEEP: the expiry sweep's
                                * steps go to it */
    int sweep_missing;         /* masters asked that do not have that */
    int trees;                 /* the layout says ix-tree: only the module writes */
    int trees_told;            /* "the module is missing" logged once a connection */
    unsigned module_gen;       /* answers to an older asking are ignored */
    char sweep_cursor[32];     /* the expiry sweep's SCAN cursor */
    struct gone_member {       /* the sweep step's entries' address index */
        uint32_t off, len;     /* members in other shards (len 0: none), */
        uint8_t shard;         /* in gone_buf, and the shard of each */
    } *gone;
    size_t gone_n;
    pdns_buf gone_buf;
    struct sweep_call {        /* an expire call of the step: its */
        struct store *s;       /* shard's entries are gone[base...] */
        size_t base;
    } sweep_call[STORE_SHARDS_MAX];
    int sweep_calls;           /* the step's expire calls in flight */
    int sweep_busy;
    int sweep_shard;           /* a shard of the node being walked (its
                                * key routes the steps there) */
    uint64_t sweep_walked;     /* shards whose node this pass has walked,
                                * or is walking */
    int sweep_left;            /* steps this tick may still send */
    int sweep_broken;          /* an error ended a node's SCAN this pass */
    uint64_t sweep_at_ms, expired;
    uint64_t sweep_tick_end_ms; /* this tick's steps stop then */
    uint64_t sweep_pass_start_ms, sweep_pass_ms; /* the last whole pass */
    long long sweep_keys;      /* DBSIZE of the node the last step walked */
    /* counters */
    uint64_t stored, batches, duplicates, errors, dead, buffer_peak, unreplicated;
    pdns_hist lat;             /* time of one batch write */
    void (*on_drain)(void *ctx);
    void (*on_acked)(void *ctx);  /* a batch is in Redis (store_done moved) */
    void *ctx;
} store;

/* Connects (in the background) and gets ready to take records. Returns 0,
 * or -1 when out of memory. */
int store_init(store *s, const store_conf *c, uv_loop_t *loop,
               const char *relay_id, const int *stopping);

/* 1 while the store's Redis (every master of a cluster) is connected. */
int store_up(const store *s);

/* The shard of a name (0 on one server). */
int store_shard_of(const store *s, const char *name, size_t len);

/* The shard of n whose address index holds member ("<4|6><hex address>
 * ..."): a fixed hash of its /24 (IPv4) or /48 (IPv6), so that a lookup
 * of an address, or of a range inside one such prefix, asks one shard. */
int store_ip_shard(int n, const char *member, size_t len);

/* Marks in want[0..n) the shards whose address index may hold members
 * from a up to b (an address query's lex range): those of the prefixes
 * the range overlaps, or every shard when it overlaps more than 4n of
 * them. Returns how many are marked. */
int store_ip_range_shards(int n, const char *a, size_t alen, const char *b, size_t blen,
                          uint8_t want[STORE_SHARDS_MAX]);

/* What a store's st:layout says to a relay with nshards shards (1 on one
 * server): "shards <n>[ ip-by-prefix][ ip-name][ r-rel]" gives the flags below
 * (without ip-by-prefix a cluster keeps each address index member in its
 * name's shard; without ip-name a member is "<key> <rrtype> <rdata>
 * <name>"; without r-rel a suffix index member is the whole reversed
 * name, with it the part from the dot after its bucket), another
 * number of shards or word -1 (the relay must not write). */
#define STORE_LAYOUT_IP_BY_PREFIX 1
#define STORE_LAYOUT_IP_NAME 2
#define STORE_LAYOUT_R_REL 4
#define STORE_LAYOUT_IX_TREE 8
int store_layout_kind(const char *layout, int nshards);

/* What rep, Redis's answer to STORE_MODULE_ASK, says the server has of
 * the pdnsrelay module (relay/store/module/): STORE_MODULE_INGEST, _QUERY
 * (a module older than PDNSRELAY.QUERY has only INGEST), _TREES (loaded
 * with the argument trees), _SWEEP (PDNSRELAY.SWEEP: older modules lack
 * it); 0 without it. */
#define STORE_MODULE_INGEST 1
#define STORE_MODULE_QUERY 2
#define STORE_MODULE_TREES 4
#define STORE_MODULE_SWEEP 8
#define STORE_MODULE_ASK                                                                \
    "COMMAND INFO pdnsrelay.ingest pdnsrelay.query pdnsrelay.ixadd pdnsrelay.sweep"
struct redisReply;
int store_module_parts(const struct redisReply *rep);

/* The key prefix of shard k of n on a cluster, "{<tag>}": the tag is the
 * first "s<k>.<j>" whose slot is the middle of the k-th of n equal slot
 * ranges, so that the shards are spread evenly over the masters
 * redis-cli --cluster create makes. */
void store_shard_prefix(int k, int n, char out[16]);

/* Queues one record (an answer: not an error line). Returns 0, or -1 when
 * it cannot be kept (out of memory, or twice max_buffer reached by a
 * source that ignored store_full). */
int store_add(store *s, const pdns_record *r);

/* Sends what is queued now, even a partial batch. */
void store_flush(store *s);

/* Called every STORE_TICK_MS: flushes partial batches, retries, paces
 * the expiry sweep. */
#define STORE_TICK_MS 100
void store_tick(store *s);

/* A unit: the records queued between store_begin_unit and store_end_unit
 * go to Redis in one call, whatever their number, with a marker key (a
 * d4-core queue's) and the unit's id set in the same call; a unit whose
 * marker already holds its id is not applied again. A d4-core queue batch
 * read again after a crash is not stored twice. Units that follow each
 * other with the same key share one call (one EVAL, the ids of all of
 * them) while it holds fewer entries than a call takes (store.batch, or
 * fewer: store.call_ms), 16 times store.batch records and STORE_UNIT_MERGE
 * ids, as `import`'s lines do: store_end_unit
 * with more = 1 leaves the call open for the next unit (the caller knows
 * one is on its way), store_close_unit closes it. The marker keeps the
 * last STORE_UNIT_IDS_KEPT ids. store_end_unit returns a mark for
 * store_done (the same for units sharing a call). begin returns 0, or -1
 * when out of memory. */
#define STORE_UNIT_MERGE 8
#define STORE_UNIT_IDS_KEPT 32
int store_begin_unit(store *s, const char *key);
uint64_t store_end_unit(store *s, const char *id, int more);
void store_close_unit(store *s);

/* Entries a call takes now (store.batch, fewer while calls are slow), and
 * the entries of the batch being filled (the tail). */
size_t store_call_entries(const store *s);
size_t store_tail_entries(const store *s);

/* Sends what is queued and returns a mark: store_done(s, mark) is 1 once
 * every record queued before the call is in Redis. */
uint64_t store_barrier(store *s);
int store_done(const store *s, uint64_t mark);

/* 1 when sources should stop reading. */
int store_full(const store *s);

/* Records not yet acknowledged by Redis. */
size_t store_waiting(const store *s);

void store_stop(store *s);
void store_free(store *s);   /* once the loop has closed its handles */

int store_metrics(const store *s, pdns_buf *b);

/* The reversed-label form of a name ("www.example.com" ->
 * "com.example.www") used by the suffix index. Returns its length. */
size_t store_reverse_name(const char *name, size_t len, char *out);

/* The suffix index bucket of a reversed name: the length of its first two
 * labels ("com.example" of "com.example.www"). */
size_t store_rev_bucket(const char *rev, size_t len);

/* The bucket keys of the prefix index ("f:" and 4 hex digits of a fixed
 * hash of the first label) and of the rdata index ("d:" and a hash of the
 * rdata name). */
void store_fwd_bucket(const char *name, size_t len, char out[8]);
void store_rd_bucket(const char *rdata, size_t len, char out[8]);

/* The sort key of an address in the IP index: "4" and 8 hex digits, or
 * "6" and 32. Returns its length, or 0 when text is not an address. */
size_t store_ip_key(const char *text, size_t len, char out[34]);

/* One query page (relay/lua/store_query.lua). q must stay valid until fn
 * is called (the query is sent again, with the script, if Redis lost its
 * script cache). The reply is hiredis's:
 * an array {cursor, name, field, value, ...}, an error, or NULL when the
 * connection went away. Returns 0, or -1 when Redis is not connected. */
typedef struct store_query_args {
    const char *mode;          /* name, lex (one zset), lexn (bucket list) */
    const char *kind;          /* members: fwd, rev, ip, rd */
    char key[1100];            /* the zset (or bucket list) */
    const char *a, *b;         /* name, or the lex range */
    size_t alen, blen;
    const char *cursor;
    size_t cursor_len;
    const char *cursor_id;     /* numeric cursors (dribble): the next id */
    const char *binding;       /* numeric cursors: what they are bound to
                                * (the query, hex); one from another query
                                * is refused */
    size_t limit;
    char types[256];           /* ",1,28," or "" */
    int64_t tf_after, tf_before, tl_after, tl_before;
} store_query_args;

typedef void (*store_reply_fn)(void *reply, void *ctx);

int store_query(store *s, const store_query_args *q, store_reply_fn fn,
                void *ctx);

/* /info: the reply is an array {records, triples, names, errors, sensor,
 * count, sensor, count, ...}. */
int store_info(store *s, store_reply_fn fn, void *ctx);

#endif
