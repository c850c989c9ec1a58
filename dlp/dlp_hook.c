/*
 * dlp_hook.c - hand a file's plaintext to an external DLP hook.
 *
 * A hook is a program (run without a shell through posix_spawn, plaintext
 * on stdin) or a unix-socket service (a header line, then the plaintext).
 * Either answers one line: "allow" or "block <reason>".  Everything runs
 * against one deadline: a hook that stops reading, never answers, crashes
 * or babbles costs the caller at most the rule's timeout and is then judged
 * by the rule's on_error.  The program's stdin is a socket rather than a
 * pipe so that writing to a hook that has exited is an EPIPE from send()
 * with MSG_NOSIGNAL, never a SIGPIPE in the broker.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dlp.h"
#include "dlp_int.h"

#define ANSWER_MAX 512

struct xfer {
	int wfd, rfd; /* plaintext goes to wfd, the answer comes from rfd */
	int src;      /* plaintext file */
	uint64_t size, sent;
	char out[65536]; /* header, then chunks of the file */
	size_t olen, ooff;
	bool wdone;
	char ans[ANSWER_MAX];
	size_t alen;
	bool adone;
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Refill the output buffer from the file; finish the write side at EOF. */
static int refill(struct xfer *x)
{
	ssize_t n;
	size_t want;

	if (x->ooff < x->olen)
		return 0;
	x->olen = x->ooff = 0;
	if (x->sent >= x->size) {
		shutdown(x->wfd, SHUT_WR);
		x->wdone = true;
		return 0;
	}
	want = x->size - x->sent < sizeof(x->out) ? x->size - x->sent
						  : sizeof(x->out);
	n = pread(x->src, x->out, want, (off_t)x->sent);
	if (n <= 0)
		return n < 0 ? -errno : -EIO; /* file shorter than written */
	x->olen = (size_t)n;
	x->sent += (uint64_t)n;
	return 0;
}

static int do_send(struct xfer *x)
{
	ssize_t n = send(x->wfd, x->out + x->ooff, x->olen - x->ooff,
			 MSG_NOSIGNAL | MSG_DONTWAIT);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (n < 0) {
		/* the hook stopped reading; its answer may still come */
		x->wdone = true;
		return 0;
	}
	x->ooff += (size_t)n;
	return refill(x);
}

static void do_recv(struct xfer *x)
{
	ssize_t n = recv(x->rfd, x->ans + x->alen, sizeof(x->ans) - 1 - x->alen,
			 MSG_DONTWAIT);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		x->adone = true;
		return;
	}
	x->alen += (size_t)n;
	x->ans[x->alen] = '\0';
	if (memchr(x->ans, '\n', x->alen) || x->alen == sizeof(x->ans) - 1)
		x->adone = true;
}

/* Move the plaintext out and an answer line in before deadline. */
static int exchange(struct xfer *x, int64_t deadline)
{
	int ret = refill(x);

	while (!ret && !x->adone) {
		struct pollfd p[2] = {{.fd = x->rfd, .events = POLLIN}};
		int np = 1, left = (int)(deadline - now_ms());

		if (left <= 0)
			return -ETIMEDOUT;
		if (!x->wdone && x->wfd != x->rfd) {
			p[1] = (struct pollfd){.fd = x->wfd, .events = POLLOUT};
			np = 2;
		} else if (!x->wdone) {
			p[0].events |= POLLOUT;
		}
		if (poll(p, (nfds_t)np, left) < 0 && errno != EINTR)
			return -errno;
		for (int i = 0; i < np; i++) {
			if ((p[i].revents & (POLLOUT | POLLERR | POLLHUP)) &&
			    !x->wdone && p[i].fd == x->wfd)
				ret = do_send(x);
			if ((p[i].revents & (POLLIN | POLLERR | POLLHUP)) &&
			    p[i].fd == x->rfd && !ret)
				do_recv(x);
		}
	}
	return ret;
}

