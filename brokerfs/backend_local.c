/* brokerfs/backend_local.c: not yet implemented. */
