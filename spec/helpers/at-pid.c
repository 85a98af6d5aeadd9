/*
 * at-pid PID COMMAND [ARG...]: runs COMMAND as exactly PID (clone3 with set_tid), for tests of pid
 * reuse. ns_last_pid only makes PID likely: any fork on the host in between takes it. The helper
 * stays as COMMAND's parent: it forwards catchable signals, its death kills COMMAND
 * (PR_SET_PDEATHSIG), and it ends as COMMAND ends (same code, same signal). Exit 17: PID is taken.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile pid_t child;

static void forward(int sig) {
  if (child > 0) kill(child, sig);
}

int main(int argc, char **argv) {
  char *end = NULL;
  long want = argc >= 3 ? strtol(argv[1], &end, 10) : 0;
  if (argc < 3 || *end != '\0' || want < 2) {
    fprintf(stderr, "usage: at-pid PID COMMAND [ARG...]\n");
    return 2;
  }
  pid_t tid[1] = {(pid_t)want};
  struct clone_args args;
  memset(&args, 0, sizeof args);
  args.exit_signal = SIGCHLD;
  args.set_tid = (uint64_t)(uintptr_t)tid;
  args.set_tid_size = 1;
  pid_t parent = getpid();
  long r = syscall(SYS_clone3, &args, sizeof args);
  if (r < 0) {
    int e = errno;
    fprintf(stderr, "at-pid: cannot start at pid %ld: %s\n", want, strerror(e));
    return e == EEXIST ? 17 : 1;
  }
  if (r == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(1);
    execvp(argv[2], argv + 2);
    _exit(127);
  }
  child = (pid_t)r;
  const int forwarded[] = {SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGCONT};
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = forward;
  for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++) sigaction(forwarded[i], &sa, NULL);
  int status;
  while (waitpid(child, &status, 0) < 0)
    if (errno != EINTR) return 1;
  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    signal(sig, SIG_DFL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    raise(sig);
    return 128 + sig;
  }
  return WEXITSTATUS(status);
}
