/* policy.c - partner policy files: loading with every error positioned,
 * name resolution, evaluation, pseudonyms and diffs. See policy.h. */
#include "policy.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "cof.h"
#include "jsonpos.h"
#include "rrtype.h"

/* ---- diagnostics ---------------------------------------------------------- */

void policy_diag_free(policy_diag *d) {
    free(d->m);
    d->m = NULL;
    d->n = d->cap = d->errors = d->warnings = 0;
}

void policy_diag_format(const policy_diag *d, size_t i, char *out,
                        size_t outlen) {
    const policy_msg *m = &d->m[i];
    snprintf(out, outlen, "%s:%d:%d: %s%s", d->file[0] ? d->file : "-", m->line,
             m->col, m->warning ? "warning: " : "", m->text);
}

typedef struct pctx {
    policy_diag *d;
    const char *text;
    size_t len;
    char dir[512];
} pctx;

__attribute__((format(printf, 4, 5))) static void say(pctx *c, int warning,
                                                      const char *path,
                                                      const char *fmt, ...) {
    policy_diag *d = c->d;
    policy_msg *grown = pdns_grow(d->m, &d->cap, d->n, sizeof(*grown), 16);
    if (!grown)
        return;
    d->m = grown;
    policy_msg *m = &d->m[d->n++];
    memset(m, 0, sizeof(*m));
    m->warning = warning;
    m->line = m->col = 1;
    if (c->text)
        jsonpos_find(c->text, c->len, path, &m->line, &m->col);
    char body[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(body, sizeof(body), fmt, ap);
    va_end(ap);
    if (*path)
        snprintf(m->text, sizeof(m->text), "'%s': %s", path, body);
    else
        snprintf(m->text, sizeof(m->text), "%s", body);
    if (warning)
        d->warnings++;
    else
        d->errors++;
}

#define ERR(c, path, ...) say((c), 0, (path), __VA_ARGS__)
#define WARN(c, path, ...) say((c), 1, (path), __VA_ARGS__)

static void join(char *out, size_t n, const char *path, const char *key) {
    snprintf(out, n, "%s%s%s", path, *path ? "." : "", key);
}

/* ---- typed getters: each reports and returns -1 on a bad value ---------- */

static int known_keys(pctx *c, json_t *o, const char *path,
                      const char *const *allowed) {
    const char *k;
    json_t *v;
    char p[256];
    int rc = 0;
    json_object_foreach(o, k, v) {
        const char *const *a;
        for (a = allowed; *a && strcmp(*a, k); a++)
            ;
        if (!*a) {
            join(p, sizeof(p), path, k);
            ERR(c, p, "unknown key");
            rc = -1;
        }
    }
    return rc;
}

static int get_str(pctx *c, json_t *o, const char *path, const char *key,
                   char *out, size_t outlen) {
    char p[256];
    json_t *v = json_object_get(o, key);
    if (!v)
        return 0;
    join(p, sizeof(p), path, key);
    if (!json_is_string(v)) {
        ERR(c, p, "must be a string");
        return -1;
    }
    if (json_string_length(v) >= outlen) {
        ERR(c, p, "longer than %zu bytes", outlen - 1);
        return -1;
    }
    memcpy(out, json_string_value(v), json_string_length(v) + 1);
    return 0;
}

static int get_bool(pctx *c, json_t *o, const char *path, const char *key,
                    int *out) {
    char p[256];
    json_t *v = json_object_get(o, key);
    if (!v)
        return 0;
    join(p, sizeof(p), path, key);
    if (!json_is_boolean(v)) {
        ERR(c, p, "must be true or false");
        return -1;
    }
    *out = json_is_true(v);
    return 0;
}

static int get_num(pctx *c, json_t *o, const char *path, const char *key,
                   double *out, double min, double max, int integer) {
    char p[256];
    json_t *v = json_object_get(o, key);
    if (!v)
        return 0;
    join(p, sizeof(p), path, key);
    if (integer ? !json_is_integer(v) : !json_is_number(v)) {
        ERR(c, p, "must be %s", integer ? "an integer" : "a number");
        return -1;
    }
    double x = json_number_value(v);
    if (x < min || x > max) {
        if (x < 0 && min >= 0)
            ERR(c, p, "must not be negative");
        else
            ERR(c, p, "must be between %g and %g", min, max);
        return -1;
    }
    *out = x;
    return 0;
}

/* A key file: mode 0600 or stricter, at least 32 bytes. */
static int read_secret(pctx *c, const char *path, const char *file,
                       uint8_t **key) {
    struct stat st;
    uint8_t buf[4096];
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT && c->d->keys_may_be_missing) {
        WARN(c, path, "key file %s does not exist yet (at least 32 secret bytes, mode "
             "0600, before the relay loads this policy)", file);
        return 0;
    }
    if (fd < 0) {
        ERR(c, path, "key file %s: %s", file, strerror(errno));
        return -1;
    }
    ssize_t n = -1;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
        ERR(c, path, "key file %s: not a regular file", file);
    else if (st.st_mode & 077)
        ERR(c, path, "key file %s is accessible by group or others (mode %04o): "
            "chmod 600 it", file, (unsigned)(st.st_mode & 07777));
    else if ((n = read(fd, buf, sizeof(buf))) < 32) {
        ERR(c, path, "key file %s: must hold at least 32 bytes", file);
        n = -1;
    }
    close(fd);
    if (n < 0) {
        sodium_memzero(buf, sizeof(buf));
        return -1;
    }
    *key = sodium_malloc(32);
    if (!*key) {
        sodium_memzero(buf, sizeof(buf));
        return -1;
    }
    /* any secret text: the key is its BLAKE2b-256 */
    crypto_generichash(*key, 32, buf, (size_t)n, NULL, 0);
    sodium_memzero(buf, sizeof(buf));
    return 0;
}

/* A path from the file, relative to the file's directory. Too long a
 * result is cut, and then simply not found when opened. */
static void resolve_path(pctx *c, const char *in, char *out, size_t outlen) {
    size_t dl = strlen(c->dir), il = strlen(in);
    if (in[0] == '/' || !in[0]) {
        dl = 0;
    } else if (dl + 1 + il >= outlen) {
        out[0] = '\0';
        return;
    }
    if (dl) {
        memcpy(out, c->dir, dl);
        out[dl++] = '/';
    }
    memcpy(out + dl, in, il + 1 < outlen - dl ? il + 1 : outlen - dl);
    out[outlen - 1] = '\0';
}

/* ---- lists ------------------------------------------------------------------ */

static void list_free(policy_list *l) {
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

static int list_has(const policy_list *l, const char *s) {
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->v[i], "*") == 0 || strcmp(l->v[i], s) == 0)
            return 1;
    return 0;
}

/* {"allow": [...], "deny": [...]} of strings into two lists. */
/* The strings of array a (path names it in messages) into l. Returns 0,
 * or -1 after reporting the items that are not non-empty strings. */
static int read_list(pctx *c, const char *path, json_t *a, policy_list *l) {
    size_t i;
    json_t *v;
    int rc = 0;
    l->v = calloc(json_array_size(a) + 1, sizeof(char *));
    if (!l->v) {
        ERR(c, path, "out of memory");
        return -1;
    }
    json_array_foreach(a, i, v) {
        char pi[300];
        snprintf(pi, sizeof(pi), "%s[%zu]", path, i);
        if (!json_is_string(v) || json_string_length(v) == 0) {
            ERR(c, pi, "must be a non-empty string");
            rc = -1;
            continue;
        }
        l->v[l->n++] = strdup(json_string_value(v));
    }
    return rc;
}

static int get_allow_deny(pctx *c, json_t *root, const char *key,
                          policy_list *allow, policy_list *deny) {
    static const char *const keys[] = {"allow", "deny", NULL};
    json_t *o = json_object_get(root, key);
    char p[256];
    int rc = 0;
    if (!o)
        return 0;
    if (!json_is_object(o)) {
        ERR(c, key, "must be an object with \"allow\" and/or \"deny\" lists");
        return -1;
    }
    rc |= known_keys(c, o, key, keys);
    for (int which = 0; which < 2; which++) {
        const char *k = which ? "deny" : "allow";
        policy_list *l = which ? deny : allow;
        json_t *a = json_object_get(o, k);
        if (!a)
            continue;
        join(p, sizeof(p), key, k);
        if (!json_is_array(a)) {
            ERR(c, p, "must be a list of strings");
            rc = -1;
            continue;
        }
        rc |= read_list(c, p, a, l);
    }
    for (size_t i = 0; i < allow->n; i++)
        for (size_t j = 0; j < deny->n; j++)
            if (strcmp(allow->v[i], deny->v[j]) == 0) {
                join(p, sizeof(p), key, "deny");
                ERR(c, p, "\"%s\" is both allowed and denied", deny->v[j]);
                rc = -1;
            }
    return rc;
}

