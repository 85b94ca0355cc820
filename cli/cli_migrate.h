/*
 * cli_migrate.h — `pgcutover migrate`: a client mode of the pgcutover binary that applies
 * a migration directory (golang-migrate, Flyway or Prisma layout, cli_migrate_dir.h)
 * through a running pgcutover's control console, online (issue 15).
 */
#ifndef CLI_MIGRATE_H
#define CLI_MIGRATE_H

/*
 * cli_migrate_main — pgcutover migrate up|down|status|plan|adopt [-h HOST] [-p CONTROL_PORT]
 *                    [-d DB] [-U USER] [--to VERSION] [--steps N] [--accept-drift VERSION]...
 *                    [--strict] [--wait SECONDS] [--revert [--accept-data-loss]] DIR
 *
 * argv[0] is "migrate". Connection options as `pgcutover run` (cli_run.h). It reads DIR,
 * sends every file to the console in one MIGRATE command (the engine decides what is
 * pending, splits, runs and records), and prints the answer's rows. While up or down
 * runs, a second console connection reads MIGRATE STATUS every second: on a terminal a
 * redrawn line (version, step k of n, the step's migration with its state and rows),
 * otherwise one plain line when a step starts and every 5 s during a long one.
 * `down` reverts one version unless --steps or --to says otherwise. When another
 * migrate holds the database's runner lock, it says so and retries every 2 s for --wait
 * seconds (default 600).
 *
 * Returns the exit code (documented in the README, "pgcutover migrate"):
 *   0  done (or nothing to do; status/plan printed)
 *   1  a version failed (its error printed), or plan found a step it would refuse
 *   2  bad usage, or the directory cannot be read (a file that fits no layout)
 *   3  refused by the database's state: drift, a pending version older than an applied
 *      one, an unfinished down, a version without a down file; plan --strict: warnings
 *   4  another migrate kept the runner lock for longer than --wait
 *   5  the console cannot be reached, or the connection was lost (the engine goes on;
 *      run the same command again to continue)
 */
int cli_migrate_main(int argc, char **argv);

#endif
