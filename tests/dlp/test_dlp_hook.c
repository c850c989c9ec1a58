/*
 * test_dlp_hook.c - external DLP hooks: programs and a unix-socket service.
 *
 * The programs are real processes (/bin/sh -c scripts) and the service a
 * real listener on a unix socket in a thread of this test.  Each failure
 * mode (timeout, crash, malformed answer, missing program, closed socket)
 * is run with on_error allow and block, and the time a stuck hook costs is
 * checked to stay near its timeout.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "dlp_test.h"

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Run one sh script as a hook over text fed in 4 KiB writes. */
static int run_sh(const char *script, enum dlp_action on_error, int timeout_ms,
		  const char *text, size_t len, struct dlp_verdict *v)
{
	const char *argv[] = {"/bin/sh", "-c", script, NULL};
	struct dlp_rule_spec spec = {
	    .name = "hook",
	    .kind = DLP_KIND_HOOK,
	    .action = DLP_BLOCK,
	    .severity = DLP_SEV_HIGH,
	    .hook = {.argv = argv,
		     .timeout_ms = timeout_ms,
		     .on_error = on_error},
	};
	char err[256];
	struct dlp_engine *e = dlp_engine_new(&spec, 1, err, sizeof(err));
	int ret;

	if (!e) {
		fprintf(stderr, "engine: %s\n", err);
		return -1;
	}
	ret = scan(e, "dir/file name.txt", text, len, 0, 4096, v);
	dlp_engine_free(e);
	return ret;
}

static enum dlp_action sh_verdict(const char *script, enum dlp_action onerr,
				  const char *text, char *reason)
{
	struct dlp_verdict v;
	enum dlp_action a;

	if (run_sh(script, onerr, 2000, text, strlen(text), &v))
		return (enum dlp_action) - 1;
	a = v.action;
	if (reason)
		snprintf(reason, DLP_REASON_MAX, "%s",
			 v.nfindings ? v.findings[0].reason : "");
	dlp_verdict_cleanup(&v);
	return a;
}

static void test_program(void)
{
	char reason[DLP_REASON_MAX];
	size_t n = 3 << 20;
	char *big = malloc(n + 1);
	struct dlp_verdict v;

	CHECK_EQ(
	    sh_verdict("cat >/dev/null; echo allow", DLP_BLOCK, "hello", NULL),
	    DLP_ALLOW);
	CHECK_EQ(sh_verdict("cat >/dev/null; echo 'block has a thing'",
			    DLP_ALLOW, "hello", reason),
		 DLP_BLOCK);
	CHECK_STR(reason, "has a thing");
	/* the hook sees the content */
	const char *grep = "if grep -q FORBIDDEN; then echo 'block word'; "
			   "else echo allow; fi";

	CHECK_EQ(sh_verdict(grep, DLP_BLOCK, "a FORBIDDEN word", NULL),
		 DLP_BLOCK);
	CHECK_EQ(sh_verdict(grep, DLP_BLOCK, "a harmless word", NULL),
		 DLP_ALLOW);
	/* all of a 3 MiB file, fed in 4 KiB writes, reaches the hook */
	memset(big, 'x', n);
	big[n] = '\0';
	CHECK_EQ(run_sh("n=$(wc -c); [ \"$n\" -eq 3145728 ] && echo allow || "
			"echo \"block got $n\"",
			DLP_BLOCK, 5000, big, n, &v),
		 0);
	CHECK_EQ(v.action, DLP_ALLOW);
	if (v.nfindings)
		fprintf(stderr, "reason: %s\n", v.findings[0].reason);
	dlp_verdict_cleanup(&v);
	/* a hook that answers without reading: no SIGPIPE, answer stands */
	CHECK_EQ(run_sh("echo 'block early'", DLP_ALLOW, 5000, big, n, &v), 0);
	CHECK_EQ(v.action, DLP_BLOCK);
	dlp_verdict_cleanup(&v);
	CHECK_EQ(run_sh("exec 0<&-; echo allow", DLP_BLOCK, 5000, big, n, &v),
		 0);
	CHECK_EQ(v.action, DLP_ALLOW);
	dlp_verdict_cleanup(&v);
	free(big);
	/* CRLF and an empty file */
	CHECK_EQ(sh_verdict("printf 'allow\\r\\n'", DLP_BLOCK, "", NULL),
		 DLP_ALLOW);
}