/* ---- names ------------------------------------------------------------------- */

/* Parses a name rule ("example.com", "=www.example.com", "."): lower case,
 * no trailing dot, labels of 1-63 bytes, at most 253 bytes. */
static int name_rule(pctx *c, const char *path, const char *in, char *out,
                     size_t *len, int *exact) {
    const char *why = NULL;
    *exact = in[0] == '=';
    if (*exact)
        in++;
    size_t n = strlen(in);
    if (strchr(in, '*')) {
        ERR(c, path, "\"%s\": no wildcards; a rule matches the name and every "
            "name under it (write the suffix itself)", in);
        return -1;
    }
    if (n == 0 || n > 254) {
        ERR(c, path, "bad name \"%s\": 1 to 253 bytes", in);
        return -1;
    }
    memcpy(out, in, n + 1);
    if (pdns_name_canon(out, &n, &why) < 0) {
        ERR(c, path, "bad name \"%s\": %s", in, why);
        return -1;
    }
    out[n] = '\0';
    size_t label = 0;
    for (size_t i = 0; i < n && strcmp(out, ".") != 0; i++) {
        if (out[i] == '.') {
            label = 0;
            continue;
        }
        if (++label > 63) {
            ERR(c, path, "bad name \"%s\": a label is longer than 63 bytes", in);
            return -1;
        }
    }
    *len = n;
    return 0;
}

static int load_names(pctx *c, json_t *root, policy *p) {
    policy_list allow = {0}, deny = {0};
    int rc = get_allow_deny(c, root, "names", &allow, &deny);
    char path[300], buf[300];
    p->name_allow = suffix_set_new();
    p->name_deny = suffix_set_new();
    for (int which = 0; which < 2 && p->name_allow && p->name_deny; which++) {
        policy_list *l = which ? &deny : &allow;
        for (size_t i = 0; i < l->n; i++) {
            size_t n;
            int exact;
            snprintf(path, sizeof(path), "names.%s[%zu]", which ? "deny" : "allow", i);
            if (name_rule(c, path, l->v[i], buf, &n, &exact) < 0) {
                rc = -1;
                continue;
            }
            suffix_set_add(which ? p->name_deny : p->name_allow, buf, n, exact);
        }
    }
    list_free(&allow);
    list_free(&deny);
    return rc;
}

/* ---- rrtypes -------------------------------------------------------------- */

#define BIT_SET(b, i) ((b)[(i) >> 3] |= (uint8_t)(1u << ((i) & 7)))
#define BIT_GET(b, i) (((b)[(i) >> 3] >> ((i) & 7)) & 1)

static int load_rrtypes(pctx *c, json_t *root, policy *p) {
    policy_list allow = {0}, deny = {0};
    int rc = get_allow_deny(c, root, "rrtypes", &allow, &deny);
    char path[300];
    for (int which = 0; which < 2; which++) {
        policy_list *l = which ? &deny : &allow;
        uint8_t *bits = which ? p->rr_deny : p->rr_allow;
        for (size_t i = 0; i < l->n; i++) {
            uint16_t t;
            if (strcmp(l->v[i], "*") == 0) {
                memset(bits, 0xff, 8192);
                continue;
            }
            snprintf(path, sizeof(path), "rrtypes.%s[%zu]", which ? "deny" : "allow", i);
            if (pdns_rrtype_parse(l->v[i], strlen(l->v[i]), &t) < 0) {
                ERR(c, path, "unknown rrtype \"%s\"", l->v[i]);
                rc = -1;
                continue;
            }
            BIT_SET(bits, t);
        }
    }
    list_free(&allow);
    list_free(&deny);
    return rc;
}

/* ---- sources ---------------------------------------------------------------- */

static int load_sources(pctx *c, json_t *root, policy *p) {
    policy_list allow = {0}, deny = {0};
    int rc = get_allow_deny(c, root, "sources", &allow, &deny);
    char path[300];
    unsigned deny_mask = 0;
    for (int which = 0; which < 2; which++) {
        policy_list *l = which ? &deny : &allow;
        for (size_t i = 0; i < l->n; i++) {
            int k;
            for (k = 0; k < PDNS_SRC_COUNT; k++)
                if (strcmp(l->v[i], pdns_source_name((enum pdns_source)k)) == 0)
                    break;
            if (strcmp(l->v[i], "*") == 0) {
                *(which ? &deny_mask : &p->sources_allow) |= (1u << PDNS_SRC_COUNT) - 1;
                continue;
            }
            if (k == PDNS_SRC_COUNT) {
                snprintf(path, sizeof(path), "sources.%s[%zu]", which ? "deny" : "allow", i);
                ERR(c, path, "unknown source kind \"%s\" (want d4, queue, partner or "
                    "file)", l->v[i]);
                rc = -1;
                continue;
            }
            if (which)
                deny_mask |= 1u << k;
            else
                p->sources_allow |= 1u << k;
        }
    }
    p->sources_allow &= ~deny_mask;
    list_free(&allow);
    list_free(&deny);
    return rc;
}

/* Organisations are what must be hidden: a sensor id hides nothing when
 * every allowed sensor belongs to one organisation, and min_sensors is no
 * protection when one organisation has that many sensors by itself. */
static void warn_organisations(pctx *c, const policy *p, const policy_env *env) {
    const char *first = NULL;
    size_t orgs = 0;
    uint32_t k = p->min_sensors;
    if (env->mixer && env->mixer->min_sensors > k)
        k = env->mixer->min_sensors;
    for (size_t s = 0; s < env->n && s < p->n_source_ok; s++) {
        const policy_source *src = &env->src[s];
        if (!p->source_ok[s] || src->kind == PDNS_SRC_PARTNER)
            continue;
        int seen = 0;
        for (size_t t = 0; t < s && !seen; t++)
            seen = p->source_ok[t] && env->src[t].kind != PDNS_SRC_PARTNER &&
                   src->org[0] && strcmp(env->src[t].org, src->org) == 0;
        if (seen)
            continue;
        orgs++;
        if (!first)
            first = src->org[0] ? src->org : NULL;
        if (p->min_orgs >= 2 || !src->org[0] || list_has(&p->own_orgs, src->org))
            continue;
        size_t same = 0;
        for (size_t t = 0; t < env->n && t < p->n_source_ok; t++)
            same += p->source_ok[t] && env->src[t].kind != PDNS_SRC_PARTNER &&
                    strcmp(env->src[t].org, src->org) == 0;
        if (same >= k && k >= 2)
            WARN(c, "min_orgs", "organisation \"%s\" alone has %zu allowed sensors, "
                 "enough for min_sensors %u: set \"min_orgs\": 2 so that one "
                 "organisation's sightings never release a record by themselves",
                 src->org, same, k);
    }
    if (orgs == 1 && first &&
        (p->id_mode == POLICY_ID_STRIP || p->id_mode == POLICY_ID_PSEUDONYM))
        WARN(c, "sensor_id", "every sensor this policy allows belongs to organisation "
             "\"%s\": whatever sensor_id says, each record tells the partner that "
             "organisation saw it", first);
}

static int resolve(pctx *cp, policy *p, const policy_env *env) {
    pctx c = *cp;
    free(p->source_ok);
    p->source_ok = NULL;
    p->n_source_ok = 0;
    if (!env)
        return 0;
    p->source_ok = calloc(env->n ? env->n : 1, 1);
    if (!p->source_ok)
        return -1;
    p->n_source_ok = env->n;
    int rc = 0;
    /* every name the policy uses must exist */
    const struct {
        const policy_list *l;
        const char *what, *path;
        size_t off;
    } lists[] = {
        {&p->sensors_allow, "sensor", "sensors.allow", offsetof(policy_source, name)},
        {&p->sensors_deny, "sensor", "sensors.deny", offsetof(policy_source, name)},
        {&p->orgs_allow, "organisation", "organisations.allow", offsetof(policy_source, org)},
        {&p->orgs_deny, "organisation", "organisations.deny", offsetof(policy_source, org)},
        {&p->groups_allow, "group", "groups.allow", offsetof(policy_source, group)},
        {&p->groups_deny, "group", "groups.deny", offsetof(policy_source, group)},
        {&p->own_orgs, "organisation", "own_organisations", offsetof(policy_source, org)},
    };
    for (size_t li = 0; li < sizeof(lists) / sizeof(lists[0]); li++) {
        for (size_t i = 0; i < lists[li].l->n; i++) {
            const char *want = lists[li].l->v[i];
            int found = strcmp(want, "*") == 0;
            for (size_t s = 0; s < env->n && !found; s++) {
                const char *have = *(const char *const *)((const char *)&env->src[s] + lists[li].off);
                found = have && strcmp(have, want) == 0;
            }
            if (!found) {
                char path[300];
                snprintf(path, sizeof(path), "%s[%zu]", lists[li].path, i);
                say(&c, 0, path, "unknown %s \"%s\"", lists[li].what, want);
                rc = -1;
            }
        }
    }
    for (size_t s = 0; s < env->n; s++) {
        const policy_source *src = &env->src[s];
        int kind_ok = (p->sources_allow >> src->kind) & 1;
        int allowed = list_has(&p->sensors_allow, src->name) ||
                      (src->org[0] && list_has(&p->orgs_allow, src->org)) ||
                      (src->group[0] && list_has(&p->groups_allow, src->group));
        int denied = list_has(&p->sensors_deny, src->name) ||
                     (src->org[0] && list_has(&p->orgs_deny, src->org)) ||
                     (src->group[0] && list_has(&p->groups_deny, src->group));
        p->source_ok[s] = kind_ok && allowed && !denied;
    }
    warn_organisations(&c, p, env);
    return rc;
}

