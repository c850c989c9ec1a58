/*
 * broker_audit.c - brokerfs's OCSF events: the handle check at HELLO
 * (Authentication 3002, Logon), the end of a session (Logoff) and every
 * file operation (File System Activity 1001), through the audit emitter.
 *
 * The two kinds fail differently, as doc/audit.md prescribes.  A Logon is
 * durable (audit_emit_auth fsyncs the spool) and runs on a worker before
 * the HELLO reply: when it cannot be recorded the HELLO is refused with
 * "audit unavailable", so no session is ever served unrecorded.  A file
 * event is appended to the spool without waiting (audit_emit_file) after
 * the operation completed, and its failure never fails the operation.
 *
 * Which operations make events, and as what, is decided in
 * broker_audit_request: everything that creates, deletes, renames, changes
 * attributes, opens, reads or writes, on success and failure; the quiet
 * ones (LOOKUP, GETATTR, ...) only when they are denied.
 */
#include "broker_audit.h"
#include "../audit/audit.h"
#include "broker.h"

#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"

#define BA_PATH 4608 /* a path as events carry it: PATH_MAX and a name */

static struct audit *ba_au; /* set before the loop starts, then read-only */

struct broker_audit_sess {
	struct audit_names *names;
	int has_cred; /* immutable: the peer's process, when known */
	uid_t uid;
	gid_t gid;
	pid_t pid;
	const char *reason; /* why the HELLO is refused, or NULL */
	char why[PROTO_MAX_REASON];
};

/* ---- start-up and shutdown ---------------------------------------------- */

/* audit_config from cfg; 0, or -EINVAL with *what naming the bad setting. */
static int ba_config(const struct broker_config *cfg, struct audit_config *ac,
		     const char **what)
{
	const char *rw =
	    cfg->audit_rw ? cfg->audit_rw : BROKER_AUDIT_DEFAULT_RW;

	audit_config_init(ac);
	ac->product = "brokerfs";
	ac->socket_path = cfg->audit_socket;
	ac->spool_dir =
	    cfg->audit_spool ? cfg->audit_spool : BROKER_AUDIT_DEFAULT_SPOOL;
	*what = "--audit-rw";
	if (audit_config_op(ac, AUDIT_OP_READ,
			    cfg->audit_read ? cfg->audit_read : rw) < 0 ||
	    audit_config_op(ac, AUDIT_OP_WRITE,
			    cfg->audit_write ? cfg->audit_write : rw) < 0)
		return -EINVAL;
	if (cfg->audit_spool_max)
		ac->spool_max_bytes = cfg->audit_spool_max;
	*what = "--audit-spool";
	if (ac->spool_dir[0] != '/')
		return -EINVAL;
	return 0;
}

int broker_audit_check(const struct broker_config *cfg)
{
	struct audit_config ac;
	const char *what = NULL;

	if (ba_config(cfg, &ac, &what) < 0) {
		fprintf(stderr,
			"brokerfs: %s: expected each, aggregate:MS or sample:N "
			"(--audit-rw), an absolute path (--audit-spool)\n",
			what);
		return -1;
	}
	return 0;
}

/* mkdir -p for the spool's parents; audit_open makes the last one 0700. */
static void ba_mkdirs(const char *dir)
{
	char p[4096];
	size_t i;

	snprintf(p, sizeof(p), "%s", dir);
	for (i = 1; p[i]; i++) {
		if (p[i] != '/')
			continue;
		p[i] = '\0';
		if (mkdir(p, 0755) < 0 && errno != EEXIST)
			log_debug("audit: mkdir %s: %m", p);
		p[i] = '/';
	}
}

