/* ixtree.c - an ordered set of byte strings: a B+tree whose nodes hold up
 * to 63 entries, each the member's first 8 bytes (big-endian, so that most
 * comparisons are one integer compare) and its length and bytes. A node
 * starts small (a leaf with room for 2, a new root for 4) and doubles, so
 * that the many small index buckets (a few names each) stay small; 63 makes
 * a full leaf 1,016 bytes and a full inner node 1,520, just under one of
 * the allocator's sizes. Members are in memcmp order, a prefix
 * first: ZRANGEBYLEX's. A removal frees a node that becomes empty and
 * merges one left with a third of a node or less into a neighbour, when
 * the two fill two thirds at most.
 *
 * An inner node's entry i is a lower bound of its child i (a copy of the
 * first member that child had when it was made); entry 0 is never
 * compared. Allocations do not fail: the module gives the tree Redis's
 * allocator, which ends the server when memory is out, as every Redis
 * structure does; with malloc a NULL aborts. */
#include "ixtree.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FAN 63
#define LEAF_FIRST 2

/* An entry: the member's first 8 bytes and its allocation, which holds
 * its length (7 bits a byte, low first: one byte below 128) and then its
 * bytes. 16 bytes an entry. */
typedef struct {
    uint64_t pre;
    unsigned char *m;
} ent;

typedef struct node {
    uint16_t n, cap;
    uint8_t leaf;
    ent k[]; /* an inner node's cap children follow its entries (kids) */
} node;

struct ixtree {
    node *root;
    size_t count, bytes;
};

typedef struct {
    uint64_t pre;
    const char *s;
    size_t n;
} probe;

static void *(*tree_alloc)(size_t) = malloc;
static void (*tree_release)(void *) = free;

void ixtree_set_allocator(void *(*alloc)(size_t), void (*release)(void *)) {
    tree_alloc = alloc;
    tree_release = release;
}

static void *take(ixtree *t, size_t n) {
    void *p = tree_alloc(n);
    if (!p)
        abort();
    t->bytes += n;
    return p;
}

static void give(ixtree *t, void *p, size_t n) {
    tree_release(p);
    t->bytes -= n;
}

static size_t node_size(int leaf, int cap) {
    return sizeof(node) + (size_t)cap * (sizeof(ent) + (leaf ? 0 : sizeof(node *)));
}

static node *node_new(ixtree *t, int leaf, int cap) {
    node *x = take(t, node_size(leaf, cap));
    x->n = 0;
    x->cap = (uint16_t)cap;
    x->leaf = (uint8_t)leaf;
    return x;
}

/* An inner node's children. */
static node **kids(const node *x) { return (node **)(x->k + x->cap); }

static void node_put(ixtree *t, node *x) { give(t, x, node_size(x->leaf, x->cap)); }

static probe probe_of(const char *s, size_t n) {
    unsigned char b[8] = {0};
    memcpy(b, s, n < 8 ? n : 8);
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | b[i];
    return (probe){v, s, n};
}

static size_t head_len(size_t n) {
    size_t h = 1;
    while (n >= 128)
        n >>= 7, h++;
    return h;
}

/* The bytes of e's member, and their number in *n. */
static const char *bytes_of(const ent *e, size_t *n) {
    const unsigned char *q = e->m;
    size_t v = 0;
    int sh = 0;
    do
        v |= (size_t)(*q & 127) << sh, sh += 7;
    while (*q++ & 128);
    *n = v;
    return (const char *)q;
}

static probe probe_at(const ent *e) {
    probe p;
    p.pre = e->pre;
    p.s = bytes_of(e, &p.n);
    return p;
}

static ent ent_copy(ixtree *t, const probe *p) {
    size_t n = p->n;
    ent e = {p->pre, take(t, head_len(n) + n)};
    unsigned char *q = e.m;
    for (; n >= 128; n >>= 7)
        *q++ = (unsigned char)(n | 128);
    *q++ = (unsigned char)n;
    memcpy(q, p->s, p->n);
    return e;
}

