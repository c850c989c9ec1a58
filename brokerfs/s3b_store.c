/*
 * s3b_store.c - the staging directory, its table of stages and the memory
 * budget.
 *
 * One store per broker.  The directory holds, per stage, a data file
 * (<id>.data, the object's bytes at their offsets, holes where nothing is
 * staged) and a manifest (<id>.mf, see s3b_stage_mf.c).  The table finds a
 * stage by filesystem and key; a stage stays in it while it has references
 * or is dirty, so staged data that failed to upload is retried by the next
 * flush of that key, by s3b_store_flush_all or by recovery after a restart.
 *
 * The files of a clean stage that goes away are kept (up to S3B_SPARES
 * pairs) in spare/ for the next new stage, which renames them to its id:
 * on ext4 creating and freeing two inodes per small file cost more of the
 * broker's time than anything else it does for that file but the PUT.
 * Recovery never looks into spare/; a start empties it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "s3b_stage_int.h"

uint64_t s3b_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Create the directory if missing; refuse one that others could change. */
static int store_dir(const char *dir)
{
	struct stat sb;
	int fd;

	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &sb) < 0 || sb.st_uid != geteuid() ||
	    (sb.st_mode & 022)) {
		log_err("staging directory %s: must be owned by uid %u and "
			"not group or world writable",
			dir, (unsigned)geteuid());
		close(fd);
		return -EPERM;
	}
	/* One broker per directory: two would upload each other's stages. */
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno == EWOULDBLOCK ? -EBUSY : -errno;
		log_err("staging directory %s: in use by another process", dir);
		close(fd);
		return e;
	}
	return fd;
}

/* spare/, emptied of what a previous run left; -1 if it cannot be had. */
static int spare_dir(int dirfd)
{
	struct dirent *de;
	DIR *d;
	int fd;

	if (mkdirat(dirfd, "spare", 0700) < 0 && errno != EEXIST)
		return -1;
	fd = openat(dirfd, "spare",
		    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -1;
	d = fdopendir(dup(fd));
	if (!d)
		goto fail;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.' && unlinkat(fd, de->d_name, 0) < 0) {
			closedir(d);
			goto fail;
		}
	closedir(d);
	return fd;
fail:
	log_warn("staging: spare/ unusable (%s): new stages create files",
		 strerror(errno));
	close(fd);
	return -1;
}

static void spare_name(char *out, size_t n, unsigned k, const char *sfx)
{
	snprintf(out, n, "%u%s", k, sfx);
}

/* Drop a spare pair (store close, or a pair that failed to move). */
static void spare_drop(struct s3b_store *st, const struct s3b_spare *sp)
{
	char name[32];

	spare_name(name, sizeof(name), sp->n, ".data");
	unlinkat(st->sparefd, name, 0);
	spare_name(name, sizeof(name), sp->n, ".mf");
	unlinkat(st->sparefd, name, 0);
	close(sp->fd);
}

/*
 * A clean stage with no references goes away: its manifest first (the
 * stage is then gone for recovery), then its data file move to spare/,
 * emptied.  When there is no room, or the stage is discarded (its files
 * unlinked, or hard-linked into the quarantine), they are unlinked.
 */
