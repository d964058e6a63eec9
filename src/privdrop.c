/* Dropping root: after the listening socket is bound and the files are
 * open, the daemon becomes its service user (setgroups, setgid, setuid,
 * and a check that root cannot come back), and the data directory becomes
 * that user's. Modelled on OpenSSH's uidswap.c, beside the daemon. Called
 * by serve.c once, on the main thread, before the loops run. */
#include "privdrop.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"

/* Hands the data directory (and what root created in it) to uid:gid, so
 * that the store, the vault key and the self-signed pair stay writable
 * after the switch. Only entries owned by root are changed, symbolic links
 * are never followed, and nothing below the first level is touched (the
 * directory holds no subdirectories). */
static int chown_data_dir(const char *dir, uid_t uid, gid_t gid)
{
	struct dirent *e;
	struct stat sb;
	DIR *d;
	int fd, r = 0;

	fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &sb) < 0 || (sb.st_uid == 0 && fchown(fd, uid, gid) < 0)) {
		r = -errno;
		close(fd);
		return r;
	}
	d = fdopendir(fd);
	if (!d) {
		r = -errno;
		close(fd);
		return r;
	}
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (fstatat(fd, e->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(sb.st_mode) ||
		    sb.st_uid != 0)
			continue;
		if (fchownat(fd, e->d_name, uid, gid, AT_SYMLINK_NOFOLLOW) < 0 && r == 0)
			r = -errno;
	}
	closedir(d);
	return r;
}

/* Runs once the listener is bound, the TLS key read and the store open:
 * nothing after this needs root. Started as root, switches to `want`
 * (server.user), or to "bastion" when that is empty and such an account
 * exists; "root" keeps root on purpose. Without a bastion account and
 * without a setting, root is kept with a loud warning (refusing would
 * break first runs on machines nobody prepared; the warning says how to
 * fix it). Started as another user, `want` must be empty or that user.
 * Returns 0 or a negative code with the reason in err. */
int privdrop_to_user(const char *want, const char *data_dir, char *err, size_t errlen)
{
	const char *name = want[0] ? want : "bastion";
	struct passwd *pw;
	uid_t uid;
	gid_t gid;
	int r;

	if (geteuid() != 0) {
		pw = getpwuid(geteuid());
		if (want[0] && (!pw || strcmp(pw->pw_name, want) != 0)) {
			snprintf(err, errlen,
				 "server.user is '%s' but switching users needs bastion to be "
				 "started as root (it runs as %s)",
				 want, pw ? pw->pw_name : "another user");
			return -EPERM;
		}
		return 0;
	}
	if (strcmp(want, "root") == 0) {
		log_warn("running as root because server.user is root");
		return 0;
	}
	errno = 0;
	pw = getpwnam(name);
	if (!pw) {
		if (want[0]) {
			snprintf(err, errlen, "server.user: there is no user '%s'", want);
			return -ENOENT;
		}
		log_warn(
			"RUNNING AS ROOT: there is no user 'bastion' to switch to after binding. "
			"Create one (useradd --system --no-create-home bastion) or set server.user "
			"(--user NAME); set it to root to keep root on purpose");
		return 0;
	}
	uid = pw->pw_uid;
	gid = pw->pw_gid;
	if (uid == 0)
		return 0;
	if ((r = chown_data_dir(data_dir, uid, gid)) < 0) {
		snprintf(err, errlen, "cannot give the data directory %s to user %s: %s", data_dir,
			 name, strerror(-r));
		return r;
	}
	/* Groups first (they need root), then the group, then the user. */
	if (initgroups(name, gid) < 0 || setgid(gid) < 0 || setuid(uid) < 0) {
		r = -errno;
		snprintf(err, errlen, "cannot switch to user %s: %s", name, strerror(-r));
		return r;
	}
	if (setuid(0) == 0 || geteuid() != uid || getegid() != gid) {
		snprintf(err, errlen, "switching to user %s did not take", name);
		return -EPERM;
	}
	log_info("running as user %s (uid %u, gid %u); the data directory %s belongs to it", name,
		 (unsigned)uid, (unsigned)gid, data_dir);
	return 0;
}
