//! todo
use crate::{
    args::{Global, KustomizationArgs},
    error::Error,
};
/// Runs.
pub async fn run(_g: &Global, _a: KustomizationArgs) -> Result<(), Error> {
    Err(Error::Failed("x".into()))
}
