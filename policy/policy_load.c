/*
 * policy_load.c - read a policy directory into a new, immutable policy.
 *
 * Every *.yaml file (name order, byte-wise) is parsed into a bounded tree,
 * each top-level section is read into typed entries that merge across
 * files (names unique, single settings set once), references between
 * sections are checked, and only then is the result handed out.  Nothing
 * global is touched, so a failed reload leaves the policy in force alone.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "policy_int.h"

static const char *const top_keys[] = {"version", "filesystems", "tokens",
				       "dlp",	  "egress",	 "custody",
				       "audit",	  "operators",	 NULL};

int plist_add(struct plist *l, void *p)
{
	void **v;

	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 8;

		v = realloc(l->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = p;
	return 0;
}

int pctx_set_once(struct pctx *c, const char *key, const struct pnode *at)
{
	struct pset *s;
	size_t i;

	if (!key)
		return -ENOMEM;
	for (i = 0; i < c->sets.n; i++) {
		s = c->sets.v[i];
		if (strcmp(s->key, key) == 0) {
			pctx_err(c, at, "%s is already set at %s:%u:%u", key,
				 s->at->file, s->at->line, s->at->col);
			return -EEXIST;
		}
	}
	s = parena_alloc(c->tree, sizeof(*s));
	if (!s || plist_add(&c->sets, s))
		return -ENOMEM;
	s->key = key;
	s->at = at;
	return 0;
}

static int read_version(struct pctx *c, const struct pnode *v)
{
	uint64_t ver;

	return pv_uint(c, v, "version (of the format)", 1, 1, &ver);
}

/* One file's top-level mapping, section by section. */
static void read_file(struct pctx *c, const struct pnode *root)
{
	static int (*const fn[])(struct pctx *, const struct pnode *) = {
	    NULL,	 psec_filesystems, psec_tokens, psec_dlp,
	    psec_egress, psec_custody,	   psec_audit,	psec_operators};
	const struct pnode *k;
	size_t i, j;

	if (root->type != PN_MAP) {
		pctx_err(c, root,
			 "a policy file holds a mapping of sections, "
			 "not %s",
			 pnode_kind(root));
		return;
	}
	pmap_known(c, root, top_keys, "the top level");
	for (i = 0; i < root->n; i++) {
		k = root->kids[2 * i];
		for (j = 0; top_keys[j]; j++)
			if (strcmp(k->str, top_keys[j]) == 0)
				break;
		if (!top_keys[j])
			continue;
		if (j == 0)
			read_version(c, root->kids[2 * i + 1]);
		else
			fn[j](c, root->kids[2 * i + 1]);
	}
}

