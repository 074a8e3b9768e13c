/* daemon.c - `pdns-relay run`: loads the configuration, puts lws, hiredis,
 * timers and signals on one libuv loop, and runs until SIGTERM/SIGINT.
 * SIGHUP re-reads the configuration and applies what can change live
 * (log level, stats interval, sensor keys and CSV layouts). */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <libwebsockets.h>
#include <systemd/sd-daemon.h>
#include <uv.h>

#include "clock.h"
#include "cmd.h"
#include "config.h"
#include "console.h"
#include "rlink.h"
#include "d4_listener.h"
#include "delay.h"
#include "deliver.h"
#include "edit.h"
#include "recent.h"

#define RECENT_AGE_MS (10 * 60 * 1000) /* the preview's window */
#define HIST_EVERY_MS 10000              /* the console's charts: a sample each 10 s, */
#define HIST_SAMPLES 361                 /* an hour of them */
#include "http_api.h"
#include "http_auth.h"
#include "inbound.h"
#include "ingest.h"
#include "log.h"
#include "ha.h"
#include "mix.h"
#include "query.h"
#include "queue.h"
#include "share.h"
#include "store.h"
#include "stream.h"
#include "machine.h"
#include "version.h"

/* The running relay: one libuv loop shared by libwebsockets (D4 listener,
 * HTTP), hiredis (store, d4-core queues, outboxes) and the relay's timers
 * and signals. Each part gets what it uses when it starts. */
typedef struct relay {
    uv_loop_t *loop;
    relay_config cfg;
    ingest in;
    struct lws_context *lws;
    struct lws_protocols *protocols[3]; /* per vhost, freed at exit */
    d4_listener d4;
    queue_consumer *queue;
    mix_stage mix;
    ha ha;                      /* ha.enabled: the lease this process holds */
    uint64_t mix_tick_ms;
    share sh;                    /* per-partner policies */
    stream st;                   /* the open data stream, if configured */
    store store;                 /* the local COF store */
    int storing;                 /* store.enabled */
    struct http_auth *auth;      /* API keys and users (http_auth.c) */
    struct http_auth *admin_auth;/* console users (admin.auth_file), or NULL */
    console *console;            /* the web console on the admin listener */
    policy_edit edit;            /* the console's policy changes */
    recent recent;               /* the last minutes' records, for the preview */
    struct sample {              /* the console's last hour: a sample every 10 s */
        int64_t at_ms;
        uint64_t records, rejected, stored, pool, sent;
    } hist[HIST_SAMPLES];
    size_t hist_n, hist_head;
    uint64_t hist_next_ms;
    pdns_hist lat_snap;          /* the store's write latency at the last sample */
    double lat_p50, lat_p99;     /* over the 10 s before it (seconds; -1: no write) */
    int64_t triples, names;      /* in the store, as last read (-1: not yet) */
    int size_asked;              /* a read of them is under way */
    query_api query;
    http_api http, admin;
    deliver *deliver;            /* D4 delivery to partners */
    int streaming;
    uv_fs_event_t policy_watch;
    uv_timer_t policy_debounce;
    int policy_watching;
    int stopping;
    uint64_t started_ms;
} relay;

const char cmd_run_help[] =
    "usage: pdns-relay run -c CONFIG [--d4-listen HOST:PORT]\n"
    "                      [--http-listen HOST:PORT] [--redis URL]\n"
    "                      [--output FILE] [--log-level LEVEL]\n"
    "\n"
    "Runs the relay: the D4/TLS listener for registered sensors, the d4-core\n"
    "queue consumer, and the HTTP endpoints (/metrics, /stats, /healthz).\n"
    "Accepted records are counted per sensor and, with --output (or\n"
    "ingest.output_file), appended to FILE as COF NDJSON.\n"
    "SIGTERM or SIGINT drain and exit; SIGHUP reloads the configuration.\n"
    "\n"
    "  -c, --config FILE       the relay configuration (JSON)\n"
    "  --d4-listen HOST:PORT   override d4.listen\n"
    "  --http-listen HOST:PORT override http.listen\n"
    "  --redis URL             override redis (redis://HOST:PORT/DB)\n"
    "  --output FILE           override ingest.output_file\n"
    "  --log-level LEVEL       debug, info, warn or error\n";

static uv_signal_t sig_term, sig_int, sig_hup;
static uv_timer_t tick;
static uint64_t last_stats_ms;
static int stop_wait_ticks;

static void log_stats(relay *r) {
    const relay_metrics *m = &r->in.m;
    uint64_t rej = 0;
    for (int s = 0; s < PDNS_SRC_COUNT; s++)
        for (int k = 1; k < CSV_RESULT_COUNT; k++)
            rej += m->csv_rejects[s][k];
    log_info("stats: records d4=%" PRIu64 " queue=%" PRIu64 " error_lines=%" PRIu64
             " rejected_lines=%" PRIu64 " sessions=%" PRIu64 " suppressed_logs=%" PRIu64,
             m->records[PDNS_SRC_D4], m->records[PDNS_SRC_QUEUE],
             m->error_lines[PDNS_SRC_D4] + m->error_lines[PDNS_SRC_QUEUE], rej,
             m->d4_sessions_active, m->log_suppressed);
    for (size_t i = 0; i < r->cfg.n_sensors; i++) {
        relay_sensor *s = &r->cfg.sensors[i];
        if (s->frames)
            log_info("stats: sensor %s records=%" PRIu64 " error_lines=%" PRIu64
                     " rejected=%" PRIu64 " frames=%" PRIu64, s->name,
                     s->records, s->errors, s->rejected, s->frames);
    }
}

static int http_ready(void *ctx, char *why, size_t whylen);

static int is_loopback_host(const char *h) {
    return strncmp(h, "127.", 4) == 0 || strcmp(h, "::1") == 0 ||
           strcmp(h, "localhost") == 0;
}

/* Anonymous queries reach the full unmixed store: say so when the query
 * listener is not on loopback, or when the admin data is exposed. */
static void warn_exposure(const relay_config *c) {
    if (c->http_enabled && c->http_anonymous == 1 && !is_loopback_host(c->http_listen.host))
        log_warn("http: anonymous queries (http.anonymous: true) on %s:%d, not a "
                 "loopback address: anyone who reaches it can read the full "
                 "unmixed store; require credentials (http.auth_file)",
                 c->http_listen.host, c->http_listen.port);
    if (c->http_enabled && c->http_anonymous == 2 && !c->http_proxies[0])
        log_info("http: anonymous queries from loopback only; behind a reverse "
                 "proxy on this host every client is loopback: list the proxy in "
                 "http.trusted_proxies");
    if (c->admin_enabled && !is_loopback_host(c->admin_listen.host))
        log_warn("admin: /metrics and /stats (each sensor's activity) on %s:%d, "
                 "not a loopback address", c->admin_listen.host, c->admin_listen.port);
}

