/* The engine's threads: a pool of worker threads, teams that borrow them for
 * one entry-point call, parallel loops of tasks handed out one at a time,
 * and the tuner that picks how many threads a call should run.
 *
 * A parallel loop runs tasks 0 .. n_tasks-1, each exactly once, on whichever
 * team member claims it first. Each member has a share of the tasks, the
 * same share of every loop of the same size (so that a thread meets again
 * the data it worked on, in its own cache), and claims from its share
 * first, then from the others' (atomic counters). Each task writes its own
 * part of the output in a fixed way, so results never depend on which
 * thread ran what. The caller takes part and waits only for the tasks, not
 * for the other threads: a worker that lost its core before it claimed
 * anything delays nobody.
 *
 * Waiting threads spin for at most FM_SPIN_NS, then sleep on a condition
 * variable; a worker that has slept FM_IDLE_EXIT_MS with no team ends, so an
 * idle process keeps no threads. The engine changes no setting of any
 * runtime or of the process: its threads are its own.
 *
 * Memory ordering: every shared counter goes through compat.h's sequentially
 * consistent atomics. A job's description is published under a sequence
 * number (odd while it is written), and a claim succeeds only while the
 * share's counter still carries that job's generation, so a worker that
 * reads a job late never runs a task of the wrong job.
 */
#include <stdlib.h>
#include <string.h>

#include "common.h"

#ifndef FM_NO_THREADS
#define FM_SPIN_NS 100000
#define FM_IDLE_EXIT_MS 2000
/* A job's task index and generation share the 64-bit ticket. */
#define FM_TASK_BITS 32
#define FM_MAX_TASKS ((int64_t)1 << 31)

typedef struct fm_worker {
    fm_mutex lock;
    fm_cond wake;
    volatile int64_t sleeping; /* 1 while it waits on `wake` */
    volatile int64_t mailbox;  /* bumped whenever it has a job to look at */
    fm_team *team;             /* the team it serves, NULL while free (pool lock) */
    int tid;                   /* its index in that team (pool lock) */
    struct fm_worker *next;    /* free list (pool lock) */
} fm_worker;

/* The counters every member writes sit on cache lines of their own (FM_LINE). */
/* Member m's share of a job's tasks, on a cache line of its own:
 * (g << FM_TASK_BITS) | the next unclaimed task of the share. */
typedef struct {
    volatile int64_t next;
    char pad[FM_LINE - sizeof(int64_t)];
} fm_share;

struct fm_team {
    /* the job: seq is odd while it is written, 2 g + 2 once job g is out */
    volatile int64_t seq;
    volatile int64_t fn, ctx, n_tasks, n_members;
    char pad0[FM_LINE - 5 * sizeof(int64_t)];
    fm_share shares[FM_MAX_THREADS];
    volatile int64_t done;   /* tasks of the job finished */
    volatile int64_t caller_sleeping;
    char pad2[FM_LINE - 2 * sizeof(int64_t)];
    volatile int64_t refs;   /* the caller, and each worker inside run_tasks */
    fm_mutex lock;
    fm_cond done_cond;
    int size;                /* members, the caller included */
    fm_worker *members[FM_MAX_THREADS];
    fm_team *next;           /* free list (pool lock) */
};

static struct {
    fm_mutex lock;
    fm_worker *free_workers;
    fm_team *free_teams;
    int workers; /* alive */
} pool;

static volatile int64_t pool_ready; /* 0, 1 initialising, 2 ready */

/* The entry point the calling thread is in (its team comes with the first
 * loop that needs one); in_task while it runs a task, as member task_tid. */
static FM_THREAD_LOCAL fm_scope *current_scope;
static FM_THREAD_LOCAL int in_task, task_tid;
/* of the loops this thread ran as a team's caller: its even split of their
 * tasks (n_tasks / members each, what it would run with every member
 * keeping pace), and the tasks it ran */
static FM_THREAD_LOCAL double fair_tasks;
static FM_THREAD_LOCAL int64_t own_tasks;

