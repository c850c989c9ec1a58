/* brokerfs/local_nodes.c: not yet implemented. */
