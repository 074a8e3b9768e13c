/* config.c - JSON configuration loader with positioned errors. */
#include "config.h"
#include "rconn.h"
#include "rlink.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "batch.h"
#include "jsonpos.h"
#include "rrtype.h"

typedef struct cfgctx {
    const char *file;
    char dir[CFG_PATH_MAX];
    const char *text;
    size_t len;
    char *err;
    size_t errlen;
    /* config_load_keys_optional: a key file that does not exist yet is
     * told here as a warning, not an error */
    void (*warn)(const char *msg);
} cfgctx;

/* Records "FILE:LINE:COL: key 'PATH': message" and returns -1. */
__attribute__((format(printf, 3, 4))) static int fail(cfgctx *c,
                                                      const char *path,
                                                      const char *fmt, ...) {
    char msg[512];
    int line, col;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    jsonpos_find(c->text, c->len, path, &line, &col);
    if (*path)
        snprintf(c->err, c->errlen, "%s:%d:%d: key '%s': %s", c->file, line,
                 col, path, msg);
    else
        snprintf(c->err, c->errlen, "%s:%d:%d: %s", c->file, line, col, msg);
    return -1;
}

/* A sensor or partner key file: read, or (keys optional, the file not
 * there yet) a warning. Returns 0, or -1 as fail. */
static int key_file(cfgctx *c, const char *path, const char *file, uint8_t **key,
                    size_t *keylen) {
    char msg[512];
    struct stat st;
    if (c->warn && stat(file, &st) < 0 && errno == ENOENT) {
        char w[1024];
        int line, col;
        jsonpos_find(c->text, c->len, path, &line, &col);
        snprintf(w, sizeof(w), "%s:%d:%d: warning: key '%s': key file %s does not exist "
                 "yet (create it, mode 0600, before the relay runs)", c->file, line, col,
                 path, file);
        c->warn(w);
        return 0;
    }
    if (config_read_key_file(file, key, keylen, msg, sizeof(msg)) < 0)
        return fail(c, path, "%s", msg);
    return 0;
}

static void join(char *out, size_t n, const char *path, const char *key) {
    snprintf(out, n, "%s%s%s", path, *path ? "." : "", key);
}

static int check_keys(cfgctx *c, json_t *o, const char *path,
                      const char *const *allowed) {
    const char *k;
    json_t *v;
    char p[256];
    if (!json_is_object(o))
        return fail(c, path, "must be an object");
    json_object_foreach(o, k, v) {
        int ok = 0;
        for (const char *const *a = allowed; *a; a++)
            if (strcmp(*a, k) == 0)
                ok = 1;
        if (!ok) {
            join(p, sizeof(p), path, k);
            return fail(c, p, "unknown key");
        }
    }
    return 0;
}

static int get_str(cfgctx *c, json_t *o, const char *path, const char *key,
                   char *out, size_t outlen) {
    char p[256];
    json_t *v = json_object_get(o, key);
    if (!v)
        return 0;
    join(p, sizeof(p), path, key);
    if (!json_is_string(v))
        return fail(c, p, "must be a string");
    if (json_string_length(v) >= outlen)
        return fail(c, p, "longer than %zu bytes", outlen - 1);
    memcpy(out, json_string_value(v), json_string_length(v) + 1);
    return 0;
}

static int get_int(cfgctx *c, json_t *o, const char *path, const char *key,
                   long long *out, long long min, long long max) {
    char p[256];
    json_t *v = json_object_get(o, key);
    if (!v)
        return 0;
    join(p, sizeof(p), path, key);
    if (!json_is_integer(v))
        return fail(c, p, "must be an integer");
    if (json_integer_value(v) < min || json_integer_value(v) > max)
        return fail(c, p, "must be between %lld and %lld", min, max);
    *out = json_integer_value(v);
    return 0;
}

static int get_real(cfgctx *c, json_t *o, const char *path, const char *key,
                    double *out, double min, double max) {
    char p[256];
    json_t *v = json_object_get(o, key);
    if (!v)
        return 0;
    join(p, sizeof(p), path, key);
    if (!json_is_number(v))
        return fail(c, p, "must be a number");
    if (json_number_value(v) < min || json_number_value(v) > max)
        return fail(c, p, "must be between %g and %g", min, max);
    *out = json_number_value(v);
    return 0;
}

static int get_bool(cfgctx *c, json_t *o, const char *path, const char *key,
                    int *out) {
    char p[256];
    json_t *v = json_object_get(o, key);
    if (!v)
        return 0;
    join(p, sizeof(p), path, key);
    if (!json_is_boolean(v))
        return fail(c, p, "must be true or false");
    *out = json_is_true(v);
    return 0;
}

/* A path from the file, made absolute against the config's directory. */
static int get_path(cfgctx *c, json_t *o, const char *path, const char *key,
                    char *out, size_t outlen) {
    char tmp[CFG_PATH_MAX] = "";
    if (get_str(c, o, path, key, tmp, sizeof(tmp)) < 0)
        return -1;
    if (!tmp[0])
        return 0;
    if (tmp[0] == '/')
        snprintf(out, outlen, "%s", tmp);
    else if ((size_t)snprintf(out, outlen, "%s/%s", c->dir, tmp) >= outlen) {
        char p[256];
        join(p, sizeof(p), path, key);
        return fail(c, p, "path too long");
    }
    return 0;
}

int config_parse_addr(const char *s, cfg_addr *a) {
    const char *colon;
    char *end;
    size_t hl;
    if (s[0] == '[') {
        const char *rb = strchr(s, ']');
        if (!rb || rb[1] != ':')
            return -1;
        hl = (size_t)(rb - s - 1);
        memcpy(a->host, s + 1, hl < CFG_HOST_MAX ? hl : 0);
        colon = rb + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon)
            return -1;
        hl = (size_t)(colon - s);
        memcpy(a->host, s, hl < CFG_HOST_MAX ? hl : 0);
    }
    if (hl == 0 || hl >= CFG_HOST_MAX)
        return -1;
    a->host[hl] = '\0';
    long port = strtol(colon + 1, &end, 10);
    if (*end || end == colon + 1 || port < 0 || port > 65535)
        return -1;
    a->port = (int)port;
    return 0;
}

