/*
 * sluice-gateway: event log (see log.h).
 */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_BYTES 4096

static gw_log_format_t log_format = GW_LOG_TEXT;
static int log_quiet;

static const char *level_text[] = {"DEBUG", "INFO ", "WARN ", "ERROR"};
static const char *level_json[] = {"debug", "info", "warn", "error"};

int64_t gw_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void gw_log_init(gw_log_format_t format, int quiet)
{
    log_format = format;
    log_quiet = quiet;
}

/* Set once a write to stdout has failed for good (a reader that went away, a full disk):
 * later event lines are not attempted, the run goes on, and the summary reports it. */
static atomic_int stdout_broken;

/* Events go to stderr, ERROR only: under --quiet, or once stdout is broken. */
static int to_stderr(void)
{
    return log_quiet || atomic_load_explicit(&stdout_broken, memory_order_relaxed);
}

int gw_log_enabled(gw_level_t level)
{
    return level >= (to_stderr() ? GW_ERROR : GW_INFO);
}

/* A bounded string builder: appends are truncated at the end of the buffer, never overflow. */
typedef struct buf {
    char *p;
    size_t len, cap;
} buf_t;

static void put(buf_t *b, const char *s, size_t n)
{
    if (b->len + n > b->cap)
        n = b->cap - b->len;
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void puts_(buf_t *b, const char *s)
{
    put(b, s, strlen(s));
}

static void printf_(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void printf_(buf_t *b, const char *fmt, ...)
{
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0)
        put(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* The length of the well-formed UTF-8 sequence at s (RFC 3629: no overlong forms, no
 * surrogates, nothing past U+10FFFF), or 0. s[0] >= 0x80. */
static size_t utf8_len(const unsigned char *s)
{
    unsigned c = s[0];
    size_t n;
    unsigned lo = 0x80, hi = 0xbf; /* the range of the second byte */
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        if (c == 0xe0)
            lo = 0xa0;
        else if (c == 0xed)
            hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f;
    } else {
        return 0;
    }
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (size_t k = 2; k < n; k++)
        if (s[k] < 0x80 || s[k] > 0xbf)
            return 0;
    return n;
}

/* Appends s as the inside of a JSON string. Well-formed UTF-8 passes through; control bytes are
 * escaped; a byte that is not part of well-formed UTF-8 (a path in another encoding, say)
 * becomes U+FFFD, so that every line stays valid JSON. */
static void put_json_str(buf_t *b, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned char c = *p;
        if (c >= 0x80) {
            size_t n = utf8_len(p);
            if (n) {
                put(b, (const char *)p, n);
                p += n;
            } else {
                puts_(b, "\\ufffd");
                p++;
            }
            continue;
        }
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            put(b, e, 2);
        } else if (c == '\n') {
            puts_(b, "\\n");
        } else if (c < 0x20) {
            printf_(b, "\\u%04x", c);
        } else {
            put(b, (const char *)&c, 1);
        }
        p++;
    }
}

static void put_value(buf_t *b, const gw_field_t *f, int json)
{
    switch (f->type) {
    case GW_F_INT:
        printf_(b, "%lld", (long long)f->i);
        break;
    case GW_F_UINT:
        printf_(b, "%llu", (unsigned long long)f->u);
        break;
    case GW_F_DBL:
        printf_(b, json ? "%.3f" : "%.1f", f->d);
        break;
    case GW_F_STR:
        if (json) {
            puts_(b, "\"");
            put_json_str(b, f->s ? f->s : "");
            puts_(b, "\"");
        } else {
            puts_(b, f->s ? f->s : "");
        }
        break;
    case GW_F_END:
        break;
    }
}

/* Expands {name} placeholders of tmpl with the fields (unknown names are kept as written). */
static void render(buf_t *b, const char *tmpl, const gw_field_t *fields)
{
    const char *p = tmpl;
    while (*p) {
        const char *open = strchr(p, '{');
        if (!open) {
            puts_(b, p);
            return;
        }
        put(b, p, (size_t)(open - p));
        const char *close = strchr(open, '}');
        if (!close) {
            puts_(b, open);
            return;
        }
        size_t klen = (size_t)(close - open - 1);
        const gw_field_t *hit = NULL;
        for (const gw_field_t *f = fields; f && f->key; f++) {
            if (strlen(f->key) == klen && memcmp(f->key, open + 1, klen) == 0) {
                hit = f;
                break;
            }
        }
        if (hit)
            put_value(b, hit, 0);
        else
            put(b, open, (size_t)(close - open + 1));
        p = close + 1;
    }
}

