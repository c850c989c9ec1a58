/*
 * test-s3-stage.c - the s3 backend's staging engine (s3b_stage.h) against a
 * live radosgw.
 *
 * Run by tests/s3/s3-stage.sh, which starts radosgw with rgw-start and
 * exports its env file.  Without S3_ENDPOINT only the offline cases run
 * (staging directory checks, the memory budget, recovery of a corrupted
 * manifest).
 *
 * Live: random writes, appends and truncations checked against an
 * in-memory model and, after each flush, against an independent GET; lazy
 * fetch of an existing base (counters show untouched blocks stay remote);
 * a 40 MiB object goes up multipart and a one-byte change re-sends one
 * part and copies the rest; a second writer gives -ESTALE and the staged
 * bytes stay; a flush through a dead endpoint fails and a later one
 * succeeds; writes during flushes are never lost; rename and discard;
 * recovery of a stage left by a "killed" store, of a stage whose client is
 * missing, and of a corrupted manifest (set aside, not deleted); later
 * manifests overwrite the first in place and a padded one recovers; the
 * files of a clean stage are reused by the next new one.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../unit/unit.h"
#include "log.h"
#include "s3_http.h"
#include "s3b_stage.h"

#define MiB (1u << 20)
#define FSID "fs1"

static const char *env_endpoint, *env_region, *env_ak, *env_sk, *env_bucket;
static char topdir[256];
static int dirno;

static char run_prefix[64];

/* A key under this run's prefix (the server may be reused). */
static const char *K(const char *name)
{
	static char keys[32][128];
	static unsigned next;
	char *k = keys[__atomic_fetch_add(&next, 1, __ATOMIC_RELAXED) % 32];

	snprintf(k, 128, "%s/%s", run_prefix, name);
	return k;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static void fill(unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)(rnd() >> 24);
}

static struct s3_http *client_at(const char *endpoint, long budget_ms)
{
	struct s3_http_config cfg = {
	    .endpoint = endpoint,
	    .region = env_region ? env_region : "us-east-1",
	    .bucket = env_bucket,
	    .retry_base_ms = 10,
	    .retry_budget_ms = budget_ms,
	    .max_attempts = 2,
	    .connect_timeout_ms = 1000,
	    .rgw_quirks = true,
	};
	struct s3_cred c = {env_ak, env_sk, NULL};
	struct s3_http *h = s3_http_new(&cfg);

	if (h && s3_http_set_cred(h, &c)) {
		s3_http_free(h);
		h = NULL;
	}
	return h;
}

/* A fresh staging directory name under topdir. */
static void new_dir(char *out, size_t n)
{
	snprintf(out, n, "%s/st%d", topdir, dirno++);
}

static struct s3b_store *open_store(const char *dir, uint64_t min_part,
				    uint64_t budget)
{
	struct s3b_store_config cfg = {.dir = dir,
				       .upload_threads = 3,
				       .mem_budget = budget,
				       .min_part = min_part,
				       .rgw_quirks = true};
	struct s3b_store *st = NULL;

	CHECK_EQ(s3b_store_open(&cfg, &st), 0);
	return st;
}

/* The whole object by an independent GET; NULL if it fails. */
static unsigned char *get_all(struct s3_http *h, const char *key, size_t *len,
			      char etag[S3_ETAG_MAX])
{
	struct s3_obj_info *in = calloc(1, sizeof(*in));
	unsigned char *p = NULL;
	size_t got = 0;

	if (s3_http_head_object(h, key, in))
		goto out;
	p = malloc(in->size + 1);
	struct s3_sink s = {.buf = p, .cap = in->size + 1};
	if (in->size &&
	    s3_http_get_object(h, key, 0, 0, &s, NULL, &got, NULL)) {
		free(p);
		p = NULL;
		goto out;
	}
	*len = in->size;
	if (etag)
		snprintf(etag, S3_ETAG_MAX, "%s", in->etag);
out:
	free(in);
	return p;
}

static int same_object(struct s3_http *h, const char *key,
		       const unsigned char *want, size_t len)
{
	size_t got = 0;
	unsigned char *p = get_all(h, key, &got, NULL);
	int ok = p && got == len && (!len || !memcmp(p, want, len));

	if (p && !ok) {
		size_t i = 0;
		while (i < got && i < len && p[i] == want[i])
			i++;
		fprintf(stderr,
			"%s: %zu bytes, want %zu; first difference "
			"at %zu\n",
			key, got, len, i);
	}
	free(p);
	return ok;
}

static int put_obj(struct s3_http *h, const char *key, const void *p, size_t n,
		   char etag[S3_ETAG_MAX])
{
	struct s3_body b = {.buf = p, .len = n};
	return s3_http_put_object(h, key, &b, NULL, etag);
}

/*
 * radosgw keeps overwritten data until its garbage collection runs (hours
 * by default) and the test server keeps everything in 2 GiB of RAM.
 */
static void rgw_gc(void)
{
	const char *conf = getenv("S3_CEPH_CONF");
	char cmd[600];

	if (!conf)
		return;
	snprintf(cmd, sizeof(cmd),
		 "radosgw-admin -c '%s' gc process --include-all "
		 ">/dev/null 2>&1",
		 conf);
	if (system(cmd))
		fprintf(stderr, "radosgw-admin gc process failed\n");
}

/* ---- offline ----------------------------------------------------------------
 */

static void test_store_dir(void)
{
	char d[300];
	struct s3b_store_config cfg = {.dir = d};
	struct s3b_store *st = NULL, *st2 = NULL;
	struct stat sb;

	new_dir(d, sizeof(d));
	CHECK_EQ(s3b_store_open(&cfg, &st), 0);
	CHECK(stat(d, &sb) == 0 && (sb.st_mode & 0777) == 0700);
	/* one broker per directory */
	CHECK_EQ(s3b_store_open(&cfg, &st2), -EBUSY);
	s3b_store_close(st);
	chmod(d, 0777);
	CHECK_EQ(s3b_store_open(&cfg, &st2), -EPERM);
	chmod(d, 0700);
	cfg.min_part = 1 * MiB; /* below S3's 5 MiB */
	CHECK_EQ(s3b_store_open(&cfg, &st2), -EINVAL);
}

