/* test_csv.c - the passivedns CSV parser against real sensor output (and
 * the sensor's own JSON rendering of the same lines as the expectation),
 * every field layout, separators, and every reject reason. */
#include <arpa/inet.h>
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "csv.h"
#include "rrtype.h"
#include "../csvdiff.h"

static enum csv_result parse(const csv_layout *l, const char *line,
                             pdns_record *r, char *buf) {
    const char *why;
    memset(r, 0, sizeof(*r));
    strcpy(buf, line);
    return csv_parse_line(l, buf, strlen(buf), r, &why);
}

static int streq(pdns_str s, const char *want) {
    return s.len == strlen(want) && memcmp(s.p, want, s.len) == 0;
}

static void lower_strip(char *s) {
    size_t n = strlen(s);
    for (size_t i = 0; i < n; i++)
        if (s[i] >= 'A' && s[i] <= 'Z')
            s[i] += 32;
    if (n > 1 && s[n - 1] == '.')
        s[n - 1] = '\0';
}

/* Every line of sensor-a.full.csv against the sensor's JSON of it. */
static void test_real_output_matches_json(void **state) {
    (void)state;
    FILE *csv = fopen("../data/sensor-a.full.csv", "r");
    FILE *js = fopen("../data/sensor-a.full.json", "r");
    csv_layout l;
    char err[128], line[8192], jline[8192], buf[8192];
    int n = 0, errors = 0;
    assert_non_null(csv);
    assert_non_null(js);
    assert_int_equal(csv_layout_init(&l, NULL, NULL, err, sizeof(err)), 0);
    while (fgets(line, sizeof(line), csv)) {
        assert_non_null(fgets(jline, sizeof(jline), js));
        line[strcspn(line, "\n")] = '\0';
        json_t *o = json_loads(jline, 0, NULL);
        assert_non_null(o);
        pdns_record r;
        assert_int_equal(parse(&l, line, &r, buf), CSV_OK);
        char q[2048], a[4096];
        snprintf(q, sizeof(q), "%s", json_string_value(json_object_get(o, "query")));
        snprintf(a, sizeof(a), "%s", json_string_value(json_object_get(o, "answer")));
        lower_strip(q);
        assert_true(streq(r.rrname, q));
        /* The JSON capture is a second run of the sensor: its end-of-run
         * reprint of repeated tuples (from line 899) has its own times. */
        if (n < 898) {
            assert_int_equal(r.time_first, json_integer_value(json_object_get(o, "timestamp_s")));
            assert_int_equal(r.time_first_ms % 1000,
                             json_integer_value(json_object_get(o, "timestamp_ms")) / 1000);
        }
        assert_int_equal(r.count, json_integer_value(json_object_get(o, "count")));
        assert_int_equal(r.ttl, json_integer_value(json_object_get(o, "ttl")));
        const char *type = json_string_value(json_object_get(o, "type"));
        uint16_t t;
        assert_int_equal(pdns_rrtype_parse(type, strlen(type), &t), 0);
        assert_int_equal(r.rrtype, t);
        if (r.is_error) {
            errors++;
            assert_true(streq(r.rdata, a));
        } else if (pdns_rrtype_rdata_is_name(t)) {
            lower_strip(a);
            assert_true(streq(r.rdata, a));
        } else if (t != PDNS_RR_AAAA) { /* AAAA is canonicalised */
            assert_true(streq(r.rdata, a));
        }
        assert_int_equal(r.client.len, 0); /* addresses dropped */
        json_decref(o);
        n++;
    }
    assert_int_equal(n, 1285);
    assert_int_equal(errors, 56);
    fclose(csv);
    fclose(js);
}

static void test_all_real_files_parse(void **state) {
    (void)state;
    const char *files[] = {"../data/sensor-a.default.csv", "../data/sensor-b.default.csv",
                           "../data/sensor-b.full.csv"};
    csv_layout l;
    char err[128], line[8192];
    assert_int_equal(csv_layout_init(&l, NULL, NULL, err, sizeof(err)), 0);
    for (size_t f = 0; f < 3; f++) {
        FILE *in = fopen(files[f], "r");
        assert_non_null(in);
        while (fgets(line, sizeof(line), in)) {
            pdns_record r;
            const char *why = NULL;
            memset(&r, 0, sizeof(r));
            enum csv_result res = csv_parse_line(&l, line, strcspn(line, "\n"), &r, &why);
            if (res != CSV_OK)
                fail_msg("%s: %s: %s", files[f], why, line);
        }
        fclose(in);
    }
}

static void test_fields_and_normalisation(void **state) {
    (void)state;
    csv_layout l;
    pdns_record r;
    char err[128], buf[1024];
    assert_int_equal(csv_layout_init(&l, NULL, NULL, err, sizeof(err)), 0);
    assert_int_equal(parse(&l, "1322849924.408856||10.1.1.1||8.8.8.8||IN||"
                               "WWW.Example-Corp.TEST.||CNAME||Web.Example.||46587||5", &r, buf), CSV_OK);
    assert_true(streq(r.rrname, "www.example-corp.test"));
    assert_true(streq(r.rdata, "web.example"));
    assert_int_equal(r.rrtype, PDNS_RR_CNAME);
    assert_int_equal(r.time_first, 1322849924);
    assert_int_equal(r.time_first_ms, 1322849924408);
    assert_int_equal(r.count, 5);
    assert_int_equal(r.ttl, 46587);
    assert_false(r.is_error);
    /* IPv6 canonical form */
    assert_int_equal(parse(&l, "1.5||c||s||IN||a.test.||AAAA||2001:DB8:0:0::1||1||1", &r, buf), CSV_OK);
    assert_true(streq(r.rdata, "2001:db8::1"));
    /* the root */
    assert_int_equal(parse(&l, "1.5||c||s||IN||.||NS||A.ROOT-SERVERS.NET.||1||1", &r, buf), CSV_OK);
    assert_true(streq(r.rrname, "."));
    assert_true(streq(r.rdata, "a.root-servers.net"));
    /* escapes, underscores, punycode kept */
    assert_int_equal(parse(&l, "1.5||c||s||IN||_x\\032y.xn--caf-dma.test.||TXT||\"a b\\\" c\"||1||1", &r, buf), CSV_OK);
    assert_true(streq(r.rrname, "_x\\032y.xn--caf-dma.test"));
    assert_true(streq(r.rdata, "\"a b\\\" c\""));
    /* error line */
    assert_int_equal(parse(&l, "1.5||c||s||IN||nx.test.||1||NXDOMAIN||0||1", &r, buf), CSV_OK);
    assert_true(r.is_error);
    assert_true(streq(r.rdata, "NXDOMAIN"));
    /* a TXT whose text is an rcode name is an answer, not an error */
    assert_int_equal(parse(&l, "1.5||c||s||IN||t.test.||TXT||\"NXDOMAIN\"||0||1", &r, buf), CSV_OK);
    assert_false(r.is_error);
    /* CR at the end */
    assert_int_equal(parse(&l, "1.5||c||s||IN||a.test.||A||10.0.0.1||1||1\r", &r, buf), CSV_OK);
    assert_int_equal(r.count, 1);
}

