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
    snprintf(out, outlen, "cpu: %s, %ld cores; vector paths: csv %s, hashing %s", model,
             sysconf(_SC_NPROCESSORS_ONLN), csv, hashmany_impl());
}
