/*
 * mcp_http.c - the Streamable HTTP transport, on loopback only.
 *
 * One endpoint, /mcp.  POST carries one JSON-RPC message (answered with
 * application/json, or 202 when it held no request); DELETE ends a
 * session; GET gets 405, since the server never sends anything unasked.
 * An initialize without Mcp-Session-Id opens a session and the reply
 * names it; every other POST must name a live one (400 without, 404 for
 * an unknown one).  MCP-Protocol-Version, when sent, must be the version
 * the session negotiated.
 *
 * Defences against a web page in a browser on the same machine (DNS
 * rebinding): the listener binds loopback addresses only, and a request
 * whose Origin or Host is not a loopback name is refused with 403.  Bodies
 * past MCP_MAX_MESSAGE are drained, not kept, and get 413.
 *
 * libmicrohttpd runs one internal polling thread, so the callbacks below
 * never run concurrently: the session table needs no lock.
 */
#include "mcp.h"

#include "log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#define ENDPOINT "/mcp"

struct http_sess {
	char id[33]; /* 32 hex digits; empty = free slot */
	struct mcp_sess s;
	uint64_t used; /* tick of the last request, for eviction */
};

struct http_srv {
	struct mcp_broker *broker;
	struct http_sess sess[MCP_MAX_SESSIONS]; /* the polling thread only */
	uint64_t tick;
};

/* One request's body, collected across callback calls. */
struct http_req {
	char *body;
	size_t len;
	int too_big;
};

/* ---- checks ------------------------------------------------------------- */

/* "127.x.y.z", "localhost", "[::1]", optionally followed by ":port". */
static int loopback_name(const char *h, size_t n)
{
	struct in_addr a;
	char host[64];
	const char *colon;

	if (n >= 5 && h[0] == '[') {
		return n >= 5 && !strncmp(h, "[::1]", 5) &&
		       (n == 5 || h[5] == ':');
	}
	colon = memchr(h, ':', n);
	if (colon)
		n = (size_t)(colon - h);
	if (n == 0 || n >= sizeof(host))
		return 0;
	memcpy(host, h, n);
	host[n] = '\0';
	if (!strcasecmp(host, "localhost"))
		return 1;
	return inet_pton(AF_INET, host, &a) == 1 &&
	       (ntohl(a.s_addr) >> 24) == 127;
}

static int origin_ok(const char *o)
{
	if (!o)
		return 1; /* not a browser: nothing to rebind */
	if (!strncasecmp(o, "http://", 7))
		o += 7;
	else if (!strncasecmp(o, "https://", 8))
		o += 8;
	else
		return 0; /* "null" and other schemes included */
	return loopback_name(o, strlen(o));
}

static int has_token(const char *list, const char *tok)
{
	return list && strcasestr(list, tok) != NULL;
}

/* ---- responses ------------------------------------------------------------
 */

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status,
			     const char *body, const char *sid)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(body ? strlen(body) : 0,
					    (void *)(body ? body : ""),
					    MHD_RESPMEM_MUST_COPY);
	if (!r)
		return MHD_NO;
	if (body && *body)
		MHD_add_response_header(r, "Content-Type", "application/json");
	if (sid)
		MHD_add_response_header(r, "Mcp-Session-Id", sid);
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW,
					"POST, DELETE");
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

/* An HTTP-level refusal with a JSON-RPC error body (id null). */
static enum MHD_Result refuse(struct MHD_Connection *c, unsigned status,
			      int code, const char *msg)
{
	char *t = mcp_rpc_error_text(code, msg);
	enum MHD_Result ret = reply(c, status, t, NULL);

	free(t);
	return ret;
}

/* ---- sessions -------------------------------------------------------------
 */

static struct http_sess *sess_find(struct http_srv *srv, const char *id)
{
	for (size_t i = 0; i < MCP_MAX_SESSIONS; i++)
		if (srv->sess[i].id[0] && !strcmp(srv->sess[i].id, id))
			return &srv->sess[i];
	return NULL;
}

/* A slot for a new session: a free one, else the least recently used. */
static struct http_sess *sess_slot(struct http_srv *srv)
{
	struct http_sess *best = &srv->sess[0];

	for (size_t i = 0; i < MCP_MAX_SESSIONS; i++) {
		if (!srv->sess[i].id[0])
			return &srv->sess[i];
		if (srv->sess[i].used < best->used)
			best = &srv->sess[i];
	}
	log_info("http: session limit reached, ending the least recently "
		 "used one");
	return best;
}

static int sess_new_id(char id[33])
{
	unsigned char r[16];

	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
		return -EIO;
	for (size_t i = 0; i < sizeof(r); i++)
		snprintf(id + 2 * i, 3, "%02x", r[i]);
	return 0;
}

/* ---- methods ---------------------------------------------------------------
 */

