/* mountc/main.c: not yet implemented. */
