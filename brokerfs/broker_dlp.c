/*
 * broker_dlp.c - brokerfs' DLP scanner: the policy's dlp section compiled
 * into a dlp engine (dlp/dlp.h) per policy generation, and the scan the
 * backends run before data leaves them (dlp_scan.h).
 *
 * A generation holds one engine and the mode; it is reference counted:
 * a scan takes the generation in force when it starts and drops it when
 * done, and a reload publishes a new one under gen_lock, so the old
 * engine is freed by whichever of the reload or the last scan using it
 * comes last.  No rules: no generation, and the backends read nothing.
 *
 * The policy's detector names are the policy format's (occfs-policy(5));
 * api_token stands for the library's five API-token detectors, compiled
 * as rules "<name>#1" to "<name>#5" and reported as <name>.
 *
 * Every reported finding is also kept in memory, in a ring per
 * filesystem_id (RING_LEN findings, RING_FSIDS filesystems, the least
 * recently reported one dropped first), so that a session can ask for
 * its own recent findings (DLP_FINDINGS) without anyone reading the
 * audit log, which holds every session's events.  The rings are lost at
 * restart; the audit log is the durable record.
 */
#include "broker_dlp.h"
#include "broker_audit.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "dlp.h"
#include "dlp_scan.h"
#include "log.h"
#include "policy.h"
#include "proto.h"

#define SCAN_CHUNK (1u << 20)
#define RING_LEN 256u	/* findings kept per filesystem_id */
#define RING_FSIDS 256u /* filesystem_ids with a ring */
#define RING_PATH 1024u /* longer paths are kept cut, ending in "..." */
#define RING_FSID 256u	/* as token_claims.filesystem_id */
#define RING_QUAR 80u	/* quarantine entry id */

struct ring_rec {
	int64_t time;
	uint64_t offset;
	enum dlp_severity severity;
	enum dlp_action action;
	bool has_quar;
	char rule[DLP_NAME_MAX];
	char excerpt[DLP_EXCERPT_MAX];
	char quar[RING_QUAR];
	char path[RING_PATH];
};

struct ring {
	struct ring *next; /* ring_lock; most recently reported first */
	char fsid[RING_FSID];
	unsigned head, n; /* ring_lock; next slot to write, slots used */
	struct ring_rec rec[RING_LEN];
};

static pthread_mutex_t ring_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ring *rings; /* ring_lock */
static unsigned nrings;	   /* ring_lock */

struct bdlp_gen {
	unsigned refs; /* gen_lock */
	struct dlp_engine *e;
	bool visible;
};

static pthread_mutex_t gen_lock = PTHREAD_MUTEX_INITIALIZER;
static struct bdlp_gen *gen_cur; /* gen_lock; NULL: no rules */

static const char *const api_tokens[] = {"github_token", "slack_token",
					 "google_api_key", "stripe_key",
					 "generic_api_key"};

static void gen_put(struct bdlp_gen *g)
{
	bool last;

	if (!g)
		return;
	pthread_mutex_lock(&gen_lock);
	last = --g->refs == 0;
	pthread_mutex_unlock(&gen_lock);
	if (last) {
		dlp_engine_free(g->e);
		free(g);
	}
}

static struct bdlp_gen *gen_get(void)
{
	struct bdlp_gen *g;

	pthread_mutex_lock(&gen_lock);
	g = gen_cur;
	if (g)
		g->refs++;
	pthread_mutex_unlock(&gen_lock);
	return g;
}

static const struct dlp_scan_ops bdlp_ops;

/* ---- compiling the policy's rules ---------------------------------------
 */

static enum dlp_action map_action(enum policy_action a)
{
	return a == POLICY_BLOCK   ? DLP_BLOCK
	       : a == POLICY_AUDIT ? DLP_AUDIT
				   : DLP_ALLOW;
}

static enum dlp_severity map_severity(enum policy_severity s)
{
	switch (s) {
	case POLICY_SEV_CRITICAL:
		return DLP_SEV_CRITICAL;
	case POLICY_SEV_HIGH:
		return DLP_SEV_HIGH;
	case POLICY_SEV_MEDIUM:
		return DLP_SEV_MEDIUM;
	default:
		return DLP_SEV_LOW; /* info and low */
	}
}

