/*
 * fuse_ops.h - the FUSE low-level filesystem that forwards every kernel
 * request to the broker over an RPC client.  Used by mountc in the guest and
 * by brokerfs --fuse on the host (over an internal socketpair).
 */
#ifndef OCCFS_FUSE_OPS_H
#define OCCFS_FUSE_OPS_H

struct rpcc;
struct fuse_session;

struct fuse_ops_cfg {
	double attr_timeout;	 /* seconds the kernel may cache attributes */
	double entry_timeout;	 /* seconds it may cache name lookups */
	double negative_timeout; /* seconds it may cache "no such name" */
	int writeback;		 /* enable the kernel writeback cache */
	int splice_write;	 /* WRITE payloads pipe to socket */
	int staged;		 /* the broker stages writes (HELLO) */
	int rdonly;		 /* mount read-only */
	int allow_other;	 /* let other users than the mounter in */
	int default_permissions; /* kernel checks modes (default on) */
	int foreground;		 /* do not daemonize after mounting */
	int debug;		 /* libfuse debug output */
	unsigned max_threads;	 /* FUSE worker threads; 0 = default */
	int read_ahead_kb;  /* the mount's read-ahead; 0 = 1 MiB, < 0 = kernel's
			     */
	int dirty_ratio;    /* > 0: the mount may hold this percent of the
			       host's dirty limit, no strict per-mount
			       limit; 0 = the kernel's */
	const char *fsname; /* shown in /proc/mounts: the endpoint */
	const char
	    *extra_opts; /* passed through to fuse_session_new (-o ...) */
};

/*
 * Mount mountpoint, daemonize unless cfg->foreground (errors before that go
 * to the caller's stderr), start the RPC reader thread and serve requests
 * until unmounted or signalled.  Pushes from the broker must be routed with
 * fuse_ops_push (pass it as rpcc_opts.on_push with arg NULL).
 * Returns 0 or -errno.
 */
int fuse_ops_serve(struct rpcc *c, const char *mountpoint,
		   const struct fuse_ops_cfg *cfg);

/* rpcc push callback: kernel cache invalidation, session revocation. */
struct proto_msg;
void fuse_ops_push(void *arg, const struct proto_msg *push);

#endif