int policy_resolve(policy *p, const policy_env *env, policy_diag *d) {
    pctx c = {.d = d};
    snprintf(d->file, sizeof(d->file), "%s", p->path);
    return resolve(&c, p, env);
}

/* ---- loading ----------------------------------------------------------------- */

static int parse_time(const char *s, int64_t *out) {
    int Y, M, D, h = 0, m = 0, sec = 0;
    char z = 'Z';
    int n = sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%c", &Y, &M, &D, &h, &m, &sec, &z);
    if (!(n == 3 || n == 7) || z != 'Z' || M < 1 || M > 12 || D < 1 ||
        D > 31 || h > 23 || m > 59 || sec > 60)
        return -1;
    if (n == 3 && strlen(s) != 10)
        return -1;
    struct tm tm = {0};
    tm.tm_year = Y - 1900;
    tm.tm_mon = M - 1;
    tm.tm_mday = D;
    tm.tm_hour = h;
    tm.tm_min = m;
    tm.tm_sec = sec;
    *out = (int64_t)timegm(&tm);
    return 0;
}

static int load_endpoint(pctx *c, json_t *root, policy *p) {
    static const char *const keys[] = {
        "host", "port", "uuid", "hmac_key_file", "ca_file", "insecure",
        "format", "max_frame", "partner_pubkey", "rrtypes", "pin_sha256", NULL};
    /* what analyzer-d4-passivedns takes: a line of another type is lost
     * and stops its ingester */
    static const char *const analyzer_rr[] = {"A", "AAAA", "CNAME", "MX", "NS",
                                              "PTR", "SOA", "SRV", "TXT", NULL};
    json_t *o = json_object_get(root, "endpoint");
    char fmt[32] = "pdns-cof", file[512] = "", ca[512] = "";
    double port = 4443, mf = 1000000;
    if (!o)
        return 0;
    if (!json_is_object(o)) {
        ERR(c, "endpoint", "must be an object");
        return -1;
    }
    int rc = known_keys(c, o, "endpoint", keys);
    rc |= get_str(c, o, "endpoint", "host", p->host, sizeof(p->host));
    rc |= get_num(c, o, "endpoint", "port", &port, 1, 65535, 1);
    rc |= get_str(c, o, "endpoint", "uuid", p->uuid, sizeof(p->uuid));
    rc |= get_str(c, o, "endpoint", "hmac_key_file", file, sizeof(file));
    rc |= get_str(c, o, "endpoint", "ca_file", ca, sizeof(ca));
    rc |= get_bool(c, o, "endpoint", "insecure", &p->insecure);
    rc |= get_str(c, o, "endpoint", "format", fmt, sizeof(fmt));
    rc |= get_num(c, o, "endpoint", "max_frame", &mf, 1024, 64 << 20, 1);
    rc |= get_str(c, o, "endpoint", "partner_pubkey", p->partner_pubkey,
                  sizeof(p->partner_pubkey));
    p->port = (int)port;
    p->max_frame = (uint32_t)mf;
    resolve_path(c, file, p->hmac_key_file, sizeof(p->hmac_key_file));
    resolve_path(c, ca, p->ca_file, sizeof(p->ca_file));
    uint8_t u[16];
    if (p->uuid[0] && pdns_uuid_parse(p->uuid, u) < 0) {
        ERR(c, "endpoint.uuid", "not a uuid (32 hex digits)");
        rc = -1;
    }
    char pin[128] = "";
    rc |= get_str(c, o, "endpoint", "pin_sha256", pin, sizeof(pin));
    p->have_pin = 0;
    if (pin[0]) {
        size_t n = 0;
        const char *b64 = strncmp(pin, "sha256//", 8) == 0 ? pin + 8 : pin;
        if (sodium_base642bin(p->pin_sha256, sizeof(p->pin_sha256), b64, strlen(b64),
                              NULL, &n, NULL, sodium_base64_VARIANT_ORIGINAL) == 0 &&
            n == 32)
            p->have_pin = 1;
        else if (strlen(pin) == 64 &&
                 sodium_hex2bin(p->pin_sha256, 32, pin, 64, NULL, &n, NULL) == 0 && n == 32)
            p->have_pin = 1;
        else {
            ERR(c, "endpoint.pin_sha256", "want the base64 (as curl's "
                "--pinnedpubkey sha256//...) or hex SHA-256 of the partner's "
                "public key (SPKI)");
            rc = -1;
        }
    }
    json_t *rr = json_object_get(o, "rrtypes");
    memset(p->csv_rr, 0, sizeof(p->csv_rr));
    if (rr && !json_is_array(rr)) {
        ERR(c, "endpoint.rrtypes", "must be a list of rrtype names");
        rc = -1;
    } else if (rr) {
        size_t i;
        json_t *v;
        json_array_foreach(rr, i, v) {
            uint16_t t;
            const char *name = json_is_string(v) ? json_string_value(v) : "";
            if (pdns_rrtype_parse(name, strlen(name), &t) < 0) {
                ERR(c, "endpoint.rrtypes", "item %zu: not an rrtype name", i);
                rc = -1;
                continue;
            }
            BIT_SET(p->csv_rr, t);
        }
    } else {
        for (size_t i = 0; analyzer_rr[i]; i++) {
            uint16_t t;
            if (pdns_rrtype_parse(analyzer_rr[i], strlen(analyzer_rr[i]), &t) == 0)
                BIT_SET(p->csv_rr, t);
        }
    }
    if (strcmp(fmt, "pdns-cof") == 0)
        p->format = POLICY_FMT_COF;
    else if (strcmp(fmt, "passivedns-csv") == 0)
        p->format = POLICY_FMT_CSV;
    else {
        ERR(c, "endpoint.format", "want \"pdns-cof\" or \"passivedns-csv\"");
        rc = -1;
    }
    if (p->host[0] && !p->hmac_key_file[0]) {
        ERR(c, "endpoint", "a delivery endpoint needs \"hmac_key_file\"");
        rc = -1;
    }
    if (p->hmac_key_file[0]) {
        struct stat st;
        int missing = stat(p->hmac_key_file, &st) < 0;
        if (missing && errno == ENOENT && c->d->keys_may_be_missing) {
            WARN(c, "endpoint.hmac_key_file", "key file %s does not exist yet (the D4 "
                 "HMAC key the partner issued, mode 0600, before the relay loads this "
                 "policy)", p->hmac_key_file);
        } else if (missing) {
            ERR(c, "endpoint.hmac_key_file", "key file %s: %s", p->hmac_key_file,
                strerror(errno));
            rc = -1;
        } else if (st.st_mode & 077) {
            ERR(c, "endpoint.hmac_key_file", "key file %s is accessible by group "
                "or others (mode %04o): chmod 600 it", p->hmac_key_file,
                (unsigned)(st.st_mode & 07777));
            rc = -1;
        }
    }
    if (p->host[0] && !p->ca_file[0] && !p->insecure) {
        ERR(c, "endpoint", "give \"ca_file\" to verify the partner, or "
            "\"insecure\": true (tests only)");
        rc = -1;
    }
    if (p->insecure)
        WARN(c, "endpoint.insecure", "the partner's certificate is not verified");
    return rc;
}

static void version_of(json_t *root, char out[33]) {
    char *canon = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
    uint8_t h[16];
    crypto_generichash(h, sizeof(h), (const uint8_t *)(canon ? canon : ""),
                       canon ? strlen(canon) : 0, NULL, 0);
    free(canon);
    sodium_bin2hex(out, 33, h, sizeof(h));
}

