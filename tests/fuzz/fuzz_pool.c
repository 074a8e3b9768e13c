/* fuzz_pool.c - libFuzzer target for a saved mixer pool (mixer_pool_restore):
 * any bytes are refused whole or restored; a restored pool saves again to
 * bytes that restore to the same number of triples, and it can be ticked
 * and freed. The input is also read behind a valid header, so that the
 * fuzzer reaches the triples. */
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pool.h"

static void none(void *ctx, const mixer_batch *b) {
    (void)ctx;
    (void)b;
}

static void one(const uint8_t *data, size_t size) {
    static const int32_t map[8] = {0, 1, 2, 3, -1, 5, 6, 7};
    mixer_conf c;
    mixer_rng rng, rng2;
    mixer_conf_defaults(&c);
    mixer_rng_init_seeded(&rng, 1);
    mixer_pool *p = mixer_pool_new(&c, &rng, none, NULL);
    long n = mixer_pool_restore(p, data, size, map, 8, 1000);
    if (n >= 0) {
        pdns_buf b = {0};
        if (mixer_pool_save(p, &b) < 0)
            abort();
        mixer_rng_init_seeded(&rng2, 2);
        mixer_pool *q = mixer_pool_new(&c, &rng2, none, NULL);
        static const int32_t id[8] = {0, 1, 2, 3, 4, 5, 6, 7};
        if (mixer_pool_restore(q, (const uint8_t *)b.p, b.len, id, 8, 1000) !=
            (long)mixer_pool_triples(p))
            abort();
        mixer_pool_tick(q, 100000000);
        mixer_pool_free(q);
        pdns_buf_free(&b);
    } else if (mixer_pool_triples(p) != 0) {
        abort(); /* refused: nothing added */
    }
    mixer_pool_tick(p, 100000000);
    mixer_pool_free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char head[] = "pdns-relay mixer pool 1\n";
    if (sodium_init() < 0)
        abort();
    one(data, size);
    uint8_t *d = malloc(sizeof(head) - 1 + 8 + size);
    uint64_t n = size ? data[0] % 4 : 0;
    memcpy(d, head, sizeof(head) - 1);
    memcpy(d + sizeof(head) - 1, &n, 8);
    memcpy(d + sizeof(head) - 1 + 8, data, size);
    one(d, sizeof(head) - 1 + 8 + size);
    free(d);
    return 0;
}
