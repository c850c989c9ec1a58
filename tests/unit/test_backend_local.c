/*
 * test_backend_local.c - the local backend driven through its dispatch
 * entry with plain struct proto_msg requests, on a mkdtemp root.
 *
 * Besides the POSIX round trips, most cases here are negative: names that
 * try to leave the tree, symlinks planted to point outside it, forged file
 * handles, device nodes and writes on read-only sessions must all fail
 * without touching anything outside the session directory.  One file for
 * the backend's six source files, hence its length.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "backend.h"
#include "broker.h"
#include "local.h"
#include "proto.h"
#include "unit.h"

#define ROOT 1u

static char tmproot[] = "/tmp/occfs-bl-XXXXXX";
static struct backend *B; /* the started backend, root tmproot */
static char fsdir[64];
static struct backend_session *S;
static uint32_t req_gid = 5678; /* caller's gid in requests */

/* ---- request helpers ---------------------------------------------------- */

static void req_init(struct proto_msg *r, uint32_t op)
{
	proto_msg_init(r);
	r->kind = PROTO_REQ;
	r->op = op;
	r->uid = 1234;
	r->gid = req_gid;
}

/* Dispatch req on S (or s); rep is initialised here and cleaned by caller. */
static int call_on(struct backend_session *s, struct proto_msg *req,
		   struct proto_msg *rep)
{
	proto_msg_init(rep);
	rep->kind = PROTO_REP;
	rep->op = req->op;
	return backend_local.dispatch(s, req, rep);
}

static int lookup(uint64_t parent, const char *name, struct proto_attr *a)
{
	struct proto_msg q, p;
	int rc;

	req_init(&q, PROTO_OP_LOOKUP);
	q.ino = parent;
	q.name = (char *)name;
	rc = call_on(S, &q, &p);
	if (!rc && a)
		*a = p.attr;
	proto_msg_cleanup(&p);
	return rc;
}

static void forget(uint64_t nodeid, uint64_t n)
{
	struct proto_msg q, p;

	req_init(&q, PROTO_OP_FORGET);
	q.ino = nodeid;
	q.len = n;
	call_on(S, &q, &p);
	proto_msg_cleanup(&p);
}

static int getattr(uint64_t nodeid, struct proto_attr *a)
{
	struct proto_msg q, p;
	int rc;

	req_init(&q, PROTO_OP_GETATTR);
	q.ino = nodeid;
	rc = call_on(S, &q, &p);
	if (!rc && a)
		*a = p.attr;
	proto_msg_cleanup(&p);
	return rc;
}

static int create_on(struct backend_session *s, uint64_t parent,
		     const char *name, uint32_t flags, uint32_t mode,
		     struct proto_attr *a, uint64_t *fh)
{
	struct proto_msg q, p;
	int rc;

	req_init(&q, PROTO_OP_CREATE);
	q.ino = parent;
	q.name = (char *)name;
	q.flags = flags;
	q.mode = S_IFREG | mode;
	rc = call_on(s, &q, &p);
	if (!rc) {
		if (a)
			*a = p.attr;
		if (fh)
			*fh = p.fh;
	}
	proto_msg_cleanup(&p);
	return rc;
}

static int create(uint64_t parent, const char *name, uint32_t flags,
		  uint32_t mode, struct proto_attr *a, uint64_t *fh)
{
	return create_on(S, parent, name, flags, mode, a, fh);
}

static int do_open(struct backend_session *s, uint64_t nodeid, uint32_t flags,
		   uint64_t *fh)
{
	struct proto_msg q, p;
	int rc;

	req_init(&q, PROTO_OP_OPEN);
	q.ino = nodeid;
	q.flags = flags;
	rc = call_on(s, &q, &p);
	if (!rc)
		*fh = p.fh;
	proto_msg_cleanup(&p);
	return rc;
}

static int simple(uint32_t op, uint64_t ino, uint64_t fh)
{
	struct proto_msg q, p;
	int rc;

	req_init(&q, op);
	q.ino = ino;
	q.fh = fh;
	rc = call_on(S, &q, &p);
	proto_msg_cleanup(&p);
	return rc;
}

static long do_write(struct backend_session *s, uint64_t fh, uint64_t off,
		     const char *data)
{
	struct proto_msg q, p;
	int rc;
	long n;

	req_init(&q, PROTO_OP_WRITE);
	q.fh = fh;
	q.off = off;
	q.data = (const uint8_t *)data;
	q.data_len = strlen(data);
	rc = call_on(s, &q, &p);
	n = rc ? rc : (long)p.len;
	proto_msg_cleanup(&p);
	return n;
}

/* Read into out (NUL-terminated); returns bytes or -errno. */
static long do_read(struct backend_session *s, uint64_t fh, uint64_t off,
		    size_t len, char *out)
{
	struct proto_msg q, p;
	long n;
	int rc;

	req_init(&q, PROTO_OP_READ);
	q.fh = fh;
	q.off = off;
	q.len = len;
	rc = call_on(s, &q, &p);
	n = rc ? rc : (long)p.data_len;
	if (!rc) {
		memcpy(out, p.data, p.data_len);
		out[p.data_len] = 0;
	}
	proto_msg_cleanup(&p);
	return n;
}

static int setattr(uint64_t nodeid, uint32_t valid, const struct proto_attr *in,
		   struct proto_attr *out)
{
	struct proto_msg q, p;
	int rc;

	req_init(&q, PROTO_OP_SETATTR);
	q.ino = nodeid;
	q.valid = valid;
	q.attr = *in;
	rc = call_on(S, &q, &p);
	if (!rc && out)
		*out = p.attr;
	proto_msg_cleanup(&p);
	return rc;
}

static int mknod_(uint64_t parent, const char *name, uint32_t mode,
		  struct proto_attr *a)
{
	struct proto_msg q, p;
	int rc;

	req_init(&q, PROTO_OP_MKNOD);
	q.ino = parent;
	q.name = (char *)name;
	q.mode = mode;
	q.rdev = 0x0103;
	rc = call_on(S, &q, &p);
	if (!rc && a)
		*a = p.attr;
	proto_msg_cleanup(&p);
	return rc;
}

static int mkdir_(uint64_t parent, const char *name, uint32_t mode,
		  struct proto_attr *a)
{
	struct proto_msg q, p;
	int rc;

	req_init(&q, PROTO_OP_MKDIR);
	q.ino = parent;
	q.name = (char *)name;
	q.mode = mode;
	rc = call_on(S, &q, &p);
	if (!rc && a)
		*a = p.attr;
	proto_msg_cleanup(&p);
	return rc;
}

static int name_op(uint32_t op, uint64_t parent, const char *name)
{
	struct proto_msg q, p;
	int rc;

	req_init(&q, op);
	q.ino = parent;
	q.name = (char *)name;
	rc = call_on(S, &q, &p);
	proto_msg_cleanup(&p);
	return rc;
}

static int rename_(uint64_t p1, const char *n1, uint64_t p2, const char *n2,
		   uint32_t flags)
{
	struct proto_msg q, p;
	int rc;

	req_init(&q, PROTO_OP_RENAME);
	q.ino = p1;
	q.name = (char *)n1;
	q.ino2 = p2;
	q.name2 = (char *)n2;
	q.flags = flags;
	rc = call_on(S, &q, &p);
	proto_msg_cleanup(&p);
	return rc;
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0;

	if (!d)
		return -1;
	while ((de = readdir(d)))
		n++;
	closedir(d);
	return n;
}

static void host_path(char *buf, size_t size, const char *name)
{
	snprintf(buf, size, "%s/%s", fsdir, name);
}

/* ---- cases -------------------------------------------------------------- */

