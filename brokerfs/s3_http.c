/*
 * s3_http.c - the S3 client: transport, signing, retries, error mapping.
 *
 * One function, s3_perform(), runs every request: it takes a curl handle from
 * the pool, signs with s3_sign (we never use CURLOPT_AWS_SIGV4, so the
 * bytes signed are the bytes sent), sends, classifies the answer and
 * retries what is worth retrying.  The operations (PutObject, ListObjectsV2,
 * multipart, ...) only fill in a struct req and read the answer; they live
 * in s3_ops.c.  Replies are read into bounded buffers; S3's XML is scanned
 * by a small bounded tag scanner in s3_xml.c (its replies are flat,
 * attribute-free and small), not a general XML parser.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#include "log.h"
#include "s3_http.h"
#include "s3_int.h"
#include "s3_sign.h"

#define HASH_CHUNK (256 * 1024)

static __thread struct s3_error last_err;

const struct s3_error *s3_http_last_error(void)
{
	return &last_err;
}

/* ---- error table ------------------------------------------------------ */

/*
 * What the guest sees.  Transient failures (SlowDown, 5xx, timeouts,
 * resets, refused connections) are retried inside the budget; when they
 * outlast it the answer is EIO, the guest's "the backend failed", never
 * EAGAIN (which applications read as "try the same call again now").
 */

static const struct {
	const char *code;
	int err;
} code_map[] = {
    {"NoSuchKey", ENOENT},
    {"NoSuchUpload", ENOENT},
    {"NoSuchBucket", ENOENT},
    {"AccessDenied", EACCES},
    {"AllAccessDisabled", EACCES},
    {"InvalidAccessKeyId", EACCES},
    {"SignatureDoesNotMatch", EACCES},
    {"InvalidToken", EACCES},
    {"InvalidSecurity", EACCES},
    {"RequestTimeTooSkewed", EACCES},
    {"ExpiredToken", EKEYEXPIRED},
    {"TokenRefreshRequired", EKEYEXPIRED},
    {"PreconditionFailed", ESTALE},
    {"ConditionalRequestConflict", ESTALE},
    {"SlowDown", EIO},
    {"ServiceUnavailable", EIO},
    {"InternalError", EIO},
    {"RequestTimeout", EIO},
    {"OperationAborted", EBUSY},
    {"EntityTooLarge", EFBIG},
    {"KeyTooLongError", ENAMETOOLONG},
    {"QuotaExceeded", EDQUOT},
    {"InvalidRange", ERANGE},
    {"NotImplemented", EOPNOTSUPP},
    {"MethodNotAllowed", EPERM},
    {"InvalidPart", EINVAL},
    {"InvalidPartOrder", EINVAL},
    {"EntityTooSmall", EINVAL},
    {"InvalidArgument", EINVAL},
    {"InvalidRequest", EINVAL},
    {"MalformedXML", EINVAL},
};

int s3_http_errno(long status, const char *code)
{
	for (size_t i = 0; code && i < sizeof(code_map) / sizeof(*code_map);
	     i++)
		if (!strcmp(code, code_map[i].code))
			return -code_map[i].err;
	if (status >= 500)
		return -EIO;
	switch (status) {
	case 401:
	case 403:
		return -EACCES;
	case 404:
		return -ENOENT;
	case 409:
		return -EBUSY;
	case 412:
		return -ESTALE;
	case 416:
		return -ERANGE;
	case 429:
		return -EIO;
	}
	/* 0: no reply at all (transport failure) */
	return status >= 400 ? -EINVAL : -EIO;
}

static bool retryable(long status, const char *code, int curl_code)
{
	switch (curl_code) {
	case CURLE_OK:
		break;
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_HTTP2_STREAM:
	case CURLE_SEND_FAIL_REWIND:
	case CURLE_WEIRD_SERVER_REPLY:
	case CURLE_SSL_CONNECT_ERROR:
		return true;
	default:
		return false;
	}
	if (status >= 500 || status == 429)
		return true;
	return !strcmp(code, "SlowDown") || !strcmp(code, "RequestTimeout") ||
	       !strcmp(code, "InternalError");
}

