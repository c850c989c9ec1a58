/*
 * s3b_meta.c - s3fs-fuse's metadata format, read and written.
 *
 * s3fs stores st_mode as a decimal number with the type bits
 * (x-amz-meta-mode: 33188 for a 0644 file), uid and gid as decimal numbers,
 * times as decimal seconds (x-amz-meta-mtime, -ctime, -atime; newer s3fs and
 * rclone may add ".fraction", which is read), and extended attributes in
 * one header, x-amz-meta-xattr: the URL-encoded text
 * {"name":"base64(value)",...}.  We write exactly that, integer seconds
 * included (s3fs 1.90 cannot read fractions), so either tool reads the
 * other's bucket; the nanoseconds go in x-amz-meta-occfs-ns
 * ("atime_ns,mtime_ns,ctime_ns"), and an xattr set too big for a header
 * goes to a sidecar object named by x-amz-meta-occfs-xattr (s3b_xattr.c).
 * Objects another tool wrote without these headers get defaults at the
 * attribute level (s3b_meta_attr).
 */
#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>

#include "proto.h"
#include "s3b.h"

#define XA_MAX 1024 /* xattrs per object */

struct xa {
	char *name;
	unsigned char *val;
	size_t len;
};

/* ---- numbers ------------------------------------------------------------ */

/* Decimal digits, optionally ".fraction" (into *ns); false otherwise. */
static bool parse_frac(const char *s, int64_t *out, uint32_t *ns)
{
	uint32_t frac = 0, scale = 100000000;
	int64_t v = 0;
	bool neg = false;

	if (*s == '-') {
		neg = true;
		s++;
	}
	if (*s < '0' || *s > '9')
		return false;
	for (; *s >= '0' && *s <= '9'; s++) {
		if (v > (INT64_MAX - 9) / 10)
			return false;
		v = v * 10 + (*s - '0');
	}
	if (*s == '.')
		for (s++; *s >= '0' && *s <= '9'; s++, scale /= 10)
			frac += (uint32_t)(*s - '0') * scale;
	if (*s)
		return false;
	*out = neg ? -v : v;
	if (ns)
		*ns = neg ? 0 : frac;
	return true;
}

static bool parse_num(const char *s, int64_t *out)
{
	return parse_frac(s, out, NULL);
}

static const char *meta_of(const struct s3_obj_info *o, const char *name)
{
	for (size_t i = 0; i < o->nmeta; i++)
		if (!strcmp(o->meta[i].name, name))
			return o->meta[i].value;
	return NULL;
}

static void get_ts(const struct s3_obj_info *o, const char *name,
		   struct s3b_ts *t)
{
	const char *v = meta_of(o, name);

	if (v && parse_frac(v, &t->sec, &t->nsec))
		t->set = true;
}

/* "atime_ns,mtime_ns,ctime_ns": the parts s3fs's headers cannot hold. */
static void get_ns(const char *v, struct s3b_meta *m)
{
	struct s3b_ts *t[3] = {&m->atime, &m->mtime, &m->ctime};
	char *end;

	for (int k = 0; k < 3; k++) {
		unsigned long ns;

		if (*v < '0' || *v > '9')
			return;
		ns = strtoul(v, &end, 10);
		if (ns > 999999999ul || (*end && *end != ','))
			return;
		if (t[k]->set)
			t[k]->nsec = (uint32_t)ns;
		if (!*end)
			return;
		v = end + 1;
	}
}

void s3b_meta_from_obj(const struct s3_obj_info *o, struct s3b_info *i)
{
	const char *v;
	int64_t n;

	memset(i, 0, sizeof(*i));
	snprintf(i->etag, sizeof(i->etag), "%s", o->etag);
	i->size = o->size;
	i->lastmod = o->mtime;
	i->m.uid = i->m.gid = S3B_ID_NONE;
	if ((v = meta_of(o, "mode")) && parse_num(v, &n) && n > 0 &&
	    n <= UINT32_MAX)
		i->m.mode = (uint32_t)n;
	if ((v = meta_of(o, "uid")) && parse_num(v, &n) && n >= 0 &&
	    n < S3B_ID_NONE)
		i->m.uid = (uint32_t)n;
	if ((v = meta_of(o, "gid")) && parse_num(v, &n) && n >= 0 &&
	    n < S3B_ID_NONE)
		i->m.gid = (uint32_t)n;
	get_ts(o, "atime", &i->m.atime);
	get_ts(o, "mtime", &i->m.mtime);
	get_ts(o, "ctime", &i->m.ctime);
	if ((v = meta_of(o, "occfs-ns")))
		get_ns(v, &i->m);
	if ((v = meta_of(o, "occfs-xattr")) && strlen(v) == 16 &&
	    strspn(v, "0123456789abcdef") == 16)
		memcpy(i->m.xside, v, 17);
	else if ((v = meta_of(o, "xattr")) && *v)
		i->xattr = strdup(v);
}

