/*
 * test_retention.c - unit tests for store/retention: each keep rule on
 * its own (restic's semantics: the newest snapshot of each of the N
 * newest buckets), rules combined, input order and ties, the policy with
 * no rule, and parsing of keep settings. Times are UTC (TZ is set).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "retention.h"

#define MAXN 16

/* ns since the epoch of a UTC date and time. */
static int64_t at(int y, int mon, int d, int h, int min)
{
	struct tm tm = { .tm_year = y - 1900,
			 .tm_mon = mon - 1,
			 .tm_mday = d,
			 .tm_hour = h,
			 .tm_min = min };

	return (int64_t)timegm(&tm) * 1000000000;
}

/* Apply r and return the kept ones as a string of 0/1 by index. */
static const char *kept(const struct stash_retention *r, const int64_t *t,
			size_t n)
{
	static char out[MAXN + 1];
	bool keep[MAXN];

	assert_int_equal(stash_retention_apply(r, t, n, keep), 0);
	for (size_t i = 0; i < n; i++)
		out[i] = keep[i] ? '1' : '0';
	out[n] = '\0';
	return out;
}

static void test_no_rule_keeps_all(void **state)
{
	struct stash_retention r = { 0 };
	int64_t t[3] = { at(2026, 1, 1, 0, 0), at(2026, 1, 2, 0, 0),
			 at(2026, 1, 3, 0, 0) };

	(void)state;
	assert_false(stash_retention_any(&r));
	assert_string_equal(kept(&r, t, 3), "111");
	assert_string_equal(kept(&r, t, 0), "");
}

static void test_last(void **state)
{
	struct stash_retention r = { .last = 2 };
	/* Not in time order: the two newest are indexes 0 and 3. */
	int64_t t[5] = { at(2026, 5, 5, 0, 0), at(2026, 5, 1, 0, 0),
			 at(2026, 5, 2, 0, 0), at(2026, 5, 4, 0, 0),
			 at(2026, 5, 3, 0, 0) };

	(void)state;
	assert_string_equal(kept(&r, t, 5), "10010");
	r.last = 10; /* more than there are */
	assert_string_equal(kept(&r, t, 5), "11111");
}

static void test_hourly(void **state)
{
	struct stash_retention r = { .hourly = 2 };
	int64_t t[5] = { at(2026, 3, 1, 10, 5), at(2026, 3, 1, 10, 30),
			 at(2026, 3, 1, 11, 10), at(2026, 3, 1, 11, 50),
			 at(2026, 3, 1, 12, 1) };

	(void)state;
	/* Hours 12 and 11, the newest of each. */
	assert_string_equal(kept(&r, t, 5), "00011");
	r.hourly = 3;
	assert_string_equal(kept(&r, t, 5), "01011");
}

static void test_daily_skips_empty_days(void **state)
{
	struct stash_retention r = { .daily = 3 };
	/* Days 1 (two), 2, 5 (two), 9: empty days do not count. */
	int64_t t[6] = { at(2026, 7, 1, 8, 0), at(2026, 7, 1, 20, 0),
			 at(2026, 7, 2, 8, 0), at(2026, 7, 5, 1, 0),
			 at(2026, 7, 5, 23, 0), at(2026, 7, 9, 12, 0) };

	(void)state;
	assert_string_equal(kept(&r, t, 6), "001011");
}

static void test_weekly_iso_weeks(void **state)
{
	struct stash_retention r = { .weekly = 2 };
	/* 2026-11-22 is a Sunday (ISO week 47), the 23rd a Monday (48). */
	int64_t t[4] = { at(2026, 11, 16, 9, 0), at(2026, 11, 22, 10, 0),
			 at(2026, 11, 23, 9, 0), at(2026, 11, 23, 10, 0) };

	(void)state;
	assert_string_equal(kept(&r, t, 4), "0101");
	r.weekly = 1;
	assert_string_equal(kept(&r, t, 4), "0001");
}

