/*
 * ctl_wire.h - the control plane's wire format, the one definition shared
 * by occfs-controld, occfsctl and brokerfs's control link.
 *
 * Both of occfs-controld's sockets speak JSON lines: one compact JSON object
 * per line, at most CTL_MAX_LINE bytes with its newline.  jansson never
 * writes a raw newline inside a compact document, so a newline always ends
 * a message.  A peer that sends a longer line, something that is not a JSON
 * object, or duplicate keys is disconnected.
 *
 * Operator socket (occfsctl -> occfs-controld), one request at a time:
 *   request  {"op": CTL_OP_*, ...fields below}
 *   reply    {"ok": true, ...} or {"ok": false, "error": "EACCES",
 *            "message": "why"}
 *
 * Control socket (brokerfs <-> occfs-controld): the broker connects and
 * says {"op":"hello","name":...,"pid":N}; occfs-controld answers with the
 * whole denylist state (CTL_B_STATE) and then pushes every change
 * (CTL_B_REVOKE, CTL_B_KILL, CTL_B_QUOTA), each with an "id" that the
 * broker acknowledges with {"op":"ack","id":N,"cut":N,...} once it acted.
 *
 * Changelog: 1 - first version.
 */
#ifndef OCCFS_CTL_WIRE_H
#define OCCFS_CTL_WIRE_H

#include <jansson.h>
#include <stddef.h>

#define CTL_WIRE_VERSION 1
#define CTL_MAX_LINE (8u << 20) /* a full denylist snapshot fits */
#define CTL_DEFAULT_OPERATOR_SOCKET "/run/occfs/controld.sock"
#define CTL_DEFAULT_CONTROL_SOCKET "/run/occfs/control.sock"

/* ---- operator requests ("op") and their fields ----------------------------
 */

/* fsid, intent, ttl (s, 0: the policy's limit), tenant, mountpoint,
 * handle_path, endpoint (optional: the guest's view of the broker). */
#define CTL_OP_CREATE "session.create"
#define CTL_OP_LIST "session.list"	 /* all (bool): also ended ones */
#define CTL_OP_DESTROY "session.destroy" /* sid */
#define CTL_OP_REVOKE "session.revoke"	 /* sid, or jti */
#define CTL_OP_REVOKE_ALL "session.revoke-all"
#define CTL_OP_LIFT "session.lift"
#define CTL_OP_QUOTA "session.quota" /* fsid or sid; bytes, inodes, clear */
#define CTL_OP_STATUS "status"

/* ---- broker link messages ("op") ------------------------------------------
 */

#define CTL_B_HELLO "hello" /* broker: name, pid */
#define CTL_B_ACK "ack"	    /* broker: id, cut, flushed, error */
#define CTL_B_STATE                                                     \
	"state"		      /* kill, not_before, deny[{sid,jti,exp}], \
			       * quotas[{fsid,bytes,inodes}] */
#define CTL_B_REVOKE "revoke" /* sid, jti, exp, reason, flush (bool) */
#define CTL_B_KILL "kill"     /* on (bool), not_before */
#define CTL_B_QUOTA "quota"   /* fsid, bytes, inodes, clear (bool) */

/*
 * Append msg as one line to a malloc'd string (*out, *len).  0, -ENOMEM or
 * -E2BIG (over CTL_MAX_LINE).
 */
int ctl_wire_encode(const json_t *msg, char **out, size_t *len);

/*
 * Find one message at the start of p[0..len): 1 with *msg (a new reference
 * to an object) and *used, 0 when the line is not complete yet, or
 * -EBADMSG / -E2BIG with *why.
 */
int ctl_wire_decode(const char *p, size_t len, json_t **msg, size_t *used,
		    const char **why);

/*
 * Blocking helpers for command-line clients: send one message, or read
 * one, waiting at most timeout_ms.  0 or -errno (-ETIMEDOUT,
 * -ECONNRESET when the peer closed, -EBADMSG).
 */
int ctl_wire_send(int fd, const json_t *msg, int timeout_ms);
int ctl_wire_recv(int fd, json_t **msg, int timeout_ms);

/* Field accessors: the value or def when missing or of another type. */
const char *ctl_wire_str(const json_t *o, const char *key, const char *def);
long long ctl_wire_int(const json_t *o, const char *key, long long def);
int ctl_wire_bool(const json_t *o, const char *key, int def);

/* "EACCES" for 13; "E<n>" for unknown numbers.  And back: 0 if unknown. */
const char *ctl_wire_errname(int err);
int ctl_wire_errnum(const char *name);

#endif
