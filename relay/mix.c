/* mix.c - the relay's mixing stage: the pool (mixer/pool.c), fed by ingest
 * on the wall clock, ticked once a second; its batches are counted, their
 * anonymity figures logged, handed to the policy stage (share.c), and
 * written (as COF, with no sensor identifiers) to mixer.output_file when
 * one is set.
 *
 * The pool lives in memory. A clean stop saves it in state_dir/mixer.pool
 * (its sources by name, so that a configuration with sensors added or
 * removed maps them), and the next start restores it and removes the file
 * at once, so that no triple can be restored, and released, twice. A
 * kill -9 loses what the pool held (those records stay in the local store;
 * they are not shared). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "afile.h"
#include "clock.h"
#include "cof.h"
#include "ingest.h"
#include "log.h"
#include "mix.h"

static void on_batch(void *ctx, const mixer_batch *b) {
    mix_stage *m = ctx;
    const mixer_stats *s = &b->stats;
    m->last = *s;
    m->last_ms = b->time_ms;
    m->batches++;
    log_info("mixer: batch %" PRIu64 "%s: %zu triples from %zu sensors, H %.2f "
             "bits (anonymity set %.1f, min-entropy %.2f), %zu held back, %zu "
             "dropped, mix delay p50 %" PRId64 " s p95 %" PRId64 " s p99 %" PRId64 " s",
             b->seq, b->early ? " (early: memory cap)" : "", s->size,
             s->distinct_sensors, s->entropy, s->anonymity_set, s->min_entropy,
             s->held_back, s->dropped, s->latency_p50_ms / 1000,
             s->latency_p95_ms / 1000, s->latency_p99_ms / 1000);
    share_batch(m->sh, b, ingest_clock_ms());
    if (m->fd < 0)
        return;
    pdns_buf out = {0};
    for (size_t i = 0; i < b->n; i++)
        if (cof_encode(&b->e[i].rec, 0, &out) < 0)
            break;
    if (pdns_buf_write_fd(&out, m->fd) < 0)
        log_error("mixer: writing %s: %s", m->cfg->mixer_output, strerror(errno));
    pdns_buf_free(&out);
}

#define SAVED_NAME "mixer.pool"
#define SAVED_MAGIC "pdns-relay mixer sources"

/* Source i of the mixer by kind and name: "sensor NAME", "queue NAME",
 * "partner NAME" (config.c numbers them in this order). */
static void source_name(const relay_config *cfg, size_t i, char *out, size_t n) {
    if (i < cfg->n_sensors)
        snprintf(out, n, "sensor %s", cfg->sensors[i].name);
    else if ((i -= cfg->n_sensors) < cfg->n_queues)
        snprintf(out, n, "queue %s", cfg->queues[i].sensor);
    else
        snprintf(out, n, "partner %s", cfg->partners_in[i - cfg->n_queues].name);
}

static void saved_path(const relay_config *cfg, char *out, size_t n) {
    snprintf(out, n, "%s/%s", cfg->state_dir, SAVED_NAME);
}

/* At a clean stop: the pool, with its sources' names, in the state dir. */
static void save_pool(mix_stage *m) {
    const relay_config *cfg = m->cfg;
    size_t left = mixer_pool_triples(m->pool), n = cfg->mixer.n_sensors;
    char path[4200], name[200];
    if (!left || !cfg->state_dir[0])
        return;
    saved_path(cfg, path, sizeof(path));
    pdns_buf b = {0};
    int rc = pdns_buf_printf(&b, "%s %zu\n", SAVED_MAGIC, n);
    for (size_t i = 0; i < n && rc == 0; i++) {
        source_name(cfg, i, name, sizeof(name));
        rc = pdns_buf_printf(&b, "%s\n", name);
    }
    if (rc == 0 && mixer_pool_save(m->pool, &b) == 0 && pdns_afile_write(path, b.p, b.len) == 0)
        log_info("mixer: %zu pooled triples saved in %s for the next start", left, path);
    else
        log_error("mixer: %zu pooled triples could not be saved in %s (%s): they are not "
                  "shared", left, path, strerror(errno));
    pdns_buf_free(&b);
}

