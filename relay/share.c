/* share.c - per-partner policies applied to the mixer's batches, delay
 * lines, outboxes and reloads. See share.h. */
#include "share.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "buf.h"
#include "afile.h"
#include "cof.h"
#include "log.h"

#define TRAILER_MAX 1024 /* room for a batch's trailer line */

int share_env_build(const relay_config *cfg, policy_source **srcp,
                    policy_env *env) {
    size_t n = cfg->n_sensors + cfg->n_queues + cfg->n_partners_in;
    policy_source *src = calloc(n ? n : 1, sizeof(*src));
    if (!src)
        return -1;
    for (size_t i = 0; i < cfg->n_sensors; i++) {
        const relay_sensor *s = &cfg->sensors[i];
        src[s->index] = (policy_source){s->name, s->org, s->group, s->uuid,
                                        PDNS_SRC_D4, NULL, NULL};
    }
    for (size_t i = 0; i < cfg->n_queues; i++) {
        const cfg_queue *q = &cfg->queues[i];
        src[q->index] = (policy_source){q->sensor, "", "", NULL,
                                        PDNS_SRC_QUEUE, NULL, NULL};
    }
    for (size_t i = 0; i < cfg->n_partners_in; i++) {
        const relay_sensor *s = &cfg->partners_in[i];
        src[s->index] = (policy_source){s->name, "", "", s->uuid,
                                        PDNS_SRC_PARTNER, s->name, NULL};
    }
    *srcp = src;
    env->src = src;
    env->n = n;
    env->relay_id = cfg->relay_id;
    env->mixer = cfg->mixer_enabled ? &cfg->mixer : NULL;
    return 0;
}

static void log_diag(const policy_diag *d) {
    char m[1200];
    for (size_t i = 0; i < d->n; i++) {
        policy_diag_format(d, i, m, sizeof(m));
        if (d->m[i].warning)
            log_warn("policy: %s", m);
        else
            log_error("policy: %s", m);
    }
}

static partner *find_file(share *s, const char *file) {
    for (size_t i = 0; i < s->np; i++)
        if (strcmp(s->p[i].file, file) == 0)
            return &s->p[i];
    return NULL;
}

static partner *find_partner(const share *s, const char *name) {
    for (size_t i = 0; i < s->np; i++)
        if (strcmp(s->p[i].pol->partner, name) == 0)
            return &s->p[i];
    return NULL;
}

/* The partner's chain survives restarts: outbox_dir/<partner>.state,
 *
 *   seq <n>
 *   chain <hex>
 *   left <at>:<id>
 *   before seq <n> chain <hex> left <at>:<id>
 *
 * the last batch in the outbox: its seq, its chain hash, and the place in
 * the delay line of its last record (what a restored delay line leaves
 * out). The state is written before the batch goes into the outbox, with
 * the state it replaces on the "before" line: a crash before the batch is
 * whole in the outbox goes back to that one (load_chain), so that a batch
 * is neither sent twice nor lost. */
typedef struct chain_state {
    uint64_t seq;
    uint8_t chain[BATCH_HASH];
    int64_t left_at;
    uint64_t left_id;
} chain_state;

static void state_path(const share *s, const partner *pt, char *out, size_t n) {
    snprintf(out, n, "%s/%s.state", s->cfg->outbox_dir, pt->pol->partner);
}

static int parse_chain(const char *seq, const char *hex, const char *left, chain_state *c) {
    char *end;
    size_t got = 0;
    memset(c, 0, sizeof(*c));
    errno = 0;
    c->seq = strtoull(seq, &end, 10);
    if (errno || *end || sodium_hex2bin(c->chain, BATCH_HASH, hex, strlen(hex), NULL, &got,
                                        NULL) != 0 || got != BATCH_HASH)
        return -1;
    long long at;
    unsigned long long id;
    if (left && sscanf(left, "%lld:%llu", &at, &id) == 2) {
        c->left_at = at;
        c->left_id = id;
    }
    return 0;
}

void share_mark(const partner *pt, const uint8_t chain[BATCH_HASH], int place,
                char out[SHARE_MARK_MAX]) {
    char hex[2 * BATCH_HASH + 1];
    sodium_bin2hex(hex, sizeof(hex), chain, BATCH_HASH);
    if (place)
        snprintf(out, SHARE_MARK_MAX, "%s %lld:%llu", hex, (long long)pt->left_at,
                 (unsigned long long)pt->left_id);
    else
        snprintf(out, SHARE_MARK_MAX, "%s", hex);
}

int share_mark_read(const char *text, uint64_t *seq, uint8_t chain[BATCH_HASH],
                    int64_t *left_at, uint64_t *left_id) {
    char boot[64], a[24], b[80], c[48];
    chain_state cs;
    int k = sscanf(text, "%63s %23s %79s %47s", boot, a, b, c);
    if (k < 3 || parse_chain(a, b, k == 4 ? c : NULL, &cs) < 0)
        return -1;
    *seq = cs.seq;
    memcpy(chain, cs.chain, BATCH_HASH);
    *left_at = cs.left_at;
    *left_id = cs.left_id;
    return 0;
}

/* Reads the state file: 1 with *before (the "before" line), 0 without,
 * -1 when it is damaged. */
static int read_chain(const char *path, chain_state *now, chain_state *before) {
    char text[512], a[24], b[80], c[48], d[24], e[80], f[48];
    FILE *fp = fopen(path, "r");
    size_t n = fp ? fread(text, 1, sizeof(text) - 1, fp) : 0;
    if (fp)
        fclose(fp);
    text[n] = '\0';
    int k = sscanf(text, "seq %23s chain %79s left %47s before seq %23s chain %79s left %47s",
                   a, b, c, d, e, f);
    if (k < 2 || parse_chain(a, b, k >= 3 ? c : NULL, now) < 0)
        return -1;
    return k == 6 && parse_chain(d, e, f, before) == 0;
}

#define OUTBOX_SCAN ((off_t)64 << 20) /* a batch is at most the largest frame */
static const char trailer_tag[] = "{\"pdns_relay_batch\":";

