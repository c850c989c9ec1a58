/*
 * test_dlp_rules.c - the DLP scanner's custom patterns, conditions,
 * verdicts, rule-set errors, hostile input and a shared engine in threads.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dlp_test.h"

static void test_pattern_check(void)
{
	char err[256];
	int off;

	CHECK_EQ(dlp_pattern_check("ACME-[0-9]{8}", err, sizeof(err), &off), 0);
	CHECK_EQ(off, -1);
	CHECK_EQ(dlp_pattern_check("abc(", err, sizeof(err), &off), -EINVAL);
	CHECK_EQ(off, 3);
	CHECK(strstr(err, "parenthesis") != NULL);
	CHECK_EQ(dlp_pattern_check("a)b", err, sizeof(err), &off), -EINVAL);
	CHECK_EQ(off, 1);
	CHECK_EQ(dlp_pattern_check("[a-", err, sizeof(err), &off), -EINVAL);
	CHECK_EQ(off, 0);
	/* what Vectorscan cannot do is refused, not silently changed */
	CHECK_EQ(dlp_pattern_check("(?<=a)b", err, sizeof(err), &off), -EINVAL);
	CHECK_EQ(off, -1);
	CHECK_EQ(dlp_pattern_check("a\\1", err, sizeof(err), &off), -EINVAL);
	CHECK_EQ(dlp_pattern_check("x*", err, sizeof(err), &off), -EINVAL);
	CHECK_EQ(dlp_pattern_check("", err, sizeof(err), &off), -EINVAL);
	CHECK_EQ(dlp_pattern_check(NULL, err, sizeof(err), NULL), -EINVAL);
}

static void test_engine_errors(void)
{
	const char *globs[] = {"*.env"};
	const char *argv[] = {"sh", NULL};
	struct dlp_rule_spec bad[] = {
	    {.name = "r", .kind = DLP_KIND_REGEX, .pattern = "abc("},
	    {.name = "r", .kind = DLP_KIND_BUILTIN, .detector = "nope"},
	    {.name = "", .kind = DLP_KIND_REGEX, .pattern = "abc"},
	    {.name = "r", .kind = DLP_KIND_HOOK},
	    {.name = "r", .kind = DLP_KIND_HOOK, .hook.argv = argv},
	    {.name = "r",
	     .kind = DLP_KIND_REGEX,
	     .pattern = "abc",
	     .min_size = 10,
	     .max_size = 5},
	    {.name = "r",
	     .kind = DLP_KIND_REGEX,
	     .pattern = "abc",
	     .magic_len = DLP_MAGIC_MAX + 1,
	     .magic = "x"},
	    {.name = "r",
	     .kind = DLP_KIND_REGEX,
	     .pattern = "abc",
	     .action = (enum dlp_action)7},
	    {.name = "r", .kind = (enum dlp_kind)9},
	};
	struct dlp_rule_spec dup[] = {
	    {.name = "same",
	     .kind = DLP_KIND_REGEX,
	     .pattern = "abc",
	     .globs = globs,
	     .nglobs = 1},
	    {.name = "same", .kind = DLP_KIND_BUILTIN, .detector = "jwt"},
	};
	char err[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		CHECK(dlp_engine_new(&bad[i], 1, err, sizeof(err)) == NULL);
		CHECK_EQ(errno, EINVAL);
		CHECK(err[0] != '\0');
	}
	CHECK(dlp_engine_new(bad, 1, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "rule r: pattern:") != NULL);
	CHECK(dlp_engine_new(dup, 2, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "duplicate") != NULL);

	/* an empty rule set allows everything */
	struct dlp_engine *e = dlp_engine_new(NULL, 0, err, sizeof(err));
	struct dlp_verdict v;

	CHECK(e != NULL);
	CHECK_EQ(scan(e, "f", "AKIAIOSFODNN7EXAMPLE", 20, 20, 0, &v), 0);
	CHECK_EQ(v.action, DLP_ALLOW);
	CHECK_EQ(v.size, 20);
	dlp_verdict_cleanup(&v);
	dlp_engine_free(e);

	enum dlp_severity sev;
	enum dlp_action act;

	CHECK_EQ(dlp_severity_parse("critical", &sev), 0);
	CHECK_EQ(sev, DLP_SEV_CRITICAL);
	CHECK_EQ(dlp_severity_parse("huge", &sev), -EINVAL);
	CHECK_EQ(dlp_action_parse("audit", &act), 0);
	CHECK_EQ(act, DLP_AUDIT);
	CHECK_EQ(dlp_action_parse("deny", &act), -EINVAL);
	CHECK_STR(dlp_action_name(DLP_BLOCK), "block");
	CHECK_STR(dlp_severity_name(DLP_SEV_LOW), "low");
}

static int verdict_of(const struct dlp_engine *e, const char *name,
		      const char *text, const char **rule)
{
	struct dlp_verdict v;
	int a;

	if (scan(e, name, text, strlen(text), 3, 0, &v))
		return -1;
	a = (int)v.action;
	if (rule)
		*rule = v.nfindings ? strdup(v.findings[0].rule) : NULL;
	dlp_verdict_cleanup(&v);
	return a;
}

