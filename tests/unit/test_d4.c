/* test_d4.c - D4 frame codec against the known-answer vectors made by an
 * independent implementation (tests/data/d4-frames.json), and the session
 * state machine: frames split at every byte, several frames per read,
 * CSV lines split across frames, and every reason to close. */
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <sodium.h>

#include "d4.h"
#include "session.h"

static size_t unhex(const char *h, uint8_t *out) {
    size_t n = strlen(h) / 2;
    for (size_t i = 0; i < n; i++)
        sscanf(h + 2 * i, "%2hhx", &out[i]);
    return n;
}

static void test_known_answers(void **state) {
    (void)state;
    json_t *root = json_load_file("../data/d4-frames.json", 0, NULL);
    assert_non_null(root);
    size_t i;
    json_t *c;
    int valid = 0, invalid = 0;
    json_array_foreach(json_object_get(root, "cases"), i, c) {
        static uint8_t payload[65536], frame[65536 + 62];
        const char *key = json_string_value(json_object_get(c, "key"));
        size_t plen = unhex(json_string_value(json_object_get(c, "payload_hex")), payload);
        size_t flen = unhex(json_string_value(json_object_get(c, "frame_hex")), frame);
        d4_header h;
        d4_header_decode(frame, &h);
        assert_int_equal(h.size, plen);
        assert_int_equal(flen, 62 + plen);
        assert_int_equal(h.version, json_integer_value(json_object_get(c, "version")));
        assert_int_equal(h.type, json_integer_value(json_object_get(c, "type")));
        assert_int_equal(h.timestamp, json_integer_value(json_object_get(c, "timestamp")));
        uint8_t hdr2[62];
        d4_header_encode(&h, hdr2);
        assert_memory_equal(hdr2, frame, 62);
        int ok = d4_hmac_verify((const uint8_t *)key, strlen(key), &h, payload, plen) == 0 &&
                 h.version == 1;
        if (json_is_true(json_object_get(c, "valid"))) {
            valid++;
            assert_true(ok);
            /* encoding from scratch gives exactly the vector's bytes */
            d4_header e = h;
            memset(e.hmac, 0, sizeof(e.hmac));
            pdns_buf out = {0};
            assert_int_equal(d4_frame_encode(&e, (const uint8_t *)key, strlen(key), payload, plen, &out), 0);
            assert_int_equal(out.len, flen);
            assert_memory_equal(out.p, frame, flen);
            pdns_buf_free(&out);
        } else {
            invalid++;
            assert_false(ok);
        }
    }
    assert_true(valid >= 3 && invalid >= 2);
    json_decref(root);
}

/* The frame HMAC (OpenSSL's) equals libsodium's HMAC-SHA256 of the
 * zeroed header and the payload, over random keys (empty, short, longer
 * than SHA-256's block, which HMAC hashes first) and payloads (empty to
 * several blocks, every length near a block boundary). */
static void test_hmac_matches_libsodium(void **state) {
    (void)state;
    static uint8_t key[200], payload[5000];
    for (int round = 0; round < 2000; round++) {
        size_t keylen = randombytes_uniform(sizeof(key) + 1);
        size_t len = round < 200 ? (size_t)round : randombytes_uniform(sizeof(payload) + 1);
        randombytes_buf(key, keylen);
        randombytes_buf(payload, len);
        d4_header h = {.version = 1, .type = (uint8_t)randombytes_uniform(256),
                       .timestamp = randombytes_random(), .size = (uint32_t)len};
        randombytes_buf(h.uuid, sizeof(h.uuid));
        randombytes_buf(h.hmac, sizeof(h.hmac)); /* zeroed for the HMAC */
        uint8_t hdr[D4_HEADER_SIZE], want[D4_HMAC_SIZE], got[D4_HMAC_SIZE];
        d4_header z = h;
        memset(z.hmac, 0, sizeof(z.hmac));
        d4_header_encode(&z, hdr);
        crypto_auth_hmacsha256_state st;
        crypto_auth_hmacsha256_init(&st, key, keylen);
        crypto_auth_hmacsha256_update(&st, hdr, sizeof(hdr));
        crypto_auth_hmacsha256_update(&st, payload, len);
        crypto_auth_hmacsha256_final(&st, want);
        assert_int_equal(d4_hmac_compute(key, keylen, &h, payload, len, got), 0);
        assert_memory_equal(got, want, D4_HMAC_SIZE);
        memcpy(h.hmac, want, sizeof(want));
        assert_int_equal(d4_hmac_verify(key, keylen, &h, payload, len), 0);
        if (len) {
            payload[randombytes_uniform((uint32_t)len)] ^= 1;
            assert_int_equal(d4_hmac_verify(key, keylen, &h, payload, len), -1);
        }
    }
}

