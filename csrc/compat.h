/* What differs between compilers and operating systems, and nothing else:
 * every other C file of the engine is plain C11 that GCC, clang and MSVC
 * accept alike, on x86-64 and aarch64, Linux, macOS and Windows.
 *
 *   FM_RESTRICT, FM_INLINE, FM_THREAD_LOCAL    keywords spelled per compiler
 *   fm_add_overflows, fm_mul_overflows          checked int64 arithmetic
 *   fm_clz32                                    leading zero bits
 *   fm_atomic_*                                 sequentially consistent atomics
 *   fm_can_prefetch_for_write,
 *   fm_prefetch_for_write                       ask for a line to write it, not waiting
 *   fm_cpu_relax, fm_now_ns                     spin-wait hint, monotonic clock
 *   fm_x86_features(_once)                      CPUID + XGETBV (x86-64 only)
 *   fm_mutex, fm_cond, fm_thread_start          threads (POSIX or Win32)
 *   fm_fork_handlers                            what to do around fork()
 */
#ifndef FM_COMPAT_H
#define FM_COMPAT_H

#include <stdint.h>

#if defined(_MSC_VER) && !defined(__clang__)
#define FM_MSVC 1
#endif

#if defined(__x86_64__) || defined(_M_X64)
#define FM_X86_64 1
#elif defined(__aarch64__) || defined(_M_ARM64)
#define FM_AARCH64 1
#endif

#ifdef _WIN32
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#ifndef NOMINMAX
#define NOMINMAX
#endif
#include <windows.h>
#else
#include <pthread.h>
#include <time.h>
#endif
#if defined(__APPLE__) && defined(FM_X86_64)
#include <sys/sysctl.h>
#endif

#ifdef FM_MSVC
#include <intrin.h>
#define FM_RESTRICT __restrict
#define FM_INLINE static __forceinline
#define FM_THREAD_LOCAL __declspec(thread)
#else
#define FM_RESTRICT restrict
#define FM_INLINE static inline __attribute__((always_inline))
#define FM_THREAD_LOCAL __thread
#endif

#if defined(FM_X86_64) && !defined(FM_MSVC)
#include <cpuid.h>
#include <immintrin.h>
#endif

/* ---- checked arithmetic: 1 when a + b (a * b) does not fit, else *out ---- */

#ifdef FM_MSVC
static inline int fm_add_overflows(int64_t a, int64_t b, int64_t *out)
{
    if ((b > 0 && a > INT64_MAX - b) || (b < 0 && a < INT64_MIN - b)) return 1;
    *out = a + b;
    return 0;
}

/* __mulh (the high half of the 128-bit product) exists on x64 and ARM64;
 * _mul128 only on x64 */
static inline int fm_mul_overflows(int64_t a, int64_t b, int64_t *out)
{
    const int64_t low = (int64_t)((uint64_t)a * (uint64_t)b);
    if (__mulh(a, b) != (low < 0 ? -1 : 0)) return 1;
    *out = low;
    return 0;
}
#else
static inline int fm_add_overflows(int64_t a, int64_t b, int64_t *out)
{
    return __builtin_add_overflow(a, b, out);
}

static inline int fm_mul_overflows(int64_t a, int64_t b, int64_t *out)
{
    return __builtin_mul_overflow(a, b, out);
}
#endif

/* ---- bits ------------------------------------------------------------------ */

/* The number of leading zero bits of x, which is not 0. */
#ifdef FM_MSVC
static inline int fm_clz32(uint32_t x)
{
    unsigned long highest;
    _BitScanReverse(&highest, x);
    return 31 - (int)highest;
}
#else
static inline int fm_clz32(uint32_t x) { return __builtin_clz(x); }
#endif

/* ---- atomics (all sequentially consistent) -------------------------------- */

#ifdef FM_MSVC
/* x64: an aligned load after stores that are all interlocked (full
 * barriers) is sequentially consistent; ARM64: a load, then a barrier. */
