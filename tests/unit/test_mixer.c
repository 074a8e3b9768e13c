/* test_mixer.c - the mixing pool: each rule with a fixed clock and seed,
 * then properties over thousands of random streams and configurations. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <sodium.h>

#include "pool.h"
#include "rrtype.h"
#include "../testrec.h"

#define SEC 1000
#define MIN (60 * SEC)

/* ---- capture ----------------------------------------------------------- */

typedef struct out {
    char name[64], rdata[64];
    uint16_t rrtype;
    int64_t tf, tl, released_ms, eligible_ms, first_seen_ms;
    uint64_t count, raw_count;
    uint16_t sensors[16], n_sensors, n_orgs;
    uint64_t batch;
} out;

static out outs[20000];
static size_t nout;
static mixer_stats stats[2000];
static size_t nbatches;
static size_t batch_sizes[2000];

static void capture(void *ctx, const mixer_batch *b) {
    (void)ctx;
    assert_true(b->n > 0);
    assert_true(nbatches < 2000);
    stats[nbatches] = b->stats;
    batch_sizes[nbatches++] = b->n;
    for (size_t i = 0; i < b->n; i++) {
        const mixer_entry *e = &b->e[i];
        out *o = &outs[nout++];
        assert_true(nout < 20000);
        snprintf(o->name, sizeof(o->name), "%.*s", (int)e->rec.rrname.len, e->rec.rrname.p);
        snprintf(o->rdata, sizeof(o->rdata), "%.*s", (int)e->rec.rdata.len, e->rec.rdata.p);
        o->rrtype = e->rec.rrtype;
        o->tf = e->rec.time_first;
        o->tl = e->rec.time_last;
        o->count = e->rec.count;
        o->raw_count = e->raw_count;
        o->released_ms = b->time_ms;
        o->eligible_ms = e->eligible_ms;
        o->first_seen_ms = e->first_seen_ms;
        o->n_sensors = e->n_sensors;
        o->n_orgs = e->n_orgs;
        o->batch = b->seq;
        for (size_t k = 0; k < e->n_sensors && k < 16; k++)
            o->sensors[k] = e->sensors[k];
        assert_false(e->rec.has_ms); /* milliseconds never leave */
    }
}

static void reset(void) {
    nout = nbatches = 0;
}

/* A permissive configuration each test then tightens. */
static mixer_conf open_conf(void) {
    mixer_conf c;
    mixer_conf_defaults(&c);
    c.interval_ms = 10 * SEC;
    c.min_batch = 1;
    c.send_fraction = 1.0;
    c.pool_min = 0;
    c.hold_min_ms = 0;
    c.hold_jitter_ms = 0;
    c.min_sensors = 1;
    c.min_count = 1;
    c.max_hold_ms = 3600 * SEC;
    c.sensor_quota = 1.0;
    c.time_resolution = 1;
    c.count_buckets = 0;
    return c;
}

static mixer_pool *make(const mixer_conf *c, mixer_rng *rng, uint64_t seed) {
    mixer_rng_init_seeded(rng, seed);
    reset();
    mixer_pool *p = mixer_pool_new(c, rng, capture, NULL);
    assert_non_null(p);
    return p;
}

/* ---- one rule each ------------------------------------------------------- */

static void test_aggregation(void **state) {
    (void)state;
    mixer_conf c = open_conf();
    mixer_rng rng;
    mixer_pool *p = make(&c, &rng, 1);
    pdns_record r = test_record_a("www.example.com", "10.0.0.1", 1000, 2);
    assert_int_equal(mixer_pool_insert(p, &r, 7, 0), 0);
    r = test_record_a("www.example.com", "10.0.0.1", 900, 3);
    assert_int_equal(mixer_pool_insert(p, &r, 3, 1), 0);
    r = test_record_a("www.example.com", "10.0.0.1", 1100, 1);
    assert_int_equal(mixer_pool_insert(p, &r, 7, 2), 0);
    r = test_record_a("www.example.com", "10.0.0.2", 1000, 1); /* another triple */
    assert_int_equal(mixer_pool_insert(p, &r, 7, 3), 0);
    r.rrtype = PDNS_RR_AAAA; /* same strings, another type: another triple */
    r.rdata.p = "10.0.0.1";
    r.rdata.len = 8;
    assert_int_equal(mixer_pool_insert(p, &r, 7, 3), 0);
    assert_int_equal(mixer_pool_triples(p), 3);
    assert_int_equal(mixer_pool_counters(p)->merged, 2);
    mixer_pool_tick(p, 10 * SEC);
    assert_int_equal(nout, 3);
    for (size_t i = 0; i < nout; i++) {
        if (strcmp(outs[i].rdata, "10.0.0.1") || outs[i].rrtype != PDNS_RR_A)
            continue;
        assert_int_equal(outs[i].count, 6);
        assert_int_equal(outs[i].tf, 900);
        assert_int_equal(outs[i].tl, 1100);
        assert_int_equal(outs[i].n_sensors, 2);
        assert_int_equal(outs[i].sensors[0], 3);
        assert_int_equal(outs[i].sensors[1], 7);
    }
    assert_int_equal(mixer_pool_triples(p), 0);
    mixer_pool_free(p);
}

