/*
 * dlp_classify.c - which custom patterns have nothing for Vectorscan to
 * anchor on, and what a cheap prefilter may look for instead.
 *
 * A pattern made only of character classes ([0-9]{3}-[0-9]{2}-[0-9]{4},
 * IBANs, phone numbers) keeps an automaton live over every digit of a log
 * file and costs Vectorscan ten times what a pattern with a literal does.
 * For such a pattern we derive two necessary conditions: the set of bytes
 * any match consists of, and the classes of its first bytes (a match of
 * the SSN pattern starts with digit, digit, digit, '-', ...).  The stream
 * then runs the pattern only on the runs of those bytes that contain a
 * position where the leading classes hold (dlp_fast.c).
 *
 * The parser understands a conservative subset of the syntax; anything
 * else (look-arounds, \A, \z, (?s), Unicode properties, ...) leaves the
 * pattern in the main database, which is always correct, only slower.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dlp.h"
#include "dlp_int.h"

struct parser {
	const char *p;
	bool fail;
	bool icase; /* (?i) anywhere: every set is case-folded at the end */
	struct dlp_bset all; /* bytes a match may consume */
	struct dlp_bset pre[DLP_PREFIX_MAX];
	unsigned plen;
	bool pre_done;
	unsigned lit_run; /* consecutive single-byte atoms at top level */
	bool has_literal;
};

static void bset_add(struct dlp_bset *b, unsigned c)
{
	b->w[c >> 6] |= 1ull << (c & 63);
}

static void bset_range(struct dlp_bset *b, unsigned lo, unsigned hi)
{
	for (unsigned c = lo; c <= hi && c < 256; c++)
		bset_add(b, c);
}

static void bset_or(struct dlp_bset *a, const struct dlp_bset *b)
{
	for (int i = 0; i < 4; i++)
		a->w[i] |= b->w[i];
}

static void bset_not(struct dlp_bset *b)
{
	for (int i = 0; i < 4; i++)
		b->w[i] = ~b->w[i];
}

bool dlp_bset_has(const struct dlp_bset *b, unsigned c)
{
	return (b->w[(c >> 6) & 3] >> (c & 63)) & 1;
}

static unsigned bset_count(const struct dlp_bset *b)
{
	unsigned n = 0;

	for (int i = 0; i < 4; i++)
		n += (unsigned)__builtin_popcountll(b->w[i]);
	return n;
}

