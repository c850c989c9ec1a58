/*
 * controld.c - occfs-controld: options, start-up, the event loop.
 *
 * Start-up order follows brokerfs: policy, signing key, store, audit spool
 * and both sockets are set up while stderr is the terminal, so every
 * problem reaches the operator; then the process forks (unless -f) and the
 * parent exits with the child's start-up status.  SIGHUP reloads the
 * policy (operators, limits, the key stays), SIGTERM/SIGINT stop.
 */
#include "controld.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "audit.h"
#include "ctl_wire.h"
#include "daemon.h"
#include "log.h"
#include "token.h"

#define CTLD_READ_CHUNK 65536u

long long ctld_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void ctld_usage(FILE *f)
{
	fprintf(f,
		"usage: occfs-controld --policy DIR [options]\n"
		"  --policy DIR            policy files (tokens.private_key, "
		"operators)\n"
		"  --state DIR             session table and denylist (default "
		"%s)\n"
		"  --operator-socket PATH  occfsctl's socket (default %s)\n"
		"  --operator-mode MODE    its mode (default 0600)\n"
		"  --control-socket PATH   brokers connect here (default %s)\n"
		"  --endpoint EP           the broker as guests reach it, for "
		"mount lines\n"
		"                          (default %s)\n"
		"  --audit-socket PATH     occfs-auditd (default: the policy's "
		"audit.socket)\n"
		"  --audit-spool DIR       audit spool (default %s)\n"
		"  --ack-timeout MS        wait for brokers (default %u)\n"
		"  --pidfile FILE\n"
		"  -f, --foreground        do not daemonize; log to stderr\n"
		"  -n, --check             check the configuration and exit\n"
		"  -v, --verbose\n",
		CTLD_DEFAULT_STATE, CTL_DEFAULT_OPERATOR_SOCKET,
		CTL_DEFAULT_CONTROL_SOCKET, CTLD_DEFAULT_ENDPOINT,
		CTLD_DEFAULT_SPOOL, CTLD_DEFAULT_ACK_MS);
}

static int ctld_parse_uint(const char *s, int base, unsigned max, unsigned *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, base);
	if (errno || end == s || *end || v > max)
		return -1;
	*out = (unsigned)v;
	return 0;
}

/* 0 to run, 1 to exit 0, -1 to exit 1. */
static int ctld_options(struct ctld_config *cfg, int argc, char **argv)
{
	static const struct option lo[] = {
	    {"policy", required_argument, NULL, 'p'},
	    {"state", required_argument, NULL, 's'},
	    {"operator-socket", required_argument, NULL, 'o'},
	    {"operator-mode", required_argument, NULL, 'M'},
	    {"control-socket", required_argument, NULL, 'c'},
	    {"endpoint", required_argument, NULL, 'e'},
	    {"audit-socket", required_argument, NULL, 'A'},
	    {"audit-spool", required_argument, NULL, 'S'},
	    {"ack-timeout", required_argument, NULL, 'T'},
	    {"pidfile", required_argument, NULL, 'P'},
	    {"foreground", no_argument, NULL, 'f'},
	    {"check", no_argument, NULL, 'n'},
	    {"verbose", no_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0}};
	int c;

	memset(cfg, 0, sizeof(*cfg));
	cfg->state_dir = CTLD_DEFAULT_STATE;
	cfg->operator_socket = CTL_DEFAULT_OPERATOR_SOCKET;
	cfg->control_socket = CTL_DEFAULT_CONTROL_SOCKET;
	cfg->audit_spool = CTLD_DEFAULT_SPOOL;
	cfg->endpoint = CTLD_DEFAULT_ENDPOINT;
	cfg->operator_mode = 0600;
	cfg->ack_timeout_ms = CTLD_DEFAULT_ACK_MS;
	while ((c = getopt_long(argc, argv, "fnvh", lo, NULL)) != -1) {
		switch (c) {
		case 'p':
			cfg->policy_dir = optarg;
			break;
		case 's':
			cfg->state_dir = optarg;
			break;
		case 'o':
			cfg->operator_socket = optarg;
			break;
		case 'c':
			cfg->control_socket = optarg;
			break;
		case 'e':
			cfg->endpoint = optarg;
			break;
		case 'A':
			cfg->audit_socket = optarg;
			break;
		case 'S':
			cfg->audit_spool = optarg;
			break;
		case 'P':
			cfg->pidfile = optarg;
			break;
		case 'f':
			cfg->foreground = 1;
			break;
		case 'n':
			cfg->check_only = 1;
			break;
		case 'v':
			cfg->verbose = 1;
			break;
		case 'M':
			if (ctld_parse_uint(optarg, 8, 0777,
					    &cfg->operator_mode)) {
				fprintf(stderr, "occfs-controld: bad mode %s\n",
					optarg);
				return -1;
			}
			break;
		case 'T':
			if (ctld_parse_uint(optarg, 10, 600000,
					    &cfg->ack_timeout_ms) ||
			    cfg->ack_timeout_ms < 10) {
				fprintf(stderr,
					"occfs-controld: bad --ack-timeout\n");
				return -1;
			}
			break;
		case 'h':
			ctld_usage(stdout);
			return 1;
		default:
			ctld_usage(stderr);
			return -1;
		}
	}
	if (optind != argc || !cfg->policy_dir) {
		fprintf(stderr, "occfs-controld: --policy DIR is required\n");
		ctld_usage(stderr);
		return -1;
	}
	return 0;
}

