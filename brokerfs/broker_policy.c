/*
 * broker_policy.c - brokerfs --policy DIR: the policy files decide which
 * filesystem_ids are served, with which intents, by which backend and with
 * what quota.
 *
 * Each filesystem entry of the policy (an exact filesystem_id or a
 * pattern) gets its own started backend, an "instance", made from a view
 * of the broker's configuration with the entry's backend settings and a
 * staging directory of its own (<staging-dir>/<entry name, sanitised>), so
 * two entries never share staged data.  Local instances start on their
 * first session; s3 instances start with the broker, because starting is
 * when an s3 backend re-uploads what a previous run left staged.
 *
 * SIGHUP loads the directory anew (policy_handle_reload): a broken policy
 * is refused with one log line per problem and the old one stays.  Intents
 * and quotas come from the policy in force when a session opens (quotas
 * also reach running sessions, see session.c); a running instance keeps
 * the backend settings it started with, and a change to them is logged as
 * taking effect at the next start.  Instances live until the broker stops.
 * The dlp section is compiled at load and at every reload (broker_dlp.c);
 * scans starting after a reload use the new rules.
 *
 * Locking: bp->lock guards the instance list; inst->lock serialises the
 * start of one instance (a worker may wait there while another starts it),
 * so a slow s3 start never holds up sessions of other entries.
 */
#include "broker.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "backend.h"
#include "broker_dlp.h"
#include "log.h"
#include "policy.h"

struct broker_inst {
	struct broker_inst *next; /* bp->lock */
	char *name;		  /* the entry's name, immutable */
	char *settings;		  /* its backend settings, for reload */
	const struct backend_ops *ops;
	struct broker_config cfg; /* the view; strings below are ours */
	pthread_mutex_t lock;
	struct backend *b; /* lock to start; immutable once set */
	int stopped;
};

struct broker_policy {
	char *dir;
	struct policy_handle h;
	const struct broker_config *cfg;
	char *tokens; /* token settings at start, for reload */
	pthread_mutex_t lock;
	struct broker_inst *insts; /* lock */
};

/* ---- loading -------------------------------------------------------------
 */

static void print_problems(const struct policy_problems *probs,
			   const char *prefix)
{
	char line[1200];
	size_t i;

	for (i = 0; i < probs->n; i++) {
		policy_problem_format(&probs->v[i], line, sizeof(line));
		if (prefix)
			log_err("%s%s", prefix, line);
		else
			fprintf(stderr, "%s\n", line);
	}
	if (probs->dropped && prefix)
		log_err("%s%zu more problems", prefix, probs->dropped);
	else if (probs->dropped)
		fprintf(stderr, "%zu more problems\n", probs->dropped);
}

static char *tokens_string(const struct policy *p)
{
	char *s;

	if (asprintf(&s, "%s|%s",
		     p->tokens.public_key ? p->tokens.public_key : "",
		     p->tokens.audience ? p->tokens.audience : "") < 0)
		return NULL;
	return s;
}

/*
 * The policy's audit section, where the command line left a setting unset:
 * the socket, a spool below spool_dir (one directory per process, as the
 * emitter requires), the spool bound, what happens when it is full, and
 * sampling of reads and writes.  File activity is fail-open in the broker
 * (an event is recorded after the operation, never instead of it), so
 * on_full block and drop_oldest (the spool is delivered in order) both act
 * as drop_new there, logged; authentication stays fail-closed regardless.
 */
static void policy_audit_settings(struct broker_config *cfg,
				  const struct policy_audit *a)
{
	char mode[32];
	size_t i;

	if (!cfg->audit_socket && a->socket)
		cfg->audit_socket = strdup(a->socket);
	if (!cfg->audit_spool && a->spool_dir &&
	    asprintf(&cfg->audit_spool, "%s/brokerfs", a->spool_dir) < 0)
		cfg->audit_spool = NULL;
	cfg->audit_spool_max = a->spool_max_bytes;
	if (a->on_full != POLICY_FULL_DROP_NEW)
		log_warn("policy: audit on_full %s: brokerfs never holds file "
			 "I/O for the audit spool; new file events are dropped "
			 "(and counted) when it is full",
			 a->on_full == POLICY_FULL_BLOCK ? "block"
							 : "drop_oldest");
	for (i = 0; i < a->nsampling; i++) {
		char **slot = strcmp(a->sampling[i].op, "read") == 0
				  ? &cfg->audit_read
			      : strcmp(a->sampling[i].op, "write") == 0
				  ? &cfg->audit_write
				  : NULL;

		if (!slot || *slot)
			continue;
		snprintf(mode, sizeof(mode), "sample:%u",
			 a->sampling[i].one_in);
		*slot = strdup(mode);
	}
}

