/* mix.c - the relay's mixing stage: the pool (mixer/pool.c), fed by ingest
 * on the wall clock, ticked once a second; its batches are counted, their
 * anonymity figures logged, handed to the policy stage (share.c), and
 * written (as COF, with no sensor identifiers) to mixer.output_file when
 * one is set.
 *
 * The pool lives in memory and survives restarts and crashes: every insert
 * is journalled (state_dir/mixer.journal, written every 100 ms), and the
 * pool is checkpointed (state_dir/mixer.pool, its sources by name so that
 * a configuration with sensors added or removed maps them) at the start,
 * once a batch has entered the partners' delay lines (before anything of
 * it leaves), and at a clean stop, each checkpoint starting a new journal.
 * The checkpoint holds the delay lines too (share_save_delays). A start
 * restores the last checkpoint and replays the journal of the same
 * generation; the delay lines go back once the policy stage runs
 * (mix_resume), without what each partner's chain state says had left. A
 * batch's triples are out of both files before it leaves: a crash never
 * releases a triple twice (the batch being handed out at that moment can
 * be lost instead).
 *
 * With mixer.journal "redis" the same two live in the relay's Redis (one
 * server or a cluster), so that the pool survives the loss of the machine
 * and another relay process can take it up. The journal is a stream,
 * {pdns-relay:<id>:mixer}:journal, and it is the mixer's input: ingest
 * appends what it takes (an entry every 100 ms: the fingerprint of the
 * process's sources and the records), and the mixer reads the stream in
 * order, so that several processes (ha) feed one mixer. The checkpoint, a
 * string in the same slot ({...}:pool), holds the pool and the id of the
 * last entry it took; it is written with a blocking call (it must be in
 * Redis before the batch leaves) that also trims the stream up to that id.
 * A start (or a takeover) restores the checkpoint and reads on from there.
 * Entries whose fingerprint is not this process's (another configuration
 * of sensors, queues or partners_in: their source numbers mean other
 * sources) are refused, logged and counted, never mixed. */
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
#include "rsync.h"

static int checkpoint(mix_stage *m);

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
    /* before anything of the batch leaves (share_batch only puts it in the
     * partners' delay lines): after a crash from here on, its triples are
     * in the saved delay lines, not in the pool nor the journal, so never
     * released twice */
    if (m->jfd >= 0 || m->mixing)
        checkpoint(m);
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

#define SNAP_NAME "mixer.pool"
#define JOURNAL_NAME "mixer.journal"
#define SNAP_MAGIC "pdns-relay mixer sources"     /* a pool alone (read, not written) */
#define CKPT_MAGIC "pdns-relay mixer checkpoint"  /* a pool and the delay lines */
#define JOURNAL_MAGIC "pdns-relay mixer journal"
#define JOURNAL_FLUSH (1u << 20)
#define SNAP_TIMEOUT_MS 5000   /* each blocking call to Redis, at most */
#define RESTORE_TRIES_MS 10000 /* Redis away at start: tried this long */
#define REPLAY_PAGE 200        /* journal entries read at a time (XRANGE's COUNT), at most */
#define REPLAY_BYTES (8u << 20) /* and about this many bytes of them */

/* A journalled insert: the record's triple, times, count, its source and
 * when it came; its name and rdata follow. */
typedef struct jrec {
    int64_t now_ms, time_first, time_last;
    uint64_t count;
    uint16_t rrtype, source, name_len, pad;
    uint32_t rdata_len, pad2;
} jrec;

int mix_rec_put(pdns_buf *b, const pdns_record *r, uint16_t source, int64_t now_ms) {
    jrec j = {now_ms, r->time_first, r->time_last, r->count, r->rrtype, source,
              (uint16_t)r->rrname.len, 0, (uint32_t)r->rdata.len, 0};
    return pdns_buf_append(b, &j, sizeof(j)) < 0 ||
                   pdns_buf_append(b, r->rrname.p, r->rrname.len) < 0 ||
                   pdns_buf_append(b, r->rdata.p, r->rdata.len) < 0
               ? -1
               : 0;
}

