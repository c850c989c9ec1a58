/*
 * local_meta.c - names and attributes for the local backend: lookup,
 * attributes, creation of directories, nodes and symlinks, links, removal,
 * rename, extended attributes, access and statfs.
 *
 * Names are checked by local_name_check and resolved only with *at() calls
 * that do not follow the last component, relative to a directory node's
 * O_PATH descriptor.  Attributes are changed on the pinned inode (fd with
 * AT_EMPTY_PATH, or its /proc magic link, which ends at that inode and
 * follows nothing further), never through a name.
 *
 * The broker creates as root, so a new entry is given the caller's uid and
 * gid afterwards, and its mode is set exactly as asked (the process umask
 * must not apply: the client kernel has already applied the guest's).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "backend.h"
#include "local.h"
#include "proto.h"

#define XATTR_USER "user."

/* ---- creation ----------------------------------------------------------- */

/* The gid a new entry gets: a set-gid parent's, else the caller's. */
static gid_t new_gid(struct local_node *parent, const struct stat *st,
		     gid_t want)
{
	struct stat pst;

	if (st->st_gid == want)
		return want;
	if (local_node_stat(parent, &pst) == 0 && (pst.st_mode & S_ISGID))
		return pst.st_gid;
	return want;
}

static int set_mode(int fd, mode_t mode)
{
	char path[40];
	int rc = local_proc_path(path, sizeof(path), fd);

	if (rc)
		return rc;
	return fchmodat(AT_FDCWD, path, mode, 0) < 0 ? -errno : 0;
}

/*
 * fd is an O_PATH descriptor of the entry just created below parent; give
 * it the caller's ownership and the requested mode, then make it a node
 * with one lookup reference.  fd is consumed.
 */
int local_meta_adopt_new(struct backend_session *s, struct local_node *parent,
			 int fd, const struct proto_msg *req, mode_t type,
			 struct proto_attr *attr)
{
	struct stat st;
	mode_t want;
	gid_t gid;
	int rc = 0;

