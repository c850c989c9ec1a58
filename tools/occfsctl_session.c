/*
 * occfsctl_session.c - occfsctl session ...: the operator's side of
 * occfs-controld's socket (controld/ctl_wire.h).
 *
 * Each command sends one request and prints the reply, for people or, with
 * --json, as the reply object itself (the handle removed: it only ever goes
 * to the 0600 file the operator names).  Exit status: 0 done, 1 refused or
 * failed (the daemon's errno name and message on stderr), 2 usage.
 */
#include "occfsctl_session.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ctl_wire.h"

#define SESS_TIMEOUT_MS 60000
#define EXIT_USAGE 2

struct sess_opts {
	const char *socket;
	int json, all, clear;
	const char *fsid, *intent, *tenant, *out, *mountpoint, *endpoint;
	const char *guest_handle, *jti;
	long long ttl, bytes, inodes;
};

static void sess_usage(FILE *f)
{
	fprintf(f,
		"usage: occfsctl session COMMAND [--socket PATH] [--json] ...\n"
		"  create --fsid ID --handle-out FILE [--intent read|write|"
		"preview]\n"
		"         [--ttl SECONDS] [--tenant T] [--mountpoint DIR]\n"
		"         [--endpoint EP] [--guest-handle PATH]\n"
		"  list [--all]            active sessions (--all: ended too)\n"
		"  status                  kill-switch and connected brokers\n"
		"  destroy SID             revoke, flush staged data, close\n"
		"  revoke SID | --jti JTI  cut one session now\n"
		"  revoke-all              kill-switch: cut and refuse every "
		"session\n"
		"  lift                    allow new sessions again\n"
		"  quota (SID | --fsid ID) (--bytes N --inodes N | --clear)\n"
		"The socket defaults to $OCCFS_CONTROLD_SOCKET or %s.\n",
		CTL_DEFAULT_OPERATOR_SOCKET);
}

static int sess_usage_error(const char *msg)
{
	fprintf(stderr, "occfsctl: %s\n", msg);
	sess_usage(stderr);
	return EXIT_USAGE;
}

static int sess_num(const char *s, long long *out)
{
	char *end;

	errno = 0;
	*out = strtoll(s, &end, 10);
	return errno || end == s || *end || *out < 0 ? -1 : 0;
}

/* Options of every subcommand; each checks what it needs. */
static int sess_parse(int argc, char **argv, struct sess_opts *o)
{
	static const struct option lo[] = {
	    {"socket", required_argument, NULL, 'S'},
	    {"json", no_argument, NULL, 'j'},
	    {"all", no_argument, NULL, 'a'},
	    {"clear", no_argument, NULL, 'C'},
	    {"fsid", required_argument, NULL, 'f'},
	    {"intent", required_argument, NULL, 'i'},
	    {"tenant", required_argument, NULL, 't'},
	    {"ttl", required_argument, NULL, 'T'},
	    {"handle-out", required_argument, NULL, 'o'},
	    {"mountpoint", required_argument, NULL, 'm'},
	    {"endpoint", required_argument, NULL, 'e'},
	    {"guest-handle", required_argument, NULL, 'g'},
	    {"jti", required_argument, NULL, 'J'},
	    {"bytes", required_argument, NULL, 'b'},
	    {"inodes", required_argument, NULL, 'n'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0}};
	int c;

	memset(o, 0, sizeof(*o));
	o->socket = getenv("OCCFS_CONTROLD_SOCKET");
	if (!o->socket || !*o->socket)
		o->socket = CTL_DEFAULT_OPERATOR_SOCKET;
	o->bytes = o->inodes = -1;
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case 'S':
			o->socket = optarg;
			break;
		case 'j':
			o->json = 1;
			break;
		case 'a':
			o->all = 1;
			break;
		case 'C':
			o->clear = 1;
			break;
		case 'f':
			o->fsid = optarg;
			break;
		case 'i':
			o->intent = optarg;
			break;
		case 't':
			o->tenant = optarg;
			break;
		case 'o':
			o->out = optarg;
			break;
		case 'm':
			o->mountpoint = optarg;
			break;
		case 'e':
			o->endpoint = optarg;
			break;
		case 'g':
			o->guest_handle = optarg;
			break;
		case 'J':
			o->jti = optarg;
			break;
		case 'T':
			if (sess_num(optarg, &o->ttl))
				return sess_usage_error("--ttl wants seconds");
			break;
		case 'b':
			if (sess_num(optarg, &o->bytes))
				return sess_usage_error(
				    "--bytes wants a number");
			break;
		case 'n':
			if (sess_num(optarg, &o->inodes))
				return sess_usage_error(
				    "--inodes wants a number");
			break;
		case 'h':
			sess_usage(stdout);
			return 1;
		default:
			return sess_usage_error("unknown option or missing "
						"argument");
		}
	}
	return 0;
}

