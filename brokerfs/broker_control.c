/*
 * broker_control.c - the control link, brokerfs's side (broker_control.h).
 *
 * The socket lives on the event loop: one connection to occfs-controld,
 * JSON lines in both directions (controld/ctl_wire.h).  What the loop
 * learns is copied into a small table under ctl.lock, because session_open
 * runs on workers and reads it there.  A revocation is applied on the loop
 * as soon as its line is read: the matching connections get
 * SESSION_REVOKED and stop being read at once (conn_revoke), and only then
 * is the push acknowledged, so occfs-controld's answer to the operator
 * means "cut".  A destroy (flush) is acknowledged later, once the
 * sessions' backend close has finished: it first drains the session (the
 * s3 backend uploads what the guest's open files staged) and reports what
 * it could not put into the backend (broker_control_drained).
 */
#include "broker_control.h"
#include "broker.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "backend.h"
#include "ctl_wire.h"
#include "log.h"

#define CTL_BACKOFF_MIN_MS 100
#define CTL_BACKOFF_MAX_MS 2000
#define CTL_MAX_DENY 200000u /* entries kept; more is a broken peer */
#define CTL_MAX_QUOTAS 10000u
#define CTL_MAX_FLUSH 64u
#define CTL_FLUSH_MS 60000	 /* a destroy waits this long for the close */
#define CTL_FLUSH_MARGIN_MS 5000 /* of which the drain may use all but */

struct ctl_deny {
	char sid[128], jti[128];
	int64_t exp;
};

struct ctl_quota {
	char fsid[256];
	uint64_t bytes, inodes;
};

struct ctl_flush {
	uint64_t id;
	char sid[128], jti[128];
	unsigned cut;
	long long deadline;
	int left; /* lock: files the drains could not upload (or -errno) */
};

static struct {
	/* lock: everything session_open may read, on any thread */
	pthread_mutex_t lock;
	int configured; /* set once before the loop runs */
	int synced;	/* lock: connected and the state arrived */
	int kill;	/* lock */
	int64_t not_before;
	struct ctl_deny *deny; /* lock */
	size_t ndeny;
	struct ctl_quota *quotas; /* lock */
	size_t nquotas;
	/* the loop thread only */
	struct broker *b;
	char path[108];
	int fd, timerfd;
	struct loop_src src, tsrc;
	struct buf in, out;
	unsigned backoff_ms;
	int warned; /* the outage was logged */
	struct ctl_flush flush[CTL_MAX_FLUSH];
	size_t nflush;
} ctl = {.lock = PTHREAD_MUTEX_INITIALIZER, .fd = -1, .timerfd = -1};

static long long ctl_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the checks (any thread) ----------------------------------------------
 */

/* With ctl.lock held: why c is denied, or NULL. */
static const char *ctl_match(const struct token_claims *c)
{
	size_t i;

	if (ctl.kill)
		return "kill-switch engaged by the control plane";
	if (ctl.not_before && c->iat <= ctl.not_before)
		return "handle issued before the last kill-switch";
	for (i = 0; i < ctl.ndeny; i++) {
		if ((ctl.deny[i].sid[0] && !strcmp(ctl.deny[i].sid, c->sid)) ||
		    (ctl.deny[i].jti[0] && !strcmp(ctl.deny[i].jti, c->jti)))
			return "session revoked by the control plane";
	}
	return NULL;
}

int broker_control_denied(const struct token_claims *c, char *why, size_t len)
{
	const char *r;

	/* Only the broker's own internal mount has no exp. */
	if (!ctl.configured || !c->exp)
		return 0;
	pthread_mutex_lock(&ctl.lock);
	r = ctl_match(c);
	if (r)
		snprintf(why, len, "%s", r);
	pthread_mutex_unlock(&ctl.lock);
	return r != NULL;
}

int broker_control_admit(const struct token_claims *c, char *why, size_t len)
{
	int synced;

	if (!ctl.configured || !c->exp)
		return 0;
	pthread_mutex_lock(&ctl.lock);
	synced = ctl.synced;
	pthread_mutex_unlock(&ctl.lock);
	if (!synced) {
		snprintf(why, len,
			 "control plane unreachable: new sessions are "
			 "refused until the broker's control link is "
			 "back");
		return -EACCES;
	}
	return broker_control_denied(c, why, len) ? -EACCES : 0;
}