/* At start: the pool a clean stop saved, its file removed at once. */
static void restore_pool(mix_stage *m) {
    const relay_config *cfg = m->cfg;
    char path[4200], bad[4300], name[200];
    if (!cfg->state_dir[0])
        return;
    saved_path(cfg, path, sizeof(path));
    FILE *f = fopen(path, "rb");
    if (!f)
        return;
    pdns_buf b = {0};
    char chunk[65536];
    size_t got;
    while ((got = fread(chunk, 1, sizeof(chunk), f)) > 0)
        if (pdns_buf_append(&b, chunk, got) < 0)
            break;
    int read_ok = !ferror(f) && feof(f);
    fclose(f);
    /* the sources: one name a line after the header */
    size_t nsaved = 0, off = 0;
    long restored = -1;
    int32_t *map = NULL;
    char *nl = read_ok ? memchr(b.p, '\n', b.len) : NULL;
    if (nl && sscanf(b.p, SAVED_MAGIC " %zu", &nsaved) == 1 && nsaved <= 65536 &&
        (map = calloc(nsaved ? nsaved : 1, sizeof(*map)))) {
        off = (size_t)(nl + 1 - b.p);
        size_t i;
        for (i = 0; i < nsaved; i++) {
            char *e = memchr(b.p + off, '\n', b.len - off);
            if (!e)
                break;
            map[i] = -1;
            for (size_t j = 0; j < cfg->mixer.n_sensors; j++) {
                source_name(cfg, j, name, sizeof(name));
                if (strlen(name) == (size_t)(e - (b.p + off)) &&
                    memcmp(name, b.p + off, strlen(name)) == 0)
                    map[i] = (int32_t)j;
            }
            off = (size_t)(e + 1 - b.p);
        }
        if (i == nsaved)
            restored = mixer_pool_restore(m->pool, (const uint8_t *)b.p + off, b.len - off, map,
                                          nsaved, ingest_clock_ms());
    }
    free(map);
    pdns_buf_free(&b);
    if (restored < 0) {
        snprintf(bad, sizeof(bad), "%s.bad", path);
        log_error("mixer: %s is not a saved pool: set aside as %s, the pool starts empty",
                  path, bad);
        rename(path, bad);
        return;
    }
    if (unlink(path) < 0) {
        /* restored twice after a crash would release twice: empty it */
        log_error("mixer: cannot remove %s (%s): the restored pool is dropped", path,
                  strerror(errno));
        mixer_pool_free(m->pool);
        m->pool = mixer_pool_new(&cfg->mixer, &m->rng, on_batch, m);
        return;
    }
    log_info("mixer: %ld pooled triples restored from %s (saved at the last stop)", restored,
             path);
}