static void test_hold_time_and_epochs(void **state) {
    (void)state;
    mixer_conf c = open_conf();
    c.hold_min_ms = 60 * SEC;
    mixer_rng rng;
    mixer_pool *p = make(&c, &rng, 2);
    pdns_record r = test_record_a("a.test", "10.0.0.1", 5, 1);
    assert_int_equal(mixer_pool_insert(p, &r, 0, 3 * SEC), 0);
    assert_int_equal(mixer_pool_next_flush(p), 10 * SEC); /* epoch boundary */
    for (int64_t t = 10 * SEC; t < 70 * SEC; t += 10 * SEC) {
        mixer_pool_tick(p, t);
        assert_int_equal(nout, 0);
    }
    mixer_pool_tick(p, 70 * SEC);
    assert_int_equal(nout, 1);
    assert_int_equal(outs[0].released_ms, 70 * SEC);
    assert_int_equal(outs[0].released_ms % c.interval_ms, 0);
    mixer_pool_free(p);
}

static void test_thresholds_and_drops(void **state) {
    (void)state;
    mixer_conf c = open_conf();
    c.min_sensors = 2;
    c.min_count = 5;
    c.max_hold_ms = 60 * SEC;
    mixer_rng rng;
    mixer_pool *p = make(&c, &rng, 3);
    pdns_record one = test_record_a("lonely.test", "10.0.0.1", 5, 10);
    pdns_record two = test_record_a("shared.test", "10.0.0.2", 5, 2);
    pdns_record few = test_record_a("few.test", "10.0.0.3", 5, 1);
    assert_int_equal(mixer_pool_insert(p, &one, 0, 0), 0);
    assert_int_equal(mixer_pool_insert(p, &two, 0, 0), 0);
    assert_int_equal(mixer_pool_insert(p, &few, 0, 0), 0);
    assert_int_equal(mixer_pool_insert(p, &few, 1, 0), 0);
    mixer_pool_tick(p, 10 * SEC);
    assert_int_equal(nout, 0);
    two.count = 3;
    assert_int_equal(mixer_pool_insert(p, &two, 1, 15 * SEC), 0); /* now k=2, count 5 */
    mixer_pool_tick(p, 20 * SEC);
    assert_int_equal(nout, 1);
    assert_string_equal(outs[0].name, "shared.test");
    mixer_pool_tick(p, 60 * SEC);
    const mixer_counters *k = mixer_pool_counters(p);
    assert_int_equal(k->dropped[MIXER_DROP_THRESHOLD], 2);
    assert_int_equal(k->dropped_count[MIXER_DROP_THRESHOLD], 12);
    assert_int_equal(mixer_pool_triples(p), 0);
    mixer_pool_free(p);
}

/* mixer.min_orgs: two sensors of one organisation are not two witnesses */
static void test_min_orgs(void **state) {
    (void)state;
    static const uint16_t org_of[4] = {0, 0, 1, 1}; /* sensors 0, 1: org 0 */
    mixer_conf c = open_conf();
    c.min_sensors = 2;
    c.min_orgs = 2;
    c.sensor_org = org_of;
    c.n_sensors = 4;
    c.max_hold_ms = 60 * SEC;
    mixer_rng rng;
    mixer_pool *p = make(&c, &rng, 5);
    pdns_record same = test_record_a("same-org.test", "10.0.0.1", 5, 1);
    pdns_record two = test_record_a("two-orgs.test", "10.0.0.2", 5, 1);
    assert_int_equal(mixer_pool_insert(p, &same, 0, 0), 0);
    assert_int_equal(mixer_pool_insert(p, &same, 1, 0), 0);
    assert_int_equal(mixer_pool_insert(p, &two, 0, 0), 0);
    assert_int_equal(mixer_pool_insert(p, &two, 2, 0), 0);
    mixer_pool_tick(p, 10 * SEC);
    assert_int_equal(nout, 1);
    assert_string_equal(outs[0].name, "two-orgs.test");
    mixer_pool_tick(p, 60 * SEC);
    assert_int_equal(mixer_pool_counters(p)->dropped[MIXER_DROP_THRESHOLD], 1);
    mixer_pool_free(p);
}

