/*
 * s3b_stage.c - reads, writes and truncation of one staged object.
 *
 * The data file holds the object's bytes at their own offsets and is always
 * exactly as long as the object.  A block (S3B_BLOCK bytes) is "present"
 * when the file holds its bytes, "dirty" when they differ from the base.
 * Bytes below base_limit that are not present come from the base object,
 * fetched by ranged GET (with If-Match on the base ETag) the first time a
 * read or a partial write needs them; bytes at or past base_limit (the
 * smallest size the object had since its base) are the file's own, zeros
 * where nothing was written.
 *
 * Crash order: a block becomes dirty in the manifest before its bytes are
 * written; a shrink cuts the file before the manifest lowers base_limit; so
 * a manifest never under-states what the data file changed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "s3b_stage_int.h"

/* ---- block sets -------------------------------------------------------------
 */

bool s3b_bit(const struct s3b_bits *b, uint64_t i)
{
	return i / 64 < b->nw && (b->w[i / 64] >> (i % 64) & 1);
}

int s3b_bits_reserve(struct s3b_bits *b, uint64_t i)
{
	if (i / 64 >= b->nw) {
		size_t nw = b->nw ? b->nw : 16;
		uint64_t *w;

		while (nw <= i / 64)
			nw *= 2;
		w = realloc(b->w, nw * sizeof(*w));
		if (!w)
			return -ENOMEM;
		memset(w + b->nw, 0, (nw - b->nw) * sizeof(*w));
		b->w = w;
		b->nw = nw;
	}
	return 0;
}

int s3b_bit_set(struct s3b_bits *b, uint64_t i)
{
	int ret = s3b_bits_reserve(b, i);

	if (!ret)
		b->w[i / 64] |= 1ull << (i % 64);
	return ret;
}

void s3b_bit_clear(struct s3b_bits *b, uint64_t i)
{
	if (i / 64 < b->nw)
		b->w[i / 64] &= ~(1ull << (i % 64));
}

void s3b_bits_clear_from(struct s3b_bits *b, uint64_t i)
{
	for (; i / 64 < b->nw && i % 64; i++)
		s3b_bit_clear(b, i);
	if (i / 64 < b->nw)
		memset(b->w + i / 64, 0, (b->nw - i / 64) * sizeof(*b->w));
}

/* Any bit in [from, to)? */
bool s3b_bits_any(const struct s3b_bits *b, uint64_t from, uint64_t to)
{
	if (to > (uint64_t)b->nw * 64)
		to = (uint64_t)b->nw * 64;
	for (uint64_t i = from; i < to;) {
		if (i % 64 == 0 && to - i >= 64) {
			if (b->w[i / 64])
				return true;
			i += 64;
			continue;
		}
		if (s3b_bit(b, i))
			return true;
		i++;
	}
	return false;
}

void s3b_bits_free(struct s3b_bits *b)
{
	free(b->w);
	b->w = NULL;
	b->nw = 0;
}

/* ---- life
 * --------------------------------------------------------------------- */

struct s3b_stage *s3b_stage_alloc(struct s3b_store *st)
{
	struct s3b_stage *sg = calloc(1, sizeof(*sg));

	if (!sg)
		return NULL;
	sg->st = st;
	sg->fd = -1;
	pthread_mutex_init(&sg->lock, NULL);
	pthread_cond_init(&sg->cv, NULL);
	return sg;
}

void s3b_stage_free(struct s3b_stage *sg)
{
	if (!sg)
		return;
	if (sg->fd >= 0)
		close(sg->fd);
	free(sg->fsid);
	free(sg->key);
	s3b_bits_free(&sg->present);
	s3b_bits_free(&sg->dirty);
	s3b_bits_free(&sg->fetching);
	s3b_meta_free(sg->meta, sg->nmeta);
	pthread_mutex_destroy(&sg->lock);
	pthread_cond_destroy(&sg->cv);
	free(sg);
}

