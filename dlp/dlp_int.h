/*
 * dlp_int.h - declarations shared by the DLP scanner's source files only.
 *
 * The compile flags live here so that the engine and dlp_pattern_check()
 * can never drift apart: a pattern the policy checker accepts is one the
 * broker compiles.
 */
#ifndef OCCFS_DLP_INT_H
#define OCCFS_DLP_INT_H

#include <hs/hs.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dlp.h"

/* Database mode: streaming, so matches spanning writes are found. */
#define DLP_HS_MODE HS_MODE_STREAM

/*
 * Flags for a custom pattern.  SINGLEMATCH because a custom rule decides the
 * verdict on its first match, and it lets Vectorscan stop tracking the
 * pattern once it fired; MULTILINE so ^ and $ mean line boundaries in text
 * files rather than only the start and end of the whole stream.
 */
#define DLP_HS_CUSTOM_FLAGS (HS_FLAG_SINGLEMATCH | HS_FLAG_MULTILINE)

/* Compile errors are copied into caller buffers of this size at most. */
#define DLP_ERR_MAX 256

/*
 * A built-in detector.  confirm, when set, gets the bytes ending at a match
 * end (the 64 before it, fewer at the start of the file) and returns the length
 * of the confirmed match, or -1 to drop it; detectors with a confirmer do not
 * use SINGLEMATCH, since an unconfirmed first match must not hide a later one.
 */
struct dlp_builtin {
	const char *name;
	const char *pattern;
	unsigned flags;
	long (*confirm)(const unsigned char *w, size_t wlen);
};

const struct dlp_builtin *dlp_builtin_find(const char *name);

#ifndef DLP_PIECE
#define DLP_PIECE (64u << 10)
#endif

/* Bytes of history a stream keeps for confirmers and excerpts. */
#define DLP_WINDOW 4096

/* A compiled rule: the spec's strings copied and checked. */
struct dlp_rule {
	char name[DLP_NAME_MAX];
	enum dlp_severity severity;
	enum dlp_kind kind;
	enum dlp_action action;
	const struct dlp_builtin *bi; /* DLP_KIND_BUILTIN */
	uint64_t min_size, max_size;
	char **globs;
	size_t nglobs;
	unsigned char magic[DLP_MAGIC_MAX];
	size_t magic_len;
	char **argv;  /* DLP_KIND_HOOK, program; NULL-terminated */
	char *socket; /* DLP_KIND_HOOK, unix socket */
	int timeout_ms;
	enum dlp_action on_error;
};

/* A set of bytes, bit c of w[c / 64] for byte c. */
struct dlp_bset {
	uint64_t w[4];
};

bool dlp_bset_has(const struct dlp_bset *b, unsigned c);

/* Longest leading class sequence a prefilter checks. */
#define DLP_PREFIX_MAX 32
/* Widest match of a rule run on prefiltered runs only (see dlp_fast.c). */
#define DLP_CLASS_WIDTH_MAX 1024

/* dlp_classify.c: what the prefilter of a class-only pattern looks for. */
struct dlp_class_rule {
	struct dlp_bset all; /* every byte of a match is in it */
	struct dlp_bset pre[DLP_PREFIX_MAX]; /* byte i of a match in pre[i] */
	unsigned plen;
};

int dlp_classify(const char *pattern, struct dlp_class_rule *out);

/* A byte set as ranges, the form SIMD compares test cheaply. */
#define DLP_RANGES_MAX 4
struct dlp_ranges {
	unsigned n;
	unsigned char lo[DLP_RANGES_MAX], hi[DLP_RANGES_MAX];
};

#define DLP_PROBES_MAX 5

/* A prefix position's class as byte ranges [lo, lo + span], each byte
 * repeated 64 times: vector operands that need no broadcast. */
struct dlp_vtest {
	unsigned char pos, n;
	unsigned char lo[DLP_RANGES_MAX][64], span[DLP_RANGES_MAX][64];
};

/*
 * A class-only rule's prefilter.  Probes test whole blocks against two
 * masks every rule shares, digits and capitals: probe i requires the byte
 * at position probe_pos[i] of a match to be in (or, negated, outside) the
 * union of the masks in probe_kind[i].  Where they hold, pos[] checks the
 * whole prefix byte by byte.
 */
