/* cmd_keys.c - `pdns-relay keygen` (Ed25519 key pairs for signing batches)
 * and `pdns-relay verify` (checks a partner stream of signed batches:
 * signatures, Merkle roots, sequence and chain, across runs with --state;
 * inclusion proofs for single records). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "batch.h"
#include "cmd.h"
#include "lines.h"

const char cmd_keygen_help[] =
    "usage: pdns-relay keygen --out PREFIX\n"
    "\n"
    "Writes an Ed25519 key pair for signing batches: PREFIX.key (the secret\n"
    "key, hex, mode 0600; the relay refuses it when others can read it) and\n"
    "PREFIX.pub (the public key, hex, for partners). Prints the key id.\n";

const char cmd_verify_help[] =
    "usage: pdns-relay verify --pubkey FILE [--state FILE] [--prove SEQ:N] [INPUT|-]\n"
    "       pdns-relay verify --pubkey FILE --proof FILE\n"
    "\n"
    "Checks a stream of signed batches (COF lines, each batch closed by a\n"
    "trailer line): every signature, every Merkle root against the records,\n"
    "the sequence and the hash chain. Each problem is reported precisely (a\n"
    "tampered record, a dropped or added record, a dropped batch, a replayed\n"
    "or reordered batch, a wrong key). With --state, the last sequence number\n"
    "and chain hash are kept in FILE so that the next run continues the chain.\n"
    "Exit 0 when everything verified.\n"
    "\n"
    "  --prove SEQ:N  print an inclusion proof (JSON) for record N (from 0) of\n"
    "                 batch SEQ\n"
    "  --proof FILE   check such a proof: the record is part of a signed batch\n";

/* Writes PREFIX.key (secret, 0600, never replacing a file) and PREFIX.pub;
 * key_id gets the key id. Returns 0, or -1 with the reason on stderr. */
int cmd_write_keypair(const char *prefix, char key_id[17]) {
    uint8_t pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
    char path[1024], hex[2 * crypto_sign_SECRETKEYBYTES + 2];
    crypto_sign_keypair(pk, sk);
    snprintf(path, sizeof(path), "%s.key", prefix);
    sodium_bin2hex(hex, sizeof(hex), sk, sizeof(sk));
    sodium_memzero(sk, sizeof(sk));
    size_t n = strlen(hex);
    hex[n++] = '\n';
    int r = cmd_write_new_file(path, hex, n, 0600);
    sodium_memzero(hex, sizeof(hex));
    if (r < 0)
        return -1;
    snprintf(path, sizeof(path), "%s.pub", prefix);
    sodium_bin2hex(hex, sizeof(hex), pk, sizeof(pk));
    n = strlen(hex);
    hex[n++] = '\n';
    if (cmd_write_new_file(path, hex, n, 0644) < 0)
        return -1;
    batch_key_id(pk, key_id);
    return 0;
}

int cmd_keygen(int argc, char **argv) {
    const char *prefix = NULL;
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--out") == 0 && i + 1 < argc)
            prefix = argv[++i];
    if (!prefix) {
        fputs(cmd_keygen_help, stderr);
        return 2;
    }
    char id[17];
    if (cmd_write_keypair(prefix, id) < 0)
        return 1;
    printf("key id %s: %s.key (secret, 0600), %s.pub (public)\n", id, prefix, prefix);
    return 0;
}

/* ---- verify ----------------------------------------------------------------- */

typedef struct vstate {
    uint8_t pk[crypto_sign_PUBLICKEYBYTES];
    char key_id[17];
    const char *file;
    /* the batch being read: its lines, hashed together at the trailer */
    pdns_buf text;
    hashmany_span *at;
    uint8_t (*leaves)[BATCH_HASH];
    char **lines;             /* kept only for the batch to prove */
    size_t n, cap;
    uint64_t first_line;
    /* the chain so far */
    int have_last;
    uint64_t last_seq;
    uint8_t last_chain[BATCH_HASH];
    /* --prove */
    int proving;
    uint64_t prove_seq, prove_n;
    int proved;
    uint64_t batches, records, problems;
} vstate;

