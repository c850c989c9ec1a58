/*
 * broker_dlp.h - brokerfs' DLP scanner: the policy's dlp rules compiled
 * into a dlp engine per policy generation, installed for the backends
 * (dlp_scan.h), and the findings it reports.
 */
#ifndef OCCFS_BROKER_DLP_H
#define OCCFS_BROKER_DLP_H

#include <stdint.h>

struct buf;
struct policy;
struct dlp_finding;

/*
 * Compile pol's dlp section and make it the rule set of every scan that
 * starts from now on (scans already running finish with theirs).  No
 * rules: scanning off.  0, or -errno after logging why (the rule set in
 * force stays).  The first call installs the scanner for the backends.
 */
int broker_dlp_load(const struct policy *pol);
/* At exit, after every session closed. */
void broker_dlp_cleanup(void);

/*
 * One audit or block finding on fsid:path: a log line naming the rule
 * and the file, and the OCSF finding event (broker_audit, when it offers
 * one).  quarantine: the entry id of a blocked file, or NULL.  The
 * finding is also kept in fsid's ring of recent findings (below).
 */
void broker_dlp_report(const char *fsid, const char *path,
		       const struct dlp_finding *f, const char *quarantine);

/*
 * The DLP_FINDINGS reply (doc/protocol.md): fsid's newest findings since
 * the broker started, newest first, at most max (capped at
 * PROTO_MAX_FINDINGS), as a JSON array appended to out, stopping before
 * PROTO_MAX_FINDINGS_JSON bytes.  Nothing recorded: "[]".  0 or -ENOMEM.
 */
int broker_dlp_findings(const char *fsid, uint64_t max, struct buf *out);
/* Drop every recorded finding (at exit, and for tests). */
void broker_dlp_findings_clear(void);

#endif
