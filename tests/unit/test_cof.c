/* test_cof.c - COF encoder/decoder: round trips over every line of real
 * sensor output, the accepted input forms, and every decoding error. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cof.h"
#include "csv.h"

static pdns_record got[8];
static pdns_record *owned[8];
static char gotbuf[8][4096];
static int ngot;

/* Records are views valid during the callback: keep deep copies. */
static int keep(void *ctx, const pdns_record *r) {
    (void)ctx;
    free(owned[ngot]);
    owned[ngot] = pdns_record_dup(r);
    got[ngot] = *owned[ngot];
    snprintf(gotbuf[ngot], sizeof(gotbuf[0]), "%s|%u|%.*s|%.*s", "", r->rrtype,
             (int)r->rrname.len, r->rrname.p, (int)r->rdata.len, r->rdata.p);
    ngot++;
    return 0;
}

static int decode(const char *s, char *err) {
    pdns_record init;
    memset(&init, 0, sizeof(init));
    ngot = 0;
    return cof_decode(s, strlen(s), &init, keep, NULL, err, 256);
}

static void test_round_trip_real(void **state) {
    (void)state;
    FILE *in = fopen("../data/sensor-b.full.csv", "r");
    csv_layout l;
    char err[256], line[8192];
    int n = 0;
    assert_non_null(in);
    assert_int_equal(csv_layout_init(&l, NULL, NULL, err, sizeof(err)), 0);
    while (fgets(line, sizeof(line), in)) {
        pdns_record r;
        const char *why;
        memset(&r, 0, sizeof(r));
        assert_int_equal(csv_parse_line(&l, line, strcspn(line, "\n"), &r, &why), CSV_OK);
        if (r.is_error)
            continue;
        r.sensor_id.p = "sensor-b";
        r.sensor_id.len = 8;
        pdns_buf b = {0};
        assert_int_equal(cof_encode(&r, COF_WITH_SENSOR | COF_WITH_MS, &b), 0);
        assert_int_equal(b.p[b.len - 1], '\n');
        assert_int_equal(pdns_buf_append(&b, "", 1), 0); /* for strlen */
        if (decode(b.p, err) != 1)
            fail_msg("%s: %s", b.p, err);
        assert_int_equal(got[0].rrtype, r.rrtype);
        assert_int_equal(got[0].rrname.len, r.rrname.len);
        assert_memory_equal(got[0].rrname.p, r.rrname.p, r.rrname.len);
        assert_int_equal(got[0].rdata.len, r.rdata.len);
        assert_memory_equal(got[0].rdata.p, r.rdata.p, r.rdata.len);
        assert_int_equal(got[0].time_first, r.time_first);
        assert_int_equal(got[0].time_last_ms, r.time_last_ms);
        assert_int_equal(got[0].count, r.count);
        assert_int_equal(got[0].sensor_id.len, 8);
        pdns_buf_free(&b);
        n++;
    }
    assert_true(n > 1500);
    fclose(in);
}

static void test_encoding(void **state) {
    (void)state;
    pdns_record r;
    pdns_buf b = {0};
    memset(&r, 0, sizeof(r));
    r.rrname.p = "a.test";
    r.rrname.len = 6;
    r.rrtype = 65280; /* unknown: a number */
    r.rdata.p = "x\"\\\t\x01\xc3\xa9\xff";
    r.rdata.len = 8;
    r.time_first = 1;
    r.time_last = 2;
    r.count = 3;
    assert_int_equal(cof_encode(&r, 0, &b), 0);
    assert_int_equal(pdns_buf_append(&b, "", 1), 0);
    assert_string_equal(b.p, "{\"rrname\":\"a.test\",\"rrtype\":65280,\"rdata\":"
                             "\"x\\\"\\\\\\t\\u0001\xc3\xa9\\\\255\",\"time_first\":1,"
                             "\"time_last\":2,\"count\":3}\n");
    pdns_buf_free(&b);
}

static void test_decode_forms(void **state) {
    (void)state;
    char err[256];
    /* CIRCL style: rdata array, rrtype by name, trailing dots */
    assert_int_equal(decode("{\"rrname\":\"WWW.Example.COM.\",\"rrtype\":\"A\",\"rdata\":[\"10.0.0.1\",\"10.0.0.2\"],"
                            "\"time_first\":10,\"time_last\":20,\"count\":5}", err), 2);
    assert_string_equal(gotbuf[0], "|1|www.example.com|10.0.0.1");
    assert_string_equal(gotbuf[1], "|1|www.example.com|10.0.0.2");
    assert_int_equal(got[1].count, 5);
    /* rrtype as number and as decimal string; real times; no count */
    assert_int_equal(decode("{\"rrname\":\"a.test\",\"rrtype\":28,\"rdata\":\"2001:DB8::0:1\","
                            "\"time_first\":1.5,\"time_last\":2.5}", err), 1);
    assert_string_equal(gotbuf[0], "|28|a.test|2001:db8::1");
    assert_int_equal(got[0].count, 1);
    assert_int_equal(decode("{\"rrname\":\"a.test\",\"rrtype\":\"65280\",\"rdata\":\"x\","
                            "\"time_first\":1,\"time_last\":2,\"sensor_id\":\"s9\",\"zone_time_first\":3}", err), 1);
    assert_int_equal(got[0].rrtype, 65280);
}

