/*
 * s3_sign.c - AWS Signature Version 4 (header-based, single chunk).
 *
 * The four steps of the specification, each a small function: canonical
 * request, string to sign, signing key, signature.  Everything is built in
 * bounded buffers (struct buf with a ceiling) so an absurd header list fails
 * with -ENOSPC rather than growing without limit.  Checked against AWS's
 * published test suite and the S3 API reference examples
 * (tests/unit/test_s3_sign.c).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "buf.h"
#include "s3_sign.h"

#define TEXT_LIMIT (256 * 1024) /* canonical request ceiling */
#define ALGORITHM "AWS4-HMAC-SHA256"

struct hdr {
	char *name;  /* lower case, owned */
	char *value; /* trimmed, collapsed, owned */
	size_t seq;  /* input order, keeps duplicate values in order */
};

static int unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
	       c == '~';
}

void s3_sign_hex(const unsigned char *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = '\0';
}

int s3_sign_sha256_hex(const void *p, size_t n, char *out)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (!EVP_Digest(p, n, md, &mdlen, EVP_sha256(), NULL) || mdlen != 32)
		return -EIO;
	s3_sign_hex(md, 32, out);
	return 0;
}

void s3_sign_amz_date(time_t t, char *out)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	if (strftime(out, S3_SIGN_DATE_LEN + 1, "%Y%m%dT%H%M%SZ", &tm) !=
	    S3_SIGN_DATE_LEN)
		snprintf(out, S3_SIGN_DATE_LEN + 1, "19700101T000000Z");
}

int s3_sign_uri_encode(const char *in, size_t n, bool keep_slash, char *out,
		       size_t outlen)
{
	static const char digits[] = "0123456789ABCDEF";
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)in[i];

		if (unreserved(c) || (keep_slash && c == '/')) {
			if (o + 1 >= outlen)
				return -ENOSPC;
			out[o++] = (char)c;
			continue;
		}
		if (o + 3 >= outlen)
			return -ENOSPC;
		out[o++] = '%';
		out[o++] = digits[c >> 4];
		out[o++] = digits[c & 15];
	}
	if (o >= outlen)
		return -ENOSPC;
	out[o] = '\0';
	return (int)o;
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

/* Decode %XX into out (at most n bytes); a bad escape is -EINVAL. */
static int pct_decode(const char *in, size_t n, char *out, size_t *outn)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		if (in[i] != '%') {
			out[o++] = in[i];
			continue;
		}
		if (i + 2 >= n)
			return -EINVAL;
		int hi = hexval(in[i + 1]), lo = hexval(in[i + 2]);
		if (hi < 0 || lo < 0)
			return -EINVAL;
		out[o++] = (char)(hi << 4 | lo);
		i += 2;
	}
	*outn = o;
	return 0;
}

/* Encode one query component (name or value), decoding it first. */
static char *query_component(const char *p, size_t n)
{
	char *raw = malloc(n + 1), *enc = NULL;
	size_t rawn, cap = 3 * n + 1;

	if (!raw)
		return NULL;
	if (pct_decode(p, n, raw, &rawn) < 0) {
		errno = EINVAL;
		goto out;
	}
	enc = malloc(cap);
	if (enc && s3_sign_uri_encode(raw, rawn, false, enc, cap) < 0) {
		free(enc);
		enc = NULL;
		errno = ENOSPC;
	}
out:
	free(raw);
	return enc;
}

struct qpair {
	char *name, *value;
};

static int qpair_cmp(const void *a, const void *b)
{
	const struct qpair *x = a, *y = b;
	int r = strcmp(x->name, y->name);

	return r ? r : strcmp(x->value, y->value);
}

static int split_query(const char *q, struct qpair **pairs, size_t *np)
{
	size_t n = 0, cap = 1;

	for (const char *s = q; *s; s++)
		cap += *s == '&';
	*pairs = calloc(cap, sizeof(**pairs));
	if (!*pairs)
		return -ENOMEM;
	for (const char *s = q; *s;) {
		size_t len = strcspn(s, "&");
		const char *eq = memchr(s, '=', len);
		size_t nlen = eq ? (size_t)(eq - s) : len;

		if (len) {
			struct qpair *p = &(*pairs)[n++];
			p->name = query_component(s, nlen);
			p->value = eq ? query_component(eq + 1, len - nlen - 1)
				      : query_component("", 0);
			*np = n;
			if (!p->name || !p->value)
				return errno == ENOMEM ? -ENOMEM : -EINVAL;
		}
		s += len;
		if (*s == '&')
			s++;
	}
	*np = n;
	return 0;
}

