/* console.c - the web console on the admin listener. See console.h. */
#include "console.h"

#include <inttypes.h>
#include <jansson.h>
#include <libwebsockets.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "console_app_css.h"
#include "console_app_js.h"
#include "console_index_html.h"
#include "http.h"
#include "log.h"

#define COOKIE "pdns_console"
#define SSE_PERIOD_MS 1000

typedef struct session {
    char id[65], csrf[65];       /* hex of 32 random bytes each; "" free */
    char user[64];
    int rank;                    /* http_auth_role_rank */
    uint64_t created_ms, last_ms;
} session;

/* A sign-in waiting for the thread pool's Argon2 check; wsi NULL once the
 * client has gone. */
typedef struct console_login {
    console *c;
    struct lws *wsi;
    console_conn *cc;
    pdns_buf *body;
} console_login;

struct console {
    http_auth *auth;
    console_hooks h;
    session s[CONSOLE_SESSIONS];
    struct lws *sse[CONSOLE_SSE_MAX];
    uv_timer_t tick;
    int tick_on;
    uint64_t logins, refused, forbidden, csrf_refused;
};

/* Headers of every console answer: nothing cached, nothing framed, no
 * type sniffing, no referrer; pages also get a policy that runs only the
 * console's own script and style. */
#define SAFE_HEADERS                                                        \
    "cache-control:", "no-store", "x-content-type-options:", "nosniff",     \
        "x-frame-options:", "DENY", "referrer-policy:", "no-referrer"
static const char *const api_headers[] = {SAFE_HEADERS, NULL};
static const char *const page_headers[] = {
    SAFE_HEADERS, "content-security-policy:",
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    NULL};

static void on_tick(uv_timer_t *t) {
    console *c = t->data;
    for (int i = 0; i < CONSOLE_SSE_MAX; i++)
        if (c->sse[i])
            lws_callback_on_writable(c->sse[i]);
}

console *console_new(uv_loop_t *loop, http_auth *auth, const console_hooks *hooks) {
    console *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->auth = auth;
    c->h = *hooks;
    if (loop && uv_timer_init(loop, &c->tick) == 0) {
        c->tick.data = c;
        c->tick_on = 1;
        uv_timer_start(&c->tick, on_tick, SSE_PERIOD_MS, SSE_PERIOD_MS);
        uv_unref((uv_handle_t *)&c->tick);
    }
    return c;
}

static void free_after_close(uv_handle_t *h) {
    console *c = h->data;
    sodium_memzero(c->s, sizeof(c->s));
    free(c);
}

void console_free(console *c) {
    if (!c)
        return;
    if (c->tick_on) {
        uv_timer_stop(&c->tick);
        uv_close((uv_handle_t *)&c->tick, free_after_close);
        return;
    }
    sodium_memzero(c->s, sizeof(c->s));
    free(c);
}

int console_owns(const char *path) {
    return strcmp(path, "/console") == 0 || strncmp(path, "/console/", 9) == 0;
}

int console_cookie(const char *header, const char *name, char *out, size_t outlen) {
    size_t nl = strlen(name);
    const char *p = header;
    while (p && *p) {
        while (*p == ' ' || *p == ';')
            p++;
        const char *end = strchr(p, ';');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len > nl && p[nl] == '=' && memcmp(p, name, nl) == 0) {
            size_t vl = len - nl - 1;
            while (vl && p[nl + 1 + vl - 1] == ' ')
                vl--;
            if (vl >= outlen)
                return -1;
            memcpy(out, p + nl + 1, vl);
            out[vl] = '\0';
            return (int)vl;
        }
        p = end;
    }
    return -1;
}

