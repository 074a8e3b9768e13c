/* fuzz_policy.c - libFuzzer target for a partner policy file (policy_load):
 * any bytes are refused with at least one error, or loaded; a loaded
 * policy is said in words (policy_describe: every sentence a bounded,
 * NUL-terminated string) and compared with itself (policy_diff: no
 * difference), then freed. The policy is read from a file, as the relay
 * reads it. */
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "policy.h"

static void sentence(void *ctx, enum policy_words w, const char *s) {
    (void)ctx;
    if ((unsigned)w >= POLICY_W_COUNT || strlen(s) >= 800)
        abort();
}

static void change(void *ctx, const char *s) {
    (void)ctx;
    (void)s;
    abort(); /* a policy differs from itself in nothing */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static char path[64];
    if (!path[0]) {
        if (sodium_init() < 0)
            abort();
        snprintf(path, sizeof(path), "/tmp/fuzz_policy.%d.json", (int)getpid());
    }
    FILE *f = fopen(path, "wb");
    if (!f)
        return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    policy_diag d = {0};
    d.keys_may_be_missing = 1;
    policy *p = policy_load(path, NULL, &d);
    if (!p && d.errors == 0)
        abort(); /* refused without a reason */
    for (size_t i = 0; i < d.n; i++) {
        char msg[1200];
        policy_diag_format(&d, i, msg, sizeof(msg));
    }
    policy_diag_free(&d);
    if (p) {
        mixer_conf m;
        mixer_conf_defaults(&m);
        policy_describe(p, &m, sentence, NULL);
        policy_describe(p, NULL, sentence, NULL);
        if (policy_diff(p, p, change, NULL) != 0)
            abort();
        policy_free(p);
    }
    return 0;
}
