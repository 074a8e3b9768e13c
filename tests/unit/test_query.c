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
#include "merge.h"
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

/* ---- a cluster store's pages merged (merge.c) ----------------------- */

typedef struct mtriple {
    char place[8], field[8];
    int shard;
} mtriple;

static int mt_cmp(const void *x, const void *y) {
    const mtriple *a = x, *b = y;
    int c = strcmp(a->place, b->place);
    return c ? c : strcmp(a->field, b->field);
}

/* 1 when triple t is after the position cursor ("<place>\n<field>": after
 * that field of that place; "<place>": after the whole place; "": all) */
static int after(const mtriple *t, const char *cursor) {
    if (!cursor[0])
        return 1;
    const char *nl = strchr(cursor, '\n');
    size_t pl = nl ? (size_t)(nl - cursor) : strlen(cursor);
    char place[16];
    snprintf(place, sizeof(place), "%.*s", (int)pl, cursor);
    int c = strcmp(t->place, place);
    if (c)
        return c > 0;
    return nl && strcmp(t->field, nl + 1) > 0;
}

static redisReply *str_reply(const char *s) {
    return store_reply_new(REDIS_REPLY_STRING, s, strlen(s));
}

/* One shard's page as store_query.lua gives it: its triples after cursor,
 * at most limit, having visited at most budget; its cursor is where it
 * stopped ("" when it is done). */
static redisReply *shard_page(const mtriple *all, size_t n, int shard, const char *cursor,
                              size_t limit, size_t budget) {
    redisReply *r = calloc(1, sizeof(*r));
    r->type = REDIS_REPLY_ARRAY;
    r->element = calloc(1 + (STORE_TRIPLE_ELEMENTS + 1) * n, sizeof(*r->element));
    r->elements = 1;
    char cur[32] = "";
    size_t got = 0, seen = 0;
    for (size_t i = 0; i < n; i++) {
        const mtriple *t = &all[i];
        if (t->shard != shard || !after(t, cursor))
            continue;
        if (got == limit || seen == budget)
            break;
        seen++;
        snprintf(cur, sizeof(cur), "%s\n%s", t->place, t->field);
        if (t->field[0] == 'x') /* filtered out: visited, not given */
            continue;
        const char *f[STORE_TRIPLE_ELEMENTS + 1] = {t->place, t->field, "1 2 3 |1|", "",
                                                    t->place};
        for (int k = 0; k < STORE_TRIPLE_ELEMENTS + 1; k++)
            r->element[r->elements++] = str_reply(f[k]);
        got++;
    }
    /* done when nothing of this shard is left after cur */
    int more = 0;
    for (size_t i = 0; i < n && !more; i++)
        more = all[i].shard == shard && after(&all[i], cur[0] ? cur : cursor) &&
               after(&all[i], cursor);
    r->element[0] = str_reply(more ? cur : "");
    return r;
}

static void test_merge_pages_as_one_server(void **state) {
    (void)state;
    srand(7);
    for (int round = 0; round < 300; round++) {
        size_t n = (size_t)(rand() % 60), limit = 1 + (size_t)(rand() % 9);
        size_t budget = rand() % 3 ? 1000 : 1 + (size_t)(rand() % 5);
        int shards = 1 + rand() % 5;
        mtriple *all = calloc(n ? n : 1, sizeof(*all));
        static const char al[] = "ab.-z";
        for (size_t i = 0; i < n; i++) {
            int pl = 1 + rand() % 3;
            for (int k = 0; k < pl; k++)
                all[i].place[k] = al[rand() % 5];
            snprintf(all[i].field, sizeof(all[i].field), "%c%d", rand() % 8 ? 'f' : 'x',
                     rand() % 4);
        }
        qsort(all, n, sizeof(*all), mt_cmp);
        size_t u = 0; /* one triple per (place, field); a place in one shard */
        for (size_t i = 0; i < n; i++)
            if (!u || mt_cmp(&all[u - 1], &all[i]) != 0)
                all[u++] = all[i];
        n = u;
        for (size_t i = 0; i < n; i++)
            all[i].shard = i && strcmp(all[i].place, all[i - 1].place) == 0
                               ? all[i - 1].shard : rand() % shards;
        /* page through the merged answers: every triple given is the next
         * one one server would give, none twice, none missed */
        char cursor[32] = "";
        size_t next = 0, pages = 0;
        do {
            redisReply *pg[8];
            for (int k = 0; k < shards; k++)
                pg[k] = shard_page(all, n, k, cursor, limit, budget);
            redisReply *m = store_merge_pages(pg, shards, limit, 1);
            assert_non_null(m);
            assert_true((m->elements - 1) / STORE_TRIPLE_ELEMENTS <= limit);
            for (size_t j = 1; j + STORE_TRIPLE_ELEMENTS <= m->elements;
                 j += STORE_TRIPLE_ELEMENTS) {
                while (next < n && all[next].field[0] == 'x')
                    next++;
                assert_true(next < n);
                assert_string_equal(m->element[j]->str, all[next].place);
                assert_string_equal(m->element[j + 1]->str, all[next].field);
                next++;
            }
            snprintf(cursor, sizeof(cursor), "%s", m->element[0]->str);
            freeReplyObject(m);
            for (int k = 0; k < shards; k++)
                freeReplyObject(pg[k]);
            assert_true(++pages < 1000);
        } while (cursor[0]);
        while (next < n && all[next].field[0] == 'x')
            next++;
        assert_int_equal(next, n);
        free(all);
    }
}