/* The separator is never escaped: TXT data and names can hold it. */
/* AAAA text is canonical exactly as inet_ntop writes it, over many
 * random addresses with runs of zero groups and the IPv4 forms. */
static void test_ipv6_canonical_like_inet_ntop(void **state) {
    (void)state;
    csv_layout l;
    char err[128], buf[512], line[512], want[64];
    assert_int_equal(csv_layout_init(&l, "SQTA", "|", err, sizeof(err)), 0);
    srandom(7);
    for (int n = 0; n < 200000; n++) {
        unsigned char b[16];
        for (int i = 0; i < 16; i += 2) {
            int z = random() % 3 == 0; /* plenty of zero groups */
            b[i] = z ? 0 : (unsigned char)random();
            b[i + 1] = z ? 0 : (unsigned char)random();
        }
        if (n % 50 == 0) { /* ::ffff:a.b.c.d and ::a.b.c.d */
            memset(b, 0, 10);
            b[10] = b[11] = (n % 100 == 0) ? 0xff : 0;
        }
        char in[64];
        assert_non_null(inet_ntop(AF_INET6, b, want, sizeof(want)));
        /* feed it in a non-canonical spelling: upper case, leading zeros */
        snprintf(in, sizeof(in), "%X:%04X:%X:%X:%X:%X:%X:%X", b[0] << 8 | b[1], b[2] << 8 | b[3],
                 b[4] << 8 | b[5], b[6] << 8 | b[7], b[8] << 8 | b[9], b[10] << 8 | b[11],
                 b[12] << 8 | b[13], b[14] << 8 | b[15]);
        snprintf(line, sizeof(line), "1|a.test.|AAAA|%s", in);
        pdns_record r;
        assert_int_equal(parse(&l, line, &r, buf), CSV_OK);
        if (!streq(r.rdata, want))
            fail_msg("%s: got %.*s, want %s", in, (int)r.rdata.len, r.rdata.p, want);
    }
    /* A: dotted quads only; leading zeros are refused as inet_pton does */
    pdns_record r;
    assert_int_equal(parse(&l, "1|a.test.|A|10.1.0.255", &r, buf), CSV_OK);
    assert_true(streq(r.rdata, "10.1.0.255"));
    assert_int_equal(parse(&l, "1|a.test.|A|010.001.0.255", &r, buf), CSV_E_RDATA);
    assert_int_equal(parse(&l, "1|a.test.|A|1.2.3", &r, buf), CSV_E_RDATA);
    assert_int_equal(parse(&l, "1|a.test.|A|1.2.3.4.5", &r, buf), CSV_E_RDATA);
    assert_int_equal(parse(&l, "1|a.test.|A|1.2.3.256", &r, buf), CSV_E_RDATA);
}

static void test_unescaped_separator(void **state) {
    (void)state;
    csv_layout l;
    pdns_record r;
    char err[128], buf[1024];
    assert_int_equal(csv_layout_init(&l, NULL, NULL, err, sizeof(err)), 0);
    assert_int_equal(parse(&l, "1.5||c||s||IN||t.test.||TXT||\"a||b||A||c\"||60||2", &r, buf), CSV_OK);
    assert_true(streq(r.rdata, "\"a||b||A||c\""));
    assert_int_equal(r.count, 2);
    assert_int_equal(r.ttl, 60);
    assert_int_equal(parse(&l, "1.5||c||s||IN||we|||ird.test.||TXT||\"x\"||60||2", &r, buf), CSV_OK);
    assert_true(streq(r.rrname, "we|||ird.test"));
    /* with the query length printed, the query may even hold "||A||" */
    assert_int_equal(csv_layout_init(&l, "SMcsCQLTAtn", NULL, err, sizeof(err)), 0);
    assert_int_equal(parse(&l, "1.5||c||s||IN||x||A||y.test.||13||A||10.0.0.1||1||1", &r, buf), CSV_OK);
    assert_true(streq(r.rrname, "x||a||y.test"));
    assert_true(streq(r.rdata, "10.0.0.1"));
}

static void test_layouts(void **state) {
    (void)state;
    csv_layout l;
    pdns_record r;
    char err[128], buf[1024];
    /* letters in any order: the sensor prints its fixed order */
    assert_int_equal(csv_layout_init(&l, "nAtTQCscMS", ",", err, sizeof(err)), 0);
    assert_int_equal(parse(&l, "7.25,c,s,IN,a.test.,A,10.0.0.1,60,3", &r, buf), CSV_OK);
    assert_int_equal(r.time_first_ms, 7250);
    /* seconds only, no addresses, no ttl/count */
    assert_int_equal(csv_layout_init(&l, "SQTA", "|", err, sizeof(err)), 0);
    assert_int_equal(parse(&l, "1700000000|a.test.|MX|mx.test.", &r, buf), CSV_OK);
    assert_int_equal(r.time_first, 1700000000);
    assert_false(r.has_ms);
    assert_int_equal(r.count, 1);
    assert_true(streq(r.rdata, "mx.test"));
    /* H (human UTC time), hostname, MACs, proto, lengths */
    assert_int_equal(csv_layout_init(&l, "HhcwsWpCQLTAltn", "\t", err, sizeof(err)), 0);
    assert_int_equal(parse(&l, "2023-11-14 22:13:20.500000\tsensor1\t10.0.0.9\t00:11:22:33:44:55\t10.0.0.1\t"
                               "66:77:88:99:aa:bb\tudp\tIN\ta.test.\t7\tA\t10.0.0.1\t8\t60\t4", &r, buf), CSV_OK);
    assert_int_equal(r.time_first, 1700000000);
    assert_int_equal(r.time_first_ms, 1700000000500);
    assert_true(streq(r.rrname, "a.test"));
    assert_int_equal(r.count, 4);
    /* keep addresses when the config says so */
    assert_int_equal(csv_layout_init(&l, NULL, NULL, err, sizeof(err)), 0);
    l.keep_addresses = 1;
    assert_int_equal(parse(&l, "1.5||10.1.1.1||8.8.8.8||IN||a.test.||A||10.0.0.1||1||1", &r, buf), CSV_OK);
    assert_true(streq(r.client, "10.1.1.1"));
    assert_true(streq(r.server, "8.8.8.8"));
    /* bad layouts */
    assert_int_equal(csv_layout_init(&l, "SQTAx", NULL, err, sizeof(err)), -1);
    assert_string_equal(err, "layout 'SQTAx': unknown field letter 'x'");
    assert_int_equal(csv_layout_init(&l, "QTA", NULL, err, sizeof(err)), -1);
    assert_string_equal(err, "layout 'QTA': needs a timestamp (S or H)");
    assert_int_equal(csv_layout_init(&l, "SQA", NULL, err, sizeof(err)), -1);
    assert_int_equal(csv_layout_init(&l, NULL, "", err, sizeof(err)), -1);
}

