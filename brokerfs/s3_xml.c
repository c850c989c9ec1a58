/*
 * s3_xml.c - bounded scanning of S3's XML replies.
 *
 * S3's replies are flat, attribute-free and small, so a tag scanner over a
 * bounded buffer is enough: no general XML parser.  Besides the scanner
 * (s3_http_xml_next, s3_http_xml_text) this holds the parsers of the
 * replies the operations read: ListObjectsV2 pages and the ETag of
 * CopyObject, UploadPartCopy and CompleteMultipartUpload.  S3 error
 * replies are read with s3_http_xml_text where the request is performed.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "s3_http.h"
#include "s3_int.h"

/* ---- XML ------------------------------------------------------------- */

static size_t xml_decode(const char *s, size_t n, char *out, size_t outlen)
{
	static const struct {
		const char *ent;
		char c;
	} ents[] = {{"&amp;", '&'},
		    {"&lt;", '<'},
		    {"&gt;", '>'},
		    {"&quot;", '"'},
		    {"&apos;", '\''}};
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '&') {
			size_t k, el = 0;
			for (k = 0; k < 5; k++) {
				el = strlen(ents[k].ent);
				if (n - i >= el &&
				    !memcmp(s + i, ents[k].ent, el))
					break;
			}
			if (k < 5) {
				c = ents[k].c;
				i += el - 1;
			} else if (n - i > 3 && s[i + 1] == '#') {
				char *end;
				bool hex = s[i + 2] == 'x';
				unsigned long v = strtoul(s + i + 2 + hex, &end,
							  hex ? 16 : 10);
				if (end < s + n && *end == ';' && v &&
				    v < 128) {
					c = (char)v;
					i = (size_t)(end - s);
				}
			}
		}
		if (o + 1 >= outlen)
			return SIZE_MAX;
		out[o++] = c;
	}
	out[o] = '\0';
	return o;
}

int s3_http_xml_next(const char *xml, size_t len, size_t *pos, const char *tag,
		     const char **inner, size_t *inner_len)
{
	char open[80], close[80];
	size_t ol = (size_t)snprintf(open, sizeof(open), "<%s", tag);
	size_t cl = (size_t)snprintf(close, sizeof(close), "</%s>", tag);
	const char *end = xml + len, *p = xml + *pos;

	if (ol >= sizeof(open) || cl >= sizeof(close))
		return -EINVAL;
	while ((p = memmem(p, (size_t)(end - p), open, ol))) {
		const char *q = p + ol, *gt, *c;
		if (q >= end || (*q != '>' && *q != ' ' && *q != '/')) {
			p = q; /* <tagX...> is another element */
			continue;
		}
		gt = memchr(q, '>', (size_t)(end - q));
		if (!gt)
			return -ENOENT;
		if (gt[-1] == '/') { /* <tag/> */
			*inner = gt + 1;
			*inner_len = 0;
			*pos = (size_t)(gt + 1 - xml);
			return 0;
		}
		c = memmem(gt + 1, (size_t)(end - gt - 1), close, cl);
		if (!c)
			return -ENOENT;
		*inner = gt + 1;
		*inner_len = (size_t)(c - gt - 1);
		*pos = (size_t)(c + cl - xml);
		return 0;
	}
	return -ENOENT;
}

int s3_http_xml_text(const char *xml, size_t len, const char *tag, char *out,
		     size_t outlen)
{
	const char *in;
	size_t pos = 0, n;
	int ret = s3_http_xml_next(xml, len, &pos, tag, &in, &n);

	if (ret)
		return ret;
	return xml_decode(in, n, out, outlen) == SIZE_MAX ? -ENOSPC : 0;
}

/* ---- replies ------------------------------------------------------------ */

int s3_xml_etag(struct buf *b, char *etag)
{
	char tmp[S3_ETAG_MAX];

	if (s3_http_xml_text((const char *)b->p, b->len, "ETag", tmp,
			     sizeof(tmp)))
		return -EIO;
	if (etag)
		snprintf(etag, S3_ETAG_MAX, "%s", tmp);
	return 0;
}

