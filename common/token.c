/*
 * token.c - session handles: compact JWTs signed with Ed25519 (see token.h).
 *
 * The handle is the only credential a guest holds, and the broker reads it
 * from an untrusted peer, so verification is written to refuse early and
 * never to guess: the total length is capped before anything is decoded,
 * the base64url decoder accepts exactly one spelling of each byte string,
 * the header must name EdDSA (never "none" or an HMAC algorithm a public key
 * could be abused with), the signature is checked before any claim is
 * trusted, and every claim must be present with its exact JSON type and fit
 * the fixed-size field that will hold it.
 */
#include "token.h"
#include "token_int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#define TOKEN_SIG_LEN 64      /* Ed25519 signatures are fixed-size */
#define TOKEN_HEADER_MAX 1024 /* decoded header JSON */
#define TOKEN_JTI_RANDOM 16   /* 128 bits of randomness per jti */

/* The only header this module writes; verification accepts equivalents. */
static const char token_header_json[] = "{\"alg\":\"EdDSA\",\"typ\":\"JWT\"}";

static const char b64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* ---- base64url (RFC 4648 section 5, no padding) ------------------------- */

static size_t b64url_encoded_len(size_t n)
{
	return n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0);
}

/* Encode n bytes into dst (b64url_encoded_len(n) + 1 bytes, NUL-terminated). */
static void b64url_encode(const unsigned char *src, size_t n, char *dst)
{
	size_t i;
	char *o = dst;

	for (i = 0; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)src[i] << 16 |
			     (uint32_t)src[i + 1] << 8 | src[i + 2];
		*o++ = b64url_alphabet[v >> 18 & 63];
		*o++ = b64url_alphabet[v >> 12 & 63];
		*o++ = b64url_alphabet[v >> 6 & 63];
		*o++ = b64url_alphabet[v & 63];
	}
	if (n - i == 1) {
		uint32_t v = (uint32_t)src[i] << 16;
		*o++ = b64url_alphabet[v >> 18 & 63];
		*o++ = b64url_alphabet[v >> 12 & 63];
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)src[i] << 16 | (uint32_t)src[i + 1] << 8;
		*o++ = b64url_alphabet[v >> 18 & 63];
		*o++ = b64url_alphabet[v >> 12 & 63];
		*o++ = b64url_alphabet[v >> 6 & 63];
	}
	*o = '\0';
}

static int b64url_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

/*
 * Strict decoder: no padding, no whitespace, no characters outside the
 * alphabet, and the unused low bits of the last character must be zero, so
 * that one token has exactly one encoding (a signature cannot be "changed"
 * without changing its meaning).  dst needs src_len / 4 * 3 + 2 bytes.
 */
static int b64url_decode(const char *src, size_t n, unsigned char *dst,
			 size_t *out_len)
{
	size_t i, o = 0;
	uint32_t acc = 0;
	int v, bits = 0;

	if (n % 4 == 1)
		return -EINVAL;
	for (i = 0; i < n; i++) {
		v = b64url_value((unsigned char)src[i]);
		if (v < 0)
			return -EINVAL;
		acc = (acc << 6 | (uint32_t)v) & 0xffffff;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			dst[o++] = (unsigned char)(acc >> bits);
		}
	}
	/* leftover bits (2 or 4) must be zero for a canonical encoding */
	if (bits && (acc & ((1u << bits) - 1)))
		return -EINVAL;
	*out_len = o;
	return 0;
}

/* Decode a segment into a fresh buffer, NUL-terminated for convenience. */
static unsigned char *b64url_decode_alloc(const char *src, size_t n,
					  size_t *out_len)
{
	unsigned char *p = malloc(n / 4 * 3 + 3);

	if (!p)
		return NULL;
	if (b64url_decode(src, n, p, out_len) < 0) {
		free(p);
		errno = EINVAL;
		return NULL;
	}
	p[*out_len] = '\0';
	return p;
}

/* ---- small predicates ---------------------------------------------------- */

const char *token_intent_name(enum token_intent i)
{
	switch (i) {
	case TOKEN_INTENT_READ:
		return "read";
	case TOKEN_INTENT_WRITE:
		return "write";
	case TOKEN_INTENT_PREVIEW:
		return "preview";
	}
	return "unknown";
}

