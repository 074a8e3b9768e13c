/* tz.h - local wall-clock times to UTC, for sensors that print local time
 * (passivedns's H field).
 *
 * A zone's UTC offsets from 1970 to 2100 are read once, through the C
 * library's tz database (/usr/share/zoneinfo, Debian's tzdata), into a
 * table of transitions; converting is then a binary search, with no global
 * state touched. Zones are kept for the life of the process. */
#ifndef PDNS_TZ_H
#define PDNS_TZ_H

#include <stddef.h>
#include <stdint.h>

typedef struct pdns_tz pdns_tz;

/* The zone called name: an IANA name ("Europe/Luxembourg") or "UTC".
 * Returns it, or NULL with a message in err (an unknown name). Call it
 * from the main thread: it sets TZ for a moment while it reads a zone. */
const pdns_tz *pdns_tz_get(const char *name, char *err, size_t errlen);

/* The UTC time of a wall-clock time in tz, given as seconds since the
 * epoch as if the wall clock were UTC. A time that occurs twice (the hour
 * when clocks go back) is the earlier; one that does not occur (the hour
 * skipped) is read with the offset in force before the change. */
int64_t pdns_tz_to_utc(const pdns_tz *tz, int64_t local);

const char *pdns_tz_name(const pdns_tz *tz);

#endif
