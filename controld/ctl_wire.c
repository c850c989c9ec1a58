/*
 * ctl_wire.c - JSON lines for the control plane's two sockets (ctl_wire.h).
 *
 * Decoding is the trust boundary of both sockets: a line is bounded before
 * it is parsed, must be one JSON object, and may not repeat keys.
 */
#include "ctl_wire.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int ctl_wire_encode(const json_t *msg, char **out, size_t *len)
{
	char *s = json_dumps(msg, JSON_COMPACT);
	size_t n;

	*out = NULL;
	*len = 0;
	if (!s)
		return -ENOMEM;
	n = strlen(s);
	if (n + 1 > CTL_MAX_LINE) {
		free(s);
		return -E2BIG;
	}
	/* json_dumps allocated n + 1 bytes: the NUL becomes the newline. */
	s[n] = '\n';
	*out = s;
	*len = n + 1;
	return 0;
}

int ctl_wire_decode(const char *p, size_t len, json_t **msg, size_t *used,
		    const char **why)
{
	const char *nl;
	json_error_t err;
	json_t *j;

	*msg = NULL;
	*used = 0;
	nl = len ? memchr(p, '\n', len) : NULL;
	if (!nl) {
		if (len >= CTL_MAX_LINE) {
			*why = "message longer than the limit";
			return -E2BIG;
		}
		return 0;
	}
	*used = (size_t)(nl - p) + 1;
	if (*used > CTL_MAX_LINE) {
		*why = "message longer than the limit";
		return -E2BIG;
	}
	j = json_loadb(p, (size_t)(nl - p), JSON_REJECT_DUPLICATES, &err);
	if (!j) {
		*why = "message is not valid JSON";
		return -EBADMSG;
	}
	if (!json_is_object(j)) {
		json_decref(j);
		*why = "message is not a JSON object";
		return -EBADMSG;
	}
	*msg = j;
	return 1;
}

static long long ctl_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait for events on fd until deadline (ms, monotonic). */
static int ctl_wait(int fd, short events, long long deadline)
{
	struct pollfd pfd = {.fd = fd, .events = events};
	long long left;
	int n;

	for (;;) {
		left = deadline - ctl_now_ms();
		if (left <= 0)
			return -ETIMEDOUT;
		n = poll(&pfd, 1, (int)(left > 60000 ? 60000 : left));
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return -errno;
	}
}

int ctl_wire_send(int fd, const json_t *msg, int timeout_ms)
{
	long long deadline = ctl_now_ms() + timeout_ms;
	size_t len, off = 0;
	char *s;
	ssize_t n;
	int rc;

	rc = ctl_wire_encode(msg, &s, &len);
	if (rc)
		return rc;
	while (off < len) {
		n = write(fd, s + off, len - off);
		if (n > 0) {
			off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN) {
			rc = -errno;
			break;
		}
		rc = ctl_wait(fd, POLLOUT, deadline);
		if (rc)
			break;
	}
	free(s);
	return rc;
}

/*
 * One byte at a time would be simplest but slow for a full listing; read
 * in chunks and keep nothing past the first newline (clients send one
 * request and read one reply, so nothing follows it).
 */
int ctl_wire_recv(int fd, json_t **msg, int timeout_ms)
{
	long long deadline = ctl_now_ms() + timeout_ms;
	const char *why = NULL;
	size_t len = 0, cap = 0, used;
	char *p = NULL, *np;
	ssize_t n;
	int rc;

	*msg = NULL;
	for (;;) {
		if (cap - len < 65536) {
			if (cap >= CTL_MAX_LINE + 65536) {
				rc = -E2BIG;
				goto out;
			}
			np = realloc(p, cap + 65536);
			if (!np) {
				rc = -ENOMEM;
				goto out;
			}
			p = np;
			cap += 65536;
		}
		n = read(fd, p + len, cap - len);
		if (n == 0) {
			rc = -ECONNRESET;
			goto out;
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN) {
				rc = -errno;
				goto out;
			}
			rc = ctl_wait(fd, POLLIN, deadline);
			if (rc)
				goto out;
			continue;
		}
		len += (size_t)n;
		rc = ctl_wire_decode(p, len, msg, &used, &why);
		if (rc)
			break;
	}
	rc = rc > 0 ? 0 : rc;
out:
	free(p);
	return rc;
}

const char *ctl_wire_str(const json_t *o, const char *key, const char *def)
{
	const json_t *v = json_object_get(o, key);

	return json_is_string(v) ? json_string_value(v) : def;
}

long long ctl_wire_int(const json_t *o, const char *key, long long def)
{
	const json_t *v = json_object_get(o, key);

	return json_is_integer(v) ? (long long)json_integer_value(v) : def;
}

int ctl_wire_bool(const json_t *o, const char *key, int def)
{
	const json_t *v = json_object_get(o, key);

	return json_is_boolean(v) ? json_is_true(v) : def;
}

const char *ctl_wire_errname(int err)
{
	const char *n = strerrorname_np(err < 0 ? -err : err);

	return n ? n : "EIO";
}

int ctl_wire_errnum(const char *name)
{
	int e;

	if (!name)
		return 0;
	for (e = 1; e < 200; e++)
		if (strerrorname_np(e) && strcmp(strerrorname_np(e), name) == 0)
			return e;
	return 0;
}
