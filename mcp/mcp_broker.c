/*
 * mcp_broker.c - occfs-mcp's link to the broker: one session, three ops.
 *
 * The link is an ordinary RPC client session opened with the handle the
 * process was given, so the broker confines it to that handle's
 * filesystem_id exactly as it confines the guest's mount.  Only PING,
 * STATFS (of the root) and DLP_FINDINGS (which the broker answers from the
 * handle's filesystem_id) are ever sent: nothing here can name a node, a
 * path or another filesystem, whatever the MCP peer asks for.
 *
 * The handle stays in locked, non-dumpable memory (handle_file.c) so that
 * a broker restart or a dropped connection costs a reconnect, not the
 * session.  Its claims are decoded without verifying the signature, for
 * display only (expiry, intent, sid): the broker verified it, and the
 * filesystem_id shown is the one the broker's HELLO reply names.
 */
#include "mcp.h"

#include "handle_file.h"
#include "log.h"
#include "proto.h"
#include "rpcc.h"
#include "token.h"
#include "transport.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct mcp_broker {
	pthread_mutex_t lock; /* serialises (re)connects and the fields below */
	struct transport_ep ep;
	char endpoint[300];
	char ca_file[4096];
	struct handle_secret h; /* the handle, kept for reconnects */
	int timeout_ms;
	struct rpcc *rpc; /* NULL when not connected */
	char fsid[256];	  /* from the HELLO reply */
	int rdonly;
	int revoked;   /* set by the reader thread: atomic */
	char why[256]; /* the last connect failure */
	/* Claims for display, decoded without verification. */
	char sid[128];
	char intent[16];
	int64_t exp;
};

/* ---- the handle's claims (display only) ---------------------------------- */

static int claims_decode(struct mcp_broker *b, const char *jwt, size_t len)
{
	struct token_claims c;
	int rc = token_peek(jwt, len, &c);

	if (rc)
		return rc;
	snprintf(b->sid, sizeof(b->sid), "%s", c.sid);
	snprintf(b->intent, sizeof(b->intent), "%s",
		 token_intent_name(c.intent));
	b->exp = c.exp;
	explicit_bzero(&c, sizeof(c));
	return 0;
}

/* ---- the session ----------------------------------------------------------
 */

/* Called on the reader thread for broker pushes. */
static void broker_push(void *arg, const struct proto_msg *m)
{
	struct mcp_broker *b = arg;

	if (m->op != PROTO_OP_SESSION_REVOKED)
		return;
	__atomic_store_n(&b->revoked, 1, __ATOMIC_RELEASE);
	log_warn("the broker revoked this session (%s)",
		 m->name ? m->name : "no reason given");
}

/* Open the session; b->lock held. 0 or -errno with b->why set. */
static int broker_connect(struct mcp_broker *b)
{
	struct transport_tls_opts tls = {.ca_file =
					     b->ca_file[0] ? b->ca_file : NULL};
	struct rpcc_opts ro = {0};
	struct transport_conn *conn = NULL;
	struct proto_msg hello;
	char why[PROTO_MAX_REASON + 1] = "";
	const char *cwhy = NULL;
	int rc;

	proto_msg_init(&hello);
	rc =
	    transport_connect(&b->ep, b->ep.kind == TRANSPORT_TLS ? &tls : NULL,
			      b->timeout_ms, &conn, &cwhy);
	if (rc) {
		snprintf(b->why, sizeof(b->why), "cannot connect: %s",
			 cwhy && *cwhy ? cwhy : strerror(-rc));
		return rc;
	}
	ro.handle = b->h.p;
	ro.handle_len = b->h.len;
	ro.timeout_ms = b->timeout_ms;
	ro.on_push = broker_push;
	ro.push_arg = b;
	rc = rpcc_start(conn, &ro, &b->rpc, &hello, why, sizeof(why));
	if (rc) {
		b->rpc = NULL;
		snprintf(b->why, sizeof(b->why), "session refused: %s",
			 *why ? why : strerror(-rc));
		goto out;
	}
	snprintf(b->fsid, sizeof(b->fsid), "%s", hello.name ? hello.name : "");
	b->rdonly = !!(hello.flags & PROTO_HELLO_RDONLY);
	__atomic_store_n(&b->revoked, 0, __ATOMIC_RELEASE);
	rc = rpcc_run(b->rpc);
	if (rc) {
		rpcc_free(b->rpc);
		b->rpc = NULL;
		snprintf(b->why, sizeof(b->why), "cannot start the client: %s",
			 strerror(-rc));
		goto out;
	}
	b->why[0] = '\0';
out:
	proto_msg_cleanup(&hello);
	return rc;
}

/* A live session, reconnecting if it died; b->lock held. */
static int broker_ready(struct mcp_broker *b)
{
	if (b->rpc && rpcc_alive(b->rpc))
		return 0;
	if (b->rpc) {
		rpcc_free(b->rpc);
		b->rpc = NULL;
	}
	return broker_connect(b);
}

/* One call of the three this module ever makes; b->lock held. */
static int broker_call(struct mcp_broker *b, uint32_t op, uint64_t len,
		       struct proto_msg *rep, char *why, size_t whylen)
{
	struct proto_msg req;
	int rc;