int broker_audit_open(const struct broker_config *cfg)
{
	struct audit_config ac;
	const char *what = NULL;
	sigset_t all, old;
	int rc;

	if (!cfg->audit_socket) {
		log_info("audit: no --audit-socket: auditing is off");
		return 0;
	}
	if (ba_config(cfg, &ac, &what) < 0) {
		log_err("audit: bad %s", what);
		return -EINVAL;
	}
	ba_mkdirs(ac.spool_dir);
	/* The emitter's threads must leave signals to the loop's signalfd. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	ba_au = audit_open(&ac);
	rc = ba_au ? 0 : -errno;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc) {
		log_err("audit: spool %s: %s", ac.spool_dir, strerror(-rc));
		return rc;
	}
	log_info("audit: events to %s through spool %s (reads and writes: %s)",
		 ac.socket_path, ac.spool_dir,
		 cfg->audit_rw ? cfg->audit_rw : BROKER_AUDIT_DEFAULT_RW);
	return 0;
}

void broker_audit_close(int busy)
{
	struct audit_stats st;
	int rc;

	if (!ba_au)
		return;
	/* What is not delivered within the linger stays spooled and goes
	 * out after the next start. */
	rc = audit_flush(ba_au, BROKER_AUDIT_LINGER_MS);
	audit_get_stats(ba_au, &st);
	log_info("audit: %llu events, %llu delivered, %llu dropped%s",
		 (unsigned long long)st.emitted,
		 (unsigned long long)st.delivered,
		 (unsigned long long)st.dropped,
		 rc ? "; the rest stays spooled for the next start" : "");
	if (busy)
		return; /* exit takes the rest; the spool keeps it */
	audit_close(ba_au, 0);
	ba_au = NULL;
}

int broker_audit_on(void)
{
	return ba_au != NULL;
}

/* ---- sessions ----------------------------------------------------------- */

struct broker_audit_sess *broker_audit_sess_new(int has_cred, uid_t uid,
						gid_t gid, pid_t pid)
{
	struct broker_audit_sess *as;

	if (!ba_au)
		return NULL;
	as = calloc(1, sizeof(*as));
	if (!as)
		return NULL;
	as->names = audit_names_new();
	if (!as->names) {
		free(as);
		return NULL;
	}
	as->has_cred = has_cred;
	as->uid = uid;
	as->gid = gid;
	as->pid = pid;
	return as;
}

void broker_audit_sess_free(struct broker_audit_sess *as)
{
	if (!as)
		return;
	audit_names_free(as->names);
	free(as);
}

void broker_audit_sess_refuse(struct broker_audit_sess *as, const char *why)
{
	if (!as)
		return;
	snprintf(as->why, sizeof(as->why), "%s", why ? why : "handle refused");
	as->reason = as->why;
}

const char *broker_audit_sess_reason(const struct broker_audit_sess *as)
{
	return as ? as->reason : NULL;
}

/* base64url without padding into out (NUL-terminated); -1 if invalid. */
static int ba_b64url(const char *s, size_t len, char *out, size_t size)
{
	unsigned acc = 0, bits = 0, v;
	size_t n = 0, i;

	for (i = 0; i < len; i++) {
		char ch = s[i];

		if (ch >= 'A' && ch <= 'Z')
			v = (unsigned)(ch - 'A');
		else if (ch >= 'a' && ch <= 'z')
			v = (unsigned)(ch - 'a') + 26;
		else if (ch >= '0' && ch <= '9')
			v = (unsigned)(ch - '0') + 52;
		else if (ch == '-')
			v = 62;
		else if (ch == '_')
			v = 63;
		else
			return -1;
		acc = (acc << 6) | v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (n + 1 >= size)
				return -1;
			out[n++] = (char)((acc >> bits) & 0xff);
		}
	}
	out[n] = '\0';
	return (int)n;
}

static void ba_claim(json_t *o, const char *key, char *dst, size_t size)
{
	const char *v = json_string_value(json_object_get(o, key));

	if (v)
		snprintf(dst, size, "%s", v);
}

int broker_audit_claims(const char *jwt, size_t len, struct token_claims *out)
{
	char payload[TOKEN_MAX_LEN];
	const char *d1, *d2;
	json_t *o;
	int n;

	memset(out, 0, sizeof(*out));
	if (!jwt || len > TOKEN_MAX_LEN)
		return -EINVAL;
	d1 = memchr(jwt, '.', len);
	d2 = d1 ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - jwt)) : NULL;
	if (!d2)
		return -EINVAL;
	n = ba_b64url(d1 + 1, (size_t)(d2 - d1 - 1), payload, sizeof(payload));
	if (n <= 0)
		return -EINVAL;
	o = json_loadb(payload, (size_t)n, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(o)) {
		json_decref(o);
		return -EINVAL;
	}
	ba_claim(o, "sid", out->sid, sizeof(out->sid));
	ba_claim(o, "filesystem_id", out->filesystem_id,
		 sizeof(out->filesystem_id));
	ba_claim(o, "tenant", out->tenant, sizeof(out->tenant));
	ba_claim(o, "jti", out->jti, sizeof(out->jti));
	if (token_intent_parse(json_string_value(json_object_get(o, "intent"))
				   ?: "",
			       &out->intent) < 0)
		out->intent = TOKEN_INTENT_READ;
	json_decref(o);
	return 0;
}