/* Looks back from the end of an outbox file (size bytes) for the last
 * trailer line whose seq is at most at_most: *end is the offset after it,
 * *seq its seq. Returns 0, 1 when none is within OUTBOX_SCAN of the end
 * (*end -1) or in the file (*end 0, *seq 0), or -1 (errno). */
static int trailer_back(int fd, off_t size, uint64_t at_most, off_t *end, uint64_t *seq) {
    enum { BLOCK = 1 << 16 };
    *end = -1;
    *seq = 0;
    char *buf = malloc(BLOCK + TRAILER_MAX + 1);
    if (!buf)
        return -1;
    /* line starts below hi are still to look at, from the end */
    off_t lowest = size > OUTBOX_SCAN + 2 * TRAILER_MAX ? size - OUTBOX_SCAN - 2 * TRAILER_MAX
                                                         : 0;
    for (off_t hi = size; hi > lowest && *end < 0;) {
        off_t lo = hi > lowest + BLOCK ? hi - BLOCK : lowest;
        off_t rd = lo > 0 ? lo - 1 : 0; /* the byte before a line start */
        off_t last = hi + TRAILER_MAX < size ? hi + TRAILER_MAX : size;
        if (pread(fd, buf, (size_t)(last - rd), rd) != last - rd) {
            free(buf);
            return -1;
        }
        for (off_t p = hi - 1; p >= lo && *end < 0; p--) {
            const char *line = buf + (p - rd);
            if ((p > 0 && line[-1] != '\n') || (size_t)(last - p) < sizeof(trailer_tag) - 1 ||
                memcmp(line, trailer_tag, sizeof(trailer_tag) - 1) != 0)
                continue;
            const char *nl = memchr(line, '\n', (size_t)(last - p));
            if (!nl) /* the trailer itself cut short */
                continue;
            buf[nl - buf] = '\0';
            const char *sq = strstr(line, "\"seq\":");
            uint64_t v = sq ? strtoull(sq + 6, NULL, 10) : 0;
            if (v <= at_most)
                *seq = v, *end = p + (nl - line) + 1;
        }
        hi = lo;
    }
    free(buf);
    if (*end >= 0)
        return 0;
    if (lowest == 0)
        *end = 0;
    return 1;
}

/* See share.h. Called by load_chain: the records of a batch cut off go out
 * again. */
int share_outbox_mend(int fd, const char *path, uint64_t *seq) {
    struct stat st;
    off_t whole;
    if (fstat(fd, &st) < 0)
        return -1;
    int k = trailer_back(fd, st.st_size, UINT64_MAX, &whole, seq);
    if (k < 0)
        return -1;
    if (whole < 0)
        return -1; /* not an outbox this relay wrote: left alone */
    if (whole < st.st_size) {
        if (ftruncate(fd, whole) < 0)
            return -1;
        log_warn("policy: outbox %s ended in a batch cut short by a stop (%lld bytes after "
                 "batch %llu): removed; its records go out again", path,
                 (long long)(st.st_size - whole), (unsigned long long)*seq);
    }
    return 0;
}

int share_outbox_since(share *s, const char *name, uint64_t after,
                       const uint8_t prev[BATCH_HASH], share_batch_fn fn, void *ctx) {
    partner *pt = find_partner(s, name);
    struct stat st;
    off_t from;
    uint64_t seq;
    if (!pt || pt->fd < 0 || after >= pt->seq)
        return 0; /* nothing made after it */
    if (fstat(pt->fd, &st) < 0 || trailer_back(pt->fd, st.st_size, after, &from, &seq) < 0)
        return -1;
    if (from < 0 || seq != after) {
        log_error("policy: outbox %s/%s.ndjson does not hold batch %llu (in its last "
                  "%lld MiB): batches %llu to %llu are not appended to its outbox in Redis",
                  s->cfg->outbox_dir, name, (unsigned long long)after,
                  (long long)(OUTBOX_SCAN >> 20), (unsigned long long)after + 1,
                  (unsigned long long)pt->seq);
        return -2;
    }
    size_t len = (size_t)(st.st_size - from);
    char *buf = malloc(len + 1);
    if (!buf || pread(pt->fd, buf, len, from) != (ssize_t)len) {
        free(buf);
        return -1;
    }
    const uint8_t *pk = s->sk + crypto_sign_SEEDBYTES; /* libsodium: seed, then public key */
    uint8_t want[BATCH_HASH], chain[BATCH_HASH], root[BATCH_HASH];
    memcpy(want, prev, BATCH_HASH);
    hashmany_span *lines = NULL;
    size_t nlines = 0, cap = 0;
    int n = 0;
    for (size_t at = 0, line = 0; line < len;) {
        const char *nl = memchr(buf + line, '\n', len - line);
        if (!nl)
            break; /* share_outbox_mend left whole batches only */
        size_t ll = (size_t)(nl - (buf + line));
        batch_trailer t;
        char err[128], mark[SHARE_MARK_MAX];
        if (!batch_is_trailer(buf + line, ll)) {
            hashmany_span *g = pdns_grow(lines, &cap, nlines, sizeof(*g), 256);
            if (!g)
                break;
            lines = g;
            lines[nlines++] = (hashmany_span){line, ll};
            line += ll + 1;
            continue;
        }
        const char *why = NULL;
        if (batch_trailer_decode(buf + line, ll, &t, err, sizeof(err)) < 0)
            why = err;
        else if (t.seq != after + 1 + (uint64_t)n)
            why = "another seq";
        else if (memcmp(t.prev, want, BATCH_HASH) != 0)
            why = "another chain";
        else if (batch_verify_sig(&t, pk, chain) < 0)
            why = "not signed by this relay's key";
        else if (t.count != nlines || batch_lines_root(buf, lines, nlines, root) < 0 ||
                 memcmp(root, t.merkle_root, BATCH_HASH) != 0)
            why = "its records do not match its trailer";
        if (why) {
            log_error("policy: outbox %s/%s.ndjson: the batch after %llu does not go on from "
                      "it (%s): not appended to its outbox in Redis", s->cfg->outbox_dir, name,
                      (unsigned long long)(after + (uint64_t)n), why);
            break;
        }
        nlines = 0;
        share_mark(pt, chain, t.seq == pt->seq, mark);
        line += ll + 1;
        fn(ctx, t.seq, mark, buf + at, line - at);
        memcpy(want, chain, BATCH_HASH);
        at = line;
        n++;
    }
    free(lines);
    free(buf);
    return n;
}

