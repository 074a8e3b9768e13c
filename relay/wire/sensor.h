/* sensor.h - a registered D4 sensor: identity, HMAC key, CSV layout and
 * its counters. Filled by the config loader; read by the D4 sessions. */
#ifndef PDNS_SENSOR_H
#define PDNS_SENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "csv.h"

typedef struct relay_sensor {
    char name[64];
    char uuid_hex[33];
    uint8_t uuid[16];
    uint8_t *key;        /* HMAC key (sodium_malloc'd), wiped on free */
    size_t keylen;
    char key_file[512];
    char org[64];        /* organisation, "" when not declared */
    char group[64];      /* sensor group, "" when not declared */
    uint16_t index;      /* the mixer's sensor number */
    /* a partner relay sending signed "pdns-cof" batches (partners_in) */
    int is_partner;
    uint8_t pubkey[32];
    char addressee[64];  /* what its batches must name as their partner: us */
    int in_have;         /* in_seq/in_chain hold the last batch taken */
    uint64_t in_seq;
    uint8_t in_chain[32];
    uint64_t in_batches, in_duplicates, in_refused;
    uint64_t in_missing; /* batches the seqs taken skipped (never arrived) */
    csv_layout layout;
    /* live state */
    int active_csv;      /* sessions sending type 8 */
    int active_ext;      /* sessions sending type 2 + 254 */
    uint64_t records;    /* answers accepted */
    uint64_t errors;     /* NXDOMAIN/SERVFAIL... lines accepted */
    uint64_t rejected;   /* lines rejected */
    uint64_t frames;
    uint64_t bytes;
    char sample[128];    /* a name it sent: its first, then every 1024th
                          * (the console shows it; printable ASCII only) */
    uint64_t seen_total; /* frames + lines when last looked at (the tick) */
    int64_t last_seen_ms;/* when that changed (Unix ms), 0: not since start */
} relay_sensor;

#endif
