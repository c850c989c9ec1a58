/*
 * s3b_cache.c - the s3 backend's metadata cache and coalesced metadata
 * changes.
 *
 * One cache per broker, keyed by full object key (so it spans sessions of
 * the same filesystem and never mixes filesystems).  A positive entry holds
 * the object's ETag, size and s3fs headers; it is trusted for as long as it
 * stays cached, because the broker is the only writer of its prefix, and
 * it is checked against the ETag a listing reports, so a change made by
 * another writer is noticed at the next listing or write (ESTALE).  A
 * negative entry ("no such key") is believed for S3B_NEG_TTL_MS only.
 *
 * Bound: S3B_CACHE_MAX entries, least recently used first out; entries
 * with a pending change, or for files that so far exist only in staging,
 * are never evicted (so the bound can be exceeded by those alone).  An
 * entry is about 200 bytes plus its key, so the cache stays near 20 MiB.
 *
 * chmod, chown, utimens and xattr changes of a file that is not being
 * written only update the entry and mark it dirty; one CopyObject REPLACE
 * carries all of them later (s3b_cache_apply): at FSYNC, RELEASE, FORGET,
 * session close, shutdown, or S3B_META_DELAY_MS after the first change,
 * from the flusher thread.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "s3b.h"

struct s3b_cent {
	struct s3b_cent *hnext, *prev, *next;
	char *key;
	bool negative;
	bool dirty;
	bool local;    /* only staged so far: never evicted */
	bool stub;     /* known to exist (a listing), headers not known yet */
	bool complete; /* a directory whose children all have entries */
	uint32_t nsub; /* complete: how many of them are directories */
	uint64_t stamp_ms;
	uint64_t gen;
	struct s3b_info info; /* info.xattr owned */
	struct s3b_fs *fs;    /* dirty: the filesystem that applies it */
};

static size_t hash_key(const char *key)
{
	uint64_t h = 1469598103934665603ull;

	for (; *key; key++)
		h = (h ^ (unsigned char)*key) * 1099511628211ull;
	return (size_t)(h % S3B_CACHE_BUCKETS);
}

void s3b_info_clear(struct s3b_info *i)
{
	free(i->xattr);
	i->xattr = NULL;
}

int s3b_cache_init(struct backend *b)
{
	b->buckets = calloc(S3B_CACHE_BUCKETS, sizeof(*b->buckets));
	if (!b->buckets)
		return -ENOMEM;
	pthread_mutex_init(&b->cache_lock, NULL);
	pthread_cond_init(&b->flusher_cv, NULL);
	pthread_cond_init(&b->keyop_cv, NULL);
	return 0;
}

static void ent_free(struct s3b_cent *e)
{
	free(e->key);
	free(e->info.xattr);
	free(e);
}

void s3b_cache_cleanup(struct backend *b)
{
	struct s3b_cent *e, *next;

	if (!b->buckets)
		return;
	for (e = b->lru_head; e; e = next) {
		next = e->next;
		ent_free(e);
	}
	free(b->buckets);
	b->buckets = NULL;
	pthread_cond_destroy(&b->flusher_cv);
	pthread_cond_destroy(&b->keyop_cv);
	pthread_mutex_destroy(&b->cache_lock);
}

/* ---- table and LRU (cache_lock held) ------------------------------------ */

static void lru_unlink(struct backend *b, struct s3b_cent *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		b->lru_head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		b->lru_tail = e->prev;
	e->prev = e->next = NULL;
}

static void lru_front(struct backend *b, struct s3b_cent *e)
{
	e->next = b->lru_head;
	e->prev = NULL;
	if (b->lru_head)
		b->lru_head->prev = e;
	b->lru_head = e;
	if (!b->lru_tail)
		b->lru_tail = e;
}

static struct s3b_cent *find(struct backend *b, const char *key)
{
	struct s3b_cent *e = b->buckets[hash_key(key)];

	while (e && strcmp(e->key, key))
		e = e->hnext;
	return e;
}

