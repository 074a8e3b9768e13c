/* test_ixtree.c - the pdnsrelay module's index type (relay/store/module/
 * ixtree.c) against a sorted array: 200,000 random adds and removals of
 * members that share long prefixes, a tree three levels deep, every
 * range form ZRANGEBYLEX has with and without a limit, members given in
 * order filling their leaves, members of any length, the bytes held
 * going back to one empty leaf, a tree that lost nine members in ten
 * holding about the bytes a member a full one does. (fuzz_ixtree does the
 * same on short programs.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../relay/store/module/ixtree.c"

#define CAP 20000

typedef struct {
    char s[24];
    size_t n;
} mem;

static mem ref[CAP];
static size_t nref;

static int mcmp(const mem *a, const char *s, size_t n) {
    int r = memcmp(a->s, s, a->n < n ? a->n : n);
    return r ? r : (a->n > n) - (a->n < n);
}

static size_t place(const char *s, size_t n, int *eq) {
    size_t lo = 0, hi = nref;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (mcmp(&ref[mid], s, n) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *eq = lo < nref && mcmp(&ref[lo], s, n) == 0;
    return lo;
}

/* a member: "4" and 10 to 22 characters over few letters (prefixes of 8
 * bytes and more shared, as address index members share theirs) */
static size_t member(unsigned *seed, char *s) {
    size_t n = 10 + (size_t)(rand_r(seed) % 13);
    s[0] = '4';
    for (size_t i = 1; i < n; i++)
        s[i] = "0a9 "[rand_r(seed) % (i < 6 ? 1 : 4)];
    return n;
}

typedef struct {
    size_t at, bad;
} check;

static int against(void *arg, const char *s, size_t n) {
    check *c = arg;
    if (mcmp(&ref[c->at++], s, n) != 0)
        c->bad++;
    return 0;
}

static void range_check(ixtree *t, unsigned *seed) {
    char a[24], b[24];
    size_t an = member(seed, a), bn = member(seed, b);
    int ka = rand_r(seed) % 4, kb = rand_r(seed) % 4;
    ixtree_bound lo = ka == 0 ? (ixtree_bound){-1, 0, NULL, 0} : (ixtree_bound){0, ka == 1, a, an};
    ixtree_bound hi = kb == 0 ? (ixtree_bound){1, 0, NULL, 0} : (ixtree_bound){0, kb == 1, b, bn};
    size_t limit = (size_t)(rand_r(seed) % 3) * 100;
    /* the reference: from the first member not below lo */
    int eq;
    size_t from = lo.inf ? 0 : place(a, an, &eq);
    if (!lo.inf && eq && lo.excl)
        from++;
    size_t to = from;
    while (to < nref && (!limit || to - from < limit)) {
        if (!hi.inf) {
            int c = mcmp(&ref[to], b, bn);
            if (c > 0 || (c == 0 && hi.excl))
                break;
        }
        to++;
    }
    check c = {from, 0};
    assert_int_equal(ixtree_range(t, &lo, &hi, limit, against, &c), to - from);
    assert_int_equal(c.bad, 0);
}

static void test_random_against_sorted_array(void **state) {
    (void)state;
    unsigned seed = 7;
    ixtree *t = ixtree_new();
    for (int op = 0; op < 200000; op++) {
        char s[24];
        size_t n = member(&seed, s);
        int eq;
        size_t at = place(s, n, &eq);
        /* adds outnumber removals until the set is large, then even */
        if (rand_r(&seed) % 100 < (nref < CAP / 2 ? 80 : 50)) {
            assert_int_equal(ixtree_add(t, s, n), !eq);
            if (!eq && nref < CAP) {
                memmove(&ref[at + 1], &ref[at], (nref - at) * sizeof(mem));
                memcpy(ref[at].s, s, n), ref[at].n = n, nref++;
            } else if (!eq) {
                ixtree_del(t, s, n);
            }
        } else {
            if (eq && rand_r(&seed) % 2 == 0) {
                at = (size_t)rand_r(&seed) % nref; /* a member that is there */
                memcpy(s, ref[at].s, ref[at].n), n = ref[at].n;
            }
            place(s, n, &eq);
            assert_int_equal(ixtree_del(t, s, n), eq);
            if (eq) {
                memmove(&ref[at], &ref[at + 1], (nref - at - 1) * sizeof(mem));
                nref--;
            }
        }
        assert_int_equal(ixtree_count(t), nref);
        if (op % 500 == 0)
            range_check(t, &seed);
    }
    int depth = 1;
    for (node *x = t->root; !x->leaf; x = kids(x)[0])
        depth++;
    assert_true(depth >= 3);
    for (size_t i = 0; i < nref; i++)
        assert_int_equal(ixtree_del(t, ref[i].s, ref[i].n), 1);
    assert_int_equal(ixtree_count(t), 0);
    assert_true(t->root->leaf);
    assert_int_equal(ixtree_bytes(t), sizeof(ixtree) + node_size(1, t->root->cap));
    ixtree_free(t);
    nref = 0;
}

typedef struct {
    char got[3][9];
    int n;
} kept;

static int keep(void *arg, const char *m, size_t n) {
    kept *c = arg;
    if (c->n < 3)
        memcpy(c->got[c->n], m, n < 8 ? n : 8);
    c->n++;
    return 0;
}

