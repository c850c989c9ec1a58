/* tests/unit/test_token.c: not yet implemented. */
