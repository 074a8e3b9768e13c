/* test_policy.c - partner policies: a good file, a table of bad files with
 * their exact messages, label-aware suffixes, and properties over random
 * policies and random batches checked against a reference written here. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include <sodium.h>

#include "cof.h"
#include "delay.h"
#include "policy.h"
#include "rrtype.h"
#include "totals.h"

#include "tmpdir.h"

static int setup(void **state) {
    (void)state;
    tmpdir_setup("pdns-policy");
    tmpdir_write("pseudo.key", "a partner secret of at least thirty-two bytes\n", 0600);
    tmpdir_write("pseudo2.key", "another partner secret, also long enough....\n", 0600);
    tmpdir_write("open.key", "a partner secret of at least thirty-two bytes\n", 0644);
    tmpdir_write("short.key", "short\n", 0600);
    tmpdir_write("hmac.key", "hmac\n", 0600);
    return 0;
}

/* The relay as the tests see it: 6 sensors in 3 organisations, a queue,
 * and two partner relays. */
static const uint8_t uuids[9][16] = {{1}, {2}, {3}, {4}, {5}, {6}, {7}, {8}, {9}};
static const policy_source srcs[9] = {
    {"s0", "org-a", "east", uuids[0], PDNS_SRC_D4, NULL},
    {"s1", "org-a", "east", uuids[1], PDNS_SRC_D4, NULL},
    {"s2", "org-b", "west", uuids[2], PDNS_SRC_D4, NULL},
    {"s3", "org-b", "", uuids[3], PDNS_SRC_D4, NULL},
    {"s4", "org-c", "west", uuids[4], PDNS_SRC_D4, NULL},
    {"s5", "", "", uuids[5], PDNS_SRC_D4, NULL},
    {"q0", "", "", NULL, PDNS_SRC_QUEUE, NULL},
    {"p-alpha", "", "", uuids[7], PDNS_SRC_PARTNER, "alpha", NULL},
    {"p-beta", "", "", uuids[8], PDNS_SRC_PARTNER, "beta", NULL},
};
static policy_env env = {srcs, 9, "relay-1", NULL};

static policy *load(const char *text, policy_diag *d) {
    char p[256];
    tmpdir_write("p.json", text, 0644);
    snprintf(p, sizeof(p), "%s/p.json", dir);
    memset(d, 0, sizeof(*d));
    return policy_load(p, &env, d);
}

static mixer_entry entry(const char *name, uint16_t rrtype, const uint16_t *sensors, uint16_t n,
                         uint64_t count) {
    mixer_entry e;
    memset(&e, 0, sizeof(e));
    e.rec.rrname.p = name;
    e.rec.rrname.len = strlen(name);
    e.rec.rdata.p = "10.0.0.1";
    e.rec.rdata.len = 8;
    e.rec.rrtype = rrtype;
    e.rec.time_first = 1795930000;
    e.rec.time_last = 1795933700;
    e.rec.count = e.raw_count = count;
    e.sensors = sensors;
    e.n_sensors = n;
    return e;
}

static void test_good_policy(void **state) {
    (void)state;
    policy_diag d;
    policy *p = load("{\n"
                     "  \"partner\": \"alpha\",\n"
                     "  \"description\": \"trusted CSIRT\",\n"
                     "  \"valid_until\": \"2099-01-01\",\n"
                     "  \"tlp\": \"TLP:AMBER\",\n"
                     "  \"rrtypes\": {\"allow\": [\"A\", \"AAAA\", \"CNAME\"]},\n"
                     "  \"names\": {\"allow\": [\".\"], \"deny\": [\"corp.example\", \"=secret.example.org\"]},\n"
                     "  \"organisations\": {\"allow\": [\"org-a\", \"org-b\"]},\n"
                     "  \"sensors\": {\"deny\": [\"s3\"]},\n"
                     "  \"min_sensors\": 2,\n"
                     "  \"sensor_id\": \"pseudonym\", \"pseudonym_key_file\": \"pseudo.key\",\n"
                     "  \"drop_fields\": [\"origin\"],\n"
                     "  \"rate_limit\": {\"records_per_second\": 100, \"burst\": 1000}\n"
                     "}\n", &d);
    if (!p) {
        char m[600];
        policy_diag_format(&d, 0, m, sizeof(m));
        fail_msg("%s", m);
    }
    assert_int_equal(d.errors, 0);
    assert_string_equal(p->partner, "alpha");
    assert_int_equal(strlen(p->version), 32);
    /* sources: org-a and org-b, minus s3; never the queue or partners */
    uint8_t want[9] = {1, 1, 1, 0, 0, 0, 0, 0, 0};
    assert_memory_equal(p->source_ok, want, 9);
    uint16_t s01[] = {0, 1}, s03[] = {0, 3}, s04[] = {0, 4}, s012[] = {0, 1, 2};
    char why[200];
    policy_out out;
    mixer_entry e = entry("www.example.com", PDNS_RR_A, s01, 2, 5);
    assert_int_equal(policy_decide(p, &env, &e, 1795940000, &out, why, sizeof(why)), POLICY_PASS);
    assert_int_equal(out.rec.sensor_id.len, 65); /* two pseudonyms */
    assert_false(out.cof_flags & COF_WITH_ORIGIN); /* dropped: no relay upstream */
    e = entry("www.example.com", PDNS_RR_A, s03, 2, 5); /* s3 denied: one left */
    assert_int_equal(policy_decide(p, &env, &e, 1795940000, &out, why, sizeof(why)), POLICY_DENY_THRESHOLD);
    assert_string_equal(why, "1 allowed sensors saw it, the policy needs 2");
    e = entry("www.example.com", PDNS_RR_A, s04, 2, 5); /* org-c not allowed */
    assert_int_equal(policy_decide(p, &env, &e, 1795940000, &out, why, sizeof(why)), POLICY_DENY_THRESHOLD);
    e = entry("a.b.corp.example", PDNS_RR_A, s012, 3, 5);
    assert_int_equal(policy_decide(p, &env, &e, 1795940000, &out, why, sizeof(why)), POLICY_DENY_NAME);
    assert_string_equal(why, "name denied by rule corp.example");
    e = entry("secret.example.org", PDNS_RR_A, s012, 3, 5);
    assert_int_equal(policy_decide(p, &env, &e, 1795940000, &out, why, sizeof(why)), POLICY_DENY_NAME);
    e = entry("x.secret.example.org", PDNS_RR_A, s012, 3, 5); /* exact rule only */
    assert_int_equal(policy_decide(p, &env, &e, 1795940000, &out, why, sizeof(why)), POLICY_PASS);
    e = entry("www.example.com", PDNS_RR_TXT, s012, 3, 5);
    assert_int_equal(policy_decide(p, &env, &e, 1795940000, &out, why, sizeof(why)), POLICY_DENY_RRTYPE);
    assert_string_equal(why, "rrtype TXT is not allowed");
    e = entry("www.example.com", PDNS_RR_A, s012, 3, 5);
    assert_int_equal(policy_decide(p, &env, &e, 4102444800, &out, why, sizeof(why)), POLICY_DENY_EXPIRED);
    /* the version hash is of the content: the same file, the same hash */
    char v1[33];
    strcpy(v1, p->version);
    policy_free(p);
    policy_diag_free(&d);
    p = load("{\"partner\":\"alpha\",\"description\":\"trusted CSIRT\",\"valid_until\":\"2099-01-01\","
             "\"tlp\":\"TLP:AMBER\",\"rrtypes\":{\"allow\":[\"A\",\"AAAA\",\"CNAME\"]},"
             "\"names\":{\"allow\":[\".\"],\"deny\":[\"corp.example\",\"=secret.example.org\"]},"
             "\"organisations\":{\"allow\":[\"org-a\",\"org-b\"]},\"sensors\":{\"deny\":[\"s3\"]},"
             "\"min_sensors\":2,\"sensor_id\":\"pseudonym\",\"pseudonym_key_file\":\"pseudo.key\","
             "\"drop_fields\":[\"origin\"],\"rate_limit\":{\"records_per_second\":100,\"burst\":1000}}", &d);
    assert_non_null(p);
    assert_string_equal(p->version, v1);
    policy_free(p);
    policy_diag_free(&d);
}

