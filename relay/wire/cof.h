/* cof.h - Passive DNS Common Output Format (draft-dulaunoy-dnsop-passive-
 * dns-cof): one JSON object per line.
 *
 * The encoder writes one object per record, rdata always as a string (one
 * triple per line), rrtype as its IANA name or a decimal number, and the
 * optional fields the record knows. Bytes that are not valid UTF-8 are
 * written as DNS presentation escapes (\DDD), so every line is valid JSON.
 *
 * The decoder (jansson) accepts rdata as a string or an array of strings,
 * rrtype as a name, a number or a decimal string, and ignores fields it
 * does not know (COF allows additional ones). */
#ifndef PDNS_COF_H
#define PDNS_COF_H

#include <stddef.h>

#include "buf.h"
#include "record.h"

/* Options for encoding. */
enum {
    COF_WITH_SENSOR = 1 << 0,  /* write sensor_id when the record has one */
    COF_WITH_MS = 1 << 1,      /* write time_first_ms/time_last_ms */
    COF_WITH_ORIGIN = 1 << 2,  /* write origin when the record has one */
    COF_NO_COUNT = 1 << 3,     /* leave count out (a policy dropped it) */
};

/* Appends the COF line of r (with the newline) to out.
 * Returns 0, or -1 when out cannot grow. */
int cof_encode(const pdns_record *r, unsigned flags, pdns_buf *out);

/* DNSDB API v2 objects (SAF): {"obj":{count, time_first, time_last, rrname,
 * rrtype, bailiwick, rdata}} and a newline, names with their final dot
 * (so is rdata that is a name). */
enum {
    DNSDB_RRSET = 1 << 0,      /* rdata as a one-element array, bailiwick */
    DNSDB_HUMANTIME = 1 << 1,  /* times as "YYYY-MM-DDTHH:MM:SSZ" */
};
int cof_encode_dnsdb(const pdns_record *r, unsigned flags, pdns_buf *out);

/* Called once per (rrname, rrtype, rdata) triple of a decoded object; the
 * record's strings live until the callback returns. A non-zero return
 * stops decoding; cof_decode then fails with "rejected by consumer". */
typedef int (*cof_emit_fn)(void *ctx, const pdns_record *r);

/* Decodes one COF object. r_init supplies provenance (source, sensor);
 * the object's own sensor_id, if any, wins. Returns the number of triples
 * emitted, or -1 with a message in err (jansson's column for bad JSON). */
int cof_decode(const char *line, size_t len, const pdns_record *r_init,
               cof_emit_fn emit, void *ctx, char *err, size_t errlen);

/* The same through jansson alone; cof_decode uses it for what its fast
 * reader does not take. For tests and fuzzing: both must agree. */
int cof_decode_json(const char *line, size_t len, const pdns_record *r_init,
                    cof_emit_fn emit, void *ctx, char *err, size_t errlen);

#endif
