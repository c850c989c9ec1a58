/*
 * test_token.c - session handles: key files, minting, and above all the
 * ways a verifier must refuse a handle.
 *
 * Hostile handles are built here independently of token.c (own base64url
 * encoder, OpenSSL signing of arbitrary header and payload text), so a bug
 * shared by minting and verifying cannot hide itself.
 */
#include "token.h"
#include "unit.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#define NOW ((time_t)1700000000)
#define AUD "occfs"

static char dir[64];
static char priv_path[128], pub_path[128], priv2_path[128], pub2_path[128];
static struct token_key *priv, *pub, *pub2;
static EVP_PKEY *raw_priv; /* the same private key, for hand-made handles */

/* ---- hand-made handles ----------------------------------------------------
 */

static char *b64url(const void *src, size_t n)
{
	static const char a[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789-_";
	const unsigned char *s = src;
	char *out = malloc(n / 3 * 4 + 5), *o = out;
	size_t i;

	for (i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)s[i] << 16;
		size_t left = n - i;

		if (left > 1)
			v |= (uint32_t)s[i + 1] << 8;
		if (left > 2)
			v |= s[i + 2];
		*o++ = a[v >> 18 & 63];
		*o++ = a[v >> 12 & 63];
		if (left > 1)
			*o++ = a[v >> 6 & 63];
		if (left > 2)
			*o++ = a[v & 63];
	}
	*o = '\0';
	return out;
}

/* "h64.p64" + "." + base64url(sig) where sig is Ed25519 over "h64.p64". */
static char *sign_segments(const char *h64, const char *p64, EVP_PKEY *key)
{
	unsigned char sig[64];
	size_t siglen = sizeof(sig);
	char *tbs, *s64, *out;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	if (asprintf(&tbs, "%s.%s", h64, p64) < 0)
		abort();
	if (EVP_DigestSignInit(ctx, NULL, NULL, NULL, key) != 1 ||
	    EVP_DigestSign(ctx, sig, &siglen, (unsigned char *)tbs,
			   strlen(tbs)) != 1)
		abort();
	EVP_MD_CTX_free(ctx);
	s64 = b64url(sig, siglen);
	if (asprintf(&out, "%s.%s", tbs, s64) < 0)
		abort();
	free(tbs);
	free(s64);
	return out;
}

static char *make_jwt(const char *header, const char *payload)
{
	char *h = b64url(header, strlen(header));
	char *p = b64url(payload, strlen(payload));
	char *out = sign_segments(h, p, raw_priv);

	free(h);
	free(p);
	return out;
}

static const char good_header[] = "{\"alg\":\"EdDSA\",\"typ\":\"JWT\"}";

static json_t *good_claims(void)
{
	return json_pack("{s:s,s:s,s:s,s:s,s:I,s:I,s:s,s:s}", "sid", "s-1",
			 "filesystem_id", "fs-01", "tenant", "acme", "intent",
			 "read", "exp", (json_int_t)NOW + 600, "iat",
			 (json_int_t)NOW, "jti", "j-1", "aud", AUD);
}

static char *jwt_from_json(const char *header, json_t *claims)
{
	char *payload = json_dumps(claims, JSON_COMPACT);
	char *out = make_jwt(header, payload);

	free(payload);
	json_decref(claims);
	return out;
}

static int verify_str(const char *jwt, const char **why)
{
	struct token_claims c;

	*why = NULL;
	return token_verify(jwt, strlen(jwt), pub, AUD, NOW, 0, &c, why);
}

/* Verify and expect rc; on refusal the reason must be a non-empty string. */
static void expect(const char *jwt, int rc, const char *why_want, int line)
{
	const char *why;
	int got = verify_str(jwt, &why);

	if (got != rc)
		fprintf(stderr, "line %d: got %d (%s) want %d\n", line, got,
			why ? why : "", rc);
	CHECK_EQ(got, rc);
	if (rc != 0)
		CHECK(why && why[0]);
	if (why_want && got != 0)
		CHECK_STR(why, why_want);
}
#define EXPECT(jwt, rc, why) expect(jwt, rc, why, __LINE__)

/* ---- set-up -------------------------------------------------------------- */

