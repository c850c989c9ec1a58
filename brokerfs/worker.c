/*
 * worker.c - the fixed pool of threads that run backend work.
 *
 * The event loop must never block, and backend calls do (disk, later the
 * network), so they run here.  Jobs wait in one FIFO; the per-connection
 * in-flight cap keeps one busy client from filling it.  A finished job goes
 * on the done queue and the eventfd wakes the loop, which is the only
 * thread that touches connections.  A job no worker has picked up yet can
 * be taken back (INTERRUPT, a connection going away).
 *
 * A request's reply is written to the client by the thread that ran it
 * when the connection has nothing queued (worker_reply): through the loop
 * it would cost one more cross-thread wake-up before the client sees it.
 * The job then still goes through the done queue, so the loop does its
 * bookkeeping (in-flight count, back-pressure) as before, but without a
 * wake-up of its own: the loop sweeps the done queue every time it wakes
 * and before it sleeps (broker_run), and the client's next request, or
 * the once-a-second tick, wakes it soon enough.  Only a job whose reply
 * the loop must still send, one that is not a request, or one of a
 * connection the loop stopped reading (max_inflight: no next request
 * will come) wakes it at once.  That wake-up was one context switch per
 * request on the loop's CPU, right when the client needs it.
 */
#include "broker.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "datapipe.h"
#include "log.h"

/*
 * Put a finished job on the done queue; wake the loop if the job needs it
 * soon and no wake-up is pending yet.  rd_paused is read under done_lock: the
 * loop sets it before its last sweep (under the same lock), so either the
 * sweep finds this job or this sees the flag.
 */
static void worker_complete(struct worker_pool *p, struct job *j)
{
	uint64_t one = 1;
	int wake;

	pthread_mutex_lock(&p->done_lock);
	wake = !p->done_waking &&
	       (j->kind != JOB_REQUEST || j->sent != j->out.len || j->cut ||
		__atomic_load_n(&j->conn->rd_paused, __ATOMIC_SEQ_CST));
	if (wake)
		p->done_waking = 1;
	if (p->done_tail)
		p->done_tail->next = j;
	else
		p->done_head = j;
	p->done_tail = j;
	pthread_mutex_unlock(&p->done_lock);
	if (wake && write(p->efd, &one, sizeof(one)) < 0)
		log_err("worker: cannot wake the loop: %m");
}

/*
 * The payload the socket did not take goes into j->out after the frame's
 * head, where the loop sends it from (j->sent on): bytes already sent keep
 * their room in out but are never sent again.  When memory fails, a reply
 * nothing of which went out becomes EIO; one cut mid-frame takes the
 * connection with it (j->cut).
 */
static void worker_keep_rest(struct job *j, size_t payload)
{
	size_t head = j->out.len;
	size_t done = j->sent > head ? j->sent - head : 0;
	uint8_t *dst;

	if (!buf_reserve(&j->out, payload)) {
		dst = j->out.p + head + done;
		if (j->tail)
			memcpy(dst, j->tail + done, payload - done);
		if (j->tail || !datapipe_to_mem(dst, payload - done)) {
			j->out.len = head + payload;
			return;
		}
	}
	datapipe_discard();
	log_err("%s: cannot buffer a %zu-byte reply", j->conn->peer, payload);
	if (j->sent) {
		j->cut = 1;
		j->out.len = j->sent;
	} else {
		conn_frame_error(j, EIO);
	}
}

/* Under olock: send the head and the payload after it; bytes sent or -errno. */
static ssize_t worker_send(struct job *j, size_t payload)
{
	struct iovec iov[2] = {{j->out.p, j->out.len},
			       {j->tail, j->tail ? payload : 0}};
	struct msghdr mh = {.msg_iov = iov, .msg_iovlen = j->tail ? 2 : 1};
	ssize_t n, m;

	n = sendmsg(j->conn->fd, &mh,
		    MSG_DONTWAIT | MSG_NOSIGNAL |
			(payload && !j->tail ? MSG_MORE : 0));
	if (n <= 0 || j->tail || !payload || (size_t)n < j->out.len)
		return n;
	m = datapipe_to_socket(j->conn->fd);
	/* The head went out: count it even if the payload fails (the loop
	 * then meets the socket's error and closes). */
	return m < 0 ? n : n + m;
}

/*
 * Send j's framed reply now if nothing is queued before it (conn->direct,
 * under conn->olock, which also keeps the loop from writing meanwhile).
 * A payload that follows the frame's head (data_follows) is in j->tail or
 * in the thread's pipe (datapipe.h).  Whatever the socket does not take at
 * once is left to the loop: all of it (nothing was written), or the rest
 * of the frame (conn->partial, so the loop writes nothing else first).
 */
