/*
 * test_rpcc.c - the RPC client against a scripted fake broker.
 *
 * The fake broker is the other end of a socketpair, driven by the test
 * itself: it reads frames with frame_parse/proto_decode and answers by
 * hand, so replies can come out of order, late, malformed or never.  Covers
 * HELLO (granted, refused with a reason, wrong version, no answer), routing
 * of out-of-order replies, zero-copy READ payloads, zstd both ways, pushes,
 * per-call timeouts with late replies dropped, the in-flight limit, and a
 * dead connection failing pending and later calls with -ENOTCONN at once.
 * Reading passes between callers and the background thread: a push with no
 * call in flight still arrives, and many threads calling at once, with
 * replies out of order and pushes in between, each get their own reply.
 */
#include "buf.h"
#include "frame.h"
#include "proto.h"
#include "rpcc.h"
#include "transport.h"
#include "unit.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- the fake broker ---------------------------------------------------- */

struct fake {
	int fd;
	struct buf in, scratch;
	int zstd;
	int saw_zstd; /* a compressed frame arrived */
};

static void fake_init(struct fake *f, int fd)
{
	f->fd = fd;
	buf_init(&f->in, 0);
	buf_init(&f->scratch, PROTO_MAX_FRAME);
	f->zstd = 0;
	f->saw_zstd = 0;
}

static void fake_cleanup(struct fake *f)
{
	buf_cleanup(&f->in);
	buf_cleanup(&f->scratch);
	if (f->fd >= 0)
		close(f->fd);
}

/* Read one request into m; 0, or -1 on EOF/garbage. */
static int fake_read(struct fake *f, struct proto_msg *m)
{
	const uint8_t *body;
	size_t blen, used;
	uint8_t tmp[65536];
	ssize_t r;
	int rc;

	for (;;) {
		rc = frame_parse(f->in.p, f->in.len, PROTO_MAX_FRAME, 1,
				 &f->scratch, &body, &blen, &used, NULL);
		if (rc < 0)
			return -1;
		if (rc == 1)
			break;
		r = read(f->fd, tmp, sizeof(tmp));
		if (r <= 0)
			return -1;
		buf_append(&f->in, tmp, (size_t)r);
	}
	if (f->in.p[0] & 0x80)
		f->saw_zstd = 1;
	rc = proto_decode(body, blen, m, NULL);
	if (rc == 0 && m->data_len) {
		/* Detach data from our buffer before consuming it. */
		m->data_owned = malloc(m->data_len);
		memcpy(m->data_owned, m->data, m->data_len);
		m->data = m->data_owned;
	}
	buf_consume(&f->in, used);
	return rc ? -1 : 0;
}

static void fake_write_raw(struct fake *f, const void *p, size_t n)
{
	ssize_t w;

	while (n > 0) {
		w = write(f->fd, p, n);
		if (w <= 0)
			return;
		p = (const char *)p + w;
		n -= (size_t)w;
	}
}

static void fake_send(struct fake *f, const struct proto_msg *m)
{
	struct buf body, fr;

	buf_init(&body, 0);
	buf_init(&fr, 0);
	if (proto_encode(m, &body) == 0 &&
	    frame_wrap(&fr, body.p, body.len, f->zstd) == 0)
		fake_write_raw(f, fr.p, fr.len);
	buf_cleanup(&body);
	buf_cleanup(&fr);
}

static void fake_reply(struct fake *f, const struct proto_msg *req, int err)
{
	struct proto_msg rep;

	proto_msg_init(&rep);
	rep.kind = PROTO_REP;
	rep.id = req->id;
	rep.op = req->op;
	rep.err = err;
	fake_send(f, &rep);
}

/* Answer HELLO granting feats and flags. */
static int fake_hello(struct fake *f, uint32_t feats, uint32_t version)
{
	struct proto_msg req, rep;

	if (fake_read(f, &req))
		return -1;
	proto_msg_init(&rep);
	rep.kind = PROTO_REP;
	rep.id = req.id;
	rep.op = PROTO_OP_HELLO;
	rep.version = version;
	rep.features = req.features & feats;
	rep.max_payload = 65536;
	rep.flags = PROTO_HELLO_RDONLY;
	rep.ino = 1;
	rep.name = "fs1";
	fake_send(f, &rep);
	proto_msg_cleanup(&req);
	return 0;
}

