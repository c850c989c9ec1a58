/*
 * s3b_data.c - open files of the s3 backend: OPEN, CREATE, READ, WRITE,
 * FLUSH, FSYNC, RELEASE, FALLOCATE, LSEEK, COPY_FILE_RANGE.
 *
 * A file opened for writing gets the node's stage (s3b_stage.h), shared by
 * every writer of that node; all writes, truncation and reads of that node
 * go through it until the last writer closes.  A file nobody writes is
 * read with ranged GETs, sequential reads from read-ahead windows tied to
 * the object's ETag (s3b_ra.h) and dropped with the file.  CREATE makes a
 * stage for an object that does not exist yet, so create, write and close
 * is one PUT.
 *
 * FLUSH (every close) and FSYNC return only once s3b_stage_flush has the
 * object in S3, and return its error: -ESTALE when another writer changed
 * the object since this stage's base, the data staying staged.  RELEASE
 * uploads what is still dirty and drops the stage.  -EACCES: DLP blocked
 * the upload (s3b_stage_dlp.c); the stage went to the quarantine and the
 * file is again what S3 holds (nothing, for a new file).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "proto.h"
#include "s3b.h"
#include "s3b_ra.h"

#define OPEN_KEEP (O_ACCMODE | O_APPEND | O_TRUNC | O_SYNC | O_DSYNC)

/*
 * Keep-cache.  An OPEN answered without PROTO_OPEN_KEEP_CACHE makes the
 * guest kernel drop the file's page cache; git reads each loose object
 * twice, and tar and git read back what they just wrote.  The node
 * records which object version the guest's cache can hold (kc_*): the
 * one S3 had at the last open that dropped the cache, moved on by this
 * session's own uploads when nobody else wrote the stage (the guest wrote
 * those bytes itself), and forgotten when a READ got bytes of another
 * version.  An open keeps the cache only when that version is still the
 * one the metadata cache has, no stage holds newer bytes, and S3
 * confirmed it (a GET or this session's upload) within S3B_KC_TTL_MS: a
 * change made behind the broker is seen by an open at most that long
 * later, as the guest's attribute timeout already allows.
 */
static bool kc_open(struct backend_session *s, struct s3b_node *n,
		    const char *key)
{
	char etag[S3_ETAG_MAX] = "";
	struct s3b_stage *sg;
	struct s3b_info i;
	bool known = false, keep;
	uint64_t now = s3b_clock_ms();

	if (s3b_cache_get(s->b, key, NULL, &i) == 1) {
		known = i.etag[0] != '\0';
		memcpy(etag, i.etag, sizeof(etag));
		s3b_info_clear(&i);
	}
	if (known && !s3b_stage_lookup(s->b->store, s->fs->fsid, key, &sg)) {
		s3b_stage_put(sg); /* bytes not in S3, or a writer at work */
		known = false;
	}
	pthread_mutex_lock(&s->lock);
	known = known && !n->stage;
	keep = known && n->kc_known && n->kc_ms && now >= n->kc_ms &&
	       now - n->kc_ms <= S3B_KC_TTL_MS && !strcmp(n->kc_etag, etag);
	if (!keep) {
		n->kc_known = known;
		memcpy(n->kc_etag, etag, sizeof(etag));
		n->kc_ms = 0;
	}
	pthread_mutex_unlock(&s->lock);
	return keep;
}

/* A READ got bytes of version src ("": nothing S3 told). */
static void kc_read(struct backend_session *s, struct s3b_node *n,
		    const char *src)
{
	if (!*src)
		return;
	pthread_mutex_lock(&s->lock);
	if (n->kc_known && !strcmp(n->kc_etag, src))
		n->kc_ms = s3b_clock_ms();
	else
		n->kc_known = false; /* the guest may hold two versions */
	pthread_mutex_unlock(&s->lock);
}

/* This session uploaded sg as etag; sole: only it changed the bytes. */
static void kc_uploaded(struct backend_session *s, struct s3b_node *n,
			bool sole, const char *base, const char *etag)
{
	pthread_mutex_lock(&s->lock);
	if (sole && n->kc_known && !strcmp(n->kc_etag, base) && *etag) {
		snprintf(n->kc_etag, sizeof(n->kc_etag), "%s", etag);
		n->kc_ms = s3b_clock_ms();
	} else {
		n->kc_known = false;
	}
	pthread_mutex_unlock(&s->lock);
}

