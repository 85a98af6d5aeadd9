/*
 * Reference server for the fuse-stat benchmark: libfuse3 low-level API, the same tree as
 * ts-server.ts (root -> pid/ -> f0..f{N-1}), entry and attribute timeouts 0, answered from memory.
 *
 *   ref_ll MOUNTPOINT N [mt|epoll]
 *
 * Single-threaded fuse_session_loop() by default (like the TypeScript session, one thread);
 * "mt" uses fuse_session_loop_mt() for comparison; "epoll" runs one thread that waits in
 * epoll_wait() and then read()s the non-blocking device, which is the TypeScript session's read
 * mechanism (libuv), to separate the cost of that mechanism from the cost of JavaScript.
 * Ends on SIGINT/SIGTERM or umount.
 */
#define FUSE_USE_VERSION 34
#include <fuse_lowlevel.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PID_INO 2
#define FILE_BASE 1000

static unsigned long n_files;

static int fill_attr(fuse_ino_t ino, struct stat *st) {
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_uid = 0;
	st->st_gid = 0;
	st->st_mtime = st->st_atime = st->st_ctime = 1700000000;
	if (ino == FUSE_ROOT_ID || ino == PID_INO) {
		st->st_mode = S_IFDIR | 0555;
		st->st_nlink = 2;
		return 0;
	}
	if (ino >= FILE_BASE && ino < FILE_BASE + n_files) {
		st->st_mode = S_IFREG | 0444;
		st->st_nlink = 1;
		st->st_size = 64;
		st->st_blocks = 1;
		return 0;
	}
	return -1;
}

static void ref_lookup(fuse_req_t req, fuse_ino_t parent, const char *name) {
	struct fuse_entry_param e;
	fuse_ino_t ino = 0;
	memset(&e, 0, sizeof(e));
	if (parent == FUSE_ROOT_ID && strcmp(name, "pid") == 0) {
		ino = PID_INO;
	} else if (parent == PID_INO && name[0] == 'f' && name[1] >= '0' && name[1] <= '9') {
		char *end;
		unsigned long i = strtoul(name + 1, &end, 10);
		if (*end == '\0' && i < n_files && !(name[1] == '0' && name[2] != '\0')) ino = FILE_BASE + i;
	}
	if (ino == 0) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	e.ino = ino;
	e.generation = 1;
	e.attr_timeout = 0;
	e.entry_timeout = 0;
	fill_attr(ino, &e.attr);
	fuse_reply_entry(req, &e);
}

static void ref_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
	struct stat st;
	(void)fi;
	if (fill_attr(ino, &st) != 0) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	fuse_reply_attr(req, &st, 0);
}

static void ref_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
	(void)ino;
	(void)nlookup;
	fuse_reply_none(req);
}

static void ref_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets) {
	(void)count;
	(void)forgets;
	fuse_reply_none(req);
}

static void ref_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
	char buf[4096];
	size_t pos = 0;
	unsigned long total;
	(void)fi;
	if (ino != FUSE_ROOT_ID && ino != PID_INO) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	if (size > sizeof(buf)) size = sizeof(buf);
	total = ino == FUSE_ROOT_ID ? 3 : 2 + n_files;
	for (unsigned long i = off; i < total; i++) {
		struct stat st;
		char name[32];
		memset(&st, 0, sizeof(st));
		if (i == 0) { strcpy(name, "."); st.st_ino = ino; st.st_mode = S_IFDIR; }
		else if (i == 1) { strcpy(name, ".."); st.st_ino = FUSE_ROOT_ID; st.st_mode = S_IFDIR; }
		else if (ino == FUSE_ROOT_ID) { strcpy(name, "pid"); st.st_ino = PID_INO; st.st_mode = S_IFDIR; }
		else { snprintf(name, sizeof(name), "f%lu", i - 2); st.st_ino = FILE_BASE + i - 2; st.st_mode = S_IFREG; }
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
		res = fuse_session_receive_buf(se, &fbuf);
		if (res == -EINTR || res == -EAGAIN) continue;
		if (res <= 0) break;
		fuse_session_process_buf(se, &fbuf);
	}
	free(fbuf.mem);
	close(ep);
	fuse_session_reset(se);
	return res < 0 && res != -ENODEV ? -1 : 0;
}

int main(int argc, char **argv) {
	if (argc < 3) {
		fprintf(stderr, "usage: %s MOUNTPOINT N [mt]\n", argv[0]);
		return 2;
	}
	n_files = strtoul(argv[2], NULL, 10);
	int mt = argc > 3 && strcmp(argv[3], "mt") == 0;
	int ep = argc > 3 && strcmp(argv[3], "epoll") == 0;
	char *fargv[] = { argv[0], "-o", "fsname=ref_ll,subtype=ref_ll,ro", NULL };
	struct fuse_args args = FUSE_ARGS_INIT(3, fargv);
	struct fuse_session *se = fuse_session_new(&args, &ops, sizeof(ops), NULL);
	if (!se) return 1;
	if (fuse_set_signal_handlers(se) != 0) return 1;
	if (fuse_session_mount(se, argv[1]) != 0) return 1;
	printf("ready\n");
	fflush(stdout);
	int ret;
	if (mt) {
		struct fuse_loop_config *cfg = fuse_loop_cfg_create();
		ret = fuse_session_loop_mt(se, cfg);
		fuse_loop_cfg_destroy(cfg);
	} else if (ep) {
		ret = epoll_loop(se);
	} else {
		ret = fuse_session_loop(se);
	}
	fuse_session_unmount(se);
	fuse_remove_signal_handlers(se);
	fuse_session_destroy(se);
	return ret < 0 ? 1 : 0;
}
