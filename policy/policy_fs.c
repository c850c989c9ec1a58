/*
 * policy_fs.c - the `filesystems` section: which filesystem_id (exact or a
 * glob pattern) is stored where (local root or S3 bucket/prefix), its
 * quotas, the intents a handle may carry and the session time limits.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "policy_int.h"

static const char *const fs_keys[] = {"name",	 "local",   "s3", "quota",
				      "intents", "session", NULL};
static const char *const local_keys[] = {"root", NULL};
static const char *const s3_keys[] = {
    "endpoint",	      "region",	      "bucket",		  "prefix",
    "addressing",     "ca_file",      "credentials_file", "sts_endpoint",
    "role_arn",	      "proxy",	      "memory",		  "part_size",
    "upload_threads", "retry_budget", "rgw_quirks",	  NULL};
static const char *const quota_keys[] = {"bytes", "inodes", NULL};
static const char *const session_keys[] = {"ttl", "idle_timeout",
					   "max_lifetime", NULL};
static const char *const intent_names[] = {"read", "write", "preview", NULL};
static const char *const addressing_names[] = {"path", "virtual", NULL};

/* The rules brokerfs applies to a filesystem_id, plus glob characters. */
static int check_name(struct pctx *c, const struct pnode *n, const char *s,
		      int *is_pattern)
{
	if (strlen(s) > 255 || strcmp(s, ".") == 0 || strcmp(s, "..") == 0 ||
	    strpbrk(s, "/\\")) {
		pctx_err(c, n,
			 "filesystem name '%.64s' is not a filesystem_id "
			 "(one path segment, no '/' or '\\', not . or ..)",
			 s);
		return -EINVAL;
	}
	*is_pattern = strpbrk(s, "*?[") != NULL;
	return 0;
}

/* http(s)://host[:port][/], no path: the port defaults by scheme. */
static int parse_endpoint(struct pctx *c, const struct pnode *n,
			  struct policy_s3 *s3)
{
	char host[256], tmp[512];
	const char *rest;
	unsigned port;
	size_t len;

	if (pv_str(c, n, "s3.endpoint", &s3->endpoint))
		return -EINVAL;
	if (strncmp(s3->endpoint, "https://", 8) == 0) {
		rest = s3->endpoint + 8;
		port = 443;
	} else if (strncmp(s3->endpoint, "http://", 7) == 0) {
		rest = s3->endpoint + 7;
		port = 80;
	} else {
		pctx_err(c, n,
			 "s3.endpoint: '%.64s' must start with https:// "
			 "or http://",
			 s3->endpoint);
		return -EINVAL;
	}
	len = strlen(rest);
	if (len && rest[len - 1] == '/')
		len--;
	if (len >= sizeof(tmp) || memchr(rest, '/', len)) {
		pctx_err(c, n,
			 "s3.endpoint: '%.64s' must be scheme://host[:port]"
			 " without a path",
			 s3->endpoint);
		return -EINVAL;
	}
	memcpy(tmp, rest, len);
	tmp[len] = '\0';
	if (policy_parse_hostport(tmp, host, sizeof(host), &s3->endpoint_port,
				  0) ||
	    strchr(host, '*') || s3->endpoint_port == 0) {
		pctx_err(c, n, "s3.endpoint: '%.64s' has a bad host or port",
			 s3->endpoint);
		return -EINVAL;
	}
	if (!strchr(tmp, ':') || (tmp[0] == '[' && !strstr(tmp, "]:")))
		s3->endpoint_port = port;
	s3->endpoint_host = parena_strdup(c->a, host);
	return s3->endpoint_host ? 0 : -ENOMEM;
}

/* S3 bucket naming: 3 to 63 of a-z 0-9 . -, starting and ending alnum. */
static int check_bucket(struct pctx *c, const struct pnode *n, const char *b)
{
	size_t i, len = strlen(b);
	int ok = len >= 3 && len <= 63;

	for (i = 0; ok && i < len; i++)
		ok = (b[i] >= 'a' && b[i] <= 'z') ||
		     (b[i] >= '0' && b[i] <= '9') ||
		     ((b[i] == '.' || b[i] == '-') && i > 0 && i < len - 1);
	if (!ok)
		pctx_err(c, n,
			 "s3.bucket: '%.64s' is not a valid bucket name "
			 "(3 to 63 of a-z, 0-9, '.', '-')",
			 b);
	return ok ? 0 : -EINVAL;
}

