/*
 * test_mount_opts.c - the mountc / mount.occfs command line.
 *
 * Every kind of option (ours, generic flags for libfuse, flags dropped,
 * userspace-only), quoting, duplicates, the helper conventions (-f fake vs
 * foreground, -s sloppy, -t), and the refusals: missing handle or
 * positionals, bad numbers, unknown options.  The generic flags we pass on
 * are checked against the installed libfuse, which refuses what it does not
 * know: that is what decides the passthrough list.
 */
#define FUSE_USE_VERSION 312
#include "mount_opts.h"
#include "unit.h"

#include <errno.h>
#include <fuse_lowlevel.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static char err[256];

/* Parse a NULL-terminated argument list (program name first). */
static int parse(struct mount_opts *o, int helper, ...)
{
	char *argv[32];
	va_list ap;
	int argc = 0;

	va_start(ap, helper);
	while (argc < 31 && (argv[argc] = va_arg(ap, char *)) != NULL)
		argc++;
	va_end(ap);
	argv[argc] = NULL;
	mount_opts_cleanup(o);
	err[0] = '\0';
	return mount_opts_parse_argv(o, argc, argv, helper, err, sizeof(err));
}

#define MC(...) parse(&o, 0, "mountc", __VA_ARGS__, (char *)NULL)
#define MH(...) parse(&o, 1, "mount.occfs", __VA_ARGS__, (char *)NULL)

/* Does libfuse accept "-o opts" (as fuse_ops_serve will pass them)? */
static int fuse_accepts(const char *opts)
{
	static const struct fuse_lowlevel_ops ops;
	char *av[] = {"mountc", "-o", (char *)opts, NULL};
	struct fuse_args a = FUSE_ARGS_INIT(3, av);
	struct fuse_session *se;

	se = fuse_session_new(&a, &ops, sizeof(ops), NULL);
	fuse_opt_free_args(&a); /* libfuse may have copied the arguments */
	if (!se)
		return 0;
	fuse_session_destroy(se);
	return 1;
}

static void test_defaults(void)
{
	struct mount_opts o;

	mount_opts_init(&o);
	CHECK_EQ(MC("unix:/s", "/mnt", "-o", "handle=/h"), 0);
	CHECK_STR(o.spec, "unix:/s");
	CHECK_STR(o.mountpoint, "/mnt");
	CHECK_STR(o.handle_path, "/h");
	CHECK(o.ca_path == NULL);
	CHECK(o.attr_timeout == 1.0 && o.entry_timeout == 1.0);
	CHECK(o.negative_timeout == 0.0 && o.timeout == 30.0);
	CHECK_EQ(o.writeback, 1);
	CHECK_EQ(o.default_permissions, 1);
	CHECK_EQ(o.allow_other + o.rdonly + o.foreground + o.debug, 0);
	CHECK_EQ(o.max_threads, 0);
	CHECK_EQ(o.read_ahead_kb, 1024);
	CHECK_EQ(o.spin_us, 50);
	CHECK_STR(o.fuse_opts, "");
	/* Options may come first, and -o may repeat. */
	CHECK_EQ(MC("-o", "handle=/h", "-o", "ca=/ca.pem,ro", "tls:h:1", "/m"),
		 0);
	CHECK_STR(o.ca_path, "/ca.pem");
	CHECK_STR(o.spec, "tls:h:1");
	CHECK_EQ(o.rdonly, 1);
	mount_opts_cleanup(&o);
}