/* A transport failure: could S3 have applied the request anyway? */
static bool transport_ambiguous(int c, bool sent_whole)
{
	switch (c) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_OUT_OF_MEMORY:
		return false; /* never reached the server */
	default:
		/* S3 acts on a request only once its body is complete */
		return sent_whole;
	}
}

/* ---- client ----------------------------------------------------------- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void)
{
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		log_err("s3: curl_global_init failed");
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

struct s3_http *s3_http_new(const struct s3_http_config *cfg)
{
	struct s3_http *h;
	const char *hs;
	size_t hl;

	if (!cfg->endpoint || !cfg->region ||
	    (strncmp(cfg->endpoint, "http://", 7) &&
	     strncmp(cfg->endpoint, "https://", 8))) {
		errno = EINVAL;
		return NULL;
	}
	hs = strstr(cfg->endpoint, "://") + 3;
	hl = strcspn(hs, "/");
	if (hl == 0 || (hs[hl] && strcmp(hs + hl, "/")) ||
	    (cfg->virtual_host && !cfg->bucket)) {
		errno = EINVAL; /* no base path: S3 lives at the root */
		return NULL;
	}
	pthread_once(&curl_once, curl_init_once);
	h = calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	pthread_mutex_init(&h->lock, NULL);
	h->cfg = *cfg;
	if (cfg->virtual_host) {
		size_t sl = (size_t)(hs - cfg->endpoint);
		if (asprintf(&h->host, "%s.%.*s", cfg->bucket, (int)hl, hs) <
			0 ||
		    asprintf(&h->scheme_host, "%.*s%s", (int)sl, cfg->endpoint,
			     h->host) < 0)
			goto fail;
	} else {
		h->host = strndup(hs, hl);
		h->scheme_host =
		    strndup(cfg->endpoint, (size_t)(hs - cfg->endpoint) + hl);
	}
	h->bucket = dup_or_null(cfg->bucket);
	h->region = strdup(cfg->region);
	h->service = strdup(cfg->service ? cfg->service : "s3");
	h->proxy = dup_or_null(cfg->proxy);
	h->ca_file = dup_or_null(cfg->ca_file);
	if (!h->host || !h->scheme_host || !h->region || !h->service ||
	    (cfg->bucket && !h->bucket) || (cfg->proxy && !h->proxy) ||
	    (cfg->ca_file && !h->ca_file))
		goto fail;
	h->cfg.connect_timeout_ms = cfg->connect_timeout_ms ?: 5000;
	h->cfg.request_timeout_ms = cfg->request_timeout_ms ?: 300000;
	h->cfg.low_speed_time_s = cfg->low_speed_time_s ?: 30;
	h->cfg.max_attempts = cfg->max_attempts > 0 ? cfg->max_attempts : 5;
	h->cfg.retry_budget_ms = cfg->retry_budget_ms ?: 60000;
	h->cfg.retry_base_ms = cfg->retry_base_ms ?: 100;
	h->cfg.pool_size = cfg->pool_size > 0 ? cfg->pool_size : 16;
	if (h->cfg.pool_size > POOL_MAX)
		h->cfg.pool_size = POOL_MAX;
	return h;
fail:
	s3_http_free(h);
	errno = ENOMEM;
	return NULL;
}

static void free_secret(char *s)
{
	if (s) {
		OPENSSL_cleanse(s, strlen(s));
		free(s);
	}
}

void s3_http_free(struct s3_http *h)
{
	if (!h)
		return;
	for (int i = 0; i < h->nidle; i++)
		curl_easy_cleanup(h->idle[i]);
	pthread_mutex_destroy(&h->lock);
	free(h->scheme_host);
	free(h->host);
	free(h->bucket);
	free(h->region);
	free(h->service);
	free(h->proxy);
	free(h->ca_file);
	free(h->ak);
	free_secret(h->sk);
	free_secret(h->token);
	free(h);
}

