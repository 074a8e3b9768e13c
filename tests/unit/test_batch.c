/* test_batch.c - the signed batch format: Merkle inclusion proofs for every
 * leaf of trees of every size up to 300, wrong proofs refused, roots equal
 * to RFC 6962's recursive definition, the many-at-once hashing equal to
 * libsodium's BLAKE2b for every length and block boundary, trailers round
 * trip, signatures bind every field. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "batch.h"
#include "hashmany.h"

static void test_merkle_paths(void **state) {
    (void)state;
    static uint8_t leaves[300][BATCH_HASH];
    for (size_t i = 0; i < 300; i++) {
        char line[32];
        int n = snprintf(line, sizeof(line), "{\"rrname\":\"h%zu\"}", i);
        batch_leaf_hash(line, (size_t)n, leaves[i]);
    }
    for (size_t n = 1; n <= 300; n++) {
        uint8_t root[BATCH_HASH], path[64][BATCH_HASH];
        batch_merkle_root((const uint8_t (*)[BATCH_HASH])leaves, n, root);
        for (size_t i = 0; i < n; i++) {
            size_t plen = batch_merkle_path((const uint8_t (*)[BATCH_HASH])leaves, n, i, path);
            assert_int_equal(batch_merkle_check(leaves[i], i, n, (const uint8_t (*)[BATCH_HASH])path,
                                                plen, root), 0);
            /* another leaf or another index: refused */
            assert_int_equal(batch_merkle_check(leaves[(i + 1) % 300], i, n,
                                                (const uint8_t (*)[BATCH_HASH])path, plen, root), -1);
            if (n > 1 && batch_merkle_check(leaves[i], (i + 1) % n, n,
                                            (const uint8_t (*)[BATCH_HASH])path, plen, root) == 0)
                fail_msg("n %zu: the proof of leaf %zu passes at index %zu", n, i, (i + 1) % n);
            /* (a path does not bind the tree size by itself - for n = 3 the
             * path of leaf 0 also fits size 4 - so verify takes the size
             * from the signed trailer, never from the proof) */
        }
    }
    /* the shape is RFC 6962's: root of 3 = H(1 || H(1 || l0 || l1) || l2) */
    uint8_t l01[BATCH_HASH], want[BATCH_HASH], got[BATCH_HASH], buf[1 + 2 * BATCH_HASH];
    buf[0] = 1;
    memcpy(buf + 1, leaves[0], BATCH_HASH);
    memcpy(buf + 1 + BATCH_HASH, leaves[1], BATCH_HASH);
    crypto_generichash(l01, BATCH_HASH, buf, sizeof(buf), NULL, 0);
    memcpy(buf + 1, l01, BATCH_HASH);
    memcpy(buf + 1 + BATCH_HASH, leaves[2], BATCH_HASH);
    crypto_generichash(want, BATCH_HASH, buf, sizeof(buf), NULL, 0);
    batch_merkle_root((const uint8_t (*)[BATCH_HASH])leaves, 3, got);
    assert_memory_equal(got, want, BATCH_HASH);
}

/* RFC 6962's definition, written here from the spec with libsodium alone. */
static void ref_root(const uint8_t (*l)[BATCH_HASH], size_t n, uint8_t out[BATCH_HASH]) {
    if (n == 1) {
        memcpy(out, l[0], BATCH_HASH);
        return;
    }
    size_t k = 1;
    while (k << 1 < n)
        k <<= 1;
    uint8_t buf[1 + 2 * BATCH_HASH];
    buf[0] = 1;
    ref_root(l, k, buf + 1);
    ref_root(l + k, n - k, buf + 1 + BATCH_HASH);
    crypto_generichash(out, BATCH_HASH, buf, sizeof(buf), NULL, 0);
}

static void test_merkle_root_matches_rfc6962(void **state) {
    (void)state;
    enum { N = 2100 };
    uint8_t(*leaves)[BATCH_HASH] = malloc(N * BATCH_HASH);
    randombytes_buf(leaves, N * BATCH_HASH);
    for (size_t n = 1; n <= N; n += n < 300 ? 1 : 37) {
        uint8_t want[BATCH_HASH], got[BATCH_HASH];
        ref_root((const uint8_t (*)[BATCH_HASH])leaves, n, want);
        batch_merkle_root((const uint8_t (*)[BATCH_HASH])leaves, n, got);
        if (memcmp(want, got, BATCH_HASH) != 0)
            fail_msg("the root of %zu leaves differs from RFC 6962's", n);
    }
    free(leaves);
}

