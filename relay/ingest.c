/* ingest.c - the hand-off from sources to consumers, and its counters. */
#include "ingest.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "cof.h"
#include "config.h"
#include "log.h"
#include "pool.h"
#include "store.h"

#define LOG_BURST 20.0

#define OUTPUT_MAX (8u << 20) /* bytes waiting for the output file, at most */

int ingest_init(ingest *in, const char *output_path, int keep_errors) {
    memset(in, 0, sizeof(*in));
    in->out_fd = -1;
    in->keep_errors = keep_errors;
    in->log_tokens = LOG_BURST;
    if (output_path && *output_path) {
        in->out_fd = open(output_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
                          0640);
        if (in->out_fd < 0)
            return -1;
        /* a crash can tear the last line (SIGKILL interrupts a write):
         * start on a fresh line so every later record parses */
        char last;
        off_t end = lseek(in->out_fd, 0, SEEK_END);
        if (end > 0 && pread(in->out_fd, &last, 1, end - 1) == 1 &&
            last != '\n') {
            log_warn("ingest: %s ends in a partial line (an earlier crash); "
                     "its batch is delivered again", output_path);
            if (write(in->out_fd, "\n", 1) != 1)
                return -1;
        }
    }
    return 0;
}

void ingest_close(ingest *in) {
    ingest_commit(in);
    if (in->out_fd >= 0)
        close(in->out_fd);
    in->out_fd = -1;
    pdns_buf_free(&in->out);
}

/* A rejected line is logged with its reason, at most LOG_BURST at once
 * and then one a second; the rest are counted as suppressed. */
int ingest_log_allowed(ingest *in) {
    uint64_t t = pdns_mono_ms();
    in->log_tokens += (double)(t - in->log_last_ms) / 1000.0;
    if (in->log_tokens > LOG_BURST)
        in->log_tokens = LOG_BURST;
    in->log_last_ms = t;
    if (in->log_tokens < 1.0) {
        in->m.log_suppressed++;
        return 0;
    }
    in->log_tokens -= 1.0;
    return 1;
}

int64_t ingest_clock_ms(void) {
    return pdns_wall_ms();
}

static void emit(ingest *in, const pdns_record *r, uint16_t index) {
    if (in->store && store_add(in->store, r) < 0)
        in->m.store_dropped++;
    if (in->mix || in->mix_log) { /* no pool here: the log is the mixer's input */
        int64_t now = ingest_clock_ms();
        if (in->mix && mixer_pool_insert(in->mix, r, index, now) < 0)
            in->m.mixer_insert_errors++;
        else if (in->mix_log)
            in->mix_log(in->mix_log_ctx, r, index, now);
    }
    if (in->out_fd < 0)
        return;
    if (in->out.len >= OUTPUT_MAX) { /* failing and full: not kept, counted */
        in->m.output_dropped++;
        return;
    }
    if (cof_encode(r, COF_WITH_SENSOR | COF_WITH_ORIGIN, &in->out) < 0) {
        in->m.output_dropped++;
        return;
    }
    if (in->out.len >= (1u << 16))
        ingest_commit(in);
}

int ingest_csv_line(ingest *in, const ingest_source *s, const char *where,
                    char *line, size_t len) {
    pdns_record r;
    const char *why;
    relay_sensor *sensor = s->sensor;
    enum pdns_source src = s->kind;
    r.source = src;
    r.sensor_id.p = s->name;
    r.sensor_id.len = strlen(r.sensor_id.p);
    r.origin.len = 0;
    r.bailiwick.len = 0;
    r.has_uuid = 0;
    if (sensor) {
        memcpy(r.sensor_uuid, sensor->uuid, 16);
        r.has_uuid = 1;
    }
    enum csv_result res = csv_parse_line(s->layout, line, len, &r, &why);
    if (res != CSV_OK) {
        in->m.csv_rejects[src][res]++;
        if (sensor)
            sensor->rejected++;
        if (ingest_log_allowed(in))
            log_warn("ingest: %s: rejected line (%s): %.*s", where, why,
                     (int)(len > 200 ? 200 : len), line);
        return -1;
    }
    if (r.is_error) {
        in->m.error_lines[src]++;
        if (sensor)
            sensor->errors++;
        /* error lines are not triples: only the store takes them, apart,
         * and only when ingest.keep_errors says so */
        if (in->keep_errors && in->store && store_add(in->store, &r) < 0)
            in->m.store_dropped++;
        return 0;
    }
    return ingest_record(in, s, &r);
}

int ingest_record(ingest *in, const ingest_source *s, const pdns_record *r) {
    in->m.records[s->kind]++;
    if (s->sensor && (s->sensor->records++ & 1023) == 0) {
        relay_sensor *se = s->sensor;
        size_t n = r->rrname.len < sizeof(se->sample) - 1 ? r->rrname.len
                                                           : sizeof(se->sample) - 1;
        for (size_t i = 0; i < n; i++) {
            char ch = r->rrname.p[i];
            se->sample[i] = ch >= 0x20 && ch < 0x7f ? ch : '?';
        }
        se->sample[n] = '\0';
    }
    emit(in, r, s->index);
    return 1;
}