int s3_http_set_cred(struct s3_http *h, const struct s3_cred *c)
{
	char *ak, *sk, *tok = NULL;

	if (!c->access_key || !*c->access_key || !c->secret_key ||
	    !*c->secret_key)
		return -EINVAL;
	ak = strdup(c->access_key);
	sk = strdup(c->secret_key);
	if (c->session_token)
		tok = strdup(c->session_token);
	if (!ak || !sk || (c->session_token && !tok)) {
		free(ak);
		free_secret(sk);
		free_secret(tok);
		return -ENOMEM;
	}
	pthread_mutex_lock(&h->lock);
	free(h->ak);
	free_secret(h->sk);
	free_secret(h->token);
	h->ak = ak;
	h->sk = sk;
	h->token = tok;
	pthread_mutex_unlock(&h->lock);
	return 0;
}

static CURL *pool_take(struct s3_http *h)
{
	CURL *c = NULL;

	pthread_mutex_lock(&h->lock);
	if (h->nidle)
		c = h->idle[--h->nidle];
	pthread_mutex_unlock(&h->lock);
	return c ? c : curl_easy_init();
}

/* A handle keeps its connection across curl_easy_reset. */
static void pool_give(struct s3_http *h, CURL *c, bool keep)
{
	if (keep) {
		curl_easy_reset(c);
		pthread_mutex_lock(&h->lock);
		if (h->nidle < h->cfg.pool_size) {
			h->idle[h->nidle++] = c;
			c = NULL;
		}
		pthread_mutex_unlock(&h->lock);
	}
	if (c)
		curl_easy_cleanup(c);
}

/* ---- request plumbing --------------------------------------------------- */

const char *s3_req_str(struct req *r, const char *fmt, ...)
{
	va_list ap;
	char *p = r->hdrbuf + r->hdrused;
	size_t room = sizeof(r->hdrbuf) - r->hdrused;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(p, room, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= room)
		return NULL;
	r->hdrused += (size_t)n + 1;
	return p;
}

int s3_req_hdr(struct req *r, const char *name, const char *value)
{
	if (!value || r->nhdr == MAX_HDRS)
		return -ENOSPC;
	r->hdr[r->nhdr].name = name;
	r->hdr[r->nhdr++].value = value;
	return 0;
}

int s3_valid_key(const char *key)
{
	size_t n = key ? strlen(key) : 0;

	return n > 0 && n <= S3_KEY_MAX;
}

/* path = "/bucket/key" (path style) or "/key" (virtual host). */
int s3_req_init(struct s3_http *h, struct req *r, const char *method,
		const char *key)
{
	int n;

	memset(r, 0, sizeof(*r));
	r->method = method;
	if (key && !s3_valid_key(key))
		return -ENAMETOOLONG;
	if (!h->bucket)
		return -EINVAL;
	if (h->cfg.virtual_host)
		n = snprintf(r->path, sizeof(r->path), "/%s", key ? key : "");
	else
		n = snprintf(r->path, sizeof(r->path), "/%s%s%s", h->bucket,
			     key ? "/" : "", key ? key : "");
	return n < 0 || (size_t)n >= sizeof(r->path) ? -ENAMETOOLONG : 0;
}

static uint64_t body_len(const struct req *r)
{
	return r->body ? r->body->len : r->memlen;
}

static size_t on_read(char *dst, size_t size, size_t nmemb, void *arg)
{
	struct req *r = arg;
	uint64_t total = body_len(r);
	size_t n = size * nmemb;

	if (n > total - r->sent)
		n = (size_t)(total - r->sent);
	if (n == 0)
		return 0;
	if (r->mem) {
		memcpy(dst, (const char *)r->mem + r->sent, n);
	} else if (r->body->buf) {
		memcpy(dst, (const char *)r->body->buf + r->sent, n);
	} else {
		ssize_t k =
		    pread(r->body->fd, dst, n, (off_t)(r->body->off + r->sent));
		if (k <= 0)
			return CURL_READFUNC_ABORT;
		n = (size_t)k;
	}
	r->sent += n;
	return n;
}

/*
 * curl resends a request by itself when a reused connection turns out to
 * be dead; the request may have reached the server by then.
 */
static int on_seek(void *arg, curl_off_t off, int origin)
{
	struct req *r = arg;

	if (origin != SEEK_SET || off != 0)
		return CURL_SEEKFUNC_CANTSEEK;
	if (r->sent == body_len(r))
		r->ambiguous = true;
	r->sent = 0;
	return CURL_SEEKFUNC_OK;
}