static void setup(void)
{
	const char *why = NULL;
	struct stat st;
	FILE *f;

	snprintf(dir, sizeof(dir), "%s/occfs-token-XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(dir))
		abort();
	snprintf(priv_path, sizeof(priv_path), "%s/priv.pem", dir);
	snprintf(pub_path, sizeof(pub_path), "%s/pub.pem", dir);
	snprintf(priv2_path, sizeof(priv2_path), "%s/priv2.pem", dir);
	snprintf(pub2_path, sizeof(pub2_path), "%s/pub2.pem", dir);
	umask(0);
	CHECK_EQ(token_keygen(priv_path, pub_path), 0);
	umask(022);
	CHECK_EQ(token_keygen(priv2_path, pub2_path), 0);
	CHECK(stat(priv_path, &st) == 0 && (st.st_mode & 0777) == 0600);
	CHECK(stat(pub_path, &st) == 0 && (st.st_mode & 0777) == 0644);
	priv = token_key_load_private(priv_path, &why);
	pub = token_key_load_public(pub_path, &why);
	pub2 = token_key_load_public(pub2_path, &why);
	if (!priv || !pub || !pub2) {
		fprintf(stderr, "cannot load keys: %s\n", why);
		exit(1);
	}
	f = fopen(priv_path, "r");
	raw_priv = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
	if (f)
		fclose(f);
	if (!raw_priv)
		abort();
}

static void cleanup(void)
{
	char cmd[128];

	token_key_free(priv);
	token_key_free(pub);
	token_key_free(pub2);
	EVP_PKEY_free(raw_priv);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
}

/* ---- cases --------------------------------------------------------------- */

static void fill(struct token_claims *c)
{
	memset(c, 0, sizeof(*c));
	strcpy(c->sid, "sess-42");
	strcpy(c->filesystem_id, "fs-01_a.b");
	strcpy(c->tenant, "acme");
	strcpy(c->aud, AUD);
	c->intent = TOKEN_INTENT_PREVIEW;
	c->exp = NOW + 3600;
	c->iat = NOW - 5;
}

static void test_roundtrip(void)
{
	struct token_claims c, got, got2;
	const char *why = NULL;
	char *jwt = NULL, *jwt2 = NULL;

	fill(&c);
	strcpy(c.jti, "jti-fixed");
	CHECK_EQ(token_mint(&c, priv, &jwt), 0);
	CHECK(jwt && strlen(jwt) <= TOKEN_MAX_LEN);
	memset(&got, 0x55, sizeof(got));
	CHECK_EQ(token_verify(jwt, strlen(jwt), pub, AUD, NOW, 0, &got, &why),
		 0);
	CHECK_STR(got.sid, c.sid);
	CHECK_STR(got.filesystem_id, c.filesystem_id);
	CHECK_STR(got.tenant, c.tenant);
	CHECK_STR(got.jti, c.jti);
	CHECK_STR(got.aud, c.aud);
	CHECK_EQ(got.intent, c.intent);
	CHECK_EQ(got.exp, c.exp);
	CHECK_EQ(got.iat, c.iat);
	/* the header is exactly the documented one */
	CHECK(strncmp(jwt, "eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCJ9.", 37) == 0);
	/* verifying with the private key's own object also works */
	CHECK_EQ(token_verify(jwt, strlen(jwt), priv, AUD, NOW, 0, NULL, &why),
		 0);
	free(jwt);

	/* empty jti: a random one; iat 0: now */
	c.jti[0] = '\0';
	c.iat = 0;
	CHECK_EQ(token_mint(&c, priv, &jwt), 0);
	CHECK_EQ(token_mint(&c, priv, &jwt2), 0);
	CHECK_EQ(token_verify(jwt, strlen(jwt), pub, AUD, NOW, 0, &got, &why),
		 0);
	CHECK_EQ(
	    token_verify(jwt2, strlen(jwt2), pub, AUD, NOW, 0, &got2, &why), 0);
	CHECK(strlen(got.jti) >= 16);
	CHECK(strcmp(got.jti, got2.jti) != 0);
	CHECK(got.iat >= NOW && got.iat <= time(NULL) + 1);
	free(jwt);
	free(jwt2);

	/* every intent survives the trip */
	for (int i = TOKEN_INTENT_READ; i <= TOKEN_INTENT_PREVIEW; i++) {
		c.intent = (enum token_intent)i;
		CHECK_EQ(token_mint(&c, priv, &jwt), 0);
		CHECK_EQ(token_verify(jwt, strlen(jwt), pub, AUD, NOW, 0, &got,
				      &why),
			 0);
		CHECK_EQ(got.intent, i);
		free(jwt);
	}
}

static void test_mint_refuses(void)
{
	struct token_claims c;
	char *jwt = (char *)"x";

	fill(&c);
	strcpy(c.filesystem_id, "../etc");
	CHECK_EQ(token_mint(&c, priv, &jwt), -EINVAL);
	CHECK(jwt == NULL);
	fill(&c);
	c.sid[0] = '\0';
	CHECK_EQ(token_mint(&c, priv, &jwt), -EINVAL);
	fill(&c);
	c.aud[0] = '\0';
	CHECK_EQ(token_mint(&c, priv, &jwt), -EINVAL);
	fill(&c);
	strcpy(c.tenant, "a\nb");
	CHECK_EQ(token_mint(&c, priv, &jwt), -EINVAL);
	fill(&c);
	memset(c.sid, 'a', sizeof(c.sid)); /* not NUL-terminated */
	CHECK_EQ(token_mint(&c, priv, &jwt), -EINVAL);
	fill(&c);
	c.intent = (enum token_intent)7;
	CHECK_EQ(token_mint(&c, priv, &jwt), -EINVAL);
	fill(&c);
	CHECK_EQ(token_mint(&c, pub, &jwt),
		 -EINVAL); /* public key cannot sign */
}

/* Replace the character at offset i by another alphabet character. */
static char flip(char *jwt, size_t i)
{
	char orig = jwt[i];

	jwt[i] = orig == 'A' ? 'B' : 'A';
	return orig;
}

static void test_forged(void)
{
	struct token_claims c;
	const char *why;
	char *jwt, *p1, *p2, orig;
	size_t n, i;

	fill(&c);
	CHECK_EQ(token_mint(&c, priv, &jwt), 0);
	n = strlen(jwt);
	p1 = strchr(jwt, '.');
	p2 = strchr(p1 + 1, '.');

	i = (size_t)(p2 - jwt) + 10; /* signature */
	orig = flip(jwt, i);
	EXPECT(jwt, -EKEYREJECTED, "handle signature does not verify");
	jwt[i] = orig;
	EXPECT(jwt, 0, NULL);

	i = (size_t)(p1 - jwt) + 7; /* payload */
	orig = flip(jwt, i);
	EXPECT(jwt, -EKEYREJECTED, "handle signature does not verify");
	jwt[i] = orig;

	orig = flip(jwt, 3); /* header */
	EXPECT(jwt, -EKEYREJECTED, NULL);
	jwt[3] = orig;
	EXPECT(jwt, 0, NULL);

	/* the last signature character carries 4 unused bits: set one */
	orig = jwt[n - 1];
	jwt[n - 1] = (char)(orig + 1);
	EXPECT(jwt, -EKEYREJECTED, "handle signature is not base64url");
	jwt[n - 1] = orig;
	EXPECT(jwt, 0, NULL);

	/* a good handle checked against another key */
	CHECK_EQ(token_verify(jwt, n, pub2, AUD, NOW, 0, NULL, &why),
		 -EKEYREJECTED);
	CHECK_STR(why, "handle signature does not verify");

	/* truncated signature (63 bytes) and a longer one (67 bytes) */
	p2 = strrchr(jwt, '.');
	strcpy(p2 + 1 + 84, "");
	EXPECT(jwt, -EKEYREJECTED, NULL);
	free(jwt);
	CHECK_EQ(token_mint(&c, priv, &jwt), 0);
	jwt = realloc(jwt, strlen(jwt) + 8);
	strcat(jwt, "AAAA");
	EXPECT(jwt, -EKEYREJECTED, NULL);
	free(jwt);
}

static void test_audience(void)
{
	json_t *j;
	char *jwt;
	const char *why;
	struct token_claims c;

	j = good_claims();
	json_object_set_new(j, "aud", json_string("other"));
	jwt = jwt_from_json(good_header, j);
	EXPECT(jwt, -EACCES, "handle audience mismatch");
	free(jwt);

	j = good_claims();
	json_object_set_new(j, "aud", json_pack("[s,s]", "x", AUD));
	jwt = jwt_from_json(good_header, j);
	CHECK_EQ(token_verify(jwt, strlen(jwt), pub, AUD, NOW, 0, &c, &why), 0);
	CHECK_STR(c.aud, AUD);
	free(jwt);

	j = good_claims();
	json_object_set_new(j, "aud", json_pack("[s,s]", "x", "y"));
	jwt = jwt_from_json(good_header, j);
	EXPECT(jwt, -EACCES, "handle audience mismatch");
	free(jwt);

	j = good_claims();
	json_object_set_new(j, "aud", json_pack("[s,i]", AUD, 3));
	jwt = jwt_from_json(good_header, j);
	EXPECT(jwt, -EKEYREJECTED, NULL);
	free(jwt);

	j = good_claims();
	json_object_set_new(j, "aud", json_array());
	jwt = jwt_from_json(good_header, j);
	EXPECT(jwt, -EKEYREJECTED, NULL);
	free(jwt);

	/* a prefix of the expected audience is not the audience */
	j = good_claims();
	json_object_set_new(j, "aud", json_string("occ"));
	jwt = jwt_from_json(good_header, j);
	EXPECT(jwt, -EACCES, NULL);
	free(jwt);
}

static void test_expiry(void)
{
	json_t *j;
	char *jwt;
	const char *why;

	j = good_claims();
	json_object_set_new(j, "exp", json_integer(NOW - 10));
	jwt = jwt_from_json(good_header, j);
	EXPECT(jwt, -EKEYEXPIRED, "handle expired");
	CHECK_EQ(token_verify(jwt, strlen(jwt), pub, AUD, NOW, 9, NULL, &why),
		 -EKEYEXPIRED);
	CHECK_EQ(token_verify(jwt, strlen(jwt), pub, AUD, NOW, 11, NULL, &why),
		 0);
	CHECK_EQ(
	    token_verify(jwt, strlen(jwt), pub, AUD, NOW, -100, NULL, &why),
	    -EKEYEXPIRED);
	free(jwt);

	j = good_claims(); /* exp == now is already expired */
	json_object_set_new(j, "exp", json_integer(NOW));
	jwt = jwt_from_json(good_header, j);
	EXPECT(jwt, -EKEYEXPIRED, NULL);
	free(jwt);

	j = good_claims(); /* extreme values must not overflow */
	json_object_set_new(j, "exp", json_integer(INT64_MIN));
	jwt = jwt_from_json(good_header, j);
	EXPECT(jwt, -EKEYEXPIRED, NULL);
	CHECK_EQ(token_verify(jwt, strlen(jwt), pub, AUD, NOW, INT32_MAX, NULL,
			      &why),
		 -EKEYEXPIRED);
	free(jwt);
	j = good_claims();
	json_object_set_new(j, "exp", json_integer(INT64_MAX));
	jwt = jwt_from_json(good_header, j);
	EXPECT(jwt, 0, NULL);
	free(jwt);

	j = good_claims(); /* not before: honoured when present */
	json_object_set_new(j, "nbf", json_integer(NOW + 100));
	jwt = jwt_from_json(good_header, j);
	EXPECT(jwt, -EKEYREJECTED, NULL);
	CHECK_EQ(token_verify(jwt, strlen(jwt), pub, AUD, NOW, 200, NULL, &why),
		 0);
	free(jwt);
}

static void test_headers(void)
{
	static const char *bad[] = {
	    "{\"alg\":\"none\",\"typ\":\"JWT\"}",
	    "{\"alg\":\"HS256\",\"typ\":\"JWT\"}",
	    "{\"alg\":\"RS256\"}",
	    "{\"alg\":\"eddsa\"}",
	    "{\"alg\":\"EdDSA \"}",
	    "{\"alg\":\"EdDSA\\u0000\"}",
	    "{\"typ\":\"JWT\"}",
	    "{\"alg\":[\"EdDSA\"]}",
	    "{\"alg\":\"EdDSA\",\"typ\":\"JWE\"}",
	    "{\"alg\":\"EdDSA\",\"crit\":[\"exp\"]}",
	    "{\"alg\":\"none\",\"alg\":\"EdDSA\"}",
	    "{\"alg\":\"EdDSA\",\"alg\":\"EdDSA\"}",
	    "[\"EdDSA\"]",
	    "\"EdDSA\"",
	    "{\"alg\":\"EdDSA\"} x",
	    "",
	};
	json_t *j = good_claims();
	char *payload = json_dumps(j, JSON_COMPACT), *jwt, *h, *p;
	unsigned char mac[32];
	unsigned int maclen = sizeof(mac);
	size_t i;

	json_decref(j);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		jwt = make_jwt(bad[i], payload);
		EXPECT(jwt, -EKEYREJECTED, NULL);
		free(jwt);
	}
	/* the minimal header is fine */
	jwt = make_jwt("{\"alg\":\"EdDSA\"}", payload);
	EXPECT(jwt, 0, NULL);
	free(jwt);

	/* alg none with an empty signature: the classic downgrade */
	h = b64url("{\"alg\":\"none\"}", 14);
	p = b64url(payload, strlen(payload));
	if (asprintf(&jwt, "%s.%s.", h, p) < 0)
		abort();
	EXPECT(jwt, -EKEYREJECTED, "handle is not a JWT");
	free(jwt);
	if (asprintf(&jwt, "%s.%s", h, p) < 0)
		abort();
	EXPECT(jwt, -EKEYREJECTED, "handle is not a JWT");
	free(jwt);
	free(h);

	/* HS256 keyed with the public key's PEM text: refused on alg */
	h = b64url("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", 27);
	if (asprintf(&jwt, "%s.%s", h, p) < 0)
		abort();
	HMAC(EVP_sha256(), "pubkey", 6, (unsigned char *)jwt, strlen(jwt), mac,
	     &maclen);
	free(jwt);
	{
		char *m = b64url(mac, maclen);

		if (asprintf(&jwt, "%s.%s.%s", h, p, m) < 0)
			abort();
		free(m);
	}
	EXPECT(jwt, -EKEYREJECTED, "handle algorithm is not EdDSA");
	free(jwt);
	free(h);
	free(p);
	free(payload);
}