size_t s3b_meta_to_kv(const struct s3b_meta *m, const char *xattr,
		      struct s3_kv kv[S3B_KV_MAX], char buf[S3B_KV_BUF])
{
	size_t n = 0, used = 0;
	int w;

#define PUT_NUM(hdr, fmt, ...)                                                 \
	do {                                                                   \
		w = snprintf(buf + used, S3B_KV_BUF - used, fmt, __VA_ARGS__); \
		if (w > 0 && (size_t)w < S3B_KV_BUF - used) {                  \
			kv[n].name = hdr;                                      \
			kv[n++].value = buf + used;                            \
			used += (size_t)w + 1;                                 \
		}                                                              \
	} while (0)
	if (m->mode)
		PUT_NUM("mode", "%" PRIu32, m->mode);
	if (m->uid != S3B_ID_NONE)
		PUT_NUM("uid", "%" PRIu32, m->uid);
	if (m->gid != S3B_ID_NONE)
		PUT_NUM("gid", "%" PRIu32, m->gid);
	/* Whole seconds, as s3fs 1.90 reads them; the rest apart. */
	if (m->mtime.set)
		PUT_NUM("mtime", "%" PRId64, m->mtime.sec);
	if (m->ctime.set)
		PUT_NUM("ctime", "%" PRId64, m->ctime.sec);
	if (m->atime.set)
		PUT_NUM("atime", "%" PRId64, m->atime.sec);
	if (m->atime.nsec || m->mtime.nsec || m->ctime.nsec)
		PUT_NUM("occfs-ns", "%" PRIu32 ",%" PRIu32 ",%" PRIu32,
			m->atime.set ? m->atime.nsec : 0,
			m->mtime.set ? m->mtime.nsec : 0,
			m->ctime.set ? m->ctime.nsec : 0);
#undef PUT_NUM
	if (m->xside[0]) {
		kv[n].name = "occfs-xattr";
		kv[n++].value = m->xside;
	} else if (xattr && *xattr) {
		kv[n].name = "xattr";
		kv[n++].value = xattr;
	}
	return n;
}

int s3b_meta_to_stage(struct s3b_stage *sg, const struct s3b_meta *m,
		      const char *xattr)
{
	struct s3_kv kv[S3B_KV_MAX];
	char buf[S3B_KV_BUF];

	return s3b_stage_set_meta(sg, kv, s3b_meta_to_kv(m, xattr, kv, buf));
}

void s3b_ts_now(struct s3b_ts *t)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	t->sec = ts.tv_sec;
	t->nsec = (uint32_t)ts.tv_nsec;
	t->set = true;
}

void s3b_meta_new(struct s3b_meta *m, mode_t mode, uint32_t uid, uint32_t gid)
{
	memset(m, 0, sizeof(*m));
	m->mode = (uint32_t)mode;
	m->uid = uid;
	m->gid = gid;
	s3b_ts_now(&m->mtime);
	m->atime = m->ctime = m->mtime;
}

/*
 * Headers another tool left out: s3fs shows such objects as 0640 files and
 * 0750 directories of the mounting user; here the calling user stands for
 * the mounting one, with 0644 and 0755 so the guest can read them.
 */
void s3b_meta_attr(struct proto_attr *a, uint64_t nodeid, mode_t type,
		   const struct s3b_info *i, uint32_t uid, uint32_t gid)
{
	uint32_t perm = i->m.mode & 07777;
	const struct s3b_meta *m = &i->m;
	int64_t t = i->lastmod;

	memset(a, 0, sizeof(*a));
	if (!i->m.mode)
		perm = type == S_IFDIR ? 0755 : type == S_IFLNK ? 0777 : 0644;
	a->nodeid = nodeid;
	a->ino = nodeid;
	a->mode = (uint32_t)type | perm;
	a->nlink = type == S_IFDIR ? 2 : 1;
	a->uid = i->m.uid != S3B_ID_NONE ? i->m.uid : uid;
	a->gid = i->m.gid != S3B_ID_NONE ? i->m.gid : gid;
	a->size = type == S_IFDIR || type == S_IFIFO || type == S_IFSOCK
		      ? 0
		      : i->size;
	a->blocks = (a->size + 511) / 512;
	a->blksize = 4096;
	a->mtime = m->mtime.set ? m->mtime.sec : t;
	a->mtime_ns = m->mtime.set ? m->mtime.nsec : 0;
	a->ctime = m->ctime.set ? m->ctime.sec : a->mtime;
	a->ctime_ns = m->ctime.set ? m->ctime.nsec : a->mtime_ns;
	a->atime = m->atime.set ? m->atime.sec : a->mtime;
	a->atime_ns = m->atime.set ? m->atime.nsec : a->mtime_ns;
}