static size_t on_write(char *data, size_t size, size_t nmemb, void *arg)
{
	struct req *r = arg;
	size_t n = size * nmemb;
	const struct s3_sink *s = r->sink;

	if (s && r->status >= 200 && r->status < 300) {
		if (s->buf) {
			if (n > s->cap - r->got) {
				r->overflow = true;
				return 0;
			}
			memcpy((char *)s->buf + r->got, data, n);
		} else {
			for (size_t w = 0; w < n;) {
				ssize_t k =
				    pwrite(s->fd, data + w, n - w,
					   (off_t)(s->fd_off + r->got + w));
				if (k < 0)
					return 0;
				w += (size_t)k;
			}
		}
		r->got += n;
		if (s->progress)
			s->progress(s->progress_arg, r->got);
		return n;
	}
	if (!r->resp)
		return n;
	if (buf_append(r->resp, data, n) < 0) {
		r->overflow = true;
		return 0;
	}
	return n;
}

static void info_meta(struct s3_obj_info *in, const char *name, size_t nl,
		      const char *val, size_t vl)
{
	size_t need = nl + vl + 2;
	char *p;

	if (in->nmeta == S3_META_MAX || in->meta_used + need > S3_META_BYTES) {
		in->meta_truncated = true;
		return;
	}
	p = in->meta_buf + in->meta_used;
	for (size_t i = 0; i < nl; i++)
		p[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] + 32
							       : name[i]);
	p[nl] = '\0';
	memcpy(p + nl + 1, val, vl);
	p[nl + 1 + vl] = '\0';
	in->meta[in->nmeta].name = p;
	in->meta[in->nmeta++].value = p + nl + 1;
	in->meta_used += need;
}

static void copy_val(char *dst, size_t cap, const char *v, size_t n)
{
	if (n >= cap)
		n = cap - 1;
	memcpy(dst, v, n);
	dst[n] = '\0';
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *arg)
{
	struct req *r = arg;
	size_t n = size * nmemb, nl, vl;
	const char *colon, *v;
	struct s3_obj_info *in = r->info;
	char tmp[256];

	if (n > 5 && !strncmp(data, "HTTP/", 5)) {
		/* a new response (proxy CONNECT reply, 100, the real one) */
		const char *sp = memchr(data, ' ', n);
		r->status = sp ? strtol(sp + 1, NULL, 10) : 0;
		if (in)
			memset(in, 0, sizeof(*in));
		return n;
	}
	colon = memchr(data, ':', n);
	if (!colon)
		return n;
	nl = (size_t)(colon - data);
	v = colon + 1;
	vl = n - nl - 1;
	while (vl && (*v == ' ' || *v == '\t'))
		v++, vl--;
	while (vl &&
	       (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
		vl--;
	if (nl == 16 && !strncasecmp(data, "x-amz-request-id", nl))
		copy_val(last_err.request_id, sizeof(last_err.request_id), v,
			 vl);
	if (!in)
		return n;
	copy_val(tmp, sizeof(tmp), v, vl);
	if (nl == 4 && !strncasecmp(data, "etag", 4)) {
		copy_val(in->etag, sizeof(in->etag), v, vl);
	} else if (nl == 14 && !strncasecmp(data, "content-length", nl)) {
		if (!in->size)
			in->size = strtoull(tmp, NULL, 10);
	} else if (nl == 13 && !strncasecmp(data, "content-range", nl)) {
		const char *slash = strchr(tmp, '/');
		if (slash && slash[1] != '*')
			in->size = strtoull(slash + 1, NULL, 10);
	} else if (nl == 13 && !strncasecmp(data, "last-modified", nl)) {
		time_t t = curl_getdate(tmp, NULL);
		in->mtime = t < 0 ? 0 : t;
	} else if (nl == 12 && !strncasecmp(data, "content-type", nl)) {
		copy_val(in->content_type, sizeof(in->content_type), v, vl);
	} else if (nl > 11 && !strncasecmp(data, "x-amz-meta-", 11)) {
		info_meta(in, data + 11, nl - 11, v, vl);
	}
	return n;
}

/* ---- payload digests ---------------------------------------------------- */

static uint32_t crc32c_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;
static void crc32c_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
		crc32c_table[i] = c;
	}
}

