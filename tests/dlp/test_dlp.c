/*
 * test_dlp.c - the DLP scanner's built-in detectors, whole and split.
 *
 * Each detector gets a positive sample and near misses.  Every positive is
 * also fed split at every byte boundary across two writes and as many tiny
 * writes, since the broker feeds the scanner whatever chunks the guest
 * wrote and a secret straddling two of them must still be found.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dlp_test.h"

struct sample {
	const char *rule;
	const char *secret;	    /* what the finding must locate */
	const char *before, *after; /* text around it on its line */
};

static const struct sample positives[] = {
    {"private_key", "-----BEGIN RSA PRIVATE KEY-----", "",
     "\nMIIEowIBAAKCAQEA7\n-----END RSA PRIVATE KEY-----\n"},
    {"private_key", "-----BEGIN OPENSSH PRIVATE KEY-----", "key:\n", "\n"},
    {"private_key", "-----BEGIN PGP PRIVATE KEY BLOCK-----", "", "\n"},
    {"aws_access_key_id", "AKIAIOSFODNN7EXAMPLE", "id=", "\n"},
    {"aws_access_key_id", "ASIAY34FZKBOKMUTVV7A", "\"", "\","},
    {"aws_secret_access_key", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
     "[default]\naws_secret_access_key = ", "\nregion = x\n"},
    {"aws_secret_access_key", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
     "{\"SecretAccessKey\": \"", "\"}"},
    {"aws_secret_access_key", "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789+/Ab",
     "export AWS_SECRET_ACCESS_KEY=", ""},
    {"github_token", "ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789",
     "token: ", "\n"},
    {"github_token",
     "github_pat_11ABCDEFG0123456789abc_"
     "0123456789abcdefghijABCDEFGHIJ0123456789abcdefghijABCDEFGHI",
     "x ", " y"},
    {"slack_token", "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOp",
     "SLACK=", "\n"},
    {"google_api_key", "AIzaSyA-1234567890abcdefghijklmnopqrstu", "k=", "&q=1"},
    {"stripe_key", "sk_live_4eC39HqLyjWDarjtT1zdp7dc", "stripe ", "\n"},
    {"generic_api_key", "api_key = \"Zx9ab8cd7ef6gh5ij4kl3mn0\"", "cfg ", "\n"},
    {"generic_api_key", "API-KEY: abcdefghijklmnopqrstuvwxyz", "", "\n"},
    {"jwt",
     "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibm"
     "FtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMe"
     "Jf36POk6yJV_adQssw5c",
     "Authorization: Bearer ", "\n"},
    {"card_number", "4111 1111 1111 1111", "card ", " exp 12/29"},
    {"card_number", "5500-0000-0000-0004", "", "\n"},
    {"card_number", "378282246310005", "amex:", "."},
    {"card_number", "4111111111111111", "qty 2 ", "\n"},
    {"card_number", "6011000990139424", "2 ", "\n"},
};

/* Near misses: each must give no finding of any built-in detector. */
static const char *const negatives[] = {
    "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8A\n",
    "-----BEGIN CERTIFICATE-----\n",
    "AKIAIOSFODNN7EXAMPL is 19 characters\n",
    "AKIAIOSFODNN7EXAMPLEX is 21 characters\n",
    "akiaiosfodnn7example lower case\n",
    "AKIBIOSFODNN7EXAMPLE wrong prefix\n",
    "secret = 0123456789abcdef0123456789abcdef01234567 (a hex digest)\n",
    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY without a keyword\n",
    "secret: wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEYZ is 41 long\n",
    "ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ012345678 is short\n",
    "xoxz-123456789012-1234567890123-AbCdEfGhIjKlMnOp\n",
    "AIzaSyA-1234567890abcdefghijklmnopqrs is short\n",
    "sk_test_4eC39HqLyjWDarjtT1zdp7dc is a test key\n",
    "api_key = short\n",
    "eyJhbGciOiJIUzI1NiJ9 alone is no token\n",
    "4111 1111 1111 1112 fails Luhn\n",
    "4111-1111-1111-1121\n",
    "1234567812345670 starts with 1\n",
    "order 41111111111111111111111 is too long\n",
    "4444 4444 4444 4444 fails Luhn\n",
    "2024-01-15 12:34:56.789 INFO request id 1234-5678-90\n",
    "4111  1111  1111  1111 has double spaces\n",
    "x4111111111111111 is glued to a word\n",
};

