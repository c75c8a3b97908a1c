#define _GNU_SOURCE
#include "recur_kernels.h"
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

typedef void (*job_fn)(void *ctx, int index, int count);

struct recur_pool {
    int threads;
    pthread_t *workers;
    atomic_int owner;         /* 0 free, 1 taken */
    atomic_uint generation;   /* bumped to publish a job */
    atomic_int pending;       /* workers still running the current job */
    atomic_int sleepers;      /* workers blocked in futex wait */
    job_fn fn;
    void *ctx;
};

typedef struct { recur_pool *pool; int index; } worker_arg;

/* Workers run for the life of the process: a pool is never destroyed (InferencePool.shared). */

static void futex_wait(atomic_uint *addr, unsigned expected) {
    syscall(SYS_futex, (unsigned *)addr, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0);
}
static void futex_wake_all(atomic_uint *addr) {
    syscall(SYS_futex, (unsigned *)addr, FUTEX_WAKE_PRIVATE, 1 << 30, NULL, NULL, 0);
}

static inline void cpu_relax(void) {
#if defined(__x86_64__)
    __builtin_ia32_pause();
#endif
}

/* About 50 µs of spinning before a worker sleeps: long enough to stay hot between the tokens
 * of a busy stream, short enough that an idle daemon goes quiet at once. */
#define SPIN_ROUNDS 20000

static void *worker_main(void *p) {
    worker_arg arg = *(worker_arg *)p;
    free(p);
    recur_pool *pool = arg.pool;
    /* Generation 0 is the pool's state at creation: a worker that starts late must still run
     * every job published since, so it must not read the current generation here. */
    unsigned seen = 0;
    for (;;) {
        unsigned g;
        int spins = 0;
        while ((g = atomic_load_explicit(&pool->generation, memory_order_acquire)) == seen) {
            if (++spins < SPIN_ROUNDS) { cpu_relax(); continue; }
            atomic_fetch_add(&pool->sleepers, 1);
            /* seq_cst pairs with pool_run's increment-then-check of sleepers: no lost wake-up. */
            if (atomic_load(&pool->generation) == seen) futex_wait(&pool->generation, seen);
            atomic_fetch_sub(&pool->sleepers, 1);
            spins = 0;
        }
        seen = g;
        pool->fn(pool->ctx, arg.index, pool->threads);
        atomic_fetch_sub_explicit(&pool->pending, 1, memory_order_release);
    }
}

recur_pool *recur_pool_create(int threads) {
    if (threads < 1) threads = 1;
    recur_pool *pool = calloc(1, sizeof *pool);
    if (!pool) return NULL;
    pool->threads = threads;
    pool->workers = calloc((size_t)threads, sizeof(pthread_t));
    for (int i = 1; i < threads; i++) {
        worker_arg *arg = malloc(sizeof *arg);
        arg->pool = pool;
        arg->index = i;
        if (pthread_create(&pool->workers[i], NULL, worker_main, arg) != 0) {
            free(arg);
            pool->threads = i; /* run with the workers that did start */
            break;
        }
    }
    return pool;
}

int recur_pool_try_acquire(recur_pool *pool) {
    int expected = 0;
    return atomic_compare_exchange_strong(&pool->owner, &expected, 1);
}

void recur_pool_release(recur_pool *pool) { atomic_store(&pool->owner, 0); }

void recur_pool_run(recur_pool *pool, job_fn fn, void *ctx) {
    if (!pool || pool->threads == 1) { fn(ctx, 0, 1); return; }
    pool->fn = fn;
    pool->ctx = ctx;
    atomic_store_explicit(&pool->pending, pool->threads - 1, memory_order_relaxed);
    atomic_fetch_add(&pool->generation, 1);
    if (atomic_load(&pool->sleepers) > 0) futex_wake_all(&pool->generation);
    fn(ctx, 0, pool->threads);
    /* Spin for the worker; yield now and then so that on an oversubscribed machine the worker
     * we wait for gets the CPU instead of us burning it. */
    for (int spins = 0; atomic_load_explicit(&pool->pending, memory_order_acquire) > 0; spins++) {
        if ((spins & 4095) == 4095) sched_yield(); else cpu_relax();
    }
}
