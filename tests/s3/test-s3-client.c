/*
 * test-s3-client.c - s3_http and s3_sts against a live radosgw, plus a
 * scripted fake server for what a healthy radosgw will not do on demand.
 *
 * Run by tests/s3/s3-client.sh, which starts radosgw with rgw-start and
 * exports its env file (S3_ENDPOINT, S3_REGION, S3_ACCESS_KEY,
 * S3_SECRET_KEY, S3_ROLE_ARN, S3_BUCKET).  Without S3_ENDPOINT only the
 * fake-server cases run.
 *
 * Live: put/get/head/list/delete/copy with metadata, checksums,
 * preconditions and odd keys; multipart with UploadPartCopy; a wrong secret
 * gives EACCES; an AssumeRole credential scoped to fsid A works under
 * prefix/A/ and is refused (EACCES) under prefix/B/ for GET, PUT and LIST.
 * Fake server: 503/SlowDown retried then success, retries bounded (EIO
 * within the budget), ExpiredToken gives EKEYEXPIRED without a retry, 200
 * carrying an error, resets retried; through a CONNECT proxy to the live
 * server.  Ambiguous failures: the fake forwards a request to radosgw and
 * then answers 500 or resets, so S3 applied what the client saw fail; the
 * retried conditional PUT, DELETE, self-copy and multipart completion must
 * still succeed with the right ETag, while a real second writer stays
 * ESTALE.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../unit/unit.h"
#include "log.h"
#include "s3_http.h"
#include "s3_sign.h"
#include "s3_sts.h"

static const char *env_endpoint, *env_region, *env_ak, *env_sk, *env_role,
    *env_bucket;

static struct s3_http *client(const char *endpoint, const char *bucket,
			      const char *service, const char *ak,
			      const char *sk, const char *token,
			      const char *proxy)
{
	struct s3_http_config cfg = {
	    .endpoint = endpoint,
	    .region = env_region ? env_region : "us-east-1",
	    .bucket = bucket,
	    .service = service,
	    .proxy = proxy,
	    .retry_base_ms = 10,
	    .retry_budget_ms = 5000,
	    .rgw_quirks = true,
	};
	struct s3_cred c = {ak, sk, token};
	struct s3_http *h = s3_http_new(&cfg);

	if (h && s3_http_set_cred(h, &c)) {
		s3_http_free(h);
		h = NULL;
	}
	return h;
}

static int put_str(struct s3_http *h, const char *key, const char *s)
{
	struct s3_body b = {.buf = s, .len = strlen(s)};
	return s3_http_put_object(h, key, &b, NULL, NULL);
}

/* GET the whole object as a string into out. */
static int get_str(struct s3_http *h, const char *key, char *out, size_t cap)
{
	struct s3_sink s = {.buf = out, .cap = cap - 1};
	size_t got = 0;
	int ret = s3_http_get_object(h, key, 0, 0, &s, NULL, &got, NULL);
	out[ret ? 0 : got] = '\0';
	return ret;
}

static const char *meta_of(const struct s3_obj_info *in, const char *name)
{
	for (size_t i = 0; i < in->nmeta; i++)
		if (!strcmp(in->meta[i].name, name))
			return in->meta[i].value;
	return NULL;
}

