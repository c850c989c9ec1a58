/*
 * s3b_ra.h - read-ahead for clean objects of the s3 backend.
 *
 * A file that nobody writes is read with ranged GETs.  When one open file
 * reads sequentially, larger GETs (2 MiB growing to 8 MiB) run ahead of it
 * in parallel on background threads into windows held in memory for that
 * open file; its READs are served from them.  Random reads go straight to
 * S3 as before.  Every window GET carries If-Match on the ETag the
 * metadata cache has for the object, and every READ checks that ETag
 * again, so a window never serves bytes of a replaced object.  Window
 * memory comes from the store's budget (s3b_budget_try_take): under
 * pressure read-ahead shrinks, never the uploads.  See doc/s3.md.
 */
#ifndef OCCFS_S3B_RA_H
#define OCCFS_S3B_RA_H

#include <stddef.h>
#include <stdint.h>

struct backend_session;

/*
 * Read [off, off + len) of the object key (not staged) for the open file
 * fh into buf; *got is the byte count (short only at the end).  src (may
 * be NULL) receives the ETag S3 gave for the bytes in this call, "" when
 * they all came from windows or none came.
 */
int s3b_ra_read(struct backend_session *s, uint64_t fh, const char *key,
		uint8_t *buf, size_t len, uint64_t off, size_t *got, char *src);
/* The file fh is closed: drop its windows. */
void s3b_ra_release(struct backend_session *s, uint64_t fh);
/* The session ends: drop its files' windows, wait for their GETs. */
void s3b_ra_session_close(struct backend_session *s);

struct s3b_ra_stats {
	uint64_t windows;      /* window GETs started */
	uint64_t window_bytes; /* bytes READs took from windows */
	uint64_t direct;       /* READs (or their rest) sent as their own GET */
	uint64_t stale;	       /* windows dropped because the object changed */
};
void s3b_ra_stats(struct s3b_ra_stats *out);

#endif
