/*
 * test_newdir.c - mountc's directories just made (mountc/newdir.h).
 *
 * A directory made is empty but for the names added through the mount,
 * for the time-to-live only; RMDIR, a push and reuse of the node id
 * forget it; a directory that overflows its name bound is forgotten, never
 * trusted; the oldest of too many directories gives way; off is off.
 */
#include "newdir.h"
#include "unit.h"

#include <stdio.h>

#define S 1000000000ull /* one second in ns */

int main(void)
{
	char name[32];

	newdir_init(S);
	CHECK(!newdir_absent(5, "a", 0)); /* not made here: ask */
	newdir_made(1, "d", 5, 10 * S);
	CHECK(newdir_absent(5, "a", 10 * S));
	newdir_adding(5, "a");
	CHECK(!newdir_absent(5, "a", 10 * S));
	CHECK(newdir_absent(5, "b", 10 * S + S / 2));
	CHECK(!newdir_absent(5, "b", 11 * S)); /* expired */
	CHECK(!newdir_absent(5, "c", 10 * S)); /* and freed */

	/* RMDIR of its name in its parent forgets it; another name does not */
	newdir_made(1, "d", 5, 20 * S);
	newdir_removed(1, "other");
	CHECK(newdir_absent(5, "x", 20 * S));
	newdir_removed(2, "d");
	CHECK(newdir_absent(5, "x", 20 * S));
	newdir_removed(1, "d");
	CHECK(!newdir_absent(5, "x", 20 * S));

	/* a push forgets it; so does newdir_forget */
	newdir_made(1, "d", 5, 30 * S);
	newdir_made(1, "e", 6, 30 * S);
	newdir_forget(5);
	CHECK(!newdir_absent(5, "x", 30 * S));
	CHECK(newdir_absent(6, "x", 30 * S));
	newdir_reset();
	CHECK(!newdir_absent(6, "x", 30 * S));

	/* a reused node id starts afresh */
	newdir_made(1, "d", 7, 40 * S);
	newdir_adding(7, "kept");
	newdir_made(1, "d2", 7, 40 * S);
	CHECK(newdir_absent(7, "kept", 40 * S));

	/* names beyond the bound: the directory is forgotten, all names
	 * added before stay known until then */
	newdir_made(1, "big", 8, 50 * S);
	for (unsigned i = 0; i < NEWDIR_NAMES; i++) {
		snprintf(name, sizeof(name), "f%u", i);
		newdir_adding(8, name);
	}
	CHECK(!newdir_absent(8, "f0", 50 * S));
	CHECK(!newdir_absent(8, "f16383", 50 * S));
	CHECK(newdir_absent(8, "g", 50 * S));
	newdir_adding(8, "one-more");
	CHECK(!newdir_absent(8, "g", 50 * S));

	/* too many directories: the oldest gives way */
	for (unsigned i = 0; i < NEWDIR_MAX; i++)
		newdir_made(1, "m", 100 + i, 60 * S + i);
	CHECK(newdir_absent(100, "x", 60 * S + 100));
	newdir_made(1, "m", 999, 60 * S + 200);
	CHECK(!newdir_absent(100, "x", 60 * S + 300));
	CHECK(newdir_absent(101, "x", 60 * S + 300));
	CHECK(newdir_absent(999, "x", 60 * S + 300));

	/* off: nothing is ever absent */
	newdir_init(0);
	newdir_made(1, "d", 5, 70 * S);
	CHECK(!newdir_absent(5, "x", 70 * S));
	return unit_done("test_newdir");
}
