/* rmapi.h - the part of Redis's module API the pdnsrelay module uses,
 * declared here rather than taken from redismodule.h (which Debian does
 * not ship): each function is a pointer looked up by name when the module
 * loads (RedisModule_OnLoad in pdnsrelay.c, which defines them). API
 * version 1, Redis 6.2 and later. */
#ifndef PDNS_RMAPI_H
#define PDNS_RMAPI_H

#include <stddef.h>
#include <stdint.h>

#ifdef RMAPI_DEFINE
#define RMAPI
#else
#define RMAPI extern
#endif

typedef struct RedisModuleCtx RedisModuleCtx;
typedef struct RedisModuleKey RedisModuleKey;
typedef struct RedisModuleString RedisModuleString;
typedef struct RedisModuleCallReply RedisModuleCallReply;
typedef struct RedisModuleType RedisModuleType;
typedef struct RedisModuleIO RedisModuleIO;
typedef struct RedisModuleDigest RedisModuleDigest;
/* RedisModuleTypeMethods, version 3: the fields up to defrag (version 4
 * adds fields after them, which Redis would read past this struct). */
typedef struct {
    uint64_t version;
    void *(*rdb_load)(RedisModuleIO *, int);
    void (*rdb_save)(RedisModuleIO *, void *);
    void (*aof_rewrite)(RedisModuleIO *, RedisModuleString *, void *);
    size_t (*mem_usage)(const void *);
    void (*digest)(void *, void *);
    void (*free)(void *);
    int (*aux_load)(RedisModuleIO *, int, int);
    void (*aux_save)(RedisModuleIO *, int);
    int aux_save_triggers;
    size_t (*free_effort)(RedisModuleString *, const void *);
    void (*unlink)(RedisModuleString *, const void *);
    void *(*copy)(RedisModuleString *, RedisModuleString *, const void *);
    void *defrag;
} rm_type_methods;
typedef int (*rm_cmd_fn)(RedisModuleCtx *, RedisModuleString **, int);

#define RM_OK 0
#define RM_READ (1 << 0)
#define RM_WRITE (1 << 1)
#define RM_KEYTYPE_EMPTY 0
#define RM_KEYTYPE_STRING 1
#define RM_KEYTYPE_HASH 3
#define RM_KEYTYPE_ZSET 5
#define RM_KEYTYPE_MODULE 6
#define RM_POSTPONED_LEN -1L
#define RM_ZADD_ADDED (1 << 2)
#define RM_APIVER_1 1
#define RM_CTX_FLAGS_REPLICATED (1 << 12)
#define RM_CTX_FLAGS_LOADING (1 << 13)

RMAPI int (*RedisModule_GetApi)(const char *, void *);
RMAPI int (*RedisModule_SetModuleAttribs)(RedisModuleCtx *, const char *, int, int);
RMAPI int (*RedisModule_IsModuleNameBusy)(const char *);
RMAPI int (*RedisModule_CreateCommand)(RedisModuleCtx *, const char *, rm_cmd_fn, const char *,
                                        int, int, int);
RMAPI RedisModuleKey *(*RedisModule_OpenKey)(RedisModuleCtx *, RedisModuleString *, int);
RMAPI void (*RedisModule_CloseKey)(RedisModuleKey *);
RMAPI int (*RedisModule_KeyType)(RedisModuleKey *);
RMAPI char *(*RedisModule_StringDMA)(RedisModuleKey *, size_t *, int);
RMAPI int (*RedisModule_StringSet)(RedisModuleKey *, RedisModuleString *);
RMAPI int (*RedisModule_HashGet)(RedisModuleKey *, int, ...);
RMAPI int (*RedisModule_HashSet)(RedisModuleKey *, int, ...);
RMAPI int (*RedisModule_ZsetAdd)(RedisModuleKey *, double, RedisModuleString *, int *);
RMAPI int (*RedisModule_ZsetFirstInScoreRange)(RedisModuleKey *, double, double, int, int);
RMAPI RedisModuleString *(*RedisModule_ZsetRangeCurrentElement)(RedisModuleKey *, double *);
RMAPI int (*RedisModule_ZsetRangeNext)(RedisModuleKey *);
RMAPI int (*RedisModule_ZsetRangeEndReached)(RedisModuleKey *);
RMAPI void (*RedisModule_ZsetRangeStop)(RedisModuleKey *);
RMAPI const char *(*RedisModule_StringPtrLen)(const RedisModuleString *, size_t *);
RMAPI RedisModuleString *(*RedisModule_CreateString)(RedisModuleCtx *, const char *, size_t);
RMAPI void (*RedisModule_FreeString)(RedisModuleCtx *, RedisModuleString *);
RMAPI int (*RedisModule_ReplyWithLongLong)(RedisModuleCtx *, long long);
RMAPI int (*RedisModule_ReplyWithError)(RedisModuleCtx *, const char *);
RMAPI int (*RedisModule_ReplyWithStringBuffer)(RedisModuleCtx *, const char *, size_t);
RMAPI int (*RedisModule_Replicate)(RedisModuleCtx *, const char *, const char *, ...);
RMAPI int (*RedisModule_WrongArity)(RedisModuleCtx *);
RMAPI RedisModuleCallReply *(*RedisModule_Call)(RedisModuleCtx *, const char *, const char *, ...);
RMAPI void (*RedisModule_FreeCallReply)(RedisModuleCallReply *);
RMAPI void *(*RedisModule_Alloc)(size_t);
RMAPI void *(*RedisModule_Realloc)(void *, size_t);
RMAPI void *(*RedisModule_Calloc)(size_t, size_t);
RMAPI int (*RedisModule_GetContextFlags)(RedisModuleCtx *);
RMAPI void (*RedisModule_Free)(void *);
RMAPI RedisModuleType *(*RedisModule_CreateDataType)(RedisModuleCtx *, const char *, int,
                                                      rm_type_methods *);
