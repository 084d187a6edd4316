//! TIME_WAIT aging and the Windows "497-day" bug (KB2553549).
//!
//! tcpip.sys times TCP state in 10 ms ticks of a 32-bit counter (tcpip-afd-facts 3.1: chimney
//! granularity; 3.2 [I]). After 2^32 x 10 ms = 42,949,672.96 s (497 d 02:27:52.96) of uptime the
//! counter wraps and, on NT 6.0/6.1 before the fix, the TIME_WAIT expiry test never fires again:
//! TIME_WAIT entries pile up until the dynamic port range is gone. The 248.5-day figure is the
//! same counter compared signed, which broke TCP Chimney offload.

use crate::model::{Endpoint, TcpState};
use serde::Serialize;

/// 2^32 ticks of 10 ms, in 100 ns units: the uptime at which tcpip's tick counter wraps.
pub const WRAP_100NS: u64 = (1u64 << 32) * 100_000;
/// 2^31 ticks of 10 ms: where a signed comparison of the same counter turns (TCP Chimney).
pub const CHIMNEY_100NS: u64 = (1u64 << 31) * 100_000;
/// TcpTimedWaitDelay's default: 240 s (2 x MSL of 120 s; TechNet for Windows 2000, tcpip-afd-facts
/// 3.1). No Vista+ figure is published (gap 12); Vista+ documentation keeps 240 s in practice.
pub const DEFAULT_TIME_WAIT_DELAY_SECS: u32 = 240;

/// FILETIME ticks per second.
const FT_PER_SEC: u64 = 10_000_000;

/// Ages of the TIME_WAIT entries against the dump's clock.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimeWaitAging {
    /// TIME_WAIT entries found (TcTW objects and TCBs in state 12).
    pub count: u64,
    /// Entries whose time field was readable and plausible.
    pub with_time: u64,
    pub delay_secs: u32,
    /// `override` (command line) or `default`.
    pub delay_source: &'static str,
    /// Entries older than the delay: tcpip should have reaped them.
    pub overdue: u64,
    pub oldest_age_secs: Option<u64>,
    pub median_age_secs: Option<u64>,
    /// Age buckets: within the delay, delay..1 h, 1 h..1 d, over 1 d.
    pub buckets: Vec<AgeBucket>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgeBucket {
    pub label: String,
    pub count: u64,
}

/// A FILETIME is plausible as "entered TIME_WAIT" when it falls between boot and capture (with a
/// minute of slack for clock adjustments).
fn plausible(t: u64, now: u64, boot: Option<u64>) -> bool {
    t != 0 && t <= now + 60 * FT_PER_SEC && boot.is_none_or(|b| t + 60 * FT_PER_SEC >= b)
}

pub fn age_time_wait(
    endpoints: &[Endpoint],
    now: Option<u64>,
    uptime: Option<u64>,
    delay_override: Option<u32>,
) -> TimeWaitAging {
    let (delay_secs, delay_source) = match delay_override {
        Some(d) => (d, "override"),
        None => (DEFAULT_TIME_WAIT_DELAY_SECS, "default"),
    };
    let boot = now.zip(uptime).map(|(n, u)| n.saturating_sub(u));
    let mut ages: Vec<u64> = Vec::new();
    let mut count = 0;
    for e in endpoints
        .iter()
        .filter(|e| e.state == Some(TcpState::TimeWait))
    {
        count += 1;
        if let (Some(t), Some(now)) = (e.time, now) {
            if plausible(t, now, boot) {
                ages.push(now.saturating_sub(t) / FT_PER_SEC);
            }
        }
    }
    ages.sort_unstable();
    let d = u64::from(delay_secs);
    let bounds = [
        (format!("<= {d} s (normal)"), d),
        ("up to 1 h".into(), 3600),
        ("up to 1 day".into(), 86_400),
        ("over 1 day".into(), u64::MAX),
    ];
    let mut buckets: Vec<AgeBucket> = bounds
        .iter()
        .map(|(l, _)| AgeBucket {
            label: l.clone(),
            count: 0,
        })
        .collect();
    for &a in &ages {
        let i = bounds
            .iter()
            .position(|&(_, hi)| a <= hi)
            .unwrap_or(bounds.len() - 1);
        buckets[i].count += 1;
    }
    TimeWaitAging {
        count,
        with_time: ages.len() as u64,
        delay_secs,
        delay_source,
        overdue: ages.iter().filter(|&&a| a > d).count() as u64,
        oldest_age_secs: ages.last().copied(),
        median_age_secs: ages.get(ages.len() / 2).copied(),
        buckets,
    }
}