static void test_custom_and_conditions(void)
{
	const char *env[] = {"*.env", "secrets/*"};
	const unsigned char zip[] = {'P', 'K', 3, 4};
	struct dlp_rule_spec specs[] = {
	    {.name = "acme_id",
	     .kind = DLP_KIND_REGEX,
	     .pattern = "ACME-[0-9]{8}",
	     .action = DLP_BLOCK},
	    {.name = "env_password",
	     .kind = DLP_KIND_REGEX,
	     .pattern = "^PASSWORD=",
	     .action = DLP_BLOCK,
	     .globs = env,
	     .nglobs = 2},
	    {.name = "big_secret",
	     .kind = DLP_KIND_REGEX,
	     .pattern = "TOPSECRET",
	     .action = DLP_BLOCK,
	     .min_size = 100,
	     .max_size = 200},
	    {.name = "zip_marker",
	     .kind = DLP_KIND_REGEX,
	     .pattern = "INSIDEZIP",
	     .action = DLP_BLOCK,
	     .magic = zip,
	     .magic_len = 4},
	    {.name = "eof_marker",
	     .kind = DLP_KIND_REGEX,
	     .pattern = "THE END$",
	     .action = DLP_AUDIT},
	};
	char err[256], big[150], zipf[32];
	struct dlp_engine *e = dlp_engine_new(specs, 5, err, sizeof(err));
	const char *rule = NULL;

	CHECK(e != NULL);
	if (!e) {
		fprintf(stderr, "%s\n", err);
		return;
	}
	CHECK_EQ(verdict_of(e, "a", "id ACME-12345678 x", &rule), DLP_BLOCK);
	CHECK_STR(rule, "acme_id");
	free((void *)rule);
	CHECK_EQ(verdict_of(e, "a", "id ACME-1234567 x", NULL), DLP_ALLOW);
	/* globs: basename, or the whole path when the glob has a '/' */
	CHECK_EQ(verdict_of(e, "app/prod.env", "X=1\nPASSWORD=x\n", NULL),
		 DLP_BLOCK);
	CHECK_EQ(verdict_of(e, "/secrets/a.txt", "PASSWORD=x\n", NULL),
		 DLP_BLOCK);
	CHECK_EQ(verdict_of(e, "app/prod.txt", "PASSWORD=x\n", NULL),
		 DLP_ALLOW);
	CHECK_EQ(verdict_of(e, "app/prod.env", "MYPASSWORD=x\n", NULL),
		 DLP_ALLOW);
	/* size window [100, 200] */
	memset(big, '.', sizeof(big));
	memcpy(big + 50, "TOPSECRET", 9);
	big[sizeof(big) - 1] = '\0';
	CHECK_EQ(verdict_of(e, "b", big, NULL), DLP_BLOCK);
	big[60] = '\0';
	CHECK_EQ(verdict_of(e, "b", big, NULL), DLP_ALLOW);
	/* leading magic bytes */
	memcpy(zipf, "PK\3\4 data INSIDEZIP", 20);
	zipf[20] = '\0';
	CHECK_EQ(verdict_of(e, "z", zipf, NULL), DLP_BLOCK);
	CHECK_EQ(verdict_of(e, "z", "PK\3 data INSIDEZIP", NULL), DLP_ALLOW);
	/* an end-of-data anchor reports at finish */
	CHECK_EQ(verdict_of(e, "t", "and that was THE END", NULL), DLP_AUDIT);
	CHECK_EQ(verdict_of(e, "t", "THE END was not at the end", NULL),
		 DLP_ALLOW);
	dlp_engine_free(e);
}

/* The verdict is the strongest action; allow-action findings are listed. */
static void test_verdicts(void)
{
	struct dlp_rule_spec specs[] = {
	    {.name = "trial",
	     .kind = DLP_KIND_REGEX,
	     .pattern = "alpha",
	     .action = DLP_ALLOW,
	     .severity = DLP_SEV_LOW},
	    {.name = "watch",
	     .kind = DLP_KIND_REGEX,
	     .pattern = "beta",
	     .action = DLP_AUDIT,
	     .severity = DLP_SEV_MEDIUM},
	    {.name = "stop",
	     .kind = DLP_KIND_REGEX,
	     .pattern = "gamma",
	     .action = DLP_BLOCK,
	     .severity = DLP_SEV_CRITICAL},
	};
	struct dlp_engine *e = dlp_engine_new(specs, 3, NULL, 0);
	struct dlp_verdict v;
	const char *t = "alpha beta alpha beta";

	CHECK(e != NULL);
	if (!e)
		return;
	CHECK_EQ(verdict_of(e, "f", "alpha", NULL), DLP_ALLOW);
	CHECK_EQ(scan(e, "f", t, strlen(t), 7, 0, &v), 0);
	CHECK_EQ(v.action, DLP_AUDIT);
	CHECK_EQ(v.nfindings, 2); /* one finding per rule */
	CHECK(find(&v, "watch") && find(&v, "watch")->offset == 6);
	CHECK(find(&v, "watch") &&
	      find(&v, "watch")->severity == DLP_SEV_MEDIUM);
	dlp_verdict_cleanup(&v);
	CHECK_EQ(verdict_of(e, "f", "beta gamma alpha", NULL), DLP_BLOCK);
	dlp_engine_free(e);
}

