/*
 * transport.c - unix, vsock and TLS 1.3 stream transports (see transport.h).
 *
 * The broker side is non-blocking: accepted connections come back with
 * O_NONBLOCK set and a TLS handshake that the event loop drives through
 * transport_handshake.  The client side is blocking, bounded by a timeout
 * while connecting.
 *
 * OpenSSL forbids using one SSL object from two threads at once, yet an RPC
 * client reads on one thread while others write.  So the socket under a TLS
 * client connection stays non-blocking, every SSL call runs under the
 * connection's lock, and blocking is emulated with poll() outside the lock.
 */
#include "transport.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/vm_sockets.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#define TRANSPORT_BACKLOG 128

struct transport_listener {
	struct transport_ep ep;
	int fd;
	SSL_CTX *ctx; /* TLS only */
	dev_t dev;    /* unix only: identity of our socket file, so close */
	ino_t ino;    /* unlinks it only if it is still ours */
};

struct transport_conn {
	int fd;
	enum transport_kind kind;
	SSL *ssl;	      /* TLS only */
	SSL_CTX *ctx;	      /* TLS client: owned; server: NULL (listener's) */
	int emulate_block;    /* TLS client: fd is non-blocking, calls block */
	pthread_mutex_t lock; /* serialises SSL calls on ssl */
};

/* ---- TLS contexts ---------------------------------------------------------
 */

static const char *ssl_why(const char *fallback)
{
	/* The error queue's text is per-thread and volatile; keep a copy. */
	static __thread char msg[256];
	unsigned long e = ERR_peek_last_error();

	if (!e)
		return fallback;
	snprintf(msg, sizeof(msg), "%s: ", fallback);
	ERR_error_string_n(e, msg + strlen(msg), sizeof(msg) - strlen(msg));
	ERR_clear_error();
	return msg;
}

static SSL_CTX *tls_server_ctx(const struct transport_tls_opts *o,
			       const char **why)
{
	SSL_CTX *ctx;

	if (!o || !o->cert_file || !o->key_file) {
		*why = "tls listener needs a certificate and a key";
		return NULL;
	}
	ERR_clear_error();
	ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx) {
		*why = ssl_why("cannot create TLS context");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
	/* No resumption: sessions are short-lived handles, not worth it. */
	SSL_CTX_set_num_tickets(ctx, 0);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
				  SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (SSL_CTX_use_certificate_chain_file(ctx, o->cert_file) != 1) {
		*why = ssl_why("cannot load TLS certificate");
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, o->key_file, SSL_FILETYPE_PEM) !=
	    1) {
		*why = ssl_why("cannot load TLS key");
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		*why = ssl_why("TLS key does not match the certificate");
		goto fail;
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

static SSL_CTX *tls_client_ctx(const struct transport_tls_opts *o,
			       const char **why)
{
	SSL_CTX *ctx;
	int ok;

	ERR_clear_error();
	ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx) {
		*why = ssl_why("cannot create TLS context");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
				  SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if (o && o->ca_file)
		ok = SSL_CTX_load_verify_locations(ctx, o->ca_file, NULL);
	else
		ok = SSL_CTX_set_default_verify_paths(ctx);
	if (ok != 1) {
		*why = ssl_why("cannot load TLS CA file");
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

/* ---- listening ------------------------------------------------------------
 */

static int set_nonblock(int fd, int on)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0)
		return -errno;
	fl = on ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK);
	return fcntl(fd, F_SETFL, fl) < 0 ? -errno : 0;
}

/*
 * A socket file left by a dead broker is removed; a live one (something
 * answers) or anything that is not a socket is left alone.
 */
