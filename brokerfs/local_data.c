/*
 * local_data.c - open files of the local backend: the per-session open-file
 * table (shared with directory handles) and file I/O.
 *
 * A guest fh is never dereferenced: it is gen << 32 | (slot + 1), and every
 * use checks that the slot is live, that its generation matches (so a
 * released fh stays dead when the slot is reused) and that it holds the kind
 * of handle the operation expects.  Anything else is EBADF.
 *
 * Files are opened through the node's /proc magic link after checking that
 * the node is a regular file, so a symlink is never opened (ELOOP) and a
 * fifo or device never blocks or triggers a driver (ENXIO).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "datapipe.h"
#include "local.h"
#include "proto.h"

/* Open flags a guest may ask for; the rest are dropped.  O_DIRECT would
 * need aligned buffers and adds nothing behind the client's page cache. */
#define OPEN_KEEP \
	(O_ACCMODE | O_APPEND | O_TRUNC | O_SYNC | O_DSYNC | O_NOATIME)

#define COPY_MAX (128u * 1024u * 1024u) /* bytes per COPY_FILE_RANGE */
#define LOCAL_QUICK_WRITE (16 * 1024)	/* local_data_write_quick */
#define LOCAL_WRITE_BEHIND (8u << 20)	/* local_data_write_behind */

/* ---- the open-file table ------------------------------------------------ */

int local_files_init(struct backend_session *s)
{
	pthread_mutex_init(&s->files_lock, NULL);
	s->slots = NULL;
	s->nslots = 0;
	s->free_head = 0;
	return 0;
}

static void file_free(struct backend_session *s, struct local_file *f)
{
	if (f->kind == LOCAL_FILE && f->fd >= 0)
		local_quota_file_close(s, f->fd);
	if (f->kind == LOCAL_DIR) {
		if (f->dir)
			closedir(f->dir); /* closes f->fd */
		else if (f->fd >= 0)
			close(f->fd);
		pthread_mutex_destroy(&f->dir_lock);
	} else {
		if (f->fd >= 0)
			close(f->fd);
		pthread_mutex_destroy(&f->write_lock);
	}
	free(f);
}

/* Closes every handle still open; no worker may be running. */
void local_files_cleanup(struct backend_session *s)
{
	uint32_t i;

	for (i = 0; i < s->nslots; i++)
		if (s->slots[i].f)
			file_free(s, s->slots[i].f);
	free(s->slots);
	s->slots = NULL;
	s->nslots = 0;
	s->free_head = 0;
	pthread_mutex_destroy(&s->files_lock);
}

/* Called with files_lock held. */
static int slots_grow(struct backend_session *s)
{
	uint32_t n = s->nslots ? s->nslots * 2 : 64, i;
	struct local_slot *p;

	if (s->nslots >= LOCAL_MAX_FILES)
		return -EMFILE;
	if (n > LOCAL_MAX_FILES)
		n = LOCAL_MAX_FILES;
	p = realloc(s->slots, n * sizeof(*p));
	if (!p)
		return -ENOMEM;
	for (i = s->nslots; i < n; i++) {
		p[i].f = NULL;
		p[i].gen = 1;
		p[i].next_free = i + 2 <= n ? i + 2 : s->free_head;
	}
	p[n - 1].next_free = s->free_head;
	s->free_head = s->nslots + 1;
	s->slots = p;
	s->nslots = n;
	return 0;
}

/* The table takes f (with one reference); on error the caller frees f. */
int local_file_insert(struct backend_session *s, struct local_file *f,
		      uint64_t *fh)
{
	uint32_t idx;
	int rc = 0;

	pthread_mutex_lock(&s->files_lock);
	if (!s->free_head)
		rc = slots_grow(s);
	if (!rc) {
		idx = s->free_head - 1;
		s->free_head = s->slots[idx].next_free;
		s->slots[idx].f = f;
		f->refs = 1;
		*fh = (uint64_t)s->slots[idx].gen << 32 | (idx + 1);
	}
	pthread_mutex_unlock(&s->files_lock);
	return rc;
}

