/* policy.h - one partner's sharing policy: parse, validate, evaluate,
 * pseudonymise.
 *
 * A policy is a JSON file (pdns-relay-policy(5) and docs/guide.md document every field). Semantics:
 * default deny (a dimension with no allow list allows nothing); deny wins
 * over allow; where the relay's own settings (the mixer's) and the policy
 * disagree, the more restrictive wins. A record is judged on the mixer's
 * facts about its triple: the sensors that saw it, its count, its times.
 *
 * Pure logic: loading reads the policy file and the key files it names,
 * nothing else; evaluation is a function of (policy, environment, entry,
 * time). Every problem in a file is reported, as FILE:LINE:COLUMN. */
#ifndef PDNS_POLICY_H
#define PDNS_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "pool.h"
#include "record.h"
#include "suffix.h"

/* ---- what the policy stage knows about the relay ------------------------ */

/* One mixer sensor number: a sensor, a d4-core queue or a partner relay. */
typedef struct policy_source {
    const char *name;
    const char *org;          /* "" when none */
    const char *group;        /* "" when none */
    const uint8_t *uuid;      /* 16 bytes, or NULL */
    enum pdns_source kind;
    const char *partner;      /* kind PDNS_SRC_PARTNER: the partner's name */
    const char *path;         /* kind partner: the relays its records passed
                               * through, comma-separated, the partner first
                               * (NULL: just the partner) */
} policy_source;

typedef struct policy_env {
    const policy_source *src; /* indexed by mixer sensor number */
    size_t n;
    const char *relay_id;
    const mixer_conf *mixer;  /* the relay's own settings, or NULL */
} policy_env;

/* ---- diagnostics ---------------------------------------------------------- */

typedef struct policy_msg {
    int line, col;            /* 0 when not tied to a place */
    int warning;
    char text[480];
} policy_msg;

typedef struct policy_diag {
    char file[512];           /* a copy: the diagnostics outlive the call */
    policy_msg *m;
    size_t n, cap;
    size_t errors, warnings;
    int keys_may_be_missing;  /* in: a key file not there yet is a warning
                               * (policy check without --strict) */
} policy_diag;

void policy_diag_free(policy_diag *d);

/* "FILE:LINE:COLUMN: [warning: ]text" for message i. */
void policy_diag_format(const policy_diag *d, size_t i, char *out,
                        size_t outlen);

/* ---- the policy ------------------------------------------------------------ */

enum policy_id_mode {
    POLICY_ID_STRIP = 0,  /* no sensor_id */
    POLICY_ID_RELAY,      /* the relay's own id */
    POLICY_ID_PSEUDONYM,  /* keyed BLAKE2b of the sensor uuid, per partner */
    POLICY_ID_KEEP        /* the sensor names */
};

enum policy_format { POLICY_FMT_COF = 0, POLICY_FMT_CSV };

typedef struct policy_list {
    char **v;
    size_t n;
} policy_list;

typedef struct policy {
    char path[512];
    char version[33];         /* hex BLAKE2b-128 of the canonical JSON */
    char partner[64];
    char description[256];
    int enabled;
    int64_t valid_until;      /* Unix seconds; 0: no end */
    char tlp[64];

    /* delivery (used by the signed-delivery stage; validated here) */
    char host[256];
    int port;
    char uuid[33];            /* the uuid we present to the partner's D4 */
    char hmac_key_file[512];
    char ca_file[512];
    int insecure;
    enum policy_format format;
    uint8_t csv_rr[8192];     /* passivedns-csv: the rrtypes the receiver takes */
    uint32_t max_frame;
    char partner_pubkey[128];
    uint8_t pin_sha256[32];   /* SHA-256 of the partner's SPKI */
    int have_pin;

    /* what may go */
    uint8_t rr_allow[8192], rr_deny[8192];   /* bitmaps over 65536 types */
    suffix_set *name_allow, *name_deny;
    policy_list own_orgs;     /* the partner's own organisations: their
                               * sightings never count toward its thresholds */
    policy_list sensors_allow, sensors_deny, orgs_allow, orgs_deny,
        groups_allow, groups_deny;
    unsigned sources_allow;   /* bitmask over enum pdns_source */
    int reshare;
    uint8_t *source_ok;       /* per mixer sensor number, resolved */
    size_t n_source_ok;

    /* thresholds and timing (merged with the mixer's: stricter wins) */
    uint32_t min_sensors;
    uint64_t min_count;
    uint32_t min_orgs;
    int64_t delay_min_ms;
    int64_t delay_jitter_ms;
    int64_t time_resolution;

    /* identifiers and fields */
    enum policy_id_mode id_mode;
    uint8_t *pseudonym_key;   /* 32 bytes, sodium_malloc'd */
    char pseudonym_key_file[512];
    int drop_bailiwick, drop_count, drop_origin;
    int count_buckets;
    int counts_total;         /* "counts": "total" (else "delta") */
    uint64_t max_totals;      /* triples whose totals are kept */

    /* rate */
    double rate;              /* records/s; 0: no limit */
    uint64_t outbox_max;      /* batches waiting for delivery, at most */
    int outbox_drop_oldest;   /* when full: drop the oldest (else refuse new) */
    double burst;
} policy;