/* "allow" or "block <reason>": DLP_ALLOW, DLP_BLOCK, or -1 if malformed. */
static int parse_answer(char *a, char *reason, size_t reasonlen)
{
	char *nl = strchr(a, '\n');
	size_t o = 0;

	if (!nl)
		return -1;
	*nl = '\0';
	if (nl > a && nl[-1] == '\r')
		nl[-1] = '\0';
	if (strcmp(a, "allow") == 0 || strncmp(a, "allow ", 6) == 0)
		return DLP_ALLOW;
	if (strcmp(a, "block") != 0 && strncmp(a, "block ", 6) != 0)
		return -1;
	for (const char *p = a[5] ? a + 6 : "blocked by hook";
	     *p && o + 1 < reasonlen; p++)
		reason[o++] = *p >= 0x20 && *p < 0x7f ? *p : '?';
	if (reasonlen)
		reason[o] = '\0';
	return DLP_BLOCK;
}

static pid_t spawn(char **argv, int in, int out)
{
	static char *envp[] = {"PATH=/usr/local/bin:/usr/bin:/bin", NULL};
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, dfl;
	pid_t pid = -1;
	int ret;

	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&at);
	sigemptyset(&none);
	sigemptyset(&dfl);
	sigaddset(&dfl, SIGPIPE);
	posix_spawn_file_actions_adddup2(&fa, in, 0);
	posix_spawn_file_actions_adddup2(&fa, out, 1);
	posix_spawn_file_actions_addclosefrom_np(&fa, 3);
	/* the broker may block signals or ignore SIGPIPE; the hook must not
	 * inherit that */
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &dfl);
	posix_spawnattr_setpgroup(&at, 0);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK |
					  POSIX_SPAWN_SETSIGDEF |
					  POSIX_SPAWN_SETPGROUP);
	ret = posix_spawn(&pid, argv[0], &fa, &at, argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	if (ret) {
		errno = ret;
		return -1;
	}
	return pid;
}

/*
 * Reap pid before deadline, else kill it.  Its wait status, or -1.  The hook
 * leads its own process group, and the group is killed before the leader
 * is reaped (so the group id cannot have been reused): a script's
 * background children or a "sleep" it was waiting on die with it.
 */
static int reap(pid_t pid, int64_t deadline)
{
	siginfo_t si;
	int st = -1;

	for (;;) {
		memset(&si, 0, sizeof(si));
		if (waitid(P_PID, (id_t)pid, &si,
			   WEXITED | WNOHANG | WNOWAIT) == 0 &&
		    si.si_pid == pid) {
			st = si.si_code == CLD_EXITED ? si.si_status << 8
						      : si.si_status & 0x7f;
			break;
		}
		if (now_ms() >= deadline)
			break;
		nanosleep(&(struct timespec){0, 2000000}, NULL);
	}
	kill(-pid, SIGKILL);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	return st;
}

static int run_program(const struct dlp_rule *r, struct xfer *x,
		       int64_t deadline, char *reason, size_t reasonlen)
{
	int in[2] = {-1, -1}, out[2] = {-1, -1};
	int ret = -errno, ans, st;
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in) ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, out)) {
		ret = -errno;
		snprintf(reason, reasonlen, "socketpair: %s", strerror(-ret));
		goto out;
	}
	pid = spawn(r->argv, in[1], out[1]);
	if (pid < 0) {
		ret = -errno;
		snprintf(reason, reasonlen, "cannot run %s: %s", r->argv[0],
			 strerror(-ret));
		goto out;
	}
	close(in[1]);
	close(out[1]);
	in[1] = out[1] = -1;
	x->wfd = in[0];
	x->rfd = out[0];
	ret = exchange(x, deadline);
	if (ret) {
		reap(pid, 0);
		snprintf(reason, reasonlen, "%s",
			 ret == -ETIMEDOUT ? "timed out" : strerror(-ret));
		goto out;
	}
	/* an answer counts once the hook has exited (within the deadline) */
	st = reap(pid, deadline);
	ans = parse_answer(x->ans, reason, reasonlen);
	ret = -EPROTO;
	if (ans == DLP_BLOCK) {
		ret = DLP_BLOCK; /* a block stands whatever the exit status */
	} else if (st < 0) {
		snprintf(reason, reasonlen, "timed out");
	} else if (WIFSIGNALED(st)) {
		snprintf(reason, reasonlen, "killed by signal %d",
			 WTERMSIG(st));
	} else if (WEXITSTATUS(st) != 0) {
		snprintf(reason, reasonlen, "exit status %d", WEXITSTATUS(st));
	} else if (ans < 0) {
		snprintf(reason, reasonlen, "malformed answer");
	} else {
		ret = DLP_ALLOW;
	}
