/*
 * broker_control.h - brokerfs's link to occfs-controld (--control-socket).
 *
 * The broker connects to the control plane, reconnecting with backoff, and
 * keeps a copy of its denylist state: revoked session ids and handle ids,
 * the kill-switch with its not_before watermark, and quota overrides.  New
 * sessions are checked against it at open (on a worker, hence the lock);
 * open sessions are cut on the loop the moment a revocation arrives.  While
 * the link is down (or before the first state arrived) new sessions are
 * refused, fail closed; sessions already open keep running until their
 * handles expire or a revocation reaches the broker.
 */
#ifndef OCCFS_BROKER_CONTROL_H
#define OCCFS_BROKER_CONTROL_H

#include <stddef.h>
#include <stdint.h>

struct broker;
struct loop_src;
struct token_claims;

/* From broker_init, on the loop: start connecting.  0 or -errno. */
int broker_control_start(struct broker *b, const char *path);
/* From broker_cleanup. */
void broker_control_stop(struct broker *b);
/* An epoll event on one of the link's sources (SRC_CONTROL). */
void broker_control_event(struct broker *b, struct loop_src *src,
			  uint32_t events);

/*
 * Any thread, at session open: 0, or -EACCES with why (for the guest) when
 * the control state denies the claims or cannot be checked.  Always 0
 * without --control-socket.
 */
int broker_control_admit(const struct token_claims *c, char *why, size_t len);
/* Any thread: is an open session with these claims denied now?  1 or 0. */
int broker_control_denied(const struct token_claims *c, char *why, size_t len);
/* The quota override of fsid: 1 with the values, 0 when there is none. */
int broker_control_quota(const char *fsid, uint64_t *bytes, uint64_t *inodes);
/*
 * A worker, after a destroyed session's drain: left files of the session
 * with these claims are still staged, so its destroy is not "flushed".
 */
void broker_control_drained(const struct token_claims *c, int left);
/* The loop, after every turn: answer destroys whose sessions are closed. */
void broker_control_turn(struct broker *b);

#endif