static void fill(mixer_pool *p, int n, int sensor, int64_t now, const char *tag) {
    char name[64];
    for (int i = 0; i < n; i++) {
        snprintf(name, sizeof(name), "%s%d.test", tag, i);
        pdns_record r = test_record_a(name, "10.0.0.1", 1, 1);
        assert_int_equal(mixer_pool_insert(p, &r, (uint16_t)sensor, now), 0);
    }
}

static void test_min_batch_fraction_pool_min(void **state) {
    (void)state;
    mixer_conf c = open_conf();
    c.min_batch = 5;
    mixer_rng rng;
    mixer_pool *p = make(&c, &rng, 4);
    fill(p, 3, 0, 0, "a");
    mixer_pool_tick(p, 10 * SEC);
    assert_int_equal(nout, 0); /* 3 < min_batch */
    fill(p, 2, 1, 11 * SEC, "b");
    mixer_pool_tick(p, 20 * SEC);
    assert_int_equal(nout, 5);
    mixer_pool_free(p);

    c = open_conf();
    c.send_fraction = 0.5;
    c.pool_min = 10;
    p = make(&c, &rng, 5);
    fill(p, 100, 0, 0, "x");
    mixer_pool_tick(p, 10 * SEC);
    assert_int_equal(nout, 50);
    assert_int_equal(stats[0].held_back, 50);
    mixer_pool_tick(p, 20 * SEC);
    assert_int_equal(nout, 75);
    mixer_pool_tick(p, 30 * SEC);
    assert_int_equal(nout, 87);
    mixer_pool_tick(p, 40 * SEC); /* 13 left: only 3 may go, 10 stay */
    assert_int_equal(nout, 90);
    mixer_pool_tick(p, 50 * SEC);
    assert_int_equal(nout, 90);
    assert_int_equal(mixer_pool_triples(p), 10);
    mixer_pool_flush_all(p, 51 * SEC);
    assert_int_equal(nout, 100);
    mixer_pool_free(p);
}

static void test_due_triples_go_first(void **state) {
    (void)state;
    mixer_conf c = open_conf();
    c.send_fraction = 0.1;
    c.pool_min = 50;
    c.max_hold_ms = 30 * SEC;
    mixer_rng rng;
    mixer_pool *p = make(&c, &rng, 6);
    fill(p, 10, 0, 0, "old");
    fill(p, 60, 1, 15 * SEC, "new");
    mixer_pool_tick(p, 10 * SEC);
    mixer_pool_tick(p, 20 * SEC); /* "old" would pass max_hold by 30 s */
    size_t old = 0;
    for (size_t i = 0; i < nout; i++)
        old += strncmp(outs[i].name, "old", 3) == 0;
    assert_int_equal(old, 10);
    assert_int_equal(mixer_pool_counters(p)->dropped[MIXER_DROP_EXPIRED], 0);
    mixer_pool_free(p);
}

static void test_sensor_quota(void **state) {
    (void)state;
    mixer_conf c = open_conf();
    c.sensor_quota = 0.5;
    mixer_rng rng;
    mixer_pool *p = make(&c, &rng, 7);
    fill(p, 90, 0, 0, "flood");
    fill(p, 10, 1, 0, "victim");
    mixer_pool_tick(p, 10 * SEC);
    assert_int_equal(nbatches, 1);
    assert_int_equal(nout, 20); /* 10 from each */
    assert_true(stats[0].max_share <= 0.5 + 1e-9);
    assert_true(fabs(stats[0].entropy - 1.0) < 1e-9);
    assert_true(fabs(stats[0].anonymity_set - 2.0) < 1e-9);
    assert_int_equal(stats[0].distinct_sensors, 2);
    assert_int_equal(stats[0].held_back, 80);
    /* alone, the flood cannot go at all */
    mixer_pool_tick(p, 20 * SEC);
    assert_int_equal(nout, 20);
    mixer_pool_free(p);
}

