/* SPDX-License-Identifier: MIT */
/*
 * rmck_asuser UID GID [-G GID[,GID...]] [--] PROG [ARGS...]: run PROG as
 * UID:GID with exactly the supplementary groups given (none without -G).
 * The guest has busybox only, no passwd file, and busybox setpriv cannot
 * set uids; the approach follows examples/relaymap-dump/vm/rmdump_dropuid.c.
 * Exit 126 if a step fails, 127 if PROG cannot be run.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static unsigned long num(const char *s, const char *what)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end) {
		fprintf(stderr, "rmck_asuser: bad %s '%s'\n", what, s);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	gid_t groups[32];
	size_t ngroups = 0;
	uid_t uid;
	gid_t gid;
	int i = 3;

	if (argc < 4) {
		fprintf(stderr, "usage: rmck_asuser UID GID [-G GID[,GID...]] [--] PROG [ARGS...]\n");
		return 2;
	}
	uid = (uid_t)num(argv[1], "uid");
	gid = (gid_t)num(argv[2], "gid");
	if (!strcmp(argv[i], "-G") && i + 1 < argc) {
		char *list = argv[i + 1], *tok, *save = NULL;

		for (tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
			if (ngroups == sizeof(groups) / sizeof(groups[0])) {
				fprintf(stderr, "rmck_asuser: too many groups\n");
				return 2;
			}
			groups[ngroups++] = (gid_t)num(tok, "supplementary gid");
		}
		i += 2;
	}
	if (i < argc && !strcmp(argv[i], "--"))
		i++;
	if (i >= argc) {
		fprintf(stderr, "rmck_asuser: no program\n");
		return 2;
	}
	if (setgroups(ngroups, groups) || setgid(gid) || setuid(uid)) {
		perror("rmck_asuser: setgroups/setgid/setuid");
		return 126;
	}
	if (getuid() != uid || geteuid() != uid || getgid() != gid || getegid() != gid) {
		fprintf(stderr, "rmck_asuser: ids did not change\n");
		return 126;
	}
	execvp(argv[i], argv + i);
	fprintf(stderr, "rmck_asuser: %s: %s\n", argv[i], strerror(errno));
	return 127;
}