int s3_sign_canonical_query(const char *query, char *out, size_t outlen)
{
	struct qpair *pairs = NULL;
	size_t n = 0, o = 0;
	int ret;

	if (!query)
		query = "";
	ret = split_query(query, &pairs, &n);
	if (ret < 0)
		goto out;
	qsort(pairs, n, sizeof(*pairs), qpair_cmp);
	ret = -ENOSPC;
	if (outlen == 0)
		goto out;
	out[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		int w = snprintf(out + o, outlen - o, "%s%s=%s", i ? "&" : "",
				 pairs[i].name, pairs[i].value);
		if (w < 0 || (size_t)w >= outlen - o)
			goto out;
		o += (size_t)w;
	}
	ret = 0;
out:
	for (size_t i = 0; pairs && i < n; i++) {
		free(pairs[i].name);
		free(pairs[i].value);
	}
	free(pairs);
	return ret;
}

/*
 * RFC 3986 remove_dot_segments plus collapsing of empty segments, as the
 * SigV4 suite expects for services other than S3.
 */
static int normalize_path(const char *in, char *out, size_t outlen)
{
	size_t o = 0, inlen = strlen(in);
	bool trailing = inlen > 1 && in[inlen - 1] == '/';

	if (outlen < 2)
		return -ENOSPC;
	for (const char *s = in; *s;) {
		size_t len;

		while (*s == '/')
			s++;
		len = strcspn(s, "/");
		if (len == 0 || (len == 1 && s[0] == '.')) {
			/* nothing */
		} else if (len == 2 && s[0] == '.' && s[1] == '.') {
			while (o > 0 && out[o - 1] != '/')
				o--;
			if (o > 0)
				o--;
		} else {
			if (o + len + 2 >= outlen)
				return -ENOSPC;
			out[o++] = '/';
			memcpy(out + o, s, len);
			o += len;
		}
		s += len;
	}
	if (o == 0 || (trailing && out[o - 1] != '/'))
		out[o++] = '/';
	out[o] = '\0';
	return 0;
}

static int canonical_uri(const struct s3_sign_req *r, struct buf *b)
{
	size_t n = strlen(r->path), cap = 3 * n + 2;
	char *norm = NULL, *enc = malloc(cap);
	const char *p = r->path;
	int ret = -ENOMEM;

	if (!enc)
		goto out;
	if (r->flags & S3_SIGN_NORMALIZE_PATH) {
		norm = malloc(n + 2);
		if (!norm)
			goto out;
		ret = normalize_path(r->path, norm, n + 2);
		if (ret < 0)
			goto out;
		p = norm;
	}
	ret = s3_sign_uri_encode(p, strlen(p), true, enc, cap);
	if (ret >= 0)
		ret = buf_append(b, enc, (size_t)ret);
out:
	free(norm);
	free(enc);
	return ret < 0 ? ret : 0;
}

static int valid_token_name(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c <= ' ' || c >= 127 || c == ':')
			return 0;
	}
	return 1;
}

