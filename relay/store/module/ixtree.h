/* ixtree.h - an ordered set of byte strings (a B+tree), the pdnsrelay
 * module's index type: what a sorted set of score 0 is to the store
 * (ZADD, ZREM, ZRANGEBYLEX, ZCARD), in fewer bytes and fewer cache lines
 * a member. No I/O, no Redis: the module gives it Redis's allocator. */
#ifndef PDNS_IXTREE_H
#define PDNS_IXTREE_H

#include <stddef.h>

typedef struct ixtree ixtree;

/* The allocator every tree uses (malloc and free unless set). */
void ixtree_set_allocator(void *(*alloc)(size_t), void (*release)(void *));

/* A new, empty tree, or NULL when out of memory. */
ixtree *ixtree_new(void);
void ixtree_free(ixtree *t);

/* Adds s (n bytes): 1 when it was not there, 0 when it was, -1 when out
 * of memory (the tree is as it was). */
int ixtree_add(ixtree *t, const char *s, size_t n);

/* Removes s: 1 when it was there, 0 when not. */
int ixtree_del(ixtree *t, const char *s, size_t n);

size_t ixtree_count(const ixtree *t);

/* Bytes the tree has asked of its allocator, members included. */
size_t ixtree_bytes(const ixtree *t);

/* One end of a range, as ZRANGEBYLEX reads "-", "+", "[x" and "(x". */
typedef struct {
    int inf;  /* -1: below everything ("-"), 1: above everything ("+"), 0: s */
    int excl; /* "(": s itself is not in the range */
    const char *s;
    size_t n;
} ixtree_bound;

/* Reads a ZRANGEBYLEX bound; -1 when b is none of its forms. */
int ixtree_bound_parse(const char *b, size_t n, ixtree_bound *out);

/* Calls fn with each member from lo to hi in memcmp order (a prefix
 * first), at most limit of them (0: no limit), until fn returns nonzero.
 * Returns the members given to fn. */
size_t ixtree_range(const ixtree *t, const ixtree_bound *lo, const ixtree_bound *hi, size_t limit,
                    int (*fn)(void *arg, const char *s, size_t n), void *arg);

#endif
