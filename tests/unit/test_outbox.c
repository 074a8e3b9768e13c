/* test_outbox.c - a partner's outbox file after a crash (share_outbox_mend):
 * over random files of whole batches, with and without a batch cut short
 * at any byte, the file is cut back to the end of its last whole batch
 * and that batch's seq is found; lines longer than the 64 KiB the scan
 * reads at a time, a block boundary inside the last trailer, and trailers
 * cut short, included. And the batches after the last one a partner's
 * outbox in Redis has (share_outbox_since): given in order, whole, only
 * while they go on from its chain, are this relay's and are intact. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include <sodium.h>

#include "batch.h"
#include "buf.h"
#include "share.h"
#include "tmpdir.h"

static uint64_t rnd_state = 88172645463325252ull;
static uint64_t rnd(uint64_t n) {
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 7;
    rnd_state ^= rnd_state << 17;
    return rnd_state % n;
}

/* A record line; now and then a long one (beyond a scan block). */
static void record(pdns_buf *b, int i) {
    size_t pad = rnd(20) == 0 ? 60000 + rnd(80000) : rnd(300);
    pdns_buf_printf(b, "{\"rrname\":\"h%d.test\",\"x\":\"", i);
    for (size_t k = 0; k < pad; k++)
        pdns_buf_append(b, "y", 1);
    pdns_buf_append(b, "\"}\n", 3);
}

/* A trailer line (its signature of a random length, as the fields vary). */
static void trailer(pdns_buf *b, uint64_t seq) {
    pdns_buf_printf(b, "{\"pdns_relay_batch\":1,\"origin\":\"r\",\"partner\":\"p\",\"seq\":%llu,"
                    "\"sig\":\"", (unsigned long long)seq);
    for (size_t k = rnd(400); k > 0; k--)
        pdns_buf_append(b, "ab", 2);
    pdns_buf_append(b, "\"}\n", 3);
}

/* Where the last line of b starts. */
static size_t trailer_at(const pdns_buf *b) {
    size_t i = b->len ? b->len - 1 : 0;
    while (i > 0 && b->p[i - 1] != '\n')
        i--;
    return i;
}

static void test_mend_random_outboxes(void **state) {
    (void)state;
    char path[128];
    snprintf(path, sizeof(path), "%s/p.ndjson", dir);
    pdns_buf b = {0}, next = {0};
    for (int it = 0; it < 300; it++) {
        b.len = 0;
        uint64_t seq = 0;
        for (int k = (int)rnd(5); k > 0; k--) {
            for (int r = (int)rnd(6); r > 0; r--)
                record(&b, r);
            trailer(&b, ++seq);
        }
        size_t whole = b.len, tlen = whole - trailer_at(&b);
        if (it % 3 == 0 && seq) {
            /* a torn tail of a length that puts the scan's first block
             * boundary (64 KiB from the end) inside the last trailer */
            size_t t = 65536 - 1 - rnd(tlen - 1);
            pdns_buf_printf(&b, "{\"rrname\":\"");
            while (b.len < whole + t)
                pdns_buf_append(&b, "z", 1);
        } else if (rnd(10) < 7) { /* the next batch, cut short at any byte */
            next.len = 0;
            for (int r = (int)rnd(6); r > 0; r--)
                record(&next, r);
            trailer(&next, seq + 1);
            pdns_buf_append(&b, next.p, rnd(next.len));
        }
        int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, b.p, b.len), (ssize_t)b.len);
        uint64_t got = 99;
        assert_int_equal(share_outbox_mend(fd, path, &got), 0);
        struct stat st;
        assert_int_equal(fstat(fd, &st), 0);
        assert_int_equal((size_t)st.st_size, whole);
        assert_int_equal(got, seq);
        /* mended once, it is left as it is */
        assert_int_equal(share_outbox_mend(fd, path, &got), 0);
        assert_int_equal(fstat(fd, &st), 0);
        assert_int_equal((size_t)st.st_size, whole);
        close(fd);
    }
    pdns_buf_free(&b);
    pdns_buf_free(&next);
}

/* ---- share_outbox_since: the batches after the last one Redis has ---- */

enum { NB = 10 };
static uint8_t chains[NB + 1][BATCH_HASH]; /* chains[k]: batch k's chain hash */
static size_t starts[NB + 2];               /* where batch k starts in the file */

/* Batches 1..NB as this relay writes them, each signed, chained and with
 * the Merkle root of its records; skip (0: none) is left out. */
static void signed_outbox(pdns_buf *b, const uint8_t *sk, int skip) {
    b->len = 0;
    memset(chains[0], 0, BATCH_HASH);
    for (int k = 1; k <= NB; k++) {
        pdns_buf one = {0};
        hashmany_span sp[8];
        size_t n = 1 + (size_t)k % 5;
        for (size_t i = 0; i < n; i++) {
            size_t at = one.len;
            pdns_buf_printf(&one, "{\"rrname\":\"h%d-%zu.test\",\"rrtype\":\"A\"}\n", k, i);
            sp[i] = (hashmany_span){at, one.len - at - 1};
        }
        batch_trailer t;
        memset(&t, 0, sizeof(t));
        snprintf(t.origin, sizeof(t.origin), "relay-a");
        snprintf(t.partner, sizeof(t.partner), "p");
        snprintf(t.policy, sizeof(t.policy), "v1");
        snprintf(t.tlp, sizeof(t.tlp), "clear");
        t.seq = (uint64_t)k;
        t.count = n;
        t.time = 1795930000 + k;
        assert_int_equal(batch_lines_root(one.p, sp, n, t.merkle_root), 0);
        memcpy(t.prev, chains[k - 1], BATCH_HASH);
        batch_sign(&t, sk, chains[k]);
        assert_int_equal(batch_trailer_encode(&t, &one), 0);
        starts[k] = b->len;
        if (k != skip)
            pdns_buf_append(b, one.p, one.len);
        pdns_buf_free(&one);
    }
    starts[NB + 1] = b->len;
}

