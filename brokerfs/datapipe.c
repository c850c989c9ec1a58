/*
 * datapipe.c - the per-thread pipe that carries READ payloads from a file
 * to the socket (datapipe.h).
 *
 * Why: a READ served with pread(2) and send(2) copies the payload twice on
 * the host (page cache to buffer, buffer to socket), and on a 1 MiB READ the
 * buffer's pages are faulted in and given back each time.  splice(2) from the
 * file puts references to its page-cache pages into the pipe, and splice to
 * a unix socket hands those references to the socket (MSG_SPLICE_PAGES), so
 * the only copy left is the client's own read of the socket.
 *
 * What the client may see: the socket holds references to the file's pages,
 * not a snapshot, so a WRITE to the same bytes that lands after the READ was
 * answered but before the client read the socket can show through.  That
 * is a READ racing a WRITE, whose outcome no reader may count on (the kernel
 * itself copies page by page without a lock); NFS servers splice the same
 * way.
 *
 * A pipe never blocks the thread: a fill is only tried when the pipe has a
 * slot for every page the range touches (so splice cannot wait for room),
 * and every pipe operation is nonblocking.
 */
#include "datapipe.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include "proto.h"

/* Room for a 1 MiB READ at any offset (257 pages of 4 KiB); root may go
 * past fs.pipe-max-size, others get 1 MiB, which fits aligned reads. */
#define DATAPIPE_WANT (2u << 20)

struct datapipe {
	int rd, wr;   /* -1: not made yet (or dropped) */
	size_t slots; /* pages the pipe can reference */
	size_t page;  /* the page size, which slots count */
	size_t held;  /* bytes in it for the reply being sent */
	int offered;  /* the current job may leave its payload here */
	int broken;   /* cannot be made on this thread: always copy */
};

static __thread struct datapipe dp = {.rd = -1, .wr = -1};
static int datapipe_off;
static pthread_key_t datapipe_key;
static pthread_once_t datapipe_once = PTHREAD_ONCE_INIT;

static void datapipe_close(struct datapipe *p)
{
	if (p->rd >= 0)
		close(p->rd);
	if (p->wr >= 0)
		close(p->wr);
	p->rd = p->wr = -1;
	p->held = 0;
}

/* At thread exit: the key's value is this thread's dp. */
static void datapipe_exit(void *arg)
{
	datapipe_close(arg);
}

static void datapipe_key_make(void)
{
	if (pthread_key_create(&datapipe_key, datapipe_exit))
		datapipe_off = 1;
}

void datapipe_disable(void)
{
	datapipe_off = 1;
}

static int datapipe_make(void)
{
	long pg = sysconf(_SC_PAGESIZE);
	int fds[2], sz;

	if (dp.rd >= 0)
		return 0;
	if (dp.broken || datapipe_off)
		return -EAGAIN;
	pthread_once(&datapipe_once, datapipe_key_make);
	if (datapipe_off || pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0) {
		dp.broken = 1;
		return -EAGAIN;
	}
	sz = fcntl(fds[1], F_SETPIPE_SZ, DATAPIPE_WANT);
	if (sz < 0)
		sz = fcntl(fds[1], F_SETPIPE_SZ, DATAPIPE_WANT / 2);
	if (sz < 0 || pg <= 0 || (size_t)sz / (size_t)pg < 16) {
		close(fds[0]);
		close(fds[1]);
		dp.broken = 1;
		return -EAGAIN;
	}
	dp.rd = fds[0];
	dp.wr = fds[1];
	dp.slots = (size_t)sz / (size_t)pg;
	dp.page = (size_t)pg;
	dp.held = 0;
	pthread_setspecific(datapipe_key, &dp);
	return 0;
}

void datapipe_offer(int ok)
{
	dp.offered = ok && !datapipe_off;
}

ssize_t datapipe_fill(int fd, uint64_t off, size_t len)
{
	loff_t pos = (loff_t)off;
	ssize_t n;

	if (!dp.offered || dp.held || len > PROTO_MAX_PAYLOAD ||
	    off > (uint64_t)INT64_MAX - len || datapipe_make())
		return -EAGAIN;
	if ((off % dp.page + len + dp.page - 1) / dp.page > dp.slots)
		return -EAGAIN;
	while (dp.held < len) {
		n = splice(fd, &pos, dp.wr, NULL, len - dp.held,
			   SPLICE_F_NONBLOCK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			/* The copying path reports the file's own error. */
			datapipe_discard();
			return -EAGAIN;
		}
		if (n == 0)
			break; /* end of file */
		dp.held += (size_t)n;
	}
	return (ssize_t)dp.held;
}

size_t datapipe_held(void)
{
	return dp.held;
}

ssize_t datapipe_to_socket(int sock)
{
	size_t moved = 0;
	ssize_t n;

	while (dp.held) {
		n = splice(dp.rd, NULL, sock, NULL, dp.held, SPLICE_F_NONBLOCK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n < 0)
			return moved ? (ssize_t)moved : -errno;
		if (n == 0)
			break;
		dp.held -= (size_t)n;
		moved += (size_t)n;
	}
	return (ssize_t)moved;
}

int datapipe_to_mem(void *p, size_t n)
{
	uint8_t *d = p;
	ssize_t r;

	if (n > dp.held)
		return -EINVAL;
	while (n) {
		r = read(dp.rd, d, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? -errno : -EIO;
		d += r;
		n -= (size_t)r;
		dp.held -= (size_t)r;
	}
	return 0;
}

void datapipe_discard(void)
{
	/* Closing drops the page references at once; the next fill makes a
	 * new pipe.  Rare: only a reply that could not be sent. */
	if (dp.held)
		datapipe_close(&dp);
}
