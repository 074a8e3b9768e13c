/* query.c - PDNSRELAY.QUERY: one page of a COF query, what the store's
 * query script (relay/store/lua/store_query.lua) does, in C.
 *
 *   PDNSRELAY.QUERY <key> <the script's ARGV 1..20> [members ...]
 *
 * The key is the script's KEYS[1] (what a cluster routes the call by);
 * the arguments and the reply are the script's, word for word (the
 * script's comment says what each is), so the relay sends either with the
 * same words and reads either's reply the same way.
 * tests/e2e/test_store_query_module.py compares the two on random pages
 * over generated stores. Where the script compares strings it
 * compares as its Lua does (strcoll, in Redis's collation); where the
 * script would fail on a malformed index member or value (one the relay
 * does not write), this leaves the member out.
 *
 * It spends no time in Lua: a page of 1,000 triples of an address with
 * many names costs Redis a fraction of the script's time
 * (docs/performance.md). Read-only except for a numeric cursor, which it
 * stores as the script does (SET cur:<id> ... EX 3600, propagated). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ixtree.h"
#include "rmapi.h"

#define NARGS 20 /* the script's ARGV before the members of mode "get" */

/* A byte buffer of the module's allocator; NUL-terminated. */
typedef struct {
    char *p;
    size_t n, cap;
} buf;

static void b_reserve(buf *b, size_t more) {
    if (b->n + more + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->n + more + 1)
        cap *= 2;
    b->p = RedisModule_Realloc(b->p, cap);
    b->cap = cap;
}

static void b_add(buf *b, const char *p, size_t n) {
    b_reserve(b, n);
    memcpy(b->p + b->n, p, n);
    b->n += n;
    b->p[b->n] = 0;
}

static void b_set(buf *b, const char *p, size_t n) {
    b->n = 0;
    b_add(b, p, n);
}

static void b_free(buf *b) {
    RedisModule_Free(b->p);
    *b = (buf){0};
}

/* a string that may be nil, as the script's Lua values are */
typedef struct {
    buf s;
    int set;
} opt;

/* a sensor id and its name, in Q.names */
typedef struct {
    uint64_t h;
    size_t id, idl, nm, nl;
} name_slot;

enum kind { K_FWD, K_REV, K_RREV, K_IP, K_IPM, K_OTHER };

typedef struct {
    RedisModuleCtx *ctx;
    const char *mode, *A, *B, *key, *types, *expiry, *P;
    size_t Alen, Blen, keylen, Pl;
    enum kind kind;
    int kind_e; /* kind "e": a name's error lines */
    double limit, budget, tfa, tfb, tla, tlb, now;
    int want_sensors, want_pos, filtered;
    double got;
    /* the reply: element 0 (the cursor) is set last */
    buf out;
    size_t *off, *len, nel, capel;
    buf place, bucket_pre, rbucket;
    buf ip_key;
    opt ip_f;
    buf names;        /* the ids and names asked so far, */
    name_slot *slots; /* found by a table of them */
    size_t nslots, nnames;
    buf key_tmp, name_tmp, f_tmp;
    const char *err; /* an error reply, the page abandoned */
} Q;

/* ---- strings as the script's Lua compares them ------------------------ */

/* Lua 5.1's l_strcmp: strcoll, chunk by chunk across NUL bytes. */
static int lua_cmp(const char *l, size_t ll, const char *r, size_t lr) {
    for (;;) {
        int t = strcoll(l, r);
        if (t != 0)
            return t;
        size_t n = strlen(l);
        if (n == lr)
            return n == ll ? 0 : 1;
        if (n == ll)
            return -1;
        n++;
        l += n, ll -= n, r += n, lr -= n;
    }
}

static int lua_space(int c) { return isspace((unsigned char)c); }

static int lua_digit(int c) { return c >= '0' && c <= '9'; }

/* strtod of a decimal number of n bytes (tonumber); 0 when it is none */
static int to_number(const char *p, size_t n, double *out) {
    char tmp[64], *e;
    if (!n || n >= sizeof(tmp))
        return 0;
    memcpy(tmp, p, n);
    tmp[n] = 0;
    *out = strtod(tmp, &e);
    while (lua_space(*e))
        e++;
    return *e == 0 && !lua_space(tmp[0]);
}

/* ---- the reply ---------------------------------------------------------- */

static void push(Q *q, const char *p, size_t n) {
    if (q->nel == q->capel) {
        q->capel = q->capel ? q->capel * 2 : 64;
        q->off = RedisModule_Realloc(q->off, q->capel * sizeof(*q->off));
        q->len = RedisModule_Realloc(q->len, q->capel * sizeof(*q->len));
    }
    q->off[q->nel] = q->out.n;
    q->len[q->nel++] = n;
    b_add(&q->out, p, n);
}

/* ---- keys ---------------------------------------------------------------- */

/* P .. a .. b, opened for reading (NULL: none) */
static RedisModuleKey *open_key(Q *q, const char *a, size_t al, const char *b, size_t bl) {
    q->key_tmp.n = 0;
    b_add(&q->key_tmp, q->P, q->Pl);
    b_add(&q->key_tmp, a, al);
    b_add(&q->key_tmp, b, bl);
    RedisModuleString *k = RedisModule_CreateString(q->ctx, q->key_tmp.p, q->key_tmp.n);
    RedisModuleKey *key = RedisModule_OpenKey(q->ctx, k, RM_READ);
    RedisModule_FreeString(q->ctx, k);
    return key;
}

