/*
 * local_nodes.c - the local backend's node table and confined name lookup.
 *
 * A node is an O_PATH descriptor plus the host (st_dev, st_ino) it pins.
 * Two hash tables index the same nodes: by nodeid (every request) and by
 * (dev, ino), so a second name for an inode (a hard link, or a lookup after
 * a rename) yields the nodeid the guest kernel already has; otherwise its
 * inode cache would hold two inodes for one file.  nodeids come from a
 * counter and are never reused within a session, so gen is always 0.
 *
 * Everything in the tables is under nodes_lock.  A node is freed once the
 * guest has forgotten it (nlookup == 0) and no worker holds it (refs == 0);
 * the root is pinned.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "local.h"
#include "proto.h"

#define NODES_MIN_BUCKETS 1024u

static size_t hash_id(uint64_t id, size_t nbuckets)
{
	return (size_t)((id * 0x9e3779b97f4a7c15ull) >> 17) & (nbuckets - 1);
}

static size_t hash_key(dev_t dev, ino_t ino, size_t nbuckets)
{
	uint64_t h = (uint64_t)ino * 0x9e3779b97f4a7c15ull;

	h ^= (uint64_t)dev * 0xc2b2ae3d27d4eb4full;
	return (size_t)(h ^ (h >> 29)) & (nbuckets - 1);
}

/* Single path segment rules for every guest-supplied entry name. */
int local_name_check(const char *name)
{
	size_t len;

	if (!name || !name[0])
		return -EINVAL;
	if (!strcmp(name, ".") || !strcmp(name, ".."))
		return -EINVAL;
	len = strnlen(name, PROTO_MAX_NAME + 1);
	if (len > PROTO_MAX_NAME)
		return -ENAMETOOLONG;
	if (memchr(name, '/', len))
		return -EINVAL;
	return 0;
}

/*
 * Open name below dirfd without ever following a symlink or leaving the
 * tree.  With O_PATH | O_NOFOLLOW a symlink as the last component yields a
 * descriptor for the link itself.
 */
int local_openat2(int dirfd, const char *name, int flags, mode_t mode)
{
	struct open_how how = {
	    .flags = (uint64_t)(flags | O_NOFOLLOW | O_CLOEXEC),
	    .mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0,
	    .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS |
		       RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV,
	};
	long fd;
	int tries = 0;

	/* EAGAIN: a concurrent rename made the kernel unsure the walk stayed
	 * beneath dirfd; retry a few times, then report it. */
	do
		fd = syscall(SYS_openat2, dirfd, name, &how, sizeof(how));
	while (fd < 0 && errno == EAGAIN && ++tries < 8);
	return fd < 0 ? -errno : (int)fd;
}

int local_proc_path(char *buf, size_t size, int fd)
{
	int n = snprintf(buf, size, "/proc/self/fd/%d", fd);

	return (n < 0 || (size_t)n >= size) ? -ENAMETOOLONG : 0;
}

/*
 * Reopen a node for I/O.  Only regular files and directories: the type is
 * fixed for the inode the O_PATH descriptor pins, so the /proc magic link
 * cannot lead anywhere else, and O_NOFOLLOW cannot be used here because
 * the magic link is itself a symlink.
 */
int local_reopen(struct local_node *n, int flags)
{
	char path[40];
	int fd, rc;

	if (n->type == S_IFDIR)
		flags |= O_DIRECTORY;
	else if (n->type == S_IFLNK)
		return -ELOOP;
	else if (n->type != S_IFREG)
		return -ENXIO;
	rc = local_proc_path(path, sizeof(path), n->fd);
	if (rc)
		return rc;
	flags &= ~(O_CREAT | O_EXCL | O_NOFOLLOW | O_PATH | O_TMPFILE);
	fd = open(path, flags | O_CLOEXEC | O_NOCTTY);
	return fd < 0 ? -errno : fd;
}

void local_attr_fill(struct proto_attr *a, const struct stat *st,
		     uint64_t nodeid)
{
	memset(a, 0, sizeof(*a));
	a->nodeid = nodeid;
	a->gen = 0;
	a->ino = (uint64_t)st->st_ino;
	a->mode = (uint32_t)st->st_mode;
	a->nlink = (uint32_t)st->st_nlink;
	a->uid = (uint32_t)st->st_uid;
	a->gid = (uint32_t)st->st_gid;
	a->rdev = (uint64_t)st->st_rdev;
	a->size = st->st_size < 0 ? 0 : (uint64_t)st->st_size;
	a->blocks = st->st_blocks < 0 ? 0 : (uint64_t)st->st_blocks;
	a->blksize = (uint32_t)st->st_blksize;
	a->atime = st->st_atim.tv_sec;
	a->mtime = st->st_mtim.tv_sec;
	a->ctime = st->st_ctim.tv_sec;
	a->atime_ns = (uint32_t)st->st_atim.tv_nsec;
	a->mtime_ns = (uint32_t)st->st_mtim.tv_nsec;
	a->ctime_ns = (uint32_t)st->st_ctim.tv_nsec;
}

