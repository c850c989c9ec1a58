/*
 * dlp_scan.c - the backends' side of DLP: the installed scanner (or none)
 * and the quarantine entry helpers both backends use.
 *
 * Kept apart from the scanner itself (broker_dlp.c) so that libbroker.a
 * and its unit tests need neither Vectorscan nor the policy library.
 */
#include "dlp_scan.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

/* Set once before the loop starts, read-only afterwards. */
static const struct dlp_scan_ops *scan_ops;

void dlp_scan_install(const struct dlp_scan_ops *ops)
{
	scan_ops = ops;
}

bool dlp_scan_active(bool *visible)
{
	bool v = false, on = scan_ops && scan_ops->active(&v);

	if (visible)
		*visible = on && v;
	return on;
}

int dlp_scan_fd(const char *fsid, const char *path, int fd, uint64_t size,
		struct dlp_scan_result *r)
{
	memset(r, 0, sizeof(*r));
	if (!scan_ops)
		return 0;
	return scan_ops->scan_fd(fsid, path, fd, size, r);
}

void dlp_scan_blocked(const char *fsid, const char *path,
		      const struct dlp_scan_result *r)
{
	if (scan_ops)
		scan_ops->blocked(fsid, path, r);
}

/* ---- quarantine entries ---------------------------------------------------
 */

int dlp_scan_new_id(char *buf, size_t len)
{
	unsigned char rnd[6];
	struct tm tm;
	time_t now = time(NULL);
	int n;

	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		return -EIO;
	gmtime_r(&now, &tm);
	n = snprintf(
	    buf, len, "q%04d%02d%02dT%02d%02d%02d-%02x%02x%02x%02x%02x%02x",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
	    tm.tm_sec, rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5]);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

bool dlp_scan_id_ok(const char *name)
{
	size_t i, n = strlen(name);

	if (n < 2 || n > 47 || name[0] != 'q')
		return false;
	for (i = 1; i < n; i++)
		if (!((name[i] >= '0' && name[i] <= '9') ||
		      (name[i] >= 'a' && name[i] <= 'f') || name[i] == 'T' ||
		      name[i] == '-'))
			return false;
	return true;
}

/* A value on one line: '%', control bytes and DEL as %XX. */
static void put_value(FILE *f, const char *field, const char *v)
{
	fprintf(f, "%s ", field);
	for (; v && *v; v++) {
		unsigned char c = (unsigned char)*v;

		if (c == '%' || c < 0x20 || c == 0x7f)
			fprintf(f, "%%%02X", c);
		else
			fputc(c, f);
	}
	fputc('\n', f);
}

static const char *action_word(enum dlp_scan_action a)
{
	return a == DLP_SCAN_BLOCK   ? "block"
	       : a == DLP_SCAN_AUDIT ? "audit"
				     : "allow";
}

int dlp_scan_write_info(int dirfd, const struct dlp_scan_info *in)
{
	FILE *f = NULL;
	int fd, rc = 0;

	fd = openat(dirfd, "info.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
		    0600);
	if (fd < 0)
		return -errno;
	f = fdopen(fd, "w");
	if (!f) {
		rc = -errno;
		close(fd);
		goto out;
	}
	fprintf(f, "occfs-quarantine 1\n");
	put_value(f, "backend", in->backend);
	put_value(f, "fsid", in->fsid);
	put_value(f, "path", in->path);
	if (in->key)
		put_value(f, "key", in->key);
	if (in->stage)
		put_value(f, "stage", in->stage);
	fprintf(f, "size %llu\n", (unsigned long long)in->size);
	fprintf(f, "time %lld\n", (long long)time(NULL));
	put_value(f, "action", action_word(in->r->action));
	put_value(f, "rule", in->r->rule);
	put_value(f, "detail", in->r->detail);
	if (fflush(f) || fsync(fileno(f)) < 0)
		rc = -errno;
	if (fclose(f) && !rc)
		rc = -errno;
	if (!rc && renameat(dirfd, "info.tmp", dirfd, "info") < 0)
		rc = -errno;
out:
	if (rc)
		unlinkat(dirfd, "info.tmp", 0);
	return rc;
}
