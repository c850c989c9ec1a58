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
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dlp.h"

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

/*
 * A built-in detector.  confirm, when set, gets the bytes ending at a match
 * end (at most DLP_WINDOW of them) and returns the length of the confirmed
 * match, or -1 to drop it; detectors with a confirmer do not use
 * SINGLEMATCH, since an unconfirmed first match must not hide a later one.
 */
struct dlp_builtin {
	const char *name;
	const char *pattern;
	unsigned flags;
	long (*confirm)(const unsigned char *w, size_t wlen);
};

const struct dlp_builtin *dlp_builtin_find(const char *name);

/* Bytes of history a stream keeps for confirmers and excerpts. */
#define DLP_WINDOW 4096

/* A compiled rule: the spec's strings copied and checked. */
struct dlp_rule {
	char name[DLP_NAME_MAX];
	enum dlp_severity severity;
	enum dlp_kind kind;
	enum dlp_action action;
	const struct dlp_builtin *bi; /* DLP_KIND_BUILTIN */
	uint64_t min_size, max_size;
	char **globs;
	size_t nglobs;
	unsigned char magic[DLP_MAGIC_MAX];
	size_t magic_len;
	char **argv;  /* DLP_KIND_HOOK, program; NULL-terminated */
	char *socket; /* DLP_KIND_HOOK, unix socket */
	int timeout_ms;
	enum dlp_action on_error;
};

/*
 * Immutable after dlp_engine_new.  Vectorscan ids are rule indexes.  som is
 * a block-mode copy of the patterns with SOM_LEFTMOST, used only to find
 * where a reported match starts (findings are rare, so the cost of a rescan
 * of the window does not matter); patterns SOM cannot handle are left out
 * of it and their findings get an approximate start.
 */
struct dlp_engine {
	struct dlp_rule *rules;
	size_t nrules;
	hs_database_t *db;     /* streaming; NULL when no pattern rules */
	hs_database_t *som;    /* block, SOM; NULL when none compiled */
	hs_scratch_t *scratch; /* prototype that streams clone */
	bool has_hooks;
};

/* dlp_engine.c: does rule r apply to this name / size / first bytes? */
bool dlp_rule_name_ok(const struct dlp_rule *r, const char *name);
bool dlp_rule_size_ok(const struct dlp_rule *r, uint64_t size);
bool dlp_rule_magic_ok(const struct dlp_rule *r, const unsigned char *head,
		       size_t headlen);

/*
 * dlp_hook.c: run hook rule r on the plaintext (fd, bytes [0, size)).
 * Returns DLP_ALLOW or DLP_BLOCK; reason gets the hook's reason or, when the
 * hook failed and on_error decided, what went wrong.
 */
enum dlp_action dlp_hook_run(const struct dlp_rule *r, const char *name, int fd,
			     uint64_t size, char *reason, size_t reasonlen);

#endif
