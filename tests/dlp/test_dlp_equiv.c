/*
 * test_dlp_equiv.c - the fast paths find exactly what plain Vectorscan
 * finds.
 *
 * Two engines from the same rules: the reference puts every pattern rule
 * (card numbers included) in one streaming database; the default routes
 * card numbers to the digit-run scan and class-only patterns to the
 * prefiltered second database.  Random and adversarial inputs (digit
 * fields, runs longer than the ring, matches at the very start and end,
 * anchors next to newlines) are fed to both in random chunkings, and the
 * findings must agree: same rules, offsets, ends and excerpts.  All of it
 * runs once per prefix-test path the CPU has (portable, AVX2, AVX-512BW),
 * and large mixed files make the wide paths batch, sample and reorder.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dlp_int.h"
#include "dlp_test.h"

static const char *const custom[][2] = {
    {"us_ssn", "\\b[0-9]{3}-[0-9]{2}-[0-9]{4}\\b"},
    {"iban", "\\b[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}\\b"},
    {"uk_nino", "\\b[A-CEGHJ-PR-TW-Z]{2}[0-9]{6}[A-D]\\b"},
    {"us_phone", "\\b[2-9][0-9]{2}[-. ][0-9]{3}[-. ][0-9]{4}\\b"},
    {"line_code", "^[0-9]{4}-[0-9]{4}$"},
    {"zip_end", "[0-9]{5}\\b"},
    {"long_digits", "[0-9]{20,40}"},
    {"dotted", "\\d{3}\\.\\d{3}"},
    {"hex32", "(?i)\\b[a-f0-9]{32}\\b"},
    {"caps_num", "\\b[A-Z]{3}[0-9]{3,8}"},
    {"employee_id", "\\bEMP-[0-9]{6}\\b"},
    {"internal_host", "\\b[a-z0-9-]+\\.internal\\.example\\.net\\b"},
};

static uint64_t rs = 0x2545F4914F6CDD1Dull;

static uint64_t rnd(void)
{
	rs ^= rs << 13;
	rs ^= rs >> 7;
	rs ^= rs << 17;
	return rs;
}

static size_t rules(struct dlp_rule_spec *specs)
{
	size_t n = 0;
	const char *d;

	for (size_t i = 0; (d = dlp_builtin_name(i)); i++)
		specs[n++] = (struct dlp_rule_spec){.name = d,
						    .kind = DLP_KIND_BUILTIN,
						    .detector = d,
						    .action = DLP_AUDIT};
	for (size_t i = 0; i < sizeof(custom) / sizeof(*custom); i++)
		specs[n++] = (struct dlp_rule_spec){.name = custom[i][0],
						    .kind = DLP_KIND_REGEX,
						    .pattern = custom[i][1],
						    .action = DLP_AUDIT};
	return n;
}

/* Feed in random pieces: tiny, mid-sized, or large. */
static int scan_random(const struct dlp_engine *e, const unsigned char *b,
		       size_t len, struct dlp_verdict *v)
{
	struct dlp_stream *s = dlp_stream_open(e, "f.txt", -1);
	int mode = (int)(rnd() % 4), ret = 0;

	if (!s)
		return -1;
	for (size_t o = 0; o < len && !ret;) {
		size_t n = mode == 0   ? 1 + rnd() % 3
			   : mode == 1 ? 1 + rnd() % 200
			   : mode == 2 ? 1 + rnd() % 9000
				       : len;

		if (n > len - o)
			n = len - o;
		ret = dlp_stream_write(s, b + o, n);
		o += n;
	}
	if (!ret)
		ret = dlp_stream_finish(s, v);
	dlp_stream_free(s);
	return ret;
}

static bool same(const struct dlp_verdict *a, const struct dlp_verdict *b)
{
	if (a->nfindings != b->nfindings || a->action != b->action)
		return false;
	for (size_t i = 0; i < a->nfindings; i++) {
		const struct dlp_finding *f = &a->findings[i];
		const struct dlp_finding *g = find(b, f->rule);

		if (!g || f->offset != g->offset || f->end != g->end ||
		    strcmp(f->excerpt, g->excerpt) != 0)
			return false;
	}
	return true;
}

static void dump(const char *what, const struct dlp_verdict *v)
{
	fprintf(stderr, "  %s:", what);
	for (size_t i = 0; i < v->nfindings; i++)
		fprintf(stderr, " %s@%llu-%llu", v->findings[i].rule,
			(unsigned long long)v->findings[i].offset,
			(unsigned long long)v->findings[i].end);
	fprintf(stderr, "\n");
}

/* Findings of the reference, so the test shows it compared something. */
static size_t seen_class, seen_card;

