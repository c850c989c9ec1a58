/*
 * errmap.h - the one table mapping host errno values to wire error codes.
 *
 * Linux errno numbers are an ABI of one platform; the wire carries its own
 * fixed codes so a client on another system decodes them correctly.  Unknown
 * host errors travel as EIO.
 */
#ifndef OCCFS_ERRMAP_H
#define OCCFS_ERRMAP_H

#include <stdint.h>

uint32_t errmap_to_wire(int host_errno); /* positive errno in, wire code out */
int errmap_from_wire(uint32_t wire);	 /* wire code in, positive errno out */
const char *errmap_name(int host_errno); /* "ENOENT", or "E?" */

#endif
