/*
 * rpcc.c - the RPC client: one connection, many calls in flight (rpcc.h).
 *
 * A call takes one of RPCC_SLOTS pending-call slots (callers block while
 * all are taken: that is the in-flight limit the broker also enforces), is
 * sent under the write lock and then waits for its reply (below).  The
 * request id carries the slot index in its low bits, so the reading
 * thread finds the waiter without a search, and a sequence
 * number in the high bits, so a late reply to a call that already timed
 * out never lands in the slot's next user.
 *
 * Leader/follower: whoever holds the read token (c->leader) reads the
 * socket and delivers what arrives.  A caller that has sent its request
 * takes the token itself when nobody holds it, so in the common case the
 * thread that waits for a reply is the one that reads it, and the reply
 * costs one thread wake-up (broker -> caller) instead of two (broker ->
 * reader -> caller); on a virtual machine a cross-CPU wake-up costs tens of
 * microseconds.  A leader that got its own reply while other replies are
 * still due hands reading to the background thread, which reads on until
 * none is due (under parallel load one reader streams replies, as before).
 * It also reads after the connection has been idle for RPCC_IDLE_MS, so
 * pushes and a dead broker are noticed without any call in flight, and
 * stops as soon as calls start again.  Reads wait at most
 * RPCC_SLICE_MS (SO_RCVTIMEO) so that a leader whose deadline passes gets
 * back to its caller in time.
 *
 * Busy-polling (spin_us): a caller that reads its own reply polls the
 * socket for up to spin_us before it blocks.  A broker answers a metadata
 * call in tens of microseconds, about what the wake-up of a sleeping
 * thread costs on a virtual machine, so the reply is often there before a
 * sleeping caller would have been scheduled again.  The spin is bounded,
 * only callers spin (never the background thread), and a connection whose
 * replies keep missing the window (slow backend calls, big transfers)
 * stops spinning for a while: RPCC_SPIN_MISSES misses in a row pause it
 * for RPCC_SPIN_PAUSE reads.
 *
 * Reading: frames are read into one buffer.  Once a frame header is known,
 * a large frame is read exactly to its end, never past it, so that when a
 * big READ reply is complete the whole buffer can be handed to the reply as
 * its data_owned storage instead of copying the payload (zero copy where
 * cheap); small payloads are copied out.
 *
 * Nothing waits forever: calls wait at most the timeout; a dead connection
 * wakes every waiter with -ENOTCONN; a writer stuck on a full socket is cut
 * by SO_SNDTIMEO (plain sockets) and the connection is then shut down,
 * since half a frame on the wire leaves the stream unusable.  HELLO runs
 * before the reader thread exists; a short-lived watchdog thread bounds it.
 */
#include "rpcc.h"

#include "buf.h"
#include "frame.h"
#include "log.h"
#include "proto.h"
#include "transport.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>

#define RPCC_SLOTS 64u /* calls in flight; a power of two */
#define RPCC_SLOT_BITS 6
#define RPCC_CHUNK (64u * 1024u)      /* read size for small frames */
#define RPCC_STEAL_MIN (16u * 1024u)  /* payloads this big are not copied */
#define RPCC_GATHER_MIN (16u * 1024u) /* nor are WRITE payloads this big */
#define RPCC_DEFAULT_TIMEOUT 60000
#define RPCC_IDLE_MS 20	     /* quiet this long: the background thread reads */
#define RPCC_SLICE_MS 250    /* longest single blocking read */
#define RPCC_SPIN_MISSES 8   /* spins in a row that found nothing ... */
#define RPCC_SPIN_PAUSE 256u /* ... stop spinning for this many reads */

struct rpcc_slot {
	uint64_t id;	       /* 0 = free */
	uint32_t op;	       /* the request's op, checked against the reply */
	int done;	       /* a reply or an error was delivered */
	int rc;		       /* what rpcc_call returns once done */
	struct proto_msg *rep; /* the caller's reply message */
	pthread_cond_t cv;
};

struct rpcc {
	struct transport_conn *conn;
	int timeout_ms;
	unsigned spin_us;
	uint32_t features, max_payload;
	rpcc_push_fn on_push;
	void *push_arg;