static void test_numbers_at_their_limits(void **state) {
    csv_layout l;
    pdns_record r;
    char err[128], buf[1024];
    (void)state;
    assert_int_equal(csv_layout_init(&l, NULL, NULL, err, sizeof(err)), 0);
    assert_int_equal(parse(&l, "1.5||c||s||IN||a.test.||A||10.0.0.1||1||18446744073709551615",
                           &r, buf), CSV_OK);
    assert_true(r.count == PDNS_COUNT_MAX); /* counts saturate at 2^53 - 1 */
    assert_int_equal(parse(&l, "1795930651.987654||c||s||IN||a.test.||A||10.0.0.1||1||9999999999999999999",
                           &r, buf), CSV_OK);
    assert_true(r.count == PDNS_COUNT_MAX);
    assert_int_equal(parse(&l, "1.5||c||s||IN||a.test.||A||10.0.0.1||1||9007199254740991", &r, buf),
                     CSV_OK);
    assert_true(r.count == UINT64_C(9007199254740991));
    assert_int_equal(parse(&l, "1.5||c||s||IN||a.test.||A||10.0.0.1||1||9007199254740992", &r, buf),
                     CSV_OK);
    assert_true(r.count == PDNS_COUNT_MAX);
    assert_int_equal(parse(&l, "1795930651.987654||c||s||IN||a.test.||A||10.0.0.1||1||1", &r, buf),
                     CSV_OK);
    assert_int_equal(r.time_first_ms, INT64_C(1795930651987));
    assert_int_equal(parse(&l, "1795930651.9||c||s||IN||a.test.||A||10.0.0.1||1||1", &r, buf), CSV_OK);
    assert_int_equal(r.time_first_ms, INT64_C(1795930651900));
}

static void test_rejects(void **state) {
    (void)state;
    static const struct {
        const char *line;
        enum csv_result want;
    } cases[] = {
        {"", CSV_E_FIELDS},
        {"1.5||c||s||IN||a.test.", CSV_E_FIELDS},
        {"x.5||c||s||IN||a.test.||A||10.0.0.1||1||1", CSV_E_TIME},
        {"1.||c||s||IN||a.test.||A||10.0.0.1||1||1", CSV_E_TIME},
        {"1.5||c||s||CH||version.bind.||TXT||\"x\"||1||1", CSV_E_CLASS},
        {"1.5||c||s||IN||a..test.||A||10.0.0.1||1||1", CSV_E_NAME},
        {"1.5||c||s||IN||a test.||A||10.0.0.1||1||1", CSV_E_NAME},
        {"1.5||c||s||IN||||A||10.0.0.1||1||1", CSV_E_NAME},
        {"1.5||c||s||IN||a.test.||BOGUS||10.0.0.1||1||1", CSV_E_TYPE},
        {"1.5||c||s||IN||a.test.||A||10.0.0.300||1||1", CSV_E_RDATA},
        {"1.5||c||s||IN||a.test.||AAAA||10.0.0.1||1||1", CSV_E_RDATA},
        {"1.5||c||s||IN||a.test.||A||||1||1", CSV_E_RDATA},
        {"1.5||c||s||IN||a.test.||CNAME||b..test.||1||1", CSV_E_RDATA},
        {"1.5||c||s||IN||a.test.||A||10.0.0.1||-1||1", CSV_E_NUMBER},
        {"1.5||c||s||IN||a.test.||A||10.0.0.1||1||1x", CSV_E_NUMBER},
        {"1.5||c||s||IN||a.test.||A||10.0.0.1||99999999999||1", CSV_E_NUMBER},
        /* counts: 2^64 - 1 is the largest; 2^64 and 21 digits are not */
        {"1.5||c||s||IN||a.test.||A||10.0.0.1||1||18446744073709551616", CSV_E_NUMBER},
        {"1.5||c||s||IN||a.test.||A||10.0.0.1||1||100000000000000000000", CSV_E_NUMBER},
        {"1.5||c||s||IN||a.test.||A||10.0.0.1||1||1844674407370955161x", CSV_E_NUMBER},
        {"1.5x||c||s||IN||a.test.||A||10.0.0.1||1||1", CSV_E_TIME},
        {"1.1234567890||c||s||IN||a.test.||A||10.0.0.1||1||1", CSV_E_TIME},
    };
    csv_layout l;
    pdns_record r;
    char err[128], buf[1024];
    assert_int_equal(csv_layout_init(&l, NULL, NULL, err, sizeof(err)), 0);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        enum csv_result got = parse(&l, cases[i].line, &r, buf);
        if (got != cases[i].want)
            fail_msg("%s: got %s, want %s", cases[i].line, csv_result_name(got),
                     csv_result_name(cases[i].want));
    }
    /* a NUL byte inside the line */
    const char bin[] = "1.5||c||s||IN||a\0.test.||A||10.0.0.1||1||1";
    const char *why;
    memcpy(buf, bin, sizeof(bin));
    assert_int_equal(csv_parse_line(&l, buf, sizeof(bin) - 1, &r, &why), CSV_E_BINARY);
}

/* The byte-at-a-time definition of pdns_name_canon (the relay's version
 * works eight bytes at a time): both must agree on every input. A name is
 * decoded to its bytes (escapes: \X, \DDD), checked (no raw control,
 * space or non-ASCII byte, no empty label, labels of at most 63 bytes, at
 * most 255 on the wire) and written again in the one spelling: ordinary
 * bytes as themselves, letters in lower case, '.' and '\' as "\." and
 * "\\", every other byte as \DDD. */
