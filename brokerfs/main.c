/* brokerfs/main.c: not yet implemented. */
