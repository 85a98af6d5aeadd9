/*
 * Process owner and exit prober for the tree-stat benchmark.
 *
 *   procs N PIDFILE
 *
 * Forks N children that exec `sleep 3600` (each dies with this process: PR_SET_PDEATHSIG), writes
 * their pids to PIDFILE (one a line) and prints "ready". Then reads commands on stdin:
 *
 *   probe MOUNTPOINT K GAP_MS   kill K children one by one (SIGKILL). For each: stat
 *                               MOUNTPOINT/pid/<pid> must succeed first (the name is cached); t0 =
 *                               kill(); t1 = waitpid() returned (reaped); then stat() every 100 µs
 *                               until it fails with ENOENT (t2), at most 5 s. Prints one line per
 *                               child: "exit PID KILL_TO_ENOENT_MS REAP_TO_ENOENT_MS KILL_TO_REAP_MS
 *                               STATS_OK_AFTER_REAP ERRNO" (ERRNO 0 = ENOENT seen; else the last
 *                               other errno, or -1 for a timeout with stat still succeeding),
 *                               then "done". GAP_MS: pause before the next kill.
 *   quit (or end of input)      kill and reap every remaining child, exit.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static pid_t *kids;
static int n_kids;
static int next_victim;

static double now_ms(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void sleep_us(long us) {
	struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

static void kill_all(void) {
	for (int i = next_victim; i < n_kids; i++) kill(kids[i], SIGKILL);
	for (int i = next_victim; i < n_kids; i++) waitpid(kids[i], NULL, 0);
	next_victim = n_kids;
}

static void probe(const char *mnt, int k, int gap_ms) {
	char path[4200];
	struct stat st;
	for (int j = 0; j < k && next_victim < n_kids; j++) {
		pid_t pid = kids[next_victim++];
		snprintf(path, sizeof(path), "%s/pid/%d", mnt, (int)pid);
		if (stat(path, &st) != 0) {
			printf("error %d stat before kill: %s\n", (int)pid, strerror(errno));
			fflush(stdout);
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			continue;
		}
		double t0 = now_ms();
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		double t1 = now_ms();
		double t2 = 0;
		long ok_after = 0;
		int last_err = -1;
		for (;;) {
			int r = stat(path, &st);
			double t = now_ms();
			if (r != 0 && errno == ENOENT) { t2 = t; last_err = 0; break; }
			if (r == 0) ok_after++;
			else last_err = errno;
			if (t - t0 > 5000) { t2 = t; break; }
			sleep_us(100);
		}
		printf("exit %d %.3f %.3f %.3f %ld %d\n", (int)pid, t2 - t0, t2 - t1, t1 - t0, ok_after, last_err);
		fflush(stdout);
		if (gap_ms > 0) sleep_us((long)gap_ms * 1000);
	}
	printf("done\n");
	fflush(stdout);
}

int main(int argc, char **argv) {
	if (argc < 3) {
		fprintf(stderr, "usage: %s N PIDFILE\n", argv[0]);
		return 2;
	}
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	n_kids = atoi(argv[1]);
	kids = calloc(n_kids, sizeof(pid_t));
	pid_t self = getpid();
	for (int i = 0; i < n_kids; i++) {
		pid_t p = fork();
		if (p < 0) { perror("fork"); kill_all(); return 1; }
		if (p == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			if (getppid() != self) _exit(1);
			execlp("sleep", "sleep", "3600", (char *)NULL);
			_exit(127);
		}
		kids[i] = p;
	}
	/* Wait until every child runs sleep (its comm says so), so names are stable. */
	for (int i = 0; i < n_kids; i++) {
		char path[64], comm[32];
		snprintf(path, sizeof(path), "/proc/%d/comm", (int)kids[i]);
		for (int tries = 0; tries < 5000; tries++) {
			FILE *f = fopen(path, "r");
			comm[0] = 0;
			if (f) { if (!fgets(comm, sizeof(comm), f)) comm[0] = 0; fclose(f); }
			if (strncmp(comm, "sleep", 5) == 0) break;
			sleep_us(1000);
		}
	}
	FILE *pf = fopen(argv[2], "w");
	if (!pf) { perror(argv[2]); kill_all(); return 1; }
	for (int i = 0; i < n_kids; i++) fprintf(pf, "%d\n", (int)kids[i]);
	fclose(pf);
	printf("ready\n");
	fflush(stdout);
	char line[4200];
	while (fgets(line, sizeof(line), stdin)) {
		char mnt[4096];
		int k, gap;
		if (sscanf(line, "probe %4095s %d %d", mnt, &k, &gap) == 3) probe(mnt, k, gap);
		else if (strncmp(line, "quit", 4) == 0) break;
	}
	kill_all();
	return 0;
}
