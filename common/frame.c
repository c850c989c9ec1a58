/* common/frame.c: not yet implemented. */