/* HGET of the open key (a new string, or NULL); the field NUL-terminated */
static RedisModuleString *hget_c(RedisModuleKey *key, const char *field) {
    RedisModuleString *v = NULL;
    if (key && RedisModule_KeyType(key) == RM_KEYTYPE_HASH)
        RedisModule_HashGet(key, RM_HASH_CFIELDS, field, &v, NULL);
    return v;
}

/* ---- filters and a triple's parts --------------------------------------- */

/* the leading digits of s ('^(%d+)'), 0 bytes when none (sweep.c's too) */
size_t pdns_digits(const char *s, size_t n) {
    size_t i = 0;
    while (i < n && lua_digit(s[i]))
        i++;
    return i;
}

/* The word of m from i (non-white bytes; digits when num) and the space
 * after it, as a Lua pattern's "%S+ " or "%d+ " reads them: the index
 * after that space, 0 when there is none. */
static size_t word_sp(const char *m, size_t ml, size_t i, int num) {
    size_t j = i;
    while (j < ml && (num ? lua_digit(m[j]) : !lua_space(m[j])))
        j++;
    return j > i && j < ml && m[j] == ' ' ? j + 1 : 0;
}

/* The time_last of a triple's value "<time_first> <time_last> ..." ('^%d+
 * (%d+)', tonumber) in *tl: 1, or 0 when it has none (sweep.c's too). */
int pdns_time_last(const char *v, size_t vl, double *tl) {
    size_t a = word_sp(v, vl, 0, 1), b = a ? pdns_digits(v + a, vl - a) : 0;
    return b && to_number(v + a, b, tl);
}

/* The seconds an expiry list (",<type>=<seconds>,...", NUL-terminated)
 * gives the rrtype of the tyl digits at ty: its first ",<type>=<digits>,",
 * as the scripts read it; -1 when none (sweep.c's too). */
double pdns_expiry(const char *list, const char *ty, size_t tyl) {
    char pat[32];
    double ttl;
    if (!tyl || tyl > 24)
        return -1;
    pat[0] = ',';
    memcpy(pat + 1, ty, tyl);
    pat[tyl + 1] = '=';
    pat[tyl + 2] = 0;
    for (const char *e = strstr(list, pat); e; e = strstr(e + 1, pat)) {
        const char *d = e + tyl + 2;
        size_t dl = pdns_digits(d, strlen(d));
        if (dl && d[dl] == ',')
            return to_number(d, dl, &ttl) ? ttl : -1;
    }
    return -1;
}

/* whether the triple (field f, value v) passes the query's filters */
static int keep(Q *q, const char *f, size_t fl, const char *v, size_t vl) {
    if (!q->filtered)
        return 1;
    size_t tyl = pdns_digits(f, fl);
    if (!tyl || tyl > 24)
        return 0; /* the script fails on such a field; the relay writes none */
    char pat[32]; /* ",<type>" and the character after it, to find in a list */
    pat[0] = ',';
    memcpy(pat + 1, f, tyl);
    pat[tyl + 2] = 0;
    pat[tyl + 1] = ',';
    if (q->types[0] && !strstr(q->types, pat))
        return 0;
    double tf, tl;
    if (!pdns_time_last(v, vl, &tl) || !to_number(v, word_sp(v, vl, 0, 1) - 1, &tf))
        return 0;
    if (q->tfa > 0 && tf < q->tfa)
        return 0;
    if (q->tfb > 0 && tf > q->tfb)
        return 0;
    if (q->tla > 0 && tl < q->tla)
        return 0;
    if (q->tlb > 0 && tl > q->tlb)
        return 0;
    if (q->expiry[0]) {
        double ttl = pdns_expiry(q->expiry, f, tyl);
        if (ttl >= 0 && tl + ttl < q->now)
            return 0;
    }
    return 1;
}

/* FNV-1a of n bytes */
static uint64_t id_hash(const char *p, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)p[i]) * 1099511628211ull;
    return h;
}

/* The name of sensor id (d digits), asked of st:sname once a page (the id
 * itself when it has none), as the script's table of names does; *nl its
 * length. Valid until the next call. */
static const char *sensor_name(Q *q, const char *id, size_t d, size_t *nl) {
    uint64_t h = id_hash(id, d);
    size_t mask = q->nslots - 1, i = q->nslots ? (size_t)h & mask : 0;
    for (; q->nslots && q->slots[i].idl; i = (i + 1) & mask) {
        name_slot *e = &q->slots[i];
        if (e->h == h && e->idl == d && memcmp(q->names.p + e->id, id, d) == 0) {
            *nl = e->nl;
            return q->names.p + e->nm;
        }
    }
    if (2 * (q->nnames + 1) > q->nslots) { /* grown: at most half full */
        size_t n = q->nslots ? q->nslots * 2 : 64;
        name_slot *t = RedisModule_Calloc(n, sizeof(*t));
        for (size_t k = 0; k < q->nslots; k++) {
            if (!q->slots[k].idl)
                continue;
            size_t at = (size_t)q->slots[k].h & (n - 1);
            while (t[at].idl)
                at = (at + 1) & (n - 1);
            t[at] = q->slots[k];
        }
        RedisModule_Free(q->slots);
        q->slots = t;
        q->nslots = n;
        mask = n - 1;
        for (i = (size_t)h & mask; q->slots[i].idl; i = (i + 1) & mask)
            ;
    }
    buf key = {0};
    b_set(&key, id, d);
    RedisModuleKey *k = open_key(q, "st:sname", 8, "", 0);
    RedisModuleString *s = hget_c(k, key.p);
    if (k)
        RedisModule_CloseKey(k);
    size_t sl = d;
    const char *sp = s ? RedisModule_StringPtrLen(s, &sl) : id;
    name_slot *e = &q->slots[i];
    e->h = h;
    e->id = q->names.n;
    e->idl = d ? d : 1; /* an empty id is never asked: pdns_digits() found one */
    b_add(&q->names, id, d);
    e->nm = q->names.n;
    e->nl = sl;
    b_add(&q->names, sp, sl);
    q->nnames++;
    if (s)
        RedisModule_FreeString(q->ctx, s);
    b_free(&key);
    *nl = e->nl;
    return q->names.p + e->nm;
}