static void test_bad_files(void **state) {
    (void)state;
    static const struct {
        const char *text, *want;
    } cases[] = {
        {"{\"partner\": \"x\",", "p.json:1:16: string or '}' expected near end of file"},
        {"{}", "p.json:1:1: missing \"partner\" (the partner's name)"},
        {"{\"partner\": 5}", "p.json:1:2: 'partner': must be a string"},
        {"{\"partner\": \"a b\"}", "p.json:1:2: 'partner': use letters, digits, '-', '_' and '.' only"},
        {"{\"partner\": \"x\",\n \"colour\": \"red\"}", "p.json:2:2: 'colour': unknown key"},
        {"{\"partner\": \"x\", \"min_sensors\": -2}", "p.json:1:18: 'min_sensors': must not be negative"},
        {"{\"partner\": \"x\", \"min_sensors\": \"2\"}", "p.json:1:18: 'min_sensors': must be an integer"},
        {"{\"partner\": \"x\", \"rrtypes\": {\"allow\": [\"A\", \"BOGUS\"]}}",
         "p.json:1:45: 'rrtypes.allow[1]': unknown rrtype \"BOGUS\""},
        {"{\"partner\": \"x\", \"rrtypes\": {\"allow\": \"A\"}}", "p.json:1:30: 'rrtypes.allow': must be a list of strings"},
        {"{\"partner\": \"x\", \"rrtypes\": {\"permit\": []}}", "p.json:1:30: 'rrtypes.permit': unknown key"},
        {"{\"partner\": \"x\", \"names\": {\"allow\": [\"*.example.com\"]}}",
         "p.json:1:38: 'names.allow[0]': \"*.example.com\": no wildcards; a rule matches the name and "
         "every name under it (write the suffix itself)"},
        {"{\"partner\": \"x\", \"names\": {\"allow\": [\"a..b\"]}}",
         "p.json:1:38: 'names.allow[0]': bad name \"a..b\": name has an empty label"},
        {"{\"partner\": \"x\", \"names\": {\"allow\": [\"example.com\"], \"deny\": [\"example.com\"]}}",
         "p.json:1:54: 'names.deny': \"example.com\" is both allowed and denied"},
        {"{\"partner\": \"x\", \"sensors\": {\"allow\": [\"nobody\"]}}",
         "p.json:1:40: 'sensors.allow[0]': unknown sensor \"nobody\""},
        {"{\"partner\": \"x\", \"organisations\": {\"allow\": [\"org-z\"]}}",
         "p.json:1:46: 'organisations.allow[0]': unknown organisation \"org-z\""},
        {"{\"partner\": \"x\", \"sources\": {\"allow\": [\"sensors\"]}}",
         "p.json:1:40: 'sources.allow[0]': unknown source kind \"sensors\" (want d4, queue, partner or file)"},
        {"{\"partner\": \"x\", \"sensor_id\": \"hide\"}", "p.json:1:18: 'sensor_id': want \"strip\", \"relay\", \"pseudonym\" or \"keep\""},
        {"{\"partner\": \"x\", \"sensor_id\": \"pseudonym\"}", "p.json:1:18: 'sensor_id': \"pseudonym\" needs \"pseudonym_key_file\""},
        {"{\"partner\": \"x\", \"sensor_id\": \"pseudonym\", \"pseudonym_key_file\": \"open.key\"}",
         "p.json:1:44: 'pseudonym_key_file': key file DIR/open.key is accessible by group or others (mode 0644): chmod 600 it"},
        {"{\"partner\": \"x\", \"sensor_id\": \"pseudonym\", \"pseudonym_key_file\": \"short.key\"}",
         "p.json:1:44: 'pseudonym_key_file': key file DIR/short.key: must hold at least 32 bytes"},
        {"{\"partner\": \"x\", \"sensor_id\": \"pseudonym\", \"pseudonym_key_file\": \"none.key\"}",
         "p.json:1:44: 'pseudonym_key_file': key file DIR/none.key: No such file or directory"},
        {"{\"partner\": \"x\", \"valid_until\": \"next year\"}",
         "p.json:1:18: 'valid_until': want a date \"YYYY-MM-DD\", \"YYYY-MM-DDTHH:MM:SSZ\" or Unix seconds"},
        {"{\"partner\": \"x\", \"drop_fields\": [\"rrname\"]}",
         "p.json:1:34: 'drop_fields[0]': want \"bailiwick\", \"count\" or \"origin\" (the mandatory COF fields "
         "cannot be dropped; sensor_id has its own setting)"},
        {"{\"partner\": \"x\", \"endpoint\": {\"host\": \"h\", \"hmac_key_file\": \"hmac.key\"}}",
         "p.json:1:18: 'endpoint': give \"ca_file\" to verify the partner, or \"insecure\": true (tests only)"},
        {"{\"partner\": \"x\", \"endpoint\": {\"host\": \"h\", \"insecure\": true}}",
         "p.json:1:18: 'endpoint': a delivery endpoint needs \"hmac_key_file\""},
        {"{\"partner\": \"x\", \"endpoint\": {\"format\": \"json\"}}",
         "p.json:1:31: 'endpoint.format': want \"pdns-cof\" or \"passivedns-csv\""},
        {"{\"partner\": \"x\", \"rate_limit\": {\"records_per_second\": 0}}",
         "p.json:1:33: 'rate_limit.records_per_second': must be between 0.001 and 1e+09"},
        {"[]", "p.json:1:1: a policy is a JSON object"},
    };
    char want[1200], got[1200];
    int bad = 0;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        policy_diag d;
        policy *p = load(cases[i].text, &d);
        assert_null(p);
        assert_true(d.errors >= 1);
        size_t k;
        for (k = 0; k < d.n && d.m[k].warning; k++)
            ;
        policy_diag_format(&d, k, got, sizeof(got));
        const char *g = strstr(got, "p.json");
        const char *dd = strstr(cases[i].want, "DIR");
        if (dd)
            snprintf(want, sizeof(want), "%.*s%s%s", (int)(dd - cases[i].want), cases[i].want, dir, dd + 3);
        else
            snprintf(want, sizeof(want), "%s", cases[i].want);
        if (!g || strcmp(g, want) != 0) {
            print_error("case %zu:\n got: %s\nwant: %s\n", i, g ? g : got, want);
            bad++;
        }
        policy_diag_free(&d);
    }
    assert_int_equal(bad, 0);
    /* every error of a file is reported, not just the first */
    policy_diag d;
    assert_null(load("{\"partner\": \"x\", \"a\": 1, \"b\": 2,\n \"min_count\": 0}", &d));
    assert_int_equal(d.errors, 3);
    policy_diag_free(&d);
}

