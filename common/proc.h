/* SPDX-License-Identifier: MIT */
/* proc.h - processes (is this pid still the process that took a hold?) and clocks */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* This process's pid and start time (cached; forgotten across fork()), and
 * any process's start time from /proc (proc.c). */
pid_t self_pid_get(void);
uint64_t self_start_time(void);

/* Where proc.c reads process start times ("/proc"; tests point it at a
 * directory that hides processes, as hidepid=2 does). */
extern const char *proc_root;

/* The start time of PID from /proc into *STARTP: 0; -ESRCH when the
 * process is proved gone (no such pid, or a zombie); any other negative
 * errno when /proc cannot tell (EMFILE, EACCES, hidden by hidepid=2) although
 * a process with PID may exist. */
int proc_read_start(pid_t pid, uint64_t *startp);

/* The same, 0 when it cannot be read for any reason (not a proof of death:
 * use proc_life() for that). */
uint64_t proc_start_time(pid_t pid);

/* Whether PID is still the process that started at START (0: any process
 * with that pid).  Dead needs a proof: the pid is gone or a zombie
 * (pidfd_open or kill(pid, 0) say ESRCH, /proc says Z), or /proc shows
 * another start time (the pid was reused).  When /proc cannot be read but a
 * process has the pid, the answer is PROC_UNKNOWN, which every caller
 * treats as alive: a hold is never given away on a guess. */
enum proc_life {
        PROC_DEAD = 0,
        PROC_ALIVE = 1,
        PROC_UNKNOWN = 2,
};
enum proc_life proc_life(pid_t pid, uint64_t start);

/* Whether PID is stopped (SIGSTOP, a debugger): 'T' or 't' in its stat;
 * false when /proc cannot tell. */
bool proc_stopped(pid_t pid);

uint64_t now_realtime_usec(void);
uint64_t now_monotonic_usec(void);
