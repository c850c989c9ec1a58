/*
 * test_policy.c - unit tests of libpolicy: value parsers, lookups, the
 * reload swap under concurrent readers, and hostile input (truncations,
 * random mutations, alias bombs, deep nesting, huge files) that must give
 * problems, never a crash, a hang or a leak.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "policy.h"
#include "policy_int.h"
#include "unit.h"

static const char valid_text[] =
    "version: 1\n"
    "filesystems:\n"
    "  - name: 'agent-*'\n"
    "    local: {root: /srv/a}\n"
    "    intents: [read, write]\n"
    "    quota: {bytes: 1GiB, inodes: 1000}\n"
    "  - name: 'a*'\n"
    "    local: {root: /srv/b}\n"
    "    intents: [read]\n"
    "  - name: agent-7\n"
    "    s3: {endpoint: 'https://s3.example.com', bucket: data,\n"
    "         credentials_file: /etc/occfs/s3.cred,\n"
    "         proxy: '127.0.0.1:3128'}\n"
    "    intents: [preview]\n"
    "    session: {ttl: 30m, idle_timeout: 5m}\n"
    "tokens: {public_key: /etc/occfs/token.pub, audience: occfs, "
    "max_ttl: 1h}\n"
    "dlp:\n"
    "  rules:\n"
    "    - {name: keys, builtin: pem_private_key, action: block}\n"
    "    - {name: ids, regex: 'AKIA[0-9A-Z]{16}', action: audit,\n"
    "       severity: high, files: ['*.env']}\n"
    "egress:\n"
    "  allow: ['*.example.com', 'api.github.com:*', '[::1]:7480']\n"
    "custody:\n"
    "  - {name: gh, secret_file: /etc/occfs/gh, consumers: "
    "[api.github.com]}\n"
    "audit: {sampling: {read: 100}, on_full: block}\n"
    "operators: {uids: [0, 1000], gids: [27]}\n";

static const struct policy_opts nofiles = {.flags = POLICY_NO_FILE_CHECKS};

static struct policy *load_text(const char *text, struct policy_problems *pr)
{
	return policy_load_buf("t.yaml", text, strlen(text), &nofiles, pr);
}

static void test_parsers(void)
{
	uint64_t v = 0;
	char host[64];
	unsigned port;

	CHECK_EQ(policy_parse_size("4KiB", &v), 0);
	CHECK_EQ(v, 4096);
	CHECK_EQ(policy_parse_size("10GiB", &v), 0);
	CHECK_EQ(v, 10ull << 30);
	CHECK_EQ(policy_parse_size("500MB", &v), 0);
	CHECK_EQ(v, 500000000);
	CHECK_EQ(policy_parse_size("123", &v), 0);
	CHECK_EQ(v, 123);
	CHECK_EQ(policy_parse_size("", &v), -EINVAL);
	CHECK_EQ(policy_parse_size("4 KiB", &v), -EINVAL);
	CHECK_EQ(policy_parse_size("4kib", &v), -EINVAL);
	CHECK_EQ(policy_parse_size("-1", &v), -EINVAL);
	CHECK_EQ(policy_parse_size("16777216TiB", &v), -ERANGE);
	CHECK_EQ(policy_parse_size("18446744073709551616", &v), -ERANGE);
	CHECK_EQ(policy_parse_duration("30s", &v), 0);
	CHECK_EQ(v, 30000);
	CHECK_EQ(policy_parse_duration("1h30m", &v), 0);
	CHECK_EQ(v, 5400000);
	CHECK_EQ(policy_parse_duration("250ms", &v), 0);
	CHECK_EQ(v, 250);
	CHECK_EQ(policy_parse_duration("7d", &v), 0);
	CHECK_EQ(v, 7 * 86400000ull);
	CHECK_EQ(policy_parse_duration("90", &v), 0);
	CHECK_EQ(v, 90000);
	CHECK_EQ(policy_parse_duration("1w", &v), -EINVAL);
	CHECK_EQ(policy_parse_duration("h", &v), -EINVAL);
	CHECK_EQ(policy_parse_duration("1h ", &v), -EINVAL);
	CHECK_EQ(policy_parse_duration("99999999999999999d", &v), -ERANGE);
	CHECK_EQ(policy_parse_hostport("Example.COM:8443", host, sizeof(host),
				       &port, 0),
		 0);
	CHECK_STR(host, "example.com");
	CHECK_EQ(port, 8443);
	CHECK_EQ(
	    policy_parse_hostport("example.com", host, sizeof(host), &port, 0),
	    0);
	CHECK_EQ(port, 443);
	CHECK_EQ(
	    policy_parse_hostport("[::1]:80", host, sizeof(host), &port, 1), 0);
	CHECK_STR(host, "::1");
	CHECK_EQ(policy_parse_hostport("h:*", host, sizeof(host), &port, 0), 0);
	CHECK_EQ(port, 0);
	CHECK_EQ(
	    policy_parse_hostport("example.com", host, sizeof(host), &port, 1),
	    -EINVAL);
	CHECK_EQ(policy_parse_hostport("::1", host, sizeof(host), &port, 0),
		 -EINVAL);
	CHECK_EQ(policy_parse_hostport("[::1", host, sizeof(host), &port, 0),
		 -EINVAL);
	CHECK_EQ(policy_parse_hostport("h:65536", host, sizeof(host), &port, 0),
		 -ERANGE);
	CHECK_EQ(policy_parse_hostport(":80", host, sizeof(host), &port, 0),
		 -EINVAL);
	CHECK_EQ(policy_distance("filesytems", "filesystems"), 1);
	CHECK_EQ(policy_distance("", "abc"), 3);
	CHECK_EQ(policy_distance("kitten", "sitting"), 3);
}

static void test_lookups(void)
{
	struct policy_problems pr = {0};
	struct policy *p = load_text(valid_text, &pr);
	const struct policy_fs *fs;

	CHECK(p != NULL);
	CHECK_EQ(pr.n, 0);
	if (!p)
		return;
	CHECK_EQ(p->nfs, 3);
	fs = policy_fs_find(p, "agent-7"); /* exact beats an earlier pattern */
	CHECK(fs && fs->backend == POLICY_BACKEND_S3);
	CHECK(fs && strcmp(fs->s3.endpoint_host, "s3.example.com") == 0);
	CHECK(fs && fs->s3.endpoint_port == 443 && fs->ttl_ms == 1800000);
	CHECK(fs && policy_fs_allows_intent(fs, "preview") &&
	      !policy_fs_allows_intent(fs, "write") &&
	      !policy_fs_allows_intent(fs, "admin"));
	fs = policy_fs_find(p, "agent-8"); /* first matching pattern */
	CHECK(fs && strcmp(fs->local_root, "/srv/a") == 0);
	CHECK(fs && fs->quota_bytes == (1ull << 30) &&
	      fs->quota_inodes == 1000);
	fs = policy_fs_find(p, "abc");
	CHECK(fs && strcmp(fs->name, "a*") == 0);
	errno = 0;
	CHECK(policy_fs_find(p, "zzz") == NULL && errno == ENOENT);
	CHECK(policy_fs_find(p, ".agent") == NULL);

	CHECK_EQ(policy_egress_allowed(p, "s3.example.com", 443), 1);
	CHECK_EQ(policy_egress_allowed(p, "a.b.EXAMPLE.com", 443), 1);
	CHECK_EQ(policy_egress_allowed(p, "example.com", 443), 0);
	CHECK_EQ(policy_egress_allowed(p, "evil-example.com", 443), 0);
	CHECK_EQ(policy_egress_allowed(p, "s3.example.com", 80), 0);
	CHECK_EQ(policy_egress_allowed(p, "api.github.com", 22), 1);
	CHECK_EQ(policy_egress_allowed(p, "::1", 7480), 1);
	CHECK_EQ(policy_egress_allowed(p, "::1", 7481), 0);
	CHECK_EQ(policy_egress_allowed(p, "", 443), 0);
	CHECK_EQ(policy_egress_allowed(p, "api.github.com", 0), 0);

	CHECK(policy_custody_find(p, "gh") != NULL);
	CHECK(policy_custody_find(p, "nope") == NULL);
	CHECK(policy_dlp_rule_find(p, "ids") &&
	      policy_dlp_rule_find(p, "ids")->severity == POLICY_SEV_HIGH);
	CHECK_STR(p->dlp.rules[1].files[0], "*.env");
	CHECK(p->dlp.rules[1].files[1] == NULL);
	CHECK_EQ(policy_operator_allowed(p, 1000, 5), 1);
	CHECK_EQ(policy_operator_allowed(p, 5, 27), 1);
	CHECK_EQ(policy_operator_allowed(p, 5, 5), 0);
	CHECK_EQ(policy_audit_sample(p, "read"), 100);
	CHECK_EQ(policy_audit_sample(p, "unlink"), 1);
	CHECK_EQ(p->audit.on_full, POLICY_FULL_BLOCK);
	CHECK_EQ(p->tokens.max_ttl_ms, 3600000);
	CHECK_STR(p->tokens.audience, "occfs");
	policy_unref(p);
	policy_problems_free(&pr);
}