static void pool_prepare_fork(void) { fm_mutex_lock(&pool.lock); }
static void pool_after_fork_parent(void) { fm_mutex_unlock(&pool.lock); }
/* The child has none of the workers: it starts again with an empty pool,
 * leaving the old structures behind with their threads. */
static void pool_after_fork_child(void)
{
    pool.free_workers = NULL;
    pool.free_teams = NULL;
    pool.workers = 0;
    fm_mutex_unlock(&pool.lock);
}

static void pool_init(void)
{
    if (fm_atomic_load(&pool_ready) == 2) return;
    if (fm_atomic_cas(&pool_ready, 0, 1)) {
        fm_mutex_init(&pool.lock);
        fm_fork_handlers(pool_prepare_fork, pool_after_fork_parent, pool_after_fork_child);
        fm_atomic_store(&pool_ready, 2);
    }
    while (fm_atomic_load(&pool_ready) != 2) fm_cpu_relax();
}

/* ---- waiting: spin a little, then sleep -------------------------------------- */

/* Spin until *word != seen for at most FM_SPIN_NS; 1 when it changed. */
static int spin_change(volatile int64_t *word, int64_t seen)
{
    const int64_t start = fm_now_ns();
    for (int spins = 0;; spins++) {
        if (fm_atomic_load(word) != seen) return 1;
        fm_cpu_relax();
        if ((spins & 63) == 63 && fm_now_ns() - start > FM_SPIN_NS) return 0;
    }
}

/* Wait until *word != seen: spin, then sleep on cond. The waker changes the
 * word, then calls wake_sleeper; the flag `sleeping`, set under the lock
 * before the last look at the word, makes sure that one of the two sees
 * the other. Returns 0, or 1 once idle_ms passed without a change. */
static int wait_change(volatile int64_t *word, int64_t seen, fm_mutex *lock, fm_cond *cond,
                       volatile int64_t *sleeping, int64_t idle_ms)
{
    if (spin_change(word, seen)) return 0;
    const int64_t deadline = fm_now_ns() + idle_ms * 1000000;
    int idle = 0;
    fm_mutex_lock(lock);
    fm_atomic_store(sleeping, 1);
    while (fm_atomic_load(word) == seen) {
        const int64_t left_ms = (deadline - fm_now_ns()) / 1000000;
        if (left_ms <= 0) {
            idle = 1;
            break;
        }
        fm_cond_wait(cond, lock, left_ms);
    }
    fm_atomic_store(sleeping, 0);
    fm_mutex_unlock(lock);
    return idle;
}

static void wake_sleeper(fm_mutex *lock, fm_cond *cond, volatile int64_t *sleeping)
{
    if (!fm_atomic_load(sleeping)) return;
    fm_mutex_lock(lock);
    fm_cond_signal(cond);
    fm_mutex_unlock(lock);
}

static void poke(fm_worker *w)
{
    fm_atomic_add(&w->mailbox, 1);
    wake_sleeper(&w->lock, &w->wake, &w->sleeping);
}

/* ---- running a job's tasks ---------------------------------------------------- */

typedef void (*task_fn)(void *ctx, int64_t task, int tid);

/* Claim and run tasks of the job published now, as member tid; returns
 * how many it ran. */
