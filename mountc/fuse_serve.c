/*
 * fuse_serve.c - the FUSE session side of fuse_ops.h: connection set-up,
 * mounting, daemonizing, the worker loop and the broker's pushes.
 *
 * Pushes arrive on whichever thread reads the RPC connection.  Kernel
 * notifications can block on inode locks held by a request that waits for
 * a reply only that thread can deliver, so they are queued to a notifier
 * thread of their own.
 *
 * Read-ahead: the kernel gives a FUSE mount the smaller of its default
 * (128 KiB) and what INIT offered, so sequential reads arrive as 128 KiB
 * READs, one round trip each.  The mount's bdi is raised to read_ahead_kb
 * (1 MiB, the largest READ) once the session serves requests: set before
 * INIT it would be lowered again, and stat-ing the mount point to find the
 * bdi before the session answers would deadlock, so the bdi is found in
 * /proc/self/mountinfo by the mount point's real path, computed before
 * mounting, on the first request.
 */
#define FUSE_USE_VERSION 312

#include "fuse_int.h"
#include "newdir.h"

#include "log.h"
#include "proto.h"
#include "rpcc.h"

#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define FO_DEFAULT_THREADS 16u /* FUSE workers; rpcc allows 64 calls */
#define FO_MAX_BACKGROUND 64u
#define FO_READAHEAD_KB 1024 /* default: one 1 MiB READ */

#define FO_PATTR_TTL 1.0 /* seconds, at most: never above attr_timeout */

struct fo_state fo = {.qlock = PTHREAD_MUTEX_INITIALIZER,
		      .qcv = PTHREAD_COND_INITIALIZER,
		      .plock = PTHREAD_MUTEX_INITIALIZER};

/* ---- session ------------------------------------------------------------ */

void fuse_serve_init(void *userdata, struct fuse_conn_info *conn)
{
	unsigned max = rpcc_max_payload(fo.rpc);

	(void)userdata;
	if (max > PROTO_MAX_PAYLOAD)
		max = PROTO_MAX_PAYLOAD;
	conn->max_write = max;
	if (conn->max_readahead > PROTO_MAX_PAYLOAD)
		conn->max_readahead = PROTO_MAX_PAYLOAD;
	conn->max_background = FO_MAX_BACKGROUND;
	conn->congestion_threshold = FO_MAX_BACKGROUND * 3 / 4;
	conn->time_gran = 1;
	conn->want |=
	    conn->capable & (FUSE_CAP_ASYNC_READ | FUSE_CAP_PARALLEL_DIROPS |
			     FUSE_CAP_READDIRPLUS | FUSE_CAP_CACHE_SYMLINKS);
	/* Always READDIRPLUS: one round trip fills the dentry cache too. */
	conn->want &= ~(unsigned)FUSE_CAP_READDIRPLUS_AUTO;
	if (fo.cfg.writeback && (conn->capable & FUSE_CAP_WRITEBACK_CACHE))
		conn->want |= FUSE_CAP_WRITEBACK_CACHE;
	else
		conn->want &= ~(unsigned)FUSE_CAP_WRITEBACK_CACHE;
	/*
	 * Splice reads: fuse_write_setup.  Splice writes would only move
	 * the copy of a READ reply into libfuse's pipe: no gain.
	 */
	conn->want &=
	    ~(unsigned)(FUSE_CAP_SPLICE_READ | FUSE_CAP_SPLICE_WRITE |
			FUSE_CAP_SPLICE_MOVE | FUSE_CAP_EXPORT_SUPPORT);
	fuse_write_setup(conn);
}

/* ---- read-ahead --------------------------------------------------------- */

static char fo_mnt_real[PATH_MAX]; /* set before mounting, then read-only */
static pthread_once_t fo_ra_once = PTHREAD_ONCE_INIT;

