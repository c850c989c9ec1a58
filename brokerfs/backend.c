/*
 * backend.c - the table of storage backends the broker can serve from.
 */
#include <stddef.h>
#include <string.h>

#include "backend.h"

static const struct backend_ops *const backend_table[] = {
    &backend_local,
    &backend_s3,
};

const struct backend_ops *backend_find(const char *name)
{
	size_t i;

	for (i = 0; name && i < sizeof(backend_table) / sizeof(*backend_table);
	     i++)
		if (strcmp(backend_table[i]->name, name) == 0)
			return backend_table[i];
	return NULL;
}