/* Upload sg as key with the metadata cached for it (key fenced). */
static int upload_fenced(struct backend_session *s, struct s3b_node *n,
			 struct s3b_stage *sg, const char *key, bool wrote)
{
	char etag[S3_ETAG_MAX] = "", base[S3_ETAG_MAX];
	struct s3b_info i;
	uint64_t gen = 0;
	bool sole;
	int rc;

	if (s3b_cache_get(s->b, key, NULL, &i) == 1) {
		if (wrote) {
			s3b_ts_now(&i.m.mtime);
			i.m.ctime = i.m.mtime;
		}
		rc = s3b_meta_to_stage(sg, &i.m, i.xattr);
		if (!rc)
			rc = s3b_cache_set_meta(s->b, key, &i.m, i.xattr, s->fs,
						false);
		gen = i.gen + 1; /* that set_meta's */
		s3b_info_clear(&i);
		if (rc)
			return rc;
	}
	sole = s3b_stage_sole_writer(sg, s, base);
	rc = s3b_stage_flush(sg, etag);
	if (rc == -EKEYEXPIRED && !s3b_fs_cred(s->b, s->fs, true))
		rc = s3b_stage_flush(sg, etag);
	if (rc) /* the guest holds bytes S3 does not (DLP: never will) */
		kc_uploaded(s, n, false, "", "");
	if (rc == -EACCES) {
		/* DLP blocked it (logged, quarantined): what S3 holds is
		 * the file again, so the cache forgets the staged size. */
		s3b_cache_drop(s->b, key);
		return rc;
	}
	if (rc) {
		log_warn("s3: fsid %s: upload of %s failed: %s", s->fs->fsid,
			 key, strerror(-rc));
		/* the data stays staged: stat shows its size, not S3's */
		if (s3b_cache_get(s->b, key, NULL, &i) == 1) {
			i.size = s3b_stage_size(sg);
			s3b_cache_put(s->b, key, &i);
			s3b_info_clear(&i);
		}
		return rc;
	}
	s3b_cache_uploaded(s->b, key, etag, s3b_stage_size(sg), gen, s->fs);
	kc_uploaded(s, n, sole, base, etag);
	pthread_mutex_lock(&s->lock);
	n->wrote = false;
	pthread_mutex_unlock(&s->lock);
	return 0;
}

int s3b_data_flush_stage(struct backend_session *s, struct s3b_node *n,
			 struct s3b_stage *sg)
{
	char key[S3_KEY_MAX + 1], now[S3_KEY_MAX + 1];
	bool wrote, gone, hidden;
	int rc;

	/*
	 * No metadata copy of the key may overlap the upload (s3b_cache.c).
	 * What the node is gets decided with the fence held: an unlink or a
	 * rename this waited for may have moved or dropped it meanwhile.
	 */
	for (;;) {
		rc = s3b_node_key(s, n, key);
		if (rc == -ENOENT)
			key[0] = '\0'; /* removed: no key to fence */
		else if (rc)
			return rc;
		if (key[0] && (rc = s3b_cache_fence(s->b, key)))
			return rc;
		pthread_mutex_lock(&s->lock);
		hidden = !n->path && n->hidden;
		gone = !n->path && !n->hidden;
		wrote = n->wrote;
		pthread_mutex_unlock(&s->lock);
		if (hidden || gone || !key[0])
			break;
		rc = s3b_node_key(s, n, now);
		if (!rc && !strcmp(key, now))
			break;
		s3b_cache_unfence(s->b, key);
		if (rc && rc != -ENOENT)
			return rc;
	}
	if (hidden)
		rc = 0; /* unlinked, still open: kept staged until the end */
	else if (gone || !key[0])
		s3b_stage_discard(sg); /* its name was replaced or removed */
	else if (!s3b_stage_dirty(sg))
		rc = 0;
	else
		rc = upload_fenced(s, n, sg, key, wrote);
	if (key[0])
		s3b_cache_unfence(s->b, key);
	return rc;
}

