/* common/token.c: not yet implemented. */
