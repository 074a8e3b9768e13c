/* edit.c - changing partner policies from the console. See edit.h. */
#include "edit.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "afile.h"
#include "cof.h"
#include "log.h"
#include "policy.h"
#include "preview.h"
#include "rrtype.h"

static partner *find(policy_edit *e, const char *name) {
    for (size_t i = 0; i < e->sh->np; i++)
        if (e->sh->p[i].pol && strcmp(e->sh->p[i].pol->partner, name) == 0)
            return &e->sh->p[i];
    return NULL;
}


static int error(pdns_buf *b, int status, const char *why) {
    return pdns_buf_json(b, json_pack("{s:s}", "error", why)) < 0 ? -1 : status;
}

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *t = malloc(EDIT_TEXT_MAX + 1);
    size_t n = t ? fread(t, 1, EDIT_TEXT_MAX + 1, f) : 0;
    fclose(f);
    if (!t || n > EDIT_TEXT_MAX) {
        free(t);
        return NULL;
    }
    t[n] = '\0';
    *len = n;
    return t;
}

/* ---- the change waiting for a second coordinator (admin.two_person) ---------- */

/* state_dir/<sub>/<partner><ext>, the directory made when missing. */
static int state_file(policy_edit *e, const char *sub, const char *name, const char *ext,
                      char *out, size_t outlen) {
    char dir[1100];
    snprintf(dir, sizeof(dir), "%s/%s", e->cfg->state_dir, sub);
    if (mkdir(dir, 0750) < 0 && errno != EEXIST)
        return -1;
    return snprintf(out, outlen, "%s/%s%s", dir, name, ext) < (int)outlen ? 0 : -1;
}

static int pending_path(policy_edit *e, const char *name, char *out, size_t outlen) {
    return state_file(e, "policy-pending", name, ".json", out, outlen);
}

/* {"at", "who", "comment", "version", "base", "text"}, or NULL. */
static json_t *pending_read(policy_edit *e, const char *name) {
    char path[1200];
    json_error_t je;
    if (pending_path(e, name, path, sizeof(path)) < 0)
        return NULL;
    json_t *o = json_load_file(path, 0, &je);
    if (o && (!json_is_object(o) || !json_is_string(json_object_get(o, "text")) ||
              !json_is_string(json_object_get(o, "who")) ||
              !json_is_string(json_object_get(o, "version")))) {
        log_warn("console: %s: not a change waiting for approval; ignored", path);
        json_decref(o);
        return NULL;
    }
    return o;
}

static int pending_exists(policy_edit *e, const char *name) {
    json_t *o = pending_read(e, name);
    json_decref(o);
    return o != NULL;
}

static void add_change(void *ctx, const char *sentence) {
    json_array_append_new(ctx, json_string(sentence));
}

static void add_words(void *ctx, enum policy_words w, const char *sentence) {
    json_array_append_new(ctx, json_pack("{s:s,s:s}", "section", policy_words_name(w), "text",
                                         sentence));
}

/* The policy in words (policy_describe), as the relay's mixer makes it act. */
static json_t *words(policy_edit *e, const policy *p) {
    json_t *a = json_array();
    policy_describe(p, &e->cfg->mixer, add_words, a);
    return a;
}

/* Loads text as partner pt's policy, from a file beside pt's (so that its
 * relative key files resolve as they will; a dot file, which the policy
 * directory's scan skips). Fills o with ok, messages and changes; returns
 * the policy (the caller frees it), or NULL. */