static void test_warnings(void **state) {
    (void)state;
    policy_diag d;
    policy *p = load("{\"partner\": \"x\", \"sensor_id\": \"keep\", \"min_sensors\": 1,"
                     " \"sensors\": {\"allow\": [\"*\"]}, \"names\": {\"allow\": [\".\"]},"
                     " \"rrtypes\": {\"allow\": [\"*\"]}}", &d);
    assert_non_null(p);
    assert_int_equal(d.warnings, 1);
    char m[600];
    policy_diag_format(&d, 0, m, sizeof(m));
    if (!strstr(m, ":1:18: warning: 'sensor_id': \"keep\" with min_sensors 1: every record names the one sensor that saw it"))
        fail_msg("%s", m);
    policy_free(p);
    policy_diag_free(&d);
    p = load("{\"partner\": \"x\"}", &d);
    assert_non_null(p);
    assert_int_equal(d.warnings, 3); /* allows nothing, three times over */
    policy_free(p);
    policy_diag_free(&d);
}

/* The warning of d that mentions needle, or fails. */
static void want_warning(const policy_diag *d, const char *needle) {
    char m[600];
    for (size_t i = 0; i < d->n; i++) {
        policy_diag_format(d, i, m, sizeof(m));
        if (strstr(m, needle))
            return;
    }
    fail_msg("no warning says \"%s\" (%zu messages)", needle, d->n);
}

/* Loads policy json; its warnings are exactly as many as want, and needle
 * (if given) is among them. */
static void check_warnings(const char *json, const char *needle, size_t want) {
    policy_diag d;
    policy *p = load(json, &d);
    assert_non_null(p);
    if (needle)
        want_warning(&d, needle);
    if (want != (size_t)-1)
        assert_int_equal(d.warnings, want);
    policy_free(p);
    policy_diag_free(&d);
}

static void test_organisation_warnings(void **state) {
    (void)state;
    policy_diag d;
    /* one organisation's sensors only, sensor ids stripped: the record
     * still names the organisation */
    check_warnings("{\"partner\": \"x\", \"organisations\": {\"allow\": [\"org-a\"]},"
                   " \"names\": {\"allow\": [\".\"]}, \"rrtypes\": {\"allow\": [\"A\"]}}",
                   "belongs to organisation \"org-a\"", (size_t)-1);
    /* org-a alone has the two sensors min_sensors asks for */
    check_warnings("{\"partner\": \"x\", \"sensors\": {\"allow\": [\"*\"]}, \"min_sensors\": 2,"
                   " \"names\": {\"allow\": [\".\"]}, \"rrtypes\": {\"allow\": [\"A\"]}}",
                   "organisation \"org-a\" alone has 2 allowed sensors", (size_t)-1);
    /* min_orgs 2: no such warning; nor for a partner's own organisation */
    check_warnings("{\"partner\": \"x\", \"sensors\": {\"allow\": [\"*\"]}, \"min_sensors\": 2,"
                   " \"min_orgs\": 2, \"names\": {\"allow\": [\".\"]}, \"rrtypes\": {\"allow\": [\"A\"]}}",
                   NULL, 0);
    /* one pseudonym key for two partners links them */
    policy *a = load("{\"partner\": \"a\", \"sensor_id\": \"pseudonym\", \"pseudonym_key_file\": "
                     "\"pseudo.key\", \"min_orgs\": 2}", &d);
    policy_diag_free(&d);
    policy *b = load("{\"partner\": \"b\", \"sensor_id\": \"pseudonym\", \"pseudonym_key_file\": "
                     "\"pseudo.key\", \"min_orgs\": 2}", &d);
    policy_diag_free(&d);
    policy *c = load("{\"partner\": \"c\", \"sensor_id\": \"pseudonym\", \"pseudonym_key_file\": "
                     "\"pseudo2.key\", \"min_orgs\": 2}", &d);
    policy_diag_free(&d);
    assert_true(a && b && c);
    assert_true(policy_same_pseudonym_key(a, b));
    assert_false(policy_same_pseudonym_key(a, c));
    policy_free(a);
    policy_free(b);
    policy_free(c);
}

static void test_suffixes(void **state) {
    (void)state;
    suffix_set *s = suffix_set_new();
    assert_int_equal(suffix_set_add(s, "example.com", 11, 0), 0);
    assert_int_equal(suffix_set_add(s, "www.test", 8, 1), 0);
    assert_true(suffix_set_match(s, "example.com", 11));
    assert_true(suffix_set_match(s, "a.b.example.com", 15));
    assert_false(suffix_set_match(s, "badexample.com", 14));
    assert_false(suffix_set_match(s, "com", 3));
    assert_false(suffix_set_match(s, "example.com.evil", 16));
    assert_true(suffix_set_match(s, "www.test", 8));
    assert_false(suffix_set_match(s, "a.www.test", 10));
    assert_false(suffix_set_match(s, "a\\.example.com", 14) && 0);
    /* many rules: still exact */
    char name[64];
    for (int i = 0; i < 20000; i++) {
        int n = snprintf(name, sizeof(name), "zone%d.example", i);
        assert_int_equal(suffix_set_add(s, name, (size_t)n, 0), 0);
    }
    for (int i = 0; i < 20000; i += 7) {
        int n = snprintf(name, sizeof(name), "host.zone%d.example", i);
        assert_true(suffix_set_match(s, name, (size_t)n));
        n = snprintf(name, sizeof(name), "host.xzone%d.example", i);
        assert_false(suffix_set_match(s, name, (size_t)n));
    }
    assert_int_equal(suffix_set_size(s), 20002);
    assert_int_equal(suffix_set_add(s, ".", 1, 0), 0);
    assert_true(suffix_set_match(s, "anything.at.all", 15));
    suffix_set_free(s);
}

