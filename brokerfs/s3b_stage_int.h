/*
 * s3b_stage_int.h - what the staging modules (s3b_store.c, s3b_stage.c,
 * s3b_stage_mf.c, s3b_upload.c) share and nothing else sees.
 *
 * Lock order: store->table_lock, then a stage's lock; store->pool_lock and
 * store->budget_lock are leaves.  A stage's lock is never held across a
 * network request: long operations (fetch, upload, rename) set a flag under
 * the lock, drop it, and the fields they need stay fixed because writers
 * wait for the flag.
 */
#ifndef OCCFS_S3B_STAGE_INT_H
#define OCCFS_S3B_STAGE_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "dlp_scan.h"
#include "s3b_stage.h"

#define S3B_BLOCK (1u << 20) /* lazy-fetch and dirty-tracking unit */
#define S3B_MiB (1ull << 20)
#define S3B_COPY_MAX (5ull << 30) /* the most one CopyObject takes */
#define S3B_MAX_PARTS 10000
#define S3B_ID_LEN 16	       /* hex characters of a stage's file name */
#define S3B_TABLE 1024	       /* hash buckets of the stage table */
#define S3B_MF_MAX (64u << 20) /* largest manifest we will read */
#define S3B_MF_PAGE 4096       /* manifests up to this are overwritten */
#define S3B_SPARES 32	       /* file pairs kept for new stages */

/* A set of block numbers: one bit each, grown on demand. */
struct s3b_bits {
	uint64_t *w;
	size_t nw; /* words allocated */
};

struct s3b_stage {
	struct s3b_store *st;
	struct s3b_stage *next; /* hash chain; table_lock */
	unsigned refs;		/* table_lock */
	bool in_table;		/* table_lock */
	char id[S3B_ID_LEN + 1];
	int fd; /* data file, fixed for the stage's life */

	pthread_mutex_t lock;
	pthread_cond_t cv; /* busy, fetching bits, nfetch changed */
	/* Everything below: lock. */
	struct s3_http *http;
	char *fsid, *key;
	char etag[S3_ETAG_MAX]; /* of the base, "" when there is none */
	uint64_t base_size;	/* size of the base object */
	uint64_t base_limit;	/* base bytes below this are still ours */
	uint64_t size;		/* == size of the data file */
	struct s3b_bits present, dirty, fetching;
	unsigned nfetch; /* ranged GETs in flight */
	struct s3_kv *meta;
	size_t nmeta;
	bool meta_dirty;
	bool changed;	   /* data or size differ from the base */
	bool busy;	   /* upload or rename in progress: writers wait */
	unsigned fails;	   /* lock: failed uploads in a row */
	uint64_t retry_at; /* lock: no background upload before (ms) */
	bool discarded;
	bool quarantined; /* DLP blocked it: no reads, writes or uploads */
	bool dlp_skip;	  /* released from quarantine: upload unscanned */
	/*
	 * The ETag the object has if an upload that failed ambiguously (it
	 * may have been applied) landed after all; the next flush checks it
	 * before uploading again.  Cleared by any change to the stage.
	 */
	char landed[S3_ETAG_MAX];
	/*
	 * The manifest as this process last wrote it (s3b_stage_mf.c):
	 * length of <id>.mf (0 = unknown: replace it by rename), length and
	 * sum of its content.  An unchanged manifest is not written again.
	 */
	uint32_t mf_flen, mf_clen;
	uint64_t mf_sum;
	struct s3b_stage_stats stats;
	struct dlp_scan_result dlp; /* the last scan's; fixed while busy */
	/*
	 * The session that changed the data or size (s3b_stage_note_writer),
	 * and whether another did too: that session's guest page cache then
	 * holds the uploaded bytes (the open-file keep-cache rule, s3.md).
	 */
	const void *writer;
	bool writers_many;
};

struct s3b_job;

struct s3b_store {
	struct s3b_store_config cfg;
	int dirfd;

	pthread_mutex_t table_lock;
	struct s3b_stage *table[S3B_TABLE]; /* table_lock */

	pthread_mutex_t budget_lock;
	pthread_cond_t budget_cv;
	uint64_t budget_used, budget_peak; /* budget_lock */

