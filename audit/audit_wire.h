/*
 * audit_wire.h - the ingest framing between emitters and occfs-auditd, and
 * the record format of spool files (the same frames).
 *
 * Emitter to daemon: frames of a 4-byte big-endian length followed by that
 * many bytes of one JSON object (an OCSF event).  Daemon to emitter: one
 * 4-byte big-endian status per frame, in order: 0 once the record is in the
 * log and fsynced, or an errno (EINVAL: refused as malformed; the emitter
 * must not resend it).  A length of 0 or above AUDIT_FRAME_MAX is a
 * protocol error and the daemon closes the connection.
 */
#ifndef OCCFS_AUDIT_WIRE_H
#define OCCFS_AUDIT_WIRE_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#define AUDIT_FRAME_MAX (64 * 1024)
#define AUDIT_FRAME_HDR 4
#define AUDIT_DEFAULT_SOCKET RUNSTATEDIR "/occfs/audit.sock"

static inline void audit_wire_put32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
}

static inline uint32_t audit_wire_get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

/* Length of the frame starting at p if it is complete: > 0 total bytes,
 * 0 need more, -EBADMSG bad length. */
static inline long audit_wire_frame(const uint8_t *p, size_t avail)
{
	uint32_t n;

	if (avail < AUDIT_FRAME_HDR)
		return 0;
	n = audit_wire_get32(p);
	if (n == 0 || n > AUDIT_FRAME_MAX)
		return -EBADMSG;
	if (avail < AUDIT_FRAME_HDR + (size_t)n)
		return 0;
	return AUDIT_FRAME_HDR + (long)n;
}

#endif
