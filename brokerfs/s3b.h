/*
 * s3b.h - private interface of the s3 backend, shared by backend_s3.c and
 * the s3b_*.c files (the staging engine has its own header, s3b_stage.h).
 *
 * Objects live at <prefix>/<fsid>/<path>; every key is built here from
 * checked single-segment names, so a guest cannot name anything outside
 * its filesystem's prefix.  The layout is s3fs-fuse's: one object per file,
 * "name/" markers for directories, symlinks as objects whose body is the
 * target, POSIX attributes in x-amz-meta-{mode,uid,gid,mtime,ctime,atime}
 * and user.* xattrs in x-amz-meta-xattr.
 *
 * State and its locks:
 * - struct backend (one per broker): the staging store, the metadata cache
 *   (cache_lock), the list of filesystems in use (lock), the thread that
 *   applies coalesced metadata changes.
 * - struct s3b_fs (one per filesystem_id in use, shared by its sessions):
 *   the S3 client and its credential (cred_lock), and the namespace lock:
 *   RENAME takes it exclusively, every other operation that reads or
 *   changes names shares it, so a rename is atomic as guests see it.
 * - struct backend_session: the node table and open files (lock).
 * Lock order: fs->ns, then session lock, then cache_lock.  No network call
 * is made with a session lock or cache_lock held.
 */
#ifndef OCCFS_S3B_H
#define OCCFS_S3B_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include "s3_http.h"
#include "s3b_stage.h"

struct proto_msg;
struct proto_attr;
struct broker_config;

#define S3B_ROOT_ID 1u
#define S3B_MAX_FILES 65536u	 /* open files and directories per session */
#define S3B_CACHE_MAX 65536u	 /* metadata cache entries per broker */
#define S3B_CACHE_BUCKETS 16384u /* hash buckets of that cache */
#define S3B_NEG_TTL_MS 2000u	 /* how long "no such key" is believed */
#define S3B_META_DELAY_MS 1000u	 /* coalesced metadata waits this long */
#define S3B_KC_TTL_MS 1000u	 /* an open keeps the guest's cache so long */
#define S3B_HEAD_PARALLEL 8	 /* HEADs at once for a listing */
#define S3B_LIST_MAX 262144u	 /* entries of one directory listing */
#define S3B_STS_DURATION_S 3600	 /* lifetime asked of STS */
#define S3B_STS_REFRESH_S 300	 /* refresh when fewer seconds are left */
#define S3B_ID_NONE UINT32_MAX	 /* uid/gid header absent */
#define S3B_DIR_CTYPE "application/x-directory"
#define S3B_FILE_CTYPE "application/octet-stream"

#define S3B_KV_MAX 10	 /* x-amz-meta-* headers we write */
#define S3B_KV_BUF 320	 /* their numbers, as text */
#define S3B_XSIDE_LEN 17 /* sidecar id: 16 hex digits and a NUL */
/* An encoded xattr set up to this size rides in x-amz-meta-xattr (S3
 * keeps 2 KiB of user metadata, the other headers need the rest). */
#define S3B_XATTR_HDR_MAX 1792u
#define S3B_XATTR_SET_MAX (4u << 20) /* encoded, in a sidecar */

/* One time stamp; set is false while no header gave it. */
struct s3b_ts {
	int64_t sec;
	uint32_t nsec;
	bool set;
};

/*
 * POSIX attributes as s3fs's headers carry them (seconds), with the
 * nanoseconds in x-amz-meta-occfs-ns and the id of an xattr sidecar object
 * when the set is too big for a header (x-amz-meta-occfs-xattr).
 */
struct s3b_meta {
	uint32_t mode;	   /* with the type bits; 0 = header absent */
	uint32_t uid, gid; /* S3B_ID_NONE = header absent */
	struct s3b_ts atime, mtime, ctime;
	char xside[S3B_XSIDE_LEN]; /* "" = xattrs (if any) in the header */
};

