/*
 * mount_opts.c - parse mountc / mount.occfs arguments (see mount_opts.h).
 *
 * Options fall in four kinds: ours (handle=, timeouts, ...), generic mount
 * flags libfuse accepts and passes to the kernel (nosuid, nodev, ...),
 * kernel flags libfuse 3 would refuse with a confusing message although
 * they are harmless to drop (relatime, lazytime, ...), and options that
 * only mean something to mount(8), systemd or fstab readers (_netdev,
 * nofail, x-*, comment=, ...).  Anything else is an error naming the
 * option, unless mount(8) asked for sloppy parsing (-s).
 *
 * Within each kind the last occurrence wins, as mount(8) users expect when
 * fstab defaults are followed by command-line overrides.
 */
#include "mount_opts.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MOUNT_OPTS_MAX_TTL (365.0 * 86400.0)
#define MOUNT_OPTS_MAX_TIMEOUT 86400.0
#define MOUNT_OPTS_MAX_THREADS 1024u

/* Generic flags handed to libfuse; group = the flag_choice slot. */
static const struct {
	const char *name;
	int group;
} mount_opts_flags[] = {
    {"suid", 0}, {"nosuid", 0}, {"dev", 1},	{"nodev", 1},
    {"exec", 2}, {"noexec", 2}, {"atime", 3},	{"noatime", 3},
    {"sync", 4}, {"async", 4},	{"dirsync", 5}, {"auto_unmount", 6},
};

/* SELinux label options, passed on with their value. */
static const char *const mount_opts_ctx[] = {"context", "fscontext",
					     "defcontext", "rootcontext"};

/* Kernel flags libfuse 3 refuses; dropping them changes nothing we need. */
static const char *const mount_opts_dropped[] = {
    "relatime",	  "norelatime", "strictatime", "nostrictatime", "diratime",
    "nodiratime", "lazytime",	"nolazytime",  "symfollow",	"iversion",
    "noiversion", "silent",	"loud",	       "mand",		"nomand",
};

/* Meaningful to mount(8), systemd or fstab readers only. */
static const char *const mount_opts_userspace[] = {
    "_netdev", "nofail", "noauto", "auto",  "user",
    "nouser",  "users",	 "owner",  "group", "defaults",
};

/* Prefixes of userspace-only options with a value. */
static const char *const mount_opts_userspace_pfx[] = {
    "comment=", "x-", "user=", "helper=", "uhelper=",
};

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

