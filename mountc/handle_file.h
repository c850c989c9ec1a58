/*
 * handle_file.h - read the session handle from its file, then destroy it.
 *
 * The handle is the guest's only secret.  It is read from a regular file
 * that only its owner may access, into memory that is locked (never
 * swapped) and excluded from core dumps; the file is then overwritten with
 * zeros, synced and removed, so the handle exists in one place only.
 */
#ifndef OCCFS_HANDLE_FILE_H
#define OCCFS_HANDLE_FILE_H

#include <stddef.h>

struct handle_secret {
	char *p;    /* the handle bytes, NUL-terminated; NULL when empty */
	size_t len; /* without the NUL */
	size_t map; /* bytes mapped at p */
};

/*
 * Check path without reading it (mount -f): a regular file, not a
 * symlink, owned by us, no group/other access, 1..TOKEN_MAX_LEN bytes.
 * Returns 0 or -errno with why (a message naming the file) filled in.
 */
int handle_file_check(const char *path, char *why, size_t whylen);

/*
 * Check as above, read the handle into *h (trailing whitespace stripped;
 * it must be printable ASCII), then scrub the file.  A failure to scrub
 * (e.g. a read-only filesystem) is logged as a warning but is not an
 * error.  Returns 0 or -errno with why filled in.
 */
int handle_file_read(const char *path, struct handle_secret *h, char *why,
		     size_t whylen);

/* Wipe and release the handle. */
void handle_secret_free(struct handle_secret *h);

#endif