/* The listeners are open: what the relay serves, in one line. */
static void log_listening(const relay *r) {
    char d4[300] = "D4/TLS off", http[300] = "HTTP off";
    if (r->cfg.d4_enabled)
        snprintf(d4, sizeof(d4), "D4/TLS %s:%d", r->cfg.d4_listen.host,
                 r->cfg.d4_listen.port);
    if (r->cfg.http_enabled)
        snprintf(http, sizeof(http), "HTTP%s %s:%d", r->cfg.http_tls_cert[0] ? "S" : "",
                 r->cfg.http_listen.host, r->cfg.http_listen.port);
    char admin[300] = "admin off";
    if (r->cfg.admin_enabled)
        snprintf(admin, sizeof(admin), "admin %s:%d", r->cfg.admin_listen.host,
                 r->cfg.admin_listen.port);
    char machine[400];
    pdns_machine_describe(machine, sizeof(machine));
    log_info("pdns-relay %s up: relay_id %s, %s, %s, %s, %zu sensors, %zu d4-core "
             "queues; %s", PDNS_RELAY_VERSION, r->cfg.relay_id, d4, http, admin,
             r->cfg.n_sensors, r->cfg.n_queues, machine);
}

/* Tells systemd (Type=notify) the relay does its work; no-op elsewhere. */
static void notify_ready(const relay *r) {
    sd_notifyf(0, "READY=1\nSTATUS=ready: relay_id %s", r->cfg.relay_id);
}

/* Logs "ready" once the relay first can do its work (GET /readyz tells the
 * same at any time). */
static void note_ready(relay *r) {
    static int logged;
    char why[256];
    if (logged || !http_ready(r, why, sizeof(why)))
        return;
    logged = 1;
    log_info("ready");
    notify_ready(r);
}

/* When each sensor last sent anything (the console's "last seen"). */
static void note_sensors_seen(relay *r) {
    int64_t wall = -1;
    for (size_t i = 0; i < r->cfg.n_sensors; i++) {
        relay_sensor *se = &r->cfg.sensors[i];
        uint64_t total = se->frames + se->records + se->errors + se->rejected;
        if (total == se->seen_total)
            continue;
        if (wall < 0) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            wall = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
        }
        se->seen_total = total;
        se->last_seen_ms = wall;
    }
}

/* The store's size (st:info), read with the console's samples. */
static void on_store_size(void *reply, void *ctx) {
    relay *r = ctx;
    const redisReply *rep = reply;
    r->size_asked = 0;
    if (rep && rep->type == REDIS_REPLY_ARRAY && rep->elements >= 3 &&
        rep->element[1]->type == REDIS_REPLY_STRING && rep->element[2]->type == REDIS_REPLY_STRING) {
        r->triples = strtoll(rep->element[1]->str, NULL, 10);
        r->names = strtoll(rep->element[2]->str, NULL, 10);
    }
}

/* The totals the console charts, every HIST_EVERY_MS (a ring of an hour). */
static void note_history(relay *r, uint64_t now) {
    if (now < r->hist_next_ms)
        return;
    r->hist_next_ms = now + HIST_EVERY_MS;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct sample x = {(int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, 0, 0, 0, 0, 0};
    const relay_metrics *m = &r->in.m;
    for (int k = 0; k < PDNS_SRC_COUNT; k++) {
        x.records += m->records[k];
        for (int res = 1; res < CSV_RESULT_COUNT; res++)
            x.rejected += m->csv_rejects[k][res];
    }
    for (int k = 0; k < D4R_COUNT; k++)
        x.rejected += m->d4_rejects[k];
    x.stored = r->storing ? r->store.stored : 0;
    if (r->storing && r->console && !r->size_asked && !r->stopping &&
        store_info(&r->store, on_store_size, r) == 0)
        r->size_asked = 1;
    if (r->storing) {
        pdns_hist w;
        pdns_hist_sub(&w, &r->store.lat, &r->lat_snap);
        r->lat_snap = r->store.lat;
        r->lat_p50 = pdns_hist_quantile(&w, 0.5);
        r->lat_p99 = pdns_hist_quantile(&w, 0.99);
    }
    x.pool = r->mix.pool ? mixer_pool_triples(r->mix.pool) : 0;
    for (size_t i = 0; i < r->sh.np; i++)
        x.sent += r->sh.p[i].sent;
    r->hist[(r->hist_head + r->hist_n) % HIST_SAMPLES] = x;
    if (r->hist_n < HIST_SAMPLES)
        r->hist_n++;
    else
        r->hist_head = (r->hist_head + 1) % HIST_SAMPLES;
}

static void on_tick(uv_timer_t *t) {
    relay *r = t->data;
    uint64_t now = pdns_mono_ms();
    note_sensors_seen(r);
    note_history(r, now);
    if (r->stopping) {
        /* drain: wait for an in-flight queue batch (at most 5 s) */
        if (r->storing)
            store_tick(&r->store);
        queue_stored(r->queue);
        /* at most 5 s for a queue batch, 10 s for the store to catch up */
        ++stop_wait_ticks;
        if ((queue_idle(r->queue) || stop_wait_ticks > 50) &&
            (deliver_settled(r->deliver) || stop_wait_ticks > 50) &&
            (!r->storing || !store_waiting(&r->store) || !store_up(&r->store) ||
             stop_wait_ticks > 100))
            uv_stop(r->loop);
        return;
    }
    if (r->storing)
        store_tick(&r->store);
    note_ready(r);
    d4_listener_sweep(&r->d4);
    ingest_commit(&r->in);
    mix_journal_flush(&r->mix);
    if (now - r->mix_tick_ms >= 1000) {
        r->mix_tick_ms = now;
        mix_tick(&r->mix);
        share_tick(&r->sh, ingest_clock_ms());
    }
    if (r->cfg.stats_interval &&
        now - last_stats_ms >= (uint64_t)r->cfg.stats_interval * 1000) {
        last_stats_ms = now;
        log_stats(r);
    }
}

static int reload(relay *r, char *err, size_t errlen) {
    relay_config nc;
    if (config_load(&nc, r->cfg.path, err, errlen) < 0) {
        log_error("reload: %s; keeping the running configuration", err);
        return -1;
    }
    r->cfg.log_level = nc.log_level;
    log_set_level(nc.log_level);
    r->cfg.stats_interval = nc.stats_interval;
    size_t changed = 0, missing = 0;
    for (size_t i = 0; i < nc.n_sensors; i++) {
        relay_sensor *old = config_find_sensor(&r->cfg, nc.sensors[i].uuid);
        if (!old) {
            missing++;
            continue;
        }
        uint8_t *k = old->key;
        old->key = nc.sensors[i].key;
        old->keylen = nc.sensors[i].keylen;
        nc.sensors[i].key = k;
        old->layout = nc.sensors[i].layout;
        changed++;
    }
    if (missing || nc.n_sensors != r->cfg.n_sensors)
        log_warn("reload: sensors were added or removed; that takes a restart");
    log_info("reload: %s applied (log level, stats interval, keys and layouts "
             "of %zu sensors)", r->cfg.path, changed);
    config_free(&nc);
    return 0;
}

/* SIGHUP, or the console's reload: the configuration, then the policies. */
static int reload_all(relay *r, char *err, size_t errlen) {
    sd_notify(0, "RELOADING=1\nSTATUS=reloading the configuration");
    int rc = reload(r, err, errlen);
    share_reload(&r->sh);
    deliver_sync(r->deliver);
    notify_ready(r);
    return rc;
}

static void on_store_drain(void *ctx) {
    d4_listener_resume(&((relay *)ctx)->d4);
}

static void on_store_acked(void *ctx) {
    queue_stored(((relay *)ctx)->queue);
}

static int source_for(void *ctx, const char *who, const char *path) {
    return share_source_for(ctx, who, path);
}

/* A key beside partner pt's outbox in Redis (same hash tag): ":last", the
 * last batch's marker; ":totals", its totals. */
static void outbox_key_with(const relay *r, const partner *pt, const char *what, char *key,
                            size_t n) {
    deliver_outbox_key(r->cfg.relay_id, pt->pol->partner, key, n);
    strncat(key, what, n - strlen(key) - 1);
}

/* A partner's totals ("counts": "total") in Redis, beside its outbox: a
 * hash of triple key -> count, time_first, time_last (binary), kept as the
 * journal in outbox_dir is written, for the process that takes over. */

_Static_assert(sizeof(totals_entry) == TOTALS_KEY + 3 * sizeof(uint64_t),
               "a totals entry is its key, then count, time_first and time_last");

static void on_totals_written(void *ctx, const partner *pt, const totals_entry *e, size_t n,
                              int whole) {
    relay *r = ctx;
    enum { CHUNK = 500 };
    char key[300];
    const char *argv[2 + 2 * CHUNK];
    size_t argl[2 + 2 * CHUNK];
    if (!r->mix.jrl)
        return;
    outbox_key_with(r, pt, ":totals", key, sizeof(key));
    if (whole)
        rlink_command(r->mix.jrl, key, NULL, NULL, "DEL %s", key);
    for (size_t i = 0; i < n; i += CHUNK) {
        size_t k = n - i < CHUNK ? n - i : CHUNK;
        argv[0] = "HSET";
        argl[0] = 4;
        argv[1] = key;
        argl[1] = strlen(key);
        for (size_t j = 0; j < k; j++) {
            argv[2 + 2 * j] = (const char *)e[i + j].key;
            argl[2 + 2 * j] = TOTALS_KEY;
            argv[3 + 2 * j] = (const char *)&e[i + j].count;
            argl[3 + 2 * j] = sizeof(totals_entry) - TOTALS_KEY;
        }
        rlink_argv(r->mix.jrl, key, NULL, NULL, (int)(2 + 2 * k), argv, argl);
    }
}

/* Takes a partner's totals from Redis (blocking, at a takeover). */
static void adopt_totals(relay *r, partner *pt) {
    char key[300], cur[32] = "0", err[300];
    pdns_buf got = {0};
    outbox_key_with(r, pt, ":totals", key, sizeof(key));
    do {
        const char *argv[] = {"HSCAN", key, cur, "COUNT", "1000"};
        size_t argl[5];
        for (int i = 0; i < 5; i++)
            argl[i] = strlen(argv[i]);
        redisReply *rep = rsync_argv(r->mix.snap, key, 5, argv, argl, err, sizeof(err));
        if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
            rep->element[0]->type != REDIS_REPLY_STRING ||
            rep->element[1]->type != REDIS_REPLY_ARRAY) {
            log_error("policy: partner %s: its totals in Redis (%s) cannot be read: %s",
                      pt->pol->partner, key, rep ? "not a scan" : err);
            freeReplyObject(rep);
            pdns_buf_free(&got);
            return;
        }
        snprintf(cur, sizeof(cur), "%s", rep->element[0]->str);
        const redisReply *kv = rep->element[1];
        for (size_t i = 0; i + 1 < kv->elements; i += 2) {
            totals_entry e;
            if (kv->element[i]->len != TOTALS_KEY ||
                kv->element[i + 1]->len != sizeof(e) - TOTALS_KEY)
                continue;
            memcpy(e.key, kv->element[i]->str, TOTALS_KEY);
            memcpy(&e.count, kv->element[i + 1]->str, sizeof(e) - TOTALS_KEY);
            pdns_buf_append(&got, &e, sizeof(e));
        }
        freeReplyObject(rep);
    } while (strcmp(cur, "0") != 0);
    share_adopt_totals(&r->sh, pt, (const totals_entry *)got.p, got.len / sizeof(totals_entry));
    pdns_buf_free(&got);
}

