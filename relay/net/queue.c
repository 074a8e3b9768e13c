/* queue.c - consumer of d4-core analyzer queues (Redis lists
 * analyzer:8:<queue-uuid>, filled by d4-core with LPUSH).
 *
 * Reliable-queue pattern: a Lua script moves up to `batch` of the oldest
 * lines into a list of their own, the batch's processing list (SORT BY
 * nosort LIMIT ... STORE copies the range inside Redis, then LTRIM: no line
 * passes through Lua, a third of the CPU a line of moving it with RPOP and
 * LPUSH), and pushes the batch's random id, with its line count, on a list
 * beside it; an LRANGE right after reads the lines. They are ingested,
 * stored as one unit that carries the id (store_begin_unit/store_end_unit;
 * full batches of one queue that follow each other share a store call, as
 * import's lines do), and only once the store has them is the batch's list
 * deleted, with its id, in one script. A move asks for no more lines than
 * make the entries a store call takes now (move_lines), so that a batch's
 * call holds Redis no longer than the store's other calls. The next batch is asked for before
 * the one just read is ingested, and moved while the relay parses this one
 * and the store writes the ones before (at most MAX_AHEAD in flight), so
 * that neither Redis nor the relay waits for another. After a crash,
 * whatever batches are left are ingested first, unit by unit
 * with their ids: the store keeps the last ids it applied and recognises a
 * unit it already has, so a kill -9 between storing and trimming stores
 * nothing twice. A trim follows the store's acknowledgement at once
 * (queue_stored), not a timer. The lines are moved, not read where they
 * are: d4-core trims a queue to its maximum size after every push (LTRIM
 * 0 max_size), which would shift lines read in place.
 *
 * A batch's list is "{analyzer:8:<uuid>}:pdns-relay:<relay_id>:processing:
 * <id>", the id list the same with ":id" (an older relay kept all the
 * batches in one list, "...:processing", recovered here): their hash tag is
 * the source key's name, so the keys share a Redis Cluster slot and the
 * scripts run unchanged on a cluster. */
#include <hiredis/async.h>
#include <sodium.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "d4.h"
#include "hist.h"
#include "inbound.h"
#include "log.h"
#include "queue.h"
#include "rconn.h"

#define POLL_IDLE_MS 200
#define MAX_AHEAD 16     /* batches moved and not yet stored, the one being
                          * ingested included: two store calls' worth */
_Static_assert(MAX_AHEAD >= 2 * STORE_UNIT_MERGE && MAX_AHEAD <= STORE_UNIT_IDS_KEPT,
               "the store recognises every batch in flight after a crash");
#define MOVES_MAX 2      /* moves in flight: d4-core's Redis moves the next
                          * batch while the relay reads the one before */
#define MOVE_MIN 64      /* lines a move asks for at least */
#define MAX_PENDING 40   /* a recovery's units (its id list keeps 32, and lines
                          * the ids do not account for make one more) */
/* lines a signed batch can have: it fits one D4 frame (1,000,000 bytes at
 * most) and a record line is longer than 50 bytes */
#define COF_WINDOW 20000

/* stub(key, n, cap), in each script: a line longer than cap bytes
 * (line_cap, the script's last argument) does not leave d4-core's Redis
 * when it makes its batch's list larger than a kilobyte a line and one line
 * of cap (MEMORY USAGE adds up the list's nodes, not its lines): then each
 * such line is replaced in the list by a stand-in, a NUL byte and its
 * length, which the relay refuses as too long. Only those batches' lines
 * are looked at one by one. A reply holds n lines of cap at most, or n
 * kilobytes and one line of cap where that is more. (d4-core splits a
 * sensor's stream on newlines: a stream without one is one line, as long
 * as the stream.) Where MEMORY is missing (Redis before 4.0) or denied (an
 * ACL), every line goes through, and the relay refuses the long ones once
 * it has read them: stub returns Redis's refusal, and a move returns it
 * beside its count, for the log (on_moved). */
#define STUB_LONG_LINES                                                                  \
    "local function stub(key, n, cap)\n"                                                 \
    "  local size = redis.pcall('MEMORY', 'USAGE', key, 'SAMPLES', '0')\n"               \
    "  if type(size) == 'table' and size.err then return size.err end\n"                 \
    "  if type(size) ~= 'number' or size <= n * 1024 + cap then return end\n"            \
    "  for i = 0, n - 1 do\n"                                                            \
    "    local x = redis.call('LINDEX', key, i)\n"                                       \
    "    if x and #x > cap then redis.call('LSET', key, i, '\\0' .. #x) end\n"          \
    "  end\n"                                                                            \
    "end\n"

