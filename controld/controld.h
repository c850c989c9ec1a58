/*
 * controld.h - occfs-controld, the control plane: what its files share.
 *
 * One thread runs an epoll loop (controld.c) over two listeners: the
 * operator socket (occfsctl; identity from SO_PEERCRED, checked against the
 * policy's operators) and the control socket that brokers connect to.  The
 * session table, the denylist, the kill-switch and quota overrides live in
 * SQLite (ctld_store.c) and are committed before anything is pushed to a
 * broker or answered to an operator.  Operator requests are handled in
 * ctld_ops.c; pushes to brokers and the wait for their acknowledgements in
 * ctld_brokers.c.  Everything runs on the loop thread: no locks.
 */
#ifndef OCCFS_CONTROLD_H
#define OCCFS_CONTROLD_H

#include <jansson.h>
#include <stdint.h>
#include <sys/types.h>

#include "buf.h"
#include "policy.h"

#define CTLD_DEFAULT_STATE "/var/lib/occfs-controld"
#define CTLD_DEFAULT_SPOOL "/var/lib/occfs/audit-spool/occfs-controld"
#define CTLD_DEFAULT_ENDPOINT "unix:/run/occfs/broker.sock"
#define CTLD_DEFAULT_ACK_MS 10000u
#define CTLD_MAX_CONNS 256u

struct audit;
struct token_key;
struct ctld_store;

struct ctld_config {
	const char *policy_dir, *state_dir, *operator_socket, *control_socket;
	const char *audit_socket, *audit_spool, *endpoint, *pidfile;
	unsigned operator_mode, ack_timeout_ms;
	int foreground, check_only, verbose;
};

/* ---- the durable store (ctld_store.c) ---------------------------------- */

struct ctld_session {
	char sid[128], jti[128], fsid[256], tenant[128];
	char intent[16], state[16], reason[128];
	int64_t created, exp, ended; /* seconds since the epoch; ended 0 */
	uid_t operator_uid;
};

struct ctld_deny {
	char sid[128], jti[128];
	int64_t exp; /* kept until the handle could no longer be used */
};

struct ctld_store *ctld_store_open(const char *dir, char *why, size_t len);
void ctld_store_close(struct ctld_store *st);
int ctld_store_session_add(struct ctld_store *st, const struct ctld_session *s);
int ctld_store_session_get(struct ctld_store *st, const char *sid,
			   struct ctld_session *out); /* -ENOENT */
/* Active -> state ("revoked", "destroyed"), and the sid onto the denylist. */
int ctld_store_session_end(struct ctld_store *st, const char *sid,
			   const char *state, const char *reason, int64_t now);
int ctld_store_sessions(struct ctld_store *st, int all,
			int (*cb)(void *arg, const struct ctld_session *s),
			void *arg);
int ctld_store_deny_add(struct ctld_store *st, const struct ctld_deny *d,
			const char *reason);
int ctld_store_deny_list(struct ctld_store *st, int64_t now,
			 int (*cb)(void *arg, const struct ctld_deny *d),
			 void *arg);
int ctld_store_deny_prune(struct ctld_store *st, int64_t now);
/* Kill-switch on: every active session revoked, not_before = now. */
int ctld_store_kill(struct ctld_store *st, int on, int64_t now);
int ctld_store_kill_state(struct ctld_store *st, int *on, int64_t *not_before);
/* bytes/inodes < 0: clear the override of fsid. */
int ctld_store_quota_set(struct ctld_store *st, const char *fsid, int64_t bytes,
			 int64_t inodes);
int ctld_store_quotas(struct ctld_store *st,
		      int (*cb)(void *arg, const char *fsid, int64_t bytes,
				int64_t inodes),
		      void *arg);

/* ---- the daemon (controld.c) -------------------------------------------- */

enum ctld_kind { CTLD_OPERATOR, CTLD_BROKER };

struct ctld_wait;

struct ctld_conn {
	struct ctld_conn *next;
	uint64_t id;
	int fd;
	enum ctld_kind kind;
	uid_t uid;
	gid_t gid;
	pid_t pid;
	char name[160]; /* operator "uid=0 pid=12"; broker its hello name */
	struct buf in, out;
	int hello;		/* broker: said hello, was sent the state */
	int synced;		/* broker: acknowledged the state */
	uint64_t state_id;	/* broker: id of the state message sent */
	int closing;		/* close once out is written */
	int dead;		/* closed; freed by the loop */
	struct ctld_wait *wait; /* operator: request waiting on brokers */
};

struct ctld {
	struct ctld_config cfg;
	struct policy_handle pol;
	struct token_key *key;
	struct audit *audit;
	struct ctld_store *store;
	int epfd, op_lfd, ctl_lfd, sigfd, timerfd;
	struct ctld_conn *conns;
	unsigned nconns;
	struct ctld_wait *waits;
	uint64_t next_id;
	int stopping;
	int64_t last_prune;
};

/* Queue msg on c (a line) and try to write it.  0 or -errno. */
int ctld_send(struct ctld *d, struct ctld_conn *c, const json_t *msg);
void ctld_close(struct ctld *d, struct ctld_conn *c);
long long ctld_now_ms(void);

/* ---- operator requests (ctld_ops.c) ------------------------------------- */

/* Answer (or start answering) one request; takes no reference to msg. */
void ctld_ops_request(struct ctld *d, struct ctld_conn *c, json_t *msg);
/* Reply {"ok":false,...} to c. */
void ctld_ops_error(struct ctld *d, struct ctld_conn *c, int err,
		    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* ---- brokers (ctld_brokers.c) ------------------------------------------- */

void ctld_brokers_message(struct ctld *d, struct ctld_conn *c, json_t *msg);
/*
 * Send push (its "id" is set here) to every broker with the state and make
 * the operator c wait for their acknowledgements; reply (stolen) is then
 * completed with brokers, cut, flushed, ms and sent.  With no broker, the
 * reply goes out at once.
 */
void ctld_brokers_push(struct ctld *d, struct ctld_conn *c, json_t *push,
		       json_t *reply);
/* A connection is going away: waits forget it. */
void ctld_brokers_gone(struct ctld *d, struct ctld_conn *c);
/* Timer: waits past their deadline are answered with what came back. */
void ctld_brokers_tick(struct ctld *d);

#endif
