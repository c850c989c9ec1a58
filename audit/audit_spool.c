/*
 * audit_spool.c - the emitter's local spool: a directory of numbered
 * segment files ("00000000000000000042.spool") holding wire frames.
 *
 * The writer appends to the newest segment and moves to a new one past
 * seg_max bytes; the sender reads from (rseg, roff), kept in the "ack" file
 * so a restarted emitter resumes where delivery stopped, and unlinks a
 * segment once all of it is acknowledged.  "used" counts every byte still
 * on disk, which is what the size bound limits.  A "lock" file held with
 * flock keeps two processes from sharing one spool.  The caller (audit.c)
 * holds its lock around every function here.
 */
#include "audit_int.h"
#include "audit_wire.h"
#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define SEG_FMT "%020" PRIu64 ".spool"

char *audit_spool_path(const struct audit_spool *s, uint64_t seg)
{
	char *p;

	if (asprintf(&p, "%s/" SEG_FMT, s->dir, seg) < 0)
		return NULL;
	return p;
}

static int seg_number(const char *name, uint64_t *seg)
{
	char *end;
	unsigned long long v;

	if (strlen(name) != 26 || strcmp(name + 20, ".spool") != 0)
		return 0;
	errno = 0;
	v = strtoull(name, &end, 10);
	if (errno || end != name + 20)
		return 0;
	*seg = v;
	return 1;
}

/* Find the oldest and newest segments and the bytes they hold. */
static int scan(struct audit_spool *s, uint64_t *lo, uint64_t *hi)
{
	DIR *d;
	struct dirent *e;
	struct stat st;
	uint64_t seg;
	int fd;

	fd = dup(s->dirfd);
	if (fd < 0 || !(d = fdopendir(fd))) {
		if (fd >= 0)
			close(fd);
		return -errno;
	}
	*lo = UINT64_MAX;
	*hi = 0;
	s->used = 0;
	while ((e = readdir(d))) {
		if (!seg_number(e->d_name, &seg))
			continue;
		if (fstatat(s->dirfd, e->d_name, &st, 0) < 0)
			continue;
		s->used += st.st_size;
		if (seg < *lo)
			*lo = seg;
		if (seg > *hi)
			*hi = seg;
	}
	closedir(d);
	return 0;
}

