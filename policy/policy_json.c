/*
 * policy_json.c - the effective policy (defaults filled in) as JSON, for
 * `occfs-policy show`, operators and tests.  Sizes are bytes, durations
 * seconds (a fraction only when not whole), secrets appear as their paths.
 */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "policy_int.h"

static int put(json_t *o, const char *k, json_t *v)
{
	return json_object_set_new(o, k, v ? v : json_null());
}

static json_t *jstr(const char *s)
{
	return s ? json_string(s) : json_null();
}

static json_t *jsecs(uint64_t ms)
{
	if (ms % 1000 == 0)
		return json_integer((json_int_t)(ms / 1000));
	return json_real((double)ms / 1000.0);
}

static json_t *jsize(uint64_t v)
{
	return json_integer((json_int_t)v);
}

static json_t *jstrv(const char *const *v)
{
	json_t *a;

	if (!v)
		return json_null();
	a = json_array();
	for (; a && *v; v++)
		json_array_append_new(a, json_string(*v));
	return a;
}

static json_t *fs_json(const struct policy_fs *f)
{
	static const char *const in[] = {"read", "write", "preview"};
	const struct policy_s3 *s = &f->s3;
	json_t *o = json_object(), *b = json_object(), *a = json_array();
	int i;

	put(o, "name", json_string(f->name));
	put(o, "pattern", json_boolean(f->is_pattern));
	if (f->backend == POLICY_BACKEND_LOCAL) {
		put(b, "root", jstr(f->local_root));
		put(o, "local", b);
	} else {
		put(b, "endpoint", jstr(s->endpoint));
		put(b, "region", jstr(s->region));
		put(b, "bucket", jstr(s->bucket));
		put(b, "prefix", jstr(s->prefix));
		put(b, "addressing", jstr(s->addressing));
		put(b, "ca_file", jstr(s->ca_file));
		put(b, "credentials_file", jstr(s->credentials_file));
		put(b, "sts_endpoint", jstr(s->sts_endpoint));
		put(b, "role_arn", jstr(s->role_arn));
		put(b, "proxy", jstr(s->proxy));
		put(b, "memory", jsize(s->memory_bytes));
		put(b, "part_size", jsize(s->part_bytes));
		put(b, "upload_threads", json_integer(s->upload_threads));
		put(b, "retry_budget", jsecs(s->retry_budget_ms));
		put(b, "rgw_quirks", json_boolean(s->rgw_quirks));
		put(o, "s3", b);
	}
	for (i = 0; i < 3; i++)
		if (f->intents & (1u << i))
			json_array_append_new(a, json_string(in[i]));
	put(o, "intents", a);
	put(o, "quota",
	    json_pack("{s:o,s:o}", "bytes", jsize(f->quota_bytes), "inodes",
		      jsize(f->quota_inodes)));
	put(o, "session",
	    json_pack("{s:o,s:o,s:o}", "ttl", jsecs(f->ttl_ms), "idle_timeout",
		      jsecs(f->idle_timeout_ms), "max_lifetime",
		      jsecs(f->max_lifetime_ms)));
	return o;
}

static json_t *rule_json(const struct policy_dlp_rule *r)
{
	static const char *const kinds[] = {"builtin", "regex", "hook"};
	json_t *o = json_object();

	put(o, "name", json_string(r->name));
	put(o, "severity", json_string(policy_severity_name(r->severity)));
	put(o, "kind", json_string(kinds[r->kind]));
	if (r->kind == POLICY_DLP_BUILTIN)
		put(o, "builtin", jstr(r->builtin));
	else if (r->kind == POLICY_DLP_REGEX)
		put(o, "regex", jstr(r->regex));
	else
		put(o, "hook",
		    json_pack("{s:o,s:o,s:o,s:s}", "program",
			      jstr(r->hook_program), "socket",
			      jstr(r->hook_socket), "timeout",
			      jsecs(r->hook_timeout_ms), "on_error",
			      policy_action_name(r->on_error)));
	put(o, "min_size", jsize(r->min_size));
	put(o, "max_size", jsize(r->max_size));
	put(o, "files", jstrv(r->files));
	put(o, "action", json_string(policy_action_name(r->action)));
	return o;
}