out:
	for (int i = 0; i < 2; i++) {
		if (in[i] >= 0)
			close(in[i]);
		if (out[i] >= 0)
			close(out[i]);
	}
	return ret;
}

/* The socket framing's header: "OCCFS-DLP/1 <size> <name>\n", the name
 * percent-encoded so it holds no space, control byte or newline. */
static size_t header(char *h, size_t hlen, const char *name, uint64_t size)
{
	size_t o = (size_t)snprintf(h, hlen, "OCCFS-DLP/1 %llu ",
				    (unsigned long long)size);

	for (const unsigned char *p = (const unsigned char *)name;
	     *p && o + 4 < hlen; p++) {
		if (*p <= 0x20 || *p >= 0x7f || *p == '%')
			o += (size_t)snprintf(h + o, hlen - o, "%%%02X", *p);
		else
			h[o++] = (char)*p;
	}
	h[o++] = '\n';
	return o;
}

static int run_socket(const struct dlp_rule *r, struct xfer *x,
		      const char *name, int64_t deadline, char *reason,
		      size_t reasonlen)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd, ret, ans;

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		ret = -errno;
		snprintf(reason, reasonlen, "socket: %s", strerror(-ret));
		return ret;
	}
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", r->socket);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		/* a unix connect either succeeds or fails at once; EAGAIN
		 * means a full backlog, which is a failure too */
		ret = -errno;
		snprintf(reason, reasonlen, "connect %s: %s", r->socket,
			 strerror(-ret));
		goto out;
	}
	x->wfd = x->rfd = fd;
	x->olen = header(x->out, 4096, name, x->size);
	ret = exchange(x, deadline);
	if (ret) {
		snprintf(reason, reasonlen, "%s",
			 ret == -ETIMEDOUT ? "timed out" : strerror(-ret));
		goto out;
	}
	ans = parse_answer(x->ans, reason, reasonlen);
	ret = ans >= 0 ? ans : -EPROTO;
	if (ans < 0)
		snprintf(reason, reasonlen, "malformed answer");
out:
	close(fd);
	return ret;
}

enum dlp_action dlp_hook_run(const struct dlp_rule *r, const char *name, int fd,
			     uint64_t size, char *reason, size_t reasonlen)
{
	int64_t deadline = now_ms() + r->timeout_ms;
	struct xfer *x = calloc(1, sizeof(*x));
	char why[DLP_REASON_MAX] = "";
	int ret;

	if (!x) {
		snprintf(why, sizeof(why), "out of memory");
		ret = -ENOMEM;
	} else if (fd < 0 && size > 0) {
		snprintf(why, sizeof(why), "no plaintext source");
		ret = -EBADF;
	} else {
		x->src = fd;
		x->size = size;
		ret = r->argv
			  ? run_program(r, x, deadline, why, sizeof(why))
			  : run_socket(r, x, name, deadline, why, sizeof(why));
	}
	free(x);
	if (ret >= 0) {
		snprintf(reason, reasonlen, "%s", why);
		return (enum dlp_action)ret;
	}
	snprintf(reason, reasonlen, "hook failed (%s), on_error %s", why,
		 dlp_action_name(r->on_error));
	return r->on_error;
}