static enum MHD_Result do_post(struct http_srv *srv, struct MHD_Connection *c,
			       struct http_req *q)
{
	const char *sid =
	    MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Mcp-Session-Id");
	const char *pv = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
						     "MCP-Protocol-Version");
	const char *ct =
	    MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
	const char *acc =
	    MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Accept");
	struct http_sess *hs = NULL, *slot;
	struct mcp_sess fresh;
	struct mcp_reply r;
	enum MHD_Result ret;
	unsigned status;

	if (q->too_big)
		return refuse(c, MHD_HTTP_CONTENT_TOO_LARGE,
			      MCP_ERR_INVALID_REQUEST,
			      "Invalid Request: message too large");
	if (!ct || strncasecmp(ct, "application/json", 16))
		return refuse(c, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE,
			      MCP_ERR_INVALID_REQUEST,
			      "Content-Type must be application/json");
	if (!has_token(acc, "application/json") ||
	    !has_token(acc, "text/event-stream"))
		return refuse(c, MHD_HTTP_NOT_ACCEPTABLE,
			      MCP_ERR_INVALID_REQUEST,
			      "Accept must list application/json and "
			      "text/event-stream");
	if (sid) {
		hs = sess_find(srv, sid);
		if (!hs)
			return refuse(c, MHD_HTTP_NOT_FOUND,
				      MCP_ERR_INVALID_REQUEST,
				      "Session not found");
		if (pv && strcmp(pv, hs->s.version))
			return refuse(c, MHD_HTTP_BAD_REQUEST,
				      MCP_ERR_INVALID_REQUEST,
				      "MCP-Protocol-Version differs from the "
				      "negotiated version");
		hs->used = ++srv->tick;
		mcp_rpc_handle(&hs->s, q->body ? q->body : "", q->len, &r);
	} else {
		if (pv && !mcp_rpc_version_ok(pv))
			return refuse(c, MHD_HTTP_BAD_REQUEST,
				      MCP_ERR_INVALID_REQUEST,
				      "unsupported MCP-Protocol-Version");
		mcp_sess_init(&fresh, srv->broker);
		mcp_rpc_handle(&fresh, q->body ? q->body : "", q->len, &r);
		if (!r.initialize && !r.bad) {
			free(r.body);
			return refuse(c, MHD_HTTP_BAD_REQUEST,
				      MCP_ERR_INVALID_REQUEST,
				      "Bad Request: Mcp-Session-Id header is "
				      "required");
		}
	}
	if (r.initialize && !hs) {
		slot = sess_slot(srv);
		if (sess_new_id(slot->id)) {
			free(r.body);
			slot->id[0] = '\0';
			return refuse(c, MHD_HTTP_INTERNAL_SERVER_ERROR,
				      MCP_ERR_INTERNAL, "no randomness");
		}
		slot->s = fresh;
		slot->used = ++srv->tick;
		hs = slot;
	}
	if (r.bad)
		status = MHD_HTTP_BAD_REQUEST;
	else if (!r.body)
		status = MHD_HTTP_ACCEPTED;
	else
		status = MHD_HTTP_OK;
	ret = reply(c, status, r.body, r.initialize ? hs->id : NULL);
	free(r.body);
	return ret;
}

static enum MHD_Result do_delete(struct http_srv *srv, struct MHD_Connection *c)
{
	const char *sid =
	    MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Mcp-Session-Id");
	struct http_sess *hs;

	if (!sid)
		return refuse(c, MHD_HTTP_BAD_REQUEST, MCP_ERR_INVALID_REQUEST,
			      "Bad Request: Mcp-Session-Id header is "
			      "required");
	hs = sess_find(srv, sid);
	if (!hs)
		return refuse(c, MHD_HTTP_NOT_FOUND, MCP_ERR_INVALID_REQUEST,
			      "Session not found");
	memset(hs, 0, sizeof(*hs));
	return reply(c, MHD_HTTP_OK, NULL, NULL);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c,
				  const char *url, const char *method,
				  const char *version, const char *upload,
				  size_t *upload_size, void **con_cls)
{
	struct http_srv *srv = cls;
	struct http_req *q = *con_cls;
	const char *host, *origin;
	char *nb;

	(void)version;
	if (!q) {
		q = calloc(1, sizeof(*q));
		if (!q)
			return MHD_NO;
		*con_cls = q;
		return MHD_YES;
	}
	if (*upload_size) {
		if (!q->too_big && q->len + *upload_size <= MCP_MAX_MESSAGE) {
			nb = realloc(q->body, q->len + *upload_size + 1);
			if (!nb)
				return MHD_NO;
			memcpy(nb + q->len, upload, *upload_size);
			q->body = nb;
			q->len += *upload_size;
			q->body[q->len] = '\0';
		} else {
			/* Drain, keep nothing: the answer will be 413. */
			q->too_big = 1;
		}
		*upload_size = 0;
		return MHD_YES;
	}
	host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Host");
	origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin");
	if (!host || !loopback_name(host, strlen(host)) || !origin_ok(origin))
		return refuse(c, MHD_HTTP_FORBIDDEN, MCP_ERR_INVALID_REQUEST,
			      "Forbidden: Origin and Host must be loopback");
	if (strcmp(url, ENDPOINT))
		return refuse(c, MHD_HTTP_NOT_FOUND, MCP_ERR_INVALID_REQUEST,
			      "Not Found: the endpoint is " ENDPOINT);
	if (!strcmp(method, "POST"))
		return do_post(srv, c, q);
	if (!strcmp(method, "DELETE"))
		return do_delete(srv, c);
	return refuse(c, MHD_HTTP_METHOD_NOT_ALLOWED, MCP_ERR_INVALID_REQUEST,
		      "Method Not Allowed: this server sends nothing unasked");
}