struct dlp_prefilter {
	unsigned id;
	unsigned plen;
	unsigned nprobe;
	unsigned char probe_pos[DLP_PROBES_MAX];
	unsigned char probe_kind[DLP_PROBES_MAX];
	/* the probes as selectors: digits, capitals, negate; and shift */
	uint64_t dsel[DLP_PROBES_MAX], usel[DLP_PROBES_MAX];
	uint64_t nsel[DLP_PROBES_MAX], shift[DLP_PROBES_MAX];
	uint32_t pos[256]; /* bit j: the byte may stand at position j */
	/* the wide-vector test (dlp_vec.c): the positions worth a compare,
	 * rarest class first; vexact: the tests are the classes, so no
	 * byte-by-byte check is needed */
	struct dlp_vtest vt[DLP_PREFIX_MAX];
	unsigned nvec;
	bool vexact;
};

/*
 * dlp_vec.c.  The level is the widest the CPU has, or what
 * OCCFS_DLP_SIMD (portable, avx2, avx512) asks for if the CPU has it; it is
 * read when an engine is built, so tests can run every path.
 */
enum dlp_vec_level { DLP_VEC_NONE, DLP_VEC_AVX2, DLP_VEC_AVX512 };
void dlp_vec_setup(struct dlp_prefilter *p, const struct dlp_class_rule *cr);
/* One bit per byte of p[0, 64): is it in the ranges?  (AVX-512BW, AVX2) */
uint64_t dlp_vec_mask512(const struct dlp_ranges *r, const unsigned char *p);
uint64_t dlp_vec_mask256(const struct dlp_ranges *r, const unsigned char *p);
enum dlp_vec_level dlp_vec_level(void);
/* Class rules the wide-vector test takes (more: the portable path). */
#define DLP_VEC_RULES_MAX 64
struct dlp_fast;

/* Per stream and class rule: the order of its tests, and the samples the
 * next order is chosen from (dlp_vec.c). */
#define DLP_VEC_SAMPLES 16
struct dlp_vec_rule {
	unsigned char ord[DLP_PREFIX_MAX];
	unsigned nsamp, nbatch;
	unsigned nchanged; /* reorders that changed the order (tests) */
	uint64_t samp[DLP_VEC_SAMPLES][DLP_PREFIX_MAX];
};

void dlp_vec_rule_init(const struct dlp_prefilter *p, struct dlp_vec_rule *vr);
/*
 * n consecutive blocks, the first at p + 64 (p[0, 64) the block before it):
 * out[r * n + j] bit i, rule r's prefix may end at byte i of block j.
 * Rules with skip[r] get 0.
 */
void dlp_vec_batch(const struct dlp_fast *f, struct dlp_vec_rule *vr,
		   const unsigned char *p, unsigned n, const uint8_t *skip,
		   uint64_t *out);
/* Blocks a batch covers at most. */
#ifndef DLP_VEC_BATCH
#define DLP_VEC_BATCH 256
#endif

/*
 * The fast paths (dlp_fast.c).  card: rule indexes of card_number rules,
 * found by a digit-run scan instead of Vectorscan.  pf: class-only custom
 * rules, compiled into cls_db and fed only the runs of uni bytes that
 * contain a position where some rule's prefix holds; pad is a byte outside
 * uni, written between runs.
 */
struct dlp_fast {
	struct dlp_bset unib;
	bool uni[256];
	struct dlp_prefilter *pf;
	unsigned npf;
	unsigned char pad;
	enum dlp_vec_level vec;	     /* the prefix test's path (dlp_vec.c) */
	enum dlp_vec_level mask_vec; /* how blocks' masks are computed */
	unsigned *card;
	unsigned ncard;
	hs_database_t *cls_db; /* streaming; NULL when no class rules */
};

int dlp_fast_add_class(struct dlp_fast *f, unsigned id,
		       const struct dlp_class_rule *cr);
int dlp_fast_add_card(struct dlp_fast *f, unsigned id);
void dlp_fast_cleanup(struct dlp_fast *f);

/*
 * Immutable after dlp_engine_new.  Vectorscan ids are rule indexes.  som is
 * a block-mode copy of the patterns with SOM_LEFTMOST, used only to find
 * where a reported match starts (findings are rare, so the cost of a rescan
 * of the window does not matter); patterns SOM cannot handle are left out
 * of it and their findings get an approximate start.
 */
struct dlp_engine {
	struct dlp_rule *rules;
	size_t nrules;
	hs_database_t *db;     /* streaming; NULL when no pattern rules */
	hs_database_t *som;    /* block, SOM; NULL when none compiled */
	hs_scratch_t *scratch; /* prototype that streams clone */
	bool has_hooks;
	bool plain; /* every pattern rule in db: the reference path */
	struct dlp_fast fast;
};

