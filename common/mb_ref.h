/* mb_ref.h — the parsed measured-boot reference state shared by mb_ref.c (parsing) and
 * mb_policy.c (judging); not a public interface (mb_policy.h is). Digests are sha256. */
#ifndef QUINCE_MB_REF_H
#define QUINCE_MB_REF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include "mb_policy.h"

#define DG 32                          /* sha256 */
#define MB_CMDLINE_PREFIX "kernel_cmdline: "

typedef struct dg { uint8_t d[DG]; } dg;
typedef struct sig { uint8_t owner[16]; uint8_t *data; size_t len; } sig;
typedef struct siglist { sig *v; size_t n; } siglist;
typedef struct sab { bool have_scrtm; dg scrtm; dg *fw; size_t nfw; } sab;
typedef struct kern {
    dg shim, grub, kernel, vmlinuz, initrd;
    bool have_vmlinuz, have_initrd;
    pcre2_code *cmdline;               /* NULL: no kernel_cmdline event expected */
    char *cmdline_src;
} kern;

struct qmb_ref {
    bool sb;
    sab *sab; size_t nsab;
    siglist pk, kek, db, dbx;
    dg *mok; size_t nmok;
    dg *mokx; size_t nmokx;
    kern *k; size_t nk;
};

#endif
