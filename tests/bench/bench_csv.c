/* bench_csv.c - CSV parse speed on one core, beside a plain memchr line
 * split of the same bytes in the same run (the baseline), and with COF
 * encoding added; then COF decoding of the same records, cof_decode (fast
 * reader) beside jansson alone. Prints tables; never asserts a time. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cof.h"
#include "csv.h"
#include "machine.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

enum mode { SPLIT, PARSE, PARSE_COF };

static size_t run(enum mode m, const char *src, size_t n, char *work, const csv_layout *l,
                  size_t *bad) {
    pdns_buf out = {0};
    size_t lines = 0;
    memcpy(work, src, n); /* the parser works in place: fresh bytes each run */
    char *p = work, *end = work + n;
    *bad = 0;
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            nl = end;
        if (m != SPLIT) {
            pdns_record r;
            const char *why;
            if (csv_parse_line(l, p, (size_t)(nl - p), &r, &why) != CSV_OK)
                (*bad)++;
            else if (m == PARSE_COF) {
                cof_encode(&r, 0, &out);
                if (out.len > (1 << 20))
                    out.len = 0;
            }
        }
        lines++;
        p = nl + 1;
    }
    pdns_buf_free(&out);
    return lines;
}

static int count_rec(void *ctx, const pdns_record *r) {
    (void)r;
    (*(size_t *)ctx)++;
    return 0;
}

typedef int (*decode_fn)(const char *, size_t, const pdns_record *, cof_emit_fn, void *,
                         char *, size_t);

/* The records of the CSV as COF lines (what a partner relay receives), then
 * both decoders over them, best of five. */
static void cof_table(const char *src, size_t n, char *work, const csv_layout *l) {
    pdns_buf cof = {0};
    size_t nrec = 0;
    memcpy(work, src, n);
    for (char *p = work, *end = work + n, *nl; p < end; p = nl + 1) {
        if (!(nl = memchr(p, '\n', (size_t)(end - p))))
            nl = end;
        pdns_record r;
        const char *why;
        if (csv_parse_line(l, p, (size_t)(nl - p), &r, &why) == CSV_OK) {
            r.sensor_id.p = "relay-a";
            r.sensor_id.len = 7;
            cof_encode(&r, COF_WITH_SENSOR, &cof);
            nrec++;
        }
    }
    static const decode_fn fns[] = {cof_decode_json, cof_decode};
    static const char *names[] = {"jansson alone (baseline)", "cof_decode (fast reader)"};
    double base = 0;
    printf("\nCOF decode, one core, the same records as COF lines (%.1f B/record)\n",
           (double)cof.len / (double)(nrec ? nrec : 1));
    printf("%-30s %12s %10s %8s\n", "decoder", "records/s", "ns/rec", "vs base");
    for (int d = 0; d < 2; d++) {
        double best = 1e9;
        size_t recs = 0;
        for (int rep = 0; rep < 5; rep++) {
            pdns_record init = {0};
            char err[256];
            recs = 0;
            double t0 = now();
            for (char *p = cof.p, *end = cof.p + cof.len, *nl; p < end; p = nl + 1) {
                nl = memchr(p, '\n', (size_t)(end - p));
                fns[d](p, (size_t)(nl - p), &init, count_rec, &recs, err, sizeof(err));
            }
            double t = now() - t0;
            if (t < best)
                best = t;
        }
        double rps = (double)recs / best;
        if (d == 0)
            base = rps;
        printf("%-30s %12.0f %10.1f %7.2fx\n", names[d], rps, best * 1e9 / (double)recs,
               rps / base);
    }
    pdns_buf_free(&cof);
}

int main(int argc, char **argv) {
    char machine_[400];
    pdns_machine_describe(machine_, sizeof(machine_));
    printf("%s\n", machine_);
    const char *path = argc > 1 ? argv[1] : "build/bench/bench.csv";
    int fd = open(path, O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        perror(path);
        return 1;
    }
    size_t n = (size_t)st.st_size;
    char *src = malloc(n), *work = malloc(n);
    if (!src || !work || read(fd, src, n) != (ssize_t)n)
        return 1;
    close(fd);
    csv_layout l;
    char err[128];
    csv_layout_init(&l, NULL, NULL, err, sizeof(err));
    static const char *names[] = {"memchr line split (baseline)", "CSV parse",
                                  "CSV parse + COF encode"};
    double base = 0;
    printf("\nCSV parse, one core, %s (%.1f MB)\n", path, (double)n / 1e6);
    printf("%-30s %12s %10s %10s %8s\n", "stage", "records/s", "MB/s", "ns/rec", "vs base");
    /* the stages take turns, seven rounds, best of each: a slow spell of
     * the machine then falls on all of them, not on one */
    double best[PARSE_COF + 1] = {1e9, 1e9, 1e9};
    size_t lines[PARSE_COF + 1] = {0}, bad[PARSE_COF + 1] = {0};
    for (int rep = 0; rep < 7; rep++)
        for (int m = SPLIT; m <= PARSE_COF; m++) {
            double t0 = now();
            lines[m] = run((enum mode)m, src, n, work, &l, &bad[m]);
            double t = now() - t0;
            if (t < best[m])
                best[m] = t;
        }
    for (int m = SPLIT; m <= PARSE_COF; m++) {
        double rps = (double)lines[m] / best[m];
        if (m == SPLIT)
            base = rps;
        printf("%-30s %12.0f %10.1f %10.1f %7.3fx%s\n", names[m], rps,
               (double)n / best[m] / 1e6, best[m] * 1e9 / (double)lines[m], rps / base,
               bad[m] ? "  (rejects!)" : "");
    }
    cof_table(src, n, work, &l);
    free(src);
    free(work);
    return 0;
}