/* the sensors' names of the ids in the value's fourth word (its
 * '^%d+ %d+ %d+ (%S+)'), comma-separated, into out */
static void sensors(Q *q, const char *v, size_t vl, buf *out) {
    out->n = 0;
    b_reserve(out, 0);
    out->p[0] = 0;
    size_t i = 0;
    for (int w = 0; w < 3; w++)
        if (!(i = word_sp(v, vl, i, 1)))
            return;
    size_t e = i;
    while (e < vl && !lua_space(v[e]))
        e++;
    if (e == i)
        return;
    int first = 1;
    for (size_t j = i; j < e;) {
        if (!lua_digit(v[j])) {
            j++;
            continue;
        }
        size_t d = pdns_digits(v + j, e - j), nl;
        const char *nm = sensor_name(q, v + j, d, &nl);
        if (!first)
            b_add(out, ",", 1);
        b_add(out, nm, nl);
        first = 0;
        j += d;
    }
}

static void emit(Q *q, const char *name, size_t nl, const char *f, size_t fl, const char *v,
                 size_t vl) {
    push(q, name, nl);
    push(q, f, fl);
    push(q, v, vl);
    if (q->want_sensors) {
        buf s = {0};
        sensors(q, v, vl, &s);
        push(q, s.p ? s.p : "", s.n);
        b_free(&s);
    } else {
        push(q, "", 0);
    }
    if (q->want_pos)
        push(q, q->place.p ? q->place.p : "", q->place.n);
    q->got++;
}

/* ---- one name's triples --------------------------------------------------- */

typedef struct {
    buf b;              /* field\0value\0 ... */
    size_t *at, n, cap; /* where each field starts */
} fields;

static void scan_one(RedisModuleKey *key, RedisModuleString *f, RedisModuleString *v, void *arg) {
    fields *fs = arg;
    size_t fl, vl;
    const char *fp = RedisModule_StringPtrLen(f, &fl), *vp = RedisModule_StringPtrLen(v, &vl);
    (void)key;
    if (fs->n == fs->cap) {
        fs->cap = fs->cap ? fs->cap * 2 : 16;
        fs->at = RedisModule_Realloc(fs->at, fs->cap * sizeof(*fs->at));
    }
    fs->at[fs->n++] = fs->b.n;
    /* field, its length, value, its length: lengths as size_t after NULs */
    b_add(&fs->b, (const char *)&fl, sizeof(fl));
    b_add(&fs->b, fp, fl);
    b_add(&fs->b, "", 1);
    b_add(&fs->b, (const char *)&vl, sizeof(vl));
    b_add(&fs->b, vp, vl);
    b_add(&fs->b, "", 1);
}

static const char *field_at(const fields *fs, size_t i, size_t *fl, const char **v, size_t *vl) {
    const char *p = fs->b.p + fs->at[i];
    memcpy(fl, p, sizeof(*fl));
    const char *f = p + sizeof(*fl);
    memcpy(vl, f + *fl + 1, sizeof(*vl));
    *v = f + *fl + 1 + sizeof(*vl);
    return f;
}

static const fields *sort_fs;
static int by_field(const void *x, const void *y) {
    size_t xl, yl, vl;
    const char *v;
    const char *a = field_at(sort_fs, *(const size_t *)x, &xl, &v, &vl);
    const char *b = field_at(sort_fs, *(const size_t *)y, &yl, &v, &vl);
    return lua_cmp(a, xl, b, yl);
}

/* The triples of name after field `after` (unset: all); returns 1 with the
 * field to resume after in *stop when the page filled inside this name
 * (possibly after itself), 0 when the name is done. */
static int one_name(Q *q, const char *name, size_t nl, const opt *after, opt *stop) {
    const char *hp = q->kind_e && strcmp(q->mode, "name") == 0 ? "e:" : "n:";
    RedisModuleKey *key = open_key(q, hp, 2, name, nl);
    fields fs = {0};
    if (key && RedisModule_KeyType(key) == RM_KEYTYPE_HASH) {
        RedisModuleScanCursor *c = RedisModule_ScanCursorCreate();
        while (RedisModule_ScanKey(key, c, scan_one, &fs))
            ;
        RedisModule_ScanCursorDestroy(c);
    } else if (key && RedisModule_KeyType(key) != RM_KEYTYPE_EMPTY) {
        q->err = "WRONGTYPE Operation against a key holding the wrong kind of value";
    }
    if (key)
        RedisModule_CloseKey(key);
    /* the fields after `after`, in order */
    size_t *idx = RedisModule_Alloc((fs.n ? fs.n : 1) * sizeof(*idx)), m = 0;
    for (size_t i = 0; i < fs.n; i++) {
        size_t fl, vl;
        const char *v, *f = field_at(&fs, i, &fl, &v, &vl);
        if (!after->s.n || lua_cmp(f, fl, after->s.p, after->s.n) > 0)
            idx[m++] = i;
    }
    sort_fs = &fs;
    qsort(idx, m, sizeof(*idx), by_field);
    opt last = {0};
    b_set(&last.s, after->s.p ? after->s.p : "", after->s.n);
    int full = 0;
    for (size_t i = 0; i < m && !q->err; i++) {
        if (q->got >= q->limit) {
            full = 1;
            break;
        }
        q->budget--;
        size_t fl, vl;
        const char *v, *f = field_at(&fs, idx[i], &fl, &v, &vl);
        if (keep(q, f, fl, v, vl))
            emit(q, name, nl, f, fl, v, vl);
        b_set(&last.s, f, fl);
    }
    if (full) {
        b_set(&stop->s, last.s.p, last.s.n);
        stop->set = 1;
    }
    b_free(&last.s);
    RedisModule_Free(idx);
    b_free(&fs.b);
    RedisModule_Free(fs.at);
    return full;
}

