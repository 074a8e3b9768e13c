/* inbound.c - verification and intake of a partner's signed batches. */
#include "inbound.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "afile.h"
#include "cof.h"
#include "log.h"

#define MAX_BATCH_RECORDS 1000000
#define MAX_BATCH_BYTES ((size_t)256 << 20)

void inbound_free(inbound *ib) {
    pdns_buf_free(&ib->lines);
    free(ib->at);
    ib->at = NULL;
    ib->n = ib->cap = 0;
}

struct intake {
    ingest *in;
    ingest_source src;
    char sid[256];
};

/* Records keep the partner in their provenance: sensor_id becomes
 * "<partner>/<their sensor_id>", origin the partner. */
static int take(void *ctx, const pdns_record *r) {
    struct intake *t = ctx;
    pdns_record c = *r;
    char path[512];
    ingest_source src = t->src;
    /* the relays it passed through: the partner, then what it said */
    int n0 = snprintf(path, sizeof(path), "%s", t->src.name);
    if (r->origin.len && !(r->origin.len == (size_t)n0 &&
                           memcmp(r->origin.p, path, r->origin.len) == 0)) {
        const char *o = r->origin.p;
        size_t ol = r->origin.len;
        if (ol > (size_t)n0 && memcmp(o, path, (size_t)n0) == 0 && o[n0] == ',')
            snprintf(path, sizeof(path), "%.*s", (int)ol, o);
        else
            snprintf(path + n0, sizeof(path) - (size_t)n0, ",%.*s", (int)ol, o);
    }
    if (t->in->relay_id) { /* passed us already: a loop */
        size_t idl = strlen(t->in->relay_id);
        for (const char *q = path; q;) {
            const char *e = strchr(q, ',');
            size_t l = e ? (size_t)(e - q) : strlen(q);
            if (l == idl && memcmp(q, t->in->relay_id, idl) == 0) {
                t->in->m.partner_loops++;
                return 0;
            }
            q = e ? e + 1 : NULL;
        }
    }
    if (strchr(path, ',') && t->in->source_for) {
        int k = t->in->source_for(t->in->source_ctx, t->src.name, path);
        if (k >= 0)
            src.index = (uint16_t)k;
    }
    int n = snprintf(t->sid, sizeof(t->sid), "%s%s%.*s", t->src.name,
                     r->sensor_id.len ? "/" : "", (int)r->sensor_id.len,
                     r->sensor_id.p);
    c.sensor_id.p = t->sid;
    c.sensor_id.len = n < 0 ? 0 : (size_t)n < sizeof(t->sid) ? (size_t)n : sizeof(t->sid) - 1;
    c.origin.p = path;
    c.origin.len = strlen(path);
    c.source = PDNS_SRC_PARTNER;
    ingest_record(t->in, &src, &c);
    return 0;
}

static int fail(inbound *ib, relay_sensor *p, char *err, size_t errlen,
                const char *what) {
    snprintf(err, errlen, "partner %s: %s", p->name, what);
    p->in_refused++;
    ib->lines.len = 0;
    ib->n = 0;
    return -1;
}

static void state_path(const relay_sensor *p, const char *dir, char *out,
                       size_t n) {
    snprintf(out, n, "%s/partner-in-%s.state", dir, p->name);
}

void inbound_load_state(relay_sensor *p, const char *dir) {
    char path[1100], hex[80];
    unsigned long long seq;
    size_t got = 0;
    state_path(p, dir, path, sizeof(path));
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    if (fscanf(f, "seq %llu\nchain %70s", &seq, hex) == 2 &&
        sodium_hex2bin(p->in_chain, BATCH_HASH, hex, strlen(hex), NULL, &got, NULL) == 0 &&
        got == BATCH_HASH) {
        p->in_have = 1;
        p->in_seq = seq;
    } else {
        log_error("inbound: %s is damaged: partner %s's chain starts again", path, p->name);
    }
    fclose(f);
}

static void save_state(const relay_sensor *p, const char *dir) {
    char path[1100], hex[65], text[128];
    state_path(p, dir, path, sizeof(path));
    sodium_bin2hex(hex, sizeof(hex), p->in_chain, BATCH_HASH);
    int n = snprintf(text, sizeof(text), "seq %llu\nchain %s\n",
                     (unsigned long long)p->in_seq, hex);
    if (pdns_afile_write(path, text, (size_t)n) < 0)
        log_error("inbound: cannot write %s: %s", path, strerror(errno));
}

