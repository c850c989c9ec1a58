/*
 * newdir.h - directories this mount has just made, whose names it knows.
 *
 * Creating a file costs the kernel a LOOKUP of the new name before the
 * CREATE, and that negative answer is a whole round trip to the broker.
 * A directory this mount made with MKDIR was empty then, and every name
 * made in it since through this mount passed through here; for a short
 * while (entry_timeout, the time the kernel itself may trust an entry) any
 * other name is known not to exist, and its LOOKUP is answered without
 * asking.  A name made in such a directory through another mount is seen
 * at most that long late, as with any cached entry.
 *
 * Bounded: NEWDIR_MAX directories (the oldest gives way), NEWDIR_NAMES
 * names each (a directory that fills up is simply forgotten).  Names are
 * kept as 64-bit hashes: a collision only sends a LOOKUP to the broker.
 * Thread-safe.
 */
#ifndef OCCFS_NEWDIR_H
#define OCCFS_NEWDIR_H

#include <stdint.h>

#define NEWDIR_MAX 64u
#define NEWDIR_NAMES 16384u

/* ttl_ns of 0 turns the whole thing off (entry_timeout=0). */
void newdir_init(uint64_t ttl_ns);

/* MKDIR made dir (node id) as name in parent; now_ns: CLOCK_MONOTONIC. */
void newdir_made(uint64_t parent, const char *name, uint64_t dir,
		 uint64_t now_ns);

/*
 * A call that may make name in dir (CREATE, MKNOD, MKDIR, SYMLINK, LINK,
 * RENAME's target) is about to be sent: from now on name is not absent.
 * Called before the request, so a LOOKUP racing it goes to the broker.
 */
void newdir_adding(uint64_t dir, const char *name);

/* 1 when name certainly does not exist in dir, else 0 (ask the broker). */
int newdir_absent(uint64_t dir, const char *name, uint64_t now_ns);

/* name was removed from parent (RMDIR): if it was a new dir, forget it. */
void newdir_removed(uint64_t parent, const char *name);

/* Forget what is known of dir (a push from the broker about it). */
void newdir_forget(uint64_t dir);

/* Drop everything (tests; unmount). */
void newdir_reset(void);

#endif
