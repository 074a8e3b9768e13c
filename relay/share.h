/* share.h - the per-partner stage: every mixer batch goes through each
 * partner's policy; what passes waits in that partner's delay line and is
 * then written to the partner's outbox (today a COF file per partner in
 * policies.outbox_dir; the signed-delivery stage takes over from there).
 * Policies are loaded from policies.dir and reloaded on SIGHUP and when a
 * file there changes; a file that fails is refused and that partner keeps
 * its old policy; a batch is always judged by one version, whole. */
#ifndef PDNS_SHARE_H
#define PDNS_SHARE_H

#include "batch.h"
#include "buf.h"
#include "config.h"
#include "delay.h"
#include "policy.h"
#include "totals.h"

/* The largest signed batch, trailer included, for a partner whose policy
 * has no endpoint.max_frame: d4-core's default frame limit. */
#define SHARE_BATCH_BYTES 1000000

/* The policy environment of a configuration: its sensors and queues by
 * mixer number. src is allocated; free() it. Returns 0, or -1. */
int share_env_build(const relay_config *cfg, policy_source **src,
                    policy_env *env);

typedef struct partner {
    policy *pol;
    char file[1100];
    delay_line *delay;
    int fd;
    uint64_t sent;
    uint64_t denied[POLICY_VERDICT_COUNT];
    uint64_t denied_at_release; /* of those, held back when they left the delay line */
    uint64_t delay_full;
    uint64_t batches;
    double signing_s;         /* CPU time in leaf, Merkle and signature work */
    double tokens;            /* rate limit: records that may go now */
    int64_t tokens_ms;
    uint64_t rate_held;       /* records held back by the rate limit */
    uint64_t seq;             /* the last batch's sequence number */
    char batch_version[33];   /* the policy version it carried ("": none yet) */
    uint8_t chain[BATCH_HASH];/* and its chain hash: the next one's prev */
    int64_t left_at;          /* the delay line's place of the last record in */
    uint64_t left_id;         /* a batch handed out (delay_line_last) */
    int seen;                 /* present in the last directory scan */
    /* "counts": "total": what was sent of each triple, journalled in
     * outbox_dir/<partner>.totals (fixed-size entries, the last wins) */
    totals *tot;
    uint64_t tot_max;         /* the policy's max_totals the table has */
    int tot_fd;
    uint64_t tot_journal;     /* entries in the journal file */
    uint64_t tot_errors;      /* journal writes that failed */
    pdns_buf tot_pending;     /* the entries of the batch being made */
} partner;

typedef struct share {
    const relay_config *cfg;
    policy_source *src;
    size_t n_static;          /* sources from the configuration */
    char **dyn_names;         /* partner-path sources added at run time */
    policy_env env;
    partner *p;
    size_t np;
    mixer_rng rng;
    uint8_t *sk;              /* the relay's signing key (sodium_malloc) */
    /* told of every signed batch written (the open stream listens), with
     * its chain hash (the next batch's prev) */
    void (*published)(void *ctx, const partner *pt, uint64_t seq, const uint8_t *chain,
                      const char *text, size_t len);
    void *published_ctx;
    /* the totals ("counts": "total") just written to the partner's journal
     * (whole: the table as a whole, in place of what came before); the
     * context is published_ctx */
    void (*totals_written)(void *ctx, const partner *pt, const totals_entry *e, size_t n,
                           int whole);
    uint64_t reloads, reload_errors;
} share;

/* Continues partner pt's chain at seq, whose batch had chain hash chain
 * and took the delay line up to (left_at, left_id) (what its outbox in
 * Redis says was appended last), when that is further than the chain
 * state in outbox_dir: the relay runs on another machine now
 * (mixer.journal "redis"). Returns 1 when taken, 0 when not needed. */
int share_adopt_chain(share *s, partner *pt, uint64_t seq, const uint8_t *chain,
                      int64_t left_at, uint64_t left_id);