/* Undo mountinfo's octal escapes ("\040" for a space) in place. */
static void fo_unescape(char *s)
{
	char *d = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' &&
		    s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
			*d++ = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 |
				      (s[3] - '0'));
			s += 3;
		} else {
			*d++ = *s;
		}
	}
	*d = '\0';
}

/*
 * The bdi name ("MAJ:MIN") of the topmost FUSE mount on path.  A mountinfo
 * line: ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [TAGS...] - FSTYPE ...
 */
static int fo_bdi(const char *path, char *bdi, size_t len)
{
	char *line = NULL, *sep, *save, *tok[5];
	size_t cap = 0, i;
	int rc = -ENOENT;
	FILE *f;

	f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return -errno;
	while (getline(&line, &cap, f) > 0) {
		sep = strstr(line, " - ");
		if (!sep || strncmp(sep + 3, "fuse", 4))
			continue;
		*sep = '\0';
		memset(tok, 0, sizeof(tok));
		tok[0] = strtok_r(line, " ", &save);
		for (i = 1; tok[i - 1] && i < 5; i++)
			tok[i] = strtok_r(NULL, " ", &save);
		if (!tok[4])
			continue;
		fo_unescape(tok[4]);
		if (strcmp(tok[4], path))
			continue;
		snprintf(bdi, len, "%s", tok[2]);
		rc = 0; /* keep going: a later line is mounted on top */
	}
	free(line);
	fclose(f);
	return rc;
}

/* Write one attribute of the bdi; -errno (not root: the kernel's stays). */
static int fo_bdi_set(const char *bdi, const char *attr, int value)
{
	char path[96], val[16];
	ssize_t n;
	int fd, err;

	snprintf(path, sizeof(path), "/sys/class/bdi/%s/%s", bdi, attr);
	snprintf(val, sizeof(val), "%d\n", value);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	n = fd < 0 ? -1 : write(fd, val, strlen(val));
	err = n < 0 ? errno : 0;
	if (n < 0)
		log_debug("%s: %s", path, strerror(err));
	if (fd >= 0)
		close(fd);
	return -err;
}

/*
 * The mount's bdi: read-ahead (above), and its dirty-page limit.  The
 * kernel lets a FUSE mount hold 1% of the host's dirty limit, strictly.
 * Where the broker stages writes (s3: it acknowledges them at disk speed
 * and uploads at close), a large file's writeback then runs into that
 * limit and goes out in 16 KiB WRITEs instead of 1 MiB ones, half the
 * throughput; max_dirty_ratio lifts it.
 */
static void fo_bdi_tune(void)
{
	int kb = fo.cfg.read_ahead_kb ? fo.cfg.read_ahead_kb : FO_READAHEAD_KB;
	char bdi[32];

	if (!fo_mnt_real[0] || (kb < 0 && fo.cfg.dirty_ratio <= 0))
		return;
	if (fo_bdi(fo_mnt_real, bdi, sizeof(bdi))) {
		log_debug("bdi: %s not found in mountinfo", fo_mnt_real);
		return;
	}
	if (kb >= 0 && !fo_bdi_set(bdi, "read_ahead_kb", kb))
		log_debug("read-ahead of %s set to %d KiB", fo_mnt_real, kb);
	if (fo.cfg.dirty_ratio > 0 &&
	    !fo_bdi_set(bdi, "max_ratio", fo.cfg.dirty_ratio) &&
	    !fo_bdi_set(bdi, "strict_limit", 0))
		log_debug("dirty pages of %s: up to %d%% of the host's limit",
			  fo_mnt_real, fo.cfg.dirty_ratio);
}

void fuse_serve_first_op(void)
{
	pthread_once(&fo_ra_once, fo_bdi_tune);
}

/* ---- pushes ------------------------------------------------------------- */

