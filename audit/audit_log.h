/*
 * audit_log.h - the hash-chained log occfs-auditd writes and occfs-audit
 * reads: record lines, segment files, and a reader for plain and
 * zstd-compressed segments.
 *
 * A record is one line:  N SP PREV SP HASH SP JSON LF
 * N is the record number (20 digits, from 1, continuous across segments),
 * PREV the HASH of record N-1 (64 zeros for record 1), and HASH the
 * SHA-256, in hex, of "N SP PREV SP JSON".  A segment is named after its
 * first record, "seg-<N 20 digits>.log"; closed segments are compressed to
 * "seg-<N>.log.zst" (with a zstd content checksum).  HEAD holds the number
 * and hash of the last record fsynced, for export elsewhere.
 */
#ifndef OCCFS_AUDIT_LOG_H
#define OCCFS_AUDIT_LOG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define AUDIT_HASH_HEX 64
#define AUDIT_NUM_LEN 20
#define AUDIT_REC_PREFIX (AUDIT_NUM_LEN + 2 * (AUDIT_HASH_HEX + 1) + 1)
#define AUDIT_ZERO_HASH \
	"0000000000000000000000000000000000000000000000000000000000000000"

struct audit_rec {
	uint64_t n;
	char prev[AUDIT_HASH_HEX + 1];
	char hash[AUDIT_HASH_HEX + 1];
	const char *json; /* points into the line */
	size_t json_len;
};

/* hash = SHA-256 hex of "N SP PREV SP JSON". */
void audit_log_hash(uint64_t n, const char *prev, const char *json, size_t len,
		    char hash[AUDIT_HASH_HEX + 1]);
/* Format a record line (with LF) into a malloc'd buffer. */
char *audit_log_format(uint64_t n, const char *prev, const char *json,
		       size_t len, char hash[AUDIT_HASH_HEX + 1],
		       size_t *line_len);
/* Parse a line without its LF: 0 or -EBADMSG. */
int audit_log_parse(const char *line, size_t len, struct audit_rec *r);

struct audit_seg {
	char name[48];
	uint64_t first;
	int compressed;
};

/* Segments of dir sorted by name: 0 and a malloc'd array, or -errno. */
int audit_log_list(const char *dir, struct audit_seg **segs, size_t *n);

/* Reads one segment line by line; lines above AUDIT_LINE_MAX are errors. */
#define AUDIT_LINE_MAX (AUDIT_REC_PREFIX + 4 * 65536 + 16)
struct audit_reader;
struct audit_reader *audit_reader_open(const char *dir,
				       const struct audit_seg *seg);
/* 1 = a line (without LF, NUL-terminated), 0 = end, -EBADMSG = the
 * segment ends inside a line (truncated), -EIO = corrupt compressed data,
 * -E2BIG = over-long line. */
int audit_reader_next(struct audit_reader *r, const char **line, size_t *len);
/* Bytes of the segment file consumed by whole lines (plain files). */
uint64_t audit_reader_offset(const struct audit_reader *r);
void audit_reader_close(struct audit_reader *r);

/* Compress dir/name (a closed .log) into name.zst, durably, and unlink it. */
int audit_log_compress(const char *dir, const char *name, int level);

struct audit_verify {
	int ok;
	uint64_t records;
	size_t segments;
	char head[AUDIT_HASH_HEX + 1];
	/* where the first problem is */
	char seg[48];
	uint64_t index; /* 1-based line within the segment */
	uint64_t n;	/* record number expected there */
	char what[256];
};

/* Walk every segment of dir: 0 (see v->ok) or -errno if unreadable. */
int audit_verify_dir(const char *dir, struct audit_verify *v);

#endif