int local_node_stat(struct local_node *n, struct stat *st)
{
	if (fstatat(n->fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	return 0;
}

/* ---- tables (callers hold nodes_lock) ----------------------------------- */

static void tables_link(struct backend_session *s, struct local_node *n)
{
	size_t i = hash_id(n->nodeid, s->nbuckets);
	size_t k = hash_key(n->dev, n->ino, s->nbuckets);

	n->id_next = s->by_id[i];
	s->by_id[i] = n;
	n->key_next = s->by_key[k];
	s->by_key[k] = n;
	s->nnodes++;
}

static void tables_unlink(struct backend_session *s, struct local_node *n)
{
	struct local_node **pp;

	for (pp = &s->by_id[hash_id(n->nodeid, s->nbuckets)]; *pp;
	     pp = &(*pp)->id_next) {
		if (*pp == n) {
			*pp = n->id_next;
			break;
		}
	}
	for (pp = &s->by_key[hash_key(n->dev, n->ino, s->nbuckets)]; *pp;
	     pp = &(*pp)->key_next) {
		if (*pp == n) {
			*pp = n->key_next;
			break;
		}
	}
	s->nnodes--;
}

/* Double the bucket count; on allocation failure keep the longer chains. */
static void tables_grow(struct backend_session *s)
{
	size_t old = s->nbuckets, nb = old * 2, i;
	struct local_node **id, **key, *n, *next;

	id = calloc(nb, sizeof(*id));
	key = calloc(nb, sizeof(*key));
	if (!id || !key) {
		free(id);
		free(key);
		return;
	}
	for (i = 0; i < old; i++) {
		for (n = s->by_id[i]; n; n = next) {
			size_t b = hash_id(n->nodeid, nb);

			next = n->id_next;
			n->id_next = id[b];
			id[b] = n;
		}
		for (n = s->by_key[i]; n; n = next) {
			size_t b = hash_key(n->dev, n->ino, nb);

			next = n->key_next;
			n->key_next = key[b];
			key[b] = n;
		}
	}
	free(s->by_id);
	free(s->by_key);
	s->by_id = id;
	s->by_key = key;
	s->nbuckets = nb;
}

static struct local_node *find_id(struct backend_session *s, uint64_t id)
{
	struct local_node *n = s->by_id[hash_id(id, s->nbuckets)];

	while (n && n->nodeid != id)
		n = n->id_next;
	return n;
}

static struct local_node *find_key(struct backend_session *s, dev_t dev,
				   ino_t ino)
{
	struct local_node *n = s->by_key[hash_key(dev, ino, s->nbuckets)];

	while (n && (n->ino != ino || n->dev != dev))
		n = n->key_next;
	return n;
}

/* Remove n if nobody holds it any more; returns the fd to close or -1. */
static int maybe_free(struct backend_session *s, struct local_node *n)
{
	int fd;

	if (n->nlookup || n->refs || n == s->root)
		return -1;
	tables_unlink(s, n);
	fd = n->fd;
	free(n);
	return fd;
}

/* ---- public ------------------------------------------------------------- */

int local_nodes_init(struct backend_session *s, int root_fd)
{
	struct local_node *root;
	struct stat st;

	if (fstatat(root_fd, "", &st, AT_EMPTY_PATH) < 0)
		return -errno;
	s->nbuckets = NODES_MIN_BUCKETS;
	s->by_id = calloc(s->nbuckets, sizeof(*s->by_id));
	s->by_key = calloc(s->nbuckets, sizeof(*s->by_key));
	root = calloc(1, sizeof(*root));
	if (!s->by_id || !s->by_key || !root) {
		free(root);
		free(s->by_id);
		free(s->by_key);
		s->by_id = s->by_key = NULL;
		return -ENOMEM;
	}
	pthread_mutex_init(&s->nodes_lock, NULL);
	root->nodeid = LOCAL_ROOT_ID;
	root->fd = root_fd;
	root->dev = st.st_dev;
	root->ino = st.st_ino;
	root->type = S_IFDIR;
	root->nlookup = 1;
	s->root = root;
	s->next_id = LOCAL_ROOT_ID + 1;
	tables_link(s, root);
	return 0;
}

/* Frees every node and closes its descriptor; no worker may be running. */
void local_nodes_cleanup(struct backend_session *s)
{
	struct local_node *n, *next;
	size_t i;

	if (!s->by_id)
		return;
	for (i = 0; i < s->nbuckets; i++) {
		for (n = s->by_id[i]; n; n = next) {
			next = n->id_next;
			close(n->fd);
			free(n);
		}
	}
	free(s->by_id);
	free(s->by_key);
	s->by_id = s->by_key = NULL;
	s->root = NULL;
	pthread_mutex_destroy(&s->nodes_lock);
}

struct local_node *local_node_get(struct backend_session *s, uint64_t nodeid)
{
	struct local_node *n;

	pthread_mutex_lock(&s->nodes_lock);
	n = find_id(s, nodeid);
	if (n)
		n->refs++;
	pthread_mutex_unlock(&s->nodes_lock);
	return n;
}

void local_node_put(struct backend_session *s, struct local_node *n)
{
	int fd;

	if (!n)
		return;
	pthread_mutex_lock(&s->nodes_lock);
	n->refs--;
	fd = maybe_free(s, n);
	pthread_mutex_unlock(&s->nodes_lock);
	if (fd >= 0)
		close(fd);
}

/*
 * Take over fd (an O_PATH descriptor of the inode st describes): find or
 * create its node, count one guest lookup and fill attr.  fd is consumed
 * in every case.
 */
int local_node_adopt(struct backend_session *s, int fd, const struct stat *st,
		     struct proto_attr *attr)
{
	struct local_node *n, *fresh;
	uint64_t id;

	fresh = malloc(sizeof(*fresh));
	pthread_mutex_lock(&s->nodes_lock);
	n = find_key(s, st->st_dev, st->st_ino);
	if (n) {
		n->nlookup++;
		id = n->nodeid;
		pthread_mutex_unlock(&s->nodes_lock);
		free(fresh);
		close(fd);
		local_attr_fill(attr, st, id);
		return 0;
	}
	if (!fresh) {
		pthread_mutex_unlock(&s->nodes_lock);
		close(fd);
		return -ENOMEM;
	}
	fresh->nodeid = id = s->next_id++;
	fresh->fd = fd;
	fresh->dev = st->st_dev;
	fresh->ino = st->st_ino;
	fresh->type = st->st_mode & S_IFMT;
	fresh->nlookup = 1;
	fresh->refs = 0;
	tables_link(s, fresh);
	if (s->nnodes > s->nbuckets)
		tables_grow(s);
	pthread_mutex_unlock(&s->nodes_lock);
	local_attr_fill(attr, st, id);
	return 0;
}

int local_node_attr(struct local_node *n, struct proto_attr *attr)
{
	struct stat st;
	int rc = local_node_stat(n, &st);

	if (!rc)
		local_attr_fill(attr, &st, n->nodeid);
	return rc;
}

/* One more guest lookup of a node already held (LINK replies). */
int local_node_ref_again(struct backend_session *s, struct local_node *n,
			 struct proto_attr *attr)
{
	int rc = local_node_attr(n, attr);

	if (rc)
		return rc;
	pthread_mutex_lock(&s->nodes_lock);
	n->nlookup++;
	pthread_mutex_unlock(&s->nodes_lock);
	return 0;
}

void local_node_forget(struct backend_session *s, uint64_t nodeid,
		       uint64_t count)
{
	struct local_node *n;
	int fd = -1;

	pthread_mutex_lock(&s->nodes_lock);
	n = find_id(s, nodeid);
	if (n && n != s->root) {
		n->nlookup = count >= n->nlookup ? 0 : n->nlookup - count;
		fd = maybe_free(s, n);
	}
	pthread_mutex_unlock(&s->nodes_lock);
	if (fd >= 0)
		close(fd);
}

/* If the inode st describes is already a node, count a lookup of it. */
static bool ref_known(struct backend_session *s, const struct stat *st,
		      struct proto_attr *attr)
{
	struct local_node *n;
	uint64_t id = 0;

	pthread_mutex_lock(&s->nodes_lock);
	n = find_key(s, st->st_dev, st->st_ino);
	if (n) {
		n->nlookup++;
		id = n->nodeid;
	}
	pthread_mutex_unlock(&s->nodes_lock);
	if (n)
		local_attr_fill(attr, st, id);
	return n != NULL;
}

/*
 * Resolve one checked name below dirfd and take a lookup reference.
 *
 * Most lookups are of inodes the guest already knows (revalidation,
 * READDIRPLUS of a listed directory) or of names that do not exist, so a
 * plain fstatat of the single segment comes first: it follows nothing, and
 * a (dev, ino) found in the table is pinned by that node's descriptor, so it
 * is exactly that inode.  Only a new inode is opened with openat2.
 */
int local_node_lookup(struct backend_session *s, int dirfd, const char *name,
		      struct proto_attr *attr)
{
	struct stat st;
	int fd;

	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			return -errno;
	} else if (ref_known(s, &st, attr)) {
		return 0;
	}
	fd = local_openat2(dirfd, name, O_PATH, 0);
	if (fd < 0)
		return fd;
	if (fstatat(fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) {
		int rc = -errno;

		close(fd);
		return rc;
	}
	return local_node_adopt(s, fd, &st, attr);
}

/* A node that must be a directory (the parent of a name). */
int local_node_get_dir(struct backend_session *s, uint64_t nodeid,
		       struct local_node **out)
{
	struct local_node *n = local_node_get(s, nodeid);

	*out = NULL;
	if (!n)
		return -ESTALE;
	if (n->type != S_IFDIR) {
		local_node_put(s, n);
		return -ENOTDIR;
	}
	*out = n;
	return 0;
}