int mix_rec_get(const char *d, size_t len, size_t *off, pdns_record *r, uint16_t *source,
                int64_t *now_ms) {
    jrec j;
    if (len - *off < sizeof(j))
        return 0;
    memcpy(&j, d + *off, sizeof(j));
    if (len - *off - sizeof(j) < (size_t)j.name_len + j.rdata_len)
        return 0;
    memset(r, 0, sizeof(*r));
    r->rrname.p = d + *off + sizeof(j);
    r->rrname.len = j.name_len;
    r->rdata.p = r->rrname.p + j.name_len;
    r->rdata.len = j.rdata_len;
    r->rrtype = j.rrtype;
    r->time_first = j.time_first;
    r->time_last = j.time_last;
    r->count = j.count;
    *source = j.source;
    *now_ms = j.now_ms;
    *off += sizeof(j) + j.name_len + j.rdata_len;
    return 1;
}

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

static void state_path(const relay_config *cfg, const char *name, char *out, size_t n) {
    snprintf(out, n, "%s/%s", cfg->state_dir, name);
}

/* The id after stream id pos ("ms-seq"): XTRIM MINID keeps it and what
 * follows. "" when nothing was taken yet. */
static void next_id(const char *pos, char *out, size_t n) {
    unsigned long long ms, seq;
    out[0] = '\0';
    if (sscanf(pos, "%llu-%llu", &ms, &seq) == 2 && (ms || seq))
        snprintf(out, n, "%llu-%llu", ms, seq + 1);
}

/* The checkpoint: the pool as it is now (with its sources' names and a
 * generation number) in mixer.pool, then a new, empty journal of the same
 * generation. A journal of another generation is older than the pool file
 * (a crash between the two writes) and is never replayed: everything in
 * it is in the pool file already. In Redis: the pool and the id of the
 * stream's last entry it took, and the stream trimmed up to there, at
 * once. Either way the partners' delay lines go with the pool. Returns 0,
 * or -1 (logged, counted). */
static int checkpoint(mix_stage *m) {
    const relay_config *cfg = m->cfg;
    size_t n = cfg->mixer.n_sensors;
    uint64_t gen = m->gen + 1;
    char path[4200], name[200];
    pdns_buf b = {0}, dl = {0};
    if (m->sh && share_save_delays(m->sh, &dl) < 0) {
        pdns_buf_free(&dl);
        goto fail;
    }
    int rc = pdns_buf_printf(&b, "%s %zu %llu %s %zu\n", CKPT_MAGIC, n, (unsigned long long)gen,
                             m->snap ? m->pos : "-", dl.len);
    for (size_t i = 0; i < n && rc == 0; i++) {
        source_name(cfg, i, name, sizeof(name));
        rc = pdns_buf_printf(&b, "%s\n", name);
    }
    if (rc == 0 && dl.len)
        rc = pdns_buf_append(&b, dl.p, dl.len);
    pdns_buf_free(&dl);
    if (rc < 0 || mixer_pool_save(m->pool, &b) < 0)
        goto fail;
    if (m->snap) { /* Redis: the pool, and the stream trimmed, at once */
        /* with ha, only while this process holds the lease (the fence) */
        static const char script[] =
            "if ARGV[2] ~= '' and redis.call('GET', KEYS[3]) ~= ARGV[2] then "
            "return redis.error_reply('FENCED the lease is not ours') end "
            "redis.call('SET', KEYS[1], ARGV[1]) "
            "if ARGV[3] ~= '' then redis.call('XTRIM', KEYS[2], 'MINID', ARGV[3]) end "
            "return 1";
        const char *fk = m->fence_key ? m->fence_key : m->skey,
                   *fv = m->fence_val ? m->fence_val : "";
        char minid[64];
        next_id(m->pos, minid, sizeof(minid));
        const char *argv[] = {"EVAL", script, "3", m->skey, m->jkey, fk, b.p, fv, minid};
        size_t argl[] = {4, sizeof(script) - 1, 1, strlen(m->skey), strlen(m->jkey),
                         strlen(fk), b.len, strlen(fv), strlen(minid)};
        char err[300];
        redisReply *rep = rsync_argv(m->snap, m->skey, 9, argv, argl, err, sizeof(err));
        if (rep && rep->type == REDIS_REPLY_ERROR && strncmp(rep->str, "FENCED", 6) == 0) {
            /* another process runs now: no batch may leave from here */
            log_error("mixer: %s holds the lease now, not this process: stopping at once",
                      m->fence_key);
            _exit(3);
        }
        int ok = rep && rep->type == REDIS_REPLY_INTEGER;
        if (rep && !ok)
            snprintf(err, sizeof(err), "%s", rep->type == REDIS_REPLY_ERROR ? rep->str : "?");
        freeReplyObject(rep);
        if (!ok) {
            m->checkpoint_errors++;
            log_error("mixer: checkpoint in Redis (%s) failed: %s (what the pool holds may "
                      "be lost, or released twice, after a crash)", m->skey, err);
            pdns_buf_free(&b);
            return -1;
        }
        m->gen = gen;
        pdns_buf_free(&b);
        return 0;
    }
    state_path(cfg, SNAP_NAME, path, sizeof(path));
    if (pdns_afile_write(path, b.p, b.len) < 0)
        goto fail;
    b.len = 0;
    state_path(cfg, JOURNAL_NAME, path, sizeof(path));
    if (pdns_buf_printf(&b, "%s %llu\n", JOURNAL_MAGIC, (unsigned long long)gen) < 0 ||
        pdns_afile_write(path, b.p, b.len) < 0)
        goto fail;
    int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd < 0)
        goto fail;
    if (m->jfd >= 0)
        close(m->jfd);
    m->jfd = fd;
    m->jbuf.len = 0; /* what it held is in the pool file */
    m->gen = gen;
    pdns_buf_free(&b);
    return 0;
