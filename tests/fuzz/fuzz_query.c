/* fuzz_query.c - libFuzzer target for the query string parser (qparse):
 * whatever a client sends as /query/<q>, /rdata/<q>, a DNSDB v2 path or as
 * a filter, the
 * parser must answer 0 or -1 with a message, and an accepted lookup must
 * have a lex range whose start sorts before its end. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "qparse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    qparse p;
    char err[256];
    if (size < 1 || size > 2048)
        return 0;
    char *q = malloc(size);
    memcpy(q, data + 1, size - 1);
    q[size - 1] = '\0';
    int form = data[0] % 5; /* QP_QUERY, QP_RDATA, QP_ERRORS, QP_NAME, DNSDB */
    err[0] = '\0';
    dnsdb_path d;
    int rc = form == 4 ? qparse_dnsdb(&p, q, &d, err, sizeof(err))
                       : qparse_query(&p, q, size - 1, form, err, sizeof(err));
    if (rc == 0 && form == 4 && d.verb > DNSDB_SUMMARIZE) { /* ping, rate_limit */
        free(q);
        return 0;
    }
    if (rc == -1 && !err[0])
        abort();
    if (rc == 0 && strcmp(p.a.mode, "name") != 0) {
        size_t n = p.a.alen < p.a.blen ? p.a.alen : p.a.blen;
        int c = memcmp(p.a.a, p.a.b, n);
        if (c > 0 || (c == 0 && p.a.alen > p.a.blen))
            abort();
    }
    if (rc == 0) {
        char *z = malloc(size);
        memcpy(z, data + 1, size - 1);
        z[size - 1] = '\0';
        err[0] = '\0';
        if (qparse_rrtypes(&p, z, err, sizeof(err)) < 0 && !err[0])
            abort();
        if (qparse_time(&p, "time_first_after", z, err, sizeof(err)) < 0 && !err[0])
            abort();
        free(z);
    }
    free(q);
    return 0;
}
