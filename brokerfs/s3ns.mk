# The s3 backend: sessions, names, attributes, open files (brokerfs/s3b*.c).
libbroker_a_SOURCES += brokerfs/backend_s3.c brokerfs/s3b.h \
	brokerfs/s3b_meta.c brokerfs/s3b_cache.c brokerfs/s3b_nodes.c \
	brokerfs/s3b_ns.c brokerfs/s3b_rename.c brokerfs/s3b_dir.c \
	brokerfs/s3b_attr.c brokerfs/s3b_data.c brokerfs/s3b_quota.c \
	brokerfs/s3b_hidden.c brokerfs/s3b_xside.c

# The backend against a live radosgw (tests/s3/backend-s3.sh starts it).
check_PROGRAMS += tests/s3/test-backend-s3
tests_s3_test_backend_s3_SOURCES = tests/s3/test-backend-s3.c
tests_s3_test_backend_s3_LDADD = libbroker.a $(TEST_LIBS) $(CURL_LIBS)
TESTS += tests/s3/backend-s3.sh
EXTRA_DIST += tests/s3/backend-s3.sh
