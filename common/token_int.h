/*
 * token_int.h - what token.c (handles) and token_key.c (keys) share: the
 * key object behind the opaque struct token_key of token.h.
 */
#ifndef OCCFS_TOKEN_INT_H
#define OCCFS_TOKEN_INT_H

#include <openssl/evp.h>

struct token_key {
	EVP_PKEY *pkey;
	int is_private;
};

#endif