fail:
    m->checkpoint_errors++;
    log_error("mixer: checkpoint in %s failed: %s (what the pool holds may be lost, or "
              "released twice, after a crash)", cfg->state_dir, strerror(errno));
    pdns_buf_free(&b);
    return -1;
}

void mix_journal(void *ctx, const pdns_record *r, uint16_t source, int64_t now_ms) {
    mix_stage *m = ctx;
    if (m->jfd < 0 && !m->jrl)
        return;
    if (mix_rec_put(&m->jbuf, r, source, now_ms) < 0)
        m->journal_errors++;
    if (m->jbuf.len >= JOURNAL_FLUSH)
        mix_journal_flush(m);
}

static void on_xadd(redisAsyncContext *ac, void *reply, void *priv) {
    mix_stage *m = priv;
    redisReply *rep = reply;
    (void)ac;
    if (!rep || rep->type == REDIS_REPLY_ERROR) {
        m->journal_errors++;
        log_error("mixer: appending to the journal in Redis: %s",
                  rep ? rep->str : "the link went away");
    }
}

static void read_more(mix_stage *m);

void mix_journal_flush(mix_stage *m) {
    if (m->jrl) {
        if (m->jbuf.len &&
            rlink_command(m->jrl, m->jkey, on_xadd, m, "XADD %s * c %s r %b", m->jkey, m->fp,
                          m->jbuf.p, m->jbuf.len) < 0) {
            m->journal_errors++;
            log_error("mixer: the journal's Redis is away: %zu bytes of journal lost",
                      m->jbuf.len);
        }
        m->jbuf.len = 0;
        if (m->mixing && !m->reading)
            read_more(m);
        return;
    }
    if (!m->jbuf.len)
        return;
    if (m->jfd < 0)
        return;
    if (pdns_buf_write_fd(&m->jbuf, m->jfd) < 0) {
        m->journal_errors++;
        log_error("mixer: writing the journal: %s", strerror(errno));
    }
    m->jbuf.len = 0;
}

