/* Ctrl-C during training: while a fit runs in C, Ctrl-C sets a flag that the
 * training loop looks at between pieces of work, and the fit returns with
 * the last completed epoch. Whatever handled Ctrl-C before (the
 * interpreter's KeyboardInterrupt) is put back exactly when training ends.
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

static volatile int seen;
static int caught;

const volatile int *fm_interrupt_flag(void) { return &seen; }

#ifdef _WIN32
static BOOL WINAPI on_console_event(DWORD event)
{
    if (event != CTRL_C_EVENT) return FALSE;
    seen = 1;
    return TRUE;
}

int fm_interrupt_catch(void)
{
    if (caught) return 0;
    /* the C runtime's disposition can only be read by setting it */
    void (*previous)(int) = signal(SIGINT, SIG_IGN);
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

static void on_sigint(int signum)
{
    (void)signum;
    seen = 1;
}

int fm_interrupt_catch(void)
{
    struct sigaction action;
    if (caught) return 0;
    if (sigaction(SIGINT, NULL, &previous) != 0 || previous.sa_handler == SIG_IGN) return 0;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_sigint;
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