static int compare(const struct dlp_engine *plain,
		   const struct dlp_engine *fast, const unsigned char *b,
		   size_t len, const char *what)
{
	struct dlp_verdict v1, v2;
	int bad = 0;

	if (scan_random(plain, b, len, &v1) || scan_random(fast, b, len, &v2))
		return 1;
	for (size_t i = 0; i < v1.nfindings; i++) {
		seen_card += strcmp(v1.findings[i].rule, "card_number") == 0;
		seen_class += v1.findings[i].kind == DLP_KIND_REGEX;
	}
	if (!same(&v1, &v2)) {
		fprintf(stderr, "%s: %zu bytes differ\n", what, len);
		dump("plain", &v1);
		dump("fast", &v2);
		bad = 1;
	}
	dlp_verdict_cleanup(&v1);
	dlp_verdict_cleanup(&v2);
	return bad;
}

static const char *const pieces[] = {
    "4111 1111 1111 1111",
    "4111-1111-1111-1111",
    "4111111111111111",
    "378282246310005",
    "123-45-6789",
    "GB82WEST12345698765432",
    "AB123456C",
    "212-555-0123",
    "212.555.0123",
    "1234-5678",
    "2024-03-05 12:34:56.789",
    "10.1.2.3",
    "EMP-123456",
    "\n",
    " ",
    "-",
    ".",
    "x",
    "Z",
    "_",
    "AKIAIOSFODNN7EXAMPLE",
    "0123456789abcdef0123456789ABCDEF",
    "db7.internal.example.net",
    "ABC1234567",
    "98765",
};

/* Text made of pieces that match or nearly match, glued at random. */
static size_t gen_pieces(unsigned char *b, size_t cap)
{
	size_t n = 0;

	while (n < cap) {
		const char *p =
		    pieces[rnd() % (sizeof(pieces) / sizeof(*pieces))];
		size_t l = strlen(p);

		if (rnd() % 3 == 0) {
			b[n++] = "0123456789 -.\nAZ"[rnd() % 16];
			continue;
		}
		if (l > cap - n)
			l = cap - n;
		memcpy(b + n, p, l);
		n += l;
	}
	return n;
}

/* Bytes from a small alphabet dense in digits, separators and capitals. */
static size_t gen_alphabet(unsigned char *b, size_t cap)
{
	static const char a[] = "0123456789012345678901234567890123456789"
				" - . \n ABCDEFXYZ abc_\t";

	for (size_t i = 0; i < cap; i++)
		b[i] = (unsigned char)a[rnd() % (sizeof(a) - 1)];
	return cap;
}

/* A run of digits longer than the ring, with secrets inside and at ends. */
static size_t gen_long_run(unsigned char *b, size_t cap)
{
	size_t n = 3000 + rnd() % (cap - 3000);

	for (size_t i = 0; i < n; i++)
		b[i] = (unsigned char)('0' + rnd() % 10);
	for (int k = 0; k < 3; k++) {
		size_t at = rnd() % (n - 30);

		memcpy(b + at, rnd() & 1 ? " 123-45-6789 " : "-GB82WEST1234569",
		       13);
	}
	return n;
}

/*
 * Mixed text in segments of a few KiB, each of one kind (prose, digit
 * logs, base64-like capitals and digits, and, with pieces_too, the
 * pieces above), so that which test of a class rule is rarest changes
 * along the file and the wide path's order of tests changes with it.
 */
static size_t gen_mixed(unsigned char *b, size_t cap, bool pieces_too)
{
	static const char *const words[] = {
	    "the ", "of ", "and ", "request ", "took ", "ms ", "status "};
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmno"
				  "pqrstuvwxyz0123456789+/";
	size_t n = 0;

	while (n < cap) {
		size_t seg = 1024 + rnd() % 8192, end = n + seg;
		int kind = (int)(rnd() % (pieces_too ? 4 : 3));

		if (end > cap)
			end = cap;
		while (n < end) {
			char line[96];
			int l;

			if (kind == 0) {
				const char *w = words[rnd() % 7];

				l = snprintf(line, sizeof(line), "%s", w);
			} else if (kind == 1) {
				l = snprintf(line, sizeof(line),
					     "2024-03-%02u %02u:%02u:%02u.%03u "
					     "%u.%u.%u.%u - %u ms\n",
					     (unsigned)(rnd() % 28 + 1),
					     (unsigned)(rnd() % 24),
					     (unsigned)(rnd() % 60),
					     (unsigned)(rnd() % 60),
					     (unsigned)(rnd() % 1000),
					     (unsigned)(rnd() % 256),
					     (unsigned)(rnd() % 256),
					     (unsigned)(rnd() % 256),
					     (unsigned)(rnd() % 256),
					     (unsigned)(rnd() % 2000));
			} else if (kind == 2) {
				for (l = 0; l < 76; l++)
					line[l] = b64[rnd() % 64];
				line[l++] = '\n';
			} else {
				l = (int)gen_pieces((unsigned char *)line, 40);
			}
			if (l > (int)(end - n))
				l = (int)(end - n);
			memcpy(b + n, line, (size_t)l);
			n += (size_t)l;
		}
	}
	return n;
}