/* mixer.journal "redis" (a relay on several processes): a partner relay's
 * chain as taken (last sequence number and hash, "<seq> <hex>") is kept
 * in Redis beside the journal too, so that a partner reaching another
 * process (its first went away, or a balancer sent it there) has its
 * resends dropped there as well. A process reads every partner's before
 * it reads a new D4 connection, at its start and when it takes the lease,
 * and keeps the newer of Redis's and its own. */
static void partner_in_key(const relay *r, const relay_sensor *p, char *out, size_t n) {
    char what[96];
    snprintf(what, sizeof(what), "in:%s", p->name);
    mix_key(r->cfg.relay_id, what, out, n);
}

static void on_partner_taken(void *ctx, const relay_sensor *p) {
    static const char script[] =
        "local v = redis.call('GET', KEYS[1]) "
        "if v and tonumber(string.match(v, '^(%d+)')) >= tonumber(ARGV[1]) then return 0 end "
        "redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. ARGV[2]) return 1";
    relay *r = ctx;
    char key[200], seq[24], hex[2 * BATCH_HASH + 1];
    partner_in_key(r, p, key, sizeof(key));
    snprintf(seq, sizeof(seq), "%llu", (unsigned long long)p->in_seq);
    sodium_bin2hex(hex, sizeof(hex), p->in_chain, BATCH_HASH);
    rlink_command(r->mix.jrl, key, NULL, NULL, "EVAL %s 1 %s %s %s", script, key, seq, hex);
}

/* The partners' chains in an MGET reply: each one ahead of ours is taken. */
static void partners_adopt(relay *r, const redisReply *rep) {
    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements != r->cfg.n_partners_in)
        return;
    for (size_t i = 0; i < rep->elements; i++) {
        relay_sensor *p = &r->cfg.partners_in[i];
        const redisReply *v = rep->element[i];
        unsigned long long seq;
        char hex[80];
        uint8_t chain[BATCH_HASH];
        size_t got = 0;
        if (v->type != REDIS_REPLY_STRING || sscanf(v->str, "%llu %79s", &seq, hex) != 2 ||
            sodium_hex2bin(chain, sizeof(chain), hex, strlen(hex), NULL, &got, NULL) != 0 ||
            got != BATCH_HASH || (p->in_have && seq <= p->in_seq))
            continue;
        log_info("inbound: partner %s: batch %llu was taken by another process of the relay: "
                 "the chain goes on from there", p->name, seq);
        p->in_have = 1;
        p->in_seq = seq;
        memcpy(p->in_chain, chain, BATCH_HASH);
    }
}

/* The MGET of every partner's chain. */
typedef struct partners_mget {
    char (*keys)[200];
    const char **argv;
    size_t *argl;
    int argc;
} partners_mget;

static void mget_free(partners_mget *m) {
    free(m->keys);
    free(m->argv);
    free(m->argl);
}

/* Returns 0, or -1 when out of memory. */
static int mget_make(const relay *r, partners_mget *m) {
    size_t n = r->cfg.n_partners_in;
    m->keys = calloc(n, sizeof(*m->keys));
    m->argv = calloc(1 + n, sizeof(*m->argv));
    m->argl = calloc(1 + n, sizeof(*m->argl));
    if (!m->keys || !m->argv || !m->argl) {
        mget_free(m);
        return -1;
    }
    m->argv[0] = "MGET";
    m->argl[0] = 4;
    for (size_t i = 0; i < n; i++) {
        partner_in_key(r, &r->cfg.partners_in[i], m->keys[i], sizeof(m->keys[i]));
        m->argv[1 + i] = m->keys[i];
        m->argl[1 + i] = strlen(m->keys[i]);
    }
    m->argc = 1 + (int)n;
    return 0;
}

