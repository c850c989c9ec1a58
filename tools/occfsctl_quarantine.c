/*
 * occfsctl_quarantine.c - occfsctl quarantine list|release|delete: the
 * files DLP blocked, as the broker's backends keep them.
 *
 * An entry is a directory <quarantine dir>/<id>/ holding "data" (the
 * plaintext), "info" (one "field value" line each, values with %XX
 * escapes) and, for s3, "mf" (the stage manifest).  The quarantine
 * directories are <root>/.occfs-quarantine for the local backend and
 * <staging>/quarantine plus <staging>/<entry>/quarantine for s3; they are
 * given with --root and --staging-dir, or taken from the policy's local
 * roots (--policy DIR) and the default staging directory.
 *
 * An id names an entry only if it is a plain entry name (q, then hex
 * digits, 'T' and '-'): no path, no dot, so an id can never reach outside
 * the quarantine directory.  Release puts the data back without a DLP
 * check: local entries into the tree (only over an empty or missing file,
 * never over newer content), s3 entries into the staging directory as a
 * stage marked released, uploaded when the broker next starts.
 */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "policy.h"

#define QMAX 64
#define DEFAULT_STAGING "/var/lib/occfs-staging"

int occfsctl_quarantine(int argc, char **argv);

struct qdirs {
	char *dir[QMAX];
	int s3[QMAX];
	size_t n;
};

struct qinfo {
	char backend[16], fsid[256], path[4096], key[4096], stage[32];
	char rule[128], action[16], detail[512];
	unsigned long long size;
	long long time;
};

static void usage_q(FILE *f)
{
	fprintf(f, "usage: occfsctl quarantine list [--json] [DIRS]\n"
		   "       occfsctl quarantine release ID [DIRS]\n"
		   "       occfsctl quarantine delete ID [DIRS]\n"
		   "DIRS: --root DIR (local backend), --staging-dir DIR (s3),\n"
		   "      --policy DIR (local roots of the policy, and the\n"
		   "      default staging directory unless --staging-dir)\n");
}

static int qid_ok(const char *s)
{
	size_t i, n = strlen(s);

	if (n < 2 || n > 47 || s[0] != 'q')
		return 0;
	for (i = 1; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		      (s[i] >= 'a' && s[i] <= 'f') || s[i] == 'T' ||
		      s[i] == '-'))
			return 0;
	return 1;
}

static void add_dir(struct qdirs *q, const char *base, const char *sub, int s3)
{
	char *p;

	if (q->n >= QMAX || asprintf(&p, "%s/%s", base, sub) < 0)
		return;
	for (size_t i = 0; i < q->n; i++)
		if (!strcmp(q->dir[i], p)) {
			free(p);
			return;
		}
	q->dir[q->n] = p;
	q->s3[q->n++] = s3;
}

/* <staging>/quarantine and <staging>/<entry>/quarantine. */
static void add_staging(struct qdirs *q, const char *staging)
{
	struct dirent *de;
	DIR *d = opendir(staging);

	add_dir(q, staging, "quarantine", 1);
	if (!d)
		return;
	while ((de = readdir(d))) {
		char sub[512];

		if (de->d_name[0] == '.' || de->d_type != DT_DIR ||
		    !strcmp(de->d_name, "quarantine") ||
		    !strcmp(de->d_name, "corrupt"))
			continue;
		snprintf(sub, sizeof(sub), "%s/quarantine", de->d_name);
		add_dir(q, staging, sub, 1);
	}
	closedir(d);
}

static int add_policy(struct qdirs *q, const char *dir)
{
	struct policy_opts o = {.flags = POLICY_NO_FILE_CHECKS};
	struct policy *p = policy_load(dir, &o, NULL);

	if (!p) {
		fprintf(stderr, "occfsctl: policy %s: %s\n", dir,
			strerror(errno));
		return -1;
	}
	for (size_t i = 0; i < p->nfs; i++)
		if (p->fs[i].backend == POLICY_BACKEND_LOCAL)
			add_dir(q, p->fs[i].local_root, ".occfs-quarantine", 0);
	policy_unref(p);
	return 0;
}

