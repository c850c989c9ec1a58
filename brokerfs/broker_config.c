/*
 * broker_config.c - brokerfs options from the command line and a file.
 *
 * Every option has one long name; the optional file (-c FILE) holds
 * "name = value" lines using the same names, so there is one list of
 * settings to document.  The command line wins over the file: the file is
 * read after argv and only fills what argv left unset.  Problems in the file
 * are reported as "file:line: message".
 */
#include "broker.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "backend.h"
#include "broker_audit.h"

enum opt_type {
	T_STR,
	T_LIST,
	T_UINT,
	T_MODE,
	T_FLAG,
	T_INTENT,
	T_CONFIG,
	T_HELP
};

struct opt {
	const char *name;
	int shortc;
	enum opt_type type;
	size_t off;
	unsigned min, max; /* T_UINT */
};

#define CFG(f) offsetof(struct broker_config, f)

static const struct opt config_opts[] = {
    {"listen", 0, T_LIST, 0, 0, 0},
    {"root", 0, T_STR, CFG(root), 0, 0},
    {"token-pubkey", 0, T_STR, CFG(token_pubkey), 0, 0},
    {"audience", 0, T_STR, CFG(audience), 0, 0},
    {"tls-cert", 0, T_STR, CFG(tls_cert), 0, 0},
    {"tls-key", 0, T_STR, CFG(tls_key), 0, 0},
    {"workers", 0, T_UINT, CFG(workers), 2, 256},
    {"max-inflight", 0, T_UINT, CFG(max_inflight), 1, 4096},
    {"max-conns", 0, T_UINT, CFG(max_conns), 1, 65536},
    {"no-splice", 0, T_FLAG, CFG(no_splice), 0, 0},
    {"poll-us", 0, T_UINT, CFG(poll_us), 0, 1000},
    {"socket-mode", 0, T_MODE, CFG(socket_mode), 0, 0},
    {"pidfile", 0, T_STR, CFG(pidfile), 0, 0},
    {"foreground", 'f', T_FLAG, CFG(foreground), 0, 0},
    {"verbose", 'v', T_FLAG, CFG(verbose), 0, 0},
    {"check", 'n', T_FLAG, CFG(check_only), 0, 0},
    {"fuse", 0, T_STR, CFG(fuse_mountpoint), 0, 0},
    {"fsid", 0, T_STR, CFG(fuse_fsid), 0, 0},
    {"fuse-opts", 0, T_STR, CFG(fuse_opts), 0, 0},
    {"intent", 0, T_INTENT, CFG(fuse_intent), 0, 0},
    {"policy", 0, T_STR, CFG(policy_dir), 0, 0},
    {"backend", 0, T_STR, CFG(backend), 0, 0},
    {"staging-dir", 0, T_STR, CFG(staging_dir), 0, 0},
    {"flush-timeout", 0, T_UINT, CFG(flush_timeout_ms), 0, 3600000},
    {"s3-endpoint", 0, T_STR, CFG(s3.endpoint), 0, 0},
    {"s3-region", 0, T_STR, CFG(s3.region), 0, 0},
    {"s3-bucket", 0, T_STR, CFG(s3.bucket), 0, 0},
    {"s3-prefix", 0, T_STR, CFG(s3.prefix), 0, 0},
    {"s3-addressing", 0, T_STR, CFG(s3.addressing), 0, 0},
    {"s3-ca-file", 0, T_STR, CFG(s3.ca_file), 0, 0},
    {"s3-credentials", 0, T_STR, CFG(s3.credentials), 0, 0},
    {"s3-sts-endpoint", 0, T_STR, CFG(s3.sts_endpoint), 0, 0},
    {"s3-role-arn", 0, T_STR, CFG(s3.role_arn), 0, 0},
    {"s3-proxy", 0, T_STR, CFG(s3.proxy), 0, 0},
    {"s3-memory", 0, T_UINT, CFG(s3.memory_mib), 16, 65536},
    {"s3-part-size", 0, T_UINT, CFG(s3.part_mib), 5, 5120},
    {"s3-upload-threads", 0, T_UINT, CFG(s3.upload_threads), 1, 64},
    {"s3-retry-budget", 0, T_UINT, CFG(s3.retry_budget_ms), 100, 3600000},
    {"s3-rgw-quirks", 0, T_FLAG, CFG(s3.rgw_quirks), 0, 0},
    {"audit-socket", 0, T_STR, CFG(audit_socket), 0, 0},
    {"audit-spool", 0, T_STR, CFG(audit_spool), 0, 0},
    {"audit-rw", 0, T_STR, CFG(audit_rw), 0, 0},
    {"control-socket", 0, T_STR, CFG(control_socket), 0, 0},
    {"config", 'c', T_CONFIG, 0, 0, 0},
    {"help", 'h', T_HELP, 0, 0, 0},
};

