/* tests/unit/test_transport.c: not yet implemented. */
