/*
 * fuse_ops.c - FUSE low-level operations forwarded to the broker (fuse_ops.h).
 *
 * Each kernel request becomes one RPC (READ and READDIR of more than the
 * negotiated payload become several).  Node ids are the broker's own, so
 * the kernel's nodeid, lookup counts and FORGETs pass through unchanged;
 * the broker's root is node 1 like FUSE's.  Whenever the kernel does not
 * end up holding a lookup reference the broker handed out (a reply the
 * kernel refused, a READDIRPLUS entry that did not fit, plain READDIR) the
 * reference is returned with FORGET so the broker's node table never leaks.
 *
 * Failure model: a broker error is passed to the kernel as is; a transport
 * failure (connection lost, RPC timeout) becomes EIO.  When the connection
 * dies the mount stays, and every request fails with EIO at once: rpcc
 * never lets a call wait longer than its timeout.  After SESSION_REVOKED
 * every request fails with EACCES.  There is no transparent reconnect: the
 * handle was scrubbed at mount time, so unmount and mount with a new one.
 *
 * Mounting, serving and the broker's pushes are in fuse_serve.c; WRITE is
 * in fuse_write.c.
 */
#define FUSE_USE_VERSION 312

#include "fuse_int.h"
#include "newdir.h"

#include "log.h"
#include "proto.h"
#include "rpcc.h"

#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <stdio.h> /* RENAME_* */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

/* ---- calls -------------------------------------------------------------- */

void fo_req(struct proto_msg *m, uint32_t op, uint64_t ino)
{
	proto_msg_init(m);
	m->kind = PROTO_REQ;
	m->op = op;
	m->ino = ino;
}

/* Kernel asked to cancel: tell the broker (best effort). */
static void fo_interrupt(fuse_req_t r, void *data)
{
	struct proto_msg *req = data, intr;
	uint64_t id = __atomic_load_n(&req->id, __ATOMIC_ACQUIRE);

	(void)r;
	if (!id)
		return;
	fo_req(&intr, PROTO_OP_INTERRUPT, 0);
	intr.target = id;
	(void)rpcc_send(fo.rpc, &intr);
}

/* Map a negative rpcc_call error to what the kernel gets. */
static int fo_local_err(int rc, uint32_t op)
{
	/* The broker hangs up right after SESSION_REVOKED. */
	if (__atomic_load_n(&fo.revoked, __ATOMIC_ACQUIRE))
		return EACCES;
	switch (rc) {
	case -EINVAL: /* the encoder refused a field over its limit */
	case -ENOMEM:
	case -E2BIG:
		return -rc;
	case -ETIMEDOUT:
		log_warn("%s: no reply from the broker in time",
			 proto_op_name(op));
		return EIO;
	default:
		if (!__atomic_exchange_n(&fo.lost, 1, __ATOMIC_ACQ_REL))
			log_err("lost the broker connection (%s): every "
				"operation now fails with EIO; unmount and "
				"mount again",
				strerror(-rc));
		return EIO;
	}
}

/*
 * One RPC for kernel request r.  Returns 0 or the positive errno for the
 * kernel; rep must be cleaned up by the caller in every case.
 */
int fo_call_pipe(fuse_req_t r, struct proto_msg *req, struct proto_msg *rep,
		 int pipe_fd, int *sent)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(r);
	uint64_t ticket;
	int rc;

	proto_msg_init(rep);
	fuse_serve_first_op();
	if (__atomic_load_n(&fo.revoked, __ATOMIC_ACQUIRE))
		return EACCES;
	req->uid = ctx->uid;
	req->gid = ctx->gid;
	fuse_req_interrupt_func(r, fo_interrupt, req);
	ticket = fuse_serve_pattr_begin(req);
	if (pipe_fd < 0)
		rc = rpcc_call(fo.rpc, req, rep);
	else
		rc = rpcc_call_spliced(fo.rpc, req, rep, pipe_fd);
	fuse_serve_pattr_end(req, rc < 0 ? NULL : rep, ticket);
	/* Returns once no interrupt callback can still be using req. */
	fuse_req_interrupt_func(r, NULL, NULL);
	if (rc < 0)
		return fo_local_err(rc, req->op);
	if (sent)
		*sent = 1; /* a reply came: the broker read the whole frame */
	return rep->err;
}

