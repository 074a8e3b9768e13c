/* totals.h - what one partner was sent of each triple, in total.
 *
 * The mixer releases a triple again, later, with only the sightings since
 * its last release: its count and times are deltas. A consumer that adds
 * (a pdns-relay, a store) ends with the right totals; one that overwrites
 * with the last record it got (a COF importer such as analyzer-d4-passivedns)
 * does not. For a policy with "counts": "total", each record is sent with
 * the sum of every count this partner was sent for its triple, the earliest
 * time_first and the latest time_last: the table below keeps them.
 *
 * Bounded: at most max triples (the table takes 96 to 192 bytes per triple
 * of max, as it fills). When full, a new
 * triple takes the place of the least recently sent one in its probe run
 * (counted in evicted); that triple's next release starts a new total.
 * Pure logic; the caller journals the table (totals_entry) and restores it
 * with totals_set. */
#ifndef PDNS_POLICY_TOTALS_H
#define PDNS_POLICY_TOTALS_H

#include <stddef.h>
#include <stdint.h>

#include "record.h"

#define TOTALS_KEY 16

typedef struct totals_entry {
    uint8_t key[TOTALS_KEY];  /* totals_key of the triple */
    uint64_t count;
    int64_t time_first, time_last;
} totals_entry;

typedef struct totals totals;

/* A table for at most max triples (>= 1). NULL when out of memory. */
totals *totals_new(size_t max);
void totals_free(totals *t);

/* The triple's key: BLAKE2b-128 of rrname, rrtype and rdata. */
void totals_key(const pdns_record *r, uint8_t key[TOTALS_KEY]);

/* Adds r's count and times to its triple's totals and writes the totals
 * back into r (count saturating as pdns_count_add). Fills *out, when not
 * NULL, with the triple's new totals (for the journal). */
void totals_apply(totals *t, pdns_record *r, totals_entry *out);

/* Sets a triple's totals, as a journal replay does (the last one wins). */
void totals_set(totals *t, const totals_entry *e);

/* Calls fn with every triple's totals (for a snapshot). */
void totals_each(const totals *t, void (*fn)(void *ctx, const totals_entry *e),
                 void *ctx);

size_t totals_size(const totals *t);
uint64_t totals_evicted(const totals *t);

#endif
