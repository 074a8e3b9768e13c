/* hashmany.h - BLAKE2b-256 of many short messages at once.
 *
 * The signed batch format hashes every record line (a Merkle leaf) and every
 * pair of hashes (a Merkle node): thousands of messages of 65 to a few
 * hundred bytes per batch. One message at a time, libsodium spends most of
 * that work in data-dependent shuffles; eight independent messages side by
 * side in the 64-bit lanes of AVX-512 need none. hashmany_blake2b256 does
 * that on CPUs that have AVX-512F (checked once, at run time) and falls back
 * to libsodium's crypto_generichash elsewhere. Both give the same bytes:
 * plain BLAKE2b-256, unkeyed, of tag || message.
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

/* The same, one message at a time with libsodium: the reference the tests
 * compare against and the path on CPUs without AVX-512F. */
void hashmany_blake2b256_generic(uint8_t tag, const uint8_t *base,
                                 const hashmany_span *span, size_t n,
                                 uint8_t (*out)[HASHMANY_BYTES]);

/* "avx512x8" when hashmany_blake2b256 uses the eight-lane code, otherwise
 * "libsodium". */
const char *hashmany_impl(void);

#endif