static uint32_t crc32c_update(uint32_t crc, const unsigned char *p, size_t n)
{
	while (n--)
		crc = crc32c_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return crc;
}

/* SHA-256 and, when crc is not NULL, CRC32C of a body. */
static int body_digest(const struct s3_body *b, unsigned char sha[32],
		       uint32_t *crc)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char *chunk = NULL;
	uint32_t c = 0xffffffffu;
	int ret = -ENOMEM;

	pthread_once(&crc_once, crc32c_init);
	if (!ctx || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL))
		goto out;
	if (b->buf) {
		EVP_DigestUpdate(ctx, b->buf, b->len);
		if (crc)
			c = crc32c_update(c, b->buf, b->len);
	} else {
		/* small bodies (most PUTs) stay below malloc's mmap size */
		chunk = malloc(b->len < HASH_CHUNK ? b->len + 1 : HASH_CHUNK);
		if (!chunk)
			goto out;
		for (uint64_t done = 0; done < b->len;) {
			size_t want = b->len - done > HASH_CHUNK
					  ? HASH_CHUNK
					  : (size_t)(b->len - done);
			ssize_t k =
			    pread(b->fd, chunk, want, (off_t)(b->off + done));
			if (k <= 0) {
				ret = k < 0 ? -errno : -EIO;
				goto out;
			}
			EVP_DigestUpdate(ctx, chunk, (size_t)k);
			if (crc)
				c = crc32c_update(c, chunk, (size_t)k);
			done += (uint64_t)k;
		}
	}
	ret = EVP_DigestFinal_ex(ctx, sha, NULL) ? 0 : -EIO;
	if (crc)
		*crc = c ^ 0xffffffffu;
out:
	free(chunk);
	EVP_MD_CTX_free(ctx);
	return ret;
}

/* x-amz-content-sha256 for this request (and checksum headers if asked). */
static int payload_hash(struct s3_http *h, struct req *r, char out[65],
			enum s3_checksum ck)
{
	unsigned char sha[32];
	uint32_t crc;
	int ret;

	if (r->mem)
		return s3_sign_sha256_hex(r->mem, r->memlen, out);
	if (!r->body) {
		snprintf(out, 65, "%s", S3_SIGN_EMPTY_SHA256);
		return 0;
	}
	if (r->body->sha256_hex && ck != S3_CHECKSUM_CRC32C &&
	    ck != S3_CHECKSUM_SHA256) {
		snprintf(out, 65, "%s", r->body->sha256_hex);
		return 0;
	}
	if (!r->body->buf && ck == S3_CHECKSUM_NONE &&
	    h->cfg.unsigned_payload && !strncmp(h->scheme_host, "https:", 6)) {
		snprintf(out, 65, "%s", S3_SIGN_UNSIGNED_PAYLOAD);
		return 0;
	}
	ret = body_digest(r->body, sha, ck == S3_CHECKSUM_CRC32C ? &crc : NULL);
	if (ret)
		return ret;
	s3_sign_hex(sha, 32, out);
	if (ck == S3_CHECKSUM_SHA256 || ck == S3_CHECKSUM_CRC32C) {
		unsigned char raw[4], b64[48];
		bool s = ck == S3_CHECKSUM_SHA256;
		raw[0] = (unsigned char)(crc >> 24);
		raw[1] = (unsigned char)(crc >> 16);
		raw[2] = (unsigned char)(crc >> 8);
		raw[3] = (unsigned char)crc;
		EVP_EncodeBlock(b64, s ? sha : raw, s ? 32 : 4);
		return s3_req_hdr(
		    r, s ? "x-amz-checksum-sha256" : "x-amz-checksum-crc32c",
		    s3_req_str(r, "%s", (char *)b64));
	}
	return 0;
}

/* ---- perform ------------------------------------------------------------ */

struct attempt {
	struct curl_slist *hl;
	char *url;
	char *ak, *sk, *tok; /* snapshot of the credential */
};

static void attempt_cleanup(struct attempt *a)
{
	curl_slist_free_all(a->hl);
	free(a->url);
	free(a->ak);
	free_secret(a->sk);
	free_secret(a->tok);
}