static void test_coarsening_and_buckets(void **state) {
    (void)state;
    mixer_conf c = open_conf();
    c.time_resolution = 3600;
    c.count_buckets = 1;
    mixer_rng rng;
    mixer_pool *p = make(&c, &rng, 8);
    pdns_record r = test_record_a("a.test", "10.0.0.1", 7205, 13);
    r.time_last = 7300;
    r.has_ms = 1;
    r.time_first_ms = 7205123;
    assert_int_equal(mixer_pool_insert(p, &r, 0, 0), 0);
    r = test_record_a("b.test", "10.0.0.1", 3600, 1);
    assert_int_equal(mixer_pool_insert(p, &r, 0, 0), 0);
    mixer_pool_tick(p, 10 * SEC);
    assert_int_equal(nout, 2);
    for (size_t i = 0; i < 2; i++) {
        if (!strcmp(outs[i].name, "a.test")) {
            assert_int_equal(outs[i].tf, 7200);
            assert_int_equal(outs[i].tl, 10800);
            assert_int_equal(outs[i].count, 8);
            assert_int_equal(outs[i].raw_count, 13);
        } else {
            assert_int_equal(outs[i].tf, 3600);
            assert_int_equal(outs[i].tl, 3600);
            assert_int_equal(outs[i].count, 1);
        }
    }
    mixer_pool_free(p);
}

static void test_shuffle_and_determinism(void **state) {
    (void)state;
    mixer_conf c = open_conf();
    mixer_rng rng;
    char first[200][64];
    for (int round = 0; round < 2; round++) {
        mixer_pool *p = make(&c, &rng, 9);
        fill(p, 200, 0, 0, "n");
        mixer_pool_tick(p, 10 * SEC);
        assert_int_equal(nout, 200);
        int in_order = 0, seen[200] = {0};
        for (int i = 0; i < 200; i++) {
            int k = atoi(outs[i].name + 1);
            assert_false(seen[k]);
            seen[k] = 1;
            in_order += k == i;
            if (round == 0)
                strcpy(first[i], outs[i].name);
            else
                assert_string_equal(first[i], outs[i].name); /* same seed, same order */
        }
        assert_true(in_order < 10);
        mixer_pool_free(p);
    }
}

static void test_memory_cap(void **state) {
    (void)state;
    mixer_conf c = open_conf();
    c.max_triples = 100;
    c.min_sensors = 2; /* nothing eligible: the cap must drop */
    mixer_rng rng;
    mixer_pool *p = make(&c, &rng, 10);
    fill(p, 250, 0, 0, "m");
    assert_int_equal(mixer_pool_triples(p), 100);
    assert_int_equal(mixer_pool_counters(p)->dropped[MIXER_DROP_CAPACITY], 150);
    mixer_pool_free(p);
    /* eligible triples are flushed early instead */
    c.min_sensors = 1;
    p = make(&c, &rng, 11);
    fill(p, 150, 0, 0, "e");
    assert_true(mixer_pool_triples(p) <= 100);
    assert_true(mixer_pool_counters(p)->early_flushes >= 1);
    assert_true(nout >= 100);
    mixer_pool_free(p);
    /* bytes */
    c = open_conf();
    c.max_bytes = 64 * 1024;
    c.min_sensors = 2;
    p = make(&c, &rng, 12);
    fill(p, 5000, 0, 0, "b");
    assert_true(mixer_pool_bytes(p) <= 64 * 1024);
    mixer_pool_free(p);
}

static int cmp64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Batch figures against a direct computation: percentiles by sorting,
 * entropy from the shares. */
