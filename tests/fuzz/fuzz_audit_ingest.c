/*
 * fuzz_audit_ingest.c - libFuzzer target for occfs-auditd's ingest path.
 *
 * Any process allowed on the audit socket can send anything, so the
 * framing (audit_wire_frame) and the record check (auditd_validate) are a
 * trust boundary.  The input is consumed as the daemon consumes a
 * connection's buffer: frame by frame until a bad length or the end.
 * Checked: nothing crashes or leaks; a frame length is within bounds; an
 * accepted record is one line of JSON (no newline: the log is one record
 * per line) that parses to an object with a numeric class_uid, and is
 * accepted again when validated a second time (as a forwarded record is).
 */
#include "audit_wire.h"
#include "auditd.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_check_record(const char *json)
{
	json_error_t err;
	json_t *o = json_loads(json, 0, &err);
	char why[128], *again;

	if (strchr(json, '\n') || !json_is_object(o) ||
	    !json_is_integer(json_object_get(o, "class_uid"))) {
		fprintf(stderr, "fuzz_audit_ingest: accepted a bad record\n");
		abort();
	}
	again = auditd_validate(json, strlen(json), why, sizeof(why));
	if (!again) {
		fprintf(stderr,
			"fuzz_audit_ingest: refused its own output: %s\n", why);
		abort();
	}
	free(again);
	json_decref(o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t off = 0;

	while (off < size) {
		long n = audit_wire_frame(data + off, size - off);
		char why[128], *json;

		if (n <= 0)
			break; /* incomplete, or a length the daemon refuses */
		if ((size_t)n > size - off ||
		    (size_t)n > AUDIT_FRAME_HDR + AUDIT_FRAME_MAX) {
			fprintf(stderr, "fuzz_audit_ingest: frame overrun\n");
			abort();
		}
		json = auditd_validate(data + off + AUDIT_FRAME_HDR,
				       (size_t)n - AUDIT_FRAME_HDR, why,
				       sizeof(why));
		if (json)
			fuzz_check_record(json);
		free(json);
		off += (size_t)n;
	}
	return 0;
}
