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

#include <stdint.h>

struct proto_msg;
struct broker_config;
struct backend;		/* a started backend: each backend defines it */
struct backend_session; /* one filesystem_id served: likewise */

#define BACKEND_SESSION_RDONLY 0x1u

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
	void (*session_close)(struct backend_session *s);
	int (*dispatch)(struct backend_session *s, const struct proto_msg *req,
			struct proto_msg *rep);
	/*
	 * Ops quick enough to run on the event loop thread (bit n = wire op
	 * n): nothing that moves file data, syncs, or can wait on a network.
	 */
	uint64_t inline_ops;
};

#define BACKEND_OP_BIT(op) (UINT64_C(1) << (op))

extern const struct backend_ops backend_local;
extern const struct backend_ops backend_s3;

/* The backend called name ("local", "s3"), or NULL. */
const struct backend_ops *backend_find(const char *name);

#endif