/* Moves up to ARGV[1] of the oldest lines of KEYS[1] into the batch's own
 * list KEYS[3] (SORT ... STORE copies a range of a list inside Redis: no
 * line passes through Lua) and pushes the batch's id ARGV[2], with its line
 * count, on the id list KEYS[2]; returns the count. The lines are then read
 * with LRANGE (newest first); those over ARGV[3] bytes as stand-ins. */
static const char move_script[] = STUB_LONG_LINES
    "local len = redis.call('LLEN', KEYS[1])\n"
    "local n = math.min(len, tonumber(ARGV[1]))\n"
    "if n == 0 then return 0 end\n"
    "redis.call('SORT', KEYS[1], 'BY', 'nosort', 'LIMIT', len - n, n, 'STORE', KEYS[3])\n"
    "if n == len then redis.call('DEL', KEYS[1])\n"
    "else redis.call('LTRIM', KEYS[1], 0, len - n - 1) end\n"
    "local why = stub(KEYS[3], n, tonumber(ARGV[3]))\n"
    "redis.call('LPUSH', KEYS[2], ARGV[2] .. ' ' .. n)\n"
    "redis.call('LTRIM', KEYS[2], 0, 31)\n"
    "if why then return {n, why} end\n"
    "return n\n";

/* The same for a "pdns-cof" queue (a partner relay's signed batches,
 * every line of every type-254 frame pushed by d4-core's default handler):
 * only whole signed batches move, the oldest lines up to the newest batch
 * trailer among the oldest ARGV[1], so that a batch read again after a
 * crash is whole. A window without a trailer (a batch larger than any
 * frame) moves as it is, and is refused. Lines over ARGV[3] bytes as
 * stand-ins. */
static const char move_cof_script[] = STUB_LONG_LINES
    "local w = tonumber(ARGV[1])\n"
    "local l = redis.call('LRANGE', KEYS[1], -w, -1)\n"
    "local k = 0\n"
    "for i = #l, 1, -1 do\n"
    "  if string.sub(l[i], 1, 20) == '{\"pdns_relay_batch\":' then k = #l - i + 1 end\n"
    "end\n"
    "if k == 0 and #l >= w then k = w end\n"
    "for i = 1, k do redis.call('RPOPLPUSH', KEYS[1], KEYS[3]) end\n"
    "if k > 0 then\n"
    "  local why = stub(KEYS[3], k, tonumber(ARGV[3]))\n"
    "  redis.call('LPUSH', KEYS[2], ARGV[2] .. ' ' .. k)\n"
    "  redis.call('LTRIM', KEYS[2], 0, 31)\n"
    "  if why then return {k, why} end\n"
    "end\n"
    "return k\n";

/* The oldest batch is stored: its list KEYS[1] and its id (the oldest on
 * the id list KEYS[2]) leave together. */
static const char trim_script[] =
    "redis.call('DEL', KEYS[1])\n"
    "redis.call('RPOP', KEYS[2])\n"
    "return 1\n";

/* What an earlier run left: the batches on the id list KEYS[2] ("<id>
 * <lines>", newest first), each in its list KEYS[1]:<id>. An older relay
 * kept every batch's lines in one list, KEYS[1] (the oldest batch
 * rightmost), and before that one id as a string for all of them: their
 * lines go into lists of their own here. Lines the ids do not account for
 * (an edited list) become one batch with the new id ARGV[1]. Returns
 * "<batches> <lines not accounted for>", then "<id> <lines>" for each
 * batch, oldest first, then each batch's lines (newest first), oldest
 * batch first; those over ARGV[2] bytes as stand-ins. */
