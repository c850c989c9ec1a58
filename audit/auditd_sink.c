/*
 * auditd_sink.c - what occfs-auditd does with one ingest record besides
 * storing it: validation (a bounded, well-formed JSON object with a
 * class_uid, re-serialised compactly so it is one line) and forwarding to
 * syslog and/or a file, reopened on SIGHUP for log rotation.
 */
#include "auditd.h"
#include "log.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

char *auditd_validate(const void *p, size_t len, char *why, size_t whylen)
{
	json_error_t err;
	json_t *o, *cls, *md;
	struct timespec ts;
	char *s = NULL;

	o = json_loadb(p, len, JSON_REJECT_DUPLICATES, &err);
	if (!o) {
		snprintf(why, whylen, "not JSON: %s at byte %d", err.text,
			 err.position);
		return NULL;
	}
	cls = json_object_get(o, "class_uid");
	if (!json_is_object(o)) {
		snprintf(why, whylen, "not a JSON object");
	} else if (!json_is_integer(cls) || json_integer_value(cls) <= 0 ||
		   json_integer_value(cls) > 999999) {
		snprintf(why, whylen, "no valid class_uid");
	} else {
		/* The time the log took it, as OCSF defines logged_time. */
		md = json_object_get(o, "metadata");
		if (json_is_object(md)) {
			clock_gettime(CLOCK_REALTIME, &ts);
			json_object_set_new(
			    md, "logged_time",
			    json_integer((json_int_t)ts.tv_sec * 1000 +
					 ts.tv_nsec / 1000000));
		}
		s = json_dumps(o, JSON_COMPACT);
		if (!s)
			snprintf(why, whylen, "out of memory");
	}
	json_decref(o);
	return s;
}

int auditd_sink_open(struct auditd_sinks *s)
{
	if (s->syslog)
		openlog("occfs-audit", LOG_NDELAY, LOG_AUTHPRIV);
	if (s->path) {
		s->file = fopen(s->path, "ae");
		if (!s->file)
			return -errno;
	}
	return 0;
}

int auditd_sink_reopen(struct auditd_sinks *s)
{
	FILE *f;

	if (!s->path)
		return 0;
	f = fopen(s->path, "ae");
	if (!f) {
		log_err("%s: %m; keeping the old file", s->path);
		return -errno;
	}
	if (s->file)
		fclose(s->file);
	s->file = f;
	return 0;
}

void auditd_sink_put(struct auditd_sinks *s, const char *json, size_t len)
{
	if (s->syslog)
		syslog(LOG_AUTHPRIV | LOG_INFO, "%.*s", (int)len, json);
	if (s->file) {
		fwrite(json, 1, len, s->file);
		fputc('\n', s->file);
	}
}

void auditd_sink_flush(struct auditd_sinks *s)
{
	if (s->file && fflush(s->file) != 0)
		log_warn("%s: %m", s->path);
}

void auditd_sink_close(struct auditd_sinks *s)
{
	if (s->file)
		fclose(s->file);
	s->file = NULL;
	if (s->syslog)
		closelog();
}