struct budget_arg {
	struct s3b_store *st;
	uint64_t n;
	int got; /* atomic */
};

static void *budget_taker(void *arg)
{
	struct budget_arg *a = arg;
	s3b_budget_take(a->st, a->n);
	__atomic_store_n(&a->got, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void test_budget(void)
{
	char d[300];
	struct s3b_store *st;
	struct budget_arg a;
	pthread_t t;
	uint64_t peak, used;

	new_dir(d, sizeof(d));
	st = open_store(d, 0, 10 * MiB);
	if (!st)
		return;
	s3b_budget_take(st, 6 * MiB);
	a = (struct budget_arg){st, 6 * MiB, 0};
	pthread_create(&t, NULL, budget_taker, &a);
	usleep(100000);
	CHECK_EQ(__atomic_load_n(&a.got, __ATOMIC_ACQUIRE),
		 0); /* blocked: 6 + 6 > 10 */
	s3b_budget_give(st, 6 * MiB);
	pthread_join(t, NULL);
	CHECK_EQ(a.got, 1);
	s3b_budget_stats(st, &peak, &used);
	CHECK_EQ(used, 6 * MiB);
	CHECK_EQ(peak, 6 * MiB);
	/* larger than the whole budget: waits until nothing is held */
	a = (struct budget_arg){st, 30 * MiB, 0};
	pthread_create(&t, NULL, budget_taker, &a);
	usleep(100000);
	CHECK_EQ(__atomic_load_n(&a.got, __ATOMIC_ACQUIRE), 0);
	s3b_budget_give(st, 6 * MiB);
	pthread_join(t, NULL);
	CHECK_EQ(a.got, 1);
	s3b_budget_give(st, 30 * MiB);
	s3b_budget_stats(st, &peak, &used);
	CHECK_EQ(used, 0);
	s3b_store_close(st);
}

static int count_files(const char *dir, const char *suffix)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	if (!d)
		return -1;
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name), s = strlen(suffix);
		if (l > s && !strcmp(de->d_name + l - s, suffix))
			n++;
	}
	closedir(d);
	return n;
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

static struct s3_http *no_client(void *arg, const char *fsid)
{
	(void)arg;
	(void)fsid;
	return NULL;
}

/* Broken manifests are moved to corrupt/ with their data, never deleted. */
static void test_corrupt_manifest(void)
{
	char d[300], p[400], c[400];
	struct s3b_store *st;

	new_dir(d, sizeof(d));
	st = open_store(d, 0, 0);
	if (!st)
		return;
	snprintf(p, sizeof(p), "%s/0123456789abcdef.mf", d);
	write_file(p, "occfs-stage 1\nkey :x\nsum 0000000000000000\n");
	snprintf(p, sizeof(p), "%s/0123456789abcdef.data", d);
	write_file(p, "precious bytes");
	snprintf(p, sizeof(p), "%s/fedcba9876543210.mf", d);
	write_file(p, "garbage");
	snprintf(p, sizeof(p), "%s/not-an-id.mf", d);
	write_file(p, "garbage");
	CHECK_EQ(s3b_store_recover(st, no_client, NULL), 2);
	snprintf(c, sizeof(c), "%s/corrupt", d);
	CHECK_EQ(count_files(c, ".mf"), 3);
	CHECK_EQ(count_files(c, ".data"), 1);
	CHECK_EQ(count_files(d, ".mf"), 0);
	snprintf(p, sizeof(p), "%s/corrupt/0123456789abcdef.data", d);
	FILE *f = fopen(p, "r");
	char buf[64] = "";
	CHECK(f && fgets(buf, sizeof(buf), f));
	CHECK_STR(buf, "precious bytes");
	if (f)
		fclose(f);
	s3b_store_close(st);
}

/* The one manifest in d (its id in id), or -1. */
static int find_mf(const char *d, char id[17], struct stat *sb)
{
	DIR *dir = opendir(d);
	struct dirent *de;
	int n = 0;
	char p[400];

	if (!dir)
		return -1;
	while ((de = readdir(dir))) {
		size_t l = strlen(de->d_name);
		if (l == 19 && !strcmp(de->d_name + 16, ".mf")) {
			memcpy(id, de->d_name, 16);
			id[16] = '\0';
			n++;
		}
	}
	closedir(dir);
	if (n != 1)
		return -1;
	snprintf(p, sizeof(p), "%s/%s.mf", d, id);
	return stat(p, sb);
}

/*
 * Later manifests of a stage overwrite the first in place (same inode),
 * a shorter one padded with newlines; the padded manifest recovers, and
 * anything but newlines after the sum is corrupt.
 */
