/*
 * s3b_rename.c - RENAME in the s3 backend.
 *
 * S3 has no rename: a file is copied server-side (CopyObject, the source's
 * ETag as precondition so a concurrent change by another writer fails the
 * rename with ESTALE instead of being lost) and the source deleted; a
 * directory is every key below its prefix copied, then every source
 * deleted.  The filesystem's namespace lock is held exclusively for the
 * whole operation, so guests of this broker see the rename happen at once.
 * If a copy fails, the copies already made are deleted again and the
 * source stays whole.
 *
 * Files being written are uploaded first (their stages then follow the new
 * key), and a file with a pending metadata change is copied with
 * REPLACE and that metadata, which applies the change on the way.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "log.h"
#include "proto.h"
#include "s3b.h"

struct mv {
	char *src, *dst;
	char etag[S3_ETAG_MAX];
	char newetag[S3_ETAG_MAX];
	bool copied;
};

/* Upload every dirty stage at or below path; 0 or the first error. */
static int flush_below(struct backend_session *s, const char *path)
{
	struct s3b_node **v;
	int rc = s3b_node_stages_below(s, path, &v), r;

	if (rc)
		return rc;
	for (size_t i = 0; v[i]; i++) {
		if (!rc && s3b_stage_dirty(v[i]->stage)) {
			r = s3b_data_flush_stage(s, v[i], v[i]->stage);
			if (r)
				rc = r;
		}
		s3b_node_stage_unpin(s, v[i]);
		s3b_node_put(s, v[i]);
	}
	free(v);
	return rc;
}

/* Point every stage at or below from (now at to) at its new key. */
static void rekey_below(struct backend_session *s, const char *to)
{
	char key[S3_KEY_MAX + 1], etag[S3_ETAG_MAX];
	struct s3b_node **v;
	struct s3b_info i;

	if (s3b_node_stages_below(s, to, &v))
		return;
	for (size_t k = 0; v[k]; k++) {
		if (!s3b_node_key(s, v[k], key)) {
			etag[0] = '\0';
			if (s3b_cache_get(s->b, key, NULL, &i) == 1) {
				snprintf(etag, sizeof(etag), "%s", i.etag);
				s3b_info_clear(&i);
			}
			s3b_stage_set_key(v[k]->stage, key,
					  etag[0] ? etag : NULL);
		}
		s3b_node_stage_unpin(s, v[k]);
		s3b_node_put(s, v[k]);
	}
	free(v);
}

/* Copy one object, with its pending metadata if the cache holds some. */
static int copy_one(struct backend_session *s, struct mv *m)
{
	struct s3_copy_opts o = {.directive = S3_META_COPY,
				 .src_if_match = m->etag[0] ? m->etag : NULL};
	struct s3_kv kv[S3B_KV_MAX];
	struct s3b_info i;
	char buf[S3B_KV_BUF];
	size_t l = strlen(m->src);
	int rc;

	if (s3b_cache_get(s->b, m->src, NULL, &i) == 1) {
		if (i.dirty) {
			o.directive = S3_META_REPLACE;
			o.meta = kv;
			o.nmeta = s3b_meta_to_kv(&i.m, i.xattr, kv, buf);
			o.content_type = l && m->src[l - 1] == '/'
					     ? S3B_DIR_CTYPE
					     : S3B_FILE_CTYPE;
		}
		if (!m->etag[0] && i.etag[0] && strcmp(i.etag, "-"))
			snprintf(m->etag, sizeof(m->etag), "%s", i.etag);
		o.src_if_match = m->etag[0] ? m->etag : NULL;
		rc = s3_http_copy_object(s->fs->http, m->src, m->dst, &o,
					 m->newetag);
		s3b_info_clear(&i);
	} else {
		rc = s3_http_copy_object(s->fs->http, m->src, m->dst, &o,
					 m->newetag);
	}
	if (!rc) {
		m->copied = true;
		s3_etag_quote(m->newetag);
	}
	return rc;
}

/* Copy all, or undo the copies made and fail; then delete the sources. */
static int move_all(struct backend_session *s, struct mv *v, size_t n)
{
	size_t i;
	int rc = 0;

	for (i = 0; i < n && !rc; i++)
		rc = copy_one(s, &v[i]);
	if (rc) {
		log_warn("s3: fsid %s: rename: copy of %s failed: %s",
			 s->fs->fsid, v[i - 1].src, strerror(-rc));
		for (i = 0; i < n; i++)
			if (v[i].copied)
				s3_http_delete_object(s->fs->http, v[i].dst);
		return rc;
	}
	for (i = 0; i < n; i++) {
		int r = s3_http_delete_object(s->fs->http, v[i].src);

		if (r && r != -ENOENT)
			log_warn("s3: fsid %s: rename: %s left behind: %s",
				 s->fs->fsid, v[i].src, strerror(-r));
		s3b_cache_move(s->b, v[i].src, v[i].dst, v[i].newetag);
	}
	return 0;
}

