/* deliver.c - delivery of signed batches to partner D4 networks.
 *
 * Every batch made for a partner whose policy has an endpoint is appended
 * to that partner's durable outbox, a Redis Stream
 * "{pdns-relay:<relay_id>:<partner>}:outbox" (one key per partner, so that
 * delivery can move between relay processes on a cluster). A D4 protocol
 * v1 client (TLS over libuv TCP, on the relay's loop) sends a type-2
 * meta header {"type": "pdns-cof"} and then each batch as type-254 frames
 * cut at line ends, each frame small enough to be one TLS record.
 *
 * A batch leaves the stream once the partner has it: once the partner's
 * TCP has acknowledged its last byte (TCP_INFO tcpi_bytes_acked, counted
 * against the bytes this connection wrote) and the connection then stayed
 * up for ACK_GRACE_MS, or when this relay closes the connection itself
 * (it stops): the partner goes on reading what it acknowledged. A link the
 * partner ends leaves the batches acknowledged within the grace in the
 * stream: they may sit unread in a socket the receiver closed, or a D4 hop
 * on the way may have dropped them. A new connection starts again from the
 * oldest batch still in the stream: after clean restarts of either side
 * nothing is sent twice (unless the receiver stops within ACK_GRACE_MS of
 * taking a batch), which matters to receivers that do not deduplicate
 * (d4-core, and the analyzer behind it); after a crash, at most what was
 * in flight is (a pdns-relay receiver drops those by sequence number). At most KEEP_SENT batches are
 * written and not yet confirmed. A relay killed with SIGKILL resumes from
 * Redis; the batches its outbox file holds after the last one Redis has
 * (a kill before the append left, or while Redis was away) are appended
 * from the file when the link comes up (catch_up). Reconnects back off
 * exponentially with jitter. */
#include <hiredis/async.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <hiredis/hiredis.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "cof.h"
#include "d4.h"
#include "deliver.h"
#include "log.h"
#include "rconn.h"
#include "rlink.h"
#include "rrtype.h"

#define KEEP_SENT 64      /* batches written and not yet confirmed */
#define PENDING_MAX (64u << 20) /* bytes of batches a partner may have waiting for Redis */
#define WAIT_MS 2000            /* on a cluster: how long a replica may take to have a batch */
#define ACK_GRACE_MS 1000 /* acknowledged, and the link stayed up this long */
#define ACK_POLL_MS 100
#define BACKOFF_MAX_MS 30000  /* partner reconnects */

typedef struct dpartner {
    struct deliver *d;
    SSL_CTX *ctx;                 /* trusts this partner's CA only */
    uint8_t pin[32];              /* endpoint.pin_sha256 */
    int have_pin;
    char name[64];
    char host[256];
    int port;
    int insecure;
    d4_header h;
    uint8_t *key;
    size_t keylen;
    uint32_t frame_max;
    char skey[256];               /* the Redis Stream */
    char mkey[272];               /* the last batch appended (same slot) */
    uv_tcp_t tcp;
    uv_connect_t creq;
    SSL *ssl;
    BIO *rbio, *wbio;
    int tcp_open, closing, handshaken;
    int up, meta_sent;
    /* the batch being written */
    char cur_id[48];
    pdns_buf cur;
    size_t cur_off;
    int have_cur, fetching;
    char last_id[48];             /* the last batch written ("": none yet) */
    struct {
        char id[48];
        uint64_t seq;
        uint64_t end;             /* the connection's byte count at its end */
        uint64_t acked_ms;        /* when first seen acknowledged, 0: not yet */
    } sent[KEEP_SENT];            /* written, not yet confirmed */
    size_t nsent;
    uint64_t wrote;               /* bytes this connection handed to the kernel */
    uv_timer_t ack_timer;
    uint64_t resent;              /* batches sent again after a reconnect */
    uint64_t cur_seq;
    int acks;                     /* the receiver acknowledges batches (a pdns-relay) */
    char rx[128];                 /* what the receiver wrote back, one line */
    size_t rxn;
    uint64_t backoff_ms;
    uv_timer_t timer;
    uint64_t batches_sent, batches_confirmed, reconnects, queued;
    uint64_t outbox_max, outbox_refused, outbox_dropped, full_logged_ms;
    uint64_t outbox_len;          /* batches in the outbox, as last seen */
    uint64_t pend_n;              /* of those below, made while Redis was away */
    int catching;                 /* the outbox file's batches that never reached
                                   * Redis are being appended: new ones wait */
    uint64_t file_upto;           /* the last of them */
    struct ubatch *uhead, **utail; /* not yet confirmed in Redis, oldest first: made
                                   * while it was away, or appended and not confirmed;
                                   * (again, idempotently) appended when the link is up */
    size_t ubytes;
    uint64_t unconf_n, unreplicated;
    int drop_oldest;
    int csv;                      /* format passivedns-csv: type 8, unsigned */
    int held;                     /* its policy is disabled or expired */
    uint8_t csv_rr[8192];         /* the rrtypes it takes */
    uint64_t csv_skipped[2];      /* records not sent, by enum csv_skip */
} dpartner;

struct deliver {
    uv_loop_t *loop;
    const relay_config *cfg;
    share *sh;
    const int *stopping;
    rlink *rl;                    /* the relay's own Redis (or cluster): the outboxes */
    char boot[20];                /* this run: appends are idempotent within it */
    int rc_started;
    dpartner **p;                 /* pointers: handles inside must not move */
    size_t n;
};

static void kick(dpartner *dp);
static void send_next(dpartner *dp);

/* ---- Redis ------------------------------------------------------------------ */

static void on_xlen(redisAsyncContext *ac, void *reply, void *priv) {
    redisReply *rep = reply;
    (void)ac;
    if (rep && rep->type == REDIS_REPLY_INTEGER)
        ((dpartner *)priv)->outbox_len = (uint64_t)rep->integer;
}

static void catch_up(dpartner *dp);

static void on_ready(void *ctx) {
    deliver *d = ctx;
    for (size_t i = 0; i < d->n; i++) {
        rlink_command(d->rl, d->p[i]->skey, on_xlen, d->p[i], "XLEN %s", d->p[i]->skey);
        catch_up(d->p[i]);
        kick(d->p[i]);
    }
}

static void on_down(void *ctx) {
    deliver *d = ctx;
    for (size_t i = 0; i < d->n; i++)
        d->p[i]->fetching = 0;
}

/* ---- the outbox -------------------------------------------------------------- */