/* Reads a whole file; NULL when there is none. */
static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    pdns_buf b = {0};
    char chunk[65536];
    size_t got;
    while ((got = fread(chunk, 1, sizeof(chunk), f)) > 0)
        if (pdns_buf_append(&b, chunk, got) < 0)
            break;
    int ok = !ferror(f) && feof(f);
    fclose(f);
    if (!ok) {
        pdns_buf_free(&b);
        return NULL;
    }
    *len = b.len;
    return b.p ? b.p : calloc(1, 1);
}

/* Inserts the journalled records of d (from off); a torn last record (a
 * crash mid-write) ends them. map gives the pool's source for each
 * journalled one (NULL: the same numbers as this configuration's). Returns
 * how many the pool took. */
static long replay_records(mix_stage *m, const int32_t *map, size_t nmap, const char *d,
                           size_t len, size_t off) {
    pdns_record r;
    uint16_t src;
    int64_t at;
    long n = 0;
    while (mix_rec_get(d, len, &off, &r, &src, &at)) {
        int32_t to = map ? (src < nmap ? map[src] : -1)
                         : (src < m->cfg->mixer.n_sensors ? src : -1);
        if (to >= 0 && mixer_pool_insert(m->pool, &r, (uint16_t)to, at) == 0)
            n++;
    }
    return n;
}

/* One entry of the journal stream (its id and fields): its records go to
 * the pool, and the pool's position moves past it. Entries of another
 * fingerprint are refused (counted, logged); an entry of the generation
 * scheme ("g", before stream positions) is taken if of generation gen,
 * with the checkpoint's source map. Returns the records the pool took. */
static long take_entry(mix_stage *m, const redisReply *e, const int32_t *map, size_t nmap,
                       uint64_t gen) {
    if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
        e->element[0]->type != REDIS_REPLY_STRING || e->element[0]->len >= sizeof(m->pos))
        return 0;
    snprintf(m->pos, sizeof(m->pos), "%s", e->element[0]->str);
    const redisReply *f = e->element[1];
    if (f->type != REDIS_REPLY_ARRAY || f->elements != 4 ||
        f->element[0]->type != REDIS_REPLY_STRING || f->element[1]->type != REDIS_REPLY_STRING ||
        f->element[2]->type != REDIS_REPLY_STRING || f->element[3]->type != REDIS_REPLY_STRING ||
        strcmp(f->element[2]->str, "r") != 0)
        return 0;
    const char *what = f->element[0]->str, *val = f->element[1]->str;
    const redisReply *rec = f->element[3];
    if (strcmp(what, "g") == 0)
        return strtoull(val, NULL, 10) == gen
                   ? replay_records(m, map, nmap, rec->str, rec->len, 0)
                   : 0; /* another generation: in the checkpoint already */
    if (strcmp(what, "c") != 0 || strcmp(val, m->fp) != 0) {
        if (m->foreign++ == 0 || m->foreign % 1000 == 0)
            log_error("mixer: journal entry %s comes from a process whose sensors, queues "
                      "or partners_in differ from this one's (fingerprint %s, here %s): "
                      "not mixed (%" PRIu64 " such entries so far); give every process of "
                      "relay %s the same sources", m->pos, val, m->fp, m->foreign,
                      m->cfg->relay_id);
        return 0;
    }
    return replay_records(m, NULL, 0, rec->str, rec->len, 0);
}

/* A page of the journal read (an XRANGE's reply): the next asks for as
 * many entries as make about REPLAY_BYTES at the size of these (an entry
 * holds up to JOURNAL_FLUSH bytes of records: 200 full ones would be 200
 * MiB in one reply), from 1 to REPLAY_PAGE. Returns 1 when the page was
 * full (more may follow at once). */
static int page_read(mix_stage *m, const redisReply *rep) {
    size_t bytes = 0, n = rep->elements;
    for (size_t i = 0; i < n; i++) {
        const redisReply *e = rep->element[i];
        if (e->type == REDIS_REPLY_ARRAY && e->elements == 2 &&
            e->element[1]->type == REDIS_REPLY_ARRAY && e->element[1]->elements == 4)
            bytes += e->element[1]->element[3]->len;
    }
    int full = n >= m->page;
    size_t per = n ? bytes / n + 1 : 1, page = REPLAY_BYTES / per;
    m->page = (unsigned)(page < 1 ? 1 : page > REPLAY_PAGE ? REPLAY_PAGE : page);
    return full;
}

