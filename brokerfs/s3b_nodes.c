/*
 * s3b_nodes.c - the s3 backend's node table, object keys and open-file
 * table.
 *
 * A node is a path below the filesystem root and a type; S3 has no inodes,
 * so the path is the identity, and one path has at most one live node
 * (indexed by nodeid and by path).  A rename rewrites the paths of the node
 * and, for a directory, of every node below it.  nodeids come from a
 * counter and are never reused in a session.  Everything here is under the
 * session lock; a node is freed once the guest has forgotten it and no
 * worker or open file holds it.
 *
 * Keys are built only here: <prefix>/<fsid>/ + path [+ "/" for a
 * directory], from names that passed s3b_name_check, and never longer than
 * S3_KEY_MAX.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"
#include "s3b.h"

#define NODES_MIN_BUCKETS 1024u

static size_t hash_id(uint64_t id, size_t nb)
{
	return (size_t)((id * 0x9e3779b97f4a7c15ull) >> 17) & (nb - 1);
}

static size_t hash_path(const char *p, size_t nb)
{
	uint64_t h = 1469598103934665603ull;

	for (; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ull;
	return (size_t)(h ^ (h >> 29)) & (nb - 1);
}

int s3b_name_check(const char *name)
{
	size_t len;

	if (!name || !name[0] || !strcmp(name, ".") || !strcmp(name, ".."))
		return -EINVAL;
	len = strnlen(name, PROTO_MAX_NAME + 1);
	if (len > PROTO_MAX_NAME)
		return -ENAMETOOLONG;
	if (memchr(name, '/', len))
		return -EINVAL;
	return 0;
}

bool s3b_reserved(const char *name, size_t len)
{
	return len >= sizeof(S3B_RESERVED) - 1 &&
	       !memcmp(name, S3B_RESERVED, sizeof(S3B_RESERVED) - 1);
}

/* ---- tables (lock held) ------------------------------------------------- */

static void link_id(struct backend_session *s, struct s3b_node *n)
{
	size_t i = hash_id(n->nodeid, s->nbuckets);

	n->id_next = s->by_id[i];
	s->by_id[i] = n;
}

static void link_path(struct backend_session *s, struct s3b_node *n)
{
	size_t i = hash_path(n->path, s->nbuckets);

	n->path_next = s->by_path[i];
	s->by_path[i] = n;
}

static void unlink_path(struct backend_session *s, struct s3b_node *n)
{
	struct s3b_node **pp;

	if (!n->path)
		return;
	for (pp = &s->by_path[hash_path(n->path, s->nbuckets)]; *pp;
	     pp = &(*pp)->path_next) {
		if (*pp == n) {
			*pp = n->path_next;
			break;
		}
	}
}

static void unlink_id(struct backend_session *s, struct s3b_node *n)
{
	struct s3b_node **pp;

	for (pp = &s->by_id[hash_id(n->nodeid, s->nbuckets)]; *pp;
	     pp = &(*pp)->id_next) {
		if (*pp == n) {
			*pp = n->id_next;
			break;
		}
	}
}

static struct s3b_node *find_id(struct backend_session *s, uint64_t id)
{
	struct s3b_node *n = s->by_id[hash_id(id, s->nbuckets)];

	while (n && n->nodeid != id)
		n = n->id_next;
	return n;
}

static struct s3b_node *find_path(struct backend_session *s, const char *p)
{
	struct s3b_node *n = s->by_path[hash_path(p, s->nbuckets)];

	while (n && strcmp(n->path, p))
		n = n->path_next;
	return n;
}

static void grow(struct backend_session *s)
{
	size_t old = s->nbuckets, nb = old * 2;
	struct s3b_node **id = calloc(nb, sizeof(*id));
	struct s3b_node **pa = calloc(nb, sizeof(*pa));
	struct s3b_node *n, *next;

	if (!id || !pa) {
		free(id);
		free(pa);
		return;
	}
	for (size_t i = 0; i < old; i++)
		for (n = s->by_id[i]; n; n = next) {
			next = n->id_next;
			n->id_next = id[hash_id(n->nodeid, nb)];
			id[hash_id(n->nodeid, nb)] = n;
			if (n->path) {
				n->path_next = pa[hash_path(n->path, nb)];
				pa[hash_path(n->path, nb)] = n;
			}
		}
	free(s->by_id);
	free(s->by_path);
	s->by_id = id;
	s->by_path = pa;
	s->nbuckets = nb;
}

static void node_free(struct s3b_node *n)
{
	if (n->stage)
		s3b_stage_put(n->stage);
	free(n->path);
	free(n->hidden);
	free(n);
}

