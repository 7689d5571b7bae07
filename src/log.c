/*
 * log.c: writes PgBouncer-format log lines so log analysers (pgBadger) parse them unchanged.
 * Owns the logfile descriptor and the syslog connection; knows nothing about connections.
 * Every message is one line: control characters in it are escaped, never written raw.
 */
#include "pgusher/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
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
    /* openlog() keeps the ident pointer it is given, so the ident lives here, at an address
     * that never changes, and not in a config snapshot that SET or RELOAD frees. */
    char ident[64];
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

/*
 * Open the logfile for appending. O_NOFOLLOW: a symbolic link is refused, so whoever can
 * write to the log's directory cannot point the file at one pgusher's user may write to
 * (main.c also opens it only after dropping root privileges). Negative errno on failure.
 */
static int open_logfile(const char *path)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0640);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return -EINVAL;
    }
    return fd;
}

static const char *open_error(int neg_errno)
{
    if (neg_errno == -ELOOP)
        return "it is a symbolic link (refused)";
    if (neg_errno == -EINVAL)
        return "not a regular file";
    return strerror(-neg_errno);
}

bool log_configure(const struct log_settings *s)
{
    bool ok = true;
    L.to_stderr = s->to_stderr;
    L.verbose = s->verbose;
    const char *path = (s->logfile && *s->logfile) ? s->logfile : NULL;
    if (path) {
        /* Open the new file first: if that fails, keep logging where we did. */
        int fd = open_logfile(path);
        char *copy = strdup(path);
        if (fd < 0 || !copy) {
            free(copy);
            if (fd >= 0)
                close(fd);
            log_error("cannot open logfile \"%s\": %s", path,
                      fd < 0 ? open_error(fd) : strerror(ENOMEM));
            if (L.fd < 0 && !L.to_stderr)
                fprintf(stderr, "cannot open logfile \"%s\": %s\n", path,
                        fd < 0 ? open_error(fd) : strerror(ENOMEM));
            ok = false;
        } else {
            if (L.fd >= 0)
                close(L.fd);
            free(L.path);
            L.fd = fd;
            L.path = copy;
        }
    } else {
        if (L.fd >= 0)
            close(L.fd);
        L.fd = -1;
        free(L.path);
        L.path = NULL;
    }
    if (L.syslog)
        closelog();
    L.syslog = s->syslog;
    snprintf(L.ident, sizeof(L.ident), "%s",
             s->syslog_ident && *s->syslog_ident ? s->syslog_ident : "pgusher");
    if (L.syslog)
        openlog(L.ident, LOG_PID, facility_code(s->syslog_facility));
    return ok;
}

bool log_reopen(void)
{
    if (!L.path)
        return true;
    int fd = open_logfile(L.path);
    if (fd < 0) {
        log_error("cannot reopen logfile \"%s\": %s", L.path, open_error(fd));
        return false;
    }
    if (L.fd >= 0)
        close(L.fd);
    L.fd = fd;
    return true;
}

size_t log_escape(const char *in, size_t len, char *out, size_t cap)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    if (cap == 0)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        char esc[8];
        size_t n = 0;
        /* C1 controls (U+0080..U+009F, e.g. NEL) encoded in UTF-8: two bytes, both escaped. */
        bool c1 = c == 0xc2 && i + 1 < len && (unsigned char)in[i + 1] >= 0x80 &&
                  (unsigned char)in[i + 1] <= 0x9f;
        if (c == '\n') {
            esc[n++] = '\\';
            esc[n++] = 'n';
        } else if (c == '\r') {
            esc[n++] = '\\';
            esc[n++] = 'r';
        } else if ((c < 0x20 && c != '\t') || c == 0x7f || c1) {
            unsigned char b = c;
            for (int k = 0; k < (c1 ? 2 : 1); k++) {
                esc[n++] = '\\';
                esc[n++] = 'x';
                esc[n++] = hex[b >> 4];
                esc[n++] = hex[b & 15];
                if (c1)
                    b = (unsigned char)in[i + 1]; /* only then is there a second byte */
            }
        } else {
            esc[n++] = (char)c;
        }
        if (o + n >= cap)
            break; /* no room for this whole character: truncate before it */
        memcpy(out + o, esc, n);
        o += n;
        if (c1)
            i++;
    }
    out[o] = '\0';
    return o;
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
    char raw[4096], msg[4096];
    int rlen = vsnprintf(raw, sizeof(raw), fmt, ap);
    if (rlen < 0)
        return;
    if ((size_t)rlen >= sizeof(raw))
        rlen = sizeof(raw) - 1;
    /* Messages quote client-supplied text (user and database names, application_name,
     * server errors): escape control characters here, once, so none can start a line of
     * its own in the logfile, on stderr or in syslog. */
    int mlen = (int)log_escape(raw, (size_t)rlen, msg, sizeof(msg));

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
