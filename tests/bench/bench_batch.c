/* bench_batch.c - the cost of signed batches: COF encoding (the baseline,
 * in the same run), leaf hashing, Merkle roots and Ed25519 signatures per
 * record, for batches of 1,000 records; then `pdns-relay verify` over the
 * stream written (records/s). Prints a table; asserts nothing. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "batch.h"
#include "cof.h"
#include "hashmany.h"
#include "rrtype.h"
#include "machine.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    char machine_[400];
    pdns_machine_describe(machine_, sizeof(machine_));
    printf("%s\n", machine_);
    size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000000;
    const char *bin = argc > 2 ? argv[2] : "build/pdns-relay";
    const size_t per = 1000;
    if (sodium_init() < 0)
        return 1;
    uint8_t pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
    crypto_sign_keypair(pk, sk);
    pdns_buf out = {0};
    size_t *ends = malloc(n * sizeof(size_t));
    char name[64], rdata[32];
    double t0 = now_s();
    for (size_t i = 0; i < n; i++) {
        pdns_record r;
        memset(&r, 0, sizeof(r));
        int nl = snprintf(name, sizeof(name), "host%zu.zone%zu.example", i, i % 977);
        int rl = snprintf(rdata, sizeof(rdata), "10.%zu.%zu.%zu", (i >> 16) & 255, (i >> 8) & 255, i & 255);
        r.rrname.p = name;
        r.rrname.len = (size_t)nl;
        r.rdata.p = rdata;
        r.rdata.len = (size_t)rl;
        r.rrtype = PDNS_RR_A;
        r.time_first = 1795910400;
        r.time_last = 1795932000;
        r.count = 4;
        r.sensor_id.p = "relay-a";
        r.sensor_id.len = 7;
        cof_encode(&r, COF_WITH_SENSOR, &out);
        ends[i] = out.len;
    }
    double t_enc = now_s() - t0;

    uint8_t (*leaves)[BATCH_HASH] = malloc(per * sizeof(*leaves));
    hashmany_span *span = malloc(per * sizeof(*span));
    pdns_buf stream = {0};
    uint8_t chain[BATCH_HASH] = {0};
    double t_hash = 0, t_hash1 = 0, t_sign = 0;
    for (size_t b = 0; b * per < n; b++) {
        size_t lo = b * per, hi = lo + per < n ? lo + per : n;
        /* the baseline in the same run: one line at a time with libsodium,
         * as the relay hashed before hashmany */
        double t0b = now_s();
        for (size_t i = lo; i < hi; i++) {
            size_t start = i ? ends[i - 1] : 0;
            batch_leaf_hash(out.p + start, ends[i] - start - 1, leaves[i - lo]);
        }
        double t1 = now_s();
        t_hash1 += t1 - t0b;
        for (size_t i = lo; i < hi; i++) {
            span[i - lo].off = i ? ends[i - 1] : 0;
            span[i - lo].len = ends[i] - span[i - lo].off - 1;
        }
        batch_leaf_hashes(out.p, span, hi - lo, leaves);
        batch_trailer t;
        memset(&t, 0, sizeof(t));
        strcpy(t.origin, "relay-a");
        strcpy(t.partner, "bench");
        t.seq = b + 1;
        t.count = hi - lo;
        batch_merkle_root((const uint8_t (*)[BATCH_HASH])leaves, hi - lo, t.merkle_root);
        memcpy(t.prev, chain, BATCH_HASH);
        strcpy(t.policy, "00000000000000000000000000000000");
        t.time = 1795932000;
        double t2 = now_s();
        batch_sign(&t, sk, chain);
        double t3 = now_s();
        t_hash += t2 - t1;
        t_sign += t3 - t2;
        pdns_buf_append(&stream, out.p + (lo ? ends[lo - 1] : 0), ends[hi - 1] - (lo ? ends[lo - 1] : 0));
        batch_trailer_encode(&t, &stream);
    }
    char dir[] = "/tmp/pdns-bench-batch-XXXXXX", path[128], pubp[128], cmd[512];
    if (!mkdtemp(dir))
        return 1;
    snprintf(path, sizeof(path), "%s/stream.ndjson", dir);
    snprintf(pubp, sizeof(pubp), "%s/k.pub", dir);
    FILE *f = fopen(path, "w");
    fwrite(stream.p, 1, stream.len, f);
    fclose(f);
    char hex[65];
    sodium_bin2hex(hex, sizeof(hex), pk, sizeof(pk));
    f = fopen(pubp, "w");
    fprintf(f, "%s\n", hex);
    fclose(f);
    snprintf(cmd, sizeof(cmd), "%s verify --pubkey %s %s 2>/dev/null", bin, pubp, path);
    double t4 = now_s();
    int rc = system(cmd);
    double t_ver = now_s() - t4;

    double enc_ns = t_enc * 1e9 / n;
    printf("\nSigned batches: %zu records, %zu per batch, %.1f bytes per record on the wire\n", n,
           per, (double)stream.len / n);
    printf("%-46s %12s %9s %9s\n", "stage", "records/s", "ns/rec", "vs COF");
    printf("%-46s %12.0f %9.1f %8.2fx\n", "COF encoding (baseline)", n / t_enc, enc_ns, 1.0);
    printf("%-46s %12.0f %9.1f %8.2fx\n", "leaves one by one (libsodium, baseline)", n / t_hash1,
           t_hash1 * 1e9 / n, t_hash1 * 1e9 / n / enc_ns);
    char what[64];
    snprintf(what, sizeof(what), "leaves + Merkle root (BLAKE2b, %s)", hashmany_impl());
    printf("%-46s %12.0f %9.1f %8.2fx\n", what, n / t_hash, t_hash * 1e9 / n,
           t_hash * 1e9 / n / enc_ns);
    /* the other implementations this CPU can run, on the same batches */
    static const char *impls[] = {"avx512x8", "avx2x4", "libsodium"};
    char def[32];
    snprintf(def, sizeof(def), "%s", hashmany_impl());
    for (size_t k = 0; k < sizeof(impls) / sizeof(impls[0]); k++) {
        if (strcmp(impls[k], def) == 0 || hashmany_use(impls[k]) < 0)
            continue;
        double t = 0;
        for (size_t b = 0; b * per < n; b++) {
            size_t lo = b * per, hi = lo + per < n ? lo + per : n;
            for (size_t i = lo; i < hi; i++) {
                span[i - lo].off = i ? ends[i - 1] : 0;
                span[i - lo].len = ends[i] - span[i - lo].off - 1;
            }
            uint8_t root[BATCH_HASH];
            double t1 = now_s();
            batch_leaf_hashes(out.p, span, hi - lo, leaves);
            batch_merkle_root((const uint8_t (*)[BATCH_HASH])leaves, hi - lo, root);
            t += now_s() - t1;
        }
        snprintf(what, sizeof(what), "  the same with %s", impls[k]);
        printf("%-46s %12.0f %9.1f %8.2fx\n", what, n / t, t * 1e9 / n, t * 1e9 / n / enc_ns);
    }
    hashmany_use(def);
    printf("%-46s %12.0f %9.1f %8.2fx\n", "Ed25519 signature (one per batch)", n / t_sign,
           t_sign * 1e9 / n, t_sign * 1e9 / n / enc_ns);
    printf("%-46s %12.0f %9.1f %9s\n", rc == 0 ? "pdns-relay verify (whole command)"
                                               : "pdns-relay verify (FAILED)",
           n / t_ver, t_ver * 1e9 / n, "");
    unlink(path);
    unlink(pubp);
    rmdir(dir);
    sodium_memzero(sk, sizeof(sk));
    free(span);
    return 0;
}
