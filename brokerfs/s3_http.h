/* brokerfs/s3_http.h */
