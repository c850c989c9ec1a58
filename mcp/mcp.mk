# occfs-mcp: the agent-facing MCP interface (read-only tools).
# handle_file.o comes from libmountc.a (the same handle-file rules as the
# mount helper); nothing else of mountc is linked.
bin_PROGRAMS += mcp/occfs-mcp
mcp_occfs_mcp_SOURCES = mcp/mcp.h mcp/main.c mcp/mcp_broker.c \
	mcp/mcp_rpc.c mcp/mcp_tools.c mcp/mcp_schema.c mcp/mcp_stdio.c \
	mcp/mcp_http.c
mcp_occfs_mcp_CFLAGS = $(AM_CFLAGS) $(MHD_CFLAGS) $(JANSSON_CFLAGS)
mcp_occfs_mcp_LDADD = libmountc.a $(COMMON_LIBS) $(MHD_LIBS) $(JANSSON_LIBS)

dist_man_MANS += man/occfs-mcp.1
dist_doc_DATA += doc/mcp.md

# Tests against a real brokerfs: golden transcripts over stdio and HTTP,
# the confinement proof, DLP findings through a real mount (needs root and
# /dev/fuse), and the official MCP SDK as a client (skips when npm cannot
# install it).
TESTS += tests/mcp/stdio.sh tests/mcp/http.sh tests/mcp/confine.sh \
	tests/mcp/sdk.sh tests/mcp/findings.sh
EXTRA_DIST += tests/mcp/lib.sh tests/mcp/filter.py tests/mcp/opsproxy.py \
	tests/mcp/confine.py tests/mcp/sdk-client.mjs \
	tests/mcp/stdio.sh tests/mcp/stdio.in tests/mcp/stdio2.in \
	tests/mcp/stdio3.in tests/mcp/stdio.out \
	tests/mcp/http.sh tests/mcp/http.out \
	tests/mcp/confine.sh tests/mcp/sdk.sh tests/mcp/findings.sh

# The JSON-RPC core as a fuzz target (libFuzzer with --enable-fuzzers,
# else the corpus replay driver), and its corpus replay in make check.
check_PROGRAMS += tests/mcp/fuzz_mcp_rpc
tests_mcp_fuzz_mcp_rpc_SOURCES = tests/mcp/fuzz_mcp_rpc.c $(FUZZ_MAIN) \
	mcp/mcp.h mcp/mcp_broker.c mcp/mcp_rpc.c mcp/mcp_tools.c \
	mcp/mcp_schema.c
tests_mcp_fuzz_mcp_rpc_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/mcp
tests_mcp_fuzz_mcp_rpc_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS) $(FUZZ_CFLAGS)
tests_mcp_fuzz_mcp_rpc_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_CFLAGS)
tests_mcp_fuzz_mcp_rpc_LDADD = libmountc.a $(COMMON_LIBS) $(JANSSON_LIBS)
TESTS += tests/mcp/fuzz-replay.sh
EXTRA_DIST += tests/mcp/fuzz-replay.sh tests/mcp/corpus