static void on_done(void *cls, struct MHD_Connection *c, void **con_cls,
		    enum MHD_RequestTerminationCode toe)
{
	struct http_req *q = *con_cls;

	(void)cls;
	(void)c;
	(void)toe;
	if (q) {
		free(q->body);
		free(q);
		*con_cls = NULL;
	}
}

/* ---- the listener -------------------------------------------------------- */

/* addr is HOST:PORT with HOST 127.x.y.z, [::1] or localhost. */
static int parse_addr(const char *addr, struct sockaddr_storage *ss,
		      unsigned *flags)
{
	struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
	const char *colon = strrchr(addr, ':');
	char host[64], *end;
	unsigned long port;
	size_t n;

	if (!colon)
		return -EINVAL;
	port = strtoul(colon + 1, &end, 10);
	if (!colon[1] || *end || port > 65535)
		return -EINVAL;
	n = (size_t)(colon - addr);
	if (n == 0 || n >= sizeof(host))
		return -EINVAL;
	memcpy(host, addr, n);
	host[n] = '\0';
	memset(ss, 0, sizeof(*ss));
	if (!strcmp(host, "[::1]")) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		in6->sin6_addr = in6addr_loopback;
		*flags |= MHD_USE_IPv6;
		return 0;
	}
	if (!strcmp(host, "localhost"))
		snprintf(host, sizeof(host), "127.0.0.1");
	in4->sin_family = AF_INET;
	in4->sin_port = htons((uint16_t)port);
	/* Other names and IPv6 addresses: not loopback, or not surely. */
	if (inet_pton(AF_INET, host, &in4->sin_addr) != 1)
		return -EADDRNOTAVAIL;
	/* Never a routable address: only this machine may ask. */
	if ((ntohl(in4->sin_addr.s_addr) >> 24) != 127)
		return -EADDRNOTAVAIL;
	return 0;
}

int mcp_http_addr_check(const char *addr)
{
	struct sockaddr_storage ss;
	unsigned flags = 0;

	return parse_addr(addr, &ss, &flags);
}

int mcp_http_run(struct mcp_broker *b, const char *addr)
{
	struct http_srv *srv = calloc(1, sizeof(*srv));
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
	const union MHD_DaemonInfo *info;
	struct sockaddr_storage ss;
	struct MHD_Daemon *d = NULL;
	sigset_t set;
	int rc, sig;

	if (!srv)
		return 1;
	srv->broker = b;
	rc = parse_addr(addr, &ss, &flags);
	if (rc) {
		log_err("--http %s: %s", addr,
			rc == -EADDRNOTAVAIL
			    ? "only loopback addresses (127.0.0.0/8, [::1], "
			      "localhost) may be bound"
			    : "want HOST:PORT, e.g. 127.0.0.1:8931");
		rc = 2;
		goto out;
	}
	/* The polling thread inherits the mask: signals come to sigwait. */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	d = MHD_start_daemon(
	    flags, 0, NULL, NULL, on_request, srv, MHD_OPTION_SOCK_ADDR,
	    (struct sockaddr *)&ss, MHD_OPTION_NOTIFY_COMPLETED, on_done, srv,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned)64,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30, MHD_OPTION_END);
	if (!d) {
		log_err("cannot listen on %s: %s", addr, strerror(errno));
		rc = 1;
		goto out;
	}
	info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	log_info("listening on http://%.*s:%u" ENDPOINT,
		 (int)(strrchr(addr, ':') - addr), addr,
		 info ? (unsigned)info->port : 0);
	while (sigwait(&set, &sig) == 0 && sig != SIGINT && sig != SIGTERM)
		;
	log_info("signal %d: stopping", sig);
	rc = 0;
out:
	if (d)
		MHD_stop_daemon(d);
	free(srv);
	return rc;
}