void s3b_store_retire(struct s3b_store *st, struct s3b_stage *sg)
{
	struct s3b_spare sp = {.fd = sg->fd, .mf_len = sg->mf_flen};
	char from[64], to[32];
	bool room;

	pthread_mutex_lock(&st->spare_lock);
	room = st->sparefd >= 0 && st->nspares < S3B_SPARES;
	sp.n = st->spare_seq++;
	pthread_mutex_unlock(&st->spare_lock);
	if (!room || sg->discarded || sg->quarantined || sg->fd < 0 ||
	    !sg->mf_flen || sg->mf_flen > S3B_MF_PAGE) {
		s3b_store_unlink(st, sg->id);
		return;
	}
	s3b_mf_name(from, sizeof(from), sg->id, ".mf");
	spare_name(to, sizeof(to), sp.n, ".mf");
	if (renameat(st->dirfd, from, st->sparefd, to) < 0) {
		s3b_store_unlink(st, sg->id);
		return;
	}
	s3b_mf_name(from, sizeof(from), sg->id, ".data");
	spare_name(to, sizeof(to), sp.n, ".data");
	if (ftruncate(sg->fd, 0) < 0 ||
	    renameat(st->dirfd, from, st->sparefd, to) < 0) {
		s3b_store_unlink(st, sg->id);
		spare_name(to, sizeof(to), sp.n, ".mf");
		unlinkat(st->sparefd, to, 0);
		return;
	}
	s3b_mf_name(from, sizeof(from), sg->id, ".released");
	unlinkat(st->dirfd, from, 0);
	pthread_mutex_lock(&st->spare_lock);
	room = st->nspares < S3B_SPARES;
	if (room)
		st->spares[st->nspares++] = sp;
	pthread_mutex_unlock(&st->spare_lock);
	if (!room)
		spare_drop(st, &sp); /* filled meanwhile */
	sg->fd = -1;		     /* the spare's, or closed */
}

/*
 * Give a new stage (id set, no files yet) a spare pair: its data file
 * first, then its manifest written in place and renamed (the stage
 * exists for recovery only then).  -ENOENT when there is none.
 */
static int spare_take(struct s3b_store *st, struct s3b_stage *sg)
{
	struct s3b_spare sp;
	char from[32], to[64];
	int ret;

	pthread_mutex_lock(&st->spare_lock);
	if (!st->nspares) {
		pthread_mutex_unlock(&st->spare_lock);
		return -ENOENT;
	}
	sp = st->spares[--st->nspares];
	pthread_mutex_unlock(&st->spare_lock);
	spare_name(from, sizeof(from), sp.n, ".data");
	s3b_mf_name(to, sizeof(to), sg->id, ".data");
	if (renameat2(st->sparefd, from, st->dirfd, to, RENAME_NOREPLACE) < 0) {
		ret = -errno;
		spare_drop(st, &sp);
		return ret;
	}
	sg->fd = sp.fd;
	ret = sg->size && ftruncate(sg->fd, (off_t)sg->size) < 0 ? -errno : 0;
	spare_name(from, sizeof(from), sp.n, ".mf");
	if (!ret)
		ret = s3b_mf_adopt(sg, st->sparefd, from, sp.mf_len);
	if (ret)
		unlinkat(st->sparefd, from,
			 0); /* the caller unlinks the rest */
	return ret;
}

int s3b_store_open(const struct s3b_store_config *cfg, struct s3b_store **out)
{
	struct s3b_store *st;
	int ret;

	*out = NULL;
	if (!cfg || !cfg->dir)
		return -EINVAL;
	if (cfg->min_part && cfg->min_part < 5 * S3B_MiB)
		return -EINVAL;
	st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	st->cfg = *cfg;
	st->cfg.dir = NULL; /* not kept: the caller's string */
	if (!st->cfg.upload_threads)
		st->cfg.upload_threads = 4;
	if (!st->cfg.mem_budget)
		st->cfg.mem_budget = 256 * S3B_MiB;
	if (!st->cfg.min_part)
		st->cfg.min_part = 8 * S3B_MiB;
	if (!st->cfg.multipart_above)
		st->cfg.multipart_above = 2 * st->cfg.min_part;
	pthread_mutex_init(&st->table_lock, NULL);
	pthread_mutex_init(&st->budget_lock, NULL);
	pthread_cond_init(&st->budget_cv, NULL);
	pthread_mutex_init(&st->retry_lock, NULL);
	pthread_cond_init(&st->retry_cv, NULL);
	pthread_mutex_init(&st->pool_lock, NULL);
	pthread_cond_init(&st->pool_cv, NULL);
	pthread_cond_init(&st->done_cv, NULL);
	pthread_mutex_init(&st->spare_lock, NULL);
	st->sparefd = -1;
	st->dirfd = store_dir(cfg->dir);
	if (st->dirfd < 0) {
		ret = st->dirfd;
		goto out;
	}
	st->sparefd = spare_dir(st->dirfd);
	ret = s3b_pool_start(st);
	if (ret)
		goto out;
	*out = st;
	return 0;
out:
	if (st->sparefd >= 0)
		close(st->sparefd);
	if (st->dirfd >= 0)
		close(st->dirfd);
	free(st);
	return ret;
}