bool s3b_stage_dirty_locked(const struct s3b_stage *sg)
{
	return !sg->discarded &&
	       (!sg->etag[0] || sg->changed || sg->meta_dirty);
}

bool s3b_stage_dirty(struct s3b_stage *sg)
{
	bool d;

	pthread_mutex_lock(&sg->lock);
	d = s3b_stage_dirty_locked(sg);
	pthread_mutex_unlock(&sg->lock);
	return d;
}

void s3b_stage_note_writer(struct s3b_stage *sg, const void *who)
{
	pthread_mutex_lock(&sg->lock);
	if (!sg->writer)
		sg->writer = who;
	else if (sg->writer != who)
		sg->writers_many = true;
	pthread_mutex_unlock(&sg->lock);
}

bool s3b_stage_sole_writer(struct s3b_stage *sg, const void *who,
			   char base[S3_ETAG_MAX])
{
	bool sole;

	pthread_mutex_lock(&sg->lock);
	sole = sg->writer == who && !sg->writers_many;
	memcpy(base, sg->etag, S3_ETAG_MAX);
	pthread_mutex_unlock(&sg->lock);
	return sole;
}

uint64_t s3b_stage_size(struct s3b_stage *sg)
{
	uint64_t n;

	pthread_mutex_lock(&sg->lock);
	n = sg->size;
	pthread_mutex_unlock(&sg->lock);
	return n;
}

void s3b_stage_set_http(struct s3b_stage *sg, struct s3_http *http)
{
	pthread_mutex_lock(&sg->lock);
	sg->http = http;
	pthread_mutex_unlock(&sg->lock);
}

void s3b_stage_get_stats(struct s3b_stage *sg, struct s3b_stage_stats *out)
{
	pthread_mutex_lock(&sg->lock);
	*out = sg->stats;
	pthread_mutex_unlock(&sg->lock);
}

/* ---- lazy fetch
 * --------------------------------------------------------------- */

/* Lock held: the block needs fetching (base bytes not here yet). */
static bool need_fetch(const struct s3b_stage *sg, uint64_t b)
{
	return b * S3B_BLOCK < sg->base_limit && !s3b_bit(&sg->present, b);
}

/* Lock held, dropped during the GET: fetch blocks [b, e) (claimed). */
static int fetch_run(struct s3b_stage *sg, uint64_t b, uint64_t e)
{
	uint64_t off = b * S3B_BLOCK, end = e * S3B_BLOCK;
	struct s3_sink sink = {.fd = sg->fd, .fd_off = off};
	char etag[S3_ETAG_MAX], *key = NULL;
	struct s3_http *http = sg->http;
	size_t got = 0;
	int ret;

	if (end > sg->base_limit)
		end = sg->base_limit;
	for (uint64_t i = b; i < e; i++)
		s3b_bit_set(&sg->fetching, i); /* words exist: present grew */
	sg->nfetch++;
	for (int tries = 0; tries < 2; tries++) {
		snprintf(etag, sizeof(etag), "%s", sg->etag);
		free(key);
		key = strdup(sg->key);
		http = sg->http;
		pthread_mutex_unlock(&sg->lock);
		if (!key)
			ret = -ENOMEM;
		else if (!http)
			ret = -ENOTCONN;
		else
			ret = s3_http_get_object(http, key, off, end - off,
						 &sink, etag, &got, NULL);
		pthread_mutex_lock(&sg->lock);
		/* our own upload may have moved the base meanwhile */
		if (ret != -ESTALE || !strcmp(etag, sg->etag))
			break;
	}
	if (!ret && got != end - off)
		ret = -EIO;
	for (uint64_t i = b; i < e; i++) {
		s3b_bit_clear(&sg->fetching, i);
		if (!ret && s3b_bit_set(&sg->present, i))
			ret = -ENOMEM;
	}
	if (!ret) {
		sg->stats.fetches++;
		sg->stats.fetch_bytes += got;
	} else {
		log_warn("stage %s: fetch of [%llu, %llu) failed: %s", sg->key,
			 (unsigned long long)off, (unsigned long long)end,
			 strerror(-ret));
	}
	sg->nfetch--;
	pthread_cond_broadcast(&sg->cv);
	free(key);
	return ret;
}

