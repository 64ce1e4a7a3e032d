//! First run without the central service: the worker sets up their own local store and
//! profile (name, profession, district team) and works offline. Connecting to the central
//! service (a later issue) replaces the local team data with the municipality's.

use crate::ipc::IpcResult;
use feltkontor_core::domain::{Staff, Team};
use feltkontor_core::store::Store;
use feltkontor_core::Clock;
use feltkontor_wire::{Profession, StaffId, StaffSector, TeamId};
use serde::Deserialize;
use std::sync::Arc;

#[derive(Deserialize, specta::Type)]
#[serde(deny_unknown_fields)]
pub struct FirstRun {
    pub name: String,
    pub initials: String,
    pub profession: Profession,
    pub district: String,
    pub passphrase: String,
}

fn sector_of(p: Profession) -> StaffSector {
    match p {
        Profession::Caseworker | Profession::SpecialEducator => StaffSector::SocialServices,
        Profession::Psychologist
        | Profession::HealthVisitor
        | Profession::Educator
        | Profession::Leader => StaffSector::SchoolsDaycare,
    }
}

/// Creates the encrypted store with the worker's profile and returns it unlocked.
pub fn create_store(
    location: &feltkontor_core::StoreLocation,
    input: FirstRun,
    clock: Arc<dyn Clock>,
) -> IpcResult<(Store, Staff)> {
    let staff = Staff {
        id: StaffId::new(),
        name: input.name.trim().to_owned(),
        initials: input.initials.trim().to_uppercase(),
        profession: input.profession,
        sector: sector_of(input.profession),
    };
    let team = Team {
        id: TeamId::new(),
        name: format!("Tværgående team {}", input.district.trim()),
        district: input.district.trim().to_owned(),
    };
    // Validate before anything touches the disk, so a typo leaves no half-made store.
    staff.validate()?;
    team.validate()?;
    let mut store = Store::create(location, &input.passphrase, staff.id, clock)?;
    store.write(|w| {
        w.put_team(&team)?;
        w.put_staff(&staff)?;
        w.add_team_member(team.id, staff.id)?;
        Ok(())
    })?;
    Ok((store, staff))
}
