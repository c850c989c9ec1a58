/*
 * conn_int.h - what the parts of a client connection share: conn.c (its
 * lifetime, input and the loop's entry points), conn_out.c (framing and
 * sending replies) and conn_req.c (acting on messages, the jobs that carry
 * them to workers).  Private to those files; the rest of the broker uses
 * the conn_* declarations in broker.h.  All of these run on the loop
 * thread, except conn_frame, which workers call too.
 */
#ifndef OCCFS_CONN_INT_H
#define OCCFS_CONN_INT_H

#include <stddef.h>
#include <stdint.h>

#include "broker.h"

/* conn.c */
void conn_update(struct conn *c); /* epoll mask to match what c can do */

/* conn_out.c */
void conn_flush(struct conn *c);
void conn_enqueue(struct conn *c, uint8_t *p, size_t len); /* takes p */
void conn_finish_partial(struct conn *c, struct job *j);
int conn_frame(const struct proto_msg *m, int zstd, struct buf *out);
void conn_send(struct conn *c, const struct proto_msg *m);
void conn_reply_err(struct conn *c, uint32_t op, uint64_t id, int err,
		    const char *reason);
void conn_refuse(struct conn *c, const struct proto_msg *req, int err,
		 const char *reason);

/* conn_req.c */
void conn_message(struct conn *c, const uint8_t *body, size_t len,
		  uint8_t *frame);
void conn_job_free(struct job *j);
void conn_job_unlink(struct conn *c, struct job *j);
void conn_release(struct conn *c);

#endif
