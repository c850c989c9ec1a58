/*
 * s3b_store_recover.c - the store at the edges of the broker's life:
 * flushing everything at shutdown within a deadline, and uploading at
 * start-up what a previous run left staged.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "s3b_stage_int.h"

/* ---- shutdown
 * ------------------------------------------------------------------- */

struct flush_all {
	struct s3b_store *st;
	struct s3b_stage **sg;
	int *res; /* -EINPROGRESS until flushed */
	size_t n, next, done;
	uint64_t deadline;
	unsigned users; /* threads plus the caller; pool_lock */
};

static void fa_release(struct flush_all *fa)
{
	if (--fa->users)
		return;
	for (size_t i = 0; i < fa->n; i++)
		s3b_stage_put(fa->sg[i]);
	free(fa->sg);
	free(fa->res);
	free(fa);
}

static void *fa_main(void *arg)
{
	struct flush_all *fa = arg;
	struct s3b_store *st = fa->st;

	pthread_mutex_lock(&st->pool_lock);
	while (fa->next < fa->n) {
		size_t i = fa->next++;
		int ret = -ETIMEDOUT;

		pthread_mutex_unlock(&st->pool_lock);
		if (s3b_now_ms() < fa->deadline)
			ret = s3b_stage_flush(fa->sg[i], NULL);
		pthread_mutex_lock(&st->pool_lock);
		fa->res[i] = ret;
		fa->done++;
		pthread_cond_broadcast(&st->done_cv);
	}
	if (--st->flushers == 0)
		st->cancel = st->stopping; /* the deadline is over */
	pthread_cond_broadcast(&st->done_cv);
	fa_release(fa);
	pthread_mutex_unlock(&st->pool_lock);
	return NULL;
}

/* Referenced dirty stages, in an array. */
static int fa_collect(struct s3b_store *st, struct flush_all *fa)
{
	size_t cap = 0;

	pthread_mutex_lock(&st->table_lock);
	for (size_t i = 0; i < S3B_TABLE; i++)
		for (struct s3b_stage *sg = st->table[i]; sg; sg = sg->next) {
			if (!s3b_stage_dirty(sg))
				continue;
			if (fa->n == cap) {
				size_t nc = cap ? 2 * cap : 64;
				void *p = realloc(fa->sg, nc * sizeof(*fa->sg));
				if (!p)
					goto out;
				fa->sg = p;
				cap = nc;
			}
			sg->refs++;
			fa->sg[fa->n++] = sg;
		}
out:
	pthread_mutex_unlock(&st->table_lock);
	fa->res = malloc((fa->n ? fa->n : 1) * sizeof(*fa->res));
	if (!fa->res)
		return -ENOMEM;
	for (size_t i = 0; i < fa->n; i++)
		fa->res[i] = -EINPROGRESS;
	return 0;
}

static int fa_report(struct flush_all *fa)
{
	int left = 0;

	for (size_t i = 0; i < fa->n; i++) {
		const char *why = fa->res[i] == -EINPROGRESS
				      ? "still uploading at the deadline"
				      : strerror(-fa->res[i]);
		if (!fa->res[i])
			continue;
		left++;
		log_err("stage %s (%s): not flushed: %s; kept in the staging "
			"directory for the next start",
			fa->sg[i]->key, fa->sg[i]->id, why);
	}
	return left;
}

