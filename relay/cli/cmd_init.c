/* cmd_init.c - `pdns-relay init DIR`: a new deployment's configuration in
 * one step. Writes DIR/relay.json, the relay's signing key pair, a
 * self-signed certificate for the D4 listener, a first sensor's uuid and
 * HMAC key, a disabled open-data policy and DIR/README (one line per
 * file). Secrets are created with O_EXCL at mode 0600 in DIR/keys (0700);
 * nothing that exists is ever overwritten. */
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd.h"

const char cmd_init_help[] =
    "usage: pdns-relay init [--relay-id ID] [--state DIR] [--tls-name NAME] DIR\n"
    "\n"
    "Makes a new deployment's configuration in DIR (created if missing):\n"
    "  relay.json           the configuration (pdns-relay.conf(5)); paths in it\n"
    "                       are relative to DIR, state goes to the state directory\n"
    "  keys/relay.key, .pub the Ed25519 key pair that signs partner batches\n"
    "  keys/tls.key, .crt   a self-signed certificate for the D4 listener\n"
    "                       (replace both with a real one and reload if sensors\n"
    "                       should verify a CA instead of pinning this one)\n"
    "  keys/sensor-1.key    the HMAC key of a first sensor (its uuid is in\n"
    "                       relay.json): give both to that sensor's D4 client\n"
    "  partners/open-data.json  a policy for the open data stream, disabled\n"
    "                       (pdns-relay-policy(5))\n"
    "  README               what each file is\n"
    "Secret files are mode 0600 in keys/ (0700). Nothing that exists is\n"
    "overwritten: init refuses a DIR that already has a relay.json.\n"
    "\n"
    "  --relay-id ID     this relay's name (default: the host name)\n"
    "  --state DIR       where the relay keeps its outboxes and chain state\n"
    "                    (default: DIR/state; the Debian package uses\n"
    "                    /var/lib/pdns-relay)\n"
    "  --tls-name NAME   the certificate's DNS name (default: the host name)\n";

static const char relay_json[] =
    "{\n"
    "  \"relay_id\": \"%s\",\n"
    "  \"log_level\": \"info\",\n"
    "  \"d4\": {\n"
    "    \"listen\": \"0.0.0.0:4443\",\n"
    "    \"tls_cert\": \"keys/tls.crt\",\n"
    "    \"tls_key\": \"keys/tls.key\"\n"
    "  },\n"
    "  \"http\": {\"listen\": \"127.0.0.1:8400\"},\n"
    "  \"admin\": {\"listen\": \"127.0.0.1:8401\"},\n"
    "  \"redis\": \"redis://127.0.0.1:6379/0\",\n"
    "  \"sensors\": [\n"
    "    {\n"
    "      \"uuid\": \"%s\",\n"
    "      \"name\": \"sensor-1\",\n"
    "      \"organisation\": \"%s\",\n"
    "      \"key_file\": \"keys/sensor-1.key\"\n"
    "    }\n"
    "  ],\n"
    "  \"mixer\": {\"enabled\": true},\n"
    "  \"policies\": {\n"
    "    \"dir\": \"partners\",\n"
    "    \"outbox_dir\": \"%s/outbox\"\n"
    "  },\n"
    "  \"signing_key\": \"keys/relay.key\",\n"
    "  \"state_dir\": \"%s\"\n"
    "}\n";

static const char open_data_json[] =
    "{\n"
    "  \"partner\": \"open-data\",\n"
    "  \"description\": \"The open passive DNS stream: only what several organisations saw, "
    "coarse, no identifiers\",\n"
    "  \"enabled\": false,\n"
    "  \"tlp\": \"TLP:CLEAR\",\n"
    "  \"rrtypes\": {\"allow\": [\"A\", \"AAAA\", \"CNAME\", \"NS\", \"MX\"]},\n"
    "  \"names\": {\"allow\": [\".\"], \"deny\": [\"in-addr.arpa\", \"ip6.arpa\", \"local\", "
    "\"internal\"]},\n"
    "  \"organisations\": {\"allow\": [\"*\"]},\n"
    "  \"sources\": {\"allow\": [\"d4\", \"queue\"]},\n"
    "  \"min_sensors\": 3,\n"
    "  \"min_orgs\": 2,\n"
    "  \"min_count\": 2,\n"
    "  \"delay_min\": 600,\n"
    "  \"delay_jitter\": 600,\n"
    "  \"time_resolution\": 86400,\n"
    "  \"sensor_id\": \"relay\",\n"
    "  \"drop_fields\": [\"bailiwick\"],\n"
    "  \"count_buckets\": true\n"
    "}\n";

