/*
 * main.c — pgcutover [-c FILE] [--set NAME=VALUE]... [--check] [--help] [--version]
 *          pgcutover run [OPTION]... "ALTER TABLE …"   (the console client, cli_run.h)
 *          pgcutover migrate up|down|status|plan|adopt [OPTION]... DIR   (cli_migrate.h)
 */
#include <stdio.h>
#include <string.h>

#include "cli_migrate.h"
#include "cli_run.h"
#include "conf.h"
#include "px_daemon.h"

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "run") == 0)
        return cli_run_main(argc - 1, argv + 1);
    if (argc > 1 && strcmp(argv[1], "migrate") == 0)
        return cli_migrate_main(argc - 1, argv + 1);
    conf_cmdline cl;
    char err[512];
    if (!conf_parse_cmdline(argc, argv, &cl, err, sizeof err)) {
        fprintf(stderr, "pgcutover: %s\nTry \"pgcutover --help\".\n", err);
        return 1;
    }
    if (cl.help) {
        conf_print_help(stdout);
        return 0;
    }
    if (cl.version) {
        printf("pgcutover %s\n", PGC_VERSION);
        return 0;
    }
    conf_t c = {0};
    if (!conf_load(&c, &cl, err, sizeof err)) {
        fprintf(stderr, "pgcutover: %s\n", err);
        return 1;
    }
    if (cl.check) {
        printf("pgcutover: configuration is valid\n");
        conf_free(&c);
        return 0;
    }
    return px_daemon_run(&c, &cl);
}
