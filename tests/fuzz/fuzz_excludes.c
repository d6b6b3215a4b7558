/* fuzz_excludes.c — libFuzzer target: the input up to its first NUL byte is an exclude file
 * (qexcludes_parse); every line after it is a name matched against the compiled list. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "excludes.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return 0;
    const uint8_t *nul = memchr(data, 0, size);
    size_t tlen = nul ? (size_t)(nul - data) : size;
    char *text = malloc(tlen ? tlen : 1);
    if (!text)
        abort();
    memcpy(text, data, tlen);
    qerr err;
    qexcludes *x = qexcludes_parse(text, tlen, "fuzz", &err);
    if (x) {
        size_t n = qexcludes_count(x);
        for (size_t i = 0; i < n; i++)
            if (!qexcludes_pattern(x, i))
                abort();
        qexcludes_md *md = qexcludes_md_new();
        if (!md)
            abort();
        if (nul) {
            const char *names = (const char *)nul + 1;
            size_t left = size - tlen - 1;
            while (left) {
                const char *nl = memchr(names, '\n', left);
                size_t len = nl ? (size_t)(nl - names) : left;
                char *name = malloc(len ? len : 1);   /* exact size */
                if (!name)
                    abort();
                memcpy(name, names, len);
                (void)qexcludes_match(x, md, name, len);
                free(name);
                if (!nl)
                    break;
                names = nl + 1;
                left -= len + 1;
            }
        }
        (void)qexcludes_match(x, md, "", 0);
        qexcludes_md_free(md);
        qexcludes_free(x);
    }
    (void)qexcludes_match(NULL, NULL, "x", 1);
    free(text);
    return 0;
}
