/* buf.c - growable bounded byte buffer. */
#include "buf.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int pdns_buf_reserve(pdns_buf *b, size_t n) {
    if (n <= b->cap - b->len)
        return 0;
    if (b->max && n > b->max - b->len)
        return -1;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < n)
        cap *= 2;
    if (b->max && cap > b->max)
        cap = b->max;
    char *p = realloc(b->p, cap);
    if (!p)
        return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

int pdns_buf_append(pdns_buf *b, const void *p, size_t n) {
    if (pdns_buf_reserve(b, n) < 0)
        return -1;
    if (n)
        memcpy(b->p + b->len, p, n);
    b->len += n;
    return 0;
}

void pdns_buf_consume(pdns_buf *b, size_t n) {
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->p, b->p + n, b->len - n);
    b->len -= n;
}

void pdns_buf_free(pdns_buf *b) {
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

int pdns_buf_printf(pdns_buf *b, const char *fmt, ...) {
    char tmp[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0 || n >= (int)sizeof(tmp))
        return -1;
    return pdns_buf_append(b, tmp, (size_t)n);
}

int pdns_buf_write_fd(pdns_buf *b, int fd) {
    size_t off = 0;
    int rc = 0;
    while (off < b->len) {
        ssize_t n = write(fd, b->p + off, b->len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n == 0)
                errno = EIO;
            rc = -1;
            break;
        }
        off += (size_t)n;
    }
    pdns_buf_consume(b, off);
    return rc;
}

void *pdns_grow(void *v, size_t *cap, size_t n, size_t elem, size_t first) {
    if (n < *cap)
        return v;
    size_t c = *cap ? *cap * 2 : first;
    if (c <= n || c > SIZE_MAX / elem)
        return NULL;
    void *nv = realloc(v, c * elem);
    if (nv)
        *cap = c;
    return nv;
}

int pdns_buf_json(pdns_buf *b, struct json_t *o) {
    char *t = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!t)
        return -1;
    int rc = pdns_buf_append(b, t, strlen(t)) < 0 || pdns_buf_append(b, "\n", 1) < 0 ? -1 : 0;
    free(t);
    return rc;
}
