/*
 * dlp_stream.c - scan one file's plaintext as it is written.
 *
 * Vectorscan's streaming mode carries pattern state across writes, so a
 * match spanning two writes (or two upload parts) is reported.  It reports
 * only where a match ends; the stream keeps the last DLP_WINDOW bytes in a
 * ring so confirmers (Luhn, ...) and excerpts can see the matched bytes
 * even when they began in an earlier write.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dlp.h"
#include "dlp_int.h"

static void redact(char *out, const unsigned char *m, size_t n, uint64_t len)
{
	size_t show = len >= 16 ? 4 : len >= 8 ? 2 : 0, o = 0;
	uint64_t stars = len - show;

	if (show > n)
		show = n;
	for (size_t i = 0; i < show; i++)
		out[o++] = m[i] >= 0x20 && m[i] < 0x7f ? (char)m[i] : '.';
	for (uint64_t i = 0; i < stars && i < 20; i++)
		out[o++] = '*';
	snprintf(out + o, DLP_EXCERPT_MAX - o, "%s [%llu bytes]",
		 stars > 20 ? "..." : "", (unsigned long long)len);
}

size_t dlp_stream_bytes(const struct dlp_stream *s, uint64_t to,
			unsigned char *out, size_t n)
{
	uint64_t from = to > n ? to - n : 0;
	size_t k = 0;

	/* the ring holds the DLP_WINDOW bytes before the current write */
	if (s->cur_base > DLP_WINDOW && from < s->cur_base - DLP_WINDOW)
		from = s->cur_base - DLP_WINDOW;
	for (uint64_t p = from; p < to && p < s->cur_base; p++)
		out[k++] = s->ring[p % DLP_WINDOW];
	if (to > s->cur_base) {
		uint64_t b = from > s->cur_base ? from : s->cur_base;

		memcpy(out + k, s->cur + (b - s->cur_base), to - b);
		k += to - b;
	}
	return k;
}

struct som_find {
	unsigned id;
	unsigned long long to, from;
	bool found;
};

static int on_som(unsigned id, unsigned long long from, unsigned long long to,
		  unsigned flags, void *ctx)
{
	struct som_find *f = ctx;

	(void)flags;
	if (id == f->id && to == f->to && (!f->found || from < f->from)) {
		f->from = from;
		f->found = true;
	}
	return 0;
}

/* Where does the match of rule id ending at the window's end start? */
static long locate(struct dlp_stream *s, unsigned id, size_t wlen)
{
	struct som_find f = {.id = id, .to = wlen};

	if (!s->e->som)
		return -1;
	if (!s->som_scratch &&
	    hs_clone_scratch(s->e->scratch, &s->som_scratch) != HS_SUCCESS)
		return -1;
	if (hs_scan(s->e->som, (const char *)s->win, (unsigned)wlen, 0,
		    s->som_scratch, on_som, &f) != HS_SUCCESS ||
	    !f.found)
		return -1;
	return (long)(wlen - f.from);
}

/* Confirmers look at this many bytes before a match end at most. */
#define CONFIRM_WINDOW 64

void dlp_stream_hit(struct dlp_stream *s, unsigned id, uint64_t to)
{
	const struct dlp_rule *r = &s->e->rules[id];
	struct dlp_finding *f = &s->found[id];
	size_t wlen, n;
	long len;

	if (!s->active[id] || s->hit[id])
		return;
	if (r->bi && r->bi->confirm) {
		wlen = dlp_stream_bytes(s, to, s->win, CONFIRM_WINDOW);
		len = r->bi->confirm(s->win, wlen);
		if (len < 0)
			return;
	} else {
		wlen = dlp_stream_bytes(s, to, s->win, DLP_WINDOW);
		len = locate(s, id, wlen);
	}
	s->hit[id] = true;
	snprintf(f->rule, sizeof(f->rule), "%s", r->name);
	f->severity = r->severity;
	f->action = r->action;
	f->kind = r->kind;
	f->end = to;
	/* start unknown: report the end, excerpt the bytes before it */
	f->offset = len >= 0 ? to - (uint64_t)len : to;
	if (len < 0)
		len = wlen < 16 ? (long)wlen : 16;
	n = (size_t)len > wlen ? wlen : (size_t)len;
	redact(f->excerpt, s->win + wlen - n, n, (uint64_t)len);
}

