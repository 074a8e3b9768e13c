/* log.c - leveled logging to stderr. When stderr is the journal's stream
 * (systemd sets JOURNAL_STREAM to its device:inode), each line starts with
 * its syslog priority instead of a timestamp ("<3>error ...", sd-daemon(3)),
 * so journalctl -p filters by level. */
#include "log.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static enum log_level min_level = LOG_INFO;
static const char *names[] = {"debug", "info", "warn", "error"};
static const int priorities[] = {7, 6, 4, 3}; /* LOG_DEBUG, INFO, WARNING, ERR */
static int to_journal = -1;                    /* not known yet */

static int stderr_is_journal(void) {
    const char *js = getenv("JOURNAL_STREAM");
    uintmax_t dev, ino;
    struct stat st;
    return js && sscanf(js, "%ju:%ju", &dev, &ino) == 2 && fstat(STDERR_FILENO, &st) == 0 &&
           (uintmax_t)st.st_dev == dev && (uintmax_t)st.st_ino == ino;
}

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
    if (to_journal < 0)
        to_journal = stderr_is_journal();
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (to_journal) {
        fprintf(stderr, "<%d>%s %s\n", priorities[l], names[l], line);
        return;
    }
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
    fprintf(stderr, "%s %s %s\n", ts, names[l], line);
}