/* One request, one reply.  0 with *rep, or 1 after printing why. */
static int sess_call(const struct sess_opts *o, json_t *req, json_t **rep)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = -1, rc = 1, e;

	*rep = NULL;
	if (!req) {
		fprintf(stderr, "occfsctl: out of memory\n");
		return 1;
	}
	if (strlen(o->socket) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "occfsctl: socket path too long\n");
		goto out;
	}
	strcpy(sa.sun_path, o->socket);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		fprintf(stderr,
			"occfsctl: cannot reach occfs-controld at %s: %s\n",
			o->socket, strerror(errno));
		goto out;
	}
	/* A refused peer may be answered before its request is read. */
	e = ctl_wire_send(fd, req, SESS_TIMEOUT_MS);
	if (ctl_wire_recv(fd, rep, SESS_TIMEOUT_MS) < 0) {
		fprintf(stderr, "occfsctl: no answer from occfs-controld: %s\n",
			strerror(e ? -e : ECONNRESET));
		goto out;
	}
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	json_decref(req);
	return rc;
}

/* Print a refusal; 1 if the reply is one, else 0. */
static int sess_failed(json_t *rep)
{
	if (ctl_wire_bool(rep, "ok", 0))
		return 0;
	fprintf(stderr, "occfsctl: %s: %s\n", ctl_wire_str(rep, "error", "E?"),
		ctl_wire_str(rep, "message", "refused"));
	return 1;
}

static void sess_print_json(json_t *rep)
{
	json_object_del(rep, "handle");
	json_dumpf(rep, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
	putchar('\n');
}

static const char *sess_time(long long t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!t || !gmtime_r(&tt, &tm) ||
	    !strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(buf, len, "-");
	return buf;
}

/* Generic end: the reply, or a line about what the brokers did. */
static int sess_done(const struct sess_opts *o, json_t *rep, const char *what)
{
	int failed = sess_failed(rep);

	if (o->json)
		sess_print_json(rep);
	else if (!failed)
		printf("%s: %lld connections cut, %lld of %lld brokers "
		       "acknowledged in %lld ms%s\n",
		       what, ctl_wire_int(rep, "cut", 0),
		       ctl_wire_int(rep, "acked", 0),
		       ctl_wire_int(rep, "brokers", 0),
		       ctl_wire_int(rep, "ms", 0),
		       json_object_get(rep, "flushed")
			   ? (ctl_wire_bool(rep, "flushed", 0)
				  ? "; staged data flushed"
				  : "; staged data NOT confirmed flushed")
			   : "");
	json_decref(rep);
	return failed;
}

/* ---- create ------------------------------------------------------------- */

static int sess_write_handle(const char *path, const char *jwt)
{
	size_t len = strlen(jwt), off = 0;
	ssize_t n;
	int fd;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		  0600);
	if (fd < 0)
		return -errno;
	while (off < len) {
		n = write(fd, jwt + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			close(fd);
			unlink(path);
			return -EIO;
		}
		off += (size_t)n;
	}
	if (fsync(fd) < 0 || close(fd) < 0) {
		unlink(path);
		return -EIO;
	}
	return 0;
}

