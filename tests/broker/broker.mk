# System tests of brokerfs itself: policy, quotas, reload (tests/broker/).