/* Give n a stage (or share the one it has); base from what S3 holds. */
static int attach_stage(struct backend_session *s, struct s3b_node *n,
			const char *key, const char *etag, uint64_t size)
{
	struct s3b_base base = {
	    .key = key, .etag = etag && *etag ? etag : NULL, .size = size};
	struct s3b_stage *sg;
	int rc;

	if (s3b_node_stage_pin(s, n))
		return 0;
	rc = s3b_stage_get(s->b->store, s->fs->http, s->fs->fsid, &base, &sg);
	if (rc)
		return rc;
	pthread_mutex_lock(&s->lock);
	if (n->stage) {
		n->stage_users++;
	} else {
		n->stage = sg;
		n->stage_users = 1;
		sg = NULL;
	}
	pthread_mutex_unlock(&s->lock);
	if (sg)
		s3b_stage_put(sg);
	return 0;
}

/* Register an open file on n (its reference passes to the file). */
static int file_open(struct backend_session *s, struct s3b_node *n, int fl,
		     uint64_t *fh)
{
	struct s3b_file *f = calloc(1, sizeof(*f));
	int rc;

	if (!f)
		return -ENOMEM;
	f->kind = S3B_FILE;
	f->node = n;
	f->oflags = fl;
	f->writable = (fl & O_ACCMODE) != O_RDONLY;
	rc = s3b_file_insert(s, f, fh);
	if (rc) {
		f->node = NULL;
		free(f);
	}
	return rc;
}

/*
 * Open existing node n with flags fl; consumes the node reference.  *keep:
 * the guest may keep its page cache (kc_open).
 */
static int open_node(struct backend_session *s, struct s3b_node *n, int fl,
		     uint64_t *fh, bool *keep)
{
	char key[S3_KEY_MAX + 1];
	bool attached = false;
	struct s3b_info i;
	int rc;

	*keep = false;
	if (n->type == S_IFDIR)
		rc = -EISDIR;
	else if (n->type == S_IFLNK)
		rc = -ELOOP;
	else
		rc = s3b_node_key(s, n, key);
	if (!rc)
		*keep = kc_open(s, n, key); /* before this open's own stage */
	if (rc || (fl & O_ACCMODE) == O_RDONLY)
		goto reg;
	memset(&i, 0, sizeof(i));
	rc = s3b_cache_get(s->b, key, NULL, &i);
	if (rc == 0) {
		struct s3_obj_info *o = malloc(sizeof(*o));

		rc = o ? s3_http_head_object(s->fs->http, key, o) : -ENOMEM;
		if (!rc) {
			s3b_meta_from_obj(o, &i);
			s3b_cache_put(s->b, key, &i);
		}
		free(o);
	} else {
		rc = rc == 1 ? 0 : rc;
	}
	if (!rc)
		rc = attach_stage(s, n, key, i.etag, i.size);
	attached = !rc;
	s3b_info_clear(&i);
	if (!rc && (fl & O_TRUNC)) {
		struct s3b_stage *sg = s3b_node_stage_pin(s, n);

		if (sg && s3b_stage_size(sg)) {
			uint64_t size0, room;
			int q = s3b_quota_begin(s->fs, sg, &size0, &room);

			s3b_stage_note_writer(sg, s);
			rc = s3b_stage_truncate(sg, 0);
			s3b_quota_end(s->fs, sg, size0, q);
			pthread_mutex_lock(&s->lock);
			n->wrote = true;
			pthread_mutex_unlock(&s->lock);
		}
		if (sg)
			s3b_node_stage_unpin(s, n);
	}
reg:
	if (!rc)
		rc = file_open(s, n, fl, fh);
	if (rc && attached)
		s3b_node_stage_unpin(s, n);
	if (rc)
		s3b_node_put(s, n);
	return rc;
}

int s3b_data_open(struct backend_session *s, const struct proto_msg *req,
		  struct proto_msg *rep)
{
	int fl = (int)(req->flags & OPEN_KEEP);
	struct s3b_node *n;
	bool keep;
	int rc;

	if ((fl & O_ACCMODE) == O_ACCMODE)
		return -EINVAL;
	if ((fl & O_ACCMODE) == O_RDONLY)
		fl &= ~O_TRUNC;
	n = s3b_node_get(s, req->ino);
	if (!n)
		return -ESTALE;
	pthread_rwlock_rdlock(&s->fs->ns);
	rc = open_node(s, n, fl, &rep->fh, &keep);
	pthread_rwlock_unlock(&s->fs->ns);
	rep->flags = keep ? PROTO_OPEN_KEEP_CACHE : 0;
	return rc;
}