static void mv_free(struct mv *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].src);
		free(v[i].dst);
	}
	free(v);
}

/* Every key below sdir (ends in '/') becomes the same key below ddir. */
static int list_moves(struct backend_session *s, const char *sdir,
		      const char *ddir, struct mv **out, size_t *nout)
{
	size_t sl = strlen(sdir), dl = strlen(ddir), n = 0, cap = 0;
	struct s3_list_page p;
	struct mv *v = NULL;
	char *token = NULL;
	int rc;

	do {
		rc = s3_http_list(s->fs->http, sdir, NULL, token, 0, &p);
		free(token);
		token = NULL;
		if (rc)
			break;
		for (size_t i = 0; i < p.nentries && !rc; i++) {
			const char *k = p.entries[i].key;

			if (strncmp(k, sdir, sl))
				continue;
			if (dl + strlen(k) - sl > S3_KEY_MAX) {
				rc = -ENAMETOOLONG;
				break;
			}
			if (n == cap) {
				struct mv *nv;

				cap = cap ? cap * 2 : 64;
				if (cap > S3B_LIST_MAX ||
				    !(nv = realloc(v, cap * sizeof(*v)))) {
					rc = cap > S3B_LIST_MAX ? -EFBIG
								: -ENOMEM;
					break;
				}
				v = nv;
			}
			memset(&v[n], 0, sizeof(v[n]));
			v[n].src = strdup(k);
			if (v[n].src &&
			    asprintf(&v[n].dst, "%s%s", ddir, k + sl) < 0)
				v[n].dst = NULL;
			snprintf(v[n].etag, sizeof(v[n].etag), "%s",
				 p.entries[i].etag);
			n++;
			if (!v[n - 1].src || !v[n - 1].dst)
				rc = -ENOMEM;
		}
		if (!rc && p.truncated && p.next_token)
			token = strdup(p.next_token);
		s3_http_list_free(&p);
	} while (!rc && token);
	free(token);
	if (rc) {
		mv_free(v, n);
		return rc;
	}
	*out = v;
	*nout = n;
	return 0;
}

/* Check the target as rename(2) does; *exists tells whether it is there. */
static int check_target(struct backend_session *s, mode_t stype,
			const char *dkey, unsigned flags, bool *exists,
			uint64_t *dsize, char *xside)
{
	struct s3_list_page p;
	struct s3b_info i;
	char dk[S3_KEY_MAX + 3];
	mode_t dtype;
	int rc = s3b_ns_stat(s, dkey, &dtype, &i);

	*exists = false;
	if (rc == -ENOENT)
		return 0;
	if (rc)
		return rc;
	*dsize = dtype == S_IFDIR ? 0 : i.size;
	memcpy(xside, i.m.xside, S3B_XSIDE_LEN); /* goes with it */
	s3b_info_clear(&i);
	*exists = true;
	if (flags & PROTO_RENAME_NOREPLACE)
		return -EEXIST;
	if (stype == S_IFDIR && dtype != S_IFDIR)
		return -ENOTDIR;
	if (stype != S_IFDIR && dtype == S_IFDIR)
		return -EISDIR;
	if (dtype != S_IFDIR)
		return 0;
	if (snprintf(dk, sizeof(dk), "%s/", dkey) >= (int)sizeof(dk))
		return -ENAMETOOLONG;
	rc = s3_http_list(s->fs->http, dk, "/", NULL, 2, &p);
	if (rc)
		return rc;
	if (p.nprefixes)
		rc = -ENOTEMPTY;
	for (size_t k = 0; k < p.nentries; k++)
		if (strcmp(p.entries[k].key, dk))
			rc = -ENOTEMPTY;
	s3_http_list_free(&p);
	return rc;
}

/*
 * The cache after a move of skey to dkey (with '/' for directories): what
 * was below the source is gone; the moved tree is incomplete (entries
 * for prefix-only directories did not move with it); the parents' counts
 * and times follow.
 */
static void names_moved(struct backend_session *s, struct s3b_node *op,
			struct s3b_node *np, const char *skey, const char *dkey,
			bool dir, bool replaced)
{
	if (dir) {
		s3b_cache_below(s->b, skey, true);
		s3b_cache_neg(s->b, skey);
		s3b_cache_below(s->b, dkey, false);
		s3b_cache_dir_adjust(s->b, skey, -1);
		if (!replaced)
			s3b_cache_dir_adjust(s->b, dkey, 1);
	}
	s3b_ns_dir_changed(s, op);
	if (np != op)
		s3b_ns_dir_changed(s, np);
}