static bool maybe_free(struct backend_session *s, struct s3b_node *n)
{
	if (n->nlookup || n->refs || n == s->root)
		return false;
	unlink_id(s, n);
	unlink_path(s, n);
	s->nnodes--;
	node_free(n);
	return true;
}

/* ---- public ------------------------------------------------------------- */

int s3b_nodes_init(struct backend_session *s)
{
	struct s3b_node *root = calloc(1, sizeof(*root));

	s->nbuckets = NODES_MIN_BUCKETS;
	s->by_id = calloc(s->nbuckets, sizeof(*s->by_id));
	s->by_path = calloc(s->nbuckets, sizeof(*s->by_path));
	if (!root || !s->by_id || !s->by_path || !(root->path = strdup(""))) {
		free(root);
		free(s->by_id);
		free(s->by_path);
		s->by_id = s->by_path = NULL;
		return -ENOMEM;
	}
	pthread_mutex_init(&s->lock, NULL);
	root->nodeid = S3B_ROOT_ID;
	root->type = S_IFDIR;
	root->nlookup = 1;
	s->root = root;
	s->next_id = S3B_ROOT_ID + 1;
	link_id(s, root);
	link_path(s, root);
	s->nnodes = 1;
	return 0;
}

void s3b_nodes_cleanup(struct backend_session *s)
{
	struct s3b_node *n, *next;

	if (!s->by_id)
		return;
	for (size_t i = 0; i < s->nbuckets; i++)
		for (n = s->by_id[i]; n; n = next) {
			next = n->id_next;
			node_free(n);
		}
	free(s->by_id);
	free(s->by_path);
	s->by_id = s->by_path = NULL;
	pthread_mutex_destroy(&s->lock);
}

struct s3b_node *s3b_node_get(struct backend_session *s, uint64_t nodeid)
{
	struct s3b_node *n;

	pthread_mutex_lock(&s->lock);
	n = find_id(s, nodeid);
	if (n)
		n->refs++;
	pthread_mutex_unlock(&s->lock);
	return n;
}

void s3b_node_put(struct backend_session *s, struct s3b_node *n)
{
	if (!n)
		return;
	pthread_mutex_lock(&s->lock);
	n->refs--;
	maybe_free(s, n);
	pthread_mutex_unlock(&s->lock);
}

int s3b_node_get_dir(struct backend_session *s, uint64_t nodeid,
		     struct s3b_node **out)
{
	struct s3b_node *n = s3b_node_get(s, nodeid);

	*out = NULL;
	if (!n)
		return -ESTALE;
	if (n->type != S_IFDIR) {
		s3b_node_put(s, n);
		return -ENOTDIR;
	}
	*out = n;
	return 0;
}

/* root + path [+ "/"] into key (S3_KEY_MAX + 1 bytes). */
static int build_key(struct backend_session *s, const char *path,
		     const char *name, bool dir, char *key)
{
	size_t rl = s->fs->root_len, pl = strlen(path);
	size_t nl = name ? strlen(name) : 0;
	size_t total = rl + pl + (name && pl ? 1 : 0) + nl + (dir ? 1 : 0);

	if (total > S3_KEY_MAX)
		return -ENAMETOOLONG;
	memcpy(key, s->fs->root, rl);
	memcpy(key + rl, path, pl);
	total = rl + pl;
	if (name) {
		if (pl)
			key[total++] = '/';
		memcpy(key + total, name, nl);
		total += nl;
	}
	/* The root's key already ends in '/'. */
	if (dir && total > rl)
		key[total++] = '/';
	key[total] = '\0';
	return 0;
}

int s3b_node_key(struct backend_session *s, struct s3b_node *n, char *key)
{
	int rc;

	pthread_mutex_lock(&s->lock);
	if (n->path)
		rc = build_key(s, n->path, NULL, n->type == S_IFDIR, key);
	else if (n->hidden && strlen(n->hidden) <= S3_KEY_MAX)
		rc = (strcpy(key, n->hidden), 0); /* unlinked while open */
	else
		rc = -ENOENT;
	pthread_mutex_unlock(&s->lock);
	return rc;
}

int s3b_child_key(struct backend_session *s, struct s3b_node *dir,
		  const char *name, bool as_dir, char *key, char **path)
{
	int rc = s3b_name_check(name);

	if (path)
		*path = NULL;
	if (rc)
		return rc;
	pthread_mutex_lock(&s->lock);
	if (!dir->path) {
		rc = -ENOENT;
		goto out;
	}
	/* The backend's own objects live there: no guest name reaches them. */
	if (!dir->path[0] && s3b_reserved(name, strlen(name))) {
		rc = -EPERM;
		goto out;
	}
	rc = build_key(s, dir->path, name, as_dir, key);
	if (rc || !path)
		goto out;
	if (dir->path[0])
		rc = asprintf(path, "%s/%s", dir->path, name) < 0 ? -ENOMEM : 0;
	else
		rc = (*path = strdup(name)) ? 0 : -ENOMEM;
	if (rc)
		*path = NULL;
out:
	pthread_mutex_unlock(&s->lock);
	return rc;
}