/* At the start and at a takeover (blocking). */
static void partners_read(relay *r) {
    partners_mget m;
    char err[300];
    if (mget_make(r, &m) < 0)
        return;
    redisReply *rep = rsync_argv(r->mix.snap, m.keys[0], m.argc, m.argv, m.argl, err,
                                 sizeof(err));
    if (!rep || rep->type != REDIS_REPLY_ARRAY)
        log_warn("inbound: the partners' chains in Redis cannot be read (%s): each "
                 "goes on from this process's state_dir",
                 rep && rep->type == REDIS_REPLY_ERROR ? rep->str : err);
    partners_adopt(r, rep);
    freeReplyObject(rep);
    mget_free(&m);
}

typedef struct held_conn {
    relay *r;
    uint64_t id;
} held_conn;

static void on_partners_read(redisAsyncContext *ac, void *reply, void *priv) {
    held_conn *h = priv;
    (void)ac;
    partners_adopt(h->r, reply);
    d4_listener_release(&h->r->d4, h->id);
    free(h);
}

/* A new D4 connection waits for the partners' chains (a partner's resends
 * may have been taken by another process). */
static void hold_d4(void *ctx, uint64_t id) {
    relay *r = ctx;
    held_conn *h = malloc(sizeof(*h));
    partners_mget m;
    int sent = 0;
    if (h && mget_make(r, &m) == 0) {
        *h = (held_conn){r, id};
        sent = rlink_argv(r->mix.jrl, m.keys[0], on_partners_read, h, m.argc, m.argv,
                          m.argl) == 0;
        mget_free(&m);
    }
    if (!sent) { /* Redis away: this process's own state */
        free(h);
        d4_listener_release(&r->d4, id);
    }
}

/* mixer.journal "redis": the pool may come from another machine, and so
 * may the chains. Each delivery partner's outbox remembers the last batch
 * appended ("<boot> <seq> <chain hash> <delay line place>", by the append
 * script; for a partner without an endpoint, a SET when it is published):
 * a chain state behind it (outbox_dir is new here) goes on from there, and
 * the delay line restored leaves out what had left, before the first
 * batch is made. */
static void adopt_chains(relay *r) {
    for (size_t i = 0; i < r->sh.np; i++) {
        partner *pt = &r->sh.p[i];
        if (r->cfg.ha_enabled) /* a takeover: a partner's totals can be many */
            ha_keep(&r->ha);
        char key[300], err[300];
        outbox_key_with(r, pt, ":last", key, sizeof(key));
        const char *argv[] = {"GET", key};
        size_t argl[] = {3, strlen(key)};
        redisReply *rep = rsync_argv(r->mix.snap, key, 2, argv, argl, err, sizeof(err));
        uint64_t seq, left_id;
        int64_t left_at;
        uint8_t chain[BATCH_HASH];
        int parsed = rep && rep->type == REDIS_REPLY_STRING &&
                     share_mark_read(rep->str, &seq, chain, &left_at, &left_id) == 0;
        if (!rep)
            log_warn("policy: partner %s: the last batch in its outbox could not be read "
                     "(%s): its chain goes on from %s", pt->pol->partner, err,
                     r->cfg.outbox_dir);
        if (parsed && share_adopt_chain(&r->sh, pt, seq, chain, left_at, left_id)) {
            if (pt->tot)
                adopt_totals(r, pt);
        } else if (pt->tot) { /* this process's totals are the partner's: Redis's copy */
            share_adopt_totals(&r->sh, pt, NULL, 0);
        }
        freeReplyObject(rep);
    }
}

/* What only the process that mixes runs: delivery to partners, and the
 * d4-core queues (one consumer: their processing lists are per relay).
 * Returns 0, or -1 (logged). */
static int start_delivery_and_queues(relay *r) {
    char err[1024];
    r->deliver = deliver_start(r->loop, &r->cfg, &r->sh, &r->stopping, err, sizeof(err));
    if (!r->deliver && err[0]) {
        log_error("run: cannot start delivery to partners: %s", err);
        return -1;
    }
    r->queue = queue_start(r->loop, &r->cfg, &r->in, r->storing ? &r->store : NULL,
                           &r->stopping, err, sizeof(err));
    if (!r->queue && err[0]) {
        log_error("run: cannot start the queue consumer: %s", err);
        return -1;
    }
    return 0;
}

/* ha: this process holds the lease now. It takes up the pool (the saved
 * one and the journal since) and the partners' chains, delivers, and
 * reads the d4-core queues. Any failure ends it (logged): the lease runs
 * out and another process takes over. */
static void on_lease(void *ctx) {
    relay *r = ctx;
    if (mix_take_over(&r->mix) < 0)
        _exit(3);
    if (r->cfg.n_partners_in) /* the d4-core queues may carry partners' batches */
        partners_read(r);
    adopt_chains(r);
    if (mix_resume(&r->mix) < 0)
        _exit(3);
    ha_keep(&r->ha);
    if (start_delivery_and_queues(r) < 0)
        _exit(3);
    sd_notify(0, "STATUS=holds the lease: mixing and delivering");
}

/* Every signed batch goes to its partner's delivery outbox; the open
 * stream takes those of its policy. */
static void on_published(void *ctx, const partner *pt, uint64_t seq, const uint8_t *chain,
                         const char *text, size_t len) {
    relay *r = ctx;
    /* the outbox remembers the chain hash and how far the delay line went */
    char mark[SHARE_MARK_MAX];
    share_mark(pt, chain, 1, mark);
    if (pt->pol->host[0]) {
        deliver_enqueue(r->deliver, pt->pol->partner, seq, mark, text, len);
    } else if (r->mix.jrl) {
        /* no outbox in Redis: its marker alone, for the next holder */
        char key[300], val[sizeof(mark) + 32];
        outbox_key_with(r, pt, ":last", key, sizeof(key));
        snprintf(val, sizeof(val), "- %llu %s", (unsigned long long)seq, mark);
        rlink_command(r->mix.jrl, key, NULL, NULL, "SET %s %s", key, val);
    }
    if (!r->streaming || strcmp(pt->pol->partner, r->st.policy) != 0)
        return;
    if (pt->pol->id_mode != POLICY_ID_RELAY &&
        pt->pol->id_mode != POLICY_ID_PSEUDONYM) {
        log_error("stream: policy %s must set sensor_id to \"relay\" or "
                  "\"pseudonym\" (open stream consumers need one); not published",
                  pt->pol->partner);
        return;
    }
    stream_publish(&r->st, seq, text, len);
}

static void on_policy_debounce(uv_timer_t *t) {
    relay *r = t->data;
    share_reload(&r->sh);
    deliver_sync(r->deliver);
}

/* A file in the policy directory changed: reload once things settle (an
 * editor writes a file in several steps). */
