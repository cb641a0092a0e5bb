/* SPDX-License-Identifier: MIT */
/* test-perm.c - the namespace's permission model (daemon/perm.c): modes,
 * group lookup, the /proc Groups: parser, applying modes to files, and the
 * check of connecting peers of other uids and groups (as root) */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "macro.h"
#include "perm.h"
#include "testhelp.h"

#define NOBODY 65534
#define TEST_GID 54321 /* a gid no process here is in */

/* ---- modes and groups ---------------------------------------------------- */

START_TEST(modes) {
        struct perm p;
        char why[160];
        ck_assert_int_eq(perm_init(&p, NULL, false, why, sizeof(why)), 0);
        ck_assert(!p.group_set);
        ck_assert_int_eq(p.gid, getegid());
        ck_assert_int_eq(perm_dir_mode(&p), 0700);
        ck_assert_int_eq(perm_file_mode(&p), 0600);
        ck_assert_int_eq(perm_socket_umask(&p), 0177);

        ck_assert_int_eq(perm_init(&p, "", true, why, sizeof(why)), 0);
        ck_assert(!p.group_set);
        ck_assert_int_eq(perm_dir_mode(&p), 0755);
        ck_assert_int_eq(perm_file_mode(&p), 0660);

        ck_assert_int_eq(perm_init(&p, "54321", false, why, sizeof(why)), 0);
        ck_assert(p.group_set);
        ck_assert_int_eq(p.gid, TEST_GID);
        ck_assert_int_eq(perm_dir_mode(&p), 0750);
        ck_assert_int_eq(perm_file_mode(&p), 0660);
        ck_assert_int_eq(perm_socket_umask(&p), 0117);
}
END_TEST

START_TEST(group_names) {
        struct perm p;
        char why[160] = "";
        ck_assert_int_eq(perm_init(&p, "root", true, why, sizeof(why)), 0);
        ck_assert(p.group_set);
        ck_assert_int_eq(p.gid, 0);
        ck_assert_str_eq(p.group_name, "root");
        ck_assert_int_eq(perm_init(&p, "0", true, why, sizeof(why)), 0);
        ck_assert_str_eq(p.group_name, "root");

        ck_assert_int_eq(perm_init(&p, "no-such-group-evd", true, why, sizeof(why)), -ENOENT);
        ck_assert_msg(strstr(why, "no group named 'no-such-group-evd'"), "why: %s", why);
        ck_assert_int_eq(perm_init(&p, "12x", true, why, sizeof(why)), -EINVAL);
        ck_assert_msg(strstr(why, "invalid group '12x'"), "why: %s", why);
        ck_assert_int_eq(perm_init(&p, "99999999999999999999", true, why, sizeof(why)), -EINVAL);
        ck_assert_int_eq(perm_init(&p, "4294967295", true, why, sizeof(why)), -EINVAL);
}
END_TEST

START_TEST(status_groups) {
        const char *st = "Name:\tx\nUid:\t1\t1\t1\t1\nGid:\t7\t7\t7\t7\n"
                         "Groups:\t10 20 300 \nNgid:\t0\n";
        ck_assert(perm_status_has_group(st, 10));
        ck_assert(perm_status_has_group(st, 20));
        ck_assert(perm_status_has_group(st, 300));
        ck_assert(!perm_status_has_group(st, 2));
        ck_assert(!perm_status_has_group(st, 30));
        ck_assert(!perm_status_has_group(st, 7)); /* the Gid: line is not Groups: */
        ck_assert(!perm_status_has_group(st, 0));
        ck_assert(!perm_status_has_group("Groups:\t\nNgid:\t5\n", 5));
        ck_assert(!perm_status_has_group("Groups:\n", 0));
        ck_assert(!perm_status_has_group("", 0));
        ck_assert(!perm_status_has_group("XGroups:\t5\n", 5));
        ck_assert(!perm_status_has_group("Name: Groups:\t5\n", 5));
        ck_assert(perm_status_has_group("Name:\ty\nGroups:\t5", 5)); /* no final newline */
        ck_assert(perm_status_has_group("Groups:\t4294967294\n", 4294967294u));
        ck_assert(!perm_status_has_group("Groups:\t99999999999999999999\n", 4294967295u));
}
END_TEST

