/*
 * test-backend-s3.c - the s3 backend driven through backend_s3's entry
 * points (start, session_open, dispatch) against a live radosgw, with every
 * result checked on the server by an independent s3_http client.
 *
 * Run by tests/s3/backend-s3.sh, which starts radosgw and exports its env
 * file; without S3_ENDPOINT the test skips (77).  Sessions use STS (the
 * role in S3_ROLE_ARN), so the last cases also check that a session's own
 * credential is refused on another filesystem's prefix.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "../unit/unit.h"
#include "backend.h"
#include "broker.h"
#include "log.h"
#include "proto.h"
#include "s3_http.h"
#include "s3b.h"

#define ROOT 1u

static struct backend *B;
static struct backend_session *S; /* fsid "fsA" */
static struct s3_http *H;	  /* independent, base credential */
static char prefix[64], dir[] = "/tmp/occfs-s3b-XXXXXX";

/* ---- helpers ------------------------------------------------------------ */

static void req_init(struct proto_msg *r, uint32_t op)
{
	proto_msg_init(r);
	r->kind = PROTO_REQ;
	r->op = op;
	r->uid = 1234;
	r->gid = 5678;
}

static int call_on(struct backend_session *s, struct proto_msg *q,
		   struct proto_msg *p)
{
	proto_msg_init(p);
	p->kind = PROTO_REP;
	p->op = q->op;
	return backend_s3.dispatch(s, q, p);
}

static int lookup_on(struct backend_session *s, uint64_t parent,
		     const char *name, struct proto_attr *a)
{
	struct proto_msg q, p;
	int rc;

	req_init(&q, PROTO_OP_LOOKUP);
	q.ino = parent;
	q.name = (char *)name;
	rc = call_on(s, &q, &p);
	if (!rc && a)
		*a = p.attr;
	proto_msg_cleanup(&p);
	return rc;
}

static int lookup(uint64_t parent, const char *name, struct proto_attr *a)
{
	return lookup_on(S, parent, name, a);
}

static int create_on(struct backend_session *s, uint64_t parent,
		     const char *name, uint32_t flags, struct proto_attr *a,
		     uint64_t *fh)
{
	struct proto_msg q, p;
	int rc;

	req_init(&q, PROTO_OP_CREATE);
	q.ino = parent;
	q.name = (char *)name;
	q.flags = flags;
	q.mode = S_IFREG | 0644;
	rc = call_on(s, &q, &p);
	if (!rc) {
		if (a)
			*a = p.attr;
		*fh = p.fh;
	}
	proto_msg_cleanup(&p);
	return rc;
}

static int fop_on(struct backend_session *s, uint32_t op, uint64_t ino,
		  uint64_t fh)
{
	struct proto_msg q, p;
	int rc;

	req_init(&q, op);
	q.ino = ino;
	q.fh = fh;
	rc = call_on(s, &q, &p);
	proto_msg_cleanup(&p);
	return rc;
}

static int write_on(struct backend_session *s, uint64_t fh, uint64_t off,
		    const char *data)
{
	struct proto_msg q, p;
	int rc;

	req_init(&q, PROTO_OP_WRITE);
	q.fh = fh;
	q.off = off;
	q.data = (const uint8_t *)data;
	q.data_len = strlen(data);
	rc = call_on(s, &q, &p);
	proto_msg_cleanup(&p);
	return rc;
}

/* create + write + flush + release: one file with content. */
static int put_file_on(struct backend_session *s, uint64_t parent,
		       const char *name, const char *data, uint64_t *nodeid)
{
	struct proto_attr a;
	uint64_t fh;
	int rc = create_on(s, parent, name, O_WRONLY | O_CREAT, &a, &fh);

	if (rc)
		return rc;
	rc = write_on(s, fh, 0, data);
	if (!rc)
		rc = fop_on(s, PROTO_OP_FLUSH, a.nodeid, fh);
	fop_on(s, PROTO_OP_RELEASE, a.nodeid, fh);
	if (nodeid)
		*nodeid = a.nodeid;
	return rc;
}

static int name_op(uint32_t op, uint64_t parent, const char *name,
		   uint32_t mode, struct proto_attr *a)
{
	struct proto_msg q, p;
	int rc;

	req_init(&q, op);
	q.ino = parent;
	q.name = (char *)name;
	q.mode = mode;
	rc = call_on(S, &q, &p);
	if (!rc && a)
		*a = p.attr;
	proto_msg_cleanup(&p);
	return rc;
}

static int do_rename(uint64_t op, const char *from, uint64_t np, const char *to,
		     uint32_t flags)
{
	struct proto_msg q, p;
	int rc;

	req_init(&q, PROTO_OP_RENAME);
	q.ino = op;
	q.name = (char *)from;
	q.ino2 = np;
	q.name2 = (char *)to;
	q.flags = flags;
	rc = call_on(S, &q, &p);
	proto_msg_cleanup(&p);
	return rc;
}

static void key_of(char *out, size_t cap, const char *fsid, const char *path)
{
	snprintf(out, cap, "%s/%s/%s", prefix, fsid, path);
}

static int get_str(struct s3_http *h, const char *fsid, const char *path,
		   char *out, size_t cap)
{
	char key[S3_KEY_MAX + 1];
	struct s3_sink sk = {.buf = out, .cap = cap - 1};
	size_t got = 0;
	int rc;

	key_of(key, sizeof(key), fsid, path);
	rc = s3_http_get_object(h, key, 0, 0, &sk, NULL, &got, NULL);
	out[rc ? 0 : got] = '\0';
	return rc;
}

