/*
 * backend_s3.c - the s3 backend: one object per file under
 * <bucket>/<prefix>/<filesystem_id>/, in s3fs-fuse's layout.
 *
 * This file checks the settings, reads the base credential, starts what
 * every session shares (the staging store, the metadata cache and its
 * flusher), gives each filesystem its S3 client and STS credential, opens
 * and closes sessions and dispatches requests through a table generated
 * from PROTO_OPS.  The work itself is in s3b_nodes.c (node table, keys,
 * open files), s3b_ns.c (names), s3b_dir.c (listings), s3b_attr.c
 * (attributes, xattrs), s3b_data.c (file data, through the staging engine
 * of s3b_stage.h), s3b_cache.c (metadata cache) and s3b_meta.c (s3fs
 * headers).  s3b.h describes the locks.
 *
 * The base credential comes from a root-only file, stays in this process,
 * is never logged, and never reaches a guest: with an STS endpoint each
 * filesystem gets an AssumeRole credential whose session policy allows
 * only its own prefix; without one the base credential signs, and the
 * keys built in s3b_nodes.c still never leave the prefix.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "backend.h"
#include "broker.h"
#include "log.h"
#include "proto.h"
#include "s3_sts.h"
#include "s3b.h"
#include "s3b_ra.h"

/* clang-format off */
static const s3b_handler s3b_table[PROTO_OP_MAX] = {
#define S3B_ENTRY(name, num, req, rep, fl) [num] = S3B_HANDLER_##name,
	PROTO_OPS(S3B_ENTRY)
#undef S3B_ENTRY
};
/* clang-format on */

#define CRED_LINE_MAX 1024

uint64_t s3b_clock_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- settings ----------------------------------------------------------- */

/* A prefix is a run of plain segments: no "", ".", "..", wildcards. */
static bool prefix_ok(const char *p)
{
	const char *seg = p;

	if (strpbrk(p, "*?$\"'\\") || strlen(p) > 512)
		return false;
	for (const char *c = p; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			return false;
	for (;;) {
		const char *e = strchr(seg, '/');
		size_t n = e ? (size_t)(e - seg) : strlen(seg);

		if (!n || (n == 1 && seg[0] == '.') ||
		    (n == 2 && !strncmp(seg, "..", 2)))
			return false;
		if (!e)
			return true;
		seg = e + 1;
	}
}

/* Strip blanks around a value in place. */
static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' ||
			 e[-1] == '\r'))
		*--e = '\0';
	return s;
}

/*
 * The credentials file: "access_key = ..." and "secret_key = ..." (or
 * aws_access_key_id / aws_secret_access_key), '#' comments.  It must be a
 * regular file that neither group nor others can read.
 */
static int read_creds(const char *path, char **ak, char **sk)
{
	char line[CRED_LINE_MAX];
	struct stat st;
	FILE *f = NULL;
	int fd, rc = 0, lineno = 0;

	*ak = *sk = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		rc = -errno;
		log_err("s3: credentials %s: %s", path, strerror(errno));
		return rc;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		log_err("s3: credentials %s: not a regular file", path);
		close(fd);
		return -EINVAL;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		log_err("s3: credentials %s: group or others may read it "
			"(mode %04o); chmod 600 it",
			path, (unsigned)(st.st_mode & 07777));
		close(fd);
		return -EPERM;
	}
	f = fdopen(fd, "r");
	if (!f) {
		close(fd);
		return -errno;
	}
	while (fgets(line, sizeof(line), f)) {
		char *eq, *name, *val, **dst = NULL;

		lineno++;
		name = trim(line);
		if (!*name || *name == '#' || *name == '[')
			continue;
		eq = strchr(name, '=');
		if (!eq) {
			log_err("s3: %s:%d: expected name = value", path,
				lineno);
			rc = -EINVAL;
			break;
		}
		*eq = '\0';
		name = trim(name);
		val = trim(eq + 1);
		if (!strcmp(name, "access_key") ||
		    !strcmp(name, "aws_access_key_id"))
			dst = ak;
		else if (!strcmp(name, "secret_key") ||
			 !strcmp(name, "aws_secret_access_key"))
			dst = sk;
		if (!dst)
			continue;
		free(*dst);
		if (!(*dst = strdup(val))) {
			rc = -ENOMEM;
			break;
		}
	}
	explicit_bzero(line, sizeof(line));
	fclose(f);
	if (!rc && (!*ak || !**ak || !*sk || !**sk)) {
		log_err("s3: credentials %s: access_key and secret_key needed",
			path);
		rc = -EINVAL;
	}
	if (rc) {
		if (*sk)
			explicit_bzero(*sk, strlen(*sk));
		free(*ak);
		free(*sk);
		*ak = *sk = NULL;
	}
	return rc;
}