static int unix_clear_stale(const char *path, const char **why)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct stat st;
	int fd, rc;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode)) {
		*why = "path exists and is not a socket";
		return -EEXIST;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	strcpy(sa.sun_path, path);
	rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	close(fd);
	if (rc == 0) {
		*why = "another process is listening on this socket";
		return -EADDRINUSE;
	}
	if (errno != ECONNREFUSED)
		return 0;
	if (unlink(path) < 0 && errno != ENOENT) {
		*why = "cannot remove stale socket";
		return -errno;
	}
	return 0;
}

static int listen_unix(struct transport_listener *l, const char **why)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct stat st;
	int rc;

	rc = unix_clear_stale(l->ep.path, why);
	if (rc)
		return rc;
	l->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (l->fd < 0)
		return -errno;
	strcpy(sa.sun_path, l->ep.path);
	if (bind(l->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		*why = "cannot bind unix socket";
		return -errno;
	}
	/* The owner may widen this (brokerfs --socket-mode). */
	if (chmod(l->ep.path, 0660) < 0 || stat(l->ep.path, &st) < 0) {
		rc = -errno;
		unlink(l->ep.path);
		*why = "cannot set unix socket mode";
		return rc;
	}
	l->dev = st.st_dev;
	l->ino = st.st_ino;
	return 0;
}

static int listen_vsock(struct transport_listener *l, const char **why)
{
	struct sockaddr_vm sa = {.svm_family = AF_VSOCK};

	l->fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (l->fd < 0) {
		*why = "vsock not available (is the vsock module loaded?)";
		return -errno;
	}
	sa.svm_cid = l->ep.cid;
	sa.svm_port = l->ep.port;
	if (bind(l->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		*why = "cannot bind vsock address";
		return -errno;
	}
	return 0;
}

static int listen_tcp(struct transport_listener *l, const char **why)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
	struct addrinfo *res = NULL;
	char port[8];
	int one = 1, rc;

	snprintf(port, sizeof(port), "%u", l->ep.port);
	rc = getaddrinfo(l->ep.host, port, &hints, &res);
	if (rc) {
		*why = gai_strerror(rc);
		return -EADDRNOTAVAIL;
	}
	l->fd = socket(res->ai_family,
		       SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (l->fd < 0) {
		rc = -errno;
		goto out;
	}
	setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(l->fd, res->ai_addr, res->ai_addrlen) < 0) {
		rc = -errno;
		*why = "cannot bind TCP address";
		goto out;
	}
	rc = 0;
out:
	freeaddrinfo(res);
	return rc;
}

int transport_listen(const struct transport_ep *ep,
		     const struct transport_tls_opts *tls,
		     struct transport_listener **out, const char **why)
{
	struct transport_listener *l;
	const char *dummy;
	int rc;

	if (!why)
		why = &dummy;
	*why = "";
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->ep = *ep;
	l->fd = -1;
	switch (ep->kind) {
	case TRANSPORT_UNIX:
		rc = listen_unix(l, why);
		break;
	case TRANSPORT_VSOCK:
		rc = listen_vsock(l, why);
		break;
	case TRANSPORT_TLS:
		l->ctx = tls_server_ctx(tls, why);
		rc = l->ctx ? listen_tcp(l, why) : -EINVAL;
		break;
	default:
		rc = -EINVAL;
	}
	if (rc)
		goto fail;
	if (listen(l->fd, TRANSPORT_BACKLOG) < 0) {
		rc = -errno;
		*why = "listen failed";
		if (ep->kind == TRANSPORT_UNIX)
			unlink(ep->path);
		goto fail;
	}
	*out = l;
	return 0;
fail:
	if (!**why)
		*why = strerror(-rc);
	if (l->fd >= 0)
		close(l->fd);
	SSL_CTX_free(l->ctx);
	free(l);
	return rc;
}

int transport_listener_fd(const struct transport_listener *l)
{
	return l->fd;
}