void fuse_ops_push(void *arg, const struct proto_msg *m)
{
	struct fo_note *n;

	(void)arg;
	if (m->op == PROTO_OP_SESSION_REVOKED) {
		__atomic_store_n(&fo.revoked, 1, __ATOMIC_RELEASE);
		fuse_serve_pattr_drop(0);
		log_err("the broker revoked this session (%s): every operation "
			"now fails with EACCES",
			m->name ? m->name : "no reason given");
		return;
	}
	if (m->op != PROTO_OP_INVAL_ENTRY && m->op != PROTO_OP_INVAL_INODE)
		return;
	/* Something changed behind this mount's back. */
	fuse_serve_pattr_drop(0);
	newdir_reset();
	pthread_mutex_lock(&fo.qlock);
	if (fo.qlen == FO_QUEUE) {
		/* Attribute timeouts still bound how stale the cache gets. */
		fo.qdropped++;
		pthread_mutex_unlock(&fo.qlock);
		return;
	}
	n = &fo.q[(fo.qhead + fo.qlen) % FO_QUEUE];
	n->op = m->op;
	n->ino = m->ino;
	n->off = m->off;
	n->len = m->len;
	n->name = m->name ? strdup(m->name) : NULL;
	if (m->op == PROTO_OP_INVAL_ENTRY && !n->name) {
		fo.qdropped++;
	} else {
		fo.qlen++;
		pthread_cond_signal(&fo.qcv);
	}
	pthread_mutex_unlock(&fo.qlock);
}

static void *fo_notifier(void *arg)
{
	struct fo_note n;
	unsigned dropped;

	(void)arg;
	pthread_mutex_lock(&fo.qlock);
	for (;;) {
		while (!fo.qstop && !fo.qlen)
			pthread_cond_wait(&fo.qcv, &fo.qlock);
		if (fo.qstop)
			break;
		n = fo.q[fo.qhead];
		fo.qhead = (fo.qhead + 1) % FO_QUEUE;
		fo.qlen--;
		dropped = fo.qdropped;
		fo.qdropped = 0;
		pthread_mutex_unlock(&fo.qlock);
		if (dropped)
			log_warn("dropped %u cache invalidations", dropped);
		/* -ENOENT (nothing cached) is the common, harmless answer.
		 * An INVAL_INODE offset of 2^64-1 becomes -1: attributes
		 * only, as libfuse defines it. */
		if (n.op == PROTO_OP_INVAL_ENTRY)
			fuse_lowlevel_notify_inval_entry(fo.se, n.ino, n.name,
							 strlen(n.name));
		else
			fuse_lowlevel_notify_inval_inode(
			    fo.se, n.ino, (off_t)n.off, (off_t)n.len);
		free(n.name);
		pthread_mutex_lock(&fo.qlock);
	}
	while (fo.qlen) {
		free(fo.q[fo.qhead].name);
		fo.qhead = (fo.qhead + 1) % FO_QUEUE;
		fo.qlen--;
	}
	pthread_mutex_unlock(&fo.qlock);
	return NULL;
}

/* ---- parent attributes --------------------------------------------------- */

/*
 * After CREATE, MKDIR, UNLINK, ... in a directory the kernel drops its copy
 * of the directory's attributes, and its next permission check there
 * (default_permissions) asks for them again: one more round trip per file
 * created.  Replies of those operations carry the directory's attributes
 * as the broker saw them right after the operation, and the next GETATTR
 * of that directory is answered from them.
 *
 * The slot must never hold something older than what a GETATTR sent now
 * would return, as far as this mount can tell.  So every call that may
 * change a directory empties it when it starts (an entry operation may
 * also change a child directory, e.g. the one renamed: those empty it
 * whatever it holds), and a reply is only kept if no other such call ran
 * at the same time (its stat may predate theirs): nothing in flight and
 * nothing started since.  A push from the broker (another client changed
 * something) empties it too, as does the session ending.  It is used once,
 * kept at most FO_PATTR_TTL and never longer than attr_timeout, and the
 * kernel is told to keep the answer only for what remains of attr_timeout
 * since the broker's stat, so the staleness bound of the mount's attribute
 * timeout holds as if the GETATTR had been sent right after the operation.
 */