static int sess_create(int argc, char **argv)
{
	struct sess_opts o;
	char abs[4096];
	json_t *req, *rep;
	const char *jwt;
	int rc;

	if ((rc = sess_parse(argc, argv, &o)))
		return rc > 0 ? 0 : rc;
	if (!o.fsid || !o.out || optind != argc)
		return sess_usage_error("create needs --fsid and --handle-out");
	if (o.out[0] != '/' && getcwd(abs, sizeof(abs)) &&
	    strlen(abs) + strlen(o.out) + 2 < sizeof(abs)) {
		strcat(abs, "/");
		strcat(abs, o.out);
	} else {
		snprintf(abs, sizeof(abs), "%s", o.out);
	}
	/* Refuse before asking, so no handle is minted for nothing. */
	if (access(o.out, F_OK) == 0) {
		fprintf(stderr, "occfsctl: %s exists; not overwriting\n",
			o.out);
		return 1;
	}
	req = json_pack("{s:s, s:s, s:s, s:I, s:s}", "op", CTL_OP_CREATE,
			"fsid", o.fsid, "intent", o.intent ? o.intent : "write",
			"ttl", (json_int_t)o.ttl, "handle_path",
			o.guest_handle ? o.guest_handle : abs);
	if (req && o.tenant)
		json_object_set_new(req, "tenant", json_string(o.tenant));
	if (req && o.mountpoint)
		json_object_set_new(req, "mountpoint",
				    json_string(o.mountpoint));
	if (req && o.endpoint)
		json_object_set_new(req, "endpoint", json_string(o.endpoint));
	if (sess_call(&o, req, &rep))
		return 1;
	if (sess_failed(rep)) {
		json_decref(rep);
		return 1;
	}
	jwt = ctl_wire_str(rep, "handle", NULL);
	rc = jwt ? sess_write_handle(o.out, jwt) : -EBADMSG;
	if (rc) {
		fprintf(stderr, "occfsctl: cannot write the handle to %s: %s\n",
			o.out, strerror(-rc));
		json_decref(rep);
		return 1;
	}
	json_object_set_new(rep, "handle_file", json_string(abs));
	if (o.json) {
		sess_print_json(rep);
	} else {
		json_t *s = json_object_get(rep, "session");
		char t[40];

		printf("session  %s\n", ctl_wire_str(s, "sid", "?"));
		printf("fsid     %s (%s), expires %s\n",
		       ctl_wire_str(s, "fsid", "?"),
		       ctl_wire_str(s, "intent", "?"),
		       sess_time(ctl_wire_int(s, "exp", 0), t, sizeof(t)));
		printf("handle   %s (mode 0600)\n", abs);
		printf("mount    %s\n", ctl_wire_str(rep, "mount", ""));
		printf("fstab    %s\n", ctl_wire_str(rep, "fstab", ""));
	}
	json_decref(rep);
	return 0;
}

/* ---- list, status -------------------------------------------------------- */

static void sess_print_state(json_t *rep)
{
	json_t *brokers = json_object_get(rep, "brokers"), *b;
	char t[40];
	size_t i;

	if (ctl_wire_bool(rep, "kill", 0))
		printf(
		    "kill-switch ENGAGED (since %s): every session refused\n",
		    sess_time(ctl_wire_int(rep, "not_before", 0), t,
			      sizeof(t)));
	else
		printf("kill-switch off\n");
	printf("brokers  %zu connected\n", json_array_size(brokers));
	json_array_foreach(brokers, i, b)
	    printf("  %s%s\n", ctl_wire_str(b, "name", "?"),
		   ctl_wire_bool(b, "synced", 0) ? "" : " (syncing)");
}

static int sess_list(int argc, char **argv)
{
	struct sess_opts o;
	json_t *rep, *s;
	char t[40];
	size_t i;
	int rc;

	if ((rc = sess_parse(argc, argv, &o)))
		return rc > 0 ? 0 : rc;
	if (optind != argc)
		return sess_usage_error("list takes no arguments");
	if (sess_call(&o,
		      json_pack("{s:s, s:b}", "op", CTL_OP_LIST, "all", o.all),
		      &rep))
		return 1;
	if (sess_failed(rep) || o.json) {
		rc = !ctl_wire_bool(rep, "ok", 0);
		if (!rc)
			sess_print_json(rep);
		json_decref(rep);
		return rc;
	}
	printf("%-32s  %-20s  %-7s  %-9s  %s\n", "SID", "FSID", "INTENT",
	       "STATE", "EXPIRES");
	json_array_foreach(json_object_get(rep, "sessions"), i, s)
	    printf("%-32s  %-20s  %-7s  %-9s  %s\n", ctl_wire_str(s, "sid", ""),
		   ctl_wire_str(s, "fsid", ""), ctl_wire_str(s, "intent", ""),
		   ctl_wire_str(s, "state", ""),
		   sess_time(ctl_wire_int(s, "exp", 0), t, sizeof(t)));
	sess_print_state(rep);
	json_decref(rep);
	return 0;
}

