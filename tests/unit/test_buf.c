/*
 * test_buf.c - the bounded byte buffer: growth, ceiling, consume, steal.
 */
#include "buf.h"
#include "unit.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void test_grow(void)
{
	uint8_t data[5000];
	struct buf b;
	size_t i;
	int bad = 0;

	for (i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)i;
	buf_init(&b, 0);
	CHECK(b.p == NULL && b.len == 0 && b.limit == SIZE_MAX);
	CHECK_EQ(buf_append(&b, data, 0), 0);
	CHECK(b.p == NULL);
	for (i = 0; i < sizeof(data); i += 100)
		if (buf_append(&b, data + i, 100))
			bad++;
	CHECK_EQ(bad, 0);
	CHECK_EQ(b.len, sizeof(data));
	CHECK(b.cap >= b.len);
	CHECK(memcmp(b.p, data, sizeof(data)) == 0);
	buf_reset(&b);
	CHECK_EQ(b.len, 0);
	CHECK(b.cap >= sizeof(data)); /* memory is kept */
	buf_cleanup(&b);
	CHECK(b.p == NULL && b.len == 0 && b.cap == 0);
	CHECK(b.limit == SIZE_MAX);
}

static void test_limit(void)
{
	struct buf b;

	buf_init(&b, 10);
	CHECK_EQ(buf_append(&b, "0123456789", 10), 0);
	CHECK_EQ(buf_append(&b, "x", 1), -E2BIG);
	CHECK_EQ(b.len, 10);
	CHECK(b.cap <= 10);
	CHECK(memcmp(b.p, "0123456789", 10) == 0);
	CHECK_EQ(buf_reserve(&b, 0), 0);
	CHECK_EQ(buf_reserve(&b, 1), -E2BIG);
	buf_consume(&b, 4);
	CHECK_EQ(buf_reserve(&b, 4), 0);
	CHECK_EQ(buf_reserve(&b, 5), -E2BIG);
	/* Overflowing sizes are refused, not wrapped. */
	CHECK_EQ(buf_reserve(&b, SIZE_MAX), -E2BIG);
	CHECK_EQ(buf_reserve(&b, SIZE_MAX - 2), -E2BIG);
	buf_cleanup(&b);
	CHECK_EQ(b.limit, 10); /* the ceiling survives cleanup */

	buf_init(&b, 0);
	CHECK_EQ(buf_append(&b, "a", 1), 0);
	CHECK_EQ(buf_reserve(&b, SIZE_MAX), -E2BIG);
	CHECK_EQ(b.len, 1);
	buf_cleanup(&b);
}

static void test_consume(void)
{
	struct buf b;

	buf_init(&b, 0);
	CHECK_EQ(buf_append(&b, "abcdef", 6), 0);
	buf_consume(&b, 0);
	CHECK_EQ(b.len, 6);
	buf_consume(&b, 2);
	CHECK_EQ(b.len, 4);
	CHECK(memcmp(b.p, "cdef", 4) == 0);
	CHECK_EQ(buf_append(&b, "gh", 2), 0);
	CHECK(memcmp(b.p, "cdefgh", 6) == 0);
	buf_consume(&b, 6);
	CHECK_EQ(b.len, 0);
	CHECK_EQ(buf_append(&b, "ij", 2), 0);
	buf_consume(&b, 100);
	CHECK_EQ(b.len, 0);
	buf_cleanup(&b);
}

static void test_steal(void)
{
	struct buf b;
	size_t len = 99;
	char *p;

	buf_init(&b, 64);
	CHECK_EQ(buf_append(&b, "stolen", 6), 0);
	p = buf_steal(&b, &len);
	CHECK(p != NULL);
	CHECK_EQ(len, 6);
	CHECK(p && memcmp(p, "stolen", 6) == 0);
	CHECK(b.p == NULL && b.len == 0 && b.cap == 0);
	CHECK_EQ(b.limit, 64);
	/* The buffer is usable again and independent of the stolen bytes. */
	CHECK_EQ(buf_append(&b, "new", 3), 0);
	CHECK(b.p != (uint8_t *)p);
	free(p);
	p = buf_steal(&b, NULL);
	free(p);
	p = buf_steal(&b, &len);
	CHECK(p == NULL);
	CHECK_EQ(len, 0);
	buf_cleanup(&b);
}

int main(void)
{
	test_grow();
	test_limit();
	test_consume();
	test_steal();
	return unit_done("test_buf");
}
