/*
 * audit_send.c - the emitter's sender thread: streams spooled frames to
 * occfs-auditd and advances the delivery point as acknowledgements come.
 *
 * It reads up to one chunk of whole frames from (rseg, roff), writes them,
 * then reads one 4-byte status per frame; the daemon sends them only after
 * its log is fsynced, so an acknowledged record may leave the spool.  Any
 * socket error or timeout drops the connection; what was not acknowledged
 * is sent again after retry_ms (delivery is at least once, metadata.uid
 * identifies duplicates).  The emit calls never wait for this thread.
 */
#include "audit_int.h"
#include "audit_wire.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (256 * 1024)
#define MAX_FRAMES 1024

struct sender {
	struct audit *a;
	int sock;
	int rfd;
	uint64_t rfd_seg;
	uint8_t *buf;
	uint32_t sizes[MAX_FRAMES];
	uint8_t acks[MAX_FRAMES * 4];
	int warned;
};

static void wait_ms(struct audit *a, unsigned ms)
{
	struct timespec ts;
	uint64_t ns;

	clock_gettime(CLOCK_REALTIME, &ts);
	ns = ts.tv_nsec + (uint64_t)ms * 1000000;
	ts.tv_sec += ns / 1000000000;
	ts.tv_nsec = ns % 1000000000;
	pthread_cond_timedwait(&a->wake_send, &a->lock, &ts);
}

static int connect_daemon(struct sender *s)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	unsigned ms = s->a->cfg.io_timeout_ms;
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
	int fd;

	if (strlen(s->a->socket_path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, s->a->socket_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -errno;
	}
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	s->sock = fd;
	s->warned = 0;
	return 0;
}

static void disconnect(struct sender *s)
{
	if (s->sock >= 0)
		close(s->sock);
	s->sock = -1;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
	ssize_t w;

	while (n) {
		w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		p += w;
		n -= w;
	}
	return 0;
}

/* Read up to n bytes; returns the count read before an error or EOF. */
static size_t read_some(int fd, uint8_t *p, size_t n)
{
	size_t got = 0;
	ssize_t r;

	while (got < n) {
		r = recv(fd, p + got, n - got, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += r;
	}
	return got;
}

/* Open the read side of segment seg; -ENOENT if it is gone. */
static int open_reader(struct sender *s, uint64_t seg)
{
	char *path;

	if (s->rfd >= 0 && s->rfd_seg == seg)
		return 0;
	if (s->rfd >= 0)
		close(s->rfd);
	s->rfd = -1;
	path = audit_spool_path(&s->a->spool, seg);
	if (!path)
		return -ENOMEM;
	s->rfd = open(path, O_RDONLY | O_CLOEXEC);
	free(path);
	if (s->rfd < 0)
		return -errno;
	s->rfd_seg = seg;
	return 0;
}

/* With the lock held: drop a fully read, closed segment. */
static void retire(struct sender *s, uint64_t size)
{
	struct audit_spool *sp = &s->a->spool;
	char *path = audit_spool_path(sp, sp->rseg);

	if (path && unlink(path) == 0)
		sp->used -= size <= sp->used ? size : sp->used;
	free(path);
	sp->rseg++;
	sp->roff = 0;
	audit_spool_save_ack(sp);
	pthread_cond_broadcast(&s->a->delivered);
}

/* Send one batch of frames in [off, end) of the current segment.  With the
 * lock released.  Returns bytes acknowledged (>= 0) or -errno; *skip is set
 * when the segment holds an unreadable tail. */
static long send_batch(struct sender *s, uint64_t off, uint64_t end,
		       uint64_t *ok, uint64_t *bad, int *skip)
{
	size_t want = end - off > CHUNK ? CHUNK : end - off, pos = 0, k = 0;
	size_t nack, i;
	ssize_t n;
	long f, acked = 0;
	int r;

	n = pread(s->rfd, s->buf, want, off);
	if (n < 0)
		return -errno;
	while (k < MAX_FRAMES &&
	       (f = audit_wire_frame(s->buf + pos, n - pos)) > 0) {
		s->sizes[k++] = f;
		pos += f;
	}
	if (k == 0) {
		*skip = 1;
		return 0;
	}
	r = write_all(s->sock, s->buf, pos);
	if (r < 0)
		return r;
	nack = read_some(s->sock, s->acks, k * 4) / 4;
	for (i = 0; i < nack; i++) {
		if (audit_wire_get32(s->acks + 4 * i) == 0)
			(*ok)++;
		else
			(*bad)++;
		acked += s->sizes[i];
	}
	if (nack < k)
		return acked ? acked : -ECONNRESET;
	return acked;
}

/* One step of the loop, with the lock held.  0 = go on, 1 = idle. */
static int step(struct sender *s)
{
	struct audit *a = s->a;
	struct audit_spool *sp = &a->spool;
	uint64_t seg = sp->rseg, off = sp->roff, end, ok = 0, bad = 0;
	struct stat st;
	int skip = 0, r;
	long n;

	if (seg == sp->wseg) {
		end = sp->wsize;
		if (off >= end) {
			/* Caught up: start a new file so this one can go. */
			if (end >= sp->seg_max / 4 && audit_spool_rotate(sp))
				log_warn("audit spool: rotate: %m");
			return 1;
		}
	} else {
		r = open_reader(s, seg);
		if (r < 0 || fstat(s->rfd, &st) < 0) {
			retire(s, 0);
			return 0;
		}
		end = st.st_size;
		if (off >= end) {
			retire(s, end);
			return 0;
		}
	}
	if (s->sock < 0) {
		pthread_mutex_unlock(&a->lock);
		r = connect_daemon(s);
		pthread_mutex_lock(&a->lock);
		a->st.connected = r == 0;
		if (r < 0) {
			if (!s->warned++)
				log_warn("audit: %s: %s; spooling",
					 a->socket_path, strerror(-r));
			wait_ms(a, a->cfg.retry_ms);
			return 0;
		}
	}
	if (open_reader(s, seg) < 0) {
		retire(s, 0);
		return 0;
	}
	pthread_mutex_unlock(&a->lock);
	n = send_batch(s, off, end, &ok, &bad, &skip);
	pthread_mutex_lock(&a->lock);
	if (skip) {
		if (seg != sp->wseg) {
			log_warn("audit spool: segment %llu has an unreadable "
				 "tail at %llu; skipped",
				 (unsigned long long)seg,
				 (unsigned long long)off);
			sp->roff = end;
		}
		return 1;
	}
	if (n > 0) {
		sp->roff = off + n;
		a->st.delivered += ok;
		a->st.refused += bad;
		if (bad)
			log_warn("audit: the daemon refused %llu records",
				 (unsigned long long)bad);
		audit_spool_save_ack(sp);
		pthread_cond_broadcast(&a->delivered);
	}
	if (n <= 0 || ok + bad == 0) {
		disconnect(s);
		a->st.connected = 0;
		wait_ms(a, a->cfg.retry_ms);
	}
	return 0;
}

void *audit_send_main(void *arg)
{
	struct sender s = {.a = arg, .sock = -1, .rfd = -1};
	struct audit *a = arg;

	s.buf = malloc(CHUNK);
	pthread_mutex_lock(&a->lock);
	while (!a->stopping) {
		if (!a->socket_path || !s.buf) {
			wait_ms(a, 1000);
			continue;
		}
		if (step(&s) == 1 && !a->stopping)
			wait_ms(a, 1000);
	}
	pthread_mutex_unlock(&a->lock);
	disconnect(&s);
	if (s.rfd >= 0)
		close(s.rfd);
	free(s.buf);
	return NULL;
}
