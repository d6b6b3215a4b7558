/* log.c — Keylime-style log lines (see log.h).
 * One lock serialises the outputs so every call produces exactly one whole line on each
 * output; the level check is a lock-free atomic load so filtered calls cost almost nothing.
 * The sink is called with the lock held: it must not call qlog itself. */
#include "log.h"

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#define QLOG_MSG_MAX   4096   /* formatted message, longer ones are cut */
#define QLOG_LINE_MAX  (QLOG_MSG_MAX + 256)
#define QLOG_IDENT_MAX 64
#define QLOG_MODULE_MAX 64

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static int g_level = QLOG_INFO;            /* read/written with __atomic builtins */
static bool g_stderr = true;
static bool g_syslog = false;
static qlog_format g_format = QLOG_FMT_TEXT;
static char g_ident[QLOG_IDENT_MAX];       /* openlog keeps the pointer: static storage */
static qlog_sink_fn g_sink = NULL;
static void *g_sink_ctx = NULL;

static const char *const level_names[] = { "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL" };

void qlog_set_level(qlog_level lvl)
{
    int v = (int)lvl;
    if (v < QLOG_DEBUG)
        v = QLOG_DEBUG;
    if (v > QLOG_CRITICAL)
        v = QLOG_CRITICAL;
    __atomic_store_n(&g_level, v, __ATOMIC_RELAXED);
}

qlog_level qlog_get_level(void)
{
    return (qlog_level)__atomic_load_n(&g_level, __ATOMIC_RELAXED);
}

int qlog_level_parse(const char *s, qlog_level *out)
{
    static const struct { const char *name; qlog_level lvl; } tab[] = {
        { "debug", QLOG_DEBUG },     { "info", QLOG_INFO },   { "warning", QLOG_WARNING },
        { "warn", QLOG_WARNING },    { "error", QLOG_ERROR }, { "critical", QLOG_CRITICAL },
    };
    if (!s)
        return -1;
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++) {
        if (strcasecmp(s, tab[i].name) == 0) {
            if (out)
                *out = tab[i].lvl;
            return 0;
        }
    }
    return -1;
}

const char *qlog_level_name(qlog_level lvl)
{
    int v = (int)lvl;
    if (v < QLOG_DEBUG || v > QLOG_CRITICAL)
        return "UNKNOWN";
    return level_names[v];
}

void qlog_use_syslog(bool on, const char *ident)
{
    pthread_mutex_lock(&g_lock);
    if (g_syslog)
        closelog();
    g_syslog = on;
    if (on) {
        snprintf(g_ident, sizeof g_ident, "%s", ident && ident[0] ? ident : "quince");
        openlog(g_ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
    }
    pthread_mutex_unlock(&g_lock);
}

void qlog_set_format(qlog_format f)
{
    pthread_mutex_lock(&g_lock);
    g_format = f == QLOG_FMT_JSON ? QLOG_FMT_JSON : QLOG_FMT_TEXT;
    pthread_mutex_unlock(&g_lock);
}

int qlog_format_parse(const char *s, qlog_format *out)
{
    if (s && strcasecmp(s, "text") == 0)
        *out = QLOG_FMT_TEXT;
    else if (s && strcasecmp(s, "json") == 0)
        *out = QLOG_FMT_JSON;
    else
        return -1;
    return 0;
}

/* The agent a message is about: "agent <id>" at its start ("agent <id>: ..."), else "". */
static void message_agent(const char *msg, char *out, size_t cap)
{
    out[0] = '\0';
    if (strncmp(msg, "agent ", 6) != 0)
        return;
    const char *p = msg + 6;
    size_t n = strcspn(p, " :,;()");
    if (n == 0 || n >= cap)
        return;
    memcpy(out, p, n);
    out[n] = '\0';
}

/* One JSON object and a newline; false when it cannot be built (the text line is used then). */
static bool json_line(const char *ts, const char *mod, const char *lname, const char *msg, char *line, size_t cap,
                      size_t *len)
{
    char logger[QLOG_MODULE_MAX + 8], agent[256];
    snprintf(logger, sizeof logger, "quince.%s", mod);
    message_agent(msg, agent, sizeof agent);
    cJSON *o = cJSON_CreateObject();
    bool ok = o && cJSON_AddStringToObject(o, "time", ts) && cJSON_AddStringToObject(o, "logger", logger) &&
              cJSON_AddStringToObject(o, "level", lname) && cJSON_AddStringToObject(o, "message", msg) &&
              (!agent[0] || cJSON_AddStringToObject(o, "agent_id", agent));
    char *text = ok ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    if (!text)
        return false;
    size_t n = strlen(text);
    ok = n + 2 <= cap;
    if (ok) {
        memcpy(line, text, n);
        line[n] = '\n';
        *len = n + 1;
    }
    cJSON_free(text);
    return ok;
}

void qlog_use_stderr(bool on)
{
    pthread_mutex_lock(&g_lock);
    g_stderr = on;
    pthread_mutex_unlock(&g_lock);
}

void qlog_set_sink(qlog_sink_fn fn, void *ctx)
{
    pthread_mutex_lock(&g_lock);
    g_sink = fn;
    g_sink_ctx = fn ? ctx : NULL;
    pthread_mutex_unlock(&g_lock);
}

static int syslog_priority(qlog_level lvl)
{
    switch (lvl) {
    case QLOG_DEBUG: return LOG_DEBUG;
    case QLOG_INFO: return LOG_INFO;
    case QLOG_WARNING: return LOG_WARNING;
    case QLOG_ERROR: return LOG_ERR;
    default: return LOG_CRIT;
    }
}

/* Keep one call = one line: control characters (newlines included) become spaces. */
static void flatten(char *s)
{
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r'))
        s[--n] = '\0';
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 && s[i] != '\t')
            s[i] = ' ';
}