static void test_roundtrip(void)
{
	struct proto_attr a, b, in;
	uint64_t fh, fh2;
	char buf[64];

	CHECK_EQ(create(ROOT, "f", O_RDWR | O_CREAT, 0640, &a, &fh), 0);
	CHECK(S_ISREG(a.mode));
	CHECK_EQ(a.mode & 07777, 0640); /* exact, whatever the umask */
	CHECK_EQ(a.uid, 1234);
	CHECK_EQ(a.gid, 5678);
	CHECK(a.nodeid > ROOT);
	CHECK_EQ(do_write(S, fh, 0, "hello"), 5);
	CHECK_EQ(do_read(S, fh, 0, 100, buf), 5);
	CHECK_STR(buf, "hello");
	CHECK_EQ(do_read(S, fh, 3, 100, buf), 2);
	CHECK_STR(buf, "lo");
	CHECK_EQ(do_read(S, fh, 100, 100, buf), 0);
	CHECK_EQ(simple(PROTO_OP_FLUSH, a.nodeid, fh), 0);
	CHECK_EQ(simple(PROTO_OP_RELEASE, a.nodeid, fh), 0);

	/* O_APPEND: the offset asked for does not matter. */
	CHECK_EQ(do_open(S, a.nodeid, O_WRONLY | O_APPEND, &fh2), 0);
	CHECK_EQ(do_write(S, fh2, 0, "XY"), 2);
	CHECK_EQ(do_read(S, fh2, 0, 10, buf), -EBADF); /* write-only */
	CHECK_EQ(simple(PROTO_OP_RELEASE, a.nodeid, fh2), 0);
	CHECK_EQ(do_open(S, a.nodeid, O_RDONLY, &fh), 0);
	CHECK_EQ(do_read(S, fh, 0, 100, buf), 7);
	CHECK_STR(buf, "helloXY");

	/* Truncate, mode, times, owner. */
	memset(&in, 0, sizeof(in));
	in.size = 2;
	CHECK_EQ(setattr(a.nodeid, PROTO_SET_SIZE, &in, &b), 0);
	CHECK_EQ(b.size, 2);
	CHECK_EQ(do_read(S, fh, 0, 100, buf), 2);
	CHECK_STR(buf, "he");
	in.mode = 04711;
	in.mtime = 1000000;
	in.mtime_ns = 5;
	in.uid = 42;
	CHECK_EQ(setattr(a.nodeid, PROTO_SET_UID, &in, &b), 0);
	CHECK_EQ(b.uid, 42);
	CHECK_EQ(setattr(a.nodeid, PROTO_SET_MODE | PROTO_SET_MTIME, &in, &b),
		 0);
	CHECK_EQ(b.mode & 07777, 04711);
	CHECK_EQ(b.mtime, 1000000);
	CHECK_EQ(b.mtime_ns, 5);
	CHECK_EQ(setattr(a.nodeid, PROTO_SET_ATIME_NOW, &in, &b), 0);
	CHECK(b.atime > 1000000);
	CHECK_EQ(getattr(a.nodeid, &b), 0);
	CHECK_EQ(b.size, 2);
	CHECK_EQ(b.ino, a.ino);
	/* A writable fh of another file must not be truncated instead. */
	{
		struct proto_attr o;
		uint64_t ofh;
		struct proto_msg q, p;

		CHECK_EQ(
		    create(ROOT, "other", O_RDWR | O_CREAT, 0644, &o, &ofh), 0);
		CHECK_EQ(do_write(S, ofh, 0, "keep"), 4);
		req_init(&q, PROTO_OP_SETATTR);
		q.ino = a.nodeid;
		q.fh = ofh;
		q.valid = PROTO_SET_SIZE;
		q.attr.size = 1;
		CHECK_EQ(call_on(S, &q, &p), 0);
		CHECK_EQ(p.attr.size, 1);
		proto_msg_cleanup(&p);
		CHECK_EQ(getattr(o.nodeid, &o), 0);
		CHECK_EQ(o.size, 4);
		CHECK_EQ(simple(PROTO_OP_RELEASE, o.nodeid, ofh), 0);
		forget(o.nodeid, 1);
	}
	in.size = 0;
	CHECK_EQ(simple(PROTO_OP_FSYNC, a.nodeid, fh), 0);
	CHECK_EQ(simple(PROTO_OP_RELEASE, a.nodeid, fh), 0);
	CHECK_EQ(do_open(S, a.nodeid, O_RDWR | O_TRUNC, &fh), 0);
	CHECK_EQ(getattr(a.nodeid, &b), 0);
	CHECK_EQ(b.size, 0);
	CHECK_EQ(simple(PROTO_OP_RELEASE, a.nodeid, fh), 0);

	/* CREATE of an existing name: O_EXCL fails, without it opens. */
	CHECK_EQ(create(ROOT, "f", O_RDWR | O_CREAT | O_EXCL, 0600, NULL, NULL),
		 -EEXIST);
	CHECK_EQ(create(ROOT, "f", O_RDWR | O_CREAT, 0600, &b, &fh), 0);
	CHECK_EQ(b.nodeid, a.nodeid);
	CHECK_EQ(b.mode & 07777, 04711); /* untouched */
	CHECK_EQ(simple(PROTO_OP_RELEASE, a.nodeid, fh), 0);
	forget(a.nodeid, 2);
}

static void test_hardlink_and_forget(void)
{
	struct proto_attr a, b, c;
	struct proto_msg q, p;
	uint64_t fh;

	CHECK_EQ(create(ROOT, "h1", O_WRONLY | O_CREAT, 0644, &a, &fh), 0);
	CHECK_EQ(simple(PROTO_OP_RELEASE, a.nodeid, fh), 0);
	req_init(&q, PROTO_OP_LINK);
	q.ino = a.nodeid;
	q.ino2 = ROOT;
	q.name2 = "h2";
	CHECK_EQ(call_on(S, &q, &p), 0);
	CHECK_EQ(p.attr.nodeid, a.nodeid);
	CHECK_EQ(p.attr.nlink, 2);
	proto_msg_cleanup(&p);
	CHECK_EQ(call_on(S, &q, &p), -EEXIST);
	proto_msg_cleanup(&p);
	q.ino = ROOT; /* directories cannot be linked */
	q.name2 = "h3";
	CHECK_EQ(call_on(S, &q, &p), -EPERM);
	proto_msg_cleanup(&p);

	CHECK_EQ(lookup(ROOT, "h2", &b), 0);
	CHECK_EQ(b.nodeid, a.nodeid);
	CHECK_EQ(lookup(ROOT, "h1", &b), 0);
	CHECK_EQ(b.nodeid, a.nodeid);
	/* create + link + 2 lookups = 4 references; 3 keep it alive. */
	forget(a.nodeid, 3);
	CHECK_EQ(getattr(a.nodeid, NULL), 0);
	forget(a.nodeid, 1);
	CHECK_EQ(getattr(a.nodeid, &c), -ESTALE);
	/* A new lookup gets a new nodeid: ids are never reused. */
	CHECK_EQ(lookup(ROOT, "h1", &c), 0);
	CHECK(c.nodeid > a.nodeid);
	CHECK_EQ(c.ino, a.ino);
	forget(c.nodeid, 1);
	/* The root is never forgotten; unknown ids are ignored. */
	forget(ROOT, 100);
	forget(999999, 1);
	CHECK_EQ(getattr(ROOT, &c), 0);
	CHECK(S_ISDIR(c.mode));
	CHECK_EQ(getattr(0, NULL), -ESTALE);
	CHECK_EQ(getattr(UINT64_MAX, NULL), -ESTALE);
}

static int readdirplus(uint64_t fh, uint64_t off, uint64_t len,
		       struct proto_msg *p)
{
	struct proto_msg q;

	req_init(&q, PROTO_OP_READDIRPLUS);
	q.fh = fh;
	q.off = off;
	q.len = len;
	return call_on(S, &q, p);
}

static int opendir_(uint64_t nodeid, uint64_t *fh)
{
	struct proto_msg q, p;
	int rc;

	req_init(&q, PROTO_OP_OPENDIR);
	q.ino = nodeid;
	rc = call_on(S, &q, &p);
	if (!rc)
		*fh = p.fh;
	proto_msg_cleanup(&p);
	return rc;
}

/* ".." of the session root shows the root, never the host above it. */
static void test_root_dots(void)
{
	struct proto_attr r;
	struct proto_msg p;
	uint64_t fh;
	size_t i;
	int dots = 0;

	CHECK_EQ(getattr(ROOT, &r), 0);
	CHECK_EQ(opendir_(ROOT, &fh), 0);
	CHECK_EQ(readdirplus(fh, 0, 1 << 20, &p), 0);
	for (i = 0; i < p.ndirents; i++) {
		if (!strcmp(p.dirents[i].name, "..") ||
		    !strcmp(p.dirents[i].name, ".")) {
			dots++;
			CHECK_EQ(p.dirents[i].attr.ino, r.ino);
			CHECK_EQ(p.dirents[i].attr.nodeid, 0);
		} else {
			forget(p.dirents[i].attr.nodeid, 1);
		}
	}
	CHECK_EQ(dots, 2);
	proto_msg_cleanup(&p);
	CHECK_EQ(simple(PROTO_OP_RELEASEDIR, ROOT, fh), 0);
}

