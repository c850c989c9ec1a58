/*
 * buf.c - growable byte buffer with a ceiling (see buf.h).
 */
#include "buf.h"

#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void buf_init(struct buf *b, size_t limit)
{
	b->p = NULL;
	b->len = 0;
	b->cap = 0;
	b->limit = limit ? limit : SIZE_MAX;
}

void buf_cleanup(struct buf *b)
{
	free(b->p);
	buf_init(b, b->limit);
}

void buf_reset(struct buf *b)
{
	b->len = 0;
}

int buf_reserve(struct buf *b, size_t extra)
{
	size_t need, ncap;
	uint8_t *np;

	if (extra > b->limit || b->len > b->limit - extra)
		return -E2BIG;
	need = b->len + extra;
	if (need <= b->cap)
		return 0;
	ncap = b->cap ? b->cap : 256;
	while (ncap < need)
		ncap = ncap > SIZE_MAX / 2 ? need : ncap * 2;
	if (ncap > b->limit)
		ncap = b->limit;
	np = realloc(b->p, ncap);
	if (!np)
		return -ENOMEM;
	b->p = np;
	b->cap = ncap;
	return 0;
}

int buf_append(struct buf *b, const void *p, size_t n)
{
	int rc;

	if (n == 0)
		return 0;
	rc = buf_reserve(b, n);
	if (rc)
		return rc;
	memcpy(b->p + b->len, p, n);
	b->len += n;
	return 0;
}

void buf_consume(struct buf *b, size_t n)
{
	if (n >= b->len) {
		b->len = 0;
		return;
	}
	memmove(b->p, b->p + n, b->len - n);
	b->len -= n;
}

void *buf_steal(struct buf *b, size_t *len)
{
	void *p = b->p;

	if (len)
		*len = b->len;
	buf_init(b, b->limit);
	return p;
}

/*
 * A READ or WRITE payload lives in a buffer of up to 1 MiB that is freed
 * when the call is done.  glibc serves such sizes with mmap(2) at first and
 * trims freed heap back to the kernel, so each call faulted in, and zeroed,
 * fresh pages, and each munmap made every thread's CPU flush its TLB.
 * Buffers below 32 MiB (glibc's ceiling for this setting) now come from
 * the heap, the s3 backend's 8 MiB read-ahead windows included, and up to
 * 64 MiB of free heap stays mapped per arena: memory the process already
 * used, reused.  Arenas
 * are one per CPU instead of glibc's eight: a buffer freed in one arena is
 * reused only there, so with many arenas each grew to its own peak (the
 * mount's client went from 47 to 128 MiB resident).
 */
#define BUF_MMAP_THRESHOLD (32 << 20)
#define BUF_TRIM_THRESHOLD (64 << 20)

void buf_keep_payload_memory(void)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	mallopt(M_ARENA_MAX, cpus < 2 ? 2 : (int)(cpus > 64 ? 64 : cpus));
	mallopt(M_MMAP_THRESHOLD, BUF_MMAP_THRESHOLD);
	mallopt(M_TRIM_THRESHOLD, BUF_TRIM_THRESHOLD);
}