int config_parse_redis_url(const char *s, cfg_addr *a, int *db) {
    char hp[CFG_HOST_MAX + 8];
    if (strncmp(s, "redis://", 8) != 0)
        return -1;
    char user[128], pass[512];
    if (rconn_url_auth(s, user, sizeof(user), pass, sizeof(pass)) < 0)
        return -1;
    s = rconn_url_host(s);
    size_t hl = strcspn(s, "/");
    if (hl == 0 || hl >= sizeof(hp) - 8)
        return -1;
    memcpy(hp, s, hl);
    hp[hl] = '\0';
    if (!strchr(hp, ':') || (hp[0] == '[' && !strstr(hp, "]:")))
        strcat(hp, ":6379");
    if (config_parse_addr(hp, a) < 0)
        return -1;
    *db = 0;
    if (s[hl] == '/' && s[hl + 1]) {
        char *end;
        long d = strtol(s + hl + 1, &end, 10);
        if (*end || d < 0 || d > 255)
            return -1;
        *db = (int)d;
    }
    return 0;
}

int config_read_key_file(const char *path, uint8_t **key, size_t *keylen,
                         char *err, size_t errlen) {
    struct stat st;
    uint8_t *k = NULL;
    ssize_t n = -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "key file %s: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "key file %s: not a regular file", path);
        goto out;
    }
    if (st.st_mode & 077) {
        snprintf(err, errlen, "key file %s is accessible by group or others "
                 "(mode %04o): chmod 600 it", path,
                 (unsigned)(st.st_mode & 07777));
        goto out;
    }
    if (st.st_size < 1 || st.st_size > 4096) {
        snprintf(err, errlen, "key file %s: must hold 1 to 4096 bytes", path);
        goto out;
    }
    k = sodium_malloc((size_t)st.st_size);
    if (!k || (n = read(fd, k, (size_t)st.st_size)) != st.st_size) {
        snprintf(err, errlen, "key file %s: cannot read", path);
        n = -1;
        goto out;
    }
    while (n > 0 && (k[n - 1] == '\n' || k[n - 1] == '\r'))
        n--;
    if (n == 0) {
        snprintf(err, errlen, "key file %s: empty key", path);
        n = -1;
    }
out:
    close(fd);
    if (n <= 0) {
        sodium_free(k);
        return -1;
    }
    *key = k;
    *keylen = (size_t)n;
    return 0;
}

static int load_layout(cfgctx *c, json_t *o, const char *path,
                       csv_layout *l, int keep_addresses) {
    char letters[32] = CSV_DEFAULT_LAYOUT, sep[16] = CSV_DEFAULT_SEPARATOR;
    char tz[72] = "UTC", msg[256], p[256];
    if (get_str(c, o, path, "layout", letters, sizeof(letters)) < 0 ||
        get_str(c, o, path, "separator", sep, sizeof(sep)) < 0 ||
        get_str(c, o, path, "timezone", tz, sizeof(tz)) < 0)
        return -1;
    if (csv_layout_init(l, letters, sep, msg, sizeof(msg)) < 0) {
        join(p, sizeof(p), path,
             strstr(msg, "separator") ? "separator" : "layout");
        return fail(c, p, "%s", msg);
    }
    l->keep_addresses = keep_addresses;
    if (csv_layout_set_timezone(l, tz, msg, sizeof(msg)) < 0) {
        join(p, sizeof(p), path, "timezone");
        return fail(c, p, "%s", msg);
    }
    return 0;
}

static int load_sensors(cfgctx *c, relay_config *cfg, json_t *arr) {
    static const char *const keys[] = {"uuid", "name", "key_file", "layout",
                                       "separator", "timezone", "organisation",
                                       "group", NULL};
    char path[64], p[96];
    if (!json_is_array(arr))
        return fail(c, "sensors", "must be an array");
    cfg->sensors = calloc(json_array_size(arr) + 1, sizeof(relay_sensor));
    if (!cfg->sensors)
        return fail(c, "sensors", "out of memory");
    size_t i;
    json_t *o;
    json_array_foreach(arr, i, o) {
        relay_sensor *s = &cfg->sensors[i];
        char uuid[64] = "";
        snprintf(path, sizeof(path), "sensors[%zu]", i);
        if (check_keys(c, o, path, keys) < 0 ||
            get_str(c, o, path, "uuid", uuid, sizeof(uuid)) < 0 ||
            get_str(c, o, path, "name", s->name, sizeof(s->name)) < 0 ||
            get_path(c, o, path, "key_file", s->key_file,
                     sizeof(s->key_file)) < 0 ||
            get_str(c, o, path, "organisation", s->org, sizeof(s->org)) < 0 ||
            get_str(c, o, path, "group", s->group, sizeof(s->group)) < 0 ||
            load_layout(c, o, path, &s->layout, cfg->keep_addresses) < 0)
            return -1;
        snprintf(p, sizeof(p), "%s.uuid", path);
        if (!uuid[0] || pdns_uuid_parse(uuid, s->uuid) < 0)
            return fail(c, *uuid ? p : path, "%s",
                        *uuid ? "not a uuid (32 hex digits, dashes allowed)"
                              : "missing \"uuid\"");
        pdns_uuid_hex(s->uuid, s->uuid_hex);
        if (!s->name[0])
            snprintf(s->name, sizeof(s->name), "%s", s->uuid_hex);
        for (size_t j = 0; j < i; j++) {
            if (memcmp(cfg->sensors[j].uuid, s->uuid, 16) == 0)
                return fail(c, p, "uuid %s is registered twice",
                            s->uuid_hex);
            if (strcmp(cfg->sensors[j].name, s->name) == 0)
                return fail(c, path, "sensor name \"%s\" is used twice",
                            s->name);
        }
        snprintf(p, sizeof(p), "%s.key_file", path);
        if (!s->key_file[0])
            return fail(c, path, "missing \"key_file\"");
        if (key_file(c, p, s->key_file, &s->key, &s->keylen) < 0)
            return -1;
        cfg->n_sensors++;
    }
    return 0;
}

static int load_addr(cfgctx *c, json_t *o, const char *path, const char *key,
                     cfg_addr *a) {
    char s[CFG_HOST_MAX + 16] = "", p[128];
    if (get_str(c, o, path, key, s, sizeof(s)) < 0)
        return -1;
    join(p, sizeof(p), path, key);
    if (s[0] && config_parse_addr(s, a) < 0)
        return fail(c, p, "want HOST:PORT or [IPV6]:PORT");
    return 0;
}