/* The live session the request's cookie names, or NULL. */
static session *find_session(console *c, struct lws *wsi) {
    char hdr[1024], id[80];
    if (lws_hdr_copy(wsi, hdr, sizeof(hdr), WSI_TOKEN_HTTP_COOKIE) <= 0 ||
        console_cookie(hdr, COOKIE, id, sizeof(id)) != 64)
        return NULL;
    uint64_t now = pdns_mono_ms();
    for (int i = 0; i < CONSOLE_SESSIONS; i++) {
        session *s = &c->s[i];
        if (!s->id[0] || sodium_memcmp(s->id, id, 64) != 0)
            continue;
        if (now - s->last_ms > CONSOLE_IDLE_S * 1000ull ||
            now - s->created_ms > CONSOLE_MAX_S * 1000ull) {
            sodium_memzero(s, sizeof(*s));
            return NULL;
        }
        s->last_ms = now;
        return s;
    }
    return NULL;
}

static session *new_session(console *c, const char *user, int rank) {
    session *s = &c->s[0];
    for (int i = 0; i < CONSOLE_SESSIONS; i++) { /* a free slot, else the LRU */
        if (!c->s[i].id[0]) {
            s = &c->s[i];
            break;
        }
        if (c->s[i].last_ms < s->last_ms)
            s = &c->s[i];
    }
    uint8_t rnd[64];
    randombytes_buf(rnd, sizeof(rnd));
    sodium_bin2hex(s->id, sizeof(s->id), rnd, 32);
    sodium_bin2hex(s->csrf, sizeof(s->csrf), rnd + 32, 32);
    sodium_memzero(rnd, sizeof(rnd));
    snprintf(s->user, sizeof(s->user), "%s", user);
    s->rank = rank;
    s->created_ms = s->last_ms = pdns_mono_ms();
    return s;
}

static int is_post(struct lws *wsi) {
    return lws_hdr_total_length(wsi, WSI_TOKEN_POST_URI) > 0;
}

/* A JSON answer: {"error": why} for a status other than 200. */
static int answer(struct lws *wsi, pdns_buf *body, unsigned status, const char *why,
                  const char *const *hdrs) {
    if (why && pdns_buf_json(body, json_pack("{s:s}", "error", why)) < 0)
        return -1;
    return http_respond(wsi, body, status, "application/json", hdrs ? hdrs : api_headers);
}

static int session_json(pdns_buf *body, const session *s) {
    static const char *const roles[] = {"", "viewer", "coordinator", "admin"};
    return pdns_buf_json(body, json_pack("{s:s,s:s,s:s}", "user", s->user, "role",
                                            roles[s->rank], "csrf", s->csrf));
}

/* After a good sign-in: the session, its cookie (Secure over TLS). */
static int signed_in(console *c, struct lws *wsi, pdns_buf *body, const char *user,
                     int rank) {
    session *s = new_session(c, user, rank);
    char cookie[200];
    snprintf(cookie, sizeof(cookie), COOKIE "=%s; Path=/console/; HttpOnly; SameSite=Strict%s",
             s->id, lws_is_ssl(wsi) ? "; Secure" : "");
    const char *hdrs[] = {SAFE_HEADERS, "set-cookie:", cookie, NULL};
    c->logins++;
    log_info("console: %s signed in (%s)", user, rank == 3 ? "admin"
                                                 : rank == 2 ? "coordinator" : "viewer");
    if (session_json(body, s) < 0)
        return -1;
    return http_respond(wsi, body, HTTP_STATUS_OK, "application/json", hdrs);
}

/* The credential's verdict: a user with a console role gets a session. */
static int judge(console *c, struct lws *wsi, pdns_buf *body, int st, const char *who,
                 int retry) {
    if (st == 200 && strncmp(who, "user:", 5) == 0) {
        int rank = http_auth_role_rank(http_auth_role(c->auth, who + 5));
        if (rank)
            return signed_in(c, wsi, body, who + 5, rank);
        c->refused++;
        return answer(wsi, body, HTTP_STATUS_FORBIDDEN,
                      "this user has no console role (pdns-relay passwd --role)", NULL);
    }
    c->refused++;
    if (st == 429) {
        char ra[16];
        snprintf(ra, sizeof(ra), "%d", retry > 0 ? retry : 1);
        const char *hdrs[] = {SAFE_HEADERS, "retry-after:", ra, NULL};
        return answer(wsi, body, 429, "too many attempts; try again later", hdrs);
    }
    return answer(wsi, body, HTTP_STATUS_UNAUTHORIZED,
                  st == 200 ? "API keys cannot sign in; use a user with a console role"
                            : "unknown user or wrong password", NULL);
}