#define NOPTS (sizeof(config_opts) / sizeof(config_opts[0]))

static void config_usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: brokerfs [-fnv] [-c FILE] [--listen EP]... [--root DIR]\n"
	    "                [--token-pubkey FILE] [--audience A]\n"
	    "                [--tls-cert FILE --tls-key FILE] [--workers N]\n"
	    "                [--max-inflight N] [--max-conns N]\n"
	    "                [--socket-mode OCTAL] [--pidfile FILE] [--policy "
	    "DIR]\n"
	    "                [--fuse MOUNTPOINT --fsid ID [--fuse-opts OPTS]\n"
	    "                 [--intent read|write|preview]]\n"
	    "\n"
	    "  --listen EP         unix:/path, vsock:CID:PORT or "
	    "tls:HOST:PORT\n"
	    "                      (repeatable; default %s)\n"
	    "  --root DIR          local backend root (default %s)\n"
	    "  --token-pubkey FILE Ed25519 public key verifying handles\n"
	    "  --audience A        audience handles must name (default %s)\n"
	    "  --tls-cert, --tls-key  certificate and key for tls: listeners\n"
	    "  --workers N         backend threads (default 2 x CPUs)\n"
	    "  --max-inflight N    requests outstanding per connection (%u)\n"
	    "  --max-conns N       connections at once (%u)\n"
	    "  --socket-mode OCTAL mode of unix sockets (default %04o)\n"
	    "  --no-splice         copy READ payloads through memory instead\n"
	    "                      of splicing them from file to socket\n"
	    "  --poll-us N         poll for the next request this long\n"
	    "                      before sleeping (default %u; 0 = never)\n"
	    "  --pidfile FILE      write the daemon's pid there\n"
	    "  --fuse MOUNTPOINT   also mount filesystem --fsid on this host\n"
	    "  --policy DIR        serve the filesystems of the policy files\n"
	    "                      in DIR (backends, intents, quotas, token\n"
	    "                      key and audience); SIGHUP reloads them\n"
	    "  --backend NAME      local (default) or s3; s3 takes the --s3-*\n"
	    "                      settings, see brokerfs(8)\n"
	    "  --staging-dir DIR   s3: files being written (default %s)\n"
	    "  --flush-timeout MS  at shutdown, time to upload (default %u)\n"
	    "  --audit-socket PATH occfs-auditd's socket (default: no audit)\n"
	    "  --audit-spool DIR   audit spool "
	    "(default " BROKER_AUDIT_DEFAULT_SPOOL ")\n"
	    "  --audit-rw MODE     reads and writes: each, aggregate:MS or\n"
	    "                      sample:N (default " BROKER_AUDIT_DEFAULT_RW
	    ")\n"
	    "  --control-socket PATH  occfs-controld: revocations, "
	    "kill-switch\n"
	    "                      (default: none; new sessions refused while\n"
	    "                      it is unreachable)\n"
	    "  -c, --config FILE   read name = value settings from FILE\n"
	    "  -f, --foreground    do not daemonize; log to stderr\n"
	    "  -n, --check         check the configuration and exit\n"
	    "  -v, --verbose       debug logging\n"
	    "  -h, --help          this text\n",
	    BROKER_DEFAULT_LISTEN, BROKER_DEFAULT_ROOT, BROKER_DEFAULT_AUDIENCE,
	    BROKER_DEFAULT_INFLIGHT, BROKER_DEFAULT_CONNS,
	    BROKER_DEFAULT_SOCKMODE, BROKER_DEFAULT_POLL_US,
	    BROKER_DEFAULT_STAGING, BROKER_DEFAULT_FLUSH_MS);
}

static int parse_uint(const char *s, unsigned long max, unsigned long *out,
		      int base)
{
	char *end;

	if (!*s || *s == '-' || *s == '+')
		return -1;
	errno = 0;
	*out = strtoul(s, &end, base);
	return errno || *end || *out > max ? -1 : 0;
}

static int parse_bool(const char *s, int *out)
{
	static const char *const yes[] = {"yes", "true", "on", "1"};
	static const char *const no[] = {"no", "false", "off", "0"};
	size_t i;

	for (i = 0; i < 4; i++) {
		if (strcasecmp(s, yes[i]) == 0)
			return *out = 1, 0;
		if (strcasecmp(s, no[i]) == 0)
			return *out = 0, 0;
	}
	return -1;
}

