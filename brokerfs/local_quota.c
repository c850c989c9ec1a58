/*
 * local_quota.c - usage of a filesystem_id of the local backend against the
 * quota of its policy entry.
 *
 * Usage is kept per filesystem_id in memory, shared by every session of
 * that filesystem_id, and only while a quota applies: the first session
 * opened with a quota walks the tree once (bounded), and from then on each
 * change the broker makes is applied as it happens.  Bytes are the sizes
 * of regular files, each inode once however many names it has; inodes are
 * every entry below the filesystem's directory.  Changes made on the host
 * behind the broker's back are seen at the next scan, which happens when a
 * filesystem's sessions have all closed and a new one opens.
 *
 * Size changes are measured, not predicted: the file is stat'ed before and
 * after the call under the usage lock, so concurrent writers, O_APPEND and
 * short writes are counted exactly.  A file unlinked while the broker still
 * has it open keeps its space on the host, so it stays counted until its
 * last close (the table of open inodes below).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend.h"
#include "local.h"
#include "log.h"

#define QUOTA_OPEN_BUCKETS 256u	 /* table of open inodes */
#define QUOTA_SCAN_MAX 10000000u /* entries the first scan looks at */
#define QUOTA_SCAN_DEPTH 128u	 /* directory levels it descends */
#define QUOTA_LINKS_MAX 1000000u /* multiply-linked inodes it tracks */

/* An inode the broker has open for I/O. */
struct local_open {
	struct local_open *next;
	dev_t dev;
	ino_t ino;
	unsigned n; /* I/O descriptors open on it */
};

struct local_usage {
	struct local_usage *next; /* b->lock */
	char *fsid;		  /* immutable */
	unsigned sessions;	  /* b->lock */
	pthread_mutex_t lock;
	int on;			  /* atomic; set once under lock: counting */
	uint64_t qbytes, qinodes; /* atomic (a reload sets them from the
				   * loop, never waiting): 0 is no limit */
	uint64_t bytes, inodes;	  /* lock */
	struct local_open *open[QUOTA_OPEN_BUCKETS]; /* lock */
};

/* ---- the first scan ----------------------------------------------------- */

struct scan_link {
	dev_t dev;
	ino_t ino;
	uint64_t size; /* 0 unless a regular file */
};

struct scan {
	uint64_t bytes, inodes, entries;
	struct scan_link *links;
	size_t nlinks, cap;
	int truncated;
};

static void scan_count(struct scan *sc, const struct stat *st)
{
	uint64_t size = S_ISREG(st->st_mode) ? (uint64_t)st->st_size : 0;
	struct scan_link *p;

	if (S_ISDIR(st->st_mode) || st->st_nlink <= 1) {
		sc->inodes++;
		sc->bytes += size;
		return;
	}
	/* Other names of this inode may come later: count it once at the
	 * end. */
	if (sc->nlinks == sc->cap) {
		size_t n = sc->cap ? sc->cap * 2 : 256;

		if (n > QUOTA_LINKS_MAX ||
		    !(p = realloc(sc->links, n * sizeof(*p)))) {
			sc->inodes++; /* counted per name: errs high */
			sc->bytes += size;
			return;
		}
		sc->links = p;
		sc->cap = n;
	}
	sc->links[sc->nlinks++] = (struct scan_link){
	    .dev = st->st_dev, .ino = st->st_ino, .size = size};
}

/* Walk dfd (consumed) without following symlinks or leaving the tree. */
static void scan_dir(int dfd, unsigned depth, struct scan *sc)
{
	struct dirent *e;
	struct stat st;
	DIR *d = fdopendir(dfd);
	int fd;

	if (!d) {
		close(dfd);
		return;
	}
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (++sc->entries > QUOTA_SCAN_MAX) {
			sc->truncated = 1;
			break;
		}
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		scan_count(sc, &st);
		if (!S_ISDIR(st.st_mode))
			continue;
		if (depth >= QUOTA_SCAN_DEPTH) {
			sc->truncated = 1;
			continue;
		}
		fd = openat(dirfd(d), e->d_name,
			    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd >= 0)
			scan_dir(fd, depth + 1, sc);
	}
	closedir(d);
}

static int link_cmp(const void *a, const void *b)
{
	const struct scan_link *x = a, *y = b;

	if (x->dev != y->dev)
		return x->dev < y->dev ? -1 : 1;
	return x->ino < y->ino ? -1 : x->ino > y->ino;
}