int mix_start(mix_stage *m, const relay_config *cfg, share *sh) {
    m->cfg = cfg;
    m->sh = sh;
    m->fd = -1;
    if (!m->cfg->mixer_enabled)
        return 0;
    mixer_rng_init_secure(&m->rng);
    m->pool = mixer_pool_new(&m->cfg->mixer, &m->rng, on_batch, m);
    if (!m->pool)
        return -1;
    restore_pool(m);
    if (!m->pool)
        return -1;
    if (m->cfg->mixer_output[0]) {
        m->fd = open(m->cfg->mixer_output,
                         O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
        if (m->fd < 0) {
            log_error("mixer: %s: %s", m->cfg->mixer_output, strerror(errno));
            mixer_pool_free(m->pool);
            m->pool = NULL;
            return -1;
        }
    }
    const mixer_conf *c = &m->cfg->mixer;
    log_info("mixer: %" PRId64 " s epochs, k=%u, min_count %" PRIu64 ", hold %"
             PRId64 " s + exp(%" PRId64 " s), min_batch %u, send_fraction %.2f, "
             "pool_min %u, sensor_quota %.2f, max_hold %" PRId64 " s, times to %"
             PRId64 " s", c->interval_ms / 1000, c->min_sensors, c->min_count,
             c->hold_min_ms / 1000, c->hold_jitter_ms / 1000, c->min_batch,
             c->send_fraction, c->pool_min, c->sensor_quota,
             c->max_hold_ms / 1000, c->time_resolution);
    return 0;
}

void mix_tick(mix_stage *m) {
    if (!m->pool)
        return;
    mixer_pool_tick(m->pool, ingest_clock_ms());
    uint64_t cap = mixer_pool_counters(m->pool)->dropped[MIXER_DROP_CAPACITY];
    if (cap > m->cap_logged &&
        pdns_mono_ms() - m->cap_log_ms >= 60000) {
        log_warn("mixer: at its memory cap (mixer.max_triples %zu, max_bytes "
                 "%zu): %" PRIu64 " triples dropped so far", m->cfg->mixer.max_triples,
                 m->cfg->mixer.max_bytes, cap);
        m->cap_logged = cap;
        m->cap_log_ms = pdns_mono_ms();
    }
}

void mix_stop(mix_stage *m) {
    if (m->pool) {
        save_pool(m);
        mixer_pool_free(m->pool);
    }
    m->pool = NULL;
    if (m->fd >= 0)
        close(m->fd);
    m->fd = -1;
}

int mix_metrics(const mix_stage *m, pdns_buf *b) {
    if (!m->pool)
        return 0;
    const mixer_counters *c = mixer_pool_counters(m->pool);
    const mixer_stats *s = &m->last;
    int rc = pdns_buf_printf(b, "# TYPE pdns_relay_mixer_inserted_total counter\n"
                    "pdns_relay_mixer_inserted_total %" PRIu64 "\n"
                    "# TYPE pdns_relay_mixer_merged_total counter\n"
                    "pdns_relay_mixer_merged_total %" PRIu64 "\n"
                    "# TYPE pdns_relay_mixer_released_total counter\n"
                    "pdns_relay_mixer_released_total %" PRIu64 "\n"
                    "# TYPE pdns_relay_mixer_batches_total counter\n"
                    "pdns_relay_mixer_batches_total %" PRIu64 "\n"
                    "# TYPE pdns_relay_mixer_early_flushes_total counter\n"
                    "pdns_relay_mixer_early_flushes_total %" PRIu64 "\n"
                    "# HELP pdns_relay_mixer_last_batch_time_seconds When the last batch left the mixer (unix time, 0 before the first).\n"
                    "# TYPE pdns_relay_mixer_last_batch_time_seconds gauge\n"
                    "pdns_relay_mixer_last_batch_time_seconds %.3f\n",
                 c->inserted, c->merged, c->released, c->batches,
                 c->early_flushes, (double)m->last_ms / 1000.0);
    rc |= pdns_buf_printf(b, "# HELP pdns_relay_mixer_dropped_total Triples dropped from the pool (kept in the store, not shared), by reason.\n"
                 "# TYPE pdns_relay_mixer_dropped_total counter\n");
    for (int d = 0; d < MIXER_DROP_COUNT; d++)
        rc |= pdns_buf_printf(b, "pdns_relay_mixer_dropped_total{reason=\"%s\"} %" PRIu64 "\n",
                  mixer_drop_name((enum mixer_drop)d), c->dropped[d]);
    rc |= pdns_buf_printf(b, "# TYPE pdns_relay_mixer_pool_triples gauge\n"
                 "pdns_relay_mixer_pool_triples %zu\n"
                 "# TYPE pdns_relay_mixer_pool_bytes gauge\n"
                 "pdns_relay_mixer_pool_bytes %zu\n",
              mixer_pool_triples(m->pool), mixer_pool_bytes(m->pool));
    rc |= pdns_buf_printf(b, "# HELP pdns_relay_mixer_last_batch Anonymity figures of the last batch.\n"
                 "# TYPE pdns_relay_mixer_last_batch gauge\n"
                 "pdns_relay_mixer_last_batch{figure=\"size\"} %zu\n"
                 "pdns_relay_mixer_last_batch{figure=\"distinct_sensors\"} %zu\n"
                 "pdns_relay_mixer_last_batch{figure=\"entropy_bits\"} %.4f\n"
                 "pdns_relay_mixer_last_batch{figure=\"anonymity_set\"} %.4f\n"
                 "pdns_relay_mixer_last_batch{figure=\"min_entropy_bits\"} %.4f\n"
                 "pdns_relay_mixer_last_batch{figure=\"held_back\"} %zu\n"
                 "pdns_relay_mixer_last_batch{figure=\"dropped\"} %zu\n",
              s->size, s->distinct_sensors, s->entropy, s->anonymity_set,
              s->min_entropy, s->held_back, s->dropped);
    rc |= pdns_buf_printf(b, "pdns_relay_mixer_last_batch{figure=\"delay_p50_seconds\"} %.3f\n"
                 "pdns_relay_mixer_last_batch{figure=\"delay_p95_seconds\"} %.3f\n"
                 "pdns_relay_mixer_last_batch{figure=\"delay_p99_seconds\"} %.3f\n",
              (double)s->latency_p50_ms / 1000, (double)s->latency_p95_ms / 1000,
              (double)s->latency_p99_ms / 1000);
    return rc ? -1 : 0;
}
