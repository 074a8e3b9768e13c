/* fuzz_ixtree.c - libFuzzer target for the pdnsrelay module's index type
 * (relay/store/module/ixtree.c): a program of adds, removals and ranges
 * over short members, run on the tree and on a sorted array beside it;
 * every answer, the count and the bytes held must agree, and everything
 * is freed at the end (ASan's leak check). */
#include "../../relay/store/module/ixtree.c"

#include <stdio.h>

#define MAXM 512
#define MLEN 16 /* a member's bytes, at most: past the tree's 8-byte prefixes */

typedef struct {
    char s[8][MLEN];
    size_t n[8];
    size_t got;
} seen;

static char model[MAXM][MLEN];
static size_t model_len[MAXM], nmodel;

static int mcmp(const char *a, size_t an, const char *b, size_t bn) {
    int r = memcmp(a, b, an < bn ? an : bn);
    return r ? r : (an > bn) - (an < bn);
}

/* the model's place of s, and whether it is there */
static size_t mfind(const char *s, size_t n, int *eq) {
    size_t i = 0;
    while (i < nmodel && mcmp(model[i], model_len[i], s, n) < 0)
        i++;
    *eq = i < nmodel && mcmp(model[i], model_len[i], s, n) == 0;
    return i;
}

static int in_bound(const char *s, size_t n, const ixtree_bound *b, int upper) {
    if (b->inf)
        return upper ? b->inf > 0 : b->inf < 0;
    int c = mcmp(s, n, b->s, b->n);
    return upper ? (c < 0 || (c == 0 && !b->excl)) : (c > 0 || (c == 0 && !b->excl));
}

static int collect(void *arg, const char *s, size_t n) {
    seen *v = arg;
    if (v->got < 8)
        memcpy(v->s[v->got], s, n), v->n[v->got] = n;
    v->got++;
    return 0;
}

static void bound_of(const uint8_t *d, ixtree_bound *b, char *buf) {
    int k = d[0] % 6;
    if (k == 0)
        *b = (ixtree_bound){-1, 0, NULL, 0};
    else if (k == 1)
        *b = (ixtree_bound){1, 0, NULL, 0};
    else {
        size_t n = d[1] % 6;
        for (size_t j = 0; j < n; j++)
            buf[j] = "ab\0\xff"[(d[2] >> (2 * (j % 4))) & 3];
        *b = (ixtree_bound){0, k & 1, buf, n};
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ixtree *t = ixtree_new();
    nmodel = 0;
    size_t i = 0;
    while (i + 8 <= size) {
        const uint8_t *op = data + i;
        i += 8;
        /* members: 0-15 bytes from a small alphabet, so that they collide
         * and share prefixes of 8 and more */
        char m[MLEN];
        size_t n = op[1] % MLEN;
        for (size_t j = 0; j < n; j++)
            m[j] = "ab\0\xff"[(op[2 + j / 4] >> (2 * (j % 4))) & 3];
        int eq;
        size_t at = mfind(m, n, &eq);
        switch (op[0] % 4) {
        case 0:
        case 1: /* add (and, for a tree of some size, a run of them) */
            for (int r = 0; r < (op[0] % 4 == 1 ? 40 : 1); r++) {
                if (r) {
                    n = 1 + (op[4] + r * 7) % 7;
                    for (size_t j = 0; j < n; j++)
                        m[j] = (char)('a' + (op[5] * (j + 1) + r * 13 + j) % 26);
                    at = mfind(m, n, &eq);
                }
                if (ixtree_add(t, m, n) != !eq)
                    abort();
                if (!eq && nmodel < MAXM) {
                    memmove(model[at + 1], model[at], (nmodel - at) * MLEN);
                    memmove(model_len + at + 1, model_len + at, (nmodel - at) * sizeof(size_t));
                    memcpy(model[at], m, n), model_len[at] = n, nmodel++;
                } else if (!eq) {
                    ixtree_del(t, m, n); /* the model is full: keep them equal */
                }
            }
            break;
        case 2:
            if (ixtree_del(t, m, n) != eq)
                abort();
            if (eq) {
                memmove(model[at], model[at + 1], (nmodel - at - 1) * MLEN);
                memmove(model_len + at, model_len + at + 1, (nmodel - at - 1) * sizeof(size_t));
                nmodel--;
            }
            break;
        default: {
            ixtree_bound lo, hi;
            char lb[8], hb[8];
            bound_of(op + 1, &lo, lb);
            bound_of(op + 4, &hi, hb);
            size_t limit = op[7] % 5;
            seen v = {{{0}}, {0}, 0};
            size_t got = ixtree_range(t, &lo, &hi, limit, collect, &v);
            size_t want = 0, k = 0;
            for (size_t j = 0; j < nmodel; j++) {
                if (!in_bound(model[j], model_len[j], &lo, 0) ||
                    !in_bound(model[j], model_len[j], &hi, 1))
                    continue;
                if (limit && want >= limit)
                    break;
                if (k < 8 && mcmp(v.s[k], v.n[k], model[j], model_len[j]) != 0)
                    abort();
                k++, want++;
            }
            if (got != want || v.got != want)
                abort();
        }
        }
        if (ixtree_count(t) != nmodel)
            abort();
    }
    /* everything, in order */
    ixtree_bound all_lo = {-1, 0, NULL, 0}, all_hi = {1, 0, NULL, 0};
    seen v = {{{0}}, {0}, 0};
    if (ixtree_range(t, &all_lo, &all_hi, 0, collect, &v) != nmodel)
        abort();
    for (size_t j = nmodel; j-- > 0;)
        ixtree_del(t, model[j], model_len[j]);
    if (ixtree_count(t) != 0 || !t->root->leaf || t->root->n ||
        ixtree_bytes(t) != sizeof(ixtree) + node_size(1, t->root->cap))
        abort();
    ixtree_free(t);
    return 0;
}