static int on_match(unsigned id, unsigned long long from, unsigned long long to,
		    unsigned flags, void *ctx)
{
	(void)from;
	(void)flags;
	dlp_stream_hit(ctx, id, to);
	return 0;
}

struct dlp_stream *dlp_stream_open(const struct dlp_engine *e, const char *name,
				   int64_t expected_size)
{
	struct dlp_stream *s = calloc(1, sizeof(*s));
	size_t n = e->nrules ? e->nrules : 1;
	int ret = -ENOMEM;

	if (!s)
		goto out;
	s->e = e;
	s->src_fd = -1;
	s->name = strdup(name ? name : "");
	s->active = calloc(n, sizeof(*s->active));
	s->hit = calloc(n, sizeof(*s->hit));
	s->found = calloc(n, sizeof(*s->found));
	if (!s->name || !s->active || !s->hit || !s->found)
		goto out;
	for (size_t i = 0; i < e->nrules; i++) {
		const struct dlp_rule *r = &e->rules[i];

		s->active[i] = dlp_rule_name_ok(r, s->name);
		if (r->kind == DLP_KIND_HOOK && s->active[i] &&
		    (expected_size < 0 ||
		     dlp_rule_size_ok(r, (uint64_t)expected_size)))
			s->need_src = true;
	}
	ret = -EIO;
	if (e->scratch &&
	    hs_clone_scratch(e->scratch, &s->scratch) != HS_SUCCESS)
		goto out;
	if (e->db && hs_open_stream(e->db, 0, &s->hs) != HS_SUCCESS)
		goto out;
	ret = dlp_fast_open(s);
out:
	if (ret) {
		dlp_stream_free(s);
		errno = -ret;
		return NULL;
	}
	return s;
}

static int spool_open(const char *dir)
{
	char path[4096];
	int fd;

	if (!dir)
		dir = getenv("TMPDIR");
	if (!dir || !*dir)
		dir = "/tmp";
	fd = open(dir, O_TMPFILE | O_RDWR | O_EXCL | O_CLOEXEC, 0600);
	if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR))
		return fd >= 0 ? fd : -errno;
	/* filesystems without O_TMPFILE: create, then unlink at once */
	if (snprintf(path, sizeof(path), "%s/dlp-XXXXXX", dir) >=
	    (int)sizeof(path))
		return -ENAMETOOLONG;
	fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0)
		return -errno;
	unlink(path);
	return fd;
}

int dlp_stream_set_source(struct dlp_stream *s, int fd, const char *spool_dir)
{
	if (s->started || s->src_fd >= 0)
		return -EBUSY;
	if (fd >= 0) {
		s->src_fd = fd;
		return 0;
	}
	if (!s->need_src)
		return 0;
	fd = spool_open(spool_dir);
	if (fd < 0)
		return fd;
	s->src_fd = fd;
	s->own_src = true;
	return 0;
}

