/* Ctrl-C during training or a long pass over the data: while a fit runs
 * in C, each Ctrl-C counts in a flag that the training loop looks at
 * between pieces of work, and the fit returns with the last completed
 * epoch (or, when asked, after the epoch under way); prediction and the
 * loss and gradient pass look at it between chunks of rows. Whatever
 * handled Ctrl-C before (the interpreter's KeyboardInterrupt, or a Python
 * handler of the user's) is put back exactly when the call ends.
 *
 * POSIX: sigaction, which saves and restores the previous disposition with
 * its flags (signal() would not: it adds SA_RESTART on some systems and
 * stops Ctrl-C from breaking blocking reads afterwards).
 * Windows: a console control handler, called before the C runtime's (which
 * raises SIGINT for the interpreter) and stopping it there. */
#include <signal.h>
#include <string.h>

#include "compat.h"
#include "fastmlp.h"

#ifdef _WIN32
/* written by the console handler, which Windows runs on a thread of its own */
static volatile int seen;
#else
/* written by the signal handler, so of sig_atomic_t, which is int wherever
 * the engine builds (the flag is handed out as an int) */
typedef char fm_sig_atomic_is_int[sizeof(sig_atomic_t) == sizeof(int) ? 1 : -1];
static volatile sig_atomic_t seen;
#endif
static int caught;

const volatile int *fm_interrupt_flag(void) { return (const volatile int *)&seen; }

#ifdef _WIN32
static BOOL WINAPI on_console_event(DWORD event)
{
    if (event != CTRL_C_EVENT) return FALSE;
    seen = seen + 1;
    return TRUE;
}

int fm_interrupt_catch(void)
{
    if (caught) return 0;
    /* the C runtime's disposition can only be read by setting it */
    void (*previous)(int) = signal(SIGINT, SIG_IGN);
    if (previous == SIG_ERR) return 0;
    signal(SIGINT, previous);
    if (previous == SIG_IGN) return 0;
    seen = 0;
    if (!SetConsoleCtrlHandler(on_console_event, TRUE)) return 0;
    caught = 1;
    return 1;
}

void fm_interrupt_release(void)
{
    if (!caught) return;
    SetConsoleCtrlHandler(on_console_event, FALSE);
    caught = 0;
}
#else
static struct sigaction previous;

/* SIGINT is held back while this runs, so the count cannot lose a press */
static void on_sigint(int signum)
{
    (void)signum;
    seen = seen + 1;
}

/* A child forked while training (by another thread) gets the interpreter's
 * handling back: nothing in it watches the flag. */
static void restore_in_child(void)
{
    if (!caught) return;
    sigaction(SIGINT, &previous, NULL);
    caught = 0;
}

int fm_interrupt_catch(void)
{
    static int fork_handler;
    struct sigaction action;
    if (caught) return 0;
    if (sigaction(SIGINT, NULL, &previous) != 0 || previous.sa_handler == SIG_IGN) return 0;
    if (!fork_handler) {
        fm_fork_handlers(NULL, NULL, restore_in_child);
        fork_handler = 1;
    }
    memset(&action, 0, sizeof action);
    action.sa_handler = on_sigint;
    action.sa_flags = SA_ONSTACK; /* as the interpreter's own handlers */
    sigemptyset(&action.sa_mask);
    seen = 0;
    if (sigaction(SIGINT, &action, &previous) != 0) return 0;
    caught = 1;
    return 1;
}

void fm_interrupt_release(void)
{
    if (!caught) return;
    sigaction(SIGINT, &previous, NULL);
    caught = 0;
}
#endif
