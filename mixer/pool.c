/* pool.c - the mixing pool. See pool.h for the rules.
 *
 * A pooled triple is one allocation: the struct, then its key bytes
 * (rrname, NUL, rrtype little-endian, rdata), which are also what the hash
 * (SipHash-2-4 via crypto_shorthash, with a per-pool random key) covers,
 * so a crafted name cannot predict slots. Triples sit in an open-addressing
 * hash table (linear probing, at most 3/4 full, deletion by backward
 * shift) whose 8-byte slots hold the triple's pointer and, in the 16 bits
 * a user-space pointer leaves free, an 8-bit tag from the hash and the
 * slot's distance from its home slot: a probe that meets another key
 * almost never touches that triple's memory, nor does a deletion that
 * shifts the rest of a run back. Triples
 * are also in one of two lists: "waiting" (not yet seen by k sensors, in
 * arrival order: expiry walks it from the oldest) and "ready" (qualified,
 * in qualification order: the only triples a flush has to look at, and
 * where it drops those past max_hold). The memory cap drops from the front
 * of "waiting" first. */
#include "pool.h"

#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define INLINE_SENSORS 4
#define MALLOC_OVERHEAD 16
#define MAX_KEY (1100 + 2 + 65536)

typedef struct triple {
    struct triple *prev, *next;   /* arrival order */
    uint16_t *sensors_ext;        /* when more than INLINE_SENSORS */
    int64_t first_seen_ms;
    int64_t eligible_ms;          /* first_seen + its hold time */
    int64_t qualified_ms;         /* when it met min_sensors/min_count */
    uint64_t count;
    uint32_t time_first, time_last;
    uint16_t sensors_in[INLINE_SENSORS];
    uint16_t n_sensors, cap_sensors;
    uint16_t rrtype, name_len;
    uint32_t rdata_len;
    uint32_t hash;                /* low bits of the key's hash: its home slot */
    char key[];                   /* rrname \0 rrtype(2) rdata */
} triple;

typedef struct tlist {
    triple *head, *tail;
} tlist;

#define NOT_QUALIFIED INT64_MIN

struct mixer_pool {
    mixer_conf conf;
    mixer_rng *rng;
    mixer_batch_fn fn;
    void *ctx;
    mixer_drop_fn drop_fn;
    void *drop_ctx;
    uint8_t hkey[crypto_shorthash_KEYBYTES];
    uint64_t *slots;              /* 0, or tag << 48 | pointer */
    size_t nslots;                /* a power of two */
    size_t n;
    size_t bytes;
    tlist waiting;                /* not qualified, oldest first */
    tlist ready;                  /* qualified, in qualification order */
    int64_t next_flush_ms;        /* 0 until the clock is first seen */
    int64_t last_now_ms;
    int64_t last_early_ms;
    uint64_t seq;
    uint64_t dropped_since_batch;
    mixer_counters c;
    double *contrib;              /* per sensor, for the quota (65536) */
    triple **elig;                /* flush work arrays, kept between */
    mixer_entry *entries;         /* flushes (no page faults each time) */
    int64_t *lat;
    size_t elig_cap, entries_cap, lat_cap;
    uint8_t *scratch;             /* key composition */
};

static const char *drop_names[MIXER_DROP_COUNT] = {"threshold", "expired",
                                                   "capacity"};

const char *mixer_drop_name(enum mixer_drop d) {
    return (unsigned)d < MIXER_DROP_COUNT ? drop_names[d] : "unknown";
}

void mixer_conf_defaults(mixer_conf *c) {
    memset(c, 0, sizeof(*c));
    c->interval_ms = 600000;       /* 10 minutes */
    c->min_batch = 50;
    c->send_fraction = 0.8;
    c->pool_min = 10;
    c->hold_min_ms = 30000;
    c->hold_jitter_ms = 120000;
    c->min_sensors = 2;
    c->min_orgs = 1;
    c->min_count = 1;
    c->max_hold_ms = 6 * 3600000;  /* 6 hours */
    c->sensor_quota = 0.5;
    c->time_resolution = 21600;    /* 6 h: see tests/bench/bench_privacy */
    c->count_buckets = 1;
    c->max_triples = 2000000;
    c->max_bytes = 512u << 20;
}