/* Each failure gives on_error: fail open and fail closed. */
static void test_program_errors(void)
{
	static const char *const broken[] = {
	    "cat >/dev/null; echo maybe",		/* malformed */
	    "cat >/dev/null",				/* no answer */
	    "cat >/dev/null; kill -SEGV $$",		/* crash */
	    "cat >/dev/null; echo allow; exit 3",	/* allow, then fail */
	    "cat >/dev/null; head -c 100000 /dev/zero", /* babble */
	};
	char reason[DLP_REASON_MAX];

	for (size_t i = 0; i < sizeof(broken) / sizeof(broken[0]); i++) {
		CHECK_EQ(sh_verdict(broken[i], DLP_ALLOW, "data", NULL),
			 DLP_ALLOW);
		CHECK_EQ(sh_verdict(broken[i], DLP_BLOCK, "data", reason),
			 DLP_BLOCK);
		CHECK(strstr(reason, "hook failed") != NULL);
	}
	CHECK_EQ(
	    sh_verdict("cat >/dev/null; kill -SEGV $$", DLP_BLOCK, "d", reason),
	    DLP_BLOCK);
	CHECK(strstr(reason, "signal 11") != NULL);

	/* a hook that hangs costs its timeout, not more */
	for (int onerr = DLP_ALLOW; onerr <= DLP_BLOCK; onerr += 2) {
		struct dlp_verdict v;
		double t0 = now();

		CHECK_EQ(run_sh("sleep 30", (enum dlp_action)onerr, 300, "data",
				4, &v),
			 0);
		CHECK(now() - t0 < 2.0);
		CHECK_EQ(v.action, onerr);
		if (onerr == DLP_BLOCK)
			CHECK(v.nfindings == 1 &&
			      strstr(v.findings[0].reason, "timed out"));
		dlp_verdict_cleanup(&v);
	}
	/* answered, then lingers past the deadline: killed, on_error */
	struct dlp_verdict v;
	double t0 = now();

	CHECK_EQ(
	    run_sh("echo allow; exec sleep 30", DLP_BLOCK, 300, "d", 1, &v), 0);
	CHECK(now() - t0 < 2.0);
	CHECK_EQ(v.action, DLP_BLOCK);
	dlp_verdict_cleanup(&v);

	/* a missing program */
	const char *argv[] = {"/nonexistent/hook", NULL};
	struct dlp_rule_spec spec = {
	    .name = "h",
	    .kind = DLP_KIND_HOOK,
	    .action = DLP_BLOCK,
	    .hook = {.argv = argv, .on_error = DLP_BLOCK}};
	struct dlp_engine *e = dlp_engine_new(&spec, 1, NULL, 0);

	CHECK_EQ(scan(e, "f", "x", 1, 1, 0, &v), 0);
	CHECK_EQ(v.action, DLP_BLOCK);
	CHECK(v.nfindings == 1 && strstr(v.findings[0].reason, "cannot run"));
	dlp_verdict_cleanup(&v);
	dlp_engine_free(e);
}