int broker_control_quota(const char *fsid, uint64_t *bytes, uint64_t *inodes)
{
	size_t i;
	int found = 0;

	if (!ctl.configured)
		return 0;
	pthread_mutex_lock(&ctl.lock);
	for (i = 0; i < ctl.nquotas; i++) {
		if (strcmp(ctl.quotas[i].fsid, fsid) == 0) {
			*bytes = ctl.quotas[i].bytes;
			*inodes = ctl.quotas[i].inodes;
			found = 1;
			break;
		}
	}
	pthread_mutex_unlock(&ctl.lock);
	return found;
}

/* ---- acting on open sessions (loop) ---------------------------------------
 */

static int ctl_claims_match(const struct token_claims *c, const char *sid,
			    const char *jti)
{
	return (sid[0] && !strcmp(c->sid, sid)) ||
	       (jti[0] && !strcmp(c->jti, jti));
}

/*
 * A destroy: the sessions it names drain before they close, within the
 * time the destroy waits (less a margin for the close itself).
 */
static void ctl_mark_drain(struct broker *b, const struct ctl_deny *d)
{
	uint64_t deadline =
	    (uint64_t)ctl_now_ms() + CTL_FLUSH_MS - CTL_FLUSH_MARGIN_MS;
	struct conn *c;

	for (c = b->conns; c; c = c->next) {
		if (!c->sess || c->sess_closing ||
		    !ctl_claims_match(&c->sess->claims, d->sid, d->jti))
			continue;
		c->sess->drain = 1;
		c->sess->drain_deadline_ms = deadline;
	}
}

/* Cut every open session the state denies now; the number cut. */
static unsigned ctl_sweep(struct broker *b)
{
	char why[128];
	struct conn *c;
	unsigned n = 0;

	for (c = b->conns; c; c = c->next) {
		if (c->state != CONN_READY || c->internal || !c->sess ||
		    c->close_after_flush)
			continue;
		if (broker_control_denied(&c->sess->claims, why, sizeof(why))) {
			conn_revoke(c, why);
			n++;
		}
	}
	return n;
}

/* Quotas changed: every open session of fsid (NULL: all) looks again. */
static void ctl_requota(struct broker *b, const char *fsid)
{
	struct conn *c;

	for (c = b->conns; c; c = c->next)
		if (c->state == CONN_READY && c->sess &&
		    (!fsid || !strcmp(c->sess->claims.filesystem_id, fsid)))
			session_policy_changed(c->sess);
}

/* ---- the socket (loop) ------------------------------------------------------
 */

static void ctl_send(json_t *msg)
{
	size_t len;
	ssize_t n;
	char *s;

	if (ctl.fd < 0)
		goto out;
	if (msg) {
		if (ctl_wire_encode(msg, &s, &len))
			goto out;
		if (buf_append(&ctl.out, s, len))
			log_err("control link: output too large; ack dropped");
		free(s);
	}
	while (ctl.out.len) {
		n = send(ctl.fd, ctl.out.p, ctl.out.len, MSG_NOSIGNAL);
		if (n <= 0)
			break;
		buf_consume(&ctl.out, (size_t)n);
	}
	/* Rare (acks are small): the rest goes out on EPOLLOUT. */
	broker_watch(ctl.b, ctl.fd, &ctl.src,
		     EPOLLIN | (ctl.out.len ? EPOLLOUT : 0), 0);
out:
	json_decref(msg);
}

static void ctl_ack(uint64_t id, unsigned cut, int flush, int flushed)
{
	json_t *m = json_pack("{s:s, s:I, s:i}", "op", CTL_B_ACK, "id",
			      (json_int_t)id, "cut", (int)cut);

	if (m && flush)
		json_object_set_new(m, "flushed", json_boolean(flushed));
	ctl_send(m);
}

static void ctl_arm(unsigned ms)
{
	struct itimerspec its = {
	    .it_value = {ms / 1000, (ms % 1000) * 1000000L}};

	timerfd_settime(ctl.timerfd, 0, &its, NULL);
}

static void ctl_down(struct broker *b, const char *why)
{
	(void)b;
	if (ctl.fd >= 0) {
		broker_unwatch(b, ctl.fd);
		close(ctl.fd);
		ctl.fd = -1;
	}
	buf_reset(&ctl.in);
	buf_reset(&ctl.out);
	pthread_mutex_lock(&ctl.lock);
	ctl.synced = 0;
	pthread_mutex_unlock(&ctl.lock);
	if (!ctl.warned)
		log_warn("control link to %s down (%s): new sessions are "
			 "refused until it is back; open ones keep running",
			 ctl.path, why);
	ctl.warned = 1;
	ctl_arm(ctl.backoff_ms);
	ctl.backoff_ms *= 2;
	if (ctl.backoff_ms > CTL_BACKOFF_MAX_MS)
		ctl.backoff_ms = CTL_BACKOFF_MAX_MS;
}

