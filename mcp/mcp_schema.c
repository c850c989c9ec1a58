/*
 * mcp_schema.c - check tool arguments against a JSON Schema subset.
 *
 * Only what the tools' inputSchemas use is supported, and anything else in
 * a schema is a programming error caught by the unit test, not a reason to
 * accept input: type (a name or a list of names: object, integer, number,
 * string, boolean, array, null), properties, required, additionalProperties
 * (false only), minimum, maximum, maxLength.  Objects nest at most a few
 * levels here, and the input is bounded by MCP_MAX_MESSAGE, so the
 * recursion is bounded too (MAX_DEPTH makes sure).
 */
#include "mcp.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define MAX_DEPTH 8

static int bad(char *msg, size_t len, const char *where, const char *what)
{
	snprintf(msg, len, "invalid %s: %s", where, what);
	return -EINVAL;
}

static int type_is(json_t *v, const char *t)
{
	if (!strcmp(t, "object"))
		return json_is_object(v);
	if (!strcmp(t, "integer"))
		return json_is_integer(v);
	if (!strcmp(t, "number"))
		return json_is_number(v);
	if (!strcmp(t, "string"))
		return json_is_string(v);
	if (!strcmp(t, "boolean"))
		return json_is_boolean(v);
	if (!strcmp(t, "array"))
		return json_is_array(v);
	if (!strcmp(t, "null"))
		return json_is_null(v);
	return 0;
}

static int type_ok(json_t *schema, json_t *v)
{
	json_t *t = json_object_get(schema, "type"), *e;
	size_t i;

	if (!t)
		return 1;
	if (json_is_string(t))
		return type_is(v, json_string_value(t));
	json_array_foreach(t, i, e)
	{
		if (json_is_string(e) && type_is(v, json_string_value(e)))
			return 1;
	}
	return 0;
}

static int check(json_t *schema, json_t *v, const char *where, int depth,
		 char *msg, size_t len);

static int check_object(json_t *schema, json_t *v, const char *where, int depth,
			char *msg, size_t len)
{
	json_t *props = json_object_get(schema, "properties");
	json_t *req = json_object_get(schema, "required"), *e, *sub;
	json_t *addl = json_object_get(schema, "additionalProperties");
	const char *k;
	char name[160];
	size_t i;
	int rc;

	json_array_foreach(req, i, e)
	{
		if (json_is_string(e) &&
		    !json_object_get(v, json_string_value(e))) {
			snprintf(name, sizeof(name), "'%s' is required",
				 json_string_value(e));
			return bad(msg, len, where, name);
		}
	}
	json_object_foreach(v, k, e)
	{
		sub = json_object_get(props, k);
		if (!sub) {
			if (json_is_false(addl))
				/* The peer's key is not echoed back. */
				return bad(msg, len, where,
					   "unexpected property (this tool "
					   "takes no such argument)");
			continue;
		}
		snprintf(name, sizeof(name), "%s.%.64s", where, k);
		rc = check(sub, e, name, depth + 1, msg, len);
		if (rc)
			return rc;
	}
	return 0;
}

static int check(json_t *schema, json_t *v, const char *where, int depth,
		 char *msg, size_t len)
{
	json_t *min = json_object_get(schema, "minimum");
	json_t *max = json_object_get(schema, "maximum");
	json_t *maxlen = json_object_get(schema, "maxLength");
	char what[96];

	if (depth > MAX_DEPTH)
		return bad(msg, len, where, "nested too deeply");
	if (!type_ok(schema, v)) {
		snprintf(
		    what, sizeof(what), "wrong type (want %s)",
		    json_is_string(json_object_get(schema, "type"))
			? json_string_value(json_object_get(schema, "type"))
			: "another type");
		return bad(msg, len, where, what);
	}
	if (json_is_number(v) && min &&
	    json_number_value(v) < json_number_value(min)) {
		snprintf(what, sizeof(what), "below the minimum %g",
			 json_number_value(min));
		return bad(msg, len, where, what);
	}
	if (json_is_number(v) && max &&
	    json_number_value(v) > json_number_value(max)) {
		snprintf(what, sizeof(what), "above the maximum %g",
			 json_number_value(max));
		return bad(msg, len, where, what);
	}
	if (json_is_string(v) && maxlen &&
	    json_string_length(v) > (size_t)json_integer_value(maxlen))
		return bad(msg, len, where, "string too long");
	if (json_is_object(v))
		return check_object(schema, v, where, depth, msg, len);
	return 0;
}

int mcp_schema_check(json_t *schema, json_t *value, const char *where,
		     char *msg, size_t msglen)
{
	return check(schema, value, where, 0, msg, msglen);
}
