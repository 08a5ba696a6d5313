/* The process-wide CPU thread pool (see pool.h for the contract).
 *
 * A job lives on its caller's stack and sits in a queue while it has tasks to hand out; any
 * executor takes the next task with one atomic increment. Executors are the persistent workers
 * (eng_pool_threads() - 1 of them) and the callers themselves, and every one of them must hold an
 * execution slot (g.running < g.n_threads) while it runs tasks: that is what keeps several
 * sessions calling at once from oversubscribing the cores. A caller that cannot get a slot waits
 * for its job, retrying whenever a slot is given back.
 *
 * Latency matters more than elegance here: decoding a token issues a couple of hundred small
 * products. An idle worker therefore polls the queue (up to about a millisecond since its last
 * task) before it sleeps on a condition variable, and a caller polls for its helpers to finish
 * before sleeping.
 * All state a task reads or writes is handed over through g.mu (publish, pick, detach), so the
 * only lock-free reads are hints that are always confirmed under the lock.
 */
#include "engine/pool.h"

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#define POOL_MAX_THREADS 256
/* Polls (sched_yield) before sleeping: up to ~2 ms on an idle machine. 100 cost prompt batches
 * about 10% in wake-ups (135M Q4_0 pp128 452-470 -> 517-532 t/s, docs/PERFORMANCE.md). */
#define POOL_SPIN 2000

typedef struct pool_job {
    eng_pool_fn fn;
    void *arg;
    int n;
    atomic_int next;       /* next task to hand out; >= n once all are handed out */
    atomic_int users;      /* workers attached (changed under g.mu; read lock-free as a hint) */
    struct pool_job *link; /* the queue (under g.mu) */
    bool queued;
} pool_job;

static struct {
    pthread_once_t once;
    int n_threads;
    pthread_mutex_t mu;
    pthread_cond_t work_cv;   /* workers sleep here: nothing queued, or every slot taken */
    pthread_cond_t done_cv;   /* callers sleep here until their job is done or a slot frees */
    pool_job *head, *tail;    /* jobs that may have tasks left, oldest first (under mu) */
    atomic_int n_queued;      /* the queue's length, polled by idle workers without the lock */
    atomic_int running;       /* threads executing tasks now: <= n_threads */
    int sleeping, waiting;    /* workers on work_cv, callers on done_cv (under mu) */
} g = { .once = PTHREAD_ONCE_INIT, .mu = PTHREAD_MUTEX_INITIALIZER,
        .work_cv = PTHREAD_COND_INITIALIZER, .done_cv = PTHREAD_COND_INITIALIZER };

/* One poll's wait. sched_yield rather than a pause instruction: on an idle machine it returns at
 * once (a microsecond), and on a busy one (CI: 2 cores, several builds) it hands the core to
 * whoever can use it instead of burning the slice; measured tg16 of a 135M Q8_0 model under load
 * 9.5 t/s with pause-spinning, 11-14 with sched_yield. */
static inline void cpu_relax(void)
{
    sched_yield();
}

static bool claim_slot(void)
{
    int r = atomic_load(&g.running);
    while (r < g.n_threads)
        if (atomic_compare_exchange_weak(&g.running, &r, r + 1))
            return true;
    return false;
}

/* A slot came back or a job was queued: let whoever may now run go. */
static void wake_locked(void)
{
    if (g.waiting)
        pthread_cond_broadcast(&g.done_cv);
    if (g.head && g.sleeping)
        pthread_cond_signal(&g.work_cv);
}

static void release_slot_locked(void)
{
    atomic_fetch_sub(&g.running, 1);
    wake_locked();
}

static void dequeue_locked(pool_job *j)
{
    pool_job *prev = NULL;
    for (pool_job *p = g.head; p; prev = p, p = p->link) {
        if (p != j)
            continue;
        if (prev)
            prev->link = j->link;
        else
            g.head = j->link;
        if (g.tail == j)
            g.tail = prev;
        j->queued = false;
        atomic_fetch_sub(&g.n_queued, 1);
        return;
    }
}

/* The oldest job with tasks left, attached (users + 1); exhausted jobs met on the way leave the
 * queue (their callers are only waiting for the last tasks to finish). */
static pool_job *pick_locked(void)
{
    while (g.head) {
        pool_job *j = g.head;
        if (atomic_load(&j->next) < j->n) {
            atomic_fetch_add(&j->users, 1);
            return j;
        }
        dequeue_locked(j);
    }
    return NULL;
}

static void drain(pool_job *j)
{
    for (int t; (t = atomic_fetch_add(&j->next, 1)) < j->n;)
        j->fn(j->arg, t, j->n);
}

