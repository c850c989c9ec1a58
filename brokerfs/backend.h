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
struct backend_session;

#define BACKEND_SESSION_RDONLY 0x1u

struct backend_ops {
	const char *name;
	/* root: backend-specific location (local: the directory holding one
	 * subdirectory per filesystem_id). fsid is already validated. */
	int (*session_open)(const char *root, const char *fsid, unsigned flags,
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

#endif
