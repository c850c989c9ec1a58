/*
 * s3_http.h - an S3 client on libcurl, signing with s3_sign.
 *
 * One struct s3_http per (endpoint, bucket, credential): it keeps a small
 * pool of curl easy handles so connections are reused, signs every request
 * itself (SigV4, x-amz-content-sha256 always sent), goes through an HTTP
 * CONNECT proxy when one is configured (TLS stays end-to-end), verifies TLS
 * by default, and retries 5xx, SlowDown, timeouts and resets with
 * exponential backoff and jitter inside a bounded time budget.
 *
 * Every function returns 0 or -errno and is safe to call from several
 * threads at once on the same struct s3_http.  S3 error codes map to errno
 * in one table (s3_http_errno); the S3 code, HTTP status and request id of
 * the last failure of the calling thread stay in s3_http_last_error() for
 * logs.  Keys are raw (decoded) object keys; the client encodes them.
 */
#ifndef OCCFS_S3_HTTP_H
#define OCCFS_S3_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "buf.h"

#define S3_KEY_MAX 1024
#define S3_ETAG_MAX 128
#define S3_CODE_MAX 64
#define S3_UPLOAD_ID_MAX 512
#define S3_META_MAX 32
#define S3_META_BYTES 4096 /* S3 caps user metadata at 2 KiB */
#define S3_LIST_MAX_KEYS 1000

struct s3_http;

struct s3_http_config {
	const char *endpoint; /* "http://127.0.0.1:7480", "https://host" */
	const char *region;   /* "us-east-1" */
	const char *bucket;   /* NULL for a client used only raw (STS) */
	const char *service;  /* signing service, NULL = "s3" */
	bool virtual_host;    /* bucket.host/key instead of host/bucket/key */
	const char *proxy;    /* HTTP CONNECT proxy URL, or NULL */
	const char *ca_file;  /* CA bundle, NULL = system store */
	bool insecure_tls;    /* skip TLS verification: tests only */
	long connect_timeout_ms; /* 0 = 5000 */
	long request_timeout_ms; /* one attempt; 0 = 300000 */
	long low_speed_time_s;	 /* abort below 1 KiB/s for this long; 0 = 30 */
	int max_attempts;	 /* 0 = 5 */
	long retry_budget_ms;	 /* all attempts and sleeps; 0 = 60000 */
	long retry_base_ms;	 /* first backoff; 0 = 100 */
	int pool_size;		 /* idle handles kept; 0 = 16 */
	bool unsigned_payload;	 /* don't hash fd bodies (https only) */
	/*
	 * Ceph radosgw 16 quirks: PUT If-Match compares the ETag without its
	 * quotes, and the copy precondition is x-amz-copy-if-match.
	 */
	bool rgw_quirks;
};

struct s3_cred {
	const char *access_key;
	const char *secret_key;
	const char *session_token; /* NULL for a long-term key */
};

struct s3_error {
	long status;		/* HTTP status, 0 if none */
	int curl_code;		/* CURLcode of a transport failure, else 0 */
	int err;		/* the -errno returned */
	int attempts;		/* attempts made */
	char code[S3_CODE_MAX]; /* S3 error code ("NoSuchKey"), or "" */
	char request_id[64];
	/*
	 * The request failed after it had gone out whole at least once, so S3
	 * may have applied it; sent_etag is then the ETag the object has if
	 * it did (PutObject, CompleteMultipartUpload), else "".
	 */
	bool ambiguous;
	char sent_etag[S3_ETAG_MAX];
};

struct s3_kv {
	const char *name;
	const char *value;
};

/* A request body: memory, or a range of a file read with pread. */
struct s3_body {
	const void *buf; /* used when not NULL */
	int fd;		 /* used when buf is NULL */
	uint64_t off;	 /* offset in fd */
	uint64_t len;
	const char *sha256_hex; /* precomputed, or NULL to compute */
};

/* Where GET data goes: a buffer of cap bytes, or a file at fd_off. */
struct s3_sink {
	void *buf; /* used when not NULL */
	size_t cap;
	int fd;
	uint64_t fd_off;
	/*
	 * Called (if set) as the reply body arrives: the first got bytes of
	 * the sink hold this attempt's data.  A retry starts again from 0 and
	 * writes the same bytes again (every GET of a range that may be
	 * retried names its object's ETag).
	 */
	void (*progress)(void *arg, uint64_t got);
	void *progress_arg;
};

enum s3_checksum { S3_CHECKSUM_NONE, S3_CHECKSUM_SHA256, S3_CHECKSUM_CRC32C };

struct s3_put_opts {
	const struct s3_kv *meta; /* sent as x-amz-meta-NAME */
	size_t nmeta;
	const char *content_type;
	const char *if_match; /* only if the current ETag is this */
	bool if_none_match;   /* only if the key does not exist */
	enum s3_checksum checksum;
	/*
	 * An earlier PUT of these bytes may have been applied (it failed
	 * ambiguously): a precondition failure is resolved by a HEAD, as
	 * after an ambiguous attempt of this call.
	 */
	bool maybe_applied;
};

enum s3_meta_directive { S3_META_COPY, S3_META_REPLACE };

struct s3_copy_opts {
	enum s3_meta_directive directive;
	const struct s3_kv *meta; /* with S3_META_REPLACE */
	size_t nmeta;
	const char *content_type;
	const char *src_if_match; /* x-amz-copy-source-if-match */
};