static int check_prefix(struct pctx *c, const struct pnode *n, const char *p)
{
	if (p[0] == '/' || p[strlen(p) - 1] == '/' || strstr(p, "//") ||
	    strcmp(p, "..") == 0 || strncmp(p, "../", 3) == 0 ||
	    strstr(p, "/../") ||
	    (strlen(p) >= 3 && strcmp(p + strlen(p) - 3, "/..") == 0)) {
		pctx_err(c, n,
			 "s3.prefix: '%.64s' must be key segments joined "
			 "by '/', without a leading or trailing '/' or '..'",
			 p);
		return -EINVAL;
	}
	return 0;
}

static int read_s3_tuning(struct pctx *c, const struct pnode *n,
			  struct policy_s3 *s3)
{
	struct pnode *v;
	uint64_t u;
	int rc = 0;

	if ((v = pmap_get(n, "memory")) &&
	    pv_size(c, v, "s3.memory", &s3->memory_bytes))
		rc = -EINVAL;
	if ((v = pmap_get(n, "part_size"))) {
		if (pv_size(c, v, "s3.part_size", &s3->part_bytes))
			rc = -EINVAL;
		else if (s3->part_bytes < (5ull << 20) ||
			 s3->part_bytes > (5ull << 30)) {
			pctx_err(c, v,
				 "s3.part_size: S3 parts are 5MiB to 5GiB");
			rc = -EINVAL;
		}
	}
	if ((v = pmap_get(n, "upload_threads"))) {
		if (pv_uint(c, v, "s3.upload_threads", 1, 64, &u))
			rc = -EINVAL;
		else
			s3->upload_threads = (unsigned)u;
	}
	if ((v = pmap_get(n, "retry_budget")) &&
	    pv_duration(c, v, "s3.retry_budget", &s3->retry_budget_ms))
		rc = -EINVAL;
	if ((v = pmap_get(n, "rgw_quirks")) &&
	    pv_bool(c, v, "s3.rgw_quirks", &s3->rgw_quirks))
		rc = -EINVAL;
	return rc;
}

