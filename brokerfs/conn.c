/* brokerfs/conn.c: not yet implemented. */
