/* One CPU thread pool for the whole process. Every CPU session (and any other engine code with
 * data-parallel work) hands its tasks to the same persistent workers, so four panes generating
 * at once share the cores instead of starting four sets of threads per matrix product.
 *
 * The workers start on first use (eng_pool_run or eng_pool_threads) and live until the process
 * ends; they block every signal, so a SIGINT handler runs on one of the application's threads.
 * Concurrency is bounded: at most eng_pool_threads() threads execute tasks at any moment,
 * counting the callers, which run tasks of their own job while they wait for it.
 */
#ifndef SIZEUP_POOL_H
#define SIZEUP_POOL_H

/* One task of a job: task is in [0, n_tasks). fn must not call eng_pool_run itself (a task
 * waiting for a nested job would hold an execution slot while it waits). */
typedef void (*eng_pool_fn)(void *arg, int task, int n_tasks);

/* Run fn(arg, t, n_tasks) for every t in [0, n_tasks) on the process-wide pool and return when
 * all are done. Safe to call from any number of threads at once; their tasks share the same
 * workers, so the process never runs more than eng_pool_threads() task-executing threads however
 * many sessions call it. n_tasks <= 1 runs inline on the caller. */
void eng_pool_run(eng_pool_fn fn, void *arg, int n_tasks);

/* How many threads execute tasks: the online cores (sysconf), or SIZEUP_THREADS when set
 * (1..256). Starts the pool on first use. */
int eng_pool_threads(void);

#endif