/* ---- index members ----------------------------------------------------------- */

static const signed char HEX[256] = {
    ['0'] = 1,  ['1'] = 2,  ['2'] = 3,  ['3'] = 4,  ['4'] = 5,  ['5'] = 6,
    ['6'] = 7,  ['7'] = 8,  ['8'] = 9,  ['9'] = 10, ['a'] = 11, ['b'] = 12,
    ['c'] = 13, ['d'] = 14, ['e'] = 15, ['f'] = 16}; /* the digit's value + 1; 0 for none */

/* the IPv4 address in the 8 hex digits at k, dotted, appended to out */
static int dotted(const char *k, buf *out) {
    char t[20];
    int n = 0;
    for (int i = 0; i < 4; i++) {
        int h = HEX[(unsigned char)k[2 * i]], l = HEX[(unsigned char)k[2 * i + 1]];
        if (!h || !l)
            return 0;
        n += snprintf(t + n, sizeof(t) - (size_t)n, i ? ".%d" : "%d", (h - 1) * 16 + l - 1);
    }
    b_add(out, t, (size_t)n);
    return 1;
}

/* "28 <address>" of an IPv6 address key "6<32 hex>", as the script and
 * inet_ntop write it */
static int ip6_field(const char *k, size_t kl, buf *out) {
    if (kl != 33)
        return 0;
    int from[8], best = -1, blen = 0, cur = -1, clen = 0;
    for (int i = 0; i < 8; i++) {
        int at = 1 + 4 * i; /* each group's digits from its first that is not 0 */
        from[i] = k[at] != '0'       ? at
                  : k[at + 1] != '0' ? at + 1
                  : k[at + 2] != '0' ? at + 2
                                     : at + 3;
        if (from[i] == at + 3 && k[at + 3] == '0') {
            from[i] = -1;
            if (cur < 0)
                cur = i, clen = 0;
            clen++;
            if (clen > blen)
                best = cur, blen = clen;
        } else {
            cur = -1;
        }
    }
    if (blen < 2)
        best = -1;
    b_set(out, "28 ", 3);
    if (best == 0 && (blen == 6 || (blen == 5 && memcmp(k + 21, "ffff", 4) == 0))) {
        b_add(out, blen == 5 ? "::ffff:" : "::", blen == 5 ? 7 : 2);
        return dotted(k + 25, out);
    }
    for (int i = 0; i < 8; i++) {
        if (best >= 0 && i >= best && i < best + blen) {
            if (i == best)
                b_add(out, ":", 1);
        } else {
            if (i > 0)
                b_add(out, ":", 1);
            if (from[i] < 0)
                b_add(out, "0", 1);
            else
                b_add(out, k + from[i], (size_t)(1 + 4 * i + 4 - from[i]));
        }
    }
    if (best >= 0 && best + blen == 8)
        b_add(out, ":", 1);
    return 1;
}

/* the field "<rrtype> <address>" of an address index key, in q->ip_f */
static void ip_field(Q *q, const char *k, size_t kl) {
    q->ip_f.set = 0;
    if (kl && k[0] == '4') {
        b_set(&q->ip_f.s, "1 ", 2);
        q->ip_f.set = kl == 9 && dotted(k + 1, &q->ip_f.s);
    } else {
        q->ip_f.set = ip6_field(k, kl, &q->ip_f.s);
    }
}

/* The name of index member m into q->name_tmp, and the one field it
 * stands for into q->f_tmp (*has_f 0: all the name's fields). 0 when m
 * stands for nothing. */
