/*
 * dlp_vec.c - the class rules' prefix test in wide vectors, where the CPU
 * has them (AVX-512BW, else AVX2; chosen when the engine is built).
 *
 * For each 64-byte block and class rule the question is: at which of the
 * 64 places can the rule's prefix (its leading classes, up to 32) end?
 * The portable answer (dlp_fast.c) tests a few positions against two
 * masks all rules share and checks candidates byte by byte.  Here one
 * test is a load of the 64 bytes at one prefix position's offset and a
 * range compare: one bit per possible start, exact for a class of up to
 * four byte ranges.  What makes it cheap:
 *
 * - tests go in pairs, the second compare masked by the first, and a rule
 *   runs over a batch of up to DLP_VEC_BATCH blocks before the next rule,
 *   so a pair's operands stay in registers;
 * - the first pair runs over every block, each later pair only over the
 *   blocks still live, and that list is built without branches: which
 *   block survives depends on the data, and a branch per block was
 *   mispredicted often enough to cost more than the tests;
 * - the order of the tests adapts to the file (reorder() below).
 *
 * The result is exactly the portable path's before its byte-by-byte
 * check, or tighter; where every class is its ranges (vexact), a bit that
 * survives is a real prefix end.
 */
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

#include "dlp.h"
#include "dlp_int.h"

/* Batches per sample; batches shorter than VEC_SAMPLE_MIN blocks (those of
 * blocks straddling two writes have one) are not counted. */
#define VEC_SAMPLE_EVERY 4
#define VEC_SAMPLE_MIN 16
/* Tests a reorder chooses; the rest keep their order. */
#define VEC_CHOOSE 6