static int fo_call(fuse_req_t r, struct proto_msg *req, struct proto_msg *rep)
{
	return fo_call_pipe(r, req, rep, -1, NULL);
}

/* Call and answer the kernel with the error (or 0) only. */
static void fo_simple(fuse_req_t r, struct proto_msg *req)
{
	struct proto_msg rep;

	fuse_reply_err(r, fo_call(r, req, &rep));
	proto_msg_cleanup(&rep);
}

/* Give back lookup references the kernel never received. */
static void fo_forget_one(uint64_t nodeid, uint64_t n)
{
	struct proto_msg m;

	if (nodeid == 0 || n == 0)
		return;
	fo_req(&m, PROTO_OP_FORGET, nodeid);
	m.len = n;
	(void)rpcc_send(fo.rpc, &m);
}

/* ---- attributes --------------------------------------------------------- */

static void fo_stat(const struct proto_attr *a, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = a->ino;
	st->st_mode = a->mode;
	st->st_nlink = a->nlink;
	st->st_uid = a->uid;
	st->st_gid = a->gid;
	st->st_rdev = a->rdev;
	st->st_size = (off_t)a->size;
	st->st_blocks = (blkcnt_t)a->blocks;
	st->st_blksize = a->blksize;
	st->st_atim.tv_sec = a->atime;
	st->st_atim.tv_nsec = a->atime_ns;
	st->st_mtim.tv_sec = a->mtime;
	st->st_mtim.tv_nsec = a->mtime_ns;
	st->st_ctim.tv_sec = a->ctime;
	st->st_ctim.tv_nsec = a->ctime_ns;
}

static void fo_entry(const struct proto_attr *a, struct fuse_entry_param *e)
{
	memset(e, 0, sizeof(*e));
	e->ino = a->nodeid;
	e->generation = a->gen;
	fo_stat(a, &e->attr);
	e->attr_timeout = fo.cfg.attr_timeout;
	e->entry_timeout = fo.cfg.entry_timeout;
}

/* Answer with an entry; if the kernel refuses it, return the reference. */
static void fo_reply_entry(fuse_req_t r, int err, const struct proto_msg *rep)
{
	struct fuse_entry_param e;

	if (err) {
		fuse_reply_err(r, err);
		return;
	}
	fo_entry(&rep->attr, &e);
	if (fuse_reply_entry(r, &e))
		fo_forget_one(rep->attr.nodeid, 1);
}

static int fo_name_ok(const char *name)
{
	return strlen(name) <= PROTO_MAX_NAME;
}

/* ---- names -------------------------------------------------------------- */

static void fo_lookup(fuse_req_t r, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e;
	struct proto_msg req, rep;
	int err;

	if (!fo_name_ok(name)) {
		fuse_reply_err(r, ENAMETOOLONG);
		return;
	}
	if (!__atomic_load_n(&fo.revoked, __ATOMIC_ACQUIRE) &&
	    newdir_absent(parent, name, fo_now_ns())) {
		/* a directory made here: no round trip (newdir.h) */
		proto_msg_init(&rep);
		err = ENOENT;
	} else {
		fo_req(&req, PROTO_OP_LOOKUP, parent);
		req.name = (char *)name;
		err = fo_call(r, &req, &rep);
	}
	if (err == ENOENT && fo.cfg.negative_timeout > 0) {
		/* A cacheable "no such name". */
		memset(&e, 0, sizeof(e));
		e.entry_timeout = fo.cfg.negative_timeout;
		fuse_reply_entry(r, &e);
	} else {
		fo_reply_entry(r, err, &rep);
	}
	proto_msg_cleanup(&rep);
}

static void fo_forget(fuse_req_t r, fuse_ino_t ino, uint64_t nlookup)
{
	fo_forget_one(ino, nlookup);
	fuse_reply_none(r);
}

static void fo_forget_multi(fuse_req_t r, size_t count,
			    struct fuse_forget_data *f)
{
	size_t i;

	for (i = 0; i < count; i++)
		fo_forget_one(f[i].ino, f[i].nlookup);
	fuse_reply_none(r);
}

