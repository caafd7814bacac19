// SPDX-License-Identifier: GPL-2.0
/*
 * /dev/relaymap, channel fds and the legacy debugfs control file.
 *
 * /dev/relaymap is a misc device: GET_VERSION, LIST, OPEN_CHANNEL.
 * OPEN_CHANNEL returns a channel fd (anon inode "[relaymap-channel]",
 * O_RDWR) that holds a channel reference and answers the channel ioctls
 * of relaymap_control.c, exactly like relaymap/<name>/control in debugfs.
 *
 * Access. A misc device cannot give its devtmpfs node a group, and a
 * system without udev has nobody to change it later, so:
 *  - without group=, mode= (default 0600) is the node's mode, root:root;
 *  - with group=G the node is 0666 and open() admits only members of G
 *    (in_group_p(): the fsgid or a supplementary group) and callers with
 *    CAP_SYS_ADMIN; everyone else gets EACCES;
 *  - on systems with udev, kmod/60-relaymap.rules sets group "relaymap"
 *    and mode 0660 instead (no group= needed).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/anon_inodes.h>
#include <linux/capability.h>
#include <linux/cred.h>
#include <linux/fcntl.h>
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>		/* kvcalloc(), kvfree() before 5.16 */
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uaccess.h>
#include <linux/uidgid.h>

#include "relaymap_internal.h"

static unsigned int dev_mode = 0600;

static int relaymap_mode_set(const char *val, const struct kernel_param *kp)
{
	unsigned int v;

	if (kstrtouint(val, 8, &v) || v > 0777) {
		pr_err("mode=%s invalid: octal permission bits, e.g. 0600\n",
		       val);
		return -EINVAL;
	}
	*(unsigned int *)kp->arg = v;
	return 0;
}

static int relaymap_mode_get(char *buf, const struct kernel_param *kp)
{
	return scnprintf(buf, PAGE_SIZE, "%04o\n", *(unsigned int *)kp->arg);
}

static const struct kernel_param_ops relaymap_mode_ops = {
	.set = relaymap_mode_set,
	.get = relaymap_mode_get,
};

module_param_cb(mode, &relaymap_mode_ops, &dev_mode, 0444);
MODULE_PARM_DESC(mode, "Mode of /dev/relaymap (octal) when group= is not set (default: 0600)");

static int group = -1;
module_param(group, int, 0444);
MODULE_PARM_DESC(group, "gid whose members may open /dev/relaymap (the node is then 0666 and open() checks the group); -1 = none (default: -1)");

static kgid_t relaymap_gid;

static int relaymap_dev_open(struct inode *inode, struct file *file)
{
	if (group < 0)
		return 0;	/* the node's mode decides */
	/* Group first: capable() may audit a denial that does not matter. */
	if (in_group_p(relaymap_gid) || capable(CAP_SYS_ADMIN))
		return 0;
	return -EACCES;
}

static long relaymap_ioc_list(void __user *arg)
{
	struct relaymap_list req;
	char *names = NULL;
	u32 usize, total, cap = 0;
	long ret;

	ret = relaymap_copy_in(&req, sizeof(req), RELAYMAP_LIST_SIZE_VER0, arg,
			       &usize);
	if (ret)
		return ret;
	if (req.names && req.nr) {
		/* Room for what exists now; more may appear meanwhile. */
		relaymap_list_names(NULL, 0, &total);
		cap = min(req.nr, total);
		if (cap) {
			names = kvcalloc(cap, RELAYMAP_NAME_MAX, GFP_KERNEL);
			if (!names)
				return -ENOMEM;
		}
	}
	relaymap_list_names(names, cap, &total);
	if (names &&
	    copy_to_user(u64_to_user_ptr(req.names), names,
			 (size_t)min(cap, total) * RELAYMAP_NAME_MAX))
		ret = -EFAULT;
	kvfree(names);
	if (ret)
		return ret;
	req.nr = total;
	return relaymap_copy_out(arg, &req, sizeof(req), usize);
}

