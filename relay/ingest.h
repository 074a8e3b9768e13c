/* ingest.h - the hand-off every source feeds: parse a line (or take a
 * decoded record), count it, and pass accepted records on.
 *
 * Today the consumers are the per-sensor counters, the metrics and an
 * optional COF output file; the store and the mixer attach here. A source
 * that must not lose records (the d4-core queue) calls ingest_commit
 * before it acknowledges its input: after it returns 0, every record
 * handed over so far has reached its consumers. */
#ifndef PDNS_INGEST_H
#define PDNS_INGEST_H

#include <stdint.h>

#include "buf.h"
#include "csv.h"
#include "record.h"
#include "session.h"

typedef struct relay_metrics {
    uint64_t d4_sessions_total;
    uint64_t d4_sessions_active;
    uint64_t d4_rejects[D4R_COUNT];
    uint64_t d4_closed[D4C_COUNT];  /* sessions ended, by why */
    uint64_t csv_rejects[PDNS_SRC_COUNT][CSV_RESULT_COUNT];
    uint64_t records[PDNS_SRC_COUNT];
    uint64_t error_lines[PDNS_SRC_COUNT];
    uint64_t queue_batches;
    uint64_t queue_recovered;
    uint64_t queue_move_lines;  /* lines a queue move asks for now */
    uint64_t redis_disconnects;
    uint64_t output_write_errors;
    uint64_t output_dropped;   /* records not written: the output failing and full */
    uint64_t log_suppressed;
    uint64_t mixer_insert_errors;
    uint64_t partner_loops;  /* partner records that had passed us already */
    uint64_t store_dropped;  /* records the store could not keep */
} relay_metrics;

/* Where a line came from: the provenance every record carries. */
typedef struct ingest_source {
    enum pdns_source kind;
    relay_sensor *sensor;      /* a registered D4 sensor, or NULL */
    const char *name;          /* the sensor_id of its records */
    uint16_t index;            /* the mixer's sensor number */
    const csv_layout *layout;
} ingest_source;

struct mixer_pool;
struct store;

typedef struct ingest {
    relay_metrics m;
    struct mixer_pool *mix;    /* accepted answers go here too, if set */
    /* told of each record the mixer took, for its journal; with no mix,
     * of each record (the journal in Redis is the mixer's input) */
    void (*mix_log)(void *ctx, const pdns_record *r, uint16_t index, int64_t now_ms);
    void *mix_log_ctx;
    struct store *store;       /* and here: the local COF store */
    /* partner records: the mixer number of (partner, relay path), and this
     * relay's id (a record that already passed it is a loop) */
    int (*source_for)(void *ctx, const char *partner, const char *path);
    void *source_ctx;
    const char *relay_id;
    /* a partner relay's batch was taken (its in_seq and in_chain moved):
     * with several processes, they keep it in Redis too */
    void (*partner_taken)(void *ctx, const relay_sensor *p);
    void *partner_ctx;
    int out_fd;              /* COF output file, or -1 */
    pdns_buf out;            /* waiting to be written: OUTPUT_MAX at most */
    int out_failing;         /* the last write failed (full disk, ...) */
    uint64_t out_retry_ms;   /* no write before then while failing */
    int keep_errors;
    /* reject log rate limit: a burst of lines, then one a second */
    double log_tokens;
    uint64_t log_last_ms;
} ingest;

/* Opens the output file (append) when path is not empty. Returns 0, or
 * -1 with errno. */
int ingest_init(ingest *in, const char *output_path, int keep_errors);

/* 1 when a rejection may be logged now: a burst of them, then one a
 * second; the rest are counted as suppressed (log_suppressed). */
int ingest_log_allowed(ingest *in);
void ingest_close(ingest *in);

/* Parses one CSV line from src and hands the record over. where describes
 * the source for the log ("sensor s1 from 10.0.0.1"). Returns 1 for a
 * record, 0 for an error line, -1 for a rejected line. */
int ingest_csv_line(ingest *in, const ingest_source *src, const char *where,
                    char *line, size_t len);

/* Hands over a record that is already parsed (a partner's COF), counted
 * like a parsed line. Returns 1. */
int ingest_record(ingest *in, const ingest_source *src, const pdns_record *r);

/* A line over the length bound. */
void ingest_line_too_long(ingest *in, const ingest_source *src,
                          const char *where);

/* Wall-clock milliseconds: the mixer's epochs are clock boundaries. */
int64_t ingest_clock_ms(void);

/* Makes everything handed over durable in its consumers. Returns 0, or -1
 * (the caller must not acknowledge its input). */
int ingest_commit(ingest *in);

/* Writes the Prometheus text exposition of the counters. */
struct relay_config;
int ingest_metrics_render(const ingest *in, const struct relay_config *cfg,
                          pdns_buf *out);

#endif