static int load_d4(cfgctx *c, relay_config *cfg, json_t *o) {
    static const char *const keys[] = {
        "enabled", "listen", "tls_cert", "tls_key", "max_payload",
        "max_line", "header_timeout", "idle_timeout", "exclusive_sessions",
        "accept_csv", "accept_extended", "max_connections",
        "max_connections_per_address", "max_unauthenticated", NULL};
    long long mp = cfg->max_payload, ml = (long long)cfg->max_line,
              ht = cfg->header_timeout, it = cfg->idle_timeout,
              mc = cfg->max_conns, ma = cfg->max_conns_per_addr, mu = cfg->max_unauth;
    if (check_keys(c, o, "d4", keys) < 0 ||
        get_bool(c, o, "d4", "enabled", &cfg->d4_enabled) < 0 ||
        load_addr(c, o, "d4", "listen", &cfg->d4_listen) < 0 ||
        get_path(c, o, "d4", "tls_cert", cfg->tls_cert,
                 sizeof(cfg->tls_cert)) < 0 ||
        get_path(c, o, "d4", "tls_key", cfg->tls_key, sizeof(cfg->tls_key)) < 0 ||
        get_int(c, o, "d4", "max_payload", &mp, 1, 64 << 20) < 0 ||
        get_int(c, o, "d4", "max_line", &ml, 256, 16 << 20) < 0 ||
        get_int(c, o, "d4", "header_timeout", &ht, 1, 3600) < 0 ||
        get_int(c, o, "d4", "idle_timeout", &it, 0, 7 * 86400) < 0 ||
        get_int(c, o, "d4", "max_connections", &mc, 1, 1000000) < 0 ||
        get_int(c, o, "d4", "max_connections_per_address", &ma, 1, 1000000) < 0 ||
        get_int(c, o, "d4", "max_unauthenticated", &mu, 1, 1000000) < 0 ||
        get_bool(c, o, "d4", "exclusive_sessions", &cfg->exclusive) < 0 ||
        get_bool(c, o, "d4", "accept_csv", &cfg->accept_csv) < 0 ||
        get_bool(c, o, "d4", "accept_extended", &cfg->accept_extended) < 0)
        return -1;
    cfg->max_payload = (uint32_t)mp;
    cfg->max_line = (size_t)ml;
    cfg->header_timeout = (int)ht;
    cfg->idle_timeout = (int)it;
    cfg->max_conns = (int)mc;
    cfg->max_conns_per_addr = (int)ma;
    cfg->max_unauth = (int)mu;
    return 0;
}

static int load_queues(cfgctx *c, relay_config *cfg, json_t *o) {
    static const char *const keys[] = {"redis", "batch", "queues", NULL};
    static const char *const qkeys[] = {"uuid", "sensor", "layout", "separator",
                                        "timezone", "type", "partner", NULL};
    long long batch = cfg->queue_batch;
    char path[64], p[96], type[32];
    if (check_keys(c, o, "d4core", keys) < 0 ||
        get_str(c, o, "d4core", "redis", cfg->queue_redis_url,
                sizeof(cfg->queue_redis_url)) < 0 ||
        get_int(c, o, "d4core", "batch", &batch, 1, 20000) < 0)
        return -1;
    cfg->queue_batch = (int)batch;
    if (cfg->queue_redis_url[0] &&
        config_parse_redis_url(cfg->queue_redis_url, &cfg->queue_redis,
                               &cfg->queue_redis_db) < 0)
        return fail(c, "d4core.redis", "want redis://[[USER]:PASSWORD@]HOST[:PORT][/DB] "
                    "(USER and PASSWORD percent-encoded)");
    json_t *arr = json_object_get(o, "queues");
    if (!arr)
        return 0;
    if (!json_is_array(arr))
        return fail(c, "d4core.queues", "must be an array");
    cfg->queues = calloc(json_array_size(arr) + 1, sizeof(cfg_queue));
    size_t i;
    json_t *q;
    json_array_foreach(arr, i, q) {
        cfg_queue *cq = &cfg->queues[i];
        uint8_t u[16];
        snprintf(type, sizeof(type), "passivedns");
        snprintf(path, sizeof(path), "d4core.queues[%zu]", i);
        snprintf(p, sizeof(p), "%s.uuid", path);
        if (check_keys(c, q, path, qkeys) < 0 ||
            get_str(c, q, path, "uuid", cq->uuid, sizeof(cq->uuid)) < 0 ||
            get_str(c, q, path, "sensor", cq->sensor, sizeof(cq->sensor)) < 0 ||
            get_str(c, q, path, "type", type, sizeof(type)) < 0 ||
            get_str(c, q, path, "partner", cq->partner, sizeof(cq->partner)) < 0 ||
            load_layout(c, q, path, &cq->layout, cfg->keep_addresses) < 0)
            return -1;
        snprintf(p, sizeof(p), "%s.type", path);
        if (strcmp(type, "pdns-cof") == 0)
            cq->cof = 1;
        else if (strcmp(type, "8") != 0 && strcmp(type, "passivedns") != 0)
            return fail(c, p, "want \"passivedns\" (analyzer:8:<uuid>, the default) or "
                        "\"pdns-cof\" (analyzer:pdns-cof:<uuid>: a partner relay's "
                        "signed batches through d4-core)");
        snprintf(p, sizeof(p), "%s.partner", path);
        if (cq->cof != !!cq->partner[0])
            return fail(c, p, cq->cof ? "a \"pdns-cof\" queue names the partners_in "
                        "entry that sends it" : "only a \"pdns-cof\" queue has a partner");
        if (pdns_uuid_parse(cq->uuid, u) < 0)
            return fail(c, cq->uuid[0] ? p : path, "%s",
                        cq->uuid[0] ? "not a uuid" : "missing \"uuid\"");
        if (!cq->sensor[0])
            snprintf(cq->sensor, sizeof(cq->sensor), "d4core:%s", cq->uuid);
        cfg->n_queues++;
    }
    if (cfg->n_queues && !cfg->queue_redis_url[0])
        return fail(c, "d4core", "queues need \"redis\"");
    return 0;
}

