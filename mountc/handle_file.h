/* mountc/handle_file.h */
