/*
 * log.c: writes PgBouncer-format log lines so log analysers (pgBadger) parse them unchanged.
 * Owns the logfile descriptor and the syslog connection; knows nothing about connections.
 */
#include "pgusher/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static struct {
    int fd;
    char *path;
    bool to_stderr;
    int verbose;
    bool syslog;
} L = {.fd = -1, .to_stderr = true};

static const char *const level_names[] = {"FATAL", "ERROR", "WARNING", "LOG", "DEBUG", "NOISE"};
static const int syslog_levels[] = {LOG_CRIT, LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG, LOG_DEBUG};

static int facility_code(const char *name)
{
    static const struct {
        const char *name;
        int code;
    } tab[] = {{"auth", LOG_AUTH},     {"authpriv", LOG_AUTHPRIV}, {"daemon", LOG_DAEMON},
               {"user", LOG_USER},     {"local0", LOG_LOCAL0},     {"local1", LOG_LOCAL1},
               {"local2", LOG_LOCAL2}, {"local3", LOG_LOCAL3},     {"local4", LOG_LOCAL4},
               {"local5", LOG_LOCAL5}, {"local6", LOG_LOCAL6},     {"local7", LOG_LOCAL7}};
    for (size_t i = 0; name && i < sizeof(tab) / sizeof(tab[0]); i++)
        if (strcasecmp(name, tab[i].name) == 0)
            return tab[i].code;
    return LOG_DAEMON;
}

bool log_configure(const struct log_settings *s)
{
    bool ok = true;
    L.to_stderr = s->to_stderr;
    L.verbose = s->verbose;
    free(L.path);
    L.path = (s->logfile && *s->logfile) ? strdup(s->logfile) : NULL;
    if (L.fd >= 0)
        close(L.fd);
    L.fd = -1;
    if (L.path) {
        L.fd = open(L.path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
        if (L.fd < 0) {
            fprintf(stderr, "cannot open logfile \"%s\": %s\n", L.path, strerror(errno));
            ok = false;
        }
    }
    if (L.syslog)
        closelog();
    L.syslog = s->syslog;
    if (L.syslog)
        openlog(s->syslog_ident ? s->syslog_ident : "pgusher", LOG_PID,
                facility_code(s->syslog_facility));
    return ok;
}

void log_reopen(void)
{
    if (!L.path)
        return;
    int fd = open(L.path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0)
        return;
    if (L.fd >= 0)
        close(L.fd);
    L.fd = fd;
}

bool log_enabled(enum log_level lvl)
{
    if (lvl <= LOG_LVL_INFO)
        return true;
    return (int)lvl - (int)LOG_LVL_INFO <= L.verbose;
}

void log_vmsg(enum log_level lvl, const char *fmt, va_list ap)
{
    if (!log_enabled(lvl))
        return;
    char msg[4096];
    int mlen = vsnprintf(msg, sizeof(msg), fmt, ap);
    if (mlen < 0)
        return;
    if ((size_t)mlen >= sizeof(msg))
        mlen = sizeof(msg) - 1;

    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    localtime_r(&tv.tv_sec, &tm);
    char ts[64], tz[16];
    strftime(ts, sizeof(ts), "%Y-%m-%d %H:%M:%S", &tm);
    strftime(tz, sizeof(tz), "%Z", &tm);

    char line[4300];
    int n = snprintf(line, sizeof(line), "%s.%03d %s [%d] %s %.*s\n", ts, (int)(tv.tv_usec / 1000),
                     tz, (int)getpid(), level_names[lvl], mlen, msg);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof(line))
        n = sizeof(line) - 1;
    if (L.to_stderr) {
        ssize_t w = write(STDERR_FILENO, line, (size_t)n);
        (void)w;
    }
    if (L.fd >= 0) {
        ssize_t w = write(L.fd, line, (size_t)n);
        (void)w;
    }
    if (L.syslog)
        syslog(syslog_levels[lvl], "%s %.*s", level_names[lvl], mlen, msg);
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(lvl, fmt, ap);
    va_end(ap);
}

void log_fatal(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(LOG_LVL_FATAL, fmt, ap);
    va_end(ap);
    exit(1);
}
