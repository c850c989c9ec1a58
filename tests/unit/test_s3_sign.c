/*
 * test_s3_sign.c - the SigV4 signer against published vectors.
 *
 * Two sources: AWS's SigV4 test suite (files under SIGV4_VECTORS, one
 * directory per case, listed with their mode in SIGV4_VECTORS/index: "s3"
 * cases apply to S3 as they are, "normalize" cases need the path
 * normalisation S3 does not do) and the four examples of the S3 API
 * reference, "Signature Calculations for the Authorization Header:
 * Transferring Payload in a Single Chunk", hard-coded below.  Then negative
 * cases: another secret, folded or controlled header values, malformed
 * requests, too small outputs.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "s3_sign.h"
#include "unit.h"

#define SUITE_AK "AKIDEXAMPLE"
#define SUITE_SK "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define S3_AK "AKIAIOSFODNN7EXAMPLE"
#define S3_SK "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define MAXH 16

static char *slurp(const char *dir, const char *name, const char *ext)
{
	char path[1024];
	FILE *f;
	char *s = NULL;
	size_t len = 0;

	snprintf(path, sizeof(path), "%s/%s/%s.%s", dir, name, name, ext);
	f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return NULL;
	}
	if (getdelim(&s, &len, '\0', f) < 0) {
		free(s);
		s = strdup("");
	}
	fclose(f);
	/* the published files differ in whether they end with a newline */
	for (len = strlen(s); len && s[len - 1] == '\n'; len--)
		s[len - 1] = '\0';
	return s;
}

static time_t parse_amz_date(const char *v)
{
	struct tm tm = {0};

	if (!strptime(v, "%Y%m%dT%H%M%SZ", &tm))
		return (time_t)-1;
	return timegm(&tm);
}

struct vreq {
	char *text; /* owns every string below */
	char *method, *path, *query, *body, *token;
	struct s3_sign_header h[MAXH];
	bool owned[MAXH]; /* h[i].value was allocated by a continuation */
	size_t nh;
	time_t now;
};

/*
 * Parse a .req: request line, "Name:value" lines (a line starting with
 * blanks continues the previous value, joined with ',' as the suite's
 * multiline case expects), blank line, body.  X-Amz-Date becomes the
 * signing time and X-Amz-Security-Token the session token, since the
 * signer adds those two itself.
 */
static int parse_req(char *text, struct vreq *r)
{
	char *line, *save = NULL, *sp, *cont = NULL;

	memset(r, 0, sizeof(*r));
	r->text = text;
	r->body = strstr(text, "\n\n");
	if (r->body) {
		*r->body = '\0';
		r->body += 2;
	}
	line = strtok_r(text, "\n", &save);
	if (!line || !(sp = strchr(line, ' ')))
		return -1;
	*sp = '\0';
	r->method = line;
	r->path = sp + 1;
	if (!(sp = strrchr(r->path, ' ')))
		return -1;
	*sp = '\0';
	if ((sp = strchr(r->path, '?'))) {
		*sp = '\0';
		r->query = sp + 1;
	}
	while ((line = strtok_r(NULL, "\n", &save))) {
		if (*line == ' ' || *line == '\t') {
			if (!r->nh)
				return -1;
			size_t i = r->nh - 1;
			if (asprintf(&cont, "%s,%s", r->h[i].value,
				     line + strspn(line, " \t")) < 0)
				return -1;
			if (r->owned[i])
				free((char *)r->h[i].value);
			r->h[i].value = cont;
			r->owned[i] = true;
			continue;
		}
		if (!(sp = strchr(line, ':')) || r->nh == MAXH)
			return -1;
		*sp = '\0';
		if (!strcasecmp(line, "X-Amz-Date")) {
			r->now = parse_amz_date(sp + 1);
		} else if (!strcasecmp(line, "X-Amz-Security-Token")) {
			r->token = sp + 1;
		} else {
			r->h[r->nh].name = line;
			r->h[r->nh++].value = sp + 1;
		}
	}
	return 0;
}

static void free_req(struct vreq *r)
{
	for (size_t i = 0; i < r->nh; i++)
		if (r->owned[i])
			free((char *)r->h[i].value);
	free(r->text);
}

