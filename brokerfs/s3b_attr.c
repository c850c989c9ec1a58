/*
 * s3b_attr.c - attributes in the s3 backend: SETATTR, extended attributes,
 * ACCESS and STATFS.
 *
 * In S3 changing a header means rewriting the object (a server-side
 * CopyObject onto itself), so chmod, chown, utimens and xattr changes are
 * coalesced: the metadata cache takes the new values at once (every later
 * GETATTR sees them) and one CopyObject REPLACE carries all of them later
 * (s3b_cache.c says when).  A file being written takes them into its stage
 * instead (s3b_stage_set_meta), and its upload carries them.  A size
 * change always goes through a stage.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "backend.h"
#include "proto.h"
#include "s3b.h"

#define XATTR_USER "user."

/* What is known of node n (HEAD on a miss); implied dirs get defaults. */
static int node_info(struct backend_session *s, struct s3b_node *n,
		     const char *key, struct s3b_info *i)
{
	struct s3_obj_info *o;
	int rc = s3b_cache_get(s->b, key, NULL, i);

	if (rc == 1)
		return 0;
	memset(i, 0, sizeof(*i));
	i->m.uid = i->m.gid = S3B_ID_NONE;
	i->lastmod = s->b->started;
	if (n->type == S_IFDIR && (rc == -ENOENT || n == s->root)) {
		strcpy(i->etag, "-");
		return 0;
	}
	if (rc == -ENOENT)
		return rc;
	o = malloc(sizeof(*o));
	if (!o)
		return -ENOMEM;
	rc = s3_http_head_object(s->fs->http, key, o);
	if (!rc) {
		s3b_meta_from_obj(o, i);
		s3b_cache_put(s->b, key, i);
	} else if (rc == -ENOENT && n->type == S_IFDIR) {
		strcpy(i->etag, "-");
		s3b_cache_put(s->b, key, i);
		rc = 0;
	}
	free(o);
	return rc;
}

/* Record new metadata for n: into its stage, a new marker, or the cache. */
static int meta_change(struct backend_session *s, struct s3b_node *n,
		       const char *key, const struct s3b_info *old,
		       const struct s3b_meta *m, const char *xattr)
{
	struct s3b_stage *sg;
	struct s3_kv kv[S3B_KV_MAX];
	char buf[S3B_KV_BUF];
	size_t nkv = s3b_meta_to_kv(m, xattr, kv, buf);
	int rc;

	if (n == s->root)
		return 0; /* the prefix itself has no object to carry it */
	sg = n->type == S_IFREG ? s3b_node_stage_pin(s, n) : NULL;
	if (sg) {
		rc = s3b_cache_set_meta(s->b, key, m, xattr, s->fs, false);
		if (!rc)
			rc = s3b_stage_set_meta(sg, kv, nkv);
		s3b_node_stage_unpin(s, n);
		return rc;
	}
	if (n->type == S_IFDIR && !strcmp(old->etag, "-")) {
		/* An implied directory gets its marker now. */
		struct s3_put_opts po = {
		    .meta = kv, .nmeta = nkv, .content_type = S3B_DIR_CTYPE};
		struct s3_body b = {.buf = "", .len = 0};
		struct s3b_info i = *old;
		char etag[S3_ETAG_MAX] = "";

		rc = s3_http_put_object(s->fs->http, key, &b, &po, etag);
		if (rc)
			return rc;
		i.m = *m;
		i.xattr = (char *)xattr;
		snprintf(i.etag, sizeof(i.etag), "%s", etag[0] ? etag : "?");
		s3b_cache_put(s->b, key, &i);
		return 0;
	}
	return s3b_cache_set_meta(s->b, key, m, xattr, s->fs, true);
}

