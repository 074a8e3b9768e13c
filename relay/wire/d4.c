/* d4.c - D4 protocol v1 header codec, HMAC and frame reassembly.
 *
 * The HMAC-SHA256 of every frame is OpenSSL's (libcrypto, which the TLS
 * layer links anyway): its SHA-256 uses the CPU's SHA extensions where
 * there are any, several times the speed of libsodium's portable one,
 * and a sensor's stream is hashed whole. tests/unit/test_d4.c checks it
 * against libsodium's on random keys and frames. If it cannot be computed
 * (out of memory), no frame verifies and none is encoded. */
#include "d4.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <sodium.h>
#include <string.h>

static void put_le(uint8_t *p, uint64_t v, int n) {
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

void d4_header_encode(const d4_header *h, uint8_t out[D4_HEADER_SIZE]) {
    out[0] = h->version;
    out[1] = h->type;
    memcpy(out + 2, h->uuid, 16);
    put_le(out + 18, h->timestamp, 8);
    memcpy(out + 26, h->hmac, D4_HMAC_SIZE);
    put_le(out + 58, h->size, 4);
}

void d4_header_decode(const uint8_t in[D4_HEADER_SIZE], d4_header *h) {
    h->version = in[0];
    h->type = in[1];
    memcpy(h->uuid, in + 2, 16);
    h->timestamp = get_le(in + 18, 8);
    memcpy(h->hmac, in + 26, D4_HMAC_SIZE);
    h->size = (uint32_t)get_le(in + 58, 4);
}

int d4_hmac_compute(const uint8_t *key, size_t keylen, const d4_header *h,
                    const uint8_t *payload, size_t len, uint8_t out[D4_HMAC_SIZE]) {
    static EVP_MAC *mac; /* fetched once: a fetch looks up OpenSSL's providers */
    uint8_t hdr[D4_HEADER_SIZE];
    d4_header z = *h;
    memset(z.hmac, 0, sizeof(z.hmac));
    d4_header_encode(&z, hdr);
    if (!mac && !(mac = EVP_MAC_fetch(NULL, "HMAC", NULL)))
        return -1;
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(mac);
    if (!ctx)
        return -1;
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
        OSSL_PARAM_construct_end()};
    size_t outl = 0;
    int ok = EVP_MAC_init(ctx, key, keylen, params) == 1 &&
             EVP_MAC_update(ctx, hdr, sizeof(hdr)) == 1 &&
             (len == 0 || EVP_MAC_update(ctx, payload, len) == 1) &&
             EVP_MAC_final(ctx, out, &outl, D4_HMAC_SIZE) == 1 && outl == D4_HMAC_SIZE;
    EVP_MAC_CTX_free(ctx); /* clears the key schedule it held */
    return ok ? 0 : -1;
}

int d4_hmac_verify(const uint8_t *key, size_t keylen, const d4_header *h,
                   const uint8_t *payload, size_t len) {
    uint8_t mac[D4_HMAC_SIZE];
    /* a MAC that cannot be computed (OpenSSL out of memory) verifies nothing */
    int ok = d4_hmac_compute(key, keylen, h, payload, len, mac) == 0 &&
             sodium_memcmp(mac, h->hmac, D4_HMAC_SIZE) == 0;
    sodium_memzero(mac, sizeof(mac));
    return ok ? 0 : -1;
}

int d4_frame_encode(d4_header *h, const uint8_t *key, size_t keylen,
                    const uint8_t *payload, size_t len, pdns_buf *out) {
    if (len > UINT32_MAX || pdns_buf_reserve(out, D4_HEADER_SIZE + len) < 0)
        return -1;
    h->size = (uint32_t)len;
    if (d4_hmac_compute(key, keylen, h, payload, len, h->hmac) < 0)
        return -1;
    d4_header_encode(h, (uint8_t *)out->p + out->len);
    out->len += D4_HEADER_SIZE;
    if (len)
        memcpy(out->p + out->len, payload, len);
    out->len += len;
    return 0;
}

void d4_reader_init(d4_reader *r, uint32_t max_payload) {
    memset(r, 0, sizeof(*r));
    r->max_payload = max_payload ? max_payload : D4_DEFAULT_MAX_PAYLOAD;
    r->payload.max = r->max_payload;
}

void d4_reader_free(d4_reader *r) {
    pdns_buf_free(&r->payload);
}

int d4_reader_partial(const d4_reader *r) {
    return r->hdr_have > 0 || r->in_payload;
}

int d4_reader_feed(d4_reader *r, const uint8_t *data, size_t len,
                   size_t *used, const d4_header **h,
                   const uint8_t **payload, size_t *plen,
                   d4_header_check check, void *check_ctx) {
    size_t off = 0;
    *used = 0;
    if (!r->in_payload) {
        size_t take = D4_HEADER_SIZE - r->hdr_have;
        if (take > len)
            take = len;
        memcpy(r->hdr + r->hdr_have, data, take);
        r->hdr_have += take;
        off = take;
        if (r->hdr_have < D4_HEADER_SIZE) {
            *used = off;
            return D4_NEED_MORE;
        }
        d4_header_decode(r->hdr, &r->h);
        r->hdr_have = 0;
        *used = off;
        if (r->h.version != D4_VERSION)
            return D4_E_VERSION;
        if (r->h.size > r->max_payload)
            return D4_E_SIZE;
        if (check && check(check_ctx, &r->h) != 0)
            return D4_E_REFUSED;
        r->payload.len = 0;
        r->in_payload = 1;
    }
    size_t want = r->h.size - r->payload.len;
    size_t take = len - off < want ? len - off : want;
    if (take && pdns_buf_append(&r->payload, data + off, take) < 0)
        return D4_E_SIZE; /* out of memory */
    off += take;
    *used = off;
    if (r->payload.len < r->h.size)
        return D4_NEED_MORE;
    r->in_payload = 0;
    *h = &r->h;
    *payload = (const uint8_t *)r->payload.p;
    *plen = r->payload.len;
    return D4_FRAME;
}

size_t d4_tls_chunk(size_t left) {
    const size_t record = 16384; /* the largest TLS plaintext record */
    if (left <= record)
        return left;
    return left - record < D4_HEADER_SIZE ? left - D4_HEADER_SIZE : record;
}
