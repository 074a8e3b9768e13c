/* qparse.c - COF query strings to store lookups. See qparse.h. */
#include "qparse.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <idn2.h>
#include <sodium.h>

#include "record.h"
#include "rrtype.h"

/* Checks a name in presentation format (UTF-8 becomes A-labels) and makes
 * it canonical into out, as pdns_name_canon does every record's name.
 * Returns its length, or 0 with err. */
static size_t check_name(const char *q, size_t len, char *out, char *err,
                         size_t errlen) {
    const char *why;
    char utf8[512];
    char *ace = NULL;
    /* an internationalised name (UTF-8) is looked up as its A-labels */
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)q[i] < 0x80)
            continue;
        if (len >= sizeof(utf8)) {
            snprintf(err, errlen, "name longer than 255 bytes");
            return 0;
        }
        memcpy(utf8, q, len);
        utf8[len] = '\0';
        int rc = idn2_to_ascii_8z(utf8, &ace, IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL);
        if (rc != IDN2_OK) {
            snprintf(err, errlen, "bad internationalised name: %s", idn2_strerror(rc));
            return 0;
        }
        q = ace;
        len = strlen(ace);
        break;
    }
    if (len > 255) {
        snprintf(err, errlen, "name longer than 255 bytes");
        idn2_free(ace);
        return 0;
    }
    memcpy(out, q, len);
    idn2_free(ace);
    /* one spelling of each name, as every record's: no empty label,
     * labels of at most 63 bytes, at most 255 on the wire */
    if (pdns_name_canon(out, &len, &why) < 0) {
        snprintf(err, errlen, "bad name: %s", why);
        return 0;
    }
    out[len] = '\0';
    return len;
}

static void set_range(qparse *p, const char *mode, const char *kind,
                      size_t alen, size_t blen) {
    p->a.mode = mode;
    p->a.kind = kind;
    p->a.a = p->abuf;
    p->a.alen = alen;
    p->a.b = p->bbuf;
    p->a.blen = blen;
}

/* An address or a CIDR prefix: a range of the IP index. */
static int parse_ip(qparse *p, const char *q, size_t len, char *err,
                    size_t errlen) {
    char tmp[64];
    uint8_t a[16];
    const char *slash = memchr(q, '/', len);
    size_t alen = slash ? (size_t)(slash - q) : len;
    if (alen >= sizeof(tmp))
        goto bad;
    memcpy(tmp, q, alen);
    tmp[alen] = '\0';
    int fam = strchr(tmp, ':') ? AF_INET6 : AF_INET;
    int bits = fam == AF_INET ? 32 : 128, plen = bits;
    if (inet_pton(fam, tmp, a) != 1)
        goto bad;
    if (slash) {
        char *end;
        errno = 0;
        long v = strtol(slash + 1, &end, 10);
        if (end == slash + 1 || end != q + len || v < 0 || v > bits || errno) {
            snprintf(err, errlen, "bad CIDR prefix length (want 0..%d)", bits);
            return -1;
        }
        plen = (int)v;
    }
    int nbytes = bits / 8;
    uint8_t lo[16], hi[16];
    for (int i = 0; i < nbytes; i++) {
        int keep = plen - 8 * i;
        uint8_t mask = keep >= 8 ? 0xff : keep <= 0 ? 0 : (uint8_t)(0xff << (8 - keep));
        lo[i] = a[i] & mask;
        hi[i] = (uint8_t)(a[i] | (uint8_t)~mask);
    }
    if (slash && memcmp(lo, a, (size_t)nbytes) != 0) {
        snprintf(err, errlen, "bad CIDR: host bits set (did you mean %s/%d?)",
                 inet_ntop(fam, lo, tmp, sizeof(tmp)) ? tmp : "?", plen);
        return -1;
    }
    static const char hex[] = "0123456789abcdef";
    char *x = p->abuf, *y = p->bbuf;
    *x++ = *y++ = fam == AF_INET ? '4' : '6';
    for (int i = 0; i < nbytes; i++) {
        *x++ = hex[lo[i] >> 4];
        *x++ = hex[lo[i] & 15];
        *y++ = hex[hi[i] >> 4];
        *y++ = hex[hi[i] & 15];
    }
    /* exact: "<key> " starts every member of that address; range: every
     * member from lo up to (and including) any member of hi */
    if (!slash)
        *x++ = ' ';
    *y++ = ' ';
    *y++ = (char)0xff;
    set_range(p, "lex", "ip", (size_t)(x - p->abuf), (size_t)(y - p->bbuf));
    snprintf(p->a.key, sizeof(p->a.key), "ix:ip");
    p->kind = slash ? "cidr" : "ip";
    return 0;
bad:
    if (slash)
        snprintf(err, errlen, "bad CIDR: want ADDRESS/LENGTH, as 10.0.0.0/24 "
                 "or 2001:db8::/48");
    else
        snprintf(err, errlen, "not an IP address");
    return -1;
}

