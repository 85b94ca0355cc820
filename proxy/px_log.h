/*
 * px_log.h — one line per event: time, level, a stable id, the message, on stderr.
 * Levels follow conf_log_level. Thread-safe (one write(2) per line).
 */
#ifndef PX_LOG_H
#define PX_LOG_H

#include "conf.h"

/* px_log_set_level — lines above level are dropped. */
void px_log_set_level(conf_log_level level);
/* px_log — format and write one line: "2026-11-21 10:00:00.123 LOG c12 message". */
void px_log(conf_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define px_error(...) px_log(CONF_LOG_ERROR, __VA_ARGS__)
#define px_warn(...) px_log(CONF_LOG_WARNING, __VA_ARGS__)
#define px_info(...) px_log(CONF_LOG_INFO, __VA_ARGS__)
#define px_debug(...) px_log(CONF_LOG_DEBUG, __VA_ARGS__)

#endif
