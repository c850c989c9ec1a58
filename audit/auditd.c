/*
 * auditd.c - occfs-auditd: receives OCSF events from every zone on a unix
 * socket and appends them to the hash-chained log (see audit_wire.h for
 * the framing and audit_log.h for the log).
 *
 * One poll loop.  Each turn it reads whatever frames clients sent, checks
 * and appends them, then fsyncs the log once and only then queues the
 * acknowledgements: an acknowledged record is durable, so the emitter may
 * drop it from its spool.  A bad record is refused (status EINVAL) with a
 * log line; a bad frame length closes that connection.  SIGTERM/SIGINT
 * flush and close the segment; SIGHUP reopens the file sink.
 */
#include "audit_wire.h"
#include "auditd.h"
#include "buf.h"
#include "log.h"
#include "policy.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_CLIENTS_DEFAULT 256
#define OUT_LIMIT (64 * 1024)

struct client {
	int fd;
	pid_t pid;
	uid_t uid;
	struct buf in;
	struct buf out;
	size_t held;	       /* acks waiting for the next fsync */
	uint8_t held_st[1024]; /* their statuses: 0 or EINVAL */
	int dead;
};

struct opts {
	const char *socket;
	const char *dir;
	unsigned mode;
	const char *group;
	unsigned max_clients;
	int check;
	const char *policy_dir; /* --policy: the audit section fills the rest */
	int set_socket, set_dir, set_segment; /* given on the command line */
};

static struct auditd_store store;
static struct auditd_sinks sinks;
static struct client *clients;
static size_t nclients;

static void usage(void)
{
	fprintf(stderr,
		"usage: occfs-auditd [-n] [-v] [-s SOCKET] [-d DIR] [-m MODE] "
		"[-g GROUP]\n"
		"  [--segment-size BYTES] [--segment-age SECONDS] "
		"[--zstd-level N]\n"
		"  [--syslog] [--file-sink PATH] [--max-clients N] "
		"[--policy DIR]\n");
	exit(2);
}

static unsigned long long parse_size(const char *s)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		fatal("bad size: %s", s);
	switch (*end) {
	case 'k':
	case 'K':
		v <<= 10;
		end++;
		break;
	case 'm':
	case 'M':
		v <<= 20;
		end++;
		break;
	case 'g':
	case 'G':
		v <<= 30;
		end++;
		break;
	}
	if (*end)
		fatal("bad size: %s", s);
	return v;
}

static void parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
	    {"socket", 1, NULL, 's'},	    {"dir", 1, NULL, 'd'},
	    {"mode", 1, NULL, 'm'},	    {"group", 1, NULL, 'g'},
	    {"segment-size", 1, NULL, 'S'}, {"segment-age", 1, NULL, 'A'},
	    {"zstd-level", 1, NULL, 'Z'},   {"syslog", 0, NULL, 'L'},
	    {"file-sink", 1, NULL, 'F'},    {"max-clients", 1, NULL, 'C'},
	    {"policy", 1, NULL, 'P'},	    {"verbose", 0, NULL, 'v'},
	    {"help", 0, NULL, 'h'},	    {NULL, 0, NULL, 0}};
	int c, verbose = 0;

	while ((c = getopt_long(argc, argv, "s:d:m:g:nvfh", lo, NULL)) != -1) {
		switch (c) {
		case 's':
			o->socket = optarg;
			o->set_socket = 1;
			break;
		case 'd':
			o->dir = optarg;
			o->set_dir = 1;
			break;
		case 'P':
			o->policy_dir = optarg;
			break;
		case 'm':
			o->mode = strtoul(optarg, NULL, 8) & 0777;
			break;
		case 'g':
			o->group = optarg;
			break;
		case 'S':
			store.seg_max = parse_size(optarg);
			o->set_segment = 1;
			break;
		case 'A':
			store.seg_age = parse_size(optarg);
			break;
		case 'Z':
			store.zlevel = atoi(optarg);
			break;
		case 'L':
			sinks.syslog = 1;
			break;
		case 'F':
			sinks.path = optarg;
			break;
		case 'C':
			o->max_clients = parse_size(optarg);
			break;
		case 'n':
			o->check = 1;
			break;
		case 'v':
			verbose = 1;
			break;
		case 'f':
			break; /* always in the foreground */
		default:
			usage();
		}
	}
	if (optind != argc || store.seg_max < 4096 || !o->max_clients)
		usage();
	log_init("occfs-auditd", verbose);
}

/*
 * --policy DIR: the shared policy files (occfs-policy(5)).  Their audit
 * section gives the socket, the log directory and the segment size where
 * the command line did not; a policy with problems stops the daemon (-n
 * prints them), as every occfs daemon does.  The policy stays loaded: the
 * strings point into it.
 */
