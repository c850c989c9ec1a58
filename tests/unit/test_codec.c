/*
 * test_codec.c - round trips of every operation and the decoder's refusals.
 *
 * Valid messages are built from proto.h's own op list, so a new operation is
 * covered without touching this file.  Malformed input is written byte by
 * byte (the tests do not use msgpack-c) to pin down exactly what the decoder
 * must refuse.
 */
#include "buf.h"
#include "errmap.h"
#include "proto.h"
#include "unit.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static uint8_t payload[3000];

/* ---- building and comparing messages ----------------------------------- */

static void fill_attr(struct proto_attr *a, uint64_t seed)
{
	a->nodeid = 0x0123456789abcdefull + seed;
	a->gen = 7 + seed;
	a->ino = UINT64_MAX - seed;
	a->mode = 0100644;
	a->nlink = 3;
	a->uid = UINT32_MAX;
	a->gid = 100000;
	a->rdev = 0x10305;
	a->size = (1ull << 40) + seed;
	a->blocks = 4096;
	a->blksize = 65536;
	a->atime = -1;
	a->mtime = INT64_MIN;
	a->ctime = INT64_MAX;
	a->atime_ns = 999999999;
	a->mtime_ns = 0;
	a->ctime_ns = 123456789;
}

static char *dupstr(const char *s)
{
	char *p = strdup(s);

	if (!p)
		abort();
	return p;
}

/* One case per line reads as a table. */
/* clang-format off */
static void fill_fields(struct proto_msg *m, const char *schema)
{
	size_t i;

	for (; *schema; schema++) {
		switch (*schema) {
		case 'v': m->version = PROTO_VERSION; break;
		case 'F': m->features = PROTO_FEAT_ALL; break;
		case 'P': m->max_payload = PROTO_MAX_PAYLOAD; break;
		case 'f': m->flags = 0x80000001u; break;
		case 'm': m->mode = 040755; break;
		case 'w': m->whence = 4; break;
		case 's': m->valid = PROTO_SET_MODE | PROTO_SET_CTIME; break;
		case 'i': m->ino = 1ull << 63; break;
		case 'j': m->ino2 = 42; break;
		case 'h': m->fh = 0xfedcba9876543210ull; break;
		case 'k': m->fh2 = 65536; break;
		case 'o': m->off = 1ull << 33; break;
		case 'p': m->off2 = 255; break;
		case 'l': m->len = 128; break;
		case 'r': m->rdev = 0x800; break;
		case 't': m->target = UINT64_MAX; break;
		case 'n': m->name = dupstr("name-\xc3\xa9"); break;
		case 'N':
			m->name2 = dupstr(m->op == PROTO_OP_SYMLINK
						  ? "../some/target"
						  : "second");
			break;
		case 'd':
			m->data = payload;
			m->data_len = sizeof(payload);
			break;
		case 'a': fill_attr(&m->attr, m->op); break;
		case 'S':
			m->st = (struct proto_statfs){ 4096, 512, 1ull << 50, 2,
						       3, 4, 5, 6, 255 };
			break;
		case 'D':
			m->ndirents = 3;
			m->dirents = calloc(3, sizeof(*m->dirents));
			if (!m->dirents)
				abort();
			for (i = 0; i < 3; i++) {
				m->dirents[i].name =
					dupstr(i == 0 ? "." : i == 1 ? ".." : "f");
				m->dirents[i].off = i + 1;
				fill_attr(&m->dirents[i].attr, i);
			}
			m->dirents[0].attr.nodeid = 0;
			break;
		}
	}
}

/* clang-format on */

static int attr_eq(const struct proto_attr *a, const struct proto_attr *b)
{
	return a->nodeid == b->nodeid && a->gen == b->gen && a->ino == b->ino &&
	       a->mode == b->mode && a->nlink == b->nlink && a->uid == b->uid &&
	       a->gid == b->gid && a->rdev == b->rdev && a->size == b->size &&
	       a->blocks == b->blocks && a->blksize == b->blksize &&
	       a->atime == b->atime && a->mtime == b->mtime &&
	       a->ctime == b->ctime && a->atime_ns == b->atime_ns &&
	       a->mtime_ns == b->mtime_ns && a->ctime_ns == b->ctime_ns;
}

static int str_eq(const char *a, const char *b)
{
	return a && b && strcmp(a, b) == 0;
}

/* clang-format off */
/* Compare every field the schema names; returns the first differing letter. */
static char msg_diff(const struct proto_msg *a, const struct proto_msg *b,
		     const char *schema)
{
	size_t i;
	int eq;

	for (; *schema; schema++) {
		switch (*schema) {
		case 'v': eq = a->version == b->version; break;
		case 'F': eq = a->features == b->features; break;
		case 'P': eq = a->max_payload == b->max_payload; break;
		case 'f': eq = a->flags == b->flags; break;
		case 'm': eq = a->mode == b->mode; break;
		case 'w': eq = a->whence == b->whence; break;
		case 's': eq = a->valid == b->valid; break;
		case 'i': eq = a->ino == b->ino; break;
		case 'j': eq = a->ino2 == b->ino2; break;
		case 'h': eq = a->fh == b->fh; break;
		case 'k': eq = a->fh2 == b->fh2; break;
		case 'o': eq = a->off == b->off; break;
		case 'p': eq = a->off2 == b->off2; break;
		case 'l': eq = a->len == b->len; break;
		case 'r': eq = a->rdev == b->rdev; break;
		case 't': eq = a->target == b->target; break;
		case 'n': eq = str_eq(a->name, b->name); break;
		case 'N': eq = str_eq(a->name2, b->name2); break;
		case 'd':
			eq = a->data_len == b->data_len &&
			     (!a->data_len ||
			      memcmp(a->data, b->data, a->data_len) == 0);
			break;
		case 'a': eq = attr_eq(&a->attr, &b->attr); break;
		case 'S':
			eq = memcmp(&a->st, &b->st, sizeof(a->st)) == 0;
			break;
		case 'D':
			eq = a->ndirents == b->ndirents;
			for (i = 0; eq && i < a->ndirents; i++)
				eq = str_eq(a->dirents[i].name,
					    b->dirents[i].name) &&
				     a->dirents[i].off == b->dirents[i].off &&
				     attr_eq(&a->dirents[i].attr,
					     &b->dirents[i].attr);
			break;
		default: eq = 0; break;
		}
		if (!eq)
			return *schema;
	}
	return 0;
}