/* Appends a batch unless the outbox is full; when full, the policy says
 * whether the new batch is refused or the oldest dropped. Two keys with
 * one hash tag (the stream and the last seq appended in this run): it runs
 * unchanged on a cluster, and a batch sent again after a lost reply or a
 * failover is not added twice. Returns {r, batches in the outbox now}: r 1
 * (added), 0 (refused), 2 (added, the oldest dropped), 3 (there already). */
static const char append_script[] =
    "local m = redis.call('GET', KEYS[2])\n"
    "if m then\n"
    "  local b, q = string.match(m, '^(%S+) (%d+)')\n"
    "  if b == ARGV[5] and tonumber(q) >= tonumber(ARGV[1]) then\n"
    "    return {3, redis.call('XLEN', KEYS[1])}\n"
    "  end\n"
    "end\n"
    "local n = redis.call('XLEN', KEYS[1])\n"
    "local r = 1\n"
    "if n >= tonumber(ARGV[3]) then\n"
    "  if ARGV[4] ~= '1' then return {0, n} end\n"
    "  local old = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', n - tonumber(ARGV[3]) + 1)\n"
    "  for _, e in ipairs(old) do redis.call('XDEL', KEYS[1], e[1]) end\n"
    "  r = 2\n"
    "end\n"
    "redis.call('XADD', KEYS[1], '*', 'seq', ARGV[1], 'batch', ARGV[2])\n"
    "redis.call('SET', KEYS[2], ARGV[5] .. ' ' .. ARGV[1] .. ' ' .. ARGV[6])\n"
    "return {r, redis.call('XLEN', KEYS[1])}\n";

/* One append in flight: its batch is confirmed by the EVAL's reply (one
 * Redis) or the WAIT's after it (a cluster), whichever comes last frees it. */
typedef struct append_ctx {
    dpartner *dp;
    uint64_t seq;
    int refs;
    int wait;   /* a WAIT follows: the master has a replica */
} append_ctx;

static void append_release(append_ctx *a) {
    if (--a->refs == 0)
        free(a);
}

/* A batch not confirmed in Redis yet. Beyond PENDING_MAX bytes a partner,
 * an appended one keeps only its seq (not sent again: it is in the outbox
 * file). */
typedef struct ubatch {
    struct ubatch *next;
    uint64_t seq;
    size_t len;
    int kept;
    char chain[128];  /* its chain hash, hex, and its delay line place: the
                       * outbox remembers the last */
    char text[];
} ubatch;

/* PENDING_MAX, or PDNS_RELAY_PENDING_MAX bytes (docs/hacking.md: the
 * tests of what goes beyond it) */
static size_t pending_max(void) {
    static size_t max;
    if (!max) {
        const char *e = getenv("PDNS_RELAY_PENDING_MAX");
        max = e && atol(e) > 0 ? (size_t)atol(e) : PENDING_MAX;
    }
    return max;
}

static int unconf_fits(const dpartner *dp, size_t len) {
    return dp->ubytes + len <= pending_max();
}

static void unconf_push(dpartner *dp, uint64_t seq, const char *chain, const char *text,
                        size_t len) {
    int keep = unconf_fits(dp, len);
    ubatch *u = malloc(sizeof(*u) + (keep ? len : 0));
    if (!u && keep)
        u = malloc(sizeof(*u)), keep = 0;
    if (!u)
        return; /* its confirmation then finds nothing: harmless */
    u->next = NULL;
    u->seq = seq;
    snprintf(u->chain, sizeof(u->chain), "%s", chain);
    u->kept = keep;
    u->len = keep ? len : 0;
    if (keep)
        memcpy(u->text, text, len);
    if (!dp->utail)
        dp->utail = &dp->uhead;
    *dp->utail = u;
    dp->utail = &u->next;
    dp->ubytes += u->len;
    dp->unconf_n++;
}

/* Takes the whole list (oldest first); the partner's is left empty. */
static ubatch *unconf_take(dpartner *dp) {
    ubatch *u = dp->uhead;
    dp->uhead = NULL;
    dp->utail = &dp->uhead;
    dp->ubytes = 0;
    dp->unconf_n = 0;
    return u;
}

/* Batch seq is in Redis (and a replica): its oldest entry goes. */
static void unconf_drop(dpartner *dp, uint64_t seq) {
    for (ubatch **pp = &dp->uhead; *pp; pp = &(*pp)->next) {
        ubatch *u = *pp;
        if (u->seq != seq)
            continue;
        *pp = u->next;
        if (dp->utail == &u->next)
            dp->utail = pp;
        dp->ubytes -= u->len;
        dp->unconf_n--;
        free(u);
        return;
    }
}

/* On a cluster a batch is confirmed once a replica has it too (WAIT): an
 * append the master acknowledged but never replicated before it died is
 * sent again to the replica that took over. A replica that does not
 * answer within the timeout: confirmed anyway, and counted. */
static void on_wait(redisAsyncContext *ac, void *reply, void *priv) {
    append_ctx *a = priv;
    redisReply *rep = reply;
    (void)ac;
    if (rep) { /* else the master went away: sent again once the link is back */
        if (rep->type != REDIS_REPLY_INTEGER || rep->integer < 1)
            a->dp->unreplicated++;
        unconf_drop(a->dp, a->seq);
    }
    append_release(a);
}

static void on_xadd(redisAsyncContext *ac, void *reply, void *priv) {
    append_ctx *a = priv;
    dpartner *dp = a->dp;
    redisReply *rep = reply;
    (void)ac;
    if (rep && !a->wait)
        unconf_drop(dp, a->seq);
    append_release(a);
    if (!rep)
        return; /* Redis went away: sent again once it is back */
    if (rep->type == REDIS_REPLY_ERROR) {
        log_error("deliver: partner %s: outbox append failed: %s (the batch is in the "
                  "outbox file)", dp->name, rep->str);
        return;
    }
    long long r = 1;
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
        rep->element[0]->type == REDIS_REPLY_INTEGER &&
        rep->element[1]->type == REDIS_REPLY_INTEGER) {
        r = rep->element[0]->integer;
        dp->outbox_len = (uint64_t)rep->element[1]->integer;
    }
    if (r != 1 && r != 3) {
        if (r == 0)
            dp->outbox_refused++;
        else
            dp->outbox_dropped++;
        if (pdns_mono_ms() - dp->full_logged_ms >= 60000) {
            log_warn("deliver: partner %s: outbox full (%llu batches): %s", dp->name,
                     (unsigned long long)dp->outbox_max,
                     r == 0 ? "new batches are refused (counted)"
                                       : "the oldest batches are dropped (counted)");
            dp->full_logged_ms = pdns_mono_ms();
        }
    }
    kick(dp);
}

