/* mountc/mount_opts.h */
