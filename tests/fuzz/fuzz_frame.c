/*
 * fuzz_frame.c - libFuzzer target for everything a peer's bytes reach first:
 * frame_parse (zstd allowed) and proto_decode.
 *
 * The input is a byte stream of frames, as read from a socket; every frame
 * in it is parsed and decoded, and the whole input is also decoded as one
 * bare body so the codec is reached without the fuzzer first having to find
 * a matching length prefix.  Every message that decodes must survive
 * encode -> decode unchanged and re-encode to the same bytes, and its
 * re-encoded frame must parse back; anything else aborts.
 */
#include "buf.h"
#include "frame.h"
#include "proto.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int fz_attr_eq(const struct proto_attr *a, const struct proto_attr *b)
{
	return a->nodeid == b->nodeid && a->gen == b->gen && a->ino == b->ino &&
	       a->mode == b->mode && a->nlink == b->nlink && a->uid == b->uid &&
	       a->gid == b->gid && a->rdev == b->rdev && a->size == b->size &&
	       a->blocks == b->blocks && a->blksize == b->blksize &&
	       a->atime == b->atime && a->mtime == b->mtime &&
	       a->ctime == b->ctime && a->atime_ns == b->atime_ns &&
	       a->mtime_ns == b->mtime_ns && a->ctime_ns == b->ctime_ns;
}

static int fz_str_eq(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static int fz_dirents_eq(const struct proto_msg *a, const struct proto_msg *b)
{
	size_t i;

	if (a->ndirents != b->ndirents)
		return 0;
	for (i = 0; i < a->ndirents; i++)
		if (!fz_str_eq(a->dirents[i].name, b->dirents[i].name) ||
		    a->dirents[i].off != b->dirents[i].off ||
		    !fz_attr_eq(&a->dirents[i].attr, &b->dirents[i].attr))
			return 0;
	return 1;
}

/* Decoding zeroes what the schema does not name, so compare everything. */
static int fz_msg_eq(const struct proto_msg *a, const struct proto_msg *b)
{
	return a->kind == b->kind && a->op == b->op && a->id == b->id &&
	       a->uid == b->uid && a->gid == b->gid && a->err == b->err &&
	       fz_str_eq(a->reason, b->reason) && a->version == b->version &&
	       a->features == b->features && a->max_payload == b->max_payload &&
	       a->flags == b->flags && a->mode == b->mode &&
	       a->whence == b->whence && a->valid == b->valid &&
	       a->ino == b->ino && a->ino2 == b->ino2 && a->fh == b->fh &&
	       a->fh2 == b->fh2 && a->off == b->off && a->off2 == b->off2 &&
	       a->len == b->len && a->rdev == b->rdev &&
	       a->target == b->target && fz_str_eq(a->name, b->name) &&
	       fz_str_eq(a->name2, b->name2) && a->data_len == b->data_len &&
	       (!a->data_len || memcmp(a->data, b->data, a->data_len) == 0) &&
	       fz_attr_eq(&a->attr, &b->attr) &&
	       memcmp(&a->st, &b->st, sizeof(a->st)) == 0 &&
	       fz_dirents_eq(a, b);
}

/* A decoded message must re-encode, decode equal and be byte-stable. */
static void fz_check_body(const uint8_t *body, size_t len)
{
	struct proto_msg m1, m2, m3;
	struct buf e1, e2, fr, scratch;
	const uint8_t *fbody;
	size_t flen, consumed;

	if (proto_decode(body, len, &m1, NULL) != 0) {
		proto_msg_cleanup(&m1);
		return;
	}
	buf_init(&e1, 0);
	buf_init(&e2, 0);
	buf_init(&fr, 0);
	buf_init(&scratch, 0);
	if (proto_encode(&m1, &e1) != 0)
		abort();
	if (proto_decode(e1.p, e1.len, &m2, NULL) != 0)
		abort();
	if (!fz_msg_eq(&m1, &m2))
		abort();
	if (proto_encode(&m2, &e2) != 0 || e1.len != e2.len ||
	    memcmp(e1.p, e2.p, e1.len) != 0)
		abort();
	if (frame_wrap(&fr, e1.p, e1.len, 1) != 0 ||
	    frame_parse(fr.p, fr.len, PROTO_MAX_FRAME, 1, &scratch, &fbody,
			&flen, &consumed, NULL) != 1 ||
	    consumed != fr.len || flen != e1.len ||
	    memcmp(fbody, e1.p, flen) != 0)
		abort();
	if (proto_decode(fbody, flen, &m3, NULL) != 0 || !fz_msg_eq(&m1, &m3))
		abort();
	proto_msg_cleanup(&m1);
	proto_msg_cleanup(&m2);
	proto_msg_cleanup(&m3);
	buf_cleanup(&e1);
	buf_cleanup(&e2);
	buf_cleanup(&fr);
	buf_cleanup(&scratch);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf scratch;
	const uint8_t *body;
	size_t body_len, consumed, off = 0;
	const char *why;
	int rc;

	buf_init(&scratch, 0);
	while (off < size) {
		rc = frame_parse(data + off, size - off, PROTO_MAX_FRAME, 1,
				 &scratch, &body, &body_len, &consumed, &why);
		if (rc != 1)
			break;
		if (consumed < FRAME_HDR_LEN || consumed > size - off ||
		    body_len > PROTO_MAX_FRAME)
			abort();
		fz_check_body(body, body_len);
		off += consumed;
	}
	buf_cleanup(&scratch);
	fz_check_body(data, size);
	return 0;
}
