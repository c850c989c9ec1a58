/*
 * local_dlp.c - DLP on the local backend: a file written through a handle
 * is scanned whole when that handle is flushed (every close), fsynced or
 * released, before the call returns.
 *
 * Scanning the file rather than the writes as they arrive keeps the scan
 * right whatever order the workers run parallel writes in, and whatever
 * other handles did: the verdict is about the file as it is at close.
 * The cost is one read of the file (normally from the page cache) per
 * flush of a written handle, on the worker that runs the flush.
 *
 * A block keeps the plaintext: it is copied to
 * <root>/.occfs-quarantine/<id>/data (beside the filesystems, never
 * served: the local backend refuses that filesystem_id) with an "info"
 * file, and only then is the file in the tree truncated to zero, so the
 * guest neither reads the content back as if accepted nor loses it.  The
 * name stays, empty.  If keeping a copy fails the file is left as it is
 * (nothing lost) and the call still fails with EACCES.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dlp_scan.h"
#include "local.h"
#include "log.h"

void local_dlp_wrote(struct local_file *f)
{
	if (!__atomic_load_n(&f->dlp_dirty, __ATOMIC_RELAXED) &&
	    dlp_scan_active(NULL))
		__atomic_store_n(&f->dlp_dirty, true, __ATOMIC_RELEASE);
}

/* The guest's path of the file open as fd: "/a/b", or "?" if unknown. */
static void guest_path(struct backend_session *s, int fd, char *out, size_t len)
{
	char proc[40], root[4096], file[4096];
	ssize_t nr, nf;

	snprintf(out, len, "?");
	if (local_proc_path(proc, sizeof(proc), s->root_fd) ||
	    (nr = readlink(proc, root, sizeof(root) - 1)) <= 0)
		return;
	if (local_proc_path(proc, sizeof(proc), fd) ||
	    (nf = readlink(proc, file, sizeof(file) - 1)) <= 0)
		return;
	root[nr] = file[nf] = '\0';
	if (nf > nr && !strncmp(file, root, (size_t)nr) && file[nr] == '/')
		snprintf(out, len, "%s", file + nr);
}

/* Copy size bytes of in to the new file out. */
static int copy_all(int in, int out, uint64_t size)
{
	loff_t off = 0;
	char buf[65536];
	ssize_t n;

	while ((uint64_t)off < size) {
		n = copy_file_range(in, &off, out, NULL,
				    (size_t)(size - (uint64_t)off), 0);
		if (n > 0)
			continue;
		if (n == 0)
			return 0;
		if (errno == EINTR)
			continue;
		if (errno != EXDEV && errno != EINVAL && errno != ENOSYS &&
		    errno != EOPNOTSUPP)
			return -errno;
		break; /* no copy_file_range here: by hand */
	}
	while ((uint64_t)off < size) {
		n = pread(in, buf, sizeof(buf), off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : 0;
		if (write(out, buf, (size_t)n) != n)
			return -EIO;
		off += n;
	}
	return 0;
}

/* Keep in's first size bytes as a new quarantine entry; r->qid names it. */
static int keep(struct backend_session *s, int in, uint64_t size,
		const char *path, struct dlp_scan_result *r)
{
	struct dlp_scan_info info = {.backend = "local",
				     .fsid = s->fsid,
				     .path = path,
				     .size = size,
				     .r = r};
	int rootfd = -1, qfd = -1, efd = -1, dfd = -1, rc;
	char id[48];

	rc = dlp_scan_new_id(id, sizeof(id));
	if (rc)
		return rc;
	rootfd = open(s->b->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0 || (mkdirat(rootfd, DLP_QUARANTINE_LOCAL, 0700) < 0 &&
			   errno != EEXIST)) {
		rc = -errno;
		goto out;
	}
	qfd = openat(rootfd, DLP_QUARANTINE_LOCAL,
		     O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (qfd < 0 || mkdirat(qfd, id, 0700) < 0) {
		rc = -errno;
		goto out;
	}
	efd = openat(qfd, id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (efd < 0) {
		rc = -errno;
		goto out;
	}
	dfd =
	    openat(efd, "data", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (dfd < 0) {
		rc = -errno;
		goto out;
	}
	rc = copy_all(in, dfd, size);
	if (!rc && fsync(dfd) < 0)
		rc = -errno;
	if (!rc)
		rc = dlp_scan_write_info(efd, &info);
	if (!rc && (fsync(efd) < 0 || fsync(qfd) < 0))
		rc = -errno;
	if (!rc)
		snprintf(r->qid, sizeof(r->qid), "%s", id);
out:
	if (rc && efd >= 0) {
		unlinkat(efd, "data", 0);
		unlinkat(efd, "info", 0);
		unlinkat(qfd, id, AT_REMOVEDIR);
	}
	if (dfd >= 0)
		close(dfd);
	if (efd >= 0)
		close(efd);
	if (qfd >= 0)
		close(qfd);
	if (rootfd >= 0)
		close(rootfd);
	return rc;
}

/* The file is kept in quarantine: leave it empty in the tree. */
static void empty(struct backend_session *s, struct local_file *f)
{
	struct local_qop q;
	uint64_t room;

	if (local_quota_begin(s, f->fd, &q, &room))
		return;
	if (ftruncate(f->fd, 0) < 0)
		log_err("dlp: fsid %s: truncating a blocked file: %s", s->fsid,
			strerror(errno));
	local_quota_end(&q, f->fd);
}

int local_dlp_check(struct backend_session *s, struct local_file *f)
{
	struct dlp_scan_result r;
	char proc[40], path[4096];
	struct stat st;
	int rfd = -1, rc;

	if (!__atomic_exchange_n(&f->dlp_dirty, false, __ATOMIC_ACQ_REL))
		return 0;
	if (!dlp_scan_active(NULL))
		return 0;
	/* The handle may be write-only: read through a descriptor of our
	 * own on the same inode. */
	rc = local_proc_path(proc, sizeof(proc), f->fd);
	if (!rc) {
		rfd = open(proc, O_RDONLY | O_CLOEXEC | O_NOATIME);
		if (rfd < 0 && errno == EPERM)
			rfd = open(proc, O_RDONLY | O_CLOEXEC);
		if (rfd < 0 || fstat(rfd, &st) < 0)
			rc = -errno;
	}
	guest_path(s, f->fd, path, sizeof(path));
	if (rc) {
		log_err("dlp: fsid %s: %s cannot be read for scanning: %s; "
			"blocked",
			s->fsid, path, strerror(-rc));
		memset(&r, 0, sizeof(r));
		r.action = DLP_SCAN_BLOCK;
		snprintf(r.rule, sizeof(r.rule), "(scan error)");
		dlp_scan_blocked(s->fsid, path, &r);
		goto out;
	}
	dlp_scan_fd(s->fsid, path, rfd, (uint64_t)st.st_size, &r);
	if (r.action != DLP_SCAN_BLOCK) {
		rc = 0;
		goto out;
	}
	rc = keep(s, rfd, (uint64_t)st.st_size, path, &r);
	if (rc)
		log_err("dlp: fsid %s: %s blocked but not kept in quarantine "
			"(%s); left in place",
			s->fsid, path, strerror(-rc));
	else
		empty(s, f);
	dlp_scan_blocked(s->fsid, path, &r);
out:
	if (rfd >= 0)
		close(rfd);
	return r.action == DLP_SCAN_BLOCK || rc ? -EACCES : 0;
}
