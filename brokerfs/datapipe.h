/*
 * datapipe.h - READ payloads that go from a file to the socket by splice(2),
 * never through the broker's memory.
 *
 * Each thread has one pipe, lent to the job it runs.  The connection code
 * offers it before dispatching a request whose reply may carry piped bytes
 * (a plain connection: no TLS, no compression) and withdraws it after; a
 * backend that finds it offered may splice the file's pages into it and
 * answer with data_follows set (proto.h).  The thread then moves the bytes
 * to the socket, or into the reply buffer when the socket cannot take them
 * at once, before it runs anything else: between jobs the pipe is empty.
 */
#ifndef OCCFS_DATAPIPE_H
#define OCCFS_DATAPIPE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Off for the whole process (brokerfs --no-splice); call before serving. */
void datapipe_disable(void);

/* The connection code, around one request on this thread. */
void datapipe_offer(int ok);

/*
 * A backend: splice up to len bytes of fd from off into this thread's pipe.
 * Returns the bytes now held (fewer than len only at end of file), or
 * -EAGAIN, with nothing held, when the pipe is not offered, cannot take
 * this range, or splice fails: the caller then reads as usual, which also
 * reports the file's own error.
 */
ssize_t datapipe_fill(int fd, uint64_t off, size_t len);

/* Bytes this thread's pipe holds for the reply being sent. */
size_t datapipe_held(void);

/*
 * Move what the pipe holds to sock without blocking.  Returns the bytes
 * moved (possibly fewer than held, possibly 0 when the socket is full) or
 * -errno from the socket.
 */
ssize_t datapipe_to_socket(int sock);

/* Copy exactly n held bytes into p (n <= held); -errno when impossible. */
int datapipe_to_mem(void *p, size_t n);

/* Drop whatever is held (a reply that can no longer be sent). */
void datapipe_discard(void);

#endif