int s3b_store_flush_all(struct s3b_store *st, uint64_t deadline_ms)
{
	struct flush_all *fa = calloc(1, sizeof(*fa));
	struct timespec ts;
	unsigned nt;
	int left;

	if (!fa)
		return -ENOMEM;
	fa->st = st;
	fa->deadline = deadline_ms;
	fa->users = 1;
	if (fa_collect(st, fa)) {
		fa_release(fa);
		return -ENOMEM;
	}
	nt = fa->n < st->cfg.upload_threads ? (unsigned)fa->n
					    : st->cfg.upload_threads;
	pthread_mutex_lock(&st->pool_lock);
	for (unsigned i = 0; i < nt; i++) {
		pthread_t t;
		fa->users++;
		st->flushers++;
		if (pthread_create(&t, NULL, fa_main, fa)) {
			fa->users--;
			st->flushers--;
			break;
		}
		pthread_detach(t);
	}
	if (!st->flushers) /* no thread: flush here */
		fa->next = fa->n;
	while (fa->done < fa->n && fa->next <= fa->n && st->flushers) {
		uint64_t now = s3b_now_ms();
		if (now >= deadline_ms)
			break;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += (time_t)((deadline_ms - now) / 1000);
		ts.tv_nsec += (long)((deadline_ms - now) % 1000) * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&st->done_cv, &st->pool_lock, &ts);
	}
	/* past the deadline: queued parts are dropped, stages stay staged */
	if (fa->done < fa->n)
		st->cancel = true;
	left = fa_report(fa);
	fa_release(fa);
	pthread_mutex_unlock(&st->pool_lock);
	return left;
}

/* ---- start-up
 * ------------------------------------------------------------------ */

static bool id_ok(const char *s, size_t n)
{
	if (n != S3B_ID_LEN)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		      (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

/* Move a stage's files to corrupt/ for an operator; never delete them. */
static void set_aside(struct s3b_store *st, const char *name, const char *id,
		      const char *why)
{
	static const char *sfx[] = {".mf", ".data"};
	char from[300], to[320];

	if (mkdirat(st->dirfd, "corrupt", 0700) < 0 && errno != EEXIST)
		log_err("staging: cannot create corrupt/: %s", strerror(errno));
	if (!id) {
		snprintf(to, sizeof(to), "corrupt/%s", name);
		renameat(st->dirfd, name, st->dirfd, to);
	}
	for (size_t i = 0; id && i < 2; i++) {
		snprintf(from, sizeof(from), "%s%s", id, sfx[i]);
		snprintf(to, sizeof(to), "corrupt/%s%s", id, sfx[i]);
		renameat(st->dirfd, from, st->dirfd, to);
	}
	log_err("staging: %s: %s; moved to corrupt/ (not uploaded, not "
		"deleted)",
		name, why);
}

static int read_all(int dirfd, const char *name, char **out, size_t *len)
{
	struct stat sb;
	char *p = NULL;
	int fd, ret = 0;

	fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode) ||
	    sb.st_size > S3B_MF_MAX) {
		ret = -EINVAL;
		goto out;
	}
	p = malloc((size_t)sb.st_size + 1);
	if (!p) {
		ret = -ENOMEM;
		goto out;
	}
	*len = 0;
	while (*len < (size_t)sb.st_size) {
		ssize_t n = read(fd, p + *len, (size_t)sb.st_size - *len);
		if (n <= 0) {
			ret = n < 0 ? -errno : -EIO;
			goto out;
		}
		*len += (size_t)n;
	}
	*out = p;
	p = NULL;
out:
	free(p);
	close(fd);
	return ret;
}

static bool loaded(struct s3b_store *st, const char *id)
{
	bool found = false;

	pthread_mutex_lock(&st->table_lock);
	for (size_t i = 0; i < S3B_TABLE && !found; i++)
		for (struct s3b_stage *sg = st->table[i]; sg; sg = sg->next)
			if (!strcmp(sg->id, id))
				found = true;
	pthread_mutex_unlock(&st->table_lock);
	return found;
}