/* Address index members of several shards, paged through as the relay
 * does for a cluster's address lookups: every member once, in order. */
static void test_merge_members_in_order(void **state) {
    (void)state;
    srand(11);
    for (int round = 0; round < 300; round++) {
        int shards = 1 + rand() % 6;
        size_t n = (size_t)(rand() % 80), limit = 1 + (size_t)(rand() % 12);
        char (*all)[12] = calloc(n ? n : 1, sizeof(*all));
        int *sh = calloc(n ? n : 1, sizeof(*sh));
        for (size_t i = 0; i < n; i++) /* distinct, sorted: i in hex */
            snprintf(all[i], sizeof(all[i]), "4%08x", (unsigned)(i * 7)), sh[i] = rand() % shards;
        char cursor[12] = "";
        size_t next = 0, pages = 0;
        do {
            redisReply *pg[8];
            for (int k = 0; k < shards; k++) { /* the shard's members after cursor */
                pg[k] = calloc(1, sizeof(*pg[k]));
                pg[k]->type = REDIS_REPLY_ARRAY;
                pg[k]->element = calloc(1 + limit, sizeof(redisReply *));
                pg[k]->elements = 1;
                size_t got = 0, i = 0;
                const char *last = "";
                for (; i < n && got < limit; i++)
                    if (sh[i] == k && strcmp(all[i], cursor) > 0)
                        pg[k]->element[pg[k]->elements++] = str_reply(all[i]), got++,
                            last = all[i];
                int more = 0;
                for (; i < n; i++)
                    more |= sh[i] == k && strcmp(all[i], cursor) > 0;
                pg[k]->element[0] = str_reply(more ? last : "");
            }
            redisReply *m = store_merge_members(pg, shards, limit);
            assert_non_null(m);
            assert_true(m->elements - 1 <= limit);
            for (size_t j = 1; j < m->elements; j++)
                assert_string_equal(m->element[j]->str, all[next++]);
            snprintf(cursor, sizeof(cursor), "%s", m->element[0]->str);
            if (cursor[0]) /* the cursor is the last member given */
                assert_string_equal(cursor, all[next - 1]);
            freeReplyObject(m);
            for (int k = 0; k < shards; k++)
                freeReplyObject(pg[k]);
            assert_true(++pages < 1000);
        } while (cursor[0]);
        assert_int_equal(next, n);
        free(all);
        free(sh);
    }
}

/* The shards a range of addresses overlaps include the shard of every
 * address in it, and are few when the range is inside a few prefixes. */