/* The adversarial rounds against one fast engine. */
static int rounds(const struct dlp_engine *plain, const struct dlp_engine *fast,
		  unsigned char *b, size_t cap)
{
	int bad = 0;

	for (int round = 0; round < 300; round++) {
		size_t len;

		switch (round % 3) {
		case 0:
			len = gen_pieces(b, 1 + rnd() % cap);
			break;
		case 1:
			len = gen_alphabet(b, 1 + rnd() % cap);
			break;
		default:
			len = gen_long_run(b, cap);
		}
		bad += compare(plain, fast, b, len, "random");
		/* every rule at the very start and the very end */
		for (size_t i = 0; i < sizeof(pieces) / sizeof(*pieces); i++) {
			size_t l = strlen(pieces[i]);

			if (round == 0) {
				bad += compare(plain, fast,
					       (const unsigned char *)pieces[i],
					       l, "alone");
				memcpy(b + len - l, pieces[i], l);
				bad += compare(plain, fast, b, len, "at end");
			}
		}
	}
	return bad;
}

/*
 * Large mixed files: many batches, samples and changes of test order.
 * White box: on the wide path some rule's order must have changed at
 * some point, or the reordering went untested.
 */
static int long_files(const struct dlp_engine *plain,
		      const struct dlp_engine *fast)
{
	size_t cap = 4 << 20;
	unsigned char *b = malloc(cap);
	struct dlp_stream *s;
	bool moved = false;
	int bad = 0;

	if (!b)
		return 1;
	for (int k = 0; k < 2; k++) {
		size_t len = gen_mixed(b, cap, k == 0);

		bad += compare(plain, fast, b, len, "mixed");
	}
	/* without the pieces most class rules never fire, so they keep
	 * being tested (a rule that fired is not tested again) */
	s = dlp_stream_open(fast, "f.txt", -1);
	if (!s || dlp_stream_write(s, b, cap)) {
		bad++;
	} else if (fast->fast.vec != DLP_VEC_NONE) {
		for (unsigned r = 0; r < fast->fast.npf; r++)
			moved |= s->fs->vr[r].nchanged > 0;
		CHECK(moved);
	}
	dlp_stream_free(s);
	free(b);
	return bad;
}

int main(void)
{
	static const char *const levels[] = {"portable", "avx2", "avx512"};
	struct dlp_rule_spec specs[64];
	size_t n = rules(specs), cap = 20000;
	char err[256];
	struct dlp_engine *plain = dlp_engine_build(specs, n, true, err, 256);
	unsigned char *b = malloc(cap);
	int bad = 0;

	CHECK(plain && b);
	if (!plain || !b) {
		fprintf(stderr, "engine: %s\n", err);
		return unit_done("test_dlp_equiv");
	}
	CHECK(plain->fast.npf == 0 && plain->fast.ncard == 0);
	/* every path the CPU has: the level is read when an engine is built */
	for (size_t l = 0; l < sizeof(levels) / sizeof(*levels); l++) {
		struct dlp_engine *fast;

		setenv("OCCFS_DLP_SIMD", levels[l], 1);
		fast = dlp_engine_build(specs, n, false, err, 256);
		CHECK(fast);
		if (!fast)
			continue;
		/* the class rules and the card detector left the main
		 * database */
		CHECK(fast->fast.ncard == 1);
		CHECK(fast->fast.npf >= 6);
		if (l == 0)
			CHECK(fast->fast.vec == DLP_VEC_NONE);
		else
			fprintf(stderr, "%s requested: path %d\n", levels[l],
				(int)fast->fast.vec);
		bad += rounds(plain, fast, b, cap);
		bad += long_files(plain, fast);
		dlp_engine_free(fast);
	}
	unsetenv("OCCFS_DLP_SIMD");
	CHECK_EQ(bad, 0);
	CHECK(seen_class > 1500);
	CHECK(seen_card > 150);
	/* the fast path finds things at all (not two empty verdicts) */
	struct dlp_engine *fast = dlp_engine_build(specs, n, false, err, 256);
	struct dlp_verdict v;
	const char *t = "x 123-45-6789 y\nGB82WEST12345698765432\n"
			"card 4111 1111 1111 1111\n";

	CHECK(fast);
	if (fast) {
		CHECK_EQ(scan(fast, "f", t, strlen(t), 10, 0, &v), 0);
		CHECK(find(&v, "us_ssn") && find(&v, "us_ssn")->offset == 2);
		CHECK(find(&v, "iban") && find(&v, "iban")->offset == 16);
		CHECK(find(&v, "card_number") &&
		      find(&v, "card_number")->offset == 44);
		dlp_verdict_cleanup(&v);
		dlp_engine_free(fast);
	}
	free(b);
	dlp_engine_free(plain);
	return unit_done("test_dlp_equiv");
}
