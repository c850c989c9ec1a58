/*
 * unit.h - the few macros every unit test uses.
 *
 * A test program runs its cases in order, prints one line per failure with
 * file:line, and ends with "N passed, N failed"; its exit status is 1 when
 * anything failed (0 otherwise, 77 to skip), as automake's harness expects.
 */
#ifndef OCCFS_UNIT_H
#define OCCFS_UNIT_H

#include <stdio.h>
#include <string.h>

static int unit_passed, unit_failed;

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (cond) {                                                    \
			unit_passed++;                                         \
		} else {                                                       \
			unit_failed++;                                         \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, \
				__LINE__, #cond);                              \
		}                                                              \
	} while (0)

#define CHECK_EQ(a, b)                                                     \
	do {                                                               \
		long long ua_ = (long long)(a), ub_ = (long long)(b);      \
		if (ua_ == ub_) {                                          \
			unit_passed++;                                     \
		} else {                                                   \
			unit_failed++;                                     \
			fprintf(stderr, "%s:%d: %s == %s: %lld != %lld\n", \
				__FILE__, __LINE__, #a, #b, ua_, ub_);     \
		}                                                          \
	} while (0)

#define CHECK_STR(a, b)                                                       \
	do {                                                                  \
		const char *ua_ = (a), *ub_ = (b);                            \
		if (ua_ && ub_ && strcmp(ua_, ub_) == 0) {                    \
			unit_passed++;                                        \
		} else {                                                      \
			unit_failed++;                                        \
			fprintf(stderr, "%s:%d: %s: \"%s\" != \"%s\"\n",      \
				__FILE__, __LINE__, #a, ua_ ? ua_ : "(null)", \
				ub_ ? ub_ : "(null)");                        \
		}                                                             \
	} while (0)

static inline int unit_done(const char *name)
{
	printf("%s: %d passed, %d failed\n", name, unit_passed, unit_failed);
	return unit_failed ? 1 : 0;
}

#endif
