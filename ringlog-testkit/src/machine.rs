//! The machine a run happened on, for the report: CPUs, CPU model, kernel, memory, clock
//! source, and the filesystem under the log directory (the numbers depend on it: a tmpfs log
//! measures memory copies, a disk filesystem adds the page cache and its locks).

use serde_json::{json, Value};
use std::path::Path;

/// A description of this machine and of the filesystem holding `dir`.
#[derive(Debug, Clone)]
pub struct Machine {
    /// CPUs available to this process.
    pub cpus: usize,
    /// `model name` from /proc/cpuinfo.
    pub cpu_model: String,
    /// Kernel release.
    pub kernel: String,
    /// Total memory, MiB.
    pub memory_mib: u64,
    /// The kernel's current clock source (`tsc` makes `Instant::now()` a vDSO call).
    pub clocksource: String,
    /// The log directory.
    pub dir: String,
    /// Filesystem type of the log directory (`ext4`, `tmpfs`, ...).
    pub dir_fs: String,
    /// Device and mount point holding it.
    pub dir_mount: String,
    /// Free page reporting (a VM handing free memory back to its host): the smallest order of
    /// free block reported, if the kernel has it. See [`Machine::memory_note`].
    pub page_reporting_order: Option<u32>,
    /// The order the kernel command line asks for, if it names one.
    pub page_reporting_order_cmdline: Option<u32>,
}

/// Orders above this (`MAX_PAGE_ORDER` on x86-64) are never reported.
const MAX_PAGE_ORDER: u32 = 10;
const PAGE_REPORTING_ORDER: &str = "/sys/module/page_reporting/parameters/page_reporting_order";

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Describes this machine, with the filesystem that holds `dir`.
pub fn describe(dir: &Path) -> Machine {
    let cpuinfo = read("/proc/cpuinfo");
    let cpu_model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or_else(|| "unknown".to_owned(), |(_, m)| m.trim().to_owned());
    let memory_mib = read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb / 1024);
    let (dir_fs, dir_mount) = filesystem_of(dir);
    Machine {
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        cpu_model,
        kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
        memory_mib,
        clocksource: read("/sys/devices/system/clocksource/clocksource0/current_clocksource")
            .trim()
            .to_owned(),
        dir: dir.display().to_string(),
        dir_fs,
        dir_mount,
        page_reporting_order: read(PAGE_REPORTING_ORDER).trim().parse().ok(),
        page_reporting_order_cmdline: read("/proc/cmdline")
            .split_whitespace()
            .find_map(|p| p.strip_prefix("page_reporting.page_reporting_order="))
            .and_then(|v| v.parse().ok()),
    }
}

/// `(fs type, "device on mount point")` of the mount holding `path`: the longest mount point
/// of /proc/self/mounts that contains it.
pub fn filesystem_of(path: &Path) -> (String, String) {
    let path = path.canonicalize().unwrap_or_else(|_| path.to_owned());
    let mounts = read("/proc/self/mounts");
    let best = mounts
        .lines()
        .filter_map(|l| {
            let mut f = l.split(' ');
            let (dev, at, fs) = (f.next()?, f.next()?, f.next()?);
            let at = at.replace("\\040", " ");
            path.starts_with(&at)
                .then(|| (at, dev.to_owned(), fs.to_owned()))
        })
        .max_by_key(|(at, _, _)| at.len());
    match best {
        Some((at, dev, fs)) => (fs, format!("{dev} on {at}")),
        None => ("unknown".to_owned(), "unknown".to_owned()),
    }
}

impl Machine {
    /// One line for the report header.
    pub fn line(&self) -> String {
        let reporting = match self.page_reporting_order {
            Some(order) => format!("; free page reporting order {order}"),
            None => String::new(),
        };
        format!(
            "{} CPUs ({}), {} MiB, Linux {}, clocksource {}{reporting}; logs in {} ({}, {})",
            self.cpus,
            self.cpu_model,
            self.memory_mib,
            self.kernel,
            self.clocksource,
            self.dir,
            self.dir_fs,
            self.dir_mount
        )
    }

