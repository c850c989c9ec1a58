/*
 * audit-names.c - unit test of brokerfs's audit name table
 * (brokerfs/broker_audit_names.c): paths rebuilt from what the client
 * learned, renames of files and whole directories, exchange, unlink,
 * lookup counts and FORGET, unknown nodes, hostile names (not UTF-8, too
 * long, too deep) and claims read from a refused handle.
 */
#include "broker_audit.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "token.h"
#include "unit.h"

static char p[8192];

static const char *path(struct audit_names *t, uint64_t id)
{
	audit_names_path(t, id, p, sizeof(p));
	return p;
}

static const char *child(struct audit_names *t, uint64_t parent,
			 const char *name)
{
	audit_names_child(t, parent, name, p, sizeof(p));
	return p;
}

static void test_basic(void)
{
	struct audit_names *t = audit_names_new();

	CHECK_STR(path(t, 1), "/");
	CHECK_STR(child(t, 1, "a"), "/a");
	audit_names_learn(t, 1, "d", 2);
	audit_names_learn(t, 2, "f", 3);
	CHECK_STR(path(t, 3), "/d/f");
	CHECK_STR(child(t, 2, "g"), "/d/g");
	/* Unknown nodes say so. */
	CHECK_STR(path(t, 99), "#99");
	CHECK_STR(child(t, 99, "x"), "#99/x");
	/* "." and ".." and the root are never learned. */
	audit_names_learn(t, 2, "..", 1);
	audit_names_learn(t, 2, ".", 2);
	CHECK_STR(path(t, 2), "/d");
	CHECK_EQ(audit_names_count(t), 2);
	audit_names_free(t);
}

static void test_rename(void)
{
	struct audit_names *t = audit_names_new();

	audit_names_learn(t, 1, "d", 2);
	audit_names_learn(t, 2, "f", 3);
	audit_names_learn(t, 1, "e", 4);
	/* Renaming the directory renames what is below it. */
	audit_names_rename(t, 1, "d", 4, "moved", 0);
	CHECK_STR(path(t, 3), "/e/moved/f");
	/* Replacing a target: the old holder loses the name. */
	audit_names_learn(t, 1, "x", 5);
	audit_names_learn(t, 1, "y", 6);
	audit_names_rename(t, 1, "x", 1, "y", 0);
	CHECK_STR(path(t, 5), "/y");
	audit_names_unlink(t, 1, "y");
	CHECK_STR(path(t, 5), "/y"); /* keeps its last name */
	CHECK_STR(path(t, 6), "/y");
	/* Exchange swaps both. */
	audit_names_learn(t, 1, "a", 7);
	audit_names_learn(t, 1, "b", 8);
	audit_names_rename(t, 1, "a", 1, "b", 1);
	CHECK_STR(path(t, 7), "/b");
	CHECK_STR(path(t, 8), "/a");
	/* A rename of a name nobody learned changes nothing. */
	audit_names_rename(t, 1, "nobody", 1, "a", 0);
	CHECK_STR(path(t, 8), "/a");
	/* A name later learned for a new node takes over from the old. */
	audit_names_learn(t, 1, "a", 9);
	audit_names_rename(t, 1, "a", 1, "c", 0);
	CHECK_STR(path(t, 9), "/c");
	CHECK_STR(path(t, 8), "/a");
	audit_names_free(t);
}

static void test_forget(void)
{
	struct audit_names *t = audit_names_new();
	uint64_t i;
	char name[32];

	audit_names_learn(t, 1, "f", 2);
	audit_names_learn(t, 1, "f", 2);
	audit_names_forget(t, 2, 1);
	CHECK_STR(path(t, 2), "/f");
	audit_names_forget(t, 2, 1);
	CHECK_STR(path(t, 2), "#2");
	CHECK_EQ(audit_names_count(t), 0);
	audit_names_forget(t, 2, 5); /* unknown: nothing happens */
	/* Growth keeps every entry reachable by id and by name. */
	for (i = 10; i < 5010; i++) {
		snprintf(name, sizeof(name), "n%llu", (unsigned long long)i);
		audit_names_learn(t, 1, name, i);
	}
	CHECK_EQ(audit_names_count(t), 5000);
	CHECK_STR(path(t, 4321), "/n4321");
	audit_names_rename(t, 1, "n777", 1, "seven", 0);
	CHECK_STR(path(t, 777), "/seven");
	for (i = 10; i < 5010; i++)
		audit_names_forget(t, i, 1);
	CHECK_EQ(audit_names_count(t), 0);
	audit_names_free(t);
}

static void test_hostile(void)
{
	struct audit_names *t = audit_names_new();
	char longname[256];
	uint64_t i;

	audit_names_learn(t, 1, "bad\xff\xfe", 2);
	CHECK_STR(path(t, 2), "/bad\\xff\\xfe");
	audit_names_learn(t, 1, "caf\xc3\xa9", 3);
	CHECK_STR(path(t, 3), "/caf\xc3\xa9");
	/* Overlong and surrogate encodings are not UTF-8. */
	CHECK_STR(child(t, 1, "\xc0\xaf"), "/\\xc0\\xaf");
	CHECK_STR(child(t, 1, "\xed\xa0\x80"), "/\\xed\\xa0\\x80");
	/* A cycle (never made by a sane backend) ends, marked. */
	audit_names_learn(t, 5, "loop", 4);
	audit_names_learn(t, 4, "loop", 5);
	path(t, 4);
	CHECK(strncmp(p, "...", 3) == 0);
	/* A deep tree of long names: the tail is kept, the head cut. */
	memset(longname, 'x', 255);
	longname[255] = '\0';
	for (i = 0; i < 100; i++)
		audit_names_learn(t, i ? 100 + i - 1 : 1, longname, 100 + i);
	path(t, 199);
	CHECK(strncmp(p, "...", 3) == 0);
	CHECK(strlen(p) < 8192);
	child(t, 199, longname);
	CHECK(strlen(p) > 255);
	/* The caller's buffer bounds what it gets. */
	audit_names_path(t, 199, p, 16);
	CHECK_EQ(strlen(p), 15);
	audit_names_free(t);
}

static void test_claims(void)
{
	struct token_claims c;
	/* {"sid":"s1","filesystem_id":"fs","tenant":"t","jti":"j",
	 *  "intent":"write"} with any header and signature */
	const char *jwt =
	    "e30.eyJzaWQiOiJzMSIsImZpbGVzeXN0ZW1faWQiOiJmcyIsInRl"
	    "bmFudCI6InQiLCJqdGkiOiJqIiwiaW50ZW50Ijoid3JpdGUifQ.c2ln";

	CHECK_EQ(broker_audit_claims(jwt, strlen(jwt), &c), 0);
	CHECK_STR(c.sid, "s1");
	CHECK_STR(c.filesystem_id, "fs");
	CHECK_STR(c.tenant, "t");
	CHECK_STR(c.jti, "j");
	CHECK_EQ(c.intent, TOKEN_INTENT_WRITE);
	CHECK_EQ(broker_audit_claims("abc", 3, &c), -EINVAL);
	CHECK_EQ(broker_audit_claims("a.!!!.b", 7, &c), -EINVAL);
	CHECK_EQ(broker_audit_claims("a.W10.b", 7, &c), -EINVAL); /* [] */
	CHECK_EQ(broker_audit_claims("a..b", 4, &c), -EINVAL);
	CHECK_STR(c.sid, "");
}

int main(void)
{
	test_basic();
	test_rename();
	test_forget();
	test_hostile();
	test_claims();
	return unit_done("audit-names");
}
