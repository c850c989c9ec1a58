# brokerfs's audit trail: Authentication events for handle checks, File
# System Activity events for file operations (brokerfs/broker_audit*.c),
# through the emitter of audit/audit.mk.
libbroker_a_SOURCES += brokerfs/broker_audit.h brokerfs/broker_audit.c \
	brokerfs/broker_audit_names.c
libbroker_a_CFLAGS += $(JANSSON_CFLAGS)
# libaudit.a after libbroker.a: conn.o calls the emitter.
brokerfs_brokerfs_LDADD += $(AUDIT_LIBS)

# A real occfs-auditd, brokerfs and mountc mount (needs root for FUSE).
TESTS += tests/broker/audit.sh
EXTRA_DIST += tests/broker/audit.sh