/* key's directory, "a/b/" for "a/b/c" or "a/b/c/", into out. */
static bool parent_of(const char *key, char *out)
{
	size_t l = strlen(key);

	if (l && key[l - 1] == '/')
		l--;
	while (l && key[l - 1] != '/')
		l--;
	if (!l || l > S3_KEY_MAX)
		return false;
	memcpy(out, key, l);
	out[l] = '\0';
	return true;
}

/* A child of e's directory is no longer known: it is incomplete. */
static void parent_incomplete(struct backend *b, const char *key)
{
	char pk[S3_KEY_MAX + 1];
	struct s3b_cent *p;

	b->cache_forgets++;
	if (parent_of(key, pk) && (p = find(b, pk)))
		p->complete = false;
}

static void remove_ent(struct backend *b, struct s3b_cent *e)
{
	struct s3b_cent **pp = &b->buckets[hash_key(e->key)];

	while (*pp && *pp != e)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = e->hnext;
	lru_unlink(b, e);
	b->ncache--;
	ent_free(e);
}

/* Out of the cache for good: a positive entry leaves its parent
 * incomplete, as a lookup there could no longer tell it exists. */
static void forget_ent(struct backend *b, struct s3b_cent *e)
{
	if (!e->negative)
		parent_incomplete(b, e->key);
	remove_ent(b, e);
}

static void evict(struct backend *b)
{
	struct s3b_cent *e = b->lru_tail, *prev;
	int scan = 0;

	while (b->ncache > S3B_CACHE_MAX && e && scan++ < 64) {
		prev = e->prev;
		if (!e->dirty && !e->local)
			forget_ent(b, e);
		e = prev;
	}
}

static struct s3b_cent *get_or_add(struct backend *b, const char *key)
{
	struct s3b_cent *e = find(b, key);
	size_t h;

	if (e) {
		lru_unlink(b, e);
		lru_front(b, e);
		return e;
	}
	e = calloc(1, sizeof(*e));
	if (!e || !(e->key = strdup(key))) {
		free(e);
		return NULL;
	}
	e->info.m.uid = e->info.m.gid = S3B_ID_NONE;
	h = hash_key(key);
	e->hnext = b->buckets[h];
	b->buckets[h] = e;
	lru_front(b, e);
	b->ncache++;
	evict(b);
	return e;
}

/* ---- lookups and updates ------------------------------------------------ */

int s3b_cache_get(struct backend *b, const char *key, const char *etag,
		  struct s3b_info *out)
{
	struct s3b_cent *e;
	int rc = 0;

	pthread_mutex_lock(&b->cache_lock);
	e = find(b, key);
	if (!e)
		goto out;
	if (e->negative) {
		if (s3b_clock_ms() - e->stamp_ms < S3B_NEG_TTL_MS)
			rc = -ENOENT;
		else
			remove_ent(b, e);
		goto out;
	}
	if (e->stub)
		goto out;
	if (etag && *etag && !e->local && strcmp(etag, e->info.etag))
		goto out;
	if (out) {
		*out = e->info;
		out->dirty = e->dirty;
		out->gen = e->gen;
		out->xattr = e->info.xattr ? strdup(e->info.xattr) : NULL;
		if (e->info.xattr && !out->xattr)
			goto out; /* no memory: treat as unknown */
	}
	lru_unlink(b, e);
	lru_front(b, e);
	rc = 1;
out:
	pthread_mutex_unlock(&b->cache_lock);
	return rc;
}

void s3b_cache_put(struct backend *b, const char *key,
		   const struct s3b_info *in)
{
	struct s3b_cent *e;

	pthread_mutex_lock(&b->cache_lock);
	e = get_or_add(b, key);
	if (!e)
		goto out;
	e->negative = false;
	e->stub = false;
	e->local = !in->etag[0];
	snprintf(e->info.etag, sizeof(e->info.etag), "%s", in->etag);
	e->info.size = in->size;
	e->info.lastmod = in->lastmod;
	/* A pending change wins over what S3 still has. */
	if (!e->dirty) {
		e->info.m = in->m;
		free(e->info.xattr);
		e->info.xattr = in->xattr ? strdup(in->xattr) : NULL;
	}
out:
	pthread_mutex_unlock(&b->cache_lock);
}

