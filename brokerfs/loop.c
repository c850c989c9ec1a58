/*
 * loop.c - the broker's one event loop thread.
 *
 * It owns the listeners, every connection and the session state; workers
 * only ever hand finished jobs back through the done queue.  Signals arrive
 * on a signalfd so they are ordinary events: SIGHUP reloads the policy
 * (--policy), SIGTERM/SIGINT start a drained shutdown (stop accepting,
 * stop reading, let in-flight requests finish for at most BROKER_DRAIN_S
 * seconds, then close everything).  A one-second
 * timer closes connections that never say HELLO, cuts sessions whose
 * handle expired and re-arms listeners that ran out of descriptors.  With
 * --control-socket the link to occfs-controld is one more event source
 * (broker_control.c); a session that opened while a revocation arrived is
 * checked again here the moment it becomes ready.
 */
#include "broker.h"
#include "broker_control.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "datapipe.h"
#include "log.h"

#define BROKER_DRAIN_S 5 /* in-flight requests get this long at shutdown */
#define BROKER_GRACE_S 3 /* then running jobs get this long to return */
#define BROKER_ACCEPT_BATCH 32
/* Clock skew a handle's exp is given, as at HELLO (conn_req.c). */
#define BROKER_EXP_LEEWAY_S 30
#define LOOP_POLL_MISSES 8   /* polls in a row that found nothing ... */
#define LOOP_POLL_PAUSE 256u /* ... stop polling for this many sleeps */

int broker_watch(struct broker *b, int fd, struct loop_src *src, uint32_t ev,
		 int add)
{
	struct epoll_event e = {.events = ev, .data.ptr = src};

	if (epoll_ctl(b->epfd, add ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, fd, &e) <
	    0) {
		log_err("epoll_ctl: %m");
		return -errno;
	}
	return 0;
}

void broker_unwatch(struct broker *b, int fd)
{
	if (fd >= 0)
		epoll_ctl(b->epfd, EPOLL_CTL_DEL, fd, NULL);
}

int broker_listen(struct broker *b, const struct broker_config *cfg)
{
	struct transport_tls_opts tls = {.cert_file = cfg->tls_cert,
					 .key_file = cfg->tls_key};
	struct broker_listener *bl;
	const char *why = NULL;
	char name[400];
	size_t i;
	int rc;

	memset(b, 0, sizeof(*b));
	b->cfg = cfg;
	b->epfd = b->sigfd = b->timerfd = -1;
	b->pool.efd = -1;
	for (i = 0; i < cfg->nlisten; i++) {
		bl = &b->ls[i];
		bl->src.type = SRC_LISTENER;
		bl->ep = cfg->eps[i];
		transport_format(&bl->ep, name, sizeof(name));
		rc = transport_listen(&bl->ep, &tls, &bl->l, &why);
		if (rc) {
			fprintf(stderr, "brokerfs: cannot listen on %s: %s\n",
				name, why && *why ? why : strerror(-rc));
			return -1;
		}
		b->nls++;
		if (bl->ep.kind == TRANSPORT_UNIX &&
		    chmod(bl->ep.path, cfg->socket_mode) < 0) {
			fprintf(stderr, "brokerfs: chmod %s: %s\n", bl->ep.path,
				strerror(errno));
			return -1;
		}
		log_info("listening on %s", name);
	}
	return 0;
}

int broker_init(struct broker *b, struct token_key *pubkey)
{
	struct itimerspec its = {.it_interval = {1, 0}, .it_value = {1, 0}};
	sigset_t set;
	size_t i;
	int rc;

	b->pubkey = pubkey;
	b->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (b->epfd < 0)
		return -errno;
	/* Block before any thread exists so every thread inherits it. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	b->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	b->timerfd =
	    timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (b->sigfd < 0 || b->timerfd < 0 ||
	    timerfd_settime(b->timerfd, 0, &its, NULL) < 0)
		return -errno;
	b->sig_src.type = SRC_SIGNAL;
	b->timer_src.type = SRC_TIMER;
	b->done_src.type = SRC_DONE;
	if (b->cfg->no_splice)
		datapipe_disable();
	rc = worker_start(&b->pool, b->cfg->workers);
	if (rc)
		return rc;
	if ((rc = broker_watch(b, b->sigfd, &b->sig_src, EPOLLIN, 1)) ||
	    (rc = broker_watch(b, b->timerfd, &b->timer_src, EPOLLIN, 1)) ||
	    (rc = broker_watch(b, b->pool.efd, &b->done_src, EPOLLIN, 1)))
		return rc;
	for (i = 0; i < b->nls; i++) {
		rc = broker_watch(b, transport_listener_fd(b->ls[i].l),
				  &b->ls[i].src, EPOLLIN, 1);
		if (rc)
			return rc;
	}
	if (b->cfg->control_socket)
		return broker_control_start(b, b->cfg->control_socket);
	return 0;
}

static void loop_accept(struct broker *b, struct broker_listener *bl)
{
	struct transport_conn *tc;
	int i, rc;

	for (i = 0; i < BROKER_ACCEPT_BATCH; i++) {
		rc = transport_accept(bl->l, &tc);
		if (rc == -EAGAIN)
			return;
		if (rc == -EMFILE || rc == -ENFILE || rc == -ENOBUFS ||
		    rc == -ENOMEM) {
			/* Level-triggered: pause or we spin until fds free. */
			log_warn("accept: %s; pausing for a second",
				 strerror(-rc));
			broker_unwatch(b, transport_listener_fd(bl->l));
			bl->paused = 1;
			return;
		}
		if (rc)
			continue; /* the peer gave up (ECONNABORTED, ...) */
		if (b->nconns >= b->cfg->max_conns) {
			if (!b->limit_warned)
				log_warn("connection limit (%u) reached; "
					 "refusing connections",
					 b->cfg->max_conns);
			b->limit_warned = 1;
			transport_close(tc);
			continue;
		}
		if (!conn_new(b, tc, 0))
			transport_close(tc);
	}
}

