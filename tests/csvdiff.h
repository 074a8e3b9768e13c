/* csvdiff.h - parses one line twice, with the AVX-512 separator mask (when
 * the CPU has it) and with the scanners (layout.no_simd), and says how the
 * two differ: result, reason, every field of the record, and where each
 * string points. Used by test_csv (random lines) and fuzz_csv. */
#ifndef PDNS_TESTS_CSVDIFF_H
#define PDNS_TESTS_CSVDIFF_H

#include <stdlib.h>
#include <string.h>

#include "csv.h"

/* Same text, and the same place in its own copy of the line (or both in
 * the record's addr_buf). */
static int csvdiff_same_str(pdns_str a, const char *abase, const pdns_record *ra,
                            pdns_str b, const char *bbase, const pdns_record *rb) {
    if (a.len != b.len || (a.len && memcmp(a.p, b.p, a.len) != 0))
        return 0;
    if (!a.len)
        return 1;
    int ain = a.p >= ra->addr_buf && a.p < ra->addr_buf + sizeof(ra->addr_buf);
    int bin = b.p >= rb->addr_buf && b.p < rb->addr_buf + sizeof(rb->addr_buf);
    if (ain || bin)
        return ain == bin;
    return a.p - abase == b.p - bbase;
}

/* NULL when both ways agree on line[0..len), else what differs. */
static const char *csv_diff(const csv_layout *l, const char *line, size_t len) {
    csv_layout fast = *l, slow = *l;
    fast.no_simd = 0;
    slow.no_simd = 1;
    char *a = malloc(len + 1), *b = malloc(len + 1);
    pdns_record ra, rb;
    const char *wa = NULL, *wb = NULL, *diff = NULL;
    memcpy(a, line, len);
    memcpy(b, line, len);
    memset(&ra, 0, sizeof(ra));
    memset(&rb, 0, sizeof(rb));
    enum csv_result xa = csv_parse_line(&fast, a, len, &ra, &wa);
    enum csv_result xb = csv_parse_line(&slow, b, len, &rb, &wb);
    if (xa != xb)
        diff = "result";
    else if (xa != CSV_OK && strcmp(wa, wb) != 0)
        diff = "reason";
    else if (xa == CSV_OK) {
        if (!csvdiff_same_str(ra.rrname, a, &ra, rb.rrname, b, &rb))
            diff = "rrname";
        else if (!csvdiff_same_str(ra.rdata, a, &ra, rb.rdata, b, &rb))
            diff = "rdata";
        else if (!csvdiff_same_str(ra.client, a, &ra, rb.client, b, &rb) ||
                 !csvdiff_same_str(ra.server, a, &ra, rb.server, b, &rb))
            diff = "addresses";
        else if (ra.rrtype != rb.rrtype || ra.is_error != rb.is_error)
            diff = "rrtype or error flag";
        else if (ra.time_first != rb.time_first || ra.time_first_ms != rb.time_first_ms ||
                 ra.has_ms != rb.has_ms)
            diff = "time";
        else if (ra.count != rb.count || ra.ttl != rb.ttl)
            diff = "count or ttl";
        else if (memcmp(a, b, len) != 0)
            diff = "the line as left in place";
    }
    free(a);
    free(b);
    return diff;
}

#endif
