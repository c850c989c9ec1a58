/*
 * audit_log.c - record lines, segment listing, the segment reader (plain
 * or zstd) and segment compression; see audit_log.h for the format.
 */
#include "audit_log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

void audit_log_hash(uint64_t n, const char *prev, const char *json, size_t len,
		    char hash[AUDIT_HASH_HEX + 1])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[32];
	unsigned int mdlen = 0, i;
	char head[AUDIT_NUM_LEN + AUDIT_HASH_HEX + 4];
	int hl;
	EVP_MD_CTX *c = EVP_MD_CTX_new();

	hl = snprintf(head, sizeof(head), "%020" PRIu64 " %.64s ", n, prev);
	memset(md, 0, sizeof(md));
	if (c && EVP_DigestInit_ex(c, EVP_sha256(), NULL) &&
	    EVP_DigestUpdate(c, head, hl) && EVP_DigestUpdate(c, json, len))
		EVP_DigestFinal_ex(c, md, &mdlen);
	EVP_MD_CTX_free(c);
	for (i = 0; i < 32; i++) {
		hash[2 * i] = hex[md[i] >> 4];
		hash[2 * i + 1] = hex[md[i] & 15];
	}
	hash[AUDIT_HASH_HEX] = 0;
}

char *audit_log_format(uint64_t n, const char *prev, const char *json,
		       size_t len, char hash[AUDIT_HASH_HEX + 1],
		       size_t *line_len)
{
	char *line = malloc(AUDIT_REC_PREFIX + len + 1);

	if (!line)
		return NULL;
	audit_log_hash(n, prev, json, len, hash);
	snprintf(line, AUDIT_REC_PREFIX + 1, "%020" PRIu64 " %.64s %.64s ", n,
		 prev, hash);
	memcpy(line + AUDIT_REC_PREFIX, json, len);
	line[AUDIT_REC_PREFIX + len] = '\n';
	*line_len = AUDIT_REC_PREFIX + len + 1;
	return line;
}

