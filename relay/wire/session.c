/* session.c - D4 session state machine. See session.h. */
#include "session.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

static const char *reject_names[D4R_COUNT] = {
    "none", "hmac", "unknown_uuid", "version", "oversize", "type",
    "timeout", "uuid_change", "duplicate", "meta", "batch", "limit"};

const char *d4_reject_name(enum d4_reject r) {
    return (unsigned)r < D4R_COUNT ? reject_names[r] : "unknown";
}

const char *d4_close_name(enum d4_close c) {
    static const char *const names[D4C_COUNT] = {"peer", "idle", "rejected",
                                                 "stopping"};
    return (unsigned)c < D4C_COUNT ? names[c] : "unknown";
}

void d4_session_init(d4_session *s, const d4_session_conf *conf) {
    memset(s, 0, sizeof(*s));
    s->conf = conf;
    d4_reader_init(&s->rd, conf->max_payload);
    s->carry.max = conf->max_line;
}

static int *slot(d4_session *s) {
    return s->type == D4_TYPE_PASSIVEDNS ? &s->sensor->active_csv
                                         : &s->sensor->active_ext;
}

void d4_session_free(d4_session *s) {
    if (s->claimed)
        (*slot(s))--;
    s->claimed = 0;
    d4_reader_free(&s->rd);
    pdns_buf_free(&s->carry);
}

int d4_session_partial(const d4_session *s) {
    return d4_reader_partial(&s->rd);
}

#define FAIL(code, ...)                                                      \
    do {                                                                     \
        *why = (code);                                                       \
        snprintf(msg, msglen, __VA_ARGS__);                                  \
        return -1;                                                           \
    } while (0)

/* Hands one line to the session's consumer: CSV lines to ops->line,
 * a partner's "pdns-cof" lines to ops->batch_line (which may refuse). */
static int deliver(d4_session *s, const d4_session_ops *ops, void *ctx,
                   char *line, size_t n, char *err, size_t errlen) {
    if (s->type == D4_TYPE_EXTENDED)
        return ops->batch_line(ctx, s->sensor, line, n, err, errlen);
    ops->line(ctx, s->sensor, line, n);
    return 0;
}

/* Cuts a payload into lines, joining with the carried partial line. Lines
 * are handed over in place (mutable). Returns 0, or -1 when the consumer
 * refused a line. */
static int split_lines(d4_session *s, const d4_session_ops *ops, void *ctx,
                       char *p, size_t len, char *err, size_t errlen) {
    char *end = p + len;
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (s->skipping) {
            if (nl)
                s->skipping = 0;
        } else if (s->carry.len || !nl) {
            if (pdns_buf_append(&s->carry, p, n) < 0) {
                s->carry.len = 0;
                s->skipping = nl == NULL;
                ops->line_too_long(ctx, s->sensor);
            } else if (nl) {
                size_t cl = s->carry.len;
                s->carry.len = 0;
                if (cl && deliver(s, ops, ctx, s->carry.p, cl, err, errlen) < 0)
                    return -1;
            }
        } else if (n > s->conf->max_line) {
            ops->line_too_long(ctx, s->sensor);
        } else if (n && deliver(s, ops, ctx, p, n, err, errlen) < 0) {
            return -1;
        }
        p += n + (nl ? 1 : 0);
    }
    return 0;
}

/* Type-2 meta header: a JSON object with a "type" string. */
static int read_meta(d4_session *s, const uint8_t *p, size_t len) {
    json_error_t e;
    json_t *o = json_loadb((const char *)p, len, 0, &e);
    json_t *t = o ? json_object_get(o, "type") : NULL;
    int ok = t && json_is_string(t) &&
             json_string_length(t) < sizeof(s->meta_type) &&
             json_string_length(t) > 0;
    if (ok)
        snprintf(s->meta_type, sizeof(s->meta_type), "%s",
                 json_string_value(t));
    json_decref(o);
    return ok ? 0 : -1;
}

/* A complete frame from sensor sn, whose header check_header passed (the
 * uuid is known, the type taken, nothing changed mid-session): the HMAC,
 * then the first frame pins the session. */
