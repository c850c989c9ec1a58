/*
 * policy_int.h - what the policy loader's files share: an arena that owns
 * a loaded policy, the bounded YAML tree the parser builds, and the typed
 * value readers that report "file:line:column: message" problems.
 */
#ifndef OCCFS_POLICY_INT_H
#define OCCFS_POLICY_INT_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "policy.h"

/* Bounds on what one policy directory may hold: hostile input stays small. */
#define POLICY_MAX_FILE_BYTES (1u << 20)
#define POLICY_MAX_FILES 256
#define POLICY_MAX_DEPTH 32
#define POLICY_MAX_NODES 100000 /* per file */

/* ---- arena (policy_value.c) ------------------------------------------------
 */

struct parena;
struct parena *parena_new(void);
void parena_free(struct parena *a);
void *parena_alloc(struct parena *a, size_t n); /* zeroed; NULL on ENOMEM */
char *parena_strdup(struct parena *a, const char *s);

/* ---- YAML tree (policy_yaml.c) --------------------------------------------
 */

enum pnode_type { PN_SCALAR, PN_MAP, PN_SEQ };

struct pnode {
	enum pnode_type type;
	const char *file;
	unsigned line, col; /* 1-based, where the node starts */
	unsigned end_line;
	int simple; /* scalar: its source text is exactly str (column math) */
	char *str;  /* scalar: NUL-terminated */
	size_t len;
	struct pnode **kids; /* map: key, value, key, value...; seq: items */
	size_t n;	     /* map: pairs; seq: items */
};

/*
 * Parse one YAML document into a tree allocated in a.  NULL (with the
 * problem reported) when the text is not acceptable: syntax errors,
 * aliases, more than one document, past the bounds above.  An empty
 * document gives an empty map.  Repeated or non-scalar keys are reported,
 * counted in *nerr and left out of the tree.
 */
struct pnode *pyaml_parse(struct parena *a, const char *file, const char *buf,
			  size_t len, struct policy_problems *probs,
			  unsigned *nerr);

/* ---- loading context (policy_load.c) ---------------------------------------
 */

struct plist {
	void **v;
	size_t n, cap;
};
int plist_add(struct plist *l, void *p);

/* A setting that may be made once across all files, and where it was. */
struct pset {
	const char *key;
	const struct pnode *at;
};

struct pctx {
	struct parena *a;    /* the policy's arena */
	struct parena *tree; /* the YAML trees, freed after loading */
	const struct policy_opts *opts;
	struct policy_problems *probs;
	int nerr;
	int sys_err; /* the directory could not be read: its errno */
	struct policy *pol;
	struct plist fs, rules, egress, custody, sampling, uids, gids;
	struct plist sets; /* struct pset */
	struct plist refs; /* struct pref: checked when all files are read */
};

/* A reference checked after every file is read, at the place it is made. */
enum pref_kind { PREF_CONSUMER, PREF_S3_EGRESS, PREF_FS_TTL };
struct pref {
	enum pref_kind kind;
	const struct pnode *at;
	const void *obj; /* consumer string, or struct policy_fs */
};

void pctx_err(struct pctx *c, const struct pnode *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int pproblem_add(struct policy_problems *probs, const char *file, unsigned line,
		 unsigned col, const char *fmt, va_list ap)
    __attribute__((format(printf, 5, 0)));
void pproblem_add_at(struct policy_problems *probs, const struct pnode *at,
		     const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* 0 the first time key is set, else reports the duplicate and -EEXIST. */
int pctx_set_once(struct pctx *c, const char *key, const struct pnode *at);

/* ---- value readers (policy_value.c) -----------------------------------------
 * Each reports its own problem (naming `what`) and returns 0 or -EINVAL.
 */

const char *pnode_kind(const struct pnode *n); /* "a mapping", ... */
struct pnode *pmap_get(const struct pnode *map, const char *key);
/* Report keys of map not in keys[] (NULL-terminated), with a suggestion. */
int pmap_known(struct pctx *c, const struct pnode *map, const char *const *keys,
	       const char *what);
int pv_map(struct pctx *c, const struct pnode *n, const char *what);
int pv_seq(struct pctx *c, const struct pnode *n, const char *what);
int pv_str(struct pctx *c, const struct pnode *n, const char *what,
	   const char **out);
int pv_path(struct pctx *c, const struct pnode *n, const char *what,
	    const char **out);
int pv_uint(struct pctx *c, const struct pnode *n, const char *what,
	    uint64_t min, uint64_t max, uint64_t *out);
int pv_size(struct pctx *c, const struct pnode *n, const char *what,
	    uint64_t *out);
int pv_duration(struct pctx *c, const struct pnode *n, const char *what,
		uint64_t *out_ms);
int pv_bool(struct pctx *c, const struct pnode *n, const char *what, int *out);
int pv_enum(struct pctx *c, const struct pnode *n, const char *what,
	    const char *const *names, int *out);
/* A list of strings into a NULL-terminated arena array. */
int pv_strlist(struct pctx *c, const struct pnode *n, const char *what,
	       const char *const **out);
/* Check a file holding a secret: exists, regular, no group/other bits. */
int pv_secret_file(struct pctx *c, const struct pnode *n, const char *what,
		   const char **out);

/* Plain parsers, also for tests: 0 or -EINVAL/-ERANGE. */
int policy_parse_size(const char *s, uint64_t *out);
int policy_parse_duration(const char *s, uint64_t *out_ms);
/*
 * "host[:port]" / "[v6]:port"; host lower-cased into host (hostlen).  No
 * port: 443 (unless port_required); port "*": 0, any port.
 */
int policy_parse_hostport(const char *s, char *host, size_t hostlen,
			  unsigned *port, int port_required);
/* Edit distance, capped: for "did you mean". */
unsigned policy_distance(const char *a, const char *b);

/* ---- sections (policy_fs.c, policy_sections.c) ------------------------------
 */

int psec_filesystems(struct pctx *c, const struct pnode *n);
int psec_tokens(struct pctx *c, const struct pnode *n);
int psec_dlp(struct pctx *c, const struct pnode *n);
int psec_egress(struct pctx *c, const struct pnode *n);
int psec_custody(struct pctx *c, const struct pnode *n);
int psec_audit(struct pctx *c, const struct pnode *n);
int psec_operators(struct pctx *c, const struct pnode *n);
/* After every file: checks that need all sections (references). */
void psec_cross_check(struct pctx *c);

/* Egress matching shared by the loader and the lookup. */
int policy_egress_match(const struct policy_egress_entry *e, const char *host,
			unsigned port);

#endif
