/* delay.c - a binary min-heap of copied mixer entries keyed by release
 * time and push order. */
#include "delay.h"

#include <stdlib.h>
#include <string.h>

#include "buf.h"

typedef struct item {
    int64_t at;
    uint64_t id;              /* push order: ties of at leave in it */
    mixer_entry e;            /* e.rec and e.sensors are not used: r, sensors */
    pdns_record *r;
    uint16_t *sensors;
} item;

struct delay_line {
    item *h;
    size_t n, cap, max;
    uint64_t next_id;
    int64_t last_at;          /* the last entry that left: (last_at, last_id) */
    uint64_t last_id;
};

static int before(const item *a, const item *b) {
    return a->at < b->at || (a->at == b->at && a->id < b->id);
}

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

/* Copies e in, leaving at (at, id). Returns 0, or -1 (full, out of memory). */
static int put(delay_line *d, const mixer_entry *e, int64_t at, uint64_t id) {
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
    d->h[i] = (item){at, id, *e, c, sn};
    while (i > 0 && before(&d->h[i], &d->h[(i - 1) / 2])) {
        swap(&d->h[(i - 1) / 2], &d->h[i]);
        i = (i - 1) / 2;
    }
    return 0;
}

int delay_line_push(delay_line *d, const mixer_entry *e, int64_t release_ms) {
    /* never before what already left (a clock stepped back, or another
     * machine's): the release order stays the push order's */
    if (release_ms < d->last_at)
        release_ms = d->last_at;
    if (put(d, e, release_ms, d->next_id) < 0)
        return -1;
    d->next_id++;
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
            if (l < d->n && before(&d->h[l], &d->h[m]))
                m = l;
            if (r < d->n && before(&d->h[r], &d->h[m]))
                m = r;
            if (m == i)
                break;
            swap(&d->h[i], &d->h[m]);
            i = m;
        }
        d->last_at = top.at;
        d->last_id = top.id;
        top.e.rec = *top.r;
        top.e.sensors = top.sensors;
        fn(ctx, &top.e);
        free(top.r);
        free(top.sensors);
        out++;
    }
    return out;
}

void delay_line_last(const delay_line *d, int64_t *at, uint64_t *id) {
    *at = d->last_at;
    *id = d->last_id;
}

/* A saved entry: its place in the line, the entry's figures and record;
 * its sensors (uint16 each), name and rdata follow. */
typedef struct saved_item {
    int64_t at;
    uint64_t id, raw_count, count;
    int64_t first_seen_ms, eligible_ms, latency_ms, mix_delay_ms, time_first, time_last;
    uint32_t name_len, rdata_len;
    uint16_t rrtype, n_sensors, n_orgs, pad;
} saved_item;

#define SAVED_MAGIC "DLY1"

int delay_line_save(const delay_line *d, pdns_buf *out) {
    if (pdns_buf_append(out, SAVED_MAGIC, 4) < 0 ||
        pdns_buf_append(out, &d->next_id, sizeof(d->next_id)) < 0)
        return -1;
    for (size_t i = 0; i < d->n; i++) {
        const item *it = &d->h[i];
        const mixer_entry *e = &it->e;
        saved_item s = {it->at, it->id, e->raw_count, it->r->count, e->first_seen_ms,
                        e->eligible_ms, e->latency_ms, e->mix_delay_ms, it->r->time_first,
                        it->r->time_last, (uint32_t)it->r->rrname.len,
                        (uint32_t)it->r->rdata.len, it->r->rrtype, e->n_sensors, e->n_orgs, 0};
        if (pdns_buf_append(out, &s, sizeof(s)) < 0 ||
            pdns_buf_append(out, it->sensors, (size_t)e->n_sensors * sizeof(uint16_t)) < 0 ||
            pdns_buf_append(out, it->r->rrname.p, it->r->rrname.len) < 0 ||
            pdns_buf_append(out, it->r->rdata.p, it->r->rdata.len) < 0)
            return -1;
    }
    return 0;
}

long delay_line_restore(delay_line *d, const uint8_t *data, size_t len, const int32_t *map,
                        size_t nmap, int64_t left_at, uint64_t left_id, size_t *gone) {
    size_t off = 4 + sizeof(uint64_t);
    uint64_t next_id;
    *gone = 0;
    if (len < off || memcmp(data, SAVED_MAGIC, 4) != 0)
        return -1;
    memcpy(&next_id, data + 4, sizeof(next_id));
    /* the whole of it first: a torn or foreign blob adds nothing */
    for (size_t o = off; o < len;) {
        saved_item s;
        if (len - o < sizeof(s))
            return -1;
        memcpy(&s, data + o, sizeof(s));
        size_t body = (size_t)s.n_sensors * sizeof(uint16_t) + s.name_len + s.rdata_len;
        if (len - o - sizeof(s) < body || s.id >= next_id)
            return -1;
        o += sizeof(s) + body;
    }
    if (next_id > d->next_id)
        d->next_id = next_id;
    if (left_id >= d->next_id)
        d->next_id = left_id + 1;
    if (left_at > d->last_at || (left_at == d->last_at && left_id > d->last_id)) {
        d->last_at = left_at;
        d->last_id = left_id;
    }
    long n = 0;
    uint16_t *sens = malloc(65536 * sizeof(*sens));
    if (!sens)
        return -1;
    while (off < len) {
        saved_item s;
        memcpy(&s, data + off, sizeof(s));
        off += sizeof(s);
        const uint8_t *sv = data + off;
        off += (size_t)s.n_sensors * sizeof(uint16_t);
        const char *name = (const char *)data + off;
        off += s.name_len;
        const char *rdata = (const char *)data + off;
        off += s.rdata_len;
        if (s.at < left_at || (s.at == left_at && s.id <= left_id)) {
            (*gone)++; /* it left before the restart: the partner has it */
            continue;
        }
        uint16_t k = 0;
        for (uint16_t i = 0; i < s.n_sensors; i++) { /* mapped, kept sorted, distinct */
            uint16_t was;
            memcpy(&was, sv + (size_t)i * sizeof(was), sizeof(was));
            if (was >= nmap || map[was] < 0)
                continue;
            uint16_t now = (uint16_t)map[was], j = k;
            while (j > 0 && sens[j - 1] > now)
                j--;
            if (j > 0 && sens[j - 1] == now)
                continue;
            memmove(sens + j + 1, sens + j, (size_t)(k - j) * sizeof(*sens));
            sens[j] = now;
            k++;
        }
        if (!k)
            continue; /* none of its sensors is configured now */
        mixer_entry e;
        memset(&e, 0, sizeof(e));
        e.rec.rrname.p = name;
        e.rec.rrname.len = s.name_len;
        e.rec.rdata.p = rdata;
        e.rec.rdata.len = s.rdata_len;
        e.rec.rrtype = s.rrtype;
        e.rec.time_first = s.time_first;
        e.rec.time_last = s.time_last;
        e.rec.count = s.count;
        e.raw_count = s.raw_count;
        e.sensors = sens;
        e.n_sensors = k;
        e.n_orgs = s.n_orgs;
        e.first_seen_ms = s.first_seen_ms;
        e.eligible_ms = s.eligible_ms;
        e.latency_ms = s.latency_ms;
        e.mix_delay_ms = s.mix_delay_ms;
        if (put(d, &e, s.at, s.id) == 0)
            n++;
    }
    free(sens);
    return n;
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
