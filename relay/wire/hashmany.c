/* hashmany.c - BLAKE2b-256 of many short messages at once. See hashmany.h.
 *
 * RFC 7693's compression function is written once over eight messages
 * (AVX-512: lane i of vector v[k] is word k of message i's state) and once
 * over four (AVX2). One scheduler, run_lanes, feeds both: a lane that
 * finishes its message takes the next one at once, so messages of one and
 * of two blocks mix without idle lanes until the last few. The AVX-512
 * step reads each block with masked byte loads (the tag byte and the zero
 * padding need no copy, and nothing outside the message is touched); the
 * AVX2 step copies first and last blocks into a lane buffer.
 *
 * Two shapes skip the scheduler's per-step plan on AVX-512, as the signed
 * batches are mostly made of them: runs of eight messages of two blocks
 * (COF lines of 128 to 255 bytes) go in lockstep, and a Merkle level goes
 * eight nodes at a time (whole 64-byte rows; message words 9 to 15 are
 * zero, so their additions drop out of the rounds). */
#include "hashmany.h"

#include "cpu.h"

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

#if defined(__x86_64__) && defined(__GNUC__) && !defined(PDNS_NO_SIMD)
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

/* One step of the scheduler: the block each lane compresses next. */
typedef struct plan {
    uint64_t addr[8];  /* the block's byte 0 (one before the message for
                        * its first block, which starts with the tag) */
    unsigned take[8];  /* bytes of the block that exist; the rest are zero */
    uint64_t t[8];     /* byte counter after this block */
    uint64_t f[8];     /* final-block flag: 0 or all ones */
    unsigned tagged;   /* lanes starting a message: tag byte, fresh state */
    unsigned done;     /* lanes whose message ends with this block */
} plan;

/* Compresses one block in every lane of the state st (eight words per
 * lane, kept between steps), then, when pl->done is not 0, writes each
 * lane's first four state words (its digest) to dig[word][lane]. */
typedef void (*step_fn)(void *st, const plan *pl, uint8_t tag,
                        uint64_t dig[4][8]);

typedef struct lane {
    size_t msg;   /* index of the message in this lane, n when idle */
    size_t done;  /* bytes of tag || message compressed so far */
    size_t total; /* 1 + the message's length */
} lane;

static void run_lanes(int w, step_fn step, uint8_t tag, const uint8_t *base,
                      const hashmany_span *span, size_t n,
                      uint8_t (*out)[HASHMANY_BYTES]) {
    _Alignas(64) uint64_t st[8][8] = {{0}};
    uint64_t dig[4][8];
    plan pl;
    lane l[8];
    size_t next = 0, busy = 0;
    for (int i = 0; i < w; i++) {
        l[i].msg = next < n ? next++ : n;
        l[i].done = 0;
        l[i].total = l[i].msg < n ? span[l[i].msg].len + 1 : 0;
        busy += l[i].msg < n;
    }
    while (busy) {
        pl.tagged = pl.done = 0;
        for (int i = 0; i < w; i++) {
            if (l[i].msg == n) { /* idle: an all-zero block */
                pl.addr[i] = (uint64_t)(uintptr_t)base;
                pl.take[i] = 0;
                pl.t[i] = pl.f[i] = 0;
                continue;
            }
            /* byte j of tag || message is message byte j - 1 */
            size_t done = l[i].done, left = l[i].total - done;
            pl.take[i] = left > 128 ? 128 : (unsigned)left;
            pl.addr[i] = (uint64_t)(uintptr_t)(base + span[l[i].msg].off) + done - 1;
            pl.t[i] = done + pl.take[i];
            pl.f[i] = left <= 128 ? ~(uint64_t)0 : 0;
            pl.tagged |= (unsigned)(done == 0) << i;
            pl.done |= (unsigned)(left <= 128) << i;
        }
        step(st, &pl, tag, dig);
        for (int i = 0; i < w; i++) {
            if (l[i].msg == n)
                continue;
            l[i].done = (size_t)pl.t[i];
            if (!((pl.done >> i) & 1))
                continue;
            for (int k = 0; k < 4; k++) /* x86-64: little endian */
                memcpy(out[l[i].msg] + 8 * k, &dig[k][i], 8);
            if (next < n) {
                l[i].msg = next++;
                l[i].done = 0;
                l[i].total = span[l[i].msg].len + 1;
            } else {
                l[i].msg = n;
                busy--;
            }
        }
    }
}

