/* log.c - leveled logging to stderr. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static enum log_level min_level = LOG_INFO;
static const char *names[] = {"debug", "info", "warn", "error"};

void log_set_level(enum log_level l) {
    min_level = l;
}

int log_level_parse(const char *s, enum log_level *l) {
    for (int i = 0; i < 4; i++)
        if (strcmp(s, names[i]) == 0) {
            *l = (enum log_level)i;
            return 0;
        }
    return -1;
}

void log_msg(enum log_level l, const char *fmt, ...) {
    char ts[32], line[2048];
    va_list ap;
    if (l < min_level)
        return;
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s %s %s\n", ts, names[l], line);
}