static const char *ba_opt(const char *s)
{
	return s && *s ? s : NULL;
}

static void ba_auth(struct session *s, struct broker_audit_sess *as,
		    struct audit_auth_event *ev)
{
	const struct token_claims *c = &s->claims;

	memset(ev, 0, sizeof(*ev));
	if (as && as->has_cred) {
		ev->peer.has_cred = 1;
		ev->peer.uid = as->uid;
		ev->peer.gid = as->gid;
		ev->peer.pid = as->pid;
	}
	ev->peer.peer = s->peer;
	ev->sid = ba_opt(c->sid);
	ev->fsid = ba_opt(c->filesystem_id);
	ev->tenant = ba_opt(c->tenant);
	ev->jti = ba_opt(c->jti);
	/* No claims could be read (a forged or malformed handle). */
	ev->intent = ev->sid ? token_intent_name(c->intent) : NULL;
	ev->service = "brokerfs";
}

int broker_audit_logon(struct session *s, struct broker_audit_sess *as)
{
	struct audit_auth_event ev;
	int rc;

	if (!ba_au)
		return 0;
	ba_auth(s, as, &ev);
	ev.activity = AUDIT_AUTH_LOGON;
	ev.pass = !broker_audit_sess_reason(as);
	ev.reason = broker_audit_sess_reason(as);
	rc = audit_emit_auth(ba_au, &ev);
	if (rc >= 0)
		return 0;
	log_err("audit: cannot record the handle check of sid=%s peer=%s: %s",
		s->claims.sid, s->peer, strerror(-rc));
	if (!ev.pass)
		return 0; /* refused anyway */
	broker_audit_sess_refuse(as, BROKER_AUDIT_UNAVAILABLE);
	return -EACCES;
}

void broker_audit_logoff(struct session *s, struct broker_audit_sess *as,
			 const char *why)
{
	struct audit_auth_event ev;
	int rc;

	if (!ba_au)
		return;
	ba_auth(s, as, &ev);
	ev.activity = AUDIT_AUTH_LOGOFF;
	ev.pass = 1;
	ev.reason = why;
	rc = audit_emit_auth(ba_au, &ev);
	if (rc < 0)
		log_err("audit: cannot record the end of sid=%s: %s",
			s->claims.sid, strerror(-rc));
}

/* ---- file activity ------------------------------------------------------ */

/* Refusals that are always recorded, even for operations otherwise quiet. */
static int ba_denied(int err)
{
	return err == EACCES || err == EPERM || err == EROFS || err == EDQUOT;
}

struct ba_req {
	struct session *s;
	struct broker_audit_sess *as;
	const struct proto_msg *req;
	char trace[192];
};

static void ba_emit(struct ba_req *r, enum audit_file_op op, const char *path,
		    const char *new_path, uint64_t bytes, int err)
{
	struct audit_file_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.c.trace_id = r->trace;
	/* The caller's uid as the client reports it; the client's process. */
	ev.actor.has_cred = 1;
	ev.actor.uid = r->req->uid;
	ev.actor.gid = r->req->gid;
	ev.actor.pid = r->as->has_cred ? r->as->pid : 0;
	ev.actor.peer = r->s->peer;
	ev.sid = r->s->claims.sid;
	ev.fsid = r->s->claims.filesystem_id;
	ev.intent = token_intent_name(r->s->claims.intent);
	ev.op = op;
	ev.path = path;
	ev.new_path = new_path;
	ev.bytes = bytes;
	ev.err = err;
	audit_emit_file(ba_au, &ev); /* drop policy: never fails the op */
}

/* The event for req's own node (path of req->ino). */
static void ba_node(struct ba_req *r, enum audit_file_op op, uint64_t ino,
		    uint64_t bytes, int err)
{
	char path[BA_PATH];

	audit_names_path(r->as->names, ino, path, sizeof(path));
	ba_emit(r, op, path, NULL, bytes, err);
}

/* The event for an entry named in a directory (ino, name). */
static void ba_entry(struct ba_req *r, enum audit_file_op op, int err)
{
	char path[BA_PATH];

	audit_names_child(r->as->names, r->req->ino, r->req->name, path,
			  sizeof(path));
	ba_emit(r, op, path, NULL, 0, err);
}

