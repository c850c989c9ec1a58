/* mountc/handle_file.c: not yet implemented. */
