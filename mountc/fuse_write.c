/*
 * fuse_write.c - WRITE: the kernel's dirty pages on their way to the broker.
 *
 * A WRITE's payload is most of what a mount moves, so the path avoids
 * copies where the connection allows.  With splice reads on, libfuse
 * splices each request from /dev/fuse into a per-thread pipe; for a WRITE
 * the kernel puts references to the written pages there instead of
 * copying them, and libfuse leaves the payload in the pipe for write_buf
 * (fo_write_buf).  The payload is then spliced on into the broker's socket
 * behind the frame's head (rpcc_call_spliced), and a unix socket takes the
 * page references too: this process never touches the bytes.  Without
 * splicing, the payload is read into memory and sent from there by a
 * gathered write (two copies, still none in user space).
 *
 * Splicing needs a plain connection (unix or vsock: TLS must encrypt, and
 * zstd must compress, in memory) and a pipe that holds the largest
 * request: max_write plus libfuse's page of headers.  Pipes above
 * /proc/sys/fs/pipe-max-size (1 MiB unless raised) need CAP_SYS_RESOURCE,
 * so where that is missing a 1 MiB max_write does not fit.  A local broker
 * then gets WRITEs of up to 1 MiB less a page, which costs it nothing; a
 * staging broker (HELLO STAGED) tracks 1 MiB blocks, where a WRITE that
 * straddles two blocks of an existing object makes it fetch both, so it
 * keeps 1 MiB WRITEs and the copy (fuse_write_setup).
 *
 * Small requests now take two system calls to receive instead of one
 * (splice, then libfuse reads them back from the pipe); measured, that
 * costs less than the copies saved (doc/benchmarks.md).
 */
#define FUSE_USE_VERSION 312

#include "fuse_int.h"

#include "proto.h"
#include "rpcc.h"

#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <stdlib.h>
#include <unistd.h>

/* libfuse's room for the request's headers (FUSE_BUFFER_HEADER_SIZE). */
#define FW_HEADER_ROOM 4096u
/* Below this max_write, splicing is not worth smaller WRITEs. */
#define FW_MIN_WRITE (256u * 1024u)

/* The largest power of two below n (n > 1). */
static size_t fw_pow2_below(size_t n)
{
	size_t p = 1;

	while (p * 2 < n)
		p *= 2;
	return p;
}

/* The largest pipe, up to want bytes, this process may make; 0 if none. */
static size_t fw_pipe_room(size_t want)
{
	size_t size = want;
	int p[2], got = -1;

	if (pipe2(p, O_CLOEXEC) < 0)
		return 0;
	while (size >= FW_MIN_WRITE + FW_HEADER_ROOM) {
		got = fcntl(p[1], F_SETPIPE_SZ, (int)size);
		if (got >= 0)
			break;
		size = fw_pow2_below(size);
	}
	close(p[0]);
	close(p[1]);
	return got < 0 ? 0 : (size_t)got;
}

void fuse_write_setup(struct fuse_conn_info *conn)
{
	size_t room;

	if (!fo.cfg.splice_write || !rpcc_can_splice(fo.rpc) ||
	    !(conn->capable & FUSE_CAP_SPLICE_READ))
		return;
	room = fw_pipe_room((size_t)conn->max_write + FW_HEADER_ROOM);
	if (room < (size_t)conn->max_write + FW_HEADER_ROOM) {
		if (fo.cfg.staged || room < FW_MIN_WRITE + FW_HEADER_ROOM)
			return;
		conn->max_write = (unsigned)(room - FW_HEADER_ROOM);
	}
	conn->want |= FUSE_CAP_SPLICE_READ;
}

/* A payload in memory, in pieces of at most the negotiated payload. */
static void fo_write(fuse_req_t r, fuse_ino_t ino, const char *data,
		     size_t size, off_t off, struct fuse_file_info *fi)
{
	size_t max = rpcc_max_payload(fo.rpc), done = 0, chunk, wrote;
	struct proto_msg req, rep;
	int err;

	do {
		chunk = size - done < max ? size - done : max;
		fo_req(&req, PROTO_OP_WRITE, ino);
		req.fh = fi->fh;
		req.off = (uint64_t)off + done;
		req.data = (const uint8_t *)data + done;
		req.data_len = chunk;
		err = fo_call_pipe(r, &req, &rep, -1, NULL);
		wrote = err ? 0 : (size_t)rep.len;
		proto_msg_cleanup(&rep);
		if (!err && wrote > chunk)
			err = EIO; /* more than was sent: broken broker */
		if (!err)
			done += wrote;
	} while (!err && wrote == chunk && done < size);
	/* Bytes already written are reported even if a later piece failed. */
	if (err && !done)
		fuse_reply_err(r, err);
	else
		fuse_reply_write(r, done);
}

/*
 * With splice reads on (fuse_write_setup), libfuse hands a large WRITE over
 * as its pipe, which holds references to the pages the kernel writes, and
 * the pipe is spliced on into the broker's socket: the payload is never
 * copied in this process.  A payload in memory is written from there; any
 * other shape is copied into memory first.
 */
void fo_write_buf(fuse_req_t r, fuse_ino_t ino, struct fuse_bufvec *bufv,
		  off_t off, struct fuse_file_info *fi)
{
	const struct fuse_buf *b = &bufv->buf[bufv->idx];
	size_t size = fuse_buf_size(bufv), wrote;
	struct fuse_bufvec mem = FUSE_BUFVEC_INIT(size);
	struct proto_msg req, rep;
	ssize_t got;
	int err, sent = 0;

	if (bufv->count - bufv->idx == 1 && bufv->off == 0 &&
	    !(b->flags & FUSE_BUF_IS_FD)) {
		fo_write(r, ino, b->mem, size, off, fi);
		return;
	}
	if (bufv->count - bufv->idx == 1 && bufv->off == 0 &&
	    (b->flags & (FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK)) ==
		FUSE_BUF_IS_FD &&
	    size && size <= rpcc_max_payload(fo.rpc) &&
	    rpcc_can_splice(fo.rpc)) {
		fo_req(&req, PROTO_OP_WRITE, ino);
		req.fh = fi->fh;
		req.off = (uint64_t)off;
		req.data_len = size;
		err = fo_call_pipe(r, &req, &rep, b->fd, &sent);
		wrote = err ? 0 : (size_t)rep.len;
		proto_msg_cleanup(&rep);
		if (sent)
			bufv->idx = bufv->count; /* drained; else libfuse
						     throws the pipe away */
		if (!err && wrote > size)
			err = EIO; /* more than was sent: broken broker */
		if (err)
			fuse_reply_err(r, err);
		else
			fuse_reply_write(r, wrote);
		return;
	}
	mem.buf[0].mem = malloc(size ? size : 1);
	if (!mem.buf[0].mem) {
		fuse_reply_err(r, ENOMEM);
		return;
	}
	got = fuse_buf_copy(&mem, bufv, 0);
	if (got < 0)
		fuse_reply_err(r, (int)-got);
	else
		fo_write(r, ino, mem.buf[0].mem, (size_t)got, off, fi);
	free(mem.buf[0].mem);
}
