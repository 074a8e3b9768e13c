/* http_auth.c - credentials and rate limits of the query API. See
 * http_auth.h. */
#include "http_auth.h"

#include <libwebsockets.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"

#define NAME_MAX_LEN 64
#define CACHE_SLOTS 1024
#define CACHE_TTL_MS (5 * 60 * 1000)
#define BUCKET_SLOTS 4096
#define MAX_VERIFYING 8        /* Argon2 checks at once, on the thread pool */
#define MAX_VERIFYING_ADDR 2   /* of those, from one address */
/* Failed logins: per principal and per address, a burst of FAIL_BURST,
 * then one every 1/FAIL_RATE seconds. Judged before any hashing: a
 * principal or an address out of attempts gets 429, whatever it sends,
 * with no Argon2 work done. */
#define FAIL_BURST 10.0
#define FAIL_RATE 0.1

typedef struct cred {
    char kind;                 /* 'b' basic, 'k' key */
    char name[NAME_MAX_LEN];
    char hash[crypto_pwhash_STRBYTES];
    char role[HTTP_AUTH_ROLE_MAX]; /* a console role, or "" */
} cred;

typedef struct cache_slot {
    uint8_t tag[16];           /* keyed hash of the credential */
    char who[NAME_MAX_LEN + 8];
    uint64_t until_ms;
} cache_slot;

typedef struct bucket {
    char who[NAME_MAX_LEN + 8];
    double tokens;
    uint64_t last_ms;
} bucket;

struct http_auth {
    uv_loop_t *loop;
    int verifying;             /* jobs on the thread pool */
    char verifying_ip[MAX_VERIFYING][64]; /* their addresses ("" free) */
    cred dummy;                /* verified for unknown names: same time */
    cred *creds;
    size_t n;
    int anonymous;             /* 0 no, 1 yes, 2 loopback only */
    double rate, burst;        /* rate 0: no limit */
    uint8_t key[crypto_generichash_KEYBYTES];
    cache_slot cache[CACHE_SLOTS];
    bucket buckets[BUCKET_SLOTS];
    bucket fails[BUCKET_SLOTS];  /* login attempts left, by principal and address */
    uint64_t argon2, refused_failures, refused_busy;
    char proxies[512];           /* ",addr,addr," or "" */
};

int http_auth_parse_line(const char *line, char *kind, char *name, char *hash,
                         char *role, const char **why) {
    char k[16], n[NAME_MAX_LEN + 1], h[crypto_pwhash_STRBYTES + 1], r[16], extra[2];
    int f = sscanf(line, " %15s %64s %128s %15s %1s", k, n, h, r, extra);
    if (f != 3 && f != 4) {
        *why = f > 4 ? "too many fields (want: basic NAME HASH [ROLE] or key NAME HASH)"
                     : "want: basic NAME HASH [ROLE] or key NAME HASH";
        return -1;
    }
    if (strcmp(k, "basic") == 0)
        *kind = 'b';
    else if (strcmp(k, "key") == 0)
        *kind = 'k';
    else {
        *why = "the first field must be basic or key";
        return -1;
    }
    if (strlen(n) >= NAME_MAX_LEN || strchr(n, ':') || strchr(n, '.')) {
        *why = "NAME must be shorter than 64 bytes, without ':' or '.'";
        return -1;
    }
    if (strncmp(h, "$argon2", 7) != 0 || strlen(h) >= crypto_pwhash_STRBYTES) {
        *why = "HASH must be a crypto_pwhash_str (Argon2) string; make one "
               "with pdns-relay passwd";
        return -1;
    }
    role[0] = '\0';
    if (f == 4) {
        if (*kind != 'b') {
            *why = "an API key has no console role (only basic users sign in)";
            return -1;
        }
        if (http_auth_role_rank(r) == 0) {
            *why = "ROLE must be viewer, coordinator or admin";
            return -1;
        }
        strcpy(role, r);
    }
    strcpy(name, n);
    strcpy(hash, h);
    return 0;
}

int http_auth_role_rank(const char *role) {
    static const char *const roles[] = {"viewer", "coordinator", "admin"};
    for (int i = 0; i < 3; i++)
        if (role && strcmp(role, roles[i]) == 0)
            return i + 1;
    return 0;
}

