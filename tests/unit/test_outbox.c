/* test_outbox.c - a partner's outbox file after a crash (share_outbox_mend):
 * over random files of whole batches, with and without a batch cut short
 * at any byte, the file is cut back to the end of its last whole batch
 * and that batch's seq is found; lines longer than the 64 KiB the scan
 * reads at a time, a block boundary inside the last trailer, and trailers
 * cut short, included. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "buf.h"
#include "share.h"
#include "tmpdir.h"

static uint64_t rnd_state = 88172645463325252ull;
static uint64_t rnd(uint64_t n) {
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 7;
    rnd_state ^= rnd_state << 17;
    return rnd_state % n;
}

/* A record line; now and then a long one (beyond a scan block). */
static void record(pdns_buf *b, int i) {
    size_t pad = rnd(20) == 0 ? 60000 + rnd(80000) : rnd(300);
    pdns_buf_printf(b, "{\"rrname\":\"h%d.test\",\"x\":\"", i);
    for (size_t k = 0; k < pad; k++)
        pdns_buf_append(b, "y", 1);
    pdns_buf_append(b, "\"}\n", 3);
}

/* A trailer line (its signature of a random length, as the fields vary). */
static void trailer(pdns_buf *b, uint64_t seq) {
    pdns_buf_printf(b, "{\"pdns_relay_batch\":1,\"origin\":\"r\",\"partner\":\"p\",\"seq\":%llu,"
                    "\"sig\":\"", (unsigned long long)seq);
    for (size_t k = rnd(400); k > 0; k--)
        pdns_buf_append(b, "ab", 2);
    pdns_buf_append(b, "\"}\n", 3);
}

/* Where the last line of b starts. */
static size_t trailer_at(const pdns_buf *b) {
    size_t i = b->len ? b->len - 1 : 0;
    while (i > 0 && b->p[i - 1] != '\n')
        i--;
    return i;
}

static void test_mend_random_outboxes(void **state) {
    (void)state;
    char path[128];
    snprintf(path, sizeof(path), "%s/p.ndjson", dir);
    pdns_buf b = {0}, next = {0};
    for (int it = 0; it < 300; it++) {
        b.len = 0;
        uint64_t seq = 0;
        for (int k = (int)rnd(5); k > 0; k--) {
            for (int r = (int)rnd(6); r > 0; r--)
                record(&b, r);
            trailer(&b, ++seq);
        }
        size_t whole = b.len, tlen = whole - trailer_at(&b);
        if (it % 3 == 0 && seq) {
            /* a torn tail of a length that puts the scan's first block
             * boundary (64 KiB from the end) inside the last trailer */
            size_t t = 65536 - 1 - rnd(tlen - 1);
            pdns_buf_printf(&b, "{\"rrname\":\"");
            while (b.len < whole + t)
                pdns_buf_append(&b, "z", 1);
        } else if (rnd(10) < 7) { /* the next batch, cut short at any byte */
            next.len = 0;
            for (int r = (int)rnd(6); r > 0; r--)
                record(&next, r);
            trailer(&next, seq + 1);
            pdns_buf_append(&b, next.p, rnd(next.len));
        }
        int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, b.p, b.len), (ssize_t)b.len);
        uint64_t got = 99;
        assert_int_equal(share_outbox_mend(fd, path, &got), 0);
        struct stat st;
        assert_int_equal(fstat(fd, &st), 0);
        assert_int_equal((size_t)st.st_size, whole);
        assert_int_equal(got, seq);
        /* mended once, it is left as it is */
        assert_int_equal(share_outbox_mend(fd, path, &got), 0);
        assert_int_equal(fstat(fd, &st), 0);
        assert_int_equal((size_t)st.st_size, whole);
        close(fd);
    }
    pdns_buf_free(&b);
    pdns_buf_free(&next);
}

static int setup(void **state) {
    (void)state;
    tmpdir_setup("pdns-outbox");
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mend_random_outboxes),
    };
    return cmocka_run_group_tests_name("outbox", tests, setup, tmpdir_teardown);
}
