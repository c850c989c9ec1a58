/* tests/fuzz/fuzz_frame.c: not yet implemented. */