/* ---- session ------------------------------------------------------------- */

static relay_sensor sensors[2];
static char lines[64][256];
static int nlines, ntoolong;

static relay_sensor *lookup(void *ctx, const uint8_t uuid[16]) {
    (void)ctx;
    for (int i = 0; i < 2; i++)
        if (memcmp(sensors[i].uuid, uuid, 16) == 0)
            return &sensors[i];
    return NULL;
}

static void on_line(void *ctx, relay_sensor *s, char *line, size_t len) {
    (void)ctx;
    snprintf(lines[nlines++ % 64], 256, "%s:%.*s", s->name, (int)len, line);
}

static void on_too_long(void *ctx, relay_sensor *s) {
    (void)ctx;
    (void)s;
    ntoolong++;
}

static const d4_session_ops ops = {lookup, on_line, on_too_long};
static d4_session_conf conf = {1000, 64, 1, 1, 1};

static int setup(void **state) {
    (void)state;
    memset(sensors, 0, sizeof(sensors));
    for (int i = 0; i < 2; i++) {
        snprintf(sensors[i].name, sizeof(sensors[i].name), "s%d", i);
        memset(sensors[i].uuid, 0x11 * (i + 1), 16);
        sensors[i].key = (uint8_t *)(i ? "key-one" : "key-zero");
        sensors[i].keylen = strlen((char *)sensors[i].key);
    }
    nlines = ntoolong = 0;
    return 0;
}

static void add_frame(pdns_buf *b, int sensor, uint8_t type, const char *payload) {
    d4_header h = {.version = 1, .type = type, .timestamp = 1700000000};
    memcpy(h.uuid, sensors[sensor].uuid, 16);
    assert_int_equal(d4_frame_encode(&h, sensors[sensor].key, sensors[sensor].keylen,
                                     (const uint8_t *)payload, strlen(payload), b), 0);
}

static int feed(d4_session *s, const pdns_buf *b, size_t step, enum d4_reject *why) {
    char msg[256];
    for (size_t off = 0; off < b->len; off += step) {
        size_t n = b->len - off < step ? b->len - off : step;
        if (d4_session_feed(s, &ops, NULL, (const uint8_t *)b->p + off, n, why, msg, sizeof(msg)) < 0)
            return -1;
    }
    return 0;
}

/* Every way of cutting the stream gives the same lines; a line split across
 * two frames is joined. */
static void test_split_everywhere(void **state) {
    (void)state;
    pdns_buf b = {0};
    add_frame(&b, 0, 8, "line one\nline tw");
    add_frame(&b, 0, 8, "o\nline three\n");
    add_frame(&b, 0, 8, "");
    add_frame(&b, 0, 8, "four\n\n");
    for (size_t step = 1; step <= b.len; step++) {
        d4_session s;
        enum d4_reject why;
        setup(NULL);
        d4_session_init(&s, &conf);
        assert_int_equal(feed(&s, &b, step, &why), 0);
        assert_int_equal(nlines, 4);
        assert_string_equal(lines[0], "s0:line one");
        assert_string_equal(lines[1], "s0:line two");
        assert_string_equal(lines[2], "s0:line three");
        assert_string_equal(lines[3], "s0:four");
        assert_false(d4_session_partial(&s));
        assert_int_equal(sensors[0].active_csv, 1);
        d4_session_free(&s);
        assert_int_equal(sensors[0].active_csv, 0);
    }
    pdns_buf_free(&b);
}

static void expect_reject(pdns_buf *b, enum d4_reject want, int lines_before) {
    d4_session s;
    enum d4_reject why = D4R_NONE;
    d4_session_init(&s, &conf);
    assert_int_equal(feed(&s, b, b->len, &why), -1);
    assert_int_equal(why, want);
    assert_int_equal(nlines, lines_before);
    d4_session_free(&s);
}

