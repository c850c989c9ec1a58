/*
 * dlp_pattern.c - does a custom pattern compile the way the scanner would?
 *
 * The policy checker calls this for every custom DLP rule so that a broken
 * pattern is reported at check time with the position of the problem,
 * instead of making the broker refuse the whole rule set at reload.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dlp.h"
#include "dlp_int.h"

/*
 * Vectorscan has no offset field in its compile error; its parser writes the
 * position into the message as "index N" ("Unmatched parentheses at index
 * 1."), so take it from there.  -1 when the message names no position.
 */
static int error_index(const char *msg)
{
	const char *p = strstr(msg, "index ");
	long v;
	char *end;

	if (!p)
		return -1;
	errno = 0;
	v = strtol(p + 6, &end, 10);
	if (end == p + 6 || errno || v < 0 || v > 1 << 30)
		return -1;
	return (int)v;
}

int dlp_pattern_check(const char *pattern, char *err, size_t errlen,
		      int *err_offset)
{
	hs_database_t *db = NULL;
	hs_compile_error_t *cerr = NULL;

	if (err_offset)
		*err_offset = -1;
	if (!pattern || !*pattern) {
		if (err && errlen)
			snprintf(err, errlen, "empty pattern");
		return -EINVAL;
	}
	if (hs_compile(pattern, DLP_HS_CUSTOM_FLAGS, DLP_HS_MODE, NULL, &db,
		       &cerr) == HS_SUCCESS) {
		hs_free_database(db);
		return 0;
	}
	if (err && errlen)
		snprintf(err, errlen, "%s",
			 cerr && cerr->message ? cerr->message
					       : "pattern does not compile");
	if (err_offset && cerr && cerr->message)
		*err_offset = error_index(cerr->message);
	hs_free_compile_error(cerr);
	return -EINVAL;
}
