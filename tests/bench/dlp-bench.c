/*
 * dlp-bench.c - throughput of the DLP scanner on one core.
 *
 * Compiles 50 rules (the built-in detectors and 40 custom patterns of the
 * kind operators write), generates a corpus of mixed text (prose, C code,
 * JSON records, log lines, base64, CSV order records; the shares are
 * printed) with rare planted secrets, and scans it as one stream in
 * fixed-size writes, reporting MB/s by wall clock and by the thread's CPU
 * time.  The planted secrets are caught by literal-anchored rules only: a
 * class-only rule (SSN, phone, IBAN, NINO) that fired would stop being
 * scanned and make the figure look better than a clean file's.  -p scans a
 * smaller amount with each rule alone, to show which rules cost most.  Not run
 * by make check.
 *
 *   dlp-bench [-s MiB to scan] [-c KiB per write] [-p] [-r] [-x rule]...
 *
 * -x leaves a rule out (repeatable), to measure the set without it; -r
 * uses the reference path (every pattern rule in one Vectorscan database,
 * no fast paths), the scanner as it was before them.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dlp.h"
#include "dlp_int.h"

static const char *const custom[][2] = {
    {"us_ssn", "\\b[0-9]{3}-[0-9]{2}-[0-9]{4}\\b"},
    {"corp_email", "[A-Za-z0-9._%+-]+@corp\\.example\\.com"},
    {"iban", "\\b[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}\\b"},
    {"password_assign", "(?i)password[ \\t]*[:=][ \\t]*[^ \\t\\r\\n]{8,}"},
    {"azure_storage_key", "AccountKey=[A-Za-z0-9+/=]{88}"},
    {"azure_sas", "[?&]sig=[A-Za-z0-9%]{43,}"},
    {"gcp_service_account", "\"type\":[ ]*\"service_account\""},
    {"gcp_private_key_id", "\"private_key_id\":[ ]*\"[a-f0-9]{40}\""},
    {"twilio_key", "\\bSK[0-9a-fA-F]{32}\\b"},
    {"sendgrid_key", "SG\\.[A-Za-z0-9_-]{22}\\.[A-Za-z0-9_-]{43}"},
    {"mailgun_key", "key-[0-9a-zA-Z]{32}"},
    {"npm_token", "npm_[A-Za-z0-9]{36}"},
    {"pypi_token", "pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{50,}"},
    {"heroku_key", "(?i)heroku.{0,20}[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-"
		   "[0-9A-F]{4}-[0-9A-F]{12}"},
    {"shopify_token", "shpat_[a-fA-F0-9]{32}"},
    {"square_token", "sq0atp-[0-9A-Za-z_-]{22}"},
    {"datadog_key", "(?i)dd_api_key[ ]*=[ ]*[a-f0-9]{32}"},
    {"openai_key", "sk-[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20}"},
    {"anthropic_key", "sk-ant-api03-[A-Za-z0-9_-]{90,}"},
    {"gitlab_token", "glpat-[0-9a-zA-Z_-]{20}"},
    {"digitalocean_token", "dop_v1_[a-f0-9]{64}"},
    {"vault_token", "hvs\\.[A-Za-z0-9_-]{24,}"},
    {"postgres_url", "postgres(?:ql)?://[^:\\s]+:[^@\\s]+@"},
    {"mysql_url", "mysql://[^:\\s]+:[^@\\s]+@"},
    {"mongodb_url", "mongodb(?:\\+srv)?://[^:\\s]+:[^@\\s]+@"},
    {"url_credentials", "https?://[^/:\\s@]+:[^@/\\s]+@"},
    {"bearer_header", "(?i)authorization:[ ]*bearer[ ]+[A-Za-z0-9._~+/-]{20,}"},
    {"internal_host", "\\b[a-z0-9-]+\\.internal\\.example\\.net\\b"},
    {"codename", "(?i)\\bproject[ _-]?(?:nightingale|bluebird)\\b"},
    {"confidential", "(?i)\\b(?:company confidential|internal use only)\\b"},
    {"employee_id", "\\bEMP-[0-9]{6}\\b"},
    {"customer_id", "\\bCUST[0-9]{10}\\b"},
    {"uk_nino", "\\b[A-CEGHJ-PR-TW-Z]{2}[0-9]{6}[A-D]\\b"},
    {"us_phone", "\\b[2-9][0-9]{2}[-. ][0-9]{3}[-. ][0-9]{4}\\b"},
    {"k8s_secret", "kind:[ ]*Secret\\b"},
    {"npmrc_token", "_authToken=[A-Za-z0-9_-]{20,}"},
    {"docker_auth", "\"auth\":[ ]*\"[A-Za-z0-9+/=]{20,}\""},
    {"putty_key", "PuTTY-User-Key-File-[23]:"},
    {"telegram_bot", "\\b[0-9]{8,10}:AA[0-9A-Za-z_-]{33}\\b"},
    {"slack_webhook", "https://hooks\\.slack\\.com/services/T[A-Z0-9]+/"
		      "B[A-Z0-9]+/[A-Za-z0-9]+"},
};

static const char *const plants[] = {
    "aws_access_key_id=AKIAIOSFODNN7EXAMPLE\n",
    "token: ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789\n",
    "card 4111 1111 1111 1111 exp 12/29\n",
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7\n",
    "db = postgres://app:hunter2hunter2@db.internal.example.net/app\n",
    "employee EMP-123456 requested access\n",
};

static const char *const words[] = {
    "the",	"of",	   "and",      "to",	   "in",      "is",
    "that",	"for",	   "it",       "as",	   "with",    "was",
    "on",	"be",	   "at",       "by",	   "this",    "had",
    "not",	"are",	   "but",      "from",	   "or",      "have",
    "an",	"they",	   "which",    "one",	   "you",     "were",
    "storage",	"broker",  "policy",   "secret",   "key",     "access",
    "session",	"upload",  "request",  "service",  "account", "token",
    "password", "project", "internal", "customer", "report",  "quarterly",
};

static uint64_t rs = 0x9E3779B97F4A7C15ull;

static uint64_t rnd(void)
{
	rs ^= rs << 13;
	rs ^= rs >> 7;
	rs ^= rs << 17;
	return rs;
}

struct out {
	char *b;
	size_t n, cap;
};

static void put(struct out *o, const char *s, size_t n)
{
	if (o->n + n > o->cap)
		n = o->cap - o->n;
	memcpy(o->b + o->n, s, n);
	o->n += n;
}

static void putf(struct out *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void putf(struct out *o, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	put(o, line, n < (int)sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

static void prose(struct out *o)
{
	for (int i = 0, n = 40 + (int)(rnd() % 80); i < n; i++) {
		const char *w = words[rnd() % (sizeof(words) / sizeof(*words))];

		put(o, w, strlen(w));
		put(o, i % 15 == 14 ? ".\n" : " ", i % 15 == 14 ? 2 : 1);
	}
	put(o, "\n", 1);
}

static void code(struct out *o)
{
	for (int i = 0, n = 5 + (int)(rnd() % 20); i < n; i++)
		putf(o,
		     "\tif (ctx->len_%u > %u && buf[%u] != '\\0')\n"
		     "\t\treturn process_%u(ctx, buf + %u, \"%s\");\n",
		     (unsigned)(rnd() % 100), (unsigned)(rnd() % 4096),
		     (unsigned)(rnd() % 64), (unsigned)(rnd() % 50),
		     (unsigned)(rnd() % 512),
		     words[rnd() % (sizeof(words) / sizeof(*words))]);
}

static void json(struct out *o)
{
	for (int i = 0, n = 3 + (int)(rnd() % 10); i < n; i++)
		putf(o,
		     "{\"id\": %llu, \"user\": \"%s_%u\", \"amount\": %u.%02u, "
		     "\"ts\": \"2024-%02u-%02uT%02u:%02u:%02uZ\", \"tags\": "
		     "[\"%s\", \"%s\"], \"ok\": %s}\n",
		     (unsigned long long)(rnd() % 100000000000ull),
		     words[rnd() % 30], (unsigned)(rnd() % 1000),
		     (unsigned)(rnd() % 10000), (unsigned)(rnd() % 100),
		     (unsigned)(rnd() % 12 + 1), (unsigned)(rnd() % 28 + 1),
		     (unsigned)(rnd() % 24), (unsigned)(rnd() % 60),
		     (unsigned)(rnd() % 60), words[rnd() % 48],
		     words[rnd() % 48], rnd() & 1 ? "true" : "false");
}

static void logs(struct out *o)
{
	for (int i = 0, n = 5 + (int)(rnd() % 30); i < n; i++)
		putf(o,
		     "2024-03-%02u %02u:%02u:%02u.%03u INFO [worker-%u] "
		     "%u.%u.%u.%u - request %08x-%04x-%04x took %u ms, "
		     "status %u, bytes %u\n",
		     (unsigned)(rnd() % 28 + 1), (unsigned)(rnd() % 24),
		     (unsigned)(rnd() % 60), (unsigned)(rnd() % 60),
		     (unsigned)(rnd() % 1000), (unsigned)(rnd() % 16),
		     (unsigned)(rnd() % 256), (unsigned)(rnd() % 256),
		     (unsigned)(rnd() % 256), (unsigned)(rnd() % 256),
		     (unsigned)rnd(), (unsigned)(rnd() & 0xffff),
		     (unsigned)(rnd() & 0xffff), (unsigned)(rnd() % 2000),
		     rnd() % 10 ? 200u : 500u, (unsigned)(rnd() % 1000000));
}

static void base64(struct out *o)
{
	static const char a[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuv"
	    "wxyz0123456789+/";
	char line[77];

	for (int i = 0, n = 5 + (int)(rnd() % 40); i < n; i++) {
		for (int j = 0; j < 76; j++)
			line[j] = a[rnd() % 64];
		line[76] = '\n';
		put(o, line, 77);
	}
}

/* A CSV export: order records, digit-heavy with dashes and capitals. */
static void csv(struct out *o)
{
	for (int i = 0, n = 5 + (int)(rnd() % 30); i < n; i++)
		putf(o,
		     "%u,ORD-%06u,%02u/%02u/"
		     "2024,%s,SKU-%c%c%02u-%04u,%u,%u.%02u,"
		     "%05u-%04u,%s\n",
		     (unsigned)(rnd() % 1000000), (unsigned)(rnd() % 1000000),
		     (unsigned)(rnd() % 12 + 1), (unsigned)(rnd() % 28 + 1),
		     words[30 + rnd() % 18], (char)('A' + rnd() % 26),
		     (char)('A' + rnd() % 26), (unsigned)(rnd() % 100),
		     (unsigned)(rnd() % 10000), (unsigned)(rnd() % 20 + 1),
		     (unsigned)(rnd() % 5000), (unsigned)(rnd() % 100),
		     (unsigned)(rnd() % 100000), (unsigned)(rnd() % 10000),
		     rnd() & 1 ? "shipped" : "pending");
}