static int64_t run_tasks(fm_team *t, int tid)
{
    int64_t ran = 0;
    int64_t seq, n_tasks, members;
    task_fn fn;
    void *ctx;
    for (;;) {
        seq = fm_atomic_load(&t->seq);
        if (seq & 1) { /* being written: the caller is a few stores away */
            fm_cpu_relax();
            continue;
        }
        fn = (task_fn)(intptr_t)fm_atomic_load(&t->fn);
        ctx = (void *)(intptr_t)fm_atomic_load(&t->ctx);
        n_tasks = fm_atomic_load(&t->n_tasks);
        members = fm_atomic_load(&t->n_members);
        if (fm_atomic_load(&t->seq) == seq) break;
    }
    if (seq == 0 || tid >= members) return 0;
    const int64_t gen = (seq / 2 - 1) & (FM_MAX_TASKS - 1);
    in_task = 1;
    task_tid = tid;
    /* its own share first, then what is left of the others', in turn */
    for (int64_t k = 0; k < members; k++) {
        const int64_t m = (tid + k) % members, end = n_tasks * (m + 1) / members;
        volatile int64_t *next = &t->shares[m].next;
        for (;;) {
            const int64_t claim = fm_atomic_load(next);
            const int64_t task = claim & (((int64_t)1 << FM_TASK_BITS) - 1);
            if ((claim >> FM_TASK_BITS) != gen || task >= end) break;
            if (!fm_atomic_cas(next, claim, claim + 1)) continue;
            fn(ctx, task, tid);
            ran++;
            if (fm_atomic_add(&t->done, 1) == n_tasks)
                wake_sleeper(&t->lock, &t->done_cond, &t->caller_sleeping);
        }
    }
    in_task = 0;
    return ran;
}

static void release_team_ref(fm_team *t)
{
    if (fm_atomic_add(&t->refs, -1) != 0) return;
    fm_mutex_lock(&pool.lock);
    t->next = pool.free_teams;
    pool.free_teams = t;
    fm_mutex_unlock(&pool.lock);
}

/* A worker: each time its mailbox changes it looks for the job of the team
 * it serves, holding a reference to the team meanwhile (so that the team
 * is not reused under it, even if it was handed back to the pool); after
 * FM_IDLE_EXIT_MS with nothing in its mailbox and no team, it ends. */
static void worker_main(void *arg)
{
    fm_worker *w = arg;
    for (;;) {
        const int64_t seen = fm_atomic_load(&w->mailbox);
        fm_mutex_lock(&pool.lock);
        fm_team *t = w->team;
        const int tid = w->tid;
        if (t) fm_atomic_add(&t->refs, 1);
        fm_mutex_unlock(&pool.lock);
        if (t) {
            run_tasks(t, tid);
            release_team_ref(t);
        }
        if (!wait_change(&w->mailbox, seen, &w->lock, &w->wake, &w->sleeping, FM_IDLE_EXIT_MS))
            continue;
        fm_mutex_lock(&pool.lock);
        if (w->team) { /* serving a team that has had no job for a while */
            fm_mutex_unlock(&pool.lock);
            continue;
        }
        fm_worker **p = &pool.free_workers;
        while (*p && *p != w) p = &(*p)->next;
        if (*p) *p = w->next;
        pool.workers--;
        fm_mutex_unlock(&pool.lock);
        fm_cond_destroy(&w->wake);
        fm_mutex_destroy(&w->lock);
        free(w);
        return;
    }
}

/* A free worker, started if none is waiting; NULL when no thread could be
 * started. Pool lock held. */
static fm_worker *take_worker(void)
{
    fm_worker *w = pool.free_workers;
    if (w) {
        pool.free_workers = w->next;
        return w;
    }
    w = calloc(1, sizeof *w);
    if (!w) return NULL;
    fm_mutex_init(&w->lock);
    fm_cond_init(&w->wake);
    if (fm_thread_start(worker_main, w)) {
        fm_cond_destroy(&w->wake);
        fm_mutex_destroy(&w->lock);
        free(w);
        return NULL;
    }
    pool.workers++;
    return w;
}

/* A team of up to `size` members (the caller and size - 1 workers). The
 * workers learn that they serve it from the first job they are given. */
static fm_team *team_acquire(int size)
{
    pool_init();
    fm_mutex_lock(&pool.lock);
    fm_team *t = pool.free_teams;
    if (t) {
        pool.free_teams = t->next;
    } else {
        /* on a line of its own, so that the padding keeps the counters
         * apart (calloc gives 16 bytes); teams are never freed */
        void *raw = calloc(1, sizeof *t + FM_LINE - 1);
        if (!raw) {
            fm_mutex_unlock(&pool.lock);
            return NULL;
        }
        t = fm_line_start(raw);
        fm_mutex_init(&t->lock);
        fm_cond_init(&t->done_cond);
    }
    fm_atomic_store(&t->seq, 0);
    for (int m = 0; m < FM_MAX_THREADS; m++) fm_atomic_store(&t->shares[m].next, 0);
    fm_atomic_store(&t->refs, 1);
    t->size = 1;
    while (t->size < size && t->size < FM_MAX_THREADS) {
        fm_worker *w = take_worker();
        if (!w) break;
        w->team = t;
        w->tid = t->size;
        t->members[t->size++] = w;
    }
    fm_mutex_unlock(&pool.lock);
    return t;
}

