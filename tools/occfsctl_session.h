/*
 * occfsctl_session.h - occfsctl's control-plane commands
 * (tools/occfsctl_session.c), dispatched from occfsctl.c.
 */
#ifndef OCCFS_OCCFSCTL_SESSION_H
#define OCCFS_OCCFSCTL_SESSION_H

/* occfsctl session ...: argv[0] is "session". */
int occfsctl_session(int argc, char **argv);
/* occfsctl revoke-all: the kill-switch, also as a top-level command. */
int occfsctl_session_revoke_all(int argc, char **argv);

#endif
