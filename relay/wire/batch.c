/* batch.c - Merkle trees, trailers, signatures and key files of the signed
 * batch format. See batch.h. */
#include "batch.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void h2(uint8_t tag, const uint8_t *a, size_t alen, const uint8_t *b,
               size_t blen, uint8_t out[BATCH_HASH]) {
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, BATCH_HASH);
    crypto_generichash_update(&st, &tag, 1);
    crypto_generichash_update(&st, a, alen);
    if (blen)
        crypto_generichash_update(&st, b, blen);
    crypto_generichash_final(&st, out, BATCH_HASH);
}

void batch_leaf_hash(const char *line, size_t len, uint8_t out[BATCH_HASH]) {
    h2(0x00, (const uint8_t *)line, len, NULL, 0, out);
}

void batch_leaf_hashes(const char *base, const hashmany_span *span, size_t n,
                       uint8_t (*leaves)[BATCH_HASH]) {
    hashmany_blake2b256(0x00, (const uint8_t *)base, span, n, leaves);
}

static size_t split_point(size_t n) { /* largest power of two < n */
    size_t k = 1;
    while (k << 1 < n)
        k <<= 1;
    return k;
}

/* The RFC 6962 definition, one node at a time: the fallback when there is
 * no memory for the level-by-level computation. */
static void merkle_root_rec(const uint8_t (*leaves)[BATCH_HASH], size_t n,
                            uint8_t out[BATCH_HASH]) {
    if (n == 1) {
        memcpy(out, leaves[0], BATCH_HASH);
        return;
    }
    uint8_t l[BATCH_HASH], r[BATCH_HASH];
    size_t k = split_point(n);
    merkle_root_rec(leaves, k, l);
    merkle_root_rec(leaves + k, n - k, r);
    h2(0x01, l, BATCH_HASH, r, BATCH_HASH, out);
}

/* Level by level: pair 2i and 2i+1 into node i, carry an odd last node up
 * unchanged. That is the same tree as RFC 6962's split at the largest
 * power of two below n, and it lets one hashmany call hash a whole level.
 * The levels alternate between two buffers. */
void batch_merkle_root(const uint8_t (*leaves)[BATCH_HASH], size_t n,
                       uint8_t out[BATCH_HASH]) {
    if (n == 0) {
        crypto_generichash(out, BATCH_HASH, NULL, 0, NULL, 0);
        return;
    }
    size_t half = n / 2 + 1;
    uint8_t(*buf)[BATCH_HASH] = n > 2 ? malloc(2 * half * sizeof(*buf)) : NULL;
    if (!buf) { /* n <= 2, or no memory */
        merkle_root_rec(leaves, n, out);
        return;
    }
    const uint8_t(*in)[BATCH_HASH] = leaves;
    uint8_t(*next)[BATCH_HASH] = buf;
    while (n > 1) {
        hashmany_blake2b256_pairs(0x01, in, n / 2, next);
        if (n & 1)
            memcpy(next[n / 2], in[n - 1], BATCH_HASH);
        n = n / 2 + (n & 1);
        in = (const uint8_t(*)[BATCH_HASH])next;
        next = next == buf ? buf + half : buf;
    }
    memcpy(out, in[0], BATCH_HASH);
    free(buf);
}

int batch_lines_root(const char *base, const hashmany_span *span, size_t n,
                     uint8_t root[BATCH_HASH]) {
    uint8_t(*leaves)[BATCH_HASH] = malloc((n ? n : 1) * sizeof(*leaves));
    if (!leaves)
        return -1;
    batch_leaf_hashes(base, span, n, leaves);
    batch_merkle_root((const uint8_t (*)[BATCH_HASH])leaves, n, root);
    free(leaves);
    return 0;
}

size_t batch_merkle_path(const uint8_t (*leaves)[BATCH_HASH], size_t n,
                         size_t i, uint8_t (*path)[BATCH_HASH]) {
    if (n <= 1)
        return 0;
    size_t k = split_point(n), len;
    if (i < k) {
        len = batch_merkle_path(leaves, k, i, path);
        batch_merkle_root(leaves + k, n - k, path[len]);
    } else {
        len = batch_merkle_path(leaves + k, n - k, i - k, path);
        batch_merkle_root(leaves, k, path[len]);
    }
    return len + 1;
}

