/* clock.h - the relay's two clocks: monotonic milliseconds for timeouts,
 * rates and backoff; wall-clock milliseconds for record times. Header only.
 * Pure modules (mixer/, policy/) take the time as an argument instead. */
#ifndef PDNS_CLOCK_H
#define PDNS_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Milliseconds on CLOCK_MONOTONIC: never steps back, meaningless across
 * processes. */
static inline uint64_t pdns_mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Unix time in milliseconds (CLOCK_REALTIME). */
static inline int64_t pdns_wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#endif
