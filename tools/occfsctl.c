/* tools/occfsctl.c: not yet implemented. */
