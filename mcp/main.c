/*
 * main.c - occfs-mcp: the read-only MCP interface for one session.
 *
 * Everything that can be checked without spending the handle (options,
 * the endpoint, the listen address) is checked first, because reading the
 * handle destroys its file.  The process never needs root and holds
 * nothing but that one handle: no operator socket, no signing key.
 */
#include "mcp.h"

#include "handle_file.h"
#include "log.h"
#include "transport.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "unknown"
#endif

static const char *prog = "occfs-mcp";

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: %s --handle FILE --broker ENDPOINT (--stdio | --http "
	    "ADDR:PORT)\n"
	    "          [--ca FILE] [--timeout SECONDS] [-v] [-h] [-V]\n"
	    "  --handle FILE      the session handle (read, then scrubbed)\n"
	    "  --broker ENDPOINT  unix:/path, vsock:CID:PORT or "
	    "tls:HOST:PORT\n"
	    "  --stdio            MCP over stdin/stdout\n"
	    "  --http ADDR:PORT   MCP over Streamable HTTP at "
	    "http://ADDR:PORT/mcp;\n"
	    "                     ADDR must be loopback (127.0.0.1, [::1], "
	    "localhost)\n"
	    "  --ca FILE          CA for a tls: broker\n"
	    "  --timeout SECONDS  per broker call (default 5)\n"
	    "See occfs-mcp(1).\n",
	    prog);
}

struct opts {
	const char *handle, *broker, *http, *ca;
	int stdio, verbose;
	double timeout;
};

static int parse(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
	    {"handle", required_argument, NULL, 'H'},
	    {"broker", required_argument, NULL, 'b'},
	    {"stdio", no_argument, NULL, 's'},
	    {"http", required_argument, NULL, 'l'},
	    {"ca", required_argument, NULL, 'c'},
	    {"timeout", required_argument, NULL, 't'},
	    {"verbose", no_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {NULL, 0, NULL, 0}};
	char *end;
	int ch;

	memset(o, 0, sizeof(*o));
	o->timeout = 5;
	while ((ch = getopt_long(argc, argv, "vhV", lo, NULL)) != -1) {
		switch (ch) {
		case 'H':
			o->handle = optarg;
			break;
		case 'b':
			o->broker = optarg;
			break;
		case 's':
			o->stdio = 1;
			break;
		case 'l':
			o->http = optarg;
			break;
		case 'c':
			o->ca = optarg;
			break;
		case 't':
			o->timeout = strtod(optarg, &end);
			if (*end || !(o->timeout > 0 && o->timeout <= 600)) {
				fprintf(stderr,
					"%s: --timeout: want 0 < SECONDS "
					"<= 600\n",
					prog);
				return 2;
			}
			break;
		case 'v':
			o->verbose = 1;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case 'V':
			printf("%s %s\n", prog, PACKAGE_VERSION);
			exit(0);
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc || !o->handle || !o->broker ||
	    !!o->stdio == !!o->http) {
		usage(stderr);
		return 2;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct transport_ep ep;
	struct handle_secret h = {0};
	struct mcp_broker *b = NULL;
	const char *pwhy = NULL;
	char why[512];
	struct opts o;
	int rc;

	rc = parse(argc, argv, &o);
	if (rc)
		return rc;
	log_init(prog, o.verbose);
	signal(SIGPIPE, SIG_IGN);
	if (transport_parse(o.broker, &ep, &pwhy)) {
		log_err("bad broker endpoint %s: %s", o.broker,
			pwhy ? pwhy : "unparsable");
		return 2;
	}
	rc = o.http ? mcp_http_addr_check(o.http) : 0;
	if (rc) {
		log_err("--http %s: %s", o.http,
			rc == -EADDRNOTAVAIL
			    ? "only loopback addresses (127.0.0.0/8, [::1], "
			      "localhost) may be bound"
			    : "want HOST:PORT, e.g. 127.0.0.1:8931");
		return 2;
	}
	if (mcp_tools_init())
		fatal("the built-in tool schemas do not parse");
	rc = handle_file_read(o.handle, &h, why, sizeof(why));
	if (rc) {
		log_err("%s", why);
		rc = 1;
		goto out;
	}
	b = mcp_broker_new(o.broker, o.ca, &h, (int)(o.timeout * 1000), why,
			   sizeof(why));
	handle_secret_free(&h); /* a no-op once the broker link took it */
	if (!b) {
		log_err("%s", why);
		rc = 1;
		goto out;
	}
	rc = o.stdio ? mcp_stdio_run(b) : mcp_http_run(b, o.http);
out:
	mcp_broker_free(b);
	mcp_tools_cleanup();
	return rc;
}
