/*
 * log.h: PgBouncer-format log lines ("2026-01-01 00:00:00.000 UTC [pid] LOG msg") to stderr,
 * the logfile and syslog. Never blocks the loop for long; never exits except log_fatal().
 */
#ifndef PGUSHER_LOG_H
#define PGUSHER_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

enum log_level {
    LOG_LVL_FATAL,
    LOG_LVL_ERROR,
    LOG_LVL_WARNING,
    LOG_LVL_INFO,
    LOG_LVL_DEBUG,
    LOG_LVL_NOISE
};

struct log_settings {
    const char *logfile; /* NULL or "" = none */
    bool to_stderr;      /* false with -q or when daemonized */
    int verbose;         /* 0 = LOG and above; 1 = DEBUG; 2 = NOISE */
    bool syslog;
    const char *syslog_ident;
    const char *syslog_facility;
};

/* Apply settings; (re)opens the logfile (a symbolic link is refused). If it cannot be opened,
 * returns false after logging why, and the previous logfile, if any, stays in use. */
bool log_configure(const struct log_settings *s);
/* Reopen the logfile at the same path (after log rotation). False if that failed. */
bool log_reopen(void);
/* Copy in[0..len) to out (cap bytes, always NUL-terminated) with control characters
 * escaped: "\n", "\r", "\xNN" (C0 but tab, DEL, UTF-8 C1); stops before a character that
 * does not fit. Returns the length written. */
size_t log_escape(const char *in, size_t len, char *out, size_t cap);
bool log_enabled(enum log_level lvl);

void log_msg(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_vmsg(enum log_level lvl, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

#define log_error(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warning(...) log_msg(LOG_LVL_WARNING, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...)                                                                             \
    do {                                                                                           \
        if (log_enabled(LOG_LVL_DEBUG))                                                            \
            log_msg(LOG_LVL_DEBUG, __VA_ARGS__);                                                   \
    } while (0)
#define log_noise(...)                                                                             \
    do {                                                                                           \
        if (log_enabled(LOG_LVL_NOISE))                                                            \
            log_msg(LOG_LVL_NOISE, __VA_ARGS__);                                                   \
    } while (0)

_Noreturn void log_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