/* A stage from its manifest and data file; NULL (files set aside) if bad. */
static struct s3b_stage *load(struct s3b_store *st, const char *name,
			      const char *id)
{
	struct s3b_stage *sg = s3b_stage_alloc(st);
	char data[64], *text = NULL;
	const char *why = "unreadable";
	struct stat sb;
	size_t len = 0;
	int ret;

	if (!sg)
		return NULL;
	memcpy(sg->id, id, S3B_ID_LEN);
	/* occfsctl quarantine release: the operator let it through DLP */
	s3b_mf_name(data, sizeof(data), id, ".released");
	sg->dlp_skip = faccessat(st->dirfd, data, F_OK, 0) == 0;
	ret = read_all(st->dirfd, name, &text, &len);
	if (!ret) {
		ret = s3b_mf_parse(text, len, sg);
		why = "malformed manifest";
	}
	if (!ret) {
		s3b_mf_name(data, sizeof(data), id, ".data");
		sg->fd =
		    openat(st->dirfd, data, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
		why = "no data file";
		ret = sg->fd < 0 || fstat(sg->fd, &sb) < 0 ? -ENOENT : 0;
	}
	free(text);
	if (ret) {
		s3b_stage_free(sg);
		set_aside(st, name, id, why);
		return NULL;
	}
	sg->size = (uint64_t)sb.st_size;
	if (sg->base_limit > sg->size) /* killed between cut and manifest */
		sg->base_limit = sg->size;
	s3b_bits_clear_from(&sg->present,
			    (sg->size + S3B_BLOCK - 1) / S3B_BLOCK);
	s3b_bits_clear_from(&sg->dirty, (sg->size + S3B_BLOCK - 1) / S3B_BLOCK);
	if (sg->size != sg->base_size || sg->base_limit < sg->base_size ||
	    s3b_bits_any(&sg->dirty, 0, UINT64_MAX / 2))
		sg->changed = true;
	return sg;
}

/* Put a loaded stage in the table and try to upload it; 1 if it stays. */
static int recover_one(struct s3b_store *st, struct s3b_stage *sg,
		       struct s3_http *http)
{
	int ret;

	sg->http = http;
	pthread_mutex_lock(&st->table_lock);
	if (s3b_store_find(st, sg->fsid, sg->key)) {
		pthread_mutex_unlock(&st->table_lock);
		log_err("staging: %s (%s): the key is staged already; kept "
			"for the next start",
			sg->key, sg->id);
		close(sg->fd);
		sg->fd = -1;
		s3b_stage_free(sg);
		return 1;
	}
	sg->refs = 1;
	s3b_store_insert(st, sg);
	pthread_mutex_unlock(&st->table_lock);
	if (!http) {
		log_info("staging: %s (%s): no client for filesystem %s yet; "
			 "kept",
			 sg->key, sg->id, sg->fsid);
		s3b_stage_put(sg);
		return 1;
	}
	ret = s3b_stage_flush(sg, NULL);
	if (ret)
		log_err("staging: recovery of %s (%s) failed: %s; kept",
			sg->key, sg->id, strerror(-ret));
	else
		log_info("staging: recovered %s", sg->key);
	s3b_stage_put(sg);
	return ret ? 1 : 0;
}

int s3b_store_recover(struct s3b_store *st,
		      struct s3_http *(*client)(void *arg, const char *fsid),
		      void *arg)
{
	int fd = dup(st->dirfd), left = 0;
	struct dirent *de;
	DIR *d;

	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	rewinddir(d);
	while ((de = readdir(d))) {
		size_t n = strlen(de->d_name);
		char id[S3B_ID_LEN + 1];
		struct s3b_stage *sg;

		if (n < 3 || strcmp(de->d_name + n - 3, ".mf"))
			continue;
		if (!id_ok(de->d_name, n - 3)) {
			set_aside(st, de->d_name, NULL, "unexpected name");
			continue;
		}
		memcpy(id, de->d_name, S3B_ID_LEN);
		id[S3B_ID_LEN] = '\0';
		if (loaded(st, id))
			continue;
		sg = load(st, de->d_name, id);
		if (!sg) {
			left++;
			continue;
		}
		left +=
		    recover_one(st, sg, client ? client(arg, sg->fsid) : NULL);
	}
	closedir(d);
	return left;
}
