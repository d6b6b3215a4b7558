/* fuzz_ima_line.c — libFuzzer target: one IMA ASCII line through qima_parse_line, then the
 * template-data rebuild. Invariants checked: the name is a view into the line, the rebuild never
 * writes past its capacity and reports -1 when one byte short. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "ima_entry.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > QIMA_MAX_LINE + 64)
        return 0;
    /* exact-size copies so that any read past the end is caught */
    char *line = malloc(size ? size : 1);
    uint8_t *scratch = malloc(QIMA_SCRATCH_SIZE);
    uint8_t *tdata = malloc(QIMA_SCRATCH_SIZE);
    if (!line || !scratch || !tdata)
        abort();
    memcpy(line, data, size);
    qima_entry e;
    qerr err;
    if (qima_parse_line(line, size, &e, scratch, &err) == 0) {
        if (e.name_len && (e.name < line || e.name + e.name_len > line + size))
            abort();
        if (e.digest_len > QIMA_MAX_DIGEST || e.template_hash_len > QIMA_MAX_DIGEST)
            abort();
        (void)qima_template_name(e.tmpl);
        (void)qima_is_violation(&e);
        long n = qima_template_data(&e, tdata, QIMA_SCRATCH_SIZE);
        if (n > 0) {
            uint8_t *small = malloc((size_t)n - 1 ? (size_t)n - 1 : 1);
            if (!small)
                abort();
            if (qima_template_data(&e, small, (size_t)n - 1) != -1)
                abort();
            long again = qima_template_data(&e, small, 0);
            if (again != -1)
                abort();
            free(small);
        }
    } else if (!memchr(err.msg, '\0', sizeof err.msg)) {
        abort();   /* the error message must be NUL-terminated */
    }
    free(tdata);
    free(scratch);
    free(line);
    return 0;
}
