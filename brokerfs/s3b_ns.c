/*
 * s3b_ns.c - names in the s3 backend: lookup, attributes, directories,
 * symlinks, removal and rename.
 *
 * A name is a file or symlink when the object <key> exists, a directory
 * when the marker <key>/ exists or anything at all lies below <key>/ (a
 * directory another tool made only by writing files into it, as s3fs
 * accepts).  The cache answers first; a miss costs a HEAD of <key> and a
 * LIST of <key>/ with max-keys 1 (which also shows a marker), both
 * remembered, the absences for S3B_NEG_TTL_MS.
 *
 * Every operation here holds the filesystem's namespace lock shared;
 * RENAME holds it exclusively, so a guest never sees half a rename.  A
 * rename copies server-side (CopyObject with the source's ETag as
 * precondition), then deletes the sources: no data passes through the
 * broker.  A file being written is uploaded first, then its stage follows
 * the new key (s3b_stage_set_key).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "proto.h"
#include "s3b.h"

#define IMPLIED_ETAG "-" /* a directory that has no marker object */

/* What a non-directory object is: s3fs's mode header says. */
static mode_t type_of(const struct s3b_info *i)
{
	mode_t t = i->m.mode & S_IFMT;

	return t == S_IFLNK || t == S_IFIFO || t == S_IFSOCK ? t : S_IFREG;
}

static int head_into(struct backend_session *s, const char *key,
		     struct s3b_info *i)
{
	struct s3_obj_info *o = malloc(sizeof(*o));
	int rc;

	if (!o)
		return -ENOMEM;
	rc = s3_http_head_object(s->fs->http, key, o);
	if (!rc) {
		s3b_meta_from_obj(o, i);
		s3b_cache_put(s->b, key, i);
	} else if (rc == -ENOENT) {
		s3b_cache_neg(s->b, key);
	}
	free(o);
	return rc;
}

/* The filesystem root belongs to root unless its marker says otherwise. */
static void root_defaults(struct backend_session *s, const char *dkey,
			  struct s3b_info *i)
{
	if (strcmp(dkey, s->fs->root))
		return;
	if (i->m.uid == S3B_ID_NONE)
		i->m.uid = 0;
	if (i->m.gid == S3B_ID_NONE)
		i->m.gid = 0;
}

int s3b_ns_dir_info(struct backend_session *s, const char *dkey,
		    struct s3b_info *i)
{
	int rc = s3b_cache_get(s->b, dkey, NULL, i);

	if (rc == 1)
		goto out;
	memset(i, 0, sizeof(*i));
	i->m.uid = i->m.gid = S3B_ID_NONE;
	i->lastmod = s->b->started;
	if (rc == -ENOENT) {
		snprintf(i->etag, sizeof(i->etag), IMPLIED_ETAG);
		goto out;
	}
	rc = head_into(s, dkey, i);
	if (rc == -ENOENT) {
		memset(i, 0, sizeof(*i));
		i->m.uid = i->m.gid = S3B_ID_NONE;
		i->lastmod = s->b->started;
		snprintf(i->etag, sizeof(i->etag), IMPLIED_ETAG);
		s3b_cache_put(s->b, dkey, i);
	} else if (rc) {
		return rc;
	}
out:
	root_defaults(s, dkey, i);
	return 0;
}

static int dir_info(struct backend_session *s, const char *dkey,
		    struct s3b_info *i)
{
	return s3b_ns_dir_info(s, dkey, i);
}

void s3b_ns_inherit(struct backend_session *s, struct s3b_node *p,
		    struct s3b_meta *m)
{
	char dkey[S3_KEY_MAX + 1];
	struct s3b_info i;

	if (s3b_node_key(s, p, dkey) || dir_info(s, dkey, &i))
		return;
	if (i.m.mode & S_ISGID) {
		if (i.m.gid != S3B_ID_NONE)
			m->gid = i.m.gid;
		if (S_ISDIR(m->mode))
			m->mode |= S_ISGID;
	}
	s3b_info_clear(&i);
}

void s3b_ns_dir_changed(struct backend_session *s, struct s3b_node *p)
{
	char dkey[S3_KEY_MAX + 1];
	struct s3b_info i;
	bool implied;

	if (s3b_node_key(s, p, dkey) || dir_info(s, dkey, &i))
		return;
	s3b_ts_now(&i.m.mtime);
	i.m.ctime = i.m.mtime;
	/* An implied directory (the root, usually) has no marker to carry
	 * it: the cache alone shows the change. */
	implied = !strcmp(i.etag, IMPLIED_ETAG);
	s3b_cache_set_meta(s->b, dkey, &i.m, i.xattr, s->fs, !implied);
	s3b_info_clear(&i);
}

