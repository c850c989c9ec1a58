/*
 * proto.h - the occfs file-operation RPC, defined once.
 *
 * Every operation is one line of PROTO_OPS with a fixed wire number, the field
 * schema of its request and of its reply, and flags.  The enum, the name table,
 * the schema table and every dispatch table are generated from that list, so a
 * new operation is added here and nowhere else.  doc/protocol.md describes the
 * same thing in prose; change both together and note it in the changelog there.
 *
 * Wire numbers are forever: never renumber, only append.
 *
 * Only codec.c includes msgpack; the rest of the code sees struct proto_msg.
 */
#ifndef OCCFS_PROTO_H
#define OCCFS_PROTO_H

#include <stddef.h>
#include <stdint.h>

struct buf;

#define PROTO_VERSION 1

/* Largest READ/WRITE payload and the frame ceiling derived from it. */
#define PROTO_MAX_PAYLOAD (1024u * 1024u)
#define PROTO_MAX_FRAME (PROTO_MAX_PAYLOAD + 64u * 1024u)
#define PROTO_MAX_NAME 255u	/* one path segment or xattr name */
#define PROTO_MAX_TARGET 4095u	/* symlink target */
#define PROTO_MAX_XATTR 65536u	/* xattr value, as in Linux */
#define PROTO_MAX_DIRENTS 4096u /* entries in one READDIRPLUS reply */
#define PROTO_MAX_HANDLE 8192u	/* session handle (JWT) bytes */
#define PROTO_MAX_REASON 512u	/* error reason string */
/* DLP_FINDINGS: most findings per reply, and the JSON document's size. */
#define PROTO_MAX_FINDINGS 100u
#define PROTO_MAX_FINDINGS_JSON (256u * 1024u)

/* HELLO feature bits (negotiated: reply = request & broker support). */
#define PROTO_FEAT_ZSTD 0x1u  /* frame bodies may be zstd-compressed */
#define PROTO_FEAT_INVAL 0x2u /* broker pushes INVAL_ENTRY / INVAL_INODE */
/* FLUSH does nothing in this session (no DLP scan at close): may be skipped */
#define PROTO_FEAT_NOFLUSH 0x4u
/* Replies of OPF_PATTR ops may end with the parent directory's attributes */
#define PROTO_FEAT_PATTR 0x8u
#define PROTO_FEAT_ALL                                             \
	(PROTO_FEAT_ZSTD | PROTO_FEAT_INVAL | PROTO_FEAT_NOFLUSH | \
	 PROTO_FEAT_PATTR)

/* HELLO reply flags. */
#define PROTO_HELLO_RDONLY 0x1u /* intent read/preview: mutations get EROFS */
/* Writes are staged at the broker, uploaded at close/fsync (s3): the client
 * may let the whole host's dirty-page limit govern its writeback. */
#define PROTO_HELLO_STAGED 0x2u

/* Message kinds: element 0 of every frame. */
enum proto_kind { PROTO_REQ = 0, PROTO_REP = 1, PROTO_PUSH = 2 };

/* Operation flags. */
/* OPF_MUTATES: changes the filesystem, so EROFS on read-only sessions. */
#define OPF_MUTATES 0x1u
#define OPF_NOREPLY 0x2u /* no reply is sent (FORGET) */
#define OPF_PUSH 0x4u	 /* broker -> client only */
#define OPF_SESSION 0x8u /* handled by the RPC core, never by a backend */
/*
 * OPF_PATTR: a successful reply may carry one more field after its schema,
 * "A": the attributes of the directory the entry was made in or removed
 * from (i; for LINK j; for RENAME the source directory i) as they were
 * after the operation.  Sent only when PROTO_FEAT_PATTR was negotiated.
 */
#define OPF_PATTR 0x10u

/*
 * Field letters used in the schemas (the encoding of each is in proto_fields
 * below and in doc/protocol.md):
 *   v version   F features  P max_payload f flags   m mode    w whence
 *   s setattr valid mask    i ino       j ino2      h fh      k fh2
 *   o off       p off2      l len       r rdev      t target request id
 *   n name      N name2     d data      a attr      S statfs  D dirents
 *   A parent directory's attr (optional, last; see OPF_PATTR)
 *
 * X(NAME, wire number, request schema, reply schema, flags)
 */