static int sess_status(int argc, char **argv)
{
	struct sess_opts o;
	json_t *rep;
	int rc;

	if ((rc = sess_parse(argc, argv, &o)))
		return rc > 0 ? 0 : rc;
	if (sess_call(&o, json_pack("{s:s}", "op", CTL_OP_STATUS), &rep))
		return 1;
	rc = sess_failed(rep);
	if (!rc && o.json)
		sess_print_json(rep);
	else if (!rc)
		sess_print_state(rep);
	json_decref(rep);
	return rc;
}

/* ---- revoke, destroy, kill-switch, quota -------------------------------- */

static int sess_end(int argc, char **argv, const char *op, const char *what)
{
	struct sess_opts o;
	json_t *req, *rep;
	int rc;

	if ((rc = sess_parse(argc, argv, &o)))
		return rc > 0 ? 0 : rc;
	if (o.jti && optind == argc && strcmp(op, CTL_OP_REVOKE) == 0)
		req = json_pack("{s:s, s:s}", "op", op, "jti", o.jti);
	else if (!o.jti && optind + 1 == argc)
		req = json_pack("{s:s, s:s}", "op", op, "sid", argv[optind]);
	else
		return sess_usage_error("give one SID (or revoke --jti JTI)");
	if (sess_call(&o, req, &rep))
		return 1;
	return sess_done(&o, rep, what);
}

static int sess_destroy(int argc, char **argv)
{
	return sess_end(argc, argv, CTL_OP_DESTROY, "destroyed");
}

static int sess_revoke(int argc, char **argv)
{
	return sess_end(argc, argv, CTL_OP_REVOKE, "revoked");
}

static int sess_kill(int argc, char **argv, int on)
{
	struct sess_opts o;
	json_t *rep;
	int rc;

	if ((rc = sess_parse(argc, argv, &o)))
		return rc > 0 ? 0 : rc;
	if (optind != argc)
		return sess_usage_error("no arguments expected");
	if (sess_call(
		&o,
		json_pack("{s:s}", "op", on ? CTL_OP_REVOKE_ALL : CTL_OP_LIFT),
		&rep))
		return 1;
	return sess_done(&o, rep,
			 on ? "kill-switch engaged" : "kill-switch lifted");
}

int occfsctl_session_revoke_all(int argc, char **argv)
{
	return sess_kill(argc, argv, 1);
}

static int sess_lift(int argc, char **argv)
{
	return sess_kill(argc, argv, 0);
}

static int sess_quota(int argc, char **argv)
{
	struct sess_opts o;
	json_t *req, *rep;
	int rc;

	if ((rc = sess_parse(argc, argv, &o)))
		return rc > 0 ? 0 : rc;
	if ((!o.fsid) == (optind == argc) ||
	    optind + (o.fsid ? 0 : 1) != argc ||
	    (!o.clear && (o.bytes < 0 || o.inodes < 0)))
		return sess_usage_error(
		    "quota needs SID or --fsid, and --bytes "
		    "and --inodes (0: no limit) or "
		    "--clear");
	req = json_pack("{s:s, s:I, s:I, s:b}", "op", CTL_OP_QUOTA, "bytes",
			(json_int_t)(o.bytes < 0 ? 0 : o.bytes), "inodes",
			(json_int_t)(o.inodes < 0 ? 0 : o.inodes), "clear",
			o.clear);
	if (req)
		json_object_set_new(
		    req, o.fsid ? "fsid" : "sid",
		    json_string(o.fsid ? o.fsid : argv[optind]));
	if (sess_call(&o, req, &rep))
		return 1;
	return sess_done(&o, rep, "quota set");
}

/* ---- dispatch --------------------------------------------------------------
 */

static const struct {
	const char *name;
	int (*run)(int argc, char **argv);
} sess_cmds[] = {
    {"create", sess_create}, {"list", sess_list},
    {"status", sess_status}, {"destroy", sess_destroy},
    {"revoke", sess_revoke}, {"revoke-all", occfsctl_session_revoke_all},
    {"lift", sess_lift},     {"quota", sess_quota},
};

int occfsctl_session(int argc, char **argv)
{
	size_t i;

	if (argc < 2)
		return sess_usage_error("a session command is needed");
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		sess_usage(stdout);
		return 0;
	}
	for (i = 0; i < sizeof(sess_cmds) / sizeof(sess_cmds[0]); i++)
		if (strcmp(argv[1], sess_cmds[i].name) == 0)
			return sess_cmds[i].run(argc - 1, argv + 1);
	return sess_usage_error("unknown session command");
}
