/* machine.h - one line that says what a figure was measured on: the CPU
 * model and the vector paths the relay takes on it. Printed by
 * `pdns-relay version` and by every benchmark, so that a number can be
 * compared with the machine it came from. */
#ifndef PDNS_MACHINE_H
#define PDNS_MACHINE_H

#include <stddef.h>

/* "cpu: MODEL, N cores; vector paths: csv X, hashing Y" into out. */
void pdns_machine_describe(char *out, size_t outlen);

#endif