static uint64_t rnd_state = 88172645463325252ull;

static uint64_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return rnd_state;
}

static void test_hostile(void)
{
	struct dlp_engine *e = builtins_engine(DLP_AUDIT);
	size_t n = 4 << 20;
	unsigned char *b = malloc(n);
	const struct dlp_finding *f;
	struct dlp_verdict v;

	CHECK(e && b);
	if (!e || !b)
		goto out;
	/* random binary: nothing, whatever the chunking */
	for (size_t i = 0; i < n; i++)
		b[i] = (unsigned char)rnd();
	CHECK_EQ(scan(e, "bin", b, n, 0, 65536 + 7, &v), 0);
	CHECK_EQ(v.nfindings, 0);
	CHECK_EQ(v.size, n);
	dlp_verdict_cleanup(&v);
	/* a key between NUL bytes deep in binary data */
	memset(b + 3000000, 0, 64);
	memcpy(b + 3000010, "AKIAIOSFODNN7EXAMPLE", 20);
	CHECK_EQ(scan(e, "bin", b, n, 3000015, 0, &v), 0);
	f = find(&v, "aws_access_key_id");
	CHECK(f && f->offset == 3000010);
	CHECK_EQ(v.action, DLP_AUDIT);
	dlp_verdict_cleanup(&v);
	/* one 4 MiB line, the secret at its end */
	memset(b, 'a', n);
	memcpy(b + n - 40, " 4111 1111 1111 1111\n", 21);
	CHECK_EQ(scan(e, "line", b, n, n - 30, 0, &v), 0);
	f = find(&v, "card_number");
	CHECK(f && f->offset == n - 39);
	dlp_verdict_cleanup(&v);
	/* a field of digits and separators: every end is a candidate */
	for (size_t i = 0; i < n; i += 2) {
		b[i] = (char)('0' + rnd() % 10);
		b[i + 1] = i % 6 ? ' ' : '-';
	}
	CHECK_EQ(scan(e, "digits", b, n, 0, 1 << 20, &v), 0);
	CHECK_EQ(v.size, n);
	if (v.nfindings)
		CHECK_STR(v.findings[0].rule, "card_number");
	dlp_verdict_cleanup(&v);
	/* control bytes in the excerpt come out printable */
	const char pem[] = "-----BEGIN \x01\x02 PRIVATE KEY-----";
	const char nulpem[] = "\0\0-----BEGIN EC PRIVATE KEY-----\0";

	CHECK_EQ(scan(e, "p", pem, sizeof(pem) - 1, 12, 0, &v), 0);
	CHECK_EQ(v.nfindings, 0); /* not a PEM header: control bytes */
	dlp_verdict_cleanup(&v);
	CHECK_EQ(scan(e, "p", nulpem, sizeof(nulpem) - 1, 9, 0, &v), 0);
	f = find(&v, "private_key");
	CHECK(f && f->offset == 2);
	for (const char *p = f ? f->excerpt : ""; *p; p++)
		CHECK(*p >= 0x20 && *p < 0x7f);
	dlp_verdict_cleanup(&v);
out:
	free(b);
	dlp_engine_free(e);
}

struct worker {
	const struct dlp_engine *e;
	int hits;
};

static void *worker_run(void *arg)
{
	struct worker *w = arg;
	char text[256];

	for (int i = 0; i < 200; i++) {
		struct dlp_verdict v;
		int n =
		    snprintf(text, sizeof(text),
			     "line %d\nkey AKIAIOSFODNN7EXAMPLE %d\n", i, i);

		if (scan(w->e, "t", text, (size_t)n, (size_t)(i % n), 0, &v) ==
			0 &&
		    find(&v, "aws_access_key_id"))
			w->hits++;
		dlp_verdict_cleanup(&v);
	}
	return NULL;
}

/* One engine, streams in two threads at once. */
static void test_threads(void)
{
	struct dlp_engine *e = builtins_engine(DLP_BLOCK);
	struct worker w[2] = {{e, 0}, {e, 0}};
	pthread_t t[2];

	for (int i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, worker_run, &w[i]);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	CHECK_EQ(w[0].hits, 200);
	CHECK_EQ(w[1].hits, 200);
	dlp_engine_free(e);
}

int main(void)
{
	test_pattern_check();
	test_engine_errors();
	test_custom_and_conditions();
	test_verdicts();
	test_hostile();
	test_threads();
	return unit_done("test_dlp_rules");
}
