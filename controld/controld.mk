# occfs-controld: sessions, denylist, kill-switch; the broker control link.
# The control plane's wire format (controld/ctl_wire.h) is one small
# library shared by occfs-controld, occfsctl and brokerfs.
noinst_LIBRARIES += libctlwire.a
libctlwire_a_SOURCES = controld/ctl_wire.h controld/ctl_wire.c
libctlwire_a_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)

bin_PROGRAMS += controld/occfs-controld
controld_occfs_controld_SOURCES = controld/controld.h controld/controld.c \
	controld/ctld_store.c controld/ctld_ops.c controld/ctld_brokers.c
controld_occfs_controld_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/policy \
	-I$(srcdir)/audit -I$(srcdir)/controld
controld_occfs_controld_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS) $(SQLITE_CFLAGS)
controld_occfs_controld_LDADD = libctlwire.a $(POLICY_LIBS) $(AUDIT_LIBS) \
	$(SQLITE_LIBS)

# The broker's side of the control link (linked into brokerfs only, like
# broker_policy.c: loop.c and session.c call it).
brokerfs_brokerfs_SOURCES += brokerfs/broker_control.h brokerfs/broker_control.c
brokerfs_brokerfs_CPPFLAGS += -I$(srcdir)/controld
brokerfs_brokerfs_CFLAGS += $(JANSSON_CFLAGS)
brokerfs_brokerfs_LDADD += libctlwire.a libocccommon.a $(JANSSON_LIBS)

# occfsctl session ...: the operator's client of the socket.
tools_occfsctl_SOURCES += tools/occfsctl_session.h tools/occfsctl_session.c
tools_occfsctl_CPPFLAGS += -I$(srcdir)/controld
tools_occfsctl_LDADD += libctlwire.a libocccommon.a $(JANSSON_LIBS)

# System tests: real occfs-controld, brokerfs and mountc mounts (root).
CONTROLD_TESTS = tests/controld/lifecycle.sh tests/controld/killswitch.sh \
	tests/controld/access.sh tests/controld/linkdown.sh \
	tests/controld/destroy-s3.sh
TESTS += $(CONTROLD_TESTS)
EXTRA_DIST += $(CONTROLD_TESTS) tests/controld/lib.sh

dist_man_MANS += man/occfs-controld.8
dist_doc_DATA += doc/control-plane.md

# The wire decoder is a trust boundary: a fuzz target, replayed by make check.
check_PROGRAMS += tests/fuzz/fuzz_ctlwire
# ctl_wire.c is compiled into the target itself so that libFuzzer sees its
# coverage.
tests_fuzz_fuzz_ctlwire_SOURCES = tests/fuzz/fuzz_ctlwire.c \
	controld/ctl_wire.c $(FUZZ_MAIN)
tests_fuzz_fuzz_ctlwire_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/controld
tests_fuzz_fuzz_ctlwire_CFLAGS = $(AM_CFLAGS) $(FUZZ_CFLAGS) $(JANSSON_CFLAGS)
tests_fuzz_fuzz_ctlwire_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_CFLAGS)
tests_fuzz_fuzz_ctlwire_LDADD = libocccommon.a $(JANSSON_LIBS)