/* The journal stream's entries after the checkpoint's position, in order,
 * a page at a time, now (a start or a takeover). Returns the records the
 * pool took, or -1 (Redis away). */
static long replay_redis(mix_stage *m, const int32_t *map, size_t nmap, uint64_t gen) {
    char start[64], count[24], err[300];
    long n = 0;
    for (;;) {
        snprintf(start, sizeof(start), "(%s", m->pos);
        snprintf(count, sizeof(count), "%u", m->page);
        const char *argv[] = {"XRANGE", m->jkey, start, "+", "COUNT", count};
        size_t argl[6];
        for (int i = 0; i < 6; i++)
            argl[i] = strlen(argv[i]);
        redisReply *rep = rsync_argv(m->snap, m->jkey, 6, argv, argl, err, sizeof(err));
        if (!rep || rep->type != REDIS_REPLY_ARRAY) {
            log_error("mixer: reading the journal %s: %s", m->jkey,
                      rep && rep->type == REDIS_REPLY_ERROR ? rep->str : err);
            freeReplyObject(rep);
            return -1;
        }
        for (size_t i = 0; i < rep->elements; i++) {
            n += take_entry(m, rep->element[i], map, nmap, gen);
            if (m->keep)
                m->keep(m->keep_ctx);
        }
        int more = page_read(m, rep);
        freeReplyObject(rep);
        if (!more)
            return n;
    }
}

/* The mixer's input, as it runs: the stream's next entries, read on the
 * loop (one read at a time; the next page at once when this one was full). */
static void on_xrange(redisAsyncContext *ac, void *reply, void *priv) {
    mix_stage *m = priv;
    redisReply *rep = reply;
    (void)ac;
    m->reading = 0;
    if (!rep || !m->pool || !m->mixing)
        return;
    if (rep->type != REDIS_REPLY_ARRAY) {
        m->journal_errors++;
        log_error("mixer: reading the journal %s: %s", m->jkey,
                  rep->type == REDIS_REPLY_ERROR ? rep->str : "?");
        return;
    }
    for (size_t i = 0; i < rep->elements; i++)
        take_entry(m, rep->element[i], NULL, 0, 0);
    /* the age of the newest entry read (ids start with Redis's ms): how far
     * the mixer is behind the processes that take records; 0 when idle */
    m->lag_ms = 0;
    if (rep->elements) {
        int64_t at = (int64_t)strtoll(m->pos, NULL, 10), now = pdns_wall_ms();
        m->lag_ms = now > at ? now - at : 0;
    }
    if (page_read(m, rep))
        read_more(m);
}

static void read_more(mix_stage *m) {
    char start[64];
    snprintf(start, sizeof(start), "(%s", m->pos);
    if (rlink_command(m->jrl, m->jkey, on_xrange, m, "XRANGE %s %s + COUNT %u", m->jkey, start,
                      m->page) == 0)
        m->reading = 1;
}

/* Replays the journal of generation gen (records after the last
 * checkpoint). */
static long replay(mix_stage *m, const int32_t *map, size_t nmap, uint64_t gen) {
    if (m->snap)
        return replay_redis(m, map, nmap, gen);
    char path[4200];
    size_t len = 0;
    unsigned long long jgen;
    state_path(m->cfg, JOURNAL_NAME, path, sizeof(path));
    char *d = slurp(path, &len);
    char *nl = d ? memchr(d, '\n', len) : NULL;
    long n = 0;
    if (nl && sscanf(d, JOURNAL_MAGIC " %llu", &jgen) == 1 && jgen == gen)
        n = replay_records(m, map, nmap, d, len, (size_t)(nl + 1 - d));
    free(d);
    return n;
}

/* The saved pool in Redis: the string (NULL and 0 when there is none yet),
 * or -1 when Redis did not answer within RESTORE_TRIES_MS. */
