/*
 * dlp_int.h - declarations shared by the DLP scanner's source files only.
 *
 * The compile flags live here so that the engine and dlp_pattern_check()
 * can never drift apart: a pattern the policy checker accepts is one the
 * broker compiles.
 */
#ifndef OCCFS_DLP_INT_H
#define OCCFS_DLP_INT_H

#include <hs/hs.h>
#include <stddef.h>

/* Database mode: streaming, so matches spanning writes are found. */
#define DLP_HS_MODE HS_MODE_STREAM

/*
 * Flags for a custom pattern.  SINGLEMATCH because a custom rule decides the
 * verdict on its first match, and it lets Vectorscan stop tracking the
 * pattern once it fired; MULTILINE so ^ and $ mean line boundaries in text
 * files rather than only the start and end of the whole stream.
 */
#define DLP_HS_CUSTOM_FLAGS (HS_FLAG_SINGLEMATCH | HS_FLAG_MULTILINE)

/* Compile errors are copied into caller buffers of this size at most. */
#define DLP_ERR_MAX 256

#endif
