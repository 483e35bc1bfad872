//! todo
use crate::{
    args::{Global, TargetArgs, WaitArgs},
    error::Error,
};
/// Runs.
pub async fn suspend(_g: &Global, _a: TargetArgs) -> Result<(), Error> {
    Err(Error::Failed("x".into()))
}
/// Runs.
pub async fn resume(_g: &Global, _a: WaitArgs) -> Result<(), Error> {
    Err(Error::Failed("x".into()))
}