int mixer_conf_check(const mixer_conf *c, char *err, size_t errlen) {
    const char *why = NULL;
    if (c->interval_ms < 1)
        why = "interval must be positive";
    else if (c->send_fraction <= 0 || c->send_fraction > 1)
        why = "send_fraction must be in (0, 1]";
    else if (c->hold_min_ms < 0 || c->hold_jitter_ms < 0)
        why = "hold times must not be negative";
    else if (c->max_hold_ms <= c->interval_ms)
        why = "max_hold must be longer than interval";
    else if (c->max_hold_ms <= c->hold_min_ms)
        why = "max_hold must be longer than hold_min";
    else if (c->sensor_quota <= 0 || c->sensor_quota > 1)
        why = "sensor_quota must be in (0, 1]";
    else if (c->time_resolution < 1)
        why = "time_resolution must be at least 1 second";
    else if (c->max_triples < 1 || c->max_bytes < 4096)
        why = "the memory caps are too small";
    else if (c->n_sensors > 65536)
        why = "at most 65536 sensors";
    if (why)
        snprintf(err, errlen, "%s", why);
    return why ? -1 : 0;
}

/* ---- triples ------------------------------------------------------------- */

static uint16_t *sensors_of(triple *t) {
    return t->cap_sensors > INLINE_SENSORS ? t->sensors_ext : t->sensors_in;
}

static size_t key_len(const triple *t) {
    return (size_t)t->name_len + 3 + t->rdata_len;
}

static size_t triple_bytes(const triple *t) {
    size_t b = sizeof(triple) + key_len(t) + MALLOC_OVERHEAD;
    if (t->cap_sensors > INLINE_SENSORS)
        b += t->cap_sensors * sizeof(uint16_t) + MALLOC_OVERHEAD;
    return b;
}

static uint64_t hash_key(const mixer_pool *p, const uint8_t *k, size_t len) {
    uint64_t h;
    crypto_shorthash((unsigned char *)&h, k, len, p->hkey);
    return h;
}

/* Adds sensor s to t's sorted set. Returns 0, or -1 out of memory. */
static int add_sensor(mixer_pool *p, triple *t, uint16_t s) {
    uint16_t *v = sensors_of(t);
    size_t lo = 0, hi = t->n_sensors;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (v[mid] < s)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < t->n_sensors && v[lo] == s)
        return 0;
    if (t->n_sensors == UINT16_MAX)
        return 0; /* saturated: k can never be that high anyway */
    if (t->n_sensors == t->cap_sensors) {
        size_t cap = t->cap_sensors * 2u;
        if (cap > UINT16_MAX)
            cap = UINT16_MAX;
        uint16_t *nv = malloc(cap * sizeof(uint16_t));
        if (!nv)
            return -1;
        memcpy(nv, v, t->n_sensors * sizeof(uint16_t));
        p->bytes -= triple_bytes(t);
        if (t->cap_sensors > INLINE_SENSORS)
            free(t->sensors_ext);
        t->sensors_ext = nv;
        t->cap_sensors = (uint16_t)cap;
        p->bytes += triple_bytes(t);
        v = nv;
    }
    memmove(v + lo + 1, v + lo, (t->n_sensors - lo) * sizeof(uint16_t));
    v[lo] = s;
    t->n_sensors++;
    return 0;
}

static void list_unlink(tlist *l, triple *t) {
    if (t->prev)
        t->prev->next = t->next;
    else
        l->head = t->next;
    if (t->next)
        t->next->prev = t->prev;
    else
        l->tail = t->prev;
    t->prev = t->next = NULL;
}

static void list_push(tlist *l, triple *t) {
    t->next = NULL;
    t->prev = l->tail;
    if (l->tail)
        l->tail->next = t;
    else
        l->head = t;
    l->tail = t;
}

static tlist *list_of(mixer_pool *p, const triple *t) {
    return t->qualified_ms == NOT_QUALIFIED ? &p->waiting : &p->ready;
}

#define PTR_BITS 48
#define PTR_MASK ((UINT64_C(1) << PTR_BITS) - 1)
#define TAG_MASK (UINT64_C(0xff) << PTR_BITS)
#define DIST_SHIFT 56
#define DIST_FAR 255                  /* this far or farther: ask the triple */

static triple *slot_triple(uint64_t s) {
    return (triple *)(uintptr_t)(s & PTR_MASK);
}

static uint64_t tag_of(uint64_t h) {
    return (h >> 8) & TAG_MASK; /* bits 56..63 of the hash, as 48..55 */
}

/* The slot for t at index i, its home slot being home. */
static uint64_t slot_make(const triple *t, uint64_t tag, size_t i, size_t home,
                          size_t mask) {
    size_t d = (i - home) & mask;
    return (uint64_t)(uintptr_t)t | tag |
           (uint64_t)(d < DIST_FAR ? d : DIST_FAR) << DIST_SHIFT;
}

static size_t slot_home(uint64_t s, size_t i, size_t mask) {
    size_t d = (size_t)(s >> DIST_SHIFT);
    return d < DIST_FAR ? (i - d) & mask : slot_triple(s)->hash & mask;
}

/* Removes t's slot, shifting later slots of the same run back so that
 * every triple stays reachable from its home slot. */