void s3b_cache_neg(struct backend *b, const char *key)
{
	struct s3b_cent *e;

	pthread_mutex_lock(&b->cache_lock);
	e = get_or_add(b, key);
	if (e) {
		e->negative = true;
		e->dirty = e->local = e->stub = e->complete = false;
		e->stamp_ms = s3b_clock_ms();
		free(e->info.xattr);
		memset(&e->info, 0, sizeof(e->info));
	}
	pthread_mutex_unlock(&b->cache_lock);
}

void s3b_cache_drop(struct backend *b, const char *key)
{
	struct s3b_cent *e;

	pthread_mutex_lock(&b->cache_lock);
	e = find(b, key);
	if (e)
		forget_ent(b, e);
	pthread_mutex_unlock(&b->cache_lock);
}

int s3b_cache_set_meta(struct backend *b, const char *key,
		       const struct s3b_meta *m, const char *xattr,
		       struct s3b_fs *fs, bool dirty)
{
	struct s3b_cent *e;
	char *x = NULL;
	int rc = 0;

	if (xattr && !(x = strdup(xattr)))
		return -ENOMEM;
	pthread_mutex_lock(&b->cache_lock);
	e = find(b, key);
	if (!e || e->negative || e->stub) {
		rc = -ENOENT;
		goto out;
	}
	e->info.m = *m;
	free(e->info.xattr);
	e->info.xattr = x;
	x = NULL;
	e->gen++;
	if (fs)
		e->fs = fs; /* also for s3b_cache_uploaded's later change */
	if (dirty && !e->local) {
		if (!e->dirty)
			e->stamp_ms = s3b_clock_ms();
		e->dirty = true;
		pthread_cond_signal(&b->flusher_cv);
	}
out:
	pthread_mutex_unlock(&b->cache_lock);
	free(x);
	return rc;
}

void s3b_cache_uploaded(struct backend *b, const char *key, const char *etag,
			uint64_t size, uint64_t gen, struct s3b_fs *fs)
{
	struct s3b_cent *e;

	pthread_mutex_lock(&b->cache_lock);
	e = get_or_add(b, key);
	if (e) {
		/* changed while the upload was on its way: still to apply */
		bool later = !e->negative && e->gen != gen && (fs || e->fs);

		e->negative = e->local = e->stub = false;
		e->dirty = later;
		if (later) {
			e->fs = fs ? fs : e->fs;
			e->stamp_ms = s3b_clock_ms();
			pthread_cond_signal(&b->flusher_cv);
		}
		snprintf(e->info.etag, sizeof(e->info.etag), "%s",
			 etag ? etag : "");
		e->info.size = size;
		e->info.lastmod = (int64_t)time(NULL);
	}
	pthread_mutex_unlock(&b->cache_lock);
}

void s3b_cache_move(struct backend *b, const char *from, const char *to,
		    const char *etag)
{
	struct s3b_cent *e, *old;
	char *nk = strdup(to);
	size_t h;

	pthread_mutex_lock(&b->cache_lock);
	old = find(b, to);
	if (old)
		remove_ent(b, old);
	e = find(b, from);
	if (!e || !nk) {
		pthread_mutex_unlock(&b->cache_lock);
		free(nk);
		return;
	}
	lru_unlink(b, e);
	b->ncache--;
	{
		struct s3b_cent **pp = &b->buckets[hash_key(e->key)];

		while (*pp && *pp != e)
			pp = &(*pp)->hnext;
		if (*pp)
			*pp = e->hnext;
	}
	free(e->key);
	e->key = nk;
	e->dirty = false; /* the copy carried the metadata */
	if (etag)
		snprintf(e->info.etag, sizeof(e->info.etag), "%s", etag);
	h = hash_key(nk);
	e->hnext = b->buckets[h];
	b->buckets[h] = e;
	lru_front(b, e);
	b->ncache++;
	pthread_mutex_unlock(&b->cache_lock);
	s3b_cache_neg(b, from);
}

