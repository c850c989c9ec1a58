/*
 * s3b_ra.c - read-ahead windows for clean objects of the s3 backend
 * (s3b_ra.h).
 *
 * State per open file (session, fh) in one registry, created at its first
 * READ and dropped at RELEASE or session close.  A READ is sequential when
 * it starts within RA_SLACK of where the last one ended or inside a live
 * window (the kernel sends its read-ahead in parallel, slightly out of
 * order); a READ that is neither drops the windows.  From the second
 * sequential READ on, windows are kept up to RA_WINDOWS ahead, each one
 * GET with If-Match on a detached thread (at most RA_JOBS at once in the
 * broker).  A READ waits for a window still being fetched when it needs
 * its bytes (cheaper than a second request for them) and takes what the
 * windows cannot give with its own GET.  Windows behind the reader are
 * freed as it passes them.
 *
 * Lock order: reg_lock before ra->lock; neither is held across a request.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "s3b.h"
#include "s3b_ra.h"

#define RA_MiB (1024ull * 1024)
#define RA_WINDOWS 4
#define RA_WIN_MIN (2 * RA_MiB)
#define RA_WIN_MAX (8 * RA_MiB)
#define RA_SLACK (2 * RA_MiB)
#define RA_JOBS 16
#define RA_FILES 4096
#define RA_BUCKETS 256

enum { W_FREE, W_FETCHING, W_READY, W_FAILED };

struct ra_win {
	uint64_t off, len; /* the range asked for */
	size_t got;	   /* bytes received (< len only at the end) */
	size_t avail;	   /* while fetching: the first bytes already in buf */
	uint8_t *buf;
	int state, err;
	bool discard; /* dropped while fetching: the job frees it */
};

struct s3b_ra {
	struct s3b_ra *next;	   /* bucket chain, reg_lock */
	struct backend_session *s; /* immutable */
	uint64_t fh;		   /* immutable */
	unsigned refs;		   /* reg_lock */
	bool listed;		   /* reg_lock: in the registry */
	pthread_mutex_t lock;
	pthread_cond_t cv;
	char key[S3_KEY_MAX + 1]; /* lock: the object the windows hold */
	char etag[S3_ETAG_MAX];	  /* lock: "" until read-ahead starts */
	char stale[S3_ETAG_MAX];  /* lock: an ETag S3 refused (If-Match) */
	uint64_t size;		  /* lock: the object's, with etag */
	uint64_t next_off;	  /* lock: where the last READ ended */
	unsigned seq, started;	  /* lock: sequential READs, windows */
	unsigned jobs;		  /* lock: window GETs in flight */
	unsigned waiting;	  /* lock: READs waiting on cv for bytes */
	struct ra_win win[RA_WINDOWS];
};

struct ra_job {
	struct ra_job *next;	   /* active jobs, reg_lock */
	struct backend_session *s; /* ra->s, valid after ra is gone */
	struct s3b_ra *ra;
	struct ra_win *w;
	struct s3_http *http;
	char key[S3_KEY_MAX + 1], etag[S3_ETAG_MAX];
};

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t reg_cv = PTHREAD_COND_INITIALIZER;
static struct s3b_ra *reg[RA_BUCKETS]; /* reg_lock */
static unsigned reg_files, reg_jobs;   /* reg_lock */
static struct ra_job *active;	       /* reg_lock */
static struct s3b_ra_stats stats;      /* reg_lock */

static size_t ra_bucket(const struct backend_session *s, uint64_t fh)
{
	uint64_t h = (uint64_t)(uintptr_t)s * 0x9e3779b97f4a7c15ull ^ fh;

	return (size_t)((h ^ h >> 29) % RA_BUCKETS);
}

static void stat_add(uint64_t *v, uint64_t n)
{
	pthread_mutex_lock(&reg_lock);
	*v += n;
	pthread_mutex_unlock(&reg_lock);
}

void s3b_ra_stats(struct s3b_ra_stats *out)
{
	pthread_mutex_lock(&reg_lock);
	*out = stats;
	pthread_mutex_unlock(&reg_lock);
}

