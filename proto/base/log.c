#include "proto/base/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int sh_log_level = SH_LOG_INFO;

static const char *level_name(int level)
{
    switch (level) {
        case SH_LOG_DEBUG:
            return "debug";
        case SH_LOG_INFO:
            return "info";
        case SH_LOG_WARN:
            return "warn";
        default:
            return "error";
    }
}

static void stderr_emit(void *data,
                        int level,
                        const char *file,
                        int line,
                        const char *func,
                        const char *msg)
{
    struct timespec ts;
    struct tm tm;
    char stamp[32];

    (void)data;
    (void)func;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
    fprintf(stderr, "%s.%03ldZ %-5s %s:%d %s\n", stamp, ts.tv_nsec / 1000000,
            level_name(level), file, line, msg);
}

static struct sh_log_sink default_sink = {NULL, stderr_emit};
static struct sh_log_sink current_sink = {NULL, stderr_emit};

void sh_log_set_sink(const struct sh_log_sink *sink)
{
    current_sink = sink != NULL ? *sink : default_sink;
}

int sh_log_level_parse(const char *name)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    for (int i = 0; i < 4; i++) {
        if (strcmp(name, names[i]) == 0)
            return i;
    }
    return -1;
}

void sh_log_emit(int level,
                 const char *file,
                 int line,
                 const char *func,
                 const char *fmt,
                 ...)
{
    char msg[1024];
    va_list ap;
    const char *base = strrchr(file, '/');

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    current_sink.emit(current_sink.data, level, base ? base + 1 : file, line,
                      func, msg);
}
