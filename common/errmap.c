/*
 * errmap.c - host errno <-> wire error code (see errmap.h).
 *
 * Wire codes are the classic numbers most Unixes share for the low range, but
 * they are fixed here and never follow the host: append, never renumber.
 */
#include "errmap.h"

#include <errno.h>
#include <stddef.h>

/* clang-format off */
#define ERRMAP_TABLE(X)                                                    \
	X(EPERM, 1) X(ENOENT, 2) X(ESRCH, 3) X(EINTR, 4) X(EIO, 5)         \
	X(ENXIO, 6) X(E2BIG, 7) X(ENOEXEC, 8) X(EBADF, 9) X(ECHILD, 10)    \
	X(EAGAIN, 11) X(ENOMEM, 12) X(EACCES, 13) X(EFAULT, 14)            \
	X(EBUSY, 16) X(EEXIST, 17) X(EXDEV, 18) X(ENODEV, 19)              \
	X(ENOTDIR, 20) X(EISDIR, 21) X(EINVAL, 22) X(ENFILE, 23)           \
	X(EMFILE, 24) X(ENOTTY, 25) X(ETXTBSY, 26) X(EFBIG, 27)            \
	X(ENOSPC, 28) X(ESPIPE, 29) X(EROFS, 30) X(EMLINK, 31)             \
	X(EPIPE, 32) X(EDOM, 33) X(ERANGE, 34) X(EDEADLK, 35)              \
	X(ENAMETOOLONG, 36) X(ENOLCK, 37) X(ENOSYS, 38) X(ENOTEMPTY, 39)   \
	X(ELOOP, 40) X(ENODATA, 61) X(ETIME, 62) X(EOVERFLOW, 75)          \
	X(EBADMSG, 74) X(EPROTO, 71) X(EILSEQ, 84) X(EOPNOTSUPP, 95)       \
	X(ECONNRESET, 104) X(ENOTCONN, 107) X(ETIMEDOUT, 110)              \
	X(ECONNREFUSED, 111) X(EHOSTUNREACH, 113) X(ESTALE, 116)           \
	X(EDQUOT, 122) X(ECANCELED, 125) X(EKEYEXPIRED, 127)               \
	X(EKEYREVOKED, 128) X(EKEYREJECTED, 129)
/* clang-format on */

struct errmap_entry {
	int host;
	uint32_t wire;
	const char *name;
};

static const struct errmap_entry table[] = {
#define ERRMAP_ENTRY(name, wire) {name, wire, #name},
    ERRMAP_TABLE(ERRMAP_ENTRY)
#undef ERRMAP_ENTRY
};

#define NENTRIES (sizeof(table) / sizeof(table[0]))

uint32_t errmap_to_wire(int host_errno)
{
	size_t i;

	if (host_errno == 0)
		return 0;
	/* ENOTSUP and EOPNOTSUPP are one value on Linux; EWOULDBLOCK = EAGAIN.
	 */
	for (i = 0; i < NENTRIES; i++)
		if (table[i].host == host_errno)
			return table[i].wire;
	return 5; /* EIO */
}

int errmap_from_wire(uint32_t wire)
{
	size_t i;

	if (wire == 0)
		return 0;
	for (i = 0; i < NENTRIES; i++)
		if (table[i].wire == wire)
			return table[i].host;
	return EIO;
}

const char *errmap_name(int host_errno)
{
	size_t i;

	for (i = 0; i < NENTRIES; i++)
		if (table[i].host == host_errno)
			return table[i].name;
	return "E?";
}
