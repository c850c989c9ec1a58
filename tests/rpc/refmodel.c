/*
 * refmodel.c - RPC-level reference-model test.
 *
 * A seeded random sequence of file operations is applied twice: through a
 * real broker over the RPC (as mountc would send them) and with plain system
 * calls on a local reference directory.  Every operation must give the same
 * outcome (the same errno, the same bytes, the same attributes), and at the
 * end both trees must be identical.  The namespace is deliberately tiny (a
 * handful of names, depth three) so that operations collide: renames over
 * existing entries, unlinks of missing names, lookups through files and
 * symlinks all happen thousands of times.
 *
 * Usage: refmodel -S unix:SOCK -H HANDLEFILE -R REFDIR [-B BACKINGDIR]
 *                 [-n OPS] [-s SEED] [-c FROM] [-v]
 * The seed is printed at start and on failure; rerun with -s to reproduce.
 * -c FROM compares the trees after every operation from number FROM on,
 * which names the first operation after which they differ.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "errmap.h"
#include "proto.h"
#include "rpcc.h"
#include "transport.h"

#define MAX_DEPTH 3
#define MAX_WRITE (256 * 1024)
#define MAX_FILE (2 * 1024 * 1024)

static const char *names[] = {"a", "b", "c", "dd", "e", "long-name-f"};
#define NNAMES (sizeof(names) / sizeof(names[0]))

static struct rpcc *rpc;
static int ref_root = -1;
static uint64_t rng_state;
static uint64_t seed;
static long op_no;
static long check_from; /* -c: compare the trees after each op from here */
static int verbose;
static long lookups_outstanding;

static uint64_t rnd(void)
{
	/* xorshift64*: small, fast, reproducible from the seed. */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ULL;
}

static unsigned rnd_below(unsigned n)
{
	return (unsigned)(rnd() % n);
}

static void fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "refmodel: op %ld: ", op_no);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr,
		"\nrefmodel: FAILED with seed %" PRIu64
		" (rerun with -s %" PRIu64 ")\n0 passed, 1 failed\n",
		seed, seed);
	exit(1);
}

/* ---- the RPC side ----------------------------------------------------- */

static void req_init(struct proto_msg *m, uint32_t op)
{
	proto_msg_init(m);
	m->kind = PROTO_REQ;
	m->op = op;
	m->uid = 0;
	m->gid = 0;
}

/* Returns 0 or a positive errno from the broker; transport errors abort. */
static int call(struct proto_msg *req, struct proto_msg *rep)
{
	int rc;

	proto_msg_init(rep);
	rc = rpcc_call(rpc, req, rep);
	if (rc < 0)
		fail("%s: transport error %s", proto_op_name(req->op),
		     strerror(-rc));
	return rep->err;
}

static void rpc_forget(uint64_t nodeid)
{
	struct proto_msg req;

	if (nodeid <= 1)
		return;
	req_init(&req, PROTO_OP_FORGET);
	req.ino = nodeid;
	req.len = 1;
	if (rpcc_send(rpc, &req) < 0)
		fail("FORGET: send failed");
	lookups_outstanding--;
}

static int rpc_lookup(uint64_t parent, const char *name, struct proto_attr *a)
{
	struct proto_msg req, rep;
	int err;

	req_init(&req, PROTO_OP_LOOKUP);
	req.ino = parent;
	req.name = (char *)name;
	err = call(&req, &rep);
	if (!err) {
		*a = rep.attr;
		lookups_outstanding++;
	}
	proto_msg_cleanup(&rep);
	return err;
}

/* A path as components; the parent is resolved by LOOKUP per component. */
struct rpath {
	const char *comp[MAX_DEPTH];
	int n;
};

static void rpath_random(struct rpath *p)
{
	p->n = 1 + (int)rnd_below(MAX_DEPTH);
	for (int i = 0; i < p->n; i++)
		p->comp[i] = names[rnd_below(NNAMES)];
}

static void rpath_str(const struct rpath *p, char *out, size_t len)
{
	out[0] = 0;
	for (int i = 0; i < p->n; i++) {
		if (i)
			strncat(out, "/", len - strlen(out) - 1);
		strncat(out, p->comp[i], len - strlen(out) - 1);
	}
}

/*
 * Resolve all but the last component.  *parent holds a lookup reference the
 * caller releases with rpc_forget (none for the root).
 */
