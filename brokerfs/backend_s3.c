/*
 * backend_s3.c - the s3 backend: one object per file under
 * <bucket>/<prefix>/<filesystem_id>/.
 */
#include <errno.h>
#include <stddef.h>

#include "backend.h"
#include "log.h"

static int s3b_check(const struct broker_config *cfg)
{
	(void)cfg;
	log_err("the s3 backend is not available in this build");
	return -ENOSYS;
}

const struct backend_ops backend_s3 = {
    .name = "s3",
    .check = s3b_check,
};