/* The twelve rounds over v0..v15 with message words m[], for any vector
 * width: ADD, XOR and the ROR_* rotations are defined per width. */
#define G(a, b, c, d, x, y)                                                    \
    do {                                                                       \
        a = ADD(ADD(a, b), x);                                                 \
        d = ROR_32(XOR(d, a));                                                 \
        c = ADD(c, d);                                                         \
        b = ROR_24(XOR(b, c));                                                 \
        a = ADD(ADD(a, b), y);                                                 \
        d = ROR_16(XOR(d, a));                                                 \
        c = ADD(c, d);                                                         \
        b = ROR_63(XOR(b, c));                                                 \
    } while (0)
#define ROUNDS()                                                               \
    _Pragma("GCC unroll 12") for (int r = 0; r < 12; r++) {                    \
        const uint8_t *s = blake2b_sigma[r];                                   \
        G(v0, v4, v8, v12, m[s[0]], m[s[1]]);                                  \
        G(v1, v5, v9, v13, m[s[2]], m[s[3]]);                                  \
        G(v2, v6, v10, v14, m[s[4]], m[s[5]]);                                 \
        G(v3, v7, v11, v15, m[s[6]], m[s[7]]);                                 \
        G(v0, v5, v10, v15, m[s[8]], m[s[9]]);                                 \
        G(v1, v6, v11, v12, m[s[10]], m[s[11]]);                               \
        G(v2, v7, v8, v13, m[s[12]], m[s[13]]);                                \
        G(v3, v4, v9, v14, m[s[14]], m[s[15]]);                                \
    }

/* One compression of the block in m[] for every lane: hk is the state
 * before, h receives the state after; pl gives the counters and flags.
 * VEC, SET1 and LOADU are defined per width like ADD and XOR. */
#define COMPRESS(h, hk, pl)                                                    \
    do {                                                                       \
        VEC v0 = hk[0], v1 = hk[1], v2 = hk[2], v3 = hk[3];                    \
        VEC v4 = hk[4], v5 = hk[5], v6 = hk[6], v7 = hk[7];                    \
        VEC v8 = SET1(blake2b_iv[0]), v9 = SET1(blake2b_iv[1]);                \
        VEC v10 = SET1(blake2b_iv[2]), v11 = SET1(blake2b_iv[3]);              \
        VEC v12 = XOR(SET1(blake2b_iv[4]), LOADU((pl)->t));                    \
        VEC v13 = SET1(blake2b_iv[5]);                                         \
        VEC v14 = XOR(SET1(blake2b_iv[6]), LOADU((pl)->f));                    \
        VEC v15 = SET1(blake2b_iv[7]);                                         \
        ROUNDS();                                                              \
        h[0] = XOR(hk[0], XOR(v0, v8));                                        \
        h[1] = XOR(hk[1], XOR(v1, v9));                                        \
        h[2] = XOR(hk[2], XOR(v2, v10));                                       \
        h[3] = XOR(hk[3], XOR(v3, v11));                                       \
        h[4] = XOR(hk[4], XOR(v4, v12));                                       \
        h[5] = XOR(hk[5], XOR(v5, v13));                                       \
        h[6] = XOR(hk[6], XOR(v6, v14));                                       \
        h[7] = XOR(hk[7], XOR(v7, v15));                                       \
    } while (0)

/* ---- eight lanes, AVX-512 -------------------------------------------- */

#define VEC __m512i
#define SET1(x) _mm512_set1_epi64((long long)(x))
#define LOADU(p) _mm512_loadu_si512(p)
#define ADD(a, b) _mm512_add_epi64((a), (b))
#define XOR(a, b) _mm512_xor_si512((a), (b))
#define ROR_32(a) _mm512_ror_epi64((a), 32)
#define ROR_24(a) _mm512_ror_epi64((a), 24)
#define ROR_16(a) _mm512_ror_epi64((a), 16)
#define ROR_63(a) _mm512_ror_epi64((a), 63)

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