static void load_chain(share *s, partner *pt, const char *outbox) {
    char path[1100];
    chain_state now, before;
    uint64_t last = 0;
    state_path(s, pt, path, sizeof(path));
    int mended = share_outbox_mend(pt->fd, outbox, &last) == 0;
    if (!mended)
        log_error("policy: outbox %s: cannot read its last batch: %s", outbox,
                  strerror(errno));
    pt->seq = 0;
    pt->left_at = 0;
    pt->left_id = 0;
    memset(pt->chain, 0, sizeof(pt->chain));
    if (access(path, F_OK) != 0)
        return;
    int k = read_chain(path, &now, &before);
    if (k < 0) {
        log_error("policy: %s is damaged: partner %s's chain starts again at 1",
                  path, pt->pol->partner);
        return;
    }
    if (k == 1 && mended && last == before.seq && last != now.seq) {
        log_info("policy: partner %s: batch %llu did not reach its outbox before the relay "
                 "stopped: the chain goes on from batch %llu, the records go out again",
                 pt->pol->partner, (unsigned long long)now.seq, (unsigned long long)last);
        now = before;
    }
    pt->seq = now.seq;
    memcpy(pt->chain, now.chain, BATCH_HASH);
    pt->left_at = now.left_at;
    pt->left_id = now.left_id;
}

static int save_chain(share *s, const partner *pt, const chain_state *now,
                      const chain_state *before) {
    char path[1100], hex[65], bhex[65], text[400];
    state_path(s, pt, path, sizeof(path));
    sodium_bin2hex(hex, sizeof(hex), now->chain, BATCH_HASH);
    int n = snprintf(text, sizeof(text), "seq %llu\nchain %s\nleft %lld:%llu\n",
                     (unsigned long long)now->seq, hex, (long long)now->left_at,
                     (unsigned long long)now->left_id);
    if (before) {
        sodium_bin2hex(bhex, sizeof(bhex), before->chain, BATCH_HASH);
        n += snprintf(text + n, sizeof(text) - (size_t)n,
                      "before seq %llu chain %s left %lld:%llu\n",
                      (unsigned long long)before->seq, bhex, (long long)before->left_at,
                      (unsigned long long)before->left_id);
    }
    return pdns_afile_write(path, text, (size_t)n);
}

static chain_state chain_of(const partner *pt) {
    chain_state c = {pt->seq, {0}, pt->left_at, pt->left_id};
    memcpy(c.chain, pt->chain, BATCH_HASH);
    return c;
}

int share_adopt_chain(share *s, partner *pt, uint64_t seq, const uint8_t *chain,
                      int64_t left_at, uint64_t left_id) {
    if (seq <= pt->seq)
        return 0;
    log_info("policy: partner %s: its chain goes on from its outbox in Redis at batch %llu "
             "(the chain state in %s said %llu)", pt->pol->partner, (unsigned long long)seq,
             s->cfg->outbox_dir, (unsigned long long)pt->seq);
    pt->seq = seq;
    memcpy(pt->chain, chain, BATCH_HASH);
    pt->left_at = left_at;
    pt->left_id = left_id;
    chain_state now = chain_of(pt);
    if (save_chain(s, pt, &now, NULL) < 0)
        log_error("policy: partner %s: cannot save the chain state: %s", pt->pol->partner,
                  strerror(errno));
    return 1;
}

/* ---- delay lines across restarts -------------------------------------------- */

int share_save_delays(const share *s, pdns_buf *out) {
    pdns_buf line = {0};
    int rc = 0;
    for (size_t i = 0; i < s->np && rc == 0; i++) {
        const partner *pt = &s->p[i];
        if (!delay_line_size(pt->delay))
            continue;
        line.len = 0;
        rc = delay_line_save(pt->delay, &line) < 0 ||
                     pdns_buf_printf(out, "%s %zu\n", pt->pol->partner, line.len) < 0 ||
                     pdns_buf_append(out, line.p, line.len) < 0
                 ? -1
                 : 0;
    }
    pdns_buf_free(&line);
    return rc;
}

void share_restore_delays(share *s, const char *d, size_t len, const int32_t *map,
                          size_t nmap) {
    size_t off = 0;
    while (off < len) {
        const char *nl = memchr(d + off, '\n', len - off);
        char name[200];
        size_t n;
        if (!nl || (size_t)(nl - (d + off)) >= sizeof(name)) {
            log_error("policy: the saved delay lines are damaged: the rest is not restored");
            return;
        }
        memcpy(name, d + off, (size_t)(nl - (d + off)));
        name[nl - (d + off)] = '\0';
        char *sp = strrchr(name, ' ');
        off = (size_t)(nl + 1 - d);
        if (!sp || sscanf(sp + 1, "%zu", &n) != 1 || n > len - off) {
            log_error("policy: the saved delay lines are damaged: the rest is not restored");
            return;
        }
        *sp = '\0';
        partner *pt = find_partner(s, name);
        size_t gone = 0;
        long got = pt ? delay_line_restore(pt->delay, (const uint8_t *)d + off, n, map, nmap,
                                           pt->left_at, pt->left_id, &gone)
                      : 0;
        if (!pt)
            log_warn("policy: partner %s has no policy now: its delayed records are dropped",
                     name);
        else if (got < 0)
            log_error("policy: partner %s: its saved delay line is damaged: not restored",
                      name);
        else
            log_info("policy: partner %s: %ld delayed records restored (%zu had left before; "
                     "its outbox says so)", name, got, gone);
        off += n;
    }
}

/* ---- totals ("counts": "total") -------------------------------------------- */

static void totals_path(const share *s, const partner *pt, char *out, size_t n) {
    snprintf(out, n, "%s/%s.totals", s->cfg->outbox_dir, pt->pol->partner);
}

static void totals_close(partner *pt) {
    totals_free(pt->tot);
    pt->tot = NULL;
    if (pt->tot_fd >= 0)
        close(pt->tot_fd);
    pt->tot_fd = -1;
    pdns_buf_free(&pt->tot_pending);
}