static int load_store(cfgctx *c, relay_config *cfg, json_t *o) {
    static const char *const keys[] = {"enabled", "redis", "batch", "call_ms", "max_buffer",
                                       "show_sensors", "default_limit",
                                       "max_limit", "query_budget", "expire",
                                       "sweep_interval", "shards", "module", "index", NULL};
    store_conf *st = &cfg->store;
    long long b = (long long)st->batch, mb = (long long)st->max_buffer,
              dl = (long long)st->default_limit, ml = (long long)st->max_limit,
              qb = (long long)st->budget, sw = st->sweep_interval, sh = st->shards,
              cm = st->call_ms;
    if (check_keys(c, o, "store", keys) < 0 ||
        get_bool(c, o, "store", "enabled", &st->enabled) < 0 ||
        get_str(c, o, "store", "redis", st->url, sizeof(st->url)) < 0 ||
        get_int(c, o, "store", "batch", &b, 1, 100000) < 0 ||
        get_int(c, o, "store", "call_ms", &cm, 0, 60000) < 0 ||
        get_int(c, o, "store", "max_buffer", &mb, 1000, 1000000000) < 0 ||
        get_bool(c, o, "store", "show_sensors", &st->show_sensors) < 0 ||
        get_bool(c, o, "store", "module", &st->module) < 0 ||
        get_int(c, o, "store", "max_limit", &ml, 1, 10000000) < 0 ||
        get_int(c, o, "store", "default_limit", &dl, 1, ml) < 0 ||
        get_int(c, o, "store", "query_budget", &qb, 100, 100000000) < 0 ||
        get_int(c, o, "store", "sweep_interval", &sw, 1, 86400 * 7) < 0 ||
        get_int(c, o, "store", "shards", &sh, 1, STORE_SHARDS_MAX) < 0)
        return -1;
    char index[16] = "";
    if (get_str(c, o, "store", "index", index, sizeof(index)) < 0)
        return -1;
    if (index[0] && strcmp(index, "zset") != 0 && strcmp(index, "tree") != 0)
        return fail(c, "store.index", "must be \"zset\" or \"tree\"");
    if (index[0])
        st->trees = strcmp(index, "tree") == 0;
    if (st->trees && !st->module)
        return fail(c, "store.index", "\"tree\" needs the pdnsrelay module (store.module true)");
    st->sweep_interval = (int)sw;
    st->shards = (int)sh;
    st->call_ms = (int)cm;
    st->batch = (size_t)b;
    st->max_buffer = (size_t)mb;
    st->default_limit = (size_t)dl;
    st->max_limit = (size_t)ml;
    st->budget = (size_t)qb;
    json_t *e = json_object_get(o, "expire");
    if (!e)
        return 0;
    if (!json_is_object(e))
        return fail(c, "store.expire", "must be an object of rrtype: seconds");
    const char *k;
    json_t *v;
    size_t used = 1;
    snprintf(st->expiry, sizeof(st->expiry), ",");
    json_object_foreach(e, k, v) {
        char p[96];
        uint16_t t;
        snprintf(p, sizeof(p), "store.expire.%s", k);
        if (pdns_rrtype_parse(k, strlen(k), &t) < 0)
            return fail(c, p, "unknown rrtype");
        if (!json_is_integer(v) || json_integer_value(v) < 0)
            return fail(c, p, "must be a number of seconds (0: never)");
        if (!json_integer_value(v))
            continue;
        int n = snprintf(st->expiry + used, sizeof(st->expiry) - used,
                         "%u=%lld,", (unsigned)t, (long long)json_integer_value(v));
        if (n < 0 || (size_t)n >= sizeof(st->expiry) - used)
            return fail(c, "store.expire", "too many entries");
        used += (size_t)n;
    }
    if (used == 1)
        st->expiry[0] = '\0';
    return 0;
}

static int load_http(cfgctx *c, relay_config *cfg, json_t *o) {
    static const char *const keys[] = {"enabled", "listen", "tls_cert", "tls_key",
                                       "auth_file", "anonymous", "rate_limit",
                                       "rate_burst", "trusted_proxies", NULL};
    json_t *an = json_object_get(o, "anonymous"), *tp = json_object_get(o, "trusted_proxies");
    if (check_keys(c, o, "http", keys) < 0 ||
        get_bool(c, o, "http", "enabled", &cfg->http_enabled) < 0 ||
        load_addr(c, o, "http", "listen", &cfg->http_listen) < 0 ||
        get_path(c, o, "http", "tls_cert", cfg->http_tls_cert,
                 sizeof(cfg->http_tls_cert)) < 0 ||
        get_path(c, o, "http", "tls_key", cfg->http_tls_key,
                 sizeof(cfg->http_tls_key)) < 0 ||
        get_path(c, o, "http", "auth_file", cfg->http_auth_file,
                 sizeof(cfg->http_auth_file)) < 0 ||
        get_real(c, o, "http", "rate_limit", &cfg->http_rate, 0, 1e6) < 0 ||
        get_real(c, o, "http", "rate_burst", &cfg->http_burst, 1, 1e6) < 0)
        return -1;
    if (an) {
        if (json_is_boolean(an))
            cfg->http_anonymous = json_is_true(an);
        else if (json_is_string(an) && strcmp(json_string_value(an), "loopback") == 0)
            cfg->http_anonymous = 2;
        else
            return fail(c, "http.anonymous", "want true, false or \"loopback\"");
    }
    if (!cfg->http_tls_cert[0] != !cfg->http_tls_key[0])
        return fail(c, "http", "HTTPS needs both \"tls_cert\" and \"tls_key\"");
    if (tp) {
        size_t i, at = 1;
        json_t *v;
        if (!json_is_array(tp))
            return fail(c, "http.trusted_proxies", "want a list of IP addresses");
        snprintf(cfg->http_proxies, sizeof(cfg->http_proxies), ",");
        json_array_foreach(tp, i, v) {
            unsigned char a[16];
            const char *ip = json_is_string(v) ? json_string_value(v) : "";
            if (inet_pton(AF_INET, ip, a) != 1 && inet_pton(AF_INET6, ip, a) != 1)
                return fail(c, "http.trusted_proxies", "item %zu: not an IP address", i);
            int n = snprintf(cfg->http_proxies + at, sizeof(cfg->http_proxies) - at, "%s,", ip);
            if (n < 0 || (size_t)n >= sizeof(cfg->http_proxies) - at)
                return fail(c, "http.trusted_proxies", "too many addresses");
            at += (size_t)n;
        }
    }
    if (cfg->http_burst < 1)
        cfg->http_burst = cfg->http_rate > 1 ? cfg->http_rate : 1;
    return 0;
}