const char *http_auth_role(const http_auth *a, const char *user) {
    for (size_t i = 0; i < a->n; i++)
        if (a->creds[i].kind == 'b' && strcmp(a->creds[i].name, user) == 0)
            return a->creds[i].role;
    return "";
}

http_auth *http_auth_new(uv_loop_t *loop, const char *path, int anonymous,
                         double rate, double burst, char *err, size_t errlen) {
    http_auth *a = calloc(1, sizeof(*a));
    if (!a) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    a->loop = loop;
    /* unknown names cost an Argon2 verification too, or the answer's
     * timing would tell which names exist */
    {
        uint8_t rnd[16];
        randombytes_buf(rnd, sizeof(rnd));
        if (crypto_pwhash_str(a->dummy.hash, (const char *)rnd, sizeof(rnd),
                              crypto_pwhash_OPSLIMIT_INTERACTIVE, 16u << 20) != 0) {
            snprintf(err, errlen, "out of memory");
            free(a);
            return NULL;
        }
    }
    a->anonymous = anonymous;
    a->rate = rate;
    a->burst = burst < 1 ? 1 : burst;
    crypto_generichash_keygen(a->key);
    if (!path || !*path)
        return a;
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open: %m", path);
        free(a);
        return NULL;
    }
    char line[512];
    unsigned lineno = 0;
    while (fgets(line, sizeof(line), f)) {
        lineno++;
        const char *s = line, *why;
        while (*s == ' ' || *s == '\t')
            s++;
        if (*s == '#' || *s == '\n' || *s == '\0')
            continue;
        cred c;
        if (http_auth_parse_line(s, &c.kind, c.name, c.hash, c.role, &why) < 0) {
            snprintf(err, errlen, "%s:%u: %s", path, lineno, why);
            goto fail;
        }
        cred *nc = realloc(a->creds, (a->n + 1) * sizeof(*nc));
        if (!nc) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
        a->creds = nc;
        a->creds[a->n++] = c;
    }
    fclose(f);
    return a;
fail:
    fclose(f);
    http_auth_free(a);
    return NULL;
}

void http_auth_free(http_auth *a) {
    if (!a)
        return;
    sodium_memzero(a->cache, sizeof(a->cache));
    free(a->creds);
    free(a);
}

static const cred *find(const http_auth *a, char kind, const char *name,
                        size_t len) {
    for (size_t i = 0; i < a->n; i++)
        if (a->creds[i].kind == kind && strlen(a->creds[i].name) == len &&
            memcmp(a->creds[i].name, name, len) == 0)
            return &a->creds[i];
    return NULL;
}

static void tag_of(const http_auth *a, char kind, const char *cred_s,
                   uint8_t tag[16]) {
    crypto_generichash_state st;
    crypto_generichash_init(&st, a->key, sizeof(a->key), 16);
    crypto_generichash_update(&st, (const uint8_t *)&kind, 1);
    crypto_generichash_update(&st, (const uint8_t *)cred_s, strlen(cred_s));
    crypto_generichash_final(&st, tag, 16);
}

/* The cache is set-associative: a tag may sit in any of CACHE_WAYS slots
 * of its set, so that a few credentials whose tags share a set do not
 * evict one another (each eviction costs an Argon2 check). */
#define CACHE_WAYS 4
static cache_slot *set_for(http_auth *a, const uint8_t tag[16]) {
    unsigned sets = CACHE_SLOTS / CACHE_WAYS;
    return &a->cache[((tag[0] | (unsigned)tag[1] << 8) % sets) * CACHE_WAYS];
}

/* The slot holding tag, else the one to fill: a free or the oldest. */
static cache_slot *slot_for(http_auth *a, const uint8_t tag[16]) {
    cache_slot *set = set_for(a, tag), *victim = set;
    for (int i = 0; i < CACHE_WAYS; i++) {
        if (sodium_memcmp(set[i].tag, tag, 16) == 0)
            return &set[i];
        if (set[i].until_ms < victim->until_ms)
            victim = &set[i];
    }
    return victim;
}