/* Apply one setting; on error write a message into err and return -1. */
static int config_set(struct broker_config *cfg, const struct opt *o,
		      const char *val, char *err, size_t errlen)
{
	char *base = (char *)cfg, **sp;
	unsigned long v;
	int flag;

	switch (o->type) {
	case T_LIST:
		if (cfg->nlisten == BROKER_MAX_LISTEN) {
			snprintf(err, errlen, "at most %d listen endpoints",
				 BROKER_MAX_LISTEN);
			return -1;
		}
		cfg->listen[cfg->nlisten++] = strdup(val);
		return 0;
	case T_STR:
		sp = (char **)(base + o->off);
		if (!*val) {
			snprintf(err, errlen, "%s: empty value", o->name);
			return -1;
		}
		free(*sp);
		*sp = strdup(val);
		return 0;
	case T_UINT:
		if (parse_uint(val, o->max, &v, 10) || v < o->min) {
			snprintf(err, errlen,
				 "%s: expected a number from %u to %u", o->name,
				 o->min, o->max);
			return -1;
		}
		*(unsigned *)(base + o->off) = (unsigned)v;
		return 0;
	case T_MODE:
		if (parse_uint(val, 0777, &v, 8)) {
			snprintf(err, errlen, "%s: expected an octal mode",
				 o->name);
			return -1;
		}
		*(unsigned *)(base + o->off) = (unsigned)v;
		return 0;
	case T_FLAG:
		if (parse_bool(val, &flag)) {
			snprintf(err, errlen, "%s: expected yes or no",
				 o->name);
			return -1;
		}
		*(int *)(base + o->off) = flag;
		return 0;
	case T_INTENT:
		if (token_intent_parse(val, &cfg->fuse_intent)) {
			snprintf(err, errlen,
				 "%s: expected read, write or preview",
				 o->name);
			return -1;
		}
		return 0;
	default:
		snprintf(err, errlen, "%s: not allowed here", o->name);
		return -1;
	}
}

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' ||
			 e[-1] == '\r'))
		*--e = '\0';
	return s;
}

/* Read the file, applying only settings argv did not give. */
static int config_file(struct broker_config *cfg, const char *path,
		       const int *set)
{
	char line[1024], err[256], *key, *val, *eq;
	unsigned lineno = 0;
	size_t i;
	FILE *f;
	int rc = 0;

	f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "brokerfs: %s: %s\n", path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		lineno++;
		if (!strchr(line, '\n') && !feof(f)) {
			fprintf(stderr, "%s:%u: line too long\n", path, lineno);
			rc = -1;
			break;
		}
		key = trim(line);
		if (!*key || *key == '#')
			continue;
		eq = strchr(key, '=');
		if (!eq) {
			fprintf(stderr, "%s:%u: expected name = value\n", path,
				lineno);
			rc = -1;
			continue;
		}
		*eq = '\0';
		key = trim(key);
		val = trim(eq + 1);
		for (i = 0; i < NOPTS; i++)
			if (strcmp(key, config_opts[i].name) == 0)
				break;
		if (i == NOPTS || config_opts[i].type >= T_CONFIG ||
		    config_opts[i].off == CFG(check_only)) {
			fprintf(stderr, "%s:%u: unknown setting '%s'\n", path,
				lineno, key);
			rc = -1;
			continue;
		}
		if (set[i])
			continue;
		if (config_set(cfg, &config_opts[i], val, err, sizeof(err))) {
			fprintf(stderr, "%s:%u: %s\n", path, lineno, err);
			rc = -1;
		}
	}
	fclose(f);
	return rc;
}

/* Relative paths would break once the daemon changes to "/". */
static int absolutize(char **p)
{
	char cwd[PATH_MAX], *n;

	if (!*p || **p == '/')
		return 0;
	if (!getcwd(cwd, sizeof(cwd)) || asprintf(&n, "%s/%s", cwd, *p) < 0)
		return -1;
	free(*p);
	*p = n;
	return 0;
}

static unsigned default_workers(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	n = n > 0 ? 2 * n : 2;
	return n < 2 ? 2 : n > 256 ? 256 : (unsigned)n;
}