/* Policy and key; printing file:line:column problems.  0 or -1. */
static int ctld_load_policy(struct ctld *d)
{
	struct policy_problems probs = {0};
	struct policy *pol;
	const char *why = NULL;
	char line[1024];
	size_t i;

	pol = policy_load(d->cfg.policy_dir, NULL, &probs);
	if (!pol) {
		for (i = 0; i < probs.n; i++) {
			policy_problem_format(&probs.v[i], line, sizeof(line));
			fprintf(stderr, "%s\n", line);
		}
		if (!probs.n)
			fprintf(stderr, "occfs-controld: %s: %s\n",
				d->cfg.policy_dir, strerror(errno));
		policy_problems_free(&probs);
		return -1;
	}
	policy_problems_free(&probs);
	if (!pol->tokens.private_key) {
		fprintf(stderr,
			"occfs-controld: %s: tokens.private_key is not "
			"set; the control plane signs handles with it\n",
			d->cfg.policy_dir);
		policy_unref(pol);
		return -1;
	}
	d->key = token_key_load_private(pol->tokens.private_key, &why);
	if (!d->key) {
		fprintf(stderr, "occfs-controld: tokens.private_key %s: %s\n",
			pol->tokens.private_key, why);
		policy_unref(pol);
		return -1;
	}
	policy_handle_init(&d->pol, pol); /* takes our reference */
	return 0;
}

static int ctld_listen(const char *path, unsigned mode)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "occfs-controld: socket path too long: %s\n",
			path);
		return -1;
	}
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	unlink(path);
	/* Created with no access, then opened up: no window for others. */
	if (fchmod(fd, 0600) < 0 ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    chmod(path, mode) < 0 || listen(fd, 128) < 0) {
		fprintf(stderr, "occfs-controld: %s: %s\n", path,
			strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static int ctld_open_audit(struct ctld *d)
{
	struct policy *pol = policy_handle_get(&d->pol);
	struct audit_config ac;

	audit_config_init(&ac);
	ac.spool_dir = d->cfg.audit_spool;
	ac.socket_path =
	    d->cfg.audit_socket ? d->cfg.audit_socket : pol->audit.socket;
	ac.product = "occfs-controld";
	d->audit = audit_open(&ac);
	policy_unref(pol);
	if (!d->audit) {
		fprintf(stderr, "occfs-controld: audit spool %s: %s\n",
			d->cfg.audit_spool, strerror(errno));
		return -1;
	}
	return 0;
}

/* ---- connections --------------------------------------------------------- */

static void ctld_watch(struct ctld *d, struct ctld_conn *c)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};

	if (c->out.len)
		ev.events |= EPOLLOUT;
	epoll_ctl(d->epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

static void ctld_flush(struct ctld *d, struct ctld_conn *c)
{
	ssize_t n;

	while (c->out.len) {
		n = write(c->fd, c->out.p, c->out.len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0) {
			ctld_close(d, c);
			return;
		}
		buf_consume(&c->out, (size_t)n);
	}
	if (!c->out.len && c->closing) {
		ctld_close(d, c);
		return;
	}
	ctld_watch(d, c);
}

int ctld_send(struct ctld *d, struct ctld_conn *c, const json_t *msg)
{
	size_t len;
	char *s;
	int rc;

	if (c->dead)
		return -ENOTCONN;
	rc = ctl_wire_encode(msg, &s, &len);
	if (!rc)
		rc = buf_append(&c->out, s, len);
	free(s);
	if (rc) {
		log_err("%s: cannot queue a message: %s", c->name,
			strerror(-rc));
		ctld_close(d, c);
		return rc;
	}
	ctld_flush(d, c);
	return 0;
}

void ctld_close(struct ctld *d, struct ctld_conn *c)
{
	if (c->dead)
		return;
	if (c->kind == CTLD_BROKER && c->hello)
		log_info("broker %s disconnected", c->name);
	c->dead = 1;
	ctld_brokers_gone(d, c);
	epoll_ctl(d->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->fd = -1;
	d->nconns--;
}

static void ctld_accept(struct ctld *d, int lfd, enum ctld_kind kind)
{
	struct epoll_event ev = {.events = EPOLLIN};
	struct ucred uc;
	socklen_t len = sizeof(uc);
	struct ctld_conn *c;
	int fd;

	while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >=
	       0) {
		if (d->nconns >= CTLD_MAX_CONNS ||
		    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) < 0 ||
		    !(c = calloc(1, sizeof(*c)))) {
			close(fd);
			continue;
		}
		c->id = ++d->next_id;
		c->fd = fd;
		c->kind = kind;
		c->uid = uc.uid;
		c->gid = uc.gid;
		c->pid = uc.pid;
		snprintf(c->name, sizeof(c->name), "uid=%u pid=%d",
			 (unsigned)uc.uid, (int)uc.pid);
		buf_init(&c->in, CTL_MAX_LINE);
		buf_init(&c->out, 0);
		ev.data.ptr = c;
		if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
			close(fd);
			free(c);
			continue;
		}
		c->next = d->conns;
		d->conns = c;
		d->nconns++;
		/* Operators are checked per request (the policy may change). */
		if (kind == CTLD_BROKER && uc.uid != 0 && uc.uid != geteuid()) {
			/* The denylist is not for everyone's eyes. */
			log_warn("control socket: refused %s (not root)",
				 c->name);
			ctld_close(d, c);
		}
	}
}