/* clang-format on */

/* Encode m, decode it again, compare; returns the encoded length. */
static size_t round_trip(const struct proto_msg *m, const char *schema,
			 struct buf *enc)
{
	struct proto_msg d;
	const char *why = NULL;
	int rc;

	buf_reset(enc);
	rc = proto_encode(m, enc);
	CHECK_EQ(rc, 0);
	if (rc)
		return 0;
	rc = proto_decode(enc->p, enc->len, &d, &why);
	CHECK_EQ(rc, 0);
	if (rc) {
		fprintf(stderr, "op %s kind %d: %s\n", proto_op_name(m->op),
			m->kind, why);
		return 0;
	}
	CHECK_EQ(d.kind, m->kind);
	CHECK_EQ(d.op, m->op);
	CHECK(d.id == (m->kind == PROTO_PUSH ? 0 : m->id));
	CHECK_EQ(d.err, m->err);
	if (m->kind == PROTO_REQ) {
		CHECK_EQ(d.uid, m->uid);
		CHECK_EQ(d.gid, m->gid);
	}
	if (m->reason)
		CHECK_STR(d.reason, m->reason);
	else
		CHECK(d.reason == NULL);
	CHECK_EQ(msg_diff(m, &d, schema), 0);
	/* Zero-copy: bin fields point into the encoded body. */
	if (strchr(schema, 'd'))
		CHECK(d.data >= enc->p &&
		      d.data + d.data_len <= enc->p + enc->len);
	proto_msg_cleanup(&d);
	CHECK(d.name == NULL && d.dirents == NULL && d.ndirents == 0);
	return enc->len;
}

/* Every strict prefix of a valid message is refused. */
static void check_truncations(const struct buf *enc)
{
	struct proto_msg d;
	const char *why;
	size_t i;
	int bad = 0;

	for (i = 0; i < enc->len; i++) {
		why = NULL;
		if (proto_decode(enc->p, i, &d, &why) != -EBADMSG || !why)
			bad++;
	}
	CHECK_EQ(bad, 0);
}

static void test_all_ops(void)
{
	const struct proto_opinfo *oi;
	struct proto_msg m;
	struct buf enc;
	uint32_t op;
	int nops = 0;

	buf_init(&enc, 0);
	for (op = 0; op < PROTO_OP_MAX + 5; op++) {
		oi = proto_opinfo(op);
		if (!oi) {
			CHECK_STR(proto_op_name(op), "?");
			continue;
		}
		nops++;
		CHECK(strcmp(proto_op_name(op), "?") != 0);
		proto_msg_init(&m);
		m.op = op;
		m.id = (oi->flags & OPF_PUSH) ? 0 : 0x1122334455667788ull + op;
		if (oi->flags & OPF_PUSH) {
			m.kind = PROTO_PUSH;
			fill_fields(&m, oi->req);
			round_trip(&m, oi->req, &enc);
			check_truncations(&enc);
			proto_msg_cleanup(&m);
			continue;
		}
		m.kind = PROTO_REQ;
		m.uid = 1000;
		m.gid = UINT32_MAX;
		fill_fields(&m, oi->req);
		round_trip(&m, oi->req, &enc);
		check_truncations(&enc);
		proto_msg_cleanup(&m);

		m.op = op;
		m.kind = PROTO_REP;
		m.id = op;
		fill_fields(&m, oi->rep);
		round_trip(&m, oi->rep, &enc);
		check_truncations(&enc);
		proto_msg_cleanup(&m);

		/* Errors: fields are not sent, with and without a reason. */
		m.op = op;
		m.kind = PROTO_REP;
		m.id = 9;
		m.err = ENOENT;
		round_trip(&m, "", &enc);
		CHECK_EQ(enc.len, 5);
		m.err = EKEYREVOKED;
		m.reason = dupstr("session revoked by operator");
		round_trip(&m, "", &enc);
		check_truncations(&enc);
		proto_msg_cleanup(&m);
	}
	CHECK(nops >= 38);
	buf_cleanup(&enc);
}

/* ---- exact bytes --------------------------------------------------------- */

static void test_exact_bytes(void)
{
	static const uint8_t lookup[] = {0x97, 0x00, 0x05, 0x04, 0xcd, 0x03,
					 0xe8, 0x00, 0x01, 0xa2, 'a',  'b'};
	static const uint8_t err[] = {0x95, 0x01, 0x05, 0x04, 0x02, 0xa1, 'x'};
	static const uint8_t push[] = {0x95, 0x02, 0x00, 0x64, 0x07, 0xa1, 'z'};
	struct proto_msg m;
	struct buf b;

	buf_init(&b, 0);
	proto_msg_init(&m);
	m.kind = PROTO_REQ;
	m.op = PROTO_OP_LOOKUP;
	m.id = 5;
	m.uid = 1000;
	m.gid = 0;
	m.ino = 1;
	m.name = dupstr("ab");
	CHECK_EQ(proto_encode(&m, &b), 0);
	CHECK(b.len == sizeof(lookup) && memcmp(b.p, lookup, b.len) == 0);
	proto_msg_cleanup(&m);

	/* ENOENT travels as wire code 2 with the reason after it. */
	buf_reset(&b);
	m.kind = PROTO_REP;
	m.op = PROTO_OP_LOOKUP;
	m.id = 5;
	m.err = ENOENT;
	m.reason = dupstr("x");
	CHECK_EQ(proto_encode(&m, &b), 0);
	CHECK(b.len == sizeof(err) && memcmp(b.p, err, b.len) == 0);
	proto_msg_cleanup(&m);

	CHECK_EQ(proto_decode(push, sizeof(push), &m, NULL), 0);
	CHECK_EQ(m.kind, PROTO_PUSH);
	CHECK_EQ(m.op, PROTO_OP_INVAL_ENTRY);
	CHECK_EQ(m.ino, 7);
	CHECK_STR(m.name, "z");
	proto_msg_cleanup(&m);
	buf_cleanup(&b);
}

/* ---- hand-written msgpack for malformed input -------------------------- */

struct mp {
	uint8_t b[16384];
	size_t n;
};

static void mp_byte(struct mp *w, uint8_t c)
{
	if (w->n < sizeof(w->b))
		w->b[w->n++] = c;
}

