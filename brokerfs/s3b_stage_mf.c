/*
 * s3b_stage_mf.c - a stage's manifest: what recovery needs to upload the
 * data file as the object it belongs to.
 *
 * Text, one field per line, so an operator can read it:
 *
 *   occfs-stage 1
 *   fsid :<fsid>
 *   key :<object key>
 *   etag :<base ETag, empty for a new object>
 *   base_size <bytes>
 *   base_limit <bytes>          base bytes below this are still the object's
 *   block <bytes>
 *   changed 0|1                 data or size differ from the base
 *   meta_dirty 0|1
 *   meta :<name> :<value>       one line per x-amz-meta header
 *   dirty <first>+<count> ...   runs of dirty blocks (several lines allowed)
 *   present <first>+<count> ...
 *   sum <FNV-1a 64 of all bytes above, 16 hex digits>
 *
 * Strings are written ':' then the bytes, with '%', blanks, control and
 * non-ASCII bytes as %XX.  The object's size is the data file's size.
 *
 * The first manifest of a stage is written to <id>.mf.tmp and renamed into
 * place.  Later ones that fit in one page overwrite <id>.mf in place with a
 * single pwrite at offset 0, padded with newlines to the file's length
 * (the parser ignores blank lines after the sum): a page is copied whole
 * or not at all, so a killed broker leaves the old or the new manifest, as
 * the rename did, without allocating an inode each time (on ext4 an inode
 * costs a few hundred microseconds, several times a small file's share of
 * the broker's work).  Larger manifests are still replaced by rename.  A
 * torn page after a host crash fails the sum and is set aside, never
 * uploaded; unacknowledged staged data is what a host crash may lose (see
 * doc/staging.md, "Crash order").  A manifest equal to the one on disk is
 * not written again.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "s3b_stage_int.h"

#define MF_RUNS_PER_LINE 256

int s3b_mf_name(char *out, size_t n, const char *id, const char *suffix)
{
	int k = snprintf(out, n, "%s%s", id, suffix);
	return k < 0 || (size_t)k >= n ? -ENAMETOOLONG : 0;
}

void s3b_meta_free(struct s3_kv *m, size_t n)
{
	(void)n;
	free(m); /* one block: the array, then the strings */
}

int s3b_meta_copy(const struct s3_kv *in, size_t n, struct s3_kv **out)
{
	size_t bytes = n * sizeof(struct s3_kv);
	struct s3_kv *m;
	char *p;

	*out = NULL;
	for (size_t i = 0; i < n; i++) {
		if (!in[i].name || !in[i].value)
			return -EINVAL;
		bytes += strlen(in[i].name) + strlen(in[i].value) + 2;
	}
	if (bytes > S3_META_BYTES + n * sizeof(struct s3_kv))
		return -E2BIG;
	m = malloc(bytes ? bytes : 1);
	if (!m)
		return -ENOMEM;
	p = (char *)(m + n);
	for (size_t i = 0; i < n; i++) {
		size_t a = strlen(in[i].name) + 1, b = strlen(in[i].value) + 1;
		memcpy(p, in[i].name, a);
		m[i].name = p;
		memcpy(p + a, in[i].value, b);
		m[i].value = p + a;
		p += a + b;
	}
	*out = m;
	return 0;
}

/* ---- writing
 * ------------------------------------------------------------------ */

static int put_str(struct buf *b, const char *s)
{
	int ret = buf_append(b, ":", 1);

	for (; !ret && *s; s++) {
		unsigned char c = (unsigned char)*s;
		char e[4];

		if (c > 0x20 && c < 0x7f && c != '%') {
			ret = buf_append(b, s, 1);
			continue;
		}
		snprintf(e, sizeof(e), "%%%02X", c);
		ret = buf_append(b, e, 3);
	}
	return ret;
}

static int putf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int putf(struct buf *b, const char *fmt, ...)
{
	char tmp[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(tmp))
		return -EINVAL;
	return buf_append(b, tmp, (size_t)n);
}

/* Every run of set bits, also past the size (a write in progress). */
static int put_runs(struct buf *b, const char *name,
		    const struct s3b_bits *bits)
{
	uint64_t nblocks = (uint64_t)bits->nw * 64;
	unsigned on_line = 0;
	int ret = 0;

	for (uint64_t i = 0; !ret && i < nblocks;) {
		uint64_t j = i;

		if (i % 64 == 0 && !bits->w[i / 64]) {
			i += 64;
			continue;
		}
		if (!s3b_bit(bits, i)) {
			i++;
			continue;
		}
		while (j < nblocks && s3b_bit(bits, j))
			j++;
		if (on_line == MF_RUNS_PER_LINE) {
			ret = buf_append(b, "\n", 1);
			on_line = 0;
		}
		if (!ret && on_line == 0)
			ret = putf(b, "%s", name);
		if (!ret)
			ret = putf(b, " %" PRIu64 "+%" PRIu64, i, j - i);
		on_line++;
		i = j;
	}
	if (!ret && on_line)
		ret = buf_append(b, "\n", 1);
	return ret;
}

