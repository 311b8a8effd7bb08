//! The id of this process, cached, for the fork checks on the hot path.
//!
//! `std::process::id()` is a `getpid` system call every time (glibc stopped
//! caching it in 2.25). The pool checks it at every checkout and checkin, and
//! the dump's temp file is named after it: three calls per mutation. Here the
//! pid is read once and a `pthread_atfork` child handler forgets it in every
//! child that `fork()` creates (Python's `os.fork`, RQ's work horses,
//! `multiprocessing`), so the child's next call reads its own pid before it can
//! look at a pooled connection. A process forked by a raw `clone`/`fork`
//! system call that skips libc's handlers would keep the parent's pid: if the
//! handler cannot be registered, the pid is never cached.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Once;

static PID: AtomicU32 = AtomicU32::new(0);
static HANDLER: AtomicBool = AtomicBool::new(false);
static REGISTER: Once = Once::new();

extern "C" fn forget_in_child() {
    // Runs in the child's only thread right after fork(): an atomic store only.
    PID.store(0, Ordering::SeqCst);
}

/// This process's id: `getpid()` once per process, then from memory.
pub fn current() -> u32 {
    let cached = PID.load(Ordering::SeqCst);
    if cached != 0 {
        return cached;
    }
    REGISTER.call_once(|| {
        // SAFETY: registers a handler that only stores to an atomic.
        let rc = unsafe { libc::pthread_atfork(None, None, Some(forget_in_child)) };
        HANDLER.store(rc == 0, Ordering::SeqCst);
    });
    let pid = std::process::id();
    if HANDLER.load(Ordering::SeqCst) {
        PID.store(pid, Ordering::SeqCst);
    }
    pid
}

#[cfg(test)]
mod tests {
    use super::current;

    #[test]
    fn a_forked_child_reads_its_own_pid() {
        assert_eq!(current(), std::process::id());
        assert_eq!(current(), std::process::id()); // cached now
                                                   // SAFETY: the child only calls current(), getpid() and _exit().
        let child = unsafe { libc::fork() };
        assert!(child >= 0, "fork failed");
        if child == 0 {
            let ok = current() == std::process::id() && current() != 0;
            // SAFETY: leave the child without running the test harness's exit code.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) };
        }
        let mut status = 0;
        // SAFETY: waits for the child forked above.
        let waited = unsafe { libc::waitpid(child, &mut status, 0) };
        assert_eq!(waited, child);
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "{status}"
        );
        assert_eq!(current(), std::process::id()); // the parent's cache is unchanged
    }
}
