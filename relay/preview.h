/* preview.h - what a partner would receive under a policy, from given
 * records: the relay's mixer run in simulated time along the records' own
 * times, then the policy on every triple it releases. `pdns-relay policy
 * preview` runs it on files, the console on the records the relay took in
 * the last minutes (recent.h). No I/O. */
#ifndef PDNS_PREVIEW_H
#define PDNS_PREVIEW_H

#include <stddef.h>
#include <stdint.h>

#include "policy.h"
#include "pool.h"

typedef struct preview_rec {
    int64_t ms;               /* when the relay took it (or its time_first) */
    uint16_t sensor;          /* the mixer's source index */
    const pdns_record *r;
} preview_rec;

typedef struct preview_result {
    uint64_t records, triples, released, batches;
    uint64_t drops[MIXER_DROP_COUNT];
    uint64_t verdicts[POLICY_VERDICT_COUNT];
} preview_result;

typedef struct preview_hooks {
    /* a record the partner would get, as the policy shapes it */
    void (*sent)(void *ctx, const policy_out *out);
    /* a released triple the policy denies, and why */
    void (*denied)(void *ctx, const mixer_entry *e, enum policy_verdict v, const char *why);
    /* what happened to a record named `explain` (NULL: none) */
    const char *explain;
    void (*explained)(void *ctx, const pdns_record *r, const char *what);
    void *ctx;
} preview_hooks;

/* The mixer's settings for env's sources: conf with a sensor -> organisation
 * table (freed by the caller with free()). NULL when out of memory. */
uint16_t *preview_orgs(const policy_env *env, mixer_conf *conf);

/* Runs v (sorted here by ms) through a pool with conf and the policy.
 * Returns 0, or -1 (bad mixer settings, out of memory). */
int preview_run(preview_rec *v, size_t n, const policy *pol, const policy_env *env,
                const mixer_conf *conf, uint64_t seed, const preview_hooks *h,
                preview_result *res);

/* The verdicts' words ("sent to the partner", "denied: rrtype", ...). */
const char *preview_verdict_label(enum policy_verdict v);
const char *preview_drop_label(enum mixer_drop d);

#endif