#define NBIG 2000

/* Read the whole directory in replies of budget bytes; count names. */
static void readdir_all(uint64_t dir, uint64_t budget, unsigned char *seen,
			int *dots, int *bad)
{
	struct proto_msg p;
	uint64_t fh, off = 0;
	size_t i, used;
	int rounds = 0;

	CHECK_EQ(opendir_(dir, &fh), 0);
	for (;;) {
		CHECK_EQ(readdirplus(fh, off, budget, &p), 0);
		if (!p.ndirents) {
			proto_msg_cleanup(&p);
			break;
		}
		used = 0;
		for (i = 0; i < p.ndirents; i++) {
			const char *n = p.dirents[i].name;
			int k;

			used += (152 + strlen(n) + 7) & ~7ul;
			if (!strcmp(n, ".") || !strcmp(n, "..")) {
				(*dots)++;
				if (p.dirents[i].attr.nodeid != 0)
					(*bad)++;
				continue;
			}
			k = atoi(n + 1);
			if (n[0] != 'e' || k < 0 || k >= NBIG ||
			    !p.dirents[i].attr.nodeid ||
			    !S_ISREG(p.dirents[i].attr.mode))
				(*bad)++;
			else
				seen[k]++;
			forget(p.dirents[i].attr.nodeid, 1);
		}
		CHECK(used <= budget);
		CHECK(p.ndirents <= PROTO_MAX_DIRENTS);
		off = p.dirents[p.ndirents - 1].off;
		proto_msg_cleanup(&p);
		if (++rounds > 10 * NBIG)
			break;
	}
	CHECK_EQ(simple(PROTO_OP_RELEASEDIR, dir, fh), 0);
}

static void test_readdirplus(void)
{
	static unsigned char seen[NBIG];
	static const uint64_t budgets[] = {200, 4096, 65536, 1 << 20};
	struct proto_attr d, a, before;
	struct proto_msg p;
	char name[16];
	uint64_t fh, fh2, cookie;
	int i, j, dots, bad, ok;
	size_t b;

	CHECK_EQ(mkdir_(ROOT, "big", 0755, &d), 0);
	for (i = 0; i < NBIG; i++) {
		snprintf(name, sizeof(name), "e%d", i);
		if (mknod_(d.nodeid, name, S_IFREG | 0600, &a))
			break;
		forget(a.nodeid, 1);
	}
	CHECK_EQ(i, NBIG);
	CHECK_EQ(getattr(d.nodeid, &before), 0);
	for (b = 0; b < sizeof(budgets) / sizeof(budgets[0]); b++) {
		memset(seen, 0, sizeof(seen));
		dots = bad = 0;
		readdir_all(d.nodeid, budgets[b], seen, &dots, &bad);
		for (ok = 1, j = 0; j < NBIG; j++)
			ok &= seen[j] == 1;
		CHECK(ok);
		CHECK_EQ(dots, 2);
		CHECK_EQ(bad, 0);
	}

	/* A cookie from one handle resumes on another. */
	CHECK_EQ(opendir_(d.nodeid, &fh), 0);
	CHECK_EQ(readdirplus(fh, 0, 4096, &p), 0);
	CHECK(p.ndirents > 2 && p.ndirents < 40);
	cookie = p.dirents[p.ndirents - 2].off;
	snprintf(name, sizeof(name), "%s", p.dirents[p.ndirents - 1].name);
	for (b = 0; b < p.ndirents; b++)
		forget(p.dirents[b].attr.nodeid, 1);
	proto_msg_cleanup(&p);
	CHECK_EQ(opendir_(d.nodeid, &fh2), 0);
	CHECK_EQ(readdirplus(fh2, cookie, 4096, &p), 0);
	CHECK(p.ndirents > 0);
	if (p.ndirents)
		CHECK_STR(p.dirents[0].name, name);
	for (b = 0; b < p.ndirents; b++)
		forget(p.dirents[b].attr.nodeid, 1);
	proto_msg_cleanup(&p);
	/* A budget too small for one entry returns none, not an error. */
	CHECK_EQ(readdirplus(fh2, 0, 100, &p), 0);
	CHECK_EQ(p.ndirents, 0);
	proto_msg_cleanup(&p);
	CHECK_EQ(simple(PROTO_OP_FSYNCDIR, d.nodeid, fh2), 0);
	test_root_dots();
	CHECK_EQ(simple(PROTO_OP_RELEASEDIR, d.nodeid, fh2), 0);
	CHECK_EQ(simple(PROTO_OP_RELEASEDIR, d.nodeid, fh), 0);

	/* Entries removed after readdir started are skipped, not failed. */
	CHECK_EQ(opendir_(d.nodeid, &fh), 0);
	CHECK_EQ(readdirplus(fh, 0, 400, &p), 0);
	cookie = p.ndirents ? p.dirents[p.ndirents - 1].off : 0;
	for (b = 0; b < p.ndirents; b++)
		forget(p.dirents[b].attr.nodeid, 1);
	proto_msg_cleanup(&p);
	for (i = 0; i < NBIG; i += 2) {
		snprintf(name, sizeof(name), "e%d", i);
		if (name_op(PROTO_OP_UNLINK, d.nodeid, name))
			break;
	}
	CHECK_EQ(i, NBIG);
	CHECK_EQ(readdirplus(fh, cookie, 1 << 20, &p), 0);
	for (bad = 0, b = 0; b < p.ndirents; b++) {
		if (p.dirents[b].attr.nodeid &&
		    atoi(p.dirents[b].name + 1) % 2 == 0)
			bad++;
		forget(p.dirents[b].attr.nodeid, 1);
	}
	CHECK_EQ(bad, 0);
	proto_msg_cleanup(&p);
	CHECK_EQ(simple(PROTO_OP_RELEASEDIR, d.nodeid, fh), 0);
	forget(d.nodeid, 1);
}

static void test_rename(void)
{
	struct proto_attr a, b, x;
	uint64_t fh;

	CHECK_EQ(create(ROOT, "ra", O_WRONLY | O_CREAT, 0644, &a, &fh), 0);
	CHECK_EQ(simple(PROTO_OP_RELEASE, a.nodeid, fh), 0);
	CHECK_EQ(create(ROOT, "rb", O_WRONLY | O_CREAT, 0644, &b, &fh), 0);
	CHECK_EQ(simple(PROTO_OP_RELEASE, b.nodeid, fh), 0);
	CHECK_EQ(rename_(ROOT, "ra", ROOT, "rb", PROTO_RENAME_NOREPLACE),
		 -EEXIST);
	CHECK_EQ(rename_(ROOT, "ra", ROOT, "rb", PROTO_RENAME_EXCHANGE), 0);
	CHECK_EQ(lookup(ROOT, "ra", &x), 0);
	CHECK_EQ(x.nodeid, b.nodeid);
	CHECK_EQ(lookup(ROOT, "rb", &x), 0);
	CHECK_EQ(x.nodeid, a.nodeid);
	CHECK_EQ(rename_(ROOT, "ra", ROOT, "rc",
			 PROTO_RENAME_EXCHANGE | PROTO_RENAME_NOREPLACE),
		 -EINVAL);
	CHECK_EQ(rename_(ROOT, "ra", ROOT, "rc", 0x80), -EINVAL);
	CHECK_EQ(rename_(ROOT, "ra", ROOT, "rc", PROTO_RENAME_EXCHANGE),
		 -ENOENT);
	CHECK_EQ(rename_(ROOT, "ra", ROOT, "rc", PROTO_RENAME_NOREPLACE), 0);
	CHECK_EQ(rename_(ROOT, "rc", ROOT, "rb", 0), 0); /* replaces */
	CHECK_EQ(lookup(ROOT, "rb", &x), 0);
	CHECK_EQ(x.nodeid, b.nodeid);
	CHECK_EQ(lookup(ROOT, "ra", NULL), -ENOENT);
	CHECK_EQ(rename_(ROOT, "rb", a.nodeid, "z", 0), -ENOTDIR);
	CHECK_EQ(rename_(ROOT, "rb", ROOT, "..", 0), -EINVAL);
	CHECK_EQ(rename_(ROOT, "rb", ROOT, "a/b", 0), -EINVAL);
	forget(a.nodeid, 2);
	forget(b.nodeid, 3);
}

