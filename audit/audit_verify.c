/*
 * audit_verify.c - proves the hash chain over every segment of a log
 * directory and names the first record that breaks it.
 *
 * Checks, in order, per record: the line parses; its own hash matches its
 * content (else it was modified); its number is the next one (else records
 * were deleted, reordered or repeated: the rest of the segment is searched
 * for the expected one to tell which); its PREV is the hash of the record
 * before, across segment boundaries (else the chain was spliced).  Per
 * segment: its name matches its first record (else segments were swapped
 * or renamed) and it ends with a whole line (else it was truncated).  At
 * the end the log must reach the record HEAD names: whole records cut
 * from the tail are otherwise invisible.
 */
#include "audit_log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void fail(struct audit_verify *v, const struct audit_seg *s,
		 uint64_t index, uint64_t n, const char *fmt, ...)
{
	va_list ap;

	v->ok = 0;
	snprintf(v->seg, sizeof(v->seg), "%s", s ? s->name : "HEAD");
	v->index = index;
	v->n = n;
	va_start(ap, fmt);
	vsnprintf(v->what, sizeof(v->what), fmt, ap);
	va_end(ap);
}

/* Line number (1-based) of record n later in segment s, or 0. */
static uint64_t find_later(const char *dir, const struct audit_seg *s,
			   uint64_t after, uint64_t n)
{
	struct audit_reader *r = audit_reader_open(dir, s);
	struct audit_rec rec;
	const char *line;
	size_t len;
	uint64_t idx = 0, found = 0;

	if (!r)
		return 0;
	while (!found && audit_reader_next(r, &line, &len) == 1) {
		idx++;
		if (idx > after && audit_log_parse(line, len, &rec) == 0 &&
		    rec.n == n)
			found = idx;
	}
	audit_reader_close(r);
	return found;
}

static const char *read_error(int e)
{
	switch (e) {
	case -EBADMSG:
		return "truncated: the segment ends inside a record";
	case -EIO:
		return "corrupt or truncated compressed data";
	case -E2BIG:
		return "over-long record line";
	default:
		return strerror(-e);
	}
}

/* One record at line idx of s; 0 = fine, -1 = v holds the problem. */
static int check(const char *dir, const struct audit_seg *s, uint64_t idx,
		 const char *line, size_t len, uint64_t *expect, char *prev,
		 struct audit_verify *v)
{
	struct audit_rec rec;
	char h[AUDIT_HASH_HEX + 1];
	uint64_t q;

	if (audit_log_parse(line, len, &rec) < 0) {
		fail(v, s, idx, *expect, "malformed record line (modified)");
		return -1;
	}
	audit_log_hash(rec.n, rec.prev, rec.json, rec.json_len, h);
	if (strcmp(h, rec.hash) != 0) {
		fail(v, s, idx, *expect,
		     "hash mismatch: record %" PRIu64 " was modified", rec.n);
		return -1;
	}
	if (idx == 1 && rec.n != s->first) {
		fail(v, s, idx, *expect,
		     "segment name says record %" PRIu64
		     " but it starts at %" PRIu64
		     " (segments swapped or renamed)",
		     s->first, rec.n);
		return -1;
	}
	if (rec.n != *expect) {
		q = find_later(dir, s, idx, *expect);
		if (q)
			fail(v, s, idx, *expect,
			     "records out of order: found record %" PRIu64
			     ", record %" PRIu64 " is at line %" PRIu64
			     " (reordered)",
			     rec.n, *expect, q);
		else if (rec.n > *expect)
			fail(v, s, idx, *expect,
			     "records %" PRIu64 "..%" PRIu64
			     " are missing (deleted)",
			     *expect, rec.n - 1);
		else
			fail(v, s, idx, *expect,
			     "record %" PRIu64 " appears again or out of order",
			     rec.n);
		return -1;
	}
	if (strcmp(rec.prev, prev) != 0) {
		fail(v, s, idx, *expect,
		     "chain broken: record %" PRIu64
		     " does not link to the record before it",
		     rec.n);
		return -1;
	}
	memcpy(prev, rec.hash, AUDIT_HASH_HEX + 1);
	(*expect)++;
	return 0;
}

static int verify_seg(const char *dir, const struct audit_seg *s, int last,
		      uint64_t *expect, char *prev, struct audit_verify *v)
{
	struct audit_reader *r;
	const char *line;
	size_t len;
	uint64_t idx = 0;
	int e;

	if (s->first != *expect) {
		fail(v, s, 0, *expect,
		     s->first > *expect
			 ? "segment starts at record %" PRIu64
			   ", expected %" PRIu64
			   ": records missing (segment deleted?)"
			 : "segment starts at record %" PRIu64
			   ", expected %" PRIu64
			   ": segments swapped, duplicated or renamed",
		     s->first, *expect);
		return -1;
	}
	r = audit_reader_open(dir, s);
	if (!r) {
		fail(v, s, 0, *expect, "cannot open: %s", strerror(errno));
		return -1;
	}
	while ((e = audit_reader_next(r, &line, &len)) == 1)
		if (check(dir, s, ++idx, line, len, expect, prev, v) < 0)
			break;
	audit_reader_close(r);
	if (v->ok && e < 0)
		fail(v, s, idx + 1, *expect, "%s", read_error(e));
	/* Only the open segment may be empty (created, nothing written). */
	if (v->ok && idx == 0 && !last)
		fail(v, s, 0, *expect, "empty segment");
	return v->ok ? 0 : -1;
}

/* HEAD: "N HASH\n", written by the daemon after each fsync. */
static void check_head(const char *dir, uint64_t last, const char *hash,
		       struct audit_verify *v)
{
	char path[4096], line[128] = "", h[AUDIT_HASH_HEX + 1];
	unsigned long long n;
	FILE *f;

	snprintf(path, sizeof(path), "%s/HEAD", dir);
	f = fopen(path, "re");
	if (!f)
		return;
	if (!fgets(line, sizeof(line), f) ||
	    sscanf(line, "%llu %64s", &n, h) != 2) {
		fail(v, NULL, 0, last, "HEAD is unreadable");
	} else if (n > last) {
		fail(v, NULL, 0, last + 1,
		     "log ends at record %" PRIu64
		     " but HEAD records %llu: records cut from the end "
		     "(truncated)",
		     last, n);
	} else if (n == last && strcmp(h, hash) != 0) {
		fail(v, NULL, 0, last,
		     "last record %" PRIu64 " does not match HEAD (replaced)",
		     last);
	}
	fclose(f);
}

int audit_verify_dir(const char *dir, struct audit_verify *v)
{
	struct audit_seg *segs = NULL;
	size_t n, i;
	uint64_t expect = 1;
	char prev[AUDIT_HASH_HEX + 1] = AUDIT_ZERO_HASH;
	int r;

	memset(v, 0, sizeof(*v));
	v->ok = 1;
	r = audit_log_list(dir, &segs, &n);
	if (r < 0)
		return r;
	for (i = 0; i < n; i++)
		if (verify_seg(dir, &segs[i], i + 1 == n, &expect, prev, v) < 0)
			break;
	v->segments = n;
	v->records = expect - 1;
	memcpy(v->head, prev, sizeof(v->head));
	if (v->ok)
		check_head(dir, expect - 1, prev, v);
	free(segs);
	return 0;
}