static int read_s3(struct pctx *c, const struct pnode *n, struct policy_fs *fs)
{
	struct policy_s3 *s3 = &fs->s3;
	struct pnode *v, *sts, *role;
	char host[256];
	unsigned port;
	int rc = 0, i;

	if (pv_map(c, n, "s3") || pmap_known(c, n, s3_keys, "s3"))
		rc = -EINVAL;
	if (n->type != PN_MAP)
		return -EINVAL;
	s3->region = "us-east-1";
	s3->prefix = "";
	s3->addressing = "path";
	if (!(v = pmap_get(n, "endpoint"))) {
		pctx_err(c, n, "s3: missing required key 'endpoint'");
		rc = -EINVAL;
	} else if (parse_endpoint(c, v, s3)) {
		rc = -EINVAL;
	}
	if (!(v = pmap_get(n, "bucket"))) {
		pctx_err(c, n, "s3: missing required key 'bucket'");
		rc = -EINVAL;
	} else if (pv_str(c, v, "s3.bucket", &s3->bucket) ||
		   check_bucket(c, v, s3->bucket)) {
		rc = -EINVAL;
	}
	if (!(v = pmap_get(n, "credentials_file"))) {
		pctx_err(c, n, "s3: missing required key 'credentials_file'");
		rc = -EINVAL;
	} else if (pv_secret_file(c, v, "s3.credentials_file",
				  &s3->credentials_file)) {
		rc = -EINVAL;
	}
	if ((v = pmap_get(n, "region")) &&
	    pv_str(c, v, "s3.region", &s3->region))
		rc = -EINVAL;
	if ((v = pmap_get(n, "prefix")) &&
	    (pv_str(c, v, "s3.prefix", &s3->prefix) ||
	     check_prefix(c, v, s3->prefix)))
		rc = -EINVAL;
	if ((v = pmap_get(n, "addressing"))) {
		if (pv_enum(c, v, "s3.addressing", addressing_names, &i))
			rc = -EINVAL;
		else
			s3->addressing = addressing_names[i];
	}
	if ((v = pmap_get(n, "ca_file")) &&
	    pv_path(c, v, "s3.ca_file", &s3->ca_file))
		rc = -EINVAL;
	sts = pmap_get(n, "sts_endpoint");
	role = pmap_get(n, "role_arn");
	if (sts && pv_str(c, sts, "s3.sts_endpoint", &s3->sts_endpoint))
		rc = -EINVAL;
	if (role && pv_str(c, role, "s3.role_arn", &s3->role_arn))
		rc = -EINVAL;
	if (!sts != !role) {
		pctx_err(c, sts ? sts : role,
			 "s3: sts_endpoint and role_arn go together");
		rc = -EINVAL;
	}
	if ((v = pmap_get(n, "proxy"))) {
		const char *p;

		if (pv_str(c, v, "s3.proxy", &p)) {
			rc = -EINVAL;
		} else {
			s3->proxy = p;
			if (strncmp(p, "http://", 7) == 0)
				p += 7;
			if (policy_parse_hostport(p, host, sizeof(host), &port,
						  1) ||
			    port == 0 || strchr(host, '*')) {
				pctx_err(c, v,
					 "s3.proxy: '%.64s' is not "
					 "[http://]host:port",
					 s3->proxy);
				rc = -EINVAL;
			}
		}
	}
	return read_s3_tuning(c, n, s3) ? -EINVAL : rc;
}

static int read_backend(struct pctx *c, const struct pnode *n,
			struct policy_fs *fs)
{
	struct pnode *local = pmap_get(n, "local"), *s3 = pmap_get(n, "s3");
	struct pnode *root;

	if (!local == !s3) {
		pctx_err(c, local && s3 ? s3 : n,
			 "filesystem '%s': give exactly one backend, "
			 "'local' or 's3'",
			 fs->name ? fs->name : "?");
		return -EINVAL;
	}
	if (s3) {
		fs->backend = POLICY_BACKEND_S3;
		return read_s3(c, s3, fs);
	}
	fs->backend = POLICY_BACKEND_LOCAL;
	if (pv_map(c, local, "local"))
		return -EINVAL;
	if (pmap_known(c, local, local_keys, "local"))
		return -EINVAL;
	root = pmap_get(local, "root");
	if (!root) {
		pctx_err(c, local, "local: missing required key 'root'");
		return -EINVAL;
	}
	return pv_path(c, root, "local.root", &fs->local_root);
}

static int read_limits(struct pctx *c, const struct pnode *n,
		       struct policy_fs *fs)
{
	struct pnode *q = pmap_get(n, "quota"), *s = pmap_get(n, "session");
	struct pnode *v;
	int rc = 0;

	if (q &&
	    (pv_map(c, q, "quota") || pmap_known(c, q, quota_keys, "quota")))
		rc = -EINVAL;
	if (q && q->type == PN_MAP) {
		if ((v = pmap_get(q, "bytes")) &&
		    pv_size(c, v, "quota.bytes", &fs->quota_bytes))
			rc = -EINVAL;
		if ((v = pmap_get(q, "inodes")) &&
		    pv_uint(c, v, "quota.inodes", 1, UINT64_MAX,
			    &fs->quota_inodes))
			rc = -EINVAL;
	}
	if (s && (pv_map(c, s, "session") ||
		  pmap_known(c, s, session_keys, "session")))
		rc = -EINVAL;
	if (s && s->type == PN_MAP) {
		if ((v = pmap_get(s, "ttl")) &&
		    pv_duration(c, v, "session.ttl", &fs->ttl_ms))
			rc = -EINVAL;
		if ((v = pmap_get(s, "idle_timeout")) &&
		    pv_duration(c, v, "session.idle_timeout",
				&fs->idle_timeout_ms))
			rc = -EINVAL;
		if ((v = pmap_get(s, "max_lifetime")) &&
		    pv_duration(c, v, "session.max_lifetime",
				&fs->max_lifetime_ms))
			rc = -EINVAL;
		if (!rc && fs->max_lifetime_ms &&
		    fs->ttl_ms > fs->max_lifetime_ms) {
			pctx_err(c, pmap_get(s, "ttl"),
				 "session.ttl is longer than "
				 "session.max_lifetime");
			rc = -EINVAL;
		}
	}
	return rc;
}

