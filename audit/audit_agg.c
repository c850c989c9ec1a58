/*
 * audit_agg.c - aggregation of successful reads and writes: calls with the
 * same (session, filesystem_id, path, operation, uid) within one window
 * become one File System Activity event with count, start_time, end_time
 * and the summed byte count.
 *
 * The table is fixed (AUDIT_AGG_SLOTS, open addressing, short probe), so
 * memory stays bounded; a call that finds no slot, or whose strings do not
 * fit a slot, is emitted as its own event instead.  The sync thread flushes
 * entries whose window has passed; audit_flush and audit_close flush all.
 */
#include "audit_int.h"

#include <string.h>

#define PROBE 16

static uint64_t mix(uint64_t h, const char *s)
{
	for (; s && *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
	return (h ^ 0xff) * 0x100000001b3ull;
}

static int same(const struct audit_agg_entry *e,
		const struct audit_file_event *ev)
{
	return e->ev.op == ev->op && e->ev.actor.uid == ev->actor.uid &&
	       e->ev.actor.has_cred == ev->actor.has_cred &&
	       strcmp(e->sid, ev->sid ? ev->sid : "") == 0 &&
	       strcmp(e->fsid, ev->fsid ? ev->fsid : "") == 0 &&
	       strcmp(e->path, ev->path ? ev->path : "") == 0;
}

/* Copy src into dst[cap]; 0 if it does not fit. */
static int put(char *dst, size_t cap, const char *src)
{
	size_t n = src ? strlen(src) : 0;

	if (n >= cap)
		return 0;
	memcpy(dst, src ? src : "", n + 1);
	return 1;
}

static int fill(struct audit_agg_entry *e, const struct audit_file_event *ev,
		uint64_t now)
{
	memset(e, 0, sizeof(*e));
	if (!put(e->sid, sizeof(e->sid), ev->sid) ||
	    !put(e->fsid, sizeof(e->fsid), ev->fsid) ||
	    !put(e->intent, sizeof(e->intent), ev->intent) ||
	    !put(e->user, sizeof(e->user), ev->actor.user) ||
	    !put(e->peer, sizeof(e->peer), ev->actor.peer) ||
	    !put(e->path, sizeof(e->path), ev->path) ||
	    !put(e->trace, sizeof(e->trace), ev->c.trace_id))
		return 0;
	e->ev = *ev;
	e->ev.sid = ev->sid ? e->sid : NULL;
	e->ev.fsid = ev->fsid ? e->fsid : NULL;
	e->ev.intent = ev->intent ? e->intent : NULL;
	e->ev.actor.user = ev->actor.user ? e->user : NULL;
	e->ev.actor.peer = ev->actor.peer ? e->peer : NULL;
	e->ev.path = ev->path ? e->path : NULL;
	e->ev.new_path = NULL;
	e->ev.c.trace_id = ev->c.trace_id ? e->trace : NULL;
	e->start_ms = e->end_ms = ev->c.time_ms ? ev->c.time_ms : now;
	e->used = 1;
	return 1;
}

int audit_agg_add(struct audit *a, const struct audit_file_event *ev)
{
	uint64_t h = 0xcbf29ce484222325ull, now = audit_now_ms();
	struct audit_agg_entry *e;
	int i, r = 0;

	h = mix(mix(mix(h, ev->sid), ev->fsid), ev->path);
	h = (h ^ (uint64_t)ev->op ^ ((uint64_t)ev->actor.uid << 8)) *
	    0x100000001b3ull;
	pthread_mutex_lock(&a->agg_lock);
	for (i = 0; i < PROBE; i++) {
		e = &a->agg[(h + i) % AUDIT_AGG_SLOTS];
		if (e->used && same(e, ev)) {
			e->count++;
			e->bytes += ev->bytes;
			e->end_ms = ev->c.time_ms ? ev->c.time_ms : now;
			r = 1;
			break;
		}
		if (!e->used) {
			r = fill(e, ev, now);
			if (r) {
				e->count = 1;
				e->bytes = ev->bytes;
			}
			break;
		}
	}
	pthread_mutex_unlock(&a->agg_lock);
	if (r) {
		pthread_mutex_lock(&a->lock);
		a->st.aggregated++;
		pthread_mutex_unlock(&a->lock);
	}
	return r;
}

void audit_agg_flush(struct audit *a, int force)
{
	struct audit_file_extra x = {0, 0, 0, 0};
	struct audit_agg_entry *e;
	uint64_t now = audit_now_ms();
	unsigned window;
	int i;

	pthread_mutex_lock(&a->agg_lock);
	for (i = 0; i < AUDIT_AGG_SLOTS; i++) {
		e = &a->agg[i];
		if (!e->used)
			continue;
		window = a->cfg.ops[e->ev.op].window_ms;
		if (!force && now < e->start_ms + window)
			continue;
		x.count = e->count;
		x.start_ms = e->start_ms;
		x.end_ms = e->end_ms;
		e->ev.bytes = e->bytes;
		e->ev.c.time_ms = e->end_ms;
		audit_put_file(a, &e->ev, &x);
		e->used = 0;
	}
	pthread_mutex_unlock(&a->agg_lock);
}