void ingest_line_too_long(ingest *in, const ingest_source *s,
                          const char *where) {
    in->m.csv_rejects[s->kind][CSV_E_TOO_LONG]++;
    if (s->sensor)
        s->sensor->rejected++;
    if (ingest_log_allowed(in))
        log_warn("ingest: %s: rejected line (longer than the line bound)",
                 where);
}

/* Writes what waits for the output file. While writes fail (a full disk)
 * the relay tries again once a second, keeps at most OUTPUT_MAX bytes
 * waiting and counts the records it could not keep; the failure and the
 * recovery are logged once each, not per record. */
int ingest_commit(ingest *in) {
    if (in->out_fd < 0 || !in->out.len)
        return in->out_failing ? -1 : 0;
    uint64_t now = pdns_mono_ms();
    if (in->out_failing && now < in->out_retry_ms)
        return -1;
    if (pdns_buf_write_fd(&in->out, in->out_fd) == 0) {
        if (in->out_failing)
            log_info("ingest: the output file is written again (%" PRIu64 " records "
                     "could not be kept meanwhile)", in->m.output_dropped);
        in->out_failing = 0;
        return 0;
    }
    in->m.output_write_errors++;
    if (!in->out_failing)
        log_error("ingest: writing the output file failed: %s; trying again every "
                  "second, keeping up to %u MiB meanwhile (records beyond are not "
                  "written, and counted)", strerror(errno), OUTPUT_MAX >> 20);
    in->out_failing = 1;
    in->out_retry_ms = now + 1000;
    return -1;
}

/* One per-sensor counter family: the uint64_t at offset in each sensor. */
static int put_sensors(pdns_buf *b, const relay_config *cfg, const char *name,
                       const char *help, size_t offset) {
    int rc = pdns_buf_printf(b, "# HELP pdns_relay_sensor_%s %s, by sensor.\n"
                    "# TYPE pdns_relay_sensor_%s counter\n", name, help, name);
    for (size_t i = 0; i < cfg->n_sensors; i++) {
        const relay_sensor *s = &cfg->sensors[i];
        uint64_t v = *(const uint64_t *)((const char *)s + offset);
        rc |= pdns_buf_printf(b, "pdns_relay_sensor_%s{sensor=\"%s\"} %" PRIu64 "\n", name,
                  s->name, v);
    }
    return rc;
}