static void mp_be(struct mp *w, uint64_t v, unsigned bytes)
{
	while (bytes--)
		mp_byte(w, (uint8_t)(v >> (8 * bytes)));
}

static void mp_uint(struct mp *w, uint64_t v)
{
	if (v < 128) {
		mp_byte(w, (uint8_t)v);
	} else if (v <= UINT32_MAX) {
		mp_byte(w, 0xce);
		mp_be(w, v, 4);
	} else {
		mp_byte(w, 0xcf);
		mp_be(w, v, 8);
	}
}

static void mp_array(struct mp *w, uint32_t n)
{
	if (n < 16) {
		mp_byte(w, 0x90 | n);
	} else {
		mp_byte(w, 0xdd);
		mp_be(w, n, 4);
	}
}

static void mp_str(struct mp *w, const void *s, size_t n)
{
	mp_byte(w, 0xdb);
	mp_be(w, n, 4);
	if (n <= sizeof(w->b) - w->n) {
		memcpy(w->b + w->n, s, n);
		w->n += n;
	}
}

static void mp_attr(struct mp *w, uint32_t nfields, uint64_t ns)
{
	uint32_t i;

	mp_array(w, nfields);
	for (i = 0; i < nfields; i++)
		mp_uint(w, i >= 14 ? ns : 1);
}

/* Start a request header [0, 1, op, 0, 0 ...] of n elements. */
static void mp_req(struct mp *w, uint32_t n, uint32_t op)
{
	w->n = 0;
	mp_array(w, n);
	mp_uint(w, PROTO_REQ);
	mp_uint(w, 1);
	mp_uint(w, op);
	mp_uint(w, 0);
	mp_uint(w, 0);
}

/* Decode w, expect rc, and when why_part is set, a why containing it. */
static void expect_bad(const struct mp *w, int rc_want, const char *why_part,
		       int line)
{
	struct proto_msg d;
	const char *why = NULL;
	int rc = proto_decode(w->b, w->n, &d, &why);

	if (rc != rc_want || !why || (why_part && !strstr(why, why_part))) {
		unit_failed++;
		fprintf(stderr, "%s:%d: rc %d why \"%s\", want %d \"%s\"\n",
			__FILE__, line, rc, why ? why : "(null)", rc_want,
			why_part ? why_part : "");
	} else {
		unit_passed++;
	}
	CHECK(d.name == NULL && d.dirents == NULL && d.data == NULL);
	proto_msg_cleanup(&d);
}

#define EXPECT_BAD(w, rc, why_part) expect_bad(w, rc, why_part, __LINE__)

static int decodes(const struct mp *w)
{
	struct proto_msg d;
	int rc = proto_decode(w->b, w->n, &d, NULL);

	proto_msg_cleanup(&d);
	return rc;
}

static void test_bad_structure(void)
{
	struct mp w;
	struct proto_msg d;
	size_t i;
	const char *why = NULL;

	/* The good base case, so the failures below are the edits. */
	mp_req(&w, 7, PROTO_OP_LOOKUP);
	mp_uint(&w, 1);
	mp_str(&w, "a", 1);
	CHECK_EQ(decodes(&w), 0);

	mp_byte(&w, 0xc0);
	EXPECT_BAD(&w, -EBADMSG, "trailing bytes");

	w.n = 0;
	EXPECT_BAD(&w, -EBADMSG, "truncated");
	mp_byte(&w, 0x80); /* a map */
	EXPECT_BAD(&w, -EBADMSG, "not an array");
	w.n = 0;
	mp_array(&w, 2);
	mp_uint(&w, 0);
	mp_uint(&w, 1);
	EXPECT_BAD(&w, -EBADMSG, "too short");

	/* Unknown op: -EPROTO, but id and op survive for the error reply. */
	mp_req(&w, 5, 99);
	CHECK_EQ(proto_decode(w.b, w.n, &d, &why), -EPROTO);
	CHECK_EQ(d.id, 1);
	CHECK_EQ(d.op, 99);
	CHECK_STR(why, "unknown op");
	proto_msg_cleanup(&d);
	mp_req(&w, 5, 0);
	EXPECT_BAD(&w, -EPROTO, "unknown op");
	w.n = 0;
	mp_array(&w, 5);
	mp_uint(&w, 0);
	mp_uint(&w, 1);
	mp_uint(&w, 1ull << 40);
	EXPECT_BAD(&w, -EPROTO, "unknown op");

	/* An error reply to an unknown op round-trips; a success reply or a
	 * request with that op still does not encode. */
	{
		struct proto_msg e, back;
		struct buf out;

		buf_init(&out, 4096);
		proto_msg_init(&e);
		e.kind = PROTO_REP;
		e.id = 7;
		e.op = 99;
		e.err = ENOSYS;
		e.reason = "unknown op";
		CHECK_EQ(proto_encode(&e, &out), 0);
		CHECK_EQ(proto_decode(out.p, out.len, &back, &why), 0);
		CHECK_EQ(back.op, 99);
		CHECK_EQ(back.id, 7);
		CHECK_EQ(back.err, ENOSYS);
		CHECK_STR(back.reason, "unknown op");
		proto_msg_cleanup(&back);
		out.len = 0;
		e.err = 0;
		e.reason = NULL;
		CHECK_EQ(proto_encode(&e, &out), -EINVAL);
		CHECK_EQ(out.len, 0);
		e.kind = PROTO_REQ;
		CHECK_EQ(proto_encode(&e, &out), -EINVAL);
		buf_cleanup(&out);
	}
	w.n = 0;
	mp_array(&w, 4); /* a success reply for an unknown op */
	mp_uint(&w, PROTO_REP);
	mp_uint(&w, 1);
	mp_uint(&w, 99);
	mp_uint(&w, 0);
	EXPECT_BAD(&w, -EPROTO, "unknown op");

	/* Wrong kinds. */
	mp_req(&w, 7, PROTO_OP_INVAL_ENTRY);
	mp_uint(&w, 1);
	mp_str(&w, "a", 1);
	EXPECT_BAD(&w, -EBADMSG, "push op");
	w.n = 0;
	mp_array(&w, 5);
	mp_uint(&w, PROTO_PUSH);
	mp_uint(&w, 0);
	mp_uint(&w, PROTO_OP_LOOKUP);
	mp_uint(&w, 1);
	mp_str(&w, "a", 1);
	EXPECT_BAD(&w, -EBADMSG, "not a push");
	w.n = 0;
	mp_array(&w, 5);
	mp_uint(&w, PROTO_PUSH);
	mp_uint(&w, 3);
	mp_uint(&w, PROTO_OP_INVAL_ENTRY);
	mp_uint(&w, 1);
	mp_str(&w, "a", 1);
	EXPECT_BAD(&w, -EBADMSG, "push id");
	w.b[1] = 3; /* kind 3 */
	EXPECT_BAD(&w, -EBADMSG, "kind");

	/* Wrong element counts: one field short, one too many. */
	mp_req(&w, 6, PROTO_OP_LOOKUP);
	mp_uint(&w, 1);
	EXPECT_BAD(&w, -EBADMSG, "element count");
	mp_req(&w, 8, PROTO_OP_LOOKUP);
	mp_uint(&w, 1);
	mp_str(&w, "a", 1);
	mp_uint(&w, 1);
	EXPECT_BAD(&w, -EBADMSG, "element count");
	/* Success replies carry all fields; error replies at most a reason. */
	w.n = 0;
	mp_array(&w, 4);
	mp_uint(&w, PROTO_REP);
	mp_uint(&w, 1);
	mp_uint(&w, PROTO_OP_LOOKUP);
	mp_uint(&w, 0);
	EXPECT_BAD(&w, -EBADMSG, "element count");
	w.b[0] = 0x96;
	w.b[4] = 2;
	mp_str(&w, "r", 1);
	mp_str(&w, "s", 1);
	EXPECT_BAD(&w, -EBADMSG, "element count");

	/* Depth bombs: nesting where a scalar belongs, at any depth. */
	w.n = 0;
	for (i = 0; i < 5000; i++)
		mp_byte(&w, 0x91);
	EXPECT_BAD(&w, -EBADMSG, NULL);
	mp_req(&w, 7, PROTO_OP_LOOKUP);
	for (i = 0; i < 3000; i++)
		mp_byte(&w, 0x91);
	EXPECT_BAD(&w, -EBADMSG, "field i");
	w.n = 0;
	mp_array(&w, 1);
	for (i = 0; i < 3000; i++)
		mp_byte(&w, 0x91);
	EXPECT_BAD(&w, -EBADMSG, NULL);
}

