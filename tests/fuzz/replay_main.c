/*
 * replay_main.c - run a fuzz target over files without libFuzzer.
 *
 * Linked into the fuzz targets when they are not built with
 * -fsanitize=fuzzer, so `make check` still replays the checked-in corpus
 * (under ASan/UBSan in a sanitizer build).  Arguments are files or
 * directories (one level, dot files skipped).  Each input is copied into a
 * buffer of exactly its size so an overread is caught by ASan.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_file(const char *path, unsigned long *ran)
{
	struct stat st;
	uint8_t *p = NULL;
	FILE *f;
	int rc = -1;

	f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (fstat(fileno(f), &st) || st.st_size < 0) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		goto out;
	}
	/* malloc(0) may return NULL; keep a real (empty) buffer. */
	p = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (!p) {
		fprintf(stderr, "replay: %s: out of memory\n", path);
		goto out;
	}
	if (st.st_size &&
	    fread(p, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
		fprintf(stderr, "replay: %s: short read\n", path);
		goto out;
	}
	LLVMFuzzerTestOneInput(p, (size_t)st.st_size);
	(*ran)++;
	rc = 0;
out:
	free(p);
	fclose(f);
	return rc;
}

static int replay_dir(const char *dir, unsigned long *ran)
{
	struct dirent *de;
	char path[4096];
	struct stat st;
	DIR *d;
	int rc = 0;

	d = opendir(dir);
	if (!d) {
		fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
		return -1;
	}
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir,
				     de->d_name) >= sizeof(path)) {
			rc = -1;
			continue;
		}
		if (stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
		    replay_file(path, ran))
			rc = -1;
	}
	closedir(d);
	return rc;
}

int main(int argc, char **argv)
{
	unsigned long ran = 0;
	struct stat st;
	int i, rc = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: %s FILE|DIR...\n", argv[0]);
		return 2;
	}
	for (i = 1; i < argc; i++) {
		if (argv[i][0] == '-')
			continue; /* libFuzzer flags, harmless here */
		if (stat(argv[i], &st)) {
			fprintf(stderr, "replay: %s: %s\n", argv[i],
				strerror(errno));
			rc = 1;
		} else if (S_ISDIR(st.st_mode) ? replay_dir(argv[i], &ran)
					       : replay_file(argv[i], &ran)) {
			rc = 1;
		}
	}
	printf("%s: ran %lu inputs\n", argv[0], ran);
	return rc;
}
