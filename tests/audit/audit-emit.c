/*
 * audit-emit.c - drives the audit emitter library from test scripts, as a
 * daemon would: one struct audit, events emitted step by step.
 *
 *   audit-emit --spool DIR [--socket PATH] [--max BYTES] [--product NAME]
 *              [--policy drop|fail] [--op OP=MODE] STEP...
 *
 * Steps: file:N[:SID[:FSID]] (N file events of mixed operations; prints
 * the slowest call), spread:N:MS (N events over MS milliseconds), read:N:PATH
 * (N successful 100-byte reads of one path), deny:PATH (a refused write),
 * auth:pass|fail, auths:N (until one fails), api, finding, flush:MS, stats,
 * sleep:MS, wait:PATH (until the file exists).  Each step prints one line.
 */
#include "audit.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void file_event(struct audit_file_event *ev, unsigned i, const char *sid,
		       const char *fsid, char *path)
{
	static const enum audit_file_op ops[] = {
	    AUDIT_OP_CREATE,  AUDIT_OP_WRITE,  AUDIT_OP_READ,
	    AUDIT_OP_SETATTR, AUDIT_OP_RENAME, AUDIT_OP_UNLINK};

	memset(ev, 0, sizeof(*ev));
	snprintf(path, 64, "dir/file-%u", i);
	ev->actor.has_cred = 1;
	ev->actor.uid = 1000;
	ev->actor.gid = 1000;
	ev->actor.pid = getpid();
	ev->actor.peer = "unix:pid=1";
	ev->sid = sid;
	ev->fsid = fsid;
	ev->intent = "write";
	ev->op = ops[i % 6];
	ev->path = path;
	ev->new_path = ev->op == AUDIT_OP_RENAME ? "dir/renamed" : NULL;
	ev->bytes =
	    ev->op == AUDIT_OP_WRITE || ev->op == AUDIT_OP_READ ? 4096 : 0;
}

/* Emit n events over ms milliseconds; print the slowest call. */
static void emit_files(struct audit *a, unsigned n, unsigned ms,
		       const char *sid, const char *fsid)
{
	struct audit_file_event ev;
	uint64_t t, worst = 0, start = now_us();
	char path[64];
	unsigned i, fails = 0;

	for (i = 0; i < n; i++) {
		file_event(&ev, i, sid, fsid, path);
		t = now_us();
		if (audit_emit_file(a, &ev) < 0)
			fails++;
		t = now_us() - t;
		if (t > worst)
			worst = t;
		if (ms && n)
			while (now_us() - start <
			       (uint64_t)ms * 1000 * (i + 1) / n)
				usleep(1000);
	}
	printf("file %u failed=%u max_us=%llu\n", n, fails,
	       (unsigned long long)worst);
}

static void emit_reads(struct audit *a, unsigned n, const char *path)
{
	struct audit_file_event ev;
	unsigned i;
	int r = 0;

	for (i = 0; i < n && r == 0; i++) {
		memset(&ev, 0, sizeof(ev));
		ev.actor.has_cred = 1;
		ev.actor.uid = 1000;
		ev.sid = "s-read";
		ev.fsid = "fs-read";
		ev.op = AUDIT_OP_READ;
		ev.path = path;
		ev.bytes = 100;
		r = audit_emit_file(a, &ev);
	}
	printf("read %u r=%d\n", n, r);
}

