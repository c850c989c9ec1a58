/*
 * s3b_store_retry.c - background uploads of the staging store.
 *
 * A stage can be dirty with nobody to flush it: its upload failed at the
 * guest's fsync or close (S3 down, a budget spent), or its last open file
 * went away without a close (session close leaves it to this thread, so
 * a session's end never waits on S3).  One store thread flushes such
 * stages, one at a time, oldest chance first: each failed upload pushes
 * the stage's next try back (retry_ms, doubling up to S3B_RETRY_MAX_MS;
 * s3b_upload.c keeps the count), so an outage costs one request per stage
 * per minute.  A stage still held by an open file is flushed here only
 * after a failed upload: its data is then what the guest tried to sync.
 * Each upload made here is bracketed by cfg.upload_begin and upload_end,
 * so the owner keeps its metadata copies of the key away meanwhile and
 * its metadata cache learns the new ETag.  See doc/staging.md.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "s3b_stage_int.h"

#define RETRY_TICK_MS 1000

/* A dirty stage due for a try, with a reference; NULL when none is. */
static struct s3b_stage *retry_pick(struct s3b_store *st, uint64_t now)
{
	struct s3b_stage *pick = NULL;

	pthread_mutex_lock(&st->table_lock);
	for (size_t i = 0; i < S3B_TABLE && !pick; i++)
		for (struct s3b_stage *sg = st->table[i]; sg && !pick;
		     sg = sg->next) {
			bool due;

			pthread_mutex_lock(&sg->lock);
			due = s3b_stage_dirty_locked(sg) && !sg->busy &&
			      sg->http && (!sg->refs || sg->fails) &&
			      sg->retry_at <= now;
			pthread_mutex_unlock(&sg->lock);
			if (due) {
				sg->refs++;
				pick = sg;
			}
		}
	pthread_mutex_unlock(&st->table_lock);
	return pick;
}

static void retry_one(struct s3b_store *st, struct s3b_stage *sg)
{
	char etag[S3_ETAG_MAX] = "";
	uint64_t cookie = 0;
	int ret = 0;

	if (st->cfg.upload_begin)
		ret = st->cfg.upload_begin(st->cfg.upload_arg, sg->key, sg,
					   &cookie);
	if (ret)
		return; /* retried at the next tick */
	ret = s3b_stage_flush(sg, etag);
	if (ret)
		log_info("stage %s: background upload failed: %s; retried "
			 "later",
			 sg->key, strerror(-ret));
	else
		log_info("stage %s: uploaded in the background", sg->key);
	if (st->cfg.upload_end)
		st->cfg.upload_end(st->cfg.upload_arg, sg->key, cookie, ret,
				   etag, s3b_stage_size(sg));
}

static void retry_wait(struct s3b_store *st)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += RETRY_TICK_MS / 1000;
	if (!st->retry_kick && !st->retry_stop)
		pthread_cond_timedwait(&st->retry_cv, &st->retry_lock, &ts);
	st->retry_kick = false;
}

static void *retry_main(void *arg)
{
	struct s3b_store *st = arg;
	struct s3b_stage *sg;

	pthread_mutex_lock(&st->retry_lock);
	while (!st->retry_stop) {
		retry_wait(st);
		while (!st->retry_stop && (sg = retry_pick(st, s3b_now_ms()))) {
			st->retry_busy = true;
			pthread_mutex_unlock(&st->retry_lock);
			retry_one(st, sg);
			s3b_stage_put(sg);
			pthread_mutex_lock(&st->retry_lock);
			st->retry_busy = false;
			pthread_cond_broadcast(&st->retry_cv);
		}
	}
	st->retry_on = false;
	pthread_cond_broadcast(&st->retry_cv);
	pthread_mutex_unlock(&st->retry_lock);
	return NULL;
}

int s3b_store_retry_start(struct s3b_store *st)
{
	int rc = 0;

	if (!st->cfg.retry_ms)
		return 0;
	pthread_mutex_lock(&st->retry_lock);
	if (!st->retry_started) {
		st->retry_stop = false;
		st->retry_on = true;
		rc = -pthread_create(&st->retry_thread, NULL, retry_main, st);
		st->retry_on = st->retry_started = !rc;
	}
	pthread_mutex_unlock(&st->retry_lock);
	return rc;
}

void s3b_store_retry_kick(struct s3b_store *st)
{
	pthread_mutex_lock(&st->retry_lock);
	st->retry_kick = true;
	pthread_cond_broadcast(&st->retry_cv);
	pthread_mutex_unlock(&st->retry_lock);
}

/* retry_lock held: wait on retry_cv until deadline_ms at the latest. */
static void retry_wait_until(struct s3b_store *st, uint64_t deadline_ms)
{
	uint64_t now = s3b_now_ms(), left;
	struct timespec ts;

	left = deadline_ms - now < 3600000 ? deadline_ms - now : 3600000;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += (time_t)(left / 1000);
	ts.tv_nsec += (long)(left % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_cond_timedwait(&st->retry_cv, &st->retry_lock, &ts);
}

int s3b_store_retry_stop(struct s3b_store *st, uint64_t deadline_ms)
{
	bool join;

	pthread_mutex_lock(&st->retry_lock);
	if (!st->retry_started) {
		pthread_mutex_unlock(&st->retry_lock);
		return 0;
	}
	st->retry_stop = true;
	pthread_cond_broadcast(&st->retry_cv);
	while (st->retry_on && s3b_now_ms() < deadline_ms)
		retry_wait_until(st, deadline_ms);
	join = !st->retry_on;
	st->retry_started = false;
	pthread_mutex_unlock(&st->retry_lock);
	if (!join) {
		/* in a request to a stalled S3: the process's exit ends it */
		pthread_detach(st->retry_thread);
		return -EBUSY;
	}
	pthread_join(st->retry_thread, NULL);
	return 0;
}

bool s3b_store_idle(struct s3b_store *st)
{
	bool idle;

	pthread_mutex_lock(&st->retry_lock);
	idle = !st->retry_busy;
	pthread_mutex_unlock(&st->retry_lock);
	pthread_mutex_lock(&st->pool_lock);
	idle = idle && !st->flushers;
	pthread_mutex_unlock(&st->pool_lock);
	pthread_mutex_lock(&st->table_lock);
	for (size_t i = 0; i < S3B_TABLE && idle; i++)
		for (struct s3b_stage *sg = st->table[i]; sg && idle;
		     sg = sg->next) {
			pthread_mutex_lock(&sg->lock);
			idle = !sg->busy;
			pthread_mutex_unlock(&sg->lock);
		}
	pthread_mutex_unlock(&st->table_lock);
	return idle;
}
