/*
 * fuzz_policy.c - fuzz target for the policy loader: any bytes as one
 * policy file must give a policy or problems, never a crash or a leak.
 * Secret-file checks are off so the input alone decides the path taken.
 */
#include <stddef.h>
#include <stdint.h>

#include "policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct policy_opts opts = {.flags = POLICY_NO_FILE_CHECKS};
	struct policy_problems probs = {0};
	struct policy *pol;

	pol = policy_load_buf("fuzz.yaml", (const char *)data, size, &opts,
			      &probs);
	if (pol) {
		/* Exercise the lookups on whatever was accepted. */
		policy_fs_find(pol, "agent-1");
		policy_egress_allowed(pol, "api.example.com", 443);
		policy_unref(pol);
	}
	policy_problems_free(&probs);
	return 0;
}
