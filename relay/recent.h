/* recent.h - the records the relay took in the last minutes, as the mixer
 * took them (its source index and the time), kept in memory for the
 * console's policy preview (preview.h). Bounded by bytes: two halves, the
 * older dropped whole when the newer fills, so at least half the bound's
 * worth of the newest records is kept; records older than the age bound
 * are skipped when read. */
#ifndef PDNS_RECENT_H
#define PDNS_RECENT_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "record.h"

typedef struct recent {
    pdns_buf half[2];          /* [cur], [!cur] the older */
    int cur;
    size_t max_bytes;          /* 0: nothing kept */
    int64_t max_age_ms;
    uint64_t kept, dropped;    /* records taken, and lost with a dropped half */
    uint64_t half_records[2];
} recent;

void recent_init(recent *rc, size_t max_bytes, int64_t max_age_ms);
void recent_free(recent *rc);

/* Keeps r (copied), from mixer source `source`, taken at now_ms. */
void recent_add(recent *rc, const pdns_record *r, uint16_t source, int64_t now_ms);

/* Calls fn for each record kept that was taken at or after now_ms minus
 * the age bound, oldest first; r points into the store, valid until the
 * next recent_add. Returns how many. */
size_t recent_each(const recent *rc, int64_t now_ms,
                   void (*fn)(void *ctx, const pdns_record *r, uint16_t source, int64_t ms),
                   void *ctx);

#endif