static void test_objects(struct s3_http *h)
{
	const struct s3_kv meta[] = {{"mode", "100644"}, {"uid", "1000"}};
	struct s3_put_opts po = {.meta = meta,
				 .nmeta = 2,
				 .content_type = "text/plain",
				 .checksum = S3_CHECKSUM_SHA256};
	const char *text = "hello, object store";
	struct s3_body b = {.buf = text, .len = strlen(text)};
	struct s3_obj_info *in = calloc(1, sizeof(*in));
	char etag[S3_ETAG_MAX], buf[256];
	size_t got;

	CHECK_EQ(s3_http_put_object(h, "t/obj", &b, &po, etag), 0);
	CHECK(etag[0] == '"');
	CHECK_EQ(s3_http_head_object(h, "t/obj", in), 0);
	CHECK_EQ(in->size, strlen(text));
	CHECK_STR(in->etag, etag);
	CHECK_STR(meta_of(in, "mode"), "100644");
	CHECK_STR(meta_of(in, "uid"), "1000");
	CHECK_STR(in->content_type, "text/plain");
	CHECK(in->mtime > 1600000000);
	CHECK_EQ(get_str(h, "t/obj", buf, sizeof(buf)), 0);
	CHECK_STR(buf, text);

	/* ranges: middle, to the end, past the end */
	struct s3_sink s = {.buf = buf, .cap = sizeof(buf)};
	CHECK_EQ(s3_http_get_object(h, "t/obj", 7, 6, &s, NULL, &got, in), 0);
	CHECK_EQ(got, 6);
	CHECK(!memcmp(buf, "object", 6));
	CHECK_EQ(in->size, strlen(text)); /* from Content-Range */
	CHECK_EQ(s3_http_get_object(h, "t/obj", 14, 0, &s, NULL, &got, NULL),
		 0);
	CHECK_EQ(got, 5);
	CHECK_EQ(s3_http_get_object(h, "t/obj", 100, 10, &s, NULL, &got, NULL),
		 0);
	CHECK_EQ(got, 0);
	/* a buffer too small is an error, not a truncation */
	s.cap = 4;
	CHECK_EQ(s3_http_get_object(h, "t/obj", 0, 0, &s, NULL, &got, NULL),
		 -EOVERFLOW);
	s.cap = sizeof(buf);

	/* preconditions */
	CHECK_EQ(
	    s3_http_get_object(h, "t/obj", 0, 0, &s, "\"0123\"", &got, NULL),
	    -ESTALE);
	CHECK_EQ(s3_http_get_object(h, "t/obj", 0, 0, &s, etag, &got, NULL), 0);
	po.checksum = S3_CHECKSUM_NONE;
	po.if_match = "\"0123\"";
	CHECK_EQ(s3_http_put_object(h, "t/obj", &b, &po, NULL), -ESTALE);
	po.if_match = etag;
	CHECK_EQ(s3_http_put_object(h, "t/obj", &b, &po, etag), 0);
	po.if_match = NULL;
	po.if_none_match = true;
	CHECK_EQ(s3_http_put_object(h, "t/obj", &b, &po, NULL), -ESTALE);
	CHECK_EQ(s3_http_put_object(h, "t/new", &b, &po, NULL), 0);
	po.if_none_match = false;

	/* a body from a file range, with a CRC32C checksum */
	FILE *f = tmpfile();
	fputs("0123456789abcdefghij", f);
	fflush(f);
	struct s3_body fb = {.fd = fileno(f), .off = 5, .len = 10};
	po.checksum = S3_CHECKSUM_CRC32C;
	CHECK_EQ(s3_http_put_object(h, "t/from-fd", &fb, &po, NULL), 0);
	CHECK_EQ(get_str(h, "t/from-fd", buf, sizeof(buf)), 0);
	CHECK_STR(buf, "56789abcde");
	/* into a file sink */
	struct s3_sink fs = {.fd = fileno(f), .fd_off = 100};
	CHECK_EQ(
	    s3_http_get_object(h, "t/from-fd", 2, 3, &fs, NULL, &got, NULL), 0);
	CHECK_EQ(got, 3);
	CHECK_EQ(pread(fileno(f), buf, 3, 100), 3);
	CHECK(!memcmp(buf, "789", 3));
	fclose(f);

	/* copy: COPY keeps metadata, REPLACE sets it */
	struct s3_copy_opts co = {.directive = S3_META_COPY};
	CHECK_EQ(s3_http_copy_object(h, "t/obj", "t/copy1", &co, etag), 0);
	CHECK_EQ(s3_http_head_object(h, "t/copy1", in), 0);
	CHECK_STR(meta_of(in, "mode"), "100644");
	const struct s3_kv m2[] = {{"mode", "100600"}};
	co = (struct s3_copy_opts){.directive = S3_META_REPLACE,
				   .meta = m2,
				   .nmeta = 1,
				   .src_if_match = etag};
	CHECK_EQ(s3_http_copy_object(h, "t/obj", "t/copy2", &co, NULL), 0);
	CHECK_EQ(s3_http_head_object(h, "t/copy2", in), 0);
	CHECK_STR(meta_of(in, "mode"), "100600");
	CHECK(meta_of(in, "uid") == NULL);
	co.src_if_match = "\"0123\"";
	CHECK_EQ(s3_http_copy_object(h, "t/obj", "t/copy3", &co, NULL),
		 -ESTALE);
	CHECK_EQ(s3_http_copy_object(h, "t/missing", "t/copy3", NULL, NULL),
		 -ENOENT);

	/* delete */
	CHECK_EQ(s3_http_delete_object(h, "t/copy2"), 0);
	CHECK_EQ(s3_http_head_object(h, "t/copy2", in), -ENOENT);
	CHECK_EQ(get_str(h, "t/copy2", buf, sizeof(buf)), -ENOENT);
	CHECK_STR(s3_http_last_error()->code, "NoSuchKey");
	CHECK_EQ(s3_http_last_error()->status, 404);
	free(in);
}

static int has_key(const struct s3_list_page *p, const char *k)
{
	for (size_t i = 0; i < p->nentries; i++)
		if (!strcmp(p->entries[i].key, k))
			return 1;
	return 0;
}