static void unescape(char *s)
{
	char *o = s;
	unsigned v;

	for (; *s; s++) {
		if (*s == '%' && sscanf(s + 1, "%2x", &v) == 1 && s[1] &&
		    s[2]) {
			*o++ = (char)v;
			s += 2;
		} else {
			*o++ = *s;
		}
	}
	*o = '\0';
}

static int read_info(const char *qdir, const char *id, struct qinfo *in)
{
	char path[4200], line[8192];
	FILE *f;

	memset(in, 0, sizeof(*in));
	snprintf(path, sizeof(path), "%s/%s/info", qdir, id);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		char *v = strchr(line, ' ');

		if (!v)
			continue;
		*v++ = '\0';
		v[strcspn(v, "\n")] = '\0';
		unescape(v);
#define F(name)                                                \
	if (!strcmp(line, #name)) {                            \
		snprintf(in->name, sizeof(in->name), "%s", v); \
		continue;                                      \
	}
		F(backend) F(fsid) F(path) F(key) F(stage) F(rule) F(action);
		F(detail);
#undef F
		if (!strcmp(line, "size"))
			in->size = strtoull(v, NULL, 10);
		else if (!strcmp(line, "time"))
			in->time = strtoll(v, NULL, 10);
	}
	fclose(f);
	return 0;
}

static void json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static int cmd_list(struct qdirs *q, int json)
{
	int first = 1;

	if (json)
		printf("[");
	else
		printf("%-36s %-16s %10s %-20s %-20s %s\n", "ID",
		       "FILESYSTEM_ID", "SIZE", "RULE", "TIME", "PATH");
	for (size_t i = 0; i < q->n; i++) {
		DIR *d = opendir(q->dir[i]);
		struct dirent *de;

		while (d && (de = readdir(d))) {
			struct qinfo in;
			char when[32] = "?";
			struct tm tm;
			time_t t;

			if (!qid_ok(de->d_name) ||
			    read_info(q->dir[i], de->d_name, &in))
				continue;
			t = (time_t)in.time;
			if (gmtime_r(&t, &tm))
				strftime(when, sizeof(when),
					 "%Y-%m-%dT%H:%M:%SZ", &tm);
			if (!json) {
				printf("%-36s %-16s %10llu %-20s %-20s %s\n",
				       de->d_name, in.fsid, in.size, in.rule,
				       when, in.key[0] ? in.key : in.path);
				continue;
			}
			printf("%s\n {\"id\": ", first ? "" : ",");
			first = 0;
			json_str(de->d_name);
			printf(", \"backend\": ");
			json_str(in.backend);
			printf(", \"filesystem_id\": ");
			json_str(in.fsid);
			printf(", \"path\": ");
			json_str(in.path);
			if (in.key[0]) {
				printf(", \"key\": ");
				json_str(in.key);
			}
			printf(", \"size\": %llu, \"rule\": ", in.size);
			json_str(in.rule);
			printf(", \"detail\": ");
			json_str(in.detail);
			printf(", \"time\": ");
			json_str(when);
			printf(", \"dir\": ");
			json_str(q->dir[i]);
			printf("}");
		}
		if (d)
			closedir(d);
	}
	if (json)
		printf("%s]\n", first ? "" : "\n");
	return 0;
}

/* The one quarantine directory holding entry id, or -1. */
static int find_entry(struct qdirs *q, const char *id)
{
	struct stat st;
	char path[4200];
	int found = -1;

	for (size_t i = 0; i < q->n; i++) {
		snprintf(path, sizeof(path), "%s/%s", q->dir[i], id);
		if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
			if (found >= 0) {
				fprintf(stderr,
					"occfsctl: %s is in %s and in %s\n", id,
					q->dir[found], q->dir[i]);
				return -1;
			}
			found = (int)i;
		}
	}
	if (found < 0)
		fprintf(stderr, "occfsctl: no quarantine entry %s\n", id);
	return found;
}

