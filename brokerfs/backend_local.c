/*
 * backend_local.c - the local backend: one host directory per filesystem_id,
 * full POSIX semantics, every guest name confined below that directory.
 *
 * This file opens and closes sessions and dispatches requests through a
 * table generated from PROTO_OPS.  The work itself is in local_nodes.c (node
 * table), local_meta.c (names and attributes), local_data.c (open files) and
 * local_dir.c (directory streams); local.h explains the confinement model.
 *
 * The broker runs as root; permission checks are left to the client kernel
 * (default_permissions).  What the backend guarantees is that no request
 * reaches anything outside <root>/<fsid>/, that a symlink the guest planted
 * is never followed on the host, and that no device node is created.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend.h"
#include "broker.h"
#include "dlp_scan.h"
#include "local.h"
#include "log.h"
#include "proto.h"

/* clang-format off */
static const local_handler local_table[PROTO_OP_MAX] = {
#define LOCAL_ENTRY(name, num, req, rep, fl) [num] = LOCAL_HANDLER_##name,
	PROTO_OPS(LOCAL_ENTRY)
#undef LOCAL_ENTRY
};
/* clang-format on */

/*
 * The O_PATH descriptor pins the inode but /proc must work for reopening
 * files; check once here so a broker without /proc fails at session open
 * rather than on the first read.
 */
static int local_check_proc(int fd)
{
	struct stat a, b;
	char path[40];
	int rc = local_proc_path(path, sizeof(path), fd);

	if (rc)
		return rc;
	if (stat(path, &a) < 0 || fstat(fd, &b) < 0)
		return -errno;
	if (a.st_dev != b.st_dev || a.st_ino != b.st_ino)
		return -ENXIO;
	return 0;
}

static int local_check(const struct broker_config *cfg)
{
	struct stat st;

	if (stat(cfg->root, &st) < 0) {
		log_err("root %s: %s", cfg->root, strerror(errno));
		return -errno;
	}
	if (!S_ISDIR(st.st_mode)) {
		log_err("root %s: not a directory", cfg->root);
		return -ENOTDIR;
	}
	return 0;
}

static int local_start(const struct broker_config *cfg, struct backend **out)
{
	struct backend *b = calloc(1, sizeof(*b));

	if (!b || !(b->root = strdup(cfg->root))) {
		free(b);
		return -ENOMEM;
	}
	pthread_mutex_init(&b->lock, NULL);
	*out = b;
	return 0;
}

/* Every write went to the host filesystem as it came: nothing to flush. */
static int local_stop(struct backend *b, unsigned flush_ms)
{
	(void)flush_ms;
	if (b) {
		free(b->root);
		pthread_mutex_destroy(&b->lock);
	}
	free(b);
	return 0;
}

static int local_session_open_opts(struct backend *b, const char *fsid,
				   const struct backend_session_opts *o,
				   struct backend_session **out)
{
	const char *root = b->root;
	struct backend_session *s = NULL;
	int rootfd = -1, fd = -1, rc;
	bool created = false;

	*out = NULL;
	rc = local_name_check(fsid);
	if (rc)
		goto out;
	/* The quarantine lives beside the filesystems: never serve it. */
	if (!strcmp(fsid, DLP_QUARANTINE_LOCAL)) {
		rc = -EACCES;
		goto out;
	}
	rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0) {
		rc = -errno;
		goto out;
	}
	if (mkdirat(rootfd, fsid, 0755) == 0) {
		created = true;
	} else if (errno != EEXIST) {
		rc = -errno;
		goto out;
	}
	/* A symlink in place of the fsid directory is refused (ELOOP or
	 * ENOTDIR), not followed. */
	fd = local_openat2(rootfd, fsid, O_PATH | O_DIRECTORY, 0);
	if (fd < 0) {
		rc = fd;
		goto out;
	}
	rc = local_check_proc(fd);
	if (rc)
		goto out;
	/* 0755 whatever the process umask is. */
	if (created) {
		char path[40];

		rc = local_proc_path(path, sizeof(path), fd);
		if (!rc && chmod(path, 0755) < 0)
			rc = -errno;
		if (rc)
			goto out;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		rc = -ENOMEM;
		goto out;
	}
	s->flags = o->flags;
	s->b = b;
	s->fsid = strdup(fsid);
	if (!s->fsid) {
		rc = -ENOMEM;
		goto out;
	}
	s->can_chown = geteuid() == 0;
	s->root_fd = fd;
	rc = local_files_init(s);
	if (rc)
		goto out;
	rc = local_nodes_init(s, fd);
	if (rc) {
		local_files_cleanup(s);
		goto out;
	}
	fd = -1; /* owned by the root node */
	rc = local_quota_attach(s, fsid, o);
	if (rc) {
		local_files_cleanup(s);
		local_nodes_cleanup(s);
		goto out;
	}
	*out = s;
	s = NULL;
out:
	if (s)
		free(s->fsid);
	free(s);
	if (fd >= 0)
		close(fd);
	if (rootfd >= 0)
		close(rootfd);
	return rc;
}