int token_intent_parse(const char *s, enum token_intent *out)
{
	if (!s)
		return -EINVAL;
	if (strcmp(s, "read") == 0)
		*out = TOKEN_INTENT_READ;
	else if (strcmp(s, "write") == 0)
		*out = TOKEN_INTENT_WRITE;
	else if (strcmp(s, "preview") == 0)
		*out = TOKEN_INTENT_PREVIEW;
	else
		return -EINVAL;
	return 0;
}

/*
 * A filesystem_id becomes a directory name on the broker and a key prefix in
 * S3, so it is held to a deliberately small alphabet: 1 to 255 bytes of
 * [A-Za-z0-9._-], starting with a letter or digit.  That rules out "." and
 * "..", any separator ('/' or '\\'), NUL, control characters, whitespace,
 * option-looking names ("-x"), hidden names (".x") and anything whose
 * meaning could change under Unicode normalisation.
 */
int token_fsid_valid(const char *s)
{
	size_t i;

	if (!s || !s[0])
		return 0;
	for (i = 0; s[i]; i++) {
		unsigned char c = (unsigned char)s[i];
		int alnum = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
			    (c >= '0' && c <= '9');

		if (i >= 255)
			return 0;
		if (i == 0 && !alnum)
			return 0;
		if (!alnum && c != '.' && c != '_' && c != '-')
			return 0;
	}
	return 1;
}

/* Claims are printed by tools and logged; control bytes could forge lines. */
static int token_text_clean(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c == 0x7f)
			return 0;
	}
	return 1;
}

/* ---- signing and verifying ----------------------------------------------- */

static int token_sign(EVP_PKEY *pkey, const char *tbs, size_t n,
		      unsigned char sig[TOKEN_SIG_LEN])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	size_t siglen = TOKEN_SIG_LEN;
	int rc = -EIO;

	if (!ctx)
		return -ENOMEM;
	if (EVP_DigestSignInit(ctx, NULL, NULL, NULL, pkey) == 1 &&
	    EVP_DigestSign(ctx, sig, &siglen, (const unsigned char *)tbs, n) ==
		1 &&
	    siglen == TOKEN_SIG_LEN)
		rc = 0;
	EVP_MD_CTX_free(ctx);
	ERR_clear_error();
	return rc;
}

static int token_sig_ok(EVP_PKEY *pkey, const char *tbs, size_t n,
			const unsigned char *sig, size_t siglen)
{
	EVP_MD_CTX *ctx;
	int ok = 0;

	if (siglen != TOKEN_SIG_LEN)
		return 0;
	ctx = EVP_MD_CTX_new();
	if (!ctx)
		return 0;
	if (EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pkey) == 1 &&
	    EVP_DigestVerify(ctx, sig, siglen, (const unsigned char *)tbs, n) ==
		1)
		ok = 1;
	EVP_MD_CTX_free(ctx);
	/*
	 * A failed check leaves entries in this thread's OpenSSL error queue;
	 * SSL_get_error() on the same thread would then report a TLS failure
	 * that never happened.
	 */
	ERR_clear_error();
	return ok;
}

/* Parse one decoded segment as a JSON object, rejecting duplicate keys. */
static json_t *token_json_object(const unsigned char *p, size_t n)
{
	json_error_t jerr;
	json_t *j;

	j = json_loadb((const char *)p, n, JSON_REJECT_DUPLICATES, &jerr);
	if (j && !json_is_object(j)) {
		json_decref(j);
		j = NULL;
	}
	return j;
}

/*
 * The header must say EdDSA.  "typ" is optional but must be JWT when given,
 * and "crit" is refused because we implement no header extension (RFC 7515
 * section 4.1.11 says an unknown critical extension makes the JWS invalid).
 */
static int token_check_header(const char *seg, size_t n, const char **why)
{
	unsigned char *raw;
	size_t len;
	json_t *h = NULL, *alg, *typ;
	int rc = -EKEYREJECTED;

	*why = "handle header is not base64url JSON";
	if (n > TOKEN_HEADER_MAX * 4 / 3 + 4)
		return rc;
	raw = b64url_decode_alloc(seg, n, &len);
	if (!raw)
		return rc;
	h = token_json_object(raw, len);
	if (!h)
		goto out;
	alg = json_object_get(h, "alg");
	typ = json_object_get(h, "typ");
	if (!json_is_string(alg) || strcmp(json_string_value(alg), "EdDSA") ||
	    json_string_length(alg) != 5) {
		*why = "handle algorithm is not EdDSA";
		goto out;
	}
	if (typ && (!json_is_string(typ) || json_string_length(typ) != 3 ||
		    strcmp(json_string_value(typ), "JWT"))) {
		*why = "handle type is not JWT";
		goto out;
	}
	if (json_object_get(h, "crit")) {
		*why = "handle header has critical extensions";
		goto out;
	}
	rc = 0;
out:
	json_decref(h);
	free(raw);
	return rc;
}

