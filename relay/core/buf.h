/* buf.h - a growable byte buffer with a hard upper bound.
 *
 * Every buffer that holds outside input has a cap: pdns_buf_reserve fails
 * rather than grow past it, so a peer cannot make the relay allocate
 * without limit. */
#ifndef PDNS_BUF_H
#define PDNS_BUF_H

#include <stddef.h>

typedef struct pdns_buf {
    char *p;
    size_t len;
    size_t cap;
    size_t max;  /* 0: no bound (for our own output only) */
} pdns_buf;

/* Makes room for n more bytes. Returns 0, or -1 (out of memory or over
 * b->max), leaving b unchanged. */
int pdns_buf_reserve(pdns_buf *b, size_t n);

/* Appends n bytes. Returns 0 or -1 as pdns_buf_reserve. */
int pdns_buf_append(pdns_buf *b, const void *p, size_t n);

/* Drops the first n bytes, keeping the rest. */
void pdns_buf_consume(pdns_buf *b, size_t n);

/* Appends printf output (at most 4 KiB per call). Returns 0, or -1. */
int pdns_buf_printf(pdns_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Appends JSON value o as one line of compact JSON, and takes o (jansson's
 * json_t; NULL, as a failed json_pack gives, is out of memory). Returns 0,
 * or -1. */
struct json_t;
int pdns_buf_json(pdns_buf *b, struct json_t *o);

/* Writes all of b to fd (retrying short writes and EINTR) and empties it.
 * Returns 0, or -1 with errno; what was not written stays in b. */
int pdns_buf_write_fd(pdns_buf *b, int fd);

void pdns_buf_free(pdns_buf *b);

/* Makes room for element n of an array of elem-byte elements that doubles
 * from first. Returns the array, possibly moved, with *cap updated; or NULL
 * (out of memory), leaving v and *cap as they were. */
void *pdns_grow(void *v, size_t *cap, size_t n, size_t elem, size_t first);

#endif
