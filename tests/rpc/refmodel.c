/* tests/rpc/refmodel.c: not yet implemented. */
