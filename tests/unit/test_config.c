/* test_config.c - the configuration loader: a good file, and a table of
 * bad files with the exact FILE:LINE:COLUMN message each must give. */
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

#include "config.h"
#include "rconn.h"
#include "rlink.h"

#include "tmpdir.h"

static int setup(void **state) {
    (void)state;
    tmpdir_setup("pdns-cfg");
    tmpdir_write("a.key", "secret-a\n", 0600);
    tmpdir_write("open.key", "secret-b\n", 0644);
    return 0;
}

static int load(const char *text, char *err, relay_config *cfg) {
    char p[256];
    tmpdir_write("relay.json", text, 0644);
    snprintf(p, sizeof(p), "%s/relay.json", dir);
    return config_load(cfg, p, err, 1024);
}

#define GOOD_D4 "\"d4\": {\"tls_cert\": \"c.pem\", \"tls_key\": \"k.pem\"}"

static void test_good(void **state) {
    (void)state;
    relay_config cfg;
    char err[1024];
    int rc = load("{\n  \"relay_id\": \"r1\",\n  " GOOD_D4 ",\n"
                  "  \"http\": {\"listen\": \"[::1]:9000\"},\n"
                  "  \"redis\": \"redis://127.0.0.1:7000/3\",\n"
                  "  \"sensors\": [{\"uuid\": \"3f2b9c1e-7a44-4d2e-9b1f-0c5a8e6d2f10\", \"name\": \"s1\",\n"
                  "                \"key_file\": \"a.key\", \"layout\": \"SMQTA\", \"separator\": \",\"}],\n"
                  "  \"d4core\": {\"redis\": \"redis://localhost\", \"queues\": [{\"uuid\": \"0123456789abcdef0123456789abcdef\"}]}\n"
                  "}\n", err, &cfg);
    if (rc)
        fail_msg("%s", err);
    assert_string_equal(cfg.relay_id, "r1");
    assert_string_equal(cfg.http_listen.host, "::1");
    assert_int_equal(cfg.http_listen.port, 9000);
    assert_int_equal(cfg.redis.port, 7000);
    assert_int_equal(cfg.redis_db, 3);
    assert_int_equal(cfg.n_sensors, 1);
    assert_string_equal(cfg.sensors[0].uuid_hex, "3f2b9c1e7a444d2e9b1f0c5a8e6d2f10");
    assert_int_equal(cfg.sensors[0].keylen, 8);
    assert_memory_equal(cfg.sensors[0].key, "secret-a", 8);
    assert_string_equal(cfg.sensors[0].layout.sep, ",");
    assert_int_equal(cfg.n_queues, 1);
    assert_string_equal(cfg.queues[0].sensor, "d4core:0123456789abcdef0123456789abcdef");
    assert_int_equal(cfg.queue_redis.port, 6379);
    assert_int_equal(cfg.max_payload, 1000000);
    char want[300];
    snprintf(want, sizeof(want), "%s/c.pem", dir);
    assert_string_equal(cfg.tls_cert, want);
    config_free(&cfg);
}

