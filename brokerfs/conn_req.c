/*
 * conn_req.c - what a connection does with each message it receives, and
 * the jobs that carry its work to the worker pool.
 *
 * The first message must be HELLO, which checks the handle and opens a
 * session on a worker.  After that, session ops (PING, INTERRUPT,
 * DLP_FINDINGS) are answered here and everything else becomes a job for
 * the worker pool.  Jobs come back to the loop through conn_job_done,
 * which hands their replies to the output queue (conn_out.c).
 */
#include "broker.h"
#include "backend.h"
#include "broker_audit.h"
#include "broker_dlp.h"
#include "conn_int.h"
#include "datapipe.h"
#include "dlp_scan.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "frame.h"
#include "log.h"

#define CONN_MAX_BAD 16	     /* malformed messages before we hang up */
#define CONN_TOKEN_LEEWAY 30 /* seconds of clock skew on exp */

/* ---- jobs ------------------------------------------------------------------
 */

void conn_job_free(struct job *j)
{
	proto_msg_cleanup(&j->req);
	buf_cleanup(&j->out);
	free(j->tail);
	free(j->frame);
	free(j);
}

void conn_job_unlink(struct conn *c, struct job *j)
{
	if (j->cprev)
		j->cprev->cnext = j->cnext;
	else
		c->jobs = j->cnext;
	if (j->cnext)
		j->cnext->cprev = j->cprev;
	j->cnext = j->cprev = NULL;
}

/* Replace whatever reply j has with the error err (a positive errno). */
void conn_frame_error(struct job *j, int err)
{
	struct proto_msg rep;

	proto_msg_init(&rep);
	buf_reset(&j->out);
	rep.kind = PROTO_REP;
	rep.op = j->req.op;
	rep.id = j->req.id;
	rep.err = err;
	conn_frame(&rep, j->zstd, &j->out);
}

/* Worker: run one request through the session and frame the reply. */
static void conn_run_request(struct job *j)
{
	const struct proto_opinfo *oi = proto_opinfo(j->req.op);
	struct proto_msg rep;
	int rc;

	proto_msg_init(&rep);
	/* Plain frames only: TLS and zstd need the payload in memory. */
	datapipe_offer(j->conn->plain && !j->zstd);
	rc = session_dispatch(j->sess, &j->req, &rep);
	datapipe_offer(0);
	broker_audit_request(j->sess, j->sess->audit, &j->req, &rep, rc);
	if (oi->flags & OPF_NOREPLY) {
		proto_msg_cleanup(&rep);
		datapipe_discard();
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
	/* A READ payload in a buffer of its own follows the head from there
	 * (worker_reply) instead of being copied into the frame. */
	if (rep.op == PROTO_OP_READ && !rep.err && !rep.data_follows &&
	    rep.data_owned && rep.data == rep.data_owned && j->conn->plain &&
	    !j->zstd)
		rep.data_follows = 1;
	rc = conn_frame(&rep, j->zstd, &j->out);
	if (rc) {
		/* A backend reply over a wire limit: the caller gets EIO. */
		log_err("cannot encode %s reply: %s", oi->name, strerror(-rc));
		proto_msg_cleanup(&rep);
		conn_frame_error(j, EIO);
	}
	/* Piped bytes belong to this frame only if it says so. */
	if (!rep.data_follows)
		datapipe_discard();
	else if (rep.data_owned) {
		j->tail = rep.data_owned;
		j->tail_len = rep.data_len;
		rep.data_owned = NULL;
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
void conn_release(struct conn *c)
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
	m.flags = (c->sess->rdonly ? PROTO_HELLO_RDONLY : 0) |
		  (c->sess->ops->stages_writes ? PROTO_HELLO_STAGED : 0);
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
		if (j->cut) {
			/* Its frame went out in part and the rest is lost:
			 * the stream cannot go on. */
			conn_close(c);
			break;
		}
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
	    (c->sess->ops->quick && c->sess->ops->quick(c->sess->bs, &j->req)))
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
void conn_message(struct conn *c, const uint8_t *body, size_t len,
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
