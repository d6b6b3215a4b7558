/* migrate_cmd.c — `quince-verifier migrate` (migrate_cmd.h). */
#include "migrate_cmd.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "store.h"
#include "store_url.h"

#define ME "quince-verifier migrate"

static void usage(FILE *f)
{
    fprintf(f, "usage: quince-verifier migrate --from DATABASE --to DATABASE\n"
               "\n"
               "Copies the verifier's store (registrar records, agents and their attestation state, runtime\n"
               "and measured-boot policies, failure records) from one database to another, empty one, in a\n"
               "single transaction: typically from the embedded SQLite file to PostgreSQL, e.g.\n"
               "  quince-verifier migrate --from sqlite:///var/lib/quince/verifier.sqlite \\\n"
               "                          --to 'postgresql://quince@db.example/quince?sslmode=verify-full'\n"
               "Stop the verifier first. DATABASE takes the forms of [verifier] database; a PostgreSQL password\n"
               "comes from a libpq password file (PGPASSFILE, ~/.pgpass) or service file, never the URL.\n"
               "The source is brought to this version's schema first, as the verifier would on start; a\n"
               "schema newer than this program's is refused on either side, and so is a target that holds\n"
               "any data. Then set [verifier] database to the target and start the verifier.\n"
               "Exit status: 0 copied, 1 the copy failed (the target is unchanged), 2 bad usage or a\n"
               "database that cannot be used.\n");
}

/* --name VALUE or --name=VALUE at argv[*i]: 1 taken (value set, *i advanced), 0 not this option,
 * -1 the value is missing. */
static int opt(int argc, char **argv, int *i, const char *name, const char **value)
{
    size_t n = strlen(name);
    const char *s = argv[*i];
    if (strncmp(s, name, n) != 0)
        return 0;
    if (s[n] == '=') {
        *value = s + n + 1;
        return 1;
    }
    if (s[n] != '\0')
        return 0;
    if (*i + 1 >= argc)
        return -1;
    *value = argv[++*i];
    return 1;
}

int verifier_migrate_main(int argc, char **argv)
{
    const char *from = NULL, *to = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        }
        int a = opt(argc, argv, &i, "--from", &from);
        int b = a ? 0 : opt(argc, argv, &i, "--to", &to);
        if (a < 0 || b < 0) {
            fprintf(stderr, ME ": %s needs a database\n", argv[i]);
            return 2;
        }
        if (!a && !b) {
            fprintf(stderr, ME ": unknown argument '%.64s' (see --help)\n", argv[i]);
            return 2;
        }
    }
    if (!from || !to || !from[0] || !to[0]) {
        fprintf(stderr, ME ": both --from and --to are required (see --help)\n");
        return 2;
    }
    qerr e = {0};
    vdb_url fu, tu;
    if (vdb_url_parse(from, &fu, &e) < 0 || vdb_url_parse(to, &tu, &e) < 0) {
        fprintf(stderr, ME ": %s\n", e.msg);
        return 2;
    }
    if (fu.kind == tu.kind && strcmp(fu.target, tu.target) == 0) {
        fprintf(stderr, ME ": --from and --to name the same database\n");
        return 2;
    }
    struct stat sb;
    if (fu.kind == VDB_SQLITE && stat(fu.target, &sb) != 0) {
        fprintf(stderr, ME ": the source database %s does not exist\n", fu.target);
        return 2;
    }
    vstore *src = vstore_open(from, &e);
    if (!src) {
        fprintf(stderr, ME ": cannot use the source database %s: %s\n", from, e.msg);
        return 2;
    }
    vstore *dst = vstore_open_empty(to, &e);
    if (!dst) {
        fprintf(stderr, ME ": cannot use the target database %s: %s\n", to, e.msg);
        vstore_close(src);
        return 2;
    }
    char report[512];
    int rc = vstore_copy(src, dst, report, sizeof report, &e);
    if (rc == 0)
        printf("copied from %s (%s) to %s (%s), schema %d: %s\n", from, vstore_engine(src), to, vstore_engine(dst),
               vstore_schema_version(dst), report);
    else
        fprintf(stderr, ME ": nothing was copied: %s\n", e.msg);
    vstore_close(dst);
    vstore_close(src);
    return rc == 0 ? 0 : 1;
}
