/*
 * Many live processes, cheaply, for the scale benchmark.
 *
 *   procs N PIDFILE
 *
 * clone()s N children with CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND: separate processes (own
 * pid, own thread group) that share this process's address space, descriptor table and signal
 * handlers, so each costs the kernel a task, a kernel stack and a pid (~30 KB) and no page tables
 * or copied memory. Each runs on a small stack carved from one mmap, sets PR_SET_PDEATHSIG SIGKILL
 * (it dies with this process) and pause()s. Their pids go to PIDFILE, one a line; then "ready N".
 * Commands on stdin:
 *
 *   stat MNT THREADS OUTFILE [FROM TO]
 *                              stat() MNT/pid/<pid> of every child (or of children FROM..TO-1 in
 *                              the order of PIDFILE) with THREADS threads; writes "PID INO" per
 *                              child (INO 0: failed) to OUTFILE and prints
 *                              "stat OK FAILED MS FIRST_ERRNO FIRST_FAILED_PID".
 *   pidfs OUTFILE              writes "PID PIDFS_INO" per child (the inode number fstat() of a
 *                              pidfd gives: what tells processes apart over pid reuse) and
 *                              prints "pidfs N".
 *   spawn                      one more child; prints "spawned PID".
 *   quit (or end of input)     SIGKILL and reap every child, print "bye", exit.
 *
 * Children only make raw system calls through syscall(), bound before the first clone (no libc
 * state: they share this process's TLS).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* A child touches well under 1 KiB of stack (clone's trampoline and three raw syscalls). */
#define STACK_SIZE 2048

static pid_t *kids;
static int n_kids;
static int cap_kids;
static char *stacks;
static int n_stacks;
static pid_t parent_pid;

