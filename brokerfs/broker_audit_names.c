/*
 * broker_audit_names.c - the names a session's client knows its nodes by,
 * so that audit events can say "/dir/file" rather than "node 4711".
 *
 * The protocol addresses files by broker-issued node ids; a client learns
 * an id from a reply that names it (LOOKUP, CREATE, MKDIR, MKNOD, SYMLINK,
 * LINK, READDIRPLUS entries) and gives it back with FORGET, exactly like
 * FUSE's lookup counts.  This table mirrors that: id -> (parent id, name)
 * with the client's lookup count, plus an index by (parent, name) so that
 * RENAME and UNLINK can move or detach the node that held a name.  A path
 * is rebuilt by walking parents up to the root (id 1), so renaming a
 * directory renames everything below it for free.  The table works the
 * same for every backend and costs the backend nothing.
 *
 * What it cannot know it says: a node never seen (the table was full, or
 * a reply got lost) appears as "#ID", so "#12/a" is "a" in node 12.  An
 * unlinked node keeps its last name.  Bytes of a name that are not UTF-8
 * are written as \xNN (OCSF strings are UTF-8).  The table is bounded;
 * past AUDIT_NAMES_MAX nodes new ones are simply not named.
 *
 * Requests of one session run on several workers at once: one mutex.
 */
#include "broker_audit.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AUDIT_NAMES_MAX (1u << 20) /* nodes named per session */
#define AUDIT_NAMES_DEPTH 2048u	   /* parents walked for one path */
#define AUDIT_ROOT_ID 1u

struct an_node {
	uint64_t id, parent, nlookup;
	char *name;  /* the last name the client learned it by */
	int indexed; /* reachable through by_key under (parent, name) */
	struct an_node *id_next, *key_next;
};

struct audit_names {
	pthread_mutex_t lock;
	struct an_node **by_id, **by_key; /* lock: nbuckets chains each */
	size_t nbuckets, n;		  /* lock */
};

static size_t hash_id(uint64_t id)
{
	id ^= id >> 33;
	id *= UINT64_C(0xff51afd7ed558ccd);
	id ^= id >> 33;
	return (size_t)id;
}

static size_t hash_key(uint64_t parent, const char *name)
{
	uint64_t h = UINT64_C(1469598103934665603) ^ hash_id(parent);

	while (*name) {
		h ^= (unsigned char)*name++;
		h *= UINT64_C(1099511628211);
	}
	return (size_t)h;
}

struct audit_names *audit_names_new(void)
{
	struct audit_names *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->nbuckets = 64;
	t->by_id = calloc(t->nbuckets, sizeof(*t->by_id));
	t->by_key = calloc(t->nbuckets, sizeof(*t->by_key));
	if (!t->by_id || !t->by_key) {
		free(t->by_id);
		free(t->by_key);
		free(t);
		return NULL;
	}
	pthread_mutex_init(&t->lock, NULL);
	return t;
}