static void bset_fold(struct dlp_bset *b)
{
	for (unsigned c = 'A'; c <= 'Z'; c++)
		if (dlp_bset_has(b, c) || dlp_bset_has(b, c + 32)) {
			bset_add(b, c);
			bset_add(b, c + 32);
		}
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * An escape after the backslash.  Fills *b with the bytes it matches; 1
 * when it is zero-width (\b, \B), 0 for a byte class, -1 when not
 * understood.
 */
static int escape(struct parser *ps, struct dlp_bset *b, bool in_class)
{
	char c = *ps->p++;

	memset(b, 0, sizeof(*b));
	switch (c) {
	case 'd':
	case 'D':
		bset_range(b, '0', '9');
		break;
	case 'w':
	case 'W':
		bset_range(b, '0', '9');
		bset_range(b, 'A', 'Z');
		bset_range(b, 'a', 'z');
		bset_add(b, '_');
		break;
	case 's':
	case 'S':
		bset_range(b, '\t', '\r');
		bset_add(b, ' ');
		break;
	case 'n':
		bset_add(b, '\n');
		return 0;
	case 't':
		bset_add(b, '\t');
		return 0;
	case 'r':
		bset_add(b, '\r');
		return 0;
	case 'f':
		bset_add(b, '\f');
		return 0;
	case 'v':
		bset_add(b, '\v');
		return 0;
	case 'b':
	case 'B':
		return in_class ? -1 : 1;
	case 'x': {
		int h = hexval(ps->p[0]), l = h < 0 ? -1 : hexval(ps->p[1]);

		if (l < 0)
			return -1;
		ps->p += 2;
		bset_add(b, (unsigned)(h * 16 + l));
		return 0;
	}
	default:
		/* an escaped punctuation byte stands for itself */
		if (c == '\0' || (c >= '0' && c <= '9') ||
		    (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (unsigned char)c >= 0x80)
			return -1;
		bset_add(b, (unsigned char)c);
		return 0;
	}
	if (c >= 'A' && c <= 'Z')
		bset_not(b);
	return 0;
}

/* A bracket expression; ps->p is past the '['. */
static int bracket(struct parser *ps, struct dlp_bset *b)
{
	bool neg = false, first = true;
	struct dlp_bset e;

	memset(b, 0, sizeof(*b));
	if (*ps->p == '^') {
		neg = true;
		ps->p++;
	}
	while (*ps->p && (*ps->p != ']' || first)) {
		unsigned lo;

		first = false;
		if (ps->p[0] == '[' && ps->p[1] == ':')
			return -1; /* POSIX classes: not worth it */
		if (*ps->p == '\\') {
			ps->p++;
			if (escape(ps, &e, true) != 0)
				return -1;
			if (bset_count(&e) != 1) {
				bset_or(b, &e);
				continue;
			}
			for (lo = 0; !dlp_bset_has(&e, lo); lo++)
				;
		} else {
			lo = (unsigned char)*ps->p++;
		}
		if (ps->p[0] == '-' && ps->p[1] && ps->p[1] != ']') {
			unsigned hi;

			ps->p++;
			if (*ps->p == '\\') {
				ps->p++;
				if (escape(ps, &e, true) != 0 ||
				    bset_count(&e) != 1)
					return -1;
				for (hi = 0; !dlp_bset_has(&e, hi); hi++)
					;
			} else {
				hi = (unsigned char)*ps->p++;
			}
			if (hi < lo)
				return -1;
			bset_range(b, lo, hi);
		} else {
			bset_add(b, lo);
		}
	}
	if (*ps->p != ']')
		return -1;
	ps->p++;
	if (neg)
		bset_not(b);
	return 0;
}

/* Quantifier after an atom: *min, *max (UINT32_MAX unbounded). */
static int quantifier(struct parser *ps, unsigned *min, unsigned *max)
{
	*min = *max = 1;
	switch (*ps->p) {
	case '?':
		*min = 0;
		break;
	case '*':
		*min = 0;
		*max = UINT32_MAX;
		break;
	case '+':
		*max = UINT32_MAX;
		break;
	case '{': {
		char *end;
		unsigned long a = strtoul(ps->p + 1, &end, 10), b = a;

		if (end == ps->p + 1 || a > 100000)
			return -1;
		if (*end == ',') {
			const char *q = end + 1;

			b = *q == '}' ? UINT32_MAX : strtoul(q, &end, 10);
			if (b != UINT32_MAX && (end == q || b < a))
				return -1;
			if (b == UINT32_MAX)
				end = (char *)q;
		}
		if (*end != '}')
			return -1;
		*min = (unsigned)a;
		*max = (unsigned)b;
		ps->p = end;
		break;
	}
	default:
		return 0;
	}
	ps->p++;
	if (*ps->p == '?') /* lazy: same language */
		ps->p++;
	if (*ps->p == '+')
		return -1; /* possessive */
	return 0;
}

static void alternation(struct parser *ps, int depth);

/* What one top-level atom means for the prefix and the literal test. */
static void top_atom(struct parser *ps, const struct dlp_bset *b, bool single,
		     unsigned min, unsigned max)
{
	if (!single) {
		ps->lit_run = 0;
		ps->pre_done = true;
		return;
	}
	if (bset_count(b) == 1 && min == max)
		ps->lit_run += min;
	else
		ps->lit_run = 0;
	if (ps->lit_run >= 2)
		ps->has_literal = true;
	for (unsigned i = 0; i < min && !ps->pre_done; i++) {
		if (ps->plen == DLP_PREFIX_MAX) {
			ps->pre_done = true;
			break;
		}
		ps->pre[ps->plen++] = *b;
	}
	if (max != min)
		ps->pre_done = true;
}

/* One atom and its quantifier. */
static void atom(struct parser *ps, int depth)
{
	struct dlp_bset b;
	bool single = true, zero = false;
	unsigned min, max;
	char c = *ps->p++;

	memset(&b, 0, sizeof(b));
	if (c == '(') {
		if (ps->p[0] == '?') {
			if (ps->p[1] == ':') {
				ps->p += 2;
			} else if (ps->p[1] == 'i' && ps->p[2] == ':') {
				ps->icase = true;
				ps->p += 3;
			} else if (ps->p[1] == 'i' && ps->p[2] == ')') {
				ps->icase = true;
				ps->p += 3;
				return; /* a flag, zero-width */
			} else {
				ps->fail = true;
				return;
			}
		}
		alternation(ps, depth + 1);
		if (*ps->p != ')') {
			ps->fail = true;
			return;
		}
		ps->p++;
		single = false;
	} else if (c == '[') {
		if (bracket(ps, &b))
			ps->fail = true;
	} else if (c == '\\') {
		int r = escape(ps, &b, false);

		if (r < 0)
			ps->fail = true;
		zero = r == 1;
	} else if (c == '.') {
		bset_range(&b, 0, 255);
		b.w[0] &= ~(1ull << '\n');
	} else if (c == '^' || c == '$') {
		zero = true;
	} else if (c == '*' || c == '+' || c == '?' || c == '{' || c == ')' ||
		   c == '|' || c == '\0') {
		ps->fail = true;
		return;
	} else {
		bset_add(&b, (unsigned char)c);
	}
	if (ps->fail || quantifier(ps, &min, &max)) {
		ps->fail = true;
		return;
	}
	if (zero) {
		if (min != 1 || max != 1)
			ps->fail = true;
		return;
	}
	bset_or(&ps->all, &b);
	if (depth == 0)
		top_atom(ps, &b, single, min, max);
}

static void alternation(struct parser *ps, int depth)
{
	if (depth > 32) {
		ps->fail = true;
		return;
	}
	while (!ps->fail && *ps->p && *ps->p != ')') {
		if (*ps->p == '|') {
			ps->p++;
			if (depth == 0) {
				/* no common prefix to speak of */
				ps->plen = 0;
				ps->pre_done = true;
				ps->has_literal =
				    true; /* leave it to Vectorscan */
			}
			continue;
		}
		atom(ps, depth);
	}
}

/*
 * Classify a custom pattern.  0 and *out filled when it has no literal
 * and a prefilter is worth having; -1 when it belongs in the main
 * database.  Width limits come from Vectorscan itself.
 */
int dlp_classify(const char *pattern, struct dlp_class_rule *out)
{
	struct parser ps = {.p = pattern};
	hs_expr_info_t *info = NULL;
	hs_compile_error_t *cerr = NULL;
	unsigned real = 0;

	alternation(&ps, 0);
	if (ps.fail || *ps.p || ps.has_literal)
		return -1;
	if (ps.icase) {
		bset_fold(&ps.all);
		for (unsigned i = 0; i < ps.plen; i++)
			bset_fold(&ps.pre[i]);
	}
	/* narrow enough that runs of it are short in text */
	if (bset_count(&ps.all) > 96 || dlp_bset_has(&ps.all, '\n'))
		return -1;
	for (unsigned i = 0; i < ps.plen; i++)
		real += bset_count(&ps.pre[i]) < 128;
	if (real < 4)
		return -1;
	if (hs_expression_info(pattern, DLP_HS_CUSTOM_FLAGS, &info, &cerr) !=
	    HS_SUCCESS) {
		hs_free_compile_error(cerr);
		return -1;
	}
	bool ok = info->max_width <= DLP_CLASS_WIDTH_MAX &&
		  info->min_width >= ps.plen;

	free(info);
	if (!ok)
		return -1;
	out->all = ps.all;
	out->plen = ps.plen;
	memcpy(out->pre, ps.pre, sizeof(ps.pre));
	return 0;
}
