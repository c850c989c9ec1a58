/*
 * token_key.c - the Ed25519 keys of session handles (see token.h): PEM
 * files read with a size bound and never with a passphrase prompt, the
 * private key refused when others can read its file, and key pairs
 * written with the private half 0600 from the start.
 */
#include "token.h"
#include "token_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#define TOKEN_KEYFILE_MAX 16384 /* a PEM key file is a few hundred bytes */

/* Never let OpenSSL prompt on a terminal for an encrypted key. */
static int token_no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

/* Read a small key file into a memory BIO (bounded; a key is tiny). */
static BIO *token_key_read(const char *path, const char **why)
{
	char *data = NULL;
	ssize_t n;
	size_t len = 0;
	BIO *bio = NULL;
	int fd, err = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		*why = "cannot open key file";
		return NULL;
	}
	data = malloc(TOKEN_KEYFILE_MAX + 1);
	if (!data) {
		err = ENOMEM;
		*why = "out of memory";
		goto out;
	}
	for (;;) {
		n = read(fd, data + len, TOKEN_KEYFILE_MAX + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err = errno;
			*why = "cannot read key file";
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > TOKEN_KEYFILE_MAX) {
			err = EFBIG;
			*why = "key file is too large to be a PEM key";
			goto out;
		}
	}
	/* BIO_new_mem_buf does not copy, so copy into a BIO that owns it. */
	bio = BIO_new(BIO_s_mem());
	if (!bio || BIO_write(bio, data, (int)len) != (int)len) {
		BIO_free(bio);
		bio = NULL;
		err = ENOMEM;
		*why = "out of memory";
	}
out:
	if (data)
		OPENSSL_cleanse(data, TOKEN_KEYFILE_MAX + 1);
	free(data);
	close(fd);
	if (err)
		errno = err;
	return bio;
}

static struct token_key *token_key_load(const char *path, int private,
					const char **why)
{
	const char *dummy;
	struct token_key *k = NULL;
	EVP_PKEY *pkey = NULL;
	BIO *bio;
	int err = EINVAL;

	if (!why)
		why = &dummy;
	bio = token_key_read(path, why);
	if (!bio)
		return NULL;
	if (private)
		pkey = PEM_read_bio_PrivateKey(bio, NULL, token_no_passphrase,
					       NULL);
	else
		pkey =
		    PEM_read_bio_PUBKEY(bio, NULL, token_no_passphrase, NULL);
	if (!pkey) {
		*why = private ? "not a PEM private key (PKCS#8)"
			       : "not a PEM public key (SubjectPublicKeyInfo)";
		goto out;
	}
	if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_ED25519) {
		*why = "key is not an Ed25519 key";
		goto out;
	}
	k = calloc(1, sizeof(*k));
	if (!k) {
		err = ENOMEM;
		*why = "out of memory";
		goto out;
	}
	k->pkey = pkey;
	k->is_private = private;
	pkey = NULL;
out:
	EVP_PKEY_free(pkey);
	BIO_free(bio);
	ERR_clear_error(); /* see token_sig_ok */
	if (!k)
		errno = err;
	return k;
}

struct token_key *token_key_load_public(const char *path, const char **why)
{
	return token_key_load(path, 0, why);
}

struct token_key *token_key_load_private(const char *path, const char **why)
{
	return token_key_load(path, 1, why);
}

void token_key_free(struct token_key *k)
{
	if (!k)
		return;
	EVP_PKEY_free(k->pkey);
	free(k);
}

/* Write PEM through fd and close it; returns 0 or -errno. */
static int token_pem_write(int fd, EVP_PKEY *pkey, int private)
{
	FILE *f = fdopen(fd, "w");
	int ok, rc;

	if (!f) {
		rc = -errno;
		close(fd);
		return rc;
	}
	if (private)
		ok = PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL);
	else
		ok = PEM_write_PUBKEY(f, pkey);
	rc = ok ? 0 : -EIO;
	if (fflush(f) != 0 && !rc)
		rc = -errno;
	if (!rc && fsync(fileno(f)) < 0)
		rc = -errno;
	if (fclose(f) != 0 && !rc)
		rc = -errno;
	return rc;
}

/*
 * Both files are created with O_EXCL: overwriting a signing key by accident
 * would invalidate every handle in circulation, and an existing file could
 * be a symlink planted by someone else.
 */
int token_keygen(const char *priv_path, const char *pub_path)
{
	EVP_PKEY *pkey = NULL;
	int pfd = -1, ufd = -1, made_priv = 0, made_pub = 0, rc;

	pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	if (!pkey)
		return -EIO;
	pfd = open(priv_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (pfd < 0) {
		rc = -errno;
		goto out;
	}
	made_priv = 1;
	ufd = open(pub_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (ufd < 0) {
		rc = -errno;
		goto out;
	}
	made_pub = 1;
	/* the umask must not widen or narrow the modes we promise */
	if (fchmod(pfd, 0600) < 0 || fchmod(ufd, 0644) < 0) {
		rc = -errno;
		goto out;
	}
	rc = token_pem_write(pfd, pkey, 1);
	pfd = -1;
	if (rc < 0)
		goto out;
	rc = token_pem_write(ufd, pkey, 0);
	ufd = -1;
out:
	if (pfd >= 0)
		close(pfd);
	if (ufd >= 0)
		close(ufd);
	if (rc < 0 && made_priv)
		unlink(priv_path);
	if (rc < 0 && made_pub)
		unlink(pub_path);
	EVP_PKEY_free(pkey);
	return rc;
}
