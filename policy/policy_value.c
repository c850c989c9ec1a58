/*
 * policy_value.c - the pieces every policy section is read with: the arena
 * that owns a loaded policy, the problem list, and typed readers for
 * strings, paths, sizes (4KiB), durations (15m), enums and secret files.
 *
 * Every reader reports at the node it reads, so each problem carries the
 * file, line and column an operator has to fix.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "policy_int.h"

/* ---- arena ----------------------------------------------------------------
 */

#define ARENA_CHUNK 16384

struct chunk {
	struct chunk *next;
	size_t used, size;
	max_align_t data[];
};

struct parena {
	struct chunk *head;
};

struct parena *parena_new(void)
{
	return calloc(1, sizeof(struct parena));
}

void parena_free(struct parena *a)
{
	struct chunk *c, *next;

	if (!a)
		return;
	for (c = a->head; c; c = next) {
		next = c->next;
		free(c);
	}
	free(a);
}

void *parena_alloc(struct parena *a, size_t n)
{
	struct chunk *c = a->head;
	size_t al = sizeof(max_align_t), size;
	void *p;

	n = (n + al - 1) / al * al;
	if (!n)
		n = al;
	if (!c || c->size - c->used < n) {
		size = n > ARENA_CHUNK ? n : ARENA_CHUNK;
		c = malloc(sizeof(*c) + size);
		if (!c)
			return NULL;
		c->used = 0;
		c->size = size;
		/* A big block goes behind the head so the head keeps its room.
		 */
		if (a->head && n > ARENA_CHUNK) {
			c->next = a->head->next;
			a->head->next = c;
		} else {
			c->next = a->head;
			a->head = c;
		}
	}
	p = (char *)c->data + c->used;
	c->used += n;
	memset(p, 0, n);
	return p;
}

char *parena_strdup(struct parena *a, const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = parena_alloc(a, n);

	if (p)
		memcpy(p, s, n);
	return p;
}

/* ---- problems ---------------------------------------------------------------
 */

