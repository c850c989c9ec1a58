/*
 * audit.h - the audit emitter every occfs daemon links: typed events in,
 * OCSF JSON out, spooled locally before occfs-auditd ever sees them.
 *
 * One struct audit per process.  audit_emit_file() never waits for the
 * audit daemon: it appends the event to the spool (a local write) and
 * returns; a background thread fsyncs the spool in batches and another sends
 * spooled records to occfs-auditd, resuming from the spool after an outage.
 * audit_emit_auth(), audit_emit_api() and audit_emit_finding() are durable:
 * they return 0 only once the record is fsynced in the spool, and -errno
 * otherwise, so the caller can refuse the action it was about to allow.
 *
 * Every call is thread-safe.  Strings in event structs are borrowed for the
 * duration of the call only.
 */
#ifndef OCCFS_AUDIT_H
#define OCCFS_AUDIT_H

#include <stdint.h>
#include <sys/types.h>

#define AUDIT_OCSF_VERSION "1.4.0"
#define AUDIT_TRACE_LEN 32 /* hex characters of a generated trace id */

/*
 * File operations.  X(name, OCSF activity_id, may be sampled/aggregated).
 * Only reads and writes may be aggregated or sampled; everything that
 * changes the namespace or permissions is always one event each.
 */
#define AUDIT_FILE_OPS(X)    \
	X(OPEN, 14, 0)       \
	X(CREATE, 1, 0)      \
	X(MKDIR, 1, 0)       \
	X(MKNOD, 1, 0)       \
	X(SYMLINK, 1, 0)     \
	X(LINK, 1, 0)        \
	X(READ, 2, 1)        \
	X(READDIR, 2, 0)     \
	X(WRITE, 3, 1)       \
	X(TRUNCATE, 3, 0)    \
	X(UNLINK, 4, 0)      \
	X(RMDIR, 4, 0)       \
	X(RENAME, 5, 0)      \
	X(SETATTR, 6, 0)     \
	X(SETXATTR, 6, 0)    \
	X(REMOVEXATTR, 6, 0) \
	X(CHMOD, 7, 0)       \
	X(CHOWN, 7, 0)       \
	X(GETATTR, 8, 0)     \
	X(MOUNT, 12, 0)      \
	X(UNMOUNT, 13, 0)

enum audit_file_op {
#define AUDIT_X(n, a, g) AUDIT_OP_##n,
	AUDIT_FILE_OPS(AUDIT_X)
#undef AUDIT_X
	    AUDIT_OP_COUNT
};

/* Who did it: a local process (peer credentials) and/or a remote peer. */
struct audit_actor {
	int has_cred; /* uid/gid/pid below are meaningful */
	uid_t uid;
	gid_t gid;
	pid_t pid;
	const char *user; /* a name, optional */
	const char
	    *peer; /* "unix:pid=12", "vsock:3:1024", "tls:10.0.0.2:4433" */
};

/* Fields every event may carry; zero/NULL means "fill in for me". */
struct audit_common {
	uint64_t time_ms;     /* 0 = now */
	const char *trace_id; /* NULL = a random 128-bit id */
};

struct audit_file_event {
	struct audit_common c;
	struct audit_actor actor;
	const char *sid;    /* session id */
	const char *fsid;   /* filesystem_id */
	const char *intent; /* read, write, preview */
	enum audit_file_op op;
	const char *path;     /* path below the filesystem root */
	const char *new_path; /* RENAME, LINK, SYMLINK target */
	uint64_t bytes;	      /* READ/WRITE byte count */
	int err; /* 0 = success, else the positive errno returned */
};

enum audit_auth_activity { AUDIT_AUTH_LOGON = 1, AUDIT_AUTH_LOGOFF = 2 };

struct audit_auth_event {
	struct audit_common c;
	enum audit_auth_activity activity;
	struct audit_actor peer; /* who presented the handle */
	const char *sid;
	const char *fsid;
	const char *tenant;
	const char *intent;
	const char *jti;
	const char *service; /* who checked it, e.g. "brokerfs" */
	int pass;	     /* 1 = handle accepted */
	const char *reason;  /* why refused ("expired", "revoked", ...) */
};

enum audit_api_activity {
	AUDIT_API_CREATE = 1,
	AUDIT_API_READ = 2,
	AUDIT_API_UPDATE = 3,
	AUDIT_API_DELETE = 4,
	AUDIT_API_OTHER = 99,
};