/* One policy rule into specs (one, or five for api_token). */
static size_t rule_specs(const struct policy_dlp_rule *r,
			 struct dlp_rule_spec *o, char (*names)[DLP_NAME_MAX],
			 const char *const **argvs)
{
	struct dlp_rule_spec b = {.name = r->name,
				  .severity = map_severity(r->severity),
				  .action = map_action(r->action),
				  .min_size = r->min_size,
				  .max_size = r->max_size,
				  .globs = r->files};
	size_t i, n = 0;

	while (r->files && r->files[b.nglobs])
		b.nglobs++;
	if (r->kind == POLICY_DLP_REGEX) {
		b.kind = DLP_KIND_REGEX;
		b.pattern = r->regex;
	} else if (r->kind == POLICY_DLP_HOOK) {
		b.kind = DLP_KIND_HOOK;
		b.hook.argv = r->hook_program ? *argvs : NULL;
		b.hook.socket = r->hook_socket;
		b.hook.timeout_ms = r->hook_timeout_ms > 600000
					? 600000
					: (int)r->hook_timeout_ms;
		b.hook.on_error =
		    r->on_error == POLICY_BLOCK ? DLP_BLOCK : DLP_ALLOW;
	} else if (!strcmp(r->builtin, "api_token")) {
		b.kind = DLP_KIND_BUILTIN;
		for (i = 0; i < 5; i++) {
			o[n] = b;
			snprintf(names[n], DLP_NAME_MAX, "%.55s#%zu", r->name,
				 i + 1);
			o[n].name = names[n];
			o[n].detector = api_tokens[i];
			n++;
		}
		return n;
	} else {
		b.kind = DLP_KIND_BUILTIN;
		b.detector = strcmp(r->builtin, "pem_private_key")
				 ? r->builtin
				 : "private_key";
	}
	o[0] = b;
	return 1;
}

int broker_dlp_load(const struct policy *pol)
{
	static bool installed;
	const struct policy_dlp *d = &pol->dlp;
	struct dlp_rule_spec *specs = NULL;
	char(*names)[DLP_NAME_MAX] = NULL;
	const char **argv = NULL;
	struct bdlp_gen *g = NULL, *old;
	char err[512] = "";
	size_t i, n = 0;
	int rc = 0;

	if (d->nrules) {
		specs = calloc(d->nrules * 5, sizeof(*specs));
		names = calloc(d->nrules * 5, sizeof(*names));
		argv = calloc(d->nrules * 2, sizeof(*argv));
		g = calloc(1, sizeof(*g));
		if (!specs || !names || !argv || !g) {
			rc = -ENOMEM;
			goto out;
		}
		for (i = 0; i < d->nrules; i++) {
			const char *const *av = argv + 2 * i;

			argv[2 * i] = d->rules[i].hook_program;
			n +=
			    rule_specs(&d->rules[i], specs + n, names + n, &av);
		}
		g->e = dlp_engine_new(specs, n, err, sizeof(err));
		if (!g->e) {
			rc = errno ? -errno : -EINVAL;
			log_err(
			    "dlp: rules not compiled, the previous rule set "
			    "stays in force: %s",
			    err);
			goto out;
		}
		g->refs = 1;
		g->visible = d->mode == POLICY_DLP_VISIBLE;
	}
	pthread_mutex_lock(&gen_lock);
	old = gen_cur;
	gen_cur = g;
	pthread_mutex_unlock(&gen_lock);
	gen_put(old);
	if (g)
		log_info("dlp: %zu rules in force, mode %s", d->nrules,
			 g->visible ? "visible" : "strict");
	g = NULL;
	if (!installed) {
		/* Before the loop starts: later reloads only swap gen_cur. */
		dlp_scan_install(&bdlp_ops);
		installed = true;
	}
out:
	if (g && !g->e)
		free(g);
	free(specs);
	free(names);
	free(argv);
	return rc;
}

void broker_dlp_cleanup(void)
{
	broker_dlp_findings_clear();
	struct bdlp_gen *g;

	pthread_mutex_lock(&gen_lock);
	g = gen_cur;
	gen_cur = NULL;
	pthread_mutex_unlock(&gen_lock);
	gen_put(g);
}