static void test_decode_errors(void **state) {
    (void)state;
    static const struct {
        const char *in, *err;
    } cases[] = {
        {"{\"rrname\":\"a\"", "column 13: "},
        {"[1]", "not a JSON object"},
        {"{\"rrtype\":\"A\",\"rdata\":\"1.2.3.4\",\"time_first\":1,\"time_last\":1}", "missing mandatory field \"rrname\""},
        {"{\"rrname\":\"a\",\"rdata\":\"1.2.3.4\",\"time_first\":1,\"time_last\":1}", "missing mandatory field \"rrtype\""},
        {"{\"rrname\":\"a\",\"rrtype\":\"A\",\"time_first\":1,\"time_last\":1}", "missing mandatory field \"rdata\""},
        {"{\"rrname\":\"a\",\"rrtype\":\"A\",\"rdata\":\"1.2.3.4\",\"time_last\":1}", "missing mandatory field \"time_first\""},
        {"{\"rrname\":\"a\",\"rrtype\":\"BOGUS\",\"rdata\":\"x\",\"time_first\":1,\"time_last\":1}", "field \"rrtype\" is not a known"},
        {"{\"rrname\":\"a\",\"rrtype\":\"A\",\"rdata\":\"x\",\"time_first\":1,\"time_last\":1}", "rdata: A answer is not an IPv4 address"},
        {"{\"rrname\":\"a\",\"rrtype\":\"A\",\"rdata\":[],\"time_first\":1,\"time_last\":1}", "field \"rdata\" must be a string or"},
        {"{\"rrname\":\"a\",\"rrtype\":\"A\",\"rdata\":[1],\"time_first\":1,\"time_last\":1}", "rdata[0] must be a string"},
        {"{\"rrname\":\"a\",\"rrtype\":\"A\",\"rdata\":\"1.2.3.4\",\"time_first\":\"1\",\"time_last\":1}", "field \"time_first\" must be a number"},
        {"{\"rrname\":\"a\",\"rrtype\":\"A\",\"rdata\":\"1.2.3.4\",\"time_first\":5,\"time_last\":1}", "time_last is before time_first"},
        {"{\"rrname\":\"a\",\"rrtype\":\"A\",\"rdata\":\"1.2.3.4\",\"time_first\":1,\"time_last\":1,\"count\":-1}", "field \"count\" must not be negative"},
        {"{\"rrname\":\"a..b\",\"rrtype\":\"A\",\"rdata\":\"1.2.3.4\",\"time_first\":1,\"time_last\":1}", "rrname: name has an empty label"},
        {"{\"rrname\":\"a\",\"rrname\":\"b\",\"rrtype\":\"A\",\"rdata\":\"1.2.3.4\",\"time_first\":1,\"time_last\":1}", "column"},
    };
    char err[256];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(decode(cases[i].in, err), -1);
        if (strncmp(err, cases[i].err, strlen(cases[i].err)) != 0)
            fail_msg("%s: got \"%s\", want \"%s...\"", cases[i].in, err, cases[i].err);
        assert_int_equal(ngot, 0);
    }
}

/* The fast reader and jansson alone give the same triples and the same
 * error for the forms only one of them reads itself. */
static int encode_into(void *ctx, const pdns_record *r) {
    return cof_encode(r, COF_WITH_SENSOR | COF_WITH_MS | COF_WITH_ORIGIN, ctx);
}