static int canon_ref(char *s, size_t *lenp, const char **why) {
    size_t len = *lenp, n = 0;
    unsigned char v[1100];
    int esc[1100];
    if (len == 0)
        return *why = "empty", -1;
    if (len > 1 && s[len - 1] == '.' && s[len - 2] == '.' && (len < 3 || s[len - 3] != '\\'))
        return *why = "label", -1;
    if (len > 1 && s[len - 1] == '.' && s[len - 2] != '\\')
        len--;
    if (len > 1024)
        return *why = "long", -1;
    *lenp = len;
    if (len == 1 && s[0] == '.')
        return 0;
    if (s[0] == '.')
        return *why = "label", -1;
    /* left to right until the first backslash, as the relay reads it */
    for (size_t i = 0; i < len && s[i] != '\\'; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= ' ' || c == 0x7f)
            return *why = "control", -1;
        if (c >= 0x80)
            return *why = "nonascii", -1;
        if (c == '.' && i + 1 < len && s[i + 1] == '.')
            return *why = "label", -1;
    }
    for (size_t i = 0; i < len; i++) { /* then every escape */
        if (s[i] != '\\')
            continue;
        if (i + 1 >= len)
            return *why = "escape", -1;
        if (s[i + 1] >= '0' && s[i + 1] <= '9') {
            if (i + 3 >= len || s[i + 2] < '0' || s[i + 2] > '9' || s[i + 3] < '0' ||
                s[i + 3] > '9' || (s[i + 1] - '0') * 100 + (s[i + 2] - '0') * 10 + s[i + 3] - '0' > 255)
                return *why = "escape", -1;
            i += 3;
        } else {
            unsigned char x = (unsigned char)s[++i];
            if ((x < 0x21 || x >= 0x7f) && x != '.' && x != '\\')
                return *why = "escape", -1;
        }
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\\') {
            if (s[i + 1] >= '0' && s[i + 1] <= '9') {
                c = (unsigned char)((s[i + 1] - '0') * 100 + (s[i + 2] - '0') * 10 + s[i + 3] - '0');
                i += 3;
            } else {
                c = (unsigned char)s[++i];
            }
            v[n] = c, esc[n++] = 1;
            continue;
        }
        v[n] = c, esc[n++] = 0;
    }
    size_t o = 0;
    char out[4400];
    for (size_t i = 0; i < n; i++) {
        unsigned char c = v[i];
        if (!esc[i] && (c <= ' ' || c == 0x7f))
            return *why = "control", -1;
        if (!esc[i] && c >= 0x80)
            return *why = "nonascii", -1;
        if (!esc[i] && c == '.' && i + 1 < n && v[i + 1] == '.' && !esc[i + 1])
            return *why = "label", -1;
        if (!esc[i] && c == '.')
            out[o++] = '.';
        else if (c == '.' || c == '\\')
            out[o++] = '\\', out[o++] = (char)c;
        else if (c < 0x21 || c >= 0x7f)
            o += (size_t)sprintf(out + o, "\\%03u", c);
        else
            out[o++] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
    size_t label = 0, wire = 1;
    for (size_t i = 0; i < n; i++) {
        if (!esc[i] && v[i] == '.') {
            wire += label + 1;
            label = 0;
        } else if (++label > 63) {
            return *why = "wire", -1;
        }
    }
    if (wire + label + 1 > 255)
        return *why = "wire", -1;
    memcpy(s, out, o);
    *lenp = o;
    return 0;
}

/* The relay's reason, in the reference's words. */
static const char *reason_kind(const char *why) {
    return strstr(why, "empty label")   ? "label"
           : strstr(why, "63 bytes") || strstr(why, "on the wire") ? "wire"
           : strstr(why, "raw non-ASCII") ? "nonascii"
           : strstr(why, "escape") || strstr(why, "backslash") ? "escape"
           : strstr(why, "control")     ? "control"
           : strstr(why, "longer")      ? "long"
           : strstr(why, "empty")       ? "empty"
                                        : why;
}

/* One DNS name, one spelling; names that cannot exist on the wire refused. */
static void test_name_spellings(void **state) {
    static const struct {
        const char *in, *out; /* out NULL: refused */
    } cases[] = {
        {"x.Example-Corp.tes\\116", "x.example-corp.test"},  /* an escaped 't' */
        {"\\120.example", "x.example"},
        {"a\\.b.example", "a\\.b.example"},                /* a dot inside a label */
        {"a\\046b.example", "a\\.b.example"},
        {"sp\\032ace.example", "sp\\032ace.example"},
        {"\\195\\169t\\195\\169.example", "\\195\\169t\\195\\169.example"},
        {"sp\\ ace.example", NULL},                        /* \X of a space: \DDD */
        {"raw\x01.example", NULL},
        {"caf\xc3\xa9.example", NULL},                      /* raw UTF-8: punycode */
        {"bad\\256.example", NULL},
        {"end\\", NULL},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char b[300];
        const char *why;
        size_t n = strlen(cases[i].in);
        memcpy(b, cases[i].in, n);
        int rc = pdns_name_canon(b, &n, &why);
        if (cases[i].out ? rc != 0 || n != strlen(cases[i].out) || memcmp(b, cases[i].out, n)
                         : rc == 0)
            fail_msg("%s: got %d \"%.*s\"", cases[i].in, rc, rc ? 0 : (int)n, b);
    }
    char name[400];
    const char *why;
    size_t n;
    memset(name, 'a', 70); /* a 70-byte label */
    memcpy(name + 70, ".example", 8);
    n = 78;
    assert_int_equal(pdns_name_canon(name, &n, &why), -1);
    assert_non_null(strstr(why, "63 bytes"));
    for (int i = 0; i < 300; i += 10) /* 300 bytes in labels of 9 */
        memcpy(name + i, "abcdefghi.", 10);
    n = 299;
    assert_int_equal(pdns_name_canon(name, &n, &why), -1);
    assert_non_null(strstr(why, "255 bytes"));
    n = 249; /* 250 bytes on the wire: fine */
    for (int i = 0; i < 250; i += 10)
        memcpy(name + i, "abcdefghi.", 10);
    assert_int_equal(pdns_name_canon(name, &n, &why), 0);
}

