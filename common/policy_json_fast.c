/* policy_json_fast.c — the quick way into a runtime policy's three path → digests tables
 * ("digests", "keyrings", "ima-buf"), read straight from the text into the policy's arena.
 *
 * Why: for a 100,000-path policy (10 MB), cJSON builds about 23 MB of nodes (four allocations
 * per path) that are copied into the tables and freed again; that alone took 25–30 ms of the
 * 50 ms load budget, mostly first-touch page faults and malloc. The tables take almost all of
 * the bytes of a real policy and have one simple shape, so only they are read here, and only
 * in the plainest spelling of that shape:
 *
 *     { "<path>": ["<hex>", ...], ... }
 *
 * with JSON whitespace between tokens, paths without '\\' and without control bytes, and digests
 * that qpol_add_hex accepts (lower-case, 40..128 digits). Everything else of the document —
 * meta, release, excludes, ima, verification-keys, and every check and error message — stays
 * with cJSON and the schema code of policy_json.c, which parses a copy of the document where
 * each table read here is replaced by "{}". Anything outside that plain spelling (an escape,
 * an empty list, bad hex, a table key given twice or spelled with an escape, a document that
 * does not start with '{') makes qpol_fast_tables give up, and the caller loads the whole
 * document with cJSON as before: the result is the same either way, only the time differs
 * (tests/fuzz/fuzz_policy.c loads every input both ways and compares). Every read is bounded
 * by the text's length. */
#include "policy_int.h"

#include <stdlib.h>
#include <string.h>

static const char *const fast_keys[QPOL_NTABLES] = { "digests", "keyrings", "ima-buf" };

/* The shortest member of a table: "":["<QPOL_MIN_HEX digits>"] and a comma. */
#define QPOL_MIN_MEMBER (QPOL_MIN_HEX + 8)

typedef struct {
    const char *s, *end;
} cur;

static inline bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static inline void skip_ws(cur *c)
{
    while (c->s < c->end && is_ws(*c->s))
        c->s++;
}

/* Does s[0..n) hold a '\\' or a control byte? Eight bytes at a time: a byte b is below 0x20
 * when (b - 0x20) borrows into its top bit while b's own top bit is clear, and equal to '\\'
 * when b ^ '\\' is zero (the same test against 0x01). */
static bool has_special(const char *s, size_t n)
{
    const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        uint64_t bs = w ^ (ones * '\\');
        if (((w - ones * 0x20) & ~w & high) | ((bs - ones) & ~bs & high))
            return true;
    }
    for (; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == '\\')
            return true;
    return false;
}

/* At '"': a string up to the next '"'; *str and *n get its bytes, c moves past that quote.
 * With `check`, false if it holds an escape (its '"' may not be the end: the caller gives up)
 * or a control byte; without, the caller must reject both itself (hex digits do). */
static bool plain_string(cur *c, const char **str, size_t *n, bool check)
{
    if (c->s >= c->end || *c->s != '"')
        return false;
    const char *p = c->s + 1;
    const char *q = memchr(p, '"', (size_t)(c->end - p));
    if (!q || (check && has_special(p, (size_t)(q - p))))
        return false;
    *str = p;
    *n = (size_t)(q - p);
    c->s = q + 1;
    return true;
}

/* Skip one JSON value of any kind without judging it (cJSON judges the copy): strings honour
 * '\\' escapes, brackets are counted, a scalar runs to the next delimiter. false at the end of
 * the text. */
static bool skip_value(cur *c)
{
    size_t depth = 0;
    do {
        skip_ws(c);
        if (c->s >= c->end)
            return false;
        char ch = *c->s;
        if (ch == '"') {
            const char *p = c->s + 1;
            for (;;) {
                if (p >= c->end)
                    return false;
                if (*p == '\\')
                    p += 2;
                else if (*p++ == '"')
                    break;
            }
            c->s = p;
        } else if (ch == '{' || ch == '[') {
            depth++;
            c->s++;
        } else if (ch == '}' || ch == ']') {
            if (depth == 0)
                return false;
            depth--;
            c->s++;
        } else if (ch == ',' || ch == ':') {
            if (depth == 0)
                return false;
            c->s++;
        } else {
            while (c->s < c->end && !is_ws(*c->s) && *c->s != ',' && *c->s != ':' && *c->s != '"' &&
                   *c->s != '{' && *c->s != '[' && *c->s != '}' && *c->s != ']')
                c->s++;
        }
    } while (depth > 0);
    return true;
}

/* Paths a table value of n bytes may hold: each one opens a list. */
static size_t count_lists(const char *s, size_t n)
{
    size_t k = 0;
    for (const char *e = s + n; (s = memchr(s, '[', (size_t)(e - s))) != NULL; s++)
        k++;
    return k;
}

/* The next member's path, hashed and its index slot prefetched while the current member is
 * worked on (a guess from the text after c: a wrong one only costs a useless prefetch). */
typedef struct {
    const char *path;
    size_t len;
    uint64_t h;
} path_hint;

static void hint_next(const qpolicy *p, qpol_table t, const cur *c, path_hint *hint)
{
    hint->path = NULL;
    const char *q = memchr(c->s, ']', (size_t)(c->end - c->s));
    if (!q)
        return;
    for (q++; q < c->end && is_ws(*q); q++)
        ;
    if (q >= c->end || *q != ',')
        return;
    for (q++; q < c->end && is_ws(*q); q++)
        ;
    if (q >= c->end || *q != '"')
        return;
    const char *e = memchr(q + 1, '"', (size_t)(c->end - q - 1));
    if (!e)
        return;
    hint->path = q + 1;
    hint->len = (size_t)(e - q - 1);
    hint->h = qpol_hash(hint->path, hint->len);
    qpol_prefetch(p, t, hint->h);
}