/* Conditions, the caller's own fd, and hooks after a pattern block. */
static void test_program_source(void)
{
	const char *argv[] = {"/bin/sh", "-c",
			      "grep -q BAD && echo 'block bad' || echo allow",
			      NULL};
	const char *glob[] = {"*.csv"};
	struct dlp_rule_spec specs[] = {
	    {.name = "hook",
	     .kind = DLP_KIND_HOOK,
	     .action = DLP_BLOCK,
	     .globs = glob,
	     .nglobs = 1,
	     .max_size = 1000,
	     .hook = {.argv = argv, .on_error = DLP_BLOCK}},
	};
	struct dlp_engine *e = dlp_engine_new(specs, 1, NULL, 0);
	char path[] = "/tmp/dlp-src-XXXXXX";
	int fd = mkstemp(path);
	struct dlp_verdict v;
	struct dlp_stream *s;

	CHECK(e != NULL && fd >= 0);
	unlink(path);
	CHECK_EQ(scan(e, "a.csv", "x,BAD\n", 6, 3, 0, &v), 0);
	CHECK_EQ(v.action, DLP_BLOCK);
	dlp_verdict_cleanup(&v);
	CHECK_EQ(scan(e, "a.txt", "x,BAD\n", 6, 3, 0, &v), 0);
	CHECK_EQ(v.action, DLP_ALLOW);
	dlp_verdict_cleanup(&v);
	/* over max_size: the hook is not asked */
	char big[2000];

	memset(big, 'B', sizeof(big));
	memcpy(big, "BAD", 3);
	CHECK_EQ(scan(e, "a.csv", big, sizeof(big), 100, 0, &v), 0);
	CHECK_EQ(v.action, DLP_ALLOW);
	dlp_verdict_cleanup(&v);
	/* the caller's staging file as the source: the hook reads it */
	CHECK_EQ(write(fd, "ok,BAD\n", 7), 7);
	s = dlp_stream_open(e, "b.csv", 7);
	CHECK(s != NULL);
	CHECK_EQ(dlp_stream_set_source(s, fd, NULL), 0);
	CHECK_EQ(dlp_stream_write(s, "ok,BAD\n", 7), 0);
	CHECK_EQ(dlp_stream_set_source(s, fd, NULL), -EBUSY);
	CHECK_EQ(dlp_stream_finish(s, &v), 0);
	CHECK_EQ(v.action, DLP_BLOCK);
	dlp_verdict_cleanup(&v);
	dlp_stream_free(s);
	/* the fd is the caller's: still open */
	CHECK(fcntl(fd, F_GETFD) >= 0);
	close(fd);
	dlp_engine_free(e);
}

enum sock_mode { SOCK_NORMAL, SOCK_SILENT, SOCK_CLOSE, SOCK_GARBAGE };

struct server {
	int lfd;
	enum sock_mode mode;
	volatile int stop;
	char name[256];		/* the last header's name field */
	unsigned long long got; /* bytes of plaintext last received */
};

static int read_full(int fd, char *b, size_t n)
{
	size_t o = 0;

	while (o < n) {
		ssize_t r = read(fd, b + o, n - o);

		if (r <= 0)
			return -1;
		o += (size_t)r;
	}
	return 0;
}

/* One request: header line, plaintext, answer by mode. */
static void serve_one(struct server *sv, int fd)
{
	char hdr[512], *data = NULL;
	unsigned long long size;
	size_t o = 0;

	if (sv->mode == SOCK_CLOSE)
		return;
	while (o + 1 < sizeof(hdr) && read(fd, hdr + o, 1) == 1 &&
	       hdr[o] != '\n')
		o++;
	hdr[o] = '\0';
	if (sscanf(hdr, "OCCFS-DLP/1 %llu %255s", &size, sv->name) != 2 ||
	    size > (64u << 20))
		return;
	data = malloc(size + 1);
	if (!data || read_full(fd, data, size))
		goto out;
	data[size] = '\0';
	sv->got = size;
	if (sv->mode == SOCK_SILENT) {
		while (read(fd, hdr, sizeof(hdr)) >
		       0) /* until the peer gives up */
			;
	} else if (sv->mode == SOCK_GARBAGE) {
		CHECK(write(fd, "what\n", 5) == 5);
	} else if (memmem(data, size, "FORBIDDEN", 9)) {
		CHECK(write(fd, "block forbidden word\n", 21) == 21);
	} else {
		CHECK(write(fd, "allow\n", 6) == 6);
	}
out:
	free(data);
}