static void ctl_connect(struct broker *b)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	json_t *hello;

	strcpy(sa.sun_path, ctl.path);
	ctl.fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (ctl.fd < 0 ||
	    connect(ctl.fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    broker_watch(b, ctl.fd, &ctl.src, EPOLLIN, 1)) {
		ctl_down(b, strerror(errno));
		return;
	}
	hello = json_pack("{s:s, s:s, s:i, s:i}", "op", CTL_B_HELLO, "name",
			  "brokerfs", "pid", (int)getpid(), "version",
			  CTL_WIRE_VERSION);
	ctl_send(hello);
}

/* ---- messages from occfs-controld (loop) -------------------------------- */

static int ctl_deny_entry(json_t *o, struct ctl_deny *d)
{
	const char *sid = ctl_wire_str(o, "sid", ""),
		   *jti = ctl_wire_str(o, "jti", "");

	if (strlen(sid) >= sizeof(d->sid) || strlen(jti) >= sizeof(d->jti) ||
	    (!*sid && !*jti))
		return -EINVAL;
	snprintf(d->sid, sizeof(d->sid), "%s", sid);
	snprintf(d->jti, sizeof(d->jti), "%s", jti);
	d->exp = ctl_wire_int(o, "exp", 0);
	return 0;
}

static int ctl_quota_entry(json_t *o, struct ctl_quota *q)
{
	const char *fsid = ctl_wire_str(o, "fsid", "");
	long long bytes = ctl_wire_int(o, "bytes", -1);
	long long inodes = ctl_wire_int(o, "inodes", -1);

	if (!*fsid || strlen(fsid) >= sizeof(q->fsid) || bytes < 0 ||
	    inodes < 0)
		return -EINVAL;
	snprintf(q->fsid, sizeof(q->fsid), "%s", fsid);
	q->bytes = (uint64_t)bytes;
	q->inodes = (uint64_t)inodes;
	return 0;
}

/* The whole state, after (re)connecting: replace ours. */
static int ctl_state(struct broker *b, json_t *m)
{
	json_t *deny = json_object_get(m, "deny");
	json_t *quotas = json_object_get(m, "quotas");
	struct ctl_deny *dv = NULL;
	struct ctl_quota *qv = NULL;
	size_t i, nd = json_array_size(deny), nq = json_array_size(quotas);

	if (!json_is_array(deny) || !json_is_array(quotas) ||
	    nd > CTL_MAX_DENY || nq > CTL_MAX_QUOTAS)
		return -EBADMSG;
	dv = calloc(nd + 1, sizeof(*dv));
	qv = calloc(nq + 1, sizeof(*qv));
	if (!dv || !qv)
		goto bad;
	for (i = 0; i < nd; i++)
		if (ctl_deny_entry(json_array_get(deny, i), &dv[i]))
			goto bad;
	for (i = 0; i < nq; i++)
		if (ctl_quota_entry(json_array_get(quotas, i), &qv[i]))
			goto bad;
	pthread_mutex_lock(&ctl.lock);
	free(ctl.deny);
	free(ctl.quotas);
	ctl.deny = dv;
	ctl.ndeny = nd;
	ctl.quotas = qv;
	ctl.nquotas = nq;
	ctl.kill = ctl_wire_bool(m, "kill", 0);
	ctl.not_before = ctl_wire_int(m, "not_before", 0);
	ctl.synced = 1;
	pthread_mutex_unlock(&ctl.lock);
	ctl.backoff_ms = CTL_BACKOFF_MIN_MS;
	ctl.warned = 0;
	log_info("control link to %s up: %zu denylist entries, kill-switch "
		 "%s",
		 ctl.path, nd, ctl.kill ? "ENGAGED" : "off");
	ctl_requota(b, NULL);
	ctl_ack((uint64_t)ctl_wire_int(m, "id", 0), ctl_sweep(b), 0, 0);
	return 0;
bad:
	free(dv);
	free(qv);
	return -EBADMSG;
}

/*
 * A destroy's record exists before the sweep, which submits the sessions'
 * close: their drain reports into it (broker_control_drained).
 */
static struct ctl_flush *ctl_flush_add(struct broker *b,
				       const struct ctl_deny *d, uint64_t id)
{
	struct ctl_flush *f;

	if (ctl.nflush >= CTL_MAX_FLUSH)
		return NULL;
	pthread_mutex_lock(&ctl.lock);
	f = &ctl.flush[ctl.nflush++];
	memset(f, 0, sizeof(*f));
	f->id = id;
	memcpy(f->sid, d->sid, sizeof(f->sid));
	memcpy(f->jti, d->jti, sizeof(f->jti));
	f->deadline = ctl_now_ms() + CTL_FLUSH_MS;
	pthread_mutex_unlock(&ctl.lock);
	ctl_mark_drain(b, d);
	return f;
}