static int load_redis(mix_stage *m, char **d, size_t *len) {
    char err[300];
    uint64_t until = pdns_mono_ms() + RESTORE_TRIES_MS;
    const char *argv[] = {"GET", m->skey};
    size_t argl[] = {3, strlen(m->skey)};
    *d = NULL;
    *len = 0;
    for (;;) {
        redisReply *rep = rsync_argv(m->snap, m->skey, 2, argv, argl, err, sizeof(err));
        if (rep && rep->type == REDIS_REPLY_NIL) {
            freeReplyObject(rep);
            return 0;
        }
        if (rep && rep->type == REDIS_REPLY_STRING) {
            *d = malloc(rep->len + 1);
            if (*d) {
                memcpy(*d, rep->str, rep->len);
                (*d)[rep->len] = '\0';
                *len = rep->len;
            }
            freeReplyObject(rep);
            return *d ? 0 : -1;
        }
        if (rep)
            snprintf(err, sizeof(err), "%s", rep->type == REDIS_REPLY_ERROR ? rep->str : "?");
        freeReplyObject(rep);
        if (pdns_mono_ms() >= until) {
            log_error("mixer: cannot read the saved pool %s from Redis: %s", m->skey, err);
            return -1;
        }
        uv_sleep(200);
    }
}

/* At start: the last checkpoint, then the journal written since. Returns
 * 0, or -1 when the saved pool could not be read (Redis away: starting
 * empty would overwrite it). */
static int restore(mix_stage *m) {
    const relay_config *cfg = m->cfg;
    char path[4200], bad[4300], name[200];
    size_t len = 0;
    char *d;
    if (m->snap) {
        snprintf(path, sizeof(path), "Redis %s", m->skey);
        if (load_redis(m, &d, &len) < 0)
            return -1;
    } else {
        state_path(cfg, SNAP_NAME, path, sizeof(path));
        d = slurp(path, &len);
    }
    if (!d) { /* none yet; in Redis, what other processes took may wait */
        long n = m->snap ? replay_redis(m, NULL, 0, 0) : 0;
        if (n > 0)
            log_info("mixer: no saved pool in Redis; %ld records taken from the journal", n);
        return n < 0 ? -1 : 0;
    }
    size_t nsaved = 0, off = 0;
    unsigned long long gen = 0;
    long restored = -1, replayed = 0;
    int32_t *map = NULL;
    char *nl = memchr(d, '\n', len);
    char pos[48] = "0-0";
    size_t dbytes = 0;
    int ckpt = nl && sscanf(d, CKPT_MAGIC " %zu %llu %47s %zu", &nsaved, &gen, pos, &dbytes) == 4;
    if (nl && (ckpt || sscanf(d, SNAP_MAGIC " %zu %llu %47s", &nsaved, &gen, pos) >= 2) &&
        nsaved <= 65536 &&
        (map = calloc(nsaved ? nsaved : 1, sizeof(*map)))) {
        off = (size_t)(nl + 1 - d);
        size_t i;
        for (i = 0; i < nsaved; i++) {
            char *e = memchr(d + off, '\n', len - off);
            if (!e)
                break;
            map[i] = -1;
            for (size_t k = 0; k < cfg->mixer.n_sensors; k++) {
                source_name(cfg, k, name, sizeof(name));
                if (strlen(name) == (size_t)(e - (d + off)) &&
                    memcmp(name, d + off, strlen(name)) == 0)
                    map[i] = (int32_t)k;
            }
            off = (size_t)(e + 1 - d);
        }
        if (i == nsaved && dbytes <= len - off) {
            /* the delay lines wait for the policy stage (mix_resume) */
            if (dbytes && (m->delays = malloc(dbytes)) &&
                (m->dmap = malloc(nsaved * sizeof(*map)))) {
                memcpy(m->delays, d + off, dbytes);
                memcpy(m->dmap, map, nsaved * sizeof(*map));
                m->delays_len = dbytes;
                m->dnmap = nsaved;
            }
            off += dbytes;
            restored = mixer_pool_restore(m->pool, (const uint8_t *)d + off, len - off, map,
                                          nsaved, ingest_clock_ms());
        }
        if (restored >= 0) {
            m->gen = gen;
            if (m->snap && strcmp(pos, "-") != 0)
                snprintf(m->pos, sizeof(m->pos), "%s", pos);
            replayed = replay(m, map, nsaved, gen);
        }
    }
    free(map);
    free(d);
    if (replayed < 0)
        return -1;
    if (restored < 0) {
        snprintf(bad, sizeof(bad), "%s.bad", m->snap ? m->skey : path);
        log_error("mixer: %s is not a saved pool: set aside as %s, the pool starts empty",
                  path, bad);
        if (!m->snap) {
            rename(path, bad);
        } else {
            const char *argv[] = {"RENAME", m->skey, bad};
            size_t argl[] = {6, strlen(m->skey), strlen(bad)};
            char err[300];
            freeReplyObject(rsync_argv(m->snap, m->skey, 3, argv, argl, err, sizeof(err)));
        }
        return 0;
    }
    log_info("mixer: %ld pooled triples restored from %s, %ld records replayed from the "
             "journal", restored, path, replayed);
    return 0;
}