static void on_verified(void *ctx, int st, const char *who, int retry) {
    console_login *l = ctx;
    if (l->wsi) {
        l->cc->login = NULL;
        if (judge(l->c, l->wsi, l->body, st, who, retry) < 0)
            lws_set_timeout(l->wsi, PENDING_TIMEOUT_KILLED_BY_PARENT, LWS_TO_KILL_ASYNC);
    }
    free(l);
}

static int login(console *c, struct lws *wsi, console_conn *cc, pdns_buf *body) {
    char who[160];
    int retry = 0;
    console_login *l = calloc(1, sizeof(*l));
    if (!l)
        return -1;
    l->c = c;
    l->wsi = wsi;
    l->cc = cc;
    l->body = body;
    int st = http_auth_check(c->auth, wsi, who, sizeof(who), &retry, on_verified, l);
    if (st == 0) {
        cc->login = l; /* on_verified answers */
        return 0;
    }
    free(l);
    return judge(c, wsi, body, st, who, retry);
}

/* A change must carry the session's CSRF token. */
static int csrf_ok(struct lws *wsi, const session *s) {
    char tok[80];
    int n = lws_hdr_custom_copy(wsi, tok, sizeof(tok), "x-csrf-token:", 13);
    return n == 64 && sodium_memcmp(tok, s->csrf, 64) == 0;
}

static int start_sse(console *c, struct lws *wsi, console_conn *cc, pdns_buf *body) {
    int slot = -1;
    for (int i = 0; i < CONSOLE_SSE_MAX && slot < 0; i++)
        if (!c->sse[i])
            slot = i;
    if (slot < 0)
        return answer(wsi, body, HTTP_STATUS_SERVICE_UNAVAILABLE,
                      "too many live views open; close one", NULL);
    uint8_t hdr[LWS_PRE + 1024], *start = hdr + LWS_PRE, *q = start,
                                 *end = hdr + sizeof(hdr) - 1;
    if (lws_add_http_common_headers(wsi, HTTP_STATUS_OK, "text/event-stream",
                                    LWS_ILLEGAL_HTTP_CONTENT_LEN, &q, end))
        return -1;
    for (const char *const *h = api_headers; h[0]; h += 2)
        if (lws_add_http_header_by_name(wsi, (const unsigned char *)h[0],
                                        (const unsigned char *)h[1], (int)strlen(h[1]), &q,
                                        end))
            return -1;
    if (lws_finalize_write_http_header(wsi, start, &q, end))
        return -1;
    lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0);
    c->sse[slot] = wsi;
    cc->sse = 1;
    cc->sse_slot = slot;
    lws_callback_on_writable(wsi); /* the first state at once */
    return 0;
}

enum { OP_NONE, OP_CHECK, OP_APPLY, OP_PREVIEW, OP_APPROVE, OP_DISCARD };

/* An answer a hook made (its status, its JSON in body). */
static int hooked(struct lws *wsi, pdns_buf *body, int status) {
    if (status < 0)
        return -1;
    return http_respond(wsi, body, (unsigned)status, "application/json", api_headers);
}

static int good_name(const char *n, size_t len) {
    if (len == 0 || len >= 64)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!((n[i] >= 'a' && n[i] <= 'z') || (n[i] >= 'A' && n[i] <= 'Z') ||
              (n[i] >= '0' && n[i] <= '9') || n[i] == '-' || n[i] == '_' || n[i] == '.'))
            return 0;
    return n[0] != '.';
}

