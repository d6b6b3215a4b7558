/* quince-verifier: placeholder until the verifier lands. Parses its options, loads and checks
 * the configuration, then says it is not implemented yet (exit 2). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "config.h"
#include "err.h"
#include "log.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: quince-verifier [--config FILE] [--help] [--version]\n"
            "  --config FILE  configuration file (default: $QUINCE_CONFIG, else %s)\n"
            "  --help         show this help and exit\n"
            "  --version      show the version and exit\n",
            QCONFIG_DEFAULT_PATH);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "config", required_argument, NULL, 'c' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    const char *config_path = NULL;
    int ch;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            config_path = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("quince-verifier %s\n", QUINCE_VERSION);
            return 0;
        default:
            if (optopt == 'c')
                fprintf(stderr, "quince-verifier: --config needs a file name\n");
            else
                fprintf(stderr, "quince-verifier: unknown option '%s'\n", argv[optind - 1]);
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "quince-verifier: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }

    qerr err = { 0 };
    qconfig *cfg = qconfig_load(config_path, &err);
    if (!cfg) {
        fprintf(stderr, "quince-verifier: bad configuration: %s\n", err.msg);
        return 2;
    }
    const char *lvl_name = qconfig_str(cfg, "verifier", "log_level", "info");
    qlog_level lvl;
    if (qlog_level_parse(lvl_name, &lvl) < 0) {
        fprintf(stderr, "quince-verifier: bad configuration: [verifier] log_level: unknown level \"%s\"\n",
                lvl_name);
        qconfig_free(cfg);
        return 2;
    }
    qlog_set_level(lvl);
    qconfig_free(cfg);

    fprintf(stderr, "quince-verifier: not implemented yet\n");
    return 2;
}
