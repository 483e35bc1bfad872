//! todo
use crate::{
    args::{Global, TraceArgs},
    error::Error,
};
/// Runs.
pub async fn run(_g: &Global, _a: TraceArgs) -> Result<(), Error> {
    Err(Error::Failed("x".into()))
}
