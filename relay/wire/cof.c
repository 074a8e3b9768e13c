/* cof.c - COF encoder (hand-written, on the hot path) and decoder (a fast
 * reader for the flat objects relays write, jansson for everything else). */
#include "cof.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

/* rdata as DNSDB writes it: names with their final dot, also those inside
 * the master-file forms of MX, SRV and SOA. */
static int put_dnsdb_rdata(pdns_buf *b, uint16_t rrtype, const char *s, size_t n) {
    char tmp[1300];
    size_t o = 0;
    int f = 0;
    if (!pdns_rrtype_rdata_is_name(rrtype) || n + 16 >= sizeof(tmp))
        return put_str(b, s, n);
    for (size_t i = 0; i <= n; i++) {
        if (i < n && s[i] != ' ') {
            tmp[o++] = s[i];
            continue;
        }
        int is_name = memchr(s, ' ', n) ? pdns_rdata_field_is_name(rrtype, f) : 1;
        if (is_name && o && tmp[o - 1] != '.')
            tmp[o++] = '.';
        if (i < n)
            tmp[o++] = ' ';
        f++;
    }
    return put_str(b, tmp, o);
}

/* A name with its final dot, as DNSDB writes names. */
static int put_fqdn(pdns_buf *b, const char *s, size_t n) {
    char tmp[1100];
    if (n == 0 || n >= sizeof(tmp) || s[n - 1] == '.')
        return put_str(b, s, n);
    memcpy(tmp, s, n);
    tmp[n] = '.';
    return put_str(b, tmp, n + 1);
}

static int put_time(pdns_buf *b, const char *key, int64_t t, int human) {
    char v[48];
    struct tm tm;
    time_t tt = (time_t)t;
    if (!human)
        return put_i64(b, key, t);
    if (!gmtime_r(&tt, &tm))
        return -1;
    strftime(v, sizeof(v), "%Y-%m-%dT%H:%M:%SZ", &tm);
    return put_lit(b, ",\"") || put_lit(b, key) || put_lit(b, "\":") ||
           put_str(b, v, strlen(v));
}