/* /console/api/policies[/NAME[/history|/check|/apply|/preview|/approve|/discard]] */
static int policies(console *c, struct lws *wsi, console_conn *cc, const session *s,
                    const char *rest, int post, pdns_buf *body) {
    if (!c->h.policy_list)
        return answer(wsi, body, HTTP_STATUS_NOT_FOUND, "no policies here", NULL);
    if (!*rest)
        return post ? answer(wsi, body, 405, "method not allowed here", NULL)
                    : hooked(wsi, body, c->h.policy_list(c->h.ctx, body));
    const char *name = rest + 1, *slash = strchr(name, '/');
    size_t nl = slash ? (size_t)(slash - name) : strlen(name);
    if (!good_name(name, nl))
        return answer(wsi, body, HTTP_STATUS_NOT_FOUND, "no such partner", NULL);
    char n[64];
    memcpy(n, name, nl);
    n[nl] = '\0';
    const char *what = slash ? slash + 1 : "";
    if (!post && !*what)
        return hooked(wsi, body, c->h.policy_get(c->h.ctx, n, body));
    if (!post && strcmp(what, "history") == 0)
        return hooked(wsi, body, c->h.policy_history(c->h.ctx, n, body));
    int op = strcmp(what, "check") == 0     ? OP_CHECK
             : strcmp(what, "apply") == 0   ? OP_APPLY
             : strcmp(what, "preview") == 0 ? OP_PREVIEW
             : strcmp(what, "approve") == 0 ? OP_APPROVE
             : strcmp(what, "discard") == 0 ? OP_DISCARD
                                            : 0;
    if (!post || !op)
        return answer(wsi, body, post ? HTTP_STATUS_NOT_FOUND : 405,
                      post ? "not found" : "method not allowed here", NULL);
    if ((op == OP_APPLY || op == OP_APPROVE || op == OP_DISCARD) && s->rank < 2) {
        c->forbidden++;
        return answer(wsi, body, HTTP_STATUS_FORBIDDEN,
                      "changing a policy takes the coordinator or admin role", NULL);
    }
    /* the body comes next: console_body, then console_body_done */
    cc->op = op;
    cc->too_big = 0;
    snprintf(cc->name, sizeof(cc->name), "%s", n);
    snprintf(cc->who, sizeof(cc->who), "%s", s->user);
    cc->in.len = 0;
    return 0;
}

void console_body(console_conn *cc, const void *data, size_t len) {
    if (!cc->op || cc->too_big)
        return;
    if (cc->in.len + len > CONSOLE_BODY_MAX || pdns_buf_append(&cc->in, data, len) < 0) {
        cc->too_big = 1;
        pdns_buf_free(&cc->in);
    }
}

int console_body_done(console *c, struct lws *wsi, console_conn *cc, pdns_buf *body) {
    int op = cc->op;
    cc->op = OP_NONE;
    if (cc->too_big)
        return answer(wsi, body, 413, "the request is too large (512 KiB at most)", NULL);
    json_error_t je;
    json_t *o = json_loadb(cc->in.p ? cc->in.p : "", cc->in.len, 0, &je);
    pdns_buf_free(&cc->in);
    const char *text = NULL, *comment = "", *explain = "", *version = NULL;
    size_t tl = 0;
    int decide = op == OP_APPROVE || op == OP_DISCARD;
    if (!json_is_object(o) ||
        json_unpack(o, "{s?s%,s?s,s?s,s?s}", "text", &text, &tl, "comment", &comment,
                    "explain", &explain, "version", &version) < 0 ||
        (decide ? !version : !text)) {
        json_decref(o);
        return answer(wsi, body, HTTP_STATUS_BAD_REQUEST,
                      decide ? "want a JSON object {\"version\": the change's version}"
                             : "want a JSON object {\"text\": policy, \"comment\": why}",
                      NULL);
    }
    int st;
    if (op == OP_CHECK) {
        st = c->h.policy_check(c->h.ctx, cc->name, text, tl, body);
    } else if (op == OP_PREVIEW) {
        st = c->h.policy_preview(c->h.ctx, cc->name, text, tl, explain, body);
    } else if (decide) {
        st = c->h.policy_decide(c->h.ctx, cc->name, op == OP_APPROVE, version, cc->who, body);
    } else if (!comment[0] || strlen(comment) > 500) {
        json_decref(o);
        return answer(wsi, body, HTTP_STATUS_BAD_REQUEST,
                      "say why in \"comment\" (500 characters at most): the history keeps it",
                      NULL);
    } else {
        st = c->h.policy_apply(c->h.ctx, cc->name, text, tl, cc->who, comment, body);
    }
    json_decref(o);
    return hooked(wsi, body, st);
}