/* Compatibility mode: a batch becomes passivedns CSV lines (default
 * layout) for a d4-core + analyzer-d4-passivedns that take only type 8.
 * No trailer, so no signature: documented as such. Addresses, which never
 * leave the relay, are 0.0.0.0; the TTL, which COF does not carry, is 0.
 * The analyzer loses a line it cannot parse and its ingester stops, so a
 * record that could not be read back is not sent: one whose name or rdata
 * holds the separator (or a line end), or whose rrtype the receiver does
 * not take (endpoint.rrtypes); each is counted by reason. Names get their
 * trailing dot as passivedns prints them; the root stays ".". */
enum csv_skip { CSV_SKIP_RRTYPE, CSV_SKIP_SEPARATOR, CSV_SKIP_COUNT };
static const char *const csv_skip_name[CSV_SKIP_COUNT] = {"rrtype", "separator"};

struct csv_out {
    pdns_buf *b;
    dpartner *dp;
};

static int csv_unsafe(const char *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i] == '\n' || p[i] == '\r' || (p[i] == '|' && i + 1 < n && p[i + 1] == '|'))
            return 1;
    return n && p[n - 1] == '|'; /* "x|" + "||" would read as "x" + "|||" */
}

static int csv_line(void *ctx, const pdns_record *r) {
    struct csv_out *o = ctx;
    char t[16];
    if (!((o->dp->csv_rr[r->rrtype >> 3] >> (r->rrtype & 7)) & 1)) {
        o->dp->csv_skipped[CSV_SKIP_RRTYPE]++;
        return 0;
    }
    if (csv_unsafe(r->rrname.p, r->rrname.len) || csv_unsafe(r->rdata.p, r->rdata.len)) {
        o->dp->csv_skipped[CSV_SKIP_SEPARATOR]++;
        return 0;
    }
    pdns_rrtype_format(r->rrtype, t, sizeof(t));
    int dot = pdns_rrtype_rdata_is_name(r->rrtype) && r->rdata.len &&
              r->rdata.p[r->rdata.len - 1] != '.';
    int ndot = r->rrname.len && r->rrname.p[r->rrname.len - 1] != '.';
    return pdns_buf_printf(o->b, "%lld.000000||0.0.0.0||0.0.0.0||IN||%.*s%s||%s||%.*s%s||0||%llu\n",
                           (long long)r->time_last, (int)r->rrname.len, r->rrname.p,
                           ndot ? "." : "", t, (int)r->rdata.len, r->rdata.p,
                           dot ? "." : "", (unsigned long long)r->count);
}

static int batch_to_csv(dpartner *dp, const char *text, size_t len, pdns_buf *out) {
    const char *p = text, *end = text + len;
    pdns_record init;
    char err[256];
    struct csv_out o = {out, dp};
    memset(&init, 0, sizeof(init));
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (n && !batch_is_trailer(p, n) &&
            cof_decode(p, n, &init, csv_line, &o, err, sizeof(err)) < 0)
            return -1;
        p += n + 1;
    }
    return 0;
}

static void on_fetch(redisAsyncContext *ac, void *reply, void *priv) {
    dpartner *dp = priv;
    redisReply *rep = reply;
    (void)ac;
    dp->fetching = 0;
    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements == 0 || !dp->up)
        return;
    redisReply *e = rep->element[0];
    if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
        e->element[1]->type != REDIS_REPLY_ARRAY)
        return;
    redisReply *f = e->element[1];
    for (size_t i = 0; i + 1 < f->elements; i += 2)
        if (strcmp(f->element[i]->str, "batch") == 0) {
            dp->cur.len = 0;
            if (dp->csv ? batch_to_csv(dp, f->element[i + 1]->str, f->element[i + 1]->len, &dp->cur) < 0
                        : pdns_buf_append(&dp->cur, f->element[i + 1]->str,
                                          f->element[i + 1]->len) < 0)
                return;
            snprintf(dp->cur_id, sizeof(dp->cur_id), "%s", e->element[0]->str);
            dp->cur_seq = 0;
            for (size_t j = 0; j + 1 < f->elements; j += 2)
                if (strcmp(f->element[j]->str, "seq") == 0)
                    dp->cur_seq = strtoull(f->element[j + 1]->str, NULL, 10);
            dp->cur_off = 0;
            dp->have_cur = 1;
            send_next(dp);
            return;
        }
}

/* Fetches the next batch to write, if the link is up and idle. */
static void kick(dpartner *dp) {
    deliver *d = dp->d;
    if (!dp->up || !dp->meta_sent || dp->have_cur || dp->fetching || !rlink_ready(d->rl) ||
        dp->nsent >= KEEP_SENT)
        return;
    /* a partner disabled or past valid_until gets nothing more, also not
     * what already waits in its outbox; a policy reload resumes it */
    int active = share_partner_active(d->sh, dp->name, (int64_t)time(NULL));
    if (active != !dp->held) {
        dp->held = !active;
        log_info("deliver: partner %s: %s", dp->name, active
                 ? "its policy allows it again: delivery resumes"
                 : "its policy is disabled or expired: its outbox is held");
    }
    if (!active)
        return;
    dp->fetching = 1;
    if (dp->last_id[0]) {
        char from[52];
        snprintf(from, sizeof(from), "(%s", dp->last_id);
        rlink_command(d->rl, dp->skey, on_fetch, dp, "XRANGE %s %s + COUNT 1", dp->skey,
                      from);
    } else {
        rlink_command(d->rl, dp->skey, on_fetch, dp, "XRANGE %s - + COUNT 1", dp->skey);
    }
}

static void append(dpartner *dp, uint64_t seq, const char *chain, const char *text,
                   size_t len) {
    deliver *d = dp->d;
    /* on a cluster whose master has a replica, confirmed by a WAIT */
    int wait = rlink_slot_replicas(d->rl, rlink_key_slot(dp->skey, strlen(dp->skey))) > 0;
    append_ctx *a = malloc(sizeof(*a));
    if (!a) {
        dp->outbox_refused++;
        log_error("deliver: partner %s: out of memory: batch seq %llu not appended (it "
                  "is in the outbox file)", dp->name, (unsigned long long)seq);
        return;
    }
    *a = (append_ctx){dp, seq, wait ? 2 : 1, wait};
    /* kept until confirmed; a command not sent (the link went down) is sent
     * again the next time the link is up */
    unconf_push(dp, seq, chain, text, len);
    if (rlink_command(d->rl, dp->skey, on_xadd, a, "EVAL %s 2 %s %s %llu %b %llu %d %s %s",
                      append_script, dp->skey, dp->mkey, (unsigned long long)seq, text, len,
                      (unsigned long long)dp->outbox_max, dp->drop_oldest, d->boot,
                      chain[0] ? chain : "-") < 0)
        append_release(a);
    if (wait && rlink_command(d->rl, dp->skey, on_wait, a, "WAIT 1 %d", WAIT_MS) < 0)
        append_release(a);
    dp->queued++;
}

