/* Scheduling several models' work on one machine, so that a comparison is a fair experiment and
 * says which experiment it was. Two modes:
 *   fair        one job at a time with the device to itself, after a warm-up round, in an
 *               order shuffled afresh for every round from a seed (so no model always goes
 *               first, and a run can be repeated exactly);
 *   concurrent  every job of a round on its own thread, released together: the contention a
 *               user of several apps at once sees.
 * Speeds measured in one mode are not comparable with the other's; every figure derived from a
 * run carries the mode's name. The start and end of every job are recorded, so callers (and
 * tests) can see who waited for whom. Used by `sizeup compare`, and meant for the TUI's panes.
 */
#ifndef SIZEUP_APP_SCHED_H
#define SIZEUP_APP_SCHED_H

#include <stdbool.h>
#include <stdatomic.h>
#include <stdint.h>

typedef enum app_sched_mode { APP_SCHED_FAIR = 0, APP_SCHED_CONCURRENT } app_sched_mode;

const char *app_sched_mode_name(app_sched_mode m);   /* "fair", "concurrent" */
/* "fair" or "concurrent" into *out; false for anything else. */
bool app_sched_mode_parse(const char *s, app_sched_mode *out);

/* When one run of one job happened: seconds on the monotonic clock (app_now_s). */
typedef struct app_sched_span {
    int job, rep;
    double start, end;
} app_sched_span;

/* One run of job `job` (0 .. n_jobs-1) for repeat `rep` (-1: the warm-up, not recorded).
 * Called from the calling thread in fair mode and from a worker thread per job in concurrent
 * mode, so it must touch only that job's state. Returns 0, or nonzero to stop the schedule. */
typedef int (*app_sched_fn)(void *user, int job, int rep);

/* Run every job `reps` times, after one warm-up round when `warmup`. spans receives n_jobs*reps
 * entries (caller allocates), round by round, in the order the jobs ran (fair) or by job
 * (concurrent). The shuffle draws from *rng, which advances (seed it once per experiment).
 * Returns 0, the first nonzero status a job returned, or -1 when a thread could not start. */
int app_sched_run(app_sched_mode mode, int n_jobs, int reps, bool warmup, uint64_t *rng,
                  app_sched_fn fn, void *user, app_sched_span *spans);

/* Shuffle order[0..n) (Fisher-Yates) drawing from *rng, as fair rounds do. */
void app_sched_shuffle(int *order, int n, uint64_t *rng);

/* Turns on one device for jobs that do not start together (the TUI's panes in fair mode): the
 * poster takes tickets in the order the turns should run (shuffled), each worker waits for its
 * ticket's turn, runs alone, and says it is done; a ticket dropped unrun must be "done" too, or
 * the turns after it never come. Thread-safe; free after every user has stopped. */
typedef struct app_sched_gate app_sched_gate;
app_sched_gate *app_sched_gate_new(void);   /* NULL when out of memory */
void app_sched_gate_free(app_sched_gate *g);
long app_sched_gate_ticket(app_sched_gate *g);
/* Block until ticket's turn (true), or until *cancel becomes nonzero (false, looked at every
 * 20 ms; the ticket is still the caller's to mark done). cancel may be NULL. */
bool app_sched_gate_wait(app_sched_gate *g, long ticket, const atomic_int *cancel);
void app_sched_gate_done(app_sched_gate *g, long ticket);
/* Tickets taken and not yet done. */
int app_sched_gate_pending(app_sched_gate *g);

#endif
