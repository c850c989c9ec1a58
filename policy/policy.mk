# Policy files: the library every daemon reads them with, occfs-policy.
noinst_LIBRARIES += libpolicy.a
libpolicy_a_SOURCES = policy/policy.h policy/policy_int.h \
	policy/policy_yaml.c policy/policy_value.c policy/policy_load.c \
	policy/policy_fs.c policy/policy_dlp.c policy/policy_sections.c \
	policy/policy_lookup.c policy/policy_json.c
libpolicy_a_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/policy -I$(srcdir)/dlp
libpolicy_a_CFLAGS = $(AM_CFLAGS) $(YAML_CFLAGS) $(JANSSON_CFLAGS)
# What a program linking libpolicy.a adds to its LDADD.
POLICY_LIBS = libpolicy.a libdlp.a $(YAML_LIBS) $(JANSSON_LIBS) $(HS_LIBS)

bin_PROGRAMS += policy/occfs-policy
policy_occfs_policy_SOURCES = policy/occfs-policy.c
policy_occfs_policy_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/policy
policy_occfs_policy_LDADD = $(POLICY_LIBS)

# Tests: the library's unit test, and golden `occfs-policy check` output
# over tests/policy/cases/ plus the shipped examples.
check_PROGRAMS += tests/policy/test_policy
tests_policy_test_policy_SOURCES = tests/policy/test_policy.c tests/unit/unit.h
tests_policy_test_policy_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/policy \
	-I$(srcdir)/tests/unit
tests_policy_test_policy_LDADD = $(POLICY_LIBS) -lpthread
TESTS += tests/policy/test_policy tests/policy/check.sh
EXTRA_DIST += tests/policy/check.sh tests/policy/cases

dist_man_MANS += man/occfs-policy.1 man/occfs-policy.5
dist_doc_DATA += doc/policy.md
policyexampledir = $(docdir)/examples/policy.d
dist_policyexample_DATA = examples/policy.d/10-filesystems.yaml \
	examples/policy.d/20-tokens.yaml examples/policy.d/30-dlp.yaml \
	examples/policy.d/40-egress.yaml examples/policy.d/50-audit.yaml

# Fuzz target for the loader: libFuzzer with --enable-fuzzers, else the
# replay driver over tests/policy/corpus/ (FUZZ_* come from Makefile.am).
check_PROGRAMS += tests/policy/fuzz_policy
tests_policy_fuzz_policy_SOURCES = tests/policy/fuzz_policy.c $(FUZZ_MAIN)
tests_policy_fuzz_policy_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/policy
tests_policy_fuzz_policy_CFLAGS = $(AM_CFLAGS) $(FUZZ_CFLAGS)
tests_policy_fuzz_policy_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_CFLAGS)
tests_policy_fuzz_policy_LDADD = $(POLICY_LIBS) -lpthread
TESTS += tests/policy/fuzz-replay.sh
EXTRA_DIST += tests/policy/fuzz-replay.sh tests/policy/corpus
