/*
 * buf.h - a growable byte buffer with a hard ceiling.
 *
 * Everything a peer can make us store goes through a buf whose limit is set
 * by the owner, so a hostile peer hits -E2BIG instead of exhausting memory.
 */
#ifndef OCCFS_BUF_H
#define OCCFS_BUF_H

#include <stddef.h>
#include <stdint.h>

struct buf {
	uint8_t *p;
	size_t len;   /* bytes in use */
	size_t cap;   /* bytes allocated */
	size_t limit; /* never grow past this; 0 = SIZE_MAX */
};

void buf_init(struct buf *b, size_t limit);
void buf_cleanup(struct buf *b);
void buf_reset(struct buf *b);		      /* len = 0, keep memory */
int buf_reserve(struct buf *b, size_t extra); /* 0 or -ENOMEM/-E2BIG */
int buf_append(struct buf *b, const void *p, size_t n);
void buf_consume(struct buf *b, size_t n); /* drop n bytes from the front */
/* Hand the storage to the caller (who frees it) and reinitialise b. */
void *buf_steal(struct buf *b, size_t *len);

/*
 * Keep freed 1 MiB payload buffers in the process for the next call
 * (buf.c).  Programs that move READ/WRITE payloads call it once at start.
 */
void buf_keep_payload_memory(void);

#endif