void s3b_store_close(struct s3b_store *st)
{
	if (!st)
		return;
	s3b_store_retry_stop(st, UINT64_MAX);
	s3b_pool_stop(st);
	for (size_t i = 0; i < S3B_TABLE; i++) {
		struct s3b_stage *sg, *next;
		for (sg = st->table[i]; sg; sg = next) {
			next = sg->next;
			if (sg->refs)
				log_warn("stage %s still referenced at close",
					 sg->key);
			s3b_stage_free(sg);
		}
	}
	for (unsigned i = 0; i < st->nspares; i++)
		spare_drop(st, &st->spares[i]);
	if (st->sparefd >= 0)
		close(st->sparefd);
	close(st->dirfd);
	free(st);
}

/* ---- the memory budget ----------------------------------------------------
 */

void s3b_budget_take(struct s3b_store *st, uint64_t n)
{
	pthread_mutex_lock(&st->budget_lock);
	while (st->budget_used && st->budget_used + n > st->cfg.mem_budget)
		pthread_cond_wait(&st->budget_cv, &st->budget_lock);
	st->budget_used += n;
	if (st->budget_used > st->budget_peak)
		st->budget_peak = st->budget_used;
	pthread_mutex_unlock(&st->budget_lock);
}

bool s3b_budget_try_take(struct s3b_store *st, uint64_t n)
{
	bool ok;

	pthread_mutex_lock(&st->budget_lock);
	ok = st->budget_used + n <= st->cfg.mem_budget / 2;
	if (ok) {
		st->budget_used += n;
		if (st->budget_used > st->budget_peak)
			st->budget_peak = st->budget_used;
	}
	pthread_mutex_unlock(&st->budget_lock);
	return ok;
}

void s3b_budget_give(struct s3b_store *st, uint64_t n)
{
	pthread_mutex_lock(&st->budget_lock);
	st->budget_used = n > st->budget_used ? 0 : st->budget_used - n;
	pthread_cond_broadcast(&st->budget_cv);
	pthread_mutex_unlock(&st->budget_lock);
}

void s3b_budget_stats(struct s3b_store *st, uint64_t *peak, uint64_t *used)
{
	pthread_mutex_lock(&st->budget_lock);
	if (peak)
		*peak = st->budget_peak;
	if (used)
		*used = st->budget_used;
	pthread_mutex_unlock(&st->budget_lock);
}

/* ---- the table --------------------------------------------------------------
 */