/* ---- files ------------------------------------------------------------------ */

START_TEST(apply_fd) {
        char path[] = "/tmp/evd-test-perm.XXXXXX";
        int fd = mkstemp(path);
        ck_assert_int_ge(fd, 0);
        struct perm p;
        char why[160] = "";
        ck_assert_int_eq(perm_init(&p, NULL, true, why, sizeof(why)), 0);
        ck_assert_int_eq(perm_apply_fd(&p, fd, why, sizeof(why)), 0);
        struct stat st;
        ck_assert_int_eq(fstat(fd, &st), 0);
        ck_assert_int_eq(st.st_mode & 07777, 0660);
        ck_assert_int_eq(st.st_gid, getegid());
        if (geteuid() == 0) {
                /* A group we are not in: root may. */
                ck_assert_int_eq(perm_init(&p, "54321", true, why, sizeof(why)), 0);
                ck_assert_int_eq(perm_apply_fd(&p, fd, why, sizeof(why)), 0);
                ck_assert_int_eq(fstat(fd, &st), 0);
                ck_assert_int_eq(st.st_gid, TEST_GID);
                /* Somebody else's file (a squatter in /dev/shm) is refused. */
                ck_assert_int_eq(fchown(fd, NOBODY, (gid_t)-1), 0);
                ck_assert_int_eq(perm_apply_fd(&p, fd, why, sizeof(why)), -EPERM);
                ck_assert_msg(strstr(why, "belongs to uid 65534"), "why: %s", why);
        }
        close(fd);
        unlink(path);
}
END_TEST