static int add_line(struct attempt *a, const char *name, const char *value)
{
	char *line;
	struct curl_slist *n;

	/* "Name;" is curl's spelling of a header with an empty value */
	if (asprintf(&line, *value ? "%s: %s" : "%s;", name, value) < 0)
		return -ENOMEM;
	n = curl_slist_append(a->hl, line);
	free(line);
	if (!n)
		return -ENOMEM;
	a->hl = n;
	return 0;
}

/* Sign, then build the URL and the header list from the same strings. */
static int build(struct s3_http *h, struct req *r, const char *hash,
		 struct attempt *a)
{
	struct s3_sign_header sh[MAX_HDRS + 1];
	struct s3_sign_result res;
	size_t ql = r->query ? 3 * strlen(r->query) + 1 : 1;
	size_t pl = 3 * strlen(r->path) + 1;
	char *q = malloc(ql), *p = malloc(pl);
	bool s3 = !strcmp(h->service, "s3");
	int ret = -ENOMEM;

	memset(&res, 0, sizeof(res));
	pthread_mutex_lock(&h->lock);
	a->ak = dup_or_null(h->ak);
	a->sk = dup_or_null(h->sk);
	a->tok = dup_or_null(h->token);
	pthread_mutex_unlock(&h->lock);
	if (!q || !p || !a->ak || !a->sk)
		goto out;
	ret = s3_sign_canonical_query(r->query, q, ql);
	if (ret)
		goto out;
	ret = s3_sign_uri_encode(r->path, strlen(r->path), true, p, pl);
	if (ret < 0)
		goto out;
	ret = -ENOMEM;
	if (asprintf(&a->url, "%s%s%s%s", h->scheme_host, p, *q ? "?" : "", q) <
	    0) {
		a->url = NULL;
		goto out;
	}
	sh[0] = (struct s3_sign_header){"host", h->host};
	for (size_t i = 0; i < r->nhdr; i++)
		sh[i + 1] =
		    (struct s3_sign_header){r->hdr[i].name, r->hdr[i].value};
	struct s3_sign_req sr = {
	    .method = r->method,
	    .path = r->path,
	    .query = q,
	    .headers = sh,
	    .nheaders = r->nhdr + 1,
	    .payload_sha256_hex = hash,
	    .region = h->region,
	    .service = h->service,
	    .access_key = a->ak,
	    .secret_key = a->sk,
	    .session_token = a->tok,
	    .now = time(NULL),
	};
	ret = s3_sign(&sr, &res);
	for (size_t i = 0; !ret && i <= r->nhdr; i++)
		ret = add_line(a, sh[i].name, sh[i].value);
	if (!ret)
		ret = add_line(a, "x-amz-date", res.amz_date);
	if (!ret && s3)
		ret = add_line(a, "x-amz-content-sha256", hash);
	if (!ret && a->tok)
		ret = add_line(a, "x-amz-security-token", a->tok);
	if (!ret)
		ret = add_line(a, "Authorization", res.authorization);
	/* no 100-continue round trip, no Accept: */
	if (!ret && !(a->hl = curl_slist_append(a->hl, "Expect:")))
		ret = -ENOMEM;
	if (!ret && !(a->hl = curl_slist_append(a->hl, "Accept:")))
		ret = -ENOMEM;
out:
	s3_sign_result_cleanup(&res);
	free(q);
	free(p);
	return ret;
}

static void set_opts(struct s3_http *h, CURL *c, struct req *r,
		     struct attempt *a, long timeout_ms)
{
	uint64_t len = r->body ? r->body->len : r->memlen;

	curl_easy_setopt(c, CURLOPT_URL, a->url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, a->hl);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
			 h->cfg.connect_timeout_ms);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1024L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, h->cfg.low_speed_time_s);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	if (h->proxy) {
		/* CONNECT: the proxy sees only the host, TLS stays ours */
		curl_easy_setopt(c, CURLOPT_PROXY, h->proxy);
		curl_easy_setopt(c, CURLOPT_HTTPPROXYTUNNEL, 1L);
	} else {
		curl_easy_setopt(c, CURLOPT_PROXY, "");
	}
	if (h->ca_file)
		curl_easy_setopt(c, CURLOPT_CAINFO, h->ca_file);
	if (h->cfg.insecure_tls) {
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (!strcmp(r->method, "HEAD")) {
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	} else if (!strcmp(r->method, "PUT") || !strcmp(r->method, "POST")) {
		curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)len);
		curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(c, CURLOPT_READDATA, r);
		curl_easy_setopt(c, CURLOPT_SEEKFUNCTION, on_seek);
		curl_easy_setopt(c, CURLOPT_SEEKDATA, r);
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, r->method);
	} else if (strcmp(r->method, "GET")) {
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, r->method);
	}
}

