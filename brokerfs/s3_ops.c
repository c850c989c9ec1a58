/*
 * s3_ops.c - the S3 operations: put, get, head, delete, copy, list and
 * multipart uploads, and raw requests.
 *
 * Each operation only fills in a struct req (method, path, query, headers,
 * body or sink) and reads the answer; s3_perform() in s3_http.c signs, sends
 * and retries, and s3_xml.c parses the XML replies.
 *
 * A retry is not always harmless: when an attempt failed after the whole
 * request had gone out (a 5xx, a reset or a timeout while waiting for the
 * answer), S3 may have applied it, and the retry of a conditional PUT then
 * fails its precondition, a DELETE or an abort finds nothing, a completion
 * finds no upload.  Such an answer after an ambiguous attempt is resolved
 * here, not reported: a HEAD (inside the same retry budget) compares the
 * object's ETag with the one our request gives it (the MD5 of a PUT's
 * body; MD5 of the part MD5s and "-N" for a multipart upload) and a match
 * is success.  Only a real mismatch is ESTALE; a HEAD that cannot answer
 * gives EIO.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "log.h"
#include "s3_http.h"
#include "s3_int.h"
#include "s3_sign.h"

#define LIST_BODY_MAX (8 * 1024 * 1024)

/* ---- operations -----------------------------------------------------------
 */

static const char *enc(struct req *r, const char *s, bool keep_slash)
{
	char tmp[3 * S3_KEY_MAX + 1];

	if (strlen(s) > S3_KEY_MAX ||
	    s3_sign_uri_encode(s, strlen(s), keep_slash, tmp, sizeof(tmp)) < 0)
		return NULL;
	return s3_req_str(r, "%s", tmp);
}

static int add_meta(struct req *r, const struct s3_kv *meta, size_t n,
		    const char *content_type)
{
	int ret = 0;

	for (size_t i = 0; i < n && !ret; i++)
		ret =
		    s3_req_hdr(r, s3_req_str(r, "x-amz-meta-%s", meta[i].name),
			       meta[i].value);
	if (!ret && content_type)
		ret = s3_req_hdr(r, "content-type", content_type);
	return ret;
}

static void copy_etag(char *etag, const struct s3_obj_info *in)
{
	if (etag)
		snprintf(etag, S3_ETAG_MAX, "%s", in->etag);
}

/* ---- resolving ambiguous failures ------------------------------------ */

static void md5_etag(const unsigned char d[16], char etag[S3_ETAG_MAX])
{
	char hex[33];

	s3_sign_hex(d, 16, hex);
	snprintf(etag, S3_ETAG_MAX, "\"%s\"", hex);
}

/* The MD5 of a body (S3's ETag of a PUT), read again. */
static int body_md5(const struct s3_body *b, unsigned char d[16])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	char chunk[65536];
	int ret = -ENOMEM;

	if (!ctx || !EVP_DigestInit_ex(ctx, EVP_md5(), NULL))
		goto out;
	if (b->buf)
		EVP_DigestUpdate(ctx, b->buf, b->len);
	for (uint64_t done = 0; !b->buf && done < b->len;) {
		size_t want = b->len - done > sizeof(chunk)
				  ? sizeof(chunk)
				  : (size_t)(b->len - done);
		ssize_t k = pread(b->fd, chunk, want, (off_t)(b->off + done));

		if (k <= 0) {
			ret = k < 0 ? -errno : -EIO;
			goto out;
		}
		EVP_DigestUpdate(ctx, chunk, (size_t)k);
		done += (uint64_t)k;
	}
	ret = EVP_DigestFinal_ex(ctx, d, NULL) ? 0 : -EIO;
out:
	EVP_MD_CTX_free(ctx);
	return ret;
}