static void on_policy_change(uv_fs_event_t *h, const char *file, int events,
                             int status) {
    relay *r = h->data;
    (void)file;
    (void)events;
    if (status == 0)
        uv_timer_start(&r->policy_debounce, on_policy_debounce, 300, 0);
}

static void on_signal(uv_signal_t *h, int signum) {
    relay *r = h->data;
    if (signum == SIGHUP) {
        char err[1024];
        reload_all(r, err, sizeof(err));
        return;
    }
    if (r->stopping)
        return;
    log_info("signal %d: draining and stopping", signum);
    sd_notify(0, "STOPPING=1\nSTATUS=draining: the store, queue batches and deliveries");
    r->stopping = 1;
}

static struct lws_vhost *make_vhost(relay *r, int slot, const char *name,
                                    const struct lws_protocols *p, void *user,
                                    const cfg_addr *a, const char *cert,
                                    const char *key, int raw) {
    struct lws_context_creation_info vi;
    static const struct lws_protocols end = {NULL, NULL, 0, 0, 0, NULL, 0};
    struct lws_protocols *list = calloc(2, sizeof(*list));
    if (!list)
        return NULL;
    list[0] = *p;
    list[1] = end;
    memset(&vi, 0, sizeof(vi));
    vi.vhost_name = name;
    vi.port = a->port;
    vi.iface = a->host;
    vi.protocols = list;
    vi.user = user;
    if (strchr(a->host, ':') == NULL)
        vi.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
    if (cert && *cert) {
        vi.ssl_cert_filepath = cert;
        vi.ssl_private_key_filepath = key;
        vi.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    }
    if (raw) {
        vi.options |= LWS_SERVER_OPTION_ADOPT_APPLY_LISTEN_ACCEPT_CONFIG;
        vi.listen_accept_role = "raw-skt";
        vi.listen_accept_protocol = p->name;
    }
    struct lws_vhost *vh = lws_create_vhost(r->lws, &vi);
    if (!vh) {
        free(list);
        return NULL;
    }
    r->protocols[slot] = list;
    return vh;
}

/* ---- what the HTTP listener asks of the whole relay ---------------------- */

static int http_metrics(void *ctx, pdns_buf *b) {
    relay *r = ctx;
    if (ingest_metrics_render(&r->in, &r->cfg, b) < 0 ||
        mix_metrics(&r->mix, b) < 0 || share_metrics(&r->sh, b) < 0 ||
        deliver_metrics(r->deliver, b) < 0 || ha_metrics(&r->ha, b) < 0 ||
        http_auth_metrics(r->auth, b) < 0 ||
        (r->storing && store_metrics(&r->store, b) < 0))
        return -1;
    return 0;
}

static int http_stats(void *ctx, pdns_buf *b) {
    relay *r = ctx;
    char tmp[512];
    int n = snprintf(tmp, sizeof(tmp),
                     "{\"version\":\"%s\",\"relay_id\":\"%s\",\"uptime\":%" PRIu64
                     ",\"records\":%" PRIu64 ",\"sessions_active\":%" PRIu64
                     ",\"sensors\":[",
                     PDNS_RELAY_VERSION, r->cfg.relay_id,
                     (pdns_mono_ms() - r->started_ms) / 1000,
                     r->in.m.records[PDNS_SRC_D4] + r->in.m.records[PDNS_SRC_QUEUE],
                     r->in.m.d4_sessions_active);
    if (pdns_buf_append(b, tmp, (size_t)n) < 0)
        return -1;
    for (size_t i = 0; i < r->cfg.n_sensors; i++) {
        relay_sensor *s = &r->cfg.sensors[i];
        n = snprintf(tmp, sizeof(tmp),
                     "%s{\"name\":\"%s\",\"uuid\":\"%s\",\"records\":%" PRIu64
                     ",\"error_lines\":%" PRIu64 ",\"rejected\":%" PRIu64
                     ",\"frames\":%" PRIu64 ",\"bytes\":%" PRIu64 "}",
                     i ? "," : "", s->name, s->uuid_hex, s->records, s->errors,
                     s->rejected, s->frames, s->bytes);
        if (pdns_buf_append(b, tmp, (size_t)n) < 0)
            return -1;
    }
    return pdns_buf_append(b, "]}\n", 3);
}

/* Ready: not stopping, and the store's link up when there is a store. */
static int http_ready(void *ctx, char *why, size_t whylen) {
    relay *r = ctx;
    if (r->stopping) {
        snprintf(why, whylen, "stopping");
        return 0;
    }
    if (r->storing && !store_up(&r->store)) {
        if (!r->store.cluster && !rlink_ready(r->store.link))
            snprintf(why, whylen, "the store's Redis (%.64s:%d) is not connected",
                     r->cfg.store.host, r->cfg.store.port);
        else if (!rlink_ready(r->store.link))
            snprintf(why, whylen, "the store's Redis Cluster is not ready (a slot without a "
                     "master that is up)");
        else if (r->store.layout_bad)
            snprintf(why, whylen, "the %sstore was made with another store.shards "
                     "(see the log)", r->store.cluster ? "cluster's " : "");
        else
            snprintf(why, whylen, "the store's layout (st:layout) is not read yet "
                     "(see the log)");
        return 0;
    }
    return 1;
}

/* ---- what the console shows (console.h) --------------------------------- */

static void put_int(json_t *o, const char *k, uint64_t v) {
    json_object_set_new(o, k, json_integer((json_int_t)v));
}

/* A latency quantile in ms: null for none, ">5000" past the last bucket. */
static json_t *lat_json(double secs) {
    if (secs < 0)
        return json_null();
    return isinf(secs) ? json_string(">5000") : json_real(secs * 1000);
}

static json_t *console_sensors(const relay *r) {
    json_t *a = json_array();
    for (size_t i = 0; i < r->cfg.n_sensors; i++) {
        const relay_sensor *se = &r->cfg.sensors[i];
        json_t *o = json_object();
        json_object_set_new(o, "name", json_string(se->name));
        json_object_set_new(o, "uuid", json_string(se->uuid_hex));
        json_object_set_new(o, "org", json_string(se->org));
        put_int(o, "sessions", (uint64_t)(se->active_csv + se->active_ext));
        put_int(o, "records", se->records);
        put_int(o, "error_lines", se->errors);
        put_int(o, "rejected", se->rejected);
        put_int(o, "frames", se->frames);
        put_int(o, "bytes", se->bytes);
        json_object_set_new(o, "sample", json_string(se->sample));
        put_int(o, "last_seen_ms", (uint64_t)se->last_seen_ms);
        json_array_append_new(a, o);
    }
    return a;
}

static json_t *console_ingest(const relay *r) {
    const relay_metrics *m = &r->in.m;
    json_t *o = json_object(), *src = json_object(), *rej = json_object();
    uint64_t errors = 0;
    for (int k = 0; k < PDNS_SRC_COUNT; k++) {
        put_int(src, pdns_source_name((enum pdns_source)k), m->records[k]);
        errors += m->error_lines[k];
    }
    for (int res = 1; res < CSV_RESULT_COUNT; res++) {
        uint64_t n = 0;
        for (int k = 0; k < PDNS_SRC_COUNT; k++)
            n += m->csv_rejects[k][res];
        if (n)
            put_int(rej, csv_result_name((enum csv_result)res), n);
    }
    for (int k = 0; k < D4R_COUNT; k++)
        if (m->d4_rejects[k])
            put_int(rej, d4_reject_name((enum d4_reject)k), m->d4_rejects[k]);
    json_object_set_new(o, "records", src);
    json_object_set_new(o, "rejected", rej);
    put_int(o, "error_lines", errors);
    put_int(o, "sessions", m->d4_sessions_active);
    return o;
}