static uint64_t now_us(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000 + (uint64_t)t.tv_nsec / 1000;
}

uint64_t s3_now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

bool s3_etag_eq(const char *a, const char *b)
{
	size_t la, lb;

	if (*a == '"')
		a++;
	if (*b == '"')
		b++;
	la = strlen(a);
	lb = strlen(b);
	if (la && a[la - 1] == '"')
		la--;
	if (lb && b[lb - 1] == '"')
		lb--;
	return la && la == lb && !memcmp(a, b, la);
}

void s3_etag_quote(char etag[S3_ETAG_MAX])
{
	size_t n = strlen(etag);

	if (!n || etag[0] == '"' || n + 3 > S3_ETAG_MAX)
		return;
	memmove(etag + 1, etag, n);
	etag[0] = '"';
	etag[n + 1] = '"';
	etag[n + 2] = '\0';
}

/* Could the request change anything in S3 (else ambiguity is moot)? */
static bool changes(const struct req *r)
{
	return strcmp(r->method, "GET") && strcmp(r->method, "HEAD");
}

/* Where the last attempt's time went, for the debug line of s3_perform. */
static void timing(CURL *c, struct req *r)
{
	curl_off_t v;
	long n = 0;

	r->t_conn = curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &n) ? -1 : n;
	r->t_pre =
	    curl_easy_getinfo(c, CURLINFO_PRETRANSFER_TIME_T, &v) ? -1 : v;
	r->t_start =
	    curl_easy_getinfo(c, CURLINFO_STARTTRANSFER_TIME_T, &v) ? -1 : v;
	r->t_total = curl_easy_getinfo(c, CURLINFO_TOTAL_TIME_T, &v) ? -1 : v;
}

/* One attempt: 0, or -errno with *retry set when another may succeed. */
static int attempt_once(struct s3_http *h, struct req *r, const char *hash,
			long timeout_ms, bool *retry)
{
	struct attempt a = {0};
	CURL *c = NULL;
	CURLcode cc;
	int ret;

	*retry = false;
	r->status = 0;
	r->sent = r->got = 0;
	r->overflow = false;
	if (r->resp)
		buf_reset(r->resp);
	ret = build(h, r, hash, &a);
	if (ret)
		goto out;
	ret = -ENOMEM;
	c = pool_take(h);
	if (!c)
		goto out;
	set_opts(h, c, r, &a, timeout_ms);
	cc = curl_easy_perform(c);
	timing(c, r);
	pool_give(h, c, cc == CURLE_OK);
	last_err.status = r->status;
	last_err.curl_code = cc;
	last_err.code[0] = '\0';
	if (cc == CURLE_WRITE_ERROR && r->overflow) {
		ret = -EOVERFLOW;
	} else if (cc != CURLE_OK) {
		*retry = retryable(0, "", cc);
		ret = cc == CURLE_OUT_OF_MEMORY ? -ENOMEM
						: s3_http_errno(0, NULL);
		if (changes(r) &&
		    transport_ambiguous(cc, r->sent == body_len(r)))
			r->ambiguous = true;
		log_debug("s3: %s %s: %s", r->method, r->path,
			  curl_easy_strerror(cc));
	} else if (r->status >= 200 && r->status < 300 &&
		   !(r->error_in_200 && r->resp &&
		     memmem(r->resp->p, r->resp->len, "<Error>", 7))) {
		ret = 0;
	} else {
		if (r->resp && r->resp->len)
			s3_http_xml_text((const char *)r->resp->p, r->resp->len,
					 "Code", last_err.code,
					 sizeof(last_err.code));
		ret = s3_http_errno(r->status, last_err.code);
		*retry = retryable(r->status, last_err.code, 0);
		/* a 5xx may come after the server applied the request */
		if (r->status >= 500 && changes(r) && r->sent == body_len(r))
			r->ambiguous = true;
	}
out:
	attempt_cleanup(&a);
	return ret;
}