static int xattr(uint32_t op, uint64_t ino, const char *name, const char *val,
		 uint32_t flags, uint64_t len, struct proto_msg *p)
{
	struct proto_msg q;

	req_init(&q, op);
	q.ino = ino;
	q.name = (char *)name;
	q.data = (const uint8_t *)val;
	q.data_len = val ? strlen(val) : 0;
	q.flags = flags;
	q.len = len;
	return call_on(S, &q, p);
}

static void test_xattr(void)
{
	struct proto_attr a;
	struct proto_msg p;
	uint64_t fh;
	const char want[] = "user.k\0user.k2";

	CHECK_EQ(create(ROOT, "x1", O_WRONLY | O_CREAT, 0644, &a, &fh), 0);
	CHECK_EQ(simple(PROTO_OP_RELEASE, a.nodeid, fh), 0);
	CHECK_EQ(xattr(PROTO_OP_SETXATTR, a.nodeid, "user.k", "v", 0, 0, &p),
		 0);
	proto_msg_cleanup(&p);
	CHECK_EQ(xattr(PROTO_OP_SETXATTR, a.nodeid, "user.k2", "0123456789", 0,
		       0, &p),
		 0);
	proto_msg_cleanup(&p);
	CHECK_EQ(xattr(PROTO_OP_SETXATTR, a.nodeid, "user.k", "w", XATTR_CREATE,
		       0, &p),
		 -EEXIST);
	proto_msg_cleanup(&p);
	CHECK_EQ(xattr(PROTO_OP_SETXATTR, a.nodeid, "user.no", "w",
		       XATTR_REPLACE, 0, &p),
		 -ENODATA);
	proto_msg_cleanup(&p);
	CHECK_EQ(
	    xattr(PROTO_OP_SETXATTR, a.nodeid, "user.k", "w", 0x100, 0, &p),
	    -EINVAL);
	proto_msg_cleanup(&p);

	CHECK_EQ(xattr(PROTO_OP_GETXATTR, a.nodeid, "user.k2", NULL, 0, 0, &p),
		 0);
	CHECK_EQ(p.len, 10);
	CHECK_EQ(p.data_len, 0);
	proto_msg_cleanup(&p);
	CHECK_EQ(xattr(PROTO_OP_GETXATTR, a.nodeid, "user.k2", NULL, 0, 3, &p),
		 -ERANGE);
	proto_msg_cleanup(&p);
	CHECK_EQ(
	    xattr(PROTO_OP_GETXATTR, a.nodeid, "user.k2", NULL, 0, 100, &p), 0);
	CHECK_EQ(p.data_len, 10);
	CHECK(p.data && !memcmp(p.data, "0123456789", 10));
	proto_msg_cleanup(&p);

	CHECK_EQ(xattr(PROTO_OP_LISTXATTR, a.nodeid, NULL, NULL, 0, 0, &p), 0);
	CHECK_EQ(p.len, sizeof(want));
	proto_msg_cleanup(&p);
	CHECK_EQ(xattr(PROTO_OP_LISTXATTR, a.nodeid, NULL, NULL, 0, 4, &p),
		 -ERANGE);
	proto_msg_cleanup(&p);
	CHECK_EQ(xattr(PROTO_OP_LISTXATTR, a.nodeid, NULL, NULL, 0, 1000, &p),
		 0);
	CHECK_EQ(p.data_len, sizeof(want));
	/* Order is the filesystem's: accept either. */
	CHECK(p.data_len == sizeof(want) &&
	      (!memcmp(p.data, want, sizeof(want)) ||
	       !memcmp(p.data, "user.k2\0user.k", sizeof(want))));
	proto_msg_cleanup(&p);

	/* Other namespaces are refused. */
	CHECK_EQ(xattr(PROTO_OP_SETXATTR, a.nodeid, "trusted.x", "1", 0, 0, &p),
		 -EOPNOTSUPP);
	proto_msg_cleanup(&p);
	CHECK_EQ(xattr(PROTO_OP_SETXATTR, a.nodeid, "security.capability", "1",
		       0, 0, &p),
		 -EOPNOTSUPP);
	proto_msg_cleanup(&p);
	CHECK_EQ(
	    xattr(PROTO_OP_GETXATTR, a.nodeid, "trusted.x", NULL, 0, 0, &p),
	    -EOPNOTSUPP);
	proto_msg_cleanup(&p);
	CHECK_EQ(xattr(PROTO_OP_REMOVEXATTR, a.nodeid,
		       "system.posix_acl_access", NULL, 0, 0, &p),
		 -EOPNOTSUPP);
	proto_msg_cleanup(&p);
	CHECK_EQ(xattr(PROTO_OP_SETXATTR, a.nodeid, "user.", "1", 0, 0, &p),
		 -EOPNOTSUPP);
	proto_msg_cleanup(&p);
	/* trusted.* set on the host is not listed to the guest. */
	{
		char path[128];

		host_path(path, sizeof(path), "x1");
		if (setxattr(path, "trusted.hidden", "1", 1, 0) == 0) {
			CHECK_EQ(xattr(PROTO_OP_LISTXATTR, a.nodeid, NULL, NULL,
				       0, 0, &p),
				 0);
			CHECK_EQ(p.len, sizeof(want));
			proto_msg_cleanup(&p);
		}
	}

	CHECK_EQ(
	    xattr(PROTO_OP_REMOVEXATTR, a.nodeid, "user.k", NULL, 0, 0, &p), 0);
	proto_msg_cleanup(&p);
	CHECK_EQ(xattr(PROTO_OP_GETXATTR, a.nodeid, "user.k", NULL, 0, 10, &p),
		 -ENODATA);
	proto_msg_cleanup(&p);
	forget(a.nodeid, 1);
}

static void test_rdonly(void)
{
	struct backend_session *ro = NULL;
	struct proto_msg q, p;
	struct proto_attr a;
	uint64_t fh;
	char buf[16];
	int fd;

	/* Content written through the writable session first. */
	CHECK_EQ(create(ROOT, "ro", O_WRONLY | O_CREAT, 0644, &a, &fh), 0);
	CHECK_EQ(do_write(S, fh, 0, "data"), 4);
	CHECK_EQ(simple(PROTO_OP_RELEASE, a.nodeid, fh), 0);
	forget(a.nodeid, 1);

	CHECK_EQ(
	    backend_local.session_open(B, "fs1", BACKEND_SESSION_RDONLY, &ro),
	    0);
	if (!ro)
		return;
	req_init(&q, PROTO_OP_LOOKUP);
	q.ino = ROOT;
	q.name = "ro";
	CHECK_EQ(call_on(ro, &q, &p), 0);
	a = p.attr;
	proto_msg_cleanup(&p);
	CHECK_EQ(
	    create_on(ro, ROOT, "new", O_WRONLY | O_CREAT, 0644, NULL, NULL),
	    -EROFS);
	CHECK_EQ(do_open(ro, a.nodeid, O_WRONLY, &fh), -EROFS);
	CHECK_EQ(do_open(ro, a.nodeid, O_RDWR, &fh), -EROFS);
	CHECK_EQ(do_open(ro, a.nodeid, O_RDONLY | O_TRUNC, &fh), -EROFS);
	CHECK_EQ(do_open(ro, a.nodeid, O_RDONLY, &fh), 0);
	CHECK_EQ(do_read(ro, fh, 0, 16, buf), 4);
	CHECK_STR(buf, "data");
	CHECK_EQ(do_write(ro, fh, 0, "x"), -EROFS);
	req_init(&q, PROTO_OP_MKDIR);
	q.ino = ROOT;
	q.name = "d";
	q.mode = 0755;
	CHECK_EQ(call_on(ro, &q, &p), -EROFS);
	proto_msg_cleanup(&p);
	req_init(&q, PROTO_OP_UNLINK);
	q.ino = ROOT;
	q.name = "ro";
	CHECK_EQ(call_on(ro, &q, &p), -EROFS);
	proto_msg_cleanup(&p);
	req_init(&q, PROTO_OP_SETATTR);
	q.ino = a.nodeid;
	q.valid = PROTO_SET_SIZE;
	CHECK_EQ(call_on(ro, &q, &p), -EROFS);
	proto_msg_cleanup(&p);
	req_init(&q, PROTO_OP_ACCESS);
	q.ino = a.nodeid;
	q.mode = W_OK;
	CHECK_EQ(call_on(ro, &q, &p), -EROFS);
	q.mode = R_OK;
	CHECK_EQ(call_on(ro, &q, &p), 0);
	/* The file is intact on the host. */
	fd = open(fsdir, O_RDONLY);
	CHECK(fd >= 0);
	if (fd >= 0)
		close(fd);
	backend_local.session_close(ro); /* closes the open fh too */
}

