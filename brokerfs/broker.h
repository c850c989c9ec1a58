/*
 * broker.h - the brokerfs daemon core, shared by its files.
 *
 * One event loop thread (loop.c) owns the listeners, every connection
 * (conn.c) and the session state (session.c).  Backend work, which may block
 * on the filesystem or the network, runs on a fixed pool of worker threads
 * (worker.c); a finished job comes back to the loop through a queue and an
 * eventfd, and only the loop ever writes to a socket.  Configuration comes
 * from the command line and an optional file (broker_config.c).
 *
 * Unless a comment says otherwise, a field is touched by the loop thread
 * only.
 */
#ifndef OCCFS_BROKER_H
#define OCCFS_BROKER_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "buf.h"
#include "proto.h"
#include "token.h"
#include "transport.h"

struct backend;
struct backend_ops;
struct backend_session;
struct conn;
struct session;

/* ---- configuration (broker_config.c) --------------------------------------
 */

#define BROKER_DEFAULT_LISTEN "unix:/run/occfs/broker.sock"
#define BROKER_DEFAULT_ROOT "/var/lib/occfs"
#define BROKER_DEFAULT_AUDIENCE "occfs"
#define BROKER_DEFAULT_INFLIGHT 64u
#define BROKER_DEFAULT_POLL_US 100u /* loop.c: busy-poll before sleeping */
#define BROKER_DEFAULT_CONNS 1024u
#define BROKER_DEFAULT_SOCKMODE 0660
#define BROKER_MAX_LISTEN 16
#define BROKER_DEFAULT_BACKEND "local"
#define BROKER_DEFAULT_STAGING "/var/lib/occfs-staging"
#define BROKER_DEFAULT_FLUSH_MS 2000u

/*
 * Settings of the s3 backend (brokerfs/backend_s3.c checks them at start).
 * Objects live at <bucket>/<prefix>/<filesystem_id>/<path>.
 */
struct broker_s3_config {
	char *endpoint; /* http(s)://host[:port] */
	char *region;	/* default us-east-1 */
	char *bucket, *prefix;
	char *addressing;	  /* "path" (default) or "virtual" */
	char *ca_file;		  /* extra CA bundle; TLS is always verified */
	char *credentials;	  /* root-only file: access_key, secret_key */
	char *sts_endpoint;	  /* AssumeRole per session when set */
	char *role_arn;		  /* the role STS grants, with sts_endpoint */
	char *proxy;		  /* HTTP CONNECT proxy (the egress edge) */
	unsigned memory_mib;	  /* parts and read-ahead in flight */
	unsigned part_mib;	  /* smallest multipart part */
	unsigned upload_threads;  /* parallel part uploads */
	unsigned retry_budget_ms; /* one request, all retries: then EIO */
	int rgw_quirks;		  /* Ceph radosgw precondition dialect */
};

struct broker_config {
	const char *config_file;
	char *listen[BROKER_MAX_LISTEN];
	size_t nlisten;
	char *root, *token_pubkey, *audience, *tls_cert, *tls_key, *pidfile;
	char *policy_dir;  /* --policy: filesystems come from there */
	char *backend;	   /* "local" or "s3" */
	char *staging_dir; /* s3: files being written, kept until uploaded */
	unsigned flush_timeout_ms; /* at shutdown, for pending uploads */
	struct broker_s3_config s3;
	char *audit_socket, *audit_spool, *audit_rw; /* broker_audit.c */
	/* From the policy's audit section (no options of their own): */
	char *audit_read, *audit_write; /* per-op modes over audit_rw */
	uint64_t audit_spool_max;	/* 0: the library's default */
	char *control_socket;		/* occfs-controld (broker_control.c) */
	unsigned workers, max_inflight, max_conns;
	unsigned poll_us; /* loop busy-polls this long before it sleeps */
	unsigned socket_mode;
	int foreground, verbose, check_only;
	int no_splice; /* READ payloads through memory (datapipe.h) */
	char *fuse_mountpoint, *fuse_fsid, *fuse_opts;
	enum token_intent fuse_intent;
	struct transport_ep eps[BROKER_MAX_LISTEN]; /* parsed listen[] */
};

/*
 * Parse argv and the -c file into cfg (command line wins) and validate.
 * Returns 0 to run, 1 when the program should exit 0 (--help), -1 after
 * printing why it cannot run.
 */