int console_request(console *c, struct lws *wsi, console_conn *cc, const char *path,
                    pdns_buf *body) {
    if (strcmp(path, "/console") == 0 || strcmp(path, "/console/") == 0) {
        pdns_buf_append(body, console_index_html, sizeof(console_index_html) - 1);
        return http_respond(wsi, body, HTTP_STATUS_OK, "text/html; charset=utf-8",
                            page_headers);
    }
    if (strcmp(path, "/console/app.js") == 0) {
        pdns_buf_append(body, console_app_js, sizeof(console_app_js) - 1);
        return http_respond(wsi, body, HTTP_STATUS_OK, "text/javascript; charset=utf-8",
                            page_headers);
    }
    if (strcmp(path, "/console/app.css") == 0) {
        pdns_buf_append(body, console_app_css, sizeof(console_app_css) - 1);
        return http_respond(wsi, body, HTTP_STATUS_OK, "text/css; charset=utf-8",
                            page_headers);
    }
    if (strncmp(path, "/console/api/", 13) != 0)
        return answer(wsi, body, HTTP_STATUS_NOT_FOUND, "not found", NULL);
    const char *ep = path + 13;
    if (!c->auth)
        return answer(wsi, body, HTTP_STATUS_SERVICE_UNAVAILABLE,
                      "the console is off: set admin.auth_file to a file of users "
                      "with a role (pdns-relay passwd --role)", NULL);
    int post = is_post(wsi);
    if (strcmp(ep, "login") == 0)
        return post ? login(c, wsi, cc, body)
                    : answer(wsi, body, 405, "sign in with POST", NULL);
    session *s = find_session(c, wsi);
    if (!s)
        return answer(wsi, body, HTTP_STATUS_UNAUTHORIZED, "sign in first", NULL);
    if (post && !csrf_ok(wsi, s)) {
        c->csrf_refused++;
        return answer(wsi, body, HTTP_STATUS_FORBIDDEN,
                      "missing or wrong X-CSRF-Token", NULL);
    }
    if (strncmp(ep, "policies", 8) == 0 && (ep[8] == '\0' || ep[8] == '/'))
        return policies(c, wsi, cc, s, ep + 8, post, body);
    if (strcmp(ep, "session") == 0 && !post) {
        if (session_json(body, s) < 0)
            return -1;
        return answer(wsi, body, HTTP_STATUS_OK, NULL, NULL);
    }
    if (strcmp(ep, "state") == 0 && !post) {
        if (c->h.state(c->h.ctx, body) < 0)
            return -1;
        return answer(wsi, body, HTTP_STATUS_OK, NULL, NULL);
    }
    if (strcmp(ep, "events") == 0 && !post)
        return start_sse(c, wsi, cc, body);
    if (strcmp(ep, "history") == 0 && !post) {
        if (c->h.history(c->h.ctx, body) < 0)
            return -1;
        return answer(wsi, body, HTTP_STATUS_OK, NULL, NULL);
    }
    if (strcmp(ep, "logout") == 0 && post) {
        log_info("console: %s signed out", s->user);
        sodium_memzero(s, sizeof(*s));
        const char *hdrs[] = {SAFE_HEADERS, "set-cookie:",
                              COOKIE "=; Path=/console/; HttpOnly; SameSite=Strict; Max-Age=0",
                              NULL};
        pdns_buf_append(body, "{}\n", 3);
        return answer(wsi, body, HTTP_STATUS_OK, NULL, hdrs);
    }
    if (strcmp(ep, "reload") == 0 && post) {
        if (s->rank < 3) {
            c->forbidden++;
            return answer(wsi, body, HTTP_STATUS_FORBIDDEN, "reloading takes the admin role",
                          NULL);
        }
        char err[512] = "";
        log_info("console: %s asks for a reload", s->user);
        if (c->h.reload(c->h.ctx, err, sizeof(err)) < 0)
            return answer(wsi, body, 422, err, NULL);
        pdns_buf_append(body, "{\"reloaded\":true}\n", 18);
        return answer(wsi, body, HTTP_STATUS_OK, NULL, NULL);
    }
    if (post || strcmp(ep, "session") == 0 || strcmp(ep, "state") == 0 ||
        strcmp(ep, "events") == 0 || strcmp(ep, "history") == 0)
        return answer(wsi, body, 405, "method not allowed here", NULL);
    return answer(wsi, body, HTTP_STATUS_NOT_FOUND, "not found", NULL);
}

