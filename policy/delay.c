/* delay.c - a binary min-heap of copied mixer entries keyed by release
 * time. */
#include "delay.h"

#include <stdlib.h>
#include <string.h>

#include "buf.h"

typedef struct item {
    int64_t at;
    mixer_entry e;            /* e.rec and e.sensors are not used: r, sensors */
    pdns_record *r;
    uint16_t *sensors;
} item;

struct delay_line {
    item *h;
    size_t n, cap, max;
};

delay_line *delay_line_new(size_t max) {
    delay_line *d = calloc(1, sizeof(*d));
    if (d)
        d->max = max;
    return d;
}

void delay_line_free(delay_line *d) {
    if (!d)
        return;
    for (size_t i = 0; i < d->n; i++) {
        free(d->h[i].r);
        free(d->h[i].sensors);
    }
    free(d->h);
    free(d);
}

size_t delay_line_size(const delay_line *d) {
    return d->n;
}

static void swap(item *a, item *b) {
    item t = *a;
    *a = *b;
    *b = t;
}

int delay_line_push(delay_line *d, const mixer_entry *e, int64_t release_ms) {
    if (d->n >= d->max)
        return -1;
    item *h = pdns_grow(d->h, &d->cap, d->n, sizeof(*h), 256);
    if (!h)
        return -1;
    d->h = h;
    pdns_record *c = pdns_record_dup(&e->rec);
    uint16_t *sn = malloc((e->n_sensors ? e->n_sensors : 1) * sizeof(*sn));
    if (!c || !sn) {
        free(c);
        free(sn);
        return -1;
    }
    if (e->n_sensors)
        memcpy(sn, e->sensors, e->n_sensors * sizeof(*sn));
    size_t i = d->n++;
    d->h[i] = (item){release_ms, *e, c, sn};
    while (i > 0 && d->h[(i - 1) / 2].at > d->h[i].at) {
        swap(&d->h[(i - 1) / 2], &d->h[i]);
        i = (i - 1) / 2;
    }
    return 0;
}

size_t delay_line_pop_due(delay_line *d, int64_t now_ms, size_t max,
                          void (*fn)(void *ctx, const mixer_entry *e),
                          void *ctx) {
    size_t out = 0;
    while (d->n && d->h[0].at <= now_ms && out < max) {
        item top = d->h[0];
        d->h[0] = d->h[--d->n];
        for (size_t i = 0;;) {
            size_t l = 2 * i + 1, r = l + 1, m = i;
            if (l < d->n && d->h[l].at < d->h[m].at)
                m = l;
            if (r < d->n && d->h[r].at < d->h[m].at)
                m = r;
            if (m == i)
                break;
            swap(&d->h[i], &d->h[m]);
            i = m;
        }
        top.e.rec = *top.r;
        top.e.sensors = top.sensors;
        fn(ctx, &top.e);
        free(top.r);
        free(top.sensors);
        out++;
    }
    return out;
}

struct judge {
    const policy *p;
    const policy_env *env;
    int64_t now_s;
    void (*fn)(void *ctx, const policy_out *o);
    void *ctx;
    uint64_t *denied;
};

static void judge_one(void *vj, const mixer_entry *e) {
    struct judge *j = vj;
    policy_out out;
    enum policy_verdict v = policy_decide(j->p, j->env, e, j->now_s, &out, NULL, 0);
    if (v != POLICY_PASS)
        j->denied[v]++;
    else
        j->fn(j->ctx, &out);
}

size_t delay_line_release(delay_line *d, int64_t now_ms, size_t max,
                          const policy *p, const policy_env *env,
                          void (*fn)(void *ctx, const policy_out *o),
                          void *ctx, uint64_t denied[POLICY_VERDICT_COUNT]) {
    struct judge j = {p, env, now_ms / 1000, fn, ctx, denied};
    return delay_line_pop_due(d, now_ms, max, judge_one, &j);
}