static void hash_unlink(mixer_pool *p, triple *t) {
    size_t mask = p->nslots - 1, i = t->hash & mask;
    while (p->slots[i] && slot_triple(p->slots[i]) != t)
        i = (i + 1) & mask;
    if (!p->slots[i])
        return;
    for (size_t j = i;;) {
        j = (j + 1) & mask;
        uint64_t sj = p->slots[j];
        if (!sj)
            break;
        size_t home = slot_home(sj, j, mask);
        /* j's triple may move to i unless its home lies in (i, j] */
        int stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!stays) {
            p->slots[i] = slot_make(slot_triple(sj), sj & TAG_MASK, i, home, mask);
            i = j;
        }
    }
    p->slots[i] = 0;
}

/* Takes t out of the pool (it is freed by the caller or a batch). */
static void detach(mixer_pool *p, triple *t) {
    hash_unlink(p, t);
    list_unlink(list_of(p, t), t);
    p->n--;
    p->bytes -= triple_bytes(t);
}

static void triple_free(triple *t) {
    if (t->cap_sensors > INLINE_SENSORS)
        free(t->sensors_ext);
    free(t);
}

/* Distinct organisations among t's sensors, counted up to `enough`. */
static uint32_t distinct_orgs(const mixer_pool *p, triple *t, uint32_t enough) {
    const uint16_t *v = sensors_of(t);
    uint32_t n = 0;
    for (size_t a = 0; a < t->n_sensors && n < enough; a++) {
        uint16_t oa = p->conf.sensor_org && v[a] < p->conf.n_sensors ? p->conf.sensor_org[v[a]]
                                                                    : v[a];
        size_t b;
        for (b = 0; b < a; b++) {
            uint16_t ob = p->conf.sensor_org && v[b] < p->conf.n_sensors
                              ? p->conf.sensor_org[v[b]] : v[b];
            if (ob == oa)
                break;
        }
        n += b == a;
    }
    return n;
}

static int meets_thresholds(const mixer_pool *p, triple *t) {
    return t->n_sensors >= p->conf.min_sensors && t->count >= p->conf.min_count &&
           (p->conf.min_orgs < 2 || distinct_orgs(p, t, p->conf.min_orgs) >= p->conf.min_orgs);
}

static void entry_view(const triple *t, mixer_entry *e);

static void drop(mixer_pool *p, triple *t, enum mixer_drop why) {
    if (p->drop_fn) {
        mixer_entry e;
        entry_view(t, &e);
        p->drop_fn(p->drop_ctx, &e, why);
    }
    p->c.dropped[why]++;
    p->c.dropped_count[why] += t->count;
    p->dropped_since_batch++;
    detach(p, t);
    triple_free(t);
}

/* Doubles the table. The home slot comes from the 32 stored hash bits:
 * enough, since mixer.max_triples (at most 10^9) keeps it under 2^31. */
static int grow(mixer_pool *p) {
    size_t ns = p->nslots * 2;
    uint64_t *b = calloc(ns, sizeof(*b));
    if (!b)
        return -1;
    for (size_t i = 0; i < p->nslots; i++) {
        uint64_t s = p->slots[i];
        if (!s)
            continue;
        size_t home = slot_triple(s)->hash & (ns - 1), j = home;
        while (b[j])
            j = (j + 1) & (ns - 1);
        b[j] = slot_make(slot_triple(s), s & TAG_MASK, j, home, ns - 1);
    }
    p->bytes += (ns - p->nslots) * sizeof(*b);
    free(p->slots);
    p->slots = b;
    p->nslots = ns;
    return 0;
}

/* ---- pool ---------------------------------------------------------------- */

mixer_pool *mixer_pool_new(const mixer_conf *conf, mixer_rng *rng,
                           mixer_batch_fn fn, void *ctx) {
    char err[128];
    if (mixer_conf_check(conf, err, sizeof(err)) < 0)
        return NULL;
    mixer_pool *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->conf = *conf;
    p->rng = rng;
    p->fn = fn;
    p->ctx = ctx;
    p->nslots = 1024;
    p->slots = calloc(p->nslots, sizeof(*p->slots));
    p->contrib = calloc(65536, sizeof(double));
    p->scratch = malloc(MAX_KEY);
    if (!p->slots || !p->contrib || !p->scratch) {
        mixer_pool_free(p);
        return NULL;
    }
    p->bytes = p->nslots * sizeof(*p->slots);
    for (size_t i = 0; i < sizeof(p->hkey); i += 8) {
        uint64_t v = mixer_rng_u64(rng);
        memcpy(p->hkey + i, &v, 8);
    }
    return p;
}

