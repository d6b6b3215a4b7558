/* ca_cmd.h — `quince-verifier ca`: manage the verifier's built-in CA directory.
 *
 *   quince-verifier ca --dir DIR init [--san NAME ...] [--key-type ec|rsa]
 *   quince-verifier ca --dir DIR issue-client NAME [--out-dir D] [--key-type ec|rsa]
 *   quince-verifier ca --dir DIR reset [--san NAME ...] [--key-type ec|rsa]
 *   quince-verifier ca --dir DIR list
 *   quince-verifier ca --help
 *
 * argv[0] is the sub-command's own name ("ca"); options and the command may come in any order.
 * Results go to stdout, one-line errors to stderr as "quince-verifier ca: <message>".
 * Exit status: 0 done, 1 failure, 2 bad usage. */
#ifndef QUINCE_VERIFIER_CA_CMD_H
#define QUINCE_VERIFIER_CA_CMD_H

int verifier_ca_main(int argc, char **argv);

#endif