static size_t table_hash(const char *fsid, const char *key)
{
	uint64_t h = 1469598103934665603ull;

	for (const char *p = fsid; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ull;
	h = (h ^ '/') * 1099511628211ull;
	for (const char *p = key; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ull;
	return (size_t)(h % S3B_TABLE);
}

/* table_lock held; fsid and key read without the stage lock are only
 * changed with table_lock held too (s3b_store_rehash). */
struct s3b_stage *s3b_store_find(struct s3b_store *st, const char *fsid,
				 const char *key)
{
	struct s3b_stage *sg = st->table[table_hash(fsid, key)];

	for (; sg; sg = sg->next)
		if (!strcmp(sg->key, key) && !strcmp(sg->fsid, fsid))
			return sg;
	return NULL;
}

/* table_lock held */
void s3b_store_insert(struct s3b_store *st, struct s3b_stage *sg)
{
	size_t h = table_hash(sg->fsid, sg->key);

	sg->next = st->table[h];
	st->table[h] = sg;
	sg->in_table = true;
}

/* table_lock held */
void s3b_store_remove(struct s3b_store *st, struct s3b_stage *sg)
{
	struct s3b_stage **pp = &st->table[table_hash(sg->fsid, sg->key)];

	for (; *pp; pp = &(*pp)->next)
		if (*pp == sg) {
			*pp = sg->next;
			break;
		}
	sg->in_table = false;
}

/* table_lock and the stage's lock held; takes over fsid and key. */
void s3b_store_rehash(struct s3b_store *st, struct s3b_stage *sg,
		      const char *fsid, const char *key)
{
	char *f = strdup(fsid), *k = strdup(key);

	if (!f || !k) {
		free(f);
		free(k);
		return;
	}
	if (sg->in_table)
		s3b_store_remove(st, sg);
	free(sg->fsid);
	free(sg->key);
	sg->fsid = f;
	sg->key = k;
	s3b_store_insert(st, sg);
}

void s3b_store_unlink(struct s3b_store *st, const char *id)
{
	char name[64];

	s3b_mf_name(name, sizeof(name), id, ".data");
	unlinkat(st->dirfd, name, 0);
	s3b_mf_name(name, sizeof(name), id, ".mf");
	unlinkat(st->dirfd, name, 0);
	s3b_mf_name(name, sizeof(name), id, ".released");
	unlinkat(st->dirfd, name, 0);
}

static void new_id(char id[S3B_ID_LEN + 1])
{
	unsigned char r[S3B_ID_LEN / 2];
	static unsigned long long fallback;

	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r)) {
		unsigned long long v =
		    (unsigned long long)time(NULL) << 20 ^
		    __atomic_add_fetch(&fallback, 1, __ATOMIC_RELAXED) ^
		    (unsigned long long)getpid() << 40;
		memcpy(r, &v, sizeof(r));
	}
	for (size_t i = 0; i < sizeof(r); i++)
		snprintf(id + 2 * i, 3, "%02x", r[i]);
}

/* A fresh stage of base: data file sized like the base, all of it lazy. */
static int stage_create(struct s3b_store *st, struct s3_http *http,
			const char *fsid, const struct s3b_base *base,
			struct s3b_stage **out)
{
	struct s3b_stage *sg = s3b_stage_alloc(st);
	char name[64];
	int ret = -ENOMEM;