/* Partner pt's totals as another process left them (its copy in Redis):
 * set in the table, and the journal rewritten (and so the copy too: with
 * e NULL, this process's table is the copy). */
void share_adopt_totals(share *s, partner *pt, const totals_entry *e, size_t n);

/* The mark an outbox in Redis keeps of its last batch, after "<boot>
 * <seq> " (`...:last`): "<chain hash hex>", and " <delay line place>"
 * when place is set (the batch is the partner's last: its place is where
 * the delay line is). */
#define SHARE_MARK_MAX (2 * BATCH_HASH + 48)
void share_mark(const partner *pt, const uint8_t chain[BATCH_HASH], int place,
                char out[SHARE_MARK_MAX]);

/* Reads a `...:last` value, "<boot> <seq> <chain hash hex>[ <place>]":
 * 0 with the seq, chain hash and place (0:0 when it has none), or -1. */
int share_mark_read(const char *text, uint64_t *seq, uint8_t chain[BATCH_HASH],
                    int64_t *left_at, uint64_t *left_id);

/* An outbox file (fd, opened for reading and writing; path for the log)
 * holds whole batches, each ending in its trailer line. A crash while one
 * was being written leaves part of it: cut off here. *seq is the seq of
 * the last whole batch (0: none). Returns 0, or -1 when the file cannot be
 * read or mended (errno), or when no trailer is within the largest batch
 * of its end (not an outbox this relay wrote: left alone). */
int share_outbox_mend(int fd, const char *path, uint64_t *seq);

/* The batches of a partner's outbox file after batch `after` (the last in
 * its outbox in Redis, whose chain hash is prev), oldest first, each given
 * to fn with its seq, the mark the outbox in Redis keeps ("<chain hash
 * hex>", and for the partner's last batch " <delay line place>") and its
 * text: what a stop kept from reaching Redis. They must go on from it (the
 * first names prev, the seqs follow on, each is signed by this relay and
 * its records match its trailer's count and Merkle root); the first that
 * does not ends the walk (logged). Returns how many were
 * given, -2 when batch `after` is not in the file's last 64 MiB (logged),
 * or -1 (errno). */
typedef void (*share_batch_fn)(void *ctx, uint64_t seq, const char *mark, const char *text,
                               size_t len);
int share_outbox_since(share *s, const char *name, uint64_t after,
                       const uint8_t prev[BATCH_HASH], share_batch_fn fn, void *ctx);

/* The partners' delay lines in the mixer's checkpoint: save appends, for
 * each partner with records waiting, "<partner> <bytes>\n" and its saved
 * line (0, or -1 out of memory); restore puts them back (the sensors
 * mapped as the pool's), without the records each partner's chain state
 * says had left, and logs what it did. */
int share_save_delays(const share *s, pdns_buf *out);
void share_restore_delays(share *s, const char *d, size_t len, const int32_t *map,
                          size_t nmap);

/* The mixer number of records from partner that passed through path
 * (a comma-separated list of relays, the partner first): a source of its
 * own, so that policies can keep those records from every relay on the
 * path. Added on first sight; every policy is re-resolved. Returns the
 * number, or -1. */
int share_source_for(share *s, const char *who, const char *path);

/* Loads every *.json in cfg->policy_dir. Returns 0 (files that fail are
 * logged and skipped), or -1 when the directories cannot be used. */
int share_start(share *s, const relay_config *cfg);

/* Judges a batch for every partner; passing records enter delay lines. */
void share_batch(share *s, const mixer_batch *b, int64_t now_ms);

/* Writes what is due to the outboxes. */
void share_tick(share *s, int64_t now_ms);

/* Re-reads the policy directory (SIGHUP, or a change in it). */
void share_reload(share *s);

void share_stop(share *s);

int share_metrics(const share *s, pdns_buf *b);

/* 1 when the partner's policy is loaded, enabled and not past valid_until
 * at now_s: only then may anything more reach it, its outbox included. */
int share_partner_active(const share *s, const char *name, int64_t now_s);

#endif