static int rpc_parent(const struct rpath *p, uint64_t *parent)
{
	struct proto_attr a;
	uint64_t cur = 1;
	int err;

	for (int i = 0; i < p->n - 1; i++) {
		err = rpc_lookup(cur, p->comp[i], &a);
		rpc_forget(cur);
		if (err)
			return err;
		cur = a.nodeid;
		/* The kernel walks only through directories. */
		if (!S_ISDIR(a.mode)) {
			rpc_forget(cur);
			return ENOTDIR;
		}
	}
	*parent = cur;
	return 0;
}

/* ---- the reference side ----------------------------------------------- */

/* Walk like the broker does: never through a symlink. */
static int ref_parent(const struct rpath *p, int *dirfd)
{
	int cur = dup(ref_root), next;

	for (int i = 0; i < p->n - 1; i++) {
		next = openat(cur, p->comp[i],
			      O_PATH | O_NOFOLLOW | O_DIRECTORY | O_CLOEXEC);
		close(cur);
		if (next < 0)
			return errno == ELOOP ? ENOTDIR : errno;
		cur = next;
	}
	*dirfd = cur;
	return 0;
}

static int ref_stat(int dirfd, const char *name, struct stat *st)
{
	return fstatat(dirfd, name, st, AT_SYMLINK_NOFOLLOW) ? errno : 0;
}

/* ---- comparing -------------------------------------------------------- */

static void compare_err(const char *what, const char *path, int got, int want)
{
	if (got != want)
		fail("%s %s: broker says %s, reference says %s", what, path,
		     got ? errmap_name(got) : "success",
		     want ? errmap_name(want) : "success");
}

static void compare_attr(const char *what, const char *path,
			 const struct proto_attr *a, const struct stat *st)
{
	if (a->mode != st->st_mode)
		fail("%s %s: mode %o, reference %o", what, path, a->mode,
		     st->st_mode);
	if (a->nlink != st->st_nlink && !S_ISDIR(st->st_mode))
		fail("%s %s: nlink %u, reference %lu", what, path, a->nlink,
		     (unsigned long)st->st_nlink);
	if (!S_ISDIR(st->st_mode) && a->size != (uint64_t)st->st_size)
		fail("%s %s: size %" PRIu64 ", reference %lld", what, path,
		     a->size, (long long)st->st_size);
	if (a->uid != st->st_uid || a->gid != st->st_gid)
		fail("%s %s: owner %u:%u, reference %u:%u", what, path, a->uid,
		     a->gid, st->st_uid, st->st_gid);
}

/* ---- operations ------------------------------------------------------- */

struct target {
	struct rpath p;
	char path[64];
	const char *name;
	uint64_t rparent; /* broker nodeid of the parent (ref held) */
	int fparent;	  /* reference dirfd of the parent */
	int perr;	  /* error resolving the parent (same on both sides) */
};

static void target_open(struct target *t)
{
	int e1, e2;

	rpath_random(&t->p);
	rpath_str(&t->p, t->path, sizeof(t->path));
	t->name = t->p.comp[t->p.n - 1];
	t->rparent = 1;
	t->fparent = -1;
	e1 = rpc_parent(&t->p, &t->rparent);
	e2 = ref_parent(&t->p, &t->fparent);
	compare_err("resolve parent of", t->path, e1, e2);
	t->perr = e1;
}

static void target_close(struct target *t)
{
	if (t->perr)
		return;
	rpc_forget(t->rparent);
	close(t->fparent);
}

static void fill(uint8_t *p, size_t n)
{
	uint64_t x = rnd();

	for (size_t i = 0; i < n; i++) {
		if ((i & 7) == 0)
			x = x * 6364136223846793005ULL + 1442695040888963407ULL;
		p[i] = (uint8_t)(x >> ((i & 7) * 8));
	}
}

static void op_getattr(struct target *t)
{
	struct proto_attr a;
	struct stat st;
	int e1, e2;

	e1 = rpc_lookup(t->rparent, t->name, &a);
	e2 = ref_stat(t->fparent, t->name, &st);
	compare_err("lookup", t->path, e1, e2);
	if (!e1) {
		compare_attr("lookup", t->path, &a, &st);
		rpc_forget(a.nodeid);
	}
}

static void op_mkdir(struct target *t)
{
	struct proto_msg req, rep;
	mode_t mode = 0700 | (rnd_below(2) ? 055 : 0);
	int e1, e2;

	req_init(&req, PROTO_OP_MKDIR);
	req.ino = t->rparent;
	req.name = (char *)t->name;
	req.mode = mode;
	e1 = call(&req, &rep);
	if (!e1)
		rpc_forget(rep.attr.nodeid), lookups_outstanding++;
	e2 = mkdirat(t->fparent, t->name, mode) ? errno : 0;
	compare_err("mkdir", t->path, e1, e2);
	proto_msg_cleanup(&rep);
}