/* Bits first..last-1 of a 64-bit mask (first <= 1, last <= 64). */
static uint64_t bit_range(unsigned first, unsigned last) {
    uint64_t below = last >= 64 ? ~(uint64_t)0 : ((uint64_t)1 << last) - 1;
    return below & (~(uint64_t)0 << first);
}

__attribute__((target("avx512f,avx512bw"))) static void
step_x8(void *stv, const plan *pl, uint8_t tag, uint64_t dig[4][8]) {
    __m512i *h = stv, m[16], row[8];
    for (int i = 0; i < 8; i++) { /* masked loads: only the block's bytes */
        unsigned first = (pl->tagged >> i) & 1, take = pl->take[i];
        const void *p = (const void *)(uintptr_t)pl->addr[i];
        row[i] = _mm512_maskz_loadu_epi8(bit_range(first, take < 64 ? take : 64), p);
        row[i] = _mm512_mask_set1_epi8(row[i], first, (char)tag);
    }
    transpose_x8(row, m);
    for (int i = 0; i < 8; i++) {
        unsigned take = pl->take[i];
        row[i] = _mm512_maskz_loadu_epi8(take > 64 ? bit_range(0, take - 64) : 0,
                                         (const void *)(uintptr_t)(pl->addr[i] + 64));
    }
    transpose_x8(row, m + 8);
    __m512i hk[8];
    for (int k = 0; k < 8; k++) /* lanes starting a message: the IV state */
        hk[k] = _mm512_mask_set1_epi64(h[k], (__mmask8)pl->tagged,
                                       (long long)(blake2b_iv[k] ^ (k ? 0 : H0_PARAM)));
    COMPRESS(h, hk, pl);
    if (pl->done)
        for (int k = 0; k < 4; k++)
            _mm512_storeu_si512(dig[k], h[k]);
}

/* The state of a fresh unkeyed BLAKE2b-256 in all eight lanes. */
__attribute__((target("avx512f"))) static inline void fresh_x8(__m512i hk[8]) {
    for (int k = 0; k < 8; k++)
        hk[k] = _mm512_set1_epi64((long long)(blake2b_iv[k] ^ (k ? 0 : H0_PARAM)));
}

/* out[i] = the digest in lane i: the first four state words. */
__attribute__((target("avx512f"))) static inline void
digests_x8(const __m512i h[4], uint8_t (*out)[HASHMANY_BYTES]) {
    _Alignas(64) uint64_t dig[4][8];
    for (int k = 0; k < 4; k++)
        _mm512_store_si512(dig[k], h[k]);
    for (int i = 0; i < 8; i++)
        for (int k = 0; k < 4; k++) /* x86-64: little endian */
            memcpy(out[i] + 8 * k, &dig[k][i], 8);
}

/* Eight messages of two blocks each (128 < 1 + len <= 256, as most COF
 * lines are) in lockstep, without the scheduler's plan: block one is the
 * tag and bytes 0..126 of every message, block two the rest. */
