/* pool.h - the mixing pool: records in, shuffled batches out.
 *
 * Identical (rrname, rrtype, rdata) triples from any sensors merge into one
 * pooled triple (time_first = min, time_last = max, count = sum, the set of
 * distinct sensors). Each triple draws its own hold time when it enters
 * (hold_min plus an exponential jitter). At every epoch boundary (multiples
 * of `interval` on the clock, so that several mixers share epochs) the pool
 * may flush, as a timed dynamic pool mix:
 *
 *   eligible  = held long enough, and seen by >= min_sensors sensors with
 *               >= min_count observations;
 *   flush     only when at least min_batch triples are eligible;
 *   due       = eligible triples that would pass max_hold before the next
 *               epoch: always candidates;
 *   the rest  a random send_fraction of the other eligible triples, keeping
 *               at least pool_min of them back;
 *   quota     no sensor contributes more than sensor_quota of the batch (a
 *               triple seen by n sensors counts 1/n for each); what does not
 *               fit waits;
 *   output    times rounded outward to time_resolution, milliseconds never
 *               released, counts optionally rounded down to a power of two,
 *               and the batch shuffled (Fisher-Yates).
 *
 * A triple still in the pool at max_hold is dropped and counted: reason
 * "threshold" when it never reached min_sensors/min_count, "expired" when
 * it did but min_batch or the quota held it back. At the memory cap the
 * pool first flushes early what may go, then drops its oldest triples
 * ("capacity"). Dropped triples stay in the local store; they just are not
 * shared.
 *
 * Pure logic: the caller passes the clock (now_ms) to every call and owns
 * the random source; batches are handed to a callback. No I/O, no threads.
 * Every function that can fail returns 0 / -1 (or NULL). */
#ifndef PDNS_MIXER_POOL_H
#define PDNS_MIXER_POOL_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "record.h"
#include "rng.h"

typedef struct mixer_conf {
    int64_t interval_ms;      /* epoch length: flushes happen at multiples */
    uint32_t min_batch;       /* eligible triples needed for a flush */
    double send_fraction;     /* share of non-due eligible triples sent */
    uint32_t pool_min;        /* non-due eligible triples always kept back */
    int64_t hold_min_ms;      /* every triple waits at least this long */
    int64_t hold_jitter_ms;   /* plus an exponential delay of this mean */
    uint32_t min_sensors;     /* k: distinct sensors a triple needs */
    uint32_t min_orgs;        /* distinct organisations a triple needs (sensor_org) */
    uint64_t min_count;       /* observations a triple needs */
    int64_t max_hold_ms;      /* a triple leaves the pool by then */
    double sensor_quota;      /* max share of a batch from one sensor */
    int64_t time_resolution;  /* seconds; times rounded outward (1: off) */
    int count_buckets;        /* round counts down to a power of two */
    size_t max_triples;       /* memory cap: triples */
    size_t max_bytes;         /* memory cap: bytes (structs and strings) */
    /* sensor index -> organisation index (NULL: each sensor its own) */
    const uint16_t *sensor_org;
    size_t n_sensors;
} mixer_conf;

/* Safe defaults for an open stream: 10-minute epochs, k = 2,
 * times rounded to 6 hours (the privacy benchmark shows why). See
 * docs/guide.md for what each knob does to privacy. */
void mixer_conf_defaults(mixer_conf *c);

/* Checks a configuration. Returns 0, or -1 with a message in err. */
int mixer_conf_check(const mixer_conf *c, char *err, size_t errlen);

/* One released triple. rec's strings point into the batch. */
typedef struct mixer_entry {
    pdns_record rec;          /* coarsened times, maybe bucketed count */
    uint64_t raw_count;       /* the exact count before bucketing */
    const uint16_t *sensors;  /* the distinct sensors that saw it, sorted */
    uint16_t n_sensors;
    uint16_t n_orgs;          /* distinct organisations among them */
    int64_t first_seen_ms;    /* when the pool first saw it */
    int64_t eligible_ms;      /* first_seen + its random hold time */
    int64_t latency_ms;       /* release time - first_seen_ms */
    int64_t mix_delay_ms;     /* release time - when it met the thresholds:
                               * the delay the mixing itself added */
} mixer_entry;

/* What a batch tells about anonymity (see mixer_batch_stats). */
typedef struct mixer_stats {
    size_t size;
    size_t distinct_sensors;
    double entropy;           /* Shannon entropy H of the sensor shares, bits */
    double anonymity_set;     /* 2^H */
    double min_entropy;       /* -log2 of the largest sensor share */
    double max_share;         /* the largest sensor share */
    size_t held_back;         /* eligible triples kept in the pool */
    size_t dropped;           /* triples dropped since the last batch */
    int64_t latency_p50_ms, latency_p95_ms, latency_p99_ms; /* mix delay */
} mixer_stats;

