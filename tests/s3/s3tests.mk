# Tests of the s3 backend against a real S3 server (tests/s3/).
