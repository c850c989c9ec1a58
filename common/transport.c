/* common/transport.c: not yet implemented. */