int broker_config_load(struct broker_config *cfg, int argc, char **argv);
/* -n: load keys and certificates, check the root; 0 when all is well. */
int broker_config_check(const struct broker_config *cfg);
void broker_config_cleanup(struct broker_config *cfg);

/* ---- the policy (broker_policy.c; brokerfs --policy) -----------------------
 */

struct broker_policy;

/* Where a session is served and with what quota (0: no limit). */
struct broker_session_target {
	const struct backend_ops *ops;
	struct backend *backend;
	uint64_t quota_bytes, quota_inodes;
	uint64_t idle_timeout_ms; /* 0: none */
	uint64_t max_lifetime_ms; /* 0: none */
};

/*
 * Load cfg->policy_dir; on problems print each as file:line:column:
 * message on stderr and return NULL.  Fills cfg->token_pubkey and
 * cfg->audience from the tokens section where the command line left them
 * unset (the audience then defaults to BROKER_DEFAULT_AUDIENCE).
 */
struct broker_policy *broker_policy_load(struct broker_config *cfg);
/* -n: check every filesystem entry's backend settings.  0 or -1. */
int broker_policy_check(struct broker_policy *bp);
/* After forking: start the s3 entries (they recover staged data). */
int broker_policy_start(struct broker_policy *bp);
/*
 * At session open, on a worker: the entry for c's filesystem_id, its
 * intents and handle lifetime, and its backend (started on first use).
 * 0, or -errno with a reason for the guest in why.
 */
int broker_policy_session(struct broker_policy *bp,
			  const struct token_claims *c,
			  struct broker_session_target *t, char *why,
			  size_t len);
/* The quota the policy in force gives fsid.  0, or -ENOENT (no entry). */
int broker_policy_quota(struct broker_policy *bp, const char *fsid,
			uint64_t *bytes, uint64_t *inodes);
/* SIGHUP, on the loop: 0, or -errno with the old policy kept (logged). */
int broker_policy_reload(struct broker_policy *bp);
/* Stop every instance within one flush window; objects left unflushed. */
int broker_policy_stop(struct broker_policy *bp, unsigned flush_ms);
void broker_policy_free(struct broker_policy *bp);

/* ---- worker pool (worker.c) ------------------------------------------------
 */

enum job_kind { JOB_REQUEST, JOB_OPEN, JOB_CLOSE };

/*
 * One unit of backend work.  The loop fills it, a worker runs j->run, the
 * loop consumes the result.  A job is in at most one of: the pool queue,
 * running on a worker, the done queue.
 */
struct job {
	struct job *next;	   /* pool queue or done queue: their locks */
	struct job *cnext, *cprev; /* the connection's job list: loop only */
	enum job_kind kind;
	struct conn *conn;
	struct session *sess;
	void (*run)(struct job *j); /* on a worker */
	int started;		    /* pool lock */
	int rc;			    /* result, set by run */
	int zstd;		    /* compress the reply frame */
	size_t expect;		    /* reply bytes reserved for it */
	struct proto_msg req;	    /* data may point into body */
	struct buf out;		    /* the framed reply, built by run */
	size_t sent;		    /* bytes of out a worker wrote itself */
	int cut;		    /* its frame was cut: close the stream */
	/* A READ payload that follows out's frame head (data_follows), when
	 * not in the thread's pipe (datapipe.h): owned, sent from here. */
	uint8_t *tail;
	size_t tail_len;
	uint8_t *frame; /* a big request's own input buffer */
	uint8_t body[]; /* else a copy of the request body */
};

struct worker_pool {
	pthread_mutex_t lock;
	pthread_cond_t cv;
	struct job *head, *tail; /* lock: waiting jobs */
	unsigned running;	 /* lock: jobs on a worker */
	int stop;		 /* lock */
	pthread_t *threads;
	unsigned nthreads;
	pthread_mutex_t done_lock;
	struct job *done_head, *done_tail; /* done_lock */
	int done_waking; /* done_lock: the eventfd was written, not reaped */
	int efd;	 /* eventfd: the done queue became non-empty */
	/* The loop thread only: jobs it ran itself, still to be finished. */
	struct job *inl_head, *inl_tail;
};