/* ---- client side helpers ------------------------------------------------- */

static int pushes;
static uint64_t push_ino;

static void on_push(void *arg, const struct proto_msg *m)
{
	(void)arg;
	if (m->op == PROTO_OP_INVAL_INODE) {
		__atomic_store_n(&push_ino, m->ino, __ATOMIC_RELEASE);
		__atomic_add_fetch(&pushes, 1, __ATOMIC_ACQ_REL);
	}
}

static const char handle[] = "header.payload.signature";

/* A connected client with HELLO done (the broker grants feats). */
static struct rpcc *client(struct fake *f, uint32_t feats, int timeout_ms)
{
	struct rpcc_opts o = {.handle = handle,
			      .handle_len = sizeof(handle) - 1,
			      .features = PROTO_FEAT_ALL,
			      .timeout_ms = timeout_ms,
			      .on_push = on_push};
	struct proto_msg hello;
	struct rpcc *c = NULL;
	char why[128];
	int sv[2];
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
		return NULL;
	fake_init(f, sv[1]);
	/* The fake answers HELLO from a child process. */
	pid = fork();
	if (pid == 0) {
		close(sv[0]);
		_exit(fake_hello(f, feats, PROTO_VERSION) ? 1 : 0);
	}
	if (rpcc_start(transport_wrap_fd(sv[0]), &o, &c, &hello, why,
		       sizeof(why)) == 0) {
		CHECK_EQ(hello.flags, PROTO_HELLO_RDONLY);
		CHECK_STR(hello.name, "fs1");
		proto_msg_cleanup(&hello);
	}
	waitpid(pid, NULL, 0);
	if (c && rpcc_run(c)) {
		rpcc_free(c);
		c = NULL;
	}
	f->zstd = c && (rpcc_features(c) & PROTO_FEAT_ZSTD);
	return c;
}

static long ms_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1000 +
	       (t.tv_nsec - t0->tv_nsec) / 1000000;
}

struct caller {
	struct rpcc *c;
	uint64_t ino;
	int rc;
	struct proto_msg rep;
	pthread_t t;
};

static void *caller_run(void *arg)
{
	struct caller *k = arg;
	struct proto_msg req;

	proto_msg_init(&req);
	req.op = PROTO_OP_GETATTR;
	req.ino = k->ino;
	k->rc = rpcc_call(k->c, &req, &k->rep);
	return NULL;
}

/* ---- cases -------------------------------------------------------------- */

static void test_hello_refused(void)
{
	struct rpcc_opts o = {
	    .handle = handle, .handle_len = 5, .timeout_ms = 2000};
	struct proto_msg req, rep, hello;
	struct rpcc *c = (struct rpcc *)1;
	struct fake f;
	char why[64];
	int sv[2], rc;
	pid_t pid;

	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	fake_init(&f, sv[1]);
	pid = fork();
	if (pid == 0) {
		close(sv[0]);
		if (fake_read(&f, &req) || req.data_len != 5)
			_exit(1);
		proto_msg_init(&rep);
		rep.kind = PROTO_REP;
		rep.id = req.id;
		rep.op = PROTO_OP_HELLO;
		rep.err = EKEYEXPIRED;
		rep.reason = "handle expired";
		fake_send(&f, &rep);
		_exit(0);
	}
	rc = rpcc_start(transport_wrap_fd(sv[0]), &o, &c, &hello, why,
			sizeof(why));
	CHECK_EQ(rc, -EKEYEXPIRED);
	CHECK_STR(why, "handle expired");
	CHECK(c == NULL);
	waitpid(pid, &rc, 0);
	CHECK(WIFEXITED(rc) && WEXITSTATUS(rc) == 0);
	fake_cleanup(&f);
}