/* Called with u->lock held, before u->on is set. */
static void usage_scan(struct backend_session *s, struct local_usage *u)
{
	struct scan sc = {0};
	size_t i;
	int fd;

	fd = local_reopen(s->root, O_RDONLY | O_DIRECTORY);
	if (fd >= 0)
		scan_dir(fd, 0, &sc);
	if (sc.nlinks)
		qsort(sc.links, sc.nlinks, sizeof(*sc.links), link_cmp);
	for (i = 0; i < sc.nlinks; i++) {
		if (i && !link_cmp(&sc.links[i], &sc.links[i - 1]))
			continue;
		sc.inodes++;
		sc.bytes += sc.links[i].size;
	}
	free(sc.links);
	if (sc.truncated)
		log_warn("local: %s: usage scan stopped at %u entries or %u "
			 "levels; the quota counts what was seen",
			 u->fsid, QUOTA_SCAN_MAX, QUOTA_SCAN_DEPTH);
	u->bytes = sc.bytes;
	u->inodes = sc.inodes;
	log_info("local: %s: %llu bytes in %llu inodes", u->fsid,
		 (unsigned long long)u->bytes, (unsigned long long)u->inodes);
}

/* ---- sessions ----------------------------------------------------------- */

static int usage_on(const struct local_usage *u)
{
	return u && __atomic_load_n(&u->on, __ATOMIC_ACQUIRE);
}

bool local_quota_on(const struct backend_session *s)
{
	return usage_on(s->usage);
}

static struct local_usage *usage_get(struct backend *b, const char *fsid)
{
	struct local_usage *u;

	pthread_mutex_lock(&b->lock);
	for (u = b->usage; u; u = u->next)
		if (!strcmp(u->fsid, fsid))
			break;
	if (!u && (u = calloc(1, sizeof(*u)))) {
		u->fsid = strdup(fsid);
		if (!u->fsid) {
			free(u);
			u = NULL;
		} else {
			pthread_mutex_init(&u->lock, NULL);
			u->next = b->usage;
			b->usage = u;
		}
	}
	if (u)
		u->sessions++;
	pthread_mutex_unlock(&b->lock);
	return u;
}

int local_quota_attach(struct backend_session *s, const char *fsid,
		       const struct backend_session_opts *o)
{
	struct local_usage *u = usage_get(s->b, fsid);

	if (!u)
		return -ENOMEM;
	s->usage = u;
	if (!o || (!o->quota_bytes && !o->quota_inodes))
		return 0;
	pthread_mutex_lock(&u->lock);
	if (!u->on) {
		usage_scan(s, u);
		__atomic_store_n(&u->on, 1, __ATOMIC_RELEASE);
	}
	__atomic_store_n(&u->qbytes, o->quota_bytes, __ATOMIC_RELAXED);
	__atomic_store_n(&u->qinodes, o->quota_inodes, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&u->lock);
	return 0;
}

void local_quota_detach(struct backend_session *s)
{
	struct local_usage *u = s->usage, **pp;
	struct local_open *o, *next;
	size_t i;

	if (!u)
		return;
	s->usage = NULL;
	pthread_mutex_lock(&s->b->lock);
	if (--u->sessions) {
		pthread_mutex_unlock(&s->b->lock);
		return;
	}
	for (pp = &s->b->usage; *pp && *pp != u; pp = &(*pp)->next)
		;
	if (*pp)
		*pp = u->next;
	pthread_mutex_unlock(&s->b->lock);
	for (i = 0; i < QUOTA_OPEN_BUCKETS; i++)
		for (o = u->open[i]; o; o = next) {
			next = o->next;
			free(o);
		}
	pthread_mutex_destroy(&u->lock);
	free(u->fsid);
	free(u);
}

/* A reload: the new quota applies at once where usage is being counted. */
void local_quota_set(struct backend_session *s, uint64_t bytes, uint64_t inodes)
{
	struct local_usage *u = s->usage;

	if (!usage_on(u))
		return;
	__atomic_store_n(&u->qbytes, bytes, __ATOMIC_RELAXED);
	__atomic_store_n(&u->qinodes, inodes, __ATOMIC_RELAXED);
}

void local_quota_usage(struct backend_session *s, uint64_t *bytes,
		       uint64_t *inodes)
{
	struct local_usage *u = s->usage;

	*bytes = *inodes = 0;
	if (!usage_on(u))
		return;
	pthread_mutex_lock(&u->lock);
	*bytes = u->bytes;
	*inodes = u->inodes;
	pthread_mutex_unlock(&u->lock);
}

/* ---- changes ------------------------------------------------------------ */

/* Called with u->lock held. */
static void usage_sub(struct local_usage *u, uint64_t bytes, uint64_t inodes)
{
	u->bytes = u->bytes > bytes ? u->bytes - bytes : 0;
	u->inodes = u->inodes > inodes ? u->inodes - inodes : 0;
}

int local_quota_begin(struct backend_session *s, int fd, struct local_qop *q,
		      uint64_t *room)
{
	struct local_usage *u = s->usage;
	struct stat st;
	uint64_t qb;

	q->u = NULL;
	*room = UINT64_MAX;
	if (!usage_on(u))
		return 0;
	pthread_mutex_lock(&u->lock);
	if (fstat(fd, &st) < 0) {
		int rc = -errno;

		pthread_mutex_unlock(&u->lock);
		return rc;
	}
	q->u = u;
	q->size0 = (uint64_t)st.st_size;
	qb = __atomic_load_n(&u->qbytes, __ATOMIC_RELAXED);
	if (qb)
		*room = u->bytes >= qb ? 0 : qb - u->bytes;
	return 0;
}

