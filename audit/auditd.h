/*
 * auditd.h - occfs-auditd's parts: the hash-chained store (auditd_store.c)
 * and the forwarding sinks (auditd_sink.c); the daemon loop is auditd.c.
 */
#ifndef OCCFS_AUDITD_H
#define OCCFS_AUDITD_H

#include "audit_log.h"

#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct auditd_store {
	char *dir;
	int dirfd;
	uint64_t n;		       /* last record number */
	char last[AUDIT_HASH_HEX + 1]; /* its hash */
	int fd;			       /* open segment, -1 = none yet */
	char name[48];
	uint64_t size;
	uint64_t opened_ms; /* CLOCK_MONOTONIC: age is not a calendar matter */
	uint64_t seg_max;   /* rotate past this many bytes */
	unsigned seg_age;   /* or this many seconds; 0 = never */
	int zlevel;
	int dirty; /* written since the last fsync */
};

int auditd_store_open(struct auditd_store *st, const char *dir);
/* Append one validated compact JSON object: 0 or -errno (chain unchanged). */
int auditd_store_append(struct auditd_store *st, const char *json, size_t len);
/* fsync the open segment and update HEAD. */
int auditd_store_sync(struct auditd_store *st);
/* Close and compress the open segment if it is older than seg_age (or
 * force); the next append starts a new one.  Size is checked on append. */
int auditd_store_maybe_rotate(struct auditd_store *st, int force);
void auditd_store_close(struct auditd_store *st);

struct auditd_sinks {
	int syslog;	  /* forward each record to syslog(3) */
	const char *path; /* append each record to this file */
	void *file;	  /* FILE * */
};

int auditd_sink_open(struct auditd_sinks *s);
int auditd_sink_reopen(struct auditd_sinks *s);
void auditd_sink_put(struct auditd_sinks *s, const char *json, size_t len);
void auditd_sink_flush(struct auditd_sinks *s);
void auditd_sink_close(struct auditd_sinks *s);

/* Check one ingest record; returns the compact JSON to store (malloc'd)
 * or NULL with a reason in why. */
char *auditd_validate(const void *p, size_t len, char *why, size_t whylen);

#endif
