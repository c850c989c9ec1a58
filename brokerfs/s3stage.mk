# The s3 backend's staging area and uploads (brokerfs/s3b_stage.h).
libbroker_a_SOURCES += brokerfs/s3b_stage_int.h brokerfs/s3b_store.c \
	brokerfs/s3b_store_recover.c brokerfs/s3b_stage.c \
	brokerfs/s3b_stage_mf.c brokerfs/s3b_upload.c
