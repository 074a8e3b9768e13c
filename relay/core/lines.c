/* lines.c - chunked, bounded line splitting. */
#include "lines.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHUNK (1u << 20)

int lines_read_fd(int fd, size_t max_line, lines_fn fn, void *ctx) {
    size_t cap = CHUNK + max_line + 1, have = 0;
    char *buf = malloc(cap);
    uint64_t lineno = 0;
    int skipping = 0, rc = 0;
    if (!buf)
        return -1;
    for (;;) {
        ssize_t n = read(fd, buf + have, cap - have - 1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            rc = -1;
            break;
        }
        int eof = n == 0;
        have += (size_t)n;
        char *p = buf, *end = buf + have;
        for (;;) {
            char *nl = memchr(p, '\n', (size_t)(end - p));
            if (!nl) {
                if (eof && p < end) { /* last line without newline */
                    nl = end;
                } else {
                    break;
                }
            }
            size_t len = (size_t)(nl - p);
            if (skipping) { /* the end of a line already reported */
                skipping = 0;
            } else if (len > max_line) {
                rc = fn(ctx, ++lineno, NULL, len);
            } else {
                *nl = '\0';
                rc = fn(ctx, ++lineno, p, len);
            }
            p = nl < end ? nl + 1 : end;
            if (rc)
                goto out;
        }
        have = (size_t)(end - p);
        memmove(buf, p, have);
        if (eof)
            break;
        if (have > max_line) { /* a line over the bound: drop it */
            if (!skipping && (rc = fn(ctx, ++lineno, NULL, have)) != 0)
                goto out;
            have = 0;
            skipping = 1;
        }
    }
out:
    free(buf);
    return rc;
}
