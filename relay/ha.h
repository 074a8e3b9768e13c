/* ha.h - one relay on several processes (ha.enabled): the process that
 * holds a lease in the relay's Redis runs everything; the others wait on
 * standby and take over when it is gone.
 *
 * The lease is {pdns-relay:<relay_id>:mixer}:lease ("<instance> <token>",
 * the token from INCR {...}:fence), in the slot of the mixer's checkpoint,
 * whose script checks it: a process that lost its lease cannot let a batch
 * leave. The holder renews it every third of ha.lease; a renewal refused
 * (another holds it) or not answered within two thirds of ha.lease ends
 * the process at once (it may not know what happened meanwhile; systemd
 * starts it again, on standby). A clean stop gives the lease back. */
#ifndef PDNS_HA_H
#define PDNS_HA_H

#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "rlink.h"
#include "rsync.h"

typedef struct ha {
    const relay_config *cfg;
    rsync *sync;
    rlink *rl;
    uv_timer_t timer;
    char key[200], fence[200];  /* the lease, the fencing counter */
    char val[300];              /* "<instance> <token>" while held */
    uint64_t token;
    uint64_t ok_ms;             /* the last renewal answered (loop time) */
    int held, renewing, timer_on;
    uint64_t renewals;
} ha;

/* Waits until this process holds the lease (trying every third of
 * ha.lease, running the loop's signal handlers between tries), or until
 * *stopping. Returns 0 when held, -1 when stopping or on a broken
 * configuration (logged). */
int ha_acquire(ha *h, const relay_config *cfg, uv_loop_t *loop, const int *stopping);

/* Keeps renewing it on the loop. Returns 0. */
int ha_start(ha *h, uv_loop_t *loop, const int *stopping);

/* Gives the lease back (a clean stop) and stops renewing. */
void ha_stop(ha *h);
void ha_free(ha *h);  /* once the loop has closed its handles */

#endif
