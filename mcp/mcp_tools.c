/*
 * mcp_tools.c - the read-only tools occfs-mcp offers, and their arguments.
 *
 * The table below is the whole of what a peer can make this process do:
 * three tools, each a read of the session's own state through the broker
 * link (mcp_broker.c), which can only send PING, STATFS and DLP_FINDINGS,
 * each answered for the handle's own filesystem_id.  There is no
 * tool that takes a filesystem_id, a path or a session: arguments are
 * checked against each tool's inputSchema (additionalProperties false), so
 * a name for another session is refused before any tool runs.
 *
 * The schema checker supports exactly the subset the schemas here use:
 * type (object, integer, string, boolean), properties, required,
 * additionalProperties false, minimum, maximum, maxLength.
 */
#include "mcp.h"

#include "proto.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

struct mcp_tool {
	const char *name;
	const char *title;
	const char *description;
	const char *input;  /* inputSchema, JSON text */
	const char *output; /* outputSchema, JSON text */
	/* Fill *res (an object) or return an error text for isError. */
	int (*run)(struct mcp_broker *b, json_t *args, json_t *res, char *err,
		   size_t errlen);
	json_t *in, *out; /* parsed by mcp_tools_init */
};

/* ---- storage_usage ----------------------------------------------------- */

static json_t *usage_part(uint64_t total, uint64_t avail)
{
	return json_pack("{s:I,s:I,s:I}", "used",
			 (json_int_t)(total >= avail ? total - avail : 0),
			 "limit", (json_int_t)total, "available",
			 (json_int_t)avail);
}

static int tool_storage_usage(struct mcp_broker *b, json_t *args, json_t *res,
			      char *err, size_t errlen)
{
	struct proto_statfs st;
	uint64_t fr;

	(void)args;
	if (mcp_broker_statfs(b, &st, err, errlen))
		return -1;
	/* The broker caps blocks and files at the session's quota. */
	fr = st.frsize ? st.frsize : st.bsize;
	json_object_set_new(res, "bytes",
			    usage_part(st.blocks * fr, st.bfree * fr));
	json_object_set_new(res, "inodes", usage_part(st.files, st.ffree));
	json_object_set_new(res, "block_size", json_integer((json_int_t)fr));
	json_object_set_new(
	    res, "note",
	    json_string("limits are the session's quota where the broker's "
			"policy sets one, else the backing store's size"));
	return 0;
}

/* ---- mount_status ------------------------------------------------------ */

static void utc_text(int64_t t, char *out, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!gmtime_r(&tt, &tm) ||
	    !strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(out, len, "unknown");
}

static int tool_mount_status(struct mcp_broker *b, json_t *args, json_t *res,
			     char *err, size_t errlen)
{
	struct mcp_broker_status st;
	char exp[32];
	json_t *broker;

	(void)args;
	(void)err;
	(void)errlen;
	mcp_broker_status(b, &st);
	utc_text(st.exp, exp, sizeof(exp));
	json_object_set_new(res, "filesystem_id",
			    st.filesystem_id[0] ? json_string(st.filesystem_id)
						: json_null());
	json_object_set_new(res, "session_id", json_string(st.sid));
	json_object_set_new(res, "intent", json_string(st.intent));
	json_object_set_new(res, "read_only",
			    st.filesystem_id[0] ? json_boolean(st.rdonly)
						: json_null());
	json_object_set_new(res, "handle_expires_at", json_string(exp));
	json_object_set_new(
	    res, "handle_expires_in_s",
	    json_integer((json_int_t)(st.exp - (int64_t)time(NULL))));
	json_object_set_new(res, "revoked", json_boolean(st.revoked));
	broker =
	    json_pack("{s:s,s:b,s:b}", "endpoint", st.endpoint, "reachable",
		      st.latency_ms >= 0, "session_open", st.connected);
	if (st.latency_ms >= 0)
		json_object_set_new(
		    broker, "latency_us",
		    json_integer((json_int_t)(st.latency_ms * 1000)));
	else
		json_object_set_new(broker, "error", json_string(st.why));
	json_object_set_new(res, "broker", broker);
	return 0;
}