/* st_nlink of directory dkey: 2 + its subdirectories (scan: list it if
 * that is not known yet; else 2 stands for "not counted"). */
static uint32_t dir_nlink(struct backend_session *s, const char *dkey,
			  bool scan)
{
	uint32_t nsub = 0;

	if (s3b_cache_dir_count(s->b, dkey, &nsub) == 1)
		return 2 + nsub;
	if (scan && !s3b_dir_scan(s, dkey, &nsub))
		return 2 + nsub;
	return 2;
}

/* Is there anything below dkey (a marker counts)?  1 yes, 0 no. */
static int any_below(struct backend_session *s, const char *dkey,
		     bool marker_counts)
{
	struct s3_list_page p;
	int rc = s3_http_list(s->fs->http, dkey, "/", NULL, 2, &p);

	if (rc)
		return rc;
	rc = p.nprefixes > 0;
	for (size_t i = 0; i < p.nentries && !rc; i++)
		if (marker_counts || strcmp(p.entries[i].key, dkey))
			rc = 1;
	s3_http_list_free(&p);
	return rc;
}

int s3b_ns_stat(struct backend_session *s, const char *key, mode_t *type,
		struct s3b_info *i)
{
	char dkey[S3_KEY_MAX + 2];
	int rf, rd;

	memset(i, 0, sizeof(*i));
	rf = s3b_cache_get(s->b, key, NULL, i);
	if (rf == 1) {
		*type = type_of(i);
		return 0;
	}
	if (snprintf(dkey, sizeof(dkey), "%s/", key) > S3_KEY_MAX)
		return -ENAMETOOLONG;
	rd = s3b_cache_get(s->b, dkey, NULL, i);
	if (rd == 1) {
		*type = S_IFDIR;
		return dir_info(s, dkey, i); /* the root's defaults */
	}
	if (rf == -ENOENT && rd == -ENOENT)
		return -ENOENT;
	/* A directory listed whole, or made here, knows all its names. */
	if (s3b_cache_absent(s->b, key))
		return -ENOENT;
	if (rf == 0) {
		rf = head_into(s, key, i);
		if (!rf) {
			*type = type_of(i);
			return 0;
		}
		if (rf != -ENOENT)
			return rf;
	}
	if (rd == 0) {
		rd = any_below(s, dkey, true);
		if (rd < 0)
			return rd;
		if (rd == 0) {
			s3b_cache_neg(s->b, dkey);
			return -ENOENT;
		}
		*type = S_IFDIR;
		return dir_info(s, dkey, i);
	}
	return -ENOENT;
}

int s3b_ns_attr(struct backend_session *s, struct s3b_node *n,
		const struct proto_msg *req, struct proto_attr *a)
{
	char key[S3_KEY_MAX + 1];
	struct s3b_info i;
	struct s3b_stage *sg;
	int rc;

	memset(&i, 0, sizeof(i));
	rc = s3b_node_key(s, n, key);
	if (rc)
		return rc;
	if (n->type == S_IFDIR) {
		rc = dir_info(s, key, &i);
	} else {
		rc = s3b_cache_get(s->b, key, NULL, &i);
		rc = rc == 1 ? 0 : rc == 0 ? head_into(s, key, &i) : rc;
	}
	if (rc)
		return rc;
	s3b_meta_attr(a, n->nodeid, n->type, &i, req->uid, req->gid);
	if (n->type == S_IFDIR)
		a->nlink = dir_nlink(s, key, true);
	pthread_mutex_lock(&s->lock);
	if (!n->path)
		a->nlink = 0; /* unlinked, still open */
	pthread_mutex_unlock(&s->lock);
	sg = n->type == S_IFREG ? s3b_node_stage_pin(s, n) : NULL;
	if (sg) {
		a->size = s3b_stage_size(sg);
		a->blocks = (a->size + 511) / 512;
		s3b_node_stage_unpin(s, n);
	}
	s3b_info_clear(&i);
	return 0;
}

/*
 * The parent directory's attributes for an entry operation's reply
 * (feature PATTR), as GETATTR of it would give them now, but only from
 * the cache: when its entry or its subdirectory count is not cached the
 * reply goes without them rather than wait on S3 for an optimisation.
 */
