/* migrate_cmd.h — `quince-verifier migrate`: move a stopped installation's store to another
 * database, typically from the embedded SQLite file to PostgreSQL.
 *
 *   quince-verifier migrate --from DATABASE --to DATABASE
 *   quince-verifier migrate --help
 *
 * DATABASE is a value of [verifier] database (a path, sqlite:///path or postgresql://...). The
 * source must exist; the target must be empty (new, or created by this version and never written);
 * every row is copied in one transaction of the target, so a failure leaves it as it was.
 * argv[0] is the sub-command's own name ("migrate"). What was copied goes to stdout, one-line
 * errors to stderr as "quince-verifier migrate: <message>".
 * Exit status: 0 copied, 1 the copy failed (the target is unchanged), 2 bad usage or a database
 * that cannot be used (unreachable, wrong credentials, newer schema, target not empty). */
#ifndef QUINCE_VERIFIER_MIGRATE_CMD_H
#define QUINCE_VERIFIER_MIGRATE_CMD_H

int verifier_migrate_main(int argc, char **argv);

#endif
