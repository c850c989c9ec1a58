/*
 * codec.c - struct proto_msg <-> msgpack frame bodies (see proto.h).
 *
 * The only file that knows msgpack.  Encoding uses msgpack-c's packer writing
 * into a struct buf.  Decoding is a hand-written, schema-directed reader
 * rather than msgpack-c's unpacker: the unpacker allocates array, map and
 * string storage from the counts a peer declares before it has seen the
 * bytes, and skipping unknown nesting is exactly what a hostile peer wants
 * us to do.  Guarding it would need a full pre-scan, i.e. a second parser.
 * The reader below only ever asks for the type the schema expects at each
 * position, so nesting depth is fixed by the schema (at most 4: message,
 * dirent list, dirent, attr), it never allocates more than the bytes present
 * can justify, and bin fields are returned zero-copy as pointers into the
 * body.
 *
 * Wire format, version 1.  Every frame body is one msgpack array:
 *
 *   request  [0, id, op, uid, gid, <request fields>]
 *   reply    [1, id, op, errwire, <reply fields>]   errwire == 0
 *            [1, id, op, errwire]                     errwire != 0
 *            [1, id, op, errwire, reason]             errwire != 0
 *   push     [2, 0, op, <request fields>]
 *
 * id, op, uid, gid and errwire are unsigned ints (op and uid/gid/errwire
 * fit in 32 bits).  errwire is the errmap.h wire code; unknown codes decode
 * as EIO.  reason is a str of at most PROTO_MAX_REASON bytes (longer
 * reasons are truncated by the encoder) without NUL.  Fields follow the op's
 * schema string in proto.h, one array element per letter:
 *
 *   v F P f m w s      uint32 (any msgpack unsigned int format, <= 2^32-1)
 *   i j h k o p l r t  uint64
 *   n                  str, 1..PROTO_MAX_NAME bytes, no NUL; also no '/'
 *                      where it is a directory entry (every op but the
 *                      xattr ops and SESSION_REVOKED); in the HELLO reply
 *                      it is the filesystem_id
 *   N                  str, no NUL: for RENAME and LINK the new entry name
 *                      (1..PROTO_MAX_NAME, no '/'), for SYMLINK the target
 *                      (1..PROTO_MAX_TARGET)
 *   d                  bin: READ/WRITE <= PROTO_MAX_PAYLOAD, HELLO (the
 *                      session handle) <= PROTO_MAX_HANDLE, xattr ops
 *                      <= PROTO_MAX_XATTR, READLINK <= PROTO_MAX_TARGET,
 *                      DLP_FINDINGS (a JSON document, not checked here)
 *                      <= PROTO_MAX_FINDINGS_JSON
 *   a                  array of 17 ints, struct proto_attr order:
 *                      [nodeid, gen, ino, mode, nlink, uid, gid, rdev,
 *                       size, blocks, blksize, atime, mtime, ctime,
 *                       atime_ns, mtime_ns, ctime_ns]
 *                      mode..gid, blksize, *_ns are uint32 with *_ns < 1e9;
 *                      atime, mtime, ctime are signed int64 seconds
 *   S                  array of 9 uint64, struct proto_statfs order:
 *                      [bsize, frsize, blocks, bfree, bavail, files, ffree,
 *                       favail, namemax]
 *   D                  array of at most PROTO_MAX_DIRENTS [name, off, a]
 *                      (name as for n in a directory entry, off uint64)
 *   A                  as a: the parent directory's attributes.  Never in
 *                      a schema string: a successful reply of an op with
 *                      OPF_PATTR may carry it as one extra, last element
 *                      (m->has_pattr says whether it did or is to)
 *
 * The decoder rejects with -EBADMSG: a kind/op mismatch (push op as request
 * or reply, ordinary op as push), a push id other than 0, a wrong element
 * count, any other msgpack type than the one expected (so no nil, map,
 * float, ext, and no extra nesting), out-of-range values and trailing
 * bytes.  An unknown op gives -EPROTO.  On any failure m->kind, m->id and
 * m->op keep what decoded, so the caller can still answer the request.
 */
#include "proto.h"

#include "buf.h"
#include "errmap.h"

#include <errno.h>
#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CODEC_NATTR 17u
#define CODEC_NSTATFS 9u
/* Smallest encoding of one dirent: array hdr, 1-byte str, off, attr. */
#define CODEC_MIN_DIRENT (1u + 2u + 1u + 1u + CODEC_NATTR)
#define CODEC_NS_MAX 1000000000u