/* A copy of what the cache knows of one key (xattr is the caller's). */
struct s3b_info {
	char etag[S3_ETAG_MAX]; /* "" while only staged (not yet in S3) */
	uint64_t size;
	int64_t lastmod; /* Last-Modified, for absent times */
	struct s3b_meta m;
	char *xattr;  /* x-amz-meta-xattr as stored, or NULL */
	bool dirty;   /* a metadata change waits to be applied */
	uint64_t gen; /* s3b_cache_get: how many changes the entry had */
};

/* One filesystem_id in use. */
struct s3b_fs {
	struct s3b_fs *next; /* b->fs_list, b->lock */
	char *fsid;	     /* immutable */
	char *root;	     /* "<prefix>/<fsid>/", immutable */
	size_t root_len;
	struct s3_http *http; /* immutable; its credential changes inside */
	pthread_rwlock_t ns;  /* renames exclusive, other name ops shared */
	pthread_mutex_t cred_lock;
	time_t cred_exp;   /* cred_lock: STS expiry, 0 = base credential */
	unsigned sessions; /* b->lock */
	bool swept;	   /* b->lock: leftovers of a crash deleted */
	/* Usage against the quota (s3b_quota.c), counted from the first
	 * session with a quota on. */
	pthread_mutex_t q_lock;
	int q_on;		  /* atomic; set once under q_lock */
	uint64_t qbytes, qinodes; /* atomic: 0 is no limit */
	uint64_t ubytes, uinodes; /* q_lock */
};

struct s3b_cent;  /* a metadata cache entry (s3b_cache.c) */
struct s3b_keyop; /* a CopyObject or DELETE of one key in flight */

struct backend {
	/* settings, immutable after start */
	char *endpoint, *region, *bucket, *prefix, *proxy, *ca_file;
	char *sts_endpoint, *role_arn;
	char *access_key, *secret_key; /* the base credential: never logged */
	bool virtual_host, rgw_quirks;
	unsigned retry_budget_ms;
	int64_t started;     /* start time: the times of each filesystem root */
	struct s3_http *sts; /* STS client with the base credential, or NULL */
	struct s3b_store *store;

	pthread_mutex_t lock;
	struct s3b_fs *fs_list; /* lock */

	pthread_mutex_t cache_lock;
	struct s3b_cent **buckets; /* cache_lock */
	struct s3b_cent *lru_head; /* cache_lock: most recent first */
	struct s3b_cent *lru_tail; /* cache_lock */
	size_t ncache;		   /* cache_lock */
	uint64_t copies;	   /* cache_lock: metadata CopyObjects */
	uint64_t cache_forgets;	   /* cache_lock: positive entries dropped */
	struct s3b_keyop *keyops;  /* cache_lock: writes of one key in flight */
	pthread_cond_t keyop_cv;   /* with cache_lock: a keyop ended */

	pthread_t flusher;
	pthread_cond_t flusher_cv; /* with cache_lock */
	bool flusher_stop;	   /* cache_lock */
	bool flusher_started;
};

/* One entry of the guest's inode table. */
struct s3b_node {
	uint64_t nodeid;  /* immutable */
	mode_t type;	  /* S_IFMT, immutable */
	char *path;	  /* lock: "" for the root, "a/b"; NULL once removed */
	uint64_t nlookup; /* lock */
	uint32_t refs;	  /* lock: workers and open files using it */
	struct s3b_stage *stage; /* lock: its stage while written */
	unsigned stage_users;	 /* lock: files and readers pinning it */
	bool wrote;	/* lock: data written since the last upload (mtime) */
	unsigned opens; /* lock: open files (S3B_FILE) on this node */
	char *hidden;	/* lock: its object's key after an unlink while open */
	/*
	 * Keep-cache (s3b_data.c): when kc_known, the guest's page cache for
	 * this node holds only bytes of the object version kc_etag ("" = no
	 * object, a new file), and S3 confirmed that version at kc_ms (0 =
	 * not yet).
	 */
	bool kc_known;		    /* lock */
	char kc_etag[S3_ETAG_MAX];  /* lock */
	uint64_t kc_ms;		    /* lock */
	struct s3b_node *id_next;   /* lock */
	struct s3b_node *path_next; /* lock */
};