/* Redis is back: every batch not confirmed goes, in order (the script
 * adds one only if it is not there yet), but those up to seq upto, which
 * went from the outbox file. */
static void flush_pending(dpartner *dp, ubatch *list, uint64_t upto) {
    uint64_t made = dp->pend_n;
    for (ubatch *u = list, *next; u; u = next) {
        next = u->next;
        if (u->kept && u->seq > upto)
            append(dp, u->seq, u->chain, u->text, u->len);
        free(u);
    }
    if (made)
        log_info("deliver: partner %s: %llu batches made while Redis was away are in "
                 "the outbox now", dp->name, (unsigned long long)made);
    dp->pend_n = 0;
}

/* A batch of the outbox file that had not reached Redis. */
static void append_from_file(void *ctx, uint64_t seq, const char *mark, const char *text,
                             size_t len) {
    dpartner *dp = ctx;
    append(dp, seq, mark, text, len);
    dp->file_upto = seq;
}

/* The outbox in Redis remembers the last batch appended ("<boot> <seq>
 * <chain hash> [<delay line place>]"): the batches of the outbox file
 * after it are appended first, in order (those a stop kept from Redis:
 * the relay killed just after writing the file, or while Redis was away
 * and batches waited in memory), then the batches waiting now. An outbox
 * with no mark is new (or its Redis lost its data): nothing is sent again
 * from the file. */
static void on_last(redisAsyncContext *ac, void *reply, void *priv) {
    dpartner *dp = priv;
    redisReply *rep = reply;
    (void)ac;
    if (!rep)
        return; /* the link went down: again when it is back */
    /* what waits (made while Redis was away, or not confirmed) is in the
     * file too, but for a batch whose file write failed */
    ubatch *waiting = unconf_take(dp);
    dp->file_upto = 0;
    uint64_t seq, left_id;
    int64_t left_at;
    uint8_t chain[BATCH_HASH];
    if (rep->type == REDIS_REPLY_STRING &&
        share_mark_read(rep->str, &seq, chain, &left_at, &left_id) == 0) {
        int n = share_outbox_since(dp->d->sh, dp->name, seq, chain, append_from_file, dp);
        if (n > 0)
            log_info("deliver: partner %s: %d batch%s from the outbox file appended to its "
                     "outbox in Redis (they had not reached it: the relay stopped, or Redis was away)",
                     dp->name, n, n == 1 ? "" : "es");
        else if (n == -1)
            log_error("deliver: partner %s: reading its outbox file: %s", dp->name,
                      strerror(errno));
    } else if (rep->type == REDIS_REPLY_ERROR) {
        log_error("deliver: partner %s: reading %s: %s", dp->name, dp->mkey, rep->str);
    }
    dp->catching = 0;
    flush_pending(dp, waiting, dp->file_upto);
    kick(dp);
}

static void catch_up(dpartner *dp) {
    dp->catching = 1;
    if (rlink_command(dp->d->rl, dp->mkey, on_last, dp, "GET %s", dp->mkey) < 0) {
        dp->catching = 0;
        flush_pending(dp, unconf_take(dp), 0);
    }
}

void deliver_enqueue(deliver *d, const char *name, uint64_t seq, const char *mark,
                     const char *text, size_t len) {
    if (!d)
        return;
    for (size_t i = 0; i < d->n; i++) {
        dpartner *dp = d->p[i];
        if (strcmp(dp->name, name) != 0)
            continue;
        if (rlink_ready(d->rl) && !dp->catching) {
            append(dp, seq, mark, text, len);
            return;
        }
        if (rlink_ready(d->rl)) { /* after the outbox file's batches */
            unconf_push(dp, seq, mark, text, len);
            return;
        }
        /* Redis is away: held in memory, up to PENDING_MAX bytes a partner */
        if (!unconf_fits(dp, len)) {
            dp->outbox_refused++;
            if (pdns_mono_ms() - dp->full_logged_ms >= 60000) {
                log_error("deliver: partner %s: Redis is away and %llu batches (%zu bytes) "
                          "wait for it in memory: batch seq %llu waits in the outbox file "
                          "alone (counted), appended from there when Redis is back", name,
                          (unsigned long long)dp->unconf_n, dp->ubytes,
                          (unsigned long long)seq);
                dp->full_logged_ms = pdns_mono_ms();
            }
            return;
        }
        if (!dp->pend_n)
            log_warn("deliver: partner %s: Redis is away: new batches wait in memory "
                     "(up to %zu MiB) until it is back", name, pending_max() >> 20);
        unconf_push(dp, seq, mark, text, len);
        dp->pend_n++;
        return;
    }
}

/* ---- the D4 client ------------------------------------------------------------
 *
 * libuv TCP plus OpenSSL through memory BIOs: lws 4.1's raw client starts
 * TLS before its socket exists (it fails with EBADF), so the client side
 * does its own TLS on the same loop. */

static void connect_partner(uv_timer_t *t);
static void flush_tls(dpartner *dp, int last_of_batch);

static void on_closed(uv_handle_t *h) {
    dpartner *dp = h->data;
    dp->closing = 0;
}

/* ---- what the partner has --------------------------------------------------- */

enum ack_how { ACK_POLL, ACK_OURS, ACK_ENDED };

/* Linux's struct tcp_info (linux/tcp.h) up to tcpi_bytes_acked (Linux
 * 4.1): glibc's copy stops before that field, and linux/tcp.h cannot be
 * included beside netinet/tcp.h, which uv.h includes. */
struct tcp_info_acked {
    uint8_t head[8];
    uint32_t u32[24];
    uint64_t pacing_rate, max_pacing_rate, bytes_acked;
};
_Static_assert(offsetof(struct tcp_info_acked, bytes_acked) == 120,
               "tcpi_bytes_acked is at offset 120 of struct tcp_info");

/* Bytes of this connection the partner's TCP acknowledged, or -1 (a
 * kernel without the counter: nothing is ever confirmed early, batches
 * are sent again after a reconnect, and a pdns-relay receiver drops them). */
