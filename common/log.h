/*
 * log.h - one logging path for every occfs program.
 *
 * Lines go to stderr (or syslog once log_open_syslog is called) as
 * "prog: level: message".  fatal() is for start-up errors and broken internal
 * invariants only, never for anything a peer sent.
 */
#ifndef OCCFS_LOG_H
#define OCCFS_LOG_H

enum log_level { LOG_LVL_ERR, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

void log_init(const char *prog, int verbosity); /* 0 = info, 1 = debug */
void log_open_syslog(void);
void log_msg(enum log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void fatal(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

#define log_err(...) log_msg(LOG_LVL_ERR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)

#endif
