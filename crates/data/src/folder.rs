//! Folder datasets: `DIR/<class>/*` or `DIR/<split>/<class>/*`, any common image format.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::classes::Emotion;
use crate::dataset::{Dataset, Origin, Samples, Split, SplitRole};
use crate::face::{PIXELS, to_face_plane};
use crate::problem::{DEFAULT_PROBLEM_CAP, DataError, Problem, Problems};

/// Recognises a split folder name: train|training, val|valid|validation|publictest,
/// test|privatetest (any case). The FER2013 usages are accepted so that a FER2013 export
/// reads back as the same splits.
pub fn split_role_from_name(name: &str) -> Option<SplitRole> {
    match name.trim().to_ascii_lowercase().as_str() {
        "train" | "training" => Some(SplitRole::Train),
        "val" | "valid" | "validation" | "publictest" => Some(SplitRole::Val),
        "test" | "privatetest" => Some(SplitRole::Test),
        _ => None,
    }
}

fn role_name(role: SplitRole) -> &'static str {
    match role {
        SplitRole::Train => "train",
        SplitRole::Val => "val",
        SplitRole::Test => "test",
    }
}

/// Loads a folder dataset. Every file that is not a usable image (and not hidden, like
/// `.DS_Store`) is reported in `Dataset::skipped`; the dataset fails to load only when it
/// has no usable image at all.
pub fn load_folder(root: &Path) -> Result<Dataset, DataError> {
    if !root.is_dir() {
        return Err(DataError::fatal(
            root,
            "is not a folder; expected DIR/<class>/* or DIR/<split>/<class>/*",
        ));
    }
    let mut skipped = Problems::with_cap(DEFAULT_PROBLEM_CAP);
    let top = list_dir(root)?;
    let has_split_folders = top
        .iter()
        .any(|p| p.is_dir() && split_role_from_name(&file_name(p)).is_some());

    // (role, class folder name, file) for every candidate image.
    let mut files: Vec<(SplitRole, String, PathBuf)> = Vec::new();
    if has_split_folders {
        for entry in &top {
            match (entry.is_dir(), split_role_from_name(&file_name(entry))) {
                (true, Some(role)) => collect_classes(entry, role, &mut files, &mut skipped)?,
                _ => skipped.push(Problem::in_file(
                    entry,
                    "is not a split folder (train, val, test); with split folders, classes go in DIR/<split>/<class>/",
                )),
            }
        }
    } else {
        collect_classes(root, SplitRole::Train, &mut files, &mut skipped)?;
    }

    let classes = class_order(files.iter().map(|(_, c, _)| c.as_str()));
    let decoded: Vec<Result<[u8; PIXELS], String>> =
        files.par_iter().map(|(_, _, path)| decode(path)).collect();

    let mut by_role: BTreeMap<u8, Split> = BTreeMap::new();
    for ((role, class, path), result) in files.iter().zip(decoded) {
        match result {
            Ok(plane) => {
                let label = class_index(&classes, class);
                let split = by_role.entry(*role as u8).or_insert_with(|| Split {
                    name: if has_split_folders {
                        role_name(*role).into()
                    } else {
                        "all".into()
                    },
                    role: *role,
                    samples: Samples::default(),
                });
                split
                    .samples
                    .push(&plane, label as u32, Origin::File(path.clone()));
            }
            Err(reason) => skipped.push(Problem::in_file(path, reason)),
        }
    }
    if by_role.is_empty() {
        let mut message =
            "no usable image found; expected DIR/<class>/* or DIR/<split>/<class>/*".to_string();
        if let Some(first) = skipped.kept.first() {
            message.push_str(&format!(" (first problem: {first})"));
        }
        return Err(DataError::fatal(root, message));
    }
    Ok(Dataset {
        name: format!("folder {}", root.display()),
        classes,
        splits: by_role.into_values().collect(),
        skipped,
    })
}

/// Adds every file under `dir/<class>/` (recursively) to `files`.
fn collect_classes(
    dir: &Path,
    role: SplitRole,
    files: &mut Vec<(SplitRole, String, PathBuf)>,
    skipped: &mut Problems,
) -> Result<(), DataError> {
    for entry in list_dir(dir)? {
        if !entry.is_dir() {
            skipped.push(Problem::in_file(
                &entry,
                "is not inside a class folder; expected <class>/<image>",
            ));
            continue;
        }
        let class = file_name(&entry);
        let mut found: Vec<PathBuf> = Vec::new();
        for item in walkdir::WalkDir::new(&entry)
            .sort_by_file_name()
            .into_iter()
            .filter_entry(|e| !is_hidden(e.path()))
        {
            match item {
                Ok(e) if e.file_type().is_file() => found.push(e.into_path()),
                Ok(_) => {}
                Err(e) => skipped.push(Problem::in_file(
                    e.path().unwrap_or(&entry),
                    format!(
                        "cannot read: {}",
                        e.io_error().map_or(e.to_string(), |io| io.to_string())
                    ),
                )),
            }
        }
        files.extend(found.into_iter().map(|p| (role, class.clone(), p)));
    }
    Ok(())
}

