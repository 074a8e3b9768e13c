/* cof.c - COF encoder (hand-written, on the hot path) and decoder
 * (jansson). */
#include "cof.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "rrtype.h"

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n) {
    unsigned char c = s[0];
    size_t len;
    uint32_t cp;
    if (c < 0x80)
        return 1;
    if ((c & 0xe0) == 0xc0) {
        len = 2;
        cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
        len = 3;
        cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
        len = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
        (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

/* Appends s as a JSON string (with quotes). */
static int put_str(pdns_buf *b, const char *s, size_t n) {
    static const char hex[] = "0123456789abcdef";
    /* worst case: every byte becomes \\DDD (5) or \u00XX (6) */
    if (pdns_buf_reserve(b, n * 6 + 2) < 0)
        return -1;
    char *o = b->p + b->len;
    *o++ = '"';
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        unsigned char c = u[i];
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            *o++ = (char)c;
            i++;
        } else if (c == '"' || c == '\\') {
            *o++ = '\\';
            *o++ = (char)c;
            i++;
        } else if (c < 0x20 || c == 0x7f) {
            *o++ = '\\';
            if (c == '\t') {
                *o++ = 't';
            } else if (c == '\n') {
                *o++ = 'n';
            } else if (c == '\r') {
                *o++ = 'r';
            } else {
                memcpy(o, "u00", 3);
                o += 3;
                *o++ = hex[c >> 4];
                *o++ = hex[c & 15];
            }
            i++;
        } else {
            size_t k = utf8_seq(u + i, n - i);
            if (k) {
                memcpy(o, u + i, k);
                o += k;
                i += k;
            } else { /* not UTF-8: presentation escape, JSON-escaped */
                *o++ = '\\';
                *o++ = '\\';
                *o++ = (char)('0' + c / 100);
                *o++ = (char)('0' + c / 10 % 10);
                *o++ = (char)('0' + c % 10);
                i++;
            }
        }
    }
    *o++ = '"';
    b->len = (size_t)(o - b->p);
    return 0;
}

static int put_lit(pdns_buf *b, const char *s) {
    return pdns_buf_append(b, s, strlen(s));
}

/* Appends ,"key":v (no printf: this runs for every field of every
 * record). */
static int put_i64(pdns_buf *b, const char *key, int64_t v) {
    char tmp[64], digits[24];
    size_t kl = strlen(key), n = 0, d = 0;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    tmp[n++] = ',';
    tmp[n++] = '"';
    memcpy(tmp + n, key, kl);
    n += kl;
    tmp[n++] = '"';
    tmp[n++] = ':';
    if (v < 0)
        tmp[n++] = '-';
    do {
        digits[d++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    while (d)
        tmp[n++] = digits[--d];
    return pdns_buf_append(b, tmp, n);
}

int cof_encode(const pdns_record *r, unsigned flags, pdns_buf *out) {
    char t[16];
    size_t mark = out->len;
    int rc = put_lit(out, "{\"rrname\":") ||
             put_str(out, r->rrname.p, r->rrname.len) ||
             put_lit(out, ",\"rrtype\":");
    if (!rc) {
        size_t tl = pdns_rrtype_format(r->rrtype, t, sizeof(t));
        rc = pdns_rrtype_name(r->rrtype) ? put_str(out, t, tl)
                                         : pdns_buf_append(out, t, tl);
    }
    rc = rc || put_lit(out, ",\"rdata\":") ||
         put_str(out, r->rdata.p, r->rdata.len) ||
         put_i64(out, "time_first", r->time_first) ||
         put_i64(out, "time_last", r->time_last) ||
         (!(flags & COF_NO_COUNT) && put_i64(out, "count", (int64_t)r->count));
    if (!rc && r->bailiwick.len)
        rc = put_lit(out, ",\"bailiwick\":") ||
             put_str(out, r->bailiwick.p, r->bailiwick.len);
    if (!rc && (flags & COF_WITH_SENSOR) && r->sensor_id.len)
        rc = put_lit(out, ",\"sensor_id\":") ||
             put_str(out, r->sensor_id.p, r->sensor_id.len);
    if (!rc && (flags & COF_WITH_ORIGIN) && r->origin.len)
        rc = put_lit(out, ",\"origin\":") ||
             put_str(out, r->origin.p, r->origin.len);
    if (!rc && (flags & COF_WITH_MS) && r->has_ms)
        rc = put_i64(out, "time_first_ms", r->time_first_ms) ||
             put_i64(out, "time_last_ms", r->time_last_ms);
    rc = rc || put_lit(out, "}\n");
    if (rc) {
        out->len = mark;
        return -1;
    }
    return 0;
}

/* ---- decoder ------------------------------------------------------------ */

static int get_time(json_t *o, const char *key, int64_t *v, int required,
                    char *err, size_t errlen) {
    json_t *j = json_object_get(o, key);
    if (!j) {
        if (required)
            snprintf(err, errlen, "missing mandatory field \"%s\"", key);
        return required ? -1 : 1;
    }
    if (json_is_integer(j)) {
        *v = (int64_t)json_integer_value(j);
    } else if (json_is_real(j) && json_real_value(j) >= -9.2e18 &&
               json_real_value(j) <= 9.2e18) {
        *v = (int64_t)json_real_value(j);
    } else {
        snprintf(err, errlen, "field \"%s\" must be a number", key);
        return -1;
    }
    if (*v < 0) {
        snprintf(err, errlen, "field \"%s\" must not be negative", key);
        return -1;
    }
    return 0;
}

static int get_opt_str(json_t *o, const char *key, pdns_str *s, char *err,
                       size_t errlen) {
    json_t *j = json_object_get(o, key);
    if (!j || json_is_null(j))
        return 0;
    if (!json_is_string(j)) {
        snprintf(err, errlen, "field \"%s\" must be a string", key);
        return -1;
    }
    s->p = json_string_value(j);
    s->len = json_string_length(j);
    return 0;
}

static int get_rrtype(json_t *j, uint16_t *t, char *err, size_t errlen) {
    if (json_is_integer(j) && json_integer_value(j) >= 0 &&
        json_integer_value(j) <= 65535) {
        *t = (uint16_t)json_integer_value(j);
        return 0;
    }
    if (json_is_string(j) &&
        pdns_rrtype_parse(json_string_value(j), json_string_length(j), t) == 0)
        return 0;
    snprintf(err, errlen, "field \"rrtype\" is not a known type name or a "
             "number 0-65535");
    return -1;
}

/* Normalises and emits one triple. */
static int emit_one(pdns_record *r, const char *rdata, size_t rdlen,
                    cof_emit_fn emit, void *ctx, char *err, size_t errlen) {
    char buf[4096];
    const char *why;
    if (rdlen == 0) {
        snprintf(err, errlen, "empty rdata");
        return -1;
    }
    if (rdlen < sizeof(buf)) {
        memcpy(buf, rdata, rdlen);
        r->rdata.p = buf;
        r->rdata.len = rdlen;
        if (pdns_rdata_normalize(r, buf, &why) < 0) {
            snprintf(err, errlen, "rdata: %s", why);
            return -1;
        }
    } else { /* long TXT and the like: kept as given */
        r->rdata.p = rdata;
        r->rdata.len = rdlen;
    }
    if (emit(ctx, r) != 0) {
        snprintf(err, errlen, "rejected by consumer");
        return -1;
    }
    return 0;
}

int cof_decode(const char *line, size_t len, const pdns_record *r_init,
               cof_emit_fn emit, void *ctx, char *err, size_t errlen) {
    json_error_t je;
    pdns_record r = *r_init;
    char name[1100];
    int n = -1;
    err[0] = '\0';
    json_t *o = json_loadb(line, len, JSON_REJECT_DUPLICATES, &je);
    if (!o) {
        snprintf(err, errlen, "column %d: %s", je.column, je.text);
        return -1;
    }
    if (!json_is_object(o)) {
        snprintf(err, errlen, "not a JSON object");
        goto out;
    }
    json_t *jn = json_object_get(o, "rrname");
    json_t *jt = json_object_get(o, "rrtype");
    json_t *jd = json_object_get(o, "rdata");
    if (!jn || !jt || !jd) {
        snprintf(err, errlen, "missing mandatory field \"%s\"",
                 !jn ? "rrname" : !jt ? "rrtype" : "rdata");
        goto out;
    }
    if (!json_is_string(jn) || json_string_length(jn) >= sizeof(name)) {
        snprintf(err, errlen, "field \"rrname\" must be a string of at most "
                 "1024 bytes");
        goto out;
    }
    const char *why;
    r.rrname.len = json_string_length(jn);
    memcpy(name, json_string_value(jn), r.rrname.len);
    r.rrname.p = name;
    if (pdns_name_canon(name, &r.rrname.len, &why) < 0) {
        snprintf(err, errlen, "rrname: %s", why);
        goto out;
    }
    if (get_rrtype(jt, &r.rrtype, err, errlen) < 0 ||
        get_time(o, "time_first", &r.time_first, 1, err, errlen) < 0 ||
        get_time(o, "time_last", &r.time_last, 1, err, errlen) < 0)
        goto out;
    if (r.time_last < r.time_first) {
        snprintf(err, errlen, "time_last is before time_first");
        goto out;
    }
    int64_t c = 1;
    if (get_time(o, "count", &c, 0, err, errlen) < 0)
        goto out;
    r.count = (uint64_t)c;
    r.has_ms = 0;
    if (get_time(o, "time_first_ms", &r.time_first_ms, 0, err, errlen) == 0 &&
        get_time(o, "time_last_ms", &r.time_last_ms, 0, err, errlen) == 0)
        r.has_ms = 1;
    if (*err)
        goto out;
    if (get_opt_str(o, "bailiwick", &r.bailiwick, err, errlen) < 0 ||
        get_opt_str(o, "sensor_id", &r.sensor_id, err, errlen) < 0 ||
        get_opt_str(o, "origin", &r.origin, err, errlen) < 0)
        goto out;
    r.is_error = 0;
    if (json_is_string(jd)) {
        if (emit_one(&r, json_string_value(jd), json_string_length(jd), emit,
                     ctx, err, errlen) < 0)
            goto out;
        n = 1;
    } else if (json_is_array(jd) && json_array_size(jd) > 0) {
        size_t i;
        json_t *v;
        json_array_foreach(jd, i, v) {
            if (!json_is_string(v)) {
                snprintf(err, errlen, "rdata[%zu] must be a string", i);
                goto out;
            }
        }
        json_array_foreach(jd, i, v) {
            if (emit_one(&r, json_string_value(v), json_string_length(v), emit,
                         ctx, err, errlen) < 0)
                goto out;
        }
        n = (int)json_array_size(jd);
    } else {
        snprintf(err, errlen, "field \"rdata\" must be a string or a "
                 "non-empty array of strings");
    }
out:
    json_decref(o);
    return n;
}
