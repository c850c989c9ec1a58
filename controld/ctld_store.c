/*
 * ctld_store.c - occfs-controld's durable state in one SQLite database.
 *
 * <state>/controld.db holds the session table, the denylist (sid or jti,
 * kept until the handle it names could no longer be presented anyway), the
 * kill-switch and quota overrides.  Every change is one transaction with
 * synchronous=FULL, committed before the change is pushed to any broker or
 * reported to the operator, so a restart (or a crash) never forgets a
 * revocation that was acknowledged.
 */
#include "controld.h"

#include <errno.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"

struct ctld_store {
	sqlite3 *db;
};

static const char ctld_schema[] =
    "PRAGMA journal_mode=WAL;"
    "PRAGMA synchronous=FULL;"
    "CREATE TABLE IF NOT EXISTS sessions ("
    " sid TEXT PRIMARY KEY, jti TEXT NOT NULL, fsid TEXT NOT NULL,"
    " tenant TEXT NOT NULL, intent TEXT NOT NULL, state TEXT NOT NULL,"
    " reason TEXT NOT NULL DEFAULT '', created INTEGER NOT NULL,"
    " exp INTEGER NOT NULL, ended INTEGER NOT NULL DEFAULT 0,"
    " operator_uid INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS denylist ("
    " sid TEXT NOT NULL, jti TEXT NOT NULL, exp INTEGER NOT NULL,"
    " reason TEXT NOT NULL, PRIMARY KEY (sid, jti));"
    "CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS quotas (fsid TEXT PRIMARY KEY,"
    " bytes INTEGER NOT NULL, inodes INTEGER NOT NULL);";

struct ctld_store *ctld_store_open(const char *dir, char *why, size_t len)
{
	struct ctld_store *st = calloc(1, sizeof(*st));
	char path[PATH_MAX], *err = NULL;

	if (!st) {
		snprintf(why, len, "out of memory");
		return NULL;
	}
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		snprintf(why, len, "%s: %s", dir, strerror(errno));
		goto fail;
	}
	snprintf(path, sizeof(path), "%s/controld.db", dir);
	if (sqlite3_open_v2(path, &st->db,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
				SQLITE_OPEN_FULLMUTEX,
			    NULL) != SQLITE_OK) {
		snprintf(why, len, "%s: %s", path,
			 st->db ? sqlite3_errmsg(st->db) : "cannot open");
		goto fail;
	}
	chmod(path, 0600);
	sqlite3_busy_timeout(st->db, 5000);
	if (sqlite3_exec(st->db, ctld_schema, NULL, NULL, &err) != SQLITE_OK) {
		snprintf(why, len, "%s: %s", path, err ? err : "schema");
		sqlite3_free(err);
		goto fail;
	}
	return st;
fail:
	ctld_store_close(st);
	return NULL;
}

void ctld_store_close(struct ctld_store *st)
{
	if (!st)
		return;
	sqlite3_close(st->db);
	free(st);
}

/*
 * Prepare sql and bind the arguments described by fmt: 's' a string,
 * 'i' an int64.  NULL after logging.
 */
static sqlite3_stmt *ctld_prep(struct ctld_store *st, const char *sql,
			       const char *fmt, ...)
{
	sqlite3_stmt *q = NULL;
	va_list ap;
	int i, rc = SQLITE_OK;

	if (sqlite3_prepare_v2(st->db, sql, -1, &q, NULL) != SQLITE_OK) {
		log_err("store: %s", sqlite3_errmsg(st->db));
		return NULL;
	}
	va_start(ap, fmt);
	for (i = 0; fmt[i] && rc == SQLITE_OK; i++) {
		if (fmt[i] == 's')
			rc = sqlite3_bind_text(q, i + 1, va_arg(ap, char *), -1,
					       SQLITE_TRANSIENT);
		else
			rc =
			    sqlite3_bind_int64(q, i + 1, va_arg(ap, long long));
	}
	va_end(ap);
	if (rc != SQLITE_OK) {
		log_err("store: bind: %s", sqlite3_errmsg(st->db));
		sqlite3_finalize(q);
		return NULL;
	}
	return q;
}

/* Run a statement that returns no rows.  0 or -EIO. */
static int ctld_run(struct ctld_store *st, sqlite3_stmt *q)
{
	int rc;

	if (!q)
		return -EIO;
	rc = sqlite3_step(q);
	sqlite3_finalize(q);
	if (rc != SQLITE_DONE) {
		log_err("store: %s", sqlite3_errmsg(st->db));
		return -EIO;
	}
	return 0;
}