static void test_bad_names(void)
{
	static const char *bad[] = {"..", ".", "a/b", "", "/etc", "../x", "x/"};
	char longname[300];
	struct proto_msg q, p;
	struct stat st;
	size_t i;
	int rc;

	memset(longname, 'a', 256);
	longname[256] = 0;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		rc = lookup(ROOT, bad[i], NULL);
		CHECK(rc == -EINVAL || rc == -ENOENT);
		CHECK_EQ(mkdir_(ROOT, bad[i], 0755, NULL), -EINVAL);
		CHECK_EQ(
		    create(ROOT, bad[i], O_RDWR | O_CREAT, 0644, NULL, NULL),
		    -EINVAL);
		CHECK_EQ(mknod_(ROOT, bad[i], S_IFREG | 0644, NULL), -EINVAL);
		CHECK_EQ(name_op(PROTO_OP_UNLINK, ROOT, bad[i]), -EINVAL);
		CHECK_EQ(name_op(PROTO_OP_RMDIR, ROOT, bad[i]), -EINVAL);
	}
	CHECK_EQ(lookup(ROOT, longname, NULL), -ENAMETOOLONG);
	CHECK_EQ(mkdir_(ROOT, longname, 0755, NULL), -ENAMETOOLONG);
	CHECK_EQ(lookup(ROOT, NULL, NULL), -EINVAL);
	longname[255] = 0; /* 255 is allowed by the rules (ENOENT here) */
	CHECK_EQ(lookup(ROOT, longname, NULL), -ENOENT);
	/* Nothing appeared next to the session directory. */
	CHECK(lstat("/tmp/occfs-bl-x", &st) < 0);

	/* NUL inside a name never reaches a backend: the decoder refuses it.
	 * [0, id 1, LOOKUP, uid 0, gid 0, ino 1, "a\0b"] */
	{
		static const uint8_t frame[] = {0x97, 0x00, 0x01, 0x04,
						0x00, 0x00, 0x01, 0xa3,
						'a',  0x00, 'b'};
		static const uint8_t good[] = {0x97, 0x00, 0x01, 0x04,
					       0x00, 0x00, 0x01, 0xa3,
					       'a',  'x',  'b'};

		CHECK_EQ(proto_decode(frame, sizeof(frame), &q, NULL),
			 -EBADMSG);
		proto_msg_cleanup(&q);
		CHECK_EQ(proto_decode(good, sizeof(good), &q, NULL), 0);
		CHECK_STR(q.name, "axb");
		CHECK_EQ(call_on(S, &q, &p), -ENOENT);
		proto_msg_cleanup(&p);
		proto_msg_cleanup(&q);
	}
}

static int link_to(const char *target, const char *name)
{
	char path[128];

	host_path(path, sizeof(path), name);
	return symlink(target, path);
}

static void test_symlinks(void)
{
	struct proto_attr x, y, z, in;
	struct proto_msg q, p;
	struct stat before, after;
	uint64_t fh;
	int rc;

	CHECK_EQ(stat("/etc/passwd", &before), 0);
	CHECK_EQ(link_to("/etc", "sx"), 0);
	CHECK_EQ(link_to("../../..", "sy"), 0);
	CHECK_EQ(link_to("/etc/passwd", "sp"), 0);

	CHECK_EQ(lookup(ROOT, "sx", &x), 0);
	CHECK(S_ISLNK(x.mode));
	CHECK_EQ(lookup(ROOT, "sy", &y), 0);
	CHECK(S_ISLNK(y.mode));
	CHECK_EQ(lookup(ROOT, "sp", &z), 0);
	CHECK(S_ISLNK(z.mode));
	CHECK_EQ(z.size, strlen("/etc/passwd"));

	/* Never opened, never traversed. */
	CHECK_EQ(do_open(S, x.nodeid, O_RDONLY, &fh), -ELOOP);
	CHECK_EQ(opendir_(x.nodeid, &fh), -ENOTDIR);
	CHECK_EQ(opendir_(y.nodeid, &fh), -ENOTDIR);
	CHECK_EQ(lookup(x.nodeid, "passwd", NULL), -ENOTDIR);
	CHECK_EQ(lookup(y.nodeid, "etc", NULL), -ENOTDIR);
	CHECK_EQ(mkdir_(x.nodeid, "d", 0755, NULL), -ENOTDIR);
	CHECK_EQ(do_open(S, z.nodeid, O_RDONLY, &fh), -ELOOP);
	CHECK_EQ(do_open(S, z.nodeid, O_WRONLY | O_TRUNC, &fh), -ELOOP);
	CHECK_EQ(do_open(S, z.nodeid, O_RDWR | O_APPEND, &fh), -ELOOP);
	/* CREATE without O_EXCL on the name must not follow it either. */
	rc = create(ROOT, "sp", O_RDWR | O_CREAT | O_TRUNC, 0644, NULL, &fh);
	CHECK_EQ(rc, -ELOOP);
	rc = create(ROOT, "sp", O_RDWR | O_CREAT | O_EXCL, 0644, NULL, &fh);
	CHECK_EQ(rc, -EEXIST);

	/* Attribute changes apply to the link itself, never the target. */
	memset(&in, 0, sizeof(in));
	in.mode = 0777;
	CHECK_EQ(setattr(z.nodeid, PROTO_SET_MODE, &in, NULL), -EOPNOTSUPP);
	in.size = 0;
	CHECK_EQ(setattr(z.nodeid, PROTO_SET_SIZE, &in, NULL), -EINVAL);
	in.uid = 4321;
	CHECK_EQ(setattr(z.nodeid, PROTO_SET_UID, &in, &in), 0);
	CHECK_EQ(in.uid, 4321);
	in.mtime = 12345;
	CHECK_EQ(setattr(z.nodeid, PROTO_SET_MTIME, &in, &in), 0);
	CHECK_EQ(in.mtime, 12345);
	CHECK_EQ(xattr(PROTO_OP_SETXATTR, z.nodeid, "user.a", "1", 0, 0, &p),
		 -EPERM);
	proto_msg_cleanup(&p);
	rc = xattr(PROTO_OP_GETXATTR, z.nodeid, "user.a", NULL, 0, 0, &p);
	CHECK(rc == -ENODATA || rc == -EPERM);
	proto_msg_cleanup(&p);
	CHECK_EQ(stat("/etc/passwd", &after), 0);
	CHECK_EQ(after.st_uid, before.st_uid);
	CHECK_EQ(after.st_mode, before.st_mode);
	CHECK_EQ(after.st_size, before.st_size);
	CHECK_EQ(after.st_mtime, before.st_mtime);

	/* READLINK returns the target text; a non-link gives EINVAL. */
	req_init(&q, PROTO_OP_READLINK);
	q.ino = y.nodeid;
	CHECK_EQ(call_on(S, &q, &p), 0);
	CHECK(p.data_len == 8 && !memcmp(p.data, "../../..", 8));
	proto_msg_cleanup(&p);
	q.ino = ROOT;
	CHECK_EQ(call_on(S, &q, &p), -EINVAL);
	proto_msg_cleanup(&p);

	/* A link made by the guest behaves the same. */
	req_init(&q, PROTO_OP_SYMLINK);
	q.ino = ROOT;
	q.name = "gl";
	q.name2 = "/etc/shadow";
	CHECK_EQ(call_on(S, &q, &p), 0);
	CHECK(S_ISLNK(p.attr.mode));
	CHECK_EQ(p.attr.uid, 1234);
	CHECK_EQ(do_open(S, p.attr.nodeid, O_RDONLY, &fh), -ELOOP);
	forget(p.attr.nodeid, 1);
	proto_msg_cleanup(&p);
	q.name2 = "";
	q.name = "gl2";
	CHECK_EQ(call_on(S, &q, &p), -ENOENT);
	proto_msg_cleanup(&p);

	forget(x.nodeid, 1);
	forget(y.nodeid, 1);
	forget(z.nodeid, 1);
}

