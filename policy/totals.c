/* totals.c - a linear-probing table of per-triple totals, at most half
 * full, so that every probe run ends at an empty slot; eviction deletes by
 * moving the rest of the run back. */
#include "totals.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

typedef struct slot {
    totals_entry e;
    uint64_t used;            /* 0: empty; else the tick of the last update */
} slot;

struct totals {
    slot *s;
    size_t mask;              /* slots - 1, a power of two */
    size_t n, max;
    uint64_t tick, evicted;
};

totals *totals_new(size_t max) {
    if (max < 1 || max > (SIZE_MAX / sizeof(slot)) / 4)
        return NULL;
    size_t slots = 16;
    while (slots < max * 2)
        slots *= 2;
    totals *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->s = calloc(slots, sizeof(slot));
    if (!t->s) {
        free(t);
        return NULL;
    }
    t->mask = slots - 1;
    t->max = max;
    return t;
}

void totals_free(totals *t) {
    if (!t)
        return;
    free(t->s);
    free(t);
}

void totals_key(const pdns_record *r, uint8_t key[TOTALS_KEY]) {
    crypto_generichash_state st;
    uint8_t sep = 0, rr[2] = {(uint8_t)(r->rrtype >> 8), (uint8_t)r->rrtype};
    crypto_generichash_init(&st, NULL, 0, TOTALS_KEY);
    crypto_generichash_update(&st, (const uint8_t *)r->rrname.p, r->rrname.len);
    crypto_generichash_update(&st, &sep, 1);
    crypto_generichash_update(&st, rr, 2);
    crypto_generichash_update(&st, (const uint8_t *)r->rdata.p, r->rdata.len);
    crypto_generichash_final(&st, key, TOTALS_KEY);
}

static size_t home(const totals *t, const uint8_t key[TOTALS_KEY]) {
    size_t i;
    memcpy(&i, key, sizeof(i));
    return i & t->mask;
}

/* The triple's slot (*found 1), or the empty slot where it goes. */
static slot *find(totals *t, const uint8_t key[TOTALS_KEY], int *found) {
    for (size_t i = home(t, key);; i = (i + 1) & t->mask) {
        slot *s = &t->s[i];
        if (!s->used || memcmp(s->e.key, key, TOTALS_KEY) == 0) {
            *found = s->used != 0;
            return s;
        }
    }
}

/* Empties slot i, moving later members of its run back (linear probing's
 * deletion), so every other triple stays reachable. */
static void delete_at(totals *t, size_t i) {
    for (size_t j = (i + 1) & t->mask; t->s[j].used; j = (j + 1) & t->mask) {
        size_t k = home(t, t->s[j].e.key);
        int stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
        if (!stays) {
            t->s[i] = t->s[j];
            i = j;
        }
    }
    t->s[i].used = 0;
    t->n--;
}

/* A full table forgets the least recently sent of the (up to) 8 triples
 * that follow key's home slot. */
static void evict_near(totals *t, const uint8_t key[TOTALS_KEY]) {
    size_t best = SIZE_MAX, seen = 0;
    for (size_t i = home(t, key); seen < 8 && seen < t->n; i = (i + 1) & t->mask)
        if (t->s[i].used) {
            if (best == SIZE_MAX || t->s[i].used < t->s[best].used)
                best = i;
            seen++;
        }
    delete_at(t, best);
    t->evicted++;
}

/* The slot for a new triple: s, the empty slot find gave, or (the table
 * full) where it goes once one is forgotten, which may move the run. */
static slot *take(totals *t, const uint8_t key[TOTALS_KEY], slot *s) {
    int found;
    if (t->n >= t->max) {
        evict_near(t, key);
        s = find(t, key, &found);
    }
    t->n++;
    return s;
}

void totals_apply(totals *t, pdns_record *r, totals_entry *out) {
    uint8_t key[TOTALS_KEY];
    int found;
    totals_key(r, key);
    slot *s = find(t, key, &found);
    if (!found) {
        s = take(t, key, s);
        memcpy(s->e.key, key, TOTALS_KEY);
        s->e.count = 0;
        s->e.time_first = r->time_first;
        s->e.time_last = r->time_last;
    }
    s->used = ++t->tick;
    s->e.count = pdns_count_add(s->e.count, r->count);
    if (r->time_first < s->e.time_first)
        s->e.time_first = r->time_first;
    if (r->time_last > s->e.time_last)
        s->e.time_last = r->time_last;
    r->count = s->e.count;
    r->time_first = s->e.time_first;
    r->time_last = s->e.time_last;
    if (out)
        *out = s->e;
}

void totals_set(totals *t, const totals_entry *e) {
    int found;
    slot *s = find(t, e->key, &found);
    if (!found)
        s = take(t, e->key, s);
    s->e = *e;
    s->used = ++t->tick;
}

void totals_each(const totals *t, void (*fn)(void *ctx, const totals_entry *e),
                 void *ctx) {
    for (size_t i = 0; i <= t->mask; i++)
        if (t->s[i].used)
            fn(ctx, &t->s[i].e);
}

size_t totals_size(const totals *t) { return t->n; }

uint64_t totals_evicted(const totals *t) { return t->evicted; }
