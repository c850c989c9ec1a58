/*
 * test_audit_ocsf.c - the OCSF serialiser against golden JSON, one file per
 * event type in tests/audit/golden/, with time, sequence, trace id and
 * host fixed so the output is stable.  UPDATE_GOLDEN=1 rewrites them.
 * Also the configuration parsers: reads and writes may be aggregated or
 * sampled, nothing else may.
 */
#include "audit_int.h"
#include "unit.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>

static const struct audit_meta meta = {
    "brokerfs", "host1",	  "0123456789abcdef",
    42,		1700000000123ull, "00112233445566778899aabbccddeeff"};

static void golden(const char *name, char *json)
{
	char path[4096], *want = NULL;
	json_t *a, *b;
	FILE *f;
	long n;

	CHECK(json != NULL);
	if (!json)
		return;
	snprintf(path, sizeof(path), "%s/%s.json", GOLDEN_DIR, name);
	if (getenv("UPDATE_GOLDEN")) {
		f = fopen(path, "w");
		fprintf(f, "%s\n", json);
		fclose(f);
	}
	f = fopen(path, "r");
	CHECK(f != NULL);
	if (f) {
		fseek(f, 0, SEEK_END);
		n = ftell(f);
		rewind(f);
		want = calloc(1, n + 1);
		if (fread(want, 1, n, f) != (size_t)n)
			n = 0;
		fclose(f);
		while (n > 0 && want[n - 1] == '\n')
			want[--n] = 0;
		if (strcmp(want, json) != 0)
			fprintf(stderr, "%s:\n got  %s\n want %s\n", name, json,
				want);
		CHECK_STR(json, want);
	}
	/* Every event: valid JSON with the attributes OCSF requires. */
	a = json_loads(json, 0, NULL);
	CHECK(a != NULL);
	b = json_object_get(a, "metadata");
	CHECK(json_is_integer(json_object_get(a, "class_uid")));
	CHECK_EQ(json_integer_value(json_object_get(a, "type_uid")),
		 json_integer_value(json_object_get(a, "class_uid")) * 100 +
		     json_integer_value(json_object_get(a, "activity_id")));
	CHECK_EQ(json_integer_value(json_object_get(a, "category_uid")),
		 json_integer_value(json_object_get(a, "class_uid")) / 1000);
	CHECK(json_is_integer(json_object_get(a, "severity_id")));
	CHECK(json_is_integer(json_object_get(a, "time")));
	CHECK_STR(json_string_value(json_object_get(b, "version")), "1.4.0");
	CHECK(json_is_string(
	    json_object_get(json_object_get(b, "product"), "vendor_name")));
	json_decref(a);
	free(want);
	free(json);
}

static void test_file(void)
{
	struct audit_file_event ev = {0};
	struct audit_file_extra x = {0, 0, 0, 0};

	ev.actor.has_cred = 1;
	ev.actor.uid = 1000;
	ev.actor.gid = 1000;
	ev.actor.pid = 4242;
	ev.actor.peer = "unix:pid=4242";
	ev.sid = "sess-1";
	ev.fsid = "agent-42";
	ev.intent = "write";
	ev.op = AUDIT_OP_CREATE;
	ev.path = "docs/report.txt";
	golden("file-create", audit_ocsf_file(&meta, &ev, NULL));

	ev.op = AUDIT_OP_RENAME;
	ev.new_path = "docs/final.txt";
	golden("file-rename", audit_ocsf_file(&meta, &ev, NULL));

	ev.op = AUDIT_OP_WRITE;
	ev.new_path = NULL;
	ev.bytes = 1 << 20;
	ev.err = EACCES;
	golden("file-write-denied", audit_ocsf_file(&meta, &ev, NULL));

	ev.op = AUDIT_OP_READ;
	ev.err = 0;
	ev.bytes = 409600;
	x.count = 100;
	x.start_ms = 1700000000000ull;
	x.end_ms = 1700000000123ull;
	golden("file-read-aggregated", audit_ocsf_file(&meta, &ev, &x));

	golden("dropped", audit_ocsf_dropped(&meta, 17, "/var/spool/occfs"));
}