static void test_claims_missing(void)
{
	static const char *req[] = {"sid", "filesystem_id", "tenant", "intent",
				    "exp", "jti",	    "aud"};
	size_t i;
	json_t *j;
	char *jwt;

	for (i = 0; i < sizeof(req) / sizeof(req[0]); i++) {
		j = good_claims();
		CHECK_EQ(json_object_del(j, req[i]), 0);
		jwt = jwt_from_json(good_header, j);
		EXPECT(jwt, -EKEYREJECTED, "handle lacks a required claim");
		free(jwt);
	}
	j = good_claims(); /* iat is optional */
	json_object_del(j, "iat");
	jwt = jwt_from_json(good_header, j);
	EXPECT(jwt, 0, NULL);
	free(jwt);
}

static void test_claims_types(void)
{
	static const struct {
		const char *name;
		const char *json; /* value as JSON text */
	} bad[] = {
	    {"sid", "42"},
	    {"sid", "null"},
	    {"sid", "\"\""},
	    {"filesystem_id", "[\"fs\"]"},
	    {"tenant", "true"},
	    {"intent", "\"admin\""},
	    {"intent", "\"READ\""},
	    {"intent", "1"},
	    {"exp", "\"1800000000\""},
	    {"exp", "1.8e9"},
	    {"exp", "1800000000.0"},
	    {"exp", "null"},
	    {"iat", "\"0\""},
	    {"iat", "0.5"},
	    {"jti", "{}"},
	    {"aud", "7"},
	    {"nbf", "\"x\""},
	    {"sid", "\"a\\nb\""},
	    {"tenant", "\"a\\u001bb\""},
	    {"jti", "\"\\u007f\""},
	    {"filesystem_id", "\"..\""},
	    {"exp", "99999999999999999999999"},
	};
	json_error_t err;
	size_t i;
	json_t *j, *v;
	char *jwt;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		j = good_claims();
		v = json_loads(bad[i].json, JSON_DECODE_ANY, &err);
		if (!v) {
			/* values jansson itself cannot hold: splice the text */
			char *payload, *pos, *mod;

			json_object_del(j, bad[i].name);
			payload = json_dumps(j, JSON_COMPACT);
			pos = strrchr(payload, '}');
			*pos = '\0';
			if (asprintf(&mod, "%s,\"%s\":%s}", payload,
				     bad[i].name, bad[i].json) < 0)
				abort();
			jwt = make_jwt(good_header, mod);
			free(mod);
			free(payload);
			json_decref(j);
		} else {
			json_object_set_new(j, bad[i].name, v);
			jwt = jwt_from_json(good_header, j);
		}
		if (verify_str(jwt, &(const char *){NULL}) != -EKEYREJECTED)
			fprintf(stderr, "claim %s=%s accepted\n", bad[i].name,
				bad[i].json);
		EXPECT(jwt, -EKEYREJECTED, NULL);
		free(jwt);
	}
}

