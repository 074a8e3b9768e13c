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

typedef struct {
    RedisModuleCtx *ctx;
    const char *expiry; /* NUL-terminated (a Redis string) */
    double now;
    const char *key;
    size_t kl;
    long replied;
} step;

static void one_field(RedisModuleKey *k, RedisModuleString *field, RedisModuleString *value,
                      void *priv) {
    step *st = priv;
    size_t fl, vl;
    const char *f = RedisModule_StringPtrLen(field, &fl);
    double e = value ? pdns_expiry(st->expiry, f, pdns_digits(f, fl)) : -1, tl;
    (void)k;
    if (e < 0)
        return;
    const char *v = RedisModule_StringPtrLen(value, &vl);
    if (!pdns_time_last(v, vl, &tl) || tl + e >= st->now)
        return;
    char out[32];
    int ol = snprintf(out, sizeof(out), "%.14g", tl); /* Lua's tostring */
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
    st.expiry = RedisModule_StringPtrLen(argv[5], NULL);
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
