/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * rmdump_dropuid UID GID PROG ARGS...: run PROG as UID:GID with no
 * supplementary groups. The guest's busybox setpriv has no --reuid, and the
 * initramfs has no passwd file for chpst/su. Used by the relaymap-dump VM
 * test of the "permission denied" error.
 */
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: rmdump_dropuid UID GID PROG [ARGS...]\n");
		return 2;
	}
	uid_t uid = (uid_t)strtoul(argv[1], NULL, 10);
	gid_t gid = (gid_t)strtoul(argv[2], NULL, 10);
	if (setgroups(0, NULL) || setgid(gid) || setuid(uid)) {
		perror("rmdump_dropuid");
		return 126;
	}
	execvp(argv[3], argv + 3);
	perror(argv[3]);
	return 127;
}
