/* log.h - the relay's one logger: levels, printf-checked formats, one line
 * per event on stderr ("2026-11-29T06:19:04Z info d4: ..."). */
#ifndef PDNS_LOG_H
#define PDNS_LOG_H

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR };

void log_set_level(enum log_level l);

/* Parses "debug", "info", "warn" or "error". Returns 0, or -1. */
int log_level_parse(const char *s, enum log_level *l);

void log_msg(enum log_level l, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
