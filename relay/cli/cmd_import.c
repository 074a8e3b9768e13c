/* cmd_import.c - `pdns-relay import`: bulk-loads passivedns CSV or COF
 * NDJSON files into the relay's store, through the same store module (and
 * so the same batches, schema and backpressure) as the daemon. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "cmd.h"
#include "cof.h"
#include "config.h"
#include "csv.h"
#include "lines.h"
#include "log.h"
#include "store.h"

#define MAX_REJECT_LINES 100

const char cmd_import_help[] =
    "usage: pdns-relay import -c CONF [--sensor NAME] [--format csv|cof]\n"
    "                         [--layout L] [--separator S] [--timezone TZ]\n"
    "                         [--redis URL] FILE...\n"
    "\n"
    "Loads passive DNS records into the store of the relay configured in\n"
    "CONF (its \"store\" section, or its \"redis\"): passivedns CSV lines or\n"
    "COF NDJSON objects (an export of another passive DNS server, such as a\n"
    "/query dump of analyzer-d4-passivedns or CIRCL, imports as is). The\n"
    "format is detected per file from its first line unless --format says.\n"
    "FILE - reads standard input. Rejected lines go to stderr as\n"
    "FILE:LINE: reason (the first 100); a progress line is shown on a\n"
    "terminal and a summary at the end. Exit status 0 when every file was\n"
    "read and every accepted record was stored.\n"
    "\n"
    "  -c, --config CONF  the relay configuration\n"
    "  --sensor NAME      sensor_id of records that carry none (default\n"
    "                     \"import\"; a COF object's own sensor_id wins)\n"
    "  --format F         csv or cof (default: detected)\n"
    "  --layout L         passivedns -f letters (default " CSV_DEFAULT_LAYOUT ")\n"
    "  --separator S      passivedns -d separator (default \"" CSV_DEFAULT_SEPARATOR "\")\n"
    "  --timezone TZ      the zone of the H field's local time (an IANA name such\n"
    "                     as Europe/Luxembourg; default UTC)\n"
    "  --redis URL        override the store's redis://HOST:PORT/DB\n";

typedef struct importer {
    uv_loop_t loop;
    uv_timer_t tick;
    store st;
    int stopping;
    csv_layout layout;
    pdns_record proto;
    const char *file;
    int format;                  /* 0 detect, 1 csv, 2 cof */
    int file_format;
    int tty;
    int keep_errors;             /* ingest.keep_errors: store error lines */
    uint64_t lines, records, errors, rejected, since_run;
    uint64_t t0_ms, last_progress_ms;
} importer;

static uint64_t mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void progress(importer *im, int force) {
    uint64_t now = mono_ms();
    if (!im->tty || (!force && now - im->last_progress_ms < 500))
        return;
    im->last_progress_ms = now;
    double secs = (double)(now - im->t0_ms) / 1000.0;
    fprintf(stderr, "\rimport: %s: %" PRIu64 " lines, %" PRIu64 " records, %"
            PRIu64 " rejected, %.0f records/s%s\033[K", im->file, im->lines,
            im->records, im->rejected, secs > 0 ? (double)im->records / secs : 0,
            store_up(&im->st) ? "" : " (waiting for Redis)");
}

static void on_tick(uv_timer_t *t) {
    importer *im = t->data;
    store_tick(&im->st);
    progress(im, 0);
}

static void reject(importer *im, uint64_t lineno, const char *why) {
    im->rejected++;
    if (im->rejected <= MAX_REJECT_LINES)
        fprintf(stderr, "%s%s:%" PRIu64 ": %s\n", im->tty ? "\r\033[K" : "",
                im->file, lineno, why);
    else if (im->rejected == MAX_REJECT_LINES + 1)
        fprintf(stderr, "%s: more rejected lines are counted, not shown\n", im->file);
}

static int add(void *ctx, const pdns_record *r) {
    importer *im = ctx;
    if (store_add(&im->st, r) < 0)
        return -1;
    im->records++;
    /* backpressure: let the loop write until the buffer is half empty */
    while (store_full(&im->st))
        uv_run(&im->loop, UV_RUN_ONCE);
    if (++im->since_run >= 1000) {
        im->since_run = 0;
        uv_run(&im->loop, UV_RUN_NOWAIT);
    }
    return 0;
}

static int on_line(void *ctx, uint64_t lineno, char *line, size_t len) {
    importer *im = ctx;
    char err[256];
    const char *why;
    if (!line) {
        im->lines++;
        reject(im, lineno, "line too long");
        return 0;
    }
    while (len && (line[len - 1] == '\r' || line[len - 1] == ' '))
        len--;
    if (len == 0)
        return 0;
    im->lines++;
    if (!im->file_format)
        im->file_format = line[0] == '{' ? 2 : 1;
    if (im->file_format == 2) {
        if (cof_decode(line, len, &im->proto, add, im, err, sizeof(err)) < 0)
            reject(im, lineno, err);
        return 0;
    }
    pdns_record r = im->proto;
    enum csv_result res = csv_parse_line(&im->layout, line, len, &r, &why);
    if (res != CSV_OK) {
        reject(im, lineno, why);
        return 0;
    }
    if (r.is_error) {
        im->errors++;
        if (im->keep_errors && add(im, &r) < 0)
            reject(im, lineno, "the store cannot take it");
        return 0;
    }
    if (add(im, &r) < 0)
        reject(im, lineno, "the store cannot take it");
    return 0;
}