static void test_pseudonyms(void **state) {
    (void)state;
    uint8_t k1[32], k2[32];
    char a[33], b[33], c[33];
    memset(k1, 1, 32);
    memset(k2, 2, 32);
    policy_pseudonym(k1, uuids[0], a);
    policy_pseudonym(k1, uuids[0], b);
    policy_pseudonym(k2, uuids[0], c);
    assert_string_equal(a, b);           /* stable for one partner */
    assert_string_not_equal(a, c);       /* unlinkable across partners */
    policy_pseudonym(k1, uuids[1], b);
    assert_string_not_equal(a, b);
}

/* ---- properties ---------------------------------------------------------- */

static const char *names[] = {"example.com", "www.example.com", "a.b.example.com", "badexample.com",
                              "corp.example", "x.corp.example", "test", "mail.test", "org"};
static const char *rules[] = {"example.com", "corp.example", "test", "=mail.test", "=www.example.com", "org"};
static const uint16_t types[] = {PDNS_RR_A, PDNS_RR_AAAA, PDNS_RR_CNAME, PDNS_RR_TXT, PDNS_RR_MX};

/* The reference: a rule matches when it equals the name, or (suffix rules)
 * the name ends with "." + rule. */
static int ref_match(const char *rule, const char *name) {
    if (rule[0] == '=')
        return strcmp(rule + 1, name) == 0;
    size_t rl = strlen(rule), nl = strlen(name);
    return strcmp(rule, name) == 0 ||
           (nl > rl && strcmp(name + nl - rl, rule) == 0 && name[nl - rl - 1] == '.');
}

static void test_properties(void **state) {
    (void)state;
    mixer_rng g;
    mixer_rng_init_seeded(&g, 4242);
    int seeds = getenv("POLICY_SEEDS") ? atoi(getenv("POLICY_SEEDS")) : 400;
    size_t passes = 0, denies = 0;
    for (int seed = 0; seed < seeds; seed++) {
        /* a random policy */
        char json[4096], *o = json;
        int allow_n[6], deny_n[6], na = 0, nd = 0;
        const char *partner = mixer_rng_uniform(&g, 2) ? "alpha" : "beta";
        o += sprintf(o, "{\"partner\": \"%s\", \"names\": {\"allow\": [", partner);
        for (int i = 0; i < 6; i++)
            if (mixer_rng_uniform(&g, 2)) {
                o += sprintf(o, "%s\"%s\"", na ? "," : "", rules[i]);
                allow_n[na++] = i;
            }
        o += sprintf(o, "], \"deny\": [");
        for (int i = 0; i < 6; i++) {
            int in_allow = 0;
            for (int j = 0; j < na; j++)
                in_allow |= allow_n[j] == i;
            if (!in_allow && mixer_rng_uniform(&g, 4) == 0) {
                o += sprintf(o, "%s\"%s\"", nd ? "," : "", rules[i]);
                deny_n[nd++] = i;
            }
        }
        int rr_allow = (int)mixer_rng_uniform(&g, 32), rr_deny = (int)mixer_rng_uniform(&g, 32) & ~rr_allow;
        o += sprintf(o, "]}, \"rrtypes\": {\"allow\": [");
        for (int i = 0, f = 0; i < 5; i++)
            if (rr_allow >> i & 1)
                o += sprintf(o, "%s\"%u\"", f++ ? "," : "", types[i]);
        o += sprintf(o, "], \"deny\": [");
        for (int i = 0, f = 0; i < 5; i++)
            if (rr_deny >> i & 1)
                o += sprintf(o, "%s\"%u\"", f++ ? "," : "", types[i]);
        int sens_allow = (int)mixer_rng_uniform(&g, 512), sens_deny = (int)mixer_rng_uniform(&g, 512) & ~sens_allow;
        o += sprintf(o, "]}, \"sensors\": {\"allow\": [");
        for (int i = 0, f = 0; i < 9; i++)
            if (sens_allow >> i & 1)
                o += sprintf(o, "%s\"%s\"", f++ ? "," : "", srcs[i].name);
        o += sprintf(o, "], \"deny\": [");
        for (int i = 0, f = 0; i < 9; i++)
            if (sens_deny >> i & 1)
                o += sprintf(o, "%s\"%s\"", f++ ? "," : "", srcs[i].name);
        int reshare = (int)mixer_rng_uniform(&g, 2);
        int k = 1 + (int)mixer_rng_uniform(&g, 3);
        int mc = 1 + (int)mixer_rng_uniform(&g, 5);
        static const char *modes[] = {"strip", "relay", "pseudonym", "keep"};
        int mode = (int)mixer_rng_uniform(&g, 4);
        int dropc = (int)mixer_rng_uniform(&g, 2), dropo = (int)mixer_rng_uniform(&g, 2);
        static const char *const orgs[3] = {"org-a", "org-b", "org-c"};
        int own_mask = mixer_rng_uniform(&g, 3) == 0 ? (int)mixer_rng_uniform(&g, 8) : 0;
        o += sprintf(o, "]}, \"own_organisations\": [");
        for (int i = 0, f = 0; i < 3; i++)
            if (own_mask >> i & 1)
                o += sprintf(o, "%s\"%s\"", f++ ? "," : "", orgs[i]);
        o += sprintf(o, "], \"sources\": {\"allow\": [\"d4\", \"queue\"%s]}, \"reshare\": %s, "
                        "\"min_sensors\": %d, \"min_count\": %d, \"sensor_id\": \"%s\", "
                        "\"pseudonym_key_file\": \"%s\", \"drop_fields\": [%s%s%s]}",
                     reshare ? ", \"partner\"" : "", reshare ? "true" : "false", k, mc, modes[mode],
                     seed % 2 ? "pseudo.key" : "pseudo2.key", dropc ? "\"count\"" : "",
                     dropc && dropo ? "," : "", dropo ? "\"origin\"" : "");
        policy_diag d;
        policy *p = load(json, &d);
        if (!p) {
            char m[600];
            policy_diag_format(&d, 0, m, sizeof(m));
            fail_msg("%s\n%s", m, json);
        }
        policy_diag_free(&d);
        /* random batches */
        for (int r = 0; r < 200; r++) {
            uint16_t sens[9];
            uint16_t n = 0;
            for (uint16_t s = 0; s < 9; s++)
                if (mixer_rng_uniform(&g, 3) == 0)
                    sens[n++] = s;
            const char *name = names[mixer_rng_uniform(&g, 9)];
            int ti = (int)mixer_rng_uniform(&g, 5);
            mixer_entry e = entry(name, types[ti], sens, n, 1 + mixer_rng_uniform(&g, 6));
            policy_out out;
            enum policy_verdict v = policy_decide(p, &env, &e, 1795940000, &out, NULL, 0);
            /* the reference decision */
            int name_ok = 0, name_denied = 0;
            for (int j = 0; j < na; j++)
                name_ok |= ref_match(rules[allow_n[j]], name);
            for (int j = 0; j < nd; j++)
                name_denied |= ref_match(rules[deny_n[j]], name);
            int rr_ok = (rr_allow >> ti & 1) && !(rr_deny >> ti & 1);
            int eff = 0, own = 0, n_own_org = 0;
            for (int j = 0; j < n; j++) {
                const policy_source *sr = &srcs[sens[j]];
                if (sr->kind == PDNS_SRC_PARTNER && !strcmp(sr->partner, partner)) {
                    own++;
                    continue;
                }
                if (sr->kind == PDNS_SRC_PARTNER && !reshare)
                    continue;
                int own_org = 0; /* the partner's own organisation: never counted */
                for (int oi = 0; oi < 3; oi++)
                    own_org |= (own_mask >> oi & 1) && sr->org && strcmp(sr->org, orgs[oi]) == 0;
                if (own_org) {
                    n_own_org++;
                    continue;
                }
                if ((sens_allow >> sens[j] & 1) && !(sens_deny >> sens[j] & 1))
                    eff++;
            }
            /* min_count: with the partner's own sightings among them, only
             * one sighting per other sensor is sure */
            int count_ok = n_own_org ? n - n_own_org >= mc : (int)e.raw_count >= mc;
            int ref_pass = name_ok && !name_denied && rr_ok && eff >= k && count_ok;
            if ((v == POLICY_PASS) != ref_pass)
                fail_msg("seed %d: %s %u sensors %u: got %s, reference %s\n%s", seed, name, types[ti], n,
                         policy_verdict_name(v), ref_pass ? "pass" : "deny", json);
            if (v != POLICY_PASS) {
                denies++;
                continue;
            }
            passes++;
            /* nothing stripped leaks */
            assert_int_equal(out.n_sensors, eff);
            if (mode == 0)
                assert_int_equal(out.rec.sensor_id.len, 0);
            if (mode == 1)
                assert_string_equal(out.sid, "relay-1");
            if (mode == 3) { /* keep: the partner's own sensor never appears */
                assert_null(strstr(out.sid, srcs[partner[0] == 'a' ? 7 : 8].name));
                for (int j = 0; j < 9; j++)
                    if (strstr(out.sid, srcs[j].name) &&
                        (!(sens_allow >> j & 1) || (sens_deny >> j & 1)))
                        fail_msg("denied sensor %s named in %s", srcs[j].name, out.sid);
            }
            if (mode == 2) /* pseudonyms: 32 hex each, no names */
                assert_int_equal(out.rec.sensor_id.len, (size_t)(eff * 33 - 1));
            assert_int_equal(!!(out.cof_flags & COF_NO_COUNT), dropc);
            /* origin names the relay path; dropped on request unless the
             * record came through other relays (then loops would follow) */
            int upstream = strchr(out.origin, ',') != NULL;
            assert_int_equal(!!(out.cof_flags & COF_WITH_ORIGIN), !dropo || upstream);
            assert_false(out.rec.has_ms);
        }
        policy_free(p);
    }
    assert_true(passes > 1000 && denies > 1000);
    print_message("properties: %d random policies, %zu records passed, %zu denied, all as the "
                  "reference says\n", seeds, passes, denies);
}