/* ---- ListObjectsV2 --------------------------------------------------------
 */

static int hexdigit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)(c | 0x20);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Decode a key S3 sent with encoding-type=url. */
static char *url_text(const char *in, size_t n, bool url)
{
	char *x = malloc(n + 1), *out;
	size_t len, o = 0;

	if (!x)
		return NULL;
	len = xml_decode(in, n, x, n + 1);
	if (len == SIZE_MAX || !url)
		return len == SIZE_MAX ? (free(x), NULL) : x;
	out = x; /* decoding only shrinks: in place */
	for (size_t i = 0; i < len; i++) {
		int hi = i + 2 < len ? hexdigit(x[i + 1]) : -1;
		int lo = i + 2 < len ? hexdigit(x[i + 2]) : -1;
		if (x[i] == '%' && hi >= 0 && lo >= 0) {
			out[o++] = (char)(hi << 4 | lo);
			i += 2;
		} else {
			out[o++] = x[i] == '+' ? ' ' : x[i];
		}
	}
	out[o] = '\0';
	return out;
}

static time_t iso_time(const char *s)
{
	struct tm tm = {0};

	if (!strptime(s, "%Y-%m-%dT%H:%M:%S", &tm))
		return 0;
	return timegm(&tm);
}

static int parse_entry(const char *x, size_t n, bool url,
		       struct s3_list_entry *e)
{
	char tmp[64];
	const char *k;
	size_t kl, pos = 0;

	if (s3_http_xml_next(x, n, &pos, "Key", &k, &kl) || kl > 3 * S3_KEY_MAX)
		return -EIO;
	e->key = url_text(k, kl, url);
	if (!e->key)
		return -EIO;
	if (!s3_http_xml_text(x, n, "Size", tmp, sizeof(tmp)))
		e->size = strtoull(tmp, NULL, 10);
	if (!s3_http_xml_text(x, n, "LastModified", tmp, sizeof(tmp)))
		e->mtime = iso_time(tmp);
	s3_http_xml_text(x, n, "ETag", e->etag, sizeof(e->etag));
	return 0;
}

int s3_xml_parse_list(const char *x, size_t n, struct s3_list_page *pg)
{
	char tmp[16];
	const char *in;
	size_t il, pos = 0, cap;
	bool url = !s3_http_xml_text(x, n, "EncodingType", tmp, sizeof(tmp)) &&
		   !strcmp(tmp, "url");
	int ret = 0;

	pg->truncated =
	    !s3_http_xml_text(x, n, "IsTruncated", tmp, sizeof(tmp)) &&
	    !strcmp(tmp, "true");
	cap = S3_LIST_MAX_KEYS + 1;
	pg->entries = calloc(cap, sizeof(*pg->entries));
	pg->prefixes = calloc(cap, sizeof(*pg->prefixes));
	if (!pg->entries || !pg->prefixes)
		return -ENOMEM;
	while (!ret && pg->nentries < cap &&
	       !s3_http_xml_next(x, n, &pos, "Contents", &in, &il))
		ret = parse_entry(in, il, url, &pg->entries[pg->nentries++]);
	for (pos = 0;
	     !ret && pg->nprefixes < cap &&
	     !s3_http_xml_next(x, n, &pos, "CommonPrefixes", &in, &il);) {
		const char *p;
		size_t pl, ppos = 0;
		if (s3_http_xml_next(in, il, &ppos, "Prefix", &p, &pl))
			continue;
		pg->prefixes[pg->nprefixes] = url_text(p, pl, url);
		if (!pg->prefixes[pg->nprefixes++])
			ret = -EIO;
	}
	if (!ret && pg->truncated &&
	    !s3_http_xml_next(x, n, &(size_t){0}, "NextContinuationToken", &in,
			      &il)) {
		pg->next_token = url_text(in, il, false);
		if (!pg->next_token)
			ret = -EIO;
	}
	return ret;
}