policy *policy_load(const char *path, const policy_env *env, policy_diag *d) {
    static const char *const keys[] = {
        "partner", "description", "enabled", "valid_until", "tlp",
        "endpoint", "rrtypes", "names", "sensors", "organisations", "groups",
        "sources", "reshare", "min_sensors", "min_count", "min_orgs", "own_organisations",
        "delay_min", "delay_jitter", "time_resolution", "sensor_id",
        "pseudonym_key_file", "drop_fields", "count_buckets", "counts",
        "max_totals", "rate_limit", "outbox",
        NULL};
    pctx c = {.d = d};
    json_error_t je;
    json_t *root = NULL;
    policy *p = calloc(1, sizeof(*p));
    char *text = NULL;
    int rc = 0;

    snprintf(d->file, sizeof(d->file), "%s", path);
    if (!p)
        return NULL;
    snprintf(p->path, sizeof(p->path), "%s", path);
    snprintf(c.dir, sizeof(c.dir), "%s", path);
    char *slash = strrchr(c.dir, '/');
    if (slash)
        *slash = '\0';
    else
        snprintf(c.dir, sizeof(c.dir), ".");

    FILE *f = fopen(path, "rb");
    if (!f) {
        ERR(&c, "", "cannot read: %s", strerror(errno));
        goto fail;
    }
    text = malloc(1 << 20);
    c.len = text ? fread(text, 1, (1 << 20) - 1, f) : 0;
    fclose(f);
    if (!text)
        goto fail;
    root = json_loadb(text, c.len, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        policy_msg *m;
        say(&c, 0, "", "%s", je.text);
        m = &d->m[d->n - 1];
        m->line = je.line;
        m->col = je.column;
        goto fail;
    }
    c.text = text;
    if (!json_is_object(root)) {
        ERR(&c, "", "a policy is a JSON object");
        goto fail;
    }
    rc |= known_keys(&c, root, "", keys);

    /* identity */
    p->enabled = 1;
    rc |= get_str(&c, root, "", "partner", p->partner, sizeof(p->partner));
    if (!p->partner[0] && !json_object_get(root, "partner")) {
        ERR(&c, "", "missing \"partner\" (the partner's name)");
        rc = -1;
    } else if (p->partner[0] && strspn(p->partner, "abcdefghijklmnopqrstuvwxyz"
                                                   "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") !=
                                      strlen(p->partner)) {
        ERR(&c, "partner", "use letters, digits, '-', '_' and '.' only");
        rc = -1;
    }
    rc |= get_str(&c, root, "", "description", p->description, sizeof(p->description));
    rc |= get_bool(&c, root, "", "enabled", &p->enabled);
    rc |= get_str(&c, root, "", "tlp", p->tlp, sizeof(p->tlp));
    for (const char *q = p->tlp; *q; q++)
        if ((unsigned char)*q < 0x20 || *q == '"' || *q == '\\') {
            ERR(&c, "tlp", "no control characters, quotes or backslashes");
            rc = -1;
            break;
        }
    json_t *vu = json_object_get(root, "valid_until");
    if (vu) {
        if (json_is_integer(vu) && json_integer_value(vu) > 0)
            p->valid_until = json_integer_value(vu);
        else if (!json_is_string(vu) || parse_time(json_string_value(vu), &p->valid_until) < 0) {
            ERR(&c, "valid_until", "want a date \"YYYY-MM-DD\", "
                "\"YYYY-MM-DDTHH:MM:SSZ\" or Unix seconds");
            rc = -1;
        }
        if (p->valid_until && p->valid_until <= time(NULL))
            WARN(&c, "valid_until", "has passed: nothing is sent to this partner");
    }
    rc |= load_endpoint(&c, root, p);

    /* what may go */
    rc |= load_rrtypes(&c, root, p);
    rc |= load_names(&c, root, p);
    rc |= get_allow_deny(&c, root, "sensors", &p->sensors_allow, &p->sensors_deny);
    rc |= get_allow_deny(&c, root, "organisations", &p->orgs_allow, &p->orgs_deny);
    rc |= get_allow_deny(&c, root, "groups", &p->groups_allow, &p->groups_deny);
    p->sources_allow = 1u << PDNS_SRC_D4 | 1u << PDNS_SRC_QUEUE;
    if (json_object_get(root, "sources")) {
        p->sources_allow = 0;
        rc |= load_sources(&c, root, p);
    }
    rc |= get_bool(&c, root, "", "reshare", &p->reshare);
    json_t *own = json_object_get(root, "own_organisations");
    if (own && !json_is_array(own)) {
        ERR(&c, "own_organisations", "must be a list of organisation names");
        rc = -1;
    } else if (own) {
        rc |= read_list(&c, "own_organisations", own, &p->own_orgs);
    }
    if (p->reshare)
        p->sources_allow |= 1u << PDNS_SRC_PARTNER;

    /* thresholds, timing */
    double k = 2, mc = 1, mo = 1, dmin = 0, djit = 0, res = 1;
    rc |= get_num(&c, root, "", "min_sensors", &k, 1, 65535, 1);
    rc |= get_num(&c, root, "", "min_count", &mc, 1, 1e12, 1);
    rc |= get_num(&c, root, "", "min_orgs", &mo, 1, 65535, 1);
    rc |= get_num(&c, root, "", "delay_min", &dmin, 0, 30 * 86400, 1);
    rc |= get_num(&c, root, "", "delay_jitter", &djit, 0, 30 * 86400, 1);
    rc |= get_num(&c, root, "", "time_resolution", &res, 1, 366 * 86400, 1);
    p->min_sensors = (uint32_t)k;
    p->min_count = (uint64_t)mc;
    p->min_orgs = (uint32_t)mo;
    p->delay_min_ms = (int64_t)dmin * 1000;
    p->delay_jitter_ms = (int64_t)djit * 1000;
    p->time_resolution = (int64_t)res;

    /* identifiers and fields */
    char mode[32] = "strip", kf[512] = "";
    rc |= get_str(&c, root, "", "sensor_id", mode, sizeof(mode));
    if (strcmp(mode, "strip") == 0)
        p->id_mode = POLICY_ID_STRIP;
    else if (strcmp(mode, "relay") == 0)
        p->id_mode = POLICY_ID_RELAY;
    else if (strcmp(mode, "pseudonym") == 0)
        p->id_mode = POLICY_ID_PSEUDONYM;
    else if (strcmp(mode, "keep") == 0)
        p->id_mode = POLICY_ID_KEEP;
    else {
        ERR(&c, "sensor_id", "want \"strip\", \"relay\", \"pseudonym\" or \"keep\"");
        rc = -1;
    }
    rc |= get_str(&c, root, "", "pseudonym_key_file", kf, sizeof(kf));
    resolve_path(&c, kf, p->pseudonym_key_file, sizeof(p->pseudonym_key_file));
    if (p->id_mode == POLICY_ID_PSEUDONYM && !kf[0]) {
        ERR(&c, "sensor_id", "\"pseudonym\" needs \"pseudonym_key_file\"");
        rc = -1;
    } else if (kf[0] && read_secret(&c, "pseudonym_key_file", p->pseudonym_key_file,
                                    &p->pseudonym_key) < 0) {
        rc = -1;
    }
    json_t *df = json_object_get(root, "drop_fields");
    if (df) {
        if (!json_is_array(df)) {
            ERR(&c, "drop_fields", "must be a list of field names");
            rc = -1;
        } else {
            size_t i;
            json_t *v;
            json_array_foreach(df, i, v) {
                char pi[64];
                const char *s = json_is_string(v) ? json_string_value(v) : "";
                snprintf(pi, sizeof(pi), "drop_fields[%zu]", i);
                if (strcmp(s, "bailiwick") == 0)
                    p->drop_bailiwick = 1;
                else if (strcmp(s, "count") == 0)
                    p->drop_count = 1;
                else if (strcmp(s, "origin") == 0)
                    p->drop_origin = 1;
                else {
                    ERR(&c, pi, "want \"bailiwick\", \"count\" or \"origin\" (the "
                        "mandatory COF fields cannot be dropped; sensor_id has "
                        "its own setting)");
                    rc = -1;
                }
            }
        }
    }
    rc |= get_bool(&c, root, "", "count_buckets", &p->count_buckets);
    char counts[16] = "delta";
    double maxt = 1000000;
    rc |= get_str(&c, root, "", "counts", counts, sizeof(counts));
    if (strcmp(counts, "total") == 0) {
        p->counts_total = 1;
    } else if (strcmp(counts, "delta") != 0) {
        ERR(&c, "counts", "want \"delta\" (each record carries the sightings since "
            "the triple was last sent: for receivers that add) or \"total\" (everything "
            "this partner was sent of the triple: for receivers that overwrite)");
        rc = -1;
    }
    if (p->counts_total && p->format == POLICY_FMT_CSV) {
        ERR(&c, "counts", "\"total\" applies to pdns-cof; a passivedns-csv receiver "
            "counts lines");
        rc = -1;
    }
    rc |= get_num(&c, root, "", "max_totals", &maxt, 1000, 100000000, 1);
    p->max_totals = (uint64_t)maxt;
    json_t *rl = json_object_get(root, "rate_limit");
    if (rl) {
        static const char *const rkeys[] = {"records_per_second", "burst", NULL};
        if (!json_is_object(rl)) {
            ERR(&c, "rate_limit", "must be an object");
            rc = -1;
        } else {
            rc |= known_keys(&c, rl, "rate_limit", rkeys);
            rc |= get_num(&c, rl, "rate_limit", "records_per_second", &p->rate, 0.001, 1e9, 0);
            p->burst = p->rate;
            rc |= get_num(&c, rl, "rate_limit", "burst", &p->burst, 1, 1e12, 0);
        }
    }

    p->outbox_max = 100000;
    json_t *ob = json_object_get(root, "outbox");
    if (ob) {
        static const char *const okeys[] = {"max_batches", "when_full", NULL};
        char wf[32] = "refuse_new";
        double mx = (double)p->outbox_max;
        if (!json_is_object(ob)) {
            ERR(&c, "outbox", "must be an object");
            rc = -1;
        } else {
            rc |= known_keys(&c, ob, "outbox", okeys);
            rc |= get_num(&c, ob, "outbox", "max_batches", &mx, 1, 1e9, 1);
            rc |= get_str(&c, ob, "outbox", "when_full", wf, sizeof(wf));
            p->outbox_max = (uint64_t)mx;
            if (strcmp(wf, "drop_oldest") == 0)
                p->outbox_drop_oldest = 1;
            else if (strcmp(wf, "refuse_new") != 0) {
                ERR(&c, "outbox.when_full", "want \"refuse_new\" or \"drop_oldest\"");
                rc = -1;
            }
        }
    }

    /* risky settings */
    uint32_t mk = env && env->mixer ? env->mixer->min_sensors : 0;
    if (p->min_sensors < 2 && mk < 2 && p->id_mode == POLICY_ID_KEEP)
        WARN(&c, "sensor_id", "\"keep\" with min_sensors 1: every record names "
             "the one sensor that saw it");
    else if (p->id_mode == POLICY_ID_KEEP)
        WARN(&c, "sensor_id", "\"keep\": the partner sees which sensors saw each "
             "record");
    if (!p->sensors_allow.n && !p->orgs_allow.n && !p->groups_allow.n)
        WARN(&c, "", "no sensors, organisations or groups are allowed: nothing "
             "will be sent");
    if (!suffix_set_size(p->name_allow))
        WARN(&c, "", "no names are allowed (\"names\": {\"allow\": [\".\"]} "
             "allows all): nothing will be sent");
    int any_rr = 0;
    for (size_t i = 0; i < sizeof(p->rr_allow) && !any_rr; i++)
        any_rr = p->rr_allow[i] != 0;
    if (!any_rr)
        WARN(&c, "", "no rrtypes are allowed: nothing will be sent");

    if (rc == 0 && d->errors == 0 && env && resolve(&c, p, env) < 0)
        rc = -1;
    if (rc || d->errors)
        goto fail;
    version_of(root, p->version);
    json_decref(root);
    free(text);
    return p;
fail:
    json_decref(root);
    free(text);
    policy_free(p);
    return NULL;
}