static void test_auth(void)
{
	struct audit_auth_event ev = {0};

	ev.activity = AUDIT_AUTH_LOGON;
	ev.peer.peer = "vsock:3:1024";
	ev.sid = "sess-1";
	ev.fsid = "agent-42";
	ev.tenant = "acme";
	ev.intent = "write";
	ev.jti = "jti-9";
	ev.service = "brokerfs";
	ev.pass = 1;
	golden("auth-pass", audit_ocsf_auth(&meta, &ev));
	ev.pass = 0;
	ev.reason = "handle expired";
	golden("auth-fail", audit_ocsf_auth(&meta, &ev));
}

static void test_api(void)
{
	struct audit_api_event ev = {0};

	ev.activity = AUDIT_API_DELETE;
	ev.identity.has_cred = 1;
	ev.identity.uid = 0;
	ev.identity.pid = 77;
	ev.identity.user = "root";
	ev.service = "occfs-controld";
	ev.operation = "session.revoke";
	ev.target = "sess-1";
	ev.target_type = "session";
	golden("api-revoke", audit_ocsf_api(&meta, &ev));
	ev.err = EPERM;
	ev.detail = "caller is not an operator";
	golden("api-refused", audit_ocsf_api(&meta, &ev));
}

static void test_finding(void)
{
	struct audit_finding_event ev = {0};

	ev.actor.has_cred = 1;
	ev.actor.uid = 1000;
	ev.actor.pid = 4242;
	ev.sid = "sess-1";
	ev.fsid = "agent-42";
	ev.rule = "aws-access-key";
	ev.severity = AUDIT_SEV_HIGH;
	ev.path = "src/creds.env";
	ev.verdict = AUDIT_VERDICT_BLOCK;
	ev.offset = 123;
	ev.quarantine = "/var/lib/occfs/quarantine/q-1";
	golden("finding-block", audit_ocsf_finding(&meta, &ev));
	ev.verdict = AUDIT_VERDICT_AUDIT;
	ev.severity = AUDIT_SEV_LOW;
	ev.quarantine = NULL;
	golden("finding-audit", audit_ocsf_finding(&meta, &ev));
}

static void test_config(void)
{
	struct audit_config c;

	audit_config_init(&c);
	CHECK_EQ(audit_config_op(&c, AUDIT_OP_READ, "aggregate:500"), 0);
	CHECK_EQ(c.ops[AUDIT_OP_READ].mode, AUDIT_MODE_AGGREGATE);
	CHECK_EQ(c.ops[AUDIT_OP_READ].window_ms, 500);
	CHECK_EQ(audit_config_op(&c, AUDIT_OP_WRITE, "sample:10"), 0);
	CHECK_EQ(c.ops[AUDIT_OP_WRITE].sample_n, 10);
	CHECK_EQ(audit_config_op(&c, AUDIT_OP_WRITE, "each"), 0);
	CHECK_EQ(audit_config_op(&c, AUDIT_OP_RENAME, "aggregate:500"),
		 -EINVAL);
	CHECK_EQ(audit_config_op(&c, AUDIT_OP_CHMOD, "sample:2"), -EINVAL);
	CHECK_EQ(audit_config_op(&c, AUDIT_OP_UNLINK, "each"), 0);
	CHECK_EQ(audit_config_op(&c, AUDIT_OP_READ, "aggregate:"), -EINVAL);
	CHECK_EQ(audit_config_op(&c, AUDIT_OP_READ, "aggregate:0"), -EINVAL);
	CHECK_EQ(audit_config_op(&c, AUDIT_OP_READ, "aggregate:5x"), -EINVAL);
	CHECK_EQ(audit_config_op(&c, AUDIT_OP_READ, "bogus"), -EINVAL);
	CHECK_EQ(audit_config_full_policy(&c, "fail"), 0);
	CHECK_EQ(c.full_policy, AUDIT_FULL_FAIL);
	CHECK_EQ(audit_config_full_policy(&c, "later"), -EINVAL);
	CHECK_EQ(audit_op_from_name("rename"), AUDIT_OP_RENAME);
	CHECK_EQ(audit_op_from_name("nope"), -EINVAL);
}

int main(void)
{
	test_file();
	test_auth();
	test_api();
	test_finding();
	test_config();
	return unit_done("test_audit_ocsf");
}
