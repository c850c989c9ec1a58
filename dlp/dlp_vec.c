/*
 * dlp_vec.c - the class rules' prefix test in wide vectors, where the CPU
 * has them.
 *
 * The portable prefilter (dlp_fast.c) tests a few positions of a rule's
 * prefix against two masks all rules share, digits and capitals; that costs
 * some twenty scalar steps per rule per 64-byte block and still lets
 * through most digit runs, so each candidate is then checked byte by byte.
 * With AVX-512BW one compare tests a class at one prefix position for 64
 * possible starts at once, straight into a mask register, and the next
 * compare is masked by the previous result: the whole prefix, each position
 * with its own class (up to four byte ranges), costs two or three
 * instructions per position per block.  Positions are tested rarest class
 * first, and the loop stops as soon as no start is left, which in text is
 * after a few positions.
 *
 * The result is exactly the portable path's (before its byte-by-byte check)
 * or tighter: where every position's class is exactly its ranges, no byte
 * check follows.
 */
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

#include "dlp.h"
#include "dlp_int.h"

#ifndef VEC_GROUP
#define VEC_GROUP 2
#endif

/*
 * A rough frequency of each byte in text files, in parts per 10000, to
 * order the positions: the rarest class goes first so that most blocks
 * are ruled out by the first compare or two.
 */
static unsigned byte_weight(unsigned c)
{
	if (c >= 'a' && c <= 'z')
		return 200;
	if (c == ' ')
		return 1500;
	if (c >= '0' && c <= '9')
		return 300;
	if (c >= 'A' && c <= 'Z')
		return 40;
	if (c == '\n' || c == '\t')
		return 150;
	if (c > ' ' && c < 0x7f)
		return 30;
	return 2;
}

/* The byte set as at most DLP_RANGES_MAX ranges; false when the ranges
 * had to be widened (gaps merged, smallest first) to fit. */
static bool to_ranges(const struct dlp_bset *b, struct dlp_ranges *r)
{
	unsigned lo[128], hi[128], n = 0;
	bool exact = true;

	for (unsigned c = 0; c < 256; c++) {
		if (!dlp_bset_has(b, c))
			continue;
		if (n && hi[n - 1] + 1 == c) {
			hi[n - 1] = c;
		} else if (n < 128) {
			lo[n] = hi[n] = c;
			n++;
		}
	}
	while (n > DLP_RANGES_MAX) {
		unsigned best = 1;

		for (unsigned i = 2; i < n; i++)
			if (lo[i] - hi[i - 1] < lo[best] - hi[best - 1])
				best = i;
		hi[best - 1] = hi[best];
		memmove(lo + best, lo + best + 1, (n - best - 1) * sizeof(*lo));
		memmove(hi + best, hi + best + 1, (n - best - 1) * sizeof(*hi));
		n--;
		exact = false;
	}
	r->n = n;
	for (unsigned i = 0; i < n; i++) {
		r->lo[i] = (unsigned char)lo[i];
		r->hi[i] = (unsigned char)hi[i];
	}
	return exact;
}

static unsigned ranges_weight(const struct dlp_ranges *r)
{
	unsigned w = 0;

	for (unsigned i = 0; i < r->n; i++)
		for (unsigned c = r->lo[i]; c <= r->hi[i]; c++)
			w += byte_weight(c);
	return w;
}

void dlp_vec_setup(struct dlp_prefilter *p, const struct dlp_class_rule *cr)
{
	unsigned w[DLP_PREFIX_MAX];
	struct dlp_ranges vr[DLP_PREFIX_MAX];
	unsigned char order[DLP_PREFIX_MAX];

	p->vexact = true;
	p->nvec = 0;
	for (unsigned j = 0; j < cr->plen; j++) {
		bool exact = to_ranges(&cr->pre[j], &vr[j]);

		w[j] = ranges_weight(&vr[j]);
		/* a position almost any byte passes is not worth a compare */
		if (vr[j].n == 0 || w[j] >= 5000) {
			p->vexact = false;
			continue;
		}
		p->vexact &= exact;
		order[p->nvec++] = (unsigned char)j;
	}
	/* rarest first; ties keep the later position first, as it is less
	 * correlated with the positions already tested */
	for (unsigned i = 1; i < p->nvec; i++)
		for (unsigned k = i; k > 0; k--) {
			unsigned a = order[k - 1], b = order[k];

			if (w[b] > w[a] || (w[b] == w[a] && b < a))
				break;
			order[k - 1] = (unsigned char)b;
			order[k] = (unsigned char)a;
		}
	for (unsigned t = 0; t < p->nvec; t++) {
		struct dlp_vtest *x = &p->vt[t];
		const struct dlp_ranges *r = &vr[order[t]];

		x->pos = order[t];
		x->n = (unsigned char)r->n;
		for (unsigned i = 0; i < r->n; i++) {
			memset(x->lo[i], r->lo[i], 64);
			memset(x->span[i], r->hi[i] - r->lo[i], 64);
		}
	}
}

