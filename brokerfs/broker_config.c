/* brokerfs/broker_config.c: not yet implemented. */
