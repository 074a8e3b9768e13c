/* preview.c - what a partner would receive under a policy. See preview.h. */
#include "preview.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"
#include "rrtype.h"

typedef struct run {
    const policy *pol;
    const policy_env *env;
    const mixer_conf *conf;
    const preview_hooks *h;
    preview_result *res;
} run;

static int is_explained(const run *x, const pdns_record *r) {
    const char *e = x->h ? x->h->explain : NULL;
    return e && x->h->explained && strlen(e) == r->rrname.len &&
           memcmp(e, r->rrname.p, r->rrname.len) == 0;
}

static void on_drop(void *ctx, const mixer_entry *e, enum mixer_drop why) {
    run *x = ctx;
    x->res->drops[why]++;
    if (is_explained(x, &e->rec)) {
        char m[300];
        snprintf(m, sizeof(m), "dropped by the mixer (%s): %u sensors, count "
                 "%" PRIu64 "; the relay needs %u sensors and count %" PRIu64,
                 mixer_drop_name(why), e->n_sensors, e->raw_count, x->conf->min_sensors,
                 x->conf->min_count);
        x->h->explained(x->h->ctx, &e->rec, m);
    }
}

static void on_batch(void *ctx, const mixer_batch *b) {
    run *x = ctx;
    x->res->batches++;
    for (size_t i = 0; i < b->n; i++) {
        policy_out out;
        char why[300];
        enum policy_verdict v = policy_decide(x->pol, x->env, &b->e[i], b->time_ms / 1000,
                                              &out, why, sizeof(why));
        x->res->verdicts[v]++;
        if (is_explained(x, &b->e[i].rec)) {
            char m[400];
            snprintf(m, sizeof(m), "released by the mixer in batch %" PRIu64 "; policy: %s (%s)",
                     b->seq, policy_verdict_name(v), why);
            x->h->explained(x->h->ctx, &b->e[i].rec, m);
        }
        if (!x->h)
            continue;
        if (v == POLICY_PASS && x->h->sent)
            x->h->sent(x->h->ctx, &out);
        else if (v != POLICY_PASS && x->h->denied)
            x->h->denied(x->h->ctx, &b->e[i], v, why);
    }
}

static int cmp_rec(const void *a, const void *b) {
    const preview_rec *x = a, *y = b;
    return x->ms < y->ms ? -1 : x->ms > y->ms;
}

uint16_t *preview_orgs(const policy_env *env, mixer_conf *conf) {
    uint16_t *orgs = calloc(env->n ? env->n : 1, sizeof(uint16_t));
    if (!orgs)
        return NULL;
    /* the first source of each organisation numbers it; no organisation:
     * a source of its own */
    for (size_t i = 0; i < env->n; i++) {
        size_t j;
        for (j = 0; j < i && !(env->src[i].org[0] && strcmp(env->src[i].org, env->src[j].org) == 0);
             j++)
            ;
        orgs[i] = j < i ? orgs[j] : (uint16_t)i;
    }
    conf->sensor_org = orgs;
    conf->n_sensors = env->n;
    return orgs;
}

int preview_run(preview_rec *v, size_t n, const policy *pol, const policy_env *env,
                const mixer_conf *conf, uint64_t seed, const preview_hooks *h,
                preview_result *res) {
    run x = {pol, env, conf, h, res};
    mixer_rng rng;
    memset(res, 0, sizeof(*res));
    mixer_rng_init_seeded(&rng, seed);
    mixer_pool *pool = mixer_pool_new(conf, &rng, on_batch, &x);
    if (!pool)
        return -1;
    mixer_pool_on_drop(pool, on_drop, &x);
    qsort(v, n, sizeof(*v), cmp_rec);
    int64_t now = n ? v[0].ms : 0, next = now;
    for (size_t i = 0; i < n; i++) {
        while (next <= v[i].ms) {
            mixer_pool_tick(pool, next);
            next += 1000;
        }
        now = v[i].ms;
        mixer_pool_insert(pool, v[i].r, v[i].sensor, now);
    }
    /* then time goes on until everything has left or been dropped */
    for (int64_t t = next; t <= now + conf->max_hold_ms + conf->interval_ms; t += 1000)
        mixer_pool_tick(pool, t);
    const mixer_counters *c = mixer_pool_counters(pool);
    res->records = n;
    res->triples = c->inserted - c->merged;
    res->released = c->released;
    mixer_pool_free(pool);
    return 0;
}

const char *preview_verdict_label(enum policy_verdict v) {
    static const char *labels[POLICY_VERDICT_COUNT] = {
        "sent to the partner", "denied: policy disabled", "denied: agreement expired",
        "denied: rrtype", "denied: name (suffix rules)", "denied: sensor",
        "denied: partner's own records", "denied: reshare", "denied: threshold"};
    return (unsigned)v < POLICY_VERDICT_COUNT ? labels[v] : "?";
}

const char *preview_drop_label(enum mixer_drop d) {
    return d == MIXER_DROP_THRESHOLD ? "dropped: below the relay's k/count"
           : d == MIXER_DROP_EXPIRED ? "dropped: held past max_hold"
                                     : "dropped: memory cap";
}
