/*
 * s3b_stage.h - the S3 backend's write path: staged objects.
 *
 * A stage is the broker's on-disk working copy of one object that a guest
 * is writing.  Random writes, appends and truncation happen on the local
 * file; the object in S3 changes only when the stage is flushed (the guest's
 * fsync or close, a size threshold, shutdown).  A stage starts from the
 * object's current version (the "base": key, ETag, size) and fetches base
 * bytes lazily, one block at a time, only where a read or a partial write
 * needs them.  At flush the stage uploads: one PUT for small objects,
 * otherwise multipart with parallel parts whose size grows with the object
 * (so 10,000 parts always suffice), copying parts that were not touched
 * from the base server-side (UploadPartCopy), so a small change to a large
 * file moves only the changed parts through the broker.  Every upload
 * carries a SHA-256 payload hash that S3 verifies, and is conditional on
 * the base ETag, so a second writer is detected (-ESTALE), never
 * overwritten.
 *
 * Durability: a stage's data and a small manifest (key, base ETag, size,
 * which blocks are present and dirty, the metadata to upload) live in the
 * store's directory until an upload succeeds; nothing dirty is ever
 * evicted.  After a crash or a stop that ran out of time,
 * s3b_store_recover() uploads what it finds there.
 *
 * Locking: every function is safe to call from several threads; a stage
 * has its own lock, and writes to a stage wait while that stage uploads.
 * Functions return 0 or -errno.  Upload failures are returned by
 * s3b_stage_flush and the data stays staged, so the next flush retries.
 */
#ifndef OCCFS_S3B_STAGE_H
#define OCCFS_S3B_STAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "s3_http.h"

struct s3b_store;
struct s3b_stage;

struct s3b_store_config {
	const char *dir;	 /* created 0700 if missing; must be ours */
	unsigned upload_threads; /* parallel parts per broker; 0 = 4 */
	uint64_t mem_budget; /* bytes of part buffers at once; 0 = 256 MiB */
	uint64_t min_part;   /* smallest part, >= 5 MiB; 0 = 8 MiB */
	uint64_t multipart_above; /* single PUT up to this; 0 = 2 * min_part */
	bool rgw_quirks;	  /* as in struct s3_http_config */
	/*
	 * Background uploads (s3b_store_retry.c): a dirty stage nobody holds,
	 * or one whose upload failed, is flushed by a store thread, retried
	 * after retry_ms, doubling up to S3B_RETRY_MAX_MS.  0 = off.
	 */
	unsigned retry_ms;
	/*
	 * Around every upload the store makes by itself (both may be NULL):
	 * upload_begin before it, so the owner can keep its other writes of
	 * the key away and put pending metadata into the stage (non-zero:
	 * not now, tried again later); upload_end after it, with the cookie
	 * upload_begin set and the result (0 and the new ETag and size, or
	 * -errno).
	 */
	int (*upload_begin)(void *arg, const char *key, struct s3b_stage *sg,
			    uint64_t *cookie);
	void (*upload_end)(void *arg, const char *key, uint64_t cookie, int rc,
			   const char *etag, uint64_t size);
	void *upload_arg;
};

#define S3B_RETRY_MAX_MS 60000

int s3b_store_open(const struct s3b_store_config *cfg, struct s3b_store **out);
/* All stages must be released (s3b_stage_put) first.  Dirty files stay. */
void s3b_store_close(struct s3b_store *st);

/*
 * The memory budget shared by part uploads and the backend's read-ahead:
 * take n bytes (waits while the budget is spent, so many writers slow down
 * instead of growing the broker), give them back.  A request larger than
 * the whole budget is granted once nothing else holds any.
 */
void s3b_budget_take(struct s3b_store *st, uint64_t n);
void s3b_budget_give(struct s3b_store *st, uint64_t n);
/*
 * Take n bytes only if that leaves at least half the budget free, without
 * waiting (read-ahead: it shrinks under pressure instead of holding back
 * the uploads that wait in s3b_budget_take).  true when taken.
 */
bool s3b_budget_try_take(struct s3b_store *st, uint64_t n);

/* The object a stage starts from; etag NULL (or "") when it is new. */
struct s3b_base {
	const char *key; /* full object key, <prefix>/<fsid>/<path> */
	const char *etag;
	uint64_t size;
};

/*
 * Get the stage of base->key in session fsid, creating it (empty, nothing
 * fetched yet) when there is none; an existing stage of that key is
 * returned with one more reference and base is ignored.  http is the
 * session's client and is used for every fetch and upload of this stage
 * (s3b_stage_set_http replaces it, e.g. after a credential refresh made a
 * new client).
 */
int s3b_stage_get(struct s3b_store *st, struct s3_http *http, const char *fsid,
		  const struct s3b_base *base, struct s3b_stage **out);
/*
 * The stage of key in fsid if the store holds one (open, or left dirty by
 * a failed upload), with one more reference; -ENOENT when there is none.
 * No network: staged bytes stay readable while S3 is unreachable.
 */
int s3b_stage_lookup(struct s3b_store *st, const char *fsid, const char *key,
		     struct s3b_stage **out);
