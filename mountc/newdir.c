/*
 * newdir.c - directories this mount has just made (see newdir.h).
 */
#include "newdir.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct newdir {
	uint64_t dir;	   /* node id; 0: slot free */
	uint64_t parent;   /* where it was made, and under which name */
	uint64_t namehash; /* (so RMDIR of that name can drop it) */
	uint64_t born_ns;  /* MKDIR reply; trusted until + ttl */
	uint64_t *set;	   /* open addressing, 0 = empty */
	uint32_t n, cap;   /* names held; slots (a power of two) */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct newdir dirs[NEWDIR_MAX]; /* lock */
static uint64_t ttl;		       /* lock; 0: off */

static uint64_t name_hash(const char *name)
{
	uint64_t h = 1469598103934665603ull;

	for (; *name; name++)
		h = (h ^ (unsigned char)*name) * 1099511628211ull;
	return h ? h : 1;
}

static void slot_free(struct newdir *d)
{
	free(d->set);
	memset(d, 0, sizeof(*d));
}

/* The live slot of dir, or NULL; an expired one is freed on the way. */
static struct newdir *find(uint64_t dir, uint64_t now_ns)
{
	for (unsigned i = 0; i < NEWDIR_MAX; i++) {
		struct newdir *d = &dirs[i];

		if (d->dir != dir)
			continue;
		if (now_ns - d->born_ns >= ttl) {
			slot_free(d);
			return NULL;
		}
		return d;
	}
	return NULL;
}

static bool set_has(const struct newdir *d, uint64_t h)
{
	for (uint32_t i = (uint32_t)h & (d->cap - 1);;
	     i = (i + 1) & (d->cap - 1)) {
		if (d->set[i] == h)
			return true;
		if (!d->set[i])
			return false;
	}
}

static void set_put(uint64_t *set, uint32_t cap, uint64_t h)
{
	uint32_t i = (uint32_t)h & (cap - 1);

	while (set[i] && set[i] != h)
		i = (i + 1) & (cap - 1);
	set[i] = h;
}

/* Add h to d's names; false when d cannot hold it (then d must go). */
static bool set_add(struct newdir *d, uint64_t h)
{
	if (set_has(d, h))
		return true;
	if (d->n + 1 > NEWDIR_NAMES)
		return false;
	if ((d->n + 1) * 2 > d->cap) {
		uint32_t cap = d->cap * 2;
		uint64_t *s = calloc(cap, sizeof(*s));

		if (!s)
			return false;
		for (uint32_t i = 0; i < d->cap; i++)
			if (d->set[i])
				set_put(s, cap, d->set[i]);
		free(d->set);
		d->set = s;
		d->cap = cap;
	}
	set_put(d->set, d->cap, h);
	d->n++;
	return true;
}

void newdir_init(uint64_t ttl_ns)
{
	pthread_mutex_lock(&lock);
	ttl = ttl_ns;
	pthread_mutex_unlock(&lock);
	newdir_reset();
}

void newdir_made(uint64_t parent, const char *name, uint64_t dir,
		 uint64_t now_ns)
{
	struct newdir *d = NULL;

	pthread_mutex_lock(&lock);
	if (!ttl || !dir)
		goto out;
	/* The same node id again (the broker reused it): start afresh. */
	for (unsigned i = 0; i < NEWDIR_MAX; i++)
		if (dirs[i].dir == dir)
			slot_free(&dirs[i]);
	for (unsigned i = 0; i < NEWDIR_MAX; i++) {
		struct newdir *c = &dirs[i];

		if (!c->dir || now_ns - c->born_ns >= ttl) {
			d = c;
			break;
		}
		if (!d || c->born_ns < d->born_ns)
			d = c; /* all live: the oldest gives way */
	}
	slot_free(d);
	d->set = calloc(64, sizeof(*d->set));
	if (!d->set)
		goto out;
	d->cap = 64;
	d->dir = dir;
	d->parent = parent;
	d->namehash = name_hash(name);
	d->born_ns = now_ns;
out:
	pthread_mutex_unlock(&lock);
}

void newdir_adding(uint64_t dir, const char *name)
{
	pthread_mutex_lock(&lock);
	for (unsigned i = 0; i < NEWDIR_MAX; i++)
		if (dirs[i].dir == dir && !set_add(&dirs[i], name_hash(name)))
			slot_free(&dirs[i]);
	pthread_mutex_unlock(&lock);
}

int newdir_absent(uint64_t dir, const char *name, uint64_t now_ns)
{
	struct newdir *d;
	int absent = 0;

	pthread_mutex_lock(&lock);
	if (ttl && (d = find(dir, now_ns)))
		absent = !set_has(d, name_hash(name));
	pthread_mutex_unlock(&lock);
	return absent;
}

void newdir_removed(uint64_t parent, const char *name)
{
	uint64_t h = name_hash(name);

	pthread_mutex_lock(&lock);
	for (unsigned i = 0; i < NEWDIR_MAX; i++)
		if (dirs[i].dir && dirs[i].parent == parent &&
		    dirs[i].namehash == h)
			slot_free(&dirs[i]);
	pthread_mutex_unlock(&lock);
}

void newdir_forget(uint64_t dir)
{
	pthread_mutex_lock(&lock);
	for (unsigned i = 0; i < NEWDIR_MAX; i++)
		if (dirs[i].dir == dir)
			slot_free(&dirs[i]);
	pthread_mutex_unlock(&lock);
}

void newdir_reset(void)
{
	pthread_mutex_lock(&lock);
	for (unsigned i = 0; i < NEWDIR_MAX; i++)
		slot_free(&dirs[i]);
	pthread_mutex_unlock(&lock);
}
