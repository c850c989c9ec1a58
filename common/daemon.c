/*
 * daemon.c - fork into the background and report start-up (daemon.h).
 *
 * The parent holds the read end of a pipe; the child writes "OK" or
 * "ERR:" and a reason once, then closes it.  A child that dies first
 * closes the pipe with nothing written, which the parent reports as a
 * failed start-up instead of waiting forever.
 */
#include "daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

#define DAEMON_MSG_MAX 300

static int daemon_fd = -1; /* child: write end of the start-up pipe */

/* The parent: read everything the child says (until it closes). */
static void daemon_wait(int fd, const char *prog)
{
	char msg[DAEMON_MSG_MAX];
	size_t got = 0;
	ssize_t n;

	while (got < sizeof(msg) - 1 &&
	       (n = read(fd, msg + got, sizeof(msg) - 1 - got)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		got += (size_t)n;
	}
	msg[got] = '\0';
	if (strcmp(msg, "OK") == 0)
		exit(0);
	fprintf(stderr, "%s: %s\n", prog,
		strncmp(msg, "ERR:", 4) == 0 ? msg + 4 : "start-up failed");
	exit(1);
}

void daemon_start(const char *prog)
{
	int p[2];
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0)
		fatal("pipe: %m");
	pid = fork();
	if (pid < 0)
		fatal("fork: %m");
	if (pid > 0) {
		close(p[1]);
		daemon_wait(p[0], prog);
	}
	close(p[0]);
	daemon_fd = p[1];
	setsid();
	if (chdir("/") < 0)
		log_warn("chdir /: %m");
}

/* Started: the terminal is the parent's; the log goes to syslog. */
static void daemon_detach(void)
{
	int fd;

	log_open_syslog();
	fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return;
	dup2(fd, 0);
	dup2(fd, 1);
	dup2(fd, 2);
	if (fd > 2)
		close(fd);
}

int daemon_ready(const char *err)
{
	char line[DAEMON_MSG_MAX];
	int rc = 0;

	if (daemon_fd < 0) {
		if (err)
			log_err("%s", err);
		return 0;
	}
	snprintf(line, sizeof(line), "%s%s", err ? "ERR:" : "OK",
		 err ? err : "");
	if (write(daemon_fd, line, strlen(line)) < 0)
		rc = -EPIPE;
	close(daemon_fd);
	daemon_fd = -1;
	if (!err && !rc)
		daemon_detach();
	return rc;
}