void mixer_pool_free(mixer_pool *p) {
    if (!p)
        return;
    for (int l = 0; l < 2; l++) {
        triple *t = l ? p->ready.head : p->waiting.head;
        while (t) {
            triple *next = t->next;
            triple_free(t);
            t = next;
        }
    }
    free(p->slots);
    free(p->contrib);
    free(p->scratch);
    free(p->elig);
    free(p->entries);
    free(p->lat);
    free(p);
}

void mixer_pool_on_drop(mixer_pool *p, mixer_drop_fn fn, void *ctx) {
    p->drop_fn = fn;
    p->drop_ctx = ctx;
}

/* The raw facts of a triple (uncoarsened), for drop reports. */
static void entry_view(const triple *t, mixer_entry *e) {
    memset(e, 0, sizeof(*e));
    e->rec.rrname.p = t->key;
    e->rec.rrname.len = t->name_len;
    e->rec.rdata.p = t->key + t->name_len + 3;
    e->rec.rdata.len = t->rdata_len;
    e->rec.rrtype = t->rrtype;
    e->rec.time_first = t->time_first;
    e->rec.time_last = t->time_last;
    e->rec.count = e->raw_count = t->count;
    e->sensors = t->cap_sensors > INLINE_SENSORS ? t->sensors_ext : t->sensors_in;
    e->n_sensors = t->n_sensors;
    e->first_seen_ms = t->first_seen_ms;
    e->eligible_ms = t->eligible_ms;
}

size_t mixer_pool_triples(const mixer_pool *p) {
    return p->n;
}

size_t mixer_pool_bytes(const mixer_pool *p) {
    return p->bytes;
}

int64_t mixer_pool_next_flush(const mixer_pool *p) {
    return p->next_flush_ms;
}

const mixer_counters *mixer_pool_counters(const mixer_pool *p) {
    return &p->c;
}

static int64_t boundary_after(const mixer_pool *p, int64_t now) {
    int64_t iv = p->conf.interval_ms;
    int64_t q = now / iv;
    if (now < 0 && now % iv)
        q--;
    return (q + 1) * iv;
}

/* The clock never runs backwards for the pool. */
static int64_t clock_of(mixer_pool *p, int64_t now) {
    if (now < p->last_now_ms)
        now = p->last_now_ms;
    p->last_now_ms = now;
    if (!p->next_flush_ms)
        p->next_flush_ms = boundary_after(p, now);
    return now;
}