static inline int64_t fm_atomic_load(volatile int64_t *p)
{
#ifdef FM_AARCH64
    const int64_t v = __iso_volatile_load64((const volatile __int64 *)p);
    __dmb(_ARM64_BARRIER_ISH);
    return v;
#else
    const int64_t v = *p;
    _ReadWriteBarrier();
    return v;
#endif
}
static inline void fm_atomic_store(volatile int64_t *p, int64_t v)
{
    _InterlockedExchange64((volatile __int64 *)p, v);
}
/* returns the value after adding */
static inline int64_t fm_atomic_add(volatile int64_t *p, int64_t v)
{
    return _InterlockedExchangeAdd64((volatile __int64 *)p, v) + v;
}
/* 1 when *p held expected and now holds desired */
static inline int fm_atomic_cas(volatile int64_t *p, int64_t expected, int64_t desired)
{
    return _InterlockedCompareExchange64((volatile __int64 *)p, desired, expected) == expected;
}
#else
static inline int64_t fm_atomic_load(volatile int64_t *p)
{
    return __atomic_load_n(p, __ATOMIC_SEQ_CST);
}
static inline void fm_atomic_store(volatile int64_t *p, int64_t v)
{
    __atomic_store_n(p, v, __ATOMIC_SEQ_CST);
}
static inline int64_t fm_atomic_add(volatile int64_t *p, int64_t v)
{
    return __atomic_add_fetch(p, v, __ATOMIC_SEQ_CST);
}
static inline int fm_atomic_cas(volatile int64_t *p, int64_t expected, int64_t desired)
{
    return __atomic_compare_exchange_n(p, &expected, desired, 0, __ATOMIC_SEQ_CST,
                                       __ATOMIC_SEQ_CST);
}
#endif

/* ---- spinning and time ------------------------------------------------------ */

static inline void fm_cpu_relax(void)
{
#if defined(FM_MSVC)
    YieldProcessor();
#elif defined(FM_X86_64)
    _mm_pause();
#elif defined(FM_AARCH64)
    __asm__ __volatile__("yield");
#endif
}

/* A monotonic clock in nanoseconds. */
static inline int64_t fm_now_ns(void)
{
#ifdef _WIN32
    static volatile int64_t frequency = 0;
    LARGE_INTEGER t;
    if (!frequency) {
        LARGE_INTEGER f;
        QueryPerformanceFrequency(&f);
        frequency = f.QuadPart;
    }
    QueryPerformanceCounter(&t);
    return (int64_t)((double)t.QuadPart * (1e9 / (double)frequency));
#else
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
#endif
}

/* ---- CPU features (x86-64) ---------------------------------------------------- */

#ifdef FM_X86_64
enum { FM_X86_AVX2_FMA = 1, FM_X86_AVX512 = 2, FM_X86_PREFETCHW = 4 };

/* r = EAX, EBX, ECX, EDX of CPUID leaf `leaf`, subleaf `sub`. */
static inline void fm_cpuid(unsigned leaf, unsigned sub, unsigned r[4])
{
#ifdef FM_MSVC
    int a[4];
    __cpuidex(a, (int)leaf, (int)sub);
    for (int i = 0; i < 4; i++) r[i] = (unsigned)a[i];
#else
    __cpuid_count(leaf, sub, r[0], r[1], r[2], r[3]);
#endif
}

/* FM_X86_AVX2_FMA | FM_X86_AVX512 for what the CPU has and the operating
 * system saves across context switches (XCR0): AVX2 with FMA; AVX-512 F,
 * DQ, BW and VL (what the AVX-512 sources are compiled for); and
 * FM_X86_PREFETCHW when it has PREFETCHW (CPUID 0x80000001, ECX bit 8). */