void transport_listener_close(struct transport_listener *l)
{
	struct stat st;

	if (!l)
		return;
	/* Never unlink a socket a newer broker has put in our place. */
	if (l->ep.kind == TRANSPORT_UNIX && stat(l->ep.path, &st) == 0 &&
	    st.st_dev == l->dev && st.st_ino == l->ino)
		unlink(l->ep.path);
	close(l->fd);
	SSL_CTX_free(l->ctx);
	free(l);
}

/*
 * Room for a whole 1 MiB frame, and the next, in the socket: with the
 * default (wmem_default, about 208 KiB) a WRITE or READ payload crosses in
 * five pieces, each a wake-up of the reader.  Root (the broker, the mount
 * helper) may go past wmem_max with the FORCE options; others get what
 * the limit allows.  The kernel allocates as data queues, not up front.
 */
#define TRANSPORT_SOCKBUF (4 << 20)

static void sock_buffers(int fd)
{
	int n = TRANSPORT_SOCKBUF;

	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &n, sizeof(n)) < 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &n, sizeof(n));
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &n, sizeof(n)) < 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &n, sizeof(n));
}

static struct transport_conn *conn_new(int fd, enum transport_kind kind)
{
	struct transport_conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	sock_buffers(fd);
	c->fd = fd;
	c->kind = kind;
	pthread_mutex_init(&c->lock, NULL);
	return c;
}

int transport_accept(struct transport_listener *l, struct transport_conn **out)
{
	struct transport_conn *c;
	int fd, one = 1;

	fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	if (l->ep.kind == TRANSPORT_TLS)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c = conn_new(fd, l->ep.kind);
	if (!c)
		goto nomem;
	if (l->ep.kind == TRANSPORT_TLS) {
		c->ssl = SSL_new(l->ctx);
		if (!c->ssl || SSL_set_fd(c->ssl, fd) != 1) {
			transport_close(c);
			ERR_clear_error();
			return -ENOMEM;
		}
		SSL_set_accept_state(c->ssl);
	}
	*out = c;
	return 0;
nomem:
	close(fd);
	return -ENOMEM;
}

/* Map an SSL failure to -errno; WANT_* becomes -EAGAIN. */
static int ssl_err(SSL *ssl, int ret)
{
	int e = SSL_get_error(ssl, ret), rc;

	switch (e) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		return -EAGAIN;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	case SSL_ERROR_SYSCALL:
		rc = errno ? -errno : -ECONNRESET;
		ERR_clear_error();
		return rc == -EAGAIN ? -ECONNRESET : rc;
	default:
		ERR_clear_error();
		return -EPROTO;
	}
}

int transport_handshake(struct transport_conn *c)
{
	int ret, rc;

	if (!c->ssl)
		return 0;
	pthread_mutex_lock(&c->lock);
	ERR_clear_error();
	errno = 0;
	ret = SSL_do_handshake(c->ssl);
	rc = ret == 1 ? 0 : ssl_err(c->ssl, ret);
	pthread_mutex_unlock(&c->lock);
	return rc == 0 && ret != 1 ? -ECONNRESET : rc;
}

/* ---- connecting ------------------------------------------------------------
 */

static int remaining_ms(const struct timespec *deadline)
{
	struct timespec now;
	long ms;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (deadline->tv_sec - now.tv_sec) * 1000 +
	     (deadline->tv_nsec - now.tv_nsec) / 1000000;
	return ms < 0 ? 0 : (int)ms;
}

static int wait_fd(int fd, short ev, const struct timespec *deadline)
{
	struct pollfd p = {.fd = fd, .events = ev};
	int n;

	do {
		n = poll(&p, 1, deadline ? remaining_ms(deadline) : -1);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return n == 0 ? -ETIMEDOUT : 0;
}

/* Non-blocking connect to one address, bounded by deadline. */
static int connect_addr(int family, const struct sockaddr *sa, socklen_t len,
			const struct timespec *deadline, int *fdp)
{
	int fd, rc, err = 0;
	socklen_t elen = sizeof(err);

	fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, sa, len) < 0) {
		if (errno != EINPROGRESS && errno != EAGAIN) {
			rc = -errno;
			goto out;
		}
		rc = wait_fd(fd, POLLOUT, deadline);
		if (rc)
			goto out;
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0)
			err = errno;
		if (err) {
			rc = -err;
			goto out;
		}
	}
	*fdp = fd;
	return 0;
