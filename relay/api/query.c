/* query.c - the COF query API: requests to store lookups, replies to COF.
 * See query.h. */
#include "query.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <jansson.h>
#include <libwebsockets.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cof.h"
#include "http.h"
#include "http_auth.h"
#include "log.h"
#include "merge.h"
#include "qparse.h"
#include "rrtype.h"
#include "version.h"

#define CURSOR_MAX 2048
#define CURSOR_MAC 16
#define CURSOR_TTL_S 3600   /* as the numeric cursors kept in Redis */

static const char *const ep_name[QE_COUNT] = {"query", "rdata", "pdns", "info",
                                              "errors", "dnsdb"};
#define DNSDB_DEFAULT_LIMIT 10000 /* DNSDB's own, when the client gives none */
static const unsigned status_of[6] = {200, 400, 401, 429, 503, 0};
static const char *const status_name[6] = {"200", "400", "401", "429", "503",
                                           "other"};

struct query_req {
    struct lws *wsi;          /* NULL once the client went away */
    query_req **slot;
    query_api *api;
    pdns_buf *body;
    int ep, json, saf;
    int whole;                /* /pdns/query without paging: all, up to max_limit */
    uint64_t t0_us;
    qparse qp;
    char cursor[CURSOR_MAX];
    size_t cursor_blob;       /* an opaque cursor as given, decoded, in cursor */
    char cursor_id[24];
    uint8_t binding[16];      /* the query: what its cursors are bound to */
    char binding_hex[33];
    char bad[256];            /* why the request is malformed, or "" */
    /* DNSDB v2 */
    dnsdb_path dd;
    size_t offset;            /* results skipped */
    unsigned dnsdb_flags;     /* DNSDB_HUMANTIME */
    uint64_t max_count;       /* summarize: stop at this count (0: no) */
};

static uint64_t now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

int query_endpoint_of(const char *path) {
    if (strncmp(path, "/query/", 7) == 0)
        return QE_QUERY;
    if (strncmp(path, "/rdata/", 7) == 0)
        return QE_RDATA;
    if (strncmp(path, "/pdns/query/", 12) == 0)
        return QE_PDNS;
    if (strcmp(path, "/info") == 0)
        return QE_INFO;
    if (strncmp(path, "/errors/", 8) == 0)
        return QE_ERRORS;
    if (strncmp(path, "/dnsdb/v2/", 10) == 0)
        return QE_DNSDB;
    return -1;
}

static void count(query_api *api, int ep, unsigned status, uint64_t t0) {
    query_metrics *m = &api->m;
    int s = 5;
    for (int i = 0; i < 5; i++)
        if (status_of[i] == status)
            s = i;
    m->by_status[ep][s]++;
    pdns_hist_add(&m->lat, (double)(now_us() - t0) / 1e6);
}

/* Sends a JSON error {"error": msg} (and counts it). */
static int fail(query_api *api, struct lws *wsi, pdns_buf *body, int ep,
                uint64_t t0, unsigned status, const char *msg,
                const char *const *hdrs) {
    json_t *o = json_pack("{s:s}", "error", msg);
    char *t = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    body->len = LWS_PRE;
    int rc = pdns_buf_printf(body, "%s\n", t ? t : "{\"error\":\"?\"}");
    free(t);
    count(api, ep, status, t0);
    if (rc < 0)
        return -1;
    return http_respond(wsi, body, status, "application/json", hdrs);
}

static void req_free(query_req *q) {
    if (q->slot)
        *q->slot = NULL;
    free(q);
}

void query_abandon(query_req **slot) {
    if (*slot) {
        (*slot)->wsi = NULL;
        (*slot)->slot = NULL;
        *slot = NULL;
    }
}

/* The number of 1 to 19 digits at *p (before end), followed by a space:
 * *p moved past both; -1 when there is none, or no space follows. */
static int number_sp(const char **p, const char *end, uint64_t *v) {
    const char *s = *p;
    uint64_t x = 0;
    while (s < end && *s >= '0' && *s <= '9' && s - *p < 19)
        x = x * 10 + (uint64_t)(*s++ - '0');
    if (s == *p || s == end || *s != ' ')
        return -1;
    *v = x;
    *p = s + 1;
    return 0;
}