/* Every header we sent is on the object with the same value. */
static bool meta_match(const struct s3_obj_info *in, const struct s3_kv *meta,
		       size_t n)
{
	for (size_t i = 0; i < n; i++) {
		size_t k;

		for (k = 0; k < in->nmeta; k++)
			if (!strcasecmp(in->meta[k].name, meta[i].name))
				break;
		if (k == in->nmeta || strcmp(in->meta[k].value, meta[i].value))
			return false;
	}
	return true;
}

/*
 * After an ambiguous failure the retry was refused: does key now hold what
 * we sent (ETag want, these headers)?  0 (etag filled), -ESTALE when it
 * holds something else or nothing, -EIO when the HEAD cannot tell (the
 * budget was spent, S3 still failing).  The HEAD shares the deadline of
 * the request it resolves.  The failure's details stay in last_error.
 */
static int resolve(struct s3_http *h, const char *what, const char *key,
		   uint64_t deadline, const char *want,
		   const struct s3_kv *meta, size_t nmeta,
		   char etag[S3_ETAG_MAX])
{
	struct s3_error saved = *s3_http_last_error();
	struct s3_obj_info *in = malloc(sizeof(*in));
	struct req *r = malloc(sizeof(*r));
	int ret = -ENOMEM;

	if (!in || !r)
		goto out;
	ret = s3_req_init(h, r, "HEAD", key);
	if (ret)
		goto out;
	r->info = in;
	r->deadline = deadline ? deadline : 1;
	ret = s3_perform(h, r, S3_CHECKSUM_NONE);
	if (ret == -ENOENT)
		ret = -ESTALE;
	else if (!ret && (!want || !s3_etag_eq(in->etag, want) ||
			  !meta_match(in, meta, nmeta)))
		ret = -ESTALE;
	else if (ret)
		ret = -EIO;
	if (!ret && etag)
		snprintf(etag, S3_ETAG_MAX, "%s", in->etag);
	if (!ret)
		log_info("s3: %s %s: the earlier attempt was applied (ETag %s)",
			 what, key, in->etag);
	else
		log_warn("s3: %s %s: %s after an ambiguous failure (object "
			 "ETag %s, ours %s)",
			 what, key,
			 ret == -ESTALE ? "changed by someone else"
					: "could not be resolved",
			 ret == -EIO ? "unknown" : in->etag, want ? want : "?");
out:
	saved.err = ret;
	*(struct s3_error *)s3_http_last_error() = saved;
	free(in);
	free(r);
	return ret;
}

static const char *unquote(struct req *r, const char *etag)
{
	size_t n = strlen(etag);

	if (n >= 2 && etag[0] == '"' && etag[n - 1] == '"')
		return s3_req_str(r, "%.*s", (int)n - 2, etag + 1);
	return etag;
}

int s3_http_put_object(struct s3_http *h, const char *key,
		       const struct s3_body *body, const struct s3_put_opts *o,
		       char etag[S3_ETAG_MAX])
{
	static const struct s3_put_opts none;
	struct s3_obj_info *in = malloc(sizeof(*in));
	struct req *r = malloc(sizeof(*r));
	int ret = -ENOMEM;

	if (!in || !r)
		goto out;
	o = o ? o : &none;
	ret = s3_req_init(h, r, "PUT", key);
	if (!ret)
		ret = add_meta(r, o->meta, o->nmeta, o->content_type);
	if (!ret && o->if_match)
		ret = s3_req_hdr(r, "if-match",
				 h->cfg.rgw_quirks ? unquote(r, o->if_match)
						   : o->if_match);
	if (!ret && o->if_none_match)
		ret = s3_req_hdr(r, "if-none-match", "*");
	if (ret)
		goto out;
	r->body = body;
	r->info = in;
	r->ambiguous = o->maybe_applied;
	ret = s3_perform(h, r, o->checksum);
	if (!ret) {
		copy_etag(etag, in);
	} else if (r->ambiguous) {
		/* the ETag the object has if one of our attempts landed */
		char sent[S3_ETAG_MAX];
		unsigned char md5[16];
		bool cond = o->if_match || o->if_none_match;

		/*
		 * Computed here, not as the body goes out: MD5 costs more CPU
		 * than the signed SHA-256 (which S3 checks) on every byte, and
		 * only an ambiguous failure needs it.
		 */
		if (!body_md5(body, md5))
			md5_etag(md5, sent);
		else
			sent[0] = '\0';
		if (ret == -ESTALE && cond)
			ret = resolve(h, "PUT", key, r->deadline,
				      sent[0] ? sent : NULL, o->meta, o->nmeta,
				      etag);
		if (ret && ret != -ESTALE) {
			struct s3_error *e =
			    (struct s3_error *)s3_http_last_error();
			e->ambiguous = true;
			snprintf(e->sent_etag, sizeof(e->sent_etag), "%s",
				 sent);
		}
	}
out:
	free(in);
	free(r);
	return ret;
}

