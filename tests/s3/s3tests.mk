# Tests of the s3 backend against a real S3 server (tests/s3/).
#
# System tests: they mount filesystems, so they run as root from
# tests/run-all (tests/check --backend s3 and tests/s3/system), not from
# make check.
EXTRA_DIST += tests/s3/system tests/s3/lib.sh tests/s3/faults.sh \
	tests/s3/durability.sh tests/s3/egress.sh tests/s3/sts.sh \
	tests/s3/s3fs-interop.sh tests/s3/faultproxy.py \
	tests/s3/connectproxy.py tests/s3/s3cli.py tests/s3/fs-exclude \
	tests/s3/with-rgw