	rc = broker_ready(b);
	if (rc) {
		snprintf(why, whylen, "broker %s: %s", b->endpoint, b->why);
		return rc;
	}
	proto_msg_init(&req);
	req.kind = PROTO_REQ;
	req.op = op;
	req.ino = 1;   /* the session's root; STATFS needs no other node */
	req.len = len; /* DLP_FINDINGS: how many */
	req.uid = (uint32_t)geteuid();
	req.gid = (uint32_t)getegid();
	rc = rpcc_call(b->rpc, &req, rep);
	proto_msg_cleanup(&req);
	if (rc) {
		snprintf(why, whylen, "broker %s: %s", b->endpoint,
			 strerror(-rc));
		return rc;
	}
	if (rep->err) {
		snprintf(why, whylen, "broker %s: %s%s%s", b->endpoint,
			 strerror(rep->err), rep->reason ? ": " : "",
			 rep->reason ? rep->reason : "");
		return -rep->err;
	}
	return 0;
}

int mcp_broker_statfs(struct mcp_broker *b, struct proto_statfs *st, char *why,
		      size_t whylen)
{
	struct proto_msg rep;
	int rc;

	proto_msg_init(&rep);
	pthread_mutex_lock(&b->lock);
	rc = broker_call(b, PROTO_OP_STATFS, 0, &rep, why, whylen);
	if (!rc)
		*st = rep.st;
	pthread_mutex_unlock(&b->lock);
	proto_msg_cleanup(&rep);
	return rc;
}

int mcp_broker_dlp_findings(struct mcp_broker *b, unsigned limit, json_t **list,
			    char *why, size_t whylen)
{
	struct proto_msg rep;
	json_error_t e;
	int rc;

	*list = NULL;
	proto_msg_init(&rep);
	pthread_mutex_lock(&b->lock);
	rc = broker_call(b, PROTO_OP_DLP_FINDINGS, limit, &rep, why, whylen);
	pthread_mutex_unlock(&b->lock);
	if (rc)
		goto out;
	/* The codec bounded the document; it must be a JSON array. */
	*list = json_loadb((const char *)rep.data, rep.data_len,
			   JSON_REJECT_DUPLICATES, &e);
	if (!json_is_array(*list)) {
		json_decref(*list);
		*list = NULL;
		snprintf(why, whylen, "broker %s: malformed DLP_FINDINGS reply",
			 b->endpoint);
		rc = -EBADMSG;
	}
out:
	proto_msg_cleanup(&rep);
	return rc;
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

void mcp_broker_status(struct mcp_broker *b, struct mcp_broker_status *st)
{
	struct proto_msg rep;
	char why[sizeof(st->why)];
	double t0;

	memset(st, 0, sizeof(*st));
	st->latency_ms = -1;
	proto_msg_init(&rep);
	pthread_mutex_lock(&b->lock);
	t0 = now_ms();
	if (broker_call(b, PROTO_OP_PING, 0, &rep, why, sizeof(why)) == 0)
		st->latency_ms = now_ms() - t0;
	else
		snprintf(st->why, sizeof(st->why), "%s", why);
	st->connected = b->rpc && rpcc_alive(b->rpc);
	st->revoked = __atomic_load_n(&b->revoked, __ATOMIC_ACQUIRE);
	snprintf(st->endpoint, sizeof(st->endpoint), "%s", b->endpoint);
	snprintf(st->filesystem_id, sizeof(st->filesystem_id), "%s", b->fsid);
	snprintf(st->sid, sizeof(st->sid), "%s", b->sid);
	snprintf(st->intent, sizeof(st->intent), "%s", b->intent);
	st->exp = b->exp;
	st->rdonly = b->rdonly;
	pthread_mutex_unlock(&b->lock);
	proto_msg_cleanup(&rep);
}

struct mcp_broker *mcp_broker_new(const char *endpoint, const char *ca_file,
				  struct handle_secret *h, int timeout_ms,
				  char *why, size_t whylen)
{
	struct mcp_broker *b = calloc(1, sizeof(*b));
	const char *pwhy = NULL;
	int rc;

	if (!b)
		return NULL;
	pthread_mutex_init(&b->lock, NULL);
	rc = transport_parse(endpoint, &b->ep, &pwhy);
	if (rc) {
		snprintf(why, whylen, "bad broker endpoint %s: %s", endpoint,
			 pwhy ? pwhy : strerror(-rc));
		goto fail;
	}
	snprintf(b->endpoint, sizeof(b->endpoint), "%s", endpoint);
	snprintf(b->ca_file, sizeof(b->ca_file), "%s", ca_file ? ca_file : "");
	rc = claims_decode(b, h->p, h->len);
	if (rc) {
		snprintf(why, whylen, "the handle is not a session handle");
		goto fail;
	}
	b->h = *h; /* ownership moves here */
	memset(h, 0, sizeof(*h));
	b->timeout_ms = timeout_ms;
	pthread_mutex_lock(&b->lock);
	if (broker_connect(b))
		log_warn("broker %s: %s (retried on each request)", endpoint,
			 b->why);
	pthread_mutex_unlock(&b->lock);
	return b;
fail:
	pthread_mutex_destroy(&b->lock);
	free(b);
	errno = -rc;
	return NULL;
}

void mcp_broker_free(struct mcp_broker *b)
{
	if (!b)
		return;
	if (b->rpc)
		rpcc_free(b->rpc);
	handle_secret_free(&b->h);
	pthread_mutex_destroy(&b->lock);
	free(b);
}