static void test_members_in_order_fill_their_leaves(void **state) {
    (void)state;
    ixtree *t = ixtree_new();
    char s[16];
    for (int i = 0; i < 100000; i++)
        assert_int_equal(ixtree_add(t, s, (size_t)snprintf(s, sizeof(s), "%08d", i)), 1);
    /* full leaves: about 16 B of node a member beyond its 8 bytes and the
     * entry (not the 50 % a split in the middle leaves) */
    size_t per = ixtree_bytes(t) / ixtree_count(t);
    assert_true(per < sizeof(ent) + 8 + 8);
    ixtree_bound lo = {0, 1, "00049999", 8}, hi = {0, 0, "00050002", 8};
    kept c = {{{0}}, 0};
    assert_int_equal(ixtree_range(t, &lo, &hi, 0, keep, &c), 3);
    assert_string_equal(c.got[0], "00050000");
    assert_string_equal(c.got[2], "00050002");
    ixtree_free(t);
}

typedef struct {
    size_t n[16], got;
} lens;

static int keep_len(void *arg, const char *m, size_t n) {
    lens *l = arg;
    (void)m;
    l->n[l->got++] = n;
    return 0;
}

static void test_members_of_any_length(void **state) {
    (void)state;
    /* lengths around the bytes that hold them (1 below 128, 2 below
     * 16,384, more above), in order: "x" repeated */
    static const size_t len[] = {0, 1, 8, 9, 127, 128, 300, 16383, 16384, 70000};
    size_t k = sizeof(len) / sizeof(len[0]);
    char *buf = malloc(70000);
    memset(buf, 'x', 70000);
    ixtree *t = ixtree_new();
    for (size_t i = k; i-- > 0;)
        assert_int_equal(ixtree_add(t, buf, len[i]), 1);
    for (size_t i = 0; i < k; i++)
        assert_int_equal(ixtree_add(t, buf, len[i]), 0);
    ixtree_bound lo = {-1, 0, NULL, 0}, hi = {1, 0, NULL, 0};
    lens l = {{0}, 0};
    assert_int_equal(ixtree_range(t, &lo, &hi, 0, keep_len, &l), k);
    for (size_t i = 0; i < k; i++)
        assert_int_equal(l.n[i], len[i]);
    for (size_t i = 0; i < k; i += 2)
        assert_int_equal(ixtree_del(t, buf, len[i]), 1);
    assert_int_equal(ixtree_count(t), k / 2);
    for (size_t i = 1; i < k; i += 2)
        assert_int_equal(ixtree_del(t, buf, len[i]), 1);
    assert_int_equal(ixtree_bytes(t), sizeof(ixtree) + node_size(1, t->root->cap));
    ixtree_free(t);
    free(buf);
}

static void test_bounds_parse_as_zrangebylex(void **state) {
    (void)state;
    ixtree_bound b;
    assert_int_equal(ixtree_bound_parse("-", 1, &b), 0);
    assert_int_equal(b.inf, -1);
    assert_int_equal(ixtree_bound_parse("+", 1, &b), 0);
    assert_int_equal(b.inf, 1);
    assert_int_equal(ixtree_bound_parse("(ab", 3, &b), 0);
    assert_true(b.excl && b.n == 2 && memcmp(b.s, "ab", 2) == 0);
    assert_int_equal(ixtree_bound_parse("[", 1, &b), 0);
    assert_true(!b.excl && b.n == 0 && !b.inf);
    assert_int_equal(ixtree_bound_parse("ab", 2, &b), -1);
    assert_int_equal(ixtree_bound_parse("", 0, &b), -1);
    assert_int_equal(ixtree_bound_parse("--", 2, &b), -1);
}

/* Every member of the tree, in order, is the reference's. */
static void whole_check(ixtree *t) {
    ixtree_bound lo = {-1, 0, NULL, 0}, hi = {1, 0, NULL, 0};
    check c = {0, 0};
    assert_int_equal(ixtree_range(t, &lo, &hi, 0, against, &c), nref);
    assert_int_equal(c.bad, 0);
}

/* Adds a random member to t and to the reference (room permitting). */
static void add_random(ixtree *t, unsigned *seed) {
    char s[24];
    size_t n = member(seed, s);
    int eq;
    size_t at = place(s, n, &eq);
    assert_int_equal(ixtree_add(t, s, n), !eq);
    if (!eq) {
        memmove(&ref[at + 1], &ref[at], (nref - at) * sizeof(mem));
        memcpy(ref[at].s, s, n), ref[at].n = n, nref++;
    }
}

static void test_a_tree_that_shrank_gives_back_its_room(void **state) {
    (void)state;
    unsigned seed = 11;
    ixtree *t = ixtree_new();
    while (nref < CAP)
        add_random(t, &seed);
    double full = (double)ixtree_bytes(t) / (double)ixtree_count(t);
    /* nine in ten go, at random: nodes left small are merged, so the
     * bytes a member stay near a full tree's (they were 6 times as many
     * when only empty nodes went) */
    while (nref > CAP / 10) {
        size_t at = (size_t)rand_r(&seed) % nref;
        assert_int_equal(ixtree_del(t, ref[at].s, ref[at].n), 1);
        memmove(&ref[at], &ref[at + 1], (nref - at - 1) * sizeof(mem));
        nref--;
        if (nref % 1000 == 0)
            whole_check(t), range_check(t, &seed);
    }
    assert_int_equal(ixtree_count(t), nref);
    double left = (double)ixtree_bytes(t) / (double)ixtree_count(t);
    assert_true(left < 1.6 * full);
    /* and it grows again as before */
    for (int i = 0; i < 2000; i++)
        add_random(t, &seed);
    whole_check(t);
    ixtree_free(t);
    nref = 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_against_sorted_array),
        cmocka_unit_test(test_members_in_order_fill_their_leaves),
        cmocka_unit_test(test_members_of_any_length),
        cmocka_unit_test(test_bounds_parse_as_zrangebylex),
        cmocka_unit_test(test_a_tree_that_shrank_gives_back_its_room),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
