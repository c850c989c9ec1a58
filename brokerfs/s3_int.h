/*
 * s3_int.h - what s3_http.c, s3_xml.c and s3_ops.c share: the client and
 * request structures, the request plumbing and the reply parsers.  Not
 * public API: users of the client include s3_http.h only.
 */
#ifndef OCCFS_S3_INT_H
#define OCCFS_S3_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#include "buf.h"
#include "s3_http.h"

#define POOL_MAX 64
#define MAX_HDRS 40
#define ERR_BODY_MAX (64 * 1024)

struct s3_http {
	char *scheme_host; /* "http://127.0.0.1:7480" (bucket host if vhost) */
	char *host;	   /* Host header value */
	char *bucket, *region, *service, *proxy, *ca_file;
	struct s3_http_config cfg;
	pthread_mutex_t lock; /* protects idle, nidle, ak, sk, token */
	CURL *idle[POOL_MAX];
	int nidle;
	char *ak, *sk, *token;
};

struct req {
	const char *method;
	char path[3 * S3_KEY_MAX + 512]; /* raw, for signing */
	const char *query;		 /* raw, canonicalised here */
	struct s3_kv hdr[MAX_HDRS];
	size_t nhdr;
	const struct s3_body *body;
	const void *mem; /* small in-memory body (XML, form) */
	size_t memlen;
	const char *payload_hash;   /* of mem or body */
	const struct s3_sink *sink; /* GET data on 2xx */
	struct buf *resp;	    /* other replies */
	struct s3_obj_info *info;   /* headers of the reply */
	bool error_in_200;	    /* CopyObject, CompleteMultipartUpload */
	/*
	 * Across attempts.  deadline: CLOCK_MONOTONIC ms past which no
	 * attempt, sleep or resolving HEAD may run; 0 = now + retry budget,
	 * set by s3_perform (a caller passes its own to share its budget).
	 * ambiguous: an attempt failed after the whole request had gone out,
	 * so S3 may have applied it; a later precondition failure or 404 is
	 * then resolved, not reported.
	 */
	uint64_t deadline;
	bool ambiguous;
	/* per attempt */
	long status;
	uint64_t sent, got;
	bool overflow;
	long t_conn; /* connections curl opened; times in us (debug log) */
	int64_t t_pre, t_start, t_total;
	char hdrbuf[8192]; /* strings for hdr[] built by the operations */
	size_t hdrused;
};

/* s3_http.c: request plumbing and execution */
const char *s3_req_str(struct req *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int s3_req_hdr(struct req *r, const char *name, const char *value);
int s3_valid_key(const char *key);
/* path = "/bucket/key" (path style) or "/key" (virtual host). */
int s3_req_init(struct s3_http *h, struct req *r, const char *method,
		const char *key);
int s3_perform(struct s3_http *h, struct req *r, enum s3_checksum ck);
uint64_t s3_now_ms(void);

/* s3_xml.c: reply parsers */
int s3_xml_etag(struct buf *b, char *etag);
int s3_xml_parse_list(const char *x, size_t n, struct s3_list_page *pg);

#endif
