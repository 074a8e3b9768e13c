/* csv.h - parser for passivedns (gamelinux) CSV lines, the D4 type-8 payload.
 *
 * The sensor prints the fields chosen with -f in a fixed order, whatever
 * order the letters were given in:
 *   H|S.M  h  c  w  s  W  p  C  Q  L  T  A  l  t  n
 *   time host client cmac server smac proto class query qlen type answer
 *   alen ttl count
 * with -d as the separator (default "||"), never escaped. So the fields
 * before the query and after the answer are taken from both ends and the
 * middle is split at the first "<sep><rrtype><sep>" (or, when the query
 * length L is printed, at the query's own length).
 *
 * The parser works in place on a mutable line (it lower-cases names) and
 * fills a record whose strings point into that line. It never allocates
 * and never does I/O. */
#ifndef PDNS_CSV_H
#define PDNS_CSV_H

#include <stddef.h>
#include <stdint.h>

#include "record.h"
#include "tz.h"

#define CSV_DEFAULT_LAYOUT "SMcsCQTAtn"
#define CSV_DEFAULT_SEPARATOR "||"
#define CSV_SEP_MAX 8

typedef struct csv_layout {
    uint32_t fields;       /* bitmask of enum csv_field */
    char sep[CSV_SEP_MAX + 1];
    size_t sep_len;
    int n_front;           /* fields printed before the query */
    int n_sep;             /* separators in a line whose query and answer
                            * hold none; 0 when the query length is printed */
    int at_class, at_client, at_server; /* index of those front fields, 0
                                         * when not printed */
    int keep_addresses;    /* keep client/server in the record */
    int no_simd;           /* never the AVX-512 separator mask (tests) */
    const pdns_tz *tz;     /* the zone of the H field's wall clock (NULL: UTC) */
    char letters[24];      /* the -f letters as given, for messages */
} csv_layout;

/* Why a line was rejected: stable short names for metrics labels. */
enum csv_result {
    CSV_OK = 0,
    CSV_E_FIELDS,    /* too few fields for the layout */
    CSV_E_TIME,      /* bad timestamp */
    CSV_E_CLASS,     /* class other than IN */
    CSV_E_NAME,      /* bad query name */
    CSV_E_TYPE,      /* no known rrtype where one should be */
    CSV_E_RDATA,     /* empty or malformed answer */
    CSV_E_NUMBER,    /* bad ttl, count or length field */
    CSV_E_BINARY,    /* NUL byte in the line */
    CSV_E_TOO_LONG,  /* longer than the reader's bound */
    CSV_E_JSON,      /* a passivedns JSON line (-j) that is not valid */
    CSV_RESULT_COUNT
};

/* Short label of a result ("fields", "time", ...). */
const char *csv_result_name(enum csv_result r);

/* Sets up a layout from -f letters and a -d separator (NULL for the
 * defaults). Returns 0, or -1 with a message in err. */
int csv_layout_init(csv_layout *l, const char *letters, const char *sep,
                    char *err, size_t errlen);

/* The zone of the H field's wall clock: an IANA name, or NULL or "UTC".
 * Returns 0, or -1 with a message in err (an unknown zone). */
int csv_layout_set_timezone(csv_layout *l, const char *tz, char *err,
                            size_t errlen);

/* Parses one line (without its newline; a trailing CR is ignored) into r.
 * A line that starts with "{" is passivedns's JSON output (-j): an object
 * with timestamp_s, timestamp_ms (microseconds, as passivedns prints it),
 * client, server, class, query, type, answer, ttl and count; it is parsed
 * as the same line in the default layout would be (rewritten in place:
 * the record's strings point into line either way).
 * r->is_error marks NXDOMAIN/SERVFAIL/... lines. Returns CSV_OK or the
 * reason, with *why set to a human message. Provenance fields of r are
 * left as the caller set them. */
enum csv_result csv_parse_line(const csv_layout *l, char *line, size_t len,
                               pdns_record *r, const char **why);

#endif
