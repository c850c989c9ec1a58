# System tests of brokerfs itself: policy, quotas, reload (tests/broker/),
# and the brokerfs parts they exercise: the policy files (broker_policy.c,
# linked into brokerfs only, so libbroker.a users need no libpolicy) and
# the local backend's quota accounting.
libbroker_a_SOURCES += brokerfs/local_quota.c
brokerfs_brokerfs_SOURCES += brokerfs/broker_policy.c
brokerfs_brokerfs_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/policy
brokerfs_brokerfs_LDADD += $(POLICY_LIBS)

TESTS += tests/broker/policy.sh tests/broker/policy-s3.sh
EXTRA_DIST += tests/broker/policy.sh tests/broker/policy-s3.sh