/* ---- recent findings per filesystem_id ----------------------------------
 */

/*
 * fsid's ring.  With create set it moves to the front of the list, and
 * is created if absent (reusing the least recently reported ring once
 * RING_FSIDS exist).  NULL when absent or out of memory.  Under ring_lock.
 */
static struct ring *ring_find(const char *fsid, bool create)
{
	struct ring **pp, *r, **last = NULL;

	for (pp = &rings; (r = *pp); pp = &r->next) {
		if (!strcmp(r->fsid, fsid)) {
			if (!create)
				return r; /* a query is not a report */
			*pp = r->next;
			goto front;
		}
		last = pp;
	}
	if (!create)
		return NULL;
	if (nrings >= RING_FSIDS && last) {
		r = *last; /* the least recently reported: reuse it */
		*last = NULL;
		memset(r, 0, sizeof(*r));
	} else {
		r = calloc(1, sizeof(*r));
		if (!r)
			return NULL;
		nrings++;
	}
	snprintf(r->fsid, sizeof(r->fsid), "%s", fsid);
front:
	r->next = rings;
	rings = r;
	return r;
}

static void ring_add(const char *fsid, const char *path, const char *rule,
		     const struct dlp_finding *f, const char *quarantine)
{
	struct ring_rec *x;
	struct ring *r;
	size_t plen = strlen(path);

	pthread_mutex_lock(&ring_lock);
	r = ring_find(fsid, true);
	if (!r) {
		pthread_mutex_unlock(&ring_lock);
		log_err("dlp: out of memory keeping a finding on fsid=%s",
			fsid);
		return;
	}
	x = &r->rec[r->head];
	memset(x, 0, sizeof(*x));
	x->time = (int64_t)time(NULL);
	x->offset = f->offset;
	x->severity = f->severity;
	x->action = f->action;
	x->has_quar = quarantine != NULL;
	snprintf(x->rule, sizeof(x->rule), "%s", rule);
	snprintf(x->excerpt, sizeof(x->excerpt), "%s", f->excerpt);
	snprintf(x->quar, sizeof(x->quar), "%s", quarantine ? quarantine : "");
	if (plen < sizeof(x->path))
		memcpy(x->path, path, plen + 1);
	else
		snprintf(x->path, sizeof(x->path), "%.*s...",
			 (int)sizeof(x->path) - 4, path);
	r->head = (r->head + 1) % RING_LEN;
	if (r->n < RING_LEN)
		r->n++;
	pthread_mutex_unlock(&ring_lock);
}

/* A JSON string of s; bytes of s that are not UTF-8 become '?'. */
static json_t *jstr(const char *s)
{
	json_t *j = json_string(s);
	char *c;
	size_t i;

	if (j)
		return j;
	c = strdup(s);
	if (!c)
		return NULL;
	for (i = 0; c[i]; i++)
		if ((unsigned char)c[i] >= 0x80 || (unsigned char)c[i] < 0x20)
			c[i] = '?';
	j = json_string(c);
	free(c);
	return j;
}

static json_t *rec_json(const struct ring_rec *x)
{
	return json_pack(
	    "{sI so so so so sI so so}", "time", (json_int_t)x->time, "rule",
	    jstr(x->rule), "severity", jstr(dlp_severity_name(x->severity)),
	    "verdict", jstr(dlp_action_name(x->action)), "path", jstr(x->path),
	    "offset",
	    (json_int_t)(x->offset > INT64_MAX ? INT64_MAX : x->offset),
	    "excerpt", jstr(x->excerpt), "quarantine",
	    x->has_quar ? jstr(x->quar) : json_null());
}

