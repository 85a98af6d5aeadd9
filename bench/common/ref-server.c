/*
 * Reference server for the fuse-stat and tree-stat benchmarks: libfuse3 low-level API serving
 * root -> pid/ -> <name> (regular files) from memory.
 *
 *   ref-server MOUNTPOINT (-n N | -f NAMEFILE) [-t TIMEOUT] [-s SIZE] [-l loop|mt|epoll] [-c] [-F FSNAME]
 *
 * -n N         names f0..f{N-1} (looked up by parsing the number, as ts-server.ts does).
 * -f NAMEFILE  one name a line (a leading "pid/" is dropped, so a stat-client NAMEFILE works),
 *              looked up by binary search.
 * -t TIMEOUT   entry and attribute timeout in seconds (default 0: every stat reaches the server).
 * -s SIZE      st_size of the files (default 0; st_blocks 1 when SIZE > 0).
 * -l LOOP      "loop" (default): single-threaded fuse_session_loop(), like the TypeScript session,
 *              one thread; "mt": fuse_session_loop_mt(); "epoll": one thread that waits in
 *              epoll_wait() and then read()s the non-blocking device until EAGAIN (at most 64),
 *              the TypeScript session's read mechanism (native/fuse_device.c), to separate the
 *              cost of that mechanism from the cost of JavaScript.
 * -c           on SIGUSR1 print "requests N lookup L getattr G forget F readdir D" (handled so
 *              far; forget counts nodes, a batch forget counts each).
 * -F FSNAME    fsname and subtype of the mount (default ref-server).
 *
 * Prints "ready" once mounted. Ends on SIGINT/SIGTERM or umount.
 */
#define FUSE_USE_VERSION 34
#include <fuse_lowlevel.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <unistd.h>

#define PID_INO 2
#define FILE_BASE 1000

static unsigned long n_files;
static char **names;          /* -f: names in file order (inode FILE_BASE + index); NULL for -n */
static unsigned long *sorted; /* -f: indexes into names, sorted by name */
static double timeout;
static off_t file_size;
static volatile unsigned long n_requests, n_lookup, n_getattr, n_forget, n_readdir;

static int fill_attr(fuse_ino_t ino, struct stat *st) {
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_mtime = st->st_atime = st->st_ctime = 1700000000;
	if (ino == FUSE_ROOT_ID || ino == PID_INO) {
		st->st_mode = S_IFDIR | 0555;
		st->st_nlink = 2;
		return 0;
	}
	if (ino >= FILE_BASE && ino < FILE_BASE + n_files) {
		st->st_mode = S_IFREG | 0444;
		st->st_nlink = 1;
		st->st_size = file_size;
		st->st_blocks = file_size > 0;
		return 0;
	}
	return -1;
}

static int cmp_name(const void *key, const void *elem) {
	return strcmp((const char *)key, names[*(const unsigned long *)elem]);
}

static int cmp_index(const void *a, const void *b) {
	return strcmp(names[*(const unsigned long *)a], names[*(const unsigned long *)b]);
}

static fuse_ino_t file_ino(const char *name) {
	if (names) {
		unsigned long *hit = bsearch(name, sorted, n_files, sizeof(*sorted), cmp_name);
		return hit ? FILE_BASE + *hit : 0;
	}
	if (name[0] == 'f' && name[1] >= '0' && name[1] <= '9') {
		char *end;
		unsigned long i = strtoul(name + 1, &end, 10);
		if (*end == '\0' && i < n_files && !(name[1] == '0' && name[2] != '\0')) return FILE_BASE + i;
	}
	return 0;
}

static void ref_lookup(fuse_req_t req, fuse_ino_t parent, const char *name) {
	struct fuse_entry_param e;
	fuse_ino_t ino = 0;
	n_requests++;
	n_lookup++;
	memset(&e, 0, sizeof(e));
	if (parent == FUSE_ROOT_ID && strcmp(name, "pid") == 0) ino = PID_INO;
	else if (parent == PID_INO) ino = file_ino(name);
	if (ino == 0) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	e.ino = ino;
	e.generation = 1;
	e.attr_timeout = timeout;
	e.entry_timeout = timeout;
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
	fuse_reply_attr(req, &st, timeout);
}

static void ref_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
	(void)ino;
	(void)nlookup;
	n_requests++;
	n_forget++;
	fuse_reply_none(req);
}

