/* delay.c - a binary min-heap of copied records keyed by release time. */
#include "delay.h"

#include <stdlib.h>

typedef struct item {
    int64_t at;
    unsigned flags;
    pdns_record *r;
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
    for (size_t i = 0; i < d->n; i++)
        free(d->h[i].r);
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

int delay_line_push(delay_line *d, const pdns_record *r, unsigned flags,
                    int64_t release_ms) {
    if (d->n >= d->max)
        return -1;
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 256;
        item *h = realloc(d->h, cap * sizeof(*h));
        if (!h)
            return -1;
        d->h = h;
        d->cap = cap;
    }
    pdns_record *c = pdns_record_dup(r);
    if (!c)
        return -1;
    size_t i = d->n++;
    d->h[i] = (item){release_ms, flags, c};
    while (i > 0 && d->h[(i - 1) / 2].at > d->h[i].at) {
        swap(&d->h[(i - 1) / 2], &d->h[i]);
        i = (i - 1) / 2;
    }
    return 0;
}

size_t delay_line_pop_due(delay_line *d, int64_t now_ms, size_t max,
                          void (*fn)(void *ctx, const pdns_record *r,
                                     unsigned flags),
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
        fn(ctx, top.r, top.flags);
        free(top.r);
        out++;
    }
    return out;
}