static int head(const char *path, struct s3_obj_info *o)
{
	char key[S3_KEY_MAX + 1];

	key_of(key, sizeof(key), "fsA", path);
	return s3_http_head_object(H, key, o);
}

static const char *meta(const struct s3_obj_info *o, const char *name)
{
	for (size_t i = 0; i < o->nmeta; i++)
		if (!strcmp(o->meta[i].name, name))
			return o->meta[i].value;
	return NULL;
}

/* ---- cases -------------------------------------------------------------- */

static void test_file(struct s3_obj_info *o)
{
	char buf[64];
	uint64_t id;

	CHECK_EQ(put_file_on(S, ROOT, "hello.txt", "hello, s3", &id), 0);
	CHECK_EQ(get_str(H, "fsA", "hello.txt", buf, sizeof(buf)), 0);
	CHECK_STR(buf, "hello, s3");
	CHECK_EQ(head("hello.txt", o), 0);
	CHECK_STR(meta(o, "mode"), "33188"); /* S_IFREG | 0644 */
	CHECK_STR(meta(o, "uid"), "1234");
	CHECK_STR(meta(o, "gid"), "5678");
	CHECK(meta(o, "mtime") && atoll(meta(o, "mtime")) > 1600000000);
	CHECK(meta(o, "ctime") && meta(o, "atime"));
	/* the backend reads it back */
	struct proto_attr a;
	CHECK_EQ(lookup(ROOT, "hello.txt", &a), 0);
	CHECK_EQ(a.size, 9);
	CHECK_EQ(a.mode, S_IFREG | 0644);
	CHECK_EQ(a.nodeid, id);
	/* create O_EXCL on an existing name */
	uint64_t fh;
	CHECK_EQ(create_on(S, ROOT, "hello.txt", O_WRONLY | O_CREAT | O_EXCL,
			   NULL, &fh),
		 -EEXIST);
	/* an empty new file is one PUT at close */
	CHECK_EQ(put_file_on(S, ROOT, "empty", "", NULL), 0);
	CHECK_EQ(head("empty", o), 0);
	CHECK_EQ(o->size, 0);
}

static void test_dirs(struct s3_obj_info *o)
{
	struct proto_attr d;

	CHECK_EQ(name_op(PROTO_OP_MKDIR, ROOT, "d", 0750, &d), 0);
	CHECK_EQ(d.mode, S_IFDIR | 0750);
	CHECK_EQ(head("d/", o), 0);
	CHECK_STR(meta(o, "mode"), "16872"); /* S_IFDIR | 0750 */
	CHECK_STR(o->content_type, "application/x-directory");
	CHECK_EQ(name_op(PROTO_OP_MKDIR, ROOT, "d", 0750, NULL), -EEXIST);
	CHECK_EQ(put_file_on(S, d.nodeid, "in", "x", NULL), 0);
	CHECK_EQ(name_op(PROTO_OP_RMDIR, ROOT, "d", 0, NULL), -ENOTEMPTY);
	CHECK_EQ(name_op(PROTO_OP_RMDIR, d.nodeid, "in", 0, NULL), -ENOTDIR);
	CHECK_EQ(name_op(PROTO_OP_UNLINK, ROOT, "d", 0, NULL), -EISDIR);
	CHECK_EQ(name_op(PROTO_OP_UNLINK, d.nodeid, "in", 0, NULL), 0);
	CHECK_EQ(head("d/in", o), -ENOENT);
	CHECK_EQ(lookup(d.nodeid, "in", NULL), -ENOENT);
	CHECK_EQ(name_op(PROTO_OP_RMDIR, ROOT, "d", 0, NULL), 0);
	CHECK_EQ(head("d/", o), -ENOENT);
	CHECK_EQ(lookup(ROOT, "d", NULL), -ENOENT);
	/* a directory that exists only as a common prefix (s3fs accepts) */
	char key[S3_KEY_MAX + 1];
	struct s3_body b = {.buf = "p", .len = 1};
	key_of(key, sizeof(key), "fsA", "implied/sub/file");
	CHECK_EQ(s3_http_put_object(H, key, &b, NULL, NULL), 0);
	CHECK_EQ(lookup(ROOT, "implied", &d), 0);
	CHECK_EQ(d.mode & S_IFMT, S_IFDIR);
	/* mknod: files, fifos and sockets (as s3fs stores them), no
	 * devices; no hard links */
	CHECK_EQ(name_op(PROTO_OP_MKNOD, ROOT, "fifo", S_IFIFO | 0644, NULL),
		 0);
	CHECK_EQ(head("fifo", o), 0);
	CHECK_STR(meta(o, "mode"), "4516"); /* S_IFIFO | 0644 */
	CHECK_EQ(lookup(ROOT, "fifo", &d), 0);
	CHECK_EQ(d.mode, S_IFIFO | 0644);
	CHECK_EQ(name_op(PROTO_OP_MKNOD, ROOT, "sock", S_IFSOCK | 0600, NULL),
		 0);
	CHECK_EQ(lookup(ROOT, "sock", &d), 0);
	CHECK_EQ(d.mode, S_IFSOCK | 0600);
	CHECK_EQ(name_op(PROTO_OP_MKNOD, ROOT, "chr", S_IFCHR | 0600, NULL),
		 -EPERM);
	CHECK_EQ(name_op(PROTO_OP_MKNOD, ROOT, "blk", S_IFBLK | 0600, NULL),
		 -EPERM);
	CHECK_EQ(name_op(PROTO_OP_MKNOD, ROOT, "plain", S_IFREG | 0600, NULL),
		 0);
	CHECK_EQ(head("plain", o), 0);
	struct proto_msg q, p;
	req_init(&q, PROTO_OP_LINK);
	q.ino = d.nodeid;
	q.ino2 = ROOT;
	q.name2 = "hard";
	CHECK_EQ(call_on(S, &q, &p), -EPERM);
	proto_msg_cleanup(&p);
}