static int64_t bytes_acked(dpartner *dp) {
    struct tcp_info_acked ti;
    socklen_t l = sizeof(ti);
    uv_os_fd_t fd;
    memset(&ti, 0, sizeof(ti));
    if (!dp->tcp_open || uv_fileno((uv_handle_t *)&dp->tcp, &fd) < 0 ||
        getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &l) < 0 || l < sizeof(ti))
        return -1;
    return ti.bytes_acked ? (int64_t)ti.bytes_acked - 1 : 0; /* the SYN counts one */
}

/* The oldest k written batches are the partner's: out of the outbox. */
static void drop_confirmed(dpartner *dp, size_t k) {
    deliver *d = dp->d;
    if (!k)
        return;
    for (size_t i = 0; i < k; i++)
        rlink_command(d->rl, dp->skey, NULL, NULL, "XDEL %s %s", dp->skey, dp->sent[i].id);
    dp->batches_confirmed += k;
    dp->backoff_ms = 0; /* the partner takes batches: a new failure retries soon */
    dp->outbox_len = dp->outbox_len > k ? dp->outbox_len - k : 0;
    memmove(dp->sent, dp->sent + k, (dp->nsent - k) * sizeof(dp->sent[0]));
    dp->nsent -= k;
    kick(dp); /* the window has room again */
}

/* Takes the batches the partner has out of the outbox, oldest first. A
 * batch is the partner's once its last byte is acknowledged and the link
 * then stayed up ACK_GRACE_MS (ACK_POLL; ACK_ENDED when the partner ended
 * the link: what it acknowledged within the grace may not have reached its
 * application, a D4 hop on the way may have dropped it, so it goes again).
 * When we close the link ourselves (ACK_OURS), every acknowledged batch is
 * the partner's: it goes on reading. */
static void confirm(dpartner *dp, enum ack_how how) {
    deliver *d = dp->d;
    int64_t acked = dp->nsent && !dp->acks ? bytes_acked(dp) : -1;
    uint64_t now = pdns_mono_ms();
    size_t k = 0;
    if (acked < 0)
        return;
    for (size_t i = 0; i < dp->nsent && dp->sent[i].end <= (uint64_t)acked; i++)
        if (!dp->sent[i].acked_ms)
            dp->sent[i].acked_ms = now;
    while (k < dp->nsent && dp->sent[k].acked_ms && rlink_ready(d->rl) &&
           (how == ACK_OURS || now - dp->sent[k].acked_ms >= ACK_GRACE_MS))
        k++;
    drop_confirmed(dp, k);
}

/* Drops the batches up to seq from the outbox: a pdns-relay receiver
 * wrote that it has them. From then on only its word confirms a batch of
 * this partner: what its TCP acknowledged it may still refuse. */
static void confirm_seq(dpartner *dp, uint64_t seq) {
    size_t k = 0;
    dp->acks = 1;
    while (k < dp->nsent && dp->sent[k].seq <= seq && rlink_ready(dp->d->rl))
        k++;
    drop_confirmed(dp, k);
}

/* Lines the receiver wrote back: {"pdns_relay_ack":SEQ} from a pdns-relay;
 * anything else (or too long) is ignored. */
static void on_receiver_bytes(dpartner *dp, const char *p, size_t n) {
    static const char tag[] = "{\"pdns_relay_ack\":";
    for (size_t i = 0; i < n; i++) {
        if (p[i] != '\n') {
            if (dp->rxn < sizeof(dp->rx) - 1)
                dp->rx[dp->rxn++] = p[i];
            continue;
        }
        dp->rx[dp->rxn] = '\0';
        if (dp->rxn > sizeof(tag) - 1 && strncmp(dp->rx, tag, sizeof(tag) - 1) == 0)
            confirm_seq(dp, strtoull(dp->rx + sizeof(tag) - 1, NULL, 10));
        dp->rxn = 0;
    }
}

static void on_ack_poll(uv_timer_t *t) {
    dpartner *dp = t->data;
    confirm(dp, ACK_POLL);
    if (!dp->nsent)
        uv_timer_stop(&dp->ack_timer);
}

static void link_down(dpartner *dp, const char *why) {
    int was_up = dp->up;
    confirm(dp, ACK_ENDED);
    /* what is not confirmed goes again on the next connection */
    dp->resent += dp->nsent + (dp->have_cur && dp->cur_off > 0);
    uv_timer_stop(&dp->ack_timer);
    if (dp->ssl) {
        SSL_free(dp->ssl); /* frees the BIOs too */
        dp->ssl = NULL;
    }
    if (dp->tcp_open && !dp->closing) {
        dp->closing = 1;
        dp->tcp_open = 0;
        uv_close((uv_handle_t *)&dp->tcp, on_closed);
    }
    dp->up = dp->meta_sent = dp->have_cur = dp->handshaken = 0;
    dp->last_id[0] = '\0'; /* start again from the oldest kept batch */
    dp->nsent = 0;
    dp->wrote = 0;
    dp->rxn = 0;
    if (*dp->d->stopping)
        return;
    if (was_up || !dp->reconnects)
        log_warn("deliver: partner %s (%s:%d) unreachable: %s; retrying", dp->name,
                 dp->host, dp->port, why);
    dp->reconnects++;
    dp->backoff_ms = dp->backoff_ms ? dp->backoff_ms * 2 : 500;
    if (dp->backoff_ms > BACKOFF_MAX_MS)
        dp->backoff_ms = BACKOFF_MAX_MS;
    /* jitter: 50-100 % of the backoff */
    uint64_t wait = dp->backoff_ms / 2 + randombytes_uniform((uint32_t)(dp->backoff_ms / 2 + 1));
    uv_timer_start(&dp->timer, connect_partner, wait, 0);
}

typedef struct wreq {
    uv_write_t req;
    dpartner *dp;
    int last_of_batch;
    char data[];
} wreq;

static void mark_sent(dpartner *dp);
static void send_next(dpartner *dp);

static void on_written(uv_write_t *req, int status) {
    wreq *w = (wreq *)req;
    dpartner *dp = w->dp;
    int last = w->last_of_batch;
    free(w);
    if (status < 0) {
        if (dp->up)
            link_down(dp, uv_strerror(status));
        return;
    }
    if (last && dp->up && dp->have_cur) {
        mark_sent(dp); /* written to the partner's connection */
        kick(dp);
    }
}