/* Loads path. Resolves sensor, organisation and group names against env
 * (when env is NULL, names are not checked). Returns the policy, or NULL
 * with every error in d (warnings are added either way). */
policy *policy_load(const char *path, const policy_env *env, policy_diag *d);

/* Re-resolves names against another environment (after a config reload).
 * Returns 0, or -1 with errors in d. */
int policy_resolve(policy *p, const policy_env *env, policy_diag *d);

/* 1 when both policies pseudonymise with the same key: their partners get
 * the same pseudonym for a sensor and can link what each received. */
int policy_same_pseudonym_key(const policy *a, const policy *b);

void policy_free(policy *p);

/* ---- evaluation --------------------------------------------------------------- */

enum policy_verdict {
    POLICY_PASS = 0,
    POLICY_DENY_DISABLED,   /* "disabled" */
    POLICY_DENY_EXPIRED,    /* "expired": valid_until has passed */
    POLICY_DENY_RRTYPE,     /* "rrtype" */
    POLICY_DENY_NAME,       /* "name" */
    POLICY_DENY_SENSOR,     /* "sensor": no allowed sensor saw it */
    POLICY_DENY_OWN,        /* "own": only the partner's own records */
    POLICY_DENY_RESHARE,    /* "reshare": only other partners' records */
    POLICY_DENY_THRESHOLD,  /* "threshold": too few allowed sensors/count */
    POLICY_VERDICT_COUNT
};

const char *policy_verdict_name(enum policy_verdict v);

/* A record as the partner receives it; strings point into the entry and
 * into sid. */
typedef struct policy_out {
    pdns_record rec;          /* sensor_id per id_mode; fields dropped */
    char sid[1024];
    char origin[512];         /* this relay, then every relay upstream */
    uint16_t n_sensors;       /* the allowed sensors it counts */
    unsigned cof_flags;       /* for cof_encode: the fields this partner gets */
} policy_out;

/* Judges one mixer entry at now_s (Unix seconds). On POLICY_PASS fills
 * out. When why is not NULL it gets a sentence for --explain. */
enum policy_verdict policy_decide(const policy *p, const policy_env *env,
                                  const mixer_entry *e, int64_t now_s,
                                  policy_out *out, char *why, size_t whylen);

/* The partner's pseudonym of a sensor uuid: hex of a keyed BLAKE2b-128,
 * stable for one key, unlinkable across keys. out gets 33 bytes. */
void policy_pseudonym(const uint8_t key[32], const uint8_t uuid[16],
                      char out[33]);

/* ---- comparing two policies ---------------------------------------------------- */

/* Calls fn with one sentence per difference that matters to the partner.
 * Returns the number of differences. */
size_t policy_diff(const policy *old, const policy *new_,
                   void (*fn)(void *ctx, const char *sentence), void *ctx);

/* ---- a policy in words ---------------------------------------------------------- */

/* The sections of a description, in the order they are given. */
enum policy_words {
    POLICY_W_GETS = 0,    /* "gets": what may go to the partner */
    POLICY_W_NEVER,       /* "never": what never goes */
    POLICY_W_THRESHOLDS,  /* "thresholds": what a triple needs first */
    POLICY_W_TIMING,      /* "timing": delays, time coarsening, rate */
    POLICY_W_IDENTIFIERS, /* "identifiers": sensor ids and fields */
    POLICY_W_DELIVERY,    /* "delivery": where it goes and how */
    POLICY_W_COUNT
};

const char *policy_words_name(enum policy_words w);

/* Calls fn with one sentence per fact a coordinator reads the policy
 * for, section by section. mixer, when not NULL, is the relay's own
 * settings: thresholds and timing are given as they act (stricter wins),
 * saying where the relay's setting is the one in force. Returns the
 * number of sentences. */
size_t policy_describe(const policy *p, const mixer_conf *mixer,
                       void (*fn)(void *ctx, enum policy_words w, const char *sentence),
                       void *ctx);

#endif
