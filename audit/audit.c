/*
 * audit.c - the emitter: configuration, the emit calls, the batch-fsync
 * thread and the spool-full policy (see audit.h and doc/audit.md).
 *
 * File events are fail-open: emit formats, appends to the spool under the
 * lock and returns; the sync thread fsyncs every fsync_ms or fsync_events
 * records.  Authentication, API and finding events are durable: appended,
 * then fdatasync'd before the call returns.  File events may use the spool
 * up to 7/8 of its bound; the last 1/8 is kept for durable events, so a
 * flood of file events cannot make an authentication fail.
 */
#include "audit_int.h"
#include "audit_wire.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

uint64_t audit_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void random_hex(char *out, size_t bytes)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char r[32];
	size_t i;

	if (bytes > sizeof(r))
		bytes = sizeof(r);
	if (getrandom(r, bytes, 0) != (ssize_t)bytes)
		for (i = 0; i < bytes; i++) /* no entropy yet: still unique */
			r[i] = (unsigned char)(rand() ^ (audit_now_ms() >> i));
	for (i = 0; i < bytes; i++) {
		out[2 * i] = hex[r[i] >> 4];
		out[2 * i + 1] = hex[r[i] & 15];
	}
	out[2 * bytes] = 0;
}

void audit_config_init(struct audit_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->product = "occfs";
	cfg->spool_max_bytes = 64ull << 20;
	cfg->fsync_ms = 100;
	cfg->fsync_events = 256;
	cfg->retry_ms = 500;
	cfg->io_timeout_ms = 5000;
	cfg->full_policy = AUDIT_FULL_DROP;
}

int audit_config_full_policy(struct audit_config *cfg, const char *s)
{
	if (strcmp(s, "drop") == 0)
		cfg->full_policy = AUDIT_FULL_DROP;
	else if (strcmp(s, "fail") == 0)
		cfg->full_policy = AUDIT_FULL_FAIL;
	else
		return -EINVAL;
	return 0;
}

int audit_config_op(struct audit_config *cfg, enum audit_file_op op,
		    const char *s)
{
	struct audit_op_policy p = {AUDIT_MODE_EACH, 0, 0};
	char *end;
	unsigned long v = 0;
	const char *arg = strchr(s, ':');

	if ((unsigned)op >= AUDIT_OP_COUNT)
		return -EINVAL;
	if (arg) {
		errno = 0;
		v = strtoul(arg + 1, &end, 10);
		if (errno || *end || end == arg + 1 || v == 0 || v > 3600000)
			return -EINVAL;
	}
	if (strcmp(s, "each") == 0) {
		p.mode = AUDIT_MODE_EACH;
	} else if (arg && strncmp(s, "aggregate:", 10) == 0) {
		p.mode = AUDIT_MODE_AGGREGATE;
		p.window_ms = v;
	} else if (arg && strncmp(s, "sample:", 7) == 0) {
		p.mode = AUDIT_MODE_SAMPLE;
		p.sample_n = v;
	} else {
		return -EINVAL;
	}
	/* Namespace and permission changes are never thinned out. */
	if (p.mode != AUDIT_MODE_EACH && !audit_ocsf_op_aggregatable(op))
		return -EINVAL;
	cfg->ops[op] = p;
	return 0;
}

void audit_meta_fill(struct audit *a, struct audit_meta *m,
		     const struct audit_common *c, char *trace_buf)
{
	m->product = a->product;
	m->hostname = a->hostname;
	m->instance = a->instance;
	m->seq = atomic_fetch_add(&a->seq, 1) + 1;
	m->time_ms = c && c->time_ms ? c->time_ms : audit_now_ms();
	if (c && c->trace_id) {
		m->trace_id = c->trace_id;
	} else {
		random_hex(trace_buf, AUDIT_TRACE_LEN / 2);
		m->trace_id = trace_buf;
	}
}

static uint64_t file_limit(const struct audit *a)
{
	return a->spool.max - a->spool.max / 8;
}

