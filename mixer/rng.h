/* rng.h - the mixer's random source.
 *
 * In production it is a ChaCha20 keystream under a key from the OS
 * (randombytes_buf), with fast key erasure as arc4random does: each 4 KiB
 * buffer's first 32 bytes become the next key and are wiped, so a later
 * memory dump cannot rebuild past draws; a fresh OS key every 1 MiB. That
 * is ~4x cheaper than reading the kernel's generator 4 KiB at a time. In test mode it
 * is a ChaCha20 keystream from a 64-bit seed: deterministic, so that tests
 * and the policy preview replay exactly, and still unpredictable to anyone
 * without the seed. The mixer draws every hold time, sample and shuffle
 * from here and from nowhere else. */
#ifndef PDNS_MIXER_RNG_H
#define PDNS_MIXER_RNG_H

#include <stddef.h>
#include <stdint.h>

typedef struct mixer_rng {
    int deterministic;
    uint64_t seed;
    uint64_t block;          /* next keystream block, or buffers made */
    uint8_t key[32];         /* secure mode: the key of the next buffer */
    uint8_t buf[4096];
    size_t used;
} mixer_rng;

/* The CSPRNG (libsodium must be initialised). */
void mixer_rng_init_secure(mixer_rng *r);

/* A deterministic stream for tests and previews. */
void mixer_rng_init_seeded(mixer_rng *r, uint64_t seed);

uint64_t mixer_rng_u64(mixer_rng *r);

/* Uniform in [0, upper) without modulo bias; 0 when upper is 0. */
uint32_t mixer_rng_uniform(mixer_rng *r, uint32_t upper);

/* Uniform double in [0, 1). */
double mixer_rng_unit(mixer_rng *r);

/* Exponential with the given mean (0 gives 0). */
double mixer_rng_exp(mixer_rng *r, double mean);

#endif
