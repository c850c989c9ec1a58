/*
 * mcp_rpc.c - JSON-RPC 2.0 and the MCP lifecycle, independent of transport.
 *
 * A transport hands over one message (a JSON text of bounded size) and
 * gets back the text to send, if any.  The method table below is the whole
 * surface: initialize, ping, tools/list, tools/call and two notifications.
 * Anything else is "method not found"; there is no method that creates,
 * revokes or changes anything, so no request can reach the kill-switch.
 *
 * Batches existed only in protocol 2025-03-26: a session that negotiated
 * that version may send them (MCP_MAX_BATCH at most, never initialize);
 * any other gets one Invalid Request error for the whole batch.
 */
#include "mcp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "unknown"
#endif

/* Newest first: the first is what a client asking for another gets. */
static const char *const versions[] = {"2025-06-18", "2025-03-26",
				       "2024-11-05"};

const char *const mcp_rpc_methods[] = {"initialize",
				       "ping",
				       "tools/list",
				       "tools/call",
				       "notifications/initialized",
				       "notifications/cancelled",
				       NULL};

int mcp_rpc_version_ok(const char *v)
{
	for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++)
		if (!strcmp(v, versions[i]))
			return 1;
	return 0;
}

void mcp_sess_init(struct mcp_sess *s, struct mcp_broker *b)
{
	memset(s, 0, sizeof(*s));
	s->broker = b;
}

static json_t *error_obj(json_t *id, int code, const char *msg)
{
	return json_pack("{s:s,s:O,s:{s:i,s:s}}", "jsonrpc", "2.0", "id",
			 id ? id : json_null(), "error", "code", code,
			 "message", msg);
}

char *mcp_rpc_error_text(int code, const char *msg)
{
	json_t *e = error_obj(NULL, code, msg);
	char *t = json_dumps(e, JSON_COMPACT);

	json_decref(e);
	return t;
}

/* ---- methods --------------------------------------------------------------
 */

struct call {
	struct mcp_sess *s;
	json_t *params; /* an object (empty when absent) */
	int code;	/* error code when the method returns NULL */
	char msg[512];
	int initialize; /* set by a successful initialize */
};

static json_t *m_initialize(struct call *c)
{
	json_t *pv = json_object_get(c->params, "protocolVersion");
	const char *v;

	if (c->s->initialized) {
		c->code = MCP_ERR_INVALID_REQUEST;
		snprintf(c->msg, sizeof(c->msg), "already initialized");
		return NULL;
	}
	if (!json_is_string(pv) ||
	    !json_is_object(json_object_get(c->params, "capabilities")) ||
	    !json_is_object(json_object_get(c->params, "clientInfo"))) {
		c->code = MCP_ERR_PARAMS;
		snprintf(c->msg, sizeof(c->msg),
			 "initialize needs protocolVersion (string), "
			 "capabilities and clientInfo (objects)");
		return NULL;
	}
	v = json_string_value(pv);
	snprintf(c->s->version, sizeof(c->s->version), "%s",
		 mcp_rpc_version_ok(v) ? v : versions[0]);
	c->s->initialized = 1;
	c->initialize = 1;
	return json_pack(
	    "{s:s,s:{s:{s:b}},s:{s:s,s:s},s:s}", "protocolVersion",
	    c->s->version, "capabilities", "tools", "listChanged", 0,
	    "serverInfo", "name", "occfs-mcp", "version", PACKAGE_VERSION,
	    "instructions",
	    "Read-only status of this sandbox's occfs storage session: "
	    "storage_usage, mount_status, dlp_findings.");
}

static json_t *m_ping(struct call *c)
{
	(void)c;
	return json_object();
}

static json_t *m_tools_list(struct call *c)
{
	return mcp_tools_list(c->s->version);
}

static json_t *m_tools_call(struct call *c)
{
	return mcp_tools_call(c->s->broker, c->s->version, c->params, &c->code,
			      c->msg, sizeof(c->msg));
}

static json_t *m_initialized(struct call *c)
{
	c->s->ready = 1;
	return NULL;
}

static json_t *m_ignore(struct call *c)
{
	(void)c;
	return NULL;
}

struct method {
	const char *name;
	int before_init; /* allowed before initialize */
	json_t *(*fn)(struct call *c);
};

/* Keep in step with mcp_rpc_methods (the test compares the two). */
static const struct method methods[] = {
    {"initialize", 1, m_initialize},
    {"ping", 1, m_ping},
    {"tools/list", 0, m_tools_list},
    {"tools/call", 0, m_tools_call},
    {"notifications/initialized", 1, m_initialized},
    {"notifications/cancelled", 1, m_ignore},
};

/* ---- one message ----------------------------------------------------------
 */

static int id_ok(json_t *id)
{
	/* MCP: a string or an integer, never null. */
	return json_is_string(id) || json_is_integer(id);
}