static void policy_settings(struct opts *o)
{
	struct policy_problems probs = {0};
	struct policy *pol;
	char line[1024];
	size_t i;

	if (!o->policy_dir)
		return;
	pol = policy_load(o->policy_dir, NULL, &probs);
	if (!pol) {
		for (i = 0; i < probs.n; i++) {
			policy_problem_format(&probs.v[i], line, sizeof(line));
			fprintf(stderr, "%s\n", line);
		}
		if (!probs.n)
			fprintf(stderr, "occfs-auditd: policy %s: %s\n",
				o->policy_dir, strerror(errno));
		policy_problems_free(&probs);
		exit(1);
	}
	policy_problems_free(&probs);
	if (!o->set_socket && pol->audit.socket)
		o->socket = pol->audit.socket;
	if (!o->set_dir && pol->audit.log_dir)
		o->dir = pol->audit.log_dir;
	if (!o->set_segment && pol->audit.segment_max_bytes)
		store.seg_max = pol->audit.segment_max_bytes;
}

static int listen_on(const struct opts *o)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct group *g;
	int fd;

	if (strlen(o->socket) >= sizeof(sa.sun_path))
		fatal("%s: path too long", o->socket);
	strcpy(sa.sun_path, o->socket);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		fatal("socket: %m");
	unlink(o->socket);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		fatal("%s: %m", o->socket);
	if (chmod(o->socket, o->mode) < 0)
		fatal("%s: %m", o->socket);
	if (o->group) {
		g = getgrnam(o->group);
		if (!g)
			fatal("unknown group %s", o->group);
		if (chown(o->socket, -1, g->gr_gid) < 0)
			fatal("%s: %m", o->socket);
	}
	if (listen(fd, 64) < 0)
		fatal("listen: %m");
	return fd;
}

static void accept_one(int lfd, unsigned max)
{
	struct ucred cr;
	socklen_t cl = sizeof(cr);
	struct client *c;
	int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (fd < 0)
		return;
	if (nclients >= max) {
		log_warn("too many emitters connected; refusing one");
		close(fd);
		return;
	}
	c = &clients[nclients++];
	memset(c, 0, sizeof(*c));
	c->fd = fd;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &cl) == 0) {
		c->pid = cr.pid;
		c->uid = cr.uid;
	}
	buf_init(&c->in, AUDIT_FRAME_HDR + AUDIT_FRAME_MAX);
	buf_init(&c->out, OUT_LIMIT);
	log_debug("emitter connected: pid %d uid %u", (int)c->pid,
		  (unsigned)c->uid);
}

static void one_record(struct client *c, const uint8_t *p, size_t len)
{
	char why[200], *json;
	int r;

	json = auditd_validate(p, len, why, sizeof(why));
	if (!json) {
		log_warn("refused a record from pid %d uid %u: %s", (int)c->pid,
			 (unsigned)c->uid, why);
		c->held_st[c->held++] = EINVAL;
		return;
	}
	r = auditd_store_append(&store, json, strlen(json));
	if (r < 0) {
		/* Not stored: drop the connection unacknowledged so the
		 * emitter keeps the record and sends it again. */
		log_err("cannot append to the log: %s", strerror(-r));
		c->dead = 1;
	} else {
		auditd_sink_put(&sinks, json, strlen(json));
		c->held_st[c->held++] = 0;
	}
	free(json);
}

/* Read and handle what c sent; frames stop at the ack table size. */
static void read_client(struct client *c)
{
	size_t room;
	ssize_t n = 0;
	long f = 0;

	while (!c->dead && c->held < sizeof(c->held_st)) {
		room = c->in.limit - c->in.len;
		if (room > 16384)
			room = 16384;
		n = 0;
		if (room && buf_reserve(&c->in, room) == 0) {
			n = read(c->fd, c->in.p + c->in.len, room);
			if (n == 0 ||
			    (n < 0 && errno != EAGAIN && errno != EINTR)) {
				c->dead = 1;
				break;
			}
			if (n > 0)
				c->in.len += n;
		}
		while (c->held < sizeof(c->held_st) &&
		       (f = audit_wire_frame(c->in.p, c->in.len)) > 0) {
			one_record(c, c->in.p + AUDIT_FRAME_HDR,
				   f - AUDIT_FRAME_HDR);
			buf_consume(&c->in, f);
		}
		if (f < 0) {
			log_warn("bad frame length from pid %d uid %u; "
				 "closing the connection",
				 (int)c->pid, (unsigned)c->uid);
			c->dead = 1;
		}
		if (n <= 0)
			break;
	}
}

static void queue_acks(struct client *c)
{
	uint8_t a[4];
	size_t i;

	for (i = 0; i < c->held && !c->dead; i++) {
		audit_wire_put32(a, c->held_st[i]);
		if (buf_append(&c->out, a, 4) < 0)
			c->dead = 1; /* it does not read its acks */
	}
	c->held = 0;
}

