/*
 * policy.h - occfs policy files: one directory of YAML read by every daemon.
 *
 * policy_load() reads /etc/occfs/policy.d/ (every *.yaml in name order) into
 * an immutable struct policy of plain C types, or fails with a list of
 * problems, each "file:line:column: message".  Loading never touches an
 * existing policy, so a daemon reloads by loading anew and swapping a
 * reference-counted pointer (struct policy_handle below); a broken new
 * policy leaves the old one in force.  The format is in occfs-policy(5).
 */
#ifndef OCCFS_POLICY_H
#define OCCFS_POLICY_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Where a setting came from, for messages after loading. */
struct policy_src {
	const char *file; /* the path as loaded */
	unsigned line, col;
};

/* ---- filesystems ---------------------------------------------------------
 */

enum policy_backend { POLICY_BACKEND_LOCAL, POLICY_BACKEND_S3 };

/* Bits of policy_fs.intents, after the token intents read/write/preview. */
#define POLICY_INTENT_READ 0x1u
#define POLICY_INTENT_WRITE 0x2u
#define POLICY_INTENT_PREVIEW 0x4u

/* The s3 backend's settings (mirrors brokerfs' struct broker_s3_config). */
struct policy_s3 {
	const char *endpoint;	      /* http(s)://host[:port] */
	const char *region;	      /* default "us-east-1" */
	const char *bucket, *prefix;  /* prefix "" when unset */
	const char *addressing;	      /* "path" (default) or "virtual" */
	const char *ca_file;	      /* NULL: system CAs */
	const char *credentials_file; /* root-only: access_key, secret_key */
	const char *sts_endpoint;     /* with role_arn, or both NULL */
	const char *role_arn;
	const char *proxy;	   /* CONNECT proxy (the egress edge) */
	uint64_t memory_bytes;	   /* 0: the broker's default */
	uint64_t part_bytes;	   /* 0: the broker's default */
	unsigned upload_threads;   /* 0: the broker's default */
	uint64_t retry_budget_ms;  /* 0: the broker's default */
	int rgw_quirks;		   /* 0 or 1 */
	const char *endpoint_host; /* parsed from endpoint */
	unsigned endpoint_port;	   /* 443 or 80 when not written */
};

struct policy_fs {
	const char *name; /* an exact filesystem_id or a glob pattern */
	int is_pattern;	  /* name holds * ? or [ */
	enum policy_backend backend;
	const char *local_root; /* local: the directory holding <fsid>/ */
	struct policy_s3 s3;	/* s3 */
	uint64_t quota_bytes;	/* 0: no limit */
	uint64_t quota_inodes;	/* 0: no limit */
	unsigned intents;	/* POLICY_INTENT_* */
	uint64_t ttl_ms;	/* longest handle lifetime; 0: tokens.max_ttl */
	uint64_t idle_timeout_ms; /* 0: none */
	uint64_t max_lifetime_ms; /* 0: none */
	struct policy_src src;
};

/* ---- tokens --------------------------------------------------------------
 */

struct policy_tokens {
	const char *public_key;	 /* NULL when unset */
	const char *private_key; /* control plane only; NULL when unset */
	const char *audience;	 /* NULL: no audience check */
	uint64_t max_ttl_ms;	 /* default 1 h */
};

/* ---- DLP -----------------------------------------------------------------
 */

enum policy_dlp_mode { POLICY_DLP_STRICT, POLICY_DLP_VISIBLE };
enum policy_dlp_kind { POLICY_DLP_BUILTIN, POLICY_DLP_REGEX, POLICY_DLP_HOOK };
enum policy_action { POLICY_ALLOW, POLICY_AUDIT, POLICY_BLOCK };
enum policy_severity {
	POLICY_SEV_INFO,
	POLICY_SEV_LOW,
	POLICY_SEV_MEDIUM,
	POLICY_SEV_HIGH,
	POLICY_SEV_CRITICAL
};

struct policy_dlp_rule {
	const char *name;
	enum policy_severity severity; /* default medium */
	enum policy_dlp_kind kind;
	const char *builtin;	  /* BUILTIN: a detector name */
	const char *regex;	  /* REGEX: checked by dlp_pattern_check */
	const char *hook_program; /* HOOK: exactly one of program, socket */
	const char *hook_socket;
	uint64_t hook_timeout_ms;    /* default 10 s */
	enum policy_action on_error; /* HOOK fails: ALLOW or BLOCK (default) */
	uint64_t min_size, max_size; /* 0: no bound */
	const char *const *files; /* name globs, NULL-terminated; NULL: all */
	enum policy_action action;
	struct policy_src src;
};

struct policy_dlp {
	enum policy_dlp_mode mode; /* default strict */
	const struct policy_dlp_rule *rules;
	size_t nrules;
};

/* ---- egress, custody, audit, operators ----------------------------------
 */

struct policy_egress_entry {
	const char *host; /* lower case; "*.example.com" or exact */
	unsigned port;	  /* 0: any port */
	struct policy_src src;
};

struct policy_custody {
	const char *name;
	const char *secret_file;
	uint64_t lease_ttl_ms;	      /* default and maximum 15 min */
	const char *const *consumers; /* upstream host[:port], NULL-term. */
	struct policy_src src;
};

enum policy_on_full {
	POLICY_FULL_DROP_NEW,
	POLICY_FULL_DROP_OLDEST,
	POLICY_FULL_BLOCK
};

struct policy_sampling {
	const char *op;	 /* a file operation, lower case */
	unsigned one_in; /* keep one event in this many (>= 1) */
};