static json_t *console_mixer(const relay *r) {
    json_t *o = json_object();
    json_object_set_new(o, "enabled", json_boolean(r->mix.pool != NULL));
    if (!r->mix.pool)
        return o;
    const mixer_counters *mc = mixer_pool_counters(r->mix.pool);
    put_int(o, "pool_triples", mixer_pool_triples(r->mix.pool));
    put_int(o, "pool_bytes", mixer_pool_bytes(r->mix.pool));
    put_int(o, "inserted", mc->inserted);
    put_int(o, "released", mc->released);
    put_int(o, "batches", mc->batches);
    if (r->mix.last_ms) {
        const mixer_stats *st = &r->mix.last;
        json_object_set_new(o, "last_batch",
                            json_pack("{s:I,s:I,s:I,s:f,s:f,s:f}", "at_ms",
                                      (json_int_t)r->mix.last_ms, "size",
                                      (json_int_t)st->size, "sensors",
                                      (json_int_t)st->distinct_sensors, "entropy",
                                      st->entropy, "anonymity_set", st->anonymity_set,
                                      "min_entropy", st->min_entropy));
    }
    return o;
}

static json_t *console_partners(const relay *r) {
    json_t *a = json_array();
    for (size_t i = 0; i < r->sh.np; i++) {
        const partner *pt = &r->sh.p[i];
        if (!pt->pol)
            continue;
        json_t *o = json_object(), *den = json_object();
        json_object_set_new(o, "name", json_string(pt->pol->partner));
        json_object_set_new(o, "enabled", json_boolean(pt->pol->enabled));
        json_object_set_new(o, "description", json_string(pt->pol->description));
        json_object_set_new(o, "tlp", json_string(pt->pol->tlp));
        json_object_set_new(o, "version", json_string(pt->pol->version));
        put_int(o, "sent", pt->sent);
        put_int(o, "batches", pt->batches);
        put_int(o, "seq", pt->seq);
        json_object_set_new(o, "batch_version", json_string(pt->batch_version));
        put_int(o, "delayed", pt->delay ? delay_line_size(pt->delay) : 0);
        put_int(o, "rate_held", pt->rate_held);
        deliver_view dv;
        if (deliver_partner(r->deliver, pt->pol->partner, &dv) == 0) {
            json_object_set_new(o, "link", json_string(dv.up ? "up" : "down"));
            put_int(o, "outbox", dv.outbox);
            put_int(o, "unconfirmed", dv.unconfirmed);
            put_int(o, "reconnects", dv.reconnects);
        } else {
            json_object_set_new(o, "link", json_string("none"));
        }
        for (int v = 0; v < POLICY_VERDICT_COUNT; v++)
            if (pt->denied[v])
                put_int(den, policy_verdict_name((enum policy_verdict)v), pt->denied[v]);
        json_object_set_new(o, "denied", den);
        json_array_append_new(a, o);
    }
    return a;
}

