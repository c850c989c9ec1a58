/* brokerfs/local_data.c: not yet implemented. */