static void test_bad_types_and_values(void)
{
	struct mp w;
	struct proto_msg d;
	char big[PROTO_MAX_TARGET + 2];
	size_t base;

	/* ino as a str, name as a bin, nil, float, negative. */
	mp_req(&w, 7, PROTO_OP_LOOKUP);
	mp_str(&w, "1", 1);
	mp_str(&w, "a", 1);
	EXPECT_BAD(&w, -EBADMSG, "field i: expected unsigned int");
	mp_req(&w, 7, PROTO_OP_LOOKUP);
	mp_uint(&w, 1);
	mp_byte(&w, 0xc4);
	mp_byte(&w, 1);
	mp_byte(&w, 'a');
	EXPECT_BAD(&w, -EBADMSG, "field n: expected str");
	mp_req(&w, 7, PROTO_OP_LOOKUP);
	mp_byte(&w, 0xc0);
	mp_str(&w, "a", 1);
	EXPECT_BAD(&w, -EBADMSG, "field i");
	mp_req(&w, 7, PROTO_OP_LOOKUP);
	mp_byte(&w, 0xcb);
	mp_be(&w, 0x3ff0000000000000ull, 8);
	mp_str(&w, "a", 1);
	EXPECT_BAD(&w, -EBADMSG, "field i");
	mp_req(&w, 7, PROTO_OP_LOOKUP);
	mp_byte(&w, 0xff); /* -1 */
	mp_str(&w, "a", 1);
	EXPECT_BAD(&w, -EBADMSG, "field i");
	mp_req(&w, 7, PROTO_OP_LOOKUP);
	mp_byte(&w, 0xd3); /* int64 -2^63 */
	mp_be(&w, 0x8000000000000000ull, 8);
	mp_str(&w, "a", 1);
	EXPECT_BAD(&w, -EBADMSG, "field i");

	/* Non-canonical but valid integer encodings are accepted. */
	mp_req(&w, 7, PROTO_OP_LOOKUP);
	mp_byte(&w, 0xd0); /* int8 +5 */
	mp_byte(&w, 5);
	mp_str(&w, "a", 1);
	CHECK_EQ(proto_decode(w.b, w.n, &d, NULL), 0);
	CHECK_EQ(d.ino, 5);
	proto_msg_cleanup(&d);

	/* uint32 fields: 2^32 - 1 passes, 2^32 does not. */
	mp_req(&w, 8, PROTO_OP_MKDIR);
	mp_uint(&w, 1);
	mp_str(&w, "a", 1);
	mp_uint(&w, UINT32_MAX);
	CHECK_EQ(decodes(&w), 0);
	mp_req(&w, 8, PROTO_OP_MKDIR);
	mp_uint(&w, 1);
	mp_str(&w, "a", 1);
	mp_uint(&w, 1ull << 32);
	EXPECT_BAD(&w, -EBADMSG, "field m: value exceeds uint32");
	w.n = 0;
	mp_array(&w, 5);
	mp_uint(&w, 0);
	mp_uint(&w, 1);
	mp_uint(&w, PROTO_OP_PING);
	mp_uint(&w, 1ull << 32);
	mp_uint(&w, 0);
	EXPECT_BAD(&w, -EBADMSG, "uid");

	/* Names: empty, too long, NUL, '/', and the SYMLINK target rules. */
	memset(big, 'x', sizeof(big));
	mp_req(&w, 7, PROTO_OP_LOOKUP);
	mp_uint(&w, 1);
	mp_str(&w, "", 0);
	EXPECT_BAD(&w, -EBADMSG, "field n: empty name");
	mp_req(&w, 7, PROTO_OP_LOOKUP);
	mp_uint(&w, 1);
	mp_str(&w, big, PROTO_MAX_NAME);
	CHECK_EQ(decodes(&w), 0);
	mp_req(&w, 7, PROTO_OP_LOOKUP);
	mp_uint(&w, 1);
	mp_str(&w, big, PROTO_MAX_NAME + 1);
	EXPECT_BAD(&w, -EBADMSG, "field n: name too long");
	mp_req(&w, 7, PROTO_OP_LOOKUP);
	mp_uint(&w, 1);
	mp_str(&w, "a\0b", 3);
	EXPECT_BAD(&w, -EBADMSG, "field n: name contains NUL");
	mp_req(&w, 7, PROTO_OP_LOOKUP);
	mp_uint(&w, 1);
	mp_str(&w, "../etc", 6);
	EXPECT_BAD(&w, -EBADMSG, "field n: name contains '/'");
	/* xattr names may hold '/'. */
	mp_req(&w, 7, PROTO_OP_REMOVEXATTR);
	mp_uint(&w, 1);
	mp_str(&w, "user.a/b", 8);
	CHECK_EQ(decodes(&w), 0);
	/* A symlink target may hold '/' and be long; a rename target not. */
	mp_req(&w, 8, PROTO_OP_SYMLINK);
	mp_uint(&w, 1);
	mp_str(&w, "l", 1);
	mp_str(&w, big, PROTO_MAX_TARGET);
	big[10] = '/';
	CHECK_EQ(decodes(&w), 0);
	mp_req(&w, 8, PROTO_OP_SYMLINK);
	mp_uint(&w, 1);
	mp_str(&w, "l", 1);
	mp_str(&w, big, PROTO_MAX_TARGET + 1);
	EXPECT_BAD(&w, -EBADMSG, "field N: name too long");
	mp_req(&w, 10, PROTO_OP_RENAME);
	mp_uint(&w, 1);
	mp_str(&w, "a", 1);
	mp_uint(&w, 2);
	mp_str(&w, "b/c", 3);
	mp_uint(&w, 0);
	EXPECT_BAD(&w, -EBADMSG, "field N: name contains '/'");

	/* Attributes: 16 fields, 18 fields, nanoseconds of 1e9. */
	mp_req(&w, 9, PROTO_OP_SETATTR);
	mp_uint(&w, 1);
	mp_uint(&w, 2);
	mp_uint(&w, 3);
	base = w.n;
	mp_attr(&w, 17, 999999999);
	CHECK_EQ(decodes(&w), 0);
	w.n = base;
	mp_attr(&w, 16, 0);
	EXPECT_BAD(&w, -EBADMSG, "field a");
	mp_req(&w, 9, PROTO_OP_SETATTR);
	mp_uint(&w, 1);
	mp_uint(&w, 2);
	mp_uint(&w, 3);
	mp_attr(&w, 18, 0);
	EXPECT_BAD(&w, -EBADMSG, "field a");
	mp_req(&w, 9, PROTO_OP_SETATTR);
	mp_uint(&w, 1);
	mp_uint(&w, 2);
	mp_uint(&w, 3);
	mp_attr(&w, 17, 1000000000);
	EXPECT_BAD(&w, -EBADMSG, "nanoseconds");
}

