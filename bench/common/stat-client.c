/*
 * Stat client for the fuse-stat and tree-stat benchmarks: T threads stat() MOUNTPOINT/<name> for
 * every name in NAMEFILE (one path relative to the mountpoint a line, e.g. `pid/f0`, `pid/1234`),
 * round-robin, for S seconds; prints the total number of successful stats per second. Any failed
 * stat is fatal (exit 1). SECONDS 0: one pass over all names in one thread (warm-up), prints the
 * number of names.
 *
 *   stat-client MOUNTPOINT NAMEFILE SECONDS THREADS
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char **paths;
static unsigned long n;
static atomic_int stop_flag;
static atomic_ulong errors;

struct worker { unsigned long start; unsigned long count; };

static void *run(void *arg) {
	struct worker *w = arg;
	struct stat st;
	unsigned long i = w->start;
	while (!atomic_load_explicit(&stop_flag, memory_order_relaxed)) {
		if (stat(paths[i], &st) != 0) atomic_fetch_add(&errors, 1);
		w->count++;
		if (++i == n) i = 0;
	}
	return NULL;
}

static double now(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
	if (argc < 5) {
		fprintf(stderr, "usage: %s MOUNTPOINT NAMEFILE SECONDS THREADS\n", argv[0]);
		return 2;
	}
	double secs = atof(argv[3]);
	int threads = atoi(argv[4]);
	if (threads < 1 || threads > 64) return 2;
	FILE *f = fopen(argv[2], "r");
	if (!f) { perror(argv[2]); return 2; }
	unsigned long cap = 256;
	char line[4096];
	paths = malloc(cap * sizeof(char *));
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\r\n")] = '\0';
		if (line[0] == '\0') continue;
		if (n == cap) paths = realloc(paths, (cap *= 2) * sizeof(char *));
		paths[n] = malloc(strlen(argv[1]) + strlen(line) + 2);
		sprintf(paths[n], "%s/%s", argv[1], line);
		n++;
	}
	fclose(f);
	if (n == 0) { fprintf(stderr, "stat-client: no names\n"); return 2; }
	if (secs <= 0) {
		struct stat st;
		for (unsigned long i = 0; i < n; i++) {
			if (stat(paths[i], &st) != 0) { perror(paths[i]); return 1; }
		}
		printf("%lu\n", n);
		return 0;
	}
	pthread_t tid[64];
	struct worker w[64];
	double t0 = now();
	for (int t = 0; t < threads; t++) {
		w[t].start = (n / threads) * t;
		w[t].count = 0;
		pthread_create(&tid[t], NULL, run, &w[t]);
	}
	usleep((useconds_t)(secs * 1e6));
	atomic_store(&stop_flag, 1);
	unsigned long total = 0;
	for (int t = 0; t < threads; t++) {
		pthread_join(tid[t], NULL);
		total += w[t].count;
	}
	double el = now() - t0;
	if (atomic_load(&errors) != 0) {
		fprintf(stderr, "stat-client: %lu stat() calls failed\n", atomic_load(&errors));
		return 1;
	}
	printf("%.0f\n", total / el);
	return 0;
}
