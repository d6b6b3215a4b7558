/* quince-verifier: placeholder until the verifier lands; answers --help and --version. */
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--version") == 0) {
            printf("quince-verifier %s\n", QUINCE_VERSION);
            return 0;
        }
        if (strcmp(argv[i], "--help") == 0) {
            printf("usage: quince-verifier [--config FILE] [--help] [--version]\n");
            return 0;
        }
    }
    fprintf(stderr, "quince-verifier: not implemented yet\n");
    return 2;
}