/* ---- directories: completeness and subdirectory counts ------------------ */

void s3b_cache_stub(struct backend *b, const char *key, const char *etag,
		    uint64_t size, int64_t lastmod)
{
	struct s3b_cent *e;

	pthread_mutex_lock(&b->cache_lock);
	if (!find(b, key) && (e = get_or_add(b, key))) {
		e->stub = true;
		snprintf(e->info.etag, sizeof(e->info.etag), "%s",
			 etag ? etag : "-");
		e->info.size = size;
		e->info.lastmod = lastmod;
	}
	pthread_mutex_unlock(&b->cache_lock);
}

uint64_t s3b_cache_forgets(struct backend *b)
{
	uint64_t n;

	pthread_mutex_lock(&b->cache_lock);
	n = b->cache_forgets;
	pthread_mutex_unlock(&b->cache_lock);
	return n;
}

void s3b_cache_dir_complete(struct backend *b, const char *dkey, uint32_t nsub,
			    uint64_t forgets)
{
	struct s3b_cent *e;

	pthread_mutex_lock(&b->cache_lock);
	e = find(b, dkey);
	if (!e || e->negative || b->cache_forgets != forgets)
		goto out;
	e->complete = true;
	e->nsub = nsub;
out:
	pthread_mutex_unlock(&b->cache_lock);
}

int s3b_cache_dir_count(struct backend *b, const char *dkey, uint32_t *nsub)
{
	struct s3b_cent *e;
	int rc = 0;

	pthread_mutex_lock(&b->cache_lock);
	e = find(b, dkey);
	if (e && !e->negative && e->complete) {
		*nsub = e->nsub;
		rc = 1;
	}
	pthread_mutex_unlock(&b->cache_lock);
	return rc;
}

void s3b_cache_dir_adjust(struct backend *b, const char *key, int delta)
{
	char pk[S3_KEY_MAX + 1];
	struct s3b_cent *e;

	if (!parent_of(key, pk))
		return;
	pthread_mutex_lock(&b->cache_lock);
	e = find(b, pk);
	if (e && e->complete) {
		if (delta < 0 && e->nsub < (uint32_t)-delta)
			e->complete = false; /* cannot be: count again */
		else
			e->nsub += (uint32_t)delta;
	}
	pthread_mutex_unlock(&b->cache_lock);
}

static bool known(struct backend *b, const char *key)
{
	struct s3b_cent *e = find(b, key);

	return e && !e->negative;
}

bool s3b_cache_absent(struct backend *b, const char *key)
{
	char pk[S3_KEY_MAX + 1], dk[S3_KEY_MAX + 2];
	struct s3b_cent *p;
	bool rc = false;
	size_t l = strlen(key);

	if (!l || key[l - 1] == '/' || l > S3_KEY_MAX || !parent_of(key, pk))
		return false;
	memcpy(dk, key, l);
	dk[l] = '/';
	dk[l + 1] = '\0';
	pthread_mutex_lock(&b->cache_lock);
	p = find(b, pk);
	if (p && !p->negative && p->complete)
		rc = !known(b, key) && !known(b, dk);
	pthread_mutex_unlock(&b->cache_lock);
	return rc;
}

void s3b_cache_below(struct backend *b, const char *prefix, bool drop)
{
	size_t pl = strlen(prefix);
	struct s3b_cent *e, *next;

	pthread_mutex_lock(&b->cache_lock);
	for (e = b->lru_head; e; e = next) {
		next = e->next;
		if (strncmp(e->key, prefix, pl))
			continue;
		if (drop && !e->dirty && !e->local)
			remove_ent(b, e);
		else
			e->complete = false;
	}
	pthread_mutex_unlock(&b->cache_lock);
}

/* ---- writes of one key in flight ---------------------------------------- */

/*
 * S3 orders nothing between two requests on one key that overlap: a
 * CopyObject onto itself that reads the object before a DELETE lands and
 * writes after it brings the deleted object back, and one around an
 * upload can put the old bytes back.  So a metadata copy never overlaps
 * a removal or an upload of the same key: each registers here and waits
 * for the other.  Few are in flight at once, so a list will do.
 */