/* One triple of the store's reply (STORE_TRIPLE_ELEMENTS): name,
 * "<rrtype> <rdata>", the value as stored ("<tf> <tl> <count> <sensor
 * ids>[ <bailiwick>]"), the sensors' names ("" unless shown). Returns 1, or
 * 0 when it is not one: a value the store does not write (a hand edit, a
 * damaged restore) is left out. */
static int read_triple(redisReply **el, pdns_record *rec) {
    memset(rec, 0, sizeof(*rec));
    for (int i = 0; i < STORE_TRIPLE_ELEMENTS; i++)
        if (el[i]->type != REDIS_REPLY_STRING)
            return 0;
    const redisReply *n = el[0], *f = el[1], *v = el[2];
    const char *sp = memchr(f->str, ' ', f->len);
    if (!sp)
        return 0;
    rec->rrtype = (uint16_t)strtoul(f->str, NULL, 10);
    rec->rrname.p = n->str;
    rec->rrname.len = n->len;
    rec->rdata.p = sp + 1;
    rec->rdata.len = f->len - (size_t)(sp + 1 - f->str);
    const char *p = v->str, *end = v->str + v->len;
    uint64_t tf, tl, c;
    if (number_sp(&p, end, &tf) < 0 || number_sp(&p, end, &tl) < 0 ||
        number_sp(&p, end, &c) < 0 || p == end || *p == ' ' || tf > INT64_MAX ||
        tl > INT64_MAX)
        return 0;
    rec->time_first = (int64_t)tf;
    rec->time_last = (int64_t)tl;
    rec->count = c;
    rec->sensor_id.p = el[3]->str;
    rec->sensor_id.len = el[3]->len;
    const char *bw = memchr(p, ' ', (size_t)(end - p)); /* after the sensor ids */
    if (bw) {
        rec->bailiwick.p = bw + 1;
        rec->bailiwick.len = (size_t)(end - bw - 1);
    }
    return 1;
}

/* One triple of the reply as a COF line (or SAF, or an array element). */
static int put_triple(query_req *q, redisReply **el) {
    pdns_record rec;
    if (!read_triple(el, &rec))
        return 0;
    if (q->saf && pdns_buf_append(q->body, "{\"obj\":", 7) < 0)
        return -1;
    if (cof_encode(&rec, COF_WITH_SENSOR, q->body) < 0)
        return -1;
    if (q->json) /* the newline becomes the array's comma */
        q->body->p[q->body->len - 1] = ',';
    else if (q->saf) /* DNSDB's SAF: {"obj":{...}} a line */
        q->body->p[q->body->len - 1] = '}', pdns_buf_append(q->body, "\n", 1);
    return 0;
}

/* What a cursor of this query is bound to: a keyed hash of the query as
 * parsed (endpoint, lookup, key range, filters), not of its spelling. */
static void bind_query(query_req *q) {
    query_api *api = q->api;
    const store_query_args *a = &q->qp.a;
    crypto_generichash_state st;
    char num[96];
    if (!api->cursor_keyed) {
        randombytes_buf(api->cursor_key, sizeof(api->cursor_key));
        api->cursor_keyed = 1;
    }
    crypto_generichash_init(&st, api->cursor_key, sizeof(api->cursor_key), sizeof(q->binding));
    int n = snprintf(num, sizeof(num), "%d %" PRId64 " %" PRId64 " %" PRId64 " %" PRId64,
                     q->ep, a->tf_after, a->tf_before, a->tl_after, a->tl_before);
    const char *parts[] = {num, a->mode, a->kind ? a->kind : "", a->key, a->types};
    size_t lens[] = {(size_t)n, strlen(a->mode), a->kind ? strlen(a->kind) : 0, strlen(a->key),
                     strlen(a->types)};
    for (size_t i = 0; i < 5; i++) {
        crypto_generichash_update(&st, (const uint8_t *)parts[i], lens[i]);
        crypto_generichash_update(&st, (const uint8_t *)"", 1);
    }
    crypto_generichash_update(&st, (const uint8_t *)a->a, a->alen);
    crypto_generichash_update(&st, (const uint8_t *)"", 1);
    crypto_generichash_update(&st, (const uint8_t *)a->b, a->blen);
    crypto_generichash_final(&st, q->binding, sizeof(q->binding));
    sodium_bin2hex(q->binding_hex, sizeof(q->binding_hex), q->binding, sizeof(q->binding));
}