static char *sample_text(const struct sample *sm, size_t *len, size_t *off)
{
	const char *pre = "Some ordinary text before it.\n";
	size_t n = strlen(pre) + strlen(sm->before) + strlen(sm->secret) +
		   strlen(sm->after) + 1;
	char *t = malloc(n);

	snprintf(t, n, "%s%s%s%s", pre, sm->before, sm->secret, sm->after);
	*len = n - 1;
	*off = strlen(pre) + strlen(sm->before);
	return t;
}

static void test_positives(struct dlp_engine *e)
{
	for (size_t i = 0; i < sizeof(positives) / sizeof(positives[0]); i++) {
		const struct sample *sm = &positives[i];
		struct dlp_verdict v;
		size_t len, off;
		char *t = sample_text(sm, &len, &off);
		const struct dlp_finding *f;

		CHECK_EQ(scan(e, "f.txt", t, len, len, 0, &v), 0);
		f = find(&v, sm->rule);
		CHECK(f != NULL);
		if (!f) {
			fprintf(stderr, "missed %s in %s\n", sm->rule, t);
		} else {
			CHECK_EQ(v.action, DLP_BLOCK);
			CHECK_EQ(f->offset, off);
			/* detectors with open-ended tails fire at their
			 * shortest match; a terminator may be included */
			CHECK(f->end > off &&
			      f->end <= off + strlen(sm->secret) + 1);
			/* the excerpt never carries the secret */
			CHECK(strstr(f->excerpt, sm->secret) == NULL);
			CHECK(strstr(f->excerpt, "*") != NULL);
		}
		dlp_verdict_cleanup(&v);
		free(t);
	}
}

static void test_negatives(struct dlp_engine *e)
{
	for (size_t i = 0; i < sizeof(negatives) / sizeof(negatives[0]); i++) {
		struct dlp_verdict v;
		const char *t = negatives[i];

		CHECK_EQ(scan(e, "f.txt", t, strlen(t), strlen(t), 0, &v), 0);
		CHECK_EQ(v.nfindings, 0);
		CHECK_EQ(v.action, DLP_ALLOW);
		if (v.nfindings)
			fprintf(stderr, "false positive %s: %s",
				v.findings[0].rule, t);
		dlp_verdict_cleanup(&v);
	}
}

/* Every split point across two writes, then 1-, 2- and 7-byte writes. */
static void test_splits(struct dlp_engine *e)
{
	static const size_t steps[] = {1, 2, 7};

	for (size_t i = 0; i < sizeof(positives) / sizeof(positives[0]); i++) {
		size_t len, off, bad = 0;
		char *t = sample_text(&positives[i], &len, &off);

		for (size_t k = 0; k <= len; k++) {
			struct dlp_verdict v;
			const struct dlp_finding *f;

			if (scan(e, "f", t, len, k, 0, &v) != 0) {
				bad++;
				continue;
			}
			f = find(&v, positives[i].rule);
			if (!f || f->offset != off)
				bad++;
			dlp_verdict_cleanup(&v);
		}
		for (size_t j = 0; j < 3; j++) {
			struct dlp_verdict v;
			const struct dlp_finding *f;

			if (scan(e, "f", t, len, 0, steps[j], &v) != 0) {
				bad++;
				continue;
			}
			f = find(&v, positives[i].rule);
			if (!f || f->offset != off)
				bad++;
			dlp_verdict_cleanup(&v);
		}
		CHECK_EQ(bad, 0);
		if (bad)
			fprintf(stderr, "%s: %zu bad splits\n",
				positives[i].rule, bad);
		free(t);
	}
}

int main(void)
{
	struct dlp_engine *e = builtins_engine(DLP_BLOCK);

	CHECK(e != NULL);
	if (!e)
		return unit_done("test_dlp");
	test_positives(e);
	test_negatives(e);
	test_splits(e);
	dlp_engine_free(e);
	return unit_done("test_dlp");
}