static int load_admin(cfgctx *c, relay_config *cfg, json_t *o) {
    static const char *const keys[] = {"enabled", "listen", "console", "auth_file",
                                       "preview_mib", "two_person", NULL};
    return check_keys(c, o, "admin", keys) < 0 ||
                   get_bool(c, o, "admin", "enabled", &cfg->admin_enabled) < 0 ||
                   load_addr(c, o, "admin", "listen", &cfg->admin_listen) < 0 ||
                   get_bool(c, o, "admin", "console", &cfg->admin_console) < 0 ||
                   get_path(c, o, "admin", "auth_file", cfg->admin_auth_file,
                            sizeof(cfg->admin_auth_file)) < 0 ||
                   get_int(c, o, "admin", "preview_mib", &cfg->admin_preview_mib, 0, 4096) < 0 ||
                   get_bool(c, o, "admin", "two_person", &cfg->admin_two_person) < 0
               ? -1 : 0;
}

/* ha: the lease; it needs the mixer's pool where another process finds it */
static int load_ha(cfgctx *c, relay_config *cfg, json_t *o) {
    static const char *const keys[] = {"enabled", "lease", "instance", NULL};
    long long lease = cfg->ha_lease_s;
    if (check_keys(c, o, "ha", keys) < 0 ||
        get_bool(c, o, "ha", "enabled", &cfg->ha_enabled) < 0 ||
        get_int(c, o, "ha", "lease", &lease, 1, 3600) < 0 ||
        get_str(c, o, "ha", "instance", cfg->ha_instance, sizeof(cfg->ha_instance)) < 0)
        return -1;
    cfg->ha_lease_s = (int)lease;
    if (cfg->ha_enabled && cfg->mixer_enabled && cfg->mixer_journal != MIXER_JOURNAL_REDIS)
        return fail(c, "ha.enabled", "needs mixer.journal \"redis\" (the pool must be where "
                    "another process finds it)");
    return 0;
}

/* mixer.journal: true (state_dir), false, or "redis" */
static int get_journal(cfgctx *c, json_t *o, int *out) {
    json_t *v = json_object_get(o, "journal");
    if (v && json_is_string(v) && strcmp(json_string_value(v), "redis") == 0) {
        *out = MIXER_JOURNAL_REDIS;
        return 0;
    }
    if (v && !json_is_boolean(v))
        return fail(c, "mixer.journal", "want true (in state_dir), false or \"redis\"");
    return get_bool(c, o, "mixer", "journal", out);
}

static int load_mixer(cfgctx *c, relay_config *cfg, json_t *o) {
    static const char *const keys[] = {
        "enabled", "interval", "min_batch", "send_fraction", "pool_min",
        "hold_min", "hold_jitter", "min_sensors", "min_orgs", "min_count", "max_hold",
        "sensor_quota", "time_resolution", "count_buckets", "max_triples",
        "max_bytes", "output_file", "journal", NULL};
    mixer_conf *m = &cfg->mixer;
    long long iv = m->interval_ms / 1000, mb = m->min_batch, pm = m->pool_min,
              hm = m->hold_min_ms / 1000, hj = m->hold_jitter_ms / 1000,
              k = m->min_sensors, mo = m->min_orgs, mc = (long long)m->min_count,
              mh = m->max_hold_ms / 1000, tr = m->time_resolution,
              mt = (long long)m->max_triples, mxb = (long long)m->max_bytes;
    char err[256];
    if (check_keys(c, o, "mixer", keys) < 0 ||
        get_bool(c, o, "mixer", "enabled", &cfg->mixer_enabled) < 0 ||
        get_journal(c, o, &cfg->mixer_journal) < 0 ||
        get_int(c, o, "mixer", "interval", &iv, 1, 86400) < 0 ||
        get_int(c, o, "mixer", "min_batch", &mb, 0, 10000000) < 0 ||
        get_real(c, o, "mixer", "send_fraction", &m->send_fraction, 0.01, 1) < 0 ||
        get_int(c, o, "mixer", "pool_min", &pm, 0, 10000000) < 0 ||
        get_int(c, o, "mixer", "hold_min", &hm, 0, 7 * 86400) < 0 ||
        get_int(c, o, "mixer", "hold_jitter", &hj, 0, 7 * 86400) < 0 ||
        get_int(c, o, "mixer", "min_sensors", &k, 1, 65535) < 0 ||
        get_int(c, o, "mixer", "min_orgs", &mo, 1, 65535) < 0 ||
        get_int(c, o, "mixer", "min_count", &mc, 1, 1000000000) < 0 ||
        get_int(c, o, "mixer", "max_hold", &mh, 2, 30 * 86400) < 0 ||
        get_real(c, o, "mixer", "sensor_quota", &m->sensor_quota, 0.01, 1) < 0 ||
        get_int(c, o, "mixer", "time_resolution", &tr, 1, 30 * 86400) < 0 ||
        get_bool(c, o, "mixer", "count_buckets", &m->count_buckets) < 0 ||
        get_int(c, o, "mixer", "max_triples", &mt, 1, 1000000000) < 0 ||
        get_int(c, o, "mixer", "max_bytes", &mxb, 4096, (long long)1 << 40) < 0 ||
        get_path(c, o, "mixer", "output_file", cfg->mixer_output,
                 sizeof(cfg->mixer_output)) < 0)
        return -1;
    m->interval_ms = iv * 1000;
    m->min_batch = (uint32_t)mb;
    m->pool_min = (uint32_t)pm;
    m->hold_min_ms = hm * 1000;
    m->hold_jitter_ms = hj * 1000;
    m->min_sensors = (uint32_t)k;
    m->min_orgs = (uint32_t)mo;
    m->min_count = (uint64_t)mc;
    m->max_hold_ms = mh * 1000;
    m->time_resolution = tr;
    m->max_triples = (size_t)mt;
    m->max_bytes = (size_t)mxb;
    if (mixer_conf_check(m, err, sizeof(err)) < 0)
        return fail(c, "mixer", "%s", err);
    if (m->min_sensors < 2)
        log_warn("%s: mixer.min_sensors is 1: a released record can name the "
                 "one sensor that saw it by its timing", c->file);
    return 0;
}