uint64_t fo_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Can op change a directory's attributes?  Every mutation can but those
 * that act only on an open regular file's data. */
static int fo_pattr_tracked(uint32_t op)
{
	const struct proto_opinfo *oi = proto_opinfo(op);

	if (!oi || !(oi->flags & OPF_MUTATES))
		return 0;
	return op != PROTO_OP_WRITE && op != PROTO_OP_FALLOCATE &&
	       op != PROTO_OP_COPY_FILE_RANGE;
}

/* The directory whose attributes a reply to req carries. */
static uint64_t fo_pattr_dir(const struct proto_msg *req)
{
	return req->op == PROTO_OP_LINK ? req->ino2 : req->ino;
}

uint64_t fuse_serve_pattr_begin(const struct proto_msg *req)
{
	uint64_t ticket;

	if (!fo_pattr_tracked(req->op))
		return 0;
	pthread_mutex_lock(&fo.plock);
	if ((proto_opinfo(req->op)->flags & OPF_PATTR) || req->ino == fo.pino)
		fo.pino = 0;
	fo.pbusy++;
	ticket = ++fo.pseq;
	pthread_mutex_unlock(&fo.plock);
	return ticket;
}

void fuse_serve_pattr_end(const struct proto_msg *req,
			  const struct proto_msg *rep, uint64_t ticket)
{
	uint64_t dir = fo_pattr_dir(req);

	if (!ticket)
		return;
	pthread_mutex_lock(&fo.plock);
	fo.pbusy--;
	/* The peer's word is checked: the node asked about, a directory. */
	if (rep && rep->has_pattr && !rep->err && fo.pbusy == 0 &&
	    fo.pseq == ticket && fo.cfg.attr_timeout > 0 &&
	    rep->pattr.nodeid == dir && S_ISDIR(rep->pattr.mode)) {
		fo.pino = dir;
		fo.pattr = rep->pattr;
		fo.pborn = fo_now_ns();
	}
	pthread_mutex_unlock(&fo.plock);
}

int fuse_serve_pattr_take(uint64_t ino, struct proto_attr *a, double *ttl)
{
	double keep = fo.cfg.attr_timeout, age;
	int hit = 0;

	if (__atomic_load_n(&fo.revoked, __ATOMIC_ACQUIRE) ||
	    __atomic_load_n(&fo.lost, __ATOMIC_ACQUIRE))
		return 0;
	pthread_mutex_lock(&fo.plock);
	if (keep > FO_PATTR_TTL)
		keep = FO_PATTR_TTL;
	if (fo.pino == ino && ino != 0) {
		age = (double)(fo_now_ns() - fo.pborn) / 1e9;
		if (age < keep) {
			*a = fo.pattr;
			/* The kernel keeps them for what remains of its
			 * timeout, counted from the broker's stat. */
			*ttl = fo.cfg.attr_timeout - age;
			hit = 1;
		}
		fo.pino = 0; /* used once */
	}
	pthread_mutex_unlock(&fo.plock);
	return hit;
}

void fuse_serve_pattr_drop(uint64_t ino)
{
	pthread_mutex_lock(&fo.plock);
	if (ino == 0 || ino == fo.pino)
		fo.pino = 0;
	fo.pseq++; /* and a reply in flight may predate what changed */
	pthread_mutex_unlock(&fo.plock);
}

/* ---- serving ------------------------------------------------------------ */

