/*
 * s3b_stage_dlp.c - DLP on a stage before its upload, and the quarantine
 * of a stage DLP blocked.
 *
 * The scan covers the whole object as it will be in S3: every base block
 * not staged yet is fetched first, so a small change to a large file is
 * scanned with all its context (a secret made of old and new bytes is
 * found, and a change can never make the verdict depend on bytes the scan
 * did not see).  It costs a read of the object per flush of a changed
 * stage; the lazy fetch then also serves the upload.
 *
 * A blocked stage keeps its files: the data file and the manifest are
 * hard-linked into <staging>/quarantine/<id>/ ("data", "mf") with an
 * "info" file, and only then is the stage discarded, marked quarantined
 * (its data file is now the quarantine's, so reads, writes and truncation
 * through handles still open fail with EACCES) and its staging names
 * removed.  occfsctl quarantine release puts data and manifest back as a
 * new stage with a "<id>.released" marker; s3b_store_recover uploads such
 * a stage without scanning it again.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "s3b_stage_int.h"

/* The guest's path: the key after "<fsid>/" (the first such segment). */
static const char *guest_path(const struct s3b_stage *sg)
{
	size_t n = strlen(sg->fsid);
	const char *k = sg->key, *p = k;

	while ((p = strstr(p, sg->fsid))) {
		if ((p == k || p[-1] == '/') && p[n] == '/')
			return p + n;
		p++;
	}
	return k;
}

int s3b_dlp_scan(struct s3b_stage *sg)
{
	int ret;

	pthread_mutex_lock(&sg->lock);
	ret = s3b_stage_ensure(sg, 0, sg->size);
	pthread_mutex_unlock(&sg->lock);
	if (ret)
		return ret;
	dlp_scan_fd(sg->fsid, guest_path(sg), sg->fd, sg->size, &sg->dlp);
	return sg->dlp.action == DLP_SCAN_BLOCK ? -EACCES : 0;
}

/* Link the stage's files into a new entry; 0 or -errno. */
static int keep(struct s3b_stage *sg, const char *qid)
{
	struct dlp_scan_info in = {.backend = "s3",
				   .fsid = sg->fsid,
				   .path = guest_path(sg),
				   .key = sg->key,
				   .stage = sg->id,
				   .size = sg->size,
				   .r = &sg->dlp};
	int qfd = -1, efd = -1, ret = 0;
	char name[64];

	if (mkdirat(sg->st->dirfd, DLP_QUARANTINE_S3, 0700) < 0 &&
	    errno != EEXIST)
		return -errno;
	qfd = openat(sg->st->dirfd, DLP_QUARANTINE_S3,
		     O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (qfd < 0 || mkdirat(qfd, qid, 0700) < 0) {
		ret = -errno;
		goto out;
	}
	efd = openat(qfd, qid, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (efd < 0) {
		ret = -errno;
		goto out;
	}
	s3b_mf_name(name, sizeof(name), sg->id, ".data");
	if (linkat(sg->st->dirfd, name, efd, "data", 0) < 0) {
		ret = -errno;
		goto out;
	}
	s3b_mf_name(name, sizeof(name), sg->id, ".mf");
	if (linkat(sg->st->dirfd, name, efd, "mf", 0) < 0) {
		ret = -errno;
		goto out;
	}
	ret = dlp_scan_write_info(efd, &in);
	if (!ret && (fsync(efd) < 0 || fsync(qfd) < 0))
		ret = -errno;
out:
	if (ret && efd >= 0) {
		unlinkat(efd, "data", 0);
		unlinkat(efd, "mf", 0);
		unlinkat(qfd, qid, AT_REMOVEDIR);
	}
	if (efd >= 0)
		close(efd);
	if (qfd >= 0)
		close(qfd);
	return ret;
}

void s3b_dlp_quarantine(struct s3b_stage *sg)
{
	struct s3b_store *st = sg->st;
	char qid[48];
	int ret;

	ret = dlp_scan_new_id(qid, sizeof(qid));
	if (!ret)
		ret = keep(sg, qid);
	if (ret) {
		/* Nothing lost: the stage stays staged, and blocked again at
		 * every flush until an operator looks. */
		log_err("dlp: %s blocked but not kept in quarantine (%s); it "
			"stays staged",
			sg->key, strerror(-ret));
		sg->dlp.qid[0] = '\0';
		dlp_scan_blocked(sg->fsid, guest_path(sg), &sg->dlp);
		return;
	}
	snprintf(sg->dlp.qid, sizeof(sg->dlp.qid), "%s", qid);
	pthread_mutex_lock(&st->table_lock);
	pthread_mutex_lock(&sg->lock);
	sg->quarantined = true;
	sg->discarded = true;
	s3b_bits_clear_from(&sg->dirty, 0);
	if (sg->in_table)
		s3b_store_remove(st, sg);
	s3b_store_unlink(st, sg->id);
	pthread_mutex_unlock(&sg->lock);
	pthread_mutex_unlock(&st->table_lock);
	dlp_scan_blocked(sg->fsid, guest_path(sg), &sg->dlp);
}
