//! One module per `ferrite` subcommand.

pub mod bench;
pub mod curve;
pub mod cv;
pub mod data;
pub mod eval;
pub mod finetune;
pub mod info;
pub mod predict;
pub mod robustness;
pub mod serve;
pub mod train;
pub mod video;