int pproblem_add(struct policy_problems *probs, const char *file, unsigned line,
		 unsigned col, const char *fmt, va_list ap)
{
	struct policy_problem *p, *v;
	char msg[1024];

	if (!probs)
		return 0;
	if (probs->n >= POLICY_MAX_PROBLEMS) {
		probs->dropped++;
		return 0;
	}
	if (probs->n == probs->cap) {
		size_t cap = probs->cap ? probs->cap * 2 : 16;

		v = realloc(probs->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		probs->v = v;
		probs->cap = cap;
	}
	vsnprintf(msg, sizeof(msg), fmt, ap);
	p = &probs->v[probs->n];
	p->file = strdup(file ? file : "");
	p->msg = strdup(msg);
	if (!p->file || !p->msg) {
		free(p->file);
		free(p->msg);
		return -ENOMEM;
	}
	p->line = line;
	p->col = col;
	probs->n++;
	return 0;
}

void pproblem_add_at(struct policy_problems *probs, const struct pnode *at,
		     const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	pproblem_add(probs, at ? at->file : NULL, at ? at->line : 0,
		     at ? at->col : 0, fmt, ap);
	va_end(ap);
}

void pctx_err(struct pctx *c, const struct pnode *at, const char *fmt, ...)
{
	va_list ap;

	c->nerr++;
	va_start(ap, fmt);
	pproblem_add(c->probs, at ? at->file : NULL, at ? at->line : 0,
		     at ? at->col : 0, fmt, ap);
	va_end(ap);
}

int policy_problem_format(const struct policy_problem *p, char *buf, size_t len)
{
	if (p->line)
		return snprintf(buf, len, "%s:%u:%u: %s", p->file, p->line,
				p->col, p->msg);
	return snprintf(buf, len, "%s: %s", p->file, p->msg);
}

void policy_problems_free(struct policy_problems *probs)
{
	size_t i;

	if (!probs)
		return;
	for (i = 0; i < probs->n; i++) {
		free(probs->v[i].file);
		free(probs->v[i].msg);
	}
	free(probs->v);
	memset(probs, 0, sizeof(*probs));
}

/* ---- maps and keys
 * ------------------------------------------------------------
 */

const char *pnode_kind(const struct pnode *n)
{
	if (n->type == PN_MAP)
		return "a mapping";
	if (n->type == PN_SEQ)
		return "a list";
	return "a scalar";
}

struct pnode *pmap_get(const struct pnode *map, const char *key)
{
	size_t i;

	if (!map || map->type != PN_MAP)
		return NULL;
	for (i = 0; i < map->n; i++)
		if (strcmp(map->kids[2 * i]->str, key) == 0)
			return map->kids[2 * i + 1];
	return NULL;
}

unsigned policy_distance(const char *a, const char *b)
{
	unsigned row[33], prev, tmp, i, j, la = strlen(a), lb = strlen(b);

	if (la > 32 || lb > 32)
		return 99;
	for (j = 0; j <= lb; j++)
		row[j] = j;
	for (i = 1; i <= la; i++) {
		prev = row[0];
		row[0] = i;
		for (j = 1; j <= lb; j++) {
			tmp = row[j];
			row[j] = prev + (a[i - 1] != b[j - 1]);
			if (row[j - 1] + 1 < row[j])
				row[j] = row[j - 1] + 1;
			if (tmp + 1 < row[j])
				row[j] = tmp + 1;
			prev = tmp;
		}
	}
	return row[lb];
}

/* The closest known word, when it is close enough to be a typo. */
static const char *suggest(const char *word, const char *const *known)
{
	const char *best = NULL;
	unsigned d, bestd = 99, limit = strlen(word) <= 4 ? 1 : 2;

	for (; *known; known++) {
		d = policy_distance(word, *known);
		if (d < bestd) {
			bestd = d;
			best = *known;
		}
	}
	return bestd <= limit ? best : NULL;
}

int pmap_known(struct pctx *c, const struct pnode *map, const char *const *keys,
	       const char *what)
{
	const struct pnode *k;
	const char *const *p;
	const char *hint;
	size_t i;
	int rc = 0;

	for (i = 0; i < map->n; i++) {
		k = map->kids[2 * i];
		for (p = keys; *p; p++)
			if (strcmp(*p, k->str) == 0)
				break;
		if (*p)
			continue;
		hint = suggest(k->str, keys);
		if (hint)
			pctx_err(c, k,
				 "unknown key '%s' in %s (did you mean "
				 "'%s'?)",
				 k->str, what, hint);
		else
			pctx_err(c, k, "unknown key '%s' in %s", k->str, what);
		rc = -EINVAL;
	}
	return rc;
}

/* ---- typed readers
 * ------------------------------------------------------------
 */

static int want(struct pctx *c, const struct pnode *n, enum pnode_type t,
		const char *what)
{
	static const char *const names[] = {"a scalar", "a mapping", "a list"};

	if (n->type == t)
		return 0;
	pctx_err(c, n, "%s: expected %s, got %s", what, names[t],
		 pnode_kind(n));
	return -EINVAL;
}

int pv_map(struct pctx *c, const struct pnode *n, const char *what)
{
	return want(c, n, PN_MAP, what);
}

int pv_seq(struct pctx *c, const struct pnode *n, const char *what)
{
	return want(c, n, PN_SEQ, what);
}

int pv_str(struct pctx *c, const struct pnode *n, const char *what,
	   const char **out)
{
	size_t i;

	if (want(c, n, PN_SCALAR, what))
		return -EINVAL;
	if (n->len == 0) {
		pctx_err(c, n, "%s: must not be empty", what);
		return -EINVAL;
	}
	for (i = 0; i < n->len; i++) {
		if (iscntrl((unsigned char)n->str[i])) {
			pctx_err(c, n, "%s: control characters are not allowed",
				 what);
			return -EINVAL;
		}
	}
	*out = parena_strdup(c->a, n->str);
	return *out ? 0 : -ENOMEM;
}

int pv_path(struct pctx *c, const struct pnode *n, const char *what,
	    const char **out)
{
	const char *s;

	if (pv_str(c, n, what, &s))
		return -EINVAL;
	if (s[0] != '/') {
		pctx_err(c, n, "%s: '%s' is not an absolute path", what, s);
		return -EINVAL;
	}
	if (strlen(s) >= 4096) {
		pctx_err(c, n, "%s: path too long", what);
		return -EINVAL;
	}
	*out = s;
	return 0;
}

static int all_digits(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (!isdigit((unsigned char)*s))
			return 0;
	return 1;
}

/* Digits into *v; the end of them in *end.  -ERANGE past 2^64. */
static int digits(const char *s, const char **end, uint64_t *v)
{
	uint64_t x = 0;

	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	for (; isdigit((unsigned char)*s); s++) {
		if (x > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
			return -ERANGE;
		x = x * 10 + (uint64_t)(*s - '0');
	}
	*end = s;
	*v = x;
	return 0;
}

int pv_uint(struct pctx *c, const struct pnode *n, const char *what,
	    uint64_t min, uint64_t max, uint64_t *out)
{
	const char *end;
	uint64_t v;

	if (want(c, n, PN_SCALAR, what))
		return -EINVAL;
	if (!all_digits(n->str) || digits(n->str, &end, &v)) {
		if (max == UINT64_MAX)
			pctx_err(c, n,
				 "%s: '%.64s' is not a whole number of at "
				 "least %llu",
				 what, n->str, (unsigned long long)min);
		else
			pctx_err(c, n,
				 "%s: '%.64s' is not a number from %llu "
				 "to %llu",
				 what, n->str, (unsigned long long)min,
				 (unsigned long long)max);
		return -EINVAL;
	}
	if (v < min || v > max) {
		pctx_err(c, n, "%s: %llu is out of range (%llu to %llu)", what,
			 (unsigned long long)v, (unsigned long long)min,
			 (unsigned long long)max);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

static const struct {
	const char *name;
	uint64_t mul;
} size_units[] = {
    {"", 1},
    {"B", 1},
    {"K", 1ull << 10},
    {"KiB", 1ull << 10},
    {"M", 1ull << 20},
    {"MiB", 1ull << 20},
    {"G", 1ull << 30},
    {"GiB", 1ull << 30},
    {"T", 1ull << 40},
    {"TiB", 1ull << 40},
    {"KB", 1000ull},
    {"MB", 1000000ull},
    {"GB", 1000000000ull},
    {"TB", 1000000000000ull},
};

int policy_parse_size(const char *s, uint64_t *out)
{
	const char *end;
	uint64_t v;
	size_t i;
	int rc;

	rc = digits(s, &end, &v);
	if (rc)
		return rc;
	for (i = 0; i < sizeof(size_units) / sizeof(size_units[0]); i++) {
		if (strcmp(end, size_units[i].name) != 0)
			continue;
		if (v > UINT64_MAX / size_units[i].mul)
			return -ERANGE;
		*out = v * size_units[i].mul;
		return 0;
	}
	return -EINVAL;
}

int policy_parse_duration(const char *s, uint64_t *out_ms)
{
	uint64_t v, mul, total = 0;
	const char *end;
	int rc;

	if (all_digits(s)) {
		rc = digits(s, &end, &v);
		if (rc || v > UINT64_MAX / 1000)
			return -ERANGE;
		*out_ms = v * 1000;
		return 0;
	}
	/* One or more <number><unit>: 90s, 1h30m, 250ms. */
	while (*s) {
		rc = digits(s, &end, &v);
		if (rc)
			return rc;
		s = end;
		if (strncmp(s, "ms", 2) == 0) {
			mul = 1;
			s += 2;
		} else if (*s == 's') {
			mul = 1000;
			s++;
		} else if (*s == 'm') {
			mul = 60000;
			s++;
		} else if (*s == 'h') {
			mul = 3600000;
			s++;
		} else if (*s == 'd') {
			mul = 86400000;
			s++;
		} else {
			return -EINVAL;
		}
		if (v > (UINT64_MAX - total) / mul)
			return -ERANGE;
		total += v * mul;
	}
	*out_ms = total;
	return 0;
}

int pv_size(struct pctx *c, const struct pnode *n, const char *what,
	    uint64_t *out)
{
	int rc;

	if (want(c, n, PN_SCALAR, what))
		return -EINVAL;
	rc = policy_parse_size(n->str, out);
	if (rc == -ERANGE)
		pctx_err(c, n, "%s: '%.64s' is too large", what, n->str);
	else if (rc)
		pctx_err(c, n,
			 "%s: '%.64s' is not a size (a number of bytes, "
			 "or with a unit: 4KiB, 10GiB, 500MB)",
			 what, n->str);
	return rc ? -EINVAL : 0;
}

int pv_duration(struct pctx *c, const struct pnode *n, const char *what,
		uint64_t *out_ms)
{
	int rc;

	if (want(c, n, PN_SCALAR, what))
		return -EINVAL;
	rc = policy_parse_duration(n->str, out_ms);
	if (rc == -ERANGE)
		pctx_err(c, n, "%s: '%.64s' is too long", what, n->str);
	else if (rc)
		pctx_err(c, n,
			 "%s: '%.64s' is not a duration (seconds, or "
			 "with units: 500ms, 30s, 15m, 1h, 7d)",
			 what, n->str);
	return rc ? -EINVAL : 0;
}

int pv_bool(struct pctx *c, const struct pnode *n, const char *what, int *out)
{
	if (want(c, n, PN_SCALAR, what))
		return -EINVAL;
	if (strcmp(n->str, "true") == 0) {
		*out = 1;
		return 0;
	}
	if (strcmp(n->str, "false") == 0) {
		*out = 0;
		return 0;
	}
	pctx_err(c, n, "%s: '%.64s' is not true or false", what, n->str);
	return -EINVAL;
}

int pv_enum(struct pctx *c, const struct pnode *n, const char *what,
	    const char *const *names, int *out)
{
	char list[256] = "";
	const char *hint;
	size_t used = 0;
	int i;

	if (want(c, n, PN_SCALAR, what))
		return -EINVAL;
	for (i = 0; names[i]; i++) {
		if (strcmp(n->str, names[i]) == 0) {
			*out = i;
			return 0;
		}
		if (used < sizeof(list))
			used +=
			    (size_t)snprintf(list + used, sizeof(list) - used,
					     "%s%s", i ? ", " : "", names[i]);
	}
	hint = suggest(n->str, names);
	if (hint)
		pctx_err(c, n,
			 "%s: '%.64s' is not one of %s (did you mean "
			 "'%s'?)",
			 what, n->str, list, hint);
	else
		pctx_err(c, n, "%s: '%.64s' is not one of %s", what, n->str,
			 list);
	return -EINVAL;
}

int pv_strlist(struct pctx *c, const struct pnode *n, const char *what,
	       const char *const **out)
{
	const char **v;
	size_t i;
	int rc = 0;

	if (pv_seq(c, n, what))
		return -EINVAL;
	v = parena_alloc(c->a, (n->n + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (i = 0; i < n->n; i++)
		if (pv_str(c, n->kids[i], what, &v[i]))
			rc = -EINVAL;
	*out = v;
	return rc;
}

int pv_secret_file(struct pctx *c, const struct pnode *n, const char *what,
		   const char **out)
{
	const char *root = c->opts ? c->opts->file_root : NULL;
	char real[8192];
	struct stat st;

	if (pv_path(c, n, what, out))
		return -EINVAL;
	if (c->opts && (c->opts->flags & POLICY_NO_FILE_CHECKS))
		return 0;
	snprintf(real, sizeof(real), "%s%s", root ? root : "", *out);
	if (stat(real, &st)) {
		pctx_err(c, n, "%s %s: %s", what, *out, strerror(errno));
		return -EINVAL;
	}
	if (!S_ISREG(st.st_mode)) {
		pctx_err(c, n, "%s %s: not a regular file", what, *out);
		return -EINVAL;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		pctx_err(c, n,
			 "%s %s: mode %04o gives group or others access "
			 "to a secret; want 0600 or 0400",
			 what, *out, (unsigned)(st.st_mode & 07777));
		return -EINVAL;
	}
	return 0;
}

/* ---- host[:port] ------------------------------------------------------------
 */

int policy_parse_hostport(const char *s, char *host, size_t hostlen,
			  unsigned *port, int port_required)
{
	const char *h = s, *hend, *p = NULL;
	uint64_t v;
	size_t i, n;

	if (*s == '[') { /* [v6]:port */
		h = s + 1;
		hend = strchr(h, ']');
		if (!hend)
			return -EINVAL;
		if (hend[1] == ':')
			p = hend + 2;
		else if (hend[1])
			return -EINVAL;
	} else {
		hend = strchr(s, ':');
		if (hend) {
			if (strchr(hend + 1, ':'))
				return -EINVAL; /* bare IPv6: use brackets */
			p = hend + 1;
		} else {
			hend = s + strlen(s);
		}
	}
	n = (size_t)(hend - h);
	if (n == 0 || n >= hostlen)
		return -EINVAL;
	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)h[i];

		if (!isalnum(ch) && !strchr(".-_*:", ch))
			return -EINVAL;
		host[i] = (char)tolower(ch);
	}
	host[n] = '\0';
	if (!p) {
		if (port_required)
			return -EINVAL;
		*port = 443;
		return 0;
	}
	if (strcmp(p, "*") == 0) {
		*port = 0;
		return 0;
	}
	if (!all_digits(p) || digits(p, &hend, &v) || v < 1 || v > 65535)
		return -ERANGE;
	*port = (unsigned)v;
	return 0;
}
