/* cpu.h - which vector extensions this CPU runs, asked of it once each.
 *
 * The parsers and the hashing pick their code at run time: the binary is
 * built for any x86-64 and uses AVX2 or AVX-512 where the CPU has them.
 * Every answer is 0 when the build has no vector paths (PDNS_NO_SIMD, or
 * not x86-64 with GCC or clang). */
#ifndef PDNS_CPU_H
#define PDNS_CPU_H

enum pdns_cpu {
    PDNS_CPU_AVX2,
    PDNS_CPU_AVX512BW,    /* with AVX-512F */
    PDNS_CPU_AVX512VL,    /* with F and BW: 128- and 256-bit AVX-512 */
    PDNS_CPU_AVX512VBMI2, /* with F, BW and VL: byte compress and expand */
    PDNS_CPU_COUNT
};

#if defined(__x86_64__) && defined(__GNUC__) && !defined(PDNS_NO_SIMD)
static inline int pdns_cpu_probe(enum pdns_cpu f) {
    int bw = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
    int vl = bw && __builtin_cpu_supports("avx512vl");
    switch (f) {
    case PDNS_CPU_AVX2: return __builtin_cpu_supports("avx2") != 0;
    case PDNS_CPU_AVX512BW: return bw;
    case PDNS_CPU_AVX512VL: return vl;
    case PDNS_CPU_AVX512VBMI2: return vl && __builtin_cpu_supports("avx512vbmi2");
    default: return 0;
    }
}

/* 1 when the CPU runs f. Asked on every record: the answer is kept. */
static inline int pdns_cpu_has(enum pdns_cpu f) {
    static signed char have[PDNS_CPU_COUNT] = {-1, -1, -1, -1};
    if (have[f] < 0)
        have[f] = (signed char)pdns_cpu_probe(f);
    return have[f];
}
#else
static inline int pdns_cpu_has(enum pdns_cpu f) {
    (void)f;
    return 0;
}
#endif

#endif
