/*
 * mcp.h - occfs-mcp: the read-only MCP interface for one session.
 *
 * occfs-mcp speaks the Model Context Protocol (JSON-RPC 2.0) over stdio or
 * Streamable HTTP on loopback.  It holds one session handle and talks to
 * the broker as an ordinary RPC client, sending only PING, STATFS and
 * DLP_FINDINGS, so
 * whatever a peer asks it can see its own session and nothing else, and it
 * holds no credential that could reach the control plane.
 *
 * Modules: mcp_broker.c (the broker link), mcp_rpc.c (JSON-RPC and the MCP
 * lifecycle), mcp_tools.c (the tool table, argument validation, the tools),
 * mcp_stdio.c and mcp_http.c (the transports), main.c (options).
 */
#ifndef OCCFS_MCP_H
#define OCCFS_MCP_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct handle_secret;
struct proto_statfs;

/* Largest JSON-RPC message (or batch) accepted, in bytes. */
#define MCP_MAX_MESSAGE (64u * 1024u)
/* Most messages in one batch (protocol 2025-03-26 only). */
#define MCP_MAX_BATCH 16u
/* Most concurrent Streamable HTTP sessions; the least recently used goes. */
#define MCP_MAX_SESSIONS 16u

/* JSON-RPC 2.0 error codes. */
#define MCP_ERR_PARSE (-32700)
#define MCP_ERR_INVALID_REQUEST (-32600)
#define MCP_ERR_METHOD (-32601)
#define MCP_ERR_PARAMS (-32602)
#define MCP_ERR_INTERNAL (-32603)

/* ---- mcp_broker.c ------------------------------------------------------- */

struct mcp_broker;

/* What mount_status reports; filled by mcp_broker_status. */
struct mcp_broker_status {
	char endpoint[300];
	char filesystem_id[256]; /* from the broker's HELLO reply */
	char sid[128];		 /* from the handle */
	char intent[16];	 /* from the handle */
	int64_t exp;		 /* handle expiry, seconds since the epoch */
	int connected;		 /* a session with the broker is open */
	int rdonly;		 /* the broker keeps the session read-only */
	int revoked;		 /* the broker pushed SESSION_REVOKED */
	double latency_ms;	 /* PING round trip; < 0 when none answered */
	char why[256];		 /* why not connected, when not */
};

/*
 * Take the handle (h is emptied), decode its claims for display and try
 * to connect once; a broker that is down now is retried on each call.
 * Returns NULL with errno set (and why filled) for a handle that is not a
 * JWT or an endpoint that does not parse.
 */
struct mcp_broker *mcp_broker_new(const char *endpoint, const char *ca_file,
				  struct handle_secret *h, int timeout_ms,
				  char *why, size_t whylen);
void mcp_broker_free(struct mcp_broker *b);
/* STATFS on the session's root. 0 or -errno with why filled. */
int mcp_broker_statfs(struct mcp_broker *b, struct proto_statfs *st, char *why,
		      size_t whylen);
/*
 * The session's recent DLP findings (the broker's DLP_FINDINGS reply, at
 * most limit), newest first: *list is a JSON array (new reference).  0,
 * or -errno with why filled: -ENOSYS from a broker without the op.
 */
int mcp_broker_dlp_findings(struct mcp_broker *b, unsigned limit, json_t **list,
			    char *why, size_t whylen);
/* Reconnect if needed, PING, and describe the session. Never fails. */
void mcp_broker_status(struct mcp_broker *b, struct mcp_broker_status *st);

/* ---- mcp_tools.c -------------------------------------------------------- */

/* Parse the tools' schemas; 0 or -EINVAL (a broken built-in schema). */
int mcp_tools_init(void);
void mcp_tools_cleanup(void);
/* The tools/list result for a protocol version. New reference. */
json_t *mcp_tools_list(const char *version);
/*
 * Run tools/call with its params.  Returns the result object (new
 * reference) or NULL with *code and msg set to a JSON-RPC error.
 */
json_t *mcp_tools_call(struct mcp_broker *b, const char *version,
		       json_t *params, int *code, char *msg, size_t msglen);
/* Check value against a schema of the supported subset. 0 or -EINVAL. */
int mcp_schema_check(json_t *schema, json_t *value, const char *where,
		     char *msg, size_t msglen);

/* ---- mcp_rpc.c ---------------------------------------------------------- */

/* The MCP state of one client (stdio: the process; HTTP: one session). */
struct mcp_sess {
	int initialized;  /* initialize answered */
	int ready;	  /* notifications/initialized received */
	char version[16]; /* negotiated protocol version */
	struct mcp_broker *broker;
};

/* What one transport message produced. */
struct mcp_reply {
	char *body;	 /* JSON text to send, malloc'd; NULL = nothing */
	int has_request; /* the message held at least one request */
	int bad;	 /* not JSON-RPC at all (HTTP answers 400) */
	int initialize;	 /* it was a successful initialize */
};

void mcp_sess_init(struct mcp_sess *s, struct mcp_broker *b);
/* Handle one message (a JSON text of at most MCP_MAX_MESSAGE bytes). */
void mcp_rpc_handle(struct mcp_sess *s, const char *text, size_t len,
		    struct mcp_reply *r);
/* A standalone error response with id null (for transports). */
char *mcp_rpc_error_text(int code, const char *msg);
/* 1 if the server speaks this protocol version. */
int mcp_rpc_version_ok(const char *v);
/* The methods the server answers, NULL-terminated (for the test). */
extern const char *const mcp_rpc_methods[];

/* ---- transports --------------------------------------------------------- */

/* Serve stdin/stdout until EOF. Returns the exit status. */
int mcp_stdio_run(struct mcp_broker *b);
/* Serve Streamable HTTP on a loopback addr:port until SIGINT/SIGTERM. */
int mcp_http_run(struct mcp_broker *b, const char *addr);
/* 0 if addr is a loopback HOST:PORT; -EADDRNOTAVAIL or -EINVAL if not. */
int mcp_http_addr_check(const char *addr);

#endif