void audit_names_free(struct audit_names *t)
{
	struct an_node *n, *next;
	size_t i;

	if (!t)
		return;
	for (i = 0; i < t->nbuckets; i++) {
		for (n = t->by_id[i]; n; n = next) {
			next = n->id_next;
			free(n->name);
			free(n);
		}
	}
	free(t->by_id);
	free(t->by_key);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

static struct an_node *find_id(struct audit_names *t, uint64_t id)
{
	struct an_node *n = t->by_id[hash_id(id) & (t->nbuckets - 1)];

	while (n && n->id != id)
		n = n->id_next;
	return n;
}

static struct an_node *find_key(struct audit_names *t, uint64_t parent,
				const char *name)
{
	struct an_node *n =
	    t->by_key[hash_key(parent, name) & (t->nbuckets - 1)];

	while (n && (n->parent != parent || strcmp(n->name, name) != 0))
		n = n->key_next;
	return n;
}

static void key_remove(struct audit_names *t, struct an_node *n)
{
	struct an_node **pp;

	if (!n->indexed)
		return;
	pp = &t->by_key[hash_key(n->parent, n->name) & (t->nbuckets - 1)];
	while (*pp && *pp != n)
		pp = &(*pp)->key_next;
	if (*pp)
		*pp = n->key_next;
	n->key_next = NULL;
	n->indexed = 0;
}

/* Index n under its name, taking the name away from whoever held it. */
static void key_insert(struct audit_names *t, struct an_node *n)
{
	struct an_node *old = find_key(t, n->parent, n->name);
	size_t b;

	if (old == n)
		return;
	if (old)
		key_remove(t, old);
	b = hash_key(n->parent, n->name) & (t->nbuckets - 1);
	n->key_next = t->by_key[b];
	t->by_key[b] = n;
	n->indexed = 1;
}

static void id_remove(struct audit_names *t, struct an_node *n)
{
	struct an_node **pp = &t->by_id[hash_id(n->id) & (t->nbuckets - 1)];

	while (*pp && *pp != n)
		pp = &(*pp)->id_next;
	if (*pp)
		*pp = n->id_next;
}

/* Double the buckets; on allocation failure chains just get longer. */
static void grow(struct audit_names *t)
{
	size_t nb = t->nbuckets * 2, i, b;
	struct an_node **id = calloc(nb, sizeof(*id));
	struct an_node **key = calloc(nb, sizeof(*key));
	struct an_node *n, *next;

	if (!id || !key) {
		free(id);
		free(key);
		return;
	}
	for (i = 0; i < t->nbuckets; i++) {
		for (n = t->by_id[i]; n; n = next) {
			next = n->id_next;
			b = hash_id(n->id) & (nb - 1);
			n->id_next = id[b];
			id[b] = n;
			n->key_next = NULL;
			if (n->indexed) {
				b = hash_key(n->parent, n->name) & (nb - 1);
				n->key_next = key[b];
				key[b] = n;
			}
		}
	}
	free(t->by_id);
	free(t->by_key);
	t->by_id = id;
	t->by_key = key;
	t->nbuckets = nb;
}

/* Give n the name parent/name and index it; keeps the old one on ENOMEM. */
static void rename_node(struct audit_names *t, struct an_node *n,
			uint64_t parent, const char *name)
{
	char *copy = strdup(name);

	key_remove(t, n);
	if (!copy)
		return;
	free(n->name);
	n->name = copy;
	n->parent = parent;
	key_insert(t, n);
}

void audit_names_learn(struct audit_names *t, uint64_t parent, const char *name,
		       uint64_t id)
{
	struct an_node *n;

	if (id == AUDIT_ROOT_ID || !id || !name || !*name ||
	    strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return;
	pthread_mutex_lock(&t->lock);
	n = find_id(t, id);
	if (n) {
		n->nlookup++;
		if (n->parent != parent || strcmp(n->name, name) != 0)
			rename_node(t, n, parent, name);
		else
			key_insert(t, n);
		goto out;
	}
	if (t->n >= AUDIT_NAMES_MAX)
		goto out;
	n = calloc(1, sizeof(*n));
	if (!n || !(n->name = strdup(name))) {
		free(n);
		goto out;
	}
	n->id = id;
	n->parent = parent;
	n->nlookup = 1;
	if (t->n >= 2 * t->nbuckets)
		grow(t);
	n->id_next = t->by_id[hash_id(id) & (t->nbuckets - 1)];
	t->by_id[hash_id(id) & (t->nbuckets - 1)] = n;
	t->n++;
	key_insert(t, n);
out:
	pthread_mutex_unlock(&t->lock);
}

void audit_names_forget(struct audit_names *t, uint64_t id, uint64_t count)
{
	struct an_node *n;

	pthread_mutex_lock(&t->lock);
	n = find_id(t, id);
	if (n && n->nlookup > count) {
		n->nlookup -= count;
	} else if (n) {
		key_remove(t, n);
		id_remove(t, n);
		t->n--;
		free(n->name);
		free(n);
	}
	pthread_mutex_unlock(&t->lock);
}

void audit_names_unlink(struct audit_names *t, uint64_t parent,
			const char *name)
{
	struct an_node *n;

	pthread_mutex_lock(&t->lock);
	n = find_key(t, parent, name);
	if (n)
		key_remove(t, n);
	pthread_mutex_unlock(&t->lock);
}

void audit_names_rename(struct audit_names *t, uint64_t p1, const char *n1,
			uint64_t p2, const char *n2, int exchange)
{
	struct an_node *a, *b;

	pthread_mutex_lock(&t->lock);
	a = find_key(t, p1, n1);
	b = find_key(t, p2, n2);
	if (exchange) {
		if (a)
			key_remove(t, a);
		if (b)
			rename_node(t, b, p1, n1);
		if (a)
			rename_node(t, a, p2, n2);
	} else if (a) {
		rename_node(t, a, p2, n2); /* a replaced target loses it */
	} else if (b) {
		key_remove(t, b);
	}
	pthread_mutex_unlock(&t->lock);
}

size_t audit_names_count(struct audit_names *t)
{
	size_t n;

	pthread_mutex_lock(&t->lock);
	n = t->n;
	pthread_mutex_unlock(&t->lock);
	return n;
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if it is not. */
static size_t utf8_len(const unsigned char *s)
{
	size_t n, i;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4;
	else
		return 0;
	for (i = 1; i < n; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	/* Overlong forms, surrogates and code points past U+10FFFF. */
	if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] > 0x9f) ||
	    (s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] > 0x8f))
		return 0;
	return n;
}

