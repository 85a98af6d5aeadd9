/*
 * Lookup latencies for the workloads benchmark.
 *
 *   lookup first N MNT     N rounds: fork a child (it pauses), stat() MNT/pid/<child> and
 *                          /proc/<child> (which goes first alternates), kill and reap it.
 *                          Prints "first HFS_US PROC_US" per round.
 *   lookup old MNT PID SECONDS CREATE
 *                          stat() MNT/pid/<PID> (a long-known handle; mount it with timeouts 0 so
 *                          every stat reaches the server) in a loop for SECONDS and prints the
 *                          latency of each as "old US". With CREATE 1 another thread meanwhile
 *                          forks children, stat()s MNT/pid/<child> (a first lookup: a new number
 *                          to commit) and kills them, as fast as it can; it prints "created N".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_us(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static pid_t spawn_child(void) {
	pid_t p = fork();
	if (p < 0) {
		perror("fork");
		exit(1);
	}
	if (p == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		for (;;) pause();
	}
	return p;
}

static void end_child(pid_t p) {
	kill(p, SIGKILL);
	while (waitpid(p, NULL, 0) < 0 && errno == EINTR) {
	}
}

static double timed_stat(const char *path) {
	struct stat st;
	double t0 = now_us();
	int r = stat(path, &st);
	double t1 = now_us();
	if (r != 0) {
		fprintf(stderr, "stat %s: %s\n", path, strerror(errno));
		return -1;
	}
	return t1 - t0;
}

static int first(int n, const char *mnt) {
	char hp[4096], pp[64];
	for (int i = 0; i < n; i++) {
		pid_t c = spawn_child();
		snprintf(hp, sizeof hp, "%s/pid/%d", mnt, (int)c);
		snprintf(pp, sizeof pp, "/proc/%d", (int)c);
		double h, p;
		if (i % 2 == 0) {
			h = timed_stat(hp);
			p = timed_stat(pp);
		} else {
			p = timed_stat(pp);
			h = timed_stat(hp);
		}
		end_child(c);
		if (h < 0 || p < 0) return 1;
		printf("first %.2f %.2f\n", h, p);
	}
	return 0;
}

static volatile int stop_creating;
static const char *g_mnt;
static int g_in_proc; /* 2: the creator stats /proc/<pid>, not the mount (the same forks, no handlefs work) */
static long created;

static void *creator(void *arg) {
	(void)arg;
	char hp[4096];
	while (!stop_creating) {
		pid_t c = spawn_child();
		if (g_in_proc) snprintf(hp, sizeof hp, "/proc/%d", (int)c);
		else snprintf(hp, sizeof hp, "%s/pid/%d", g_mnt, (int)c);
		struct stat st;
		if (stat(hp, &st) == 0) created++;
		end_child(c);
	}
	return NULL;
}

static int old(const char *mnt, int pid, double seconds, int create) {
	char hp[4096];
	snprintf(hp, sizeof hp, "%s/pid/%d", mnt, pid);
	g_mnt = mnt;
	g_in_proc = create == 2;
	pthread_t th;
	if (create && pthread_create(&th, NULL, creator, NULL) != 0) return 1;
	double end = now_us() + seconds * 1e6;
	while (now_us() < end) {
		double t = timed_stat(hp);
		if (t < 0) break;
		printf("old %.2f\n", t);
	}
	if (create) {
		stop_creating = 1;
		pthread_join(th, NULL);
		printf("created %ld\n", created);
	}
	return 0;
}

int main(int argc, char **argv) {
	if (argc >= 4 && strcmp(argv[1], "first") == 0) return first(atoi(argv[2]), argv[3]);
	if (argc >= 6 && strcmp(argv[1], "old") == 0) return old(argv[2], atoi(argv[3]), atof(argv[4]), atoi(argv[5]));
	fprintf(stderr, "usage: lookup first N MNT | lookup old MNT PID SECONDS CREATE\n");
	return 2;
}