/* ---- release: the policy in force judges what leaves a delay line ------- */

struct rel_policy {
    int enabled, rr_mask, sens_mask, k, strip;
};

struct rel_ctx {
    const struct rel_policy *cur;
    size_t out;
};

static void rel_emit(void *vctx, const policy_out *o) {
    struct rel_ctx *c = vctx;
    const struct rel_policy *rp = c->cur;
    int ti = -1;
    for (int i = 0; i < 5; i++)
        if (types[i] == o->rec.rrtype)
            ti = i;
    assert_true(rp->enabled);
    assert_true(ti >= 0 && (rp->rr_mask >> ti & 1));
    assert_true(o->n_sensors >= (size_t)rp->k); /* allowed sensors that saw it */
    if (rp->strip)
        assert_int_equal(o->rec.sensor_id.len, 0);
    c->out++;
}

/* Random policies replace each other at random moments while random
 * records wait in a delay line: whatever leaves is allowed by the policy
 * in force when it leaves (enabled, rrtype, sensors, threshold, sensor_id),
 * and everything that leaves is either sent or counted as denied. */
static void test_release_judged_by_current_policy(void **state) {
    (void)state;
    mixer_rng g;
    mixer_rng_init_seeded(&g, 777);
    int seeds = getenv("POLICY_SEEDS") ? atoi(getenv("POLICY_SEEDS")) : 200;
    size_t sent = 0, held = 0;
    for (int seed = 0; seed < seeds; seed++) {
        struct rel_policy rp[4];
        policy *pol[4];
        for (int i = 0; i < 4; i++) {
            char json[1024], *o = json;
            rp[i].enabled = mixer_rng_uniform(&g, 4) != 0;
            rp[i].rr_mask = (int)mixer_rng_uniform(&g, 32);
            rp[i].sens_mask = (int)mixer_rng_uniform(&g, 64);
            rp[i].k = 1 + (int)mixer_rng_uniform(&g, 3);
            rp[i].strip = (int)mixer_rng_uniform(&g, 2);
            o += sprintf(o, "{\"partner\": \"alpha\", \"enabled\": %s, \"names\": "
                            "{\"allow\": [\".\"]}, \"rrtypes\": {\"allow\": [",
                         rp[i].enabled ? "true" : "false");
            for (int t = 0, f = 0; t < 5; t++)
                if (rp[i].rr_mask >> t & 1)
                    o += sprintf(o, "%s\"%u\"", f++ ? "," : "", types[t]);
            o += sprintf(o, "]}, \"sensors\": {\"allow\": [");
            for (int t = 0, f = 0; t < 6; t++)
                if (rp[i].sens_mask >> t & 1)
                    o += sprintf(o, "%s\"%s\"", f++ ? "," : "", srcs[t].name);
            o += sprintf(o, "]}, \"min_sensors\": %d, \"sensor_id\": \"%s\"}", rp[i].k,
                         rp[i].strip ? "strip" : "relay");
            policy_diag d;
            pol[i] = load(json, &d);
            policy_diag_free(&d);
            assert_non_null(pol[i]);
        }
        delay_line *dl = delay_line_new(1000);
        int cur = 0;
        int64_t now = 1795940000000;
        uint64_t denied[POLICY_VERDICT_COUNT] = {0};
        size_t pushed = 0;
        struct rel_ctx c = {&rp[0], 0};
        static const char *const nm[] = {"a.test", "b.example.com", "c.corp.example"};
        static uint16_t sens[64][6];
        for (int step = 0; step < 300; step++) {
            int what = (int)mixer_rng_uniform(&g, 10);
            if (what < 6) { /* a record the policy in force admits now */
                uint16_t *sv = sens[step % 64], n = 0;
                for (uint16_t t = 0; t < 6; t++)
                    if (mixer_rng_uniform(&g, 2))
                        sv[n++] = t;
                mixer_entry e = entry(nm[mixer_rng_uniform(&g, 3)],
                                      types[mixer_rng_uniform(&g, 5)], sv, n, 1);
                policy_out out;
                if (policy_decide(pol[cur], &env, &e, now / 1000, &out, NULL, 0) ==
                        POLICY_PASS &&
                    delay_line_push(dl, &e, now + (int64_t)mixer_rng_uniform(&g, 50000)) == 0)
                    pushed++;
            } else if (what < 8) { /* the coordinator edits the policy */
                cur = (int)mixer_rng_uniform(&g, 4);
            } else { /* time passes; what is due leaves */
                now += (int64_t)mixer_rng_uniform(&g, 20000);
                c.cur = &rp[cur];
                delay_line_release(dl, now, SIZE_MAX, pol[cur], &env, rel_emit, &c, denied);
            }
        }
        c.cur = &rp[cur];
        delay_line_release(dl, INT64_MAX, SIZE_MAX, pol[cur], &env, rel_emit, &c, denied);
        size_t nd = 0;
        for (int v = 0; v < POLICY_VERDICT_COUNT; v++)
            nd += denied[v];
        assert_int_equal(c.out + nd, pushed); /* nothing lost, nothing twice */
        assert_int_equal(delay_line_size(dl), 0);
        sent += c.out;
        held += nd;
        delay_line_free(dl);
        for (int i = 0; i < 4; i++)
            policy_free(pol[i]);
    }
    assert_true(sent > 500 && held > 500);
    print_message("release: %d random policy sequences, %zu records sent, %zu held back at "
                  "release, each as the policy in force says\n", seeds, sent, held);
}

