/* bench_privacy.c - how much the mixer hides, as numbers.
 *
 * Simulates S sensors over hours of bursty Poisson traffic (each sensor
 * alternates busy and quiet spells) over a realistic name distribution:
 * popular names (Zipf) that many sensors see, and each sensor's own rare
 * names. The stream goes through the mixer in simulated time. An adversary
 * who knows one target sensor's exact ingest times then says, for each
 * released record, whether it came from the target, scoring the record by
 * the target's activity inside the record's possible ingest window (its
 * released time_first/time_last, bounded by the release time and max_hold).
 * We report the adversary's best precision/recall (over all thresholds, by
 * F1) against random guessing (the base rate of target records) and
 * against no mixing, with the latency the mixing costs and the batches'
 * anonymity figures. A table; asserts nothing. */
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pool.h"
#include "rrtype.h"
#include "../testrec.h"
#include "machine.h"

#define S 10
#define GLOBAL_NAMES 20000
#define LOCAL_NAMES 5000

typedef struct event {
    int64_t ms;
    int sensor;
    int name; /* < GLOBAL_NAMES: global; else local to the sensor */
} event;

typedef struct rel {
    int64_t release_s, tf, tl, first_seen_ms;
    int has_target, n_sensors;
} rel;

static rel *rels;
static size_t nrels, relcap;
static double sum_h, sum_set, sum_minh;
static size_t nbatches;
static int64_t *lats, *delays;

static void on_batch(void *ctx, const mixer_batch *b) {
    (void)ctx;
    sum_h += b->stats.entropy;
    sum_set += b->stats.anonymity_set;
    sum_minh += b->stats.min_entropy;
    nbatches++;
    for (size_t i = 0; i < b->n; i++) {
        if (nrels == relcap) {
            relcap = relcap ? relcap * 2 : 65536;
            rels = realloc(rels, relcap * sizeof(*rels));
            lats = realloc(lats, relcap * sizeof(*lats));
            delays = realloc(delays, relcap * sizeof(*delays));
        }
        const mixer_entry *e = &b->e[i];
        rel *r = &rels[nrels];
        r->release_s = b->time_ms / 1000;
        r->tf = e->rec.time_first;
        r->tl = e->rec.time_last;
        r->first_seen_ms = e->first_seen_ms;
        r->n_sensors = e->n_sensors;
        r->has_target = e->n_sensors && e->sensors[0] == 0; /* sorted: 0 first */
        lats[nrels] = e->latency_ms;
        delays[nrels] = e->mix_delay_ms;
        nrels++;
    }
}

