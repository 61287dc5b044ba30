//! `vouch import FILE`: a batch of platform records into the database.

use std::path::PathBuf;

use clap::Args;

use super::{block_on, now, StoreArgs};
use crate::files::read_capped;
use crate::import::{self, Actor};
use crate::zones::Catalogue;
use crate::Failure;

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// A batch of platform records (JSON), the admin API's body.
    #[arg(value_name = "FILE")]
    file: PathBuf,
    #[command(flatten)]
    store: StoreArgs,
}

pub fn import(args: ImportArgs) -> Result<(), Failure> {
    super::serve::init_logging();
    let bytes = read_capped(&args.file, 512 * 1024 * 1024)?;
    let zones = Catalogue::builtin()?;
    let batch = import::parse(&bytes, &zones).map_err(|e| {
        Failure::input(anyhow::anyhow!(
            "{} was refused, nothing was imported: {e}",
            args.file.display()
        ))
    })?;
    let applied = block_on(async {
        let db = args.store.open().await?;
        let now = now();
        let actor = Actor {
            name: "cli:import".into(),
            remote_addr: None,
        };
        let r = crate::service::records::apply(&db, batch, &actor, now).await;
        db.close().await;
        r.map_err(|e| {
            anyhow::anyhow!(
                "{} was refused, nothing was imported: {e}",
                args.file.display()
            )
        })
    })?;
    println!(
        "{}",
        serde_json::to_string(&serde_json::json!({ "applied": applied }))?
    );
    Ok(())
}
