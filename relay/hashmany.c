/* hashmany.c - BLAKE2b-256 of many short messages at once. See hashmany.h.
 *
 * The eight-lane code is RFC 7693's compression function written once over
 * eight messages: lane i of vector v[k] is word k of message i's state. A
 * lane that finishes its message takes the next one at once, so messages of
 * one and of two blocks mix without idle lanes until the last few. Blocks
 * are read with gathers straight from the messages; a block that holds the
 * tag byte or the zero padding is copied into a lane buffer first. */
#include "hashmany.h"

#include <sodium.h>
#include <string.h>

void hashmany_blake2b256_generic(uint8_t tag, const uint8_t *base,
                                 const hashmany_span *span, size_t n,
                                 uint8_t (*out)[HASHMANY_BYTES]) {
    for (size_t i = 0; i < n; i++) {
        crypto_generichash_state st;
        crypto_generichash_init(&st, NULL, 0, HASHMANY_BYTES);
        crypto_generichash_update(&st, &tag, 1);
        crypto_generichash_update(&st, base + span[i].off, span[i].len);
        crypto_generichash_final(&st, out[i], HASHMANY_BYTES);
    }
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

static const uint64_t blake2b_iv[8] = {
    0x6a09e667f3bcc908ULL, 0xbb67ae8584caa73bULL, 0x3c6ef372fe94f82bULL,
    0xa54ff53a5f1d36f1ULL, 0x510e527fade682d1ULL, 0x9b05688c2b3e6c1fULL,
    0x1f83d9abfb41bd6bULL, 0x5be0cd19137e2179ULL};

static const uint8_t blake2b_sigma[12][16] = {
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
    {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3},
    {11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4},
    {7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8},
    {9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13},
    {2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9},
    {12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11},
    {13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10},
    {6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5},
    {10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0},
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
    {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3}};

/* parameter block of an unkeyed 32-byte digest: digest length, key length
 * 0, fanout 1, depth 1 */
#define H0_PARAM 0x01010020ULL

#define ADD(a, b) _mm512_add_epi64((a), (b))
#define XOR(a, b) _mm512_xor_si512((a), (b))
#define ROR(a, n) _mm512_ror_epi64((a), (n))
#define G(a, b, c, d, x, y)                                                    \
    do {                                                                       \
        a = ADD(ADD(a, b), x);                                                 \
        d = ROR(XOR(d, a), 32);                                                \
        c = ADD(c, d);                                                         \
        b = ROR(XOR(b, c), 24);                                                \
        a = ADD(ADD(a, b), y);                                                 \
        d = ROR(XOR(d, a), 16);                                                \
        c = ADD(c, d);                                                         \
        b = ROR(XOR(b, c), 63);                                                \
    } while (0)

/* m[k] = word k of row i in lane i, for rows of 64 bytes: an 8x8
 * transpose of 64-bit words (unpack within 128-bit lanes, then two rounds
 * of 128-bit lane shuffles). */
__attribute__((target("avx512f"))) static inline void
transpose_x8(const __m512i r[8], __m512i m[8]) {
    __m512i t[8], u[8];
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm512_unpacklo_epi64(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_epi64(r[i], r[i + 1]);
    }
    /* 0x88 takes 128-bit lanes 0 and 2 of each source, 0xdd lanes 1 and 3 */
    u[0] = _mm512_shuffle_i64x2(t[0], t[2], 0x88);
    u[1] = _mm512_shuffle_i64x2(t[0], t[2], 0xdd);
    u[2] = _mm512_shuffle_i64x2(t[1], t[3], 0x88);
    u[3] = _mm512_shuffle_i64x2(t[1], t[3], 0xdd);
    u[4] = _mm512_shuffle_i64x2(t[4], t[6], 0x88);
    u[5] = _mm512_shuffle_i64x2(t[4], t[6], 0xdd);
    u[6] = _mm512_shuffle_i64x2(t[5], t[7], 0x88);
    u[7] = _mm512_shuffle_i64x2(t[5], t[7], 0xdd);
    m[0] = _mm512_shuffle_i64x2(u[0], u[4], 0x88);
    m[4] = _mm512_shuffle_i64x2(u[0], u[4], 0xdd);
    m[2] = _mm512_shuffle_i64x2(u[1], u[5], 0x88);
    m[6] = _mm512_shuffle_i64x2(u[1], u[5], 0xdd);
    m[1] = _mm512_shuffle_i64x2(u[2], u[6], 0x88);
    m[5] = _mm512_shuffle_i64x2(u[2], u[6], 0xdd);
    m[3] = _mm512_shuffle_i64x2(u[3], u[7], 0x88);
    m[7] = _mm512_shuffle_i64x2(u[3], u[7], 0xdd);
}

/* Where each lane's next block is: its bytes 0..127 are at addr + 0..127,
 * but only the bytes whose bits are set in lo (0..63) and hi (64..127) are
 * read - the rest are zero - and byte 0 is the tag in the lanes set in
 * tagged. Masked loads fault on no byte they do not read, so a block can
 * start one byte before its message and end anywhere. */
typedef struct blocks_x8 {
    uint64_t addr[8], lo[8], hi[8];
    uint64_t t[8], f[8]; /* byte counter, final-block flag (0 or all ones) */
    unsigned tagged;
} blocks_x8;

/* One compression in each of the eight lanes; lane i of h[k] is word k of
 * lane i's state. A lane whose block is the first of its message (tagged)
 * starts from the initial state. */
__attribute__((target("avx512f,avx512bw"), always_inline)) static inline void
compress_x8(__m512i h[8], const blocks_x8 *bl, uint8_t tag) {
    __m512i m[16], row[8];
    for (int i = 0; i < 8; i++) {
        const void *p = (const void *)(uintptr_t)bl->addr[i];
        row[i] = _mm512_maskz_loadu_epi8(bl->lo[i], p);
        row[i] = _mm512_mask_set1_epi8(row[i], (bl->tagged >> i) & 1, (char)tag);
    }
    transpose_x8(row, m);
    for (int i = 0; i < 8; i++)
        row[i] = _mm512_maskz_loadu_epi8(
            bl->hi[i], (const void *)(uintptr_t)(bl->addr[i] + 64));
    transpose_x8(row, m + 8);
    for (int k = 0; k < 8; k++)
        h[k] = _mm512_mask_set1_epi64(h[k], (__mmask8)bl->tagged,
                                      (long long)(blake2b_iv[k] ^ (k ? 0 : H0_PARAM)));
    __m512i v0 = h[0], v1 = h[1], v2 = h[2], v3 = h[3];
    __m512i v4 = h[4], v5 = h[5], v6 = h[6], v7 = h[7];
    __m512i v8 = _mm512_set1_epi64((long long)blake2b_iv[0]);
    __m512i v9 = _mm512_set1_epi64((long long)blake2b_iv[1]);
    __m512i v10 = _mm512_set1_epi64((long long)blake2b_iv[2]);
    __m512i v11 = _mm512_set1_epi64((long long)blake2b_iv[3]);
    __m512i v12 = XOR(_mm512_set1_epi64((long long)blake2b_iv[4]), _mm512_loadu_si512(bl->t));
    __m512i v13 = _mm512_set1_epi64((long long)blake2b_iv[5]);
    __m512i v14 = XOR(_mm512_set1_epi64((long long)blake2b_iv[6]), _mm512_loadu_si512(bl->f));
    __m512i v15 = _mm512_set1_epi64((long long)blake2b_iv[7]);
#pragma GCC unroll 12
    for (int r = 0; r < 12; r++) {
        const uint8_t *s = blake2b_sigma[r];
        G(v0, v4, v8, v12, m[s[0]], m[s[1]]);
        G(v1, v5, v9, v13, m[s[2]], m[s[3]]);
        G(v2, v6, v10, v14, m[s[4]], m[s[5]]);
        G(v3, v7, v11, v15, m[s[6]], m[s[7]]);
        G(v0, v5, v10, v15, m[s[8]], m[s[9]]);
        G(v1, v6, v11, v12, m[s[10]], m[s[11]]);
        G(v2, v7, v8, v13, m[s[12]], m[s[13]]);
        G(v3, v4, v9, v14, m[s[14]], m[s[15]]);
    }
    h[0] = XOR(h[0], XOR(v0, v8));
    h[1] = XOR(h[1], XOR(v1, v9));
    h[2] = XOR(h[2], XOR(v2, v10));
    h[3] = XOR(h[3], XOR(v3, v11));
    h[4] = XOR(h[4], XOR(v4, v12));
    h[5] = XOR(h[5], XOR(v5, v13));
    h[6] = XOR(h[6], XOR(v6, v14));
    h[7] = XOR(h[7], XOR(v7, v15));
}

typedef struct lane {
    size_t msg;   /* index of the message in this lane, n when idle */
    size_t done;  /* bytes of tag || message compressed so far */
    size_t total; /* 1 + the message's length */
} lane;

static void lane_start(lane *l, size_t msg, const hashmany_span *span) {
    l->msg = msg;
    l->done = 0;
    l->total = span[msg].len + 1;
}

/* Bits first..last-1 of a 64-bit mask (first <= 1, last <= 64). */
static uint64_t bit_range(unsigned first, unsigned last) {
    uint64_t below = last >= 64 ? ~(uint64_t)0 : ((uint64_t)1 << last) - 1;
    return below & (~(uint64_t)0 << first);
}

__attribute__((target("avx512f,avx512bw"))) static void
hash_x8(uint8_t tag, const uint8_t *base, const hashmany_span *span, size_t n,
        uint8_t (*out)[HASHMANY_BYTES]) {
    __m512i h[8];
    _Alignas(64) uint64_t digest[4][8];
    blocks_x8 bl;
    lane l[8];
    size_t next = 0, busy = 0;
    for (int k = 0; k < 8; k++)
        h[k] = _mm512_setzero_si512();
    for (int i = 0; i < 8; i++) {
        if (next < n) {
            lane_start(&l[i], next++, span);
            busy++;
        } else {
            l[i].msg = n;
        }
    }
    while (busy) {
        bl.tagged = 0;
        for (int i = 0; i < 8; i++) {
            if (l[i].msg == n) { /* idle: an all-zero block, nothing read */
                bl.addr[i] = (uint64_t)(uintptr_t)base;
                bl.lo[i] = bl.hi[i] = bl.t[i] = bl.f[i] = 0;
                continue;
            }
            /* byte j of tag || message is message byte j - 1 */
            size_t done = l[i].done, left = l[i].total - done;
            unsigned take = left > 128 ? 128 : (unsigned)left, first = done == 0;
            bl.addr[i] = (uint64_t)(uintptr_t)(base + span[l[i].msg].off) + done - 1;
            bl.lo[i] = bit_range(first, take < 64 ? take : 64);
            bl.hi[i] = take > 64 ? bit_range(0, take - 64) : 0;
            bl.tagged |= first << i;
            bl.t[i] = done + take;
            bl.f[i] = left <= 128 ? ~(uint64_t)0 : 0;
        }
        compress_x8(h, &bl, tag);
        int stored = 0;
        for (int i = 0; i < 8; i++) {
            if (l[i].msg == n)
                continue;
            l[i].done = (size_t)bl.t[i];
            if (l[i].done < l[i].total)
                continue;
            if (!stored) {
                for (int k = 0; k < 4; k++)
                    _mm512_store_si512(digest[k], h[k]);
                stored = 1;
            }
            for (int k = 0; k < 4; k++) /* x86-64: little endian */
                memcpy(out[l[i].msg] + 8 * k, &digest[k][i], 8);
            if (next < n) {
                lane_start(&l[i], next++, span);
            } else {
                l[i].msg = n;
                busy--;
            }
        }
    }
}

static int have_x8(void) {
    static int have = -1;
    if (have < 0)
        have = __builtin_cpu_supports("avx512f") &&
               __builtin_cpu_supports("avx512bw");
    return have;
}
#else
static int have_x8(void) { return 0; }
static void hash_x8(uint8_t tag, const uint8_t *base, const hashmany_span *span,
                    size_t n, uint8_t (*out)[HASHMANY_BYTES]) {
    hashmany_blake2b256_generic(tag, base, span, n, out);
}
#endif

void hashmany_blake2b256(uint8_t tag, const uint8_t *base,
                         const hashmany_span *span, size_t n,
                         uint8_t (*out)[HASHMANY_BYTES]) {
    /* below three messages the idle lanes cost more than they save */
    if (n >= 3 && have_x8())
        hash_x8(tag, base, span, n, out);
    else
        hashmany_blake2b256_generic(tag, base, span, n, out);
}

const char *hashmany_impl(void) { return have_x8() ? "avx512x8" : "libsodium"; }
