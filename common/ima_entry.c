/* ima_entry.c — one IMA ASCII measurement-list line → qima_entry, and the template-data rebuild
 * (keylime-formats §1.1, §1.2). No allocation: text fields are views into the line, decoded
 * signature / buffer bytes go into the caller's scratch.
 * Deliberate divergences from Keylime, all fail-safe: a line ending in '\r' is a parse error
 * ("CRLF line ending"; Keylime would keep the '\r' in the name); fields longer than the QIMA_*
 * limits are parse errors; a name longer than 255 bytes in the legacy "ima" template (which the
 * kernel truncates to 255) is a parse error. */
#include "ima_entry.h"

#include <string.h>

#include "hex.h"

#define IMA_NAME_FIELD 256   /* TCG_EVENT_NAME_LEN_MAX (255) + NUL */
#define SIG_HDR_LEN    9     /* type, version, hash_algo, keyid (u32 BE), sig_size (u16 BE) */

static const char *const tmpl_names[] = { "ima", "ima-ng", "ima-sig", "ima-buf" };

/* The hot path decodes about 100 hex digits per line: qhex_decode does it 32 at a time. */
static long hex_decode(const char *s, size_t n, uint8_t *out, size_t cap)
{
    return qhex_decode(s, n, out, cap);
}

const char *qima_template_name(qima_template t)
{
    if ((int)t < 0 || (int)t > QIMA_TMPL_BUF)
        return "unknown";
    return tmpl_names[t];
}

/* Split off the token before the next ' ' in [*p, end): returns its length and moves *p past
 * the space; -1 if there is no space (Python's str.split(' ', n) gives fewer tokens). */
static long next_token(const char **p, const char *end)
{
    const char *s = *p;
    const char *sp = memchr(s, ' ', (size_t)(end - s));
    if (!sp)
        return -1;
    *p = sp + 1;
    return sp - s;
}

static int set_mode(qima_entry *e, const char *m, size_t n)
{
    for (int i = 0; i <= QIMA_TMPL_BUF; i++) {
        if (strlen(tmpl_names[i]) == n && memcmp(tmpl_names[i], m, n) == 0) {
            e->tmpl = (qima_template)i;
            return 0;
        }
    }
    return -1;
}

/* Digest token: "alg:hex" or bare hex (20 bytes → sha1, 16 bytes → md5). */
static int parse_digest(qima_entry *e, const char *s, size_t n, qerr *err)
{
    const char *colon = memchr(s, ':', n);
    const char *hex = s;
    size_t hexlen = n;
    if (colon) {
        size_t alen = (size_t)(colon - s);
        hex = colon + 1;
        hexlen = n - alen - 1;
        if (memchr(hex, ':', hexlen))
            return qerr_set(err, "digest has more than one ':'");
        if (alen > QIMA_MAX_ALG)
            return qerr_set(err, "digest algorithm name longer than %d bytes", QIMA_MAX_ALG);
        if (memchr(s, '\0', alen))
            return qerr_set(err, "digest algorithm name contains a NUL byte");
        memcpy(e->digest_alg, s, alen);
        e->digest_alg[alen] = '\0';
    }
    if (hexlen / 2 > QIMA_MAX_DIGEST)
        return qerr_set(err, "digest longer than %d bytes", QIMA_MAX_DIGEST);
    long d = hex_decode(hex, hexlen, e->digest, sizeof e->digest);
    if (d < 0)
        return qerr_set(err, "digest is not valid hex");
    e->digest_len = (size_t)d;
    if (!colon) {
        if (d == 20)
            memcpy(e->digest_alg, "sha1", 5);
        else if (d == 16)
            memcpy(e->digest_alg, "md5", 4);
        else
            return qerr_set(err, "digest without algorithm is neither 20 (sha1) nor 16 (md5) bytes");
    }
    return 0;
}

/* ima-sig signature token: kept only if it is hex with a consistent signature_v2 header;
 * anything else silently becomes "no signature" with sig_invalid set. */
static void parse_sig(qima_entry *e, const char *s, size_t n, uint8_t *scratch)
{
    if (n == 0)
        return;
    long d = hex_decode(s, n, scratch, QIMA_SCRATCH_SIZE);
    if (d < SIG_HDR_LEN || (size_t)d != SIG_HDR_LEN + (((size_t)scratch[7] << 8) | scratch[8])) {
        e->sig_invalid = true;
        return;
    }
    e->sig = scratch;
    e->sig_len = (size_t)d;
}

