/* brokerfs/loop.c: not yet implemented. */
