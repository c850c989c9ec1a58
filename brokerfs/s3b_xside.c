/*
 * s3b_xside.c - xattr sets too big for S3 user metadata, in the s3 backend.
 *
 * s3fs keeps all xattrs of an object in one header, x-amz-meta-xattr, and
 * S3 caps user metadata at 2 KiB, while Linux allows 64 KiB per value.
 * Sets whose encoding fits S3B_XATTR_HDR_MAX stay in that header, as s3fs
 * writes it.  A bigger set is stored whole, in the same encoding, as the
 * body of a sidecar object <root>.occfs-xattr/<id> (a reserved name: never
 * listed, no guest name reaches it), and the object carries
 * x-amz-meta-occfs-xattr: <id> instead of x-amz-meta-xattr.  An s3fs
 * reader therefore sees no xattrs on such a file.  Renames and exchanges
 * copy headers, so the link follows the object; UNLINK and RMDIR delete
 * the sidecar, and a set that shrinks back into the header deletes it too.
 * The sidecar is written when the set changes (not coalesced: it is the
 * data), the header that names it with the object's next metadata copy.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "log.h"
#include "s3b.h"

#define XSIDE_DIR S3B_RESERVED "xattr/"

static int side_key(struct backend_session *s, const char *id, char *key)
{
	if (snprintf(key, S3_KEY_MAX + 1, "%s" XSIDE_DIR "%s", s->fs->root,
		     id) > S3_KEY_MAX)
		return -ENAMETOOLONG;
	return 0;
}

int s3b_xside_load(struct backend_session *s, const char *key,
		   struct s3b_info *i)
{
	char skey[S3_KEY_MAX + 1];
	struct s3_sink sink;
	size_t got = 0;
	char *buf;
	int rc;

	if (!i->m.xside[0] || i->xattr)
		return 0;
	rc = side_key(s, i->m.xside, skey);
	if (rc)
		return rc;
	buf = malloc(S3B_XATTR_SET_MAX + 1);
	if (!buf)
		return -ENOMEM;
	sink = (struct s3_sink){.buf = buf, .cap = S3B_XATTR_SET_MAX};
	rc = s3_http_get_object(s->fs->http, skey, 0, 0, &sink, NULL, &got,
				NULL);
	if (rc == -ENOENT) {
		log_warn("s3: fsid %s: xattr sidecar of %s is missing",
			 s->fs->fsid, key);
		got = 0;
		rc = 0;
	}
	if (rc) {
		free(buf);
		return rc == -EOVERFLOW ? -EIO : rc;
	}
	buf[got] = '\0';
	i->xattr = buf;
	/* Remember it; a pending change of the entry is kept. */
	s3b_cache_set_meta(s->b, key, &i->m, buf, s->fs, false);
	return 0;
}

int s3b_xside_store(struct backend_session *s, const char *hdr,
		    struct s3b_meta *m)
{
	char skey[S3_KEY_MAX + 1];
	struct s3_body b;
	uint64_t r;
	int rc;

	if (!hdr || strlen(hdr) <= S3B_XATTR_HDR_MAX) {
		if (m->xside[0])
			s3b_xside_drop(s, m->xside);
		m->xside[0] = '\0';
		return 0;
	}
	if (!m->xside[0]) {
		if (getrandom(&r, sizeof(r), 0) != sizeof(r))
			r = s3b_clock_ms() * 0x9e3779b97f4a7c15ull;
		snprintf(m->xside, sizeof(m->xside), "%016llx",
			 (unsigned long long)r);
	}
	rc = side_key(s, m->xside, skey);
	if (rc)
		return rc;
	b = (struct s3_body){.buf = hdr, .len = strlen(hdr)};
	return s3_http_put_object(s->fs->http, skey, &b, NULL, NULL);
}

void s3b_xside_drop(struct backend_session *s, const char *id)
{
	char skey[S3_KEY_MAX + 1];
	int rc;

	if (!id || !id[0] || side_key(s, id, skey))
		return;
	rc = s3_http_delete_object(s->fs->http, skey);
	if (rc && rc != -ENOENT)
		log_warn("s3: fsid %s: xattr sidecar %s not deleted: %s",
			 s->fs->fsid, skey, strerror(-rc));
}