int ingest_metrics_render(const ingest *in, const relay_config *cfg,
                          pdns_buf *b) {
    const relay_metrics *m = &in->m;
    int rc = 0;
    rc |= pdns_buf_printf(b, "# HELP pdns_relay_records_total Answer records accepted, by source.\n"
                 "# TYPE pdns_relay_records_total counter\n");
    for (int s = 0; s < PDNS_SRC_COUNT; s++)
        rc |= pdns_buf_printf(b, "pdns_relay_records_total{source=\"%s\"} %" PRIu64 "\n",
                  pdns_source_name((enum pdns_source)s), m->records[s]);
    rc |= pdns_buf_printf(b, "# HELP pdns_relay_error_lines_total NXDOMAIN/SERVFAIL/... lines accepted, by source.\n"
                 "# TYPE pdns_relay_error_lines_total counter\n");
    for (int s = 0; s < PDNS_SRC_COUNT; s++)
        rc |= pdns_buf_printf(b, "pdns_relay_error_lines_total{source=\"%s\"} %" PRIu64 "\n",
                  pdns_source_name((enum pdns_source)s), m->error_lines[s]);
    rc |= pdns_buf_printf(b, "# HELP pdns_relay_rejected_lines_total Lines rejected, by source and reason.\n"
                 "# TYPE pdns_relay_rejected_lines_total counter\n");
    for (int s = 0; s < PDNS_SRC_COUNT; s++)
        for (int r = 1; r < CSV_RESULT_COUNT; r++)
            rc |= pdns_buf_printf(b, "pdns_relay_rejected_lines_total{source=\"%s\",reason=\"%s\"} %" PRIu64 "\n",
                      pdns_source_name((enum pdns_source)s),
                      csv_result_name((enum csv_result)r), m->csv_rejects[s][r]);
    rc |= pdns_buf_printf(b, "# HELP pdns_relay_d4_sessions_total D4 connections accepted.\n"
                 "# TYPE pdns_relay_d4_sessions_total counter\n"
                 "pdns_relay_d4_sessions_total %" PRIu64 "\n"
                 "# HELP pdns_relay_d4_sessions_active D4 connections open now.\n"
                 "# TYPE pdns_relay_d4_sessions_active gauge\n"
                 "pdns_relay_d4_sessions_active %" PRIu64 "\n",
              m->d4_sessions_total, m->d4_sessions_active);
    rc |= pdns_buf_printf(b, "# HELP pdns_relay_d4_closed_sessions_total D4 sessions ended, by why: the peer closed, idle_timeout, a protocol violation (see rejected_sessions), the relay stopping.\n"
                 "# TYPE pdns_relay_d4_closed_sessions_total counter\n");
    for (int r = 0; r < D4C_COUNT; r++)
        rc |= pdns_buf_printf(b, "pdns_relay_d4_closed_sessions_total{reason=\"%s\"} %" PRIu64 "\n",
                  d4_close_name((enum d4_close)r), m->d4_closed[r]);
    rc |= pdns_buf_printf(b, "# HELP pdns_relay_d4_rejected_sessions_total D4 sessions closed for a protocol violation, by reason.\n"
                 "# TYPE pdns_relay_d4_rejected_sessions_total counter\n");
    for (int r = 1; r < D4R_COUNT; r++)
        rc |= pdns_buf_printf(b, "pdns_relay_d4_rejected_sessions_total{reason=\"%s\"} %" PRIu64 "\n",
                  d4_reject_name((enum d4_reject)r), m->d4_rejects[r]);
    rc |= put_sensors(b, cfg, "records_total", "Answer records accepted",
                      offsetof(relay_sensor, records));
    rc |= put_sensors(b, cfg, "rejected_lines_total", "Lines rejected",
                      offsetof(relay_sensor, rejected));
    rc |= put_sensors(b, cfg, "error_lines_total", "Error lines accepted",
                      offsetof(relay_sensor, errors));
    rc |= put_sensors(b, cfg, "frames_total", "D4 frames accepted",
                      offsetof(relay_sensor, frames));
    rc |= pdns_buf_printf(b, "# HELP pdns_relay_partner_in_batches_total Signed batches from partner relays, by what became of them.\n"
                             "# TYPE pdns_relay_partner_in_batches_total counter\n");
    for (size_t i = 0; i < cfg->n_partners_in; i++) {
        const relay_sensor *s = &cfg->partners_in[i];
        rc |= pdns_buf_printf(b, "pdns_relay_partner_in_batches_total{partner=\"%s\",result=\"taken\"} %" PRIu64 "\n"
                                 "pdns_relay_partner_in_batches_total{partner=\"%s\",result=\"duplicate\"} %" PRIu64 "\n"
                                 "pdns_relay_partner_in_batches_total{partner=\"%s\",result=\"refused\"} %" PRIu64 "\n",
                              s->name, s->in_batches, s->name, s->in_duplicates, s->name, s->in_refused);
    }
    rc |= pdns_buf_printf(b, "# HELP pdns_relay_partner_in_missing_batches_total Batches a partner relay's sequence numbers skipped: never arrived.\n"
                             "# TYPE pdns_relay_partner_in_missing_batches_total counter\n");
    for (size_t i = 0; i < cfg->n_partners_in; i++)
        rc |= pdns_buf_printf(b, "pdns_relay_partner_in_missing_batches_total{partner=\"%s\"} %" PRIu64 "\n",
                              cfg->partners_in[i].name, cfg->partners_in[i].in_missing);
    rc |= pdns_buf_printf(b, "# TYPE pdns_relay_queue_batches_total counter\n"
                 "pdns_relay_queue_batches_total %" PRIu64 "\n"
                 "# TYPE pdns_relay_queue_recovered_lines_total counter\n"
                 "pdns_relay_queue_recovered_lines_total %" PRIu64 "\n"
                 "# HELP pdns_relay_queue_move_lines Lines a d4-core queue move asks for now (d4core.batch, fewer while store calls shrink).\n"
                 "# TYPE pdns_relay_queue_move_lines gauge\n"
                 "pdns_relay_queue_move_lines %" PRIu64 "\n"
                 "# TYPE pdns_relay_redis_disconnects_total counter\n"
                 "pdns_relay_redis_disconnects_total %" PRIu64 "\n"
                 "# TYPE pdns_relay_output_write_errors_total counter\n"
                 "pdns_relay_output_write_errors_total %" PRIu64 "\n"
                 "# HELP pdns_relay_output_dropped_total Records not written to ingest.output_file: it failed and its buffer was full.\n"
                 "# TYPE pdns_relay_output_dropped_total counter\n"
                 "pdns_relay_output_dropped_total %" PRIu64 "\n"
                 "# HELP pdns_relay_output_failing 1 while writes to ingest.output_file fail.\n"
                 "# TYPE pdns_relay_output_failing gauge\n"
                 "pdns_relay_output_failing %d\n"
                 "# TYPE pdns_relay_log_suppressed_total counter\n"
                 "pdns_relay_log_suppressed_total %" PRIu64 "\n"
                 "# HELP pdns_relay_partner_loops_total Partner records dropped because they had passed this relay already.\n"
                 "# TYPE pdns_relay_partner_loops_total counter\n"
                 "pdns_relay_partner_loops_total %" PRIu64 "\n"
                 "# HELP pdns_relay_store_dropped_total Records the store could not keep (buffer at twice its bound).\n"
                 "# TYPE pdns_relay_store_dropped_total counter\n"
                 "pdns_relay_store_dropped_total %" PRIu64 "\n",
              m->queue_batches, m->queue_recovered, m->queue_move_lines, m->redis_disconnects,
              m->output_write_errors, m->output_dropped, in->out_failing,
              m->log_suppressed, m->partner_loops,
              m->store_dropped);
    return rc ? -1 : 0;
}
