/*
 * ctld_ops.c - the operator interface: one handler per request.
 *
 * Every request is checked against the policy's operators (uid 0 always
 * passes) and recorded as an OCSF API Activity event before it acts.  The
 * record is durable (audit_emit_api) or the request is refused: an action
 * nobody can later account for does not happen.  If the action itself then
 * fails, a second event records the failure.  Changes are committed to
 * the store before they are pushed to brokers, and requests that brokers
 * must apply are answered only once the brokers acknowledged them
 * (ctld_brokers.c).
 */
#include "controld.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "audit.h"
#include "ctl_wire.h"
#include "log.h"
#include "token.h"

struct ctld_op {
	const char *name;
	enum audit_api_activity activity;
	void (*run)(struct ctld *d, struct ctld_conn *c, json_t *m);
};

void ctld_ops_error(struct ctld *d, struct ctld_conn *c, int err,
		    const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	json_t *j;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	j = json_pack("{s:b, s:s, s:s}", "ok", 0, "error",
		      ctl_wire_errname(err), "message", msg);
	if (j)
		ctld_send(d, c, j);
	json_decref(j);
}

static void ops_reply(struct ctld *d, struct ctld_conn *c, json_t *j)
{
	if (!j) {
		ctld_ops_error(d, c, ENOMEM, "out of memory");
		return;
	}
	json_object_set_new(j, "ok", json_true());
	ctld_send(d, c, j);
	json_decref(j);
}

/* The durable record of an operator action.  0, or -errno: refuse it. */
static int ops_audit(struct ctld *d, struct ctld_conn *c,
		     enum audit_api_activity act, const char *op,
		     const char *target, const char *type, int err,
		     const char *detail)
{
	char peer[64];
	struct audit_api_event ev = {
	    .activity = act,
	    .identity = {.has_cred = 1,
			 .uid = c->uid,
			 .gid = c->gid,
			 .pid = c->pid,
			 .peer = peer},
	    .service = "occfs-controld",
	    .operation = op,
	    .target = target,
	    .target_type = type,
	    .err = err,
	    .detail = detail,
	};
	int rc;

	snprintf(peer, sizeof(peer), "unix:pid=%d", (int)c->pid);
	rc = audit_emit_api(d->audit, &ev);
	if (rc < 0)
		log_err("%s by %s: audit record not written (%s): refused", op,
			c->name, strerror(-rc));
	return rc;
}

/* Record the intent or refuse; 0 when the caller may act. */
static int ops_begin(struct ctld *d, struct ctld_conn *c, const char *op,
		     const char *target, const char *type, const char *detail)
{
	enum audit_api_activity act = AUDIT_API_OTHER;
	int rc;

	if (strcmp(op, CTL_OP_CREATE) == 0)
		act = AUDIT_API_CREATE;
	else if (!strcmp(op, CTL_OP_LIST) || !strcmp(op, CTL_OP_STATUS))
		act = AUDIT_API_READ;
	else if (!strcmp(op, CTL_OP_DESTROY) || !strcmp(op, CTL_OP_REVOKE))
		act = AUDIT_API_DELETE;
	else if (!strcmp(op, CTL_OP_QUOTA) || !strcmp(op, CTL_OP_LIFT))
		act = AUDIT_API_UPDATE;
	rc = ops_audit(d, c, act, op, target, type, 0, detail);
	if (rc < 0)
		ctld_ops_error(d, c, EACCES,
			       "audit unavailable: %s refused because its "
			       "audit record cannot be written (%s)",
			       op, strerror(-rc));
	return rc;
}

/* The action failed after its record: record that too, and tell. */
static void ops_failed(struct ctld *d, struct ctld_conn *c, const char *op,
		       const char *target, int err, const char *msg)
{
	ops_audit(d, c, AUDIT_API_OTHER, op, target, NULL, err, msg);
	ctld_ops_error(d, c, err, "%s", msg);
}

static int ops_random_hex(char *dst, size_t n)
{
	unsigned char r[16];
	size_t i;

	if (n < 33 || getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
		return -EIO;
	for (i = 0; i < sizeof(r); i++)
		snprintf(dst + 2 * i, 3, "%02x", r[i]);
	return 0;
}

static json_t *ops_session_json(const struct ctld_session *s, int64_t now)
{
	const char *state = s->state;

	if (strcmp(state, "active") == 0 && s->exp <= now)
		state = "expired";
	return json_pack(
	    "{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I, "
	    "s:i}",
	    "sid", s->sid, "jti", s->jti, "fsid", s->fsid, "tenant", s->tenant,
	    "intent", s->intent, "state", state, "reason", s->reason, "created",
	    (json_int_t)s->created, "exp", (json_int_t)s->exp, "ended",
	    (json_int_t)s->ended, "operator_uid", (int)s->operator_uid);
}

/* Words that end up in a mount line: no blanks, commas or controls. */
static int ops_word_ok(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s <= ' ' || *s == ',' || *s == 0x7f)
			return 0;
	return 1;
}