/* READDIRPLUS until the end; returns the number of names seen. */
static int list_all(uint64_t ino, const char *want, int *found)
{
	struct proto_msg q, p;
	uint64_t fh, off = 0;
	int n = 0, rc;

	req_init(&q, PROTO_OP_OPENDIR);
	q.ino = ino;
	rc = call_on(S, &q, &p);
	fh = p.fh;
	proto_msg_cleanup(&p);
	if (rc)
		return rc;
	for (;;) {
		req_init(&q, PROTO_OP_READDIRPLUS);
		q.ino = ino;
		q.fh = fh;
		q.off = off;
		q.len = 16384;
		rc = call_on(S, &q, &p);
		if (rc || !p.ndirents) {
			proto_msg_cleanup(&p);
			break;
		}
		for (size_t i = 0; i < p.ndirents; i++) {
			if (want && !strcmp(p.dirents[i].name, want))
				*found = (int)p.dirents[i].attr.mode;
			off = p.dirents[i].off;
			n++;
		}
		proto_msg_cleanup(&p);
	}
	fop_on(S, PROTO_OP_RELEASEDIR, ino, fh);
	return rc ? rc : n;
}

static void test_listing(void)
{
	struct proto_attr d;
	char name[32], key[S3_KEY_MAX + 1];
	int found = 0;

	CHECK_EQ(name_op(PROTO_OP_MKDIR, ROOT, "many", 0755, &d), 0);
	/* 120 through the backend, 30 written by another tool */
	for (int i = 0; i < 120; i++) {
		snprintf(name, sizeof(name), "f%03d", i);
		CHECK_EQ(put_file_on(S, d.nodeid, name, "x", NULL), 0);
	}
	for (int i = 0; i < 30; i++) {
		struct s3_body b = {.buf = "yy", .len = 2};

		snprintf(name, sizeof(name), "many/o%03d", i);
		key_of(key, sizeof(key), "fsA", name);
		CHECK_EQ(s3_http_put_object(H, key, &b, NULL, NULL), 0);
	}
	CHECK_EQ(name_op(PROTO_OP_MKDIR, d.nodeid, "sub", 0755, NULL), 0);
	CHECK_EQ(list_all(d.nodeid, "sub", &found), 2 + 120 + 30 + 1);
	CHECK_EQ(found & S_IFMT, S_IFDIR);
	found = 0;
	CHECK_EQ(list_all(d.nodeid, "o007", &found), 2 + 120 + 30 + 1);
	CHECK_EQ(found, S_IFREG | 0644);
}

static void test_rename(struct s3_obj_info *o)
{
	struct proto_attr d, a;
	char buf[64];
	uint64_t id;

	CHECK_EQ(put_file_on(S, ROOT, "r1", "rename me", &id), 0);
	CHECK_EQ(do_rename(ROOT, "r1", ROOT, "r2", 0), 0);
	CHECK_EQ(get_str(H, "fsA", "r2", buf, sizeof(buf)), 0);
	CHECK_STR(buf, "rename me");
	CHECK_EQ(head("r1", o), -ENOENT);
	CHECK_EQ(head("r2", o), 0);
	CHECK_STR(meta(o, "mode"), "33188");
	CHECK_EQ(lookup(ROOT, "r2", &a), 0);
	CHECK_EQ(a.nodeid, id); /* the node followed its name */
	CHECK_EQ(lookup(ROOT, "r1", NULL), -ENOENT);
	CHECK_EQ(put_file_on(S, ROOT, "r3", "other", NULL), 0);
	CHECK_EQ(do_rename(ROOT, "r2", ROOT, "r3", PROTO_RENAME_NOREPLACE),
		 -EEXIST);
	CHECK_EQ(do_rename(ROOT, "r2", ROOT, "r3",
			   PROTO_RENAME_EXCHANGE | PROTO_RENAME_NOREPLACE),
		 -EINVAL);
	CHECK_EQ(do_rename(ROOT, "r2", ROOT, "nowhere", PROTO_RENAME_EXCHANGE),
		 -ENOENT);
	/* exchange: both names swap, nodes follow their objects */
	CHECK_EQ(do_rename(ROOT, "r2", ROOT, "r3", PROTO_RENAME_EXCHANGE), 0);
	CHECK_EQ(get_str(H, "fsA", "r2", buf, sizeof(buf)), 0);
	CHECK_STR(buf, "other");
	CHECK_EQ(get_str(H, "fsA", "r3", buf, sizeof(buf)), 0);
	CHECK_STR(buf, "rename me");
	CHECK_EQ(lookup(ROOT, "r3", &a), 0);
	CHECK_EQ(a.nodeid, id);
	CHECK_EQ(do_rename(ROOT, "r3", ROOT, "r2", PROTO_RENAME_EXCHANGE), 0);
	CHECK_EQ(get_str(H, "fsA", "r2", buf, sizeof(buf)), 0);
	CHECK_STR(buf, "rename me");
	CHECK_EQ(do_rename(ROOT, "r2", ROOT, "r3", 0), 0); /* replaces */
	CHECK_EQ(get_str(H, "fsA", "r3", buf, sizeof(buf)), 0);
	CHECK_STR(buf, "rename me");

	/* a directory with a file and a subdirectory */
	CHECK_EQ(name_op(PROTO_OP_MKDIR, ROOT, "rd", 0700, &d), 0);
	CHECK_EQ(put_file_on(S, d.nodeid, "x", "in rd", NULL), 0);
	struct proto_attr sub;
	CHECK_EQ(name_op(PROTO_OP_MKDIR, d.nodeid, "s", 0755, &sub), 0);
	CHECK_EQ(put_file_on(S, sub.nodeid, "y", "deep", NULL), 0);
	CHECK_EQ(do_rename(ROOT, "rd", d.nodeid, "inside", 0), -EINVAL);
	CHECK_EQ(do_rename(ROOT, "rd", ROOT, "rd2", 0), 0);
	CHECK_EQ(head("rd/", o), -ENOENT);
	CHECK_EQ(head("rd/x", o), -ENOENT);
	CHECK_EQ(head("rd/s/y", o), -ENOENT);
	CHECK_EQ(head("rd2/", o), 0);
	CHECK_STR(meta(o, "mode"), "16832"); /* S_IFDIR | 0700 */
	CHECK_EQ(get_str(H, "fsA", "rd2/s/y", buf, sizeof(buf)), 0);
	CHECK_STR(buf, "deep");
	CHECK_EQ(lookup(ROOT, "rd2", &a), 0);
	CHECK_EQ(a.nodeid, d.nodeid);
	CHECK_EQ(lookup(sub.nodeid, "y", &a), 0); /* the old node works */
	/* onto a non-empty directory */
	CHECK_EQ(name_op(PROTO_OP_MKDIR, ROOT, "full", 0755, &d), 0);
	CHECK_EQ(put_file_on(S, d.nodeid, "z", "z", NULL), 0);
	CHECK_EQ(do_rename(ROOT, "rd2", ROOT, "full", 0), -ENOTEMPTY);
}