static void test_list(struct s3_http *h)
{
	const char *keys[] = {
	    "l/a",     "l/b b",	  "l/c+c",    "l/d\xe1\x88\xb4",
	    "l/sub/x", "l/sub/y", "l/e&<>\"'"};
	struct s3_list_page p;
	size_t total = 0, pages = 0;
	char *tok = NULL;

	for (size_t i = 0; i < sizeof(keys) / sizeof(*keys); i++)
		CHECK_EQ(put_str(h, keys[i], keys[i]), 0);
	CHECK_EQ(s3_http_list(h, "l/", "/", NULL, 0, &p), 0);
	CHECK_EQ(p.nentries, 5);
	for (size_t i = 0; i < 7; i++)
		if (i != 4 && i != 5)
			CHECK(has_key(&p, keys[i]));
	CHECK_EQ(p.nprefixes, 1);
	CHECK(p.nprefixes && !strcmp(p.prefixes[0], "l/sub/"));
	CHECK(!p.truncated && !p.next_token);
	CHECK(p.nentries && p.entries[0].size == 3 && p.entries[0].mtime > 0 &&
	      p.entries[0].etag[0] == '"');
	s3_http_list_free(&p);

	/* pages of two, no delimiter: every key once */
	do {
		CHECK_EQ(s3_http_list(h, "l/", NULL, tok, 2, &p), 0);
		free(tok);
		tok = p.next_token ? strdup(p.next_token) : NULL;
		total += p.nentries;
		pages++;
		CHECK(p.nentries <= 2);
		s3_http_list_free(&p);
	} while (tok && pages < 10);
	CHECK_EQ(total, 7);
	CHECK_EQ(pages, 4);
	free(tok);

	CHECK_EQ(s3_http_list(h, "nothing-here/", "/", NULL, 0, &p), 0);
	CHECK_EQ(p.nentries + p.nprefixes, 0);
	s3_http_list_free(&p);
}

static void test_multipart(struct s3_http *h)
{
	size_t n1 = 5 * 1024 * 1024 + 17, n2 = 4096;
	char *a = malloc(n1), *back = malloc(n1 + n2 + 1);
	char up[S3_UPLOAD_ID_MAX], e1[S3_ETAG_MAX], e2[S3_ETAG_MAX];
	char etag[S3_ETAG_MAX], small[8192];
	size_t got;

	for (size_t i = 0; i < n1; i++)
		a[i] = (char)('a' + i % 23);
	for (size_t i = 0; i < sizeof(small); i++)
		small[i] = (char)('A' + i % 19);
	struct s3_body sb = {.buf = small, .len = sizeof(small)};
	CHECK_EQ(s3_http_put_object(h, "m/src", &sb, NULL, NULL), 0);

	CHECK_EQ(s3_http_mpu_create(h, "m/big", NULL, up), 0);
	struct s3_body b1 = {.buf = a, .len = n1};
	CHECK_EQ(s3_http_mpu_put_part(h, "m/big", up, 1, &b1, e1), 0);
	CHECK_EQ(s3_http_mpu_copy_part(h, "m/big", up, 2, "m/src", 100, n2,
				       NULL, e2),
		 0);
	struct s3_part parts[] = {{1, e1}, {2, e2}};
	CHECK_EQ(s3_http_mpu_complete(h, "m/big", up, parts, 2, etag), 0);
	CHECK(strstr(etag, "-2\"") != NULL);
	char want[S3_ETAG_MAX];
	CHECK_EQ(s3_http_mpu_etag(parts, 2, want), 0);
	CHECK_STR(etag, want); /* radosgw follows S3's rule */
	struct s3_part bad[] = {{1, "\"xyz\""}};
	CHECK_EQ(s3_http_mpu_etag(bad, 1, want), -EINVAL);
	struct s3_sink s = {.buf = back, .cap = n1 + n2 + 1};
	CHECK_EQ(s3_http_get_object(h, "m/big", 0, 0, &s, NULL, &got, NULL), 0);
	CHECK_EQ(got, n1 + n2);
	CHECK(!memcmp(back, a, n1));
	CHECK(!memcmp(back + n1, small + 100, n2));

	/* abort: the upload is gone */
	CHECK_EQ(s3_http_mpu_create(h, "m/aborted", NULL, up), 0);
	CHECK_EQ(s3_http_mpu_abort(h, "m/aborted", up), 0);
	CHECK_EQ(s3_http_mpu_put_part(h, "m/aborted", up, 1, &sb, e1), -ENOENT);
	CHECK_STR(s3_http_last_error()->code, "NoSuchUpload");
	/* argument checks before any request */
	CHECK_EQ(s3_http_mpu_put_part(h, "m/big", up, 0, &sb, e1), -EINVAL);
	CHECK_EQ(s3_http_mpu_put_part(h, "m/big", up, 10001, &sb, e1), -EINVAL);
	CHECK_EQ(s3_http_mpu_complete(h, "m/big", up, parts, 0, e1), -EINVAL);
	free(a);
	free(back);
}

static void test_bad_secret(void)
{
	struct s3_http *bad = client(env_endpoint, env_bucket, NULL, env_ak,
				     "not-the-secret", NULL, NULL);
	struct s3_obj_info in;
	char buf[64];

	CHECK(bad != NULL);
	if (!bad)
		return;
	CHECK_EQ(s3_http_head_object(bad, "t/obj", &in), -EACCES);
	CHECK_EQ(get_str(bad, "t/obj", buf, sizeof(buf)), -EACCES);
	/* radosgw says AccessDenied where AWS says SignatureDoesNotMatch */
	CHECK(!strcmp(s3_http_last_error()->code, "SignatureDoesNotMatch") ||
	      !strcmp(s3_http_last_error()->code, "AccessDenied"));
	CHECK_EQ(put_str(bad, "t/evil", "x"), -EACCES);
	CHECK_EQ(s3_http_last_error()->attempts, 1);
	s3_http_free(bad);
}