static int ctld_exec(struct ctld_store *st, const char *sql)
{
	char *err = NULL;

	if (sqlite3_exec(st->db, sql, NULL, NULL, &err) != SQLITE_OK) {
		log_err("store: %s: %s", sql, err ? err : "failed");
		sqlite3_free(err);
		return -EIO;
	}
	return 0;
}

static void ctld_col(sqlite3_stmt *q, int i, char *dst, size_t len)
{
	const unsigned char *t = sqlite3_column_text(q, i);

	snprintf(dst, len, "%s", t ? (const char *)t : "");
}

int ctld_store_session_add(struct ctld_store *st, const struct ctld_session *s)
{
	return ctld_run(
	    st, ctld_prep(st,
			  "INSERT INTO sessions (sid, jti, fsid, tenant, "
			  "intent, state, created, exp, operator_uid) VALUES "
			  "(?, ?, ?, ?, ?, 'active', ?, ?, ?)",
			  "sssssiii", s->sid, s->jti, s->fsid, s->tenant,
			  s->intent, (long long)s->created, (long long)s->exp,
			  (long long)s->operator_uid));
}

#define CTLD_SESSION_COLS                                               \
	"sid, jti, fsid, tenant, intent, state, reason, created, exp, " \
	"ended, operator_uid"

static void ctld_session_row(sqlite3_stmt *q, struct ctld_session *s)
{
	memset(s, 0, sizeof(*s));
	ctld_col(q, 0, s->sid, sizeof(s->sid));
	ctld_col(q, 1, s->jti, sizeof(s->jti));
	ctld_col(q, 2, s->fsid, sizeof(s->fsid));
	ctld_col(q, 3, s->tenant, sizeof(s->tenant));
	ctld_col(q, 4, s->intent, sizeof(s->intent));
	ctld_col(q, 5, s->state, sizeof(s->state));
	ctld_col(q, 6, s->reason, sizeof(s->reason));
	s->created = sqlite3_column_int64(q, 7);
	s->exp = sqlite3_column_int64(q, 8);
	s->ended = sqlite3_column_int64(q, 9);
	s->operator_uid = (uid_t)sqlite3_column_int64(q, 10);
}

int ctld_store_session_get(struct ctld_store *st, const char *sid,
			   struct ctld_session *out)
{
	sqlite3_stmt *q = ctld_prep(
	    st, "SELECT " CTLD_SESSION_COLS " FROM sessions WHERE sid = ?", "s",
	    sid);
	int rc;

	if (!q)
		return -EIO;
	rc = sqlite3_step(q);
	if (rc == SQLITE_ROW)
		ctld_session_row(q, out);
	sqlite3_finalize(q);
	return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -ENOENT : -EIO;
}

int ctld_store_session_end(struct ctld_store *st, const char *sid,
			   const char *state, const char *reason, int64_t now)
{
	int rc;

	if (ctld_exec(st, "BEGIN IMMEDIATE"))
		return -EIO;
	rc =
	    ctld_run(st, ctld_prep(st,
				   "UPDATE sessions SET state = ?, reason = ?, "
				   "ended = ? WHERE sid = ?",
				   "ssis", state, reason, (long long)now, sid));
	if (!rc)
		rc = ctld_run(
		    st, ctld_prep(st,
				  "INSERT OR REPLACE INTO denylist (sid, jti, "
				  "exp, reason) SELECT sid, jti, exp, ? FROM "
				  "sessions WHERE sid = ?",
				  "ss", reason, sid));
	if (rc || ctld_exec(st, "COMMIT")) {
		ctld_exec(st, "ROLLBACK");
		return -EIO;
	}
	return 0;
}

int ctld_store_sessions(struct ctld_store *st, int all,
			int (*cb)(void *arg, const struct ctld_session *s),
			void *arg)
{
	struct ctld_session s;
	sqlite3_stmt *q;
	int rc;

	q = ctld_prep(st,
		      all ? "SELECT " CTLD_SESSION_COLS
			    " FROM sessions ORDER BY created, sid"
			  : "SELECT " CTLD_SESSION_COLS
			    " FROM sessions WHERE state = 'active' "
			    "ORDER BY created, sid",
		      "");
	if (!q)
		return -EIO;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		ctld_session_row(q, &s);
		if (cb(arg, &s))
			break;
	}
	sqlite3_finalize(q);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -EIO;
}