int cmd_import(int argc, char **argv) {
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"sensor", required_argument, NULL, 'n'},
        {"format", required_argument, NULL, 'f'},
        {"layout", required_argument, NULL, 'l'},
        {"separator", required_argument, NULL, 's'},
        {"redis", required_argument, NULL, 'r'},
        {"timezone", required_argument, NULL, 'z'},
        {NULL, 0, NULL, 0}};
    const char *conf = NULL, *sensor = "import", *layout = NULL, *sep = NULL,
               *redis = NULL, *tz = NULL;
    static importer im;
    relay_config cfg;
    char err[1024];
    int opt, rc = 0;

    memset(&im, 0, sizeof(im));
    optind = 1;
    while ((opt = getopt_long(argc, argv, "c:n:f:l:s:r:z:", opts, NULL)) != -1) {
        switch (opt) {
        case 'z': tz = optarg; break;
        case 'c': conf = optarg; break;
        case 'n': sensor = optarg; break;
        case 'f':
            if (strcmp(optarg, "csv") == 0)
                im.format = 1;
            else if (strcmp(optarg, "cof") == 0)
                im.format = 2;
            else {
                fprintf(stderr, "import: --format is csv or cof\n");
                return 2;
            }
            break;
        case 'l': layout = optarg; break;
        case 's': sep = optarg; break;
        case 'r': redis = optarg; break;
        default:
            fputs(cmd_import_help, stderr);
            return 2;
        }
    }
    if (!conf || optind >= argc) {
        fputs(cmd_import_help, stderr);
        return 2;
    }
    if (config_load(&cfg, conf, err, sizeof(err)) < 0) {
        fprintf(stderr, "import: %s\n", err);
        return 2;
    }
    if (redis && config_store_redis(&cfg, redis) < 0) {
        fprintf(stderr, "import: --redis wants redis://HOST[:PORT][/DB] or "
                "redis+cluster://HOST:PORT[,HOST:PORT...]\n");
        config_free(&cfg);
        return 2;
    }
    if (csv_layout_init(&im.layout, layout, sep, err, sizeof(err)) < 0 ||
        csv_layout_set_timezone(&im.layout, tz, err, sizeof(err)) < 0) {
        fprintf(stderr, "import: %s\n", err);
        config_free(&cfg);
        return 2;
    }
    log_set_level(LOG_WARN);
    im.proto.source = PDNS_SRC_FILE;
    im.proto.sensor_id.p = sensor;
    im.proto.sensor_id.len = strlen(sensor);
    im.tty = isatty(2);
    im.keep_errors = cfg.keep_errors;
    uv_loop_init(&im.loop);
    /* import loads; the running relay sweeps what expires (two sweepers
     * would each count part of it) */
    cfg.store.expiry[0] = '\0';
    store_init(&im.st, &cfg.store, &im.loop, cfg.relay_id, &im.stopping);
    uv_timer_init(&im.loop, &im.tick);
    im.tick.data = &im;
    uv_timer_start(&im.tick, on_tick, STORE_TICK_MS, STORE_TICK_MS);
    im.t0_ms = mono_ms();

    for (int i = optind; i < argc; i++) {
        int fd = 0;
        im.file = argv[i];
        im.file_format = im.format;
        if (strcmp(im.file, "-") != 0 && (fd = open(im.file, O_RDONLY | O_CLOEXEC)) < 0) {
            fprintf(stderr, "import: %s: %s\n", im.file, strerror(errno));
            rc = 1;
            continue;
        }
        if (lines_read_fd(fd, cfg.max_line, on_line, &im) != 0) {
            fprintf(stderr, "import: %s: %s\n", im.file, strerror(errno));
            rc = 1;
        }
        if (fd > 0)
            close(fd);
    }
    /* write what is left */
    store_flush(&im.st);
    while (store_waiting(&im.st))
        uv_run(&im.loop, UV_RUN_ONCE);
    progress(&im, 1);
    double secs = (double)(mono_ms() - im.t0_ms) / 1000.0;
    fprintf(stderr, "%simport: %d files, %" PRIu64 " lines, %" PRIu64
            " records stored, %" PRIu64 " error lines, %" PRIu64
            " rejected, %.1f s (%.0f records/s)\n", im.tty ? "\r\033[K" : "",
            argc - optind, im.lines, im.st.stored, im.errors, im.rejected, secs,
            secs > 0 ? (double)im.st.stored / secs : 0);
    im.stopping = 1;
    uv_timer_stop(&im.tick);
    uv_close((uv_handle_t *)&im.tick, NULL);
    store_stop(&im.st);
    uv_run(&im.loop, UV_RUN_DEFAULT);
    store_free(&im.st);
    uv_loop_close(&im.loop);
    config_free(&cfg);
    return rc;
}
