/*
 * conn.c - one client connection, driven by the event loop.
 *
 * Bytes come in through a bounded buffer, are cut into frames and decoded;
 * the first message must be HELLO, which checks the handle and opens a
 * session on a worker.  After that, session ops (PING, INTERRUPT,
 * DLP_FINDINGS) are answered here and everything else becomes a job for the
 * worker pool. Replies are queued as ready-made frames and written when the
 * socket takes them, in whatever order the jobs finish.
 *
 * Back-pressure: a connection is not read while it has max_inflight
 * requests outstanding or more than CONN_OUT_HIGH bytes waiting to be
 * written, so what one client can make us hold is bounded.  Before HELLO
 * the input buffer is only big enough for a handle.
 *
 * A closed connection is not freed at once: jobs still running on workers
 * point at it, and its session is closed (on a worker) only after they are
 * done.  conn_reap frees it afterwards, outside any connection callback, so
 * no callback ever touches freed memory.
 */
#include "broker.h"
#include "backend.h"
#include "broker_audit.h"
#include "broker_dlp.h"
#include "dlp_scan.h"

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
#define CONN_MAX_BAD 16		    /* malformed messages before we hang up */
#define CONN_TOKEN_LEEWAY 30	    /* seconds of clock skew on exp */

static void conn_update(struct conn *c);
static void conn_read(struct conn *c);

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

/* ---- output ----------------------------------------------------------------
 */

static void conn_flush(struct conn *c)
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
static void conn_enqueue(struct conn *c, uint8_t *p, size_t len)
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
static void conn_finish_partial(struct conn *c, struct job *j)
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
 * is not copied a second time.
 */
