/* merge.h - the answers of a store cut into shards (a Redis Cluster),
 * made into the answer one server gives: the query pages of every shard
 * merged in the walk's order with one cursor, and the shards' counts
 * summed. Pure: replies in, a reply out, no I/O (store.c asks the shards).
 *
 * A shard's page (store_query.lua with positions) is {cursor, then per
 * triple: name, field, value, sensors, place}; place
 * is where the walk was, "[<bucket>\t]<member>". Every member is in one
 * shard only (a name's triples and index entries share its shard), so the
 * order of one server's walk is the order of places, and within a place
 * the order its shard gave. */
#ifndef PDNS_STORE_MERGE_H
#define PDNS_STORE_MERGE_H

#include <hiredis/hiredis.h>
#include <stddef.h>

/* The elements of one triple in a query page: its name, "<rrtype>
 * <rdata>", the value as stored ("<tf> <tl> <count> <sensor ids>[
 * <bailiwick>]") and the sensors' names ("" unless asked for). */
#define STORE_TRIPLE_ELEMENTS 4

/* A copy of r that outlives hiredis's (freeReplyObject frees it). NULL
 * when out of memory. */
redisReply *store_reply_dup(const redisReply *r);

/* A string (or, with type REDIS_REPLY_ERROR, an error) reply of its own. */
redisReply *store_reply_new(int type, const char *s, size_t len);

/* The page one server would have given: {cursor, then per triple name,
 * field, value, sensors}, at most limit triples. A shard whose
 * page ended early (its cursor is not "") bounds what may be given: only
 * triples up to its cursor are known to be all there is. with_field: the
 * members are names whose triples follow one another (a cursor inside one
 * is "<place>\n<field>"); else each member is one triple. The triples are
 * moved out of pages (their elements become NULL). NULL when out of
 * memory or a page is malformed. */
redisReply *store_merge_pages(redisReply **pages, int n, size_t limit, int with_field);

/* Address index members: the first limit of the shards' pages ({cursor,
 * member, ...}, each the members of its shard after one position, at most
 * limit) in order, as {cursor, member, ...}. The cursor is the last member
 * given when more may follow (more were given, or a shard's page was
 * full), else "". The members are moved out of pages. NULL when out of
 * memory or a page is malformed. */
redisReply *store_merge_members(redisReply **pages, int n, size_t limit);

/* The sum of the shards' /info answers ({records, triples, names, errors,
 * sensor, count, ...}): one of the same shape, sensors in the order first
 * seen. NULL when out of memory or an answer is malformed. */
redisReply *store_merge_info(redisReply **pages, int n);

#endif