static int load_partners_in(cfgctx *c, relay_config *cfg, json_t *arr) {
    static const char *const keys[] = {"name", "uuid", "key_file", "pubkey",
                                       "addressee", NULL};
    char path[64], p[96], msg[512], pub[CFG_PATH_MAX];
    if (!json_is_array(arr))
        return fail(c, "partners_in", "must be an array");
    cfg->partners_in = calloc(json_array_size(arr) + 1, sizeof(relay_sensor));
    if (!cfg->partners_in)
        return fail(c, "partners_in", "out of memory");
    size_t i;
    json_t *o;
    json_array_foreach(arr, i, o) {
        relay_sensor *s = &cfg->partners_in[i];
        char uuid[64] = "";
        pub[0] = '\0';
        snprintf(path, sizeof(path), "partners_in[%zu]", i);
        if (check_keys(c, o, path, keys) < 0 ||
            get_str(c, o, path, "name", s->name, sizeof(s->name)) < 0 ||
            get_str(c, o, path, "uuid", uuid, sizeof(uuid)) < 0 ||
            get_path(c, o, path, "key_file", s->key_file, sizeof(s->key_file)) < 0 ||
            get_path(c, o, path, "pubkey", pub, sizeof(pub)) < 0 ||
            get_str(c, o, path, "addressee", s->addressee, sizeof(s->addressee)) < 0)
            return -1;
        if (!s->addressee[0]) /* the partner's policy names us by our relay_id */
            snprintf(s->addressee, sizeof(s->addressee), "%s", cfg->relay_id);
        if (!s->name[0] || !uuid[0] || !s->key_file[0] || !pub[0])
            return fail(c, path, "a partner relay needs \"name\", \"uuid\", "
                        "\"key_file\" (D4 HMAC) and \"pubkey\" (its batch key)");
        snprintf(p, sizeof(p), "%s.uuid", path);
        if (pdns_uuid_parse(uuid, s->uuid) < 0)
            return fail(c, p, "not a uuid (32 hex digits, dashes allowed)");
        pdns_uuid_hex(s->uuid, s->uuid_hex);
        if (config_find_sensor(cfg, s->uuid))
            return fail(c, p, "uuid %s is registered twice", s->uuid_hex);
        snprintf(p, sizeof(p), "%s.pubkey", path);
        if (batch_read_public_key(pub, s->pubkey, msg, sizeof(msg)) < 0)
            return fail(c, p, "%s", msg);
        snprintf(p, sizeof(p), "%s.key_file", path);
        if (key_file(c, p, s->key_file, &s->key, &s->keylen) < 0)
            return -1;
        s->is_partner = 1;
        csv_layout_init(&s->layout, NULL, NULL, msg, sizeof(msg));
        cfg->n_partners_in++;
    }
    return 0;
}

/* Two listeners on one port would not fail to start: lws puts vhosts with
 * the same port on one socket, and the second's clients would talk to the
 * first (an admin's GET /metrics read as a D4 frame, the connection reset).
 * Hosts are apart only when both are distinct address literals. */
static int host_literal(const char *h) {
    unsigned char a[16];
    return strcmp(h, "0.0.0.0") != 0 && strcmp(h, "::") != 0 &&
           (inet_pton(AF_INET, h, a) == 1 || inet_pton(AF_INET6, h, a) == 1);
}

static int listeners_apart(cfgctx *c, json_t *root, const relay_config *cfg) {
    const struct {
        const char *sect, *path;
        const cfg_addr *a;
        int on;
    } l[] = {{"d4", "d4.listen", &cfg->d4_listen, cfg->d4_enabled},
             {"http", "http.listen", &cfg->http_listen, cfg->http_enabled},
             {"admin", "admin.listen", &cfg->admin_listen, cfg->admin_enabled}};
    size_t n = sizeof(l) / sizeof(l[0]);
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++) {
            const cfg_addr *a = l[i].a, *b = l[j].a;
            if (!l[i].on || !l[j].on || a->port == 0 || a->port != b->port ||
                (host_literal(a->host) && host_literal(b->host) &&
                 strcasecmp(a->host, b->host) != 0))
                continue;
            /* told at the key the file sets (the later one if both are) */
            int at_j = json_object_get(json_object_get(root, l[j].sect), "listen") != NULL;
            return fail(c, at_j ? l[j].path : l[i].path,
                        "port %d is also %s's: each listener needs a port of its own",
                        a->port, at_j ? l[i].path : l[j].path);
        }
    return 0;
}

/* Sensor numbers for the mixer: sensors first, then d4-core queues; and
 * each one's organisation number (sensors without one are their own). */
static int number_sources(cfgctx *c, relay_config *cfg) {
    size_t n = cfg->n_sensors + cfg->n_queues + cfg->n_partners_in;
    if (n > 65536)
        return fail(c, "sensors", "at most 65536 sensors and queues");
    cfg->mixer_org = calloc(n ? n : 1, sizeof(uint16_t));
    if (!cfg->mixer_org)
        return fail(c, "", "out of memory");
    uint16_t next_org = 0;
    for (size_t i = 0; i < n; i++) {
        const char *org = i < cfg->n_sensors ? cfg->sensors[i].org : "";
        size_t j;
        for (j = 0; *org && j < i; j++)
            if (j < cfg->n_sensors && strcmp(cfg->sensors[j].org, org) == 0)
                break;
        cfg->mixer_org[i] = *org && j < i ? cfg->mixer_org[j] : next_org++;
        if (i < cfg->n_sensors)
            cfg->sensors[i].index = (uint16_t)i;
        else if (i < cfg->n_sensors + cfg->n_queues)
            cfg->queues[i - cfg->n_sensors].index = (uint16_t)i;
        else
            cfg->partners_in[i - cfg->n_sensors - cfg->n_queues].index = (uint16_t)i;
    }
    cfg->mixer.sensor_org = cfg->mixer_org;
    cfg->mixer.n_sensors = n;
    return 0;
}