/* clang-format off */
static const struct proto_opinfo codec_ops[PROTO_OP_MAX] = {
#define CODEC_INFO(name, num, req, rep, flags) [num] = { #name, req, rep, flags },
	PROTO_OPS(CODEC_INFO)
#undef CODEC_INFO
};
/* clang-format on */

/* How each field letter travels and where it lives in struct proto_msg. */
enum codec_fkind {
	F_NONE,
	F_U32,
	F_U64,
	F_NAME,
	F_NAME2,
	F_DATA,
	F_ATTR,
	F_STATFS,
	F_DIRENTS,
	F_PATTR
};

struct codec_field {
	unsigned char kind;
	unsigned short off;
	const char *bad_type;  /* wrong msgpack type or count */
	const char *bad_value; /* right type, value out of range */
};

/* clang-format off */
#define U32(c, s, member)                                                   \
	[c] = { F_U32, offsetof(struct proto_msg, member),                  \
		"field " s ": expected unsigned int",                       \
		"field " s ": value exceeds uint32" }
#define U64(c, s, member)                                                   \
	[c] = { F_U64, offsetof(struct proto_msg, member),                  \
		"field " s ": expected unsigned int", NULL }
#define OTHER(c, s, kind, type, value)                                      \
	[c] = { kind, 0, "field " s ": " type, "field " s ": " value }

static const struct codec_field codec_fields[128] = {
	U32('v', "v", version), U32('F', "F", features),
	U32('P', "P", max_payload), U32('f', "f", flags), U32('m', "m", mode),
	U32('w', "w", whence), U32('s', "s", valid),
	U64('i', "i", ino), U64('j', "j", ino2), U64('h', "h", fh),
	U64('k', "k", fh2), U64('o', "o", off), U64('p', "p", off2),
	U64('l', "l", len), U64('r', "r", rdev), U64('t', "t", target),
	OTHER('n', "n", F_NAME, "expected str", "bad name"),
	OTHER('N', "N", F_NAME2, "expected str", "bad name"),
	OTHER('d', "d", F_DATA, "expected bin", "data too long"),
	OTHER('a', "a", F_ATTR, "expected array of 17 ints", "value out of range"),
	OTHER('S', "S", F_STATFS, "expected array of 9 ints", "value out of range"),
	OTHER('D', "D", F_DIRENTS, "expected array of [name, off, attr]",
	      "too many entries"),
	OTHER('A', "A", F_PATTR, "expected array of 17 ints", "value out of range"),
};

#undef U32
#undef U64
#undef OTHER
/* clang-format on */

const struct proto_opinfo *proto_opinfo(uint32_t op)
{
	if (op >= PROTO_OP_MAX || !codec_ops[op].name)
		return NULL;
	return &codec_ops[op];
}

const char *proto_op_name(uint32_t op)
{
	const struct proto_opinfo *oi = proto_opinfo(op);

	return oi ? oi->name : "?";
}

void proto_msg_init(struct proto_msg *m)
{
	memset(m, 0, sizeof(*m));
}

void proto_msg_cleanup(struct proto_msg *m)
{
	size_t i;

	free(m->name);
	free(m->name2);
	free(m->reason);
	for (i = 0; m->dirents && i < m->ndirents; i++)
		free(m->dirents[i].name);
	free(m->dirents);
	free(m->data_owned);
	proto_msg_init(m);
}

/* ---- rules shared by encoder and decoder ------------------------------- */

/* Is the name field c of op a directory entry name (no '/')? */
static int codec_is_segment(uint32_t op, char c)
{
	if (c == 'N')
		return op == PROTO_OP_RENAME || op == PROTO_OP_LINK;
	switch (op) {
	case PROTO_OP_SETXATTR:
	case PROTO_OP_GETXATTR:
	case PROTO_OP_REMOVEXATTR:
	case PROTO_OP_SESSION_REVOKED:
		return 0;
	default:
		return 1;
	}
}

static size_t codec_name_max(uint32_t op, char c)
{
	if (c == 'N' && !codec_is_segment(op, c))
		return PROTO_MAX_TARGET;
	return PROTO_MAX_NAME;
}