static void test_problems(void)
{
	struct policy_problems pr = {0};
	struct policy *p;
	char line[512], *big;
	size_t i, n;

	p = load_text("tokens:\n  audiance: x\n", &pr);
	CHECK(p == NULL && errno == EINVAL);
	CHECK_EQ(pr.n, 1);
	if (pr.n) {
		policy_problem_format(&pr.v[0], line, sizeof(line));
		CHECK_STR(line, "t.yaml:2:3: unknown key 'audiance' in tokens "
				"(did you mean 'audience'?)");
	}
	policy_problems_free(&pr);
	CHECK(pr.n == 0 && pr.v == NULL);

	/* No problem list at all: still a clean refusal. */
	CHECK(load_text("filesystems: 3\n", NULL) == NULL);

	/* Past the cap, problems are counted, not kept. */
	n = 300 * 16 + 16;
	big = malloc(n);
	strcpy(big, "tokens:\n");
	for (i = 0; i < 300; i++)
		snprintf(big + strlen(big), n - strlen(big), "  k%05zu: 1\n",
			 i);
	p = load_text(big, &pr);
	CHECK(p == NULL);
	CHECK_EQ(pr.n, POLICY_MAX_PROBLEMS);
	CHECK_EQ(pr.dropped, 300 - POLICY_MAX_PROBLEMS);
	policy_problems_free(&pr);
	free(big);
}

