/*
 * dlp_fast.c - the fast paths for rules Vectorscan has nothing to anchor on.
 *
 * Card numbers and custom patterns made only of character classes keep a
 * Vectorscan automaton live over every digit of a log file.  Instead, each
 * write is examined 64 bytes at a time with SSE2 compares that give one
 * bit per byte:
 *
 * - card_number: digits, and a space or dash between two digits, form runs;
 *   wherever a run of 13 or more such bytes ends in a digit followed by a
 *   non-word byte, the card confirmer (Luhn) runs on the bytes before it.
 *   This is exactly where the card pattern can end, so the findings are
 *   those of the pattern.
 *
 * - class-only rules: every byte of a match lies in the rule's byte set, so
 *   a match lies inside a maximal run of bytes of the union of those sets,
 *   and it starts at a position where the rule's leading classes hold.  Only
 *   runs holding such a position (or longer than RUN_MAX, which cannot be
 *   kept for later) are fed, each with the byte before and after it, to a
 *   second streaming database of the class-only rules, with a pad byte
 *   outside the union between runs.  No match can cross a pad or a context
 *   byte, and every assertion (\b, ^, $) in a run sees the file's real
 *   neighbours, so that database reports exactly the file's matches; the
 *   stream maps its offsets back to file offsets.
 *
 * Where the prefix positions are, the prefix test, is what costs: it runs
 * for every class rule over every byte.  Here is the portable one (two
 * shared masks, a few probes, then a byte-by-byte check); dlp_vec.c has
 * the AVX-512BW and AVX2 one, which tests the whole prefix.
 *
 * Blocks are examined in file order whatever the write boundaries: a block
 * needs the next 64 bytes as look-ahead, so up to 127 bytes wait for the
 * next write (taken from the stream's ring) or the end of the file (padded).
 */
#include <emmintrin.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dlp.h"
#include "dlp_int.h"

/* A run this long is fed even before a prefix position shows up: its start
 * must still be in the stream's ring when one does. */
#define RUN_MAX 2048

static bool is_word_byte(unsigned c)
{
	return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') ||
	       (c >= 'a' && c <= 'z') || c == '_';
}

/* Probe kinds: which shared masks, and whether the byte lies outside. */
#define PK_DIGIT 1
#define PK_UPPER 2
#define PK_NOT 4

static bool bset_within(const struct dlp_bset *b, unsigned lo, unsigned hi,
			unsigned lo2, unsigned hi2)
{
	for (unsigned c = 0; c < 256; c++)
		if (dlp_bset_has(b, c) && !(c >= lo && c <= hi) &&
		    !(c >= lo2 && c <= hi2))
			return false;
	return true;
}

static bool bset_outside(const struct dlp_bset *b, unsigned lo, unsigned hi,
			 unsigned lo2, unsigned hi2)
{
	for (unsigned c = 0; c < 256; c++)
		if (dlp_bset_has(b, c) &&
		    ((c >= lo && c <= hi) || (c >= lo2 && c <= hi2)))
			return false;
	return true;
}

/* The tightest shared-mask test a position's set allows; rank: lower is
 * rarer in text, so tried first.  -1: no test. */