static int looks_ip(const char *q, size_t len) {
    int colon = 0, alpha = 0;
    for (size_t i = 0; i < len; i++) {
        char c = q[i];
        if (c == ':')
            colon = 1;
        else if ((c >= 'g' && c <= 'z') || (c >= 'G' && c <= 'Z') || c == '*' ||
                 c == '-' || c == '_' || c == '\\')
            alpha = 1;
    }
    if (colon)
        return 1;
    if (alpha)
        return 0;
    /* digits and dots only (and a slash): an address or a CIDR */
    for (size_t i = 0; i < len; i++)
        if (!(q[i] == '.' || q[i] == '/' || (q[i] >= '0' && q[i] <= '9')))
            return 0;
    return 1;
}

/* A query is an address (or a prefix) when it parses as one, or has a
 * colon or a slash (then parse_ip says what is wrong); else a name:
 * "33" and "1.2.3" are names. */
static int is_address(const char *q, size_t len) {
    char tmp[64];
    uint8_t a[16];
    if (memchr(q, ':', len) || memchr(q, '/', len))
        return 1;
    if (len >= sizeof(tmp))
        return 0;
    memcpy(tmp, q, len);
    tmp[len] = '\0';
    return inet_pton(AF_INET, tmp, a) == 1;
}

/* An address or a prefix, "ADDRESS/LENGTH" or, as DNSDB and dnsdbq write
 * it, "ADDRESS,LENGTH": 0, -1 with err, or 1 when q is neither (a name). */
static int parse_address(qparse *p, const char *q, size_t len, char *err, size_t errlen) {
    char cidr[64];
    const char *comma = memchr(q, ',', len);
    if (comma && len < sizeof(cidr)) {
        memcpy(cidr, q, len);
        cidr[len] = '\0'; /* parse_ip reads the length with strtol */
        cidr[comma - q] = '/';
        q = cidr;
    }
    if (!looks_ip(q, len) || !is_address(q, len))
        return 1;
    return parse_ip(p, q, len, err, errlen);
}

/* A lookup of one name's hash (kind "" for its triples, "e" for its error
 * lines). */
static int one_name(qparse *p, const char *q, size_t len, const char *kind,
                    const char *what, char *err, size_t errlen) {
    size_t n = check_name(q, len, p->abuf, err, errlen);
    if (!n)
        return -1;
    p->a.mode = "name";
    p->a.kind = kind;
    p->a.a = p->abuf;
    p->a.alen = n;
    p->a.b = "";
    p->kind = what;
    return 0;
}

int qparse_query(qparse *p, const char *q, size_t len, int form, char *err,
                 size_t errlen) {
    char name[512];
    size_t n;
    int rdata = form == QP_RDATA;
    memset(p, 0, sizeof(*p));
    if (len == 0) { /* "/query/." reaches us as "/query/": the root */
        q = ".";
        len = 1;
    }
    if (form == QP_ERRORS) /* one name, exactly */
        return one_name(p, q, len, "e", "errors", err, errlen);
    if (form == QP_QUERY) {
        int rc = parse_address(p, q, len, err, errlen);
        if (rc != 1)
            return rc;
    }
    if (rdata) {
        if (!(n = check_name(q, len, name, err, errlen)))
            return -1;
        store_rd_bucket(name, n, p->a.key);
        n = (size_t)snprintf(p->abuf, sizeof(p->abuf), "%s ", name);
        size_t m = (size_t)snprintf(p->bbuf, sizeof(p->bbuf), "%s \xff", name);
        set_range(p, "lex", "rd", n, m);
        p->kind = "rdata";
        return 0;
    }
    if (len >= 2 && q[0] == '*' && q[1] == '.') {
        char rev[600];
        if (!(n = check_name(q + 2, len - 2, name, err, errlen)))
            return -1;
        size_t rl = store_reverse_name(name, n, rev);
        memcpy(p->abuf, rev, rl);
        p->abuf[rl] = '.';
        memcpy(p->bbuf, p->abuf, rl + 1);
        p->bbuf[rl + 1] = (char)0xff;
        size_t bl = store_rev_bucket(rev, rl);
        if (memchr(rev, '.', rl)) {
            /* two labels or more: one bucket holds every name under it */
            set_range(p, "lex", "rev", rl + 1, rl + 2);
            snprintf(p->a.key, sizeof(p->a.key), "r:%.*s", (int)bl, rev);
        } else {
            /* a single label (*.com): every bucket "com.*" */
            set_range(p, "lexn", "rev", rl + 1, rl + 2);
            snprintf(p->a.key, sizeof(p->a.key), "ix:rb");
        }
        p->kind = "suffix";
        return 0;
    }
    if (len >= 2 && q[len - 2] == '.' && q[len - 1] == '*') {
        if (!(n = check_name(q, len - 2, name, err, errlen)))
            return -1;
        memcpy(p->abuf, name, n);
        p->abuf[n] = '.';
        memcpy(p->bbuf, p->abuf, n + 1);
        p->bbuf[n + 1] = (char)0xff;
        set_range(p, "lex", "fwd", n + 1, n + 2);
        store_fwd_bucket(name, n, p->a.key);
        p->kind = "prefix";
        return 0;
    }
    if (memchr(q, '*', len)) {
        snprintf(err, errlen, "a wildcard is a whole label at the start "
                 "(*.example.com) or at the end (www.example.*)");
        return -1;
    }
    return one_name(p, q, len, "", "name", err, errlen);
}