static void test_bad(void **state) {
    (void)state;
    static const struct {
        const char *text, *want;
    } cases[] = {
        {"{\n  \"relay_id\": \"x\",\n", "relay.json:3:0: string or '}' expected near end of file"},
        {"{\"relay_id\": 5}", "relay.json:1:2: key 'relay_id': must be a string"},
        {"{\n  \"bogus\": 1\n}", "relay.json:2:3: key 'bogus': unknown key"},
        {"{\"d4\": {\"listen\": \"nohost\"}}", "relay.json:1:9: key 'd4.listen': want HOST:PORT or [IPV6]:PORT"},
        {"{\"d4\": {\"max_payload\": -1}}", "relay.json:1:9: key 'd4.max_payload': must be between 1 and 67108864"},
        {"{\"d4\": {\"tls_cert\": \"c\"}}", "relay.json:1:2: key 'd4': the D4 listener needs \"tls_cert\" and \"tls_key\""},
        {"{" GOOD_D4 ",\n \"log_level\": \"loud\"}", "relay.json:2:2: key 'log_level': want debug, info, warn or error"},
        {"{" GOOD_D4 ",\n \"sensors\": [\n  {\"uuid\": \"xyz\", \"key_file\": \"a.key\"}]}",
         "relay.json:3:4: key 'sensors[0].uuid': not a uuid (32 hex digits, dashes allowed)"},
        {"{" GOOD_D4 ",\n \"sensors\": [{\"uuid\": \"3f2b9c1e7a444d2e9b1f0c5a8e6d2f10\", \"key_file\": \"open.key\"}]}",
         "relay.json:2:59: key 'sensors[0].key_file': key file DIR/open.key is accessible by group or others (mode 0644): chmod 600 it"},
        {"{" GOOD_D4 ",\n \"sensors\": [{\"uuid\": \"3f2b9c1e7a444d2e9b1f0c5a8e6d2f10\", \"key_file\": \"none.key\"}]}",
         "relay.json:2:59: key 'sensors[0].key_file': key file DIR/none.key: No such file or directory"},
        {"{" GOOD_D4 ",\n \"sensors\": [{\"uuid\": \"3f2b9c1e7a444d2e9b1f0c5a8e6d2f10\", \"key_file\": \"a.key\", \"layout\": \"SQ\"}]}",
         "relay.json:2:80: key 'sensors[0].layout': layout 'SQ': needs query, type and answer (Q, T and A)"},
        {"{" GOOD_D4 ",\n \"sensors\": [{\"uuid\": \"3f2b9c1e7a444d2e9b1f0c5a8e6d2f10\", \"key_file\": \"a.key\", \"colour\": 1}]}",
         "relay.json:2:80: key 'sensors[0].colour': unknown key"},
        {"{" GOOD_D4 ",\n \"sensors\": [{\"uuid\": \"3f2b9c1e7a444d2e9b1f0c5a8e6d2f10\", \"key_file\": \"a.key\"},\n"
         "  {\"uuid\": \"3f2b9c1e7a444d2e9b1f0c5a8e6d2f10\", \"key_file\": \"a.key\"}]}",
         "relay.json:3:4: key 'sensors[1].uuid': uuid 3f2b9c1e7a444d2e9b1f0c5a8e6d2f10 is registered twice"},
        {"{" GOOD_D4 ", \"redis\": \"http://x\"}", "relay.json:1:51: key 'redis': want redis://[[USER]:PASSWORD@]HOST[:PORT][/DB] or redis+cluster://[[USER]:PASSWORD@]HOST:PORT[,HOST:PORT...] (USER and PASSWORD percent-encoded)"},
        {"{" GOOD_D4 ", \"store\": {\"redis\": \"redis+cluster://nohost\"}}", "relay.json:1:61: key 'store.redis': want redis://[[USER]:PASSWORD@]HOST[:PORT][/DB] or redis+cluster://[[USER]:PASSWORD@]HOST:PORT[,HOST:PORT...] (USER and PASSWORD percent-encoded)"},
        /* a user without a password; a bad escape */
        {"{" GOOD_D4 ", \"redis\": \"redis://relay@h:1/0\"}", "relay.json:1:51: key 'redis': want redis://[[USER]:PASSWORD@]HOST[:PORT][/DB] or redis+cluster://[[USER]:PASSWORD@]HOST:PORT[,HOST:PORT...] (USER and PASSWORD percent-encoded)"},
        {"{" GOOD_D4 ", \"store\": {\"redis\": \"redis+cluster://:p%zz@h:1\"}}", "relay.json:1:61: key 'store.redis': want redis://[[USER]:PASSWORD@]HOST[:PORT][/DB] or redis+cluster://[[USER]:PASSWORD@]HOST:PORT[,HOST:PORT...] (USER and PASSWORD percent-encoded)"},
        {"{" GOOD_D4 ", \"d4core\": {\"redis\": \"redis://:p%4@h\"}}", "relay.json:1:62: key 'd4core.redis': want redis://[[USER]:PASSWORD@]HOST[:PORT][/DB] (USER and PASSWORD percent-encoded)"},
        {"{" GOOD_D4 ", \"mixer\": {\"journal\": \"disk\"}}", "relay.json:1:61: key 'mixer.journal': want true (in state_dir), false or \"redis\""},
        {"{" GOOD_D4 ", \"store\": {\"shards\": 65}}", "relay.json:1:61: key 'store.shards': must be between 1 and 64"},
        {"{" GOOD_D4 ", \"d4core\": {\"queues\": [{\"uuid\": \"0123456789abcdef0123456789abcdef\"}]}}",
         "relay.json:1:51: key 'd4core': queues need \"redis\""},
        {"{\"d4\": {\"enabled\": \"yes\"}}", "relay.json:1:9: key 'd4.enabled': must be true or false"},
        {"[]", "relay.json:1:1: must be an object"},
        /* two listeners on one port: lws would put both on one socket, and
         * the second's clients would talk to the first */
        {"{\"d4\": {\"tls_cert\": \"c.pem\", \"tls_key\": \"k.pem\", \"listen\": \"127.0.0.1:9000\"},\n"
         " \"admin\": {\"listen\": \"127.0.0.1:9000\"}}",
         "relay.json:2:12: key 'admin.listen': port 9000 is also d4.listen's: each listener needs a port of its own"},
        {"{" GOOD_D4 ", \"http\": {\"listen\": \"0.0.0.0:8401\"}}",
         "relay.json:1:60: key 'http.listen': port 8401 is also admin.listen's: each listener needs a port of its own"},
    };
    char err[1024], want[1024];
    int bad = 0;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        relay_config cfg;
        assert_int_equal(load(cases[i].text, err, &cfg), -1);
        /* messages start with the full path: compare from the file name */
        const char *e = strstr(err, "relay.json");
        const char *d = strstr(cases[i].want, "DIR");
        if (d)
            snprintf(want, sizeof(want), "%.*s%s%s", (int)(d - cases[i].want), cases[i].want, dir, d + 3);
        else
            snprintf(want, sizeof(want), "%s", cases[i].want);
        if (!e || strcmp(e, want) != 0) {
            print_error("case %zu:\n got: %s\nwant: %s\n", i, e ? e : err, want);
            bad++;
        }
    }
    assert_int_equal(bad, 0);
}