struct policy_audit {
	const char *socket;	     /* NULL: the built-in default */
	const char *spool_dir;	     /* NULL: the built-in default */
	uint64_t spool_max_bytes;    /* default 256 MiB */
	enum policy_on_full on_full; /* default drop_new */
	const char *log_dir;	     /* occfs-auditd; NULL: default */
	uint64_t segment_max_bytes;  /* default 64 MiB */
	const struct policy_sampling *sampling;
	size_t nsampling;
};

struct policy {
	int refs; /* atomic; see policy_ref */
	const char *dir;
	size_t nfiles;
	const struct policy_fs *fs;
	size_t nfs;
	struct policy_tokens tokens;
	struct policy_dlp dlp;
	int egress_set; /* an egress section exists (even empty: deny all) */
	const struct policy_egress_entry *egress;
	size_t negress;
	const struct policy_custody *custody;
	size_t ncustody;
	struct policy_audit audit;
	const uid_t *op_uids;
	size_t nop_uids;
	const gid_t *op_gids;
	size_t nop_gids;
	void *arena; /* owns every string and array above */
};

/* ---- loading -------------------------------------------------------------
 */

#define POLICY_NO_FILE_CHECKS 0x1u /* skip secret-file existence/modes */

struct policy_opts {
	unsigned flags;
	/* Look absolute paths up below this directory (an image being built);
	 * NULL: as written. */
	const char *file_root;
};

struct policy_problem {
	char *file;
	unsigned line, col; /* 1-based; 0 when not tied to a place */
	char *msg;
};

struct policy_problems {
	struct policy_problem *v;
	size_t n, cap;
	size_t dropped; /* past POLICY_MAX_PROBLEMS */
};

#define POLICY_MAX_PROBLEMS 200

/*
 * Load every *.yaml of dir (name order).  Returns a new policy holding one
 * reference, or NULL with errno set: EINVAL when probs lists what is wrong,
 * else what failed (ENOENT, ENOMEM, ...; also in probs).  probs may be
 * NULL; when given it must start zeroed or be cleared with
 * policy_problems_free.  opts may be NULL.
 */
struct policy *policy_load(const char *dir, const struct policy_opts *opts,
			   struct policy_problems *probs);

/* Load YAML text as if it were the only file, named name (tests, fuzzing). */
struct policy *policy_load_buf(const char *name, const char *buf, size_t len,
			       const struct policy_opts *opts,
			       struct policy_problems *probs);

/* "file:line:column: message" into buf; returns what snprintf returns. */
int policy_problem_format(const struct policy_problem *p, char *buf,
			  size_t len);
void policy_problems_free(struct policy_problems *probs);

/* ---- references and the reload swap --------------------------------------
 */

struct policy *policy_ref(struct policy *pol);
void policy_unref(struct policy *pol); /* frees at the last reference */

/*
 * The policy in force, for daemons that reload on SIGHUP.  The rule: a
 * thread that needs the policy calls policy_handle_get, uses the returned
 * policy for one unit of work (a request, a batch) and then policy_unref;
 * it never keeps a pointer from a policy beyond its reference.  A reload
 * loads a new policy off to the side and policy_handle_swap publishes it;
 * the old policy is freed when its last user lets go.  A session that must
 * keep its start-time settings keeps its own reference instead.
 */
struct policy_handle {
	pthread_mutex_t lock;
	struct policy *cur; /* lock; holds one reference */
};

void policy_handle_init(struct policy_handle *h, struct policy *pol);
struct policy *policy_handle_get(struct policy_handle *h);
void policy_handle_swap(struct policy_handle *h, struct policy *pol);
void policy_handle_cleanup(struct policy_handle *h);

/*
 * Load dir and, only when it has no problem, make it the policy in force.
 * 0, or -errno (-EINVAL: problems in probs) with the old policy in force.
 */
int policy_handle_reload(struct policy_handle *h, const char *dir,
			 const struct policy_opts *opts,
			 struct policy_problems *probs);

/* ---- lookups ---------------------------------------------------------------
 */

/*
 * The filesystem entry for fsid: an entry named exactly fsid, else the
 * first pattern that matches in load order.  NULL (errno ENOENT) when none.
 */
const struct policy_fs *policy_fs_find(const struct policy *pol,
				       const char *fsid);
/* Does fs allow a token intent ("read", "write", "preview")?  1 or 0. */
int policy_fs_allows_intent(const struct policy_fs *fs, const char *intent);
/* 1 when egress.allow admits host:port (IPv6 without brackets), else 0. */
int policy_egress_allowed(const struct policy *pol, const char *host,
			  unsigned port);
const struct policy_custody *policy_custody_find(const struct policy *pol,
						 const char *name);
const struct policy_dlp_rule *policy_dlp_rule_find(const struct policy *pol,
						   const char *name);
/* Is uid (or gid) an operator on the control plane?  1 or 0. */
int policy_operator_allowed(const struct policy *pol, uid_t uid, gid_t gid);
/* Keep one in how many events of operation op (1: every one). */
unsigned policy_audit_sample(const struct policy *pol, const char *op);

/*
 * The effective policy (defaults filled in) as indented JSON, malloc'd;
 * NULL with errno on failure.  Sizes in bytes, durations in seconds.
 */
char *policy_json(const struct policy *pol);

/* Names of enums as written in the files. */
const char *policy_action_name(enum policy_action a);
const char *policy_severity_name(enum policy_severity s);

/* The built-in DLP detector names, NULL-terminated. */
extern const char *const policy_dlp_builtins[];

#endif