static void test_manifest_in_place(void)
{
	struct s3b_base b = {.key = "in-place/file"};
	const struct s3_kv longm[] = {{"mode", "100644"},
				      {"note", "a rather long value, so "
					       "that the next one is shorter"}};
	const struct s3_kv shortm[] = {{"mode", "100600"}};
	struct s3b_store *st;
	struct s3b_stage *sg;
	struct stat a, z;
	char d[300], c[400], p[400], id[17];
	char *text = NULL;
	FILE *f;
	long len;

	new_dir(d, sizeof(d));
	st = open_store(d, 0, 0);
	if (!st)
		return;
	CHECK_EQ(s3b_stage_get(st, NULL, FSID, &b, &sg), 0);
	CHECK_EQ(s3b_stage_set_meta(sg, longm, 2), 0);
	CHECK_EQ(find_mf(d, id, &a), 0);
	CHECK_EQ(s3b_stage_write(sg, "kept", 4, 0), 0);
	CHECK_EQ(s3b_stage_set_meta(sg, shortm, 1), 0);
	CHECK_EQ(s3b_stage_set_meta(sg, shortm, 1), 0);
	CHECK_EQ(find_mf(d, id, &z), 0);
	CHECK(a.st_ino == z.st_ino);  /* overwritten, not replaced */
	CHECK(z.st_size > a.st_size); /* "dirty", "present" made it grow */
	s3b_stage_put(sg);	      /* dirty: stays */
	s3b_store_close(st);

	/* the padded manifest is whole: the stage recovers (kept: no client) */
	snprintf(p, sizeof(p), "%s/%s.mf", d, id);
	f = fopen(p, "r");
	text = calloc(1, 8192);
	len = f && text ? (long)fread(text, 1, 8191, f) : 0;
	if (f)
		fclose(f);
	CHECK(len > 2 && text[len - 1] == '\n' && text[len - 2] == '\n');
	CHECK(text && strstr(text, "100600") && !strstr(text, "rather long"));
	st = open_store(d, 0, 0);
	if (!st)
		goto out;
	CHECK_EQ(s3b_store_recover(st, no_client, NULL), 1);
	CHECK_EQ(s3b_stage_lookup(st, FSID, b.key, &sg), 0);
	if (sg) {
		CHECK_EQ(s3b_stage_size(sg), 4);
		CHECK(s3b_stage_dirty(sg));
		s3b_stage_put(sg);
	}
	s3b_store_close(st);
	snprintf(c, sizeof(c), "%s/corrupt", d);
	CHECK(count_files(c, ".mf") <= 0); /* none, or no corrupt/ at all */

	/* something other than padding after the sum: set aside */
	f = fopen(p, "a");
	if (f) {
		fputs("x\n", f);
		fclose(f);
	}
	st = open_store(d, 0, 0);
	if (!st)
		goto out;
	CHECK_EQ(s3b_store_recover(st, no_client, NULL), 1);
	CHECK_EQ(count_files(c, ".mf"), 1);
	CHECK_EQ(s3b_stage_lookup(st, FSID, b.key, &sg), -ENOENT);
	s3b_store_close(st);
out:
	free(text);
}

static ino_t ino_of(const char *path)
{
	struct stat sb;

	return stat(path, &sb) ? 0 : sb.st_ino;
}

/*
 * The files of a clean stage go to spare/ and the next new stage takes
 * them (same inodes, old bytes gone, a shorter manifest padded); what it
 * stages recovers; a start empties spare/.
 */
static void test_spares(void)
{
	struct s3b_base old = {.key = "spare/old", .etag = "\"e\"", .size = 10};
	struct s3b_base nb = {.key = "spare/new"};
	const struct s3_kv meta[] = {{"mode", "100644"}};
	struct s3b_store *st;
	struct s3b_stage *sg;
	char d[300], sp[400], p[400], id[17], buf[16];
	struct stat sb;
	ino_t data_ino;
	size_t got;

	new_dir(d, sizeof(d));
	snprintf(sp, sizeof(sp), "%s/spare", d);
	st = open_store(d, 0, 0);
	if (!st)
		return;
	CHECK_EQ(s3b_stage_get(st, NULL, FSID, &old, &sg), 0);
	CHECK_EQ(find_mf(d, id, &sb), 0);
	snprintf(p, sizeof(p), "%s/%s.data", d, id);
	data_ino = ino_of(p);
	CHECK(!s3b_stage_dirty(sg));
	s3b_stage_put(sg); /* clean: its files become spares */
	CHECK_EQ(count_files(d, ".mf"), 0);
	CHECK_EQ(count_files(d, ".data"), 0);
	CHECK_EQ(count_files(sp, ".mf"), 1);
	CHECK_EQ(count_files(sp, ".data"), 1);

	CHECK_EQ(s3b_stage_get(st, NULL, FSID, &nb, &sg), 0);
	CHECK_EQ(count_files(sp, ".data"), 0);
	CHECK_EQ(count_files(sp, ".mf"), 0);
	CHECK_EQ(find_mf(d, id, &sb), 0);
	snprintf(p, sizeof(p), "%s/%s.data", d, id);
	CHECK(data_ino && ino_of(p) == data_ino);
	CHECK_EQ(s3b_stage_size(sg), 0);
	CHECK_EQ(s3b_stage_set_meta(sg, meta, 1), 0);
	CHECK_EQ(s3b_stage_write(sg, "abc", 3, 0), 0);
	s3b_stage_put(sg); /* dirty: stays */
	s3b_store_close(st);
	CHECK_EQ(stat(p, &sb), 0);
	CHECK_EQ(sb.st_size, 3);

	snprintf(p, sizeof(p), "%s/spare/junk.data", d);
	write_file(p, "left by a crash");
	st = open_store(d, 0, 0);
	if (!st)
		return;
	CHECK_EQ(count_files(sp, ".data"), 0);
	CHECK_EQ(s3b_store_recover(st, no_client, NULL), 1);
	CHECK_EQ(s3b_stage_lookup(st, FSID, nb.key, &sg), 0);
	if (sg) {
		memset(buf, 0, sizeof(buf));
		CHECK_EQ(s3b_stage_read(sg, buf, sizeof(buf), 0, &got), 0);
		CHECK_EQ(got, 3);
		CHECK_STR(buf, "abc");
		s3b_stage_put(sg);
	}
	s3b_store_close(st);
}

/* ---- live
 * ---------------------------------------------------------------------- */

struct model {
	unsigned char *p;
	size_t len, cap;
};

static void model_size(struct model *m, size_t n)
{
	if (n > m->cap) {
		m->p = realloc(m->p, n);
		m->cap = n;
	}
	if (n > m->len)
		memset(m->p + m->len, 0, n - m->len);
	m->len = n;
}

