/*
 * main.c - brokerfs: the occfs storage broker.
 *
 * Start-up order matters: configuration, keys and listeners are set up
 * while stderr is still the terminal, so every start-up error reaches the
 * operator.  Then the process forks (unless -f); the parent waits on a pipe
 * until the child says it is serving (or why it is not) and exits with the
 * matching status.  Threads are only started after the fork.
 */
#include "broker.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "backend.h"
#include "broker_audit.h"
#include "buf.h"
#include "daemon.h"
#include "log.h"

static volatile int main_failed; /* start-up failed after forking */

/* Tell the waiting parent how start-up went (see daemon.h). */
static int main_ready(int ok, const char *msg)
{
	if (!ok)
		main_failed = 1;
	/* Nobody heard that we are up: do not run on unseen. */
	if (daemon_ready(ok ? NULL : msg) < 0 && ok)
		kill(getpid(), SIGTERM);
	return 0;
}

static int main_pidfile(const char *path)
{
	FILE *f = fopen(path, "we");

	if (!f) {
		fprintf(stderr, "brokerfs: pidfile %s: %s\n", path,
			strerror(errno));
		return -1;
	}
	fprintf(f, "%d\n", (int)getpid());
	return fclose(f) ? -1 : 0;
}

/* --fuse: the internal connection and the mount thread. */
static int main_fuse(struct broker *b, const struct broker_config *cfg)
{
	int sv[2], rc;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	if (!conn_new_internal(b, sv[0], cfg->fuse_fsid, cfg->fuse_intent)) {
		close(sv[0]);
		close(sv[1]);
		return -ENOMEM;
	}
	b->on_stop = fuse_local_stop;
	rc = fuse_local_start(cfg, sv[1], main_ready);
	if (rc)
		close(sv[1]);
	return rc;
}

/*
 * After the loop ended every session is closed, unless a worker never came
 * back from the backend; then the backend is left as it is (exit frees it)
 * and its pending data stays staged for the next start.
 */
static void main_stop_backend(struct broker *b, const struct broker_config *cfg)
{
	int left;

	if (b->abandoned)
		return;
	if (b->policy) {
		left = broker_policy_stop(b->policy, cfg->flush_timeout_ms);
	} else if (b->backend) {
		left = b->bops->stop(b->backend, cfg->flush_timeout_ms);
		b->backend = NULL;
	} else {
		return;
	}
	if (left > 0)
		log_warn("%d objects not flushed within %u ms; kept for the "
			 "next start",
			 left, cfg->flush_timeout_ms);
	else if (left < 0)
		log_warn("backend stop: %s", strerror(-left));
}

int main(int argc, char **argv)
{
	struct broker_config cfg;
	struct broker_policy *bp = NULL;
	struct token_key *key = NULL;
	const char *why = NULL;
	struct broker b;
	int rc;

	buf_keep_payload_memory();
	rc = broker_config_load(&cfg, argc, argv);
	if (rc)
		return rc > 0 ? 0 : 1;
	log_init("brokerfs", cfg.verbose);
	if (cfg.policy_dir && !(bp = broker_policy_load(&cfg)))
		goto fail_early;
	if (cfg.nlisten && !cfg.token_pubkey) {
		fprintf(stderr,
			"brokerfs: --token-pubkey (or tokens.public_key "
			"in the policy) is required to accept "
			"connections\n");
		goto fail_early;
	}
	if (broker_config_check(&cfg) || (bp && broker_policy_check(bp)))
		goto fail_early;
	if (cfg.check_only) {
		printf("brokerfs: configuration OK\n");
		broker_policy_free(bp);
		broker_config_cleanup(&cfg);
		return 0;
	}
	if (cfg.token_pubkey) {
		key = token_key_load_public(cfg.token_pubkey, &why);
		if (!key)
			fatal("token key %s: %s", cfg.token_pubkey, why);
	}
	signal(SIGPIPE, SIG_IGN);
	if (broker_listen(&b, &cfg)) {
		broker_cleanup(&b);
		return 1;
	}
	if (!cfg.foreground)
		daemon_start("brokerfs");
	if (cfg.pidfile && main_pidfile(cfg.pidfile)) {
		main_ready(0, "cannot write the pidfile");
		broker_cleanup(&b);
		return 1;
	}
	b.bops = backend_find(cfg.backend);
	b.policy = bp;
	rc = broker_init(&b, key);
	if (!rc)
		rc = broker_audit_open(&cfg);
	if (!rc && bp) {
		session_use_policy(bp);
		rc = broker_policy_start(bp);
	} else if (!rc) {
		rc = b.bops->start(&cfg, &b.backend);
	}
	if (!rc && cfg.fuse_mountpoint)
		rc = main_fuse(&b, &cfg);
	if (rc) {
		char msg[128];

		snprintf(msg, sizeof(msg), "start-up failed: %s",
			 strerror(-rc));
		main_ready(0, msg);
		if (bp)
			broker_policy_stop(bp, 0);
		rc = 1;
		goto out;
	}
	if (!cfg.fuse_mountpoint)
		main_ready(1, NULL);
	broker_run(&b);
	rc = main_failed ? 1 : 0;
	main_stop_backend(&b, &cfg);
out:
	broker_cleanup(&b);
	broker_audit_close(b.abandoned);
	fuse_local_join();
	if (cfg.pidfile)
		unlink(cfg.pidfile);
	token_key_free(key);
	broker_policy_free(bp);
	broker_config_cleanup(&cfg);
	return rc;
fail_early:
	broker_policy_free(bp);
	broker_config_cleanup(&cfg);
	return 1;
}
