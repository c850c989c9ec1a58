/* brokerfs/session.c: not yet implemented. */
