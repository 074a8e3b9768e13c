/* console.h - the web console on the admin listener (/console/): sign-in
 * against admin.auth_file's users with a role, session cookies, CSRF
 * tokens, the pages (compiled in), a live view pushed as Server-Sent
 * Events, and the JSON API behind them (docs/api.md, "Console").
 *
 * Roles: viewer (sees everything the admin listener shows), coordinator
 * (also changes policies; under admin.two_person a change waits until
 * another coordinator approves it), admin (also reloads the relay). A session is a
 * random 256-bit id in an HttpOnly, SameSite=Strict cookie; every change
 * (POST) also carries the session's CSRF token in X-CSRF-Token. Sessions
 * end after CONSOLE_IDLE_S without a request, CONSOLE_MAX_S after sign-in,
 * or at sign-out; at most CONSOLE_SESSIONS live at once (the least
 * recently used goes). It renders nothing from records as HTML: the pages
 * put every value in as text. */
#ifndef PDNS_CONSOLE_H
#define PDNS_CONSOLE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "buf.h"
#include "http_auth.h"

#define CONSOLE_SESSIONS 64
#define CONSOLE_IDLE_S (30 * 60)
#define CONSOLE_MAX_S (12 * 3600)
#define CONSOLE_SSE_MAX 32       /* live views open at once */

struct lws;
typedef struct console console;

/* What the console asks of the relay. */
typedef struct console_hooks {
    /* the live state as one JSON object */
    int (*state)(void *ctx, pdns_buf *b);
    /* the last hour's totals, sampled: {"interval_s", "samples": [...]} */
    int (*history)(void *ctx, pdns_buf *b);
    /* reloads the configuration and the policies (as SIGHUP); 0, or -1
     * with why in err */
    int (*reload)(void *ctx, char *err, size_t errlen);
    /* partner policies (relay/edit.h): each appends a JSON object to b and
     * returns an HTTP status, or -1 */
    int (*policy_list)(void *ctx, pdns_buf *b);
    int (*policy_get)(void *ctx, const char *name, pdns_buf *b);
    int (*policy_history)(void *ctx, const char *name, pdns_buf *b);
    int (*policy_check)(void *ctx, const char *name, const char *text, size_t len,
                        pdns_buf *b);
    int (*policy_apply)(void *ctx, const char *name, const char *text, size_t len,
                        const char *who, const char *comment, pdns_buf *b);
    int (*policy_preview)(void *ctx, const char *name, const char *text, size_t len,
                          const char *explain, pdns_buf *b);
    /* the change waiting for a second coordinator: approve or discard */
    int (*policy_decide)(void *ctx, const char *name, int approve, const char *version,
                         const char *who, pdns_buf *b);
    void *ctx;
} console_hooks;

#define CONSOLE_BODY_MAX (512u * 1024) /* a request body (a policy and a comment) */

/* One connection's console state (inside the HTTP listener's per-
 * connection data). */
typedef struct console_conn {
    struct console_login *login; /* a sign-in waiting for its Argon2 check */
    int sse;                     /* a live view (text/event-stream) */
    int sse_slot;
    /* a change whose body is being read: what, for whom, by whom */
    int op;                      /* 0 none, else the console's op */
    int too_big;
    char name[64], who[64];
    pdns_buf in;
} console_conn;

/* The console with users from auth (owned by the caller; NULL: the console
 * answers that admin.auth_file is not set). Returns NULL when out of
 * memory. */
console *console_new(uv_loop_t *loop, http_auth *auth, const console_hooks *hooks);
void console_free(console *c);

/* 1 when path is the console's (/console, /console/...). */
int console_owns(const char *path);

/* Answers one request for path: 0 (an answer is on its way), or -1 (close
 * the connection). body has LWS_PRE bytes of headroom. */
int console_request(console *c, struct lws *wsi, console_conn *cc, const char *path,
                    pdns_buf *body);

/* A piece of a request body (console_request asked for it: cc->op set);
 * then its end, when the change is made and answered: 0, or -1. */
void console_body(console_conn *cc, const void *data, size_t len);
int console_body_done(console *c, struct lws *wsi, console_conn *cc, pdns_buf *body);

/* The connection can take more of a live view: 0, or -1 (close). */
int console_writable(console *c, struct lws *wsi, console_conn *cc);

/* The connection closed. */
void console_closed(console *c, console_conn *cc);

/* Sign-ins, refusals, sessions (Prometheus text). Returns 0, or -1. */
int console_metrics(const console *c, pdns_buf *b);

/* The pure parts, for tests: the value of cookie `name` in a Cookie
 * header (its length, or -1), and a session table driven by a clock. */
int console_cookie(const char *header, const char *name, char *out, size_t outlen);

#endif