/* The caller is done with the team: its workers are free at once (any still
 * looking at the team hold a reference to it), and the team returns to the
 * pool when the last reference goes. */
static void team_release(fm_team *t)
{
    fm_mutex_lock(&pool.lock);
    for (int i = 1; i < t->size; i++) {
        fm_worker *w = t->members[i];
        w->team = NULL;
        w->next = pool.free_workers;
        pool.free_workers = w;
    }
    fm_mutex_unlock(&pool.lock);
    release_team_ref(t);
}

/* Wait until every one of the current job's n_tasks tasks is done. */
static void wait_done(fm_team *t, int64_t n_tasks)
{
    const int64_t start = fm_now_ns();
    for (int spins = 0;; spins++) {
        if (fm_atomic_load(&t->done) == n_tasks) return;
        fm_cpu_relax();
        if ((spins & 63) == 63 && fm_now_ns() - start > FM_SPIN_NS) break;
    }
    fm_mutex_lock(&t->lock);
    fm_atomic_store(&t->caller_sleeping, 1);
    while (fm_atomic_load(&t->done) != n_tasks) fm_cond_wait(&t->done_cond, &t->lock, -1);
    fm_atomic_store(&t->caller_sleeping, 0);
    fm_mutex_unlock(&t->lock);
}

/* Run tasks [0, n_tasks) on the first `members` members of t, the caller
 * taking part as member 0; returns once every task is done. */
static void team_run(fm_team *t, int members, task_fn fn, void *ctx, int64_t n_tasks)
{
    const int64_t gen = fm_atomic_load(&t->seq) / 2; /* this job's generation */
    fm_atomic_store(&t->seq, 2 * gen + 1);
    fm_atomic_store(&t->fn, (int64_t)(intptr_t)fn);
    fm_atomic_store(&t->ctx, (int64_t)(intptr_t)ctx);
    fm_atomic_store(&t->n_tasks, n_tasks);
    fm_atomic_store(&t->n_members, members);
    fm_atomic_store(&t->done, 0);
    for (int m = 0; m < members; m++)
        fm_atomic_store(&t->shares[m].next,
                        ((gen & (FM_MAX_TASKS - 1)) << FM_TASK_BITS) + n_tasks * m / members);
    fm_atomic_store(&t->seq, 2 * gen + 2);
    for (int i = 1; i < members; i++) poke(t->members[i]);
    own_tasks += run_tasks(t, 0);
    fair_tasks += (double)n_tasks / members;
    wait_done(t, n_tasks);
}
#endif

/* ---- what the rest of the engine calls ---------------------------------------- */

#ifdef FM_NO_THREADS
/* A build without threads: every loop runs in order on the calling thread. */
void fm_scope_begin(fm_scope *s, int max_threads)
{
    s->max_threads = 1;
    s->team = NULL;
}

void fm_scope_end(fm_scope *s) { (void)s; }

void fm_parallel_for(int n_threads, int64_t n_tasks, void (*fn)(void *ctx, int64_t task, int tid),
                     void *ctx)
{
    (void)n_threads;
    for (int64_t task = 0; task < n_tasks; task++) fn(ctx, task, 0);
}

int fm_workers_alive(void) { return 0; }

static double caller_fair_tasks(void) { return 0; }
static int64_t caller_own_tasks(void) { return 0; }
#else
static double caller_fair_tasks(void) { return fair_tasks; }
static int64_t caller_own_tasks(void) { return own_tasks; }