static uint64_t fnv64(const uint8_t *p, size_t n)
{
	uint64_t h = 1469598103934665603ull;

	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 1099511628211ull;
	return h;
}

static int mf_render(const struct s3b_stage *sg, struct buf *b)
{
	int ret;

	ret = putf(b, "occfs-stage 1\nfsid ");
	ret = ret ? ret : put_str(b, sg->fsid);
	ret = ret ? ret : putf(b, "\nkey ");
	ret = ret ? ret : put_str(b, sg->key);
	ret = ret ? ret : putf(b, "\netag ");
	ret = ret ? ret : put_str(b, sg->etag);
	ret = ret ? ret
		  : putf(b,
			 "\nbase_size %" PRIu64 "\nbase_limit %" PRIu64
			 "\nblock %u\nchanged %d\nmeta_dirty %d\n",
			 sg->base_size, sg->base_limit, S3B_BLOCK,
			 sg->changed ? 1 : 0, sg->meta_dirty ? 1 : 0);
	for (size_t i = 0; !ret && i < sg->nmeta; i++) {
		ret = putf(b, "meta ");
		ret = ret ? ret : put_str(b, sg->meta[i].name);
		ret = ret ? ret : buf_append(b, " ", 1);
		ret = ret ? ret : put_str(b, sg->meta[i].value);
		ret = ret ? ret : buf_append(b, "\n", 1);
	}
	ret = ret ? ret : put_runs(b, "dirty", &sg->dirty);
	ret = ret ? ret : put_runs(b, "present", &sg->present);
	ret = ret ? ret : putf(b, "sum %016" PRIx64 "\n", fnv64(b->p, b->len));
	return ret;
}

/* Replace <id>.mf by writing <id>.mf.tmp and renaming it. */
static int mf_replace(struct s3b_stage *sg, const struct buf *b, bool sync)
{
	int dirfd = sg->st->dirfd, fd = -1, ret = 0;
	char tmp[64], name[64];

	s3b_mf_name(tmp, sizeof(tmp), sg->id, ".mf.tmp");
	s3b_mf_name(name, sizeof(name), sg->id, ".mf");
	fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	for (size_t done = 0; done < b->len;) {
		ssize_t n = write(fd, b->p + done, b->len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			ret = n < 0 ? -errno : -EIO;
			goto out;
		}
		done += (size_t)n;
	}
	if (sync && fsync(fd) < 0) {
		ret = -errno;
		goto out;
	}
	if (renameat(dirfd, tmp, dirfd, name) < 0) {
		ret = -errno;
		goto out;
	}
	if (sync && fsync(dirfd) < 0)
		ret = -errno;
out:
	close(fd);
	if (ret)
		unlinkat(dirfd, tmp, 0);
	return ret;
}

/*
 * Overwrite <id>.mf, known to be flen <= S3B_MF_PAGE bytes long, with one
 * pwrite of b padded to flen.  1 when it could not be done that way (no
 * file, short write): the caller replaces the file instead.
 */
static int mf_overwrite(struct s3b_stage *sg, struct buf *b, size_t flen,
			bool sync)
{
	char name[64];
	ssize_t n;
	int fd, ret = 0;

	if (b->len < flen) {
		if (buf_reserve(b, flen - b->len))
			return 1;
		memset(b->p + b->len, '\n', flen - b->len);
		b->len = flen;
	}
	s3b_mf_name(name, sizeof(name), sg->id, ".mf");
	fd = openat(sg->st->dirfd, name, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return 1;
	do
		n = pwrite(fd, b->p, b->len, 0);
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)b->len)
		ret = 1;
	else if (sync && fsync(fd) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

int s3b_mf_adopt(struct s3b_stage *sg, int dirfd, const char *name,
		 uint32_t flen)
{
	char to[64];
	struct buf b;
	uint64_t sum;
	size_t clen;
	ssize_t n;
	int fd = -1, ret;

	buf_init(&b, S3B_MF_MAX);
	ret = mf_render(sg, &b);
	if (ret)
		goto out;
	clen = b.len;
	sum = fnv64(b.p, b.len);
	ret = -EFBIG;
	if (clen > S3B_MF_PAGE || flen > S3B_MF_PAGE)
		goto out;
	ret = -ENOMEM;
	if (b.len < flen) {
		if (buf_reserve(&b, flen - b.len))
			goto out;
		memset(b.p + b.len, '\n', flen - b.len);
		b.len = flen;
	}
	fd = openat(dirfd, name, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		goto out;
	}
	do
		n = pwrite(fd, b.p, b.len, 0);
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)b.len) {
		ret = n < 0 ? -errno : -EIO;
		goto out;
	}
	/* no replacing: the id is new, an existing <id>.mf is not ours */
	s3b_mf_name(to, sizeof(to), sg->id, ".mf");
	if (renameat2(dirfd, name, sg->st->dirfd, to, RENAME_NOREPLACE) < 0) {
		ret = -errno;
		goto out;
	}
	ret = 0;
	sg->mf_flen = (uint32_t)(b.len > clen ? b.len : clen);
	sg->mf_clen = (uint32_t)clen;
	sg->mf_sum = sum;