static int member(Q *q, const char *m, size_t ml, int *has_f) {
    buf *nm = &q->name_tmp, *f = &q->f_tmp;
    *has_f = 0;
    if (q->kind == K_FWD) {
        b_set(nm, m, ml);
        return 1;
    }
    if (q->kind == K_REV || q->kind == K_RREV) {
        buf whole = {0};
        if (q->kind == K_RREV) {
            b_set(&whole, q->rbucket.p ? q->rbucket.p : "", q->rbucket.n);
            if (!(ml == 1 && m[0] == '.'))
                b_add(&whole, m, ml);
            m = whole.p, ml = whole.n;
        }
        /* the labels, reversed (empty ones dropped) */
        nm->n = 0;
        b_reserve(nm, ml);
        size_t e = ml;
        while (e > 0) {
            while (e > 0 && m[e - 1] == '.')
                e--;
            size_t s = e;
            while (s > 0 && m[s - 1] != '.')
                s--;
            if (s < e) {
                if (nm->n)
                    b_add(nm, ".", 1);
                b_add(nm, m + s, e - s);
            }
            e = s;
        }
        b_reserve(nm, 0);
        nm->p[nm->n] = 0;
        b_free(&whole);
        return 1;
    }
    if (q->kind == K_IP) {
        const char *sp = memchr(m, ' ', ml);
        if (sp && !memchr(sp + 1, ' ', ml - (size_t)(sp + 1 - m))) {
            size_t kl = (size_t)(sp - m);
            if (!q->ip_key.p || q->ip_key.n != kl || memcmp(q->ip_key.p, m, kl) != 0) {
                b_set(&q->ip_key, m, kl);
                ip_field(q, m, kl);
            }
            if (!q->ip_f.set)
                return 0;
            b_set(nm, sp + 1, ml - kl - 1);
            b_set(f, q->ip_f.s.p, q->ip_f.s.n);
            *has_f = 1;
            return 1;
        }
        /* '^%S+ (%d+) (%S+) (.*)$' */
        size_t ty = word_sp(m, ml, 0, 0), rd = ty ? word_sp(m, ml, ty, 1) : 0,
               at = rd ? word_sp(m, ml, rd, 0) : 0;
        if (!at)
            return 0;
        b_set(f, m + ty, rd - ty - 1);
        b_add(f, " ", 1);
        b_add(f, m + rd, at - rd - 1);
        b_set(nm, m + at, ml - at);
        *has_f = 1;
        return 1;
    }
    /* "<rdata> <rrtype> <name>": '^(%S+) (%d+) (.*)$' */
    size_t ty = word_sp(m, ml, 0, 0), at = ty ? word_sp(m, ml, ty, 1) : 0;
    if (!at)
        return 0;
    size_t rdl = ty - 1, tyl = at - ty - 1;
    const char *rest = m + at;
    size_t rl = ml - at;
    /* a master-file MX, SRV or SOA: its whole rdata, then the name
     * ('^(.*) (%S+)$': the last space, with no other white space after) */
    size_t ls = rl;
    while (ls > 0 && !lua_space(rest[ls - 1]))
        ls--;
    b_set(f, m + ty, tyl);
    b_add(f, " ", 1);
    if (ls > 0 && rest[ls - 1] == ' ' && ls < rl) {
        b_add(f, rest, ls - 1);
        b_set(nm, rest + ls, rl - ls);
    } else {
        b_add(f, m, rdl);
        b_set(nm, rest, rl);
    }
    *has_f = 1;
    return 1;
}

/* The page has its limit of triples, or has looked at its budget of
 * members and fields (as the script's "got >= limit or budget <= 0"). */
static int page_full(const Q *q) {
    return q->got >= q->limit || q->budget <= 0;
}

/* Visits member m (its fields after `after`): 1 with the field to resume
 * after in *stop when the page filled inside it. */
static int visit(Q *q, const char *m, size_t ml, const opt *after, opt *stop) {
    if (q->kind == K_IPM) {
        q->budget--;
        push(q, m, ml);
        q->got++;
        return 0;
    }
    if (q->want_pos) {
        b_set(&q->place, q->bucket_pre.p ? q->bucket_pre.p : "", q->bucket_pre.n);
        b_add(&q->place, m, ml);
    }
    int has_f;
    if (!member(q, m, ml, &has_f))
        return 0;
    if (!has_f)
        return one_name(q, q->name_tmp.p, q->name_tmp.n, after, stop);
    q->budget--;
    RedisModuleKey *key = open_key(q, "n:", 2, q->name_tmp.p, q->name_tmp.n);
    RedisModuleString *v = hget_c(key, q->f_tmp.p);
    if (key)
        RedisModule_CloseKey(key);
    if (v) {
        size_t vl;
        const char *vp = RedisModule_StringPtrLen(v, &vl);
        if (keep(q, q->f_tmp.p, q->f_tmp.n, vp, vl))
            emit(q, q->name_tmp.p, q->name_tmp.n, q->f_tmp.p, q->f_tmp.n, vp, vl);
        RedisModule_FreeString(q->ctx, v);
    }
    return 0;
}

/* ---- walking an index ------------------------------------------------------ */

/* Calls fn with each member of index key k (a sorted set, or the module's
 * tree) from min to max (ZRANGEBYLEX's bounds) until fn returns nonzero. */
typedef int (*member_fn)(void *arg, const char *m, size_t n);

static void lex(Q *q, const char *k, size_t kl, const char *min, size_t minl, const char *max,
                size_t maxl, member_fn fn, void *arg) {
    RedisModuleString *ks = RedisModule_CreateString(q->ctx, k, kl);
    RedisModuleKey *key = RedisModule_OpenKey(q->ctx, ks, RM_READ);
    RedisModule_FreeString(q->ctx, ks);
    if (!key)
        return;
    int t = RedisModule_KeyType(key);
    if (t == RM_KEYTYPE_MODULE && ixtype && RedisModule_ModuleTypeGetType(key) == ixtype) {
        ixtree_bound lo, hi;
        if (ixtree_bound_parse(min, minl, &lo) < 0 || ixtree_bound_parse(max, maxl, &hi) < 0)
            q->err = "ERR min or max not valid string range item";
        else
            ixtree_range(RedisModule_ModuleTypeGetValue(key), &lo, &hi, 0, fn, arg);
    } else if (t == RM_KEYTYPE_ZSET) {
        RedisModuleString *a = RedisModule_CreateString(q->ctx, min, minl),
                          *b = RedisModule_CreateString(q->ctx, max, maxl);
        if (RedisModule_ZsetFirstInLexRange(key, a, b) != RM_OK) {
            q->err = "ERR min or max not valid string range item";
        } else {
            while (!RedisModule_ZsetRangeEndReached(key)) {
                size_t n;
                RedisModuleString *m = RedisModule_ZsetRangeCurrentElement(key, NULL);
                const char *p = RedisModule_StringPtrLen(m, &n);
                int done = fn(arg, p, n);
                RedisModule_FreeString(q->ctx, m);
                if (done)
                    break;
                RedisModule_ZsetRangeNext(key);
            }
            RedisModule_ZsetRangeStop(key);
        }
        RedisModule_FreeString(q->ctx, a);
        RedisModule_FreeString(q->ctx, b);
    } else if (t != RM_KEYTYPE_EMPTY) {
        q->err = "WRONGTYPE Operation against a key holding the wrong kind of value";
    }
    RedisModule_CloseKey(key);
}