static void defaults(relay_config *cfg) {
    memset(cfg, 0, sizeof(*cfg));
    snprintf(cfg->relay_id, sizeof(cfg->relay_id), "pdns-relay");
    cfg->log_level = LOG_INFO;
    cfg->stats_interval = 60;
    cfg->d4_enabled = 1;
    config_parse_addr("0.0.0.0:4443", &cfg->d4_listen);
    cfg->max_payload = 1000000;
    cfg->max_line = 65536;
    cfg->header_timeout = 30;
    cfg->idle_timeout = 600;
    cfg->max_conns = 1024;
    cfg->max_conns_per_addr = 64;
    cfg->max_unauth = 64;
    cfg->exclusive = 1;
    cfg->accept_csv = 1;
    cfg->accept_extended = 1;
    cfg->http_enabled = 1;
    config_parse_addr("127.0.0.1:8400", &cfg->http_listen);
    snprintf(cfg->redis_url, sizeof(cfg->redis_url), "redis://127.0.0.1:6379/0");
    config_parse_redis_url(cfg->redis_url, &cfg->redis, &cfg->redis_db);
    cfg->queue_batch = 2000;
    cfg->http_anonymous = 2;
    cfg->admin_enabled = 1;
    cfg->admin_console = 1;
    cfg->admin_preview_mib = 32;
    config_parse_addr("127.0.0.1:8401", &cfg->admin_listen);
    store_conf_defaults(&cfg->store);
    cfg->mixer_enabled = 1;
    cfg->mixer_journal = 1;
    cfg->ha_lease_s = 5;
    mixer_conf_defaults(&cfg->mixer);
    cfg->max_delayed = 1000000;
    cfg->stream_client_bytes = 4u << 20;
    cfg->stream_history = 100;
    cfg->stream_clients = 256;
    cfg->stream_clients_per_addr = 16;
    cfg->stream_replay_bytes = 64u << 20;
}

static int load(relay_config *cfg, const char *path, char *err, size_t errlen,
                void (*warn)(const char *msg));

int config_load(relay_config *cfg, const char *path, char *err, size_t errlen) {
    return load(cfg, path, err, errlen, NULL);
}

int config_load_keys_optional(relay_config *cfg, const char *path, char *err,
                              size_t errlen, void (*warn)(const char *msg)) {
    return load(cfg, path, err, errlen, warn);
}