static void test_batch_stats(void **state) {
    (void)state;
    static mixer_entry e[3000];
    static int64_t lat[3000];
    uint16_t sens[3][2] = {{0, 0}, {1, 0}, {0, 2}};
    uint16_t nsens[3] = {1, 1, 2};
    mixer_rng g;
    mixer_rng_init_seeded(&g, 99);
    for (int round = 0; round < 200; round++) {
        size_t n = 1 + mixer_rng_uniform(&g, 3000);
        double w[3] = {0, 0, 0};
        for (size_t i = 0; i < n; i++) {
            int k = (int)mixer_rng_uniform(&g, 3);
            memset(&e[i], 0, sizeof(e[i]));
            e[i].sensors = sens[k];
            e[i].n_sensors = nsens[k];
            for (int j = 0; j < nsens[k]; j++)
                w[sens[k][j]] += 1.0 / nsens[k];
            e[i].mix_delay_ms = lat[i] = (int64_t)mixer_rng_uniform(&g, round % 2 ? 5 : 100000);
        }
        mixer_stats s;
        mixer_batch_stats(e, n, &s);
        qsort(lat, n, sizeof(int64_t), cmp64);
        assert_int_equal(s.latency_p50_ms, lat[(n - 1) * 50 / 100]);
        assert_int_equal(s.latency_p95_ms, lat[(n - 1) * 95 / 100]);
        assert_int_equal(s.latency_p99_ms, lat[(n - 1) * 99 / 100]);
        double h = 0, mx = 0;
        size_t d = 0;
        for (int j = 0; j < 3; j++) {
            double ps = w[j] / (double)n;
            if (ps > 0) {
                h -= ps * log2(ps);
                d++;
            }
            mx = ps > mx ? ps : mx;
        }
        assert_true(fabs(s.entropy - h) < 1e-9);
        assert_true(fabs(s.max_share - mx) < 1e-9);
        assert_true(fabs(s.min_entropy + log2(mx)) < 1e-9);
        assert_int_equal(s.distinct_sensors, d);
    }
}

static void test_conf_check(void **state) {
    (void)state;
    mixer_conf c;
    char err[128];
    mixer_conf_defaults(&c);
    assert_int_equal(mixer_conf_check(&c, err, sizeof(err)), 0);
    assert_true(c.min_sensors >= 2 && c.interval_ms >= 60000);
    c.max_hold_ms = c.interval_ms;
    assert_int_equal(mixer_conf_check(&c, err, sizeof(err)), -1);
    assert_string_equal(err, "max_hold must be longer than interval");
    mixer_conf_defaults(&c);
    c.send_fraction = 0;
    assert_int_equal(mixer_conf_check(&c, err, sizeof(err)), -1);
}

/* ---- properties over random streams -------------------------------------- */

#define KEYS 60

typedef struct sim_key {
    uint64_t in_count;
    uint64_t out_raw;
    int64_t min_tf, max_tl;   /* of the latest observation */
    int64_t last_release, last_insert_after_release;
    int released_since_insert;
} sim_key;