	pthread_mutex_t lock;	/* protects everything down to 'dead' */
	pthread_cond_t free_cv; /* a slot became free or the link died */
	struct rpcc_slot slots[RPCC_SLOTS];
	unsigned nbusy;
	uint64_t seq;
	int dead;    /* reading failed: calls fail (read atomically too) */
	int closing; /* rpcc_free shut the socket: not an error to log */
	int leader;  /* the read token is held (by a caller or the thread) */
	unsigned npending;    /* calls in slots whose reply has not come */
	uint64_t ncalls;      /* calls started: the thread watches for quiet */
	pthread_cond_t bg_cv; /* wakes the background thread */

	pthread_mutex_t wlock; /* serialises frame writes on conn */

	/* Reader state: the HELLO thread, then whoever holds the token. */
	struct buf in, scratch;
	int zstd_in;
	int read_logged;     /* the loss of the connection was logged */
	int spin;	     /* the current leader may busy-poll */
	unsigned spin_miss;  /* spins in a row that found nothing */
	unsigned spin_pause; /* reads left before spinning again */
	pthread_t reader;
	int running;
};

/* ---- time --------------------------------------------------------------- */

static void rpcc_deadline(struct timespec *ts, int ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/* pthread_mutex_timedlock takes CLOCK_REALTIME; convert a monotonic one. */
static int rpcc_wlock(struct rpcc *c, const struct timespec *mono)
{
	struct timespec now, real;
	long ns;

	clock_gettime(CLOCK_MONOTONIC, &now);
	clock_gettime(CLOCK_REALTIME, &real);
	ns = (mono->tv_sec - now.tv_sec) * 1000000000L +
	     (mono->tv_nsec - now.tv_nsec);
	if (ns < 0)
		ns = 0;
	real.tv_sec += ns / 1000000000L;
	real.tv_nsec += ns % 1000000000L;
	if (real.tv_nsec >= 1000000000L) {
		real.tv_sec++;
		real.tv_nsec -= 1000000000L;
	}
	return -pthread_mutex_timedlock(&c->wlock, &real);
}

/* ---- writing ------------------------------------------------------------ */

static void rpcc_kill(struct rpcc *c)
{
	shutdown(transport_fd(c->conn), SHUT_RDWR);
}

/* Write all of iov[0..n), however many calls it takes. */
static int rpcc_write_all(struct rpcc *c, struct iovec *iov, int n)
{
	ssize_t w;

	while (n > 0) {
		if (!iov->iov_len) {
			iov++;
			n--;
			continue;
		}
		w = transport_writev(c->conn, iov, n);
		if (w < 0)
			return w == -EAGAIN ? -ETIMEDOUT : (int)w;
		if (w == 0)
			return -ENOTCONN;
		for (; n > 0 && (size_t)w >= iov->iov_len; n--, iov++)
			w -= (ssize_t)iov->iov_len;
		if (n > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + w;
			iov->iov_len -= (size_t)w;
		}
	}
	return 0;
}

/* Move exactly n bytes from pipe_fd into the connection. */
static int rpcc_splice_all(struct rpcc *c, int pipe_fd, size_t n)
{
	ssize_t w;

	while (n > 0) {
		w = transport_splice_in(c->conn, pipe_fd, n);
		if (w < 0)
			return w == -EAGAIN ? -ETIMEDOUT : (int)w;
		if (w == 0)
			return -EIO; /* the pipe held less than promised */
		n -= (size_t)w;
	}
	return 0;
}

/*
 * Encode m and write it as one frame.  The body is encoded after four
 * reserved bytes so that an uncompressed frame needs no second copy: the
 * header is written in place.  A large WRITE payload is not copied into
 * the frame at all: the message is encoded without it (data_follows) and
 * the payload goes out from the caller's buffer, in its place, in one
 * gathered write.  Only compressible-sized bodies on a zstd connection go
 * through frame_wrap.  With data_fd >= 0 the WRITE payload (data_len
 * bytes, data unused) is spliced from that pipe in its place instead.
 */
static int rpcc_send_msg(struct rpcc *c, const struct proto_msg *m, int data_fd,
			 const struct timespec *deadline)
{
	int zstd = (c->features & PROTO_FEAT_ZSTD) != 0;
	struct iovec iov[3] = {{NULL, 0}, {NULL, 0}, {NULL, 0}};
	struct proto_msg head;
	struct buf body, framed;
	size_t blen, gap;
	int rc;

	if (data_fd >= 0 && (zstd || !m->data_len))
		return -EINVAL; /* rpcc_call_spliced checked the connection */
	buf_init(&body, PROTO_MAX_FRAME + FRAME_HDR_LEN);
	buf_init(&framed, PROTO_MAX_FRAME + FRAME_HDR_LEN);
	if (!zstd && m->kind == PROTO_REQ && m->op == PROTO_OP_WRITE &&
	    (m->data_len >= RPCC_GATHER_MIN || data_fd >= 0)) {
		head = *m;
		head.data_follows = 1;
		m = &head;
		iov[1].iov_base = (void *)m->data;
		iov[1].iov_len = m->data_len;
	}
	rc = buf_reserve(&body, 512 + m->data_len - iov[1].iov_len);
	if (rc)
		goto out;
	body.len = FRAME_HDR_LEN;
	rc = proto_encode_gap(m, &body, &gap);
	if (rc)
		goto out;
	blen = body.len - FRAME_HDR_LEN + iov[1].iov_len;
	if (!iov[1].iov_len && zstd && blen >= FRAME_ZSTD_MIN) {
		rc = frame_wrap(&framed, body.p + FRAME_HDR_LEN, blen, 1);
		if (rc)
			goto out;
		iov[0].iov_base = framed.p;
		iov[0].iov_len = framed.len;
	} else {
		body.p[0] = (uint8_t)(blen >> 24);
		body.p[1] = (uint8_t)(blen >> 16);
		body.p[2] = (uint8_t)(blen >> 8);
		body.p[3] = (uint8_t)blen;
		/* Without a payload apart, gap is SIZE_MAX: all in piece 0. */
		iov[0].iov_base = body.p;
		iov[0].iov_len = iov[1].iov_len ? gap : body.len;
		iov[2].iov_base = body.p + iov[0].iov_len;
		iov[2].iov_len = body.len - iov[0].iov_len;
	}
	rc = rpcc_wlock(c, deadline);
	if (rc)
		goto out;
	if (data_fd < 0) {
		rc = rpcc_write_all(c, iov, 3);
	} else {
		rc = rpcc_write_all(c, iov, 1);
		if (!rc)
			rc = rpcc_splice_all(c, data_fd, iov[1].iov_len);
		if (!rc)
			rc = rpcc_write_all(c, iov + 2, 1);
	}
	if (rc)
		rpcc_kill(c); /* a partial frame poisons the stream */
	pthread_mutex_unlock(&c->wlock);
out:
	buf_cleanup(&body);
	buf_cleanup(&framed);
	return rc;
}

/* ---- reading ------------------------------------------------------------ */

static uint64_t rpcc_now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* Busy-poll the socket for up to spin_us (see the top of the file). */
static void rpcc_spin(struct rpcc *c)
{
	struct pollfd pf = {.fd = transport_fd(c->conn), .events = POLLIN};
	uint64_t end;

	if (c->spin_pause) {
		c->spin_pause--;
		return;
	}
	end = rpcc_now_ns() + (uint64_t)c->spin_us * 1000u;
	do {
		if (poll(&pf, 1, 0) != 0) {
			c->spin_miss = 0;
			return;
		}
	} while (rpcc_now_ns() < end);
	if (++c->spin_miss >= RPCC_SPIN_MISSES) {
		c->spin_miss = 0;
		c->spin_pause = RPCC_SPIN_PAUSE;
	}
}

/* Read more bytes into c->in; never past the end of a large frame. */
static int rpcc_fill(struct rpcc *c)
{
	size_t want = RPCC_CHUNK - (c->in.len < RPCC_CHUNK ? c->in.len : 0);
	size_t total;
	ssize_t r;
	int rc;

	if (c->in.len >= FRAME_HDR_LEN) {
		total = FRAME_HDR_LEN + (((size_t)c->in.p[0] & 0x7f) << 24 |
					 (size_t)c->in.p[1] << 16 |
					 (size_t)c->in.p[2] << 8 | c->in.p[3]);
		if (total > RPCC_CHUNK)
			want = total - c->in.len;
	}
	if (want == 0)
		return -EBADMSG; /* cannot happen: frame_parse had it all */
	rc = buf_reserve(&c->in, want);
	if (rc)
		return rc;
	if (c->spin && c->spin_us) {
		c->spin = 0; /* once per message: then the bytes are coming */
		rpcc_spin(c);
	}
	r = transport_read(c->conn, c->in.p + c->in.len, want);
	if (r == 0)
		return -ENOTCONN;
	if (r < 0)
		return (int)r;
	c->in.len += (size_t)r;
	return 0;
}

/*
 * Give m's payload storage of its own: the frame buffer itself when the
 * payload is big and nothing follows the frame, else a copy.  Then drop
 * the frame from c->in.
 */
static int rpcc_own_data(struct rpcc *c, struct proto_msg *m,
			 const uint8_t *body, size_t consumed)
{
	void *copy;

	if (m->data_len == 0) {
		m->data = NULL;
	} else if (c->scratch.p && body == c->scratch.p) {
		m->data_owned = buf_steal(&c->scratch, NULL);
	} else if (m->data_len >= RPCC_STEAL_MIN && consumed == c->in.len) {
		m->data_owned = buf_steal(&c->in, NULL);
		return 0; /* c->in is empty and fresh */
	} else {
		copy = malloc(m->data_len);
		if (!copy) {
			buf_consume(&c->in, consumed);
			return -ENOMEM;
		}
		memcpy(copy, m->data, m->data_len);
		m->data = copy;
		m->data_owned = copy;
	}
	buf_consume(&c->in, consumed);
	return 0;
}

/* Read and decode the next message.  -EPROTO leaves m's header set. */
static int rpcc_read_msg(struct rpcc *c, struct proto_msg *m)
{
	const uint8_t *body = NULL;
	size_t blen = 0, consumed = 0;
	const char *why = NULL;
	int rc;

	proto_msg_init(m);
	for (;;) {
		rc =
		    frame_parse(c->in.p, c->in.len, PROTO_MAX_FRAME, c->zstd_in,
				&c->scratch, &body, &blen, &consumed, &why);
		if (rc < 0) {
			log_err("bad frame from the broker: %s", why);
			return rc;
		}
		if (rc == 1)
			break;
		rc = rpcc_fill(c);
		if (rc)
			return rc;
	}
	rc = proto_decode(body, blen, m, &why);
	if (rc) {
		log_err("bad message from the broker: %s", why);
		buf_consume(&c->in, consumed);
		return rc;
	}
	rc = rpcc_own_data(c, m, body, consumed);
	if (rc)
		proto_msg_cleanup(m);
	return rc;
}

/* Hand a reply (or rc, when m is NULL) to the call waiting for id. */
static void rpcc_deliver(struct rpcc *c, uint64_t id, uint32_t op,
			 struct proto_msg *m, int rc)
{
	struct rpcc_slot *s = &c->slots[id & (RPCC_SLOTS - 1)];

	pthread_mutex_lock(&c->lock);
	if (id == 0 || s->id != id || s->done) {
		/* A call that timed out; its reply is of no use now. */
		pthread_mutex_unlock(&c->lock);
		log_debug("dropping reply %llu (%s): no caller waits for it",
			  (unsigned long long)id, proto_op_name(op));
		if (m)
			proto_msg_cleanup(m);
		return;
	}
	if (m && m->op != s->op) {
		log_err("broker answered %s request %llu with %s",
			proto_op_name(s->op), (unsigned long long)id,
			proto_op_name(m->op));
		proto_msg_cleanup(m);
		m = NULL;
		rc = -EPROTO;
	}
	if (m)
		*s->rep = *m; /* the caller now owns the strings and data */
	s->rc = m ? 0 : rc;
	s->done = 1;
	c->npending--;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&c->lock);
}

