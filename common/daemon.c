/* daemon.c — see daemon.h. */
#include "daemon.h"

#include <getopt.h>
#include <string.h>

static volatile sig_atomic_t *g_flag;

static void on_signal(int sig)
{
    (void)sig;
    if (g_flag)
        *g_flag = 1;
}

void qdaemon_stop_on_signals(volatile sig_atomic_t *flag)
{
    g_flag = flag;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

int qdaemon_args(int argc, char **argv, const char *prog, void (*usage)(FILE *f), const char **config)
{
    return qdaemon_args_check(argc, argv, prog, usage, config, NULL);
}

int qdaemon_args_check(int argc, char **argv, const char *prog, void (*usage)(FILE *f), const char **config,
                       bool *check_config)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {"check-config", no_argument, NULL, 'k'},
        {NULL, 0, NULL, 0},
    };
    *config = NULL;
    if (check_config)
        *check_config = false;
    int ch;
    opterr = 0;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            *config = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("%s %s\n", prog, QUINCE_VERSION);
            return 0;
        case 'k':
            if (check_config) {
                *check_config = true;
                break;
            }
            fprintf(stderr, "%s: unknown option '%s' (see --help)\n", prog, argv[optind - 1]);
            return 2;
        default:
            if (optopt == 'c')
                fprintf(stderr, "%s: --config needs a file name\n", prog);
            else
                fprintf(stderr, "%s: unknown option '%s' (see --help)\n", prog, argv[optind - 1]);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "%s: unexpected argument '%s' (see --help)\n", prog, argv[optind]);
        return 2;
    }
    return -1;
}