	if (fstatat(fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) {
		rc = -errno;
		goto out;
	}
	/* Something else raced into the name: report, but do not touch it. */
	if ((st.st_mode & S_IFMT) != type) {
		rc = -EEXIST;
		goto out;
	}
	gid = new_gid(parent, &st, req->gid);
	if (s->can_chown && (st.st_uid != req->uid || st.st_gid != gid)) {
		if (fchownat(fd, "", req->uid, gid,
			     AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0 ||
		    fstatat(fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) <
			0) {
			rc = -errno;
			goto out;
		}
	}
	want = req->mode & 07777;
	if (type == S_IFDIR)
		want |= st.st_mode & S_ISGID; /* inherited from the parent */
	if (type != S_IFLNK && (st.st_mode & 07777) != want) {
		rc = set_mode(fd, want);
		if (!rc && fstatat(fd, "", &st,
				   AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
			rc = -errno;
		if (rc)
			goto out;
	}
	rc = local_node_adopt(s, fd, &st, attr);
	fd = -1;
out:
	if (fd >= 0)
		close(fd);
	return rc;
}

/* Create an entry of type below req->ino with mkdirat, mknodat or
 * symlinkat, then adopt it. */
static int make_entry(struct backend_session *s, const struct proto_msg *req,
		      struct proto_msg *rep, mode_t type)
{
	struct local_node *p;
	int rc, fd, r;

	rc = local_name_check(req->name);
	if (rc)
		return rc;
	rc = local_node_get_dir(s, req->ino, &p);
	if (rc)
		return rc;
	rc = local_quota_inode_take(s);
	if (rc)
		goto out;
	if (type == S_IFDIR)
		r = mkdirat(p->fd, req->name, req->mode & 07777);
	else if (type == S_IFLNK)
		r = symlinkat(req->name2, p->fd, req->name);
	else
		r = mknodat(p->fd, req->name, type | (req->mode & 07777), 0);
	if (r < 0) {
		rc = -errno;
		local_quota_inode_give(s);
		goto out;
	}
	fd = local_openat2(p->fd, req->name, O_PATH, 0);
	if (fd < 0) {
		rc = fd;
		goto out;
	}
	rc = local_meta_adopt_new(s, p, fd, req, type, &rep->attr);
out:
	local_node_put(s, p);
	return rc;
}

int local_meta_mkdir(struct backend_session *s, const struct proto_msg *req,
		     struct proto_msg *rep)
{
	return make_entry(s, req, rep, S_IFDIR);
}

/* Regular files, fifos and sockets; never a device node on the host. */
int local_meta_mknod(struct backend_session *s, const struct proto_msg *req,
		     struct proto_msg *rep)
{
	mode_t type = req->mode & S_IFMT;

	switch (type) {
	case 0:
		type = S_IFREG;
		break;
	case S_IFREG:
	case S_IFIFO:
	case S_IFSOCK:
		break;
	case S_IFCHR:
	case S_IFBLK:
		return -EPERM;
	default:
		return -EINVAL;
	}
	return make_entry(s, req, rep, type);
}

int local_meta_symlink(struct backend_session *s, const struct proto_msg *req,
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
	return make_entry(s, req, rep, S_IFLNK);
}

int local_meta_link(struct backend_session *s, const struct proto_msg *req,
		    struct proto_msg *rep)
{
	struct local_node *n = NULL, *p = NULL;
	int rc;

	rc = local_name_check(req->name2);
	if (rc)
		return rc;
	rc = local_node_get_dir(s, req->ino2, &p);
	if (rc)
		return rc;
	n = local_node_get(s, req->ino);
	if (!n) {
		rc = -ESTALE;
		goto out;
	}
	if (n->type == S_IFDIR) {
		struct stat st;

		/* As link(2): an existing target name is reported first. */
		rc = fstatat(p->fd, req->name2, &st, AT_SYMLINK_NOFOLLOW) == 0
			 ? -EEXIST
			 : -EPERM;
		goto out;
	}
	if (linkat(n->fd, "", p->fd, req->name2, AT_EMPTY_PATH) < 0) {
		rc = -errno;
		goto out;
	}
	rc = local_node_ref_again(s, n, &rep->attr);
out:
	local_node_put(s, n);
	local_node_put(s, p);
	return rc;
}

/* ---- lookup, attributes ------------------------------------------------- */

int local_meta_lookup(struct backend_session *s, const struct proto_msg *req,
		      struct proto_msg *rep)
{
	struct local_node *p;
	int rc;

	rc = local_name_check(req->name);
	if (rc)
		return rc;
	rc = local_node_get_dir(s, req->ino, &p);
	if (rc)
		return rc;
	rc = local_node_lookup(s, p->fd, req->name, &rep->attr);
	local_node_put(s, p);
	return rc;
}

int local_meta_forget(struct backend_session *s, const struct proto_msg *req,
		      struct proto_msg *rep)
{
	local_node_forget(s, req->ino, req->len);
	return 0;
}

int local_meta_getattr(struct backend_session *s, const struct proto_msg *req,
		       struct proto_msg *rep)
{
	struct local_node *n = local_node_get(s, req->ino);
	int rc;

	if (!n)
		return -ESTALE;
	rc = local_node_attr(n, &rep->attr);
	local_node_put(s, n);
	return rc;
}

/* Does fd (a guest-named open file) refer to node n's inode? */
static bool same_inode(int fd, const struct local_node *n)
{
	struct stat st;

	return fstat(fd, &st) == 0 && st.st_ino == n->ino &&
	       st.st_dev == n->dev;
}

/* ftruncate, counting the change; growth past the quota is EDQUOT. */
static int truncate_fd(struct backend_session *s, int fd, uint64_t size)
{
	struct local_qop q;
	uint64_t room;
	int rc;

	rc = local_quota_begin(s, fd, &q, &room);
	if (rc)
		return rc;
	if (size > q.size0 && room != UINT64_MAX && size - q.size0 > room)
		rc = -EDQUOT;
	else if (ftruncate(fd, (off_t)size) < 0)
		rc = -errno;
	local_quota_end(&q, fd);
	return rc;
}

static int set_size(struct backend_session *s, struct local_node *n,
		    const struct proto_msg *req)
{
	struct local_file *f;
	int fd, rc = 0;

	if (n->type == S_IFDIR)
		return -EISDIR;
	if (n->type != S_IFREG)
		return -EINVAL;
	if (req->attr.size > (uint64_t)INT64_MAX)
		return -EFBIG;
	/* The guest's open file if it named a writable one, else a fresh fd. */
	f = req->fh ? local_file_get(s, req->fh, LOCAL_FILE) : NULL;
	if (f && (f->oflags & O_ACCMODE) != O_RDONLY && same_inode(f->fd, n)) {
		rc = truncate_fd(s, f->fd, req->attr.size);
		local_file_put(s, f);
		return rc;
	}
	local_file_put(s, f);
	fd = local_reopen(n, O_WRONLY);
	if (fd < 0)
		return fd;
	rc = truncate_fd(s, fd, req->attr.size);
	close(fd);
	return rc;
}

static int set_times(struct local_node *n, const struct proto_msg *req)
{
	struct timespec ts[2] = {{0, UTIME_OMIT}, {0, UTIME_OMIT}};
	const struct proto_attr *a = &req->attr;

	if (req->valid & PROTO_SET_ATIME_NOW)
		ts[0].tv_nsec = UTIME_NOW;
	else if (req->valid & PROTO_SET_ATIME)
		ts[0] = (struct timespec){a->atime, a->atime_ns};
	if (req->valid & PROTO_SET_MTIME_NOW)
		ts[1].tv_nsec = UTIME_NOW;
	else if (req->valid & PROTO_SET_MTIME)
		ts[1] = (struct timespec){a->mtime, a->mtime_ns};
	if (ts[0].tv_nsec >= 1000000000L && ts[0].tv_nsec != UTIME_NOW &&
	    ts[0].tv_nsec != UTIME_OMIT)
		return -EINVAL;
	if (ts[1].tv_nsec >= 1000000000L && ts[1].tv_nsec != UTIME_NOW &&
	    ts[1].tv_nsec != UTIME_OMIT)
		return -EINVAL;
	if (utimensat(n->fd, "", ts, AT_EMPTY_PATH) < 0)
		return -errno;
	return 0;
}

static int setattr_apply(struct backend_session *s, struct local_node *n,
			 const struct proto_msg *req)
{
	const struct proto_attr *a = &req->attr;
	unsigned v = req->valid;
	int rc;

	if (v & PROTO_SET_MODE) {
		if (n->type == S_IFLNK)
			return -EOPNOTSUPP;
		rc = set_mode(n->fd, a->mode & 07777);
		if (rc)
			return rc;
	}
	if (v & (PROTO_SET_UID | PROTO_SET_GID)) {
		uid_t uid = (v & PROTO_SET_UID) ? a->uid : (uid_t)-1;
		gid_t gid = (v & PROTO_SET_GID) ? a->gid : (gid_t)-1;

		if (fchownat(n->fd, "", uid, gid,
			     AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
			return -errno;
	}
	if (v & PROTO_SET_SIZE) {
		rc = set_size(s, n, req);
		if (rc)
			return rc;
	}
	if (v & (PROTO_SET_ATIME | PROTO_SET_MTIME | PROTO_SET_ATIME_NOW |
		 PROTO_SET_MTIME_NOW))
		return set_times(n, req);
	return 0;
}

/* PROTO_SET_CTIME is accepted and ignored: the host sets ctime itself. */
int local_meta_setattr(struct backend_session *s, const struct proto_msg *req,
		       struct proto_msg *rep)
{
	struct local_node *n = local_node_get(s, req->ino);
	int rc;

	if (!n)
		return -ESTALE;
	rc = setattr_apply(s, n, req);
	if (!rc)
		rc = local_node_attr(n, &rep->attr);
	local_node_put(s, n);
	return rc;
}

int local_meta_readlink(struct backend_session *s, const struct proto_msg *req,
			struct proto_msg *rep)
{
	struct local_node *n = local_node_get(s, req->ino);
	char *buf = NULL;
	ssize_t len;
	int rc = 0;

	if (!n)
		return -ESTALE;
	if (n->type != S_IFLNK) {
		rc = -EINVAL;
		goto out;
	}
	buf = malloc(PROTO_MAX_TARGET + 1);
	if (!buf) {
		rc = -ENOMEM;
		goto out;
	}
	len = readlinkat(n->fd, "", buf, PROTO_MAX_TARGET + 1);
	if (len < 0) {
		rc = -errno;
		goto out;
	}
	if ((size_t)len > PROTO_MAX_TARGET) {
		rc = -ENAMETOOLONG;
		goto out;
	}
	rep->data = (const uint8_t *)buf;
	rep->data_len = (size_t)len;
	rep->data_owned = buf;
	buf = NULL;
out:
	free(buf);
	local_node_put(s, n);
	return rc;
}

/* ---- removal, rename ---------------------------------------------------- */

static int remove_entry(struct backend_session *s, const struct proto_msg *req,
			int flags)
{
	struct local_node *p;
	struct stat st;
	bool counted;
	int rc;

	rc = local_name_check(req->name);
	if (rc)
		return rc;
	rc = local_node_get_dir(s, req->ino, &p);
	if (rc)
		return rc;
	/* What goes away, for the quota; only counted when usage is. */
	counted = local_quota_on(s) &&
		  fstatat(p->fd, req->name, &st, AT_SYMLINK_NOFOLLOW) == 0;
	if (unlinkat(p->fd, req->name, flags) < 0)
		rc = -errno;
	else if (counted)
		local_quota_removed(s, &st);
	local_node_put(s, p);
	return rc;
}

int local_meta_unlink(struct backend_session *s, const struct proto_msg *req,
		      struct proto_msg *rep)
{
	return remove_entry(s, req, 0);
}

int local_meta_rmdir(struct backend_session *s, const struct proto_msg *req,
		     struct proto_msg *rep)
{
	return remove_entry(s, req, AT_REMOVEDIR);
}

int local_meta_rename(struct backend_session *s, const struct proto_msg *req,
		      struct proto_msg *rep)
{
	struct local_node *op = NULL, *np = NULL;
	struct stat src, dst;
	unsigned flags = 0;
	bool counted;
	int rc;

	if (req->flags & ~(PROTO_RENAME_NOREPLACE | PROTO_RENAME_EXCHANGE))
		return -EINVAL;
	if (req->flags & PROTO_RENAME_NOREPLACE)
		flags |= RENAME_NOREPLACE;
	if (req->flags & PROTO_RENAME_EXCHANGE)
		flags |= RENAME_EXCHANGE;
	rc = local_name_check(req->name);
	if (!rc)
		rc = local_name_check(req->name2);
	if (rc)
		return rc;
	rc = local_node_get_dir(s, req->ino, &op);
	if (rc)
		return rc;
	rc = local_node_get_dir(s, req->ino2, &np);
	if (rc)
		goto out;
	/* A name renamed over is removed: the quota must know. */
	counted = !(flags & RENAME_EXCHANGE) && local_quota_on(s) &&
		  fstatat(np->fd, req->name2, &dst, AT_SYMLINK_NOFOLLOW) == 0 &&
		  fstatat(op->fd, req->name, &src, AT_SYMLINK_NOFOLLOW) == 0 &&
		  (src.st_dev != dst.st_dev || src.st_ino != dst.st_ino);
	if (renameat2(op->fd, req->name, np->fd, req->name2, flags) < 0)
		rc = -errno;
	else if (counted)
		local_quota_removed(s, &dst);
out:
	local_node_put(s, np);
	local_node_put(s, op);
	return rc;
}

/* ---- extended attributes: the user namespace only ----------------------- */

/*
 * Other namespaces are refused with EOPNOTSUPP: trusted and security would
 * act with the broker's privilege on the host, and system (ACLs) is not
 * carried.  EOPNOTSUPP (not ENOSYS) keeps the client kernel asking for
 * user.* names afterwards.
 */
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

/* The node's /proc magic link: it ends at the pinned inode. */
static int xattr_node(struct backend_session *s, const struct proto_msg *req,
		      struct local_node **out, char *path, size_t size)
{
	struct local_node *n = local_node_get(s, req->ino);
	int rc;

	*out = NULL;
	if (!n)
		return -ESTALE;
	rc = local_proc_path(path, size, n->fd);
	if (rc) {
		local_node_put(s, n);
		return rc;
	}
	*out = n;
	return 0;
}

int local_meta_setxattr(struct backend_session *s, const struct proto_msg *req,
			struct proto_msg *rep)
{
	struct local_node *n;
	char path[40];
	int rc;

	rc = xattr_name_check(req->name);
	if (rc)
		return rc;
	if (req->flags & ~(unsigned)(XATTR_CREATE | XATTR_REPLACE))
		return -EINVAL;
	if (req->data_len > PROTO_MAX_XATTR)
		return -E2BIG;
	rc = xattr_node(s, req, &n, path, sizeof(path));
	if (rc)
		return rc;
	if (setxattr(path, req->name,
		     req->data_len ? req->data : (const void *)"",
		     req->data_len, (int)req->flags) < 0)
		rc = -errno;
	local_node_put(s, n);
	return rc;
}

int local_meta_getxattr(struct backend_session *s, const struct proto_msg *req,
			struct proto_msg *rep)
{
	struct local_node *n;
	size_t cap = req->len > PROTO_MAX_XATTR ? PROTO_MAX_XATTR : req->len;
	char path[40];
	void *buf = NULL;
	ssize_t len;
	int rc;

	rc = xattr_name_check(req->name);
	if (rc)
		return rc;
	rc = xattr_node(s, req, &n, path, sizeof(path));
	if (rc)
		return rc;
	if (cap) {
		buf = malloc(cap);
		if (!buf) {
			rc = -ENOMEM;
			goto out;
		}
	}
	len = getxattr(path, req->name, buf, cap);
	if (len < 0) {
		rc = -errno;
		goto out;
	}
	rep->len = (uint64_t)len;
	if (cap) {
		rep->data = buf;
		rep->data_len = (size_t)len;
		rep->data_owned = buf;
		buf = NULL;
	}
out:
	free(buf);
	local_node_put(s, n);
	return rc;
}

/* Keep only user.* names of a NUL-separated list; returns the new length. */
static size_t xattr_filter(char *list, size_t len)
{
	size_t in = 0, out = 0, n;

	while (in < len) {
		n = strnlen(list + in, len - in);
		if (in + n < len)
			n++; /* with its NUL */
		if (!strncmp(list + in, XATTR_USER, strlen(XATTR_USER))) {
			memmove(list + out, list + in, n);
			out += n;
		}
		in += n;
	}
	return out;
}

/* The whole host list into a malloc'd buffer (it may grow meanwhile). */
static int xattr_list_all(const char *path, char **out, size_t *outlen)
{
	ssize_t size, len;
	char *buf;
	int tries;

	for (tries = 0; tries < 4; tries++) {
		size = listxattr(path, NULL, 0);
		if (size < 0)
			return -errno;
		buf = malloc((size_t)size + 1);
		if (!buf)
			return -ENOMEM;
		len = size ? listxattr(path, buf, (size_t)size) : 0;
		if (len >= 0) {
			buf[len] = 0; /* the filter may look one byte past */
			*out = buf;
			*outlen = (size_t)len;
			return 0;
		}
		free(buf);
		if (errno != ERANGE)
			return -errno;
	}
	return -EAGAIN;
}

int local_meta_listxattr(struct backend_session *s, const struct proto_msg *req,
			 struct proto_msg *rep)
{
	struct local_node *n;
	char path[40], *buf = NULL;
	size_t len = 0;
	int rc;

	rc = xattr_node(s, req, &n, path, sizeof(path));
	if (rc)
		return rc;
	rc = xattr_list_all(path, &buf, &len);
	if (rc)
		goto out;
	len = xattr_filter(buf, len);
	if (len > PROTO_MAX_XATTR) {
		rc = -E2BIG;
		goto out;
	}
	rep->len = len;
	if (!req->len)
		goto out;
	if (len > req->len) {
		rc = -ERANGE;
		goto out;
	}
	rep->data = (const uint8_t *)buf;
	rep->data_len = len;
	rep->data_owned = buf;
	buf = NULL;
out:
	free(buf);
	local_node_put(s, n);
	return rc;
}

int local_meta_removexattr(struct backend_session *s,
			   const struct proto_msg *req, struct proto_msg *rep)
{
	struct local_node *n;
	char path[40];
	int rc;

	rc = xattr_name_check(req->name);
	if (rc)
		return rc;
	rc = xattr_node(s, req, &n, path, sizeof(path));
	if (rc)
		return rc;
	if (removexattr(path, req->name) < 0)
		rc = -errno;
	local_node_put(s, n);
	return rc;
}

/* ---- access, statfs ----------------------------------------------------- */

/*
 * Permission checks belong to the client kernel (default_permissions), which
 * knows the caller's supplementary groups; the broker does not.  ACCESS only
 * confirms the node still exists and refuses W_OK on a read-only session.
 */
int local_meta_access(struct backend_session *s, const struct proto_msg *req,
		      struct proto_msg *rep)
{
	struct local_node *n = local_node_get(s, req->ino);
	struct stat st;
	int rc;

	if (!n)
		return -ESTALE;
	rc = local_node_stat(n, &st);
	if (!rc && (req->mode & W_OK) && (s->flags & BACKEND_SESSION_RDONLY))
		rc = -EROFS;
	local_node_put(s, n);
	return rc;
}

int local_meta_statfs(struct backend_session *s, const struct proto_msg *req,
		      struct proto_msg *rep)
{
	struct statfs sf;

	if (fstatfs(s->root_fd, &sf) < 0)
		return -errno;
	rep->st.bsize = (uint64_t)sf.f_bsize;
	rep->st.frsize = (uint64_t)(sf.f_frsize ? sf.f_frsize : sf.f_bsize);
	rep->st.blocks = sf.f_blocks;
	rep->st.bfree = sf.f_bfree;
	rep->st.bavail = sf.f_bavail;
	rep->st.files = sf.f_files;
	rep->st.ffree = sf.f_ffree;
	rep->st.favail = sf.f_ffree;
	rep->st.namemax =
	    sf.f_namelen ? (uint64_t)sf.f_namelen : PROTO_MAX_NAME;
	if (local_quota_statfs(s, rep->st.frsize, &rep->st.blocks,
			       &rep->st.bfree, &rep->st.files,
			       &rep->st.ffree)) {
		if (rep->st.bavail > rep->st.bfree)
			rep->st.bavail = rep->st.bfree;
		rep->st.favail = rep->st.ffree;
	}
	return 0;
}