typedef struct {
    Q *q;
    opt last; /* the last member looked at (or the pending one) */
    opt ret;  /* the walk's cursor when the page filled */
} walk_st;

static int walk_one(void *arg, const char *m, size_t n) {
    walk_st *w = arg;
    Q *q = w->q;
    if (q->err)
        return 1;
    if (page_full(q)) {
        w->ret.set = w->last.set;
        if (w->last.set)
            b_set(&w->ret.s, w->last.s.p, w->last.s.n);
        return 1;
    }
    /* m stays valid through the visit (a tree's member, or a string the
     * sorted set's range gave and frees after this returns) */
    opt none = {0}, stop = {0};
    if (visit(q, m, n, &none, &stop)) {
        b_set(&w->ret.s, m, n);
        b_add(&w->ret.s, "\n", 1);
        b_add(&w->ret.s, stop.s.p, stop.s.n);
        w->ret.set = 1;
        b_free(&stop.s);
        return 1;
    }
    b_free(&stop.s);
    b_set(&w->last.s, m, n);
    w->last.set = 1;
    return 0;
}

/* Walks index k from min to max; the cursor (relative to k) into *ret
 * when the page is full, unset when k is done. pending: the member the
 * cursor stood in, with the field pfield to resume after. */
static void walk_index(Q *q, const char *k, size_t kl, const char *min, size_t minl,
                       const char *max, size_t maxl, const opt *pending, const opt *pfield,
                       opt *ret) {
    walk_st w = {q, {{0}, 0}, {{0}, 0}};
    ret->set = 0;
    if (pending->set && pfield->s.n) {
        opt stop = {0};
        if (visit(q, pending->s.p, pending->s.n, pfield, &stop)) {
            b_set(&ret->s, pending->s.p, pending->s.n);
            b_add(&ret->s, "\n", 1);
            b_add(&ret->s, stop.s.p, stop.s.n);
            ret->set = 1;
            b_free(&stop.s);
            return;
        }
        b_free(&stop.s);
    }
    if (pending->set) {
        b_set(&w.last.s, pending->s.p, pending->s.n);
        w.last.set = 1;
    }
    /* walk_one sets w.ret when the page filled: the last member looked
     * at (none when it filled before any: the script's nil, "done"), or
     * where inside a member it stopped */
    lex(q, k, kl, min, minl, max, maxl, walk_one, &w);
    if (w.ret.set) {
        b_set(&ret->s, w.ret.s.p, w.ret.s.n);
        ret->set = 1;
    }
    b_free(&w.last.s);
    b_free(&w.ret.s);
}

/* ---- a page ---------------------------------------------------------------- */

/* splits a cursor "<member>[\n<field>]" into the walk's resume point:
 * the low bound into min, the pending member and its field */
static void resume(const char *c, size_t cl, const char *lo, size_t lol, buf *min, opt *pending,
                   opt *pfield) {
    pending->set = 0;
    pfield->s.n = 0;
    if (!cl) {
        b_set(min, lo, lol);
        return;
    }
    const char *nl = memchr(c, '\n', cl);
    size_t ml = nl ? (size_t)(nl - c) : cl;
    b_set(min, "(", 1);
    b_add(min, c, ml);
    b_set(&pending->s, c, ml);
    pending->set = 1;
    b_set(&pfield->s, nl ? nl + 1 : "", nl ? cl - ml - 1 : 0);
}

/* the key of bucket b listed in a lexn list: r:<b> for the suffix index,
 * b itself otherwise; with the prefix */
static void bucket_key(Q *q, const char *b, size_t bl, buf *out) {
    b_set(out, q->P, q->Pl);
    if (q->kind == K_REV || q->kind == K_RREV)
        b_add(out, "r:", 2);
    b_add(out, b, bl);
}

typedef struct {
    Q *q;
    opt *cur; /* the page's cursor once it is known */
} lexn_st;

static int lexn_one(void *arg, const char *b, size_t bl) {
    lexn_st *st = arg;
    Q *q = st->q;
    if (q->err)
        return 1;
    if (page_full(q)) {
        b_set(&st->cur->s, b, bl);
        b_add(&st->cur->s, "\t", 1);
        st->cur->set = 1;
        return 1;
    }
    /* b stays valid through the walk, as m does in walk_one */
    buf bk = {0};
    b_set(&q->bucket_pre, b, bl);
    b_add(&q->bucket_pre, "\t", 1);
    b_set(&q->rbucket, b, bl);
    bucket_key(q, b, bl, &bk);
    opt none = {0}, c = {0};
    walk_index(q, bk.p, bk.n, "-", 1, "+", 1, &none, &none, &c);
    if (c.set) {
        b_set(&st->cur->s, b, bl);
        b_add(&st->cur->s, "\t", 1);
        b_add(&st->cur->s, c.s.p, c.s.n);
        st->cur->set = 1;
    }
    b_free(&c.s);
    b_free(&bk);
    return c.set;
}