static int probe_kind(const struct dlp_bset *b, int *rank)
{
	static const struct {
		int kind, rank;
		unsigned lo, hi, lo2, hi2;
		bool within;
	} t[] = {
	    {PK_UPPER, 0, 'A', 'Z', 'A', 'Z', true},
	    {PK_DIGIT, 2, '0', '9', '0', '9', true},
	    {PK_NOT | PK_DIGIT | PK_UPPER, 1, '0', '9', 'A', 'Z', false},
	    {PK_DIGIT | PK_UPPER, 3, '0', '9', 'A', 'Z', true},
	    {PK_NOT | PK_DIGIT, 4, '0', '9', '0', '9', false},
	    {PK_NOT | PK_UPPER, 5, 'A', 'Z', 'A', 'Z', false},
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (t[i].within
			? bset_within(b, t[i].lo, t[i].hi, t[i].lo2, t[i].hi2)
			: bset_outside(b, t[i].lo, t[i].hi, t[i].lo2,
				       t[i].hi2)) {
			*rank = t[i].rank;
			return t[i].kind;
		}
	return -1;
}

/* Up to DLP_PROBES_MAX positions, rarest test first, ties to the end of
 * the prefix (so the probes span it). */
static void choose_probes(struct dlp_prefilter *p,
			  const struct dlp_class_rule *cr)
{
	for (int rank = 0; rank < 6; rank++)
		for (int j = (int)cr->plen - 1; j >= 0; j--) {
			int r, k = probe_kind(&cr->pre[j], &r);

			if (k < 0 || r != rank || p->nprobe == DLP_PROBES_MAX)
				continue;
			p->probe_pos[p->nprobe] = (unsigned char)j;
			p->probe_kind[p->nprobe++] = (unsigned char)k;
		}
}

int dlp_fast_add_class(struct dlp_fast *f, unsigned id,
		       const struct dlp_class_rule *cr)
{
	struct dlp_prefilter p = {.id = id, .plen = cr->plen};
	struct dlp_bset uni = f->unib;
	struct dlp_prefilter *n;
	int pad = -1;

	for (int i = 0; i < 4; i++)
		uni.w[i] |= cr->all.w[i];
	/* the pad: a byte outside every class rule's set, and no word byte
	 * nor digit, so it also ends card runs at the end of the file */
	for (int c = 255; c > 0 && pad < 0; c--)
		if (!dlp_bset_has(&uni, (unsigned)c) &&
		    !is_word_byte((unsigned)c) && c != ' ' && c != '-')
			pad = c;
	if (pad < 0)
		return -1;
	choose_probes(&p, cr);
	if (p.nprobe == 0)
		return -1;
	for (unsigned i = 0; i < DLP_PROBES_MAX; i++) {
		unsigned k = i < p.nprobe ? p.probe_kind[i] : PK_NOT;

		p.dsel[i] = k & PK_DIGIT ? ~0ull : 0;
		p.usel[i] = k & PK_UPPER ? ~0ull : 0;
		p.nsel[i] = k & PK_NOT ? ~0ull : 0;
		p.shift[i] = i < p.nprobe ? p.plen - 1 - p.probe_pos[i] : 0;
	}
	for (unsigned c = 0; c < 256; c++)
		for (unsigned i = 0; i < cr->plen; i++)
			if (dlp_bset_has(&cr->pre[i], c))
				p.pos[c] |= 1u << i;
	dlp_vec_setup(&p, cr);
	f->mask_vec = dlp_vec_level();
	/* the wide path takes all class rules or none */
	if (f->npf < DLP_VEC_RULES_MAX && p.nvec >= 2 &&
	    (f->npf == 0 || f->vec != DLP_VEC_NONE))
		f->vec = dlp_vec_level();
	else
		f->vec = DLP_VEC_NONE;
	n = realloc(f->pf, (f->npf + 1) * sizeof(*n));
	if (!n)
		return -1;
	f->pf = n;
	f->pf[f->npf++] = p;
	f->unib = uni;
	for (unsigned c = 0; c < 256; c++)
		f->uni[c] = dlp_bset_has(&uni, c);
	f->pad = (unsigned char)pad;
	return 0;
}

int dlp_fast_add_card(struct dlp_fast *f, unsigned id)
{
	unsigned *n = realloc(f->card, (f->ncard + 1) * sizeof(*n));

	if (!n)
		return -ENOMEM;
	f->card = n;
	f->card[f->ncard++] = id;
	f->mask_vec = dlp_vec_level();
	if (!f->pad)
		f->pad = 0xff;
	return 0;
}

void dlp_fast_cleanup(struct dlp_fast *f)
{
	free(f->pf);
	free(f->card);
	hs_free_database(f->cls_db);
	memset(f, 0, sizeof(*f));
}

/* Bytes of v in [lo, lo + span] as 0xff. */
static inline __m128i in_range(__m128i v, __m128i lo, __m128i span)
{
	__m128i x = _mm_sub_epi8(v, lo);

	return _mm_cmpeq_epi8(_mm_min_epu8(x, span), x);
}

/* One bit per byte of p[0..64): is it in the ranges?  Unrolled by hand:
 * this is the inner loop of the fast paths. */
static inline __attribute__((always_inline)) uint64_t
mask64(const struct dlp_ranges *r, const unsigned char *p)
{
	const __m128i *q = (const __m128i *)(const void *)p;
	__m128i v0 = _mm_loadu_si128(q), v1 = _mm_loadu_si128(q + 1);
	__m128i v2 = _mm_loadu_si128(q + 2), v3 = _mm_loadu_si128(q + 3);
	__m128i lo = _mm_set1_epi8((char)r->lo[0]);
	__m128i span = _mm_set1_epi8((char)(r->hi[0] - r->lo[0]));
	__m128i a0 = in_range(v0, lo, span), a1 = in_range(v1, lo, span);
	__m128i a2 = in_range(v2, lo, span), a3 = in_range(v3, lo, span);

	for (unsigned i = 1; i < r->n; i++) {
		lo = _mm_set1_epi8((char)r->lo[i]);
		span = _mm_set1_epi8((char)(r->hi[i] - r->lo[i]));
		a0 = _mm_or_si128(a0, in_range(v0, lo, span));
		a1 = _mm_or_si128(a1, in_range(v1, lo, span));
		a2 = _mm_or_si128(a2, in_range(v2, lo, span));
		a3 = _mm_or_si128(a3, in_range(v3, lo, span));
	}
	return (uint64_t)(unsigned)_mm_movemask_epi8(a0) |
	       (uint64_t)(unsigned)_mm_movemask_epi8(a1) << 16 |
	       (uint64_t)(unsigned)_mm_movemask_epi8(a2) << 32 |
	       (uint64_t)(unsigned)_mm_movemask_epi8(a3) << 48;
}

static const struct dlp_ranges digit_r = {1, {'0'}, {'9'}};
static const struct dlp_ranges sep_r = {2, {' ', '-'}, {' ', '-'}};
static const struct dlp_ranges word_r = {
    4, {'0', 'A', '_', 'a'}, {'9', 'Z', '_', 'z'}};

static const struct dlp_ranges upper_r = {1, {'A'}, {'Z'}};

/*
 * Masks (struct blockmasks) of the block being examined and of the one
 * before it, computed when first needed; a block's masks serve again as
 * the "before" masks of the next.
 */
#define SET_DIGIT 0
#define SET_UPPER 1
#define SET_SEP 2
#define SET_WORD 3

static const struct dlp_ranges *const set_r[] = {&digit_r, &upper_r, &sep_r,
						 &word_r};

static uint64_t bm_mask(const struct blockmasks *bm, unsigned k,
			const unsigned char *p)
{
	if (bm->vec == DLP_VEC_AVX512)
		return dlp_vec_mask512(set_r[k], p);
	if (bm->vec == DLP_VEC_AVX2)
		return dlp_vec_mask256(set_r[k], p);
	return mask64(set_r[k], p);
}

static uint64_t bm_cur(struct blockmasks *bm, unsigned k)
{
	if (!(bm->have_cur & (1u << k))) {
		bm->cur[k] = bm_mask(bm, k, bm->p + 64);
		bm->have_cur |= 1u << k;
	}
	return bm->cur[k];
}

static uint64_t bm_prev(struct blockmasks *bm, unsigned k)
{
	if (!(bm->have_prev & (1u << k))) {
		bm->prev[k] = bm_mask(bm, k, bm->p);
		bm->have_prev |= 1u << k;
	}
	return bm->prev[k];
}

static void bm_advance(struct blockmasks *bm)
{
	uint64_t h = bm->have_cur;

	bm->have_prev = h;
	bm->have_cur = 0;
	while (h) {
		unsigned k = (unsigned)__builtin_ctzll(h);

		h &= h - 1;
		bm->prev[k] = bm->cur[k];
	}
}

/* Starts of rule pf's prefix ending at the ends in m, checked byte by
 * byte: bit 64 + i of the result is a start at block offset i. */
static unsigned __int128 check_ends(const struct dlp_prefilter *pf,
				    const unsigned char *p, uint64_t m)
{
	uint32_t all = pf->plen == 32 ? ~0u : (1u << pf->plen) - 1;
	unsigned __int128 any = 0;

	while (m) {
		unsigned e = 64 + (unsigned)__builtin_ctzll(m);
		const unsigned char *q = p + e + 1 - pf->plen;
		uint32_t ok = all;

		m &= m - 1;
		for (unsigned j = 0; j < pf->plen && ok == all; j++)
			if (!(pf->pos[q[j]] & (1u << j)))
				ok = 0;
		if (ok)
			any |= (unsigned __int128)1 << (e + 1 - pf->plen);
	}
	return any;
}

static void vec_batch(const struct dlp_stream *s, const unsigned char *p,
		      unsigned n, uint64_t *out)
{
	const struct dlp_fast *f = &s->e->fast;
	uint8_t skip[DLP_VEC_RULES_MAX];

	for (unsigned r = 0; r < f->npf; r++)
		skip[r] = s->hit[f->pf[r].id] || !s->active[f->pf[r].id];
	dlp_vec_batch(f, s->fs->vr, p, n, skip, out);
}

/*
 * The wide-vector prefix test (dlp_vec.c) for the block at file offset
 * base, its window at p.  Blocks inside the current write are tested up
 * to DLP_VEC_BATCH at a time, one rule after the other, so that a rule's
 * first tests stay in registers.
 */
static unsigned __int128 vec_starts(const struct dlp_stream *s,
				    const unsigned char *p, uint64_t base)
{
	const struct dlp_fast *f = &s->e->fast;
	struct dlp_fast_state *fs = s->fs;
	uint64_t one[DLP_VEC_RULES_MAX], end = s->cur_base + s->cur_len;
	unsigned __int128 any = 0;
	const uint64_t *ends = one;
	unsigned stride = 1;

	if (base >= fs->vbase && base < fs->vbase + 64ull * fs->vn) {
		if (!fs->vsum[(base - fs->vbase) / 64])
			return 0;
		ends = fs->vends + (base - fs->vbase) / 64;
		stride = fs->vn;
	} else if (base >= s->cur_base + 64 && base + 64 <= end) {
		uint64_t n = (end - base) / 64;

		fs->vn = n < DLP_VEC_BATCH ? (unsigned)n : DLP_VEC_BATCH;
		fs->vbase = base;
		vec_batch(s, p, fs->vn, fs->vends);
		ends = fs->vends;
		stride = fs->vn;
		memset(fs->vsum, 0, sizeof(fs->vsum));
		for (unsigned r = 0; r < f->npf; r++)
			for (unsigned j = 0; j < fs->vn; j++)
				fs->vsum[j] |= ends[r * stride + j] != 0;
	} else {
		vec_batch(s, p, 1, one);
	}
	for (unsigned r = 0; r < f->npf; r++) {
		const struct dlp_prefilter *pf = &f->pf[r];
		uint64_t m = ends[r * stride];

		if (!m || s->hit[pf->id])
			continue;
		if (pf->vexact)
			any |= (unsigned __int128)m << (65 - pf->plen);
		else
			any |= check_ends(pf, p, m);
	}
	return any;
}

/*
 * Where some class rule's leading classes hold with their last byte in the
 * block: bit 64 + i of the result is a start at block offset i (starts
 * reach back into the block before).
 */
static unsigned __int128 prefix_starts(const struct dlp_stream *s,
				       struct blockmasks *bm, uint64_t base)
{
	const struct dlp_fast *f = &s->e->fast;
	uint64_t dc, dp, uc, up;
	unsigned __int128 any = 0;

	if (f->vec)
		return vec_starts(s, bm->p, base);
	dc = bm_cur(bm, SET_DIGIT);
	dp = bm_prev(bm, SET_DIGIT);
	uc = bm_cur(bm, SET_UPPER);
	up = bm_prev(bm, SET_UPPER);
	for (unsigned r = 0; r < f->npf; r++) {
		const struct dlp_prefilter *pf = &f->pf[r];
		uint64_t m = ~0ull; /* bit i: a prefix may end at i */

		if (s->hit[pf->id] || !s->active[pf->id])
			continue;
		/* no early exit: which probe rules a block out depends on
		 * the data, and mispredicted exits cost more than the steps */
		for (unsigned o = 0; o < pf->nprobe; o++) {
			uint64_t ds = pf->dsel[o], us = pf->usel[o];
			uint64_t ns = pf->nsel[o], sh = pf->shift[o];
			uint64_t c = ((dc & ds) | (uc & us)) ^ ns;
			uint64_t p = ((dp & ds) | (up & us)) ^ ns;

			/* the block's mask moved up by sh, the one before
			 * filling the low bits */
			m &= (c << sh) | ((p >> 1) >> (63 - sh));
		}
		any |= check_ends(pf, bm->p, m);
	}
	return any;
}

static int on_cls(unsigned id, unsigned long long from, unsigned long long to,
		  unsigned flags, void *ctx)
{
	struct dlp_stream *s = ctx;

	(void)from;
	(void)flags;
	dlp_stream_hit(s, id, (uint64_t)((int64_t)to + s->fs->delta));
	return 0;
}

static int cls_scan(struct dlp_stream *s, const unsigned char *p, size_t n)
{
	struct dlp_fast_state *fs = s->fs;

	if (hs_scan_stream(fs->hs, (const char *)p, (unsigned)n, 0, s->scratch,
			   on_cls, s) != HS_SUCCESS)
		return -EIO;
	fs->comp_pos += n;
	return 0;
}

/* Feed the file's bytes [feed_pos, upto) to the class database. */
static int feed(struct dlp_stream *s, uint64_t upto)
{
	struct dlp_fast_state *fs = s->fs;
	int ret;

	while (fs->feed_pos < upto) {
		const unsigned char *p;
		uint64_t end = upto;

		fs->delta = (int64_t)fs->feed_pos - (int64_t)fs->comp_pos;
		if (fs->feed_pos < s->cur_base) {
			/* the start of the run came in an earlier write */
			if (end > s->cur_base)
				end = s->cur_base;
			if (s->cur_base - fs->feed_pos > DLP_WINDOW)
				return -EIO; /* cannot happen: RUN_MAX */
			dlp_stream_bytes(s, end, fs->tmp, end - fs->feed_pos);
			p = fs->tmp;
		} else {
			p = s->cur + (fs->feed_pos - s->cur_base);
		}
		ret = cls_scan(s, p, end - fs->feed_pos);
		if (ret)
			return ret;
		fs->feed_pos = end;
	}
	return 0;
}

/* The byte at file offset o, which the ring or the current write holds. */
static unsigned char byte_at(const struct dlp_stream *s, uint64_t o)
{
	if (o < s->cur_base)
		return s->ring[o % DLP_WINDOW];
	return s->cur[o - s->cur_base];
}

/* Start feeding the run holding c (a union byte): from the byte before it. */
static int feed_start(struct dlp_stream *s, uint64_t c)
{
	struct dlp_fast_state *fs = s->fs;
	const bool *uni = s->e->fast.uni;
	uint64_t rs = c;

	while (rs > 0 && uni[byte_at(s, rs - 1)]) {
		rs--;
		if (c - rs > RUN_MAX + 256)
			return -EIO; /* cannot happen: long runs start early */
	}
	fs->feeding = true;
	fs->feed_pos = rs ? rs - 1 : 0;
	fs->checked = c + 1;
	return 0;
}

/*
 * Follow the open run up to offset to: where it ends, feed it with the byte
 * after it and close it with a pad.
 */
static int advance(struct dlp_stream *s, uint64_t to)
{
	struct dlp_fast_state *fs = s->fs;
	const bool *uni = s->e->fast.uni;
	int ret;

	for (; fs->feeding && fs->checked < to; fs->checked++) {
		if (uni[byte_at(s, fs->checked)])
			continue;
		fs->feeding = false;
		fs->fed_end = fs->last_break = fs->checked;
		ret = feed(s, fs->checked + 1);
		if (!ret)
			ret = cls_scan(s, &s->e->fast.pad, 1);
		return ret;
	}
	return 0;
}

/* A prefix starts at c: make sure its run is fed. */
static int start_at(struct dlp_stream *s, uint64_t c)
{
	struct dlp_fast_state *fs = s->fs;
	int ret = advance(s, c);

	if (ret || fs->feeding || c < fs->fed_end ||
	    !s->e->fast.uni[byte_at(s, c)])
		return ret;
	return feed_start(s, c);
}

/*
 * A run longer than RUN_MAX is fed whether or not a prefix shows up in it,
 * since its start would be gone from the ring by then.  One byte per block
 * is sampled; only when no sample has left the union for RUN_MAX bytes is
 * the stretch checked byte by byte.
 */
static int long_run(struct dlp_stream *s, uint64_t base, uint64_t end)
{
	struct dlp_fast_state *fs = s->fs;
	const bool *uni = s->e->fast.uni;
	uint64_t out = -(uint64_t)!uni[byte_at(s, base)];

	/* without a branch: whether the sample is in the union is random */
	fs->last_break ^= (fs->last_break ^ base) & out;
	if (base - fs->last_break < RUN_MAX)
		return 0;
	for (uint64_t o = end; o > fs->last_break + 1; o--)
		if (!uni[byte_at(s, o - 1)]) {
			fs->last_break = o - 1;
			if (base - fs->last_break < RUN_MAX)
				return 0;
			break;
		}
	if (fs->last_break + 1 <= fs->fed_end)
		return 0;
	/* the run from last_break + 1 reaches past base */
	fs->feeding = true;
	fs->feed_pos = fs->last_break;
	fs->checked = base + 1;
	return 0;
}

/* The class rules' part of a block [base, base + 64), before end. */
static int class_block(struct dlp_stream *s, struct blockmasks *bm,
		       uint64_t base, uint64_t end)
{
	struct dlp_fast_state *fs = s->fs;
	uint64_t bend = base + 64 < end ? base + 64 : end;
	unsigned __int128 st = 0;
	int ret = 0;

	/* most blocks: in the batch, and no rule's prefix ends there */
	if (!s->e->fast.vec || base < fs->vbase ||
	    base >= fs->vbase + 64ull * fs->vn ||
	    fs->vsum[(base - fs->vbase) / 64])
		st = prefix_starts(s, bm, base);

	while (st && !ret) {
		uint64_t lo = (uint64_t)st, hi = (uint64_t)(st >> 64);
		uint64_t c = lo ? base - 64 + (uint64_t)__builtin_ctzll(lo)
				: base + (uint64_t)__builtin_ctzll(hi);

		st &= st - 1;
		if (c < bend && c + 64 >= base)
			ret = start_at(s, c);
	}
	if (!ret && fs->feeding)
		ret = advance(s, bend);
	if (!ret && !fs->feeding && base < end)
		ret = long_run(s, base, bend);
	return ret;
}

/* A card number may end at file offset end: let the card rules look. */
static void card_try(struct dlp_stream *s, uint64_t end)
{
	const struct dlp_fast *f = &s->e->fast;

	for (unsigned i = 0; i < f->ncard; i++)
		dlp_stream_hit(s, f->card[i], end);
}

static bool cards_open(const struct dlp_stream *s)
{
	const struct dlp_fast *f = &s->e->fast;

	for (unsigned i = 0; i < f->ncard; i++)
		if (s->active[f->card[i]] && !s->hit[f->card[i]])
			return true;
	return false;
}

/* Digits in the run of C bytes ending at bit i + 64 of cx. */
static int run_digits(unsigned __int128 cx, unsigned __int128 dx, unsigned i)
{
	unsigned __int128 upto = ((unsigned __int128)2 << (64 + i)) - 1;
	unsigned __int128 gaps = ~cx & upto, run = dx & upto;
	uint64_t gh = (uint64_t)(gaps >> 64), gl = (uint64_t)gaps;
	int top = gh   ? 127 - __builtin_clzll(gh)
		  : gl ? 63 - __builtin_clzll(gl)
		       : -1;

	if (top >= 0)
		run &= ~(((unsigned __int128)2 << top) - 1);
	return __builtin_popcountll((uint64_t)run) +
	       __builtin_popcountll((uint64_t)(run >> 64));
}

/*
 * Card runs, in the block before [base - 64, base), whose following byte
 * is known: C marks digits and single separators between two digits; a
 * card number is 13 or more consecutive C bytes holding 13 or more digits
 * and ending in a digit, and its pattern ends only where a non-word byte
 * (or the end of the file) follows.
 */
static void card_block(struct dlp_stream *s, struct blockmasks *bm,
		       uint64_t base)
{
	struct dlp_fast_state *fs = s->fs;
	uint64_t d = bm_prev(bm, SET_DIGIT), next_d, c, cand, w;
	unsigned __int128 x, cx, dx;

	next_d = bm->p[64] >= '0' && bm->p[64] <= '9';
	c = d | (bm_prev(bm, SET_SEP) & ((d << 1) | (fs->prev_d >> 63)) &
		 ((d >> 1) | (next_d << 63)));
	cx = ((unsigned __int128)c << 64) | fs->prev_c;
	dx = ((unsigned __int128)d << 64) | fs->prev_d;
	x = cx & (cx << 1);
	x &= x << 2;
	x &= x << 4;
	x &= x << 5;
	fs->prev_c = c;
	fs->prev_d = d;
	cand = (uint64_t)(x >> 64) & d;
	if (!cand)
		return;
	w = bm_prev(bm, SET_WORD);
	w = (w >> 1) | ((uint64_t)is_word_byte(bm->p[64]) << 63);
	cand &= ~w;
	while (cand && cards_open(s)) {
		unsigned i = (unsigned)__builtin_ctzll(cand);

		cand &= cand - 1;
		if (run_digits(cx, dx, i) >= 13)
			card_try(s, base - 64 + i + 1);
	}
}

/* The 128 bytes [base - 64, base + 64): in place when the write has them,
 * else from the ring and the write, padded outside the file's bytes. */
static const unsigned char *block_at(struct dlp_stream *s, uint64_t base)
{
	struct dlp_fast_state *fs = s->fs;
	uint64_t end = s->cur_base + s->cur_len;

	if (base >= s->cur_base + 64 && base + 64 <= end)
		return s->cur + (base - 64 - s->cur_base);
	for (unsigned k = 0; k < 128; k++) {
		uint64_t o = base + k;

		if (o < 64 || o - 64 >= end)
			fs->blkbuf[k] = s->e->fast.pad;
		else
			fs->blkbuf[k] = byte_at(s, o - 64);
	}
	return fs->blkbuf;
}

/*
 * Examine the blocks whose bytes are all in (the card part looks at the
 * block before, so it needs the first byte after it); at the end of the
 * file, go on until the card part has seen the last byte.
 */
static int run_blocks(struct dlp_stream *s, uint64_t end, bool eof)
{
	struct dlp_fast_state *fs = s->fs;
	const struct dlp_fast *f = &s->e->fast;
	/* once per write: a card rule that fires meanwhile is ignored */
	bool cards = f->ncard && cards_open(s);
	int ret = 0;

	while (!ret && (eof ? fs->blk < end + 64 : fs->blk + 64 <= end)) {
		struct blockmasks *bm = &fs->bm;

		bm->p = block_at(s, fs->blk);
		if (cards)
			card_block(s, bm, fs->blk);
		if (fs->hs)
			ret = class_block(s, bm, fs->blk, end);
		fs->blk += 64;
		bm_advance(bm);
	}
	if (!ret && fs->feeding) {
		uint64_t upto = fs->checked < end ? fs->checked : end;

		ret = feed(s, upto);
	}
	return ret;
}

int dlp_fast_open(struct dlp_stream *s)
{
	const struct dlp_fast *f = &s->e->fast;

	if (!f->ncard && !f->cls_db)
		return 0;
	s->fs = calloc(1, sizeof(*s->fs));
	if (!s->fs)
		return -ENOMEM;
	s->fs->bm.vec = (int)f->mask_vec;
	if (f->vec && f->npf) {
		s->fs->vends =
		    calloc((size_t)f->npf * DLP_VEC_BATCH, sizeof(uint64_t));
		s->fs->vr = calloc(f->npf, sizeof(*s->fs->vr));
		if (!s->fs->vends || !s->fs->vr)
			return -ENOMEM;
		for (unsigned r = 0; r < f->npf; r++)
			dlp_vec_rule_init(&f->pf[r], &s->fs->vr[r]);
	}
	if (f->cls_db && hs_open_stream(f->cls_db, 0, &s->fs->hs) != HS_SUCCESS)
		return -EIO;
	return 0;
}

/* The write in s->cur at s->cur_base, before it goes into the ring. */
int dlp_fast_write(struct dlp_stream *s)
{
	if (!s->fs)
		return 0;
	return run_blocks(s, s->cur_base + s->cur_len, false);
}

int dlp_fast_finish(struct dlp_stream *s)
{
	struct dlp_fast_state *fs = s->fs;
	int ret;

	if (!fs)
		return 0;
	ret = run_blocks(s, s->pos, true);
	if (!ret && fs->feeding)
		ret = feed(s, s->pos); /* a run up to the end of the file */
	if (ret)
		return ret;
	if (fs->hs) {
		/* such a run's $ and \b report here, with its delta */
		if (hs_close_stream(fs->hs, s->scratch, on_cls, s) !=
		    HS_SUCCESS)
			ret = -EIO;
		fs->hs = NULL;
	}
	return ret;
}

void dlp_fast_close(struct dlp_stream *s)
{
	if (!s->fs)
		return;
	if (s->fs->hs)
		hs_close_stream(s->fs->hs, s->scratch, NULL, NULL);
	free(s->fs->vends);
	free(s->fs->vr);
	free(s->fs);
	s->fs = NULL;
}