/* Inputs built to blow up a naive loader. */
static void test_hostile(void)
{
	struct policy_problems pr = {0};
	struct policy *p;
	char *s, *q;
	size_t i, n = 200000;

	/* Alias bomb: refused at the first alias. */
	CHECK(load_text("a: &a [x, x, x, x, x, x, x, x, x, x]\n"
			"b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
			"c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
			"d: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n",
			&pr) == NULL);
	CHECK(pr.n == 1 && strstr(pr.v[0].msg, "aliases"));
	policy_problems_free(&pr);

	/* Deep nesting, flow and block. */
	s = malloc(n + 1);
	for (i = 0; i < n / 2; i++)
		s[i] = '[';
	for (; i < n; i++)
		s[i] = ']';
	s[n] = '\0';
	CHECK(load_text(s, &pr) == NULL && pr.n == 1 &&
	      strstr(pr.v[0].msg, "nesting"));
	policy_problems_free(&pr);
	free(s);

	/* Larger than a policy file may be. */
	n = POLICY_MAX_FILE_BYTES + 10;
	s = malloc(n + 1);
	memset(s, 'a', n);
	memcpy(s, "x: ", 3);
	s[n] = '\0';
	CHECK(load_text(s, &pr) == NULL && pr.n == 1 &&
	      strstr(pr.v[0].msg, "larger than"));
	policy_problems_free(&pr);
	free(s);

	/* Many nodes. */
	n = 2 * (POLICY_MAX_NODES + 10) + 8;
	s = malloc(n);
	q = s + sprintf(s, "x: [1");
	for (i = 0; i < POLICY_MAX_NODES; i++)
		q += sprintf(q, ",1");
	strcpy(q, "]");
	CHECK(load_text(s, &pr) == NULL && pr.n >= 1);
	policy_problems_free(&pr);
	free(s);

	/* A huge number, a NUL in the text, odd tags, a long key. */
	CHECK(load_text("filesystems:\n  - name: a\n    local: {root: /a}\n"
			"    intents: [read]\n    quota: {bytes: "
			"9999999999999999999999999999999999}\n",
			&pr) == NULL);
	policy_problems_free(&pr);
	CHECK(policy_load_buf("t", "tokens: {audience: a\0b}\n", 24, &nofiles,
			      &pr) == NULL);
	policy_problems_free(&pr);
	p = load_text("!!binary tokens: !custom {audience: !!int x}\n", &pr);
	CHECK(p != NULL);
	policy_unref(p);
	policy_problems_free(&pr);
}