/* With the lock held: once there is room again, say how many file events
 * were lost before anything newer is spooled. */
static void report_drops_locked(struct audit *a)
{
	struct audit_meta m;
	char trace[AUDIT_TRACE_LEN + 1], *json;

	if (!a->drop_pending)
		return;
	audit_meta_fill(a, &m, NULL, trace);
	json = audit_ocsf_dropped(&m, a->drop_pending, a->spool_dir);
	if (json && audit_spool_append(&a->spool, json, strlen(json),
				       file_limit(a)) == 0) {
		log_warn("audit: %llu file events were dropped (spool full)",
			 (unsigned long long)a->drop_pending);
		a->drop_pending = 0;
		a->st.spooled++;
		a->unsynced++;
	}
	free(json);
}

int audit_put_file(struct audit *a, const struct audit_file_event *ev,
		   const struct audit_file_extra *x)
{
	struct audit_meta m;
	char trace[AUDIT_TRACE_LEN + 1], *json;
	int r;

	audit_meta_fill(a, &m, &ev->c, trace);
	json = audit_ocsf_file(&m, ev, x);
	pthread_mutex_lock(&a->lock);
	report_drops_locked(a);
	r = json ? audit_spool_append(&a->spool, json, strlen(json),
				      file_limit(a))
		 : -ENOMEM;
	if (r < 0) {
		a->st.dropped++;
		if (a->cfg.full_policy == AUDIT_FULL_DROP &&
		    a->drop_pending++ == 0)
			log_warn("audit: dropping file events: %s",
				 strerror(-r));
	} else {
		a->st.spooled++;
		if (++a->unsynced >= a->cfg.fsync_events)
			pthread_cond_signal(&a->wake_sync);
		pthread_cond_signal(&a->wake_send);
	}
	pthread_mutex_unlock(&a->lock);
	free(json);
	if (r < 0 && a->cfg.full_policy == AUDIT_FULL_DROP)
		r = 0;
	return r;
}

int audit_emit_file(struct audit *a, const struct audit_file_event *ev)
{
	struct audit_file_extra x = {0, 0, 0, 0};
	const struct audit_op_policy *p;
	uint64_t c;
	int r;

	if ((unsigned)ev->op >= AUDIT_OP_COUNT)
		return -EINVAL;
	pthread_mutex_lock(&a->lock);
	a->st.emitted++;
	pthread_mutex_unlock(&a->lock);
	p = &a->cfg.ops[ev->op];
	/* Failures are never thinned out: a denial is always one event. */
	if (!ev->err && audit_ocsf_op_aggregatable(ev->op)) {
		if (p->mode == AUDIT_MODE_SAMPLE && p->sample_n > 1) {
			c = atomic_fetch_add(&a->sample_ctr[ev->op], 1);
			if (c % p->sample_n) {
				pthread_mutex_lock(&a->lock);
				a->st.sampled_out++;
				pthread_mutex_unlock(&a->lock);
				return 0;
			}
			x.sample_n = p->sample_n;
		} else if (p->mode == AUDIT_MODE_AGGREGATE) {
			r = audit_agg_add(a, ev);
			if (r != 0)
				return r < 0 ? r : 0;
		}
	}
	return audit_put_file(a, ev, &x);
}

/* Append and fdatasync before returning: the fail-closed path. */
static int put_durable(struct audit *a, char *json)
{
	int fd = -1, dirfd = -1, r;

	if (!json)
		return -ENOMEM;
	pthread_mutex_lock(&a->lock);
	a->st.emitted++;
	report_drops_locked(a);
	r = audit_spool_append(&a->spool, json, strlen(json), a->spool.max);
	if (r == 0) {
		a->st.spooled++;
		fd = dup(a->spool.wfd);
		if (a->spool.dir_dirty) {
			dirfd = dup(a->spool.dirfd);
			a->spool.dir_dirty = 0;
		}
		if (fd < 0)
			r = -errno;
		pthread_cond_signal(&a->wake_send);
	}
	pthread_mutex_unlock(&a->lock);
	free(json);
	if (fd >= 0 && fdatasync(fd) < 0)
		r = -errno;
	if (dirfd >= 0 && fsync(dirfd) < 0 && r == 0)
		r = -errno;
	if (fd >= 0)
		close(fd);
	if (dirfd >= 0)
		close(dirfd);
	if (r < 0)
		log_err("audit: cannot record a durable event: %s",
			strerror(-r));
	return r;
}