static void test_ours(void)
{
	struct mount_opts o;

	mount_opts_init(&o);
	CHECK_EQ(MC("s", "d", "-o",
		    "handle=/h,attr_timeout=2.5,entry_timeout=0,"
		    "negative_timeout=.5,timeout=5,nowriteback,allow_other,"
		    "nodefault_permissions,max_threads=8,debug,"
		    "read_ahead_kb=4096"),
		 0);
	CHECK_EQ(o.read_ahead_kb, 4096);
	CHECK(o.attr_timeout == 2.5 && o.entry_timeout == 0.0);
	CHECK(o.negative_timeout == 0.5 && o.timeout == 5.0);
	CHECK_EQ(o.writeback, 0);
	CHECK_EQ(o.allow_other, 1);
	CHECK_EQ(o.default_permissions, 0);
	CHECK_EQ(o.max_threads, 8);
	CHECK_EQ(o.debug, 1);
	/* 0 leaves the kernel's read-ahead alone. */
	CHECK_EQ(MC("s", "d", "-o", "handle=/h,read_ahead_kb=0"), 0);
	CHECK_EQ(o.read_ahead_kb, 0);
	/* spin_us: 0 turns busy-polling off; bounded. */
	CHECK_EQ(MC("s", "d", "-o", "handle=/h,spin_us=0"), 0);
	CHECK_EQ(o.spin_us, 0);
	CHECK_EQ(MC("s", "d", "-o", "handle=/h,spin_us=1000"), 0);
	CHECK_EQ(o.spin_us, 1000);
	CHECK_EQ(MC("s", "d", "-o", "handle=/h,spin_us=1001"), -EINVAL);
	CHECK_EQ(MC("s", "d", "-o", "handle=/h,spin_us=x"), -EINVAL);
	/* max_dirty_ratio: unset (-1) unless given; a percentage. */
	CHECK_EQ(MC("s", "d", "-o", "handle=/h"), 0);
	CHECK_EQ(o.max_dirty_ratio, -1);
	CHECK_EQ(MC("s", "d", "-o", "handle=/h,max_dirty_ratio=0"), 0);
	CHECK_EQ(o.max_dirty_ratio, 0);
	CHECK_EQ(MC("s", "d", "-o", "handle=/h,max_dirty_ratio=100"), 0);
	CHECK_EQ(o.max_dirty_ratio, 100);
	CHECK_EQ(MC("s", "d", "-o", "handle=/h,max_dirty_ratio=101"), -EINVAL);
	CHECK_EQ(MC("s", "d", "-o", "handle=/h,max_dirty_ratio=-1"), -EINVAL);
	/* splice: on unless turned off; nosplice then splice wins. */
	CHECK_EQ(MC("s", "d", "-o", "handle=/h"), 0);
	CHECK_EQ(o.splice, 1);
	CHECK_EQ(MC("s", "d", "-o", "handle=/h,nosplice"), 0);
	CHECK_EQ(o.splice, 0);
	CHECK_EQ(MC("s", "d", "-o", "handle=/h,nosplice,splice"), 0);
	CHECK_EQ(o.splice, 1);
	/* Duplicates: the last one wins. */
	CHECK_EQ(MC("s", "d", "-o", "handle=/a,ro,writeback", "-o",
		    "nowriteback,handle=/b,rw,default_permissions,writeback,"
		    "attr_timeout=3,attr_timeout=4"),
		 0);
	CHECK_STR(o.handle_path, "/b");
	CHECK_EQ(o.rdonly, 0);
	CHECK_EQ(o.writeback, 1);
	CHECK(o.attr_timeout == 4.0);
	mount_opts_cleanup(&o);
}

static void test_quoting(void)
{
	struct mount_opts o;

	mount_opts_init(&o);
	CHECK_EQ(MC("s", "d", "-o", "handle=\"/run/a,b\",,ro,"), 0);
	CHECK_STR(o.handle_path, "/run/a,b");
	CHECK_EQ(o.rdonly, 1);
	CHECK_EQ(MC("s", "d", "-o", "handle=/h,comment=\"x,unknown,y\""), 0);
	CHECK_EQ(MC("s", "d", "-o", "handle=\"/h"), -EINVAL);
	CHECK(strstr(err, "quote") != NULL);
	/* A comma inside a label value reaches libfuse escaped. */
	CHECK_EQ(MC("s", "d", "-o",
		    "handle=/h,context=\"system_u:object_r:tmp_t:s0:c1,c2\""),
		 0);
	CHECK_STR(o.fuse_opts, "context=system_u:object_r:tmp_t:s0:c1\\,c2");
	mount_opts_cleanup(&o);
}

static void test_generic_flags(void)
{
	struct mount_opts o;

	mount_opts_init(&o);
	CHECK_EQ(MC("s", "d", "-o",
		    "handle=/h,nosuid,nodev,noexec,noatime,dirsync,sync"),
		 0);
	CHECK_STR(o.fuse_opts, "nosuid,nodev,noexec,noatime,sync,dirsync");
	CHECK(fuse_accepts(o.fuse_opts));
	CHECK_EQ(MC("s", "d", "-o", "handle=/h,nosuid,suid,exec,dev,atime",
		    "-o", "async,auto_unmount,nodev"),
		 0);
	CHECK_STR(o.fuse_opts, "suid,nodev,exec,atime,async,auto_unmount");
	CHECK(fuse_accepts(o.fuse_opts));
	CHECK_EQ(MC("s", "d", "-o", "handle=/h,fscontext=a,context=b"), 0);
	CHECK_STR(o.fuse_opts, "context=b,fscontext=a");
	CHECK(fuse_accepts(o.fuse_opts));
	/* Flags libfuse would refuse are dropped, not passed. */
	CHECK_EQ(MC("s", "d", "-o",
		    "handle=/h,relatime,strictatime,nodiratime,lazytime,"
		    "symfollow,norelatime,iversion"),
		 0);
	CHECK_STR(o.fuse_opts, "");
	CHECK(!fuse_accepts("relatime"));
	CHECK(!fuse_accepts("lazytime"));
	/* nosymfollow would be a silent loss of protection: refused. */
	CHECK_EQ(MC("s", "d", "-o", "handle=/h,nosymfollow"), -EINVAL);
	CHECK(strstr(err, "nosymfollow") != NULL);
	mount_opts_cleanup(&o);
}