/* The journal holds each batch's entries followed by a marker with the
 * batch's seq (a snapshot, by the seq of the last batch it counts): a
 * batch that never reached the outbox (a crash in between, load_chain)
 * has its entries taken back at the start, so that its records, sent
 * again, are counted once. */
static totals_entry totals_marker(uint64_t seq) {
    totals_entry m;
    memset(m.key, 0xff, sizeof(m.key));
    m.count = seq;
    m.time_first = m.time_last = INT64_MIN;
    return m;
}

static int is_marker(const totals_entry *e) {
    static const uint8_t ff[TOTALS_KEY] = {[0 ... TOTALS_KEY - 1] = 0xff};
    return e->time_first == INT64_MIN && memcmp(e->key, ff, sizeof(ff)) == 0;
}

/* Sets the totals of the entries in g. */
static void totals_set_all(partner *pt, const pdns_buf *g) {
    for (size_t j = 0; j < g->len / sizeof(totals_entry); j++)
        totals_set(pt->tot, (const totals_entry *)g->p + j);
}

/* Reads the journal into a new table: entries up to the last marker whose
 * batch is in the outbox (seq at most pt->seq). What follows (a batch that
 * did not get there, a torn write) is cut off; a journal without markers
 * (an older relay's) is read whole, less a torn last entry. */
static int totals_load(const char *path, partner *pt) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : -1;
    totals_entry e[256];
    pdns_buf group = {0}; /* the entries since the last marker */
    ssize_t got = 0;
    size_t have = 0, seen = 0, kept = 0; /* entries read; up to the last marker taken */
    int markers = 0, stop = 0, rc = 0;
    while (!stop && rc == 0 && (got = read(fd, (char *)e + have, sizeof(e) - have)) > 0) {
        have += (size_t)got;
        size_t k = have / sizeof(e[0]);
        for (size_t i = 0; i < k && !stop && rc == 0; i++) {
            seen++;
            if (!is_marker(&e[i])) {
                rc = pdns_buf_append(&group, &e[i], sizeof(e[i]));
                continue;
            }
            markers = 1;
            if (e[i].count > pt->seq) { /* that batch is not in the outbox */
                stop = 1;
                break;
            }
            totals_set_all(pt, &group);
            group.len = 0;
            kept = seen;
        }
        memmove(e, (char *)e + k * sizeof(e[0]), have - k * sizeof(e[0]));
        have -= k * sizeof(e[0]);
    }
    close(fd);
    if (got < 0 || rc < 0) {
        pdns_buf_free(&group);
        return -1;
    }
    size_t gone = group.len / sizeof(e[0]);
    int seal = 0;
    if (!markers) { /* an older relay's journal: every whole entry counts */
        totals_set_all(pt, &group);
        kept = gone;
        gone = 0;
        seal = kept > 0;
    }
    pdns_buf_free(&group);
    pt->tot_journal = kept;
    struct stat st;
    if (stat(path, &st) == 0 && st.st_size > (off_t)(kept * sizeof(e[0])) &&
        truncate(path, (off_t)(kept * sizeof(e[0]))) < 0)
        return -1;
    if (seal) { /* its entries are the outbox's: a marker after them */
        totals_entry m = totals_marker(pt->seq);
        fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
        if (fd < 0 || write(fd, &m, sizeof(m)) != (ssize_t)sizeof(m)) {
            if (fd >= 0)
                close(fd);
            return -1;
        }
        close(fd);
        pt->tot_journal++;
    }
    if (gone)
        log_info("policy: partner %s: the totals of %zu records of a batch that did not "
                 "reach the outbox are taken back (they go out again)", pt->pol->partner,
                 gone);
    return 0;
}

/* Brings the partner's totals in line with its policy: loaded from the
 * journal when the policy says "total" (or its max_totals changed), gone
 * (journal removed) when it says "delta". */
static void totals_sync(share *s, partner *pt) {
    char path[1100];
    totals_path(s, pt, path, sizeof(path));
    if (!pt->pol->counts_total) {
        if (pt->tot) {
            totals_close(pt);
            unlink(path);
            if (s->totals_written) /* and its copy */
                s->totals_written(s->published_ctx, pt, NULL, 0, 1);
            log_info("policy: partner %s: counts are deltas now; the totals "
                     "journal is removed", pt->pol->partner);
        }
        return;
    }
    if (pt->tot && pt->tot_max == pt->pol->max_totals)
        return;
    totals_close(pt);
    pt->tot = totals_new((size_t)pt->pol->max_totals);
    pt->tot_max = pt->pol->max_totals;
    pt->tot_pending.max = 0;
    if (!pt->tot || totals_load(path, pt) < 0 ||
        (pt->tot_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600)) < 0) {
        log_error("policy: partner %s: totals %s: %s; its records carry "
                  "deltas until this is fixed", pt->pol->partner, path,
                  pt->tot ? strerror(errno) : "out of memory");
        totals_close(pt);
        return;
    }
    log_info("policy: partner %s: counts are totals (%zu triples from %s)",
             pt->pol->partner, totals_size(pt->tot), path);
}

static void snapshot_entry(void *ctx, const totals_entry *e) {
    pdns_buf_append(ctx, e, sizeof(*e));
}

/* Rewrites the journal as one snapshot of the table (and says so to
 * totals_written, which keeps its copy). */
static void totals_rewrite(share *s, partner *pt) {
    char path[1100];
    pdns_buf snap = {0};
    totals_path(s, pt, path, sizeof(path));
    totals_each(pt->tot, snapshot_entry, &snap);
    size_t n = snap.len / sizeof(totals_entry);
    totals_entry mark = totals_marker(pt->seq); /* the snapshot counts batches up to here */
    if (n == totals_size(pt->tot) && pdns_buf_append(&snap, &mark, sizeof(mark)) == 0 &&
        pdns_afile_write(path, snap.p, snap.len) == 0) {
        if (s->totals_written)
            s->totals_written(s->published_ctx, pt, (const totals_entry *)snap.p, n, 1);
        if (pt->tot_fd >= 0)
            close(pt->tot_fd);
        pt->tot_fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
        pt->tot_journal = n + 1;
        if (pt->tot_fd < 0) {
            log_error("policy: partner %s: totals %s: %s", pt->pol->partner, path,
                      strerror(errno));
            totals_close(pt);
        }
    }
    pdns_buf_free(&snap);
}