/* ---- create -------------------------------------------------------------- */

/* Check the request against the policy; fill c's claims.  0 or -errno. */
static int ops_create_claims(struct ctld *d, json_t *m, struct token_claims *cl,
			     char *why, size_t len)
{
	struct policy *pol = policy_handle_get(&d->pol);
	const char *fsid = ctl_wire_str(m, "fsid", NULL);
	const char *intent = ctl_wire_str(m, "intent", "write");
	const char *tenant = ctl_wire_str(m, "tenant", "default");
	const struct policy_fs *fs;
	long long ttl = ctl_wire_int(m, "ttl", 0), limit;
	int64_t now = time(NULL), not_before;
	int kill, rc = -EINVAL;

	memset(cl, 0, sizeof(*cl));
	ctld_store_kill_state(d->store, &kill, &not_before);
	if (kill) {
		snprintf(why, len,
			 "the kill-switch is engaged: no new sessions "
			 "until 'occfsctl session lift'");
		rc = -EACCES;
		goto out;
	}
	if (!fsid || !token_fsid_valid(fsid) ||
	    strlen(fsid) >= sizeof(cl->filesystem_id)) {
		snprintf(why, len, "fsid must be one safe path segment");
		goto out;
	}
	fs = policy_fs_find(pol, fsid);
	if (!fs) {
		snprintf(why, len, "no filesystem '%s' in the policy", fsid);
		rc = -ENOENT;
		goto out;
	}
	if (token_intent_parse(intent, &cl->intent) ||
	    !policy_fs_allows_intent(fs, intent)) {
		snprintf(why, len, "intent '%s' is not allowed for '%s'",
			 intent, fsid);
		rc = -EACCES;
		goto out;
	}
	limit = (long long)((fs->ttl_ms ? fs->ttl_ms : pol->tokens.max_ttl_ms) /
			    1000);
	if (fs->max_lifetime_ms &&
	    (long long)(fs->max_lifetime_ms / 1000) < limit)
		limit = (long long)(fs->max_lifetime_ms / 1000);
	if (ttl == 0)
		ttl = limit;
	if (ttl < 1 || ttl > limit) {
		snprintf(why, len,
			 "ttl %lld s is outside the policy's limit of 1 to "
			 "%lld s for '%s'",
			 ttl, limit, fsid);
		goto out;
	}
	if (!tenant[0] || strlen(tenant) >= sizeof(cl->tenant)) {
		snprintf(why, len, "tenant must be 1 to %zu bytes",
			 sizeof(cl->tenant) - 1);
		goto out;
	}
	snprintf(cl->filesystem_id, sizeof(cl->filesystem_id), "%s", fsid);
	snprintf(cl->tenant, sizeof(cl->tenant), "%s", tenant);
	snprintf(cl->aud, sizeof(cl->aud), "%s",
		 pol->tokens.audience ? pol->tokens.audience : "occfs");
	/* After a lift, handles issued up to the kill stay refused by
	 * brokers (iat <= not_before): new ones must come later. */
	cl->iat = now > not_before ? now : not_before + 1;
	cl->exp = cl->iat + ttl;
	if (ops_random_hex(cl->sid, sizeof(cl->sid)) ||
	    ops_random_hex(cl->jti, sizeof(cl->jti))) {
		snprintf(why, len, "no randomness");
		rc = -EIO;
		goto out;
	}
	rc = 0;
out:
	policy_unref(pol);
	return rc;
}

static json_t *ops_mount_lines(struct ctld *d, json_t *m,
			       const struct token_claims *cl)
{
	const char *ep = ctl_wire_str(m, "endpoint", d->cfg.endpoint);
	const char *mnt = ctl_wire_str(m, "mountpoint", NULL);
	const char *hp = ctl_wire_str(m, "handle_path", NULL);
	char dmnt[300], dhp[300], mount[1024], fstab[1024];

	if (!mnt) {
		snprintf(dmnt, sizeof(dmnt), "/mnt/%s", cl->filesystem_id);
		mnt = dmnt;
	}
	if (!hp) {
		snprintf(dhp, sizeof(dhp), "/run/occfs/%s.handle", cl->sid);
		hp = dhp;
	}
	if (!ops_word_ok(ep) || !ops_word_ok(mnt) || !ops_word_ok(hp))
		return NULL;
	snprintf(mount, sizeof(mount), "mount -t occfs %s %s -o handle=%s", ep,
		 mnt, hp);
	snprintf(fstab, sizeof(fstab),
		 "%s  %s  occfs  handle=%s,_netdev,nofail  0 0", ep, mnt, hp);
	return json_pack("{s:s, s:s, s:s}", "mount", mount, "fstab", fstab,
			 "handle_path", hp);
}