static void test_fast_reader_agrees(void **state) {
    (void)state;
    static const char *const lines[] = {
        "{\"rrname\":\"a.example\",\"rrtype\":\"A\",\"rdata\":\"192.0.2.1\",\"time_first\":1,\"time_last\":2}",
        " { \"rrname\" : \"a.example.\" , \"rrtype\" : 28 , \"rdata\" : [ \"2001:DB8::1\" , \"2001:db8::2\" ] ,"
        " \"time_first\" : 0 , \"time_last\" : 9 , \"count\" : 7 , \"time_first_ms\" : 5 ,"
        " \"time_last_ms\" : 9005 , \"bailiwick\" : \"example\" , \"sensor_id\" : \"s\" , \"origin\" : \"r1 r2\" }\r\n",
        "{\"rrname\":\"\\u0061.example\",\"rrtype\":\"A\",\"rdata\":\"192.0.2.1\",\"time_first\":1,\"time_last\":2}",
        "{\"rrname\":\"\xc3\xa9.example\",\"rrtype\":\"A\",\"rdata\":\"192.0.2.1\",\"time_first\":1,\"time_last\":2}",
        "{\"rrname\":\"a.example\",\"rrtype\":\"A\",\"rdata\":\"192.0.2.1\",\"time_first\":1.5,\"time_last\":2}",
        "{\"rrname\":\"a.example\",\"rrtype\":\"A\",\"rdata\":\"192.0.2.1\",\"time_first\":1,\"time_last\":2,\"bailiwick\":null}",
        "{\"rrname\":\"a.example\",\"rrtype\":\"A\",\"rdata\":\"192.0.2.1\",\"time_first\":1,\"time_last\":2,\"x\":[1]}",
        "{\"rrname\":\"a.example\",\"rrtype\":\"A\",\"rdata\":\"192.0.2.1\",\"time_first\":01,\"time_last\":2}",
        "{\"rrname\":\"a.example\",\"rrtype\":\"A\",\"rdata\":\"192.0.2.1\",\"time_first\":1,\"time_last\":1234567890123456789012}",
        "{\"rrname\":\"a.example\",\"rrtype\":\"A\",\"rdata\":\"192.0.2.1\",\"time_first\":1,\"time_first\":2,\"time_last\":2}",
        "{\"rrname\":\"a.example\",\"rrtype\":70000,\"rdata\":\"192.0.2.1\",\"time_first\":1,\"time_last\":2}",
        "{\"rrname\":\"a..example\",\"rrtype\":\"A\",\"rdata\":\"192.0.2.1\",\"time_first\":1,\"time_last\":2}",
        "{\"rrname\":\"a.example\",\"rrtype\":\"A\",\"rdata\":[\"192.0.2.1\",\"x\"],\"time_first\":1,\"time_last\":2}",
        "{\"rrname\":\"a.example\",\"rrtype\":\"A\",\"rdata\":[\"1.1.1.1\",\"1.1.1.2\",\"1.1.1.3\",\"1.1.1.4\","
        "\"1.1.1.5\",\"1.1.1.6\",\"1.1.1.7\",\"1.1.1.8\",\"1.1.1.9\"],\"time_first\":1,\"time_last\":2}",
        "{\"rrname\":\"a.example\",\"rrtype\":\"A\",\"rdata\":\"192.0.2.1\",\"time_first\":3,\"time_last\":2}",
        "{\"rrname\":\"a.example\",\"rrtype\":\"A\",\"rdata\":\"192.0.2.1\",\"time_first\":1,\"time_last\":2} x",
        "{\"rrname\":\"a.example\",\"rrtype\":\"A\",\"rdata\":\"192.0.2.1\",\"time_first\":1,\"time_last\":2",
    };
    /* line 3: a raw non-ASCII name is refused (IDNs come as punycode) */
    static const int want[] = {1, 2, 1, -1, 1, 1, 1, -1, -1, -1, -1, -1, -1, 9, -1, -1, -1};
    assert_int_equal(sizeof(want) / sizeof(want[0]), sizeof(lines) / sizeof(lines[0]));
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        pdns_record init;
        pdns_buf a = {0}, b = {0};
        char ea[256], eb[256];
        memset(&init, 0, sizeof(init));
        int n = cof_decode(lines[i], strlen(lines[i]), &init, encode_into, &a, ea, sizeof(ea));
        int m = cof_decode_json(lines[i], strlen(lines[i]), &init, encode_into, &b, eb,
                                sizeof(eb));
        if (n != m || a.len != b.len || (a.len && memcmp(a.p, b.p, a.len) != 0) ||
            (n < 0 && strcmp(ea, eb) != 0))
            fail_msg("line %zu: fast %d \"%s\" vs jansson %d \"%s\"", i, n, ea, m, eb);
        assert_int_equal(n, want[i]);
        pdns_buf_free(&a);
        pdns_buf_free(&b);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_real),
        cmocka_unit_test(test_encoding),
        cmocka_unit_test(test_decode_forms),
        cmocka_unit_test(test_decode_errors),
        cmocka_unit_test(test_fast_reader_agrees),
    };
    return cmocka_run_group_tests_name("cof", tests, NULL, NULL);
}
