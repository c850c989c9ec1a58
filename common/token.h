/*
 * token.h - session handles: Ed25519-signed JWTs (header {"alg":"EdDSA"}).
 *
 * Claims: sid, filesystem_id, tenant, intent (read|write|preview), exp, iat,
 * jti, aud.  Brokers verify with the public key only; the private key stays
 * with whoever mints (occfsctl now, the control plane later).
 */
#ifndef OCCFS_TOKEN_H
#define OCCFS_TOKEN_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define TOKEN_MAX_LEN 8192u

enum token_intent {
	TOKEN_INTENT_READ,
	TOKEN_INTENT_WRITE,
	TOKEN_INTENT_PREVIEW
};

struct token_claims {
	char sid[128];
	char filesystem_id[256];
	char tenant[128];
	char jti[128];
	char aud[128];
	enum token_intent intent;
	int64_t exp; /* seconds since the epoch */
	int64_t iat;
};

struct token_key; /* an Ed25519 public or private key */

/* Load a PEM key file.  Returns NULL with errno set and *why explained. */
struct token_key *token_key_load_public(const char *path, const char **why);
struct token_key *token_key_load_private(const char *path, const char **why);
void token_key_free(struct token_key *k);
/* Write a new key pair as PEM files (private one mode 0600). */
int token_keygen(const char *priv_path, const char *pub_path);

/*
 * Verify a compact JWT: structure, alg, signature, exp (with leeway_s of
 * clock skew), aud, claim types, intent and filesystem_id syntax.
 * Returns 0 or -EKEYREJECTED (bad/forged/malformed), -EKEYEXPIRED, -EACCES
 * (wrong audience), with *why a static human-readable reason.
 */
int token_verify(const char *jwt, size_t len, const struct token_key *pub,
		 const char *audience, time_t now, int leeway_s,
		 struct token_claims *out, const char **why);

/*
 * The claims of jwt WITHOUT checking its signature, expiry or audience:
 * for showing a client what its own handle says, never for deciding
 * anything.  Claims that are missing or malformed are left empty (0).
 * Returns 0, or -EINVAL when jwt is not a JWT with a JSON payload and a
 * valid intent.
 */
int token_peek(const char *jwt, size_t len, struct token_claims *out);

/* Sign claims into a NUL-terminated compact JWT (malloc'd, caller frees). */
int token_mint(const struct token_claims *c, const struct token_key *priv,
	       char **out);

const char *token_intent_name(enum token_intent i);
int token_intent_parse(const char *s, enum token_intent *out); /* 0/-EINVAL */

/* filesystem_id is one opaque, safe path segment. Returns 1 if valid. */
int token_fsid_valid(const char *s);

#endif