/*
 * A rough frequency of each byte in text files, in parts per 10000: the
 * order of the tests until the file's own samples choose one (reorder()).
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
	unsigned w[DLP_PREFIX_MAX], n = 0;
	struct dlp_ranges vr[DLP_PREFIX_MAX];
	unsigned char order[DLP_PREFIX_MAX];
	bool exact[DLP_PREFIX_MAX];

	for (unsigned j = 0; j < cr->plen; j++) {
		exact[j] = to_ranges(&cr->pre[j], &vr[j]);
		w[j] = ranges_weight(&vr[j]);
		if (vr[j].n)
			order[n++] = (unsigned char)j;
	}
	/* rarest first; ties keep the later position first, as it is less
	 * correlated with the positions already tested */
	for (unsigned i = 1; i < n; i++)
		for (unsigned k = i; k > 0; k--) {
			unsigned a = order[k - 1], b = order[k];

			if (w[b] > w[a] || (w[b] == w[a] && b < a))
				break;
			order[k - 1] = (unsigned char)b;
			order[k] = (unsigned char)a;
		}
	/* a position almost any byte passes is not worth a compare, but the
	 * inner loop wants at least two tests */
	p->nvec = 0;
	while (p->nvec < n && (p->nvec < 2 || w[order[p->nvec]] < 5000))
		p->nvec++;
	p->vexact = p->nvec == cr->plen;
	for (unsigned t = 0; t < p->nvec; t++) {
		struct dlp_vtest *x = &p->vt[t];
		const struct dlp_ranges *r = &vr[order[t]];

		p->vexact &= exact[order[t]];
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

/*
 * The order of the tests adapts to the file.  How often a class holds
 * depends on the content (capitals are everywhere in base64, spaces in
 * prose, digits and dashes in logs), so a fixed order lets most blocks
 * through the first tests in some file or other.  One block of every
 * fourth batch is sampled with every test; every DLP_VEC_SAMPLES samples
 * the order is chosen again greedily: first the test that leaves the
 * fewest sampled blocks with a start, then the one that leaves the fewest
 * together with it, and so on.  The order changes only the work, never
 * the result.
 */
static void reorder(const struct dlp_prefilter *p, struct dlp_vec_rule *vr)
{
	uint64_t left[DLP_VEC_SAMPLES];
	bool used[DLP_PREFIX_MAX] = {false};
	unsigned char ord[DLP_PREFIX_MAX];
	unsigned k = 0;

	for (unsigned i = 0; i < DLP_VEC_SAMPLES; i++)
		left[i] = ~0ull;
	/* the first few matter; the rest keep their order */
	for (; k < VEC_CHOOSE && k < p->nvec; k++) {
		unsigned best = 0, bestn = ~0u;

		for (unsigned c = 0; c < p->nvec; c++) {
			unsigned t = vr->ord[c], n = 0;

			if (used[t])
				continue;
			for (unsigned i = 0; i < DLP_VEC_SAMPLES; i++)
				n += (left[i] & vr->samp[i][t]) != 0;
			if (n < bestn) {
				best = t;
				bestn = n;
			}
		}
		ord[k] = (unsigned char)best;
		used[best] = true;
		for (unsigned i = 0; i < DLP_VEC_SAMPLES; i++)
			left[i] &= vr->samp[i][best];
	}
	for (unsigned c = 0; c < p->nvec; c++)
		if (!used[vr->ord[c]])
			ord[k++] = vr->ord[c];
	vr->nchanged += memcmp(vr->ord, ord, p->nvec) != 0;
	memcpy(vr->ord, ord, p->nvec);
	vr->nsamp = 0;
}

void dlp_vec_rule_init(const struct dlp_prefilter *p, struct dlp_vec_rule *vr)
{
	for (unsigned t = 0; t < p->nvec; t++)
		vr->ord[t] = (unsigned char)t;
	vr->nsamp = 0;
}

/* A test as the inner loop wants it: the data at d + 64 * block. */
struct tdesc {
	const unsigned char *d, *lo, *span;
	unsigned n;
};

static void tdesc_fill(struct tdesc *td, const struct dlp_prefilter *p,
		       const unsigned char *ord, const unsigned char *q)
{
	for (unsigned t = 0; t < p->nvec; t++) {
		const struct dlp_vtest *x = &p->vt[ord[t]];

		td[t].d = q + x->pos;
		td[t].lo = x->lo[0];
		td[t].span = x->span[0];
		td[t].n = x->n;
	}
}

/* Test td on the block at offset off: bit i, the byte is in its class. */
static inline __attribute__((always_inline, target("avx512f,avx512bw")))
__mmask64
test(const struct tdesc *td, size_t off)
{
	__m512i v = _mm512_loadu_si512((const void *)(td->d + off));
	__mmask64 in = 0;
	unsigned i = 0;

	do {
		__m512i lo =
		    _mm512_loadu_si512((const void *)(td->lo + 64 * i));
		__m512i span =
		    _mm512_loadu_si512((const void *)(td->span + 64 * i));

		in |= _mm512_cmple_epu8_mask(_mm512_sub_epi8(v, lo), span);
	} while (++i < td->n);
	return in;
}

/* Tests a and b, the second compare masked by the first. */
static inline __attribute__((always_inline, target("avx512f,avx512bw")))
uint64_t
pair(const struct tdesc *a, const struct tdesc *b, size_t off)
{
	__mmask64 k = test(a, off), in = 0;
	__m512i v = _mm512_loadu_si512((const void *)(b->d + off));
	unsigned i = 0;

	do {
		__m512i lo = _mm512_loadu_si512((const void *)(b->lo + 64 * i));
		__m512i span =
		    _mm512_loadu_si512((const void *)(b->span + 64 * i));

		in |= _mm512_mask_cmple_epu8_mask(k, _mm512_sub_epi8(v, lo),
						  span);
	} while (++i < b->n);
	return (uint64_t)in;
}

/* Every test on the first block, for the next reorder. */
static __attribute__((target("avx512f,avx512bw"))) void
sample512(const struct dlp_prefilter *p, struct dlp_vec_rule *vr,
	  const unsigned char *q)
{
	struct tdesc td[DLP_PREFIX_MAX];
	unsigned char id[DLP_PREFIX_MAX];

	for (unsigned t = 0; t < p->nvec; t++)
		id[t] = (unsigned char)t;
	tdesc_fill(td, p, id, q);
	for (unsigned t = 0; t < p->nvec; t++)
		vr->samp[vr->nsamp][t] = (uint64_t)test(&td[t], 0);
	if (++vr->nsamp == DLP_VEC_SAMPLES)
		reorder(p, vr);
}

/* Tests a and b on the block at off with their operands in registers: up
 * to two ranges each (a one-range class repeats its range). */
struct reg2 {
	__m512i la0, sa0, la1, sa1, lb0, sb0, lb1, sb1;
	const unsigned char *da, *db;
};

static inline __attribute__((always_inline, target("avx512f,avx512bw"))) void
reg2_load(struct reg2 *r, const struct tdesc *a, const struct tdesc *b)
{
	unsigned ia = a->n > 1, ib = b->n > 1;

	r->la0 = _mm512_loadu_si512((const void *)a->lo);
	r->sa0 = _mm512_loadu_si512((const void *)a->span);
	r->la1 = _mm512_loadu_si512((const void *)(a->lo + 64 * ia));
	r->sa1 = _mm512_loadu_si512((const void *)(a->span + 64 * ia));
	r->lb0 = _mm512_loadu_si512((const void *)b->lo);
	r->sb0 = _mm512_loadu_si512((const void *)b->span);
	r->lb1 = _mm512_loadu_si512((const void *)(b->lo + 64 * ib));
	r->sb1 = _mm512_loadu_si512((const void *)(b->span + 64 * ib));
	r->da = a->d;
	r->db = b->d;
}

#define IN(v, l, s) _mm512_cmple_epu8_mask(_mm512_sub_epi8(v, l), s)
#define MIN(k, v, l, s) _mm512_mask_cmple_epu8_mask(k, _mm512_sub_epi8(v, l), s)

static inline __attribute__((always_inline, target("avx512f,avx512bw")))
uint64_t
pair11(const struct reg2 *r, size_t off)
{
	__m512i va = _mm512_loadu_si512((const void *)(r->da + off));
	__m512i vb = _mm512_loadu_si512((const void *)(r->db + off));

	return (uint64_t)MIN(IN(va, r->la0, r->sa0), vb, r->lb0, r->sb0);
}

static inline __attribute__((always_inline, target("avx512f,avx512bw")))
uint64_t
pair22(const struct reg2 *r, size_t off)
{
	__m512i va = _mm512_loadu_si512((const void *)(r->da + off));
	__m512i vb = _mm512_loadu_si512((const void *)(r->db + off));
	__mmask64 k = IN(va, r->la0, r->sa0) | IN(va, r->la1, r->sa1);

	return (uint64_t)(MIN(k, vb, r->lb0, r->sb0) |
			  MIN(k, vb, r->lb1, r->sb1));
}

/*
 * One pair over the live blocks: out[j] &= the pair's result, and live
 * keeps the blocks with a start left; returns how many.  The first pair
 * runs over every block (out and live are filled rather than read).
 */
#define STAGE(PAIR)                                           \
	do {                                                  \
		if (first) {                                  \
			for (unsigned j = 0; j < nl; j++) {   \
				out[j] = PAIR;                \
				live[nn] = (unsigned short)j; \
				nn += out[j] != 0;            \
			}                                     \
			break;                                \
		}                                             \
		for (unsigned i = 0; i < nl; i++) {           \
			unsigned j = live[i];                 \
                                                              \
			out[j] &= PAIR;                       \
			live[nn] = (unsigned short)j;         \
			nn += out[j] != 0;                    \
		}                                             \
	} while (0)

static inline
    __attribute__((always_inline, target("avx512f,avx512bw"))) unsigned
    stage512(const struct tdesc *a, const struct tdesc *b, unsigned short *live,
	     unsigned nl, uint64_t *out, bool first)
{
	unsigned nn = 0;
	struct reg2 r;

	if (a->n == 1 && b->n == 1) {
		reg2_load(&r, a, b);
		STAGE(pair11(&r, 64 * (size_t)j));
	} else if (a->n <= 2 && b->n <= 2) {
		reg2_load(&r, a, b);
		STAGE(pair22(&r, 64 * (size_t)j));
	} else {
		STAGE(pair(a, b, 64 * (size_t)j));
	}
	return nn;
}

/*
 * Rule p over n blocks whose prefixes start at q, q + 64, ...: bit i of
 * out[j], the prefix may start at q[64 * j + i].  The tests go in pairs
 * (the second compare masked by the first), each pair over the blocks the
 * pairs before left a start in.  Which blocks those are depends on the
 * data, so rather than a branch per block (mispredicted half the time in
 * some files) the list of live blocks is built without branches.
 */
static __attribute__((target("avx512f,avx512bw"))) void
rule512(const struct dlp_prefilter *p, struct dlp_vec_rule *vr,
	const unsigned char *q, unsigned n, uint64_t *out)
{
	struct tdesc td[DLP_PREFIX_MAX + 1];
	unsigned short live[DLP_VEC_BATCH];
	unsigned nv = p->nvec, nl = n;

	if (n >= VEC_SAMPLE_MIN && vr->nbatch++ % VEC_SAMPLE_EVERY == 0)
		sample512(p, vr, q);
	tdesc_fill(td, p, vr->ord, q);
	if (nv & 1) /* pad to pairs with a repeat of the last test */
		td[nv] = td[nv - 1];
	for (unsigned t = 0; t < nv && nl; t += 2)
		nl = stage512(&td[t], &td[t + 1], live, nl, out, t == 0);
}

/* The same in AVX2: two 32-byte halves. */
static inline __attribute__((always_inline, target("avx2"))) uint64_t
test256(const struct tdesc *td, size_t off)
{
	const __m256i *a = (const __m256i *)(const void *)(td->d + off);
	__m256i v0 = _mm256_loadu_si256(a), v1 = _mm256_loadu_si256(a + 1);
	__m256i in0 = _mm256_setzero_si256(), in1 = in0;
	unsigned i = 0;

	do {
		__m256i lo =
		    _mm256_loadu_si256((const void *)(td->lo + 64 * i));
		__m256i span =
		    _mm256_loadu_si256((const void *)(td->span + 64 * i));
		__m256i d0 = _mm256_sub_epi8(v0, lo),
			d1 = _mm256_sub_epi8(v1, lo);

		in0 = _mm256_or_si256(
		    in0, _mm256_cmpeq_epi8(_mm256_min_epu8(d0, span), d0));
		in1 = _mm256_or_si256(
		    in1, _mm256_cmpeq_epi8(_mm256_min_epu8(d1, span), d1));
	} while (++i < td->n);
	return (uint64_t)(uint32_t)_mm256_movemask_epi8(in0) |
	       (uint64_t)(uint32_t)_mm256_movemask_epi8(in1) << 32;
}

static inline __attribute__((always_inline, target("avx2"))) unsigned
stage256(const struct tdesc *a, const struct tdesc *b, unsigned short *live,
	 unsigned nl, uint64_t *out, bool first)
{
	unsigned nn = 0;

	STAGE(test256(a, 64 * (size_t)j) & test256(b, 64 * (size_t)j));
	return nn;
}

/* rule512 in AVX2. */
static __attribute__((target("avx2"))) void
rule256(const struct dlp_prefilter *p, struct dlp_vec_rule *vr,
	const unsigned char *q, unsigned n, uint64_t *out)
{
	struct tdesc td[DLP_PREFIX_MAX + 1];
	unsigned short live[DLP_VEC_BATCH];
	unsigned nv = p->nvec, nl = n;

	if (n >= VEC_SAMPLE_MIN && vr->nbatch++ % VEC_SAMPLE_EVERY == 0) {
		unsigned char id[DLP_PREFIX_MAX];

		for (unsigned t = 0; t < nv; t++)
			id[t] = (unsigned char)t;
		tdesc_fill(td, p, id, q);
		for (unsigned t = 0; t < nv; t++)
			vr->samp[vr->nsamp][t] = test256(&td[t], 0);
		if (++vr->nsamp == DLP_VEC_SAMPLES)
			reorder(p, vr);
	}
	tdesc_fill(td, p, vr->ord, q);
	if (nv & 1)
		td[nv] = td[nv - 1];
	for (unsigned t = 0; t < nv && nl; t += 2)
		nl = stage256(&td[t], &td[t + 1], live, nl, out, t == 0);
}

void dlp_vec_batch(const struct dlp_fast *f, struct dlp_vec_rule *vr,
		   const unsigned char *p, unsigned n, const uint8_t *skip,
		   uint64_t *out)
{
	for (unsigned r = 0; r < f->npf; r++) {
		const unsigned char *q = p + 65 - f->pf[r].plen;

		if (skip[r])
			memset(out + r * n, 0, n * sizeof(*out));
		else if (f->vec == DLP_VEC_AVX512)
			rule512(&f->pf[r], &vr[r], q, n, out + r * n);
		else
			rule256(&f->pf[r], &vr[r], q, n, out + r * n);
	}
}

/* The card scan's masks (dlp_fast.c), where the CPU has wide vectors. */
__attribute__((target("avx512f,avx512bw"))) uint64_t
dlp_vec_mask512(const struct dlp_ranges *r, const unsigned char *p)
{
	__m512i v = _mm512_loadu_si512((const void *)p);
	__mmask64 in = 0;

	for (unsigned i = 0; i < r->n; i++)
		in |= IN(v, _mm512_set1_epi8((char)r->lo[i]),
			 _mm512_set1_epi8((char)(r->hi[i] - r->lo[i])));
	return (uint64_t)in;
}

__attribute__((target("avx2"))) uint64_t
dlp_vec_mask256(const struct dlp_ranges *r, const unsigned char *p)
{
	const __m256i *a = (const __m256i *)(const void *)p;
	__m256i v0 = _mm256_loadu_si256(a), v1 = _mm256_loadu_si256(a + 1);
	__m256i in0 = _mm256_setzero_si256(), in1 = in0;

	for (unsigned i = 0; i < r->n; i++) {
		__m256i lo = _mm256_set1_epi8((char)r->lo[i]);
		__m256i span = _mm256_set1_epi8((char)(r->hi[i] - r->lo[i]));
		__m256i d0 = _mm256_sub_epi8(v0, lo),
			d1 = _mm256_sub_epi8(v1, lo);

		in0 = _mm256_or_si256(
		    in0, _mm256_cmpeq_epi8(_mm256_min_epu8(d0, span), d0));
		in1 = _mm256_or_si256(
		    in1, _mm256_cmpeq_epi8(_mm256_min_epu8(d1, span), d1));
	}
	return (uint64_t)(uint32_t)_mm256_movemask_epi8(in0) |
	       (uint64_t)(uint32_t)_mm256_movemask_epi8(in1) << 32;
}