struct broker_policy *broker_policy_load(struct broker_config *cfg)
{
	struct policy_problems probs = {0};
	struct broker_policy *bp;
	struct policy *pol;

	pol = policy_load(cfg->policy_dir, NULL, &probs);
	if (!pol) {
		if (probs.n)
			print_problems(&probs, NULL);
		else
			fprintf(stderr, "brokerfs: policy %s: %s\n",
				cfg->policy_dir, strerror(errno));
		policy_problems_free(&probs);
		return NULL;
	}
	policy_problems_free(&probs);
	bp = calloc(1, sizeof(*bp));
	if (!bp || !(bp->dir = strdup(cfg->policy_dir)) ||
	    !(bp->tokens = tokens_string(pol))) {
		fprintf(stderr, "brokerfs: out of memory\n");
		if (bp)
			free(bp->dir);
		free(bp);
		policy_unref(pol);
		return NULL;
	}
	/* The command line (or -c file) wins over the tokens section. */
	if (!cfg->token_pubkey && pol->tokens.public_key)
		cfg->token_pubkey = strdup(pol->tokens.public_key);
	if (!cfg->audience && pol->tokens.audience)
		cfg->audience = strdup(pol->tokens.audience);
	if (!cfg->audience)
		cfg->audience = strdup(BROKER_DEFAULT_AUDIENCE);
	policy_audit_settings(cfg, &pol->audit);
	if (broker_dlp_load(pol)) {
		fprintf(stderr,
			"brokerfs: policy %s: the dlp rules do not "
			"compile (above)\n",
			cfg->policy_dir);
		free(bp->tokens);
		free(bp->dir);
		free(bp);
		policy_unref(pol);
		return NULL;
	}
	bp->cfg = cfg;
	pthread_mutex_init(&bp->lock, NULL);
	policy_handle_init(&bp->h, pol);
	return bp;
}

/* ---- instances: a configuration view per filesystem entry ----------------
 */

/*
 * A directory name for the entry: patterns hold * ? [ and an entry name
 * may start with a dot.  Anything changed gets a hash of the original, so
 * "a*" and "a?" still get different directories.
 */
static void sanitise(const char *name, char *out, size_t len)
{
	uint32_t h = 2166136261u;
	size_t i, n = 0;
	int changed = 0;
	char c;

	for (i = 0; name[i] && n + 10 < len; i++) {
		c = name[i];
		h = (h ^ (unsigned char)c) * 16777619u;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '_' ||
		      (c == '.' && i))) {
			c = '_';
			changed = 1;
		}
		out[n++] = c;
	}
	changed |= name[i] != '\0' || !n;
	out[n] = '\0';
	if (changed)
		snprintf(out + n, len - n, ".%08x", h);
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

static unsigned mib(uint64_t bytes, unsigned dflt)
{
	if (!bytes)
		return dflt;
	bytes >>= 20;
	return bytes ? (bytes > 65536 ? 65536u : (unsigned)bytes) : 1u;
}

static char *settings_string(const struct policy_fs *fs)
{
	const struct policy_s3 *s = &fs->s3;
	char *out;
	int n;

#define S(x) ((x) ? (x) : "")
	if (fs->backend == POLICY_BACKEND_LOCAL)
		n = asprintf(&out, "local|%s", S(fs->local_root));
	else
		n = asprintf(
		    &out,
		    "s3|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%llu|%llu|"
		    "%u|%llu|%d",
		    S(s->endpoint), S(s->region), S(s->bucket), S(s->prefix),
		    S(s->addressing), S(s->ca_file), S(s->credentials_file),
		    S(s->sts_endpoint), S(s->role_arn), S(s->proxy),
		    (unsigned long long)s->memory_bytes,
		    (unsigned long long)s->part_bytes, s->upload_threads,
		    (unsigned long long)s->retry_budget_ms, s->rgw_quirks);
#undef S
	return n < 0 ? NULL : out;
}

