/* log.h — Keylime-style log lines:
 *   "2026-11-27 19:37:02.123 - quince.<module> - LEVEL - message"
 * written to stderr (default) and/or syslog. Thread-safe; one line per call. */
#ifndef QUINCE_LOG_H
#define QUINCE_LOG_H

#include <stdbool.h>
#include <stdarg.h>

typedef enum { QLOG_DEBUG = 0, QLOG_INFO, QLOG_WARNING, QLOG_ERROR, QLOG_CRITICAL } qlog_level;

void qlog_set_level(qlog_level lvl);
qlog_level qlog_get_level(void);
/* "debug", "info", "warning"/"warn", "error", "critical" (any case); -1 if unknown. */
int qlog_level_parse(const char *s, qlog_level *out);
const char *qlog_level_name(qlog_level lvl);    /* "DEBUG", "INFO", "WARNING", ... */
void qlog_use_syslog(bool on, const char *ident);
/* log_format: text (the Keylime layout above) or json, one object per line for log shippers:
 * {"time": "...", "logger": "quince.<module>", "level": "WARNING", "message": "...",
 *  "agent_id": "..."} — agent_id when the message starts with "agent <id>". */
typedef enum { QLOG_FMT_TEXT = 0, QLOG_FMT_JSON } qlog_format;
void qlog_set_format(qlog_format f);
int qlog_format_parse(const char *s, qlog_format *out);   /* "text" or "json" (any case); -1 else */
void qlog_use_stderr(bool on);

/* Optional extra sink (tests, capture): called with the formatted message (no newline).
 * It runs under the log lock, one call at a time, and must not call qlog itself. */
typedef void (*qlog_sink_fn)(void *ctx, qlog_level lvl, const char *module, const char *msg);
void qlog_set_sink(qlog_sink_fn fn, void *ctx);

void qlog(qlog_level lvl, const char *module, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void qlogv(qlog_level lvl, const char *module, const char *fmt, va_list ap);

#define QLOG_DEBUG_(m, ...) qlog(QLOG_DEBUG, m, __VA_ARGS__)
#endif
