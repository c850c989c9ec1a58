/*
 * dlp_builtin.c - the built-in detectors: their patterns and confirmers.
 *
 * Patterns avoid leading wildcards and unbounded repeats at the front so
 * Vectorscan can find them from a literal prefix.  A detector whose pattern
 * alone gives too many false positives has a confirmer that looks at the
 * bytes ending at the match (card numbers: Luhn; AWS secrets: character
 * mix); the stream keeps a tail window so those bytes are there even when
 * the match began in an earlier write.
 */
#include <errno.h>
#include <string.h>

#include "dlp.h"
#include "dlp_int.h"

static bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static bool is_word(unsigned char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'z') ||
	       (c >= 'A' && c <= 'Z') || c == '_';
}

static bool luhn_ok(const unsigned char *d, size_t n)
{
	unsigned sum = 0;
	bool same = true;

	/* d holds the digits in reverse: d[0] is the check digit. */
	for (size_t i = 0; i < n; i++) {
		unsigned v = d[i];

		if (i & 1) {
			v *= 2;
			if (v > 9)
				v -= 9;
		}
		sum += v;
		if (d[i] != d[0])
			same = false;
	}
	return sum % 10 == 0 && !same;
}

/*
 * The match ends at a digit run of 13-19 digits with at most one space or
 * dash between digits.  Walk back over it and accept the first start that
 * lies on a boundary, begins with an issuer digit 2-6 directly followed by
 * a digit (as the pattern has it) and passes Luhn; so
 * "qty 2 4111 1111 1111 1111" confirms the card after the quantity.
 *
 * Whatever this accepts is a match of the pattern ending at the end of w,
 * so the card fast path (dlp_fast.c) may call it at every place where a
 * digit is followed by a non-word byte and find what the pattern finds.
 */
static long confirm_card(const unsigned char *w, size_t wlen)
{
	unsigned char d[20];
	size_t n = 0, i = wlen;

	while (i > 0 && n < 19) {
		unsigned char c = w[i - 1];

		if (!is_digit(c))
			break;
		d[n++] = (unsigned char)(c - '0');
		i--;
		if (n >= 13 && c >= '2' && c <= '6' && is_digit(w[i + 1]) &&
		    (i == 0 || !is_word(w[i - 1])) && luhn_ok(d, n))
			return (long)(wlen - i);
		/* one separator between digits, never two */
		if (i > 1 && (w[i - 1] == ' ' || w[i - 1] == '-') &&
		    is_digit(w[i - 2]))
			i--;
	}
	return -1;
}

static bool is_b64(unsigned char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'z') ||
	       (c >= 'A' && c <= 'Z') || c == '/' || c == '+';
}

/*
 * 40 base64 characters, ending either one byte before the match end (the
 * pattern consumes a terminator) or at it (end of data).  A real secret is
 * random: it mixes upper case, lower case and digits, which rules out hex
 * digests and words.
 */
static long confirm_aws_secret(const unsigned char *w, size_t wlen)
{
	size_t end = wlen;
	bool up = false, lo = false, dig = false;

	if (end > 0 && !is_b64(w[end - 1]))
		end--;
	if (end < 40)
		return -1;
	for (size_t i = end - 40; i < end; i++) {
		up |= w[i] >= 'A' && w[i] <= 'Z';
		lo |= w[i] >= 'a' && w[i] <= 'z';
		dig |= is_digit(w[i]);
	}
	if (!(up && lo && dig))
		return -1;
	return (long)(wlen - (end - 40));
}

#define SM HS_FLAG_SINGLEMATCH

static const struct dlp_builtin builtins[] = {
    {"private_key", "-----BEGIN[ A-Z0-9]{0,24}PRIVATE KEY(?: BLOCK)?-----", SM,
     NULL},
    {"aws_access_key_id", "\\b(?:AKIA|ASIA)[A-Z0-9]{16}\\b", SM, NULL},
    {"aws_secret_access_key",
     "(?i:aws|secret)[^\\n]{0,32}[^A-Za-z0-9/+][A-Za-z0-9/+]{40}"
     "(?:[^A-Za-z0-9/+=]|$)",
     0, confirm_aws_secret},
    {"github_token",
     "\\b(?:gh[pousr]_[A-Za-z0-9]{36}|"
     "github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59})\\b",
     SM, NULL},
    {"slack_token", "\\bxox[abpr]-[0-9A-Za-z]{4,}-[0-9A-Za-z-]{8,}", SM, NULL},
    {"google_api_key", "\\bAIza[0-9A-Za-z_-]{35}", SM, NULL},
    {"stripe_key", "\\b[sr]k_live_[0-9A-Za-z]{20,}", SM, NULL},
    {"generic_api_key",
     "(?i)\\bapi[_-]?key[\"']?[ \\t]*[:=][ \\t]*[\"']?"
     "[A-Za-z0-9_/+=.-]{20,}",
     SM, NULL},
    {"jwt",
     "\\beyJ[A-Za-z0-9_-]{8,}\\.eyJ[A-Za-z0-9_-]{8,}\\."
     "[A-Za-z0-9_-]{16,}",
     SM, NULL},
    {"card_number", "\\b[2-6][0-9](?:[ -]?[0-9]){11,17}\\b", 0, confirm_card},
};

const struct dlp_builtin *dlp_builtin_find(const char *name)
{
	for (size_t i = 0; i < sizeof(builtins) / sizeof(builtins[0]); i++)
		if (strcmp(builtins[i].name, name) == 0)
			return &builtins[i];
	return NULL;
}

const char *dlp_builtin_name(size_t i)
{
	return i < sizeof(builtins) / sizeof(builtins[0]) ? builtins[i].name
							  : NULL;
}
