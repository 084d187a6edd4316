//! The scenario files of tests/scenarios/, embedded so the CLI and tests need no checkout.

macro_rules! scenario {
    ($name:literal) => {
        (
            $name,
            include_str!(concat!("../../../tests/scenarios/", $name, ".toml")),
        )
    };
}

static ALL: &[(&str, &str)] = &[
    scenario!("a-2008r2-497-day"),
    scenario!("b-2019-bound-leak"),
    scenario!("c-2022-kernel-wsk"),
    scenario!("d-win10-close-wait"),
    scenario!("e-win11-healthy"),
    scenario!("f-win10-dual-stack"),
];

/// Every embedded scenario as (name, TOML text), in file-name order.
pub fn all() -> &'static [(&'static str, &'static str)] {
    ALL
}

/// The TOML text of one embedded scenario.
pub fn get(name: &str) -> Option<&'static str> {
    ALL.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}