static void test_ip_range_shards(void **state) {
    (void)state;
    srand(13);
    for (int round = 0; round < 2000; round++) {
        int n = 1 + rand() % 16, v6 = rand() % 2, nb = v6 ? 16 : 4;
        uint8_t addr[16], lo[16], hi[16];
        for (int i = 0; i < nb; i++)
            addr[i] = (uint8_t)rand();
        int plen = rand() % (8 * nb + 1);
        for (int i = 0; i < nb; i++) {
            int keep = plen - 8 * i;
            uint8_t mask = keep >= 8 ? 0xff : keep <= 0 ? 0 : (uint8_t)(0xff << (8 - keep));
            lo[i] = addr[i] & mask;
            hi[i] = (uint8_t)(addr[i] | (uint8_t)~mask);
        }
        char a[40], b[40], m[40];
        a[0] = b[0] = v6 ? '6' : '4';
        for (int i = 0; i < nb; i++) {
            snprintf(a + 1 + 2 * i, 3, "%02x", lo[i]);
            snprintf(b + 1 + 2 * i, 3, "%02x", hi[i]);
        }
        size_t al = strlen(a), bl = strlen(b);
        b[bl++] = ' ', b[bl++] = (char)0xff, b[bl] = '\0';
        uint8_t want[STORE_SHARDS_MAX];
        int k = store_ip_range_shards(n, a, al, b, bl, want);
        int within = plen >= (v6 ? 48 : 24);
        if (within) /* one prefix: one shard */
            assert_int_equal(k, 1);
        for (int t = 0; t < 20; t++) { /* addresses of the range */
            m[0] = a[0];
            for (int i = 0; i < nb; i++) {
                uint8_t x = (uint8_t)(lo[i] + (hi[i] > lo[i] ? rand() % (hi[i] - lo[i] + 1) : 0));
                snprintf(m + 1 + 2 * i, 3, "%02x", x);
            }
            assert_true(want[store_ip_shard(n, m, strlen(m))]);
        }
    }
}

/* st:layout: the shards, then the words in their order, nothing else */
static void test_layout_kind(void **state) {
    (void)state;
    static const struct {
        const char *layout;
        int nshards, want;
    } cases[] = {
        {"shards 12 ip-by-prefix ip-name", 12, STORE_LAYOUT_IP_BY_PREFIX | STORE_LAYOUT_IP_NAME},
        {"shards 12 ip-by-prefix", 12, STORE_LAYOUT_IP_BY_PREFIX},
        {"shards 12", 12, 0},
        {"shards 1 ip-name", 1, STORE_LAYOUT_IP_NAME},
        {"shards 1 ip-name r-rel", 1, STORE_LAYOUT_IP_NAME | STORE_LAYOUT_R_REL},
        {"shards 12 ip-by-prefix ip-name r-rel", 12,
         STORE_LAYOUT_IP_BY_PREFIX | STORE_LAYOUT_IP_NAME | STORE_LAYOUT_R_REL},
        {"shards 1 r-rel ip-name", 1, -1},
        {"shards 1", 1, 0},
        {"shards 6 ip-by-prefix", 12, -1},
        {"shards 120", 12, -1},
        {"shards 12 ip-name ip-by-prefix", 12, -1},
        {"shards 12 ip-by-prefixx", 12, -1},
        {"shards 12 ip-name ", 12, -1},
        {"", 1, -1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        if (store_layout_kind(cases[i].layout, cases[i].nshards) != cases[i].want)
            fail_msg("\"%s\" with %d shards: %d, want %d", cases[i].layout, cases[i].nshards,
                     store_layout_kind(cases[i].layout, cases[i].nshards), cases[i].want);
}

static void test_merge_info(void **state) {
    (void)state;
    redisReply *pg[2];
    const char *a[] = {"10", "4", "3", "0", "sensor-a", "7", "sensor-b", "3"};
    const char *b[] = {"5", "2", "2", "1", "sensor-b", "5"};
    for (int k = 0; k < 2; k++) {
        pg[k] = calloc(1, sizeof(*pg[k]));
        pg[k]->type = REDIS_REPLY_ARRAY;
        size_t n = k ? 6 : 8;
        pg[k]->element = calloc(n, sizeof(redisReply *));
        for (size_t i = 0; i < n; i++)
            pg[k]->element[pg[k]->elements++] = str_reply(k ? b[i] : a[i]);
    }
    redisReply *m = store_merge_info(pg, 2);
    const char *want[] = {"15", "6", "5", "1", "sensor-a", "7", "sensor-b", "8"};
    assert_int_equal(m->elements, 8);
    for (size_t i = 0; i < 8; i++)
        assert_string_equal(m->element[i]->str, want[i]);
    freeReplyObject(m);
    for (int k = 0; k < 2; k++)
        freeReplyObject(pg[k]);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reverse_name),
        cmocka_unit_test(test_ip_key),
        cmocka_unit_test(test_layout_kind),
        cmocka_unit_test(test_forms),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_cidr_property),
        cmocka_unit_test(test_filters),
        cmocka_unit_test(test_credential_lines),
        cmocka_unit_test(test_console_cookie),
        cmocka_unit_test(test_hist_window_quantiles),
        cmocka_unit_test(test_cluster_slots_and_urls),
        cmocka_unit_test(test_merge_pages_as_one_server),
        cmocka_unit_test(test_merge_info),
        cmocka_unit_test(test_merge_members_in_order),
        cmocka_unit_test(test_ip_range_shards),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