static size_t codec_data_max(uint32_t op)
{
	switch (op) {
	case PROTO_OP_READ:
	case PROTO_OP_WRITE:
		return PROTO_MAX_PAYLOAD;
	case PROTO_OP_HELLO:
		return PROTO_MAX_HANDLE;
	case PROTO_OP_READLINK:
		return PROTO_MAX_TARGET;
	case PROTO_OP_DLP_FINDINGS:
		return PROTO_MAX_FINDINGS_JSON;
	default:
		return PROTO_MAX_XATTR;
	}
}

/* Returns NULL if s[0..n) is acceptable as a name, else why not. */
static const char *codec_check_name(const char *s, size_t n, size_t max,
				    int segment, char c)
{
	int is_n = c == 'n';

	if (n == 0)
		return is_n ? "field n: empty name" : "field N: empty name";
	if (n > max)
		return is_n ? "field n: name too long"
			    : "field N: name too long";
	if (memchr(s, '\0', n))
		return is_n ? "field n: name contains NUL"
			    : "field N: name contains NUL";
	if (segment && memchr(s, '/', n))
		return is_n ? "field n: name contains '/'"
			    : "field N: name contains '/'";
	return NULL;
}

static const char *codec_check_attr(const struct proto_attr *a)
{
	if (a->atime_ns >= CODEC_NS_MAX || a->mtime_ns >= CODEC_NS_MAX ||
	    a->ctime_ns >= CODEC_NS_MAX)
		return "field a: nanoseconds out of range";
	return NULL;
}

/* ---- encoder ------------------------------------------------------------ */

struct codec_enc {
	msgpack_packer pk;
	struct buf *out;
	int err;    /* first buf error; later writes are ignored */
	size_t gap; /* data_follows: where the payload belongs in out */
};

static int codec_write(void *data, const char *p, size_t n)
{
	struct codec_enc *e = data;
	int rc;

	if (e->err)
		return -1;
	rc = buf_append(e->out, p, n);
	if (rc) {
		e->err = rc;
		return -1;
	}
	return 0;
}

static void enc_attr(struct codec_enc *e, const struct proto_attr *a)
{
	msgpack_packer *pk = &e->pk;

	msgpack_pack_array(pk, CODEC_NATTR);
	msgpack_pack_uint64(pk, a->nodeid);
	msgpack_pack_uint64(pk, a->gen);
	msgpack_pack_uint64(pk, a->ino);
	msgpack_pack_uint32(pk, a->mode);
	msgpack_pack_uint32(pk, a->nlink);
	msgpack_pack_uint32(pk, a->uid);
	msgpack_pack_uint32(pk, a->gid);
	msgpack_pack_uint64(pk, a->rdev);
	msgpack_pack_uint64(pk, a->size);
	msgpack_pack_uint64(pk, a->blocks);
	msgpack_pack_uint32(pk, a->blksize);
	msgpack_pack_int64(pk, a->atime);
	msgpack_pack_int64(pk, a->mtime);
	msgpack_pack_int64(pk, a->ctime);
	msgpack_pack_uint32(pk, a->atime_ns);
	msgpack_pack_uint32(pk, a->mtime_ns);
	msgpack_pack_uint32(pk, a->ctime_ns);
}

static void enc_statfs(struct codec_enc *e, const struct proto_statfs *st)
{
	const uint64_t v[CODEC_NSTATFS] = {st->bsize, st->frsize, st->blocks,
					   st->bfree, st->bavail, st->files,
					   st->ffree, st->favail, st->namemax};
	size_t i;

	msgpack_pack_array(&e->pk, CODEC_NSTATFS);
	for (i = 0; i < CODEC_NSTATFS; i++)
		msgpack_pack_uint64(&e->pk, v[i]);
}

static int enc_name(struct codec_enc *e, const char *s, uint32_t op, char c)
{
	size_t n;

	if (!s)
		return -EINVAL;
	n = strlen(s);
	if (codec_check_name(s, n, codec_name_max(op, c),
			     codec_is_segment(op, c), c))
		return -EINVAL;
	msgpack_pack_str_with_body(&e->pk, s, n);
	return 0;
}

