/* bench_policy.c - policy decisions per second on one core: 10,000 suffix
 * rules, 100 sensors in 10 organisations, mixer entries with realistic
 * names and 1-5 sensors each. Baseline in the same run: the same name
 * check done as a linear scan over the rules. Prints a table. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "policy.h"
#include "rrtype.h"
#include "machine.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#define RULES 10000
#define SENSORS 100
#define ENTRIES 100000

int main(int argc, char **argv) {
    char machine_[400];
    pdns_machine_describe(machine_, sizeof(machine_));
    printf("%s\n", machine_);
    long rounds = argc > 1 ? atol(argv[1]) : 50;
    if (sodium_init() < 0)
        return 1;
    char dir[] = "/tmp/pdns-bench-policy-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    char path[128];
    snprintf(path, sizeof(path), "%s/p.json", dir);
    FILE *f = fopen(path, "w");
    fprintf(f, "{\"partner\": \"bench\", \"rrtypes\": {\"allow\": [\"A\", \"AAAA\", \"CNAME\"]},"
               " \"organisations\": {\"allow\": [\"*\"]}, \"sensors\": {\"deny\": [\"s7\"]},"
               " \"names\": {\"allow\": [");
    static char rules[RULES][48];
    for (int i = 0; i < RULES; i++) {
        snprintf(rules[i], sizeof(rules[i]), "zone%d.%s", i, i % 2 ? "example" : "test");
        fprintf(f, "%s\"%s\"", i ? "," : "", rules[i]);
    }
    fprintf(f, "], \"deny\": [\"bad.zone1.example\"]}, \"min_sensors\": 2}");
    fclose(f);

    static policy_source src[SENSORS];
    static char names[SENSORS][16], orgs[SENSORS][16];
    static uint8_t uu[SENSORS][16];
    for (int i = 0; i < SENSORS; i++) {
        snprintf(names[i], sizeof(names[i]), "s%d", i);
        snprintf(orgs[i], sizeof(orgs[i]), "org%d", i % 10);
        uu[i][0] = (uint8_t)i;
        src[i] = (policy_source){names[i], orgs[i], "", uu[i], PDNS_SRC_D4, NULL};
    }
    policy_env env = {src, SENSORS, "bench", NULL};
    policy_diag d = {0};
    policy *p = policy_load(path, &env, &d);
    if (!p) {
        fprintf(stderr, "policy did not load\n");
        return 1;
    }
    policy_diag_free(&d);

    mixer_rng g;
    mixer_rng_init_seeded(&g, 3);
    static char qn[ENTRIES][64];
    static mixer_entry e[ENTRIES];
    static uint16_t sens[ENTRIES][5];
    for (int i = 0; i < ENTRIES; i++) {
        int z = (int)mixer_rng_uniform(&g, RULES * 2); /* half match a rule */
        snprintf(qn[i], sizeof(qn[i]), "host%u.dept%u.zone%d.%s", mixer_rng_uniform(&g, 1000),
                 mixer_rng_uniform(&g, 20), z, z % 2 ? "example" : "test");
        memset(&e[i], 0, sizeof(e[i]));
        e[i].rec.rrname.p = qn[i];
        e[i].rec.rrname.len = strlen(qn[i]);
        e[i].rec.rdata.p = "10.0.0.1";
        e[i].rec.rdata.len = 8;
        e[i].rec.rrtype = i % 7 ? PDNS_RR_A : PDNS_RR_TXT;
        e[i].raw_count = e[i].rec.count = 3;
        int n = 1 + (int)mixer_rng_uniform(&g, 5);
        for (int k = 0; k < n; k++)
            sens[i][k] = (uint16_t)(k * 20 + mixer_rng_uniform(&g, 20)); /* sorted, distinct */
        e[i].sensors = sens[i];
        e[i].n_sensors = (uint16_t)n;
    }

    /* baseline: the name check alone as a linear scan of the rules */
    int lin_n = 2000;
    size_t lin_hits = 0;
    double t0 = now_s();
    for (int i = 0; i < lin_n; i++) {
        size_t nl = e[i].rec.rrname.len;
        for (int r = 0; r < RULES; r++) {
            size_t rl = strlen(rules[r]);
            if (nl >= rl && memcmp(qn[i] + nl - rl, rules[r], rl) == 0 &&
                (nl == rl || qn[i][nl - rl - 1] == '.')) {
                lin_hits++;
                break;
            }
        }
    }
    double t_lin = now_s() - t0;

    size_t pass = 0, total = 0;
    policy_out out;
    t0 = now_s();
    for (long r = 0; r < rounds; r++)
        for (int i = 0; i < ENTRIES; i++, total++)
            pass += policy_decide(p, &env, &e[i], 1795940000, NULL, NULL, 0) == POLICY_PASS;
    double t_dec = now_s() - t0;
    size_t pass2 = 0;
    t0 = now_s();
    for (int i = 0; i < ENTRIES; i++)
        pass2 += policy_decide(p, &env, &e[i], 1795940000, &out, NULL, 0) == POLICY_PASS;
    double t_out = now_s() - t0;

    printf("\nPolicy decisions, one core: %d suffix rules, %d sensors, %d distinct entries\n",
           RULES, SENSORS, ENTRIES);
    printf("%-48s %14s %9s\n", "what", "decisions/s", "ns each");
    printf("%-48s %14.0f %9.1f\n", "name check by linear scan of the rules (baseline)",
           lin_n / t_lin, t_lin * 1e9 / lin_n);
    printf("%-48s %14.0f %9.1f\n", "full decision (hashed label suffixes)", total / t_dec,
           t_dec * 1e9 / total);
    printf("%-48s %14.0f %9.1f\n", "full decision + building the partner's record",
           ENTRIES / t_out, t_out * 1e9 / ENTRIES);
    printf("(passed: %.1f%%; the linear scan matched %zu of %d)\n", 100.0 * pass / total, lin_hits,
           lin_n);
    policy_free(p);
    unlink(path);
    rmdir(dir);
    return 0;
}
