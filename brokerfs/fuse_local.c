/* brokerfs/fuse_local.c: not yet implemented. */
