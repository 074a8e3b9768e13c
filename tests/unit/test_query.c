/* test_query.c - query strings to store lookups (qparse), the store's key
 * helpers, and credential lines: every form, every error, and the CIDR
 * range arithmetic as a property over many random addresses. */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "console.h"
#include "hist.h"
#include "http_auth.h"
#include "qparse.h"
#include "rlink.h"
#include "store.h"

static void test_reverse_name(void **state) {
    char out[64];
    (void)state;
    size_t n = store_reverse_name("www.example.com", 15, out);
    assert_int_equal(n, 15);
    assert_memory_equal(out, "com.example.www", 15);
    n = store_reverse_name("com", 3, out);
    assert_memory_equal(out, "com", n);
    n = store_reverse_name(".", 1, out);
    assert_int_equal(n, 1);
    assert_int_equal(out[0], '.');
    assert_int_equal(store_rev_bucket("com.example.www", 15), 11);
    assert_int_equal(store_rev_bucket("com.example", 11), 11);
    assert_int_equal(store_rev_bucket("localhost", 9), 9);
    char b[8];
    store_fwd_bucket("www.example.com", 15, b);
    assert_string_equal(b, "f:b300");  /* FNV-1a of "www": a storage format */
}

static void test_ip_key(void **state) {
    char k[34];
    (void)state;
    assert_int_equal(store_ip_key("10.0.0.1", 8, k), 9);
    assert_string_equal(k, "40a000001");
    assert_int_equal(store_ip_key("::1", 3, k), 33);
    assert_string_equal(k, "600000000000000000000000000000001");
    assert_int_equal(store_ip_key("example.com", 11, k), 0);
    assert_int_equal(store_ip_key("10.0.0.256", 10, k), 0);
}

static qparse P;
static char err[256];

static int parse(const char *q, int rdata) {
    return qparse_query(&P, q, strlen(q), rdata, err, sizeof(err));
}

static void assert_range(const char *a, const char *b) {
    assert_int_equal(P.a.alen, strlen(a));
    assert_memory_equal(P.a.a, a, P.a.alen);
    assert_int_equal(P.a.blen, strlen(b));
    assert_memory_equal(P.a.b, b, P.a.blen);
}

