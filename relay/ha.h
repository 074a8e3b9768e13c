/* ha.h - one relay on several processes (ha.enabled), active-active: every
 * process takes sensors, stores and answers queries, and sends its mixer
 * input to the journal stream in Redis (mix.c); the process holding a
 * lease in the relay's Redis consumes that stream, runs the mixer and
 * delivers to partners. The others follow and take over when it is gone.
 *
 * The lease is {pdns-relay:<relay_id>:mixer}:lease ("<instance> <token>",
 * the token from INCR {...}:fence), in the slot of the mixer's checkpoint,
 * whose script checks it: a process that lost its lease cannot let a batch
 * leave. A follower asks for it every third of ha.lease; the holder renews
 * it every sixth. A renewal refused (another holds it) ends the holder at
 * once. When none was answered for two thirds of ha.lease (Redis slow or
 * away, or the process stood still), the holder asks again on the blocking
 * link, waiting at most a third of the lease, before anything else runs:
 * renewed, it goes on; refused or not answered, it ends (it may not know
 * what happened meanwhile; systemd starts it again, following). A takeover
 * (restoring the pool, replaying the journal, adopting the partners'
 * chains: blocking work that can outlast the lease) renews the lease the
 * same way as it goes (ha_keep), once a third of it has passed since the
 * last renewal. A clean stop gives the lease back. */
#ifndef PDNS_HA_H
#define PDNS_HA_H

#include <stdint.h>
#include <uv.h>

#include "buf.h"
#include "config.h"
#include "rlink.h"
#include "rsync.h"

typedef struct ha {
    const relay_config *cfg;
    rsync *sync;                /* renewals after a stall; the give-back */
    rlink *rl;
    uv_timer_t timer;
    char key[200], fence[200];  /* the lease, the fencing counter */
    char instance[200];
    char val[300];              /* "<instance> <token>" once held */
    char ms[24];                /* ha.lease in milliseconds, as Redis takes it */
    char holder[300];           /* who holds it, as last heard (a follower) */
    uint64_t token;
    uint64_t ok_ms;             /* when the last renewal answered was asked */
    uint64_t sent_ms;           /* when the renewal in flight was asked */
    uint64_t asked_ms;          /* a follower's last request */
    int held, in_flight, timer_on;
    uint64_t renewals, takeovers;
    uint64_t kept;              /* renewals by ha_keep during this takeover */
    void (*on_held)(void *ctx); /* this process now holds the lease */
    void *ctx;
} ha;

/* Starts asking for the lease on the loop (at once, then every third of
 * ha.lease); on_held(ctx) runs when this process gets it, then the lease
 * is renewed. Returns 0, or -1 (out of memory, logged). */
int ha_start(ha *h, const relay_config *cfg, uv_loop_t *loop, const int *stopping,
             void (*on_held)(void *ctx), void *ctx);

/* Blocking work while this process holds the lease (the takeover, on_held)
 * calls this as it goes (ctx: the ha): once a third of the lease has passed
 * since the last renewal, the lease is renewed on the blocking link. Ends
 * the process (exit 3) when the lease is another's or gone, or Redis does
 * not answer past two thirds of it. Nothing when not holding. */
void ha_keep(void *ctx);

/* Gives the lease back (a clean stop) and stops renewing. */
void ha_stop(ha *h);
void ha_free(ha *h);  /* once the loop has closed its handles */
int ha_metrics(const ha *h, pdns_buf *b);

#endif