/* MKNOD, MKDIR, SYMLINK and LINK all answer with a new entry. */
static void fo_make(fuse_req_t r, struct proto_msg *req)
{
	struct proto_msg rep;
	int err;

	if ((req->name && !fo_name_ok(req->name)) ||
	    (req->name2 && strlen(req->name2) > (req->op == PROTO_OP_SYMLINK
						     ? PROTO_MAX_TARGET
						     : PROTO_MAX_NAME))) {
		fuse_reply_err(r, ENAMETOOLONG);
		return;
	}
	if (req->op == PROTO_OP_LINK)
		newdir_adding(req->ino2, req->name2);
	else
		newdir_adding(req->ino, req->name);
	err = fo_call(r, req, &rep);
	if (!err && req->op == PROTO_OP_MKDIR)
		newdir_made(req->ino, req->name, rep.attr.nodeid, fo_now_ns());
	fo_reply_entry(r, err, &rep);
	proto_msg_cleanup(&rep);
}

static void fo_mknod(fuse_req_t r, fuse_ino_t parent, const char *name,
		     mode_t mode, dev_t rdev)
{
	struct proto_msg req;

	fo_req(&req, PROTO_OP_MKNOD, parent);
	req.name = (char *)name;
	req.mode = mode;
	req.rdev = rdev;
	fo_make(r, &req);
}

static void fo_mkdir(fuse_req_t r, fuse_ino_t parent, const char *name,
		     mode_t mode)
{
	struct proto_msg req;

	fo_req(&req, PROTO_OP_MKDIR, parent);
	req.name = (char *)name;
	req.mode = mode;
	fo_make(r, &req);
}

static void fo_symlink(fuse_req_t r, const char *link, fuse_ino_t parent,
		       const char *name)
{
	struct proto_msg req;

	fo_req(&req, PROTO_OP_SYMLINK, parent);
	req.name = (char *)name;
	req.name2 = (char *)link;
	fo_make(r, &req);
}

static void fo_link(fuse_req_t r, fuse_ino_t ino, fuse_ino_t newparent,
		    const char *newname)
{
	struct proto_msg req;

	fo_req(&req, PROTO_OP_LINK, ino);
	req.ino2 = newparent;
	req.name2 = (char *)newname;
	fo_make(r, &req);
}

static void fo_unlink_op(fuse_req_t r, uint32_t op, fuse_ino_t parent,
			 const char *name)
{
	struct proto_msg req;

	if (!fo_name_ok(name)) {
		fuse_reply_err(r, ENAMETOOLONG);
		return;
	}
	if (op == PROTO_OP_RMDIR)
		newdir_removed(parent, name);
	fo_req(&req, op, parent);
	req.name = (char *)name;
	fo_simple(r, &req);
}

static void fo_unlink(fuse_req_t r, fuse_ino_t parent, const char *name)
{
	fo_unlink_op(r, PROTO_OP_UNLINK, parent, name);
}

static void fo_rmdir(fuse_req_t r, fuse_ino_t parent, const char *name)
{
	fo_unlink_op(r, PROTO_OP_RMDIR, parent, name);
}

static void fo_rename(fuse_req_t r, fuse_ino_t parent, const char *name,
		      fuse_ino_t newparent, const char *newname,
		      unsigned int flags)
{
	struct proto_msg req;

	if (flags & ~(unsigned)(RENAME_NOREPLACE | RENAME_EXCHANGE)) {
		fuse_reply_err(r, EINVAL); /* RENAME_WHITEOUT: not ours */
		return;
	}
	if (!fo_name_ok(name) || !fo_name_ok(newname)) {
		fuse_reply_err(r, ENAMETOOLONG);
		return;
	}
	newdir_adding(newparent, newname);
	if (flags & RENAME_EXCHANGE)
		newdir_adding(parent, name);
	else
		newdir_removed(newparent, newname); /* a directory replaced */
	fo_req(&req, PROTO_OP_RENAME, parent);
	req.name = (char *)name;
	req.ino2 = newparent;
	req.name2 = (char *)newname;
	req.flags = (flags & RENAME_NOREPLACE ? PROTO_RENAME_NOREPLACE : 0) |
		    (flags & RENAME_EXCHANGE ? PROTO_RENAME_EXCHANGE : 0);
	fo_simple(r, &req);
}