static void loop_stop(struct broker *b, const char *why)
{
	struct conn *c;
	size_t i;

	if (b->stopping)
		return;
	log_info("%s: shutting down", why);
	b->stopping = 1;
	b->stop_deadline = time(NULL) + BROKER_DRAIN_S;
	for (i = 0; i < b->nls; i++) {
		transport_listener_close(b->ls[i].l);
		b->ls[i].l = NULL;
	}
	b->nls = 0;
	if (b->on_stop)
		b->on_stop();
	for (c = b->conns; c; c = c->next)
		conn_drain(c);
}

/*
 * SIGHUP: load the policy anew; sessions stay.  New sessions see all of
 * the new policy, open ones its quotas.
 */
static void loop_reload(struct broker *b)
{
	struct conn *c;

	if (!b->policy) {
		log_info("SIGHUP: no policy to reload");
		return;
	}
	if (broker_policy_reload(b->policy))
		return;
	for (c = b->conns; c; c = c->next)
		if (c->state == CONN_READY && c->sess)
			session_policy_changed(c->sess);
}

static void loop_signal(struct broker *b)
{
	struct signalfd_siginfo si;

	while (read(b->sigfd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGHUP)
			loop_reload(b);
		else
			loop_stop(b, strsignal((int)si.ssi_signo));
	}
}

/*
 * A session lives as long as its handle (past exp and the leeway HELLO
 * grants) and within the policy's idle timeout and maximum lifetime;
 * beyond that it is cut with a reason the guest logs, not left to run.
 */
static void loop_expire(struct broker *b, time_t now)
{
	const char *why;
	struct conn *c;

	for (c = b->conns; c; c = c->next) {
		if (c->state != CONN_READY || c->internal || !c->sess ||
		    c->close_after_flush)
			continue;
		if (c->sess->claims.exp &&
		    (int64_t)now > c->sess->claims.exp + BROKER_EXP_LEEWAY_S)
			conn_revoke(c, "session handle expired");
		else if ((why = session_expired(c->sess, now)))
			conn_revoke(c, why);
	}
}