int s3b_node_ref(struct backend_session *s, char *path, mode_t type,
		 uint64_t *nodeid)
{
	struct s3b_node *n, *fresh = calloc(1, sizeof(*fresh));

	pthread_mutex_lock(&s->lock);
	n = find_path(s, path);
	if (n && n->type != type) {
		/* The name now holds something else: the old node goes. */
		unlink_path(s, n);
		free(n->path);
		n->path = NULL;
		n = NULL;
	}
	if (n) {
		n->nlookup++;
		*nodeid = n->nodeid;
		pthread_mutex_unlock(&s->lock);
		free(fresh);
		free(path);
		return 0;
	}
	if (!fresh) {
		pthread_mutex_unlock(&s->lock);
		free(path);
		return -ENOMEM;
	}
	fresh->nodeid = *nodeid = s->next_id++;
	fresh->type = type;
	fresh->path = path;
	fresh->nlookup = 1;
	link_id(s, fresh);
	link_path(s, fresh);
	if (++s->nnodes > s->nbuckets)
		grow(s);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

void s3b_node_forget(struct backend_session *s, uint64_t nodeid, uint64_t count)
{
	struct s3b_node *n;

	pthread_mutex_lock(&s->lock);
	n = find_id(s, nodeid);
	if (n && n != s->root) {
		n->nlookup = count >= n->nlookup ? 0 : n->nlookup - count;
		maybe_free(s, n);
	}
	pthread_mutex_unlock(&s->lock);
}

void s3b_node_detach(struct backend_session *s, const char *path)
{
	struct s3b_node *n;

	pthread_mutex_lock(&s->lock);
	n = find_path(s, path);
	if (n && n != s->root) {
		unlink_path(s, n);
		free(n->path);
		n->path = NULL;
	}
	pthread_mutex_unlock(&s->lock);
}

/* Is p equal to dir or below it? */
static bool below(const char *p, const char *dir, size_t dl)
{
	if (!dl)
		return true; /* everything is below the root */
	return !strncmp(p, dir, dl) && (p[dl] == '\0' || p[dl] == '/');
}

int s3b_node_move(struct backend_session *s, const char *from, const char *to)
{
	size_t fl = strlen(from), tl = strlen(to), i;
	struct s3b_node *n, **moved = NULL;
	size_t nm = 0;
	int rc = 0;

	pthread_mutex_lock(&s->lock);
	/* Whatever the guest knew at the target is replaced. */
	n = find_path(s, to);
	if (n && n != s->root) {
		unlink_path(s, n);
		free(n->path);
		n->path = NULL;
	}
	moved = calloc(s->nnodes, sizeof(*moved));
	if (!moved) {
		rc = -ENOMEM;
		goto out;
	}
	for (i = 0; i < s->nbuckets; i++)
		for (n = s->by_id[i]; n; n = n->id_next)
			if (n->path && n != s->root && below(n->path, from, fl))
				moved[nm++] = n;
	for (i = 0; i < nm; i++) {
		char *np = malloc(tl + strlen(moved[i]->path) - fl + 1);

		if (!np) {
			rc = -ENOMEM; /* this node is lost to the guest */
			unlink_path(s, moved[i]);
			free(moved[i]->path);
			moved[i]->path = NULL;
			continue;
		}
		memcpy(np, to, tl);
		strcpy(np + tl, moved[i]->path + fl);
		unlink_path(s, moved[i]);
		free(moved[i]->path);
		moved[i]->path = np;
		link_path(s, moved[i]);
	}
out:
	pthread_mutex_unlock(&s->lock);
	free(moved);
	return rc;
}

struct s3b_stage *s3b_node_stage_pin(struct backend_session *s,
				     struct s3b_node *n)
{
	struct s3b_stage *sg;

	pthread_mutex_lock(&s->lock);
	sg = n->stage;
	if (sg)
		n->stage_users++;
	pthread_mutex_unlock(&s->lock);
	return sg;
}

void s3b_node_stage_unpin(struct backend_session *s, struct s3b_node *n)
{
	struct s3b_stage *sg = NULL;

	pthread_mutex_lock(&s->lock);
	if (n->stage_users && --n->stage_users == 0) {
		sg = n->stage;
		n->stage = NULL;
	}
	pthread_mutex_unlock(&s->lock);
	if (sg)
		s3b_stage_put(sg);
}

int s3b_node_stages_below(struct backend_session *s, const char *path,
			  struct s3b_node ***out)
{
	size_t pl = strlen(path), n = 0;
	struct s3b_node **v, *nd;

	pthread_mutex_lock(&s->lock);
	v = calloc(s->nnodes + 1, sizeof(*v));
	if (!v) {
		pthread_mutex_unlock(&s->lock);
		return -ENOMEM;
	}
	for (size_t i = 0; i < s->nbuckets; i++)
		for (nd = s->by_id[i]; nd; nd = nd->id_next)
			if (nd->stage && nd->path &&
			    below(nd->path, path, pl)) {
				nd->stage_users++;
				nd->refs++;
				v[n++] = nd;
			}
	pthread_mutex_unlock(&s->lock);
	*out = v;
	return 0;
}

/* ---- open files --------------------------------------------------------- */

static int slots_grow(struct backend_session *s)
{
	uint32_t n = s->nslots ? s->nslots * 2 : 64, i;
	struct s3b_slot *p;

	if (s->nslots >= S3B_MAX_FILES)
		return -EMFILE;
	if (n > S3B_MAX_FILES)
		n = S3B_MAX_FILES;
	p = realloc(s->slots, n * sizeof(*p));
	if (!p)
		return -ENOMEM;
	for (i = s->nslots; i < n; i++) {
		p[i].f = NULL;
		p[i].gen = 1;
		p[i].next_free = i + 2;
	}
	p[n - 1].next_free = s->free_head;
	s->free_head = s->nslots + 1;
	s->slots = p;
	s->nslots = n;
	return 0;
}

int s3b_file_insert(struct backend_session *s, struct s3b_file *f, uint64_t *fh)
{
	uint32_t idx;
	int rc = 0;

	pthread_mutex_lock(&s->lock);
	if (!s->free_head)
		rc = slots_grow(s);
	if (!rc) {
		idx = s->free_head - 1;
		s->free_head = s->slots[idx].next_free;
		s->slots[idx].f = f;
		f->refs = 1;
		if (f->kind == S3B_FILE)
			f->node->opens++;
		*fh = (uint64_t)s->slots[idx].gen << 32 | (idx + 1);
	}
	pthread_mutex_unlock(&s->lock);
	return rc;
}

static struct s3b_slot *slot_find(struct backend_session *s, uint64_t fh,
				  int kind)
{
	uint32_t low = (uint32_t)fh, gen = (uint32_t)(fh >> 32);
	struct s3b_slot *sl;

	if (!low || low > s->nslots)
		return NULL;
	sl = &s->slots[low - 1];
	if (!sl->f || sl->gen != gen || sl->f->kind != kind)
		return NULL;
	return sl;
}

struct s3b_file *s3b_file_get(struct backend_session *s, uint64_t fh, int kind)
{
	struct s3b_slot *sl;
	struct s3b_file *f = NULL;

	pthread_mutex_lock(&s->lock);
	sl = slot_find(s, fh, kind);
	if (sl) {
		f = sl->f;
		f->refs++;
	}
	pthread_mutex_unlock(&s->lock);
	return f;
}

void s3b_file_free(struct backend_session *s, struct s3b_file *f)
{
	bool last_hidden = false;

	if (f->kind == S3B_FILE) {
		pthread_mutex_lock(&s->lock);
		if (f->node->opens && --f->node->opens == 0)
			last_hidden = f->node->hidden != NULL;
		pthread_mutex_unlock(&s->lock);
	}
	if (last_hidden)
		s3b_hidden_release(s, f->node);
	if (f->kind == S3B_DIR) {
		for (size_t i = 0; i < f->nents; i++)
			free(f->ents[i].name);
		free(f->ents);
		pthread_mutex_destroy(&f->dir_lock);
	}
	if (f->writable)
		s3b_node_stage_unpin(s, f->node);
	s3b_node_put(s, f->node);
	free(f);
}

void s3b_file_put(struct backend_session *s, struct s3b_file *f)
{
	bool last;

	if (!f)
		return;
	pthread_mutex_lock(&s->lock);
	last = --f->refs == 0;
	pthread_mutex_unlock(&s->lock);
	if (last)
		s3b_file_free(s, f);
}

struct s3b_file *s3b_file_take(struct backend_session *s, uint64_t fh, int kind)
{
	struct s3b_slot *sl;
	struct s3b_file *f = NULL;

	pthread_mutex_lock(&s->lock);
	sl = slot_find(s, fh, kind);
	if (sl) {
		f = sl->f;
		sl->f = NULL;
		if (++sl->gen == 0)
			sl->gen = 1;
		sl->next_free = s->free_head;
		s->free_head = (uint32_t)(sl - s->slots) + 1;
	}
	pthread_mutex_unlock(&s->lock);
	return f;
}