void policy_free(policy *p) {
    if (!p)
        return;
    suffix_set_free(p->name_allow);
    suffix_set_free(p->name_deny);
    list_free(&p->sensors_allow);
    list_free(&p->sensors_deny);
    list_free(&p->orgs_allow);
    list_free(&p->own_orgs);
    list_free(&p->orgs_deny);
    list_free(&p->groups_allow);
    list_free(&p->groups_deny);
    free(p->source_ok);
    sodium_free(p->pseudonym_key);
    free(p);
}

/* ---- evaluation ------------------------------------------------------------- */

static const char *verdict_names[POLICY_VERDICT_COUNT] = {
    "pass", "disabled", "expired", "rrtype", "name", "sensor", "own",
    "reshare", "threshold"};

const char *policy_verdict_name(enum policy_verdict v) {
    return (unsigned)v < POLICY_VERDICT_COUNT ? verdict_names[v] : "unknown";
}

void policy_pseudonym(const uint8_t key[32], const uint8_t uuid[16],
                      char out[33]) {
    uint8_t h[16];
    crypto_generichash(h, sizeof(h), uuid, 16, key, 32);
    sodium_bin2hex(out, 33, h, sizeof(h));
}

#define WHY(...)                                                             \
    do {                                                                     \
        if (why)                                                             \
            snprintf(why, whylen, __VA_ARGS__);                              \
    } while (0)

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* 1 when name is one of the comma-separated relays in path. */
static int on_path(const char *path, const char *name) {
    size_t n = strlen(name);
    for (const char *p = path; p && *p;) {
        const char *e = strchr(p, ',');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == n && memcmp(p, name, n) == 0)
            return 1;
        p = e ? e + 1 : NULL;
    }
    return 0;
}

/* Appends the relays of path not yet in out (comma-separated). */
static void path_union(char *out, size_t outlen, const char *path) {
    for (const char *p = path; p && *p;) {
        const char *e = strchr(p, ',');
        size_t l = e ? (size_t)(e - p) : strlen(p), have = strlen(out);
        char one[128];
        if (l && l < sizeof(one)) {
            memcpy(one, p, l);
            one[l] = '\0';
            if (!on_path(out, one) && have + l + 2 < outlen)
                snprintf(out + have, outlen - have, "%s%s", have ? "," : "", one);
        }
        p = e ? e + 1 : NULL;
    }
}

static uint64_t pow2_floor(uint64_t c) {
    uint64_t b = 1;
    while (b <= c / 2)
        b *= 2;
    return c ? b : 0;
}