/* ---- xattrs: URL-encoded {"name":"base64",...} --------------------------- */

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static char *url_decode(const char *s)
{
	size_t n = strlen(s), o = 0;
	char *out = malloc(n + 1);

	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		int h, l;

		if (s[i] == '%' && i + 2 < n && (h = hexval(s[i + 1])) >= 0 &&
		    (l = hexval(s[i + 2])) >= 0) {
			out[o++] = (char)(h * 16 + l);
			i += 2;
		} else {
			out[o++] = s[i];
		}
	}
	out[o] = '\0';
	return out;
}

/* s3fs's urlEncode: all but alphanumerics and "/.-_~" become %XX. */
static void url_encode(const char *s, size_t n, char *out)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || strchr("/.-_~", c)) {
			out[o++] = (char)c;
		} else {
			out[o++] = '%';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	out[o] = '\0';
}

static void xa_free(struct xa *x, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(x[i].name);
		free(x[i].val);
	}
}

/* Strip surrounding blanks and one pair of double quotes, in place. */
static char *unquote(char *s)
{
	char *e;

	while (*s == ' ')
		s++;
	e = s + strlen(s);
	while (e > s && e[-1] == ' ')
		*--e = '\0';
	if (e - s < 2 || *s != '"' || e[-1] != '"')
		return NULL;
	e[-1] = '\0';
	return s + 1;
}

static int b64_decode(const char *in, unsigned char **out, size_t *outlen)
{
	size_t n = strlen(in), pad = 0;
	unsigned char *buf;
	int len;

	*out = NULL;
	*outlen = 0;
	if (!n)
		return 0;
	if (n % 4)
		return -EINVAL;
	buf = malloc(n / 4 * 3 + 1);
	if (!buf)
		return -ENOMEM;
	len = EVP_DecodeBlock(buf, (const unsigned char *)in, (int)n);
	if (len < 0) {
		free(buf);
		return -EINVAL;
	}
	if (in[n - 1] == '=')
		pad++;
	if (in[n - 2] == '=')
		pad++;
	*out = buf;
	*outlen = (size_t)len - pad;
	return 0;
}

/* Parse a header value; malformed pairs are skipped as s3fs does. */
static int xa_parse(const char *hdr, struct xa *x, size_t *nx)
{
	char *json, *p, *end, *save = NULL, *pair;
	int rc = 0;

	*nx = 0;
	if (!hdr || !*hdr)
		return 0;
	json = url_decode(hdr);
	if (!json)
		return -ENOMEM;
	p = strchr(json, '{');
	end = strrchr(json, '}');
	if (!p || !end || end < p)
		goto out;
	*end = '\0';
	for (pair = strtok_r(p + 1, ",", &save); pair;
	     pair = strtok_r(NULL, ",", &save)) {
		char *colon = strchr(pair, ':'), *name, *val;

		if (!colon || *nx == XA_MAX)
			continue;
		*colon = '\0';
		name = unquote(pair);
		val = unquote(colon + 1);
		if (!name || !val || !*name)
			continue;
		x[*nx].name = strdup(name);
		if (!x[*nx].name) {
			rc = -ENOMEM;
			break;
		}
		if (b64_decode(val, &x[*nx].val, &x[*nx].len)) {
			free(x[*nx].name);
			continue;
		}
		(*nx)++;
	}
out:
	free(json);
	if (rc)
		xa_free(x, *nx);
	return rc;
}