/* Drop a reference.  A clean stage with no references is removed. */
void s3b_stage_put(struct s3b_stage *sg);
void s3b_stage_set_http(struct s3b_stage *sg, struct s3_http *http);

/* Reads see staged writes; bytes never written come from the base. */
int s3b_stage_read(struct s3b_stage *sg, void *buf, size_t len, uint64_t off,
		   size_t *got);
int s3b_stage_write(struct s3b_stage *sg, const void *buf, size_t len,
		    uint64_t off);
int s3b_stage_truncate(struct s3b_stage *sg, uint64_t size);
uint64_t s3b_stage_size(struct s3b_stage *sg);
/* Something not yet in S3: data, size or metadata. */
bool s3b_stage_dirty(struct s3b_stage *sg);
/* Session who (opaque) changes the data or size now. */
void s3b_stage_note_writer(struct s3b_stage *sg, const void *who);
/*
 * Whether who is the only session that ever changed sg's data or size;
 * base receives the ETag of the stage's base ("" when none).
 */
bool s3b_stage_sole_writer(struct s3b_stage *sg, const void *who,
			   char base[S3_ETAG_MAX]);

/*
 * The x-amz-meta-* headers (names without the prefix) the next upload
 * sends; kept in the manifest so a recovery upload sends them too.  Marks
 * the stage dirty.
 */
int s3b_stage_set_meta(struct s3b_stage *sg, const struct s3_kv *meta,
		       size_t nmeta);
/* The object was renamed (server-side) while staged: upload to key now. */
int s3b_stage_set_key(struct s3b_stage *sg, const char *key, const char *etag);

/*
 * Upload if dirty and wait until the object in S3 has these bytes.  On
 * success the stage is clean, its base is the new version and etag (may be
 * NULL) receives the new ETag.  -ESTALE: the object changed under us (a
 * second writer); the data stays staged.  Other errors as s3_http gives
 * them, data kept.
 */
int s3b_stage_flush(struct s3b_stage *sg, char etag[S3_ETAG_MAX]);
/* The file was deleted: drop staged data, upload nothing. */
void s3b_stage_discard(struct s3b_stage *sg);
/*
 * The same for whatever stage the store holds for key in fsid, also one
 * that no open file holds any more (left dirty by a failed upload), which
 * the background uploader would otherwise bring back after the delete.
 */
void s3b_store_discard_key(struct s3b_store *st, const char *fsid,
			   const char *key);

/*
 * Shutdown: flush every dirty stage, giving up at deadline_ms
 * (CLOCK_MONOTONIC milliseconds).  Returns how many stayed dirty (each is
 * logged with its key and why).
 */
int s3b_store_flush_all(struct s3b_store *st, uint64_t deadline_ms);

/*
 * Start-up: upload what a previous run left in the store's directory.
 * client(arg, fsid) gives the client for a filesystem (NULL: skip it,
 * kept for later).  Returns how many objects could not be uploaded (kept
 * and logged), or -errno when the directory cannot be read.
 */
int s3b_store_recover(struct s3b_store *st,
		      struct s3_http *(*client)(void *arg, const char *fsid),
		      void *arg);

/*
 * Counters of one stage since it was opened (for tests and logs): what was
 * fetched from the base and how the uploads went up.
 */
struct s3b_stage_stats {
	uint64_t fetches;	/* ranged GETs of the base */
	uint64_t fetch_bytes;	/* bytes they brought */
	uint64_t uploads;	/* successful flushes that sent something */
	uint64_t puts;		/* single PutObject uploads */
	uint64_t multiparts;	/* multipart uploads completed */
	uint64_t part_puts;	/* UploadPart requests that succeeded */
	uint64_t part_copies;	/* UploadPartCopy requests that succeeded */
	uint64_t header_copies; /* CopyObject onto itself: headers only */
	uint64_t upload_bytes;	/* bytes sent by PUT and UploadPart */
};
void s3b_stage_get_stats(struct s3b_stage *sg, struct s3b_stage_stats *out);

/*
 * Background uploads: start the thread (a no-op with retry_ms 0); wake it
 * now (a stage was left dirty); stop it, waiting at most until deadline_ms
 * (CLOCK_MONOTONIC) for an upload it is in: -EBUSY when it is still in one
 * (the thread is then left to the process's exit).
 */
int s3b_store_retry_start(struct s3b_store *st);
void s3b_store_retry_kick(struct s3b_store *st);
int s3b_store_retry_stop(struct s3b_store *st, uint64_t deadline_ms);
/* No upload running (s3b_store_close would not wait for a request). */
bool s3b_store_idle(struct s3b_store *st);

/* The most budget bytes ever held at once, and those held now. */
void s3b_budget_stats(struct s3b_store *st, uint64_t *peak, uint64_t *used);

/*
 * A client is about to be freed: every stage using it forgets it (dirty
 * ones stay staged; they flush again once s3b_stage_get or
 * s3b_stage_set_http gives them a client).  A stage keeps its client
 * pointer even with no references while it is dirty, so the owner of a
 * client calls this before s3_http_free.
 */
void s3b_store_forget_http(struct s3b_store *st, struct s3_http *http);

#endif
