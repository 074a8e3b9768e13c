/* fuzz_module.c - libFuzzer target for the value merge of the store's
 * Redis module (relay/store/module/pdnsrelay.c, included whole: its Redis
 * API pointers stay unset, entry_numbers() and merge() use none). An
 * entry's head is any bytes: merged only when entry_numbers reads it.
 * A triple's old value is
 * whatever Redis holds, so any bytes: the merged value fits its buffer
 * (exactly value_bound bytes here, so that ASan sees a byte past it), starts
 * with three numbers and holds the sensor's id. */
#include "../../relay/store/module/ixtree.c"
#include "../../relay/store/module/pdnsrelay.c"
#include "../../relay/store/module/query.c" /* what pdnsrelay.c registers; not fuzzed here */
#include "../../relay/store/module/sweep.c" /* the same */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* old value, head, bailiwick: separated by the first two 0 bytes */
    const char *p = (const char *)data, *end = p + size;
    const char *z1 = memchr(p, 0, size);
    if (!z1)
        return 0;
    const char *z2 = memchr(z1 + 1, 0, (size_t)(end - z1 - 1));
    if (!z2)
        return 0;
    sensor s;
    memset(&s, 0, sizeof(s));
    s.idl = dec((double)(size % 1000), s.id);
    s.id[s.idl++] = '|';
    size_t ol = (size_t)(z1 - p), hl = (size_t)(z2 - z1 - 1), bwl = (size_t)(end - z2 - 1);
    size_t cap = value_bound(ol, hl, s.idl, bwl);
    double h[4];
    if (entry_numbers(z1 + 1, hl, "1", 1, h))
        return 0;
    char *out = malloc(cap);
    size_t n = merge(p, ol, h, &s, z2 + 1, bwl, out);
    if (n > cap)
        abort();
    if (n) {
        const char *q = out, *e = out + n;
        double v;
        for (int i = 0; i < 3; i++)
            if (num(&q, e, 1, &v) < 0 || q >= e || *q++ != ' ')
                abort();
        /* (after the old set as it was: a set the script cannot read as
         * "|<id>|..." keeps its bytes, as the script keeps them) */
        if (!memmem(out, n, s.id, s.idl))
            abort();
    }
    free(out);
    return 0;
}