static int config_validate(struct broker_config *cfg)
{
	const char *why;
	size_t i;
	int tls = 0;

	if (!cfg->nlisten && !cfg->fuse_mountpoint)
		cfg->listen[cfg->nlisten++] = strdup(BROKER_DEFAULT_LISTEN);
	for (i = 0; i < cfg->nlisten; i++) {
		if (!cfg->listen[i] ||
		    transport_parse(cfg->listen[i], &cfg->eps[i], &why)) {
			fprintf(stderr, "brokerfs: listen %s: %s\n",
				cfg->listen[i] ? cfg->listen[i] : "?", why);
			return -1;
		}
		tls |= cfg->eps[i].kind == TRANSPORT_TLS;
	}
	if (tls && (!cfg->tls_cert || !cfg->tls_key)) {
		fprintf(stderr, "brokerfs: a tls: endpoint needs --tls-cert "
				"and --tls-key\n");
		return -1;
	}
	/* With a policy the key may come from its tokens section: main
	 * checks once the policy is loaded. */
	if (cfg->nlisten && !cfg->token_pubkey && !cfg->policy_dir) {
		fprintf(stderr, "brokerfs: --token-pubkey is required to "
				"accept connections\n");
		return -1;
	}
	if (!cfg->fuse_mountpoint != !cfg->fuse_fsid) {
		fprintf(stderr, "brokerfs: --fuse and --fsid go together\n");
		return -1;
	}
	if (cfg->fuse_fsid && !token_fsid_valid(cfg->fuse_fsid)) {
		fprintf(stderr,
			"brokerfs: --fsid %s: not a valid "
			"filesystem_id\n",
			cfg->fuse_fsid);
		return -1;
	}
	if (!cfg->backend)
		cfg->backend = strdup(BROKER_DEFAULT_BACKEND);
	if (!backend_find(cfg->backend)) {
		fprintf(stderr, "brokerfs: --backend %s: unknown (local, s3)\n",
			cfg->backend);
		return -1;
	}
	if (!cfg->staging_dir)
		cfg->staging_dir = strdup(BROKER_DEFAULT_STAGING);
	if (!cfg->root)
		cfg->root = strdup(BROKER_DEFAULT_ROOT);
	if (!cfg->audience && !cfg->policy_dir)
		cfg->audience = strdup(BROKER_DEFAULT_AUDIENCE);
	if (!cfg->workers)
		cfg->workers = default_workers();
	if (absolutize(&cfg->root) || absolutize(&cfg->pidfile) ||
	    absolutize(&cfg->fuse_mountpoint) ||
	    absolutize(&cfg->token_pubkey) || absolutize(&cfg->tls_cert) ||
	    absolutize(&cfg->tls_key) || absolutize(&cfg->staging_dir) ||
	    absolutize(&cfg->s3.ca_file) || absolutize(&cfg->s3.credentials) ||
	    absolutize(&cfg->policy_dir)) {
		fprintf(stderr, "brokerfs: cannot resolve relative paths\n");
		return -1;
	}
	if (absolutize(&cfg->audit_socket) || absolutize(&cfg->audit_spool) ||
	    absolutize(&cfg->control_socket)) {
		fprintf(stderr, "brokerfs: cannot resolve relative paths\n");
		return -1;
	}
	return 0;
}

static void config_longopts(struct option *lo, char *shorts)
{
	size_t i;

	for (i = 0; i < NOPTS; i++) {
		const struct opt *o = &config_opts[i];
		int arg = o->type != T_FLAG && o->type != T_HELP;

		lo[i] = (struct option){o->name,
					arg ? required_argument : no_argument,
					NULL, 256 + (int)i};
		if (o->shortc) {
			*shorts++ = (char)o->shortc;
			if (arg)
				*shorts++ = ':';
		}
	}
	memset(&lo[NOPTS], 0, sizeof(lo[NOPTS]));
	*shorts = '\0';
}