/* Apply one random operation to both; check a random read. */
static void model_step(struct s3b_stage *sg, struct model *m, size_t limit)
{
	unsigned op = (unsigned)(rnd() % 10);
	static unsigned char buf[3 * MiB];

	if (op < 5) { /* write somewhere, maybe past the end */
		size_t len = (size_t)(rnd() % (op ? 70000 : 2 * MiB)) + 1;
		size_t off = (size_t)(rnd() % (m->len + 300000 + 1));
		if (off + len > limit)
			return;
		fill(buf, len);
		CHECK_EQ(s3b_stage_write(sg, buf, len, off), 0);
		if (off + len > m->len)
			model_size(m, off + len);
		memcpy(m->p + off, buf, len);
	} else if (op < 7) { /* append */
		size_t len = (size_t)(rnd() % 100000) + 1;
		if (m->len + len > limit)
			return;
		fill(buf, len);
		CHECK_EQ(s3b_stage_write(sg, buf, len, m->len), 0);
		model_size(m, m->len + len);
		memcpy(m->p + m->len - len, buf, len);
	} else if (op < 8) { /* truncate down or up */
		size_t n = (size_t)(rnd() % (m->len + MiB + 1));
		if (n > limit)
			return;
		CHECK_EQ(s3b_stage_truncate(sg, n), 0);
		model_size(m, n);
	} else { /* read */
		size_t len = (size_t)(rnd() % (2 * MiB)) + 1, got = 0;
		size_t off = (size_t)(rnd() % (m->len + 1000));
		CHECK_EQ(s3b_stage_read(sg, buf, len, off, &got), 0);
		size_t want = off >= m->len	   ? 0
			      : off + len > m->len ? m->len - off
						   : len;
		CHECK_EQ(got, want);
		CHECK(!want || !memcmp(buf, m->p + off, want));
	}
	CHECK_EQ(s3b_stage_size(sg), m->len);
}

static void test_model(struct s3_http *h)
{
	struct s3b_base base = {.key = K("model")};
	struct model m = {0};
	struct s3b_stage_stats ss;
	struct s3b_store *st;
	struct s3b_stage *sg;
	char d[300], etag[S3_ETAG_MAX];

	new_dir(d, sizeof(d));
	st = open_store(d, 5 * MiB, 16 * MiB);
	if (!st)
		return;
	CHECK_EQ(s3b_stage_get(st, h, FSID, &base, &sg), 0);
	CHECK(s3b_stage_dirty(sg)); /* a new object must be created */
	for (int round = 0; round < 4; round++) {
		for (int i = 0; i < 60; i++)
			model_step(sg, &m, 14 * MiB);
		CHECK_EQ(s3b_stage_flush(sg, etag), 0);
		CHECK(etag[0] == '"');
		CHECK(!s3b_stage_dirty(sg));
		CHECK(same_object(h, base.key, m.p, m.len));
	}
	s3b_stage_get_stats(sg, &ss);
	CHECK_EQ(ss.uploads, 4);
	CHECK(ss.puts + ss.multiparts == 4);
	s3b_stage_put(sg);
	CHECK_EQ(count_files(d, ".mf"), 0); /* clean and unreferenced: gone */

	/* a new stage from that base: reads fetch lazily, more rounds */
	base.etag = etag;
	base.size = m.len;
	CHECK_EQ(s3b_stage_get(st, h, FSID, &base, &sg), 0);
	CHECK(!s3b_stage_dirty(sg));
	for (int i = 0; i < 80; i++)
		model_step(sg, &m, 14 * MiB);
	CHECK_EQ(s3b_stage_flush(sg, etag), 0);
	CHECK(same_object(h, base.key, m.p, m.len));
	s3b_stage_put(sg);
	s3b_store_close(st);
	free(m.p);
}

/*
 * Put obj (n bytes) at base->key as the base, then open a stage on it in a
 * new store with 5 MiB parts; base->etag points at etag.  NULL when the
 * store does not open (already counted as a failure).
 */
static struct s3b_store *stage_on_base(struct s3_http *h, struct s3b_base *base,
				       const void *obj, size_t n,
				       char etag[S3_ETAG_MAX],
				       struct s3b_stage **sg)
{
	struct s3b_store *st;
	char d[300];

	CHECK_EQ(put_obj(h, base->key, obj, n, etag), 0);
	base->etag = etag;
	new_dir(d, sizeof(d));
	st = open_store(d, 5 * MiB, 0);
	if (st)
		CHECK_EQ(s3b_stage_get(st, h, FSID, base, sg), 0);
	return st;
}