static void op_simple_remove(struct target *t, uint32_t op)
{
	struct proto_msg req, rep;
	int e1, e2;

	req_init(&req, op);
	req.ino = t->rparent;
	req.name = (char *)t->name;
	e1 = call(&req, &rep);
	proto_msg_cleanup(&rep);
	e2 = unlinkat(t->fparent, t->name,
		      op == PROTO_OP_RMDIR ? AT_REMOVEDIR : 0)
		 ? errno
		 : 0;
	compare_err(proto_op_name(op), t->path, e1, e2);
}

static void op_symlink(struct target *t)
{
	static const char *targets[] = {"a", "../b", "/etc/passwd", "dd/e",
					"../../../../../../etc"};
	const char *dst = targets[rnd_below(5)];
	struct proto_msg req, rep;
	int e1, e2;

	req_init(&req, PROTO_OP_SYMLINK);
	req.ino = t->rparent;
	req.name = (char *)t->name;
	req.name2 = (char *)dst;
	e1 = call(&req, &rep);
	if (!e1)
		lookups_outstanding++, rpc_forget(rep.attr.nodeid);
	proto_msg_cleanup(&rep);
	e2 = symlinkat(dst, t->fparent, t->name) ? errno : 0;
	compare_err("symlink", t->path, e1, e2);
}

static void op_readlink(struct target *t)
{
	struct proto_msg req, rep;
	struct proto_attr a;
	char lnk[PATH_MAX];
	ssize_t n;
	int e1, e2;

	e1 = rpc_lookup(t->rparent, t->name, &a);
	if (!e1) {
		req_init(&req, PROTO_OP_READLINK);
		req.ino = a.nodeid;
		e1 = call(&req, &rep);
		rpc_forget(a.nodeid);
	} else {
		proto_msg_init(&rep);
	}
	n = readlinkat(t->fparent, t->name, lnk, sizeof(lnk));
	e2 = n < 0 ? errno : 0;
	compare_err("readlink", t->path, e1, e2);
	if (!e1 &&
	    (rep.data_len != (size_t)n || (n > 0 && memcmp(rep.data, lnk, n))))
		fail("readlink %s: target differs", t->path);
	proto_msg_cleanup(&rep);
}

/* Open on both sides; returns the shared errno. */
static int open_both(struct target *t, int flags, mode_t mode, uint64_t *fh,
		     uint64_t *node, int *fd)
{
	struct proto_msg req, rep;
	struct proto_attr a;
	int e1, e2;

	*node = 0;
	if (flags & O_CREAT) {
		req_init(&req, PROTO_OP_CREATE);
		req.ino = t->rparent;
		req.name = (char *)t->name;
		req.mode = mode;
		req.flags = (uint32_t)flags;
		e1 = call(&req, &rep);
		if (!e1) {
			*fh = rep.fh;
			*node = rep.attr.nodeid;
			lookups_outstanding++;
		}
		proto_msg_cleanup(&rep);
		/* CREATE on an existing name opens it unless O_EXCL. */
	} else {
		e1 = rpc_lookup(t->rparent, t->name, &a);
		if (!e1) {
			*node = a.nodeid;
			req_init(&req, PROTO_OP_OPEN);
			req.ino = a.nodeid;
			req.flags = (uint32_t)flags;
			e1 = call(&req, &rep);
			if (!e1)
				*fh = rep.fh;
			proto_msg_cleanup(&rep);
		}
	}
	*fd = openat(t->fparent, t->name, flags | O_NOFOLLOW | O_CLOEXEC, mode);
	e2 = *fd < 0 ? errno : 0;
	if (!e2) {
		struct stat st;

		/* Through FUSE a directory is opened with OPENDIR and read()
		 * on it fails with EISDIR: OPEN of a directory is refused. */
		if (fstat(*fd, &st) == 0 && S_ISDIR(st.st_mode)) {
			close(*fd);
			*fd = -1;
			e2 = EISDIR;
		}
	}
	/* A symlink refused by O_NOFOLLOW and a directory opened for writing
	 * are the same refusal on both sides. */
	compare_err("open", t->path, e1, e2);
	if (e1 && *node) {
		rpc_forget(*node);
		*node = 0;
	}
	return e1;
}