static int step(struct audit *a, char *s)
{
	struct audit_auth_event au = {0};
	struct audit_api_event api = {0};
	struct audit_finding_event fi = {0};
	struct audit_file_event ev = {0};
	struct audit_stats st;
	char *arg = strchr(s, ':'), *sid = "s1", *fsid = "fs1", *p;
	struct stat sb;
	int i;

	if (arg)
		*arg++ = 0;
	if (strcmp(s, "file") == 0 || strcmp(s, "spread") == 0) {
		unsigned n = strtoul(arg ? arg : "1", &p, 10), ms = 0;

		if (strcmp(s, "spread") == 0 && *p == ':')
			ms = strtoul(p + 1, &p, 10);
		else if (*p == ':') {
			sid = strtok(p + 1, ":");
			fsid = strtok(NULL, ":");
			fsid = fsid ? fsid : "fs1";
		}
		emit_files(a, n, ms, sid, fsid);
	} else if (strcmp(s, "read") == 0 && arg && (p = strchr(arg, ':'))) {
		*p++ = 0;
		emit_reads(a, strtoul(arg, NULL, 10), p);
	} else if (strcmp(s, "deny") == 0 && arg) {
		ev.sid = "s-read";
		ev.fsid = "fs-read";
		ev.op = AUDIT_OP_WRITE;
		ev.path = arg;
		ev.err = EACCES;
		printf("deny r=%d\n", audit_emit_file(a, &ev));
	} else if (strcmp(s, "auth") == 0) {
		au.activity = AUDIT_AUTH_LOGON;
		au.peer.peer = "unix:pid=7";
		au.sid = "s1";
		au.fsid = "fs1";
		au.tenant = "acme";
		au.intent = "write";
		au.jti = "j1";
		au.pass = !arg || strcmp(arg, "fail") != 0;
		au.reason = au.pass ? NULL : "signature does not verify";
		printf("auth r=%d\n", audit_emit_auth(a, &au));
	} else if (strcmp(s, "auths") == 0 && arg) {
		unsigned n = strtoul(arg, NULL, 10), k = 0;
		int r = 0;

		au.sid = "s1";
		au.pass = 1;
		for (k = 0; k < n && (r = audit_emit_auth(a, &au)) == 0; k++)
			;
		printf("auths ok=%u r=%d\n", k, r);
	} else if (strcmp(s, "api") == 0) {
		api.activity = AUDIT_API_DELETE;
		api.identity.has_cred = 1;
		api.operation = "session.revoke";
		api.target = "s1";
		api.target_type = "session";
		printf("api r=%d\n", audit_emit_api(a, &api));
	} else if (strcmp(s, "finding") == 0) {
		fi.sid = "s1";
		fi.fsid = "fs1";
		fi.rule = "aws-access-key";
		fi.severity = AUDIT_SEV_HIGH;
		fi.path = "dir/creds.txt";
		fi.verdict = AUDIT_VERDICT_BLOCK;
		printf("finding r=%d\n", audit_emit_finding(a, &fi));
	} else if (strcmp(s, "flush") == 0) {
		printf("flush r=%d\n",
		       audit_flush(a, strtoul(arg ? arg : "10000", NULL, 10)));
	} else if (strcmp(s, "stats") == 0) {
		audit_get_stats(a, &st);
		printf("stats emitted=%llu spooled=%llu delivered=%llu "
		       "refused=%llu dropped=%llu aggregated=%llu "
		       "sampled_out=%llu\n",
		       (unsigned long long)st.emitted,
		       (unsigned long long)st.spooled,
		       (unsigned long long)st.delivered,
		       (unsigned long long)st.refused,
		       (unsigned long long)st.dropped,
		       (unsigned long long)st.aggregated,
		       (unsigned long long)st.sampled_out);
	} else if (strcmp(s, "sleep") == 0 && arg) {
		usleep(strtoul(arg, NULL, 10) * 1000);
		printf("slept\n");
	} else if (strcmp(s, "wait") == 0 && arg) {
		for (i = 0; i < 3000 && stat(arg, &sb) < 0; i++)
			usleep(10000);
		printf("wait %s\n", i < 3000 ? "ok" : "timeout");
	} else {
		fprintf(stderr, "audit-emit: bad step %s\n", s);
		return -1;
	}
	fflush(stdout);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
	    {"spool", 1, NULL, 'd'},  {"socket", 1, NULL, 's'},
	    {"max", 1, NULL, 'm'},    {"product", 1, NULL, 'p'},
	    {"policy", 1, NULL, 'P'}, {"op", 1, NULL, 'o'},
	    {NULL, 0, NULL, 0}};
	struct audit_config cfg;
	struct audit *a;
	char *eq;
	int c, op, rc = 0;

	audit_config_init(&cfg);
	cfg.product = "audit-emit";
	cfg.retry_ms = 100;
	cfg.fsync_ms = 20;
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'd':
			cfg.spool_dir = optarg;
			break;
		case 's':
			cfg.socket_path = optarg;
			break;
		case 'm':
			cfg.spool_max_bytes = strtoull(optarg, NULL, 10);
			break;
		case 'p':
			cfg.product = optarg;
			break;
		case 'P':
			if (audit_config_full_policy(&cfg, optarg) < 0)
				return 2;
			break;
		case 'o':
			eq = strchr(optarg, '=');
			if (!eq)
				return 2;
			*eq = 0;
			op = audit_op_from_name(optarg);
			if (op < 0 || audit_config_op(&cfg, op, eq + 1) < 0) {
				printf("op %s=%s refused\n", optarg, eq + 1);
				return 2;
			}
			break;
		default:
			return 2;
		}
	}
	a = audit_open(&cfg);
	if (!a) {
		printf("open: %s\n", strerror(errno));
		return 1;
	}
	for (; optind < argc && rc == 0; optind++)
		rc = step(a, argv[optind]);
	audit_close(a, 0);
	return rc ? 2 : 0;
}
