/*
 * audit_ocsf.c - the one place that knows OCSF: typed audit events in,
 * compact OCSF 1.4.0 JSON out.
 *
 * Classes: File System Activity (1001), Authentication (3002), API Activity
 * (6003) and Data Security Finding (2006, the class OCSF defines for DLP
 * detections; Detection Finding 2004 is for threat detections and has no
 * data_security object).  Every event carries the base attributes OCSF
 * requires (class, category, activity, type_uid = class_uid * 100 +
 * activity_id, severity, time, metadata.version and metadata.product),
 * metadata.sequence (per emitter), metadata.uid (emitter instance and
 * sequence, unique) and the trace id in metadata.correlation_uid.  Fields
 * OCSF has no attribute for (filesystem_id, intent, byte counts) live in
 * "unmapped", as OCSF prescribes.
 */
#include "audit_int.h"
#include "errmap.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static const struct {
	const char *name;
	int activity;
	int aggregatable;
} op_table[AUDIT_OP_COUNT] = {
#define AUDIT_X(n, a, g) [AUDIT_OP_##n] = {#n, a, g},
    AUDIT_FILE_OPS(AUDIT_X)
#undef AUDIT_X
};

static const char *const file_activity_names[] = {
    [1] = "Create",	  [2] = "Read",		  [3] = "Update",
    [4] = "Delete",	  [5] = "Rename",	  [6] = "Set Attributes",
    [7] = "Set Security", [8] = "Get Attributes", [12] = "Mount",
    [13] = "Unmount",	  [14] = "Open",
};

static const char *const severity_names[] = {
    "Unknown", "Informational", "Low", "Medium", "High", "Critical",
};

int audit_ocsf_op_activity(enum audit_file_op op)
{
	return (unsigned)op < AUDIT_OP_COUNT ? op_table[op].activity : 99;
}

int audit_ocsf_op_aggregatable(enum audit_file_op op)
{
	return (unsigned)op < AUDIT_OP_COUNT && op_table[op].aggregatable;
}

const char *audit_op_name(enum audit_file_op op)
{
	return (unsigned)op < AUDIT_OP_COUNT ? op_table[op].name : "OTHER";
}

int audit_op_from_name(const char *name)
{
	int i;

	for (i = 0; i < AUDIT_OP_COUNT; i++)
		if (strcasecmp(name, op_table[i].name) == 0)
			return i;
	return -EINVAL;
}

/* json_object_set_new that skips NULL strings. */
static void set_str(json_t *o, const char *k, const char *v)
{
	if (v)
		json_object_set_new(o, k, json_string(v));
}

static void set_int(json_t *o, const char *k, long long v)
{
	json_object_set_new(o, k, json_integer(v));
}

static json_t *base(const struct audit_meta *m, int class_uid,
		    const char *class_name, int category_uid,
		    const char *category_name, int activity_id,
		    const char *activity_name, int severity_id)
{
	json_t *o = json_object(), *md, *prod, *feat;
	char type_name[128], uid[64];

	if (!o)
		return NULL;
	if (!activity_name)
		activity_name = "Other";
	set_int(o, "class_uid", class_uid);
	set_str(o, "class_name", class_name);
	set_int(o, "category_uid", category_uid);
	set_str(o, "category_name", category_name);
	set_int(o, "activity_id", activity_id);
	set_str(o, "activity_name", activity_name);
	set_int(o, "type_uid", (long long)class_uid * 100 + activity_id);
	snprintf(type_name, sizeof(type_name), "%s: %s", class_name,
		 activity_name);
	set_str(o, "type_name", type_name);
	set_int(o, "severity_id", severity_id);
	set_str(o, "severity", severity_names[severity_id]);
	set_int(o, "time", (long long)m->time_ms);

	md = json_object();
	prod = json_object();
	feat = json_object();
	set_str(md, "version", AUDIT_OCSF_VERSION);
	set_str(prod, "name", "occfs");
	set_str(prod, "vendor_name", "occfs");
	set_str(feat, "name", m->product);
	json_object_set_new(prod, "feature", feat);
	json_object_set_new(md, "product", prod);
	snprintf(uid, sizeof(uid), "%s-%llu", m->instance,
		 (unsigned long long)m->seq);
	set_str(md, "uid", uid);
	set_int(md, "sequence", (long long)m->seq);
	set_str(md, "correlation_uid", m->trace_id);
	json_object_set_new(o, "metadata", md);
	return o;
}