static void ent_put(ixtree *t, ent *e) {
    size_t n;
    bytes_of(e, &n);
    give(t, e->m, head_len(n) + n);
}

/* The order of e against p: <0, 0, >0. */
static int cmp(const ent *e, const probe *p) {
    if (e->pre != p->pre)
        return e->pre < p->pre ? -1 : 1;
    size_t en;
    const char *es = bytes_of(e, &en);
    size_t m = en < p->n ? en : p->n;
    int r = m > 8 ? memcmp(es + 8, p->s + 8, m - 8) : 0;
    if (r)
        return r;
    return en < p->n ? -1 : en > p->n;
}

/* The first entry of x not below p; *eq when it is p. Every cache line
 * of x's entries is asked for first, at once: a binary search over a
 * node not in the cache would otherwise wait for each of its probes in
 * turn. The prefixes alone then find the entries whose first 8 bytes are
 * p's (an entry of a lower prefix is below p, of a higher one above it),
 * and only their members are read, asked for at once too. */
static int lower(const node *x, const probe *p, int *eq) {
    for (const char *c = (const char *)x->k, *e = (const char *)(x->k + x->n); c < e; c += 64)
        __builtin_prefetch(c);
    if (!x->leaf)
        for (const char *c = (const char *)kids(x), *e = (const char *)(kids(x) + x->n); c < e;
             c += 64)
            __builtin_prefetch(c);
    int lo = x->leaf ? 0 : 1, hi = x->n;
    while (lo < hi) { /* the first prefix not below p's */
        int mid = (lo + hi) / 2;
        if (x->k[mid].pre < p->pre)
            lo = mid + 1;
        else
            hi = mid;
    }
    int end = lo;
    while (end < x->n && x->k[end].pre == p->pre)
        __builtin_prefetch(x->k[end++].m);
    hi = end;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (cmp(&x->k[mid], p) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *eq = lo < end && cmp(&x->k[lo], p) == 0;
    return lo;
}

/* The child of inner node x where p belongs. */
static int child_of(const node *x, const probe *p) {
    int eq, i = lower(x, p, &eq);
    return eq ? i : i - 1;
}

static void ins_at(node *x, int i, ent e, node *child) {
    memmove(&x->k[i + 1], &x->k[i], (size_t)(x->n - i) * sizeof(ent));
    x->k[i] = e;
    if (child) {
        node **c = kids(x);
        memmove(&c[i + 1], &c[i], (size_t)(x->n - i) * sizeof(node *));
        c[i] = child;
    }
    x->n++;
}

/* Splits full node x before an entry going to place i: the new right
 * node (its entry 0 the separator the parent copies) and, in *at, the
 * node and place the entry goes to. Going to the end, x stays full and
 * the right node takes only the new entry: members given in order fill
 * their leaves. */
static node *split(ixtree *t, node *x, int *i, node **at) {
    int h = *i == x->n ? x->n : FAN / 2;
    node *r = node_new(t, x->leaf, FAN);
    r->n = (uint16_t)(x->n - h);
    memcpy(r->k, x->k + h, (size_t)r->n * sizeof(ent));
    if (!x->leaf)
        memcpy(kids(r), kids(x) + h, (size_t)r->n * sizeof(node *));
    x->n = (uint16_t)h;
    if (*i >= h)
        *at = r, *i -= h;
    else
        *at = x;
    return r;
}

/* *xp again, with room for twice its entries (FAN at most). */
static node *grow(ixtree *t, node **xp) {
    node *x = *xp, *y = node_new(t, x->leaf, x->cap * 2 < FAN ? x->cap * 2 : FAN);
    memcpy(y->k, x->k, (size_t)x->n * sizeof(ent));
    if (!x->leaf)
        memcpy(kids(y), kids(x), (size_t)x->n * sizeof(node *));
    y->n = x->n;
    node_put(t, x);
    return *xp = y;
}

/* Adds p under *xp: 1 when new. When the node split, *right is the new
 * node after it and *sep its lower bound (a copy the caller keeps). */
static int add(ixtree *t, node **xp, const probe *p, node **right, ent *sep) {
    node *x = *xp, *at;
    int eq;
    *right = NULL;
    if (x->leaf) {
        int i = lower(x, p, &eq);
        if (eq)
            return 0;
        if (x->n == x->cap && x->cap < FAN)
            x = grow(t, xp);
        ent e = ent_copy(t, p);
        if (x->n < x->cap) {
            ins_at(x, i, e, NULL);
            return 1;
        }
        *right = split(t, x, &i, &at);
        ins_at(at, i, e, NULL);
    } else {
        int j = child_of(x, p);
        node *cr;
        ent cs;
        int added = add(t, &kids(x)[j], p, &cr, &cs);
        if (!cr)
            return added;
        int i = j + 1;
        if (x->n == x->cap && x->cap < FAN)
            x = grow(t, xp);
        if (x->n < x->cap) {
            ins_at(x, i, cs, cr);
            return added;
        }
        *right = split(t, x, &i, &at);
        ins_at(at, i, cs, cr);
    }
    probe rp = probe_at(&(*right)->k[0]);
    *sep = ent_copy(t, &rp);
    return 1;
}

/* Children i and i+1 of inner node x as one node (their entries fit in
 * FAN): child i+1's entries go after child i's, and x loses entry i+1.
 * Between the two, x's entry i+1 is the lower bound of child i+1's first
 * child (its own entry 0, never compared, may not be one: it goes). */
static void join_kids(ixtree *t, node *x, int i) {
    node **c = kids(x);
    node *l = c[i], *r = c[i + 1];
    int n = l->n + r->n;
    while (l->cap < n)
        l = grow(t, &c[i]);
    memcpy(l->k + l->n, r->k, (size_t)r->n * sizeof(ent));
    if (l->leaf) {
        ent_put(t, &x->k[i + 1]);
    } else {
        ent_put(t, &l->k[l->n]);
        l->k[l->n] = x->k[i + 1];
        memcpy(kids(l) + l->n, kids(r), (size_t)r->n * sizeof(node *));
    }
    l->n = (uint16_t)n;
    node_put(t, r);
    memmove(&x->k[i + 1], &x->k[i + 2], (size_t)(x->n - i - 2) * sizeof(ent));
    memmove(&c[i + 1], &c[i + 2], (size_t)(x->n - i - 2) * sizeof(node *));
    x->n--;
}

/* A node this small after a removal is merged with a sibling when the
 * two fit in two thirds of a node (room left: no split soon after), so
 * that a tree that shrank gives back its nodes' room. */
#define SMALL (FAN / 3)
#define MERGED_MAX (FAN * 2 / 3)

/* Removes p under x: 1 when it was there. A child left empty goes; a
 * child left small is merged with a neighbour that has room. */
static int del(ixtree *t, node *x, const probe *p) {
    int eq;
    if (x->leaf) {
        int i = lower(x, p, &eq);
        if (!eq)
            return 0;
        ent_put(t, &x->k[i]);
        memmove(&x->k[i], &x->k[i + 1], (size_t)(x->n - i - 1) * sizeof(ent));
        x->n--;
        return 1;
    }
    int j = child_of(x, p);
    node **c = kids(x);
    if (!del(t, c[j], p))
        return 0;
    if (c[j]->n == 0) {
        node_put(t, c[j]);
        ent_put(t, &x->k[j]);
        memmove(&x->k[j], &x->k[j + 1], (size_t)(x->n - j - 1) * sizeof(ent));
        memmove(&c[j], &c[j + 1], (size_t)(x->n - j - 1) * sizeof(node *));
        x->n--;
    } else if (c[j]->n <= SMALL) {
        if (j + 1 < x->n && c[j]->n + c[j + 1]->n <= MERGED_MAX)
            join_kids(t, x, j);
        else if (j > 0 && c[j - 1]->n + c[j]->n <= MERGED_MAX)
            join_kids(t, x, j - 1);
    }
    return 1;
}

ixtree *ixtree_new(void) {
    ixtree tmp = {NULL, 0, 0};
    ixtree *t = take(&tmp, sizeof(*t));
    *t = tmp;
    t->root = node_new(t, 1, LEAF_FIRST);
    return t;
}

static void free_node(ixtree *t, node *x) {
    for (int i = 0; i < x->n; i++) {
        if (!x->leaf)
            free_node(t, kids(x)[i]);
        ent_put(t, &x->k[i]);
    }
    node_put(t, x);
}

void ixtree_free(ixtree *t) {
    if (!t)
        return;
    free_node(t, t->root);
    tree_release(t);
}

int ixtree_add(ixtree *t, const char *s, size_t n) {
    probe p = probe_of(s, n);
    node *right;
    ent sep;
    int added = add(t, &t->root, &p, &right, &sep);
    if (right) {
        node *r = node_new(t, 0, 4);
        probe lp = probe_at(&t->root->k[0]);
        r->k[0] = ent_copy(t, &lp);
        kids(r)[0] = t->root;
        r->k[1] = sep;
        kids(r)[1] = right;
        r->n = 2;
        t->root = r;
    }
    t->count += (size_t)added;
    return added;
}

int ixtree_del(ixtree *t, const char *s, size_t n) {
    probe p = probe_of(s, n);
    if (!del(t, t->root, &p))
        return 0;
    t->count--;
    /* a root with one child gives way to it; an inner root with none
     * becomes an empty leaf */
    while (!t->root->leaf && t->root->n <= 1) {
        node *old = t->root;
        t->root = old->n ? kids(old)[0] : node_new(t, 1, LEAF_FIRST);
        if (old->n)
            ent_put(t, &old->k[0]);
        node_put(t, old);
    }
    return 1;
}

size_t ixtree_count(const ixtree *t) { return t->count; }

size_t ixtree_bytes(const ixtree *t) { return t->bytes; }

int ixtree_bound_parse(const char *b, size_t n, ixtree_bound *out) {
    if (n == 1 && (b[0] == '-' || b[0] == '+')) {
        *out = (ixtree_bound){b[0] == '-' ? -1 : 1, 0, NULL, 0};
        return 0;
    }
    if (n >= 1 && (b[0] == '[' || b[0] == '(')) {
        *out = (ixtree_bound){0, b[0] == '(', b + 1, n - 1};
        return 0;
    }
    return -1;
}

typedef struct {
    const ixtree_bound *hi;
    probe hp;
    size_t limit, given;
    int (*fn)(void *, const char *, size_t);
    void *arg;
} walk_state;

/* Gives the members of x from place lo on (NULL: from its first); 1 when
 * the walk is over (past hi, the limit, or fn said so). */
static int walk(const node *x, const probe *lo, int lo_excl, walk_state *w) {
    int eq, i = 0;
    if (x->leaf) {
        if (lo) {
            i = lower(x, lo, &eq);
            i += eq && lo_excl;
        }
        for (; i < x->n; i++) {
            const ent *e = &x->k[i];
            if (w->hi->inf == 0) {
                int c = cmp(e, &w->hp);
                if (c > 0 || (c == 0 && w->hi->excl))
                    return 1;
            }
            w->given++;
            size_t n;
            const char *m = bytes_of(e, &n);
            if (w->fn(w->arg, m, n) || (w->limit && w->given >= w->limit))
                return 1;
        }
        return 0;
    }
    int j = lo ? child_of(x, lo) : 0;
    for (int c = j; c < x->n; c++)
        if (walk(kids(x)[c], c == j ? lo : NULL, lo_excl, w))
            return 1;
    return 0;
}

size_t ixtree_range(const ixtree *t, const ixtree_bound *lo, const ixtree_bound *hi, size_t limit,
                    int (*fn)(void *arg, const char *s, size_t n), void *arg) {
    if (lo->inf == 1 || hi->inf == -1)
        return 0;
    walk_state w = {hi, {0, NULL, 0}, limit, 0, fn, arg};
    if (hi->inf == 0)
        w.hp = probe_of(hi->s, hi->n);
    probe lp;
    if (lo->inf == 0)
        lp = probe_of(lo->s, lo->n);
    walk(t->root, lo->inf == 0 ? &lp : NULL, lo->excl, &w);
    return w.given;
}
