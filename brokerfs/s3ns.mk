# The s3 backend: sessions, names, attributes, open files (brokerfs/s3b*.c).
libbroker_a_SOURCES += brokerfs/backend_s3.c