static void rpcc_set_dead(struct rpcc *c)
{
	unsigned i;

	__atomic_store_n(&c->dead, 1, __ATOMIC_RELEASE);
	for (i = 0; i < RPCC_SLOTS; i++)
		if (c->slots[i].id)
			pthread_cond_signal(&c->slots[i].cv);
	pthread_cond_broadcast(&c->free_cv);
	pthread_cond_broadcast(&c->bg_cv);
}

/*
 * Read one message and act on it, holding the read token; c->lock is held
 * on entry and on return but not while reading; spin: a caller waiting
 * for its reply, which may busy-poll first.  Returns 0, or -EAGAIN when
 * nothing complete arrived within RPCC_SLICE_MS.
 */
static int rpcc_lead(struct rpcc *c, int spin)
{
	struct proto_msg m;
	int rc;

	c->leader = 1;
	c->spin = spin;
	pthread_mutex_unlock(&c->lock);
	rc = rpcc_read_msg(c, &m);
	if (rc == -EPROTO && m.kind == PROTO_REP) {
		rpcc_deliver(c, m.id, m.op, NULL, -EPROTO);
		rc = 0;
	} else if (!rc && m.kind == PROTO_REP) {
		rpcc_deliver(c, m.id, m.op, &m, 0);
	} else if (!rc && m.kind == PROTO_PUSH) {
		if (c->on_push)
			c->on_push(c->push_arg, &m);
		proto_msg_cleanup(&m);
	} else if (!rc) {
		log_warn("ignoring a %s request from the broker",
			 proto_op_name(m.op));
		proto_msg_cleanup(&m);
	}
	pthread_mutex_lock(&c->lock);
	c->leader = 0;
	if (rc && rc != -EAGAIN && !c->dead) {
		if (!c->closing && !c->read_logged) {
			if (rc == -ENOTCONN)
				log_err("the broker closed the connection");
			else
				log_err("connection to the broker failed: %s",
					strerror(-rc));
		}
		c->read_logged = 1;
		rpcc_set_dead(c);
	}
	return rc == -EAGAIN ? rc : 0;
}

