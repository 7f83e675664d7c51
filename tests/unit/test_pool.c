/*
 * test_pool.c - unit tests for the worker pool (store/pool.c): every job
 * runs exactly once, submit blocks while the queue is full, and free runs
 * what is still queued before it returns.
 *
 * Blocking is shown by a submitter that must not get through while a gate
 * job holds the only worker: the test waits a bounded time for something
 * that must not happen, then opens the gate and waits for what must.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "pool.h"

struct counted {
	struct stash_job base;	 /* first: the pool sees this */
	atomic_int runs;	 /* times run was called */
	atomic_int *done;	 /* shared count of finished jobs */
	unsigned spin_us;	 /* work to do, microseconds */
	atomic_uintptr_t thread; /* who ran it */
};

static void counted_run(struct stash_job *base)
{
	struct counted *j = (struct counted *)base;

	if (j->spin_us)
		usleep(j->spin_us);
	atomic_store(&j->thread, (uintptr_t)pthread_self());
	atomic_fetch_add(&j->runs, 1);
	if (j->done)
		atomic_fetch_add(j->done, 1);
}

/* A job that blocks its worker until the test opens it. */
struct gate {
	struct stash_job base;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool started, open;
};

static void gate_run(struct stash_job *base)
{
	struct gate *g = (struct gate *)base;

	pthread_mutex_lock(&g->lock);
	g->started = true;
	pthread_cond_broadcast(&g->cond);
	while (!g->open)
		pthread_cond_wait(&g->cond, &g->lock);
	pthread_mutex_unlock(&g->lock);
}

static void gate_init(struct gate *g)
{
	memset(g, 0, sizeof(*g));
	g->base.run = gate_run;
	pthread_mutex_init(&g->lock, NULL);
	pthread_cond_init(&g->cond, NULL);
}

static void gate_wait_started(struct gate *g)
{
	pthread_mutex_lock(&g->lock);
	while (!g->started)
		pthread_cond_wait(&g->cond, &g->lock);
	pthread_mutex_unlock(&g->lock);
}

static void gate_open(struct gate *g)
{
	pthread_mutex_lock(&g->lock);
	g->open = true;
	pthread_cond_broadcast(&g->cond);
	pthread_mutex_unlock(&g->lock);
}