__attribute__((target("avx512f,avx512bw"))) static void
twoblocks_x8(uint8_t tag, const uint8_t *base, const hashmany_span *span,
             uint8_t (*out)[HASHMANY_BYTES]) {
    static const uint64_t t128[8] = {128, 128, 128, 128, 128, 128, 128, 128};
    static const uint64_t zero8[8], last[8] = {~0ULL, ~0ULL, ~0ULL, ~0ULL,
                                               ~0ULL, ~0ULL, ~0ULL, ~0ULL};
    _Alignas(64) uint64_t t[8];
    struct {
        const uint64_t *t, *f;
    } first = {t128, zero8}, second = {t, last};
    __m512i row[8], m[16], hk[8], h[8];
    for (int i = 0; i < 8; i++) { /* block one: the tag, then bytes 0..62 */
        const uint8_t *p = base + span[i].off;
        row[i] = _mm512_mask_set1_epi8(_mm512_maskz_loadu_epi8(~(__mmask64)1, p - 1), 1,
                                       (char)tag);
    }
    transpose_x8(row, m);
    for (int i = 0; i < 8; i++) /* bytes 63..126, inside every message */
        row[i] = _mm512_loadu_si512(base + span[i].off + 63);
    transpose_x8(row, m + 8);
    fresh_x8(hk);
    COMPRESS(h, hk, &first);
    for (int i = 0; i < 8; i++) { /* block two: bytes 127.., zero padded */
        const uint8_t *p = base + span[i].off + 127;
        unsigned take = (unsigned)span[i].len - 127; /* 2..128 */
        t[i] = span[i].len + 1;
        row[i] = _mm512_maskz_loadu_epi8(bit_range(0, take < 64 ? take : 64), p);
    }
    transpose_x8(row, m);
    for (int i = 0; i < 8; i++) {
        unsigned take = (unsigned)span[i].len - 127;
        row[i] = _mm512_maskz_loadu_epi8(take > 64 ? bit_range(0, take - 64) : 0,
                                         base + span[i].off + 127 + 64);
    }
    transpose_x8(row, m + 8);
    for (int k = 0; k < 8; k++)
        hk[k] = h[k];
    COMPRESS(h, hk, &second);
    digests_x8(h, out);
}

/* Eight Merkle nodes at once: message i is tag || in[64 i .. 64 i + 64),
 * 65 bytes, one block. Without the scheduler: the eight rows are read
 * whole and transposed, the tag shifted in, and message words 9 to 15 are
 * zero, so the compiler drops their additions (7 of every 16). */
__attribute__((target("avx512f,avx512bw"))) static void
pairs_x8(uint8_t tag, const uint8_t *in, uint8_t (*out)[HASHMANY_BYTES]) {
    static const uint64_t t65[8] = {65, 65, 65, 65, 65, 65, 65, 65};
    static const uint64_t last[8] = {~0ULL, ~0ULL, ~0ULL, ~0ULL, ~0ULL, ~0ULL, ~0ULL, ~0ULL};
    static const struct {
        const uint64_t *t, *f;
    } one = {t65, last};
    __m512i row[8], w[8], m[16], hk[8], h[8];
    for (int i = 0; i < 8; i++)
        row[i] = _mm512_loadu_si512(in + 64 * i);
    transpose_x8(row, w); /* w[k]: word k of each node */
    m[0] = _mm512_or_si512(_mm512_slli_epi64(w[0], 8), _mm512_set1_epi64(tag));
    for (int k = 1; k < 8; k++) /* byte j of the node is byte j + 1 here */
        m[k] = _mm512_or_si512(_mm512_slli_epi64(w[k], 8), _mm512_srli_epi64(w[k - 1], 56));
    m[8] = _mm512_srli_epi64(w[7], 56);
    for (int k = 9; k < 16; k++)
        m[k] = _mm512_setzero_si512();
    fresh_x8(hk);
    COMPRESS(h, hk, &one);
    digests_x8(h, out);
}

#undef VEC
#undef SET1
#undef LOADU
#undef ADD
#undef XOR
#undef ROR_32
#undef ROR_24
#undef ROR_16
#undef ROR_63

/* ---- four lanes, AVX2 ------------------------------------------------ */

#define VEC __m256i
#define SET1(x) _mm256_set1_epi64x((long long)(x))
#define LOADU(p) _mm256_loadu_si256((const __m256i *)(p))
#define ADD(a, b) _mm256_add_epi64((a), (b))
#define XOR(a, b) _mm256_xor_si256((a), (b))
#define ROR_32(a) _mm256_shuffle_epi32((a), 0xb1)
#define ROR_24(a) _mm256_shuffle_epi8((a), r24)
#define ROR_16(a) _mm256_shuffle_epi8((a), r16)
#define ROR_63(a) _mm256_or_si256(_mm256_srli_epi64((a), 63), ADD((a), (a)))