/// Where tcpip.sys stands relative to the KB2553549 fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FixStatus {
    /// The OS is not NT 6.0/6.1: the bug does not apply.
    NotAffectedOs,
    /// tcpip.sys is a build that predates the fix.
    Unfixed,
    /// tcpip.sys is newer than the last build known to lack the fix; whether it carries the fix
    /// cannot be told from the version alone (no public source gives the fixed versions here).
    Unknown,
}

/// Last tcpip.sys builds that certainly lack the fix: the RTM/SP builds released before KB2553549
/// existed (2011). Every later revision is "unknown" rather than guessed: Microsoft Japan advises
/// comparing tcpip.sys with the KB's own version, which no source reachable here lists
/// (tcpip-afd-facts 3.1, gap 2).
const KNOWN_UNFIXED: [(u16, u16, u16, u16); 4] = [
    (6, 0, 6001, 18000), // Vista SP1 / Server 2008 RTM
    (6, 0, 6002, 18005), // Vista SP2 / Server 2008 SP2
    (6, 1, 7600, 16385), // Windows 7 / Server 2008 R2 RTM
    (6, 1, 7601, 17514), // Windows 7 / Server 2008 R2 SP1
];

pub fn fix_status(os_major: u32, os_minor: u32, tcpip_version: Option<[u16; 4]>) -> FixStatus {
    if !(os_major == 6 && os_minor <= 1) {
        return FixStatus::NotAffectedOs;
    }
    match tcpip_version {
        Some([a, b, c, d])
            if KNOWN_UNFIXED
                .iter()
                .any(|&(ka, kb, kc, kd)| (a, b, c) == (ka, kb, kc) && d <= kd) =>
        {
            FixStatus::Unfixed
        }
        _ => FixStatus::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ObjectKind, Owner, Protocol};

    fn tw(time: Option<u64>) -> Endpoint {
        Endpoint {
            protocol: Protocol::Tcp,
            state: Some(TcpState::TimeWait),
            local_ip: None,
            local_port: 50000,
            remote_ip: None,
            remote_port: Some(443),
            owner: Owner::Unattributed,
            owner_source: "none",
            object: 0,
            kind: ObjectKind::TimeWait,
            pool_tag: "TcTW".into(),
            time,
            found_via: "partition-table",
        }
    }

    #[test]
    fn wrap_is_497_days_2_27_52() {
        let secs = WRAP_100NS / 10_000_000;
        assert_eq!(secs, 42_949_672);
        assert_eq!(
            (
                secs / 86_400,
                secs % 86_400 / 3600,
                secs % 3600 / 60,
                secs % 60
            ),
            (497, 2, 27, 52)
        );
        assert_eq!(CHIMNEY_100NS / 10_000_000 / 86_400, 248);
    }

    #[test]
    fn aging_counts_overdue_and_skips_implausible_times() {
        let now = 130_000_000_000_000_000u64;
        let s = FT_PER_SEC;
        let eps = vec![
            tw(Some(now - 100 * s)),
            tw(Some(now - 1000 * s)),
            tw(Some(now - 5 * 86_400 * s)),
            tw(Some(now + 3600 * s)), // in the future: implausible
            tw(None),
        ];
        let a = age_time_wait(&eps, Some(now), Some(30 * 86_400 * s), None);
        assert_eq!((a.count, a.with_time, a.overdue), (5, 3, 2));
        assert_eq!(a.oldest_age_secs, Some(5 * 86_400));
        assert_eq!(
            a.buckets.iter().map(|b| b.count).collect::<Vec<_>>(),
            vec![1, 1, 0, 1]
        );
        let a = age_time_wait(&eps, Some(now), None, Some(2000));
        assert_eq!((a.overdue, a.delay_source), (1, "override"));
    }

    #[test]
    fn fix_status_by_version() {
        assert_eq!(
            fix_status(6, 1, Some([6, 1, 7601, 17514])),
            FixStatus::Unfixed
        );
        assert_eq!(
            fix_status(6, 1, Some([6, 1, 7601, 23000])),
            FixStatus::Unknown
        );
        assert_eq!(fix_status(6, 1, None), FixStatus::Unknown);
        assert_eq!(
            fix_status(10, 0, Some([10, 0, 17763, 1])),
            FixStatus::NotAffectedOs
        );
        assert_eq!(
            fix_status(6, 3, Some([6, 3, 9600, 1])),
            FixStatus::NotAffectedOs
        );
    }
}
