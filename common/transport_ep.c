/*
 * transport_ep.c - the endpoint syntax of transport.h: "unix:PATH",
 * "vsock:CID:PORT" (CID "any" or -1: any) and "tls:HOST:PORT" ("[v6]"
 * for IPv6 literals), parsed strictly (every number in range, nothing
 * trailing) and formatted back for logs and messages.
 */
#include "transport.h"

#include <errno.h>
#include <limits.h>
#include <linux/vm_sockets.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Strict unsigned decimal in [lo, hi]. */
static int parse_num(const char *s, unsigned long lo, unsigned long hi,
		     uint32_t *out)
{
	unsigned long v;
	char *end;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v < lo || v > hi)
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

static int parse_unix(const char *p, struct transport_ep *ep, const char **why)
{
	if (*p == '\0') {
		*why = "unix endpoint needs a path (unix:/abs/path)";
		return -EINVAL;
	}
	if (*p != '/') {
		*why = "unix socket path must be absolute";
		return -EINVAL;
	}
	if (strlen(p) >= sizeof(ep->path)) {
		*why = "unix socket path too long (107 bytes at most)";
		return -ENAMETOOLONG;
	}
	strcpy(ep->path, p);
	ep->kind = TRANSPORT_UNIX;
	return 0;
}

static int parse_vsock(const char *p, struct transport_ep *ep, const char **why)
{
	const char *colon = strchr(p, ':');
	char cid[16];
	size_t n;

	if (!colon || colon == p || strchr(colon + 1, ':')) {
		*why = "vsock endpoint must be vsock:CID:PORT";
		return -EINVAL;
	}
	n = (size_t)(colon - p);
	if (n >= sizeof(cid)) {
		*why = "vsock CID is not a number";
		return -EINVAL;
	}
	memcpy(cid, p, n);
	cid[n] = '\0';
	if (strcmp(cid, "any") == 0 || strcmp(cid, "-1") == 0) {
		ep->cid = VMADDR_CID_ANY;
	} else if (parse_num(cid, 0, UINT32_MAX - 1, &ep->cid)) {
		*why = "vsock CID must be a number, 'any' or -1";
		return -EINVAL;
	}
	if (parse_num(colon + 1, 1, UINT32_MAX - 1, &ep->port)) {
		*why = "vsock port must be a number from 1 to 4294967294";
		return -EINVAL;
	}
	ep->kind = TRANSPORT_VSOCK;
	return 0;
}

static int parse_tls(const char *p, struct transport_ep *ep, const char **why)
{
	const char *colon = strrchr(p, ':'), *h = p;
	size_t n;

	if (!colon || colon == p) {
		*why = "tls endpoint must be tls:HOST:PORT";
		return -EINVAL;
	}
	n = (size_t)(colon - p);
	if (*p == '[') { /* [v6addr]:port */
		if (n < 3 || p[n - 1] != ']') {
			*why = "bad IPv6 address syntax (use tls:[ADDR]:PORT)";
			return -EINVAL;
		}
		h = p + 1;
		n -= 2;
	} else if (memchr(p, ':', n)) {
		*why = "IPv6 addresses must be bracketed (tls:[ADDR]:PORT)";
		return -EINVAL;
	}
	if (n >= sizeof(ep->host)) {
		*why = "tls host name too long";
		return -ENAMETOOLONG;
	}
	if (parse_num(colon + 1, 1, 65535, &ep->port)) {
		*why = "tls port must be a number from 1 to 65535";
		return -EINVAL;
	}
	memcpy(ep->host, h, n);
	ep->host[n] = '\0';
	ep->kind = TRANSPORT_TLS;
	return 0;
}

int transport_parse(const char *s, struct transport_ep *ep, const char **why)
{
	const char *dummy;

	if (!why)
		why = &dummy;
	memset(ep, 0, sizeof(*ep));
	if (!s) {
		*why = "empty endpoint";
		return -EINVAL;
	}
	if (strncmp(s, "unix:", 5) == 0)
		return parse_unix(s + 5, ep, why);
	if (strncmp(s, "vsock:", 6) == 0)
		return parse_vsock(s + 6, ep, why);
	if (strncmp(s, "tls:", 4) == 0)
		return parse_tls(s + 4, ep, why);
	*why = "unknown endpoint scheme (expected unix:, vsock: or tls:)";
	return -EINVAL;
}

void transport_format(const struct transport_ep *ep, char *out, size_t len)
{
	switch (ep->kind) {
	case TRANSPORT_UNIX:
		snprintf(out, len, "unix:%s", ep->path);
		break;
	case TRANSPORT_VSOCK:
		if (ep->cid == VMADDR_CID_ANY)
			snprintf(out, len, "vsock:any:%u", ep->port);
		else
			snprintf(out, len, "vsock:%u:%u", ep->cid, ep->port);
		break;
	case TRANSPORT_TLS:
		if (strchr(ep->host, ':'))
			snprintf(out, len, "tls:[%s]:%u", ep->host, ep->port);
		else
			snprintf(out, len, "tls:%s:%u", ep->host, ep->port);
		break;
	default:
		snprintf(out, len, "?");
	}
}
