/*
 * s3_sign.h - AWS Signature Version 4 for the broker's object-store leg.
 *
 * Pure functions over OpenSSL: no I/O, no libcurl, no global state.  The
 * HTTP client builds a request, asks s3_sign() for the Authorization header
 * and the x-amz-date it must send, and sends exactly the headers it listed.
 *
 * Paths are given raw (decoded: "/bucket/my key") and encoded exactly once
 * with S3's rule (every byte but A-Z a-z 0-9 - . _ ~ and '/'), which is also
 * how the client must put them in the URL: s3_sign_uri_encode() does both.
 * Paths are not normalised unless S3_SIGN_NORMALIZE_PATH is set (S3 keys
 * may contain "//" and "..", which other AWS services would collapse).
 */
#ifndef OCCFS_S3_SIGN_H
#define OCCFS_S3_SIGN_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#define S3_SIGN_UNSIGNED_PAYLOAD "UNSIGNED-PAYLOAD"
#define S3_SIGN_EMPTY_SHA256 \
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define S3_SIGN_AUTH_MAX 2048 /* Authorization header value */
#define S3_SIGN_DATE_LEN 16   /* "20150830T123600Z" */
#define S3_SIGN_MAX_HEADERS 64

enum {
	/* remove "." and ".." segments and empty segments (not for S3) */
	S3_SIGN_NORMALIZE_PATH = 1 << 0,
	/* keep the canonical request and string to sign in the result */
	S3_SIGN_KEEP_TEXT = 1 << 1,
};

struct s3_sign_header {
	const char *name;  /* any case; must not be x-amz-date (added here) */
	const char *value; /* trimmed and inner space runs collapsed here;
			      CR or LF inside is refused (-EINVAL) */
};

struct s3_sign_req {
	const char *method; /* "GET", "PUT", ... */
	const char *path;   /* raw, decoded, starting with '/' */
	const char *query;  /* raw query without '?', or NULL; %XX and bare
			       bytes both accepted, re-encoded canonically */
	const struct s3_sign_header *headers; /* all are signed; host needed */
	size_t nheaders;
	/*
	 * Lower-case hex SHA-256 of the body, or S3_SIGN_UNSIGNED_PAYLOAD;
	 * NULL means an empty body.  When service is "s3" the header
	 * x-amz-content-sha256 carrying this value is signed (the caller
	 * sends it; s3_sign does not add headers to the wire itself).
	 */
	const char *payload_sha256_hex;
	const char *region;  /* "us-east-1" */
	const char *service; /* "s3", "sts" */
	const char *access_key;
	const char *secret_key;
	const char *session_token; /* NULL, or signed as x-amz-security-token */
	time_t now;
	unsigned flags; /* S3_SIGN_* */
};

struct s3_sign_result {
	char authorization[S3_SIGN_AUTH_MAX];
	char amz_date[S3_SIGN_DATE_LEN + 1]; /* send as x-amz-date */
	char signature[65];
	char *canonical_request; /* only with S3_SIGN_KEEP_TEXT */
	char *string_to_sign;	 /* only with S3_SIGN_KEEP_TEXT */
};

/*
 * Sign a request.  Headers signed are the caller's plus x-amz-date, plus
 * x-amz-content-sha256 for service "s3", plus x-amz-security-token when a
 * session token is given.  Returns 0, -EINVAL on a malformed request,
 * -ENOSPC when the result does not fit, -ENOMEM, -EIO on a crypto failure.
 * Call s3_sign_result_cleanup() afterwards in every case.
 */
int s3_sign(const struct s3_sign_req *req, struct s3_sign_result *res);
void s3_sign_result_cleanup(struct s3_sign_result *res);

/* "YYYYMMDDTHHMMSSZ" of t (UTC) into out[S3_SIGN_DATE_LEN + 1]. */
void s3_sign_amz_date(time_t t, char *out);

/*
 * Percent-encode n bytes of in (AWS's rule: unreserved bytes stay, the rest
 * become %XX in upper case; '/' stays when keep_slash).  Returns the length
 * written (NUL-terminated) or -ENOSPC.
 */
int s3_sign_uri_encode(const char *in, size_t n, bool keep_slash, char *out,
		       size_t outlen);

/* Canonical query string of a raw query (sorted, fully encoded). */
int s3_sign_canonical_query(const char *query, char *out, size_t outlen);

/* Lower-case hex SHA-256 of a buffer into out[65]. 0 or -EIO. */
int s3_sign_sha256_hex(const void *p, size_t n, char *out);
/* Lower-case hex of n bytes into out[2n + 1]. */
void s3_sign_hex(const unsigned char *p, size_t n, char *out);

#endif