static void run_vector(const char *dir, const char *name, const char *mode)
{
	char *req_text = slurp(dir, name, "req");
	char *creq = slurp(dir, name, "creq");
	char *sts = slurp(dir, name, "sts");
	char *authz = slurp(dir, name, "authz");
	struct vreq v;
	struct s3_sign_result res;
	char payload[65];
	bool normalize = strcmp(mode, "normalize") == 0;

	CHECK(req_text && creq && sts && authz);
	if (!req_text || !creq || !sts || !authz)
		goto out;
	if (parse_req(req_text, &v) < 0) {
		CHECK(!"parsable .req");
		free_req(&v);
		goto out;
	}
	s3_sign_sha256_hex(v.body ? v.body : "", v.body ? strlen(v.body) : 0,
			   payload);
	struct s3_sign_req r = {
	    .method = v.method,
	    .path = v.path,
	    .query = v.query,
	    .headers = v.h,
	    .nheaders = v.nh,
	    .payload_sha256_hex = payload,
	    .region = "us-east-1",
	    .service = "service",
	    .access_key = SUITE_AK,
	    .secret_key = SUITE_SK,
	    .session_token = v.token,
	    .now = v.now,
	    .flags =
		S3_SIGN_KEEP_TEXT | (normalize ? S3_SIGN_NORMALIZE_PATH : 0),
	};
	int ret = s3_sign(&r, &res);
	CHECK_EQ(ret, 0);
	if (ret == 0) {
		CHECK_STR(res.canonical_request, creq);
		CHECK_STR(res.string_to_sign, sts);
		CHECK_STR(res.authorization, authz);
		if (strcmp(res.authorization, authz))
			fprintf(stderr, "  in vector %s\n", name);
	}
	s3_sign_result_cleanup(&res);
	if (normalize) {
		/* S3 keeps such a path as it is: "/example/.." is a key */
		char want[256];
		r.flags = S3_SIGN_KEEP_TEXT;
		CHECK_EQ(s3_sign(&r, &res), 0);
		snprintf(want, sizeof(want), "%s\n%s\n", v.method, v.path);
		CHECK(res.canonical_request &&
		      strncmp(res.canonical_request, want, strlen(want)) == 0);
		CHECK(strcmp(res.authorization, authz) != 0);
		s3_sign_result_cleanup(&res);
	}
	free_req(&v);
out:
	free(creq);
	free(sts);
	free(authz);
}

static void test_suite(void)
{
	char path[1024], line[256];
	FILE *f;
	int n = 0;

	snprintf(path, sizeof(path), "%s/index", SIGV4_VECTORS);
	f = fopen(path, "r");
	CHECK(f != NULL);
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char name[128], mode[32];
		if (sscanf(line, "%127s %31s", name, mode) != 2)
			continue;
		run_vector(SIGV4_VECTORS, name, mode);
		n++;
	}
	fclose(f);
	CHECK(n >= 25);
}

static const char *sig_of(const char *authz)
{
	const char *s = strstr(authz, "Signature=");
	return s ? s + 10 : "";
}

/* 2013-05-24T00:00:00Z, the S3 API reference examples' time. */
#define S3_EXAMPLE_TIME 1369353600

static int s3_example(const char *method, const char *path, const char *query,
		      const struct s3_sign_header *h, size_t nh,
		      const char *payload, const char *secret,
		      struct s3_sign_result *res)
{
	struct s3_sign_req r = {
	    .method = method,
	    .path = path,
	    .query = query,
	    .headers = h,
	    .nheaders = nh,
	    .payload_sha256_hex = payload,
	    .region = "us-east-1",
	    .service = "s3",
	    .access_key = S3_AK,
	    .secret_key = secret,
	    .now = S3_EXAMPLE_TIME,
	    .flags = S3_SIGN_KEEP_TEXT,
	};
	return s3_sign(&r, res);
}

static const struct s3_sign_header host_only[] = {
    {"Host", "examplebucket.s3.amazonaws.com"},
};

