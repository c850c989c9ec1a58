/*
 * rpcc.h - the RPC client: many requests in flight on one connection.
 *
 * Callers block in rpcc_call while replies are matched to requests by id
 * (replies may come in any order) by whichever thread reads the connection:
 * a waiting caller itself when nobody else reads, else a background thread
 * (rpcc.c).  Broker pushes go to a callback on that thread.  When the
 * connection dies every waiting call, and every later one, fails with -ENOTCONN
 * at once; a call with no reply within the timeout fails with -ETIMEDOUT.
 * Nothing ever waits forever.
 */
#ifndef OCCFS_RPCC_H
#define OCCFS_RPCC_H

#include <stddef.h>
#include <stdint.h>

struct proto_msg;
struct transport_conn;
struct rpcc;

typedef void (*rpcc_push_fn)(void *arg, const struct proto_msg *push);

struct rpcc_opts {
	const char
	    *handle; /* session handle bytes (not NUL-terminated needed) */
	size_t handle_len;
	uint32_t features;    /* PROTO_FEAT_* requested */
	uint32_t max_payload; /* 0 = PROTO_MAX_PAYLOAD */
	int timeout_ms;	      /* per call; 0 = 60000 */
	unsigned spin_us;     /* busy-poll for a reply this long before
				 sleeping; 0 = never (see rpcc.c) */
	rpcc_push_fn on_push; /* may be NULL; called on whichever thread is
				 reading (a caller of rpcc_call, or the
				 background thread): it must not block on
				 a call's reply */
	void *push_arg;
};

/*
 * Take ownership of an established connection and run HELLO synchronously
 * on the calling thread (no thread is started, so the caller may still
 * fork, e.g. to daemonize, before rpcc_run).  On success *hello holds the
 * broker's HELLO reply (caller cleans it up).  On refusal returns the broker's
 * errno (e.g. -EKEYREJECTED) and copies the broker's reason into why.  On any
 * failure the connection is closed and *hello holds nothing; -ETIMEDOUT when no
 * reply came within o->timeout_ms, -EPROTO for a protocol version the client
 * does not speak.
 */
int rpcc_start(struct transport_conn *conn, const struct rpcc_opts *o,
	       struct rpcc **out, struct proto_msg *hello, char *why,
	       size_t whylen);

/* Start the background reading thread; required before rpcc_call. */
int rpcc_run(struct rpcc *c);

/*
 * Send req (its id is assigned here) and wait for the reply in *rep.
 * Returns 0 when a reply arrived (check rep->err for the broker's errno) or
 * a negative transport error.  rep must be cleaned up by the caller.
 * req->id is stored with __atomic_store_n (release) before the request is
 * sent, so another thread may read it atomically to send an INTERRUPT.
 * At most 64 calls are in flight; more callers wait (within the timeout).
 */
int rpcc_call(struct rpcc *c, struct proto_msg *req, struct proto_msg *rep);
/*
 * rpcc_call for a WRITE whose payload (req->data_len bytes; req->data is
 * not used) waits in the pipe pipe_fd: it is spliced into the connection
 * as the frame goes out, so it never passes through this process's memory.
 * Only where rpcc_can_splice (a plain connection without zstd); -EINVAL
 * otherwise.  Whatever the result, the pipe's contents are undefined after.
 */
int rpcc_call_spliced(struct rpcc *c, struct proto_msg *req,
		      struct proto_msg *rep, int pipe_fd);
int rpcc_can_splice(const struct rpcc *c);
/* Send a request that has no reply (FORGET, INTERRUPT). */
int rpcc_send(struct rpcc *c, struct proto_msg *req);
/* Negotiated values. */
uint32_t rpcc_features(const struct rpcc *c);
uint32_t rpcc_max_payload(const struct rpcc *c);
int rpcc_alive(const struct rpcc *c);
void rpcc_free(struct rpcc *c);

#endif