static void test_fsid_confinement(void)
{
	struct backend_session *s2 = NULL;
	char path[128];

	snprintf(path, sizeof(path), "%s/evil", tmproot);
	CHECK_EQ(symlink("/etc", path), 0);
	snprintf(path, sizeof(path), "%s/evil2", tmproot);
	CHECK_EQ(symlink("fs1", path), 0); /* even pointing inside */
	CHECK(backend_local.session_open(B, "evil", 0, &s2) < 0);
	CHECK(s2 == NULL);
	CHECK(backend_local.session_open(B, "evil2", 0, &s2) < 0);
	CHECK(backend_local.session_open(B, "..", 0, &s2) == -EINVAL);
	CHECK(backend_local.session_open(B, "", 0, &s2) == -EINVAL);
	CHECK(backend_local.session_open(B, "a/b", 0, &s2) == -EINVAL);
	{
		struct broker_config nocfg = {.root = "/nonexistent-occfs"};
		struct backend *nb = NULL;

		CHECK(backend_local.check(&nocfg) == -ENOENT);
		CHECK_EQ(backend_local.start(&nocfg, &nb), 0);
		CHECK(backend_local.session_open(nb, "x", 0, &s2) == -ENOENT);
		CHECK_EQ(backend_local.stop(nb, 0), 0);
	}
	CHECK(s2 == NULL);
	/* A fresh fsid is created, mode 0755. */
	CHECK_EQ(backend_local.session_open(B, "fresh", 0, &s2), 0);
	backend_local.session_close(s2);
	snprintf(path, sizeof(path), "%s/fresh", tmproot);
	{
		struct stat st;

		CHECK_EQ(lstat(path, &st), 0);
		CHECK(S_ISDIR(st.st_mode));
		CHECK_EQ(st.st_mode & 07777, 0755);
	}
}

static void test_bad_fh(void)
{
	struct proto_attr a;
	uint64_t fh, dfh;
	char buf[8];

	CHECK_EQ(create(ROOT, "fh", O_RDWR | O_CREAT, 0644, &a, &fh), 0);
	CHECK_EQ(opendir_(ROOT, &dfh), 0);
	CHECK_EQ(do_read(S, 0, 0, 1, buf), -EBADF);
	CHECK_EQ(do_read(S, 12345678, 0, 1, buf), -EBADF);
	CHECK_EQ(do_read(S, UINT64_MAX, 0, 1, buf), -EBADF);
	CHECK_EQ(do_read(S, fh ^ (1ull << 32), 0, 1, buf), -EBADF); /* gen */
	CHECK_EQ(do_read(S, fh + 1, 0, 1, buf), -EBADF);
	CHECK_EQ(do_read(S, dfh, 0, 1, buf), -EBADF); /* a directory fh */
	CHECK_EQ(do_write(S, dfh, 0, "x"), -EBADF);
	CHECK_EQ(simple(PROTO_OP_RELEASE, ROOT, dfh), -EBADF);
	{
		struct proto_msg p;

		CHECK_EQ(readdirplus(fh, 0, 4096, &p), -EBADF); /* a file fh */
		proto_msg_cleanup(&p);
	}
	CHECK_EQ(simple(PROTO_OP_RELEASEDIR, ROOT, fh), -EBADF);
	CHECK_EQ(simple(PROTO_OP_FSYNC, a.nodeid, dfh), -EBADF);
	CHECK_EQ(simple(PROTO_OP_FLUSH, a.nodeid, 77), -EBADF);
	CHECK_EQ(simple(PROTO_OP_RELEASE, a.nodeid, fh), 0);
	CHECK_EQ(simple(PROTO_OP_RELEASE, a.nodeid, fh), -EBADF); /* twice */
	CHECK_EQ(do_read(S, fh, 0, 1, buf), -EBADF);		  /* closed */
	CHECK_EQ(simple(PROTO_OP_RELEASEDIR, ROOT, dfh), 0);
	/* A reused slot does not revive the old fh. */
	{
		uint64_t fh2;

		CHECK_EQ(do_open(S, a.nodeid, O_RDONLY, &fh2), 0);
		CHECK(fh2 != fh);
		CHECK_EQ(do_read(S, fh, 0, 1, buf), -EBADF);
		CHECK_EQ(do_read(S, fh2, 0, 1, buf), 0);
		CHECK_EQ(simple(PROTO_OP_RELEASE, a.nodeid, fh2), 0);
	}
	forget(a.nodeid, 1);
}

static void test_mknod_mkdir(void)
{
	struct proto_attr a, d;
	uint64_t fh;
	char path[128];
	struct stat st;

	CHECK_EQ(mknod_(ROOT, "chr", S_IFCHR | 0666, NULL), -EPERM);
	CHECK_EQ(mknod_(ROOT, "blk", S_IFBLK | 0666, NULL), -EPERM);
	host_path(path, sizeof(path), "chr");
	CHECK(lstat(path, &st) < 0);
	CHECK_EQ(mknod_(ROOT, "fifo", S_IFIFO | 0620, &a), 0);
	CHECK(S_ISFIFO(a.mode));
	CHECK_EQ(a.mode & 07777, 0620);
	/* Opening a fifo through the broker must not block a worker. */
	CHECK_EQ(do_open(S, a.nodeid, O_RDONLY, &fh), -ENXIO);
	forget(a.nodeid, 1);
	CHECK_EQ(mknod_(ROOT, "sock", S_IFSOCK | 0600, &a), 0);
	CHECK(S_ISSOCK(a.mode));
	forget(a.nodeid, 1);
	CHECK_EQ(mknod_(ROOT, "fifo", S_IFIFO | 0600, NULL), -EEXIST);

	CHECK_EQ(mkdir_(ROOT, "dir", 02770, &d), 0);
	CHECK(S_ISDIR(d.mode));
	CHECK_EQ(d.mode & 07777, 02770);
	CHECK_EQ(d.uid, 1234);
	CHECK_EQ(d.gid, 5678);
	/* A set-gid directory passes its group on, as on any POSIX fs. */
	req_gid = 999;
	CHECK_EQ(mkdir_(d.nodeid, "sub", 0700, &a), 0);
	req_gid = 5678;
	CHECK_EQ(a.gid, 5678);
	CHECK(a.mode & S_ISGID);
	CHECK_EQ(name_op(PROTO_OP_RMDIR, d.nodeid, "sub"), 0);
	forget(a.nodeid, 1);
	CHECK_EQ(mknod_(d.nodeid, "f", 0644, &a), 0); /* no type = regular */
	CHECK(S_ISREG(a.mode));
	forget(a.nodeid, 1);
	CHECK_EQ(name_op(PROTO_OP_RMDIR, ROOT, "dir"), -ENOTEMPTY);
	CHECK_EQ(name_op(PROTO_OP_UNLINK, ROOT, "dir"), -EISDIR);
	CHECK_EQ(name_op(PROTO_OP_RMDIR, d.nodeid, "f"), -ENOTDIR);
	CHECK_EQ(name_op(PROTO_OP_UNLINK, d.nodeid, "f"), 0);
	CHECK_EQ(name_op(PROTO_OP_UNLINK, d.nodeid, "f"), -ENOENT);
	CHECK_EQ(name_op(PROTO_OP_RMDIR, ROOT, "dir"), 0);
	CHECK_EQ(getattr(d.nodeid, &a), 0); /* still pinned until FORGET */
	forget(d.nodeid, 1);
	CHECK_EQ(do_open(S, ROOT, O_RDONLY, &fh), -EISDIR);
}

