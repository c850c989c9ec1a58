/*
 * s3b_quota.c - usage of a filesystem_id of the s3 backend against the
 * quota of its policy entry.
 *
 * The broker is the only writer of a filesystem's prefix, so it can count
 * usage itself instead of asking S3: the first session opened with a
 * quota lists the prefix once (every key, no delimiter) and sums sizes and
 * keys, and from then on each change the backend makes is applied as it
 * happens.  The count lives in struct s3b_fs, shared by every session of
 * the filesystem_id, for as long as the backend runs.
 *
 * Bytes are the sizes of objects (symlink bodies included) and, while a
 * file is written, the size of its stage: writes are measured on the stage
 * before and after, under q_lock, so concurrent writers are counted
 * exactly.  Inodes are file objects and directory markers; directories
 * only implied by deeper keys are not counted.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "log.h"
#include "proto.h"
#include "s3b.h"

#define S3B_QUOTA_LIST_MAX 10000000u /* keys the first listing counts */

bool s3b_quota_on(const struct s3b_fs *fs)
{
	return __atomic_load_n(&fs->q_on, __ATOMIC_ACQUIRE);
}

/* List the whole prefix once; called with q_lock held. */
static int quota_scan(struct s3b_fs *fs)
{
	struct s3_list_page p;
	char *token = NULL;
	uint64_t bytes = 0, inodes = 0, seen = 0;
	int rc;

	do {
		rc = s3_http_list(fs->http, fs->root, NULL, token, 0, &p);
		free(token);
		token = NULL;
		if (rc)
			break;
		for (size_t i = 0; i < p.nentries; i++) {
			const char *k = p.entries[i].key;
			size_t l = strlen(k);

			if (!strcmp(k, fs->root))
				continue; /* the filesystem's own marker */
			inodes++;
			if (l && k[l - 1] != '/')
				bytes += p.entries[i].size;
		}
		seen += p.nentries;
		if (p.truncated && p.next_token && seen < S3B_QUOTA_LIST_MAX &&
		    !(token = strdup(p.next_token)))
			rc = -ENOMEM;
		s3_http_list_free(&p);
	} while (!rc && token);
	free(token);
	if (rc) {
		log_err("s3: %s: cannot list the prefix for the quota: %s",
			fs->fsid, strerror(-rc));
		return rc;
	}
	if (seen >= S3B_QUOTA_LIST_MAX)
		log_warn("s3: %s: the quota counts the first %u keys only",
			 fs->fsid, S3B_QUOTA_LIST_MAX);
	fs->ubytes = bytes;
	fs->uinodes = inodes;
	log_info("s3: %s: %llu bytes in %llu objects", fs->fsid,
		 (unsigned long long)bytes, (unsigned long long)inodes);
	return 0;
}

/* At session open (a worker): the first quota'd session counts. */
int s3b_quota_attach(struct backend_session *s, uint64_t bytes, uint64_t inodes)
{
	struct s3b_fs *fs = s->fs;
	int rc = 0;

	pthread_mutex_lock(&fs->q_lock);
	if (!fs->q_on) {
		rc = quota_scan(fs);
		if (!rc)
			__atomic_store_n(&fs->q_on, 1, __ATOMIC_RELEASE);
	}
	if (!rc) {
		__atomic_store_n(&fs->qbytes, bytes, __ATOMIC_RELAXED);
		__atomic_store_n(&fs->qinodes, inodes, __ATOMIC_RELAXED);
	}
	pthread_mutex_unlock(&fs->q_lock);
	return rc;
}

void s3b_quota_set(struct backend_session *s, uint64_t bytes, uint64_t inodes)
{
	struct s3b_fs *fs = s->fs;

	/* On the loop thread: atomic stores, no waiting for q_lock. */
	if (!s3b_quota_on(fs))
		return;
	__atomic_store_n(&fs->qbytes, bytes, __ATOMIC_RELAXED);
	__atomic_store_n(&fs->qinodes, inodes, __ATOMIC_RELAXED);
}