/* A credential verified before (and not long ago): its principal. */
static int cached(http_auth *a, const uint8_t tag[16], char *who, size_t wholen) {
    cache_slot *slot = slot_for(a, tag);
    if (slot->until_ms > pdns_mono_ms() && sodium_memcmp(slot->tag, tag, 16) == 0) {
        snprintf(who, wholen, "%s", slot->who);
        return 1;
    }
    return 0;
}

typedef struct verify_job {
    uv_work_t req;
    http_auth *a;
    const cred *c;
    char kind;
    int slot;                  /* in a->verifying_ip */
    char fail_name[96];        /* the attempt taken from these buckets */
    char fail_ip[96];
    uint8_t tag[16];
    char secret[600];
    int ok;
    http_auth_done done;
    void *ctx;
} verify_job;

static int take(http_auth *a, const char *who);
static void refund(bucket *tab, const char *who, double burst);
static int limited(http_auth *a, char *who, size_t wholen, int *retry_after);

static void verify_work(uv_work_t *req) {
    verify_job *j = req->data;
    j->ok = crypto_pwhash_str_verify(j->c->hash, j->secret, strlen(j->secret)) == 0;
}

/* Back on the loop: remember a good credential, count a bad one. */
static void verify_after(uv_work_t *req, int status) {
    verify_job *j = req->data;
    http_auth *a = j->a;
    char who[NAME_MAX_LEN + 8];
    int code, retry = 0;
    a->verifying--;
    a->verifying_ip[j->slot][0] = '\0';
    if (status == 0 && j->ok && j->c != &a->dummy) {
        /* a good login costs no attempt */
        refund(a->fails, j->fail_name, FAIL_BURST);
        refund(a->fails, j->fail_ip, FAIL_BURST);
        cache_slot *slot = slot_for(a, j->tag);
        memcpy(slot->tag, j->tag, sizeof(slot->tag));
        snprintf(slot->who, sizeof(slot->who), "%s:%s",
                 j->kind == 'b' ? "user" : "key", j->c->name);
        slot->until_ms = pdns_mono_ms() + CACHE_TTL_MS;
        snprintf(who, sizeof(who), "%s", slot->who);
        code = limited(a, who, sizeof(who), &retry);
    } else {
        code = 401;
        snprintf(who, sizeof(who), "unknown user or key, or wrong password");
    }
    sodium_memzero(j->secret, sizeof(j->secret));
    http_auth_done done = j->done;
    void *ctx = j->ctx;
    free(j);
    done(ctx, code, who, retry);
}

static int is_loopback(const char *ip) {
    return strncmp(ip, "127.", 4) == 0 || strcmp(ip, "::1") == 0 ||
           strncmp(ip, "::ffff:127.", 11) == 0;
}

/* Takes one token from who's bucket in tab (rate per second, burst).
 * Returns 0, or the seconds to wait. */
static int take_from(bucket *tab, const char *who, double rate, double burst) {
    uint64_t h = 1469598103934665603ULL;
    for (const char *p = who; *p; p++)
        h = (h ^ (uint8_t)*p) * 1099511628211ULL;
    bucket *b = &tab[h % BUCKET_SLOTS];
    uint64_t now = pdns_mono_ms();
    if (strcmp(b->who, who) != 0) { /* a new (or evicted) principal */
        snprintf(b->who, sizeof(b->who), "%s", who);
        b->tokens = burst;
        b->last_ms = now;
    }
    b->tokens += (double)(now - b->last_ms) / 1000.0 * rate;
    if (b->tokens > burst)
        b->tokens = burst;
    b->last_ms = now;
    if (b->tokens >= 1.0) {
        b->tokens -= 1.0;
        return 0;
    }
    int wait = (int)((1.0 - b->tokens) / rate + 0.999);
    return wait < 1 ? 1 : wait;
}

/* Gives back a token taken from who's bucket (a login that succeeded). */
static void refund(bucket *tab, const char *who, double burst) {
    uint64_t h = 1469598103934665603ULL;
    for (const char *p = who; *p; p++)
        h = (h ^ (uint8_t)*p) * 1099511628211ULL;
    bucket *b = &tab[h % BUCKET_SLOTS];
    if (strcmp(b->who, who) == 0 && (b->tokens += 1.0) > burst)
        b->tokens = burst;
}

