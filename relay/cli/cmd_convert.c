/* cmd_convert.c - `pdns-relay convert`: passivedns CSV to COF NDJSON. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "cof.h"
#include "csv.h"
#include "lines.h"

const char cmd_convert_help[] =
    "usage: pdns-relay convert [--layout L] [--separator S] [--sensor NAME]\n"
    "                          [--timezone TZ] [--max-line N] [FILE|-]\n"
    "\n"
    "Reads passivedns CSV (gamelinux/passivedns, the D4 type-8 payload) and\n"
    "writes one COF object per answer line to stdout. Names are lower-cased\n"
    "and lose their trailing dot; A/AAAA answers are written canonically;\n"
    "error lines (NXDOMAIN, SERVFAIL, ...) are counted, not written.\n"
    "Rejected lines go to stderr as FILE:LINE: reason; a summary line ends\n"
    "the run. Exit status 0 when the input could be read.\n"
    "\n"
    "  --layout L     passivedns -f field letters (default " CSV_DEFAULT_LAYOUT ")\n"
    "  --separator S  passivedns -d separator (default \"" CSV_DEFAULT_SEPARATOR "\")\n"
    "  --sensor NAME  write sensor_id NAME in every object\n"
    "  --timezone TZ  the zone of the H field's local time (an IANA name such as\n"
    "                 Europe/Luxembourg; default UTC)\n"
    "  --max-line N   longest line accepted, in bytes (default 65536)\n";

struct conv {
    csv_layout layout;
    const char *file;
    pdns_record proto;
    pdns_buf out;
    uint64_t records, errors, rejected;
    uint64_t rejects[CSV_RESULT_COUNT];
};

static int flush_out(struct conv *c) {
    return pdns_buf_write_fd(&c->out, 1);
}

static int on_line(void *ctx, uint64_t lineno, char *line, size_t len) {
    struct conv *c = ctx;
    pdns_record r = c->proto;
    const char *why = "line too long";
    enum csv_result res = CSV_E_TOO_LONG;
    if (line && len == 0)
        return 0;
    if (line)
        res = csv_parse_line(&c->layout, line, len, &r, &why);
    if (res != CSV_OK) {
        c->rejected++;
        c->rejects[res]++;
        fprintf(stderr, "%s:%" PRIu64 ": %s\n", c->file, lineno, why);
        return 0;
    }
    if (r.is_error) {
        c->errors++;
        return 0;
    }
    c->records++;
    if (cof_encode(&r, COF_WITH_SENSOR | COF_WITH_MS, &c->out) < 0)
        return -1;
    if (c->out.len > (1u << 16) && flush_out(c) < 0)
        return -1;
    return 0;
}

int cmd_convert(int argc, char **argv) {
    static const struct option opts[] = {
        {"layout", required_argument, NULL, 'l'},
        {"separator", required_argument, NULL, 's'},
        {"sensor", required_argument, NULL, 'n'},
        {"max-line", required_argument, NULL, 'm'},
        {"timezone", required_argument, NULL, 'z'},
        {NULL, 0, NULL, 0}};
    const char *layout = NULL, *sep = NULL, *sensor = NULL, *tz = NULL;
    long max_line = 65536;
    char err[256];
    struct conv c;
    int opt, fd = 0, rc;

    memset(&c, 0, sizeof(c));
    optind = 1;
    while ((opt = getopt_long(argc, argv, "l:s:n:m:z:", opts, NULL)) != -1) {
        switch (opt) {
        case 'z': tz = optarg; break;
        case 'l': layout = optarg; break;
        case 's': sep = optarg; break;
        case 'n': sensor = optarg; break;
        case 'm': max_line = strtol(optarg, NULL, 10); break;
        default:
            fputs(cmd_convert_help, stderr);
            return 2;
        }
    }
    if (max_line < 64 || max_line > (1 << 24)) {
        fprintf(stderr, "convert: --max-line must be 64..16777216\n");
        return 2;
    }
    if (csv_layout_init(&c.layout, layout, sep, err, sizeof(err)) < 0 ||
        csv_layout_set_timezone(&c.layout, tz, err, sizeof(err)) < 0) {
        fprintf(stderr, "convert: %s\n", err);
        return 2;
    }
    c.proto.source = PDNS_SRC_FILE;
    if (sensor) {
        c.proto.sensor_id.p = sensor;
        c.proto.sensor_id.len = strlen(sensor);
    }
    c.file = optind < argc ? argv[optind] : "-";
    if (strcmp(c.file, "-") != 0 && (fd = open(c.file, O_RDONLY)) < 0) {
        fprintf(stderr, "convert: %s: %s\n", c.file, strerror(errno));
        return 1;
    }
    rc = lines_read_fd(fd, (size_t)max_line, on_line, &c);
    if (rc == 0)
        rc = flush_out(&c);
    else
        fprintf(stderr, "convert: %s: %s\n", c.file,
                errno ? strerror(errno) : "write failed");
    if (fd > 0)
        close(fd);
    pdns_buf_free(&c.out);
    fprintf(stderr, "convert: %s: %" PRIu64 " records, %" PRIu64
            " error lines, %" PRIu64 " rejected\n", c.file, c.records,
            c.errors, c.rejected);
    return rc == 0 ? 0 : 1;
}
