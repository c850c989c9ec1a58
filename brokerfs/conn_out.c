/*
 * conn_out.c - the output side of a connection: framing replies and
 * sending them.
 *
 * Replies are queued as ready-made frames and written when the socket
 * takes them, in whatever order the jobs finish.  A worker may write its
 * reply itself while nothing is queued (worker_reply); the queue and
 * those writes share the connection's output lock.
 */
#include "broker.h"
#include "conn_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "log.h"

void conn_flush(struct conn *c)
{
	struct outchunk *ch;
	ssize_t n = 0;

	/* Workers write whole frames under olock while nothing is queued
	 * (worker_reply); a frame one of them left half written is finished
	 * first, once its job is done (conn_job_done). */
	pthread_mutex_lock(&c->olock);
	while (!c->partial && (ch = c->out_head)) {
		n = transport_write(c->tc, ch->p + ch->off, ch->len - ch->off);
		if (n == -EAGAIN)
			break;
		if (n <= 0)
			break;
		ch->off += (size_t)n;
		c->out_bytes -= (size_t)n;
		if (ch->off < ch->len)
			continue;
		c->out_head = ch->next;
		if (!c->out_head)
			c->out_tail = NULL;
		free(ch->p);
		free(ch);
	}
	c->direct = c->plain && !c->out_head && !c->partial &&
		    c->state == CONN_READY && !c->close_after_flush;
	pthread_mutex_unlock(&c->olock);
	if (n <= 0 && n != -EAGAIN && c->out_head && !c->partial) {
		log_debug("%s: write: %s", c->peer, strerror((int)-n));
		conn_close(c);
		return;
	}
	if (!c->out_head && c->close_after_flush) {
		conn_close(c);
		return;
	}
	conn_update(c);
}

/* Queue one frame (takes p) and try to write it at once. */
void conn_enqueue(struct conn *c, uint8_t *p, size_t len)
{
	struct outchunk *ch;

	if (c->state == CONN_CLOSED || !len) {
		free(p);
		return;
	}
	ch = calloc(1, sizeof(*ch));
	if (!ch) {
		free(p);
		log_err("%s: out of memory queueing a reply", c->peer);
		conn_close(c);
		return;
	}
	ch->p = p;
	ch->len = len;
	pthread_mutex_lock(&c->olock);
	c->direct = 0; /* frames go out in queue order from now on */
	if (c->out_tail)
		c->out_tail->next = ch;
	else
		c->out_head = ch;
	c->out_tail = ch;
	c->out_bytes += len;
	pthread_mutex_unlock(&c->olock);
	conn_flush(c);
}

/* The rest of a frame a worker wrote in part: it goes out first. */
void conn_finish_partial(struct conn *c, struct job *j)
{
	struct outchunk *ch = calloc(1, sizeof(*ch));
	size_t len = 0;

	if (!ch) {
		log_err("%s: out of memory queueing a reply", c->peer);
		conn_close(c); /* the stream is cut mid-frame */
		return;
	}
	ch->p = buf_steal(&j->out, &len);
	ch->len = len;
	ch->off = j->sent;
	pthread_mutex_lock(&c->olock);
	ch->next = c->out_head;
	c->out_head = ch;
	if (!c->out_tail)
		c->out_tail = ch;
	c->out_bytes += len - j->sent;
	c->partial = 0;
	pthread_mutex_unlock(&c->olock);
	conn_flush(c);
}

/*
 * Encode and frame m; -errno when it cannot be encoded.  Without zstd the
 * body is encoded right after room for the header, so a large READ payload
 * is not copied a second time.  With m->data_follows the frame's length
 * counts the payload, which the sender appends from the thread's pipe.
 */
int conn_frame(const struct proto_msg *m, int zstd, struct buf *out)
{
	size_t start = out->len, blen;
	size_t inline_len = m->data_follows ? 0 : m->data_len;
	struct buf body;
	int rc;

	if (!zstd) {
		rc = buf_reserve(out, FRAME_HDR_LEN + 512 + inline_len);
		if (rc)
			return rc;
		out->len += FRAME_HDR_LEN;
		rc = proto_encode(m, out);
		blen =
		    out->len - start - FRAME_HDR_LEN + m->data_len - inline_len;
		if (!rc && blen > PROTO_MAX_FRAME)
			rc = -EMSGSIZE;
		if (rc) {
			out->len = start;
			return rc;
		}
		out->p[start] = (uint8_t)(blen >> 24);
		out->p[start + 1] = (uint8_t)(blen >> 16);
		out->p[start + 2] = (uint8_t)(blen >> 8);
		out->p[start + 3] = (uint8_t)blen;
		return 0;
	}
	if (m->data_follows)
		return -EINVAL; /* the payload must go through zstd */
	buf_init(&body, PROTO_MAX_FRAME);
	rc = proto_encode(m, &body);
	if (!rc)
		rc = frame_wrap(out, body.p, body.len, zstd);
	buf_cleanup(&body);
	return rc;
}

void conn_send(struct conn *c, const struct proto_msg *m)
{
	struct buf out;
	size_t len = 0;
	uint8_t *p;
	int rc;

	buf_init(&out, 0);
	rc = conn_frame(m, c->zstd, &out);
	if (rc) {
		log_err("%s: cannot encode %s: %s", c->peer,
			proto_op_name(m->op), strerror(-rc));
		buf_cleanup(&out);
		return;
	}
	p = buf_steal(&out, &len);
	conn_enqueue(c, p, len);
}

void conn_reply_err(struct conn *c, uint32_t op, uint64_t id, int err,
		    const char *reason)
{
	struct proto_msg m;

	proto_msg_init(&m);
	m.kind = PROTO_REP;
	m.op = op;
	m.id = id;
	m.err = err;
	m.reason = (char *)reason; /* borrowed: m is never cleaned up */
	conn_send(c, &m);
}

/* Refuse and hang up once the refusal is written. */
void conn_refuse(struct conn *c, const struct proto_msg *req, int err,
		 const char *reason)
{
	conn_reply_err(c, req->op, req->id, err, reason);
	c->close_after_flush = 1;
	conn_flush(c);
}

void conn_revoke(struct conn *c, const char *reason)
{
	struct proto_msg m;
	char name[PROTO_MAX_NAME + 1];

	if (c->state != CONN_READY)
		return;
	snprintf(name, sizeof(name), "%s",
		 reason && *reason ? reason : "session revoked");
	proto_msg_init(&m);
	m.kind = PROTO_PUSH;
	m.op = PROTO_OP_SESSION_REVOKED;
	m.name = name;
	log_info("%s: session %s revoked: %s", c->peer, c->sess->claims.sid,
		 name);
	conn_send(c, &m);
	c->close_after_flush = 1;
	conn_flush(c);
}
