/* brokerfs/s3_sts.c: not yet implemented. */