/* ---- windows -------------------------------------------------------------
 */

/* ra->lock held. */
static void win_drop(struct s3b_ra *ra, struct ra_win *w)
{
	if (w->state == W_FETCHING) {
		w->discard = true;
		return;
	}
	if (w->state != W_FREE) {
		free(w->buf);
		s3b_budget_give(ra->s->b->store, w->len);
	}
	memset(w, 0, sizeof(*w));
}

/* ra->lock held: forget every window and the ETag they were tied to. */
static void ra_reset(struct s3b_ra *ra)
{
	for (int i = 0; i < RA_WINDOWS; i++)
		win_drop(ra, &ra->win[i]);
	ra->etag[0] = '\0';
	ra->size = 0;
	ra->seq = 0;
	ra->started = 0;
}

/* ra->lock held: the live window holding byte off, or NULL. */
static struct ra_win *win_find(struct s3b_ra *ra, uint64_t off)
{
	for (int i = 0; i < RA_WINDOWS; i++) {
		struct ra_win *w = &ra->win[i];

		if (w->state != W_FREE && !w->discard && off >= w->off &&
		    off - w->off < w->len)
			return w;
	}
	return NULL;
}

/* ---- the registry -------------------------------------------------------- */

static void ra_put(struct s3b_ra *ra)
{
	bool last;

	pthread_mutex_lock(&reg_lock);
	last = --ra->refs == 0;
	pthread_mutex_unlock(&reg_lock);
	if (!last)
		return;
	for (int i = 0; i < RA_WINDOWS; i++)
		win_drop(ra,
			 &ra->win[i]); /* none is fetching: jobs hold refs */
	pthread_mutex_destroy(&ra->lock);
	pthread_cond_destroy(&ra->cv);
	free(ra);
}

/* reg_lock held: take ra out of its chain (it keeps the list's ref). */
static void reg_unlink(struct s3b_ra *ra)
{
	struct s3b_ra **pp = &reg[ra_bucket(ra->s, ra->fh)];

	while (*pp && *pp != ra)
		pp = &(*pp)->next;
	if (*pp)
		*pp = ra->next;
	ra->listed = false;
	reg_files--;
}

/* The state of (s, fh), created if missing; NULL when the table is full. */
static struct s3b_ra *ra_get(struct backend_session *s, uint64_t fh)
{
	size_t b = ra_bucket(s, fh);
	struct s3b_ra *ra;

	pthread_mutex_lock(&reg_lock);
	for (ra = reg[b]; ra; ra = ra->next)
		if (ra->s == s && ra->fh == fh)
			break;
	if (!ra && reg_files < RA_FILES && (ra = calloc(1, sizeof(*ra)))) {
		ra->s = s;
		ra->fh = fh;
		ra->refs = 1; /* the registry's */
		ra->listed = true;
		pthread_mutex_init(&ra->lock, NULL);
		pthread_cond_init(&ra->cv, NULL);
		ra->next = reg[b];
		reg[b] = ra;
		reg_files++;
	}
	if (ra)
		ra->refs++;
	pthread_mutex_unlock(&reg_lock);
	return ra;
}

/* reg_lock held: does a window GET of session s run? */
static bool jobs_of(const struct backend_session *s)
{
	for (struct ra_job *j = active; j; j = j->next)
		if (j->s == s)
			return true;
	return false;
}

/* Unlisted ra: drop its windows; wait for its GETs when wait is set. */
static void ra_close(struct s3b_ra *ra, bool wait)
{
	pthread_mutex_lock(&ra->lock);
	ra_reset(ra);
	while (wait && ra->jobs)
		pthread_cond_wait(&ra->cv, &ra->lock);
	pthread_mutex_unlock(&ra->lock);
	ra_put(ra);
}

void s3b_ra_release(struct backend_session *s, uint64_t fh)
{
	struct s3b_ra *ra;

	pthread_mutex_lock(&reg_lock);
	for (ra = reg[ra_bucket(s, fh)]; ra; ra = ra->next)
		if (ra->s == s && ra->fh == fh)
			break;
	if (ra)
		reg_unlink(ra);
	pthread_mutex_unlock(&reg_lock);
	if (ra)
		ra_close(ra, false);
}

