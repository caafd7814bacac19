#!/bin/sh
# The lockdown pass. Secure Boot distributions run the kernel with
# lockdown=integrity, and debugfs then refuses to open any file that can
# be mapped or takes ioctls. A locked-down kernel also loads no unsigned
# module (the VM has no MOK), so the modules are loaded first and lockdown
# is raised at run time through securityfs, as a Secure-Boot machine that
# loaded a signed relaymap would be. Then, under lockdown:
#   - the debugfs control and cpu files are refused (EPERM);
#   - the SDK names the cause (Error::Lockdown) for a debugfs path and
#     consumes losslessly by name through /dev/relaymap;
#   - the C consumer (librelaymap) does the same;
#   - relaymap-dump dumps by name and its dump verifies, 0 lost;
#   - and as the operator of such a machine would: a non-root user in the
#     device's group (relaymap.ko group=) dumps and verifies, a user outside
#     it is refused with a message that names the group.
# Lockdown cannot be lowered again and no later test could load a module,
# so this runs last in the main boot (the 9x tests are the lockdown pass).
# timeout: 400
# shellcheck source=tests/vm/guest/lib.sh
. /relaymap/lib.sh

CH=lock
GID=4242 # the device's group (group=): uid 1000 is in it, uid 1001 is not
rm_load name=$CH subbuf_size=262144 n_subbufs=8 group=$GID
lg_load channel=$CH record_size=200 mode=lossless count=60000

SEC=/sys/kernel/security
grep -q " $SEC securityfs " /proc/mounts || mount -t securityfs securityfs $SEC ||
	fail "cannot mount securityfs"
[ -e $SEC/lockdown ] || skip "this kernel has no lockdown LSM ($SEC/lockdown missing)"
echo "lockdown before: $(cat $SEC/lockdown)"
echo integrity >$SEC/lockdown || fail "cannot raise lockdown to integrity"
level=$(cat $SEC/lockdown)
echo "lockdown now: $level"
case $level in *"[integrity]"*) ;; *) fail "lockdown is '$level', want [integrity]" ;; esac

echo "--- debugfs refuses the channel's files"
dir=$(rm_dir $CH)
[ -e "$dir/cpu0" ] || fail "$dir/cpu0 missing: the debug view should still be created"
if (exec 3<"$dir/cpu0") 2>/tmp/e.cpu; then fail "$dir/cpu0 opened under lockdown"; fi
grep -q 'Operation not permitted' /tmp/e.cpu || { cat /tmp/e.cpu; fail "cpu0: not EPERM"; }
if (exec 3<>"$dir/control") 2>/tmp/e.ctl; then fail "$dir/control opened under lockdown"; fi
grep -q 'Operation not permitted' /tmp/e.ctl || { cat /tmp/e.ctl; fail "control: not EPERM"; }
dmesg | grep -q 'debugfs access is restricted' || fail "no 'debugfs access is restricted' in dmesg"
echo "ok: cpu0 and control refused with EPERM, dmesg says debugfs access is restricted"
if insmod "$LG_KO" 2>/tmp/e.ins; then fail "insmod worked under lockdown"; fi
echo "ok: insmod refused: $(cat /tmp/e.ins)"

echo "--- SDK (relaymap-vmtest) by name"
relaymap-vmtest expect-error lockdown --channel $CH || fail "SDK: the lockdown error"
lg_start
relaymap-vmtest lossless --channel $CH --expect-from-loadgen --timeout-s 150 ||
	fail "SDK: lossless by name under lockdown"
lg_wait_idle 60
echo "ok: SDK: $(lg_stat written total) records, lossless, under lockdown"

echo "--- C consumer (librelaymap) by name"
lossless_consumer_run relaymap-consumer $CH

echo "--- relaymap-dump by name, then verify"
lossless_dump_run $CH /tmp/out
rm -rf /tmp/out

echo "--- non-root: uid 1000 in group $GID dumps; uid 1001 outside it is refused"
command -v rmdump_dropuid >/dev/null || fail "rmdump_dropuid not built (build.d/70-dump.sh)"
mkdir -p /tmp/nr && chown 1000:$GID /tmp/nr
lossless_dump_run $CH /tmp/nr/out rmdump_dropuid 1000 $GID
rc=0
rmdump_dropuid 1001 1001 relaymap-dump $CH -o /tmp/nr2out 2>/tmp/nr2.err || rc=$?
cat /tmp/nr2.err
[ "$rc" != 0 ] || fail "uid 1001 (not in group $GID) could consume"
grep -qi 'group' /tmp/nr2.err || fail "the refusal does not name the group"
[ ! -e /tmp/nr2out ] || [ -z "$(ls -A /tmp/nr2out)" ] || fail "the refused dumper wrote a dump"
echo "ok: uid 1001 refused (exit $rc) with a message naming the group"
echo "ok: lockdown=integrity: debugfs refused; SDK, C and relaymap-dump consume by name through /dev/relaymap, non-root in the group too"
