/* px_log.c — see px_log.h. */
#include "px_log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static _Atomic int log_level = CONF_LOG_INFO;

void px_log_set_level(conf_log_level level)
{
    atomic_store(&log_level, (int)level);
}

void px_log(conf_log_level level, const char *fmt, ...)
{
    static const char *const names[] = {"ERROR", "WARNING", "LOG", "DEBUG"};
    if ((int)level > atomic_load(&log_level))
        return;
    char line[2048];
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    localtime_r(&tv.tv_sec, &tm);
    size_t n = strftime(line, sizeof line, "%Y-%m-%d %H:%M:%S", &tm);
    n += snprintf(line + n, sizeof line - n, ".%03d %s ", (int)(tv.tv_usec / 1000), names[level]);
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(line + n, sizeof line - n - 1, fmt, ap);
    va_end(ap);
    n = (w < 0) ? n : (n + (size_t)w >= sizeof line - 1 ? sizeof line - 2 : n + (size_t)w);
    line[n++] = '\n';
    ssize_t r = write(STDERR_FILENO, line, n);
    (void)r;
}