/* An 8 MiB base: untouched blocks are never downloaded. */
static void test_lazy(struct s3_http *h)
{
	size_t n = 8 * MiB, got;
	unsigned char *obj = malloc(n), *buf = malloc(2 * MiB);
	struct s3b_base base = {.key = K("lazy"), .size = n};
	struct s3b_stage_stats ss;
	struct s3b_store *st;
	struct s3b_stage *sg;
	char etag[S3_ETAG_MAX];

	fill(obj, n);
	st = stage_on_base(h, &base, obj, n, etag, &sg);
	if (!st)
		goto out;
	CHECK_EQ(s3b_stage_size(sg), n);
	/* a whole block: no fetch */
	fill(buf, MiB);
	CHECK_EQ(s3b_stage_write(sg, buf, MiB, 2 * MiB), 0);
	memcpy(obj + 2 * MiB, buf, MiB);
	s3b_stage_get_stats(sg, &ss);
	CHECK_EQ(ss.fetches, 0);
	/* a partial block: exactly that block */
	CHECK_EQ(s3b_stage_write(sg, "xyz", 3, 5 * MiB + 10), 0);
	memcpy(obj + 5 * MiB + 10, "xyz", 3);
	s3b_stage_get_stats(sg, &ss);
	CHECK_EQ(ss.fetches, 1);
	CHECK_EQ(ss.fetch_bytes, MiB);
	/* a read inside one block fetches it once */
	CHECK_EQ(s3b_stage_read(sg, buf, 100, 7 * MiB + 5, &got), 0);
	CHECK_EQ(got, 100);
	CHECK(!memcmp(buf, obj + 7 * MiB + 5, 100));
	CHECK_EQ(s3b_stage_read(sg, buf, 100, 7 * MiB + 500, &got), 0);
	CHECK(!memcmp(buf, obj + 7 * MiB + 500, 100));
	/* the written bytes read back without a fetch, across blocks */
	CHECK_EQ(s3b_stage_read(sg, buf, 2 * MiB, 2 * MiB - 10, &got), 0);
	CHECK(!memcmp(buf, obj + 2 * MiB - 10, 2 * MiB));
	s3b_stage_get_stats(sg, &ss);
	CHECK_EQ(ss.fetches, 4); /* 5, 7, then 1 and 3 (2 is ours) */
	CHECK_EQ(ss.fetch_bytes, 4 * MiB);
	/* shrink into a block, grow again: the tail reads as zeros */
	CHECK_EQ(s3b_stage_truncate(sg, 6 * MiB + 7), 0);
	CHECK_EQ(s3b_stage_truncate(sg, n), 0);
	memset(obj + 6 * MiB + 7, 0, n - 6 * MiB - 7);
	CHECK_EQ(s3b_stage_read(sg, buf, MiB, 6 * MiB, &got), 0);
	CHECK(!memcmp(buf, obj + 6 * MiB, MiB));
	/* 8 MiB <= 2 * min_part: one PUT, the rest fetched for it */
	CHECK_EQ(s3b_stage_flush(sg, etag), 0);
	s3b_stage_get_stats(sg, &ss);
	CHECK_EQ(ss.puts, 1);
	CHECK(same_object(h, base.key, obj, n));
	s3b_stage_put(sg);
	s3b_store_close(st);
out:
	free(obj);
	free(buf);
}

/*
 * Writes out of order: block 3 written whole, then a partial write into
 * block 2 fetches block 2.  That fetch must leave block 3 present: once it
 * forgot block 3, so the upload fetched the base's bytes over its new ones.
 */
static void test_fetch_keeps_neighbour(struct s3_http *h)
{
	size_t n = 6 * MiB;
	unsigned char *obj = malloc(n), *buf = malloc(MiB);
	struct s3b_base base = {.key = K("neighbour"), .size = n};
	struct s3b_store *st;
	struct s3b_stage *sg;
	char etag[S3_ETAG_MAX];

	memset(obj, 0, n);
	st = stage_on_base(h, &base, obj, n, etag, &sg);
	if (!st)
		goto out;
	fill(buf, MiB);
	CHECK_EQ(s3b_stage_write(sg, buf, MiB, 3 * MiB), 0);
	memcpy(obj + 3 * MiB, buf, MiB);
	CHECK_EQ(s3b_stage_write(sg, buf, 16384, 2 * MiB + 16384), 0);
	memcpy(obj + 2 * MiB + 16384, buf, 16384);
	CHECK_EQ(s3b_stage_flush(sg, etag), 0);
	CHECK(same_object(h, base.key, obj, n));
	s3b_stage_put(sg);
	s3b_store_close(st);
out:
	free(obj);
	free(buf);
}

/* 40 MiB in 5 MiB parts; then a one-byte change sends one part. */
static void test_large(struct s3_http *h)
{
	size_t n = 40 * MiB;
	unsigned char *obj = malloc(n);
	struct s3b_base base = {.key = K("large")};
	struct s3b_stage_stats ss;
	struct s3b_store *st;
	struct s3b_stage *sg;
	char d[300], etag[S3_ETAG_MAX];
	uint64_t peak;

	fill(obj, n);
	new_dir(d, sizeof(d));
	st = open_store(d, 5 * MiB, 12 * MiB); /* two parts in memory */
	if (!st)
		goto out;
	CHECK_EQ(s3b_stage_get(st, h, FSID, &base, &sg), 0);
	for (size_t off = 0; off < n; off += 3 * MiB + 17) {
		size_t len = n - off < 3 * MiB + 17 ? n - off : 3 * MiB + 17;
		CHECK_EQ(s3b_stage_write(sg, obj + off, len, off), 0);
	}
	CHECK_EQ(s3b_stage_flush(sg, etag), 0);
	s3b_stage_get_stats(sg, &ss);
	CHECK_EQ(ss.multiparts, 1);
	CHECK_EQ(ss.part_puts, 8);
	CHECK_EQ(ss.part_copies, 0);
	CHECK(strchr(etag, '-') != NULL); /* a multipart ETag */
	CHECK(same_object(h, base.key, obj, n));
	s3b_budget_stats(st, &peak, NULL);
	CHECK(peak <= 12 * MiB && peak >= 5 * MiB);

	/* one byte in part 4 */
	obj[17 * MiB + 3] ^= 0x5a;
	CHECK_EQ(s3b_stage_write(sg, obj + 17 * MiB + 3, 1, 17 * MiB + 3), 0);
	CHECK_EQ(s3b_stage_flush(sg, etag), 0);
	s3b_stage_get_stats(sg, &ss);
	CHECK_EQ(ss.multiparts, 2);
	CHECK_EQ(ss.part_puts, 9);
	CHECK_EQ(ss.part_copies, 7);
	CHECK(same_object(h, base.key, obj, n));
	s3b_stage_put(sg);

	/* the same from a fresh stage of the base: one block fetched */
	base.etag = etag;
	base.size = n;
	CHECK_EQ(s3b_stage_get(st, h, FSID, &base, &sg), 0);
	obj[33 * MiB] ^= 1;
	CHECK_EQ(s3b_stage_write(sg, obj + 33 * MiB, 1, 33 * MiB), 0);
	CHECK_EQ(s3b_stage_flush(sg, etag), 0);
	s3b_stage_get_stats(sg, &ss);
	CHECK_EQ(ss.part_puts, 1);
	CHECK_EQ(ss.part_copies, 7);
	CHECK_EQ(ss.fetch_bytes, 5 * MiB); /* the rest of that part only */
	CHECK(same_object(h, base.key, obj, n));

	/* a second writer: the copy precondition or the check says ESTALE */
	CHECK_EQ(put_obj(h, base.key, "other", 5, NULL), 0);
	/* a partial block needs the (changed) base: ESTALE already */
	CHECK_EQ(s3b_stage_write(sg, "a", 1, 0), -ESTALE);
	CHECK_EQ(s3b_stage_write(sg, obj, MiB, 0), 0);
	CHECK_EQ(s3b_stage_flush(sg, NULL), -ESTALE);
	CHECK(s3b_stage_dirty(sg));
	CHECK(same_object(h, base.key, (const unsigned char *)"other", 5));
	s3b_stage_discard(sg);
	s3b_stage_put(sg);
	CHECK_EQ(count_files(d, ".data"), 0);
	s3b_store_close(st);
out:
	free(obj);
}