static void close_both(uint64_t fh, uint64_t node, int fd)
{
	struct proto_msg req, rep;
	int e1;

	req_init(&req, PROTO_OP_FLUSH);
	req.ino = node;
	req.fh = fh;
	e1 = call(&req, &rep);
	proto_msg_cleanup(&rep);
	if (e1)
		fail("flush: %s", errmap_name(e1));
	req_init(&req, PROTO_OP_RELEASE);
	req.ino = node;
	req.fh = fh;
	e1 = call(&req, &rep);
	proto_msg_cleanup(&rep);
	if (e1)
		fail("release: %s", errmap_name(e1));
	rpc_forget(node);
	close(fd);
}

static void op_write(struct target *t, int create)
{
	static uint8_t data[MAX_WRITE];
	struct proto_msg req, rep;
	int flags = O_WRONLY | (create ? O_CREAT : 0);
	uint64_t fh = 0, node, off;
	size_t len;
	ssize_t n;
	int fd, e1;

	switch (rnd_below(4)) {
	case 0:
		flags |= O_TRUNC;
		break;
	case 1:
		flags |= O_APPEND;
		break;
	case 2:
		if (create)
			flags |= O_EXCL;
		break;
	default:
		break;
	}
	if (open_both(t, flags, 0644, &fh, &node, &fd))
		return;
	len = rnd_below(8) ? rnd_below(8192) : rnd_below(MAX_WRITE);
	off = rnd_below(MAX_FILE - MAX_WRITE);
	if (rnd_below(2))
		off = rnd_below(16384);
	fill(data, len);
	req_init(&req, PROTO_OP_WRITE);
	req.ino = node;
	req.fh = fh;
	req.off = off;
	req.data = data;
	req.data_len = len;
	e1 = call(&req, &rep);
	n = pwrite(fd, data, len, (off_t)off);
	compare_err("write", t->path, e1, n < 0 ? errno : 0);
	if (!e1 && rep.len != (uint64_t)n)
		fail("write %s: wrote %" PRIu64 ", reference %zd", t->path,
		     rep.len, n);
	proto_msg_cleanup(&rep);
	close_both(fh, node, fd);
}

static void op_read(struct target *t)
{
	static uint8_t data[MAX_WRITE];
	struct proto_msg req, rep;
	uint64_t fh = 0, node, off;
	size_t len;
	ssize_t n;
	int fd, e1;

	if (open_both(t, O_RDONLY, 0, &fh, &node, &fd))
		return;
	len = 1 + rnd_below(MAX_WRITE - 1);
	off = rnd_below(2) ? rnd_below(MAX_FILE) : rnd_below(4096);
	req_init(&req, PROTO_OP_READ);
	req.ino = node;
	req.fh = fh;
	req.off = off;
	req.len = len;
	e1 = call(&req, &rep);
	n = pread(fd, data, len, (off_t)off);
	compare_err("read", t->path, e1, n < 0 ? errno : 0);
	if (!e1 &&
	    (rep.data_len != (size_t)n || (n > 0 && memcmp(rep.data, data, n))))
		fail("read %s @%" PRIu64 "+%zu: %zu bytes, reference %zd, "
		     "or content differs",
		     t->path, off, len, rep.data_len, n);
	proto_msg_cleanup(&rep);
	close_both(fh, node, fd);
}

