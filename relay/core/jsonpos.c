/* jsonpos.c - a minimal JSON scanner that only skips and locates. */
#include "jsonpos.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *s;
    size_t n, i;
} scan;

static void ws(scan *c) {
    while (c->i < c->n && strchr(" \t\r\n", c->s[c->i]) && c->s[c->i])
        c->i++;
}

static int skip_string(scan *c) {
    c->i++; /* opening quote */
    while (c->i < c->n) {
        char ch = c->s[c->i++];
        if (ch == '\\')
            c->i++;
        else if (ch == '"')
            return 0;
    }
    return -1;
}

static int skip_value(scan *c, int depth) {
    ws(c);
    if (c->i >= c->n || depth > 64)
        return -1;
    char ch = c->s[c->i];
    if (ch == '"')
        return skip_string(c);
    if (ch == '{' || ch == '[') {
        char close = ch == '{' ? '}' : ']';
        c->i++;
        ws(c);
        if (c->i < c->n && c->s[c->i] == close) {
            c->i++;
            return 0;
        }
        for (;;) {
            if (ch == '{') {
                ws(c);
                if (c->i >= c->n || c->s[c->i] != '"' || skip_string(c) < 0)
                    return -1;
                ws(c);
                if (c->i >= c->n || c->s[c->i++] != ':')
                    return -1;
            }
            if (skip_value(c, depth + 1) < 0)
                return -1;
            ws(c);
            if (c->i >= c->n)
                return -1;
            if (c->s[c->i] == close) {
                c->i++;
                return 0;
            }
            if (c->s[c->i++] != ',')
                return -1;
        }
    }
    while (c->i < c->n && !strchr(",}] \t\r\n", c->s[c->i]))
        c->i++;
    return 0;
}

/* With c at an object, moves to the value of member key (len klen) and
 * returns the offset of its key, or -1. */
static long find_member(scan *c, const char *key, size_t klen) {
    ws(c);
    if (c->i >= c->n || c->s[c->i] != '{')
        return -1;
    c->i++;
    for (;;) {
        ws(c);
        if (c->i >= c->n || c->s[c->i] != '"')
            return -1;
        size_t at = c->i;
        if (skip_string(c) < 0)
            return -1;
        int match = c->i - at - 2 == klen && memcmp(c->s + at + 1, key, klen) == 0;
        ws(c);
        if (c->i >= c->n || c->s[c->i++] != ':')
            return -1;
        ws(c);
        if (match)
            return (long)at;
        if (skip_value(c, 0) < 0)
            return -1;
        ws(c);
        if (c->i >= c->n || c->s[c->i++] != ',')
            return -1;
    }
}

static long find_element(scan *c, long idx) {
    ws(c);
    if (c->i >= c->n || c->s[c->i] != '[')
        return -1;
    c->i++;
    for (long k = 0;; k++) {
        ws(c);
        if (k == idx)
            return (long)c->i;
        if (skip_value(c, 0) < 0)
            return -1;
        ws(c);
        if (c->i >= c->n || c->s[c->i++] != ',')
            return -1;
    }
}

int jsonpos_find(const char *text, size_t len, const char *path, int *line,
                 int *col) {
    scan c = {text, len, 0};
    long at = 0;
    const char *p = path;
    int rc = 0;
    ws(&c);
    at = (long)c.i;
    while (*p && at >= 0) {
        if (*p == '.') {
            p++;
            continue;
        }
        if (*p == '[') {
            char *e;
            long idx = strtol(p + 1, &e, 10);
            if (*e != ']')
                break;
            at = find_element(&c, idx);
            p = e + 1;
        } else {
            size_t kl = strcspn(p, ".[");
            at = find_member(&c, p, kl);
            p += kl;
        }
    }
    if (at < 0) {
        at = 0;
        rc = -1;
    }
    *line = 1;
    *col = 1;
    for (long i = 0; i < at && (size_t)i < len; i++) {
        if (text[i] == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
    return rc;
}