/* Called with files_lock held: the live slot fh names, or NULL. */
static struct local_slot *slot_find(struct backend_session *s, uint64_t fh,
				    int kind)
{
	uint32_t low = (uint32_t)fh, gen = (uint32_t)(fh >> 32);
	struct local_slot *sl;

	if (!low || low > s->nslots)
		return NULL;
	sl = &s->slots[low - 1];
	if (!sl->f || sl->gen != gen || sl->f->kind != kind)
		return NULL;
	return sl;
}

struct local_file *local_file_get(struct backend_session *s, uint64_t fh,
				  int kind)
{
	struct local_slot *sl;
	struct local_file *f = NULL;

	pthread_mutex_lock(&s->files_lock);
	sl = slot_find(s, fh, kind);
	if (sl) {
		f = sl->f;
		f->refs++;
	}
	pthread_mutex_unlock(&s->files_lock);
	return f;
}

void local_file_put(struct backend_session *s, struct local_file *f)
{
	bool last;

	if (!f)
		return;
	pthread_mutex_lock(&s->files_lock);
	last = --f->refs == 0;
	pthread_mutex_unlock(&s->files_lock);
	if (last)
		file_free(s, f);
}

int local_file_release(struct backend_session *s, uint64_t fh, int kind)
{
	struct local_slot *sl;
	struct local_file *f = NULL;
	bool last = false;

	pthread_mutex_lock(&s->files_lock);
	sl = slot_find(s, fh, kind);
	if (sl) {
		f = sl->f;
		sl->f = NULL;
		if (++sl->gen == 0)
			sl->gen = 1;
		sl->next_free = s->free_head;
		s->free_head = (uint32_t)(sl - s->slots) + 1;
		last = --f->refs == 0;
	}
	pthread_mutex_unlock(&s->files_lock);
	if (!f)
		return -EBADF;
	if (last)
		file_free(s, f);
	return 0;
}

/* ---- open and create ---------------------------------------------------- */

static int open_flags(uint32_t flags, int *out)
{
	int fl = (int)(flags & OPEN_KEEP);

	if ((fl & O_ACCMODE) == O_ACCMODE)
		return -EINVAL;
	if ((fl & O_ACCMODE) == O_RDONLY)
		fl &= ~O_TRUNC;
	*out = fl;
	return 0;
}

/* Wrap an I/O descriptor in a table entry; fd is consumed. */
static int file_register(struct backend_session *s, int fd, int oflags,
			 uint64_t *fh)
{
	struct local_file *f = calloc(1, sizeof(*f));
	int rc;

	if (!f) {
		close(fd);
		return -ENOMEM;
	}
	f->kind = LOCAL_FILE;
	f->fd = fd;
	f->oflags = oflags;
	pthread_mutex_init(&f->write_lock, NULL);
	local_quota_file_open(s, fd);
	rc = local_file_insert(s, f, fh);
	if (rc)
		file_free(s, f);
	return rc;
}

int local_data_open(struct backend_session *s, const struct proto_msg *req,
		    struct proto_msg *rep)
{
	struct local_node *n;
	int fl, fd, rc;

	rc = open_flags(req->flags, &fl);
	if (rc)
		return rc;
	n = local_node_get(s, req->ino);
	if (!n)
		return -ESTALE;
	if (n->type == S_IFDIR) {
		rc = -EISDIR;
		goto out;
	}
	if ((fl & O_TRUNC) && n->type == S_IFREG) {
		struct local_qop q;
		uint64_t room;

		/* Truncating frees quota: measure it on the pinned inode. */
		rc = local_quota_begin(s, n->fd, &q, &room);
		if (rc)
			goto out;
		fd = local_reopen(n, fl);
		local_quota_end(&q, n->fd);
	} else {
		fd = local_reopen(n, fl);
	}
	if (fd < 0) {
		rc = fd;
		goto out;
	}
	rc = file_register(s, fd, fl, &rep->fh);
	rep->flags = 0;
out:
	local_node_put(s, n);
	return rc;
}

/*
 * Open an existing name for CREATE without O_EXCL: pin it with O_PATH first
 * so only a regular file is ever opened for I/O.  Returns the I/O fd and
 * stores the O_PATH one in *pathfd.
 */
