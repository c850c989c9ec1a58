/*
 * dlp_engine.c - compile a DLP rule set into an immutable engine.
 *
 * Pattern rules (built-in detectors and custom regexes) go into one
 * streaming Vectorscan database, so a file is scanned once whatever the
 * number of rules; the card detector and custom patterns made only of
 * character classes go to the fast paths instead (dlp_fast.c), unless the
 * engine is built plain (the reference the fast paths are tested against).
 * Hook rules are kept aside and run at the end of a file.
 */
#include <errno.h>
#include <fnmatch.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dlp.h"
#include "dlp_int.h"

static const char *const sev_names[] = {"low", "medium", "high", "critical"};
static const char *const act_names[] = {"allow", "audit", "block"};

const char *dlp_severity_name(enum dlp_severity s)
{
	return (unsigned)s < 4 ? sev_names[s] : "?";
}

const char *dlp_action_name(enum dlp_action a)
{
	return (unsigned)a < 3 ? act_names[a] : "?";
}

int dlp_severity_parse(const char *s, enum dlp_severity *out)
{
	for (int i = 0; i < 4; i++)
		if (s && strcmp(s, sev_names[i]) == 0) {
			*out = (enum dlp_severity)i;
			return 0;
		}
	return -EINVAL;
}

int dlp_action_parse(const char *s, enum dlp_action *out)
{
	for (int i = 0; i < 3; i++)
		if (s && strcmp(s, act_names[i]) == 0) {
			*out = (enum dlp_action)i;
			return 0;
		}
	return -EINVAL;
}

__attribute__((format(printf, 3, 4))) static int
seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

