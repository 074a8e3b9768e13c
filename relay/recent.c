/* recent.c - the records of the last minutes. See recent.h. */
#include "recent.h"

#include <string.h>

#include "mix.h"

void recent_init(recent *rc, size_t max_bytes, int64_t max_age_ms) {
    memset(rc, 0, sizeof(*rc));
    rc->max_bytes = max_bytes;
    rc->max_age_ms = max_age_ms;
}

void recent_free(recent *rc) {
    pdns_buf_free(&rc->half[0]);
    pdns_buf_free(&rc->half[1]);
}

void recent_add(recent *rc, const pdns_record *r, uint16_t source, int64_t now_ms) {
    if (!rc->max_bytes)
        return;
    pdns_buf *b = &rc->half[rc->cur];
    if (b->len >= rc->max_bytes / 2) { /* the newer half is full: it becomes the older */
        rc->cur = !rc->cur;
        b = &rc->half[rc->cur];
        rc->dropped += rc->half_records[rc->cur];
        rc->half_records[rc->cur] = 0;
        b->len = 0;
    }
    if (mix_rec_put(b, r, source, now_ms) == 0) {
        rc->kept++;
        rc->half_records[rc->cur]++;
    }
}

size_t recent_each(const recent *rc, int64_t now_ms,
                   void (*fn)(void *ctx, const pdns_record *r, uint16_t source, int64_t ms),
                   void *ctx) {
    size_t n = 0;
    for (int k = 0; k < 2; k++) {
        const pdns_buf *b = &rc->half[k == 0 ? !rc->cur : rc->cur];
        size_t off = 0;
        pdns_record r;
        uint16_t src;
        int64_t ms;
        while (b->p && mix_rec_get(b->p, b->len, &off, &r, &src, &ms))
            if (ms >= now_ms - rc->max_age_ms) {
                fn(ctx, &r, src, ms);
                n++;
            }
    }
    return n;
}
