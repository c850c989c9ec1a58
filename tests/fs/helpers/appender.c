/*
 * appender: write COUNT fixed-length records to FILE opened with O_APPEND,
 * one write(2) per record, so that concurrent appenders can be checked for
 * lost or torn records.  Record: "ID SEQ" padded with '.' to LEN-1, '\n'.
 *
 *   appender FILE ID COUNT LEN
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	char rec[256];
	int fd, i, count, len;

	if (argc != 5) {
		fprintf(stderr, "usage: appender FILE ID COUNT LEN\n");
		return 2;
	}
	count = atoi(argv[3]);
	len = atoi(argv[4]);
	if (len < 16 || len > (int)sizeof(rec) || count < 0) {
		fprintf(stderr, "appender: bad COUNT or LEN\n");
		return 2;
	}
	fd = open(argv[1], O_WRONLY | O_APPEND | O_CREAT, 0644);
	if (fd < 0) {
		fprintf(stderr, "appender: open %s: %s\n", argv[1],
			strerror(errno));
		return 1;
	}
	for (i = 0; i < count; i++) {
		int n = snprintf(rec, sizeof(rec), "%s %d ", argv[2], i);

		memset(rec + n, '.', (size_t)(len - 1 - n));
		rec[len - 1] = '\n';
		if (write(fd, rec, (size_t)len) != len) {
			fprintf(stderr, "appender: write: %s\n",
				strerror(errno));
			return 1;
		}
	}
	if (close(fd) != 0) {
		fprintf(stderr, "appender: close: %s\n", strerror(errno));
		return 1;
	}
	return 0;
}
