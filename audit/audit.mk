# Audit: the OCSF emitter library, occfs-auditd and occfs-audit.
noinst_LIBRARIES += libaudit.a
libaudit_a_SOURCES = audit/audit.h audit/audit_int.h audit/audit_wire.h \
	audit/audit.c audit/audit_ocsf.c audit/audit_spool.c \
	audit/audit_agg.c audit/audit_send.c \
	audit/audit_log.h audit/audit_log.c audit/audit_verify.c
libaudit_a_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/audit
libaudit_a_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS) $(SSL_CFLAGS) $(ZSTD_CFLAGS)
# What a program linking the emitter adds to its LDADD.
AUDIT_LIBS = libaudit.a $(COMMON_LIBS)

# The daemon runs as root like brokerfs and is installed beside it.
bin_PROGRAMS += audit/occfs-auditd audit/occfs-audit
audit_occfs_auditd_SOURCES = audit/auditd.h audit/auditd.c \
	audit/auditd_store.c audit/auditd_sink.c
audit_occfs_auditd_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/audit \
	-I$(srcdir)/policy
audit_occfs_auditd_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)
audit_occfs_auditd_LDADD = $(AUDIT_LIBS) $(POLICY_LIBS)
audit_occfs_audit_SOURCES = audit/audit_cli.c
audit_occfs_audit_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/audit
audit_occfs_audit_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)
audit_occfs_audit_LDADD = $(AUDIT_LIBS)

# Tests: golden OCSF output per event type, and scripts that each run a real
# occfs-auditd on a unix socket in a temp dir (tests/audit/lib.sh).
check_PROGRAMS += tests/audit/test_audit_ocsf tests/audit/audit-emit
tests_audit_test_audit_ocsf_SOURCES = tests/audit/test_audit_ocsf.c tests/unit/unit.h
tests_audit_test_audit_ocsf_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/audit \
	-I$(srcdir)/tests/unit -DGOLDEN_DIR='"$(abs_top_srcdir)/tests/audit/golden"'
tests_audit_test_audit_ocsf_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)
tests_audit_test_audit_ocsf_LDADD = $(AUDIT_LIBS)
tests_audit_audit_emit_SOURCES = tests/audit/audit-emit.c
tests_audit_audit_emit_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/audit
tests_audit_audit_emit_LDADD = $(AUDIT_LIBS)
AUDIT_SHELL_TESTS = tests/audit/ingest.sh tests/audit/tamper.sh \
	tests/audit/outage.sh tests/audit/spool-full.sh \
	tests/audit/auth-closed.sh tests/audit/malformed.sh \
	tests/audit/policy.sh
TESTS += tests/audit/test_audit_ocsf $(AUDIT_SHELL_TESTS)
EXTRA_DIST += $(AUDIT_SHELL_TESTS) tests/audit/lib.sh tests/audit/tamper.py \
	tests/audit/golden
dist_man_MANS += man/occfs-auditd.8 man/occfs-audit.1
dist_doc_DATA += doc/audit.md

# The ingest framing and record check are a trust boundary: a fuzz target,
# its corpus replayed by make check (tests/fuzz/replay.sh).
check_PROGRAMS += tests/fuzz/fuzz_audit_ingest
tests_fuzz_fuzz_audit_ingest_SOURCES = tests/fuzz/fuzz_audit_ingest.c \
	audit/auditd_sink.c $(FUZZ_MAIN)
tests_fuzz_fuzz_audit_ingest_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/audit
tests_fuzz_fuzz_audit_ingest_CFLAGS = $(AM_CFLAGS) $(FUZZ_CFLAGS) \
	$(JANSSON_CFLAGS)
tests_fuzz_fuzz_audit_ingest_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_CFLAGS)
tests_fuzz_fuzz_audit_ingest_LDADD = $(AUDIT_LIBS) $(JANSSON_LIBS)