static const char readme[] =
    "This directory is a pdns-relay deployment, made by `pdns-relay init`.\n"
    "See pdns-relay(8), pdns-relay.conf(5) and pdns-relay-policy(5).\n"
    "\n"
    "relay.json              the relay's configuration (pdns-relay.conf(5))\n"
    "keys/relay.key          Ed25519 secret key signing partner batches (keep it secret)\n"
    "keys/relay.pub          its public key: give it to partners, they verify with it\n"
    "keys/tls.key, tls.crt   the D4 listener's key and self-signed certificate\n"
    "keys/sensor-1.key       sensor-1's D4 HMAC key: the sensor's client needs it and\n"
    "                        the sensor's uuid from relay.json\n"
    "partners/               one policy per partner (pdns-relay-policy(5));\n"
    "                        open-data.json is disabled until you enable it\n"
    "\n"
    "Check it:   pdns-relay policy check -c relay.json partners/*.json\n"
    "Run it:     pdns-relay run -c relay.json   (or systemctl start pdns-relay)\n"
    "Reload it:  kill -HUP the relay (systemctl reload pdns-relay)\n";

/* Writes len bytes to path, created (never replaced) with mode. */
int cmd_write_new_file(const char *path, const void *data, size_t len, mode_t mode) {
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        return -1;
    }
    int ok = write(fd, data, len) == (ssize_t)len;
    if (fchmod(fd, mode) < 0)   /* whatever the umask */
        ok = 0;
    if (close(fd) < 0)
        ok = 0;
    if (!ok) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        unlink(path);
        return -1;
    }
    return 0;
}

