// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * rmdump_killat DIR BYTES PID: SIGKILL PID as soon as the data files of the
 * dump in DIR (cpu*.out*) hold at least BYTES bytes, polling every 200 us
 * (a shell loop under TCG is far too slow to hit a point inside a run).
 * Prints "killed at N bytes" and exits 0; exits 1 if PID ended first or
 * after 300 s.
 */
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static long long dump_bytes(const char *dir)
{
	char path[4096];
	long long sum = 0;
	struct dirent *e;
	struct stat st;
	DIR *d = opendir(dir);

	if (!d)
		return 0;
	while ((e = readdir(d))) {
		if (strncmp(e->d_name, "cpu", 3) || !strstr(e->d_name, ".out"))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (stat(path, &st) == 0)
			sum += st.st_size;
	}
	closedir(d);
	return sum;
}

int main(int argc, char **argv)
{
	long long target, n;
	pid_t pid;
	time_t end = time(NULL) + 300;

	if (argc != 4) {
		fprintf(stderr, "usage: rmdump_killat DIR BYTES PID\n");
		return 2;
	}
	target = atoll(argv[2]);
	pid = atoi(argv[3]);
	while (time(NULL) < end) {
		n = dump_bytes(argv[1]);
		if (n >= target) {
			if (kill(pid, SIGKILL) != 0) {
				perror("kill");
				return 1;
			}
			printf("killed at %lld bytes\n", n);
			return 0;
		}
		if (kill(pid, 0) != 0) {
			fprintf(stderr, "rmdump_killat: pid %d ended at %lld bytes, before %lld\n", pid, n, target);
			return 1;
		}
		usleep(200);
	}
	fprintf(stderr, "rmdump_killat: %lld bytes after 300 s, want %lld\n", dump_bytes(argv[1]), target);
	return 1;
}