/*
 * dlp_engine_new with a choice of path: plain puts every pattern rule,
 * card numbers included, in the one streaming database (the reference the
 * fast paths are tested against).
 */
struct dlp_engine *dlp_engine_build(const struct dlp_rule_spec *specs, size_t n,
				    bool plain, char *err, size_t errlen);

/* Set masks of the block being examined and the one before it. */
struct blockmasks {
	const unsigned char *p; /* 128 bytes: the block before, the block */
	int vec;		/* enum dlp_vec_level: how to compute them */
	uint64_t have_prev, have_cur;
	uint64_t prev[4], cur[4];
};

/* Per-stream state of the fast paths (see dlp_fast.c). */
struct dlp_fast_state {
	hs_stream_t *hs;     /* over cls_db, fed selected runs only */
	uint64_t blk;	     /* next 64-byte block to examine */
	bool feeding;	     /* a run is open and being fed */
	uint64_t checked;    /* its bytes before this are in the union */
	uint64_t fed_end;    /* bytes before this were fed or need not be */
	uint64_t last_break; /* a byte outside the union, or 0 */
	uint64_t feed_pos;   /* next byte to feed hs, while feeding */
	uint64_t comp_pos;   /* bytes fed to hs so far */
	int64_t delta;	     /* file offset - hs offset, current run */
	uint64_t prev_c;     /* card: digit-run mask of the block before */
	uint64_t prev_d;     /* card: its digit mask */
	struct blockmasks bm;
	uint64_t *vends; /* npf x DLP_VEC_BATCH: a batch's prefix ends */
	struct dlp_vec_rule *vr;  /* npf */
	bool vsum[DLP_VEC_BATCH]; /* block j: some rule's prefix ends */
	uint64_t vbase;		  /* file offset of the batch's first block */
	unsigned vn;		  /* blocks in it */
	unsigned char blkbuf[128];
	unsigned char tmp[DLP_WINDOW];
};

struct dlp_stream {
	const struct dlp_engine *e;
	char *name;
	hs_stream_t *hs;
	hs_scratch_t *scratch;	   /* for the stream databases */
	hs_scratch_t *som_scratch; /* for rescans inside a match callback */
	uint64_t pos;		   /* bytes fed so far */
	unsigned char ring[DLP_WINDOW]; /* byte at offset p: ring[p % W] */
	unsigned char win[DLP_WINDOW];	/* the window being examined */
	unsigned char head[DLP_MAGIC_MAX];
	size_t headlen;
	const unsigned char *cur; /* the write being scanned, at cur_base */
	uint64_t cur_base;
	size_t cur_len;
	bool *active; /* rule's name condition holds */
	bool *hit;    /* rule has a finding in found[] */
	struct dlp_finding *found;
	struct dlp_fast_state *fs; /* NULL without fast paths */
	int src_fd;		   /* plaintext for hooks, or -1 */
	bool own_src;		   /* src_fd is our spool */
	bool need_src;		   /* some hook may run */
	bool started;		   /* a byte was written */
	int err;		   /* sticky failure */
};

/*
 * dlp_stream.c: bytes [to - n, to) of the file (fewer at its start) from
 * the ring and the current write into out; returns how many.  to must not
 * lie beyond the current write, nor n bytes reach before the ring.
 */
size_t dlp_stream_bytes(const struct dlp_stream *s, uint64_t to,
			unsigned char *out, size_t n);
/* A match of rule id ending at file offset to: confirm and record it. */
void dlp_stream_hit(struct dlp_stream *s, unsigned id, uint64_t to);

/* dlp_fast.c: the stream side of the fast paths. */
int dlp_fast_open(struct dlp_stream *s);
int dlp_fast_write(struct dlp_stream *s);
int dlp_fast_finish(struct dlp_stream *s);
void dlp_fast_close(struct dlp_stream *s);

/* dlp_engine.c: does rule r apply to this name / size / first bytes? */
bool dlp_rule_name_ok(const struct dlp_rule *r, const char *name);
bool dlp_rule_size_ok(const struct dlp_rule *r, uint64_t size);
bool dlp_rule_magic_ok(const struct dlp_rule *r, const unsigned char *head,
		       size_t headlen);

/*
 * dlp_hook.c: run hook rule r on the plaintext (fd, bytes [0, size)).
 * Returns DLP_ALLOW or DLP_BLOCK; reason gets the hook's reason or, when the
 * hook failed and on_error decided, what went wrong.
 */
enum dlp_action dlp_hook_run(const struct dlp_rule *r, const char *name, int fd,
			     uint64_t size, char *reason, size_t reasonlen);

#endif
