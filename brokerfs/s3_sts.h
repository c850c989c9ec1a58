/*
 * s3_sts.h - session credentials from STS AssumeRole, scoped to one prefix.
 *
 * The broker holds a base credential allowed to assume a role; for each
 * filesystem it asks STS for a short-lived credential whose inline session
 * policy allows object operations only under BUCKET/PREFIX/FSID/ (and
 * listing only with such a prefix), so a bug above this layer still
 * cannot reach another filesystem's objects.
 */
#ifndef OCCFS_S3_STS_H
#define OCCFS_S3_STS_H

#include <stddef.h>
#include <time.h>

#include "s3_http.h"

#define S3_STS_KEY_MAX 256
#define S3_STS_TOKEN_MAX 8192
#define S3_STS_POLICY_MAX 2048 /* AWS packs session policies into 2 KiB */

struct s3_sts_cred {
	char access_key[S3_STS_KEY_MAX];
	char secret_key[S3_STS_KEY_MAX];
	char session_token[S3_STS_TOKEN_MAX];
	time_t expiration; /* UTC seconds */
};

struct s3_sts_assume {
	const char *role_arn;
	const char *session_name; /* 2-64 of [A-Za-z0-9+=,.@_-] */
	int duration_s;		  /* 0 = 3600; STS allows 900..43200 */
	const char *policy;	  /* inline session policy JSON, or NULL */
};

/*
 * The session policy for one filesystem: s3:GetObject, PutObject,
 * DeleteObject, AbortMultipartUpload, ListMultipartUploadParts on
 * "arn:aws:s3:::BUCKET/PREFIX/FSID/" + "*" and s3:ListBucket on the bucket with
 * s3:prefix StringLike "PREFIX/FSID/" + "*" or "PREFIX/FSID/".  Compact JSON
 * (no spaces: radosgw does not decode '+' in form bodies).  prefix may be
 * NULL or empty.  -EINVAL when a part could widen the policy (wildcards,
 * quotes, control characters, ".." or "/" in fsid), -ENOSPC if too long.
 */
int s3_sts_policy(const char *bucket, const char *prefix, const char *fsid,
		  char *out, size_t outlen);

/*
 * AssumeRole through sts, a client made with service "sts" (and no
 * bucket) holding the base credential.  0, or -errno as s3_http maps it
 * (-EACCES when the role may not be assumed, -EIO on a malformed reply).
 */
int s3_sts_assume_role(struct s3_http *sts, const struct s3_sts_assume *a,
		       struct s3_sts_cred *out);

/* Parse an AssumeRole reply body (exposed for tests and fuzzing). */
int s3_sts_parse(const char *xml, size_t len, struct s3_sts_cred *out);

/* Wipe a credential. */
void s3_sts_cred_clear(struct s3_sts_cred *c);

#endif