static policy *check(policy_edit *e, partner *pt, const char *name, const char *text,
                     size_t len, json_t *o) {
    char tmp[1200];
    const char *base = strrchr(pt->file, '/');
    size_t dl = base ? (size_t)(base - pt->file) : 0;
    snprintf(tmp, sizeof(tmp), "%.*s%s.%s.check", (int)dl, pt->file, dl ? "/" : "",
             base ? base + 1 : pt->file);
    json_t *msgs = json_array(), *changes = json_array();
    json_object_set_new(o, "messages", msgs);
    json_object_set_new(o, "changes", changes);
    policy *p = NULL;
    if (pdns_afile_write(tmp, text, len) < 0) {
        json_array_append_new(msgs, json_pack("{s:i,s:i,s:b,s:s}", "line", 0, "column", 0,
                                              "warning", 0, "text",
                                              "the relay cannot write beside the policy file"));
    } else {
        policy_diag d = {0};
        p = policy_load(tmp, &e->sh->env, &d);
        unlink(tmp);
        for (size_t i = 0; i < d.n; i++)
            json_array_append_new(msgs, json_pack("{s:i,s:i,s:b,s:s}", "line", d.m[i].line,
                                                  "column", d.m[i].col, "warning",
                                                  d.m[i].warning, "text", d.m[i].text));
        policy_diag_free(&d);
    }
    if (p && strcmp(p->partner, name) != 0) {
        char why[200];
        snprintf(why, sizeof(why), "this is partner %s's file: \"partner\" must stay \"%s\"",
                 name, name);
        json_array_append_new(msgs, json_pack("{s:i,s:i,s:b,s:s}", "line", 0, "column", 0,
                                              "warning", 0, "text", why));
        policy_free(p);
        p = NULL;
    }
    if (p) {
        policy_diff(pt->pol, p, add_change, changes);
        json_object_set_new(o, "version", json_string(p->version));
    }
    json_object_set_new(o, "ok", json_boolean(p != NULL));
    return p;
}

int edit_list(policy_edit *e, pdns_buf *b) {
    json_t *a = json_array();
    for (size_t i = 0; i < e->sh->np; i++) {
        const partner *pt = &e->sh->p[i];
        if (pt->pol)
            json_array_append_new(a, json_pack("{s:s,s:s,s:s,s:b,s:o,s:b}", "name",
                                               pt->pol->partner, "file", pt->file, "version",
                                               pt->pol->version, "enabled", pt->pol->enabled,
                                               "words", words(e, pt->pol), "pending",
                                               pending_exists(e, pt->pol->partner)));
    }
    return pdns_buf_json(b, json_pack("{s:o}", "partners", a)) < 0 ? -1 : 200;
}

int edit_get(policy_edit *e, const char *name, pdns_buf *b) {
    partner *pt = find(e, name);
    if (!pt)
        return error(b, 404, "no such partner");
    size_t len;
    char *t = read_file(pt->file, &len);
    if (!t)
        return error(b, 500, "the policy file cannot be read");
    json_t *o = json_pack("{s:s,s:s,s:s%,s:o,s:b}", "name", name, "version", pt->pol->version,
                          "text", t, len, "words", words(e, pt->pol), "two_person",
                          e->cfg->admin_two_person);
    free(t);
    json_t *pend = pending_read(e, name);
    if (pend) {
        /* what the waiting change would do, against the policy in force */
        json_t *chk = json_object();
        const char *pt_text = json_string_value(json_object_get(pend, "text"));
        policy *np = check(e, pt, name, pt_text, strlen(pt_text), chk);
        json_object_set(pend, "changes", json_object_get(chk, "changes"));
        json_object_set(pend, "messages", json_object_get(chk, "messages"));
        json_object_set_new(pend, "ok", json_boolean(np != NULL));
        policy_free(np);
        json_decref(chk);
        json_object_set_new(o, "pending", pend);
    }
    return pdns_buf_json(b, o) < 0 ? -1 : 200;
}

int edit_check(policy_edit *e, const char *name, const char *text, size_t len,
               pdns_buf *b) {
    partner *pt = find(e, name);
    if (!pt)
        return error(b, 404, "no such partner");
    json_t *o = json_object();
    policy *p = check(e, pt, name, text, len, o);
    policy_free(p);
    return pdns_buf_json(b, o) < 0 ? -1 : 200;
}

static int history_path(policy_edit *e, const char *name, char *out, size_t outlen) {
    return state_file(e, "policy-history", name, ".ndjson", out, outlen);
}

/* The history's entries, oldest first (at most EDIT_HISTORY_MAX). */
static json_t *history_read(const char *path) {
    json_t *a = json_array();
    FILE *f = fopen(path, "r");
    if (!f)
        return a;
    char *line = NULL;
    size_t cap = 0;
    json_error_t je;
    /* one object a line; a line that is not one (torn) is skipped */
    while (getline(&line, &cap, f) > 0) {
        json_t *o = json_loads(line, 0, &je);
        if (json_is_object(o))
            json_array_append_new(a, o);
        else
            json_decref(o);
    }
    free(line);
    fclose(f);
    while (json_array_size(a) > EDIT_HISTORY_MAX)
        json_array_remove(a, 0);
    return a;
}