static const char *const kinds[] = {"prose", "C code", "JSON",
				    "logs",  "base64", "CSV"};

/*
 * The corpus: segments of each kind at random (the same chance each), a
 * planted secret per MiB; share[k] gets the bytes of kind k.
 */
static char *corpus(size_t size, size_t *planted, size_t *share)
{
	struct out o = {.b = malloc(size), .cap = size};
	size_t next_plant = 1 << 20;

	*planted = 0;
	if (!o.b)
		return NULL;
	while (o.n < o.cap) {
		size_t k = rnd() % 6, at = o.n;

		switch (k) {
		case 0:
			prose(&o);
			break;
		case 1:
			code(&o);
			break;
		case 2:
			json(&o);
			break;
		case 3:
			logs(&o);
			break;
		case 4:
			base64(&o);
			break;
		default:
			csv(&o);
		}
		share[k] += o.n - at;
		if (o.n >= next_plant) {
			const char *p = plants[*planted % 6];

			put(&o, p, strlen(p));
			(*planted)++;
			next_plant += 1 << 20;
		}
	}
	return o.b;
}

static size_t rules(struct dlp_rule_spec *specs, size_t max)
{
	size_t n = 0;
	const char *d;

	for (size_t i = 0; (d = dlp_builtin_name(i)) && n < max; i++)
		specs[n++] = (struct dlp_rule_spec){.name = d,
						    .kind = DLP_KIND_BUILTIN,
						    .detector = d,
						    .severity = DLP_SEV_HIGH,
						    .action = DLP_AUDIT};
	for (size_t i = 0; i < sizeof(custom) / sizeof(*custom) && n < max; i++)
		specs[n++] = (struct dlp_rule_spec){.name = custom[i][0],
						    .kind = DLP_KIND_REGEX,
						    .pattern = custom[i][1],
						    .severity = DLP_SEV_MEDIUM,
						    .action = DLP_AUDIT};
	return n;
}

