/*
 * occfsctl.c - the operator's command-line tool.
 *
 * It manages session handles and the DLP quarantine
 * (occfsctl_quarantine.c): it makes an Ed25519 key pair, mints a
 * handle naming one filesystem_id, and verifies a handle the way the broker
 * does.  Commands are dispatched through small tables (command, then
 * subcommand) so that the control plane's session management can be added
 * as another row rather than another tangle of string comparisons.
 *
 * Exit status: 0 success, 1 the operation failed (including a refused
 * handle), 2 usage error.
 */
#include "occfsctl_session.h"
#include "token.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "unknown"
#endif

#define EXIT_USAGE 2
#define DEFAULT_AUD "occfs"
#define DEFAULT_TTL 3600

struct occfsctl_cmd {
	const char *name;
	int (*run)(int argc, char **argv);
};

static const char *prog = "occfsctl";

static void usage_main(FILE *f)
{
	fprintf(
	    f, "usage: occfsctl [--help] [--version] COMMAND ...\n"
	       "\n"
	       "commands:\n"
	       "  token keygen   make an Ed25519 key pair for signing handles\n"
	       "  token mint     sign a session handle for one filesystem_id\n"
	       "  token verify   check a handle as the broker would\n"
	       "  quarantine     list, release or delete files DLP blocked\n"
	       "  session        sessions on occfs-controld: create, list, "
	       "destroy,\n"
	       "                 revoke, revoke-all, lift, quota, status\n"
	       "  revoke-all     the kill-switch (as 'session revoke-all')\n"
	       "\n"
	       "Run 'occfsctl COMMAND --help' for the options of a command.\n");
}

static void usage_token(FILE *f)
{
	fprintf(f,
		"usage: occfsctl token keygen --private FILE --public FILE\n"
		"       occfsctl token mint --key PRIVFILE --fsid ID\n"
		"              [--intent read|write|preview] [--ttl SECONDS | "
		"--exp EPOCH]\n"
		"              [--tenant T] [--sid S] [--aud A] [--out FILE]\n"
		"       occfsctl token verify --pubkey FILE [--aud A] "
		"[--leeway SECONDS] FILE|-\n");
}

static int usage_error(void (*usage)(FILE *), const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int usage_error(void (*usage)(FILE *), const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	usage(stderr);
	return EXIT_USAGE;
}

/* getopt's own messages would name the subcommand alone; say it fully. */
static int bad_option(char **argv)
{
	const char *arg = argv[optind - 1];

	if (optopt && optopt != '?' && optopt < 128 && arg[0] == '-' &&
	    arg[1] != '-')
		return usage_error(usage_token, "unknown option '-%c'", optopt);
	return usage_error(usage_token,
			   "unknown option or missing argument: '%s'", arg);
}

/* A key that failed to load: the reason, and the system error if any. */
static void key_error(const char *path, const char *why)
{
	if (errno && errno != EINVAL)
		fprintf(stderr, "%s: %s: %s (%s)\n", prog, path, why,
			strerror(errno));
	else
		fprintf(stderr, "%s: %s: %s\n", prog, path, why);
}

/* Strict integer option parsing: the whole string, no overflow. */
static int parse_i64(const char *s, int64_t *out)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || end == s || *end)
		return -EINVAL;
	*out = v;
	return 0;
}

/* Copy an option into a fixed claim field, refusing silent truncation. */
static int set_field(char *dst, size_t sz, const char *val, const char *what)
{
	size_t n = strlen(val), i;

	if (n == 0 || n >= sz) {
		fprintf(stderr, "%s: %s must be 1 to %zu bytes\n", prog, what,
			sz - 1);
		return -EINVAL;
	}
	for (i = 0; i < n; i++) {
		if ((unsigned char)val[i] < 0x20 || val[i] == 0x7f) {
			fprintf(stderr, "%s: %s contains control characters\n",
				prog, what);
			return -EINVAL;
		}
	}
	memcpy(dst, val, n + 1);
	return 0;
}

/* 128 random bits as 32 hex digits: a session id nobody can guess. */
static int random_id(char *dst, size_t sz)
{
	unsigned char r[16];
	size_t i;

	if (sz < 2 * sizeof(r) + 1 ||
	    getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
		return -EIO;
	for (i = 0; i < sizeof(r); i++)
		snprintf(dst + 2 * i, 3, "%02x", r[i]);
	return 0;
}

/* ---- token keygen ------------------------------------------------------- */

static int cmd_token_keygen(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"private", required_argument, NULL, 'k'},
	    {"public", required_argument, NULL, 'p'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *priv = NULL, *pub = NULL;
	int c, rc;

	while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		switch (c) {
		case 'k':
			priv = optarg;
			break;
		case 'p':
			pub = optarg;
			break;
		case 'h':
			usage_token(stdout);
			return 0;
		default:
			return bad_option(argv);
		}
	}
	if (optind != argc)
		return usage_error(usage_token, "unexpected argument '%s'",
				   argv[optind]);
	if (!priv || !pub)
		return usage_error(usage_token, "%s",
				   "keygen needs --private and --public");
	rc = token_keygen(priv, pub);
	if (rc < 0) {
		fprintf(stderr, "%s: cannot write key pair: %s\n", prog,
			strerror(-rc));
		return 1;
	}
	return 0;
}

