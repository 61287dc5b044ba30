//! The zone catalogue (`frameworks/reference/zones.yaml`): each zone's country and region,
//! and which countries are in the EU, in the EEA, or have an adequacy decision.
//! EU residency and the GDPR transfer facts of a service's locations are derived
//! from it, never taken from imported records.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, Result};
use serde::Deserialize;
use vouch_engine::records::Location;

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
struct Adequacy {
    country: String,
    #[allow(dead_code)]
    decision: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    eu_countries: BTreeSet<String>,
    eea_countries: BTreeSet<String>,
    adequacy: Vec<Adequacy>,
    zones: Vec<Zone>,
}

#[derive(Debug, Clone)]
pub struct Catalogue {
    eu: BTreeSet<String>,
    eea: BTreeSet<String>,
    adequacy: BTreeSet<String>,
    zones: BTreeMap<String, Zone>,
}

impl Catalogue {
    pub fn builtin() -> Result<Self> {
        Self::parse(BUILTIN).context("frameworks/reference/zones.yaml")
    }

    pub fn parse(text: &str) -> Result<Self> {
        let f: File = serde_yaml::from_str(text)?;
        if let Some(c) = f.eu_countries.difference(&f.eea_countries).next() {
            anyhow::bail!("EU country {c} is missing from eea_countries");
        }
        Ok(Catalogue {
            eu: f.eu_countries,
            eea: f.eea_countries,
            adequacy: f.adequacy.into_iter().map(|a| a.country).collect(),
            zones: f.zones.into_iter().map(|z| (z.zone.clone(), z)).collect(),
        })
    }

    pub fn get(&self, zone: &str) -> Option<&Zone> {
        self.zones.get(zone)
    }

    pub fn is_eu(&self, zone: &str) -> bool {
        self.get(zone).is_some_and(|z| self.eu.contains(&z.country))
    }

    /// Where `zone` is and on what basis data may go there (GDPR Chapter V):
    /// inside the EEA, to a country with an adequacy decision, under the
    /// safeguard the organization recorded for that country, or with none.
    /// `None` for a zone the catalogue does not know.
    pub fn location(
        &self,
        zone: &str,
        role: &str,
        safeguards: &BTreeMap<String, String>,
    ) -> Option<Location> {
        let z = self.get(zone)?;
        let eea = self.eea.contains(&z.country);
        let adequacy = self.adequacy.contains(&z.country);
        let recorded = safeguards.get(&z.country).cloned();
        let (transfer_basis, safeguard) = if eea {
            ("within_eea", None)
        } else if adequacy {
            ("adequacy_decision", None)
        } else if recorded.is_some() {
            ("appropriate_safeguards", recorded)
        } else {
            ("none", None)
        };
        Some(Location {
            zone: zone.to_owned(),
            role: role.to_owned(),
            country: z.country.clone(),
            eea,
            adequacy,
            transfer_basis: transfer_basis.to_owned(),
            safeguard,
        })
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

    #[test]
    fn transfers_have_a_basis_or_are_named_as_having_none() {
        let c = Catalogue::builtin().unwrap();
        let none = BTreeMap::new();
        let basis = |z: &str, s: &BTreeMap<String, String>| {
            c.location(z, "zone", s).unwrap().transfer_basis
        };
        assert_eq!(basis("de-fra1", &none), "within_eea");
        assert_eq!(basis("ch-zrh1", &none), "adequacy_decision");
        assert_eq!(basis("uk-lon1", &none), "adequacy_decision");
        assert_eq!(basis("us-east1", &none), "none");
        let scc = BTreeMap::from([("US".to_owned(), "SCC (EU) 2021/914".to_owned())]);
        let us = c.location("us-east1", "backup_zone", &scc).unwrap();
        assert_eq!(
            (
                us.transfer_basis.as_str(),
                us.safeguard.as_deref(),
                us.country.as_str()
            ),
            ("appropriate_safeguards", Some("SCC (EU) 2021/914"), "US")
        );
        assert!(c.location("xx-nowhere1", "zone", &none).is_none());
    }
}
