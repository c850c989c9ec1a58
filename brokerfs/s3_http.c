/* brokerfs/s3_http.c: not yet implemented. */
