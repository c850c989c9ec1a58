/* brokerfs/local_meta.c: not yet implemented. */
