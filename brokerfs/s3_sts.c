/*
 * s3_sts.c - STS AssumeRole with an inline session policy.
 *
 * A form-encoded POST signed for service "sts".  Every form value is fully
 * percent-encoded (a space is %20, never '+', which radosgw 16.2 leaves as
 * a literal '+'), and the policy JSON is written without spaces anyway.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "s3_sign.h"
#include "s3_sts.h"

#define STS_REPLY_MAX (64 * 1024)

/* Characters that would change what a policy string matches or means. */
static int policy_safe(const char *s, bool allow_slash)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c < 0x20 || c == 0x7f || c == '"' || c == '\\' ||
		    c == '*' || c == '?' || c == '$' ||
		    (!allow_slash && c == '/'))
			return 0;
	}
	return 1;
}

static int valid_bucket(const char *b)
{
	size_t n = b ? strlen(b) : 0;

	if (n < 3 || n > 63)
		return 0;
	for (; *b; b++)
		if (!((*b >= 'a' && *b <= 'z') || (*b >= '0' && *b <= '9') ||
		      *b == '.' || *b == '-'))
			return 0;
	return 1;
}

int s3_sts_policy(const char *bucket, const char *prefix, const char *fsid,
		  char *out, size_t outlen)
{
	char base[1024];
	size_t pl;
	int n;

	if (!prefix)
		prefix = "";
	while (*prefix == '/')
		prefix++;
	pl = strlen(prefix);
	while (pl && prefix[pl - 1] == '/')
		pl--;
	if (!valid_bucket(bucket) || !fsid || !*fsid || !strcmp(fsid, ".") ||
	    !strcmp(fsid, "..") || !policy_safe(fsid, false) ||
	    !policy_safe(prefix, true) || strstr(prefix, "//"))
		return -EINVAL;
	n = snprintf(base, sizeof(base), "%.*s%s%s", (int)pl, prefix,
		     pl ? "/" : "", fsid);
	if (n < 0 || (size_t)n >= sizeof(base))
		return -ENOSPC;
	n = snprintf(out, outlen,
		     "{\"Version\":\"2012-10-17\",\"Statement\":["
		     "{\"Effect\":\"Allow\",\"Action\":[\"s3:GetObject\","
		     "\"s3:PutObject\",\"s3:DeleteObject\","
		     "\"s3:AbortMultipartUpload\","
		     "\"s3:ListMultipartUploadParts\"],"
		     "\"Resource\":[\"arn:aws:s3:::%s/%s/*\"]},"
		     "{\"Effect\":\"Allow\",\"Action\":[\"s3:ListBucket\"],"
		     "\"Resource\":[\"arn:aws:s3:::%s\"],"
		     "\"Condition\":{\"StringLike\":{\"s3:prefix\":"
		     "[\"%s/*\",\"%s/\"]}}}]}",
		     bucket, base, bucket, base, base);
	return n < 0 || (size_t)n >= outlen ? -ENOSPC : 0;
}

static int valid_session_name(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n < 2 || n > 64)
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || strchr("+=,.@_-", *s)))
			return 0;
	return 1;
}

/* "&name=value" with value fully percent-encoded. */
static int form_add(struct buf *b, const char *name, const char *value)
{
	size_t cap = 3 * strlen(value) + 1;
	char *e = malloc(cap);
	int ret = -ENOMEM;

	if (!e)
		return ret;
	ret = s3_sign_uri_encode(value, strlen(value), false, e, cap);
	if (ret >= 0)
		ret = b->len ? buf_append(b, "&", 1) : 0;
	if (!ret)
		ret = buf_append(b, name, strlen(name));
	if (!ret)
		ret = buf_append(b, "=", 1);
	if (!ret)
		ret = buf_append(b, e, strlen(e));
	free(e);
	return ret;
}

int s3_sts_parse(const char *xml, size_t len, struct s3_sts_cred *out)
{
	char exp[64];
	struct tm tm = {0};
	const char *in;
	size_t il, pos = 0;

	memset(out, 0, sizeof(*out));
	/* only what is inside <Credentials>, never an echo elsewhere */
	if (s3_http_xml_next(xml, len, &pos, "Credentials", &in, &il) ||
	    s3_http_xml_text(in, il, "AccessKeyId", out->access_key,
			     sizeof(out->access_key)) ||
	    s3_http_xml_text(in, il, "SecretAccessKey", out->secret_key,
			     sizeof(out->secret_key)) ||
	    s3_http_xml_text(in, il, "SessionToken", out->session_token,
			     sizeof(out->session_token)) ||
	    s3_http_xml_text(in, il, "Expiration", exp, sizeof(exp)) ||
	    !strptime(exp, "%Y-%m-%dT%H:%M:%S", &tm) || !out->access_key[0] ||
	    !out->secret_key[0] || !out->session_token[0]) {
		s3_sts_cred_clear(out);
		return -EIO;
	}
	out->expiration = timegm(&tm);
	return 0;
}

int s3_sts_assume_role(struct s3_http *sts, const struct s3_sts_assume *a,
		       struct s3_sts_cred *out)
{
	static const struct s3_kv hdr[] = {
	    {"content-type",
	     "application/x-www-form-urlencoded; charset=utf-8"},
	};
	struct buf form, reply;
	char dur[16];
	long status;
	int ret = -EINVAL;

	memset(out, 0, sizeof(*out));
	buf_init(&form, 64 * 1024);
	buf_init(&reply, STS_REPLY_MAX);
	if (!a->role_arn || !*a->role_arn ||
	    !valid_session_name(a->session_name) ||
	    (a->duration_s && (a->duration_s < 900 || a->duration_s > 43200)))
		goto out;
	snprintf(dur, sizeof(dur), "%d", a->duration_s ? a->duration_s : 3600);
	ret = form_add(&form, "Action", "AssumeRole");
	if (!ret)
		ret = form_add(&form, "Version", "2011-06-15");
	if (!ret)
		ret = form_add(&form, "RoleArn", a->role_arn);
	if (!ret)
		ret = form_add(&form, "RoleSessionName", a->session_name);
	if (!ret)
		ret = form_add(&form, "DurationSeconds", dur);
	if (!ret && a->policy)
		ret = form_add(&form, "Policy", a->policy);
	if (ret)
		goto out;
	struct s3_http_raw rq = {
	    .method = "POST",
	    .path = "/",
	    .headers = hdr,
	    .nheaders = 1,
	    .body = form.p,
	    .body_len = form.len,
	    .resp_limit = STS_REPLY_MAX,
	};
	ret = s3_http_request_raw(sts, &rq, &status, &reply);
	if (!ret)
		ret = s3_sts_parse((const char *)reply.p, reply.len, out);
out:
	if (reply.p)
		OPENSSL_cleanse(reply.p, reply.len);
	buf_cleanup(&form);
	buf_cleanup(&reply);
	return ret;
}

void s3_sts_cred_clear(struct s3_sts_cred *c)
{
	OPENSSL_cleanse(c, sizeof(*c));
}