static int load(relay_config *cfg, const char *path, char *err, size_t errlen,
                void (*warn)(const char *msg)) {
    static const char *const keys[] = {
        "relay_id", "log_level", "stats_interval", "d4", "http", "admin", "redis",
        "sensors", "d4core", "ingest", "mixer", "policies", "signing_key",
        "stream", "partners_in", "state_dir", "store", "ha", NULL};
    static const char *const stream_keys[] = {"policy", "max_client_bytes", "history",
                                              "max_clients", "max_clients_per_address",
                                              "max_replay_bytes", NULL};
    static const char *const policy_keys[] = {"dir", "outbox_dir",
                                              "max_delayed", NULL};
    static const char *const ingest_keys[] = {"keep_addresses",
                                              "keep_errors", "output_file",
                                              NULL};
    cfgctx c = {.file = path, .err = err, .errlen = errlen, .warn = warn};
    json_error_t je;
    json_t *root = NULL, *o;
    char *text = NULL, level[16] = "info";
    long long si;
    int rc = -1;

    defaults(cfg);
    snprintf(cfg->path, sizeof(cfg->path), "%s", path);
    snprintf(c.dir, sizeof(c.dir), "%s", path);
    char *slash = strrchr(c.dir, '/');
    if (slash)
        *slash = '\0';
    else
        snprintf(c.dir, sizeof(c.dir), ".");

    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    text = malloc(1 << 20);
    c.len = text ? fread(text, 1, (1 << 20) - 1, f) : 0;
    fclose(f);
    if (!text) {
        snprintf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    c.text = text;
    root = json_loadb(text, c.len, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        snprintf(err, errlen, "%s:%d:%d: %s", path, je.line, je.column,
                 je.text);
        goto out;
    }
    si = cfg->stats_interval;
    if (check_keys(&c, root, "", keys) < 0 ||
        get_str(&c, root, "", "relay_id", cfg->relay_id,
                sizeof(cfg->relay_id)) < 0 ||
        get_str(&c, root, "", "log_level", level, sizeof(level)) < 0 ||
        get_int(&c, root, "", "stats_interval", &si, 0, 86400) < 0)
        goto out;
    cfg->stats_interval = (int)si;
    if (log_level_parse(level, &cfg->log_level) < 0) {
        fail(&c, "log_level", "want debug, info, warn or error");
        goto out;
    }
    if ((o = json_object_get(root, "ingest")) &&
        (check_keys(&c, o, "ingest", ingest_keys) < 0 ||
         get_bool(&c, o, "ingest", "keep_addresses", &cfg->keep_addresses) < 0 ||
         get_bool(&c, o, "ingest", "keep_errors", &cfg->keep_errors) < 0 ||
         get_path(&c, o, "ingest", "output_file", cfg->output_file,
                  sizeof(cfg->output_file)) < 0))
        goto out;
    if ((o = json_object_get(root, "d4")) && load_d4(&c, cfg, o) < 0)
        goto out;
    if ((o = json_object_get(root, "http")) && load_http(&c, cfg, o) < 0)
        goto out;
    if ((o = json_object_get(root, "admin")) && load_admin(&c, cfg, o) < 0)
        goto out;
    if (get_str(&c, root, "", "redis", cfg->redis_url,
                sizeof(cfg->redis_url)) < 0)
        goto out;
    int cluster = rlink_url_kind(cfg->redis_url) == 1;
    if (!cluster && config_parse_redis_url(cfg->redis_url, &cfg->redis, &cfg->redis_db) < 0) {
        fail(&c, "redis", "want " CFG_REDIS_URL_FORMS);
        goto out;
    }
    if ((o = json_object_get(root, "store")) && load_store(&c, cfg, o) < 0)
        goto out;
    if (!cfg->store.url[0])
        snprintf(cfg->store.url, sizeof(cfg->store.url), "%s", cfg->redis_url);
    if (config_store_redis(cfg, cfg->store.url) < 0) {
        fail(&c, "store.redis", "want " CFG_REDIS_URL_FORMS);
        goto out;
    }
    if ((o = json_object_get(root, "sensors")) && load_sensors(&c, cfg, o) < 0)
        goto out;
    if ((o = json_object_get(root, "d4core")) && load_queues(&c, cfg, o) < 0)
        goto out;
    if ((o = json_object_get(root, "partners_in")) && load_partners_in(&c, cfg, o) < 0)
        goto out;
    for (size_t i = 0; i < cfg->n_queues; i++) {
        cfg_queue *cq = &cfg->queues[i];
        for (size_t k = 0; cq->cof && !cq->from && k < cfg->n_partners_in; k++)
            if (strcmp(cfg->partners_in[k].name, cq->partner) == 0)
                cq->from = &cfg->partners_in[k];
        if (cq->cof && !cq->from) {
            char p[96];
            snprintf(p, sizeof(p), "d4core.queues[%zu].partner", i);
            fail(&c, p, "no partners_in entry is named \"%s\"", cq->partner);
            goto out;
        }
    }
    if ((o = json_object_get(root, "mixer")) && load_mixer(&c, cfg, o) < 0)
        goto out;
    if ((o = json_object_get(root, "ha")) && load_ha(&c, cfg, o) < 0)
        goto out;
    long long md = (long long)cfg->max_delayed;
    if ((o = json_object_get(root, "policies")) &&
        (check_keys(&c, o, "policies", policy_keys) < 0 ||
         get_path(&c, o, "policies", "dir", cfg->policy_dir,
                  sizeof(cfg->policy_dir)) < 0 ||
         get_path(&c, o, "policies", "outbox_dir", cfg->outbox_dir,
                  sizeof(cfg->outbox_dir)) < 0 ||
         get_int(&c, o, "policies", "max_delayed", &md, 1, 1000000000) < 0))
        goto out;
    cfg->max_delayed = (size_t)md;
    if (get_path(&c, root, "", "signing_key", cfg->signing_key,
                 sizeof(cfg->signing_key)) < 0 ||
        get_path(&c, root, "", "state_dir", cfg->state_dir,
                 sizeof(cfg->state_dir)) < 0)
        goto out;
    if (!cfg->state_dir[0])
        snprintf(cfg->state_dir, sizeof(cfg->state_dir), "%s", c.dir);
    if (cfg->policy_dir[0] && !cfg->signing_key[0]) {
        fail(&c, "policies", "partners get signed batches: set \"signing_key\" "
             "(make one with: pdns-relay keygen --out PREFIX)");
        goto out;
    }
    long long scb = (long long)cfg->stream_client_bytes,
              sh = (long long)cfg->stream_history, smc = (long long)cfg->stream_clients,
              sma = (long long)cfg->stream_clients_per_addr,
              srb = (long long)cfg->stream_replay_bytes;
    if ((o = json_object_get(root, "stream")) &&
        (check_keys(&c, o, "stream", stream_keys) < 0 ||
         get_str(&c, o, "stream", "policy", cfg->stream_policy,
                 sizeof(cfg->stream_policy)) < 0 ||
         get_int(&c, o, "stream", "max_client_bytes", &scb, 4096, 1LL << 32) < 0 ||
         get_int(&c, o, "stream", "history", &sh, 0, 100000) < 0 ||
         get_int(&c, o, "stream", "max_clients", &smc, 1, 1000000) < 0 ||
         get_int(&c, o, "stream", "max_clients_per_address", &sma, 1, 1000000) < 0 ||
         get_int(&c, o, "stream", "max_replay_bytes", &srb, 0, 1LL << 40) < 0))
        goto out;
    cfg->stream_client_bytes = (size_t)scb;
    cfg->stream_history = (size_t)sh;
    cfg->stream_clients = (size_t)smc;
    cfg->stream_clients_per_addr = (size_t)sma;
    cfg->stream_replay_bytes = (size_t)srb;
    if (cfg->stream_policy[0] && !cfg->policy_dir[0]) {
        fail(&c, "stream", "the open stream publishes a partner policy's output: "
             "set \"policies\" too");
        goto out;
    }
    if (cfg->policy_dir[0] && !cfg->outbox_dir[0]) {
        fail(&c, "policies", "\"dir\" needs \"outbox_dir\" (where each "
             "partner's records are written until signed delivery exists)");
        goto out;
    }
    if (number_sources(&c, cfg) < 0 || listeners_apart(&c, root, cfg) < 0)
        goto out;
    if (cfg->d4_enabled && (!cfg->tls_cert[0] || !cfg->tls_key[0])) {
        fail(&c, "d4", "the D4 listener needs \"tls_cert\" and \"tls_key\"");
        goto out;
    }
    rc = 0;
out:
    json_decref(root);
    free(text);
    if (rc < 0)
        config_free(cfg);
    return rc;
}

int config_store_redis(relay_config *cfg, const char *url) {
    cfg_addr a;
    int db;
    int kind = rlink_url_kind(url);
    if (kind < 0 || (kind == 0 && config_parse_redis_url(url, &a, &db) < 0))
        return -1;
    if (url != cfg->store.url)
        snprintf(cfg->store.url, sizeof(cfg->store.url), "%s", url);
    if (kind == 1) { /* a cluster: its seeds are in the URL */
        cfg->store.host[0] = '\0';
        cfg->store.port = cfg->store.db = 0;
        return 0;
    }
    snprintf(cfg->store.host, sizeof(cfg->store.host), "%s", a.host);
    cfg->store.port = a.port;
    cfg->store.db = db;
    return 0;
}

relay_sensor *config_find_sensor(const relay_config *cfg,
                                 const uint8_t uuid[16]) {
    for (size_t i = 0; i < cfg->n_sensors; i++)
        if (memcmp(cfg->sensors[i].uuid, uuid, 16) == 0)
            return &cfg->sensors[i];
    for (size_t i = 0; i < cfg->n_partners_in; i++)
        if (memcmp(cfg->partners_in[i].uuid, uuid, 16) == 0)
            return &cfg->partners_in[i];
    return NULL;
}

void config_free(relay_config *cfg) {
    if (cfg->sensors) {
        for (size_t i = 0; i < cfg->n_sensors; i++)
            sodium_free(cfg->sensors[i].key);
        free(cfg->sensors);
    }
    for (size_t i = 0; i < cfg->n_partners_in; i++)
        sodium_free(cfg->partners_in[i].key);
    free(cfg->partners_in);
    cfg->partners_in = NULL;
    cfg->n_partners_in = 0;
    free(cfg->queues);
    free(cfg->mixer_org);
    cfg->sensors = NULL;
    cfg->queues = NULL;
    cfg->mixer_org = NULL;
    cfg->n_sensors = cfg->n_queues = 0;
}