static int cmp_ev(const void *a, const void *b) {
    const event *x = a, *y = b;
    return x->ms < y->ms ? -1 : x->ms > y->ms;
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

typedef struct score {
    double s;
    int truth;
} score;

static int cmp_score(const void *a, const void *b) {
    const score *x = a, *y = b;
    return x->s > y->s ? -1 : x->s < y->s;
}

/* The adversary's best operating point (max F1 over thresholds). */
static void adversary(score *sc, size_t n, double *prec, double *rec, double *base) {
    size_t pos = 0;
    for (size_t i = 0; i < n; i++)
        pos += sc[i].truth;
    *base = n ? (double)pos / (double)n : 0;
    qsort(sc, n, sizeof(*sc), cmp_score);
    double best_f1 = -1;
    size_t tp = 0;
    *prec = *rec = 0;
    for (size_t i = 0; i < n; i++) {
        tp += sc[i].truth;
        if (i + 1 < n && sc[i + 1].s == sc[i].s)
            continue; /* a threshold falls between distinct scores */
        double p = (double)tp / (double)(i + 1), r = pos ? (double)tp / (double)pos : 0;
        double f1 = p + r > 0 ? 2 * p * r / (p + r) : 0;
        if (f1 > best_f1) {
            best_f1 = f1;
            *prec = p;
            *rec = r;
        }
    }
}

int main(int argc, char **argv) {
    char machine_[400];
    pdns_machine_describe(machine_, sizeof(machine_));
    printf("%s\n", machine_);
    double hours = argc > 1 ? atof(argv[1]) : 12;
    if (sodium_init() < 0)
        return 1;
    int64_t dur_ms = (int64_t)(hours * 3600 * 1000);
    mixer_rng g;
    mixer_rng_init_seeded(&g, 2026);
    /* Zipf(1) over the global names: cumulative weights */
    double *cum = malloc(GLOBAL_NAMES * sizeof(double)), tot = 0;
    for (int i = 0; i < GLOBAL_NAMES; i++)
        cum[i] = (tot += 1.0 / (i + 1));
    /* bursty Poisson per sensor */
    size_t cap = 1 << 20, n = 0;
    event *ev = malloc(cap * sizeof(*ev));
    for (int s = 0; s < S; s++) {
        int64_t t = 0;
        int busy = (int)mixer_rng_uniform(&g, 2);
        int64_t spell_end = (int64_t)mixer_rng_exp(&g, busy ? 20 * 60000.0 : 40 * 60000.0);
        double rate = 0.5 + mixer_rng_unit(&g); /* events/s while busy, per sensor */
        while (t < dur_ms) {
            double r = busy ? rate : rate / 25;
            t += (int64_t)mixer_rng_exp(&g, 1000.0 / r) + 1;
            while (t > spell_end) {
                busy = !busy;
                spell_end += (int64_t)mixer_rng_exp(&g, busy ? 20 * 60000.0 : 40 * 60000.0);
            }
            if (t >= dur_ms)
                break;
            if (n == cap)
                ev = realloc(ev, (cap *= 2) * sizeof(*ev));
            int name;
            if (mixer_rng_unit(&g) < 0.7) {
                double u = mixer_rng_unit(&g) * tot;
                int lo = 0, hi = GLOBAL_NAMES - 1;
                while (lo < hi) {
                    int mid = (lo + hi) / 2;
                    if (cum[mid] < u)
                        lo = mid + 1;
                    else
                        hi = mid;
                }
                name = lo;
            } else {
                name = GLOBAL_NAMES + (int)mixer_rng_uniform(&g, LOCAL_NAMES);
            }
            ev[n++] = (event){t, s, name};
        }
    }
    qsort(ev, n, sizeof(*ev), cmp_ev);
    /* the adversary's knowledge: target (sensor 0) ingest times, per second */
    int64_t secs = dur_ms / 1000 + 1;
    int64_t *pref = calloc((size_t)secs + 1, sizeof(int64_t));
    size_t target_events = 0;
    for (size_t i = 0; i < n; i++)
        if (ev[i].sensor == 0) {
            pref[ev[i].ms / 1000 + 1]++;
            target_events++;
        }
    for (int64_t i = 1; i <= secs; i++)
        pref[i] += pref[i - 1];

    printf("\nPrivacy simulation: %d sensors, %.0f h, %zu records (target: sensor 0, %zu records);\n"
           "adversary knows the target's exact ingest times; advantage = precision / base rate\n",
           S, hours, n, target_events);
    printf("%-26s %8s %7s %6s %6s %6s %6s %7s %7s %7s %6s %6s %6s\n", "setting", "released",
           "drop%", "base", "prec", "recall", "adv", "d50 s", "d95 s", "d99 s", "H", "2^H", "Hmin");

    /* no mixing: every record out at once, exact ms times, one sensor each */
    {
        score *sc = malloc(n * sizeof(*sc));
        /* target ingest times in ms, for an exact match */
        int64_t *tms = malloc(target_events * sizeof(int64_t));
        size_t k = 0;
        for (size_t i = 0; i < n; i++)
            if (ev[i].sensor == 0)
                tms[k++] = ev[i].ms;
        for (size_t i = 0; i < n; i++) {
            int64_t *hit = bsearch(&ev[i].ms, tms, target_events, sizeof(int64_t), cmp_i64);
            sc[i].s = hit ? 1 : 0;
            sc[i].truth = ev[i].sensor == 0;
        }
        double p, r, b;
        adversary(sc, n, &p, &r, &b);
        printf("%-26s %8zu %7.1f %6.3f %6.3f %6.3f %6.2f %7.0f %7.0f %7.0f %6s %6s %6s\n",
               "no mixing (raw stream)", n, 0.0, b, p, r, b > 0 ? p / b : 0, 0.0, 0.0, 0.0, "-",
               "-", "-");
        free(sc);
        free(tms);
    }

    struct setting {
        const char *name;
        int64_t interval_s, hold_min_s, jitter_s, res;
        uint32_t k, min_batch;
        double frac, quota;
    } settings[] = {
        {"k=2 only, no delay", 1, 0, 0, 1, 2, 1, 1.0, 1.0},
        {"defaults (6 h times)", 0, 0, 0, 0, 0, 0, 0, 0},
        {"defaults, 1-minute times", 0, 0, 0, 60, 0, 0, 0, 0},
        {"defaults, 1 h times", 0, 0, 0, 3600, 0, 0, 0, 0},
        {"defaults, 3 h times", 0, 0, 0, 10800, 0, 0, 0, 0},
        {"30-min epochs, 6 h times", 1800, 60, 600, 21600, 2, 100, 0.7, 0.5},
    };
    for (size_t si = 0; si < sizeof(settings) / sizeof(settings[0]); si++) {
        struct setting *st = &settings[si];
        mixer_conf c;
        mixer_conf_defaults(&c);
        if (st->interval_s) {
            c.interval_ms = st->interval_s * 1000;
            c.hold_min_ms = st->hold_min_s * 1000;
            c.hold_jitter_ms = st->jitter_s * 1000;
            c.min_sensors = st->k;
            c.min_batch = st->min_batch;
            c.send_fraction = st->frac;
            c.sensor_quota = st->quota;
            c.pool_min = st->interval_s == 1 ? 0 : c.pool_min;
        }
        if (st->res)
            c.time_resolution = st->res;
        c.count_buckets = 1;
        mixer_rng rng;
        mixer_rng_init_seeded(&rng, 7 + si);
        nrels = 0;
        sum_h = sum_set = sum_minh = 0;
        nbatches = 0;
        mixer_pool *p = mixer_pool_new(&c, &rng, on_batch, NULL);
        int64_t next_tick = 1000;
        for (size_t i = 0; i < n; i++) {
            while (next_tick <= ev[i].ms) {
                mixer_pool_tick(p, next_tick);
                next_tick += 1000;
            }
            char name[48], rdata[24];
            if (ev[i].name < GLOBAL_NAMES)
                snprintf(name, sizeof(name), "g%d.example", ev[i].name);
            else
                snprintf(name, sizeof(name), "l%d-%d.example", ev[i].sensor, ev[i].name);
            snprintf(rdata, sizeof(rdata), "10.%d.%d.%d", ev[i].name >> 16 & 255,
                     ev[i].name >> 8 & 255, ev[i].name & 255);
            pdns_record r = test_record_a(name, rdata, ev[i].ms / 1000, 1);
            mixer_pool_insert(p, &r, (uint16_t)ev[i].sensor, ev[i].ms);
        }
        for (int64_t t = next_tick; t <= dur_ms + c.max_hold_ms + c.interval_ms; t += 1000)
            mixer_pool_tick(p, t);
        const mixer_counters *mc = mixer_pool_counters(p);
        uint64_t dropped = 0;
        for (int d = 0; d < MIXER_DROP_COUNT; d++)
            dropped += mc->dropped_count[d];
        /* the adversary: target activity rate inside each record's window */
        score *sc = malloc((nrels ? nrels : 1) * sizeof(*sc));
        int64_t max_hold_s = c.max_hold_ms / 1000;
        for (size_t i = 0; i < nrels; i++) {
            rel *r = &rels[i];
            int64_t lo = r->tf, hi = r->tl + (c.time_resolution > 1 ? c.time_resolution - 1 : 0);
            if (hi > r->release_s)
                hi = r->release_s;
            if (lo < r->release_s - max_hold_s)
                lo = r->release_s - max_hold_s;
            if (lo < 0)
                lo = 0;
            if (hi >= secs)
                hi = secs - 1;
            double cnt = hi >= lo ? (double)(pref[hi + 1] - pref[lo]) : 0;
            sc[i].s = cnt / (double)(hi - lo + 1);
            sc[i].truth = r->has_target;
        }
        double pr, rc, b;
        adversary(sc, nrels, &pr, &rc, &b);
        qsort(lats, nrels, sizeof(int64_t), cmp_i64);
        qsort(delays, nrels, sizeof(int64_t), cmp_i64);
        double p50 = nrels ? delays[(nrels - 1) / 2] / 1000.0 : 0;
        double p95 = nrels ? delays[(nrels - 1) * 95 / 100] / 1000.0 : 0;
        double p99 = nrels ? delays[(nrels - 1) * 99 / 100] / 1000.0 : 0;
        double w50 = nrels ? lats[(nrels - 1) / 2] / 1000.0 : 0;
        printf("%-26s %8zu %7.1f %6.3f %6.3f %6.3f %6.2f %7.0f %7.0f %7.0f %6.2f %6.2f %6.2f\n",
               st->name, nrels, 100.0 * (double)dropped / (double)n, b, pr, rc, b > 0 ? pr / b : 0,
               p50, p95, p99, nbatches ? sum_h / nbatches : 0, nbatches ? sum_set / nbatches : 0,
               nbatches ? sum_minh / nbatches : 0);
        printf("%-26s median wait from first sighting (incl. waiting for k sensors): %.0f s\n",
               "", w50);
        free(sc);
        mixer_pool_free(p);
    }
    printf("(d50/d95/d99: delay the mixing adds, from when a triple met k and min_count;\n"
           " drop%%: observations not shared: names fewer than k sensors saw, or held past max_hold;\n"
           " they stay in the local store. H, 2^H, Hmin: mean per batch over sensor shares.)\n");
    free(ev);
    free(cum);
    free(pref);
    free(rels);
    free(lats);
    free(delays);
    return 0;
}