static json_t *audit_json(const struct policy_audit *a)
{
	static const char *const full[] = {"drop_new", "drop_oldest", "block"};
	json_t *o = json_object(), *s = json_object();
	size_t i;

	put(o, "socket", jstr(a->socket));
	put(o, "spool_dir", jstr(a->spool_dir));
	put(o, "spool_max_bytes", jsize(a->spool_max_bytes));
	put(o, "on_full", json_string(full[a->on_full]));
	put(o, "log_dir", jstr(a->log_dir));
	put(o, "segment_max_bytes", jsize(a->segment_max_bytes));
	for (i = 0; i < a->nsampling; i++)
		put(s, a->sampling[i].op, json_integer(a->sampling[i].one_in));
	put(o, "sampling", s);
	return o;
}

static json_t *policy_json_obj(const struct policy *p)
{
	json_t *o = json_object(), *a;
	size_t i;

	put(o, "files", json_integer((json_int_t)p->nfiles));
	a = json_array();
	for (i = 0; i < p->nfs; i++)
		json_array_append_new(a, fs_json(&p->fs[i]));
	put(o, "filesystems", a);
	put(o, "tokens",
	    json_pack("{s:o,s:o,s:o,s:o}", "public_key",
		      jstr(p->tokens.public_key), "private_key",
		      jstr(p->tokens.private_key), "audience",
		      jstr(p->tokens.audience), "max_ttl",
		      jsecs(p->tokens.max_ttl_ms)));
	a = json_array();
	for (i = 0; i < p->dlp.nrules; i++)
		json_array_append_new(a, rule_json(&p->dlp.rules[i]));
	put(o, "dlp",
	    json_pack("{s:s,s:o}", "mode",
		      p->dlp.mode == POLICY_DLP_STRICT ? "strict" : "visible",
		      "rules", a));
	a = json_array();
	for (i = 0; i < p->negress; i++) {
		char buf[300];

		const char *h = p->egress[i].host;
		int v6 = strchr(h, ':') != NULL;

		if (p->egress[i].port)
			snprintf(buf, sizeof(buf), "%s%s%s:%u", v6 ? "[" : "",
				 h, v6 ? "]" : "", p->egress[i].port);
		else
			snprintf(buf, sizeof(buf), "%s%s%s:*", v6 ? "[" : "", h,
				 v6 ? "]" : "");
		json_array_append_new(a, json_string(buf));
	}
	put(o, "egress", p->egress_set ? json_pack("{s:o}", "allow", a) : NULL);
	if (!p->egress_set)
		json_decref(a);
	a = json_array();
	for (i = 0; i < p->ncustody; i++)
		json_array_append_new(
		    a,
		    json_pack("{s:s,s:s,s:o,s:o}", "name", p->custody[i].name,
			      "secret_file", p->custody[i].secret_file,
			      "lease_ttl", jsecs(p->custody[i].lease_ttl_ms),
			      "consumers", jstrv(p->custody[i].consumers)));
	put(o, "custody", a);
	put(o, "audit", audit_json(&p->audit));
	a = json_array();
	for (i = 0; i < p->nop_uids; i++)
		json_array_append_new(a, json_integer(p->op_uids[i]));
	put(o, "operators", json_pack("{s:o,s:[]}", "uids", a, "gids"));
	a = json_object_get(json_object_get(o, "operators"), "gids");
	for (i = 0; a && i < p->nop_gids; i++)
		json_array_append_new(a, json_integer(p->op_gids[i]));
	return o;
}

char *policy_json(const struct policy *pol)
{
	json_t *o = policy_json_obj(pol);
	char *s;

	if (!o) {
		errno = ENOMEM;
		return NULL;
	}
	s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(o);
	if (!s)
		errno = ENOMEM;
	return s;
}
