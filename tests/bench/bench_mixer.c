/* bench_mixer.c - mixer throughput (insert + aggregate + flush, one core)
 * and memory per pooled triple, on realistic data: 10 sensors, Zipf-like
 * names, 10% of records repeating a triple another sensor saw. The
 * baseline row is the same records hashed into a plain table (SipHash +
 * memcmp, no mixing) in the same run. The default setting runs twice:
 * on a fresh heap, where every triple's memory is first touched (page
 * faults), and on the memory the first run freed, as in a relay that has
 * been running. Prints a table; asserts nothing. */
#include <malloc.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pool.h"
#include "rrtype.h"
#include "../testrec.h"
#include "machine.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct in_rec {
    char name[48], rdata[24];
    uint16_t sensor;
} in_rec;

static size_t released;
static void sink(void *ctx, const mixer_batch *b) {
    (void)ctx;
    released += b->n;
}

int main(int argc, char **argv) {
    char machine_[400];
    pdns_machine_describe(machine_, sizeof(machine_));
    printf("%s\n", machine_);
    size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000000;
    if (sodium_init() < 0)
        return 1;
    in_rec *in = malloc(n * sizeof(*in));
    mixer_rng g;
    mixer_rng_init_seeded(&g, 42);
    for (size_t i = 0; i < n; i++) {
        in[i].sensor = (uint16_t)mixer_rng_uniform(&g, 10);
        if (i > 0 && mixer_rng_uniform(&g, 10) == 0) { /* a repeat, other sensor */
            size_t j = mixer_rng_uniform(&g, (uint32_t)i);
            memcpy(in[i].name, in[j].name, sizeof(in[i].name));
            memcpy(in[i].rdata, in[j].rdata, sizeof(in[i].rdata));
            continue;
        }
        snprintf(in[i].name, sizeof(in[i].name), "host%zu.zone%u.example", i, (unsigned)(i % 977));
        snprintf(in[i].rdata, sizeof(in[i].rdata), "10.%u.%u.%u", (unsigned)(i >> 16) & 255,
                 (unsigned)(i >> 8) & 255, (unsigned)i & 255);
    }

    /* baseline: hash + probe + insert in a plain chained table */
    size_t nb = 1u << 21, strings = 0;
    uint8_t key[crypto_shorthash_KEYBYTES] = {1};
    uint32_t *heads = malloc(nb * sizeof(uint32_t)), *chain = malloc(n * sizeof(uint32_t));
    memset(heads, 0xff, nb * sizeof(uint32_t));
    double t0 = now_s();
    size_t distinct = 0;
    for (size_t i = 0; i < n; i++) {
        char buf[80];
        size_t nl = strlen(in[i].name), rl = strlen(in[i].rdata);
        memcpy(buf, in[i].name, nl + 1);
        memcpy(buf + nl + 1, in[i].rdata, rl);
        uint64_t h;
        crypto_shorthash((unsigned char *)&h, (unsigned char *)buf, nl + 1 + rl, key);
        uint32_t *pp = &heads[h & (nb - 1)];
        int found = 0;
        for (uint32_t j = *pp; j != UINT32_MAX; j = chain[j])
            if (!strcmp(in[j].name, in[i].name) && !strcmp(in[j].rdata, in[i].rdata)) {
                found = 1;
                break;
            }
        if (!found) {
            chain[i] = *pp;
            *pp = (uint32_t)i;
            distinct++;
            strings += nl + 3 + rl;
        }
    }
    double t_base = now_s() - t0;

    /* the same with the table owning a heap copy of each key, as the pool
     * owns each triple's: the lookups then touch memory in proportion to
     * the distinct triples, not a 12 MB array of heads and links. How the
     * mixer compares with the first baseline depends on whether its
     * working set (~170 B a triple) fits in the machine's last-level
     * cache; with this one both sides pay the same misses. */
    typedef struct okey {
        struct okey *next;
        uint64_t h;
        uint16_t len;
        char b[];
    } okey;
    okey **oheads = calloc(nb, sizeof(*oheads));
    t0 = now_s();
    for (size_t i = 0; i < n; i++) {
        char buf[80];
        size_t nl = strlen(in[i].name), rl = strlen(in[i].rdata), kl = nl + 1 + rl;
        memcpy(buf, in[i].name, nl + 1);
        memcpy(buf + nl + 1, in[i].rdata, rl);
        uint64_t h;
        crypto_shorthash((unsigned char *)&h, (unsigned char *)buf, kl, key);
        okey **pp = &oheads[h & (nb - 1)], *e;
        for (e = *pp; e; e = e->next)
            if (e->h == h && e->len == kl && !memcmp(e->b, buf, kl))
                break;
        if (!e && (e = malloc(sizeof(*e) + kl))) {
            e->h = h;
            e->len = (uint16_t)kl;
            memcpy(e->b, buf, kl);
            e->next = *pp;
            *pp = e;
        }
    }
    double t_owned = now_s() - t0;
    for (size_t i = 0; i < nb; i++)
        for (okey *e = oheads[i], *nx; e; e = nx) {
            nx = e->next;
            free(e);
        }
    free(oheads);

    mixer_conf c;
    mixer_rng rng;
    mixer_rng_init_secure(&rng);
    /* runs: k = 2 on a fresh heap (every triple's memory is first touched:
     * page faults), k = 2 again on the memory the first run freed (what a
     * relay that has been running does), then k = 1 */
    static const int run_k[3] = {2, 2, 1};
    double t_ins[3] = {0, 0, 0}, t_tick[3] = {0, 0, 0};
    size_t peak = 0, peak_bytes = 0, peak_heap = 0, rel[3] = {0, 0, 0};
    mixer_pool *p;
    for (int run = 0; run < 3; run++) {
        int k_setting = run_k[run];
        mixer_conf_defaults(&c);
        c.min_sensors = (unsigned)k_setting;
        c.max_triples = n + 1;
        c.max_bytes = (size_t)1 << 34;
        released = 0;
        p = mixer_pool_new(&c, &rng, sink, NULL);
        /* one hour of simulated time: a tick each simulated second */
        int64_t span = 3600 * 1000, last_tick = 0;
        t0 = now_s();
        for (size_t i = 0; i < n; i++) {
            int64_t now = (int64_t)((double)i / (double)n * (double)span);
            pdns_record r = test_record_a(in[i].name, in[i].rdata, 1795930000 + now / 1000, 1);
            mixer_pool_insert(p, &r, in[i].sensor, now);
            if (now - last_tick >= 1000) {
                double tt = now_s();
                mixer_pool_tick(p, now);
                t_tick[run] += now_s() - tt;
                last_tick = now;
            }
            if (k_setting == 1 && mixer_pool_triples(p) > peak) {
                peak = mixer_pool_triples(p);
                peak_bytes = mixer_pool_bytes(p);
            }
        }
        t_ins[run] = now_s() - t0;
        rel[run] = released;
        mixer_pool_free(p);
    }
    /* memory with everything pooled: insert all again into a fresh pool */
    struct mallinfo2 m0 = mallinfo2();
    c.interval_ms = 24 * 3600 * 1000;
    c.max_hold_ms = 2 * c.interval_ms;
    p = mixer_pool_new(&c, &rng, sink, NULL);
    for (size_t i = 0; i < n; i++) {
        pdns_record r = test_record_a(in[i].name, in[i].rdata, 0, 1);
        mixer_pool_insert(p, &r, in[i].sensor, 0);
    }
    struct mallinfo2 m1 = mallinfo2();
    peak_heap = m1.uordblks - m0.uordblks;
    size_t pooled = mixer_pool_triples(p);
    size_t pool_bytes = mixer_pool_bytes(p);
    t0 = now_s();
    mixer_pool_flush_all(p, c.max_hold_ms - 1); /* every hold has passed */
    double t_flush = now_s() - t0;
    mixer_pool_free(p);

    printf("\nMixer, one core, %zu records (%zu distinct triples, 10 sensors, 10%% repeats)\n", n, distinct);
    printf("%-44s %12s %10s %8s %9s\n", "stage", "records/s", "ns/rec", "vs base",
           "vs owned");
    printf("%-44s %12.0f %10.1f %7.2fx %8.2fx\n", "plain hash table insert (baseline)",
           n / t_base, t_base * 1e9 / n, 1.0, t_owned / t_base);
    printf("%-44s %12.0f %10.1f %7.2fx %8.2fx\n", "the same, owning a copy of each key",
           n / t_owned, t_owned * 1e9 / n, t_base / t_owned, 1.0);
    static const char *run_name[3] = {"k=2 (default), fresh heap", "k=2 (default), warm heap",
                                       "k=1, warm heap"};
    for (int k = 0; k < 3; k++) {
        char label[64];
        snprintf(label, sizeof(label), "mixer, %s", run_name[k]);
        printf("%-44s %12.0f %10.1f %7.2fx %8.2fx\n", label, n / t_ins[k],
               t_ins[k] * 1e9 / n, t_base / t_ins[k], t_owned / t_ins[k]);
        printf("%-44s %12s %10.1f   (%zu released)\n", "  of which epoch flushes (per record)", "",
               t_tick[k] * 1e9 / n, rel[k]);
    }
    printf("%-44s %12.0f %10.1f\n", "flush_all of a full pool (triples/s)", pooled / t_flush,
           t_flush * 1e9 / pooled);
    printf("\nMemory per pooled triple beyond its strings (%zu triples, %.1f MB of strings)\n",
           pooled, strings / 1e6);
    printf("  measured heap (mallinfo2): %.1f B\n", ((double)peak_heap - (double)strings) / pooled);
    printf("  pool's own accounting:     %.1f B\n", ((double)pool_bytes - (double)strings) / pooled);
    printf("  during the 1 h run: peak %zu triples, %.1f MB\n", peak, peak_bytes / 1e6);
    printf("  the final flush_all released %zu triples\n", pooled);
    free(in);
    free(heads);
    free(chain);
    return 0;
}