static const char recover_script[] = STUB_LONG_LINES
    "local P = KEYS[1]\n"
    "local function into(id, l, a, b)\n"
    "  for j = a, b, 7000 do\n"
    "    redis.call('RPUSH', P .. ':' .. id, unpack(l, j, math.min(j + 6999, b)))\n"
    "  end\n"
    "end\n"
    "local ids = {}\n"
    "local t = redis.call('TYPE', KEYS[2]).ok\n"
    "if t == 'list' then\n"
    "  local l = redis.call('LRANGE', KEYS[2], 0, -1)\n"
    "  for i = #l, 1, -1 do ids[#ids + 1] = l[i] end\n"
    "elseif t == 'string' then\n"
    "  ids[1] = redis.call('GET', KEYS[2]) .. ' ' .. redis.call('LLEN', P)\n"
    "  redis.call('DEL', KEYS[2])\n"
    "end\n"
    "local old = redis.call('LRANGE', P, 0, -1)\n"
    "local inlist, sum, stray = {}, 0, 0\n"
    "for i, v in ipairs(ids) do\n"
    "  local id, n = string.match(v, '^(%S+) (%d+)$')\n"
    "  if not id or redis.call('EXISTS', P .. ':' .. id) == 0 then\n"
    "    inlist[i] = true\n"
    "    sum = sum + (tonumber(n) or #old + 1)\n"
    "  end\n"
    "end\n"
    "local keep = {}\n"
    "if #old > 0 and sum == #old then\n"
    "  local e = #old\n"
    "  for i, v in ipairs(ids) do\n"
    "    if inlist[i] then\n"
    "      local id, n = string.match(v, '^(%S+) (%d+)$')\n"
    "      n = tonumber(n)\n"
    "      into(id, old, e - n + 1, e)\n"
    "      e = e - n\n"
    "    end\n"
    "    keep[#keep + 1] = v\n"
    "  end\n"
    "else\n"
    "  if #old > 0 then\n"
    "    stray = #old\n"
    "    into(ARGV[1], old, 1, #old)\n"
    "    keep[1] = ARGV[1] .. ' ' .. #old\n"
    "  end\n"
    "  for i, v in ipairs(ids) do\n"
    "    if not inlist[i] then keep[#keep + 1] = v end\n"
    "  end\n"
    "end\n"
    "redis.call('DEL', P, KEYS[2])\n"
    "for _, v in ipairs(keep) do redis.call('LPUSH', KEYS[2], v) end\n"
    "local out = {#keep .. ' ' .. stray}\n"
    "for _, v in ipairs(keep) do out[#out + 1] = v end\n"
    "for _, v in ipairs(keep) do\n"
    "  local id = string.match(v, '^(%S+)')\n"
    "  stub(P .. ':' .. id, redis.call('LLEN', P .. ':' .. id), tonumber(ARGV[2]))\n"
    "  for _, x in ipairs(redis.call('LRANGE', P .. ':' .. id, 0, -1)) do\n"
    "    out[#out + 1] = x\n"
    "  end\n"
    "end\n"
    "return out\n";

typedef struct queue_state {
    const cfg_queue *conf;
    char src[128];
    char proc[256];
    char proc_id[280];       /* the id list: "<id> <lines>" of each batch, newest first */
    char unit_key[300];      /* in the store: the last batch id applied */
    char where[160];
    int recovered;    /* the processing list was drained at start */
    int no_memory;    /* d4-core's Redis refused MEMORY (STUB_LONG_LINES): said once */
    inbound ib;       /* pdns-cof: the signed batch being read */
} queue_state;

struct queue_consumer {
    uv_loop_t *loop;
    const relay_config *cfg;
    ingest *in;
    store *st;               /* NULL: the relay keeps no store */
    const int *stopping;
    rconn rc;                /* the d4-core server's Redis */
    uv_timer_t timer;        /* the next poll */
    queue_state *q;
    size_t n, cur;     /* queue polled last (round robin) */
    /* moves (or a recovery, alone) in flight, oldest first: their replies
     * come in this order */
    struct {
        size_t q;
        char id[17];   /* the batch's id */
        int recover;   /* a recovery of queue q, not a move */
        int window;    /* lines it asked for */
        int failed;    /* its script failed (logged): wait before the next */
    } mv[MOVES_MAX];
    size_t nmv;
    int inhand;        /* a batch read is being ingested */
    double lines_per_entry; /* lines a store entry took, on average (0: none yet) */
    int empty_round;   /* queues found empty since the last full batch */
    int idle;          /* every queue was: the next round waits for the timer */
    /* batches ingested, oldest first: each is trimmed once the store has
     * it (store_done(mark)) */
    struct {
        size_t q, n;
        uint64_t mark;
        char id[24];           /* its list is proc:<id> */
    } pend[MAX_PENDING];
    size_t npend;
};

