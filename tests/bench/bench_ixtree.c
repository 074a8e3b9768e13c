/* bench_ixtree.c - the pdnsrelay module's index type (ixtree.c) alone:
 * N adds in three shapes of the store's index keys, against a baseline in
 * the same run, an unordered chained hash set of the same members (one
 * allocation a member, a table of pointers: what Redis's dictionary is).
 *
 *   names      N random names into 65,536 trees (the f: buckets)
 *   addresses  N "4<hex address> <name>" members into one tree (ix:ip),
 *              every address different
 *   shared     the same with 100 names an address (hosting and CDN
 *              addresses): members whose first 8 bytes tie
 *
 * Prints ns an add for each, their ratio, and the tree's bytes a member
 * beyond the member's own. Usage: bench_ixtree [N] (default 2,000,000). */
#include "../../relay/store/module/ixtree.c"

#include <stdio.h>
#include <time.h>

#include "machine.h"

#define BUCKETS 65536

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static uint64_t seed = 88172645463325252ULL;
static uint64_t rnd(void) {
    seed ^= seed << 13;
    seed ^= seed >> 7;
    seed ^= seed << 17;
    return seed;
}

/* The baseline: a chained hash set, doubling at load 1, as Redis's. */
typedef struct item {
    struct item *next;
    size_t n;
    char s[];
} item;

typedef struct {
    item **t;
    size_t cap, count;
} hset;

static uint64_t fnv1a(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    return h;
}

static void hset_add(hset *h, const char *s, size_t n) {
    if (h->count >= h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 1024;
        item **t = calloc(cap, sizeof(*t));
        for (size_t i = 0; i < h->cap; i++)
            for (item *e = h->t[i], *nx; e; e = nx) {
                nx = e->next;
                size_t j = fnv1a(e->s, e->n) & (cap - 1);
                e->next = t[j], t[j] = e;
            }
        free(h->t);
        h->t = t, h->cap = cap;
    }
    size_t j = fnv1a(s, n) & (h->cap - 1);
    for (item *e = h->t[j]; e; e = e->next)
        if (e->n == n && memcmp(e->s, s, n) == 0)
            return;
    item *e = malloc(sizeof(*e) + n);
    e->n = n;
    memcpy(e->s, s, n);
    e->next = h->t[j], h->t[j] = e;
    h->count++;
}

static void hset_free(hset *h) {
    for (size_t i = 0; i < h->cap; i++)
        for (item *e = h->t[i], *nx; e; e = nx)
            nx = e->next, free(e);
    free(h->t);
}

/* The members of one shape, each 48 bytes at most, NUL-padded. */
static char *members(const char *shape, size_t n) {
    char *m = malloc(n * 48);
    for (size_t i = 0; i < n; i++) {
        uint64_t r = rnd();
        char *s = m + i * 48;
        if (strcmp(shape, "names") == 0)
            snprintf(s, 48, "h%llu.z%llu.example", (unsigned long long)(r % 100000000),
                     (unsigned long long)((r >> 32) % 50000));
        else
            snprintf(s, 48, "4%08llx h%llu.z%llu.example",
                     (unsigned long long)(strcmp(shape, "shared") == 0
                                              ? (r >> 8) % (n / 100 + 1) * 65537
                                              : (r >> 8) & 0xffffffff),
                     (unsigned long long)(r % 100000000), (unsigned long long)((r >> 32) % 50000));
    }
    return m;
}

int main(int argc, char **argv) {
    size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 2000000;
    char machine_[400];
    pdns_machine_describe(machine_, sizeof(machine_));
    printf("%s\n\nthe module's index type, %zu adds a shape, one core\n", machine_, n);
    printf("| shape | tree ns an add | hash set ns an add | tree / hash set | tree bytes a "
           "member beyond it |\n|---|---|---|---|---|\n");
    static const char *const shapes[] = {"names", "addresses", "shared"};
    for (int k = 0; k < 3; k++) {
        char *m = members(shapes[k], n);
        size_t own = 0;
        for (size_t i = 0; i < n; i++)
            own += strlen(m + i * 48);
        int many = strcmp(shapes[k], "names") == 0;
        ixtree **t = malloc((many ? BUCKETS : 1) * sizeof(*t));
        for (int b = 0; b < (many ? BUCKETS : 1); b++)
            t[b] = ixtree_new();
        double t0 = now();
        size_t added = 0;
        for (size_t i = 0; i < n; i++) {
            const char *s = m + i * 48;
            size_t l = strlen(s);
            added += (size_t)ixtree_add(t[many ? fnv1a(s, l) % BUCKETS : 0], s, l);
        }
        double tree_s = now() - t0;
        size_t bytes = 0;
        for (int b = 0; b < (many ? BUCKETS : 1); b++)
            bytes += ixtree_bytes(t[b]), ixtree_free(t[b]);
        free(t);
        hset h = {NULL, 0, 0};
        t0 = now();
        for (size_t i = 0; i < n; i++)
            hset_add(&h, m + i * 48, strlen(m + i * 48));
        double hash_s = now() - t0;
        if (h.count != added) {
            fprintf(stderr, "bench_ixtree: the tree holds %zu members, the hash set %zu\n", added,
                    h.count);
            return 1;
        }
        hset_free(&h);
        free(m);
        printf("| %s | %.0f | %.0f | %.2fx | %.0f |\n", shapes[k], tree_s * 1e9 / (double)n,
               hash_s * 1e9 / (double)n, tree_s / hash_s, (double)(bytes - own) / (double)added);
    }
    return 0;
}