int s3_http_get_object(struct s3_http *h, const char *key, uint64_t off,
		       uint64_t len, const struct s3_sink *sink,
		       const char *if_match, size_t *got,
		       struct s3_obj_info *info)
{
	struct s3_obj_info *in = info ? info : malloc(sizeof(*in));
	struct req *r = malloc(sizeof(*r));
	int ret = -ENOMEM;

	*got = 0;
	if (!in || !r)
		goto out;
	ret = s3_req_init(h, r, "GET", key);
	if (!ret && len)
		ret = s3_req_hdr(r, "range",
				 s3_req_str(r, "bytes=%" PRIu64 "-%" PRIu64,
					    off, off + len - 1));
	else if (!ret && off)
		ret = s3_req_hdr(r, "range",
				 s3_req_str(r, "bytes=%" PRIu64 "-", off));
	if (!ret && if_match)
		ret = s3_req_hdr(r, "if-match", if_match);
	if (ret)
		goto out;
	r->sink = sink;
	r->info = in;
	ret = s3_perform(h, r, S3_CHECKSUM_NONE);
	if (ret == -ERANGE && r->status == 416)
		ret = 0; /* at or past the end: nothing to read */
	else if (!ret)
		*got = (size_t)r->got;
out:
	if (in != info)
		free(in);
	free(r);
	return ret;
}

int s3_http_head_object(struct s3_http *h, const char *key,
			struct s3_obj_info *info)
{
	struct req *r = malloc(sizeof(*r));
	int ret = -ENOMEM;

	if (!r)
		goto out;
	ret = s3_req_init(h, r, "HEAD", key);
	if (ret)
		goto out;
	r->info = info;
	ret = s3_perform(h, r, S3_CHECKSUM_NONE);
out:
	free(r);
	return ret;
}

/* How a request went, for resolving its failure. */
struct outcome {
	bool ambiguous;
	uint64_t deadline;
};

/* A request with only a key, a query and maybe an XML reply. */
static int simple(struct s3_http *h, const char *method, const char *key,
		  const char *query, const void *mem, size_t memlen,
		  struct buf *resp, struct outcome *oc)
{
	struct req *r = malloc(sizeof(*r));
	int ret = -ENOMEM;

	if (!r)
		goto out;
	ret = s3_req_init(h, r, method, key);
	if (ret)
		goto out;
	r->query = query;
	r->mem = mem;
	r->memlen = memlen;
	r->resp = resp;
	r->error_in_200 = !strcmp(method, "POST");
	ret = s3_perform(h, r, S3_CHECKSUM_NONE);
	if (oc) {
		oc->ambiguous = r->ambiguous;
		oc->deadline = r->deadline;
	}
out:
	free(r);
	return ret;
}

/* Gone after an attempt that may have deleted it: deleted. */
static int gone_is_done(int ret, const struct outcome *oc, const char *what,
			const char *key)
{
	if (ret != -ENOENT || !oc->ambiguous)
		return ret;
	log_info("s3: %s %s: gone after an attempt that may have been "
		 "applied: done",
		 what, key);
	((struct s3_error *)s3_http_last_error())->err = 0;
	return 0;
}