/* ---- token mint --------------------------------------------------------- */

/* Write the handle to path, mode 0600 whatever the umask or the old mode. */
static int write_handle(const char *path, const char *jwt)
{
	size_t len = strlen(jwt), off = 0;
	ssize_t n;
	int fd, rc = 0;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
		  0600);
	if (fd < 0)
		return -errno;
	if (fchmod(fd, 0600) < 0) {
		rc = -errno;
		goto out;
	}
	while (off < len) {
		n = write(fd, jwt + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			goto out;
		}
		off += (size_t)n;
	}
	if (write(fd, "\n", 1) != 1)
		rc = -EIO;
out:
	if (close(fd) < 0 && !rc)
		rc = -errno;
	return rc;
}

struct mint_args {
	const char *key, *out;
	int64_t ttl, exp;
	int have_exp;
	struct token_claims c;
};

/* One option of "token mint": 0, EXIT_USAGE, or -1 after --help. */
static int mint_option(int c, const char *arg, struct mint_args *a, char **argv)
{
	switch (c) {
	case 'k':
		a->key = arg;
		return 0;
	case 'f':
		if (!token_fsid_valid(arg))
			return usage_error(
			    usage_token,
			    "--fsid '%s' is not a safe path segment "
			    "([A-Za-z0-9._-], alphanumeric first)",
			    arg);
		snprintf(a->c.filesystem_id, sizeof(a->c.filesystem_id), "%s",
			 arg);
		return 0;
	case 'i':
		if (token_intent_parse(arg, &a->c.intent) < 0)
			return usage_error(
			    usage_token,
			    "--intent '%s': use read, write or preview", arg);
		return 0;
	case 't':
		if (parse_i64(arg, &a->ttl) < 0 || a->ttl <= 0 ||
		    a->ttl > INT32_MAX)
			return usage_error(
			    usage_token,
			    "--ttl '%s' is not a positive number of "
			    "seconds",
			    arg);
		return 0;
	case 'e':
		if (parse_i64(arg, &a->exp) < 0)
			return usage_error(
			    usage_token,
			    "--exp '%s' is not seconds since the epoch", arg);
		a->have_exp = 1;
		return 0;
	case 'T':
		return set_field(a->c.tenant, sizeof(a->c.tenant), arg,
				 "--tenant")
			   ? EXIT_USAGE
			   : 0;
	case 's':
		return set_field(a->c.sid, sizeof(a->c.sid), arg, "--sid")
			   ? EXIT_USAGE
			   : 0;
	case 'a':
		return set_field(a->c.aud, sizeof(a->c.aud), arg, "--aud")
			   ? EXIT_USAGE
			   : 0;
	case 'o':
		a->out = arg;
		return 0;
	case 'h':
		usage_token(stdout);
		return -1;
	default:
		return bad_option(argv);
	}
}

static int mint_parse(int argc, char **argv, struct mint_args *a)
{
	static const struct option opts[] = {
	    {"key", required_argument, NULL, 'k'},
	    {"fsid", required_argument, NULL, 'f'},
	    {"intent", required_argument, NULL, 'i'},
	    {"ttl", required_argument, NULL, 't'},
	    {"exp", required_argument, NULL, 'e'},
	    {"tenant", required_argument, NULL, 'T'},
	    {"sid", required_argument, NULL, 's'},
	    {"aud", required_argument, NULL, 'a'},
	    {"out", required_argument, NULL, 'o'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int c, rc;

	while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		rc = mint_option(c, optarg, a, argv);
		if (rc)
			return rc;
	}
	if (optind != argc)
		return usage_error(usage_token, "unexpected argument '%s'",
				   argv[optind]);
	if (!a->key || !a->c.filesystem_id[0])
		return usage_error(usage_token, "%s",
				   "mint needs --key and --fsid");
	return 0;
}

static int cmd_token_mint(int argc, char **argv)
{
	struct mint_args a = {.ttl = DEFAULT_TTL};
	struct token_key *k = NULL;
	const char *why = "";
	char *jwt = NULL;
	int rc, ret = 1;

	a.c.intent = TOKEN_INTENT_WRITE;
	snprintf(a.c.tenant, sizeof(a.c.tenant), "default");
	snprintf(a.c.aud, sizeof(a.c.aud), DEFAULT_AUD);
	rc = mint_parse(argc, argv, &a);
	if (rc)
		return rc < 0 ? 0 : rc;
	if (!a.c.sid[0] && random_id(a.c.sid, sizeof(a.c.sid)) < 0) {
		fprintf(stderr, "%s: no randomness for a session id\n", prog);
		return 1;
	}
	a.c.iat = (int64_t)time(NULL);
	a.c.exp = a.have_exp ? a.exp : a.c.iat + a.ttl;
	k = token_key_load_private(a.key, &why);
	if (!k) {
		key_error(a.key, why);
		goto out;
	}
	rc = token_mint(&a.c, k, &jwt);
	if (rc < 0) {
		fprintf(stderr, "%s: cannot mint handle: %s\n", prog,
			strerror(-rc));
		goto out;
	}
	if (a.out) {
		rc = write_handle(a.out, jwt);
		if (rc < 0) {
			fprintf(stderr, "%s: %s: %s\n", prog, a.out,
				strerror(-rc));
			goto out;
		}
	} else if (printf("%s\n", jwt) < 0 || fflush(stdout) != 0) {
		fprintf(stderr, "%s: cannot write to stdout\n", prog);
		goto out;
	}
	ret = 0;
out:
	free(jwt);
	token_key_free(k);
	return ret;
}

/* ---- token verify ------------------------------------------------------- */

/*
 * Read at most TOKEN_MAX_LEN + 1 bytes so an oversized handle is refused by
 * token_verify with its own reason, and drop trailing line endings (a
 * handle file usually ends with one).
 */
static int read_handle(const char *path, char *buf, size_t sz, size_t *len)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "re");
	size_t n;
	int rc = 0;

	if (!f)
		return -errno;
	n = fread(buf, 1, sz, f);
	if (ferror(f))
		rc = -EIO;
	if (f != stdin)
		fclose(f);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		n--;
	*len = n;
	return rc;
}