/* Second writer on a small object; a dead endpoint; then success. */
static void test_errors(struct s3_http *h)
{
	struct s3b_base base = {.key = K("small")};
	struct s3b_store *st;
	struct s3b_stage *sg, *sg2;
	struct s3_http *dead = client_at("http://127.0.0.1:1", 300);
	char d[300], etag[S3_ETAG_MAX], buf[64];
	size_t got;

	new_dir(d, sizeof(d));
	st = open_store(d, 0, 0);
	if (!st || !dead)
		goto out;
	/* a new object that someone else creates first */
	CHECK_EQ(s3b_stage_get(st, h, FSID, &base, &sg), 0);
	CHECK_EQ(s3b_stage_write(sg, "mine", 4, 0), 0);
	CHECK_EQ(put_obj(h, base.key, "theirs", 6, etag), 0);
	CHECK_EQ(s3b_stage_flush(sg, NULL), -ESTALE);
	CHECK(s3b_stage_dirty(sg));
	CHECK_EQ(s3b_stage_read(sg, buf, sizeof(buf), 0, &got), 0);
	CHECK(got == 4 && !memcmp(buf, "mine", 4));
	CHECK(same_object(h, base.key, (const unsigned char *)"theirs", 6));
	s3b_stage_discard(sg);
	s3b_stage_put(sg);

	/* an existing object overwritten behind our back */
	base.etag = etag;
	base.size = 6;
	CHECK_EQ(s3b_stage_get(st, h, FSID, &base, &sg), 0);
	CHECK_EQ(s3b_stage_write(sg, "T", 1, 0), 0);
	CHECK_EQ(put_obj(h, base.key, "third!", 6, NULL), 0);
	CHECK_EQ(s3b_stage_flush(sg, NULL), -ESTALE);
	s3b_stage_discard(sg);
	s3b_stage_put(sg);
	/* a fetch of a base that changed is ESTALE too, never other bytes */
	CHECK_EQ(s3b_stage_get(st, h, FSID, &base, &sg), 0);
	CHECK_EQ(s3b_stage_read(sg, buf, 6, 0, &got), -ESTALE);
	s3b_stage_put(sg);

	/* the same key gets a fresh stage after a discard */
	base.etag = NULL;
	base.size = 0;
	base.key = K("retry");
	CHECK_EQ(s3b_stage_get(st, dead, FSID, &base, &sg), 0);
	CHECK_EQ(s3b_stage_write(sg, "retry me", 8, 0), 0);
	CHECK_EQ(s3b_stage_flush(sg, NULL), -EIO); /* the guest's errno */
	CHECK(!s3_http_last_error()->ambiguous);   /* it never got there */
	CHECK(s3b_stage_dirty(sg));
	s3b_stage_put(sg); /* dirty: stays in the store */
	CHECK_EQ(count_files(d, ".mf"), 1);
	/* found again without a request, and readable while S3 is away */
	struct s3b_stage *found;
	CHECK_EQ(s3b_stage_lookup(st, FSID, base.key, &found), 0);
	CHECK(found == sg);
	CHECK_EQ(s3b_stage_read(found, buf, sizeof(buf), 0, &got), 0);
	CHECK(got == 8 && !memcmp(buf, "retry me", 8));
	s3b_stage_put(found);
	CHECK_EQ(s3b_stage_lookup(st, FSID, K("nothing-here"), &found),
		 -ENOENT);
	CHECK(found == NULL);
	CHECK_EQ(s3b_stage_lookup(st, "other-fs", base.key, &found), -ENOENT);
	CHECK_EQ(s3b_stage_get(st, h, FSID, &base, &sg2), 0);
	CHECK(sg2 == sg); /* the same stage, still holding its data */
	s3b_stage_set_http(sg2, h);
	CHECK_EQ(s3b_stage_flush(sg2, etag), 0);
	CHECK(same_object(h, base.key, (const unsigned char *)"retry me", 8));
	/* a bucket that does not exist: an error, data kept */
	s3b_stage_put(sg2);
	CHECK_EQ(count_files(d, ".mf"), 0);
	s3b_store_close(st);
out:
	s3_http_free(dead);
}

struct writer_arg {
	struct s3b_stage *sg;
	unsigned char *final;
	size_t len;
	int stop, failed;
};

/* Rewrites the region over and over; ends with the final bytes. */
static void *writer_main(void *arg)
{
	struct writer_arg *w = arg;
	unsigned char *b = malloc(w->len);

	for (int i = 0; i < 10; i++) {
		memset(b, 'a' + i % 26, w->len);
		for (size_t off = 0; off < w->len; off += 65536)
			s3b_stage_write(
			    w->sg, b + off,
			    w->len - off < 65536 ? w->len - off : 65536, off);
	}
	for (size_t off = 0; off < w->len; off += 65536)
		if (s3b_stage_write(w->sg, w->final + off,
				    w->len - off < 65536 ? w->len - off : 65536,
				    off))
			w->failed = 1; /* CHECK's counters are not atomic */
	__atomic_store_n(&w->stop, 1, __ATOMIC_RELEASE);
	free(b);
	return NULL;
}