/* Trim and collapse runs of blanks; refuse line breaks and controls. */
static char *clean_value(const char *v)
{
	char *out = malloc(strlen(v) + 1);
	size_t o = 0;
	bool space = false;

	if (!out)
		return NULL;
	for (; *v; v++) {
		unsigned char c = (unsigned char)*v;

		if (c == '\r' || c == '\n' || (c < ' ' && c != '\t') ||
		    c == 127) {
			free(out);
			errno = EINVAL;
			return NULL;
		}
		if (c == ' ' || c == '\t') {
			space = o > 0;
			continue;
		}
		if (space)
			out[o++] = ' ';
		space = false;
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return out;
}

static int hdr_cmp(const void *a, const void *b)
{
	const struct hdr *x = a, *y = b;
	int r = strcmp(x->name, y->name);

	if (r)
		return r;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int hdr_add(struct hdr *h, size_t *n, const char *name,
		   const char *value)
{
	struct hdr *e = &h[*n];

	if (!valid_token_name(name))
		return -EINVAL;
	e->name = strdup(name);
	e->value = clean_value(value);
	e->seq = *n;
	(*n)++;
	if (!e->name || !e->value)
		return errno == EINVAL ? -EINVAL : -ENOMEM;
	for (char *p = e->name; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return 0;
}

/* Headers the signer adds itself must not also come from the caller. */
static int reserved_name(const char *name, bool s3)
{
	return !strcasecmp(name, "x-amz-date") ||
	       !strcasecmp(name, "x-amz-security-token") ||
	       (s3 && !strcasecmp(name, "x-amz-content-sha256"));
}

static int collect_headers(const struct s3_sign_req *r, const char *payload,
			   const char *amz_date, struct hdr *h, size_t *n)
{
	bool s3 = strcmp(r->service, "s3") == 0;
	int ret = 0;

	if (r->nheaders > S3_SIGN_MAX_HEADERS || (r->nheaders && !r->headers))
		return -EINVAL;
	for (size_t i = 0; i < r->nheaders && !ret; i++) {
		const struct s3_sign_header *x = &r->headers[i];

		if (!x->name || !x->value || reserved_name(x->name, s3))
			return -EINVAL;
		ret = hdr_add(h, n, x->name, x->value);
	}
	if (!ret)
		ret = hdr_add(h, n, "x-amz-date", amz_date);
	if (!ret && s3)
		ret = hdr_add(h, n, "x-amz-content-sha256", payload);
	if (!ret && r->session_token)
		ret = hdr_add(h, n, "x-amz-security-token", r->session_token);
	if (ret)
		return ret;
	qsort(h, *n, sizeof(*h), hdr_cmp);
	return 0;
}

/* Canonical headers (duplicates joined by ',') and the signed list. */
static int append_headers(struct buf *b, struct buf *signed_list,
			  const struct hdr *h, size_t n)
{
	int ret = 0;

	for (size_t i = 0; i < n && !ret; i++) {
		bool first = i == 0 || strcmp(h[i].name, h[i - 1].name) != 0;
		bool last = i + 1 == n || strcmp(h[i].name, h[i + 1].name) != 0;

		if (first) {
			ret = buf_append(b, h[i].name, strlen(h[i].name));
			if (!ret)
				ret = buf_append(b, ":", 1);
			if (!ret && i > 0)
				ret = buf_append(signed_list, ";", 1);
			if (!ret)
				ret = buf_append(signed_list, h[i].name,
						 strlen(h[i].name));
		} else {
			ret = buf_append(b, ",", 1);
		}
		if (!ret)
			ret = buf_append(b, h[i].value, strlen(h[i].value));
		if (!ret && last)
			ret = buf_append(b, "\n", 1);
	}
	if (!ret)
		ret = buf_append(signed_list, "", 1);
	return ret;
}

static int append_str(struct buf *b, const char *s)
{
	return buf_append(b, s, strlen(s));
}

static int valid_req(const struct s3_sign_req *r)
{
	const char *scope_parts[] = {r->region, r->service, r->access_key};

	if (!r->method || !*r->method || !r->path || r->path[0] != '/' ||
	    !r->secret_key || !*r->secret_key)
		return 0;
	for (const char *m = r->method; *m; m++)
		if (*m < 'A' || *m > 'Z')
			return 0;
	for (size_t i = 0; i < 3; i++) {
		const char *s = scope_parts[i];
		if (!s || !*s || strlen(s) > 128)
			return 0;
		for (; *s; s++)
			if (*s == '/' || *s == ',' || *s == '=' ||
			    (unsigned char)*s <= ' ' || *s == 127)
				return 0;
	}
	if (r->payload_sha256_hex && strlen(r->payload_sha256_hex) > 64)
		return 0;
	return 1;
}

/* Canonical request into creq, the signed header list into sh. */
static int canonical_request(const struct s3_sign_req *r, const char *date,
			     struct buf *creq, struct buf *sh)
{
	const char *payload = r->payload_sha256_hex ? r->payload_sha256_hex
						    : S3_SIGN_EMPTY_SHA256;
	struct hdr h[S3_SIGN_MAX_HEADERS + 3];
	size_t nh = 0, qlen = r->query ? 3 * strlen(r->query) + 1 : 1;
	char *q = malloc(qlen);
	int ret = -ENOMEM;

	memset(h, 0, sizeof(h));
	if (!q)
		goto out;
	ret = s3_sign_canonical_query(r->query, q, qlen);
	if (!ret)
		ret = collect_headers(r, payload, date, h, &nh);
	if (!ret)
		ret = append_str(creq, r->method);
	if (!ret)
		ret = buf_append(creq, "\n", 1);
	if (!ret)
		ret = canonical_uri(r, creq);
	if (!ret)
		ret = buf_append(creq, "\n", 1);
	if (!ret)
		ret = append_str(creq, q);
	if (!ret)
		ret = buf_append(creq, "\n", 1);
	if (!ret)
		ret = append_headers(creq, sh, h, nh);
	if (!ret)
		ret = buf_append(creq, "\n", 1);
	if (!ret)
		ret = append_str(creq, (const char *)sh->p);
	if (!ret)
		ret = buf_append(creq, "\n", 1);
	if (!ret)
		ret = append_str(creq, payload);
	if (!ret)
		ret = buf_append(creq, "", 1);
out:
	for (size_t i = 0; i < nh; i++) {
		free(h[i].name);
		free(h[i].value);
	}
	free(q);
	return ret == -E2BIG ? -ENOSPC : ret;
}

static int hmac(const void *key, size_t klen, const char *msg,
		unsigned char out[32])
{
	unsigned int len = 0;

	if (!HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg,
		  strlen(msg), out, &len) ||
	    len != 32)
		return -EIO;
	return 0;
}

/* kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), svc),
 * "aws4_request"), then the signature over the string to sign. */
static int signature(const struct s3_sign_req *r, const char *day,
		     const char *sts, char out[65])
{
	size_t slen = strlen(r->secret_key);
	char *k0 = malloc(slen + 5);
	unsigned char k[32], sig[32];
	int ret = -ENOMEM;

	if (!k0)
		goto out;
	memcpy(k0, "AWS4", 4);
	memcpy(k0 + 4, r->secret_key, slen + 1);
	ret = hmac(k0, slen + 4, day, k);
	if (!ret)
		ret = hmac(k, 32, r->region, k);
	if (!ret)
		ret = hmac(k, 32, r->service, k);
	if (!ret)
		ret = hmac(k, 32, "aws4_request", k);
	if (!ret)
		ret = hmac(k, 32, sts, sig);
	if (!ret)
		s3_sign_hex(sig, 32, out);
	OPENSSL_cleanse(k0, slen + 4);
	OPENSSL_cleanse(k, sizeof(k));
out:
	free(k0);
	return ret;
}

int s3_sign(const struct s3_sign_req *r, struct s3_sign_result *res)
{
	struct buf creq, sh, sts;
	char day[9], scope[512], hash[65];
	int ret = -EINVAL, w;

	memset(res, 0, sizeof(*res));
	buf_init(&creq, TEXT_LIMIT);
	buf_init(&sh, TEXT_LIMIT);
	buf_init(&sts, TEXT_LIMIT);
	if (!valid_req(r))
		goto out;
	s3_sign_amz_date(r->now, res->amz_date);
	memcpy(day, res->amz_date, 8);
	day[8] = '\0';
	snprintf(scope, sizeof(scope), "%s/%s/%s/aws4_request", day, r->region,
		 r->service);
	ret = canonical_request(r, res->amz_date, &creq, &sh);
	if (!ret)
		ret = s3_sign_sha256_hex(creq.p, creq.len - 1, hash);
	if (ret)
		goto out;
	w = snprintf(NULL, 0, "%s\n%s\n%s\n%s", ALGORITHM, res->amz_date, scope,
		     hash);
	ret = buf_reserve(&sts, (size_t)w + 1);
	if (ret)
		goto out;
	snprintf((char *)sts.p, (size_t)w + 1, "%s\n%s\n%s\n%s", ALGORITHM,
		 res->amz_date, scope, hash);
	sts.len = (size_t)w + 1;
	ret = signature(r, day, (const char *)sts.p, res->signature);
	if (ret)
		goto out;
	w = snprintf(res->authorization, sizeof(res->authorization),
		     ALGORITHM " Credential=%s/%s, SignedHeaders=%s, "
			       "Signature=%s",
		     r->access_key, scope, (const char *)sh.p, res->signature);
	ret = w < 0 || (size_t)w >= sizeof(res->authorization) ? -ENOSPC : 0;
	if (!ret && (r->flags & S3_SIGN_KEEP_TEXT)) {
		res->canonical_request = buf_steal(&creq, NULL);
		res->string_to_sign = buf_steal(&sts, NULL);
	}
out:
	buf_cleanup(&creq);
	buf_cleanup(&sh);
	buf_cleanup(&sts);
	if (ret)
		res->authorization[0] = '\0';
	return ret == -E2BIG ? -ENOSPC : ret;
}

void s3_sign_result_cleanup(struct s3_sign_result *res)
{
	free(res->canonical_request);
	free(res->string_to_sign);
	res->canonical_request = NULL;
	res->string_to_sign = NULL;
	OPENSSL_cleanse(res->signature, sizeof(res->signature));
}