int s3_http_delete_object(struct s3_http *h, const char *key)
{
	struct outcome oc = {0};

	if (!key)
		return -EINVAL;
	return gone_is_done(simple(h, "DELETE", key, NULL, NULL, 0, NULL, &oc),
			    &oc, "DELETE", key);
}

/* x-amz-copy-source for src_key and its precondition. */
static int copy_source(struct s3_http *h, struct req *r, const char *src_key,
		       const char *src_if_match)
{
	const char *e = s3_valid_key(src_key) ? enc(r, src_key, true) : NULL;
	int ret;

	if (!e)
		return -ENAMETOOLONG;
	ret = s3_req_hdr(r, "x-amz-copy-source",
			 s3_req_str(r, "/%s/%s", h->bucket, e));
	if (!ret && src_if_match)
		ret =
		    s3_req_hdr(r,
			       h->cfg.rgw_quirks ? "x-amz-copy-if-match"
						 : "x-amz-copy-source-if-match",
			       src_if_match);
	return ret;
}

int s3_http_copy_object(struct s3_http *h, const char *src_key,
			const char *dst_key, const struct s3_copy_opts *o,
			char etag[S3_ETAG_MAX])
{
	static const struct s3_copy_opts none;
	struct req *r = malloc(sizeof(*r));
	struct buf b;
	int ret = -ENOMEM;

	buf_init(&b, ERR_BODY_MAX);
	if (!r)
		goto out;
	o = o ? o : &none;
	ret = s3_req_init(h, r, "PUT", dst_key);
	if (!ret)
		ret = copy_source(h, r, src_key, o->src_if_match);
	if (!ret)
		ret = s3_req_hdr(r, "x-amz-metadata-directive",
				 o->directive == S3_META_REPLACE ? "REPLACE"
								 : "COPY");
	if (!ret && o->directive == S3_META_REPLACE)
		ret = add_meta(r, o->meta, o->nmeta, o->content_type);
	if (ret)
		goto out;
	r->resp = &b;
	r->error_in_200 = true;
	ret = s3_perform(h, r, S3_CHECKSUM_NONE);
	if (!ret)
		ret = s3_xml_etag(&b, etag);
	else if (ret == -ESTALE && r->ambiguous && o->src_if_match)
		/*
		 * A copy onto itself changes the source, so the retry's
		 * source precondition fails: the copy keeps the source's
		 * ETag (and carries our headers when it replaced them).
		 */
		ret = resolve(h, "COPY", dst_key, r->deadline, o->src_if_match,
			      o->directive == S3_META_REPLACE ? o->meta : NULL,
			      o->directive == S3_META_REPLACE ? o->nmeta : 0,
			      etag);
out:
	buf_cleanup(&b);
	free(r);
	return ret;
}

/* ---- ListObjectsV2 --------------------------------------------------------
 */

int s3_http_list(struct s3_http *h, const char *prefix, const char *delimiter,
		 const char *token, int max_keys, struct s3_list_page *pg)
{
	struct req *r = malloc(sizeof(*r));
	struct buf b;
	char *q = NULL;
	const char *ep = "", *ed = "", *et = "";
	int ret = -ENOMEM;

	memset(pg, 0, sizeof(*pg));
	buf_init(&b, LIST_BODY_MAX);
	if (!r)
		goto out;
	ret = s3_req_init(h, r, "GET", NULL);
	if (ret)
		goto out;
	if ((prefix && !(ep = enc(r, prefix, false))) ||
	    (delimiter && !(ed = enc(r, delimiter, false))) ||
	    (token && !(et = enc(r, token, false)))) {
		ret = -ENAMETOOLONG;
		goto out;
	}
	if (max_keys <= 0 || max_keys > S3_LIST_MAX_KEYS)
		max_keys = S3_LIST_MAX_KEYS;
	ret = -ENOMEM;
	if (asprintf(&q,
		     "list-type=2&encoding-type=url&max-keys=%d%s%s%s%s%s%s",
		     max_keys, prefix ? "&prefix=" : "", ep,
		     delimiter ? "&delimiter=" : "", ed,
		     token ? "&continuation-token=" : "", et) < 0) {
		q = NULL;
		goto out;
	}
	r->query = q;
	r->resp = &b;
	ret = s3_perform(h, r, S3_CHECKSUM_NONE);
	if (!ret)
		ret = s3_xml_parse_list((const char *)b.p, b.len, pg);
	if (ret)
		s3_http_list_free(pg);
out:
	buf_cleanup(&b);
	free(q);
	free(r);
	return ret;
}