RMAPI int (*RedisModule_ModuleTypeSetValue)(RedisModuleKey *, RedisModuleType *, void *);
RMAPI RedisModuleType *(*RedisModule_ModuleTypeGetType)(RedisModuleKey *);
RMAPI void *(*RedisModule_ModuleTypeGetValue)(RedisModuleKey *);
RMAPI void (*RedisModule_SaveUnsigned)(RedisModuleIO *, uint64_t);
RMAPI uint64_t (*RedisModule_LoadUnsigned)(RedisModuleIO *);
RMAPI void (*RedisModule_SaveStringBuffer)(RedisModuleIO *, const char *, size_t);
RMAPI char *(*RedisModule_LoadStringBuffer)(RedisModuleIO *, size_t *);
RMAPI void (*RedisModule_DigestAddStringBuffer)(RedisModuleDigest *, const char *, size_t);
RMAPI void (*RedisModule_DigestEndSequence)(RedisModuleDigest *);
RMAPI void (*RedisModule_EmitAOF)(RedisModuleIO *, const char *, const char *, ...);
RMAPI int (*RedisModule_ReplyWithArray)(RedisModuleCtx *, long);
RMAPI void (*RedisModule_ReplySetArrayLength)(RedisModuleCtx *, long);
RMAPI int (*RedisModule_ReplicateVerbatim)(RedisModuleCtx *);
RMAPI int (*RedisModule_DeleteKey)(RedisModuleKey *);
RMAPI void (*RedisModule_Log)(RedisModuleCtx *, const char *, const char *, ...);

/* used by the query command (query.c) */
typedef struct RedisModuleScanCursor RedisModuleScanCursor;
typedef void (*rm_scan_key_fn)(RedisModuleKey *, RedisModuleString *, RedisModuleString *, void *);
RMAPI int (*RedisModule_ZsetFirstInLexRange)(RedisModuleKey *, RedisModuleString *,
                                             RedisModuleString *);
RMAPI RedisModuleScanCursor *(*RedisModule_ScanCursorCreate)(void);
RMAPI void (*RedisModule_ScanCursorDestroy)(RedisModuleScanCursor *);
RMAPI int (*RedisModule_ScanKey)(RedisModuleKey *, RedisModuleScanCursor *, rm_scan_key_fn,
                                 void *);
RMAPI int (*RedisModule_CallReplyType)(RedisModuleCallReply *);
RMAPI const char *(*RedisModule_CallReplyStringPtr)(RedisModuleCallReply *, size_t *);
#define RM_HASH_CFIELDS (1 << 2)
#define RM_REPLY_STRING 0
#define RM_REPLY_ERROR 1
#define RM_REPLY_ARRAY 3

/* used by the sweep command (sweep.c) */
RMAPI size_t (*RedisModule_CallReplyLength)(RedisModuleCallReply *);
RMAPI RedisModuleCallReply *(*RedisModule_CallReplyArrayElement)(RedisModuleCallReply *, size_t);
RMAPI unsigned long long (*RedisModule_DbSize)(RedisModuleCtx *);

/* the module's index type (pdnsrelay.c; NULL unless loaded with "trees") */
extern RedisModuleType *ixtype;

/* PDNSRELAY.QUERY (query.c) */
int pdns_query_cmd(RedisModuleCtx *ctx, RedisModuleString **argv, int argc);

/* What the query and the sweep both read of a triple (query.c): the
 * leading digits of s ('^(%d+)' in the scripts, 0 when none), a value's
 * time_last (0 when it has none), the seconds an expiry list gives an
 * rrtype (-1 when none). */
size_t pdns_digits(const char *s, size_t n);
int pdns_time_last(const char *v, size_t vl, double *tl);
double pdns_expiry(const char *list, const char *ty, size_t tyl);

/* PDNSRELAY.SWEEP (sweep.c) */
int pdns_sweep_cmd(RedisModuleCtx *ctx, RedisModuleString **argv, int argc);

#endif
