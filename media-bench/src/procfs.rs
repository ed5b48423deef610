//! What /proc says about a process: CPU time (utime + stime of all its threads) and resident
//! memory.

use std::time::Duration;

/// Clock ticks per second of /proc's utime and stime (USER_HZ, 100 on Linux).
const USER_HZ: f64 = 100.0;

/// CPU time a process has used, all threads: in user space and in the kernel on its behalf
/// (system calls, and on this kernel, which does not account interrupt time apart, the softirq
/// work that runs on its CPU: the loopback receive path of what it sends).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CpuTimes {
    /// utime.
    pub user: Duration,
    /// stime.
    pub system: Duration,
}

impl CpuTimes {
    /// User + system.
    pub fn total(&self) -> Duration {
        self.user + self.system
    }

    /// What was used from `earlier` to `self`.
    pub fn since(&self, earlier: &CpuTimes) -> CpuTimes {
        CpuTimes {
            user: self.user.saturating_sub(earlier.user),
            system: self.system.saturating_sub(earlier.system),
        }
    }
}

/// CPU time process `pid` has used, all threads, from `/proc/<pid>/stat`.
pub fn cpu_times(pid: u32) -> Option<CpuTimes> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (user, system) = parse_cpu_ticks(&stat)?;
    let secs = |ticks: u64| Duration::from_secs_f64(ticks as f64 / USER_HZ);
    Some(CpuTimes {
        user: secs(user),
        system: secs(system),
    })
}

/// utime and stime (fields 14 and 15) of a `/proc/<pid>/stat` line, in ticks.
fn parse_cpu_ticks(stat: &str) -> Option<(u64, u64)> {
    // The command name may hold spaces and parentheses: fields restart after the last ')'.
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3 (state); utime is field 14, stime field 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime, stime))
}

/// Resident memory of process `pid` in KiB (`VmRSS` of `/proc/<pid>/status`).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_vm_rss(&status)
}

fn parse_vm_rss(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_are_utime_and_stime_even_with_odd_command_names() {
        let stat = "4242 (media (node) x) S 1 4242 4242 0 -1 4194560 100 0 0 0 \
                    1234 56 0 0 20 0 3 0 100 1000 50";
        assert_eq!(parse_cpu_ticks(stat), Some((1234, 56)));
        assert_eq!(parse_cpu_ticks("garbage"), None);
    }

    #[test]
    fn cpu_times_subtract_per_kind_and_never_go_negative() {
        let ms = Duration::from_millis;
        let before = CpuTimes {
            user: ms(100),
            system: ms(300),
        };
        let after = CpuTimes {
            user: ms(150),
            system: ms(290),
        };
        let used = after.since(&before);
        assert_eq!(used.user, ms(50));
        assert_eq!(used.system, Duration::ZERO);
        assert_eq!(after.total(), ms(440));
    }

    #[test]
    fn rss_comes_from_the_vmrss_line() {
        let status = "Name:\tmedia-node\nVmPeak:\t  9999 kB\nVmRSS:\t   20480 kB\nThreads:\t3\n";
        assert_eq!(parse_vm_rss(status), Some(20480));
        assert_eq!(parse_vm_rss("Name:\tx\n"), None);
    }

    #[test]
    fn this_process_has_cpu_time_and_memory() {
        let me = std::process::id();
        let before = cpu_times(me).expect("this process's /proc/<pid>/stat");
        // Work until the clock ticks over (one tick is 10 ms), within a second.
        let deadline = std::time::Instant::now() + Duration::from_secs(1);
        let mut spins = 0u64;
        let after = loop {
            spins = std::hint::black_box(spins.wrapping_add(1));
            let now = cpu_times(me).expect("this process's /proc/<pid>/stat");
            if now.total() > before.total() || std::time::Instant::now() > deadline {
                break now;
            }
        };
        assert!(after.since(&before).total() > Duration::ZERO);
        assert!(rss_kib(me).is_some_and(|kib| kib > 0));
    }
}