static void schedule(queue_consumer *qc, uint64_t ms);

/* The list of queue q's batch id: "<processing>:<id>". */
static void batch_key(const queue_state *q, const char *id, char *out, size_t n) {
    snprintf(out, n, "%s:%s", q->proc, id);
}
static void poll_next(queue_consumer *qc);
static void trim_stored(queue_consumer *qc);

/* Ingests one line of queue q. */
static void take_line(queue_consumer *qc, queue_state *q, const ingest_source *src,
                      char *p, size_t len) {
    while (len && (p[len - 1] == '\n' || p[len - 1] == '\r'))
        len--;
    int stand_in = len && p[0] == '\0'; /* a line that stayed in Redis (line_cap) */
    if (q->conf->cof) {
        char err[256];
        if (stand_in && ingest_log_allowed(qc->in))
            log_warn("queue: %s: a line of %.*s bytes, longer than a D4 frame, stayed in "
                     "d4-core's Redis; its batch will be refused", q->src, (int)(len - 1), p + 1);
        if (len && inbound_line(&q->ib, qc->in, q->conf->from, qc->cfg->state_dir, p, len,
                                err, sizeof(err)) < 0 &&
            ingest_log_allowed(qc->in))
            log_warn("queue: %s: %s; the batch is refused", q->src, err);
    } else if (len > qc->cfg->max_line || stand_in) {
        ingest_line_too_long(qc->in, src, q->where);
    } else if (len) {
        ingest_csv_line(qc->in, src, q->where, p, len);
    }
}

/* Ingests the n lines of batch id of queue q (el: as LRANGE gives a
 * batch's list, the newest first) as one store unit named id, and
 * remembers the batch for its trim. more: the next batch of the same queue
 * is being moved, and may share this one's store call. */
static void take_unit(queue_consumer *qc, size_t qi, const char *id, redisReply **el,
                      size_t n, int more) {
    queue_state *q = &qc->q[qi];
    ingest_source src = {PDNS_SRC_QUEUE, NULL, q->conf->sensor,
                         q->conf->index, &q->conf->layout};
    int unit = qc->st && n && store_begin_unit(qc->st, q->unit_key) == 0;
    size_t e0 = unit ? store_tail_entries(qc->st) : 0;
    for (size_t i = 0; i < n; i++) {
        redisReply *e = el[n - 1 - i];
        if (e->type == REDIS_REPLY_STRING)
            take_line(qc, q, &src, e->str, e->len);
    }
    size_t e1 = unit ? store_tail_entries(qc->st) : 0, added = e1 > e0 ? e1 - e0 : 0;
    if (added && !q->conf->cof) /* what sizes the next moves */
        qc->lines_per_entry = pdns_avg_step(qc->lines_per_entry, (double)n / (double)added);
    /* the output file is a copy on the side: a full disk under it is
     * logged and counted there, and holds up neither the store nor the queue */
    ingest_commit(qc->in);
    uint64_t mark = unit ? store_end_unit(qc->st, id, more)
                         : qc->st ? store_barrier(qc->st) : 0;
    if (qc->npend < MAX_PENDING) {
        qc->pend[qc->npend].q = qi;
        qc->pend[qc->npend].n = n;
        qc->pend[qc->npend].mark = mark;
        snprintf(qc->pend[qc->npend].id, sizeof(qc->pend[0].id), "%s", id);
        qc->npend++;
    } else {
        log_error("queue: %s: batch %s is stored but more batches wait for their trim "
                  "than the relay keeps: its list stays in d4-core's Redis", q->src, id);
    }
}

/* Reads a recovery's reply (recover_script): batches oldest first, each
 * batch's lines newest first. Returns the number of lines. */
