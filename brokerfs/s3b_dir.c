/*
 * s3b_dir.c - directory handles of the s3 backend: OPENDIR, READDIRPLUS,
 * RELEASEDIR, FSYNCDIR.
 *
 * A handle lists its directory once (ListObjectsV2, delimiter '/', every
 * page) when the first READDIRPLUS at offset 0 arrives, and serves later
 * offsets from that snapshot; a new read from offset 0 lists again.  Files
 * that exist only in staging so far are added, so a file being written
 * does not vanish from ls.  A cookie is the entry's index + 1.
 *
 * Attributes: a file whose key and ETag the metadata cache knows, and a
 * directory whose marker it knows, are answered from the cache without a
 * request.  For the others (objects another writer made or changed, and
 * entries not seen since the cache dropped them) the backend HEADs them,
 * S3B_HEAD_PARALLEL at a time, for the entries of this reply only, and
 * caches the result, so the next listing costs one LIST and nothing more.
 * LIST alone cannot tell a symlink from a file, nor give mode and owner,
 * which is why unknown entries are not guessed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"
#include "s3b.h"

/* fuse_dirent header (24) + fuse_entry_out (128) + name, 8-byte aligned. */
#define DIRENTPLUS_BASE 152u
#define DIRENTPLUS_SIZE(namelen) (((DIRENTPLUS_BASE + (namelen)) + 7u) & ~7ul)

int s3b_dir_opendir(struct backend_session *s, const struct proto_msg *req,
		    struct proto_msg *rep)
{
	struct s3b_file *f;
	struct s3b_node *n;
	int rc;

	rc = s3b_node_get_dir(s, req->ino, &n);
	if (rc)
		return rc;
	f = calloc(1, sizeof(*f));
	if (!f) {
		s3b_node_put(s, n);
		return -ENOMEM;
	}
	f->kind = S3B_DIR;
	f->node = n; /* the reference taken above */
	pthread_mutex_init(&f->dir_lock, NULL);
	rc = s3b_file_insert(s, f, &rep->fh);
	if (rc)
		s3b_file_free(s, f);
	return rc;
}

static void ents_free(struct s3b_file *f)
{
	for (size_t i = 0; i < f->nents; i++)
		free(f->ents[i].name);
	free(f->ents);
	f->ents = NULL;
	f->nents = 0;
	f->listed = false;
}

static int ents_add(struct s3b_file *f, size_t *cap, const char *name,
		    size_t len, mode_t type, const struct s3_list_entry *e)
{
	struct s3b_dent *d;

	if (!len || len > PROTO_MAX_NAME || memchr(name, '/', len) ||
	    (len == 1 && name[0] == '.') ||
	    (len == 2 && name[0] == '.' && name[1] == '.'))
		return 0; /* not a name a guest can use: not shown */
	if (f->nents == *cap) {
		size_t nc = *cap ? *cap * 2 : 64;

		if (nc > S3B_LIST_MAX)
			return -EFBIG;
		d = realloc(f->ents, nc * sizeof(*d));
		if (!d)
			return -ENOMEM;
		f->ents = d;
		*cap = nc;
	}
	d = &f->ents[f->nents];
	memset(d, 0, sizeof(*d));
	d->name = strndup(name, len);
	if (!d->name)
		return -ENOMEM;
	d->type = type;
	if (e) {
		d->has_obj = true;
		d->size = e->size;
		d->mtime = e->mtime;
		snprintf(d->etag, sizeof(d->etag), "%s", e->etag);
	}
	f->nents++;
	return 0;
}

static int dent_cmp(const void *a, const void *b)
{
	const struct s3b_dent *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	/* Same name as file and directory: the directory sorts first. */
	return c ? c : (x->type == S_IFDIR ? -1 : y->type == S_IFDIR);
}

/* Sort, and keep one entry per name (a directory wins over a file). */
static void ents_unique(struct s3b_file *f)
{
	size_t o = 0;

	if (!f->nents)
		return;
	qsort(f->ents, f->nents, sizeof(*f->ents), dent_cmp);
	for (size_t i = 0; i < f->nents; i++) {
		if (o && !strcmp(f->ents[o - 1].name, f->ents[i].name)) {
			free(f->ents[i].name);
			continue;
		}
		f->ents[o++] = f->ents[i];
	}
	f->nents = o;
}