/* 0, or the errno that stopped the write. */
static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static void emit_line(gw_level_t level, const char *event, const char *tmpl,
                      const gw_field_t *fields);

/* gw_log_final() has run: event lines are dropped, so that the summary stays the last line.
 * log_writing counts the event lines being written, which it waits for (a moment). */
static atomic_int log_closed, log_writing;

void gw_log_emit(gw_level_t level, const char *event, const char *tmpl, const gw_field_t *fields)
{
    if (!gw_log_enabled(level) || atomic_load(&log_closed))
        return;
    atomic_fetch_add(&log_writing, 1);
    if (!atomic_load(&log_closed))
        emit_line(level, event, tmpl, fields);
    atomic_fetch_sub(&log_writing, 1);
}

static void emit_line(gw_level_t level, const char *event, const char *tmpl,
                      const gw_field_t *fields)
{
    char line[LINE_MAX_BYTES];
    buf_t b = {line, 0, sizeof line - 1}; /* room for the newline */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    int ms = (int)(ts.tv_nsec / 1000000);

    if (log_format == GW_LOG_JSON) {
        printf_(&b, "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03dZ\",\"level\":\"%s\",",
                tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms,
                level_json[level]);
        puts_(&b, "\"event\":\"");
        put_json_str(&b, event);
        puts_(&b, "\",\"msg\":\"");
        char msg[LINE_MAX_BYTES / 2];
        buf_t m = {msg, 0, sizeof msg - 1};
        render(&m, tmpl, fields);
        msg[m.len] = '\0';
        put_json_str(&b, msg);
        puts_(&b, "\",\"fields\":{");
        for (const gw_field_t *f = fields; f && f->key; f++) {
            if (f != fields)
                puts_(&b, ",");
            puts_(&b, "\"");
            put_json_str(&b, f->key);
            puts_(&b, "\":");
            put_value(&b, f, 1);
        }
        puts_(&b, "}}");
    } else {
        printf_(&b, "%02d:%02d:%02d.%03d %s ", tm.tm_hour, tm.tm_min, tm.tm_sec, ms,
                level_text[level]);
        render(&b, tmpl, fields);
    }
    line[b.len++] = '\n';
    if (to_stderr()) {
        (void)write_all(STDERR_FILENO, line, b.len);
    } else if (write_all(STDOUT_FILENO, line, b.len) != 0) {
        atomic_store_explicit(&stdout_broken, 1, memory_order_relaxed);
        if (level >= GW_ERROR) /* the log is gone, this one still matters */
            (void)write_all(STDERR_FILENO, line, b.len);
    }
}

/* stdout's file status flags before gw_log_unblock(), restored by gw_log_final(); -1: not
 * changed. The open file description is shared (with the shell, on a terminal; with whoever
 * else writes to the pipe), so the change must not outlive the process's last line. */
static int stdout_flags = -1;

void gw_log_unblock(void)
{
    if (isatty(STDOUT_FILENO))
        return; /* a terminal: nonblocking mode would leak into the shell's use of it */
    int fl = fcntl(STDOUT_FILENO, F_GETFL);
    if (fl != -1 && !(fl & O_NONBLOCK) && fcntl(STDOUT_FILENO, F_SETFL, fl | O_NONBLOCK) == 0)
        stdout_flags = fl;
}

int gw_log_final(const char *line)
{
    atomic_store(&log_closed, 1);
    /* An event line under way finishes first (a write cannot be taken back), unless it is
     * stuck on a stdout that nobody reads: then 200 ms is all it gets. */
    for (int i = 0; i < 200 && atomic_load(&log_writing) > 0; i++) {
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
    int e = gw_log_raw(line);
    if (stdout_flags != -1)
        (void)fcntl(STDOUT_FILENO, F_SETFL, stdout_flags);
    return e;
}

int gw_log_raw(const char *line)
{
    size_t n = strlen(line);
    char tmp[LINE_MAX_BYTES];
    if (n + 1 <= sizeof tmp) {
        memcpy(tmp, line, n);
        tmp[n] = '\n';
        return write_all(STDOUT_FILENO, tmp, n + 1);
    }
    int e = write_all(STDOUT_FILENO, line, n);
    return e ? e : write_all(STDOUT_FILENO, "\n", 1);
}

int gw_ratelimit_allow(gw_ratelimit_t *rl, int64_t period, uint64_t *suppressed)
{
    int64_t now = sl_now();
    if (rl->last != 0 && now - rl->last < period) {
        rl->suppressed++;
        return 0;
    }
    rl->last = now;
    *suppressed = rl->suppressed;
    rl->suppressed = 0;
    return 1;
}