static void test_name_canon_agrees(void **state) {
    static const char alphabet[] = "abcXYZ09-_./\\ \x01\x7f\x80\xc3\xa9" "AZ@[`{";
    char a[80], b[4400];
    const char *wa, *wb;
    (void)state;
    srand(7);
    for (int round = 0; round < 300000; round++) {
        size_t len = (size_t)(rand() % 80); /* both sides of 64 (AVX-512) */
        int plain = rand() % 3; /* mostly names without rare bytes */
        for (size_t i = 0; i < len; i++)
            a[i] = plain ? "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.."[rand() % 65]
                         : alphabet[rand() % (sizeof(alphabet) - 1)];
        memcpy(b, a, len);
        char c[80];
        memcpy(c, a, len);
        size_t la = len, lb = len;
        int ra = pdns_name_canon(a, &la, &wa), rb = canon_ref(b, &lb, &wb);
        if (ra != rb || (ra == 0 && (la != lb || memcmp(a, b, la) != 0)) ||
            (ra < 0 && strcmp(reason_kind(wa), wb) != 0))
            fail_msg("round %d: len %zu: canon %d (%s), reference %d (%s): \"%.*s\"", round,
                     len, ra, ra < 0 ? wa : "", rb, rb < 0 ? wb : "", (int)len, c);
    }
}

/* Timestamps "S.M" against a direct computation: 200,000 random ones, any
 * number of second digits (the ten-digit form takes the SWAR path, the
 * others the digit loop) and of fraction digits, some with one byte
 * replaced by a non-digit. Seconds and milliseconds must come out exact;
 * a timestamp with a non-digit, an empty or a 10+ digit fraction, or no
 * digits before the dot must be refused. */
static void test_timestamps_random(void **state) {
    (void)state;
    csv_layout l;
    pdns_record r;
    char err[128], ts[64], line[160];
    const char *why;
    assert_int_equal(csv_layout_init(&l, NULL, NULL, err, sizeof(err)), 0);
    uint32_t x = 12345;
    for (int it = 0; it < 200000; it++) {
        x = x * 1103515245u + 12345u;
        int sd = 1 + (int)((x >> 8) % 12), fd = (int)((x >> 16) % 11), dot = (x >> 27) % 8 != 0;
        int n = 0;
        for (int i = 0; i < sd; i++) {
            x = x * 1103515245u + 12345u;
            ts[n++] = (char)('0' + (x >> 16) % 10);
        }
        if (dot) {
            ts[n++] = '.';
            for (int i = 0; i < fd; i++) {
                x = x * 1103515245u + 12345u;
                ts[n++] = (char)('0' + (x >> 16) % 10);
            }
        }
        x = x * 1103515245u + 12345u;
        int bad = (x >> 20) % 5 == 0;
        if (bad) { /* one byte becomes a non-digit (never the dot) */
            int at = (int)((x >> 8) % (unsigned)n);
            if (ts[at] != '.')
                ts[at] = "/:a -"[(x >> 4) % 5];
            else
                bad = 0;
        }
        ts[n] = '\0';
        /* the expectation, computed here */
        int ok = !bad && (!dot || (fd >= 1 && fd <= 9));
        long long sec = 0, ms = 0;
        for (int i = 0; i < sd; i++)
            sec = sec * 10 + (ts[i] - '0');
        if (dot)
            for (int i = 0; i < 3; i++)
                ms = ms * 10 + (i < fd ? ts[sd + 1 + i] - '0' : 0);
        snprintf(line, sizeof(line), "%s||c||s||IN||a.test.||A||10.0.0.1||60||1", ts);
        enum csv_result res = csv_parse_line(&l, line, strlen(line), &r, &why);
        if (!ok) {
            if (res != CSV_E_TIME)
                fail_msg("%s: accepted (%s)", ts, csv_result_name(res));
            continue;
        }
        if (res != CSV_OK || r.time_first != sec || r.time_first_ms != sec * 1000 + ms ||
            r.has_ms != dot)
            fail_msg("%s: got %s, %lld / %lld ms, want %lld / %lld ms", ts, csv_result_name(res),
                     (long long)r.time_first, (long long)r.time_first_ms, sec, sec * 1000 + ms);
    }
}

/* The separator mask (AVX-512) and the scanners must cut every line the
 * same: 300,000 random lines over every layout and separator the fuzzer
 * uses, built from fields that are right, nearly right or junk, with
 * separators inside names, answers and numbers ("|||", "||||"), an
 * occasional NUL, CR, or empty field, at lengths around 64 and 128 bytes
 * (the mask's chunks and limit) and beyond. On a CPU without AVX-512BW
 * both runs take the scanners and this only checks determinism. */
static void test_mask_and_scanners_agree(void **state) {
    (void)state;
    static const char *layouts[] = {"SMcsCQTAtn", "SQTA", "HhcwsWpCQLTAltn", "SMQLTAn"};
    static const char *seps[] = {"||", "|", ",", "\t"};
    static const char *toks[] = {
        "1795930651.123456", "1795930651", "2026-11-29 10:00:00.5", "IN", "CH", "A", "AAAA",
        "CNAME", "TXT", "MX", "TYPE65", "NXDOMAIN", "10.0.0.1", "2001:db8::1", "www.example.com.",
        "a|b.test.", "x||y.test.", "|", "||", "|||", "0", "60", "18446744073709551616", "7",
        "\"v=spf1 -all\"", "edge.cdn.example.", "UPPER.Example.", "", "-", ",", "\t", "3",
        "1.2.3.4.5", "host-with-a-rather-long-label-to-cross-the-chunk-edge.example.test."};
    /* a start overlapping the last front separator, then a type: the
     * query must not begin before the field */
    static const char *edge[] = {"1.5||c||s||IN|||A||10.0.0.1||60||1",
                                 "1.5||c||s||IN||||A||A||10.0.0.1||60||1",
                                 "1.5||c||s||IN||x||A||10.0.0.1|||60||1",
                                 "1.5||c||s||IN||x||A||10.0.0.1||||60|||1"};
    for (size_t i = 0; i < sizeof(edge) / sizeof(edge[0]); i++) {
        csv_layout l;
        char err[128];
        assert_int_equal(csv_layout_init(&l, NULL, NULL, err, sizeof(err)), 0);
        const char *d = csv_diff(&l, edge[i], strlen(edge[i]));
        if (d)
            fail_msg("the two cuts differ in %s: %s", d, edge[i]);
    }
    uint32_t x = 777;
    char line[400];
    for (int it = 0; it < 300000; it++) {
        csv_layout l;
        char err[128];
        x = x * 1103515245u + 12345u;
        unsigned pick = x >> 16;
        assert_int_equal(csv_layout_init(&l, layouts[pick & 3], seps[(pick >> 2) & 3], err,
                                         sizeof(err)), 0);
        l.keep_addresses = (pick >> 4) & 1;
        const char *sep = seps[(pick >> 2) & 3];
        size_t n = 0;
        int fields = 3 + (int)((pick >> 5) % 14);
        for (int f = 0; f < fields && n < 300; f++) {
            x = x * 1103515245u + 12345u;
            const char *t = toks[(x >> 16) % (sizeof(toks) / sizeof(toks[0]))];
            size_t tl = strlen(t);
            if (f) {
                memcpy(line + n, sep, strlen(sep));
                n += strlen(sep);
            }
            memcpy(line + n, t, tl);
            n += tl;
        }
        x = x * 1103515245u + 12345u;
        if ((x >> 16) % 50 == 0 && n) /* a NUL somewhere */
            line[(x >> 8) % n] = '\0';
        if ((x >> 20) % 20 == 0)
            line[n++] = '\r';
        const char *d = csv_diff(&l, line, n);
        if (d) {
            line[n] = '\0';
            fail_msg("layout %s sep '%s': the two cuts differ in %s: %s", l.letters, sep, d,
                     line);
        }
    }
}