static int end_batch(inbound *ib, ingest *in, relay_sensor *p,
                     const char *state_dir, char *line, size_t len, char *err,
                     size_t errlen) {
    batch_trailer t;
    char why[300], kid[17];
    uint8_t root[BATCH_HASH], chain[BATCH_HASH];
    if (batch_trailer_decode(line, len, &t, why, sizeof(why)) < 0)
        return fail(ib, p, err, errlen, why);
    batch_key_id(p->pubkey, kid);
    if (strcmp(kid, t.key_id) != 0 || batch_verify_sig(&t, p->pubkey, chain) < 0) {
        snprintf(why, sizeof(why), "batch seq %" PRIu64 ": not signed by the "
                 "partner's key", t.seq);
        return fail(ib, p, err, errlen, why);
    }
    if (p->addressee[0] && strcmp(t.partner, p->addressee) != 0) {
        snprintf(why, sizeof(why), "batch seq %" PRIu64 " is addressed to \"%.64s\", "
                 "not to us (\"%s\")", t.seq, t.partner, p->addressee);
        return fail(ib, p, err, errlen, why);
    }
    if (t.count != ib->n) {
        snprintf(why, sizeof(why), "batch seq %" PRIu64 ": the trailer counts %"
                 PRIu64 " records, %zu arrived", t.seq, t.count, ib->n);
        return fail(ib, p, err, errlen, why);
    }
    if (batch_lines_root(ib->lines.p, ib->at, ib->n, root) < 0)
        return fail(ib, p, err, errlen, "out of memory");
    if (sodium_memcmp(root, t.merkle_root, BATCH_HASH) != 0) {
        snprintf(why, sizeof(why), "batch seq %" PRIu64 ": the records do not "
                 "match the signed Merkle root", t.seq);
        return fail(ib, p, err, errlen, why);
    }
    if (p->in_have && t.seq <= p->in_seq) { /* a resend: already taken */
        p->in_duplicates++;
        ib->lines.len = 0;
        ib->n = 0;
        return 0;
    }
    if (p->in_have && t.seq == p->in_seq + 1 &&
        sodium_memcmp(t.prev, p->in_chain, BATCH_HASH) != 0) {
        snprintf(why, sizeof(why), "batch seq %" PRIu64 ": its prev hash does not "
                 "match batch seq %" PRIu64 " (the chain is broken)", t.seq, p->in_seq);
        return fail(ib, p, err, errlen, why);
    }
    if (p->in_have && t.seq > p->in_seq + 1) {
        p->in_missing += t.seq - p->in_seq - 1;
        log_warn("inbound: partner %s: batches %" PRIu64 "-%" PRIu64 " never "
                 "arrived", p->name, p->in_seq + 1, t.seq - 1);
    }
    /* verified: now the records may be used */
    struct intake it = {in, {PDNS_SRC_PARTNER, p, p->name, p->index, NULL}, ""};
    pdns_record init;
    memset(&init, 0, sizeof(init));
    init.source = PDNS_SRC_PARTNER;
    for (size_t i = 0; i < ib->n; i++)
        if (cof_decode(ib->lines.p + ib->at[i].off, ib->at[i].len, &init, take, &it,
                       why, sizeof(why)) < 0)
            log_warn("inbound: partner %s batch seq %" PRIu64 ": a signed record "
                     "is not valid COF (%s); skipped", p->name, t.seq, why);
    p->in_have = 1;
    p->in_seq = t.seq;
    memcpy(p->in_chain, chain, BATCH_HASH);
    p->in_batches++;
    save_state(p, state_dir);
    if (in->partner_taken)
        in->partner_taken(in->partner_ctx, p);
    ib->lines.len = 0;
    ib->n = 0;
    return 0;
}

int inbound_line(inbound *ib, ingest *in, relay_sensor *p,
                 const char *state_dir, char *line, size_t len, char *err,
                 size_t errlen) {
    if (batch_is_trailer(line, len))
        return end_batch(ib, in, p, state_dir, line, len, err, errlen);
    if (ib->n >= MAX_BATCH_RECORDS || ib->lines.len + len + 1 > MAX_BATCH_BYTES)
        return fail(ib, p, err, errlen, "a batch over 1,000,000 records or 256 MiB");
    hashmany_span *nl = pdns_grow(ib->at, &ib->cap, ib->n, sizeof(*nl), 1024);
    if (!nl)
        return fail(ib, p, err, errlen, "out of memory");
    ib->at = nl;
    ib->at[ib->n].off = ib->lines.len;
    ib->at[ib->n].len = len;
    if (pdns_buf_append(&ib->lines, line, len) < 0 ||
        pdns_buf_append(&ib->lines, "\n", 1) < 0)
        return fail(ib, p, err, errlen, "out of memory");
    ib->n++;
    return 0;
}
