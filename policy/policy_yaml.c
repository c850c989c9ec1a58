/*
 * policy_yaml.c - libyaml events into a small, bounded tree of maps,
 * sequences and scalars, each node keeping its file, line and column.
 *
 * Policy files come from operators, but a checker must survive anything:
 * aliases are refused outright (no "billion laughs"), nesting, node count
 * and input size are capped, keys must be scalars and may not repeat, and
 * a stream holds at most one document.  Nothing of libyaml leaves here.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "policy_int.h"

struct frame {
	struct pnode *node;
	struct pnode **kids; /* heap while open; copied to the arena at end */
	size_t n, cap;
	int skip; /* map: drop the next value (its key was refused) */
};

struct builder {
	struct parena *a;
	const char *file;
	const char *buf;
	size_t len;
	struct policy_problems *probs;
	struct frame stack[POLICY_MAX_DEPTH + 1];
	int depth;
	size_t nodes;
	struct pnode *root;
	int ndocs;
	unsigned nerr; /* problems that did not stop the parse */
};

static void yerr(struct builder *b, const yaml_mark_t *m, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void yerr(struct builder *b, const yaml_mark_t *m, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	pproblem_add(b->probs, b->file, m ? (unsigned)m->line + 1 : 0,
		     m ? (unsigned)m->column + 1 : 0, fmt, ap);
	va_end(ap);
}

static struct pnode *node_new(struct builder *b, enum pnode_type t,
			      const yaml_event_t *ev)
{
	struct pnode *n;

	if (++b->nodes > POLICY_MAX_NODES) {
		yerr(b, &ev->start_mark, "more than %u YAML nodes in one file",
		     POLICY_MAX_NODES);
		return NULL;
	}
	n = parena_alloc(b->a, sizeof(*n));
	if (!n) {
		yerr(b, NULL, "out of memory");
		return NULL;
	}
	n->type = t;
	n->file = b->file;
	n->line = (unsigned)ev->start_mark.line + 1;
	n->col = (unsigned)ev->start_mark.column + 1;
	n->end_line = (unsigned)ev->end_mark.line + 1;
	n->simple = -1;
	return n;
}

/* Is the scalar's source text its value (plain or quoted without escapes)?
 * Then a byte offset in the value is a column offset in the file. */
static int scalar_offset(const struct builder *b, const yaml_event_t *ev,
			 const char *v, size_t len)
{
	size_t s = ev->start_mark.index, e = ev->end_mark.index;

	if (ev->start_mark.line != ev->end_mark.line || e > b->len || s > e)
		return -1;
	if (e - s == len && memcmp(b->buf + s, v, len) == 0)
		return 0;
	if (e - s == len + 2 && memcmp(b->buf + s + 1, v, len) == 0)
		return 1;
	return -1;
}

/*
 * Hand a finished node to the open collection (or make it the root).  A
 * key that is not a scalar or repeats is reported and dropped with its
 * value, so the rest of the file is still checked.
 */
static int attach(struct builder *b, struct pnode *n)
{
	struct frame *f;
	struct pnode **kids;
	size_t i;

	if (b->depth == 0) {
		b->root = n;
		return 0;
	}
	f = &b->stack[b->depth - 1];
	if (f->skip) {
		f->skip = 0;
		return 0;
	}
	if (f->node->type == PN_MAP && f->n % 2 == 0) {
		if (n->type != PN_SCALAR) {
			pproblem_add_at(b->probs, n,
					"a key must be a scalar, not %s",
					pnode_kind(n));
			b->nerr++;
			f->skip = 1;
			return 0;
		}
		for (i = 0; i < f->n; i += 2) {
			if (strcmp(f->kids[i]->str, n->str) == 0) {
				pproblem_add_at(b->probs, n,
						"duplicate key '%s' (first at "
						"line %u, column %u)",
						n->str, f->kids[i]->line,
						f->kids[i]->col);
				b->nerr++;
				f->skip = 1;
				return 0;
			}
		}
	}
	if (f->n == f->cap) {
		size_t cap = f->cap ? f->cap * 2 : 8;

		kids = realloc(f->kids, cap * sizeof(*kids));
		if (!kids)
			return -ENOMEM;
		f->kids = kids;
		f->cap = cap;
	}
	f->kids[f->n++] = n;
	return 0;
}

static int open_collection(struct builder *b, const yaml_event_t *ev,
			   enum pnode_type t)
{
	struct pnode *n;

	if (b->depth >= POLICY_MAX_DEPTH) {
		yerr(b, &ev->start_mark, "nesting deeper than %d levels",
		     POLICY_MAX_DEPTH);
		return -EINVAL;
	}
	n = node_new(b, t, ev);
	if (!n)
		return -EINVAL;
	b->stack[b->depth++] = (struct frame){.node = n};
	return 0;
}

static int close_collection(struct builder *b)
{
	struct frame *f = &b->stack[b->depth - 1];
	struct pnode *n = f->node;
	int rc = 0;

	if (f->n) {
		n->kids = parena_alloc(b->a, f->n * sizeof(*n->kids));
		if (!n->kids) {
			rc = -ENOMEM;
			goto out;
		}
		memcpy(n->kids, f->kids, f->n * sizeof(*n->kids));
	}
	n->n = n->type == PN_MAP ? f->n / 2 : f->n;
	b->depth--;
	rc = attach(b, n);
out:
	free(f->kids);
	f->kids = NULL;
	return rc;
}

static int on_scalar(struct builder *b, const yaml_event_t *ev)
{
	const char *v = (const char *)ev->data.scalar.value;
	size_t len = ev->data.scalar.length;
	struct pnode *n;

	if (memchr(v, '\0', len)) {
		yerr(b, &ev->start_mark, "a NUL character in a scalar");
		return -EINVAL;
	}
	n = node_new(b, PN_SCALAR, ev);
	if (!n)
		return -EINVAL;
	n->str = parena_alloc(b->a, len + 1);
	if (!n->str)
		return -ENOMEM;
	memcpy(n->str, v, len);
	n->len = len;
	n->simple = scalar_offset(b, ev, v, len);
	return attach(b, n);
}

/* One event; 1 at the end of the stream, 0 to go on, -errno to stop. */
static int on_event(struct builder *b, const yaml_event_t *ev)
{
	switch (ev->type) {
	case YAML_STREAM_START_EVENT:
	case YAML_DOCUMENT_END_EVENT:
	case YAML_NO_EVENT:
		return 0;
	case YAML_STREAM_END_EVENT:
		return 1;
	case YAML_DOCUMENT_START_EVENT:
		if (++b->ndocs > 1) {
			yerr(b, &ev->start_mark,
			     "more than one YAML document in a file");
			return -EINVAL;
		}
		return 0;
	case YAML_ALIAS_EVENT:
		yerr(b, &ev->start_mark,
		     "aliases (*name) are not allowed in policy files");
		return -EINVAL;
	case YAML_SCALAR_EVENT:
		return on_scalar(b, ev);
	case YAML_SEQUENCE_START_EVENT:
		return open_collection(b, ev, PN_SEQ);
	case YAML_MAPPING_START_EVENT:
		return open_collection(b, ev, PN_MAP);
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT:
		return close_collection(b);
	}
	return 0;
}

static void parser_error(struct builder *b, const yaml_parser_t *p)
{
	const char *what = p->problem ? p->problem : "cannot parse";

	if (p->error == YAML_MEMORY_ERROR)
		yerr(b, NULL, "out of memory");
	else if (p->context)
		yerr(b, &p->problem_mark, "%s %s", what, p->context);
	else
		yerr(b, &p->problem_mark, "%s", what);
}

struct pnode *pyaml_parse(struct parena *a, const char *file, const char *buf,
			  size_t len, struct policy_problems *probs,
			  unsigned *nerr)
{
	struct builder b = {
	    .a = a, .file = file, .buf = buf, .len = len, .probs = probs};
	yaml_parser_t p;
	yaml_event_t ev;
	int rc = 0;

	if (len > POLICY_MAX_FILE_BYTES) {
		yerr(&b, NULL, "larger than %u bytes", POLICY_MAX_FILE_BYTES);
		return NULL;
	}
	if (!yaml_parser_initialize(&p)) {
		yerr(&b, NULL, "out of memory");
		return NULL;
	}
	yaml_parser_set_input_string(&p, (const unsigned char *)buf, len);
	while (rc == 0) {
		if (!yaml_parser_parse(&p, &ev)) {
			parser_error(&b, &p);
			rc = -EINVAL;
			break;
		}
		rc = on_event(&b, &ev);
		yaml_event_delete(&ev);
	}
	if (rc == -ENOMEM)
		yerr(&b, NULL, "out of memory");
	while (b.depth > 0)
		free(b.stack[--b.depth].kids);
	yaml_parser_delete(&p);
	*nerr = b.nerr;
	if (rc < 0)
		return NULL;
	if (!b.root) {
		/* An empty file (or only comments) holds no section. */
		b.root = parena_alloc(a, sizeof(*b.root));
		if (!b.root)
			return NULL;
		*b.root = (struct pnode){
		    .type = PN_MAP, .file = file, .line = 1, .col = 1};
	}
	return b.root;
}