/* Append x's JSON to out unless that would pass the reply's limit. */
static int rec_append(const struct ring_rec *x, struct buf *out, bool first,
		      bool *full)
{
	json_t *j = rec_json(x);
	char *t = j ? json_dumps(j, JSON_COMPACT) : NULL;
	size_t n = t ? strlen(t) : 0;
	int rc = 0;

	if (!t) {
		rc = -ENOMEM;
		goto out;
	}
	/* Room for this entry, its comma and the closing bracket. */
	if (out->len + n + 2 > PROTO_MAX_FINDINGS_JSON) {
		*full = true;
		goto out;
	}
	if (!first)
		rc = buf_append(out, ",", 1);
	if (!rc)
		rc = buf_append(out, t, n);
out:
	free(t);
	json_decref(j);
	return rc;
}

int broker_dlp_findings(const char *fsid, uint64_t max, struct buf *out)
{
	bool full = false;
	struct ring *r;
	size_t start = out->len;
	unsigned i;
	int rc;

	if (max > PROTO_MAX_FINDINGS)
		max = PROTO_MAX_FINDINGS;
	rc = buf_append(out, "[", 1);
	if (rc)
		goto out;
	pthread_mutex_lock(&ring_lock);
	r = ring_find(fsid, false);
	for (i = 0; r && i < r->n && i < max && !full && !rc; i++) {
		unsigned k = (r->head + RING_LEN - 1 - i) % RING_LEN;

		rc = rec_append(&r->rec[k], out, i == 0, &full);
	}
	pthread_mutex_unlock(&ring_lock);
	if (!rc)
		rc = buf_append(out, "]", 1);
out:
	if (rc) {
		out->len = start;
		return rc == -E2BIG ? -ENOMEM : rc;
	}
	return 0;
}

void broker_dlp_findings_clear(void)
{
	struct ring *r;

	pthread_mutex_lock(&ring_lock);
	while ((r = rings)) {
		rings = r->next;
		free(r);
	}
	nrings = 0;
	pthread_mutex_unlock(&ring_lock);
}

/* ---- scanning ---------------------------------------------------------------
 */

static bool bdlp_active(bool *visible)
{
	bool on;

	pthread_mutex_lock(&gen_lock);
	on = gen_cur != NULL;
	*visible = on && gen_cur->visible;
	pthread_mutex_unlock(&gen_lock);
	return on;
}

/* "api#3" was compiled from policy rule "api". */
static void policy_rule_name(const char *rule, char *out, size_t len)
{
	const char *h = strrchr(rule, '#');

	if (h && h[1] >= '1' && h[1] <= '5' && !h[2])
		snprintf(out, len, "%.*s", (int)(h - rule), rule);
	else
		snprintf(out, len, "%s", rule);
}

void broker_dlp_report(const char *fsid, const char *path,
		       const struct dlp_finding *f, const char *quarantine)
{
	char rule[DLP_NAME_MAX], q[80] = "";
	int rc;

	policy_rule_name(f->rule, rule, sizeof(rule));
	if (quarantine)
		snprintf(q, sizeof(q), " quarantine=%s",
			 quarantine[0] ? quarantine : "(failed)");
	log_warn("dlp: %s: rule %s (%s, %s) on fsid=%s path=%s offset=%llu "
		 "excerpt='%s'%s%s%s%s",
		 f->action == DLP_BLOCK ? "blocked" : "finding", rule,
		 dlp_severity_name(f->severity), dlp_action_name(f->action),
		 fsid, path, (unsigned long long)f->offset, f->excerpt,
		 f->reason[0] ? " reason='" : "", f->reason,
		 f->reason[0] ? "'" : "", q);
	ring_add(fsid, path, rule, f, quarantine);
	/* OCSF severity_id: low 2 .. critical 5. */
	rc =
	    broker_audit_finding(fsid, path, rule, (int)f->severity + 2,
				 f->action == DLP_BLOCK, f->offset, quarantine);
	if (rc)
		log_err("dlp: the finding on fsid=%s path=%s could not be "
			"audited: %s",
			fsid, path, strerror(-rc));
}

/* Feed fd's first size bytes to s. */
static int feed(struct dlp_stream *s, int fd, uint64_t size)
{
	uint64_t off = 0;
	char *buf = malloc(SCAN_CHUNK);
	ssize_t n;
	int rc = 0;

	if (!buf)
		return -ENOMEM;
	while (off < size) {
		size_t want =
		    size - off < SCAN_CHUNK ? (size_t)(size - off) : SCAN_CHUNK;

		n = pread(fd, buf, want, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = n < 0 ? -errno : 0; /* shorter file: end */
			break;
		}
		rc = dlp_stream_write(s, buf, (size_t)n);
		if (rc)
			break;
		off += (uint64_t)n;
	}
	free(buf);
	return rc;
}