out:
	close(fd);
	return rc;
}

static int connect_tcp(const struct transport_ep *ep,
		       const struct timespec *deadline, int *fdp,
		       const char **why)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_NUMERICSERV};
	struct addrinfo *res = NULL, *ai;
	char port[8];
	int rc, one = 1;

	snprintf(port, sizeof(port), "%u", ep->port);
	rc = getaddrinfo(ep->host, port, &hints, &res);
	if (rc) {
		*why = gai_strerror(rc);
		return -EHOSTUNREACH;
	}
	rc = -EHOSTUNREACH;
	for (ai = res; ai; ai = ai->ai_next) {
		rc = connect_addr(ai->ai_family, ai->ai_addr, ai->ai_addrlen,
				  deadline, fdp);
		if (rc == 0 || rc == -ETIMEDOUT)
			break;
	}
	freeaddrinfo(res);
	if (rc == 0)
		setsockopt(*fdp, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	else
		*why = rc == -ETIMEDOUT ? "connection timed out"
					: "cannot connect";
	return rc;
}

static int tls_client_setup(struct transport_conn *c,
			    const struct transport_ep *ep,
			    const struct transport_tls_opts *o,
			    const char **why)
{
	const char *name = o && o->server_name ? o->server_name : ep->host;
	unsigned char ip[16];
	X509_VERIFY_PARAM *vp;

	c->ctx = tls_client_ctx(o, why);
	if (!c->ctx)
		return -EINVAL;
	c->ssl = SSL_new(c->ctx);
	if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1) {
		*why = ssl_why("cannot create TLS connection");
		return -ENOMEM;
	}
	/* An address literal is checked against IP SANs and sends no SNI. */
	vp = SSL_get0_param(c->ssl);
	if (inet_pton(AF_INET, name, ip) == 1 ||
	    inet_pton(AF_INET6, name, ip) == 1) {
		if (X509_VERIFY_PARAM_set1_ip_asc(vp, name) != 1)
			goto bad;
	} else {
		X509_VERIFY_PARAM_set_hostflags(
		    vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		if (SSL_set1_host(c->ssl, name) != 1 ||
		    SSL_set_tlsext_host_name(c->ssl, name) != 1)
			goto bad;
	}
	SSL_set_connect_state(c->ssl);
	return 0;
bad:
	*why = "invalid TLS server name";
	return -EINVAL;
}

static int tls_client_handshake(struct transport_conn *c,
				const struct timespec *deadline,
				const char **why)
{
	int ret, rc;
	long vr;

	for (;;) {
		ERR_clear_error();
		errno = 0;
		ret = SSL_do_handshake(c->ssl);
		if (ret == 1)
			return 0;
		if (SSL_get_error(c->ssl, ret) == SSL_ERROR_WANT_READ)
			rc = wait_fd(c->fd, POLLIN, deadline);
		else if (SSL_get_error(c->ssl, ret) == SSL_ERROR_WANT_WRITE)
			rc = wait_fd(c->fd, POLLOUT, deadline);
		else
			break;
		if (rc) {
			*why = "TLS handshake timed out";
			return rc;
		}
	}
	vr = SSL_get_verify_result(c->ssl);
	if (vr != X509_V_OK) {
		static __thread char msg[160];

		snprintf(msg, sizeof(msg), "server certificate rejected: %s",
			 X509_verify_cert_error_string(vr));
		ERR_clear_error();
		*why = msg;
		return -EKEYREJECTED;
	}
	*why = ssl_why("TLS handshake failed");
	return -EPROTO;
}

