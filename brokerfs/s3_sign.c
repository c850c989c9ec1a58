/* brokerfs/s3_sign.c: not yet implemented. */