out:
	if (fd >= 0)
		close(fd);
	buf_cleanup(&b);
	return ret;
}

/* Stage lock held. */
int s3b_mf_write(struct s3b_stage *sg, bool sync)
{
	struct buf b;
	uint64_t sum;
	size_t clen;
	int ret;

	if (sg->discarded) /* its files are gone: leave no orphan manifest */
		return 0;
	buf_init(&b, S3B_MF_MAX);
	ret = mf_render(sg, &b);
	if (ret)
		goto out;
	clen = b.len;
	sum = fnv64(b.p, b.len);
	if (!sync && sg->mf_flen && clen == sg->mf_clen && sum == sg->mf_sum)
		goto out; /* on disk already */
	ret = 1;
	if (sg->mf_flen && sg->mf_flen <= S3B_MF_PAGE && clen <= S3B_MF_PAGE) {
		ret = mf_overwrite(sg, &b, sg->mf_flen, sync);
		if (ret != 1 && clen > sg->mf_flen)
			sg->mf_flen = (uint32_t)clen; /* it grew */
	}
	if (ret == 1) {
		b.len = clen;
		ret = mf_replace(sg, &b, sync);
		sg->mf_flen = ret ? 0 : (uint32_t)clen;
	}
	if (!ret) {
		sg->mf_clen = (uint32_t)clen;
		sg->mf_sum = sum;
	}
out:
	buf_cleanup(&b);
	return ret;
}

/* ---- reading
 * ------------------------------------------------------------------ */

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Decode one ':'-string token [p, e) into out (NUL-terminated). */
static int get_str(const char *p, const char *e, char *out, size_t cap)
{
	size_t n = 0;

	if (p >= e || *p != ':')
		return -EINVAL;
	for (p++; p < e; p++) {
		int c = (unsigned char)*p;
		if (c == '%') {
			int hi, lo;
			if (e - p < 3 || (hi = hexval(p[1])) < 0 ||
			    (lo = hexval(p[2])) < 0)
				return -EINVAL;
			c = hi << 4 | lo;
			p += 2;
		}
		if (c == 0 || n + 1 >= cap)
			return -EINVAL;
		out[n++] = (char)c;
	}
	out[n] = '\0';
	return 0;
}

static int get_u64(const char *p, const char *e, uint64_t *v)
{
	uint64_t x = 0;

	if (p >= e || e - p > 20)
		return -EINVAL;
	for (; p < e; p++) {
		if (*p < '0' || *p > '9' || x > (UINT64_MAX - 9) / 10)
			return -EINVAL;
		x = x * 10 + (uint64_t)(*p - '0');
	}
	*v = x;
	return 0;
}

/* "first+count first+count ..." */
static int get_runs(const char *p, const char *e, struct s3b_bits *bits)
{
	while (p < e) {
		const char *t, *plus;
		uint64_t a, n;

		while (p < e && *p == ' ')
			p++;
		for (t = p; t < e && *t != ' '; t++)
			;
		if (t == p)
			break;
		plus = memchr(p, '+', (size_t)(t - p));
		if (!plus || get_u64(p, plus, &a) || get_u64(plus + 1, t, &n) ||
		    n == 0 || a > (1ull << 40) || n > (1ull << 40))
			return -EINVAL;
		for (uint64_t i = a; i < a + n; i++)
			if (s3b_bit_set(bits, i))
				return -ENOMEM;
		p = t;
	}
	return 0;
}

struct mf_meta {
	struct s3_kv kv[S3_META_MAX];
	char names[S3_META_MAX][256];
	char *values[S3_META_MAX];
	size_t n;
};

