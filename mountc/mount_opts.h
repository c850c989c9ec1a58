/*
 * mount_opts.h - the command line of mountc / mount.occfs, parsed purely.
 *
 * mount(8) runs helpers as "mount.occfs SPEC DIR [-sfnv] [-o OPTIONS]"; run
 * directly, mountc takes the same arguments plus -f (foreground) and -d
 * (debug).  Under the helper's name -f keeps mount(8)'s meaning: fake (check
 * everything, mount nothing).  The parser does no I/O, so every rule here
 * is unit-tested in tests/unit/test_mount_opts.c.
 */
#ifndef OCCFS_MOUNT_OPTS_H
#define OCCFS_MOUNT_OPTS_H

#include <stddef.h>

/* Exit codes of mount(8) helpers. */
#define MOUNT_EX_OK 0
#define MOUNT_EX_USAGE 1
#define MOUNT_EX_FAIL 32

#define MOUNT_OPTS_FUSE_MAX 1024      /* bytes of generic flags for libfuse */
#define MOUNT_OPTS_READAHEAD_KB 1024u /* default read_ahead_kb */
#define MOUNT_OPTS_MAX_READAHEAD_KB 65536u /* 64 MiB */
#define MOUNT_OPTS_SPIN_US 50u		   /* default spin_us */
#define MOUNT_OPTS_MAX_SPIN_US 1000u
/* max_dirty_ratio when the broker stages writes (HELLO STAGED) */
#define MOUNT_OPTS_STAGED_DIRTY_RATIO 50

struct mount_opts {
	const char *spec;	/* broker endpoint (points into argv) */
	const char *mountpoint; /* points into argv */
	char *handle_path;	/* handle=, owned */
	char *ca_path;		/* ca=, owned */
	double attr_timeout, entry_timeout, negative_timeout; /* seconds */
	double timeout; /* per-call RPC timeout, seconds */
	int writeback, allow_other, default_permissions, rdonly;
	int splice;		/* WRITE payloads by splice (default on) */
	unsigned max_threads;	/* 0 = libfuse's default */
	unsigned read_ahead_kb; /* KiB; 0 = leave the kernel's value */
	unsigned spin_us;	/* busy-poll for a reply; 0 = never */
	int max_dirty_ratio;	/* percent of the host's dirty limit; 0 =
				   the kernel's strict per-mount limit; -1 =
				   not given (decided by HELLO) */
	int foreground, debug, verbose, sloppy, fake;
	int help, version; /* -h / -V: print and exit 0 */
	/* Generic mount flags for libfuse, comma-separated, last one wins. */
	char fuse_opts[MOUNT_OPTS_FUSE_MAX];
	/* Internal: the chosen value per generic flag group (see .c). */
	const char *flag_choice[8];
	char *context[4];
};

void mount_opts_init(struct mount_opts *o);
void mount_opts_cleanup(struct mount_opts *o);

/*
 * Parse one -o argument: comma-separated options, double quotes protect
 * commas (handle="/a,b").  Returns 0 or -EINVAL with err set to a message
 * naming the option.
 */
int mount_opts_parse_o(struct mount_opts *o, const char *s, char *err,
		       size_t errlen);

/*
 * Parse a whole command line (argv[0] is the program name).  helper is
 * non-zero when run as mount.occfs.  On success the generic flags are
 * assembled in o->fuse_opts.  Returns 0 or -EINVAL with err set; the caller
 * exits with MOUNT_EX_USAGE.  With -h or -V, succeeds with help/version set
 * and nothing else required.
 */
int mount_opts_parse_argv(struct mount_opts *o, int argc, char **argv,
			  int helper, char *err, size_t errlen);

/* Assemble o->fuse_opts from the flags chosen so far (parse_argv does it). */
int mount_opts_finish(struct mount_opts *o, char *err, size_t errlen);

#endif
