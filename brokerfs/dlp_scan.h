/*
 * dlp_scan.h - what a storage backend asks of DLP before data leaves it.
 *
 * The backends live in libbroker.a, which does not link the scanner
 * (Vectorscan, the policy library): they call these functions, and
 * brokerfs installs the real scanner (broker_dlp.c) once at start-up when
 * its policy has DLP rules.  With nothing installed, or a policy without
 * rules, every file is allowed and nothing is read: zero overhead.
 *
 * A scan takes the rule set in force when it starts, so a policy reload
 * applies from the next flush on.  A block names the deciding rule; the
 * backend then keeps the data in its quarantine area (an entry directory
 * named by dlp_scan_new_id(), with the plaintext in "data" and a
 * description in "info", see doc/dlp.md) and calls dlp_scan_blocked() so
 * the block is logged and recorded with the quarantine id.
 */
#ifndef OCCFS_DLP_SCAN_H
#define OCCFS_DLP_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum dlp_scan_action { DLP_SCAN_ALLOW, DLP_SCAN_AUDIT, DLP_SCAN_BLOCK };

struct dlp_scan_result {
	enum dlp_scan_action action;
	char rule[64];	  /* the deciding rule ("" for allow) */
	char detail[256]; /* severity, offset, redacted excerpt or reason */
	int severity;	  /* enum dlp_severity of the deciding finding */
	int kind;	  /* enum dlp_kind of the deciding finding */
	uint64_t offset;  /* where it matched */
	char excerpt[48]; /* redacted */
	char reason[128]; /* hooks: their reason or error */
	char qid[48];	  /* quarantine entry, once the backend kept it */
};

struct dlp_scan_ops {
	/* Are rules in force?  *visible: mode visible (else strict). */
	bool (*active)(bool *visible);
	/*
	 * Scan the first size bytes of fd (read with pread from offset 0;
	 * hooks read it too) as file path of filesystem fsid.  Logs and
	 * records audit and block findings.  0, or -errno with a block.
	 */
	int (*scan_fd)(const char *fsid, const char *path, int fd,
		       uint64_t size, struct dlp_scan_result *r);
	/* The blocked file is kept as r->qid ("" when keeping it failed). */
	void (*blocked)(const char *fsid, const char *path,
			const struct dlp_scan_result *r);
};

/* Once, before any session (brokerfs); NULL turns scanning off. */
void dlp_scan_install(const struct dlp_scan_ops *ops);

bool dlp_scan_active(bool *visible);
/* Allow without reading anything when no scanner is installed. */
int dlp_scan_fd(const char *fsid, const char *path, int fd, uint64_t size,
		struct dlp_scan_result *r);
void dlp_scan_blocked(const char *fsid, const char *path,
		      const struct dlp_scan_result *r);

/* ---- quarantine entries (shared by the backends) ------------------------
 */

#define DLP_QUARANTINE_LOCAL ".occfs-quarantine" /* below the local root */
#define DLP_QUARANTINE_S3 "quarantine"		 /* below the staging dir */

/* A new entry name: "q" + UTC time + random hex, e.g. q20240101T120000-... */
int dlp_scan_new_id(char *buf, size_t len);
/* Is name a plain entry name as made above?  (Checks the characters.) */
bool dlp_scan_id_ok(const char *name);

/* What an entry's "info" file says. */
struct dlp_scan_info {
	const char *backend; /* "local" or "s3" */
	const char *fsid;
	const char *path;  /* guest path below the filesystem root */
	const char *key;   /* s3: the object key; NULL for local */
	const char *stage; /* s3: the stage id it came from */
	uint64_t size;
	const struct dlp_scan_result *r;
};

/* Write dirfd/name/info (0600, fsynced, then renamed in place). */
int dlp_scan_write_info(int entry_dirfd, const struct dlp_scan_info *in);

#endif