static void test_monthly_yearly(void **state)
{
	struct stash_retention r = { .monthly = 2 };
	int64_t t[5] = { at(2024, 12, 31, 0, 0), at(2025, 1, 15, 0, 0),
			 at(2025, 1, 20, 0, 0), at(2025, 2, 1, 0, 0),
			 at(2026, 2, 1, 0, 0) };

	(void)state;
	/* Feb 2026 and Feb 2025 are the two newest months. */
	assert_string_equal(kept(&r, t, 5), "00011");
	r = (struct stash_retention){ .yearly = 3 };
	assert_string_equal(kept(&r, t, 5), "10011");
}

static void test_rules_combine(void **state)
{
	struct stash_retention r = { .last = 1, .daily = 2 };
	int64_t t[4] = { at(2026, 4, 1, 8, 0), at(2026, 4, 2, 8, 0),
			 at(2026, 4, 3, 8, 0), at(2026, 4, 3, 9, 0) };

	(void)state;
	/* last: #3; daily: #3 (Apr 3) and #1 (Apr 2). */
	assert_string_equal(kept(&r, t, 4), "0101");
	r.hourly = 2;
	/* hourly adds #2 (Apr 3, 08h). */
	assert_string_equal(kept(&r, t, 4), "0111");
}

static void test_ties_by_index(void **state)
{
	struct stash_retention r = { .last = 1 };
	int64_t t[3] = { at(2026, 1, 1, 0, 0), at(2026, 1, 1, 0, 0),
			 at(2026, 1, 1, 0, 0) };

	(void)state;
	assert_string_equal(kept(&r, t, 3), "001");
}

static void test_parse(void **state)
{
	struct stash_retention r = { 0 };

	(void)state;
	assert_int_equal(stash_retention_parse(&r, "keep_last=3"), 1);
	assert_int_equal(stash_retention_parse(&r, "keep-daily=7"), 1);
	assert_int_equal(stash_retention_parse(&r, "keep_hourly=24"), 1);
	assert_int_equal(stash_retention_parse(&r, "keep_weekly=4"), 1);
	assert_int_equal(stash_retention_parse(&r, "keep_monthly=12"), 1);
	assert_int_equal(stash_retention_parse(&r, "keep_yearly=2"), 1);
	assert_int_equal(r.last, 3);
	assert_int_equal(r.daily, 7);
	assert_int_equal(r.hourly, 24);
	assert_int_equal(r.weekly, 4);
	assert_int_equal(r.monthly, 12);
	assert_int_equal(r.yearly, 2);
	assert_true(stash_retention_any(&r));

	assert_int_equal(stash_retention_parse(&r, "allow_other"), 0);
	assert_int_equal(stash_retention_parse(&r, "ro"), 0);
	assert_int_equal(stash_retention_parse(&r, "keep_last"), -EINVAL);
	assert_int_equal(stash_retention_parse(&r, "keep_last="), -EINVAL);
	assert_int_equal(stash_retention_parse(&r, "keep_last=x"), -EINVAL);
	assert_int_equal(stash_retention_parse(&r, "keep_last=-1"), -EINVAL);
	assert_int_equal(stash_retention_parse(&r, "keep_last=2x"), -EINVAL);
	assert_int_equal(stash_retention_parse(&r, "keep_lastx=2"), -EINVAL);
	assert_int_equal(stash_retention_parse(&r, "keep_forever=1"), -EINVAL);
	assert_int_equal(r.last, 3); /* refusals change nothing */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_rule_keeps_all),
		cmocka_unit_test(test_last),
		cmocka_unit_test(test_hourly),
		cmocka_unit_test(test_daily_skips_empty_days),
		cmocka_unit_test(test_weekly_iso_weeks),
		cmocka_unit_test(test_monthly_yearly),
		cmocka_unit_test(test_rules_combine),
		cmocka_unit_test(test_ties_by_index),
		cmocka_unit_test(test_parse),
	};

	setenv("TZ", "UTC", 1);
	tzset();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