void local_quota_end(struct local_qop *q, int fd)
{
	struct local_usage *u = q->u;
	struct stat st;
	uint64_t size;

	if (!u)
		return;
	if (fstat(fd, &st) == 0) {
		size = (uint64_t)st.st_size;
		if (size >= q->size0)
			u->bytes += size - q->size0;
		else
			usage_sub(u, q->size0 - size, 0);
	}
	q->u = NULL;
	pthread_mutex_unlock(&u->lock);
}

int local_quota_inode_take(struct backend_session *s)
{
	struct local_usage *u = s->usage;
	uint64_t qi;
	int rc = 0;

	if (!usage_on(u))
		return 0;
	pthread_mutex_lock(&u->lock);
	qi = __atomic_load_n(&u->qinodes, __ATOMIC_RELAXED);
	if (qi && u->inodes >= qi)
		rc = -EDQUOT;
	else
		u->inodes++;
	pthread_mutex_unlock(&u->lock);
	return rc;
}

void local_quota_inode_give(struct backend_session *s)
{
	struct local_usage *u = s->usage;

	if (!usage_on(u))
		return;
	pthread_mutex_lock(&u->lock);
	usage_sub(u, 0, 1);
	pthread_mutex_unlock(&u->lock);
}

/* Called with u->lock held. */
static struct local_open **open_find(struct local_usage *u, dev_t dev,
				     ino_t ino)
{
	struct local_open **pp;

	pp = &u->open[(ino ^ dev) % QUOTA_OPEN_BUCKETS];
	while (*pp && ((*pp)->dev != dev || (*pp)->ino != ino))
		pp = &(*pp)->next;
	return pp;
}

void local_quota_removed(struct backend_session *s, const struct stat *st)
{
	struct local_usage *u = s->usage;

	if (!usage_on(u))
		return;
	/* Another name still holds the inode. */
	if (!S_ISDIR(st->st_mode) && st->st_nlink > 1)
		return;
	pthread_mutex_lock(&u->lock);
	/* Still open: its space is freed (and uncounted) at the last close. */
	if (!(S_ISREG(st->st_mode) && *open_find(u, st->st_dev, st->st_ino)))
		usage_sub(u, S_ISREG(st->st_mode) ? (uint64_t)st->st_size : 0,
			  1);
	pthread_mutex_unlock(&u->lock);
}

void local_quota_file_open(struct backend_session *s, int fd)
{
	struct local_usage *u = s->usage;
	struct local_open **pp;
	struct stat st;

	if (!usage_on(u) || fstat(fd, &st) < 0)
		return;
	pthread_mutex_lock(&u->lock);
	pp = open_find(u, st.st_dev, st.st_ino);
	if (*pp) {
		(*pp)->n++;
	} else if ((*pp = calloc(1, sizeof(**pp)))) {
		(*pp)->dev = st.st_dev;
		(*pp)->ino = st.st_ino;
		(*pp)->n = 1;
	}
	pthread_mutex_unlock(&u->lock);
}

void local_quota_file_close(struct backend_session *s, int fd)
{
	struct local_usage *u = s ? s->usage : NULL;
	struct local_open **pp, *o;
	struct stat st;

	if (!usage_on(u) || fstat(fd, &st) < 0)
		return;
	pthread_mutex_lock(&u->lock);
	pp = open_find(u, st.st_dev, st.st_ino);
	o = *pp;
	if (o && --o->n == 0) {
		*pp = o->next;
		free(o);
		/* The last close of an unlinked file frees its space. */
		if (st.st_nlink == 0)
			usage_sub(u, (uint64_t)st.st_size, 1);
	}
	pthread_mutex_unlock(&u->lock);
}

int local_quota_statfs(struct backend_session *s, uint64_t frsize,
		       uint64_t *blocks, uint64_t *bfree, uint64_t *files,
		       uint64_t *ffree)
{
	struct local_usage *u = s->usage;
	uint64_t left, qb, qi;
	int rc = 0;

	if (!usage_on(u) || !frsize)
		return 0;
	pthread_mutex_lock(&u->lock);
	qb = __atomic_load_n(&u->qbytes, __ATOMIC_RELAXED);
	qi = __atomic_load_n(&u->qinodes, __ATOMIC_RELAXED);
	if (qb) {
		left = u->bytes >= qb ? 0 : qb - u->bytes;
		*blocks = qb / frsize;
		if (left / frsize < *bfree)
			*bfree = left / frsize;
		rc = 1;
	}
	if (qi) {
		left = u->inodes >= qi ? 0 : qi - u->inodes;
		*files = qi;
		if (left < *ffree)
			*ffree = left;
		rc = 1;
	}
	pthread_mutex_unlock(&u->lock);
	return rc;
}
