/* tests/unit/test_buf.c: not yet implemented. */