/* Copy a required string claim into a fixed field, checking everything. */
static int token_claim_str(json_t *obj, const char *name, char *dst,
			   size_t dstsz, const char **why)
{
	json_t *v = json_object_get(obj, name);
	size_t n;

	if (!v) {
		*why = "handle lacks a required claim";
		return -EKEYREJECTED;
	}
	if (!json_is_string(v)) {
		*why = "handle claim has the wrong type (string expected)";
		return -EKEYREJECTED;
	}
	n = json_string_length(v);
	if (n == 0 || n >= dstsz) {
		*why = "handle claim is empty or too long";
		return -EKEYREJECTED;
	}
	if (!token_text_clean(json_string_value(v), n)) {
		*why = "handle claim contains control characters";
		return -EKEYREJECTED;
	}
	memcpy(dst, json_string_value(v), n);
	dst[n] = '\0';
	return 0;
}

static int token_claim_int(json_t *obj, const char *name, int required,
			   int64_t *dst, const char **why)
{
	json_t *v = json_object_get(obj, name);

	if (!v) {
		if (!required)
			return 0;
		*why = "handle lacks a required claim";
		return -EKEYREJECTED;
	}
	/* jansson keeps 1.0 and 1e3 as reals, so this refuses them too */
	if (!json_is_integer(v)) {
		*why = "handle claim has the wrong type (integer expected)";
		return -EKEYREJECTED;
	}
	*dst = (int64_t)json_integer_value(v);
	return 0;
}

/* "aud" is a string or an array of strings (RFC 7519 section 4.1.3). */
static int token_claim_aud(json_t *obj, const char *audience,
			   struct token_claims *c, const char **why)
{
	json_t *v = json_object_get(obj, "aud"), *e;
	size_t i;
	int found = 0;

	if (!v) {
		*why = "handle lacks a required claim";
		return -EKEYREJECTED;
	}
	if (json_is_string(v)) {
		if (token_claim_str(obj, "aud", c->aud, sizeof(c->aud), why))
			return -EKEYREJECTED;
		found = strcmp(c->aud, audience) == 0;
		goto done;
	}
	if (!json_is_array(v) || json_array_size(v) == 0) {
		*why = "handle claim has the wrong type (aud)";
		return -EKEYREJECTED;
	}
	json_array_foreach(v, i, e)
	{
		if (!json_is_string(e) || json_string_length(e) == 0 ||
		    json_string_length(e) >= sizeof(c->aud)) {
			*why = "handle claim has the wrong type (aud)";
			return -EKEYREJECTED;
		}
		if (json_string_length(e) == strlen(audience) &&
		    strcmp(json_string_value(e), audience) == 0)
			found = 1;
	}
	if (found)
		snprintf(c->aud, sizeof(c->aud), "%s", audience);
done:
	if (!found) {
		*why = "handle audience mismatch";
		return -EACCES;
	}
	return 0;
}

