/*
 * test_transport.c - endpoint syntax, unix sockets and TLS 1.3 transports.
 *
 * TLS cases use a throw-away CA and certificates made by the openssl command
 * in a temporary directory: a good server, a server whose certificate chains
 * to another CA, a wrong host name, and a client that only speaks TLS 1.2.
 */
#include "transport.h"
#include "unit.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

static char tmpdir[] = "/tmp/test_transport.XXXXXX";

static void check_good(const char *s, enum transport_kind kind,
		       const char *canon)
{
	struct transport_ep ep;
	const char *why = NULL;
	char out[400];

	CHECK_EQ(transport_parse(s, &ep, &why), 0);
	CHECK_EQ(ep.kind, kind);
	transport_format(&ep, out, sizeof(out));
	CHECK_STR(out, canon);
}

static void check_bad(const char *s)
{
	struct transport_ep ep;
	const char *why = NULL;
	int rc = transport_parse(s, &ep, &why);

	CHECK(rc < 0);
	CHECK(why != NULL && why[0] != '\0');
	if (rc == 0)
		fprintf(stderr, "  accepted bad endpoint \"%s\"\n", s);
}

static void test_parse(void)
{
	struct transport_ep ep;
	char longp[200];

	check_good("unix:/run/occfs/broker.sock", TRANSPORT_UNIX,
		   "unix:/run/occfs/broker.sock");
	check_good("vsock:3:1024", TRANSPORT_VSOCK, "vsock:3:1024");
	check_good("vsock:any:5000", TRANSPORT_VSOCK, "vsock:any:5000");
	check_good("vsock:-1:5000", TRANSPORT_VSOCK, "vsock:any:5000");
	check_good("tls:broker.example:8443", TRANSPORT_TLS,
		   "tls:broker.example:8443");
	check_good("tls:127.0.0.1:1", TRANSPORT_TLS, "tls:127.0.0.1:1");
	check_good("tls:[::1]:65535", TRANSPORT_TLS, "tls:[::1]:65535");

	CHECK_EQ(transport_parse("vsock:7:99", &ep, NULL), 0);
	CHECK_EQ(ep.cid, 7);
	CHECK_EQ(ep.port, 99);
	CHECK_EQ(transport_parse("tls:[fe80::1]:443", &ep, NULL), 0);
	CHECK_STR(ep.host, "fe80::1");
	CHECK_EQ(ep.port, 443);

	memset(longp, 'a', sizeof(longp));
	memcpy(longp, "unix:/", 6);
	longp[5 + 108] = '\0'; /* a 108-byte path: one too many */
	check_bad(longp);
	longp[5 + 107] = '\0'; /* 107 bytes: the largest that fits */
	CHECK_EQ(transport_parse(longp, &ep, NULL), 0);

	check_bad("unix:");
	check_bad("unix:relative/path");
	check_bad("vsock:x:1");
	check_bad("vsock:3");
	check_bad("vsock:3:");
	check_bad("vsock::5");
	check_bad("vsock:3:0");
	check_bad("vsock:3:12x");
	check_bad("vsock:3:4:5");
	check_bad("tls:host");
	check_bad("tls:host:");
	check_bad("tls:host:0");
	check_bad("tls:host:70000");
	check_bad("tls:host:-1");
	check_bad("tls::443");
	check_bad("tls:::1:443");
	check_bad("tls:[::1:443");
	check_bad("ftp://example");
	check_bad("");
	check_bad("unix");
	CHECK_EQ(transport_parse(NULL, &ep, NULL), -EINVAL);
}

static int accept_wait(struct transport_listener *l, struct transport_conn **c)
{
	struct pollfd p = {.fd = transport_listener_fd(l), .events = POLLIN};
	int rc;

	for (;;) {
		rc = transport_accept(l, c);
		if (rc != -EAGAIN)
			return rc;
		if (poll(&p, 1, 5000) <= 0)
			return -ETIMEDOUT;
	}
}