void s3_http_list_free(struct s3_list_page *pg)
{
	for (size_t i = 0; pg->entries && i < pg->nentries; i++)
		free(pg->entries[i].key);
	for (size_t i = 0; pg->prefixes && i < pg->nprefixes; i++)
		free(pg->prefixes[i]);
	free(pg->entries);
	free(pg->prefixes);
	free(pg->next_token);
	memset(pg, 0, sizeof(*pg));
}

/* ---- multipart ------------------------------------------------------------
 */

static char *upload_query(const char *upload_id, int part)
{
	char e[3 * S3_UPLOAD_ID_MAX + 1], *q;

	if (!upload_id || strlen(upload_id) >= S3_UPLOAD_ID_MAX ||
	    s3_sign_uri_encode(upload_id, strlen(upload_id), false, e,
			       sizeof(e)) < 0 ||
	    (part && (part < 1 || part > 10000)))
		return NULL;
	if ((part ? asprintf(&q, "partNumber=%d&uploadId=%s", part, e)
		  : asprintf(&q, "uploadId=%s", e)) < 0)
		return NULL;
	return q;
}

int s3_http_mpu_create(struct s3_http *h, const char *key,
		       const struct s3_put_opts *o,
		       char upload_id[S3_UPLOAD_ID_MAX])
{
	struct req *r = malloc(sizeof(*r));
	struct buf b;
	int ret = -ENOMEM;

	buf_init(&b, ERR_BODY_MAX);
	if (!r)
		goto out;
	ret = s3_req_init(h, r, "POST", key);
	if (!ret && o)
		ret = add_meta(r, o->meta, o->nmeta, o->content_type);
	if (ret)
		goto out;
	r->query = "uploads";
	r->resp = &b;
	ret = s3_perform(h, r, S3_CHECKSUM_NONE);
	if (!ret && s3_http_xml_text((const char *)b.p, b.len, "UploadId",
				     upload_id, S3_UPLOAD_ID_MAX))
		ret = -EIO;
out:
	buf_cleanup(&b);
	free(r);
	return ret;
}

int s3_http_mpu_put_part(struct s3_http *h, const char *key,
			 const char *upload_id, int part,
			 const struct s3_body *body, char etag[S3_ETAG_MAX])
{
	struct s3_obj_info *in = malloc(sizeof(*in));
	struct req *r = malloc(sizeof(*r));
	char *q = part > 0 ? upload_query(upload_id, part) : NULL;
	int ret = q ? -ENOMEM : -EINVAL;

	if (!in || !r || !q)
		goto out;
	ret = s3_req_init(h, r, "PUT", key);
	if (ret)
		goto out;
	r->query = q;
	r->body = body;
	r->info = in;
	ret = s3_perform(h, r, S3_CHECKSUM_NONE);
	if (!ret)
		copy_etag(etag, in);
out:
	free(q);
	free(in);
	free(r);
	return ret;
}

