/* suffix.c - open-addressing hash set of name rules, probed once per label
 * of the name being matched. See suffix.h. */
#include "suffix.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

typedef struct rule {
    uint64_t hash;     /* 0: empty slot */
    char *name;
    uint32_t len;
    uint8_t exact;
} rule;

struct suffix_set {
    rule *slots;
    size_t cap;        /* a power of two, load <= 1/2 */
    size_t n;
    size_t n_exact;    /* exact rules: probe the whole name only if any */
    int has_root;      /* the rule "." */
    uint64_t seed;
};

suffix_set *suffix_set_new(void) {
    suffix_set *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->cap = 64;
    s->slots = calloc(s->cap, sizeof(rule));
    if (!s->slots) {
        free(s);
        return NULL;
    }
    randombytes_buf(&s->seed, sizeof(s->seed));
    return s;
}

void suffix_set_free(suffix_set *s) {
    if (!s)
        return;
    for (size_t i = 0; i < s->cap; i++)
        free(s->slots[i].name);
    free(s->slots);
    free(s);
}

size_t suffix_set_size(const suffix_set *s) {
    return s->n;
}

/* The hash of a suffix is built from its last byte towards its first, so
 * that one right-to-left pass yields the hash of every suffix. The final
 * mix makes it usable as a table index; exact rules hash differently. */
#define STEP(h, c) (((h) ^ (uint8_t)(c)) * 0x100000001b3ULL)

static uint64_t finish(uint64_t h, int exact) {
    h ^= (uint64_t)exact * 0x9e3779b97f4a7c15ULL;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h ? h : 1;
}

static uint64_t hash_of(const suffix_set *s, const char *p, size_t len,
                        int exact) {
    uint64_t h = s->seed;
    for (size_t i = len; i-- > 0;)
        h = STEP(h, p[i]);
    return finish(h, exact);
}

static const rule *find(const suffix_set *s, uint64_t h, const char *p,
                        size_t len, int exact) {
    for (size_t i = h & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
        const rule *r = &s->slots[i];
        if (!r->hash)
            return NULL;
        if (r->hash == h && r->len == len && r->exact == exact &&
            memcmp(r->name, p, len) == 0)
            return r;
    }
}

static int grow(suffix_set *s) {
    size_t cap = s->cap * 2;
    rule *slots = calloc(cap, sizeof(rule));
    if (!slots)
        return -1;
    for (size_t i = 0; i < s->cap; i++) {
        rule *r = &s->slots[i];
        if (!r->hash)
            continue;
        size_t j = r->hash & (cap - 1);
        while (slots[j].hash)
            j = (j + 1) & (cap - 1);
        slots[j] = *r;
    }
    free(s->slots);
    s->slots = slots;
    s->cap = cap;
    return 0;
}

int suffix_set_add(suffix_set *s, const char *name, size_t len, int exact) {
    exact = !!exact;
    uint64_t h = hash_of(s, name, len, exact);
    if (find(s, h, name, len, exact))
        return 0;
    if ((s->n + 1) * 2 > s->cap && grow(s) < 0)
        return -1;
    char *copy = malloc(len + 1);
    if (!copy)
        return -1;
    memcpy(copy, name, len);
    copy[len] = '\0';
    size_t i = h & (s->cap - 1);
    while (s->slots[i].hash)
        i = (i + 1) & (s->cap - 1);
    s->slots[i] = (rule){h, copy, (uint32_t)len, (uint8_t)exact};
    s->n++;
    s->n_exact += exact;
    if (!exact && len == 1 && name[0] == '.')
        s->has_root = 1;
    return 0;
}

int suffix_set_has(const suffix_set *s, const char *name, size_t len, int exact) {
    if (!s || !s->n)
        return 0;
    exact = !!exact;
    return find(s, hash_of(s, name, len, exact), name, len, exact) != NULL;
}

const char *suffix_set_which(const suffix_set *s, const char *name,
                             size_t len, int *exact) {
    if (!s || !s->n)
        return NULL;
    const rule *r;
    /* the root rule "." matches everything */
    if (s->has_root) {
        *exact = 0;
        return ".";
    }
    if (s->n_exact &&
        (r = find(s, hash_of(s, name, len, 1), name, len, 1)) != NULL) {
        *exact = 1;
        return r->name;
    }
    /* right to left: at every label start, probe the suffix from there */
    uint64_t h = s->seed;
    for (size_t i = len; i-- > 0;) {
        h = STEP(h, name[i]);
        int boundary = i == 0 || (name[i - 1] == '.' &&
                                  (i < 2 || name[i - 2] != '\\'));
        if (!boundary)
            continue;
        if ((r = find(s, finish(h, 0), name + i, len - i, 0)) != NULL) {
            *exact = 0;
            return r->name;
        }
    }
    return NULL;
}

int suffix_set_match(const suffix_set *s, const char *name, size_t len) {
    int exact;
    return suffix_set_which(s, name, len, &exact) != NULL;
}

void suffix_set_each(const suffix_set *s,
                     void (*fn)(void *ctx, const char *rule, int exact),
                     void *ctx) {
    for (size_t i = 0; i < s->cap; i++)
        if (s->slots[i].hash)
            fn(ctx, s->slots[i].name, s->slots[i].exact);
}