enum dlp_vec_level dlp_vec_level(void)
{
	enum dlp_vec_level have = DLP_VEC_NONE;
	const char *want = getenv("OCCFS_DLP_SIMD");

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx2"))
		have = DLP_VEC_AVX2;
	if (__builtin_cpu_supports("avx512bw"))
		have = DLP_VEC_AVX512;
#endif
	if (want && strcmp(want, "portable") == 0)
		return DLP_VEC_NONE;
	if (want && strcmp(want, "avx2") == 0 && have >= DLP_VEC_AVX2)
		return DLP_VEC_AVX2;
	return have;
}

/* Position test x on the starts in k. */
static inline __attribute__((always_inline, target("avx512f,avx512bw")))
__mmask64
test(const struct dlp_vtest *x, const unsigned char *q, __mmask64 k)
{
	__m512i v = _mm512_loadu_si512((const void *)(q + x->pos));
	__mmask64 in = 0;
	unsigned i = 0;

	do {
		__m512i lo = _mm512_loadu_si512((const void *)x->lo[i]);
		__m512i span = _mm512_loadu_si512((const void *)x->span[i]);

		in |= _mm512_mask_cmple_epu8_mask(k, _mm512_sub_epi8(v, lo),
						  span);
	} while (++i < x->n);
	return in;
}

/*
 * One rule: bit i, the prefix may start at q[i].  Tests go two at a time
 * before looking whether any start is left: which test rules a block out
 * depends on the data, and a mispredicted exit costs more than a test.
 */
static inline __attribute__((always_inline, target("avx512f,avx512bw")))
uint64_t
starts(const struct dlp_prefilter *p, const unsigned char *q)
{
	__mmask64 k = ~0ull;
	unsigned t = 0;

	do {
		unsigned stop =
		    t + VEC_GROUP < p->nvec ? t + VEC_GROUP : p->nvec;

		for (; t < stop; t++)
			k = test(&p->vt[t], q, k);
	} while (k && t < p->nvec);
	return (uint64_t)k;
}

/* The same in AVX2: two 32-byte halves, the starts kept as byte masks. */
static inline __attribute__((always_inline, target("avx2"))) void
test2(const struct dlp_vtest *x, const unsigned char *q, __m256i *k0,
      __m256i *k1)
{
	const __m256i *a = (const __m256i *)(const void *)(q + x->pos);
	__m256i v0 = _mm256_loadu_si256(a), v1 = _mm256_loadu_si256(a + 1);
	__m256i in0 = _mm256_setzero_si256(), in1 = in0;
	unsigned i = 0;

	do {
		__m256i lo = _mm256_loadu_si256((const void *)x->lo[i]);
		__m256i span = _mm256_loadu_si256((const void *)x->span[i]);
		__m256i d0 = _mm256_sub_epi8(v0, lo),
			d1 = _mm256_sub_epi8(v1, lo);

		in0 = _mm256_or_si256(
		    in0, _mm256_cmpeq_epi8(_mm256_min_epu8(d0, span), d0));
		in1 = _mm256_or_si256(
		    in1, _mm256_cmpeq_epi8(_mm256_min_epu8(d1, span), d1));
	} while (++i < x->n);
	*k0 = _mm256_and_si256(*k0, in0);
	*k1 = _mm256_and_si256(*k1, in1);
}

static inline __attribute__((always_inline, target("avx2"))) uint64_t
starts2(const struct dlp_prefilter *p, const unsigned char *q)
{
	__m256i k0 = _mm256_set1_epi8(-1), k1 = k0;
	unsigned t = 0;

	do {
		unsigned stop =
		    t + VEC_GROUP < p->nvec ? t + VEC_GROUP : p->nvec;

		for (; t < stop; t++)
			test2(&p->vt[t], q, &k0, &k1);
	} while (!_mm256_testz_si256(_mm256_or_si256(k0, k1),
				     _mm256_or_si256(k0, k1)) &&
		 t < p->nvec);
	return (uint64_t)(uint32_t)_mm256_movemask_epi8(k0) |
	       (uint64_t)(uint32_t)_mm256_movemask_epi8(k1) << 32;
}

__attribute__((target("avx2"))) void dlp_vec_block256(const struct dlp_fast *f,
						      const unsigned char *p,
						      const uint8_t *skip,
						      uint64_t *out)
{
	for (unsigned r = 0; r < f->npf; r++)
		out[r] =
		    skip[r] ? 0 : starts2(&f->pf[r], p + 65 - f->pf[r].plen);
}

/*
 * For each rule r not skipped, out[r] bit i: r's prefix may end at byte i
 * of the block p[64, 128) (p[0, 64) is the block before).
 */
__attribute__((target("avx512f,avx512bw"))) void
dlp_vec_block512(const struct dlp_fast *f, const unsigned char *p,
		 const uint8_t *skip, uint64_t *out)
{
	for (unsigned r = 0; r < f->npf; r++)
		out[r] =
		    skip[r] ? 0 : starts(&f->pf[r], p + 65 - f->pf[r].plen);
}