static void test_properties(void **state) {
    (void)state;
    int seeds = getenv("MIXER_SEEDS") ? atoi(getenv("MIXER_SEEDS")) : 2000;
    uint64_t total_out = 0, total_drop = 0, total_batches = 0, quota_bound = 0;
    uint64_t by_reason[MIXER_DROP_COUNT] = {0};
    for (int seed = 1; seed <= seeds; seed++) {
        mixer_rng conf_rng;
        mixer_rng_init_seeded(&conf_rng, 1000000 + (uint64_t)seed);
        mixer_conf c = open_conf();
        c.interval_ms = (1 + mixer_rng_uniform(&conf_rng, 60)) * SEC;
        c.min_batch = mixer_rng_uniform(&conf_rng, 8);
        c.send_fraction = 0.1 + 0.9 * mixer_rng_unit(&conf_rng);
        c.pool_min = mixer_rng_uniform(&conf_rng, 6);
        c.hold_min_ms = mixer_rng_uniform(&conf_rng, 30) * SEC;
        c.hold_jitter_ms = mixer_rng_uniform(&conf_rng, 60) * SEC;
        c.min_sensors = 1 + mixer_rng_uniform(&conf_rng, 3);
        c.min_count = 1 + mixer_rng_uniform(&conf_rng, 4);
        c.max_hold_ms = c.interval_ms + c.hold_min_ms + (1 + mixer_rng_uniform(&conf_rng, 300)) * SEC;
        c.sensor_quota = mixer_rng_uniform(&conf_rng, 3) == 0 ? 1.0 : 0.2 + 0.8 * mixer_rng_unit(&conf_rng);
        c.time_resolution = mixer_rng_uniform(&conf_rng, 2) ? 60 : 1;
        c.max_triples = 5 + mixer_rng_uniform(&conf_rng, 300);
        int nsensors = 1 + (int)mixer_rng_uniform(&conf_rng, 8);
        mixer_rng rng;
        mixer_pool *p = make(&c, &rng, (uint64_t)seed);
        sim_key keys[KEYS];
        memset(keys, 0, sizeof(keys));
        for (int k = 0; k < KEYS; k++)
            keys[k].min_tf = INT64_MAX, keys[k].max_tl = -1, keys[k].last_release = -1;
        int64_t now = 1000000 + mixer_rng_uniform(&conf_rng, 100000);
        size_t seen_out = 0;
        int n = 100 + (int)mixer_rng_uniform(&conf_rng, 400);
        for (int i = 0; i < n; i++) {
            now += (int64_t)mixer_rng_exp(&conf_rng, 3000);
            int k = (int)(mixer_rng_unit(&conf_rng) * mixer_rng_unit(&conf_rng) * KEYS);
            char name[32];
            snprintf(name, sizeof(name), "k%d.test", k);
            int64_t t = now / 1000 - (int64_t)mixer_rng_uniform(&conf_rng, 100);
            pdns_record r = test_record_a(name, "10.0.0.1", t, 1 + mixer_rng_uniform(&conf_rng, 3));
            r.time_last = t + mixer_rng_uniform(&conf_rng, 50);
            keys[k].in_count += r.count;
            /* the latest observation is always in the next release */
            keys[k].min_tf = t;
            keys[k].max_tl = r.time_last;
            keys[k].released_since_insert = 0;
            assert_int_equal(mixer_pool_insert(p, &r, (uint16_t)mixer_rng_uniform(&conf_rng, (uint32_t)nsensors), now), 0);
            /* memory cap honoured after every insert */
            assert_true(mixer_pool_triples(p) <= c.max_triples);
            if (mixer_rng_uniform(&conf_rng, 4) == 0)
                mixer_pool_tick(p, now);
            /* check what came out since the last look */
            for (; seen_out < nout; seen_out++) {
                out *o = &outs[seen_out];
                int ok = atoi(o->name + 1);
                /* never before its hold, never below its thresholds */
                assert_true(o->released_ms >= o->eligible_ms);
                assert_true(o->eligible_ms >= o->first_seen_ms + c.hold_min_ms);
                assert_true(o->n_sensors >= c.min_sensors);
                assert_true(o->raw_count >= c.min_count);
                /* liveness: out within max_hold */
                assert_true(o->released_ms - o->first_seen_ms < c.max_hold_ms);
                /* not twice unless seen again */
                assert_false(keys[ok].released_since_insert);
                keys[ok].released_since_insert = 1;
                keys[ok].out_raw += o->raw_count;
                /* times coarsened outward, never inward */
                assert_true(o->tf <= keys[ok].min_tf && o->tf % c.time_resolution == 0);
                assert_true(o->tl >= keys[ok].max_tl && o->tl % c.time_resolution == 0);
            }
        }
        /* let everything leave: released or dropped, nothing stays */
        for (int64_t t = now; t <= now + c.max_hold_ms + c.interval_ms; t += c.interval_ms)
            mixer_pool_tick(p, t);
        mixer_pool_tick(p, now + c.max_hold_ms + 2 * c.interval_ms);
        assert_int_equal(mixer_pool_triples(p), 0);
        for (; seen_out < nout; seen_out++) {
            out *o = &outs[seen_out];
            int ok = atoi(o->name + 1);
            assert_true(o->released_ms - o->first_seen_ms < c.max_hold_ms);
            assert_true(o->n_sensors >= c.min_sensors && o->raw_count >= c.min_count);
            keys[ok].out_raw += o->raw_count;
        }
        /* quota in every batch: each sensor's share <= quota */
        for (size_t b = 0; b < nbatches; b++)
            assert_true(stats[b].max_share <= c.sensor_quota + 1e-9);
        /* counts conserved: in = released + dropped */
        uint64_t in = 0, outc = 0, dropped = 0;
        const mixer_counters *mc = mixer_pool_counters(p);
        for (int k = 0; k < KEYS; k++) {
            in += keys[k].in_count;
            outc += keys[k].out_raw;
            assert_true(keys[k].out_raw <= keys[k].in_count);
        }
        for (int d = 0; d < MIXER_DROP_COUNT; d++)
            dropped += mc->dropped_count[d];
        total_out += nout;
        total_drop += dropped;
        for (int d = 0; d < MIXER_DROP_COUNT; d++)
            by_reason[d] += mc->dropped_count[d];
        total_batches += nbatches;
        for (size_t b = 0; b < nbatches; b++)
            quota_bound += c.sensor_quota < 1 && stats[b].max_share > c.sensor_quota - 0.05;
        if (in != outc + dropped)
            fail_msg("seed %d: in %llu != out %llu + dropped %llu", seed,
                     (unsigned long long)in, (unsigned long long)outc, (unsigned long long)dropped);
        mixer_pool_free(p);
    }
    /* the streams exercised every path: releases, drops, binding quotas */
    assert_true(total_out > 20 * (uint64_t)seeds);
    assert_true(total_drop > 0);
    assert_true(total_batches > 5 * (uint64_t)seeds);
    assert_true(quota_bound > 100);
    for (int d = 0; d < MIXER_DROP_COUNT; d++)
        assert_true(by_reason[d] > 0);
    print_message("properties: %d seeds, %llu triples released in %llu batches, %llu "
                  "observations dropped (threshold %llu, expired %llu, capacity %llu), %llu batches "
                  "at their quota\n", seeds,
                  (unsigned long long)total_out, (unsigned long long)total_batches,
                  (unsigned long long)total_drop, (unsigned long long)by_reason[0],
                  (unsigned long long)by_reason[1], (unsigned long long)by_reason[2],
                  (unsigned long long)quota_bound);
}