int qparse_rrtypes(qparse *p, const char *list, char *err, size_t errlen) {
    const char *s = list;
    if (strcasecmp(list, "ANY") == 0 || strcmp(list, "*") == 0) {
        p->a.types[0] = '\0'; /* every type */
        return 0;
    }
    size_t used = strlen(p->a.types);
    if (!used) {
        p->a.types[0] = ',';
        p->a.types[1] = '\0';
        used = 1;
    }
    while (*s) {
        const char *e = strchr(s, ',');
        size_t l = e ? (size_t)(e - s) : strlen(s);
        while (l && *s == ' ')
            s++, l--;
        while (l && s[l - 1] == ' ')
            l--;
        uint16_t t;
        if (!l || pdns_rrtype_parse(s, l, &t) < 0) {
            snprintf(err, errlen, "unknown rrtype \"%.*s\"", (int)(l > 32 ? 32 : l), s);
            return -1;
        }
        int n = snprintf(p->a.types + used, sizeof(p->a.types) - used, "%u,",
                         (unsigned)t);
        if (n < 0 || (size_t)n >= sizeof(p->a.types) - used) {
            snprintf(err, errlen, "too many rrtypes");
            return -1;
        }
        used += (size_t)n;
        if (!e)
            break;
        s = e + 1;
    }
    return 0;
}

int qparse_time(qparse *p, const char *name, const char *value, char *err,
                size_t errlen) {
    static const char *const names[] = {"time_first_after", "time_first_before",
                                        "time_last_after", "time_last_before"};
    int64_t *dst[] = {&p->a.tf_after, &p->a.tf_before, &p->a.tl_after,
                      &p->a.tl_before};
    for (int i = 0; i < 4; i++) {
        if (strcmp(name, names[i]) != 0)
            continue;
        char *end;
        errno = 0;
        long long v = strtoll(value, &end, 10);
        if (!*end && !errno && v < 0 && v >= -4102444800LL)
            v += (long long)time(NULL); /* DNSDB's relative form: seconds ago */
        if (!*value || *end || errno || v <= 0 || v > 4102444800LL) {
            snprintf(err, errlen, "%s: want Unix seconds (1 .. 4102444800), or "
                     "negative: seconds before now", name);
            return -1;
        }
        *dst[i] = v;
        return 1;
    }
    return 0;
}

/* A name in DNS wire format to presentation format in out. Returns the
 * length, or 0. */
static size_t wire_name(const uint8_t *w, size_t n, char *out, size_t outlen) {
    size_t o = 0, i = 0;
    while (i < n && w[i]) {
        size_t l = w[i++];
        if (l > 63 || i + l > n)
            return 0;
        for (size_t k = 0; k < l; k++, i++) {
            uint8_t c = w[i];
            if (o + 5 >= outlen)
                return 0;
            if (c == '.' || c == '\\' || c <= ' ' || c >= 0x7f)
                o += (size_t)snprintf(out + o, outlen - o, "\\%03u", c);
            else
                out[o++] = (char)c;
        }
        if (o + 1 >= outlen)
            return 0;
        out[o++] = '.';
    }
    if (i + 1 != n) /* the root label ends it, and nothing follows */
        return 0;
    if (!o)
        out[o++] = '.';
    out[o] = '\0';
    return o;
}