static void test_s3_get_object(void)
{
	const struct s3_sign_header h[] = {
	    {"Host", "examplebucket.s3.amazonaws.com"},
	    {"Range", "bytes=0-9"},
	};
	struct s3_sign_result res;

	CHECK_EQ(s3_example("GET", "/test.txt", NULL, h, 2, NULL, S3_SK, &res),
		 0);
	CHECK_STR(res.canonical_request,
		  "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\n"
		  "range:bytes=0-9\nx-amz-content-sha256:" S3_SIGN_EMPTY_SHA256
		  "\nx-amz-date:20130524T000000Z\n\n"
		  "host;range;x-amz-content-sha256;x-amz-"
		  "date\n" S3_SIGN_EMPTY_SHA256);
	CHECK_STR(
	    res.string_to_sign,
	    "AWS4-HMAC-SHA256\n20130524T000000Z\n"
	    "20130524/us-east-1/s3/aws4_request\n"
	    "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972");
	CHECK_STR(
	    res.authorization,
	    "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/"
	    "us-east-1/s3/aws4_request, SignedHeaders=host;range;"
	    "x-amz-content-sha256;x-amz-date, Signature="
	    "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
	CHECK_STR(res.amz_date, "20130524T000000Z");
	s3_sign_result_cleanup(&res);

	/* negative: the same request under another secret */
	CHECK_EQ(s3_example("GET", "/test.txt", NULL, h, 2, NULL,
			    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEZ", &res),
		 0);
	CHECK(strcmp(sig_of(res.authorization),
		     "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c60"
		     "36bdb41") != 0);
	s3_sign_result_cleanup(&res);
}

static void test_s3_put_object(void)
{
	const struct s3_sign_header h[] = {
	    {"Host", "examplebucket.s3.amazonaws.com"},
	    {"Date", "Fri, 24 May 2013 00:00:00 GMT"},
	    {"x-amz-storage-class", "REDUCED_REDUNDANCY"},
	};
	const char *body = "Welcome to Amazon S3.";
	struct s3_sign_result res;
	char payload[65], enc[64];

	s3_sign_sha256_hex(body, strlen(body), payload);
	CHECK_STR(payload, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42"
			   "034a8b803f8b072");
	CHECK_EQ(
	    s3_sign_uri_encode("/test$file.text", 15, true, enc, sizeof(enc)),
	    17);
	CHECK_STR(enc, "/test%24file.text");
	CHECK_EQ(s3_example("PUT", "/test$file.text", NULL, h, 3, payload,
			    S3_SK, &res),
		 0);
	CHECK(strstr(res.authorization,
		     "SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;"
		     "x-amz-storage-class, ") != NULL);
	CHECK_STR(
	    sig_of(res.authorization),
	    "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
	s3_sign_result_cleanup(&res);

	/* negative: one byte more of body is another signature */
	s3_sign_sha256_hex("Welcome to Amazon S3!", 21, payload);
	CHECK_EQ(s3_example("PUT", "/test$file.text", NULL, h, 3, payload,
			    S3_SK, &res),
		 0);
	CHECK(strcmp(sig_of(res.authorization),
		     "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0e"
		     "ce108bd"));
	s3_sign_result_cleanup(&res);
}

static void test_s3_bucket_examples(void)
{
	struct s3_sign_result res;

	CHECK_EQ(s3_example("GET", "/", "lifecycle", host_only, 1, NULL, S3_SK,
			    &res),
		 0);
	CHECK(res.canonical_request &&
	      strncmp(res.canonical_request, "GET\n/\nlifecycle=\n", 17) == 0);
	CHECK_STR(
	    sig_of(res.authorization),
	    "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
	s3_sign_result_cleanup(&res);

	/* unsorted on purpose: the canonical query sorts it */
	CHECK_EQ(s3_example("GET", "/", "prefix=J&max-keys=2", host_only, 1,
			    NULL, S3_SK, &res),
		 0);
	CHECK_STR(
	    sig_of(res.authorization),
	    "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
	s3_sign_result_cleanup(&res);
}

static void test_canonical_query(void)
{
	char out[256];

	CHECK_EQ(s3_sign_canonical_query("uploads", out, sizeof(out)), 0);
	CHECK_STR(out, "uploads=");
	CHECK_EQ(s3_sign_canonical_query("b=2&a=x%2fy&&c", out, sizeof(out)),
		 0);
	CHECK_STR(out, "a=x%2Fy&b=2&c=");
	/* an encoded and a bare space agree; '+' is a plus */
	CHECK_EQ(s3_sign_canonical_query("k=a b+c", out, sizeof(out)), 0);
	CHECK_STR(out, "k=a%20b%2Bc");
	CHECK_EQ(s3_sign_canonical_query("k=a%20b%2Bc", out, sizeof(out)), 0);
	CHECK_STR(out, "k=a%20b%2Bc");
	CHECK_EQ(s3_sign_canonical_query("k=%zz", out, sizeof(out)), -EINVAL);
	CHECK_EQ(s3_sign_canonical_query("k=%4", out, sizeof(out)), -EINVAL);
	CHECK_EQ(s3_sign_canonical_query("long=0123456789", out, 8), -ENOSPC);
	CHECK_EQ(s3_sign_canonical_query(NULL, out, sizeof(out)), 0);
	CHECK_STR(out, "");
}

static void test_uri_encode(void)
{
	char out[32];

	CHECK_EQ(s3_sign_uri_encode("a b/c", 5, true, out, sizeof(out)), 7);
	CHECK_STR(out, "a%20b/c");
	CHECK_EQ(s3_sign_uri_encode("a b/c", 5, false, out, sizeof(out)), 9);
	CHECK_STR(out, "a%20b%2Fc");
	/* S3: an already encoded key is encoded again, once */
	CHECK_EQ(s3_sign_uri_encode("%41", 3, true, out, sizeof(out)), 5);
	CHECK_STR(out, "%2541");
	CHECK_EQ(s3_sign_uri_encode("\xff", 1, true, out, 3), -ENOSPC);
	CHECK_EQ(s3_sign_uri_encode("\xff", 1, true, out, 4), 3);
}

static int sign_with(const struct s3_sign_header *h, size_t nh,
		     const char *token, struct s3_sign_result *res)
{
	struct s3_sign_req r = {
	    .method = "GET",
	    .path = "/b/k",
	    .headers = h,
	    .nheaders = nh,
	    .region = "us-east-1",
	    .service = "s3",
	    .access_key = S3_AK,
	    .secret_key = S3_SK,
	    .session_token = token,
	    .now = S3_EXAMPLE_TIME,
	    .flags = S3_SIGN_KEEP_TEXT,
	};
	int ret = s3_sign(&r, res);
	if (ret)
		s3_sign_result_cleanup(res);
	return ret;
}

static void test_negative(void)
{
	struct s3_sign_result res;
	const struct s3_sign_header folded[] = {{"Host", "h"},
						{"X-Amz-Meta-A", "v1\r\n v2"}};
	const struct s3_sign_header lf[] = {{"Host", "h"}, {"X-A", "a\nb"}};
	const struct s3_sign_header ctl[] = {{"Host", "h"}, {"X-A", "a\x01"}};
	const struct s3_sign_header badname[] = {{"Ho st", "h"}};
	const struct s3_sign_header colon[] = {{"Host:", "h"}};
	const struct s3_sign_header date[] = {{"Host", "h"},
					      {"X-Amz-Date", "x"}};
	const struct s3_sign_header sha[] = {{"Host", "h"},
					     {"x-amz-content-sha256", "x"}};
	const struct s3_sign_header tabs[] = {{"Host", "h"},
					      {"X-A", "\t a \t\t b  "}};

	CHECK_EQ(sign_with(folded, 2, NULL, &res), -EINVAL);
	CHECK_EQ(sign_with(lf, 2, NULL, &res), -EINVAL);
	CHECK_EQ(sign_with(ctl, 2, NULL, &res), -EINVAL);
	CHECK_EQ(sign_with(badname, 1, NULL, &res), -EINVAL);
	CHECK_EQ(sign_with(colon, 1, NULL, &res), -EINVAL);
	CHECK_EQ(sign_with(date, 2, NULL, &res), -EINVAL);
	CHECK_EQ(sign_with(sha, 2, NULL, &res), -EINVAL);
	CHECK_EQ(sign_with(host_only, 1, "tok\nen", &res), -EINVAL);

	/* odd whitespace is trimmed and collapsed, tabs included */
	CHECK_EQ(sign_with(tabs, 2, NULL, &res), 0);
	CHECK(res.canonical_request &&
	      strstr(res.canonical_request, "\nx-a:a b\n") != NULL);
	s3_sign_result_cleanup(&res);

	/* a session token is signed, and changes the signature */
	char plain[65];
	CHECK_EQ(sign_with(host_only, 1, NULL, &res), 0);
	snprintf(plain, sizeof(plain), "%s", res.signature);
	CHECK(strstr(res.authorization, "x-amz-security-token") == NULL);
	s3_sign_result_cleanup(&res);
	CHECK_EQ(sign_with(host_only, 1, "TOKEN", &res), 0);
	CHECK(strstr(res.authorization,
		     "SignedHeaders=host;x-amz-content-sha256;x-amz-date;"
		     "x-amz-security-token,") != NULL);
	CHECK(strcmp(plain, res.signature) != 0);
	s3_sign_result_cleanup(&res);

	/* malformed requests */
	struct s3_sign_req r = {
	    .method = "GET",
	    .path = "/",
	    .region = "us-east-1",
	    .service = "s3",
	    .access_key = S3_AK,
	    .secret_key = S3_SK,
	    .now = S3_EXAMPLE_TIME,
	};
	r.path = "noslash";
	CHECK_EQ(s3_sign(&r, &res), -EINVAL);
	r.path = "/";
	r.method = "get";
	CHECK_EQ(s3_sign(&r, &res), -EINVAL);
	r.method = "GET";
	r.region = "us/east";
	CHECK_EQ(s3_sign(&r, &res), -EINVAL);
	r.region = "us-east-1";
	r.secret_key = "";
	CHECK_EQ(s3_sign(&r, &res), -EINVAL);
	r.secret_key = S3_SK;
	r.query = "a=%";
	CHECK_EQ(s3_sign(&r, &res), -EINVAL);
	r.query = NULL;
	r.nheaders = S3_SIGN_MAX_HEADERS + 1;
	r.headers = host_only;
	CHECK_EQ(s3_sign(&r, &res), -EINVAL);
	r.nheaders = 0;
	CHECK_EQ(s3_sign(&r, &res), 0);
	CHECK(res.canonical_request == NULL); /* not asked to keep it */
	s3_sign_result_cleanup(&res);
}

int main(void)
{
	test_suite();
	test_s3_get_object();
	test_s3_put_object();
	test_s3_bucket_examples();
	test_canonical_query();
	test_uri_encode();
	test_negative();
	return unit_done("test_s3_sign");
}
