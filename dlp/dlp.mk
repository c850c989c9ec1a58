# DLP: the streaming content scanner run on plaintext before upload.
noinst_LIBRARIES += libdlp.a
libdlp_a_SOURCES = dlp/dlp.h dlp/dlp_int.h dlp/dlp_pattern.c \
	dlp/dlp_builtin.c dlp/dlp_engine.c dlp/dlp_stream.c dlp/dlp_hook.c \
	dlp/dlp_classify.c dlp/dlp_fast.c dlp/dlp_vec.c
libdlp_a_CFLAGS = $(AM_CFLAGS) $(HS_CFLAGS)

DLP_TESTS = tests/dlp/test_dlp tests/dlp/test_dlp_rules
check_PROGRAMS += $(DLP_TESTS)
TESTS += $(DLP_TESTS)
tests_dlp_test_dlp_SOURCES = tests/dlp/test_dlp.c tests/dlp/dlp_test.h
tests_dlp_test_dlp_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/dlp
tests_dlp_test_dlp_LDADD = libdlp.a $(HS_LIBS) -lpthread
tests_dlp_test_dlp_rules_SOURCES = tests/dlp/test_dlp_rules.c tests/dlp/dlp_test.h
tests_dlp_test_dlp_rules_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/dlp
tests_dlp_test_dlp_rules_LDADD = libdlp.a $(HS_LIBS) -lpthread
DLP_EQUIV_TESTS = tests/dlp/test_dlp_equiv
check_PROGRAMS += $(DLP_EQUIV_TESTS)
TESTS += $(DLP_EQUIV_TESTS)
tests_dlp_test_dlp_equiv_SOURCES = tests/dlp/test_dlp_equiv.c tests/dlp/dlp_test.h
tests_dlp_test_dlp_equiv_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/dlp $(HS_CFLAGS)
tests_dlp_test_dlp_equiv_LDADD = libdlp.a $(HS_LIBS) -lpthread
DLP_HOOK_TESTS = tests/dlp/test_dlp_hook
check_PROGRAMS += $(DLP_HOOK_TESTS)
TESTS += $(DLP_HOOK_TESTS)
tests_dlp_test_dlp_hook_SOURCES = tests/dlp/test_dlp_hook.c tests/dlp/dlp_test.h
tests_dlp_test_dlp_hook_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/dlp
tests_dlp_test_dlp_hook_LDADD = libdlp.a $(HS_LIBS) -lpthread

# The throughput benchmark: built by make check, never run by it.
check_PROGRAMS += tests/bench/dlp-bench
tests_bench_dlp_bench_SOURCES = tests/bench/dlp-bench.c
tests_bench_dlp_bench_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/dlp $(HS_CFLAGS)
tests_bench_dlp_bench_LDADD = libdlp.a $(HS_LIBS) -lpthread

dist_doc_DATA += doc/dlp.md
EXTRA_DIST += tests/broker/dlp-throughput-s3.sh
