/*
 * main.c - mountc, also installed as /sbin/mount.occfs: mount one occfs
 * filesystem in the guest.
 *
 * The order matters: everything that can be checked without spending the
 * handle (options, endpoint, mount point, the connection to the broker) is
 * done first, because reading the handle destroys its file: a broker that
 * is not up yet at boot must not cost the handle.  Then the handle is read
 * and HELLO presents it; the handle is wiped
 * from memory as soon as HELLO is answered.  Only then is the filesystem
 * mounted and the process daemonized, so every refusal reaches the user's
 * terminal with mount(8)'s exit codes: 1 for usage, 32 for a failed mount.
 */
#include "buf.h"
#include "fuse_ops.h"
#include "handle_file.h"
#include "log.h"
#include "mount_opts.h"
#include "proto.h"
#include "rpcc.h"
#include "transport.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MOUNTC_CONNECT_MS 10000

static const char *prog = "mountc";

static void usage(FILE *f)
{
	fprintf(f,
		"usage: %s SPEC DIR [-fdsnvhV] -o handle=PATH[,OPTION...]\n"
		"  SPEC  broker endpoint: unix:/path, vsock:CID:PORT, "
		"tls:HOST:PORT\n"
		"  DIR   mount point\n"
		"  -f    foreground (as mount.occfs: fake, mount nothing)\n"
		"  -d    debug output, foreground\n"
		"  -s    sloppy: ignore unknown options\n"
		"  -v    verbose   -h help   -V version\n"
		"options: handle=PATH (required) ca=PATH attr_timeout=S "
		"entry_timeout=S\n"
		"  negative_timeout=S timeout=S writeback|nowriteback "
		"allow_other\n"
		"  default_permissions|nodefault_permissions max_threads=N "
		"ro|rw\n"
		"  read_ahead_kb=N spin_us=N max_dirty_ratio=N "
		"splice|nosplice\n"
		"  and generic mount options (nosuid, nodev, noexec, noatime, "
		"...)\n"
		"See mount.occfs(8).\n",
		prog);
}