static void test_misc_io(void)
{
	struct proto_attr a, b;
	struct proto_msg q, p;
	uint64_t fh, fh2;
	char buf[32];

	CHECK_EQ(create(ROOT, "io", O_RDWR | O_CREAT, 0644, &a, &fh), 0);
	CHECK_EQ(do_write(S, fh, 0, "abcdefgh"), 8);

	/* FALLOCATE extends, LSEEK reports data and holes. */
	req_init(&q, PROTO_OP_FALLOCATE);
	q.fh = fh;
	q.mode = 0;
	q.off = 0;
	q.len = 1 << 20;
	CHECK_EQ(call_on(S, &q, &p), 0);
	proto_msg_cleanup(&p);
	CHECK_EQ(getattr(a.nodeid, &b), 0);
	CHECK_EQ(b.size, 1 << 20);
	q.fh = 4242;
	CHECK_EQ(call_on(S, &q, &p), -EBADF);
	proto_msg_cleanup(&p);
	req_init(&q, PROTO_OP_LSEEK);
	q.fh = fh;
	q.off = 0;
	q.whence = SEEK_DATA;
	CHECK_EQ(call_on(S, &q, &p), 0);
	CHECK_EQ(p.off, 0);
	proto_msg_cleanup(&p);
	q.whence = SEEK_END;
	CHECK_EQ(call_on(S, &q, &p), 0);
	CHECK_EQ(p.off, 1 << 20);
	proto_msg_cleanup(&p);
	q.off = 2 << 20;
	q.whence = SEEK_DATA;
	CHECK_EQ(call_on(S, &q, &p), -ENXIO);
	proto_msg_cleanup(&p);
	q.whence = 99;
	CHECK_EQ(call_on(S, &q, &p), -EINVAL);
	proto_msg_cleanup(&p);

	/* COPY_FILE_RANGE between two handles. */
	CHECK_EQ(create(ROOT, "io2", O_RDWR | O_CREAT, 0644, &b, &fh2), 0);
	req_init(&q, PROTO_OP_COPY_FILE_RANGE);
	q.fh = fh;
	q.off = 2;
	q.fh2 = fh2;
	q.off2 = 1;
	q.len = 4;
	CHECK_EQ(call_on(S, &q, &p), 0);
	CHECK_EQ(p.len, 4);
	proto_msg_cleanup(&p);
	CHECK_EQ(do_read(S, fh2, 0, 32, buf), 5);
	CHECK(!memcmp(buf, "\0cdef", 5));
	q.flags = 1;
	CHECK_EQ(call_on(S, &q, &p), -EINVAL);
	proto_msg_cleanup(&p);
	q.flags = 0;
	q.fh2 = 31337;
	CHECK_EQ(call_on(S, &q, &p), -EBADF);
	proto_msg_cleanup(&p);

	/* FSYNC (data only) and a large READ is capped at the payload size. */
	req_init(&q, PROTO_OP_FSYNC);
	q.fh = fh;
	q.flags = 1;
	CHECK_EQ(call_on(S, &q, &p), 0);
	proto_msg_cleanup(&p);
	req_init(&q, PROTO_OP_READ);
	q.fh = fh;
	q.len = 64u << 20;
	CHECK_EQ(call_on(S, &q, &p), 0);
	CHECK_EQ(p.data_len, 1 << 20);
	proto_msg_cleanup(&p);
	q.off = UINT64_MAX;
	q.len = 10;
	CHECK_EQ(call_on(S, &q, &p), -EINVAL);
	proto_msg_cleanup(&p);

	/* STATFS and ACCESS. */
	req_init(&q, PROTO_OP_STATFS);
	q.ino = ROOT;
	CHECK_EQ(call_on(S, &q, &p), 0);
	CHECK(p.st.bsize > 0 && p.st.blocks > 0 && p.st.namemax >= 255);
	proto_msg_cleanup(&p);
	req_init(&q, PROTO_OP_ACCESS);
	q.ino = a.nodeid;
	q.mode = R_OK | W_OK;
	CHECK_EQ(call_on(S, &q, &p), 0);
	q.ino = 77777;
	CHECK_EQ(call_on(S, &q, &p), -ESTALE);

	/* Session ops are not the backend's. */
	req_init(&q, PROTO_OP_PING);
	CHECK_EQ(call_on(S, &q, &p), -ENOSYS);
	req_init(&q, PROTO_OP_HELLO);
	CHECK_EQ(call_on(S, &q, &p), -ENOSYS);
	req_init(&q, 500);
	CHECK_EQ(call_on(S, &q, &p), -ENOSYS);

	CHECK_EQ(simple(PROTO_OP_RELEASE, a.nodeid, fh), 0);
	CHECK_EQ(simple(PROTO_OP_RELEASE, b.nodeid, fh2), 0);
	forget(a.nodeid, 1);
	forget(b.nodeid, 1);
}

/* Workers racing on one inode: lookup/getattr/forget and open/read/release. */
static void *worker(void *arg)
{
	struct proto_attr a;
	uint64_t fh;
	char buf[8];
	long errs = 0;
	int i;

	for (i = 0; i < 1500; i++) {
		if (lookup(ROOT, "conc", &a)) {
			errs++;
			continue;
		}
		if (getattr(a.nodeid, NULL))
			errs++;
		if (do_open(S, a.nodeid, O_RDONLY, &fh) == 0) {
			if (do_read(S, fh, 0, 4, buf) != 4)
				errs++;
			if (simple(PROTO_OP_RELEASE, a.nodeid, fh))
				errs++;
		} else {
			errs++;
		}
		forget(a.nodeid, 1);
	}
	return (void *)errs;
}

static void test_concurrency(void)
{
	pthread_t t[4];
	struct proto_attr a;
	uint64_t fh;
	void *r;
	long errs = 0;
	int i;

	CHECK_EQ(create(ROOT, "conc", O_RDWR | O_CREAT, 0644, &a, &fh), 0);
	CHECK_EQ(do_write(S, fh, 0, "racy"), 4);
	CHECK_EQ(simple(PROTO_OP_RELEASE, a.nodeid, fh), 0);
	for (i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, worker, NULL);
	for (i = 0; i < 4; i++) {
		pthread_join(t[i], &r);
		errs += (long)r;
	}
	CHECK_EQ(errs, 0);
	CHECK_EQ(getattr(a.nodeid, NULL), 0); /* the CREATE reference */
	forget(a.nodeid, 1);
}

/* ---- quotas (local_quota.c) ---------------------------------------------- */

static void usage_is(uint64_t bytes, uint64_t inodes, int line)
{
	uint64_t b, i;

	local_quota_usage(S, &b, &i);
	if (b != bytes || i != inodes)
		fprintf(stderr, "line %d: usage %llu bytes %llu inodes\n", line,
			(unsigned long long)b, (unsigned long long)i);
	CHECK_EQ(b, bytes);
	CHECK_EQ(i, inodes);
}
#define USAGE(b, i) usage_is(b, i, __LINE__)

static int quota_call(uint32_t op, uint64_t fh, uint64_t fh2, uint64_t off,
		      uint64_t off2, uint64_t len, uint64_t *out)
{
	struct proto_msg q, p;
	int rc;

	req_init(&q, op);
	q.fh = fh;
	q.fh2 = fh2;
	q.off = off;
	q.off2 = off2;
	q.len = len;
	rc = call_on(S, &q, &p);
	if (!rc && out)
		*out =
		    op == PROTO_OP_STATFS ? p.st.blocks * p.st.frsize : p.len;
	if (!rc && op == PROTO_OP_STATFS)
		CHECK(p.st.files == 5 || p.st.files == 8);
	proto_msg_cleanup(&p);
	return rc;
}

/* A file of n bytes on the host, below the quota filesystem. */
static void host_file(const char *name, size_t n)
{
	char path[256], *buf = calloc(1, n + 1);
	int fd;

	snprintf(path, sizeof(path), "%s/q/%s", tmproot, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0 && buf && write(fd, buf, n) == (ssize_t)n);
	if (fd >= 0)
		close(fd);
	free(buf);
}