	if (!sg)
		return -ENOMEM;
	sg->fsid = strdup(fsid);
	sg->key = strdup(base->key);
	if (!sg->fsid || !sg->key)
		goto out;
	if (base->etag && strlen(base->etag) >= S3_ETAG_MAX) {
		ret = -EINVAL;
		goto out;
	}
	snprintf(sg->etag, sizeof(sg->etag), "%s",
		 base->etag ? base->etag : "");
	sg->base_size = sg->base_limit = sg->size =
	    sg->etag[0] ? base->size : 0;
	sg->http = http;
	new_id(sg->id);
	ret = spare_take(st, sg);
	if (!ret)
		goto done;
	if (sg->fd >= 0) {
		s3b_store_unlink(st, sg->id);
		close(sg->fd);
		sg->fd = -1;
	}
	for (int tries = 0; sg->fd < 0 && tries < 8; tries++) {
		new_id(sg->id);
		s3b_mf_name(name, sizeof(name), sg->id, ".data");
		sg->fd = openat(st->dirfd, name,
				O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (sg->fd < 0 && errno != EEXIST) {
			ret = -errno;
			goto out;
		}
	}
	if (sg->fd < 0) {
		ret = -EEXIST;
		goto out;
	}
	/*
	 * The file is new, so empty: no ftruncate to 0, which on ext4 would
	 * make its close start writeback of what is written by then
	 * (auto_da_alloc), for a file that is unlinked at that close anyway.
	 */
	if (sg->size && ftruncate(sg->fd, (off_t)sg->size) < 0) {
		ret = -errno;
		goto out;
	}
	ret = s3b_mf_write(sg, false);
	if (ret)
		goto out;
done:
	/*
	 * Uploads read whole parts, and a part's bytes are in the page
	 * cache, written a moment ago.  Read-ahead past a part would only
	 * fill pages of ranges not written yet (holes of a file being
	 * written out of order, or one sized first) with zeros.
	 */
	posix_fadvise(sg->fd, 0, 0, POSIX_FADV_RANDOM);
	*out = sg;
	return 0;
out:
	if (sg->fd >= 0)
		s3b_store_unlink(st, sg->id);
	s3b_stage_free(sg);
	return ret;
}

int s3b_stage_get(struct s3b_store *st, struct s3_http *http, const char *fsid,
		  const struct s3b_base *base, struct s3b_stage **out)
{
	struct s3b_stage *sg;
	int ret = 0;

	*out = NULL;
	if (!fsid || !base || !base->key || !base->key[0] ||
	    strlen(base->key) >= S3_KEY_MAX)
		return -EINVAL;
	pthread_mutex_lock(&st->table_lock);
	sg = s3b_store_find(st, fsid, base->key);
	if (sg) {
		sg->refs++;
		pthread_mutex_lock(&sg->lock);
		if (!sg->http)
			sg->http = http;
		pthread_mutex_unlock(&sg->lock);
	} else {
		ret = stage_create(st, http, fsid, base, &sg);
		if (!ret) {
			sg->refs = 1;
			s3b_store_insert(st, sg);
		}
	}
	pthread_mutex_unlock(&st->table_lock);
	if (!ret)
		*out = sg;
	return ret;
}

int s3b_stage_lookup(struct s3b_store *st, const char *fsid, const char *key,
		     struct s3b_stage **out)
{
	struct s3b_stage *sg;

	*out = NULL;
	if (!fsid || !key)
		return -EINVAL;
	pthread_mutex_lock(&st->table_lock);
	/* a discarded stage has left the table already */
	sg = s3b_store_find(st, fsid, key);
	if (sg)
		sg->refs++;
	pthread_mutex_unlock(&st->table_lock);
	*out = sg;
	return sg ? 0 : -ENOENT;
}

void s3b_store_discard_key(struct s3b_store *st, const char *fsid,
			   const char *key)
{
	struct s3b_stage *sg;

	if (s3b_stage_lookup(st, fsid, key, &sg))
		return;
	s3b_stage_discard(sg);
	s3b_stage_put(sg);
}

void s3b_stage_put(struct s3b_stage *sg)
{
	struct s3b_store *st;
	bool drop = false;

	if (!sg)
		return;
	st = sg->st;
	pthread_mutex_lock(&st->table_lock);
	if (--sg->refs == 0) {
		pthread_mutex_lock(&sg->lock);
		drop = sg->discarded || !s3b_stage_dirty_locked(sg);
		pthread_mutex_unlock(&sg->lock);
		if (drop && sg->in_table)
			s3b_store_remove(st, sg);
	}
	pthread_mutex_unlock(&st->table_lock);
	if (drop) {
		s3b_store_retire(st, sg);
		s3b_stage_free(sg);
	}
}

void s3b_store_forget_http(struct s3b_store *st, struct s3_http *http)
{
	pthread_mutex_lock(&st->table_lock);
	for (size_t i = 0; i < S3B_TABLE; i++)
		for (struct s3b_stage *sg = st->table[i]; sg; sg = sg->next) {
			pthread_mutex_lock(&sg->lock);
			/* an upload or fetch in flight still uses it */
			while (sg->http == http && (sg->busy || sg->nfetch))
				pthread_cond_wait(&sg->cv, &sg->lock);
			if (sg->http == http)
				sg->http = NULL;
			pthread_mutex_unlock(&sg->lock);
		}
	pthread_mutex_unlock(&st->table_lock);
}