/* RFC 9162, 2.1.3.2. */
int batch_merkle_check(const uint8_t leaf[BATCH_HASH], size_t i, size_t n,
                       const uint8_t (*path)[BATCH_HASH], size_t plen,
                       const uint8_t root[BATCH_HASH]) {
    if (i >= n)
        return -1;
    size_t fn = i, sn = n - 1;
    uint8_t r[BATCH_HASH];
    memcpy(r, leaf, BATCH_HASH);
    for (size_t k = 0; k < plen; k++) {
        if (sn == 0)
            return -1;
        if ((fn & 1) || fn == sn) {
            h2(0x01, path[k], BATCH_HASH, r, BATCH_HASH, r);
            if (!(fn & 1))
                while (!(fn & 1) && fn != 0) {
                    fn >>= 1;
                    sn >>= 1;
                }
        } else {
            h2(0x01, r, BATCH_HASH, path[k], BATCH_HASH, r);
        }
        fn >>= 1;
        sn >>= 1;
    }
    return sn == 0 && sodium_memcmp(r, root, BATCH_HASH) == 0 ? 0 : -1;
}

void batch_key_id(const uint8_t pk[crypto_sign_PUBLICKEYBYTES], char out[17]) {
    uint8_t h[BATCH_HASH];
    crypto_generichash(h, sizeof(h), pk, crypto_sign_PUBLICKEYBYTES, NULL, 0);
    sodium_bin2hex(out, 17, h, 8);
}

size_t batch_message(const batch_trailer *t, char *out, size_t outlen) {
    char root[65], prev[65];
    sodium_bin2hex(root, sizeof(root), t->merkle_root, BATCH_HASH);
    sodium_bin2hex(prev, sizeof(prev), t->prev, BATCH_HASH);
    int n = snprintf(out, outlen,
                     "pdns-relay batch v1\norigin=%s\npartner=%s\nseq=%" PRIu64
                     "\ncount=%" PRIu64 "\nmerkle_root=%s\nprev=%s\npolicy=%s\n"
                     "time=%" PRId64 "\ntlp=%s\nkey_id=%s\n",
                     t->origin, t->partner, t->seq, t->count, root, prev,
                     t->policy, t->time, t->tlp, t->key_id);
    return n < 0 ? 0 : (size_t)n < outlen ? (size_t)n : outlen - 1;
}

static void chain_of(const batch_trailer *t, const char *msg, size_t len,
                     uint8_t chain[BATCH_HASH]) {
    h2(0x02, (const uint8_t *)msg, len, t->sig, sizeof(t->sig), chain);
}

void batch_sign(batch_trailer *t, const uint8_t sk[crypto_sign_SECRETKEYBYTES],
                uint8_t chain[BATCH_HASH]) {
    char msg[1024];
    uint8_t pk[crypto_sign_PUBLICKEYBYTES];
    crypto_sign_ed25519_sk_to_pk(pk, sk);
    batch_key_id(pk, t->key_id);
    size_t len = batch_message(t, msg, sizeof(msg));
    crypto_sign_detached(t->sig, NULL, (const uint8_t *)msg, len, sk);
    chain_of(t, msg, len, chain);
}

int batch_verify_sig(const batch_trailer *t,
                     const uint8_t pk[crypto_sign_PUBLICKEYBYTES],
                     uint8_t chain[BATCH_HASH]) {
    char msg[1024];
    size_t len = batch_message(t, msg, sizeof(msg));
    if (crypto_sign_verify_detached(t->sig, (const uint8_t *)msg, len, pk) != 0)
        return -1;
    chain_of(t, msg, len, chain);
    return 0;
}

int batch_trailer_encode(const batch_trailer *t, pdns_buf *out) {
    char root[65], prev[65], sig[129];
    sodium_bin2hex(root, sizeof(root), t->merkle_root, BATCH_HASH);
    sodium_bin2hex(prev, sizeof(prev), t->prev, BATCH_HASH);
    sodium_bin2hex(sig, sizeof(sig), t->sig, sizeof(t->sig));
    return pdns_buf_printf(out,
                           "{\"pdns_relay_batch\":1,\"origin\":\"%s\",\"partner\":\"%s\","
                           "\"seq\":%" PRIu64 ",\"count\":%" PRIu64 ",\"merkle_root\":\"%s\","
                           "\"prev\":\"%s\",\"policy\":\"%s\",\"time\":%" PRId64 ","
                           "\"tlp\":\"%s\",\"key_id\":\"%s\",\"sig\":\"%s\"}\n",
                           t->origin, t->partner, t->seq, t->count, root, prev,
                           t->policy, t->time, t->tlp, t->key_id, sig);
}

int batch_is_trailer(const char *line, size_t len) {
    static const char tag[] = "{\"pdns_relay_batch\":";
    return len >= sizeof(tag) - 1 && memcmp(line, tag, sizeof(tag) - 1) == 0;
}

