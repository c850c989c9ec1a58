/*
 * dlp.h - the DLP content scanner: rules, streaming scans, verdicts.
 *
 * (The scanner's full interface is defined with its implementation; the
 * one function below is what the policy checker needs from it.)
 */
#ifndef OCCFS_DLP_H
#define OCCFS_DLP_H

#include <stddef.h>

/*
 * Would pattern compile as a custom DLP rule?  0, or -EINVAL with a
 * human-readable reason in err (and *err_offset, when known, the byte
 * offset in pattern where the problem is; else -1).  Uses exactly the
 * engine and flags the scanner uses, so the policy checker and the broker
 * never disagree about a pattern.
 */
int dlp_pattern_check(const char *pattern, char *err, size_t errlen,
		      int *err_offset);

#endif