static uint32_t clamp_u32(int64_t v) {
    return v < 0 ? 0 : v > (int64_t)UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

static void flush(mixer_pool *p, int64_t now, int mode);
static void enforce_cap(mixer_pool *p, int64_t now);

enum { FLUSH_EPOCH, FLUSH_EARLY, FLUSH_ALL };

int mixer_pool_insert(mixer_pool *p, const pdns_record *r, uint16_t sensor,
                      int64_t now) {
    size_t klen = r->rrname.len + 3 + r->rdata.len;
    if (r->rrname.len > 1100 || r->rdata.len > 65535 || klen > MAX_KEY)
        return -1;
    now = clock_of(p, now);
    uint8_t *k = p->scratch;
    memcpy(k, r->rrname.p, r->rrname.len);
    k[r->rrname.len] = 0;
    k[r->rrname.len + 1] = (uint8_t)(r->rrtype & 0xff);
    k[r->rrname.len + 2] = (uint8_t)(r->rrtype >> 8);
    memcpy(k + r->rrname.len + 3, r->rdata.p, r->rdata.len);
    uint64_t h = hash_key(p, k, klen);
    uint64_t tag = tag_of(h);
    size_t mask = p->nslots - 1, i = h & mask;
    uint32_t tf = clamp_u32(r->time_first), tl = clamp_u32(r->time_last);
    uint64_t cnt = r->count ? pdns_count_clamp(r->count) : 1;
    p->c.inserted++;

    for (; p->slots[i]; i = (i + 1) & mask) {
        if ((p->slots[i] & TAG_MASK) != tag)
            continue;
        triple *t = slot_triple(p->slots[i]);
        if (key_len(t) != klen || memcmp(t->key, k, klen) != 0)
            continue;
        if (tf < t->time_first)
            t->time_first = tf;
        if (tl > t->time_last)
            t->time_last = tl;
        t->count = pdns_count_add(t->count, cnt);
        p->c.merged++;
        int rc = add_sensor(p, t, sensor);
        if (t->qualified_ms == NOT_QUALIFIED && meets_thresholds(p, t)) {
            list_unlink(&p->waiting, t);
            t->qualified_ms = now;
            list_push(&p->ready, t);
        }
        return rc;
    }

    triple *t = malloc(sizeof(triple) + klen);
    if (!t)
        return -1;
    if ((uint64_t)(uintptr_t)t & ~PTR_MASK) { /* no user-space pointer is */
        free(t);
        return -1;
    }
    memset(t, 0, sizeof(*t));
    memcpy(t->key, k, klen);
    t->name_len = (uint16_t)r->rrname.len;
    t->rdata_len = (uint32_t)r->rdata.len;
    t->rrtype = r->rrtype;
    t->hash = (uint32_t)h;
    t->time_first = tf;
    t->time_last = tl < tf ? tf : tl;
    t->count = cnt;
    t->first_seen_ms = now;
    t->eligible_ms = now + p->conf.hold_min_ms +
                     (int64_t)mixer_rng_exp(p->rng, (double)p->conf.hold_jitter_ms);
    t->cap_sensors = INLINE_SENSORS;
    t->sensors_in[0] = sensor;
    t->n_sensors = 1;
    t->qualified_ms = meets_thresholds(p, t) ? now : NOT_QUALIFIED;
    p->slots[i] = slot_make(t, tag, i, h & mask, mask);
    list_push(list_of(p, t), t);
    p->n++;
    p->bytes += triple_bytes(t);
    if (p->n * 4 > p->nslots * 3 && grow(p) < 0)
        return -1;
    if (p->n > p->conf.max_triples || p->bytes > p->conf.max_bytes)
        enforce_cap(p, now);
    return 0;
}

/* Drops the waiting triples that have passed max_hold (oldest first).
 * Ready ones are checked by the flush, which walks them anyway. */
static void expire(mixer_pool *p, int64_t now) {
    while (p->waiting.head &&
           now - p->waiting.head->first_seen_ms >= p->conf.max_hold_ms)
        drop(p, p->waiting.head, MIXER_DROP_THRESHOLD);
}

static void shuffle(mixer_pool *p, void **v, size_t n) {
    for (size_t i = n; i > 1; i--) {
        size_t j = mixer_rng_uniform(p->rng, (uint32_t)i);
        void *tmp = v[i - 1];
        v[i - 1] = v[j];
        v[j] = tmp;
    }
}

/* Selection of the k-th smallest (k < n), in place: average O(n). */
static int64_t kth(int64_t *v, size_t n, size_t k) {
    size_t lo = 0, hi = n - 1;
    while (lo < hi) {
        int64_t pivot = v[lo + (hi - lo) / 2];
        size_t i = lo, j = hi;
        while (i <= j) {
            while (v[i] < pivot)
                i++;
            while (v[j] > pivot)
                j--;
            if (i <= j) {
                int64_t t = v[i];
                v[i] = v[j];
                v[j] = t;
                i++;
                if (j == 0)
                    break;
                j--;
            }
        }
        if (k <= j)
            hi = j;
        else if (k >= i)
            lo = i;
        else
            return v[k];
    }
    return v[k];
}

static void batch_stats(const mixer_entry *e, size_t n, mixer_stats *s,
                        int64_t *lat) {
    memset(s, 0, sizeof(*s));
    s->size = n;
    if (!n || !lat)
        return;
    /* sensor shares: a sparse accumulation over the batch's sensors */
    size_t cap = 64, used = 0;
    uint16_t *ids = malloc(cap * sizeof(uint16_t));
    double *w = malloc(cap * sizeof(double));
    if (!ids || !w)
        goto out;
    for (size_t i = 0; i < n; i++) {
        lat[i] = e[i].mix_delay_ms;
        for (size_t k = 0; k < e[i].n_sensors; k++) {
            size_t j;
            for (j = 0; j < used && ids[j] != e[i].sensors[k]; j++)
                ;
            if (j == used) {
                if (used == cap) {
                    cap *= 2;
                    uint16_t *ni = realloc(ids, cap * sizeof(uint16_t));
                    if (ni)
                        ids = ni;
                    double *nw = realloc(w, cap * sizeof(double));
                    if (nw)
                        w = nw;
                    if (!ni || !nw)
                        goto out;
                }
                ids[used] = e[i].sensors[k];
                w[used++] = 0;
            }
            w[j] += 1.0 / e[i].n_sensors;
        }
    }
    s->distinct_sensors = used;
    for (size_t j = 0; j < used; j++) {
        double ps = w[j] / (double)n;
        if (ps > 0)
            s->entropy -= ps * log2(ps);
        if (ps > s->max_share)
            s->max_share = ps;
    }
    s->anonymity_set = pow(2.0, s->entropy);
    s->min_entropy = s->max_share > 0 ? -log2(s->max_share) : 0;
    s->latency_p99_ms = kth(lat, n, (n - 1) * 99 / 100);
    s->latency_p95_ms = kth(lat, n, (n - 1) * 95 / 100);
    s->latency_p50_ms = kth(lat, n, (n - 1) * 50 / 100);
out:
    free(ids);
    free(w);
}

void mixer_batch_stats(const mixer_entry *e, size_t n, mixer_stats *s) {
    int64_t *lat = malloc((n ? n : 1) * sizeof(int64_t));
    batch_stats(e, n, s, lat);
    free(lat);
}

/* A latency scratch array of n, kept between flushes; NULL out of memory
 * (then the batch has no latency figures). */
static int64_t *lat_buf(mixer_pool *p, size_t n) {
    if (n > p->lat_cap) {
        int64_t *nl = realloc(p->lat, n * sizeof(int64_t));
        if (!nl)
            return NULL;
        p->lat = nl;
        p->lat_cap = n;
    }
    return p->lat;
}

static uint64_t bucket_count(uint64_t c) {
    uint64_t b = 1;
    while (b <= c / 2)
        b *= 2;
    return c ? b : 0;
}

/* Hands the chosen triples over as one shuffled, coarsened batch. */
static void emit(mixer_pool *p, triple **chosen, size_t n, int64_t now,
                 size_t held_back, int early) {
    mixer_batch b;
    memset(&b, 0, sizeof(b));
    if (n > p->entries_cap) {
        mixer_entry *ne = realloc(p->entries, n * sizeof(mixer_entry));
        if (!ne) /* cannot build the batch: they stay in the pool */
            return;
        p->entries = ne;
        p->entries_cap = n;
    }
    b.e = p->entries;
    memset(b.e, 0, n * sizeof(mixer_entry));
    shuffle(p, (void **)chosen, n);
    int64_t res = p->conf.time_resolution;
    for (size_t i = 0; i < n; i++) {
        triple *t = chosen[i];
        mixer_entry *e = &b.e[i];
        detach(p, t);
        e->rec.rrname.p = t->key;
        e->rec.rrname.len = t->name_len;
        e->rec.rdata.p = t->key + t->name_len + 3;
        e->rec.rdata.len = t->rdata_len;
        e->rec.rrtype = t->rrtype;
        e->rec.time_first = (int64_t)t->time_first / res * res;
        e->rec.time_last = ((int64_t)t->time_last + res - 1) / res * res;
        e->rec.has_ms = 0;
        e->raw_count = t->count;
        e->rec.count = p->conf.count_buckets ? bucket_count(t->count) : t->count;
        e->sensors = sensors_of(t);
        e->n_sensors = t->n_sensors;
        e->first_seen_ms = t->first_seen_ms;
        e->eligible_ms = t->eligible_ms;
        e->latency_ms = now - t->first_seen_ms;
        /* what the mixing itself added: from the later of the triple's
         * qualification (k sensors, min_count) and now-eligibility */
        e->mix_delay_ms = now - (t->qualified_ms > t->first_seen_ms ? t->qualified_ms
                                                                     : t->first_seen_ms);
        /* distinct organisations */
        uint16_t orgs = 0;
        for (size_t a = 0; a < t->n_sensors; a++) {
            uint16_t oa = p->conf.sensor_org && e->sensors[a] < p->conf.n_sensors
                              ? p->conf.sensor_org[e->sensors[a]] : e->sensors[a];
            size_t c;
            for (c = 0; c < a; c++) {
                uint16_t oc = p->conf.sensor_org && e->sensors[c] < p->conf.n_sensors
                                  ? p->conf.sensor_org[e->sensors[c]] : e->sensors[c];
                if (oc == oa)
                    break;
            }
            if (c == a)
                orgs++;
        }
        e->n_orgs = orgs;
    }
    b.seq = ++p->seq;
    b.time_ms = now;
    b.early = early;
    b.n = n;
    batch_stats(b.e, n, &b.stats, lat_buf(p, n));
    b.stats.held_back = held_back;
    b.stats.dropped = p->dropped_since_batch;
    p->dropped_since_batch = 0;
    p->c.released += n;
    p->c.batches++;
    if (early)
        p->c.early_flushes++;
    p->fn(p->ctx, &b);
    for (size_t i = 0; i < n; i++)
        triple_free(chosen[i]);
}

/* Greedy selection under the quota, then a repair pass so that the final
 * batch meets it exactly: contrib[s] <= quota * |batch| for every s. */
static size_t apply_quota(mixer_pool *p, triple **c, size_t n) {
    double q = p->conf.sensor_quota;
    if (q >= 1.0 || n == 0)
        return n;
    double *contrib = p->contrib;
    double cap = q * (double)n;
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        triple *t = c[i];
        uint16_t *s = sensors_of(t);
        double w = 1.0 / t->n_sensors;
        int ok = 1;
        for (size_t k = 0; k < t->n_sensors && ok; k++)
            ok = contrib[s[k]] + w <= cap + 1e-9;
        if (!ok)
            continue;
        for (size_t k = 0; k < t->n_sensors; k++)
            contrib[s[k]] += w;
        c[kept++] = t;
    }
    /* repair: the batch may be smaller than planned */
    for (;;) {
        size_t worst_i = kept;
        for (size_t i = kept; i-- > 0 && worst_i == kept;) {
            uint16_t *s = sensors_of(c[i]);
            for (size_t k = 0; k < c[i]->n_sensors; k++)
                if (contrib[s[k]] > q * (double)kept + 1e-9) {
                    worst_i = i;
                    break;
                }
        }
        if (worst_i == kept)
            break;
        triple *t = c[worst_i];
        uint16_t *s = sensors_of(t);
        for (size_t k = 0; k < t->n_sensors; k++)
            contrib[s[k]] -= 1.0 / t->n_sensors;
        memmove(c + worst_i, c + worst_i + 1, (kept - worst_i - 1) * sizeof(*c));
        kept--;
    }
    /* reset what this batch touched */
    for (size_t i = 0; i < n; i++) {
        uint16_t *s = sensors_of(c[i]);
        for (size_t k = 0; k < c[i]->n_sensors; k++)
            contrib[s[k]] = 0;
    }
    return kept;
}

