/*
 * mcp_stdio.c - the stdio transport: one JSON-RPC message per line.
 *
 * Lines are read into a fixed buffer of MCP_MAX_MESSAGE bytes.  A longer
 * line is not buffered: the rest of it is skipped up to its newline and
 * answered with one Invalid Request error, so a peer can neither grow our
 * memory nor desynchronise the stream.  Only MCP messages go to stdout;
 * logs go to stderr.
 */
#include "mcp.h"

#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int write_all(const char *p, size_t n)
{
	ssize_t w;

	while (n) {
		w = write(STDOUT_FILENO, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -errno;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Send one message followed by its newline; 0 or -errno. */
static int send_line(char *text)
{
	int rc;

	if (!text)
		return 0;
	rc = write_all(text, strlen(text));
	if (!rc)
		rc = write_all("\n", 1);
	free(text);
	return rc;
}

/* One complete line (without its newline). */
static int line(struct mcp_sess *s, const char *p, size_t n)
{
	struct mcp_reply r;

	while (n && (p[n - 1] == '\r' || p[n - 1] == ' ' || p[n - 1] == '\t'))
		n--;
	if (n == 0)
		return 0; /* blank lines carry nothing */
	mcp_rpc_handle(s, p, n, &r);
	return send_line(r.body);
}

int mcp_stdio_run(struct mcp_broker *b)
{
	struct mcp_sess s;
	char *buf = malloc(MCP_MAX_MESSAGE + 1);
	size_t have = 0, i, start;
	int skipping = 0, rc = 0;
	ssize_t n;
	char *nl;

	if (!buf)
		return 1;
	mcp_sess_init(&s, b);
	for (;;) {
		n = read(STDIN_FILENO, buf + have, MCP_MAX_MESSAGE + 1 - have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		have += (size_t)n;
		start = 0;
		while ((nl = memchr(buf + start, '\n', have - start))) {
			i = (size_t)(nl - buf);
			if (skipping) {
				skipping = 0;
				rc = send_line(mcp_rpc_error_text(
				    MCP_ERR_INVALID_REQUEST,
				    "Invalid Request: message too large"));
			} else {
				rc = line(&s, buf + start, i - start);
			}
			if (rc)
				goto out;
			start = i + 1;
		}
		memmove(buf, buf + start, have - start);
		have -= start;
		if (have > MCP_MAX_MESSAGE) {
			/* No newline within the limit: drop, remember. */
			skipping = 1;
			have = 0;
		}
	}
	if (n < 0)
		log_err("reading stdin: %s", strerror(errno));
	if (have && !skipping)
		rc = line(&s, buf, have); /* a last line without newline */
out:
	if (rc)
		log_err("writing stdout: %s", strerror(-rc));
	free(buf);
	return rc || n < 0 ? 1 : 0;
}