/* hashmany (eight lanes on AVX-512 machines) against crypto_generichash of
 * tag || message, one at a time: every length from 0 to 400 (the block
 * edges 127/128/255/256 with the tag byte included), batches of every size
 * from 0 to 40, lanes finishing at different steps, 100 batches of mostly
 * two-block messages (runs of eight go in lockstep, the rest around them
 * through the scheduler) and 200 random batches of random lengths up to
 * 1,000 bytes. */
static void check_many(uint8_t tag, const uint8_t *base, const hashmany_span *sp, size_t n) {
    uint8_t(*got)[HASHMANY_BYTES] = malloc((n + 1) * HASHMANY_BYTES);
    hashmany_blake2b256(tag, base, sp, n, got);
    for (size_t i = 0; i < n; i++) {
        crypto_generichash_state st;
        uint8_t want[HASHMANY_BYTES];
        crypto_generichash_init(&st, NULL, 0, HASHMANY_BYTES);
        crypto_generichash_update(&st, &tag, 1);
        crypto_generichash_update(&st, base + sp[i].off, sp[i].len);
        crypto_generichash_final(&st, want, HASHMANY_BYTES);
        if (memcmp(got[i], want, HASHMANY_BYTES) != 0)
            fail_msg("%s: message %zu of %zu (%zu bytes, tag %u) hashes wrong",
                     hashmany_impl(), i, n, sp[i].len, tag);
    }
    free(got);
}

/* hashmany_blake2b256_pairs: every level size from 0 to 70 (the eight-node
 * groups and every remainder), against libsodium node by node. */
static void check_pairs(void) {
    enum { MAXN = 70 };
    uint8_t in[2 * MAXN][HASHMANY_BYTES], got[MAXN + 1][HASHMANY_BYTES];
    for (size_t n = 0; n <= MAXN; n++) {
        randombytes_buf(in, sizeof(in));
        memset(got, 0xee, sizeof(got));
        hashmany_blake2b256_pairs(0x01, (const uint8_t (*)[HASHMANY_BYTES])in, n, got);
        for (size_t i = 0; i < n; i++) {
            uint8_t want[HASHMANY_BYTES], msg[1 + 2 * HASHMANY_BYTES] = {0x01};
            memcpy(msg + 1, in[2 * i], 2 * HASHMANY_BYTES);
            crypto_generichash(want, HASHMANY_BYTES, msg, sizeof(msg), NULL, 0);
            if (memcmp(got[i], want, HASHMANY_BYTES) != 0)
                fail_msg("%s: node %zu of a level of %zu hashes wrong", hashmany_impl(), i, n);
        }
        for (size_t k = 0; k < HASHMANY_BYTES; k++) /* nothing written past n */
            if (got[n][k] != 0xee)
                fail_msg("%s: a level of %zu wrote past its end", hashmany_impl(), n);
    }
}

static void check_impl(void) {
    enum { MAXLEN = 1000, MAXN = 400 };
    uint8_t *base = malloc(MAXN * MAXLEN);
    hashmany_span sp[MAXN];
    randombytes_buf(base, MAXN * MAXLEN);
    for (size_t i = 0; i <= 400; i++) { /* every length, in one batch */
        sp[i % MAXN].off = (i * 7919) % (MAXN * MAXLEN - 400);
        sp[i % MAXN].len = i;
        if (i % MAXN == MAXN - 1 || i == 400)
            check_many((uint8_t)i, base, sp, i % MAXN + 1);
    }
    for (size_t n = 0; n <= 40; n++) { /* every batch size */
        for (size_t i = 0; i < n; i++) {
            sp[i].off = i * MAXLEN;
            sp[i].len = (n * 31 + i * 97) % 300;
        }
        check_many(0, base, sp, n);
    }
    for (int r = 0; r < 100; r++) { /* mostly lines of two blocks, as COF lines are */
        size_t n = randombytes_uniform(MAXN) + 1;
        for (size_t i = 0; i < n; i++) {
            sp[i].len = randombytes_uniform(10) ? 127 + randombytes_uniform(130)
                                                : randombytes_uniform(400);
            sp[i].off = randombytes_uniform((uint32_t)(MAXN * MAXLEN - sp[i].len + 1));
        }
        check_many((uint8_t)r, base, sp, n);
    }
    for (int r = 0; r < 200; r++) {
        size_t n = randombytes_uniform(MAXN) + 1;
        for (size_t i = 0; i < n; i++) {
            sp[i].len = randombytes_uniform(r & 1 ? MAXLEN : 300);
            sp[i].off = randombytes_uniform((uint32_t)(MAXN * MAXLEN - sp[i].len + 1));
        }
        check_many((uint8_t)r, base, sp, n);
    }
    free(base);
}