enum s3b_file_kind { S3B_FILE = 1, S3B_DIR = 2 };

/* One listed directory entry. */
struct s3b_dent {
	char *name;
	mode_t type;
	bool has_obj; /* a file object or a directory marker listed */
	uint64_t size;
	char etag[S3_ETAG_MAX];
	int64_t mtime;
};

struct s3b_file {
	int kind;	       /* immutable */
	int oflags;	       /* immutable */
	struct s3b_node *node; /* immutable; one ref held */
	bool writable;	       /* immutable: pins node->stage */
	uint32_t refs;	       /* lock */
	pthread_mutex_t dir_lock;
	struct s3b_dent *ents; /* dir_lock */
	size_t nents;	       /* dir_lock */
	bool listed;	       /* dir_lock */
};

struct s3b_slot {
	struct s3b_file *f; /* lock */
	uint32_t gen;	    /* lock */
	uint32_t next_free; /* lock */
};

struct backend_session {
	struct backend *b; /* immutable */
	struct s3b_fs *fs; /* immutable */
	unsigned flags;	   /* BACKEND_SESSION_*, immutable */

	pthread_mutex_t lock;
	struct s3b_node **by_id, **by_path; /* lock: nbuckets each */
	size_t nbuckets, nnodes;	    /* lock */
	uint64_t next_id;		    /* lock */
	struct s3b_node *root;		    /* immutable */
	struct s3b_slot *slots;		    /* lock */
	uint32_t nslots, free_head;	    /* lock */
};

/* ---- backend_s3.c ------------------------------------------------------- */
/* Refresh the fs's STS credential if it expires soon (or now if force). */
int s3b_fs_cred(struct backend *b, struct s3b_fs *fs, bool force);
/* The fs of fsid, created (with its client and credential) if needed. */
int s3b_fs_get(struct backend *b, const char *fsid, struct s3b_fs **out);
uint64_t s3b_clock_ms(void);

/* ---- s3b_cache.c: the metadata cache ------------------------------------ */
int s3b_cache_init(struct backend *b);
void s3b_cache_cleanup(struct backend *b);
/*
 * 1 and *out filled when key is known to exist (with metadata), -ENOENT
 * when it is known not to, 0 when unknown.  etag (may be NULL) must match
 * a positive entry, else it counts as unknown.
 */
int s3b_cache_get(struct backend *b, const char *key, const char *etag,
		  struct s3b_info *out);
/* What a HEAD or our own upload said (not dirty; keeps a pending change). */
void s3b_cache_put(struct backend *b, const char *key,
		   const struct s3b_info *in);
void s3b_cache_neg(struct backend *b, const char *key);
void s3b_cache_drop(struct backend *b, const char *key);
/* Replace metadata and mark it to be applied (by fs) unless staged. */
int s3b_cache_set_meta(struct backend *b, const char *key,
		       const struct s3b_meta *m, const char *xattr,
		       struct s3b_fs *fs, bool dirty);
/*
 * After an upload: new etag and size.  gen is the entry's gen whose
 * metadata the upload carried: a change made since stays pending, to be
 * applied by fs.
 */
void s3b_cache_uploaded(struct backend *b, const char *key, const char *etag,
			uint64_t size, uint64_t gen, struct s3b_fs *fs);
/* Move an entry to another key (rename). */
void s3b_cache_move(struct backend *b, const char *from, const char *to,
		    const char *etag);
/*
 * Apply key's pending metadata with one CopyObject REPLACE (fs->ns held
 * by the caller).  0 when nothing was pending or it was applied.
 */
int s3b_cache_apply(struct backend *b, struct s3b_fs *fs, const char *key);
/* Apply every pending change of fs (fs NULL: of all) older than age_ms. */
int s3b_cache_apply_all(struct backend *b, struct s3b_fs *fs, uint64_t age_ms);
/*
 * A write of key's object (an upload, a DELETE, the move of an unlinked
 * open file) against its pending metadata: s3b_cache_fence waits for a
 * CopyObject or another fenced write of key in flight and keeps any new
 * one from starting until s3b_cache_unfence.  A CopyObject onto itself
 * that overlaps a DELETE can bring the object back, and one that overlaps
 * an upload can put the old bytes back.  After a removal the pending
 * change is dropped (the entry is negative); an upload carries it.
 */