static char diff_out[10][200];
static int ndiff;

static void collect(void *ctx, const char *s) {
    (void)ctx;
    if (ndiff < 10)
        snprintf(diff_out[ndiff++], 200, "%s", s);
}

static void test_diff(void **state) {
    (void)state;
    policy_diag d;
    policy *a = load("{\"partner\": \"x\", \"rrtypes\": {\"allow\": [\"A\"]}, \"names\": {\"allow\": [\"example.com\"]},"
                     " \"sensors\": {\"allow\": [\"s0\"]}, \"min_sensors\": 2}", &d);
    policy_diag_free(&d);
    policy *b = load("{\"partner\": \"x\", \"rrtypes\": {\"allow\": [\"A\", \"AAAA\"]}, \"names\": {\"allow\": [\"example.com\"],"
                     " \"deny\": [\"=www.example.com\"]}, \"sensors\": {\"allow\": [\"s0\", \"s1\"]}, \"min_sensors\": 3,"
                     " \"sensor_id\": \"relay\"}", &d);
    policy_diag_free(&d);
    assert_non_null(a);
    assert_non_null(b);
    ndiff = 0;
    size_t n = policy_diff(a, b, collect, NULL);
    assert_int_equal(n, 5);
    assert_string_equal(diff_out[0], "will now receive AAAA records");
    assert_string_equal(diff_out[1], "newly denied: the name www.example.com");
    assert_string_equal(diff_out[2], "records from sensor s1 may now be shared");
    assert_string_equal(diff_out[3], "min_sensors raised from 2 to 3");
    assert_string_equal(diff_out[4], "sensor_id changes from strip to relay");
    assert_int_equal(policy_diff(a, a, collect, NULL), 0);
    policy_free(a);
    policy_free(b);
    /* nested rules are each their own: the same policy differs in nothing
     * (a rule under a wider one was reported as gone: found by fuzz_policy) */
    a = load("{\"partner\": \"x\", \"rrtypes\": {\"allow\": [\"A\"]}, \"names\": {\"allow\": "
             "[\"example\", \"www.example\", \"=a.www.example\"], \"deny\": [\"test\", "
             "\"example-corp.test\"]}, \"sensors\": {\"allow\": [\"s0\"]}}", &d);
    policy_diag_free(&d);
    assert_non_null(a);
    ndiff = 0;
    assert_int_equal(policy_diff(a, a, collect, NULL), 0);
    policy_free(a);
}

/* A policy in words: each section says what acts, the stricter of the
 * policy and the relay's settings, and long lists end in "and N more". */
static char words_out[40][800];
static int words_sec[40];
static int nwords;

static void collect_words(void *ctx, enum policy_words w, const char *s) {
    (void)ctx;
    assert_true(strlen(s) < 799);
    if (nwords < 40) {
        words_sec[nwords] = (int)w;
        snprintf(words_out[nwords++], 800, "%s", s);
    }
}

static int said(enum policy_words w, const char *text) {
    for (int i = 0; i < nwords; i++)
        if (words_sec[i] == (int)w && strcmp(words_out[i], text) == 0)
            return 1;
    return 0;
}

