/*
 * policy_sections.c - the smaller sections: tokens, egress, custody,
 * audit and operators, and the checks that need every file read first
 * (references between sections).
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy_int.h"

static const char *const tokens_keys[] = {"public_key", "private_key",
					  "audience", "max_ttl", NULL};
static const char *const egress_keys[] = {"allow", NULL};
static const char *const custody_keys[] = {"name", "secret_file", "lease_ttl",
					   "consumers", NULL};
static const char *const audit_keys[] = {
    "socket",  "spool_dir",	    "spool_max_bytes", "on_full",
    "log_dir", "segment_max_bytes", "sampling",	       NULL};
static const char *const operators_keys[] = {"uids", "gids", NULL};
static const char *const on_full_names[] = {"drop_new", "drop_oldest", "block",
					    NULL};
/* Operations whose events may be sampled: reads and plain data writes. */
static const char *const sampled_ops[] = {
    "lookup",	   "getattr",	 "readlink", "open",   "read",
    "write",	   "flush",	 "release",  "fsync",  "opendir",
    "readdirplus", "releasedir", "fsyncdir", "statfs", "getxattr",
    "listxattr",   "lseek",	 "access",   NULL};
/* Never sampled: they change names, links or permissions. */
static const char *const unsampled_ops[] = {
    "create",	   "mkdir",	"mknod",	   "symlink", "link",
    "unlink",	   "rmdir",	"rename",	   "setattr", "setxattr",
    "removexattr", "fallocate", "copy_file_range", NULL};

#define CUSTODY_MAX_LEASE_MS (15ull * 60 * 1000)

int psec_tokens(struct pctx *c, const struct pnode *n)
{
	struct policy_tokens *t = &c->pol->tokens;
	struct pnode *v;
	int rc = 0;

	if (pv_map(c, n, "tokens"))
		return -EINVAL;
	if (pmap_known(c, n, tokens_keys, "tokens"))
		rc = -EINVAL;
	if ((v = pmap_get(n, "public_key")) &&
	    (pctx_set_once(c, "tokens.public_key", v) ||
	     pv_path(c, v, "tokens.public_key", &t->public_key)))
		rc = -EINVAL;
	if ((v = pmap_get(n, "private_key")) &&
	    (pctx_set_once(c, "tokens.private_key", v) ||
	     pv_secret_file(c, v, "tokens.private_key", &t->private_key)))
		rc = -EINVAL;
	if ((v = pmap_get(n, "audience")) &&
	    (pctx_set_once(c, "tokens.audience", v) ||
	     pv_str(c, v, "tokens.audience", &t->audience)))
		rc = -EINVAL;
	if ((v = pmap_get(n, "max_ttl"))) {
		if (pctx_set_once(c, "tokens.max_ttl", v) ||
		    pv_duration(c, v, "tokens.max_ttl", &t->max_ttl_ms)) {
			rc = -EINVAL;
		} else if (t->max_ttl_ms < 1000) {
			pctx_err(c, v, "tokens.max_ttl: at least 1s");
			rc = -EINVAL;
		}
	}
	return rc;
}

/* host[:port] of an egress entry or a custody consumer. */
static int read_hostport(struct pctx *c, const struct pnode *n,
			 const char *what, int wild_ok,
			 struct policy_egress_entry *e)
{
	char host[256];
	const char *s;
	int rc;

	if (pv_str(c, n, what, &s))
		return -EINVAL;
	rc = policy_parse_hostport(s, host, sizeof(host), &e->port, 0);
	if (rc == -ERANGE) {
		pctx_err(c, n, "%s: '%.64s': port must be 1 to 65535 or '*'",
			 what, s);
		return -EINVAL;
	}
	if (rc == 0 && strchr(host, '*') &&
	    (!wild_ok || host[0] != '*' || host[1] != '.' ||
	     strchr(host + 1, '*') || !host[2])) {
		pctx_err(c, n, "%s: '%.64s': %s", what, s,
			 wild_ok ? "a wildcard is allowed only as a whole "
				   "first label ('*.example.com')"
				 : "wildcards are not allowed here");
		return -EINVAL;
	}
	if (rc) {
		pctx_err(c, n, "%s: '%.64s' is not host[:port]", what, s);
		return -EINVAL;
	}
	e->host = parena_strdup(c->a, host);
	e->src = (struct policy_src){n->file, n->line, n->col};
	return e->host ? 0 : -ENOMEM;
}