/* The sources' names, hashed (FNV-1a, hex): the source numbers in a
 * journal entry mean the same sources only between processes of the same
 * fingerprint. */
static void sources_fingerprint(const relay_config *cfg, char *out, size_t n) {
    uint64_t h = 1469598103934665603ull;
    char name[200];
    for (size_t i = 0; i < cfg->mixer.n_sensors; i++) {
        source_name(cfg, i, name, sizeof(name));
        for (const char *c = name;; c++) {
            h = (h ^ (uint8_t)*c) * 1099511628211ull;
            if (!*c)
                break;
        }
    }
    snprintf(out, n, "%016" PRIx64, h);
}

void mix_key(const char *relay_id, const char *what, char *out, size_t n) {
    snprintf(out, n, "{pdns-relay:%s:mixer}:%s", relay_id, what);
}

int mix_take_over(mix_stage *m) {
    if (!m->pool || !m->snap)
        return 0;
    if (restore(m) < 0) {
        log_error("mixer: mixer.journal is \"redis\" and the pool saved there could not "
                  "be read: not mixing (the saved pool is left as it is)");
        return -1;
    }
    return 0;
}

int mix_resume(mix_stage *m) {
    if (!m->pool)
        return 0;
    if (m->delays) {
        share_restore_delays(m->sh, m->delays, m->delays_len, m->dmap, m->dnmap);
        free(m->delays);
        free(m->dmap);
        m->delays = NULL;
        m->dmap = NULL;
    }
    if (m->snap) {
        if (m->keep)
            m->keep(m->keep_ctx);
        if (checkpoint(m) < 0) {
            log_error("mixer: mixer.journal is \"redis\" and the pool cannot be saved "
                      "there: not mixing");
            return -1;
        }
        m->mixing = 1;
        read_more(m);
    } else if (m->cfg->state_dir[0] && m->cfg->mixer_journal) {
        checkpoint(m); /* what was restored, and a new journal from here */
    }
    return 0;
}