/* Flushes while another thread writes never lose the last bytes. */
static void test_concurrent(struct s3_http *h)
{
	struct s3b_base base = {.key = K("concurrent")};
	struct writer_arg w = {.len = 6 * MiB};
	struct s3b_store *st;
	pthread_t t;
	char d[300];

	new_dir(d, sizeof(d));
	st = open_store(d, 5 * MiB, 0);
	if (!st)
		return;
	w.final = malloc(w.len);
	fill(w.final, w.len);
	CHECK_EQ(s3b_stage_get(st, h, FSID, &base, &w.sg), 0);
	pthread_create(&t, NULL, writer_main, &w);
	int flushes = 0, ret = 0;
	while (!__atomic_load_n(&w.stop, __ATOMIC_ACQUIRE) && !ret) {
		ret = s3b_stage_flush(w.sg, NULL);
		CHECK_EQ(ret, 0);
		flushes++;
		usleep(50000); /* let the writer run: it waits during uploads */
	}
	pthread_join(t, NULL);
	CHECK(!w.failed);
	CHECK(flushes >= 1);
	CHECK(s3b_stage_dirty(w.sg)); /* the last writes came after */
	CHECK_EQ(s3b_stage_flush(w.sg, NULL), 0);
	CHECK(same_object(h, base.key, w.final, w.len));
	s3b_stage_put(w.sg);
	s3b_store_close(st);
	free(w.final);
}

struct par_arg {
	struct s3b_store *st;
	struct s3_http *h;
	int n;
	int ok;
};

static void *par_main(void *arg)
{
	struct par_arg *a = arg;
	char key[160];
	unsigned char buf[300000];
	struct s3b_stage *sg;
	struct s3b_base base = {.key = key};

	snprintf(key, sizeof(key), "%s/par-%d", run_prefix, a->n);
	memset(buf, 'A' + a->n, sizeof(buf));
	a->ok = !s3b_stage_get(a->st, a->h, FSID, &base, &sg);
	for (int i = 0; a->ok && i < 5; i++) {
		buf[i * 1000] = (unsigned char)i;
		a->ok = !s3b_stage_write(sg, buf, sizeof(buf), 0) &&
			!s3b_stage_flush(sg, NULL);
	}
	if (sg)
		s3b_stage_put(sg);
	a->ok = a->ok && same_object(a->h, key, buf, sizeof(buf));
	return NULL;
}

static void test_parallel_stages(struct s3_http *h)
{
	struct par_arg a[6];
	pthread_t t[6];
	struct s3b_store *st;
	char d[300];

	new_dir(d, sizeof(d));
	st = open_store(d, 0, 0);
	if (!st)
		return;
	for (int i = 0; i < 6; i++) {
		a[i] = (struct par_arg){st, h, i, 0};
		pthread_create(&t[i], NULL, par_main, &a[i]);
	}
	for (int i = 0; i < 6; i++) {
		pthread_join(t[i], NULL);
		CHECK(a[i].ok);
	}
	s3b_store_close(st);
}

/* Rename while staged, metadata, discard. */
static void test_rename_meta(struct s3_http *h)
{
	struct s3b_base base = {.key = K("ren-a")};
	const struct s3_kv meta[] = {{"mode", "100640"}, {"uid", "7"}};
	struct s3_obj_info *in = calloc(1, sizeof(*in));
	struct s3b_store *st;
	struct s3b_stage *sg;
	char d[300], etag[S3_ETAG_MAX], cetag[S3_ETAG_MAX];
	size_t n = 3 * MiB;
	unsigned char *obj = malloc(n);

	new_dir(d, sizeof(d));
	st = open_store(d, 0, 0);
	if (!st)
		goto out;
	fill(obj, n);
	CHECK_EQ(put_obj(h, base.key, obj, n, etag), 0);
	base.etag = etag;
	base.size = n;
	CHECK_EQ(s3b_stage_get(st, h, FSID, &base, &sg), 0);
	CHECK_EQ(s3b_stage_write(sg, "hello", 5, MiB + 5), 0);
	memcpy(obj + MiB + 5, "hello", 5);
	/* the backend renames server-side, then tells the stage */
	CHECK_EQ(s3_http_copy_object(h, K("ren-a"), K("ren-b"), NULL, cetag),
		 0);
	CHECK_EQ(s3_http_delete_object(h, K("ren-a")), 0);
	CHECK_EQ(s3b_stage_set_key(sg, K("ren-b"), cetag), 0);
	CHECK_EQ(s3b_stage_set_meta(sg, meta, 2), 0);
	CHECK_EQ(s3b_stage_flush(sg, NULL), 0);
	CHECK(same_object(h, K("ren-b"), obj, n));
	CHECK_EQ(s3_http_head_object(h, K("ren-b"), in), 0);
	CHECK(in->nmeta == 2);
	CHECK_EQ(s3_http_head_object(h, K("ren-a"), in), -ENOENT);
	/* metadata alone makes the stage dirty and goes up, as one
	 * CopyObject onto itself: nothing fetched, no bytes sent */
	const struct s3_kv m2[] = {{"mode", "100600"}};
	struct s3b_stage_stats s0, s1;
	char hetag[S3_ETAG_MAX];
	s3b_stage_get_stats(sg, &s0);
	CHECK_EQ(s3b_stage_set_meta(sg, m2, 1), 0);
	CHECK(s3b_stage_dirty(sg));
	CHECK_EQ(s3b_stage_flush(sg, hetag), 0);
	s3b_stage_get_stats(sg, &s1);
	CHECK_EQ(s1.header_copies, s0.header_copies + 1);
	CHECK_EQ(s1.fetches, s0.fetches);
	CHECK_EQ(s1.puts, s0.puts);
	CHECK_EQ(s1.upload_bytes, s0.upload_bytes);
	CHECK(hetag[0] == '"'); /* quoted, as listings give it */
	CHECK_EQ(s3_http_head_object(h, K("ren-b"), in), 0);
	CHECK(in->nmeta == 1 && !strcmp(in->meta[0].value, "100600"));
	CHECK(s3_etag_eq(in->etag, hetag));
	CHECK(same_object(h, K("ren-b"), obj, n));
	/* a deleted file uploads nothing */
	CHECK_EQ(s3b_stage_write(sg, "zzz", 3, 0), 0);
	s3b_stage_discard(sg);
	CHECK_EQ(s3b_stage_flush(sg, NULL), 0);
	s3b_stage_put(sg);
	CHECK(same_object(h, K("ren-b"), obj, n));
	s3b_store_close(st);
out:
	free(in);
	free(obj);
}