struct s3b_keyop {
	struct s3b_keyop *next;
	const char *key; /* valid while registered */
	bool fence;	 /* s3b_cache_fence's (key and op on the heap) */
};

static struct s3b_keyop *keyop_find(struct backend *b, const char *key)
{
	struct s3b_keyop *o = b->keyops;

	while (o && strcmp(o->key, key))
		o = o->next;
	return o;
}

/* Wait until no write of o->key is in flight, then register o. */
static void keyop_begin(struct backend *b, struct s3b_keyop *o)
{
	while (keyop_find(b, o->key))
		pthread_cond_wait(&b->keyop_cv, &b->cache_lock);
	o->next = b->keyops;
	b->keyops = o;
}

static void keyop_end(struct backend *b, struct s3b_keyop *o)
{
	struct s3b_keyop **pp = &b->keyops;

	while (*pp && *pp != o)
		pp = &(*pp)->next;
	if (*pp)
		*pp = o->next;
	pthread_cond_broadcast(&b->keyop_cv);
}

int s3b_cache_fence(struct backend *b, const char *key)
{
	struct s3b_keyop *o = malloc(sizeof(*o));

	if (!o)
		return -ENOMEM;
	o->key = strdup(key);
	if (!o->key) {
		free(o);
		return -ENOMEM;
	}
	o->fence = true;
	pthread_mutex_lock(&b->cache_lock);
	keyop_begin(b, o);
	pthread_mutex_unlock(&b->cache_lock);
	return 0;
}

void s3b_cache_unfence(struct backend *b, const char *key)
{
	struct s3b_keyop *o;

	pthread_mutex_lock(&b->cache_lock);
	for (o = b->keyops; o; o = o->next)
		if (o->fence && !strcmp(o->key, key))
			break;
	if (o)
		keyop_end(b, o);
	pthread_mutex_unlock(&b->cache_lock);
	if (o) {
		free((char *)o->key);
		free(o);
	}
}

/* ---- applying coalesced changes ----------------------------------------- */

static int apply_copy(struct backend *b, struct s3b_fs *fs, const char *key,
		      const struct s3b_meta *m, const char *xattr,
		      const char *etag, bool dir, char *newetag)
{
	struct s3_kv kv[S3B_KV_MAX];
	char buf[S3B_KV_BUF];
	struct s3_copy_opts o = {
	    .directive = S3_META_REPLACE,
	    .meta = kv,
	    .nmeta = s3b_meta_to_kv(m, xattr, kv, buf),
	    .content_type = dir ? S3B_DIR_CTYPE : S3B_FILE_CTYPE,
	    .src_if_match = etag[0] ? etag : NULL,
	};
	int rc = s3_http_copy_object(fs->http, key, key, &o, newetag);

	if (rc == -EKEYEXPIRED && !s3b_fs_cred(b, fs, true))
		rc = s3_http_copy_object(fs->http, key, key, &o, newetag);
	if (!rc)
		s3_etag_quote(newetag);
	return rc;
}

/*
 * Apply key's pending change.  Another write of key in flight: wait for
 * it and look again (wait), or leave the change for a later round.
 */
