/* brokerfs/s3_sts.h */