int mix_start(mix_stage *m, const relay_config *cfg, share *sh, uv_loop_t *loop,
              const int *stopping) {
    m->cfg = cfg;
    m->sh = sh;
    m->fd = -1;
    m->jfd = -1;
    if (!m->cfg->mixer_enabled)
        return 0;
    mixer_rng_init_secure(&m->rng);
    m->pool = mixer_pool_new(&m->cfg->mixer, &m->rng, on_batch, m);
    if (!m->pool)
        return -1;
    if (cfg->mixer_journal == MIXER_JOURNAL_REDIS) {
        mix_key(cfg->relay_id, "pool", m->skey, sizeof(m->skey));
        mix_key(cfg->relay_id, "journal", m->jkey, sizeof(m->jkey));
        mix_key(cfg->relay_id, "read", m->rkey, sizeof(m->rkey));
        snprintf(m->pos, sizeof(m->pos), "0-0");
        m->page = REPLAY_BYTES / JOURNAL_FLUSH; /* until the first page says */
        sources_fingerprint(cfg, m->fp, sizeof(m->fp));
        m->snap = rsync_new(cfg->redis_url, cfg->redis.host, cfg->redis.port, cfg->redis_db,
                            SNAP_TIMEOUT_MS);
        m->jrl = m->snap ? rlink_new(loop, cfg->redis_url, cfg->redis.host, cfg->redis.port,
                                     cfg->redis_db, "mixer journal Redis", stopping, NULL,
                                     NULL, NULL)
                         : NULL;
        /* with ha, the process holding the lease mixes (mix_take_over) */
        if (!m->jrl || rlink_start(m->jrl) < 0 || (!cfg->ha_enabled && mix_take_over(m) < 0)) {
            mixer_pool_free(m->pool);
            m->pool = NULL;
            return -1;
        }
    } else if (m->cfg->state_dir[0] && m->cfg->mixer_journal) {
        restore(m); /* mix_resume writes the first checkpoint */
    } else {
        log_info("mixer: mixer.journal is off: a restart or a crash forgets the pool");
    }
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
    if (!m->pool || (m->snap && !m->mixing))
        return;
    if (m->snap) /* how far the mixer has read, for cluster-status (10 s) */
        rlink_command(m->jrl, m->rkey, NULL, NULL, "SET %s %s PX 10000", m->rkey, m->pos);
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
        size_t left = mixer_pool_triples(m->pool);
        mix_journal_flush(m); /* what this process took last: to the stream */
        if (m->snap && !m->mixing)
            left = 0; /* following: nothing pooled here */
        else if (m->snap && checkpoint(m) == 0 && left)
            log_info("mixer: %zu pooled triples saved in Redis (%s) for the next start", left,
                     m->skey);
        else if (m->jfd >= 0 && checkpoint(m) == 0 && left)
            log_info("mixer: %zu pooled triples saved in %s/%s for the next start", left,
                     m->cfg->state_dir, SNAP_NAME);
        mixer_pool_free(m->pool);
    }
    if (m->jrl)
        rlink_stop(m->jrl);
    rsync_free(m->snap);
    m->snap = NULL;
    if (m->cfg && m->jfd >= 0) /* (m->cfg: mix_start ran, jfd is set) */
        close(m->jfd);
    m->jfd = -1;
    pdns_buf_free(&m->jbuf);
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
    rc |= pdns_buf_printf(b, "# HELP pdns_relay_mixer_persist_errors_total Checkpoints and journal writes of the pool that failed (a crash may then lose pooled triples or release some twice).\n"
                 "# TYPE pdns_relay_mixer_persist_errors_total counter\n"
                 "pdns_relay_mixer_persist_errors_total{what=\"checkpoint\"} %" PRIu64 "\n"
                 "pdns_relay_mixer_persist_errors_total{what=\"journal\"} %" PRIu64 "\n"
                 "# HELP pdns_relay_mixer_journal_foreign_total Journal entries in Redis from a process with other sources (sensors, queues, partners_in): not mixed.\n"
                 "# TYPE pdns_relay_mixer_journal_foreign_total counter\n"
                 "pdns_relay_mixer_journal_foreign_total %" PRIu64 "\n",
                 m->checkpoint_errors, m->journal_errors, m->foreign);
    if (m->mixing)
        rc |= pdns_buf_printf(b, "# HELP pdns_relay_mixer_journal_lag_seconds How old the newest journal entry the mixer read was when it read it (mixer.journal \"redis\"; 0 when it had nothing to read).\n"
                     "# TYPE pdns_relay_mixer_journal_lag_seconds gauge\n"
                     "pdns_relay_mixer_journal_lag_seconds %.3f\n",
                     (double)m->lag_ms / 1000.0);
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

void mix_free(mix_stage *m) {
    free(m->delays);
    free(m->dmap);
    m->delays = NULL;
    m->dmap = NULL;
    rlink_free(m->jrl);
    m->jrl = NULL;
}