/* "YYYY-MM-DD HH:MM:SS.mmm" in local time. */
static void timestamp(char *out, size_t cap)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    localtime_r(&ts.tv_sec, &tm);
    char base[32];
    if (strftime(base, sizeof base, "%Y-%m-%d %H:%M:%S", &tm) == 0)
        base[0] = '\0';
    snprintf(out, cap, "%s.%03ld", base, (long)(ts.tv_nsec / 1000000));
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0)
            return;   /* nowhere to report a failed log write */
        p += w;
        n -= (size_t)w;
    }
}

void qlogv(qlog_level lvl, const char *module, const char *fmt, va_list ap)
{
    if ((int)lvl < __atomic_load_n(&g_level, __ATOMIC_RELAXED))
        return;
    if ((int)lvl > QLOG_CRITICAL)
        lvl = QLOG_CRITICAL;
    if ((int)lvl < QLOG_DEBUG)
        lvl = QLOG_DEBUG;

    char msg[QLOG_MSG_MAX];
    vsnprintf(msg, sizeof msg, fmt ? fmt : "", ap);
    flatten(msg);
    char mod[QLOG_MODULE_MAX];
    snprintf(mod, sizeof mod, "%s", module && module[0] ? module : "main");
    flatten(mod);
    const char *lname = level_names[lvl];

    pthread_mutex_lock(&g_lock);
    if (g_stderr) {
        char ts[48];
        timestamp(ts, sizeof ts);
        char line[QLOG_LINE_MAX * 2];   /* JSON escapes may lengthen the message */
        size_t jlen = 0;
        if (g_format == QLOG_FMT_JSON && json_line(ts, mod, lname, msg, line, sizeof line, &jlen)) {
            write_all(STDERR_FILENO, line, jlen);
        } else {
            int n = snprintf(line, sizeof line, "%s - quince.%s - %s - %s\n", ts, mod, lname, msg);
            if (n > 0) {
                size_t len = (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
                line[len - 1] = '\n';
                write_all(STDERR_FILENO, line, len);
            }
        }
    }
    if (g_syslog)
        syslog(syslog_priority(lvl), "quince.%s - %s - %s", mod, lname, msg);
    if (g_sink)
        g_sink(g_sink_ctx, lvl, mod, msg);
    pthread_mutex_unlock(&g_lock);
}

void qlog(qlog_level lvl, const char *module, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    qlogv(lvl, module, fmt, ap);
    va_end(ap);
}