static void flush(mixer_pool *p, int64_t now, int mode) {
    expire(p, now);
    if (!p->n)
        return;
    if (p->n > p->elig_cap) {
        triple **ne = realloc(p->elig, p->n * sizeof(*ne));
        if (!ne)
            return;
        p->elig = ne;
        p->elig_cap = p->n;
    }
    triple **elig = p->elig;
    size_t ndue = 0, nother = 0, cap = p->n; /* p->n drops as we drop */
    int64_t next = boundary_after(p, now);
    /* due ones at the front, the others at the back, then joined */
    for (triple *t = p->ready.head, *tn; t; t = tn) {
        tn = t->next;
        if (now - t->first_seen_ms >= p->conf.max_hold_ms) {
            drop(p, t, MIXER_DROP_EXPIRED);
            continue;
        }
        if (now < t->eligible_ms)
            continue;
        if (next - t->first_seen_ms >= p->conf.max_hold_ms)
            elig[ndue++] = t;
        else
            elig[cap - ++nother] = t;
    }
    memmove(elig + ndue, elig + cap - nother, nother * sizeof(*elig));
    size_t ne = ndue + nother;
    if (ne == 0 || (mode != FLUSH_ALL && ne < p->conf.min_batch))
        return;
    size_t others = ne - ndue, take = others;
    if (mode == FLUSH_EPOCH) {
        take = (size_t)floor(p->conf.send_fraction * (double)others);
        if (others < p->conf.pool_min)
            take = 0;
        else if (others - take < p->conf.pool_min)
            take = others - p->conf.pool_min;
    }
    /* a uniform random subset of `take` others: a partial Fisher-Yates */
    void **o = (void **)(elig + ndue);
    for (size_t i = 0; i < take && take < others; i++) {
        size_t j = i + mixer_rng_uniform(p->rng, (uint32_t)(others - i));
        void *tmp = o[i];
        o[i] = o[j];
        o[j] = tmp;
    }
    size_t n = apply_quota(p, elig, ndue + take);
    if (n)
        emit(p, elig, n, now, ne - n, mode == FLUSH_EARLY);
}