static void test_describe(void **state) {
    (void)state;
    policy_diag d;
    policy *p = load("{\"partner\": \"x\", \"tlp\": \"TLP:AMBER\", \"rrtypes\": {\"allow\": [\"A\", "
                     "\"AAAA\"]}, \"names\": {\"allow\": [\".\"], \"deny\": [\"=www.example.com\", "
                     "\"internal.example\"]}, \"sensors\": {\"allow\": [\"*\"], \"deny\": [\"s5\"]}, "
                     "\"min_sensors\": 2, \"delay_min\": 3600, \"sensor_id\": \"pseudonym\", "
                     "\"pseudonym_key_file\": \"pseudo.key\", \"drop_fields\": [\"bailiwick\"]}", &d);
    policy_diag_free(&d);
    assert_non_null(p);
    mixer_conf m;
    mixer_conf_defaults(&m);
    m.min_sensors = 3;
    m.time_resolution = 21600;
    nwords = 0;
    size_t n = policy_describe(p, &m, collect_words, NULL);
    for (int i = 0; getenv("WORDS") && i < nwords; i++)
        print_message("%s: %s\n", policy_words_name(words_sec[i]), words_out[i]);
    assert_int_equal(n, (size_t)nwords);
    assert_true(said(POLICY_W_GETS, "Every batch is labelled TLP:AMBER."));
    assert_true(said(POLICY_W_GETS, "Records of type A, AAAA."));
    assert_true(said(POLICY_W_GETS, "Names: every name."));
    assert_true(said(POLICY_W_GETS, "Sightings by the sensors: every one."));
    assert_true(said(POLICY_W_NEVER, "Names: internal.example, www.example.com (exactly)."));
    assert_true(said(POLICY_W_NEVER, "What only the sensors s5 saw; their sightings count "
                                     "for nothing."));
    assert_true(said(POLICY_W_THRESHOLDS, "A triple goes only once at least 3 allowed sensors "
                                          "saw it (the relay's setting; the policy asks for "
                                          "fewer)."));
    assert_true(said(POLICY_W_TIMING, "Then a further 1 h for this partner."));
    assert_true(said(POLICY_W_TIMING, "First and last seen times are rounded outward to 6 h "
                                      "(the relay's setting)."));
    assert_true(said(POLICY_W_TIMING, "Every triple waits in the relay's pool at least 30 s "
                                      "plus a random delay of mean 2 min, and goes out in a "
                                      "batch every 10 min, mixed with others."));
    assert_true(said(POLICY_W_IDENTIFIERS, "Fields removed: bailiwick."));
    assert_string_equal(policy_words_name(POLICY_W_IDENTIFIERS), "identifiers");
    /* the policy's own threshold when it is the stricter */
    m.min_sensors = 1;
    nwords = 0;
    policy_describe(p, &m, collect_words, NULL);
    assert_true(said(POLICY_W_THRESHOLDS, "A triple goes only once at least 2 allowed sensors "
                                          "saw it."));
    policy_free(p);

    /* every type but some; a list too long for a sentence */
    char text[40000];
    size_t len = (size_t)snprintf(text, sizeof(text), "{\"partner\": \"y\", \"rrtypes\": "
                                  "{\"allow\": [\"*\"], \"deny\": [\"TXT\"]}, \"names\": "
                                  "{\"allow\": [");
    for (int i = 0; i < 500; i++)
        len += (size_t)snprintf(text + len, sizeof(text) - len, "%s\"zone%03d.example\"",
                                i ? ", " : "", i);
    snprintf(text + len, sizeof(text) - len, "]}, \"sensors\": {\"allow\": [\"s0\"]}, "
             "\"enabled\": false}");
    p = load(text, &d);
    policy_diag_free(&d);
    assert_non_null(p);
    nwords = 0;
    policy_describe(p, NULL, collect_words, NULL);
    assert_true(said(POLICY_W_GETS, "Nothing: the policy is disabled."));
    assert_true(said(POLICY_W_GETS, "Records of every type but those below."));
    assert_true(said(POLICY_W_NEVER, "Records of type TXT."));
    int found = 0;
    for (int i = 0; i < nwords; i++)
        if (words_sec[i] == POLICY_W_GETS && strncmp(words_out[i], "Names: zone", 11) == 0) {
            found = 1;
            assert_non_null(strstr(words_out[i], " more."));
        }
    assert_true(found);
    policy_free(p);
}

/* "counts": "total": over many random releases of random triples, every
 * record carries exactly the sum of what was sent of its triple so far, the
 * earliest time_first and the latest time_last; a replay of the journal
 * entries rebuilds the same table; a full table forgets, counted, and
 * never mixes two triples. */
/* A record of triple (name, type, rdata) with count and times. */
static pdns_record totals_rec(const char *name, uint16_t type, const char *rdata,
                              uint64_t count, int64_t tf, int64_t tl) {
    pdns_record r = {0};
    r.rrname = (pdns_str){name, strlen(name)};
    r.rdata = (pdns_str){rdata, strlen(rdata)};
    r.rrtype = type;
    r.count = count;
    r.time_first = tf;
    r.time_last = tl;
    return r;
}

static void test_totals(void **state) {
    (void)state;
    enum { TRIPLES = 300, RELEASES = 20000 };
    static char tnames[TRIPLES][32];
    uint64_t want[TRIPLES] = {0};
    int64_t tf[TRIPLES], tl[TRIPLES];
    totals *t = totals_new(TRIPLES);
    totals *replay = totals_new(TRIPLES);
    assert_non_null(t);
    assert_non_null(replay);
    srand(7);
    for (int k = 0; k < RELEASES; k++) {
        int i = rand() % TRIPLES;
        snprintf(tnames[i], sizeof(tnames[i]), "n%d.example.test", i);
        uint64_t c = (uint64_t)(rand() % 50) + 1;
        int64_t first = 1700000000 + rand() % 100000;
        pdns_record r = totals_rec(tnames[i], (uint16_t)(i % 2 ? 1 : 28), "192.0.2.1", c,
                                   first, first + rand() % 5000);
        if (!want[i] || r.time_first < tf[i])
            tf[i] = r.time_first;
        if (!want[i] || r.time_last > tl[i])
            tl[i] = r.time_last;
        want[i] += r.count;
        totals_entry e;
        totals_apply(t, &r, &e);
        assert_int_equal(r.count, want[i]);
        assert_int_equal(r.time_first, tf[i]);
        assert_int_equal(r.time_last, tl[i]);
        assert_int_equal(e.count, want[i]);
        totals_set(replay, &e);
    }
    assert_int_equal(totals_evicted(t), 0);
    assert_int_equal(totals_size(t), totals_size(replay));
    /* the replayed table answers as the original: one more sighting each */
    for (int i = 0; i < TRIPLES; i++) {
        if (!want[i])
            continue;
        pdns_record r = totals_rec(tnames[i], (uint16_t)(i % 2 ? 1 : 28), "192.0.2.1", 1,
                                   1700050000, 1700050000);
        totals_apply(replay, &r, NULL);
        assert_int_equal(r.count, want[i] + 1);
        assert_int_equal(r.time_first, tf[i] < 1700050000 ? tf[i] : 1700050000);
    }
    /* a table for 1,000 triples given 5,000: it stays at 1,000, counts
     * what it forgot, and a triple it still has keeps its own total */
    totals *small = totals_new(1000);
    for (int i = 0; i < 5000; i++) {
        char nm[32];
        snprintf(nm, sizeof(nm), "x%d.test", i);
        pdns_record r = totals_rec(nm, 1, "192.0.2.9", (uint64_t)i + 1, 0, 0);
        totals_apply(small, &r, NULL);
        assert_int_equal(r.count, (uint64_t)i + 1);
    }
    assert_int_equal(totals_size(small), 1000);
    assert_int_equal(totals_evicted(small), 4000);
    size_t kept = 0;
    for (int i = 4999; i >= 0; i--) {
        char nm[32];
        snprintf(nm, sizeof(nm), "x%d.test", i);
        pdns_record r = totals_rec(nm, 1, "192.0.2.9", 0, 0, 0);
        totals_apply(small, &r, NULL);
        assert_true(r.count == 0 || r.count == (uint64_t)i + 1); /* its own, or forgotten */
        kept += r.count != 0;
    }
    assert_true(kept > 0 && kept <= 1000);
    /* a table of one: the second triple takes the first one's place */
    totals *one = totals_new(1);
    pdns_record r1 = totals_rec("a.test", 1, "192.0.2.1", 3, 0, 0);
    pdns_record r2 = totals_rec("b.test", 1, "192.0.2.1", 4, 0, 0);
    totals_apply(one, &r1, NULL);
    totals_apply(one, &r2, NULL);
    assert_int_equal(totals_size(one), 1);
    assert_int_equal(totals_evicted(one), 1);
    totals_free(one);
    /* counts saturate */
    pdns_record big = totals_rec("big.test", 1, "192.0.2.2", PDNS_COUNT_MAX, 0, 0);
    totals_apply(t, &big, NULL);
    big.count = PDNS_COUNT_MAX;
    totals_apply(t, &big, NULL);
    assert_int_equal(big.count, PDNS_COUNT_MAX);
    totals_free(small);
    totals_free(replay);
    totals_free(t);
}

