/*
 * auditd_store.c - occfs-auditd's append-only, hash-chained log: appends
 * record lines to the open segment, fsyncs in batches, keeps HEAD, rotates
 * by size or age and compresses closed segments with zstd.
 *
 * At start it recovers: leftovers of an interrupted compression are
 * cleaned up, closed segments still plain are compressed, and the chain
 * resumes from the last whole record.  A record cut short by a crash was
 * never acknowledged (acks follow the fsync), so it is cut off the open
 * segment with a log line.
 */
#include "auditd.h"
#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/*
 * Milliseconds on CLOCK_MONOTONIC.  Whole seconds of time(2) would close a
 * segment opened at x.999 s one millisecond later under an age of 1 s.
 */
static uint64_t store_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int open_segment(struct auditd_store *st)
{
	snprintf(st->name, sizeof(st->name), "seg-%020" PRIu64 ".log",
		 st->n + 1);
	st->fd = openat(st->dirfd, st->name,
			O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	if (st->fd < 0)
		return -errno;
	st->size = 0;
	st->opened_ms = store_now_ms();
	fsync(st->dirfd);
	return 0;
}

/* Remove *.zst.tmp and plain twins of compressed segments. */
static void clean(struct auditd_store *st)
{
	struct dirent *e;
	struct stat sb;
	char twin[300];
	size_t l;
	DIR *d = opendir(st->dir);

	if (!d)
		return;
	while ((e = readdir(d))) {
		l = strlen(e->d_name);
		if (l > 8 && strcmp(e->d_name + l - 8, ".zst.tmp") == 0) {
			unlinkat(st->dirfd, e->d_name, 0);
			continue;
		}
		if (l > 4 && strcmp(e->d_name + l - 4, ".log") == 0) {
			snprintf(twin, sizeof(twin), "%s.zst", e->d_name);
			if (fstatat(st->dirfd, twin, &sb, 0) == 0) {
				log_warn("%s: compressed copy exists; removing "
					 "the plain one",
					 e->d_name);
				unlinkat(st->dirfd, e->d_name, 0);
			}
		}
	}
	closedir(d);
}

/* Read the last segment to find where the chain stands. */
static int resume(struct auditd_store *st, const struct audit_seg *s)
{
	struct audit_reader *r = audit_reader_open(st->dir, s);
	struct audit_rec rec;
	const char *line;
	size_t len;
	int e;

	if (!r)
		return -errno;
	st->n = s->first - 1;
	while ((e = audit_reader_next(r, &line, &len)) == 1) {
		if (audit_log_parse(line, len, &rec) < 0) {
			audit_reader_close(r);
			log_err("%s: unreadable record after %" PRIu64
				"; refusing to extend a damaged log",
				s->name, st->n);
			return -EBADMSG;
		}
		st->n = rec.n;
		memcpy(st->last, rec.hash, sizeof(st->last));
	}
	if (e == -EBADMSG && !s->compressed) {
		log_warn("%s: cutting a partial record at byte %" PRIu64
			 " (never acknowledged)",
			 s->name, audit_reader_offset(r));
	}
	st->size = audit_reader_offset(r); /* the open file is cut to this */
	audit_reader_close(r);
	if (e < 0 && e != -EBADMSG)
		return e;
	if (e == -EBADMSG && s->compressed)
		return -EBADMSG;
	return 0;
}

int auditd_store_open(struct auditd_store *st, const char *dir)
{
	struct audit_seg *segs = NULL;
	size_t n, i;
	int r;

	st->fd = -1;
	st->n = 0;
	st->dirty = 0;
	memcpy(st->last, AUDIT_ZERO_HASH, sizeof(st->last));
	if (mkdir(dir, 0750) < 0 && errno != EEXIST)
		return -errno;
	st->dir = strdup(dir);
	st->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (!st->dir || st->dirfd < 0)
		return -errno;
	clean(st);
	r = audit_log_list(dir, &segs, &n);
	if (r < 0)
		return r;
	for (i = 0; i + 1 < n; i++) {
		if (segs[i].compressed)
			continue;
		r = audit_log_compress(dir, segs[i].name, st->zlevel);
		if (r < 0)
			log_warn("%s: cannot compress: %s", segs[i].name,
				 strerror(-r));
	}
	if (n) {
		r = resume(st, &segs[n - 1]);
		if (r == 0 && !segs[n - 1].compressed) {
			snprintf(st->name, sizeof(st->name), "%s",
				 segs[n - 1].name);
			st->fd = openat(st->dirfd, st->name,
					O_WRONLY | O_APPEND | O_CLOEXEC);
			if (st->fd < 0)
				r = -errno;
			else if (ftruncate(st->fd, st->size) < 0)
				r = -errno;
			st->opened_ms = store_now_ms();
		}
	}
	free(segs);
	return r;
}

int auditd_store_append(struct auditd_store *st, const char *json, size_t len)
{
	char hash[AUDIT_HASH_HEX + 1], *line;
	size_t ll, done = 0;
	ssize_t w;
	int r = 0;

	/* Past the size bound: close this segment before the record. */
	if (st->size >= st->seg_max && (r = auditd_store_maybe_rotate(st, 1)))
		return r;
	if (st->fd < 0 && (r = open_segment(st)) < 0)
		return r;
	line = audit_log_format(st->n + 1, st->last, json, len, hash, &ll);
	if (!line)
		return -ENOMEM;
	while (done < ll) {
		w = write(st->fd, line + done, ll - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			r = w < 0 ? -errno : -EIO;
			/* Keep the chain whole: no half record stays. */
			if (done && ftruncate(st->fd, st->size) < 0)
				log_err("%s: cannot cut a partial record: %m",
					st->name);
			break;
		}
		done += w;
	}
	free(line);
	if (r < 0)
		return r;
	st->n++;
	memcpy(st->last, hash, sizeof(st->last));
	st->size += ll;
	st->dirty = 1;
	return 0;
}

static void write_head(struct auditd_store *st)
{
	char line[128];
	int fd, n;

	n = snprintf(line, sizeof(line), "%" PRIu64 " %s\n", st->n, st->last);
	fd = openat(st->dirfd, "HEAD.tmp",
		    O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (fd < 0)
		return;
	if (write(fd, line, n) != n ||
	    renameat(st->dirfd, "HEAD.tmp", st->dirfd, "HEAD") < 0)
		log_warn("HEAD: %m");
	close(fd);
}

int auditd_store_sync(struct auditd_store *st)
{
	if (!st->dirty)
		return 0;
	if (st->fd >= 0 && fdatasync(st->fd) < 0)
		return -errno;
	st->dirty = 0;
	write_head(st);
	return 0;
}

int auditd_store_maybe_rotate(struct auditd_store *st, int force)
{
	char name[48];
	int r;

	if (st->fd < 0 || st->size == 0)
		return 0;
	if (!force && !(st->seg_age && store_now_ms() - st->opened_ms >=
					   (uint64_t)st->seg_age * 1000))
		return 0;
	r = auditd_store_sync(st);
	if (r < 0)
		return r;
	if (fsync(st->fd) < 0)
		return -errno;
	close(st->fd);
	st->fd = -1;
	snprintf(name, sizeof(name), "%s", st->name);
	r = audit_log_compress(st->dir, name, st->zlevel);
	if (r < 0)
		log_warn("%s: cannot compress: %s", name, strerror(-r));
	fsync(st->dirfd);
	log_info("closed %s at record %" PRIu64 " %s", name, st->n, st->last);
	return 0;
}

void auditd_store_close(struct auditd_store *st)
{
	if (st->fd >= 0) {
		auditd_store_sync(st);
		fsync(st->fd);
		close(st->fd);
	}
	if (st->dirfd >= 0)
		close(st->dirfd);
	free(st->dir);
	st->dir = NULL;
	st->fd = st->dirfd = -1;
}