/* Staged files directly in dir that S3 does not have yet. */
static int add_staged(struct backend_session *s, struct s3b_file *f,
		      const char *dpath, size_t *cap)
{
	size_t dl = strlen(dpath);
	struct s3b_node **v;
	int rc = s3b_node_stages_below(s, dpath, &v);

	if (rc)
		return rc;
	for (size_t i = 0; v[i]; i++) {
		pthread_mutex_lock(&s->lock);
		const char *p = v[i]->path;
		char *name = p ? strdup(p + (dl ? dl + 1 : 0)) : NULL;

		pthread_mutex_unlock(&s->lock);
		if (name && *name && !strchr(name, '/') && !rc)
			rc =
			    ents_add(f, cap, name, strlen(name), S_IFREG, NULL);
		free(name);
		s3b_node_stage_unpin(s, v[i]);
		s3b_node_put(s, v[i]);
	}
	free(v);
	return rc;
}

/* Is key (below dkey) a name the guest may see? */
static bool visible(struct backend_session *s, const char *dkey,
		    const char *name, size_t len)
{
	if (!len || len > PROTO_MAX_NAME || memchr(name, '/', len))
		return false;
	return !(strcmp(dkey, s->fs->root) == 0 && s3b_reserved(name, len));
}

/* What one listed page tells the cache; counts its subdirectories. */
static void page_stub(struct backend_session *s, const char *dkey,
		      const struct s3_list_page *p, uint32_t *nsub)
{
	size_t dl = strlen(dkey);

	for (size_t i = 0; i < p->nentries; i++) {
		const struct s3_list_entry *e = &p->entries[i];
		const char *k = e->key;

		if (!strncmp(k, dkey, dl) &&
		    visible(s, dkey, k + dl, strlen(k + dl)))
			s3b_cache_stub(s->b, k, e->etag, e->size, e->mtime);
	}
	for (size_t i = 0; i < p->nprefixes; i++) {
		const char *k = p->prefixes[i];
		size_t l = strlen(k);

		if (l > dl + 1 && !strncmp(k, dkey, dl) &&
		    visible(s, dkey, k + dl, l - dl - 1)) {
			s3b_cache_stub(s->b, k, "-", 0, s->b->started);
			(*nsub)++;
		}
	}
}

int s3b_dir_scan(struct backend_session *s, const char *dkey, uint32_t *nsub)
{
	uint64_t forgets = s3b_cache_forgets(s->b);
	struct s3_list_page p;
	char *token = NULL;
	int rc;

	*nsub = 0;
	do {
		rc = s3_http_list(s->fs->http, dkey, "/", token, 0, &p);
		free(token);
		token = NULL;
		if (rc)
			return rc;
		page_stub(s, dkey, &p, nsub);
		if (p.truncated && p.next_token)
			token = strdup(p.next_token);
		s3_http_list_free(&p);
	} while (token);
	s3b_cache_dir_complete(s->b, dkey, *nsub, forgets);
	return 0;
}

static int dir_list(struct backend_session *s, struct s3b_file *f)
{
	uint64_t forgets = s3b_cache_forgets(s->b);
	uint32_t nsub = 0;
	char dkey[S3_KEY_MAX + 1], *token = NULL, *dpath = NULL;
	struct s3_list_page p;
	size_t dl, cap = 0;
	int rc;

	ents_free(f);
	rc = s3b_node_key(s, f->node, dkey);
	if (rc)
		return rc;
	dl = strlen(dkey);
	do {
		rc = s3_http_list(s->fs->http, dkey, "/", token, 0, &p);
		free(token);
		token = NULL;
		if (rc)
			break;
		page_stub(s, dkey, &p, &nsub);
		for (size_t i = 0; i < p.nentries && !rc; i++) {
			const char *k = p.entries[i].key;

			if (!strncmp(k, dkey, dl) &&
			    visible(s, dkey, k + dl, strlen(k + dl)))
				rc = ents_add(f, &cap, k + dl, strlen(k + dl),
					      S_IFREG, &p.entries[i]);
		}
		for (size_t i = 0; i < p.nprefixes && !rc; i++) {
			const char *k = p.prefixes[i];
			size_t l = strlen(k);

			if (l > dl && !strncmp(k, dkey, dl) &&
			    visible(s, dkey, k + dl, l - dl - 1))
				rc = ents_add(f, &cap, k + dl, l - dl - 1,
					      S_IFDIR, NULL);
		}
		if (!rc && p.truncated && p.next_token)
			token = strdup(p.next_token);
		s3_http_list_free(&p);
	} while (!rc && token);
	free(token);
	pthread_mutex_lock(&s->lock);
	if (f->node->path)
		dpath = strdup(f->node->path);
	pthread_mutex_unlock(&s->lock);
	if (!rc && dpath)
		rc = add_staged(s, f, dpath, &cap);
	free(dpath);
	if (rc) {
		ents_free(f);
		return rc;
	}
	ents_unique(f);
	f->listed = true;
	s3b_cache_dir_complete(s->b, dkey, nsub, forgets);
	return 0;
}

/* ---- parallel HEADs of what the cache does not know ---------------------- */