/* ---- dlp_findings ------------------------------------------------------ */

#define DLP_DEFAULT_LIMIT 20

static int tool_dlp_findings(struct mcp_broker *b, json_t *args, json_t *res,
			     char *err, size_t errlen)
{
	json_t *lim = json_object_get(args, "limit"), *list = NULL;
	unsigned limit = DLP_DEFAULT_LIMIT;
	int rc;

	/* The inputSchema bounded it to 1..100. */
	if (json_is_integer(lim))
		limit = (unsigned)json_integer_value(lim);
	rc = mcp_broker_dlp_findings(b, limit, &list, err, errlen);
	if (rc == -ENOSYS) {
		/*
		 * An older broker: this process must not read the audit log
		 * (every session's events) instead, so say so rather than
		 * pretend there are none.
		 */
		json_object_set_new(res, "available", json_false());
		json_object_set_new(
		    res, "reason",
		    json_string("not available from this broker: its protocol "
				"has no operation that lists a session's DLP "
				"findings"));
		json_object_set_new(res, "findings", json_array());
		return 0;
	}
	if (rc)
		return -1;
	json_object_set_new(res, "available", json_true());
	json_object_set_new(res, "findings", list);
	json_object_set_new(
	    res, "note",
	    json_string("findings on this session's filesystem kept by the "
			"broker since it started (the last 256), newest "
			"first; excerpts are redacted"));
	return 0;
}

/* ---- the table ------------------------------------------------------------
 */

#define EMPTY_INPUT                               \
	"{\"type\":\"object\",\"properties\":{}," \
	"\"additionalProperties\":false}"

static struct mcp_tool tools[] = {
    {"storage_usage", "Storage usage",
     "Bytes and inodes used by this session's filesystem, with the quota "
     "(or the backing store's size when no quota is set). Read-only.",
     EMPTY_INPUT,
     "{\"type\":\"object\",\"properties\":{"
     "\"bytes\":{\"type\":\"object\"},\"inodes\":{\"type\":\"object\"},"
     "\"block_size\":{\"type\":\"integer\"},\"note\":{\"type\":\"string\"}},"
     "\"required\":[\"bytes\",\"inodes\"]}",
     tool_storage_usage, NULL, NULL},
    {"mount_status", "Mount status",
     "This session's filesystem_id, intent, read-only flag, handle expiry "
     "and whether the broker answers (with its latency). Read-only.",
     EMPTY_INPUT,
     "{\"type\":\"object\",\"properties\":{"
     "\"filesystem_id\":{\"type\":[\"string\",\"null\"]},"
     "\"session_id\":{\"type\":\"string\"},"
     "\"intent\":{\"type\":\"string\"},"
     "\"read_only\":{\"type\":[\"boolean\",\"null\"]},"
     "\"handle_expires_at\":{\"type\":\"string\"},"
     "\"handle_expires_in_s\":{\"type\":\"integer\"},"
     "\"revoked\":{\"type\":\"boolean\"},"
     "\"broker\":{\"type\":\"object\"}},"
     "\"required\":[\"filesystem_id\",\"intent\",\"broker\"]}",
     tool_mount_status, NULL, NULL},
    {"dlp_findings", "DLP findings",
     "Recent DLP findings on this session's own files, newest first. "
     "Read-only.",
     "{\"type\":\"object\",\"properties\":{"
     "\"limit\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":100,"
     "\"description\":\"most findings to return (default 20)\"}},"
     "\"additionalProperties\":false}",
     "{\"type\":\"object\",\"properties\":{"
     "\"available\":{\"type\":\"boolean\"},"
     "\"reason\":{\"type\":\"string\"},"
     "\"note\":{\"type\":\"string\"},"
     "\"findings\":{\"type\":\"array\",\"items\":{"
     "\"type\":\"object\",\"properties\":{"
     "\"time\":{\"type\":\"integer\"},"
     "\"rule\":{\"type\":\"string\"},"
     "\"severity\":{\"type\":\"string\"},"
     "\"verdict\":{\"type\":\"string\"},"
     "\"path\":{\"type\":\"string\"},"
     "\"offset\":{\"type\":\"integer\"},"
     "\"excerpt\":{\"type\":\"string\"},"
     "\"quarantine\":{\"type\":[\"string\",\"null\"]}},"
     "\"required\":[\"time\",\"rule\",\"verdict\",\"path\"]}}},"
     "\"required\":[\"available\",\"findings\"]}",
     tool_dlp_findings, NULL, NULL},
};