/* "-o" options for fuse_session_new; never anything secret. */
static int fo_args(const struct fuse_ops_cfg *cfg, struct fuse_args *args)
{
	char *opts = NULL, fsname[300];
	int rc = 0;

	snprintf(fsname, sizeof(fsname), "fsname=%s",
		 cfg->fsname ? cfg->fsname : "occfs");
	rc |= fuse_opt_add_arg(args, "mountc");
	rc |= fuse_opt_add_opt_escaped(&opts, fsname);
	rc |= fuse_opt_add_opt(&opts, "subtype=occfs");
	if (cfg->default_permissions)
		rc |= fuse_opt_add_opt(&opts, "default_permissions");
	if (cfg->allow_other)
		rc |= fuse_opt_add_opt(&opts, "allow_other");
	if (cfg->rdonly)
		rc |= fuse_opt_add_opt(&opts, "ro");
	if (cfg->extra_opts && *cfg->extra_opts)
		rc |= fuse_opt_add_opt(&opts, cfg->extra_opts);
	rc |= fuse_opt_add_arg(args, "-o");
	rc |= opts ? fuse_opt_add_arg(args, opts) : -1;
	if (cfg->debug)
		rc |= fuse_opt_add_arg(args, "-d");
	free(opts);
	return rc ? -ENOMEM : 0;
}

/* The worker loop, with the RPC reader and notifier running. */
static int fo_loop(const struct fuse_ops_cfg *cfg)
{
	struct fuse_loop_config *lc;
	pthread_t notifier;
	int rc, e;

	e = pthread_create(&notifier, NULL, fo_notifier, NULL);
	if (e)
		return -e;
	rc = rpcc_run(fo.rpc);
	lc = fuse_loop_cfg_create();
	if (!rc && !lc)
		rc = -ENOMEM;
	if (!rc) {
		fuse_loop_cfg_set_clone_fd(lc, 1);
		fuse_loop_cfg_set_max_threads(lc, cfg->max_threads
						      ? cfg->max_threads
						      : FO_DEFAULT_THREADS);
		rc = fuse_session_loop_mt(fo.se, lc);
		rc = rc > 0 ? 0 : rc; /* > 0: ended by a signal */
	}
	if (lc)
		fuse_loop_cfg_destroy(lc);
	pthread_mutex_lock(&fo.qlock);
	fo.qstop = 1;
	pthread_cond_signal(&fo.qcv);
	pthread_mutex_unlock(&fo.qlock);
	pthread_join(notifier, NULL);
	return rc;
}

int fuse_ops_serve(struct rpcc *c, const char *mountpoint,
		   const struct fuse_ops_cfg *cfg)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	int rc, mounted = 0, handlers = 0;

	fo.rpc = c;
	fo.cfg = *cfg;
	newdir_init(
	    cfg->entry_timeout > 0 ? (uint64_t)(cfg->entry_timeout * 1e9) : 0);
	/* Before mounting: resolving it afterwards would ask this process. */
	if (!realpath(mountpoint, fo_mnt_real))
		fo_mnt_real[0] = '\0';
	rc = fo_args(cfg, &args);
	if (rc)
		goto out;
	fo.se =
	    fuse_session_new(&args, &fuse_ops_ll, sizeof(fuse_ops_ll), NULL);
	if (!fo.se) {
		rc = -EINVAL; /* libfuse printed why */
		goto out;
	}
	rc = fuse_set_signal_handlers(fo.se) ? -EIO : 0;
	if (rc)
		goto out;
	handlers = 1;
	rc = fuse_session_mount(fo.se, mountpoint) ? -EIO : 0;
	if (rc)
		goto out;
	mounted = 1;
	/* Threads start only after this fork. */
	rc = fuse_daemonize(cfg->foreground) ? -EIO : 0;
	if (rc)
		goto out;
	if (!cfg->foreground)
		log_open_syslog();
	log_info("serving %s on %s", cfg->fsname ? cfg->fsname : "occfs",
		 mountpoint);
	rc = fo_loop(cfg);
out:
	if (mounted)
		fuse_session_unmount(fo.se);
	if (handlers)
		fuse_remove_signal_handlers(fo.se);
	if (fo.se)
		fuse_session_destroy(fo.se);
	fo.se = NULL;
	fuse_opt_free_args(&args);
	return rc;
}