static inline int fm_x86_features(void)
{
    unsigned r0[4], r1[4], r7[4] = {0, 0, 0, 0}, e0[4], e1[4] = {0, 0, 0, 0};
    unsigned long long xcr0 = 0;
    fm_cpuid(0, 0, r0);
    fm_cpuid(1, 0, r1);
    if (r0[0] >= 7) fm_cpuid(7, 0, r7);
    fm_cpuid(0x80000000u, 0, e0);
    if (e0[0] >= 0x80000001u) fm_cpuid(0x80000001u, 0, e1);
    if (r1[2] & (1u << 27)) { /* OSXSAVE: XGETBV is available */
#ifdef FM_MSVC
        xcr0 = _xgetbv(0);
#else
        unsigned lo, hi;
        __asm__ __volatile__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
        xcr0 = ((unsigned long long)hi << 32) | lo;
#endif
    }
    const int ymm = (xcr0 & 0x6) == 0x6;
    int zmm = (xcr0 & 0xe6) == 0xe6;
#ifdef __APPLE__
    /* macOS turns the AVX-512 state on at a thread's first use of it, so
     * XCR0 does not show it beforehand; the kernel says whether it will */
    int on = 0;
    size_t size = sizeof on;
    if (!zmm && sysctlbyname("hw.optional.avx512f", &on, &size, NULL, 0) == 0 && on) zmm = ymm;
#endif
    const int fma = (r1[2] >> 12) & 1, avx = (r1[2] >> 28) & 1;
    const int avx2 = (r7[1] >> 5) & 1;
    const int f = (r7[1] >> 16) & 1, dq = (r7[1] >> 17) & 1, bw = (r7[1] >> 30) & 1,
              vl = (r7[1] >> 31) & 1;
    int features = 0;
    if (ymm && avx && avx2 && fma) features |= FM_X86_AVX2_FMA;
    if ((features & FM_X86_AVX2_FMA) && zmm && f && dq && bw && vl) features |= FM_X86_AVX512;
    if ((e1[2] >> 8) & 1) features |= FM_X86_PREFETCHW;
    return features;
}

/* fm_x86_features(), asked once per file that calls this (CPUID exits to
 * the hypervisor on virtual machines). */
static inline int fm_x86_features_once(void)
{
    static volatile int64_t features = -1;
    int64_t known = fm_atomic_load(&features);
    if (known < 0) {
        known = fm_x86_features();
        fm_atomic_store(&features, known);
    }
    return (int)known;
}
#endif

/* 1 when the CPU takes fm_prefetch_for_write's hint: x86-64 CPUs that
 * report PREFETCHW; 0 elsewhere, where it has not been measured. */
static inline int fm_can_prefetch_for_write(void)
{
#if defined(FM_X86_64)
    return (fm_x86_features_once() & FM_X86_PREFETCHW) != 0;
#else
    return 0;
#endif
}

/* Ask for p's cache line in a state this core may write, without waiting
 * for it and changing nothing: a hint (the CPU may drop it) that other
 * cores drop their copies. Only where fm_can_prefetch_for_write() is 1. */
static inline void fm_prefetch_for_write(const void *p)
{
#if defined(FM_X86_64) && defined(FM_MSVC)
    _m_prefetchw(p);
#elif defined(FM_X86_64)
    __asm__ __volatile__("prefetchw %0" : : "m"(*(const char *)p));
#else
    (void)p;
#endif
}

/* ---- threads, locks and condition variables ------------------------------------ */

#ifdef _WIN32
typedef SRWLOCK fm_mutex;
typedef CONDITION_VARIABLE fm_cond;
static inline void fm_mutex_init(fm_mutex *m) { InitializeSRWLock(m); }
static inline void fm_mutex_lock(fm_mutex *m) { AcquireSRWLockExclusive(m); }
static inline void fm_mutex_unlock(fm_mutex *m) { ReleaseSRWLockExclusive(m); }
static inline void fm_cond_init(fm_cond *c) { InitializeConditionVariable(c); }
static inline void fm_cond_signal(fm_cond *c) { WakeConditionVariable(c); }
/* Waits until signalled, or timeout_ms milliseconds have passed when it is
 * not negative (spurious returns are possible); m is held before and after. */
static inline void fm_cond_wait(fm_cond *c, fm_mutex *m, int64_t timeout_ms)
{
    SleepConditionVariableSRW(c, m, timeout_ms < 0 ? INFINITE : (DWORD)timeout_ms, 0);
}
static inline void fm_mutex_destroy(fm_mutex *m) { (void)m; }
static inline void fm_cond_destroy(fm_cond *c) { (void)c; }

typedef struct {
    void (*fn)(void *);
    void *arg;
} fm_thread_start_args;

static DWORD WINAPI fm_thread_trampoline(LPVOID p)
{
    fm_thread_start_args args = *(fm_thread_start_args *)p;
    HeapFree(GetProcessHeap(), 0, p);
    args.fn(args.arg);
    return 0;
}