void s3b_ns_pattr(struct backend_session *s, const struct proto_msg *req,
		  struct proto_msg *rep)
{
	char key[S3_KEY_MAX + 1];
	struct s3b_node *n;
	struct s3b_info i;
	uint32_t nsub;

	if (s3b_node_get_dir(s, req->op == PROTO_OP_LINK ? req->ino2 : req->ino,
			     &n))
		return;
	if (!s3b_node_key(s, n, key) &&
	    s3b_cache_get(s->b, key, NULL, &i) == 1) {
		if (s3b_cache_dir_count(s->b, key, &nsub) == 1) {
			root_defaults(s, key, &i);
			s3b_meta_attr(&rep->pattr, n->nodeid, S_IFDIR, &i,
				      req->uid, req->gid);
			rep->pattr.nlink = 2 + nsub;
			rep->has_pattr = 1;
		}
		s3b_info_clear(&i);
	}
	s3b_node_put(s, n);
}

int s3b_ns_lookup(struct backend_session *s, const struct proto_msg *req,
		  struct proto_msg *rep)
{
	char key[S3_KEY_MAX + 2];
	struct s3b_node *p;
	struct s3b_info i;
	char *path = NULL;
	mode_t type = 0;
	int rc;

	rc = s3b_node_get_dir(s, req->ino, &p);
	if (rc)
		return rc;
	pthread_rwlock_rdlock(&s->fs->ns);
	rc = s3b_child_key(s, p, req->name, false, key, &path);
	if (!rc)
		rc = s3b_ns_stat(s, key, &type, &i);
	if (!rc) {
		uint64_t id;

		rc = s3b_node_ref(s, path, type, &id);
		path = NULL;
		if (!rc) {
			struct s3b_node *n = s3b_node_get(s, id);

			s3b_meta_attr(&rep->attr, id, type, &i, req->uid,
				      req->gid);
			if (type == S_IFDIR) {
				strcat(key, "/");
				rep->attr.nlink = dir_nlink(s, key, true);
			}
			if (n && type == S_IFREG) {
				struct s3b_stage *sg = s3b_node_stage_pin(s, n);

				if (sg) {
					rep->attr.size = s3b_stage_size(sg);
					s3b_node_stage_unpin(s, n);
				}
			}
			s3b_node_put(s, n);
		}
		s3b_info_clear(&i);
	}
	pthread_rwlock_unlock(&s->fs->ns);
	free(path);
	s3b_node_put(s, p);
	return rc == -EPERM ? -ENOENT : rc;
}

/* No network: pending metadata of a forgotten node goes with the flusher. */
int s3b_ns_forget(struct backend_session *s, const struct proto_msg *req,
		  struct proto_msg *rep)
{
	s3b_node_forget(s, req->ino, req->len);
	return 0;
}

int s3b_ns_getattr(struct backend_session *s, const struct proto_msg *req,
		   struct proto_msg *rep)
{
	struct s3b_node *n = s3b_node_get(s, req->ino);
	int rc;

	if (!n)
		return -ESTALE;
	pthread_rwlock_rdlock(&s->fs->ns);
	rc = s3b_ns_attr(s, n, req, &rep->attr);
	pthread_rwlock_unlock(&s->fs->ns);
	s3b_node_put(s, n);
	return rc;
}

int s3b_ns_readlink(struct backend_session *s, const struct proto_msg *req,
		    struct proto_msg *rep)
{
	struct s3b_node *n = s3b_node_get(s, req->ino);
	char key[S3_KEY_MAX + 1];
	struct s3_sink sink;
	char *buf = NULL;
	size_t got = 0;
	int rc;

	if (!n)
		return -ESTALE;
	if (n->type != S_IFLNK) {
		rc = -EINVAL;
		goto out;
	}
	rc = s3b_node_key(s, n, key);
	if (rc)
		goto out;
	buf = malloc(PROTO_MAX_TARGET + 1);
	if (!buf) {
		rc = -ENOMEM;
		goto out;
	}
	sink = (struct s3_sink){.buf = buf, .cap = PROTO_MAX_TARGET + 1};
	rc =
	    s3_http_get_object(s->fs->http, key, 0, 0, &sink, NULL, &got, NULL);
	if (rc == -EOVERFLOW || (!rc && got > PROTO_MAX_TARGET))
		rc = -ENAMETOOLONG;
	if (rc)
		goto out;
	rep->data = (const uint8_t *)buf;
	rep->data_len = got;
	rep->data_owned = buf;
	buf = NULL;
out:
	free(buf);
	s3b_node_put(s, n);
	return rc;
}