struct heads {
	struct backend_session *s;
	char **keys;
	size_t n;
	size_t next; /* lock */
	pthread_mutex_t lock;
};

static void head_one(struct backend_session *s, const char *key)
{
	struct s3_obj_info *o = malloc(sizeof(*o));
	struct s3b_info i;
	size_t l = strlen(key);
	int rc;

	if (!o)
		return;
	rc = s3_http_head_object(s->fs->http, key, o);
	if (!rc) {
		s3b_meta_from_obj(o, &i);
		s3b_cache_put(s->b, key, &i);
		s3b_info_clear(&i);
	} else if (rc == -ENOENT && l && key[l - 1] == '/') {
		memset(&i, 0, sizeof(i));
		i.m.uid = i.m.gid = S3B_ID_NONE;
		i.lastmod = s->b->started;
		strcpy(i.etag, "-"); /* implied directory */
		s3b_cache_put(s->b, key, &i);
	} else if (rc == -ENOENT) {
		s3b_cache_neg(s->b, key);
	}
	free(o);
}

static void *heads_main(void *arg)
{
	struct heads *h = arg;
	size_t i;

	for (;;) {
		pthread_mutex_lock(&h->lock);
		i = h->next++;
		pthread_mutex_unlock(&h->lock);
		if (i >= h->n)
			break;
		head_one(h->s, h->keys[i]);
	}
	return NULL;
}

static void heads_run(struct backend_session *s, char **keys, size_t n)
{
	struct heads h = {.s = s, .keys = keys, .n = n};
	pthread_t t[S3B_HEAD_PARALLEL];
	size_t nt = 0;

	if (!n)
		return;
	pthread_mutex_init(&h.lock, NULL);
	while (nt < S3B_HEAD_PARALLEL - 1 && nt + 1 < n &&
	       !pthread_create(&t[nt], NULL, heads_main, &h))
		nt++;
	heads_main(&h);
	for (size_t i = 0; i < nt; i++)
		pthread_join(t[i], NULL);
	pthread_mutex_destroy(&h.lock);
}

/* ---- READDIRPLUS -------------------------------------------------------- */

/* Key of entry d of directory key dkey (with '/' for a directory). */
static int ent_key(const char *dkey, const struct s3b_dent *d, char *key)
{
	size_t dl = strlen(dkey), nl = strlen(d->name);
	size_t tl = dl + nl + (d->type == S_IFDIR);

	if (tl > S3_KEY_MAX)
		return -ENAMETOOLONG;
	memcpy(key, dkey, dl);
	memcpy(key + dl, d->name, nl);
	if (d->type == S_IFDIR)
		key[dl + nl++] = '/';
	key[dl + nl] = '\0';
	return 0;
}

/* Make sure the cache can answer for ents[from, to). */
static void warm(struct backend_session *s, struct s3b_file *f,
		 const char *dkey, size_t from, size_t to)
{
	char **keys = calloc(to - from + 1, sizeof(*keys));
	char key[S3_KEY_MAX + 1];
	size_t n = 0;

	if (!keys)
		return;
	for (size_t i = from; i < to; i++) {
		const struct s3b_dent *d = &f->ents[i];
		int known;

		if (ent_key(dkey, d, key))
			continue;
		if (d->type == S_IFDIR)
			known = s3b_cache_get(s->b, key, NULL, NULL) != 0;
		else if (d->has_obj)
			known = s3b_cache_get(s->b, key, d->etag, NULL) == 1;
		else
			known = 1; /* staged only */
		if (!known && !(keys[n] = strdup(key)))
			break;
		n += !known;
	}
	heads_run(s, keys, n);
	for (size_t i = 0; i < n; i++)
		free(keys[i]);
	free(keys);
}

/* Entry d's attributes and one lookup reference; -ENOENT: skip it. */
static int ent_fill(struct backend_session *s, struct s3b_file *f,
		    const char *dkey, const struct s3b_dent *d,
		    const struct proto_msg *req, struct proto_dirent *out)
{
	char key[S3_KEY_MAX + 1], *path = NULL;
	struct s3b_info i;
	mode_t type = d->type;
	uint32_t nsub = 0;
	uint64_t id;
	int rc = ent_key(dkey, d, key);

	if (rc)
		return -ENOENT;
	/* Subdirectories counted only where known: no LIST per entry. */
	if (type == S_IFDIR && s3b_cache_dir_count(s->b, key, &nsub) != 1)
		nsub = 0;
	memset(&i, 0, sizeof(i));
	rc = s3b_cache_get(s->b, key, NULL, &i);
	if (rc == -ENOENT && type == S_IFDIR) {
		i.m.uid = i.m.gid = S3B_ID_NONE; /* implied directory */
		i.lastmod = s->b->started;
	} else if (rc != 1) {
		return -ENOENT;
	}
	if (type != S_IFDIR &&
	    ((i.m.mode & S_IFMT) == S_IFLNK || (i.m.mode & S_IFMT) == S_IFIFO ||
	     (i.m.mode & S_IFMT) == S_IFSOCK))
		type = i.m.mode & S_IFMT;
	rc = s3b_child_key(s, f->node, d->name, false, key, &path);
	if (!rc)
		rc = s3b_node_ref(s, path, type, &id);
	if (!rc) {
		struct s3b_node *n = s3b_node_get(s, id);

		s3b_meta_attr(&out->attr, id, type, &i, req->uid, req->gid);
		if (type == S_IFDIR)
			out->attr.nlink = 2 + nsub;
		if (n && type == S_IFREG) {
			struct s3b_stage *sg = s3b_node_stage_pin(s, n);

			if (sg) {
				out->attr.size = s3b_stage_size(sg);
				s3b_node_stage_unpin(s, n);
			}
		}
		s3b_node_put(s, n);
	}
	s3b_info_clear(&i);
	return rc ? -ENOENT : 0;
}

