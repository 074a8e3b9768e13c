/* sweep.c - PDNSRELAY.SWEEP, one step of the store's expiry sweep: what
 * relay/store/lua/store_sweep.lua does, with the same arguments and reply,
 * without Lua (no HGETALL reply turned into Lua tables, no pattern built a
 * field):
 *   PDNSRELAY.SWEEP key cursor count now expiry match
 * key routes the call (a key of a shard on the node; not read); SCAN from
 * cursor, COUNT count, MATCH "<match>[ne]:*"; expiry ",<rrtype>=<s>,...";
 * reply {next cursor, DBSIZE, key1, field1, time_last1, ...}: each field
 * "<rrtype> <rdata>" of a hash under the match whose rrtype has an expiry
 * and whose value "<count> <time_last> ..." is older than it. A key of
 * another type, or a field or value of another form, is passed over. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rmapi.h"

/* The leading digits of p (len of them; 0 when none). */
static size_t lead_digits(const char *p, size_t n) {
    size_t i = 0;
    while (i < n && p[i] >= '0' && p[i] <= '9')
        i++;
    return i;
}

/* The seconds expiry gives for the rrtype ty (tl bytes), or -1. */
static double expiry_of(const char *expiry, size_t en, const char *ty, size_t tl) {
    for (size_t i = 0; i + tl + 2 < en; i++) {
        if (expiry[i] != ',' || memcmp(expiry + i + 1, ty, tl) != 0 || expiry[i + 1 + tl] != '=')
            continue;
        const char *v = expiry + i + 2 + tl;
        size_t vl = lead_digits(v, en - (size_t)(v - expiry));
        if (vl && (size_t)(v - expiry) + vl < en && v[vl] == ',')
            return strtod(v, NULL);
    }
    return -1;
}

typedef struct {
    RedisModuleCtx *ctx;
    const char *expiry;
    size_t en;
    double now;
    const char *key;
    size_t kl;
    long replied;
} step;

static void one_field(RedisModuleKey *k, RedisModuleString *field, RedisModuleString *value,
                      void *priv) {
    step *st = priv;
    size_t fl, vl;
    const char *f = RedisModule_StringPtrLen(field, &fl), *v;
    (void)k;
    size_t tyl = lead_digits(f, fl);
    if (!tyl || !value)
        return;
    double e = expiry_of(st->expiry, st->en, f, tyl);
    if (e < 0)
        return;
    v = RedisModule_StringPtrLen(value, &vl);
    size_t c = lead_digits(v, vl);
    if (!c || c >= vl || v[c] != ' ')
        return;
    const char *t = v + c + 1;
    size_t tl = lead_digits(t, vl - c - 1);
    if (!tl || tl > 15)
        return; /* not a time the relay writes */
    char tbuf[16];
    memcpy(tbuf, t, tl);
    tbuf[tl] = '\0';
    unsigned long long when = strtoull(tbuf, NULL, 10);
    if ((double)when + e >= st->now)
        return;
    char out[24];
    int ol = snprintf(out, sizeof(out), "%llu", when);
    RedisModule_ReplyWithStringBuffer(st->ctx, st->key, st->kl);
    RedisModule_ReplyWithStringBuffer(st->ctx, f, fl);
    RedisModule_ReplyWithStringBuffer(st->ctx, out, (size_t)ol);
    st->replied += 3;
}

int pdns_sweep_cmd(RedisModuleCtx *ctx, RedisModuleString **argv, int argc) {
    if (argc != 7)
        return RedisModule_WrongArity(ctx);
    size_t ml, nl;
    const char *match = RedisModule_StringPtrLen(argv[6], &ml),
               *nows = RedisModule_StringPtrLen(argv[4], &nl);
    if (ml > 64)
        return RedisModule_ReplyWithError(ctx, "ERR match prefix too long");
    char pattern[80];
    memcpy(pattern, match, ml);
    memcpy(pattern + ml, "[ne]:*", 7);
    step st = {.ctx = ctx};
    st.expiry = RedisModule_StringPtrLen(argv[5], &st.en);
    st.now = strtod(nows, NULL);
    RedisModuleCallReply *r = RedisModule_Call(ctx, "SCAN", "scbcs", argv[2], "MATCH", pattern,
                                               ml + 6, "COUNT", argv[3]);
    if (!r || RedisModule_CallReplyType(r) != RM_REPLY_ARRAY ||
        RedisModule_CallReplyLength(r) != 2) {
        if (r && RedisModule_CallReplyType(r) == RM_REPLY_ERROR) {
            size_t el;
            const char *e = RedisModule_CallReplyStringPtr(r, &el);
            char msg[128];
            snprintf(msg, sizeof(msg), "%.*s", (int)(el < 120 ? el : 120), e);
            RedisModule_FreeCallReply(r);
            return RedisModule_ReplyWithError(ctx, msg);
        }
        if (r)
            RedisModule_FreeCallReply(r);
        return RedisModule_ReplyWithError(ctx, "ERR SCAN failed");
    }
    RedisModuleCallReply *cur = RedisModule_CallReplyArrayElement(r, 0),
                         *keys = RedisModule_CallReplyArrayElement(r, 1);
    size_t cl;
    const char *cs = RedisModule_CallReplyStringPtr(cur, &cl);
    RedisModule_ReplyWithArray(ctx, RM_POSTPONED_LEN);
    RedisModule_ReplyWithStringBuffer(ctx, cs, cl);
    RedisModule_ReplyWithLongLong(ctx, (long long)RedisModule_DbSize(ctx));
    st.replied = 2;
    size_t n = RedisModule_CallReplyLength(keys);
    for (size_t i = 0; i < n; i++) {
        RedisModuleCallReply *kr = RedisModule_CallReplyArrayElement(keys, i);
        st.key = RedisModule_CallReplyStringPtr(kr, &st.kl);
        RedisModuleString *name = RedisModule_CreateString(ctx, st.key, st.kl);
        RedisModuleKey *k = RedisModule_OpenKey(ctx, name, RM_READ);
        if (k && RedisModule_KeyType(k) == RM_KEYTYPE_HASH) {
            RedisModuleScanCursor *c = RedisModule_ScanCursorCreate();
            while (RedisModule_ScanKey(k, c, one_field, &st))
                ;
            RedisModule_ScanCursorDestroy(c);
        }
        if (k)
            RedisModule_CloseKey(k);
        RedisModule_FreeString(ctx, name);
    }
    RedisModule_ReplySetArrayLength(ctx, st.replied);
    RedisModule_FreeCallReply(r);
    return RM_OK;
}
