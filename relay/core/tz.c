/* tz.c - zone tables built from localtime_r. See tz.h. */
#include "tz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "buf.h"

#define TZ_FROM 0LL                  /* 1970-01-01 */
#define TZ_UNTIL 4102444800LL        /* 2100-01-01 */
#define TZ_MAX_ZONES 64

typedef struct span {
    int64_t start;            /* the UTC second this offset starts (INT64_MIN: always) */
    int32_t off;              /* seconds east of UTC */
} span;

struct pdns_tz {
    char name[64];
    size_t n, cap;
    span *v;                  /* in time order */
};

static pdns_tz *zones[TZ_MAX_ZONES];
static size_t nzones;

static long offset_at(time_t t) {
    struct tm tm;
    if (!localtime_r(&t, &tm))
        return 0;
    return tm.tm_gmtoff;
}

static int push(pdns_tz *z, int64_t start, long off) {
    span *v = pdns_grow(z->v, &z->cap, z->n, sizeof(*v), 64);
    if (!v)
        return -1;
    z->v = v;
    z->v[z->n++] = (span){start, (int32_t)off};
    return 0;
}

/* The zone's table, TZ set to it meanwhile. */
static int build(pdns_tz *z) {
    long prev = offset_at((time_t)TZ_FROM);
    if (push(z, INT64_MIN, prev) < 0)
        return -1;
    for (int64_t day = TZ_FROM + 86400; day <= TZ_UNTIL; day += 86400) {
        long now = offset_at((time_t)day);
        if (now == prev)
            continue;
        int64_t lo = day - 86400, hi = day; /* offset(lo) = prev, offset(hi) = now */
        while (hi - lo > 1) {
            int64_t mid = lo + (hi - lo) / 2;
            if (offset_at((time_t)mid) == prev)
                lo = mid;
            else
                hi = mid;
        }
        if (push(z, hi, now) < 0)
            return -1;
        prev = now;
    }
    return 0;
}

static int known(const char *name) {
    if (strcmp(name, "UTC") == 0)
        return 1;
    if (!name[0] || name[0] == '/' || strstr(name, "..") || strlen(name) > 60)
        return 0;
    const char *dir = getenv("TZDIR");
    char path[512];
    struct stat st;
    snprintf(path, sizeof(path), "%s/%s", dir && dir[0] ? dir : "/usr/share/zoneinfo", name);
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

const pdns_tz *pdns_tz_get(const char *name, char *err, size_t errlen) {
    for (size_t i = 0; i < nzones; i++)
        if (strcmp(zones[i]->name, name) == 0)
            return zones[i];
    if (!known(name)) {
        snprintf(err, errlen, "unknown time zone \"%s\" (an IANA name such as "
                 "\"Europe/Luxembourg\", or \"UTC\"; from Debian's tzdata)", name);
        return NULL;
    }
    if (nzones == TZ_MAX_ZONES) {
        snprintf(err, errlen, "more than %d time zones", TZ_MAX_ZONES);
        return NULL;
    }
    pdns_tz *z = calloc(1, sizeof(*z));
    if (!z) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    snprintf(z->name, sizeof(z->name), "%s", name);
    const char *old = getenv("TZ");
    char *saved = old ? strdup(old) : NULL;
    setenv("TZ", name, 1);
    tzset();
    int rc = build(z);
    if (saved)
        setenv("TZ", saved, 1);
    else
        unsetenv("TZ");
    tzset();
    free(saved);
    if (rc < 0) {
        free(z->v);
        free(z);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    zones[nzones++] = z;
    return z;
}

/* The index of the offset in force at UTC second t. */
static size_t at(const pdns_tz *z, int64_t t) {
    size_t lo = 0, hi = z->n; /* v[lo].start <= t < v[hi].start */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (z->v[mid].start <= t)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

int64_t pdns_tz_to_utc(const pdns_tz *z, int64_t local) {
    /* offsets lie within a day of UTC: try each offset in force near
     * there, earliest first */
    size_t i = at(z, local - 86400), best = i;
    for (; i < z->n && z->v[i].start <= local + 86400; i++) {
        int64_t u = local - z->v[i].off;
        if (u < z->v[i].start)
            continue;
        best = i;
        if (i + 1 == z->n || u < z->v[i + 1].start)
            return u;
    }
    /* in the skipped hour: the offset in force before the change */
    return local - z->v[best].off;
}

const char *pdns_tz_name(const pdns_tz *tz) { return tz->name; }
