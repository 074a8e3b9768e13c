/* mix.h - the relay's mixing stage (mix.c): the pool fed from ingest, ticked
 * on the wall clock, its batches handed to the policy stage. */
#ifndef PDNS_MIX_H
#define PDNS_MIX_H

#include <stdint.h>

#include <uv.h>

#include "buf.h"
#include "config.h"
#include "pool.h"
#include "rlink.h"
#include "rng.h"
#include "rsync.h"
#include "share.h"

typedef struct mix_stage {
    const relay_config *cfg;
    share *sh;                   /* takes every batch */
    mixer_pool *pool;            /* NULL when mixer.enabled is false */
    mixer_rng rng;
    mixer_stats last;            /* the last batch's figures */
    int64_t last_ms;             /* when the last batch left (unix ms), 0 before */
    uint64_t batches, cap_logged;
    uint64_t cap_log_ms;
    int fd;                      /* mixer.output_file, -1 when none */
    int jfd;                     /* the journal file, -1 when none */
    rlink *jrl;                  /* mixer.journal "redis": the journal's link */
    rsync *snap;                 /* and the checkpoint's (blocking) */
    char jkey[160], skey[160];   /* the journal stream and the checkpoint key */
    char rkey[160];              /* how far the mixer has read (cluster-status) */
    const char *fence_key, *fence_val; /* ha: the lease a checkpoint checks (NULL: none) */
    void (*keep)(void *ctx);     /* ha: called as a takeover goes on (ha_keep) */
    void *keep_ctx;
    pdns_buf jbuf;               /* journalled inserts not written yet */
    uint64_t gen;                /* the checkpoint's generation */
    char pos[48];                /* Redis: the stream's last entry the pool took */
    char fp[24];                 /* Redis: this process's sources' fingerprint */
    int mixing;                  /* Redis: this process reads the stream and mixes */
    int reading;                 /* an XRANGE of the stream in flight */
    unsigned page;               /* entries the next XRANGE asks for */
    int64_t lag_ms;              /* the age of the newest entry read, when read */
    uint64_t checkpoint_errors, journal_errors, foreign;
    char *delays;                /* the saved delay lines, until mix_resume */
    size_t delays_len, dnmap;
    int32_t *dmap;               /* their sensors' map (as the pool's) */
} mix_stage;

/* The key `what` ("pool", "journal", "read", "lease", "fence") of relay
 * relay_id's mixer in Redis: all under one hash tag, so in one slot. */
void mix_key(const char *relay_id, const char *what, char *out, size_t n);

/* Starts the stage (nothing to do when the mixer is disabled: m->pool stays
 * NULL). With mixer.journal "redis" it reads the saved pool from Redis
 * first (blocking, a few seconds at most). Returns 0, or -1 after logging
 * why. */
int mix_start(mix_stage *m, const relay_config *cfg, share *sh, uv_loop_t *loop,
              const int *stopping);
/* mixer.journal "redis" with ha: this process now holds the lease; it
 * restores the saved pool and takes the stream since (blocking: as long as
 * the journal since the last checkpoint takes; m->keep is called after
 * every entry). Returns 0, or -1 (logged). Without ha mix_start does
 * this. */
int mix_take_over(mix_stage *m);
/* Once the policy stage runs (and the partners' chains are adopted): the
 * saved delay lines go back to the partners, the first checkpoint is
 * written and, in Redis, the mixer reads the stream on. Returns 0, or -1
 * (in Redis: the checkpoint could not be written; logged). */
int mix_resume(mix_stage *m);
void mix_tick(mix_stage *m);
void mix_stop(mix_stage *m);
void mix_free(mix_stage *m);  /* once the loop has closed its handles */
int mix_metrics(const mix_stage *m, pdns_buf *b);

/* One record of the mixer's input as the journal (and the console's
 * recent records) keep it: put appends it (0, or -1 out of memory); get
 * reads the one at *off into r (pointing into d) and moves *off past it:
 * 1, or 0 at the end (a torn last record is the end). */
int mix_rec_put(pdns_buf *b, const pdns_record *r, uint16_t source, int64_t now_ms);
int mix_rec_get(const char *d, size_t len, size_t *off, pdns_record *r, uint16_t *source,
                int64_t *now_ms);

/* Journals an insert the pool took (ingest's hook; ctx is the stage); in
 * Redis, the mixer's input itself (the pool takes it from the stream). */
void mix_journal(void *ctx, const pdns_record *r, uint16_t source, int64_t now_ms);
/* Writes what was journalled (every loop tick, and when 1 MiB gathered);
 * in Redis, also reads the stream on (the process that mixes). */
void mix_journal_flush(mix_stage *m);

#endif