	pthread_mutex_t pool_lock;
	pthread_cond_t pool_cv;
	struct s3b_job *jobs, *jobs_tail; /* pool_lock */
	bool stopping;			  /* pool_lock */
	bool cancel;			  /* pool_lock: deadline passed */
	pthread_cond_t done_cv;		  /* a job or a flusher finished */
	unsigned flushers;		  /* pool_lock: flush_all threads */

	pthread_mutex_t retry_lock;
	pthread_cond_t retry_cv;
	bool retry_started;		       /* retry_lock: to join */
	bool retry_on, retry_stop, retry_kick; /* retry_lock */
	bool retry_busy;		       /* retry_lock: in an upload */
	pthread_t retry_thread;
	pthread_t *threads;
	unsigned nthreads;

	/*
	 * Files of removed clean stages, kept in spare/ for new stages
	 * (s3b_store.c): on ext4 a new inode costs far more than a rename.
	 */
	pthread_mutex_t spare_lock; /* a leaf */
	int sparefd;		    /* spare/, or -1: no spares */
	struct s3b_spare {
		int fd;		     /* the data file, open */
		uint32_t mf_len;     /* the manifest's length */
		unsigned n;	     /* names spare/<n>.data, spare/<n>.mf */
	} spares[S3B_SPARES];	     /* spare_lock */
	unsigned nspares, spare_seq; /* spare_lock */
};

/* bits */
bool s3b_bit(const struct s3b_bits *b, uint64_t i);
int s3b_bit_set(struct s3b_bits *b, uint64_t i);
/* Grow b so that bit i exists, changing no bit; 0 or -ENOMEM. */
int s3b_bits_reserve(struct s3b_bits *b, uint64_t i);
void s3b_bit_clear(struct s3b_bits *b, uint64_t i);
void s3b_bits_clear_from(struct s3b_bits *b, uint64_t i);
bool s3b_bits_any(const struct s3b_bits *b, uint64_t from, uint64_t to);
void s3b_bits_free(struct s3b_bits *b);

/* s3b_stage_mf.c: the manifest */
int s3b_mf_write(struct s3b_stage *sg, bool sync);
/*
 * Write the stage's first manifest into the spare file name in dirfd (flen
 * bytes long, its old content) and rename it to <id>.mf; -errno (nothing
 * renamed) when that cannot be done.
 */
int s3b_mf_adopt(struct s3b_stage *sg, int dirfd, const char *name,
		 uint32_t flen);
int s3b_mf_parse(const char *text, size_t len, struct s3b_stage *sg);
int s3b_mf_name(char *out, size_t n, const char *id, const char *suffix);
int s3b_meta_copy(const struct s3_kv *in, size_t n, struct s3_kv **out);
void s3b_meta_free(struct s3_kv *m, size_t n);

/* s3b_stage.c */
struct s3b_stage *s3b_stage_alloc(struct s3b_store *st);
void s3b_stage_free(struct s3b_stage *sg);
int s3b_stage_ensure(struct s3b_stage *sg, uint64_t from, uint64_t to);
bool s3b_stage_dirty_locked(const struct s3b_stage *sg);

/* s3b_store.c */
void s3b_store_insert(struct s3b_store *st, struct s3b_stage *sg);
struct s3b_stage *s3b_store_find(struct s3b_store *st, const char *fsid,
				 const char *key);
void s3b_store_remove(struct s3b_store *st, struct s3b_stage *sg);
void s3b_store_rehash(struct s3b_store *st, struct s3b_stage *sg,
		      const char *fsid, const char *key);
void s3b_store_unlink(struct s3b_store *st, const char *id);
/* A clean stage is gone: keep its files as spares or unlink them. */
void s3b_store_retire(struct s3b_store *st, struct s3b_stage *sg);
uint64_t s3b_now_ms(void);

/* s3b_stage_dlp.c: DLP before upload (busy set, lock not held) */
int s3b_dlp_scan(struct s3b_stage *sg);
void s3b_dlp_quarantine(struct s3b_stage *sg);

/* s3b_upload.c */
uint64_t s3b_part_size(uint64_t size, uint64_t min_part);
int s3b_upload(struct s3b_stage *sg, char etag[S3_ETAG_MAX]);
int s3b_pool_start(struct s3b_store *st);
void s3b_pool_stop(struct s3b_store *st);

#endif