int broker_config_load(struct broker_config *cfg, int argc, char **argv)
{
	struct option lo[NOPTS + 1];
	char shorts[2 * NOPTS + 1], err[256];
	int set[NOPTS] = {0}, ch;
	const struct opt *o;
	size_t i;

	memset(cfg, 0, sizeof(*cfg));
	cfg->max_inflight = BROKER_DEFAULT_INFLIGHT;
	cfg->poll_us = BROKER_DEFAULT_POLL_US;
	cfg->max_conns = BROKER_DEFAULT_CONNS;
	cfg->socket_mode = BROKER_DEFAULT_SOCKMODE;
	cfg->fuse_intent = TOKEN_INTENT_WRITE;
	cfg->flush_timeout_ms = BROKER_DEFAULT_FLUSH_MS;
	config_longopts(lo, shorts);
	optind = 1;
	while ((ch = getopt_long(argc, argv, shorts, lo, NULL)) != -1) {
		if (ch == '?') {
			config_usage(stderr);
			return -1;
		}
		for (i = 0; i < NOPTS; i++)
			if (ch == 256 + (int)i || ch == config_opts[i].shortc)
				break;
		o = &config_opts[i];
		set[i] = 1;
		if (o->type == T_HELP) {
			config_usage(stdout);
			return 1;
		}
		if (o->type == T_CONFIG) {
			cfg->config_file = optarg;
			continue;
		}
		if (config_set(cfg, o, o->type == T_FLAG ? "1" : optarg, err,
			       sizeof(err))) {
			fprintf(stderr, "brokerfs: %s\n", err);
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "brokerfs: unexpected argument '%s'\n",
			argv[optind]);
		config_usage(stderr);
		return -1;
	}
	if (cfg->config_file && config_file(cfg, cfg->config_file, set))
		return -1;
	return config_validate(cfg);
}

static int check_tls(const struct broker_config *cfg)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	char msg[256] = "";
	int rc = -1;

	if (!ctx)
		return -1;
	if (SSL_CTX_use_certificate_chain_file(ctx, cfg->tls_cert) != 1)
		snprintf(msg, sizeof(msg), "TLS certificate %s", cfg->tls_cert);
	else if (SSL_CTX_use_PrivateKey_file(ctx, cfg->tls_key,
					     SSL_FILETYPE_PEM) != 1)
		snprintf(msg, sizeof(msg), "TLS key %s", cfg->tls_key);
	else if (SSL_CTX_check_private_key(ctx) != 1)
		snprintf(msg, sizeof(msg), "TLS key %s does not match %s",
			 cfg->tls_key, cfg->tls_cert);
	else
		rc = 0;
	if (rc) {
		char e[160];

		ERR_error_string_n(ERR_peek_last_error(), e, sizeof(e));
		fprintf(stderr, "brokerfs: %s: %s\n", msg, e);
	}
	ERR_clear_error();
	SSL_CTX_free(ctx);
	return rc;
}

int broker_config_check(const struct broker_config *cfg)
{
	struct token_key *k;
	const char *why = NULL;
	struct stat st;

	/* With a policy each filesystem entry names its own backend. */
	if (!cfg->policy_dir && backend_find(cfg->backend)->check(cfg))
		return -1;
	if (broker_audit_check(cfg))
		return -1;
	if (cfg->token_pubkey) {
		k = token_key_load_public(cfg->token_pubkey, &why);
		if (!k) {
			fprintf(stderr, "brokerfs: token key %s: %s\n",
				cfg->token_pubkey, why ? why : strerror(errno));
			return -1;
		}
		token_key_free(k);
	}
	if (cfg->tls_cert && cfg->tls_key && check_tls(cfg))
		return -1;
	if (cfg->fuse_mountpoint &&
	    (stat(cfg->fuse_mountpoint, &st) < 0 || !S_ISDIR(st.st_mode))) {
		fprintf(stderr, "brokerfs: mount point %s: not a directory\n",
			cfg->fuse_mountpoint);
		return -1;
	}
	return 0;
}

void broker_config_cleanup(struct broker_config *cfg)
{
	size_t i;

	for (i = 0; i < cfg->nlisten; i++)
		free(cfg->listen[i]);
	free(cfg->root);
	free(cfg->token_pubkey);
	free(cfg->audience);
	free(cfg->tls_cert);
	free(cfg->tls_key);
	free(cfg->pidfile);
	free(cfg->fuse_mountpoint);
	free(cfg->fuse_fsid);
	free(cfg->fuse_opts);
	free(cfg->policy_dir);
	free(cfg->backend);
	free(cfg->staging_dir);
	free(cfg->s3.endpoint);
	free(cfg->s3.region);
	free(cfg->s3.bucket);
	free(cfg->s3.prefix);
	free(cfg->s3.addressing);
	free(cfg->s3.ca_file);
	free(cfg->s3.credentials);
	free(cfg->s3.sts_endpoint);
	free(cfg->s3.role_arn);
	free(cfg->s3.proxy);
	free(cfg->audit_socket);
	free(cfg->audit_spool);
	free(cfg->audit_rw);
	free(cfg->audit_read);
	free(cfg->audit_write);
	free(cfg->control_socket);
	memset(cfg, 0, sizeof(*cfg));
}
