/* jsonpos.h - where in a JSON text a member or element is.
 *
 * jansson reports line and column for syntax errors only; for the errors
 * found after parsing (unknown key, wrong type, bad value) this scanner
 * finds the position of a path such as "sensors[2].key_file" in the
 * original text, so that every message can say FILE:LINE:COLUMN. */
#ifndef PDNS_JSONPOS_H
#define PDNS_JSONPOS_H

#include <stddef.h>

/* Sets *line and *col (1-based) to the start of the key of the last
 * member in path (or of the element, for a trailing [N]). An empty path
 * is the top-level value. Returns 0, or -1 when the path is not found
 * (then 1:1). */
int jsonpos_find(const char *text, size_t len, const char *path, int *line,
                 int *col);

#endif