int s3b_cache_fence(struct backend *b, const char *key);
void s3b_cache_unfence(struct backend *b, const char *key);
/*
 * Directories.  A directory is complete when every child has an entry
 * (positive, or a stub from a listing): then a name without one does not
 * exist, no request needed.  It becomes complete when made here (mkdir) or
 * listed whole with no entry dropped meanwhile (forgets unchanged), and
 * incomplete when a child's entry is evicted or dropped.
 */
void s3b_cache_stub(struct backend *b, const char *key, const char *etag,
		    uint64_t size, int64_t lastmod);
uint64_t s3b_cache_forgets(struct backend *b);
void s3b_cache_dir_complete(struct backend *b, const char *dkey, uint32_t nsub,
			    uint64_t forgets);
/* 1 and *nsub (subdirectories) when dkey is complete, else 0. */
int s3b_cache_dir_count(struct backend *b, const char *dkey, uint32_t *nsub);
/* A subdirectory appeared (+1) or went (-1) in key's parent. */
void s3b_cache_dir_adjust(struct backend *b, const char *key, int delta);
/* key (a file key, no '/') and key/ are known not to exist. */
bool s3b_cache_absent(struct backend *b, const char *key);
/* Entries under prefix: dropped (drop) or their directories incomplete. */
void s3b_cache_below(struct backend *b, const char *prefix, bool drop);
int s3b_cache_start_flusher(struct backend *b);
void s3b_cache_stop_flusher(struct backend *b);
void s3b_info_clear(struct s3b_info *i);

/* ---- s3b_meta.c: s3fs headers ------------------------------------------- */
/* Headers of one object into *i (from HEAD or GET). */
void s3b_meta_from_obj(const struct s3_obj_info *o, struct s3b_info *i);
/* x-amz-meta-* to send for m and xattr; strings live in buf. */
size_t s3b_meta_to_kv(const struct s3b_meta *m, const char *xattr,
		      struct s3_kv kv[S3B_KV_MAX], char buf[S3B_KV_BUF]);
/* The same headers as the next upload of sg carries them. */
int s3b_meta_to_stage(struct s3b_stage *sg, const struct s3b_meta *m,
		      const char *xattr);
/* The current time into t. */
void s3b_ts_now(struct s3b_ts *t);
/* Fill a reply's attributes for a node of type from i. */
void s3b_meta_attr(struct proto_attr *a, uint64_t nodeid, mode_t type,
		   const struct s3b_info *i, uint32_t uid, uint32_t gid);
/* A fresh s3b_meta for a new entry made by the caller uid/gid. */
void s3b_meta_new(struct s3b_meta *m, mode_t mode, uint32_t uid, uint32_t gid);
/* user.* xattrs, s3fs's encoding: get/set/remove/list on a header value. */
int s3b_xattr_get(const char *hdr, const char *name, void *buf, size_t cap,
		  size_t *len);
int s3b_xattr_set(const char *hdr, const char *name, const void *val,
		  size_t len, int flags, char **out);
int s3b_xattr_remove(const char *hdr, const char *name, char **out);
int s3b_xattr_list(const char *hdr, char *buf, size_t cap, size_t *len);

/* ---- s3b_nodes.c: node table, keys, open files -------------------------- */
int s3b_nodes_init(struct backend_session *s);
void s3b_nodes_cleanup(struct backend_session *s);
int s3b_name_check(const char *name);
/*
 * Names under the root starting with S3B_RESERVED hold the backend's own
 * objects (unlinked open files, xattr sidecars, exchange temporaries):
 * never listed, never reachable by a guest name (EPERM; ENOENT on lookup).
 */
#define S3B_RESERVED ".occfs-"
bool s3b_reserved(const char *name, size_t len);
struct s3b_node *s3b_node_get(struct backend_session *s, uint64_t nodeid);
void s3b_node_put(struct backend_session *s, struct s3b_node *n);
int s3b_node_get_dir(struct backend_session *s, uint64_t nodeid,
		     struct s3b_node **out);