static void test_sts(struct s3_http *base)
{
	char policy[S3_STS_POLICY_MAX], buf[64];
	struct s3_sts_cred *cred = calloc(1, sizeof(*cred));
	struct s3_http *sts =
	    client(env_endpoint, NULL, "sts", env_ak, env_sk, NULL, NULL);
	struct s3_list_page p;

	CHECK_EQ(
	    s3_sts_policy(env_bucket, "data/fs", "A", policy, sizeof(policy)),
	    0);
	struct s3_sts_assume as = {.role_arn = env_role,
				   .session_name = "occfs-fs-A",
				   .duration_s = 900,
				   .policy = policy};
	CHECK_EQ(s3_sts_assume_role(sts, &as, cred), 0);
	CHECK(cred->session_token[0] != '\0');
	CHECK(cred->expiration > time(NULL) + 600 &&
	      cred->expiration < time(NULL) + 1000);
	/* a role the user may not assume */
	struct s3_sts_cred *c2 = calloc(1, sizeof(*c2));
	as.role_arn = "arn:aws:iam:::role/no-such-role";
	CHECK(s3_sts_assume_role(sts, &as, c2) < 0);
	free(c2);

	CHECK_EQ(put_str(base, "data/fs/B/secret", "B's data"), 0);
	struct s3_http *a =
	    client(env_endpoint, env_bucket, NULL, cred->access_key,
		   cred->secret_key, cred->session_token, NULL);
	CHECK(a != NULL);
	if (a) {
		CHECK_EQ(put_str(a, "data/fs/A/f", "A's data"), 0);
		CHECK_EQ(get_str(a, "data/fs/A/f", buf, sizeof(buf)), 0);
		CHECK_STR(buf, "A's data");
		CHECK_EQ(s3_http_list(a, "data/fs/A/", "/", NULL, 0, &p), 0);
		CHECK_EQ(p.nentries, 1);
		s3_http_list_free(&p);
		CHECK_EQ(s3_http_delete_object(a, "data/fs/A/f"), 0);
		/* fsid B: refused, whatever the operation */
		CHECK_EQ(get_str(a, "data/fs/B/secret", buf, sizeof(buf)),
			 -EACCES);
		CHECK_EQ(put_str(a, "data/fs/B/new", "x"), -EACCES);
		CHECK_EQ(s3_http_list(a, "data/fs/B/", "/", NULL, 0, &p),
			 -EACCES);
		CHECK_EQ(s3_http_list(a, "data/fs/", "/", NULL, 0, &p),
			 -EACCES);
		CHECK_EQ(s3_http_delete_object(a, "data/fs/B/secret"), -EACCES);
		CHECK_EQ(get_str(base, "data/fs/B/secret", buf, sizeof(buf)),
			 0);
		CHECK_STR(buf, "B's data");
		/* a tampered token is refused */
		struct s3_cred bad = {cred->access_key, cred->secret_key,
				      "AAAA"};
		CHECK_EQ(s3_http_set_cred(a, &bad), 0);
		CHECK_EQ(put_str(a, "data/fs/A/g", "x"), -EACCES);
		s3_http_free(a);
	}
	s3_sts_cred_clear(cred);
	free(cred);
	s3_http_free(sts);
}

/* ---- the fake server and the CONNECT proxy --------------------------- */

struct canned {
	int status; /* 0 = close the connection without answering */
	const char *body;
	int fwd; /* FWD_*: send the request to the live server first */
};

enum { FWD_NONE, FWD_PASS, FWD_THEN };

struct fake {
	int lfd, port;
	const struct canned *script;
	int n, served;
	int up_port;  /* the live server, for FWD_* */
	bool proxy;   /* act as a CONNECT proxy instead */
	int connects; /* CONNECT requests seen */
	char connect_to[128];
	pthread_t th;
};

static int listen_any(int *port)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) ||
	    listen(fd, 8) || getsockname(fd, (struct sockaddr *)&a, &al)) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	*port = ntohs(a.sin_port);
	return fd;
}

/* Read one request head and body (by Content-Length) into buf. */
static int read_whole(int fd, char *buf, size_t cap, size_t *len)
{
	size_t n = 0, want;
	char *end = NULL, *cl;

	while (!end && n + 1 < cap) {
		ssize_t k = read(fd, buf + n, cap - 1 - n);
		if (k <= 0)
			return -1;
		n += (size_t)k;
		buf[n] = '\0';
		end = strstr(buf, "\r\n\r\n");
	}
	if (!end)
		return -1;
	cl = strcasestr(buf, "\ncontent-length:");
	want = (size_t)(end + 4 - buf) +
	       (cl && cl < end ? strtoul(cl + 16, NULL, 10) : 0);
	if (want > cap)
		return -1;
	while (n < want) {
		ssize_t k = read(fd, buf + n, want - n);
		if (k <= 0)
			return -1;
		n += (size_t)k;
	}
	*len = n;
	return 0;
}

