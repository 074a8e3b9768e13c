/* testrec.h - an A record from literal parts, for the mixer's tests and
 * benchmarks. Header-only; the strings must outlive the record. */
#ifndef PDNS_TESTS_TESTREC_H
#define PDNS_TESTS_TESTREC_H

#include <string.h>

#include "record.h"
#include "rrtype.h"

static inline pdns_record test_record_a(const char *name, const char *rdata, int64_t t,
                                        uint64_t count) {
    pdns_record r;
    memset(&r, 0, sizeof(r));
    r.rrname.p = name;
    r.rrname.len = strlen(name);
    r.rdata.p = rdata;
    r.rdata.len = strlen(rdata);
    r.rrtype = PDNS_RR_A;
    r.time_first = r.time_last = t;
    r.count = count;
    return r;
}

#endif