__attribute__((format(printf, 2, 3))) static void problem(vstate *v, const char *fmt, ...) {
    char m[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof(m), fmt, ap);
    va_end(ap);
    fprintf(stderr, "verify: %s: %s\n", v->file, m);
    v->problems++;
}

static void reset_batch(vstate *v) {
    for (size_t i = 0; v->lines && i < v->n; i++)
        free(v->lines[i]);
    v->n = 0;
    v->text.len = 0;
}

static void print_proof(vstate *v, const char *trailer, size_t tlen) {
    uint8_t path[64][BATCH_HASH];
    size_t plen = batch_merkle_path((const uint8_t (*)[BATCH_HASH])v->leaves, v->n,
                                    (size_t)v->prove_n, path);
    json_t *o = json_object(), *arr = json_array();
    json_error_t je;
    for (size_t i = 0; i < plen; i++) {
        char hx[65];
        sodium_bin2hex(hx, sizeof(hx), path[i], BATCH_HASH);
        json_array_append_new(arr, json_string(hx));
    }
    json_object_set_new(o, "record", json_stringn(v->lines[v->prove_n],
                                                  strlen(v->lines[v->prove_n])));
    json_object_set_new(o, "index", json_integer((json_int_t)v->prove_n));
    json_object_set_new(o, "count", json_integer((json_int_t)v->n));
    json_object_set_new(o, "path", arr);
    json_object_set_new(o, "trailer", json_loadb(trailer, tlen, 0, &je));
    char *s = json_dumps(o, JSON_INDENT(2));
    printf("%s\n", s);
    free(s);
    json_decref(o);
    v->proved = 1;
}

static void end_batch(vstate *v, uint64_t lineno, char *line, size_t len) {
    batch_trailer t;
    char err[256];
    uint8_t root[BATCH_HASH], chain[BATCH_HASH];
    if (batch_trailer_decode(line, len, &t, err, sizeof(err)) < 0) {
        problem(v, "line %" PRIu64 ": bad trailer: %s", lineno, err);
        reset_batch(v);
        return;
    }
    v->batches++;
    v->records += v->n;
    int sig_ok = 0;
    if (strcmp(t.key_id, v->key_id) != 0)
        problem(v, "batch seq %" PRIu64 ": signed with key %s, not with the given key %s "
                "(wrong key)", t.seq, t.key_id, v->key_id);
    else if (batch_verify_sig(&t, v->pk, chain) < 0)
        problem(v, "batch seq %" PRIu64 ": the signature does not match the trailer "
                "(trailer tampered)", t.seq);
    else
        sig_ok = 1;
    if (t.count != v->n)
        problem(v, "batch seq %" PRIu64 ": the trailer counts %" PRIu64 " records, the "
                "batch has %zu (records dropped or added)", t.seq, t.count, v->n);
    batch_leaf_hashes(v->text.p, v->at, v->n, v->leaves);
    batch_merkle_root((const uint8_t (*)[BATCH_HASH])v->leaves, v->n, root);
    if (t.count == v->n && sodium_memcmp(root, t.merkle_root, BATCH_HASH) != 0)
        problem(v, "batch seq %" PRIu64 ": the records do not match the signed Merkle "
                "root (a record was altered; lines %" PRIu64 "-%" PRIu64 ")", t.seq,
                v->first_line, lineno - 1);
    if (v->have_last) {
        if (t.seq <= v->last_seq)
            problem(v, "batch seq %" PRIu64 " after seq %" PRIu64 ": replayed or "
                    "reordered", t.seq, v->last_seq);
        else if (t.seq != v->last_seq + 1)
            problem(v, "batch seq %" PRIu64 " after seq %" PRIu64 ": batches %" PRIu64
                    "-%" PRIu64 " are missing (dropped)", t.seq, v->last_seq,
                    v->last_seq + 1, t.seq - 1);
        else if (sodium_memcmp(t.prev, v->last_chain, BATCH_HASH) != 0)
            problem(v, "batch seq %" PRIu64 ": its prev hash does not match batch seq %"
                    PRIu64 " (the chain is broken)", t.seq, v->last_seq);
    }
    if (sig_ok && (!v->have_last || t.seq > v->last_seq)) {
        v->have_last = 1;
        v->last_seq = t.seq;
        memcpy(v->last_chain, chain, BATCH_HASH);
    }
    if (v->proving && t.seq == v->prove_seq && !v->proved) {
        if (v->prove_n < v->n)
            print_proof(v, line, len);
        else
            problem(v, "--prove: batch seq %" PRIu64 " has %zu records", t.seq, v->n);
    }
    reset_batch(v);
}