static int history_add(const char *path, json_t *entry) {
    json_t *a = history_read(path);
    json_array_append_new(a, entry);
    while (json_array_size(a) > EDIT_HISTORY_MAX)
        json_array_remove(a, 0);
    pdns_buf out = {0};
    size_t i;
    json_t *o;
    int rc = 0;
    json_array_foreach(a, i, o) {
        json_incref(o);
        rc |= pdns_buf_json(&out, o) < 0;
    }
    json_decref(a);
    if (rc == 0)
        rc = pdns_afile_write(path, out.p, out.len);
    pdns_buf_free(&out);
    return rc ? -1 : 0;
}

static json_t *entry(const char *who, const char *approved_by, const char *comment,
                     const char *version, const char *text, size_t len) {
    json_t *o = json_pack("{s:I,s:s,s:s,s:s,s:s%}", "at", (json_int_t)time(NULL), "who", who,
                          "comment", comment, "version", version, "text", text, len);
    if (o && approved_by)
        json_object_set_new(o, "approved_by", json_string(approved_by));
    return o;
}

/* Makes text partner pt's policy now: o gets the check's answer. */
static int apply_now(policy_edit *e, partner *pt, const char *name, const char *text,
                     size_t len, const char *who, const char *approved_by,
                     const char *comment, pdns_buf *b) {
    json_t *o = json_object();
    policy *p = check(e, pt, name, text, len, o);
    if (!p)
        return pdns_buf_json(b, o) < 0 ? -1 : 422;
    char version[sizeof(p->version)], file[sizeof(pt->file)], hist[1200];
    snprintf(version, sizeof(version), "%s", p->version);
    snprintf(file, sizeof(file), "%s", pt->file);
    policy_free(p);
    if (history_path(e, name, hist, sizeof(hist)) < 0) {
        json_decref(o);
        return error(b, 500, "the history directory (state_dir/policy-history) cannot be made");
    }
    if (access(hist, F_OK) < 0) { /* the first change: keep what was there */
        size_t ol;
        char *old = read_file(file, &ol);
        if (old && history_add(hist, entry("", NULL, "the policy in force before the "
                                           "console's first change", pt->pol->version, old,
                                           ol)) < 0)
            log_warn("console: %s: cannot write", hist);
        free(old);
    }
    struct stat st;
    mode_t mode = stat(file, &st) == 0 ? (st.st_mode & 0777) : 0640;
    if (pdns_afile_write(file, text, len) < 0 || chmod(file, mode) < 0) {
        json_decref(o);
        log_error("console: %s: %s", file, strerror(errno));
        return error(b, 500, "the policy file cannot be written");
    }
    if (history_add(hist, entry(who, approved_by, comment, version, text, len)) < 0)
        log_warn("console: %s: the history cannot be written", hist);
    if (approved_by)
        log_info("console: %s changed partner %s's policy to version %s, approved by %s: %s",
                 who, name, version, approved_by, comment);
    else
        log_info("console: %s changed partner %s's policy to version %s: %s", who, name,
                 version, comment);
    share_reload(e->sh);
    pt = find(e, name);
    json_object_set_new(o, "in_force", json_string(pt ? pt->pol->version : ""));
    return pdns_buf_json(b, o) < 0 ? -1 : 200;
}

int edit_apply(policy_edit *e, const char *name, const char *text, size_t len,
               const char *who, const char *comment, pdns_buf *b) {
    partner *pt = find(e, name);
    if (!pt)
        return error(b, 404, "no such partner");
    if (!e->cfg->admin_two_person)
        return apply_now(e, pt, name, text, len, who, NULL, comment, b);
    /* two-person rule: the change waits for a second coordinator */
    json_t *o = json_object();
    policy *p = check(e, pt, name, text, len, o);
    if (!p)
        return pdns_buf_json(b, o) < 0 ? -1 : 422;
    char path[1200];
    json_t *pend = json_pack("{s:I,s:s,s:s,s:s,s:s,s:s%}", "at", (json_int_t)time(NULL), "who",
                             who, "comment", comment, "version", p->version, "base",
                             pt->pol->version, "text", text, len);
    policy_free(p);
    char *dump = pend ? json_dumps(pend, JSON_COMPACT) : NULL;
    if (!dump || pending_path(e, name, path, sizeof(path)) < 0 ||
        pdns_afile_write(path, dump, strlen(dump)) < 0) {
        free(dump);
        json_decref(pend);
        json_decref(o);
        return error(b, 500, "the change cannot be kept (state_dir/policy-pending)");
    }
    free(dump);
    log_info("console: %s proposes version %s of partner %s's policy, waiting for a second "
             "coordinator: %s", who, json_string_value(json_object_get(pend, "version")), name,
             comment);
    json_object_del(pend, "text");
    json_object_set_new(o, "pending", pend);
    return pdns_buf_json(b, o) < 0 ? -1 : 202;
}