/* A new file: cached as staged-only, its stage carries its headers. */
static int create_new(struct backend_session *s, const struct proto_msg *req,
		      struct s3b_node *p, const char *key, char *path, int fl,
		      struct proto_msg *rep)
{
	struct s3b_info i;
	struct s3b_node *n;
	struct s3b_stage *sg;
	uint64_t id;
	int rc;

	rc = s3b_quota_take(s->fs, 0);
	if (rc) {
		free(path);
		return rc;
	}
	memset(&i, 0, sizeof(i));
	s3b_meta_new(&i.m, S_IFREG | (req->mode & 07777), req->uid, req->gid);
	s3b_ns_inherit(s, p, &i.m);
	i.lastmod = i.m.mtime.sec;
	s3b_cache_put(s->b, key, &i); /* etag "": only staged */
	rc = s3b_node_ref(s, path, S_IFREG, &id);
	if (!rc && !(n = s3b_node_get(s, id)))
		rc = -ESTALE;
	if (rc) {
		s3b_quota_give(s->fs, 0, 1);
		return rc;
	}
	rc = attach_stage(s, n, key, NULL, 0);
	if (!rc) {
		sg = s3b_node_stage_pin(s, n);
		rc = sg ? s3b_meta_to_stage(sg, &i.m, NULL) : -ESTALE;
		if (sg)
			s3b_node_stage_unpin(s, n);
		if (rc)
			s3b_node_stage_unpin(s, n);
	}
	if (!rc) {
		/* CREATE's reply drops the guest's cache: it holds nothing */
		pthread_mutex_lock(&s->lock);
		n->kc_known = true;
		n->kc_etag[0] = '\0';
		n->kc_ms = 0;
		pthread_mutex_unlock(&s->lock);
		s3b_node_get(s, id); /* the file's own reference */
		rc = file_open(s, n, fl, &rep->fh);
		if (rc) {
			s3b_node_stage_unpin(s, n);
			s3b_node_put(s, n);
		}
	}
	if (rc) {
		s3b_quota_give(s->fs, 0, 1);
		s3b_cache_neg(s->b, key);
		s3b_node_forget(s, id, 1);
	} else {
		s3b_meta_attr(&rep->attr, id, S_IFREG, &i, req->uid, req->gid);
		s3b_ns_dir_changed(s, p);
	}
	s3b_node_put(s, n);
	return rc;
}

int s3b_data_create(struct backend_session *s, const struct proto_msg *req,
		    struct proto_msg *rep)
{
	int fl = (int)(req->flags & OPEN_KEEP);
	char key[S3_KEY_MAX + 1], *path = NULL;
	struct s3b_node *p, *n;
	struct s3b_info i;
	bool keep = false;
	mode_t type;
	uint64_t id;
	int rc;

	if ((fl & O_ACCMODE) == O_ACCMODE)
		return -EINVAL;
	rc = s3b_node_get_dir(s, req->ino, &p);
	if (rc)
		return rc;
	pthread_rwlock_rdlock(&s->fs->ns);
	rc = s3b_child_key(s, p, req->name, false, key, &path);
	if (rc)
		goto out;
	rc = s3b_ns_stat(s, key, &type, &i);
	if (rc == -ENOENT) {
		rc = create_new(s, req, p, key, path, fl, rep);
		path = NULL;
		goto out;
	}
	if (rc)
		goto out;
	s3b_info_clear(&i);
	if (req->flags & O_EXCL) {
		rc = -EEXIST;
		goto out;
	}
	if (type == S_IFDIR) {
		rc = -EISDIR;
		goto out;
	}
	rc = s3b_node_ref(s, path, type, &id);
	path = NULL;
	if (rc)
		goto out;
	n = s3b_node_get(s, id);
	rc = n ? open_node(s, n, fl, &rep->fh, &keep) : -ESTALE;
	if (!rc && (n = s3b_node_get(s, id))) {
		rc = s3b_ns_attr(s, n, req, &rep->attr);
		s3b_node_put(s, n);
	}
	if (rc)
		s3b_node_forget(s, id, 1);
out:
	pthread_rwlock_unlock(&s->fs->ns);
	rep->flags = !rc && keep ? PROTO_OPEN_KEEP_CACHE : 0;
	free(path);
	s3b_node_put(s, p);
	return rc;
}