enum policy_verdict policy_decide(const policy *p, const policy_env *env,
                                  const mixer_entry *e, int64_t now_s,
                                  policy_out *out, char *why, size_t whylen) {
    const pdns_record *r = &e->rec;
    if (!p->enabled) {
        WHY("the policy is disabled");
        return POLICY_DENY_DISABLED;
    }
    if (p->valid_until && now_s >= p->valid_until) {
        WHY("the agreement ended (valid_until)");
        return POLICY_DENY_EXPIRED;
    }
    if (!BIT_GET(p->rr_allow, r->rrtype) || BIT_GET(p->rr_deny, r->rrtype)) {
        char t[16];
        pdns_rrtype_format(r->rrtype, t, sizeof(t));
        WHY("rrtype %s is %s", t, BIT_GET(p->rr_deny, r->rrtype) ? "denied" : "not allowed");
        return POLICY_DENY_RRTYPE;
    }
    int exact;
    const char *rule = suffix_set_which(p->name_deny, r->rrname.p, r->rrname.len, &exact);
    if (rule) {
        WHY("name denied by rule %s%s", exact ? "=" : "", rule);
        return POLICY_DENY_NAME;
    }
    if (!suffix_set_match(p->name_allow, r->rrname.p, r->rrname.len)) {
        WHY("no names rule allows it");
        return POLICY_DENY_NAME;
    }
    /* the sensors that count for this partner */
    uint16_t eff[256];
    size_t neff = 0, own = 0, own_org = 0, other_partner = 0, blocked = 0;
    for (size_t i = 0; i < e->n_sensors; i++) {
        uint16_t s = e->sensors[i];
        if (!env || s >= env->n || s >= p->n_source_ok) {
            blocked++;
            continue;
        }
        const policy_source *src = &env->src[s];
        /* a record never goes back to a relay it passed through */
        if (src->kind == PDNS_SRC_PARTNER &&
            ((src->partner && strcmp(src->partner, p->partner) == 0) ||
             (src->path && on_path(src->path, p->partner)))) {
            own++;
            continue;
        }
        if (src->kind == PDNS_SRC_PARTNER && !p->reshare) {
            other_partner++;
            continue;
        }
        /* a sensor of the partner's own organisation: the partner knows
         * what it saw; counting it would let the partner unlock a name
         * it injected as soon as one other sensor sees it */
        if (src->org && src->org[0] && list_has(&p->own_orgs, src->org)) {
            own++;
            own_org++;
            continue;
        }
        if (!p->source_ok[s]) {
            blocked++;
            continue;
        }
        if (neff < sizeof(eff) / sizeof(eff[0]))
            eff[neff++] = s;
    }
    if (neff == 0) {
        if (own && !other_partner && !blocked) {
            WHY("only the partner's own records");
            return POLICY_DENY_OWN;
        }
        if (other_partner && !blocked) {
            WHY("only other partners' records, and reshare is off");
            return POLICY_DENY_RESHARE;
        }
        WHY("none of the %u sensors that saw it may be shared with this partner",
            e->n_sensors);
        return POLICY_DENY_SENSOR;
    }
    uint32_t k = p->min_sensors;
    uint64_t mc = p->min_count;
    int64_t res = p->time_resolution;
    if (env && env->mixer) {
        k = env->mixer->min_sensors > k ? env->mixer->min_sensors : k;
        mc = env->mixer->min_count > mc ? env->mixer->min_count : mc;
        res = env->mixer->time_resolution > res ? env->mixer->time_resolution : res;
    }
    if (neff < k) {
        WHY("%zu allowed sensors saw it, the policy needs %u", neff, k);
        return POLICY_DENY_THRESHOLD;
    }
    /* min_count without the partner's own sightings: the pool keeps one
     * count per triple, so when a sensor of the partner's own organisation
     * saw it, what the others saw is known only to be at least one
     * sighting per other sensor */
    uint64_t seen = own_org ? (uint64_t)(e->n_sensors - own_org) : e->raw_count;
    if (seen < mc) {
        if (own_org)
            WHY("seen by %llu sensors outside the partner's own organisations (their "
                "count cannot be told apart from its own sightings), the policy needs "
                "%llu sightings", (unsigned long long)seen, (unsigned long long)mc);
        else
            WHY("seen %llu times, the policy needs %llu", (unsigned long long)seen,
                (unsigned long long)mc);
        return POLICY_DENY_THRESHOLD;
    }
    if (p->min_orgs > 1) {
        size_t orgs = 0;
        for (size_t i = 0; i < neff; i++) {
            const char *oi = env->src[eff[i]].org;
            size_t j;
            for (j = 0; j < i; j++) {
                const char *oj = env->src[eff[j]].org;
                if ((oi[0] ? strcmp(oi, oj) == 0 : eff[i] == eff[j]))
                    break;
            }
            orgs += j == i;
        }
        if (orgs < p->min_orgs) {
            WHY("%zu organisations saw it, the policy needs %u", orgs, p->min_orgs);
            return POLICY_DENY_THRESHOLD;
        }
    }
    if (!out) {
        WHY("shared");
        return POLICY_PASS;
    }
    /* what the partner receives */
    out->rec = *r;
    out->n_sensors = (uint16_t)neff;
    out->rec.has_ms = 0;
    out->rec.time_first = r->time_first / res * res;
    out->rec.time_last = (r->time_last + res - 1) / res * res;
    out->rec.count = e->raw_count;
    if (p->count_buckets || (env && env->mixer && env->mixer->count_buckets))
        out->rec.count = pow2_floor(e->raw_count);
    if (p->drop_bailiwick)
        out->rec.bailiwick.len = 0;
    /* origin: this relay, then every relay the triple's partner records
     * passed through; receivers drop what already passed them (loops).
     * Kept even when the policy drops "origin": loops would follow. */
    out->origin[0] = '\0';
    if (env && env->relay_id)
        path_union(out->origin, sizeof(out->origin), env->relay_id);
    for (size_t i = 0; i < e->n_sensors; i++) {
        uint16_t s = e->sensors[i];
        if (env && s < env->n && env->src[s].kind == PDNS_SRC_PARTNER)
            path_union(out->origin, sizeof(out->origin),
                       env->src[s].path ? env->src[s].path : env->src[s].partner);
    }
    out->rec.origin.p = out->origin;
    out->rec.origin.len = strlen(out->origin);
    out->sid[0] = '\0';
    size_t sl = 0;
    if (p->id_mode == POLICY_ID_RELAY && env && env->relay_id) {
        snprintf(out->sid, sizeof(out->sid), "%s", env->relay_id);
    } else if (p->id_mode == POLICY_ID_PSEUDONYM || p->id_mode == POLICY_ID_KEEP) {
        char ids[256][33];
        const char *ptrs[256];
        for (size_t i = 0; i < neff; i++) {
            const policy_source *src = &env->src[eff[i]];
            if (p->id_mode == POLICY_ID_KEEP) {
                ptrs[i] = src->name;
                continue;
            }
            uint8_t u[16];
            if (src->uuid)
                memcpy(u, src->uuid, 16);
            else /* a source without a uuid: its name stands in */
                crypto_generichash(u, 16, (const uint8_t *)src->name, strlen(src->name), NULL, 0);
            policy_pseudonym(p->pseudonym_key, u, ids[i]);
            ptrs[i] = ids[i];
        }
        qsort(ptrs, neff, sizeof(ptrs[0]), cmp_str);
        for (size_t i = 0; i < neff; i++) {
            int w = snprintf(out->sid + sl, sizeof(out->sid) - sl, "%s%s", i ? "," : "", ptrs[i]);
            if (w < 0 || (size_t)w >= sizeof(out->sid) - sl)
                break;
            sl += (size_t)w;
        }
    }
    out->rec.sensor_id.p = out->sid;
    out->rec.sensor_id.len = strlen(out->sid);
    int upstream = strchr(out->origin, ',') != NULL;
    out->cof_flags = (out->rec.sensor_id.len ? COF_WITH_SENSOR : 0) |
                     (out->rec.origin.len && (!p->drop_origin || upstream) ? COF_WITH_ORIGIN : 0) |
                     (p->drop_count ? COF_NO_COUNT : 0);
    WHY("shared (%zu allowed sensors, count %llu)", neff,
        (unsigned long long)e->raw_count);
    return POLICY_PASS;
}

/* ---- diff ------------------------------------------------------------------------ */

struct diff_ctx {
    const suffix_set *other;
    void (*fn)(void *, const char *);
    void *ctx;
    const char *verb;
    size_t n;
};

static void diff_rule(void *vctx, const char *rule, int exact) {
    struct diff_ctx *d = vctx;
    if (suffix_set_has(d->other, rule, strlen(rule), exact))
        return;
    char s[600];
    snprintf(s, sizeof(s), "%s %s %s", d->verb, exact ? "the name" : "names under", rule);
    d->fn(d->ctx, s);
    d->n++;
}

static size_t diff_list(const policy_list *a, const policy_list *b,
                        const char *pre, const char *post,
                        void (*fn)(void *, const char *), void *ctx) {
    size_t n = 0;
    char s[600];
    for (size_t i = 0; i < b->n; i++) {
        size_t j;
        for (j = 0; j < a->n && strcmp(a->v[j], b->v[i]); j++)
            ;
        if (j == a->n) {
            snprintf(s, sizeof(s), "%s%s%s", pre, b->v[i], post);
            fn(ctx, s);
            n++;
        }
    }
    return n;
}