static void decide(const struct dlp_verdict *v, const char *fsid,
		   const char *path, struct dlp_scan_result *r)
{
	const struct dlp_finding *dec = NULL;
	size_t i;

	for (i = 0; i < v->nfindings; i++) {
		const struct dlp_finding *f = &v->findings[i];

		if (f->action == DLP_BLOCK && !dec)
			dec = f; /* reported once quarantined */
		else if (f->action >= DLP_AUDIT)
			broker_dlp_report(fsid, path, f, NULL);
	}
	r->action = v->action == DLP_BLOCK   ? DLP_SCAN_BLOCK
		    : v->action == DLP_AUDIT ? DLP_SCAN_AUDIT
					     : DLP_SCAN_ALLOW;
	if (!dec && v->action == DLP_AUDIT) {
		for (i = 0; i < v->nfindings && !dec; i++)
			if (v->findings[i].action == DLP_AUDIT)
				dec = &v->findings[i];
	}
	if (!dec) {
		if (r->action == DLP_SCAN_BLOCK)
			snprintf(r->rule, sizeof(r->rule), "(scan error)");
		return;
	}
	policy_rule_name(dec->rule, r->rule, sizeof(r->rule));
	r->severity = (int)dec->severity;
	r->kind = (int)dec->kind;
	r->offset = dec->offset;
	snprintf(r->excerpt, sizeof(r->excerpt), "%s", dec->excerpt);
	snprintf(r->reason, sizeof(r->reason), "%s", dec->reason);
	snprintf(r->detail, sizeof(r->detail), "%s at offset %llu: %s%s%s",
		 dlp_severity_name(dec->severity),
		 (unsigned long long)dec->offset, dec->excerpt,
		 dec->reason[0] ? "; " : "", dec->reason);
}

static int bdlp_scan_fd(const char *fsid, const char *path, int fd,
			uint64_t size, struct dlp_scan_result *r)
{
	struct bdlp_gen *g = gen_get();
	struct dlp_verdict v = {0};
	struct dlp_stream *s = NULL;
	int rc = 0;

	if (!g)
		return 0; /* rules removed since the caller asked */
	s = dlp_stream_open(g->e, path, size > INT64_MAX ? -1 : (int64_t)size);
	if (!s) {
		rc = -errno;
		v.action = DLP_BLOCK;
		goto out;
	}
	rc = dlp_stream_set_source(s, fd, NULL);
	if (!rc)
		rc = feed(s, fd, size);
	if (rc) {
		v.action = DLP_BLOCK; /* fail closed */
		goto out;
	}
	rc = dlp_stream_finish(s, &v);
out:
	if (rc)
		log_err("dlp: scan of fsid=%s path=%s failed: %s; blocked",
			fsid, path, strerror(-rc));
	decide(&v, fsid, path, r);
	if (rc)
		snprintf(r->detail, sizeof(r->detail), "scan failed: %s",
			 strerror(-rc));
	dlp_verdict_cleanup(&v);
	dlp_stream_free(s);
	gen_put(g);
	return rc;
}

static void bdlp_blocked(const char *fsid, const char *path,
			 const struct dlp_scan_result *r)
{
	struct dlp_finding f = {.action = DLP_BLOCK,
				.severity = (enum dlp_severity)r->severity,
				.kind = (enum dlp_kind)r->kind,
				.offset = r->offset};

	snprintf(f.rule, sizeof(f.rule), "%s", r->rule);
	snprintf(f.excerpt, sizeof(f.excerpt), "%s", r->excerpt);
	snprintf(f.reason, sizeof(f.reason), "%s", r->reason);
	broker_dlp_report(fsid, path, &f, r->qid);
}

static const struct dlp_scan_ops bdlp_ops = {
    .active = bdlp_active,
    .scan_fd = bdlp_scan_fd,
    .blocked = bdlp_blocked,
};
