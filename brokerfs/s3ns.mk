# The s3 backend: sessions, names, attributes, open files (brokerfs/s3b*.c).
libbroker_a_SOURCES += brokerfs/backend_s3.c brokerfs/s3b.h \
	brokerfs/s3b_meta.c brokerfs/s3b_cache.c brokerfs/s3b_nodes.c \
	brokerfs/s3b_ns.c brokerfs/s3b_rename.c brokerfs/s3b_dir.c \
	brokerfs/s3b_attr.c brokerfs/s3b_data.c