int worker_start(struct worker_pool *p, unsigned n);
void worker_submit(struct worker_pool *p, struct job *j);
void worker_run_inline(struct worker_pool *p, struct job *j);
/* Take j back if no worker has started it: 1 taken, 0 too late. */
int worker_cancel(struct worker_pool *p, struct job *j);
/* Everything finished so far, oldest first (drains the eventfd). */
struct job *worker_reap(struct worker_pool *p);
/* The same without touching the eventfd: the loop's own sweep. */
struct job *worker_reap_quiet(struct worker_pool *p);
/* The jobs worker_run_inline ran, oldest first (loop thread only). */
struct job *worker_reap_inline(struct worker_pool *p);
unsigned worker_busy(struct worker_pool *p); /* queued + running */
void worker_stop(struct worker_pool *p);     /* joins; queue must be empty */

/* ---- sessions (session.c) --------------------------------------------------
 */

struct session {
	const struct backend_ops *ops;
	struct backend_session *bs; /* set by session_open on a worker, then
				     * read-only while requests run */
	struct token_claims claims;
	int rdonly;
	char peer[96];
	char why[96]; /* set by a refused session_open: told to the guest */
	uint64_t requests; /* loop: requests dispatched, for the close log */
	/* Limits from the policy (0: none), set by session_open before the
	 * session is ready; times are wall-clock seconds like claims.exp. */
	uint64_t idle_timeout_ms, max_lifetime_ms;
	time_t opened;			 /* set by session_open */
	time_t last_active;		 /* loop: the last request dispatched */
	struct broker_audit_sess *audit; /* set at HELLO; NULL: not audited */
	/*
	 * Set on the loop by a destroy before the close is submitted: the
	 * close first drains the backend (backend_ops.session_drain) until
	 * drain_deadline_ms (CLOCK_MONOTONIC) and reports what was left.
	 */
	int drain;
	uint64_t drain_deadline_ms;
};

struct session *session_new(const struct backend_ops *ops,
			    const struct token_claims *c, const char *peer);
/*
 * Blocking.  With a policy (session_use_policy) the policy picks the
 * backend and b is unused.
 */
int session_open(struct session *s, struct backend *b);
/* brokerfs --policy: sessions are checked against bp (NULL: none). */
void session_use_policy(struct broker_policy *bp);
/* After a policy reload, on the loop: apply the new quota to s. */
void session_policy_changed(struct session *s);
/*
 * Loop timer: why s must be cut now (idle past the policy's idle_timeout,
 * or open past its max_lifetime), or NULL.
 */
const char *session_expired(const struct session *s, time_t now);
void session_close(struct session *s); /* blocking */
void session_free(struct session *s);
/* Would req change a read-only session?  0 or -EROFS. */
int session_check(const struct session *s, const struct proto_msg *req);
int session_dispatch(struct session *s, const struct proto_msg *req,
		     struct proto_msg *rep);

/* ---- the event loop (loop.c) ------------------------------------------------
 */

/* What an epoll event points at. */
enum loop_src_type {
	SRC_LISTENER,
	SRC_CONN,
	SRC_SIGNAL,
	SRC_TIMER,
	SRC_DONE,
	SRC_CONTROL /* broker_control.c */
};

struct loop_src {
	enum loop_src_type type;
};

struct broker_listener {
	struct loop_src src;
	struct transport_listener *l;
	struct transport_ep ep;
	int paused; /* accept failed for lack of descriptors */
};

struct broker {
	const struct broker_config *cfg;
	struct token_key *pubkey; /* NULL when only the internal mount runs */
	struct broker_policy *policy;	/* --policy, else NULL */
	const struct backend_ops *bops; /* the backend sessions are served by */
	struct backend *backend;	/* started before the loop runs */
	int epfd;
	struct loop_src sig_src, timer_src, done_src;
	int sigfd, timerfd;
	struct broker_listener ls[BROKER_MAX_LISTEN];
	size_t nls;
	struct worker_pool pool;
	struct conn *conns; /* every connection, closed ones until freed */
	unsigned nconns;    /* open connections, against max_conns */
	uint64_t next_id;
	int stopping;
	time_t stop_deadline;
	int forced;	       /* drain deadline passed, connections cut */
	int abandoned;	       /* gave up waiting for workers */
	int limit_warned;      /* max_conns warning given this second */
	unsigned poll_misses;  /* polls in a row that found nothing */
	unsigned poll_pause;   /* sleeps left before polling again */
	void (*on_stop)(void); /* called once when shutdown starts */
};