/*
 * The attempt's own timeout: the configured one for the first attempt of
 * an operation (a large upload may take longer than the retry budget),
 * and never past the deadline for a retry or for a request that shares an
 * earlier one's budget (the HEAD resolving an ambiguous failure).
 */
static long attempt_timeout(struct s3_http *h, const struct req *r, bool clamp)
{
	uint64_t now = s3_now_ms();
	long t = h->cfg.request_timeout_ms;

	if (!clamp)
		return t;
	if (now >= r->deadline)
		return 0;
	return r->deadline - now < (uint64_t)t ? (long)(r->deadline - now) : t;
}

int s3_perform(struct s3_http *h, struct req *r, enum s3_checksum ck)
{
	struct buf errbody;
	char hash[65];
	bool retry, shared = r->deadline != 0;
	uint64_t t0 = now_us();
	int ret, n;

	if (!shared)
		r->deadline = s3_now_ms() + (uint64_t)h->cfg.retry_budget_ms;
	memset(&last_err, 0, sizeof(last_err));
	buf_init(&errbody, ERR_BODY_MAX);
	if (!r->resp)
		r->resp = &errbody;
	n = 0;
	ret = payload_hash(h, r, hash, ck);
	if (ret)
		goto out;
	for (n = 1;; n++) {
		long delay, tmo = attempt_timeout(h, r, shared || n > 1);

		if (tmo <= 0) {
			n--;
			ret =
			    ret ? ret : -EIO; /* the budget was spent before */
			break;
		}
		ret = attempt_once(h, r, hash, tmo, &retry);
		if (!ret || !retry || n >= h->cfg.max_attempts)
			break;
		/* exponential backoff, half of it random */
		delay = h->cfg.retry_base_ms << (n - 1 < 10 ? n - 1 : 10);
		if (delay > 10000)
			delay = 10000;
		delay = delay / 2 +
			(long)arc4random_uniform((uint32_t)delay / 2 + 1);
		if (s3_now_ms() + (uint64_t)delay >= r->deadline)
			break;
		log_debug("s3: %s %s: %d (%s), retry in %ld ms", r->method,
			  r->path, ret, last_err.code, delay);
		nanosleep(
		    &(struct timespec){delay / 1000, delay % 1000 * 1000000},
		    NULL);
	}
out:
	last_err.err = ret;
	last_err.attempts = n;
	last_err.ambiguous = ret && r->ambiguous;
	if ((ret == -ESTALE || ret == -ENOENT) && r->ambiguous)
		log_info("s3: %s %s: %s after an attempt that may have been "
			 "applied (%d attempts): resolving",
			 r->method, r->path, strerror(-ret), n);
	else if (ret && ret != -ENOENT && ret != -ERANGE)
		log_warn("s3: %s %s: %s (HTTP %ld, %s, %d attempts%s)",
			 r->method, r->path, strerror(-ret), last_err.status,
			 last_err.code[0] ? last_err.code
			 : last_err.curl_code
			     ? curl_easy_strerror(last_err.curl_code)
			     : "-",
			 n, r->ambiguous ? ", may have been applied" : "");
	/* one line per request, for tracing where the time goes (-v) */
	log_debug(
	    "s3: %s %s%s%s: HTTP %ld, %.2f ms, %d attempt%s (last: "
	    "%ld new connections, sending at %.2f, reply at %.2f, done at "
	    "%.2f ms)",
	    r->method, r->path, r->query ? "?" : "", r->query ? r->query : "",
	    last_err.status, (double)(now_us() - t0) / 1000.0, n,
	    n == 1 ? "" : "s", r->t_conn, (double)r->t_pre / 1000.0,
	    (double)r->t_start / 1000.0, (double)r->t_total / 1000.0);
	if (r->resp == &errbody)
		r->resp = NULL;
	buf_cleanup(&errbody);
	return ret;
}