static void inst_free(struct broker_inst *in)
{
	struct broker_s3_config *c;

	if (!in)
		return;
	c = &in->cfg.s3;
	free(in->name);
	free(in->settings);
	free(in->cfg.backend);
	free(in->cfg.root);
	free(in->cfg.staging_dir);
	free(c->endpoint);
	free(c->region);
	free(c->bucket);
	free(c->prefix);
	free(c->addressing);
	free(c->ca_file);
	free(c->credentials);
	free(c->sts_endpoint);
	free(c->role_arn);
	free(c->proxy);
	pthread_mutex_destroy(&in->lock);
	free(in);
}

/* The broker's configuration with the entry's backend settings. */
static struct broker_inst *inst_new(const struct broker_config *base,
				    const struct policy_fs *fs)
{
	const struct policy_s3 *s = &fs->s3;
	struct broker_inst *in = calloc(1, sizeof(*in));
	struct broker_s3_config *c;
	char dir[200];
	int bad;

	if (!in)
		return NULL;
	pthread_mutex_init(&in->lock, NULL);
	in->cfg = *base;
	c = &in->cfg.s3;
	memset(c, 0, sizeof(*c));
	in->cfg.root = NULL;
	sanitise(fs->name, dir, sizeof(dir));
	in->name = strdup(fs->name);
	in->settings = settings_string(fs);
	in->cfg.backend =
	    strdup(fs->backend == POLICY_BACKEND_S3 ? "s3" : "local");
	bad =
	    asprintf(&in->cfg.staging_dir, "%s/%s", base->staging_dir, dir) < 0;
	if (bad)
		in->cfg.staging_dir = NULL;
	if (fs->backend == POLICY_BACKEND_LOCAL) {
		in->cfg.root = strdup(fs->local_root);
		bad |= !in->cfg.root;
	} else {
		c->endpoint = dup_or_null(s->endpoint);
		c->region = dup_or_null(s->region);
		c->bucket = dup_or_null(s->bucket);
		c->prefix = dup_or_null(s->prefix);
		c->addressing = dup_or_null(s->addressing);
		c->ca_file = dup_or_null(s->ca_file);
		c->credentials = dup_or_null(s->credentials_file);
		c->sts_endpoint = dup_or_null(s->sts_endpoint);
		c->role_arn = dup_or_null(s->role_arn);
		c->proxy = dup_or_null(s->proxy);
		c->memory_mib = mib(s->memory_bytes, base->s3.memory_mib);
		c->part_mib = mib(s->part_bytes, base->s3.part_mib);
		c->upload_threads = s->upload_threads ? s->upload_threads
						      : base->s3.upload_threads;
		c->retry_budget_ms = s->retry_budget_ms
					 ? (s->retry_budget_ms > 3600000
						? 3600000u
						: (unsigned)s->retry_budget_ms)
					 : base->s3.retry_budget_ms;
		c->rgw_quirks = s->rgw_quirks;
	}
	in->ops = backend_find(in->cfg.backend);
	if (bad || !in->name || !in->settings || !in->cfg.backend || !in->ops) {
		inst_free(in);
		return NULL;
	}
	return in;
}

/* The running (or to be started) instance of entry fs. */
static struct broker_inst *inst_get(struct broker_policy *bp,
				    const struct policy_fs *fs)
{
	struct broker_inst *in;

	pthread_mutex_lock(&bp->lock);
	for (in = bp->insts; in; in = in->next)
		if (!strcmp(in->name, fs->name))
			break;
	if (!in && (in = inst_new(bp->cfg, fs))) {
		in->next = bp->insts;
		bp->insts = in;
	}
	pthread_mutex_unlock(&bp->lock);
	return in;
}

