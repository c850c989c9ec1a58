/* tests/unit/test_backend_local.c: not yet implemented. */
