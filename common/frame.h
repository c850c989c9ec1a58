/*
 * frame.h - the length-prefixed framing under every RPC message.
 *
 * A frame is a 4-byte big-endian header followed by the body.  Bits 0-30 of
 * the header are the body length on the wire; bit 31 says the body is one
 * zstd frame (only after both ends negotiated PROTO_FEAT_ZSTD).  Bodies are
 * one msgpack array (proto.h).  A frame whose wire length or decompressed
 * length exceeds the limit is refused before any memory is committed to it.
 */
#ifndef OCCFS_FRAME_H
#define OCCFS_FRAME_H

#include <stddef.h>
#include <stdint.h>

struct buf;

#define FRAME_HDR_LEN 4u
#define FRAME_ZSTD_BIT 0x80000000u
/* Bodies smaller than this are never worth compressing. */
#define FRAME_ZSTD_MIN 4096u

/*
 * Append one frame carrying body to out.  With zstd non-zero the body is
 * compressed when that makes it smaller.  Returns 0 or -errno.
 */
int frame_wrap(struct buf *out, const uint8_t *body, size_t len, int zstd);

/*
 * Look for one complete frame at the start of in[0..avail).
 * Returns 0 when more bytes are needed, 1 with *body, *body_len and
 * *consumed set when a frame is ready, or -EMSGSIZE (over max), -EBADMSG
 * (bad zstd, or a compressed frame when zstd_ok is 0) with *why set.  A
 * compressed body is decompressed into scratch (capped at max), and *body
 * then points there; otherwise *body points into in.
 */
int frame_parse(const uint8_t *in, size_t avail, size_t max, int zstd_ok,
		struct buf *scratch, const uint8_t **body, size_t *body_len,
		size_t *consumed, const char **why);

#endif
