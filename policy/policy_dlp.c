/*
 * policy_dlp.c - the `dlp` section: the upload mode and the rules the
 * scanner runs on plaintext before upload.  Custom patterns are checked by
 * the DLP engine itself (dlp_pattern_check), so the checker and the broker
 * never disagree about what compiles; the problem's column points into the
 * pattern where the engine says it broke.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "dlp.h"
#include "policy_int.h"

const char *const policy_dlp_builtins[] = {"pem_private_key",
					   "aws_access_key_id",
					   "aws_secret_access_key",
					   "api_token",
					   "jwt",
					   "card_number",
					   NULL};

static const char *const dlp_keys[] = {"mode", "rules", NULL};
static const char *const rule_keys[] = {
    "name",	"severity", "builtin", "regex",	 "hook",
    "min_size", "max_size", "files",   "action", NULL};
static const char *const hook_keys[] = {"program", "socket", "timeout",
					"on_error", NULL};
static const char *const mode_names[] = {"strict", "visible", NULL};
static const char *const action_names[] = {"allow", "audit", "block", NULL};
static const char *const severity_names[] = {"info", "low",	 "medium",
					     "high", "critical", NULL};

const char *policy_action_name(enum policy_action a)
{
	return (unsigned)a < 3 ? action_names[a] : "?";
}

const char *policy_severity_name(enum policy_severity s)
{
	return (unsigned)s < 5 ? severity_names[s] : "?";
}

static int read_regex(struct pctx *c, const struct pnode *n,
		      struct policy_dlp_rule *r)
{
	struct pnode at;
	char err[256];
	int off = -1;

	if (pv_str(c, n, "regex", &r->regex))
		return -EINVAL;
	if (dlp_pattern_check(r->regex, err, sizeof(err), &off) == 0)
		return 0;
	at = *n;
	if (n->simple >= 0 && off >= 0 && (size_t)off <= n->len)
		at.col = n->col + (unsigned)n->simple + (unsigned)off;
	pctx_err(c, &at, "regex of rule '%s' does not compile: %s",
		 r->name ? r->name : "?", err);
	return -EINVAL;
}

static int read_hook(struct pctx *c, const struct pnode *n,
		     struct policy_dlp_rule *r)
{
	struct pnode *prog, *sock, *v;
	int rc = 0, k;

	if (pv_map(c, n, "hook"))
		return -EINVAL;
	if (pmap_known(c, n, hook_keys, "hook"))
		rc = -EINVAL;
	prog = pmap_get(n, "program");
	sock = pmap_get(n, "socket");
	if (!prog == !sock) {
		pctx_err(c, n,
			 "hook: give exactly one of 'program' or "
			 "'socket'");
		rc = -EINVAL;
	}
	if (prog && pv_path(c, prog, "hook.program", &r->hook_program))
		rc = -EINVAL;
	if (sock && pv_path(c, sock, "hook.socket", &r->hook_socket))
		rc = -EINVAL;
	r->hook_timeout_ms = 10000;
	if ((v = pmap_get(n, "timeout"))) {
		if (pv_duration(c, v, "hook.timeout", &r->hook_timeout_ms))
			rc = -EINVAL;
		else if (r->hook_timeout_ms == 0 ||
			 r->hook_timeout_ms > 600000) {
			pctx_err(c, v, "hook.timeout: from 1ms to 10m");
			rc = -EINVAL;
		}
	}
	r->on_error = POLICY_BLOCK;
	if ((v = pmap_get(n, "on_error"))) {
		static const char *const onerr[] = {"allow", "block", NULL};

		if (pv_enum(c, v, "hook.on_error", onerr, &k))
			rc = -EINVAL;
		else
			r->on_error = k ? POLICY_BLOCK : POLICY_ALLOW;
	}
	return rc;
}

/* Exactly one of builtin, regex, hook says what the rule looks for. */
static int read_kind(struct pctx *c, const struct pnode *n,
		     struct policy_dlp_rule *r)
{
	struct pnode *b = pmap_get(n, "builtin"), *re = pmap_get(n, "regex");
	struct pnode *h = pmap_get(n, "hook");
	int k;

