/*
 * dlp.h - the DLP content scanner: rules, streaming scans, verdicts.
 *
 * A rule set (built-in detectors, custom Vectorscan patterns, external
 * hooks, each with conditions and an action) is compiled once into an
 * immutable engine that any number of threads may share.  Each file being
 * uploaded gets its own stream: feed it the plaintext in any chunking, then
 * finish it for a verdict (allow, audit, block) with findings whose excerpts
 * are redacted.  A match spanning two writes is found.  See doc/dlp.md.
 */
#ifndef OCCFS_DLP_H
#define OCCFS_DLP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Would pattern compile as a custom DLP rule?  0, or -EINVAL with a
 * human-readable reason in err (and *err_offset, when known, the byte
 * offset in pattern where the problem is; else -1).  Uses exactly the
 * engine and flags the scanner uses, so the policy checker and the broker
 * never disagree about a pattern.
 */
int dlp_pattern_check(const char *pattern, char *err, size_t errlen,
		      int *err_offset);

enum dlp_severity {
	DLP_SEV_LOW,
	DLP_SEV_MEDIUM,
	DLP_SEV_HIGH,
	DLP_SEV_CRITICAL,
};

/* Rule actions and verdicts share one ordered scale: the verdict is the
 * strongest action among the findings. */
enum dlp_action {
	DLP_ALLOW, /* finding listed, verdict unchanged (rule on trial) */
	DLP_AUDIT, /* allow, and record the finding */
	DLP_BLOCK,
};

enum dlp_kind {
	DLP_KIND_BUILTIN, /* detector named in dlp_rule_spec.detector */
	DLP_KIND_REGEX,	  /* dlp_rule_spec.pattern, Vectorscan syntax */
	DLP_KIND_HOOK,	  /* dlp_rule_spec.hook: program or unix socket */
};

/*
 * An external hook.  Exactly one of argv (argv[0] an absolute path; run
 * without a shell, plaintext on stdin) and socket (a unix stream socket
 * path) is set.  The answer is one line: "allow" or "block <reason>".
 * No answer within timeout_ms (0: 5000), a crash or a malformed answer gives
 * on_error (DLP_ALLOW: fail open, DLP_BLOCK: fail closed).
 */
struct dlp_hook_spec {
	const char *const *argv;
	const char *socket;
	int timeout_ms;
	enum dlp_action on_error;
};

/*
 * One rule.  Conditions: the rule applies only to files of min_size to
 * max_size bytes (0: no bound), whose name matches one of globs (none: all
 * files; a glob without '/' matches the last path component, one with '/'
 * the whole path), and whose first bytes are magic (magic_len 0: any).
 * Strings are copied by dlp_engine_new.
 */
struct dlp_rule_spec {
	const char *name; /* unique, 1..63 bytes */
	enum dlp_severity severity;
	enum dlp_kind kind;
	enum dlp_action action;
	const char *detector; /* DLP_KIND_BUILTIN: see dlp_builtin_name() */
	const char *pattern;  /* DLP_KIND_REGEX */
	struct dlp_hook_spec hook; /* DLP_KIND_HOOK */
	uint64_t min_size, max_size;
	const char *const *globs;
	size_t nglobs;
	const void *magic;
	size_t magic_len;
};

#define DLP_NAME_MAX 64
#define DLP_EXCERPT_MAX 48
#define DLP_REASON_MAX 128
#define DLP_MAGIC_MAX 64

/* At most one finding per rule per stream: the first confirmed match. */
struct dlp_finding {
	char rule[DLP_NAME_MAX];
	enum dlp_severity severity;
	enum dlp_action action;
	enum dlp_kind kind;
	uint64_t offset; /* first byte of the match (hooks: 0) */
	uint64_t end;	 /* one past its last byte (hooks: file size) */
	char excerpt[DLP_EXCERPT_MAX]; /* redacted: never the whole secret */
	char reason[DLP_REASON_MAX];   /* hooks: their reason or error */
};

struct dlp_verdict {
	enum dlp_action action;
	uint64_t size; /* bytes scanned */
	size_t nfindings;
	struct dlp_finding *findings; /* owned; dlp_verdict_cleanup() */
};

struct dlp_engine;
struct dlp_stream;

/*
 * Compile n rules.  NULL with errno set and a message naming the rule in
 * err on failure (bad pattern, unknown detector, duplicate name, ...).
 * The engine is immutable: share it between threads, free it once no
 * stream uses it.
 */
struct dlp_engine *dlp_engine_new(const struct dlp_rule_spec *specs, size_t n,
				  char *err, size_t errlen);
void dlp_engine_free(struct dlp_engine *e);
size_t dlp_engine_rule_count(const struct dlp_engine *e);

/*
 * Start scanning one file.  name is its path (for globs and findings);
 * expected_size is its final size if known, else -1 (lets the stream skip
 * work for rules whose size condition cannot hold).  One thread at a time
 * per stream.  NULL with errno on failure.
 */
struct dlp_stream *dlp_stream_open(const struct dlp_engine *e, const char *name,
				   int64_t expected_size);

/*
 * Hooks need the whole plaintext at finish.  By default the stream copies
 * what it is fed into an unlinked temporary file (O_TMPFILE, mode 0600) in
 * spool_dir ($TMPDIR or /tmp when NULL).  A caller that already holds the
 * plaintext in a file (the broker's staging file) passes its fd instead,
 * before the first write: the stream then reads it with pread from offset
 * 0 up to the bytes written, and never closes it.
 */
int dlp_stream_set_source(struct dlp_stream *s, int fd, const char *spool_dir);

/* Feed the next len bytes of the file.  0 or -errno. */
int dlp_stream_write(struct dlp_stream *s, const void *buf, size_t len);

/*
 * End of file: run the hooks that apply, then fill *v (clean it with
 * dlp_verdict_cleanup).  0 or -errno (then *v is a block with no
 * findings, so a caller that ignores the error still fails closed).
 */
int dlp_stream_finish(struct dlp_stream *s, struct dlp_verdict *v);
void dlp_stream_free(struct dlp_stream *s);

void dlp_verdict_cleanup(struct dlp_verdict *v);

/* Names for policy files and logs; parse returns 0 or -EINVAL. */
const char *dlp_severity_name(enum dlp_severity s);
const char *dlp_action_name(enum dlp_action a);
int dlp_severity_parse(const char *s, enum dlp_severity *out);
int dlp_action_parse(const char *s, enum dlp_action *out);

/* The built-in detectors: i-th name, NULL past the end. */
const char *dlp_builtin_name(size_t i);

#endif
