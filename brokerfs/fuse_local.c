/*
 * fuse_local.c - brokerfs --fuse: mount a filesystem on the broker's host.
 *
 * The mount goes through the same core as remote clients: the broker makes
 * a socketpair, registers one end with the event loop as a trusted internal
 * connection (its HELLO needs no handle, and nothing outside the process
 * can reach it), and runs the guest's FUSE client, fuse_ops_serve, over the
 * other end on a thread of its own.  Host and guests so see the same tree
 * with the same semantics.
 *
 * A second, short-lived thread reports readiness once the mount point has
 * changed device (or the mount failed), so that a daemonizing broker only
 * detaches from the terminal when the mount is really there.
 */
#include "broker.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fuse_ops.h"
#include "log.h"
#include "rpcc.h"

#define FUSE_LOCAL_READY_S 15 /* how long the mount may take to appear */
#define FUSE_LOCAL_JOIN_S 3   /* how long stop waits for the thread */

static struct {
	const struct broker_config *cfg;
	int fd;
	int (*ready)(int ok, const char *msg);
	pthread_t thread, watcher;
	int started;
	atomic_int done;     /* the mount thread has returned */
	atomic_int stopping; /* fuse_local_stop was called */
	atomic_int reported; /* ready() was called */
	dev_t dev0;	     /* device of the mount point before mounting */
	char err[256];	     /* why the mount failed; written before done */
} fl;

static void fuse_local_report(int ok, const char *msg)
{
	if (atomic_exchange(&fl.reported, 1))
		return;
	fl.ready(ok, msg);
}

static void *fuse_local_main(void *arg)
{
	struct rpcc_opts o = {.handle = "",
			      .features = PROTO_FEAT_INVAL,
			      .on_push = fuse_ops_push};
	struct fuse_ops_cfg fc = {0};
	struct transport_conn *tc;
	struct proto_msg hello;
	struct rpcc *rpc = NULL;
	char why[PROTO_MAX_REASON + 1] = "", fsname[300];
	int rc;

	proto_msg_init(&hello);
	tc = transport_wrap_fd(fl.fd);
	if (!tc) {
		rc = -ENOMEM;
		goto out;
	}
	rc = rpcc_start(tc, &o, &rpc, &hello, why, sizeof(why));
	if (rc) {
		snprintf(fl.err, sizeof(fl.err), "local mount: HELLO: %s",
			 why[0] ? why : strerror(-rc));
		goto out;
	}
	snprintf(fsname, sizeof(fsname), "occfs:%s", fl.cfg->fuse_fsid);
	fc.attr_timeout = 1.0;
	fc.entry_timeout = 1.0;
	fc.negative_timeout = 0.0;
	fc.rdonly = !!(hello.flags & PROTO_HELLO_RDONLY);
	fc.allow_other = 1;
	fc.default_permissions = 1;
	fc.foreground = 1; /* the broker daemonizes itself */
	fc.debug = 0;
	fc.fsname = fsname;
	fc.extra_opts = fl.cfg->fuse_opts;
	log_info("mounting %s at %s", fl.cfg->fuse_fsid,
		 fl.cfg->fuse_mountpoint);
	rc = fuse_ops_serve(rpc, fl.cfg->fuse_mountpoint, &fc);
	if (rc)
		snprintf(fl.err, sizeof(fl.err), "local mount at %s: %s",
			 fl.cfg->fuse_mountpoint, strerror(-rc));
out:
	proto_msg_cleanup(&hello);
	rpcc_free(rpc); /* closes our end: the broker sees EOF */
	if (!rpc && !tc)
		close(fl.fd);
	atomic_store(&fl.done, 1);
	/* A failure is logged by the ready callback (or the waiting parent). */
	if (!rc)
		log_info("local mount at %s ended", fl.cfg->fuse_mountpoint);
	fuse_local_report(0, fl.err[0] ? fl.err : "local mount ended");
	/* Nothing else to serve: a --fuse-only broker ends with its mount. */
	if (!atomic_load(&fl.stopping) && (!fl.cfg->nlisten || rc))
		kill(getpid(), SIGTERM);
	return NULL;
}

static void *fuse_local_watch(void *arg)
{
	struct timespec ts = {0, 50 * 1000 * 1000};
	struct stat st;
	int i;

	for (i = 0; i < FUSE_LOCAL_READY_S * 20; i++) {
		if (atomic_load(&fl.done) || atomic_load(&fl.reported))
			return NULL; /* the mount thread reported */
		if (stat(fl.cfg->fuse_mountpoint, &st) == 0 &&
		    st.st_dev != fl.dev0) {
			fuse_local_report(1, NULL);
			return NULL;
		}
		nanosleep(&ts, NULL);
	}
	fuse_local_report(0, "local mount did not appear in time");
	return NULL;
}

int fuse_local_start(const struct broker_config *cfg, int fd,
		     int (*ready)(int ok, const char *msg))
{
	struct stat st;
	int rc;

	fl.cfg = cfg;
	fl.fd = fd;
	fl.ready = ready;
	if (stat(cfg->fuse_mountpoint, &st) < 0)
		return -errno;
	fl.dev0 = st.st_dev;
	rc = -pthread_create(&fl.thread, NULL, fuse_local_main, NULL);
	if (rc)
		return rc;
	fl.started = 1;
	rc = -pthread_create(&fl.watcher, NULL, fuse_local_watch, NULL);
	if (rc)
		return rc;
	pthread_detach(fl.watcher);
	return 0;
}

/*
 * Called from the event loop when shutdown starts: detach the mount so the
 * FUSE session ends.  Never waits: the mount thread may need the loop to
 * answer its last requests.
 */
void fuse_local_stop(void)
{
	if (!fl.started || atomic_exchange(&fl.stopping, 1))
		return;
	if (!atomic_load(&fl.done) &&
	    umount2(fl.cfg->fuse_mountpoint, MNT_DETACH) < 0 && errno != EINVAL)
		log_warn("unmount %s: %m", fl.cfg->fuse_mountpoint);
}

/* After the loop has ended: give the mount thread a moment to return. */
void fuse_local_join(void)
{
	struct timespec ts;

	if (!fl.started)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += FUSE_LOCAL_JOIN_S;
	if (pthread_timedjoin_np(fl.thread, NULL, &ts))
		log_warn("local mount thread did not finish; exiting anyway");
	fl.started = 0;
}
