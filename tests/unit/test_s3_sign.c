/* tests/unit/test_s3_sign.c: not yet implemented. */