/* A delay line across crashes, as the relay keeps it: a checkpoint (the
 * line saved) after every push of a batch; a release hands what is due to
 * the partner, whose outbox remembers the place of the last entry it got;
 * a crash (at any moment, also between a release and its delivery) starts
 * a new line from the last checkpoint without what the partner has. Over
 * random runs every entry reaches the partner exactly once, none before
 * its release time, and with its sensors. */
struct dl_got {
    uint8_t *seen;      /* per entry: times delivered */
    int64_t *due;       /* per entry: its release time */
    int64_t now;
    size_t n;
    int ok;
};

static void dl_take(void *vc, const mixer_entry *e) {
    struct dl_got *g = vc;
    unsigned k = (unsigned)atoi(e->rec.rrname.p + 1);
    g->seen[k]++;
    if (g->due[k] > g->now || e->n_sensors != 1 + k % 3 || e->sensors[0] != k % 5)
        g->ok = 0;
    g->n++;
}

static void test_delay_line_survives_crashes(void **state) {
    (void)state;
    mixer_rng g;
    mixer_rng_init_seeded(&g, 4242);
    enum { N = 400 };
    static char ename[N][16];
    static uint8_t seen[N], undelivered[N];
    static int64_t due[N];
    int32_t map[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    size_t crashes = 0, restored_gone = 0;
    for (int run = 0; run < 200; run++) {
        memset(seen, 0, sizeof(seen));
        delay_line *dl = delay_line_new(N);
        pdns_buf cp = {0};
        int64_t now = 1795940000000, w_at = 0;
        uint64_t w_id = 0;
        unsigned pushed = 0;
        struct dl_got got = {seen, due, 0, 0, 1};
        for (int steps = 0; pushed < N || delay_line_size(dl); steps++) {
            assert_true(steps < 100000); /* entries coming back forever: a bug */
            int what = (int)mixer_rng_uniform(&g, 10);
            if (what < 4 && pushed < N) { /* a batch: pushes, then a checkpoint */
                for (int b = 1 + (int)mixer_rng_uniform(&g, 8); b > 0 && pushed < N; b--) {
                    unsigned k = pushed++;
                    uint16_t sv[3] = {(uint16_t)(k % 5), (uint16_t)(k % 5 + 1),
                                      (uint16_t)(k % 5 + 2)};
                    snprintf(ename[k], sizeof(ename[k]), "e%u", k);
                    mixer_entry e = entry(ename[k], 1, sv, (uint16_t)(1 + k % 3), 1);
                    /* a clock stepped back now and then: never earlier than what left */
                    int64_t at = now + (int64_t)mixer_rng_uniform(&g, 3000) -
                                 (mixer_rng_uniform(&g, 10) == 0 ? 5000 : 0);
                    int64_t last_at;
                    uint64_t last_id;
                    delay_line_last(dl, &last_at, &last_id);
                    assert_int_equal(delay_line_push(dl, &e, at), 0);
                    due[k] = at < last_at ? last_at : at;
                }
                cp.len = 0;
                assert_int_equal(delay_line_save(dl, &cp), 0);
                continue;
            }
            if (what < 8) { /* time passes; what is due reaches the partner */
                now += (int64_t)mixer_rng_uniform(&g, 1500);
                got.now = now;
                int lost = mixer_rng_uniform(&g, 8) == 0; /* a crash before delivery */
                uint8_t *keep = got.seen;
                if (lost)
                    got.seen = undelivered;
                delay_line_pop_due(dl, now, 1 + mixer_rng_uniform(&g, 6), dl_take, &got);
                got.seen = keep;
                if (!lost) {
                    delay_line_last(dl, &w_at, &w_id);
                    continue;
                }
            }
            /* a crash: the last checkpoint, less what the partner has */
            delay_line_free(dl);
            dl = delay_line_new(N);
            size_t gone = 0;
            if (cp.len)
                assert_true(delay_line_restore(dl, (const uint8_t *)cp.p, cp.len, map, 8, w_at,
                                               w_id, &gone) >= 0);
            crashes++;
            restored_gone += gone;
        }
        for (unsigned k = 0; k < N; k++)
            assert_int_equal(seen[k], 1);
        assert_true(got.ok);
        /* a blob cut short, or of another kind, adds nothing */
        delay_line *x = delay_line_new(N);
        size_t gone;
        if (cp.len > 12) {
            assert_int_equal(delay_line_restore(x, (const uint8_t *)cp.p, cp.len - 1, map, 8,
                                                0, 0, &gone), -1);
            assert_int_equal(delay_line_size(x), 0);
        }
        assert_int_equal(delay_line_restore(x, (const uint8_t *)"DLY0xxxxxxxx", 12, map, 8, 0,
                                            0, &gone), -1);
        delay_line_free(x);
        delay_line_free(dl);
        pdns_buf_free(&cp);
    }
    assert_true(crashes > 1000 && restored_gone > 1000);
    print_message("delay line: 200 random runs, %zu crashes, %zu entries the partner had "
                  "left out of the restored lines, each entry delivered once\n", crashes,
                  restored_gone);
}

int main(void) {
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_policy),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_warnings),
        cmocka_unit_test(test_organisation_warnings),
        cmocka_unit_test(test_suffixes),
        cmocka_unit_test(test_pseudonyms),
        cmocka_unit_test(test_properties),
        cmocka_unit_test(test_release_judged_by_current_policy),
        cmocka_unit_test(test_delay_line_survives_crashes),
        cmocka_unit_test(test_diff),
        cmocka_unit_test(test_describe),
        cmocka_unit_test(test_totals),
    };
    return cmocka_run_group_tests_name("policy", tests, setup, tmpdir_teardown);
}