static int open_segment(struct audit_spool *s, uint64_t seg)
{
	char name[32];
	int fd;

	snprintf(name, sizeof(name), SEG_FMT, seg);
	fd = openat(s->dirfd, name,
		    O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	s->wseg = seg;
	s->wfd = fd;
	s->wsize = 0;
	s->dir_dirty = 1;
	return 0;
}

static void load_ack(struct audit_spool *s, uint64_t lo)
{
	char line[64] = "", name[32];
	unsigned long long seg, off;
	struct stat st;
	ssize_t n;

	s->rseg = lo;
	s->roff = 0;
	n = pread(s->ackfd, line, sizeof(line) - 1, 0);
	if (n <= 0 || sscanf(line, "%llu %llu", &seg, &off) != 2)
		return;
	snprintf(name, sizeof(name), SEG_FMT, (uint64_t)seg);
	if (seg < lo || fstatat(s->dirfd, name, &st, 0) < 0 ||
	    off > (unsigned long long)st.st_size)
		return;
	s->rseg = seg;
	s->roff = off;
}

int audit_spool_open(struct audit_spool *s, const char *dir, uint64_t max)
{
	uint64_t lo = UINT64_MAX, hi = 0;
	int r;

	memset(s, 0, sizeof(*s));
	s->dirfd = s->lockfd = s->ackfd = s->wfd = -1;
	s->max = max;
	s->seg_max = max / 8 > 4096 ? max / 8 : 4096;
	s->dir = strdup(dir);
	if (!s->dir)
		return -ENOMEM;
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		goto fail;
	s->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->dirfd < 0)
		goto fail;
	s->lockfd =
	    openat(s->dirfd, "lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (s->lockfd < 0)
		goto fail;
	if (flock(s->lockfd, LOCK_EX | LOCK_NB) < 0) {
		errno = errno == EWOULDBLOCK ? EBUSY : errno;
		goto fail;
	}
	s->ackfd = openat(s->dirfd, "ack", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (s->ackfd < 0)
		goto fail;
	r = scan(s, &lo, &hi);
	if (r < 0) {
		errno = -r;
		goto fail;
	}
	/* Always write to a fresh segment: the newest one may end in a
	 * frame cut short by a crash; the sender skips such a tail. */
	r = open_segment(s, hi + 1);
	if (r < 0) {
		errno = -r;
		goto fail;
	}
	load_ack(s, lo == UINT64_MAX ? s->wseg : lo);
	return 0;
fail:
	r = -errno;
	audit_spool_close(s);
	return r;
}

void audit_spool_close(struct audit_spool *s)
{
	size_t i;

	for (i = 0; i < s->nstale; i++)
		close(s->stale[i]);
	s->nstale = 0;
	if (s->wfd >= 0)
		close(s->wfd);
	if (s->ackfd >= 0)
		close(s->ackfd);
	if (s->lockfd >= 0)
		close(s->lockfd);
	if (s->dirfd >= 0)
		close(s->dirfd);
	s->wfd = s->ackfd = s->lockfd = s->dirfd = -1;
	free(s->dir);
	s->dir = NULL;
}

int audit_spool_rotate(struct audit_spool *s)
{
	int old = s->wfd, r;

	r = open_segment(s, s->wseg + 1);
	if (r < 0)
		return r;
	if (s->nstale == AUDIT_SPOOL_STALE) {
		/* The syncer is far behind: settle this one here. */
		fdatasync(old);
		close(old);
	} else {
		s->stale[s->nstale++] = old;
	}
	return 0;
}

int audit_spool_append(struct audit_spool *s, const void *json, size_t len,
		       uint64_t limit)
{
	uint8_t hdr[AUDIT_FRAME_HDR];
	struct iovec iov[2];
	size_t total = AUDIT_FRAME_HDR + len, done = 0;
	ssize_t n;
	int r;

	if (len == 0 || len > AUDIT_FRAME_MAX)
		return -EMSGSIZE;
	if (s->used + total > limit)
		return -ENOSPC;
	if (s->wsize >= s->seg_max) {
		r = audit_spool_rotate(s);
		if (r < 0)
			return r;
	}
	audit_wire_put32(hdr, len);
	while (done < total) {
		iov[0].iov_base =
		    hdr + (done < sizeof(hdr) ? done : sizeof(hdr));
		iov[0].iov_len = done < sizeof(hdr) ? sizeof(hdr) - done : 0;
		iov[1].iov_base = (char *)json +
				  (done > sizeof(hdr) ? done - sizeof(hdr) : 0);
		iov[1].iov_len =
		    len - (done > sizeof(hdr) ? done - sizeof(hdr) : 0);
		n = writev(s->wfd, iov, 2);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			r = n < 0 ? -errno : -EIO;
			/* Never leave half a frame behind. */
			if (done && ftruncate(s->wfd, s->wsize) < 0)
				log_warn("audit spool: cannot cut a partial "
					 "record: %m");
			return r;
		}
		done += n;
	}
	s->wsize += total;
	s->used += total;
	return 0;
}

size_t audit_spool_take_sync(struct audit_spool *s, int *fds, size_t max,
			     int *dirfd)
{
	size_t n = 0, i;

	*dirfd = -1;
	if (s->dir_dirty) {
		*dirfd = dup(s->dirfd);
		s->dir_dirty = 0;
	}
	if (max && (fds[0] = dup(s->wfd)) >= 0)
		n++;
	for (i = 0; i < s->nstale && n < max; i++)
		fds[n++] = s->stale[i];
	/* Whatever did not fit is settled here. */
	for (; i < s->nstale; i++) {
		fdatasync(s->stale[i]);
		close(s->stale[i]);
	}
	s->nstale = 0;
	return n;
}

void audit_spool_save_ack(struct audit_spool *s)
{
	char line[48];
	int n;

	/* Fixed width, so the file never holds a stale tail; not fsynced:
	 * losing it only means resending records (at-least-once). */
	n = snprintf(line, sizeof(line), "%020" PRIu64 " %020" PRIu64 "\n",
		     s->rseg, s->roff);
	if (pwrite(s->ackfd, line, n, 0) != n)
		log_warn("audit spool: cannot save the delivery point: %m");
}
