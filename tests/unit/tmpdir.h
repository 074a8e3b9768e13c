/* tmpdir.h -- a scratch directory for one cmocka test group.
 *
 * tmpdir_setup() makes /tmp/<prefix>-XXXXXX, tmpdir_teardown() removes it;
 * tmpdir_write() puts a file with a given mode in it. Failures fail the
 * test. Header-only: each test program includes it once. */
#ifndef PDNS_TESTS_TMPDIR_H
#define PDNS_TESTS_TMPDIR_H

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

static char dir[64];

__attribute__((unused)) static void tmpdir_write(const char *name, const char *text, mode_t mode) {
    char p[256];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(chmod(p, mode), 0);
}

static void tmpdir_setup(const char *prefix) {
    snprintf(dir, sizeof(dir), "/tmp/%s-XXXXXX", prefix);
    assert_non_null(mkdtemp(dir));
}

static int tmpdir_teardown(void **state) {
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd);
}

#endif