static int cmd_token_verify(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"pubkey", required_argument, NULL, 'p'},
	    {"aud", required_argument, NULL, 'a'},
	    {"leeway", required_argument, NULL, 'l'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	static char buf[TOKEN_MAX_LEN + 2];
	const char *pubkey = NULL, *aud = DEFAULT_AUD, *why = "";
	struct token_claims c;
	struct token_key *k = NULL;
	int64_t leeway = 0;
	size_t len = 0;
	int opt, rc, ret = 1;

	while ((opt = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		switch (opt) {
		case 'p':
			pubkey = optarg;
			break;
		case 'a':
			aud = optarg;
			break;
		case 'l':
			if (parse_i64(optarg, &leeway) < 0 || leeway < 0 ||
			    leeway > 86400)
				return usage_error(
				    usage_token,
				    "--leeway '%s' is not 0 to 86400 "
				    "seconds",
				    optarg);
			break;
		case 'h':
			usage_token(stdout);
			return 0;
		default:
			return bad_option(argv);
		}
	}
	if (!pubkey || optind + 1 != argc)
		return usage_error(usage_token, "%s",
				   "verify needs --pubkey and one FILE or -");
	k = token_key_load_public(pubkey, &why);
	if (!k) {
		key_error(pubkey, why);
		goto out;
	}
	rc = read_handle(argv[optind], buf, sizeof(buf), &len);
	if (rc < 0) {
		fprintf(stderr, "%s: %s: %s\n", prog, argv[optind],
			strerror(-rc));
		goto out;
	}
	rc = token_verify(buf, len, k, aud, time(NULL), (int)leeway, &c, &why);
	if (rc < 0) {
		fprintf(stderr, "%s: handle refused: %s\n", prog, why);
		goto out;
	}
	printf("sid=%s filesystem_id=%s tenant=%s intent=%s exp=%" PRId64
	       " jti=%s\n",
	       c.sid, c.filesystem_id, c.tenant, token_intent_name(c.intent),
	       c.exp, c.jti);
	ret = 0;
out:
	token_key_free(k);
	return ret;
}

/* ---- dispatch ------------------------------------------------------------ */

static const struct occfsctl_cmd token_cmds[] = {
    {"keygen", cmd_token_keygen},
    {"mint", cmd_token_mint},
    {"verify", cmd_token_verify},
    {NULL, NULL},
};

/* argv[0] is the command word; the subcommand sees itself as argv[0]. */
static int dispatch(const struct occfsctl_cmd *table, int argc, char **argv,
		    void (*usage)(FILE *))
{
	const struct occfsctl_cmd *t;

	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(stdout);
		return 0;
	}
	for (t = table; t->name; t++) {
		if (strcmp(argv[1], t->name) == 0) {
			optind = 0; /* glibc: fully reset getopt state */
			opterr = 0;
			return t->run(argc - 1, argv + 1);
		}
	}
	return usage_error(usage, "unknown command '%s'", argv[1]);
}

static int cmd_token(int argc, char **argv)
{
	return dispatch(token_cmds, argc, argv, usage_token);
}

int occfsctl_quarantine(int argc, char **argv);

static const struct occfsctl_cmd main_cmds[] = {
    {"token", cmd_token},
    {"quarantine", occfsctl_quarantine}, /* occfsctl_quarantine.c */
    {"session", occfsctl_session},	 /* occfsctl_session.c */
    {"revoke-all", occfsctl_session_revoke_all},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "--version") == 0) {
		printf("occfsctl %s\n", PACKAGE_VERSION);
		return 0;
	}
	return dispatch(main_cmds, argc, argv, usage_main);
}
