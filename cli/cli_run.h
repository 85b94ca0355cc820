/*
 * cli_run.h — `pgcutover run`: a client mode of the pgcutover binary that submits one
 * ALTER TABLE to a running pgcutover's control console (libpq) and follows it to the end.
 */
#ifndef CLI_RUN_H
#define CLI_RUN_H

/*
 * cli_run_main — pgcutover run [-h HOST] [-p CONTROL_PORT] [-d DB] [-U USER] [--plan]
 *                [--manual-cutover] [--max-rows-per-second N] "ALTER TABLE …"
 *
 * argv[0] is "run" (main passes argc - 1, argv + 1). Options may follow the statement
 * (getopt_long reorders argv in place); nothing of argv is kept beyond the call.
 * Host defaults to PGHOST or 127.0.0.1, the port to 6433 (PGPORT is the PostgreSQL
 * port, so it is not used); database, user and password come from libpq as usual
 * (PGDATABASE, PGUSER, PGPASSWORD, ~/.pgpass, the OS user).
 *
 * Without --plan it sends the statement, applies --manual-cutover / --max-rows-per-second
 * with SET MIGRATION, then polls SHOW MIGRATION n every 200 ms: a redrawn progress line
 * when stdout is a terminal, otherwise one plain line per state the migration entered
 * (from its phase_at record, so short states are not missed), one when the phase text
 * changes, and one at most every 5 s while copying. With --plan it prints the plan rows
 * and starts nothing.
 *
 * SIGINT with stdin and stderr on a terminal asks "Abort migration n? [y/N]": yes sends
 * ABORT MIGRATION n, anything else detaches. SIGINT without a terminal, and SIGTERM,
 * detach without asking. Detaching leaves the migration running in pgcutover.
 *
 * Returns the process exit code:
 *   0  the migration is done (or --plan / --help printed)
 *   1  it failed, the console refused the statement (SQLSTATE printed), or the console
 *      connection could not be made or was lost
 *   2  bad usage
 *   3  it was aborted (by this client on Ctrl-C or by anyone else)
 *   4  detached on Ctrl-C/SIGTERM; the migration continues
 *
 * Everything it allocates is freed before it returns; it installs SIGINT/SIGTERM
 * handlers for the rest of the process (it is meant to be the whole process).
 */
int cli_run_main(int argc, char **argv);

#endif
