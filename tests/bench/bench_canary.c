/* bench_canary.c - can a partner that runs a sensor unlock names?
 *
 * The partner's organisation ("partner-org") runs sensor 0 among S member
 * sensors. It injects N canary names once each from its own sensor; a
 * victim sensor (another organisation) sees a share of them once each;
 * every sensor also sees background traffic. Everything goes through the
 * real mixer (k = 2, in simulated time) and the partner's real policy
 * (min_sensors 2, sensor_id strip), once without and once with
 * "own_organisations": ["partner-org"]. Printed: how many canaries reached
 * the partner, of those a victim saw and of those nobody else saw. A
 * release of a canary tells the partner that some member saw that name:
 * the unlock rate should be 0 with own_organisations. A table; asserts
 * nothing. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "policy.h"
#include "pool.h"
#include "../testrec.h"
#include "machine.h"

#define S 8
#define N 2000
#define BACKGROUND 20000

static const policy *pol;
static const policy_env *envp;
static size_t got_seen, got_unseen, got_background;

static void on_batch(void *ctx, const mixer_batch *b) {
    (void)ctx;
    for (size_t i = 0; i < b->n; i++) {
        policy_out out;
        if (policy_decide(pol, envp, &b->e[i], b->time_ms / 1000, &out, NULL, 0) != POLICY_PASS)
            continue;
        const char *n = b->e[i].rec.rrname.p;
        if (strncmp(n, "seen-", 5) == 0)
            got_seen++;
        else if (strncmp(n, "unseen-", 7) == 0)
            got_unseen++;
        else
            got_background++;
    }
}

int main(void) {
    char machine_[400];
    pdns_machine_describe(machine_, sizeof(machine_));
    printf("%s\n", machine_);
    if (sodium_init() < 0)
        return 1;
    char dir[] = "/tmp/pdns-canary-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    static policy_source src[S];
    static char names[S][16], orgs[S][24];
    static uint8_t uu[S][16];
    for (int i = 0; i < S; i++) {
        snprintf(names[i], sizeof(names[i]), "s%d", i);
        snprintf(orgs[i], sizeof(orgs[i]), i == 0 ? "partner-org" : "member%d", i);
        uu[i][0] = (uint8_t)(i + 1);
        src[i] = (policy_source){names[i], orgs[i], "", uu[i], PDNS_SRC_D4, NULL, NULL};
    }
    policy_env env = {src, S, "bench", NULL};
    envp = &env;
    printf("canaries: %d names injected once by the partner's own sensor; a victim sensor of "
           "another organisation sees half of them once; %d background records over %d "
           "sensors; mixer k = 2; partner policy min_sensors 2, sensor_id strip\n",
           N, BACKGROUND, S);
    printf("| policy | canaries a victim saw, released | canaries nobody else saw, released | "
           "background released |\n|---|---|---|---|\n");
    for (int with_own = 0; with_own < 2; with_own++) {
        char path[160];
        snprintf(path, sizeof(path), "%s/p%d.json", dir, with_own);
        FILE *f = fopen(path, "w");
        fprintf(f, "{\"partner\": \"alpha\", \"rrtypes\": {\"allow\": [\"A\"]}, \"names\": "
                   "{\"allow\": [\".\"]}, \"organisations\": {\"allow\": [\"*\"]}, "
                   "\"min_sensors\": 2, \"sensor_id\": \"strip\"%s}",
                with_own ? ", \"own_organisations\": [\"partner-org\"]" : "");
        fclose(f);
        policy_diag d = {0};
        policy *p = policy_load(path, &env, &d);
        policy_diag_free(&d);
        if (!p) {
            fprintf(stderr, "bench_canary: the policy did not load\n");
            return 1;
        }
        pol = p;
        got_seen = got_unseen = got_background = 0;
        mixer_conf c;
        mixer_conf_defaults(&c);
        c.interval_ms = 60000;
        c.min_sensors = 2;
        mixer_rng rng;
        mixer_rng_init_seeded(&rng, 11);
        mixer_pool *pool = mixer_pool_new(&c, &rng, on_batch, NULL);
        mixer_rng g;
        mixer_rng_init_seeded(&g, 5);
        int64_t t = 1795930000000, tick = t;
        static char nm[64], rd[24];
        for (int i = 0; i < N + BACKGROUND; i++) {
            t += 50;
            while (tick <= t) {
                mixer_pool_tick(pool, tick);
                tick += 1000;
            }
            if (i < N) { /* a canary from the partner's sensor, then maybe a victim */
                snprintf(nm, sizeof(nm), "%s-%d.canary.test", i % 2 ? "unseen" : "seen", i);
                snprintf(rd, sizeof(rd), "10.1.%d.%d", i >> 8 & 255, i & 255);
                pdns_record r = test_record_a(nm, rd, t / 1000, 1);
                mixer_pool_insert(pool, &r, 0, t);
                if (i % 2 == 0) {
                    uint16_t victim = (uint16_t)(1 + mixer_rng_uniform(&g, S - 1));
                    mixer_pool_insert(pool, &r, victim, t + 1000);
                }
            } else { /* background: popular names many sensors see */
                int k = (int)mixer_rng_uniform(&g, 500);
                snprintf(nm, sizeof(nm), "bg%d.example", k);
                snprintf(rd, sizeof(rd), "10.2.%d.%d", k >> 8, k & 255);
                pdns_record r = test_record_a(nm, rd, t / 1000, 1);
                mixer_pool_insert(pool, &r, (uint16_t)mixer_rng_uniform(&g, S), t);
            }
        }
        for (int64_t end = tick + c.max_hold_ms + 2 * c.interval_ms; tick <= end; tick += 1000)
            mixer_pool_tick(pool, tick);
        printf("| %s | %zu of %d (%.1f %%) | %zu of %d | %zu |\n",
               with_own ? "own_organisations: [partner-org]" : "no own_organisations",
               got_seen, N / 2, 100.0 * (double)got_seen / (N / 2), got_unseen, N / 2,
               got_background);
        mixer_pool_free(pool);
        policy_free(p);
        unlink(path);
    }
    rmdir(dir);
    return 0;
}