/* Key of n (dir: with its trailing '/'), or of child name of dir n. */
int s3b_node_key(struct backend_session *s, struct s3b_node *n, char *key);
int s3b_child_key(struct backend_session *s, struct s3b_node *dir,
		  const char *name, bool as_dir, char *key, char **path);
/* Find or make the node for path (consumed) and count one lookup. */
int s3b_node_ref(struct backend_session *s, char *path, mode_t type,
		 uint64_t *nodeid);
void s3b_node_forget(struct backend_session *s, uint64_t nodeid,
		     uint64_t count);
/* A name was removed or renamed away: detach its node(s). */
void s3b_node_detach(struct backend_session *s, const char *path);
/* Rename path from to "to" (and every node below it for a directory). */
int s3b_node_move(struct backend_session *s, const char *from, const char *to);
/* Pin the node's stage for a moment (NULL when none); unpin after. */
struct s3b_stage *s3b_node_stage_pin(struct backend_session *s,
				     struct s3b_node *n);
void s3b_node_stage_unpin(struct backend_session *s, struct s3b_node *n);
/* Stages of nodes at or below path (NULL-terminated, pinned). */
int s3b_node_stages_below(struct backend_session *s, const char *path,
			  struct s3b_node ***out);

int s3b_file_insert(struct backend_session *s, struct s3b_file *f,
		    uint64_t *fh);
struct s3b_file *s3b_file_get(struct backend_session *s, uint64_t fh, int kind);
void s3b_file_put(struct backend_session *s, struct s3b_file *f);
/* Remove fh from the table; the caller owns the returned file. */
struct s3b_file *s3b_file_take(struct backend_session *s, uint64_t fh,
			       int kind);
void s3b_file_free(struct backend_session *s, struct s3b_file *f);

/*
 * ---- s3b_quota.c: usage of a filesystem_id against its quota ------------
 * Bytes are object sizes (files and symlink bodies; staged sizes while a
 * file is written), inodes are objects and directory markers.  The first
 * session with a quota lists the prefix once; every change the backend
 * makes is counted from then on.
 */
int s3b_quota_attach(struct backend_session *s, uint64_t bytes,
		     uint64_t inodes);
void s3b_quota_set(struct backend_session *s, uint64_t bytes, uint64_t inodes);
bool s3b_quota_on(const struct s3b_fs *fs);
/*
 * Around a size change of sg: *room is how far it may grow (UINT64_MAX: no
 * limit).  Returns whether it is counting (q_lock held); pass that to
 * s3b_quota_end, which always follows.
 */
int s3b_quota_begin(struct s3b_fs *fs, struct s3b_stage *sg, uint64_t *size0,
		    uint64_t *room);
void s3b_quota_end(struct s3b_fs *fs, struct s3b_stage *sg, uint64_t size0,
		   int counting);
int s3b_quota_take(struct s3b_fs *fs, uint64_t bytes); /* one new object */
void s3b_quota_give(struct s3b_fs *fs, uint64_t bytes, uint64_t inodes);
int s3b_quota_statfs(struct s3b_fs *fs, struct proto_msg *rep);
void s3b_quota_usage(struct s3b_fs *fs, uint64_t *bytes, uint64_t *inodes);

/*
 * ---- s3b_hidden.c: files unlinked while open ------------------------------
 * The object moves to <root>.occfs-unlinked/<id> (never listed, no guest
 * name reaches it), the node follows it, and the last close deletes it.
 */
/* 1: path's node is open and now hidden; 0: not open; -errno. */
int s3b_hidden_unlink(struct backend_session *s, const char *path,
		      const char *key);
/* The last open file of hidden node n closed: delete its object. */
void s3b_hidden_release(struct backend_session *s, struct s3b_node *n);
/* A filesystem's first session: delete what a previous run left hidden. */
void s3b_hidden_sweep(struct s3b_fs *fs);