/* status_id/status and, on failure, status_code and status_detail. */
static void set_status(json_t *o, int err, const char *detail)
{
	char buf[128];

	set_int(o, "status_id", err ? 2 : 1);
	set_str(o, "status", err ? "Failure" : "Success");
	if (err) {
		set_str(o, "status_code", errmap_name(err));
		set_str(o, "status_detail",
			detail ? detail : strerror_r(err, buf, sizeof(buf)));
	} else if (detail) {
		set_str(o, "status_detail", detail);
	}
}

static int err_severity(int err)
{
	if (!err)
		return AUDIT_SEV_INFO;
	return err == EACCES || err == EPERM ? AUDIT_SEV_MEDIUM : AUDIT_SEV_LOW;
}

static json_t *actor_obj(const struct audit_actor *ac, const char *sid)
{
	json_t *o = json_object(), *u, *p, *s;
	char uidbuf[24];

	if (ac && ac->has_cred) {
		u = json_object();
		snprintf(uidbuf, sizeof(uidbuf), "%u", (unsigned)ac->uid);
		set_str(u, "uid", uidbuf);
		set_str(u, "name", ac->user);
		json_object_set_new(o, "user", u);
		p = json_object();
		set_int(p, "pid", ac->pid);
		json_object_set_new(o, "process", p);
	} else if (ac && ac->user) {
		u = json_object();
		set_str(u, "name", ac->user);
		json_object_set_new(o, "user", u);
	}
	if (sid) {
		s = json_object();
		set_str(s, "uid", sid);
		json_object_set_new(o, "session", s);
	}
	return o;
}

static json_t *device_obj(const struct audit_meta *m)
{
	json_t *d = json_object();

	set_str(d, "hostname", m->hostname);
	set_int(d, "type_id", 1);
	set_str(d, "type", "Server");
	return d;
}

static json_t *file_obj(const char *path, int type_id)
{
	static const char *const types[] = {"Unknown", "Regular File",
					    "Folder"};
	json_t *f = json_object();
	const char *slash = path ? strrchr(path, '/') : NULL;

	set_str(f, "name", slash ? slash + 1 : (path ? path : ""));
	set_str(f, "path", path ? path : "");
	set_int(f, "type_id", type_id);
	set_str(f, "type", type_id == 7 ? "Symbolic Link" : types[type_id]);
	return f;
}

static int op_file_type(enum audit_file_op op)
{
	switch (op) {
	case AUDIT_OP_MKDIR:
	case AUDIT_OP_RMDIR:
	case AUDIT_OP_READDIR:
	case AUDIT_OP_MOUNT:
	case AUDIT_OP_UNMOUNT:
		return 2;
	case AUDIT_OP_SYMLINK:
		return 7;
	case AUDIT_OP_CREATE:
	case AUDIT_OP_READ:
	case AUDIT_OP_WRITE:
	case AUDIT_OP_TRUNCATE:
		return 1;
	default:
		return 0;
	}
}

static char *finish(json_t *o)
{
	char *s;

	if (!o) {
		errno = ENOMEM;
		return NULL;
	}
	s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (!s)
		errno = ENOMEM;
	return s;
}