static int spool_write(int fd, const unsigned char *p, size_t len)
{
	while (len > 0) {
		ssize_t w = write(fd, p, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

static void ring_put(struct dlp_stream *s, const unsigned char *p, size_t len)
{
	uint64_t at = s->pos;

	if (len > DLP_WINDOW) {
		at += len - DLP_WINDOW;
		p += len - DLP_WINDOW;
		len = DLP_WINDOW;
	}
	size_t i = at % DLP_WINDOW, first = DLP_WINDOW - i;

	if (first > len)
		first = len;
	memcpy(s->ring + i, p, first);
	memcpy(s->ring, p + first, len - first);
}

static int scan(struct dlp_stream *s, const unsigned char *p, size_t len)
{
	int ret;

	while (len > 0) {
		/* both passes over a piece while it is in the cache */
		size_t n = len > DLP_PIECE ? DLP_PIECE : len;

		s->cur = p;
		s->cur_base = s->pos;
		s->cur_len = n;
		if (s->hs &&
		    hs_scan_stream(s->hs, (const char *)p, (unsigned)n, 0,
				   s->scratch, on_match, s) != HS_SUCCESS)
			return -EIO;
		if ((ret = dlp_fast_write(s)))
			return ret;
		ring_put(s, p, n);
		s->pos += n;
		p += n;
		len -= n;
	}
	return 0;
}

int dlp_stream_write(struct dlp_stream *s, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	int ret;

	if (s->err)
		return s->err;
	if (!s->started && s->need_src && s->src_fd < 0 &&
	    (ret = dlp_stream_set_source(s, -1, NULL)))
		return s->err = ret;
	s->started = true;
	if (s->headlen < DLP_MAGIC_MAX) {
		size_t n = DLP_MAGIC_MAX - s->headlen;

		n = n < len ? n : len;
		memcpy(s->head + s->headlen, p, n);
		s->headlen += n;
	}
	if (s->own_src && (ret = spool_write(s->src_fd, p, len)))
		return s->err = ret;
	if ((ret = scan(s, p, len)))
		return s->err = ret;
	return 0;
}

static bool applies(const struct dlp_stream *s, const struct dlp_rule *r)
{
	return dlp_rule_size_ok(r, s->pos) &&
	       dlp_rule_magic_ok(r, s->head, s->headlen);
}

static int add_finding(struct dlp_verdict *v, const struct dlp_finding *f)
{
	struct dlp_finding *n;

	n = realloc(v->findings, (v->nfindings + 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	v->findings = n;
	v->findings[v->nfindings++] = *f;
	if (f->action > v->action)
		v->action = f->action;
	return 0;
}

/* Hooks run last, and only when the patterns have not blocked already. */
static int run_hooks(struct dlp_stream *s, struct dlp_verdict *v)
{
	for (size_t i = 0; i < s->e->nrules && v->action != DLP_BLOCK; i++) {
		const struct dlp_rule *r = &s->e->rules[i];
		struct dlp_finding f = {0};

		if (r->kind != DLP_KIND_HOOK || !s->active[i] || !applies(s, r))
			continue;
		if (dlp_hook_run(r, s->name, s->src_fd, s->pos, f.reason,
				 sizeof(f.reason)) != DLP_BLOCK)
			continue;
		snprintf(f.rule, sizeof(f.rule), "%s", r->name);
		f.severity = r->severity;
		f.action = r->action;
		f.kind = r->kind;
		f.end = s->pos;
		snprintf(f.excerpt, sizeof(f.excerpt), "[%llu bytes]",
			 (unsigned long long)s->pos);
		if (add_finding(v, &f))
			return -ENOMEM;
	}
	return 0;
}

int dlp_stream_finish(struct dlp_stream *s, struct dlp_verdict *v)
{
	int ret = s->err;

	memset(v, 0, sizeof(*v));
	if (ret)
		goto out;
	s->cur = NULL;
	s->cur_base = s->pos;
	s->cur_len = 0;
	if (s->hs) {
		/* end-of-data anchors ($) report here */
		if (hs_close_stream(s->hs, s->scratch, on_match, s) !=
		    HS_SUCCESS)
			ret = -EIO;
		s->hs = NULL;
	}
	if (!ret)
		ret = dlp_fast_finish(s);
	if (ret)
		goto out;
	v->size = s->pos;
	for (size_t i = 0; i < s->e->nrules; i++)
		if (s->hit[i] && applies(s, &s->e->rules[i]) &&
		    (ret = add_finding(v, &s->found[i])))
			goto out;
	ret = run_hooks(s, v);
out:
	if (ret) {
		/* fail closed for callers that only look at the verdict */
		dlp_verdict_cleanup(v);
		v->action = DLP_BLOCK;
		s->err = ret;
	}
	return ret;
}

void dlp_stream_free(struct dlp_stream *s)
{
	if (!s)
		return;
	if (s->hs)
		hs_close_stream(s->hs, s->scratch, NULL, NULL);
	dlp_fast_close(s);
	hs_free_scratch(s->scratch);
	hs_free_scratch(s->som_scratch);
	if (s->own_src)
		close(s->src_fd);
	free(s->name);
	free(s->active);
	free(s->hit);
	free(s->found);
	free(s);
}

void dlp_verdict_cleanup(struct dlp_verdict *v)
{
	free(v->findings);
	v->findings = NULL;
	v->nfindings = 0;
}