void fm_scope_begin(fm_scope *s, int max_threads)
{
    s->max_threads = max_threads < 1 ? 1 : (max_threads > FM_MAX_THREADS ? FM_MAX_THREADS
                                                                         : max_threads);
    s->team = NULL;
    /* an entry point called inside another keeps the outer one's team */
    if (!current_scope) current_scope = s;
}

void fm_scope_end(fm_scope *s)
{
    if (current_scope != s) return;
    if (s->team) team_release(s->team);
    s->team = NULL;
    current_scope = NULL;
}

void fm_parallel_for(int n_threads, int64_t n_tasks, void (*fn)(void *ctx, int64_t task, int tid),
                     void *ctx)
{
    const int k = (int)fm_min64(fm_min64(n_threads, n_tasks), FM_MAX_THREADS);
    if (k > 1 && !in_task && n_tasks < FM_MAX_TASKS) {
        fm_scope own, *s = current_scope;
        if (!s) {
            fm_scope_begin(&own, k);
            s = &own;
        }
        if (!s->team && s->max_threads > 1) s->team = team_acquire(s->max_threads);
        const int members = s->team ? (k < s->team->size ? k : s->team->size) : 1;
        if (members > 1) team_run(s->team, members, fn, ctx, n_tasks);
        if (s == &own) fm_scope_end(&own);
        if (members > 1) return;
    }
    /* alone: inside a task, the task's own member index keeps its scratch */
    const int tid = in_task ? task_tid : 0;
    for (int64_t task = 0; task < n_tasks; task++) fn(ctx, task, tid);
}

int fm_workers_alive(void)
{
    if (fm_atomic_load(&pool_ready) != 2) return 0;
    fm_mutex_lock(&pool.lock);
    const int n = pool.workers;
    fm_mutex_unlock(&pool.lock);
    return n;
}

#endif

/* ---- the tuner ------------------------------------------------------------------
 * Results do not depend on the thread count, so the engine is free to change
 * it as it goes. It runs at `threads` for a stretch of work, then holds a
 * trial against a neighbouring count (half, or double up to max): rounds
 * of a block at each count in turn, so that both meet the same load on a
 * busy machine, and it keeps whichever did more rows per second. A trial
 * that loses makes the next one wait twice as long, up to FM_TUNE_CAP_NS of
 * work or FM_TUNE_SHARE times the trial's own length if that is longer
 * (pieces of work that take seconds each), so a choice that keeps winning
 * costs little; a switch brings the next look closer. A short first piece
 * after a change of count is not timed: it pays for waking the threads
 * that slept meanwhile, a cost of the switch, not of the count. A trial
 * against more threads that are clearly slower after a round
 * (FM_TUNE_CLEAR_LOSS) ends there: beside a busy process, the blocks of a
 * trial against two threads ran 1.7 or 5.5 times as long per row as one
 * thread's, while the woken member and the busy process took turns on a
 * core. Only trials up end so: a round is short, one preemption can make
 * its count look slow, and a mistake up keeps fewer threads for a while,
 * which costs little, where one down would keep more beside the load.
 *
 * A stretch on more than one thread also counts the caller's even split of
 * its loops' tasks and the tasks the caller ran. On a quiet machine the two
 * stay close: the caller of two ran 0.42-0.58 of the tasks, 0.84-1.16 times
 * its split, when a product came in one task a thread, and 0.91-1.15 times
 * in W2 fits once it came in up to four. When a member keeps losing its core
 * to another process, the others take over its tasks (the caller of two ran
 * 0.7-0.9 of them beside one busy process, or hardly any while it waited for
 * its own core), and the count gives little or nothing over fewer. Then,
 * unless the last trial kept the count over fewer, the trial against fewer
 * comes at once, after 1 ms of the stretch rather than at its end (20 ms at
 * first: most of a short fit). The counts add up over the stretch, so load
 * that comes late in a long one is left to the trials on schedule; so is one
 * member of more than two falling behind, which moves the caller's count
 * less. */