int edit_decide(policy_edit *e, const char *name, int approve, const char *version,
                const char *who, pdns_buf *b) {
    partner *pt = find(e, name);
    if (!pt)
        return error(b, 404, "no such partner");
    json_t *pend = pending_read(e, name);
    if (!pend)
        return error(b, 404, "no change of this policy is waiting");
    const char *pv = json_string_value(json_object_get(pend, "version"));
    const char *pwho = json_string_value(json_object_get(pend, "who"));
    const char *base = json_string_value(json_object_get(pend, "base"));
    const char *comment = json_string_value(json_object_get(pend, "comment"));
    const char *text = json_string_value(json_object_get(pend, "text"));
    char why[300], path[1200];
    int st;
    if (strcmp(version, pv) != 0) {
        snprintf(why, sizeof(why), "the change waiting is version %s, not %s: look at it again",
                 pv, version);
        st = error(b, 409, why);
    } else if (approve && strcmp(who, pwho) == 0) {
        snprintf(why, sizeof(why), "%s proposed this change: a second coordinator must "
                 "approve it", pwho);
        st = error(b, 403, why);
    } else if (approve && base && strcmp(base, pt->pol->version) != 0) {
        snprintf(why, sizeof(why), "the policy changed since this was proposed (%s, now %s): "
                 "discard it and propose again", base, pt->pol->version);
        st = error(b, 409, why);
    } else {
        st = approve ? apply_now(e, pt, name, text, strlen(text), pwho, who,
                                 comment ? comment : "", b)
                     : 200;
        if (st == 200 && pending_path(e, name, path, sizeof(path)) == 0)
            unlink(path);
        if (st == 200 && !approve) {
            log_info("console: %s discarded version %s of partner %s's policy, proposed by %s",
                     who, pv, name, pwho);
            st = pdns_buf_json(b, json_pack("{s:s}", "discarded", pv)) < 0 ? -1 : 200;
        }
    }
    json_decref(pend);
    return st;
}

int edit_history(policy_edit *e, const char *name, pdns_buf *b) {
    if (!find(e, name))
        return error(b, 404, "no such partner");
    char hist[1200];
    if (history_path(e, name, hist, sizeof(hist)) < 0)
        return error(b, 500, "the history directory cannot be made");
    json_t *a = history_read(hist), *rev = json_array();
    for (size_t i = json_array_size(a); i-- > 0;)
        json_array_append(rev, json_array_get(a, i));
    json_decref(a);
    return pdns_buf_json(b, json_pack("{s:o}", "history", rev)) < 0 ? -1 : 200;
}

/* ---- preview ---------------------------------------------------------------- */

typedef struct pv {
    pdns_record *recs;
    preview_rec *v;
    size_t n, cap;
    json_t *sent, *denied, *explain;
    pdns_buf line;
} pv;

static void collect(void *ctx, const pdns_record *r, uint16_t source, int64_t ms) {
    pv *x = ctx;
    if (x->n == x->cap)
        return; /* sized by the count recent_each gave */
    x->recs[x->n] = *r;
    x->v[x->n] = (preview_rec){ms, source, &x->recs[x->n]};
    x->n++;
}

static void count_fn(void *ctx, const pdns_record *r, uint16_t s, int64_t ms) {
    (void)r, (void)s, (void)ms;
    ++*(size_t *)ctx;
}

static void on_sent(void *ctx, const policy_out *out) {
    pv *x = ctx;
    if (json_array_size(x->sent) >= EDIT_PREVIEW_SHOWN)
        return;
    x->line.len = 0;
    json_error_t je;
    if (cof_encode(&out->rec, out->cof_flags, &x->line) == 0)
        json_array_append_new(x->sent, json_loadb(x->line.p, x->line.len, 0, &je));
}