static int set_size(struct backend_session *s, struct s3b_node *n,
		    const struct proto_msg *req, const char *key,
		    const struct s3b_info *i)
{
	struct s3b_file *f = NULL;
	struct s3b_stage *sg = NULL;
	struct s3b_base base = {.key = key, .etag = i->etag, .size = i->size};
	uint64_t size0, room;
	bool own = false;
	int rc, q;

	if (n->type == S_IFDIR)
		return -EISDIR;
	if (n->type != S_IFREG)
		return -EINVAL;
	if (req->attr.size > (uint64_t)INT64_MAX)
		return -EFBIG;
	if (req->fh)
		f = s3b_file_get(s, req->fh, S3B_FILE);
	if (f && f->node != n) {
		s3b_file_put(s, f);
		f = NULL;
	}
	sg = s3b_node_stage_pin(s, n);
	if (!sg) {
		rc = s3b_stage_get(s->b->store, s->fs->http, s->fs->fsid, &base,
				   &sg);
		if (rc)
			goto out;
		own = true;
	}
	q = s3b_quota_begin(s->fs, sg, &size0, &room);
	if (req->attr.size > size0 && room != UINT64_MAX &&
	    req->attr.size - size0 > room)
		rc = -EDQUOT;
	else {
		s3b_stage_note_writer(sg, s);
		rc = s3b_stage_truncate(sg, req->attr.size);
	}
	s3b_quota_end(s->fs, sg, size0, q);
	/* truncate(2) without an open file is durable when it returns. */
	if (!rc && !f)
		rc = s3b_data_flush_stage(s, n, sg);
out:
	if (own)
		s3b_stage_put(sg);
	else if (sg)
		s3b_node_stage_unpin(s, n);
	s3b_file_put(s, f);
	return rc;
}

static void set_ts(struct s3b_ts *t, int64_t sec, uint32_t nsec)
{
	t->sec = sec;
	t->nsec = nsec < 1000000000u ? nsec : 0;
	t->set = true;
}

static void apply_times(struct s3b_meta *m, const struct proto_msg *req)
{
	if (req->valid & PROTO_SET_ATIME_NOW)
		s3b_ts_now(&m->atime);
	else if (req->valid & PROTO_SET_ATIME)
		set_ts(&m->atime, req->attr.atime, req->attr.atime_ns);
	if (req->valid & PROTO_SET_MTIME_NOW)
		s3b_ts_now(&m->mtime);
	else if (req->valid & PROTO_SET_MTIME)
		set_ts(&m->mtime, req->attr.mtime, req->attr.mtime_ns);
}

/* The complete attribute set as shown, as headers to write back. */
static void full_meta(struct s3b_node *n, const struct s3b_info *i,
		      const struct proto_msg *req, struct s3b_meta *m)
{
	struct proto_attr a;

	s3b_meta_attr(&a, n->nodeid, n->type, i, req->uid, req->gid);
	*m = i->m;
	m->mode = a.mode;
	m->uid = a.uid;
	m->gid = a.gid;
	set_ts(&m->atime, a.atime, a.atime_ns);
	set_ts(&m->mtime, a.mtime, a.mtime_ns);
	set_ts(&m->ctime, a.ctime, a.ctime_ns);
}

static int setattr_apply(struct backend_session *s, struct s3b_node *n,
			 const struct proto_msg *req, const char *key)
{
	const unsigned meta_bits =
	    PROTO_SET_MODE | PROTO_SET_UID | PROTO_SET_GID | PROTO_SET_ATIME |
	    PROTO_SET_MTIME | PROTO_SET_ATIME_NOW | PROTO_SET_MTIME_NOW;
	struct s3b_info i;
	struct s3b_meta m;
	int rc = node_info(s, n, key, &i);

	if (rc)
		return rc;
	if (req->valid & PROTO_SET_SIZE) {
		rc = set_size(s, n, req, key, &i);
		if (rc)
			goto out;
	}
	if (!(req->valid & meta_bits))
		goto out;
	full_meta(n, &i, req, &m);
	if (req->valid & PROTO_SET_MODE)
		m.mode = (uint32_t)n->type | (req->attr.mode & 07777);
	if (req->valid & PROTO_SET_UID)
		m.uid = req->attr.uid;
	if (req->valid & PROTO_SET_GID)
		m.gid = req->attr.gid;
	apply_times(&m, req);
	if (req->valid & (PROTO_SET_MTIME | PROTO_SET_MTIME_NOW)) {
		pthread_mutex_lock(&s->lock);
		n->wrote = false; /* an explicit mtime wins over the writes */
		pthread_mutex_unlock(&s->lock);
	}
	s3b_ts_now(&m.ctime);
	rc = meta_change(s, n, key, &i, &m, i.xattr);
out:
	s3b_info_clear(&i);
	return rc;
}

/*
 * n's name was replaced or removed and no open file kept its object: the
 * guest's writeback cache still flushes the times of such an inode
 * (write_inode).  There is nothing left to store them in; answering
 * ENOENT would leave an error on the guest's superblock that fails every
 * later syncfs, so the change is taken and shown, not stored.
 */
