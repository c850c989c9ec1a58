/* brokerfs/local.h */
