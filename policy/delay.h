/* delay.h - a partner's delay line: mixer entries wait until their release
 * time (the policy's delay_min plus a random jitter), then leave in time
 * order (ties in the order they came: each entry is numbered). Entries are kept whole (record, sensors, counts), not as the
 * partner would receive them, so that what leaves is judged again by the
 * policy in force then. Bounded: a full line refuses new entries (the
 * caller counts them). Pure logic: times are passed in. */
#ifndef PDNS_POLICY_DELAY_H
#define PDNS_POLICY_DELAY_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "policy.h"
#include "pool.h"

typedef struct delay_line delay_line;

delay_line *delay_line_new(size_t max);
void delay_line_free(delay_line *d);

/* Copies e in (its record and sensors). A release time before that of the
 * last entry that left is moved up to it, so that entries leave in the
 * order of (release time, number). Returns 0, or -1 when the line is full
 * or out of memory. */
int delay_line_push(delay_line *d, const mixer_entry *e, int64_t release_ms);

/* Hands over, oldest release first, the entries due at now_ms, at most
 * max of them (the rest stay for later); e is valid during the call only.
 * Returns how many left. */
size_t delay_line_pop_due(delay_line *d, int64_t now_ms, size_t max,
                          void (*fn)(void *ctx, const mixer_entry *e),
                          void *ctx);

/* The release: the entries due at now_ms (at most max), each judged again
 * by p, the policy in force now, whatever admitted it. fn gets those p
 * passes, as the partner receives them (o is valid during the call only);
 * denied[verdict] counts the others. Returns how many left the line. */
size_t delay_line_release(delay_line *d, int64_t now_ms, size_t max,
                          const policy *p, const policy_env *env,
                          void (*fn)(void *ctx, const policy_out *o),
                          void *ctx, uint64_t denied[POLICY_VERDICT_COUNT]);

size_t delay_line_size(const delay_line *d);

/* The place of the last entry that left (its release time and number;
 * 0, 0 before any): everything before it has left, nothing after it. */
void delay_line_last(const delay_line *d, int64_t *at, uint64_t *id);

/* A delay line across a restart. delay_line_save appends every entry (its
 * place, record, figures, sensors as indexes) to out, in a format only
 * delay_line_restore reads: 0, or -1 out of memory. delay_line_restore adds
 * the saved entries of data to d, except those at or before (left_at,
 * left_id), the place of the last entry that had left (as the partner's
 * outbox says; *gone counts them); sensors are mapped (map[i] the index
 * now of the sensor saved as i, -1 when gone; an entry left with no sensor
 * is dropped). Returns how many were restored, or -1 when data is not a
 * saved line (nothing is added then). */
int delay_line_save(const delay_line *d, pdns_buf *out);
long delay_line_restore(delay_line *d, const uint8_t *data, size_t len, const int32_t *map,
                        size_t nmap, int64_t left_at, uint64_t left_id, size_t *gone);

#endif