static int mount_opts_fail(char *err, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int mount_opts_fail(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (err && len) {
		va_start(ap, fmt);
		vsnprintf(err, len, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

void mount_opts_init(struct mount_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->attr_timeout = 1.0;
	o->entry_timeout = 1.0;
	o->negative_timeout = 0.0;
	o->timeout = 30.0;
	o->writeback = 1;
	o->splice = 1;
	o->default_permissions = 1;
	o->read_ahead_kb = MOUNT_OPTS_READAHEAD_KB;
	o->spin_us = MOUNT_OPTS_SPIN_US;
	o->max_dirty_ratio = -1;
}

void mount_opts_cleanup(struct mount_opts *o)
{
	size_t i;

	free(o->handle_path);
	free(o->ca_path);
	for (i = 0; i < N_ELEMS(o->context); i++)
		free(o->context[i]);
	mount_opts_init(o);
}

/* A decimal number of seconds in [lo, hi]: digits, optional fraction. */
static int mount_opts_seconds(const char *v, double lo, double hi, double *out)
{
	char *end;
	double d;

	if (!((*v >= '0' && *v <= '9') || *v == '.'))
		return -EINVAL;
	if (strpbrk(v, "xXpPeEnNiI"))
		return -EINVAL; /* no hex, exponents, nan or inf */
	errno = 0;
	d = strtod(v, &end);
	if (errno || *end || end == v || !isfinite(d) || d < lo || d > hi)
		return -EINVAL;
	*out = d;
	return 0;
}

static int mount_opts_uint(const char *v, unsigned lo, unsigned hi,
			   unsigned *out)
{
	unsigned long n;
	char *end;

	if (*v < '0' || *v > '9')
		return -EINVAL;
	errno = 0;
	n = strtoul(v, &end, 10);
	if (errno || *end || n < lo || n > hi)
		return -EINVAL;
	*out = (unsigned)n;
	return 0;
}

static int mount_opts_set_str(char **dst, const char *v)
{
	char *s = strdup(v);

	if (!s)
		return -ENOMEM;
	free(*dst);
	*dst = s;
	return 0;
}

/* Our own options with a value.  1 = not ours, 0 = taken, <0 = bad. */
static int mount_opts_valued(struct mount_opts *o, const char *key,
			     const char *v, char *err, size_t len)
{
	struct {
		const char *name;
		double *dst, lo, hi;
	} secs[] = {
	    {"attr_timeout", &o->attr_timeout, 0, MOUNT_OPTS_MAX_TTL},
	    {"entry_timeout", &o->entry_timeout, 0, MOUNT_OPTS_MAX_TTL},
	    {"negative_timeout", &o->negative_timeout, 0, MOUNT_OPTS_MAX_TTL},
	    {"timeout", &o->timeout, 0.001, MOUNT_OPTS_MAX_TIMEOUT},
	};
	size_t i;

	for (i = 0; i < N_ELEMS(secs); i++) {
		if (strcmp(key, secs[i].name))
			continue;
		if (mount_opts_seconds(v, secs[i].lo, secs[i].hi, secs[i].dst))
			return mount_opts_fail(err, len,
					       "option '%s': '%s' is not a "
					       "number of seconds in [%g, %g]",
					       key, v, secs[i].lo, secs[i].hi);
		return 0;
	}
	if (strcmp(key, "max_threads") == 0) {
		if (mount_opts_uint(v, 1, MOUNT_OPTS_MAX_THREADS,
				    &o->max_threads))
			return mount_opts_fail(err, len,
					       "option 'max_threads': '%s' is "
					       "not a number in [1, %u]",
					       v, MOUNT_OPTS_MAX_THREADS);
		return 0;
	}
	if (strcmp(key, "read_ahead_kb") == 0) {
		if (mount_opts_uint(v, 0, MOUNT_OPTS_MAX_READAHEAD_KB,
				    &o->read_ahead_kb))
			return mount_opts_fail(
			    err, len,
			    "option 'read_ahead_kb': '%s' is "
			    "not a number in [0, %u]",
			    v, MOUNT_OPTS_MAX_READAHEAD_KB);
		return 0;
	}
	if (strcmp(key, "max_dirty_ratio") == 0) {
		unsigned r;

		if (mount_opts_uint(v, 0, 100, &r))
			return mount_opts_fail(err, len,
					       "option 'max_dirty_ratio': '%s' "
					       "is not a number in [0, 100]",
					       v);
		o->max_dirty_ratio = (int)r;
		return 0;
	}
	if (strcmp(key, "spin_us") == 0) {
		if (mount_opts_uint(v, 0, MOUNT_OPTS_MAX_SPIN_US, &o->spin_us))
			return mount_opts_fail(err, len,
					       "option 'spin_us': '%s' is "
					       "not a number in [0, %u]",
					       v, MOUNT_OPTS_MAX_SPIN_US);
		return 0;
	}
	if (strcmp(key, "handle") == 0 || strcmp(key, "ca") == 0) {
		if (!*v)
			return mount_opts_fail(
			    err, len, "option '%s' needs a file name", key);
		return mount_opts_set_str(
		    key[0] == 'h' ? &o->handle_path : &o->ca_path, v);
	}
	for (i = 0; i < N_ELEMS(mount_opts_ctx); i++) {
		if (strcmp(key, mount_opts_ctx[i]))
			continue;
		if (!*v)
			return mount_opts_fail(
			    err, len, "option '%s' needs a value", key);
		return mount_opts_set_str(&o->context[i], v);
	}
	return 1;
}

/* Our own boolean options.  1 = not ours, 0 = taken. */
static int mount_opts_boolean(struct mount_opts *o, const char *opt)
{
	static const struct {
		const char *name;
		size_t off;
		int val;
	} bools[] = {
	    {"writeback", offsetof(struct mount_opts, writeback), 1},
	    {"nowriteback", offsetof(struct mount_opts, writeback), 0},
	    {"splice", offsetof(struct mount_opts, splice), 1},
	    {"nosplice", offsetof(struct mount_opts, splice), 0},
	    {"allow_other", offsetof(struct mount_opts, allow_other), 1},
	    {"default_permissions",
	     offsetof(struct mount_opts, default_permissions), 1},
	    {"nodefault_permissions",
	     offsetof(struct mount_opts, default_permissions), 0},
	    {"ro", offsetof(struct mount_opts, rdonly), 1},
	    {"rw", offsetof(struct mount_opts, rdonly), 0},
	    {"debug", offsetof(struct mount_opts, debug), 1},
	};
	size_t i;

	for (i = 0; i < N_ELEMS(bools); i++) {
		if (strcmp(opt, bools[i].name) == 0) {
			*(int *)((char *)o + bools[i].off) = bools[i].val;
			return 0;
		}
	}
	return 1;
}

/* Everything that is not ours.  1 = unknown, 0 = taken or ignored. */
static int mount_opts_foreign(struct mount_opts *o, const char *opt)
{
	size_t i;

	for (i = 0; i < N_ELEMS(mount_opts_flags); i++) {
		if (strcmp(opt, mount_opts_flags[i].name) == 0) {
			o->flag_choice[mount_opts_flags[i].group] =
			    mount_opts_flags[i].name;
			return 0;
		}
	}
	for (i = 0; i < N_ELEMS(mount_opts_dropped); i++)
		if (strcmp(opt, mount_opts_dropped[i]) == 0)
			return 0;
	for (i = 0; i < N_ELEMS(mount_opts_userspace); i++)
		if (strcmp(opt, mount_opts_userspace[i]) == 0)
			return 0;
	for (i = 0; i < N_ELEMS(mount_opts_userspace_pfx); i++)
		if (strncmp(opt, mount_opts_userspace_pfx[i],
			    strlen(mount_opts_userspace_pfx[i])) == 0)
			return 0;
	return 1;
}

/* One option, quotes already removed. */
static int mount_opts_one(struct mount_opts *o, char *opt, char *err,
			  size_t len)
{
	char *eq = strchr(opt, '=');
	int rc;

	if (mount_opts_foreign(o, opt) == 0)
		return 0;
	if (eq) {
		*eq = '\0';
		rc = mount_opts_valued(o, opt, eq + 1, err, len);
		*eq = '=';
		if (rc <= 0)
			return rc;
	} else if (mount_opts_boolean(o, opt) == 0) {
		return 0;
	}
	if (strcmp(opt, "nosymfollow") == 0)
		return mount_opts_fail(err, len,
				       "option 'nosymfollow' is not supported "
				       "by FUSE on this system");
	if (o->sloppy)
		return 0; /* mount -s: tolerate what we do not know */
	return mount_opts_fail(err, len, "unknown mount option '%s'", opt);
}

int mount_opts_parse_o(struct mount_opts *o, const char *s, char *err,
		       size_t errlen)
{
	char *tok = malloc(strlen(s) + 1);
	size_t n = 0;
	int quoted = 0, rc = 0;

	if (!tok)
		return mount_opts_fail(err, errlen, "out of memory");
	for (;; s++) {
		if (*s == '"') {
			quoted = !quoted;
			continue;
		}
		if (*s && (quoted || *s != ',')) {
			tok[n++] = *s;
			continue;
		}
		if (!*s && quoted) {
			rc = mount_opts_fail(err, errlen,
					     "unbalanced quote in options");
			break;
		}
		tok[n] = '\0';
		if (n)
			rc = mount_opts_one(o, tok, err, errlen);
		n = 0;
		if (rc || !*s)
			break;
	}
	free(tok);
	if (rc == -ENOMEM)
		mount_opts_fail(err, errlen, "out of memory");
	return rc ? -EINVAL : 0;
}

/* Append ",s" (commas in s escaped for libfuse's option splitter). */
static int mount_opts_add(struct mount_opts *o, const char *key, const char *s)
{
	size_t n = strlen(o->fuse_opts);
	char *p = o->fuse_opts + n;
	char *end = o->fuse_opts + sizeof(o->fuse_opts) - 1;

	if (n && p < end)
		*p++ = ',';
	for (; key && *key && p < end; key++)
		*p++ = *key;
	for (; *s && p < end; s++) {
		if ((*s == ',' || *s == '\\') && p + 1 < end)
			*p++ = '\\';
		*p++ = *s;
	}
	*p = '\0';
	return p < end ? 0 : -E2BIG;
}

int mount_opts_finish(struct mount_opts *o, char *err, size_t errlen)
{
	char key[32];
	size_t i;
	int rc = 0;

	o->fuse_opts[0] = '\0';
	for (i = 0; i < N_ELEMS(o->flag_choice) && !rc; i++)
		if (o->flag_choice[i])
			rc = mount_opts_add(o, NULL, o->flag_choice[i]);
	for (i = 0; i < N_ELEMS(o->context) && !rc; i++) {
		if (!o->context[i])
			continue;
		snprintf(key, sizeof(key), "%s=", mount_opts_ctx[i]);
		rc = mount_opts_add(o, key, o->context[i]);
	}
	if (rc)
		return mount_opts_fail(err, errlen, "mount options too long");
	return 0;
}

/* The -x letters; -f means fake under mount(8), foreground otherwise. */
static int mount_opts_letter(struct mount_opts *o, int c, int helper, char *err,
			     size_t len)
{
	switch (c) {
	case 'f':
		if (helper)
			o->fake = 1;
		else
			o->foreground = 1;
		return 0;
	case 'F':
		o->foreground = 1;
		return 0;
	case 'd':
		o->debug = 1;
		o->foreground = 1;
		return 0;
	case 's':
		o->sloppy = 1;
		return 0;
	case 'n':
		return 0; /* no mtab: we never write one */
	case 'v':
		o->verbose = 1;
		return 0;
	case 'h':
		o->help = 1;
		return 0;
	case 'V':
		o->version = 1;
		return 0;
	case 't':
		if (strcmp(optarg, "occfs") && strcmp(optarg, "fuse.occfs"))
			return mount_opts_fail(err, len,
					       "filesystem type '%s' is not "
					       "occfs",
					       optarg);
		return 0;
	case 'N':
		return mount_opts_fail(err, len,
				       "-N (mount namespace) is not supported");
	default:
		return mount_opts_fail(err, len, "invalid option '-%c'",
				       optopt ? optopt : c);
	}
}

int mount_opts_parse_argv(struct mount_opts *o, int argc, char **argv,
			  int helper, char *err, size_t errlen)
{
	const char *pos[3] = {NULL, NULL, NULL};
	char **opts = calloc((size_t)argc + 1, sizeof(*opts));
	int c, i, npos = 0, nopts = 0, rc = 0;

	if (!opts)
		return mount_opts_fail(err, errlen, "out of memory");
	optind = 0; /* GNU: reinitialise (tests parse several times) */
	opterr = 0;
	/* -s must act before any -o, so collect the -o values first. */
	while (!rc && (c = getopt(argc, argv, "-o:sfFndvhVt:N:")) != -1) {
		if (c == 1) {
			if (npos < 3)
				pos[npos] = optarg;
			npos++;
		} else if (c == 'o') {
			opts[nopts++] = optarg;
		} else if (c == '?' && optopt == 'o') {
			rc = mount_opts_fail(err, errlen,
					     "option -o needs an argument");
		} else {
			rc = mount_opts_letter(o, c, helper, err, errlen);
		}
	}
	for (i = 0; !rc && i < nopts; i++)
		rc = mount_opts_parse_o(o, opts[i], err, errlen);
	free(opts);
	if (rc || o->help || o->version)
		return rc;
	if (npos < 2)
		return mount_opts_fail(err, errlen, "expected SPEC and DIR");
	if (npos > 2)
		return mount_opts_fail(err, errlen, "unexpected argument '%s'",
				       pos[2]);
	o->spec = pos[0];
	o->mountpoint = pos[1];
	if (!o->handle_path)
		return mount_opts_fail(err, errlen,
				       "the handle=PATH option is required "
				       "(the session handle file)");
	return mount_opts_finish(o, err, errlen);
}