static int enc_dirents(struct codec_enc *e, const struct proto_msg *m)
{
	size_t i;
	int rc;

	if (m->ndirents > PROTO_MAX_DIRENTS || (m->ndirents && !m->dirents))
		return -EINVAL;
	msgpack_pack_array(&e->pk, m->ndirents);
	for (i = 0; i < m->ndirents; i++) {
		const struct proto_dirent *de = &m->dirents[i];

		if (codec_check_attr(&de->attr))
			return -EINVAL;
		msgpack_pack_array(&e->pk, 3);
		/* Dirent names obey the rules of a LOOKUP name. */
		rc = enc_name(e, de->name, PROTO_OP_LOOKUP, 'n');
		if (rc)
			return rc;
		msgpack_pack_uint64(&e->pk, de->off);
		enc_attr(e, &de->attr);
	}
	return 0;
}

static int enc_field(struct codec_enc *e, const struct proto_msg *m, char c)
{
	const struct codec_field *fd = &codec_fields[(unsigned char)c & 127];
	const char *base = (const char *)m;
	uint32_t u32;
	uint64_t u64;

	switch (fd->kind) {
	case F_U32:
		memcpy(&u32, base + fd->off, sizeof(u32));
		msgpack_pack_uint32(&e->pk, u32);
		return 0;
	case F_U64:
		memcpy(&u64, base + fd->off, sizeof(u64));
		msgpack_pack_uint64(&e->pk, u64);
		return 0;
	case F_NAME:
		return enc_name(e, m->name, m->op, c);
	case F_NAME2:
		return enc_name(e, m->name2, m->op, c);
	case F_DATA:
		if (m->data_len > codec_data_max(m->op) ||
		    (m->data_len && !m->data && !m->data_follows))
			return -EINVAL;
		if (m->data_follows) {
			msgpack_pack_bin(&e->pk, (uint32_t)m->data_len);
			e->gap = e->out->len;
		} else
			msgpack_pack_bin_with_body(&e->pk, m->data,
						   m->data_len);
		return 0;
	case F_ATTR:
		if (codec_check_attr(&m->attr))
			return -EINVAL;
		enc_attr(e, &m->attr);
		return 0;
	case F_STATFS:
		enc_statfs(e, &m->st);
		return 0;
	case F_DIRENTS:
		return enc_dirents(e, m);
	case F_PATTR:
		if (codec_check_attr(&m->pattr))
			return -EINVAL;
		enc_attr(e, &m->pattr);
		return 0;
	default:
		return -EINVAL; /* a letter proto.h uses but codec.c lacks */
	}
}

/* Does m, a reply, carry the optional parent attributes ("A")? */
static int codec_has_pattr(const struct proto_msg *m,
			   const struct proto_opinfo *oi)
{
	return m->kind == PROTO_REP && !m->err && (oi->flags & OPF_PATTR) &&
	       m->has_pattr;
}

/* Check kind against op flags; returns the schema to encode or NULL. */
static const char *enc_header(struct codec_enc *e, const struct proto_msg *m,
			      const struct proto_opinfo *oi)
{
	size_t nreq = strlen(oi->req), nrep = strlen(oi->rep);
	int push = oi->flags & OPF_PUSH;
	size_t rlen;

	switch (m->kind) {
	case PROTO_REQ:
		if (push)
			return NULL;
		msgpack_pack_array(&e->pk, 5 + nreq);
		msgpack_pack_uint8(&e->pk, PROTO_REQ);
		msgpack_pack_uint64(&e->pk, m->id);
		msgpack_pack_uint32(&e->pk, m->op);
		msgpack_pack_uint32(&e->pk, m->uid);
		msgpack_pack_uint32(&e->pk, m->gid);
		return oi->req;
	case PROTO_REP:
		if (push || m->err < 0)
			return NULL;
		msgpack_pack_array(&e->pk,
				   m->err ? 4 + !!m->reason
					  : 4 + nrep + codec_has_pattr(m, oi));
		msgpack_pack_uint8(&e->pk, PROTO_REP);
		msgpack_pack_uint64(&e->pk, m->id);
		msgpack_pack_uint32(&e->pk, m->op);
		msgpack_pack_uint32(&e->pk, errmap_to_wire(m->err));
		if (!m->err)
			return oi->rep;
		if (m->reason) {
			/* A reason is for humans: cut it rather than fail. */
			rlen = strnlen(m->reason, PROTO_MAX_REASON);
			msgpack_pack_str_with_body(&e->pk, m->reason, rlen);
		}
		return "";
	case PROTO_PUSH:
		if (!push)
			return NULL;
		msgpack_pack_array(&e->pk, 3 + nreq);
		msgpack_pack_uint8(&e->pk, PROTO_PUSH);
		msgpack_pack_uint8(&e->pk, 0);
		msgpack_pack_uint32(&e->pk, m->op);
		return oi->req;
	default:
		return NULL;
	}
}