/*
 * Send the request to the live server (asking it to close after the
 * reply) and collect the whole reply into rep.
 */
static int forward(int port, const char *req, size_t len, char *rep, size_t cap,
		   size_t *replen)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons((uint16_t)port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	const char *eol = strstr(req, "\r\n");
	int up = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	size_t n = 0, head = eol ? (size_t)(eol + 2 - req) : 0;
	const char *cc = "Connection: close\r\n";
	ssize_t k;

	if (up < 0 || !eol || connect(up, (struct sockaddr *)&a, sizeof(a)) ||
	    write(up, req, head) != (ssize_t)head ||
	    write(up, cc, strlen(cc)) != (ssize_t)strlen(cc) ||
	    write(up, req + head, len - head) != (ssize_t)(len - head)) {
		if (up >= 0)
			close(up);
		return -1;
	}
	while (n < cap && (k = read(up, rep + n, cap - n)) > 0)
		n += (size_t)k;
	close(up);
	*replen = n;
	return 0;
}

/* Close with a reset (RST), as a dropped connection looks. */
static void close_reset(int fd)
{
	struct linger l = {1, 0};

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	close(fd);
}

/* Read one request head (and its body, by Content-Length). */
static int read_request(int fd, char *buf, size_t cap)
{
	size_t n = 0;
	char *end = NULL;

	while (!end && n + 1 < cap) {
		ssize_t k = read(fd, buf + n, cap - 1 - n);
		if (k <= 0)
			return -1;
		n += (size_t)k;
		buf[n] = '\0';
		end = strstr(buf, "\r\n\r\n");
	}
	if (!end)
		return -1;
	char *cl = strcasestr(buf, "\ncontent-length:");
	size_t want = cl ? strtoul(cl + 16, NULL, 10) : 0;
	size_t have = n - (size_t)(end + 4 - buf);
	char sink[65536];
	while (have < want) {
		ssize_t k = read(fd, sink, sizeof(sink));
		if (k <= 0)
			return -1;
		have += (size_t)k;
	}
	return 0;
}

static void relay(int a, int b)
{
	struct pollfd p[2] = {{.fd = a, .events = POLLIN},
			      {.fd = b, .events = POLLIN}};
	char buf[65536];

	while (poll(p, 2, 5000) > 0) {
		for (int i = 0; i < 2; i++) {
			if (!(p[i].revents & (POLLIN | POLLHUP)))
				continue;
			ssize_t k = read(p[i].fd, buf, sizeof(buf));
			if (k <= 0 || write(p[1 - i].fd, buf, (size_t)k) != k)
				return;
		}
	}
}

static void serve_proxy(struct fake *f, int c, char *req)
{
	int host_port = 0, up;
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};

	f->connects++;
	if (sscanf(req, "CONNECT %127s", f->connect_to) != 1 ||
	    !strchr(f->connect_to, ':'))
		return;
	host_port = atoi(strrchr(f->connect_to, ':') + 1);
	a.sin_port = htons((uint16_t)host_port);
	up = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (up < 0 || connect(up, (struct sockaddr *)&a, sizeof(a))) {
		dprintf(c, "HTTP/1.1 502 Bad Gateway\r\n\r\n");
	} else {
		dprintf(c, "HTTP/1.1 200 Connection established\r\n\r\n");
		relay(c, up);
	}
	if (up >= 0)
		close(up);
}

/* One scripted exchange that goes to the live server first. */
static int serve_forward(struct fake *f, int c, const struct canned *k)
{
	size_t cap = 1 << 20, len, rl;
	char *req = malloc(cap), *rep = malloc(cap);
	const char *b = k->body ? k->body : "";
	int ret = -1;

	if (!req || !rep || read_whole(c, req, cap, &len) ||
	    forward(f->up_port, req, len, rep, cap, &rl))
		goto out;
	ret = 0;
	if (k->fwd == FWD_PASS) {
		if (write(c, rep, rl) != (ssize_t)rl)
			ret = -1;
	} else if (k->status) {
		dprintf(c,
			"HTTP/1.1 %d X\r\nContent-Length: %zu\r\n"
			"Connection: close\r\n\r\n%s",
			k->status, strlen(b), b);
	} else {
		ret = 1; /* reset after the server applied it */
	}
out:
	free(req);
	free(rep);
	return ret;
}

static void *fake_main(void *arg)
{
	struct fake *f = arg;
	char req[65536];

	for (;;) {
		int c = accept4(f->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0)
			return NULL;
		if (!f->proxy && f->served < f->n && f->script[f->served].fwd) {
			if (serve_forward(f, c, &f->script[f->served++]) == 1)
				close_reset(c);
			else
				close(c);
			continue;
		}
		/* one request per connection keeps the script simple */
		if (read_request(c, req, sizeof(req)) == 0) {
			if (f->proxy) {
				serve_proxy(f, c, req);
			} else if (f->served < f->n) {
				const struct canned *k =
				    &f->script[f->served++];
				const char *b = k->body ? k->body : "";
				if (k->status)
					dprintf(c,
						"HTTP/1.1 %d X\r\n"
						"Content-Length: %zu\r\n"
						"Connection: close\r\n\r\n%s",
						k->status, strlen(b), b);
			}
		}
		close(c);
	}
}

