# brokerfs's audit trail: Authentication events for handle checks, File
# System Activity events for file operations (brokerfs/broker_audit*.c),
# through the emitter of audit/audit.mk.
libbroker_a_SOURCES += brokerfs/broker_audit.h brokerfs/broker_audit.c \
	brokerfs/broker_audit_names.c
libbroker_a_CFLAGS += $(JANSSON_CFLAGS)
# libaudit.a after libbroker.a: conn.o calls the emitter.
brokerfs_brokerfs_LDADD += $(AUDIT_LIBS)

# The name table and handle claims, then a real occfs-auditd, brokerfs and
# mountc mount (needs root for FUSE).
check_PROGRAMS += tests/broker/audit-names
tests_broker_audit_names_SOURCES = tests/broker/audit-names.c tests/unit/unit.h
tests_broker_audit_names_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/tests/unit
tests_broker_audit_names_LDADD = libbroker.a $(AUDIT_LIBS)
TESTS += tests/broker/audit-names tests/broker/audit.sh
EXTRA_DIST += tests/broker/audit.sh