/*
 * An op this build does not know can still be answered with an error (an
 * error reply has no schema), so a peer speaking a newer protocol learns
 * ENOSYS for the very op it sent.  Nothing else is encoded or decoded for
 * an unknown op.
 */
static const struct proto_opinfo codec_unknown_op = {
    .name = "UNKNOWN", .req = "", .rep = ""};

int proto_encode_gap(const struct proto_msg *m, struct buf *out, size_t *gap)
{
	const struct proto_opinfo *oi = proto_opinfo(m->op);
	struct codec_enc e = {.out = out, .gap = SIZE_MAX};
	size_t start = out->len;
	const char *schema;
	int rc = -EINVAL;

	if (!oi && m->kind == PROTO_REP && m->err > 0)
		oi = &codec_unknown_op;
	if (!oi)
		goto out;
	msgpack_packer_init(&e.pk, &e, codec_write);
	schema = enc_header(&e, m, oi);
	if (!schema)
		goto out;
	/* Left-out bytes need a "d" to leave them out of. */
	if (m->data_follows && !strchr(schema, 'd'))
		goto out;
	for (rc = 0; *schema && !rc; schema++)
		rc = enc_field(&e, m, *schema);
	if (!rc && codec_has_pattr(m, oi))
		rc = enc_field(&e, m, 'A');
	if (!rc && e.err)
		rc = e.err;
out:
	if (rc)
		out->len = start; /* never leave half a message behind */
	else if (gap)
		*gap = e.gap;
	return rc;
}

int proto_encode(const struct proto_msg *m, struct buf *out)
{
	size_t start = out->len, gap;
	int rc = proto_encode_gap(m, out, &gap);

	/* Here the left-out bytes can only follow the whole message. */
	if (!rc && m->data_follows && gap != out->len) {
		out->len = start;
		rc = -EINVAL;
	}
	return rc;
}

/* ---- decoder ------------------------------------------------------------ */

struct codec_rd {
	const uint8_t *p, *end;
	const char *why;
};

static const char codec_why_trunc[] = "truncated message";
static const char codec_why_type[] = "unexpected msgpack type";

static int rd_fail(struct codec_rd *r, const char *why)
{
	r->why = why;
	return -EBADMSG;
}

/* Read an n-byte big-endian number (n <= 8). */
static int rd_be(struct codec_rd *r, unsigned n, uint64_t *v)
{
	unsigned i;

	if ((size_t)(r->end - r->p) < n)
		return rd_fail(r, codec_why_trunc);
	for (*v = 0, i = 0; i < n; i++)
		*v = *v << 8 | *r->p++;
	return 0;
}

static int rd_tag(struct codec_rd *r, uint8_t *tag)
{
	if (r->p == r->end)
		return rd_fail(r, codec_why_trunc);
	*tag = *r->p++;
	return 0;
}

/* Any msgpack integer; *neg says whether *v is to be read as negative. */
static int rd_int_raw(struct codec_rd *r, uint64_t *v, int *neg)
{
	static const unsigned width[4] = {1, 2, 4, 8};
	uint8_t tag;
	int rc;

	*neg = 0;
	if ((rc = rd_tag(r, &tag)))
		return rc;
	if (tag <= 0x7f) {
		*v = tag;
		return 0;
	}
	if (tag >= 0xe0) {
		*v = (uint64_t)(int64_t)(int8_t)tag;
		*neg = 1;
		return 0;
	}
	if (tag >= 0xcc && tag <= 0xcf)
		return rd_be(r, width[tag - 0xcc], v);
	if (tag >= 0xd0 && tag <= 0xd3) {
		unsigned w = width[tag - 0xd0];

		if ((rc = rd_be(r, w, v)))
			return rc;
		if (w < 8 && (*v >> (8 * w - 1)))
			*v |= ~(uint64_t)0 << (8 * w); /* sign-extend */
		*neg = (int64_t)*v < 0;
		return 0;
	}
	r->p--;
	return rd_fail(r, codec_why_type);
}

static int rd_uint(struct codec_rd *r, uint64_t *v)
{
	int neg, rc;

	if ((rc = rd_int_raw(r, v, &neg)))
		return rc;
	return neg ? rd_fail(r, codec_why_type) : 0;
}