/*
 * Lock held (dropped while fetching): make the base bytes of [from, to)
 * present.  Adjacent missing blocks go in one GET.
 */
int s3b_stage_ensure(struct s3b_stage *sg, uint64_t from, uint64_t to)
{
	for (;;) {
		uint64_t lim = to < sg->base_limit ? to : sg->base_limit;
		uint64_t b = from / S3B_BLOCK, last, e;
		int ret;

		if (from >= lim)
			return 0;
		last = (lim - 1) / S3B_BLOCK;
		while (b <= last && !need_fetch(sg, b))
			b++;
		if (b > last)
			return 0;
		if (s3b_bit(&sg->fetching, b)) {
			pthread_cond_wait(&sg->cv, &sg->lock);
			continue;
		}
		/*
		 * Grow the sets so fetch_run's bit updates cannot fail, and
		 * change no bit doing it: last may be another fetch's, and
		 * last + 1 a block written since (present, dirty), which a
		 * cleared bit would have fetched again over its new bytes.
		 */
		if (s3b_bits_reserve(&sg->fetching, last) ||
		    s3b_bits_reserve(&sg->present, last + 1))
			return -ENOMEM;
		for (e = b + 1; e <= last && need_fetch(sg, e) &&
				!s3b_bit(&sg->fetching, e);
		     e++)
			;
		ret = fetch_run(sg, b, e);
		if (ret)
			return ret;
	}
}

/* ---- data
 * ---------------------------------------------------------------------- */