static int dir_fill(struct backend_session *s, struct s3b_file *f,
		    const struct proto_msg *req, struct proto_msg *rep,
		    size_t cap)
{
	char dkey[S3_KEY_MAX + 1];
	size_t used = 0, n = 0, idx, end;
	struct proto_dirent *d = rep->dirents;
	int rc = s3b_node_key(s, f->node, dkey);

	if (rc)
		return rc;
	/* How many fit: decide first, then warm the cache for them. */
	for (end = req->off; end < f->nents + 2; end++) {
		const char *name =
		    end < 2 ? (end ? ".." : ".") : f->ents[end - 2].name;
		size_t size = DIRENTPLUS_SIZE(strlen(name));

		if (used + size > req->len || end - req->off == cap)
			break;
		used += size;
	}
	if (end > 2)
		warm(s, f, dkey, req->off > 2 ? req->off - 2 : 0, end - 2);
	for (idx = req->off; idx < end; idx++) {
		memset(&d[n], 0, sizeof(d[n]));
		if (idx < 2) {
			d[n].attr.mode = S_IFDIR;
			d[n].attr.ino = f->node->nodeid;
			d[n].name = strdup(idx ? ".." : ".");
		} else if (ent_fill(s, f, dkey, &f->ents[idx - 2], req,
				    &d[n])) {
			continue;
		} else {
			d[n].name = strdup(f->ents[idx - 2].name);
		}
		if (!d[n].name) {
			if (d[n].attr.nodeid)
				s3b_node_forget(s, d[n].attr.nodeid, 1);
			rc = n ? 0 : -ENOMEM;
			break;
		}
		d[n].off = idx + 1;
		n++;
	}
	rep->ndirents = n;
	return rc;
}

int s3b_dir_readdirplus(struct backend_session *s, const struct proto_msg *req,
			struct proto_msg *rep)
{
	struct s3b_file *f = s3b_file_get(s, req->fh, S3B_DIR);
	size_t cap;
	int rc = 0;

	if (!f)
		return -EBADF;
	cap = req->len / DIRENTPLUS_SIZE(1) + 1;
	if (cap > PROTO_MAX_DIRENTS)
		cap = PROTO_MAX_DIRENTS;
	rep->dirents = calloc(cap, sizeof(*rep->dirents));
	if (!rep->dirents) {
		rc = -ENOMEM;
		goto out;
	}
	pthread_mutex_lock(&f->dir_lock);
	pthread_rwlock_rdlock(&s->fs->ns);
	if (req->off == 0 || !f->listed)
		rc = dir_list(s, f);
	if (!rc && req->off < f->nents + 2)
		rc = dir_fill(s, f, req, rep, cap);
	pthread_rwlock_unlock(&s->fs->ns);
	pthread_mutex_unlock(&f->dir_lock);
	if (rc || !rep->ndirents) {
		free(rep->dirents);
		rep->dirents = NULL;
		rep->ndirents = 0;
	}
out:
	s3b_file_put(s, f);
	return rc;
}

int s3b_dir_releasedir(struct backend_session *s, const struct proto_msg *req,
		       struct proto_msg *rep)
{
	struct s3b_file *f = s3b_file_take(s, req->fh, S3B_DIR);

	if (!f)
		return -EBADF;
	s3b_file_put(s, f);
	return 0;
}

/* Directory changes reach S3 when they are made: nothing to sync. */
int s3b_dir_fsyncdir(struct backend_session *s, const struct proto_msg *req,
		     struct proto_msg *rep)
{
	struct s3b_file *f = s3b_file_get(s, req->fh, S3B_DIR);

	if (!f)
		return -EBADF;
	s3b_file_put(s, f);
	return 0;
}
