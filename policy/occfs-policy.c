/*
 * occfs-policy.c - check a policy directory or show the policy it makes.
 *
 *   occfs-policy check [--root DIR] POLICYDIR
 *   occfs-policy show  [--root DIR] POLICYDIR
 *
 * check prints "OK: N files" and exits 0, or prints each problem as
 * "file:line:column: message" on stderr and exits 1; show prints the
 * effective policy as JSON.  Usage errors exit 2.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: occfs-policy check [--root DIR] POLICYDIR\n"
		   "       occfs-policy show [--root DIR] POLICYDIR\n"
		   "--root DIR  look files the policy names up below DIR\n");
}

static void print_problems(const struct policy_problems *probs)
{
	char line[2048];
	size_t i;

	for (i = 0; i < probs->n; i++) {
		policy_problem_format(&probs->v[i], line, sizeof(line));
		fprintf(stderr, "%s\n", line);
	}
	if (probs->dropped)
		fprintf(stderr, "occfs-policy: %zu more problems not shown\n",
			probs->dropped);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"root", required_argument, NULL, 'r'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0}};
	struct policy_opts opts = {0};
	struct policy_problems probs = {0};
	struct policy *pol;
	const char *cmd;
	char *json;
	int c, rc = 1;

	if (argc >= 2 &&
	    (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
		usage(stdout);
		return 0;
	}
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	cmd = argv[1];
	if (strcmp(cmd, "check") != 0 && strcmp(cmd, "show") != 0) {
		fprintf(stderr, "occfs-policy: unknown command '%s'\n", cmd);
		usage(stderr);
		return 2;
	}
	optind = 2;
	while ((c = getopt_long(argc, argv, "r:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'r':
			opts.file_root = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		return 2;
	}
	pol = policy_load(argv[optind], &opts, &probs);
	if (!pol) {
		print_problems(&probs);
		if (!probs.n)
			fprintf(stderr, "occfs-policy: %s: %s\n", argv[optind],
				strerror(errno));
		policy_problems_free(&probs);
		return 1;
	}
	if (strcmp(cmd, "check") == 0) {
		printf("OK: %zu files\n", pol->nfiles);
		rc = 0;
	} else {
		json = policy_json(pol);
		if (json) {
			printf("%s\n", json);
			free(json);
			rc = 0;
		} else {
			fprintf(stderr, "occfs-policy: %s\n", strerror(errno));
		}
	}
	policy_unref(pol);
	policy_problems_free(&probs);
	return rc;
}