struct audit_api_event {
	struct audit_common c;
	enum audit_api_activity activity;
	struct audit_actor identity; /* the operator, from peer credentials */
	const char *service;	     /* "occfs-controld" */
	const char *operation;	     /* "session.revoke" */
	const char *target;	     /* what it acted on: a sid, "*", ... */
	const char *target_type;     /* "session", "filesystem", ... */
	int err;		     /* 0 = done, else positive errno */
	const char *detail;	     /* optional free text */
};

enum audit_verdict {
	AUDIT_VERDICT_ALLOW,
	AUDIT_VERDICT_AUDIT,
	AUDIT_VERDICT_BLOCK,
};

/* OCSF severity_id values. */
enum audit_severity {
	AUDIT_SEV_INFO = 1,
	AUDIT_SEV_LOW = 2,
	AUDIT_SEV_MEDIUM = 3,
	AUDIT_SEV_HIGH = 4,
	AUDIT_SEV_CRITICAL = 5,
};

struct audit_finding_event {
	struct audit_common c;
	struct audit_actor actor;
	const char *sid;
	const char *fsid;
	const char *rule; /* rule name from policy */
	enum audit_severity severity;
	const char *path;
	enum audit_verdict verdict;
	uint64_t offset;	/* where in the file it matched */
	const char *quarantine; /* where a blocked file is kept, optional */
};

/* What audit_emit_file() does when the spool is full. */
enum audit_full_policy {
	/* Drop the new file event, count it, and write one "N events dropped"
	 * event as soon as space returns.  The file operation proceeds. */
	AUDIT_FULL_DROP,
	/* Return -ENOSPC so the caller can refuse the file operation. */
	AUDIT_FULL_FAIL,
};

enum audit_op_mode {
	AUDIT_MODE_EACH,      /* one event per call (default) */
	AUDIT_MODE_AGGREGATE, /* sum per (session, fs, path, op, uid) per window
			       */
	AUDIT_MODE_SAMPLE,    /* keep one call in sample_n */
};

struct audit_op_policy {
	enum audit_op_mode mode;
	unsigned window_ms; /* AGGREGATE */
	unsigned sample_n;  /* SAMPLE */
};

struct audit_config {
	const char *spool_dir;	  /* required; created 0700 if missing */
	const char *socket_path;  /* occfs-auditd ingest socket; NULL = none */
	const char *product;	  /* this component: "brokerfs", ... */
	uint64_t spool_max_bytes; /* default 64 MiB */
	unsigned fsync_ms;	  /* batch fsync period, default 100 */
	unsigned fsync_events;	  /* or after this many events, 256 */
	unsigned retry_ms;	  /* reconnect delay, default 500 */
	unsigned io_timeout_ms;	  /* per send/ack wait, default 5000 */
	enum audit_full_policy full_policy;
	struct audit_op_policy ops[AUDIT_OP_COUNT];
};

struct audit_stats {
	uint64_t emitted;     /* events accepted by emit calls */
	uint64_t spooled;     /* records written to the spool */
	uint64_t delivered;   /* records acknowledged by occfs-auditd */
	uint64_t refused;     /* records the daemon refused as invalid */
	uint64_t dropped;     /* file events dropped (spool full or failing) */
	uint64_t aggregated;  /* calls folded into an aggregate event */
	uint64_t sampled_out; /* calls skipped by sampling */
	uint64_t spool_bytes; /* bytes held by the spool now */
	int connected;
};

struct audit;

void audit_config_init(struct audit_config *cfg);
/* Parse "drop" / "fail"; "each", "aggregate:MS", "sample:N". 0 or -EINVAL. */
int audit_config_full_policy(struct audit_config *cfg, const char *s);
int audit_config_op(struct audit_config *cfg, enum audit_file_op op,
		    const char *s);
int audit_op_from_name(const char *name); /* "read" -> AUDIT_OP_READ */
const char *audit_op_name(enum audit_file_op op);

/* NULL and errno on failure (EBUSY: another process owns the spool). */
struct audit *audit_open(const struct audit_config *cfg);
/* Emit pending aggregates, fsync, give delivery up to linger_ms, stop. */
void audit_close(struct audit *a, unsigned linger_ms);

int audit_emit_file(struct audit *a, const struct audit_file_event *ev);
int audit_emit_auth(struct audit *a, const struct audit_auth_event *ev);
int audit_emit_api(struct audit *a, const struct audit_api_event *ev);
int audit_emit_finding(struct audit *a, const struct audit_finding_event *ev);

/* Push out aggregates and wait until everything spooled so far is
 * delivered: 0, or -ETIMEDOUT. */
int audit_flush(struct audit *a, unsigned timeout_ms);
void audit_get_stats(struct audit *a, struct audit_stats *st);

#endif