static int token_check_claims(json_t *p, const char *audience, time_t now,
			      int leeway_s, struct token_claims *c,
			      const char **why)
{
	char intent[16];
	int64_t nbf = INT64_MIN, limit;
	int rc;

	rc = token_claim_str(p, "sid", c->sid, sizeof(c->sid), why) ?:
	     token_claim_str(p, "filesystem_id", c->filesystem_id,
			     sizeof(c->filesystem_id), why) ?:
	     token_claim_str(p, "tenant", c->tenant, sizeof(c->tenant), why) ?:
	     token_claim_str(p, "intent", intent, sizeof(intent), why) ?:
	     token_claim_str(p, "jti", c->jti, sizeof(c->jti), why) ?:
	     token_claim_int(p, "exp", 1, &c->exp, why) ?:
	     token_claim_int(p, "iat", 0, &c->iat, why) ?:
	     token_claim_int(p, "nbf", 0, &nbf, why);
	if (rc)
		return rc;
	if (token_intent_parse(intent, &c->intent) < 0) {
		*why = "handle intent is not read, write or preview";
		return -EKEYREJECTED;
	}
	if (!token_fsid_valid(c->filesystem_id)) {
		*why = "filesystem_id is not a safe path segment";
		return -EKEYREJECTED;
	}
	rc = token_claim_aud(p, audience, c, why);
	if (rc)
		return rc;
	if (leeway_s < 0)
		leeway_s = 0;
	/* exp + leeway > now, computed without signed overflow */
	if (__builtin_sub_overflow((int64_t)now, (int64_t)leeway_s, &limit) ||
	    c->exp <= limit) {
		*why = "handle expired";
		return -EKEYEXPIRED;
	}
	if (__builtin_add_overflow((int64_t)now, (int64_t)leeway_s, &limit))
		limit = INT64_MAX;
	if (nbf > limit) {
		*why = "handle is not valid yet";
		return -EKEYREJECTED;
	}
	return 0;
}

/* Split "h.p.s" into three non-empty segments; returns 0 or -EKEYREJECTED. */
static int token_split(const char *jwt, size_t len, size_t dot[2])
{
	const char *d1, *d2;

	d1 = memchr(jwt, '.', len);
	if (!d1)
		return -EKEYREJECTED;
	d2 = memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - jwt));
	if (!d2 || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - jwt)))
		return -EKEYREJECTED;
	dot[0] = (size_t)(d1 - jwt);
	dot[1] = (size_t)(d2 - jwt);
	if (dot[0] == 0 || dot[1] == dot[0] + 1 || dot[1] + 1 == len)
		return -EKEYREJECTED;
	return 0;
}

int token_verify(const char *jwt, size_t len, const struct token_key *pub,
		 const char *audience, time_t now, int leeway_s,
		 struct token_claims *out, const char **why)
{
	struct token_claims c;
	unsigned char *sig = NULL, *payload = NULL;
	const char *dummy;
	size_t dot[2], siglen, plen;
	json_t *p = NULL;
	int rc = -EKEYREJECTED;

	if (!why)
		why = &dummy;
	if (!jwt || !pub || !audience) {
		*why = "handle verification called without a key or audience";
		return -EINVAL;
	}
	if (len > TOKEN_MAX_LEN) {
		*why = "handle is too long";
		return rc;
	}
	if (token_split(jwt, len, dot) < 0) {
		*why = "handle is not a JWT";
		return rc;
	}
	rc = token_check_header(jwt, dot[0], why);
	if (rc)
		return rc;
	rc = -EKEYREJECTED;
	sig = b64url_decode_alloc(jwt + dot[1] + 1, len - dot[1] - 1, &siglen);
	if (!sig) {
		*why = "handle signature is not base64url";
		goto out;
	}
	if (!token_sig_ok(pub->pkey, jwt, dot[1], sig, siglen)) {
		*why = "handle signature does not verify";
		goto out;
	}
	/* only now is the payload worth decoding */
	payload =
	    b64url_decode_alloc(jwt + dot[0] + 1, dot[1] - dot[0] - 1, &plen);
	p = payload ? token_json_object(payload, plen) : NULL;
	if (!p) {
		*why = "handle payload is not base64url JSON";
		goto out;
	}
	memset(&c, 0, sizeof(c));
	rc = token_check_claims(p, audience, now, leeway_s, &c, why);
	if (rc == 0 && out)
		*out = c;
out:
	json_decref(p);
	free(payload);
	free(sig);
	return rc;
}

