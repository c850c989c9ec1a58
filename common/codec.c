/* common/codec.c: not yet implemented. */
