/*
 * policy_lookup.c - what daemons ask a loaded policy (the filesystem of a
 * filesystem_id, whether the edge may reach host:port, ...) and the
 * reference counting that lets a reload swap policies under running
 * requests.
 */
#include <errno.h>
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "policy_int.h"

struct policy *policy_ref(struct policy *pol)
{
	if (pol)
		__atomic_add_fetch(&pol->refs, 1, __ATOMIC_RELAXED);
	return pol;
}

void policy_unref(struct policy *pol)
{
	if (!pol)
		return;
	if (__atomic_sub_fetch(&pol->refs, 1, __ATOMIC_ACQ_REL) == 0)
		parena_free(pol->arena); /* the policy lives in its arena */
}

void policy_handle_init(struct policy_handle *h, struct policy *pol)
{
	pthread_mutex_init(&h->lock, NULL);
	h->cur = pol;
}

struct policy *policy_handle_get(struct policy_handle *h)
{
	struct policy *p;

	/* The lock orders the read of cur with the swap's unref: a reader
	 * never takes a reference on a policy already being freed. */
	pthread_mutex_lock(&h->lock);
	p = policy_ref(h->cur);
	pthread_mutex_unlock(&h->lock);
	return p;
}

void policy_handle_swap(struct policy_handle *h, struct policy *pol)
{
	struct policy *old;

	pthread_mutex_lock(&h->lock);
	old = h->cur;
	h->cur = pol;
	pthread_mutex_unlock(&h->lock);
	policy_unref(old);
}

void policy_handle_cleanup(struct policy_handle *h)
{
	policy_unref(h->cur);
	h->cur = NULL;
	pthread_mutex_destroy(&h->lock);
}

int policy_handle_reload(struct policy_handle *h, const char *dir,
			 const struct policy_opts *opts,
			 struct policy_problems *probs)
{
	struct policy *p = policy_load(dir, opts, probs);

	if (!p)
		return -errno;
	policy_handle_swap(h, p);
	return 0;
}

const struct policy_fs *policy_fs_find(const struct policy *pol,
				       const char *fsid)
{
	size_t i;

	for (i = 0; i < pol->nfs; i++)
		if (!pol->fs[i].is_pattern &&
		    strcmp(pol->fs[i].name, fsid) == 0)
			return &pol->fs[i];
	for (i = 0; i < pol->nfs; i++)
		if (pol->fs[i].is_pattern &&
		    fnmatch(pol->fs[i].name, fsid, FNM_PERIOD) == 0)
			return &pol->fs[i];
	errno = ENOENT;
	return NULL;
}

int policy_fs_allows_intent(const struct policy_fs *fs, const char *intent)
{
	static const char *const names[] = {"read", "write", "preview"};
	int i;

	for (i = 0; i < 3; i++)
		if (strcmp(intent, names[i]) == 0)
			return !!(fs->intents & (1u << i));
	return 0;
}

int policy_egress_match(const struct policy_egress_entry *e, const char *host,
			unsigned port)
{
	size_t hl = strlen(host), sl;

	if (e->port && e->port != port)
		return 0;
	if (e->host[0] != '*')
		return strcasecmp(e->host, host) == 0;
	/* "*.example.com": one or more labels before ".example.com". */
	sl = strlen(e->host + 1);
	return hl > sl && strcasecmp(host + hl - sl, e->host + 1) == 0 &&
	       host[0] != '.';
}

int policy_egress_allowed(const struct policy *pol, const char *host,
			  unsigned port)
{
	size_t i;

	if (!host || !*host || port == 0 || port > 65535)
		return 0;
	for (i = 0; i < pol->negress; i++)
		if (policy_egress_match(&pol->egress[i], host, port))
			return 1;
	return 0;
}

const struct policy_custody *policy_custody_find(const struct policy *pol,
						 const char *name)
{
	size_t i;

	for (i = 0; i < pol->ncustody; i++)
		if (strcmp(pol->custody[i].name, name) == 0)
			return &pol->custody[i];
	errno = ENOENT;
	return NULL;
}

const struct policy_dlp_rule *policy_dlp_rule_find(const struct policy *pol,
						   const char *name)
{
	size_t i;

	for (i = 0; i < pol->dlp.nrules; i++)
		if (strcmp(pol->dlp.rules[i].name, name) == 0)
			return &pol->dlp.rules[i];
	errno = ENOENT;
	return NULL;
}

int policy_operator_allowed(const struct policy *pol, uid_t uid, gid_t gid)
{
	size_t i;

	for (i = 0; i < pol->nop_uids; i++)
		if (pol->op_uids[i] == uid)
			return 1;
	for (i = 0; i < pol->nop_gids; i++)
		if (pol->op_gids[i] == gid)
			return 1;
	return 0;
}

unsigned policy_audit_sample(const struct policy *pol, const char *op)
{
	size_t i;

	for (i = 0; i < pol->audit.nsampling; i++)
		if (strcmp(pol->audit.sampling[i].op, op) == 0)
			return pol->audit.sampling[i].one_in;
	return 1;
}
