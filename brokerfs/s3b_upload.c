/*
 * s3b_upload.c - sending a stage to S3: one PutObject for small objects,
 * otherwise a multipart upload whose parts run in parallel on the store's
 * fixed pool of upload threads.
 *
 * Parts that hold only clean blocks of an unchanged base are copied from
 * the base server-side (UploadPartCopy with a copy-source If-Match); the
 * others are read from the data file into buffers taken from the memory
 * budget, so a burst of flushes waits for memory instead of growing the
 * broker.  Every upload is conditional on the base: PUT with If-Match (or
 * If-None-Match: * for a new object); a multipart upload by its copy-part
 * preconditions and a HEAD of the key just before completion.  Any failure
 * aborts the multipart upload; the data stays staged.
 *
 * DLP (s3b_stage_dlp.c) scans a changed stage first: in mode strict, and
 * for every single PUT, before any byte is signed and sent; in mode
 * visible the parts of a multipart upload go up while the scan runs and
 * the upload is completed only after a pass, aborted otherwise.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "s3b_stage_int.h"

/* A multipart upload in progress; counters under the store's pool_lock. */
struct s3b_mpu {
	struct s3b_stage *sg;
	struct s3_http *http;
	const char *key, *etag;
	char upload_id[S3_UPLOAD_ID_MAX];
	size_t pending;
	int err;
	uint64_t puts, copies, bytes;
};

struct s3b_job {
	struct s3b_job *next;
	struct s3b_mpu *mpu;
	int number;
	uint64_t off, len;
	bool copy;
	char etag[S3_ETAG_MAX];
};

uint64_t s3b_part_size(uint64_t size, uint64_t min_part)
{
	uint64_t need = (size + S3B_MAX_PARTS - 1) / S3B_MAX_PARTS;

	need = (need + S3B_MiB - 1) / S3B_MiB * S3B_MiB;
	return need > min_part ? need : min_part;
}

/* ---- the pool
 * ------------------------------------------------------------------ */