static void ops_create(struct ctld *d, struct ctld_conn *c, json_t *m)
{
	struct token_claims cl;
	struct ctld_session s = {0};
	json_t *lines, *reply = NULL;
	char why[300], detail[600];
	char *jwt = NULL;
	int rc;

	rc = ops_create_claims(d, m, &cl, why, sizeof(why));
	if (rc) {
		ops_audit(d, c, AUDIT_API_CREATE, CTL_OP_CREATE,
			  ctl_wire_str(m, "fsid", "?"), "filesystem", -rc, why);
		ctld_ops_error(d, c, -rc, "%s", why);
		return;
	}
	lines = ops_mount_lines(d, m, &cl);
	if (!lines) {
		ctld_ops_error(d, c, EINVAL,
			       "endpoint, mountpoint and handle path may not "
			       "hold blanks, commas or control characters");
		return;
	}
	snprintf(detail, sizeof(detail), "fsid=%s intent=%s tenant=%s exp=%lld",
		 cl.filesystem_id, token_intent_name(cl.intent), cl.tenant,
		 (long long)cl.exp);
	if (ops_begin(d, c, CTL_OP_CREATE, cl.sid, "session", detail))
		goto out;
	memcpy(s.sid, cl.sid, sizeof(s.sid));
	memcpy(s.jti, cl.jti, sizeof(s.jti));
	memcpy(s.fsid, cl.filesystem_id, sizeof(s.fsid));
	memcpy(s.tenant, cl.tenant, sizeof(s.tenant));
	snprintf(s.intent, sizeof(s.intent), "%s",
		 token_intent_name(cl.intent));
	s.created = cl.iat;
	s.exp = cl.exp;
	s.operator_uid = c->uid;
	rc = token_mint(&cl, d->key, &jwt);
	if (!rc)
		rc = ctld_store_session_add(d->store, &s);
	if (rc) {
		ops_failed(d, c, CTL_OP_CREATE, cl.sid, -rc,
			   "the session could not be created");
		goto out;
	}
	reply = json_pack("{s:o, s:s}", "session",
			  ops_session_json(&s, time(NULL)), "handle", jwt);
	if (reply)
		json_object_update(reply, lines);
	log_info("session %s created for %s (%s) by %s", cl.sid,
		 cl.filesystem_id, token_intent_name(cl.intent), c->name);
	ops_reply(d, c, reply);
out:
	json_decref(lines);
	if (jwt) {
		explicit_bzero(jwt, strlen(jwt));
		free(jwt);
	}
}

/* ---- list, status -------------------------------------------------------- */

static int ops_list_one(void *arg, const struct ctld_session *s)
{
	json_array_append_new(arg, ops_session_json(s, time(NULL)));
	return 0;
}

static json_t *ops_state_json(struct ctld *d)
{
	json_t *brokers = json_array();
	struct ctld_conn *b;
	int64_t not_before;
	int kill;

	for (b = d->conns; b; b = b->next)
		if (b->kind == CTLD_BROKER && !b->dead && b->hello)
			json_array_append_new(
			    brokers, json_pack("{s:s, s:b}", "name", b->name,
					       "synced", b->synced));
	ctld_store_kill_state(d->store, &kill, &not_before);
	return json_pack("{s:b, s:I, s:o}", "kill", kill, "not_before",
			 (json_int_t)not_before, "brokers", brokers);
}

static void ops_list(struct ctld *d, struct ctld_conn *c, json_t *m)
{
	json_t *arr = json_array(), *reply;

	if (ops_begin(d, c, CTL_OP_LIST, "*", "session", NULL)) {
		json_decref(arr);
		return;
	}
	if (ctld_store_sessions(d->store, ctl_wire_bool(m, "all", 0),
				ops_list_one, arr)) {
		json_decref(arr);
		ops_failed(d, c, CTL_OP_LIST, "*", EIO, "store read failed");
		return;
	}
	reply = ops_state_json(d);
	if (reply)
		json_object_set_new(reply, "sessions", arr);
	else
		json_decref(arr);
	ops_reply(d, c, reply);
}