static size_t take_recovered(queue_consumer *qc, size_t qi, redisReply *rep) {
    queue_state *q = &qc->q[qi];
    size_t units = 0, stray = 0, at, sum = 0;
    if (sscanf(rep->element[0]->str, "%zu %zu", &units, &stray) != 2 ||
        units + 1 > rep->elements)
        units = 0;
    at = 1 + units;
    size_t nl = rep->elements - at;
    if (stray)
        log_warn("queue: %s: the processing list's batch ids do not match its %zu "
                 "lines; they are read again as one batch", q->src, stray);
    for (size_t u = 0; u < units; u++) {
        const redisReply *v = rep->element[1 + u];
        const char *sp = v->type == REDIS_REPLY_STRING ? memchr(v->str, ' ', v->len) : NULL;
        size_t c = sp ? (size_t)strtoul(sp + 1, NULL, 10) : 0;
        if (!sp || c > rep->elements - at) {
            log_error("queue: %s: a batch in the processing lists is unreadable: %s",
                      q->src, v->type == REDIS_REPLY_STRING ? v->str : "not a string");
            break;
        }
        char id[24];
        snprintf(id, sizeof(id), "%.*s", (int)(sp - v->str), v->str);
        take_unit(qc, qi, id, rep->element + at, c, 0);
        at += c;
        sum += c;
    }
    return sum < nl ? nl : sum;
}

/* A move's script: an error (a queue key of another type, a Redis that
 * refuses SORT) is logged, and the next move waits a second. */
static void on_moved(redisAsyncContext *ac, void *reply, void *priv) {
    queue_consumer *qc = priv;
    redisReply *rep = reply;
    (void)ac;
    if (rep && rep->type == REDIS_REPLY_ERROR) {
        /* the move's LRANGE answers next: it is the oldest in flight */
        log_error("queue: %s: cannot move a batch: %s", qc->q[qc->mv[0].q].src, rep->str);
        qc->mv[0].failed = 1;
    } else if (rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
               rep->element[1]->type == REDIS_REPLY_STRING && !qc->q[qc->mv[0].q].no_memory) {
        queue_state *q = &qc->q[qc->mv[0].q];
        q->no_memory = 1;
        log_warn("queue: %s: d4-core's Redis refuses MEMORY USAGE (%s): lines longer than "
                 "d4.max_line reach the relay before it refuses them; allow MEMORY to the "
                 "relay's Redis user",
                 q->src, rep->element[1]->str);
    }
}

/* A move's (or a recovery's) reply: the lines are ingested and stored;
 * the next batch is asked for first, and moved meanwhile. */
static void on_batch(redisAsyncContext *ac, void *reply, void *priv) {
    queue_consumer *qc = priv;
    redisReply *rep = reply;
    (void)ac;
    if (!qc->nmv) /* a reply of a link that went down meanwhile */
        return;
    size_t qi = qc->mv[0].q;
    queue_state *q = &qc->q[qi];
    int recovering = qc->mv[0].recover, failed = qc->mv[0].failed, window = qc->mv[0].window;
    char id[sizeof(qc->mv[0].id)];
    memcpy(id, qc->mv[0].id, sizeof(id));
    memmove(qc->mv, qc->mv + 1, (qc->nmv - 1) * sizeof(qc->mv[0]));
    qc->nmv--;
    /* a store call left open for this batch goes without it */
    if (qc->st && (!rep || failed || recovering || rep->type != REDIS_REPLY_ARRAY ||
                   rep->elements == 0))
        store_close_unit(qc->st);
    if (!rep) /* disconnected: the lines stay in their batch list */
        return;
    if (failed) {
        schedule(qc, 1000);
        return;
    }
    if (rep->type != REDIS_REPLY_ARRAY ||
        (recovering && (rep->elements < 1 || rep->element[0]->type != REDIS_REPLY_STRING))) {
        log_error("queue: %s: unexpected reply: %s", q->src,
                  rep->type == REDIS_REPLY_ERROR ? rep->str : "not a batch");
        schedule(qc, 1000);
        return;
    }
    if (recovering) {
        q->recovered = 1;
        size_t n = take_recovered(qc, qi, rep);
        qc->in->m.queue_recovered += n;
        if (n)
            log_info("queue: %s: recovered %zu lines left by an earlier run",
                     q->src, n);
    } else {
        size_t n = rep->elements;
        /* a short batch means the queue is drained */
        if (n == (size_t)window)
            qc->empty_round = 0;
        else
            qc->empty_round++;
        /* the next batch is moved while this one is parsed, and a full
         * batch of the same queue shares this one's store call */
        qc->inhand = 1;
        poll_next(qc);
        int more = qc->nmv && qc->mv[0].q == qi && !qc->mv[0].recover &&
                   n == (size_t)window && !q->conf->cof;
        if (n)
            take_unit(qc, qi, id, rep->element, n, more);
        qc->inhand = 0;
    }
    trim_stored(qc);
    poll_next(qc);
}