static long relaymap_chanfd_ioctl(struct file *file, unsigned int cmd,
				  unsigned long arg)
{
	return relaymap_chan_ioctl(file->private_data, cmd,
				   (void __user *)arg);
}

static int relaymap_chanfd_release(struct inode *inode, struct file *file)
{
	relaymap_chan_put(file->private_data);
	return 0;
}

static const struct file_operations relaymap_chanfd_fops = {
	.owner = THIS_MODULE,
	.release = relaymap_chanfd_release,
	.unlocked_ioctl = relaymap_chanfd_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.llseek = noop_llseek,
};

static long relaymap_ioc_open_channel(void __user *arg)
{
	struct relaymap_open_channel oc;
	struct relaymap_chan *ch;
	u32 usize;
	long ret;
	int fd;

	ret = relaymap_copy_in(&oc, sizeof(oc), RELAYMAP_OPEN_CHANNEL_SIZE_VER0,
			       arg, &usize);
	if (ret)
		return ret;
	if (oc.flags || strnlen(oc.name, sizeof(oc.name)) == sizeof(oc.name))
		return -EINVAL;
	ch = relaymap_chan_get(oc.name);
	if (!ch)
		return -ENOENT;
	/* The fd owns the reference; its release drops it. */
	fd = anon_inode_getfd("[relaymap-channel]", &relaymap_chanfd_fops, ch,
			      O_RDWR | O_CLOEXEC);
	if (fd < 0)
		relaymap_chan_put(ch);
	return fd;
}

static long relaymap_dev_ioctl(struct file *file, unsigned int cmd,
			       unsigned long arg)
{
	void __user *uarg = (void __user *)arg;

	if (_IOC_TYPE(cmd) != RELAYMAP_IOC_MAGIC)
		return -ENOTTY;
	switch (_IOC_NR(cmd)) {
	case _IOC_NR(RELAYMAP_IOC_GET_VERSION):
		return RELAYMAP_ABI_VERSION;
	case _IOC_NR(RELAYMAP_IOC_LIST):
		return relaymap_ioc_list(uarg);
	case _IOC_NR(RELAYMAP_IOC_OPEN_CHANNEL):
		return relaymap_ioc_open_channel(uarg);
	default:
		return -ENOTTY;
	}
}

static const struct file_operations relaymap_dev_fops = {
	.owner = THIS_MODULE,
	.open = relaymap_dev_open,
	.unlocked_ioctl = relaymap_dev_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.llseek = noop_llseek,
};

static struct miscdevice relaymap_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "relaymap",
	.nodename = "relaymap",
	.fops = &relaymap_dev_fops,
};

/*
 * debugfs relaymap/<name>/control: the channel ioctls, like a channel fd.
 * Created with debugfs_create_file(): the full proxy makes the
 * debugfs_remove() at the channel's release wait for an open in flight,
 * and fail later ones. An open that races with that release finds the
 * count at zero and gives up.
 */
static int relaymap_control_open(struct inode *inode, struct file *file)
{
	struct relaymap_chan *ch = inode->i_private;

	if (!kref_get_unless_zero(&ch->kref))
		return -ENOENT;
	file->private_data = ch;
	return 0;
}

const struct file_operations relaymap_control_fops = {
	.owner = THIS_MODULE,
	.open = relaymap_control_open,
	.release = relaymap_chanfd_release,
	.unlocked_ioctl = relaymap_chanfd_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.llseek = noop_llseek,
};

int relaymap_dev_init(void)
{
	int err;

	if (group >= 0) {
		relaymap_gid = make_kgid(&init_user_ns, group);
		if (!gid_valid(relaymap_gid)) {
			pr_err("group=%d is not a valid gid\n", group);
			return -EINVAL;
		}
		relaymap_misc.mode = 0666;
	} else {
		relaymap_misc.mode = dev_mode;
	}
	err = misc_register(&relaymap_misc);
	if (err)
		pr_err("cannot register /dev/relaymap: %d\n", err);
	return err;
}

void relaymap_dev_exit(void)
{
	misc_deregister(&relaymap_misc);
}
