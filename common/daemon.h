/*
 * daemon.h - going to the background the way an init script expects: the
 * command returns only once the daemon is ready to serve, with status 0,
 * or with status 1 and the daemon's own reason on stderr.
 */
#ifndef OCCFS_DAEMON_H
#define OCCFS_DAEMON_H

/*
 * Fork.  The parent waits for the child's daemon_ready() and exits 0, or
 * prints "PROG: reason" and exits 1 (also when the child dies before it
 * says anything).  The child returns in a new session with / as its
 * working directory.  Fatal (at start-up) when fork or pipe fail.
 */
void daemon_start(const char *prog);

/*
 * The child after daemon_start: err NULL when start-up succeeded (stdio
 * then goes to /dev/null and logging to syslog), else the reason the
 * parent prints.  Without daemon_start (foreground) err is logged.
 * Returns 0, or -EPIPE when the parent could not be told.
 */
int daemon_ready(const char *err);

#endif