__attribute__((target("avx2"))) static void
step_x4(void *stv, const plan *pl, uint8_t tag, uint64_t dig[4][8]) {
    const __m256i r16 = _mm256_setr_epi8(2, 3, 4, 5, 6, 7, 0, 1, 10, 11, 12, 13, 14, 15, 8, 9,
                                         2, 3, 4, 5, 6, 7, 0, 1, 10, 11, 12, 13, 14, 15, 8, 9);
    const __m256i r24 = _mm256_setr_epi8(3, 4, 5, 6, 7, 0, 1, 2, 11, 12, 13, 14, 15, 8, 9, 10,
                                         3, 4, 5, 6, 7, 0, 1, 2, 11, 12, 13, 14, 15, 8, 9, 10);
    __m256i *h = stv, m[16];
    _Alignas(32) uint8_t buf[4][128];
    const uint8_t *row[4];
    for (int i = 0; i < 4; i++) { /* a whole block inside the message is read
                                   * in place; others are copied */
        unsigned first = (pl->tagged >> i) & 1, take = pl->take[i];
        const uint8_t *p = (const uint8_t *)(uintptr_t)pl->addr[i];
        if (take == 128 && !first) {
            row[i] = p;
            continue;
        }
        buf[i][0] = tag;
        if (take > first)
            memcpy(buf[i] + first, p + first, take - first);
        memset(buf[i] + take, 0, 128 - take);
        row[i] = buf[i];
    }
    for (int g = 0; g < 4; g++) { /* 4x4 transposes of 64-bit words */
        __m256i a = _mm256_loadu_si256((const __m256i *)(row[0] + 32 * g));
        __m256i b = _mm256_loadu_si256((const __m256i *)(row[1] + 32 * g));
        __m256i c = _mm256_loadu_si256((const __m256i *)(row[2] + 32 * g));
        __m256i d = _mm256_loadu_si256((const __m256i *)(row[3] + 32 * g));
        __m256i t0 = _mm256_unpacklo_epi64(a, b), t1 = _mm256_unpackhi_epi64(a, b);
        __m256i t2 = _mm256_unpacklo_epi64(c, d), t3 = _mm256_unpackhi_epi64(c, d);
        m[4 * g + 0] = _mm256_permute2x128_si256(t0, t2, 0x20);
        m[4 * g + 1] = _mm256_permute2x128_si256(t1, t3, 0x20);
        m[4 * g + 2] = _mm256_permute2x128_si256(t0, t2, 0x31);
        m[4 * g + 3] = _mm256_permute2x128_si256(t1, t3, 0x31);
    }
    const __m256i fresh = _mm256_setr_epi64x(
        -(long long)(pl->tagged & 1), -(long long)((pl->tagged >> 1) & 1),
        -(long long)((pl->tagged >> 2) & 1), -(long long)((pl->tagged >> 3) & 1));
    __m256i hk[8];
    for (int k = 0; k < 8; k++) /* lanes starting a message: the IV state */
        hk[k] = _mm256_blendv_epi8(
            h[k], _mm256_set1_epi64x((long long)(blake2b_iv[k] ^ (k ? 0 : H0_PARAM))), fresh);
    COMPRESS(h, hk, pl);
    if (pl->done)
        for (int k = 0; k < 4; k++)
            _mm256_storeu_si256((__m256i *)dig[k], h[k]);
}

static int have_avx512(void) { return pdns_cpu_has(PDNS_CPU_AVX512BW); }
static int have_avx2(void) { return pdns_cpu_has(PDNS_CPU_AVX2); }

static const struct impl {
    const char *name;
    int lanes;
    size_t min_n; /* below this many messages the idle lanes cost more */
    step_fn step;
    int (*have)(void);
} impls[] = {{"avx512x8", 8, 3, step_x8, have_avx512},
             {"avx2x4", 4, 2, step_x4, have_avx2}};
static size_t n_impls(void) { return sizeof(impls) / sizeof(impls[0]); }
#else
static const struct impl {
    const char *name;
    int lanes;
    size_t min_n;
    void (*step)(void);
    int (*have)(void);
} impls[1];
static size_t n_impls(void) { return 0; } /* none: libsodium only */
static void run_lanes(int w, void (*step)(void), uint8_t tag, const uint8_t *base,
                      const hashmany_span *span, size_t n,
                      uint8_t (*out)[HASHMANY_BYTES]) {
    (void)w, (void)step;
    hashmany_blake2b256_generic(tag, base, span, n, out);
}
#endif

