/*
 * fuzz_mcp_rpc.c - libFuzzer target for occfs-mcp's JSON-RPC core.
 *
 * Each input goes to mcp_rpc_handle twice: whole, on a fresh session (so
 * initialize, batches and the lifecycle checks are reached), and line by
 * line on one session that was initialized with protocol 2025-03-26 (so
 * batches and tools/call with fuzzed arguments reach the schema checker
 * and the tools).  The broker link points at a socket that does not
 * exist: the tools take their "broker unreachable" paths without network.
 * The only requirement is that nothing crashes or leaks, and that every
 * reply is one line of JSON.
 */
#include "handle_file.h"
#include "log.h"
#include "mcp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct mcp_broker *broker;

static const char init_0326[] =
    "{\"jsonrpc\":\"2.0\",\"id\":0,\"method\":\"initialize\",\"params\":{"
    "\"protocolVersion\":\"2025-03-26\",\"capabilities\":{},"
    "\"clientInfo\":{\"name\":\"f\",\"version\":\"1\"}}}";

static void setup(void)
{
	/* A JWT-shaped handle: payload {"sid":"s","intent":"read"}. */
	static const char jwt[] =
	    "e30.eyJzaWQiOiJzIiwiaW50ZW50IjoicmVhZCJ9.c2ln";
	struct handle_secret h = {0};
	char why[256];

	log_init("fuzz_mcp_rpc", 0);
	if (mcp_tools_init())
		abort();
	h.map = 4096;
	h.p = mmap(NULL, h.map, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (h.p == MAP_FAILED)
		abort();
	memcpy(h.p, jwt, sizeof(jwt));
	h.len = sizeof(jwt) - 1;
	broker = mcp_broker_new("unix:/nonexistent/occfs-fuzz.sock", NULL, &h,
				100, why, sizeof(why));
	if (!broker)
		abort();
}

static void feed(struct mcp_sess *s, const char *p, size_t n)
{
	struct mcp_reply r;

	mcp_rpc_handle(s, p, n, &r);
	if (r.body && strchr(r.body, '\n'))
		abort(); /* stdio framing would break */
	free(r.body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *nl;
	struct mcp_sess s;

	if (!broker)
		setup();
	mcp_sess_init(&s, broker);
	feed(&s, p, size);
	mcp_sess_init(&s, broker);
	feed(&s, init_0326, sizeof(init_0326) - 1);
	while (size) {
		nl = memchr(p, '\n', size);
		feed(&s, p, nl ? (size_t)(nl - p) : size);
		if (!nl)
			break;
		size -= (size_t)(nl - p) + 1;
		p = nl + 1;
	}
	return 0;
}