int psec_egress(struct pctx *c, const struct pnode *n)
{
	struct policy_egress_entry *e, *old;
	struct pnode *allow;
	size_t i, j;
	int rc = 0;

	if (pv_map(c, n, "egress"))
		return -EINVAL;
	if (pmap_known(c, n, egress_keys, "egress"))
		rc = -EINVAL;
	c->pol->egress_set = 1;
	allow = pmap_get(n, "allow");
	if (!allow)
		return rc;
	if (pv_seq(c, allow, "egress.allow"))
		return -EINVAL;
	for (i = 0; i < allow->n; i++) {
		e = parena_alloc(c->a, sizeof(*e));
		if (!e)
			return -ENOMEM;
		if (read_hostport(c, allow->kids[i], "egress.allow", 1, e)) {
			rc = -EINVAL;
			continue;
		}
		for (j = 0; j < c->egress.n; j++) {
			old = c->egress.v[j];
			if (strcmp(old->host, e->host) == 0 &&
			    old->port == e->port)
				break;
		}
		if (j < c->egress.n) {
			pctx_err(c, allow->kids[i],
				 "duplicate egress entry "
				 "(first at %s:%u:%u)",
				 old->src.file, old->src.line, old->src.col);
			rc = -EINVAL;
		} else if (plist_add(&c->egress, e)) {
			return -ENOMEM;
		}
	}
	return rc;
}

static int read_consumers(struct pctx *c, const struct pnode *n,
			  struct policy_custody *cu)
{
	struct policy_egress_entry e;
	const char **v;
	struct pref *r;
	size_t i;
	int rc = 0;