static int on_vline(void *ctx, uint64_t lineno, char *line, size_t len) {
    vstate *v = ctx;
    if (!line) {
        problem(v, "line %" PRIu64 ": longer than the limit", lineno);
        return 0;
    }
    if (len == 0)
        return 0;
    if (batch_is_trailer(line, len)) {
        end_batch(v, lineno, line, len);
        return 0;
    }
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 1024;
        uint8_t(*nl)[BATCH_HASH] = realloc(v->leaves, cap * sizeof(*nl));
        if (nl)
            v->leaves = nl;
        hashmany_span *na = nl ? realloc(v->at, cap * sizeof(*na)) : NULL;
        if (na)
            v->at = na;
        char **ls = v->proving ? realloc(v->lines, cap * sizeof(*ls)) : v->lines;
        if (!nl || !na || (v->proving && !ls))
            return -1;
        v->lines = ls;
        v->cap = cap;
    }
    if (v->n == 0)
        v->first_line = lineno;
    v->at[v->n].off = v->text.len;
    v->at[v->n].len = len;
    if (pdns_buf_append(&v->text, line, len) < 0)
        return -1;
    if (v->proving)
        v->lines[v->n] = strndup(line, len);
    v->n++;
    return 0;
}

static int load_state(vstate *v, const char *path) {
    FILE *f = fopen(path, "r");
    char hex[80];
    unsigned long long seq;
    size_t got;
    if (!f)
        return errno == ENOENT ? 0 : -1;
    int ok = fscanf(f, "seq %llu\nchain %70s", &seq, hex) == 2 &&
             sodium_hex2bin(v->last_chain, BATCH_HASH, hex, strlen(hex), NULL, &got, NULL) == 0 &&
             got == BATCH_HASH;
    fclose(f);
    if (!ok)
        return -1;
    v->have_last = 1;
    v->last_seq = seq;
    return 0;
}

static int save_state(vstate *v, const char *path) {
    char tmp[1100], hex[65];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -1;
    sodium_bin2hex(hex, sizeof(hex), v->last_chain, BATCH_HASH);
    fprintf(f, "seq %" PRIu64 "\nchain %s\n", v->last_seq, hex);
    if (fclose(f) != 0)
        return -1;
    return rename(tmp, path);
}

static int check_proof(vstate *v, const char *path) {
    json_error_t je;
    json_t *o = json_load_file(path, 0, &je);
    uint8_t leaf[BATCH_HASH], hops[64][BATCH_HASH], chain[BATCH_HASH];
    batch_trailer t;
    char err[256];
    int rc = 1;
    if (!o) {
        fprintf(stderr, "verify: %s:%d:%d: %s\n", path, je.line, je.column, je.text);
        return 1;
    }
    json_t *rec = json_object_get(o, "record"), *arr = json_object_get(o, "path");
    json_t *tr = json_object_get(o, "trailer");
    json_int_t idx = json_integer_value(json_object_get(o, "index"));
    json_int_t cnt = json_integer_value(json_object_get(o, "count"));
    if (!json_is_string(rec) || !json_is_array(arr) || json_array_size(arr) > 64 ||
        !json_is_object(tr) || idx < 0 || cnt <= idx) {
        fprintf(stderr, "verify: %s: not a proof (record, index, count, path, trailer)\n", path);
        goto out;
    }
    char *ts = json_dumps(tr, JSON_COMPACT);
    int bad = batch_trailer_decode(ts, strlen(ts), &t, err, sizeof(err));
    free(ts);
    if (bad) {
        fprintf(stderr, "verify: %s: %s\n", path, err);
        goto out;
    }
    size_t i;
    json_t *h;
    json_array_foreach(arr, i, h) {
        size_t got;
        if (!json_is_string(h) ||
            sodium_hex2bin(hops[i], BATCH_HASH, json_string_value(h), json_string_length(h),
                           NULL, &got, NULL) != 0 || got != BATCH_HASH) {
            fprintf(stderr, "verify: %s: path[%zu] is not a hash\n", path, i);
            goto out;
        }
    }
    if (strcmp(t.key_id, v->key_id) != 0 || batch_verify_sig(&t, v->pk, chain) < 0) {
        fprintf(stderr, "verify: %s: the trailer is not signed by the given key\n", path);
        goto out;
    }
    batch_leaf_hash(json_string_value(rec), json_string_length(rec), leaf);
    if ((uint64_t)cnt != t.count ||
        batch_merkle_check(leaf, (size_t)idx, (size_t)cnt, (const uint8_t (*)[BATCH_HASH])hops,
                           json_array_size(arr), t.merkle_root) < 0) {
        fprintf(stderr, "verify: %s: the record is not part of batch seq %" PRIu64 "\n",
                path, t.seq);
        goto out;
    }
    printf("proof: record %lld of batch seq %" PRIu64 " from %s to %s is in the signed "
           "batch\n", (long long)idx, t.seq, t.origin, t.partner);
    rc = 0;
out:
    json_decref(o);
    return rc;
}