/* Start in unless running; blocking.  0 or -errno (logged). */
static int inst_start(struct broker_inst *in)
{
	int rc = 0;

	pthread_mutex_lock(&in->lock);
	if (in->b || in->stopped)
		goto out;
	if (mkdir(in->cfg.staging_dir, 0700) < 0 && errno != EEXIST &&
	    strcmp(in->cfg.backend, "s3") == 0) {
		rc = -errno;
		log_err("filesystem entry '%s': staging directory %s: %s",
			in->name, in->cfg.staging_dir, strerror(errno));
		goto out;
	}
	rc = in->ops->start(&in->cfg, &in->b);
	if (rc) {
		in->b = NULL;
		log_err("filesystem entry '%s': %s backend did not start: %s",
			in->name, in->ops->name, strerror(-rc));
	} else {
		log_info("filesystem entry '%s': %s backend started", in->name,
			 in->ops->name);
	}
out:
	pthread_mutex_unlock(&in->lock);
	return rc;
}

int broker_policy_check(struct broker_policy *bp)
{
	struct policy *p = policy_handle_get(&bp->h);
	struct broker_inst *in;
	size_t i;
	int rc = 0;

	for (i = 0; i < p->nfs; i++) {
		in = inst_new(bp->cfg, &p->fs[i]);
		if (!in || in->ops->check(&in->cfg)) {
			fprintf(stderr,
				"%s:%u:%u: filesystem '%s': the %s "
				"backend's settings do not work "
				"(above)\n",
				p->fs[i].src.file, p->fs[i].src.line,
				p->fs[i].src.col, p->fs[i].name,
				in ? in->ops->name : "?");
			rc = -1;
		}
		inst_free(in);
	}
	policy_unref(p);
	return rc;
}

int broker_policy_start(struct broker_policy *bp)
{
	struct policy *p = policy_handle_get(&bp->h);
	struct broker_inst *in;
	size_t i;

	if (!strcmp(bp->cfg->staging_dir, "") ||
	    (mkdir(bp->cfg->staging_dir, 0700) < 0 && errno != EEXIST))
		log_warn("staging directory %s: %m", bp->cfg->staging_dir);
	for (i = 0; i < p->nfs; i++) {
		if (p->fs[i].backend != POLICY_BACKEND_S3)
			continue;
		in = inst_get(bp, &p->fs[i]);
		if (in)
			inst_start(in); /* a failure is retried at first use */
	}
	log_info("policy %s: %zu filesystem entries", bp->dir, p->nfs);
	policy_unref(p);
	return 0;
}

/* ---- sessions ------------------------------------------------------------
 */

static int refuse(char *why, size_t len, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int refuse(char *why, size_t len, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, len, fmt, ap);
	va_end(ap);
	return rc;
}

int broker_policy_session(struct broker_policy *bp,
			  const struct token_claims *c,
			  struct broker_session_target *t, char *why,
			  size_t len)
{
	struct policy *p = policy_handle_get(&bp->h);
	const char *intent = token_intent_name(c->intent);
	const struct policy_fs *fs;
	struct broker_inst *in;
	uint64_t ttl;
	int rc;

	fs = policy_fs_find(p, c->filesystem_id);
	if (!fs) {
		rc = refuse(why, len, -EACCES, "filesystem_id not in policy");
		goto out;
	}
	if (!policy_fs_allows_intent(fs, intent)) {
		rc = refuse(why, len, -EACCES,
			    "intent '%s' not allowed by policy", intent);
		goto out;
	}
	ttl = fs->ttl_ms ? fs->ttl_ms / 1000 : p->tokens.max_ttl_ms / 1000;
	if (ttl && c->iat > 0 && c->exp > c->iat &&
	    (uint64_t)(c->exp - c->iat) > ttl + 60) {
		rc = refuse(why, len, -EACCES,
			    "handle lifetime over the policy's %llu s",
			    (unsigned long long)ttl);
		goto out;
	}
	in = inst_get(bp, fs);
	if (!in) {
		rc = refuse(why, len, -ENOMEM, "out of memory");
		goto out;
	}
	rc = inst_start(in);
	if (rc) {
		refuse(why, len, rc, "backend of filesystem entry unavailable");
		goto out;
	}
	t->ops = in->ops;
	t->backend = in->b;
	t->quota_bytes = fs->quota_bytes;
	t->quota_inodes = fs->quota_inodes;
	t->idle_timeout_ms = fs->idle_timeout_ms;
	t->max_lifetime_ms = fs->max_lifetime_ms;
	rc = 0;
out:
	policy_unref(p);
	return rc;
}