static int child_main(void *arg) {
	(void)arg;
	syscall(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	if (syscall(SYS_getppid) != parent_pid) syscall(SYS_exit, 0); /* the parent died before the prctl */
	for (;;) syscall(SYS_pause);
	return 0;
}

static double now_ms(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int spawn_one(void) {
	if (n_kids >= n_stacks) {
		fprintf(stderr, "procs: out of stacks (%d)\n", n_stacks);
		return -1;
	}
	if (n_kids >= cap_kids) {
		cap_kids = cap_kids ? cap_kids * 2 : 1024;
		kids = realloc(kids, sizeof(pid_t) * cap_kids);
		if (!kids) {
			perror("realloc");
			exit(1);
		}
	}
	char *top = stacks + (size_t)(n_kids + 1) * STACK_SIZE;
	pid_t p = clone(child_main, top, CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | SIGCHLD, NULL);
	if (p < 0) return -1;
	kids[n_kids++] = p;
	return p;
}

static void kill_all(void) {
	for (int i = 0; i < n_kids; i++) kill(kids[i], SIGKILL);
	for (int i = 0; i < n_kids; i++)
		while (waitpid(kids[i], NULL, 0) < 0 && errno == EINTR) {
		}
	n_kids = 0;
}

struct stat_job {
	const char *mnt;
	int from, to;
	unsigned long *inos;
	int failed;
	int first_errno;
	int first_pid;
};

static void *stat_range(void *arg) {
	struct stat_job *j = arg;
	char path[4200];
	struct stat st;
	for (int i = j->from; i < j->to; i++) {
		snprintf(path, sizeof(path), "%s/pid/%d", j->mnt, (int)kids[i]);
		if (stat(path, &st) == 0) {
			j->inos[i] = st.st_ino;
		} else {
			j->inos[i] = 0;
			if (j->failed++ == 0) {
				j->first_errno = errno;
				j->first_pid = kids[i];
			}
		}
	}
	return NULL;
}

static void stat_all(const char *mnt, int threads, const char *outfile, int from, int to) {
	if (threads < 1) threads = 1;
	if (from < 0) from = 0;
	if (to > n_kids || to < 0) to = n_kids;
	if (from > to) from = to;
	int n = to - from;
	unsigned long *inos = calloc(n_kids ? n_kids : 1, sizeof(unsigned long));
	pthread_t *tids = calloc(threads, sizeof(pthread_t));
	struct stat_job *jobs = calloc(threads, sizeof(struct stat_job));
	double t0 = now_ms();
	for (int t = 0; t < threads; t++) {
		jobs[t] = (struct stat_job){ mnt, from + (int)((long)n * t / threads), from + (int)((long)n * (t + 1) / threads), inos, 0, 0, 0 };
		pthread_create(&tids[t], NULL, stat_range, &jobs[t]);
	}
	int failed = 0, first_errno = 0, first_pid = 0;
	for (int t = 0; t < threads; t++) {
		pthread_join(tids[t], NULL);
		if (jobs[t].failed && !failed) {
			first_errno = jobs[t].first_errno;
			first_pid = jobs[t].first_pid;
		}
		failed += jobs[t].failed;
	}
	double ms = now_ms() - t0;
	FILE *f = fopen(outfile, "w");
	if (f) {
		for (int i = from; i < to; i++) fprintf(f, "%d %lu\n", (int)kids[i], inos[i]);
		fclose(f);
	}
	printf("stat %d %d %.1f %d %d\n", n - failed, failed, ms, first_errno, first_pid);
	fflush(stdout);
	free(inos);
	free(tids);
	free(jobs);
}

static void pidfs_all(const char *outfile) {
	FILE *f = fopen(outfile, "w");
	int n = 0;
	if (!f) {
		printf("error %s: %s\n", outfile, strerror(errno));
		fflush(stdout);
		return;
	}
	for (int i = 0; i < n_kids; i++) {
		int fd = (int)syscall(SYS_pidfd_open, kids[i], 0);
		struct stat st;
		if (fd < 0) continue;
		if (fstat(fd, &st) == 0) {
			fprintf(f, "%d %lu\n", (int)kids[i], (unsigned long)st.st_ino);
			n++;
		}
		close(fd);
	}
	fclose(f);
	printf("pidfs %d\n", n);
	fflush(stdout);
}

int main(int argc, char **argv) {
	if (argc != 3) {
		fprintf(stderr, "usage: procs N PIDFILE\n");
		return 2;
	}
	int n = atoi(argv[1]);
	parent_pid = getpid();
	/* Bind syscall() now: the first lazy PLT resolution in a child would run the dynamic linker
	 * (which saves the vector registers: several KiB) on a 2 KiB stack. */
	syscall(SYS_getppid);
	n_stacks = n + 4096; /* room for `spawn` */
	stacks = mmap(NULL, (size_t)n_stacks * STACK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (stacks == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	for (int i = 0; i < n; i++) {
		if (spawn_one() < 0) {
			int e = errno;
			printf("error clone after %d children: %s\n", n_kids, strerror(e));
			fflush(stdout);
			kill_all();
			return 1;
		}
	}
	FILE *f = fopen(argv[2], "w");
	if (!f) {
		perror(argv[2]);
		kill_all();
		return 1;
	}
	for (int i = 0; i < n_kids; i++) fprintf(f, "%d\n", (int)kids[i]);
	fclose(f);
	printf("ready %d\n", n_kids);
	fflush(stdout);

	char line[8192];
	while (fgets(line, sizeof(line), stdin)) {
		char mnt[4096], out[4096];
		int threads, from = 0, to = -1;
		if (sscanf(line, "stat %4095s %d %4095s %d %d", mnt, &threads, out, &from, &to) >= 3) {
			stat_all(mnt, threads, out, from, to);
		} else if (sscanf(line, "pidfs %4095s", out) == 1) {
			pidfs_all(out);
		} else if (strncmp(line, "spawn", 5) == 0) {
			int p = spawn_one();
			if (p < 0) printf("error spawn: %s\n", strerror(errno));
			else printf("spawned %d\n", p);
			fflush(stdout);
		} else if (strncmp(line, "quit", 4) == 0) {
			break;
		} else {
			printf("error unknown command\n");
			fflush(stdout);
		}
	}
	kill_all();
	printf("bye\n");
	fflush(stdout);
	return 0;
}