static int ctl_revoke(struct broker *b, json_t *m, uint64_t id)
{
	struct ctl_deny d, *nv;
	struct ctl_flush *f = NULL;
	int flush = ctl_wire_bool(m, "flush", 0);
	unsigned cut;

	if (ctl_deny_entry(m, &d))
		return -EBADMSG;
	pthread_mutex_lock(&ctl.lock);
	if (ctl.ndeny >= CTL_MAX_DENY ||
	    !(nv = realloc(ctl.deny, (ctl.ndeny + 1) * sizeof(*nv)))) {
		pthread_mutex_unlock(&ctl.lock);
		return -ENOMEM;
	}
	ctl.deny = nv;
	ctl.deny[ctl.ndeny++] = d;
	pthread_mutex_unlock(&ctl.lock);
	if (flush)
		f = ctl_flush_add(b, &d, id);
	cut = ctl_sweep(b);
	log_info("control plane revoked sid=%s jti=%s: %u connections cut",
		 d.sid[0] ? d.sid : "-", d.jti[0] ? d.jti : "-", cut);
	if (!f) {
		/* Too many destroys waiting: cut, but not confirmed flushed. */
		ctl_ack(id, cut, flush, 0);
		return 0;
	}
	f->cut = cut;
	broker_control_turn(b);
	return 0;
}

static int ctl_quota(struct broker *b, json_t *m, uint64_t id)
{
	struct ctl_quota q, *nv;
	size_t i;

	if (ctl_quota_entry(m, &q))
		return -EBADMSG;
	pthread_mutex_lock(&ctl.lock);
	for (i = 0; i < ctl.nquotas; i++)
		if (strcmp(ctl.quotas[i].fsid, q.fsid) == 0)
			break;
	if (ctl_wire_bool(m, "clear", 0)) {
		if (i < ctl.nquotas)
			ctl.quotas[i] = ctl.quotas[--ctl.nquotas];
	} else if (i < ctl.nquotas) {
		ctl.quotas[i] = q;
	} else if (ctl.nquotas < CTL_MAX_QUOTAS &&
		   (nv = realloc(ctl.quotas, (i + 1) * sizeof(*nv)))) {
		ctl.quotas = nv;
		ctl.quotas[ctl.nquotas++] = q;
	}
	pthread_mutex_unlock(&ctl.lock);
	ctl_requota(b, q.fsid);
	ctl_ack(id, 0, 0, 0);
	return 0;
}

static int ctl_message(struct broker *b, json_t *m)
{
	const char *op = ctl_wire_str(m, "op", "");
	uint64_t id = (uint64_t)ctl_wire_int(m, "id", 0);

	if (strcmp(op, CTL_B_STATE) == 0)
		return ctl_state(b, m);
	if (!ctl.synced)
		return -EPROTO;
	if (strcmp(op, CTL_B_REVOKE) == 0)
		return ctl_revoke(b, m, id);
	if (strcmp(op, CTL_B_QUOTA) == 0)
		return ctl_quota(b, m, id);
	if (strcmp(op, CTL_B_KILL) == 0) {
		pthread_mutex_lock(&ctl.lock);
		ctl.kill = ctl_wire_bool(m, "on", 0);
		ctl.not_before = ctl_wire_int(m, "not_before", ctl.not_before);
		pthread_mutex_unlock(&ctl.lock);
		log_warn("control plane: kill-switch %s",
			 ctl.kill ? "ENGAGED" : "lifted");
		ctl_ack(id, ctl_sweep(b), 0, 0);
		return 0;
	}
	log_warn("control link: unknown message '%.32s' ignored", op);
	return 0;
}

static void ctl_read(struct broker *b)
{
	const char *why = NULL;
	size_t used;
	json_t *m;
	ssize_t n;
	int rc;

	for (;;) {
		if (buf_reserve(&ctl.in, 65536) && buf_reserve(&ctl.in, 1)) {
			ctl_down(b, "message over the size limit");
			return;
		}
		n = read(ctl.fd, ctl.in.p + ctl.in.len,
			 ctl.in.cap - ctl.in.len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			ctl_down(b, n ? strerror(errno) : "closed by the peer");
			return;
		}
		ctl.in.len += (size_t)n;
		while ((rc = ctl_wire_decode((char *)ctl.in.p, ctl.in.len, &m,
					     &used, &why)) > 0) {
			buf_consume(&ctl.in, used);
			rc = ctl_message(b, m);
			json_decref(m);
			if (rc) {
				ctl_down(b, "malformed message");
				return;
			}
		}
		if (rc < 0) {
			ctl_down(b, why);
			return;
		}
	}
}