static bool orphan_attr(struct backend_session *s, struct s3b_node *n,
			const struct proto_msg *req, struct proto_attr *a)
{
	struct s3b_info i;
	bool orphan;

	pthread_mutex_lock(&s->lock);
	orphan = !n->path && !n->hidden;
	pthread_mutex_unlock(&s->lock);
	if (!orphan)
		return false;
	memset(&i, 0, sizeof(i));
	s3b_meta_new(&i.m, n->type | (req->attr.mode & 07777), req->uid,
		     req->gid);
	if (req->valid & PROTO_SET_UID)
		i.m.uid = req->attr.uid;
	if (req->valid & PROTO_SET_GID)
		i.m.gid = req->attr.gid;
	apply_times(&i.m, req);
	if (req->valid & PROTO_SET_SIZE)
		i.size = req->attr.size;
	s3b_meta_attr(a, n->nodeid, n->type, &i, req->uid, req->gid);
	a->nlink = 0;
	return true;
}

int s3b_attr_setattr(struct backend_session *s, const struct proto_msg *req,
		     struct proto_msg *rep)
{
	struct s3b_node *n = s3b_node_get(s, req->ino);
	char key[S3_KEY_MAX + 1];
	int rc;

	if (!n)
		return -ESTALE;
	if ((req->valid & PROTO_SET_MODE) && n->type == S_IFLNK) {
		rc = -EOPNOTSUPP;
		goto out;
	}
	pthread_rwlock_rdlock(&s->fs->ns);
	rc = s3b_node_key(s, n, key);
	if (rc == -ENOENT && orphan_attr(s, n, req, &rep->attr)) {
		rc = 0;
		goto unlock;
	}
	if (!rc)
		rc = setattr_apply(s, n, req, key);
	if (!rc)
		rc = s3b_ns_attr(s, n, req, &rep->attr);
unlock:
	pthread_rwlock_unlock(&s->fs->ns);
out:
	s3b_node_put(s, n);
	return rc;
}

int s3b_attr_apply(struct backend_session *s, struct s3b_node *n)
{
	char key[S3_KEY_MAX + 1];
	int rc;

	pthread_rwlock_rdlock(&s->fs->ns);
	rc = s3b_node_key(s, n, key);
	if (!rc)
		rc = s3b_cache_apply(s->b, s->fs, key);
	pthread_rwlock_unlock(&s->fs->ns);
	return rc == -ENOENT ? 0 : rc;
}

/* ---- extended attributes: user.* only ----------------------------------- */

static int xattr_name_check(const char *name)
{
	size_t len;

	if (!name || !name[0])
		return -EINVAL;
	len = strnlen(name, PROTO_MAX_NAME + 1);
	if (len > PROTO_MAX_NAME)
		return -ERANGE;
	if (strncmp(name, XATTR_USER, strlen(XATTR_USER)) ||
	    len == strlen(XATTR_USER))
		return -EOPNOTSUPP;
	return 0;
}

/* Read-modify-write of x-amz-meta-xattr; value NULL removes. */
static int xattr_change(struct backend_session *s, const struct proto_msg *req,
			bool remove)
{
	struct s3b_node *n = s3b_node_get(s, req->ino);
	char key[S3_KEY_MAX + 1], *hdr = NULL;
	struct s3b_info i;
	struct s3b_meta m;
	int rc;

	if (!n)
		return -ESTALE;
	pthread_rwlock_rdlock(&s->fs->ns);
	rc = s3b_node_key(s, n, key);
	if (!rc)
		rc = node_info(s, n, key, &i);
	if (rc)
		goto out;
	rc = s3b_xside_load(s, key, &i);
	if (rc)
		goto out_info;
	if (remove)
		rc = s3b_xattr_remove(i.xattr, req->name, &hdr);
	else
		rc = s3b_xattr_set(i.xattr, req->name, req->data, req->data_len,
				   (int)req->flags, &hdr);
	if (!rc && n == s->root)
		rc = -EPERM;
	if (!rc) {
		full_meta(n, &i, req, &m);
		s3b_ts_now(&m.ctime);
		rc = s3b_xside_store(s, hdr, &m);
	}
	if (!rc)
		rc = meta_change(s, n, key, &i, &m, hdr);
out_info:
	free(hdr);
	s3b_info_clear(&i);
out:
	pthread_rwlock_unlock(&s->fs->ns);
	s3b_node_put(s, n);
	return rc;
}

int s3b_attr_setxattr(struct backend_session *s, const struct proto_msg *req,
		      struct proto_msg *rep)
{
	int rc = xattr_name_check(req->name);