/* ---- creation ----------------------------------------------------------- */

/*
 * PUT a new object (a marker for a directory) named req->name below
 * req->ino with body, then make its node.  Namespace lock held by caller.
 */
static int make_object(struct backend_session *s, const struct proto_msg *req,
		       struct proto_msg *rep, mode_t type, const char *body)
{
	char key[S3_KEY_MAX + 2], etag[S3_ETAG_MAX] = "", buf[S3B_KV_BUF];
	struct s3b_info i, old;
	struct s3_kv kv[S3B_KV_MAX];
	struct s3b_node *p;
	struct s3_put_opts po = {.meta = NULL};
	struct s3_body b = {.buf = body ? body : "",
			    .len = body ? strlen(body) : 0};
	char *path = NULL;
	bool took = false;
	uint64_t id, forgets = s3b_cache_forgets(s->b);
	mode_t ot;
	int rc;

	rc = s3b_node_get_dir(s, req->ino, &p);
	if (rc)
		return rc;
	rc = s3b_child_key(s, p, req->name, false, key, &path);
	if (rc)
		goto out;
	rc = s3b_ns_stat(s, key, &ot, &old);
	if (!rc) {
		s3b_info_clear(&old);
		rc = -EEXIST;
		goto out;
	}
	if (rc != -ENOENT)
		goto out;
	rc = s3b_quota_take(s->fs, b.len);
	if (rc)
		goto out;
	took = true;
	if (type == S_IFDIR)
		strcat(key, "/");
	memset(&i, 0, sizeof(i));
	s3b_meta_new(&i.m,
		     type | (type == S_IFLNK ? 0777 : (req->mode & 07777)),
		     req->uid, req->gid);
	s3b_ns_inherit(s, p, &i.m);
	po.meta = kv;
	po.nmeta = s3b_meta_to_kv(&i.m, NULL, kv, buf);
	po.content_type = type == S_IFDIR ? S3B_DIR_CTYPE : S3B_FILE_CTYPE;
	rc = s3_http_put_object(s->fs->http, key, &b, &po, etag);
	if (rc)
		goto out;
	took = false; /* the object exists: it stays counted */
	snprintf(i.etag, sizeof(i.etag), "%s", etag[0] ? etag : "?");
	i.size = b.len;
	i.lastmod = i.m.mtime.sec;
	s3b_cache_put(s->b, key, &i);
	if (type == S_IFDIR) {
		/* Nothing lies below a directory made here (we checked),
		 * and only this broker writes the prefix. */
		s3b_cache_dir_complete(s->b, key, 0, forgets);
		s3b_cache_dir_adjust(s->b, key, 1);
	}
	s3b_ns_dir_changed(s, p);
	rc = s3b_node_ref(s, path, type, &id);
	path = NULL;
	if (!rc)
		s3b_meta_attr(&rep->attr, id, type, &i, req->uid, req->gid);
out:
	if (took)
		s3b_quota_give(s->fs, b.len, 1);
	free(path);
	s3b_node_put(s, p);
	return rc;
}

static int make_locked(struct backend_session *s, const struct proto_msg *req,
		       struct proto_msg *rep, mode_t type, const char *body)
{
	int rc;

	pthread_rwlock_rdlock(&s->fs->ns);
	rc = make_object(s, req, rep, type, body);
	pthread_rwlock_unlock(&s->fs->ns);
	return rc;
}

int s3b_ns_mkdir(struct backend_session *s, const struct proto_msg *req,
		 struct proto_msg *rep)
{
	return make_locked(s, req, rep, S_IFDIR, NULL);
}

/*
 * Regular files, fifos and sockets, as s3fs stores them: empty objects
 * whose type is in x-amz-meta-mode.  Devices are refused (EPERM): a guest
 * has no business making them on shared storage.
 */
int s3b_ns_mknod(struct backend_session *s, const struct proto_msg *req,
		 struct proto_msg *rep)
{
	mode_t type = req->mode & S_IFMT;

	if (!type)
		type = S_IFREG;
	if (type != S_IFREG && type != S_IFIFO && type != S_IFSOCK)
		return -EPERM;
	return make_locked(s, req, rep, type, NULL);
}

int s3b_ns_symlink(struct backend_session *s, const struct proto_msg *req,
		   struct proto_msg *rep)
{
	size_t len;