int s3b_stage_read(struct s3b_stage *sg, void *buf, size_t len, uint64_t off,
		   size_t *got)
{
	uint64_t end;
	ssize_t n;
	int ret = 0;

	*got = 0;
	pthread_mutex_lock(&sg->lock);
	if (sg->quarantined) {
		ret = -EACCES; /* never read blocked content back */
		goto out;
	}
	if (off >= sg->size || !len)
		goto out;
	end = off + len < off || off + len > sg->size ? sg->size : off + len;
	ret = s3b_stage_ensure(sg, off, end);
	if (ret)
		goto out;
	if (end > sg->size) /* a truncate while we fetched */
		end = sg->size;
	for (size_t done = 0; off + done < end;) {
		n = pread(sg->fd, (char *)buf + done, end - off - done,
			  (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			ret = n < 0 ? -errno : -EIO;
			goto out;
		}
		done += (size_t)n;
	}
	*got = (size_t)(end > off ? end - off : 0);
out:
	pthread_mutex_unlock(&sg->lock);
	return ret;
}

/* Lock held: a block of [off, end) the write only partly covers and whose
 * other base bytes are not here yet; UINT64_MAX if none. */
static uint64_t write_needs(const struct s3b_stage *sg, uint64_t off,
			    uint64_t end)
{
	uint64_t ends[2] = {off / S3B_BLOCK, (end - 1) / S3B_BLOCK};

	for (int k = 0; k < 2; k++) {
		uint64_t b = ends[k], bs = b * S3B_BLOCK;
		uint64_t be = bs + S3B_BLOCK < sg->base_limit ? bs + S3B_BLOCK
							      : sg->base_limit;

		if (need_fetch(sg, b) && (off > bs || end < be))
			return b;
	}
	return UINT64_MAX;
}

/* Lock held: wait until no upload, rename or fetch touches [off, end). */
static int write_ready(struct s3b_stage *sg, uint64_t off, uint64_t end)
{
	for (;;) {
		uint64_t b;
		int ret;

		if (sg->busy) {
			pthread_cond_wait(&sg->cv, &sg->lock);
			continue;
		}
		if (sg->quarantined)
			return -EACCES; /* its data file is the quarantine's */
		if (s3b_bits_any(&sg->fetching, off / S3B_BLOCK,
				 (end - 1) / S3B_BLOCK + 1)) {
			pthread_cond_wait(&sg->cv, &sg->lock);
			continue;
		}
		b = write_needs(sg, off, end);
		if (b == UINT64_MAX)
			return 0;
		ret = s3b_stage_ensure(sg, b * S3B_BLOCK, (b + 1) * S3B_BLOCK);
		if (ret)
			return ret;
	}
}

int s3b_stage_write(struct s3b_stage *sg, const void *buf, size_t len,
		    uint64_t off)
{
	uint64_t end = off + len, fb, lb;
	bool newdirty = false;
	size_t done;
	int ret = 0;

	if (!len)
		return 0;
	if (end < off || end > (1ull << 53))
		return -EFBIG;
	pthread_mutex_lock(&sg->lock);
	ret = write_ready(sg, off, end);
	if (ret)
		goto out;
	fb = off / S3B_BLOCK;
	lb = (end - 1) / S3B_BLOCK;
	for (uint64_t b = fb; b <= lb; b++) {
		if (s3b_bit(&sg->dirty, b))
			continue;
		if (s3b_bit_set(&sg->dirty, b)) {
			ret = -ENOMEM;
			goto out;
		}
		newdirty = true;
	}
	/* the manifest names the blocks before their bytes change */
	if (newdirty) {
		ret = s3b_mf_write(sg, false);
		if (ret)
			goto out;
	}
	for (done = 0; done < len;) {
		ssize_t n = pwrite(sg->fd, (const char *)buf + done, len - done,
				   (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			ret = n < 0 ? -errno : -EIO;
			break;
		}
		done += (size_t)n;
	}
	/*
	 * Even a failed write may have changed bytes: its blocks stay dirty.
	 * Present are the blocks it wrote whole (write_ready fetched the
	 * partly covered ones before); a block it failed to fill stays
	 * absent, so its base bytes are fetched again rather than the data
	 * file's leftovers uploaded.  The size grows only by what was
	 * written (ENOSPC at an offset past the end writes nothing).
	 */
	for (uint64_t b = fb; b <= lb; b++) {
		uint64_t be = (b + 1) * S3B_BLOCK;

		if ((be < end ? be : end) > off + done)
			break;
		if (s3b_bit_set(&sg->present, b))
			ret = ret ? ret : -ENOMEM;
	}
	if (done && off + done > sg->size)
		sg->size = off + done;
	sg->changed = true;
	sg->landed[0] = '\0';
out:
	pthread_mutex_unlock(&sg->lock);
	return ret;
}

int s3b_stage_truncate(struct s3b_stage *sg, uint64_t size)
{
	int ret = 0;

	if (size > (1ull << 53))
		return -EFBIG;
	pthread_mutex_lock(&sg->lock);
	for (;;) {
		if (sg->busy || sg->nfetch) {
			pthread_cond_wait(&sg->cv, &sg->lock);
			continue;
		}
		if (sg->quarantined) {
			ret = -EACCES;
			goto out;
		}
		/* the block the new end cuts keeps its base bytes below it */
		if (size < sg->size && size % S3B_BLOCK &&
		    need_fetch(sg, size / S3B_BLOCK)) {
			ret = s3b_stage_ensure(sg, size, size + 1);
			if (ret)
				goto out;
			continue;
		}
		break;
	}
	if (size == sg->size)
		goto out;
	sg->landed[0] = '\0';
	if (ftruncate(sg->fd, (off_t)size) < 0) {
		ret = -errno;
		goto out;
	}
	if (size < sg->size) {
		uint64_t first_gone = (size + S3B_BLOCK - 1) / S3B_BLOCK;

		s3b_bits_clear_from(&sg->present, first_gone);
		s3b_bits_clear_from(&sg->dirty, first_gone);
		if (size < sg->base_limit)
			sg->base_limit = size;
		sg->size = size;
		sg->changed = true;
		/* after the cut: a kill in between leaves the short file */
		ret = s3b_mf_write(sg, false);
	} else {
		sg->size = size;
		sg->changed = true;
	}
out:
	pthread_mutex_unlock(&sg->lock);
	return ret;
}

/* ---- metadata, rename, discard
 * -------------------------------------------------- */

/* Lock held: wait for uploads and renames to finish, then claim. */
static void claim(struct s3b_stage *sg)
{
	while (sg->busy || sg->nfetch)
		pthread_cond_wait(&sg->cv, &sg->lock);
}

int s3b_stage_set_meta(struct s3b_stage *sg, const struct s3_kv *meta,
		       size_t nmeta)
{
	struct s3_kv *m = NULL;
	int ret;

	if (nmeta > S3_META_MAX)
		return -E2BIG;
	ret = s3b_meta_copy(meta, nmeta, &m);
	if (ret)
		return ret;
	pthread_mutex_lock(&sg->lock);
	claim(sg);
	s3b_meta_free(sg->meta, sg->nmeta);
	sg->meta = m;
	sg->nmeta = nmeta;
	sg->meta_dirty = true;
	sg->landed[0] = '\0';
	ret = s3b_mf_write(sg, false);
	pthread_mutex_unlock(&sg->lock);
	return ret;
}

/*
 * Lock held: wait for uploads and fetches, then mark the stage busy so the
 * lock can be dropped to take the table lock first (the lock order).
 */
static void claim_busy(struct s3b_stage *sg)
{
	claim(sg);
	sg->busy = true;
	pthread_mutex_unlock(&sg->lock);
	pthread_mutex_lock(&sg->st->table_lock);
	pthread_mutex_lock(&sg->lock);
}

static void release_busy(struct s3b_stage *sg)
{
	sg->busy = false;
	pthread_cond_broadcast(&sg->cv);
	pthread_mutex_unlock(&sg->lock);
	pthread_mutex_unlock(&sg->st->table_lock);
}

int s3b_stage_set_key(struct s3b_stage *sg, const char *key, const char *etag)
{
	int ret = 0;

	if (!key || !key[0] || strlen(key) >= S3_KEY_MAX ||
	    (etag && strlen(etag) >= S3_ETAG_MAX))
		return -EINVAL;
	pthread_mutex_lock(&sg->lock);
	claim_busy(sg);
	/* without an object at the new key, every base byte must be here */
	if ((!etag || !etag[0]) && sg->etag[0]) {
		for (uint64_t b = 0; b * S3B_BLOCK < sg->base_limit; b++)
			if (!s3b_bit(&sg->present, b)) {
				ret = -EINVAL;
				goto out;
			}
		sg->changed = true;
	}
	sg->landed[0] = '\0';
	s3b_store_rehash(sg->st, sg, sg->fsid, key);
	if (strcmp(sg->key, key)) {
		ret = -ENOMEM;
		goto out;
	}
	snprintf(sg->etag, sizeof(sg->etag), "%s", etag ? etag : "");
	ret = s3b_mf_write(sg, false);
out:
	release_busy(sg);
	return ret;
}

void s3b_stage_discard(struct s3b_stage *sg)
{
	struct s3b_store *st = sg->st;

	pthread_mutex_lock(&sg->lock);
	claim_busy(sg);
	sg->discarded = true;
	s3b_bits_clear_from(&sg->dirty, 0);
	/* a later s3b_stage_get of the key starts afresh */
	if (sg->in_table)
		s3b_store_remove(st, sg);
	s3b_store_unlink(st, sg->id);
	release_busy(sg);
}