static void ops_status(struct ctld *d, struct ctld_conn *c, json_t *m)
{
	(void)m;
	if (ops_begin(d, c, CTL_OP_STATUS, "*", "control-plane", NULL))
		return;
	ops_reply(d, c, ops_state_json(d));
}

/* ---- revoke, destroy ----------------------------------------------------- */

static void ops_end(struct ctld *d, struct ctld_conn *c, json_t *m, int destroy)
{
	const char *op = destroy ? CTL_OP_DESTROY : CTL_OP_REVOKE;
	const char *sid = ctl_wire_str(m, "sid", NULL);
	const char *jti = ctl_wire_str(m, "jti", NULL);
	const char *reason = destroy ? "session destroyed by the operator"
				     : "session revoked by the operator";
	struct ctld_session s;
	struct ctld_deny dn = {0};
	struct policy *pol;
	int64_t now = time(NULL);
	int rc;

	if ((!sid == !jti) || (destroy && !sid) ||
	    strlen(sid ? sid : jti) >= sizeof(dn.sid)) {
		ctld_ops_error(d, c, EINVAL, "%s needs %s", op,
			       destroy ? "a sid" : "a sid or a jti");
		return;
	}
	rc = sid ? ctld_store_session_get(d->store, sid, &s) : -ENOENT;
	if (rc == -ENOENT && destroy) {
		ctld_ops_error(d, c, ENOENT, "no session %s", sid);
		return;
	}
	if (!rc && destroy && strcmp(s.state, "destroyed") == 0) {
		ctld_ops_error(d, c, EALREADY,
			       "session %s is already destroyed", sid);
		return;
	}
	if (ops_begin(d, c, op, sid ? sid : jti, sid ? "session" : "handle",
		      reason))
		return;
	if (!rc) {
		rc = ctld_store_session_end(d->store, sid,
					    destroy ? "destroyed" : "revoked",
					    reason, now);
		memcpy(dn.sid, s.sid, sizeof(dn.sid));
		memcpy(dn.jti, s.jti, sizeof(dn.jti));
		dn.exp = s.exp;
	} else {
		/* A handle this daemon did not mint (occfsctl token mint):
		 * deny it for as long as any handle can live. */
		snprintf(sid ? dn.sid : dn.jti, sizeof(dn.sid), "%s",
			 sid ? sid : jti);
		pol = policy_handle_get(&d->pol);
		dn.exp = now + (int64_t)(pol->tokens.max_ttl_ms / 1000) + 60;
		policy_unref(pol);
		rc = ctld_store_deny_add(d->store, &dn, reason);
	}
	if (rc) {
		ops_failed(d, c, op, sid ? sid : jti, EIO,
			   "the denylist could not be written");
		return;
	}
	log_info("%s %s by %s", op, sid ? sid : jti, c->name);
	ctld_brokers_push(d, c,
			  json_pack("{s:s, s:s, s:s, s:I, s:s, s:b}", "op",
				    CTL_B_REVOKE, "sid", dn.sid, "jti", dn.jti,
				    "exp", (json_int_t)dn.exp, "reason", reason,
				    "flush", destroy),
			  json_pack("{s:s}", "target", sid ? sid : jti));
}

static void ops_revoke(struct ctld *d, struct ctld_conn *c, json_t *m)
{
	ops_end(d, c, m, 0);
}

static void ops_destroy(struct ctld *d, struct ctld_conn *c, json_t *m)
{
	ops_end(d, c, m, 1);
}

/* ---- the kill-switch ----------------------------------------------------- */

static void ops_kill(struct ctld *d, struct ctld_conn *c, int on)
{
	const char *op = on ? CTL_OP_REVOKE_ALL : CTL_OP_LIFT;
	int64_t now = time(NULL), not_before;
	int kill;

	if (ops_begin(d, c, op, "*", "session",
		      on ? "kill-switch engaged" : "kill-switch lifted"))
		return;
	if (ctld_store_kill(d->store, on, now) ||
	    ctld_store_kill_state(d->store, &kill, &not_before)) {
		ops_failed(d, c, op, "*", EIO,
			   "the store could not be written");
		return;
	}
	log_warn("kill-switch %s by %s", on ? "ENGAGED" : "lifted", c->name);
	ctld_brokers_push(d, c,
			  json_pack("{s:s, s:b, s:I}", "op", CTL_B_KILL, "on",
				    on, "not_before", (json_int_t)not_before),
			  json_pack("{s:b, s:I}", "kill", on, "not_before",
				    (json_int_t)not_before));
}