/* Open every listener (before daemonizing).  Prints and returns -1 on error. */
int broker_listen(struct broker *b, const struct broker_config *cfg);
/* Workers, signals, epoll; after daemonizing.  0 or -errno. */
int broker_init(struct broker *b, struct token_key *pubkey);
/* Run until SIGTERM/SIGINT and a drained shutdown.  Returns 0. */
int broker_run(struct broker *b);
void broker_cleanup(struct broker *b);
/* Start the drained shutdown, as SIGTERM does. */
void broker_stop(struct broker *b, const char *why);
/* epoll registration for a connection; events EPOLLIN/EPOLLOUT mask. */
int broker_watch(struct broker *b, int fd, struct loop_src *src, uint32_t ev,
		 int add);
void broker_unwatch(struct broker *b, int fd);
/*
 * Push SESSION_REVOKED to every connection of session sid and close them
 * once it is flushed.  Returns the number of connections cut.
 */
unsigned broker_revoke(struct broker *b, const char *sid, const char *reason);

/* ---- connections (conn.c, conn_out.c, conn_req.c) ------------------------
 */

enum conn_state {
	CONN_HANDSHAKE, /* TLS handshake in progress */
	CONN_HELLO,	/* waiting for HELLO */
	CONN_OPENING,	/* HELLO accepted, session opening on a worker */
	CONN_READY,
	CONN_CLOSED /* socket gone; waiting for jobs and the session close */
};

struct outchunk {
	struct outchunk *next;
	uint8_t *p;
	size_t len, off;
};

struct conn {
	struct loop_src src;
	struct broker *b;
	struct conn *next, *prev; /* b->conns */
	uint64_t id;
	struct transport_conn *tc;
	int fd;
	char peer[96];
	int internal; /* created by the broker itself: HELLO needs no handle */
	struct token_claims internal_claims;
	enum conn_state state;
	time_t created;
	struct buf in, scratch;
	struct outchunk *out_head, *out_tail;
	size_t out_bytes;
	size_t expect_bytes; /* replies in flight may bring this much more */
	uint32_t features, max_payload;
	int zstd; /* ZSTD negotiated and the HELLO reply is out */
	struct session *sess;
	int sess_closing;
	struct job *jobs;  /* requests queued or running */
	unsigned inflight; /* requests counted against max_inflight */
	unsigned refs;	   /* jobs of any kind pointing at this conn */
	unsigned bad;	   /* malformed messages so far */
	uint32_t events;   /* current epoll mask */
	int reading;	   /* inside conn_read: no re-entry */
	int close_after_flush;
	/*
	 * Replies written by the thread that ran the job (worker_reply):
	 * olock serialises every write on fd between the loop and workers.
	 */
	pthread_mutex_t olock;
	int plain;   /* no TLS: any thread may send() whole frames on fd */
	int direct;  /* olock: nothing queued, workers may write now */
	int partial; /* olock: a worker wrote part of a frame, the loop
			must send its rest before anything else */
	/* Atomic, set by the loop: not read (max_inflight reached), so a
	 * finished job must wake the loop (worker_complete). */
	int rd_paused;
};

struct conn *conn_new(struct broker *b, struct transport_conn *tc,
		      int internal);
void conn_event(struct conn *c, uint32_t events);
void conn_job_done(struct conn *c, struct job *j);
/* Any thread running j: make its reply the error err (a positive errno). */
void conn_frame_error(struct job *j, int err);
/* Push SESSION_REVOKED and close after flushing. */
void conn_revoke(struct conn *c, const char *reason);
/* Broker shutdown: stop reading; close now if nothing is outstanding. */
void conn_drain(struct conn *c);
int conn_idle(const struct conn *c); /* nothing in flight, nothing queued */
void conn_close(struct conn *c);
/* Free closed connections whose jobs and session are all gone. */
void conn_reap(struct broker *b);
/* Timer: close connections stuck before HELLO for too long. */
void conn_tick(struct conn *c, time_t now);
/* The trusted internal connection for --fuse (one end of a socketpair). */
struct conn *conn_new_internal(struct broker *b, int fd, const char *fsid,
			       enum token_intent intent);

/* ---- the local FUSE mount (fuse_local.c) ------------------------------------
 */

/* Start the mount thread over fd (the client end).  0 or -errno. */
int fuse_local_start(const struct broker_config *cfg, int fd,
		     int (*ready)(int ok, const char *msg));
/* Shutdown started: detach the mount (never blocks). */
void fuse_local_stop(void);
/* After the loop ended: wait (bounded) for the mount thread. */
void fuse_local_join(void);

#endif