static void ctld_message(struct ctld *d, struct ctld_conn *c, json_t *msg)
{
	if (c->kind == CTLD_BROKER) {
		ctld_brokers_message(d, c, msg);
		return;
	}
	if (c->wait) {
		ctld_ops_error(d, c, EBUSY, "one request at a time");
		return;
	}
	ctld_ops_request(d, c, msg);
}

static void ctld_read(struct ctld *d, struct ctld_conn *c)
{
	const char *why = NULL;
	size_t used;
	json_t *msg;
	ssize_t n;
	int rc;

	for (;;) {
		if (buf_reserve(&c->in, CTLD_READ_CHUNK) &&
		    buf_reserve(&c->in, 1)) {
			log_warn("%s: message too long; disconnected", c->name);
			ctld_close(d, c);
			return;
		}
		n = read(c->fd, c->in.p + c->in.len, c->in.cap - c->in.len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0) {
			ctld_close(d, c);
			return;
		}
		c->in.len += (size_t)n;
		while (!c->dead && !c->closing &&
		       (rc = ctl_wire_decode((char *)c->in.p, c->in.len, &msg,
					     &used, &why)) != 0) {
			if (rc < 0) {
				log_warn("%s: %s; disconnected", c->name, why);
				ctld_close(d, c);
				return;
			}
			buf_consume(&c->in, used);
			ctld_message(d, c, msg);
			json_decref(msg);
		}
		if (c->dead || c->closing)
			return;
	}
}

static void ctld_reap(struct ctld *d)
{
	struct ctld_conn **pp = &d->conns, *c;

	while ((c = *pp)) {
		if (!c->dead) {
			pp = &c->next;
			continue;
		}
		*pp = c->next;
		buf_cleanup(&c->in);
		buf_cleanup(&c->out);
		free(c);
	}
}

/* ---- the loop ------------------------------------------------------------ */

static void ctld_reload(struct ctld *d)
{
	struct policy_problems probs = {0};
	char line[1024];
	size_t i;

	if (policy_handle_reload(&d->pol, d->cfg.policy_dir, NULL, &probs)) {
		for (i = 0; i < probs.n; i++) {
			policy_problem_format(&probs.v[i], line, sizeof(line));
			log_err("policy reload refused: %s", line);
		}
	} else {
		log_info("policy reloaded (the signing key is kept)");
	}
	policy_problems_free(&probs);
}

static void ctld_signal(struct ctld *d)
{
	struct signalfd_siginfo si;

	while (read(d->sigfd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			ctld_reload(d);
		} else {
			log_info("%s: stopping", strsignal((int)si.ssi_signo));
			d->stopping = 1;
		}
	}
}