static void test_claims_lengths(void)
{
	json_t *j;
	char *jwt, big[200];

	/* strings longer than the fields that hold them */
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	j = good_claims();
	json_object_set_new(j, "sid", json_string(big));
	jwt = jwt_from_json(good_header, j);
	EXPECT(jwt, -EKEYREJECTED, "handle claim is empty or too long");
	free(jwt);
	big[127] = '\0'; /* exactly fits sid[128] */
	j = good_claims();
	json_object_set_new(j, "sid", json_string(big));
	jwt = jwt_from_json(good_header, j);
	EXPECT(jwt, 0, NULL);
	free(jwt);
	big[127] = 'a';
	big[128] = '\0'; /* one too many for jti[128] */
	j = good_claims();
	json_object_set_new(j, "jti", json_string(big));
	jwt = jwt_from_json(good_header, j);
	EXPECT(jwt, -EKEYREJECTED, NULL);
	free(jwt);
	/* bad filesystem_id is refused with its own reason */
	j = good_claims();
	json_object_set_new(j, "filesystem_id", json_string("a/b"));
	jwt = jwt_from_json(good_header, j);
	EXPECT(jwt, -EKEYREJECTED, "filesystem_id is not a safe path segment");
	free(jwt);
	/* payload that is not an object, and not JSON */
	jwt = make_jwt(good_header, "[1,2]");
	EXPECT(jwt, -EKEYREJECTED, NULL);
	free(jwt);
	jwt = make_jwt(good_header, "{\"sid\":");
	EXPECT(jwt, -EKEYREJECTED, NULL);
	free(jwt);
}