static int make_dir(const char *path, mode_t mode) {
    if (mkdir(path, mode) < 0 && errno != EEXIST) {
        fprintf(stderr, "init: %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* A P-256 key and a self-signed certificate for name, valid ten years. */
static int self_signed(const char *key_path, const char *crt_path, const char *name,
                       char fingerprint[65]) {
    EVP_PKEY *pk = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    X509V3_CTX v3;
    char san[300];
    int ok = 0;
    if (!pk || !x)
        goto done;
    uint64_t serial;
    randombytes_buf(&serial, sizeof(serial));
    serial >>= 2; /* positive */
    snprintf(san, sizeof(san), "DNS:%s", name);
    X509_NAME *sub = X509_get_subject_name(x);
    if (!X509_set_version(x, 2) || !ASN1_INTEGER_set_uint64(X509_get_serialNumber(x), serial) ||
        !X509_gmtime_adj(X509_getm_notBefore(x), -3600) ||
        !X509_gmtime_adj(X509_getm_notAfter(x), 10L * 365 * 86400) ||
        !X509_NAME_add_entry_by_txt(sub, "CN", MBSTRING_ASC, (const unsigned char *)name, -1,
                                    -1, 0) ||
        !X509_set_issuer_name(x, sub) || !X509_set_pubkey(x, pk))
        goto done;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san);
    if (!ext || !X509_add_ext(x, ext, -1)) {
        X509_EXTENSION_free(ext);
        goto done;
    }
    X509_EXTENSION_free(ext);
    if (!X509_sign(x, pk, EVP_sha256()))
        goto done;
    /* PEM into memory, then into files created the same way as the rest */
    BIO *kb = BIO_new(BIO_s_mem()), *cb = BIO_new(BIO_s_mem());
    char *kp, *cp;
    long kl, cl;
    if (kb && cb && PEM_write_bio_PrivateKey(kb, pk, NULL, NULL, 0, NULL, NULL) &&
        PEM_write_bio_X509(cb, x) && (kl = BIO_get_mem_data(kb, &kp)) > 0 &&
        (cl = BIO_get_mem_data(cb, &cp)) > 0 &&
        cmd_write_new_file(key_path, kp, (size_t)kl, 0600) == 0 &&
        cmd_write_new_file(crt_path, cp, (size_t)cl, 0644) == 0)
        ok = 1;
    BIO_free(kb);
    BIO_free(cb);
    unsigned char md[32];
    unsigned int mdl = 0;
    if (ok && X509_digest(x, EVP_sha256(), md, &mdl) && mdl == 32)
        sodium_bin2hex(fingerprint, 65, md, 32);
done:
    X509_free(x);
    EVP_PKEY_free(pk);
    return ok ? 0 : -1;
}

int cmd_init(int argc, char **argv) {
    const char *dir = NULL, *relay_id = NULL, *state = NULL, *tls_name = NULL;
    char host[256] = "pdns-relay";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--relay-id") == 0 && i + 1 < argc)
            relay_id = argv[++i];
        else if (strcmp(argv[i], "--state") == 0 && i + 1 < argc)
            state = argv[++i];
        else if (strcmp(argv[i], "--tls-name") == 0 && i + 1 < argc)
            tls_name = argv[++i];
        else if (argv[i][0] != '-' && !dir)
            dir = argv[i];
        else {
            fputs(cmd_init_help, stderr);
            return 2;
        }
    }
    if (!dir) {
        fputs(cmd_init_help, stderr);
        return 2;
    }
    if (gethostname(host, sizeof(host) - 1) < 0 || !host[0])
        strcpy(host, "pdns-relay");
    host[sizeof(host) - 1] = '\0';
    if (!relay_id)
        relay_id = host;
    if (!tls_name)
        tls_name = host;
    /* names that go into JSON unescaped: a plain word */
    for (const char *p = relay_id; *p; p++)
        if (!(p[0] == '-' || p[0] == '_' || p[0] == '.' || (p[0] >= '0' && p[0] <= '9') ||
              (p[0] >= 'a' && p[0] <= 'z') || (p[0] >= 'A' && p[0] <= 'Z'))) {
            fprintf(stderr, "init: --relay-id '%s': letters, digits, '.', '-', '_' only\n",
                    relay_id);
            return 2;
        }
    char p[4096], st[4096];
    snprintf(st, sizeof(st), "%s", state ? state : "state");
    if (strchr(st, '"') || strchr(st, '\\')) {
        fprintf(stderr, "init: --state: no quotes or backslashes\n");
        return 2;
    }
    snprintf(p, sizeof(p), "%s/relay.json", dir);
    if (access(p, F_OK) == 0) {
        fprintf(stderr, "init: %s exists: init makes a new deployment and never overwrites one\n",
                p);
        return 1;
    }
    if (make_dir(dir, 0755) < 0)
        return 1;
    const char *sub[] = {"keys", "partners"};
    for (size_t i = 0; i < 2; i++) {
        snprintf(p, sizeof(p), "%s/%s", dir, sub[i]);
        if (make_dir(p, i == 0 ? 0700 : 0755) < 0 || (i == 0 && chmod(p, 0700) < 0))
            return 1;
    }
    if (!state) {
        snprintf(p, sizeof(p), "%s/state", dir);
        if (make_dir(p, 0700) < 0)
            return 1;
    }

    /* the signing key pair */
    char key_id[17], fp[65] = "";
    snprintf(p, sizeof(p), "%s/keys/relay", dir);
    if (cmd_write_keypair(p, key_id) < 0)
        return 1;
    /* the listener's certificate */
    char kp[4096];
    snprintf(p, sizeof(p), "%s/keys/tls.crt", dir);
    snprintf(kp, sizeof(kp), "%s/keys/tls.key", dir);
    if (self_signed(kp, p, tls_name, fp) < 0) {
        fprintf(stderr, "init: could not make the TLS certificate\n");
        return 1;
    }
    /* the first sensor: a version-4 uuid and a 32-byte HMAC key, in hex */
    uint8_t u[16], k[32];
    char uuid[33], khex[66];
    randombytes_buf(u, sizeof(u));
    u[6] = (uint8_t)((u[6] & 0x0f) | 0x40);
    u[8] = (uint8_t)((u[8] & 0x3f) | 0x80);
    sodium_bin2hex(uuid, sizeof(uuid), u, sizeof(u));
    randombytes_buf(k, sizeof(k));
    sodium_bin2hex(khex, sizeof(khex), k, sizeof(k));
    sodium_memzero(k, sizeof(k));
    size_t kl = strlen(khex);
    khex[kl++] = '\n';
    snprintf(p, sizeof(p), "%s/keys/sensor-1.key", dir);
    int r = cmd_write_new_file(p, khex, kl, 0600);
    sodium_memzero(khex, sizeof(khex));
    if (r < 0)
        return 1;
    snprintf(p, sizeof(p), "%s/partners/open-data.json", dir);
    if (cmd_write_new_file(p, open_data_json, sizeof(open_data_json) - 1, 0644) < 0)
        return 1;
    snprintf(p, sizeof(p), "%s/README", dir);
    if (cmd_write_new_file(p, readme, sizeof(readme) - 1, 0644) < 0)
        return 1;
    /* relay.json last: its presence says the deployment is whole */
    char *json = NULL;
    int jl = asprintf(&json, relay_json, relay_id, uuid, relay_id, st, st);
    snprintf(p, sizeof(p), "%s/relay.json", dir);
    if (jl < 0 || cmd_write_new_file(p, json, (size_t)jl, 0640) < 0) {
        free(json);
        return 1;
    }
    free(json);
    printf("pdns-relay init: a new deployment in %s (see %s/README)\n"
           "  relay id          %s\n"
           "  signing key id    %s (keys/relay.pub: give it to partners)\n"
           "  D4 listener       0.0.0.0:4443, self-signed for %s,\n"
           "                    SHA-256 fingerprint %s\n"
           "  sensor-1          uuid %s, HMAC key in keys/sensor-1.key\n"
           "  state             %s\n"
           "Next: check the Redis URL in relay.json, then\n"
           "  pdns-relay policy check -c %s/relay.json %s/partners/*.json\n"
           "  pdns-relay run -c %s/relay.json\n",
           dir, dir, relay_id, key_id, tls_name, fp, uuid,
           state ? state : "state/ (in DIR)", dir, dir, dir);
    return 0;
}