/* Moves what OpenSSL wrote into its memory BIO onto the socket. */
static void flush_tls(dpartner *dp, int last_of_batch) {
    size_t n = (size_t)BIO_ctrl_pending(dp->wbio);
    if (!n)
        return;
    wreq *w = malloc(sizeof(*w) + n);
    if (!w) {
        link_down(dp, "out of memory");
        return;
    }
    w->dp = dp;
    w->last_of_batch = last_of_batch;
    int got = BIO_read(dp->wbio, w->data, (int)n);
    uv_buf_t b = uv_buf_init(w->data, got > 0 ? (unsigned)got : 0);
    dp->wrote += b.len;
    if (uv_write(&w->req, (uv_stream_t *)&dp->tcp, &b, 1, on_written) < 0) {
        free(w);
        link_down(dp, "write failed");
    }
}

static int write_frame(dpartner *dp, uint8_t type, const char *p, size_t n,
                       int last_of_batch) {
    pdns_buf f = {0};
    dp->h.timestamp = (uint64_t)time(NULL);
    dp->h.type = type;
    int rc = d4_frame_encode(&dp->h, dp->key, dp->keylen, (const uint8_t *)p, n, &f) < 0;
    for (size_t off = 0; !rc && off < f.len;) { /* one TLS record each */
        size_t k = d4_tls_chunk(f.len - off);
        rc = SSL_write(dp->ssl, f.p + off, (int)k) != (int)k;
        off += k;
    }
    pdns_buf_free(&f);
    if (rc)
        return -1;
    flush_tls(dp, last_of_batch);
    return 0;
}

static void mark_sent(dpartner *dp) {
    snprintf(dp->last_id, sizeof(dp->last_id), "%s", dp->cur_id);
    snprintf(dp->sent[dp->nsent].id, sizeof(dp->sent[0].id), "%s", dp->cur_id);
    dp->sent[dp->nsent].seq = dp->cur_seq;
    dp->sent[dp->nsent].end = dp->wrote;
    dp->sent[dp->nsent].acked_ms = 0;
    dp->nsent++;
    dp->batches_sent++;
    dp->have_cur = 0;
    if (!uv_is_active((uv_handle_t *)&dp->ack_timer))
        uv_timer_start(&dp->ack_timer, on_ack_poll, ACK_POLL_MS, ACK_POLL_MS);
}

/* Writes the current batch as one frame. A batch over the partner's frame
 * limit (made under a larger endpoint.max_frame, or one giant record) is
 * cut after line ends into several frames; the receiver joins lines across
 * frames, so it still verifies. */
static void send_next(dpartner *dp) {
    while (dp->up && dp->have_cur && dp->cur_off < dp->cur.len) {
        const char *p = dp->cur.p + dp->cur_off;
        size_t n = dp->cur.len - dp->cur_off;
        if (n > dp->frame_max) {
            n = dp->frame_max;
            while (n > 0 && p[n - 1] != '\n')
                n--;
            if (n == 0) /* one line longer than a frame: cut it */
                n = dp->frame_max;
        }
        dp->cur_off += n;
        if (write_frame(dp, dp->csv ? D4_TYPE_PASSIVEDNS : D4_TYPE_EXTENDED, p, n,
                        dp->cur_off == dp->cur.len) < 0) {
            link_down(dp, "TLS write failed");
            return;
        }
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b) {
    (void)h;
    b->base = malloc(suggested);
    b->len = b->base ? suggested : 0;
}

/* The SHA-256 of the partner certificate's SubjectPublicKeyInfo equals
 * endpoint.pin_sha256 (as HPKP and curl's --pinnedpubkey compute it). */
static int pin_matches(dpartner *dp) {
    X509 *cert = SSL_get1_peer_certificate(dp->ssl);
    unsigned char *der = NULL;
    uint8_t h[32];
    int n = cert ? i2d_PUBKEY(X509_get0_pubkey(cert), &der) : -1;
    int ok = n > 0 && crypto_hash_sha256(h, der, (unsigned long long)n) == 0 &&
             sodium_memcmp(h, dp->pin, 32) == 0;
    OPENSSL_free(der);
    X509_free(cert);
    return ok;
}

static void handshake(dpartner *dp) {
    int r = SSL_do_handshake(dp->ssl);
    flush_tls(dp, 0);
    if (r == 1 && dp->have_pin && !pin_matches(dp)) {
        link_down(dp, "the partner's public key does not match endpoint.pin_sha256");
        return;
    }
    if (r == 1) {
        dp->handshaken = 1;
        dp->up = 1;
        log_info("deliver: connected to partner %s (%s:%d)", dp->name, dp->host, dp->port);
        static const char meta[] = "{\"type\": \"pdns-cof\", \"encoding\": \"utf-8\"}";
        if (!dp->csv && write_frame(dp, D4_TYPE_META, meta, sizeof(meta) - 1, 0) < 0) {
            link_down(dp, "TLS write failed");
            return;
        }
        dp->meta_sent = 1;
        kick(dp);
        return;
    }
    int e = SSL_get_error(dp->ssl, r);
    if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
        char why[256];
        snprintf(why, sizeof(why), "TLS handshake failed: %s",
                 ERR_reason_error_string(ERR_get_error()));
        link_down(dp, why);
    }
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
    dpartner *dp = s->data;
    if (n < 0) {
        free(b->base);
        link_down(dp, n == UV_EOF ? "the partner closed the connection" : uv_strerror((int)n));
        return;
    }
    if (n > 0 && dp->ssl)
        BIO_write(dp->rbio, b->base, (int)n);
    free(b->base);
    if (!dp->ssl)
        return;
    if (!dp->handshaken) {
        handshake(dp);
        return;
    }
    char got[4096]; /* d4-core never writes back; a pdns-relay acknowledges */
    int k;
    while ((k = SSL_read(dp->ssl, got, sizeof(got))) > 0)
        on_receiver_bytes(dp, got, (size_t)k);
    flush_tls(dp, 0);
}