/*
 * The token is free and replies are still due: the background thread reads
 * them.  A leader that got its own reply must return to its caller, and
 * passing the token from caller to caller would cost a wake-up per reply
 * just when replies stream in (parallel READs); one reader keeps up.
 */
static void rpcc_pass_token(struct rpcc *c)
{
	if (!c->leader && !c->dead && c->npending)
		pthread_cond_signal(&c->bg_cv);
}

/*
 * The background thread: reads while replies are due and no caller reads
 * (see rpcc_pass_token), and while the connection is idle, so that pushes
 * and a lost connection are seen at any time.  When a lone caller starts
 * again it steps aside: that caller then reads its own reply.
 */
static void *rpcc_reader(void *arg)
{
	struct rpcc *c = arg;
	struct timespec dl;
	uint64_t seen;
	int e;

	pthread_mutex_lock(&c->lock);
	while (!c->dead && !c->closing) {
		if (!c->leader && c->npending) {
			rpcc_lead(c, 0);
			continue;
		}
		seen = c->ncalls;
		rpcc_deadline(&dl, RPCC_IDLE_MS);
		e = pthread_cond_timedwait(&c->bg_cv, &c->lock, &dl);
		if (e != ETIMEDOUT)
			continue;
		/* Quiet for RPCC_IDLE_MS: read until a call starts. */
		while (!c->dead && !c->closing && !c->leader && !c->npending &&
		       c->ncalls == seen)
			rpcc_lead(c, 0);
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

/* ---- calls -------------------------------------------------------------- */

/* Take a free slot for req; c->lock held. */
static int rpcc_take_slot(struct rpcc *c, const struct proto_msg *req,
			  struct proto_msg *rep, const struct timespec *dl,
			  struct rpcc_slot **out)
{
	unsigned i;
	int e;

	while (!c->dead && c->nbusy == RPCC_SLOTS) {
		e = pthread_cond_timedwait(&c->free_cv, &c->lock, dl);
		if (e == ETIMEDOUT)
			return -ETIMEDOUT;
	}
	if (c->dead)
		return -ENOTCONN;
	for (i = 0; c->slots[i].id; i++)
		;
	c->slots[i].id = (++c->seq << RPCC_SLOT_BITS) | i;
	c->slots[i].op = req->op;
	c->slots[i].done = 0;
	c->slots[i].rc = 0;
	c->slots[i].rep = rep;
	c->nbusy++;
	c->npending++;
	c->ncalls++;
	*out = &c->slots[i];
	return 0;
}

static int rpcc_past(const struct timespec *dl)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec > dl->tv_sec ||
	       (now.tv_sec == dl->tv_sec && now.tv_nsec >= dl->tv_nsec);
}

/* Wait for s's reply, reading it ourselves when nobody else reads. */
static int rpcc_wait(struct rpcc *c, struct rpcc_slot *s,
		     const struct timespec *dl)
{
	int rc = 0, e;

	while (!s->done && !c->dead) {
		if (!c->leader) {
			rpcc_lead(c, 1);
			if (!s->done && rpcc_past(dl)) {
				rc = -ETIMEDOUT;
				break;
			}
			continue;
		}
		e = pthread_cond_timedwait(&s->cv, &c->lock, dl);
		if (e == ETIMEDOUT && !s->done) {
			rc = -ETIMEDOUT;
			break;
		}
	}
	rpcc_pass_token(c);
	return rc;
}

/*
 * The request could not be sent because the broker hung up.  It may have
 * said why just before (SESSION_REVOKED): read what it sent, so that the
 * caller's error comes after the push, not before it.  With no call in
 * flight nobody was reading yet (the background thread waits for quiet).
 */
static void rpcc_drain(struct rpcc *c, struct rpcc_slot *s,
		       const struct timespec *dl)
{
	for (unsigned i = 0; i < 64 && !c->dead; i++) {
		if (c->leader) {
			if (pthread_cond_timedwait(&s->cv, &c->lock, dl) ==
			    ETIMEDOUT)
				break;
			continue;
		}
		if (rpcc_lead(c, 0))
			break; /* nothing more for a slice */
	}
	rpcc_pass_token(c);
}

static int rpcc_call_fd(struct rpcc *c, struct proto_msg *req,
			struct proto_msg *rep, int data_fd)
{
	struct rpcc_slot *s = NULL;
	struct timespec dl;
	int rc;

	rpcc_deadline(&dl, c->timeout_ms);
	proto_msg_init(rep);
	req->kind = PROTO_REQ;
	pthread_mutex_lock(&c->lock);
	rc = rpcc_take_slot(c, req, rep, &dl, &s);
	pthread_mutex_unlock(&c->lock);
	if (rc)
		return rc;
	/* Published before sending so another thread may INTERRUPT it. */
	__atomic_store_n(&req->id, s->id, __ATOMIC_RELEASE);
	rc = rpcc_send_msg(c, req, data_fd, &dl);
	pthread_mutex_lock(&c->lock);
	if (!rc)
		rc = rpcc_wait(c, s, &dl);
	else if (rc == -EPIPE || rc == -ECONNRESET || rc == -ENOTCONN)
		rpcc_drain(c, s, &dl);
	if (!s->done)
		c->npending--;
	if (s->done)
		rc = s->rc; /* even after a send error: the reply is there */
	else if (!rc || c->dead)
		rc = -ENOTCONN; /* the link died, whatever else failed */
	s->id = 0;
	s->rep = NULL;
	c->nbusy--;
	pthread_cond_signal(&c->free_cv);
	pthread_mutex_unlock(&c->lock);
	return rc;
}

int rpcc_call(struct rpcc *c, struct proto_msg *req, struct proto_msg *rep)
{
	return rpcc_call_fd(c, req, rep, -1);
}

int rpcc_call_spliced(struct rpcc *c, struct proto_msg *req,
		      struct proto_msg *rep, int pipe_fd)
{
	if (pipe_fd < 0 || req->op != PROTO_OP_WRITE || !rpcc_can_splice(c))
		return -EINVAL;
	return rpcc_call_fd(c, req, rep, pipe_fd);
}

int rpcc_can_splice(const struct rpcc *c)
{
	return !(c->features & PROTO_FEAT_ZSTD) &&
	       transport_can_splice(c->conn);
}

int rpcc_send(struct rpcc *c, struct proto_msg *req)
{
	struct timespec dl;

	rpcc_deadline(&dl, c->timeout_ms);
	req->kind = PROTO_REQ;
	pthread_mutex_lock(&c->lock);
	if (c->dead) {
		pthread_mutex_unlock(&c->lock);
		return -ENOTCONN;
	}
	req->id = ++c->seq << RPCC_SLOT_BITS;
	pthread_mutex_unlock(&c->lock);
	return rpcc_send_msg(c, req, -1, &dl);
}

/* ---- HELLO -------------------------------------------------------------- */

struct rpcc_watchdog {
	struct rpcc *c;
	struct timespec deadline;
	pthread_mutex_t lock;
	pthread_cond_t cv;
	int done, fired;
};

/* Shut the socket if HELLO has not finished by the deadline. */
static void *rpcc_watchdog_run(void *arg)
{
	struct rpcc_watchdog *w = arg;
	int e = 0;

	pthread_mutex_lock(&w->lock);
	while (!w->done && e != ETIMEDOUT)
		e = pthread_cond_timedwait(&w->cv, &w->lock, &w->deadline);
	if (!w->done) {
		w->fired = 1;
		rpcc_kill(w->c);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

static void rpcc_why(char *why, size_t len, const char *s)
{
	if (why && len)
		snprintf(why, len, "%s", s);
}

/* Check the HELLO reply and adopt what it granted. */
static int rpcc_hello_check(struct rpcc *c, const struct rpcc_opts *o,
			    struct proto_msg *rep, char *why, size_t whylen)
{
	char tmp[PROTO_MAX_REASON + 64];

	if (rep->err) {
		rpcc_why(why, whylen,
			 rep->reason ? rep->reason : strerror(rep->err));
		return -rep->err;
	}
	if (rep->version != PROTO_VERSION) {
		snprintf(tmp, sizeof(tmp),
			 "broker speaks protocol version %u, not %u",
			 rep->version, PROTO_VERSION);
		rpcc_why(why, whylen, tmp);
		return -EPROTO;
	}
	c->features = rep->features & o->features;
	c->max_payload = o->max_payload ? o->max_payload : PROTO_MAX_PAYLOAD;
	if (rep->max_payload < c->max_payload)
		c->max_payload = rep->max_payload;
	if (c->max_payload == 0) {
		rpcc_why(why, whylen, "broker granted a zero payload size");
		return -EPROTO;
	}
	return 0;
}

/* Send HELLO and read its reply; bounded by the watchdog. */
static int rpcc_hello(struct rpcc *c, const struct rpcc_opts *o,
		      struct proto_msg *rep, const struct timespec *dl)
{
	struct proto_msg req;
	int rc;

	proto_msg_init(&req);
	req.kind = PROTO_REQ;
	req.op = PROTO_OP_HELLO;
	req.id = ++c->seq << RPCC_SLOT_BITS;
	req.version = PROTO_VERSION;
	req.features = o->features;
	req.max_payload = o->max_payload ? o->max_payload : PROTO_MAX_PAYLOAD;
	req.data = (const uint8_t *)o->handle;
	req.data_len = o->handle_len;
	rc = rpcc_send_msg(c, &req, -1, dl);
	if (rc)
		return rc;
	rc = rpcc_read_msg(c, rep);
	if (rc)
		return rc == -EPROTO ? -EBADMSG : rc;
	if (rep->kind != PROTO_REP || rep->id != req.id ||
	    rep->op != PROTO_OP_HELLO) {
		proto_msg_cleanup(rep);
		return -EBADMSG;
	}
	return 0;
}

static struct rpcc *rpcc_new(struct transport_conn *conn,
			     const struct rpcc_opts *o)
{
	pthread_condattr_t ca;
	struct rpcc *c;
	unsigned i;

	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->conn = conn;
	c->timeout_ms =
	    o->timeout_ms > 0 ? o->timeout_ms : RPCC_DEFAULT_TIMEOUT;
	c->spin_us = o->spin_us;
	c->on_push = o->on_push;
	c->push_arg = o->push_arg;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_mutex_init(&c->lock, NULL);
	pthread_mutex_init(&c->wlock, NULL);
	pthread_cond_init(&c->free_cv, &ca);
	pthread_cond_init(&c->bg_cv, &ca);
	for (i = 0; i < RPCC_SLOTS; i++)
		pthread_cond_init(&c->slots[i].cv, &ca);
	pthread_condattr_destroy(&ca);
	buf_init(&c->in, PROTO_MAX_FRAME + FRAME_HDR_LEN + RPCC_CHUNK);
	buf_init(&c->scratch, PROTO_MAX_FRAME);
	return c;
}

static void rpcc_destroy(struct rpcc *c)
{
	unsigned i;

	transport_close(c->conn);
	buf_cleanup(&c->in);
	buf_cleanup(&c->scratch);
	for (i = 0; i < RPCC_SLOTS; i++)
		pthread_cond_destroy(&c->slots[i].cv);
	pthread_cond_destroy(&c->free_cv);
	pthread_cond_destroy(&c->bg_cv);
	pthread_mutex_destroy(&c->wlock);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

/*
 * Bound a stuck write (SO_SNDTIMEO; for TLS transport.c polls with it).
 * opt SO_RCVTIMEO with ms: bound one read the same way.
 */
static void rpcc_sock_timeout(struct rpcc *c, int opt, int ms)
{
	struct timeval tv = {.tv_sec = ms / 1000,
			     .tv_usec = (ms % 1000) * 1000};

	(void)setsockopt(transport_fd(c->conn), SOL_SOCKET, opt, &tv,
			 sizeof(tv));
}

int rpcc_start(struct transport_conn *conn, const struct rpcc_opts *o,
	       struct rpcc **out, struct proto_msg *hello, char *why,
	       size_t whylen)
{
	struct rpcc_watchdog w = {0};
	pthread_condattr_t ca;
	pthread_t wd;
	struct rpcc *c;
	int rc, wd_ok;

	*out = NULL;
	proto_msg_init(hello);
	rpcc_why(why, whylen, "");
	c = rpcc_new(conn, o);
	if (!c) {
		transport_close(conn);
		rpcc_why(why, whylen, "out of memory");
		return -ENOMEM;
	}
	rpcc_sock_timeout(c, SO_SNDTIMEO, c->timeout_ms);
	w.c = c;
	rpcc_deadline(&w.deadline, c->timeout_ms);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w.cv, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&w.lock, NULL);
	wd_ok = pthread_create(&wd, NULL, rpcc_watchdog_run, &w) == 0;

	rc = rpcc_hello(c, o, hello, &w.deadline);

	if (wd_ok) {
		pthread_mutex_lock(&w.lock);
		w.done = 1;
		pthread_cond_signal(&w.cv);
		pthread_mutex_unlock(&w.lock);
		pthread_join(wd, NULL);
	}
	pthread_cond_destroy(&w.cv);
	pthread_mutex_destroy(&w.lock);
	if (rc && w.fired)
		rc = -ETIMEDOUT;
	if (rc) {
		rpcc_why(why, whylen,
			 rc == -ETIMEDOUT
			     ? "no HELLO reply from the broker in time"
			 : rc == -ENOTCONN ? "the broker closed the connection"
			 : rc == -EBADMSG  ? "malformed HELLO reply"
					   : strerror(-rc));
		goto out;
	}
	rc = rpcc_hello_check(c, o, hello, why, whylen);
	if (rc)
		goto out;
	c->zstd_in = !!(c->features & PROTO_FEAT_ZSTD);
	*out = c;
	c = NULL;
out:
	if (c) {
		proto_msg_cleanup(hello); /* the reason is in why */
		rpcc_destroy(c);
	}
	return rc;
}

int rpcc_run(struct rpcc *c)
{
	int e;

	if (c->running)
		return -EALREADY;
	/* Leaders must get back to their callers' deadlines. */
	rpcc_sock_timeout(c, SO_RCVTIMEO,
			  c->timeout_ms < RPCC_SLICE_MS ? c->timeout_ms
							: RPCC_SLICE_MS);
	e = pthread_create(&c->reader, NULL, rpcc_reader, c);
	if (e)
		return -e;
	c->running = 1;
	return 0;
}

uint32_t rpcc_features(const struct rpcc *c)
{
	return c->features;
}

uint32_t rpcc_max_payload(const struct rpcc *c)
{
	return c->max_payload;
}

int rpcc_alive(const struct rpcc *c)
{
	return !__atomic_load_n(&c->dead, __ATOMIC_ACQUIRE);
}

void rpcc_free(struct rpcc *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	c->closing = 1;
	pthread_cond_broadcast(&c->bg_cv);
	pthread_mutex_unlock(&c->lock);
	if (c->running) {
		rpcc_kill(c);
		pthread_join(c->reader, NULL);
	}
	rpcc_destroy(c);
}