int s3_http_mpu_copy_part(struct s3_http *h, const char *key,
			  const char *upload_id, int part, const char *src_key,
			  uint64_t off, uint64_t len, const char *src_if_match,
			  char etag[S3_ETAG_MAX])
{
	struct req *r = malloc(sizeof(*r));
	char *q = part > 0 ? upload_query(upload_id, part) : NULL;
	struct buf b;
	int ret = q ? -ENOMEM : -EINVAL;

	buf_init(&b, ERR_BODY_MAX);
	if (!r || !q)
		goto out;
	ret = s3_req_init(h, r, "PUT", key);
	if (!ret)
		ret = copy_source(h, r, src_key, src_if_match);
	if (!ret && len)
		ret = s3_req_hdr(r, "x-amz-copy-source-range",
				 s3_req_str(r, "bytes=%" PRIu64 "-%" PRIu64,
					    off, off + len - 1));
	if (ret)
		goto out;
	r->query = q;
	r->resp = &b;
	r->error_in_200 = true;
	ret = s3_perform(h, r, S3_CHECKSUM_NONE);
	if (!ret)
		ret = s3_xml_etag(&b, etag);
out:
	buf_cleanup(&b);
	free(q);
	free(r);
	return ret;
}

static int xml_escape(struct buf *b, const char *s)
{
	int ret = 0;

	for (; *s && !ret; s++) {
		const char *e = *s == '&'   ? "&amp;"
				: *s == '<' ? "&lt;"
				: *s == '>' ? "&gt;"
					    : NULL;
		ret = e ? buf_append(b, e, strlen(e)) : buf_append(b, s, 1);
	}
	return ret;
}

static int unhex16(const char *s, unsigned char d[16])
{
	for (int i = 0; i < 32; i++) {
		int c = s[i], v = c >= '0' && c <= '9'	 ? c - '0'
				  : c >= 'a' && c <= 'f' ? c - 'a' + 10
				  : c >= 'A' && c <= 'F' ? c - 'A' + 10
							 : -1;
		if (v < 0)
			return -EINVAL;
		if (i % 2)
			d[i / 2] = (unsigned char)(d[i / 2] | v);
		else
			d[i / 2] = (unsigned char)(v << 4);
	}
	return 0;
}

int s3_http_mpu_etag(const struct s3_part *parts, size_t nparts,
		     char etag[S3_ETAG_MAX])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char d[16], all[16];
	char hex[33];
	int ret = -ENOMEM;

	if (!ctx || !EVP_DigestInit_ex(ctx, EVP_md5(), NULL))
		goto out;
	ret = nparts && nparts <= 10000 ? 0 : -EINVAL;
	for (size_t i = 0; !ret && i < nparts; i++) {
		const char *e = parts[i].etag ? parts[i].etag : "";
		size_t n = strlen(e);

		if (n == 34 && e[0] == '"' && e[33] == '"')
			e++, n -= 2;
		ret = n == 32 && !unhex16(e, d) ? 0 : -EINVAL;
		if (!ret)
			EVP_DigestUpdate(ctx, d, 16);
	}
	if (!ret && !EVP_DigestFinal_ex(ctx, all, NULL))
		ret = -EIO;
	if (!ret) {
		s3_sign_hex(all, 16, hex);
		snprintf(etag, S3_ETAG_MAX, "\"%s-%zu\"", hex, nparts);
	}
out:
	EVP_MD_CTX_free(ctx);
	return ret;
}

/*
 * A completion that failed after an ambiguous attempt (the retry finds no
 * such upload, or the budget ran out): is the object the one these parts
 * make?
 */
static int complete_resolve(struct s3_http *h, const char *key,
			    const struct s3_part *parts, size_t nparts, int ret,
			    const struct outcome *oc, char etag[S3_ETAG_MAX])
{
	char want[S3_ETAG_MAX] = "";
	struct s3_error *e;

	s3_http_mpu_etag(parts, nparts, want);
	if (ret == -ENOENT)
		return resolve(h, "COMPLETE", key, oc->deadline,
			       want[0] ? want : NULL, NULL, 0, etag);
	e = (struct s3_error *)s3_http_last_error();
	e->ambiguous = true;
	snprintf(e->sent_etag, sizeof(e->sent_etag), "%s", want);
	return ret;
}

