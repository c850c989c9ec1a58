/*
 * local.h - private interface of the local backend (a host directory per
 * filesystem_id), shared by backend_local.c and the local_*.c files.
 *
 * Confinement rests on two things.  Every guest name is one checked path
 * segment resolved with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
 * RESOLVE_NO_MAGICLINKS) or an *at() call that does not follow the last
 * component, relative to a node's O_PATH descriptor.  And every node is an
 * O_PATH descriptor that pins its inode, so later operations act on that
 * inode and never on a name that may since have been replaced.
 *
 * Nodes and open files are reference counted: a worker holds a reference
 * while it uses the descriptor, so a concurrent FORGET or RELEASE can never
 * close (and let the kernel reuse) a descriptor another worker is using.
 */
#ifndef OCCFS_LOCAL_H
#define OCCFS_LOCAL_H

#include <dirent.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

struct proto_msg;
struct proto_attr;
struct backend_session_opts;

#define LOCAL_ROOT_ID 1u       /* FUSE_ROOT_ID */
#define LOCAL_MAX_FILES 65536u /* open files and directories per session */

struct local_usage; /* quota accounting of one filesystem_id (local_quota.c) */

/* The started backend: what every session shares. */
struct backend {
	char *root; /* holds one directory per filesystem_id */
	pthread_mutex_t lock;
	struct local_usage *usage; /* lock: filesystems with open sessions */
};

/* One inode the guest knows by nodeid. */
struct local_node {
	uint64_t nodeid;  /* immutable */
	int fd;		  /* O_PATH, immutable until the node is freed */
	dev_t dev;	  /* immutable */
	ino_t ino;	  /* immutable */
	mode_t type;	  /* S_IFMT bits, immutable (a type never changes) */
	uint64_t nlookup; /* nodes_lock: references the guest holds */
	uint32_t refs;	  /* nodes_lock: workers using fd right now */
	struct local_node *id_next;  /* nodes_lock: chain in the id table */
	struct local_node *key_next; /* nodes_lock: (dev, ino) chain */
};

enum local_file_kind { LOCAL_FILE = 1, LOCAL_DIR = 2 };

/* One open file or directory, named by a guest fh. */
struct local_file {
	int kind;	/* enum local_file_kind, immutable */
	int fd;		/* immutable until freed; for dirs owned by dir */
	int oflags;	/* open flags as used on the host, immutable */
	bool at_root;	/* a handle on the session root directory, immutable */
	bool dlp_dirty; /* atomic: written through this handle since the last
			 * DLP scan (only counted while DLP is on) */
	uint32_t refs;	/* files_lock: workers using it; the table holds one */
	/* LOCAL_FILE: large WRITEs through this handle one at a time (see
	 * local_data_write). */
	pthread_mutex_t write_lock;
	/* write_lock: the run of large sequential WRITEs not yet handed to
	 * the disk (local_data_write_behind). */
	uint64_t behind_start, behind_end;
	/* Directory stream state, all under dir_lock (READDIRPLUS calls on one
	 * handle may arrive on two workers). */
	pthread_mutex_t dir_lock;
	DIR *dir;
	uint64_t dir_pos; /* cookie the stream is positioned at */
	bool pos_valid;	  /* false after reading an entry that was not sent */
};

/* A slot of the open-file table; fh = gen << 32 | (index + 1). */
struct local_slot {
	struct local_file *f; /* files_lock */
	uint32_t gen;	      /* files_lock: bumped on every release */
	uint32_t next_free;   /* files_lock: free list, index + 1 (0 ends) */
};

struct backend_session {
	unsigned flags; /* BACKEND_SESSION_*, immutable */
	char *fsid;	/* immutable */
	bool can_chown; /* running as root, immutable */
	int root_fd;	/* O_PATH of <root>/<fsid>, owned by the root node */

	pthread_mutex_t nodes_lock;
	struct local_node **by_id;  /* nodes_lock: buckets, size nbuckets */
	struct local_node **by_key; /* nodes_lock: buckets, size nbuckets */
	size_t nbuckets;	    /* nodes_lock: a power of two */
	size_t nnodes;		    /* nodes_lock */
	uint64_t next_id;	    /* nodes_lock: never reused */
	struct local_node *root;    /* immutable, pinned (never forgotten) */

	struct backend *b;	   /* immutable */
	struct local_usage *usage; /* immutable; shared with other sessions */

	pthread_mutex_t files_lock;
	struct local_slot *slots; /* files_lock */
	uint32_t nslots;	  /* files_lock: slots allocated */
	uint32_t free_head;	  /* files_lock: index + 1, 0 = none */
};

/* local_nodes.c */
int local_nodes_init(struct backend_session *s, int root_fd);
void local_nodes_cleanup(struct backend_session *s);
struct local_node *local_node_get(struct backend_session *s, uint64_t nodeid);
int local_node_get_dir(struct backend_session *s, uint64_t nodeid,
		       struct local_node **out);