/*
 * ---- s3b_xside.c: xattr sets too big for a header -------------------------
 * Stored whole in <root>.occfs-xattr/<id>; the object's
 * x-amz-meta-occfs-xattr names the id (and x-amz-meta-xattr is left out),
 * so renames, which copy headers, keep the link.
 */
/* i->xattr from the sidecar when i->m.xside names one and it is not
 * loaded yet (and the cache entry of key learns it). */
int s3b_xside_load(struct backend_session *s, const char *key,
		   struct s3b_info *i);
/* New encoded set hdr for an object whose headers are m: store it where
 * it fits, updating m->xside. */
int s3b_xside_store(struct backend_session *s, const char *hdr,
		    struct s3b_meta *m);
/* The object naming sidecar id went away: delete the sidecar. */
void s3b_xside_drop(struct backend_session *s, const char *id);

/* ---- s3b_ns.c / s3b_dir.c / s3b_attr.c / s3b_data.c -------------------- */
/* What is at key: 1 file-like (with *i), 2 directory, -ENOENT, -errno. */
int s3b_ns_stat(struct backend_session *s, const char *key, mode_t *type,
		struct s3b_info *i);
/* The marker of directory dkey, or implied-directory defaults. */
int s3b_ns_dir_info(struct backend_session *s, const char *dkey,
		    struct s3b_info *i);
/*
 * List directory dkey whole: every child gets a cache entry (a stub if
 * unknown), the directory becomes complete and *nsub counts its
 * subdirectories.
 */
int s3b_dir_scan(struct backend_session *s, const char *dkey, uint32_t *nsub);
/* A new entry below p: an S_ISGID directory passes on its group (and,
 * to subdirectories, the bit itself), as Linux does. */
void s3b_ns_inherit(struct backend_session *s, struct s3b_node *p,
		    struct s3b_meta *m);
/* A name in p appeared or went: p's mtime and ctime move, in the cache
 * at once and in S3 with the next coalesced metadata copy. */
void s3b_ns_dir_changed(struct backend_session *s, struct s3b_node *p);
/* Attributes of node n (locks as needed; fills a). */
int s3b_ns_attr(struct backend_session *s, struct s3b_node *n,
		const struct proto_msg *req, struct proto_attr *a);
/* The parent's attributes into rep (PATTR), from the cache only. */
void s3b_ns_pattr(struct backend_session *s, const struct proto_msg *req,
		  struct proto_msg *rep);
/* Apply n's pending metadata now (FSYNC, RELEASE, FORGET). */
int s3b_attr_apply(struct backend_session *s, struct s3b_node *n);
/*
 * Upload what f's stage holds and apply its pending attributes, as an
 * fsync does; 0 for a file not open for writing.
 */
int s3b_data_sync_file(struct backend_session *s, struct s3b_file *f);
/* Upload n's stage with its current metadata. */
int s3b_data_flush_stage(struct backend_session *s, struct s3b_node *n,
			 struct s3b_stage *sg);

typedef int (*s3b_handler)(struct backend_session *s,
			   const struct proto_msg *req, struct proto_msg *rep);

/* clang-format off */
#define S3B_HANDLER_PROTO(fn)                                               \
	int fn(struct backend_session *s, const struct proto_msg *req,      \
	       struct proto_msg *rep)