static void on_tcp_connect(uv_connect_t *req, int status) {
    dpartner *dp = req->data;
    if (status < 0) {
        link_down(dp, uv_strerror(status));
        return;
    }
    dp->ssl = SSL_new(dp->ctx);
    dp->rbio = BIO_new(BIO_s_mem());
    dp->wbio = BIO_new(BIO_s_mem());
    if (!dp->ssl || !dp->rbio || !dp->wbio) {
        link_down(dp, "out of memory");
        return;
    }
    SSL_set_bio(dp->ssl, dp->rbio, dp->wbio);
    SSL_set_connect_state(dp->ssl);
    SSL_set_tlsext_host_name(dp->ssl, dp->host);
    if (dp->insecure) {
        SSL_set_verify(dp->ssl, SSL_VERIFY_NONE, NULL);
    } else {
        /* the certificate must name endpoint.host: an IP address in its
         * subjectAltName (the host is an address), else a DNS name */
        SSL_set_verify(dp->ssl, SSL_VERIFY_PEER, NULL);
        X509_VERIFY_PARAM *vp = SSL_get0_param(dp->ssl);
        if (X509_VERIFY_PARAM_set1_ip_asc(vp, dp->host) != 1)
            SSL_set1_host(dp->ssl, dp->host);
    }
    uv_read_start((uv_stream_t *)&dp->tcp, on_alloc, on_read);
    handshake(dp);
}

static void connect_partner(uv_timer_t *t) {
    dpartner *dp = t->data;
    struct sockaddr_storage sa;
    if (dp->closing) { /* the last socket is still closing */
        uv_timer_start(&dp->timer, connect_partner, 50, 0);
        return;
    }
    if (uv_ip4_addr(dp->host, dp->port, (struct sockaddr_in *)&sa) != 0 &&
        uv_ip6_addr(dp->host, dp->port, (struct sockaddr_in6 *)&sa) != 0) {
        link_down(dp, "endpoint.host must be an IP address");
        return;
    }
    uv_tcp_init(dp->d->loop, &dp->tcp);
    dp->tcp.data = dp;
    dp->tcp_open = 1;
    uv_tcp_nodelay(&dp->tcp, 1);
    dp->creq.data = dp;
    if (uv_tcp_connect(&dp->creq, &dp->tcp, (const struct sockaddr *)&sa, on_tcp_connect) < 0)
        link_down(dp, "cannot connect");
}

/* Starts delivery for every partner policy with an endpoint that has none
 * yet (at start, and after each policy reload). A changed endpoint of a
 * running partner takes a restart. */
void deliver_sync(deliver *d) {
    if (!d)
        return;
    share *s = d->sh;
    for (size_t i = 0; i < d->n; i++)
        kick(d->p[i]); /* a held partner may be allowed again */
    for (size_t i = 0; i < s->np; i++) {
        const policy *p = s->p[i].pol;
        char err[512];
        size_t k;
        if (!p->host[0])
            continue;
        for (k = 0; k < d->n && strcmp(d->p[k]->name, p->partner) != 0; k++)
            ;
        if (k < d->n)
            continue;
        dpartner *dp = calloc(1, sizeof(*dp));
        dpartner **np = dp ? realloc(d->p, (d->n + 1) * sizeof(*np)) : NULL;
        if (!np) {
            free(dp);
            return;
        }
        d->p = np;
        dp->d = d;
        snprintf(dp->name, sizeof(dp->name), "%s", p->partner);
        snprintf(dp->host, sizeof(dp->host), "%s", p->host);
        dp->port = p->port;
        dp->insecure = p->insecure;
        dp->frame_max = p->max_frame; /* share makes batches that fit */
        dp->outbox_max = p->outbox_max;
        dp->csv = p->format == POLICY_FMT_CSV;
        memcpy(dp->csv_rr, p->csv_rr, sizeof(dp->csv_rr));
        dp->drop_oldest = p->outbox_drop_oldest;
        dp->h.version = D4_VERSION;
        if (pdns_uuid_parse(p->uuid, dp->h.uuid) < 0 ||
            config_read_key_file(p->hmac_key_file, &dp->key, &dp->keylen, err,
                                 sizeof(err)) < 0) {
            log_error("deliver: partner %s: %s", dp->name,
                      p->uuid[0] ? err : "endpoint.uuid is missing");
            free(dp);
            continue;
        }
        deliver_outbox_key(d->cfg->relay_id, dp->name, dp->skey, sizeof(dp->skey));
        snprintf(dp->mkey, sizeof(dp->mkey), "%s:last", dp->skey);
        /* one TLS context per partner: it trusts that partner's CA and no
         * other (a certificate another partner's CA issued is refused) */
        dp->ctx = SSL_CTX_new(TLS_client_method());
        if (!dp->ctx) {
            log_error("deliver: partner %s: cannot make a TLS context", dp->name);
            sodium_free(dp->key);
            free(dp);
            continue;
        }
        SSL_CTX_set_min_proto_version(dp->ctx, TLS1_2_VERSION);
        if (p->ca_file[0] && SSL_CTX_load_verify_locations(dp->ctx, p->ca_file, NULL) != 1)
            log_error("deliver: partner %s: cannot load ca_file %s", dp->name, p->ca_file);
        memcpy(dp->pin, p->pin_sha256, sizeof(dp->pin));
        dp->have_pin = p->have_pin;
        uv_timer_init(d->loop, &dp->timer);
        dp->timer.data = dp;
        uv_timer_init(d->loop, &dp->ack_timer);
        dp->ack_timer.data = dp;
        uv_timer_start(&dp->timer, connect_partner, 10, 0);
        d->p[d->n++] = dp;
        log_info("deliver: partner %s: D4 over TLS to %s:%d, outbox %s", dp->name,
                 dp->host, dp->port, dp->skey);
        if (!d->rc_started) { /* Redis only once some partner needs it */
            d->rc_started = 1;
            rlink_start(d->rl);
        }
    }
}

void deliver_outbox_key(const char *relay_id, const char *name, char *out, size_t size) {
    snprintf(out, size, "{pdns-relay:%s:%s}:outbox", relay_id, name);
}

deliver *deliver_start(uv_loop_t *loop, const relay_config *cfg, share *sh,
                       const int *stopping, char *err, size_t errlen) {
    err[0] = '\0';
    if (!cfg->policy_dir[0])
        return NULL;
    deliver *d = calloc(1, sizeof(*d));
    if (!d) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    d->loop = loop;
    d->cfg = cfg;
    d->sh = sh;
    d->stopping = stopping;
    uint8_t b[8];
    randombytes_buf(b, sizeof(b));
    sodium_bin2hex(d->boot, sizeof(d->boot), b, sizeof(b));
    d->rl = rlink_new(loop, cfg->redis_url, cfg->redis.host, cfg->redis.port, cfg->redis_db,
                      "deliver: Redis (partner outboxes)", stopping,
                      on_ready, on_down, d);
    if (!d->rl) {
        char shown[sizeof(cfg->redis_url)];
        snprintf(err, errlen, "redis: cannot use %s",
                 rconn_url_shown(cfg->redis_url, shown, sizeof(shown)));
        free(d);
        return NULL;
    }
    deliver_sync(d);
    return d;
}