static unsigned lcg(uint32_t *x) {
    *x = *x * 1103515245u + 12345u;
    return *x >> 12;
}

/* One random pick from a list of strings. */
#define PICK(x, list) ((list)[lcg(x) % (sizeof(list) / sizeof((list)[0]))])

/* Appends to s[*n] a field that is usually right and often just wrong,
 * of the kind k: 0 time, 1 number, 2 IPv4, 3 name, 4 rrtype. */
static void near_field(uint32_t *x, int k, char *s, size_t *n) {
    static const char digits[] = "0123456789", name_bytes[] = "abcxyzABCXYZ09-_.\\ \x01\x7f";
    static const char *types[] = {"A", "AAAA", "CNAME", "MX", "NS", "TXT", "PTR", "SOA",
                                  "SRV", "a", "Cname", "TYPE65", "65", "AAAAA", "CNAMEX",
                                  "M", "", "DNAME", "HTTPS"};
    size_t at = *n;
    unsigned r = lcg(x);
    switch (k) {
    case 0: { /* seconds of 9 to 11 digits, a dot, 0 to 11 more */
        int sec = 10 + (r % 8 == 0) - (r % 8 == 1), frac = r % 16 < 12 ? 6 : (int)(r % 12);
        for (int i = 0; i < sec; i++)
            s[(*n)++] = digits[lcg(x) % 10];
        if (r % 32 != 3)
            s[(*n)++] = '.';
        for (int i = 0; i < frac; i++)
            s[(*n)++] = digits[lcg(x) % 10];
        break;
    }
    case 1: { /* 0 to 20 digits: the SWAR reads 1 to 8 */
        int len = r % 4 ? 1 + (int)(r >> 2) % 8 : (int)(r >> 2) % 21;
        for (int i = 0; i < len; i++)
            s[(*n)++] = digits[lcg(x) % 10];
        break;
    }
    case 2: { /* 3 to 5 octets of 0 to 4 digits, leading zeros, 255/256 */
        static const char *oct[] = {"0", "1", "10", "99", "100", "199", "249", "255", "256",
                                    "260", "300", "999", "01", "001", "000", "1000", "", "25"};
        int octets = r % 8 == 0 ? 3 + (int)(r >> 3) % 3 : 4;
        for (int i = 0; i < octets; i++) {
            const char *o = r % 4 ? PICK(x, oct) + 0 : "1";
            if (lcg(x) % 3)
                o = oct[lcg(x) % 11]; /* mostly valid */
            memcpy(s + *n, o, strlen(o));
            *n += strlen(o);
            if (i + 1 < octets)
                s[(*n)++] = '.';
        }
        break;
    }
    case 3: { /* labels, case, escapes, control bytes, empty labels, dots */
        int labels = 1 + (int)(r % 5), odd = r % 8 == 0;
        for (int i = 0; i < labels; i++) {
            int len = (int)(lcg(x) % (r % 16 == 1 ? 40 : 9));
            for (int j = 0; j < len; j++)
                s[(*n)++] = name_bytes[lcg(x) % (odd ? sizeof(name_bytes) - 1 : 12)];
            if (i + 1 < labels || lcg(x) % 4)
                s[(*n)++] = '.';
        }
        if (r % 32 == 5)
            s[(*n)++] = '.';
        break;
    }
    default: {
        const char *t = PICK(x, types);
        memcpy(s + *n, t, strlen(t));
        *n += strlen(t);
    }
    }
    if (lcg(x) % 40 == 0 && *n > at) /* one byte replaced */
        s[at + lcg(x) % (*n - at)] = "x|.0A \\9"[lcg(x) % 8];
}

/* Lines of the default layout (and of two more with its fields), every
 * field near to right, so that each of the mask steps (time, numbers,
 * IPv4, names, rrtypes, the listed cut) meets its edge cases inside
 * otherwise good lines: the mask steps and the scanners with the
 * record.c checks must agree on all of them. At least a quarter of them
 * must parse, or the lines would not be testing the good path. */
static void test_mask_fields_agree(void **state) {
    (void)state;
    static const char *layouts[] = {"SMcsCQTAtn", "SMcsCQTAtn", "SMQTAltn", "SMcsCQTA"};
    static const char *seps[] = {"||", "||", "|", ","};
    uint32_t x = 4242;
    int ok = 0, total = 200000;
    char line[512];
    for (int it = 0; it < total; it++) {
        unsigned pick = lcg(&x) % 4;
        csv_layout l;
        char err[128];
        assert_int_equal(csv_layout_init(&l, layouts[pick], seps[pick], err, sizeof(err)), 0);
        const char *sep = seps[pick];
        size_t n = 0;
        unsigned rt = lcg(&x) % 4; /* the answer's kind */
        static const char *kinds[] = {"A", "CNAME", "MX", "TXT"};
        int plan[12], np = 0;
        plan[np++] = 0;
        if (pick < 2 || pick == 3) {
            plan[np++] = 10; /* client */
            plan[np++] = 10; /* server */
            plan[np++] = 11; /* class */
        }
        plan[np++] = 3;
        plan[np++] = 12; /* the type */
        plan[np++] = rt == 0 ? 2 : rt == 3 ? 13 : 3;
        if (pick == 2)
            plan[np++] = 1; /* answer length */
        if (pick != 3) {
            plan[np++] = 1; /* ttl */
            plan[np++] = 1; /* count */
        }
        for (int f = 0; f < np; f++) {
            if (f) {
                memcpy(line + n, sep, strlen(sep));
                n += strlen(sep);
            }
            const char *lit = plan[f] == 10 ? "10.0.0.1" : plan[f] == 11 ? "IN"
                              : plan[f] == 13 ? "\"v=spf1 -all\"" : NULL;
            if (plan[f] == 12)
                lit = lcg(&x) % 8 ? kinds[rt] : NULL;
            if (lit) {
                memcpy(line + n, lit, strlen(lit));
                n += strlen(lit);
            } else {
                near_field(&x, plan[f] == 12 ? 4 : plan[f], line, &n);
            }
        }
        pdns_record r;
        char copy[512];
        const char *why;
        memcpy(copy, line, n);
        ok += csv_parse_line(&l, copy, n, &r, &why) == CSV_OK;
        const char *d = csv_diff(&l, line, n);
        if (d) {
            line[n] = '\0';
            fail_msg("layout %s: the mask steps and the scanners differ in %s: %s", l.letters,
                     d, line);
        }
    }
    print_message("%d of %d near-right lines parsed\n", ok, total);
    assert_true(ok > total / 4);
}