static void op_setattr(struct target *t)
{
	struct proto_msg req, rep;
	struct proto_attr a;
	struct stat st;
	int e1, e2, what = (int)rnd_below(2);
	uint64_t size = rnd_below(MAX_FILE);
	mode_t mode =
	    0600 | (rnd_below(2) ? 044 : 0) | (rnd_below(2) ? 0111 : 0);

	e1 = rpc_lookup(t->rparent, t->name, &a);
	e2 = ref_stat(t->fparent, t->name, &st);
	compare_err("lookup", t->path, e1, e2);
	if (e1)
		return;
	/* Symlink modes are not changeable on Linux; skip them. */
	if (S_ISLNK(st.st_mode))
		goto out;
	req_init(&req, PROTO_OP_SETATTR);
	req.ino = a.nodeid;
	req.fh = 0;
	if (what == 0) {
		req.valid = PROTO_SET_SIZE;
		req.attr.size = size;
	} else {
		req.valid = PROTO_SET_MODE;
		req.attr.mode = mode;
	}
	e1 = call(&req, &rep);
	if (what == 0) {
		int fd = openat(t->fparent, t->name,
				O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
		e2 = fd < 0 ? errno : (ftruncate(fd, (off_t)size) ? errno : 0);
		if (fd >= 0)
			close(fd);
	} else {
		e2 = fchmodat(t->fparent, t->name, mode, 0) ? errno : 0;
	}
	compare_err(what ? "chmod" : "truncate", t->path, e1, e2);
	if (!e1) {
		ref_stat(t->fparent, t->name, &st);
		compare_attr("setattr", t->path, &rep.attr, &st);
	}
	proto_msg_cleanup(&rep);
out:
	rpc_forget(a.nodeid);
}

static void op_rename(void)
{
	static const uint32_t flags[] = {0, 0, PROTO_RENAME_NOREPLACE,
					 PROTO_RENAME_EXCHANGE};
	struct target from, to;
	struct proto_msg req, rep;
	uint32_t f = flags[rnd_below(4)];
	int e1, e2;

	target_open(&from);
	target_open(&to);
	if (from.perr || to.perr)
		goto out;
	req_init(&req, PROTO_OP_RENAME);
	req.ino = from.rparent;
	req.name = (char *)from.name;
	req.ino2 = to.rparent;
	req.name2 = (char *)to.name;
	req.flags = f;
	e1 = call(&req, &rep);
	proto_msg_cleanup(&rep);
	e2 = renameat2(from.fparent, from.name, to.fparent, to.name,
		       (f & PROTO_RENAME_NOREPLACE ? RENAME_NOREPLACE : 0) |
			   (f & PROTO_RENAME_EXCHANGE ? RENAME_EXCHANGE : 0))
		 ? errno
		 : 0;
	compare_err("rename", from.path, e1, e2);
out:
	target_close(&to);
	target_close(&from);
}

static void op_link(void)
{
	struct target from, to;
	struct proto_msg req, rep;
	struct proto_attr a;
	int e1, e2;

	target_open(&from);
	target_open(&to);
	if (from.perr || to.perr)
		goto out;
	e1 = rpc_lookup(from.rparent, from.name, &a);
	e2 = faccessat(from.fparent, from.name, F_OK, AT_SYMLINK_NOFOLLOW)
		 ? errno
		 : 0;
	compare_err("lookup", from.path, e1, e2);
	if (e1)
		goto out;
	req_init(&req, PROTO_OP_LINK);
	req.ino = a.nodeid;
	req.ino2 = to.rparent;
	req.name2 = (char *)to.name;
	e1 = call(&req, &rep);
	if (!e1)
		lookups_outstanding++, rpc_forget(rep.attr.nodeid);
	proto_msg_cleanup(&rep);
	rpc_forget(a.nodeid);
	e2 =
	    linkat(from.fparent, from.name, to.fparent, to.name, 0) ? errno : 0;
	compare_err("link", to.path, e1, e2);
out:
	target_close(&to);
	target_close(&from);
}

static void op_xattr(struct target *t)
{
	static const char *xn[] = {"user.one", "user.two"};
	const char *name = xn[rnd_below(2)];
	struct proto_msg req, rep;
	struct proto_attr a;
	char val[64];
	uint8_t got[256];
	ssize_t n;
	int e1, e2, what = (int)rnd_below(3);

	e1 = rpc_lookup(t->rparent, t->name, &a);
	e2 = faccessat(t->fparent, t->name, F_OK, AT_SYMLINK_NOFOLLOW) ? errno
								       : 0;
	compare_err("lookup", t->path, e1, e2);
	if (e1)
		return;
	/* user.* xattrs exist on regular files and directories only. */
	if (!S_ISREG(a.mode) && !S_ISDIR(a.mode))
		goto out;
	{
		int fd = openat(t->fparent, t->name,
				O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			fail("xattr %s: reference open: %s", t->path,
			     strerror(errno));
		if (what == 0) {
			snprintf(val, sizeof(val), "v%u", rnd_below(1000));
			req_init(&req, PROTO_OP_SETXATTR);
			req.ino = a.nodeid;
			req.name = (char *)name;
			req.data = (const uint8_t *)val;
			req.data_len = strlen(val);
			e1 = call(&req, &rep);
			e2 = fsetxattr(fd, name, val, strlen(val), 0) ? errno
								      : 0;
			compare_err("setxattr", t->path, e1, e2);
		} else if (what == 1) {
			req_init(&req, PROTO_OP_GETXATTR);
			req.ino = a.nodeid;
			req.name = (char *)name;
			req.len = sizeof(got);
			e1 = call(&req, &rep);
			n = fgetxattr(fd, name, got, sizeof(got));
			compare_err("getxattr", t->path, e1, n < 0 ? errno : 0);
			if (!e1 && (rep.data_len != (size_t)n ||
				    (n > 0 && memcmp(rep.data, got, n))))
				fail("getxattr %s: value differs", t->path);
		} else {
			req_init(&req, PROTO_OP_REMOVEXATTR);
			req.ino = a.nodeid;
			req.name = (char *)name;
			e1 = call(&req, &rep);
			e2 = fremovexattr(fd, name) ? errno : 0;
			compare_err("removexattr", t->path, e1, e2);
		}
		close(fd);
		proto_msg_cleanup(&rep);
	}
out:
	rpc_forget(a.nodeid);
}

/* ---- whole-tree comparison ------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void dump_line(struct buf *out, const char *path, mode_t mode,
		      unsigned nlink, uint64_t size, const uint8_t *content,
		      size_t clen)
{
	char line[PATH_MAX + 128];
	uint64_t h = 1469598103934665603ULL; /* FNV-1a of the content */

	for (size_t i = 0; i < clen; i++)
		h = (h ^ content[i]) * 1099511628211ULL;
	snprintf(line, sizeof(line), "%s %o %u %" PRIu64 " %016" PRIx64 "\n",
		 path, mode, S_ISDIR(mode) ? 0 : nlink,
		 S_ISDIR(mode) ? 0 : size, h);
	buf_append(out, line, strlen(line));
}

/* Reference tree: a sorted listing with content hashes. */
static void dump_ref(int dirfd, const char *prefix, struct buf *out)
{
	char *list[4096];
	size_t n = 0;
	struct dirent *de;
	DIR *d = fdopendir(dup(dirfd));

	if (!d)
		fail("dump: opendir %s: %s", prefix, strerror(errno));
	rewinddir(d); /* the dup shares its offset with dirfd: dumped before? */
	while ((de = readdir(d)) && n < 4096)
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			list[n++] = strdup(de->d_name);
	closedir(d);
	qsort(list, n, sizeof(list[0]), cmp_str);
	for (size_t i = 0; i < n; i++) {
		char path[PATH_MAX];
		struct buf content;
		struct stat st;
		ssize_t len = 0;

		buf_init(&content, 0);
		snprintf(path, sizeof(path), "%s/%s", prefix, list[i]);
		if (fstatat(dirfd, list[i], &st, AT_SYMLINK_NOFOLLOW))
			fail("dump: stat %s", path);
		if (S_ISREG(st.st_mode)) {
			/* O_APPEND writes grow files past MAX_FILE: read all */
			int fd = openat(dirfd, list[i], O_RDONLY | O_NOFOLLOW);

			if (fd < 0)
				fail("dump: open %s: %s", path,
				     strerror(errno));
			do {
				if (buf_reserve(&content, 65536))
					fail("dump: %s: out of memory", path);
				len = read(fd, content.p + content.len, 65536);
				if (len > 0)
					content.len += (size_t)len;
			} while (len > 0);
			close(fd);
			if (len < 0)
				fail("dump: read %s: %s", path,
				     strerror(errno));
		} else if (S_ISLNK(st.st_mode)) {
			if (buf_reserve(&content, PATH_MAX))
				fail("dump: %s: out of memory", path);
			len = readlinkat(dirfd, list[i], (char *)content.p,
					 PATH_MAX);
			if (len > 0)
				content.len = (size_t)len;
		}
		dump_line(out, path, st.st_mode, (unsigned)st.st_nlink,
			  (uint64_t)st.st_size, content.p, content.len);
		buf_cleanup(&content);
		if (S_ISDIR(st.st_mode)) {
			int sub = openat(dirfd, list[i],
					 O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
			if (sub < 0)
				fail("dump: open %s", path);
			dump_ref(sub, path, out);
			close(sub);
		}
		free(list[i]);
	}
}

struct rent {
	char *name;
	struct proto_attr attr;
};

static int cmp_rent(const void *a, const void *b)
{
	return strcmp(((const struct rent *)a)->name,
		      ((const struct rent *)b)->name);
}

static void rpc_read_all(uint64_t node, struct buf *content)
{
	struct proto_msg req, rep;
	uint64_t fh, off = 0;

	req_init(&req, PROTO_OP_OPEN);
	req.ino = node;
	req.flags = O_RDONLY;
	if (call(&req, &rep))
		fail("dump: open node %" PRIu64 ": %s", node,
		     errmap_name(rep.err));
	fh = rep.fh;
	proto_msg_cleanup(&rep);
	for (;;) {
		req_init(&req, PROTO_OP_READ);
		req.ino = node;
		req.fh = fh;
		req.off = off;
		req.len = PROTO_MAX_PAYLOAD;
		if (call(&req, &rep))
			fail("dump: read: %s", errmap_name(rep.err));
		if (rep.data_len == 0) {
			proto_msg_cleanup(&rep);
			break;
		}
		if (buf_append(content, rep.data, rep.data_len))
			fail("dump: read: out of memory");
		off += rep.data_len;
		proto_msg_cleanup(&rep);
	}
	req_init(&req, PROTO_OP_RELEASE);
	req.ino = node;
	req.fh = fh;
	call(&req, &rep);
	proto_msg_cleanup(&rep);
}

/* Broker tree through OPENDIR/READDIRPLUS/READ, in the same format. */
static void dump_rpc(uint64_t dir, const char *prefix, struct buf *out)
{
	struct proto_msg req, rep;
	struct rent *ents = NULL;
	size_t n = 0, cap = 0;
	uint64_t fh, off = 0;

	req_init(&req, PROTO_OP_OPENDIR);
	req.ino = dir;
	if (call(&req, &rep))
		fail("dump: opendir %s: %s", prefix, errmap_name(rep.err));
	fh = rep.fh;
	proto_msg_cleanup(&rep);
	for (;;) {
		req_init(&req, PROTO_OP_READDIRPLUS);
		req.ino = dir;
		req.fh = fh;
		req.off = off;
		req.len = 4096; /* small budget: exercises resumption */
		if (call(&req, &rep))
			fail("dump: readdirplus %s: %s", prefix,
			     errmap_name(rep.err));
		if (rep.ndirents == 0) {
			proto_msg_cleanup(&rep);
			break;
		}
		for (size_t i = 0; i < rep.ndirents; i++) {
			struct proto_dirent *d = &rep.dirents[i];

			off = d->off;
			if (d->attr.nodeid)
				lookups_outstanding++;
			if (!strcmp(d->name, ".") || !strcmp(d->name, "..")) {
				rpc_forget(d->attr.nodeid);
				continue;
			}
			if (n == cap) {
				cap = cap ? cap * 2 : 64;
				ents = realloc(ents, cap * sizeof(*ents));
				if (!ents)
					fail("out of memory");
			}
			ents[n].name = strdup(d->name);
			ents[n].attr = d->attr;
			n++;
		}
		proto_msg_cleanup(&rep);
	}
	req_init(&req, PROTO_OP_RELEASEDIR);
	req.ino = dir;
	req.fh = fh;
	call(&req, &rep);
	proto_msg_cleanup(&rep);

	if (n)
		qsort(ents, n, sizeof(*ents), cmp_rent);
	for (size_t i = 0; i < n; i++) {
		char path[PATH_MAX];
		struct proto_attr *a = &ents[i].attr;
		struct buf content;

		buf_init(&content, 0);
		snprintf(path, sizeof(path), "%s/%s", prefix, ents[i].name);
		if (!a->nodeid)
			fail("dump: %s: readdirplus entry without a node",
			     path);
		if (S_ISREG(a->mode)) {
			rpc_read_all(a->nodeid, &content);
		} else if (S_ISLNK(a->mode)) {
			req_init(&req, PROTO_OP_READLINK);
			req.ino = a->nodeid;
			if (call(&req, &rep))
				fail("dump: readlink %s", path);
			buf_append(&content, rep.data, rep.data_len);
			proto_msg_cleanup(&rep);
		}
		dump_line(out, path, a->mode, a->nlink, a->size, content.p,
			  content.len);
		buf_cleanup(&content);
		if (S_ISDIR(a->mode))
			dump_rpc(a->nodeid, path, out);
		rpc_forget(a->nodeid);
		free(ents[i].name);
	}
	free(ents);
}

static void compare_trees(const char *backing)
{
	struct buf want, got, back;
	int fd;

	buf_init(&want, 0);
	buf_init(&got, 0);
	buf_init(&back, 0);
	dump_ref(ref_root, "", &want);
	dump_rpc(1, "", &got);
	buf_append(&want, "", 1);
	buf_append(&got, "", 1);
	if (strcmp((char *)want.p, (char *)got.p)) {
		fprintf(stderr, "--- reference tree\n%s--- broker tree\n%s",
			(char *)want.p, (char *)got.p);
		fail(op_no ? "trees differ after this operation"
			   : "final trees differ");
	}
	if (backing) {
		fd = open(backing, O_RDONLY | O_DIRECTORY);
		if (fd < 0)
			fail("open backing dir %s: %s", backing,
			     strerror(errno));
		dump_ref(fd, "", &back);
		close(fd);
		buf_append(&back, "", 1);
		if (strcmp((char *)want.p, (char *)back.p))
			fail("backing directory differs from the reference");
	}
	if (!op_no)
		printf("refmodel: final trees identical (%zu bytes of "
		       "listing)\n",
		       want.len);
	buf_cleanup(&want);
	buf_cleanup(&got);
	buf_cleanup(&back);
}

/* ---- driver ------------------------------------------------------------ */

static void step(void)
{
	struct target t;
	unsigned k = rnd_below(100);

	if (k < 8) {
		op_rename();
		return;
	}
	if (k < 11) {
		op_link();
		return;
	}
	target_open(&t);
	if (t.perr)
		return;
	if (k < 25)
		op_getattr(&t);
	else if (k < 35)
		op_mkdir(&t);
	else if (k < 40)
		op_simple_remove(&t, PROTO_OP_RMDIR);
	else if (k < 46)
		op_simple_remove(&t, PROTO_OP_UNLINK);
	else if (k < 50)
		op_symlink(&t);
	else if (k < 53)
		op_readlink(&t);
	else if (k < 68)
		op_write(&t, 1);
	else if (k < 74)
		op_write(&t, 0);
	else if (k < 86)
		op_read(&t);
	else if (k < 93)
		op_setattr(&t);
	else
		op_xattr(&t);
	target_close(&t);
}

static int read_file(const char *path, char *out, size_t cap, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, out, cap);
	close(fd);
	if (n < 0)
		return -errno;
	while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == ' '))
		n--;
	*len = (size_t)n;
	return 0;
}

