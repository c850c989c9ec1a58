/*
 * fuzz_token.c - libFuzzer target for session-handle verification.
 *
 * Each input is verified twice against the test-only key pair checked in
 * under tests/fuzz/keys (embedded below, so the target needs no files):
 *
 *  1. as it is, which exercises the length cap, the segment split, the
 *     header parser, the base64url decoder and the signature check;
 *  2. with its signature replaced by a valid one over whatever precedes the
 *     last '.', which lets mutated headers and claims get past the
 *     signature and reach the claim checks, where a forged handle never
 *     gets to but a bug in the minter or a key leak would.
 *
 * "now" is fixed so that a run is reproducible; corpus handles expire in
 * 2100.  The only requirement is that nothing crashes or leaks; results
 * are checked for consistency (a zero return fills sane claims).
 */
#include "token.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_NOW ((time_t)1700000000)

/* Test-only keys: the same as tests/fuzz/keys/token-test.{key,pub}. */
static const char fuzz_pub_pem[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MCowBQYDK2VwAyEAPnEz1VfAytTDRvQe+KdVXdt8ULxKU1anguTeqk0QFcQ=\n"
    "-----END PUBLIC KEY-----\n";
static const char fuzz_priv_pem[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MC4CAQAwBQYDK2VwBCIEIJY005rcCSNGWQUq471orPwDcsvInBdiQ7kJajZtivmr\n"
    "-----END PRIVATE KEY-----\n";

static struct token_key *fuzz_pub;
static EVP_PKEY *fuzz_priv;

/* token.c loads keys from files only, so go through a temporary one. */
static struct token_key *fuzz_load_pub(void)
{
	char path[] = "/tmp/fuzz_token-XXXXXX";
	const char *why = "";
	struct token_key *k;
	int fd = mkstemp(path);

	if (fd < 0 || write(fd, fuzz_pub_pem, strlen(fuzz_pub_pem)) !=
			  (ssize_t)strlen(fuzz_pub_pem)) {
		perror("fuzz_token: temporary key file");
		abort();
	}
	close(fd);
	k = token_key_load_public(path, &why);
	unlink(path);
	if (!k) {
		fprintf(stderr, "fuzz_token: %s\n", why);
		abort();
	}
	return k;
}

static void fuzz_init(void)
{
	BIO *bio;

	fuzz_pub = fuzz_load_pub();
	bio = BIO_new_mem_buf(fuzz_priv_pem, -1);
	fuzz_priv = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
	BIO_free(bio);
	if (!fuzz_priv)
		abort();
}

static void fuzz_check(const char *jwt, size_t len)
{
	struct token_claims c;
	const char *why = NULL;
	int rc;

	rc = token_verify(jwt, len, fuzz_pub, "occfs", FUZZ_NOW, 30, &c, &why);
	if (rc == 0) {
		/* an accepted handle must satisfy what callers rely on */
		if (!token_fsid_valid(c.filesystem_id) || !c.sid[0] ||
		    c.exp <= FUZZ_NOW - 30 || strcmp(c.aud, "occfs") != 0)
			abort();
	} else if (!why || !why[0]) {
		abort(); /* every refusal carries a reason */
	}
}

/* Replace everything after the last '.' by a valid base64url signature. */
static void fuzz_resign(const uint8_t *data, size_t size)
{
	static const char a[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	unsigned char sig[64];
	size_t siglen = sizeof(sig), tbs, i, o;
	EVP_MD_CTX *ctx;
	char *jwt;
	uint32_t v;

	for (tbs = size; tbs > 0 && data[tbs - 1] != '.'; tbs--)
		;
	if (tbs == 0 || size > TOKEN_MAX_LEN)
		return;
	tbs--; /* the signing input ends before the last '.' */
	ctx = EVP_MD_CTX_new();
	if (!ctx || EVP_DigestSignInit(ctx, NULL, NULL, NULL, fuzz_priv) != 1 ||
	    EVP_DigestSign(ctx, sig, &siglen, data, tbs) != 1) {
		EVP_MD_CTX_free(ctx);
		return;
	}
	EVP_MD_CTX_free(ctx);
	jwt = malloc(tbs + 1 + 88);
	if (!jwt)
		return;
	memcpy(jwt, data, tbs);
	o = tbs;
	jwt[o++] = '.';
	for (i = 0; i < 63; i += 3) {
		v = (uint32_t)sig[i] << 16 | (uint32_t)sig[i + 1] << 8 |
		    sig[i + 2];
		jwt[o++] = a[v >> 18 & 63];
		jwt[o++] = a[v >> 12 & 63];
		jwt[o++] = a[v >> 6 & 63];
		jwt[o++] = a[v & 63];
	}
	jwt[o++] = a[sig[63] >> 2];
	jwt[o++] = a[(sig[63] & 3) << 4];
	fuzz_check(jwt, o);
	free(jwt);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	char *copy;

	if (!ready) {
		fuzz_init();
		ready = 1;
	}
	/* a copy of exactly size bytes, so ASan sees any over-read */
	copy = malloc(size ? size : 1);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	fuzz_check(copy, size);
	free(copy);
	fuzz_resign(data, size);
	return 0;
}