/* Writes batch seq's totals to the journal, with its marker, before the
 * batch goes to the outbox (totals_load takes them back if it never gets
 * there). */
static void totals_flush(share *s, partner *pt, uint64_t seq) {
    if (!pt->tot || !pt->tot_pending.len)
        return;
    if (s->totals_written)
        s->totals_written(s->published_ctx, pt, (const totals_entry *)pt->tot_pending.p,
                          pt->tot_pending.len / sizeof(totals_entry), 0);
    totals_entry mark = totals_marker(seq);
    if (pdns_buf_append(&pt->tot_pending, &mark, sizeof(mark)) < 0 ||
        pdns_buf_write_fd(&pt->tot_pending, pt->tot_fd) < 0 || fdatasync(pt->tot_fd) < 0) {
        if (pt->tot_errors++ % 1000 == 0)
            log_error("policy: partner %s: totals journal: %s; totals sent after a "
                      "restart may be low", pt->pol->partner, strerror(errno));
        pt->tot_pending.len = 0;
        return;
    }
    pt->tot_journal += pt->tot_pending.len / sizeof(totals_entry);
    pt->tot_pending.len = 0;
}

void share_adopt_totals(share *s, partner *pt, const totals_entry *e, size_t n) {
    if (!pt->tot)
        return;
    for (size_t i = 0; i < n; i++)
        totals_set(pt->tot, &e[i]);
    totals_rewrite(s, pt);
    if (e)
        log_info("policy: partner %s: %zu triples' totals taken from Redis", pt->pol->partner,
                 n);
}

static int open_outbox(share *s, partner *pt) {
    char path[1100];
    snprintf(path, sizeof(path), "%s/%s.ndjson", s->cfg->outbox_dir,
             pt->pol->partner);
    pt->fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (pt->fd < 0) {
        log_error("policy: outbox %s: %s", path, strerror(errno));
        return -1;
    }
    load_chain(s, pt, path);
    return 0;
}

static void partner_drop(share *s, partner *pt) {
    if (pt->delay && delay_line_size(pt->delay))
        log_warn("policy: partner %s removed with %zu records still delayed "
                 "(not sent)", pt->pol->partner, delay_line_size(pt->delay));
    delay_line_free(pt->delay);
    totals_close(pt);
    policy_free(pt->pol);
    if (pt->fd >= 0)
        close(pt->fd);
    *pt = s->p[--s->np];
}

/* Loads or reloads one file. A broken file leaves the old version. */
static void load_file(share *s, const char *file) {
    policy_diag d = {0};
    partner *old = find_file(s, file);
    if (old)
        old->seen = 1;
    policy *p = policy_load(file, &s->env, &d);
    log_diag(&d);
    policy_diag_free(&d);
    if (!p) {
        s->reload_errors++;
        log_error("policy: %s refused%s", file,
                  old ? "; the partner keeps its previous policy" : "");
        return;
    }
    for (size_t i = 0; i < s->np; i++)
        if (&s->p[i] != old && policy_same_pseudonym_key(s->p[i].pol, p))
            log_warn("policy: %s: partner %s uses the same pseudonym key as partner "
                     "%s: the two can link what each received; give each partner its "
                     "own key", file, p->partner, s->p[i].pol->partner);
    for (size_t i = 0; i < s->np; i++)
        if (&s->p[i] != old && strcmp(s->p[i].pol->partner, p->partner) == 0) {
            log_error("policy: %s: partner \"%s\" already has a policy in %s; "
                      "refused", file, p->partner, s->p[i].file);
            policy_free(p);
            s->reload_errors++;
            return;
        }
    if (old) {
        if (strcmp(old->pol->version, p->version) == 0) {
            policy_free(p);
            return;
        }
        log_info("policy: partner %s: %s -> %s (%s)", p->partner,
                 old->pol->version, p->version, file);
        if (strcmp(old->pol->partner, p->partner) != 0) {
            close(old->fd);
            totals_close(old);
            policy *prev = old->pol;
            old->pol = p;
            if (open_outbox(s, old) < 0)
                old->fd = -1;
            policy_free(prev);
        } else {
            policy_free(old->pol);
            old->pol = p;
        }
        totals_sync(s, old);
        return;
    }
    partner *np = realloc(s->p, (s->np + 1) * sizeof(*np));
    if (!np) {
        policy_free(p);
        return;
    }
    s->p = np;
    partner *pt = &s->p[s->np];
    memset(pt, 0, sizeof(*pt));
    pt->pol = p;
    pt->seen = 1;
    pt->tot_fd = -1;
    snprintf(pt->file, sizeof(pt->file), "%s", file);
    pt->delay = delay_line_new(s->cfg->max_delayed);
    if (!pt->delay || open_outbox(s, pt) < 0) {
        delay_line_free(pt->delay);
        policy_free(p);
        return;
    }
    s->np++;
    log_info("policy: partner %s: version %s loaded (%s)", p->partner,
             p->version, file);
    totals_sync(s, pt);
}

void share_reload(share *s) {
    if (!s->cfg || !s->cfg->policy_dir[0])
        return;
    DIR *dir = opendir(s->cfg->policy_dir);
    if (!dir) {
        log_error("policy: %s: %s", s->cfg->policy_dir, strerror(errno));
        return;
    }
    s->reloads++;
    for (size_t i = 0; i < s->np; i++)
        s->p[i].seen = 0;
    struct dirent *de;
    char **names = NULL;
    size_t nn = 0;
    while ((de = readdir(dir)) != NULL) {
        size_t l = strlen(de->d_name);
        if (l < 6 || strcmp(de->d_name + l - 5, ".json") != 0 ||
            de->d_name[0] == '.')
            continue;
        char **nv = realloc(names, (nn + 1) * sizeof(*nv));
        if (!nv)
            break;
        names = nv;
        names[nn++] = strdup(de->d_name);
    }
    closedir(dir);
    for (size_t i = 0; i < nn; i++) {
        char file[1100];
        snprintf(file, sizeof(file), "%s/%s", s->cfg->policy_dir, names[i]);
        load_file(s, file);
        free(names[i]);
    }
    free(names);
    for (size_t i = 0; i < s->np;) {
        if (!s->p[i].seen) {
            log_info("policy: %s is gone: partner %s no longer receives "
                     "anything", s->p[i].file, s->p[i].pol->partner);
            partner_drop(s, &s->p[i]);
        } else {
            i++;
        }
    }
}