static int do_rename(struct backend_session *s, const struct proto_msg *req,
		     struct s3b_node *op, struct s3b_node *np)
{
	char skey[S3_KEY_MAX + 2], dkey[S3_KEY_MAX + 2];
	char dxside[S3B_XSIDE_LEN] = "";
	char *spath = NULL, *dpath = NULL;
	struct mv *v = NULL;
	struct s3b_info i;
	size_t n = 0, sl;
	uint64_t dsize = 0;
	mode_t stype;
	bool exists;
	int rc;

	rc = s3b_child_key(s, op, req->name, false, skey, &spath);
	if (!rc)
		rc = s3b_child_key(s, np, req->name2, false, dkey, &dpath);
	if (!rc)
		rc = s3b_ns_stat(s, skey, &stype, &i);
	if (rc)
		goto out;
	s3b_info_clear(&i);
	if (!strcmp(spath, dpath))
		goto out;
	sl = strlen(spath);
	if (stype == S_IFDIR && !strncmp(dpath, spath, sl) &&
	    dpath[sl] == '/') {
		rc = -EINVAL;
		goto out;
	}
	rc = check_target(s, stype, dkey, req->flags, &exists, &dsize, dxside);
	if (rc)
		goto out;
	rc = flush_below(s, spath);
	if (rc)
		goto out;
	if (exists && stype != S_IFDIR) {
		struct s3b_node **d;

		/* A writer of the replaced file must not bring it back. */
		if (!s3b_node_stages_below(s, dpath, &d)) {
			for (size_t k = 0; d[k]; k++) {
				if (d[k]->path && !strcmp(d[k]->path, dpath))
					dsize = s3b_stage_size(d[k]->stage);
				s3b_stage_discard(d[k]->stage);
				s3b_node_stage_unpin(s, d[k]);
				s3b_node_put(s, d[k]);
			}
			free(d);
		}
		s3b_store_discard_key(s->b->store, s->fs->fsid, dkey);
	}
	if (stype == S_IFDIR) {
		strcat(skey, "/");
		strcat(dkey, "/");
		rc = list_moves(s, skey, dkey, &v, &n);
	} else {
		v = calloc(1, sizeof(*v));
		n = 1;
		if (!v || !(v[0].src = strdup(skey)) ||
		    !(v[0].dst = strdup(dkey)))
			rc = -ENOMEM;
	}
	if (!rc)
		rc = move_all(s, v, n);
	if (rc)
		goto out;
	/* The replaced file (or empty directory marker) is gone, and with
	 * it the sidecar of its extended attributes. */
	if (exists)
		s3b_quota_give(s->fs, dsize, 1);
	if (exists && dxside[0])
		s3b_xside_drop(s, dxside);
	rc = s3b_node_move(s, spath, dpath);
	rekey_below(s, dpath);
	names_moved(s, op, np, skey, dkey, stype == S_IFDIR, exists);
out:
	if (v)
		mv_free(v, n);
	free(spath);
	free(dpath);
	return rc;
}

/* The moves of key (a file, or with '/' every key below) to dst. */
static int moves_of(struct backend_session *s, const char *key, bool dir,
		    const char *dst, struct mv **v, size_t *n)
{
	if (dir)
		return list_moves(s, key, dst, v, n);
	*n = 1;
	*v = calloc(1, sizeof(**v));
	if (!*v || !((*v)[0].src = strdup(key)) || !((*v)[0].dst = strdup(dst)))
		return -ENOMEM;
	return 0;
}

/* Move key to dst (both files, or both directory prefixes). */
static int move_tree(struct backend_session *s, const char *key, bool dir,
		     const char *dst)
{
	struct mv *v = NULL;
	size_t n = 0;
	int rc = moves_of(s, key, dir, dst, &v, &n);

	if (!rc)
		rc = move_all(s, v, n);
	if (v)
		mv_free(v, n);
	return rc;
}

/*
 * RENAME_EXCHANGE: a through a hidden temporary key, b to a, the
 * temporary to b, all under the exclusive namespace lock, so guests see
 * both names swap at once.  If the second or third step fails the first
 * ones are undone where possible.
 */
static int exchange(struct backend_session *s, struct s3b_node *op,
		    struct s3b_node *np, const char *an, const char *bn)
{
	char ak[S3_KEY_MAX + 2], bk[S3_KEY_MAX + 2], tk[S3_KEY_MAX + 2];
	char ak2[S3_KEY_MAX + 2], bk2[S3_KEY_MAX + 2];
	char *ap = NULL, *bp = NULL, tp[64];
	struct s3b_info i;
	mode_t at, bt;
	uint64_t r;
	size_t al, bl;
	int rc;