static int console_state(void *ctx, pdns_buf *b) {
    relay *r = ctx;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    json_t *o = json_object(), *st = json_object();
    json_object_set_new(o, "relay_id", json_string(r->cfg.relay_id));
    json_object_set_new(o, "version", json_string(PDNS_RELAY_VERSION));
    put_int(o, "time_ms", (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000);
    put_int(o, "uptime_s", (pdns_mono_ms() - r->started_ms) / 1000);
    json_object_set_new(o, "ingest", console_ingest(r));
    json_object_set_new(o, "sensors", console_sensors(r));
    json_object_set_new(st, "enabled", json_boolean(r->storing));
    if (r->storing) {
        json_object_set_new(st, "connected", json_boolean(store_up(&r->store)));
        put_int(st, "stored", r->store.stored);
        put_int(st, "waiting", r->store.waiting);
        put_int(st, "batches", r->store.batches);
        put_int(st, "errors", r->store.errors);
        put_int(st, "set_aside", r->store.dead);
        if (r->triples >= 0) {
            put_int(st, "triples", (uint64_t)r->triples);
            put_int(st, "names", (uint64_t)r->names);
        }
        json_object_set_new(st, "write_p50_ms", lat_json(r->lat_p50));
        json_object_set_new(st, "write_p99_ms", lat_json(r->lat_p99));
    }
    json_object_set_new(o, "store", st);
    json_object_set_new(o, "mixer", console_mixer(r));
    json_object_set_new(o, "partners", console_partners(r));
    return pdns_buf_json(b, o);
}

static int console_history(void *ctx, pdns_buf *b) {
    relay *r = ctx;
    if (pdns_buf_printf(b, "{\"interval_s\":%d,\"samples\":[", HIST_EVERY_MS / 1000) < 0)
        return -1;
    for (size_t i = 0; i < r->hist_n; i++) {
        const struct sample *x = &r->hist[(r->hist_head + i) % HIST_SAMPLES];
        if (pdns_buf_printf(b, "%s{\"at_ms\":%" PRId64 ",\"records\":%" PRIu64
                               ",\"rejected\":%" PRIu64 ",\"stored\":%" PRIu64
                               ",\"pool\":%" PRIu64 ",\"sent\":%" PRIu64 "}",
                            i ? "," : "", x->at_ms, x->records, x->rejected, x->stored,
                            x->pool, x->sent) < 0)
            return -1;
    }
    return pdns_buf_printf(b, "]}\n");
}

static int console_reload(void *ctx, char *err, size_t errlen) {
    return reload_all(ctx, err, errlen);
}

static int console_policy_list(void *ctx, pdns_buf *b) {
    return edit_list(&((relay *)ctx)->edit, b);
}

static int console_policy_get(void *ctx, const char *name, pdns_buf *b) {
    return edit_get(&((relay *)ctx)->edit, name, b);
}

static int console_policy_history(void *ctx, const char *name, pdns_buf *b) {
    return edit_history(&((relay *)ctx)->edit, name, b);
}

static int console_policy_check(void *ctx, const char *name, const char *text, size_t len,
                                pdns_buf *b) {
    return edit_check(&((relay *)ctx)->edit, name, text, len, b);
}

static int console_policy_preview(void *ctx, const char *name, const char *text, size_t len,
                                  const char *explain, pdns_buf *b) {
    return edit_preview(&((relay *)ctx)->edit, name, text, len, explain, b);
}

/* Every record the mixer takes: journalled, and kept for the preview. */
static void on_mixer_input(void *ctx, const pdns_record *r, uint16_t source, int64_t now_ms) {
    relay *rl = ctx;
    mix_journal(&rl->mix, r, source, now_ms);
    recent_add(&rl->recent, r, source, now_ms);
}

static int console_policy_apply(void *ctx, const char *name, const char *text, size_t len,
                                const char *who, const char *comment, pdns_buf *b) {
    return edit_apply(&((relay *)ctx)->edit, name, text, len, who, comment, b);
}

static int console_policy_decide(void *ctx, const char *name, int approve, const char *version,
                                 const char *who, pdns_buf *b) {
    return edit_decide(&((relay *)ctx)->edit, name, approve, version, who, b);
}

static void lws_log_to_ours(int level, const char *line) {
    size_t n = strlen(line);
    while (n && line[n - 1] == '\n')
        n--;
    if (level & LLL_ERR)
        log_error("lws: %.*s", (int)n, line);
    else
        log_debug("lws: %.*s", (int)n, line);
}

int cmd_run(int argc, char **argv) {
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"d4-listen", required_argument, NULL, 'd'},
        {"http-listen", required_argument, NULL, 'H'},
        {"redis", required_argument, NULL, 'r'},
        {"output", required_argument, NULL, 'o'},
        {"log-level", required_argument, NULL, 'l'},
        {NULL, 0, NULL, 0}};
    const char *conf = NULL, *d4 = NULL, *http = NULL, *redis = NULL,
               *output = NULL, *level = NULL;
    static relay r;
    char err[1024];
    int opt, rc = 1;

    optind = 1;
    while ((opt = getopt_long(argc, argv, "c:", opts, NULL)) != -1) {
        switch (opt) {
        case 'c': conf = optarg; break;
        case 'd': d4 = optarg; break;
        case 'H': http = optarg; break;
        case 'r': redis = optarg; break;
        case 'o': output = optarg; break;
        case 'l': level = optarg; break;
        default:
            fputs(cmd_run_help, stderr);
            return 2;
        }
    }
    if (!conf) {
        fprintf(stderr, "run: -c CONFIG is required\n\n%s", cmd_run_help);
        return 2;
    }
    if (config_load(&r.cfg, conf, err, sizeof(err)) < 0) {
        fprintf(stderr, "run: %s\n", err);
        return 1;
    }
    if ((d4 && config_parse_addr(d4, &r.cfg.d4_listen) < 0) ||
        (http && config_parse_addr(http, &r.cfg.http_listen) < 0)) {
        fprintf(stderr, "run: listen addresses are HOST:PORT or [V6]:PORT\n");
        goto out_cfg;
    }
    if (redis) {
        int kind = rlink_url_kind(redis);
        if (kind < 0 || (kind == 0 && config_parse_redis_url(redis, &r.cfg.redis,
                                                             &r.cfg.redis_db) < 0)) {
            fprintf(stderr, "run: --redis wants " CFG_REDIS_URL_FORMS "\n");
            goto out_cfg;
        }
        /* the store follows the relay's Redis unless it has its own */
        if (strcmp(r.cfg.store.url, r.cfg.redis_url) == 0)
            config_store_redis(&r.cfg, redis);
        snprintf(r.cfg.redis_url, sizeof(r.cfg.redis_url), "%s", redis);
    }
    if (output)
        snprintf(r.cfg.output_file, sizeof(r.cfg.output_file), "%s", output);
    if (level && log_level_parse(level, &r.cfg.log_level) < 0) {
        fprintf(stderr, "run: --log-level wants debug, info, warn or error\n");
        goto out_cfg;
    }
    log_set_level(r.cfg.log_level);
    signal(SIGPIPE, SIG_IGN);
    r.started_ms = pdns_mono_ms();
    r.lat_p50 = r.lat_p99 = -1;
    r.triples = r.names = -1;
    /* The start order: signals, then the stages and the links to the
     * stores, then the listeners, then "ready". A SIGHUP or SIGTERM that
     * arrives at any point is handled, once the loop runs. */
    if (ingest_init(&r.in, r.cfg.output_file, r.cfg.keep_errors) < 0) {
        fprintf(stderr, "run: output file %s: %s\n", r.cfg.output_file,
                strerror(errno));
        goto out_cfg;
    }
    r.started_ms = pdns_mono_ms();
    for (size_t i = 0; i < r.cfg.n_partners_in; i++)
        inbound_load_state(&r.cfg.partners_in[i], r.cfg.state_dir);
    last_stats_ms = r.started_ms;

    r.loop = malloc(sizeof(uv_loop_t));
    uv_loop_init(r.loop);
    uv_signal_init(r.loop, &sig_term);
    uv_signal_init(r.loop, &sig_int);
    uv_signal_init(r.loop, &sig_hup);
    sig_term.data = sig_int.data = sig_hup.data = &r;
    uv_signal_start(&sig_term, on_signal, SIGTERM);
    uv_signal_start(&sig_int, on_signal, SIGINT);
    uv_signal_start(&sig_hup, on_signal, SIGHUP);
    uv_timer_init(r.loop, &tick);
    tick.data = &r;
    uv_timer_init(r.loop, &r.policy_debounce);
    r.policy_debounce.data = &r;

    if (r.cfg.ha_enabled) {
        /* a checkpoint goes through only while this process holds the lease */
        r.mix.fence_key = r.ha.key;
        r.mix.fence_val = r.ha.val;
        r.mix.keep = ha_keep; /* a long takeover keeps the lease */
        r.mix.keep_ctx = &r.ha;
    }
    lws_set_log_level(getenv("PDNS_LWS_DEBUG") ? 0xfff : (LLL_ERR | LLL_WARN), lws_log_to_ours);
    struct lws_context_creation_info info;
    void *foreign[1] = {r.loop};
    memset(&info, 0, sizeof(info));
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.options = LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_EXPLICIT_VHOSTS |
                   LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    info.foreign_loops = foreign;
    /* Read whole TLS records (up to 16 KiB) at once. With lws's default
     * 4 KiB read buffer the rest of a record waits inside OpenSSL, where
     * the libuv loop cannot see it: the end of a burst would sit there
     * until the sensor sends again. */
    info.pt_serv_buf_size = 64 * 1024;
    info.user = &r;
    r.lws = lws_create_context(&info);
    if (!r.lws) {
        log_error("run: cannot create the lws context (is "
                  "libwebsockets-evlib-uv installed?)");
        goto out_loop;
    }
    r.auth = http_auth_new(r.loop, r.cfg.http_auth_file, r.cfg.http_anonymous,
                           r.cfg.http_rate, r.cfg.http_burst, err, sizeof(err));
    if (!r.auth) {
        log_error("run: http.auth_file: %s", err);
        goto out_lws;
    }
    http_auth_set_proxies(r.auth, r.cfg.http_proxies);
    if (r.cfg.admin_enabled && r.cfg.admin_console) {
        /* console users sign in with a password: no anonymous access, and
         * a small rate (it is only asked at sign-in) */
        if (r.cfg.admin_auth_file[0] &&
            !(r.admin_auth = http_auth_new(r.loop, r.cfg.admin_auth_file, 0, 5, 20, err,
                                           sizeof(err)))) {
            log_error("run: admin.auth_file: %s", err);
            goto out_lws;
        }
        r.edit.cfg = &r.cfg;
        r.edit.sh = &r.sh;
        recent_init(&r.recent, (size_t)r.cfg.admin_preview_mib << 20, RECENT_AGE_MS);
        r.edit.recent = r.cfg.admin_preview_mib ? &r.recent : NULL;
        console_hooks hooks = {console_state,          console_history,        console_reload,
                               console_policy_list,    console_policy_get,
                               console_policy_history, console_policy_check,
                               console_policy_apply,   console_policy_preview,
                               console_policy_decide,  &r};
        if (!(r.console = console_new(r.loop, r.admin_auth, &hooks))) {
            log_error("run: out of memory");
            goto out_lws;
        }
    }
    if (mix_start(&r.mix, &r.cfg, &r.sh, r.loop, &r.stopping) < 0) {
        log_error("run: cannot start the mixer");
        goto out_lws;
    }
    /* in Redis, the pool takes its input from the journal stream */
    r.in.mix = r.mix.snap ? NULL : r.mix.pool;
    r.in.mix_log = r.mix.pool ? on_mixer_input : NULL;
    r.in.mix_log_ctx = &r;
    if (share_start(&r.sh, &r.cfg) < 0) {
        log_error("run: cannot start the policy stage");
        goto out_lws;
    }
    if (r.mix.snap && !r.cfg.ha_enabled) /* before the first batch */
        adopt_chains(&r);
    if (!r.cfg.ha_enabled && mix_resume(&r.mix) < 0)
        goto out_lws;
    r.sh.published = on_published;
    r.sh.totals_written = on_totals_written;
    r.sh.published_ctx = &r;
    r.in.relay_id = r.cfg.relay_id;
    if (r.cfg.policy_dir[0]) {
        r.in.source_for = source_for;
        r.in.source_ctx = &r.sh;
    }
    if (r.mix.snap && r.cfg.n_partners_in) {
        partners_read(&r);
        r.in.partner_taken = on_partner_taken;
        r.in.partner_ctx = &r;
    }
    if (r.cfg.store.enabled) {
        if (store_init(&r.store, &r.cfg.store, r.loop, r.cfg.relay_id,
                       &r.stopping) < 0) {
            log_error("run: cannot start the store");
            goto out_lws;
        }
        r.storing = 1;
        r.store.on_drain = on_store_drain;
        r.store.on_acked = on_store_acked;
        r.store.ctx = &r;
        r.in.store = &r.store;
    }
    if (r.cfg.stream_policy[0]) {
        stream_limits lim = {r.cfg.stream_client_bytes, r.cfg.stream_history,
                             r.cfg.stream_clients, r.cfg.stream_clients_per_addr,
                             r.cfg.stream_replay_bytes};
        stream_init(&r.st, r.cfg.stream_policy, &lim);
        r.streaming = 1;
    }
    if (r.cfg.policy_dir[0]) {
        uv_fs_event_init(r.loop, &r.policy_watch);
        r.policy_watch.data = &r;
        if (uv_fs_event_start(&r.policy_watch, on_policy_change,
                              r.cfg.policy_dir, 0) == 0)
            r.policy_watching = 1;
        else
            log_warn("policy: cannot watch %s; reload with SIGHUP",
                     r.cfg.policy_dir);
    }
    /* with ha, once this process holds the lease */
    if (!r.cfg.ha_enabled && start_delivery_and_queues(&r) < 0)
        goto out_lws;

    /* listeners last: nothing outside reaches the relay before it can
     * answer for itself */
    d4_listener_init(&r.d4, &r.cfg, &r.in, r.storing ? &r.store : NULL);
    if (r.mix.snap && r.cfg.n_partners_in) {
        r.d4.hold = hold_d4;
        r.d4.hold_ctx = &r;
    }
    r.query.st = r.storing ? &r.store : NULL;
    r.query.conf = &r.cfg.store;
    r.query.relay_id = r.cfg.relay_id;
    r.query.auth = r.auth;
    r.http.query = &r.query;
    r.http.st = r.streaming ? &r.st : NULL;
    r.http.metrics = http_metrics;
    r.http.stats = http_stats;
    r.http.ready = http_ready;
    r.http.ctx = &r;
    if (r.cfg.d4_enabled &&
        !make_vhost(&r, 0, "d4", &d4_listener_protocol, &r.d4, &r.cfg.d4_listen,
                    r.cfg.tls_cert, r.cfg.tls_key, 1)) {
        log_error("run: cannot listen for D4 on %s:%d (TLS cert %s, key %s)",
                  r.cfg.d4_listen.host, r.cfg.d4_listen.port, r.cfg.tls_cert,
                  r.cfg.tls_key);
        goto out_lws;
    }
    if (r.cfg.http_enabled &&
        !make_vhost(&r, 1, "http", &http_api_protocol, &r.http, &r.cfg.http_listen,
                    r.cfg.http_tls_cert, r.cfg.http_tls_key, 0)) {
        log_error("run: cannot listen for HTTP%s on %s:%d",
                  r.cfg.http_tls_cert[0] ? "S" : "", r.cfg.http_listen.host,
                  r.cfg.http_listen.port);
        goto out_lws;
    }
    r.admin = r.http;
    r.admin.admin = 1;
    r.admin.console = r.console;
    if (r.cfg.admin_enabled &&
        !make_vhost(&r, 2, "admin", &http_api_protocol, &r.admin, &r.cfg.admin_listen,
                    NULL, NULL, 0)) {
        log_error("run: cannot listen for the admin endpoints on %s:%d (admin.listen)",
                  r.cfg.admin_listen.host, r.cfg.admin_listen.port);
        goto out_lws;
    }
    warn_exposure(&r.cfg);
    if (r.streaming)
        log_info("stream: publishing policy %s on ws://%s:%d/stream",
                 r.cfg.stream_policy, r.cfg.http_listen.host, r.cfg.http_listen.port);
    uv_timer_start(&tick, on_tick, STORE_TICK_MS, STORE_TICK_MS);
    if (r.cfg.ha_enabled && ha_start(&r.ha, &r.cfg, r.loop, &r.stopping, on_lease, &r) < 0)
        goto out_lws;
    log_listening(&r);
    uv_run(r.loop, UV_RUN_DEFAULT);
    rc = 0;

    log_stats(&r);
    d4_listener_stopping(&r.d4);
