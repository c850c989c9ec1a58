/*
 * frame.c - length-prefixed frames with optional zstd bodies (see frame.h).
 *
 * Compression is one-shot at level 1: bodies are at most a little over
 * 1 MiB, and level 1 is the only level fast enough not to become the
 * bottleneck of a READ/WRITE path.  Decompression trusts nothing the peer
 * declares: the zstd frame must state its content size, that size must fit
 * under the caller's limit before any memory is reserved, and the one-shot
 * decoder writes into exactly that much space (so a lying frame fails
 * instead of growing a buffer).  One-shot decoding also means the window
 * size a frame asks for is never allocated.
 */
#include "frame.h"

#include "buf.h"

#include <errno.h>
#include <string.h>
#include <zstd.h>

#define FRAME_LEN_MASK 0x7fffffffu
#define FRAME_ZSTD_LEVEL 1

static void frame_put_hdr(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t frame_get_hdr(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

int frame_wrap(struct buf *out, const uint8_t *body, size_t len, int zstd)
{
	uint8_t *hdr, *dst;
	size_t clen;
	int rc;

	if (len > FRAME_LEN_MASK || (len && !body))
		return -EMSGSIZE;
	/* The raw form is the worst case, so reserve exactly that. */
	rc = buf_reserve(out, FRAME_HDR_LEN + len);
	if (rc)
		return rc;
	hdr = out->p + out->len;
	dst = hdr + FRAME_HDR_LEN;
	if (zstd && len >= FRAME_ZSTD_MIN) {
		/*
		 * A destination one byte short of the input makes zstd fail
		 * whenever compressing would not save anything.
		 */
		clen = ZSTD_compress(dst, len - 1, body, len, FRAME_ZSTD_LEVEL);
		if (!ZSTD_isError(clen)) {
			frame_put_hdr(hdr, (uint32_t)clen | FRAME_ZSTD_BIT);
			out->len += FRAME_HDR_LEN + clen;
			return 0;
		}
	}
	frame_put_hdr(hdr, (uint32_t)len);
	if (len)
		memcpy(dst, body, len);
	out->len += FRAME_HDR_LEN + len;
	return 0;
}

/* Decompress one zstd frame src[0..n) into scratch, at most max bytes. */
static int frame_unzstd(const uint8_t *src, size_t n, size_t max,
			struct buf *scratch, const char **why)
{
	unsigned long long size;
	size_t got;
	int rc;

	size = ZSTD_getFrameContentSize(src, n);
	if (size == ZSTD_CONTENTSIZE_UNKNOWN) {
		*why = "zstd frame without content size";
		return -EBADMSG;
	}
	if (size == ZSTD_CONTENTSIZE_ERROR) {
		*why = "bad zstd frame header";
		return -EBADMSG;
	}
	if (size > max) {
		*why = "decompressed frame too large";
		return -EMSGSIZE;
	}
	/* Exactly one zstd frame: no second frame hiding behind the first. */
	got = ZSTD_findFrameCompressedSize(src, n);
	if (ZSTD_isError(got) || got != n) {
		*why = "bad zstd frame length";
		return -EBADMSG;
	}
	buf_reset(scratch);
	rc = buf_reserve(scratch, size ? (size_t)size : 1);
	if (rc) {
		*why = rc == -E2BIG ? "decompressed frame too large"
				    : "out of memory";
		return rc == -E2BIG ? -EMSGSIZE : rc;
	}
	got = ZSTD_decompress(scratch->p, (size_t)size, src, n);
	if (ZSTD_isError(got) || got != size) {
		*why = "corrupt zstd frame";
		return -EBADMSG;
	}
	scratch->len = got;
	return 0;
}

int frame_parse(const uint8_t *in, size_t avail, size_t max, int zstd_ok,
		struct buf *scratch, const uint8_t **body, size_t *body_len,
		size_t *consumed, const char **why)
{
	const char *dummy;
	uint32_t hdr;
	size_t wire;
	int rc;

	if (!why)
		why = &dummy;
	if (avail < FRAME_HDR_LEN)
		return 0;
	hdr = frame_get_hdr(in);
	wire = hdr & FRAME_LEN_MASK;
	/* Refuse before waiting for (and buffering) the body. */
	if (wire > max) {
		*why = "frame too large";
		return -EMSGSIZE;
	}
	if ((hdr & FRAME_ZSTD_BIT) && (!zstd_ok || !scratch)) {
		*why = "compressed frame not negotiated";
		return -EBADMSG;
	}
	if (avail - FRAME_HDR_LEN < wire)
		return 0;
	if (hdr & FRAME_ZSTD_BIT) {
		rc = frame_unzstd(in + FRAME_HDR_LEN, wire, max, scratch, why);
		if (rc)
			return rc;
		*body = scratch->p;
		*body_len = scratch->len;
	} else {
		*body = in + FRAME_HDR_LEN;
		*body_len = wire;
	}
	*consumed = FRAME_HDR_LEN + wire;
	return 1;
}