int s3b_data_read(struct backend_session *s, const struct proto_msg *req,
		  struct proto_msg *rep)
{
	struct s3b_file *f = s3b_file_get(s, req->fh, S3B_FILE);
	size_t len =
	    req->len > PROTO_MAX_PAYLOAD ? PROTO_MAX_PAYLOAD : (size_t)req->len;
	char key[S3_KEY_MAX + 1];
	struct s3b_stage *sg;
	uint8_t *buf = NULL;
	size_t got = 0;
	int rc = 0;

	if (!f)
		return -EBADF;
	if (req->off > (uint64_t)INT64_MAX - len) {
		rc = -EINVAL;
		goto out;
	}
	if (!len)
		goto reply;
	buf = malloc(len);
	if (!buf) {
		rc = -ENOMEM;
		goto out;
	}
	sg = s3b_node_stage_pin(s, f->node);
	if (sg) {
		rc = s3b_stage_read(sg, buf, len, req->off, &got);
		s3b_node_stage_unpin(s, f->node);
	} else {
		rc = s3b_node_key(s, f->node, key);
		/* a stage left dirty by a failed upload holds the file */
		if (!rc &&
		    !s3b_stage_lookup(s->b->store, s->fs->fsid, key, &sg)) {
			rc = s3b_stage_read(sg, buf, len, req->off, &got);
			s3b_stage_put(sg);
		} else if (!rc) {
			char src[S3_ETAG_MAX];

			rc = s3b_ra_read(s, req->fh, key, buf, len, req->off,
					 &got, src);
			if (!rc)
				kc_read(s, f->node, src);
		}
	}
	if (rc)
		goto out;
reply:
	rep->data = buf;
	rep->data_len = got;
	rep->data_owned = buf;
	buf = NULL;
out:
	free(buf);
	s3b_file_put(s, f);
	return rc;
}

int s3b_data_write(struct backend_session *s, const struct proto_msg *req,
		   struct proto_msg *rep)
{
	struct s3b_file *f = s3b_file_get(s, req->fh, S3B_FILE);
	struct s3b_stage *sg = NULL;
	uint64_t off = req->off, size0, room;
	size_t len;
	int rc, q;

	if (!f)
		return -EBADF;
	if (!f->writable) {
		rc = -EBADF;
		goto out;
	}
	if (req->data_len > PROTO_MAX_PAYLOAD ||
	    (req->data_len && !req->data) ||
	    req->off > (uint64_t)INT64_MAX - req->data_len) {
		rc = -EINVAL;
		goto out;
	}
	sg = s3b_node_stage_pin(s, f->node);
	if (!sg) {
		rc = -EIO;
		goto out;
	}
	/* Only a write that may grow the file waits for the quota lock. */
	q = 0;
	size0 = 0;
	room = UINT64_MAX;
	if (s3b_quota_on(s->fs) && ((f->oflags & O_APPEND) ||
				    off + req->data_len > s3b_stage_size(sg)))
		q = s3b_quota_begin(s->fs, sg, &size0, &room);
	if (f->oflags & O_APPEND)
		off = s3b_stage_size(sg);
	len = req->data_len;
	/* Past the quota: write what fits, then EDQUOT. */
	if (room != UINT64_MAX && off + len > size0 + room)
		len = off >= size0 + room ? 0 : (size_t)(size0 + room - off);
	s3b_stage_note_writer(sg, s);
	rc = len || !req->data_len ? s3b_stage_write(sg, req->data, len, off)
				   : -EDQUOT;
	s3b_quota_end(s->fs, sg, size0, q);
	if (!rc) {
		rep->len = len;
		pthread_mutex_lock(&s->lock);
		f->node->wrote = true;
		pthread_mutex_unlock(&s->lock);
	}
	s3b_node_stage_unpin(s, f->node);
out:
	s3b_file_put(s, f);
	return rc;
}

/* Upload f's stage if dirty; 0 for read-only files. */
static int file_sync(struct backend_session *s, struct s3b_file *f)
{
	struct s3b_stage *sg;
	int rc = 0;

	if (!f->writable)
		return 0;
	sg = s3b_node_stage_pin(s, f->node);
	if (sg) {
		rc = s3b_data_flush_stage(s, f->node, sg);
		s3b_node_stage_unpin(s, f->node);
	}
	return rc;
}

int s3b_data_sync_file(struct backend_session *s, struct s3b_file *f)
{
	int rc = file_sync(s, f);

	if (!rc && f->writable)
		rc = s3b_attr_apply(s, f->node);
	return rc;
}