size_t policy_diff(const policy *a, const policy *b,
                   void (*fn)(void *ctx, const char *sentence), void *ctx) {
    size_t n = 0;
    char s[600];
#define SAY(...)                                                             \
    do {                                                                     \
        snprintf(s, sizeof(s), __VA_ARGS__);                                 \
        fn(ctx, s);                                                          \
        n++;                                                                 \
    } while (0)
    if (a->enabled != b->enabled)
        SAY("the policy is now %s", b->enabled ? "enabled: records will flow"
                                               : "disabled: nothing will be sent");
    if (a->valid_until != b->valid_until)
        SAY("the agreement now ends at %lld (was %lld; 0 means no end)",
            (long long)b->valid_until, (long long)a->valid_until);
    if (strcmp(a->tlp, b->tlp))
        SAY("the distribution label changes from \"%s\" to \"%s\"", a->tlp, b->tlp);
    for (uint32_t t = 0; t < 65536; t++) {
        int oa = BIT_GET(a->rr_allow, t) && !BIT_GET(a->rr_deny, t);
        int ob = BIT_GET(b->rr_allow, t) && !BIT_GET(b->rr_deny, t);
        if (oa != ob && pdns_rrtype_name((uint16_t)t)) {
            char tn[16];
            pdns_rrtype_format((uint16_t)t, tn, sizeof(tn));
            SAY("will %s %s records", ob ? "now receive" : "no longer receive", tn);
        }
    }
    struct diff_ctx dc = {b->name_allow, fn, ctx, "no longer allowed:", 0};
    suffix_set_each(a->name_allow, diff_rule, &dc);
    n += dc.n;
    dc = (struct diff_ctx){a->name_allow, fn, ctx, "newly allowed:", 0};
    suffix_set_each(b->name_allow, diff_rule, &dc);
    n += dc.n;
    dc = (struct diff_ctx){b->name_deny, fn, ctx, "no longer denied:", 0};
    suffix_set_each(a->name_deny, diff_rule, &dc);
    n += dc.n;
    dc = (struct diff_ctx){a->name_deny, fn, ctx, "newly denied:", 0};
    suffix_set_each(b->name_deny, diff_rule, &dc);
    n += dc.n;
    n += diff_list(&a->sensors_allow, &b->sensors_allow, "records from sensor ", " may now be shared", fn, ctx);
    n += diff_list(&b->sensors_allow, &a->sensors_allow, "records from sensor ", " are no longer shared", fn, ctx);
    n += diff_list(&a->sensors_deny, &b->sensors_deny, "sensor ", " is now denied", fn, ctx);
    n += diff_list(&a->orgs_allow, &b->orgs_allow, "organisation ", " may now be shared", fn, ctx);
    n += diff_list(&b->orgs_allow, &a->orgs_allow, "organisation ", " is no longer shared", fn, ctx);
    n += diff_list(&a->own_orgs, &b->own_orgs, "organisation ",
                   " is the partner's own: its sightings no longer count", fn, ctx);
    n += diff_list(&b->own_orgs, &a->own_orgs, "organisation ",
                   " counts toward the partner's thresholds again", fn, ctx);
    n += diff_list(&a->orgs_deny, &b->orgs_deny, "organisation ", " is now denied", fn, ctx);
    n += diff_list(&a->groups_allow, &b->groups_allow, "sensor group ", " may now be shared", fn, ctx);
    n += diff_list(&b->groups_allow, &a->groups_allow, "sensor group ", " is no longer shared", fn, ctx);
    if (a->sources_allow != b->sources_allow)
        for (int k = 0; k < PDNS_SRC_COUNT; k++)
            if (((a->sources_allow ^ b->sources_allow) >> k) & 1)
                SAY("records from %s sources are %s", pdns_source_name((enum pdns_source)k),
                    (b->sources_allow >> k) & 1 ? "now shared" : "no longer shared");
    if (a->reshare != b->reshare)
        SAY("records from other partners are %s", b->reshare ? "now reshared" : "no longer reshared");
    if (a->min_sensors != b->min_sensors)
        SAY("min_sensors %s from %u to %u", b->min_sensors > a->min_sensors ? "raised" : "lowered",
            a->min_sensors, b->min_sensors);
    if (a->min_count != b->min_count)
        SAY("min_count changes from %llu to %llu", (unsigned long long)a->min_count,
            (unsigned long long)b->min_count);
    if (a->min_orgs != b->min_orgs)
        SAY("min_orgs changes from %u to %u", a->min_orgs, b->min_orgs);
    if (a->delay_min_ms != b->delay_min_ms || a->delay_jitter_ms != b->delay_jitter_ms)
        SAY("the extra delay changes from %lld s + exp(%lld s) to %lld s + exp(%lld s)",
            (long long)a->delay_min_ms / 1000, (long long)a->delay_jitter_ms / 1000,
            (long long)b->delay_min_ms / 1000, (long long)b->delay_jitter_ms / 1000);
    if (a->time_resolution != b->time_resolution)
        SAY("times are rounded to %lld s (was %lld s)", (long long)b->time_resolution,
            (long long)a->time_resolution);
    static const char *modes[] = {"strip", "relay", "pseudonym", "keep"};
    if (a->id_mode != b->id_mode)
        SAY("sensor_id changes from %s to %s", modes[a->id_mode], modes[b->id_mode]);
    if (a->drop_bailiwick != b->drop_bailiwick)
        SAY("bailiwick is %s", b->drop_bailiwick ? "now dropped" : "now kept");
    if (a->drop_count != b->drop_count)
        SAY("count is %s", b->drop_count ? "now dropped" : "now kept");
    if (a->drop_origin != b->drop_origin)
        SAY("origin is %s", b->drop_origin ? "now dropped" : "now kept");
    if (a->counts_total != b->counts_total)
        SAY("each record now carries %s", b->counts_total
            ? "the totals of everything sent of its triple (count, first and last time)"
            : "only the sightings since its triple was last sent");
    if (a->count_buckets != b->count_buckets)
        SAY("counts are %s", b->count_buckets ? "now rounded to powers of two" : "now exact");
    if (a->rate != b->rate || a->burst != b->burst)
        SAY("the rate limit changes from %g/s (burst %g) to %g/s (burst %g); 0 means none",
            a->rate, a->burst, b->rate, b->burst);
    if (strcmp(a->host, b->host) || a->port != b->port || a->format != b->format)
        SAY("delivery goes to %s:%d as %s (was %s:%d as %s)", b->host, b->port,
            b->format ? "passivedns-csv" : "pdns-cof", a->host, a->port,
            a->format ? "passivedns-csv" : "pdns-cof");
#undef SAY
    return n;
}

int policy_same_pseudonym_key(const policy *a, const policy *b) {
    return a->pseudonym_key && b->pseudonym_key &&
           sodium_memcmp(a->pseudonym_key, b->pseudonym_key, 32) == 0;
}

/* ---- a policy in words ------------------------------------------------------------ */

static const char *const words_names[POLICY_W_COUNT] = {
    "gets", "never", "thresholds", "timing", "identifiers", "delivery"};

const char *policy_words_name(enum policy_words w) {
    return (unsigned)w < POLICY_W_COUNT ? words_names[w] : "?";
}

/* A list said in one sentence: "A, B and C", at most what fits, then
 * "and N more". */
struct wlist {
    char s[560];
    size_t len, n, shown;
};

static void wlist_add(struct wlist *l, const char *item) {
    l->n++;
    size_t need = strlen(item) + 2;
    if (l->len + need + 24 >= sizeof(l->s))
        return;
    l->len += (size_t)snprintf(l->s + l->len, sizeof(l->s) - l->len, "%s%s",
                               l->shown ? ", " : "", item);
    l->shown++;
}

static const char *wlist_text(struct wlist *l) {
    if (l->n > l->shown)
        snprintf(l->s + l->len, sizeof(l->s) - l->len, " and %zu more", l->n - l->shown);
    return l->s;
}

/* Suffix rules in name order (a set's own order is its hash's). */
struct rules {
    char **v;
    size_t n, cap;
};

static void rules_add(void *vr, const char *rule, int exact) {
    struct rules *r = vr;
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 16;
        char **v = realloc(r->v, cap * sizeof(*v));
        if (!v)
            return;
        r->v = v;
        r->cap = cap;
    }
    char item[300];
    if (strcmp(rule, ".") == 0)
        snprintf(item, sizeof(item), exact ? "the root name" : "every name");
    else
        snprintf(item, sizeof(item), "%s%s", rule, exact ? " (exactly)" : "");
    if ((r->v[r->n] = strdup(item)))
        r->n++;
}

static void wlist_rules(struct wlist *l, const suffix_set *set) {
    struct rules r = {0};
    suffix_set_each(set, rules_add, &r);
    if (r.n > 1)
        qsort(r.v, r.n, sizeof(*r.v), cmp_str);
    for (size_t i = 0; i < r.n; i++) {
        wlist_add(l, r.v[i]);
        free(r.v[i]);
    }
    free(r.v);
}

static void wlist_strings(struct wlist *l, const policy_list *v) {
    for (size_t i = 0; i < v->n; i++)
        wlist_add(l, strcmp(v->v[i], "*") ? v->v[i] : "every one");
}

/* The rrtypes a bitmap holds; 1 when it holds every type. */
static int wlist_rrtypes(struct wlist *l, const uint8_t *bits, const uint8_t *minus) {
    int all = 1;
    for (size_t i = 0; i < 8192 && all; i++)
        all = bits[i] == 0xff;
    if (all)
        return 1;
    for (uint32_t t = 0; t < 65536; t++)
        if (BIT_GET(bits, t) && !(minus && BIT_GET(minus, t))) {
            char tn[16];
            pdns_rrtype_format((uint16_t)t, tn, sizeof(tn));
            wlist_add(l, tn);
        }
    return 0;
}

/* One sentence "<pre><the list><post>" when the list is not empty. */
static size_t say_list(void (*fn)(void *ctx, enum policy_words w, const char *sentence),
                       void *ctx, enum policy_words w, const char *pre,
                       const policy_list *v, const char *post) {
    struct wlist l;
    char s[800];
    memset(&l, 0, sizeof(l));
    wlist_strings(&l, v);
    if (!l.n)
        return 0;
    snprintf(s, sizeof(s), "%s%s%s", pre, wlist_text(&l), post);
    fn(ctx, w, s);
    return 1;
}

static void say_secs(char *out, size_t len, int64_t ms) {
    int64_t s = ms / 1000;
    if (s >= 3600 && s % 3600 == 0 && ms % 1000 == 0)
        snprintf(out, len, "%lld h", (long long)(s / 3600));
    else if (s >= 60 && s % 60 == 0 && ms % 1000 == 0)
        snprintf(out, len, "%lld min", (long long)(s / 60));
    else if (ms % 1000)
        snprintf(out, len, "%.1f s", (double)ms / 1000);
    else
        snprintf(out, len, "%lld s", (long long)s);
}

