/* session.h - one D4 connection's protocol state, without the socket.
 *
 * Bytes in; for each complete frame: the sensor is looked up by uuid, the
 * HMAC is checked before anything else looks at the payload, the session's
 * uuid and type are pinned by its first frame, and type-8 payloads are cut
 * into lines (a line split across frames is joined; a session's partial
 * line never meets another session's data). Lines go to a callback. Any
 * protocol violation ends the session with a reason; the caller closes the
 * connection and counts it. No I/O here: the listener and the tests drive
 * it the same way. */
#ifndef PDNS_SESSION_H
#define PDNS_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "d4.h"
#include "sensor.h"

/* Why a session was refused: stable labels for metrics. */
enum d4_reject {
    D4R_NONE = 0,
    D4R_HMAC,          /* "hmac": HMAC does not match */
    D4R_UNKNOWN_UUID,  /* "unknown_uuid" */
    D4R_VERSION,       /* "version": version != 1 */
    D4R_OVERSIZE,      /* "oversize": payload over the maximum */
    D4R_TYPE,          /* "type": type not accepted */
    D4R_TIMEOUT,       /* "timeout": frame not complete in time */
    D4R_UUID_CHANGE,   /* "uuid_change": another uuid inside a session */
    D4R_DUPLICATE,     /* "duplicate": second session for (uuid, type) */
    D4R_META,          /* "meta": bad or missing type-2 meta header */
    D4R_BATCH,         /* "batch": a partner's signed batch failed */
    D4R_LIMIT,         /* "limit": over a connection cap (d4.max_*) */
    D4R_COUNT
};

const char *d4_reject_name(enum d4_reject r);

/* Why a session ended: stable labels for metrics. */
enum d4_close {
    D4C_PEER = 0,      /* "peer": the sensor closed it */
    D4C_IDLE,          /* "idle": nothing received for idle_timeout */
    D4C_REJECTED,      /* "rejected": a protocol violation (enum d4_reject) */
    D4C_STOPPING,      /* "stopping": the relay stopped */
    D4C_COUNT
};

const char *d4_close_name(enum d4_close c);

typedef struct d4_session_ops {
    /* The sensor registered with this uuid, or NULL. */
    relay_sensor *(*lookup)(void *ctx, const uint8_t uuid[16]);
    /* One line of a type-8 payload, newline removed, mutable. */
    void (*line)(void *ctx, relay_sensor *s, char *line, size_t len);
    /* A line longer than max_line was dropped. */
    void (*line_too_long)(void *ctx, relay_sensor *s);
    /* One line of a partner relay's "pdns-cof" stream (records and batch
     * trailers). Returns 0, or -1 with a reason: the session ends. */
    int (*batch_line)(void *ctx, relay_sensor *s, char *line, size_t len,
                      char *err, size_t errlen);
} d4_session_ops;

typedef struct d4_session_conf {
    uint32_t max_payload;  /* frame payload bound (D4 default 1,000,000) */
    size_t max_line;       /* CSV line bound */
    int accept_csv;        /* type 8 (passivedns CSV) sessions allowed */
    int accept_extended;   /* type 2 + 254 sessions allowed */
    int exclusive;         /* one session per (uuid, type) */
} d4_session_conf;

typedef struct d4_session {
    const d4_session_conf *conf;
    d4_reader rd;
    relay_sensor *sensor;  /* pinned by the first frame */
    relay_sensor *framing; /* named by the header of the frame being read */
    uint8_t type;          /* 8, or 254 for a meta-header session */
    int claimed;           /* holds the sensor's exclusivity slot */
    char meta_type[64];    /* from the type-2 meta header */
    pdns_buf carry;        /* partial line waiting for its end */
    int skipping;          /* dropping the rest of an overlong line */
    uint64_t frames;
} d4_session;

void d4_session_init(d4_session *s, const d4_session_conf *conf);

/* Releases the exclusivity slot and the buffers. */
void d4_session_free(d4_session *s);

/* Processes len bytes. Returns 0, or -1 with *why and a message in msg:
 * the session is over and the connection must be closed. */
int d4_session_feed(d4_session *s, const d4_session_ops *ops, void *ctx,
                    const uint8_t *data, size_t len, enum d4_reject *why,
                    char *msg, size_t msglen);

/* 1 when a frame has begun but not finished (the timeout applies). */
int d4_session_partial(const d4_session *s);

#endif
