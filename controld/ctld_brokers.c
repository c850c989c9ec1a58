/*
 * ctld_brokers.c - the control link, occfs-controld's side.
 *
 * A broker connects, says hello and gets the whole denylist state at once;
 * from then on every change is pushed with an id, and the operator request
 * behind it waits (struct ctld_wait) until every broker that was connected
 * when it was pushed acknowledged it, disconnected, or the ack timeout
 * passed.  A broker that misses a push is not a hole: the change is already
 * in the store and the broker gets it in the state it is sent when it
 * reconnects, and until then it refuses new sessions (fail closed).
 */
#include "controld.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl_wire.h"
#include "log.h"

struct ctld_wait {
	struct ctld_wait *next;
	uint64_t id;
	struct ctld_conn *op; /* NULL once the operator hung up */
	json_t *reply;
	uint64_t *brokers; /* connection ids; 0 once answered */
	size_t n, left;
	long long start, deadline;
	unsigned long long cut;
	int flush, unflushed;
	json_t *failed; /* names of brokers that did not acknowledge */
};

static void brokers_finish(struct ctld *d, struct ctld_wait *w, int timeout)
{
	struct ctld_wait **pp;
	size_t i, nfailed;
	char names[300] = "";
	json_t *r = w->reply;

	for (i = 0; i < w->n; i++)
		if (w->brokers[i])
			json_array_append_new(w->failed,
					      json_string("(no ack in time)"));
	nfailed = json_array_size(w->failed);
	json_object_set_new(r, "brokers", json_integer((json_int_t)w->n));
	json_object_set_new(r, "acked",
			    json_integer((json_int_t)(w->n - nfailed)));
	json_object_set_new(r, "cut", json_integer((json_int_t)w->cut));
	json_object_set_new(r, "ms", json_integer(ctld_now_ms() - w->start));
	/* No broker linked: nobody could flush (a broker that is away
	 * still serves its open sessions until it resyncs). */
	if (w->flush)
		json_object_set_new(
		    r, "flushed",
		    json_boolean(w->n && !w->unflushed && !nfailed));
	if (nfailed) {
		for (i = 0; i < nfailed && strlen(names) < 200; i++) {
			strncat(names, i ? ", " : "",
				sizeof(names) - strlen(names) - 1);
			strncat(names,
				json_string_value(json_array_get(w->failed, i)),
				sizeof(names) - strlen(names) - 1);
		}
		json_object_set_new(r, "ok", json_false());
		json_object_set_new(r, "error",
				    json_string(timeout ? "ETIMEDOUT" : "EIO"));
		json_object_set_new(
		    r, "message",
		    json_sprintf("%zu of %zu brokers did not acknowledge (%s); "
				 "the change is recorded and reaches them when "
				 "they reconnect, and until then they refuse "
				 "new sessions",
				 nfailed, w->n, names));
	} else {
		json_object_set_new(r, "ok", json_true());
	}
	json_object_set_new(r, "failed", w->failed);
	w->failed = NULL;
	if (w->op) {
		w->op->wait = NULL;
		ctld_send(d, w->op, r);
	}
	for (pp = &d->waits; *pp; pp = &(*pp)->next) {
		if (*pp == w) {
			*pp = w->next;
			break;
		}
	}
	json_decref(w->reply);
	json_decref(w->failed);
	free(w->brokers);
	free(w);
}

void ctld_brokers_push(struct ctld *d, struct ctld_conn *c, json_t *push,
		       json_t *reply)
{
	struct ctld_wait *w = NULL;
	struct ctld_conn *b;
	size_t n = 0;

	if (!push || !reply || !(w = calloc(1, sizeof(*w))) ||
	    !(w->brokers = calloc(d->nconns + 1, sizeof(uint64_t))) ||
	    !(w->failed = json_array())) {
		ctld_ops_error(d, c, ENOMEM,
			       "out of memory (the change is recorded; brokers "
			       "get it when they reconnect)");
		if (w) {
			free(w->brokers);
			free(w);
		}
		goto out;
	}
	w->id = ++d->next_id;
	w->op = c;
	w->reply = reply;
	reply = NULL;
	w->flush = ctl_wire_bool(push, "flush", 0);
	w->start = ctld_now_ms();
	w->deadline = w->start + d->cfg.ack_timeout_ms;
	json_object_set_new(push, "id", json_integer((json_int_t)w->id));
	for (b = d->conns; b; b = b->next) {
		if (b->kind != CTLD_BROKER || b->dead || !b->hello)
			continue;
		if (ctld_send(d, b, push) == 0 && !b->dead)
			w->brokers[n++] = b->id;
	}
	w->n = w->left = n;
	w->next = d->waits;
	d->waits = w;
	c->wait = w;
	if (!n)
		brokers_finish(d, w, 0);
out:
	json_decref(push);
	json_decref(reply);
}

