/* brokerfs/worker.c: not yet implemented. */
