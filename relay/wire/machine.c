/* machine.c - see machine.h. */
#include "machine.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cpu.h"
#include "hashmany.h"

void pdns_machine_describe(char *out, size_t outlen) {
    char model[160] = "unknown", line[512];
    FILE *f = fopen("/proc/cpuinfo", "r");
    while (f && fgets(line, sizeof(line), f)) {
        if (strncmp(line, "model name", 10) == 0) {
            const char *c = strchr(line, ':');
            if (c) {
                snprintf(model, sizeof(model), "%s", c + 2);
                model[strcspn(model, "\n")] = '\0';
            }
            break;
        }
    }
    if (f)
        fclose(f);
    const char *csv = pdns_cpu_has(PDNS_CPU_AVX512VBMI2) ? "AVX-512 VBMI2"
                      : pdns_cpu_has(PDNS_CPU_AVX512VL) ? "AVX-512 VL"
                                                        : "scalar SWAR";
    /* the caches: a figure whose working set fits in one machine's L3 and
     * not in another's is not comparable between them (bench_mixer) */
    long l2 = sysconf(_SC_LEVEL2_CACHE_SIZE), l3 = sysconf(_SC_LEVEL3_CACHE_SIZE);
    snprintf(out, outlen, "cpu: %s, %ld cores, L2 %ld KiB, L3 %ld MiB (as the CPU reports it); "
             "vector paths: csv %s, hashing %s", model, sysconf(_SC_NPROCESSORS_ONLN),
             l2 > 0 ? l2 >> 10 : 0, l3 > 0 ? l3 >> 20 : 0, csv, hashmany_impl());
}
