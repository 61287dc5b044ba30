//! The zone catalogue (`frameworks/reference/zones.yaml`): each zone's country and region.
//! EU residency is derived from it, never taken from imported records.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, Result};
use serde::Deserialize;

const BUILTIN: &str = include_str!("../../frameworks/reference/zones.yaml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Zone {
    pub zone: String,
    pub country: String,
    pub region: String,
    pub city: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    eu_countries: BTreeSet<String>,
    zones: Vec<Zone>,
}

#[derive(Debug, Clone)]
pub struct Catalogue {
    eu: BTreeSet<String>,
    zones: BTreeMap<String, Zone>,
}

impl Catalogue {
    pub fn builtin() -> Result<Self> {
        Self::parse(BUILTIN).context("frameworks/reference/zones.yaml")
    }

    pub fn parse(text: &str) -> Result<Self> {
        let f: File = serde_yaml::from_str(text)?;
        Ok(Catalogue {
            eu: f.eu_countries,
            zones: f.zones.into_iter().map(|z| (z.zone.clone(), z)).collect(),
        })
    }

    pub fn get(&self, zone: &str) -> Option<&Zone> {
        self.zones.get(zone)
    }

    pub fn is_eu(&self, zone: &str) -> bool {
        self.get(zone).is_some_and(|z| self.eu.contains(&z.country))
    }

    /// Zones known to the catalogue, for error messages.
    pub fn names(&self) -> Vec<&str> {
        self.zones.keys().map(String::as_str).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn residency_comes_from_the_country() {
        let c = Catalogue::builtin().unwrap();
        assert!(c.is_eu("de-fra1"));
        assert!(!c.is_eu("us-east1"));
        assert!(!c.is_eu("ch-zrh1"), "Switzerland is not in the EU");
        assert!(!c.is_eu("xx-nowhere1"));
    }
}