static int part_put(struct s3b_job *j)
{
	struct s3b_mpu *m = j->mpu;
	struct s3b_stage *sg = m->sg;
	struct s3b_store *st = sg->st;
	char *buf = NULL;
	int ret;

	pthread_mutex_lock(&sg->lock);
	ret = s3b_stage_ensure(sg, j->off, j->off + j->len);
	pthread_mutex_unlock(&sg->lock);
	if (ret)
		return ret;
	s3b_budget_take(st, j->len);
	buf = malloc(j->len);
	if (!buf) {
		ret = -ENOMEM;
		goto out;
	}
	for (uint64_t done = 0; done < j->len;) {
		ssize_t n = pread(sg->fd, buf + done, j->len - done,
				  (off_t)(j->off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			ret = n < 0 ? -errno : -EIO;
			goto out;
		}
		done += (uint64_t)n;
	}
	struct s3_body body = {.buf = buf, .len = j->len};
	ret = s3_http_mpu_put_part(m->http, m->key, m->upload_id, j->number,
				   &body, j->etag);
out:
	free(buf);
	s3b_budget_give(st, j->len);
	return ret;
}

static void *pool_main(void *arg)
{
	struct s3b_store *st = arg;

	pthread_mutex_lock(&st->pool_lock);
	for (;;) {
		struct s3b_job *j = st->jobs;
		struct s3b_mpu *m;
		int ret;

		if (!j) {
			if (st->stopping)
				break;
			pthread_cond_wait(&st->pool_cv, &st->pool_lock);
			continue;
		}
		st->jobs = j->next;
		if (!st->jobs)
			st->jobs_tail = NULL;
		m = j->mpu;
		/* after a failure or the shutdown deadline, send nothing more
		 */
		bool skip = m->err || st->cancel;
		pthread_mutex_unlock(&st->pool_lock);
		if (skip)
			ret = -ECANCELED;
		else if (j->copy)
			ret = s3_http_mpu_copy_part(
			    m->http, m->key, m->upload_id, j->number, m->key,
			    j->off, j->len, m->etag, j->etag);
		else
			ret = part_put(j);
		pthread_mutex_lock(&st->pool_lock);
		if (ret && !m->err)
			m->err = ret;
		if (!ret && j->copy)
			m->copies++;
		else if (!ret) {
			m->puts++;
			m->bytes += j->len;
		}
		m->pending--;
		pthread_cond_broadcast(&st->done_cv);
	}
	pthread_mutex_unlock(&st->pool_lock);
	return NULL;
}

int s3b_pool_start(struct s3b_store *st)
{
	st->threads = calloc(st->cfg.upload_threads, sizeof(*st->threads));
	if (!st->threads)
		return -ENOMEM;
	for (unsigned i = 0; i < st->cfg.upload_threads; i++) {
		int e = pthread_create(&st->threads[i], NULL, pool_main, st);
		if (e) {
			s3b_pool_stop(st);
			return -e;
		}
		st->nthreads++;
	}
	return 0;
}

void s3b_pool_stop(struct s3b_store *st)
{
	pthread_mutex_lock(&st->pool_lock);
	st->stopping = true;
	st->cancel = true;
	while (st->flushers)
		pthread_cond_wait(&st->done_cv, &st->pool_lock);
	pthread_cond_broadcast(&st->pool_cv);
	pthread_mutex_unlock(&st->pool_lock);
	for (unsigned i = 0; i < st->nthreads; i++)
		pthread_join(st->threads[i], NULL);
	st->nthreads = 0;
	free(st->threads);
	st->threads = NULL;
}

/* ---- uploads
 * ------------------------------------------------------------------- */

/*
 * The upload just failed: if S3 may have applied it, remember the ETag
 * the object then has, so the next flush finds out before uploading again
 * (a conditional upload would otherwise see our own object as a second
 * writer's).
 */
static void note_ambiguous(struct s3b_stage *sg)
{
	const struct s3_error *e = s3_http_last_error();

	if (!e->ambiguous || !e->sent_etag[0])
		return;
	pthread_mutex_lock(&sg->lock);
	snprintf(sg->landed, sizeof(sg->landed), "%s", e->sent_etag);
	pthread_mutex_unlock(&sg->lock);
	log_info("stage %s: the failed upload may have landed as %s", sg->key,
		 e->sent_etag);
}

/* Busy: did the ambiguous upload land?  1 (etag set), 0 no, -errno. */
static int landed_check(struct s3b_stage *sg, struct s3_http *http,
			char etag[S3_ETAG_MAX])
{
	struct s3_obj_info *in = malloc(sizeof(*in));
	int ret;

	if (!in)
		return -ENOMEM;
	ret = s3_http_head_object(http, sg->key, in);
	if (!ret && s3_etag_eq(in->etag, sg->landed)) {
		log_info("stage %s: the earlier upload landed (%s)", sg->key,
			 in->etag);
		snprintf(etag, S3_ETAG_MAX, "%s", in->etag);
		ret = 1;
	} else if (!ret || ret == -ENOENT) {
		ret = 0; /* it did not: upload as usual */
	}
	free(in);
	if (ret >= 0) {
		pthread_mutex_lock(&sg->lock);
		sg->landed[0] = '\0';
		pthread_mutex_unlock(&sg->lock);
	}
	return ret;
}

/* The key still holds the base (or nothing, for a new object)? */
static int base_check(struct s3_http *http, const char *key, const char *etag)
{
	struct s3_obj_info *in = malloc(sizeof(*in));
	int ret;

	if (!in)
		return -ENOMEM;
	ret = s3_http_head_object(http, key, in);
	if (!etag[0])
		ret = ret == -ENOENT ? 0 : ret ? ret : -ESTALE;
	else if (!ret && !s3_etag_eq(in->etag, etag))
		ret = -ESTALE;
	else if (ret == -ENOENT)
		ret = -ESTALE;
	free(in);
	return ret;
}

static int upload_single(struct s3b_stage *sg, struct s3_http *http,
			 const struct s3_put_opts *po, char etag[S3_ETAG_MAX])
{
	struct s3_body body = {.fd = sg->fd, .off = 0, .len = sg->size};
	int ret;

	pthread_mutex_lock(&sg->lock);
	ret = s3b_stage_ensure(sg, 0, sg->size);
	pthread_mutex_unlock(&sg->lock);
	if (ret)
		return ret;
	ret = s3_http_put_object(http, sg->key, &body, po, etag);
	if (ret)
		note_ambiguous(sg);
	if (!ret) {
		pthread_mutex_lock(&sg->lock);
		sg->stats.puts++;
		sg->stats.upload_bytes += sg->size;
		pthread_mutex_unlock(&sg->lock);
	}
	return ret;
}

/*
 * Only the headers changed (a file opened for writing, not written, then
 * chmod, chown or utimes): one CopyObject onto itself rewrites them, and
 * the bytes never leave the server, where an upload would first fetch the
 * whole object into the stage and send it back.  The source's ETag is the
 * precondition, as for any upload.
 */
static int upload_headers(struct s3b_stage *sg, struct s3_http *http,
			  const struct s3_put_opts *po, char etag[S3_ETAG_MAX])
{
	struct s3_copy_opts o = {
	    .directive = S3_META_REPLACE,
	    .meta = po->meta,
	    .nmeta = po->nmeta,
	    .src_if_match = sg->etag,
	};
	int ret = s3_http_copy_object(http, sg->key, sg->key, &o, etag);

	if (ret) {
		note_ambiguous(sg);
		return ret;
	}
	s3_etag_quote(etag);
	pthread_mutex_lock(&sg->lock);
	sg->stats.header_copies++;
	pthread_mutex_unlock(&sg->lock);
	return 0;
}

/*
 * Queue the parts and wait for all of them.  With scan (DLP mode
 * visible) the parts go up while this thread scans the stage; a block
 * stops the parts not started yet and fails the upload with EACCES, so
 * it is aborted and the object never appears.
 */
static void run_parts(struct s3b_store *st, struct s3b_mpu *m,
		      struct s3b_job *jobs, size_t n, bool scan)
{
	pthread_mutex_lock(&st->pool_lock);
	for (size_t i = 0; i < n; i++) {
		jobs[i].next = NULL;
		if (st->jobs_tail)
			st->jobs_tail->next = &jobs[i];
		else
			st->jobs = &jobs[i];
		st->jobs_tail = &jobs[i];
	}
	m->pending = n;
	pthread_cond_broadcast(&st->pool_cv);
	if (scan) {
		pthread_mutex_unlock(&st->pool_lock);
		int ret = s3b_dlp_scan(m->sg);
		pthread_mutex_lock(&st->pool_lock);
		if (ret)
			m->err = ret;
	}
	while (m->pending)
		pthread_cond_wait(&st->done_cv, &st->pool_lock);
	pthread_mutex_unlock(&st->pool_lock);
}

static int upload_multi(struct s3b_stage *sg, struct s3_http *http,
			const struct s3_put_opts *po, char etag[S3_ETAG_MAX],
			bool scan)
{
	struct s3b_store *st = sg->st;
	uint64_t psz = s3b_part_size(sg->size, st->cfg.min_part);
	size_t n = (size_t)((sg->size + psz - 1) / psz);
	struct s3b_mpu m = {
	    .sg = sg, .http = http, .key = sg->key, .etag = sg->etag};
	struct s3b_job *jobs = NULL;
	struct s3_part *parts = NULL;
	bool created = false;
	int ret;

	if (n > S3B_MAX_PARTS)
		return -EFBIG;
	jobs = calloc(n, sizeof(*jobs));
	parts = calloc(n, sizeof(*parts));
	if (!jobs || !parts) {
		ret = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		struct s3b_job *j = &jobs[i];
		j->mpu = &m;
		j->number = (int)i + 1;
		j->off = i * psz;
		j->len = sg->size - j->off < psz ? sg->size - j->off : psz;
		j->copy = sg->etag[0] && j->off + j->len <= sg->base_limit &&
			  !s3b_bits_any(&sg->dirty, j->off / S3B_BLOCK,
					(j->off + j->len - 1) / S3B_BLOCK + 1);
	}
	/* fail fast on a second writer before sending anything */
	ret = base_check(http, sg->key, sg->etag);
	if (ret)
		goto out;
	ret = s3_http_mpu_create(http, sg->key, po, m.upload_id);
	if (ret)
		goto out;
	created = true;
	run_parts(st, &m, jobs, n, scan);
	ret = m.err;
	if (ret)
		goto out;
	/* S3 has no If-Match on completion (radosgw 16): check just before */
	ret = base_check(http, sg->key, sg->etag);
	if (ret)
		goto out;
	for (size_t i = 0; i < n; i++) {
		parts[i].number = jobs[i].number;
		parts[i].etag = jobs[i].etag;
	}
	ret = s3_http_mpu_complete(http, sg->key, m.upload_id, parts, n, etag);
	if (!ret)
		created = false;
	else
		note_ambiguous(sg); /* before the abort replaces last_error */
out:
	if (created && s3_http_mpu_abort(http, sg->key, m.upload_id))
		log_warn("stage %s: abort of upload %s failed", sg->key,
			 m.upload_id);
	pthread_mutex_lock(&sg->lock);
	sg->stats.part_puts += m.puts;
	sg->stats.part_copies += m.copies;
	sg->stats.upload_bytes += m.bytes;
	if (!ret)
		sg->stats.multiparts++;
	pthread_mutex_unlock(&sg->lock);
	free(jobs);
	free(parts);
	return ret;
}

/*
 * Busy set by the caller: key, etag, size, base_limit, dirty and meta stay
 * as they are until it clears it.
 */
int s3b_upload(struct s3b_stage *sg, char etag[S3_ETAG_MAX])
{
	struct s3_put_opts po = {
	    .meta = sg->meta,
	    .nmeta = sg->nmeta,
	    .if_match = sg->etag[0] ? sg->etag : NULL,
	    .if_none_match = !sg->etag[0],
	    /*
	     * Stored with the object where S3 supports it; radosgw 16 accepts
	     * and ignores the header, so there the verified checksum is the
	     * signed x-amz-content-sha256 every request carries.
	     */
	    .checksum =
		sg->st->cfg.rgw_quirks ? S3_CHECKSUM_NONE : S3_CHECKSUM_SHA256,
	};
	bool multi = sg->size > sg->st->cfg.multipart_above, visible;
	bool scan = sg->changed && !sg->dlp_skip && dlp_scan_active(&visible);
	struct s3_http *http;
	int ret;

	memset(&sg->dlp, 0, sizeof(sg->dlp));
	pthread_mutex_lock(&sg->lock);
	http = sg->http;
	pthread_mutex_unlock(&sg->lock);
	if (!http)
		return -ENOTCONN;
	if (sg->landed[0]) {
		ret = landed_check(sg, http, etag);
		if (ret)
			return ret < 0 ? ret : 0;
	}
	/* DLP strict, and any single PUT: nothing leaves before a pass. */
	if (scan && (!visible || !multi)) {
		ret = s3b_dlp_scan(sg);
		if (ret)
			return ret;
	}
	/* One CopyObject goes up to 5 GiB. */
	if (sg->etag[0] && !sg->changed && sg->size == sg->base_size &&
	    sg->size <= S3B_COPY_MAX)
		return upload_headers(sg, http, &po, etag);
	if (!multi)
		return upload_single(sg, http, &po, etag);
	return upload_multi(sg, http, &po, etag, scan && visible);
}

/* Lock held: the upload went through; the object is the new base. */
static void flushed(struct s3b_stage *sg, const char *etag)
{
	snprintf(sg->etag, sizeof(sg->etag), "%s", etag);
	sg->base_size = sg->base_limit = sg->size;
	s3b_bits_clear_from(&sg->dirty, 0);
	sg->changed = false;
	sg->meta_dirty = false;
	sg->landed[0] = '\0';
	sg->stats.uploads++;
	/* failing here only leaves a dirty-looking manifest: re-upload */
	if (s3b_mf_write(sg, false))
		log_warn("stage %s: manifest not updated after upload",
			 sg->key);
}

/*
 * Lock held: the next background upload waits, twice as long each time.
 * A second writer (ESTALE) or a DLP refusal does not heal by waiting: no
 * background upload then, the guest's next flush or a restart decides.
 */
static void retry_later(struct s3b_stage *sg, int ret)
{
	uint64_t wait = sg->st->cfg.retry_ms ? sg->st->cfg.retry_ms : 1000;

	if (ret == -ESTALE || ret == -EACCES) {
		sg->fails++;
		sg->retry_at = UINT64_MAX;
		return;
	}

	for (unsigned i = 0; i < sg->fails && wait < S3B_RETRY_MAX_MS; i++)
		wait *= 2;
	if (wait > S3B_RETRY_MAX_MS)
		wait = S3B_RETRY_MAX_MS;
	sg->fails++;
	sg->retry_at = s3b_now_ms() + wait;
}

int s3b_stage_flush(struct s3b_stage *sg, char etag[S3_ETAG_MAX])
{
	char newtag[S3_ETAG_MAX] = "";
	int ret = 0;

	pthread_mutex_lock(&sg->lock);
	while (sg->busy)
		pthread_cond_wait(&sg->cv, &sg->lock);
	if (!s3b_stage_dirty_locked(sg))
		goto out;
	/*
	 * No fsync: the guest is acknowledged only once S3 has the bytes, and
	 * what a broker restart needs (the data file, the manifest replaced
	 * by rename) is in the page cache, which a process crash keeps. See
	 * doc/staging.md, "Crash order".
	 */
	ret = s3b_mf_write(sg, false);
	if (ret)
		goto out;
	sg->busy = true;
	pthread_mutex_unlock(&sg->lock);
	ret = s3b_upload(sg, newtag);
	pthread_mutex_lock(&sg->lock);
	sg->busy = false;
	pthread_cond_broadcast(&sg->cv);
	if (!ret && !newtag[0])
		ret = -EIO; /* no ETag: we could not detect the next writer */
	if (ret == -EACCES && sg->dlp.action == DLP_SCAN_BLOCK) {
		/* busy keeps writers out while the files move */
		sg->busy = true;
		pthread_mutex_unlock(&sg->lock);
		s3b_dlp_quarantine(sg);
		pthread_mutex_lock(&sg->lock);
		sg->busy = false;
		pthread_cond_broadcast(&sg->cv);
		goto out;
	}
	if (ret) {
		const struct s3_error *e = s3_http_last_error();

		if (e && e->status)
			log_warn("stage %s: upload failed: %s (HTTP %ld %s)",
				 sg->key, strerror(-ret), e->status, e->code);
		else
			log_warn("stage %s: upload failed: %s", sg->key,
				 strerror(-ret));
		retry_later(sg, ret);
		goto out;
	}
	sg->fails = 0;
	sg->retry_at = 0;
	flushed(sg, newtag);
out:
	if (etag)
		snprintf(etag, S3_ETAG_MAX, "%s", ret ? "" : sg->etag);
	pthread_mutex_unlock(&sg->lock);
	return ret;
}