	if (rc)
		return rc;
	if (req->flags & ~(unsigned)(XATTR_CREATE | XATTR_REPLACE))
		return -EINVAL;
	if (req->data_len > PROTO_MAX_XATTR)
		return -E2BIG;
	return xattr_change(s, req, false);
}

int s3b_attr_removexattr(struct backend_session *s, const struct proto_msg *req,
			 struct proto_msg *rep)
{
	int rc = xattr_name_check(req->name);

	return rc ? rc : xattr_change(s, req, true);
}

/* Read the xattr header of req->ino into *i. */
static int xattr_info(struct backend_session *s, const struct proto_msg *req,
		      struct s3b_info *i)
{
	struct s3b_node *n = s3b_node_get(s, req->ino);
	char key[S3_KEY_MAX + 1];
	int rc;

	if (!n)
		return -ESTALE;
	pthread_rwlock_rdlock(&s->fs->ns);
	rc = s3b_node_key(s, n, key);
	if (!rc)
		rc = node_info(s, n, key, i);
	if (!rc) {
		rc = s3b_xside_load(s, key, i);
		if (rc)
			s3b_info_clear(i);
	}
	pthread_rwlock_unlock(&s->fs->ns);
	s3b_node_put(s, n);
	return rc;
}

int s3b_attr_getxattr(struct backend_session *s, const struct proto_msg *req,
		      struct proto_msg *rep)
{
	size_t cap = req->len > PROTO_MAX_XATTR ? PROTO_MAX_XATTR : req->len;
	struct s3b_info i;
	void *buf = NULL;
	size_t len = 0;
	int rc = xattr_name_check(req->name);

	if (rc)
		return rc;
	rc = xattr_info(s, req, &i);
	if (rc)
		return rc;
	if (cap && !(buf = malloc(cap))) {
		rc = -ENOMEM;
		goto out;
	}
	rc = s3b_xattr_get(i.xattr, req->name, buf, cap, &len);
	if (rc)
		goto out;
	rep->len = len;
	if (cap) {
		rep->data = buf;
		rep->data_len = len;
		rep->data_owned = buf;
		buf = NULL;
	}
out:
	free(buf);
	s3b_info_clear(&i);
	return rc;
}

int s3b_attr_listxattr(struct backend_session *s, const struct proto_msg *req,
		       struct proto_msg *rep)
{
	size_t cap = req->len > PROTO_MAX_XATTR ? PROTO_MAX_XATTR : req->len;
	struct s3b_info i;
	char *buf = NULL;
	size_t len = 0;
	int rc = xattr_info(s, req, &i);

	if (rc)
		return rc;
	if (cap && !(buf = malloc(cap))) {
		rc = -ENOMEM;
		goto out;
	}
	rc = s3b_xattr_list(i.xattr, buf, cap, &len);
	if (rc)
		goto out;
	rep->len = len;
	if (cap) {
		rep->data = (const uint8_t *)buf;
		rep->data_len = len;
		rep->data_owned = buf;
		buf = NULL;
	}
out:
	free(buf);
	s3b_info_clear(&i);
	return rc;
}

/* ---- access, statfs ----------------------------------------------------- */

/* As the local backend: the client kernel checks permissions. */
int s3b_attr_access(struct backend_session *s, const struct proto_msg *req,
		    struct proto_msg *rep)
{
	struct s3b_node *n = s3b_node_get(s, req->ino);
	int rc = 0;

	if (!n)
		return -ESTALE;
	if ((req->mode & W_OK) && (s->flags & BACKEND_SESSION_RDONLY))
		rc = -EROFS;
	s3b_node_put(s, n);
	return rc;
}

/* A bucket has no size: large round numbers that df shows sanely. */
int s3b_attr_statfs(struct backend_session *s, const struct proto_msg *req,
		    struct proto_msg *rep)
{
	rep->st.bsize = 4096;
	rep->st.frsize = 4096;
	rep->st.blocks = UINT64_C(1) << 38; /* 1 PiB */
	rep->st.bfree = rep->st.blocks;
	rep->st.bavail = rep->st.blocks;
	rep->st.files = UINT64_C(1) << 32;
	rep->st.ffree = rep->st.files;
	rep->st.favail = rep->st.files;
	rep->st.namemax = PROTO_MAX_NAME;
	s3b_quota_statfs(s->fs, rep); /* a quota is the size, if one is set */
	return 0;
}