/* The page; its cursor (unset: "") into *cur. */
static void run(Q *q, RedisModuleString **extra, int nextra, opt *cur, const char *cursor,
                size_t cursorl) {
    cur->set = 0;
    if (strcmp(q->mode, "name") == 0) {
        opt after = {0};
        b_set(&after.s, cursor, cursorl);
        one_name(q, q->A, q->Alen, &after, cur);
        b_free(&after.s);
        return;
    }
    if (strcmp(q->mode, "get") == 0) {
        for (int j = 0; j < nextra && !q->err; j++) {
            size_t n;
            const char *m = RedisModule_StringPtrLen(extra[j], &n);
            opt none = {0}, stop = {0};
            visit(q, m, n, &none, &stop);
            b_free(&stop.s);
        }
        return;
    }
    buf min = {0}, lo = {0}, hi = {0};
    opt pending = {0}, pfield = {0};
    if (strcmp(q->mode, "lex") == 0) {
        const char *A = q->A, *B = q->B;
        size_t Al = q->Alen, Bl = q->Blen;
        b_set(&lo, "[", 1);
        b_add(&lo, A, Al);
        if (q->kind == K_RREV) {
            /* the range "<bucket>.<rest>" within bucket r:<bucket>, whose
             * members are ".<rest>" */
            const char *r = strstr(q->key, "r:");
            if (!r) {
                q->err = "ERR the key of a rrev range has no r: bucket";
                goto out;
            }
            b_set(&q->rbucket, r + 2, q->keylen - (size_t)(r + 2 - q->key));
            size_t n = q->rbucket.n + 1;
            if (Al < n || memcmp(A, q->rbucket.p, n - 1) != 0 || A[n - 1] != '.') {
                static char msg[300];
                snprintf(msg, sizeof(msg), "BADRANGE not in bucket %.*s",
                         (int)(q->rbucket.n < 200 ? q->rbucket.n : 200), q->rbucket.p);
                for (char *c = msg; *c; c++)
                    if (*c == '\r' || *c == '\n')
                        *c = ' ';
                q->err = msg;
                goto out;
            }
            A += n - 1, Al -= n - 1;
            if (Bl >= n - 1)
                B += n - 1, Bl -= n - 1;
            else
                B += Bl, Bl = 0;
            b_set(&lo, "(", 1);
            b_add(&lo, A, Al);
        }
        b_set(&hi, "[", 1);
        b_add(&hi, B, Bl);
        resume(cursor, cursorl, lo.p, lo.n, &min, &pending, &pfield);
        walk_index(q, q->key, q->keylen, min.p, min.n, hi.p, hi.n, &pending, &pfield, cur);
        goto out;
    }
    /* lexn: the cursor is "<bucket>\t<member>[\n<field>]" */
    buf bmin = {0};
    b_set(&bmin, "[", 1);
    b_add(&bmin, q->A, q->Alen);
    if (cursorl) {
        const char *tab = memchr(cursor, '\t', cursorl);
        if (!tab) {
            q->err = "BADCURSOR malformed cursor";
            b_free(&bmin);
            goto out;
        }
        size_t bl = (size_t)(tab - cursor);
        b_set(&bmin, "(", 1);
        b_add(&bmin, cursor, bl);
        resume(tab + 1, cursorl - bl - 1, "-", 1, &min, &pending, &pfield);
        b_set(&q->bucket_pre, cursor, bl);
        b_add(&q->bucket_pre, "\t", 1);
        b_set(&q->rbucket, cursor, bl);
        buf bk = {0};
        bucket_key(q, cursor, bl, &bk);
        opt c = {0};
        walk_index(q, bk.p, bk.n, min.p, min.n, "+", 1, &pending, &pfield, &c);
        b_free(&bk);
        if (c.set) {
            b_set(&cur->s, cursor, bl);
            b_add(&cur->s, "\t", 1);
            b_add(&cur->s, c.s.p, c.s.n);
            cur->set = 1;
            b_free(&c.s);
            b_free(&bmin);
            goto out;
        }
        b_free(&c.s);
    }
    b_set(&hi, "[", 1);
    b_add(&hi, q->B, q->Blen);
    lexn_st st = {q, cur};
    lex(q, q->key, q->keylen, bmin.p, bmin.n, hi.p, hi.n, lexn_one, &st);
    b_free(&bmin);
out:
    b_free(&min);
    b_free(&lo);
    b_free(&hi);
    b_free(&pending.s);
    b_free(&pfield.s);
}

static enum kind kind_of(const char *k) {
    return strcmp(k, "fwd") == 0    ? K_FWD
           : strcmp(k, "rev") == 0  ? K_REV
           : strcmp(k, "rrev") == 0 ? K_RREV
           : strcmp(k, "ip") == 0   ? K_IP
           : strcmp(k, "ipm") == 0  ? K_IPM
                                    : K_OTHER;
}

/* a number argument (tonumber); 0 when it is none */
static int arg_number(RedisModuleString *s, double *out) {
    size_t n;
    const char *p = RedisModule_StringPtrLen(s, &n);
    return to_number(p, n, out);
}

static void q_free(Q *q) {
    b_free(&q->out);
    RedisModule_Free(q->off);
    RedisModule_Free(q->len);
    b_free(&q->place);
    b_free(&q->bucket_pre);
    b_free(&q->rbucket);
    b_free(&q->ip_key);
    b_free(&q->ip_f.s);
    b_free(&q->names);
    RedisModule_Free(q->slots);
    b_free(&q->key_tmp);
    b_free(&q->name_tmp);
    b_free(&q->f_tmp);
}