static void fo_readlink(fuse_req_t r, fuse_ino_t ino)
{
	char target[PROTO_MAX_TARGET + 1];
	struct proto_msg req, rep;
	int err;

	fo_req(&req, PROTO_OP_READLINK, ino);
	err = fo_call(r, &req, &rep);
	if (!err && (rep.data_len == 0 || rep.data_len > PROTO_MAX_TARGET ||
		     memchr(rep.data, '\0', rep.data_len)))
		err = EIO;
	if (err) {
		fuse_reply_err(r, err);
	} else {
		memcpy(target, rep.data, rep.data_len);
		target[rep.data_len] = '\0';
		fuse_reply_readlink(r, target);
	}
	proto_msg_cleanup(&rep);
}

/* ---- attributes ops ----------------------------------------------------- */

static void fo_reply_attr(fuse_req_t r, int err, const struct proto_msg *rep)
{
	struct stat st;

	if (err) {
		fuse_reply_err(r, err);
		return;
	}
	fo_stat(&rep->attr, &st);
	fuse_reply_attr(r, &st, fo.cfg.attr_timeout);
}

static void fo_getattr(fuse_req_t r, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct proto_msg req, rep;
	struct stat st;
	double ttl;

	fuse_serve_first_op();
	/* Right after an entry operation in this directory (see
	 * fuse_serve.c): the attributes its reply carried. */
	if (fuse_serve_pattr_take(ino, &rep.attr, &ttl)) {
		log_debug("GETATTR %llu: from the last entry operation's reply",
			  (unsigned long long)ino);
		fo_stat(&rep.attr, &st);
		fuse_reply_attr(r, &st, ttl);
		return;
	}
	fo_req(&req, PROTO_OP_GETATTR, ino);
	req.fh = fi ? fi->fh : 0;
	fo_reply_attr(r, fo_call(r, &req, &rep), &rep);
	proto_msg_cleanup(&rep);
}

