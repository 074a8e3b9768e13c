/* cmd_passwd.c - `pdns-relay passwd`: adds or replaces a user or an API
 * key in the query API's credential file (http_auth.h). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "cmd.h"
#include "http_auth.h"

/* Argon2id at 2 passes over 16 MiB: a few tens of milliseconds, paid once
 * per client and credential (the relay remembers verified ones). */
#define PW_OPSLIMIT crypto_pwhash_OPSLIMIT_INTERACTIVE
#define PW_MEMLIMIT (16u << 20)

const char cmd_passwd_help[] =
    "usage: pdns-relay passwd [--key | --role ROLE] FILE NAME\n"
    "\n"
    "Adds NAME to the query API's credential file FILE (http.auth_file),\n"
    "replacing an entry of the same kind and name. Without --key, NAME is\n"
    "an HTTP Basic user whose password is the first line of standard input.\n"
    "With --key, a new random API key NAME.SECRET is made and printed on\n"
    "standard output (only its hash is kept: it cannot be shown again).\n"
    "--role viewer|coordinator|admin lets the user sign in to the console\n"
    "on the admin listener (admin.auth_file): a viewer sees, a coordinator\n"
    "also changes policies, an admin also reloads the relay.\n"
    "The file holds Argon2id hashes (libsodium crypto_pwhash_str) and is\n"
    "written with mode 0600.\n";

int cmd_passwd(int argc, char **argv) {
    static const struct option opts[] = {{"key", no_argument, NULL, 'k'},
                                         {"role", required_argument, NULL, 'r'},
                                         {NULL, 0, NULL, 0}};
    int opt, key = 0;
    const char *role = NULL;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "kr:", opts, NULL)) != -1) {
        if (opt == 'k')
            key = 1;
        else if (opt == 'r')
            role = optarg;
        else {
            fputs(cmd_passwd_help, stderr);
            return 2;
        }
    }
    if (key && role) {
        fprintf(stderr, "passwd: an API key has no console role\n");
        return 2;
    }
    if (argc - optind != 2) {
        fputs(cmd_passwd_help, stderr);
        return 2;
    }
    const char *file = argv[optind], *name = argv[optind + 1];
    char secret[256], hash[crypto_pwhash_STRBYTES], line[512];
    char kind_c, n2[80], h2[crypto_pwhash_STRBYTES], r2[HTTP_AUTH_ROLE_MAX];
    const char *why;
    if (key) {
        uint8_t rnd[32];
        char b64[64];
        randombytes_buf(rnd, sizeof(rnd));
        sodium_bin2base64(b64, sizeof(b64), rnd, sizeof(rnd),
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING);
        snprintf(secret, sizeof(secret), "%s.%s", name, b64);
    } else {
        if (!fgets(secret, sizeof(secret), stdin)) {
            fprintf(stderr, "passwd: give the password on standard input\n");
            return 2;
        }
        secret[strcspn(secret, "\r\n")] = '\0';
        if (strlen(secret) < 8) {
            fprintf(stderr, "passwd: the password is shorter than 8 characters\n");
            return 2;
        }
    }
    if (crypto_pwhash_str(hash, secret, strlen(secret), PW_OPSLIMIT, PW_MEMLIMIT) != 0) {
        fprintf(stderr, "passwd: out of memory\n");
        return 1;
    }
    snprintf(line, sizeof(line), "%s %s %s%s%s\n", key ? "key" : "basic", name, hash,
             role ? " " : "", role ? role : "");
    if (http_auth_parse_line(line, &kind_c, n2, h2, r2, &why) < 0) {
        fprintf(stderr, "passwd: %s\n", why);
        return 2;
    }
    /* the old file without the entry we replace, then the new line */
    pdns_buf out = {0};
    FILE *f = fopen(file, "r");
    if (f) {
        char old[512];
        while (fgets(old, sizeof(old), f)) {
            char k2;
            if (http_auth_parse_line(old, &k2, n2, h2, r2, &why) == 0 &&
                k2 == kind_c && strcmp(n2, name) == 0)
                continue;
            pdns_buf_append(&out, old, strlen(old));
        }
        fclose(f);
    } else if (errno != ENOENT) {
        fprintf(stderr, "passwd: %s: %s\n", file, strerror(errno));
        return 1;
    }
    pdns_buf_append(&out, line, strlen(line));
    char tmp[1024];
    snprintf(tmp, sizeof(tmp), "%s.tmp", file);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || pdns_buf_write_fd(&out, fd) < 0 || fsync(fd) < 0 ||
        close(fd) < 0 || rename(tmp, file) < 0) {
        fprintf(stderr, "passwd: %s: %s\n", file, strerror(errno));
        pdns_buf_free(&out);
        return 1;
    }
    pdns_buf_free(&out);
    if (key)
        printf("%s\n", secret);
    sodium_memzero(secret, sizeof(secret));
    fprintf(stderr, "passwd: %s %s written to %s\n", key ? "key" : "user", name, file);
    return 0;
}