static double secs(clockid_t c)
{
	struct timespec ts;

	clock_gettime(c, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Scan total bytes of the corpus as one stream; MB/s by CPU time. */
static double run(const struct dlp_engine *e, const char *c, size_t csize,
		  size_t total, size_t chunk, bool verbose)
{
	struct dlp_stream *s = dlp_stream_open(e, "bench.txt", -1);
	double w0 = secs(CLOCK_MONOTONIC), c0 = secs(CLOCK_THREAD_CPUTIME_ID);
	struct dlp_verdict v;
	double wall, cpu;

	for (size_t done = 0; s && done < total; done += chunk)
		if (dlp_stream_write(s, c + done % csize, chunk)) {
			perror("dlp_stream_write");
			exit(1);
		}
	if (!s || dlp_stream_finish(s, &v)) {
		perror("dlp_stream");
		exit(1);
	}
	wall = secs(CLOCK_MONOTONIC) - w0;
	cpu = secs(CLOCK_THREAD_CPUTIME_ID) - c0;
	if (verbose) {
		printf("scanned %zu MiB in %zu KiB writes: %.2f s wall, %.2f s "
		       "cpu\n",
		       total >> 20, chunk >> 10, wall, cpu);
		printf("throughput: %.0f MB/s per core (cpu), %.0f MB/s "
		       "(wall)\n",
		       total / cpu / 1e6, total / wall / 1e6);
		printf("verdict %s, %zu findings:", dlp_action_name(v.action),
		       v.nfindings);
		for (size_t i = 0; i < v.nfindings; i++)
			printf(" %s@%llu", v.findings[i].rule,
			       (unsigned long long)v.findings[i].offset);
		printf("\n");
	}
	dlp_verdict_cleanup(&v);
	dlp_stream_free(s);
	return total / cpu / 1e6;
}

int main(int argc, char **argv)
{
	size_t total = 1024, chunk = 1024, csize = 64 << 20, planted, n;
	struct dlp_rule_spec specs[64];
	bool profile = false, plain = false;
	const char *skip[64];
	size_t nskip = 0;
	char err[256];
	int opt;

	while ((opt = getopt(argc, argv, "s:c:prx:")) != -1) {
		if (opt == 'x' && nskip < 64)
			skip[nskip++] = optarg;
		else if (opt == 's')
			total = strtoul(optarg, NULL, 10);
		else if (opt == 'c')
			chunk = strtoul(optarg, NULL, 10);
		else if (opt == 'p')
			profile = true;
		else if (opt == 'r')
			plain = true;
		else {
			fprintf(stderr, "usage: dlp-bench [-s MiB] [-c KiB] "
					"[-p] [-r] [-x rule]...\n");
			return 2;
		}
	}
	total <<= 20;
	chunk <<= 10;
	if (!chunk || !total || csize % chunk || total % chunk) {
		fprintf(stderr, "dlp-bench: the write size must divide 64 MiB "
				"and the total\n");
		return 2;
	}
	n = rules(specs, 64);
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < nskip; j++)
			if (strcmp(specs[i].name, skip[j]) == 0) {
				specs[i--] = specs[--n];
				break;
			}
	size_t share[6] = {0};
	char *c = corpus(csize, &planted, share);
	double t0 = secs(CLOCK_MONOTONIC);
	struct dlp_engine *e =
	    dlp_engine_build(specs, n, plain, err, sizeof(err));

	if (!c || !e) {
		fprintf(stderr, "dlp-bench: %s\n", c ? err : strerror(errno));
		return 1;
	}
	printf("%s path: ", plain ? "reference" : "fast");
	printf("%zu rules compiled in %.0f ms; corpus 64 MiB, %zu secrets "
	       "planted, repeated to fill the total\n",
	       n, (secs(CLOCK_MONOTONIC) - t0) * 1e3, planted);
	printf("corpus by bytes:");
	for (size_t k = 0; k < 6; k++)
		printf(" %s %.1f%%", kinds[k],
		       100.0 * (double)share[k] / csize);
	printf("\n");
	if (!profile) {
		run(e, c, csize, total, chunk, true);
	} else {
		printf("all rules: %.0f MB/s\n",
		       run(e, c, csize, csize, chunk, false));
		for (size_t i = 0; i < n; i++) {
			struct dlp_engine *one = dlp_engine_build(
			    &specs[i], 1, plain, err, sizeof(err));

			printf("%-24s %6.0f MB/s\n", specs[i].name,
			       run(one, c, csize, csize, chunk, false));
			dlp_engine_free(one);
		}
	}
	dlp_engine_free(e);
	free(c);
	return 0;
}