static void test_forms(void **state) {
    (void)state;
    assert_int_equal(parse("WWW.Example.COM.", 0), 0);
    assert_string_equal(P.a.mode, "name");
    assert_string_equal(P.kind, "name");
    assert_int_equal(P.a.alen, 15);
    assert_memory_equal(P.a.a, "www.example.com", 15);

    assert_int_equal(parse("10.0.0.1", 0), 0);
    assert_string_equal(P.a.mode, "lex");
    assert_string_equal(P.a.kind, "ip");
    assert_string_equal(P.a.key, "ix:ip");
    assert_range("40a000001 ", "40a000001 \xff");

    assert_int_equal(parse("10.1.2.0/24", 0), 0);
    assert_string_equal(P.kind, "cidr");
    assert_range("40a010200", "40a0102ff \xff");

    assert_int_equal(parse("0.0.0.0/0", 0), 0);
    assert_range("400000000", "4ffffffff \xff");

    assert_int_equal(parse("2001:DB8::/32", 0), 0);
    assert_range("620010db8000000000000000000000000",
                 "620010db8ffffffffffffffffffffffff \xff");

    assert_int_equal(parse("*.Example.com", 0), 0);
    assert_string_equal(P.a.mode, "lex");
    assert_string_equal(P.a.kind, "rev");
    assert_string_equal(P.a.key, "r:com.example");
    assert_range("com.example.", "com.example.\xff");

    /* deeper zones live in the bucket of their last two labels */
    assert_int_equal(parse("*.a.b.example.com", 0), 0);
    assert_string_equal(P.a.key, "r:com.example");
    assert_range("com.example.b.a.", "com.example.b.a.\xff");

    /* a single label spans buckets: the bucket list, from "com." on */
    assert_int_equal(parse("*.com", 0), 0);
    assert_string_equal(P.a.mode, "lexn");
    assert_string_equal(P.a.key, "ix:rb");
    assert_range("com.", "com.\xff");

    assert_int_equal(parse("www.example.*", 0), 0);
    assert_string_equal(P.a.mode, "lex");
    assert_string_equal(P.a.kind, "fwd");
    char fb[8];
    store_fwd_bucket("www", 3, fb);
    assert_string_equal(P.a.key, fb);
    store_fwd_bucket("www.other.example", 17, fb); /* the first label decides */
    assert_string_equal(P.a.key, fb);
    assert_range("www.example.", "www.example.\xff");

    assert_int_equal(parse("NS1.example.net.", 1), 0);
    assert_string_equal(P.a.mode, "lex");
    assert_string_equal(P.a.kind, "rd");
    store_rd_bucket("ns1.example.net", 15, fb);
    assert_string_equal(P.a.key, fb);
    assert_range("ns1.example.net ", "ns1.example.net \xff");

    /* /errors/: one name, exactly, in the error lines' hash */
    assert_int_equal(qparse_query(&P, "Nope.Example.", 13, QP_ERRORS, err, sizeof(err)), 0);
    assert_string_equal(P.a.mode, "name");
    assert_string_equal(P.a.kind, "e");
    assert_int_equal(P.a.alen, 12);
    assert_memory_equal(P.a.a, "nope.example", 12);
    assert_int_equal(qparse_query(&P, "a..b", 4, QP_ERRORS, err, sizeof(err)), -1);

    /* a query is an address when it parses as one, else a name: "1.2.3"
     * and "33" are names; the empty query (clients fold "/query/." to
     * "/query/") is the root; an IDN is looked up as its A-labels */
    assert_int_equal(parse("1.2.3", 0), 0);
    assert_string_equal(P.a.mode, "name");
    assert_int_equal(parse("33", 0), 0);
    assert_string_equal(P.a.mode, "name");
    assert_int_equal(parse("3com.example", 0), 0);
    assert_string_equal(P.a.mode, "name");
    assert_int_equal(parse("", 0), 0);
    assert_int_equal(P.a.alen, 1);
    assert_memory_equal(P.a.a, ".", 1);
    assert_int_equal(parse("B\xc3\xbc" "cher.Example", 0), 0);
    assert_int_equal(P.a.alen, 21);
    assert_memory_equal(P.a.a, "xn--bcher-kva.example", 21);
}

