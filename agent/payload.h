/* payload.h — the agent's payload step: once K is derived (keys.h), open the sealed payload into
 * the secure directory, unpack a zip, and maybe run its script (agent-protocol §6, issue 6).
 *
 * Contract:
 * - Secure directory: a tmpfs, never persistent disk. agent_secure_dir_prepare (at start-up,
 *   before dropping privileges) uses `path` when it already is a tmpfs; otherwise, when asked
 *   to, mounts one there (mount(2), nosuid/nodev, mode 0700, size bytes); when that is not
 *   permitted (EPERM/EACCES: no CAP_SYS_ADMIN) or not asked, it fails with "secure directory <p>
 *   is not a tmpfs; refusing to write the payload". Every delivery checks again (statfs
 *   f_type == TMPFS_MAGIC, a real directory, not a symlink) before writing anything.
 * - Layout inside it: decrypted_payload (mode 0600, Keylime's dec_payload_file) and, for a zip
 *   payload, unzipped/ (mode 0700). A new payload replaces the previous one; K itself is never
 *   written (Keylime's enc_keyname file is not produced: the keys stay in memory).
 * - Zip (libarchive, zip format only, central directory): every entry is checked before anything
 *   is written: a regular file or a directory (symlinks, hard links and devices refused), a
 *   relative name without ".." components, at most max_entries entries and max_unzipped bytes
 *   (declared sizes first, then bytes actually written). Any bad entry refuses the whole
 *   payload. Entries go to a fresh staging directory inside the secure directory that replaces
 *   unzipped/ only when complete; on any failure it is removed. Files get owner-only modes.
 * - Script: only when agent_payload_script_allowed(script set, mtls, enable_insecure_payload)
 *   and unzipped/<script> is a regular file. It runs with cwd = unzipped/, stdin /dev/null,
 *   stdout to the agent's stderr, a minimal environment, in its own process group, at most
 *   script_timeout_ms (then the group is killed). Its exit status is logged. A file starting
 *   with "#!" is executed, anything else is run by /bin/sh. The agent must not ignore SIGCHLD.
 * - Failures (not a tmpfs, authentication failure, bad zip, script) are one-line messages,
 *   logged by the runner; the agent keeps running. Decrypted bytes are cleansed from memory.
 * - Wiring (agent/main.c): agent_secure_dir_prepare(dir, size, true, &mounted, &e) before the
 *   privilege drop; r = agent_payload_runner_start(&opts, &e);
 *   agent_keys_set_hook(ks, agent_payload_on_key, r); at exit agent_payload_runner_stop(r) and
 *   agent_secure_dir_release(dir, mounted). */
#ifndef QUINCE_AGENT_PAYLOAD_H
#define QUINCE_AGENT_PAYLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define AGENT_PAYLOAD_FILE          "decrypted_payload"
#define AGENT_PAYLOAD_UNZIPPED      "unzipped"
#define AGENT_PAYLOAD_DIR_MAX       1024
#define AGENT_PAYLOAD_SCRIPT_MAX    255
#define AGENT_SECURE_SIZE_DEFAULT   (32u * 1024 * 1024)   /* tmpfs size= when mounting */
#define AGENT_UNZIP_MAX_DEFAULT     (16u * 1024 * 1024)   /* bytes unpacked from one zip */
#define AGENT_UNZIP_ENTRIES_DEFAULT 1024
#define AGENT_SCRIPT_TIMEOUT_DEFAULT 60000                /* ms */

typedef struct agent_payload_opts {
    char secure_dir[AGENT_PAYLOAD_DIR_MAX];   /* the (tmpfs) secure directory */
    bool extract_zip;                         /* Keylime's extract_payload_zip */
    char script[AGENT_PAYLOAD_SCRIPT_MAX + 1];/* payload_script (a file name in unzipped/); "" = none */
    bool mtls;                                /* the agent's API requires verified client certs */
    bool insecure_payload;                    /* enable_insecure_payload */
    long script_timeout_ms;                   /* 0 → AGENT_SCRIPT_TIMEOUT_DEFAULT */
    size_t max_unzipped;                      /* 0 → AGENT_UNZIP_MAX_DEFAULT */
    size_t max_entries;                       /* 0 → AGENT_UNZIP_ENTRIES_DEFAULT */
} agent_payload_opts;

/* ---- secure directory --------------------------------------------------------------------- */

/* Create `path` (mode 0700; its parent must exist) and make sure it is a tmpfs (see above).
 * *mounted says whether this call mounted one (pass it to agent_secure_dir_release). */
int agent_secure_dir_prepare(const char *path, size_t size, bool try_mount, bool *mounted, qerr *err);
/* 0 when `path` is a directory (not a symlink) on a tmpfs; -1 with the refusal message. */
int agent_secure_dir_check(const char *path, qerr *err);
/* Unmount (lazily) what agent_secure_dir_prepare mounted; nothing when mounted is false. */
void agent_secure_dir_release(const char *path, bool mounted);

/* ---- pieces ------------------------------------------------------------------------------- */

/* The script gate: a script is configured AND (mTLS is on OR enable_insecure_payload). */
bool agent_payload_script_allowed(bool script_set, bool mtls, bool insecure_payload);
/* Whether these bytes are a zip archive (local-file or empty-archive signature). */
bool agent_payload_is_zip(const uint8_t *p, size_t n);
/* Unpack a zip held in memory into dest, which must not exist yet (created 0700). The whole
 * archive is checked first; on any failure nothing is left at dest. */
int agent_payload_unzip(const uint8_t *zip, size_t n, const char *dest, size_t max_total, size_t max_entries,
                        qerr *err);
/* Run dir/script (see above). 0 when it ran to its end (*exit_code = its exit status); -1 when
 * it could not start, was killed by a signal or ran out of time (then killed). */
int agent_payload_run_script(const char *dir, const char *script, long timeout_ms, int *exit_code, qerr *err);
/* The same for any plain file name in dir, with one optional argument (revocation actions get
 * the path of the message file). */
int agent_run_in_dir(const char *dir, const char *script, const char *arg, long timeout_ms, int *exit_code,
                     qerr *err);

/* The whole step, synchronously: check the secure directory, open the sealed payload with K,
 * unpack, run the script when allowed. 0 or -1 with a message. */
int agent_payload_deliver(const agent_payload_opts *o, const uint8_t *k, size_t klen, const uint8_t *sealed,
                          size_t n, qerr *err);

/* ---- runner: the step on its own thread --------------------------------------------------- */

typedef struct agent_payload_runner agent_payload_runner;

/* Copies opts; starts the thread. */
agent_payload_runner *agent_payload_runner_start(const agent_payload_opts *o, qerr *err);
/* Queue a delivery (K and the sealed payload are copied). One slot: a job not started yet is
 * replaced by a newer one (the newest payload wins). payload NULL → logged, nothing to do.
 * Returns 0 or -1 (out of memory, stopped). */
int agent_payload_runner_submit(agent_payload_runner *r, const uint8_t *k, size_t klen, const uint8_t *payload,
                                size_t n);
/* agent_keys_hook_fn-compatible hook: ctx is the runner. */
void agent_payload_on_key(void *runner, const uint8_t *k, size_t klen, const uint8_t *payload, size_t n);
/* Block until no job is queued or running. Returns the number of deliveries that failed so far. */
unsigned long agent_payload_runner_wait_idle(agent_payload_runner *r);
/* Let a running job finish, drop a queued one, join the thread, cleanse and free. NULL is fine. */
void agent_payload_runner_stop(agent_payload_runner *r);

#endif