/* The tree before the first session: what the scan must find. */
static void quota_tree(void)
{
	char path[256], path2[256];

	snprintf(path, sizeof(path), "%s/q", tmproot);
	CHECK_EQ(mkdir(path, 0755), 0);
	host_file("one", 1000);
	host_file("linked", 500); /* and a second name: counted once */
	snprintf(path, sizeof(path), "%s/q/linked", tmproot);
	snprintf(path2, sizeof(path2), "%s/q/linked2", tmproot);
	CHECK_EQ(link(path, path2), 0);
	snprintf(path, sizeof(path), "%s/q/sub", tmproot);
	CHECK_EQ(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/q/sub/sym", tmproot);
	CHECK_EQ(symlink("../one", path), 0);
}

/* Writes, truncation, fallocate and copy_file_range against 10000 bytes. */
static void quota_bytes(uint64_t *fh_w)
{
	struct proto_attr a, in = {0};
	char big[3001];
	uint64_t fh, fh2, n = 0;

	memset(big, 'x', 3000);
	big[3000] = 0;
	CHECK_EQ(create(ROOT, "w", O_RDWR | O_CREAT, 0644, &a, &fh), 0);
	USAGE(1500, 5);
	CHECK_EQ(do_write(S, fh, 0, big), 3000);
	USAGE(4500, 5);
	/* Rewriting is free; growing past 10000 writes what fits. */
	CHECK_EQ(do_write(S, fh, 0, "abc"), 3);
	CHECK_EQ(do_write(S, fh, 5000, big), 3000);
	USAGE(9500, 5);
	CHECK_EQ(do_write(S, fh, 8000, big), 500);
	USAGE(10000, 5);
	CHECK_EQ(do_write(S, fh, 8500, "y"), -EDQUOT);
	CHECK_EQ(do_write(S, fh, 100, "rewrite"), 7);
	CHECK_EQ(quota_call(PROTO_OP_STATFS, 0, 0, 0, 0, 0, &n), 0);
	CHECK(n <= 10000 && n + 4096 > 10000);
	/* Truncation frees, growing by SETATTR past the quota is EDQUOT. */
	in.size = 20000;
	CHECK_EQ(setattr(a.nodeid, PROTO_SET_SIZE, &in, NULL), -EDQUOT);
	in.size = 1000;
	CHECK_EQ(setattr(a.nodeid, PROTO_SET_SIZE, &in, NULL), 0);
	USAGE(2500, 5);
	CHECK_EQ(quota_call(PROTO_OP_FALLOCATE, fh, 0, 0, 0, 9000, NULL),
		 -EDQUOT);
	CHECK_EQ(quota_call(PROTO_OP_FALLOCATE, fh, 0, 0, 0, 2000, NULL), 0);
	USAGE(3500, 5);
	/* copy_file_range into a second name: clipped, then EDQUOT. */
	CHECK_EQ(name_op(PROTO_OP_UNLINK, ROOT, "one"), 0);
	USAGE(2500, 4);
	CHECK_EQ(create(ROOT, "c", O_RDWR | O_CREAT, 0644, NULL, &fh2), 0);
	n = 0;
	CHECK_EQ(
	    quota_call(PROTO_OP_COPY_FILE_RANGE, fh, fh2, 0, 7000, 2000, &n),
	    0);
	CHECK_EQ(n, 500);
	USAGE(10000, 5);
	CHECK_EQ(
	    quota_call(PROTO_OP_COPY_FILE_RANGE, fh, fh2, 0, 7500, 10, NULL),
	    -EDQUOT);
	/* O_TRUNC through OPEN frees what the file held. */
	CHECK_EQ(simple(PROTO_OP_RELEASE, 0, fh2), 0);
	CHECK_EQ(lookup(ROOT, "c", &a), 0);
	CHECK_EQ(do_open(S, a.nodeid, O_WRONLY | O_TRUNC, &fh2), 0);
	USAGE(2500, 5);
	CHECK_EQ(simple(PROTO_OP_RELEASE, 0, fh2), 0);
	forget(a.nodeid, 2);
	*fh_w = fh;
}

/* Entries against 5 inodes; unlinked-open files, links, rename-over. */
static void quota_inodes(uint64_t fh)
{
	struct proto_attr a;
	uint64_t fh2;

	CHECK_EQ(create(ROOT, "no", O_RDWR | O_CREAT, 0644, NULL, &fh2),
		 -EDQUOT);
	CHECK_EQ(mkdir_(ROOT, "no", 0755, NULL), -EDQUOT);
	CHECK_EQ(mknod_(ROOT, "no", S_IFIFO | 0644, NULL), -EDQUOT);
	CHECK_EQ(lookup(ROOT, "no", NULL), -ENOENT);
	/* An existing name opened by CREATE takes no inode. */
	CHECK_EQ(create(ROOT, "w", O_RDWR | O_CREAT, 0644, NULL, &fh2), 0);
	CHECK_EQ(simple(PROTO_OP_RELEASE, 0, fh2), 0);
	USAGE(2500, 5);
	/* w is still open: unlinking keeps it counted until the release. */
	CHECK_EQ(name_op(PROTO_OP_UNLINK, ROOT, "w"), 0);
	USAGE(2500, 5);
	CHECK_EQ(do_write(S, fh, 3000, "z"), 1); /* w: 2000 -> 3001 */
	USAGE(3501, 5);
	CHECK_EQ(simple(PROTO_OP_RELEASE, 0, fh), 0);
	USAGE(500, 4);
	/* Hard links: the inode goes with its last name. */
	CHECK_EQ(name_op(PROTO_OP_UNLINK, ROOT, "linked"), 0);
	USAGE(500, 4);
	CHECK_EQ(name_op(PROTO_OP_UNLINK, ROOT, "linked2"), 0);
	USAGE(0, 3);
	/* Rename over an existing file removes it. */
	CHECK_EQ(create(ROOT, "r1", O_RDWR | O_CREAT, 0644, &a, &fh), 0);
	CHECK_EQ(do_write(S, fh, 0, "0123456789"), 10);
	CHECK_EQ(simple(PROTO_OP_RELEASE, 0, fh), 0);
	forget(a.nodeid, 1);
	CHECK_EQ(create(ROOT, "r2", O_RDWR | O_CREAT, 0644, &a, &fh), 0);
	CHECK_EQ(do_write(S, fh, 0, "01234"), 5);
	CHECK_EQ(simple(PROTO_OP_RELEASE, 0, fh), 0);
	forget(a.nodeid, 1);
	USAGE(15, 5);
	CHECK_EQ(rename_(ROOT, "r1", ROOT, "r2", 0), 0);
	USAGE(10, 4);
	CHECK_EQ(mkdir_(ROOT, "d", 0755, &a), 0);
	forget(a.nodeid, 1);
	CHECK_EQ(name_op(PROTO_OP_RMDIR, ROOT, "d"), 0);
	USAGE(10, 4);
}

static void test_quota(void)
{
	struct backend_session_opts o = {.quota_bytes = 10000,
					 .quota_inodes = 5};
	struct backend_session *saved = S, *s2 = NULL, *plain = NULL;
	uint64_t fh, n = 0;

	quota_tree();
	CHECK_EQ(backend_local.session_open_opts(B, "q", &o, &S), 0);
	if (!S) {
		S = saved;
		return;
	}
	USAGE(1500, 4);
	/* A second session of the filesystem shares the count. */
	o.quota_bytes = 10000;
	CHECK_EQ(backend_local.session_open_opts(B, "q", &o, &s2), 0);
	quota_bytes(&fh);
	quota_inodes(fh);
	/* A reload raises the quota of the open sessions at once. */
	backend_local.session_quota(s2, 20000, 8);
	CHECK_EQ(quota_call(PROTO_OP_STATFS, 0, 0, 0, 0, 0, &n), 0);
	CHECK(n <= 20000 && n + 4096 > 20000);
	CHECK_EQ(create(ROOT, "after", O_RDWR | O_CREAT, 0644, NULL, &fh), 0);
	CHECK_EQ(simple(PROTO_OP_RELEASE, 0, fh), 0);
	USAGE(10, 5);
	backend_local.session_close(s2);
	/* No quota: nothing is counted and nothing refused. */
	CHECK_EQ(backend_local.session_open(B, "noquota", 0, &plain), 0);
	{
		struct backend_session *q = S;
		uint64_t b, i;

		S = plain;
		local_quota_usage(S, &b, &i);
		CHECK_EQ(b + i, 0);
		CHECK(!local_quota_on(S));
		S = q;
	}
	backend_local.session_close(plain);
	backend_local.session_close(S);
	S = saved;
}

int main(void)
{
	int fds_before, rc;

	umask(077); /* modes asked for must come out exactly anyway */
	if (geteuid() != 0) {
		printf("test_backend_local: needs root (ownership), skipped\n");
		return 77;
	}
	if (!mkdtemp(tmproot)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(fsdir, sizeof(fsdir), "%s/fs1", tmproot);
	{
		struct broker_config cfg = {.root = tmproot};

		CHECK_EQ(backend_local.check(&cfg), 0);
		CHECK_EQ(backend_local.start(&cfg, &B), 0);
	}
	fds_before = count_fds();
	rc = backend_local.session_open(B, "fs1", 0, &S);
	CHECK_EQ(rc, 0);
	if (rc)
		return unit_done("test_backend_local");

	test_roundtrip();
	test_hardlink_and_forget();
	test_readdirplus();
	test_rename();
	test_xattr();
	test_rdonly();
	test_bad_names();
	test_symlinks();
	test_fsid_confinement();
	test_bad_fh();
	test_mknod_mkdir();
	test_misc_io();
	test_concurrency();
	test_quota();

	/* Leave handles and lookups behind: close must release them all. */
	{
		struct proto_attr a;
		uint64_t fh;

		CHECK_EQ(create(ROOT, "left", O_RDWR | O_CREAT, 0644, &a, &fh),
			 0);
		CHECK_EQ(opendir_(ROOT, &fh), 0);
		CHECK_EQ(lookup(ROOT, "left", NULL), 0);
	}
	backend_local.session_close(S);
	CHECK_EQ(count_fds(), fds_before);
	CHECK_EQ(backend_local.stop(B, 0), 0);

	{
		char cmd[128];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmproot);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", tmproot);
	}
	return unit_done("test_backend_local");
}