static void write_client(struct client *c)
{
	ssize_t n;

	if (!c->out.len || c->dead)
		return;
	n = send(c->fd, c->out.p, c->out.len, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (n > 0)
		buf_consume(&c->out, n);
	else if (n < 0 && errno != EAGAIN && errno != EINTR)
		c->dead = 1;
}

static void reap(void)
{
	size_t i = 0;

	while (i < nclients) {
		if (!clients[i].dead) {
			i++;
			continue;
		}
		close(clients[i].fd);
		buf_cleanup(&clients[i].in);
		buf_cleanup(&clients[i].out);
		clients[i] = clients[--nclients];
	}
}

/* After reading: one fsync for everything appended, then the acks. */
static void commit(void)
{
	size_t i;
	int r = auditd_store_sync(&store);

	if (r < 0)
		log_err("fsync of the log failed: %s; dropping connections "
			"unacknowledged",
			strerror(-r));
	auditd_sink_flush(&sinks);
	for (i = 0; i < nclients; i++) {
		if (r < 0 && clients[i].held)
			clients[i].dead = 1;
		queue_acks(&clients[i]);
		write_client(&clients[i]);
	}
	r = auditd_store_maybe_rotate(&store, 0);
	if (r < 0)
		log_err("rotation failed: %s", strerror(-r));
}

static int handle_signal(int sfd)
{
	struct signalfd_siginfo si;

	if (read(sfd, &si, sizeof(si)) != sizeof(si))
		return 0;
	if (si.ssi_signo == SIGHUP) {
		log_info("SIGHUP: reopening sinks");
		auditd_sink_reopen(&sinks);
		return 0;
	}
	return 1;
}

static void serve(int lfd, int sfd, unsigned max)
{
	struct pollfd *pfd = calloc(max + 2, sizeof(*pfd));
	size_t i, np;
	int stop = 0, busy;

	if (!pfd)
		fatal("out of memory");
	while (!stop) {
		pfd[0] = (struct pollfd){sfd, POLLIN, 0};
		pfd[1] = (struct pollfd){lfd, POLLIN, 0};
		for (i = 0; i < nclients; i++)
			pfd[i + 2] = (struct pollfd){
			    clients[i].fd,
			    POLLIN | (clients[i].out.len ? POLLOUT : 0), 0};
		np = nclients;
		/* Frames left over when the ack table filled: no wait. */
		for (i = 0, busy = 0; i < np; i++)
			busy |= audit_wire_frame(clients[i].in.p,
						 clients[i].in.len) > 0;
		if (poll(pfd, np + 2, busy ? 0 : 1000) < 0 && errno != EINTR)
			fatal("poll: %m");
		if (pfd[0].revents & POLLIN)
			stop = handle_signal(sfd);
		for (i = 0; i < np; i++) {
			if ((pfd[i + 2].revents &
			     (POLLIN | POLLHUP | POLLERR)) ||
			    audit_wire_frame(clients[i].in.p,
					     clients[i].in.len) > 0)
				read_client(&clients[i]);
			if (pfd[i + 2].revents & POLLOUT)
				write_client(&clients[i]);
		}
		commit();
		reap();
		if (pfd[1].revents & POLLIN)
			accept_one(lfd, max);
	}
	free(pfd);
}

int main(int argc, char **argv)
{
	struct opts o = {.socket = AUDIT_DEFAULT_SOCKET,
			 .dir = "/var/log/occfs/audit",
			 .mode = 0600,
			 .max_clients = MAX_CLIENTS_DEFAULT};
	sigset_t set;
	int lfd, sfd, r;

	store.seg_max = 64ull << 20;
	store.seg_age = 86400;
	store.zlevel = 3;
	parse_opts(argc, argv, &o);
	policy_settings(&o);
	r = auditd_store_open(&store, o.dir);
	if (r < 0)
		fatal("%s: %s", o.dir, strerror(-r));
	if (o.check) {
		printf("%s: chain at record %llu\n", o.dir,
		       (unsigned long long)store.n);
		auditd_store_close(&store);
		return 0;
	}
	if (auditd_sink_open(&sinks) < 0)
		fatal("%s: %m", sinks.path);
	clients = calloc(o.max_clients, sizeof(*clients));
	if (!clients)
		fatal("out of memory");
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	sfd = signalfd(-1, &set, SFD_CLOEXEC);
	if (sfd < 0)
		fatal("signalfd: %m");
	lfd = listen_on(&o);
	log_info("listening on %s, log %s at record %llu", o.socket, o.dir,
		 (unsigned long long)store.n);
	serve(lfd, sfd, o.max_clients);
	log_info("stopping at record %llu", (unsigned long long)store.n);
	while (nclients) {
		clients[0].dead = 1;
		reap();
	}
	auditd_store_close(&store);
	auditd_sink_close(&sinks);
	close(lfd);
	unlink(o.socket);
	free(clients);
	return 0;
}
