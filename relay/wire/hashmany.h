/* hashmany.h - BLAKE2b-256 of many short messages at once.
 *
 * The signed batch format hashes every record line (a Merkle leaf) and every
 * pair of hashes (a Merkle node): thousands of messages of 65 to a few
 * hundred bytes per batch. One message at a time, libsodium spends most of
 * that work in data-dependent shuffles; independent messages side by side
 * in the 64-bit lanes of a vector need none. hashmany_blake2b256 hashes
 * eight at a time on CPUs with AVX-512F and BW, four at a time on CPUs
 * with AVX2 (checked once, at run time), and one at a time with libsodium's
 * crypto_generichash elsewhere. All give the same bytes: plain BLAKE2b-256,
 * unkeyed, of tag || message.
 *
 * Pure logic; no allocation. */
#ifndef PDNS_HASHMANY_H
#define PDNS_HASHMANY_H

#include <stddef.h>
#include <stdint.h>

#define HASHMANY_BYTES 32

/* Message i is base[span[i].off .. span[i].off + span[i].len). */
typedef struct hashmany_span {
    size_t off, len;
} hashmany_span;

/* out[i] = BLAKE2b-256(tag || message i) for i < n. out must not overlap
 * the messages. */
void hashmany_blake2b256(uint8_t tag, const uint8_t *base,
                         const hashmany_span *span, size_t n,
                         uint8_t (*out)[HASHMANY_BYTES]);

/* out[i] = BLAKE2b-256(tag || in[2 i] || in[2 i + 1]) for i < n: the nodes
 * of one Merkle level. Eight at a time with AVX-512, without the
 * scheduler; out must not overlap in. */
void hashmany_blake2b256_pairs(uint8_t tag, const uint8_t (*in)[HASHMANY_BYTES], size_t n,
                               uint8_t (*out)[HASHMANY_BYTES]);

/* The same, one message at a time with libsodium: the reference the tests
 * compare against and the path on CPUs without AVX2. */
void hashmany_blake2b256_generic(uint8_t tag, const uint8_t *base,
                                 const hashmany_span *span, size_t n,
                                 uint8_t (*out)[HASHMANY_BYTES]);

/* The implementation in use: "avx512x8", "avx2x4" or "libsodium" (the
 * first one the CPU can run, in that order). */
const char *hashmany_impl(void);

/* Makes hashmany_blake2b256 use the named implementation (tests and
 * benchmarks compare them). Returns 0, or -1 when this CPU cannot run it. */
int hashmany_use(const char *name);

#endif