/* Every implementation this CPU can run (AVX-512 eight lanes, AVX2 four,
 * libsodium) against libsodium one message at a time. */
static void test_hashmany_equals_blake2b(void **state) {
    (void)state;
    static const char *impls[] = {"avx512x8", "avx2x4", "libsodium"};
    char def[32];
    snprintf(def, sizeof(def), "%s", hashmany_impl());
    int ran = 0;
    for (size_t i = 0; i < sizeof(impls) / sizeof(impls[0]); i++) {
        if (hashmany_use(impls[i]) < 0) {
            print_message("hashmany %s: not available here (CPU or build)\n", impls[i]);
            continue;
        }
        check_impl();
        check_pairs();
        print_message("hashmany %s: equal to libsodium\n", impls[i]);
        ran++;
    }
    assert_int_equal(hashmany_use(def), 0);
    assert_true(ran >= 1);
}

static void test_trailer_sign_verify(void **state) {
    (void)state;
    uint8_t pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
    uint8_t pk2[crypto_sign_PUBLICKEYBYTES], sk2[crypto_sign_SECRETKEYBYTES];
    crypto_sign_keypair(pk, sk);
    crypto_sign_keypair(pk2, sk2);
    batch_trailer t, d;
    memset(&t, 0, sizeof(t));
    strcpy(t.origin, "relay-a");
    strcpy(t.partner, "alpha");
    t.seq = 7;
    t.count = 3;
    memset(t.merkle_root, 0xab, BATCH_HASH);
    memset(t.prev, 0xcd, BATCH_HASH);
    strcpy(t.policy, "0123456789abcdef0123456789abcdef");
    t.time = 1795930000;
    strcpy(t.tlp, "TLP:AMBER");
    uint8_t chain[BATCH_HASH], chain2[BATCH_HASH];
    batch_sign(&t, sk, chain);
    pdns_buf b = {0};
    char err[256];
    assert_int_equal(batch_trailer_encode(&t, &b), 0);
    assert_true(batch_is_trailer(b.p, b.len - 1));
    assert_int_equal(batch_trailer_decode(b.p, b.len - 1, &d, err, sizeof(err)), 0);
    assert_memory_equal(&d, &t, sizeof(t));
    assert_int_equal(batch_verify_sig(&d, pk, chain2), 0);
    assert_memory_equal(chain, chain2, BATCH_HASH);
    assert_int_equal(batch_verify_sig(&d, pk2, chain2), -1);
    /* every field is signed */
    batch_trailer m = d;
    m.seq++;
    assert_int_equal(batch_verify_sig(&m, pk, chain2), -1);
    m = d;
    m.prev[5] ^= 1;
    assert_int_equal(batch_verify_sig(&m, pk, chain2), -1);
    m = d;
    strcpy(m.tlp, "TLP:CLEAR");
    assert_int_equal(batch_verify_sig(&m, pk, chain2), -1);
    m = d;
    m.time++;
    assert_int_equal(batch_verify_sig(&m, pk, chain2), -1);
    /* bad trailers */
    assert_int_equal(batch_trailer_decode("{\"pdns_relay_batch\":2}", 22, &d, err, sizeof(err)), -1);
    assert_string_equal(err, "unknown batch format version");
    assert_int_equal(batch_trailer_decode("{\"pdns_relay_batch\":1,\"origin\":\"a\"}", 35, &d, err, sizeof(err)), -1);
    assert_string_equal(err, "trailer field \"partner\" must be a string of at most 63 bytes without newlines");
    pdns_buf_free(&b);
}

int main(void) {
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_merkle_paths),
        cmocka_unit_test(test_merkle_root_matches_rfc6962),
        cmocka_unit_test(test_hashmany_equals_blake2b),
        cmocka_unit_test(test_trailer_sign_verify),
    };
    return cmocka_run_group_tests_name("batch", tests, NULL, NULL);
}
