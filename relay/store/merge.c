/* merge.c - a cluster store's answers merged into one server's. See merge.h. */
#include "merge.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OUT_STRIDE STORE_TRIPLE_ELEMENTS
#define PAGE_STRIDE (OUT_STRIDE + 1) /* and its place */

redisReply *store_reply_new(int type, const char *s, size_t len) {
    redisReply *r = calloc(1, sizeof(*r));
    char *p = r ? malloc(len + 1) : NULL;
    if (!p) {
        free(r);
        return NULL;
    }
    if (len)
        memcpy(p, s, len);
    p[len] = '\0';
    r->type = type;
    r->str = p;
    r->len = len;
    return r;
}

redisReply *store_reply_dup(const redisReply *r) {
    if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS ||
        r->type == REDIS_REPLY_ERROR)
        return store_reply_new(r->type, r->str, r->len);
    redisReply *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->type = r->type;
    c->integer = r->integer;
    if (r->type != REDIS_REPLY_ARRAY || !r->elements)
        return c;
    c->element = calloc(r->elements, sizeof(*c->element));
    if (!c->element) {
        free(c);
        return NULL;
    }
    c->elements = r->elements;
    for (size_t i = 0; i < r->elements; i++)
        if (!(c->element[i] = store_reply_dup(r->element[i]))) {
            freeReplyObject(c);
            return NULL;
        }
    return c;
}

/* memcmp order, a prefix first: ZRANGEBYLEX's */
static int bytes_cmp(const char *a, size_t al, const char *b, size_t bl) {
    int c = memcmp(a, b, al < bl ? al : bl);
    return c ? c : (al > bl) - (al < bl);
}

typedef struct item {
    const redisReply *place;
    int page;
    size_t at;
} item;

static int item_cmp(const void *x, const void *y) {
    const item *a = x, *b = y;
    int c = bytes_cmp(a->place->str, a->place->len, b->place->str, b->place->len);
    if (c)
        return c;
    if (a->page != b->page)
        return a->page < b->page ? -1 : 1;
    return a->at < b->at ? -1 : a->at > b->at;
}

static int page_ok(const redisReply *p) {
    if (!p || p->type != REDIS_REPLY_ARRAY || p->elements < 1 ||
        p->element[0]->type != REDIS_REPLY_STRING || (p->elements - 1) % PAGE_STRIDE)
        return 0;
    for (size_t i = 1; i < p->elements; i++)
        if (p->element[i]->type != REDIS_REPLY_STRING)
            return 0;
    return 1;
}

redisReply *store_merge_pages(redisReply **pages, int n, size_t limit, int with_field) {
    size_t total = 0;
    for (int k = 0; k < n; k++) {
        if (!page_ok(pages[k]))
            return NULL;
        total += (pages[k]->elements - 1) / PAGE_STRIDE;
    }
    /* the bound: the least place a shard that is not done stopped at */
    const redisReply *bound = NULL;
    size_t bound_len = 0;
    for (int k = 0; k < n; k++) {
        const redisReply *c = pages[k]->element[0];
        if (!c->len)
            continue;
        const char *nl = memchr(c->str, '\n', c->len);
        size_t bl = nl ? (size_t)(nl - c->str) : c->len;
        if (!bound || bytes_cmp(c->str, bl, bound->str, bound_len) < 0)
            bound = c, bound_len = bl;
    }
    item *it = malloc((total ? total : 1) * sizeof(*it));
    if (!it)
        return NULL;
    size_t m = 0;
    for (int k = 0; k < n; k++)
        for (size_t i = 1; i < pages[k]->elements; i += PAGE_STRIDE)
            it[m++] = (item){pages[k]->element[i + OUT_STRIDE], k, i};
    qsort(it, m, sizeof(*it), item_cmp);
    size_t take = 0;
    int full = 0;
    while (take < m) {
        if (take == limit) {
            full = 1;
            break;
        }
        if (bound && bytes_cmp(it[take].place->str, it[take].place->len, bound->str,
                               bound_len) > 0)
            break;
        take++;
    }
    redisReply *out = calloc(1, sizeof(*out));
    if (out)
        out->element = calloc(1 + take * OUT_STRIDE, sizeof(*out->element));
    if (!out || !out->element) {
        free(out);
        free(it);
        return NULL;
    }
    out->type = REDIS_REPLY_ARRAY;
    out->elements = 1;
    /* the cursor: after the last triple given when the page is full and
     * more are known; else where the first shard not done stopped */
    if (full) {
        const item *last = &it[take - 1];
        const redisReply *f = pages[last->page]->element[last->at + 1];
        size_t pl = last->place->len, len = pl + (with_field ? 1 + f->len : 0);
        char *cur = malloc(len + 1);
        if (cur) {
            memcpy(cur, last->place->str, pl);
            if (with_field) {
                cur[pl] = '\n';
                memcpy(cur + pl + 1, f->str, f->len);
            }
            out->element[0] = store_reply_new(REDIS_REPLY_STRING, cur, len);
            free(cur);
        }
    } else if (bound) {
        out->element[0] = store_reply_new(REDIS_REPLY_STRING, bound->str, bound->len);
    } else {
        out->element[0] = store_reply_new(REDIS_REPLY_STRING, "", 0);
    }
    if (!out->element[0]) {
        free(it);
        freeReplyObject(out);
        return NULL;
    }
    for (size_t j = 0; j < take; j++) {
        redisReply **src = pages[it[j].page]->element + it[j].at;
        for (int f = 0; f < OUT_STRIDE; f++) {
            out->element[out->elements++] = src[f];
            src[f] = NULL;
        }
    }
    free(it);
    return out;
}