void s3b_quota_usage(struct s3b_fs *fs, uint64_t *bytes, uint64_t *inodes)
{
	pthread_mutex_lock(&fs->q_lock);
	*bytes = fs->ubytes;
	*inodes = fs->uinodes;
	pthread_mutex_unlock(&fs->q_lock);
}

int s3b_quota_begin(struct s3b_fs *fs, struct s3b_stage *sg, uint64_t *size0,
		    uint64_t *room)
{
	uint64_t qb;

	*room = UINT64_MAX;
	*size0 = 0;
	if (!s3b_quota_on(fs))
		return 0;
	pthread_mutex_lock(&fs->q_lock);
	*size0 = s3b_stage_size(sg);
	qb = __atomic_load_n(&fs->qbytes, __ATOMIC_RELAXED);
	if (qb)
		*room = fs->ubytes >= qb ? 0 : qb - fs->ubytes;
	return 1;
}

void s3b_quota_end(struct s3b_fs *fs, struct s3b_stage *sg, uint64_t size0,
		   int counting)
{
	uint64_t size;

	if (!counting)
		return;
	size = s3b_stage_size(sg);
	if (size >= size0)
		fs->ubytes += size - size0;
	else
		fs->ubytes -=
		    fs->ubytes > size0 - size ? size0 - size : fs->ubytes;
	pthread_mutex_unlock(&fs->q_lock);
}

int s3b_quota_take(struct s3b_fs *fs, uint64_t bytes)
{
	uint64_t qb, qi;
	int rc = 0;

	if (!s3b_quota_on(fs))
		return 0;
	qb = __atomic_load_n(&fs->qbytes, __ATOMIC_RELAXED);
	qi = __atomic_load_n(&fs->qinodes, __ATOMIC_RELAXED);
	pthread_mutex_lock(&fs->q_lock);
	if (qi && fs->uinodes >= qi)
		rc = -EDQUOT;
	else if (qb && bytes && fs->ubytes + bytes > qb)
		rc = -EDQUOT;
	else {
		fs->uinodes++;
		fs->ubytes += bytes;
	}
	pthread_mutex_unlock(&fs->q_lock);
	return rc;
}

void s3b_quota_give(struct s3b_fs *fs, uint64_t bytes, uint64_t inodes)
{
	if (!s3b_quota_on(fs))
		return;
	pthread_mutex_lock(&fs->q_lock);
	fs->ubytes -= fs->ubytes > bytes ? bytes : fs->ubytes;
	fs->uinodes -= fs->uinodes > inodes ? inodes : fs->uinodes;
	pthread_mutex_unlock(&fs->q_lock);
}

/* The quota as the filesystem's size; 1 when it applied. */
int s3b_quota_statfs(struct s3b_fs *fs, struct proto_msg *rep)
{
	uint64_t fr = rep->st.frsize ? rep->st.frsize : 4096, qb, qi;
	int rc = 0;

	if (!s3b_quota_on(fs))
		return 0;
	qb = __atomic_load_n(&fs->qbytes, __ATOMIC_RELAXED);
	qi = __atomic_load_n(&fs->qinodes, __ATOMIC_RELAXED);
	pthread_mutex_lock(&fs->q_lock);
	if (qb) {
		rep->st.blocks = qb / fr;
		rep->st.bfree = fs->ubytes >= qb ? 0 : (qb - fs->ubytes) / fr;
		rep->st.bavail = rep->st.bfree;
		rc = 1;
	}
	if (qi) {
		rep->st.files = qi;
		rep->st.ffree = fs->uinodes >= qi ? 0 : qi - fs->uinodes;
		rep->st.favail = rep->st.ffree;
		rc = 1;
	}
	pthread_mutex_unlock(&fs->q_lock);
	return rc;
}
