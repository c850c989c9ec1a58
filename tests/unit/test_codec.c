/* tests/unit/test_codec.c: not yet implemented. */