static void test_userspace_only(void)
{
	struct mount_opts o;

	mount_opts_init(&o);
	CHECK_EQ(MC("s", "d", "-o",
		    "handle=/h,_netdev,nofail,noauto,auto,user,nouser,users,"
		    "owner,group,defaults,comment=x,x-systemd.automount,"
		    "x-systemd.requires=broker.service,user=alice,"
		    "x-mount.mkdir"),
		 0);
	CHECK_STR(o.fuse_opts, "");
	CHECK_EQ(o.rdonly + o.allow_other, 0);
	CHECK_STR(o.handle_path, "/h");
	mount_opts_cleanup(&o);
}

static void test_refusals(void)
{
	static const char *const bad[] = {
	    "attr_timeout=abc",
	    "attr_timeout=-1",
	    "attr_timeout=",
	    "entry_timeout=1x",
	    "negative_timeout=nan",
	    "attr_timeout=inf",
	    "attr_timeout=1e3",
	    "attr_timeout=0x10",
	    "timeout=0",
	    "timeout=999999",
	    "max_threads=0",
	    "max_threads=1025",
	    "max_threads=12a",
	    "max_threads=-3",
	    "read_ahead_kb=65537",
	    "read_ahead_kb=-1",
	    "read_ahead_kb=1k",
	    "read_ahead_kb=",
	    "handle=",
	    "ca=",
	    "context=",
	    "bogus",
	    "loop",
	    "fsname=x",
	    "writeback=1",
	    "ro=1",
	};
	struct mount_opts o;
	char opt[64];
	size_t i;

	mount_opts_init(&o);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(opt, sizeof(opt), "handle=/h,%s", bad[i]);
		CHECK_EQ(MC("s", "d", "-o", opt), -EINVAL);
		/* The message names the option. */
		snprintf(opt, sizeof(opt), "%.*s", (int)strcspn(bad[i], "="),
			 bad[i]);
		if (!strstr(err, opt))
			fprintf(stderr, "message for %s: %s\n", bad[i], err);
		CHECK(strstr(err, opt) != NULL);
	}
	CHECK_EQ(MC("s", "d"), -EINVAL);
	CHECK(strstr(err, "handle") != NULL);
	CHECK_EQ(MC("s", "d", "-o", "ro"), -EINVAL);
	CHECK(strstr(err, "handle") != NULL);
	CHECK_EQ(MC("s", "-o", "handle=/h"), -EINVAL);
	CHECK(strstr(err, "DIR") != NULL);
	CHECK_EQ(MC("s", "d", "e", "-o", "handle=/h"), -EINVAL);
	CHECK(strstr(err, "'e'") != NULL);
	CHECK_EQ(MC("s", "d", "-x", "-o", "handle=/h"), -EINVAL);
	CHECK(strstr(err, "-x") != NULL);
	CHECK_EQ(MC("s", "d", "-o"), -EINVAL);
	CHECK_EQ(MC("s", "d", "-t", "nfs", "-o", "handle=/h"), -EINVAL);
	CHECK_EQ(MC("s", "d", "-N", "/proc/1/ns/mnt", "-o", "handle=/h"),
		 -EINVAL);
	/* Sloppy parsing (mount -s) tolerates unknown options only. */
	CHECK_EQ(MH("s", "d", "-s", "-o", "handle=/h,bogus,ro"), 0);
	CHECK_EQ(o.rdonly, 1);
	CHECK_EQ(MH("s", "d", "-o", "handle=/h,bogus", "-s"), 0);
	CHECK_EQ(MH("s", "d", "-s", "-o", "handle=/h,timeout=x"), -EINVAL);
	mount_opts_cleanup(&o);
}

static void test_helper_conventions(void)
{
	struct mount_opts o;

	mount_opts_init(&o);
	CHECK_EQ(MH("s", "d", "-f", "-n", "-v", "-o", "handle=/h"), 0);
	CHECK_EQ(o.fake, 1);
	CHECK_EQ(o.foreground, 0);
	CHECK_EQ(o.verbose, 1);
	CHECK_EQ(MH("s", "d", "-sfnv", "-o", "handle=/h,x-y", "-t", "occfs"),
		 0);
	CHECK_EQ(o.fake + o.sloppy + o.verbose, 3);
	CHECK_EQ(MC("s", "d", "-f", "-o", "handle=/h"), 0);
	CHECK_EQ(o.fake, 0);
	CHECK_EQ(o.foreground, 1);
	CHECK_EQ(MC("s", "d", "-d", "-o", "handle=/h"), 0);
	CHECK_EQ(o.debug + o.foreground, 2);
	CHECK_EQ(MC("s", "d", "-t", "fuse.occfs", "-o", "handle=/h"), 0);
	/* -h and -V need nothing else. */
	CHECK_EQ(MC("-h"), 0);
	CHECK_EQ(o.help, 1);
	CHECK_EQ(MH("-V"), 0);
	CHECK_EQ(o.version, 1);
	mount_opts_cleanup(&o);
}

int main(void)
{
	test_defaults();
	test_ours();
	test_quoting();
	test_generic_flags();
	test_userspace_only();
	test_refusals();
	test_helper_conventions();
	return unit_done("test_mount_opts");
}