size_t policy_describe(const policy *p, const mixer_conf *m,
                       void (*fn)(void *ctx, enum policy_words w, const char *sentence),
                       void *ctx) {
    size_t n = 0;
    char s[800];
#define SAY(w, ...)                                                          \
    do {                                                                     \
        snprintf(s, sizeof(s), __VA_ARGS__);                                 \
        fn(ctx, w, s);                                                       \
        n++;                                                                 \
    } while (0)
    struct wlist l;

    /* what goes */
    if (!p->enabled)
        SAY(POLICY_W_GETS, "Nothing: the policy is disabled.");
    if (p->valid_until) {
        time_t t = (time_t)p->valid_until;
        struct tm tm;
        char when[40];
        gmtime_r(&t, &tm);
        strftime(when, sizeof(when), "%Y-%m-%d %H:%M UTC", &tm);
        SAY(POLICY_W_GETS, "Until %s; from then on nothing.", when);
    }
    if (p->description[0])
        SAY(POLICY_W_GETS, "Agreement: %s.", p->description);
    if (p->tlp[0])
        SAY(POLICY_W_GETS, "Every batch is labelled %s.", p->tlp);
    memset(&l, 0, sizeof(l));
    if (wlist_rrtypes(&l, p->rr_allow, p->rr_deny))
        SAY(POLICY_W_GETS, "Records of every type%s.",
            wlist_rrtypes(&l, p->rr_deny, NULL) || !l.n ? "" : " but those below");
    else if (l.n)
        SAY(POLICY_W_GETS, "Records of type %s.", wlist_text(&l));
    else
        SAY(POLICY_W_GETS, "No record type is allowed: nothing is sent.");
    memset(&l, 0, sizeof(l));
    wlist_rules(&l, p->name_allow);
    if (l.n)
        SAY(POLICY_W_GETS, "Names: %s.", wlist_text(&l));
    else
        SAY(POLICY_W_GETS, "No name is allowed: nothing is sent.");
    n += say_list(fn, ctx, POLICY_W_GETS, "Sightings by the sensors: ", &p->sensors_allow, ".");
    n += say_list(fn, ctx, POLICY_W_GETS, "Sightings by the organisations: ", &p->orgs_allow,
                  ".");
    n += say_list(fn, ctx, POLICY_W_GETS, "Sightings by the sensor groups: ", &p->groups_allow,
                  ".");
    if (!p->sensors_allow.n && !p->orgs_allow.n && !p->groups_allow.n)
        SAY(POLICY_W_GETS, "No sensor, organisation or group is allowed: nothing is sent.");
    memset(&l, 0, sizeof(l));
    for (int k = 0; k < PDNS_SRC_COUNT; k++)
        if ((p->sources_allow >> k) & 1)
            wlist_add(&l, pdns_source_name((enum pdns_source)k));
    SAY(POLICY_W_GETS, "From sources of kind %s.", l.n ? wlist_text(&l) : "none");

    /* what never goes */
    memset(&l, 0, sizeof(l));
    if (wlist_rrtypes(&l, p->rr_deny, NULL))
        SAY(POLICY_W_NEVER, "Records of any type: every type is denied.");
    else if (l.n)
        SAY(POLICY_W_NEVER, "Records of type %s.", wlist_text(&l));
    memset(&l, 0, sizeof(l));
    wlist_rules(&l, p->name_deny);
    if (l.n)
        SAY(POLICY_W_NEVER, "Names: %s.", wlist_text(&l));
    n += say_list(fn, ctx, POLICY_W_NEVER, "What only the sensors ", &p->sensors_deny,
                  " saw; their sightings count for nothing.");
    n += say_list(fn, ctx, POLICY_W_NEVER, "What only the organisations ", &p->orgs_deny,
                  " saw.");
    n += say_list(fn, ctx, POLICY_W_NEVER, "What only the sensor groups ", &p->groups_deny,
                  " saw.");
    n += say_list(fn, ctx, POLICY_W_NEVER, "Its own organisations' sightings (", &p->own_orgs,
                  ") back to it: they count toward no threshold.");
    if (!p->reshare)
        SAY(POLICY_W_NEVER, "What only other partners sent to this relay (reshare is off).");
    SAY(POLICY_W_NEVER, "Any record the rules above do not allow: what is not allowed is "
        "denied.");

    /* thresholds: as they act, the stricter of the policy and the relay */
    uint32_t k = p->min_sensors, mk = m ? m->min_sensors : 0;
    uint64_t mc = p->min_count, mmc = m ? m->min_count : 0;
    uint32_t mo = p->min_orgs, mmo = m ? m->min_orgs : 0;
    SAY(POLICY_W_THRESHOLDS, "A triple goes only once at least %u allowed sensor%s saw it%s.",
        mk > k ? mk : k, (mk > k ? mk : k) == 1 ? "" : "s",
        mk > k ? " (the relay's setting; the policy asks for fewer)" : "");
    if ((mmc > mc ? mmc : mc) > 1)
        SAY(POLICY_W_THRESHOLDS, "It needs at least %llu sightings%s.",
            (unsigned long long)(mmc > mc ? mmc : mc),
            mmc > mc ? " (the relay's setting)" : "");
    if ((mmo > mo ? mmo : mo) > 1)
        SAY(POLICY_W_THRESHOLDS, "The sensors must belong to at least %u organisations%s.",
            mmo > mo ? mmo : mo, mmo > mo ? " (the relay's setting)" : "");

    /* timing */
    char a[40], b[40];
    if (m) {
        char c[40];
        say_secs(a, sizeof(a), m->hold_min_ms);
        say_secs(b, sizeof(b), m->hold_jitter_ms);
        say_secs(c, sizeof(c), m->interval_ms);
        SAY(POLICY_W_TIMING, "Every triple waits in the relay's pool at least %s%s%s, and "
            "goes out in a batch every %s, mixed with others.", a,
            m->hold_jitter_ms ? " plus a random delay of mean " : "",
            m->hold_jitter_ms ? b : "", c);
    }
    if (p->delay_min_ms || p->delay_jitter_ms) {
        say_secs(a, sizeof(a), p->delay_min_ms);
        say_secs(b, sizeof(b), p->delay_jitter_ms);
        if (!p->delay_jitter_ms)
            SAY(POLICY_W_TIMING, "Then a further %s for this partner.", a);
        else if (!p->delay_min_ms)
            SAY(POLICY_W_TIMING, "Then a random delay of mean %s for this partner.", b);
        else
            SAY(POLICY_W_TIMING, "Then a further %s plus a random delay of mean %s for this "
                "partner.", a, b);
    }
    int64_t res = p->time_resolution, mres = m ? m->time_resolution : 0;
    if ((mres > res ? mres : res) > 1) {
        say_secs(a, sizeof(a), (mres > res ? mres : res) * 1000);
        SAY(POLICY_W_TIMING, "First and last seen times are rounded outward to %s%s.", a,
            mres > res ? " (the relay's setting)" : "");
    } else {
        SAY(POLICY_W_TIMING, "First and last seen times are exact to the second.");
    }
    if (p->rate > 0)
        SAY(POLICY_W_TIMING, "At most %g records/s (bursts of %g).", p->rate, p->burst);

    /* identifiers and fields */
    static const char *const ids[] = {
        "No sensor identifier: sensor_id is removed.",
        "The relay's own identifier in place of the sensors'.",
        "A pseudonym per sensor, keyed for this partner alone: stable for it, "
        "unlinkable to what other partners see.",
        "The names of the sensors that saw each record."};
    SAY(POLICY_W_IDENTIFIERS, "%s", ids[p->id_mode]);
    memset(&l, 0, sizeof(l));
    if (p->drop_bailiwick)
        wlist_add(&l, "bailiwick");
    if (p->drop_count)
        wlist_add(&l, "count");
    if (p->drop_origin)
        wlist_add(&l, "origin");
    if (l.n)
        SAY(POLICY_W_IDENTIFIERS, "Fields removed: %s.", wlist_text(&l));
    else
        SAY(POLICY_W_IDENTIFIERS, "The relays a record passed through (origin) are named.");
    if (!p->drop_count)
        SAY(POLICY_W_IDENTIFIERS, "Counts are %s%s.",
            p->counts_total ? "the totals of everything sent of the triple"
                            : "the sightings since the triple was last sent",
            p->count_buckets || (m && m->count_buckets) ? ", rounded down to a power of two"
                                                        : ", exact");

    /* delivery */
    if (p->host[0])
        SAY(POLICY_W_DELIVERY, "Signed batches go to %s:%d over D4/TLS as %s.", p->host,
            p->port, p->format ? "passivedns CSV" : "COF");
    else
        SAY(POLICY_W_DELIVERY, "Signed batches are written to the partner's file in the "
            "outbox directory; no connection is made.");
    if (p->outbox_max)
        SAY(POLICY_W_DELIVERY, "At most %llu batches wait; when full, %s.",
            (unsigned long long)p->outbox_max,
            p->outbox_drop_oldest ? "the oldest is dropped" : "new batches are refused");
#undef SAY
    return n;
}