/* A worker polls the queue (POOL_SPIN polls since it last ran a task) before it sleeps. Meeting
 * only finished jobs in the queue is no reason to sleep: a caller's job stays queued until the
 * caller returns, so after every job a worker finds exactly that, and sleeping then made every
 * token's next product wait for a futex wake-up (135M Q4_0 tg32 with 2 threads: 150 t/s, the
 * same as with 1; polling on: 200). It sleeps at once only when no execution slot is free, as
 * a slot given back wakes it. */
static void *worker_main(void *arg)
{
    (void)arg;
    int idle = 0; /* polls since this worker last ran a task */
    for (;;) {
        for (; idle < POOL_SPIN && !atomic_load_explicit(&g.n_queued, memory_order_relaxed); idle++)
            cpu_relax();
        pthread_mutex_lock(&g.mu);
        pool_job *j = NULL;
        for (;;) {
            bool no_slot = false;
            if (g.head && !(no_slot = !claim_slot()) && !(j = pick_locked()))
                atomic_fetch_sub(&g.running, 1); /* the queue held only finished jobs */
            if (j || (!no_slot && idle < POOL_SPIN))
                break;
            g.sleeping++;
            pthread_cond_wait(&g.work_cv, &g.mu);
            g.sleeping--;
        }
        pthread_mutex_unlock(&g.mu);
        if (!j) { /* nothing to run yet: poll on */
            cpu_relax();
            idle++;
            continue;
        }
        idle = 0;
        drain(j);
        pthread_mutex_lock(&g.mu);
        atomic_fetch_sub(&j->users, 1); /* the last touch of j: its caller may return now */
        release_slot_locked();
        pthread_mutex_unlock(&g.mu);
    }
    return NULL;
}

static int threads_wanted(void)
{
    const char *e = getenv("SIZEUP_THREADS");
    if (e && *e) {
        char *end;
        long v = strtol(e, &end, 10);
        if (!*end && v >= 1 && v <= POOL_MAX_THREADS)
            return (int)v;
    }
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    return cores < 1 ? 1 : cores > POOL_MAX_THREADS ? POOL_MAX_THREADS : (int)cores;
}

/* Workers block every signal, so handlers (Ctrl-C in `sizeup run`) run on the app's threads
 * and interrupt its system calls as they expect. A worker that cannot be created only costs
 * parallelism: callers run their own tasks. */
static void pool_start(void)
{
    g.n_threads = threads_wanted();
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    for (int i = 1; i < g.n_threads; i++) {
        pthread_t th;
        if (pthread_create(&th, &at, worker_main, NULL) != 0)
            break;
    }
    pthread_attr_destroy(&at);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

int eng_pool_threads(void)
{
    pthread_once(&g.once, pool_start);
    return g.n_threads;
}

/* The caller's share: run tasks while it holds a slot, then wait (polling briefly) until the
 * workers attached to the job have finished theirs. Returns with g.mu held. */
static void run_and_wait(pool_job *j, bool have_slot)
{
    if (have_slot)
        drain(j);
    pthread_mutex_lock(&g.mu);
    if (have_slot)
        release_slot_locked();
    for (int i = 0; atomic_load(&j->users) || atomic_load(&j->next) < j->n; i++) {
        if (atomic_load(&j->next) < j->n && claim_slot()) {
            pthread_mutex_unlock(&g.mu);
            drain(j);
            pthread_mutex_lock(&g.mu);
            release_slot_locked();
        } else if (i < 1) {
            pthread_mutex_unlock(&g.mu);
            for (int k = 0; k < POOL_SPIN && atomic_load(&j->users); k++)
                cpu_relax();
            pthread_mutex_lock(&g.mu);
        } else {
            g.waiting++;
            pthread_cond_wait(&g.done_cv, &g.mu);
            g.waiting--;
        }
    }
}

void eng_pool_run(eng_pool_fn fn, void *arg, int n_tasks)
{
    if (n_tasks <= 1) {
        if (n_tasks == 1)
            fn(arg, 0, 1);
        return;
    }
    pthread_once(&g.once, pool_start);
    pool_job j = { .fn = fn, .arg = arg, .n = n_tasks };
    atomic_init(&j.next, 0);
    atomic_init(&j.users, 0);
    /* claimed before the job is visible, so a free core always starts on its own work */
    bool have_slot = claim_slot();
    pthread_mutex_lock(&g.mu);
    if (g.tail)
        g.tail->link = &j;
    else
        g.head = &j;
    g.tail = &j;
    j.queued = true;
    atomic_fetch_add(&g.n_queued, 1);
    if (g.sleeping && n_tasks > 2)
        pthread_cond_broadcast(&g.work_cv);
    else if (g.sleeping)
        pthread_cond_signal(&g.work_cv);
    pthread_mutex_unlock(&g.mu);
    run_and_wait(&j, have_slot);
    if (j.queued)
        dequeue_locked(&j);
    pthread_mutex_unlock(&g.mu);
}
