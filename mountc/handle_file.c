/*
 * handle_file.c - read, then scrub, the session handle file (handle_file.h).
 *
 * The checks refuse what would make the secret less secret: a symlink
 * (someone else may choose what we read and then wipe), anything but a
 * regular file, a file owned by another user or open to group/others
 * (whoever could read it may already have it).  The file is opened with
 * O_NOFOLLOW and checked again through the descriptor, so a swap between
 * the check and the open is caught.
 */
#include "handle_file.h"

#include "log.h"
#include "token.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static int hf_fail(char *why, size_t len, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int hf_fail(char *why, size_t len, int rc, const char *fmt, ...)
{
	va_list ap;

	if (why && len) {
		va_start(ap, fmt);
		vsnprintf(why, len, fmt, ap);
		va_end(ap);
	}
	return rc;
}

static int hf_stat_ok(const char *path, const struct stat *st, char *why,
		      size_t len)
{
	if (S_ISLNK(st->st_mode))
		return hf_fail(why, len, -ELOOP,
			       "handle file %s is a symbolic link", path);
	if (!S_ISREG(st->st_mode))
		return hf_fail(why, len, -EINVAL,
			       "handle file %s is not a regular file", path);
	if (st->st_uid != geteuid())
		return hf_fail(why, len, -EPERM,
			       "handle file %s is owned by uid %u, not by us",
			       path, (unsigned)st->st_uid);
	if (st->st_mode & (S_IRWXG | S_IRWXO))
		return hf_fail(why, len, -EPERM,
			       "handle file %s is accessible by group or "
			       "others (mode %04o): the handle is a secret, "
			       "make it mode 0600",
			       path, (unsigned)(st->st_mode & 07777));
	if (st->st_size == 0)
		return hf_fail(why, len, -EINVAL, "handle file %s is empty",
			       path);
	if (st->st_size > (off_t)TOKEN_MAX_LEN)
		return hf_fail(why, len, -EFBIG,
			       "handle file %s is larger than a handle "
			       "(%u bytes at most)",
			       path, TOKEN_MAX_LEN);
	return 0;
}

int handle_file_check(const char *path, char *why, size_t whylen)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		return hf_fail(why, whylen, -errno,
			       "cannot read handle file %s: %s", path,
			       strerror(errno));
	return hf_stat_ok(path, &st, why, whylen);
}

/* Memory for the secret: locked, not dumped, not inherited by children. */
static int hf_alloc(struct handle_secret *h)
{
	long page = sysconf(_SC_PAGESIZE);
	size_t map;
	void *p;

	if (page <= 0)
		page = 4096;
	map = (TOKEN_MAX_LEN + 1 + (size_t)page - 1) / (size_t)page *
	      (size_t)page;
	p = mmap(NULL, map, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		 -1, 0);
	if (p == MAP_FAILED)
		return -errno;
	(void)mlock(p, map); /* best effort: RLIMIT_MEMLOCK may forbid it */
	(void)madvise(p, map, MADV_DONTDUMP);
	(void)madvise(p, map, MADV_DONTFORK);
	h->p = p;
	h->map = map;
	h->len = 0;
	return 0;
}

void handle_secret_free(struct handle_secret *h)
{
	if (!h->p)
		return;
	explicit_bzero(h->p, h->map);
	munlock(h->p, h->map);
	munmap(h->p, h->map);
	h->p = NULL;
	h->len = 0;
	h->map = 0;
}

/* Overwrite the file with zeros, sync it, remove it. */
static void hf_scrub(const char *path, int fd, int writable,
		     const struct stat *st)
{
	static const char zeros[4096];
	struct stat now;
	off_t off = 0;
	ssize_t w;

	while (writable && off < st->st_size) {
		w = pwrite(fd, zeros,
			   st->st_size - off < (off_t)sizeof(zeros)
			       ? (size_t)(st->st_size - off)
			       : sizeof(zeros),
			   off);
		if (w <= 0) {
			log_warn("cannot overwrite handle file %s: %s", path,
				 w < 0 ? strerror(errno) : "short write");
			break;
		}
		off += w;
	}
	if (!writable)
		log_warn("cannot overwrite handle file %s: opened read-only",
			 path);
	else if (fsync(fd) < 0)
		log_warn("cannot sync handle file %s: %s", path,
			 strerror(errno));
	/* Remove only the file we read, not one swapped in since. */
	if (lstat(path, &now) < 0 || now.st_dev != st->st_dev ||
	    now.st_ino != st->st_ino)
		log_warn("handle file %s changed while read: not removed",
			 path);
	else if (unlink(path) < 0)
		log_warn("cannot remove handle file %s: %s", path,
			 strerror(errno));
}

/* Read the whole file (at most TOKEN_MAX_LEN bytes) into h. */
static int hf_load(const char *path, int fd, struct handle_secret *h, char *why,
		   size_t whylen)
{
	size_t n = 0;
	ssize_t r;

	while (n <= TOKEN_MAX_LEN) {
		r = read(fd, h->p + n, TOKEN_MAX_LEN + 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return hf_fail(why, whylen, -errno,
				       "cannot read handle file %s: %s", path,
				       strerror(errno));
		if (r == 0)
			break;
		n += (size_t)r;
	}
	if (n > TOKEN_MAX_LEN)
		return hf_fail(why, whylen, -EFBIG,
			       "handle file %s is larger than a handle", path);
	while (n > 0 && strchr(" \t\r\n", h->p[n - 1]))
		n--;
	h->p[n] = '\0';
	h->len = n;
	if (n == 0)
		return hf_fail(why, whylen, -EINVAL, "handle file %s is empty",
			       path);
	for (size_t i = 0; i < n; i++)
		if (h->p[i] < 0x21 || h->p[i] > 0x7e)
			return hf_fail(why, whylen, -EINVAL,
				       "handle file %s does not hold a handle "
				       "(unexpected byte at offset %zu)",
				       path, i);
	return 0;
}

int handle_file_read(const char *path, struct handle_secret *h, char *why,
		     size_t whylen)
{
	struct stat before, st;
	int fd = -1, writable = 1, rc;

	h->p = NULL;
	rc = handle_file_check(path, why, whylen);
	if (rc)
		goto out;
	if (lstat(path, &before) < 0) {
		rc = hf_fail(why, whylen, -errno,
			     "cannot read handle file %s: %s", path,
			     strerror(errno));
		goto out;
	}
	fd =
	    open(path, O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0 && (errno == EROFS || errno == EACCES || errno == EPERM)) {
		writable = 0;
		fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY |
				    O_CLOEXEC);
	}
	if (fd < 0) {
		rc = hf_fail(why, whylen, -errno,
			     "cannot open handle file %s: %s", path,
			     strerror(errno));
		goto out;
	}
	if (fstat(fd, &st) < 0 || st.st_dev != before.st_dev ||
	    st.st_ino != before.st_ino) {
		rc = hf_fail(why, whylen, -EAGAIN,
			     "handle file %s changed while being opened", path);
		goto out;
	}
	rc = hf_stat_ok(path, &st, why, whylen);
	if (rc)
		goto out;
	rc = hf_alloc(h);
	if (rc) {
		hf_fail(why, whylen, rc,
			"cannot allocate memory for the handle");
		goto out;
	}
	rc = hf_load(path, fd, h, why, whylen);
	/* Scrub even a malformed handle: it may be a damaged real one. */
	hf_scrub(path, fd, writable, &st);
out:
	if (fd >= 0)
		close(fd);
	if (rc)
		handle_secret_free(h);
	return rc;
}