static void test_huge_counts(void)
{
	struct mp w;
	size_t base;

	/* Top-level array claiming 2^32 - 1 elements in 5 bytes. */
	w.n = 0;
	mp_byte(&w, 0xdd);
	mp_be(&w, UINT32_MAX, 4);
	EXPECT_BAD(&w, -EBADMSG, "count exceeds");
	/* str32, bin32 and array32 lengths far past the end. */
	mp_req(&w, 7, PROTO_OP_LOOKUP);
	mp_uint(&w, 1);
	mp_byte(&w, 0xdb);
	mp_be(&w, UINT32_MAX, 4);
	mp_byte(&w, 'a');
	EXPECT_BAD(&w, -EBADMSG, "str length exceeds");
	mp_req(&w, 10, PROTO_OP_WRITE);
	mp_uint(&w, 1);
	mp_uint(&w, 2);
	mp_uint(&w, 3);
	mp_byte(&w, 0xc6);
	mp_be(&w, UINT32_MAX, 4);
	EXPECT_BAD(&w, -EBADMSG, "bin length exceeds");
	/* A bin that is present but over the op's limit. */
	mp_req(&w, 9, PROTO_OP_HELLO);
	mp_uint(&w, 1);
	mp_uint(&w, 0);
	mp_uint(&w, 0);
	base = w.n;
	mp_byte(&w, 0xc5);
	mp_be(&w, PROTO_MAX_HANDLE, 2);
	memset(w.b + w.n, 'h', PROTO_MAX_HANDLE + 1);
	w.n += PROTO_MAX_HANDLE;
	CHECK_EQ(decodes(&w), 0);
	w.n = base;
	mp_byte(&w, 0xc5);
	mp_be(&w, PROTO_MAX_HANDLE + 1, 2);
	w.n += PROTO_MAX_HANDLE + 1;
	EXPECT_BAD(&w, -EBADMSG, "field d: data too long");

	/* READDIRPLUS reply: dirents counts vs bytes and the hard cap. */
	w.n = 0;
	mp_array(&w, 5);
	mp_uint(&w, PROTO_REP);
	mp_uint(&w, 1);
	mp_uint(&w, PROTO_OP_READDIRPLUS);
	mp_uint(&w, 0);
	base = w.n;
	mp_byte(&w, 0xdd);
	mp_be(&w, PROTO_MAX_DIRENTS + 1, 4);
	EXPECT_BAD(&w, -EBADMSG, "count exceeds");
	w.n = base;
	mp_array(&w, 1000);
	memset(w.b + w.n, 0x93, 1000);
	w.n += 1000;
	EXPECT_BAD(&w, -EBADMSG, "field D: count exceeds message");
	w.n = base;
	mp_array(&w, 2);
	mp_array(&w, 3);
	mp_str(&w, "x", 1);
	mp_uint(&w, 1);
	mp_attr(&w, 17, 0);
	mp_array(&w, 3);
	mp_str(&w, "y/z", 3);
	mp_uint(&w, 2);
	mp_attr(&w, 17, 0);
	EXPECT_BAD(&w, -EBADMSG, "'/'");
	w.n = base;
	mp_array(&w, 2);
	mp_array(&w, 3);
	mp_str(&w, "x", 1);
	mp_uint(&w, 1);
	mp_attr(&w, 17, 0);
	mp_array(&w, 2);
	mp_str(&w, "y", 1);
	mp_uint(&w, 2);
	mp_attr(&w, 17, 0);
	EXPECT_BAD(&w, -EBADMSG, "field D");

	/* Error reasons: 512 bytes pass, 513 do not. */
	w.n = 0;
	mp_array(&w, 5);
	mp_uint(&w, PROTO_REP);
	mp_uint(&w, 1);
	mp_uint(&w, PROTO_OP_PING);
	mp_uint(&w, 13);
	base = w.n;
	memset(w.b + base + 5, 'r', PROTO_MAX_REASON + 1);
	mp_byte(&w, 0xdb);
	mp_be(&w, PROTO_MAX_REASON, 4);
	w.n += PROTO_MAX_REASON;
	CHECK_EQ(decodes(&w), 0);
	w.n = base;
	mp_byte(&w, 0xdb);
	mp_be(&w, PROTO_MAX_REASON + 1, 4);
	w.n += PROTO_MAX_REASON + 1;
	EXPECT_BAD(&w, -EBADMSG, "reason too long");
	w.n = base;
	mp_uint(&w, 7);
	EXPECT_BAD(&w, -EBADMSG, "reason");
}

