/* hist.h - a latency histogram for the Prometheus exposition: fixed
 * buckets from 0.5 ms to 5 s, counted as observations arrive. */
#ifndef PDNS_HIST_H
#define PDNS_HIST_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define PDNS_HIST_BUCKETS 13

typedef struct pdns_hist {
    uint64_t bucket[PDNS_HIST_BUCKETS]; /* not cumulative */
    uint64_t count;
    double sum;
} pdns_hist;

/* Counts one observation of secs seconds. */
void pdns_hist_add(pdns_hist *h, double secs);

/* out = a - b, bucket by bucket (a later copy of the same histogram minus
 * an earlier one: what was counted in between). */
void pdns_hist_sub(pdns_hist *out, const pdns_hist *a, const pdns_hist *b);

/* The upper bound of the bucket holding quantile q (0 < q <= 1), in
 * seconds: the latency q of the observations did not exceed. -1 when h
 * is empty; +inf when the quantile is past the last bucket. */
double pdns_hist_quantile(const pdns_hist *h, double q);

/* Appends "# HELP", "# TYPE ... histogram" and the name_bucket{le=...},
 * name_sum and name_count lines. Returns 0, or -1. */
int pdns_hist_render(const pdns_hist *h, const char *name, const char *help,
                     pdns_buf *b);

/* Sizes the relay adapts to what it measures (store calls, queue moves). */

/* A moving average that follows a quarter of each new value x (avg 0:
 * none yet, x is the first). */
static inline double pdns_avg_step(double avg, double x) {
    return avg > 0 ? 0.75 * avg + 0.25 * x : x;
}

/* want, rounded down, within [lo, hi] (lo above hi counts as hi). */
static inline size_t pdns_within(double want, size_t lo, size_t hi) {
    if (lo > hi)
        lo = hi;
    return want >= (double)hi ? hi : want <= (double)lo ? lo : (size_t)want;
}

#endif
