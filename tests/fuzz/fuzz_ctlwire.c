/*
 * fuzz_ctlwire.c - libFuzzer target for the control plane's wire decoder.
 *
 * Both of occfs-controld's sockets and the broker's control link read
 * newline-delimited JSON through ctl_wire_decode(), so it is a trust
 * boundary: an operator tool or a broker may send anything.  The input is
 * treated as a byte stream and decoded message by message, the way the
 * daemons consume their buffers.  Checked: nothing crashes or leaks, every
 * call consumes within bounds, a decoded message is a JSON object, and it
 * survives an encode/decode round trip unchanged.
 */
#include "ctl_wire.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_roundtrip(json_t *msg)
{
	json_t *back = NULL;
	const char *why = NULL;
	char *line = NULL;
	size_t len = 0, used = 0;

	if (ctl_wire_encode(msg, &line, &len) != 0)
		return; /* too big to send: a refusal, not a bug */
	if (ctl_wire_decode(line, len, &back, &used, &why) != 1 ||
	    used != len || !json_equal(msg, back)) {
		fprintf(stderr, "fuzz_ctlwire: round trip changed a message\n");
		abort();
	}
	json_decref(back);
	free(line);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	size_t left = size;

	while (left > 0) {
		json_t *msg = NULL;
		const char *why = NULL;
		size_t used = 0;
		int rc = ctl_wire_decode(p, left, &msg, &used, &why);

		if (rc <= 0)
			break; /* incomplete, or refused with a reason */
		if (used == 0 || used > left || !json_is_object(msg)) {
			fprintf(stderr, "fuzz_ctlwire: bad decode result\n");
			abort();
		}
		fuzz_roundtrip(msg);
		json_decref(msg);
		p += used;
		left -= used;
	}
	return 0;
}
