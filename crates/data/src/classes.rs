//! The canonical emotion vocabulary.
//!
//! FER2013 says "Angry", FERPlus says "anger", a CK+-style folder may say "angry" or
//! "ANGER". Every dataset keeps its own spelling of its class names, and everything that
//! must relate classes across datasets (a FERPlus model scored on FER2013, a FER2013 model
//! on a folder) goes through [`Emotion::from_name`].

use std::fmt;

/// The emotions ferrite knows by name. The order is FER2013's, then contempt (FERPlus).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Emotion {
    Angry,
    Disgust,
    Fear,
    Happy,
    Sad,
    Surprise,
    Neutral,
    Contempt,
}

impl Emotion {
    pub const ALL: [Emotion; 8] = [
        Emotion::Angry,
        Emotion::Disgust,
        Emotion::Fear,
        Emotion::Happy,
        Emotion::Sad,
        Emotion::Surprise,
        Emotion::Neutral,
        Emotion::Contempt,
    ];

    /// Recognises a class name, ignoring case, surrounding blanks and the usual aliases.
    pub fn from_name(name: &str) -> Option<Emotion> {
        let key = name.trim().to_ascii_lowercase();
        let emotion = match key.as_str() {
            "angry" | "anger" | "mad" => Emotion::Angry,
            "disgust" | "disgusted" | "disgusting" => Emotion::Disgust,
            "fear" | "fearful" | "afraid" | "scared" => Emotion::Fear,
            "happy" | "happiness" | "joy" | "smile" => Emotion::Happy,
            "sad" | "sadness" => Emotion::Sad,
            "surprise" | "surprised" => Emotion::Surprise,
            "neutral" | "calm" => Emotion::Neutral,
            "contempt" | "contemptuous" => Emotion::Contempt,
            _ => return None,
        };
        Some(emotion)
    }

    /// The name ferrite prints when it has no dataset spelling to use (FER2013's style).
    pub fn name(self) -> &'static str {
        match self {
            Emotion::Angry => "Angry",
            Emotion::Disgust => "Disgust",
            Emotion::Fear => "Fear",
            Emotion::Happy => "Happy",
            Emotion::Sad => "Sad",
            Emotion::Surprise => "Surprise",
            Emotion::Neutral => "Neutral",
            Emotion::Contempt => "Contempt",
        }
    }
}

impl fmt::Display for Emotion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// FER2013 class names, in label order 0..6.
pub const FER2013_CLASSES: [&str; 7] = [
    "Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral",
];

/// FERPlus class names, in the column order of `fer2013new.csv` (label order 0..7).
pub const FERPLUS_CLASSES: [&str; 8] = [
    "neutral",
    "happiness",
    "surprise",
    "sadness",
    "anger",
    "disgust",
    "fear",
    "contempt",
];

/// Maps each class of `from` to the index of the same emotion in `to`, by canonical name.
/// Classes with no counterpart (an unknown name, or an emotion `to` lacks) map to `None`.
pub fn map_classes(from: &[String], to: &[String]) -> Vec<Option<usize>> {
    from.iter()
        .map(|name| {
            let wanted = Emotion::from_name(name);
            to.iter()
                .position(|other| match (wanted, Emotion::from_name(other)) {
                    (Some(a), Some(b)) => a == b,
                    // Classes outside the vocabulary only match the same spelling.
                    _ => other.trim().eq_ignore_ascii_case(name.trim()),
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_and_case_are_recognised() {
        assert_eq!(Emotion::from_name("ANGER"), Some(Emotion::Angry));
        assert_eq!(Emotion::from_name(" happiness "), Some(Emotion::Happy));
        assert_eq!(Emotion::from_name("Surprised"), Some(Emotion::Surprise));
        assert_eq!(Emotion::from_name("fearful"), Some(Emotion::Fear));
        assert_eq!(Emotion::from_name("disgusted"), Some(Emotion::Disgust));
        assert_eq!(Emotion::from_name("bored"), None);
    }

    #[test]
    fn ferplus_maps_onto_fer2013_by_name() {
        let plus: Vec<String> = FERPLUS_CLASSES.iter().map(|s| s.to_string()).collect();
        let fer: Vec<String> = FER2013_CLASSES.iter().map(|s| s.to_string()).collect();
        let map = map_classes(&plus, &fer);
        assert_eq!(
            map,
            vec![
                Some(6),
                Some(3),
                Some(5),
                Some(4),
                Some(0),
                Some(1),
                Some(2),
                None
            ]
        );
    }
}
