/* identity.c — state directory and uuid; see identity.h. */
#include "identity.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "hex.h"
#include "quote.h"

int agent_state_dir_ensure(const char *dir, qerr *err)
{
    char path[1024];
    if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path)
        return qerr_set(err, "state_dir path too long");
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, 0755) < 0 && errno != EEXIST)
            return qerr_set(err, "cannot create %s: %s", path, strerror(errno));
        *p = '/';
    }
    if (mkdir(path, 0700) < 0 && errno != EEXIST)
        return qerr_set(err, "cannot create state_dir %s: %s", path, strerror(errno));
    struct stat st;
    if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode))
        return qerr_set(err, "state_dir %s is not a directory", path);
    /* It holds the AK blob, the uuid and the mTLS key: nobody else may replace them. */
    if (st.st_mode & (S_IWGRP | S_IWOTH))
        return qerr_set(err, "state_dir %s is writable by group or others (mode %04o): chmod go-w it", path,
                        (unsigned)(st.st_mode & 07777));
    return 0;
}

static int valid_id(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_' ||
              *s == '.' || *s == '-'))
            return 0;
    return 1;
}

static int generated_uuid(const char *state_dir, char *out, size_t cap, qerr *err)
{
    char path[1100];
    snprintf(path, sizeof path, "%s/uuid", state_dir);
    FILE *f = fopen(path, "r");
    if (f) {
        char line[128] = "";
        char *ok = fgets(line, sizeof line, f);
        fclose(f);
        line[strcspn(line, "\r\n")] = '\0';
        if (ok && valid_id(line) && strlen(line) < cap) {
            strcpy(out, line);
            return 0;
        }
        return qerr_set(err, "%s does not hold a valid uuid; remove it to generate a new one", path);
    }
    uint8_t r[16];
    if (RAND_bytes(r, sizeof r) != 1)
        return qerr_set(err, "no randomness for a uuid");
    r[6] = (uint8_t)((r[6] & 0x0f) | 0x40);
    r[8] = (uint8_t)((r[8] & 0x3f) | 0x80);
    char u[37];
    snprintf(u, sizeof u, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", r[0], r[1], r[2],
             r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13], r[14], r[15]);
    char tmp[1200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return qerr_set(err, "cannot write %s: %s", tmp, strerror(errno));
    char line[40];
    int n = snprintf(line, sizeof line, "%s\n", u);
    if (write(fd, line, (size_t)n) != n || fsync(fd) < 0) {
        close(fd);
        unlink(tmp);
        return qerr_set(err, "cannot write %s: %s", tmp, strerror(errno));
    }
    close(fd);
    if (rename(tmp, path) < 0)
        return qerr_set(err, "cannot rename %s: %s", tmp, strerror(errno));
    if (strlen(u) >= cap)
        return qerr_set(err, "uuid buffer too small");
    strcpy(out, u);
    return 0;
}

int agent_uuid_resolve(const char *cfg_uuid, const char *state_dir, const TPM2B_PUBLIC *ek, char *out, size_t cap,
                       qerr *err)
{
    if (strcmp(cfg_uuid, "generate") == 0)
        return generated_uuid(state_dir, out, cap, err);
    if (strcmp(cfg_uuid, "hash_ek") == 0) {
        if (!ek)
            return qerr_set(err, "hash_ek needs the EK");
        EVP_PKEY *k = qtpmpub_pkey(ek, err);
        char *pem = k ? qpkey_pem(k, err) : NULL;
        EVP_PKEY_free(k);
        if (!pem)
            return -1;
        uint8_t d[32];
        unsigned dl = 0;
        int ok = EVP_Digest(pem, strlen(pem), d, &dl, EVP_sha256(), NULL);
        free(pem);
        if (!ok || cap < 65)
            return qerr_set(err, "cannot hash the EK");
        qhex_encode(d, 32, out);
        return 0;
    }
    if (strlen(cfg_uuid) >= cap)
        return qerr_set(err, "uuid too long");
    /* Kept as configured, as Keylime's agents do: the registrar and verifier match ids in any
     * case, show them as first registered, and the tenant's auth_tag covers this spelling. */
    memcpy(out, cfg_uuid, strlen(cfg_uuid) + 1);
    return 0;
}