/* SETATTR: one event per kind of change it made. */
static void ba_setattr(struct ba_req *r, int err)
{
	const struct proto_msg *q = r->req;
	unsigned v = q->valid, times = PROTO_SET_ATIME | PROTO_SET_MTIME |
				       PROTO_SET_ATIME_NOW |
				       PROTO_SET_MTIME_NOW | PROTO_SET_CTIME;

	if (v & (PROTO_SET_UID | PROTO_SET_GID))
		ba_node(r, AUDIT_OP_CHOWN, q->ino, 0, err);
	if (v & PROTO_SET_MODE)
		ba_node(r, AUDIT_OP_CHMOD, q->ino, 0, err);
	if (v & PROTO_SET_SIZE)
		ba_node(r, AUDIT_OP_TRUNCATE, q->ino, q->attr.size, err);
	if ((v & times) || !v)
		ba_node(r, AUDIT_OP_SETATTR, q->ino, 0, err);
}

/* Two-name operations: RENAME and LINK and SYMLINK. */
static void ba_two(struct ba_req *r, int err)
{
	const struct proto_msg *q = r->req;
	char a[BA_PATH], b[BA_PATH];

	switch (q->op) {
	case PROTO_OP_RENAME:
		audit_names_child(r->as->names, q->ino, q->name, a, sizeof(a));
		audit_names_child(r->as->names, q->ino2, q->name2, b,
				  sizeof(b));
		ba_emit(r, AUDIT_OP_RENAME, a, b, 0, err);
		break;
	case PROTO_OP_LINK:
		audit_names_path(r->as->names, q->ino, a, sizeof(a));
		audit_names_child(r->as->names, q->ino2, q->name2, b,
				  sizeof(b));
		ba_emit(r, AUDIT_OP_LINK, a, b, 0, err);
		break;
	case PROTO_OP_SYMLINK:
		audit_names_child(r->as->names, q->ino, q->name, a, sizeof(a));
		ba_emit(r, AUDIT_OP_SYMLINK, a, q->name2, 0, err);
		break;
	}
}

/* Operations that are recorded only when refused, and as what. */
static void ba_quiet(struct ba_req *r, int err)
{
	const struct proto_msg *q = r->req;

	switch (q->op) {
	case PROTO_OP_LOOKUP:
		if (ba_denied(err))
			ba_entry(r, AUDIT_OP_GETATTR, err);
		break;
	case PROTO_OP_FLUSH:
	case PROTO_OP_FSYNC:
		/* Data that could not be kept or was blocked (DLP, quota,
		 * an upload that failed) is recorded whatever the error. */
		if (err)
			ba_node(r, AUDIT_OP_WRITE, q->ino, 0, err);
		break;
	case PROTO_OP_RELEASE:
		if (ba_denied(err))
			ba_node(r, AUDIT_OP_WRITE, q->ino, 0, err);
		break;
	case PROTO_OP_READLINK:
		if (ba_denied(err))
			ba_node(r, AUDIT_OP_READ, q->ino, 0, err);
		break;
	case PROTO_OP_READDIRPLUS:
		if (ba_denied(err))
			ba_node(r, AUDIT_OP_READDIR, q->ino, 0, err);
		break;
	case PROTO_OP_GETATTR:
	case PROTO_OP_ACCESS:
	case PROTO_OP_STATFS:
	case PROTO_OP_GETXATTR:
	case PROTO_OP_LISTXATTR:
	case PROTO_OP_LSEEK:
	case PROTO_OP_FSYNCDIR:
	case PROTO_OP_RELEASEDIR:
		if (ba_denied(err))
			ba_node(r, AUDIT_OP_GETATTR, q->ino, 0, err);
		break;
	}
}

