//! One description of "which dataset", shared by every command that takes data.

use std::path::PathBuf;

use crate::dataset::Dataset;
use crate::ferplus::LabelMode;
use crate::problem::DataError;

/// Where a dataset comes from.
#[derive(Debug, Clone)]
pub enum DataSource {
    Fer2013 {
        csv: PathBuf,
    },
    FerPlus {
        csv: PathBuf,
        votes: PathBuf,
        mode: LabelMode,
    },
    Folder {
        root: PathBuf,
    },
}

impl DataSource {
    pub fn load(&self) -> Result<Dataset, DataError> {
        match self {
            DataSource::Fer2013 { csv } => crate::fer2013::load_fer2013(csv),
            DataSource::FerPlus { csv, votes, mode } => {
                crate::ferplus::load_ferplus(csv, votes, *mode)
            }
            DataSource::Folder { root } => crate::folder::load_folder(root),
        }
    }
}
