/* brokerfs/broker.h */