static void test_symlink(struct s3_obj_info *o)
{
	struct proto_msg q, p;
	struct proto_attr a;
	char buf[64];

	req_init(&q, PROTO_OP_SYMLINK);
	q.ino = ROOT;
	q.name = "sl";
	q.name2 = "some/target";
	CHECK_EQ(call_on(S, &q, &p), 0);
	a = p.attr;
	proto_msg_cleanup(&p);
	CHECK_EQ(a.mode, S_IFLNK | 0777);
	CHECK_EQ(get_str(H, "fsA", "sl", buf, sizeof(buf)), 0);
	CHECK_STR(buf, "some/target");
	CHECK_EQ(head("sl", o), 0);
	CHECK_STR(meta(o, "mode"), "41471"); /* S_IFLNK | 0777 */
	req_init(&q, PROTO_OP_READLINK);
	q.ino = a.nodeid;
	CHECK_EQ(call_on(S, &q, &p), 0);
	CHECK_EQ(p.data_len, 11);
	CHECK(p.data && !memcmp(p.data, "some/target", 11));
	proto_msg_cleanup(&p);
}

static int setattr(uint64_t ino, unsigned valid, uint32_t mode, uint32_t uid,
		   int64_t mtime)
{
	struct proto_msg q, p;
	int rc;

	req_init(&q, PROTO_OP_SETATTR);
	q.ino = ino;
	q.valid = valid;
	q.attr.mode = mode;
	q.attr.uid = uid;
	q.attr.mtime = mtime;
	rc = call_on(S, &q, &p);
	proto_msg_cleanup(&p);
	return rc;
}

static void test_chmod(struct s3_obj_info *o)
{
	struct proto_attr a;
	uint64_t id, fh, before;

	CHECK_EQ(put_file_on(S, ROOT, "c1", "chmod", &id), 0);
	s3b_cache_apply_all(B, NULL, 0); /* earlier directory times */
	pthread_mutex_lock(&B->cache_lock);
	before = B->copies;
	pthread_mutex_unlock(&B->cache_lock);
	CHECK_EQ(setattr(id, PROTO_SET_MODE, 0600, 0, 0), 0);
	CHECK_EQ(setattr(id, PROTO_SET_MODE, 0640, 0, 0), 0);
	CHECK_EQ(setattr(id, PROTO_SET_UID, 0, 4242, 0), 0);
	CHECK_EQ(setattr(id, PROTO_SET_MTIME, 0, 0, 1700000000), 0);
	CHECK_EQ(lookup(ROOT, "c1", &a), 0); /* seen at once */
	CHECK_EQ(a.mode, S_IFREG | 0640);
	CHECK_EQ(a.uid, 4242);
	CHECK_EQ(a.mtime, 1700000000);
	CHECK_EQ(head("c1", o), 0);
	CHECK_STR(meta(o, "mode"), "33188"); /* not yet applied */
	struct proto_msg q, p;
	req_init(&q, PROTO_OP_OPEN);
	q.ino = id;
	q.flags = O_RDONLY;
	CHECK_EQ(call_on(S, &q, &p), 0);
	fh = p.fh;
	proto_msg_cleanup(&p);
	CHECK_EQ(fop_on(S, PROTO_OP_FSYNC, id, fh), 0);
	pthread_mutex_lock(&B->cache_lock);
	CHECK_EQ(B->copies - before, 1); /* four changes, one copy */
	pthread_mutex_unlock(&B->cache_lock);
	CHECK_EQ(fop_on(S, PROTO_OP_RELEASE, id, fh), 0);
	CHECK_EQ(head("c1", o), 0);
	CHECK_STR(meta(o, "mode"), "33184"); /* S_IFREG | 0640 */
	CHECK_STR(meta(o, "uid"), "4242");
	CHECK_STR(meta(o, "mtime"), "1700000000");
	CHECK_EQ(o->size, 5);
	/* without fsync the flusher applies it within a second or so */
	CHECK_EQ(setattr(id, PROTO_SET_MODE, 0604, 0, 0), 0);
	usleep(2500 * 1000);
	CHECK_EQ(head("c1", o), 0);
	CHECK_STR(meta(o, "mode"), "33156"); /* S_IFREG | 0604 */
}