static int rd_u32(struct codec_rd *r, uint32_t *v, const char *range_why)
{
	uint64_t x;
	int rc;

	if ((rc = rd_uint(r, &x)))
		return rc;
	if (x > UINT32_MAX)
		return rd_fail(r, range_why);
	*v = (uint32_t)x;
	return 0;
}

static int rd_i64(struct codec_rd *r, int64_t *v)
{
	uint64_t x;
	int neg, rc;

	if ((rc = rd_int_raw(r, &x, &neg)))
		return rc;
	if (!neg && x > INT64_MAX)
		return rd_fail(r, "field a: time out of range");
	*v = (int64_t)x;
	return 0;
}

static int rd_array(struct codec_rd *r, uint32_t *n)
{
	uint64_t v;
	uint8_t tag;
	int rc;

	if ((rc = rd_tag(r, &tag)))
		return rc;
	if (tag >= 0x90 && tag <= 0x9f) {
		*n = tag & 0x0f;
		return 0;
	}
	if (tag != 0xdc && tag != 0xdd) {
		r->p--;
		return rd_fail(r, codec_why_type);
	}
	if ((rc = rd_be(r, tag == 0xdc ? 2 : 4, &v)))
		return rc;
	/* Every element takes at least one byte. */
	if (v > (uint64_t)(r->end - r->p))
		return rd_fail(r, "array count exceeds message");
	*n = (uint32_t)v;
	return 0;
}

/* A str (bin == 0) or bin; *p points into the body. */
static int rd_raw(struct codec_rd *r, int bin, const uint8_t **p, size_t *n)
{
	uint64_t v;
	uint8_t tag;
	unsigned w;
	int rc;

	if ((rc = rd_tag(r, &tag)))
		return rc;
	if (!bin && tag >= 0xa0 && tag <= 0xbf) {
		v = tag & 0x1f;
	} else {
		if (!bin && tag >= 0xd9 && tag <= 0xdb)
			w = 1u << (tag - 0xd9);
		else if (bin && tag >= 0xc4 && tag <= 0xc6)
			w = 1u << (tag - 0xc4);
		else {
			r->p--;
			return rd_fail(r, codec_why_type);
		}
		if ((rc = rd_be(r, w, &v)))
			return rc;
	}
	if (v > (uint64_t)(r->end - r->p))
		return rd_fail(r, bin ? "bin length exceeds message"
				      : "str length exceeds message");
	*p = r->p;
	*n = (size_t)v;
	r->p += v;
	return 0;
}

static int rd_name(struct codec_rd *r, char **out, size_t max, int segment,
		   char c)
{
	const uint8_t *p;
	const char *why;
	size_t n;
	int rc;

	if ((rc = rd_raw(r, 0, &p, &n)))
		return rc;
	why = codec_check_name((const char *)p, n, max, segment, c);
	if (why)
		return rd_fail(r, why);
	*out = malloc(n + 1);
	if (!*out)
		return -ENOMEM;
	memcpy(*out, p, n);
	(*out)[n] = '\0';
	return 0;
}

static int rd_attr(struct codec_rd *r, struct proto_attr *a)
{
	const char *range = "field a: value exceeds uint32";
	uint32_t n;
	int rc;

	if ((rc = rd_array(r, &n)))
		return rc;
	if (n != CODEC_NATTR)
		return rd_fail(r, "field a: expected array of 17 ints");
	if ((rc = rd_uint(r, &a->nodeid)) || (rc = rd_uint(r, &a->gen)) ||
	    (rc = rd_uint(r, &a->ino)) || (rc = rd_u32(r, &a->mode, range)) ||
	    (rc = rd_u32(r, &a->nlink, range)) ||
	    (rc = rd_u32(r, &a->uid, range)) ||
	    (rc = rd_u32(r, &a->gid, range)) || (rc = rd_uint(r, &a->rdev)) ||
	    (rc = rd_uint(r, &a->size)) || (rc = rd_uint(r, &a->blocks)) ||
	    (rc = rd_u32(r, &a->blksize, range)) ||
	    (rc = rd_i64(r, &a->atime)) || (rc = rd_i64(r, &a->mtime)) ||
	    (rc = rd_i64(r, &a->ctime)) ||
	    (rc = rd_u32(r, &a->atime_ns, range)) ||
	    (rc = rd_u32(r, &a->mtime_ns, range)) ||
	    (rc = rd_u32(r, &a->ctime_ns, range)))
		return rc;
	if (codec_check_attr(a))
		return rd_fail(r, codec_check_attr(a));
	return 0;
}