	rc = s3b_child_key(s, op, an, false, ak, &ap);
	if (!rc)
		rc = s3b_child_key(s, np, bn, false, bk, &bp);
	if (!rc && !(rc = s3b_ns_stat(s, ak, &at, &i)))
		s3b_info_clear(&i);
	if (!rc && !(rc = s3b_ns_stat(s, bk, &bt, &i)))
		s3b_info_clear(&i);
	if (rc || !strcmp(ap, bp))
		goto out;
	al = strlen(ap);
	bl = strlen(bp);
	if ((!strncmp(bp, ap, al) && bp[al] == '/') ||
	    (!strncmp(ap, bp, bl) && ap[bl] == '/')) {
		rc = -EINVAL;
		goto out;
	}
	rc = flush_below(s, ap);
	if (!rc)
		rc = flush_below(s, bp);
	if (rc)
		goto out;
	if (getrandom(&r, sizeof(r), 0) != sizeof(r))
		r = s3b_clock_ms() ^ (uint64_t)(uintptr_t)&r;
	snprintf(tp, sizeof(tp), S3B_RESERVED "tmp/%016llx",
		 (unsigned long long)r);
	if (snprintf(tk, sizeof(tk), "%s%s", s->fs->root, tp) > S3_KEY_MAX) {
		rc = -ENAMETOOLONG;
		goto out;
	}
	if (at == S_IFDIR)
		strcat(tk, "/");
	/* Each name's key in the form of what is there before and after. */
	strcpy(ak2, ak);
	strcpy(bk2, bk);
	if (bt == S_IFDIR)
		strcat(ak2, "/");
	if (at == S_IFDIR)
		strcat(bk2, "/");
	if (at == S_IFDIR)
		strcat(ak, "/");
	if (bt == S_IFDIR)
		strcat(bk, "/");
	rc = move_tree(s, ak, at == S_IFDIR, tk);
	if (rc)
		goto out;
	rc = move_tree(s, bk, bt == S_IFDIR, ak2);
	if (rc) {
		if (move_tree(s, tk, at == S_IFDIR, ak))
			log_err("s3: fsid %s: exchange: %s left at %s",
				s->fs->fsid, ak, tk);
		goto out;
	}
	rc = move_tree(s, tk, at == S_IFDIR, bk2);
	if (rc) {
		log_err("s3: fsid %s: exchange: %s left at %s", s->fs->fsid,
			bk2, tk);
		goto out;
	}
	s3b_node_move(s, ap, tp);
	s3b_node_move(s, bp, ap);
	s3b_node_move(s, tp, bp);
	rekey_below(s, ap);
	rekey_below(s, bp);
	s3b_cache_below(s->b, tk, true);
	s3b_cache_below(s->b, ak2, false);
	s3b_cache_below(s->b, bk2, false);
	if ((at == S_IFDIR) != (bt == S_IFDIR)) {
		s3b_cache_dir_adjust(s->b, ak2, at == S_IFDIR ? -1 : 1);
		s3b_cache_dir_adjust(s->b, bk2, bt == S_IFDIR ? -1 : 1);
	}
	s3b_ns_dir_changed(s, op);
	if (np != op)
		s3b_ns_dir_changed(s, np);
out:
	free(ap);
	free(bp);
	return rc;
}

int s3b_ns_rename(struct backend_session *s, const struct proto_msg *req,
		  struct proto_msg *rep)
{
	struct s3b_node *op = NULL, *np = NULL;
	unsigned fl = req->flags;
	int rc;

	if (fl & ~(unsigned)(PROTO_RENAME_NOREPLACE | PROTO_RENAME_EXCHANGE))
		return -EINVAL;
	if ((fl & PROTO_RENAME_EXCHANGE) && (fl & PROTO_RENAME_NOREPLACE))
		return -EINVAL;
	rc = s3b_node_get_dir(s, req->ino, &op);
	if (!rc)
		rc = s3b_node_get_dir(s, req->ino2, &np);
	if (rc)
		goto out;
	pthread_rwlock_wrlock(&s->fs->ns);
	if (fl & PROTO_RENAME_EXCHANGE)
		rc = exchange(s, op, np, req->name, req->name2);
	else
		rc = do_rename(s, req, op, np);
	pthread_rwlock_unlock(&s->fs->ns);
out:
	s3b_node_put(s, np);
	s3b_node_put(s, op);
	return rc;
}