static int get_hex(json_t *o, const char *key, uint8_t *out, size_t n,
                   char *err, size_t errlen) {
    json_t *v = json_object_get(o, key);
    size_t got = 0;
    if (!json_is_string(v) ||
        sodium_hex2bin(out, n, json_string_value(v), json_string_length(v),
                       NULL, &got, NULL) != 0 ||
        got != n || json_string_length(v) != 2 * n) {
        snprintf(err, errlen, "trailer field \"%s\" must be %zu hex bytes", key, n);
        return -1;
    }
    return 0;
}

static int get_text(json_t *o, const char *key, char *out, size_t n, char *err,
                    size_t errlen) {
    json_t *v = json_object_get(o, key);
    if (!json_is_string(v) || json_string_length(v) >= n ||
        strchr(json_string_value(v), '\n')) {
        snprintf(err, errlen, "trailer field \"%s\" must be a string of at most "
                 "%zu bytes without newlines", key, n - 1);
        return -1;
    }
    memcpy(out, json_string_value(v), json_string_length(v) + 1);
    return 0;
}

static int get_u64(json_t *o, const char *key, uint64_t *out, char *err,
                   size_t errlen) {
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v) || json_integer_value(v) < 0) {
        snprintf(err, errlen, "trailer field \"%s\" must be a whole number", key);
        return -1;
    }
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

int batch_trailer_decode(const char *line, size_t len, batch_trailer *t,
                         char *err, size_t errlen) {
    json_error_t je;
    uint64_t tm;
    int rc = -1;
    memset(t, 0, sizeof(*t));
    json_t *o = json_loadb(line, len, JSON_REJECT_DUPLICATES, &je);
    if (!o) {
        snprintf(err, errlen, "trailer is not JSON: column %d: %s", je.column, je.text);
        return -1;
    }
    json_t *v = json_object_get(o, "pdns_relay_batch");
    if (!json_is_integer(v) || json_integer_value(v) != 1) {
        snprintf(err, errlen, "unknown batch format version");
        goto out;
    }
    if (get_text(o, "origin", t->origin, sizeof(t->origin), err, errlen) ||
        get_text(o, "partner", t->partner, sizeof(t->partner), err, errlen) ||
        get_u64(o, "seq", &t->seq, err, errlen) ||
        get_u64(o, "count", &t->count, err, errlen) ||
        get_hex(o, "merkle_root", t->merkle_root, BATCH_HASH, err, errlen) ||
        get_hex(o, "prev", t->prev, BATCH_HASH, err, errlen) ||
        get_text(o, "policy", t->policy, sizeof(t->policy), err, errlen) ||
        get_u64(o, "time", &tm, err, errlen) ||
        get_text(o, "tlp", t->tlp, sizeof(t->tlp), err, errlen) ||
        get_text(o, "key_id", t->key_id, sizeof(t->key_id), err, errlen) ||
        get_hex(o, "sig", t->sig, sizeof(t->sig), err, errlen))
        goto out;
    t->time = (int64_t)tm;
    rc = 0;
out:
    json_decref(o);
    return rc;
}

static int read_hex_file(const char *path, uint8_t *out, size_t n, int secret,
                         char *err, size_t errlen) {
    char buf[512];
    struct stat st;
    size_t got = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    ssize_t r = -1;
    if (fstat(fd, &st) < 0)
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
    else if (secret && (st.st_mode & 077))
        snprintf(err, errlen, "secret key file %s is accessible by group or "
                 "others (mode %04o): chmod 600 it", path,
                 (unsigned)(st.st_mode & 07777));
    else
        r = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (r < 0) {
        sodium_memzero(buf, sizeof(buf));
        return -1;
    }
    while (r > 0 && (buf[r - 1] == '\n' || buf[r - 1] == '\r' || buf[r - 1] == ' '))
        r--;
    int bad = sodium_hex2bin(out, n, buf, (size_t)r, NULL, &got, NULL) != 0 ||
              got != n || (size_t)r != 2 * n;
    sodium_memzero(buf, sizeof(buf));
    if (bad) {
        snprintf(err, errlen, "%s: want %zu bytes as hex (made by pdns-relay "
                 "keygen)", path, n);
        return -1;
    }
    return 0;
}

int batch_read_secret_key(const char *path,
                          uint8_t sk[crypto_sign_SECRETKEYBYTES], char *err,
                          size_t errlen) {
    return read_hex_file(path, sk, crypto_sign_SECRETKEYBYTES, 1, err, errlen);
}

int batch_read_public_key(const char *path,
                          uint8_t pk[crypto_sign_PUBLICKEYBYTES], char *err,
                          size_t errlen) {
    return read_hex_file(path, pk, crypto_sign_PUBLICKEYBYTES, 0, err, errlen);
}
