/* brokerfs/local_dir.c: not yet implemented. */