static struct s3_http *the_client(void *arg, const char *fsid)
{
	return strcmp(fsid, FSID) ? NULL : arg;
}

/* A store closed with dirty stages (as a killed broker leaves it). */
static void test_recover(struct s3_http *h)
{
	struct s3b_base b1 = {.key = K("rec-1")}, b2 = {.key = K("rec-2")};
	const struct s3_kv meta[] = {{"mode", "100600"}};
	struct s3_obj_info *in = calloc(1, sizeof(*in));
	size_t n = 11 * MiB + 3; /* multipart at recovery */
	unsigned char *obj = malloc(n);
	struct s3b_store *st;
	struct s3b_stage *sg;
	char d[300], etag[S3_ETAG_MAX];

	fill(obj, n);
	CHECK_EQ(put_obj(h, b1.key, obj, n, etag), 0);
	b1.etag = etag;
	b1.size = n;
	new_dir(d, sizeof(d));
	st = open_store(d, 5 * MiB, 0);
	if (!st)
		goto out;
	CHECK_EQ(s3b_stage_get(st, h, FSID, &b1, &sg), 0);
	CHECK_EQ(s3b_stage_write(sg, "recovered", 9, 6 * MiB), 0);
	memcpy(obj + 6 * MiB, "recovered", 9);
	CHECK_EQ(s3b_stage_set_meta(sg, meta, 1), 0);
	s3b_stage_put(sg);
	CHECK_EQ(s3b_stage_get(st, h, "other-fs", &b2, &sg), 0);
	CHECK_EQ(s3b_stage_write(sg, "later", 5, 0), 0);
	s3b_stage_put(sg);
	s3b_store_close(st);
	CHECK_EQ(count_files(d, ".mf"), 2);

	/* the next start: fs1 has a client, other-fs has none yet */
	st = open_store(d, 5 * MiB, 0);
	if (!st)
		goto out;
	CHECK_EQ(s3b_store_recover(st, the_client, h), 1);
	CHECK(same_object(h, b1.key, obj, n));
	CHECK_EQ(s3_http_head_object(h, b1.key, in), 0);
	CHECK(in->nmeta == 1 && !strcmp(in->meta[0].value, "100600"));
	CHECK_EQ(s3_http_head_object(h, b2.key, in), -ENOENT);
	CHECK_EQ(count_files(d, ".mf"), 1);
	/* the kept one flushes at shutdown once it has a client */
	CHECK_EQ(s3b_store_flush_all(st, 0), 1); /* deadline passed */
	CHECK_EQ(s3b_stage_get(st, h, "other-fs", &b2, &sg), 0);
	s3b_stage_put(sg);
	s3b_store_close(st);
	st = open_store(d, 5 * MiB, 0);
	if (!st)
		goto out;
	CHECK_EQ(s3b_store_recover(st, the_client, h), 1);
	CHECK_EQ(s3b_stage_get(st, h, "other-fs", &b2, &sg), 0);
	CHECK_EQ(s3b_stage_size(sg), 5);
	s3b_stage_put(sg);
	CHECK_EQ(s3b_store_flush_all(st, now_ms() + 10000), 0);
	CHECK(same_object(h, b2.key, (const unsigned char *)"later", 5));
	CHECK_EQ(count_files(d, ".mf"), 0);
	s3b_store_close(st);
out:
	free(in);
	free(obj);
}

int main(void)
{
	struct s3_http *h;

	log_init("test-s3-stage", getenv("S3_DEBUG") ? 1 : 0);
	snprintf(topdir, sizeof(topdir), "/tmp/occfs-stage-test.%d",
		 (int)getpid());
	mkdir(topdir, 0700);
	snprintf(run_prefix, sizeof(run_prefix), "stage-%d-%ld", (int)getpid(),
		 (long)time(NULL));
	test_store_dir();
	test_budget();
	test_corrupt_manifest();
	test_manifest_in_place();
	test_spares();
	env_endpoint = getenv("S3_ENDPOINT");
	env_region = getenv("S3_REGION");
	env_ak = getenv("S3_ACCESS_KEY");
	env_sk = getenv("S3_SECRET_KEY");
	env_bucket = getenv("S3_BUCKET");
	if (!env_endpoint || !env_ak || !env_sk || !env_bucket) {
		printf("test-s3-stage: no S3 server: live cases skipped\n");
		goto out;
	}
	h = client_at(env_endpoint, 10000);
	CHECK(h != NULL);
	if (!h)
		goto out;
	test_model(h);
	test_lazy(h);
	test_fetch_keeps_neighbour(h);
	test_large(h);
	rgw_gc();
	test_errors(h);
	test_concurrent(h);
	rgw_gc();
	test_parallel_stages(h);
	test_rename_meta(h);
	test_recover(h);
	s3_http_free(h);
out:
	if (!unit_failed) {
		char cmd[300];
		snprintf(cmd, sizeof(cmd), "rm -rf %s", topdir);
		if (system(cmd))
			fprintf(stderr, "could not remove %s\n", topdir);
	}
	return unit_done("test-s3-stage");
}
