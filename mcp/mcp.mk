# occfs-mcp: the agent-facing MCP interface (read-only tools).
# handle_file.o comes from libmountc.a (the same handle-file rules as the
# mount helper); nothing else of mountc is linked.
bin_PROGRAMS += mcp/occfs-mcp
mcp_occfs_mcp_SOURCES = mcp/mcp.h mcp/main.c mcp/mcp_broker.c \
	mcp/mcp_rpc.c mcp/mcp_tools.c mcp/mcp_schema.c mcp/mcp_stdio.c \
	mcp/mcp_http.c
mcp_occfs_mcp_CFLAGS = $(AM_CFLAGS) $(MHD_CFLAGS) $(JANSSON_CFLAGS)
mcp_occfs_mcp_LDADD = libmountc.a $(COMMON_LIBS) $(MHD_LIBS) $(JANSSON_LIBS)