/* Read exactly n bytes from a non-blocking connection. */
static int read_all_nb(struct transport_conn *c, char *p, size_t n)
{
	struct pollfd pf = {.fd = transport_fd(c), .events = POLLIN};
	size_t got = 0;
	ssize_t r;

	while (got < n) {
		r = transport_read(c, p + got, n - got);
		if (r == -EAGAIN) {
			if (poll(&pf, 1, 5000) <= 0)
				return -ETIMEDOUT;
			continue;
		}
		if (r <= 0)
			return r == 0 ? -ECONNRESET : (int)r;
		got += (size_t)r;
	}
	return 0;
}

static void test_unix(void)
{
	struct transport_listener *l = NULL, *l2 = NULL;
	struct transport_conn *cl = NULL, *sv = NULL;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct transport_ep ep;
	const char *why = NULL;
	char path[128], ep_s[160], buf[16];
	struct stat st;
	uid_t uid;
	gid_t gid;
	pid_t pid;
	int fd;

	snprintf(path, sizeof(path), "%s/s.sock", tmpdir);
	snprintf(ep_s, sizeof(ep_s), "unix:%s", path);
	CHECK_EQ(transport_parse(ep_s, &ep, NULL), 0);

	/* A regular file in the way is never removed. */
	fd = open(path, O_CREAT | O_WRONLY, 0600);
	close(fd);
	CHECK_EQ(transport_listen(&ep, NULL, &l, &why), -EEXIST);
	CHECK(why && strstr(why, "not a socket"));
	CHECK_EQ(stat(path, &st), 0);
	unlink(path);

	/* A stale socket (nobody listening) is replaced. */
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	strcpy(sa.sun_path, path);
	CHECK_EQ(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	CHECK_EQ(transport_listen(&ep, NULL, &l, &why), 0);
	CHECK_EQ(stat(path, &st), 0);
	CHECK_EQ(st.st_mode & 07777, 0660);

	CHECK_EQ(transport_connect(&ep, NULL, 2000, &cl, &why), 0);
	CHECK_EQ(accept_wait(l, &sv), 0);
	if (!cl || !sv)
		goto out;
	CHECK_EQ(transport_handshake(sv), 0);
	CHECK_EQ(transport_read(sv, buf, sizeof(buf)), -EAGAIN);
	CHECK_EQ(transport_write(cl, "hello", 5), 5);
	CHECK_EQ(read_all_nb(sv, buf, 5), 0);
	CHECK(memcmp(buf, "hello", 5) == 0);
	CHECK_EQ(transport_write(sv, "world!", 6), 6);
	CHECK_EQ(transport_read(cl, buf, 6), 6);
	CHECK(memcmp(buf, "world!", 6) == 0);
	CHECK_EQ(transport_peer_cred(sv, &uid, &gid, &pid), 0);
	CHECK_EQ(uid, getuid());
	CHECK_EQ(gid, getgid());
	CHECK_EQ(pid, getpid());
	transport_close(cl);
	cl = NULL;
	CHECK_EQ(read_all_nb(sv, buf, 1), -ECONNRESET); /* EOF */
	/* A live socket is not replaced. */
	CHECK_EQ(transport_listen(&ep, NULL, &l2, &why), -EADDRINUSE);
	CHECK(why && strstr(why, "listening"));
	/* Writing to a vanished peer is an error, not a signal. */
	CHECK(transport_write(sv, "x", 1) < 0 ||
	      transport_write(sv, "x", 1) < 0);
out:
	transport_close(cl);
	transport_close(sv);
	transport_listener_close(l);
	CHECK(stat(path, &st) < 0 && errno == ENOENT);

	/* Nothing listening: connect fails. */
	CHECK(transport_connect(&ep, NULL, 500, &cl, &why) < 0);
	CHECK_EQ(transport_parse("vsock:any:5", &ep, NULL), 0);
	CHECK_EQ(transport_connect(&ep, NULL, 500, &cl, &why), -EINVAL);
}

/* ---- TLS -------------------------------------------------------------------
 */

static int make_certs(void)
{
	char cmd[2048];

	snprintf(
	    cmd, sizeof(cmd),
	    "cd %s && set -e; "
	    "for ca in ca rogue; do "
	    " openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256"
	    " -nodes -keyout $ca.key -out $ca.pem -days 2"
	    " -subj /CN=test-$ca; "
	    " openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256"
	    " -nodes -keyout srv-$ca.key -out srv-$ca.csr"
	    " -subj /CN=localhost; "
	    " printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' >ext; "
	    " openssl x509 -req -in srv-$ca.csr -CA $ca.pem -CAkey $ca.key"
	    " -CAcreateserial -out srv-$ca.pem -days 2 -extfile ext; "
	    "done >/dev/null 2>&1",
	    tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

struct server {
	struct transport_listener *l;
	int hs_rc;   /* result of the handshake */
	int echo_rc; /* result of the echo, 0 = ok */
};

/* Accept one connection, drive the handshake as the event loop would, echo. */
static void *server_main(void *arg)
{
	struct server *s = arg;
	struct transport_conn *c = NULL;
	struct pollfd p;
	char buf[64];
	ssize_t w;

	s->echo_rc = -1;
	s->hs_rc = accept_wait(s->l, &c);
	if (s->hs_rc)
		return NULL;
	p.fd = transport_fd(c);
	p.events = POLLIN;
	while ((s->hs_rc = transport_handshake(c)) == -EAGAIN)
		if (poll(&p, 1, 5000) <= 0) {
			s->hs_rc = -ETIMEDOUT;
			break;
		}
	if (s->hs_rc == 0) {
		s->echo_rc = read_all_nb(c, buf, 4);
		if (s->echo_rc == 0) {
			while ((w = transport_write(c, buf, 4)) == -EAGAIN)
				;
			s->echo_rc = w == 4 ? 0 : -EIO;
		}
	}
	transport_close(c);
	return NULL;
}

static int start_server(struct server *s, pthread_t *th, const char *which,
			struct transport_ep *ep)
{
	struct transport_tls_opts o = {0};
	const char *why = NULL;
	char cert[160], key[160];
	int rc;

	snprintf(cert, sizeof(cert), "%s/srv-%s.pem", tmpdir, which);
	snprintf(key, sizeof(key), "%s/srv-%s.key", tmpdir, which);
	o.cert_file = cert;
	o.key_file = key;
	memset(s, 0, sizeof(*s));
	/* Port 0 is refused by the parser, so pick one in the dynamic range. */
	for (unsigned port = 42000 + (unsigned)(getpid() % 8000), n = 0; n < 50;
	     n++, port++) {
		char e[64];

		snprintf(e, sizeof(e), "tls:127.0.0.1:%u", port);
		transport_parse(e, ep, NULL);
		rc = transport_listen(ep, &o, &s->l, &why);
		if (rc != -EADDRINUSE)
			break;
	}
	if (rc) {
		fprintf(stderr, "tls listen: %s\n", why);
		return rc;
	}
	return pthread_create(th, NULL, server_main, s) ? -1 : 0;
}

static void stop_server(struct server *s, pthread_t th)
{
	pthread_join(th, NULL);
	transport_listener_close(s->l);
}

static void test_tls_ok(void)
{
	struct transport_tls_opts o = {0};
	struct transport_conn *c = NULL;
	struct transport_ep ep;
	struct server s;
	const char *why = NULL;
	char ca[160], buf[8];
	pthread_t th;

	snprintf(ca, sizeof(ca), "%s/ca.pem", tmpdir);
	o.ca_file = ca;
	o.server_name = "localhost";
	if (start_server(&s, &th, "ca", &ep)) {
		CHECK(0);
		return;
	}
	CHECK_EQ(transport_connect(&ep, &o, 5000, &c, &why), 0);
	if (c) {
		CHECK_EQ(transport_write(c, "ping", 4), 4);
		CHECK_EQ(transport_read(c, buf, 4), 4);
		CHECK(memcmp(buf, "ping", 4) == 0);
		CHECK_EQ(transport_peer_cred(c, NULL, NULL, NULL), -ENOTSUP);
		CHECK_EQ(transport_read(c, buf, 4), 0); /* server closed */
		transport_close(c);
	} else {
		fprintf(stderr, "tls connect: %s\n", why);
	}
	stop_server(&s, th);
	CHECK_EQ(s.hs_rc, 0);
	CHECK_EQ(s.echo_rc, 0);

	/* No server name given: the endpoint's address is checked (IP SAN). */
	o.server_name = NULL;
	if (start_server(&s, &th, "ca", &ep)) {
		CHECK(0);
		return;
	}
	c = NULL;
	CHECK_EQ(transport_connect(&ep, &o, 5000, &c, &why), 0);
	if (c) {
		CHECK_EQ(transport_write(c, "pong", 4), 4);
		CHECK_EQ(transport_read(c, buf, 4), 4);
		transport_close(c);
	}
	stop_server(&s, th);
	CHECK_EQ(s.echo_rc, 0);
}

static void test_tls_refused(const char *which, const char *name,
			     const char *expect)
{
	struct transport_tls_opts o = {0};
	struct transport_conn *c = NULL;
	struct transport_ep ep;
	struct server s;
	const char *why = NULL;
	char ca[160];
	pthread_t th;

	snprintf(ca, sizeof(ca), "%s/ca.pem", tmpdir);
	o.ca_file = ca;
	o.server_name = name;
	if (start_server(&s, &th, which, &ep)) {
		CHECK(0);
		return;
	}
	CHECK_EQ(transport_connect(&ep, &o, 5000, &c, &why), -EKEYREJECTED);
	CHECK(c == NULL);
	CHECK(why && strstr(why, expect));
	if (why && !strstr(why, expect))
		fprintf(stderr, "  why: %s\n", why);
	transport_close(c);
	stop_server(&s, th);
	CHECK(s.hs_rc < 0 && s.hs_rc != -EAGAIN);
}

/* A client limited to TLS 1.2 must not get a session. */
static void test_tls12_refused(void)
{
	struct transport_ep ep;
	struct server s;
	SSL_CTX *ctx;
	SSL *ssl;
	pthread_t th;
	int ret;

	if (start_server(&s, &th, "ca", &ep)) {
		CHECK(0);
		return;
	}
	ctx = SSL_CTX_new(TLS_client_method());
	SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	{
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		struct sockaddr_in sin = {.sin_family = AF_INET,
					  .sin_port = htons(ep.port)};

		sin.sin_addr.s_addr = htonl(0x7f000001);
		CHECK_EQ(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
		ssl = SSL_new(ctx);
		SSL_set_fd(ssl, fd);
		ret = SSL_connect(ssl);
		CHECK(ret != 1);
		ERR_clear_error();
		SSL_free(ssl);
		close(fd);
	}
	SSL_CTX_free(ctx);
	stop_server(&s, th);
	CHECK(s.hs_rc < 0 && s.hs_rc != -EAGAIN);
	CHECK(s.echo_rc != 0);
}

static void test_tls_listen_errors(void)
{
	struct transport_tls_opts o = {0};
	struct transport_listener *l = NULL;
	struct transport_ep ep;
	const char *why = NULL;
	char cert[160];

	CHECK_EQ(transport_parse("tls:127.0.0.1:42999", &ep, NULL), 0);
	CHECK(transport_listen(&ep, NULL, &l, &why) < 0);
	CHECK(why && strstr(why, "certificate"));
	snprintf(cert, sizeof(cert), "%s/srv-ca.pem", tmpdir);
	o.cert_file = cert;
	o.key_file = cert; /* not a key */
	CHECK(transport_listen(&ep, &o, &l, &why) < 0);
	CHECK(why && why[0]);
	CHECK(l == NULL);
}

int main(void)
{
	char cmd[200];

	signal(SIGPIPE, SIG_IGN);
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	test_parse();
	test_unix();
	if (make_certs() == 0) {
		test_tls_ok();
		test_tls_refused("rogue", "localhost", "certificate");
		test_tls_refused("ca", "wrong.example", "certificate");
		test_tls12_refused();
		test_tls_listen_errors();
	} else {
		fprintf(stderr, "openssl command failed: TLS cases skipped\n");
		unit_failed++;
	}
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", tmpdir);
	return unit_done("test_transport");
}
