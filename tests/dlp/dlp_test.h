/*
 * dlp_test.h - helpers the DLP scanner tests share: an engine of every
 * built-in detector, a scan in chosen chunks, a finding by rule name.
 */
#ifndef OCCFS_DLP_TEST_H
#define OCCFS_DLP_TEST_H

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../unit/unit.h"
#include "dlp.h"

static inline struct dlp_engine *builtins_engine(enum dlp_action action)
{
	struct dlp_rule_spec specs[32];
	char err[256];
	size_t n = 0;
	const char *d;

	while ((d = dlp_builtin_name(n)) != NULL) {
		specs[n] = (struct dlp_rule_spec){
		    .name = d,
		    .severity = DLP_SEV_HIGH,
		    .kind = DLP_KIND_BUILTIN,
		    .detector = d,
		    .action = action,
		};
		n++;
	}
	struct dlp_engine *e = dlp_engine_new(specs, n, err, sizeof(err));

	if (!e)
		fprintf(stderr, "engine: %s\n", err);
	return e;
}

/* Feed data in pieces of step bytes (0: one write, first split at split). */
static inline int scan(const struct dlp_engine *e, const char *name,
		       const void *data, size_t len, size_t split, size_t step,
		       struct dlp_verdict *v)
{
	struct dlp_stream *s = dlp_stream_open(e, name, -1);
	const char *p = data;
	int ret = 0;

	if (!s)
		return -errno;
	if (step == 0) {
		ret = dlp_stream_write(s, p, split);
		if (!ret)
			ret = dlp_stream_write(s, p + split, len - split);
	} else {
		for (size_t o = 0; o < len && !ret; o += step)
			ret = dlp_stream_write(s, p + o,
					       len - o < step ? len - o : step);
	}
	if (!ret)
		ret = dlp_stream_finish(s, v);
	dlp_stream_free(s);
	return ret;
}

static inline const struct dlp_finding *find(const struct dlp_verdict *v,
					     const char *rule)
{
	for (size_t i = 0; i < v->nfindings; i++)
		if (strcmp(v->findings[i].rule, rule) == 0)
			return &v->findings[i];
	return NULL;
}

#endif