	if (!!b + !!re + !!h != 1) {
		pctx_err(c, n,
			 "rule '%s': give exactly one of 'builtin', "
			 "'regex' or 'hook'",
			 r->name ? r->name : "?");
		return -EINVAL;
	}
	if (re) {
		r->kind = POLICY_DLP_REGEX;
		return read_regex(c, re, r);
	}
	if (h) {
		r->kind = POLICY_DLP_HOOK;
		return read_hook(c, h, r);
	}
	r->kind = POLICY_DLP_BUILTIN;
	if (pv_enum(c, b, "builtin (a detector name)", policy_dlp_builtins, &k))
		return -EINVAL;
	r->builtin = policy_dlp_builtins[k];
	return 0;
}

static int read_conditions(struct pctx *c, const struct pnode *n,
			   struct policy_dlp_rule *r)
{
	struct pnode *v;
	int rc = 0, k;

	if ((v = pmap_get(n, "min_size")) &&
	    pv_size(c, v, "min_size", &r->min_size))
		rc = -EINVAL;
	if ((v = pmap_get(n, "max_size")) &&
	    pv_size(c, v, "max_size", &r->max_size))
		rc = -EINVAL;
	if (!rc && r->max_size && r->min_size > r->max_size) {
		pctx_err(c, v, "max_size is smaller than min_size");
		rc = -EINVAL;
	}
	if ((v = pmap_get(n, "files")) &&
	    pv_strlist(c, v, "files (name globs)", &r->files))
		rc = -EINVAL;
	r->severity = POLICY_SEV_MEDIUM;
	if ((v = pmap_get(n, "severity"))) {
		if (pv_enum(c, v, "severity", severity_names, &k))
			rc = -EINVAL;
		else
			r->severity = (enum policy_severity)k;
	}
	if (!(v = pmap_get(n, "action"))) {
		pctx_err(c, n, "rule '%s': missing required key 'action'",
			 r->name ? r->name : "?");
		rc = -EINVAL;
	} else if (pv_enum(c, v, "action", action_names, &k)) {
		rc = -EINVAL;
	} else {
		r->action = (enum policy_action)k;
	}
	return rc;
}

static int read_rule(struct pctx *c, const struct pnode *n)
{
	struct policy_dlp_rule *r, *old;
	struct pnode *name;
	size_t i;
	int rc = 0;

	if (pv_map(c, n, "dlp.rules entry"))
		return -EINVAL;
	r = parena_alloc(c->a, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->src = (struct policy_src){n->file, n->line, n->col};
	if (pmap_known(c, n, rule_keys, "a dlp rule"))
		rc = -EINVAL;
	name = pmap_get(n, "name");
	if (!name) {
		pctx_err(c, n, "dlp rule: missing required key 'name'");
		rc = -EINVAL;
	} else if (pv_str(c, name, "name", &r->name)) {
		rc = -EINVAL;
		r->name = NULL;
	}
	if (read_kind(c, n, r) || read_conditions(c, n, r))
		rc = -EINVAL;
	if (!r->name)
		return -EINVAL;
	for (i = 0; i < c->rules.n; i++) {
		old = c->rules.v[i];
		if (strcmp(old->name, r->name) == 0) {
			pctx_err(c, name,
				 "duplicate dlp rule '%s' (first at "
				 "%s:%u:%u)",
				 r->name, old->src.file, old->src.line,
				 old->src.col);
			return -EINVAL;
		}
	}
	if (plist_add(&c->rules, r))
		return -ENOMEM;
	return rc;
}

int psec_dlp(struct pctx *c, const struct pnode *n)
{
	struct pnode *v;
	size_t i;
	int rc = 0, k;

	if (pv_map(c, n, "dlp"))
		return -EINVAL;
	if (pmap_known(c, n, dlp_keys, "dlp"))
		rc = -EINVAL;
	if ((v = pmap_get(n, "mode"))) {
		if (pctx_set_once(c, "dlp.mode", v) ||
		    pv_enum(c, v, "dlp.mode", mode_names, &k))
			rc = -EINVAL;
		else
			c->pol->dlp.mode = (enum policy_dlp_mode)k;
	}
	if ((v = pmap_get(n, "rules"))) {
		if (pv_seq(c, v, "dlp.rules"))
			return -EINVAL;
		for (i = 0; i < v->n; i++)
			if (read_rule(c, v->kids[i]))
				rc = -EINVAL;
	}
	return rc;
}