static void test_hello_bad_version_and_silence(void)
{
	struct rpcc_opts o = {
	    .handle = handle, .handle_len = 5, .timeout_ms = 300};
	struct proto_msg hello;
	struct timespec t0;
	struct rpcc *c;
	struct fake f;
	char why[128];
	int sv[2], rc;
	pid_t pid;

	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	fake_init(&f, sv[1]);
	pid = fork();
	if (pid == 0) {
		close(sv[0]);
		_exit(fake_hello(&f, PROTO_FEAT_ALL, 7) ? 1 : 0);
	}
	rc = rpcc_start(transport_wrap_fd(sv[0]), &o, &c, &hello, why,
			sizeof(why));
	CHECK_EQ(rc, -EPROTO);
	CHECK(strstr(why, "version 7") != NULL);
	waitpid(pid, NULL, 0);
	fake_cleanup(&f);

	/* A broker that never answers: HELLO ends at the timeout. */
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	rc = rpcc_start(transport_wrap_fd(sv[0]), &o, &c, &hello, why,
			sizeof(why));
	CHECK_EQ(rc, -ETIMEDOUT);
	CHECK(ms_since(&t0) >= 250 && ms_since(&t0) < 3000);
	close(sv[1]);

	/* A broker that hangs up. */
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	close(sv[1]);
	rc = rpcc_start(transport_wrap_fd(sv[0]), &o, &c, &hello, why,
			sizeof(why));
	CHECK(rc == -ENOTCONN || rc == -EPIPE);
}

static void test_out_of_order(void)
{
	struct caller k[3];
	struct proto_msg req[3], rep;
	struct fake f;
	struct rpcc *c = client(&f, PROTO_FEAT_INVAL, 5000);
	int i;

	CHECK(c != NULL);
	if (!c)
		return;
	CHECK_EQ(rpcc_features(c), PROTO_FEAT_INVAL);
	CHECK_EQ(rpcc_max_payload(c), 65536);
	for (i = 0; i < 3; i++) {
		memset(&k[i], 0, sizeof(k[i]));
		k[i].c = c;
		k[i].ino = 10 + i;
		pthread_create(&k[i].t, NULL, caller_run, &k[i]);
	}
	for (i = 0; i < 3; i++)
		CHECK(fake_read(&f, &req[i]) == 0);
	/* Answer in reverse order, each with attr.ino = request ino * 2. */
	for (i = 2; i >= 0; i--) {
		proto_msg_init(&rep);
		rep.kind = PROTO_REP;
		rep.id = req[i].id;
		rep.op = PROTO_OP_GETATTR;
		rep.attr.nodeid = req[i].ino;
		rep.attr.ino = req[i].ino * 2;
		fake_send(&f, &rep);
	}
	for (i = 0; i < 3; i++) {
		pthread_join(k[i].t, NULL);
		CHECK_EQ(k[i].rc, 0);
		CHECK_EQ(k[i].rep.attr.ino, k[i].ino * 2);
		proto_msg_cleanup(&k[i].rep);
	}
	/* A push reaches the callback; an error reply reaches the caller. */
	proto_msg_init(&rep);
	rep.kind = PROTO_PUSH;
	rep.op = PROTO_OP_INVAL_INODE;
	rep.ino = 42;
	fake_send(&f, &rep);
	k[0].ino = 5;
	pthread_create(&k[0].t, NULL, caller_run, &k[0]);
	CHECK(fake_read(&f, &req[0]) == 0);
	fake_reply(&f, &req[0], ENOENT);
	pthread_join(k[0].t, NULL);
	CHECK_EQ(k[0].rc, 0);
	CHECK_EQ(k[0].rep.err, ENOENT);
	proto_msg_cleanup(&k[0].rep);
	CHECK_EQ(pushes, 1);
	CHECK_EQ(push_ino, 42);
	rpcc_free(c);
	fake_cleanup(&f);
}

struct reader_arg {
	struct rpcc *c;
	int rc;
	struct proto_msg rep;
	size_t len;
};

