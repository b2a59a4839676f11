//! Every process group streamlab starts for a real engine, and the guarantee that none outlives
//! the run: ended when the run ends or fails, when it times out, on Ctrl-C or SIGTERM, and when
//! streamlab itself dies.
//!
//! An engine is a tree of processes — a Python driver, the JVM it starts (`spark-submit`, or
//! PyFlink's gateway), and that JVM's own children — and the JVM can outlive its Python driver.
//! Killing the child streamlab spawned is therefore not enough, and killing by name would hit
//! the user's other JVMs. Every engine child is started in a process group of its own
//! (`process_group(0)`: its id is the child's pid, and everything it starts inherits it), and
//! that group is what is ended, by id:
//!
//! * [`EngineGroup`] owns one group: dropping it (the run ended, failed, panicked) sends the
//!   group SIGTERM, waits up to [`TERM_GRACE`] for it to go, then sends SIGKILL;
//! * the groups alive at any moment are registered here, so the interrupt handler
//!   ([`end_groups_on_interrupt`], installed once by the command line) ends them all on Ctrl-C
//!   or SIGTERM before streamlab exits — a child in its own group does not get the terminal's
//!   Ctrl-C itself;
//! * a SIGKILL of streamlab runs no code at all, so the generated jobs keep a lifeline: their
//!   stdin is a pipe from streamlab, and a thread in the job ends its whole group when it reads
//!   end of file (see `lifeline.py`).

use std::process::Child;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

/// How long a group has after SIGTERM before it gets SIGKILL.
pub const TERM_GRACE: Duration = Duration::from_secs(3);

/// The process groups alive now (their ids).
static ALIVE: Mutex<Vec<i32>> = Mutex::new(Vec::new());

/// Set by the interrupt handler before it ends the groups.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Whether the interrupt handler has begun ending every group (Ctrl-C, SIGTERM): a driver whose
/// job dies now was stopped, not failed, and keeps what it received.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::Acquire)
}

/// Whether any process of group `pgid` is still alive (a signal 0 probe).
pub fn group_alive(pgid: i32) -> bool {
    !matches!(killpg(Pid::from_raw(pgid), None), Err(Errno::ESRCH))
}

/// Ends group `pgid`: SIGTERM, up to `grace` for it to go, then SIGKILL. `reap` is called while
/// waiting, so the caller can collect its own child's exit status (a zombie still counts as a
/// member of the group until it is reaped).
pub fn end_group(pgid: i32, grace: Duration, reap: &mut dyn FnMut()) {
    let pid = Pid::from_raw(pgid);
    if killpg(pid, Signal::SIGTERM).is_err() {
        reap();
        return;
    }
    let deadline = Instant::now() + grace;
    loop {
        reap();
        if !group_alive(pgid) {
            return;
        }
        if Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = killpg(pid, Signal::SIGKILL);
    let until = Instant::now() + Duration::from_secs(2);
    while group_alive(pgid) && Instant::now() < until {
        reap();
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One engine's process group, registered while it lives and ended when dropped.
#[derive(Debug)]
pub struct EngineGroup {
    child: Option<Child>,
    pgid: i32,
}

impl EngineGroup {
    /// Takes ownership of `child`, which must have been spawned with `process_group(0)` (it
    /// leads its own group).
    pub fn adopt(child: Child) -> Self {
        let pgid = child.id() as i32;
        ALIVE.lock().expect("group registry").push(pgid);
        Self {
            child: Some(child),
            pgid,
        }
    }

    /// The group's id (its leader's pid).
    pub fn id(&self) -> i32 {
        self.pgid
    }

    /// The leader, to wait for or to read its pipes.
    pub fn leader(&mut self) -> &mut Child {
        self.child.as_mut().expect("the leader until the group ends")
    }

    /// Ends the group now (see [`end_group`]) and waits for the leader.
    pub fn end(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // Closing the lifeline first lets the job end itself cleanly if it still can.
        drop(child.stdin.take());
        end_group(self.pgid, TERM_GRACE, &mut || {
            let _ = child.try_wait();
        });
        let _ = child.wait();
        ALIVE.lock().expect("group registry").retain(|&g| g != self.pgid);
    }
}

impl EngineGroup {
    /// Kills the group at once (SIGKILL, no clean shutdown: a crash, as a failure test wants
    /// it) and waits for the leader.
    pub fn kill(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = killpg(Pid::from_raw(self.pgid), Signal::SIGKILL);
        let _ = child.wait();
        ALIVE.lock().expect("group registry").retain(|&g| g != self.pgid);
    }
}

impl Drop for EngineGroup {
    fn drop(&mut self) {
        self.end();
    }
}

/// Ends every registered group; what the interrupt handler does.
pub fn end_all() {
    let groups: Vec<i32> = std::mem::take(&mut *ALIVE.lock().unwrap_or_else(|p| p.into_inner()));
    for pgid in groups {
        end_group(pgid, TERM_GRACE, &mut || {});
    }
}

/// Installs, once per process, the Ctrl-C / SIGTERM handler that ends every engine group and
/// then calls `on_interrupt`, which says what was kept and whether to exit now (with status
/// 130) or let the command wind down by itself (it stops cleanly). Later calls do nothing.
pub fn end_groups_on_interrupt(on_interrupt: fn() -> bool) {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        let _ = ctrlc::set_handler(move || {
            INTERRUPTED.store(true, Ordering::Release);
            end_all();
            if on_interrupt() {
                std::process::exit(130);
            }
        });
    });
}
