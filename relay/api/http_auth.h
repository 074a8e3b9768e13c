/* http_auth.h - who may query, and how often.
 *
 * Credentials come from a file (http.auth_file), one per line:
 *     basic NAME HASH [ROLE]
 *                        an HTTP Basic user; ROLE (viewer, coordinator or
 *                        admin) lets the user sign in to the console on
 *                        the admin listener (console.h)
 *     key   NAME HASH    an API key "NAME.SECRET", sent as
 *                        "Authorization: Bearer NAME.SECRET", as the bare
 *                        Authorization value, or as "X-API-Key: ..."
 * HASH is libsodium's crypto_pwhash_str (Argon2id) of the password or of
 * the whole key; `pdns-relay passwd` writes these lines. Blank lines and
 * lines starting with # are ignored. A verified credential is remembered
 * (by a keyed hash of it) for five minutes, so that the Argon2 cost is
 * paid once per client and not per query; that cost is paid on libuv's
 * thread pool, never on the event loop (at most 8 verifications at once;
 * more get 429), so no client can stall the relay with passwords.
 *
 * Anonymous access (no credentials) is off, on, or allowed from loopback
 * addresses only (the default). Every principal (user, key, or anonymous
 * client address) has a token bucket: rate requests a second, burst at
 * once; a request over it gets 429 with Retry-After. */
#ifndef PDNS_HTTP_AUTH_H
#define PDNS_HTTP_AUTH_H

#include <stddef.h>
#include <uv.h>

#include "buf.h"

struct lws;

typedef struct http_auth http_auth;

/* Loads path ("" for none). Returns NULL with "FILE:LINE: message" in
 * err. */
http_auth *http_auth_new(uv_loop_t *loop, const char *path, int anonymous,
                         double rate, double burst, char *err, size_t errlen);
void http_auth_free(http_auth *a);

/* Trusted reverse proxies (",addr,addr," as config.c writes it, or ""): a
 * request from one of them is judged by the address X-Forwarded-For
 * names (the rightmost that is not a trusted proxy itself). */
void http_auth_set_proxies(http_auth *a, const char *list);

/* The decision on a request whose credential had to be verified first. */
typedef void (*http_auth_done)(void *ctx, int status, const char *who,
                               int retry_after);

/* Decides one request. Returns 200 with the principal in who, 401 (no or
 * bad credentials: a reason in who), 429 with *retry_after seconds and a
 * reason in who (the rate limit; too many failed logins for the principal
 * or the address, judged before any hashing; the Argon2 checks busy, at
 * most 8 at once and 2 per address), or 0 when the credential is being
 * verified: done(ctx, ...) then says, later (from the loop, never from
 * within this call). A credential once verified is recognised from memory
 * (a keyed BLAKE2b tag) for 5 minutes. */
int http_auth_check(http_auth *a, struct lws *wsi, char *who, size_t wholen,
                    int *retry_after, http_auth_done done, void *ctx);

/* Argon2 checks done, logins refused before hashing (Prometheus text).
 * Returns 0, or -1. */
int http_auth_metrics(const http_auth *a, pdns_buf *b);

#define HTTP_AUTH_ROLE_MAX 16

/* The console role of basic user `user` ("" for none or no such user). */
const char *http_auth_role(const http_auth *a, const char *user);

/* 1 viewer, 2 coordinator, 3 admin; 0 for anything else. */
int http_auth_role_rank(const char *role);

/* The pure parts, for tests: a credential line (role "" when it has
 * none), and the bucket. */
int http_auth_parse_line(const char *line, char *kind, char *name,
                         char *hash, char *role, const char **why);

#endif
