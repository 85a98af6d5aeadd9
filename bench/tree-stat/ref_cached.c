/*
 * Reference server for the tree-stat benchmark: libfuse3 low-level API serving the same names as
 * handlefs's pid/ directory for a fixed list of pids (root -> pid/ -> <pid>, regular files), with
 * entry and attribute timeouts of 3600 s (everything kernel-cached after the first lookup),
 * answered from memory. It never learns of exits: that is the point of comparison (the fastest a
 * server can make cached stat(), with no correctness obligation).
 *
 *   ref_cached MOUNTPOINT PIDFILE
 *
 * PIDFILE: one decimal pid per line. Single-threaded fuse_session_loop(). Prints "ready" once
 * mounted; on SIGUSR1 prints "requests N lookup L getattr G forget F readdir D"
 * (handled so far; forget counts nodes, a batch forget counts each). Ends on SIGINT/SIGTERM or
 * umount.
 */
#define FUSE_USE_VERSION 34
#include <fuse_lowlevel.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PID_INO 2
#define FILE_BASE 1000
#define TIMEOUT 3600.0

static unsigned long *pids;
static unsigned long n_pids;
static volatile unsigned long n_requests, n_lookup, n_getattr, n_forget, n_readdir;

static int cmp_ul(const void *a, const void *b) {
	unsigned long x = *(const unsigned long *)a, y = *(const unsigned long *)b;
	return x < y ? -1 : x > y;
}

static int fill_attr(fuse_ino_t ino, struct stat *st) {
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_mtime = st->st_atime = st->st_ctime = 1700000000;
	if (ino == FUSE_ROOT_ID || ino == PID_INO) {
		st->st_mode = S_IFDIR | 0555;
		st->st_nlink = 2;
		return 0;
	}
	if (ino >= FILE_BASE && ino < FILE_BASE + n_pids) {
		st->st_mode = S_IFREG | 0444;
		st->st_nlink = 1;
		return 0;
	}
	return -1;
}

static void ref_lookup(fuse_req_t req, fuse_ino_t parent, const char *name) {
	struct fuse_entry_param e;
	fuse_ino_t ino = 0;
	n_requests++;
	n_lookup++;
	memset(&e, 0, sizeof(e));
	if (parent == FUSE_ROOT_ID && strcmp(name, "pid") == 0) {
		ino = PID_INO;
	} else if (parent == PID_INO && name[0] >= '1' && name[0] <= '9') {
		char *end;
		unsigned long p = strtoul(name, &end, 10);
		if (*end == '\0') {
			unsigned long *hit = bsearch(&p, pids, n_pids, sizeof(*pids), cmp_ul);
			if (hit) ino = FILE_BASE + (hit - pids);
		}
	}
	if (ino == 0) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	e.ino = ino;
	e.generation = 1;
	e.attr_timeout = TIMEOUT;
	e.entry_timeout = TIMEOUT;
	fill_attr(ino, &e.attr);
	fuse_reply_entry(req, &e);
}

static void ref_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
	struct stat st;
	(void)fi;
	n_requests++;
	n_getattr++;
	if (fill_attr(ino, &st) != 0) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	fuse_reply_attr(req, &st, TIMEOUT);
}

static void ref_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
	(void)ino;
	(void)nlookup;
	n_requests++;
	n_forget++;
	fuse_reply_none(req);
}

static void ref_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets) {
	(void)count;
	(void)forgets;
	n_requests++;
	n_forget += count;
	fuse_reply_none(req);
}

static void ref_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
	char buf[4096];
	size_t pos = 0;
	unsigned long total;
	(void)fi;
	n_requests++;
	n_readdir++;
	if (ino != FUSE_ROOT_ID && ino != PID_INO) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	if (size > sizeof(buf)) size = sizeof(buf);
	total = ino == FUSE_ROOT_ID ? 3 : 2 + n_pids;
	for (unsigned long i = off; i < total; i++) {
		struct stat st;
		char name[32];
		memset(&st, 0, sizeof(st));
		if (i == 0) { strcpy(name, "."); st.st_ino = ino; st.st_mode = S_IFDIR; }
		else if (i == 1) { strcpy(name, ".."); st.st_ino = FUSE_ROOT_ID; st.st_mode = S_IFDIR; }
		else if (ino == FUSE_ROOT_ID) { strcpy(name, "pid"); st.st_ino = PID_INO; st.st_mode = S_IFDIR; }
		else { snprintf(name, sizeof(name), "%lu", pids[i - 2]); st.st_ino = FILE_BASE + i - 2; st.st_mode = S_IFREG; }
		size_t need = fuse_add_direntry(req, buf + pos, size - pos, name, &st, i + 1);
		if (need > size - pos) break;
		pos += need;
	}
	fuse_reply_buf(req, buf, pos);
}

static const struct fuse_lowlevel_ops ops = {
	.lookup = ref_lookup,
	.getattr = ref_getattr,
	.forget = ref_forget,
	.forget_multi = ref_forget_multi,
	.readdir = ref_readdir,
};

/* Async-signal-safe: formats the counters by hand and write()s them. */
static int put_ul(char *buf, const char *label, unsigned long v) {
	char digits[24];
	int nd = 0, pos = 0;
	while (*label) buf[pos++] = *label++;
	do { digits[nd++] = (char)('0' + v % 10); v /= 10; } while (v);
	while (nd) buf[pos++] = digits[--nd];
	return pos;
}

static void on_usr1(int sig) {
	char buf[256];
	int pos = 0;
	(void)sig;
	pos += put_ul(buf + pos, "requests ", n_requests);
	pos += put_ul(buf + pos, " lookup ", n_lookup);
	pos += put_ul(buf + pos, " getattr ", n_getattr);
	pos += put_ul(buf + pos, " forget ", n_forget);
	pos += put_ul(buf + pos, " readdir ", n_readdir);
	buf[pos++] = '\n';
	ssize_t w = write(1, buf, pos);
	(void)w;
}

int main(int argc, char **argv) {
	if (argc < 3) {
		fprintf(stderr, "usage: %s MOUNTPOINT PIDFILE\n", argv[0]);
		return 2;
	}
	FILE *f = fopen(argv[2], "r");
	if (!f) { perror(argv[2]); return 1; }
	unsigned long cap = 256, p;
	pids = malloc(cap * sizeof(*pids));
	while (fscanf(f, "%lu", &p) == 1) {
		if (n_pids == cap) pids = realloc(pids, (cap *= 2) * sizeof(*pids));
		pids[n_pids++] = p;
	}
	fclose(f);
	qsort(pids, n_pids, sizeof(*pids), cmp_ul);

	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGUSR1, &sa, NULL);

	char *fargv[] = { argv[0], "-o", "fsname=ref_cached,subtype=ref_cached,ro", NULL };
	struct fuse_args args = FUSE_ARGS_INIT(3, fargv);
	struct fuse_session *se = fuse_session_new(&args, &ops, sizeof(ops), NULL);
	if (!se) return 1;
	if (fuse_set_signal_handlers(se) != 0) return 1;
	if (fuse_session_mount(se, argv[1]) != 0) return 1;
	printf("ready\n");
	fflush(stdout);
	int ret = fuse_session_loop(se);
	fuse_session_unmount(se);
	fuse_remove_signal_handlers(se);
	fuse_session_destroy(se);
	return ret < 0 ? 1 : 0;
}
