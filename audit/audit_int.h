/*
 * audit_int.h - what the emitter's modules share and tests may call:
 * the OCSF serialiser (audit_ocsf.c), the spool (audit_spool.c), the
 * aggregation table (audit_agg.c) and the sender (audit_send.c).
 */
#ifndef OCCFS_AUDIT_INT_H
#define OCCFS_AUDIT_INT_H

#include "audit.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* Per-event metadata the emitter fills in. */
struct audit_meta {
	const char *product;  /* emitting component */
	const char *hostname; /* device.hostname */
	const char *instance; /* random id of this emitter instance */
	uint64_t seq;	      /* per-emitter sequence number */
	uint64_t time_ms;
	const char *trace_id;
};

/* What aggregation or sampling adds to a file event. */
struct audit_file_extra {
	uint64_t count;	   /* calls folded in; 0 = a single event */
	uint64_t start_ms; /* first and last call in the window */
	uint64_t end_ms;
	unsigned sample_n; /* kept one in sample_n; 0 = not sampled */
};

/* Each returns a malloc'd compact JSON object, or NULL (ENOMEM). */
char *audit_ocsf_file(const struct audit_meta *m,
		      const struct audit_file_event *ev,
		      const struct audit_file_extra *x);
char *audit_ocsf_auth(const struct audit_meta *m,
		      const struct audit_auth_event *ev);
char *audit_ocsf_api(const struct audit_meta *m,
		     const struct audit_api_event *ev);
char *audit_ocsf_finding(const struct audit_meta *m,
			 const struct audit_finding_event *ev);
char *audit_ocsf_dropped(const struct audit_meta *m, uint64_t dropped,
			 const char *spool_dir);
int audit_ocsf_op_activity(enum audit_file_op op);
int audit_ocsf_op_aggregatable(enum audit_file_op op);

/* ---- spool: numbered segment files of wire frames ---------------------- */
#define AUDIT_SPOOL_STALE 8

struct audit_spool {
	char *dir;
	int dirfd;
	int lockfd;	  /* flock: one emitter per spool */
	int ackfd;	  /* "rseg roff" of the sender */
	uint64_t max;	  /* bound on bytes held */
	uint64_t seg_max; /* the writer moves on past this */
	uint64_t used;	  /* bytes in all segment files */
	uint64_t wseg;	  /* writer segment number */
	int wfd;
	uint64_t wsize;
	int dir_dirty; /* a segment was created since the last fsync */
	int stale[AUDIT_SPOOL_STALE]; /* closed writers awaiting fsync */
	size_t nstale;
	uint64_t rseg, roff; /* first byte not yet acknowledged */
};

int audit_spool_open(struct audit_spool *s, const char *dir, uint64_t max);
void audit_spool_close(struct audit_spool *s);
/* Append one frame if used + len stays within limit: 0, -ENOSPC, -errno. */
int audit_spool_append(struct audit_spool *s, const void *json, size_t len,
		       uint64_t limit);
int audit_spool_rotate(struct audit_spool *s);
/* Take fds to fsync outside the lock: fds[0] = a dup of the writer. */
size_t audit_spool_take_sync(struct audit_spool *s, int *fds, size_t max,
			     int *dirfd);
void audit_spool_save_ack(struct audit_spool *s);
char *audit_spool_path(const struct audit_spool *s, uint64_t seg);

/* ---- the emitter ----------------------------------------------------- */
#define AUDIT_AGG_SLOTS 256

struct audit_agg_entry {
	int used;
	struct audit_file_event ev; /* strings point into the buffers below */
	uint64_t count, bytes, start_ms, end_ms;
	char sid[128], fsid[128], intent[32], user[64], peer[128];
	char path[1024], trace[AUDIT_TRACE_LEN + 1];
};

struct audit {
	struct audit_config cfg; /* strings owned below */
	char *spool_dir, *socket_path, *product;
	char hostname[256];
	char instance[17];

	pthread_mutex_t lock; /* protects spool, stats, the flags below */
	struct audit_spool spool;
	struct audit_stats st;
	uint64_t unsynced;     /* records since the last fsync */
	uint64_t drop_pending; /* drops not yet reported */
	int stopping;
	pthread_cond_t wake_send; /* new records or stopping */
	pthread_cond_t wake_sync; /* fsync_events reached or stopping */
	pthread_cond_t delivered; /* the sender moved forward */
	pthread_t sync_thread, send_thread;
	int threads;

	_Atomic uint64_t seq;
	_Atomic uint64_t sample_ctr[AUDIT_OP_COUNT];

	pthread_mutex_t agg_lock; /* protects agg; taken before lock */
	struct audit_agg_entry agg[AUDIT_AGG_SLOTS];
};

void audit_meta_fill(struct audit *a, struct audit_meta *m,
		     const struct audit_common *c, char *trace_buf);
uint64_t audit_now_ms(void);
/* Format-and-append of one file event (no sampling, no aggregation). */
int audit_put_file(struct audit *a, const struct audit_file_event *ev,
		   const struct audit_file_extra *x);

/* 1 = folded into the table, 0 = caller emits it itself, <0 = error. */
int audit_agg_add(struct audit *a, const struct audit_file_event *ev);
/* Emit entries whose window has passed (all of them if force). */
void audit_agg_flush(struct audit *a, int force);

void *audit_send_main(void *arg);

#endif