static void enforce_cap(mixer_pool *p, int64_t now) {
    /* an early flush scans the pool: at most one a second */
    if (!p->last_early_ms || now - p->last_early_ms >= 1000) {
        p->last_early_ms = now;
        flush(p, now, FLUSH_EARLY);
    }
    /* then the oldest of those that may never go, then the oldest ready */
    while ((p->waiting.head || p->ready.head) &&
           (p->n > p->conf.max_triples || p->bytes > p->conf.max_bytes))
        drop(p, p->waiting.head ? p->waiting.head : p->ready.head,
             MIXER_DROP_CAPACITY);
}

void mixer_pool_tick(mixer_pool *p, int64_t now) {
    now = clock_of(p, now);
    if (now >= p->next_flush_ms) {
        flush(p, now, FLUSH_EPOCH);
        p->next_flush_ms = boundary_after(p, now);
    } else {
        expire(p, now);
    }
}

void mixer_pool_flush_all(mixer_pool *p, int64_t now) {
    now = clock_of(p, now);
    flush(p, now, FLUSH_ALL);
}

/* ---- across a restart ------------------------------------------------------ */

#define SAVE_MAGIC "pdns-relay mixer pool 1\n"

typedef struct saved_triple {
    int64_t first_seen_ms, eligible_ms, qualified_ms;
    uint64_t count;
    uint32_t time_first, time_last, rdata_len;
    uint16_t rrtype, name_len, n_sensors, pad;
} saved_triple;