/* AAAA answers against inet_pton + inet_ntop, as text: 300,000 inputs,
 * a third of them inet_ntop's own text of a random address with many
 * zero groups (the canonical spelling the parser keeps as it is), a third
 * that text with one byte replaced, dropped or doubled, a third random
 * strings of hex digits, colons and dots. Each must be accepted with
 * exactly inet_ntop's text, or refused when inet_pton refuses it. */
static void test_ipv6_text_like_inet_ntop(void **state) {
    (void)state;
    static const char alpha[] = "0123456789abcdefABCDEF::::::...";
    csv_layout l;
    char err[128], buf[512], line[512], s[80], want[64];
    uint32_t x = 2026;
    int kept = 0;
    assert_int_equal(csv_layout_init(&l, "SQTA", "|", err, sizeof(err)), 0);
    static const char *edge[] = {"::ffff:102:304", "::102:304", "::ffff:0:0", "::1:0:0:0",
                                 "::", "::1", "1::", "0::1", "1::0", "1:0:0:2::3", "1::2:0:0:3",
                                 "1:0::2", "::0:1", "1:2:3:4:5:6:7::", "::2:3:4:5:6:7:8",
                                 "1:2:3:4:5:6::8", "ffff::", "::ffff", "1:2:3:4:5:6:7:8",
                                 ":::", "1:::2", "1::2::3", ":1::2", "1::2:", "01::1"};
    for (int it = 0; it < 300000 + (int)(sizeof(edge) / sizeof(edge[0])); it++) {
        unsigned char b[16];
        size_t n;
        unsigned kind = it >= 300000 ? 3 : lcg(&x) % 3;
        if (kind == 3) {
            snprintf(s, sizeof(s), "%s", edge[it - 300000]);
        } else if (kind < 2) {
            unsigned zeros = lcg(&x);
            for (int i = 0; i < 16; i += 2) {
                int z = (zeros >> (i / 2)) & 1 && lcg(&x) % 3;
                unsigned w = z ? 0 : lcg(&x) % 4 ? lcg(&x) & 0xffff : lcg(&x) & 0xf;
                b[i] = (unsigned char)(w >> 8);
                b[i + 1] = (unsigned char)w;
            }
            assert_non_null(inet_ntop(AF_INET6, b, s, sizeof(s)));
            n = strlen(s);
            if (kind == 1) { /* one byte replaced, dropped or doubled */
                size_t at = lcg(&x) % n;
                unsigned how = lcg(&x) % 3;
                if (how == 0)
                    s[at] = alpha[lcg(&x) % (sizeof(alpha) - 1)];
                else if (how == 1)
                    memmove(s + at, s + at + 1, n-- - at);
                else if (n < 60)
                    memmove(s + at + 1, s + at, ++n - at);
                s[n] = '\0';
            }
        } else {
            n = 1 + lcg(&x) % 40;
            for (size_t i = 0; i < n; i++)
                s[i] = alpha[lcg(&x) % (sizeof(alpha) - 1)];
            s[n] = '\0';
        }
        int valid = inet_pton(AF_INET6, s, b) == 1;
        if (valid)
            assert_non_null(inet_ntop(AF_INET6, b, want, sizeof(want)));
        snprintf(line, sizeof(line), "1|a.test.|AAAA|%s", s);
        pdns_record r;
        enum csv_result res = parse(&l, line, &r, buf);
        if (!valid && res != CSV_E_RDATA)
            fail_msg("%s: inet_pton refuses it, the parser gives %d", s, res);
        if (valid && (res != CSV_OK || !streq(r.rdata, want)))
            fail_msg("%s: got %d %.*s, want %s", s, res, (int)r.rdata.len, r.rdata.p, want);
        kept += valid && strcmp(s, want) == 0;
    }
    print_message("%d inputs were canonical already\n", kept);
    assert_true(kept > 50000);
}

/* pdns_ipv6_parse against inet_pton(AF_INET6): 500,000 strings, half
 * written as addresses (8 groups of 1-4 hex digits, a run of groups
 * replaced by "::", a dotted quad for the last two) and then, one time in
 * three, damaged (a byte replaced, dropped or doubled), half random bytes
 * from hex digits, colons and dots. The verdict and the 16 bytes must
 * match. */
static void test_ipv6_parse_like_inet_pton(void **state) {
    (void)state;
    static const char alpha[] = "0123456789abcdefABCDEF::::....g ";
    uint32_t x = 99;
    char s[80];
    int valid = 0;
    for (int it = 0; it < 500000; it++) {
        size_t n = 0;
        if (lcg(&x) & 1) {
            int quad = lcg(&x) % 4 == 0, groups = quad ? 6 : 8;
            int zs = (int)(lcg(&x) % (unsigned)(groups + 2)) - 1; /* "::" before group zs */
            int ze = zs + (int)(lcg(&x) % 4);                     /* ... replacing up to ze */
            for (int g = 0; g < groups; g++) {
                if (zs >= 0 && g >= zs && g <= ze) {
                    if (g == zs)
                        n += (size_t)snprintf(s + n, 3, "::");
                    continue;
                }
                if (n && s[n - 1] != ':')
                    s[n++] = ':';
                unsigned w = 1 + lcg(&x) % 4, v = lcg(&x) & 0xffff;
                n += (size_t)snprintf(s + n, 6, "%0*x", (int)w, v & ((1u << (4 * w)) - 1));
            }
            if (quad) {
                if (n && s[n - 1] != ':')
                    s[n++] = ':';
                n += (size_t)snprintf(s + n, 16, "%u.%u.%u.%u", lcg(&x) % 260, lcg(&x) % 256,
                                      lcg(&x) % 256, lcg(&x) % 256);
            }
            if (lcg(&x) % 3 == 0 && n > 1) { /* damage */
                size_t at = lcg(&x) % n;
                unsigned how = lcg(&x) % 3;
                if (how == 0)
                    s[at] = alpha[lcg(&x) % (sizeof(alpha) - 1)];
                else if (how == 1)
                    memmove(s + at, s + at + 1, n-- - at - 1);
                else if (n < 70)
                    memmove(s + at + 1, s + at, n++ - at);
            }
        } else {
            size_t len = lcg(&x) % 46;
            for (size_t i = 0; i < len; i++)
                s[n++] = alpha[lcg(&x) % (sizeof(alpha) - 1)];
        }
        s[n] = '\0';
        uint8_t a[16], b[16];
        int ra = pdns_ipv6_parse(s, n, a) == 0, rb = inet_pton(AF_INET6, s, b) == 1;
        if (ra != rb || (ra && memcmp(a, b, 16) != 0))
            fail_msg("\"%s\": ours %d, inet_pton %d", s, ra, rb);
        valid += rb;
    }
    print_message("%d of 500000 were addresses\n", valid);
    assert_true(valid > 50000); /* plenty of real addresses were seen */
}

