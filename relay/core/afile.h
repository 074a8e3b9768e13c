/* afile.h - small state files written so that a crash or a power loss
 * leaves either the old content or the new, never a torn file: a
 * temporary file in the same directory, fsync, rename over the old one,
 * fsync of the directory. Created 0600: state is the relay's alone. */
#ifndef PDNS_AFILE_H
#define PDNS_AFILE_H

#include <stddef.h>

/* Replaces path's content with data. Returns 0, or -1 with errno set. */
int pdns_afile_write(const char *path, const void *data, size_t len);

#endif
