/* mountc/fuse_ops.c: not yet implemented. */