int broker_policy_quota(struct broker_policy *bp, const char *fsid,
			uint64_t *bytes, uint64_t *inodes)
{
	struct policy *p = policy_handle_get(&bp->h);
	const struct policy_fs *fs = policy_fs_find(p, fsid);

	*bytes = fs ? fs->quota_bytes : 0;
	*inodes = fs ? fs->quota_inodes : 0;
	policy_unref(p);
	return fs ? 0 : -ENOENT;
}

/* ---- reload --------------------------------------------------------------
 */

/* After a reload: say what of the new policy waits for a restart. */
static void reload_report(struct broker_policy *bp, const struct policy *p)
{
	struct broker_inst *in;
	char *s;
	size_t i;

	pthread_mutex_lock(&bp->lock);
	for (in = bp->insts; in; in = in->next) {
		for (i = 0; i < p->nfs; i++)
			if (!strcmp(p->fs[i].name, in->name))
				break;
		if (i == p->nfs) {
			log_warn("policy: filesystem entry '%s' removed; new "
				 "sessions are refused, open ones continue",
				 in->name);
			continue;
		}
		s = settings_string(&p->fs[i]);
		if (s && strcmp(s, in->settings) && in->b)
			log_warn("policy: backend settings of filesystem entry "
				 "'%s' changed; they take effect at restart",
				 in->name);
		free(s);
	}
	pthread_mutex_unlock(&bp->lock);
	s = tokens_string(p);
	if (s && strcmp(s, bp->tokens))
		log_warn("policy: token settings changed; they take effect at "
			 "restart");
	free(s);
}

int broker_policy_reload(struct broker_policy *bp)
{
	struct policy_problems probs = {0};
	struct policy *p;
	int rc;

	rc = policy_handle_reload(&bp->h, bp->dir, NULL, &probs);
	if (rc) {
		print_problems(&probs, "policy reload: ");
		if (!probs.n)
			log_err("policy reload: %s: %s", bp->dir,
				strerror(-rc));
		log_err("policy reload refused, keeping the old policy");
		policy_problems_free(&probs);
		return rc;
	}
	policy_problems_free(&probs);
	p = policy_handle_get(&bp->h);
	reload_report(bp, p);
	broker_dlp_load(p); /* a failure keeps the rules in force (logged) */
	log_info("policy reloaded from %s: %zu filesystem entries", bp->dir,
		 p->nfs);
	policy_unref(p);
	return 0;
}

/* ---- shutdown ------------------------------------------------------------
 */

int broker_policy_stop(struct broker_policy *bp, unsigned flush_ms)
{
	struct broker_inst *in;
	struct timespec t0, t;
	uint64_t spent;
	int left = 0, r;

	/* One flush window for all instances, not one each. */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	pthread_mutex_lock(&bp->lock);
	for (in = bp->insts; in; in = in->next) {
		pthread_mutex_lock(&in->lock);
		if (in->b) {
			clock_gettime(CLOCK_MONOTONIC, &t);
			spent = (uint64_t)(t.tv_sec - t0.tv_sec) * 1000 +
				(uint64_t)((t.tv_nsec - t0.tv_nsec) / 1000000);
			r = in->ops->stop(
			    in->b,
			    spent >= flush_ms ? 0 : flush_ms - (unsigned)spent);
			if (r > 0)
				left += r;
			else if (r < 0)
				log_warn("filesystem entry '%s': backend stop: "
					 "%s",
					 in->name, strerror(-r));
			in->b = NULL;
		}
		in->stopped = 1;
		pthread_mutex_unlock(&in->lock);
	}
	pthread_mutex_unlock(&bp->lock);
	return left;
}

void broker_policy_free(struct broker_policy *bp)
{
	struct broker_inst *in, *next;

	if (!bp)
		return;
	for (in = bp->insts; in; in = next) {
		next = in->next;
		inst_free(in);
	}
	broker_dlp_cleanup();
	policy_handle_cleanup(&bp->h);
	pthread_mutex_destroy(&bp->lock);
	free(bp->tokens);
	free(bp->dir);
	free(bp);
}