typedef struct mixer_batch {
    uint64_t seq;             /* 1, 2, ... per pool */
    int64_t time_ms;          /* the flush time */
    int early;                /* flushed early at the memory cap */
    size_t n;
    mixer_entry *e;
    mixer_stats stats;
} mixer_batch;

/* Called with each batch; the batch is freed when it returns. */
typedef void (*mixer_batch_fn)(void *ctx, const mixer_batch *b);

/* Drop reasons, for counters. */
enum mixer_drop {
    MIXER_DROP_THRESHOLD = 0, MIXER_DROP_EXPIRED, MIXER_DROP_CAPACITY,
    MIXER_DROP_COUNT
};
const char *mixer_drop_name(enum mixer_drop d);

typedef struct mixer_counters {
    uint64_t inserted;        /* records in */
    uint64_t merged;          /* of which merged into a pooled triple */
    uint64_t released;        /* triples out */
    uint64_t batches;
    uint64_t early_flushes;
    uint64_t dropped[MIXER_DROP_COUNT];
    uint64_t dropped_count[MIXER_DROP_COUNT]; /* observations in them */
} mixer_counters;

typedef struct mixer_pool mixer_pool;

/* Creates a pool. conf is copied (sensor_org must outlive the pool);
 * rng is used, not owned. Returns NULL on bad conf or out of memory. */
mixer_pool *mixer_pool_new(const mixer_conf *conf, mixer_rng *rng,
                           mixer_batch_fn fn, void *ctx);
void mixer_pool_free(mixer_pool *p);

/* Adds one observation from sensor (an index < conf.n_sensors when a
 * sensor_org table is given). Only rrname, rrtype, rdata, times and count
 * of r are used. May run an early flush or drop at the memory cap.
 * Returns 0, or -1 (out of memory, or a name/rdata too long to pool). */
int mixer_pool_insert(mixer_pool *p, const pdns_record *r, uint16_t sensor,
                      int64_t now_ms);

/* Called for each triple the pool drops, with a view of it as an entry
 * (valid during the call) and the reason: for --explain and audits. */
typedef void (*mixer_drop_fn)(void *ctx, const mixer_entry *e,
                              enum mixer_drop why);
void mixer_pool_on_drop(mixer_pool *p, mixer_drop_fn fn, void *ctx);

/* Runs the flush due at now_ms, if an epoch boundary has passed, and
 * drops what has passed max_hold. Call it at least once per interval. */
void mixer_pool_tick(mixer_pool *p, int64_t now_ms);

/* Releases everything that may go, ignoring send_fraction, pool_min and
 * min_batch (thresholds, holds and quota still apply): for a drain at
 * shutdown or the end of a preview. */
void mixer_pool_flush_all(mixer_pool *p, int64_t now_ms);

size_t mixer_pool_triples(const mixer_pool *p);
size_t mixer_pool_bytes(const mixer_pool *p);
int64_t mixer_pool_next_flush(const mixer_pool *p);
const mixer_counters *mixer_pool_counters(const mixer_pool *p);

/* A pool across a restart. mixer_pool_save appends the pooled triples to
 * out (in pool order, each with its sensors as indexes, its times, its
 * count, when it was first seen, when its hold ends and when it qualified)
 * in a format only mixer_pool_restore reads. Returns 0, or -1 out of
 * memory. */
int mixer_pool_save(const mixer_pool *p, pdns_buf *out);

/* Adds the triples of a saved pool to an empty pool. map[i] is the index
 * now of the sensor that was index i when saved, or -1 when that sensor is
 * gone: its sightings are forgotten, and a triple no sensor is left for
 * is not restored. Hold times and first sightings are kept as they were
 * (the clock is the wall clock: now_ms), so nothing leaves earlier than it
 * would have; whether a triple qualifies is judged again under the pool's
 * configuration. Returns the number of triples restored, or -1 when data
 * is not a saved pool (nothing is added then). */
long mixer_pool_restore(mixer_pool *p, const uint8_t *data, size_t len, const int32_t *map,
                        size_t nmap, int64_t now_ms);

/* The anonymity figures of a set of entries (a batch): each entry gives
 * 1/n to each of its n sensors; shares are over the batch size. */
void mixer_batch_stats(const mixer_entry *e, size_t n, mixer_stats *s);

#endif