static uint32_t rng = 12345;

static uint32_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 17;
	rng ^= rng << 5;
	return rng;
}

/* Every prefix and a few thousand mutations of a valid policy. */
static void test_mutations(void)
{
	static const char alphabet[] = "[]{}:,-&*!|>'\"#\n \t\\0aZ%@";
	size_t len = strlen(valid_text), i, j, pos;
	struct policy_problems pr = {0};
	struct policy *p;
	char *buf = malloc(len + 1);
	int loaded = 0;

	for (i = 0; i <= len; i += 3) {
		memcpy(buf, valid_text, i);
		p = policy_load_buf("t", buf, i, &nofiles, &pr);
		loaded += p != NULL;
		policy_unref(p);
		policy_problems_free(&pr);
	}
	for (i = 0; i < 3000; i++) {
		memcpy(buf, valid_text, len + 1);
		for (j = 0; j < 1 + next_rand() % 4; j++) {
			pos = next_rand() % len;
			if (next_rand() % 2)
				buf[pos] = alphabet[next_rand() %
						    (sizeof(alphabet) - 1)];
			else
				buf[pos] = (char)next_rand();
		}
		p = policy_load_buf("t", buf, len, &nofiles, &pr);
		loaded += p != NULL;
		policy_unref(p);
		policy_problems_free(&pr);
	}
	CHECK(loaded > 0); /* the whole text, at least, loads */
	free(buf);
}

static void write_file(const char *dir, const char *name, const char *text,
		       mode_t mode)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	if (!f)
		return;
	fputs(text, f);
	fclose(f);
	chmod(path, mode);
}

struct reader_arg {
	struct policy_handle *h;
	int stop, reads;
};

static void *reader(void *arg)
{
	struct reader_arg *r = arg;
	struct policy *p;

	while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE)) {
		p = policy_handle_get(r->h);
		/* Touch what a request would: freed memory would show. */
		if (p->nfs != 1 || strcmp(p->fs[0].name, "x") != 0)
			abort();
		policy_unref(p);
		r->reads++;
	}
	return NULL;
}

