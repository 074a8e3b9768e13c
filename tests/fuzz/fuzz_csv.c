/* fuzz_csv.c - libFuzzer target for the passivedns CSV parser. The first
 * byte picks a layout and separator; the rest is one line. Whatever the
 * input, the parser must return a result, any record it accepts must
 * point inside the line and encode as COF, and the AVX-512 separator mask
 * and the scanners must cut the line the same (csvdiff.h). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cof.h"
#include "csv.h"
#include "../csvdiff.h"

static const char *layouts[] = {"SMcsCQTAtn", "SQTA", "HhcwsWpCQLTAltn", "SMQLTAn"};
static const char *seps[] = {"||", "|", ",", "\t"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    csv_layout l;
    char err[128];
    pdns_record r;
    const char *why;
    static pdns_buf out;
    if (size < 1)
        return 0;
    if (csv_layout_init(&l, layouts[data[0] & 3], seps[(data[0] >> 2) & 3], err, sizeof(err)) < 0)
        abort();
    l.keep_addresses = data[0] >> 7;
    char *line = malloc(size);
    memcpy(line, data + 1, size - 1);
    memset(&r, 0, sizeof(r));
    if (csv_parse_line(&l, line, size - 1, &r, &why) == CSV_OK) {
        if (r.rrname.len == 0 || r.rdata.len == 0)
            abort();
        out.len = 0;
        if (cof_encode(&r, COF_WITH_MS, &out) < 0)
            abort();
    }
    free(line);
    if (csv_diff(&l, (const char *)data + 1, size - 1))
        abort();
    return 0;
}