/* Build the header value for x[0..n) into *out (NULL when empty). */
static int xa_build(const struct xa *x, size_t n, char **out)
{
	size_t cap = 2, o = 0;
	char *json, *enc;

	*out = NULL;
	if (!n)
		return 0;
	for (size_t i = 0; i < n; i++)
		cap += strlen(x[i].name) + (x[i].len + 2) / 3 * 4 + 8;
	json = malloc(cap + 1);
	if (!json)
		return -ENOMEM;
	json[o++] = '{';
	for (size_t i = 0; i < n; i++) {
		o += (size_t)sprintf(json + o, "%s\"%s\":\"", i ? "," : "",
				     x[i].name);
		if (x[i].len)
			o += (size_t)EVP_EncodeBlock((unsigned char *)json + o,
						     x[i].val, (int)x[i].len);
		json[o++] = '"';
	}
	json[o++] = '}';
	json[o] = '\0';
	enc = malloc(o * 3 + 1);
	if (enc)
		url_encode(json, o, enc);
	free(json);
	if (!enc)
		return -ENOMEM;
	/* A set too big for a header goes to a sidecar (s3b_xside.c),
	 * up to this bound. */
	if (strlen(enc) > S3B_XATTR_SET_MAX) {
		free(enc);
		return -ENOSPC;
	}
	*out = enc;
	return 0;
}

static ssize_t xa_find(const struct xa *x, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(x[i].name, name))
			return (ssize_t)i;
	return -1;
}

int s3b_xattr_get(const char *hdr, const char *name, void *buf, size_t cap,
		  size_t *len)
{
	struct xa *x = calloc(XA_MAX, sizeof(*x));
	size_t n = 0;
	ssize_t i;
	int rc;

	if (!x)
		return -ENOMEM;
	rc = xa_parse(hdr, x, &n);
	if (rc)
		goto out;
	i = xa_find(x, n, name);
	if (i < 0) {
		rc = -ENODATA;
		goto out;
	}
	*len = x[i].len;
	if (cap && x[i].len > cap)
		rc = -ERANGE;
	else if (cap && x[i].len)
		memcpy(buf, x[i].val, x[i].len);
out:
	xa_free(x, n);
	free(x);
	return rc;
}

/* The characters that would break s3fs's unescaped JSON. */
static bool name_ok(const char *name)
{
	return !strpbrk(name, "\",:{}\\");
}

int s3b_xattr_set(const char *hdr, const char *name, const void *val,
		  size_t len, int flags, char **out)
{
	struct xa *x = calloc(XA_MAX, sizeof(*x));
	size_t n = 0;
	ssize_t i;
	int rc;

	if (!x)
		return -ENOMEM;
	if (!name_ok(name)) {
		rc = -EINVAL;
		goto out;
	}
	rc = xa_parse(hdr, x, &n);
	if (rc)
		goto out;
	i = xa_find(x, n, name);
	if (i >= 0 && (flags & XATTR_CREATE)) {
		rc = -EEXIST;
		goto out;
	}
	if (i < 0 && (flags & XATTR_REPLACE)) {
		rc = -ENODATA;
		goto out;
	}
	if (i < 0) {
		if (n == XA_MAX) {
			rc = -ENOSPC;
			goto out;
		}
		i = (ssize_t)n++;
		x[i].name = strdup(name);
	} else {
		free(x[i].val);
	}
	x[i].val = malloc(len + 1);
	if (!x[i].name || !x[i].val) {
		rc = -ENOMEM;
		goto out;
	}
	if (len)
		memcpy(x[i].val, val, len);
	x[i].len = len;
	rc = xa_build(x, n, out);
out:
	xa_free(x, n);
	free(x);
	return rc;
}

int s3b_xattr_remove(const char *hdr, const char *name, char **out)
{
	struct xa *x = calloc(XA_MAX, sizeof(*x));
	size_t n = 0;
	ssize_t i;
	int rc;

	if (!x)
		return -ENOMEM;
	rc = xa_parse(hdr, x, &n);
	if (rc)
		goto out;
	i = xa_find(x, n, name);
	if (i < 0) {
		rc = -ENODATA;
		goto out;
	}
	free(x[i].name);
	free(x[i].val);
	x[i] = x[n - 1];
	n--;
	rc = xa_build(x, n, out);
out:
	xa_free(x, n);
	free(x);
	return rc;
}

/* user.* names only: others are not ours to show. */
int s3b_xattr_list(const char *hdr, char *buf, size_t cap, size_t *len)
{
	struct xa *x = calloc(XA_MAX, sizeof(*x));
	size_t n = 0, total = 0;
	int rc;

	if (!x)
		return -ENOMEM;
	rc = xa_parse(hdr, x, &n);
	if (rc)
		goto out;
	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(x[i].name) + 1;

		if (strncmp(x[i].name, "user.", 5))
			continue;
		if (cap && total + l > cap) {
			rc = -ERANGE;
			goto out;
		}
		if (cap)
			memcpy(buf + total, x[i].name, l);
		total += l;
	}
	*len = total;
out:
	xa_free(x, n);
	free(x);
	return rc;
}