static void on_denied(void *ctx, const mixer_entry *e, enum policy_verdict v, const char *why) {
    pv *x = ctx;
    char t[16];
    if (json_array_size(x->denied) >= 50)
        return;
    pdns_rrtype_format(e->rec.rrtype, t, sizeof(t));
    json_array_append_new(x->denied,
                          json_pack("{s:s%,s:s,s:s%,s:s,s:s}", "rrname", e->rec.rrname.p,
                                    e->rec.rrname.len, "rrtype", t, "rdata", e->rec.rdata.p,
                                    e->rec.rdata.len, "verdict", policy_verdict_name(v), "why",
                                    why));
}

static void on_explain(void *ctx, const pdns_record *r, const char *what) {
    pv *x = ctx;
    char t[16], m[700];
    pdns_rrtype_format(r->rrtype, t, sizeof(t));
    snprintf(m, sizeof(m), "%.*s %s %.*s: %s", (int)r->rrname.len, r->rrname.p, t,
             (int)(r->rdata.len > 200 ? 200 : r->rdata.len), r->rdata.p, what);
    json_array_append_new(x->explain, json_string(m));
}

int edit_preview(policy_edit *e, const char *name, const char *text, size_t len,
                 const char *explain, pdns_buf *b) {
    partner *pt = find(e, name);
    if (!pt)
        return error(b, 404, "no such partner");
    if (!e->recent || !e->cfg->mixer_enabled)
        return error(b, 409, "the preview needs the mixer (mixer.enabled) and recent records "
                             "(admin.preview_mib)");
    json_t *o = json_object();
    policy *p = check(e, pt, name, text, len, o);
    if (!p)
        return pdns_buf_json(b, o) < 0 ? -1 : 422;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    pv x = {0};
    size_t n = 0;
    recent_each(e->recent, now, count_fn, &n);
    x.cap = n;
    x.recs = calloc(n ? n : 1, sizeof(*x.recs));
    x.v = calloc(n ? n : 1, sizeof(*x.v));
    x.sent = json_array();
    x.denied = json_array();
    x.explain = json_array();
    mixer_conf mc = e->cfg->mixer;
    uint16_t *orgs = preview_orgs(&e->sh->env, &mc);
    preview_result res;
    int st = 500;
    if (x.recs && x.v && orgs) {
        recent_each(e->recent, now, collect, &x);
        preview_hooks h = {on_sent, on_denied, explain && *explain ? explain : NULL,
                           on_explain, &x};
        if (preview_run(x.v, x.n, p, &e->sh->env, &mc, 1, &h, &res) == 0) {
            json_t *sum = json_array();
            json_array_append_new(sum, json_pack("{s:s,s:I}", "what", "records in",
                                                 "n", (json_int_t)res.records));
            json_array_append_new(sum, json_pack("{s:s,s:I}", "what", "triples (after merging)",
                                                 "n", (json_int_t)res.triples));
            json_array_append_new(sum, json_pack("{s:s,s:I}", "what", "released by the mixer",
                                                 "n", (json_int_t)res.released));
            for (int k = 0; k < MIXER_DROP_COUNT; k++)
                json_array_append_new(sum, json_pack("{s:s,s:I}", "what",
                                                     preview_drop_label((enum mixer_drop)k),
                                                     "n", (json_int_t)res.drops[k]));
            for (int k = 0; k < POLICY_VERDICT_COUNT; k++)
                json_array_append_new(
                    sum, json_pack("{s:s,s:I}", "what",
                                   preview_verdict_label((enum policy_verdict)k), "n",
                                   (json_int_t)res.verdicts[k]));
            json_object_set_new(o, "records", json_integer((json_int_t)res.records));
            json_object_set_new(o, "triples", json_integer((json_int_t)res.triples));
            json_object_set_new(o, "released", json_integer((json_int_t)res.released));
            json_object_set_new(o, "minutes", json_integer(e->recent->max_age_ms / 60000));
            json_object_set_new(o, "summary", sum);
            json_object_set_new(o, "sent", x.sent);
            json_object_set_new(o, "denied", x.denied);
            json_object_set_new(o, "explain", x.explain);
            x.sent = x.denied = x.explain = NULL;
            st = 200;
        }
    }
    json_decref(x.sent);
    json_decref(x.denied);
    json_decref(x.explain);
    pdns_buf_free(&x.line);
    free(x.recs);
    free(x.v);
    free(orgs);
    policy_free(p);
    if (st != 200) {
        json_decref(o);
        return error(b, 500, "out of memory");
    }
    return pdns_buf_json(b, o) < 0 ? -1 : 200;
}
