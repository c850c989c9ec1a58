/*
 * s3_ops.c - the S3 operations: put, get, head, delete, copy, list and
 * multipart uploads, and raw requests.
 *
 * Each operation only fills in a struct req (method, path, query, headers,
 * body or sink) and reads the answer; s3_perform() in s3_http.c signs, sends
 * and retries, and s3_xml.c parses the XML replies.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
	ret = s3_perform(h, r, o->checksum);
	if (!ret)
		copy_etag(etag, in);
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

/* A request with only a key, a query and maybe an XML reply. */
static int simple(struct s3_http *h, const char *method, const char *key,
		  const char *query, const void *mem, size_t memlen,
		  struct buf *resp)
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
out:
	free(r);
	return ret;
}

int s3_http_delete_object(struct s3_http *h, const char *key)
{
	if (!key)
		return -EINVAL;
	return simple(h, "DELETE", key, NULL, NULL, 0, NULL);
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
	if (!ret)
		ret = simple(h, "POST", key, q, x.p, x.len, &b);
	if (!ret)
		ret = s3_xml_etag(&b, etag);
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
	int ret = q ? simple(h, "DELETE", key, q, NULL, 0, NULL) : -EINVAL;

	free(q);
	return ret;
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
