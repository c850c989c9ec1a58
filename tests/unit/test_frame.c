/* tests/unit/test_frame.c: not yet implemented. */