static int xattr_op(uint32_t op, uint64_t ino, const char *name,
		    const char *val, uint64_t len, struct proto_msg *out)
{
	struct proto_msg q, p;
	int rc;

	req_init(&q, op);
	q.ino = ino;
	q.name = (char *)name;
	q.data = (const uint8_t *)val;
	q.data_len = val ? strlen(val) : 0;
	q.len = len;
	rc = call_on(S, &q, &p);
	if (out)
		*out = p;
	else
		proto_msg_cleanup(&p);
	return rc;
}

/* Keys below the filesystem's hidden prefix name (".occfs-xattr/"...). */
static int count_hidden(const char *what)
{
	char key[S3_KEY_MAX + 1];
	struct s3_list_page p;
	int n;

	key_of(key, sizeof(key), "fsA", what);
	if (s3_http_list(H, key, NULL, NULL, 0, &p))
		return -1;
	n = (int)p.nentries;
	s3_http_list_free(&p);
	return n;
}

/* A set too big for a header: a sidecar, kept by rename, gone at unlink. */
static void test_xattr_sidecar(struct s3_obj_info *o)
{
	static char big[6001];
	struct proto_msg p;
	uint64_t id;

	memset(big, 'b', sizeof(big) - 1);
	CHECK_EQ(put_file_on(S, ROOT, "xbig", "x", &id), 0);
	CHECK_EQ(xattr_op(PROTO_OP_SETXATTR, id, "user.small", "s", 0, NULL),
		 0);
	CHECK_EQ(xattr_op(PROTO_OP_SETXATTR, id, "user.big", big, 0, NULL), 0);
	CHECK_EQ(count_hidden(".occfs-xattr/"), 1);
	s3b_cache_apply_all(B, NULL, 0);
	CHECK_EQ(head("xbig", o), 0);
	CHECK(meta(o, "occfs-xattr") != NULL);
	CHECK(meta(o, "xattr") == NULL);
	CHECK_EQ(do_rename(ROOT, "xbig", ROOT, "xbig2", 0), 0);
	/* a fresh cache reads the set back from the sidecar */
	s3b_cache_below(B, prefix, true);
	CHECK_EQ(xattr_op(PROTO_OP_GETXATTR, id, "user.big", NULL, 8192, &p),
		 0);
	CHECK_EQ(p.data_len, sizeof(big) - 1);
	CHECK(p.data && !memcmp(p.data, big, sizeof(big) - 1));
	proto_msg_cleanup(&p);
	CHECK_EQ(xattr_op(PROTO_OP_GETXATTR, id, "user.small", NULL, 64, &p),
		 0);
	CHECK_EQ(p.data_len, 1);
	proto_msg_cleanup(&p);
	CHECK_EQ(name_op(PROTO_OP_UNLINK, ROOT, "xbig2", 0, NULL), 0);
	CHECK_EQ(count_hidden(".occfs-xattr/"), 0);
	/* a file renamed over one with a sidecar: the sidecar goes too */
	CHECK_EQ(put_file_on(S, ROOT, "xt", "x", &id), 0);
	CHECK_EQ(xattr_op(PROTO_OP_SETXATTR, id, "user.big", big, 0, NULL), 0);
	CHECK_EQ(count_hidden(".occfs-xattr/"), 1);
	CHECK_EQ(put_file_on(S, ROOT, "xs", "y", NULL), 0);
	CHECK_EQ(do_rename(ROOT, "xs", ROOT, "xt", 0), 0);
	CHECK_EQ(count_hidden(".occfs-xattr/"), 0);
	CHECK_EQ(name_op(PROTO_OP_UNLINK, ROOT, "xt", 0, NULL), 0);
	/* a value over 64 KiB is refused, as Linux does */
	static char huge[PROTO_MAX_XATTR + 2];
	memset(huge, 'h', sizeof(huge) - 1);
	CHECK_EQ(put_file_on(S, ROOT, "xhuge", "x", &id), 0);
	CHECK_EQ(xattr_op(PROTO_OP_SETXATTR, id, "user.h", huge, 0, NULL),
		 -E2BIG);
}