static void test_encode_refusals(void)
{
	struct proto_msg m;
	struct buf b;
	uint8_t data[PROTO_MAX_XATTR + 1];
	char big[PROTO_MAX_REASON + 100];

	buf_init(&b, 0);
	proto_msg_init(&m);
	m.op = 99;
	CHECK_EQ(proto_encode(&m, &b), -EINVAL);
	m.op = PROTO_OP_INVAL_ENTRY; /* push op as a request */
	m.name = dupstr("a");
	CHECK_EQ(proto_encode(&m, &b), -EINVAL);
	m.kind = PROTO_PUSH;
	CHECK_EQ(proto_encode(&m, &b), 0);
	m.op = PROTO_OP_LOOKUP; /* request op as a push */
	CHECK_EQ(proto_encode(&m, &b), -EINVAL);
	m.kind = 7;
	CHECK_EQ(proto_encode(&m, &b), -EINVAL);
	m.kind = PROTO_REP;
	m.err = -ENOENT;
	CHECK_EQ(proto_encode(&m, &b), -EINVAL);
	m.kind = PROTO_REQ;
	m.err = 0;
	free(m.name);
	m.name = NULL;
	CHECK_EQ(proto_encode(&m, &b), -EINVAL);
	m.name = dupstr("a/b");
	CHECK_EQ(proto_encode(&m, &b), -EINVAL);
	proto_msg_cleanup(&m);

	memset(data, 0, sizeof(data));
	m.kind = PROTO_REQ;
	m.op = PROTO_OP_SETXATTR;
	m.name = dupstr("user.x");
	m.data = data;
	m.data_len = PROTO_MAX_XATTR;
	buf_reset(&b);
	CHECK_EQ(proto_encode(&m, &b), 0);
	m.data_len++;
	buf_reset(&b);
	CHECK_EQ(proto_encode(&m, &b), -EINVAL);
	CHECK_EQ(b.len, 0);
	m.data = NULL;
	m.data_len = 1;
	CHECK_EQ(proto_encode(&m, &b), -EINVAL);
	proto_msg_cleanup(&m);

	m.kind = PROTO_REP;
	m.op = PROTO_OP_READDIRPLUS;
	m.ndirents = 1; /* but no array */
	CHECK_EQ(proto_encode(&m, &b), -EINVAL);
	m.ndirents = 0;
	m.op = PROTO_OP_GETATTR;
	m.attr.mtime_ns = 1000000000;
	CHECK_EQ(proto_encode(&m, &b), -EINVAL);
	CHECK_EQ(b.len, 0);

	/* A long reason is cut to PROTO_MAX_REASON, not refused. */
	memset(big, 'e', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	m.err = EIO;
	m.reason = dupstr(big);
	CHECK_EQ(proto_encode(&m, &b), 0);
	proto_msg_cleanup(&m);
	CHECK_EQ(proto_decode(b.p, b.len, &m, NULL), 0);
	CHECK(m.reason && strlen(m.reason) == PROTO_MAX_REASON);
	CHECK_EQ(m.err, EIO);
	proto_msg_cleanup(&m);
	buf_cleanup(&b);

	/* Out of room: -E2BIG and nothing of the message is left behind. */
	buf_init(&b, 100);
	CHECK_EQ(buf_append(&b, "abc", 3), 0);
	m.kind = PROTO_REQ;
	m.op = PROTO_OP_WRITE;
	m.data = data;
	m.data_len = 200;
	CHECK_EQ(proto_encode(&m, &b), -E2BIG);
	CHECK_EQ(b.len, 3);
	buf_cleanup(&b);
}

/*
 * DLP_FINDINGS: a session op (never a backend's), allowed on read-only
 * sessions; request l = count, reply d = a JSON document of at most
 * PROTO_MAX_FINDINGS_JSON bytes, refused one byte over by both sides.
 */
static void test_dlp_findings(void)
{
	static const char doc[] =
	    "[{\"time\":1718000000,\"rule\":\"aws_keys\",\"severity\":"
	    "\"critical\",\"verdict\":\"block\",\"path\":\"/a/creds\","
	    "\"offset\":12,\"excerpt\":\"AKIA****\",\"quarantine\":null}]";
	const struct proto_opinfo *oi = proto_opinfo(PROTO_OP_DLP_FINDINGS);
	size_t big = PROTO_MAX_FINDINGS_JSON + 1, hdr = 10, i;
	struct proto_msg m, d;
	uint8_t *raw;
	struct buf b;

	CHECK_EQ(PROTO_OP_DLP_FINDINGS, 36);
	CHECK(oi && !strcmp(oi->name, "DLP_FINDINGS"));
	CHECK(oi && (oi->flags & OPF_SESSION) && !(oi->flags & OPF_MUTATES));
	CHECK(PROTO_OP_DLP_FINDINGS < PROTO_OP_INVAL_ENTRY);

	buf_init(&b, 0);
	proto_msg_init(&m);
	m.kind = PROTO_REQ;
	m.op = PROTO_OP_DLP_FINDINGS;
	m.id = 77;
	m.len = PROTO_MAX_FINDINGS;
	CHECK_EQ(proto_encode(&m, &b), 0);
	CHECK_EQ(proto_decode(b.p, b.len, &d, NULL), 0);
	CHECK_EQ(d.op, PROTO_OP_DLP_FINDINGS);
	CHECK_EQ(d.id, 77);
	CHECK_EQ(d.len, PROTO_MAX_FINDINGS);
	proto_msg_cleanup(&d);

	buf_reset(&b);
	m.kind = PROTO_REP;
	m.data = (const uint8_t *)doc;
	m.data_len = sizeof(doc) - 1;
	CHECK_EQ(proto_encode(&m, &b), 0);
	CHECK_EQ(proto_decode(b.p, b.len, &d, NULL), 0);
	CHECK_EQ(d.data_len, sizeof(doc) - 1);
	CHECK(d.data && !memcmp(d.data, doc, sizeof(doc) - 1));
	proto_msg_cleanup(&d);

	/* The limit exactly is encoded; one byte more is refused. */
	raw = calloc(1, big + hdr);
	CHECK(raw != NULL);
	if (!raw)
		goto out;
	memset(raw, ' ', big);
	m.data = raw;
	m.data_len = big - 1;
	buf_reset(&b);
	CHECK_EQ(proto_encode(&m, &b), 0);
	CHECK_EQ(proto_decode(b.p, b.len, &d, NULL), 0);
	CHECK_EQ(d.data_len, big - 1);
	proto_msg_cleanup(&d);
	m.data_len = big;
	buf_reset(&b);
	CHECK_EQ(proto_encode(&m, &b), -EINVAL);

	/* A peer's reply one byte over: [1, 5, 36, 0, bin32 big]. */
	i = 0;
	raw[i++] = 0x95;
	raw[i++] = PROTO_REP;
	raw[i++] = 5;
	raw[i++] = PROTO_OP_DLP_FINDINGS;
	raw[i++] = 0;
	raw[i++] = 0xc6;
	raw[i++] = (uint8_t)(big >> 24);
	raw[i++] = (uint8_t)(big >> 16);
	raw[i++] = (uint8_t)(big >> 8);
	raw[i++] = (uint8_t)big;
	memset(raw + i, ' ', big);
	CHECK_EQ(proto_decode(raw, i + big, &d, NULL), -EBADMSG);
	proto_msg_cleanup(&d);
	/* ... and with the right length, accepted. */
	raw[i - 1] = (uint8_t)(big - 1);
	CHECK_EQ(proto_decode(raw, i + big - 1, &d, NULL), 0);
	proto_msg_cleanup(&d);
	free(raw);
out:
	buf_cleanup(&b);
}

static void test_errors_mapped(void)
{
	struct proto_msg m;
	struct mp w;

	/* An unknown wire code arrives as EIO; a known one as its errno. */
	w.n = 0;
	mp_array(&w, 4);
	mp_uint(&w, PROTO_REP);
	mp_uint(&w, 1);
	mp_uint(&w, PROTO_OP_PING);
	mp_uint(&w, 60000);
	CHECK_EQ(proto_decode(w.b, w.n, &m, NULL), 0);
	CHECK_EQ(m.err, EIO);
	CHECK(m.reason == NULL);
	w.n = 0;
	mp_array(&w, 4);
	mp_uint(&w, PROTO_REP);
	mp_uint(&w, 1);
	mp_uint(&w, PROTO_OP_PING);
	mp_uint(&w, 30);
	CHECK_EQ(proto_decode(w.b, w.n, &m, NULL), 0);
	CHECK_EQ(m.err, EROFS);
	proto_msg_cleanup(&m);
}

/* Start a successful reply header [1, 1, op, 0 ...] of n elements. */
static void mp_rep(struct mp *w, uint32_t n, uint32_t op)
{
	w->n = 0;
	mp_array(w, n);
	mp_uint(w, PROTO_REP);
	mp_uint(w, 1);
	mp_uint(w, op);
	mp_uint(w, 0);
}

/*
 * The parent directory's attributes: an optional last element of the
 * successful replies of OPF_PATTR ops only, absent unless has_pattr.
 */
static void test_pattr(void)
{
	const struct proto_opinfo *oi;
	struct proto_msg m, d;
	size_t with, without;
	struct buf enc;
	struct mp w;
	uint32_t op;
	int nops = 0;

	buf_init(&enc, 0);
	for (op = 0; op < PROTO_OP_MAX; op++) {
		oi = proto_opinfo(op);
		if (!oi || (oi->flags & (OPF_PUSH | OPF_NOREPLY)))
			continue;
		proto_msg_init(&m);
		m.kind = PROTO_REP;
		m.op = op;
		m.id = 77;
		fill_fields(&m, oi->rep);
		without = round_trip(&m, oi->rep, &enc);
		fill_attr(&m.pattr, 1000 + op);
		m.pattr.mode = 040750;
		m.has_pattr = 1;
		with = round_trip(&m, oi->rep, &enc);
		CHECK_EQ(proto_decode(enc.p, enc.len, &d, NULL), 0);
		if (oi->flags & OPF_PATTR) {
			nops++;
			/* 17 ints after the fields, one more element. */
			CHECK(with > without + 17);
			CHECK_EQ(d.has_pattr, 1);
			CHECK(attr_eq(&d.pattr, &m.pattr));
			check_truncations(&enc);
		} else {
			/* An op without the flag never sends it. */
			CHECK_EQ(with, without);
			CHECK_EQ(d.has_pattr, 0);
		}
		proto_msg_cleanup(&d);
		/* Nor does an error reply. */
		proto_msg_cleanup(&m);
		m.kind = PROTO_REP;
		m.op = op;
		m.err = EACCES;
		m.has_pattr = 1;
		round_trip(&m, "", &enc);
		CHECK_EQ(enc.len, 5);
		CHECK_EQ(proto_decode(enc.p, enc.len, &d, NULL), 0);
		CHECK_EQ(d.has_pattr, 0);
		proto_msg_cleanup(&d);
		proto_msg_cleanup(&m);
	}
	CHECK_EQ(nops, 8);

	/* Out-of-range nanoseconds are refused on both sides. */
	proto_msg_init(&m);
	m.kind = PROTO_REP;
	m.op = PROTO_OP_UNLINK;
	m.has_pattr = 1;
	m.pattr.ctime_ns = 1000000000u;
	buf_reset(&enc);
	CHECK_EQ(proto_encode(&m, &enc), -EINVAL);
	CHECK_EQ(enc.len, 0);
	buf_cleanup(&enc);

	/* UNLINK: [1, id, op, 0] or [1, id, op, 0, A]. */
	mp_rep(&w, 5, PROTO_OP_UNLINK);
	mp_attr(&w, 17, 5);
	CHECK_EQ(decodes(&w), 0);
	mp_rep(&w, 5, PROTO_OP_UNLINK);
	mp_attr(&w, 17, 1000000000u);
	EXPECT_BAD(&w, -EBADMSG, "nanoseconds");
	mp_rep(&w, 5, PROTO_OP_UNLINK);
	mp_attr(&w, 16, 5);
	EXPECT_BAD(&w, -EBADMSG, "17 ints");
	mp_rep(&w, 5, PROTO_OP_UNLINK);
	mp_uint(&w, 3);
	EXPECT_BAD(&w, -EBADMSG, "field A");
	/* One optional element only, and only last. */
	mp_rep(&w, 6, PROTO_OP_UNLINK);
	mp_attr(&w, 17, 5);
	mp_attr(&w, 17, 5);
	EXPECT_BAD(&w, -EBADMSG, "element count");
	mp_rep(&w, 5, PROTO_OP_UNLINK);
	EXPECT_BAD(&w, -EBADMSG, "truncated");
	/* Not after LOOKUP's attributes (no OPF_PATTR). */
	mp_rep(&w, 6, PROTO_OP_LOOKUP);
	mp_attr(&w, 17, 5);
	mp_attr(&w, 17, 5);
	EXPECT_BAD(&w, -EBADMSG, "element count");
	/* CREATE [a, h, f, A]: A must come after f, not in its place. */
	mp_rep(&w, 7, PROTO_OP_CREATE);
	mp_attr(&w, 17, 5);
	mp_uint(&w, 9);
	mp_attr(&w, 17, 5);
	EXPECT_BAD(&w, -EBADMSG, NULL);
	mp_rep(&w, 8, PROTO_OP_CREATE);
	mp_attr(&w, 17, 5);
	mp_uint(&w, 9);
	mp_uint(&w, 0);
	mp_attr(&w, 17, 5);
	CHECK_EQ(decodes(&w), 0);
	/* Never in a request. */
	mp_req(&w, 8, PROTO_OP_UNLINK);
	mp_uint(&w, 1);
	mp_str(&w, "a", 1);
	mp_attr(&w, 17, 5);
	EXPECT_BAD(&w, -EBADMSG, "element count");
}

/*
 * data_follows: the encoder writes a READ reply's bin header alone; the
 * message plus the payload appended after it decodes as the whole reply.
 * Refused where "d" is not the last element, or on an error reply.
 */
static void test_data_follows(void)
{
	struct proto_msg m, d;
	struct buf enc, full;
	size_t gap = 0;

	buf_init(&enc, 0);
	buf_init(&full, 0);
	proto_msg_init(&m);
	m.kind = PROTO_REP;
	m.op = PROTO_OP_READ;
	m.id = 77;
	m.data_len = sizeof(payload);
	m.data_follows = 1;
	CHECK_EQ(proto_encode(&m, &enc), 0);
	CHECK(enc.len < 32); /* the head only */
	CHECK_EQ(buf_append(&full, enc.p, enc.len), 0);
	CHECK_EQ(buf_append(&full, payload, sizeof(payload)), 0);
	proto_msg_init(&d);
	CHECK_EQ(proto_decode(full.p, full.len, &d, NULL), 0);
	CHECK_EQ(d.id, 77);
	CHECK_EQ(d.data_len, sizeof(payload));
	CHECK(d.data && !memcmp(d.data, payload, sizeof(payload)));
	proto_msg_cleanup(&d);
	/* Without the payload the message is truncated, not accepted. */
	proto_msg_init(&d);
	CHECK_EQ(proto_decode(enc.p, enc.len, &d, NULL), -EBADMSG);
	proto_msg_cleanup(&d);

	/* A reply whose schema does not end in "d" (STATFS) is refused,
	 * and so is an error reply, which has no schema. */
	buf_reset(&enc);
	m.op = PROTO_OP_STATFS;
	CHECK_EQ(proto_encode(&m, &enc), -EINVAL);
	CHECK_EQ(enc.len, 0);
	m.op = PROTO_OP_READ;
	m.err = EIO;
	CHECK_EQ(proto_encode(&m, &enc), -EINVAL);
	CHECK_EQ(enc.len, 0);

	/* proto_encode_gap: WRITE's "d" has "f" after it; the payload goes
	 * in the gap and the whole decodes as the request. */
	buf_reset(&enc);
	buf_reset(&full);
	proto_msg_init(&m);
	m.kind = PROTO_REQ;
	m.op = PROTO_OP_WRITE;
	m.id = 78;
	m.fh = 5;
	m.off = 4096;
	m.flags = 0x8001;
	m.data_len = sizeof(payload);
	m.data_follows = 1;
	CHECK_EQ(proto_encode(&m, &enc), -EINVAL); /* not last: no gap */
	CHECK_EQ(proto_encode_gap(&m, &enc, &gap), 0);
	CHECK(gap > 0 && gap < enc.len);
	CHECK_EQ(buf_append(&full, enc.p, gap), 0);
	CHECK_EQ(buf_append(&full, payload, sizeof(payload)), 0);
	CHECK_EQ(buf_append(&full, enc.p + gap, enc.len - gap), 0);
	proto_msg_init(&d);
	CHECK_EQ(proto_decode(full.p, full.len, &d, NULL), 0);
	CHECK_EQ(d.fh, 5);
	CHECK_EQ(d.off, 4096);
	CHECK_EQ(d.flags, 0x8001);
	CHECK(d.data_len == sizeof(payload) &&
	      !memcmp(d.data, payload, sizeof(payload)));
	proto_msg_cleanup(&d);
	m.data_follows = 0;
	m.data = payload;
	buf_reset(&enc);
	CHECK_EQ(proto_encode_gap(&m, &enc, &gap), 0);
	CHECK_EQ(gap, SIZE_MAX);
	CHECK(enc.len == full.len && !memcmp(enc.p, full.p, enc.len));
	buf_cleanup(&enc);
	buf_cleanup(&full);
}

int main(void)
{
	size_t i;

	for (i = 0; i < sizeof(payload); i++)
		payload[i] = (uint8_t)(i * 7 + 3);
	test_all_ops();
	test_exact_bytes();
	test_bad_structure();
	test_bad_types_and_values();
	test_huge_counts();
	test_encode_refusals();
	test_errors_mapped();
	test_dlp_findings();
	test_pattr();
	test_data_follows();
	return unit_done("test_codec");
}
