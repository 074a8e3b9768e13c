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

#define NAME_MAX_LEN 64
#define CACHE_SLOTS 1024
#define CACHE_TTL_MS (5 * 60 * 1000)
#define BUCKET_SLOTS 4096
#define MAX_VERIFYING 8

typedef struct cred {
    char kind;                 /* 'b' basic, 'k' key */
    char name[NAME_MAX_LEN];
    char hash[crypto_pwhash_STRBYTES];
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
    cred dummy;                /* verified for unknown names: same time */
    cred *creds;
    size_t n;
    int anonymous;             /* 0 no, 1 yes, 2 loopback only */
    double rate, burst;        /* rate 0: no limit */
    uint8_t key[crypto_generichash_KEYBYTES];
    cache_slot cache[CACHE_SLOTS];
    bucket buckets[BUCKET_SLOTS];
};

static uint64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int http_auth_parse_line(const char *line, char *kind, char *name, char *hash,
                         const char **why) {
    char k[16], n[NAME_MAX_LEN + 1], h[crypto_pwhash_STRBYTES + 1], extra[2];
    int f = sscanf(line, " %15s %64s %128s %1s", k, n, h, extra);
    if (f != 3) {
        *why = f > 3 ? "too many fields (want: basic|key NAME HASH)"
                     : "want: basic|key NAME HASH";
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
    strcpy(name, n);
    strcpy(hash, h);
    return 0;
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
        if (http_auth_parse_line(s, &c.kind, c.name, c.hash, &why) < 0) {
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

static cache_slot *slot_for(http_auth *a, const uint8_t tag[16]) {
    return &a->cache[(tag[0] | (unsigned)tag[1] << 8) % CACHE_SLOTS];
}

/* A credential verified before (and not long ago): its principal. */
static int cached(http_auth *a, const uint8_t tag[16], char *who, size_t wholen) {
    cache_slot *slot = slot_for(a, tag);
    if (slot->until_ms > now_ms() && sodium_memcmp(slot->tag, tag, 16) == 0) {
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
    uint8_t tag[16];
    char secret[600];
    char ip[64];
    int ok;
    http_auth_done done;
    void *ctx;
} verify_job;

static int take(http_auth *a, const char *who);

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
    if (status == 0 && j->ok && j->c != &a->dummy) {
        cache_slot *slot = slot_for(a, j->tag);
        memcpy(slot->tag, j->tag, sizeof(slot->tag));
        snprintf(slot->who, sizeof(slot->who), "%s:%s",
                 j->kind == 'b' ? "user" : "key", j->c->name);
        slot->until_ms = now_ms() + CACHE_TTL_MS;
        snprintf(who, sizeof(who), "%s", slot->who);
        retry = take(a, who);
        code = retry ? 429 : 200;
    } else {
        char anon[96];
        snprintf(anon, sizeof(anon), "fail:%s", j->ip);
        retry = take(a, anon);
        code = retry ? 429 : 401;
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

/* Takes one token from who's bucket. Returns 0, or the seconds to wait. */
static int take(http_auth *a, const char *who) {
    if (a->rate <= 0)
        return 0;
    uint64_t h = 1469598103934665603ULL;
    for (const char *p = who; *p; p++)
        h = (h ^ (uint8_t)*p) * 1099511628211ULL;
    bucket *b = &a->buckets[h % BUCKET_SLOTS];
    uint64_t now = now_ms();
    if (strcmp(b->who, who) != 0) { /* a new (or evicted) principal */
        snprintf(b->who, sizeof(b->who), "%s", who);
        b->tokens = a->burst;
        b->last_ms = now;
    }
    b->tokens += (double)(now - b->last_ms) / 1000.0 * a->rate;
    if (b->tokens > a->burst)
        b->tokens = a->burst;
    b->last_ms = now;
    if (b->tokens >= 1.0) {
        b->tokens -= 1.0;
        return 0;
    }
    int wait = (int)((1.0 - b->tokens) / a->rate + 0.999);
    return wait < 1 ? 1 : wait;
}

int http_auth_check(http_auth *a, struct lws *wsi, char *who, size_t wholen,
                    int *retry_after, http_auth_done done, void *ctx) {
    char hdr[600] = "", ip[64] = "";
    int len = lws_hdr_copy(wsi, hdr, sizeof(hdr), WSI_TOKEN_HTTP_AUTHORIZATION);
    if (len <= 0)
        len = lws_hdr_custom_copy(wsi, hdr, sizeof(hdr), "x-api-key:", 10);
    lws_get_peer_simple(wsi, ip, sizeof(ip));
    *retry_after = 0;
    if (len <= 0) {
        if (a->anonymous == 0 || (a->anonymous == 2 && !is_loopback(ip))) {
            snprintf(who, wholen, "credentials required (HTTP Basic or an "
                     "API key)");
            return 401;
        }
        snprintf(who, wholen, "anon:%s", ip);
        *retry_after = take(a, who);
        return *retry_after ? 429 : 200;
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
        *retry_after = take(a, who);
        return *retry_after ? 429 : 200;
    }
    const char *sep = strchr(cred_s, kind == 'b' ? ':' : '.');
    const cred *c = sep ? find(a, kind, cred_s, (size_t)(sep - cred_s)) : NULL;
    if (!c) /* an unknown name: checked against a random hash, to fail */
        c = &a->dummy;
    verify_job *j = a->verifying < MAX_VERIFYING ? calloc(1, sizeof(*j)) : NULL;
    if (!j) {
        sodium_memzero(cred_s, sizeof(cred_s));
        *retry_after = 1;
        return 429;
    }
    j->a = a;
    j->c = c;
    j->kind = kind;
    memcpy(j->tag, tag, sizeof(tag));
    snprintf(j->secret, sizeof(j->secret), "%s", kind == 'b' && sep ? sep + 1 : cred_s);
    snprintf(j->ip, sizeof(j->ip), "%s", ip);
    j->done = done;
    j->ctx = ctx;
    j->req.data = j;
    sodium_memzero(cred_s, sizeof(cred_s));
    if (uv_queue_work(a->loop, &j->req, verify_work, verify_after) != 0) {
        sodium_memzero(j->secret, sizeof(j->secret));
        free(j);
        *retry_after = 1;
        return 429;
    }
    a->verifying++;
    return 0;
}