int share_source_for(share *s, const char *who, const char *path) {
    for (size_t i = s->n_static; i < s->env.n; i++)
        if (strcmp(s->src[i].path, path) == 0)
            return (int)i;
    if (s->env.n >= 65535)
        return -1;
    policy_source *ns = realloc(s->src, (s->env.n + 1) * sizeof(*ns));
    char **nn = realloc(s->dyn_names, (s->env.n - s->n_static + 1) * 2 * sizeof(*nn));
    if (ns)
        s->src = ns;
    if (nn)
        s->dyn_names = nn;
    if (!ns || !nn)
        return -1;
    size_t k = s->env.n - s->n_static;
    char *name = strdup(who), *p = strdup(path);
    if (!name || !p) {
        free(name);
        free(p);
        return -1;
    }
    s->dyn_names[2 * k] = name;
    s->dyn_names[2 * k + 1] = p;
    s->src[s->env.n] = (policy_source){name, "", "", NULL, PDNS_SRC_PARTNER, name, p};
    s->env.src = s->src;
    s->env.n++;
    for (size_t i = 0; i < s->np; i++) { /* the new source: allowed or not */
        policy_diag d = {0};
        policy_resolve(s->p[i].pol, &s->env, &d);
        policy_diag_free(&d);
    }
    log_info("policy: records from partner %s via %s count as their own source", who, path);
    return (int)(s->env.n - 1);
}

int share_start(share *s, const relay_config *cfg) {
    memset(s, 0, sizeof(*s));
    s->cfg = cfg;
    if (!cfg->policy_dir[0])
        return 0;
    if (mkdir(cfg->outbox_dir, 0750) < 0 && errno != EEXIST) {
        log_error("policy: outbox_dir %s: %s", cfg->outbox_dir, strerror(errno));
        return -1;
    }
    if (share_env_build(cfg, &s->src, &s->env) < 0)
        return -1;
    s->n_static = s->env.n;
    char err[512];
    s->sk = sodium_malloc(crypto_sign_SECRETKEYBYTES);
    if (!s->sk || batch_read_secret_key(cfg->signing_key, s->sk, err, sizeof(err)) < 0) {
        log_error("policy: signing key: %s", s->sk ? err : "out of memory");
        return -1;
    }
    mixer_rng_init_secure(&s->rng);
    share_reload(s);
    log_info("policy: %zu partner policies from %s", s->np, cfg->policy_dir);
    return 0;
}

void share_batch(share *s, const mixer_batch *b, int64_t now_ms) {
    int64_t now_s = now_ms / 1000;
    for (size_t i = 0; i < s->np; i++) {
        partner *pt = &s->p[i];
        const policy *p = pt->pol;
        for (size_t k = 0; k < b->n; k++) {
            policy_out out;
            enum policy_verdict v = policy_decide(p, &s->env, &b->e[k], now_s,
                                                  &out, NULL, 0);
            if (v != POLICY_PASS) {
                pt->denied[v]++;
                continue;
            }
            int64_t at = now_ms + p->delay_min_ms +
                         (int64_t)mixer_rng_exp(&s->rng, (double)p->delay_jitter_ms);
            if (delay_line_push(pt->delay, &b->e[k], at) < 0) {
                if (pt->delay_full++ % 10000 == 0)
                    log_warn("policy: partner %s: delay line full (%zu "
                             "records): records for this partner are dropped "
                             "and counted", p->partner, s->cfg->max_delayed);
            }
        }
    }
}

/* A batch's trailer line is at most this long (fixed fields, 64-byte
 * origin, partner and TLP, hex hashes and signature). */

struct emit_ctx {
    share *s;
    partner *pt;
    int64_t now_ms;
    size_t budget;        /* largest batch in bytes, trailer included */
    pdns_buf line;        /* the record being added */
    pdns_buf out;         /* the batch so far */
    hashmany_span *lines; /* each record line in out, without its "\n" */
    size_t n, cap;
    int64_t mark_at;      /* the delay line's place of the last record in out */
    uint64_t mark_id;
};

static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* PDNS_RELAY_CRASH_AT makes the process kill itself (SIGKILL) at one point
 * of writing a batch to an outbox, for the tests of what a crash there
 * leaves: "outbox-before" (the chain state and totals saved, nothing
 * written), "outbox-torn" (half the batch written), "outbox-after";
 * "<point>:<partner>" for one partner's outbox only. */
static int crash_at(const char *point, const char *who) {
    const char *at = getenv("PDNS_RELAY_CRASH_AT");
    size_t n = strlen(point);
    return at && strncmp(at, point, n) == 0 &&
           (at[n] == '\0' || (at[n] == ':' && strcmp(at + n + 1, who) == 0));
}

/* Appends a batch to a partner's outbox. */
static int outbox_write(const partner *pt, pdns_buf *b) {
    const char *name = pt->pol->partner;
    if (crash_at("outbox-before", name))
        raise(SIGKILL);
    if (crash_at("outbox-torn", name) && write(pt->fd, b->p, b->len / 2) >= 0)
        raise(SIGKILL);
    int rc = pdns_buf_write_fd(b, pt->fd);
    if (crash_at("outbox-after", name))
        raise(SIGKILL);
    return rc;
}

/* Signs what emit collected as one batch and writes it to the partner's
 * outbox (and the open stream); the context is then empty again. */