static int s3b_check(const struct broker_config *cfg)
{
	const struct broker_s3_config *c = &cfg->s3;
	char *ak = NULL, *sk = NULL;
	int rc;

	if (!c->endpoint || strncmp(c->endpoint, "http", 4)) {
		log_err("s3: --s3-endpoint http(s)://host[:port] is required");
		return -EINVAL;
	}
	if (!c->bucket || !*c->bucket || strpbrk(c->bucket, "/*?\"\\ ")) {
		log_err("s3: --s3-bucket is required (a plain bucket name)");
		return -EINVAL;
	}
	if (c->prefix && *c->prefix) {
		const char *p = c->prefix + strspn(c->prefix, "/");
		char *t = strdup(p);
		size_t n = t ? strlen(t) : 0;
		bool ok;

		while (n && t[n - 1] == '/')
			t[--n] = '\0';
		ok = t && (!*t || prefix_ok(t));
		free(t);
		if (!ok) {
			log_err("s3: --s3-prefix %s: empty, '.', '..' segments "
				"or wildcards",
				c->prefix);
			return -EINVAL;
		}
	}
	if (c->addressing && strcmp(c->addressing, "path") &&
	    strcmp(c->addressing, "virtual")) {
		log_err("s3: --s3-addressing %s: path or virtual",
			c->addressing);
		return -EINVAL;
	}
	if (!c->credentials) {
		log_err("s3: --s3-credentials FILE is required");
		return -EINVAL;
	}
	if (c->sts_endpoint && !c->role_arn) {
		log_err("s3: --s3-sts-endpoint needs --s3-role-arn");
		return -EINVAL;
	}
	if (c->role_arn && !c->sts_endpoint) {
		log_err("s3: --s3-role-arn needs --s3-sts-endpoint");
		return -EINVAL;
	}
	if (c->ca_file && access(c->ca_file, R_OK)) {
		log_err("s3: --s3-ca-file %s: %s", c->ca_file, strerror(errno));
		return -EINVAL;
	}
	if (!cfg->staging_dir) {
		log_err("s3: --staging-dir is required");
		return -EINVAL;
	}
	rc = read_creds(c->credentials, &ak, &sk);
	if (sk)
		explicit_bzero(sk, strlen(sk));
	free(ak);
	free(sk);
	return rc;
}

/* ---- filesystems: client and credential --------------------------------- */

static struct s3_http *make_client(struct backend *b, const char *bucket,
				   const char *service, const char *endpoint)
{
	struct s3_http_config hc = {
	    .endpoint = endpoint,
	    .region = b->region,
	    .bucket = bucket,
	    .service = service,
	    .virtual_host = bucket && b->virtual_host,
	    .proxy = b->proxy,
	    .ca_file = b->ca_file,
	    .retry_budget_ms = b->retry_budget_ms,
	    .rgw_quirks = b->rgw_quirks,
	};
	struct s3_cred base = {b->access_key, b->secret_key, NULL};
	struct s3_http *h = s3_http_new(&hc);

	if (h && s3_http_set_cred(h, &base)) {
		s3_http_free(h);
		h = NULL;
	}
	return h;
}