static void test_xattr(struct s3_obj_info *o)
{
	struct proto_msg p;
	uint64_t id, fh;

	CHECK_EQ(put_file_on(S, ROOT, "xa", "x", &id), 0);
	CHECK_EQ(xattr_op(PROTO_OP_SETXATTR, id, "user.k", "v1", 0, NULL), 0);
	CHECK_EQ(xattr_op(PROTO_OP_SETXATTR, id, "trusted.k", "v", 0, NULL),
		 -EOPNOTSUPP);
	CHECK_EQ(xattr_op(PROTO_OP_GETXATTR, id, "user.k", NULL, 64, &p), 0);
	CHECK_EQ(p.data_len, 2);
	CHECK(p.data && !memcmp(p.data, "v1", 2));
	proto_msg_cleanup(&p);
	CHECK_EQ(xattr_op(PROTO_OP_LISTXATTR, id, NULL, NULL, 64, &p), 0);
	CHECK_EQ(p.data_len, 7);
	proto_msg_cleanup(&p);
	/* applied at fsync, in s3fs's encoding */
	struct proto_msg q;
	req_init(&q, PROTO_OP_OPEN);
	q.ino = id;
	CHECK_EQ(call_on(S, &q, &p), 0);
	fh = p.fh;
	proto_msg_cleanup(&p);
	CHECK_EQ(fop_on(S, PROTO_OP_FSYNC, id, fh), 0);
	fop_on(S, PROTO_OP_RELEASE, id, fh);
	CHECK_EQ(head("xa", o), 0);
	CHECK_STR(meta(o, "xattr"), "%7B%22user.k%22%3A%22djE%3D%22%7D");
	CHECK_EQ(xattr_op(PROTO_OP_REMOVEXATTR, id, "user.k", NULL, 0, NULL),
		 0);
	CHECK_EQ(xattr_op(PROTO_OP_GETXATTR, id, "user.k", NULL, 64, NULL),
		 -ENODATA);
	CHECK_EQ(xattr_op(PROTO_OP_REMOVEXATTR, id, "user.k", NULL, 0, NULL),
		 -ENODATA);
	test_xattr_sidecar(o);
}

/* Unlinked while open: readable, writable, hidden; gone at last close. */
static void test_unlink_open(void)
{
	struct proto_msg q, p;
	struct proto_attr a;
	uint64_t id, fh;

	CHECK_EQ(put_file_on(S, ROOT, "uo", "still here", &id), 0);
	req_init(&q, PROTO_OP_OPEN);
	q.ino = id;
	q.flags = O_RDWR;
	CHECK_EQ(call_on(S, &q, &p), 0);
	fh = p.fh;
	proto_msg_cleanup(&p);
	CHECK_EQ(name_op(PROTO_OP_UNLINK, ROOT, "uo", 0, NULL), 0);
	CHECK_EQ(lookup(ROOT, "uo", NULL), -ENOENT);
	CHECK_EQ(head("uo", NULL), -ENOENT);
	CHECK_EQ(count_hidden(".occfs-unlinked/"), 1);
	CHECK_EQ(lookup(ROOT, ".occfs-unlinked", NULL), -ENOENT);
	CHECK_EQ(name_op(PROTO_OP_MKDIR, ROOT, ".occfs-x", 0755, NULL), -EPERM);
	CHECK_EQ(write_on(S, fh, 10, "!"), 0);
	req_init(&q, PROTO_OP_READ);
	q.fh = fh;
	q.len = 64;
	CHECK_EQ(call_on(S, &q, &p), 0);
	CHECK_EQ(p.data_len, 11);
	CHECK(p.data && !memcmp(p.data, "still here!", 11));
	proto_msg_cleanup(&p);
	req_init(&q, PROTO_OP_GETATTR);
	q.ino = id;
	CHECK_EQ(call_on(S, &q, &p), 0);
	CHECK_EQ(p.attr.nlink, 0);
	CHECK_EQ(p.attr.size, 11);
	proto_msg_cleanup(&p);
	CHECK_EQ(fop_on(S, PROTO_OP_FLUSH, id, fh), 0);
	CHECK_EQ(fop_on(S, PROTO_OP_RELEASE, id, fh), 0);
	CHECK_EQ(count_hidden(".occfs-unlinked/"), 0);
	CHECK_EQ(lookup(ROOT, "uo", &a), -ENOENT);
}

/* Nanoseconds and time 0 survive a fresh cache. */
static void test_times(struct s3_obj_info *o)
{
	struct proto_msg q, p;
	uint64_t id;

	CHECK_EQ(put_file_on(S, ROOT, "tm", "t", &id), 0);
	req_init(&q, PROTO_OP_SETATTR);
	q.ino = id;
	q.valid = PROTO_SET_ATIME | PROTO_SET_MTIME;
	q.attr.atime = 0;
	q.attr.atime_ns = 0;
	q.attr.mtime = 981173106;
	q.attr.mtime_ns = 123456789;
	CHECK_EQ(call_on(S, &q, &p), 0);
	proto_msg_cleanup(&p);
	s3b_cache_apply_all(B, NULL, 0);
	CHECK_EQ(head("tm", o), 0);
	CHECK_STR(meta(o, "mtime"), "981173106"); /* s3fs reads seconds */
	CHECK_STR(meta(o, "atime"), "0");
	CHECK(meta(o, "occfs-ns") &&
	      !strncmp(meta(o, "occfs-ns"), "0,123456789,", 12));
	s3b_cache_below(B, prefix, true);
	req_init(&q, PROTO_OP_GETATTR);
	q.ino = id;
	CHECK_EQ(call_on(S, &q, &p), 0);
	CHECK_EQ(p.attr.mtime, 981173106);
	CHECK_EQ(p.attr.mtime_ns, 123456789);
	CHECK_EQ(p.attr.atime, 0);
	proto_msg_cleanup(&p);
}