/* clang-format off */
#define PROTO_OPS(X)                                                        \
	X(HELLO, 1, "vFPd", "vFPfin", OPF_SESSION)                          \
	X(PING, 2, "", "", OPF_SESSION)                                      \
	X(INTERRUPT, 3, "t", "", OPF_SESSION | OPF_NOREPLY)                  \
	X(LOOKUP, 4, "in", "a", 0)                                           \
	X(FORGET, 5, "il", "", OPF_NOREPLY)                                  \
	X(GETATTR, 6, "ih", "a", 0)                                          \
	X(SETATTR, 7, "ihsa", "a", OPF_MUTATES)                              \
	X(READLINK, 8, "i", "d", 0)                                          \
	X(SYMLINK, 9, "inN", "a", OPF_MUTATES | OPF_PATTR)                   \
	X(MKNOD, 10, "inmr", "a", OPF_MUTATES | OPF_PATTR)                   \
	X(MKDIR, 11, "inm", "a", OPF_MUTATES | OPF_PATTR)                    \
	X(UNLINK, 12, "in", "", OPF_MUTATES | OPF_PATTR)                     \
	X(RMDIR, 13, "in", "", OPF_MUTATES | OPF_PATTR)                      \
	X(RENAME, 14, "injNf", "", OPF_MUTATES | OPF_PATTR)                  \
	X(LINK, 15, "ijN", "a", OPF_MUTATES | OPF_PATTR)                     \
	X(OPEN, 16, "if", "hf", 0)                                           \
	X(CREATE, 17, "inmf", "ahf", OPF_MUTATES | OPF_PATTR)                \
	X(READ, 18, "ihol", "d", 0)                                          \
	X(WRITE, 19, "ihodf", "l", OPF_MUTATES)                              \
	X(FLUSH, 20, "ih", "", 0)                                            \
	X(RELEASE, 21, "ihf", "", 0)                                         \
	X(FSYNC, 22, "ihf", "", 0)                                           \
	X(OPENDIR, 23, "if", "h", 0)                                         \
	X(READDIRPLUS, 24, "ihol", "D", 0)                                   \
	X(RELEASEDIR, 25, "ih", "", 0)                                       \
	X(FSYNCDIR, 26, "ihf", "", 0)                                        \
	X(STATFS, 27, "i", "S", 0)                                           \
	X(SETXATTR, 28, "indf", "", OPF_MUTATES)                             \
	X(GETXATTR, 29, "inl", "ld", 0)                                      \
	X(LISTXATTR, 30, "il", "ld", 0)                                      \
	X(REMOVEXATTR, 31, "in", "", OPF_MUTATES)                            \
	X(FALLOCATE, 32, "ihmol", "", OPF_MUTATES)                           \
	X(LSEEK, 33, "ihow", "o", 0)                                         \
	X(COPY_FILE_RANGE, 34, "ihojkplf", "l", OPF_MUTATES)                 \
	X(ACCESS, 35, "im", "", 0)                                           \
	X(DLP_FINDINGS, 36, "l", "d", OPF_SESSION)                           \
	X(INVAL_ENTRY, 100, "in", "", OPF_PUSH)                              \
	X(INVAL_INODE, 101, "iol", "", OPF_PUSH)                             \
	X(SESSION_REVOKED, 102, "n", "", OPF_PUSH)
/* clang-format on */

enum proto_op {
#define PROTO_ENUM(name, num, req, rep, flags) PROTO_OP_##name = num,
	PROTO_OPS(PROTO_ENUM)
#undef PROTO_ENUM
	    PROTO_OP_MAX = 103 /* one past the largest wire number */
};

/*
 * Attributes as the broker reports them.  nodeid is the broker's handle for
 * the inode (what FUSE calls the node id); ino is the st_ino shown to
 * applications.  nodeid 0 in a dirent means "no lookup reference taken".
 */
struct proto_attr {
	uint64_t nodeid, gen, ino;
	uint32_t mode, nlink, uid, gid;
	uint64_t rdev, size, blocks;
	uint32_t blksize;
	int64_t atime, mtime, ctime;
	uint32_t atime_ns, mtime_ns, ctime_ns;
};

