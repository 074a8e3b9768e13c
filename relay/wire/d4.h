/* d4.h - D4 protocol v1 frames (CIRCL d4-core, d4-goclient).
 *
 * A frame is a 62-byte header then the payload; integers little-endian:
 *   0 version(1)  1 type(1)  2 uuid(16)  18 timestamp(8)  26 hmac(32)
 *   58 size(4)
 * hmac = HMAC-SHA256(key, header with the hmac field zeroed || payload).
 *
 * This module encodes and decodes headers, computes and checks the HMAC
 * (libsodium, constant-time compare) and reassembles frames from a byte
 * stream (d4_reader). It does no I/O. */
#ifndef PDNS_D4_H
#define PDNS_D4_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define D4_HEADER_SIZE 62
#define D4_HMAC_SIZE 32
#define D4_VERSION 1
#define D4_DEFAULT_MAX_PAYLOAD 1000000u

enum d4_type {
    D4_TYPE_PCAP = 1, D4_TYPE_META = 2, D4_TYPE_LOG = 3, D4_TYPE_DNSCAP = 4,
    D4_TYPE_PCAPNG = 5, D4_TYPE_NDJSON = 6, D4_TYPE_YAF = 7,
    D4_TYPE_PASSIVEDNS = 8, D4_TYPE_EXTENDED = 254
};

typedef struct d4_header {
    uint8_t version;
    uint8_t type;
    uint8_t uuid[16];
    uint64_t timestamp;
    uint8_t hmac[D4_HMAC_SIZE];
    uint32_t size;
} d4_header;

void d4_header_encode(const d4_header *h, uint8_t out[D4_HEADER_SIZE]);
void d4_header_decode(const uint8_t in[D4_HEADER_SIZE], d4_header *h);

/* HMAC-SHA256 over the header (its hmac field taken as zeros) and the
 * payload; 0, or -1 if it cannot be computed (out of memory). */
int d4_hmac_compute(const uint8_t *key, size_t keylen, const d4_header *h,
                    const uint8_t *payload, size_t len, uint8_t out[D4_HMAC_SIZE]);

/* Returns 0 when h->hmac is right for this key and payload, else -1. */
int d4_hmac_verify(const uint8_t *key, size_t keylen, const d4_header *h,
                   const uint8_t *payload, size_t len)
    __attribute__((warn_unused_result));

/* Appends a whole frame (header with its HMAC, then payload) to out.
 * h->size and h->hmac are filled in. Returns 0, or -1 when out cannot
 * grow. */
int d4_frame_encode(d4_header *h, const uint8_t *key, size_t keylen,
                    const uint8_t *payload, size_t len, pdns_buf *out);

/* ---- stream reassembly --------------------------------------------------- */

enum d4_reader_status {
    D4_NEED_MORE = 0,  /* consumed everything, no complete frame yet */
    D4_FRAME = 1,      /* *h and payload describe a complete frame */
    D4_E_VERSION = -1, /* header with version != 1 */
    D4_E_SIZE = -2,    /* payload size over the reader's maximum */
    D4_E_REFUSED = -3  /* the header check refused the frame */
};

typedef struct d4_reader {
    uint8_t hdr[D4_HEADER_SIZE];
    size_t hdr_have;
    d4_header h;
    pdns_buf payload;
    uint32_t max_payload;
    int in_payload;
} d4_reader;

/* Judges a header before any of its payload is kept (uuid, type);
 * nonzero refuses the frame (D4_E_REFUSED). */
typedef int (*d4_header_check)(void *ctx, const d4_header *h);

/* How many of the left bytes of an encoded frame to hand to one TLS
 * write (one TLS record): at most 16 KiB, and never so many that the last
 * record would be shorter than a D4 header, since d4-core's server holds a
 * read under 62 bytes until the next one arrives. */
size_t d4_tls_chunk(size_t left);

void d4_reader_init(d4_reader *r, uint32_t max_payload);
void d4_reader_free(d4_reader *r);

/* Feeds bytes. The payload buffer grows as the payload arrives (a header
 * that announces a large payload costs nothing until it is sent), up to
 * max_payload; check (optional) judges each header first. Consumes up to
 * len bytes into the current frame and sets
 * *used. On D4_FRAME, *h and (*payload, *plen) hold the frame until the
 * next call; call again with the rest of the data. A negative status is
 * fatal for the stream: the caller closes it. Out of memory reads as
 * D4_E_SIZE. */
int d4_reader_feed(d4_reader *r, const uint8_t *data, size_t len,
                   size_t *used, const d4_header **h,
                   const uint8_t **payload, size_t *plen,
                   d4_header_check check, void *check_ctx);

/* 1 when the reader holds part of a frame (header or payload). */
int d4_reader_partial(const d4_reader *r);

#endif