static int reply_cmp(const void *x, const void *y) {
    const redisReply *a = *(redisReply *const *)x, *b = *(redisReply *const *)y;
    return bytes_cmp(a->str, a->len, b->str, b->len);
}

redisReply *store_merge_members(redisReply **pages, int n, size_t limit) {
    size_t total = 0;
    int more = 0;
    for (int k = 0; k < n; k++) {
        const redisReply *p = pages[k];
        if (!p || p->type != REDIS_REPLY_ARRAY || p->elements < 1)
            return NULL;
        for (size_t i = 0; i < p->elements; i++)
            if (p->element[i]->type != REDIS_REPLY_STRING)
                return NULL;
        total += p->elements - 1;
        more |= p->element[0]->len > 0;
    }
    redisReply *out = calloc(1, sizeof(*out));
    if (!out || !(out->element = calloc(total + 1, sizeof(*out->element)))) {
        free(out);
        return NULL;
    }
    out->type = REDIS_REPLY_ARRAY;
    out->elements = 1;
    for (int k = 0; k < n; k++)
        for (size_t i = 1; i < pages[k]->elements; i++) {
            out->element[out->elements++] = pages[k]->element[i];
            pages[k]->element[i] = NULL;
        }
    qsort(out->element + 1, total, sizeof(*out->element), reply_cmp);
    if (total > limit) {
        for (size_t i = 1 + limit; i < out->elements; i++)
            freeReplyObject(out->element[i]);
        out->elements = 1 + limit;
        more = 1;
    }
    const redisReply *last = out->elements > 1 ? out->element[out->elements - 1] : NULL;
    out->element[0] = more && last ? store_reply_new(REDIS_REPLY_STRING, last->str, last->len)
                                   : store_reply_new(REDIS_REPLY_STRING, "", 0);
    if (!out->element[0]) {
        freeReplyObject(out);
        return NULL;
    }
    return out;
}

static int to_i64(const redisReply *r, int64_t *v) {
    char *end;
    if (r->type == REDIS_REPLY_INTEGER) {
        *v = r->integer;
        return 0;
    }
    if (r->type != REDIS_REPLY_STRING)
        return -1;
    *v = strtoll(r->str, &end, 10);
    return end == r->str ? -1 : 0;
}

redisReply *store_merge_info(redisReply **pages, int n) {
    int64_t head[4] = {0, 0, 0, 0};
    size_t ns = 0, cap = 0;
    struct sensor {
        const redisReply *name;
        int64_t count;
    } *ss = NULL;
    redisReply *out = NULL;
    for (int k = 0; k < n; k++) {
        const redisReply *p = pages[k];
        if (!p || p->type != REDIS_REPLY_ARRAY || p->elements < 4 || (p->elements - 4) % 2)
            goto fail;
        for (int i = 0; i < 4; i++) {
            int64_t v;
            if (to_i64(p->element[i], &v) < 0)
                goto fail;
            head[i] += v;
        }
        for (size_t i = 4; i + 1 < p->elements; i += 2) {
            const redisReply *nm = p->element[i];
            int64_t v;
            if (nm->type != REDIS_REPLY_STRING || to_i64(p->element[i + 1], &v) < 0)
                goto fail;
            size_t j = 0;
            while (j < ns && bytes_cmp(ss[j].name->str, ss[j].name->len, nm->str, nm->len))
                j++;
            if (j == ns) {
                if (ns == cap) {
                    cap = cap ? 2 * cap : 16;
                    void *g = realloc(ss, cap * sizeof(*ss));
                    if (!g)
                        goto fail;
                    ss = g;
                }
                ss[ns++] = (struct sensor){nm, 0};
            }
            ss[j].count += v;
        }
    }
    out = calloc(1, sizeof(*out));
    if (!out || !(out->element = calloc(4 + 2 * ns, sizeof(*out->element))))
        goto fail;
    out->type = REDIS_REPLY_ARRAY;
    for (size_t i = 0; i < 4 + 2 * ns; i++) {
        char num[24];
        const char *s = num;
        size_t len;
        if (i < 4)
            len = (size_t)snprintf(num, sizeof(num), "%" PRId64, head[i]);
        else if (i % 2 == 0)
            s = ss[(i - 4) / 2].name->str, len = ss[(i - 4) / 2].name->len;
        else
            len = (size_t)snprintf(num, sizeof(num), "%" PRId64, ss[(i - 4) / 2].count);
        if (!(out->element[i] = store_reply_new(REDIS_REPLY_STRING, s, len)))
            goto fail;
        out->elements = i + 1;
    }
    free(ss);
    return out;
fail:
    free(ss);
    if (out)
        freeReplyObject(out);
    return NULL;
}