static int conn_frame(const struct proto_msg *m, int zstd, struct buf *out)
{
	size_t start = out->len, blen;
	struct buf body;
	int rc;

	if (!zstd) {
		rc = buf_reserve(out, FRAME_HDR_LEN + 512 + m->data_len);
		if (rc)
			return rc;
		out->len += FRAME_HDR_LEN;
		rc = proto_encode(m, out);
		blen = out->len - start - FRAME_HDR_LEN;
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
	buf_init(&body, PROTO_MAX_FRAME);
	rc = proto_encode(m, &body);
	if (!rc)
		rc = frame_wrap(out, body.p, body.len, zstd);
	buf_cleanup(&body);
	return rc;
}

static void conn_send(struct conn *c, const struct proto_msg *m)
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

static void conn_reply_err(struct conn *c, uint32_t op, uint64_t id, int err,
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
static void conn_refuse(struct conn *c, const struct proto_msg *req, int err,
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

/* ---- jobs ------------------------------------------------------------------
 */

static void conn_job_free(struct job *j)
{
	proto_msg_cleanup(&j->req);
	buf_cleanup(&j->out);
	free(j->frame);
	free(j);
}

static void conn_job_unlink(struct conn *c, struct job *j)
{
	if (j->cprev)
		j->cprev->cnext = j->cnext;
	else
		c->jobs = j->cnext;
	if (j->cnext)
		j->cnext->cprev = j->cprev;
	j->cnext = j->cprev = NULL;
}

/* Worker: run one request through the session and frame the reply. */
static void conn_run_request(struct job *j)
{
	const struct proto_opinfo *oi = proto_opinfo(j->req.op);
	struct proto_msg rep;
	int rc;

	proto_msg_init(&rep);
	rc = session_dispatch(j->sess, &j->req, &rep);
	broker_audit_request(j->sess, j->sess->audit, &j->req, &rep, rc);
	if (oi->flags & OPF_NOREPLY) {
		proto_msg_cleanup(&rep);
		return;
	}
	if (rc) {
		proto_msg_cleanup(&rep);
		rep.err = -rc;
	}
	/* Fixed at HELLO, before any request: a peer that did not ask for
	 * the parent's attributes would refuse the extra element. */
	if (!(j->conn->features & PROTO_FEAT_PATTR))
		rep.has_pattr = 0;
	rep.kind = PROTO_REP;
	rep.op = j->req.op;
	rep.id = j->req.id;
	rc = conn_frame(&rep, j->zstd, &j->out);
	if (rc) {
		/* A backend reply over a wire limit: the caller gets EIO. */
		log_err("cannot encode %s reply: %s", oi->name, strerror(-rc));
		proto_msg_cleanup(&rep);
		buf_reset(&j->out);
		rep.kind = PROTO_REP;
		rep.op = j->req.op;
		rep.id = j->req.id;
		rep.err = EIO;
		conn_frame(&rep, j->zstd, &j->out);
	}
	proto_msg_cleanup(&rep);
}

/*
 * Open the session, then record the handle check with its outcome.  The
 * record is durable before the HELLO is answered; if it cannot be made,
 * the session is closed again and the HELLO refused (fail closed).
 */
static void conn_run_open(struct job *j)
{
	struct session *s = j->sess;

	j->rc = session_open(s, j->conn->b->backend);
	if (j->rc)
		broker_audit_sess_refuse(s->audit,
					 s->why[0] ? s->why : strerror(-j->rc));
	if (broker_audit_logon(s, s->audit) < 0) {
		session_close(s);
		j->rc = -EACCES;
	}
}

/* A handle refused on the loop: only the failure is recorded, here. */
static void conn_run_refused(struct job *j)
{
	broker_audit_logon(j->sess, j->sess->audit);
}

static void conn_run_close(struct job *j)
{
	int opened = j->sess->bs != NULL;

	session_close(j->sess);
	if (opened)
		broker_audit_logoff(j->sess, j->sess->audit, NULL);
}

static void conn_sess_free(struct session *s)
{
	if (!s)
		return;
	broker_audit_sess_free(s->audit);
	session_free(s);
}

static struct job *conn_job_new(const uint8_t *body, size_t len)
{
	struct job *j = malloc(sizeof(*j) + len);

	if (!j)
		return NULL;
	memset(j, 0, sizeof(*j));
	if (len)
		memcpy(j->body, body, len);
	buf_init(&j->out, 0);
	return j;
}

/* Closed and nothing running: close the session on a worker. */
static void conn_release(struct conn *c)
{
	struct job *j;

	if (c->state != CONN_CLOSED || c->refs || !c->sess || c->sess_closing)
		return;
	j = conn_job_new(NULL, 0);
	if (!j) {
		/* Closing inline blocks the loop once; better than leaking. */
		if (c->sess->bs)
			broker_audit_logoff(c->sess, c->sess->audit, NULL);
		session_close(c->sess);
		conn_sess_free(c->sess);
		c->sess = NULL;
		return;
	}
	j->kind = JOB_CLOSE;
	j->conn = c;
	j->sess = c->sess;
	j->run = conn_run_close;
	c->sess_closing = 1;
	c->refs++;
	worker_submit(&c->b->pool, j);
}

/* Why the HELLO of j is refused, as the client will print it. */
static void conn_open_failed(struct job *j, char *reason, size_t len)
{
	const char *why = broker_audit_sess_reason(j->sess->audit);

	if (j->run == conn_run_refused ||
	    (why && strcmp(why, BROKER_AUDIT_UNAVAILABLE) == 0))
		snprintf(reason, len, "%s", why);
	else
		snprintf(reason, len, "cannot open filesystem %s: %s",
			 j->sess->claims.filesystem_id,
			 j->sess->why[0] ? j->sess->why : strerror(-j->rc));
}

static void conn_opened(struct conn *c, struct job *j)
{
	struct proto_msg m;
	char reason[PROTO_MAX_REASON];

	if (c->state == CONN_CLOSED || j->rc) {
		if (j->rc) {
			conn_open_failed(j, reason, sizeof(reason));
			conn_sess_free(j->sess);
			conn_refuse(c, &j->req, -j->rc, reason);
		} else {
			c->sess = j->sess; /* conn_release closes it */
		}
		return;
	}
	c->sess = j->sess;
	c->state = CONN_READY;
	/* NOFLUSH only where FLUSH does nothing: no DLP scan at close. */
	if (!(c->sess->ops->dlp_only_ops & BACKEND_OP_BIT(PROTO_OP_FLUSH)) ||
	    dlp_scan_active(NULL))
		c->features &= ~PROTO_FEAT_NOFLUSH;
	c->in.limit = FRAME_HDR_LEN + c->max_payload +
		      (PROTO_MAX_FRAME - PROTO_MAX_PAYLOAD);
	proto_msg_init(&m);
	m.kind = PROTO_REP;
	m.op = PROTO_OP_HELLO;
	m.id = j->req.id;
	m.version = PROTO_VERSION;
	m.features = c->features;
	m.max_payload = c->max_payload;
	m.flags = c->sess->rdonly ? PROTO_HELLO_RDONLY : 0;
	m.ino = 1;
	m.name = c->sess->claims.filesystem_id; /* borrowed */
	conn_send(c, &m);
	/* Compression starts with the first frame after the HELLO reply. */
	c->zstd = !!(c->features & PROTO_FEAT_ZSTD);
}

void conn_job_done(struct conn *c, struct job *j)
{
	size_t len = 0;
	uint8_t *p;

	c->refs--;
	switch (j->kind) {
	case JOB_OPEN:
		conn_opened(c, j);
		break;
	case JOB_CLOSE:
		conn_sess_free(c->sess);
		c->sess = NULL;
		break;
	case JOB_REQUEST:
		conn_job_unlink(c, j);
		c->inflight--;
		c->expect_bytes -= j->expect;
		if (c->state == CONN_CLOSED || j->sent == j->out.len)
			break; /* nothing, or all of it went out already */
		if (j->sent) {
			conn_finish_partial(c, j);
		} else {
			p = buf_steal(&j->out, &len);
			conn_enqueue(c, p, len);
		}
		break;
	}
	conn_job_free(j);
	if (c->state == CONN_CLOSED)
		conn_release(c);
	else
		conn_update(c);
}

/* ---- requests --------------------------------------------------------------
 */

/*
 * Hand the HELLO to a worker: open the session and record the handle check
 * (conn_run_open), or only record a refusal (refused: why, rc the error).
 */
static int conn_hello_submit(struct conn *c, struct job *j,
			     const struct token_claims *claims,
			     const char *refused, int rc)
{
	uid_t uid = 0;
	gid_t gid = 0;
	pid_t pid = 0;
	int cred;

	j->sess = session_new(c->b->bops, claims, c->peer);
	if (!j->sess)
		return -ENOMEM;
	if (broker_audit_on()) {
		cred = !c->internal &&
		       transport_peer_cred(c->tc, &uid, &gid, &pid) == 0;
		j->sess->audit = broker_audit_sess_new(cred, uid, gid, pid);
		if (!j->sess->audit) {
			session_free(j->sess);
			j->sess = NULL;
			return -ENOMEM;
		}
		if (refused)
			broker_audit_sess_refuse(j->sess->audit, refused);
	}
	j->kind = JOB_OPEN;
	j->conn = c;
	j->run = refused ? conn_run_refused : conn_run_open;
	j->rc = rc;
	c->state = CONN_OPENING;
	c->refs++;
	worker_submit(&c->b->pool, j);
	return 0;
}

static void conn_hello(struct conn *c, struct job *j)
{
	const struct broker_config *cfg = c->b->cfg;
	struct proto_msg *req = &j->req;
	struct token_claims claims;
	char reason[96];
	const char *why = NULL;
	int rc;

	if (req->version != PROTO_VERSION) {
		snprintf(reason, sizeof(reason),
			 "unsupported protocol version %u, broker speaks %d",
			 req->version, PROTO_VERSION);
		log_warn("%s: HELLO refused: %s", c->peer, reason);
		conn_refuse(c, req, EPROTO, reason);
		goto drop;
	}
	if (c->internal) {
		claims = c->internal_claims;
	} else if (!c->b->pubkey) {
		rc = -EKEYREJECTED;
		why = "no token key configured";
		goto refused;
	} else {
		rc = token_verify((const char *)req->data, req->data_len,
				  c->b->pubkey, cfg->audience, time(NULL),
				  CONN_TOKEN_LEEWAY, &claims, &why);
		if (rc) {
			log_warn("%s: HELLO refused: %s", c->peer, why);
			goto refused;
		}
	}
	c->features = req->features & PROTO_FEAT_ALL;
	c->max_payload =
	    req->max_payload && req->max_payload < PROTO_MAX_PAYLOAD
		? req->max_payload
		: PROTO_MAX_PAYLOAD;
	if (c->max_payload < 4096)
		c->max_payload = 4096;
	if (conn_hello_submit(c, j, &claims, NULL, 0) == 0)
		return;
	conn_refuse(c, req, ENOMEM, "out of memory");
	goto drop;
refused:
	/* The failed check is recorded (on a worker) before the refusal. */
	if (broker_audit_on()) {
		/* Only claims under a good signature are worth recording. */
		if (rc != -EKEYEXPIRED && rc != -EACCES)
			memset(&claims, 0, sizeof(claims));
		else if (broker_audit_claims((const char *)req->data,
					     req->data_len, &claims) < 0)
			memset(&claims, 0, sizeof(claims));
		if (conn_hello_submit(c, j, &claims, why, rc) == 0)
			return;
	}
	conn_refuse(c, req, -rc, why);
drop:
	conn_job_free(j);
}

static void conn_interrupt(struct conn *c, uint64_t target)
{
	struct job *j;

	for (j = c->jobs; j; j = j->cnext)
		if (j->req.id == target)
			break;
	/* Unknown, finished or already running: nothing to do. */
	if (!j || !worker_cancel(&c->b->pool, j))
		return;
	conn_job_unlink(c, j);
	c->inflight--;
	c->expect_bytes -= j->expect;
	c->refs--;
	if (!(proto_opinfo(j->req.op)->flags & OPF_NOREPLY))
		conn_reply_err(c, j->req.op, j->req.id, EINTR, NULL);
	conn_job_free(j);
}

static int conn_limits(const struct conn *c, const struct proto_msg *req)
{
	if (req->op == PROTO_OP_READ && req->len > c->max_payload)
		return -EINVAL;
	if (req->op == PROTO_OP_WRITE && req->data_len > c->max_payload)
		return -EINVAL;
	return 0;
}

/*
 * Reply bytes a request may bring back.  They count against the output
 * budget from the moment the request is taken, so that 64 READs in flight
 * cannot pile 64 MiB of replies on top of a full output queue.
 */
static size_t conn_expect(const struct proto_msg *req)
{
	switch (req->op) {
	case PROTO_OP_READ:
	case PROTO_OP_READDIRPLUS:
	case PROTO_OP_GETXATTR:
	case PROTO_OP_LISTXATTR:
		return req->len < PROTO_MAX_FRAME ? req->len : PROTO_MAX_FRAME;
	default:
		return 0;
	}
}

static void conn_submit(struct conn *c, struct job *j)
{
	const struct proto_opinfo *oi = proto_opinfo(j->req.op);
	int rc;

	rc = session_check(c->sess, &j->req);
	if (!rc)
		rc = conn_limits(c, &j->req);
	if (rc) {
		broker_audit_request(c->sess, c->sess->audit, &j->req, NULL,
				     rc);
		if (!(oi->flags & OPF_NOREPLY))
			conn_reply_err(c, j->req.op, j->req.id, -rc, NULL);
		conn_job_free(j);
		return;
	}
	j->kind = JOB_REQUEST;
	j->conn = c;
	j->sess = c->sess;
	j->zstd = c->zstd;
	j->run = conn_run_request;
	j->expect = conn_expect(&j->req);
	c->expect_bytes += j->expect;
	j->cnext = c->jobs;
	if (c->jobs)
		c->jobs->cprev = j;
	c->jobs = j;
	c->inflight++;
	c->refs++;
	c->sess->requests++;
	c->sess->last_active = time(NULL);
	if ((j->req.op < 64 &&
	     (c->sess->ops->inline_ops & BACKEND_OP_BIT(j->req.op))) ||
	    (c->sess->ops->quick && c->sess->ops->quick(&j->req)))
		worker_run_inline(&c->b->pool, j);
	else
		worker_submit(&c->b->pool, j);
}

/*
 * DLP_FINDINGS: the recent findings of this session's own filesystem_id,
 * from the handle's claims; the request can only say how many.
 */
static void conn_dlp_findings(struct conn *c, const struct proto_msg *req)
{
	struct proto_msg m;
	struct buf doc;
	int rc;

	buf_init(&doc, PROTO_MAX_FINDINGS_JSON);
	rc = session_check(c->sess, req);
	if (!rc)
		rc = broker_dlp_findings(c->sess->claims.filesystem_id,
					 req->len, &doc);
	if (rc) {
		conn_reply_err(c, req->op, req->id, -rc, NULL);
		goto out;
	}
	proto_msg_init(&m);
	m.kind = PROTO_REP;
	m.op = req->op;
	m.id = req->id;
	m.data = doc.p;
	m.data_len = doc.len;
	conn_send(c, &m);
	c->sess->requests++;
	c->sess->last_active = time(NULL);
out:
	buf_cleanup(&doc);
}

/* A message that did not decode: answer it if we know whom, count it. */
static void conn_bad(struct conn *c, const struct proto_msg *m, int rc,
		     const char *why)
{
	const struct proto_opinfo *oi = proto_opinfo(m->op);

	c->bad++;
	log_warn("%s: malformed message: %s", c->peer, why);
	if (m->kind == PROTO_REQ && m->id) {
		if (rc == -EPROTO)
			/* An op this broker does not know: ENOSYS under
			 * the caller's own op number (see proto_encode). */
			conn_reply_err(c, m->op, m->id, ENOSYS, "unknown op");
		else if (oi && !(oi->flags & (OPF_NOREPLY | OPF_PUSH)))
			conn_reply_err(c, m->op, m->id, EBADMSG, why);
	}
	if (c->state != CONN_READY || c->bad > CONN_MAX_BAD) {
		c->close_after_flush = 1;
		conn_flush(c);
	}
}

/*
 * One frame body: decode it and act.  frame, when not NULL, is the input
 * buffer holding body, handed over whole: a big WRITE is not copied.
 */
static void conn_message(struct conn *c, const uint8_t *body, size_t len,
			 uint8_t *frame)
{
	const char *why = NULL;
	struct job *j;
	int rc;

	j = conn_job_new(body, frame ? 0 : len);
	if (!j) {
		free(frame);
		log_err("%s: out of memory", c->peer);
		conn_close(c);
		return;
	}
	j->frame = frame;
	rc = proto_decode(frame ? body : j->body, len, &j->req, &why);
	if (rc == 0 && j->req.kind != PROTO_REQ) {
		rc = -EBADMSG;
		why = "only requests may be sent to the broker";
	}
	if (rc) {
		conn_bad(c, &j->req, rc, why);
		goto drop;
	}
	if (c->state == CONN_HELLO) {
		if (j->req.op == PROTO_OP_HELLO) {
			conn_hello(c, j);
			return;
		}
		log_warn("%s: %s before HELLO", c->peer,
			 proto_op_name(j->req.op));
		conn_refuse(c, &j->req, EPROTO, "HELLO expected");
		goto drop;
	}
	switch (j->req.op) {
	case PROTO_OP_HELLO:
		conn_reply_err(c, j->req.op, j->req.id, EPROTO,
			       "HELLO already done");
		break;
	case PROTO_OP_PING:
		conn_reply_err(c, j->req.op, j->req.id, 0, NULL);
		break;
	case PROTO_OP_INTERRUPT:
		conn_interrupt(c, j->req.target);
		break;
	case PROTO_OP_DLP_FINDINGS:
		conn_dlp_findings(c, &j->req);
		break;
	default:
		conn_submit(c, j);
		return;
	}
drop:
	conn_job_free(j);
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
static void conn_update(struct conn *c)
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
