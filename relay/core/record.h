/* record.h - the passive DNS record every module passes around.
 *
 * A record is a view: its strings point into a buffer someone else owns
 * (the parser's line, the decoder's JSON), so parsing never allocates.
 * A consumer that keeps a record past the call copies it
 * (pdns_record_dup). Provenance (sensor, source kind) is what the privacy
 * logic protects; client and server addresses are personal data and are
 * empty unless the configuration keeps them. */
#ifndef PDNS_RECORD_H
#define PDNS_RECORD_H

#include <stddef.h>
#include <stdint.h>

typedef struct pdns_str {
    const char *p;
    size_t len;
} pdns_str;

enum pdns_source {
    PDNS_SRC_D4 = 0,   /* a sensor over the D4 protocol */
    PDNS_SRC_QUEUE,    /* a d4-core analyzer queue in Redis */
    PDNS_SRC_PARTNER,  /* a partner relay's signed stream */
    PDNS_SRC_FILE,     /* a file given on the command line */
    PDNS_SRC_COUNT
};

typedef struct pdns_record {
    pdns_str rrname;     /* lower case, no trailing dot ("." for the root) */
    pdns_str rdata;      /* the answer; the rcode name for an error record */
    pdns_str bailiwick;  /* empty when unknown */
    uint16_t rrtype;
    uint8_t is_error;    /* NXDOMAIN/SERVFAIL/REFUSED... line, not a triple */
    uint8_t has_ms;      /* time_*_ms are known */
    int64_t time_first;  /* Unix seconds */
    int64_t time_last;
    int64_t time_first_ms; /* Unix milliseconds, when has_ms */
    int64_t time_last_ms;
    uint64_t count;
    uint32_t ttl;
    pdns_str client;     /* empty unless the config keeps addresses */
    pdns_str server;
    /* provenance */
    enum pdns_source source;
    pdns_str sensor_id;  /* sensor name (or uuid in hex); empty if none */
    pdns_str origin;     /* COF "origin": the relay or partner it came via */
    uint8_t sensor_uuid[16];
    uint8_t has_uuid;
    char addr_buf[48];   /* canonical A/AAAA text that rdata may point to */
} pdns_record;

/* The source kind as a lower-case word ("d4", "queue", ...). */
const char *pdns_source_name(enum pdns_source s);

/* Canonicalises a name in presentation format, in place: lower-cases
 * ASCII letters and removes one trailing dot (keeping "." for the root),
 * then checks it looks like a name as passivedns and ldns print it:
 * 1..1024 bytes, no control characters, no raw space, no empty label.
 * Updates *len. Returns 0, or -1 with *why. */
int pdns_name_canon(char *s, size_t *len, const char **why);

/* Normalises r->rdata, which points at the mutable buffer rdata: A and
 * AAAA become canonical address text (RFC 5952 for IPv6) in r->addr_buf;
 * name-valued rdata (see pdns_rrtype_rdata_is_name) goes through
 * pdns_name_canon, the master-file forms of MX, SRV and SOA field by
 * field; other types are kept as printed. Returns 0, or -1 with *why. */
int pdns_rdata_normalize(pdns_record *r, char *rdata, const char **why);

/* The name an rdata points at (for the rdata index): the rdata itself for
 * name-valued types (CNAME, NS, PTR, DNAME; MX, SRV, SOA as passivedns
 * prints them, the target alone), the exchange, target or MNAME inside
 * the master-file forms of MX ("10 mx.example.com"), SRV ("0 5 5060
 * sip.example.com") and SOA. Sets *t and returns its length; 0 when the
 * rdata names none. */
size_t pdns_rdata_target(uint16_t rrtype, const char *rdata, size_t len, const char **t);

/* 1 when field (0, 1, ...) of the master-file form of rrtype is a name
 * (the exchange of MX, the target of SRV, MNAME and RNAME of SOA). */
int pdns_rdata_field_is_name(uint16_t rrtype, int field);

/* Copies r and every string it points to into one allocation.
 * Returns NULL when out of memory; free() the result. */
pdns_record *pdns_record_dup(const pdns_record *r);

/* Counts saturate at 2^53 - 1 everywhere (parse, merge, store, mixer, COF
 * out): the largest integer a double holds exactly, as Redis's Lua and
 * JSON readers see numbers. A huge count from outside is clamped, never
 * wrapped. */
#define PDNS_COUNT_MAX 9007199254740991ULL

static inline uint64_t pdns_count_clamp(uint64_t c) {
    return c > PDNS_COUNT_MAX ? PDNS_COUNT_MAX : c;
}

static inline uint64_t pdns_count_add(uint64_t a, uint64_t b) {
    a = pdns_count_clamp(a);
    b = pdns_count_clamp(b);
    return a + b > PDNS_COUNT_MAX ? PDNS_COUNT_MAX : a + b;
}

/* Formats 16 uuid bytes as 32 lower-case hex characters and a NUL. */
void pdns_uuid_hex(const uint8_t uuid[16], char out[33]);

/* The value of a hex digit, or -1. */
int pdns_hexval(char c);

/* Parses 32 hex characters, with or without the four RFC 4122 dashes.
 * Returns 0, or -1 when s is not a uuid. */
int pdns_uuid_parse(const char *s, uint8_t uuid[16]);

/* An IPv6 address in text, as inet_pton(AF_INET6) reads it, from a counted
 * string. Returns 0, or -1 when it is not one. */
int pdns_ipv6_parse(const char *s, size_t len, uint8_t out[16]);

#endif
