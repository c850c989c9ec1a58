/*
 * fuse_int.h - state shared by fuse_ops.c (the operations), fuse_write.c
 * (WRITE) and fuse_serve.c (the session that mounts, serves and takes
 * pushes).  Private to those files; everyone else uses fuse_ops.h.
 */
#ifndef OCCFS_FUSE_INT_H
#define OCCFS_FUSE_INT_H

#ifndef FUSE_USE_VERSION
#error "define FUSE_USE_VERSION before including fuse_int.h"
#endif

#include "fuse_ops.h"
#include "proto.h"

#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdint.h>

#define FO_QUEUE 256u /* pending kernel notifications */

/* A queued kernel cache notification. */
struct fo_note {
	uint32_t op; /* PROTO_OP_INVAL_ENTRY or _INODE */
	uint64_t ino, off, len;
	char *name;
};

struct fo_state {
	struct rpcc *rpc;
	struct fuse_session *se;
	struct fuse_ops_cfg cfg;
	int revoked; /* atomic: every request now fails with EACCES */
	int lost;    /* atomic: the loss of the broker was logged */

	pthread_mutex_t qlock; /* protects the queue below */
	pthread_cond_t qcv;
	struct fo_note q[FO_QUEUE];
	unsigned qhead, qlen, qdropped;
	int qstop;

	/* The parent directory's attributes from the last entry operation
	 * (fuse_serve_pattr_*): one slot, all under plock. */
	pthread_mutex_t plock;
	uint64_t pseq;		 /* directory-changing calls started */
	unsigned pbusy;		 /* of those, still waiting for a reply */
	uint64_t pino;		 /* the directory in pattr; 0: slot empty */
	struct proto_attr pattr; /* its attributes after that operation */
	uint64_t pborn;		 /* CLOCK_MONOTONIC ns: when it was received */
};

/* The one mount this process serves (fuse_serve.c). */
extern struct fo_state fo;

/* The operations handed to fuse_session_new (fuse_ops.c). */
extern const struct fuse_lowlevel_ops fuse_ops_ll;

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t fo_now_ns(void);

/* The INIT callback: negotiates the connection (fuse_serve.c). */
void fuse_serve_init(void *userdata, struct fuse_conn_info *conn);

/* Called by every request: the first one sets the read-ahead (once). */
/* Calls (fuse_ops.c). */
void fo_req(struct proto_msg *m, uint32_t op, uint64_t ino);
/*
 * Call the broker for r; returns 0 or a positive errno for the kernel.
 * With pipe_fd >= 0, req is a WRITE whose payload waits in that pipe
 * (rpcc_call_spliced); *sent is then set once the broker has read the
 * whole frame, i.e. the pipe was drained.
 */
int fo_call_pipe(fuse_req_t r, struct proto_msg *req, struct proto_msg *rep,
		 int pipe_fd, int *sent);
/* WRITE (fuse_write.c); setup picks the path at INIT. */
void fuse_write_setup(struct fuse_conn_info *conn);
void fo_write_buf(fuse_req_t r, fuse_ino_t ino, struct fuse_bufvec *bufv,
		  off_t off, struct fuse_file_info *fi);
void fuse_serve_first_op(void);

/*
 * Parent attributes (PROTO_FEAT_PATTR).  fo_call brackets every call that
 * may change a directory with begin (returns a ticket) and end (stores
 * the parent's attributes of a successful reply, unless another such call
 * overlapped it).  take answers one GETATTR of that directory: 1 and *a,
 * *ttl (seconds the kernel may keep them) if the slot holds it, else 0.
 * drop empties the slot (a push from the broker, a listing).
 */
uint64_t fuse_serve_pattr_begin(const struct proto_msg *req);
void fuse_serve_pattr_end(const struct proto_msg *req,
			  const struct proto_msg *rep, uint64_t ticket);
int fuse_serve_pattr_take(uint64_t ino, struct proto_attr *a, double *ttl);
void fuse_serve_pattr_drop(uint64_t ino);

#endif