struct s3_obj_info {
	uint64_t size; /* whole object, also from a ranged GET */
	time_t mtime;
	char etag[S3_ETAG_MAX]; /* as sent, with its quotes */
	char content_type[128];
	size_t nmeta; /* names lower case, without "x-amz-meta-" */
	struct {
		const char *name, *value; /* into meta_buf */
	} meta[S3_META_MAX];
	bool meta_truncated;
	size_t meta_used;
	char meta_buf[S3_META_BYTES];
};

struct s3_list_entry {
	char *key;
	uint64_t size;
	time_t mtime;
	char etag[S3_ETAG_MAX];
};

struct s3_list_page {
	struct s3_list_entry *entries;
	size_t nentries;
	char **prefixes; /* CommonPrefixes */
	size_t nprefixes;
	bool truncated;
	char *next_token; /* pass back to continue; NULL at the end */
};

struct s3_part {
	int number; /* 1..10000 */
	const char *etag;
};

/* A request outside the object API (STS, bucket operations). */
struct s3_http_raw {
	const char *method;
	const char *path;  /* raw path below the endpoint; NULL = "/" */
	const char *query; /* raw query, or NULL */
	const struct s3_kv *headers;
	size_t nheaders;
	const void *body;
	size_t body_len;
	size_t resp_limit; /* 0 = 1 MiB */
};

struct s3_http *s3_http_new(const struct s3_http_config *cfg);
void s3_http_free(struct s3_http *h);
/* Replace the credential; requests already signed keep the old one. */
int s3_http_set_cred(struct s3_http *h, const struct s3_cred *cred);

/* ETags equal, with or without their quotes; an empty one equals none. */
bool s3_etag_eq(const char *a, const char *b);
/*
 * An ETag as S3 gives it in headers and listings: in quotes.  radosgw
 * answers CopyObject with a bare one, and caches compare ETags as strings.
 */
void s3_etag_quote(char etag[S3_ETAG_MAX]);

int s3_http_put_object(struct s3_http *h, const char *key,
		       const struct s3_body *body, const struct s3_put_opts *o,
		       char etag[S3_ETAG_MAX]);
/*
 * Read len bytes from off (len 0 = to the end) into sink; *got is the
 * byte count.  Reading at or past the end gives 0 and *got = 0.  A buffer
 * sink too small for the reply gives -EOVERFLOW.  info and if_match may be
 * NULL.
 */
int s3_http_get_object(struct s3_http *h, const char *key, uint64_t off,
		       uint64_t len, const struct s3_sink *sink,
		       const char *if_match, size_t *got,
		       struct s3_obj_info *info);
int s3_http_head_object(struct s3_http *h, const char *key,
			struct s3_obj_info *info);
int s3_http_delete_object(struct s3_http *h, const char *key);
int s3_http_copy_object(struct s3_http *h, const char *src_key,
			const char *dst_key, const struct s3_copy_opts *o,
			char etag[S3_ETAG_MAX]);

/* ListObjectsV2; prefix, delimiter, token may be NULL; max_keys 0 = 1000. */
int s3_http_list(struct s3_http *h, const char *prefix, const char *delimiter,
		 const char *token, int max_keys, struct s3_list_page *page);
void s3_http_list_free(struct s3_list_page *page);

int s3_http_mpu_create(struct s3_http *h, const char *key,
		       const struct s3_put_opts *o,
		       char upload_id[S3_UPLOAD_ID_MAX]);
int s3_http_mpu_put_part(struct s3_http *h, const char *key,
			 const char *upload_id, int part,
			 const struct s3_body *body, char etag[S3_ETAG_MAX]);
/* UploadPartCopy of bytes [off, off + len) of src_key (len 0 = whole). */
int s3_http_mpu_copy_part(struct s3_http *h, const char *key,
			  const char *upload_id, int part, const char *src_key,
			  uint64_t off, uint64_t len, const char *src_if_match,
			  char etag[S3_ETAG_MAX]);
int s3_http_mpu_complete(struct s3_http *h, const char *key,
			 const char *upload_id, const struct s3_part *parts,
			 size_t nparts, char etag[S3_ETAG_MAX]);
int s3_http_mpu_abort(struct s3_http *h, const char *key,
		      const char *upload_id);
/*
 * The ETag S3 gives the object completed from these parts: the MD5 of the
 * parts' binary MD5s, "-" and the count, quoted.  -EINVAL when a part's
 * ETag is not a plain MD5.
 */
int s3_http_mpu_etag(const struct s3_part *parts, size_t nparts,
		     char etag[S3_ETAG_MAX]);

/* Signed request; on success *status is 2xx and resp holds the body. */
int s3_http_request_raw(struct s3_http *h, const struct s3_http_raw *rq,
			long *status, struct buf *resp);

/* The calling thread's last failure (valid until its next request). */
const struct s3_error *s3_http_last_error(void);

/* S3 error code and HTTP status to -errno (the one table). */
int s3_http_errno(long status, const char *code);

/*
 * Bounded XML scanning for S3's flat replies: the text of the first
 * <tag>...</tag> in [xml, xml + len), entities decoded, into out.
 * Returns 0, -ENOENT when absent, -ENOSPC when it does not fit.
 */
int s3_http_xml_text(const char *xml, size_t len, const char *tag, char *out,
		     size_t outlen);
/* The next <tag>...</tag> at or after *pos: inner text span, *pos moved. */
int s3_http_xml_next(const char *xml, size_t len, size_t *pos, const char *tag,
		     const char **inner, size_t *inner_len);

#endif
