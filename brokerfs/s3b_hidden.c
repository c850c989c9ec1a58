/*
 * s3b_hidden.c - files unlinked while open, in the s3 backend.
 *
 * POSIX keeps an unlinked file readable and writable through the
 * descriptors still open on it until the last close.  An object has no
 * link count, so UNLINK of a node with open files moves its object to a
 * hidden key, <root>.occfs-unlinked/<random id> (a name under the reserved
 * S3B_RESERVED prefix: never listed, no guest name reaches it), server-side
 * (CopyObject, then DELETE of the name); a file being written takes its
 * stage along (s3b_stage_set_key) and is no longer uploaded.  The node
 * keeps the hidden key, so READ, WRITE, GETATTR (nlink 0) go on working;
 * the last RELEASE discards the stage and deletes the hidden object.
 *
 * Open files are counted per session: a file open only in another
 * session of the same filesystem is deleted at once, as before.  What a
 * crash leaves hidden is deleted when a filesystem is first used
 * (s3b_hidden_sweep), with the temporaries of an interrupted
 * RENAME_EXCHANGE.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "log.h"
#include "s3b.h"

#define HIDDEN_DIR S3B_RESERVED "unlinked/"

/* The node at path with open files, one reference taken; NULL if none. */
static struct s3b_node *open_node(struct backend_session *s, const char *path)
{
	struct s3b_node *found = NULL, *n;

	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->nbuckets && !found; i++)
		for (n = s->by_id[i]; n; n = n->id_next)
			if (n->opens && n->path && !strcmp(n->path, path)) {
				n->refs++;
				found = n;
				break;
			}
	pthread_mutex_unlock(&s->lock);
	return found;
}

static int hidden_key(struct backend_session *s, char *hk)
{
	uint64_t r;

	if (getrandom(&r, sizeof(r), 0) != sizeof(r))
		r = s3b_clock_ms() * 0x9e3779b97f4a7c15ull ^ (uintptr_t)hk;
	if (snprintf(hk, S3_KEY_MAX + 1, "%s" HIDDEN_DIR "%016llx", s->fs->root,
		     (unsigned long long)r) > S3_KEY_MAX)
		return -ENAMETOOLONG;
	return 0;
}

int s3b_hidden_unlink(struct backend_session *s, const char *path,
		      const char *key)
{
	char hk[S3_KEY_MAX + 1], etag[S3_ETAG_MAX] = "";
	struct s3b_node *n = open_node(s, path);
	struct s3b_stage *sg = NULL;
	struct s3b_info i;
	bool in_s3 = true;
	int rc;

	if (!n)
		return 0;
	rc = hidden_key(s, hk);
	if (rc)
		goto out;
	if (s3b_cache_get(s->b, key, NULL, &i) == 1) {
		in_s3 = i.etag[0] != '\0'; /* "": only staged so far */
		s3b_info_clear(&i);
	}
	sg = s3b_node_stage_pin(s, n);
	if (in_s3) {
		struct s3_copy_opts o = {.directive = S3_META_COPY};

		rc = s3_http_copy_object(s->fs->http, key, hk, &o, etag);
		if (rc)
			goto out;
		s3_etag_quote(etag);
	}
	if (sg) {
		rc = s3b_stage_set_key(sg, hk, in_s3 ? etag : NULL);
		if (rc) {
			if (in_s3)
				s3_http_delete_object(s->fs->http, hk);
			goto out;
		}
	}
	if (in_s3) {
		rc = s3_http_delete_object(s->fs->http, key);
		if (rc && rc != -ENOENT)
			log_warn("s3: fsid %s: unlink: %s left behind: %s",
				 s->fs->fsid, key, strerror(-rc));
	}
	s3b_cache_move(s->b, key, hk, etag[0] ? etag : NULL);
	pthread_mutex_lock(&s->lock);
	free(n->hidden);
	n->hidden = strdup(hk);
	pthread_mutex_unlock(&s->lock);
	s3b_node_detach(s, path);
	rc = 1;
out:
	if (sg)
		s3b_node_stage_unpin(s, n);
	s3b_node_put(s, n);
	return rc;
}

void s3b_hidden_release(struct backend_session *s, struct s3b_node *n)
{
	struct s3b_stage *sg = s3b_node_stage_pin(s, n);
	struct s3b_info i;
	bool fenced;
	char *hk;
	int rc;

	if (sg) {
		s3b_stage_discard(sg);
		s3b_node_stage_unpin(s, n);
	}
	pthread_mutex_lock(&s->lock);
	hk = n->hidden;
	n->hidden = NULL;
	pthread_mutex_unlock(&s->lock);
	if (!hk)
		return;
	/* an fchmod of the open file may have a copy of hk in flight */
	fenced = !s3b_cache_fence(s->b, hk);
	if (s3b_cache_get(s->b, hk, NULL, &i) == 1) {
		s3b_xside_drop(s, i.m.xside);
		s3b_info_clear(&i);
	}
	rc = s3_http_delete_object(s->fs->http, hk);
	if (rc && rc != -ENOENT)
		log_warn("s3: fsid %s: %s not deleted: %s (swept at the next "
			 "start)",
			 s->fs->fsid, hk, strerror(-rc));
	s3b_cache_drop(s->b, hk);
	if (fenced)
		s3b_cache_unfence(s->b, hk);
	free(hk);
}

/* Delete every key below root + dir. */
static void sweep_dir(struct s3b_fs *fs, const char *dir)
{
	char prefix[S3_KEY_MAX + 1];
	struct s3_list_page p;
	unsigned n = 0;

	if (snprintf(prefix, sizeof(prefix), "%s%s", fs->root, dir) >=
	    (int)sizeof(prefix))
		return;
	/* Each round deletes what one page lists; bounded. */
	for (int round = 0; round < 64; round++) {
		if (s3_http_list(fs->http, prefix, NULL, NULL, 0, &p))
			return;
		for (size_t i = 0; i < p.nentries; i++)
			if (!s3_http_delete_object(fs->http, p.entries[i].key))
				n++;
		bool more = p.nentries && p.truncated;

		s3_http_list_free(&p);
		if (!more)
			break;
	}
	if (n)
		log_info("s3: fsid %s: %u leftover objects under %s deleted",
			 fs->fsid, n, dir);
}

void s3b_hidden_sweep(struct s3b_fs *fs)
{
	sweep_dir(fs, HIDDEN_DIR);
	sweep_dir(fs, S3B_RESERVED "tmp/");
}
