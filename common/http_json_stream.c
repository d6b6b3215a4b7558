/* http_json_stream.c — a Keylime JSON envelope whose last member is a long string streamed from
 * a source and JSON-escaped on the fly (qhttp_reply_json_stream, qhttp_json_escape; see
 * http_server.h), built on qhttp_reply_stream so that memory stays bounded. */
#include "http_server.h"

#include <stdlib.h>
#include <string.h>

size_t qhttp_json_escape(const char *in, size_t in_len, char *out, size_t cap, size_t *used)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)in;
    size_t i = 0, o = 0;
    while (i < in_len && o < cap) {
        /* A run of bytes printed as they are. */
        size_t run = 0, lim = in_len - i < cap - o ? in_len - i : cap - o;
        while (run < lim && p[i + run] > 31 && p[i + run] != '"' && p[i + run] != '\\')
            run++;
        if (run) {
            memcpy(out + o, p + i, run);
            i += run;
            o += run;
            continue;
        }
        if (i == in_len)
            break;
        unsigned char c = p[i];
        char e = c == '"' ? '"' : c == '\\' ? '\\' : c == '\b' ? 'b' : c == '\f' ? 'f'
               : c == '\n' ? 'n' : c == '\r' ? 'r' : c == '\t' ? 't' : 0;
        if (e) {
            if (cap - o < 2)
                break;
            out[o++] = '\\';
            out[o++] = e;
        } else if (c <= 31) {
            if (cap - o < 6)
                break;
            memcpy(out + o, "\\u00", 4);
            out[o + 4] = hex[c >> 4];
            out[o + 5] = hex[c & 15];
            o += 6;
        } else {
            break; /* not reached: a plain byte that did not fit (o == cap) */
        }
        i++;
    }
    if (used)
        *used = i;
    return o;
}

/* A JSON envelope streamed as prefix + escaped source + suffix. */
#define JS_RAW (QHTTP_STREAM_BLOCK / 4)
typedef struct jstream {
    char *prefix;            /* envelope up to and including the member's opening quote */
    size_t prefix_len;
    qhttp_read_fn src;
    void *ctx;
    qhttp_free_fn free_ctx;
    uint64_t src_len, src_pos;
    int phase;               /* 0 prefix, 1 member value, 2 suffix, 3 done */
    size_t off;              /* position inside the prefix or the suffix */
    char pend[8];            /* one escape that did not fit the caller's buffer */
    size_t pend_len, pend_off;
    size_t raw_pos, raw_len;
    char raw[JS_RAW];
} jstream;

static const char js_suffix[] = "\"}}";

static void jstream_free(void *cls)
{
    jstream *js = cls;
    if (!js)
        return;
    if (js->free_ctx)
        js->free_ctx(js->ctx);
    free(js->prefix);
    free(js);
}

static size_t copy_part(const char *from, size_t len, size_t *off, char *buf, size_t room)
{
    size_t n = len - *off < room ? len - *off : room;
    memcpy(buf, from + *off, n);
    *off += n;
    return n;
}

static long jstream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    jstream *js = cls;
    size_t w = 0;
    while (w < max && js->phase < 3) {
        if (js->phase == 0) {
            w += copy_part(js->prefix, js->prefix_len, &js->off, buf + w, max - w);
            if (js->off == js->prefix_len)
                js->phase = 1;
        } else if (js->phase == 1) {
            if (js->pend_off < js->pend_len) {
                w += copy_part(js->pend, js->pend_len, &js->pend_off, buf + w, max - w);
                continue;
            }
            if (js->raw_pos == js->raw_len) {
                if (js->src_pos == js->src_len) {
                    js->phase = 2;
                    js->off = 0;
                    continue;
                }
                size_t want = js->src_len - js->src_pos < JS_RAW ? (size_t)(js->src_len - js->src_pos) : JS_RAW;
                long n = js->src(js->ctx, js->src_pos, js->raw, want);
                if (n <= 0 || (size_t)n > want)
                    return QHTTP_STREAM_ERROR; /* early end or error: never close the JSON */
                js->raw_pos = 0;
                js->raw_len = (size_t)n;
                js->src_pos += (uint64_t)n;
            }
            size_t used = 0;
            w += qhttp_json_escape(js->raw + js->raw_pos, js->raw_len - js->raw_pos, buf + w, max - w, &used);
            js->raw_pos += used;
            if (used == 0 && w < max) {
                /* The next escape does not fit: keep it and send it in pieces. */
                js->pend_len = qhttp_json_escape(js->raw + js->raw_pos, 1, js->pend, sizeof js->pend, &used);
                js->pend_off = 0;
                js->raw_pos += used;
            }
        } else {
            w += copy_part(js_suffix, sizeof js_suffix - 1, &js->off, buf + w, max - w);
            if (js->off == sizeof js_suffix - 1)
                js->phase = 3;
        }
    }
    return w ? (long)w : QHTTP_STREAM_END;
}

void qhttp_reply_json_stream(qhttp_req *r, int status, cJSON *results, const char *name, uint64_t src_len,
                             qhttp_read_fn src, void *ctx, qhttp_free_fn free_ctx)
{
    if (status < 100 || status > 599)
        status = 500;
    jstream *js = calloc(1, sizeof *js);
    cJSON *env = cJSON_CreateObject();
    if (!results)
        results = cJSON_CreateObject();
    char *s = NULL;
    if (js && env && results && name && src && cJSON_AddNumberToObject(env, "code", status) &&
        cJSON_AddStringToObject(env, "status", qhttp_status_text(status))) {
        cJSON_AddItemToObject(env, "results", results);
        results = NULL;
        s = cJSON_PrintUnformatted(env);
    }
    cJSON_Delete(results);
    cJSON_Delete(env);
    size_t len = s ? strlen(s) : 0, nlen = name ? strlen(name) : 0;
    /* s ends with the "}}" closing results and the envelope; the member goes before them. */
    if (js && s && len >= 4 && strcmp(s + len - 2, "}}") == 0 && (js->prefix = malloc(len + 6 * nlen + 8))) {
        bool empty = s[len - 3] == '{';
        memcpy(js->prefix, s, len - 2);
        size_t o = len - 2;
        if (!empty)
            js->prefix[o++] = ',';
        js->prefix[o++] = '"';
        o += qhttp_json_escape(name, nlen, js->prefix + o, 6 * nlen, NULL);
        memcpy(js->prefix + o, "\":\"", 3);
        js->prefix_len = o + 3;
        js->src = src;
        js->ctx = ctx;
        js->free_ctx = free_ctx;
        js->src_len = src_len;
        cJSON_free(s);
        qhttp_reply_stream(r, status, "application/json", QHTTP_SIZE_UNKNOWN, jstream_read, js, jstream_free);
        return;
    }
    cJSON_free(s);
    if (js)
        free(js->prefix);
    free(js);
    if (free_ctx)
        free_ctx(ctx);
    if (r)
        qhttp_reply_error(r, 500, (src && name) ? "Out of memory" : "Internal Server Error");
}
