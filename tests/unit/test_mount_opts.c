/* tests/unit/test_mount_opts.c: not yet implemented. */
