/* inbound.h - signed "pdns-cof" batches from a partner relay, as they
 * arrive on a D4 session: records are held until their trailer, and the
 * whole batch is checked (signature with the partner's key, record count,
 * Merkle root, sequence and chain) before any record is used. A batch that
 * fails is refused whole and ends the session; a batch already taken
 * (seq not newer: a resend after a reconnect) is dropped and counted. */
#ifndef PDNS_INBOUND_H
#define PDNS_INBOUND_H

#include "batch.h"
#include "buf.h"
#include "ingest.h"
#include "sensor.h"

typedef struct inbound {
    pdns_buf lines;           /* the batch's records so far, "\n"-ended */
    hashmany_span *at;        /* where each record is in lines */
    size_t n, cap;
} inbound;

/* One line of the stream. The partner's chain state (last sequence number
 * and chain hash) is saved in state_dir after each batch taken, so that a
 * restart still drops resends. Returns 0, or -1 with the reason in err. */
int inbound_line(inbound *ib, ingest *in, relay_sensor *partner,
                 const char *state_dir, char *line, size_t len, char *err,
                 size_t errlen);

/* Loads a partner's saved chain state, if any. */
void inbound_load_state(relay_sensor *partner, const char *state_dir);

void inbound_free(inbound *ib);

#endif
