/*
 * test_errmap.c - the host errno <-> wire code table.
 *
 * The wire numbers are part of the protocol, so a few are pinned here by
 * value: changing one breaks every deployed peer.
 */
#include "errmap.h"
#include "unit.h"

#include <errno.h>
#include <stdint.h>

/* Every errno errmap.c lists, with its name. */
static const struct {
	int host;
	const char *name;
} known[] = {
    {EPERM, "EPERM"},
    {ENOENT, "ENOENT"},
    {ESRCH, "ESRCH"},
    {EINTR, "EINTR"},
    {EIO, "EIO"},
    {ENXIO, "ENXIO"},
    {E2BIG, "E2BIG"},
    {ENOEXEC, "ENOEXEC"},
    {EBADF, "EBADF"},
    {ECHILD, "ECHILD"},
    {EAGAIN, "EAGAIN"},
    {ENOMEM, "ENOMEM"},
    {EACCES, "EACCES"},
    {EFAULT, "EFAULT"},
    {EBUSY, "EBUSY"},
    {EEXIST, "EEXIST"},
    {EXDEV, "EXDEV"},
    {ENODEV, "ENODEV"},
    {ENOTDIR, "ENOTDIR"},
    {EISDIR, "EISDIR"},
    {EINVAL, "EINVAL"},
    {ENFILE, "ENFILE"},
    {EMFILE, "EMFILE"},
    {ENOTTY, "ENOTTY"},
    {ETXTBSY, "ETXTBSY"},
    {EFBIG, "EFBIG"},
    {ENOSPC, "ENOSPC"},
    {ESPIPE, "ESPIPE"},
    {EROFS, "EROFS"},
    {EMLINK, "EMLINK"},
    {EPIPE, "EPIPE"},
    {EDOM, "EDOM"},
    {ERANGE, "ERANGE"},
    {EDEADLK, "EDEADLK"},
    {ENAMETOOLONG, "ENAMETOOLONG"},
    {ENOLCK, "ENOLCK"},
    {ENOSYS, "ENOSYS"},
    {ENOTEMPTY, "ENOTEMPTY"},
    {ELOOP, "ELOOP"},
    {ENODATA, "ENODATA"},
    {ETIME, "ETIME"},
    {EOVERFLOW, "EOVERFLOW"},
    {EBADMSG, "EBADMSG"},
    {EPROTO, "EPROTO"},
    {EILSEQ, "EILSEQ"},
    {EOPNOTSUPP, "EOPNOTSUPP"},
    {ECONNRESET, "ECONNRESET"},
    {ENOTCONN, "ENOTCONN"},
    {ETIMEDOUT, "ETIMEDOUT"},
    {ECONNREFUSED, "ECONNREFUSED"},
    {EHOSTUNREACH, "EHOSTUNREACH"},
    {ESTALE, "ESTALE"},
    {EDQUOT, "EDQUOT"},
    {ECANCELED, "ECANCELED"},
    {EKEYEXPIRED, "EKEYEXPIRED"},
    {EKEYREVOKED, "EKEYREVOKED"},
    {EKEYREJECTED, "EKEYREJECTED"},
};

#define NKNOWN (sizeof(known) / sizeof(known[0]))

static void test_round_trip(void)
{
	uint32_t wire[NKNOWN];
	size_t i, j;
	int dup = 0, bad = 0;

	for (i = 0; i < NKNOWN; i++) {
		wire[i] = errmap_to_wire(known[i].host);
		if (wire[i] == 0 || errmap_from_wire(wire[i]) != known[i].host)
			bad++;
		CHECK_STR(errmap_name(known[i].host), known[i].name);
		for (j = 0; j < i; j++)
			if (wire[j] == wire[i])
				dup++;
	}
	CHECK_EQ(bad, 0);
	CHECK_EQ(dup, 0);
	/* EIO is the fallback, so it must itself be a real entry. */
	CHECK(errmap_to_wire(EIO) != 0);
}

static void test_pinned(void)
{
	CHECK_EQ(errmap_to_wire(0), 0);
	CHECK_EQ(errmap_from_wire(0), 0);
	CHECK_EQ(errmap_to_wire(EPERM), 1);
	CHECK_EQ(errmap_to_wire(ENOENT), 2);
	CHECK_EQ(errmap_to_wire(EIO), 5);
	CHECK_EQ(errmap_to_wire(EACCES), 13);
	CHECK_EQ(errmap_to_wire(EROFS), 30);
	CHECK_EQ(errmap_to_wire(ENOTEMPTY), 39);
	CHECK_EQ(errmap_to_wire(ENODATA), 61);
	CHECK_EQ(errmap_to_wire(EOPNOTSUPP), 95);
	CHECK_EQ(errmap_to_wire(ESTALE), 116);
	CHECK_EQ(errmap_to_wire(EKEYREVOKED), 128);
	CHECK_EQ(errmap_from_wire(36), ENAMETOOLONG);
	/* Aliases share the entry of the name they alias. */
	CHECK_EQ(errmap_to_wire(EWOULDBLOCK), errmap_to_wire(EAGAIN));
	CHECK_EQ(errmap_to_wire(ENOTSUP), errmap_to_wire(EOPNOTSUPP));
}

static void test_unknown(void)
{
	/* Unknown in either direction becomes EIO, never 0 (success). */
	CHECK_EQ(errmap_to_wire(EHWPOISON), 5);
	CHECK_EQ(errmap_to_wire(-1), 5);
	CHECK_EQ(errmap_to_wire(100000), 5);
	CHECK_EQ(errmap_from_wire(15), EIO); /* ENOTBLK: not in the table */
	CHECK_EQ(errmap_from_wire(9999), EIO);
	CHECK_EQ(errmap_from_wire(UINT32_MAX), EIO);
	CHECK_STR(errmap_name(EHWPOISON), "E?");
	CHECK_STR(errmap_name(0), "E?");
	CHECK_STR(errmap_name(-5), "E?");
}

int main(void)
{
	test_round_trip();
	test_pinned();
	test_unknown();
	return unit_done("test_errmap");
}
