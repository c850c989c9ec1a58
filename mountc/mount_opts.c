/* mountc/mount_opts.c: not yet implemented. */