int audit_emit_auth(struct audit *a, const struct audit_auth_event *ev)
{
	struct audit_meta m;
	char trace[AUDIT_TRACE_LEN + 1];

	audit_meta_fill(a, &m, &ev->c, trace);
	return put_durable(a, audit_ocsf_auth(&m, ev));
}

int audit_emit_api(struct audit *a, const struct audit_api_event *ev)
{
	struct audit_meta m;
	char trace[AUDIT_TRACE_LEN + 1];

	audit_meta_fill(a, &m, &ev->c, trace);
	return put_durable(a, audit_ocsf_api(&m, ev));
}

int audit_emit_finding(struct audit *a, const struct audit_finding_event *ev)
{
	struct audit_meta m;
	char trace[AUDIT_TRACE_LEN + 1];

	audit_meta_fill(a, &m, &ev->c, trace);
	return put_durable(a, audit_ocsf_finding(&m, ev));
}

/* fsync what is pending; with the lock held, released meanwhile. */
static void sync_locked(struct audit *a)
{
	int fds[AUDIT_SPOOL_STALE + 1], dirfd;
	size_t n, i;

	n = audit_spool_take_sync(&a->spool, fds, AUDIT_SPOOL_STALE + 1,
				  &dirfd);
	a->unsynced = 0;
	pthread_mutex_unlock(&a->lock);
	for (i = 0; i < n; i++) {
		if (fdatasync(fds[i]) < 0)
			log_warn("audit spool: fsync: %m");
		close(fds[i]);
	}
	if (dirfd >= 0) {
		fsync(dirfd);
		close(dirfd);
	}
	pthread_mutex_lock(&a->lock);
}

static void *sync_main(void *arg)
{
	struct audit *a = arg;
	struct timespec ts;
	uint64_t ns;

	pthread_mutex_lock(&a->lock);
	while (!a->stopping) {
		clock_gettime(CLOCK_REALTIME, &ts);
		ns = ts.tv_nsec + (uint64_t)a->cfg.fsync_ms * 1000000;
		ts.tv_sec += ns / 1000000000;
		ts.tv_nsec = ns % 1000000000;
		if (a->unsynced < a->cfg.fsync_events)
			pthread_cond_timedwait(&a->wake_sync, &a->lock, &ts);
		if (a->unsynced || a->spool.nstale || a->spool.dir_dirty)
			sync_locked(a);
		report_drops_locked(a);
		pthread_mutex_unlock(&a->lock);
		audit_agg_flush(a, 0);
		pthread_mutex_lock(&a->lock);
	}
	sync_locked(a);
	pthread_mutex_unlock(&a->lock);
	return NULL;
}

static int copy_str(char **dst, const char *src)
{
	*dst = NULL;
	if (src && !(*dst = strdup(src)))
		return -ENOMEM;
	return 0;
}

struct audit *audit_open(const struct audit_config *cfg)
{
	struct audit *a;
	int r;