static void *server_run(void *arg)
{
	struct server *sv = arg;

	while (!sv->stop) {
		struct timeval tv = {0, 100000};
		int fd;

		setsockopt(sv->lfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		fd = accept(sv->lfd, NULL, NULL);
		if (fd < 0)
			continue;
		serve_one(sv, fd);
		close(fd);
	}
	return NULL;
}

static enum dlp_action sock_verdict(const char *path, enum dlp_action onerr,
				    const char *text, size_t len, char *reason)
{
	struct dlp_rule_spec spec = {
	    .name = "svc",
	    .kind = DLP_KIND_HOOK,
	    .action = DLP_BLOCK,
	    .hook = {.socket = path, .timeout_ms = 500, .on_error = onerr},
	};
	struct dlp_engine *e = dlp_engine_new(&spec, 1, NULL, 0);
	struct dlp_verdict v;
	enum dlp_action a = (enum dlp_action) - 1;

	if (e && scan(e, "dir/a b\n.txt", text, len, 0, 1000, &v) == 0) {
		a = v.action;
		snprintf(reason, DLP_REASON_MAX, "%s",
			 v.nfindings ? v.findings[0].reason : "");
		dlp_verdict_cleanup(&v);
	}
	dlp_engine_free(e);
	return a;
}

static void test_socket(void)
{
	char dir[] = "/tmp/dlp-hook-XXXXXX", path[64], reason[DLP_REASON_MAX];
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct server sv = {.mode = SOCK_NORMAL};
	pthread_t t;
	size_t n = 2 << 20;
	char *big = malloc(n);

	CHECK(mkdtemp(dir) != NULL && big);
	snprintf(path, sizeof(path), "%s/sock", dir);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	sv.lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	CHECK(bind(sv.lfd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	CHECK(listen(sv.lfd, 4) == 0);
	pthread_create(&t, NULL, server_run, &sv);

	CHECK_EQ(sock_verdict(path, DLP_BLOCK, "fine text", 9, reason),
		 DLP_ALLOW);
	CHECK_STR(sv.name, "dir/a%20b%0A.txt");
	CHECK_EQ(sock_verdict(path, DLP_ALLOW, "a FORBIDDEN one", 15, reason),
		 DLP_BLOCK);
	CHECK_STR(reason, "forbidden word");
	memset(big, 'y', n);
	memcpy(big + n - 9, "FORBIDDEN", 9);
	CHECK_EQ(sock_verdict(path, DLP_ALLOW, big, n, reason), DLP_BLOCK);
	CHECK_EQ(sv.got, n);
	CHECK_EQ(sock_verdict(path, DLP_BLOCK, "", 0, reason), DLP_ALLOW);
	for (int m = SOCK_SILENT; m <= SOCK_GARBAGE; m++) {
		double t0 = now();

		sv.mode = (enum sock_mode)m;
		CHECK_EQ(sock_verdict(path, DLP_ALLOW, "data", 4, reason),
			 DLP_ALLOW);
		CHECK_EQ(sock_verdict(path, DLP_BLOCK, "data", 4, reason),
			 DLP_BLOCK);
		CHECK(strstr(reason, "hook failed") != NULL);
		CHECK(now() - t0 < 3.0);
	}
	sv.stop = 1;
	pthread_join(t, NULL);
	close(sv.lfd);
	unlink(path);
	/* nobody listening */
	CHECK_EQ(sock_verdict(path, DLP_ALLOW, "data", 4, reason), DLP_ALLOW);
	CHECK_EQ(sock_verdict(path, DLP_BLOCK, "data", 4, reason), DLP_BLOCK);
	CHECK(strstr(reason, "connect") != NULL);
	rmdir(dir);
	free(big);
}

int main(void)
{
	/* the broker ignores SIGPIPE; a hook must work either way */
	signal(SIGPIPE, SIG_DFL);
	test_program();
	test_program_errors();
	test_program_source();
	test_socket();
	return unit_done("test_dlp_hook");
}