int main(int argc, char **argv)
{
	const char *sock = NULL, *handle_path = NULL, *refdir = NULL;
	const char *backing = NULL, *why = NULL;
	struct transport_ep ep;
	struct transport_conn *conn;
	struct rpcc_opts o = {0};
	struct proto_msg hello;
	static char handle[8192];
	char reason[256];
	size_t hlen = 0;
	long nops = 10000;
	int c, rc;

	seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	while ((c = getopt(argc, argv, "S:H:R:B:n:s:c:v")) != -1) {
		switch (c) {
		case 'S':
			sock = optarg;
			break;
		case 'H':
			handle_path = optarg;
			break;
		case 'R':
			refdir = optarg;
			break;
		case 'B':
			backing = optarg;
			break;
		case 'n':
			nops = strtol(optarg, NULL, 10);
			break;
		case 's':
			seed = strtoull(optarg, NULL, 10);
			break;
		case 'c':
			check_from = strtol(optarg, NULL, 10);
			break;
		case 'v':
			verbose = 1;
			break;
		default:
			fprintf(stderr,
				"usage: refmodel -S EP -H HANDLE -R REFDIR "
				"[-B BACKING] [-n OPS] [-s SEED] [-c FROM]\n");
			return 2;
		}
	}
	if (!sock || !handle_path || !refdir) {
		fprintf(stderr, "refmodel: -S, -H and -R are required\n");
		return 2;
	}
	printf("refmodel: seed %" PRIu64 ", %ld operations\n", seed, nops);
	rng_state = seed ? seed : 1;
	if (read_file(handle_path, handle, sizeof(handle), &hlen))
		fail("cannot read handle %s", handle_path);
	ref_root = open(refdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (ref_root < 0)
		fail("cannot open %s: %s", refdir, strerror(errno));
	if (transport_parse(sock, &ep, &why))
		fail("endpoint %s: %s", sock, why);
	rc = transport_connect(&ep, NULL, 10000, &conn, &why);
	if (rc)
		fail("connect %s: %s", sock, why ? why : strerror(-rc));
	o.handle = handle;
	o.handle_len = hlen;
	o.features = PROTO_FEAT_ALL;
	o.timeout_ms = 30000;
	proto_msg_init(&hello);
	rc = rpcc_start(conn, &o, &rpc, &hello, reason, sizeof(reason));
	if (rc)
		fail("HELLO refused: %s (%s)", reason, strerror(-rc));
	proto_msg_cleanup(&hello);
	if (rpcc_run(rpc))
		fail("cannot start the RPC reader");

	for (op_no = 1; op_no <= nops; op_no++) {
		step();
		if (check_from > 0 && op_no >= check_from)
			compare_trees(backing);
		if (verbose && op_no % 1000 == 0)
			printf("refmodel: %ld operations\n", op_no);
	}
	op_no = 0;
	compare_trees(backing);
	if (lookups_outstanding != 0)
		fail("%ld lookup references not forgotten",
		     lookups_outstanding);
	rpcc_free(rpc);
	close(ref_root);
	printf("refmodel: %ld operations matched\n1 passed, 0 failed\n", nops);
	return 0;
}