static void test_duplicates(void)
{
	json_t *j = good_claims();
	char *payload = json_dumps(j, JSON_COMPACT), *mod, *jwt;

	json_decref(j);
	/* a second "filesystem_id" appended after the good one */
	payload[strlen(payload) - 1] = '\0';
	if (asprintf(&mod, "%s,\"filesystem_id\":\"other\"}", payload) < 0)
		abort();
	jwt = make_jwt(good_header, mod);
	EXPECT(jwt, -EKEYREJECTED, NULL);
	free(jwt);
	free(mod);
	/* an identical duplicate is refused too */
	if (asprintf(&mod, "%s,\"sid\":\"s-1\"}", payload) < 0)
		abort();
	jwt = make_jwt(good_header, mod);
	EXPECT(jwt, -EKEYREJECTED, NULL);
	free(jwt);
	free(mod);
	free(payload);
}

static void test_base64(void)
{
	json_t *j = good_claims();
	char *payload = json_dumps(j, JSON_COMPACT), *h, *p, *p2, *jwt;
	size_t n;

	json_decref(j);
	h = b64url(good_header, strlen(good_header));
	/* pad the payload to a length that needs padding */
	while ((n = strlen(payload)) % 3 == 0) {
		payload = realloc(payload, n + 2);
		memmove(payload + 1, payload, n + 1);
		payload[0] = ' ';
	}
	p = b64url(payload, n);
	p2 = malloc(strlen(p) + 4);

	/* padding, signed as such: the signature is fine, the decoder is not */
	sprintf(p2, "%s%s", p, n % 3 == 1 ? "==" : "=");
	jwt = sign_segments(h, p2, raw_priv);
	EXPECT(jwt, -EKEYREJECTED, "handle payload is not base64url JSON");
	free(jwt);
	jwt = sign_segments(h, p, raw_priv);
	EXPECT(jwt, 0, NULL);
	free(jwt);

	/* standard-alphabet and junk characters */
	static const char bad_chars[] = {'+',  '/', '=',  ' ',
					 '\n', '*', '\0', (char)0xc3};
	for (size_t i = 0; i < sizeof(bad_chars); i++) {
		strcpy(p2, p);
		p2[5] = bad_chars[i];
		if (bad_chars[i] == '\0') {
			/* an embedded NUL, given with the full length */
			char *t = sign_segments(h, p, raw_priv);
			size_t tl = strlen(t);

			t[strlen(h) + 3] = '\0';
			CHECK_EQ(token_verify(t, tl, pub, AUD, NOW, 0, NULL,
					      &(const char *){NULL}),
				 -EKEYREJECTED);
			free(t);
			continue;
		}
		jwt = sign_segments(h, p2, raw_priv);
		EXPECT(jwt, -EKEYREJECTED, NULL);
		free(jwt);
	}

	/* non-canonical trailing bits in the payload's last character */
	strcpy(p2, p);
	n = strlen(p2);
	p2[n - 1] = (char)(p2[n - 1] + 1); /* A Q g w, or A E I ... w 0 4 8 */
	jwt = sign_segments(h, p2, raw_priv);
	EXPECT(jwt, -EKEYREJECTED, NULL);
	free(jwt);

	/* a length that no byte string encodes to (4k+1) */
	sprintf(p2, "%sA", p);
	if (strlen(p2) % 4 == 1) {
		jwt = sign_segments(h, p2, raw_priv);
		EXPECT(jwt, -EKEYREJECTED, NULL);
		free(jwt);
	}
	free(p2);
	free(p);
	free(h);
	free(payload);
}