/*
 * Window GETs use the session's filesystem client: every one of them must
 * be over before the session goes, including those of files released
 * earlier (their state lives on until the GET returns).
 */
void s3b_ra_session_close(struct backend_session *s)
{
	struct s3b_ra *ra;

	for (;;) {
		pthread_mutex_lock(&reg_lock);
		ra = NULL;
		for (size_t b = 0; b < RA_BUCKETS && !ra; b++)
			for (ra = reg[b]; ra && ra->s != s; ra = ra->next)
				;
		if (ra)
			reg_unlink(ra);
		pthread_mutex_unlock(&reg_lock);
		if (!ra)
			break;
		ra_close(ra, true);
	}
	pthread_mutex_lock(&reg_lock);
	while (jobs_of(s))
		pthread_cond_wait(&reg_cv, &reg_lock);
	log_debug("s3: read-ahead so far: %llu windows, %llu bytes read from "
		  "them, %llu direct reads, %llu windows dropped as stale",
		  (unsigned long long)stats.windows,
		  (unsigned long long)stats.window_bytes,
		  (unsigned long long)stats.direct,
		  (unsigned long long)stats.stale);
	pthread_mutex_unlock(&reg_lock);
}

/* ---- window GETs --------------------------------------------------------- */

/* reg_lock held. */
static void job_unlink(struct ra_job *j)
{
	struct ra_job **pp;

	for (pp = &active; *pp && *pp != j; pp = &(*pp)->next)
		;
	if (*pp)
		*pp = j->next;
	reg_jobs--;
}

/*
 * Bytes of a window arrive: a READ waiting for them may go on before the
 * whole window is in (a reader would otherwise wait for up to 8 MiB when
 * it needs 128 KiB).
 */
static void job_progress(void *arg, uint64_t got)
{
	struct ra_job *j = arg;
	struct s3b_ra *ra = j->ra;

	pthread_mutex_lock(&ra->lock);
	if (got > j->w->avail) {
		j->w->avail = got;
		if (ra->waiting)
			pthread_cond_broadcast(&ra->cv);
	}
	pthread_mutex_unlock(&ra->lock);
}

static void *job_main(void *arg)
{
	struct ra_job *j = arg;
	struct s3b_ra *ra = j->ra;
	struct ra_win *w = j->w;
	struct s3_sink sink = {.buf = w->buf,
			       .cap = w->len,
			       .progress = job_progress,
			       .progress_arg = j};
	size_t got = 0;
	int rc;

	/* w's range and buffer stay put while it is W_FETCHING */
	rc = s3_http_get_object(j->http, j->key, w->off, w->len, &sink, j->etag,
				&got, NULL);
	pthread_mutex_lock(&ra->lock);
	w->state = rc ? W_FAILED : W_READY;
	w->err = rc;
	w->got = got;
	if (w->discard) {
		w->discard = false;
		win_drop(ra, w);
	}
	ra->jobs--;
	pthread_cond_broadcast(&ra->cv);
	pthread_mutex_unlock(&ra->lock);
	ra_put(ra); /* before the session may go: it frees into its store */
	pthread_mutex_lock(&reg_lock);
	job_unlink(j);
	pthread_cond_broadcast(&reg_cv);
	pthread_mutex_unlock(&reg_lock);
	free(j);
	return NULL;
}

