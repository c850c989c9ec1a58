/*
 * local_dir.c - directory handles of the local backend: OPENDIR,
 * READDIRPLUS, RELEASEDIR and FSYNCDIR.
 *
 * A READDIRPLUS cookie is the host's d_off of the last entry sent, so a
 * reply can be resumed exactly where it stopped, even on another handle.
 * The stream is only repositioned (seekdir) when the request does not
 * continue where the previous reply ended.  Each entry but "." and ".."
 * carries a lookup reference, as FUSE expects of READDIRPLUS.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "local.h"
#include "proto.h"

/* fuse_dirent header (24) + fuse_entry_out (128) + name, 8-byte aligned. */
#define DIRENTPLUS_BASE 152u
#define DIRENTPLUS_SIZE(namelen) (((DIRENTPLUS_BASE + (namelen)) + 7u) & ~7ul)

int local_dir_opendir(struct backend_session *s, const struct proto_msg *req,
		      struct proto_msg *rep)
{
	struct local_file *f = NULL;
	struct local_node *n;
	int fd = -1, rc;

	rc = local_node_get_dir(s, req->ino, &n);
	if (rc)
		return rc;
	f = calloc(1, sizeof(*f));
	if (!f) {
		rc = -ENOMEM;
		goto out;
	}
	/* "." relative to the pinned directory: nothing to follow. */
	fd = openat(n->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		goto out;
	}
	f->dir = fdopendir(fd);
	if (!f->dir) {
		rc = -errno;
		goto out;
	}
	f->kind = LOCAL_DIR;
	f->fd = fd;
	fd = -1;
	f->oflags = O_RDONLY;
	f->at_root = n == s->root;
	f->pos_valid = true;
	f->dir_pos = 0;
	pthread_mutex_init(&f->dir_lock, NULL);
	rc = local_file_insert(s, f, &rep->fh);
	if (!rc)
		f = NULL;
	else
		pthread_mutex_destroy(&f->dir_lock);
out:
	if (f && f->dir)
		closedir(f->dir);
	free(f);
	if (fd >= 0)
		close(fd);
	local_node_put(s, n);
	return rc;
}

/* "." and "..": no lookup reference, just enough to show the entry. */
static void dot_attr(struct backend_session *s, struct local_file *f,
		     const struct dirent *de, struct proto_attr *a)
{
	memset(a, 0, sizeof(*a));
	a->mode = S_IFDIR;
	a->ino = (uint64_t)de->d_ino;
	/* Above the session root is the host: show the root itself, as ".."
	 * of any filesystem root does. */
	if (f->at_root && !strcmp(de->d_name, ".."))
		a->ino = (uint64_t)s->root->ino;
}

static bool is_dot(const char *name)
{
	return name[0] == '.' && (!name[1] || (name[1] == '.' && !name[2]));
}

/* Errors that say "try again later", not "this entry is unusable". */
static bool transient(int rc)
{
	return rc == -EMFILE || rc == -ENFILE || rc == -ENOMEM || rc == -EINTR;
}

/*
 * Fill rep->dirents from the stream, within req->len bytes of FUSE
 * direntplus records.  Called with dir_lock held.  Returns 0 with possibly
 * no entries (end of directory), or -errno if nothing could be sent.
 */
static int dir_fill(struct backend_session *s, struct local_file *f,
		    const struct proto_msg *req, struct proto_msg *rep,
		    size_t cap)
{
	size_t used = 0, n = 0, size;
	struct proto_dirent *d = rep->dirents;
	struct dirent *de;
	int rc = 0;

	for (;;) {
		errno = 0;
		de = readdir(f->dir);
		if (!de) {
			rc = errno ? -errno : 0;
			break;
		}
		size = DIRENTPLUS_SIZE(strlen(de->d_name));
		if (used + size > req->len || n == cap) {
			f->pos_valid = false; /* read one entry too many */
			break;
		}
		if (is_dot(de->d_name)) {
			dot_attr(s, f, de, &d[n].attr);
		} else {
			rc = local_node_lookup(s, dirfd(f->dir), de->d_name,
					       &d[n].attr);
			if (rc && !transient(rc)) {
				/* Gone or unusable since readdir: skip. */
				rc = 0;
				f->dir_pos = (uint64_t)de->d_off;
				continue;
			}
			if (rc) {
				f->pos_valid = false;
				break;
			}
		}
		d[n].name = strdup(de->d_name);
		if (!d[n].name) {
			if (d[n].attr.nodeid)
				local_node_forget(s, d[n].attr.nodeid, 1);
			rc = -ENOMEM;
			f->pos_valid = false;
			break;
		}
		d[n].off = (uint64_t)de->d_off;
		f->dir_pos = d[n].off;
		used += size;
		n++;
	}
	rep->ndirents = n;
	return n ? 0 : rc;
}

int local_dir_readdirplus(struct backend_session *s,
			  const struct proto_msg *req, struct proto_msg *rep)
{
	struct local_file *f = local_file_get(s, req->fh, LOCAL_DIR);
	size_t cap;
	int rc;

	if (!f)
		return -EBADF;
	if (req->off > (uint64_t)INT64_MAX) {
		rc = -EINVAL;
		goto out;
	}
	cap = req->len / DIRENTPLUS_SIZE(1) + 1;
	if (cap > PROTO_MAX_DIRENTS)
		cap = PROTO_MAX_DIRENTS;
	rep->dirents = calloc(cap, sizeof(*rep->dirents));
	if (!rep->dirents) {
		rc = -ENOMEM;
		goto out;
	}
	pthread_mutex_lock(&f->dir_lock);
	if (!f->pos_valid || f->dir_pos != req->off) {
		if (req->off == 0)
			rewinddir(f->dir);
		else
			seekdir(f->dir, (long)req->off);
		f->dir_pos = req->off;
		f->pos_valid = true;
	}
	rc = dir_fill(s, f, req, rep, cap);
	pthread_mutex_unlock(&f->dir_lock);
	if (rc || !rep->ndirents) {
		free(rep->dirents);
		rep->dirents = NULL;
		rep->ndirents = 0;
	}
out:
	local_file_put(s, f);
	return rc;
}

int local_dir_releasedir(struct backend_session *s, const struct proto_msg *req,
			 struct proto_msg *rep)
{
	return local_file_release(s, req->fh, LOCAL_DIR);
}

int local_dir_fsyncdir(struct backend_session *s, const struct proto_msg *req,
		       struct proto_msg *rep)
{
	return local_file_sync(s, req->fh, LOCAL_DIR, req->flags & 1);
}