static void test_structure(void)
{
	static const char *bad[] = {
	    "",	    ".",    "..",   "...", "a.b",    "a.b.c.d",
	    "a..c", ".b.c", "a.b.", "abc", "a.b.c.", ".a.b.c",
	};
	struct token_claims c;
	char *jwt, *big;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		EXPECT(bad[i], -EKEYREJECTED, NULL);
	EXPECT("a.b", -EKEYREJECTED, "handle is not a JWT");

	/* a valid handle with an extra segment */
	fill(&c);
	CHECK_EQ(token_mint(&c, priv, &jwt), 0);
	big = malloc(strlen(jwt) + 8);
	sprintf(big, "%s.AAAA", jwt);
	EXPECT(big, -EKEYREJECTED, "handle is not a JWT");
	sprintf(big, "%s", jwt);
	*strrchr(big, '.') = '\0';
	EXPECT(big, -EKEYREJECTED, "handle is not a JWT");
	free(big);
	free(jwt);

	/* oversize: TOKEN_MAX_LEN + 1 bytes, and a properly signed big one */
	big = malloc(TOKEN_MAX_LEN + 2);
	memset(big, 'A', TOKEN_MAX_LEN + 1);
	big[10] = '.';
	big[20] = '.';
	big[TOKEN_MAX_LEN + 1] = '\0';
	EXPECT(big, -EKEYREJECTED, "handle is too long");
	free(big);
	{
		json_t *j = good_claims();
		char *pad = malloc(TOKEN_MAX_LEN);

		memset(pad, 'x', TOKEN_MAX_LEN - 1);
		pad[TOKEN_MAX_LEN - 1] = '\0';
		json_object_set_new(j, "padding", json_string(pad));
		jwt = jwt_from_json(good_header, j);
		CHECK(strlen(jwt) > TOKEN_MAX_LEN);
		EXPECT(jwt, -EKEYREJECTED, "handle is too long");
		free(jwt);
		free(pad);
	}
	/* unknown claims are ignored, within the size cap */
	{
		json_t *j = good_claims();

		json_object_set_new(j, "extra",
				    json_pack("{s:[i,i]}", "n", 1, 2));
		jwt = jwt_from_json(good_header, j);
		EXPECT(jwt, 0, NULL);
		free(jwt);
	}
	/* NULL arguments */
	CHECK_EQ(token_verify(NULL, 0, pub, AUD, NOW, 0, NULL, NULL), -EINVAL);
	CHECK_EQ(token_verify("a.b.c", 5, NULL, AUD, NOW, 0, NULL, NULL),
		 -EINVAL);
	CHECK_EQ(token_verify("a.b.c", 5, pub, NULL, NOW, 0, NULL, NULL),
		 -EINVAL);
}