/* ra->lock held: start a GET of [off, off + len) into w; 0 or -errno. */
static int win_start(struct s3b_ra *ra, struct ra_win *w, uint64_t off,
		     uint64_t len)
{
	struct s3b_store *st = ra->s->b->store;
	struct ra_job *j;
	pthread_attr_t at;
	pthread_t t;
	int rc = -EAGAIN;

	if (!s3b_budget_try_take(st, len))
		return -EAGAIN; /* back-pressure: read directly meanwhile */
	j = calloc(1, sizeof(*j));
	w->buf = malloc(len);
	if (!j || !w->buf)
		goto fail;
	j->s = ra->s;
	pthread_mutex_lock(&reg_lock);
	if (reg_jobs >= RA_JOBS) {
		pthread_mutex_unlock(&reg_lock);
		goto fail;
	}
	reg_jobs++;
	ra->refs++;
	j->next = active;
	active = j;
	stats.windows++;
	pthread_mutex_unlock(&reg_lock);
	j->ra = ra;
	j->w = w;
	j->http = ra->s->fs->http;
	memcpy(j->key, ra->key, sizeof(j->key));
	memcpy(j->etag, ra->etag, sizeof(j->etag));
	w->off = off;
	w->len = len;
	w->state = W_FETCHING;
	w->discard = false;
	ra->jobs++;
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	rc = pthread_create(&t, &at, job_main, j);
	pthread_attr_destroy(&at);
	if (!rc)
		return 0;
	/* no thread: undo (the window was never visible unlocked) */
	ra->jobs--;
	w->state = W_FREE;
	pthread_mutex_lock(&reg_lock);
	job_unlink(j);
	ra->refs--; /* the caller holds another */
	pthread_mutex_unlock(&reg_lock);
	rc = -rc;
fail:
	free(j);
	free(w->buf);
	memset(w, 0, sizeof(*w));
	s3b_budget_give(st, len);
	return rc;
}

/* ra->lock held: the ETag and size read-ahead ties its windows to. */
static bool ra_tie(struct s3b_ra *ra)
{
	struct s3b_info i;

	if (ra->etag[0])
		return true;
	if (s3b_cache_get(ra->s->b, ra->key, NULL, &i) != 1)
		return false;
	if (i.etag[0] && strcmp(i.etag, ra->stale)) {
		memcpy(ra->etag, i.etag, sizeof(ra->etag));
		ra->size = i.size;
	}
	s3b_info_clear(&i);
	return ra->etag[0] != '\0';
}

/*
 * ra->lock held: free the windows behind pos, then keep up to RA_WINDOWS
 * ahead of it, each twice the last up to RA_WIN_MAX.
 */
static void ra_top_up(struct s3b_ra *ra, uint64_t pos)
{
	uint64_t end = pos;
	struct ra_win *w;

	if (!ra_tie(ra))
		return;
	for (int i = 0; i < RA_WINDOWS; i++) {
		w = &ra->win[i];
		if (w->state == W_FREE || w->discard)
			continue;
		if (w->state == W_FAILED ||
		    (w->state == W_READY && w->off + w->len <= pos))
			win_drop(ra, w);
		else if (w->off + w->len > end)
			end = w->off + w->len;
	}
	for (int i = 0; i < RA_WINDOWS && end < ra->size; i++) {
		uint64_t len = (uint64_t)RA_WIN_MIN
			       << (ra->started < 2 ? ra->started : 2);

		w = &ra->win[i];
		if (w->state != W_FREE)
			continue;
		if (len > RA_WIN_MAX)
			len = RA_WIN_MAX;
		if (len > ra->size - end)
			len = ra->size - end;
		if (win_start(ra, w, end, len))
			break;
		ra->started++;
		end += len;
	}
}

/* ---- READ ---------------------------------------------------------------- */

/*
 * ra->lock held: copy what the windows hold from off on (waiting for one
 * being fetched); *eof when the object ends inside them.
 */