	if (pv_seq(c, n, "consumers"))
		return -EINVAL;
	if (n->n == 0) {
		pctx_err(c, n, "consumers: name at least one upstream host");
		return -EINVAL;
	}
	v = parena_alloc(c->a, (n->n + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (i = 0; i < n->n; i++) {
		if (read_hostport(c, n->kids[i], "consumers", 0, &e)) {
			rc = -EINVAL;
			continue;
		}
		if (e.port == 0) {
			pctx_err(c, n->kids[i],
				 "consumers: '%.64s': name one "
				 "port, not '*'",
				 n->kids[i]->str);
			rc = -EINVAL;
			continue;
		}
		/* Kept as written so the edge compares one string. */
		v[i] = parena_strdup(c->a, n->kids[i]->str);
		r = parena_alloc(c->a, sizeof(*r));
		if (!r || plist_add(&c->refs, r))
			return -ENOMEM;
		*r = (struct pref){PREF_CONSUMER, n->kids[i], NULL};
	}
	cu->consumers = v;
	return rc;
}

static int read_custody(struct pctx *c, const struct pnode *n)
{
	struct policy_custody *cu, *old;
	struct pnode *name, *v;
	size_t i;
	int rc = 0;

	if (pv_map(c, n, "custody entry"))
		return -EINVAL;
	cu = parena_alloc(c->a, sizeof(*cu));
	if (!cu)
		return -ENOMEM;
	cu->src = (struct policy_src){n->file, n->line, n->col};
	if (pmap_known(c, n, custody_keys, "a custody entry"))
		rc = -EINVAL;
	name = pmap_get(n, "name");
	if (!name || pv_str(c, name, "name", &cu->name)) {
		if (!name)
			pctx_err(c, n,
				 "custody entry: missing required key "
				 "'name'");
		cu->name = NULL;
		rc = -EINVAL;
	}
	if (!(v = pmap_get(n, "secret_file"))) {
		pctx_err(c, n,
			 "custody entry: missing required key "
			 "'secret_file'");
		rc = -EINVAL;
	} else if (pv_secret_file(c, v, "secret_file", &cu->secret_file)) {
		rc = -EINVAL;
	}
	cu->lease_ttl_ms = CUSTODY_MAX_LEASE_MS;
	if ((v = pmap_get(n, "lease_ttl"))) {
		if (pv_duration(c, v, "lease_ttl", &cu->lease_ttl_ms)) {
			rc = -EINVAL;
		} else if (cu->lease_ttl_ms < 1000 ||
			   cu->lease_ttl_ms > CUSTODY_MAX_LEASE_MS) {
			pctx_err(c, v, "lease_ttl: from 1s to 15m");
			rc = -EINVAL;
		}
	}
	if (!(v = pmap_get(n, "consumers"))) {
		pctx_err(c, n,
			 "custody entry: missing required key "
			 "'consumers'");
		rc = -EINVAL;
	} else if (read_consumers(c, v, cu)) {
		rc = -EINVAL;
	}
	if (!cu->name)
		return -EINVAL;
	for (i = 0; i < c->custody.n; i++) {
		old = c->custody.v[i];
		if (strcmp(old->name, cu->name) == 0) {
			pctx_err(c, name,
				 "duplicate custody entry '%s' (first "
				 "at %s:%u:%u)",
				 cu->name, old->src.file, old->src.line,
				 old->src.col);
			return -EINVAL;
		}
	}
	return plist_add(&c->custody, cu) ? -ENOMEM : rc;
}

int psec_custody(struct pctx *c, const struct pnode *n)
{
	size_t i;
	int rc = 0;

	if (pv_seq(c, n, "custody"))
		return -EINVAL;
	for (i = 0; i < n->n; i++)
		if (read_custody(c, n->kids[i]))
			rc = -EINVAL;
	return rc;
}

static int read_sampling(struct pctx *c, const struct pnode *n)
{
	struct policy_sampling *s;
	const struct pnode *k;
	char key[64];
	uint64_t v;
	size_t i;
	int rc = 0, j;

	if (pv_map(c, n, "audit.sampling"))
		return -EINVAL;
	for (i = 0; i < n->n; i++) {
		k = n->kids[2 * i];
		for (j = 0; unsampled_ops[j]; j++)
			if (strcmp(k->str, unsampled_ops[j]) == 0)
				break;
		if (unsampled_ops[j]) {
			pctx_err(c, k,
				 "audit.sampling: '%s' changes names, "
				 "links or permissions and is always "
				 "audited",
				 k->str);
			rc = -EINVAL;
			continue;
		}
		if (pv_enum(c, k, "audit.sampling operation", sampled_ops,
			    &j)) {
			rc = -EINVAL;
			continue;
		}
		snprintf(key, sizeof(key), "audit.sampling.%s", sampled_ops[j]);
		if (pctx_set_once(c, parena_strdup(c->a, key), k) ||
		    pv_uint(c, n->kids[2 * i + 1],
			    "audit.sampling (keep one "
			    "event in N)",
			    1, 1000000, &v)) {
			rc = -EINVAL;
			continue;
		}
		s = parena_alloc(c->a, sizeof(*s));
		if (!s || plist_add(&c->sampling, s))
			return -ENOMEM;
		s->op = sampled_ops[j];
		s->one_in = (unsigned)v;
	}
	return rc;
}

int psec_audit(struct pctx *c, const struct pnode *n)
{
	struct policy_audit *a = &c->pol->audit;
	struct pnode *v;
	int rc = 0, k;

	if (pv_map(c, n, "audit"))
		return -EINVAL;
	if (pmap_known(c, n, audit_keys, "audit"))
		rc = -EINVAL;
	if ((v = pmap_get(n, "socket")) &&
	    (pctx_set_once(c, "audit.socket", v) ||
	     pv_path(c, v, "audit.socket", &a->socket)))
		rc = -EINVAL;
	if ((v = pmap_get(n, "spool_dir")) &&
	    (pctx_set_once(c, "audit.spool_dir", v) ||
	     pv_path(c, v, "audit.spool_dir", &a->spool_dir)))
		rc = -EINVAL;
	if ((v = pmap_get(n, "log_dir")) &&
	    (pctx_set_once(c, "audit.log_dir", v) ||
	     pv_path(c, v, "audit.log_dir", &a->log_dir)))
		rc = -EINVAL;
	if ((v = pmap_get(n, "spool_max_bytes")) &&
	    (pctx_set_once(c, "audit.spool_max_bytes", v) ||
	     pv_size(c, v, "audit.spool_max_bytes", &a->spool_max_bytes)))
		rc = -EINVAL;
	if ((v = pmap_get(n, "segment_max_bytes")) &&
	    (pctx_set_once(c, "audit.segment_max_bytes", v) ||
	     pv_size(c, v, "audit.segment_max_bytes", &a->segment_max_bytes)))
		rc = -EINVAL;
	if ((v = pmap_get(n, "on_full"))) {
		if (pctx_set_once(c, "audit.on_full", v) ||
		    pv_enum(c, v, "audit.on_full", on_full_names, &k))
			rc = -EINVAL;
		else
			a->on_full = (enum policy_on_full)k;
	}
	if ((v = pmap_get(n, "sampling")) && read_sampling(c, v))
		rc = -EINVAL;
	return rc;
}

/* A uid or gid: a number, or a name this host resolves. */
static int read_id(struct pctx *c, const struct pnode *n, int group,
		   struct plist *out)
{
	const char *what = group ? "operators.gids" : "operators.uids";
	uint64_t v;
	uintptr_t id;

	if (n->type == PN_SCALAR && n->len && n->str[0] >= '0' &&
	    n->str[0] <= '9') {
		if (pv_uint(c, n, what, 0, 0xfffffffe, &v))
			return -EINVAL;
		id = (uintptr_t)v;
	} else {
		const char *name;

		if (pv_str(c, n, what, &name))
			return -EINVAL;
		if (group) {
			struct group *g = getgrnam(name);

			if (!g) {
				pctx_err(c, n, "%s: no group '%.64s'", what,
					 name);
				return -EINVAL;
			}
			id = (uintptr_t)g->gr_gid;
		} else {
			struct passwd *p = getpwnam(name);

			if (!p) {
				pctx_err(c, n, "%s: no user '%.64s'", what,
					 name);
				return -EINVAL;
			}
			id = (uintptr_t)p->pw_uid;
		}
	}
	/* Stored as the pointer value; policy_load turns them into arrays. */
	return plist_add(out, (void *)(id + 1)) ? -ENOMEM : 0;
}

int psec_operators(struct pctx *c, const struct pnode *n)
{
	static const char *const lists[] = {"uids", "gids"};
	struct pnode *v;
	size_t i;
	int rc = 0, g;

	if (pv_map(c, n, "operators"))
		return -EINVAL;
	if (pmap_known(c, n, operators_keys, "operators"))
		rc = -EINVAL;
	for (g = 0; g < 2; g++) {
		if (!(v = pmap_get(n, lists[g])))
			continue;
		if (pv_seq(c, v, g ? "operators.gids" : "operators.uids")) {
			rc = -EINVAL;
			continue;
		}
		for (i = 0; i < v->n; i++)
			if (read_id(c, v->kids[i], g, g ? &c->gids : &c->uids))
				rc = -EINVAL;
	}
	return rc;
}

static int egress_allows(struct pctx *c, const char *host, unsigned port)
{
	size_t i;

	for (i = 0; i < c->egress.n; i++)
		if (policy_egress_match(c->egress.v[i], host, port))
			return 1;
	return 0;
}

void psec_cross_check(struct pctx *c)
{
	const struct policy_fs *fs;
	struct policy_egress_entry e;
	const struct pref *r;
	uint64_t max_ttl = c->pol->tokens.max_ttl_ms;
	char host[256];
	size_t i;

	for (i = 0; i < c->refs.n; i++) {
		r = c->refs.v[i];
		fs = r->obj;
		switch (r->kind) {
		case PREF_FS_TTL:
			if (fs->ttl_ms > max_ttl)
				pctx_err(c, r->at,
					 "session.ttl of '%s' is "
					 "longer than tokens.max_ttl "
					 "(%llus)",
					 fs->name,
					 (unsigned long long)max_ttl / 1000);
			break;
		case PREF_S3_EGRESS:
			if (c->pol->egress_set &&
			    !egress_allows(c, fs->s3.endpoint_host,
					   fs->s3.endpoint_port))
				pctx_err(c, r->at,
					 "s3.endpoint %s:%u is not "
					 "in egress.allow; the proxy "
					 "would refuse it",
					 fs->s3.endpoint_host,
					 fs->s3.endpoint_port);
			break;
		case PREF_CONSUMER:
			if (policy_parse_hostport(r->at->str, host,
						  sizeof(host), &e.port,
						  0) == 0 &&
			    !egress_allows(c, host, e.port))
				pctx_err(c, r->at,
					 "consumer '%s' is not in "
					 "egress.allow; the edge "
					 "could not reach it",
					 r->at->str);
			break;
		}
	}
}