/* Read a whole file into a fresh buffer, refusing anything huge. */
static int slurp(const char *path, char **out, size_t *len)
{
	struct stat st;
	char *buf = NULL;
	ssize_t r;
	size_t n = 0;
	int fd, rc = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st)) {
		rc = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = -EISDIR;
		goto out;
	}
	if (st.st_size > POLICY_MAX_FILE_BYTES) {
		rc = -EFBIG;
		goto out;
	}
	buf = malloc(POLICY_MAX_FILE_BYTES + 1);
	if (!buf) {
		rc = -ENOMEM;
		goto out;
	}
	/* Read to EOF: the size may change under us; the cap still holds. */
	while (n <= POLICY_MAX_FILE_BYTES) {
		r = read(fd, buf + n, POLICY_MAX_FILE_BYTES + 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = -errno;
			goto out;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	if (n > POLICY_MAX_FILE_BYTES) {
		rc = -EFBIG;
		goto out;
	}
	*out = buf;
	*len = n;
	buf = NULL;
out:
	free(buf);
	close(fd);
	return rc;
}

static void file_err(struct pctx *c, const char *file, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void file_err(struct pctx *c, const char *file, const char *fmt, ...)
{
	va_list ap;

	c->nerr++;
	va_start(ap, fmt);
	pproblem_add(c->probs, file, 0, 0, fmt, ap);
	va_end(ap);
}

static void load_text(struct pctx *c, const char *file, const char *buf,
		      size_t len)
{
	struct pnode *root;
	size_t before = c->probs ? c->probs->n : 0;
	unsigned nerr = 0;

	root = pyaml_parse(c->tree, file, buf, len, c->probs, &nerr);
	c->nerr += (int)nerr;
	if (!root) {
		c->nerr++;
		if (c->probs && c->probs->n == before)
			file_err(c, file, "cannot parse");
		return;
	}
	c->pol->nfiles++;
	read_file(c, root);
}

/* Problems in file, line, column order; equal places keep their order. */
static int problem_cmp(const struct policy_problem *x,
		       const struct policy_problem *y)
{
	int c = strcmp(x->file, y->file);

	if (c)
		return c;
	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	if (x->col != y->col)
		return x->col < y->col ? -1 : 1;
	return 0;
}

static void sort_problems(struct policy_problems *probs)
{
	struct policy_problem t;
	size_t i, j;

	/* An insertion sort: stable, and the list is capped at 200. */
	for (i = 1; probs && i < probs->n; i++) {
		t = probs->v[i];
		for (j = i; j > 0 && problem_cmp(&probs->v[j - 1], &t) > 0; j--)
			probs->v[j] = probs->v[j - 1];
		probs->v[j] = t;
	}
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int is_policy_name(const char *n)
{
	size_t len = strlen(n);

	return n[0] != '.' && len > 5 && strcmp(n + len - 5, ".yaml") == 0;
}

/* The *.yaml names of dir, sorted; hidden files are skipped. */
static int list_dir(struct pctx *c, const char *dir, struct plist *names)
{
	struct dirent *de;
	DIR *d;
	char *s;

	d = opendir(dir);
	if (!d) {
		c->sys_err = errno;
		file_err(c, dir, "%s", strerror(c->sys_err));
		return -c->sys_err;
	}
	while ((de = readdir(d))) {
		if (!is_policy_name(de->d_name))
			continue;
		if (names->n >= POLICY_MAX_FILES) {
			file_err(c, dir, "more than %d policy files",
				 POLICY_MAX_FILES);
			break;
		}
		s = strdup(de->d_name);
		if (!s || plist_add(names, s)) {
			free(s);
			closedir(d);
			return -ENOMEM;
		}
	}
	closedir(d);
	if (names->n)
		qsort(names->v, names->n, sizeof(*names->v), name_cmp);
	return 0;
}

static void load_dir(struct pctx *c, const char *dir)
{
	struct plist names = {0};
	char *path, *buf = NULL;
	size_t i, len;
	int rc;

	if (list_dir(c, dir, &names))
		goto out;
	for (i = 0; i < names.n; i++) {
		len = strlen(dir) + strlen(names.v[i]) + 2;
		path = parena_alloc(c->a, len);
		if (!path) {
			file_err(c, dir, "out of memory");
			goto out;
		}
		snprintf(path, len, "%s%s%s", dir,
			 dir[strlen(dir) - 1] == '/' ? "" : "/",
			 (char *)names.v[i]);
		rc = slurp(path, &buf, &len);
		if (rc == -EFBIG) {
			file_err(c, path, "larger than %u bytes",
				 POLICY_MAX_FILE_BYTES);
		} else if (rc) {
			file_err(c, path, "%s", strerror(-rc));
		} else {
			load_text(c, path, buf, len);
			free(buf);
		}
	}
out:
	for (i = 0; i < names.n; i++)
		free(names.v[i]);
	free(names.v);
}

/* The list's pointers as an arena array of n structs of size each. */
static const void *flatten(struct pctx *c, struct plist *l, size_t size,
			   size_t *n)
{
	char *v;
	size_t i;

	*n = l->n;
	if (!l->n)
		return NULL;
	v = parena_alloc(c->a, l->n * size);
	if (!v)
		return NULL;
	for (i = 0; i < l->n; i++)
		memcpy(v + i * size, l->v[i], size);
	return v;
}

static int finish(struct pctx *c)
{
	struct policy *p = c->pol;
	uid_t *uids;
	gid_t *gids;
	size_t i;

	p->fs = flatten(c, &c->fs, sizeof(*p->fs), &p->nfs);
	p->dlp.rules =
	    flatten(c, &c->rules, sizeof(*p->dlp.rules), &p->dlp.nrules);
	p->egress = flatten(c, &c->egress, sizeof(*p->egress), &p->negress);
	p->custody = flatten(c, &c->custody, sizeof(*p->custody), &p->ncustody);
	p->audit.sampling = flatten(c, &c->sampling, sizeof(*p->audit.sampling),
				    &p->audit.nsampling);
	uids = parena_alloc(c->a, (c->uids.n + 1) * sizeof(*uids));
	gids = parena_alloc(c->a, (c->gids.n + 1) * sizeof(*gids));
	if (!uids || !gids || (p->nfs && !p->fs) ||
	    (p->dlp.nrules && !p->dlp.rules) || (p->negress && !p->egress) ||
	    (p->ncustody && !p->custody) ||
	    (p->audit.nsampling && !p->audit.sampling))
		return -ENOMEM;
	for (i = 0; i < c->uids.n; i++)
		uids[i] = (uid_t)((uintptr_t)c->uids.v[i] - 1);
	for (i = 0; i < c->gids.n; i++)
		gids[i] = (gid_t)((uintptr_t)c->gids.v[i] - 1);
	p->op_uids = uids;
	p->nop_uids = c->uids.n;
	p->op_gids = gids;
	p->nop_gids = c->gids.n;
	return 0;
}

static void ctx_cleanup(struct pctx *c)
{
	struct plist *l[] = {&c->fs,	  &c->rules,	&c->egress,
			     &c->custody, &c->sampling, &c->uids,
			     &c->gids,	  &c->sets,	&c->refs};
	size_t i;

	for (i = 0; i < sizeof(l) / sizeof(l[0]); i++)
		free(l[i]->v);
	parena_free(c->tree);
}

/* The shared body of policy_load and policy_load_buf. */
static struct policy *load(const char *dir, const char *name, const char *buf,
			   size_t len, const struct policy_opts *opts,
			   struct policy_problems *probs)
{
	struct pctx c = {.opts = opts, .probs = probs};
	struct parena *a;
	struct policy *p = NULL;
	int err = EINVAL;

	a = parena_new();
	c.tree = parena_new();
	if (!a || !c.tree || !(c.pol = parena_alloc(a, sizeof(*c.pol)))) {
		err = ENOMEM;
		goto out;
	}
	c.a = a;
	c.pol->arena = a;
	c.pol->refs = 1;
	c.pol->tokens.max_ttl_ms = 3600 * 1000;
	c.pol->audit.spool_max_bytes = 256ull << 20;
	c.pol->audit.segment_max_bytes = 64ull << 20;
	c.pol->dir = parena_strdup(a, dir ? dir : name);
	if (!c.pol->dir) {
		err = ENOMEM;
		goto out;
	}
	if (dir) {
		load_dir(&c, c.pol->dir);
	} else {
		const char *file = parena_strdup(a, name);

		if (!file) {
			err = ENOMEM;
			goto out;
		}
		load_text(&c, file, buf, len);
	}
	if (!c.nerr)
		psec_cross_check(&c);
	if (c.nerr)
		goto out;
	if (finish(&c)) {
		err = ENOMEM;
		goto out;
	}
	p = c.pol;
	a = NULL;
out:
	ctx_cleanup(&c);
	parena_free(a);
	if (!p) {
		sort_problems(probs);
		errno = c.sys_err && err == EINVAL ? c.sys_err : err;
	}
	return p;
}

struct policy *policy_load(const char *dir, const struct policy_opts *opts,
			   struct policy_problems *probs)
{
	if (!dir || !*dir) {
		errno = EINVAL;
		return NULL;
	}
	return load(dir, NULL, NULL, 0, opts, probs);
}

struct policy *policy_load_buf(const char *name, const char *buf, size_t len,
			       const struct policy_opts *opts,
			       struct policy_problems *probs)
{
	return load(NULL, name ? name : "<buffer>", buf, len, opts, probs);
}