static int open_existing(int dirfd, const char *name, int fl, int *pathfd)
{
	struct local_node tmp = {.fd = -1};
	struct stat st;
	int fd;

	tmp.fd = local_openat2(dirfd, name, O_PATH, 0);
	if (tmp.fd < 0)
		return tmp.fd;
	if (fstatat(tmp.fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) {
		fd = -errno;
		goto out;
	}
	tmp.type = st.st_mode & S_IFMT;
	fd = tmp.type == S_IFDIR ? -EISDIR : local_reopen(&tmp, fl);
out:
	if (fd < 0) {
		close(tmp.fd);
		tmp.fd = -1;
	}
	*pathfd = tmp.fd;
	return fd;
}

/* An O_PATH descriptor for the inode an I/O descriptor refers to. */
static int path_of(int fd)
{
	char path[40];
	int rc = local_proc_path(path, sizeof(path), fd), pfd;

	if (rc)
		return rc;
	pfd = open(path, O_PATH | O_CLOEXEC);
	return pfd < 0 ? -errno : pfd;
}

/* Open or create req->name; *created tells whether this call made it. */
static int create_open(struct local_node *p, const struct proto_msg *req,
		       int fl, int *pathfd, bool *created)
{
	int fd, tries;

	*pathfd = -1;
	for (tries = 0; tries < 3; tries++) {
		fd = local_openat2(p->fd, req->name, fl | O_CREAT | O_EXCL,
				   req->mode & 07777);
		if (fd >= 0) {
			*created = true;
			*pathfd = path_of(fd);
			if (*pathfd < 0) {
				close(fd);
				return *pathfd;
			}
			return fd;
		}
		if (fd != -EEXIST || (req->flags & O_EXCL))
			return fd;
		*created = false;
		fd = open_existing(p->fd, req->name, fl, pathfd);
		if (fd != -ENOENT)
			return fd;
	}
	return -EAGAIN;
}

/* O_TRUNC on an existing file, measured for the quota. */
static int create_trunc(struct backend_session *s, int fd)
{
	struct local_qop q;
	uint64_t room;
	int rc;

	rc = local_quota_begin(s, fd, &q, &room);
	if (rc)
		return rc;
	if (ftruncate(fd, 0) < 0)
		rc = -errno;
	local_quota_end(&q, fd);
	return rc;
}

int local_data_create(struct backend_session *s, const struct proto_msg *req,
		      struct proto_msg *rep)
{
	struct local_node *p;
	struct stat st;
	bool created = false, trunc;
	int fl, fd, pfd, rc, full;

	rc = local_name_check(req->name);
	if (!rc)
		rc = open_flags(req->flags, &fl);
	if (rc)
		return rc;
	rc = local_node_get_dir(s, req->ino, &p);
	if (rc)
		return rc;
	/* With quotas an existing file is truncated after opening, so the
	 * bytes it frees can be measured. */
	trunc = local_quota_on(s) && (fl & O_TRUNC);
	full = local_quota_inode_take(s);
	if (full && (req->flags & O_EXCL)) {
		rc = full;
		goto out;
	}
	if (full) {
		/* No inode left, but an existing file needs none. */
		fd = open_existing(p->fd, req->name, trunc ? fl & ~O_TRUNC : fl,
				   &pfd);
		if (fd == -ENOENT)
			fd = full;
	} else {
		fd = create_open(p, req, trunc ? fl & ~O_TRUNC : fl, &pfd,
				 &created);
		if (!created)
			local_quota_inode_give(s);
	}
	if (fd >= 0 && !created && trunc) {
		rc = create_trunc(s, fd);
		if (rc) {
			close(fd);
			close(pfd);
			goto out;
		}
	}
	if (fd < 0) {
		rc = fd;
		goto out;
	}
	/* Register first: the lookup reference taken below must only be
	 * taken when the reply will succeed. */
	rc = file_register(s, fd, fl, &rep->fh);
	if (rc) {
		close(pfd);
		goto out;
	}
	if (created) {
		rc = local_meta_adopt_new(s, p, pfd, req, S_IFREG, &rep->attr);
	} else if (fstatat(pfd, "", &st, AT_EMPTY_PATH) < 0) {
		rc = -errno;
		close(pfd);
	} else {
		rc = local_node_adopt(s, pfd, &st, &rep->attr);
	}
	if (rc)
		local_file_release(s, rep->fh, LOCAL_FILE);
	rep->flags = 0;
out:
	local_node_put(s, p);
	return rc;
}

/* ---- I/O ---------------------------------------------------------------- */

int local_data_read(struct backend_session *s, const struct proto_msg *req,
		    struct proto_msg *rep)
{
	struct local_file *f = local_file_get(s, req->fh, LOCAL_FILE);
	size_t len =
	    req->len > PROTO_MAX_PAYLOAD ? PROTO_MAX_PAYLOAD : req->len;
	size_t done = 0;
	uint8_t *buf = NULL;
	ssize_t n;
	int rc = 0;

	if (!f)
		return -EBADF;
	if (req->off > (uint64_t)INT64_MAX - len) {
		rc = -EINVAL;
		goto out;
	}
	/* Straight from the page cache to the socket when the connection
	 * allows (datapipe.h); else through a buffer. */
	n = len ? datapipe_fill(f->fd, req->off, len) : -EAGAIN;
	if (n >= 0) {
		rep->data_len = (size_t)n;
		rep->data_follows = 1;
		goto out;
	}
	if (len && !(buf = malloc(len))) {
		rc = -ENOMEM;
		goto out;
	}
	while (done < len) {
		n = pread(f->fd, buf + done, len - done,
			  (off_t)(req->off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			if (!done)
				rc = -errno;
			break;
		}
		if (n == 0)
			break;
		done += (size_t)n;
	}
	if (rc)
		goto out;
	rep->data = buf;
	rep->data_len = done;
	rep->data_owned = buf;
	buf = NULL;
out:
	free(buf);
	local_file_put(s, f);
	return rc;
}

/*
 * Clip a write of *len bytes at off to the quota: what still fits is
 * written (a short write), EDQUOT only when nothing does.  Rewriting
 * bytes the file already has is always allowed.
 */
static int quota_clip(const struct local_qop *q, uint64_t room, uint64_t off,
		      size_t *len)
{
	uint64_t limit;

	if (!q->u || room == UINT64_MAX)
		return 0;
	limit = q->size0 + room < q->size0 ? UINT64_MAX : q->size0 + room;
	if (off + *len <= limit)
		return 0;
	if (off >= limit)
		return -EDQUOT;
	*len = (size_t)(limit - off);
	return 0;
}

/* Might this write grow the file?  Rewrites skip the quota lock. */
static bool write_grows(struct backend_session *s, struct local_file *f,
			uint64_t off, size_t len)
{
	struct stat st;

	if (!local_quota_on(s))
		return false;
	return (f->oflags & O_APPEND) || fstat(f->fd, &st) < 0 ||
	       off + len > (uint64_t)st.st_size;
}

/*
 * Write-behind: once a handle has written LOCAL_WRITE_BEHIND bytes in a
 * row with large WRITEs, start the disk writes of that run now
 * (sync_file_range, which does not wait for them).  The host otherwise
 * keeps everything dirty until fsync(2), or until the machine's
 * background dirty limit, a tenth of its memory; a guest that streams a
 * large file and then calls fsync (or closes it and the broker flushes)
 * would wait for all of it at the end.  Rewrites in place and small
 * writes are left to the page cache.  Called under write_lock.
 */
static void local_data_write_behind(struct local_file *f, uint64_t off,
				    size_t len)
{
	if (off != f->behind_end)
		f->behind_start = off; /* not sequential: a new run */
	f->behind_end = off + len;
	if (f->behind_end - f->behind_start >= LOCAL_WRITE_BEHIND) {
		/* A failed disk write is reported by the next fsync. */
		(void)sync_file_range(f->fd, (off_t)f->behind_start,
				      (off_t)(f->behind_end - f->behind_start),
				      SYNC_FILE_RANGE_WRITE);
		f->behind_start = f->behind_end;
	}
}

/* On an O_APPEND file Linux pwrite appends whatever the offset. */
int local_data_write(struct backend_session *s, const struct proto_msg *req,
		     struct proto_msg *rep)
{
	struct local_file *f = local_file_get(s, req->fh, LOCAL_FILE);
	size_t len = req->data_len, done = 0;
	struct local_qop q = {0};
	bool serial = false;
	uint64_t room;
	ssize_t n;
	int rc = 0;

	if (!f)
		return -EBADF;
	if (len > PROTO_MAX_PAYLOAD || (len && !req->data) ||
	    req->off > (uint64_t)INT64_MAX - len) {
		rc = -EINVAL;
		goto out;
	}
	/*
	 * The host filesystem writes one file at a time (ext4 takes the
	 * inode lock for a buffered write), and workers that wait for it
	 * spin on the broker's CPUs while the holder copies (kernel
	 * rwsem_spin_on_owner: a tenth of the CPU with the writeback of
	 * one file in flight).  Large WRITEs through one handle wait here
	 * asleep instead.  Small ones (the event loop's) never wait here.
	 */
	serial = len > LOCAL_QUICK_WRITE;
	if (serial)
		pthread_mutex_lock(&f->write_lock);
	if (write_grows(s, f, req->off, len)) {
		rc = local_quota_begin(s, f->fd, &q, &room);
		if (rc)
			goto out;
		rc = quota_clip(&q, room,
				(f->oflags & O_APPEND) ? q.size0 : req->off,
				&len);
		if (rc)
			goto out;
	}
	while (done < len) {
		n = pwrite(f->fd, req->data + done, len - done,
			   (off_t)(req->off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (!done)
				rc = n < 0 ? -errno : -EIO;
			break;
		}
		done += (size_t)n;
	}
	rep->len = done;
	if (serial && done && !(f->oflags & O_APPEND))
		local_data_write_behind(f, req->off, done);
	if (done)
		local_dlp_wrote(f);
out:
	local_quota_end(&q, f->fd);
	if (serial)
		pthread_mutex_unlock(&f->write_lock);
	local_file_put(s, f);
	return rc;
}

/*
 * A small WRITE runs on the event loop: the page-cache copy of a few KiB
 * costs less than handing it to a worker, which is two cross-thread
 * wake-ups (the last write of a small file before close(2) waits for it).
 * Not when it could wait: on the quota lock, which a worker holds across
 * its own write, or on the disk, for a file opened for synchronous I/O
 * (O_DIRECT is never passed to the host, see OPEN_KEEP).
 */
int local_data_write_quick(struct backend_session *s,
			   const struct proto_msg *req)
{
	struct local_file *f;
	int quick;

	if (req->data_len > LOCAL_QUICK_WRITE || local_quota_on(s))
		return 0;
	f = local_file_get(s, req->fh, LOCAL_FILE);
	if (!f)
		return 1; /* EBADF, at once */
	quick = !(f->oflags & (O_SYNC | O_DSYNC));
	local_file_put(s, f);
	return quick;
}

/* Nothing is buffered in the broker; a written file is scanned (DLP). */
int local_data_flush(struct backend_session *s, const struct proto_msg *req,
		     struct proto_msg *rep)
{
	struct local_file *f = local_file_get(s, req->fh, LOCAL_FILE);
	int rc;

	if (!f)
		return -EBADF;
	rc = local_dlp_check(s, f);
	local_file_put(s, f);
	return rc;
}

/* RELEASE cannot report a block, but still keeps the file from use. */
int local_data_release(struct backend_session *s, const struct proto_msg *req,
		       struct proto_msg *rep)
{
	struct local_file *f = local_file_get(s, req->fh, LOCAL_FILE);

	if (f) {
		local_dlp_check(s, f);
		local_file_put(s, f);
	}
	return local_file_release(s, req->fh, LOCAL_FILE);
}

int local_file_sync(struct backend_session *s, uint64_t fh, int kind,
		    int datasync)
{
	struct local_file *f = local_file_get(s, fh, kind);
	int rc = 0;

	if (!f)
		return -EBADF;
	if ((datasync ? fdatasync(f->fd) : fsync(f->fd)) < 0)
		rc = -errno;
	local_file_put(s, f);
	return rc;
}

int local_data_fsync(struct backend_session *s, const struct proto_msg *req,
		     struct proto_msg *rep)
{
	struct local_file *f = local_file_get(s, req->fh, LOCAL_FILE);
	int rc;

	if (!f)
		return -EBADF;
	rc = local_dlp_check(s, f);
	local_file_put(s, f);
	if (rc)
		return rc;
	return local_file_sync(s, req->fh, LOCAL_FILE, req->flags & 1);
}

/*
 * Bytes a fallocate may add to the quota.  Space reserved past the end
 * with KEEP_SIZE does not change the size but takes disk all the same, so
 * it is checked as growth; punching and collapsing only free space.
 */
static uint64_t falloc_growth(const struct proto_msg *req, uint64_t size)
{
	uint64_t end = req->off + req->len;

	if (req->mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_COLLAPSE_RANGE))
		return 0;
	if (req->mode & FALLOC_FL_INSERT_RANGE)
		return req->len;
	return end > size ? end - size : 0;
}

int local_data_fallocate(struct backend_session *s, const struct proto_msg *req,
			 struct proto_msg *rep)
{
	struct local_file *f = local_file_get(s, req->fh, LOCAL_FILE);
	struct local_qop q;
	uint64_t room;
	int rc = 0;

	if (!f)
		return -EBADF;
	if (req->off > (uint64_t)INT64_MAX || req->len > (uint64_t)INT64_MAX) {
		rc = -EINVAL;
		goto out;
	}
	rc = local_quota_begin(s, f->fd, &q, &room);
	if (rc)
		goto out;
	if (room != UINT64_MAX && falloc_growth(req, q.size0) > room)
		rc = -EDQUOT;
	else if (fallocate(f->fd, (int)req->mode, (off_t)req->off,
			   (off_t)req->len) < 0)
		rc = -errno;
	local_quota_end(&q, f->fd);
out:
	local_file_put(s, f);
	return rc;
}

/*
 * SEEK_DATA and SEEK_HOLE are what the client sends; SET, CUR and END are
 * answered too, CUR relative to the host descriptor's own position (which
 * only LSEEK moves: I/O is positional).
 */
int local_data_lseek(struct backend_session *s, const struct proto_msg *req,
		     struct proto_msg *rep)
{
	struct local_file *f;
	off_t r;
	int rc = 0;

	switch (req->whence) {
	case SEEK_SET:
	case SEEK_CUR:
	case SEEK_END:
	case SEEK_DATA:
	case SEEK_HOLE:
		break;
	default:
		return -EINVAL;
	}
	if (req->off > (uint64_t)INT64_MAX && req->whence != SEEK_CUR &&
	    req->whence != SEEK_END)
		return -EINVAL;
	f = local_file_get(s, req->fh, LOCAL_FILE);
	if (!f)
		return -EBADF;
	r = lseek(f->fd, (off_t)req->off, (int)req->whence);
	if (r < 0)
		rc = -errno;
	else
		rep->off = (uint64_t)r;
	local_file_put(s, f);
	return rc;
}

int local_data_copy_file_range(struct backend_session *s,
			       const struct proto_msg *req,
			       struct proto_msg *rep)
{
	struct local_file *in = NULL, *out = NULL;
	struct local_qop q;
	uint64_t room;
	loff_t off_in = (loff_t)req->off, off_out = (loff_t)req->off2;
	size_t len = req->len > COPY_MAX ? COPY_MAX : (size_t)req->len;
	ssize_t n;
	int rc = 0;

	if (req->flags)
		return -EINVAL;
	if (req->off > (uint64_t)INT64_MAX || req->off2 > (uint64_t)INT64_MAX)
		return -EINVAL;
	in = local_file_get(s, req->fh, LOCAL_FILE);
	out = local_file_get(s, req->fh2, LOCAL_FILE);
	if (!in || !out) {
		rc = -EBADF;
		goto out;
	}
	rc = local_quota_begin(s, out->fd, &q, &room);
	if (rc)
		goto out;
	rc = quota_clip(&q, room, req->off2, &len);
	if (!rc) {
		n = copy_file_range(in->fd, &off_in, out->fd, &off_out, len, 0);
		if (n < 0)
			rc = -errno;
		else
			rep->len = (uint64_t)n;
		if (n > 0)
			local_dlp_wrote(out);
	}
	local_quota_end(&q, out->fd);
out:
	local_file_put(s, in);
	local_file_put(s, out);
	return rc;
}