int s3_http_mpu_complete(struct s3_http *h, const char *key,
			 const char *upload_id, const struct s3_part *parts,
			 size_t nparts, char etag[S3_ETAG_MAX])
{
	char *q = upload_query(upload_id, 0), num[64];
	struct buf x, b;
	int ret = q ? 0 : -EINVAL;

	buf_init(&x, 4 * 1024 * 1024);
	buf_init(&b, ERR_BODY_MAX);
	if (!nparts || nparts > 10000)
		ret = -EINVAL;
	if (!ret)
		ret = buf_append(&x, "<CompleteMultipartUpload>", 25);
	for (size_t i = 0; !ret && i < nparts; i++) {
		if (!parts[i].etag || strlen(parts[i].etag) >= S3_ETAG_MAX) {
			ret = -EINVAL;
			break;
		}
		snprintf(num, sizeof(num),
			 "<Part><PartNumber>%d</PartNumber>"
			 "<ETag>",
			 parts[i].number);
		ret = buf_append(&x, num, strlen(num));
		if (!ret)
			ret = xml_escape(&x, parts[i].etag);
		if (!ret)
			ret = buf_append(&x, "</ETag></Part>", 14);
	}
	if (!ret)
		ret = buf_append(&x, "</CompleteMultipartUpload>", 26);
	if (!ret) {
		struct outcome oc = {0};

		ret = simple(h, "POST", key, q, x.p, x.len, &b, &oc);
		if (ret && oc.ambiguous)
			ret = complete_resolve(h, key, parts, nparts, ret, &oc,
					       etag);
		else if (!ret)
			ret = s3_xml_etag(&b, etag);
	}
	if (!ret && etag && !etag[0]) {
		/* radosgw 16 answers <ETag></ETag>: ask for it */
		struct s3_obj_info *in = malloc(sizeof(*in));
		ret = in ? s3_http_head_object(h, key, in) : -ENOMEM;
		if (!ret)
			copy_etag(etag, in);
		free(in);
	}
	buf_cleanup(&x);
	buf_cleanup(&b);
	free(q);
	return ret;
}

int s3_http_mpu_abort(struct s3_http *h, const char *key, const char *upload_id)
{
	char *q = upload_query(upload_id, 0);
	struct outcome oc = {0};
	int ret = q ? simple(h, "DELETE", key, q, NULL, 0, NULL, &oc) : -EINVAL;

	free(q);
	return gone_is_done(ret, &oc, "ABORT", key);
}

/* ---- raw ---------------------------------------------------------------- */

int s3_http_request_raw(struct s3_http *h, const struct s3_http_raw *rq,
			long *status, struct buf *resp)
{
	struct req *r = calloc(1, sizeof(*r));
	int ret = -ENOMEM;

	*status = 0;
	if (!r)
		goto out;
	ret = -EINVAL;
	if (!rq->method || (rq->path && rq->path[0] != '/') ||
	    rq->nheaders > MAX_HDRS ||
	    snprintf(r->path, sizeof(r->path), "%s",
		     rq->path ? rq->path : "/") >= (int)sizeof(r->path))
		goto out;
	r->method = rq->method;
	r->query = rq->query;
	for (size_t i = 0; i < rq->nheaders; i++)
		r->hdr[r->nhdr++] = rq->headers[i];
	r->mem = rq->body;
	r->memlen = rq->body_len;
	if (resp)
		resp->limit = rq->resp_limit ? rq->resp_limit : 1024 * 1024;
	r->resp = resp;
	ret = s3_perform(h, r, S3_CHECKSUM_NONE);
	*status = r->status;
out:
	free(r);
	return ret;
}
