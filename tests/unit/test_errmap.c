/* tests/unit/test_errmap.c: not yet implemented. */