int transport_connect(const struct transport_ep *ep,
		      const struct transport_tls_opts *tls, int timeout_ms,
		      struct transport_conn **out, const char **why)
{
	struct transport_conn *c = NULL;
	struct timespec deadline;
	const char *dummy;
	int fd = -1, rc;

	if (!why)
		why = &dummy;
	*why = "";
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	if (timeout_ms <= 0)
		timeout_ms = 10000;
	deadline.tv_sec += timeout_ms / 1000;
	deadline.tv_nsec += (timeout_ms % 1000) * 1000000L;
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}
	if (ep->kind == TRANSPORT_UNIX) {
		struct sockaddr_un sa = {.sun_family = AF_UNIX};

		strcpy(sa.sun_path, ep->path);
		rc = connect_addr(AF_UNIX, (struct sockaddr *)&sa, sizeof(sa),
				  &deadline, &fd);
	} else if (ep->kind == TRANSPORT_VSOCK) {
		struct sockaddr_vm sa = {.svm_family = AF_VSOCK,
					 .svm_cid = ep->cid,
					 .svm_port = ep->port};

		if (ep->cid == VMADDR_CID_ANY) {
			*why = "vsock CID 'any' is only valid for listening";
			return -EINVAL;
		}
		rc = connect_addr(AF_VSOCK, (struct sockaddr *)&sa, sizeof(sa),
				  &deadline, &fd);
	} else if (ep->kind == TRANSPORT_TLS) {
		rc = connect_tcp(ep, &deadline, &fd, why);
	} else {
		rc = -EINVAL;
	}
	if (rc)
		goto out;
	rc = -ENOMEM;
	c = conn_new(fd, ep->kind);
	if (!c)
		goto out;
	fd = -1;
	if (ep->kind == TRANSPORT_TLS) {
		rc = tls_client_setup(c, ep, tls, why);
		if (rc == 0)
			rc = tls_client_handshake(c, &deadline, why);
		c->emulate_block = 1;
	} else {
		rc = set_nonblock(c->fd, 0);
	}
	if (rc == 0) {
		*out = c;
		c = NULL;
	}
out:
	if (rc && !**why)
		*why = strerror(-rc);
	if (fd >= 0)
		close(fd);
	transport_close(c);
	return rc;
}

struct transport_conn *transport_wrap_fd(int fd)
{
	struct transport_conn *c = conn_new(fd, TRANSPORT_UNIX);

	if (!c)
		errno = ENOMEM;
	return c;
}

int transport_fd(const struct transport_conn *c)
{
	return c->fd;
}

/* ---- data ------------------------------------------------------------------
 */

/*
 * Emulated blocking honours SO_RCVTIMEO / SO_SNDTIMEO as a blocking socket
 * would: -EAGAIN once the timeout passes.  -1 = no timeout.
 */
static int sock_timeout_ms(int fd, int opt)
{
	struct timeval tv;
	socklen_t len = sizeof(tv);

	if (getsockopt(fd, SOL_SOCKET, opt, &tv, &len) < 0 ||
	    (tv.tv_sec == 0 && tv.tv_usec == 0))
		return -1;
	if (tv.tv_sec > INT_MAX / 1000 - 1)
		return INT_MAX;
	return (int)(tv.tv_sec * 1000 + (tv.tv_usec + 999) / 1000);
}