void local_node_put(struct backend_session *s, struct local_node *n);
int local_node_adopt(struct backend_session *s, int fd, const struct stat *st,
		     struct proto_attr *attr);
int local_node_ref_again(struct backend_session *s, struct local_node *n,
			 struct proto_attr *attr);
void local_node_forget(struct backend_session *s, uint64_t nodeid,
		       uint64_t count);
int local_node_lookup(struct backend_session *s, int dirfd, const char *name,
		      struct proto_attr *attr);
void local_attr_fill(struct proto_attr *a, const struct stat *st,
		     uint64_t nodeid);
int local_node_stat(struct local_node *n, struct stat *st);
/* Stat n and fill attr for a reply. */
int local_node_attr(struct local_node *n, struct proto_attr *attr);
int local_proc_path(char *buf, size_t size, int fd);
int local_reopen(struct local_node *n, int flags);
int local_name_check(const char *name);
int local_openat2(int dirfd, const char *name, int flags, mode_t mode);

/* local_meta.c: ownership and mode of a new entry, then its node */
int local_meta_adopt_new(struct backend_session *s, struct local_node *parent,
			 int fd, const struct proto_msg *req, mode_t type,
			 struct proto_attr *attr);

/*
 * local_quota.c: usage of one filesystem_id against its quota.  Accounting
 * starts with the first session that has a quota (a scan of the tree) and
 * then follows every change the broker makes: bytes are the sizes of
 * regular files (each inode once), inodes every entry below the root.  A
 * file unlinked while open stays counted until its last close.
 */
struct local_qop {
	struct local_usage *u; /* NULL: nothing to account */
	uint64_t size0;	       /* the file's size before the operation */
};

int local_quota_attach(struct backend_session *s, const char *fsid,
		       const struct backend_session_opts *o);
void local_quota_detach(struct backend_session *s);
/* Is usage being counted for s's filesystem? */
bool local_quota_on(const struct backend_session *s);
void local_quota_set(struct backend_session *s, uint64_t bytes,
		     uint64_t inodes);
/*
 * Before an operation that may change the size of the file open as fd:
 * *room is how far the file may grow (UINT64_MAX: no limit).  0 or -errno;
 * on 0 local_quota_end must follow.
 */
int local_quota_begin(struct backend_session *s, int fd, struct local_qop *q,
		      uint64_t *room);
void local_quota_end(struct local_qop *q, int fd);
/* A new entry: take one inode (-EDQUOT when none is left), or give back. */
int local_quota_inode_take(struct backend_session *s);
void local_quota_inode_give(struct backend_session *s);
/* st (stat before removal) was unlinked, removed or replaced. */
void local_quota_removed(struct backend_session *s, const struct stat *st);
/* An I/O descriptor was opened or is about to be closed. */
void local_quota_file_open(struct backend_session *s, int fd);
void local_quota_file_close(struct backend_session *s, int fd);
/* STATFS: replace capacity with the quota; 1 when it did. */
int local_quota_statfs(struct backend_session *s, uint64_t frsize,
		       uint64_t *blocks, uint64_t *bfree, uint64_t *files,
		       uint64_t *ffree);
/* What is counted now (tests, logs). */
void local_quota_usage(struct backend_session *s, uint64_t *bytes,
		       uint64_t *inodes);

/*
 * local_dlp.c: DLP at FLUSH, FSYNC and RELEASE of a file written through
 * that handle.  0, or -EACCES when the scan blocked it: the content then
 * went to <root>/.occfs-quarantine/<id>/ and the file is left empty.
 */
void local_dlp_wrote(struct local_file *f);
int local_dlp_check(struct backend_session *s, struct local_file *f);

/* local_data.c: the open-file table and file I/O */
int local_files_init(struct backend_session *s);
void local_files_cleanup(struct backend_session *s);
int local_file_insert(struct backend_session *s, struct local_file *f,
		      uint64_t *fh);
struct local_file *local_file_get(struct backend_session *s, uint64_t fh,
				  int kind);
void local_file_put(struct backend_session *s, struct local_file *f);
int local_file_release(struct backend_session *s, uint64_t fh, int kind);
/* fsync (or fdatasync when datasync) an open file or directory. */
int local_file_sync(struct backend_session *s, uint64_t fh, int kind,
		    int datasync);

/*
 * Handlers, one per operation.  The dispatch table in backend_local.c maps
 * every PROTO_OPS entry through LOCAL_HANDLER_<NAME>, so an operation added
 * to proto.h without a line here fails to compile.
 */
typedef int (*local_handler)(struct backend_session *s,
			     const struct proto_msg *req,
			     struct proto_msg *rep);

/* clang-format off */
#define LOCAL_HANDLER_PROTO(fn)                                             \
	int fn(struct backend_session *s, const struct proto_msg *req,      \
	       struct proto_msg *rep)