/* Handle one request or notification; returns the response or NULL. */
static json_t *handle_one(struct mcp_sess *s, json_t *m, int in_batch,
			  struct mcp_reply *r)
{
	json_t *id = json_object_get(m, "id"), *method, *params, *res;
	const struct method *mt = NULL;
	struct call c = {.s = s};
	int notification = !id;

	if (!json_is_object(m))
		return error_obj(NULL, MCP_ERR_INVALID_REQUEST,
				 "Invalid Request: not an object");
	if (notification && !json_object_get(m, "method"))
		return NULL; /* a response to us: we never ask anything */
	if (!notification && !id_ok(id))
		return error_obj(NULL, MCP_ERR_INVALID_REQUEST,
				 "Invalid Request: id must be a string or an "
				 "integer");
	if (!notification && !json_object_get(m, "method") &&
	    (json_object_get(m, "result") || json_object_get(m, "error")))
		return NULL; /* also a response */
	if (!notification)
		r->has_request = 1;
	method = json_object_get(m, "method");
	params = json_object_get(m, "params");
	if (!json_is_string(json_object_get(m, "jsonrpc")) ||
	    strcmp(json_string_value(json_object_get(m, "jsonrpc")), "2.0") ||
	    !json_is_string(method))
		return notification ? NULL
				    : error_obj(id, MCP_ERR_INVALID_REQUEST,
						"Invalid Request: needs "
						"jsonrpc \"2.0\" and a "
						"string method");
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if (!strcmp(methods[i].name, json_string_value(method)))
			mt = &methods[i];
	/* A notification's name must start so, a request's must not. */
	if (mt && notification != !strncmp(mt->name, "notifications/", 14))
		mt = NULL;
	if (!mt)
		return notification
			   ? NULL
			   : error_obj(id, MCP_ERR_METHOD, "Method not found");
	if (params && !json_is_object(params))
		return notification ? NULL
				    : error_obj(id, MCP_ERR_PARAMS,
						"params must be an object");
	if (!s->initialized && !mt->before_init)
		return notification
			   ? NULL
			   : error_obj(id, MCP_ERR_INVALID_REQUEST,
				       "Invalid Request: not initialized");
	if (in_batch && mt->fn == m_initialize)
		return error_obj(id, MCP_ERR_INVALID_REQUEST,
				 "Invalid Request: initialize cannot be "
				 "batched");
	c.params = params ? json_incref(params) : json_object();
	res = mt->fn(&c);
	json_decref(c.params);
	r->initialize |= c.initialize;
	if (notification) {
		json_decref(res);
		return NULL;
	}
	if (!res)
		return error_obj(id, c.code ? c.code : MCP_ERR_INTERNAL,
				 c.msg[0] ? c.msg : "internal error");
	return json_pack("{s:s,s:O,s:o}", "jsonrpc", "2.0", "id", id, "result",
			 res);
}

static json_t *handle_batch(struct mcp_sess *s, json_t *arr,
			    struct mcp_reply *r)
{
	json_t *out, *e, *one;
	size_t i;

	if (!s->initialized || strcmp(s->version, "2025-03-26")) {
		r->bad = 1;
		return error_obj(NULL, MCP_ERR_INVALID_REQUEST,
				 "Invalid Request: batches are not supported "
				 "by this protocol version");
	}
	if (json_array_size(arr) == 0 || json_array_size(arr) > MCP_MAX_BATCH) {
		r->bad = 1;
		return error_obj(NULL, MCP_ERR_INVALID_REQUEST,
				 "Invalid Request: a batch holds 1 to 16 "
				 "messages");
	}
	out = json_array();
	json_array_foreach(arr, i, e)
	{
		one = handle_one(s, e, 1, r);
		if (one)
			json_array_append_new(out, one);
	}
	if (json_array_size(out) == 0) {
		json_decref(out);
		return NULL;
	}
	return out;
}

void mcp_rpc_handle(struct mcp_sess *s, const char *text, size_t len,
		    struct mcp_reply *r)
{
	json_t *m, *out;
	json_error_t e;

	memset(r, 0, sizeof(*r));
	if (len > MCP_MAX_MESSAGE) {
		r->bad = 1;
		r->body = mcp_rpc_error_text(MCP_ERR_INVALID_REQUEST,
					     "Invalid Request: message too "
					     "large");
		return;
	}
	/* Duplicate keys would let two readers see two requests. */
	m = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &e);
	if (!m) {
		r->bad = 1;
		r->body = mcp_rpc_error_text(MCP_ERR_PARSE, "Parse error");
		return;
	}
	if (json_is_array(m)) {
		out = handle_batch(s, m, r);
	} else {
		out = handle_one(s, m, 0, r);
		/* An error no request can be matched to: HTTP says 400. */
		if (out && json_is_null(json_object_get(out, "id")))
			r->bad = 1;
	}
	if (out)
		r->body = json_dumps(out, JSON_COMPACT);
	json_decref(out);
	json_decref(m);
}