/* Directory made here: unknown names answered without S3; nlink counts. */
static void test_complete(void)
{
	struct proto_attr d, a;
	struct proto_msg q, p;

	CHECK_EQ(name_op(PROTO_OP_MKDIR, ROOT, "cd", 0755, &d), 0);
	CHECK_EQ(name_op(PROTO_OP_MKDIR, d.nodeid, "s1", 0755, NULL), 0);
	CHECK_EQ(name_op(PROTO_OP_MKDIR, d.nodeid, "s2", 0755, NULL), 0);
	/* another writer's object: not seen through the complete directory
	 * (the broker is the only writer) until it is listed again */
	char key[S3_KEY_MAX + 1];
	struct s3_body b = {.buf = "o", .len = 1};
	key_of(key, sizeof(key), "fsA", "cd/foreign");
	CHECK_EQ(s3_http_put_object(H, key, &b, NULL, NULL), 0);
	CHECK_EQ(lookup(d.nodeid, "foreign", NULL), -ENOENT);
	req_init(&q, PROTO_OP_GETATTR);
	q.ino = d.nodeid;
	CHECK_EQ(call_on(S, &q, &p), 0);
	CHECK_EQ(p.attr.nlink, 4);
	proto_msg_cleanup(&p);
	CHECK_EQ(name_op(PROTO_OP_RMDIR, d.nodeid, "s1", 0, NULL), 0);
	CHECK_EQ(call_on(S, &q, &p), 0);
	CHECK_EQ(p.attr.nlink, 3);
	proto_msg_cleanup(&p);
	/* PATTR: an entry reply carries the directory as GETATTR gives it */
	struct proto_msg cq, cp;
	req_init(&cq, PROTO_OP_MKDIR);
	cq.ino = d.nodeid;
	cq.name = "s3";
	cq.mode = S_IFDIR | 0755;
	CHECK_EQ(call_on(S, &cq, &cp), 0);
	CHECK(cp.has_pattr);
	CHECK_EQ(call_on(S, &q, &p), 0);
	CHECK_EQ(cp.pattr.nodeid, d.nodeid);
	CHECK_EQ(cp.pattr.nlink, 4);
	CHECK_EQ(cp.pattr.nlink, p.attr.nlink);
	CHECK_EQ(cp.pattr.mode, p.attr.mode);
	CHECK_EQ(cp.pattr.mtime, p.attr.mtime);
	CHECK_EQ(cp.pattr.mtime_ns, p.attr.mtime_ns);
	CHECK_EQ(cp.pattr.uid, p.attr.uid);
	proto_msg_cleanup(&p);
	proto_msg_cleanup(&cp);
	/* evicted from the cache: incomplete again, S3 asked */
	s3b_cache_below(B, prefix, true);
	/* and an entry reply goes without the directory, never a request */
	cq.name = "s4";
	CHECK_EQ(call_on(S, &cq, &cp), 0);
	CHECK(!cp.has_pattr);
	proto_msg_cleanup(&cp);
	CHECK_EQ(lookup(d.nodeid, "foreign", &a), 0);
	CHECK_EQ(call_on(S, &q, &p), 0);
	CHECK_EQ(p.attr.nlink, 5); /* counted by a listing: s2, s3, s4 */
	proto_msg_cleanup(&p);
}

static void test_hostile(void)
{
	char longname[300], seg[201];
	struct proto_attr d;
	uint64_t parent = ROOT;

	CHECK_EQ(lookup(ROOT, "..", NULL), -EINVAL);
	CHECK_EQ(lookup(ROOT, ".", NULL), -EINVAL);
	CHECK_EQ(lookup(ROOT, "", NULL), -EINVAL);
	CHECK_EQ(lookup(ROOT, "a/../../fsB", NULL), -EINVAL);
	CHECK_EQ(name_op(PROTO_OP_MKDIR, ROOT, "../fsB", 0755, NULL), -EINVAL);
	memset(longname, 'a', 256);
	longname[256] = '\0';
	CHECK_EQ(lookup(ROOT, longname, NULL), -ENAMETOOLONG);
	/* a key past 1024 bytes, built from legal names */
	memset(seg, 'b', 200);
	seg[200] = '\0';
	int rc = 0;
	for (int i = 0; i < 6 && !rc; i++) {
		rc = name_op(PROTO_OP_MKDIR, parent, seg, 0755, &d);
		if (!rc)
			parent = d.nodeid;
	}
	CHECK_EQ(rc, -ENAMETOOLONG);
	CHECK_EQ(lookup(ROOT + 999999, "x", NULL), -ESTALE);
	CHECK_EQ(fop_on(S, PROTO_OP_READ, ROOT, 0xdead0001), -EBADF);
}

static void test_second_writer(void)
{
	char key[S3_KEY_MAX + 1], buf[64];
	struct s3_body b = {.buf = "theirs", .len = 6};
	struct proto_msg q, p;
	uint64_t id, fh;

	CHECK_EQ(put_file_on(S, ROOT, "w", "ours-1", &id), 0);
	req_init(&q, PROTO_OP_OPEN);
	q.ino = id;
	q.flags = O_RDWR;
	CHECK_EQ(call_on(S, &q, &p), 0);
	fh = p.fh;
	proto_msg_cleanup(&p);
	CHECK_EQ(write_on(S, fh, 0, "ours-2"), 0);
	key_of(key, sizeof(key), "fsA", "w");
	CHECK_EQ(s3_http_put_object(H, key, &b, NULL, NULL), 0);
	CHECK_EQ(fop_on(S, PROTO_OP_FLUSH, id, fh), -ESTALE);
	CHECK_EQ(get_str(H, "fsA", "w", buf, sizeof(buf)), 0);
	CHECK_STR(buf, "theirs"); /* never silently overwritten */
	fop_on(S, PROTO_OP_RELEASE, id, fh);
}