/* The MAC of a cursor: the query it belongs to, its expiry, its position. */
static void cursor_mac(const query_req *q, const uint8_t exp[8], const char *raw, size_t len,
                       uint8_t mac[CURSOR_MAC]) {
    crypto_generichash_state st;
    crypto_generichash_init(&st, q->api->cursor_key, sizeof(q->api->cursor_key), CURSOR_MAC);
    crypto_generichash_update(&st, q->binding, sizeof(q->binding));
    crypto_generichash_update(&st, exp, 8);
    crypto_generichash_update(&st, (const uint8_t *)raw, len);
    crypto_generichash_final(&st, mac, CURSOR_MAC);
}

/* The opaque cursor for the store's position raw: base64url of
 * MAC || expiry (8 bytes, big-endian Unix seconds) || raw. */
static void cursor_seal(const query_req *q, const char *raw, size_t len, char *out,
                        size_t outlen) {
    uint8_t blob[CURSOR_MAC + 8 + CURSOR_MAX];
    uint64_t exp = (uint64_t)time(NULL) + CURSOR_TTL_S;
    if (len > CURSOR_MAX)
        len = CURSOR_MAX;
    for (int i = 0; i < 8; i++)
        blob[CURSOR_MAC + i] = (uint8_t)(exp >> (56 - 8 * i));
    memcpy(blob + CURSOR_MAC + 8, raw, len);
    cursor_mac(q, blob + CURSOR_MAC, raw, len, blob);
    sodium_bin2base64(out, outlen, blob, CURSOR_MAC + 8 + len,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

/* Checks the cursor the request gave (decoded in q->cursor): ours, for
 * this very query, unaltered and not expired. Sets the store position.
 * Returns 0, or -1 with the reason in err. */
static int cursor_open(query_req *q, char *err, size_t errlen) {
    const uint8_t *b = (const uint8_t *)q->cursor;
    size_t n = q->cursor_blob;
    uint8_t mac[CURSOR_MAC];
    uint64_t exp = 0;
    if (n <= CURSOR_MAC + 8) {
        snprintf(err, errlen, "bad cursor: not one this relay gave (give back the "
                 "X-Cursor of the previous page unchanged)");
        return -1;
    }
    cursor_mac(q, b + CURSOR_MAC, q->cursor + CURSOR_MAC + 8, n - CURSOR_MAC - 8, mac);
    if (sodium_memcmp(mac, b, CURSOR_MAC) != 0) {
        snprintf(err, errlen, "bad cursor: altered, from another query, or from before "
                 "the relay restarted (give back the X-Cursor of the previous page of "
                 "the same query unchanged)");
        return -1;
    }
    for (int i = 0; i < 8; i++)
        exp = exp << 8 | b[CURSOR_MAC + i];
    if (exp < (uint64_t)time(NULL)) {
        snprintf(err, errlen, "bad cursor: expired (cursors live an hour)");
        return -1;
    }
    q->qp.a.cursor = q->cursor + CURSOR_MAC + 8;
    q->qp.a.cursor_len = n - CURSOR_MAC - 8;
    return 0;
}

/* DNSDB's streaming format (SAF): the first line, and the last, which says
 * whether the answer is all there is (with the cursor to go on, if any). */
#define SAF_BEGIN "{\"cond\":\"begin\"}\n"

static int saf_end(pdns_buf *b, int more, const char *cursor) {
    if (!more)
        return pdns_buf_printf(b, "{\"cond\":\"succeeded\"}\n");
    if (cursor && cursor[0])
        return pdns_buf_printf(b, "{\"cond\":\"limited\",\"msg\":\"more results: ask "
                               "again with the cursor\",\"cursor\":\"%s\"}\n", cursor);
    return pdns_buf_printf(b, "{\"cond\":\"limited\",\"msg\":\"Result limit reached\"}\n");
}

static void answer(query_req *q, const redisReply *rep) {
    query_api *api = q->api;
    const redisReply *cur = rep->element[0];
    char cursor_out[CURSOR_MAX * 2];
    cursor_out[0] = '\0';
    if (cur->type == REDIS_REPLY_STRING && cur->len) {
        if (q->ep == QE_PDNS)
            snprintf(cursor_out, sizeof(cursor_out), "%.*s", (int)cur->len, cur->str);
        else
            cursor_seal(q, cur->str, cur->len, cursor_out, sizeof(cursor_out));
    }
    q->body->len = LWS_PRE;
    int rc = 0;
    if (q->json)
        rc |= pdns_buf_append(q->body, "[", 1);
    else if (q->saf)
        rc |= pdns_buf_append(q->body, SAF_BEGIN, strlen(SAF_BEGIN));
    for (size_t i = 1; i + STORE_TRIPLE_ELEMENTS <= rep->elements; i += STORE_TRIPLE_ELEMENTS)
        rc |= put_triple(q, rep->element + i);
    if (q->json) {
        if (q->body->p[q->body->len - 1] == ',')
            q->body->len--; /* the last comma */
        rc |= pdns_buf_append(q->body, "]\n", 2);
    } else if (q->saf) {
        rc |= saf_end(q->body, cursor_out[0] != '\0', cursor_out);
    }
    const char *hdrs[5] = {NULL, NULL, NULL, NULL, NULL};
    if (cursor_out[0]) {
        hdrs[0] = q->ep == QE_PDNS ? "x-dribble-cursor:" : "x-cursor:";
        hdrs[1] = cursor_out;
        if (q->whole) { /* asked for all of it, and this is not all */
            hdrs[2] = "x-pdns-relay-truncated:";
            hdrs[3] = "store.max_limit or store.query_budget reached; page with "
                      "dribble-paginate-count and x-dribble-cursor";
        }
    }
    count(api, q->ep, 200, q->t0_us);
    if (rc < 0 || http_respond(q->wsi, q->body, 200,
                               q->json ? "application/json" : "application/x-ndjson",
                               hdrs) < 0)
        lws_set_timeout(q->wsi, PENDING_TIMEOUT_KILLED_BY_PARENT, LWS_TO_KILL_ASYNC);
}

/* DNSDB v2: SAF, {"cond":"begin"}, one {"obj":...} a result (or one
 * summary), then "succeeded", or "limited" when there is more. */
static void answer_dnsdb(query_req *q, const redisReply *rep) {
    const redisReply *cur = rep->element[0];
    int more = cur->type == REDIS_REPLY_STRING && cur->len;
    size_t skipped = 0, n = 0;
    uint64_t total = 0;
    int64_t tf = 0, tl = 0;
    size_t blen = strlen(q->dd.bailiwick);
    int rc = 0;
    q->body->len = LWS_PRE;
    rc |= pdns_buf_append(q->body, SAF_BEGIN, strlen(SAF_BEGIN));
    for (size_t i = 1; i + STORE_TRIPLE_ELEMENTS <= rep->elements; i += STORE_TRIPLE_ELEMENTS) {
        pdns_record rec;
        if (!read_triple(rep->element + i, &rec))
            continue;
        if (blen && (rec.bailiwick.len != blen || memcmp(rec.bailiwick.p, q->dd.bailiwick, blen)))
            continue;
        if (skipped < q->offset) {
            skipped++;
            continue;
        }
        if (q->dd.verb == DNSDB_SUMMARIZE) {
            if (q->max_count && total >= q->max_count) {
                more = 1;
                break;
            }
            total = pdns_count_add(total, rec.count);
            tf = !n || rec.time_first < tf ? rec.time_first : tf;
            tl = !n || rec.time_last > tl ? rec.time_last : tl;
        } else {
            rc |= cof_encode_dnsdb(&rec, q->dnsdb_flags | (q->dd.rdata ? 0 : DNSDB_RRSET),
                                   q->body);
        }
        n++;
    }
    if (q->dd.verb == DNSDB_SUMMARIZE)
        rc |= pdns_buf_printf(q->body, "{\"obj\":{\"count\":%llu,\"num_results\":%zu,"
                              "\"time_first\":%lld,\"time_last\":%lld}}\n",
                              (unsigned long long)total, n, (long long)tf, (long long)tl);
    rc |= saf_end(q->body, more, NULL);
    count(q->api, q->ep, 200, q->t0_us);
    if (rc < 0 || http_respond(q->wsi, q->body, 200, "application/x-ndjson", NULL) < 0)
        lws_set_timeout(q->wsi, PENDING_TIMEOUT_KILLED_BY_PARENT, LWS_TO_KILL_ASYNC);
}

static void answer_info(query_req *q, const redisReply *rep) {
    query_api *api = q->api;
    json_t *o = json_object(), *sensors = json_array();
    json_object_set_new(o, "version", json_string(PDNS_RELAY_VERSION));
    json_object_set_new(o, "relay_id", json_string(api->relay_id));
    static const char *const k[4] = {"records", "triples", "names", "errors"};
    for (size_t i = 0; i < 4 && i < rep->elements; i++)
        json_object_set_new(o, k[i], json_integer(rep->element[i]->str
                                                      ? strtoll(rep->element[i]->str, NULL, 10)
                                                      : 0));
    for (size_t i = 4; i + 1 < rep->elements; i += 2) {
        json_t *s = json_pack("{s:s%,s:I}", "name", rep->element[i]->str,
                              rep->element[i]->len, "records",
                              (json_int_t)strtoll(rep->element[i + 1]->str, NULL, 10));
        json_array_append_new(sensors, s);
    }
    json_object_set_new(o, "sensors", sensors);
    json_object_set_new(o, "store_buffered", json_integer((json_int_t)store_waiting(api->st)));
    char *t = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    q->body->len = LWS_PRE;
    int rc = t ? pdns_buf_printf(q->body, "%s\n", t) : -1;
    free(t);
    count(api, q->ep, 200, q->t0_us);
    if (rc < 0 || http_respond(q->wsi, q->body, 200, "application/json", NULL) < 0)
        lws_set_timeout(q->wsi, PENDING_TIMEOUT_KILLED_BY_PARENT, LWS_TO_KILL_ASYNC);
}

static void on_reply(void *reply, void *ctx) {
    query_req *q = ctx;
    redisReply *rep = reply;
    if (!q->wsi) { /* the client left */
        req_free(q);
        return;
    }
    if (!rep) {
        fail(q->api, q->wsi, q->body, q->ep, q->t0_us, 503,
             "the store's Redis went away; try again", NULL);
    } else if (rep->type == REDIS_REPLY_ERROR) {
        if (strstr(rep->str, "BADCURSOR FOREIGN"))
            fail(q->api, q->wsi, q->body, q->ep, q->t0_us, 400,
                 "bad cursor: it belongs to another query", NULL);
        else if (strstr(rep->str, "BADCURSOR"))
            fail(q->api, q->wsi, q->body, q->ep, q->t0_us, 400,
                 "bad cursor: unknown or expired (cursors live an hour)", NULL);
        else {
            log_error("query: Redis: %s", rep->str);
            fail(q->api, q->wsi, q->body, q->ep, q->t0_us, 503,
                 "the store failed to answer", NULL);
        }
    } else if (rep->type != REDIS_REPLY_ARRAY || (q->ep != QE_INFO && rep->elements < 1)) {
        fail(q->api, q->wsi, q->body, q->ep, q->t0_us, 503,
             "the store gave an unexpected answer", NULL);
    } else if (q->ep == QE_INFO) {
        answer_info(q, rep);
    } else if (q->ep == QE_DNSDB) {
        answer_dnsdb(q, rep);
    } else {
        answer(q, rep);
    }
    req_free(q);
}

/* A DNSDB v2 parameter (other than limit and the time filters). Returns 1
 * when arg is one and v is good, 0 when arg is none, -1 with err. */
static int dnsdb_param(query_req *q, const char *arg, const char *v, char *err,
                       size_t errlen) {
    char *end;
    if (strcmp(arg, "swclient") == 0 || strcmp(arg, "version") == 0)
        return 1; /* who asks: nothing to do */
    if (strcmp(arg, "aggr") == 0 || strcmp(arg, "humantime") == 0) {
        int t = strcmp(v, "t") == 0 || strcmp(v, "true") == 0 || strcmp(v, "1") == 0;
        int f = strcmp(v, "f") == 0 || strcmp(v, "false") == 0 || strcmp(v, "0") == 0;
        if (!t && !f) {
            snprintf(err, errlen, "%.20s is t or f", arg);
            return -1;
        }
        /* aggr: every result is one triple already, aggregated or not */
        if (arg[0] == 'h' && t)
            q->dnsdb_flags |= DNSDB_HUMANTIME;
        return 1;
    }
    if (strcmp(arg, "offset") == 0 || strcmp(arg, "max_count") == 0) {
        errno = 0;
        unsigned long long x = strtoull(v, &end, 10);
        if (!*v || *end || errno || v[0] == '-' || x > (1ULL << 40)) {
            snprintf(err, errlen, "%.20s: want a number", arg);
            return -1;
        }
        if (arg[0] == 'o')
            q->offset = (size_t)x;
        else
            q->max_count = x;
        return 1;
    }
    return 0;
}

/* Reads the query string and the headers that shape the answer. Returns
 * 0, or -1 with a message in err. */
static int read_params(query_req *q, struct lws *wsi, char *err, size_t errlen) {
    const store_conf *sc = q->api->conf;
    long long limit = (long long)sc->default_limit;
    int limit_given = 0;
    char arg[1200], hv[CURSOR_MAX];
    const char *cursor = NULL;
    for (int i = 0;; i++) {
        int fl = lws_hdr_fragment_length(wsi, WSI_TOKEN_HTTP_URI_ARGS, i);
        if (fl <= 0)
            break;
        if ((size_t)fl >= sizeof(arg)) {
            snprintf(err, errlen, "a query parameter is longer than %zu bytes",
                     sizeof(arg) - 1);
            return -1;
        }
        int n = lws_hdr_copy_fragment(wsi, arg, sizeof(arg), WSI_TOKEN_HTTP_URI_ARGS, i);
        if (n < 0)
            break;
        if (n == 0)
            continue;
        char *eq = strchr(arg, '=');
        const char *v = eq ? eq + 1 : "";
        if (eq)
            *eq = '\0';
        int t;
        if (strcmp(arg, "rrtype") == 0) {
            if (qparse_rrtypes(&q->qp, v, err, errlen) < 0)
                return -1;
        } else if ((t = qparse_time(&q->qp, arg, v, err, errlen)) != 0) {
            if (t < 0)
                return -1;
        } else if (strcmp(arg, "limit") == 0) {
            char *end;
            limit_given = 1;
            limit = strtoll(v, &end, 10);
            if (!*v || *end || limit < 1 || limit > (long long)sc->max_limit) {
                snprintf(err, errlen, "limit out of range (1 .. %zu)", sc->max_limit);
                return -1;
            }
        } else if (strcmp(arg, "cursor") == 0 && q->ep != QE_PDNS && q->ep != QE_DNSDB) {
            size_t bl;
            if (sodium_base642bin((unsigned char *)q->cursor, sizeof(q->cursor) - 1, v,
                                  strlen(v), NULL, &bl, NULL,
                                  sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
                !bl) {
                snprintf(err, errlen, "bad cursor (give back the X-Cursor of "
                         "the previous page unchanged)");
                return -1;
            }
            q->cursor_blob = bl; /* checked once the whole query is read */
        } else if (q->ep == QE_DNSDB && (t = dnsdb_param(q, arg, v, err, errlen)) != 0) {
            if (t < 0)
                return -1;
        } else if (strcmp(arg, "saf") == 0 && q->ep != QE_DNSDB) {
            if (strcmp(v, "0") != 0 && strcmp(v, "1") != 0) {
                snprintf(err, errlen, "saf is 0 or 1");
                return -1;
            }
            q->saf = v[0] == '1';
        } else if (q->ep == QE_DNSDB) {
            snprintf(err, errlen, "unknown parameter \"%.40s\" (limit, offset, "
                     "time_first_after, time_first_before, time_last_after, "
                     "time_last_before, aggr, humantime, max_count, swclient, version)", arg);
            return -1;
        } else {
            snprintf(err, errlen, "unknown parameter \"%.40s\" (rrtype, "
                     "time_first_after, time_first_before, time_last_after, "
                     "time_last_before, limit, cursor, saf)", arg);
            return -1;
        }
    }
    if (q->ep == QE_DNSDB) {
        /* no cursors: offset pages; the store reads offset + limit */
        if (!limit_given)
            limit = DNSDB_DEFAULT_LIMIT < sc->max_limit ? DNSDB_DEFAULT_LIMIT
                                                        : (long long)sc->max_limit;
        if ((size_t)limit + q->offset > sc->max_limit) {
            snprintf(err, errlen, "offset + limit over %zu (store.max_limit)", sc->max_limit);
            return -1;
        }
        q->qp.a.limit = (size_t)limit + q->offset;
        return 0;
    }
    if (q->ep == QE_PDNS) {
        if (lws_hdr_custom_copy(wsi, hv, sizeof(hv), "dribble-filter-rrtype:", 22) > 0 &&
            qparse_rrtypes(&q->qp, hv, err, errlen) < 0)
            return -1;
        int paged = 0;
        if (lws_hdr_custom_copy(wsi, hv, sizeof(hv), "dribble-paginate-count:", 23) > 0) {
            paged = 1;
            char *end;
            limit = strtoll(hv, &end, 10);
            if (*end || limit < 1 || limit > (long long)sc->max_limit) {
                snprintf(err, errlen, "dribble-paginate-count out of range (1 .. %zu)",
                         sc->max_limit);
                return -1;
            }
        }
        if (lws_hdr_custom_copy(wsi, hv, sizeof(hv), "dribble-paginate-cursor:", 24) > 0) {
            char *end;
            unsigned long long c = strtoull(hv, &end, 10);
            if (*end || !c) {
                snprintf(err, errlen, "bad dribble-paginate-cursor (a number from "
                         "x-dribble-cursor)");
                return -1;
            }
            snprintf(q->cursor, sizeof(q->cursor), "%llu", c);
            cursor = q->cursor;
            q->qp.a.cursor_len = strlen(q->cursor);
            paged = 1;
            q->qp.a.binding = q->binding_hex; /* checked by the store script */
        }
        /* no paging: CIRCL answers the whole of it (PyPDNS's query() and
         * dnsdbq rely on that); here all up to store.max_limit, and an
         * answer cut there says so (answer()) */
        if (!paged && !limit_given) {
            limit = (long long)sc->max_limit;
            q->whole = 1;
        }
        /* the next cursor, should there be one: a positive 62-bit number */
        uint64_t id;
        randombytes_buf(&id, sizeof(id));
        snprintf(q->cursor_id, sizeof(q->cursor_id), "%" PRIu64, (id >> 2) | 1);
        q->qp.a.cursor_id = q->cursor_id;
    }
    if (lws_hdr_custom_copy(wsi, hv, sizeof(hv), "x-saf:", 6) > 0)
        q->saf = strcmp(hv, "0") != 0;
    /* CIRCL's /pdns/query answers NDJSON whatever the Accept header says
     * (dnsdbq always sends application/json and reads one object a line);
     * SAF is NDJSON by definition (its last line tells whether it is all) */
    if (q->ep != QE_PDNS && !q->saf && lws_hdr_copy(wsi, hv, sizeof(hv), WSI_TOKEN_HTTP_ACCEPT) > 0 &&
        strstr(hv, "application/json") && !strstr(hv, "ndjson"))
        q->json = 1;
    q->qp.a.cursor = cursor;
    q->qp.a.limit = (size_t)limit;
    bind_query(q);
    if (q->ep == QE_PDNS)
        q->qp.a.binding = q->binding_hex;
    if (q->cursor_blob && cursor_open(q, err, errlen) < 0)
        return -1;
    return 0;
}

/* The request is parsed; auth has decided (st: 200, 401 or 429). Sends
 * the error, or the store lookup. Returns 0, or -1 to close. On any answer
 * other than a lookup in flight, q is freed. */
static int proceed(query_req *q, int st, const char *who, int retry) {
    query_api *api = q->api;
    struct lws *wsi = q->wsi;
    pdns_buf *body = q->body;
    int ep = q->ep;
    uint64_t t0 = q->t0_us;
    char ra[16];
    int rc;
    if (st == 401) {
        const char *h[] = {"www-authenticate:", "Basic realm=\"pdns-relay\"", NULL};
        req_free(q);
        return fail(api, wsi, body, ep, t0, 401, who, h);
    }
    if (st == 429) {
        snprintf(ra, sizeof(ra), "%d", retry);
        const char *h[] = {"retry-after:", ra, NULL};
        req_free(q);
        return fail(api, wsi, body, ep, t0, 429, who, h);
    }
    if (q->bad[0]) {
        char err[sizeof(q->bad)];
        memcpy(err, q->bad, sizeof(err));
        req_free(q);
        return fail(api, wsi, body, ep, t0, 400, err, NULL);
    }
    if (ep == QE_DNSDB && (q->dd.verb == DNSDB_PING || q->dd.verb == DNSDB_RATE_LIMIT)) {
        int ping = q->dd.verb == DNSDB_PING;
        req_free(q);
        body->len = LWS_PRE;
        if (pdns_buf_printf(body, "%s\n", ping ? "{\"ping\":\"ok\"}"
                            : "{\"rate\":{\"reset\":\"n/a\",\"limit\":\"unlimited\","
                              "\"remaining\":\"n/a\"}}") < 0)
            return -1;
        count(api, ep, 200, t0);
        return http_respond(wsi, body, 200, "application/json", NULL);
    }
    if (!api->st) {
        req_free(q);
        return fail(api, wsi, body, ep, t0, 503, "the store is disabled "
                    "(store.enabled is false)", NULL);
    }
    rc = ep == QE_INFO ? store_info(api->st, on_reply, q)
                       : store_query(api->st, &q->qp.a, on_reply, q);
    if (rc < 0) {
        req_free(q);
        return fail(api, wsi, body, ep, t0, 503, "the store's Redis is not "
                    "connected; try again", NULL);
    }
    log_debug("query: %s by %s", ep_name[ep], who);
    return 0;
}

/* A credential was verified on the thread pool. */
static void on_auth(void *ctx, int st, const char *who, int retry) {
    query_req *q = ctx;
    if (!q->wsi) { /* the client left meanwhile */
        req_free(q);
        return;
    }
    struct lws *wsi = q->wsi;
    if (proceed(q, st, who, retry) < 0)
        lws_set_timeout(wsi, PENDING_TIMEOUT_KILLED_BY_PARENT, LWS_TO_KILL_ASYNC);
}

int query_begin(query_api *api, struct lws *wsi, int ep, const char *path,
                pdns_buf *body, query_req **slot) {
    char who[160];
    int retry = 0;
    query_req *q = calloc(1, sizeof(*q));
    if (!q)
        return -1;
    q->wsi = wsi;
    q->api = api;
    q->body = body;
    q->ep = ep;
    q->t0_us = now_us();
    q->slot = slot;
    *slot = q;
    /* everything the request says is read now (the headers may not
     * outlive an asynchronous wait); a parse error is answered after the
     * credentials are, so that only users learn what is wrong */
    if (ep == QE_DNSDB) {
        if (qparse_dnsdb(&q->qp, path + 10, &q->dd, q->bad, sizeof(q->bad)) < 0 ||
            (q->dd.verb <= DNSDB_SUMMARIZE && read_params(q, wsi, q->bad, sizeof(q->bad)) < 0)) {
            if (!q->bad[0])
                snprintf(q->bad, sizeof(q->bad), "bad request");
        }
    } else if (ep != QE_INFO) {
        const char *s = path + (ep == QE_PDNS ? 12 : ep == QE_ERRORS ? 8 : 7);
        int form = ep == QE_RDATA ? QP_RDATA : ep == QE_ERRORS ? QP_ERRORS : QP_QUERY;
        if (qparse_query(&q->qp, s, strlen(s), form, q->bad, sizeof(q->bad)) < 0 ||
            read_params(q, wsi, q->bad, sizeof(q->bad)) < 0) {
            if (!q->bad[0])
                snprintf(q->bad, sizeof(q->bad), "bad request");
        }
    }
    int st = http_auth_check(api->auth, wsi, who, sizeof(who), &retry, on_auth, q);
    if (st == 0)
        return 0; /* on_auth goes on */
    return proceed(q, st, who, retry);
}

int query_metrics_render(const query_metrics *m, pdns_buf *b) {
    int rc = pdns_buf_printf(b, "# HELP pdns_relay_queries_total Query API requests, by endpoint and status.\n"
                                "# TYPE pdns_relay_queries_total counter\n");
    for (int e = 0; e < QE_COUNT; e++)
        for (int s = 0; s < 6; s++)
            if (m->by_status[e][s] || s == 0)
                rc |= pdns_buf_printf(b, "pdns_relay_queries_total{endpoint=\"%s\",status=\"%s\"} %" PRIu64 "\n",
                                      ep_name[e], status_name[s],
                                      m->by_status[e][s]);
    rc |= pdns_hist_render(&m->lat, "pdns_relay_query_latency_seconds",
                           "Query API answer time.", b);
    return rc ? -1 : 0;
}