static void ba_event(struct ba_req *r, const struct proto_msg *rep, int err)
{
	const struct proto_msg *q = r->req;
	uint64_t n;

	switch (q->op) {
	case PROTO_OP_CREATE:
		return ba_entry(r, AUDIT_OP_CREATE, err);
	case PROTO_OP_MKDIR:
		return ba_entry(r, AUDIT_OP_MKDIR, err);
	case PROTO_OP_MKNOD:
		return ba_entry(r, AUDIT_OP_MKNOD, err);
	case PROTO_OP_UNLINK:
		return ba_entry(r, AUDIT_OP_UNLINK, err);
	case PROTO_OP_RMDIR:
		return ba_entry(r, AUDIT_OP_RMDIR, err);
	case PROTO_OP_RENAME:
	case PROTO_OP_LINK:
	case PROTO_OP_SYMLINK:
		return ba_two(r, err);
	case PROTO_OP_SETATTR:
		return ba_setattr(r, err);
	case PROTO_OP_SETXATTR:
		return ba_node(r, AUDIT_OP_SETXATTR, q->ino, 0, err);
	case PROTO_OP_REMOVEXATTR:
		return ba_node(r, AUDIT_OP_REMOVEXATTR, q->ino, 0, err);
	case PROTO_OP_OPEN:
		return ba_node(r, AUDIT_OP_OPEN, q->ino, 0, err);
	case PROTO_OP_OPENDIR:
		return ba_node(r, AUDIT_OP_READDIR, q->ino, 0, err);
	case PROTO_OP_READ:
		n = !err && rep ? rep->data_len : 0;
		return ba_node(r, AUDIT_OP_READ, q->ino, n, err);
	case PROTO_OP_WRITE:
		n = !err && rep ? rep->len : 0;
		return ba_node(r, AUDIT_OP_WRITE, q->ino, n, err);
	case PROTO_OP_FALLOCATE:
		return ba_node(r, AUDIT_OP_WRITE, q->ino, 0, err);
	case PROTO_OP_COPY_FILE_RANGE:
		n = !err && rep ? rep->len : 0;
		if (!err)
			ba_node(r, AUDIT_OP_READ, q->ino, n, 0);
		return ba_node(r, AUDIT_OP_WRITE, q->ino2, n, err);
	default:
		return ba_quiet(r, err);
	}
}

/* Keep the name table in step with what the client was told. */
static void ba_track(struct audit_names *t, const struct proto_msg *q,
		     const struct proto_msg *rep)
{
	size_t i;

	switch (q->op) {
	case PROTO_OP_LOOKUP:
	case PROTO_OP_CREATE:
	case PROTO_OP_MKDIR:
	case PROTO_OP_MKNOD:
	case PROTO_OP_SYMLINK:
		audit_names_learn(t, q->ino, q->name, rep->attr.nodeid);
		break;
	case PROTO_OP_LINK:
		audit_names_learn(t, q->ino2, q->name2, rep->attr.nodeid);
		break;
	case PROTO_OP_READDIRPLUS:
		for (i = 0; i < rep->ndirents; i++)
			if (rep->dirents[i].attr.nodeid)
				audit_names_learn(t, q->ino,
						  rep->dirents[i].name,
						  rep->dirents[i].attr.nodeid);
		break;
	case PROTO_OP_UNLINK:
	case PROTO_OP_RMDIR:
		audit_names_unlink(t, q->ino, q->name);
		break;
	case PROTO_OP_RENAME:
		audit_names_rename(t, q->ino, q->name, q->ino2, q->name2,
				   !!(q->flags & PROTO_RENAME_EXCHANGE));
		break;
	}
}

void broker_audit_request(struct session *s, struct broker_audit_sess *as,
			  const struct proto_msg *req,
			  const struct proto_msg *rep, int rc)
{
	struct ba_req r = {.s = s, .as = as, .req = req};
	int err = rc < 0 ? -rc : 0;

	if (!ba_au || !as)
		return;
	/* FORGET has no reply and only ever shrinks the table. */
	if (req->op == PROTO_OP_FORGET) {
		audit_names_forget(as->names, req->ino, req->len);
		return;
	}
	snprintf(r.trace, sizeof(r.trace), "%s:%llu", s->claims.sid,
		 (unsigned long long)req->id);
	ba_event(&r, rep, err);
	if (!err && rep)
		ba_track(as->names, req, rep);
}

int broker_audit_finding(const char *fsid, const char *path, const char *rule,
			 int severity, int blocked, uint64_t offset,
			 const char *quarantine)
{
	struct audit_finding_event ev = {
	    .fsid = fsid,
	    .path = path,
	    .rule = rule,
	    .severity =
		severity >= AUDIT_SEV_INFO && severity <= AUDIT_SEV_CRITICAL
		    ? (enum audit_severity)severity
		    : AUDIT_SEV_MEDIUM,
	    .verdict = blocked ? AUDIT_VERDICT_BLOCK : AUDIT_VERDICT_AUDIT,
	    .offset = offset,
	    .quarantine = quarantine && quarantine[0] ? quarantine : NULL,
	};

	if (!ba_au)
		return 0;
	return audit_emit_finding(ba_au, &ev);
}