/* Starts fn(arg) on a new detached thread; 0 on success. */
static inline int fm_thread_start(void (*fn)(void *), void *arg)
{
    fm_thread_start_args *p =
        (fm_thread_start_args *)HeapAlloc(GetProcessHeap(), 0, sizeof(fm_thread_start_args));
    if (!p) return 1;
    p->fn = fn;
    p->arg = arg;
    HANDLE h = CreateThread(NULL, 1 << 20, fm_thread_trampoline, p,
                            STACK_SIZE_PARAM_IS_A_RESERVATION, NULL);
    if (!h) {
        HeapFree(GetProcessHeap(), 0, p);
        return 1;
    }
    CloseHandle(h);
    return 0;
}

/* No fork() on Windows. */
static inline void fm_fork_handlers(void (*prepare)(void), void (*parent)(void),
                                    void (*child)(void))
{
    (void)prepare;
    (void)parent;
    (void)child;
}
#else
#include <signal.h>
#include <stdlib.h>

typedef pthread_mutex_t fm_mutex;
typedef pthread_cond_t fm_cond;
static inline void fm_mutex_init(fm_mutex *m) { pthread_mutex_init(m, NULL); }
static inline void fm_mutex_lock(fm_mutex *m) { pthread_mutex_lock(m); }
static inline void fm_mutex_unlock(fm_mutex *m) { pthread_mutex_unlock(m); }
static inline void fm_mutex_destroy(fm_mutex *m) { pthread_mutex_destroy(m); }
/* Timed waits measure on the monotonic clock where condition variables can
 * (not macOS), so that setting the wall clock does not change them. */
#ifdef __APPLE__
#define FM_COND_CLOCK CLOCK_REALTIME
static inline void fm_cond_init(fm_cond *c) { pthread_cond_init(c, NULL); }
#else
#define FM_COND_CLOCK CLOCK_MONOTONIC
static inline void fm_cond_init(fm_cond *c)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(c, &attr);
    pthread_condattr_destroy(&attr);
}
#endif
static inline void fm_cond_destroy(fm_cond *c) { pthread_cond_destroy(c); }
static inline void fm_cond_signal(fm_cond *c) { pthread_cond_signal(c); }
static inline void fm_cond_wait(fm_cond *c, fm_mutex *m, int64_t timeout_ms)
{
    if (timeout_ms < 0) {
        pthread_cond_wait(c, m);
        return;
    }
    struct timespec until;
    clock_gettime(FM_COND_CLOCK, &until);
    until.tv_sec += (time_t)(timeout_ms / 1000);
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec += 1;
        until.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(c, m, &until);
}

typedef struct {
    void (*fn)(void *);
    void *arg;
} fm_thread_start_args;

static void *fm_thread_trampoline(void *p)
{
    fm_thread_start_args args = *(fm_thread_start_args *)p;
    free(p);
    args.fn(args.arg);
    return NULL;
}

/* Starts fn(arg) on a new detached thread with the asynchronous signals
 * blocked (so that Ctrl-C and the like go to the application's own
 * threads, while a fault in the thread is still reported as one); 0 on
 * success. */
static inline int fm_thread_start(void (*fn)(void *), void *arg)
{
    fm_thread_start_args *p = (fm_thread_start_args *)malloc(sizeof(fm_thread_start_args));
    if (!p) return 1;
    p->fn = fn;
    p->arg = arg;
    pthread_attr_t attr;
    sigset_t all, old;
    pthread_t id;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 1 << 20);
    sigfillset(&all);
    sigdelset(&all, SIGSEGV);
    sigdelset(&all, SIGBUS);
    sigdelset(&all, SIGFPE);
    sigdelset(&all, SIGILL);
    sigdelset(&all, SIGTRAP);
    sigdelset(&all, SIGABRT);
    sigdelset(&all, SIGSYS);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    const int failed = pthread_create(&id, &attr, fm_thread_trampoline, p);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    if (failed) free(p);
    return failed;
}

static inline void fm_fork_handlers(void (*prepare)(void), void (*parent)(void),
                                    void (*child)(void))
{
    pthread_atfork(prepare, parent, child);
}
#endif

#endif /* FM_COMPAT_H */
