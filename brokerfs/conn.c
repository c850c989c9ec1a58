/*
 * conn.c - one client connection, driven by the event loop: its lifetime,
 * the entry points the loop calls, and its input.
 *
 * Bytes come in through a bounded buffer and are cut into frames, which
 * conn_message (conn_req.c) decodes and acts on; replies go out through
 * conn_out.c.
 *
 * Back-pressure: a connection is not read while it has max_inflight
 * requests outstanding or more than CONN_OUT_HIGH bytes waiting to be
 * written, so what one client can make us hold is bounded.  Before HELLO
 * the input buffer is only big enough for a handle.
 *
 * A closed connection is not freed at once: jobs still running on workers
 * point at it, and its session is closed (on a worker, conn_release) only
 * after they are done.  conn_reap frees it afterwards, outside any
 * connection callback, so no callback ever touches freed memory.
 */
#include "broker.h"
#include "conn_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/vm_sockets.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "frame.h"
#include "log.h"

#define CONN_HELLO_MAX (PROTO_MAX_HANDLE + 1024u) /* largest HELLO frame */
#define CONN_OUT_HIGH (8u << 20) /* stop reading above this much output */
#define CONN_READ_CHUNK (64u * 1024u)
#define CONN_TAKE_MIN (64u * 1024u) /* requests this big keep their buffer */
#define CONN_HELLO_TIMEOUT 10	    /* seconds from accept to HELLO */

static void conn_peer(struct conn *c)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char addr[INET6_ADDRSTRLEN];
	uid_t uid;
	gid_t gid;
	pid_t pid;

	snprintf(c->peer, sizeof(c->peer), "conn %llu",
		 (unsigned long long)c->id);
	if (getpeername(c->fd, (struct sockaddr *)&ss, &len) < 0)
		return;
	if (ss.ss_family == AF_UNIX &&
	    transport_peer_cred(c->tc, &uid, &gid, &pid) == 0) {
		snprintf(c->peer, sizeof(c->peer), "unix uid=%u pid=%d",
			 (unsigned)uid, (int)pid);
	} else if (ss.ss_family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		inet_ntop(AF_INET, &s4->sin_addr, addr, sizeof(addr));
		snprintf(c->peer, sizeof(c->peer), "tls %s:%u", addr,
			 ntohs(s4->sin_port));
	} else if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		inet_ntop(AF_INET6, &s6->sin6_addr, addr, sizeof(addr));
		snprintf(c->peer, sizeof(c->peer), "tls [%s]:%u", addr,
			 ntohs(s6->sin6_port));
	} else if (ss.ss_family == AF_VSOCK) {
		struct sockaddr_vm *sv = (struct sockaddr_vm *)&ss;

		snprintf(c->peer, sizeof(c->peer), "vsock %u:%u", sv->svm_cid,
			 sv->svm_port);
	}
}

/* Unix and vsock streams carry frames as they are; TCP carries TLS. */
static int conn_plain(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return 0;
	return ss.ss_family == AF_UNIX || ss.ss_family == AF_VSOCK;
}

struct conn *conn_new(struct broker *b, struct transport_conn *tc, int internal)
{
	struct conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->src.type = SRC_CONN;
	c->b = b;
	c->id = ++b->next_id;
	c->tc = tc;
	c->fd = transport_fd(tc);
	c->internal = internal;
	c->state = internal ? CONN_HELLO : CONN_HANDSHAKE;
	c->created = time(NULL);
	pthread_mutex_init(&c->olock, NULL);
	c->plain = internal || conn_plain(c->fd);
	buf_init(&c->in, FRAME_HDR_LEN + CONN_HELLO_MAX);
	buf_init(&c->scratch, PROTO_MAX_FRAME);
	if (internal)
		snprintf(c->peer, sizeof(c->peer), "internal mount");
	else
		conn_peer(c);
	if (broker_watch(b, c->fd, &c->src, EPOLLIN, 1)) {
		pthread_mutex_destroy(&c->olock);
		free(c);
		return NULL;
	}
	c->events = EPOLLIN;
	c->next = b->conns;
	if (b->conns)
		b->conns->prev = c;
	b->conns = c;
	b->nconns++;
	log_debug("%s: connected", c->peer);
	return c;
}