static void fo_setattr(fuse_req_t r, fuse_ino_t ino, struct stat *st,
		       int to_set, struct fuse_file_info *fi)
{
	static const struct {
		int fuse;
		uint32_t wire;
	} map[] = {
	    {FUSE_SET_ATTR_MODE, PROTO_SET_MODE},
	    {FUSE_SET_ATTR_UID, PROTO_SET_UID},
	    {FUSE_SET_ATTR_GID, PROTO_SET_GID},
	    {FUSE_SET_ATTR_SIZE, PROTO_SET_SIZE},
	    {FUSE_SET_ATTR_ATIME, PROTO_SET_ATIME},
	    {FUSE_SET_ATTR_MTIME, PROTO_SET_MTIME},
	    {FUSE_SET_ATTR_ATIME_NOW, PROTO_SET_ATIME_NOW},
	    {FUSE_SET_ATTR_MTIME_NOW, PROTO_SET_MTIME_NOW},
	    {FUSE_SET_ATTR_CTIME, PROTO_SET_CTIME},
	};
	struct proto_msg req, rep;
	size_t i;

	fo_req(&req, PROTO_OP_SETATTR, ino);
	req.fh = fi ? fi->fh : 0;
	for (i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (to_set & map[i].fuse)
			req.valid |= map[i].wire;
	req.attr.mode = st->st_mode;
	req.attr.uid = st->st_uid;
	req.attr.gid = st->st_gid;
	req.attr.size = (uint64_t)st->st_size;
	req.attr.atime = st->st_atim.tv_sec;
	req.attr.atime_ns = (uint32_t)st->st_atim.tv_nsec;
	req.attr.mtime = st->st_mtim.tv_sec;
	req.attr.mtime_ns = (uint32_t)st->st_mtim.tv_nsec;
	req.attr.ctime = st->st_ctim.tv_sec;
	req.attr.ctime_ns = (uint32_t)st->st_ctim.tv_nsec;
	/* The codec refuses out-of-range nanoseconds; the kernel never sends
	 * them, but UTIME_NOW-style values must not become EINVAL. */
	if (req.attr.atime_ns >= 1000000000u)
		req.attr.atime_ns = 0;
	if (req.attr.mtime_ns >= 1000000000u)
		req.attr.mtime_ns = 0;
	if (req.attr.ctime_ns >= 1000000000u)
		req.attr.ctime_ns = 0;
	fo_reply_attr(r, fo_call(r, &req, &rep), &rep);
	proto_msg_cleanup(&rep);
}

static void fo_access(fuse_req_t r, fuse_ino_t ino, int mask)
{
	struct proto_msg req;

	fo_req(&req, PROTO_OP_ACCESS, ino);
	req.mode = (uint32_t)mask;
	fo_simple(r, &req);
}

static void fo_statfs(fuse_req_t r, fuse_ino_t ino)
{
	struct proto_msg req, rep;
	struct statvfs sv;
	int err;

	fo_req(&req, PROTO_OP_STATFS, ino);
	err = fo_call(r, &req, &rep);
	if (err) {
		fuse_reply_err(r, err);
	} else {
		memset(&sv, 0, sizeof(sv));
		sv.f_bsize = rep.st.bsize;
		sv.f_frsize = rep.st.frsize;
		sv.f_blocks = rep.st.blocks;
		sv.f_bfree = rep.st.bfree;
		sv.f_bavail = rep.st.bavail;
		sv.f_files = rep.st.files;
		sv.f_ffree = rep.st.ffree;
		sv.f_favail = rep.st.favail;
		sv.f_namemax = rep.st.namemax;
		fuse_reply_statfs(r, &sv);
	}
	proto_msg_cleanup(&rep);
}

/* ---- files -------------------------------------------------------------- */

/*
 * With the writeback cache the kernel reads pages of files opened
 * write-only and computes O_APPEND offsets itself, so the broker must
 * open read-write and without O_APPEND (as libfuse's passthrough does).
 */
static uint32_t fo_open_flags(int flags)
{
	if (fo.cfg.writeback) {
		if ((flags & O_ACCMODE) == O_WRONLY)
			flags = (flags & ~O_ACCMODE) | O_RDWR;
		flags &= ~O_APPEND;
	}
	return (uint32_t)flags;
}

static void fo_set_fi(struct fuse_file_info *fi, const struct proto_msg *rep)
{
	fi->fh = rep->fh;
	fi->direct_io = !!(rep->flags & PROTO_OPEN_DIRECT_IO);
	fi->keep_cache = !!(rep->flags & PROTO_OPEN_KEEP_CACHE);
}

static void fo_release_fh(uint64_t ino, uint64_t fh, uint32_t op)
{
	struct proto_msg req, rep;

	fo_req(&req, op, ino);
	req.fh = fh;
	if (rpcc_call(fo.rpc, &req, &rep) == 0)
		proto_msg_cleanup(&rep);
}

static void fo_open(fuse_req_t r, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct proto_msg req, rep;
	int err;

	fo_req(&req, PROTO_OP_OPEN, ino);
	req.flags = fo_open_flags(fi->flags);
	err = fo_call(r, &req, &rep);
	if (err) {
		fuse_reply_err(r, err);
	} else {
		fo_set_fi(fi, &rep);
		if (fuse_reply_open(r, fi)) /* interrupted: close it again */
			fo_release_fh(ino, rep.fh, PROTO_OP_RELEASE);
	}
	proto_msg_cleanup(&rep);
}

static void fo_create(fuse_req_t r, fuse_ino_t parent, const char *name,
		      mode_t mode, struct fuse_file_info *fi)
{
	struct fuse_entry_param e;
	struct proto_msg req, rep;
	int err;

	if (!fo_name_ok(name)) {
		fuse_reply_err(r, ENAMETOOLONG);
		return;
	}
	newdir_adding(parent, name);
	fo_req(&req, PROTO_OP_CREATE, parent);
	req.name = (char *)name;
	req.mode = mode;
	req.flags = fo_open_flags(fi->flags);
	err = fo_call(r, &req, &rep);
	if (err) {
		fuse_reply_err(r, err);
	} else {
		fo_set_fi(fi, &rep);
		fo_entry(&rep.attr, &e);
		if (fuse_reply_create(r, &e, fi)) {
			fo_release_fh(rep.attr.nodeid, rep.fh,
				      PROTO_OP_RELEASE);
			fo_forget_one(rep.attr.nodeid, 1);
		}
	}
	proto_msg_cleanup(&rep);
}

/* READ in pieces of the negotiated payload when the kernel asks for more. */
static void fo_read(fuse_req_t r, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	size_t max = rpcc_max_payload(fo.rpc), got = 0;
	struct proto_msg req, rep;
	uint8_t *buf = NULL;
	int err = 0;

	do {
		fo_req(&req, PROTO_OP_READ, ino);
		req.fh = fi->fh;
		req.off = (uint64_t)off + got;
		req.len = size - got < max ? size - got : max;
		err = fo_call(r, &req, &rep);
		if (!err && rep.data_len > req.len)
			err = EIO; /* more than asked for: broken broker */
		if (!err && got == 0 && rep.data_len == size) {
			fuse_reply_buf(r, (const char *)rep.data, size);
			proto_msg_cleanup(&rep);
			return; /* the usual case: no copy */
		}
		if (!err && !buf && !(buf = malloc(size)))
			err = ENOMEM;
		if (!err && rep.data_len) {
			memcpy(buf + got, rep.data, rep.data_len);
			got += rep.data_len;
		}
		if (!err && rep.data_len < req.len)
			size = got; /* end of file */
		proto_msg_cleanup(&rep);
	} while (!err && got < size);
	if (err)
		fuse_reply_err(r, err);
	else
		fuse_reply_buf(r, (const char *)buf, got);
	free(buf);
}

static void fo_fh_op(fuse_req_t r, uint32_t op, fuse_ino_t ino, uint64_t fh,
		     uint32_t flags)
{
	struct proto_msg req;

	fo_req(&req, op, ino);
	req.fh = fh;
	req.flags = flags;
	fo_simple(r, &req);
}

/*
 * A broker that granted NOFLUSH does nothing at FLUSH in this session, so
 * the kernel is told FLUSH is not implemented and stops sending it on this
 * mount.  close(2) still waits for the dirty pages' WRITEs and returns
 * their errors: the kernel writes back and checks before it looks at FLUSH.
 */
static void fo_flush(fuse_req_t r, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (rpcc_features(fo.rpc) & PROTO_FEAT_NOFLUSH) {
		fuse_reply_err(r, ENOSYS);
		return;
	}
	fo_fh_op(r, PROTO_OP_FLUSH, ino, fi->fh, 0);
}

static void fo_release(fuse_req_t r, fuse_ino_t ino, struct fuse_file_info *fi)
{
	fo_fh_op(r, PROTO_OP_RELEASE, ino, fi->fh, (uint32_t)fi->flags);
}

static void fo_fsync(fuse_req_t r, fuse_ino_t ino, int datasync,
		     struct fuse_file_info *fi)
{
	fo_fh_op(r, PROTO_OP_FSYNC, ino, fi->fh, datasync ? 1 : 0);
}

static void fo_fallocate(fuse_req_t r, fuse_ino_t ino, int mode, off_t off,
			 off_t len, struct fuse_file_info *fi)
{
	struct proto_msg req;

	fo_req(&req, PROTO_OP_FALLOCATE, ino);
	req.fh = fi->fh;
	req.mode = (uint32_t)mode;
	req.off = (uint64_t)off;
	req.len = (uint64_t)len;
	fo_simple(r, &req);
}

static void fo_lseek(fuse_req_t r, fuse_ino_t ino, off_t off, int whence,
		     struct fuse_file_info *fi)
{
	struct proto_msg req, rep;
	int err;

	fo_req(&req, PROTO_OP_LSEEK, ino);
	req.fh = fi->fh;
	req.off = (uint64_t)off;
	req.whence = (uint32_t)whence;
	err = fo_call(r, &req, &rep);
	if (!err && rep.off > (uint64_t)INT64_MAX)
		err = EIO;
	if (err)
		fuse_reply_err(r, err);
	else
		fuse_reply_lseek(r, (off_t)rep.off);
	proto_msg_cleanup(&rep);
}

static void fo_copy_file_range(fuse_req_t r, fuse_ino_t ino_in, off_t off_in,
			       struct fuse_file_info *fi_in, fuse_ino_t ino_out,
			       off_t off_out, struct fuse_file_info *fi_out,
			       size_t len, int flags)
{
	struct proto_msg req, rep;
	int err;

	fo_req(&req, PROTO_OP_COPY_FILE_RANGE, ino_in);
	req.fh = fi_in->fh;
	req.off = (uint64_t)off_in;
	req.ino2 = ino_out;
	req.fh2 = fi_out->fh;
	req.off2 = (uint64_t)off_out;
	req.len = len;
	req.flags = (uint32_t)flags;
	err = fo_call(r, &req, &rep);
	if (!err && rep.len > len)
		err = EIO;
	if (err)
		fuse_reply_err(r, err);
	else
		fuse_reply_write(r, (size_t)rep.len);
	proto_msg_cleanup(&rep);
}

/* ---- directories -------------------------------------------------------- */

static void fo_opendir(fuse_req_t r, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct proto_msg req, rep;
	int err;

	fo_req(&req, PROTO_OP_OPENDIR, ino);
	req.flags = (uint32_t)fi->flags;
	err = fo_call(r, &req, &rep);
	if (err) {
		fuse_reply_err(r, err);
	} else {
		fi->fh = rep.fh;
		if (fuse_reply_open(r, fi))
			fo_release_fh(ino, rep.fh, PROTO_OP_RELEASEDIR);
	}
	proto_msg_cleanup(&rep);
}

static void fo_releasedir(fuse_req_t r, fuse_ino_t ino,
			  struct fuse_file_info *fi)
{
	fo_fh_op(r, PROTO_OP_RELEASEDIR, ino, fi->fh, 0);
}

static void fo_fsyncdir(fuse_req_t r, fuse_ino_t ino, int datasync,
			struct fuse_file_info *fi)
{
	fo_fh_op(r, PROTO_OP_FSYNCDIR, ino, fi->fh, datasync ? 1 : 0);
}

/*
 * READDIRPLUS, answered as READDIRPLUS (plus != 0) or plain READDIR.
 * Entries the kernel does not receive with their reference (all of them
 * for READDIR, the ones that did not fit otherwise) are forgotten.
 */
static void fo_dir(fuse_req_t r, fuse_ino_t ino, size_t size, off_t off,
		   struct fuse_file_info *fi, int plus)
{
	struct fuse_entry_param e;
	struct proto_msg req, rep;
	size_t i, n, pos = 0, sent = 0;
	char *buf = NULL;
	int err;

	fuse_serve_pattr_drop(ino); /* reading it may change its atime */
	fo_req(&req, PROTO_OP_READDIRPLUS, ino);
	req.fh = fi->fh;
	req.off = (uint64_t)off;
	req.len = size;
	err = fo_call(r, &req, &rep);
	if (!err && !(buf = malloc(size ? size : 1)))
		err = ENOMEM;
	for (i = 0; !err && i < rep.ndirents; i++) {
		const struct proto_dirent *de = &rep.dirents[i];

		fo_entry(&de->attr, &e);
		if (plus)
			n = fuse_add_direntry_plus(r, buf + pos, size - pos,
						   de->name, &e,
						   (off_t)de->off);
		else
			n = fuse_add_direntry(r, buf + pos, size - pos,
					      de->name, &e.attr,
					      (off_t)de->off);
		if (n > size - pos)
			break;
		pos += n;
	}
	if (err)
		fuse_reply_err(r, err); /* the kernel got none of them */
	else if (fuse_reply_buf(r, buf, pos) == 0 && plus)
		sent = i;
	for (i = sent; i < rep.ndirents; i++)
		fo_forget_one(rep.dirents[i].attr.nodeid, 1);
	free(buf);
	proto_msg_cleanup(&rep);
}

static void fo_readdirplus(fuse_req_t r, fuse_ino_t ino, size_t size, off_t off,
			   struct fuse_file_info *fi)
{
	fo_dir(r, ino, size, off, fi, 1);
}

static void fo_readdir(fuse_req_t r, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	fo_dir(r, ino, size, off, fi, 0);
}

/* ---- extended attributes ------------------------------------------------ */

/*
 * The protocol lets guests use the user. namespace only and brokers refuse
 * every other name with EOPNOTSUPP, so the answer is given here without a
 * round trip.  It matters: the kernel asks for security.capability before
 * every write(2) to decide whether to drop file capabilities, and FUSE does
 * not cache the answer.  Returns 0, or the errno for the kernel.
 */
static int fo_xattr_name(const char *name)
{
	static const char user[] = "user.";
	size_t len = strlen(name);

	if (__atomic_load_n(&fo.revoked, __ATOMIC_ACQUIRE))
		return EACCES;
	if (len > PROTO_MAX_NAME)
		return ERANGE;
	if (len <= sizeof(user) - 1 || strncmp(name, user, sizeof(user) - 1))
		return EOPNOTSUPP;
	return 0;
}

static void fo_setxattr(fuse_req_t r, fuse_ino_t ino, const char *name,
			const char *value, size_t size, int flags)
{
	struct proto_msg req;
	int err = fo_xattr_name(name);

	if (!err && size > PROTO_MAX_XATTR)
		err = E2BIG;
	if (err) {
		fuse_reply_err(r, err);
		return;
	}
	fo_req(&req, PROTO_OP_SETXATTR, ino);
	req.name = (char *)name;
	req.data = (const uint8_t *)value;
	req.data_len = size;
	req.flags = (uint32_t)flags;
	fo_simple(r, &req);
}

/* GETXATTR and LISTXATTR: size 0 asks for the length only. */
static void fo_xattr_get(fuse_req_t r, struct proto_msg *req, size_t size)
{
	struct proto_msg rep;
	int err;

	req->len = size;
	err = fo_call(r, req, &rep);
	if (!err && size && rep.data_len > size)
		err = ERANGE;
	if (err)
		fuse_reply_err(r, err);
	else if (size == 0)
		fuse_reply_xattr(r, (size_t)rep.len);
	else
		fuse_reply_buf(r, (const char *)rep.data, rep.data_len);
	proto_msg_cleanup(&rep);
}

static void fo_getxattr(fuse_req_t r, fuse_ino_t ino, const char *name,
			size_t size)
{
	struct proto_msg req;
	int err = fo_xattr_name(name);

	if (err) {
		fuse_reply_err(r, err);
		return;
	}
	fo_req(&req, PROTO_OP_GETXATTR, ino);
	req.name = (char *)name;
	fo_xattr_get(r, &req, size);
}

static void fo_listxattr(fuse_req_t r, fuse_ino_t ino, size_t size)
{
	struct proto_msg req;

	fo_req(&req, PROTO_OP_LISTXATTR, ino);
	fo_xattr_get(r, &req, size);
}

static void fo_removexattr(fuse_req_t r, fuse_ino_t ino, const char *name)
{
	struct proto_msg req;
	int err = fo_xattr_name(name);

	if (err) {
		fuse_reply_err(r, err);
		return;
	}
	fo_req(&req, PROTO_OP_REMOVEXATTR, ino);
	req.name = (char *)name;
	fo_simple(r, &req);
}

/* ---- the operation table ------------------------------------------------ */

const struct fuse_lowlevel_ops fuse_ops_ll = {
    .init = fuse_serve_init,
    .lookup = fo_lookup,
    .forget = fo_forget,
    .forget_multi = fo_forget_multi,
    .getattr = fo_getattr,
    .setattr = fo_setattr,
    .readlink = fo_readlink,
    .mknod = fo_mknod,
    .mkdir = fo_mkdir,
    .unlink = fo_unlink,
    .rmdir = fo_rmdir,
    .symlink = fo_symlink,
    .rename = fo_rename,
    .link = fo_link,
    .open = fo_open,
    .read = fo_read,
    .write_buf = fo_write_buf,
    .flush = fo_flush,
    .release = fo_release,
    .fsync = fo_fsync,
    .opendir = fo_opendir,
    .readdir = fo_readdir,
    .readdirplus = fo_readdirplus,
    .releasedir = fo_releasedir,
    .fsyncdir = fo_fsyncdir,
    .statfs = fo_statfs,
    .setxattr = fo_setxattr,
    .getxattr = fo_getxattr,
    .listxattr = fo_listxattr,
    .removexattr = fo_removexattr,
    .access = fo_access,
    .create = fo_create,
    .fallocate = fo_fallocate,
    .lseek = fo_lseek,
    .copy_file_range = fo_copy_file_range,
};