static void finish_batch(struct emit_ctx *c) {
    share *s = c->s;
    partner *pt = c->pt;
    double cpu0 = cpu_now();
    totals_flush(s, pt, pt->seq + 1);
    batch_trailer t;
    memset(&t, 0, sizeof(t));
    snprintf(t.origin, sizeof(t.origin), "%s", s->cfg->relay_id);
    snprintf(t.partner, sizeof(t.partner), "%s", pt->pol->partner);
    t.seq = pt->seq + 1;
    t.count = c->n;
    if (batch_lines_root(c->out.p, c->lines, c->n, t.merkle_root) < 0) {
        log_error("policy: partner %s: out of memory hashing a batch of %zu "
                  "records; they are dropped", pt->pol->partner, c->n);
        goto done;
    }
    memcpy(t.prev, pt->chain, BATCH_HASH);
    snprintf(t.policy, sizeof(t.policy), "%s", pt->pol->version);
    t.time = c->now_ms / 1000;
    snprintf(t.tlp, sizeof(t.tlp), "%s", pt->pol->tlp);
    uint8_t chain[BATCH_HASH];
    batch_sign(&t, s->sk, chain);
    pt->signing_s += cpu_now() - cpu0;
    int ok = batch_trailer_encode(&t, &c->out) == 0;
    chain_state was = chain_of(pt);
    /* what left the delay line up to here is the partner's with this batch */
    pt->left_at = c->mark_at;
    pt->left_id = c->mark_id;
    if (ok && s->published)
        s->published(s->published_ctx, pt, t.seq, chain, c->out.p, c->out.len);
    if (!ok || pt->fd < 0) {
        log_error("policy: partner %s: no outbox: a batch of %zu records is not written",
                  pt->pol->partner, c->n);
        goto done;
    }
    chain_state next = {t.seq, {0}, pt->left_at, pt->left_id};
    memcpy(next.chain, chain, BATCH_HASH);
    if (save_chain(s, pt, &next, &was) < 0)
        log_error("policy: partner %s: cannot save the chain state: %s", pt->pol->partner,
                  strerror(errno));
    off_t end = lseek(pt->fd, 0, SEEK_END);
    if (outbox_write(pt, &c->out) == 0) {
        pt->seq = t.seq;
        snprintf(pt->batch_version, sizeof(pt->batch_version), "%s", t.policy);
        memcpy(pt->chain, chain, BATCH_HASH);
        pt->batches++;
        /* the journal as one snapshot once it has grown to twice the table
         * and more (after the write: the snapshot counts this batch) */
        if (pt->tot && pt->tot_journal >= 2 * (uint64_t)totals_size(pt->tot) + 100000)
            totals_rewrite(s, pt);
    } else { /* the outbox as it was, and the state that says so */
        log_error("policy: partner %s outbox: %s: a batch of %zu records is not written",
                  pt->pol->partner, strerror(errno), c->n);
        if (end < 0 || ftruncate(pt->fd, end) < 0 || save_chain(s, pt, &was, NULL) < 0)
            log_error("policy: partner %s: cannot put its outbox and chain state back: %s",
                      pt->pol->partner, strerror(errno));
    }
done:
    c->out.len = 0;
    c->n = 0;
}

/* A record leaves the delay line (or the rate limit's hold), passed by
 * the policy in force now (delay_line_release judged it again). */
static void emit(void *vctx, const policy_out *o) {
    struct emit_ctx *c = vctx;
    partner *pt = c->pt;
    pdns_record r = o->rec;
    totals_entry te;
    int64_t at;
    uint64_t id;
    delay_line_last(pt->delay, &at, &id); /* this record's place */
    c->line.len = 0;
    if (pt->tot) {
        totals_apply(pt->tot, &r, &te);
        if (pdns_buf_append(&pt->tot_pending, &te, sizeof(te)) < 0)
            return;
    }
    if (cof_encode(&r, o->cof_flags, &c->line) < 0)
        return;
    /* a batch fits the partner's frame: a full one goes out first */
    if (c->n && c->out.len + c->line.len + TRAILER_MAX > c->budget)
        finish_batch(c);
    hashmany_span *nl = pdns_grow(c->lines, &c->cap, c->n, sizeof(*nl), 256);
    if (!nl)
        return;
    c->lines = nl;
    size_t start = c->out.len;
    if (pdns_buf_append(&c->out, c->line.p, c->line.len) < 0)
        return;
    c->lines[c->n].off = start;
    c->lines[c->n++].len = c->line.len - 1;
    c->mark_at = at;
    c->mark_id = id;
    c->pt->sent++;
}

/* What is due for a partner goes out as signed batches, each at most the
 * partner's frame size (endpoint.max_frame, 1,000,000 bytes by default),
 * so that every D4 frame carries whole batches. */
void share_tick(share *s, int64_t now_ms) {
    for (size_t i = 0; i < s->np; i++) {
        partner *pt = &s->p[i];
        struct emit_ctx c = {s, pt, now_ms, SHARE_BATCH_BYTES, {0}, {0}, NULL, 0, 0, 0, 0};
        if (pt->pol->max_frame)
            c.budget = pt->pol->max_frame;
        /* the rate limit: a token bucket; what exceeds it waits in the
         * delay line (the outbox) for the next ticks, never dropped */
        size_t max = SIZE_MAX;
        if (pt->pol->rate > 0) {
            if (!pt->tokens_ms) {
                pt->tokens = pt->pol->burst;
                pt->tokens_ms = now_ms;
            }
            pt->tokens += (double)(now_ms - pt->tokens_ms) / 1000.0 * pt->pol->rate;
            if (pt->tokens > pt->pol->burst)
                pt->tokens = pt->pol->burst;
            pt->tokens_ms = now_ms;
            max = (size_t)pt->tokens;
        }
        size_t before = delay_line_size(pt->delay);
        /* judged again by the policy in force now: revoking or narrowing a
         * partner reaches what already waits, and the batch's trailer names
         * the version that judged every record in it */
        uint64_t denied[POLICY_VERDICT_COUNT] = {0};
        size_t popped = delay_line_release(pt->delay, now_ms, max, pt->pol, &s->env,
                                           emit, &c, denied);
        for (int v = 1; v < POLICY_VERDICT_COUNT; v++) {
            pt->denied[v] += denied[v];
            pt->denied_at_release += denied[v];
        }
        if (pt->pol->rate > 0) {
            pt->tokens -= (double)popped;
            if (popped == max && before > popped)
                pt->rate_held = before - popped;
        }
        if (c.n)
            finish_batch(&c);
        free(c.lines);
        pdns_buf_free(&c.line);
        pdns_buf_free(&c.out);
    }
}