static void test_errors(void **state) {
    static const struct {
        const char *q;
        int rdata;
        const char *needle;
    } bad[] = {
        {"10.0.0.0/33", 0, "prefix length"},
        {"name..", 0, "empty label"},
        {".a", 0, "empty label"},
        {"b\xc3\xbc" "cher..example", 0, "empty label"},
        {"b\xff" "x.example", 0, "internationalised"},
        {"10.0.0.0/", 0, "prefix length"},
        {"10.0.0.1/24", 0, "host bits"},
        {"10.0.0/24", 0, "CIDR"},
        {"2001:db8::1/129", 0, "prefix length"},
        {"2001:db8::zz", 0, "address"},
        {"www.*.com", 0, "wildcard"},
        {"*", 0, "wildcard"},
        {"a..b", 0, "empty label"},
        {"*.a..b", 0, "empty label"},
        {"bad name", 1, "space"},
        {"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx.com", 0,
         "63"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        assert_int_equal(parse(bad[i].q, bad[i].rdata), -1);
        if (!strstr(err, bad[i].needle))
            fail_msg("%s: \"%s\" lacks \"%s\"", bad[i].q, err, bad[i].needle);
    }
    char longname[300];
    memset(longname, 'a', sizeof(longname));
    for (int i = 10; i < 299; i += 11)
        longname[i] = '.';
    longname[299] = '\0';
    assert_int_equal(parse(longname, 0), -1);
    assert_non_null(strstr(err, "255"));
    /* 63-byte labels, escapes counted as one byte */
    char ok[80] = "";
    for (int i = 0; i < 62; i++)
        strcat(ok, "a");
    strcat(ok, "\\046.com");
    assert_int_equal(parse(ok, 0), 0);
}

/* A member of the IP index for address a lies in the CIDR's [a, b] range
 * exactly when the address is in the prefix: over random addresses and
 * prefixes, against a direct bit comparison. */
static void test_cidr_property(void **state) {
    (void)state;
    srand(42);
    for (int round = 0; round < 20000; round++) {
        int v6 = round & 1, nbytes = v6 ? 16 : 4, bits = nbytes * 8;
        uint8_t net[16], addr[16];
        for (int i = 0; i < nbytes; i++) {
            net[i] = (uint8_t)rand();
            addr[i] = (uint8_t)rand();
        }
        int plen = rand() % (bits + 1);
        /* half the time, an address that shares the prefix */
        if (rand() & 1)
            for (int i = 0; i < nbytes && 8 * i < plen; i++) {
                int keep = plen - 8 * i;
                uint8_t m = keep >= 8 ? 0xff : (uint8_t)(0xff << (8 - keep));
                addr[i] = (uint8_t)((net[i] & m) | (addr[i] & ~m));
            }
        for (int i = 0; i < nbytes; i++) {
            int keep = plen - 8 * i;
            uint8_t m = keep >= 8 ? 0xff : keep <= 0 ? 0 : (uint8_t)(0xff << (8 - keep));
            net[i] &= m;
        }
        char ntext[64], atext[64], q[80], key[34], member[120];
        inet_ntop(v6 ? AF_INET6 : AF_INET, net, ntext, sizeof(ntext));
        inet_ntop(v6 ? AF_INET6 : AF_INET, addr, atext, sizeof(atext));
        snprintf(q, sizeof(q), "%s/%d", ntext, plen);
        if (parse(q, 0) != 0)
            fail_msg("%s: %s", q, err);
        size_t kl = store_ip_key(atext, strlen(atext), key);
        int ml = snprintf(member, sizeof(member), "%.*s %d %s host.example", (int)kl,
                          key, v6 ? 28 : 1, atext);
        int ge = memcmp(member, P.a.a, P.a.alen < (size_t)ml ? P.a.alen : (size_t)ml);
        if (ge == 0)
            ge = (size_t)ml >= P.a.alen ? 0 : -1;
        size_t cl = P.a.blen < (size_t)ml ? P.a.blen : (size_t)ml;
        int le = memcmp(member, P.a.b, cl);
        if (le == 0)
            le = (size_t)ml <= P.a.blen ? 0 : 1;
        int in_range = ge >= 0 && le <= 0;
        int in_net = 1;
        for (int b = 0; b < plen; b++)
            if (((addr[b / 8] ^ net[b / 8]) >> (7 - b % 8)) & 1)
                in_net = 0;
        if (in_range != in_net)
            fail_msg("%s in %s: range says %d, bits say %d", atext, q, in_range, in_net);
    }
}

static void test_filters(void **state) {
    (void)state;
    assert_int_equal(parse("example.com", 0), 0);
    assert_int_equal(qparse_rrtypes(&P, "A, aaaa,15", err, sizeof(err)), 0);
    assert_int_equal(qparse_rrtypes(&P, "TYPE65", err, sizeof(err)), 0);
    assert_string_equal(P.a.types, ",1,28,15,65,");
    assert_int_equal(qparse_rrtypes(&P, "A,BOGUS", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "BOGUS"));
    assert_int_equal(qparse_rrtypes(&P, "A,,NS", err, sizeof(err)), -1);
    assert_int_equal(qparse_time(&P, "time_first_after", "1700000000", err, sizeof(err)), 1);
    assert_int_equal(P.a.tf_after, 1700000000);
    assert_int_equal(qparse_time(&P, "time_last_before", "17x", err, sizeof(err)), -1);
    assert_int_equal(qparse_time(&P, "time_last_before", "", err, sizeof(err)), -1);
    /* negative: seconds before now, as DNSDB's clients send */
    assert_int_equal(qparse_time(&P, "time_last_before", "-5", err, sizeof(err)), 1);
    assert_true(P.a.tl_before >= (int64_t)time(NULL) - 6 && P.a.tl_before <= (int64_t)time(NULL));
    assert_int_equal(qparse_time(&P, "time_last_before", "-9999999999", err, sizeof(err)), -1);
    assert_int_equal(qparse_time(&P, "limit", "5", err, sizeof(err)), 0);
}

static void test_credential_lines(void **state) {
    char kind, name[80], hash[160], role[HTTP_AUTH_ROLE_MAX];
    const char *why;
    (void)state;
    assert_int_equal(http_auth_parse_line("basic alice $argon2id$v=19$m=16384,t=2,p=1$c2FsdA$aGFzaA\n",
                                          &kind, name, hash, role, &why), 0);
    assert_int_equal(kind, 'b');
    assert_string_equal(name, "alice");
    assert_int_equal(http_auth_parse_line("key ci $argon2id$x", &kind, name, hash, role, &why), 0);
    assert_int_equal(kind, 'k');
    assert_int_equal(http_auth_parse_line("user bob $argon2id$x", &kind, name, hash, role, &why), -1);
    assert_int_equal(http_auth_parse_line("basic bob plaintext", &kind, name, hash, role, &why), -1);
    assert_non_null(strstr(why, "Argon2"));
    assert_int_equal(http_auth_parse_line("basic bob", &kind, name, hash, role, &why), -1);
    assert_int_equal(http_auth_parse_line("basic b.ob $argon2id$x", &kind, name, hash, role, &why), -1);
    assert_int_equal(http_auth_parse_line("basic bob $argon2id$x extra", &kind, name, hash, role, &why), -1);
    assert_non_null(strstr(why, "ROLE"));
    /* a console role: basic users only, one of three */
    assert_int_equal(http_auth_parse_line("basic carol $argon2id$x coordinator\n", &kind, name,
                                          hash, role, &why), 0);
    assert_string_equal(role, "coordinator");
    assert_int_equal(http_auth_parse_line("basic dave $argon2id$x", &kind, name, hash, role, &why), 0);
    assert_string_equal(role, "");
    assert_int_equal(http_auth_parse_line("key ci $argon2id$x admin", &kind, name, hash, role, &why), -1);
    assert_int_equal(http_auth_parse_line("basic e $argon2id$x viewer more", &kind, name, hash, role, &why), -1);
    assert_int_equal(http_auth_role_rank("viewer"), 1);
    assert_int_equal(http_auth_role_rank("admin"), 3);
    assert_int_equal(http_auth_role_rank("root"), 0);
}

/* The console's session cookie among others, and what is not one. */
/* The console's store write latency: what a histogram counted between two
 * copies of it, and the bucket bound of a quantile. */
static void test_hist_window_quantiles(void **state) {
    (void)state;
    pdns_hist a = {0}, snap, w;
    assert_true(pdns_hist_quantile(&a, 0.5) < 0);      /* nothing counted */
    for (int i = 0; i < 1000; i++)
        pdns_hist_add(&a, 0.3);                         /* an old slow period */
    snap = a;
    for (int i = 0; i < 98; i++)
        pdns_hist_add(&a, 0.0004);                      /* <= 0.5 ms */
    pdns_hist_add(&a, 0.004);                           /* <= 5 ms */
    pdns_hist_add(&a, 9.0);                             /* past the last bucket */
    pdns_hist_sub(&w, &a, &snap);
    assert_int_equal(w.count, 100);
    assert_true(pdns_hist_quantile(&w, 0.5) == 0.0005);
    assert_true(pdns_hist_quantile(&w, 0.99) == 0.005);
    assert_true(isinf(pdns_hist_quantile(&w, 1.0)));
    assert_true(pdns_hist_quantile(&a, 0.5) == 0.5);    /* the whole: the old period */
}

static void test_console_cookie(void **state) {
    char v[80];
    (void)state;
    assert_int_equal(console_cookie("a=1; pdns_console=abc; b=2", "pdns_console", v, sizeof(v)), 3);
    assert_string_equal(v, "abc");
    assert_int_equal(console_cookie("pdns_console=xyz", "pdns_console", v, sizeof(v)), 3);
    assert_int_equal(console_cookie("xpdns_console=1", "pdns_console", v, sizeof(v)), -1);
    assert_int_equal(console_cookie("pdns_consolex=1; other=2", "pdns_console", v, sizeof(v)), -1);
    assert_int_equal(console_cookie("", "pdns_console", v, sizeof(v)), -1);
    assert_int_equal(console_cookie(";;; ;", "pdns_console", v, sizeof(v)), -1);
    assert_int_equal(console_cookie("pdns_console=", "pdns_console", v, sizeof(v)), 0);
    assert_string_equal(v, "");
    /* longer than the room: refused, not cut */
    char big[200];
    memset(big, 'f', sizeof(big));
    memcpy(big, "pdns_console=", 13);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(console_cookie(big, "pdns_console", v, sizeof(v)), -1);
    /* the first of two wins */
    assert_int_equal(console_cookie("pdns_console=one; pdns_console=two", "pdns_console", v,
                                    sizeof(v)), 3);
    assert_string_equal(v, "one");
}

/* Redis Cluster's key slots: the examples of its specification, and the
 * URL forms of the relay's Redis link. */
static void test_cluster_slots_and_urls(void **state) {
    (void)state;
    assert_int_equal(rlink_key_slot("123456789", 9), 0x31c3 & 16383); /* CRC16 check value */
    assert_int_equal(rlink_key_slot("foo", 3), 12182);                /* CLUSTER KEYSLOT foo */
    assert_int_equal(rlink_key_slot("{user1000}.following", 20),
                     rlink_key_slot("{user1000}.followers", 20));
    assert_int_equal(rlink_key_slot("{user1000}.following", 20), rlink_key_slot("user1000", 8));
    /* the first {...} with something inside: "foo{}{bar}" hashes whole */
    assert_int_equal(rlink_key_slot("foo{}{bar}", 10), 8363);
    assert_int_equal(rlink_key_slot("foo{{bar}}zap", 13), rlink_key_slot("{bar", 4));
    assert_int_equal(rlink_key_slot("foo{bar}{zap}", 13), rlink_key_slot("bar", 3));
    assert_int_equal(rlink_url_kind("redis://127.0.0.1:6379/0"), 0);
    assert_int_equal(rlink_url_kind("redis+cluster://127.0.0.1:7000"), 1);
    assert_int_equal(rlink_url_kind("redis+cluster://a:7000,b:7001,[::1]:7002"), 1);
    assert_int_equal(rlink_url_kind("redis+cluster://"), -1);
    assert_int_equal(rlink_url_kind("redis+cluster://host"), -1);
    assert_int_equal(rlink_url_kind("redis+cluster://host:0"), -1);
    assert_int_equal(rlink_url_kind("redis+cluster://a:1,,b:2"), -1);
    assert_int_equal(rlink_url_kind("http://x"), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reverse_name),
        cmocka_unit_test(test_ip_key),
        cmocka_unit_test(test_forms),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_cidr_property),
        cmocka_unit_test(test_filters),
        cmocka_unit_test(test_credential_lines),
        cmocka_unit_test(test_console_cookie),
        cmocka_unit_test(test_hist_window_quantiles),
        cmocka_unit_test(test_cluster_slots_and_urls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