static int rd_statfs(struct codec_rd *r, struct proto_statfs *st)
{
	uint64_t *v[CODEC_NSTATFS] = {&st->bsize, &st->frsize, &st->blocks,
				      &st->bfree, &st->bavail, &st->files,
				      &st->ffree, &st->favail, &st->namemax};
	uint32_t n, i;
	int rc;

	if ((rc = rd_array(r, &n)))
		return rc;
	if (n != CODEC_NSTATFS)
		return rd_fail(r, "field S: expected array of 9 ints");
	for (i = 0; i < n; i++)
		if ((rc = rd_uint(r, v[i])))
			return rc;
	return 0;
}

static int rd_dirents(struct codec_rd *r, struct proto_msg *m)
{
	uint32_t n, i, k;
	int rc;

	if ((rc = rd_array(r, &n)))
		return rc;
	if (n > PROTO_MAX_DIRENTS)
		return rd_fail(r, "field D: too many entries");
	/* Allocate only what the remaining bytes could possibly describe. */
	if ((uint64_t)n * CODEC_MIN_DIRENT > (uint64_t)(r->end - r->p))
		return rd_fail(r, "field D: count exceeds message");
	if (n == 0)
		return 0;
	m->dirents = calloc(n, sizeof(*m->dirents));
	if (!m->dirents)
		return -ENOMEM;
	m->ndirents = n;
	for (i = 0; i < n; i++) {
		struct proto_dirent *de = &m->dirents[i];

		if ((rc = rd_array(r, &k)))
			return rc;
		if (k != 3)
			return rd_fail(
			    r, "field D: entry is not [name, off, attr]");
		if ((rc = rd_name(r, &de->name, PROTO_MAX_NAME, 1, 'n')) ||
		    (rc = rd_uint(r, &de->off)) || (rc = rd_attr(r, &de->attr)))
			return rc;
	}
	return 0;
}

static int dec_field(struct codec_rd *r, struct proto_msg *m, char c)
{
	const struct codec_field *fd = &codec_fields[(unsigned char)c & 127];
	char *base = (char *)m;
	const uint8_t *p;
	uint32_t u32;
	uint64_t u64;
	size_t n;
	int rc;

	switch (fd->kind) {
	case F_U32:
		if ((rc = rd_u32(r, &u32, fd->bad_value)))
			return rc;
		memcpy(base + fd->off, &u32, sizeof(u32));
		return 0;
	case F_U64:
		if ((rc = rd_uint(r, &u64)))
			return rc;
		memcpy(base + fd->off, &u64, sizeof(u64));
		return 0;
	case F_NAME:
	case F_NAME2:
		return rd_name(r, c == 'n' ? &m->name : &m->name2,
			       codec_name_max(m->op, c),
			       codec_is_segment(m->op, c), c);
	case F_DATA:
		if ((rc = rd_raw(r, 1, &p, &n)))
			return rc;
		if (n > codec_data_max(m->op))
			return rd_fail(r, fd->bad_value);
		m->data = p;
		m->data_len = n;
		return 0;
	case F_ATTR:
		return rd_attr(r, &m->attr);
	case F_STATFS:
		return rd_statfs(r, &m->st);
	case F_DIRENTS:
		return rd_dirents(r, m);
	case F_PATTR:
		if ((rc = rd_attr(r, &m->pattr)))
			return rc;
		m->has_pattr = 1;
		return 0;
	default:
		return rd_fail(r, "schema letter unknown to the codec");
	}
}

/* Decode the fields of schema; a type error names the field. */
static int dec_fields(struct codec_rd *r, struct proto_msg *m,
		      const char *schema)
{
	int rc;

	for (; *schema; schema++) {
		rc = dec_field(r, m, *schema);
		if (rc == -EBADMSG && r->why == codec_why_type)
			r->why =
			    codec_fields[(unsigned char)*schema & 127].bad_type;
		if (rc)
			return rc;
	}
	return 0;
}

