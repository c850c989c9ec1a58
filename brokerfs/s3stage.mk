# The s3 backend's staging area and uploads (brokerfs/s3b_stage.h).
libbroker_a_SOURCES += brokerfs/s3b_stage_int.h brokerfs/s3b_store.c \
	brokerfs/s3b_store_recover.c brokerfs/s3b_stage.c \
	brokerfs/s3b_stage_mf.c brokerfs/s3b_upload.c brokerfs/s3b_stage_dlp.c \
	brokerfs/s3b_store_retry.c
# Staging against a live radosgw (tests/s3/s3-stage.sh starts it).
check_PROGRAMS += tests/s3/test-s3-stage
tests_s3_test_s3_stage_SOURCES = tests/s3/test-s3-stage.c
tests_s3_test_s3_stage_LDADD = libbroker.a $(TEST_LIBS) $(CURL_LIBS)
TESTS += tests/s3/s3-stage.sh
EXTRA_DIST += tests/s3/s3-stage.sh
dist_doc_DATA += doc/staging.md
# Read-ahead of clean objects (brokerfs/s3b_ra.h).
libbroker_a_SOURCES += brokerfs/s3b_ra.h brokerfs/s3b_ra.c
TESTS += tests/s3/readahead.sh
EXTRA_DIST += tests/s3/readahead.sh
TESTS += tests/s3/rename-syncfs.sh
EXTRA_DIST += tests/s3/rename-syncfs.sh
TESTS += tests/s3/bg-upload.sh
EXTRA_DIST += tests/s3/bg-upload.sh
TESTS += tests/s3/keyorder.sh
EXTRA_DIST += tests/s3/keyorder.sh
TESTS += tests/s3/writeback.sh
EXTRA_DIST += tests/s3/writeback.sh