	if (!cfg->spool_dir || cfg->spool_max_bytes < 8 * AUDIT_FRAME_MAX ||
	    !cfg->fsync_ms || !cfg->fsync_events) {
		errno = EINVAL;
		return NULL;
	}
	a = calloc(1, sizeof(*a));
	if (!a)
		return NULL;
	a->cfg = *cfg;
	if (copy_str(&a->spool_dir, cfg->spool_dir) < 0 ||
	    copy_str(&a->socket_path, cfg->socket_path) < 0 ||
	    copy_str(&a->product, cfg->product ? cfg->product : "occfs") < 0) {
		r = -ENOMEM;
		goto fail;
	}
	a->cfg.spool_dir = a->spool_dir;
	a->cfg.socket_path = a->socket_path;
	a->cfg.product = a->product;
	if (gethostname(a->hostname, sizeof(a->hostname) - 1) < 0)
		strcpy(a->hostname, "localhost");
	random_hex(a->instance, 8);
	pthread_mutex_init(&a->lock, NULL);
	pthread_mutex_init(&a->agg_lock, NULL);
	pthread_cond_init(&a->wake_send, NULL);
	pthread_cond_init(&a->wake_sync, NULL);
	pthread_cond_init(&a->delivered, NULL);
	r = audit_spool_open(&a->spool, a->spool_dir, cfg->spool_max_bytes);
	if (r < 0)
		goto fail;
	a->st.spool_bytes = a->spool.used;
	if (pthread_create(&a->sync_thread, NULL, sync_main, a) != 0) {
		r = -EAGAIN;
		goto fail_spool;
	}
	if (pthread_create(&a->send_thread, NULL, audit_send_main, a) != 0) {
		pthread_mutex_lock(&a->lock);
		a->stopping = 1;
		pthread_cond_broadcast(&a->wake_sync);
		pthread_mutex_unlock(&a->lock);
		pthread_join(a->sync_thread, NULL);
		r = -EAGAIN;
		goto fail_spool;
	}
	a->threads = 1;
	return a;
fail_spool:
	audit_spool_close(&a->spool);
fail:
	free(a->spool_dir);
	free(a->socket_path);
	free(a->product);
	free(a);
	errno = -r;
	return NULL;
}

/* Delivered everything up to (seg, off)?  With the lock held. */
static int reached(const struct audit *a, uint64_t seg, uint64_t off)
{
	return a->spool.rseg > seg ||
	       (a->spool.rseg == seg && a->spool.roff >= off);
}

int audit_flush(struct audit *a, unsigned timeout_ms)
{
	struct timespec ts;
	uint64_t seg, off, ns;
	int r = 0;

	audit_agg_flush(a, 1);
	clock_gettime(CLOCK_REALTIME, &ts);
	ns = ts.tv_nsec + (uint64_t)timeout_ms * 1000000;
	ts.tv_sec += ns / 1000000000;
	ts.tv_nsec = ns % 1000000000;
	pthread_mutex_lock(&a->lock);
	report_drops_locked(a);
	seg = a->spool.wseg;
	off = a->spool.wsize;
	pthread_cond_signal(&a->wake_send);
	while (!reached(a, seg, off) && r == 0)
		if (pthread_cond_timedwait(&a->delivered, &a->lock, &ts) ==
		    ETIMEDOUT)
			r = reached(a, seg, off) ? 0 : -ETIMEDOUT;
	pthread_mutex_unlock(&a->lock);
	return r;
}

void audit_get_stats(struct audit *a, struct audit_stats *st)
{
	pthread_mutex_lock(&a->lock);
	*st = a->st;
	st->spool_bytes = a->spool.used;
	pthread_mutex_unlock(&a->lock);
}

void audit_close(struct audit *a, unsigned linger_ms)
{
	if (!a)
		return;
	if (linger_ms && a->socket_path)
		audit_flush(a, linger_ms);
	else
		audit_agg_flush(a, 1);
	pthread_mutex_lock(&a->lock);
	a->stopping = 1;
	pthread_cond_broadcast(&a->wake_sync);
	pthread_cond_broadcast(&a->wake_send);
	pthread_mutex_unlock(&a->lock);
	if (a->threads) {
		pthread_join(a->sync_thread, NULL);
		pthread_join(a->send_thread, NULL);
	}
	audit_spool_close(&a->spool);
	pthread_cond_destroy(&a->wake_send);
	pthread_cond_destroy(&a->wake_sync);
	pthread_cond_destroy(&a->delivered);
	pthread_mutex_destroy(&a->lock);
	pthread_mutex_destroy(&a->agg_lock);
	free(a->spool_dir);
	free(a->socket_path);
	free(a->product);
	free(a);
}