static int is_hex(const char *p, size_t n)
{
	for (; n; n--, p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return 0;
	return 1;
}

int audit_log_parse(const char *line, size_t len, struct audit_rec *r)
{
	uint64_t n = 0;
	int i;

	if (len <= AUDIT_REC_PREFIX || line[AUDIT_NUM_LEN] != ' ' ||
	    line[AUDIT_NUM_LEN + 1 + AUDIT_HASH_HEX] != ' ' ||
	    line[AUDIT_REC_PREFIX - 1] != ' ')
		return -EBADMSG;
	for (i = 0; i < AUDIT_NUM_LEN; i++) {
		if (line[i] < '0' || line[i] > '9')
			return -EBADMSG;
		n = n * 10 + (line[i] - '0');
	}
	if (!is_hex(line + AUDIT_NUM_LEN + 1, AUDIT_HASH_HEX) ||
	    !is_hex(line + AUDIT_NUM_LEN + 2 + AUDIT_HASH_HEX, AUDIT_HASH_HEX))
		return -EBADMSG;
	r->n = n;
	memcpy(r->prev, line + AUDIT_NUM_LEN + 1, AUDIT_HASH_HEX);
	r->prev[AUDIT_HASH_HEX] = 0;
	memcpy(r->hash, line + AUDIT_NUM_LEN + 2 + AUDIT_HASH_HEX,
	       AUDIT_HASH_HEX);
	r->hash[AUDIT_HASH_HEX] = 0;
	r->json = line + AUDIT_REC_PREFIX;
	r->json_len = len - AUDIT_REC_PREFIX;
	return 0;
}

static int seg_parse(const char *name, struct audit_seg *s)
{
	size_t l = strlen(name);
	uint64_t n = 0;
	int i;

	if (l != 28 && l != 32)
		return 0;
	if (strncmp(name, "seg-", 4) != 0 || strncmp(name + 24, ".log", 4))
		return 0;
	if (l == 32 && strcmp(name + 28, ".zst") != 0)
		return 0;
	for (i = 4; i < 24; i++) {
		if (name[i] < '0' || name[i] > '9')
			return 0;
		n = n * 10 + (name[i] - '0');
	}
	snprintf(s->name, sizeof(s->name), "%s", name);
	s->first = n;
	s->compressed = l == 32;
	return 1;
}

static int seg_cmp(const void *a, const void *b)
{
	return strcmp(((const struct audit_seg *)a)->name,
		      ((const struct audit_seg *)b)->name);
}

int audit_log_list(const char *dir, struct audit_seg **segs, size_t *n)
{
	struct audit_seg *v = NULL, *nv, s;
	size_t cnt = 0, cap = 0;
	struct dirent *e;
	DIR *d = opendir(dir);

	if (!d)
		return -errno;
	while ((e = readdir(d))) {
		if (!seg_parse(e->d_name, &s))
			continue;
		if (cnt == cap) {
			cap = cap ? 2 * cap : 16;
			nv = realloc(v, cap * sizeof(*v));
			if (!nv) {
				free(v);
				closedir(d);
				return -ENOMEM;
			}
			v = nv;
		}
		v[cnt++] = s;
	}
	closedir(d);
	if (cnt)
		qsort(v, cnt, sizeof(*v), seg_cmp);
	*segs = v;
	*n = cnt;
	return 0;
}

struct audit_reader {
	int fd;
	ZSTD_DStream *z;
	uint8_t in[64 * 1024];
	size_t in_len, in_pos;
	int eof;	 /* the file is exhausted */
	size_t zpending; /* ZSTD says a frame is unfinished */
	char *buf;	 /* decoded bytes not yet returned */
	size_t len, pos, cap;
	uint64_t consumed; /* bytes of whole lines returned */
};

struct audit_reader *audit_reader_open(const char *dir,
				       const struct audit_seg *seg)
{
	struct audit_reader *r = calloc(1, sizeof(*r));
	char path[4096];

	if (!r)
		return NULL;
	snprintf(path, sizeof(path), "%s/%s", dir, seg->name);
	r->cap = 2 * AUDIT_LINE_MAX;
	r->buf = malloc(r->cap);
	r->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (!r->buf || r->fd < 0)
		goto fail;
	if (seg->compressed) {
		r->z = ZSTD_createDStream();
		if (!r->z || ZSTD_isError(ZSTD_initDStream(r->z))) {
			errno = ENOMEM;
			goto fail;
		}
	}
	return r;
fail:
	audit_reader_close(r);
	return NULL;
}

void audit_reader_close(struct audit_reader *r)
{
	int e = errno;

	if (!r)
		return;
	if (r->fd >= 0)
		close(r->fd);
	ZSTD_freeDStream(r->z);
	free(r->buf);
	free(r);
	errno = e;
}

/* Append more decoded bytes to buf: > 0 some, 0 end of file, -EIO. */
static int fill(struct audit_reader *r)
{
	ZSTD_outBuffer out;
	ZSTD_inBuffer in;
	ssize_t n;
	size_t ret;

	if (r->pos) {
		memmove(r->buf, r->buf + r->pos, r->len - r->pos);
		r->len -= r->pos;
		r->pos = 0;
	}
	for (;;) {
		if (r->in_pos == r->in_len && !r->eof) {
			n = read(r->fd, r->in, sizeof(r->in));
			if (n < 0)
				return -errno;
			r->in_len = n;
			r->in_pos = 0;
			r->eof = n == 0;
		}
		if (!r->z) {
			n = r->in_len - r->in_pos;
			if (n > (ssize_t)(r->cap - r->len))
				n = r->cap - r->len;
			memcpy(r->buf + r->len, r->in + r->in_pos, n);
			r->len += n;
			r->in_pos += n;
			return n;
		}
		if (r->eof && r->in_pos == r->in_len)
			return r->zpending ? -EIO : 0;
		in = (ZSTD_inBuffer){r->in, r->in_len, r->in_pos};
		out = (ZSTD_outBuffer){r->buf + r->len, r->cap - r->len, 0};
		ret = ZSTD_decompressStream(r->z, &out, &in);
		if (ZSTD_isError(ret))
			return -EIO;
		r->in_pos = in.pos;
		r->zpending = ret;
		r->len += out.pos;
		if (out.pos)
			return out.pos;
		if (r->len == r->cap)
			return -E2BIG;
	}
}

int audit_reader_next(struct audit_reader *r, const char **line, size_t *len)
{
	char *nl;
	int f;

	for (;;) {
		nl = memchr(r->buf + r->pos, '\n', r->len - r->pos);
		if (nl) {
			*nl = 0;
			*line = r->buf + r->pos;
			*len = nl - (r->buf + r->pos);
			r->consumed += *len + 1;
			r->pos += *len + 1;
			return 1;
		}
		if (r->len - r->pos > AUDIT_LINE_MAX)
			return -E2BIG;
		f = fill(r);
		if (f < 0)
			return f;
		if (f == 0)
			return r->len > r->pos ? -EBADMSG : 0;
	}
}

uint64_t audit_reader_offset(const struct audit_reader *r)
{
	return r->consumed;
}

int audit_log_compress(const char *dir, const char *name, int level)
{
	char src[4096], tmp[4200], dst[4200];
	size_t cap = 0, zcap;
	void *in = NULL, *out = NULL;
	struct stat st;
	ZSTD_CCtx *c = NULL;
	int fd = -1, ofd = -1, r = 0;
	size_t z;
	ssize_t n;

	snprintf(src, sizeof(src), "%s/%s", dir, name);
	snprintf(tmp, sizeof(tmp), "%s.zst.tmp", src);
	snprintf(dst, sizeof(dst), "%s.zst", src);
	fd = open(src, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		r = -errno;
		goto out;
	}
	cap = st.st_size;
	zcap = ZSTD_compressBound(cap);
	in = malloc(cap ? cap : 1);
	out = malloc(zcap);
	c = ZSTD_createCCtx();
	if (!in || !out || !c) {
		r = -ENOMEM;
		goto out;
	}
	if (cap && pread(fd, in, cap, 0) != (ssize_t)cap) {
		r = -EIO;
		goto out;
	}
	ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, level);
	ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 1);
	z = ZSTD_compress2(c, out, zcap, in, cap);
	if (ZSTD_isError(z)) {
		r = -EIO;
		goto out;
	}
	ofd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (ofd < 0) {
		r = -errno;
		goto out;
	}
	n = write(ofd, out, z);
	if (n != (ssize_t)z || fsync(ofd) < 0) {
		r = n < 0 ? -errno : -EIO;
		unlink(tmp);
		goto out;
	}
	if (rename(tmp, dst) < 0 || unlink(src) < 0)
		r = -errno;
out:
	if (fd >= 0)
		close(fd);
	if (ofd >= 0)
		close(ofd);
	ZSTD_freeCCtx(c);
	free(in);
	free(out);
	return r;
}