static void ref_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets) {
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
	total = ino == FUSE_ROOT_ID ? 3 : 2 + n_files;
	for (unsigned long i = off; i < total; i++) {
		struct stat st;
		char gen[32];
		const char *name = gen;
		memset(&st, 0, sizeof(st));
		if (i == 0) { strcpy(gen, "."); st.st_ino = ino; st.st_mode = S_IFDIR; }
		else if (i == 1) { strcpy(gen, ".."); st.st_ino = FUSE_ROOT_ID; st.st_mode = S_IFDIR; }
		else if (ino == FUSE_ROOT_ID) { strcpy(gen, "pid"); st.st_ino = PID_INO; st.st_mode = S_IFDIR; }
		else {
			if (names) name = names[i - 2];
			else snprintf(gen, sizeof(gen), "f%lu", i - 2);
			st.st_ino = FILE_BASE + i - 2;
			st.st_mode = S_IFREG;
		}
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

/* One thread: epoll_wait() for readability, then a non-blocking read of one request. */
static int epoll_loop(struct fuse_session *se) {
	int fd = fuse_session_fd(se);
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = { .events = EPOLLIN };
	struct fuse_buf fbuf = { .mem = NULL };
	int res = 0;
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) return -1;
	while (!fuse_session_exited(se)) {
		struct epoll_event got;
		int n = epoll_wait(ep, &got, 1, -1);
		if (n < 0) {
			if (errno == EINTR) continue;
			res = -errno;
			break;
		}
		/* Every queued request, up to 64, then back to epoll: as the session's native reader. */
		for (int i = 0; i < 64; i++) {
			res = fuse_session_receive_buf(se, &fbuf);
			if (res <= 0) break;
			fuse_session_process_buf(se, &fbuf);
		}
		if (res == -EINTR || res == -EAGAIN || res > 0) continue;
		break;
	}
	free(fbuf.mem);
	close(ep);
	fuse_session_reset(se);
	return res < 0 && res != -ENODEV ? -1 : 0;
}

static int read_names(const char *file) {
	FILE *f = fopen(file, "r");
	char line[4096];
	unsigned long cap = 256;
	if (!f) { perror(file); return -1; }
	names = malloc(cap * sizeof(*names));
	while (fgets(line, sizeof(line), f)) {
		char *name = line;
		line[strcspn(line, "\r\n")] = '\0';
		if (strncmp(name, "pid/", 4) == 0) name += 4;
		if (*name == '\0') continue;
		if (n_files == cap) names = realloc(names, (cap *= 2) * sizeof(*names));
		names[n_files++] = strdup(name);
	}
	fclose(f);
	sorted = malloc((n_files ? n_files : 1) * sizeof(*sorted));
	for (unsigned long i = 0; i < n_files; i++) sorted[i] = i;
	qsort(sorted, n_files, sizeof(*sorted), cmp_index);
	return 0;
}

static int usage(const char *argv0) {
	fprintf(stderr, "usage: %s MOUNTPOINT (-n N | -f NAMEFILE) [-t TIMEOUT] [-s SIZE] [-l loop|mt|epoll] [-c] [-F FSNAME]\n", argv0);
	return 2;
}

int main(int argc, char **argv) {
	const char *loop = "loop", *name_file = NULL, *fsname = "ref-server";
	int counting = 0, have_n = 0, opt;
	while ((opt = getopt(argc, argv, "n:f:t:s:l:cF:")) != -1) {
		switch (opt) {
		case 'n': n_files = strtoul(optarg, NULL, 10); have_n = 1; break;
		case 'f': name_file = optarg; break;
		case 't': timeout = atof(optarg); break;
		case 's': file_size = strtol(optarg, NULL, 10); break;
		case 'l': loop = optarg; break;
		case 'c': counting = 1; break;
		case 'F': fsname = optarg; break;
		default: return usage(argv[0]);
		}
	}
	if (optind + 1 != argc || have_n == (name_file != NULL)) return usage(argv[0]);
	if (strcmp(loop, "loop") != 0 && strcmp(loop, "mt") != 0 && strcmp(loop, "epoll") != 0) return usage(argv[0]);
	if (name_file && read_names(name_file) != 0) return 1;

	if (counting) {
		struct sigaction sa;
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_usr1;
		sa.sa_flags = SA_RESTART;
		sigaction(SIGUSR1, &sa, NULL);
	}

	char fsopt[256];
	snprintf(fsopt, sizeof(fsopt), "fsname=%s,subtype=%s,ro", fsname, fsname);
	char *fargv[] = { argv[0], "-o", fsopt, NULL };
	struct fuse_args args = FUSE_ARGS_INIT(3, fargv);
	struct fuse_session *se = fuse_session_new(&args, &ops, sizeof(ops), NULL);
	if (!se) return 1;
	if (fuse_set_signal_handlers(se) != 0) return 1;
	if (fuse_session_mount(se, argv[optind]) != 0) return 1;
	printf("ready\n");
	fflush(stdout);
	int ret;
	if (strcmp(loop, "mt") == 0) {
		struct fuse_loop_config *cfg = fuse_loop_cfg_create();
		ret = fuse_session_loop_mt(se, cfg);
		fuse_loop_cfg_destroy(cfg);
	} else if (strcmp(loop, "epoll") == 0) {
		ret = epoll_loop(se);
	} else {
		ret = fuse_session_loop(se);
	}
	fuse_session_unmount(se);
	fuse_remove_signal_handlers(se);
	fuse_session_destroy(se);
	return ret < 0 ? 1 : 0;
}
