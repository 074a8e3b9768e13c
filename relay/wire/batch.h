/* batch.h - the signed batch format a partner receives and can verify.
 *
 * A batch is COF lines (each ending in "\n") followed by one trailer line:
 * a JSON object with "pdns_relay_batch": 1 and no rrname. The trailer
 * carries the origin relay, the partner, a sequence number, the record
 * count, the Merkle root of the record lines, the hash of the previous
 * trailer, the policy version, the time, the TLP label, the key id and an
 * Ed25519 signature. docs/formats.md ("Signed batches") specifies every byte so
 * that a partner can write a verifier from it alone:
 *
 *   H(x)        = BLAKE2b-256(x)
 *   leaf        = H(0x00 || line without its "\n")
 *   node        = H(0x01 || left || right)     (RFC 6962 tree shape)
 *   empty root  = H("")
 *   message     = "pdns-relay batch v1\n" then "key=value\n" for origin,
 *                 partner, seq, count, merkle_root, prev, policy, time,
 *                 tlp, key_id, in that order (hex lower case)
 *   sig         = Ed25519(secret key, message)
 *   chain hash  = H(0x02 || message || sig) -> the next batch's "prev"
 *   key_id      = hex of the first 8 bytes of H(public key)
 *
 * Pure logic; keys come in as bytes. */
#ifndef PDNS_BATCH_H
#define PDNS_BATCH_H

#include <sodium.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "hashmany.h"

#define BATCH_HASH 32

typedef struct batch_trailer {
    char origin[64];
    char partner[64];
    uint64_t seq;
    uint64_t count;
    uint8_t merkle_root[BATCH_HASH];
    uint8_t prev[BATCH_HASH];
    char policy[33];
    int64_t time;
    char tlp[64];
    char key_id[17];
    uint8_t sig[crypto_sign_BYTES];
} batch_trailer;

/* Merkle tree over lines (RFC 6962 shape, BLAKE2b-256). */
void batch_leaf_hash(const char *line, size_t len, uint8_t out[BATCH_HASH]);
/* leaves[i] = the leaf hash of line i, base[span[i].off..] without its
 * "\n": many lines at once, several times faster than one by one. */
void batch_leaf_hashes(const char *base, const hashmany_span *span, size_t n,
                       uint8_t (*leaves)[BATCH_HASH]);
void batch_merkle_root(const uint8_t (*leaves)[BATCH_HASH], size_t n,
                       uint8_t out[BATCH_HASH]);

/* The Merkle root of n lines given as spans of base (each without its
 * "\n"). Returns 0, or -1 when out of memory. */
int batch_lines_root(const char *base, const hashmany_span *span, size_t n,
                     uint8_t root[BATCH_HASH]) __attribute__((warn_unused_result));

/* The audit path of leaf i of n (at most 64 hashes). Returns its length. */
size_t batch_merkle_path(const uint8_t (*leaves)[BATCH_HASH], size_t n,
                         size_t i, uint8_t (*path)[BATCH_HASH]);

/* Recomputes the root from a leaf, its index, n and its path. Returns 0
 * when it equals root, else -1. */
int batch_merkle_check(const uint8_t leaf[BATCH_HASH], size_t i, size_t n,
                       const uint8_t (*path)[BATCH_HASH], size_t plen,
                       const uint8_t root[BATCH_HASH])
    __attribute__((warn_unused_result));

/* key_id of a public key: 16 hex characters and a NUL. */
void batch_key_id(const uint8_t pk[crypto_sign_PUBLICKEYBYTES], char out[17]);

/* The signed message of t (without its sig). Returns its length. */
size_t batch_message(const batch_trailer *t, char *out, size_t outlen);

/* Fills key_id, signs, and returns the chain hash in chain. */
void batch_sign(batch_trailer *t, const uint8_t sk[crypto_sign_SECRETKEYBYTES],
                uint8_t chain[BATCH_HASH]);

/* Checks t's signature with pk and gives its chain hash. Returns 0, or -1
 * when the signature is not valid for pk. */
int batch_verify_sig(const batch_trailer *t,
                     const uint8_t pk[crypto_sign_PUBLICKEYBYTES],
                     uint8_t chain[BATCH_HASH])
    __attribute__((warn_unused_result));

/* Appends the trailer line (with "\n"). Returns 0, or -1. */
int batch_trailer_encode(const batch_trailer *t, pdns_buf *out);

/* 1 when line is a trailer line (a JSON object with "pdns_relay_batch"). */
int batch_is_trailer(const char *line, size_t len);

/* Parses a trailer line. Returns 0, or -1 with a message in err. */
int batch_trailer_decode(const char *line, size_t len, batch_trailer *t,
                         char *err, size_t errlen);

/* Key files: hex text (64-byte secret key; 32-byte public key). The secret
 * key file must not be readable by group or others. Return 0, or -1 with a
 * message in err. */
int batch_read_secret_key(const char *path,
                          uint8_t sk[crypto_sign_SECRETKEYBYTES], char *err,
                          size_t errlen);
int batch_read_public_key(const char *path,
                          uint8_t pk[crypto_sign_PUBLICKEYBYTES], char *err,
                          size_t errlen);

#endif
