/*
 * test_frame.c - framing: wrap/parse, partial arrival, size limits, zstd.
 *
 * Hostile zstd frames (lying or missing content sizes, trailing frames,
 * garbage) are built here with libzstd directly, since the point is what
 * frame_parse does with frames frame_wrap would never produce.
 */
#include "buf.h"
#include "frame.h"
#include "unit.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#define BIG 100000u

static uint8_t compressible[BIG], noise[BIG];

static uint32_t hdr_of(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

/* Parse in[0..n) expecting rc; on success compare with want[0..wlen). */
static void expect_parse(const uint8_t *in, size_t n, size_t max, int zstd_ok,
			 int rc_want, const void *want, size_t wlen, int line)
{
	const uint8_t *body = NULL;
	size_t body_len = 0, consumed = 0;
	const char *why = NULL;
	struct buf scratch;
	int rc;

	buf_init(&scratch, 0);
	rc = frame_parse(in, n, max, zstd_ok, &scratch, &body, &body_len,
			 &consumed, &why);
	if (rc != rc_want) {
		unit_failed++;
		fprintf(stderr, "%s:%d: frame_parse %d (%s), want %d\n",
			__FILE__, line, rc, why ? why : "", rc_want);
	} else {
		unit_passed++;
	}
	if (rc < 0)
		CHECK(why != NULL);
	if (rc == 1 && rc_want == 1) {
		CHECK_EQ(body_len, wlen);
		CHECK(body_len == wlen &&
		      (!wlen || memcmp(body, want, wlen) == 0));
		CHECK(consumed <= n);
	}
	buf_cleanup(&scratch);
}

#define EXPECT_PARSE(in, n, max, zok, rc, want, wlen) \
	expect_parse(in, n, max, zok, rc, want, wlen, __LINE__)

static void test_plain(void)
{
	const uint8_t body[] = "\x93\x00\x01\x02";
	const uint8_t *got;
	size_t got_len, consumed, i;
	struct buf out, scratch;
	int bad = 0;

	buf_init(&out, 0);
	buf_init(&scratch, 0);
	CHECK_EQ(frame_wrap(&out, body, 4, 1), 0); /* small: never zstd */
	CHECK_EQ(out.len, 8);
	CHECK_EQ(hdr_of(out.p), 4);
	CHECK_EQ(frame_wrap(&out, NULL, 0, 0), 0);
	CHECK_EQ(frame_wrap(&out, body, 3, 0), 0);
	CHECK_EQ(out.len, 8 + 4 + 7);

	/* Byte-by-byte arrival: nothing until the last byte of the frame. */
	for (i = 0; i < 8; i++)
		if (frame_parse(out.p, i, 1024, 0, &scratch, &got, &got_len,
				&consumed, NULL) != 0)
			bad++;
	CHECK_EQ(bad, 0);
	CHECK_EQ(frame_parse(out.p, 8, 1024, 0, &scratch, &got, &got_len,
			     &consumed, NULL),
		 1);
	CHECK_EQ(consumed, 8);
	CHECK(got == out.p + 4 && got_len == 4);
	/* Frames back to back: the empty one, then the 3-byte one. */
	CHECK_EQ(frame_parse(out.p + 8, out.len - 8, 1024, 0, &scratch, &got,
			     &got_len, &consumed, NULL),
		 1);
	CHECK_EQ(got_len, 0);
	CHECK_EQ(consumed, 4);
	EXPECT_PARSE(out.p + 12, out.len - 12, 1024, 0, 1, body, 3);
	/* A body of exactly max passes; with max one byte less it does not. */
	EXPECT_PARSE(out.p, 8, 4, 0, 1, body, 4);
	EXPECT_PARSE(out.p, 8, 3, 0, -EMSGSIZE, NULL, 0);
	buf_cleanup(&out);
	buf_cleanup(&scratch);
}

static void test_limits(void)
{
	static const uint8_t huge[4] = {0x7f, 0xff, 0xff, 0xff};
	static const uint8_t zhuge[4] = {0xff, 0xff, 0xff, 0xff};
	static const uint8_t zbit[6] = {0x80, 0x00, 0x00, 0x02, 1, 2};
	struct buf out;

	/* Refused from the header alone, before the body is awaited. */
	EXPECT_PARSE(huge, 4, 1u << 20, 1, -EMSGSIZE, NULL, 0);
	EXPECT_PARSE(zhuge, 4, 1u << 20, 1, -EMSGSIZE, NULL, 0);
	EXPECT_PARSE(zbit, 4, 1u << 20, 0, -EBADMSG, NULL, 0);
	EXPECT_PARSE(zbit, 6, 1u << 20, 0, -EBADMSG, NULL, 0);
	EXPECT_PARSE(zbit, 3, 1u << 20, 0, 0, NULL, 0);

	/* Wrapping into a full buffer fails whole. */
	buf_init(&out, 10);
	CHECK_EQ(frame_wrap(&out, compressible, 6, 0), 0);
	CHECK_EQ(frame_wrap(&out, compressible, 1, 0), -E2BIG);
	CHECK_EQ(out.len, 10);
	CHECK_EQ(frame_wrap(&out, compressible, 0x80000000u, 0), -EMSGSIZE);
	CHECK_EQ(out.len, 10);
	buf_cleanup(&out);
}

static void test_zstd(void)
{
	const uint8_t *got;
	size_t got_len, consumed, i;
	struct buf out, scratch;
	int bad = 0;

	buf_init(&out, 0);
	buf_init(&scratch, 0);
	CHECK_EQ(frame_wrap(&out, compressible, BIG, 1), 0);
	CHECK(hdr_of(out.p) & FRAME_ZSTD_BIT);
	CHECK((hdr_of(out.p) & ~FRAME_ZSTD_BIT) == out.len - 4);
	CHECK(out.len < BIG / 10);
	EXPECT_PARSE(out.p, out.len, BIG, 1, 1, compressible, BIG);
	/* Not negotiated: a compressed frame is an error. */
	EXPECT_PARSE(out.p, out.len, BIG, 0, -EBADMSG, NULL, 0);
	/* Decompressed size over max, though the wire size is small. */
	EXPECT_PARSE(out.p, out.len, BIG - 1, 1, -EMSGSIZE, NULL, 0);
	for (i = 0; i < out.len; i++)
		if (frame_parse(out.p, i, BIG, 1, &scratch, &got, &got_len,
				&consumed, NULL) != 0)
			bad++;
	CHECK_EQ(bad, 0);
	CHECK_EQ(frame_parse(out.p, out.len, BIG, 1, &scratch, &got, &got_len,
			     &consumed, NULL),
		 1);
	CHECK(got == scratch.p && got_len == BIG && consumed == out.len);
	buf_cleanup(&scratch);

	/* No scratch buffer to decompress into: refused, not a crash. */
	CHECK_EQ(frame_parse(out.p, out.len, BIG, 1, NULL, &got, &got_len,
			     &consumed, NULL),
		 -EBADMSG);

	/* The scratch buffer's own ceiling holds too. */
	buf_init(&scratch, 1000);
	CHECK_EQ(frame_parse(out.p, out.len, BIG, 1, &scratch, &got, &got_len,
			     &consumed, NULL),
		 -EMSGSIZE);
	buf_cleanup(&scratch);

	/* Not worth it: noise, small bodies, zstd off. */
	buf_reset(&out);
	CHECK_EQ(frame_wrap(&out, noise, BIG, 1), 0);
	CHECK_EQ(hdr_of(out.p), BIG);
	EXPECT_PARSE(out.p, out.len, BIG, 1, 1, noise, BIG);
	buf_reset(&out);
	CHECK_EQ(frame_wrap(&out, compressible, FRAME_ZSTD_MIN - 1, 1), 0);
	CHECK_EQ(hdr_of(out.p), FRAME_ZSTD_MIN - 1);
	buf_reset(&out);
	CHECK_EQ(frame_wrap(&out, compressible, FRAME_ZSTD_MIN, 1), 0);
	CHECK(hdr_of(out.p) & FRAME_ZSTD_BIT);
	buf_reset(&out);
	CHECK_EQ(frame_wrap(&out, compressible, BIG, 0), 0);
	CHECK_EQ(hdr_of(out.p), BIG);
	buf_cleanup(&out);
}

/* Put a hand-made zstd body behind a header with the zstd bit. */
static size_t zframe(uint8_t *dst, const uint8_t *z, size_t zlen)
{
	uint32_t h = (uint32_t)zlen | FRAME_ZSTD_BIT;

	dst[0] = (uint8_t)(h >> 24);
	dst[1] = (uint8_t)(h >> 16);
	dst[2] = (uint8_t)(h >> 8);
	dst[3] = (uint8_t)h;
	memcpy(dst + 4, z, zlen);
	return zlen + 4;
}

static void test_hostile_zstd(void)
{
	static uint8_t z[BIG], f[2 * BIG];
	ZSTD_CCtx *cc = ZSTD_createCCtx();
	ZSTD_inBuffer zin = {compressible, 5000, 0};
	ZSTD_outBuffer zout = {z, sizeof(z), 0};
	size_t zlen, n, rem, i;

	/* Streaming without a pledged size: no content size in the header. */
	if (!cc)
		abort();
	ZSTD_CCtx_setParameter(cc, ZSTD_c_contentSizeFlag, 0);
	do
		rem = ZSTD_compressStream2(cc, &zout, &zin, ZSTD_e_end);
	while (rem && !ZSTD_isError(rem));
	CHECK(!ZSTD_isError(rem));
	CHECK(ZSTD_getFrameContentSize(z, zout.pos) ==
	      ZSTD_CONTENTSIZE_UNKNOWN);
	n = zframe(f, z, zout.pos);
	EXPECT_PARSE(f, n, BIG, 1, -EBADMSG, NULL, 0);
	ZSTD_freeCCtx(cc);

	/* A proper frame decodes; then variations on it. */
	zlen = ZSTD_compress(z, sizeof(z), compressible, 5000, 1);
	CHECK(!ZSTD_isError(zlen));
	n = zframe(f, z, zlen);
	EXPECT_PARSE(f, n, BIG, 1, 1, compressible, 5000);

	/* A second frame hiding behind the first. */
	memcpy(z + zlen, z, zlen);
	n = zframe(f, z, 2 * zlen);
	EXPECT_PARSE(f, n, BIG, 1, -EBADMSG, NULL, 0);
	/* Trailing junk. */
	z[zlen] = 0x42;
	n = zframe(f, z, zlen + 1);
	EXPECT_PARSE(f, n, BIG, 1, -EBADMSG, NULL, 0);
	/* Cut short. */
	n = zframe(f, z, zlen - 1);
	EXPECT_PARSE(f, n, BIG, 1, -EBADMSG, NULL, 0);

	/*
	 * Lying content size: the header's 2-byte size field (value - 256,
	 * after magic and descriptor) claims less, then more, than the data
	 * holds.
	 */
	CHECK_EQ(z[4] >> 6, 1); /* frame content size field of 2 bytes */
	CHECK(z[4] & 0x20);	/* single segment: no window descriptor */
	n = zframe(f, z, zlen);
	f[4 + 6] = 0;
	EXPECT_PARSE(f, n, BIG, 1, -EBADMSG, NULL, 0);
	n = zframe(f, z, zlen);
	f[4 + 6] = (uint8_t)(f[4 + 6] + 10);
	EXPECT_PARSE(f, n, BIG, 1, -EBADMSG, NULL, 0);

	/* Garbage: no magic, magic then noise, and flipped bytes. */
	n = zframe(f, noise, 300);
	EXPECT_PARSE(f, n, BIG, 1, -EBADMSG, NULL, 0);
	memcpy(noise, z, 4);
	n = zframe(f, noise, 300);
	EXPECT_PARSE(f, n, BIG, 1, -EBADMSG, NULL, 0);
	for (i = 8; i < zlen; i += 7) {
		uint8_t *p = f + 4 + i;

		n = zframe(f, z, zlen);
		*p ^= 0x5a;
		/* Corruption may go unnoticed, but never past the limit. */
		{
			const uint8_t *got;
			size_t got_len, consumed;
			struct buf scratch;
			int rc;

			buf_init(&scratch, 0);
			rc = frame_parse(f, n, BIG, 1, &scratch, &got, &got_len,
					 &consumed, NULL);
			CHECK(rc == -EBADMSG || (rc == 1 && got_len == 5000));
			buf_cleanup(&scratch);
		}
	}
	/* An empty zstd frame is a valid empty body. */
	zlen = ZSTD_compress(z, sizeof(z), NULL, 0, 1);
	n = zframe(f, z, zlen);
	EXPECT_PARSE(f, n, BIG, 1, 1, NULL, 0);
}

int main(void)
{
	uint32_t x = 0x12345678;
	size_t i;

	for (i = 0; i < BIG; i++) {
		compressible[i] = (uint8_t)("occfs frame "[i % 12] + i / 4096);
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		noise[i] = (uint8_t)x;
	}
	test_plain();
	test_limits();
	test_zstd();
	test_hostile_zstd();
	return unit_done("test_frame");
}
