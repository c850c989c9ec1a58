/*
 * audit_cli.c - occfs-audit, the operator's view of an occfs-auditd log:
 *
 *   occfs-audit verify DIR [--json]
 *   occfs-audit tail DIR [-n N] [-f] [--sid S] [--fsid F] [--class UID]
 *               [--json]
 *
 * verify exits 0 when the chain holds over every segment, 1 naming the
 * first bad record, 2 on usage or I/O errors.
 */
#include "audit_log.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct filter {
	const char *sid, *fsid;
	long class_uid;
	int json;
};

static void usage(void)
{
	fprintf(stderr,
		"usage: occfs-audit verify DIR [--json]\n"
		"       occfs-audit tail DIR [-n N] [-f] [--sid S] [--fsid F] "
		"[--class UID] [--json]\n");
	exit(2);
}

static int cmd_verify(const char *dir, int as_json)
{
	struct audit_verify v;
	json_t *o;
	char *s;
	int r = audit_verify_dir(dir, &v);

	if (r < 0) {
		fprintf(stderr, "occfs-audit: %s: %s\n", dir, strerror(-r));
		return 2;
	}
	if (as_json) {
		o = json_pack("{s:b, s:I, s:I, s:s}", "ok", v.ok, "records",
			      (json_int_t)v.records, "segments",
			      (json_int_t)v.segments, "head", v.head);
		if (!v.ok) {
			json_object_set_new(o, "segment", json_string(v.seg));
			json_object_set_new(o, "line", json_integer(v.index));
			json_object_set_new(o, "record", json_integer(v.n));
			json_object_set_new(o, "problem", json_string(v.what));
		}
		s = json_dumps(o, JSON_COMPACT);
		puts(s ? s : "{}");
		free(s);
		json_decref(o);
	} else if (v.ok) {
		printf("ok: %" PRIu64 " records in %zu segments, head %s\n",
		       v.records, v.segments, v.head);
	} else {
		printf("%s: line %" PRIu64 " (record %" PRIu64 "): %s\n", v.seg,
		       v.index, v.n, v.what);
	}
	return v.ok ? 0 : 1;
}

static const char *jstr(json_t *o, const char *a, const char *b)
{
	json_t *x = json_object_get(o, a);

	if (b)
		x = json_object_get(x, b);
	return json_string_value(x);
}

static const char *or_dash(const char *s)
{
	return s ? s : "-";
}