void share_stop(share *s) {
    while (s->np)
        partner_drop(s, &s->p[s->np - 1]);
    free(s->p);
    for (size_t i = 0; s->dyn_names && i < 2 * (s->env.n - s->n_static); i++)
        free(s->dyn_names[i]);
    free(s->dyn_names);
    free(s->src);
    sodium_free(s->sk);
    s->p = NULL;
    s->src = NULL;
    s->sk = NULL;
}

int share_partner_active(const share *s, const char *name, int64_t now_s) {
    const partner *pt = find_partner(s, name);
    const policy *p = pt ? pt->pol : NULL;
    return p && p->enabled && (!p->valid_until || now_s < p->valid_until);
}

int share_metrics(const share *s, pdns_buf *b) {
    int rc = 0;
    if (!s->cfg || !s->cfg->policy_dir[0])
        return 0;
    rc |= pdns_buf_printf(b, "# TYPE pdns_relay_policy_reloads_total counter\n"
                 "pdns_relay_policy_reloads_total %" PRIu64 "\n"
                 "# TYPE pdns_relay_policy_refused_total counter\n"
                 "pdns_relay_policy_refused_total %" PRIu64 "\n"
                 "# HELP pdns_relay_partner_info The policy version in force, per partner.\n"
                 "# TYPE pdns_relay_partner_info gauge\n",
              s->reloads, s->reload_errors);
    for (size_t i = 0; i < s->np; i++)
        rc |= pdns_buf_printf(b, "pdns_relay_partner_info{partner=\"%s\",version=\"%s\"} 1\n",
                  s->p[i].pol->partner, s->p[i].pol->version);
    rc |= pdns_buf_printf(b, "# TYPE pdns_relay_partner_records_total counter\n");
    for (size_t i = 0; i < s->np; i++)
        rc |= pdns_buf_printf(b, "pdns_relay_partner_records_total{partner=\"%s\"} %" PRIu64 "\n",
                  s->p[i].pol->partner, s->p[i].sent);
    rc |= pdns_buf_printf(b, "# TYPE pdns_relay_partner_batches_total counter\n");
    for (size_t i = 0; i < s->np; i++)
        rc |= pdns_buf_printf(b, "pdns_relay_partner_batches_total{partner=\"%s\"} %" PRIu64 "\n",
                              s->p[i].pol->partner, s->p[i].batches);
    rc |= pdns_buf_printf(b, "# HELP pdns_relay_partner_signing_seconds_total CPU time spent hashing (leaves, Merkle tree) and signing batches.\n"
                             "# TYPE pdns_relay_partner_signing_seconds_total counter\n");
    for (size_t i = 0; i < s->np; i++)
        rc |= pdns_buf_printf(b, "pdns_relay_partner_signing_seconds_total{partner=\"%s\"} %.6f\n",
                              s->p[i].pol->partner, s->p[i].signing_s);
    rc |= pdns_buf_printf(b, "# HELP pdns_relay_partner_rate_held Records waiting because of the partner's rate limit (at the last tick).\n"
                             "# TYPE pdns_relay_partner_rate_held gauge\n");
    for (size_t i = 0; i < s->np; i++)
        rc |= pdns_buf_printf(b, "pdns_relay_partner_rate_held{partner=\"%s\"} %" PRIu64 "\n",
                              s->p[i].pol->partner, s->p[i].rate_held);
    rc |= pdns_buf_printf(b, "# TYPE pdns_relay_partner_delayed gauge\n");
    for (size_t i = 0; i < s->np; i++)
        rc |= pdns_buf_printf(b, "pdns_relay_partner_delayed{partner=\"%s\"} %zu\n",
                  s->p[i].pol->partner, delay_line_size(s->p[i].delay));
    rc |= pdns_buf_printf(b, "# HELP pdns_relay_partner_denied_total Records a policy kept from its partner, by reason.\n"
                 "# TYPE pdns_relay_partner_denied_total counter\n");
    for (size_t i = 0; i < s->np; i++)
        for (int v = 1; v < POLICY_VERDICT_COUNT; v++)
            rc |= pdns_buf_printf(b, "pdns_relay_partner_denied_total{partner=\"%s\",reason=\"%s\"} %" PRIu64 "\n",
                      s->p[i].pol->partner, policy_verdict_name((enum policy_verdict)v),
                      s->p[i].denied[v]);
    rc |= pdns_buf_printf(b, "# HELP pdns_relay_partner_denied_at_release_total Records admitted to the delay line that the policy in force at their release kept back (counted in denied_total too).\n"
                 "# TYPE pdns_relay_partner_denied_at_release_total counter\n");
    for (size_t i = 0; i < s->np; i++)
        rc |= pdns_buf_printf(b, "pdns_relay_partner_denied_at_release_total{partner=\"%s\"} %" PRIu64 "\n",
                  s->p[i].pol->partner, s->p[i].denied_at_release);
    static const struct { const char *name, *type, *help; } tot[] = {
        {"pdns_relay_partner_totals_triples", "gauge",
         "Triples whose totals are kept, for a partner whose policy has counts total."},
        {"pdns_relay_partner_totals_evicted_total", "counter",
         "Triples forgotten at max_totals; their next release starts a new total."},
        {"pdns_relay_partner_totals_journal_errors_total", "counter",
         "Failed writes of the totals journal."}};
    for (int k = 0; k < 3; k++) {
        rc |= pdns_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", tot[k].name, tot[k].help,
                              tot[k].name, tot[k].type);
        for (size_t i = 0; i < s->np; i++) {
            const partner *pt = &s->p[i];
            if (!pt->tot)
                continue;
            uint64_t v = k == 0 ? totals_size(pt->tot) : k == 1 ? totals_evicted(pt->tot)
                                                                : pt->tot_errors;
            rc |= pdns_buf_printf(b, "%s{partner=\"%s\"} %" PRIu64 "\n", tot[k].name,
                                      pt->pol->partner, v);
        }
    }
    rc |= pdns_buf_printf(b, "# TYPE pdns_relay_partner_delay_full_total counter\n");
    for (size_t i = 0; i < s->np; i++)
        rc |= pdns_buf_printf(b, "pdns_relay_partner_delay_full_total{partner=\"%s\"} %" PRIu64 "\n",
                  s->p[i].pol->partner, s->p[i].delay_full);
    return rc ? -1 : 0;
}