static void test_addr_and_url(void **state) {
    (void)state;
    cfg_addr a;
    int db;
    assert_int_equal(config_parse_addr("0.0.0.0:4443", &a), 0);
    assert_int_equal(a.port, 4443);
    assert_int_equal(config_parse_addr("[2001:db8::1]:1", &a), 0);
    assert_string_equal(a.host, "2001:db8::1");
    assert_int_equal(config_parse_addr(":80", &a), -1);
    assert_int_equal(config_parse_addr("h:99999", &a), -1);
    assert_int_equal(config_parse_redis_url("redis://:pw@h:1/2", &a, &db), 0);
    assert_string_equal(a.host, "h");
    assert_int_equal(db, 2);
    assert_int_equal(config_parse_redis_url("redis://h/x", &a, &db), -1);
    /* credentials: percent-encoded, a '@' in them before the last one */
    char user[128], pass[512], shown[128];
    assert_int_equal(config_parse_redis_url("redis://u:p@ss%2F%3a@h:7/1", &a, &db), 0);
    assert_string_equal(a.host, "h");
    assert_int_equal(a.port, 7);
    assert_int_equal(rconn_url_auth("redis://u:p@ss%2F%3a@h:7/1", user, sizeof(user), pass,
                                    sizeof(pass)), 0);
    assert_string_equal(user, "u");
    assert_string_equal(pass, "p@ss/:");
    assert_int_equal(rconn_url_auth("redis+cluster://:pw@h:1,g:2", user, sizeof(user), pass,
                                    sizeof(pass)), 0);
    assert_string_equal(user, "");
    assert_string_equal(pass, "pw");
    assert_int_equal(rconn_url_auth("redis://h:1/0", user, sizeof(user), pass, sizeof(pass)), 0);
    assert_string_equal(pass, "");
    assert_int_equal(rconn_url_auth("redis://:@h", user, sizeof(user), pass, sizeof(pass)), -1);
    assert_int_equal(rconn_url_auth("redis://:%00@h", user, sizeof(user), pass, sizeof(pass)), -1);
    assert_int_equal(rconn_url_auth("redis://:ab%4@h", user, sizeof(user), pass, sizeof(pass)), -1);
    assert_int_equal(rconn_url_auth("redis://:ab%@h", user, sizeof(user), pass, sizeof(pass)), -1);
    assert_string_equal(rconn_url_shown("redis://u:secret@h:1/0", shown, sizeof(shown)),
                        "redis://***@h:1/0");
    assert_string_equal(rconn_url_shown("redis://h:1/0", shown, sizeof(shown)), "redis://h:1/0");
    assert_int_equal(rlink_url_kind("redis+cluster://:pw@h:1,g:2"), 1);
    assert_int_equal(rlink_url_kind("redis+cluster://u@h:1"), -1);
    /* INFO server as Redis 6.0, 6.2, 7.0, a development build and Valkey
     * wrote it here */
    char ver[32];
    assert_int_equal(rconn_version_ok("# Server\r\nredis_version:6.0.20\r\nredis_git_sha1:0\r\n",
                                      ver, sizeof(ver)), 0);
    assert_string_equal(ver, "6.0.20");
    assert_int_equal(rconn_version_ok("# Server\r\nredis_version:6.2.14\r\n", ver, sizeof(ver)),
                     1);
    assert_int_equal(rconn_version_ok("# Server\r\nredis_version:7.0.15\r\n", ver, sizeof(ver)),
                     1);
    assert_int_equal(rconn_version_ok("redis_version:255.255.255\r\n", ver, sizeof(ver)), 1);
    assert_int_equal(rconn_version_ok("# Server\r\nredis_version:7.2.4\r\nserver_name:valkey\r\n"
                                      "valkey_version:255.255.255\r\n", ver, sizeof(ver)), 1);
    assert_int_equal(rconn_version_ok("redis_version:5.0.7\r\n", ver, sizeof(ver)), 0);
    assert_int_equal(rconn_version_ok("not redis", ver, sizeof(ver)), 1);
    char host[64];
    int port;
    assert_int_equal(rlink_seed("redis+cluster://:p@w@h:1,g:2", 1, host, sizeof(host), &port), 0);
    assert_string_equal(host, "g");
    assert_int_equal(port, 2);
}

int main(void) {
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good),
        cmocka_unit_test(test_bad),
        cmocka_unit_test(test_addr_and_url),
    };
    return cmocka_run_group_tests_name("config", tests, setup, tmpdir_teardown);
}
