# System tests of brokerfs itself: policy, quotas, reload (tests/broker/),
# and the brokerfs parts they exercise: the policy files (broker_policy.c,
# linked into brokerfs only, so libbroker.a users need no libpolicy) and
# the local backend's quota accounting.
libbroker_a_SOURCES += brokerfs/local_quota.c
brokerfs_brokerfs_SOURCES += brokerfs/broker_policy.c
brokerfs_brokerfs_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/policy
brokerfs_brokerfs_LDADD += $(POLICY_LIBS)

TESTS += tests/broker/policy.sh tests/broker/policy-s3.sh
EXTRA_DIST += tests/broker/policy.sh tests/broker/policy-s3.sh tests/broker/lib.sh

# DLP in the broker: the backends' scan interface and quarantine helpers
# (libbroker.a, no scanner dependency) and the scanner brokerfs installs.
libbroker_a_SOURCES += brokerfs/dlp_scan.c brokerfs/dlp_scan.h \
	brokerfs/local_dlp.c
brokerfs_brokerfs_SOURCES += brokerfs/broker_dlp.c brokerfs/broker_dlp.h
brokerfs_brokerfs_CPPFLAGS += -I$(srcdir)/dlp
# occfsctl quarantine list|release|delete (reads --policy DIR too).
tools_occfsctl_SOURCES += tools/occfsctl_quarantine.c
tools_occfsctl_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/policy
tools_occfsctl_LDADD += $(POLICY_LIBS)
TESTS += tests/broker/dlp.sh tests/broker/dlp-s3.sh
EXTRA_DIST += tests/broker/dlp.sh tests/broker/dlp-s3.sh
EXTRA_DIST += tests/broker/dlp-throughput.sh

# A full disk under each backend (root, tmpfs; the s3 one under with-rgw).
TESTS += tests/broker/fulldisk.sh tests/broker/fulldisk-s3.sh
EXTRA_DIST += tests/broker/fulldisk.sh tests/broker/fulldisk-s3.sh

# HELLO feature grants (NOFLUSH with and without DLP, PATTR) through mountc.
TESTS += tests/rpc/features.sh
EXTRA_DIST += tests/rpc/features.sh
TESTS += tests/rpc/newdir.sh
EXTRA_DIST += tests/rpc/newdir.sh
TESTS += tests/rpc/tls-mount.sh
EXTRA_DIST += tests/rpc/tls-mount.sh