out_lws:
    deliver_stop(r.deliver);
    queue_stop(r.queue);
    mix_stop(&r.mix);
    if (r.cfg.ha_enabled)
        ha_stop(&r.ha); /* after the pool's last checkpoint */
    r.in.mix = NULL;
    r.in.mix_log = NULL;
    share_stop(&r.sh);
    if (r.policy_watching)
        uv_close((uv_handle_t *)&r.policy_watch, NULL);
    if (r.storing)
        store_stop(&r.store);
    lws_context_destroy(r.lws);
    console_free(r.console);
    if (r.streaming)
        stream_free(&r.st);
out_loop:
    uv_close((uv_handle_t *)&r.policy_debounce, NULL);
    uv_close((uv_handle_t *)&sig_term, NULL);
    uv_close((uv_handle_t *)&sig_int, NULL);
    uv_close((uv_handle_t *)&sig_hup, NULL);
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(r.loop, UV_RUN_DEFAULT);
    deliver_free(r.deliver);
    queue_free(r.queue);
    mix_free(&r.mix);
    ha_free(&r.ha);
    if (r.storing)
        store_free(&r.store);
    http_auth_free(r.auth);
    http_auth_free(r.admin_auth);
    recent_free(&r.recent);
    uv_loop_close(r.loop);
    free(r.protocols[0]);
    free(r.protocols[1]);
    free(r.protocols[2]);
    free(r.loop);
    ingest_close(&r.in);
    if (rc == 0)
        log_info("stopped");
out_cfg:
    config_free(&r.cfg);
    return rc;
}