int s3b_data_flush(struct backend_session *s, const struct proto_msg *req,
		   struct proto_msg *rep)
{
	struct s3b_file *f = s3b_file_get(s, req->fh, S3B_FILE);
	int rc;

	if (!f)
		return -EBADF;
	rc = file_sync(s, f);
	s3b_file_put(s, f);
	return rc;
}

int s3b_data_fsync(struct backend_session *s, const struct proto_msg *req,
		   struct proto_msg *rep)
{
	struct s3b_file *f = s3b_file_get(s, req->fh, S3B_FILE);
	int rc;

	if (!f)
		return -EBADF;
	rc = file_sync(s, f);
	if (!rc)
		rc = s3b_attr_apply(s, f->node);
	s3b_file_put(s, f);
	return rc;
}

int s3b_data_release(struct backend_session *s, const struct proto_msg *req,
		     struct proto_msg *rep)
{
	struct s3b_file *f = s3b_file_take(s, req->fh, S3B_FILE);
	int rc;

	if (!f)
		return -EBADF;
	s3b_ra_release(s, req->fh);
	/* A failed upload stays staged (and is retried at the next open,
	 * flush or shutdown); release itself cannot report it. */
	rc = file_sync(s, f);
	if (!rc)
		s3b_attr_apply(s, f->node);
	s3b_file_put(s, f);
	return 0;
}

/*
 * Mode 0 extends the file like a write; FALLOC_FL_KEEP_SIZE has nothing to
 * allocate in an object store, so it only checks its arguments.  Holes
 * (PUNCH_HOLE and the rest) are not supported.
 */
int s3b_data_fallocate(struct backend_session *s, const struct proto_msg *req,
		       struct proto_msg *rep)
{
	struct s3b_file *f = s3b_file_get(s, req->fh, S3B_FILE);
	struct s3b_stage *sg;
	uint64_t size0, room;
	int rc = 0, q;

	if (!f)
		return -EBADF;
	if (req->mode & ~(uint32_t)FALLOC_FL_KEEP_SIZE) {
		rc = -EOPNOTSUPP;
		goto out;
	}
	if (!f->writable) {
		rc = -EBADF;
		goto out;
	}
	if (req->off > (uint64_t)INT64_MAX - req->len) {
		rc = -EFBIG;
		goto out;
	}
	if (req->mode & FALLOC_FL_KEEP_SIZE)
		goto out;
	sg = s3b_node_stage_pin(s, f->node);
	if (!sg) {
		rc = -EIO;
		goto out;
	}
	q = s3b_quota_begin(s->fs, sg, &size0, &room);
	if (size0 < req->off + req->len && room != UINT64_MAX &&
	    req->off + req->len - size0 > room)
		rc = -EDQUOT;
	else if (s3b_stage_size(sg) < req->off + req->len) {
		s3b_stage_note_writer(sg, s);
		rc = s3b_stage_truncate(sg, req->off + req->len);
	}
	s3b_quota_end(s->fs, sg, size0, q);
	s3b_node_stage_unpin(s, f->node);
out:
	s3b_file_put(s, f);
	return rc;
}

/* No holes in an object: all of it is data. */
int s3b_data_lseek(struct backend_session *s, const struct proto_msg *req,
		   struct proto_msg *rep)
{
	struct s3b_file *f = s3b_file_get(s, req->fh, S3B_FILE);
	struct proto_attr a;
	uint64_t size;
	int rc;

	if (!f)
		return -EBADF;
	rc = s3b_ns_attr(s, f->node, req, &a);
	if (rc)
		goto out;
	size = a.size;
	switch (req->whence) {
	case SEEK_SET:
	case SEEK_CUR:
		rep->off = req->off;
		break;
	case SEEK_END:
		rep->off = size + req->off;
		break;
	case SEEK_DATA:
	case SEEK_HOLE:
		if (req->off >= size) {
			rc = -ENXIO;
			break;
		}
		rep->off = req->whence == SEEK_DATA ? req->off : size;
		break;
	default:
		rc = -EINVAL;
	}
out:
	s3b_file_put(s, f);
	return rc;
}

/* The client kernel falls back to READ and WRITE. */
int s3b_data_copy_file_range(struct backend_session *s,
			     const struct proto_msg *req, struct proto_msg *rep)
{
	return -EOPNOTSUPP;
}
