//! The `<DATASET>` options every data-taking command shares.

use std::path::PathBuf;

use clap::{ArgGroup, Args, ValueEnum};
use ferrite_data::DataSource;
use ferrite_data::ferplus::LabelMode;

const HEADING: &str = "Dataset (give --fer2013, --fer2013 with --ferplus, or --images)";

#[derive(Debug, Clone, Args)]
#[command(group(ArgGroup::new("dataset").required(true).args(["fer2013", "images"])))]
pub struct DatasetArgs {
    /// The Kaggle fer2013.csv, plain or gzip-compressed (detected by content).
    #[arg(help_heading = HEADING, long, value_name = "CSV")]
    pub fer2013: Option<PathBuf>,

    /// FERPlus votes (fer2013new.csv): 8-class labels for the fer2013.csv rows.
    #[arg(help_heading = HEADING, long, value_name = "VOTES_CSV", requires = "fer2013", conflicts_with = "images")]
    pub ferplus: Option<PathBuf>,

    /// How FERPlus votes become labels.
    #[arg(help_heading = HEADING, long, value_enum, default_value_t = Labels::Majority, requires = "ferplus")]
    pub labels: Labels,

    /// A folder of images: DIR/<class>/* or DIR/<split>/<class>/* (split: train, val, test).
    #[arg(help_heading = HEADING, long, value_name = "DIR")]
    pub images: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Labels {
    /// FERPlus rule: single votes dropped, the label needs more than half of the rest.
    Majority,
    /// The class with the most votes.
    Plurality,
    /// The normalised votes as a soft target (training); hard label = most votes.
    Distribution,
}

impl DatasetArgs {
    pub fn source(&self) -> DataSource {
        match (&self.fer2013, &self.ferplus, &self.images) {
            (Some(csv), Some(votes), _) => DataSource::FerPlus {
                csv: csv.clone(),
                votes: votes.clone(),
                mode: match self.labels {
                    Labels::Majority => LabelMode::Majority,
                    Labels::Plurality => LabelMode::Plurality,
                    Labels::Distribution => LabelMode::Distribution,
                },
            },
            (Some(csv), None, _) => DataSource::Fer2013 { csv: csv.clone() },
            (None, _, Some(root)) => DataSource::Folder { root: root.clone() },
            (None, _, None) => unreachable!("clap requires --fer2013 or --images"),
        }
    }
}