#define NTOOLS (sizeof(tools) / sizeof(tools[0]))

int mcp_tools_init(void)
{
	json_error_t e;

	for (size_t i = 0; i < NTOOLS; i++) {
		tools[i].in = json_loads(tools[i].input, 0, &e);
		tools[i].out = json_loads(tools[i].output, 0, &e);
		if (!tools[i].in || !tools[i].out)
			return -EINVAL;
	}
	return 0;
}

void mcp_tools_cleanup(void)
{
	for (size_t i = 0; i < NTOOLS; i++) {
		json_decref(tools[i].in);
		json_decref(tools[i].out);
		tools[i].in = tools[i].out = NULL;
	}
}

/* structuredContent and outputSchema exist from protocol 2025-06-18. */
static int has_structured(const char *version)
{
	return strcmp(version, "2025-06-18") >= 0;
}

json_t *mcp_tools_list(const char *version)
{
	json_t *arr = json_array(), *t;

	for (size_t i = 0; i < NTOOLS; i++) {
		t = json_pack("{s:s,s:s,s:O}", "name", tools[i].name,
			      "description", tools[i].description,
			      "inputSchema", tools[i].in);
		if (has_structured(version)) {
			json_object_set_new(t, "title",
					    json_string(tools[i].title));
			json_object_set(t, "outputSchema", tools[i].out);
		}
		json_object_set_new(
		    t, "annotations",
		    json_pack("{s:b,s:b,s:b,s:b}", "readOnlyHint", 1,
			      "destructiveHint", 0, "idempotentHint", 1,
			      "openWorldHint", 0));
		json_array_append_new(arr, t);
	}
	return json_pack("{s:o}", "tools", arr);
}

static json_t *tool_result(const char *version, json_t *res, int is_error,
			   const char *err)
{
	char *text = is_error ? NULL : json_dumps(res, JSON_COMPACT);
	json_t *r;

	r = json_pack("{s:[{s:s,s:s}],s:b}", "content", "type", "text", "text",
		      is_error ? err : (text ? text : "{}"), "isError",
		      is_error);
	free(text);
	if (!is_error && has_structured(version))
		json_object_set(r, "structuredContent", res);
	return r;
}

json_t *mcp_tools_call(struct mcp_broker *b, const char *version,
		       json_t *params, int *code, char *msg, size_t msglen)
{
	json_t *name = json_object_get(params, "name");
	json_t *args = json_object_get(params, "arguments");
	json_t *res = NULL, *r = NULL, *empty = NULL;
	const struct mcp_tool *t = NULL;
	char err[512] = "";
	int rc;

	*code = MCP_ERR_PARAMS;
	if (!json_is_string(name)) {
		snprintf(msg, msglen, "tools/call needs a string 'name'");
		goto out;
	}
	for (size_t i = 0; i < NTOOLS; i++)
		if (!strcmp(tools[i].name, json_string_value(name)))
			t = &tools[i];
	if (!t) {
		/* Not echoed: a peer's text has no place in our errors. */
		snprintf(msg, msglen,
			 "Unknown tool: occfs-mcp offers only the read-only "
			 "tools storage_usage, mount_status and dlp_findings");
		goto out;
	}
	if (!args)
		args = empty = json_object();
	if (mcp_schema_check(t->in, args, "arguments", msg, msglen))
		goto out;
	res = json_object();
	rc = t->run(b, args, res, err, sizeof(err));
	r = tool_result(version, res, rc != 0, err);
	if (!r) {
		*code = MCP_ERR_INTERNAL;
		snprintf(msg, msglen, "out of memory");
	}
out:
	json_decref(res);
	json_decref(empty);
	return r;
}