static void test_fsid(void)
{
	char s[300];

	CHECK_EQ(token_fsid_valid("fs-01_a.b"), 1);
	CHECK_EQ(token_fsid_valid("a"), 1);
	CHECK_EQ(token_fsid_valid("0"), 1);
	CHECK_EQ(token_fsid_valid("A.."), 1);
	CHECK_EQ(token_fsid_valid(""), 0);
	CHECK_EQ(token_fsid_valid(NULL), 0);
	CHECK_EQ(token_fsid_valid("."), 0);
	CHECK_EQ(token_fsid_valid(".."), 0);
	CHECK_EQ(token_fsid_valid(".hidden"), 0);
	CHECK_EQ(token_fsid_valid("a/b"), 0);
	CHECK_EQ(token_fsid_valid("/a"), 0);
	CHECK_EQ(token_fsid_valid("a\\b"), 0);
	CHECK_EQ(token_fsid_valid("a\nb"), 0);
	CHECK_EQ(token_fsid_valid("a\tb"), 0);
	CHECK_EQ(token_fsid_valid("a\x7f"), 0);
	CHECK_EQ(token_fsid_valid("a b"), 0);
	CHECK_EQ(token_fsid_valid("a:b"), 0);
	CHECK_EQ(token_fsid_valid("-x"), 0);
	CHECK_EQ(token_fsid_valid("_x"), 0);
	CHECK_EQ(token_fsid_valid("caf\xc3\xa9"), 0);
	memset(s, 'a', 255);
	s[255] = '\0';
	CHECK_EQ(token_fsid_valid(s), 1);
	s[255] = 'a';
	s[256] = '\0';
	CHECK_EQ(token_fsid_valid(s), 0);
}

static void test_intent(void)
{
	enum token_intent i = TOKEN_INTENT_WRITE;

	CHECK_EQ(token_intent_parse("read", &i), 0);
	CHECK_EQ(i, TOKEN_INTENT_READ);
	CHECK_EQ(token_intent_parse("write", &i), 0);
	CHECK_EQ(i, TOKEN_INTENT_WRITE);
	CHECK_EQ(token_intent_parse("preview", &i), 0);
	CHECK_EQ(i, TOKEN_INTENT_PREVIEW);
	CHECK_EQ(token_intent_parse("Read", &i), -EINVAL);
	CHECK_EQ(token_intent_parse("", &i), -EINVAL);
	CHECK_EQ(token_intent_parse("readwrite", &i), -EINVAL);
	CHECK_EQ(token_intent_parse("rea", &i), -EINVAL);
	CHECK_EQ(token_intent_parse(NULL, &i), -EINVAL);
	CHECK_EQ(i, TOKEN_INTENT_PREVIEW); /* untouched on failure */
	CHECK_STR(token_intent_name(TOKEN_INTENT_READ), "read");
	CHECK_STR(token_intent_name(TOKEN_INTENT_WRITE), "write");
	CHECK_STR(token_intent_name(TOKEN_INTENT_PREVIEW), "preview");
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f)
		abort();
	fputs(text, f);
	fclose(f);
}

static void write_key(const char *path, EVP_PKEY *k, int private)
{
	FILE *f = fopen(path, "w");

	if (!f)
		abort();
	if (private)
		PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
	else
		PEM_write_PUBKEY(f, k);
	fclose(f);
}