/* Reply tail after errwire: fields, or an optional reason on error. */
static int dec_reply(struct codec_rd *r, struct proto_msg *m, uint32_t n,
		     const struct proto_opinfo *oi)
{
	const uint8_t *p;
	uint32_t wire;
	size_t len;
	int rc;

	if ((rc = rd_u32(r, &wire, "error code exceeds uint32")))
		return rc;
	m->err = errmap_from_wire(wire);
	if (!wire && n == 5 + strlen(oi->rep) && (oi->flags & OPF_PATTR)) {
		rc = dec_fields(r, m, oi->rep);
		return rc ? rc : dec_fields(r, m, "A");
	}
	if (!wire)
		return n == 4 + strlen(oi->rep)
			   ? dec_fields(r, m, oi->rep)
			   : rd_fail(r, "wrong element count for reply");
	if (n == 4)
		return 0;
	if (n != 5)
		return rd_fail(r, "wrong element count for error reply");
	if ((rc = rd_raw(r, 0, &p, &len)))
		return rc == -EBADMSG && r->why == codec_why_type
			   ? rd_fail(r, "reason: expected str")
			   : rc;
	if (len > PROTO_MAX_REASON)
		return rd_fail(r, "reason too long");
	if (memchr(p, '\0', len))
		return rd_fail(r, "reason contains NUL");
	m->reason = strndup((const char *)p, len);
	return m->reason ? 0 : -ENOMEM;
}

static int dec_body(struct codec_rd *r, struct proto_msg *m)
{
	const struct proto_opinfo *oi;
	uint64_t kind, op;
	uint32_t n;
	int rc;

	if ((rc = rd_array(r, &n)))
		return rc == -EBADMSG && r->why == codec_why_type
			   ? rd_fail(r, "message is not an array")
			   : rc;
	if (n < 3)
		return rd_fail(r, "message array too short");
	if ((rc = rd_uint(r, &kind)) || (rc = rd_uint(r, &m->id)) ||
	    (rc = rd_uint(r, &op)))
		return rc;
	if (kind > PROTO_PUSH)
		return rd_fail(r, "unknown message kind");
	m->kind = (uint8_t)kind;
	m->op = op > UINT32_MAX ? UINT32_MAX : (uint32_t)op;
	oi = proto_opinfo(m->op);
	if (!oi && kind == PROTO_REP)
		oi = &codec_unknown_op; /* an error reply, or refused below */
	if (!oi) {
		r->why = "unknown op";
		return -EPROTO;
	}
	if (!!(oi->flags & OPF_PUSH) != (kind == PROTO_PUSH))
		return rd_fail(r, kind == PROTO_PUSH
				      ? "op is not a push"
				      : "push op in a request or reply");
	switch (kind) {
	case PROTO_REQ:
		if (n != 5 + strlen(oi->req))
			return rd_fail(r, "wrong element count for request");
		if ((rc = rd_u32(r, &m->uid, "uid exceeds uint32")) ||
		    (rc = rd_u32(r, &m->gid, "gid exceeds uint32")))
			return rc;
		return dec_fields(r, m, oi->req);
	case PROTO_REP:
		if (n < 4)
			return rd_fail(r, "wrong element count for reply");
		rc = dec_reply(r, m, n, oi);
		if (!rc && oi == &codec_unknown_op && !m->err) {
			r->why = "unknown op";
			return -EPROTO;
		}
		return rc;
	default:
		if (m->id != 0)
			return rd_fail(r, "push id is not 0");
		if (n != 3 + strlen(oi->req))
			return rd_fail(r, "wrong element count for push");
		return dec_fields(r, m, oi->req);
	}
}

int proto_decode(const uint8_t *body, size_t len, struct proto_msg *m,
		 const char **why)
{
	struct codec_rd r = {body, body + len, NULL};
	uint32_t op;
	uint64_t id;
	uint8_t kind;
	int rc;

	proto_msg_init(m);
	if (!body)
		r.end = r.p;
	rc = dec_body(&r, m);
	if (!rc && r.p != r.end)
		rc = rd_fail(&r, "trailing bytes after message");
	if (rc == -ENOMEM)
		r.why = "out of memory";
	if (rc) {
		/* Keep the header (zero where it did not decode) so the
		 * caller can answer the request with an error. */
		kind = m->kind, op = m->op, id = m->id;
		proto_msg_cleanup(m);
		m->kind = kind, m->op = op, m->id = id;
		if (why)
			*why = r.why ? r.why : "malformed message";
	}
	return rc;
}