/* An STS RoleSessionName from the fsid: [A-Za-z0-9+=,.@_-], 2..64. */
static void session_name(const char *fsid, char *out, size_t cap)
{
	size_t o = (size_t)snprintf(out, cap, "occfs-");

	for (; *fsid && o + 1 < cap && o < 64; fsid++) {
		char c = *fsid;

		out[o++] = (strchr("+=,.@_-", c) || (c >= 'a' && c <= 'z') ||
			    (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
			       ? c
			       : '_';
	}
	out[o] = '\0';
}

int s3b_fs_cred(struct backend *b, struct s3b_fs *fs, bool force)
{
	char policy[S3_STS_POLICY_MAX], name[72];
	struct s3_sts_cred *c = NULL;
	struct s3_sts_assume as;
	int rc = 0;

	if (!b->sts)
		return 0;
	pthread_mutex_lock(&fs->cred_lock);
	if (!force && fs->cred_exp - time(NULL) > S3B_STS_REFRESH_S)
		goto out;
	rc = s3_sts_policy(b->bucket, b->prefix, fs->fsid, policy,
			   sizeof(policy));
	if (rc)
		goto out;
	c = calloc(1, sizeof(*c));
	if (!c) {
		rc = -ENOMEM;
		goto out;
	}
	session_name(fs->fsid, name, sizeof(name));
	as = (struct s3_sts_assume){.role_arn = b->role_arn,
				    .session_name = name,
				    .duration_s = S3B_STS_DURATION_S,
				    .policy = policy};
	rc = s3_sts_assume_role(b->sts, &as, c);
	if (!rc) {
		struct s3_cred sc = {c->access_key, c->secret_key,
				     c->session_token};

		rc = s3_http_set_cred(fs->http, &sc);
		if (!rc)
			fs->cred_exp = c->expiration;
	}
	if (rc)
		log_warn("s3: fsid %s: AssumeRole failed: %s", fs->fsid,
			 strerror(-rc));
out:
	pthread_mutex_unlock(&fs->cred_lock);
	if (c) {
		s3_sts_cred_clear(c);
		free(c);
	}
	return rc;
}

static void fs_free(struct s3b_fs *fs)
{
	s3_http_free(fs->http);
	pthread_rwlock_destroy(&fs->ns);
	pthread_mutex_destroy(&fs->cred_lock);
	pthread_mutex_destroy(&fs->q_lock);
	free(fs->fsid);
	free(fs->root);
	free(fs);
}

static struct s3b_fs *fs_new(struct backend *b, const char *fsid)
{
	struct s3b_fs *fs = calloc(1, sizeof(*fs));
	int n;

	if (!fs)
		return NULL;
	pthread_rwlock_init(&fs->ns, NULL);
	pthread_mutex_init(&fs->cred_lock, NULL);
	pthread_mutex_init(&fs->q_lock, NULL);
	fs->fsid = strdup(fsid);
	n = *b->prefix ? asprintf(&fs->root, "%s/%s/", b->prefix, fsid)
		       : asprintf(&fs->root, "%s/", fsid);
	if (n < 0)
		fs->root = NULL;
	fs->http = make_client(b, b->bucket, NULL, b->endpoint);
	if (!fs->fsid || !fs->root || !fs->http) {
		fs_free(fs);
		return NULL;
	}
	fs->root_len = strlen(fs->root);
	return fs;
}

int s3b_fs_get(struct backend *b, const char *fsid, struct s3b_fs **out)
{
	struct s3b_fs *fs, *fresh = NULL;
	int rc;

	pthread_mutex_lock(&b->lock);
	for (fs = b->fs_list; fs && strcmp(fs->fsid, fsid); fs = fs->next)
		;
	pthread_mutex_unlock(&b->lock);
	if (!fs) {
		fresh = fs_new(b, fsid);
		if (!fresh)
			return -ENOMEM;
		rc = s3b_fs_cred(b, fresh, true);
		if (rc) {
			fs_free(fresh);
			return rc;
		}
		pthread_mutex_lock(&b->lock);
		for (fs = b->fs_list; fs && strcmp(fs->fsid, fsid);
		     fs = fs->next)
			;
		if (!fs) {
			fresh->next = b->fs_list;
			b->fs_list = fs = fresh;
			fresh = NULL;
		}
		pthread_mutex_unlock(&b->lock);
		if (fresh)
			fs_free(fresh);
	}
	*out = fs;
	return 0;
}

/* ---- start and stop ----------------------------------------------------- */

static struct s3_http *recover_client(void *arg, const char *fsid)
{
	struct s3b_fs *fs;

	if (s3b_fs_get(arg, fsid, &fs))
		return NULL;
	return fs->http;
}

static void backend_free(struct backend *b)
{
	struct s3b_fs *fs, *next;

	for (fs = b->fs_list; fs; fs = next) {
		next = fs->next;
		fs_free(fs);
	}
	s3b_cache_cleanup(b);
	s3_http_free(b->sts);
	if (b->secret_key)
		explicit_bzero(b->secret_key, strlen(b->secret_key));
	free(b->endpoint);
	free(b->region);
	free(b->bucket);
	free(b->prefix);
	free(b->proxy);
	free(b->ca_file);
	free(b->sts_endpoint);
	free(b->role_arn);
	free(b->access_key);
	free(b->secret_key);
	pthread_mutex_destroy(&b->lock);
	free(b);
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

static int copy_settings(struct backend *b, const struct broker_config *cfg)
{
	const struct broker_s3_config *c = &cfg->s3;
	const char *p = c->prefix ? c->prefix + strspn(c->prefix, "/") : "";
	size_t n;

	b->endpoint = strdup(c->endpoint);
	b->region = strdup(c->region ? c->region : "us-east-1");
	b->bucket = strdup(c->bucket);
	b->prefix = strdup(p);
	b->proxy = dup_or_null(c->proxy);
	b->ca_file = dup_or_null(c->ca_file);
	b->sts_endpoint = dup_or_null(c->sts_endpoint);
	b->role_arn = dup_or_null(c->role_arn);
	if (!b->endpoint || !b->region || !b->bucket || !b->prefix ||
	    (c->proxy && !b->proxy) || (c->ca_file && !b->ca_file) ||
	    (c->sts_endpoint && !b->sts_endpoint) ||
	    (c->role_arn && !b->role_arn))
		return -ENOMEM;
	n = strlen(b->prefix);
	while (n && b->prefix[n - 1] == '/')
		b->prefix[--n] = '\0';
	b->virtual_host = c->addressing && !strcmp(c->addressing, "virtual");
	b->rgw_quirks = c->rgw_quirks;
	b->retry_budget_ms = c->retry_budget_ms;
	b->started = (int64_t)time(NULL);
	return read_creds(c->credentials, &b->access_key, &b->secret_key);
}

/*
 * The store uploads a stage by itself: no metadata copy of the key may
 * overlap it, so it takes the fence, and carries the pending metadata.
 */
static int s3b_bg_begin(void *arg, const char *key, struct s3b_stage *sg,
			uint64_t *gen)
{
	struct backend *b = arg;
	struct s3b_info i;
	int rc = s3b_cache_fence(b, key);

	if (rc)
		return rc;
	if (!s3b_stage_dirty(sg))
		rc = -EAGAIN; /* removed (discarded) or uploaded meanwhile */
	else if (s3b_cache_get(b, key, NULL, &i) == 1) {
		rc = s3b_meta_to_stage(sg, &i.m, i.xattr);
		*gen = i.gen;
		s3b_info_clear(&i);
	}
	if (rc)
		s3b_cache_unfence(b, key);
	return rc;
}

/* ... and the cache learns the new ETag. */
static void s3b_bg_end(void *arg, const char *key, uint64_t gen, int rc,
		       const char *etag, uint64_t size)
{
	if (!rc)
		s3b_cache_uploaded(arg, key, etag, size, gen, NULL);
	s3b_cache_unfence(arg, key);
}

static int s3b_start(const struct broker_config *cfg, struct backend **out)
{
	const struct broker_s3_config *c = &cfg->s3;
	struct s3b_store_config sc = {
	    .dir = cfg->staging_dir,
	    .upload_threads = c->upload_threads,
	    .mem_budget = (uint64_t)c->memory_mib << 20,
	    .min_part = (uint64_t)c->part_mib << 20,
	    .rgw_quirks = c->rgw_quirks,
	    .retry_ms = 1000,
	    .upload_begin = s3b_bg_begin,
	    .upload_end = s3b_bg_end,
	};
	struct backend *b;
	int rc;

	*out = NULL;
	rc = s3b_check(cfg);
	if (rc)
		return rc;
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	pthread_mutex_init(&b->lock, NULL);
	rc = s3b_cache_init(b);
	if (!rc)
		rc = copy_settings(b, cfg);
	if (rc)
		goto fail;
	if (b->sts_endpoint) {
		b->sts = make_client(b, NULL, "sts", b->sts_endpoint);
		if (!b->sts) {
			rc = -ENOMEM;
			goto fail;
		}
	}
	sc.upload_arg = b;
	rc = s3b_store_open(&sc, &b->store);
	if (rc) {
		log_err("s3: staging directory %s: %s", cfg->staging_dir,
			strerror(-rc));
		goto fail;
	}
	rc = s3b_store_recover(b->store, recover_client, b);
	if (rc < 0) {
		log_err("s3: staging directory %s: recovery: %s",
			cfg->staging_dir, strerror(-rc));
		goto fail_store;
	}
	if (rc > 0)
		log_warn("s3: %d staged objects could not be uploaded yet; "
			 "kept",
			 rc);
	rc = s3b_cache_start_flusher(b);
	if (!rc)
		rc = s3b_store_retry_start(b->store);
	if (rc)
		goto fail_store;
	log_info("s3: bucket %s prefix '%s' at %s%s%s", b->bucket, b->prefix,
		 b->endpoint, b->sts ? ", STS per filesystem" : "",
		 b->proxy ? ", through a proxy" : "");
	*out = b;
	return 0;
fail_store:
	s3b_store_close(b->store);
fail:
	backend_free(b);
	return rc;
}

static int s3b_stop(struct backend *b, unsigned flush_ms)
{
	uint64_t deadline = s3b_clock_ms() + flush_ms;
	int left, meta;

	if (!b)
		return 0;
	s3b_cache_stop_flusher(b);
	meta = s3b_cache_apply_all(b, NULL, 0);
	s3b_store_retry_stop(b->store, deadline);
	left = s3b_store_flush_all(b->store, deadline);
	if (meta > 0)
		log_warn("s3: %d metadata changes could not be applied", meta);
	if (!s3b_store_idle(b->store)) {
		/* an upload is stuck in a request past the deadline: the
		 * store cannot be closed under it; exit ends it, and what it
		 * held stays staged for the next start */
		log_warn("s3: uploads still in flight at the flush deadline; "
			 "left to the exit");
		return left < 0 ? left : left + meta;
	}
	s3b_store_close(b->store);
	backend_free(b);
	return left < 0 ? left : left + meta;
}

/* ---- sessions ----------------------------------------------------------- */

static int s3b_session_open_opts(struct backend *b, const char *fsid,
				 const struct backend_session_opts *o,
				 struct backend_session **out)
{
	unsigned flags = o->flags;
	struct backend_session *s = NULL;
	struct s3b_fs *fs;
	bool sweep;
	int rc;

	*out = NULL;
	rc = s3b_name_check(fsid);
	if (rc)
		return rc;
	rc = s3b_fs_get(b, fsid, &fs);
	if (rc)
		return rc;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->b = b;
	s->fs = fs;
	s->flags = flags;
	rc = s3b_nodes_init(s);
	if (rc) {
		free(s);
		return rc;
	}
	if (o->quota_bytes || o->quota_inodes) {
		rc = s3b_fs_cred(b, fs, false);
		if (!rc)
			rc = s3b_quota_attach(s, o->quota_bytes,
					      o->quota_inodes);
		if (rc) {
			s3b_nodes_cleanup(s);
			free(s);
			return rc;
		}
	}
	pthread_mutex_lock(&b->lock);
	fs->sessions++;
	sweep = !fs->swept;
	fs->swept = true;
	pthread_mutex_unlock(&b->lock);
	/* After start-up recovery has uploaded what it could (a file
	 * unlinked while open included): what a crash left hidden goes. */
	if (sweep)
		s3b_hidden_sweep(fs);
	*out = s;
	return 0;
}

static int s3b_session_open(struct backend *b, const char *fsid, unsigned flags,
			    struct backend_session **out)
{
	struct backend_session_opts o = {.flags = flags};

	return s3b_session_open_opts(b, fsid, &o, out);
}

/* The core has drained every worker of this session before closing it. */
/*
 * A destroy: upload the open files' staged data now, one after the other
 * until the deadline, so the control plane's "flushed" means in S3.
 * Files left (deadline, S3 error, a DLP block) stay staged and go to the
 * background uploader at the close, as after any session's end.
 */
static int s3b_session_drain(struct backend_session *s, uint64_t deadline_ms)
{
	struct s3b_file *f;
	struct timespec ts;
	int left = 0, rc;

	for (uint32_t i = 0; i < s->nslots; i++) {
		f = s->slots[i].f;
		if (!f || f->kind != S3B_FILE || !f->writable)
			continue;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		if ((uint64_t)ts.tv_sec * 1000 +
			(uint64_t)ts.tv_nsec / 1000000 >=
		    deadline_ms) {
			left++;
			continue;
		}
		rc = s3b_data_sync_file(s, f);
		if (rc) {
			log_warn("session drain: fsid=%s: %s left staged: %s",
				 s->fs->fsid,
				 f->node->path ? f->node->path : "(unlinked)",
				 strerror(-rc));
			left++;
		}
	}
	return left;
}

static void s3b_session_close(struct backend_session *s)
{
	struct s3b_file *f;

	if (!s)
		return;
	s3b_ra_session_close(s);
	/*
	 * Files the guest never released: what they hold stays staged and
	 * the store uploads it in the background (or the shutdown flush does,
	 * within its deadline), so a session's end never waits on S3.
	 */
	for (uint32_t i = 0; i < s->nslots; i++) {
		f = s->slots[i].f;
		if (!f)
			continue;
		s->slots[i].f = NULL;
		s3b_file_free(s, f);
	}
	s3b_store_retry_kick(s->b->store);
	free(s->slots);
	s3b_cache_apply_all(s->b, s->fs, 0);
	pthread_mutex_lock(&s->b->lock);
	s->fs->sessions--;
	pthread_mutex_unlock(&s->b->lock);
	s3b_nodes_cleanup(s);
	free(s);
}

static int s3b_rdonly_check(const struct proto_msg *req)
{
	const struct proto_opinfo *oi = proto_opinfo(req->op);

	if (oi->flags & OPF_MUTATES)
		return -EROFS;
	if (req->op == PROTO_OP_OPEN &&
	    ((req->flags & O_ACCMODE) != O_RDONLY || (req->flags & O_TRUNC)))
		return -EROFS;
	return 0;
}

static int s3b_dispatch(struct backend_session *s, const struct proto_msg *req,
			struct proto_msg *rep)
{
	s3b_handler h;
	int rc;

	if (!s || !req || !rep)
		return -EINVAL;
	if (req->op >= PROTO_OP_MAX || !(h = s3b_table[req->op]))
		return -ENOSYS;
	if (s->flags & BACKEND_SESSION_RDONLY) {
		rc = s3b_rdonly_check(req);
		if (rc)
			return rc;
	}
	if (req->op != PROTO_OP_FORGET) {
		rc = s3b_fs_cred(s->b, s->fs, false);
		if (rc)
			return rc == -EACCES ? -EACCES : -EIO;
	}
	rc = h(s, req, rep);
	/* The credential expired under us: refresh it and try once more. */
	if (rc == -EKEYEXPIRED && s->b->sts && !s3b_fs_cred(s->b, s->fs, true))
		rc = h(s, req, rep);
	if (rc == -EKEYEXPIRED)
		rc = -EACCES;
	if (!rc && (proto_opinfo(req->op)->flags & OPF_PATTR))
		s3b_ns_pattr(s, req, rep);
	return rc;
}

const struct backend_ops backend_s3 = {
    .name = "s3",
    .stages_writes = true,
    .check = s3b_check,
    .start = s3b_start,
    .stop = s3b_stop,
    .session_open = s3b_session_open,
    .session_open_opts = s3b_session_open_opts,
    .session_quota = s3b_quota_set,
    .session_drain = s3b_session_drain,
    .session_close = s3b_session_close,
    .dispatch = s3b_dispatch,
    /* Everything else may wait on S3 and goes to the workers. */
    .inline_ops = BACKEND_OP_BIT(PROTO_OP_FORGET),
};