static void test_rejects(void **state) {
    (void)state;
    pdns_buf b = {0};
    add_frame(&b, 0, 8, "ok\n");
    b.p[b.len - 1] ^= 1; /* payload changed after signing */
    expect_reject(&b, D4R_HMAC, 0);

    b.len = 0;
    setup(NULL);
    add_frame(&b, 0, 8, "ok\n");
    b.p[2] ^= 0xff; /* a uuid nobody registered */
    expect_reject(&b, D4R_UNKNOWN_UUID, 0);

    b.len = 0;
    add_frame(&b, 0, 8, "ok\n");
    b.p[0] = 2;
    expect_reject(&b, D4R_VERSION, 0);

    b.len = 0;
    char big[1200];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    add_frame(&b, 0, 8, big);
    expect_reject(&b, D4R_OVERSIZE, 0);

    b.len = 0;
    add_frame(&b, 0, 1, "pcap");
    expect_reject(&b, D4R_TYPE, 0);

    b.len = 0;
    nlines = 0;
    add_frame(&b, 0, 8, "first\n");
    add_frame(&b, 1, 8, "second\n");
    expect_reject(&b, D4R_UUID_CHANGE, 1);

    b.len = 0;
    nlines = 0;
    add_frame(&b, 0, 254, "{}");
    expect_reject(&b, D4R_META, 0);

    b.len = 0;
    add_frame(&b, 0, 2, "{\"type\": \"pdns-cof\"}");
    add_frame(&b, 0, 254, "{}\n");
    expect_reject(&b, D4R_TYPE, 0);

    b.len = 0;
    add_frame(&b, 0, 2, "not json");
    expect_reject(&b, D4R_META, 0);
    pdns_buf_free(&b);
}

static void test_exclusive_and_lines_too_long(void **state) {
    (void)state;
    pdns_buf b = {0};
    d4_session a, c;
    enum d4_reject why;
    add_frame(&b, 0, 8, "a\n");
    d4_session_init(&a, &conf);
    d4_session_init(&c, &conf);
    assert_int_equal(feed(&a, &b, b.len, &why), 0);
    assert_int_equal(feed(&c, &b, b.len, &why), -1);
    assert_int_equal(why, D4R_DUPLICATE);
    d4_session_free(&c);
    assert_int_equal(sensors[0].active_csv, 1);
    d4_session_free(&a);
    assert_int_equal(sensors[0].active_csv, 0);

    /* a 100-byte line over the 64-byte bound is dropped, split or not */
    char payload[300];
    memset(payload, 'y', 100);
    strcpy(payload + 100, "\nafter\n");
    b.len = 0;
    nlines = 0;
    add_frame(&b, 0, 8, "partial-");
    add_frame(&b, 0, 8, payload);
    d4_session_init(&a, &conf);
    assert_int_equal(feed(&a, &b, 7, &why), 0);
    assert_int_equal(ntoolong, 1);
    assert_int_equal(nlines, 1);
    assert_string_equal(lines[0], "s0:after");
    d4_session_free(&a);
    pdns_buf_free(&b);
}

/* A frame of every size up to 100,000 bytes goes out in TLS records of at
 * most 16 KiB that add up to it, none shorter than a D4 header unless the
 * whole frame is (d4-core holds a short read until the next one). */
static void test_tls_chunks(void **state) {
    (void)state;
    for (size_t total = 1; total <= 100000; total++) {
        size_t left = total, records = 0;
        while (left) {
            size_t k = d4_tls_chunk(left);
            if (k == 0 || k > 16384 || k > left || (k < D4_HEADER_SIZE && k != total))
                fail_msg("frame of %zu bytes: a record of %zu with %zu left", total, k, left);
            left -= k;
            records++;
        }
        assert_int_equal(records, (total + 16383) / 16384);
    }
}

int main(void) {
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_answers),
        cmocka_unit_test(test_hmac_matches_libsodium),
        cmocka_unit_test(test_tls_chunks),
        cmocka_unit_test_setup(test_split_everywhere, setup),
        cmocka_unit_test_setup(test_rejects, setup),
        cmocka_unit_test_setup(test_exclusive_and_lines_too_long, setup),
    };
    return cmocka_run_group_tests_name("d4", tests, NULL, NULL);
}
