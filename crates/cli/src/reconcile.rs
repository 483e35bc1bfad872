//! todo
use crate::{
    args::{Global, ReconcileArgs},
    error::Error,
};
/// Runs.
pub async fn run(_g: &Global, _a: ReconcileArgs) -> Result<(), Error> {
    Err(Error::Failed("x".into()))
}
