/* lines.h - bounded line reader over a file descriptor.
 *
 * Reads in large chunks and hands each line (newline removed, mutable) to
 * a callback; a line longer than max_line is reported as too long and
 * skipped, never allocated. Used by convert, import and send. */
#ifndef PDNS_LINES_H
#define PDNS_LINES_H

#include <stddef.h>
#include <stdint.h>

/* line == NULL reports an overlong line (len is what was seen). A
 * non-zero return stops reading and is returned. */
typedef int (*lines_fn)(void *ctx, uint64_t lineno, char *line, size_t len);

/* Returns 0 at end of input, the callback's non-zero value, or -1 on a
 * read error (errno set). */
int lines_read_fd(int fd, size_t max_line, lines_fn fn, void *ctx);

#endif
