/*
 * pool.c - worker threads draining one FIFO queue.
 */
#include "pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

struct stash_pool {
	pthread_mutex_t lock;	       /* guards everything below */
	pthread_cond_t not_empty;      /* signalled when a job is queued */
	pthread_cond_t not_full;       /* signalled when a job is taken */
	struct stash_job *head, *tail; /* the queue */
	unsigned queued, max_queued;
	int stopping; /* set by free: drain, then exit */
	unsigned nthreads;
	pthread_t threads[];
};

static void *worker(void *arg)
{
	struct stash_pool *pool = arg;

	for (;;) {
		struct stash_job *job;

		pthread_mutex_lock(&pool->lock);
		while (!pool->head && !pool->stopping)
			pthread_cond_wait(&pool->not_empty, &pool->lock);
		job = pool->head;
		if (!job) {
			pthread_mutex_unlock(&pool->lock);
			return NULL;
		}
		pool->head = job->next;
		if (!pool->head)
			pool->tail = NULL;
		pool->queued--;
		pthread_cond_signal(&pool->not_full);
		pthread_mutex_unlock(&pool->lock);
		job->run(job);
	}
}

int stash_pool_new(struct stash_pool **out, unsigned nthreads,
		   unsigned max_queued)
{
	struct stash_pool *pool;

	if (nthreads == 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);

		nthreads = n > 0 ? (unsigned)n : 1;
	}
	if (max_queued == 0)
		max_queued = 1;
	pool = calloc(1, sizeof(*pool) + nthreads * sizeof(pthread_t));
	if (!pool)
		return -ENOMEM;
	pthread_mutex_init(&pool->lock, NULL);
	pthread_cond_init(&pool->not_empty, NULL);
	pthread_cond_init(&pool->not_full, NULL);
	pool->max_queued = max_queued;
	for (unsigned i = 0; i < nthreads; i++) {
		int err = pthread_create(&pool->threads[i], NULL, worker, pool);

		if (err) {
			stash_pool_free(pool);
			return -err;
		}
		pool->nthreads++;
	}
	*out = pool;
	return 0;
}

void stash_pool_free(struct stash_pool *pool)
{
	if (!pool)
		return;
	pthread_mutex_lock(&pool->lock);
	pool->stopping = 1;
	pthread_cond_broadcast(&pool->not_empty);
	pthread_mutex_unlock(&pool->lock);
	for (unsigned i = 0; i < pool->nthreads; i++)
		pthread_join(pool->threads[i], NULL);
	pthread_mutex_destroy(&pool->lock);
	pthread_cond_destroy(&pool->not_empty);
	pthread_cond_destroy(&pool->not_full);
	free(pool);
}

void stash_pool_submit(struct stash_pool *pool, struct stash_job *job)
{
	job->next = NULL;
	pthread_mutex_lock(&pool->lock);
	while (pool->queued >= pool->max_queued)
		pthread_cond_wait(&pool->not_full, &pool->lock);
	if (pool->tail)
		pool->tail->next = job;
	else
		pool->head = job;
	pool->tail = job;
	pool->queued++;
	pthread_cond_signal(&pool->not_empty);
	pthread_mutex_unlock(&pool->lock);
}