/* The production source: a ChaCha20 stream under OS keys with fast key
 * erasure. Two instances never agree; over 2 M draws (16 MiB, so 16 fresh
 * OS keys and 4,000 key erasures) every byte value and every value of
 * uniform(10) comes up as often as chance says (chi-square far below the
 * 1e-6 tail), no 64-bit draw comes twice (a stream that repeated a buffer
 * would), and the exponential draws have their mean. */
static int cmp_u64(const void *x, const void *y) {
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return a < b ? -1 : a > b;
}

static void test_rng_secure(void **state) {
    (void)state;
    static mixer_rng a, b;
    mixer_rng_init_secure(&a);
    mixer_rng_init_secure(&b);
    int same = 0;
    for (int i = 0; i < 64; i++)
        same += mixer_rng_u64(&a) == mixer_rng_u64(&b);
    assert_true(same < 2);
    enum { N = 2000000 };
    static uint64_t bytes[256], draws[N];
    uint64_t digits[10] = {0};
    double sum_exp = 0;
    for (int i = 0; i < N; i++) {
        uint64_t v = draws[i] = mixer_rng_u64(&a);
        for (int k = 0; k < 8; k++)
            bytes[(v >> (8 * k)) & 255]++;
        digits[mixer_rng_uniform(&b, 10)]++;
        if (i < 200000)
            sum_exp += mixer_rng_exp(&b, 5.0);
    }
    double chi = 0, e = 8.0 * N / 256;
    for (int k = 0; k < 256; k++)
        chi += (bytes[k] - e) * (bytes[k] - e) / e;
    assert_true(chi < 400); /* 255 degrees of freedom: p(chi > 400) < 1e-7 */
    chi = 0, e = N / 10.0;
    for (int k = 0; k < 10; k++)
        chi += (digits[k] - e) * (digits[k] - e) / e;
    assert_true(chi < 45); /* 9 degrees of freedom: p(chi > 45) < 1e-6 */
    assert_true(fabs(sum_exp / 200000 - 5.0) < 0.1);
    qsort(draws, N, sizeof(draws[0]), cmp_u64);
    for (int i = 1; i < N; i++)
        if (draws[i] == draws[i - 1])
            fail_msg("a 64-bit draw came twice");
}

/* ---- across a restart ------------------------------------------------------ */