/* ---- input -----------------------------------------------------------------
 */

static int conn_can_read(const struct conn *c)
{
	return (c->state == CONN_HELLO || c->state == CONN_READY) &&
	       !c->close_after_flush && !c->b->stopping &&
	       c->inflight < c->b->cfg->max_inflight &&
	       c->out_bytes + c->expect_bytes < CONN_OUT_HIGH;
}

static size_t conn_max_frame(const struct conn *c)
{
	return c->state == CONN_READY ? c->in.limit - FRAME_HDR_LEN
				      : CONN_HELLO_MAX;
}

/* Handle every complete frame buffered, as long as we may. */
static int conn_parse(struct conn *c)
{
	const uint8_t *body;
	const char *why = NULL;
	size_t off = 0, blen, used;
	int rc = 0;

	/* in.p is NULL until the first read: no pointer arithmetic on it. */
	while (conn_can_read(c) && c->in.len - off >= FRAME_HDR_LEN) {
		rc = frame_parse(c->in.p + off, c->in.len - off,
				 conn_max_frame(c), c->zstd, &c->scratch, &body,
				 &blen, &used, &why);
		if (rc <= 0)
			break;
		off += used;
		if (off == c->in.len && off == used && blen >= CONN_TAKE_MIN &&
		    body == c->in.p + FRAME_HDR_LEN) {
			/* The buffer holds just this frame: hand it over. */
			off = 0;
			conn_message(c, body, blen, buf_steal(&c->in, NULL));
		} else {
			conn_message(c, body, blen, NULL);
		}
		if (c->state == CONN_CLOSED)
			return -ECONNRESET;
		rc = 0;
	}
	buf_consume(&c->in, off);
	if (rc < 0)
		log_warn("%s: broken framing, closing: %s", c->peer, why);
	return rc;
}

/*
 * How much to read next: a chunk, or the rest of a big frame whose header
 * is in (conn_parse leaves a partial frame at the start), so that the
 * buffer is sized once and the frame can be handed over (conn_message).
 */
static size_t conn_room(const struct conn *c)
{
	size_t room = c->in.limit - c->in.len, want = CONN_READ_CHUNK, total;

	if (c->in.len >= FRAME_HDR_LEN) {
		total = FRAME_HDR_LEN + (((size_t)c->in.p[0] & 0x7f) << 24 |
					 (size_t)c->in.p[1] << 16 |
					 (size_t)c->in.p[2] << 8 | c->in.p[3]);
		if (total > c->in.len && total - c->in.len > want)
			want = total - c->in.len;
	}
	return room < want ? room : want;
}

static void conn_read(struct conn *c)
{
	ssize_t n;
	size_t room;

	if (c->reading)
		return;
	c->reading = 1;
	for (;;) {
		if (conn_parse(c) < 0)
			goto close;
		if (!conn_can_read(c))
			break;
		room = conn_room(c);
		if (room == 0 || buf_reserve(&c->in, room)) {
			/* frame_parse refuses frames over the limit, so a
			 * full buffer means we are out of memory. */
			log_err("%s: cannot grow input buffer", c->peer);
			goto close;
		}
		n = transport_read(c->tc, c->in.p + c->in.len, room);
		if (n == -EAGAIN)
			break;
		if (n <= 0) {
			if (n < 0)
				log_debug("%s: read: %s", c->peer,
					  strerror((int)-n));
			goto close;
		}
		c->in.len += (size_t)n;
	}
	c->reading = 0;
	conn_update(c);
	return;
close:
	c->reading = 0;
	conn_close(c);
}

/* Make the epoll mask match what the connection can do now. */
void conn_update(struct conn *c)
{
	uint32_t want = 0;
	int readable;

	if (c->state == CONN_CLOSED)
		return;
	if (c->b->stopping && conn_idle(c) && c->state != CONN_OPENING) {
		conn_close(c);
		return;
	}
	readable = conn_can_read(c);
	/* Not reading: no next request will wake the loop, a finished job
	 * must (worker_complete). */
	__atomic_store_n(&c->rd_paused, !readable, __ATOMIC_SEQ_CST);
	if (c->state == CONN_HANDSHAKE || readable)
		want |= EPOLLIN;
	if (c->out_head)
		want |= EPOLLOUT;
	if (want != c->events) {
		broker_watch(c->b, c->fd, &c->src, want, 0);
		/* Resuming: frames (or TLS records) may already be buffered
		 * with no new socket event to announce them. */
		if (readable && !(c->events & EPOLLIN)) {
			c->events = want;
			conn_read(c);
			return;
		}
		c->events = want;
	}
}