/* The request rate limit (http.rate_limit). */
static int take(http_auth *a, const char *who) {
    return a->rate <= 0 ? 0 : take_from(a->buckets, who, a->rate, a->burst);
}

/* The request rate limit for principal who: 200, or 429 with the wait in
 * *retry_after and the reason in who. */
static int limited(http_auth *a, char *who, size_t wholen, int *retry_after) {
    *retry_after = take(a, who);
    if (!*retry_after)
        return 200;
    snprintf(who, wholen, "rate limit exceeded");
    return 429;
}

void http_auth_set_proxies(http_auth *a, const char *list) {
    snprintf(a->proxies, sizeof(a->proxies), "%s", list ? list : "");
}

static int trusted(const http_auth *a, const char *ip) {
    char k[80];
    snprintf(k, sizeof(k), ",%s,", ip);
    return a->proxies[0] && strstr(a->proxies, k) != NULL;
}

/* The client's address: the peer's, or, from a trusted proxy, the
 * rightmost X-Forwarded-For entry that is not a trusted proxy. */
static void client_ip(const http_auth *a, struct lws *wsi, char *ip, size_t n) {
    char xff[512];
    lws_get_peer_simple(wsi, ip, n);
    if (!trusted(a, ip) ||
        lws_hdr_copy(wsi, xff, sizeof(xff), WSI_TOKEN_X_FORWARDED_FOR) <= 0)
        return;
    for (char *end = xff + strlen(xff); end > xff;) {
        char *start = end;
        while (start > xff && start[-1] != ',')
            start--;
        char *b = start, *e = end;
        while (b < e && (*b == ' ' || *b == '\t'))
            b++;
        while (e > b && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        char one[64];
        snprintf(one, sizeof(one), "%.*s", (int)(e - b), b);
        if (one[0] && !trusted(a, one)) {
            snprintf(ip, n, "%s", one);
            return;
        }
        end = start > xff ? start - 1 : xff;
    }
}

int http_auth_check(http_auth *a, struct lws *wsi, char *who, size_t wholen,
                    int *retry_after, http_auth_done done, void *ctx) {
    char hdr[600] = "", ip[64] = "";
    int len = lws_hdr_copy(wsi, hdr, sizeof(hdr), WSI_TOKEN_HTTP_AUTHORIZATION);
    if (len <= 0)
        len = lws_hdr_custom_copy(wsi, hdr, sizeof(hdr), "x-api-key:", 10);
    client_ip(a, wsi, ip, sizeof(ip));
    *retry_after = 0;
    if (len <= 0) {
        if (a->anonymous == 0 || (a->anonymous == 2 && !is_loopback(ip))) {
            snprintf(who, wholen, "credentials required (HTTP Basic or an "
                     "API key)");
            return 401;
        }
        snprintf(who, wholen, "anon:%s", ip);
        return limited(a, who, wholen, retry_after);
    }
    char cred_s[sizeof(hdr)];
    const char *v = hdr;
    char kind = 'k';
    if (strncasecmp(v, "Basic ", 6) == 0) {
        size_t bl;
        if (sodium_base642bin((unsigned char *)cred_s, sizeof(cred_s) - 1, v + 6,
                              strlen(v + 6), " ", &bl, NULL,
                              sodium_base64_VARIANT_ORIGINAL) != 0) {
            snprintf(who, wholen, "bad Basic credentials encoding");
            return 401;
        }
        cred_s[bl] = '\0';
        kind = 'b';
    } else {
        if (strncasecmp(v, "Bearer ", 7) == 0)
            v += 7;
        snprintf(cred_s, sizeof(cred_s), "%s", v);
    }
    uint8_t tag[16];
    tag_of(a, kind, cred_s, tag);
    if (cached(a, tag, who, wholen)) {
        sodium_memzero(cred_s, sizeof(cred_s));
        return limited(a, who, wholen, retry_after);
    }
    const char *sep = strchr(cred_s, kind == 'b' ? ':' : '.');
    const cred *c = sep ? find(a, kind, cred_s, (size_t)(sep - cred_s)) : NULL;
    if (!c) /* an unknown name: checked against a random hash, to fail */
        c = &a->dummy;
    /* attempts left, for the principal named and for the address, judged
     * before any hashing; an attempt is taken now, given back on success */
    char fail_name[96], fail_ip[96];
    snprintf(fail_name, sizeof(fail_name), "%c:%.*s", kind,
             sep ? (int)(sep - cred_s) < NAME_MAX_LEN ? (int)(sep - cred_s) : NAME_MAX_LEN : 0,
             cred_s);
    snprintf(fail_ip, sizeof(fail_ip), "ip:%s", ip);
    int wait_ip = take_from(a->fails, fail_ip, FAIL_RATE, FAIL_BURST);
    int wait_name = wait_ip ? 0 : take_from(a->fails, fail_name, FAIL_RATE, FAIL_BURST);
    if (wait_ip || wait_name) {
        if (!wait_ip)
            refund(a->fails, fail_ip, FAIL_BURST);
        sodium_memzero(cred_s, sizeof(cred_s));
        a->refused_failures++;
        snprintf(who, wholen, "too many failed logins %s; try again later",
                 wait_ip ? "from this address" : "for this user or key");
        *retry_after = wait_ip ? wait_ip : wait_name;
        return 429;
    }
    /* the Argon2 slots: a few at once, and at most MAX_VERIFYING_ADDR
     * of them for one address, so one address cannot hold them all */
    int free_slot = -1, same = 0;
    for (int i = 0; i < MAX_VERIFYING; i++) {
        if (!a->verifying_ip[i][0])
            free_slot = free_slot < 0 ? i : free_slot;
        else if (strcmp(a->verifying_ip[i], ip) == 0)
            same++;
    }
    verify_job *j = free_slot >= 0 && same < MAX_VERIFYING_ADDR ? calloc(1, sizeof(*j)) : NULL;
    if (!j) {
        refund(a->fails, fail_ip, FAIL_BURST);
        refund(a->fails, fail_name, FAIL_BURST);
        sodium_memzero(cred_s, sizeof(cred_s));
        a->refused_busy++;
        snprintf(who, wholen, "credential checks are busy; try again");
        *retry_after = 1;
        return 429;
    }
    j->a = a;
    j->c = c;
    j->kind = kind;
    j->slot = free_slot;
    snprintf(a->verifying_ip[free_slot], sizeof(a->verifying_ip[0]), "%s", ip[0] ? ip : "?");
    snprintf(j->fail_name, sizeof(j->fail_name), "%s", fail_name);
    snprintf(j->fail_ip, sizeof(j->fail_ip), "%s", fail_ip);
    memcpy(j->tag, tag, sizeof(tag));
    snprintf(j->secret, sizeof(j->secret), "%s", kind == 'b' && sep ? sep + 1 : cred_s);
    j->done = done;
    j->ctx = ctx;
    j->req.data = j;
    sodium_memzero(cred_s, sizeof(cred_s));
    if (uv_queue_work(a->loop, &j->req, verify_work, verify_after) != 0) {
        a->verifying_ip[free_slot][0] = '\0';
        sodium_memzero(j->secret, sizeof(j->secret));
        free(j);
        *retry_after = 1;
        return 429;
    }
    a->verifying++;
    a->argon2++;
    return 0;
}

int http_auth_metrics(const http_auth *a, pdns_buf *b) {
    if (!a)
        return 0;
    return pdns_buf_printf(b, "# HELP pdns_relay_auth_argon2_total Credentials checked with Argon2 (the rest were recognised from memory).\n"
                              "# TYPE pdns_relay_auth_argon2_total counter\n"
                              "pdns_relay_auth_argon2_total %llu\n"
                              "# HELP pdns_relay_auth_refused_total Logins refused before any hashing, by reason.\n"
                              "# TYPE pdns_relay_auth_refused_total counter\n"
                              "pdns_relay_auth_refused_total{reason=\"failures\"} %llu\n"
                              "pdns_relay_auth_refused_total{reason=\"busy\"} %llu\n",
                           (unsigned long long)a->argon2,
                           (unsigned long long)a->refused_failures,
                           (unsigned long long)a->refused_busy);
}