static void gate_destroy(struct gate *g)
{
	pthread_mutex_destroy(&g->lock);
	pthread_cond_destroy(&g->cond);
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* Several submitters, many jobs: each runs once, on a worker. */
struct submitter {
	struct stash_pool *pool;
	struct counted *jobs;
	size_t n;
};

static void *submit_all(void *arg)
{
	struct submitter *s = arg;

	for (size_t i = 0; i < s->n; i++)
		stash_pool_submit(s->pool, &s->jobs[i].base);
	return NULL;
}

static void test_each_once(void **state)
{
	enum { SUBMITTERS = 4, PER = 5000 };
	struct stash_pool *pool = NULL;
	struct submitter sub[SUBMITTERS];
	pthread_t t[SUBMITTERS];
	struct counted *jobs = calloc(SUBMITTERS * PER, sizeof(*jobs));
	atomic_int done = 0;
	uintptr_t self = (uintptr_t)pthread_self();

	(void)state;
	assert_non_null(jobs);
	for (size_t i = 0; i < SUBMITTERS * PER; i++) {
		jobs[i].base.run = counted_run;
		jobs[i].done = &done;
		jobs[i].spin_us = i % 97 == 0 ? 50 : 0;
	}
	assert_int_equal(stash_pool_new(&pool, 4, 8), 0);
	assert_non_null(pool);
	for (int i = 0; i < SUBMITTERS; i++) {
		sub[i] = (struct submitter){ pool, jobs + i * PER, PER };
		assert_int_equal(
			pthread_create(&t[i], NULL, submit_all, &sub[i]), 0);
	}
	for (int i = 0; i < SUBMITTERS; i++)
		assert_int_equal(pthread_join(t[i], NULL), 0);
	stash_pool_free(pool);
	assert_int_equal(atomic_load(&done), SUBMITTERS * PER);
	for (size_t i = 0; i < SUBMITTERS * PER; i++) {
		assert_int_equal(atomic_load(&jobs[i].runs), 1);
		assert_true(atomic_load(&jobs[i].thread) != self);
	}
	free(jobs);
}

/* nthreads 0 means one per CPU; max_queued 0 still makes progress. */
static void test_defaults(void **state)
{
	struct stash_pool *pool = NULL;
	struct counted jobs[100];
	atomic_int done = 0;

	(void)state;
	memset(jobs, 0, sizeof(jobs));
	assert_int_equal(stash_pool_new(&pool, 0, 0), 0);
	for (size_t i = 0; i < sizeof(jobs) / sizeof(jobs[0]); i++) {
		jobs[i].base.run = counted_run;
		jobs[i].done = &done;
		stash_pool_submit(pool, &jobs[i].base);
	}
	stash_pool_free(pool);
	assert_int_equal(atomic_load(&done), 100);
	for (size_t i = 0; i < 100; i++)
		assert_int_equal(atomic_load(&jobs[i].runs), 1);
	/* free accepts NULL */
	stash_pool_free(NULL);
}

struct blocked_submit {
	struct stash_pool *pool;
	struct counted *jobs;
	size_t n;
	atomic_size_t submitted; /* submits that returned */
};

static void *submit_counting(void *arg)
{
	struct blocked_submit *b = arg;

	for (size_t i = 0; i < b->n; i++) {
		stash_pool_submit(b->pool, &b->jobs[i].base);
		atomic_fetch_add(&b->submitted, 1);
	}
	return NULL;
}

/* With the only worker held by a gate, exactly max_queued jobs fit. */
static void test_bounded(void **state)
{
	enum { MAXQ = 3, MORE = 10 };
	struct stash_pool *pool = NULL;
	struct gate g;
	struct counted jobs[MORE];
	struct blocked_submit b;
	atomic_int done = 0;
	pthread_t t;

	(void)state;
	memset(jobs, 0, sizeof(jobs));
	for (int i = 0; i < MORE; i++) {
		jobs[i].base.run = counted_run;
		jobs[i].done = &done;
	}
	gate_init(&g);
	assert_int_equal(stash_pool_new(&pool, 1, MAXQ), 0);
	stash_pool_submit(pool, &g.base);
	gate_wait_started(&g); /* the worker holds the gate: queue empty */

	b = (struct blocked_submit){ .pool = pool, .jobs = jobs, .n = MORE };
	assert_int_equal(pthread_create(&t, NULL, submit_counting, &b), 0);
	/* MAXQ submits get through at once; the next one blocks */
	for (int i = 0; i < 1000 && atomic_load(&b.submitted) < MAXQ; i++)
		sleep_ms(5);
	assert_int_equal(atomic_load(&b.submitted), MAXQ);
	sleep_ms(200);
	assert_int_equal(atomic_load(&b.submitted), MAXQ);
	assert_int_equal(atomic_load(&done), 0);

	gate_open(&g);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(atomic_load(&b.submitted), MORE);
	stash_pool_free(pool);
	assert_int_equal(atomic_load(&done), MORE);
	for (int i = 0; i < MORE; i++)
		assert_int_equal(atomic_load(&jobs[i].runs), 1);
	gate_destroy(&g);
}

struct freer {
	struct stash_pool *pool;
	atomic_bool returned;
};

static void *free_pool(void *arg)
{
	struct freer *f = arg;

	stash_pool_free(f->pool);
	atomic_store(&f->returned, true);
	return NULL;
}

/* free waits for the running job and runs every queued one first. */
static void test_free_drains(void **state)
{
	enum { MAXQ = 16 };
	struct stash_pool *pool = NULL;
	struct gate g;
	struct counted jobs[MAXQ];
	struct freer fr;
	atomic_int done = 0;
	pthread_t t;

	(void)state;
	memset(jobs, 0, sizeof(jobs));
	gate_init(&g);
	assert_int_equal(stash_pool_new(&pool, 2, MAXQ), 0);
	stash_pool_submit(pool, &g.base);
	gate_wait_started(&g);
	/* one worker is held; the other drains slowly */
	for (int i = 0; i < MAXQ; i++) {
		jobs[i].base.run = counted_run;
		jobs[i].done = &done;
		jobs[i].spin_us = 2000;
		stash_pool_submit(pool, &jobs[i].base);
	}
	fr = (struct freer){ .pool = pool };
	assert_int_equal(pthread_create(&t, NULL, free_pool, &fr), 0);
	/* free cannot return while the gate job runs */
	sleep_ms(100);
	assert_false(atomic_load(&fr.returned));
	gate_open(&g);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_true(atomic_load(&fr.returned));
	assert_int_equal(atomic_load(&done), MAXQ);
	for (int i = 0; i < MAXQ; i++)
		assert_int_equal(atomic_load(&jobs[i].runs), 1);
	gate_destroy(&g);

	/* freed right after submitting: nothing is dropped */
	memset(jobs, 0, sizeof(jobs));
	atomic_store(&done, 0);
	assert_int_equal(stash_pool_new(&pool, 1, MAXQ), 0);
	for (int i = 0; i < MAXQ; i++) {
		jobs[i].base.run = counted_run;
		jobs[i].done = &done;
		jobs[i].spin_us = 500;
		stash_pool_submit(pool, &jobs[i].base);
	}
	stash_pool_free(pool);
	assert_int_equal(atomic_load(&done), MAXQ);
	for (int i = 0; i < MAXQ; i++)
		assert_int_equal(atomic_load(&jobs[i].runs), 1);
}

/* Jobs of one submitter on a one-thread pool run in submission order. */
struct ordered {
	struct stash_job base;
	int idx;
	int *log;
	int *n;
};

static void ordered_run(struct stash_job *base)
{
	struct ordered *o = (struct ordered *)base;

	o->log[(*o->n)++] = o->idx; /* one worker: no race */
}

static void test_fifo(void **state)
{
	enum { N = 500 };
	struct stash_pool *pool = NULL;
	struct ordered jobs[N];
	int log[N], n = 0;

	(void)state;
	assert_int_equal(stash_pool_new(&pool, 1, 4), 0);
	for (int i = 0; i < N; i++) {
		jobs[i] = (struct ordered){
			.base.run = ordered_run, .idx = i, .log = log, .n = &n
		};
		stash_pool_submit(pool, &jobs[i].base);
	}
	stash_pool_free(pool);
	assert_int_equal(n, N);
	for (int i = 0; i < N; i++)
		assert_int_equal(log[i], i);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_each_once),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_bounded),
		cmocka_unit_test(test_free_drains),
		cmocka_unit_test(test_fifo),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