char *audit_ocsf_file(const struct audit_meta *m,
		      const struct audit_file_event *ev,
		      const struct audit_file_extra *x)
{
	int act = audit_ocsf_op_activity(ev->op);
	json_t *o, *un;

	o = base(m, 1001, "File System Activity", 1, "System Activity", act,
		 file_activity_names[act], err_severity(ev->err));
	if (!o)
		return NULL;
	set_status(o, ev->err, NULL);
	if (x && x->count) {
		set_int(o, "count", (long long)x->count);
		set_int(o, "start_time", (long long)x->start_ms);
		set_int(o, "end_time", (long long)x->end_ms);
	}
	json_object_set_new(o, "actor", actor_obj(&ev->actor, ev->sid));
	json_object_set_new(o, "device", device_obj(m));
	json_object_set_new(o, "file",
			    file_obj(ev->path, op_file_type(ev->op)));
	if (ev->new_path &&
	    (ev->op == AUDIT_OP_RENAME || ev->op == AUDIT_OP_LINK))
		json_object_set_new(o, "file_result",
				    file_obj(ev->new_path, 0));
	un = json_object();
	set_str(un, "filesystem_id", ev->fsid);
	set_str(un, "intent", ev->intent);
	set_str(un, "op", audit_op_name(ev->op));
	if (ev->op == AUDIT_OP_READ || ev->op == AUDIT_OP_WRITE ||
	    ev->op == AUDIT_OP_TRUNCATE)
		set_int(un, "bytes", (long long)ev->bytes);
	if (ev->op == AUDIT_OP_SYMLINK)
		set_str(un, "symlink_target", ev->new_path);
	set_str(un, "peer", ev->actor.peer);
	if (x && x->sample_n > 1)
		set_int(un, "sample_rate", x->sample_n);
	json_object_set_new(o, "unmapped", un);
	return finish(o);
}

char *audit_ocsf_auth(const struct audit_meta *m,
		      const struct audit_auth_event *ev)
{
	int act = ev->activity == AUDIT_AUTH_LOGOFF ? 2 : 1;
	json_t *o, *u, *s, *svc, *ep, *un, *ac;

	o = base(m, 3002, "Authentication", 3, "Identity & Access Management",
		 act, act == 2 ? "Logoff" : "Logon",
		 ev->pass ? AUDIT_SEV_INFO : AUDIT_SEV_MEDIUM);
	if (!o)
		return NULL;
	set_int(o, "status_id", ev->pass ? 1 : 2);
	set_str(o, "status", ev->pass ? "Success" : "Failure");
	set_str(o, "status_detail", ev->reason);
	set_int(o, "auth_protocol_id", 99);
	set_str(o, "auth_protocol", "occfs-handle");
	set_int(o, "logon_type_id", 3);
	set_str(o, "logon_type", "Network");
	u = json_object();
	set_str(u, "uid", ev->tenant ? ev->tenant : "unknown");
	set_str(u, "type", "Tenant");
	json_object_set_new(o, "user", u);
	s = json_object();
	set_str(s, "uid", ev->sid);
	set_str(s, "credential_uid", ev->jti);
	json_object_set_new(o, "session", s);
	svc = json_object();
	set_str(svc, "name", ev->service ? ev->service : m->product);
	json_object_set_new(o, "service", svc);
	ep = json_object();
	set_str(ep, "name", ev->peer.peer ? ev->peer.peer : "local");
	json_object_set_new(o, "src_endpoint", ep);
	ac = actor_obj(&ev->peer, NULL);
	if (json_object_size(ac))
		json_object_set_new(o, "actor", ac);
	else
		json_decref(ac);
	json_object_set_new(o, "device", device_obj(m));
	un = json_object();
	set_str(un, "filesystem_id", ev->fsid);
	set_str(un, "intent", ev->intent);
	json_object_set_new(o, "unmapped", un);
	return finish(o);
}

char *audit_ocsf_api(const struct audit_meta *m,
		     const struct audit_api_event *ev)
{
	static const char *const names[] = {
	    [1] = "Create", [2] = "Read", [3] = "Update", [4] = "Delete"};
	int act =
	    ev->activity >= 1 && ev->activity <= 4 ? (int)ev->activity : 99;
	json_t *o, *api, *svc, *ep, *res, *r;

	o = base(m, 6003, "API Activity", 6, "Application Activity", act,
		 act == 99 ? "Other" : names[act], err_severity(ev->err));
	if (!o)
		return NULL;
	set_status(o, ev->err, ev->detail);
	json_object_set_new(o, "actor", actor_obj(&ev->identity, NULL));
	api = json_object();
	set_str(api, "operation", ev->operation ? ev->operation : "unknown");
	svc = json_object();
	set_str(svc, "name", ev->service ? ev->service : m->product);
	json_object_set_new(api, "service", svc);
	json_object_set_new(o, "api", api);
	ep = json_object();
	set_str(ep, "name", ev->identity.peer ? ev->identity.peer : "local");
	json_object_set_new(o, "src_endpoint", ep);
	if (ev->target) {
		res = json_array();
		r = json_object();
		set_str(r, "uid", ev->target);
		set_str(r, "type", ev->target_type);
		json_array_append_new(res, r);
		json_object_set_new(o, "resources", res);
	}
	json_object_set_new(o, "device", device_obj(m));
	return finish(o);
}