/* Broker b answered (or is gone: gone_why set) for w. */
static void brokers_answer(struct ctld *d, struct ctld_wait *w,
			   struct ctld_conn *b, json_t *ack,
			   const char *gone_why)
{
	const char *err;
	size_t i;

	for (i = 0; i < w->n; i++)
		if (w->brokers[i] == b->id)
			break;
	if (i == w->n)
		return;
	w->brokers[i] = 0;
	w->left--;
	if (gone_why) {
		json_array_append_new(
		    w->failed, json_sprintf("%s: %s", b->name, gone_why));
	} else {
		err = ctl_wire_str(ack, "error", NULL);
		if (err)
			json_array_append_new(
			    w->failed, json_sprintf("%s: %s", b->name, err));
		w->cut += (unsigned long long)ctl_wire_int(ack, "cut", 0);
		if (!ctl_wire_bool(ack, "flushed", 1))
			w->unflushed = 1;
	}
	if (!w->left)
		brokers_finish(d, w, 0);
}

void ctld_brokers_gone(struct ctld *d, struct ctld_conn *c)
{
	struct ctld_wait *w, *next;

	if (c->kind == CTLD_OPERATOR) {
		if (c->wait)
			c->wait->op = NULL;
		c->wait = NULL;
		return;
	}
	for (w = d->waits; w; w = next) {
		next = w->next;
		brokers_answer(d, w, c, NULL, "disconnected");
	}
}

void ctld_brokers_tick(struct ctld *d)
{
	long long now = ctld_now_ms();
	struct ctld_wait *w, *next;

	for (w = d->waits; w; w = next) {
		next = w->next;
		if (now >= w->deadline)
			brokers_finish(d, w, 1);
	}
}

/* ---- the state a (re)connecting broker starts from ------------------------
 */

static int brokers_deny_one(void *arg, const struct ctld_deny *dn)
{
	json_array_append_new(arg, json_pack("{s:s, s:s, s:I}", "sid", dn->sid,
					     "jti", dn->jti, "exp",
					     (json_int_t)dn->exp));
	return 0;
}

static int brokers_quota_one(void *arg, const char *fsid, int64_t bytes,
			     int64_t inodes)
{
	json_array_append_new(arg, json_pack("{s:s, s:I, s:I}", "fsid", fsid,
					     "bytes", (json_int_t)bytes,
					     "inodes", (json_int_t)inodes));
	return 0;
}

static void brokers_hello(struct ctld *d, struct ctld_conn *b, json_t *msg)
{
	json_t *deny = json_array(), *quotas = json_array(), *st;
	const char *name = ctl_wire_str(msg, "name", "broker");
	int64_t not_before;
	size_t i;
	int kill;

	snprintf(b->name, sizeof(b->name), "%.64s[%lld]", name,
		 ctl_wire_int(msg, "pid", 0));
	for (i = 0; b->name[i]; i++)
		if ((unsigned char)b->name[i] < 0x20 || b->name[i] == 0x7f)
			b->name[i] = '?';
	ctld_store_kill_state(d->store, &kill, &not_before);
	if (!deny || !quotas ||
	    ctld_store_deny_list(d->store, time(NULL), brokers_deny_one,
				 deny) ||
	    ctld_store_quotas(d->store, brokers_quota_one, quotas)) {
		log_err("broker %s: cannot read the state; disconnecting",
			b->name);
		json_decref(deny);
		json_decref(quotas);
		ctld_close(d, b);
		return;
	}
	b->state_id = ++d->next_id;
	st =
	    json_pack("{s:s, s:I, s:b, s:I, s:o, s:o}", "op", CTL_B_STATE, "id",
		      (json_int_t)b->state_id, "kill", kill, "not_before",
		      (json_int_t)not_before, "deny", deny, "quotas", quotas);
	if (!st) {
		ctld_close(d, b);
		return;
	}
	b->hello = 1;
	log_info("broker %s connected; sending %zu denylist entries%s", b->name,
		 json_array_size(deny),
		 kill ? " and the engaged kill-switch" : "");
	ctld_send(d, b, st);
	json_decref(st);
}

void ctld_brokers_message(struct ctld *d, struct ctld_conn *c, json_t *msg)
{
	const char *op = ctl_wire_str(msg, "op", "");
	uint64_t id = (uint64_t)ctl_wire_int(msg, "id", 0);
	struct ctld_wait *w;

	if (strcmp(op, CTL_B_HELLO) == 0 && !c->hello) {
		brokers_hello(d, c, msg);
		return;
	}
	if (strcmp(op, CTL_B_ACK) != 0 || !c->hello) {
		log_warn("broker %s: unexpected message '%.32s'", c->name, op);
		return;
	}
	if (id && id == c->state_id) {
		c->synced = 1;
		log_info("broker %s synced (%lld sessions cut)", c->name,
			 ctl_wire_int(msg, "cut", 0));
		return;
	}
	for (w = d->waits; w; w = w->next) {
		if (w->id == id) {
			brokers_answer(d, w, c, msg, NULL);
			return;
		}
	}
}