/// Sorted, non-hidden entries of a folder.
fn list_dir(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let read = std::fs::read_dir(dir)
        .map_err(|e| DataError::fatal(dir, format!("cannot list folder: {e}")))?;
    let mut entries: Vec<PathBuf> = read
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| !is_hidden(p))
        .collect();
    entries.sort();
    Ok(entries)
}

fn is_hidden(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with('.') && n.len() > 1 && n != "..")
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn decode(path: &Path) -> Result<[u8; PIXELS], String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    let img = crate::decode::decode_image(&bytes, crate::decode::DEFAULT_MAX_PIXELS)
        .map_err(|e| e.to_string())?;
    Ok(to_face_plane(&img))
}

/// Class names in a stable order: known emotions in canonical order (FER2013's, then
/// contempt), then other names alphabetically. Folders that name the same emotion
/// (`happy` in train, `Happiness` in test) are one class, named by the first spelling.
fn class_order<'a>(names: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut seen: BTreeMap<(usize, String), String> = BTreeMap::new();
    for name in names {
        let key = match Emotion::from_name(name) {
            Some(e) => (
                Emotion::ALL.iter().position(|&x| x == e).unwrap(),
                String::new(),
            ),
            None => (Emotion::ALL.len(), name.to_ascii_lowercase()),
        };
        seen.entry(key).or_insert_with(|| name.to_string());
    }
    seen.into_values().collect()
}

fn class_index(classes: &[String], folder: &str) -> usize {
    let mapped = crate::classes::map_classes(&[folder.to_string()], classes);
    mapped[0].expect("every folder name is one of the classes")
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{GrayImage, Luma, Rgb, RgbImage};

    #[test]
    fn split_layout_with_aliases_and_bad_files() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for (split, class, value) in [
            ("train", "happy", 10u8),
            ("Train", "Happiness", 20),
            ("validation", "Sad", 30),
            ("test", "anger", 40),
        ] {
            let d = root.join(split).join(class);
            std::fs::create_dir_all(&d).unwrap();
            GrayImage::from_pixel(64, 64, Luma([value]))
                .save(d.join(format!("{value}.png")))
                .unwrap();
        }
        // A colour JPEG, a broken file, a hidden file and a stray top-level file.
        RgbImage::from_pixel(100, 80, Rgb([200, 200, 200]))
            .save(root.join("test/anger/colour.jpg"))
            .unwrap();
        std::fs::write(root.join("test/anger/broken.png"), b"not a png").unwrap();
        std::fs::write(root.join("test/anger/.DS_Store"), b"junk").unwrap();
        std::fs::write(root.join("notes.txt"), b"hello").unwrap();

        let ds = load_folder(root).unwrap();
        // Canonical order (anger, happy, sad); the spelling is the first folder's in sorted
        // order, and "Train" sorts before "train".
        assert_eq!(
            ds.classes,
            vec!["anger".to_string(), "Happiness".into(), "Sad".into()]
        );
        let train = ds.split("train").unwrap();
        assert_eq!(train.samples.len(), 2, "happy and Happiness are one class");
        assert!(train.samples.labels().iter().all(|&l| l == 1));
        let test = ds.split("test").unwrap();
        assert_eq!(test.samples.len(), 2);
        assert_eq!(ds.split("val").unwrap().name, "val");
        // The broken PNG and the stray file are reported, the hidden file is not.
        let reported: Vec<String> = ds.skipped.kept.iter().map(|p| p.to_string()).collect();
        assert_eq!(ds.skipped.total, 2, "{reported:?}");
        assert!(
            reported
                .iter()
                .any(|p| p.contains("broken.png") && p.contains("not an image format")),
            "{reported:?}"
        );
        assert!(
            reported.iter().any(|p| p.contains("notes.txt")),
            "{reported:?}"
        );
    }

    #[test]
    fn class_layout_is_one_split_named_all() {
        let dir = tempfile::tempdir().unwrap();
        for class in ["Surprised", "neutral"] {
            let d = dir.path().join(class);
            std::fs::create_dir_all(&d).unwrap();
            GrayImage::from_pixel(48, 48, Luma([99]))
                .save(d.join("a.bmp"))
                .unwrap();
        }
        let ds = load_folder(dir.path()).unwrap();
        assert_eq!(
            ds.classes,
            vec!["Surprised".to_string(), "neutral".to_string()]
        );
        assert_eq!(ds.splits.len(), 1);
        assert_eq!(ds.splits[0].name, "all");
        assert_eq!(ds.splits[0].samples.image(0)[0], 99);
    }

    #[test]
    fn empty_folder_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = load_folder(dir.path()).unwrap_err().to_string();
        assert!(err.contains("no usable image found"), "{err}");
    }
}