static void loop_tick(struct broker *b)
{
	uint64_t n;
	struct conn *c;
	time_t now = time(NULL);
	size_t i;

	if (read(b->timerfd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		log_err("timerfd: %m");
	b->limit_warned = 0;
	for (c = b->conns; c; c = c->next)
		conn_tick(c, now);
	loop_expire(b, now);
	for (i = 0; i < b->nls; i++) {
		if (!b->ls[i].paused)
			continue;
		b->ls[i].paused = 0;
		broker_watch(b, transport_listener_fd(b->ls[i].l),
			     &b->ls[i].src, EPOLLIN, 1);
	}
}

/* Finish jobs that ran: on workers (loop_done) or here (worker.c). */
static void loop_finish(struct job *list)
{
	struct job *j, *next;
	struct conn *c;
	char why[128];
	int open;

	for (j = list; j; j = next) {
		next = j->next;
		j->next = NULL;
		c = j->conn;
		open = j->kind == JOB_OPEN;
		conn_job_done(c, j);
		/* The denylist may have changed while the session opened on
		 * a worker: both happen on this thread, so this closes the
		 * gap. */
		if (open && c->state == CONN_READY && !c->internal &&
		    broker_control_denied(&c->sess->claims, why, sizeof(why)))
			conn_revoke(c, why);
	}
}

static void loop_done(struct broker *b)
{
	loop_finish(worker_reap(&b->pool));
}

/*
 * Finishing a job may read more requests, which may run here too.  The
 * done queue is swept as well: workers do not wake the loop for a job
 * whose reply they sent themselves (worker.c), so this runs before every
 * sleep, last, and after every wake-up.
 */
static void loop_done_inline(struct broker *b)
{
	struct job *list;
	int more;

	do {
		more = 0;
		while ((list = worker_reap_inline(&b->pool))) {
			loop_finish(list);
			more = 1;
		}
		if ((list = worker_reap_quiet(&b->pool))) {
			loop_finish(list);
			more = 1;
		}
	} while (more);
}

/* Past the drain deadline: cut whatever is left. */
static int loop_deadline(struct broker *b)
{
	time_t now = time(NULL);
	struct conn *c;

	if (now < b->stop_deadline)
		return 0;
	if (!b->forced) {
		log_warn("requests still in flight after %d s; closing",
			 BROKER_DRAIN_S);
		b->forced = 1;
		for (c = b->conns; c; c = c->next)
			conn_close(c);
	}
	if (now < b->stop_deadline + BROKER_GRACE_S)
		return 0;
	log_err("%u backend jobs did not return; exiting without them",
		worker_busy(&b->pool));
	b->abandoned = 1;
	return 1;
}

static void loop_event(struct broker *b, struct epoll_event *ev)
{
	struct loop_src *src = ev->data.ptr;

	switch (src->type) {
	case SRC_LISTENER:
		if (!b->stopping)
			loop_accept(b, (struct broker_listener *)src);
		break;
	case SRC_CONN:
		conn_event((struct conn *)src, ev->events);
		break;
	case SRC_SIGNAL:
		loop_signal(b);
		break;
	case SRC_TIMER:
		loop_tick(b);
		break;
	case SRC_DONE:
		loop_done(b);
		break;
	case SRC_CONTROL:
		broker_control_event(b, src, ev->events);
		break;
	}
}

static uint64_t loop_now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/*
 * Busy-polling (--poll-us): before it sleeps, the loop polls for the next
 * event for up to poll_us.  A guest that works through files one call at
 * a time (tar, a build, creating files) sends its next request within
 * tens of microseconds of the last reply, about what waking a sleeping
 * thread costs on a virtual machine, so the loop often has it without
 * being woken; the client polls for its replies the same way (rpcc.c).
 * Bounded: at most one thread polls (this one), never while stopping, and
 * when LOOP_POLL_MISSES polls in a row find nothing (the guest is idle or
 * slower than the window) the loop sleeps at once for the next
 * LOOP_POLL_PAUSE times.  Returns what epoll_wait returned, 0 for nothing.
 */
static int loop_poll(struct broker *b, struct epoll_event *ev, int max)
{
	uint64_t end;
	int n;

	if (!b->cfg->poll_us || b->stopping)
		return 0;
	if (b->poll_pause) {
		b->poll_pause--;
		return 0;
	}
	end = loop_now_ns() + (uint64_t)b->cfg->poll_us * 1000u;
	do {
		n = epoll_wait(b->epfd, ev, max, 0);
		if (n) {
			b->poll_misses = 0;
			return n;
		}
	} while (loop_now_ns() < end);
	if (++b->poll_misses >= LOOP_POLL_MISSES) {
		b->poll_misses = 0;
		b->poll_pause = LOOP_POLL_PAUSE;
	}
	return 0;
}

int broker_run(struct broker *b)
{
	struct epoll_event ev[64];
	int i, n;

	for (;;) {
		/* Whatever ran here since (a control-link turn, a revoke)
		 * is finished before the loop may sleep. */
		loop_done_inline(b);
		if (b->stopping && (!b->conns || loop_deadline(b)))
			break;
		n = loop_poll(b, ev, 64);
		if (!n)
			n = epoll_wait(b->epfd, ev, 64, b->stopping ? 200 : -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			fatal("epoll_wait: %m");
		}
		loop_done_inline(b);
		/* Listener pointers die in loop_stop; skip their events. */
		for (i = 0; i < n; i++)
			if (!(b->stopping &&
			      ((struct loop_src *)ev[i].data.ptr)->type ==
				  SRC_LISTENER))
				loop_event(b, &ev[i]);
		loop_done_inline(b);
		conn_reap(b);
		broker_control_turn(b);
	}
	log_info("stopped");
	return 0;
}

void broker_stop(struct broker *b, const char *why)
{
	loop_stop(b, why);
}

unsigned broker_revoke(struct broker *b, const char *sid, const char *reason)
{
	struct conn *c;
	unsigned n = 0;

	for (c = b->conns; c; c = c->next) {
		if (c->state != CONN_READY || strcmp(c->sess->claims.sid, sid))
			continue;
		conn_revoke(c, reason);
		n++;
	}
	return n;
}

void broker_cleanup(struct broker *b)
{
	size_t i;

	for (i = 0; i < b->nls; i++)
		transport_listener_close(b->ls[i].l);
	b->nls = 0;
	broker_control_stop(b);
	/* A worker stuck in the backend cannot be joined; exit leaves it. */
	if (!b->abandoned)
		worker_stop(&b->pool);
	if (b->sigfd >= 0)
		close(b->sigfd);
	if (b->timerfd >= 0)
		close(b->timerfd);
	if (b->epfd >= 0)
		close(b->epfd);
	b->sigfd = b->timerfd = b->epfd = -1;
}