static void test_reload(void)
{
	char dir[] = "/tmp/test-policy.XXXXXX", path[600];
	struct policy_problems pr = {0};
	struct policy_handle h;
	struct policy *p0, *held, *now;
	struct reader_arg ra;
	pthread_t t[2];
	int i;

	if (!mkdtemp(dir)) {
		CHECK(0);
		return;
	}
	write_file(dir, "10-a.yaml",
		   "filesystems:\n  - {name: x, local: {root: /x}, intents: "
		   "[read]}\n",
		   0644);
	write_file(dir, ".hidden.yaml", "garbage: [\n", 0644);
	write_file(dir, "notes.txt", "garbage: [\n", 0644);
	p0 = policy_load(dir, NULL, &pr);
	CHECK(p0 != NULL && pr.n == 0);
	if (!p0)
		goto out;
	CHECK_EQ(p0->nfiles, 1);
	policy_handle_init(&h, p0);

	/* A broken new policy: refused, the old one stays in force. */
	write_file(dir, "20-b.yaml", "tokens: {max_ttl: soon}\n", 0644);
	held = policy_handle_get(&h);
	CHECK_EQ(policy_handle_reload(&h, dir, NULL, &pr), -EINVAL);
	CHECK(pr.n == 1 && strstr(pr.v[0].file, "20-b.yaml"));
	policy_problems_free(&pr);
	now = policy_handle_get(&h);
	CHECK(now == p0);
	policy_unref(now);

	/* A good one replaces it; a holder of the old keeps using it. */
	write_file(dir, "20-b.yaml", "tokens: {max_ttl: 5m}\n", 0644);
	CHECK_EQ(policy_handle_reload(&h, dir, NULL, &pr), 0);
	now = policy_handle_get(&h);
	CHECK(now != p0 && now->tokens.max_ttl_ms == 300000);
	CHECK(held == p0 && held->tokens.max_ttl_ms == 3600000 &&
	      strcmp(held->fs[0].name, "x") == 0);
	policy_unref(held); /* the last reference: p0 is freed here */
	policy_unref(now);

	/* Readers never see a freed policy while reloads go on. */
	ra = (struct reader_arg){.h = &h};
	for (i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, reader, &ra);
	for (i = 0; i < 200; i++)
		CHECK_EQ(policy_handle_reload(&h, dir, NULL, &pr), 0);
	__atomic_store_n(&ra.stop, 1, __ATOMIC_RELEASE);
	for (i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	policy_handle_cleanup(&h);

	/* Not a directory, no directory. */
	snprintf(path, sizeof(path), "%s/10-a.yaml", dir);
	CHECK(policy_load(path, NULL, &pr) == NULL && errno == ENOTDIR);
	policy_problems_free(&pr);
	snprintf(path, sizeof(path), "%s/none", dir);
	CHECK(policy_load(path, NULL, &pr) == NULL && errno == ENOENT);
	CHECK(pr.n == 1);
	policy_problems_free(&pr);
	CHECK(policy_load("", NULL, NULL) == NULL && errno == EINVAL);
out:
	snprintf(path, sizeof(path), "rm -rf '%s'", dir);
	if (system(path) != 0)
		fprintf(stderr, "cannot remove %s\n", dir);
}

/* The secret-file check: file_root, modes, kinds. */
static void test_secret_files(void)
{
	char dir[] = "/tmp/test-policy.XXXXXX", path[600];
	struct policy_opts opts = {0};
	struct policy_problems pr = {0};
	struct policy *p;
	const char *text = "tokens: {private_key: /k}\n";

	if (!mkdtemp(dir)) {
		CHECK(0);
		return;
	}
	opts.file_root = dir;
	write_file(dir, "k", "secret\n", 0600);
	p = policy_load_buf("t", text, strlen(text), &opts, &pr);
	CHECK(p != NULL);
	policy_unref(p);
	write_file(dir, "k", "secret\n", 0604);
	CHECK(policy_load_buf("t", text, strlen(text), &opts, &pr) == NULL);
	CHECK(pr.n == 1 && strstr(pr.v[0].msg, "mode 0604"));
	policy_problems_free(&pr);
	opts.flags = POLICY_NO_FILE_CHECKS;
	p = policy_load_buf("t", text, strlen(text), &opts, &pr);
	CHECK(p != NULL);
	policy_unref(p);
	snprintf(path, sizeof(path), "rm -rf '%s'", dir);
	if (system(path) != 0)
		fprintf(stderr, "cannot remove %s\n", dir);
}

static void test_json(void)
{
	struct policy *p = load_text(valid_text, NULL);
	char *s;

	CHECK(p != NULL);
	if (!p)
		return;
	s = policy_json(p);
	CHECK(s && strstr(s, "\"name\": \"agent-7\"") &&
	      strstr(s, "\"[::1]:7480\"") && strstr(s, "\"max_ttl\": 3600"));
	free(s);
	policy_unref(p);
}

int main(void)
{
	test_parsers();
	test_lookups();
	test_problems();
	test_hostile();
	test_mutations();
	test_reload();
	test_secret_files();
	test_json();
	return unit_done("test_policy");
}