/* Trims, oldest first, the batches the store has: a relay killed before
 * that reads them again (at least once; the store knows their ids). */
static void trim_stored(queue_consumer *qc) {
    while (qc->npend && (!qc->st || store_done(qc->st, qc->pend[0].mark))) {
        if (!qc->rc.ready) /* gone meanwhile: re-read after the reconnect */
            return;
        queue_state *q = &qc->q[qc->pend[0].q];
        qc->in->m.queue_batches++;
        char key[sizeof(q->proc) + 32];
        batch_key(q, qc->pend[0].id, key, sizeof(key));
        redisAsyncCommand(qc->rc.ac, NULL, NULL, "EVAL %s 2 %s %s", trim_script, key,
                          q->proc_id);
        memmove(qc->pend, qc->pend + 1, (qc->npend - 1) * sizeof(qc->pend[0]));
        qc->npend--;
    }
}

/* The longest line a move lets through to the relay (STUB_LONG_LINES):
 * d4.max_line and a line end d4-core may have left; a signed batch's line
 * fits one D4 frame. (An int: hiredis's format takes no %zu.) */
static int line_cap(const queue_consumer *qc, const queue_state *q) {
    return q->conf->cof ? (int)D4_DEFAULT_MAX_PAYLOAD : (int)qc->cfg->max_line + 2;
}

/* Lines the next move of q asks for: d4core.batch, or fewer while the
 * store's calls take fewer entries (a batch is one call, whatever its
 * size, and a query waits behind it): the entries a call takes now times
 * the lines an entry took, on average. */
static int move_lines(queue_consumer *qc, const queue_state *q) {
    int w = qc->cfg->queue_batch;
    if (q->conf->cof)
        return w < COF_WINDOW ? COF_WINDOW : w;
    if (qc->st && qc->lines_per_entry > 0)
        w = (int)pdns_within((double)store_call_entries(qc->st) * qc->lines_per_entry,
                             MOVE_MIN, (size_t)w);
    qc->in->m.queue_move_lines = (uint64_t)w;
    return w;
}

/* Asks for the next batches, round robin over the queues, up to MOVES_MAX
 * in flight (a recovery goes alone). */
static void poll_next(queue_consumer *qc) {
    while (qc->nmv < MOVES_MAX && qc->rc.ready && !*qc->stopping &&
           qc->npend + (size_t)qc->inhand + qc->nmv < MAX_AHEAD &&
           !(qc->nmv && qc->mv[0].recover)) {
        if (qc->st && store_full(qc->st)) { /* backpressure */
            schedule(qc, POLL_IDLE_MS);
            return;
        }
        if (qc->empty_round >= (int)qc->n) { /* every queue empty: wait */
            if (!qc->idle) {
                qc->idle = 1;
                schedule(qc, POLL_IDLE_MS);
            }
            return;
        }
        size_t next = (qc->cur + 1) % qc->n;
        queue_state *q = &qc->q[next];
        if (!q->recovered && (qc->nmv || qc->npend))
            return; /* its recovery goes alone, once the batches before it
                     * are trimmed: it may bring as many as an id list keeps */
        qc->cur = next;
        uint8_t r[8];
        randombytes_buf(r, sizeof(r));
        memset(&qc->mv[qc->nmv], 0, sizeof(qc->mv[0]));
        qc->mv[qc->nmv].q = next;
        qc->mv[qc->nmv].recover = !q->recovered;
        const char *id = qc->mv[qc->nmv].id;
        sodium_bin2hex(qc->mv[qc->nmv].id, sizeof(qc->mv[0].id), r, sizeof(r));
        qc->nmv++;
        if (!q->recovered) {
            redisAsyncCommand(qc->rc.ac, on_batch, qc, "EVAL %s 2 %s %s %s %d",
                              recover_script, q->proc, q->proc_id, id, line_cap(qc, q));
            return;
        }
        char key[sizeof(q->proc) + 32];
        batch_key(q, id, key, sizeof(key));
        int window = qc->mv[qc->nmv - 1].window = move_lines(qc, q);
        /* the lines come with the LRANGE after it, as Redis writes them */
        redisAsyncCommand(qc->rc.ac, on_moved, qc, "EVAL %s 3 %s %s %s %d %s %d",
                          q->conf->cof ? move_cof_script : move_script, q->src, q->proc_id,
                          key, window, id, line_cap(qc, q));
        redisAsyncCommand(qc->rc.ac, on_batch, qc, "LRANGE %s 0 -1", key);
    }
}