#define FM_TUNE_BASE_NS 20000000LL
#define FM_TUNE_CAP_NS 1000000000LL
#define FM_TUNE_SHARE 64
#define FM_TUNE_LOST 8
/* a trial: this many rounds (one when a piece fills a block alone) of a
 * block at each count, each block at least FM_TUNE_BLOCK_MIN_NS and
 * 1/FM_TUNE_BLOCK_FRACTION of the interval */
#define FM_TUNE_ROUNDS 4
#define FM_TUNE_BLOCK_MIN_NS 500000LL
#define FM_TUNE_BLOCK_FRACTION 256
/* pieces shorter than this right after a change are not timed */
#define FM_TUNE_SETTLE_NS 2000000LL
/* the other count must be this much faster (time per row) to take over */
#define FM_TUNE_MARGIN 0.95
/* a trial against more threads whose blocks on them took this many times
 * as long per row as those at `threads`, after any round, ends there (more
 * than 1 / FM_TUNE_MARGIN, so that the decision keeps `threads`) */
#define FM_TUNE_CLEAR_LOSS 1.25
/* a stretch whose caller has run this far (as a fraction, or farther) from
 * its even split of the tasks, after FM_TUNE_UNEVEN_MIN_NS and a split of
 * FM_TUNE_UNEVEN_MIN_TASKS, holds its trial against fewer at once */
#define FM_TUNE_UNEVEN 0.4
#define FM_TUNE_UNEVEN_MIN_NS 1000000LL
#define FM_TUNE_UNEVEN_MIN_TASKS 16

static void tuner_reset(fm_tuner *t, int max)
{
    memset(t, 0, sizeof *t);
    t->max = max;
    t->threads = max;
    t->interval_ns = FM_TUNE_BASE_NS;
    t->left_ns = FM_TUNE_BASE_NS;
}

int fm_tuner_pick(fm_tuner *t, int max)
{
    if (max < 1) max = 1;
    if (!t) return max;
    if (t->max != max || t->threads < 1) tuner_reset(t, max);
    /* never more than the caller's max, whose workspace holds that many
     * threads' scratch, even should two calls misuse one tuner at once */
    const int pick = t->trial && t->on_trial ? t->trial : t->threads;
    return pick < 1 ? 1 : (pick > max ? max : pick);
}

static int64_t block_ns(const fm_tuner *t)
{
    const int64_t span = t->interval_ns / FM_TUNE_BLOCK_FRACTION;
    return span > FM_TUNE_BLOCK_MIN_NS ? span : FM_TUNE_BLOCK_MIN_NS;
}

static int trial_rounds(const fm_tuner *t)
{
    return t->piece_ns >= block_ns(t) ? 1 : FM_TUNE_ROUNDS;
}

static void tuner_start_trial(fm_tuner *t)
{
    const int lower = t->threads / 2 > 1 ? t->threads / 2 : 1;
    const int upper = t->threads * 2 < t->max ? t->threads * 2 : t->max;
    int other = t->up ? upper : lower;
    if (other == t->threads) other = t->up ? lower : upper;
    t->up = !t->up;
    t->trial = other;
    t->on_trial = 1;
    t->rounds = 0;
    t->base_ns = t->base_rows = t->trial_ns = t->trial_rows = 0;
    t->left_ns = block_ns(t);
}

/* the times per row of the trial's blocks so far, at `trial` and at `threads` */
static double trial_row_ns(const fm_tuner *t) { return t->trial_ns / t->trial_rows; }
static double base_row_ns(const fm_tuner *t) { return t->base_ns / t->base_rows; }

/* a trial against more threads whose blocks on them have taken
 * FM_TUNE_CLEAR_LOSS times as long per row as those at `threads` */
static int trial_up_clearly_lost(const fm_tuner *t)
{
    return t->trial > t->threads && trial_row_ns(t) >= base_row_ns(t) * FM_TUNE_CLEAR_LOSS;
}