static int apply_key(struct backend *b, struct s3b_fs *fs, const char *key,
		     bool wait)
{
	char etag[S3_ETAG_MAX], newetag[S3_ETAG_MAX] = "";
	struct s3b_keyop op = {.fence = false};
	struct s3b_meta m;
	struct s3b_cent *e;
	char *xattr = NULL;
	uint64_t gen;
	size_t klen = strlen(key);
	int rc;

	pthread_mutex_lock(&b->cache_lock);
	/* After a removal the entry is negative, after an upload or another
	 * copy clean (unless changed since): then nothing is left to do. */
	while (wait && keyop_find(b, key))
		pthread_cond_wait(&b->keyop_cv, &b->cache_lock);
	e = find(b, key);
	if (keyop_find(b, key) || !e || !e->dirty || e->negative) {
		pthread_mutex_unlock(&b->cache_lock);
		return 0;
	}
	op.key = key;
	keyop_begin(b, &op);
	m = e->info.m;
	gen = e->gen;
	snprintf(etag, sizeof(etag), "%s", e->info.etag);
	if (e->info.xattr)
		xattr = strdup(e->info.xattr);
	b->copies++;
	pthread_mutex_unlock(&b->cache_lock);

	rc = apply_copy(b, fs, key, &m, xattr, etag,
			klen && key[klen - 1] == '/', newetag);
	pthread_mutex_lock(&b->cache_lock);
	e = find(b, key);
	if (e && !e->negative && e->dirty) {
		if (!rc && newetag[0])
			snprintf(e->info.etag, sizeof(e->info.etag), "%s",
				 newetag);
		/* ESTALE: someone else changed it; ENOENT: it is gone.
		 * Either way our change has nothing left to apply to. */
		if (!rc || rc == -ESTALE || rc == -ENOENT)
			e->dirty = e->gen != gen;
		if (rc == -ESTALE)
			forget_ent(b, e);
	}
	keyop_end(b, &op);
	pthread_mutex_unlock(&b->cache_lock);
	if (rc)
		log_warn("s3: metadata of %s not applied: %s", key,
			 strerror(-rc));
	free(xattr);
	return rc == -ENOENT ? 0 : rc;
}

int s3b_cache_apply(struct backend *b, struct s3b_fs *fs, const char *key)
{
	return apply_key(b, fs, key, true);
}

struct pending {
	char *key;
	struct s3b_fs *fs;
};

int s3b_cache_apply_all(struct backend *b, struct s3b_fs *fs, uint64_t age_ms)
{
	struct pending *p = NULL;
	size_t n = 0, cap = 0;
	uint64_t now = s3b_clock_ms();
	struct s3b_cent *e;
	int failed = 0;

	pthread_mutex_lock(&b->cache_lock);
	for (e = b->lru_head; e; e = e->next) {
		if (!e->dirty || (fs && e->fs != fs) ||
		    now - e->stamp_ms < age_ms)
			continue;
		if (n == cap) {
			struct pending *np;

			cap = cap ? cap * 2 : 16;
			np = realloc(p, cap * sizeof(*p));
			if (!np)
				break;
			p = np;
		}
		p[n].key = strdup(e->key);
		p[n].fs = e->fs;
		if (p[n].key)
			n++;
	}
	pthread_mutex_unlock(&b->cache_lock);
	for (size_t i = 0; i < n; i++) {
		pthread_rwlock_rdlock(&p[i].fs->ns);
		/* The flusher does not wait behind an upload: it carries
		 * the change, or the next round applies it. */
		if (apply_key(b, p[i].fs, p[i].key, age_ms == 0))
			failed++;
		pthread_rwlock_unlock(&p[i].fs->ns);
		free(p[i].key);
	}
	free(p);
	return failed;
}

static void *flusher_main(void *arg)
{
	struct backend *b = arg;
	struct timespec ts;

	pthread_mutex_lock(&b->cache_lock);
	while (!b->flusher_stop) {
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 250 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&b->flusher_cv, &b->cache_lock, &ts);
		if (b->flusher_stop)
			break;
		pthread_mutex_unlock(&b->cache_lock);
		s3b_cache_apply_all(b, NULL, S3B_META_DELAY_MS);
		pthread_mutex_lock(&b->cache_lock);
	}
	pthread_mutex_unlock(&b->cache_lock);
	return NULL;
}

int s3b_cache_start_flusher(struct backend *b)
{
	int rc = pthread_create(&b->flusher, NULL, flusher_main, b);

	if (rc)
		return -rc;
	b->flusher_started = true;
	return 0;
}

void s3b_cache_stop_flusher(struct backend *b)
{
	if (!b->flusher_started)
		return;
	pthread_mutex_lock(&b->cache_lock);
	b->flusher_stop = true;
	pthread_cond_signal(&b->flusher_cv);
	pthread_mutex_unlock(&b->cache_lock);
	pthread_join(b->flusher, NULL);
	b->flusher_started = false;
}
