/*
 * backend.h - what the broker core asks of a storage backend.
 *
 * A backend serves sessions; each session is one filesystem_id.  The core
 * calls dispatch from several worker threads at once for the same session,
 * so backends lock their own state.  dispatch fills rep's schema fields for
 * req->op and returns 0, or returns -errno (the core turns it into an error
 * reply).  Read-only sessions never reach a backend with an OPF_MUTATES op.
 */
#ifndef OCCFS_BACKEND_H
#define OCCFS_BACKEND_H

#include <stdbool.h>
#include <stdint.h>

struct proto_msg;
struct broker_config;
struct backend;		/* a started backend: each backend defines it */
struct backend_session; /* one filesystem_id served: likewise */

#define BACKEND_SESSION_RDONLY 0x1u

/*
 * What the broker tells a backend about a new session beyond its
 * filesystem_id (brokerfs --policy: the filesystem entry's quota).  Usage
 * is counted per filesystem_id and shared by every session of that
 * filesystem_id in one started backend; a quota of 0 is no limit.
 * Exceeding quota_bytes fails the call that would grow a file with
 * EDQUOT (WRITE writes what still fits first), exceeding quota_inodes
 * fails the call that would create an entry with EDQUOT, and STATFS
 * reports the quota instead of the host's or the bucket's capacity.
 */
struct backend_session_opts {
	unsigned flags;	       /* BACKEND_SESSION_* */
	uint64_t quota_bytes;  /* bytes of regular files; 0: no limit */
	uint64_t quota_inodes; /* files, directories, links...; 0: none */
};

struct backend_ops {
	const char *name;
	/*
	 * Check the settings this backend reads from cfg, touching nothing
	 * (brokerfs -n, and start calls it first).  0, or -errno after
	 * logging the problem.
	 */
	int (*check)(const struct broker_config *cfg);
	/*
	 * Once at broker start-up, before any session: set up what sessions
	 * share (the S3
	 * backend re-uploads what a previous run left staged).  0 or -errno,
	 * after logging why.
	 */
	int (*start)(const struct broker_config *cfg, struct backend **out);
	/*
	 * Once at shutdown, after every session closed: push out what is
	 * still pending within flush_ms, log what could not be, and free b.
	 * Returns the number of objects left unflushed (kept for the next
	 * start), or -errno.
	 */
	int (*stop)(struct backend *b, unsigned flush_ms);
	/* fsid is already validated as one safe path segment. */
	int (*session_open)(struct backend *b, const char *fsid, unsigned flags,
			    struct backend_session **out);
	/*
	 * Optional (NULL: the core calls session_open with opts->flags and
	 * no quota): session_open with the broker's per-session options.
	 */
	int (*session_open_opts)(struct backend *b, const char *fsid,
				 const struct backend_session_opts *opts,
				 struct backend_session **out);
	/*
	 * Optional: a policy reload changed the quota of s's filesystem.  It
	 * applies to every session of that filesystem_id at once.  Called on
	 * the event loop thread: must not block.
	 */
	void (*session_quota)(struct backend_session *s, uint64_t quota_bytes,
			      uint64_t quota_inodes);
	/*
	 * Optional: before a session_close ordered by the control plane (a
	 * destroy), put into the backend what the session's open files still
	 * hold, giving up at deadline_ms (CLOCK_MONOTONIC milliseconds).
	 * No request of s runs any more.  Returns how many files are left
	 * (still staged, uploaded later in the background), or -errno.
	 */
	int (*session_drain)(struct backend_session *s, uint64_t deadline_ms);
	void (*session_close)(struct backend_session *s);
	int (*dispatch)(struct backend_session *s, const struct proto_msg *req,
			struct proto_msg *rep);
	/*
	 * Ops quick enough to run on the event loop thread (bit n = wire op
	 * n): nothing that moves file data, syncs, or can wait on a network.
	 */
	uint64_t inline_ops;
	/*
	 * Optional: non-zero when req, of an op not in inline_ops, is quick
	 * all the same in session s (the local backend's SETATTR that
	 * changes no size, a small WRITE).  Called on the event loop: it
	 * must itself be cheap and never block.
	 */
	int (*quick)(struct backend_session *s, const struct proto_msg *req);
	/*
	 * Ops that do nothing but a DLP scan (bit n = wire op n): while no
	 * DLP scanner is active when a session opens, the broker lets its
	 * client skip them (FLUSH: the NOFLUSH feature of HELLO).
	 */
	uint64_t dlp_only_ops;
	/*
	 * Writes are staged on the broker's disk and go to the store at
	 * close or fsync: a file written may hold far more than the guest's
	 * per-mount dirty-page limit (the STAGED flag of HELLO).
	 */
	bool stages_writes;
};

#define BACKEND_OP_BIT(op) (UINT64_C(1) << (op))

extern const struct backend_ops backend_local;
extern const struct backend_ops backend_s3;

/* The backend called name ("local", "s3"), or NULL. */
const struct backend_ops *backend_find(const char *name);

#endif