int cof_encode_dnsdb(const pdns_record *r, unsigned flags, pdns_buf *out) {
    char t[16];
    size_t mark = out->len;
    int human = (flags & DNSDB_HUMANTIME) != 0;
    /* put_i64 writes a leading comma: the first field is written by hand */
    int rc = put_lit(out, "{\"obj\":{\"count\":") ||
             pdns_buf_printf(out, "%llu", (unsigned long long)pdns_count_clamp(r->count)) ||
             put_time(out, "time_first", r->time_first, human) ||
             put_time(out, "time_last", r->time_last, human) ||
             put_lit(out, ",\"rrname\":") || put_fqdn(out, r->rrname.p, r->rrname.len) ||
             put_lit(out, ",\"rrtype\":");
    if (!rc) {
        size_t tl = pdns_rrtype_name(r->rrtype)
                        ? pdns_rrtype_format(r->rrtype, t, sizeof(t))
                        : (size_t)snprintf(t, sizeof(t), "TYPE%u", r->rrtype); /* RFC 3597 */
        rc = put_str(out, t, tl);
    }
    if (!rc && (flags & DNSDB_RRSET) && r->bailiwick.len)
        rc = put_lit(out, ",\"bailiwick\":") || put_fqdn(out, r->bailiwick.p, r->bailiwick.len);
    rc = rc || put_lit(out, (flags & DNSDB_RRSET) ? ",\"rdata\":[" : ",\"rdata\":") ||
         put_dnsdb_rdata(out, r->rrtype, r->rdata.p, r->rdata.len) ||
         put_lit(out, (flags & DNSDB_RRSET) ? "]}}\n" : "}}\n");
    if (rc) {
        out->len = mark;
        return -1;
    }
    return 0;
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
         (!(flags & COF_NO_COUNT) && put_i64(out, "count", (int64_t)pdns_count_clamp(r->count)));
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

/* The fields of one COF object, from either reader below, before any
 * check of their meaning. Strings point into the line or into jansson's
 * object; rrtype is a number (rrtype_s.p NULL) or a name. */
enum { HAVE_COUNT = 1, HAVE_TFM = 2, HAVE_TLM = 4 };
typedef struct cof_fields {
    pdns_str rrname, rrtype_s, bailiwick, sensor_id, origin;
    int64_t rrtype_n, time_first, time_last, count, tfm, tlm;
    unsigned have;
    size_t n_rdata;
    pdns_str *rdata;
    pdns_str rdata_small[8];
} cof_fields;

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

/* What the fields mean: the checks both readers share, then the triples. */
static int fields_emit(const cof_fields *f, const pdns_record *r_init,
                       cof_emit_fn emit, void *ctx, char *err, size_t errlen) {
    pdns_record r = *r_init;
    char name[1100];
    const char *why;
    if (f->rrname.len >= sizeof(name)) {
        snprintf(err, errlen, "field \"rrname\" must be a string of at most "
                 "1024 bytes");
        return -1;
    }
    memcpy(name, f->rrname.p, f->rrname.len);
    r.rrname.p = name;
    r.rrname.len = f->rrname.len;
    if (pdns_name_canon(name, &r.rrname.len, &why) < 0) {
        snprintf(err, errlen, "rrname: %s", why);
        return -1;
    }
    if (f->rrtype_s.p ? pdns_rrtype_parse(f->rrtype_s.p, f->rrtype_s.len, &r.rrtype) < 0
                      : f->rrtype_n < 0 || f->rrtype_n > 65535) {
        snprintf(err, errlen, "field \"rrtype\" is not a known type name or a "
                 "number 0-65535");
        return -1;
    }
    if (!f->rrtype_s.p)
        r.rrtype = (uint16_t)f->rrtype_n;
    const char *neg = f->time_first < 0 ? "time_first" : f->time_last < 0 ? "time_last"
                    : (f->have & HAVE_COUNT) && f->count < 0 ? "count"
                    : (f->have & HAVE_TFM) && f->tfm < 0 ? "time_first_ms"
                    : (f->have & HAVE_TLM) && f->tlm < 0 ? "time_last_ms" : NULL;
    if (neg) {
        snprintf(err, errlen, "field \"%s\" must not be negative", neg);
        return -1;
    }
    r.time_first = f->time_first;
    r.time_last = f->time_last;
    if (r.time_last < r.time_first) {
        snprintf(err, errlen, "time_last is before time_first");
        return -1;
    }
    r.count = (f->have & HAVE_COUNT) ? pdns_count_clamp((uint64_t)f->count) : 1;
    r.has_ms = (f->have & (HAVE_TFM | HAVE_TLM)) == (HAVE_TFM | HAVE_TLM);
    if (r.has_ms) {
        r.time_first_ms = f->tfm;
        r.time_last_ms = f->tlm;
    }
    if (f->bailiwick.p)
        r.bailiwick = f->bailiwick;
    if (f->sensor_id.p)
        r.sensor_id = f->sensor_id;
    if (f->origin.p)
        r.origin = f->origin;
    r.is_error = 0;
    for (size_t i = 0; i < f->n_rdata; i++)
        if (emit_one(&r, f->rdata[i].p, f->rdata[i].len, emit, ctx, err, errlen) < 0)
            return -1;
    return (int)f->n_rdata;
}

/* ---- the general reader (jansson) ---------------------------------------- */

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

/* Fills f from a jansson object; f->rdata may be malloc'ed (see below). */
static int json_fields(json_t *o, cof_fields *f, char *err, size_t errlen) {
    if (!json_is_object(o)) {
        snprintf(err, errlen, "not a JSON object");
        return -1;
    }
    json_t *jn = json_object_get(o, "rrname");
    json_t *jt = json_object_get(o, "rrtype");
    json_t *jd = json_object_get(o, "rdata");
    if (!jn || !jt || !jd) {
        snprintf(err, errlen, "missing mandatory field \"%s\"",
                 !jn ? "rrname" : !jt ? "rrtype" : "rdata");
        return -1;
    }
    if (!json_is_string(jn)) {
        snprintf(err, errlen, "field \"rrname\" must be a string of at most "
                 "1024 bytes");
        return -1;
    }
    f->rrname.p = json_string_value(jn);
    f->rrname.len = json_string_length(jn);
    if (json_is_string(jt)) {
        f->rrtype_s.p = json_string_value(jt);
        f->rrtype_s.len = json_string_length(jt);
    } else {
        f->rrtype_n = json_is_integer(jt) ? (int64_t)json_integer_value(jt) : -1;
    }
    int64_t v;
    if (get_time(o, "time_first", &f->time_first, 1, err, errlen) < 0 ||
        get_time(o, "time_last", &f->time_last, 1, err, errlen) < 0)
        return -1;
    int rc;
    if ((rc = get_time(o, "count", &v, 0, err, errlen)) < 0)
        return -1;
    if (rc == 0) {
        f->have |= HAVE_COUNT;
        f->count = v;
    }
    if ((rc = get_time(o, "time_first_ms", &f->tfm, 0, err, errlen)) < 0)
        return -1;
    f->have |= rc == 0 ? HAVE_TFM : 0;
    if ((rc = get_time(o, "time_last_ms", &f->tlm, 0, err, errlen)) < 0)
        return -1;
    f->have |= rc == 0 ? HAVE_TLM : 0;
    if (get_opt_str(o, "bailiwick", &f->bailiwick, err, errlen) < 0 ||
        get_opt_str(o, "sensor_id", &f->sensor_id, err, errlen) < 0 ||
        get_opt_str(o, "origin", &f->origin, err, errlen) < 0)
        return -1;
    if (json_is_string(jd)) {
        f->rdata[0].p = json_string_value(jd);
        f->rdata[0].len = json_string_length(jd);
        f->n_rdata = 1;
        return 0;
    }
    if (!json_is_array(jd) || json_array_size(jd) == 0) {
        snprintf(err, errlen, "field \"rdata\" must be a string or a "
                 "non-empty array of strings");
        return -1;
    }
    size_t i, n = json_array_size(jd);
    json_t *e;
    if (n > sizeof(f->rdata_small) / sizeof(f->rdata_small[0]) &&
        !(f->rdata = malloc(n * sizeof(*f->rdata)))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    json_array_foreach(jd, i, e) {
        if (!json_is_string(e)) {
            snprintf(err, errlen, "rdata[%zu] must be a string", i);
            return -1;
        }
        f->rdata[i].p = json_string_value(e);
        f->rdata[i].len = json_string_length(e);
    }
    f->n_rdata = n;
    return 0;
}

int cof_decode_json(const char *line, size_t len, const pdns_record *r_init,
                    cof_emit_fn emit, void *ctx, char *err, size_t errlen) {
    json_error_t je;
    cof_fields f = {0};
    f.rdata = f.rdata_small;
    err[0] = '\0';
    json_t *o = json_loadb(line, len, JSON_REJECT_DUPLICATES, &je);
    if (!o) {
        snprintf(err, errlen, "column %d: %s", je.column, je.text);
        return -1;
    }
    int n = json_fields(o, &f, err, errlen) < 0
                ? -1 : fields_emit(&f, r_init, emit, ctx, err, errlen);
    if (f.rdata != f.rdata_small)
        free(f.rdata);
    json_decref(o);
    return n;
}

/* ---- the fast reader -------------------------------------------------------
 * Reads the objects this relay and its peers write: one flat object, known
 * keys once each, strings without escapes, control or non-ASCII bytes,
 * non-negative integers, rdata a string or up to 8 strings. Anything else
 * (and every malformed line) returns 0 and goes to the general reader, which
 * has the error messages; fuzz_cof checks that both agree where this one
 * answers. */

static const char *ws(const char *p, const char *e) {
    while (p < e && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

static const char *fast_str(const char *p, const char *e, pdns_str *s) {
    if (p >= e || *p != '"')
        return NULL;
    const char *q = ++p;
    while (q < e && *q != '"') {
        unsigned char c = (unsigned char)*q;
        if (c < 0x20 || c >= 0x80 || c == '\\')
            return NULL;
        q++;
    }
    if (q >= e)
        return NULL;
    s->p = p;
    s->len = (size_t)(q - p);
    return q + 1;
}

static const char *fast_int(const char *p, const char *e, int64_t *v) {
    const char *q = p;
    int64_t x = 0;
    while (q < e && *q >= '0' && *q <= '9' && q - p < 18)
        x = x * 10 + (*q++ - '0');
    if (q == p || (q - p > 1 && *p == '0') ||
        (q < e && ((*q >= '0' && *q <= '9') || *q == '.' || *q == 'e' || *q == 'E')))
        return NULL;
    *v = x;
    return q;
}

/* After a value: a ',' (*more = 1) or the closing bracket (*more = 0). */
static const char *fast_next(const char *p, const char *e, char close, int *more) {
    p = ws(p, e);
    if (p >= e || (*p != ',' && *p != close))
        return NULL;
    *more = *p == ',';
    return p + 1;
}

static const char *const fast_keys[] = {
    "rrname", "rrtype", "rdata", "time_first", "time_last", "count",
    "time_first_ms", "time_last_ms", "bailiwick", "sensor_id", "origin"};

static int fast_fields(const char *line, size_t len, cof_fields *f) {
    const char *p = line, *e = line + len;
    unsigned seen = 0;
    int more;
    p = ws(p, e);
    if (p >= e || *p++ != '{')
        return 0;
    for (;;) {
        pdns_str k;
        size_t i;
        p = ws(p, e);
        if (!(p = fast_str(p, e, &k)))
            return 0;
        for (i = 0; i < sizeof(fast_keys) / sizeof(fast_keys[0]); i++)
            if (strlen(fast_keys[i]) == k.len && memcmp(fast_keys[i], k.p, k.len) == 0)
                break;
        if (i == sizeof(fast_keys) / sizeof(fast_keys[0]) || (seen & (1u << i)))
            return 0;
        seen |= 1u << i;
        p = ws(p, e);
        if (p >= e || *p++ != ':')
            return 0;
        p = ws(p, e);
        if (p >= e)
            return 0;
        switch (i) {
        case 0: p = fast_str(p, e, &f->rrname); break;
        case 1: p = *p == '"' ? fast_str(p, e, &f->rrtype_s) : fast_int(p, e, &f->rrtype_n);
                break;
        case 2:
            if (*p == '"') {
                p = fast_str(p, e, &f->rdata[0]);
                f->n_rdata = 1;
                break;
            }
            if (*p++ != '[')
                return 0;
            for (;;) {
                if (f->n_rdata == sizeof(f->rdata_small) / sizeof(f->rdata_small[0]))
                    return 0;
                if (!(p = fast_str(ws(p, e), e, &f->rdata[f->n_rdata++])) ||
                    !(p = fast_next(p, e, ']', &more)))
                    return 0;
                if (!more)
                    break;
            }
            break;
        case 3: p = fast_int(p, e, &f->time_first); break;
        case 4: p = fast_int(p, e, &f->time_last); break;
        case 5: p = fast_int(p, e, &f->count); f->have |= HAVE_COUNT; break;
        case 6: p = fast_int(p, e, &f->tfm); f->have |= HAVE_TFM; break;
        case 7: p = fast_int(p, e, &f->tlm); f->have |= HAVE_TLM; break;
        case 8: p = fast_str(p, e, &f->bailiwick); break;
        case 9: p = fast_str(p, e, &f->sensor_id); break;
        default: p = fast_str(p, e, &f->origin); break;
        }
        if (!p || !(p = fast_next(p, e, '}', &more)))
            return 0;
        if (!more)
            break;
    }
    return ws(p, e) == e && (seen & 0x1f) == 0x1f; /* rrname..time_last */
}

int cof_decode(const char *line, size_t len, const pdns_record *r_init,
               cof_emit_fn emit, void *ctx, char *err, size_t errlen) {
    cof_fields f = {0};
    f.rdata = f.rdata_small;
    err[0] = '\0';
    if (!fast_fields(line, len, &f))
        return cof_decode_json(line, len, r_init, emit, ctx, err, errlen);
    return fields_emit(&f, r_init, emit, ctx, err, errlen);
}