struct proto_statfs {
	uint64_t bsize, frsize, blocks, bfree, bavail, files, ffree, favail;
	uint64_t namemax;
};

struct proto_dirent {
	char *name;   /* NUL-terminated, owned by the message */
	uint64_t off; /* cookie to resume after this entry */
	struct proto_attr attr;
};

/* SETATTR valid mask ("s"), wire values (independent of FUSE's). */
#define PROTO_SET_MODE 0x01u
#define PROTO_SET_UID 0x02u
#define PROTO_SET_GID 0x04u
#define PROTO_SET_SIZE 0x08u
#define PROTO_SET_ATIME 0x10u
#define PROTO_SET_MTIME 0x20u
#define PROTO_SET_ATIME_NOW 0x40u
#define PROTO_SET_MTIME_NOW 0x80u
#define PROTO_SET_CTIME 0x100u

/* RENAME flags ("f"), wire values. */
#define PROTO_RENAME_NOREPLACE 0x1u
#define PROTO_RENAME_EXCHANGE 0x2u

/* OPEN/CREATE flags ("f") travel as Linux open(2) flags; reply "f" bits: */
#define PROTO_OPEN_DIRECT_IO 0x1u
#define PROTO_OPEN_KEEP_CACHE 0x2u

/*
 * One decoded or to-be-encoded message.  Only the fields named by the op's
 * schema are meaningful.  Strings are NUL-terminated and owned by the message
 * (freed by proto_msg_cleanup).  data either points into the frame it was
 * decoded from (data_owned == NULL; keep the frame alive) or into data_owned,
 * a malloc'd buffer the message frees.
 */
struct proto_msg {
	uint8_t kind;	   /* enum proto_kind */
	uint32_t op;	   /* enum proto_op */
	uint64_t id;	   /* request id, echoed by the reply; 0 for pushes */
	uint32_t uid, gid; /* requests: caller's credentials */
	int32_t err;	   /* replies: 0 or a positive host errno */
	char *reason;	   /* replies with err != 0: optional text, owned */

	uint32_t version, features, max_payload;
	uint32_t flags, mode, whence, valid;
	uint64_t ino, ino2, fh, fh2, off, off2, len, rdev, target;
	char *name, *name2;
	const uint8_t *data;
	size_t data_len;
	void *data_owned;
	/* Encoding only: the data_len payload bytes are left out.  The
	 * encoder writes the bin header alone; the sender puts the bytes
	 * where proto_encode_gap says (proto_encode: right after the
	 * message, where "d" is its last element). */
	uint8_t data_follows;
	struct proto_attr attr;
	struct proto_attr pattr; /* OPF_PATTR replies: valid if has_pattr */
	uint8_t has_pattr;
	struct proto_statfs st;
	struct proto_dirent *dirents;
	size_t ndirents;
};

/* Static description of each op, indexed by wire number; NULL name = unused. */
struct proto_opinfo {
	const char *name;
	const char *req;
	const char *rep;
	unsigned flags;
};

const struct proto_opinfo *proto_opinfo(uint32_t op); /* NULL if unknown */
const char *proto_op_name(uint32_t op);		      /* "?" if unknown */

void proto_msg_init(struct proto_msg *m);
void proto_msg_cleanup(struct proto_msg *m);

/*
 * Encode m as one msgpack array (the frame body, no length prefix) appended
 * to out.  Host errno in m->err is mapped to the wire code here.
 * Returns 0 or -errno (-EINVAL for an unknown op or a field over its limit).
 */
int proto_encode(const struct proto_msg *m, struct buf *out);
/*
 * The same, for a message with data_follows whose "d" need not be last:
 * *gap is the offset in out where the data_len left-out bytes belong
 * (SIZE_MAX without data_follows).
 */
int proto_encode_gap(const struct proto_msg *m, struct buf *out, size_t *gap);

/*
 * Decode one frame body.  Bounds-checked; rejects unknown ops, wrong kinds,
 * schema mismatches, oversize fields and trailing bytes with -EBADMSG (or
 * -EPROTO for an unknown op), setting *why to a static explanation when why
 * is non-NULL.  On success m->data may point into body.
 */
int proto_decode(const uint8_t *body, size_t len, struct proto_msg *m,
		 const char **why);

#endif