static int local_session_open(struct backend *b, const char *fsid,
			      unsigned flags, struct backend_session **out)
{
	struct backend_session_opts o = {.flags = flags};

	return local_session_open_opts(b, fsid, &o, out);
}

/* The core has drained every worker of this session before closing it. */
static void local_session_close(struct backend_session *s)
{
	if (!s)
		return;
	local_files_cleanup(s);
	local_nodes_cleanup(s);
	local_quota_detach(s);
	free(s->fsid);
	free(s);
}

/* Opening for writing or truncating is a mutation on a read-only session. */
static int local_rdonly_check(const struct proto_msg *req)
{
	const struct proto_opinfo *oi = proto_opinfo(req->op);

	if (oi->flags & OPF_MUTATES)
		return -EROFS;
	if (req->op == PROTO_OP_OPEN &&
	    ((req->flags & O_ACCMODE) != O_RDONLY || (req->flags & O_TRUNC)))
		return -EROFS;
	return 0;
}

/*
 * The parent directory's attributes after a successful entry operation
 * (OPF_PATTR), so the client need not ask for them: the kernel's
 * permission check wants them right after it dropped its copy because of
 * this very operation.  Best effort: a directory that cannot be stat'ed
 * now is simply left out of the reply.
 */
static void local_pattr(struct backend_session *s, const struct proto_msg *req,
			struct proto_msg *rep)
{
	uint64_t dir = req->op == PROTO_OP_LINK ? req->ino2 : req->ino;
	struct local_node *n = local_node_get(s, dir);

	if (!n)
		return;
	if (n->type == S_IFDIR && local_node_attr(n, &rep->pattr) == 0)
		rep->has_pattr = 1;
	local_node_put(s, n);
}

static int local_dispatch(struct backend_session *s,
			  const struct proto_msg *req, struct proto_msg *rep)
{
	local_handler h;
	int rc;

	if (!s || !req || !rep)
		return -EINVAL;
	if (req->op >= PROTO_OP_MAX || !(h = local_table[req->op]))
		return -ENOSYS;
	if (s->flags & BACKEND_SESSION_RDONLY) {
		rc = local_rdonly_check(req);
		if (rc)
			return rc;
	}
	rc = h(s, req, rep);
	if (!rc && (proto_opinfo(req->op)->flags & OPF_PATTR))
		local_pattr(s, req, rep);
	return rc;
}

/*
 * A SETATTR that truncates nothing: chmod, chown, utimes on the host; a
 * small WRITE (local_data_write_quick).
 */
static int local_quick(struct backend_session *s, const struct proto_msg *req)
{
	if (req->op == PROTO_OP_WRITE)
		return local_data_write_quick(s, req);
	return req->op == PROTO_OP_SETATTR && !(req->valid & PROTO_SET_SIZE);
}

const struct backend_ops backend_local = {
    .name = "local",
    .check = local_check,
    .start = local_start,
    .stop = local_stop,
    .session_open = local_session_open,
    .session_open_opts = local_session_open_opts,
    .session_quota = local_quota_set,
    .session_close = local_session_close,
    .dispatch = local_dispatch,
    /* Metadata calls that normally hit the inode cache.  Left to workers:
     * data moves (but small writes, local_quick), syncs, listings, and
     * UNLINK / RENAME / RELEASE and a SETATTR of the size, which may free
     * or truncate a large file;
     * FLUSH, which scans a written file when DLP is on. */
    .inline_ops =
	BACKEND_OP_BIT(PROTO_OP_LOOKUP) | BACKEND_OP_BIT(PROTO_OP_FORGET) |
	BACKEND_OP_BIT(PROTO_OP_GETATTR) | BACKEND_OP_BIT(PROTO_OP_READLINK) |
	BACKEND_OP_BIT(PROTO_OP_OPEN) | BACKEND_OP_BIT(PROTO_OP_OPENDIR) |
	BACKEND_OP_BIT(PROTO_OP_RELEASEDIR) | BACKEND_OP_BIT(PROTO_OP_STATFS) |
	BACKEND_OP_BIT(PROTO_OP_GETXATTR) | BACKEND_OP_BIT(PROTO_OP_LISTXATTR) |
	BACKEND_OP_BIT(PROTO_OP_ACCESS) | BACKEND_OP_BIT(PROTO_OP_CREATE) |
	BACKEND_OP_BIT(PROTO_OP_MKDIR) | BACKEND_OP_BIT(PROTO_OP_SYMLINK) |
	BACKEND_OP_BIT(PROTO_OP_MKNOD) | BACKEND_OP_BIT(PROTO_OP_LINK) |
	BACKEND_OP_BIT(PROTO_OP_SETXATTR) |
	BACKEND_OP_BIT(PROTO_OP_REMOVEXATTR) | BACKEND_OP_BIT(PROTO_OP_RMDIR),
    .quick = local_quick,
    /* Writes reach the host file as they come; FLUSH only scans. */
    .dlp_only_ops = BACKEND_OP_BIT(PROTO_OP_FLUSH),
};