int token_peek(const char *jwt, size_t len, struct token_claims *out)
{
	unsigned char *payload = NULL;
	const char *why;
	char intent[16];
	size_t dot[2], plen;
	json_t *p = NULL;
	int rc = -EINVAL;

	memset(out, 0, sizeof(*out));
	if (!jwt || len > TOKEN_MAX_LEN || token_split(jwt, len, dot) < 0)
		return rc;
	payload =
	    b64url_decode_alloc(jwt + dot[0] + 1, dot[1] - dot[0] - 1, &plen);
	p = payload ? token_json_object(payload, plen) : NULL;
	if (!p)
		goto out;
	/* Each claim on its own: a missing one stays empty. */
	token_claim_str(p, "sid", out->sid, sizeof(out->sid), &why);
	token_claim_str(p, "filesystem_id", out->filesystem_id,
			sizeof(out->filesystem_id), &why);
	token_claim_str(p, "tenant", out->tenant, sizeof(out->tenant), &why);
	token_claim_str(p, "jti", out->jti, sizeof(out->jti), &why);
	token_claim_int(p, "exp", 0, &out->exp, &why);
	token_claim_int(p, "iat", 0, &out->iat, &why);
	/* The one claim with no "empty" value: required. */
	if (!token_claim_str(p, "intent", intent, sizeof(intent), &why) &&
	    !token_intent_parse(intent, &out->intent))
		rc = 0;
out:
	json_decref(p);
	if (payload)
		explicit_bzero(payload, plen);
	free(payload);
	return rc;
}

/* ---- minting ------------------------------------------------------------- */

static int token_field_ok(const char *s, size_t sz)
{
	size_t n = strnlen(s, sz);

	return n > 0 && n < sz && token_text_clean(s, n);
}

static json_t *token_claims_json(const struct token_claims *c, const char *jti,
				 int64_t iat)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:s, s:s}", "sid",
			 c->sid, "filesystem_id", c->filesystem_id, "tenant",
			 c->tenant, "intent", token_intent_name(c->intent),
			 "exp", (json_int_t)c->exp, "iat", (json_int_t)iat,
			 "jti", jti, "aud", c->aud);
}

int token_mint(const struct token_claims *c, const struct token_key *priv,
	       char **out)
{
	unsigned char rnd[TOKEN_JTI_RANDOM], sig[TOKEN_SIG_LEN];
	char jti[sizeof(c->jti)];
	char *payload = NULL, *jwt = NULL;
	size_t hlen, plen, slen, n;
	json_t *j = NULL;
	int rc = -EINVAL;

	*out = NULL;
	if (!priv || !priv->is_private)
		return -EINVAL;
	if (!token_field_ok(c->sid, sizeof(c->sid)) ||
	    !token_field_ok(c->tenant, sizeof(c->tenant)) ||
	    !token_field_ok(c->aud, sizeof(c->aud)) ||
	    strnlen(c->filesystem_id, sizeof(c->filesystem_id)) >=
		sizeof(c->filesystem_id) ||
	    !token_fsid_valid(c->filesystem_id) ||
	    strcmp(token_intent_name(c->intent), "unknown") == 0)
		return -EINVAL;
	if (c->jti[0]) {
		if (!token_field_ok(c->jti, sizeof(c->jti)))
			return -EINVAL;
		memcpy(jti, c->jti, sizeof(jti));
	} else {
		if (RAND_bytes(rnd, sizeof(rnd)) != 1)
			return -EIO;
		b64url_encode(rnd, sizeof(rnd), jti);
	}
	j = token_claims_json(c, jti, c->iat ? c->iat : (int64_t)time(NULL));
	payload = j ? json_dumps(j, JSON_COMPACT) : NULL;
	if (!payload) {
		rc = -ENOMEM;
		goto out;
	}
	hlen = b64url_encoded_len(sizeof(token_header_json) - 1);
	plen = b64url_encoded_len(strlen(payload));
	slen = b64url_encoded_len(TOKEN_SIG_LEN);
	n = hlen + 1 + plen + 1 + slen;
	if (n > TOKEN_MAX_LEN) {
		rc = -E2BIG;
		goto out;
	}
	jwt = malloc(n + 1);
	if (!jwt) {
		rc = -ENOMEM;
		goto out;
	}
	b64url_encode((const unsigned char *)token_header_json,
		      sizeof(token_header_json) - 1, jwt);
	jwt[hlen] = '.';
	b64url_encode((const unsigned char *)payload, strlen(payload),
		      jwt + hlen + 1);
	rc = token_sign(priv->pkey, jwt, hlen + 1 + plen, sig);
	if (rc)
		goto out;
	jwt[hlen + 1 + plen] = '.';
	b64url_encode(sig, TOKEN_SIG_LEN, jwt + hlen + 1 + plen + 1);
	*out = jwt;
	jwt = NULL;
out:
	free(jwt);
	free(payload);
	json_decref(j);
	return rc;
}