	if (!req->name2)
		return -EINVAL;
	len = strnlen(req->name2, PROTO_MAX_TARGET + 1);
	if (!len)
		return -ENOENT;
	if (len > PROTO_MAX_TARGET)
		return -ENAMETOOLONG;
	return make_locked(s, req, rep, S_IFLNK, req->name2);
}

int s3b_ns_link(struct backend_session *s, const struct proto_msg *req,
		struct proto_msg *rep)
{
	log_info("s3: fsid %s: hard link refused (objects have one name)",
		 s->fs->fsid);
	return -EPERM;
}

/* ---- removal ------------------------------------------------------------ */

/*
 * Drop the staged data of path and everything below it; *size becomes the
 * staged size of path itself when it has a stage here.
 */
static void discard_below(struct backend_session *s, const char *path,
			  uint64_t *size)
{
	struct s3b_node **v;

	if (s3b_node_stages_below(s, path, &v))
		return;
	for (size_t i = 0; v[i]; i++) {
		if (v[i]->path && !strcmp(v[i]->path, path))
			*size = s3b_stage_size(v[i]->stage);
		s3b_stage_discard(v[i]->stage);
		s3b_node_stage_unpin(s, v[i]);
		s3b_node_put(s, v[i]);
	}
	free(v);
}

static int remove_entry(struct backend_session *s, const struct proto_msg *req,
			bool dir)
{
	char key[S3_KEY_MAX + 2], xside[S3B_XSIDE_LEN] = "";
	struct s3b_node *p;
	struct s3b_info i;
	char *path = NULL;
	uint64_t size = 0;
	bool fenced = false;
	mode_t type;
	int rc;

	rc = s3b_node_get_dir(s, req->ino, &p);
	if (rc)
		return rc;
	pthread_rwlock_rdlock(&s->fs->ns);
	rc = s3b_child_key(s, p, req->name, false, key, &path);
	if (!rc)
		rc = s3b_ns_stat(s, key, &type, &i);
	if (rc)
		goto out;
	size = type == S_IFDIR ? 0 : i.size;
	memcpy(xside, i.m.xside, sizeof(xside));
	s3b_info_clear(&i);
	if (dir && type != S_IFDIR) {
		rc = -ENOTDIR;
		goto out;
	}
	if (!dir && type == S_IFDIR) {
		rc = -EISDIR;
		goto out;
	}
	if (dir)
		strcat(key, "/");
	rc = s3b_cache_fence(s->b, key);
	if (rc)
		goto out;
	fenced = true;
	if (dir) {
		struct s3b_node **v;

		rc = any_below(s, key, false);
		if (rc > 0)
			rc = -ENOTEMPTY;
		if (!rc && !s3b_node_stages_below(s, path, &v)) {
			for (size_t k = 0; v[k]; k++) {
				s3b_node_stage_unpin(s, v[k]);
				s3b_node_put(s, v[k]);
				rc = -ENOTEMPTY; /* a new file being written */
			}
			free(v);
		}
		if (rc)
			goto out;
	} else {
		rc = s3b_hidden_unlink(s, path, key);
		if (rc < 0)
			goto out;
		if (rc == 1) {
			s3b_quota_give(s->fs, size, 1);
			s3b_ns_dir_changed(s, p);
			rc = 0;
			goto out;
		}
		discard_below(s, path, &size);
		s3b_store_discard_key(s->b->store, s->fs->fsid, key);
	}
	rc = s3_http_delete_object(s->fs->http, key);
	/* A file never uploaded was counted at CREATE; an implied
	 * directory never was. */
	if (!rc || (rc == -ENOENT && !dir))
		s3b_quota_give(s->fs, size, 1);
	if (rc == -ENOENT)
		rc = 0; /* an implied directory, or a file never uploaded */
	if (rc)
		goto out;
	s3b_xside_drop(s, xside);
	s3b_cache_neg(s->b, key);
	if (dir)
		s3b_cache_dir_adjust(s->b, key, -1);
	s3b_ns_dir_changed(s, p);
	s3b_node_detach(s, path);
out:
	if (fenced)
		s3b_cache_unfence(s->b, key);
	pthread_rwlock_unlock(&s->fs->ns);
	free(path);
	s3b_node_put(s, p);
	return rc;
}

int s3b_ns_unlink(struct backend_session *s, const struct proto_msg *req,
		  struct proto_msg *rep)
{
	return remove_entry(s, req, false);
}

int s3b_ns_rmdir(struct backend_session *s, const struct proto_msg *req,
		 struct proto_msg *rep)
{
	return remove_entry(s, req, true);
}