/* One released triple as a line, all it says (the released time included). */
static void describe(const out *o, char *b, size_t n) {
    int w = snprintf(b, n, "%s %s %u %lld %lld %llu %lld %lld %lld:", o->name, o->rdata,
                     o->rrtype, (long long)o->tf, (long long)o->tl,
                     (unsigned long long)o->count, (long long)o->first_seen_ms,
                     (long long)o->eligible_ms, (long long)o->released_ms);
    for (size_t k = 0; k < o->n_sensors && w > 0 && (size_t)w < n; k++)
        w += snprintf(b + w, n - (size_t)w, " %u", o->sensors[k]);
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* What a pool releases from now on at each tick until end: sorted lines. */
static size_t run_out(mixer_pool *p, int64_t from, int64_t end, char **lines) {
    reset();
    for (int64_t t = from; t <= end; t += 5 * SEC)
        mixer_pool_tick(p, t);
    for (size_t i = 0; i < nout; i++) {
        lines[i] = malloc(256);
        describe(&outs[i], lines[i], 256);
    }
    qsort(lines, nout, sizeof(char *), cmp_str);
    return nout;
}

/* A pool saved and restored releases exactly what the pool itself would
 * have released, when and as it would have (random streams, random hold
 * times, thresholds, a flush before the save); a sensor that is gone is
 * forgotten, and a triple no longer seen by k sensors does not go. */
static void test_save_restore(void **state) {
    (void)state;
    static char *la[20000], *lb[20000];
    for (uint64_t seed = 1; seed <= 30; seed++) {
        mixer_conf c = open_conf();
        c.hold_jitter_ms = 30 * SEC;
        c.min_sensors = 2;
        mixer_rng rng, rng2, rng3, pick;
        mixer_rng_init_seeded(&pick, seed * 7919);
        mixer_pool *a = make(&c, &rng, seed);
        char name[64];
        int64_t now = 0;
        for (int i = 0; i < 400; i++) {
            now += mixer_rng_uniform(&pick, 200);
            snprintf(name, sizeof(name), "n%u.test", mixer_rng_uniform(&pick, 120));
            pdns_record r = test_record_a(name, "10.0.0.1", 1795930000 + now / 1000,
                                          1 + mixer_rng_uniform(&pick, 5));
            assert_int_equal(mixer_pool_insert(a, &r, (uint16_t)mixer_rng_uniform(&pick, 6),
                                               now), 0);
            if (i == 200)
                mixer_pool_tick(a, now); /* some leave before the save */
        }
        pdns_buf saved = {0};
        assert_int_equal(mixer_pool_save(a, &saved), 0);
        int32_t same[6] = {0, 1, 2, 3, 4, 5}, gone5[6] = {0, 1, 2, 3, 4, -1};
        mixer_pool *b = make(&c, &rng2, seed + 1000);
        long nb = mixer_pool_restore(b, (const uint8_t *)saved.p, saved.len, same, 6, now);
        assert_int_equal(nb, (long)mixer_pool_triples(a));
        mixer_pool *g = make(&c, &rng3, seed + 2000);
        assert_true(mixer_pool_restore(g, (const uint8_t *)saved.p, saved.len, gone5, 6, now) >= 0);
        /* malformed: refused whole */
        mixer_pool *x = make(&c, &rng3, seed + 3000);
        assert_int_equal(mixer_pool_restore(x, (const uint8_t *)saved.p, saved.len - 1, same, 6,
                                            now), -1);
        assert_int_equal(mixer_pool_triples(x), 0);
        mixer_pool_free(x);

        int64_t end = now + 120 * SEC;
        size_t na = run_out(a, now + 10 * SEC, end, la);
        size_t nbo = run_out(b, now + 10 * SEC, end, lb);
        assert_int_equal(na, nbo);
        for (size_t i = 0; i < na; i++) {
            assert_string_equal(la[i], lb[i]);
            free(la[i]);
            free(lb[i]);
        }
        assert_true(na > 0);
        assert_int_equal(mixer_pool_triples(a), mixer_pool_triples(b)); /* below k: waiting */
        /* without sensor 5: nothing of it, and k = 2 still holds */
        reset();
        for (int64_t t = now + 10 * SEC; t <= end; t += 5 * SEC)
            mixer_pool_tick(g, t);
        for (size_t i = 0; i < nout; i++) {
            assert_true(outs[i].n_sensors >= 2);
            for (size_t k = 0; k < outs[i].n_sensors; k++)
                assert_int_not_equal(outs[i].sensors[k], 5);
        }
        pdns_buf_free(&saved);
        mixer_pool_free(a);
        mixer_pool_free(b);
        mixer_pool_free(g);
    }
}

int main(void) {
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_aggregation),
        cmocka_unit_test(test_rng_secure),
        cmocka_unit_test(test_hold_time_and_epochs),
        cmocka_unit_test(test_thresholds_and_drops),
        cmocka_unit_test(test_min_orgs),
        cmocka_unit_test(test_min_batch_fraction_pool_min),
        cmocka_unit_test(test_due_triples_go_first),
        cmocka_unit_test(test_sensor_quota),
        cmocka_unit_test(test_coarsening_and_buckets),
        cmocka_unit_test(test_shuffle_and_determinism),
        cmocka_unit_test(test_memory_cap),
        cmocka_unit_test(test_conf_check),
        cmocka_unit_test(test_batch_stats),
        cmocka_unit_test(test_properties),
        cmocka_unit_test(test_save_restore),
    };
    return cmocka_run_group_tests_name("mixer", tests, NULL, NULL);
}