static int parse_meta(const char *p, const char *e, struct mf_meta *mm)
{
	const char *sp = memchr(p, ' ', (size_t)(e - p));
	char *v;
	int ret;

	if (!sp || mm->n == S3_META_MAX)
		return -EINVAL;
	v = malloc(S3_META_BYTES);
	if (!v)
		return -ENOMEM;
	ret = get_str(p, sp, mm->names[mm->n], sizeof(mm->names[0]));
	if (!ret)
		ret = get_str(sp + 1, e, v, S3_META_BYTES);
	if (ret) {
		free(v);
		return ret;
	}
	mm->kv[mm->n].name = mm->names[mm->n];
	mm->kv[mm->n].value = v;
	mm->values[mm->n++] = v;
	return 0;
}

/* One "name value" line into the stage. */
static int parse_line(const char *p, const char *e, struct s3b_stage *sg,
		      struct mf_meta *mm, unsigned *seen)
{
	const char *sp = memchr(p, ' ', (size_t)(e - p));
	char tmp[S3_KEY_MAX];
	uint64_t v;
	size_t nl;
	int ret;

	if (!sp)
		return -EINVAL;
	nl = (size_t)(sp - p);
#define IS(s) (nl == sizeof(s) - 1 && !memcmp(p, s, nl))
	sp++;
	if (IS("fsid") || IS("key")) {
		ret = get_str(sp, e, tmp, sizeof(tmp));
		if (ret || !tmp[0])
			return -EINVAL;
		char **dst = IS("fsid") ? &sg->fsid : &sg->key;
		if (*dst)
			return -EINVAL;
		*dst = strdup(tmp);
		*seen |= IS("fsid") ? 1 : 2;
		return *dst ? 0 : -ENOMEM;
	}
	if (IS("etag")) {
		*seen |= 4;
		return get_str(sp, e, sg->etag, sizeof(sg->etag));
	}
	if (IS("meta"))
		return parse_meta(sp, e, mm);
	if (IS("dirty"))
		return get_runs(sp, e, &sg->dirty);
	if (IS("present"))
		return get_runs(sp, e, &sg->present);
	ret = get_u64(sp, e, &v);
	if (ret)
		return ret;
	if (IS("base_size")) {
		sg->base_size = v;
		*seen |= 8;
	} else if (IS("base_limit")) {
		sg->base_limit = v;
		*seen |= 16;
	} else if (IS("block")) {
		if (v != S3B_BLOCK)
			return -EINVAL;
		*seen |= 32;
	} else if (IS("changed") && v <= 1) {
		sg->changed = v;
	} else if (IS("meta_dirty") && v <= 1) {
		sg->meta_dirty = v;
	} else {
		return -EINVAL;
	}
#undef IS
	return 0;
}

/*
 * Fill sg's fsid, key, etag, base, bits and metadata from a manifest's
 * text.  -EINVAL for anything malformed, truncated or with a bad sum.
 */
int s3b_mf_parse(const char *text, size_t len, struct s3b_stage *sg)
{
	static const char magic[] = "occfs-stage 1\n";
	struct mf_meta *mm = calloc(1, sizeof(*mm));
	const char *p = text, *end = text + len, *sum;
	unsigned seen = 0;
	uint64_t want = 0;
	int ret = -EINVAL;

	if (!mm)
		return -ENOMEM;
	if (len < sizeof(magic) - 1 || memcmp(text, magic, sizeof(magic) - 1))
		goto out;
	/* an overwrite in place pads a shorter manifest with newlines */
	while (end - text > 1 && end[-1] == '\n' && end[-2] == '\n')
		end--;
	/* the sum line is last and covers everything before it */
	if (end - text < 21 || end[-1] != '\n')
		goto out;
	sum = end - 21;
	if (memcmp(sum, "sum ", 4) || (sum != text && sum[-1] != '\n'))
		goto out;
	for (int i = 0; i < 16; i++) {
		int h = hexval(sum[4 + i]);
		if (h < 0)
			goto out;
		want = want << 4 | (uint64_t)h;
	}
	if (want != fnv64((const uint8_t *)text, (size_t)(sum - text)))
		goto out;
	for (p += sizeof(magic) - 1; p < sum;) {
		const char *nl = memchr(p, '\n', (size_t)(sum - p));
		if (!nl)
			goto out;
		ret = parse_line(p, nl, sg, mm, &seen);
		if (ret)
			goto out;
		p = nl + 1;
	}
	ret = seen == 63 && sg->base_limit <= sg->base_size ? 0 : -EINVAL;
	if (!ret && mm->n) {
		ret = s3b_meta_copy(mm->kv, mm->n, &sg->meta);
		if (!ret)
			sg->nmeta = mm->n;
	}
out:
	for (size_t i = 0; i < mm->n; i++)
		free(mm->values[i]);
	free(mm);
	return ret;
}