static void test_keys(void)
{
	char path[160], big[20000];
	const char *why;
	struct token_key *k;
	EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
	EVP_PKEY *x = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");

	CHECK(rsa && x);
	snprintf(path, sizeof(path), "%s/rsa.pub", dir);
	write_key(path, rsa, 0);
	why = NULL;
	errno = 0;
	k = token_key_load_public(path, &why);
	CHECK(k == NULL && errno == EINVAL);
	CHECK_STR(why, "key is not an Ed25519 key");
	snprintf(path, sizeof(path), "%s/rsa.key", dir);
	write_key(path, rsa, 1);
	CHECK(token_key_load_private(path, &why) == NULL);
	CHECK_STR(why, "key is not an Ed25519 key");
	snprintf(path, sizeof(path), "%s/x25519.pub", dir);
	write_key(path, x, 0);
	CHECK(token_key_load_public(path, &why) == NULL);
	CHECK_STR(why, "key is not an Ed25519 key");
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(x);

	snprintf(path, sizeof(path), "%s/garbage", dir);
	write_file(path, "-----BEGIN PUBLIC KEY-----\nnot base64!\n"
			 "-----END PUBLIC KEY-----\n");
	why = NULL;
	CHECK(token_key_load_public(path, &why) == NULL);
	CHECK(why && strstr(why, "not a PEM public key"));
	write_file(path, "");
	CHECK(token_key_load_private(path, &why) == NULL);
	CHECK(why && strstr(why, "not a PEM private key"));
	memset(big, 'A', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	write_file(path, big);
	CHECK(token_key_load_public(path, &why) == NULL);
	CHECK_EQ(errno, EFBIG);

	/* the wrong half of a good pair */
	CHECK(token_key_load_public(priv_path, &why) == NULL);
	CHECK(token_key_load_private(pub_path, &why) == NULL);

	snprintf(path, sizeof(path), "%s/missing", dir);
	errno = 0;
	CHECK(token_key_load_public(path, &why) == NULL);
	CHECK_EQ(errno, ENOENT);
	CHECK_STR(why, "cannot open key file");

	/* keygen never overwrites, and leaves nothing behind on failure */
	CHECK_EQ(token_keygen(priv_path, path), -EEXIST);
	CHECK(access(path, F_OK) != 0);
	CHECK_EQ(token_keygen(path, pub_path), -EEXIST);
	CHECK(access(path, F_OK) != 0);
}

/* token_peek reads claims for display, with no signature check at all. */
static void test_peek(void)
{
	struct token_claims c, got;
	json_t *j;
	char *jwt;

	fill(&c);
	c.intent = TOKEN_INTENT_PREVIEW;
	CHECK_EQ(token_mint(&c, priv, &jwt), 0);
	memset(&got, 0x55, sizeof(got));
	CHECK_EQ(token_peek(jwt, strlen(jwt), &got), 0);
	CHECK_STR(got.sid, c.sid);
	CHECK_STR(got.filesystem_id, c.filesystem_id);
	CHECK(strlen(got.jti) >= 16); /* minted at random */
	CHECK_EQ(got.intent, TOKEN_INTENT_PREVIEW);
	CHECK_EQ(got.exp, c.exp);
	/* a wrong signature does not matter to peek (display only) */
	jwt[strlen(jwt) - 3] ^= 1;
	CHECK_EQ(token_peek(jwt, strlen(jwt), &got), 0);
	CHECK_STR(got.sid, c.sid);
	free(jwt);

	/* missing claims stay empty; a bad intent is refused */
	j = json_pack("{s:s,s:s}", "sid", "only", "intent", "write");
	jwt = jwt_from_json(good_header, j);
	CHECK_EQ(token_peek(jwt, strlen(jwt), &got), 0);
	CHECK_STR(got.sid, "only");
	CHECK_STR(got.filesystem_id, "");
	CHECK_EQ(got.exp, 0);
	free(jwt);
	j = json_pack("{s:s,s:s}", "sid", "x", "intent", "delete");
	jwt = jwt_from_json(good_header, j);
	CHECK_EQ(token_peek(jwt, strlen(jwt), &got), -EINVAL);
	free(jwt);
	j = json_pack("{s:s,s:i}", "sid", "x", "intent", 1);
	jwt = jwt_from_json(good_header, j);
	CHECK_EQ(token_peek(jwt, strlen(jwt), &got), -EINVAL);
	free(jwt);

	/* not a JWT, or not JSON inside */
	CHECK_EQ(token_peek("", 0, &got), -EINVAL);
	CHECK_EQ(token_peek("a.b", 3, &got), -EINVAL);
	CHECK_EQ(token_peek("a.!!!.c", 7, &got), -EINVAL);
	CHECK_EQ(token_peek("a.bm90IGpzb24.c", 15, &got), -EINVAL);
	CHECK_EQ(token_peek(NULL, 0, &got), -EINVAL);
}

int main(void)
{
	setup();
	test_roundtrip();
	test_mint_refuses();
	test_forged();
	test_audience();
	test_expiry();
	test_headers();
	test_claims_missing();
	test_claims_types();
	test_claims_lengths();
	test_duplicates();
	test_base64();
	test_structure();
	test_fsid();
	test_intent();
	test_keys();
	test_peek();
	cleanup();
	return unit_done("test_token");
}