/* Does the record line pass the filter?  Print it if so and print. */
static int show(const char *line, size_t len, const struct filter *f, int print)
{
	struct audit_rec rec;
	const char *sid, *fsid, *path;
	char when[32];
	struct tm tm;
	time_t t;
	json_t *o;
	int ok;

	if (audit_log_parse(line, len, &rec) < 0)
		return 0;
	o = json_loadb(rec.json, rec.json_len, 0, NULL);
	if (!o)
		return 0;
	sid = jstr(json_object_get(o, "actor"), "session", "uid");
	if (!sid)
		sid = jstr(o, "session", "uid");
	fsid = jstr(o, "unmapped", "filesystem_id");
	ok = !(f->sid && (!sid || strcmp(sid, f->sid))) &&
	     !(f->fsid && (!fsid || strcmp(fsid, f->fsid))) &&
	     !(f->class_uid && json_integer_value(json_object_get(
				   o, "class_uid")) != f->class_uid);
	if (ok && !print) {
		/* only matching */
	} else if (ok && f->json) {
		printf("%.*s\n", (int)rec.json_len, rec.json);
	} else if (ok) {
		t = json_integer_value(json_object_get(o, "time")) / 1000;
		gmtime_r(&t, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
		path = jstr(o, "file", "path");
		printf("%" PRIu64 " %s %s %s sid=%s fsid=%s%s%s\n", rec.n, when,
		       or_dash(jstr(o, "type_name", NULL)),
		       or_dash(jstr(o, "status", NULL)), or_dash(sid),
		       or_dash(fsid), path ? " path=" : "", path ? path : "");
	}
	json_decref(o);
	return ok;
}

/* Last n matching records of the whole log; *next = first record after. */
static int tail_last(const char *dir, const struct filter *f, size_t n,
		     uint64_t *next)
{
	struct audit_seg *segs = NULL;
	struct audit_reader *r;
	struct audit_rec rec;
	char **ring = calloc(n ? n : 1, sizeof(char *));
	size_t cnt = 0, i, k = 0, len;
	const char *line;

	if (!ring || audit_log_list(dir, &segs, &cnt) < 0) {
		free(ring);
		return -1;
	}
	*next = 1;
	for (i = 0; i < cnt; i++) {
		r = audit_reader_open(dir, &segs[i]);
		while (r && audit_reader_next(r, &line, &len) == 1) {
			if (audit_log_parse(line, len, &rec) == 0)
				*next = rec.n + 1;
			if (n && show(line, len, f, 0)) {
				free(ring[k]);
				ring[k] = strndup(line, len);
				k = (k + 1) % n;
			}
		}
		audit_reader_close(r);
	}
	for (i = 0; i < n; i++) {
		char *l = ring[(k + i) % n];

		if (l)
			show(l, strlen(l), f, 1);
		free(l);
	}
	fflush(stdout);
	free(ring);
	free(segs);
	return 0;
}

/* The segment holding record next (the last one starting at or before). */
static int find_seg(const char *dir, uint64_t next, struct audit_seg *out)
{
	struct audit_seg *segs;
	size_t n, i;
	int found = 0;

	if (audit_log_list(dir, &segs, &n) < 0)
		return 0;
	for (i = 0; i < n; i++)
		if (segs[i].first <= next) {
			*out = segs[i];
			found = 1;
		}
	free(segs);
	return found;
}

/* Print records from *next on in segment s; plain files are followed
 * through the open descriptor *fd (kept across calls). */
static void follow_seg(const char *dir, const struct audit_seg *s,
		       const struct filter *f, uint64_t *next, int *fd,
		       char *pend, size_t *plen)
{
	struct audit_reader *r;
	struct audit_rec rec;
	const char *line;
	char path[4096], *nl, *p;
	size_t len;
	ssize_t got;

	if (s->compressed) {
		r = audit_reader_open(dir, s);
		while (r && audit_reader_next(r, &line, &len) == 1)
			if (audit_log_parse(line, len, &rec) == 0 &&
			    rec.n >= *next) {
				show(line, len, f, 1);
				*next = rec.n + 1;
			}
		audit_reader_close(r);
		return;
	}
	if (*fd < 0) {
		snprintf(path, sizeof(path), "%s/%s", dir, s->name);
		*fd = open(path, O_RDONLY | O_CLOEXEC);
		*plen = 0;
		if (*fd < 0)
			return;
	}
	while ((got = read(*fd, pend + *plen, AUDIT_LINE_MAX - *plen)) > 0) {
		*plen += got;
		p = pend;
		while ((nl = memchr(p, '\n', pend + *plen - p))) {
			if (audit_log_parse(p, nl - p, &rec) == 0 &&
			    rec.n >= *next) {
				show(p, nl - p, f, 1);
				*next = rec.n + 1;
			}
			p = nl + 1;
		}
		*plen -= p - pend;
		memmove(pend, p, *plen);
		if (*plen == AUDIT_LINE_MAX)
			*plen = 0; /* not a record line; skip it */
	}
	fflush(stdout);
}

static int cmd_tail(const char *dir, const struct filter *f, size_t n,
		    int follow)
{
	struct audit_seg s, cur = {"", 0, 0};
	uint64_t next, before;
	char *pend;
	size_t plen = 0;
	int fd = -1;

	if (tail_last(dir, f, n, &next) < 0) {
		fprintf(stderr, "occfs-audit: %s: %s\n", dir, strerror(errno));
		return 2;
	}
	if (!follow)
		return 0;
	pend = malloc(AUDIT_LINE_MAX);
	if (!pend)
		return 2;
	for (;;) {
		before = next;
		if (find_seg(dir, next, &s)) {
			if (strcmp(s.name, cur.name) != 0 && fd >= 0) {
				/* Drain the old file before moving on. */
				follow_seg(dir, &cur, f, &next, &fd, pend,
					   &plen);
				close(fd);
				fd = -1;
				continue;
			}
			cur = s;
			follow_seg(dir, &s, f, &next, &fd, pend, &plen);
		}
		fflush(stdout);
		if (next == before) /* caught up: wait for more */
			usleep(200 * 1000);
	}
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
	    {"json", 0, NULL, 'j'},  {"sid", 1, NULL, 'S'},
	    {"fsid", 1, NULL, 'F'},  {"class", 1, NULL, 'C'},
	    {"lines", 1, NULL, 'n'}, {"follow", 0, NULL, 'f'},
	    {NULL, 0, NULL, 0}};
	struct filter f = {NULL, NULL, 0, 0};
	const char *cmd, *dir;
	long n = 10;
	int c, follow = 0;

	if (argc < 3)
		usage();
	cmd = argv[1];
	dir = argv[2];
	optind = 3;
	while ((c = getopt_long(argc, argv, "n:f", lo, NULL)) != -1) {
		switch (c) {
		case 'j':
			f.json = 1;
			break;
		case 'S':
			f.sid = optarg;
			break;
		case 'F':
			f.fsid = optarg;
			break;
		case 'C':
			f.class_uid = atol(optarg);
			break;
		case 'n':
			n = atol(optarg);
			break;
		case 'f':
			follow = 1;
			break;
		default:
			usage();
		}
	}
	if (optind != argc || n < 0)
		usage();
	if (strcmp(cmd, "verify") == 0 && !follow)
		return cmd_verify(dir, f.json);
	if (strcmp(cmd, "tail") == 0)
		return cmd_tail(dir, &f, n, follow);
	usage();
	return 2;
}