/* Every IANA type name parses to its number, in upper and lower case
 * (the common ones take a fast path, the rest the table), "TYPEn" and "n"
 * to n, and a name with a byte too many or too few to nothing (or to
 * another real type). */
static void test_rrtype_names(void **state) {
    (void)state;
    int named = 0;
    for (unsigned n = 0; n < 65536; n++) {
        const char *name = pdns_rrtype_name((uint16_t)n);
        char buf[32];
        uint16_t t;
        if (name) {
            named++;
            size_t len = strlen(name);
            assert_int_equal(pdns_rrtype_parse(name, len, &t), 0);
            assert_int_equal(t, n);
            for (size_t i = 0; i <= len; i++)
                buf[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] + 32 : name[i]);
            assert_int_equal(pdns_rrtype_parse(buf, len, &t), 0);
            assert_int_equal(t, n);
            snprintf(buf, sizeof(buf), "%sX", name);
            if (pdns_rrtype_parse(buf, len + 1, &t) == 0 && t == n)
                fail_msg("%s: took a byte too many", buf);
            if (len > 1 && pdns_rrtype_parse(name, len - 1, &t) == 0 && t == n)
                fail_msg("%s: took a byte too few", name);
        }
        snprintf(buf, sizeof(buf), "TYPE%u", n);
        assert_int_equal(pdns_rrtype_parse(buf, strlen(buf), &t), 0);
        assert_int_equal(t, n);
        snprintf(buf, sizeof(buf), "%u", n);
        assert_int_equal(pdns_rrtype_parse(buf, strlen(buf), &t), 0);
        assert_int_equal(t, n);
    }
    assert_true(named > 80);
}

/* Local wall-clock times to UTC: both sides of each change, the hour that
 * occurs twice (the earlier), the hour that is skipped, and zones on either
 * side of UTC, against offsets known from the tz database. */
static void test_timezones(void **state) {
    (void)state;
    char err[256];
    const pdns_tz *lu = pdns_tz_get("Europe/Luxembourg", err, sizeof(err));
    const pdns_tz *ny = pdns_tz_get("America/New_York", err, sizeof(err));
    const pdns_tz *utc = pdns_tz_get("UTC", err, sizeof(err));
    assert_non_null(lu);
    assert_non_null(ny);
    assert_non_null(utc);
    assert_ptr_equal(pdns_tz_get("Europe/Luxembourg", err, sizeof(err)), lu);
    assert_null(pdns_tz_get("Europe/Atlantis", err, sizeof(err)));
    assert_non_null(strstr(err, "unknown time zone"));
    assert_null(pdns_tz_get("../../etc/passwd", err, sizeof(err)));
    /* wall clock as UTC seconds -> UTC */
    assert_int_equal(pdns_tz_to_utc(lu, 1782907200), 1782900000);     /* 2026-07-01 12:00 CEST */
    assert_int_equal(pdns_tz_to_utc(lu, 1768478400), 1768474800);     /* 2026-01-15 12:00 CET */
    assert_int_equal(pdns_tz_to_utc(lu, 1792895400), 1792888200);     /* 2026-10-25 02:30, twice: the CEST one */
    assert_int_equal(pdns_tz_to_utc(lu, 1774751400), 1774747800);     /* 2026-03-29 02:30, skipped: read as CET */
    assert_int_equal(pdns_tz_to_utc(lu, 1774755000), 1774747800);     /* 03:30 CEST, the same instant */
    assert_int_equal(pdns_tz_to_utc(ny, 1782907200), 1782921600);     /* 12:00 EDT = 16:00 UTC */
    assert_int_equal(pdns_tz_to_utc(ny, 1768478400), 1768496400);     /* 12:00 EST = 17:00 UTC */
    assert_int_equal(pdns_tz_to_utc(utc, 1782907200), 1782907200);
    /* through a layout */
    csv_layout l;
    assert_int_equal(csv_layout_init(&l, "HcsCQTAtn", NULL, err, sizeof(err)), 0);
    assert_int_equal(csv_layout_set_timezone(&l, "Europe/Luxembourg", err, sizeof(err)), 0);
    char line[] = "2026-07-01 12:00:00.250||c||s||IN||a.test.||A||10.0.0.1||60||1";
    pdns_record r;
    const char *why;
    memset(&r, 0, sizeof(r));
    assert_int_equal(csv_parse_line(&l, line, strlen(line), &r, &why), CSV_OK);
    assert_int_equal(r.time_first, 1782900000);
    assert_int_equal(r.time_first_ms, 1782900000250LL);
    assert_int_equal(csv_layout_set_timezone(&l, "Nowhere/Else", err, sizeof(err)), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_real_output_matches_json),
        cmocka_unit_test(test_all_real_files_parse),
        cmocka_unit_test(test_fields_and_normalisation),
        cmocka_unit_test(test_unescaped_separator),
        cmocka_unit_test(test_ipv6_canonical_like_inet_ntop),
        cmocka_unit_test(test_ipv6_parse_like_inet_pton),
        cmocka_unit_test(test_ipv6_text_like_inet_ntop),
        cmocka_unit_test(test_layouts),
        cmocka_unit_test(test_rejects),
        cmocka_unit_test(test_numbers_at_their_limits),
        cmocka_unit_test(test_timestamps_random),
        cmocka_unit_test(test_rrtype_names),
        cmocka_unit_test(test_mask_and_scanners_agree),
        cmocka_unit_test(test_mask_fields_agree),
        cmocka_unit_test(test_name_spellings),
        cmocka_unit_test(test_name_canon_agrees),
        cmocka_unit_test(test_timezones),
    };
    return cmocka_run_group_tests_name("csv", tests, NULL, NULL);
}
