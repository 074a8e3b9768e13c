/* rng.c - CSPRNG or seeded ChaCha20 keystream, behind one interface. */
#include "rng.h"

#include <math.h>
#include <sodium.h>
#include <string.h>

void mixer_rng_init_secure(mixer_rng *r) {
    memset(r, 0, sizeof(*r));
    r->used = sizeof(r->buf);
}

void mixer_rng_init_seeded(mixer_rng *r, uint64_t seed) {
    memset(r, 0, sizeof(*r));
    r->deterministic = 1;
    r->seed = seed;
    r->used = sizeof(r->buf);
}

#define RESEED_BUFFERS 256 /* a fresh key from the OS every 1 MiB */

static void refill(mixer_rng *r) {
    if (!r->deterministic) {
        static const uint8_t nonce[crypto_stream_chacha20_NONCEBYTES];
        if (r->block++ % RESEED_BUFFERS == 0)
            randombytes_buf(r->key, sizeof(r->key));
        /* every key is used once, so one nonce serves */
        crypto_stream_chacha20(r->buf, sizeof(r->buf), nonce, r->key);
        memcpy(r->key, r->buf, sizeof(r->key));
        sodium_memzero(r->buf, sizeof(r->key));
        r->used = sizeof(r->key);
        return;
    }
    uint8_t key[crypto_stream_chacha20_KEYBYTES] = {0};
    uint8_t nonce[crypto_stream_chacha20_NONCEBYTES] = {0};
    memcpy(key, &r->seed, sizeof(r->seed));
    memcpy(nonce, &r->block, sizeof(r->block));
    crypto_stream_chacha20(r->buf, sizeof(r->buf), nonce, key);
    sodium_memzero(key, sizeof(key));
    r->block++;
    r->used = 0;
}

uint64_t mixer_rng_u64(mixer_rng *r) {
    uint64_t v;
    if (r->used + sizeof(v) > sizeof(r->buf))
        refill(r);
    memcpy(&v, r->buf + r->used, sizeof(v));
    r->used += sizeof(v);
    return v;
}

uint32_t mixer_rng_uniform(mixer_rng *r, uint32_t upper) {
    if (upper < 2)
        return 0;
    /* rejection sampling, as randombytes_uniform does */
    uint32_t min = (uint32_t)(-upper) % upper, v;
    do {
        v = (uint32_t)mixer_rng_u64(r);
    } while (v < min);
    return v % upper;
}

double mixer_rng_unit(mixer_rng *r) {
    return (double)(mixer_rng_u64(r) >> 11) * (1.0 / 9007199254740992.0);
}

double mixer_rng_exp(mixer_rng *r, double mean) {
    if (mean <= 0)
        return 0;
    return -mean * log1p(-mixer_rng_unit(r));
}