static ssize_t tls_io(struct transport_conn *c, void *p, size_t n, int wr)
{
	struct pollfd pf = {.fd = c->fd};
	int tmo = -1;
	size_t done = 0;
	int ret, e;

	for (;;) {
		pthread_mutex_lock(&c->lock);
		ERR_clear_error();
		errno = 0;
		ret = wr ? SSL_write_ex(c->ssl, p, n, &done)
			 : SSL_read_ex(c->ssl, p, n, &done);
		if (ret == 1) {
			pthread_mutex_unlock(&c->lock);
			return (ssize_t)done;
		}
		e = SSL_get_error(c->ssl, ret);
		ret = ssl_err(c->ssl, ret);
		pthread_mutex_unlock(&c->lock);
		if (ret != -EAGAIN || !c->emulate_block)
			return ret;
		if (tmo == -1)
			tmo = sock_timeout_ms(c->fd,
					      wr ? SO_SNDTIMEO : SO_RCVTIMEO);
		pf.events = e == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN;
		ret = poll(&pf, 1, tmo);
		if (ret == 0)
			return -EAGAIN;
		if (ret < 0 && errno != EINTR)
			return -errno;
	}
}

ssize_t transport_read(struct transport_conn *c, void *p, size_t n)
{
	ssize_t r;

	if (c->ssl)
		return tls_io(c, p, n, 0);
	do {
		r = read(c->fd, p, n);
	} while (r < 0 && errno == EINTR);
	if (r < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	return r;
}

ssize_t transport_write(struct transport_conn *c, const void *p, size_t n)
{
	ssize_t r;

	if (c->ssl)
		return tls_io(c, (void *)p, n, 1);
	do {
		/* MSG_NOSIGNAL: a vanished peer is an error, not a SIGPIPE. */
		r = send(c->fd, p, n, MSG_NOSIGNAL);
		if (r < 0 && errno == ENOTSOCK)
			r = write(c->fd, p, n);
	} while (r < 0 && errno == EINTR);
	if (r < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	return r;
}

ssize_t transport_writev(struct transport_conn *c, const struct iovec *iov,
			 int n)
{
	struct msghdr mh = {.msg_iov = (struct iovec *)iov,
			    .msg_iovlen = (size_t)n};
	ssize_t r;

	if (c->ssl) {
		/* One record stream: the first piece with bytes, then the
		 * caller's loop comes back for the rest. */
		for (; n > 0 && !iov->iov_len; n--)
			iov++;
		return n > 0 ? transport_write(c, iov->iov_base, iov->iov_len)
			     : 0;
	}
	do {
		r = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
		if (r < 0 && errno == ENOTSOCK)
			r = writev(c->fd, iov, n);
	} while (r < 0 && errno == EINTR);
	if (r < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	return r;
}

int transport_can_splice(const struct transport_conn *c)
{
	return c->ssl == NULL;
}

ssize_t transport_splice_in(struct transport_conn *c, int pipe_fd, size_t n)
{
	ssize_t r;

	if (c->ssl)
		return -ENOTSUP;
	/* SPLICE_F_MORE: the frame's tail follows at once. */
	do {
		r = splice(pipe_fd, NULL, c->fd, NULL, n,
			   SPLICE_F_MOVE | SPLICE_F_MORE);
	} while (r < 0 && errno == EINTR);
	if (r < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	return r;
}

int transport_peer_cred(const struct transport_conn *c, uid_t *uid, gid_t *gid,
			pid_t *pid)
{
	struct ucred uc;
	socklen_t len = sizeof(uc);

	if (c->kind != TRANSPORT_UNIX)
		return -ENOTSUP;
	if (getsockopt(c->fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) < 0)
		return -errno;
	if (uid)
		*uid = uc.uid;
	if (gid)
		*gid = uc.gid;
	if (pid)
		*pid = uc.pid;
	return 0;
}

void transport_close(struct transport_conn *c)
{
	if (!c)
		return;
	if (c->ssl) {
		/* Best effort close_notify; never wait for the peer's. */
		ERR_clear_error();
		SSL_set_quiet_shutdown(c->ssl, 0);
		if (SSL_is_init_finished(c->ssl))
			SSL_shutdown(c->ssl);
		ERR_clear_error();
		SSL_free(c->ssl);
	}
	SSL_CTX_free(c->ctx);
	if (c->fd >= 0)
		close(c->fd);
	pthread_mutex_destroy(&c->lock);
	free(c);
}