int mixer_pool_save(const mixer_pool *p, pdns_buf *out) {
    uint64_t n = p->n;
    if (pdns_buf_append(out, SAVE_MAGIC, sizeof(SAVE_MAGIC) - 1) < 0 ||
        pdns_buf_append(out, &n, sizeof(n)) < 0)
        return -1;
    for (int l = 0; l < 2; l++)
        for (const triple *t = l ? p->ready.head : p->waiting.head; t; t = t->next) {
            saved_triple st = {t->first_seen_ms, t->eligible_ms, t->qualified_ms, t->count,
                               t->time_first, t->time_last, t->rdata_len, t->rrtype,
                               t->name_len, t->n_sensors, 0};
            const uint16_t *v = t->cap_sensors > INLINE_SENSORS ? t->sensors_ext
                                                                : t->sensors_in;
            if (pdns_buf_append(out, &st, sizeof(st)) < 0 ||
                pdns_buf_append(out, v, t->n_sensors * sizeof(uint16_t)) < 0 ||
                pdns_buf_append(out, t->key, key_len(t)) < 0)
                return -1;
        }
    return 0;
}

/* The pooled triple with this key, or NULL. */
static triple *lookup(mixer_pool *p, const uint8_t *k, size_t klen) {
    uint64_t h = hash_key(p, k, klen), tag = tag_of(h);
    size_t mask = p->nslots - 1;
    for (size_t i = h & mask; p->slots[i]; i = (i + 1) & mask) {
        triple *t = slot_triple(p->slots[i]);
        if ((p->slots[i] & TAG_MASK) == tag && key_len(t) == klen && memcmp(t->key, k, klen) == 0)
            return t;
    }
    return NULL;
}

long mixer_pool_restore(mixer_pool *p, const uint8_t *data, size_t len, const int32_t *map,
                        size_t nmap, int64_t now_ms) {
    size_t off = sizeof(SAVE_MAGIC) - 1;
    uint64_t n;
    if (p->n || len < off + 8 || memcmp(data, SAVE_MAGIC, off) != 0)
        return -1;
    memcpy(&n, data + off, 8);
    off += 8;
    /* the whole snapshot is checked before anything is added */
    size_t at = off;
    for (uint64_t i = 0; i < n; i++) {
        saved_triple st;
        if (len - at < sizeof(st))
            return -1;
        memcpy(&st, data + at, sizeof(st));
        size_t klen = (size_t)st.name_len + 3 + st.rdata_len;
        size_t need = st.n_sensors * sizeof(uint16_t) + klen;
        if (st.n_sensors == 0 || st.name_len > 1100 || st.rdata_len > 65535 ||
            len - at - sizeof(st) < need || data[at + sizeof(st) + st.n_sensors * 2 +
                                                 st.name_len] != 0)
            return -1;
        at += sizeof(st) + need;
    }
    if (at != len)
        return -1;
    long restored = 0;
    pdns_record r;
    memset(&r, 0, sizeof(r));
    for (uint64_t i = 0; i < n; i++) {
        saved_triple st;
        memcpy(&st, data + off, sizeof(st));
        const uint8_t *sv = data + off + sizeof(st);
        const uint8_t *key = sv + st.n_sensors * sizeof(uint16_t);
        off += sizeof(st) + st.n_sensors * sizeof(uint16_t) + (size_t)st.name_len + 3 +
               st.rdata_len;
        /* the first sensor still known enters it, the others join it */
        triple *t = NULL;
        for (uint16_t j = 0; j < st.n_sensors; j++) {
            uint16_t old;
            memcpy(&old, sv + 2 * j, 2);
            if (old >= nmap || map[old] < 0)
                continue;
            uint16_t now_ix = (uint16_t)map[old];
            if (!t) {
                r.rrname.p = (const char *)key;
                r.rrname.len = st.name_len;
                r.rrtype = st.rrtype;
                r.rdata.p = (const char *)key + st.name_len + 3;
                r.rdata.len = st.rdata_len;
                r.time_first = st.time_first;
                r.time_last = st.time_last;
                r.count = st.count;
                if (mixer_pool_insert(p, &r, now_ix, now_ms) < 0 ||
                    !(t = lookup(p, key, (size_t)st.name_len + 3 + st.rdata_len)))
                    break;
                /* its own times, not the ones an insert draws */
                t->first_seen_ms = st.first_seen_ms;
                t->eligible_ms = st.eligible_ms;
                t->count = st.count;
            } else if (add_sensor(p, t, now_ix) < 0) {
                break;
            }
        }
        if (!t)
            continue;
        restored++;
        /* qualified: judged again, keeping when it first qualified */
        list_unlink(list_of(p, t), t);
        t->qualified_ms = meets_thresholds(p, t)
                              ? (st.qualified_ms != NOT_QUALIFIED ? st.qualified_ms
                                                                   : now_ms)
                              : NOT_QUALIFIED;
        list_push(list_of(p, t), t);
    }
    return restored;
}