void broker_control_event(struct broker *b, struct loop_src *src,
			  uint32_t events)
{
	uint64_t n;

	if (src == &ctl.tsrc) {
		if (read(ctl.timerfd, &n, sizeof(n)) < 0 && errno != EAGAIN)
			log_err("control timer: %m");
		if (ctl.fd < 0)
			ctl_connect(b);
		return;
	}
	if (ctl.fd >= 0 && (events & EPOLLOUT))
		ctl_send(NULL);
	if (ctl.fd >= 0 && (events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		ctl_read(b);
}

/* ---- destroys waiting for their sessions' close (loop) ------------------- */

static int ctl_flush_pending(struct broker *b, const struct ctl_flush *f)
{
	struct conn *c;

	for (c = b->conns; c; c = c->next)
		if (c->sess &&
		    ctl_claims_match(&c->sess->claims, f->sid, f->jti))
			return 1;
	return 0;
}

void broker_control_drained(const struct token_claims *c, int left)
{
	pthread_mutex_lock(&ctl.lock);
	for (size_t i = 0; i < ctl.nflush; i++) {
		if (!ctl_claims_match(c, ctl.flush[i].sid, ctl.flush[i].jti))
			continue;
		if (left < 0 || ctl.flush[i].left < 0)
			ctl.flush[i].left = left < 0 ? left : ctl.flush[i].left;
		else
			ctl.flush[i].left += left;
	}
	pthread_mutex_unlock(&ctl.lock);
}

void broker_control_turn(struct broker *b)
{
	struct ctl_flush f;
	long long now;
	size_t i = 0;
	int late;

	if (!ctl.nflush)
		return;
	now = ctl_now_ms();
	while (i < ctl.nflush) {
		late = now >= ctl.flush[i].deadline;
		if (!late && ctl_flush_pending(b, &ctl.flush[i])) {
			i++;
			continue;
		}
		/* Workers write .left under the lock: take the entry out. */
		pthread_mutex_lock(&ctl.lock);
		f = ctl.flush[i];
		ctl.flush[i] = ctl.flush[--ctl.nflush];
		pthread_mutex_unlock(&ctl.lock);
		if (late)
			log_warn("destroy of %s: sessions still closing after "
				 "%d ms",
				 f.sid, CTL_FLUSH_MS);
		else if (f.left)
			log_warn(
			    "destroy of %s: %d files left staged (uploaded "
			    "in the background)",
			    f.sid, f.left);
		ctl_ack(f.id, f.cut, 1, !late && !f.left);
	}
}

/* ---- start, stop ------------------------------------------------------------
 */

int broker_control_start(struct broker *b, const char *path)
{
	if (strlen(path) >= sizeof(ctl.path))
		return -ENAMETOOLONG;
	snprintf(ctl.path, sizeof(ctl.path), "%s", path);
	ctl.b = b;
	ctl.src.type = SRC_CONTROL;
	ctl.tsrc.type = SRC_CONTROL;
	buf_init(&ctl.in, CTL_MAX_LINE);
	buf_init(&ctl.out, 1u << 20);
	ctl.backoff_ms = CTL_BACKOFF_MIN_MS;
	ctl.timerfd =
	    timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (ctl.timerfd < 0)
		return -errno;
	if (broker_watch(b, ctl.timerfd, &ctl.tsrc, EPOLLIN, 1))
		return -EIO;
	ctl.configured = 1;
	ctl_connect(b);
	return 0;
}

void broker_control_stop(struct broker *b)
{
	if (!ctl.configured)
		return;
	if (ctl.fd >= 0) {
		broker_unwatch(b, ctl.fd);
		close(ctl.fd);
		ctl.fd = -1;
	}
	if (ctl.timerfd >= 0) {
		broker_unwatch(b, ctl.timerfd);
		close(ctl.timerfd);
		ctl.timerfd = -1;
	}
	buf_cleanup(&ctl.in);
	buf_cleanup(&ctl.out);
	pthread_mutex_lock(&ctl.lock);
	free(ctl.deny);
	free(ctl.quotas);
	ctl.deny = NULL;
	ctl.quotas = NULL;
	ctl.ndeny = ctl.nquotas = 0;
	ctl.synced = 0;
	pthread_mutex_unlock(&ctl.lock);
}