static int remove_entry(const char *qdir, const char *id)
{
	static const char *const files[] = {"data", "info", "info.tmp", "mf"};
	char path[4200];
	int fd = open(qdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), efd, rc = 0;

	if (fd < 0)
		return -errno;
	efd = openat(fd, id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (efd >= 0) {
		for (size_t i = 0; i < 4; i++)
			unlinkat(efd, files[i], 0);
		close(efd);
	}
	if (unlinkat(fd, id, AT_REMOVEDIR) < 0) {
		rc = -errno;
		snprintf(path, sizeof(path), "%s/%s", qdir, id);
		fprintf(stderr, "occfsctl: %s: %s\n", path, strerror(errno));
	}
	close(fd);
	return rc;
}

/* Copy all of in to out from offset 0. */
static int copy_fd(int in, int out)
{
	char buf[65536];
	ssize_t n;

	while ((n = read(in, buf, sizeof(buf))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || write(out, buf, (size_t)n) != n)
			return -errno ? -errno : -EIO;
	}
	return 0;
}

static int openat2_beneath(int dirfd, const char *name, int flags, mode_t mode)
{
	struct open_how how = {.flags = (unsigned)flags | O_CLOEXEC,
			       .mode = mode,
			       .resolve = RESOLVE_BENEATH |
					  RESOLVE_NO_SYMLINKS |
					  RESOLVE_NO_MAGICLINKS};
	long fd = syscall(SYS_openat2, dirfd, name, &how, sizeof(how));

	return fd < 0 ? -errno : (int)fd;
}

/*
 * Local: the data goes back to <root>/<fsid>/<path>, resolved beneath
 * <root>/<fsid> without following any symlink, and only over an empty or
 * missing file (a blocked file is left empty; anything else is newer).
 */
static int release_local(const char *root, int efd, const struct qinfo *in)
{
	const char *rel = in->path;
	int rootfd = -1, fsfd = -1, out = -1, data = -1, rc;
	struct stat st;

	while (*rel == '/')
		rel++;
	if (!in->fsid[0] || strchr(in->fsid, '/') || in->fsid[0] == '.' ||
	    !*rel) {
		fprintf(stderr, "occfsctl: the entry names no usable file\n");
		return -EINVAL;
	}
	rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	rc = rootfd < 0 ? -errno
			: (fsfd = openat2_beneath(rootfd, in->fsid,
						  O_PATH | O_DIRECTORY, 0));
	if (rc < 0)
		goto out;
	out = openat2_beneath(fsfd, rel, O_WRONLY | O_CREAT | O_NOFOLLOW, 0600);
	data = openat(efd, "data", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (out < 0 || data < 0) {
		rc = out < 0 ? out : -errno;
		goto out;
	}
	if (fstat(out, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size) {
		fprintf(stderr,
			"occfsctl: %s/%s%s is not empty now; not "
			"overwritten (copy the data by hand)\n",
			in->fsid, in->path[0] == '/' ? "" : "/", in->path);
		rc = -EEXIST;
		goto out;
	}
	rc = copy_fd(data, out);
	if (!rc && fsync(out) < 0)
		rc = -errno;
out:
	if (rc && rc != -EEXIST)
		fprintf(stderr, "occfsctl: restoring %s%s: %s\n", in->fsid,
			in->path, strerror(-rc));
	if (data >= 0)
		close(data);
	if (out >= 0)
		close(out);
	if (fsfd >= 0)
		close(fsfd);
	if (rootfd >= 0)
		close(rootfd);
	return rc;
}

/*
 * s3: the stage goes back to the staging directory under a new stage id,
 * with a "<id>.released" marker that lets it be uploaded without a DLP
 * check; the broker uploads it at its next start.  The marker comes first
 * and the manifest last, since the broker looks for "<id>.mf".
 */
static int release_s3(const char *staging, int efd)
{
	unsigned char r[8];
	char id[17], name[64], mfn[64];
	int sfd, fd, rc = 0;

	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
		return -EIO;
	for (int i = 0; i < 8; i++)
		snprintf(id + 2 * i, 3, "%02x", r[i]);
	sfd = open(staging, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (sfd < 0)
		return -errno;
	snprintf(name, sizeof(name), "%s.released", id);
	fd = openat(sfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 || fsync(fd) < 0) {
		rc = -errno;
		goto out;
	}
	close(fd);
	snprintf(name, sizeof(name), "%s.data", id);
	snprintf(mfn, sizeof(mfn), "%s.mf", id);
	if (renameat(efd, "data", sfd, name) < 0 ||
	    renameat(efd, "mf", sfd, mfn) < 0 || fsync(sfd) < 0) {
		rc = -errno;
		renameat(sfd, name, efd, "data");
		snprintf(name, sizeof(name), "%s.released", id);
		unlinkat(sfd, name, 0);
	}
out:
	if (rc)
		fprintf(stderr, "occfsctl: restoring into %s: %s\n", staging,
			strerror(-rc));
	close(sfd);
	return rc;
}

static int release_entry(const char *qdir, int s3, const char *id)
{
	char parent[4096], *slash;
	struct qinfo in;
	int qfd, efd, rc;

	rc = read_info(qdir, id, &in);
	if (rc) {
		fprintf(stderr, "occfsctl: %s: no readable info: %s\n", id,
			strerror(-rc));
		return rc;
	}
	snprintf(parent, sizeof(parent), "%s", qdir);
	slash = strrchr(parent, '/');
	if (!slash)
		return -EINVAL;
	*slash = '\0'; /* the root or the staging directory */
	qfd = open(qdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (qfd < 0)
		return -errno;
	efd = openat(qfd, id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	close(qfd);
	if (efd < 0)
		return -errno;
	rc = s3 ? release_s3(parent, efd) : release_local(parent, efd, &in);
	close(efd);
	if (!rc)
		rc = remove_entry(qdir, id);
	return rc;
}

int occfsctl_quarantine(int argc, char **argv)
{
	static const struct option lo[] = {
	    {"json", no_argument, NULL, 'j'},
	    {"root", required_argument, NULL, 'r'},
	    {"staging-dir", required_argument, NULL, 's'},
	    {"policy", required_argument, NULL, 'p'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0}};
	struct qdirs q = {0};
	const char *staging = NULL, *pol = NULL, *cmd;
	int json = 0, c, rc = 1, i;

	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage_q(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	cmd = argv[1];
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc - 1, argv + 1, "", lo, NULL)) != -1) {
		switch (c) {
		case 'j':
			json = 1;
			break;
		case 'r':
			add_dir(&q, optarg, ".occfs-quarantine", 0);
			break;
		case 's':
			staging = optarg;
			break;
		case 'p':
			pol = optarg;
			break;
		case 'h':
			usage_q(stdout);
			return 0;
		default:
			usage_q(stderr);
			return 2;
		}
	}
	if (staging)
		add_staging(&q, staging);
	if (pol) {
		if (add_policy(&q, pol))
			goto out;
		if (!staging)
			add_staging(&q, DEFAULT_STAGING);
	}
	if (!q.n) {
		fprintf(stderr, "occfsctl: give --root, --staging-dir or "
				"--policy\n");
		rc = 2;
		goto out;
	}
	optind++; /* past the subcommand word, counted from argv + 1 */
	if (!strcmp(cmd, "list")) {
		rc = optind < argc ? 2 : cmd_list(&q, json);
	} else if (!strcmp(cmd, "release") || !strcmp(cmd, "delete")) {
		if (optind + 1 != argc) {
			usage_q(stderr);
			rc = 2;
			goto out;
		}
		if (!qid_ok(argv[optind])) {
			fprintf(stderr,
				"occfsctl: '%s' is not a quarantine entry "
				"name\n",
				argv[optind]);
			rc = 2;
			goto out;
		}
		i = find_entry(&q, argv[optind]);
		if (i < 0)
			goto out;
		if (!strcmp(cmd, "delete"))
			rc = remove_entry(q.dir[i], argv[optind]) ? 1 : 0;
		else
			rc = release_entry(q.dir[i], q.s3[i], argv[optind]) ? 1
									    : 0;
		if (!rc)
			printf("%s %s\n",
			       cmd[0] == 'd' ? "deleted" : "released",
			       argv[optind]);
	} else {
		usage_q(stderr);
		rc = 2;
	}
out:
	for (size_t k = 0; k < q.n; k++)
		free(q.dir[k]);
	return rc;
}