/*
 * Put "/name" (escaped) before pos in buf, keeping floor bytes free in
 * front; -1 when it does not fit.
 */
static int prepend(char *buf, size_t *pos, size_t floor, const char *name)
{
	char tmp[4 * 256 + 2];
	const unsigned char *s = (const unsigned char *)name;
	size_t len = 0, k;

	tmp[len++] = '/';
	while (*s && len < sizeof(tmp) - 5) {
		k = utf8_len(s);
		if (k) {
			memcpy(tmp + len, s, k);
			len += k;
			s += k;
		} else {
			len += (size_t)snprintf(tmp + len, 5, "\\x%02x", *s++);
		}
	}
	if (len + floor > *pos)
		return -1;
	*pos -= len;
	memcpy(buf + *pos, tmp, len);
	return 0;
}

/* The path of id, built backwards in buf[0..size); returns its start. */
static const char *build(struct audit_names *t, uint64_t id, char *buf,
			 size_t size)
{
	size_t pos = size - 1, depth = 0;
	struct an_node *n;
	char num[24];

	buf[pos] = '\0';
	while (id != AUDIT_ROOT_ID && depth++ < AUDIT_NAMES_DEPTH) {
		n = find_id(t, id);
		if (!n) {
			snprintf(num, sizeof(num), "#%llu",
				 (unsigned long long)id);
			if (strlen(num) <= pos) {
				pos -= strlen(num);
				memcpy(buf + pos, num, strlen(num));
				return buf + pos;
			}
			break;
		}
		if (prepend(buf, &pos, 3, n->name) < 0) /* room for "..." */
			break;
		id = n->parent;
	}
	if (id != AUDIT_ROOT_ID && pos >= 3) {
		/* Too deep or too long: the tail is what matters. */
		pos -= 3;
		memcpy(buf + pos, "...", 3);
	}
	if (buf[pos] == '\0')
		buf[--pos] = '/';
	return buf + pos;
}

void audit_names_path(struct audit_names *t, uint64_t id, char *buf,
		      size_t size)
{
	char tmp[8192];
	const char *p;

	pthread_mutex_lock(&t->lock);
	p = build(t, id, tmp, sizeof(tmp));
	pthread_mutex_unlock(&t->lock);
	snprintf(buf, size, "%s", p);
}

void audit_names_child(struct audit_names *t, uint64_t parent, const char *name,
		       char *buf, size_t size)
{
	char tmp[8192];
	const char *p;
	size_t pos = sizeof(tmp) - 1;

	pthread_mutex_lock(&t->lock);
	p = build(t, parent, tmp, sizeof(tmp) - 1100);
	pthread_mutex_unlock(&t->lock);
	/* The child's name goes after the parent's path. */
	tmp[pos] = '\0';
	if (prepend(tmp, &pos, 0, name ? name : "") < 0)
		pos = sizeof(tmp) - 1;
	snprintf(buf, size, "%s%s", strcmp(p, "/") == 0 ? "" : p, tmp + pos);
}