S3B_HANDLER_PROTO(s3b_ns_lookup);
S3B_HANDLER_PROTO(s3b_ns_forget);
S3B_HANDLER_PROTO(s3b_ns_getattr);
S3B_HANDLER_PROTO(s3b_ns_readlink);
S3B_HANDLER_PROTO(s3b_ns_symlink);
S3B_HANDLER_PROTO(s3b_ns_mknod);
S3B_HANDLER_PROTO(s3b_ns_mkdir);
S3B_HANDLER_PROTO(s3b_ns_unlink);
S3B_HANDLER_PROTO(s3b_ns_rmdir);
S3B_HANDLER_PROTO(s3b_ns_rename);
S3B_HANDLER_PROTO(s3b_ns_link);
S3B_HANDLER_PROTO(s3b_attr_setattr);
S3B_HANDLER_PROTO(s3b_attr_statfs);
S3B_HANDLER_PROTO(s3b_attr_setxattr);
S3B_HANDLER_PROTO(s3b_attr_getxattr);
S3B_HANDLER_PROTO(s3b_attr_listxattr);
S3B_HANDLER_PROTO(s3b_attr_removexattr);
S3B_HANDLER_PROTO(s3b_attr_access);
S3B_HANDLER_PROTO(s3b_data_open);
S3B_HANDLER_PROTO(s3b_data_create);
S3B_HANDLER_PROTO(s3b_data_read);
S3B_HANDLER_PROTO(s3b_data_write);
S3B_HANDLER_PROTO(s3b_data_flush);
S3B_HANDLER_PROTO(s3b_data_release);
S3B_HANDLER_PROTO(s3b_data_fsync);
S3B_HANDLER_PROTO(s3b_data_fallocate);
S3B_HANDLER_PROTO(s3b_data_lseek);
S3B_HANDLER_PROTO(s3b_data_copy_file_range);
S3B_HANDLER_PROTO(s3b_dir_opendir);
S3B_HANDLER_PROTO(s3b_dir_readdirplus);
S3B_HANDLER_PROTO(s3b_dir_releasedir);
S3B_HANDLER_PROTO(s3b_dir_fsyncdir);

#define S3B_HANDLER_HELLO NULL
#define S3B_HANDLER_PING NULL
#define S3B_HANDLER_INTERRUPT NULL
#define S3B_HANDLER_DLP_FINDINGS NULL
#define S3B_HANDLER_LOOKUP s3b_ns_lookup
#define S3B_HANDLER_FORGET s3b_ns_forget
#define S3B_HANDLER_GETATTR s3b_ns_getattr
#define S3B_HANDLER_SETATTR s3b_attr_setattr
#define S3B_HANDLER_READLINK s3b_ns_readlink
#define S3B_HANDLER_SYMLINK s3b_ns_symlink
#define S3B_HANDLER_MKNOD s3b_ns_mknod
#define S3B_HANDLER_MKDIR s3b_ns_mkdir
#define S3B_HANDLER_UNLINK s3b_ns_unlink
#define S3B_HANDLER_RMDIR s3b_ns_rmdir
#define S3B_HANDLER_RENAME s3b_ns_rename
#define S3B_HANDLER_LINK s3b_ns_link
#define S3B_HANDLER_OPEN s3b_data_open
#define S3B_HANDLER_CREATE s3b_data_create
#define S3B_HANDLER_READ s3b_data_read
#define S3B_HANDLER_WRITE s3b_data_write
#define S3B_HANDLER_FLUSH s3b_data_flush
#define S3B_HANDLER_RELEASE s3b_data_release
#define S3B_HANDLER_FSYNC s3b_data_fsync
#define S3B_HANDLER_OPENDIR s3b_dir_opendir
#define S3B_HANDLER_READDIRPLUS s3b_dir_readdirplus
#define S3B_HANDLER_RELEASEDIR s3b_dir_releasedir
#define S3B_HANDLER_FSYNCDIR s3b_dir_fsyncdir
#define S3B_HANDLER_STATFS s3b_attr_statfs
#define S3B_HANDLER_SETXATTR s3b_attr_setxattr
#define S3B_HANDLER_GETXATTR s3b_attr_getxattr
#define S3B_HANDLER_LISTXATTR s3b_attr_listxattr
#define S3B_HANDLER_REMOVEXATTR s3b_attr_removexattr
#define S3B_HANDLER_FALLOCATE s3b_data_fallocate
#define S3B_HANDLER_LSEEK s3b_data_lseek
#define S3B_HANDLER_COPY_FILE_RANGE s3b_data_copy_file_range
#define S3B_HANDLER_ACCESS s3b_attr_access
#define S3B_HANDLER_INVAL_ENTRY NULL
#define S3B_HANDLER_INVAL_INODE NULL
#define S3B_HANDLER_SESSION_REVOKED NULL
/* clang-format on */

#endif