int qima_parse_line(const char *line, size_t len, qima_entry *e, uint8_t *scratch, qerr *err)
{
    if (!line || !e || !scratch)
        return qerr_set(err, "invalid argument");
    e->pcr = NULL;
    e->pcr_len = e->template_hash_len = e->digest_len = e->name_len = e->sig_len = e->buf_len = 0;
    e->digest_alg[0] = '\0';
    e->name = NULL;
    e->sig = e->buf = NULL;
    e->sig_invalid = false;
    e->tmpl = QIMA_TMPL_NG;

    if (len > QIMA_MAX_LINE)
        return qerr_set(err, "line longer than %d bytes", QIMA_MAX_LINE);
    if (len > 0 && line[len - 1] == '\r')
        return qerr_set(err, "CRLF line ending");

    const char *p = line, *end = line + len;
    long n_pcr = next_token(&p, end);
    const char *th = p;
    long n_th = n_pcr < 0 ? -1 : next_token(&p, end);
    const char *mode = p;
    long n_mode = n_th < 0 ? -1 : next_token(&p, end);
    if (n_mode < 0)
        return qerr_set(err, "fewer than 4 space-separated fields");
    e->pcr = line;
    e->pcr_len = (size_t)n_pcr;

    if ((size_t)n_th / 2 > QIMA_MAX_DIGEST)
        return qerr_set(err, "template hash longer than %d bytes", QIMA_MAX_DIGEST);
    long d = hex_decode(th, (size_t)n_th, e->template_hash, sizeof e->template_hash);
    if (d < 0)
        return qerr_set(err, "template hash is not valid hex");
    e->template_hash_len = (size_t)d;

    if (set_mode(e, mode, (size_t)n_mode) < 0)
        return qerr_set(err, "No parser for mode %.*s implemented.",
                        (int)(n_mode > 64 ? 64 : n_mode), mode);

    /* rest = p..end: digest SP name [SP sig|buf] */
    const char *dg = p;
    long n_dg = next_token(&p, end);
    if (n_dg < 0)
        return qerr_set(err, "template %s: too few fields", tmpl_names[e->tmpl]);
    const char *name = p;
    size_t n_name = (size_t)(end - p);
    const char *last = NULL;
    size_t n_last = 0;
    if (e->tmpl == QIMA_TMPL_SIG || e->tmpl == QIMA_TMPL_BUF) {
        long nn = next_token(&p, end);
        if (nn < 0)
            return qerr_set(err, "template %s: too few fields", tmpl_names[e->tmpl]);
        n_name = (size_t)nn;
        last = p;
        n_last = (size_t)(end - p);
    }

    if (parse_digest(e, dg, (size_t)n_dg, err) < 0)
        return qerr_prefix(err, "template %s", tmpl_names[e->tmpl]);
    if (n_name > QIMA_MAX_NAME)
        return qerr_set(err, "file name longer than %d bytes", QIMA_MAX_NAME);
    if (e->tmpl == QIMA_TMPL_IMA && n_name >= IMA_NAME_FIELD)
        return qerr_set(err, "template ima: file name longer than %d bytes", IMA_NAME_FIELD - 1);
    e->name = name;
    e->name_len = n_name;

    if (e->tmpl == QIMA_TMPL_SIG) {
        parse_sig(e, last, n_last, scratch);
    } else if (e->tmpl == QIMA_TMPL_BUF) {
        long b = hex_decode(last, n_last, scratch, QIMA_SCRATCH_SIZE);
        if (b < 0)
            return qerr_set(err, "template ima-buf: buffer is not valid hex");
        e->buf = scratch;
        e->buf_len = (size_t)b;
    }
    return 0;
}

static uint8_t *put_u32le(uint8_t *o, size_t v)
{
    o[0] = (uint8_t)v;
    o[1] = (uint8_t)(v >> 8);
    o[2] = (uint8_t)(v >> 16);
    o[3] = (uint8_t)(v >> 24);
    return o + 4;
}

long qima_template_data(const qima_entry *e, uint8_t *out, size_t cap)
{
    if (!e || !out)
        return -1;
    if (e->tmpl == QIMA_TMPL_IMA) {
        size_t need = e->digest_len + IMA_NAME_FIELD;
        if (e->name_len >= IMA_NAME_FIELD || need > cap)
            return -1;
        memcpy(out, e->digest, e->digest_len);
        uint8_t *o = out + e->digest_len;
        if (e->name_len)
            memcpy(o, e->name, e->name_len);
        memset(o + e->name_len, 0, IMA_NAME_FIELD - e->name_len);
        return (long)need;
    }
    size_t alen = strlen(e->digest_alg);
    size_t extra = 0;
    if (e->tmpl == QIMA_TMPL_SIG)
        extra = 4 + e->sig_len;
    else if (e->tmpl == QIMA_TMPL_BUF)
        extra = 4 + e->buf_len;
    size_t need = 4 + alen + 2 + e->digest_len + 4 + e->name_len + 1 + extra;
    if (need > cap)
        return -1;
    uint8_t *o = put_u32le(out, alen + 2 + e->digest_len);
    memcpy(o, e->digest_alg, alen);
    o += alen;
    *o++ = ':';
    *o++ = '\0';
    memcpy(o, e->digest, e->digest_len);
    o += e->digest_len;
    o = put_u32le(o, e->name_len + 1);
    if (e->name_len)
        memcpy(o, e->name, e->name_len);
    o += e->name_len;
    *o++ = '\0';
    if (e->tmpl == QIMA_TMPL_SIG) {
        o = put_u32le(o, e->sig_len);
        if (e->sig_len)
            memcpy(o, e->sig, e->sig_len);
        o += e->sig_len;
    } else if (e->tmpl == QIMA_TMPL_BUF) {
        o = put_u32le(o, e->buf_len);
        if (e->buf_len)
            memcpy(o, e->buf, e->buf_len);
        o += e->buf_len;
    }
    return (long)(o - out);
}

bool qima_is_violation(const qima_entry *e)
{
    if (!e || e->template_hash_len == 0)
        return false;
    for (size_t i = 0; i < e->template_hash_len; i++)
        if (e->template_hash[i] != 0)
            return false;
    return true;
}