/* At '{': one table in the plain spelling into table t (same calls, in the same order, as
 * fill_table of policy_json.c makes for it). false to give up. */
static bool read_table(qpolicy *p, qpol_table t, cur *c)
{
    qerr err;
    if (c->s >= c->end || *c->s != '{')
        return false;
    /* Size the index once: at most one path per '[' and per QPOL_MIN_MEMBER bytes. */
    size_t rest = (size_t)(c->end - c->s);
    size_t most = count_lists(c->s, rest);
    if (most > rest / QPOL_MIN_MEMBER + 1)
        most = rest / QPOL_MIN_MEMBER + 1;
    if (qpol_reserve(p, t, most, &err) < 0)
        return false;
    c->s++;
    skip_ws(c);
    if (c->s < c->end && *c->s == '}') {
        c->s++;
        return true;
    }
    path_hint hint = { NULL, 0, 0 };
    for (;;) {
        const char *path;
        size_t plen;
        skip_ws(c);
        if (!plain_string(c, &path, &plen, true))
            return false;
        uint64_t h = hint.path == path && hint.len == plen ? hint.h : qpol_hash(path, plen);
        hint_next(p, t, c, &hint);
        skip_ws(c);
        if (c->s >= c->end || *c->s != ':')
            return false;
        c->s++;
        skip_ws(c);
        if (c->s >= c->end || *c->s != '[')
            return false;
        c->s++;
        bool added = false;
        long ent = qpol_path_h(p, t, path, plen, h, &added, &err);
        if (ent < 0)
            return false;
        if (!added)
            qpol_clear_digests(p, t, (uint32_t)ent);
        for (;;) {
            const char *hex;
            size_t hl;
            skip_ws(c);
            /* qpol_add_hex takes hex digits only: an escape or a control byte fails it. */
            if (!plain_string(c, &hex, &hl, false) ||
                qpol_add_hex(p, t, (uint32_t)ent, hex, hl, true, &err) < 0)
                return false;
            skip_ws(c);
            if (c->s >= c->end)
                return false;
            char ch = *c->s++;
            if (ch == ']')
                break;
            if (ch != ',')
                return false;
        }
        skip_ws(c);
        if (c->s >= c->end)
            return false;
        char ch = *c->s++;
        if (ch == '}')
            return true;
        if (ch != ',')
            return false;
    }
}

int qpol_fast_tables(qpolicy *p, const char *text, size_t len, char **skel, size_t *skel_len)
{
    *skel = NULL;
    *skel_len = 0;
    if (!text)
        return -1;
    const char *from[QPOL_NTABLES] = { NULL }, *to[QPOL_NTABLES] = { NULL };
    cur c = { text, text + len };
    skip_ws(&c);
    if (c.s >= c.end || *c.s != '{')
        return -1;
    c.s++;
    skip_ws(&c);
    if (c.s < c.end && *c.s == '}')
        return -1;   /* no tables to read: nothing to gain */
    for (;;) {
        const char *key;
        size_t klen;
        skip_ws(&c);
        if (!plain_string(&c, &key, &klen, true))
            return -1;
        skip_ws(&c);
        if (c.s >= c.end || *c.s != ':')
            return -1;
        c.s++;
        skip_ws(&c);
        int t = -1;
        for (int i = 0; i < QPOL_NTABLES; i++)
            if (strlen(fast_keys[i]) == klen && memcmp(fast_keys[i], key, klen) == 0)
                t = i;
        if (t >= 0) {
            if (from[t])
                return -1;   /* given twice: the last one counts, cJSON's way sorts that out */
            from[t] = c.s;
            if (!read_table(p, (qpol_table)t, &c))
                return -1;
            to[t] = c.s;
        } else if (!skip_value(&c)) {
            return -1;
        }
        skip_ws(&c);
        if (c.s >= c.end)
            return -1;
        char ch = *c.s++;
        if (ch == '}')
            break;
        if (ch != ',')
            return -1;
    }
    /* The copy for cJSON: the text with each table read here replaced by "{}" (what follows
     * the closing brace is kept too: the caller's checks of trailing bytes see it as before). */
    size_t cut = 0;
    for (int t = 0; t < QPOL_NTABLES; t++)
        if (from[t])
            cut += (size_t)(to[t] - from[t]) - 2;
    char *out = malloc(len - cut + 1);
    if (!out)
        return -1;
    size_t n = 0;
    const char *at = text;
    for (;;) {
        int next = -1;
        for (int t = 0; t < QPOL_NTABLES; t++)
            if (from[t] && from[t] >= at && (next < 0 || from[t] < from[next]))
                next = t;
        if (next < 0)
            break;
        memcpy(out + n, at, (size_t)(from[next] - at));
        n += (size_t)(from[next] - at);
        memcpy(out + n, "{}", 2);
        n += 2;
        at = to[next];
    }
    memcpy(out + n, at, (size_t)(text + len - at));
    n += (size_t)(text + len - at);
    out[n] = '\0';
    *skel = out;
    *skel_len = n;
    return 0;
}
