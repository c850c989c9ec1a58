/*
 * broker_audit.h - what brokerfs records in the OCSF audit trail.
 *
 * Every handle check at HELLO becomes an Authentication event that must be
 * durable before the HELLO is answered (fail closed), every session close a
 * Logoff, and every completed file operation a File System Activity event
 * (fail open: a local append, never a wait on occfs-auditd).  The emitter
 * is one per process, opened after the fork and closed after the loop.
 *
 * The protocol names files by node id, so each audited session keeps a
 * table of the names the client learned (broker_audit_names.c) and events
 * carry full paths below the filesystem root, rebuilt from it.
 */
#ifndef OCCFS_BROKER_AUDIT_H
#define OCCFS_BROKER_AUDIT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct broker_config;
struct proto_msg;
struct session;
struct token_claims;

#define BROKER_AUDIT_DEFAULT_SPOOL "/var/lib/occfs/audit-spool/brokerfs"
#define BROKER_AUDIT_DEFAULT_RW "aggregate:1000"
#define BROKER_AUDIT_LINGER_MS 2000u /* delivery time given at exit */

/* The reason a HELLO is refused when its Logon cannot be recorded. */
#define BROKER_AUDIT_UNAVAILABLE "audit unavailable"

/* Settings only (brokerfs -n): 0, or -1 after printing the problem. */
int broker_audit_check(const struct broker_config *cfg);
/* After daemonizing: start the emitter (or log that auditing is off). */
int broker_audit_open(const struct broker_config *cfg);
/*
 * After the loop ended: flush aggregates, give delivery a short linger and
 * stop, or only flush when busy (a worker never came back and may still
 * emit).
 */
void broker_audit_close(int busy);
int broker_audit_on(void); /* 1 when events are recorded */

/* ---- per session ------------------------------------------------------ */

struct broker_audit_sess;

/*
 * At HELLO, on the loop thread.  The peer's process credentials when the
 * transport has them (unix sockets).  NULL when auditing is off or on
 * allocation failure (the session then records no file events).
 */
struct broker_audit_sess *broker_audit_sess_new(int has_cred, uid_t uid,
						gid_t gid, pid_t pid);
void broker_audit_sess_free(struct broker_audit_sess *as);
/* The handle check failed: the Logon records why (copied). */
void broker_audit_sess_refuse(struct broker_audit_sess *as, const char *why);
/* Why the HELLO is refused, or NULL. */
const char *broker_audit_sess_reason(const struct broker_audit_sess *as);

/*
 * The claims of a handle whose signature verified but that was refused
 * (expired, wrong audience), for the failure event.  Never trusted for
 * anything else.  0, or -EINVAL when they cannot be read.
 */
int broker_audit_claims(const char *jwt, size_t len, struct token_claims *out);

/*
 * On a worker, before the HELLO reply.  Records the handle check of s
 * (pass unless broker_audit_sess_refuse was called).  Returns 0, or -EACCES
 * when a passing check could not be made durable: refuse the HELLO.
 */
int broker_audit_logon(struct session *s, struct broker_audit_sess *as);
/* On a worker: the session ended (why: NULL for a normal close). */
void broker_audit_logoff(struct session *s, struct broker_audit_sess *as,
			 const char *why);
/*
 * After req ran (rc: 0 or -errno; rep NULL when it never reached the
 * backend).  Any thread; never blocks on anything but a local append.
 */
void broker_audit_request(struct session *s, struct broker_audit_sess *as,
			  const struct proto_msg *req,
			  const struct proto_msg *rep, int rc);

/*
 * A DLP finding (a rule with action audit or block matched path).  The
 * record is durable when this returns 0; -errno when it could not be
 * written (the caller logs it; the verdict stands either way).  Any
 * thread; 0 at once when auditing is off.  severity is OCSF's 1..5.
 */
int broker_audit_finding(const char *fsid, const char *path, const char *rule,
			 int severity, int blocked, uint64_t offset,
			 const char *quarantine);

/* ---- the name table (broker_audit_names.c) ---------------------------- */

struct audit_names;

struct audit_names *audit_names_new(void);
void audit_names_free(struct audit_names *t);
/* "/a/b" for node id, "/a/b/name" for a child; unknown nodes as "#ID". */
void audit_names_path(struct audit_names *t, uint64_t id, char *buf,
		      size_t size);
void audit_names_child(struct audit_names *t, uint64_t parent, const char *name,
		       char *buf, size_t size);
/* The client learned id as parent/name (one lookup reference). */
void audit_names_learn(struct audit_names *t, uint64_t parent, const char *name,
		       uint64_t id);
void audit_names_forget(struct audit_names *t, uint64_t id, uint64_t count);
void audit_names_unlink(struct audit_names *t, uint64_t parent,
			const char *name);
void audit_names_rename(struct audit_names *t, uint64_t p1, const char *n1,
			uint64_t p2, const char *n2, int exchange);
size_t audit_names_count(struct audit_names *t);

#endif