    /// A note when this is a VM that hands free memory back to its host. Memory the guest
    /// reuses after that costs a host fault per page on first touch, so a repetition whose log
    /// lands in it runs several times slower; that hits whoever is bound by page-cache speed
    /// (ringlog's drain most) and makes repetitions swing at random. Shown with
    /// `--vm-memory-probes` only.
    pub fn memory_note(&self) -> Option<String> {
        let order = self.page_reporting_order.filter(|&o| o <= MAX_PAGE_ORDER)?;
        let intended = match self.page_reporting_order_cmdline {
            Some(c) if c != order => format!(" (the kernel command line asks for {c})"),
            _ => String::new(),
        };
        Some(format!(
            "note: this VM hands free memory blocks of order >= {order} back to its host \
             (free page reporting){intended}. Page-cache pages allocated from such memory cost a \
             host fault each on first touch, so repetitions may swing by up to 10x at random, \
             ringlog's most (its drain is bound by page-cache speed)."
        ))
    }

    /// As JSON.
    pub fn to_json(&self) -> Value {
        json!({
            "cpus": self.cpus,
            "cpu_model": self.cpu_model,
            "kernel": self.kernel,
            "memory_mib": self.memory_mib,
            "clocksource": self.clocksource,
            "dir": self.dir,
            "dir_fs": self.dir_fs,
            "dir_mount": self.dir_mount,
            "page_reporting_order": self.page_reporting_order,
            "page_reporting_order_cmdline": self.page_reporting_order_cmdline,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_reporting_order_the_kernel_can_report_is_noted_and_nothing_is_asked_of_the_user() {
        let mut m = describe(Path::new("/"));
        m.page_reporting_order = None;
        assert_eq!(m.memory_note(), None);
        m.page_reporting_order = Some(MAX_PAGE_ORDER + 1);
        assert_eq!(m.memory_note(), None);
        m.page_reporting_order = Some(5);
        m.page_reporting_order_cmdline = Some(11);
        let w = m.memory_note().expect("order 5 is reported");
        assert!(w.contains("order >= 5") && w.contains("asks for 11"), "{w}");
        assert!(!w.contains("echo") && !w.contains("root"), "{w}");
    }

    #[test]
    fn the_root_filesystem_has_a_type() {
        let (fs, mount) = filesystem_of(Path::new("/"));
        assert_ne!(fs, "unknown");
        assert!(mount.ends_with(" on /"), "{mount}");
    }
}

/// How busy the machine is: other work on it makes every number noisier.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Load {
    /// 1-minute load average.
    pub loadavg1: f64,
    /// Share of the last 10 s in which some runnable task waited for a CPU (PSI `cpu some
    /// avg10`, percent), if the kernel reports it.
    pub cpu_pressure10: Option<f64>,
}

impl Load {
    /// Now.
    pub fn now() -> Load {
        let loadavg1 = read("/proc/loadavg")
            .split_whitespace()
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        let cpu_pressure10 = read("/proc/pressure/cpu")
            .lines()
            .find(|l| l.starts_with("some"))
            .and_then(|l| l.split_whitespace().find_map(|f| f.strip_prefix("avg10=")))
            .and_then(|v| v.parse().ok());
        Load {
            loadavg1,
            cpu_pressure10,
        }
    }

    /// For the report.
    pub fn line(&self) -> String {
        match self.cpu_pressure10 {
            Some(p) => format!("load {:.2}, CPU pressure {p:.0}%", self.loadavg1),
            None => format!("load {:.2}", self.loadavg1),
        }
    }

    /// As JSON.
    pub fn to_json(&self) -> Value {
        json!({"loadavg1": self.loadavg1, "cpu_pressure_some_avg10": self.cpu_pressure10})
    }
}