static size_t ra_serve(struct s3b_ra *ra, uint8_t *buf, size_t len,
		       uint64_t off, bool *eof)
{
	size_t done = 0;
	struct ra_win *w;

	while (done < len) {
		uint64_t pos = off + done, in;

		if (ra->etag[0] && pos >= ra->size) {
			*eof = true;
			break;
		}
		w = win_find(ra, pos);
		if (!w)
			break;
		if (w->state == W_FETCHING) {
			/* what has arrived is final: If-Match, same bytes on
			 * a retry */
			in = pos - w->off;
			if (in < w->avail) {
				size_t n = w->avail - in < len - done
					       ? w->avail - in
					       : len - done;
				memcpy(buf + done, w->buf + in, n);
				done += n;
				continue;
			}
			ra->waiting++;
			pthread_cond_wait(&ra->cv, &ra->lock);
			ra->waiting--;
			continue;
		}
		if (w->state == W_FAILED) {
			if (w->err == -ESTALE || w->err == -ENOENT) {
				/* changed behind the cache: no windows on
				 * that ETag again, read directly */
				stat_add(&stats.stale, 1);
				memcpy(ra->stale, ra->etag, sizeof(ra->stale));
				ra_reset(ra);
			} else {
				win_drop(ra, w);
			}
			break;
		}
		in = pos - w->off;
		if (in >= w->got) {
			*eof = w->got < w->len;
			break;
		}
		size_t n = w->got - in < len - done ? w->got - in : len - done;
		memcpy(buf + done, w->buf + in, n);
		done += n;
	}
	return done;
}

/* ra->lock held: note the READ at off; false when it is a random one. */
static bool ra_note(struct s3b_ra *ra, uint64_t off, size_t len)
{
	bool seq = win_find(ra, off) || (off + RA_SLACK >= ra->next_off &&
					 off <= ra->next_off + RA_SLACK);

	if (!seq) {
		ra_reset(ra);
		ra->next_off = off + len;
		return false;
	}
	ra->seq++;
	if (off + len > ra->next_off)
		ra->next_off = off + len;
	return true;
}

/*
 * The part of a READ the windows did not hold, [off + done, off + len),
 * with one GET; it must come from the object the windows came from
 * (etag, "" when none), else the whole READ is read again.
 */
static int ra_direct(struct backend_session *s, const char *key, uint8_t *buf,
		     size_t len, uint64_t off, size_t done, const char *etag,
		     size_t *got, char *src)
{
	struct s3_obj_info *o = src ? malloc(sizeof(*o)) : NULL;
	struct s3_sink sink = {.buf = buf + done, .cap = len - done};
	size_t more = 0;
	int rc;

	if (o)
		o->etag[0] = '\0';
	rc = s3_http_get_object(s->fs->http, key, off + done, len - done, &sink,
				etag[0] ? etag : NULL, &more, o);
	if (rc == -ESTALE && etag[0]) {
		sink = (struct s3_sink){.buf = buf, .cap = len};
		done = 0;
		if (o)
			o->etag[0] = '\0';
		rc = s3_http_get_object(s->fs->http, key, off, len, &sink, NULL,
					&more, o);
	}
	*got = done + more;
	if (!rc && o)
		snprintf(src, S3_ETAG_MAX, "%s", o->etag);
	free(o);
	return rc;
}

int s3b_ra_read(struct backend_session *s, uint64_t fh, const char *key,
		uint8_t *buf, size_t len, uint64_t off, size_t *got, char *src)
{
	struct s3b_ra *ra = ra_get(s, fh);
	char etag[S3_ETAG_MAX] = "";
	size_t done = 0;
	bool eof = false;

	if (ra) {
		pthread_mutex_lock(&ra->lock);
		if (strcmp(ra->key, key)) {
			ra_reset(ra); /* renamed, or unlinked while open */
			snprintf(ra->key, sizeof(ra->key), "%s", key);
		}
		/* the object changed through this broker: the windows go */
		if (ra->etag[0] &&
		    s3b_cache_get(s->b, key, ra->etag, NULL) != 1)
			ra_reset(ra);
		if (ra_note(ra, off, len) && ra->seq >= 2) {
			done = ra_serve(ra, buf, len, off, &eof);
			ra_top_up(ra, off + len);
		}
		if (done)
			memcpy(etag, ra->etag, sizeof(etag));
		pthread_mutex_unlock(&ra->lock);
		ra_put(ra);
	}
	if (done)
		stat_add(&stats.window_bytes, done);
	if (src)
		*src = '\0';
	if (done == len || eof) {
		*got = done;
		return 0;
	}
	stat_add(&stats.direct, 1);
	return ra_direct(s, key, buf, len, off, done, etag, got, src);
}
