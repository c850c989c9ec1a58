/* tests/fuzz/fuzz_token.c: not yet implemented. */