struct got {
    int n;
    uint64_t seq[NB];
    char mark[NB][160];
    pdns_buf text;
};

static void take(void *ctx, uint64_t seq, const char *mark, const char *text, size_t len) {
    struct got *g = ctx;
    g->seq[g->n] = seq;
    snprintf(g->mark[g->n++], sizeof(g->mark[0]), "%s", mark);
    pdns_buf_append(&g->text, text, len);
}

/* Writes b as the partner's outbox file and asks for the batches after
 * `after`, whose chain hash is prev. */
static int since(share *s, partner *pt, const pdns_buf *b, uint64_t after, const uint8_t *prev,
                 struct got *g) {
    char path[1200];
    snprintf(path, sizeof(path), "%s/p.ndjson", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, b->p, b->len), (ssize_t)b->len);
    pt->fd = fd;
    g->n = 0;
    g->text.len = 0;
    int n = share_outbox_since(s, "p", after, prev, take, g);
    close(fd);
    return n;
}

static void test_since_gives_what_goes_on_from_redis(void **state) {
    (void)state;
    uint8_t pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES], other_pk[32],
        other[crypto_sign_SECRETKEYBYTES];
    crypto_sign_keypair(pk, sk);
    crypto_sign_keypair(other_pk, other);
    relay_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    snprintf(cfg.outbox_dir, sizeof(cfg.outbox_dir), "%s", dir);
    policy pol;
    memset(&pol, 0, sizeof(pol));
    snprintf(pol.partner, sizeof(pol.partner), "p");
    partner pt;
    memset(&pt, 0, sizeof(pt));
    pt.pol = &pol;
    pt.seq = NB;
    pt.left_at = 5;
    pt.left_id = 7;
    share s;
    memset(&s, 0, sizeof(s));
    s.cfg = &cfg;
    s.p = &pt;
    s.np = 1;
    s.sk = sk;
    pdns_buf b = {0};
    struct got g = {0};
    signed_outbox(&b, sk, 0);
    /* Redis has up to 4: 5 to 10 go, in order, whole; the last with the
     * delay line's place */
    assert_int_equal(since(&s, &pt, &b, 4, chains[4], &g), NB - 4);
    for (int i = 0; i < g.n; i++) {
        char hex[2 * BATCH_HASH + 1];
        sodium_bin2hex(hex, sizeof(hex), chains[5 + i], BATCH_HASH);
        assert_int_equal(g.seq[i], 5 + i);
        assert_true(strncmp(g.mark[i], hex, 2 * BATCH_HASH) == 0);
        assert_string_equal(g.mark[i] + 2 * BATCH_HASH, i == g.n - 1 ? " 5:7" : "");
    }
    assert_int_equal(g.text.len, starts[NB + 1] - starts[5]);
    assert_memory_equal(g.text.p, b.p + starts[5], g.text.len);
    /* the mark reads back as the outbox in Redis keeps it, "<boot> <seq> <mark>" */
    char kept[sizeof(g.mark[0]) + 32];
    uint64_t seq, id;
    int64_t at;
    uint8_t ch[BATCH_HASH];
    snprintf(kept, sizeof(kept), "b00t %llu %s", (unsigned long long)g.seq[g.n - 1],
             g.mark[g.n - 1]);
    assert_int_equal(share_mark_read(kept, &seq, ch, &at, &id), 0);
    assert_int_equal(seq, NB);
    assert_memory_equal(ch, chains[NB], BATCH_HASH);
    assert_int_equal(at, 5);
    assert_int_equal(id, 7);
    snprintf(kept, sizeof(kept), "- 5 %s", g.mark[0]);
    assert_int_equal(share_mark_read(kept, &seq, ch, &at, &id), 0);
    assert_true(seq == 5 && at == 0 && id == 0);
    assert_int_equal(share_mark_read("b00t 5 nothex", &seq, ch, &at, &id), -1);
    /* the first batch ever (Redis has none: its prev is all zeros) */
    assert_int_equal(since(&s, &pt, &b, 0, chains[0], &g), NB);
    /* Redis has them all, or names another chain: nothing */
    assert_int_equal(since(&s, &pt, &b, NB, chains[NB], &g), 0);
    assert_int_equal(since(&s, &pt, &b, 4, chains[3], &g), 0);
    /* a batch missing from the file ends the walk before it */
    signed_outbox(&b, sk, 7);
    assert_int_equal(since(&s, &pt, &b, 4, chains[4], &g), 2);
    /* Redis names a batch the file lacks */
    assert_int_equal(since(&s, &pt, &b, 7, chains[7], &g), -2);
    /* a record changed on disk, or another key's batches: not sent */
    signed_outbox(&b, sk, 0);
    b.p[starts[8] + 12] ^= 1;
    assert_int_equal(since(&s, &pt, &b, 4, chains[4], &g), 3);
    signed_outbox(&b, other, 0);
    assert_int_equal(since(&s, &pt, &b, 4, chains[4], &g), 0);
    pdns_buf_free(&b);
    pdns_buf_free(&g.text);
}

static int setup(void **state) {
    (void)state;
    tmpdir_setup("pdns-outbox");
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mend_random_outboxes),
        cmocka_unit_test(test_since_gives_what_goes_on_from_redis),
    };
    return cmocka_run_group_tests_name("outbox", tests, setup, tmpdir_teardown);
}
