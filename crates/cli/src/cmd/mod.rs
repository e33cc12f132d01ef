//! One module per `ferrite` subcommand.

pub mod data;