int console_writable(console *c, struct lws *wsi, console_conn *cc) {
    if (!cc->sse)
        return 0;
    pdns_buf b = {0};
    int rc = -1;
    if (pdns_buf_reserve(&b, LWS_PRE) < 0)
        return -1;
    b.len = LWS_PRE;
    if (pdns_buf_append(&b, "data: ", 6) < 0 || c->h.state(c->h.ctx, &b) < 0)
        goto out;
    while (b.len > LWS_PRE && b.p[b.len - 1] == '\n') /* one line of data */
        b.len--;
    if (pdns_buf_append(&b, "\n\n", 2) < 0)
        goto out;
    size_t n = b.len - LWS_PRE;
    if (lws_write(wsi, (unsigned char *)b.p + LWS_PRE, n, LWS_WRITE_HTTP) == (int)n)
        rc = 0;
out:
    pdns_buf_free(&b);
    return rc;
}

void console_closed(console *c, console_conn *cc) {
    cc->op = OP_NONE;
    pdns_buf_free(&cc->in);
    if (cc->login) {
        cc->login->wsi = NULL; /* on_verified frees it */
        cc->login = NULL;
    }
    if (cc->sse && c && c->sse[cc->sse_slot])
        c->sse[cc->sse_slot] = NULL;
    cc->sse = 0;
}

int console_metrics(const console *c, pdns_buf *b) {
    int live = 0;
    for (int i = 0; i < CONSOLE_SESSIONS; i++)
        live += c->s[i].id[0] != 0;
    return pdns_buf_printf(
        b,
        "# HELP pdns_relay_console_signins_total Console sign-ins that succeeded.\n"
        "# TYPE pdns_relay_console_signins_total counter\n"
        "pdns_relay_console_signins_total %" PRIu64 "\n"
        "# HELP pdns_relay_console_refused_total Console requests refused, by reason.\n"
        "# TYPE pdns_relay_console_refused_total counter\n"
        "pdns_relay_console_refused_total{reason=\"signin\"} %" PRIu64 "\n"
        "pdns_relay_console_refused_total{reason=\"role\"} %" PRIu64 "\n"
        "pdns_relay_console_refused_total{reason=\"csrf\"} %" PRIu64 "\n"
        "# HELP pdns_relay_console_sessions Console sessions signed in.\n"
        "# TYPE pdns_relay_console_sessions gauge\n"
        "pdns_relay_console_sessions %d\n",
        c->logins, c->refused, c->forbidden, c->csrf_refused, live);
}
