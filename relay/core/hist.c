/* hist.c - latency histograms. See hist.h. */
#include "hist.h"

#include <inttypes.h>
#include <math.h>

static const double le[PDNS_HIST_BUCKETS] = {0.0005, 0.001, 0.002, 0.005, 0.01,
                                             0.025,  0.05,  0.1,   0.25,  0.5,
                                             1,      2.5,   5};

void pdns_hist_add(pdns_hist *h, double secs) {
    int i = 0;
    while (i < PDNS_HIST_BUCKETS && secs > le[i])
        i++;
    if (i < PDNS_HIST_BUCKETS)
        h->bucket[i]++;
    h->count++;
    h->sum += secs;
}

void pdns_hist_sub(pdns_hist *out, const pdns_hist *a, const pdns_hist *b) {
    for (int i = 0; i < PDNS_HIST_BUCKETS; i++)
        out->bucket[i] = a->bucket[i] - b->bucket[i];
    out->count = a->count - b->count;
    out->sum = a->sum - b->sum;
}

double pdns_hist_quantile(const pdns_hist *h, double q) {
    if (!h->count)
        return -1;
    uint64_t want = (uint64_t)(q * (double)h->count + 0.999999), cum = 0;
    if (want < 1)
        want = 1;
    for (int i = 0; i < PDNS_HIST_BUCKETS; i++) {
        cum += h->bucket[i];
        if (cum >= want)
            return le[i];
    }
    return HUGE_VAL;
}

int pdns_hist_render(const pdns_hist *h, const char *name, const char *help,
                     pdns_buf *b) {
    uint64_t cum = 0;
    int rc = pdns_buf_printf(b, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    for (int i = 0; i < PDNS_HIST_BUCKETS; i++) {
        cum += h->bucket[i];
        rc |= pdns_buf_printf(b, "%s_bucket{le=\"%g\"} %" PRIu64 "\n", name, le[i], cum);
    }
    rc |= pdns_buf_printf(b, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n%s_sum %.6f\n"
                             "%s_count %" PRIu64 "\n",
                          name, h->count, name, h->sum, name, h->count);
    return rc ? -1 : 0;
}