/* Print one line "prog: message" and give mount(8)'s exit code. */
static int fail(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int fail(int code, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return code;
}

/* Connect and present the handle; the handle is wiped before returning. */
static int mountc_session(const struct mount_opts *o,
			  const struct transport_ep *ep, struct rpcc **rpc,
			  struct proto_msg *hello)
{
	struct transport_tls_opts tls = {.ca_file = o->ca_path};
	struct rpcc_opts ro = {0};
	struct transport_conn *conn = NULL;
	struct handle_secret h = {0};
	const char *cwhy = NULL;
	char why[PROTO_MAX_REASON + 1];
	int rc;

	/* Connect first: an unreachable broker must not cost the handle. */
	rc = transport_connect(ep, ep->kind == TRANSPORT_TLS ? &tls : NULL,
			       MOUNTC_CONNECT_MS, &conn, &cwhy);
	if (rc)
		return fail(MOUNT_EX_FAIL,
			    "cannot connect to the broker at "
			    "%s: %s",
			    o->spec, cwhy && *cwhy ? cwhy : strerror(-rc));
	rc = handle_file_read(o->handle_path, &h, why, sizeof(why));
	if (rc) {
		transport_close(conn);
		return fail(MOUNT_EX_FAIL, "%s", why);
	}
	ro.handle = h.p;
	ro.handle_len = h.len;
	/* Compression pays on a network; over a local socket it only
	 * burns CPU on both ends. */
	ro.features = PROTO_FEAT_INVAL | PROTO_FEAT_NOFLUSH | PROTO_FEAT_PATTR |
		      (ep->kind == TRANSPORT_TLS ? PROTO_FEAT_ZSTD : 0);
	ro.timeout_ms = (int)(o->timeout * 1000.0);
	/* Polling the socket says nothing of bytes TLS already holds, and a
	 * broker across a network answers far later than a spin lasts. */
	ro.spin_us = ep->kind == TRANSPORT_TLS ? 0 : o->spin_us;
	ro.on_push = fuse_ops_push;
	rc = rpcc_start(conn, &ro, rpc, hello, why, sizeof(why));
	handle_secret_free(&h);
	if (rc == -ETIMEDOUT || rc == -ENOTCONN || rc == -EBADMSG ||
	    rc == -EPIPE || rc == -ECONNRESET)
		return fail(MOUNT_EX_FAIL,
			    "no usable answer from the broker "
			    "at %s: %s",
			    o->spec, why);
	if (rc)
		return fail(MOUNT_EX_FAIL, "broker refused the handle: %s",
			    *why ? why : strerror(-rc));
	return 0;
}

static void mountc_cfg(const struct mount_opts *o, const struct proto_msg *h,
		       struct fuse_ops_cfg *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->attr_timeout = o->attr_timeout;
	cfg->entry_timeout = o->entry_timeout;
	cfg->negative_timeout = o->negative_timeout;
	cfg->writeback = o->writeback;
	cfg->splice_write = o->splice;
	cfg->staged = !!(h->flags & PROTO_HELLO_STAGED);
	cfg->rdonly = o->rdonly || (h->flags & PROTO_HELLO_RDONLY);
	cfg->allow_other = o->allow_other;
	cfg->default_permissions = o->default_permissions;
	cfg->foreground = o->foreground;
	cfg->debug = o->debug;
	cfg->max_threads = o->max_threads;
	cfg->read_ahead_kb = o->read_ahead_kb ? (int)o->read_ahead_kb : -1;
	cfg->dirty_ratio = o->max_dirty_ratio >= 0 ? o->max_dirty_ratio
			   : (h->flags & PROTO_HELLO_STAGED)
			       ? MOUNT_OPTS_STAGED_DIRTY_RATIO
			       : 0;
	cfg->fsname = o->spec;
	cfg->extra_opts = o->fuse_opts;
}

/* Checks that do not consume the handle. */
static int mountc_precheck(const struct mount_opts *o, struct transport_ep *ep)
{
	const char *why = NULL;
	char msg[512];
	struct stat st;

	if (transport_parse(o->spec, ep, &why))
		return fail(MOUNT_EX_USAGE, "bad broker endpoint '%s': %s",
			    o->spec, why ? why : "unknown form");
	if (o->ca_path && ep->kind != TRANSPORT_TLS)
		return fail(MOUNT_EX_USAGE, "option ca= is only for tls: "
					    "endpoints");
	if (stat(o->mountpoint, &st) < 0)
		return fail(MOUNT_EX_FAIL, "mount point %s: %s", o->mountpoint,
			    strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return fail(MOUNT_EX_FAIL, "mount point %s is not a directory",
			    o->mountpoint);
	if (o->fake) {
		if (handle_file_check(o->handle_path, msg, sizeof(msg)))
			return fail(MOUNT_EX_FAIL, "%s", msg);
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct mount_opts o;
	struct transport_ep ep;
	struct fuse_ops_cfg cfg;
	struct proto_msg hello;
	struct rpcc *rpc = NULL;
	const char *base;
	char err[512];
	int rc, helper;

	buf_keep_payload_memory();
	base = argc > 0 && argv[0] ? strrchr(argv[0], '/') : NULL;
	prog = base ? base + 1 : argc > 0 && argv[0] ? argv[0] : "mountc";
	helper = strncmp(prog, "mount.", 6) == 0;
	mount_opts_init(&o);
	if (mount_opts_parse_argv(&o, argc, argv, helper, err, sizeof(err))) {
		fail(MOUNT_EX_USAGE, "%s", err);
		fprintf(stderr, "Try '%s -h' for more information.\n", prog);
		rc = MOUNT_EX_USAGE;
		goto out;
	}
	if (o.help || o.version) {
		if (o.help)
			usage(stdout);
		else
			printf("%s (occfs) %s, protocol %d\n", prog,
			       PACKAGE_VERSION, PROTO_VERSION);
		rc = MOUNT_EX_OK;
		goto out;
	}
	log_init(prog, o.debug || o.verbose);
	rc = mountc_precheck(&o, &ep);
	if (rc || o.fake)
		goto out;
	proto_msg_init(&hello);
	rc = mountc_session(&o, &ep, &rpc, &hello);
	if (rc)
		goto out;
	if (o.verbose || o.debug)
		log_info("session for filesystem %s%s, features:%s%s%s%s",
			 hello.name ? hello.name : "?",
			 hello.flags & PROTO_HELLO_RDONLY ? " (read-only)" : "",
			 rpcc_features(rpc) & PROTO_FEAT_ZSTD ? " ZSTD" : "",
			 rpcc_features(rpc) & PROTO_FEAT_INVAL ? " INVAL" : "",
			 rpcc_features(rpc) & PROTO_FEAT_NOFLUSH ? " NOFLUSH"
								 : "",
			 rpcc_features(rpc) & PROTO_FEAT_PATTR ? " PATTR" : "");
	mountc_cfg(&o, &hello, &cfg);
	rc = fuse_ops_serve(rpc, o.mountpoint, &cfg);
	proto_msg_cleanup(&hello);
	if (rc) {
		log_err("cannot serve %s on %s: %s", o.spec, o.mountpoint,
			strerror(-rc));
		rc = MOUNT_EX_FAIL;
	}
out:
	rpcc_free(rpc);
	mount_opts_cleanup(&o);
	return rc;
}