static void worker_reply(struct job *j)
{
	struct conn *c = j->conn;
	size_t payload = j->tail ? j->tail_len : datapipe_held();
	ssize_t n;

	if (j->kind != JOB_REQUEST || !j->out.len || !c->plain)
		goto out;
	pthread_mutex_lock(&c->olock);
	if (c->direct) {
		n = worker_send(j, payload);
		if (n > 0)
			j->sent = (size_t)n;
		if (n < 0 || j->sent < j->out.len + payload)
			c->direct = 0; /* full (or failing): the loop sees */
		if (j->sent && j->sent < j->out.len + payload)
			c->partial = 1;
	}
	pthread_mutex_unlock(&c->olock);
out:
	/* After the lock: the loop reads out only once the job is done. */
	if (payload && j->sent == j->out.len + payload)
		j->sent = j->out.len; /* the whole frame went out */
	else if (payload)
		worker_keep_rest(j, payload);
	free(j->tail);
	j->tail = NULL;
	j->tail_len = 0;
}

static void *worker_main(void *arg)
{
	struct worker_pool *p = arg;
	struct job *j;

	for (;;) {
		pthread_mutex_lock(&p->lock);
		while (!p->head && !p->stop)
			pthread_cond_wait(&p->cv, &p->lock);
		if (!p->head) {
			pthread_mutex_unlock(&p->lock);
			return NULL;
		}
		j = p->head;
		p->head = j->next;
		if (!p->head)
			p->tail = NULL;
		j->next = NULL;
		j->started = 1;
		p->running++;
		pthread_mutex_unlock(&p->lock);

		j->run(j);
		worker_reply(j);
		worker_complete(p, j);
		/* running drops only once the job is on the done queue, so
		 * worker_busy never reports a job that is nowhere. */
		pthread_mutex_lock(&p->lock);
		p->running--;
		pthread_mutex_unlock(&p->lock);
	}
}

int worker_start(struct worker_pool *p, unsigned n)
{
	sigset_t all, old;
	unsigned i;
	int rc = 0;

	memset(p, 0, sizeof(*p));
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cv, NULL);
	pthread_mutex_init(&p->done_lock, NULL);
	p->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (p->efd < 0)
		return -errno;
	p->threads = calloc(n, sizeof(*p->threads));
	if (!p->threads)
		return -ENOMEM;
	/* Signals belong to the loop's signalfd, never to a worker. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (i = 0; i < n; i++) {
		rc = -pthread_create(&p->threads[i], NULL, worker_main, p);
		if (rc)
			break;
		p->nthreads++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return rc;
}

/*
 * Run a job on the calling (loop) thread.  For operations the backend
 * declares quick, handing them to a worker costs two cross-thread wake-ups,
 * which on a virtual machine dominate the round trip.  The reply goes out
 * at once; the job waits on a list of the loop's own (no eventfd: no lock,
 * no system call) until the loop finishes it exactly as it finishes a
 * worker's, after the event at hand, outside the connection code that
 * submitted it.
 */
void worker_run_inline(struct worker_pool *p, struct job *j)
{
	j->next = NULL;
	j->started = 1;
	j->run(j);
	worker_reply(j);
	if (p->inl_tail)
		p->inl_tail->next = j;
	else
		p->inl_head = j;
	p->inl_tail = j;
}

struct job *worker_reap_inline(struct worker_pool *p)
{
	struct job *list = p->inl_head;

	p->inl_head = p->inl_tail = NULL;
	return list;
}

void worker_submit(struct worker_pool *p, struct job *j)
{
	j->next = NULL;
	j->started = 0;
	pthread_mutex_lock(&p->lock);
	if (p->tail)
		p->tail->next = j;
	else
		p->head = j;
	p->tail = j;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->lock);
}

int worker_cancel(struct worker_pool *p, struct job *j)
{
	struct job **pp, *prev = NULL;
	int taken = 0;

	pthread_mutex_lock(&p->lock);
	if (!j->started) {
		for (pp = &p->head; *pp; prev = *pp, pp = &(*pp)->next) {
			if (*pp != j)
				continue;
			*pp = j->next;
			if (p->tail == j)
				p->tail = prev;
			j->next = NULL;
			taken = 1;
			break;
		}
	}
	pthread_mutex_unlock(&p->lock);
	return taken;
}

struct job *worker_reap(struct worker_pool *p)
{
	uint64_t n;

	/* Drain first: a job finished after the swap below wakes us again. */
	if (read(p->efd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		log_err("worker: eventfd read: %m");
	return worker_reap_quiet(p);
}

struct job *worker_reap_quiet(struct worker_pool *p)
{
	struct job *list;

	pthread_mutex_lock(&p->done_lock);
	list = p->done_head;
	p->done_head = p->done_tail = NULL;
	p->done_waking = 0;
	pthread_mutex_unlock(&p->done_lock);
	return list;
}

unsigned worker_busy(struct worker_pool *p)
{
	unsigned n = 0;
	struct job *j;

	pthread_mutex_lock(&p->lock);
	for (j = p->head; j; j = j->next)
		n++;
	n += p->running;
	pthread_mutex_unlock(&p->lock);
	pthread_mutex_lock(&p->done_lock);
	for (j = p->done_head; j; j = j->next)
		n++;
	pthread_mutex_unlock(&p->done_lock);
	return n;
}

void worker_stop(struct worker_pool *p)
{
	unsigned i;

	if (!p->threads)
		return;
	pthread_mutex_lock(&p->lock);
	p->stop = 1;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->lock);
	for (i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	free(p->threads);
	p->threads = NULL;
	if (p->efd >= 0)
		close(p->efd);
	p->efd = -1;
}