static void tuner_decide(fm_tuner *t)
{
    /* a trial lasts 2 x rounds x max(block, piece); after a lost one, the
     * next waits at least FM_TUNE_LOST of those, and at most FM_TUNE_CAP_NS,
     * or FM_TUNE_SHARE times a trial of the least blocks if that is longer
     * (the blocks grow with the interval, which would lift a cap taken from
     * them along with it) */
    const int64_t block = block_ns(t) > t->piece_ns ? block_ns(t) : t->piece_ns;
    const int64_t least = FM_TUNE_BLOCK_MIN_NS > t->piece_ns ? FM_TUNE_BLOCK_MIN_NS
                                                             : t->piece_ns;
    const int64_t trial_len = 2 * trial_rounds(t) * block;
    const int64_t share = FM_TUNE_SHARE * 2 * trial_rounds(t) * least;
    const int64_t cap = share > FM_TUNE_CAP_NS ? share : FM_TUNE_CAP_NS;
    const int kept = trial_row_ns(t) < base_row_ns(t) * FM_TUNE_MARGIN ? t->trial : t->threads;
    const int other = kept == t->trial ? t->threads : t->trial;
    if (kept != t->threads) {
        t->threads = kept;
        t->interval_ns = t->interval_ns / 4 > FM_TUNE_BASE_NS ? t->interval_ns / 4
                                                               : FM_TUNE_BASE_NS;
    } else {
        int64_t next = 2 * t->interval_ns;
        if (next < FM_TUNE_LOST * trial_len) next = FM_TUNE_LOST * trial_len;
        t->interval_ns = next < cap ? next : cap;
    }
    t->kept_over_fewer = kept > other;
    t->trial = 0;
    t->left_ns = t->interval_ns;
    t->fair = t->own = 0;
}

/* 1 when the stretch under way, on more than one thread that the last trial
 * did not keep over fewer, shows a member that is not keeping pace: the
 * caller ran far more or far fewer tasks than its even split. */
static int stretch_uneven(const fm_tuner *t)
{
    if (t->threads < 2 || t->kept_over_fewer || t->fair < FM_TUNE_UNEVEN_MIN_TASKS ||
        t->interval_ns - t->left_ns < FM_TUNE_UNEVEN_MIN_NS)
        return 0;
    const double share = (double)t->own / t->fair; /* 1 if even */
    return share <= 1 - FM_TUNE_UNEVEN || share >= 1 + FM_TUNE_UNEVEN;
}

void fm_tuner_record(fm_tuner *t, int threads, int64_t ns, int64_t rows, double fair,
                     int64_t own)
{
    if (!t || t->max <= 1 || threads != fm_tuner_pick(t, t->max)) return;
    t->piece_ns = ns;
    if (threads != t->last) {
        t->last = threads;
        if (ns < FM_TUNE_SETTLE_NS) return;
    }
    t->left_ns -= ns;
    if (!t->trial) {
        t->fair += fair;
        t->own += own;
        if (stretch_uneven(t)) {
            t->left_ns = 0;
            t->up = 0; /* the trial goes down */
        }
        if (t->left_ns <= 0) tuner_start_trial(t);
        return;
    }
    if (t->on_trial) {
        t->trial_ns += (double)ns;
        t->trial_rows += (double)rows;
    } else {
        t->base_ns += (double)ns;
        t->base_rows += (double)rows;
    }
    if (t->left_ns > 0) return;
    /* the block is over: a round is a block on trial, then one at threads */
    t->on_trial = !t->on_trial;
    t->left_ns = block_ns(t);
    if (t->on_trial && (++t->rounds >= trial_rounds(t) || trial_up_clearly_lost(t)))
        tuner_decide(t);
}

fm_tuner_mark fm_tuner_begin(const fm_tuner *t)
{
    fm_tuner_mark m = {0, 0, 0};
    if (t) {
        m.ns = fm_now_ns();
        m.fair = caller_fair_tasks();
        m.own = caller_own_tasks();
    }
    return m;
}

void fm_tuner_end(fm_tuner *t, int threads, fm_tuner_mark began, int64_t rows)
{
    if (!t) return;
    fm_tuner_record(t, threads, fm_now_ns() - began.ns, rows, caller_fair_tasks() - began.fair,
                    caller_own_tasks() - began.own);
}