static void strv_free(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

/* Copy a NULL-terminated (n == SIZE_MAX) or counted string vector. */
static char **strv_dup(const char *const *v, size_t n)
{
	size_t k = 0;
	char **out;

	while (n == SIZE_MAX ? v[k] != NULL : k < n)
		k++;
	out = calloc(k + 1, sizeof(*out));
	if (!out)
		return NULL;
	for (size_t i = 0; i < k; i++) {
		out[i] = strdup(v[i] ? v[i] : "");
		if (!out[i]) {
			strv_free(out);
			return NULL;
		}
	}
	return out;
}

static int copy_hook(struct dlp_rule *r, const struct dlp_hook_spec *h,
		     char *err, size_t errlen)
{
	if (!!(h->argv && h->argv[0]) == !!h->socket)
		return seterr(err, errlen,
			      "rule %s: a hook needs a program or a socket",
			      r->name);
	if (h->argv && h->argv[0][0] != '/')
		return seterr(err, errlen,
			      "rule %s: hook program must be an absolute path",
			      r->name);
	if (h->socket && (h->socket[0] == '\0' || strlen(h->socket) >= 108))
		return seterr(err, errlen, "rule %s: bad hook socket path",
			      r->name);
	if (h->on_error != DLP_ALLOW && h->on_error != DLP_BLOCK)
		return seterr(err, errlen,
			      "rule %s: hook on_error must be allow or block",
			      r->name);
	if (h->timeout_ms < 0)
		return seterr(err, errlen, "rule %s: negative hook timeout",
			      r->name);
	r->timeout_ms = h->timeout_ms ? h->timeout_ms : 5000;
	r->on_error = h->on_error;
	if (h->argv && !(r->argv = strv_dup(h->argv, SIZE_MAX)))
		return -ENOMEM;
	if (h->socket && !(r->socket = strdup(h->socket)))
		return -ENOMEM;
	return 0;
}

static int copy_rule(struct dlp_rule *r, const struct dlp_rule_spec *s,
		     char *err, size_t errlen)
{
	if (!s->name || !*s->name || strlen(s->name) >= DLP_NAME_MAX)
		return seterr(err, errlen, "rule name empty or longer than %d",
			      DLP_NAME_MAX - 1);
	strcpy(r->name, s->name);
	if ((unsigned)s->severity > DLP_SEV_CRITICAL ||
	    (unsigned)s->action > DLP_BLOCK)
		return seterr(err, errlen, "rule %s: bad severity or action",
			      r->name);
	r->severity = s->severity;
	r->kind = s->kind;
	r->action = s->action;
	r->min_size = s->min_size;
	r->max_size = s->max_size;
	if (r->max_size && r->min_size > r->max_size)
		return seterr(err, errlen, "rule %s: min_size > max_size",
			      r->name);
	if (s->magic_len > DLP_MAGIC_MAX || (s->magic_len && !s->magic))
		return seterr(err, errlen, "rule %s: magic longer than %d",
			      r->name, DLP_MAGIC_MAX);
	if (s->magic_len)
		memcpy(r->magic, s->magic, s->magic_len);
	r->magic_len = s->magic_len;
	if (s->nglobs) {
		if (!s->globs)
			return seterr(err, errlen, "rule %s: no globs",
				      r->name);
		if (!(r->globs = strv_dup(s->globs, s->nglobs)))
			return -ENOMEM;
		r->nglobs = s->nglobs;
	}
	switch (s->kind) {
	case DLP_KIND_BUILTIN:
		r->bi = s->detector ? dlp_builtin_find(s->detector) : NULL;
		if (!r->bi)
			return seterr(
			    err, errlen, "rule %s: unknown detector \"%s\"",
			    r->name, s->detector ? s->detector : "(none)");
		return 0;
	case DLP_KIND_REGEX: {
		char msg[DLP_ERR_MAX];
		int off;

		if (dlp_pattern_check(s->pattern, msg, sizeof(msg), &off))
			return seterr(err, errlen, "rule %s: pattern: %s",
				      r->name, msg);
		return 0;
	}
	case DLP_KIND_HOOK:
		return copy_hook(r, &s->hook, err, errlen);
	}
	return seterr(err, errlen, "rule %s: unknown kind", r->name);
}

/*
 * The block-mode SOM database that locates match starts.  A pattern SOM
 * cannot handle is dropped (Vectorscan names it in the error) and the rest
 * compiled again; failing that entirely only costs exact offsets.
 */
static hs_database_t *compile_som(const char **expr, unsigned *flags,
				  unsigned *ids, unsigned n)
{
	hs_database_t *db = NULL;
	hs_compile_error_t *cerr = NULL;

	for (unsigned i = 0; i < n; i++)
		flags[i] =
		    (flags[i] & ~HS_FLAG_SINGLEMATCH) | HS_FLAG_SOM_LEFTMOST;
	while (n > 0) {
		if (hs_compile_multi(expr, flags, ids, n, HS_MODE_BLOCK, NULL,
				     &db, &cerr) == HS_SUCCESS)
			return db;
		int bad = cerr ? cerr->expression : -1;

		hs_free_compile_error(cerr);
		cerr = NULL;
		if (bad < 0 || (unsigned)bad >= n)
			return NULL;
		n--;
		memmove(expr + bad, expr + bad + 1, (n - bad) * sizeof(*expr));
		memmove(flags + bad, flags + bad + 1,
			(n - bad) * sizeof(*flags));
		memmove(ids + bad, ids + bad + 1, (n - bad) * sizeof(*ids));
	}
	return NULL;
}

/*
 * Which database a pattern rule goes to.  The fast paths (dlp_fast.c) take
 * the card detector and custom patterns without a literal; everything else
 * is in the main streaming database.  1: fast path, 0: main.
 */
static int route(struct dlp_engine *e, const struct dlp_rule_spec *s,
		 unsigned i)
{
	const struct dlp_rule *r = &e->rules[i];
	struct dlp_class_rule cr;

	if (e->plain)
		return 0;
	if (r->bi && strcmp(r->bi->name, "card_number") == 0)
		return dlp_fast_add_card(&e->fast, i) ? -ENOMEM : 1;
	if (!r->bi && dlp_classify(s->pattern, &cr) == 0 &&
	    dlp_fast_add_class(&e->fast, i, &cr) == 0)
		return 1;
	return 0;
}

static int compile_db(const char **expr, unsigned *flags, unsigned *ids,
		      unsigned n, hs_database_t **db,
		      const struct dlp_rule *rules, char *err, size_t errlen)
{
	hs_compile_error_t *cerr = NULL;
	int bad, ret;

	if (n == 0 || hs_compile_multi(expr, flags, ids, n, DLP_HS_MODE, NULL,
				       db, &cerr) == HS_SUCCESS)
		return 0;
	bad = cerr ? cerr->expression : -1;
	ret = seterr(err, errlen, "rule %s: %s",
		     bad >= 0 && (unsigned)bad < n ? rules[ids[bad]].name
						   : "(rule set)",
		     cerr ? cerr->message : "compile failed");
	hs_free_compile_error(cerr);
	return ret;
}

/*
 * The arrays hold the main database's patterns from the front and the
 * class-only ones from the back; the SOM database gets both (card numbers
 * need none: the confirmer gives their start).
 */
static int compile_all(struct dlp_engine *e, const struct dlp_rule_spec *s,
		       char *err, size_t errlen)
{
	size_t cap = e->nrules + 1;
	const char **expr = calloc(cap, sizeof(*expr));
	unsigned *flags = calloc(cap, sizeof(*flags));
	unsigned *ids = calloc(cap, sizeof(*ids));
	unsigned n = 0, nc = 0;
	int ret = -ENOMEM;

	if (!expr || !flags || !ids)
		goto out;
	for (size_t i = 0; i < e->nrules; i++) {
		const struct dlp_rule *r = &e->rules[i];
		unsigned at;
		int fast;

		if (r->kind == DLP_KIND_HOOK) {
			e->has_hooks = true;
			continue;
		}
		fast = route(e, &s[i], (unsigned)i);
		if (fast < 0)
			goto out;
		if (fast && r->bi)
			continue; /* confirmed by its own scan, no database */
		if (fast) {
			at = (unsigned)(cap - 1 - nc++);
		} else {
			at = n++;
		}
		expr[at] = r->bi ? r->bi->pattern : s[i].pattern;
		flags[at] = r->bi ? r->bi->flags : DLP_HS_CUSTOM_FLAGS;
		ids[at] = (unsigned)i;
	}
	ret = compile_db(expr, flags, ids, n, &e->db, e->rules, err, errlen);
	if (ret)
		goto out;
	ret = compile_db(expr + cap - nc, flags + cap - nc, ids + cap - nc, nc,
			 &e->fast.cls_db, e->rules, err, errlen);
	if (ret)
		goto out;
	/* one contiguous array for the SOM database */
	memmove(expr + n, expr + cap - nc, nc * sizeof(*expr));
	memmove(flags + n, flags + cap - nc, nc * sizeof(*flags));
	memmove(ids + n, ids + cap - nc, nc * sizeof(*ids));
	if (n + nc)
		e->som = compile_som(expr, flags, ids, n + nc);
	ret = -ENOMEM;
	if (e->db && hs_alloc_scratch(e->db, &e->scratch) != HS_SUCCESS)
		goto out;
	if (e->fast.cls_db &&
	    hs_alloc_scratch(e->fast.cls_db, &e->scratch) != HS_SUCCESS)
		goto out;
	if (e->som && hs_alloc_scratch(e->som, &e->scratch) != HS_SUCCESS)
		goto out;
	ret = 0;
out:
	free(expr);
	free(flags);
	free(ids);
	return ret;
}

struct dlp_engine *dlp_engine_new(const struct dlp_rule_spec *specs, size_t n,
				  char *err, size_t errlen)
{
	return dlp_engine_build(specs, n, false, err, errlen);
}

struct dlp_engine *dlp_engine_build(const struct dlp_rule_spec *specs, size_t n,
				    bool plain, char *err, size_t errlen)
{
	struct dlp_engine *e = calloc(1, sizeof(*e));
	int ret = -ENOMEM;

	if (err && errlen)
		err[0] = '\0';
	if (!e || n > 100000)
		goto out;
	e->plain = plain;
	e->rules = calloc(n ? n : 1, sizeof(*e->rules));
	if (!e->rules)
		goto out;
	for (size_t i = 0; i < n; i++) {
		e->nrules = i + 1;
		ret = copy_rule(&e->rules[i], &specs[i], err, errlen);
		if (ret)
			goto out;
		for (size_t j = 0; j < i; j++)
			if (strcmp(e->rules[j].name, e->rules[i].name) == 0) {
				ret = seterr(err, errlen,
					     "rule %s: duplicate name",
					     e->rules[i].name);
				goto out;
			}
	}
	e->nrules = n;
	ret = compile_all(e, specs, err, errlen);
out:
	if (ret) {
		if (ret == -ENOMEM && err && errlen && !err[0])
			snprintf(err, errlen, "out of memory");
		dlp_engine_free(e);
		errno = -ret;
		return NULL;
	}
	return e;
}

void dlp_engine_free(struct dlp_engine *e)
{
	if (!e)
		return;
	for (size_t i = 0; i < e->nrules; i++) {
		strv_free(e->rules[i].globs);
		strv_free(e->rules[i].argv);
		free(e->rules[i].socket);
	}
	free(e->rules);
	hs_free_database(e->db);
	hs_free_database(e->som);
	hs_free_scratch(e->scratch);
	dlp_fast_cleanup(&e->fast);
	free(e);
}

size_t dlp_engine_rule_count(const struct dlp_engine *e)
{
	return e->nrules;
}

bool dlp_rule_name_ok(const struct dlp_rule *r, const char *name)
{
	const char *base = strrchr(name, '/');

	if (r->nglobs == 0)
		return true;
	base = base ? base + 1 : name;
	for (size_t i = 0; i < r->nglobs; i++) {
		const char *g = r->globs[i];

		if (strchr(g, '/')) {
			/* whole-path globs: a leading '/' is optional on
			 * either side */
			const char *p = name;

			while (*g == '/')
				g++;
			while (*p == '/')
				p++;
			if (fnmatch(g, p, 0) == 0)
				return true;
		} else if (fnmatch(g, base, 0) == 0) {
			return true;
		}
	}
	return false;
}

bool dlp_rule_size_ok(const struct dlp_rule *r, uint64_t size)
{
	return size >= r->min_size && (!r->max_size || size <= r->max_size);
}

bool dlp_rule_magic_ok(const struct dlp_rule *r, const unsigned char *head,
		       size_t headlen)
{
	return r->magic_len == 0 || (headlen >= r->magic_len &&
				     memcmp(head, r->magic, r->magic_len) == 0);
}