static void ops_revoke_all(struct ctld *d, struct ctld_conn *c, json_t *m)
{
	(void)m;
	ops_kill(d, c, 1);
}

static void ops_lift(struct ctld *d, struct ctld_conn *c, json_t *m)
{
	(void)m;
	ops_kill(d, c, 0);
}

/* ---- quota -----------------------------------------------------------------
 */

static void ops_quota(struct ctld *d, struct ctld_conn *c, json_t *m)
{
	const char *fsid = ctl_wire_str(m, "fsid", NULL);
	const char *sid = ctl_wire_str(m, "sid", NULL);
	long long bytes = ctl_wire_int(m, "bytes", 0);
	long long inodes = ctl_wire_int(m, "inodes", 0);
	int clear = ctl_wire_bool(m, "clear", 0);
	struct ctld_session s;
	char detail[200];

	if (!fsid && sid) {
		if (ctld_store_session_get(d->store, sid, &s)) {
			ctld_ops_error(d, c, ENOENT, "no session %s", sid);
			return;
		}
		fsid = s.fsid;
	}
	if (!fsid || !token_fsid_valid(fsid) || bytes < 0 || inodes < 0) {
		ctld_ops_error(d, c, EINVAL,
			       "quota needs a fsid (or sid) and sizes >= 0");
		return;
	}
	snprintf(detail, sizeof(detail),
		 clear ? "override cleared" : "bytes=%lld inodes=%lld", bytes,
		 inodes);
	if (ops_begin(d, c, CTL_OP_QUOTA, fsid, "filesystem", detail))
		return;
	if (ctld_store_quota_set(d->store, fsid, clear ? -1 : bytes,
				 clear ? -1 : inodes)) {
		ops_failed(d, c, CTL_OP_QUOTA, fsid, EIO,
			   "the store could not be written");
		return;
	}
	ctld_brokers_push(d, c,
			  json_pack("{s:s, s:s, s:I, s:I, s:b}", "op",
				    CTL_B_QUOTA, "fsid", fsid, "bytes",
				    (json_int_t)bytes, "inodes",
				    (json_int_t)inodes, "clear", clear),
			  json_pack("{s:s}", "fsid", fsid));
}

/* ---- dispatch --------------------------------------------------------------
 */

static const struct ctld_op ctld_ops[] = {
    {CTL_OP_CREATE, AUDIT_API_CREATE, ops_create},
    {CTL_OP_LIST, AUDIT_API_READ, ops_list},
    {CTL_OP_DESTROY, AUDIT_API_DELETE, ops_destroy},
    {CTL_OP_REVOKE, AUDIT_API_DELETE, ops_revoke},
    {CTL_OP_REVOKE_ALL, AUDIT_API_OTHER, ops_revoke_all},
    {CTL_OP_LIFT, AUDIT_API_UPDATE, ops_lift},
    {CTL_OP_QUOTA, AUDIT_API_UPDATE, ops_quota},
    {CTL_OP_STATUS, AUDIT_API_READ, ops_status},
    {NULL, 0, NULL},
};

static int ops_is_operator(struct ctld *d, const struct ctld_conn *c)
{
	struct policy *pol;
	int ok;

	if (c->uid == 0)
		return 1;
	pol = policy_handle_get(&d->pol);
	ok = policy_operator_allowed(pol, c->uid, c->gid);
	policy_unref(pol);
	return ok;
}

void ctld_ops_request(struct ctld *d, struct ctld_conn *c, json_t *msg)
{
	const char *name = ctl_wire_str(msg, "op", "");
	const struct ctld_op *op;

	for (op = ctld_ops; op->name; op++)
		if (strcmp(op->name, name) == 0)
			break;
	if (!ops_is_operator(d, c)) {
		log_warn("%s: refused: not an operator", c->name);
		ops_audit(d, c, op->name ? op->activity : AUDIT_API_OTHER,
			  op->name ? op->name : "unknown", NULL, NULL, EACCES,
			  "not an operator");
		c->closing = 1; /* hang up once this is written */
		ctld_ops_error(d, c, EACCES,
			       "uid %u (gid %u) is not an operator: only root "
			       "and the policy's operators may use this socket",
			       (unsigned)c->uid, (unsigned)c->gid);
		return;
	}
	if (!op->name) {
		ctld_ops_error(d, c, ENOSYS, "unknown request '%.64s'", name);
		return;
	}
	op->run(d, c, msg);
}
