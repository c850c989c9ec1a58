/* brokerfs/s3_sign.h */