static int read_intents(struct pctx *c, const struct pnode *n,
			struct policy_fs *fs)
{
	struct pnode *v = pmap_get(n, "intents");
	size_t i;
	int k, rc = 0;

	if (!v) {
		pctx_err(c, n,
			 "filesystem '%s': missing required key 'intents'",
			 fs->name ? fs->name : "?");
		return -EINVAL;
	}
	if (pv_seq(c, v, "intents"))
		return -EINVAL;
	if (v->n == 0) {
		pctx_err(c, v,
			 "intents: list at least one of read, write, "
			 "preview");
		return -EINVAL;
	}
	for (i = 0; i < v->n; i++) {
		if (pv_enum(c, v->kids[i], "intents", intent_names, &k))
			rc = -EINVAL;
		else
			fs->intents |= 1u << k;
	}
	return rc;
}

static int read_fs(struct pctx *c, const struct pnode *n)
{
	struct policy_fs *fs, *old;
	struct pnode *name;
	size_t i;
	int rc = 0;

	if (pv_map(c, n, "filesystems entry"))
		return -EINVAL;
	fs = parena_alloc(c->a, sizeof(*fs));
	if (!fs)
		return -ENOMEM;
	fs->src = (struct policy_src){n->file, n->line, n->col};
	if (pmap_known(c, n, fs_keys, "a filesystems entry"))
		rc = -EINVAL;
	name = pmap_get(n, "name");
	if (!name) {
		pctx_err(c, n,
			 "filesystems entry: missing required key 'name'");
		rc = -EINVAL;
	} else if (pv_str(c, name, "name", &fs->name) ||
		   check_name(c, name, fs->name, &fs->is_pattern)) {
		rc = -EINVAL;
		fs->name = NULL;
	}
	if (read_backend(c, n, fs) || read_intents(c, n, fs) ||
	    read_limits(c, n, fs))
		rc = -EINVAL;
	for (i = 0; fs->name && i < c->fs.n; i++) {
		old = c->fs.v[i];
		if (strcmp(old->name, fs->name) == 0) {
			pctx_err(c, name,
				 "duplicate filesystem '%s' (first at "
				 "%s:%u:%u)",
				 fs->name, old->src.file, old->src.line,
				 old->src.col);
			return -EINVAL;
		}
	}
	if (!fs->name)
		return -EINVAL;
	if (plist_add(&c->fs, fs))
		return -ENOMEM;
	if (rc)
		return rc;
	if (fs->ttl_ms) {
		struct pref *r = parena_alloc(c->a, sizeof(*r));

		if (!r || plist_add(&c->refs, r))
			return -ENOMEM;
		*r = (struct pref){PREF_FS_TTL,
				   pmap_get(pmap_get(n, "session"), "ttl"), fs};
	}
	if (fs->backend == POLICY_BACKEND_S3 && fs->s3.proxy) {
		struct pref *r = parena_alloc(c->a, sizeof(*r));

		if (!r || plist_add(&c->refs, r))
			return -ENOMEM;
		*r = (struct pref){PREF_S3_EGRESS,
				   pmap_get(pmap_get(n, "s3"), "endpoint"), fs};
	}
	return 0;
}

int psec_filesystems(struct pctx *c, const struct pnode *n)
{
	size_t i;
	int rc = 0;

	if (pv_seq(c, n, "filesystems"))
		return -EINVAL;
	for (i = 0; i < n->n; i++)
		if (read_fs(c, n->kids[i]))
			rc = -EINVAL;
	return rc;
}
