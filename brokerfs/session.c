/*
 * session.c - one backend session per accepted HELLO.
 *
 * A session binds a connection to one filesystem_id with the rights its
 * handle grants.  The read-only check lives here, before the backend, so a
 * read or preview handle can never reach a mutating backend call whatever
 * the backend does.  Opening and closing block (the backend may touch disk
 * or network), so the loop runs them on a worker.
 *
 * With brokerfs --policy the policy decides at open: the filesystem_id
 * must have an entry that allows the handle's intent, and the entry picks
 * the backend and the quota (broker_policy.c).
 *
 * With --control-socket the control plane has the first word: a session
 * it revoked, one under the kill-switch, or any new one while its link is
 * down is refused before the backend is touched, and its quota overrides
 * win over the policy's (broker_control.c).
 */
#include "broker.h"
#include "broker_control.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend.h"
#include "log.h"

struct session *session_new(const struct backend_ops *ops,
			    const struct token_claims *c, const char *peer)
{
	struct session *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->ops = ops;
	s->claims = *c;
	s->rdonly = c->intent != TOKEN_INTENT_WRITE;
	snprintf(s->peer, sizeof(s->peer), "%s", peer);
	return s;
}

/* Set once before the loop runs, read-only afterwards. */
static struct broker_policy *session_policy;

void session_use_policy(struct broker_policy *bp)
{
	session_policy = bp;
}

int session_open(struct session *s, struct backend *b)
{
	struct backend_session_opts o = {
	    .flags = s->rdonly ? BACKEND_SESSION_RDONLY : 0};
	struct broker_session_target t;
	int rc;

	rc = broker_control_admit(&s->claims, s->why, sizeof(s->why));
	if (rc)
		goto refused;
	if (session_policy) {
		rc = broker_policy_session(session_policy, &s->claims, &t,
					   s->why, sizeof(s->why));
		if (rc)
			goto refused;
		s->ops = t.ops;
		b = t.backend;
		o.quota_bytes = t.quota_bytes;
		o.quota_inodes = t.quota_inodes;
		s->idle_timeout_ms = t.idle_timeout_ms;
		s->max_lifetime_ms = t.max_lifetime_ms;
	}
	broker_control_quota(s->claims.filesystem_id, &o.quota_bytes,
			     &o.quota_inodes);
	if (s->ops->session_open_opts)
		rc = s->ops->session_open_opts(b, s->claims.filesystem_id, &o,
					       &s->bs);
	else
		rc = s->ops->session_open(b, s->claims.filesystem_id, o.flags,
					  &s->bs);
	if (rc)
		goto refused;
	s->opened = s->last_active = time(NULL);
	log_info("session open: sid=%s fsid=%s intent=%s peer=%s",
		 s->claims.sid, s->claims.filesystem_id,
		 token_intent_name(s->claims.intent), s->peer);
	return 0;
refused:
	s->bs = NULL;
	log_warn("session refused: sid=%s fsid=%s intent=%s peer=%s: %s",
		 s->claims.sid, s->claims.filesystem_id,
		 token_intent_name(s->claims.intent), s->peer,
		 s->why[0] ? s->why : strerror(-rc));
	return rc;
}

/*
 * Wall-clock seconds, like handle expiry; a clock stepped backwards never
 * cuts a session (the differences are then negative and ignored).
 */
const char *session_expired(const struct session *s, time_t now)
{
	if (s->idle_timeout_ms && s->last_active && now > s->last_active &&
	    (uint64_t)(now - s->last_active) * 1000 >= s->idle_timeout_ms)
		return "session idle timeout";
	if (s->max_lifetime_ms && s->opened && now > s->opened &&
	    (uint64_t)(now - s->opened) * 1000 >= s->max_lifetime_ms)
		return "session lifetime exceeded";
	return NULL;
}

void session_policy_changed(struct session *s)
{
	uint64_t bytes = 0, inodes = 0;

	if (!s->bs || !s->ops->session_quota)
		return;
	/* The control plane's override, else the policy's quota (none
	 * without a policy).  An entry removed by a reload leaves open
	 * sessions as they are. */
	if (!broker_control_quota(s->claims.filesystem_id, &bytes, &inodes) &&
	    session_policy &&
	    broker_policy_quota(session_policy, s->claims.filesystem_id, &bytes,
				&inodes))
		return;
	s->ops->session_quota(s->bs, bytes, inodes);
}

/* A destroy: upload what the session's open files hold, before the close. */
static void session_drain(struct session *s)
{
	int left;

	if (!s->ops->session_drain)
		return;
	left = s->ops->session_drain(s->bs, s->drain_deadline_ms);
	if (left)
		log_warn("session destroy: sid=%s fsid=%s: %s%d files left "
			 "staged",
			 s->claims.sid, s->claims.filesystem_id,
			 left < 0 ? "error " : "", left);
	broker_control_drained(&s->claims, left);
}

void session_close(struct session *s)
{
	if (!s || !s->bs)
		return;
	if (s->drain)
		session_drain(s);
	s->ops->session_close(s->bs);
	s->bs = NULL;
	log_info(
	    "session close: sid=%s fsid=%s intent=%s peer=%s requests=%llu",
	    s->claims.sid, s->claims.filesystem_id,
	    token_intent_name(s->claims.intent), s->peer,
	    (unsigned long long)s->requests);
}

void session_free(struct session *s)
{
	free(s);
}

int session_check(const struct session *s, const struct proto_msg *req)
{
	const struct proto_opinfo *oi = proto_opinfo(req->op);

	if (!s->rdonly)
		return 0;
	if (!oi || (oi->flags & OPF_MUTATES))
		return -EROFS;
	/* OPEN is not a mutation, but opening for writing or truncating is. */
	if (req->op == PROTO_OP_OPEN &&
	    ((req->flags & O_ACCMODE) != O_RDONLY || (req->flags & O_TRUNC)))
		return -EROFS;
	return 0;
}

int session_dispatch(struct session *s, const struct proto_msg *req,
		     struct proto_msg *rep)
{
	int rc = session_check(s, req);

	if (rc)
		return rc;
	return s->ops->dispatch(s->bs, req, rep);
}
