/* suffix.h - sets of domain-name rules matched by label-aware suffix:
 * the rule "example.com" matches "example.com" and "a.b.example.com",
 * never "badexample.com"; an exact rule matches one name only; the rule
 * "." matches every name.
 *
 * Matching hashes the name's suffixes at its label boundaries in one pass
 * from the right (one table probe per label), not a scan of the rules. The
 * hash is seeded at random per set. Names are compared as given: callers
 * pass them lower-cased without the trailing dot (pdns_name_canon). */
#ifndef PDNS_POLICY_SUFFIX_H
#define PDNS_POLICY_SUFFIX_H

#include <stddef.h>
#include <stdint.h>

typedef struct suffix_set suffix_set;

suffix_set *suffix_set_new(void);
void suffix_set_free(suffix_set *s);

/* Adds a rule; exact != 0 for an exact-name rule. Returns 0, or -1 out of
 * memory. Adding a rule twice is harmless. */
int suffix_set_add(suffix_set *s, const char *name, size_t len, int exact);

/* 1 when some rule matches name. */
int suffix_set_match(const suffix_set *s, const char *name, size_t len);

/* 1 when name is itself a rule of the set (exact: an "=name" rule), not
 * merely matched by a wider one. */
int suffix_set_has(const suffix_set *s, const char *name, size_t len, int exact);

/* The rule that matched (for explanations), or NULL; *exact tells which
 * kind. The pointer lives as long as the set. */
const char *suffix_set_which(const suffix_set *s, const char *name,
                             size_t len, int *exact);

size_t suffix_set_size(const suffix_set *s);

/* Calls fn for every rule (for diffs and contradiction checks). */
void suffix_set_each(const suffix_set *s,
                     void (*fn)(void *ctx, const char *rule, int exact),
                     void *ctx);

#endif
