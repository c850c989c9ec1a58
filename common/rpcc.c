/* common/rpcc.c: not yet implemented. */