static int chosen = -2; /* index in impls, -1 for libsodium, -2 not yet */

static int choose(void) {
    if (chosen == -2) {
        chosen = -1;
        for (size_t i = 0; i < n_impls() && chosen < 0; i++)
            if (impls[i].have())
                chosen = (int)i;
    }
    return chosen;
}

static void hash_some(int c, uint8_t tag, const uint8_t *base, const hashmany_span *span,
                      size_t n, uint8_t (*out)[HASHMANY_BYTES]) {
    if (c >= 0 && n >= impls[c].min_n)
        run_lanes(impls[c].lanes, impls[c].step, tag, base, span, n, out);
    else
        hashmany_blake2b256_generic(tag, base, span, n, out);
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(PDNS_NO_SIMD)
static int two_blocks(const hashmany_span *s) { /* 128 < 1 + len <= 256 */
    return s->len >= 128 && s->len <= 255;
}

/* With AVX-512: runs of eight messages of two blocks in lockstep, the
 * others through the scheduler, gathered 64 at a time. */
static void hash_x8(uint8_t tag, const uint8_t *base, const hashmany_span *span, size_t n,
                    uint8_t (*out)[HASHMANY_BYTES]) {
    hashmany_span rest[64];
    size_t at[64], nrest = 0, i = 0;
    uint8_t tmp[64][HASHMANY_BYTES];
    while (i < n || nrest) {
        size_t k = 0;
        while (k < 8 && i + k < n && two_blocks(&span[i + k]))
            k++;
        if (k == 8) {
            twoblocks_x8(tag, base, span + i, out + i);
            i += 8;
            continue;
        }
        if (i < n) {
            rest[nrest] = span[i];
            at[nrest++] = i++;
        }
        if (nrest == 64 || (i == n && nrest)) {
            hash_some(choose(), tag, base, rest, nrest, tmp);
            for (size_t j = 0; j < nrest; j++)
                memcpy(out[at[j]], tmp[j], HASHMANY_BYTES);
            nrest = 0;
        }
    }
}
#endif

void hashmany_blake2b256(uint8_t tag, const uint8_t *base,
                         const hashmany_span *span, size_t n,
                         uint8_t (*out)[HASHMANY_BYTES]) {
    int c = choose();
#if defined(__x86_64__) && defined(__GNUC__) && !defined(PDNS_NO_SIMD)
    if (c >= 0 && impls[c].step == step_x8) {
        hash_x8(tag, base, span, n, out);
        return;
    }
#endif
    hash_some(c, tag, base, span, n, out);
}

void hashmany_blake2b256_pairs(uint8_t tag, const uint8_t (*in)[HASHMANY_BYTES], size_t n,
                               uint8_t (*out)[HASHMANY_BYTES]) {
    size_t i = 0;
#if defined(__x86_64__) && defined(__GNUC__) && !defined(PDNS_NO_SIMD)
    if (choose() >= 0 && impls[choose()].step == step_x8)
        for (; i + 8 <= n; i += 8)
            pairs_x8(tag, in[2 * i], out + i);
#endif
    hashmany_span span[64];
    while (i < n) { /* the rest, through the scheduler, 64 at a time */
        size_t k = n - i < 64 ? n - i : 64;
        for (size_t j = 0; j < k; j++) {
            span[j].off = 2 * j * HASHMANY_BYTES;
            span[j].len = 2 * HASHMANY_BYTES;
        }
        hashmany_blake2b256(tag, in[2 * i], span, k, out + i);
        i += k;
    }
}

const char *hashmany_impl(void) {
    int c = choose();
    return c >= 0 ? impls[c].name : "libsodium";
}

int hashmany_use(const char *name) {
    if (strcmp(name, "libsodium") == 0) {
        chosen = -1;
        return 0;
    }
    for (size_t i = 0; i < n_impls(); i++)
        if (strcmp(name, impls[i].name) == 0 && impls[i].have()) {
            chosen = (int)i;
            return 0;
        }
    return -1;
}
