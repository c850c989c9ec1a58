/*
 * transport.h - stream transports for the RPC: unix sockets, vsock, TLS 1.3
 * over TCP.  Endpoints are written unix:/path, vsock:CID:PORT, tls:HOST:PORT.
 *
 * A struct transport_conn hides whether bytes go through TLS; callers use
 * transport_read / transport_write, which return -EAGAIN on a non-blocking
 * connection that would block (TLS included).
 */
#ifndef OCCFS_TRANSPORT_H
#define OCCFS_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum transport_kind { TRANSPORT_UNIX, TRANSPORT_VSOCK, TRANSPORT_TLS };

struct transport_ep {
	enum transport_kind kind;
	char path[108]; /* unix */
	char host[256]; /* tls */
	uint32_t cid;	/* vsock */
	uint32_t port;	/* vsock, tls */
};

struct transport_tls_opts {
	const char *cert_file;	 /* server: certificate chain (PEM) */
	const char *key_file;	 /* server: private key (PEM) */
	const char *ca_file;	 /* client: CA to verify the server against */
	const char *server_name; /* client: name to verify; default ep host */
};

struct transport_listener;
struct transport_conn;
struct iovec;

int transport_parse(const char *s, struct transport_ep *ep, const char **why);
/* Human-readable form of ep into out. */
void transport_format(const struct transport_ep *ep, char *out, size_t len);

/* Listening side.  The listener's fd is non-blocking, for the event loop. */
int transport_listen(const struct transport_ep *ep,
		     const struct transport_tls_opts *tls,
		     struct transport_listener **out, const char **why);
int transport_listener_fd(const struct transport_listener *l);
void transport_listener_close(
    struct transport_listener *l); /* unlinks unix path */
/*
 * Accept one connection (non-blocking fd).  For TLS, the handshake is
 * completed by calling transport_handshake until it returns 0.
 * Returns 0, -EAGAIN when nothing is pending, or -errno.
 */
int transport_accept(struct transport_listener *l, struct transport_conn **out);
int transport_handshake(struct transport_conn *c); /* 0, -EAGAIN or -errno */

/* Connecting side: blocking connect + handshake, bounded by timeout_ms. */
int transport_connect(const struct transport_ep *ep,
		      const struct transport_tls_opts *tls, int timeout_ms,
		      struct transport_conn **out, const char **why);
/* Wrap an already-connected plain stream fd (e.g. one end of a socketpair). */
struct transport_conn *transport_wrap_fd(int fd);

int transport_fd(const struct transport_conn *c);
/* 0 = fd still blocking; use fcntl on transport_fd for O_NONBLOCK. */
ssize_t transport_read(struct transport_conn *c, void *p,
		       size_t n); /* 0 = EOF */
ssize_t transport_write(struct transport_conn *c, const void *p, size_t n);
/* Gathered write; may be short like transport_write (TLS: one piece). */
ssize_t transport_writev(struct transport_conn *c, const struct iovec *iov,
			 int n);
/*
 * Move up to n bytes from the pipe pipe_fd into the connection by
 * splice(2), without a copy in user space; may be short like
 * transport_write.  -ENOTSUP on TLS, where bytes must be encrypted.
 */
ssize_t transport_splice_in(struct transport_conn *c, int pipe_fd, size_t n);
int transport_can_splice(const struct transport_conn *c);
/* For unix sockets: the peer's uid/gid/pid; -ENOTSUP otherwise. */
int transport_peer_cred(const struct transport_conn *c, uid_t *uid, gid_t *gid,
			pid_t *pid);
void transport_close(struct transport_conn *c);

#endif