void conn_event(struct conn *c, uint32_t events)
{
	int rc;

	if (c->state == CONN_CLOSED)
		return;
	if (c->state == CONN_HANDSHAKE) {
		rc = transport_handshake(c->tc);
		if (rc == -EAGAIN)
			return;
		if (rc) {
			log_info("%s: TLS handshake failed: %s", c->peer,
				 strerror(-rc));
			conn_close(c);
			return;
		}
		c->state = CONN_HELLO;
		events |= EPOLLIN; /* the handshake may have buffered data */
	}
	if (events & EPOLLOUT)
		conn_flush(c);
	if (c->state != CONN_CLOSED &&
	    (events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		conn_read(c);
	if (c->state != CONN_CLOSED && (events & EPOLLERR))
		conn_close(c);
}

/* ---- lifetime --------------------------------------------------------------
 */

int conn_idle(const struct conn *c)
{
	return c->inflight == 0 && !c->out_head;
}

void conn_drain(struct conn *c)
{
	conn_update(c);
}

void conn_tick(struct conn *c, time_t now)
{
	if ((c->state == CONN_HANDSHAKE || c->state == CONN_HELLO) &&
	    !c->internal && now - c->created > CONN_HELLO_TIMEOUT) {
		log_info("%s: no HELLO within %d s, closing", c->peer,
			 CONN_HELLO_TIMEOUT);
		conn_close(c);
	}
}

void conn_close(struct conn *c)
{
	struct outchunk *ch;
	struct job *j, *next;

	if (c->state == CONN_CLOSED)
		return;
	log_debug("%s: closing", c->peer);
	/* Queued requests are dropped; running ones finish on their own. */
	for (j = c->jobs; j; j = next) {
		next = j->cnext;
		if (!worker_cancel(&c->b->pool, j))
			continue;
		conn_job_unlink(c, j);
		c->inflight--;
		c->expect_bytes -= j->expect;
		c->refs--;
		conn_job_free(j);
	}
	broker_unwatch(c->b, c->fd);
	pthread_mutex_lock(&c->olock); /* no worker is writing on fd */
	c->direct = c->partial = 0;
	transport_close(c->tc);
	c->tc = NULL;
	c->fd = -1;
	pthread_mutex_unlock(&c->olock);
	while ((ch = c->out_head)) {
		c->out_head = ch->next;
		free(ch->p);
		free(ch);
	}
	c->out_tail = NULL;
	c->out_bytes = 0;
	buf_cleanup(&c->in);
	buf_cleanup(&c->scratch);
	c->state = CONN_CLOSED;
	c->b->nconns--;
	conn_release(c);
}

void conn_reap(struct broker *b)
{
	struct conn *c, *next;

	for (c = b->conns; c; c = next) {
		next = c->next;
		if (c->state != CONN_CLOSED || c->refs || c->sess)
			continue;
		if (c->prev)
			c->prev->next = c->next;
		else
			b->conns = c->next;
		if (c->next)
			c->next->prev = c->prev;
		pthread_mutex_destroy(&c->olock);
		free(c);
	}
}

struct conn *conn_new_internal(struct broker *b, int fd, const char *fsid,
			       enum token_intent intent)
{
	struct transport_conn *tc;
	struct conn *c;

	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0)
		return NULL;
	tc = transport_wrap_fd(fd);
	if (!tc)
		return NULL;
	c = conn_new(b, tc, 1);
	if (!c) {
		transport_close(tc);
		return NULL;
	}
	snprintf(c->internal_claims.sid, sizeof(c->internal_claims.sid),
		 "local-mount");
	snprintf(c->internal_claims.filesystem_id,
		 sizeof(c->internal_claims.filesystem_id), "%s", fsid);
	snprintf(c->internal_claims.tenant, sizeof(c->internal_claims.tenant),
		 "local");
	c->internal_claims.intent = intent;
	return c;
}