int qparse_dnsdb(qparse *p, const char *path, dnsdb_path *d, char *err,
                 size_t errlen) {
    char buf[1100], *part[6];
    size_t np = 0;
    memset(d, 0, sizeof(*d));
    if (strcmp(path, "ping") == 0 || strcmp(path, "rate_limit") == 0) {
        memset(p, 0, sizeof(*p));
        d->verb = path[0] == 'p' ? DNSDB_PING : DNSDB_RATE_LIMIT;
        return 0;
    }
    memset(p, 0, sizeof(*p));
    if (strlen(path) >= sizeof(buf)) {
        snprintf(err, errlen, "path too long");
        return -1;
    }
    strcpy(buf, path);
    for (char *s = buf, *slash; np < 6; s = slash + 1) {
        part[np++] = s;
        if (!(slash = strchr(s, '/')))
            break;
        *slash = '\0';
    }
    if (np < 4 || (strcmp(part[0], "lookup") != 0 && strcmp(part[0], "summarize") != 0) ||
        (strcmp(part[1], "rrset") != 0 && strcmp(part[1], "rdata") != 0)) {
        snprintf(err, errlen, "unknown DNSDB path: want lookup or summarize, then "
                 "rrset/name/NAME[/RRTYPE[/BAILIWICK]], rrset/raw/HEX, "
                 "rdata/name/NAME[/RRTYPE], rdata/ip/ADDRESS[,PREFIXLEN] or rdata/raw/HEX");
        return -1;
    }
    d->verb = part[0][0] == 's' ? DNSDB_SUMMARIZE : DNSDB_LOOKUP;
    d->rdata = part[1][1] == 'd';
    const char *how = part[2], *val = part[3];
    size_t maxparts = d->rdata ? 5 : 6;
    if (np > maxparts || (np == 6 && strchr(part[5], '/'))) {
        snprintf(err, errlen, "too many path elements");
        return -1;
    }
    char name[600];
    size_t vl = strlen(val);
    int rc;
    if (strcmp(how, "raw") == 0) {
        uint8_t w[256];
        size_t bytes;
        if (sodium_hex2bin(w, sizeof(w), val, vl, NULL, &bytes, NULL) != 0 || bytes * 2 != vl) {
            snprintf(err, errlen, "raw: want hex, at most 256 bytes");
            return -1;
        }
        if (d->rdata && (bytes == 4 || bytes == 16)) {
            if (!inet_ntop(bytes == 4 ? AF_INET : AF_INET6, w, name, sizeof(name)))
                return -1;
            rc = parse_ip(p, name, strlen(name), err, errlen);
        } else {
            size_t n = wire_name(w, bytes, name, sizeof(name));
            if (!n) {
                snprintf(err, errlen, "raw: want the hex of a name in DNS wire format%s",
                         d->rdata ? " (or of 4 or 16 address bytes)" : "");
                return -1;
            }
            rc = qparse_query(p, name, n, d->rdata ? QP_RDATA : QP_NAME, err, errlen);
        }
    } else if (strcmp(how, "name") == 0) {
        rc = qparse_query(p, val, vl, d->rdata ? QP_RDATA : QP_NAME, err, errlen);
    } else if (strcmp(how, "ip") == 0 && d->rdata) {
        if ((rc = parse_address(p, val, vl, err, errlen)) == 1) {
            snprintf(err, errlen, "not an IP address");
            return -1;
        }
    } else {
        snprintf(err, errlen, "unknown DNSDB lookup \"%.20s/%.20s\" (rrset: name or raw; "
                 "rdata: name, ip or raw)", part[1], how);
        return -1;
    }
    if (rc < 0)
        return -1;
    if (np >= 5 && part[4][0]) { /* "ANY": every type (qparse_rrtypes) */
        const char *types = strcasecmp(part[4], "ANY-DNSSEC") == 0
                                ? "DS,RRSIG,NSEC,DNSKEY,NSEC3,NSEC3PARAM,DLV" : part[4];
        if (qparse_rrtypes(p, types, err, errlen) < 0)
            return -1;
    }
    if (np == 6 && part[5][0]) {
        size_t n = check_name(part[5], strlen(part[5]), d->bailiwick, err, errlen);
        if (!n)
            return -1;
    }
    return 0;
}