static int fake_start(struct fake *f)
{
	f->lfd = listen_any(&f->port);
	if (f->lfd < 0)
		return -1;
	return pthread_create(&f->th, NULL, fake_main, f) ? -1 : 0;
}

static void fake_stop(struct fake *f)
{
	shutdown(f->lfd, SHUT_RDWR);
	close(f->lfd);
	pthread_join(f->th, NULL);
}

#define ERR(code) "<?xml version=\"1.0\"?><Error><Code>" code "</Code></Error>"

static uint64_t now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

static void run_script(const struct canned *script, int n, int want_ret,
		       int want_served, int want_attempts, const char *what)
{
	struct fake f = {.script = script, .n = n};
	char url[64], buf[64];
	struct s3_http *h;

	CHECK_EQ(fake_start(&f), 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", f.port);
	h = client(url, "bkt", NULL, "AK", "SK", NULL, NULL);
	int ret = get_str(h, "k", buf, sizeof(buf));
	if (ret != want_ret)
		fprintf(stderr, "script %s\n", what);
	CHECK_EQ(ret, want_ret);
	CHECK_EQ(s3_http_last_error()->attempts, want_attempts);
	s3_http_free(h);
	fake_stop(&f);
	CHECK_EQ(f.served, want_served);
}

/* A server that stays down: EIO, and never past the retry budget. */
static void test_budget(void)
{
	struct canned down[40];
	struct fake f = {.script = down, .n = 40};
	struct s3_http_config cfg = {.region = "us-east-1",
				     .bucket = "bkt",
				     .retry_base_ms = 50,
				     .retry_budget_ms = 700,
				     .max_attempts = 40};
	struct s3_cred cr = {"AK", "SK", NULL};
	char url[64], buf[8];

	for (int i = 0; i < 40; i++)
		down[i] = (struct canned){503, ERR("SlowDown"), FWD_NONE};
	CHECK_EQ(fake_start(&f), 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", f.port);
	cfg.endpoint = url;
	struct s3_http *h = s3_http_new(&cfg);
	CHECK(h && !s3_http_set_cred(h, &cr));
	uint64_t t0 = now_ms();
	CHECK_EQ(get_str(h, "k", buf, sizeof(buf)), -EIO);
	uint64_t el = now_ms() - t0;
	CHECK(el <= 700 + 200);
	CHECK(s3_http_last_error()->attempts >= 3);
	CHECK(s3_http_last_error()->attempts < 40);
	CHECK_STR(s3_http_last_error()->code, "SlowDown");
	s3_http_free(h);
	fake_stop(&f);
}

static void test_fake_server(void)
{
	const struct canned flaky[] = {{503, ERR("SlowDown"), 0},
				       {500, ERR("InternalError"), 0},
				       {0, NULL, 0}, /* reset */
				       {200, "ok", 0}};
	const struct canned down[] = {{503, ERR("ServiceUnavailable"), 0},
				      {503, ERR("ServiceUnavailable"), 0},
				      {503, ERR("ServiceUnavailable"), 0},
				      {503, ERR("ServiceUnavailable"), 0},
				      {503, ERR("ServiceUnavailable"), 0},
				      {200, "never", 0}};
	const struct canned expired[] = {{400, ERR("ExpiredToken"), 0},
					 {200, "no", 0}};
	const struct canned denied[] = {{403, ERR("AccessDenied"), 0}};
	const struct canned odd[] = {{418, "<not xml", 0}};

	run_script(flaky, 4, 0, 4, 4, "flaky");
	run_script(down, 6, -EIO, 5, 5, "down");
	run_script(expired, 2, -EKEYEXPIRED, 1, 1, "expired");
	CHECK_STR(s3_http_last_error()->code, "ExpiredToken");
	run_script(denied, 1, -EACCES, 1, 1, "denied");
	run_script(odd, 1, -EINVAL, 1, 1, "odd");

	/* CompleteMultipartUpload can fail inside a 200 */
	const struct canned in200[] = {{200, ERR("AccessDenied"), 0}};
	struct fake f = {.script = in200, .n = 1};
	char url[64], et[S3_ETAG_MAX];
	CHECK_EQ(fake_start(&f), 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", f.port);
	struct s3_http *h = client(url, "bkt", NULL, "AK", "SK", NULL, NULL);
	struct s3_part part = {1, "\"e\""};
	CHECK_EQ(s3_http_mpu_complete(h, "k", "u", &part, 1, et), -EACCES);
	CHECK(!s3_http_last_error()->ambiguous); /* an answer, not a failure */
	s3_http_free(h);
	fake_stop(&f);

	/* nobody listening: refused, retried, bounded */
	h = client(url, "bkt", NULL, "AK", "SK", NULL, NULL);
	char buf[8];
	CHECK_EQ(get_str(h, "k", buf, sizeof(buf)), -EIO);
	CHECK_EQ(s3_http_last_error()->attempts, 5);
	CHECK(!s3_http_last_error()->ambiguous); /* never reached a server */
	s3_http_free(h);
	test_budget();
}

static void test_proxy(void)
{
	struct fake f = {.proxy = true};
	char url[64], buf[64];

	CHECK_EQ(fake_start(&f), 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", f.port);
	struct s3_http *h =
	    client(env_endpoint, env_bucket, NULL, env_ak, env_sk, NULL, url);
	CHECK_EQ(put_str(h, "p/via-proxy", "tunnelled"), 0);
	CHECK_EQ(get_str(h, "p/via-proxy", buf, sizeof(buf)), 0);
	CHECK_STR(buf, "tunnelled");
	s3_http_free(h);
	fake_stop(&f);
	CHECK(f.connects >= 1);
	CHECK(strstr(env_endpoint, f.connect_to) != NULL);
}

/* A client of the live server through a fake running script. */
static struct s3_http *via(struct fake *f, const struct canned *script, int n)
{
	char url[64];

	*f = (struct fake){.script = script, .n = n};
	f->up_port = atoi(strrchr(env_endpoint, ':') + 1);
	if (fake_start(f))
		return NULL;
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", f->port);
	return client(url, env_bucket, NULL, env_ak, env_sk, NULL, NULL);
}

#define AFTER500                                    \
	{                                           \
		500, ERR("InternalError"), FWD_THEN \
	}
#define AFTERRST                  \
	{                         \
		0, NULL, FWD_THEN \
	}
#define PASS                      \
	{                         \
		0, NULL, FWD_PASS \
	}

/* The server applied the request, the client saw it fail. */
static void test_ambiguous(struct s3_http *direct)
{
	const char *v1 = "first version", *v2 = "second version";
	struct s3_body b1 = {.buf = v1, .len = strlen(v1)};
	struct s3_body b2 = {.buf = v2, .len = strlen(v2)};
	const struct s3_kv meta[] = {{"mode", "33188"}};
	struct s3_put_opts po = {
	    .if_none_match = true, .meta = meta, .nmeta = 1};
	char etag[S3_ETAG_MAX], e2[S3_ETAG_MAX], buf[64], md5[S3_ETAG_MAX];
	struct s3_obj_info *in = calloc(1, sizeof(*in));
	struct s3_http *h;
	struct fake f;

	s3_http_delete_object(direct, "amb/new");
	/* If-None-Match: applied, 500, retried: 412, HEAD: ours */
	const struct canned s1[] = {AFTER500, PASS, PASS};
	h = via(&f, s1, 3);
	CHECK_EQ(s3_http_put_object(h, "amb/new", &b1, &po, etag), 0);
	s3_http_free(h);
	fake_stop(&f);
	CHECK_EQ(f.served, 3);
	CHECK_STR(etag,
		  "\"e9e2371570daec2e7b70faa4f0f1eab8\""); /* MD5 of the body */
	CHECK_EQ(s3_http_head_object(direct, "amb/new", in), 0);
	CHECK_STR(in->etag, etag);
	CHECK_EQ(get_str(direct, "amb/new", buf, sizeof(buf)), 0);
	CHECK_STR(buf, v1);

	/* If-Match: applied, reset before the reply; retried: 412; ours */
	const struct canned s2[] = {AFTERRST, PASS, PASS};
	po = (struct s3_put_opts){.if_match = etag, .meta = meta, .nmeta = 1};
	h = via(&f, s2, 3);
	CHECK_EQ(s3_http_put_object(h, "amb/new", &b2, &po, e2), 0);
	s3_http_free(h);
	fake_stop(&f);
	CHECK_EQ(f.served, 3);
	CHECK(strcmp(e2, etag) != 0);
	CHECK_EQ(get_str(direct, "amb/new", buf, sizeof(buf)), 0);
	CHECK_STR(buf, v2);

	/* a real second writer after an ambiguous 500: ESTALE, nothing
	 * overwritten (the 500 came before the server saw the request) */
	const struct canned s3[] = {
	    {500, ERR("InternalError"), FWD_NONE}, PASS, PASS};
	po = (struct s3_put_opts){.if_match = etag};
	h = via(&f, s3, 3);
	CHECK_EQ(s3_http_put_object(h, "amb/new", &b1, &po, md5), -ESTALE);
	s3_http_free(h);
	fake_stop(&f);
	CHECK_EQ(f.served, 3);
	CHECK_EQ(get_str(direct, "amb/new", buf, sizeof(buf)), 0);
	CHECK_STR(buf, v2);
	/* the same, new object: If-None-Match on what another wrote */
	po = (struct s3_put_opts){.if_none_match = true};
	h = via(&f, s3, 3);
	CHECK_EQ(s3_http_put_object(h, "amb/new", &b1, &po, md5), -ESTALE);
	s3_http_free(h);
	fake_stop(&f);
	CHECK_STR(get_str(direct, "amb/new", buf, sizeof(buf)) ? "" : buf, v2);

	/* an earlier flush may have landed (maybe_applied): same bytes ok,
	 * other bytes ESTALE, without any fault */
	po = (struct s3_put_opts){.if_none_match = true, .maybe_applied = true};
	CHECK_EQ(s3_http_put_object(direct, "amb/new", &b2, &po, md5), 0);
	CHECK_STR(md5, e2);
	CHECK_EQ(s3_http_put_object(direct, "amb/new", &b1, &po, md5), -ESTALE);

	/* self-copy with REPLACE and a source precondition */
	const struct s3_kv m2[] = {{"mode", "33261"}};
	struct s3_copy_opts co = {.directive = S3_META_REPLACE,
				  .meta = m2,
				  .nmeta = 1,
				  .src_if_match = e2};
	const struct canned s4[] = {AFTER500, PASS, PASS};
	h = via(&f, s4, 3);
	CHECK_EQ(s3_http_copy_object(h, "amb/new", "amb/new", &co, etag), 0);
	s3_http_free(h);
	fake_stop(&f);
	CHECK_EQ(s3_http_head_object(direct, "amb/new", in), 0);
	CHECK_STR(meta_of(in, "mode") ? meta_of(in, "mode") : "", "33261");

	/* DELETE applied, 500, retried: gone is done */
	const struct canned s5[] = {AFTER500, PASS};
	h = via(&f, s5, 2);
	CHECK_EQ(s3_http_delete_object(h, "amb/new"), 0);
	s3_http_free(h);
	fake_stop(&f);
	CHECK_EQ(s3_http_head_object(direct, "amb/new", in), -ENOENT);

	/* multipart completion applied, reset; retried: NoSuchUpload; the
	 * HEAD finds the ETag the parts make */
	char up[S3_UPLOAD_ID_MAX], pe[S3_ETAG_MAX], want[S3_ETAG_MAX];
	CHECK_EQ(s3_http_mpu_create(direct, "amb/mpu", NULL, up), 0);
	CHECK_EQ(s3_http_mpu_put_part(direct, "amb/mpu", up, 1, &b1, pe), 0);
	struct s3_part part = {1, pe};
	CHECK_EQ(s3_http_mpu_etag(&part, 1, want), 0);
	const struct canned s6[] = {AFTERRST, PASS, PASS};
	h = via(&f, s6, 3);
	CHECK_EQ(s3_http_mpu_complete(h, "amb/mpu", up, &part, 1, etag), 0);
	s3_http_free(h);
	fake_stop(&f);
	CHECK_EQ(s3_http_head_object(direct, "amb/mpu", in), 0);
	CHECK_STR(in->etag, want);
	CHECK_EQ(get_str(direct, "amb/mpu", buf, sizeof(buf)), 0);
	CHECK_STR(buf, v1);
	/* abort applied, 500, retried: NoSuchUpload is done */
	CHECK_EQ(s3_http_mpu_create(direct, "amb/mpu2", NULL, up), 0);
	const struct canned s7[] = {AFTER500, PASS};
	h = via(&f, s7, 2);
	CHECK_EQ(s3_http_mpu_abort(h, "amb/mpu2", up), 0);
	s3_http_free(h);
	fake_stop(&f);
	free(in);
}

static void test_config(void)
{
	struct s3_http_config bad = {.endpoint = "ftp://x", .region = "r"};
	CHECK(s3_http_new(&bad) == NULL && errno == EINVAL);
	bad.endpoint = "http://host/base";
	CHECK(s3_http_new(&bad) == NULL && errno == EINVAL);
	bad.endpoint = "http://host";
	bad.virtual_host = true;
	CHECK(s3_http_new(&bad) == NULL && errno == EINVAL);
}

int main(void)
{
	struct s3_http *h;

	log_init("test-s3-client", getenv("S3_DEBUG") ? 1 : 0);
	test_config();
	test_fake_server();
	env_endpoint = getenv("S3_ENDPOINT");
	env_region = getenv("S3_REGION");
	env_ak = getenv("S3_ACCESS_KEY");
	env_sk = getenv("S3_SECRET_KEY");
	env_role = getenv("S3_ROLE_ARN");
	env_bucket = getenv("S3_BUCKET");
	if (!env_endpoint || !env_ak || !env_sk || !env_role || !env_bucket) {
		printf("test-s3-client: no S3 server: live cases skipped\n");
		return unit_done("test-s3-client");
	}
	h = client(env_endpoint, env_bucket, NULL, env_ak, env_sk, NULL, NULL);
	CHECK(h != NULL);
	if (!h)
		return unit_done("test-s3-client");
	test_objects(h);
	test_list(h);
	test_multipart(h);
	test_ambiguous(h);
	test_bad_secret();
	test_sts(h);
	test_proxy();
	s3_http_free(h);
	return unit_done("test-s3-client");
}