void deliver_stop(deliver *d) {
    if (!d)
        return;
    for (size_t i = 0; i < d->n; i++) {
        dpartner *dp = d->p[i];
        confirm(dp, ACK_OURS);
        uv_timer_stop(&dp->timer);
        uv_close((uv_handle_t *)&dp->timer, NULL);
        uv_close((uv_handle_t *)&dp->ack_timer, NULL);
        if (dp->ssl)
            SSL_free(dp->ssl);
        dp->ssl = NULL;
        if (dp->tcp_open && !dp->closing)
            uv_close((uv_handle_t *)&dp->tcp, NULL);
        dp->tcp_open = 0;
        sodium_free(dp->key);
        pdns_buf_free(&dp->cur);
        if (dp->unconf_n)
            log_warn("deliver: partner %s: %llu batches are not confirmed in its outbox "
                     "at the stop (%llu made while Redis was away; all are in the outbox "
                     "file)", dp->name, (unsigned long long)dp->unconf_n,
                     (unsigned long long)dp->pend_n);
        for (ubatch *u = unconf_take(dp), *next; u; u = next) {
            next = u->next;
            free(u);
        }
    }
    if (d->rc_started)
        rlink_stop(d->rl);
}

/* After the loop has closed the handles. */
void deliver_free(deliver *d) {
    if (!d)
        return;
    for (size_t i = 0; i < d->n; i++) {
        SSL_CTX_free(d->p[i]->ctx);
        free(d->p[i]);
    }
    free(d->p);
    rlink_free(d->rl);
    free(d);
}

int deliver_settled(const deliver *d) {
    for (size_t i = 0; d && i < d->n; i++) {
        dpartner *dp = d->p[i];
        if (dp->up && dp->nsent && bytes_acked(dp) < (int64_t)dp->wrote)
            return 0;
    }
    return 1;
}

/* One per-partner series: a HELP line (if help), the TYPE line, a sample per
 * partner read at offset off of dpartner (a uint64_t, or an int for gauges). */
static int partner_series(const deliver *d, pdns_buf *b, const char *name,
                          const char *type, const char *help, size_t off, int is_int) {
    int rc = 0;
    if (help)
        rc |= pdns_buf_printf(b, "# HELP %s %s\n", name, help);
    rc |= pdns_buf_printf(b, "# TYPE %s %s\n", name, type);
    for (size_t i = 0; i < d->n; i++) {
        const char *p = (const char *)d->p[i] + off;
        unsigned long long v = is_int ? (unsigned long long)*(const int *)p
                                      : (unsigned long long)*(const uint64_t *)p;
        rc |= pdns_buf_printf(b, "%s{partner=\"%s\"} %llu\n", name, d->p[i]->name, v);
    }
    return rc;
}

int deliver_partner(const deliver *d, const char *name, deliver_view *v) {
    memset(v, 0, sizeof(*v));
    for (size_t i = 0; d && i < d->n; i++) {
        const dpartner *dp = d->p[i];
        if (strcmp(dp->name, name) != 0)
            continue;
        v->endpoint = 1;
        v->up = dp->up;
        v->outbox = dp->outbox_len;
        v->unconfirmed = dp->unconf_n + dp->pend_n;
        v->reconnects = dp->reconnects;
        return 0;
    }
    return -1;
}

int deliver_metrics(const deliver *d, pdns_buf *b) {
    int rc = 0;
    if (!d)
        return 0;
    rc |= partner_series(d, b, "pdns_relay_partner_delivered_batches_total", "counter", NULL,
                         offsetof(dpartner, batches_sent), 0);
    rc |= pdns_buf_printf(b, "# HELP pdns_relay_partner_outbox_full_total Batches refused or dropped because the partner's outbox was full (alarm on this).\n"
                             "# TYPE pdns_relay_partner_outbox_full_total counter\n");
    for (size_t i = 0; i < d->n; i++)
        rc |= pdns_buf_printf(b, "pdns_relay_partner_outbox_full_total{partner=\"%s\",action=\"refused\"} %llu\n"
                                 "pdns_relay_partner_outbox_full_total{partner=\"%s\",action=\"dropped_oldest\"} %llu\n",
                              d->p[i]->name, (unsigned long long)d->p[i]->outbox_refused,
                              d->p[i]->name, (unsigned long long)d->p[i]->outbox_dropped);
    rc |= partner_series(d, b, "pdns_relay_partner_confirmed_batches_total", "counter",
                         "Batches the partner's TCP acknowledged, taken out of the outbox.",
                         offsetof(dpartner, batches_confirmed), 0);
    rc |= partner_series(d, b, "pdns_relay_partner_resent_batches_total", "counter",
                         "Batches written on a connection that ended before the partner acknowledged them, sent again.",
                         offsetof(dpartner, resent), 0);
    rc |= pdns_buf_printf(b, "# HELP pdns_relay_partner_csv_skipped_total Records a passivedns-csv partner was not sent, by reason: an rrtype it does not take, a separator or line end inside a field.\n"
                             "# TYPE pdns_relay_partner_csv_skipped_total counter\n");
    for (size_t i = 0; i < d->n; i++)
        for (int k = 0; d->p[i]->csv && k < CSV_SKIP_COUNT; k++)
            rc |= pdns_buf_printf(b, "pdns_relay_partner_csv_skipped_total{partner=\"%s\",reason=\"%s\"} %llu\n",
                                  d->p[i]->name, csv_skip_name[k],
                                  (unsigned long long)d->p[i]->csv_skipped[k]);
    rc |= partner_series(d, b, "pdns_relay_partner_link_up", "gauge", NULL,
                         offsetof(dpartner, up), 1);
    rc |= partner_series(d, b, "pdns_relay_partner_outbox_batches", "gauge",
                         "Batches in the partner's outbox not yet confirmed (as of the last append or confirmation).",
                         offsetof(dpartner, outbox_len), 0);
    rc |= partner_series(d, b, "pdns_relay_partner_reconnects_total", "counter", NULL,
                         offsetof(dpartner, reconnects), 0);
    if (rlink_is_cluster(d->rl)) {
        rc |= partner_series(d, b, "pdns_relay_partner_outbox_unreplicated_total", "counter",
                             "Batches appended on Redis Cluster that no replica confirmed within the wait (kept by the master alone).",
                             offsetof(dpartner, unreplicated), 0);
        rc |= rlink_metrics(d->rl, "pdns_relay_outbox_cluster", "the outboxes'", b);
    }
    return rc ? -1 : 0;
}
