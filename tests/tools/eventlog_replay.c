/* eventlog_replay — test tool: replays a TCG event log with common/eventlog.c and prints
 *   events N
 *   <bank> <pcr> 0x<hex>        (one line per PCR that was extended)
 * so that a test can compare it with tpm2_eventlog's "pcrs:" section. Exit 0, or 1 with the
 * parser's one-line error on stderr, 2 on usage or I/O errors. */
#include <stdio.h>
#include "buf.h"
#include "eventlog.h"
#include "hex.h"

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: eventlog_replay LOG\n");
        return 2;
    }
    qbuf b;
    qbuf_init(&b, QEVLOG_MAX_BYTES + 1);
    if (qbuf_read_file(&b, argv[1], QEVLOG_MAX_BYTES + 1) < 0) {
        perror(argv[1]);
        return 2;
    }
    static qevlog_pcrs p;
    qerr e;
    if (qevlog_replay(b.data, b.len, &p, &e) < 0) {
        fprintf(stderr, "%s: %s\n", argv[1], e.msg);
        qbuf_free(&b);
        return 1;
    }
    printf("events %u\n", p.nevents);
    for (unsigned k = 0; k < p.nbanks; k++) {
        size_t n = qhash_size(p.bank[k].alg);
        for (unsigned i = 0; i < QEVLOG_NUM_PCRS; i++) {
            if (!(p.bank[k].extended & (1u << i)))
                continue;
            char hex[2 * QHASH_MAX_SIZE + 1];
            qhex_encode(p.bank[k].value[i], n, hex);
            printf("%s %u 0x%s\n", qhash_name(p.bank[k].alg), i, hex);
        }
    }
    qbuf_free(&b);
    return 0;
}