static void *read_run(void *arg)
{
	struct reader_arg *a = arg;
	struct proto_msg req;

	proto_msg_init(&req);
	req.op = PROTO_OP_READ;
	req.ino = 7;
	req.len = a->len;
	a->rc = rpcc_call(a->c, &req, &a->rep);
	return NULL;
}

/* Big READ payloads arrive intact, zero-copy, and compressed with zstd. */
static void test_read_payloads(uint32_t feats)
{
	static uint8_t data[65536];
	struct reader_arg a = {0};
	struct proto_msg req, rep, wr;
	struct fake f;
	struct rpcc *c = client(&f, feats, 5000);
	pthread_t t;
	size_t i;

	CHECK(c != NULL);
	if (!c)
		return;
	for (i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(feats & PROTO_FEAT_ZSTD ? i / 1000 : i * 7);
	a.c = c;
	a.len = sizeof(data);
	pthread_create(&t, NULL, read_run, &a);
	CHECK(fake_read(&f, &req) == 0);
	CHECK_EQ(req.len, sizeof(data));
	proto_msg_init(&rep);
	rep.kind = PROTO_REP;
	rep.id = req.id;
	rep.op = PROTO_OP_READ;
	rep.data = data;
	rep.data_len = sizeof(data);
	fake_send(&f, &rep);
	pthread_join(t, NULL);
	CHECK_EQ(a.rc, 0);
	CHECK_EQ(a.rep.data_len, sizeof(data));
	CHECK(a.rep.data_owned != NULL);
	CHECK(a.rep.data && memcmp(a.rep.data, data, sizeof(data)) == 0);
	proto_msg_cleanup(&a.rep);

	/* A compressible WRITE travels compressed only when negotiated. */
	proto_msg_init(&wr);
	wr.op = PROTO_OP_WRITE;
	wr.data = (const uint8_t *)calloc(1, 20000);
	wr.data_len = 20000;
	CHECK_EQ(rpcc_send(c, &wr), 0);
	free((void *)wr.data);
	CHECK(fake_read(&f, &req) == 0);
	CHECK_EQ(req.data_len, 20000);
	CHECK_EQ(f.saw_zstd, !!(feats & PROTO_FEAT_ZSTD));
	proto_msg_cleanup(&req);
	rpcc_free(c);
	fake_cleanup(&f);
}

static void test_timeout_then_late_reply(void)
{
	struct caller k = {0};
	struct proto_msg req, req2, rep;
	struct timespec t0;
	struct fake f;
	struct rpcc *c = client(&f, 0, 300);

	CHECK(c != NULL);
	if (!c)
		return;
	k.c = c;
	k.ino = 3;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	caller_run(&k);
	CHECK_EQ(k.rc, -ETIMEDOUT);
	CHECK(ms_since(&t0) >= 250 && ms_since(&t0) < 3000);
	CHECK(fake_read(&f, &req) == 0);
	/* The late reply must not satisfy the next call. */
	k.ino = 4;
	pthread_create(&k.t, NULL, caller_run, &k);
	CHECK(fake_read(&f, &req2) == 0);
	proto_msg_init(&rep);
	rep.kind = PROTO_REP;
	rep.id = req.id;
	rep.op = PROTO_OP_GETATTR;
	rep.attr.ino = 333;
	fake_send(&f, &rep);
	rep.id = req2.id;
	rep.attr.ino = 444;
	fake_send(&f, &rep);
	pthread_join(k.t, NULL);
	CHECK_EQ(k.rc, 0);
	CHECK_EQ(k.rep.attr.ino, 444);
	proto_msg_cleanup(&k.rep);
	CHECK(rpcc_alive(c));
	rpcc_free(c);
	fake_cleanup(&f);
}

/* 64 calls in flight; the 65th waits for a free slot. */
static void test_inflight_limit(void)
{
	static struct caller k[65];
	struct proto_msg req[65];
	struct fake f;
	struct rpcc *c = client(&f, 0, 5000);
	int i, n = 0;

	CHECK(c != NULL);
	if (!c)
		return;
	for (i = 0; i < 65; i++) {
		k[i].c = c;
		k[i].ino = (uint64_t)i + 100;
		pthread_create(&k[i].t, NULL, caller_run, &k[i]);
	}
	for (i = 0; i < 64; i++)
		n += fake_read(&f, &req[i]) == 0;
	CHECK_EQ(n, 64);
	/* Nothing more arrives until a slot is freed. */
	usleep(200000);
	{
		char b;
		CHECK(recv(f.fd, &b, 1, MSG_DONTWAIT) < 0 && f.in.len == 0);
	}
	fake_reply(&f, &req[0], 0);
	CHECK(fake_read(&f, &req[64]) == 0);
	for (i = 1; i < 65; i++)
		fake_reply(&f, &req[i], 0);
	for (i = 0; i < 65; i++) {
		pthread_join(k[i].t, NULL);
		n += k[i].rc == 0;
		proto_msg_cleanup(&k[i].rep);
	}
	CHECK_EQ(n, 64 + 65);
	rpcc_free(c);
	fake_cleanup(&f);
}

/* A dead link fails pending calls at once and every later call too. */
static void test_dead_link(int garbage)
{
	static const uint8_t junk[] = {0, 0, 0, 3, 0xc1, 0xc1, 0xc1};
	struct caller k = {0};
	struct proto_msg req;
	struct timespec t0;
	struct fake f;
	struct rpcc *c = client(&f, 0, 20000);

	CHECK(c != NULL);
	if (!c)
		return;
	k.c = c;
	k.ino = 9;
	pthread_create(&k.t, NULL, caller_run, &k);
	CHECK(fake_read(&f, &req) == 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (garbage) {
		fake_write_raw(&f, junk, sizeof(junk));
	} else {
		close(f.fd);
		f.fd = -1;
	}
	pthread_join(k.t, NULL);
	CHECK_EQ(k.rc, -ENOTCONN);
	CHECK(ms_since(&t0) < 2000);
	CHECK(!rpcc_alive(c));
	caller_run(&k);
	CHECK_EQ(k.rc, -ENOTCONN);
	proto_msg_init(&req);
	req.op = PROTO_OP_FORGET;
	CHECK_EQ(rpcc_send(c, &req), -ENOTCONN);
	rpcc_free(c);
	fake_cleanup(&f);
}

/* With no call in flight the background thread still reads pushes. */
static void test_idle_push(void)
{
	struct proto_msg m, req;
	struct timespec t0;
	struct caller k;
	struct fake f;
	struct rpcc *c = client(&f, PROTO_FEAT_INVAL, 5000);
	int before;

	CHECK(c != NULL);
	if (!c)
		return;
	before = __atomic_load_n(&pushes, __ATOMIC_ACQUIRE);
	proto_msg_init(&m);
	m.kind = PROTO_PUSH;
	m.op = PROTO_OP_INVAL_INODE;
	m.ino = 77;
	fake_send(&f, &m);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (__atomic_load_n(&pushes, __ATOMIC_ACQUIRE) == before &&
	       ms_since(&t0) < 3000)
		usleep(1000);
	CHECK_EQ(__atomic_load_n(&pushes, __ATOMIC_ACQUIRE), before + 1);
	CHECK_EQ(__atomic_load_n(&push_ino, __ATOMIC_ACQUIRE), 77);
	/* A call after the idle read: the background thread steps aside or
	 * reads the reply for us, either way it arrives. */
	memset(&k, 0, sizeof(k));
	k.c = c;
	k.ino = 3;
	pthread_create(&k.t, NULL, caller_run, &k);
	CHECK(fake_read(&f, &req) == 0);
	fake_reply(&f, &req, EPERM);
	pthread_join(k.t, NULL);
	CHECK_EQ(k.rc, 0);
	CHECK_EQ(k.rep.err, EPERM);
	proto_msg_cleanup(&k.rep);
	proto_msg_cleanup(&req);
	rpcc_free(c);
	fake_cleanup(&f);
}

#define STREAM_THREADS 12
#define STREAM_CALLS 100

struct streamer {
	struct rpcc *c;
	uint64_t base;
	int bad;
	pthread_t t;
};

/* Sequential calls; every reply must be the one for this call. */
static void *streamer_run(void *arg)
{
	struct streamer *st = arg;
	struct proto_msg req, rep;
	int i;

	for (i = 0; i < STREAM_CALLS; i++) {
		proto_msg_init(&req);
		req.op = PROTO_OP_GETATTR;
		req.ino = st->base + (uint64_t)i;
		if (rpcc_call(st->c, &req, &rep) != 0 || rep.err ||
		    rep.attr.ino != req.ino * 3)
			st->bad++;
		proto_msg_cleanup(&rep);
	}
	return NULL;
}

/*
 * Many callers at once: the fake takes what has arrived, answers it in
 * reverse order with a push in between, so readers change hands often.
 */
static void test_parallel_stream(void)
{
	struct streamer st[STREAM_THREADS];
	struct proto_msg req[STREAM_THREADS], rep;
	struct fake f;
	struct rpcc *c = client(&f, PROTO_FEAT_INVAL, 10000);
	int i, n, total = 0, before;

	CHECK(c != NULL);
	if (!c)
		return;
	before = __atomic_load_n(&pushes, __ATOMIC_ACQUIRE);
	for (i = 0; i < STREAM_THREADS; i++) {
		st[i].c = c;
		st[i].base = (uint64_t)(i + 1) * 100000;
		st[i].bad = 0;
		pthread_create(&st[i].t, NULL, streamer_run, &st[i]);
	}
	while (total < STREAM_THREADS * STREAM_CALLS) {
		/* At most one call per thread is in flight at a time. */
		n = total % 3 == 0 ? 1 : (total % 7) + 1;
		if (n > STREAM_THREADS * STREAM_CALLS - total)
			n = STREAM_THREADS * STREAM_CALLS - total;
		if (n > STREAM_THREADS)
			n = STREAM_THREADS;
		/* The first blocks; the others only if they come soon: a
		 * thread that finished sends nothing more. */
		for (i = 0; i < n; i++) {
			struct pollfd pf = {.fd = f.fd, .events = POLLIN};

			if (i > 0 && f.in.len == 0 && poll(&pf, 1, 5) != 1)
				break;
			if (fake_read(&f, &req[i]))
				break;
		}
		n = i;
		if (n == 0)
			break;
		proto_msg_init(&rep);
		rep.kind = PROTO_PUSH;
		rep.op = PROTO_OP_INVAL_INODE;
		rep.ino = 9;
		fake_send(&f, &rep);
		for (i = n - 1; i >= 0; i--) {
			proto_msg_init(&rep);
			rep.kind = PROTO_REP;
			rep.id = req[i].id;
			rep.op = PROTO_OP_GETATTR;
			rep.attr.nodeid = req[i].ino;
			rep.attr.ino = req[i].ino * 3;
			fake_send(&f, &rep);
			proto_msg_cleanup(&req[i]);
		}
		total += n;
	}
	CHECK_EQ(total, STREAM_THREADS * STREAM_CALLS);
	for (i = 0; i < STREAM_THREADS; i++) {
		pthread_join(st[i].t, NULL);
		CHECK_EQ(st[i].bad, 0);
	}
	CHECK(__atomic_load_n(&pushes, __ATOMIC_ACQUIRE) > before);
	rpcc_free(c);
	fake_cleanup(&f);
}

int main(void)
{
	test_hello_refused();
	test_hello_bad_version_and_silence();
	test_out_of_order();
	test_read_payloads(0);
	test_read_payloads(PROTO_FEAT_ZSTD);
	test_timeout_then_late_reply();
	test_inflight_limit();
	test_idle_push();
	test_parallel_stream();
	test_dead_link(0);
	test_dead_link(1);
	return unit_done("test_rpcc");
}