LOCAL_HANDLER_PROTO(local_meta_lookup);
LOCAL_HANDLER_PROTO(local_meta_forget);
LOCAL_HANDLER_PROTO(local_meta_getattr);
LOCAL_HANDLER_PROTO(local_meta_setattr);
LOCAL_HANDLER_PROTO(local_meta_readlink);
LOCAL_HANDLER_PROTO(local_meta_symlink);
LOCAL_HANDLER_PROTO(local_meta_mknod);
LOCAL_HANDLER_PROTO(local_meta_mkdir);
LOCAL_HANDLER_PROTO(local_meta_unlink);
LOCAL_HANDLER_PROTO(local_meta_rmdir);
LOCAL_HANDLER_PROTO(local_meta_rename);
LOCAL_HANDLER_PROTO(local_meta_link);
LOCAL_HANDLER_PROTO(local_meta_statfs);
LOCAL_HANDLER_PROTO(local_meta_setxattr);
LOCAL_HANDLER_PROTO(local_meta_getxattr);
LOCAL_HANDLER_PROTO(local_meta_listxattr);
LOCAL_HANDLER_PROTO(local_meta_removexattr);
LOCAL_HANDLER_PROTO(local_meta_access);
LOCAL_HANDLER_PROTO(local_data_open);
LOCAL_HANDLER_PROTO(local_data_create);
LOCAL_HANDLER_PROTO(local_data_read);
LOCAL_HANDLER_PROTO(local_data_write);
/* Non-zero when req (a WRITE) may run on the event loop. */
int local_data_write_quick(struct backend_session *s,
			   const struct proto_msg *req);
LOCAL_HANDLER_PROTO(local_data_flush);
LOCAL_HANDLER_PROTO(local_data_release);
LOCAL_HANDLER_PROTO(local_data_fsync);
LOCAL_HANDLER_PROTO(local_data_fallocate);
LOCAL_HANDLER_PROTO(local_data_lseek);
LOCAL_HANDLER_PROTO(local_data_copy_file_range);
LOCAL_HANDLER_PROTO(local_dir_opendir);
LOCAL_HANDLER_PROTO(local_dir_readdirplus);
LOCAL_HANDLER_PROTO(local_dir_releasedir);
LOCAL_HANDLER_PROTO(local_dir_fsyncdir);

#define LOCAL_HANDLER_HELLO NULL
#define LOCAL_HANDLER_PING NULL
#define LOCAL_HANDLER_INTERRUPT NULL
#define LOCAL_HANDLER_DLP_FINDINGS NULL
#define LOCAL_HANDLER_LOOKUP local_meta_lookup
#define LOCAL_HANDLER_FORGET local_meta_forget
#define LOCAL_HANDLER_GETATTR local_meta_getattr
#define LOCAL_HANDLER_SETATTR local_meta_setattr
#define LOCAL_HANDLER_READLINK local_meta_readlink
#define LOCAL_HANDLER_SYMLINK local_meta_symlink
#define LOCAL_HANDLER_MKNOD local_meta_mknod
#define LOCAL_HANDLER_MKDIR local_meta_mkdir
#define LOCAL_HANDLER_UNLINK local_meta_unlink
#define LOCAL_HANDLER_RMDIR local_meta_rmdir
#define LOCAL_HANDLER_RENAME local_meta_rename
#define LOCAL_HANDLER_LINK local_meta_link
#define LOCAL_HANDLER_OPEN local_data_open
#define LOCAL_HANDLER_CREATE local_data_create
#define LOCAL_HANDLER_READ local_data_read
#define LOCAL_HANDLER_WRITE local_data_write
#define LOCAL_HANDLER_FLUSH local_data_flush
#define LOCAL_HANDLER_RELEASE local_data_release
#define LOCAL_HANDLER_FSYNC local_data_fsync
#define LOCAL_HANDLER_OPENDIR local_dir_opendir
#define LOCAL_HANDLER_READDIRPLUS local_dir_readdirplus
#define LOCAL_HANDLER_RELEASEDIR local_dir_releasedir
#define LOCAL_HANDLER_FSYNCDIR local_dir_fsyncdir
#define LOCAL_HANDLER_STATFS local_meta_statfs
#define LOCAL_HANDLER_SETXATTR local_meta_setxattr
#define LOCAL_HANDLER_GETXATTR local_meta_getxattr
#define LOCAL_HANDLER_LISTXATTR local_meta_listxattr
#define LOCAL_HANDLER_REMOVEXATTR local_meta_removexattr
#define LOCAL_HANDLER_FALLOCATE local_data_fallocate
#define LOCAL_HANDLER_LSEEK local_data_lseek
#define LOCAL_HANDLER_COPY_FILE_RANGE local_data_copy_file_range
#define LOCAL_HANDLER_ACCESS local_meta_access
#define LOCAL_HANDLER_INVAL_ENTRY NULL
#define LOCAL_HANDLER_INVAL_INODE NULL
#define LOCAL_HANDLER_SESSION_REVOKED NULL
/* clang-format on */

#endif