START_TEST(apply_dir_and_socket) {
        char dir[] = "/tmp/evd-test-perm-dir.XXXXXX";
        ck_assert_ptr_nonnull(mkdtemp(dir));
        struct perm p;
        char why[160] = "", sock[128];
        snprintf(sock, sizeof(sock), "%s/evd.sock", dir);
        /* Without a group, the directory keeps its mode. */
        ck_assert_int_eq(perm_init(&p, NULL, false, why, sizeof(why)), 0);
        ck_assert_int_eq(perm_apply_dir(&p, dir), 0);
        struct stat st;
        ck_assert_int_eq(stat(dir, &st), 0);
        ck_assert_int_eq(st.st_mode & 07777, 0700);
        /* Not a socket: refused. */
        int f = open(sock, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
        ck_assert_int_ge(f, 0);
        close(f);
        ck_assert_int_eq(perm_apply_socket(&p, sock), -ENOTSOCK);
        unlink(sock);
        int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        ck_assert_int_lt(strlen(sock), sizeof(sa.sun_path));
        memcpy(sa.sun_path, sock, strlen(sock) + 1);
        ck_assert_int_eq(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
        ck_assert_int_eq(perm_apply_socket(&p, sock), 0);
        ck_assert_int_eq(lstat(sock, &st), 0);
        ck_assert_int_eq(st.st_mode & 07777, 0600);
        if (geteuid() == 0) {
                ck_assert_int_eq(perm_init(&p, "54321", false, why, sizeof(why)), 0);
                ck_assert_int_eq(perm_apply_dir(&p, dir), 0);
                ck_assert_int_eq(stat(dir, &st), 0);
                ck_assert_int_eq(st.st_mode & 07777, 0750);
                ck_assert_int_eq(st.st_gid, TEST_GID);
                ck_assert_int_eq(perm_apply_socket(&p, sock), 0);
                ck_assert_int_eq(lstat(sock, &st), 0);
                ck_assert_int_eq(st.st_mode & 07777, 0660);
                ck_assert_int_eq(st.st_gid, TEST_GID);
        }
        close(s);
        unlink(sock);
        rmdir(dir);
}
END_TEST

/* ---- peers ------------------------------------------------------------------- */

/* Connect to an abstract socket from a child with UID, GID and one
 * supplementary group SUPP (or none, -1); report what perm_peer_allowed
 * says about it under P. */
static bool peer_allowed_as(const struct perm *p, uid_t uid, gid_t gid, long supp, char *why,
                            size_t whylen) {
        int l = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        ck_assert_int_ge(l, 0);
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int n = snprintf(sa.sun_path + 1, sizeof(sa.sun_path) - 1, "evd-test-perm-%d",
                         (int)getpid());
        socklen_t salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
        ck_assert_int_eq(bind(l, (struct sockaddr *)&sa, salen), 0);
        ck_assert_int_eq(listen(l, 1), 0);
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                gid_t g = (gid_t)supp;
                if (setgroups(supp >= 0 ? 1 : 0, &g) < 0 || setresgid(gid, gid, gid) < 0 ||
                    setresuid(uid, uid, uid) < 0)
                        _exit(10);
                int c = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
                if (c < 0 || connect(c, (struct sockaddr *)&sa, salen) < 0)
                        _exit(11);
                char b;
                (void)!read(c, &b, 1); /* until the parent has looked */
                _exit(0);
        }
        int a = accept4(l, NULL, NULL, SOCK_CLOEXEC);
        ck_assert_int_ge(a, 0);
        struct ucred cred;
        socklen_t len = sizeof(cred);
        ck_assert_int_eq(getsockopt(a, SOL_SOCKET, SO_PEERCRED, &cred, &len), 0);
        ck_assert_int_eq(cred.uid, uid);
        bool ok = perm_peer_allowed(p, a, &cred, why, whylen);
        close(a);
        close(l);
        int status;
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
        return ok;
}

START_TEST(peers) {
        struct perm p;
        char why[160] = "";
        ck_assert_int_eq(perm_init(&p, "54321", true, why, sizeof(why)), 0);
        /* Our own uid always gets in. */
        struct ucred me = { .pid = getpid(), .uid = geteuid(), .gid = getegid() };
        int sp[2];
        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp), 0);
        ck_assert(perm_peer_allowed(&p, sp[0], &me, why, sizeof(why)));
        struct ucred unknown = { .pid = 0, .uid = (uid_t)-1, .gid = (gid_t)-1 };
        ck_assert(!perm_peer_allowed(&p, sp[0], &unknown, why, sizeof(why)));
        close(sp[0]);
        close(sp[1]);
        if (geteuid() != 0)
                return; /* the rest needs other uids */

        /* Outside the group: refused, with the reason. */
        why[0] = '\0';
        ck_assert(!peer_allowed_as(&p, NOBODY, NOBODY, -1, why, sizeof(why)));
        ck_assert_msg(strstr(why, "not in group 54321"), "why: %s", why);
        /* A supplementary member, and a primary one, get in. */
        ck_assert(peer_allowed_as(&p, NOBODY, NOBODY, TEST_GID, why, sizeof(why)));
        ck_assert(peer_allowed_as(&p, NOBODY, TEST_GID, -1, why, sizeof(why)));
        /* Root always does. */
        ck_assert(peer_allowed_as(&p, 0, NOBODY, -1, why, sizeof(why)));

        /* Without --group, members of nothing count: only our uid and root. */
        ck_assert_int_eq(perm_init(&p, NULL, true, why, sizeof(why)), 0);
        ck_assert(!peer_allowed_as(&p, NOBODY, getegid(), (long)getegid(), why, sizeof(why)));
        ck_assert_msg(strstr(why, "only uid 0 and root"), "why: %s", why);
}
END_TEST

START_TEST(proc_fallback_self) {
        /* The parser agrees with the kernel about ourselves. */
        FILE *f = fopen("/proc/self/status", "r");
        ck_assert_ptr_nonnull(f);
        char buf[8192];
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = '\0';
        gid_t groups[256];
        int ng = getgroups(256, groups);
        ck_assert_int_ge(ng, 0);
        for (int i = 0; i < ng; i++)
                ck_assert(perm_status_has_group(buf, groups[i]));
        ck_assert(!perm_status_has_group(buf, TEST_GID));
}
END_TEST

int main(void) {
        const struct th_case cases[] = {
                { "model", { modes, group_names, status_groups, proc_fallback_self } },
                { "files", { apply_fd, apply_dir_and_socket } },
                { "peers", { peers } },
        };
        return th_run_cases("perm", cases, ELEMENTSOF(cases), NULL);
}