char *audit_ocsf_finding(const struct audit_meta *m,
			 const struct audit_finding_event *ev)
{
	/* action_id: 1 Allowed, 2 Denied; disposition_id: 1 Allowed,
	 * 3 Quarantined (blocked data is kept), 17 Logged. */
	static const struct {
		int action, disposition;
		const char *aname, *dname, *verdict;
	} vt[] = {
	    [AUDIT_VERDICT_ALLOW] = {1, 1, "Allowed", "Allowed", "allow"},
	    [AUDIT_VERDICT_AUDIT] = {1, 17, "Allowed", "Logged", "audit"},
	    [AUDIT_VERDICT_BLOCK] = {2, 3, "Denied", "Quarantined", "block"},
	};
	unsigned v = ev->verdict <= AUDIT_VERDICT_BLOCK ? ev->verdict
							: AUDIT_VERDICT_BLOCK;
	int sev =
	    ev->severity >= AUDIT_SEV_INFO && ev->severity <= AUDIT_SEV_CRITICAL
		? (int)ev->severity
		: AUDIT_SEV_MEDIUM;
	json_t *o, *fi, *an, *types, *ds, *pol, *un;
	char uid[64], title[256];

	o = base(m, 2006, "Data Security Finding", 2, "Findings", 1, "Create",
		 sev);
	if (!o)
		return NULL;
	set_int(o, "status_id", 1);
	set_str(o, "status", "New");
	set_int(o, "action_id", vt[v].action);
	set_str(o, "action", vt[v].aname);
	set_int(o, "disposition_id", vt[v].disposition);
	set_str(o, "disposition", vt[v].dname);
	json_object_set_new(o, "is_alert",
			    json_boolean(v == AUDIT_VERDICT_BLOCK));
	fi = json_object();
	snprintf(uid, sizeof(uid), "%s-%llu", m->instance,
		 (unsigned long long)m->seq);
	set_str(fi, "uid", uid);
	snprintf(title, sizeof(title), "DLP rule %s matched",
		 ev->rule ? ev->rule : "?");
	set_str(fi, "title", title);
	types = json_array();
	json_array_append_new(types, json_string("Data Loss Prevention"));
	json_object_set_new(fi, "types", types);
	an = json_object();
	set_str(an, "name", ev->rule);
	set_int(an, "type_id", 1);
	set_str(an, "type", "Rule");
	json_object_set_new(fi, "analytic", an);
	json_object_set_new(o, "finding_info", fi);
	ds = json_object();
	pol = json_object();
	set_str(pol, "name", ev->rule);
	json_object_set_new(ds, "policy", pol);
	json_object_set_new(o, "data_security", ds);
	json_object_set_new(o, "actor", actor_obj(&ev->actor, ev->sid));
	json_object_set_new(o, "device", device_obj(m));
	json_object_set_new(o, "file", file_obj(ev->path, 1));
	un = json_object();
	set_str(un, "filesystem_id", ev->fsid);
	set_str(un, "verdict", vt[v].verdict);
	set_int(un, "offset", (long long)ev->offset);
	set_str(un, "quarantine", ev->quarantine);
	json_object_set_new(o, "unmapped", un);
	return finish(o);
}

char *audit_ocsf_dropped(const struct audit_meta *m, uint64_t dropped,
			 const char *spool_dir)
{
	json_t *o, *ac;
	char msg[128];

	o = base(m, 1001, "File System Activity", 1, "System Activity", 99,
		 "Events Dropped", AUDIT_SEV_MEDIUM);
	if (!o)
		return NULL;
	set_status(o, ENOSPC, "audit spool full");
	set_int(o, "count", (long long)dropped);
	snprintf(msg, sizeof(msg), "%llu file events dropped: audit spool full",
		 (unsigned long long)dropped);
	set_str(o, "message", msg);
	ac = json_object();
	set_str(ac, "app_name", m->product);
	json_object_set_new(o, "actor", ac);
	json_object_set_new(o, "device", device_obj(m));
	json_object_set_new(o, "file", file_obj(spool_dir, 2));
	return finish(o);
}