static void on_timer(uv_timer_t *t) {
    queue_consumer *qc = t->data;
    if (qc->idle) { /* every queue was empty: a new round */
        qc->idle = 0;
        qc->empty_round = 0;
    }
    poll_next(qc);
}

static void schedule(queue_consumer *qc, uint64_t ms) {
    uv_timer_start(&qc->timer, on_timer, ms, 0);
}

static void on_ready(void *ctx) {
    queue_consumer *qc = ctx;
    qc->nmv = 0;
    qc->npend = 0; /* their lines are in the processing lists: read again */
    for (size_t i = 0; i < qc->n; i++)
        qc->q[i].recovered = 0; /* re-read processing lists after a reconnect */
    poll_next(qc);
}

static void on_down(void *ctx) {
    queue_consumer *qc = ctx;
    qc->nmv = 0; /* what was in flight stays in the processing lists */
}

queue_consumer *queue_start(uv_loop_t *loop, const relay_config *cfg,
                            ingest *in, store *st, const int *stopping,
                            char *err, size_t errlen) {
    err[0] = '\0';
    if (!cfg->n_queues)
        return NULL;
    queue_consumer *qc = calloc(1, sizeof(*qc));
    if (!qc || !(qc->q = calloc(cfg->n_queues, sizeof(queue_state)))) {
        free(qc);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    qc->loop = loop;
    qc->cfg = cfg;
    qc->in = in;
    qc->st = st;
    qc->stopping = stopping;
    qc->n = cfg->n_queues;
    for (size_t i = 0; i < qc->n; i++) {
        queue_state *q = &qc->q[i];
        q->conf = &cfg->queues[i];
        snprintf(q->src, sizeof(q->src), "analyzer:%s:%s", q->conf->cof ? "pdns-cof" : "8",
                 q->conf->uuid);
        snprintf(q->proc, sizeof(q->proc), "{%s}:pdns-relay:%s:processing",
                 q->src, cfg->relay_id);
        snprintf(q->proc_id, sizeof(q->proc_id), "%s:id", q->proc);
        snprintf(q->unit_key, sizeof(q->unit_key), "st:qapplied:%s:%s", cfg->relay_id,
                 q->src);
        snprintf(q->where, sizeof(q->where), "queue %s", q->src);
    }
    qc->cur = qc->n - 1;
    in->m.queue_move_lines = (uint64_t)cfg->queue_batch;
    uv_timer_init(loop, &qc->timer);
    qc->timer.data = qc;
    rconn_init(&qc->rc, loop, cfg->queue_redis.host, cfg->queue_redis.port,
               cfg->queue_redis_db, "queue: d4-core Redis", stopping, on_ready,
               on_down, qc);
    qc->rc.count_into = &in->m.redis_disconnects;
    rconn_auth_from(&qc->rc, cfg->queue_redis_url); /* checked by the config */
    rconn_arena_replies(&qc->rc);
    rconn_start(&qc->rc);
    log_info("queue: consuming %zu d4-core queue(s) from %s:%d db %d", qc->n,
             cfg->queue_redis.host, cfg->queue_redis.port, cfg->queue_redis_db);
    return qc;
}

void queue_stored(queue_consumer *qc) {
    if (!qc || !qc->npend)
        return;
    size_t before = qc->npend;
    trim_stored(qc);
    if (qc->npend < before && !*qc->stopping)
        poll_next(qc);
}

int queue_idle(const queue_consumer *qc) {
    return !qc || (!qc->nmv && !qc->npend);
}

void queue_stop(queue_consumer *qc) {
    if (!qc)
        return;
    uv_timer_stop(&qc->timer);
    rconn_stop(&qc->rc);
    uv_close((uv_handle_t *)&qc->timer, NULL);
}

void queue_free(queue_consumer *qc) {
    if (!qc)
        return;
    for (size_t i = 0; i < qc->n; i++)
        inbound_free(&qc->q[i].ib);
    rconn_free(&qc->rc);
    free(qc->q);
    free(qc);
}