int cmd_verify(int argc, char **argv) {
    static const struct option opts[] = {
        {"pubkey", required_argument, NULL, 'k'},
        {"state", required_argument, NULL, 's'},
        {"prove", required_argument, NULL, 'p'},
        {"proof", required_argument, NULL, 'P'},
        {NULL, 0, NULL, 0}};
    const char *pub = NULL, *state = NULL, *proof = NULL;
    vstate v;
    char err[256];
    int opt;
    memset(&v, 0, sizeof(v));
    optind = 1;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'k': pub = optarg; break;
        case 's': state = optarg; break;
        case 'p':
            if (sscanf(optarg, "%" SCNu64 ":%" SCNu64, &v.prove_seq, &v.prove_n) != 2) {
                fprintf(stderr, "verify: --prove wants SEQ:N\n");
                return 2;
            }
            v.proving = 1;
            break;
        case 'P': proof = optarg; break;
        default:
            fputs(cmd_verify_help, stderr);
            return 2;
        }
    }
    if (!pub) {
        fputs(cmd_verify_help, stderr);
        return 2;
    }
    if (batch_read_public_key(pub, v.pk, err, sizeof(err)) < 0) {
        fprintf(stderr, "verify: %s\n", err);
        return 1;
    }
    batch_key_id(v.pk, v.key_id);
    if (proof)
        return check_proof(&v, proof);
    v.file = optind < argc ? argv[optind] : "-";
    int fd = strcmp(v.file, "-") ? open(v.file, O_RDONLY) : 0;
    if (fd < 0) {
        fprintf(stderr, "verify: %s: %s\n", v.file, strerror(errno));
        return 1;
    }
    if (state && load_state(&v, state) < 0) {
        fprintf(stderr, "verify: state file %s is unreadable\n", state);
        return 1;
    }
    int rc = lines_read_fd(fd, 1 << 20, on_vline, &v);
    if (fd > 0)
        close(fd);
    if (rc != 0) {
        fprintf(stderr, "verify: %s: read failed\n", v.file);
        return 1;
    }
    if (v.n)
        problem(&v, "%zu records after the last trailer (an incomplete batch)", v.n);
    if (v.proving && !v.proved)
        problem(&v, "--prove: no batch seq %" PRIu64, v.prove_seq);
    if (state && v.have_last && save_state(&v, state) < 0)
        problem(&v, "cannot write the state file %s", state);
    if (v.problems)
        fprintf(stderr, "verify: %s: %" PRIu64 " batches, %" PRIu64 " records, %" PRIu64
                " problems\n", v.file, v.batches, v.records, v.problems);
    else
        fprintf(stderr, "verify: %s: %" PRIu64 " batches, %" PRIu64 " records: all "
                "verified\n", v.file, v.batches, v.records);
    reset_batch(&v);
    free(v.leaves);
    free(v.at);
    pdns_buf_free(&v.text);
    free(v.lines);
    return v.problems ? 1 : 0;
}