static void test_sessions(void)
{
	struct backend_session *sb = NULL;
	char key[S3_KEY_MAX + 1], buf[64];
	struct s3_sink sk = {.buf = buf, .cap = sizeof(buf)};
	size_t got;

	CHECK_EQ(backend_s3.session_open(B, "fsB", 0, &sb), 0);
	if (!sb)
		return;
	CHECK_EQ(put_file_on(sb, ROOT, "only-b", "B's", NULL), 0);
	CHECK_EQ(lookup_on(S, ROOT, "only-b", NULL), -ENOENT);
	CHECK_EQ(lookup_on(sb, ROOT, "hello.txt", NULL), -ENOENT);
	CHECK_EQ(get_str(H, "fsB", "only-b", buf, sizeof(buf)), 0);
	CHECK_STR(buf, "B's");
	/* STS: session A's own credential reads A and is refused on B */
	if (B->sts) {
		key_of(key, sizeof(key), "fsA", "hello.txt");
		CHECK_EQ(s3_http_get_object(S->fs->http, key, 0, 0, &sk, NULL,
					    &got, NULL),
			 0);
		key_of(key, sizeof(key), "fsB", "only-b");
		CHECK_EQ(s3_http_get_object(S->fs->http, key, 0, 0, &sk, NULL,
					    &got, NULL),
			 -EACCES);
		CHECK_EQ(s3_http_delete_object(S->fs->http, key), -EACCES);
		CHECK(S->fs->cred_exp > time(NULL) + 600);
	}
	backend_s3.session_close(sb);
}

/* check() refuses a readable credentials file and missing settings. */
static void test_check(struct broker_config *cfg, const char *cred)
{
	struct broker_config bad = *cfg;

	CHECK_EQ(chmod(cred, 0644), 0);
	CHECK(backend_s3.check(cfg) < 0);
	CHECK_EQ(chmod(cred, 0600), 0);
	CHECK_EQ(backend_s3.check(cfg), 0);
	bad.s3.bucket = NULL;
	CHECK(backend_s3.check(&bad) < 0);
	bad = *cfg;
	bad.s3.prefix = "a/../b";
	CHECK(backend_s3.check(&bad) < 0);
	bad = *cfg;
	bad.s3.addressing = "sideways";
	CHECK(backend_s3.check(&bad) < 0);
	bad = *cfg;
	bad.s3.role_arn = NULL;
	CHECK(bad.s3.sts_endpoint == NULL || backend_s3.check(&bad) < 0);
}

int main(void)
{
	const char *ep = getenv("S3_ENDPOINT"), *role = getenv("S3_ROLE_ARN");
	char cred[128], stage[128];
	struct broker_config cfg;
	struct s3_obj_info *o;
	FILE *f;

	if (!ep) {
		printf("test-backend-s3: no S3_ENDPOINT: skipped\n");
		return 77;
	}
	log_init("test-backend-s3", 0);
	if (!mkdtemp(dir))
		return 1;
	snprintf(cred, sizeof(cred), "%s/cred", dir);
	snprintf(stage, sizeof(stage), "%s/stage", dir);
	snprintf(prefix, sizeof(prefix), "bt%d", (int)getpid());
	f = fopen(cred, "w");
	if (!f)
		return 1;
	fprintf(f, "# test\naws_access_key_id = %s\nsecret_key=%s\n",
		getenv("S3_ACCESS_KEY"), getenv("S3_SECRET_KEY"));
	fclose(f);
	chmod(cred, 0600);
	memset(&cfg, 0, sizeof(cfg));
	cfg.backend = "s3";
	cfg.staging_dir = stage;
	cfg.s3.endpoint = (char *)ep;
	cfg.s3.region = getenv("S3_REGION");
	cfg.s3.bucket = getenv("S3_BUCKET");
	cfg.s3.prefix = prefix;
	cfg.s3.credentials = cred;
	cfg.s3.rgw_quirks = 1;
	cfg.s3.retry_budget_ms = 5000;
	if (role) {
		cfg.s3.sts_endpoint = (char *)ep;
		cfg.s3.role_arn = (char *)role;
	}
	test_check(&cfg, cred);
	CHECK_EQ(backend_s3.start(&cfg, &B), 0);
	CHECK_EQ(backend_s3.session_open(B, "fsA", 0, &S), 0);
	struct s3_http_config hc = {.endpoint = ep,
				    .region = cfg.s3.region,
				    .bucket = cfg.s3.bucket,
				    .rgw_quirks = true};
	struct s3_cred c = {getenv("S3_ACCESS_KEY"), getenv("S3_SECRET_KEY"),
			    NULL};
	H = s3_http_new(&hc);
	o = calloc(1, sizeof(*o));
	if (!B || !S || !H || !o || s3_http_set_cred(H, &c))
		return unit_done("test-backend-s3") | 1;
	test_file(o);
	test_dirs(o);
	test_listing();
	test_rename(o);
	test_symlink(o);
	test_chmod(o);
	test_xattr(o);
	test_unlink_open();
	test_times(o);
	test_complete();
	test_hostile();
	test_second_writer();
	test_sessions();
	backend_s3.session_close(S);
	CHECK(backend_s3.stop(B, 2000) >= 0);
	s3_http_free(H);
	free(o);
	char cmd[200];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd))
		fprintf(stderr, "could not remove %s\n", dir);
	return unit_done("test-backend-s3");
}