/* ARGV[i] of the script (1-based) */
#define ARG(i) argv[(i) + 1]

int pdns_query_cmd(RedisModuleCtx *ctx, RedisModuleString **argv, int argc) {
    if (argc < NARGS + 2)
        return RedisModule_WrongArity(ctx);
    Q q = {0};
    size_t n, cursorl, cidl, bindl;
    q.ctx = ctx;
    q.mode = RedisModule_StringPtrLen(ARG(1), &n);
    const char *kind = RedisModule_StringPtrLen(ARG(2), &n);
    q.kind = kind_of(kind);
    q.kind_e = strcmp(kind, "e") == 0;
    q.key = RedisModule_StringPtrLen(ARG(3), &q.keylen);
    q.A = RedisModule_StringPtrLen(ARG(4), &q.Alen);
    q.B = RedisModule_StringPtrLen(ARG(5), &q.Blen);
    const char *cursor = RedisModule_StringPtrLen(ARG(6), &cursorl);
    q.types = RedisModule_StringPtrLen(ARG(9), &n);
    q.expiry = RedisModule_StringPtrLen(ARG(15), &n);
    q.want_sensors = strcmp(RedisModule_StringPtrLen(ARG(16), &n), "1") == 0;
    const char *cid = RedisModule_StringPtrLen(ARG(17), &cidl);
    const char *binding = RedisModule_StringPtrLen(ARG(18), &bindl);
    q.P = RedisModule_StringPtrLen(ARG(19), &q.Pl);
    q.want_pos = strcmp(RedisModule_StringPtrLen(ARG(20), &n), "1") == 0;
    if (!arg_number(ARG(7), &q.limit) || !arg_number(ARG(8), &q.budget) ||
        !arg_number(ARG(10), &q.tfa) || !arg_number(ARG(11), &q.tfb) ||
        !arg_number(ARG(12), &q.tla) || !arg_number(ARG(13), &q.tlb) ||
        !arg_number(ARG(14), &q.now))
        return RedisModule_ReplyWithError(ctx, "ERR pdnsrelay: a number argument is not a "
                                               "number");
    q.filtered = q.types[0] || q.tfa > 0 || q.tfb > 0 || q.tla > 0 || q.tlb > 0 || q.expiry[0];
    /* a numeric cursor: the position it stands for, bound to the query */
    buf pos = {0};
    if (cidl && cursorl) {
        buf k = {0};
        b_set(&k, q.P, q.Pl);
        b_add(&k, "cur:", 4);
        b_add(&k, cursor, cursorl);
        RedisModuleString *ks = RedisModule_CreateString(ctx, k.p, k.n);
        RedisModuleKey *key = RedisModule_OpenKey(ctx, ks, RM_READ);
        RedisModule_FreeString(ctx, ks);
        b_free(&k);
        size_t vl = 0;
        const char *v = NULL;
        if (key && RedisModule_KeyType(key) == RM_KEYTYPE_STRING)
            v = RedisModule_StringDMA(key, &vl, RM_READ);
        if (!v) {
            if (key)
                RedisModule_CloseKey(key);
            return RedisModule_ReplyWithError(ctx, "BADCURSOR unknown or expired cursor");
        }
        /* '^(%S*) (.*)$' */
        size_t i = 0;
        while (i < vl && !lua_space(v[i]))
            i++;
        int ok = i < vl && v[i] == ' ' && i == bindl && memcmp(v, binding, i) == 0;
        if (ok)
            b_set(&pos, v + i + 1, vl - i - 1);
        RedisModule_CloseKey(key);
        if (!ok)
            return RedisModule_ReplyWithError(ctx, "BADCURSOR FOREIGN this cursor belongs to "
                                                   "another query");
        cursor = pos.p, cursorl = pos.n;
    }
    push(&q, "", 0); /* the cursor, set below */
    opt cur = {0};
    run(&q, argv + NARGS + 2, argc - NARGS - 2, &cur, cursor ? cursor : "", cursorl);
    b_free(&pos);
    if (q.err) {
        RedisModule_ReplyWithError(ctx, q.err);
        b_free(&cur.s);
        q_free(&q);
        return 0;
    }
    const char *c0 = cur.set ? cur.s.p : "";
    size_t c0l = cur.set ? cur.s.n : 0;
    if (cidl && c0l) {
        buf k = {0}, v = {0};
        b_set(&k, q.P, q.Pl);
        b_add(&k, "cur:", 4);
        b_add(&k, cid, cidl);
        b_set(&v, binding, bindl);
        b_add(&v, " ", 1);
        b_add(&v, c0, c0l);
        RedisModuleCallReply *r =
            RedisModule_Call(ctx, "SET", "!bbcc", k.p, k.n, v.p, v.n, "EX", "3600");
        int stored = r && RedisModule_CallReplyType(r) != RM_REPLY_ERROR;
        if (r)
            RedisModule_FreeCallReply(r);
        b_free(&k);
        b_free(&v);
        if (!stored) { /* as the script, whose SET would fail it */
            RedisModule_ReplyWithError(ctx, "ERR pdnsrelay: the cursor could not be stored");
            b_free(&cur.s);
            q_free(&q);
            return 0;
        }
        c0 = cid, c0l = cidl;
    }
    RedisModule_ReplyWithArray(ctx, (long)q.nel);
    RedisModule_ReplyWithStringBuffer(ctx, c0, c0l);
    for (size_t i = 1; i < q.nel; i++)
        RedisModule_ReplyWithStringBuffer(ctx, q.out.p + q.off[i], q.len[i]);
    b_free(&cur.s);
    q_free(&q);
    return 0;
}
