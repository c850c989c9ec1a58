/* tests/fuzz/replay_main.c: not yet implemented. */