static int on_frame(d4_session *s, const d4_session_ops *ops, void *ctx,
                    relay_sensor *sn, const d4_header *h, uint8_t *payload,
                    size_t plen, enum d4_reject *why, char *msg, size_t msglen) {
    if (d4_hmac_verify(sn->key, sn->keylen, h, payload, plen) != 0)
        FAIL(D4R_HMAC, "bad HMAC from sensor %s", sn->name);
    uint8_t stype = h->type == D4_TYPE_META ? D4_TYPE_EXTENDED : h->type;
    if (!s->sensor) { /* the first frame pins uuid and type */
        s->sensor = sn;
        s->type = stype;
        if (s->conf->exclusive && *slot(s) > 0) {
            s->sensor = NULL;
            FAIL(D4R_DUPLICATE, "sensor %s already has a type %u session",
                 sn->name, stype);
        }
        (*slot(s))++;
        s->claimed = 1;
    }
    sn->frames++;
    sn->bytes += D4_HEADER_SIZE + plen;
    s->frames++;

    switch (h->type) {
    case D4_TYPE_PASSIVEDNS:
        split_lines(s, ops, ctx, (char *)payload, plen, msg, msglen);
        return 0;
    case D4_TYPE_META:
        if (read_meta(s, payload, plen) < 0)
            FAIL(D4R_META, "bad meta header from sensor %s: want a JSON "
                 "object with a \"type\" string", sn->name);
        return 0;
    default: /* D4_TYPE_EXTENDED */
        if (!s->meta_type[0])
            FAIL(D4R_META, "type 254 from sensor %s without a type-2 meta "
                 "header", sn->name);
        if (strcmp(s->meta_type, "pdns-cof") == 0 && sn->is_partner &&
            ops->batch_line) {
            if (split_lines(s, ops, ctx, (char *)payload, plen, msg, msglen) < 0) {
                *why = D4R_BATCH;
                return -1;
            }
            return 0;
        }
        FAIL(D4R_TYPE, "extended type \"%s\" from sensor %s is not accepted "
             "(signed \"pdns-cof\" streams are taken only from registered "
             "partner relays)", s->meta_type, sn->name);
    }
}

/* What a header alone tells, judged before any of its payload is kept: an
 * unknown uuid, another uuid inside a session, or a type the session (or
 * the relay) does not take ends the session at its 62nd byte, so that an
 * unauthenticated peer cannot make the relay hold a payload. The HMAC
 * needs the payload: it is checked when the frame is complete. */
struct header_check {
    d4_session *s;
    const d4_session_ops *ops;
    void *ctx;
    enum d4_reject why;
    char msg[256];
};

static int check_header(void *ctx, const d4_header *h) {
    struct header_check *c = ctx;
    d4_session *s = c->s;
    relay_sensor *sn = s->sensor;
    char hex[33];
    uint8_t stype = h->type == D4_TYPE_META ? D4_TYPE_EXTENDED : h->type;
    if (!sn || memcmp(sn->uuid, h->uuid, 16) != 0) {
        pdns_uuid_hex(h->uuid, hex);
        if (s->sensor) {
            c->why = D4R_UUID_CHANGE;
            snprintf(c->msg, sizeof(c->msg), "uuid changed from sensor %s to %s "
                     "inside a session", s->sensor->name, hex);
            return -1;
        }
        if (!(sn = c->ops->lookup(c->ctx, h->uuid))) {
            c->why = D4R_UNKNOWN_UUID;
            snprintf(c->msg, sizeof(c->msg), "unknown sensor uuid %s", hex);
            return -1;
        }
    }
    c->why = D4R_TYPE;
    if (sn->is_partner && stype != D4_TYPE_EXTENDED)
        snprintf(c->msg, sizeof(c->msg), "partner relay %s sent type %u: partner "
                 "relays send type 2 + 254 \"pdns-cof\"", sn->name, h->type);
    else if (!s->sensor && (stype == D4_TYPE_PASSIVEDNS ? !s->conf->accept_csv
                            : stype == D4_TYPE_EXTENDED ? !s->conf->accept_extended : 1))
        snprintf(c->msg, sizeof(c->msg), "type %u from sensor %s is not accepted",
                 h->type, sn->name);
    else if (s->sensor && stype != s->type)
        snprintf(c->msg, sizeof(c->msg), "type changed from %u to %u inside a "
                 "session from sensor %s", s->type, h->type, sn->name);
    else {
        s->framing = sn; /* the frame's payload follows, maybe over many reads */
        return 0;
    }
    return -1;
}

int d4_session_feed(d4_session *s, const d4_session_ops *ops, void *ctx,
                    const uint8_t *data, size_t len, enum d4_reject *why,
                    char *msg, size_t msglen) {
    struct header_check hc = {s, ops, ctx, D4R_NONE, ""};
    while (len > 0) {
        const d4_header *h;
        const uint8_t *payload = NULL;
        size_t used, plen = 0;
        int st = d4_reader_feed(&s->rd, data, len, &used, &h, &payload, &plen,
                                check_header, &hc);
        data += used;
        len -= used;
        if (st == D4_E_VERSION)
            FAIL(D4R_VERSION, "unsupported D4 version %u", s->rd.h.version);
        if (st == D4_E_REFUSED)
            FAIL(hc.why, "%s", hc.msg);
        if (st == D4_E_SIZE)
            FAIL(D4R_OVERSIZE, "frame payload of %u bytes is over the "
                 "maximum of %u", s->rd.h.size, s->rd.max_payload);
        if (st == D4_FRAME &&
            on_frame(s, ops, ctx, s->framing, h, (uint8_t *)payload, plen, why, msg,
                     msglen) < 0)
            return -1;
    }
    return 0;
}