static void ctld_tick(struct ctld *d)
{
	uint64_t n;
	int64_t now = time(NULL);

	if (read(d->timerfd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		log_err("timerfd: %m");
	ctld_brokers_tick(d);
	if (now - d->last_prune >= 60) {
		d->last_prune = now;
		ctld_store_deny_prune(d->store, now);
	}
}

/* Blocked before any thread starts (the audit spool's), so that only the
 * signalfd sees them. */
static void ctld_sigset(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, set, NULL);
	signal(SIGPIPE, SIG_IGN);
}

static int ctld_init_loop(struct ctld *d)
{
	struct itimerspec its = {.it_interval = {0, 100000000},
				 .it_value = {0, 100000000}};
	struct epoll_event ev = {.events = EPOLLIN};
	sigset_t set;

	ctld_sigset(&set);
	d->epfd = epoll_create1(EPOLL_CLOEXEC);
	d->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	d->timerfd =
	    timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (d->epfd < 0 || d->sigfd < 0 || d->timerfd < 0 ||
	    timerfd_settime(d->timerfd, 0, &its, NULL) < 0)
		return -errno;
	ev.data.ptr = &d->op_lfd;
	epoll_ctl(d->epfd, EPOLL_CTL_ADD, d->op_lfd, &ev);
	ev.data.ptr = &d->ctl_lfd;
	epoll_ctl(d->epfd, EPOLL_CTL_ADD, d->ctl_lfd, &ev);
	ev.data.ptr = &d->sigfd;
	epoll_ctl(d->epfd, EPOLL_CTL_ADD, d->sigfd, &ev);
	ev.data.ptr = &d->timerfd;
	epoll_ctl(d->epfd, EPOLL_CTL_ADD, d->timerfd, &ev);
	return 0;
}

static void ctld_run(struct ctld *d)
{
	struct epoll_event ev[32];
	struct ctld_conn *c;
	int i, n;

	while (!d->stopping) {
		n = epoll_wait(d->epfd, ev, 32, -1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			fatal("epoll_wait: %m");
		for (i = 0; i < n; i++) {
			void *p = ev[i].data.ptr;

			if (p == &d->op_lfd) {
				ctld_accept(d, d->op_lfd, CTLD_OPERATOR);
			} else if (p == &d->ctl_lfd) {
				ctld_accept(d, d->ctl_lfd, CTLD_BROKER);
			} else if (p == &d->sigfd) {
				ctld_signal(d);
			} else if (p == &d->timerfd) {
				ctld_tick(d);
			} else {
				c = p;
				if (!c->dead && (ev[i].events & EPOLLOUT))
					ctld_flush(d, c);
				if (!c->dead &&
				    (ev[i].events &
				     (EPOLLIN | EPOLLHUP | EPOLLERR)))
					ctld_read(d, c);
			}
		}
		ctld_reap(d);
	}
}

/* ---- start-up ------------------------------------------------------------ */

static void ctld_cleanup(struct ctld *d)
{
	struct ctld_conn *c;

	for (c = d->conns; c; c = c->next)
		ctld_close(d, c);
	ctld_reap(d);
	if (d->audit)
		audit_close(d->audit, 2000);
	ctld_store_close(d->store);
	token_key_free(d->key);
	if (d->pol.cur)
		policy_handle_cleanup(&d->pol);
	if (d->op_lfd >= 0) {
		close(d->op_lfd);
		unlink(d->cfg.operator_socket);
	}
	if (d->ctl_lfd >= 0) {
		close(d->ctl_lfd);
		unlink(d->cfg.control_socket);
	}
	if (d->cfg.pidfile)
		unlink(d->cfg.pidfile);
	if (d->epfd >= 0)
		close(d->epfd);
}

int main(int argc, char **argv)
{
	static struct ctld d;
	sigset_t set;
	char why[512];
	FILE *f;
	int rc;

	d.op_lfd = d.ctl_lfd = d.epfd = d.sigfd = d.timerfd = -1;
	rc = ctld_options(&d.cfg, argc, argv);
	if (rc)
		return rc > 0 ? 0 : 1;
	log_init("occfs-controld", d.cfg.verbose);
	if (ctld_load_policy(&d))
		return 1;
	if (d.cfg.check_only) {
		printf("occfs-controld: configuration OK\n");
		ctld_cleanup(&d);
		return 0;
	}
	d.store = ctld_store_open(d.cfg.state_dir, why, sizeof(why));
	if (!d.store) {
		fprintf(stderr, "occfs-controld: state: %s\n", why);
		goto fail;
	}
	d.op_lfd = ctld_listen(d.cfg.operator_socket, d.cfg.operator_mode);
	d.ctl_lfd = ctld_listen(d.cfg.control_socket, 0600);
	if (d.op_lfd < 0 || d.ctl_lfd < 0)
		goto fail;
	if (!d.cfg.foreground)
		daemon_start("occfs-controld");
	/* The spool's threads must start in the process that stays. */
	ctld_sigset(&set);
	if (ctld_open_audit(&d)) {
		daemon_ready("cannot open the audit spool");
		goto fail;
	}
	if (d.cfg.pidfile && (f = fopen(d.cfg.pidfile, "we"))) {
		fprintf(f, "%d\n", (int)getpid());
		fclose(f);
	}
	if (ctld_init_loop(&d)) {
		daemon_ready("cannot set up the event loop");
		goto fail;
	}
	log_info("operator socket %s, control socket %s", d.cfg.operator_socket,
		 d.cfg.control_socket);
	daemon_ready(NULL);
	ctld_run(&d);
	ctld_cleanup(&d);
	return 0;
fail:
	ctld_cleanup(&d);
	return 1;
}
