/* Leveled logging with an injected sink (STYLE habit 11).
 *
 * The level is checked before the arguments are evaluated, so a disabled
 * SH_DEBUG costs one comparison.  The sink defaults to stderr; the process
 * (node/) may replace it, tests install a capturing one. */
#ifndef SHOAL_PROTO_BASE_LOG_H
#define SHOAL_PROTO_BASE_LOG_H

enum sh_log_level {
    SH_LOG_DEBUG = 0,
    SH_LOG_INFO = 1,
    SH_LOG_WARN = 2,
    SH_LOG_ERROR = 3,
};

struct sh_log_sink {
    void *data; /* passed back to emit */
    void (*emit)(void *data,
                 int level,
                 const char *file,
                 int line,
                 const char *func,
                 const char *msg); /* msg has no trailing newline */
};

extern int sh_log_level; /* messages below this level are dropped */

/* Replace the sink; NULL restores the stderr default.  Not thread-safe:
 * call before starting threads. */
void sh_log_set_sink(const struct sh_log_sink *sink);

/* Parse "debug", "info", "warn", "error"; returns -1 if unknown. */
int sh_log_level_parse(const char *name);

void sh_log_emit(int level,
                 const char *file,
                 int line,
                 const char *func,
                 const char *fmt,
                 ...) __attribute__((format(printf, 5, 6)));

#define SH_LOG(level, ...)                                              \
    do {                                                                \
        if ((level) >= sh_log_level)                                    \
            sh_log_emit(level, __FILE__, __LINE__, __func__, __VA_ARGS__); \
    } while (0)

#define SH_DEBUG(...) SH_LOG(SH_LOG_DEBUG, __VA_ARGS__)
#define SH_INFO(...) SH_LOG(SH_LOG_INFO, __VA_ARGS__)
#define SH_WARN(...) SH_LOG(SH_LOG_WARN, __VA_ARGS__)
#define SH_ERROR(...) SH_LOG(SH_LOG_ERROR, __VA_ARGS__)

#endif