int ctld_store_deny_add(struct ctld_store *st, const struct ctld_deny *d,
			const char *reason)
{
	return ctld_run(st, ctld_prep(st,
				      "INSERT OR REPLACE INTO denylist (sid, "
				      "jti, exp, reason) VALUES (?, ?, ?, ?)",
				      "ssis", d->sid, d->jti, (long long)d->exp,
				      reason));
}

int ctld_store_deny_list(struct ctld_store *st, int64_t now,
			 int (*cb)(void *arg, const struct ctld_deny *d),
			 void *arg)
{
	struct ctld_deny d;
	sqlite3_stmt *q;
	int rc;

	q = ctld_prep(st, "SELECT sid, jti, exp FROM denylist WHERE exp >= ?",
		      "i", (long long)now);
	if (!q)
		return -EIO;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		ctld_col(q, 0, d.sid, sizeof(d.sid));
		ctld_col(q, 1, d.jti, sizeof(d.jti));
		d.exp = sqlite3_column_int64(q, 2);
		if (cb(arg, &d))
			break;
	}
	sqlite3_finalize(q);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -EIO;
}

/* A handle past its exp (plus brokers' clock-skew leeway) is useless. */
int ctld_store_deny_prune(struct ctld_store *st, int64_t now)
{
	return ctld_run(st, ctld_prep(st, "DELETE FROM denylist WHERE exp < ?",
				      "i", (long long)now - 300));
}

static int ctld_kv_set(struct ctld_store *st, const char *k, int64_t v)
{
	return ctld_run(st, ctld_prep(st,
				      "INSERT OR REPLACE INTO kv (k, v) "
				      "VALUES (?, ?)",
				      "si", k, (long long)v));
}

static int64_t ctld_kv_get(struct ctld_store *st, const char *k, int64_t def)
{
	sqlite3_stmt *q = ctld_prep(st, "SELECT v FROM kv WHERE k = ?", "s", k);
	int64_t v = def;

	if (!q)
		return def;
	if (sqlite3_step(q) == SQLITE_ROW)
		v = sqlite3_column_int64(q, 0);
	sqlite3_finalize(q);
	return v;
}

int ctld_store_kill(struct ctld_store *st, int on, int64_t now)
{
	int rc;

	if (ctld_exec(st, "BEGIN IMMEDIATE"))
		return -EIO;
	rc = ctld_kv_set(st, "kill", on);
	if (!rc && on)
		rc = ctld_kv_set(st, "not_before", now);
	if (!rc && on)
		rc = ctld_run(st, ctld_prep(st,
					    "INSERT OR REPLACE INTO denylist "
					    "(sid, jti, exp, reason) SELECT "
					    "sid, jti, exp, 'kill-switch' FROM "
					    "sessions WHERE state = 'active'",
					    ""));
	if (!rc && on)
		rc =
		    ctld_run(st, ctld_prep(st,
					   "UPDATE sessions SET state = "
					   "'revoked', reason = 'kill-switch', "
					   "ended = ? WHERE state = 'active'",
					   "i", (long long)now));
	if (rc || ctld_exec(st, "COMMIT")) {
		ctld_exec(st, "ROLLBACK");
		return -EIO;
	}
	return 0;
}

int ctld_store_kill_state(struct ctld_store *st, int *on, int64_t *not_before)
{
	*on = ctld_kv_get(st, "kill", 0) != 0;
	*not_before = ctld_kv_get(st, "not_before", 0);
	return 0;
}

int ctld_store_quota_set(struct ctld_store *st, const char *fsid, int64_t bytes,
			 int64_t inodes)
{
	if (bytes < 0 || inodes < 0)
		return ctld_run(st, ctld_prep(st,
					      "DELETE FROM quotas WHERE "
					      "fsid = ?",
					      "s", fsid));
	return ctld_run(st, ctld_prep(st,
				      "INSERT OR REPLACE INTO quotas (fsid, "
				      "bytes, inodes) VALUES (?, ?, ?)",
				      "sii", fsid, (long long)bytes,
				      (long long)inodes));
}

int ctld_store_quotas(struct ctld_store *st,
		      int (*cb)(void *arg, const char *fsid, int64_t bytes,
				int64_t inodes),
		      void *arg)
{
	sqlite3_stmt *q;
	char fsid[256];
	int rc;

	q = ctld_prep(st, "SELECT fsid, bytes, inodes FROM quotas", "");
	if (!q)
		return -EIO;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		ctld_col(q, 0, fsid, sizeof(fsid));
		if (cb(arg, fsid, sqlite3_column_int64(q, 1),
		       sqlite3_column_int64(q, 2)))
			break;
	}
	sqlite3_finalize(q);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -EIO;
}
